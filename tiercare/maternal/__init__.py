"""Maternal safety: pregnancy risk grading under the 2017 national specification, high-risk case
management and early warning.

The grading engine is pure: :mod:`tiercare.maternal.criteria` loads the assessment table
(versioned data files in ``data/``, one per family and version, with effective dates),
:mod:`tiercare.maternal.grading` grades one pregnancy (:func:`~tiercare.maternal.grading.grade`)
or many at once (:func:`~tiercare.maternal.grading.grade_batch`), and
:mod:`tiercare.maternal.fhir` maps a result to a FHIR ``RiskAssessment``.

Case management builds on it: :mod:`~tiercare.maternal.models` (tables),
:mod:`~tiercare.maternal.rules` (working rules as versioned data: intervals, alert thresholds,
escalation, delivery levels, PMTCT steps), :mod:`~tiercare.maternal.service` (registration with
screening, grading, case files, delivery, closure, alerts with an explicit clock),
:mod:`~tiercare.maternal.delivery` and :mod:`~tiercare.maternal.places` (where to deliver),
:mod:`~tiercare.maternal.fhir_case` (Patient, EpisodeOfCare, RiskAssessment, Observation),
:mod:`~tiercare.maternal.api` (REST under ``/api/v1/maternal`` and ``/fhir``),
:mod:`~tiercare.maternal.pages` (web pages) and :mod:`~tiercare.maternal.demo` (demo files).
"""
