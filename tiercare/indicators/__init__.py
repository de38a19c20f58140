"""Indicators as data, aggregate reporting, analytics and dashboards."""
