"""The planning engine: pure computation on arrays and GeoDataFrames.

Nothing in this package imports the database or the web layer, so analysts can use it from a
notebook and workers can run it without a server.
"""
