"""The demo county: a generated, clearly labelled county calibrated on Shouyang, Shanxi.

:func:`tiercare.demo.generator.generate_demo_files` writes the county as the files the registry
importers read (divisions, boundaries, facilities, staff, medical group, roads, terrain).
"""
