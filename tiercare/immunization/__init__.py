"""Immunisation: the childhood schedule engine of the National Immunisation Programme.

The schedule is versioned data (``data/schedule-*.json``, loaded and validated by
:mod:`tiercare.immunization.schedule`); :mod:`~tiercare.immunization.forecast` computes the
forecast of one child, :mod:`~tiercare.immunization.batch` the same forecast for a whole
population at once with NumPy, and :mod:`~tiercare.immunization.fhir` maps forecasts and doses to
FHIR ``ImmunizationRecommendation`` and ``Immunization`` resources.

The information system on top of the engine (tables in :mod:`~tiercare.immunization.models`):
:mod:`~tiercare.immunization.records` (children, doses, transfers, AEFI, the family look-up),
:mod:`~tiercare.immunization.upload` (atomic, idempotent CSV / FHIR Bundle batches),
:mod:`~tiercare.immunization.sites` (sites, routes, sessions, bookings, reminders),
:mod:`~tiercare.immunization.releases` (scarce-vaccine releases that never oversell),
:mod:`~tiercare.immunization.stock` (lots, receipts, use, wastage, alerts),
:mod:`~tiercare.immunization.worklists` (due lists and coverage for a whole population),
:mod:`~tiercare.immunization.api` (REST), :mod:`~tiercare.immunization.pages` (web pages) and
:mod:`~tiercare.immunization.demo` (the demo county's register).
"""
