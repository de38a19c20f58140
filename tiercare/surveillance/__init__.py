"""Surveillance: aberration detection on the daily counts of sentinel sites (fever clinics).

The detectors in :mod:`tiercare.surveillance.aberration` are pure NumPy: they take a
``series × days`` array of counts and return statistics, baselines and alert flags, so that the
service layer, a notebook or a batch job can run them on any number of sentinels at once.
"""
