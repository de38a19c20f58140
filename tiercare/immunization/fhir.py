"""FHIR mapping of the schedule engine (FHIR R4B resources of ``fhir.resources``).

* :func:`recommendation_resource` — a :class:`~tiercare.immunization.forecast.Forecast` as an
  ``ImmunizationRecommendation``: one recommendation per series, ``forecastStatus`` coded in
  TierCare's status code system (all six statuses) plus the HL7 status code where one exists
  (``due``, ``overdue``, ``complete``), and date criteria (LOINC) *earliest* 30981-5 = ``earliest``,
  *due* 30980-7 = ``earliest`` (in China the schedule age is both the earliest and the due age) and
  *overdue* 59778-1 = the day after ``overdue_after`` (the first day the dose is overdue).
* :func:`immunization_resource` / :func:`dose_from_immunization` — one given dose as an
  ``Immunization`` and back.

Functions are pure: they build or read resources and touch no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.immunizationrecommendation import ImmunizationRecommendation
from pydantic import ValidationError

from tiercare.errors import InputError, Problem, problems_from_validation
from tiercare.immunization.forecast import Forecast, HistoryDose, SeriesForecast
from tiercare.immunization.schedule import ScheduleBook, default_schedules

VACCINE_SYSTEM = "https://tiercare.example.org/fhir/CodeSystem/nip-vaccine"
"""Code system of the programme's vaccine codes (``HepB``, ``BCG``, ``JE-L``, ...)."""

STATUS_SYSTEM = "https://tiercare.example.org/fhir/CodeSystem/forecast-status"
"""Code system of TierCare's forecast statuses (``complete`` ... ``not_applicable``)."""

HL7_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
LOINC = "http://loinc.org"
EARLIEST, DUE, OVERDUE = "30981-5", "30980-7", "59778-1"
_CRITERIA = {EARLIEST: "Earliest date to give", DUE: "Date vaccine due",
             OVERDUE: "Date when overdue for immunization"}
_HL7_STATUS = {"due": "Due", "overdue": "Overdue", "complete": "Complete"}


def _vaccine_concept(code: str, book: ScheduleBook) -> dict[str, Any]:
    name = book.vaccines[code].name if code in book.vaccines else code
    return {"coding": [{"system": VACCINE_SYSTEM, "code": code, "display": name}], "text": name}


def _criterion(code: str, day: dt.date) -> dict[str, Any]:
    return {"code": {"coding": [{"system": LOINC, "code": code, "display": _CRITERIA[code]}]},
            "value": day.isoformat()}


def _recommendation(item: SeriesForecast, book: ScheduleBook) -> dict[str, Any]:
    codings = [{"system": STATUS_SYSTEM, "code": item.status}]
    if item.status in _HL7_STATUS:
        codings.append({"system": HL7_STATUS_SYSTEM, "code": item.status,
                        "display": _HL7_STATUS[item.status]})
    out: dict[str, Any] = {
        "vaccineCode": [_vaccine_concept(item.vaccine, book)],
        "forecastStatus": {"coding": codings, "text": item.status},
        "series": item.vaccine,
    }
    if item.next_dose is not None:
        out["doseNumberPositiveInt"] = item.next_dose
    criteria = []
    if item.earliest is not None:
        criteria += [_criterion(EARLIEST, item.earliest), _criterion(DUE, item.earliest)]
    if item.overdue_after is not None:
        criteria.append(_criterion(OVERDUE, item.overdue_after + dt.timedelta(days=1)))
    if criteria:
        out["dateCriterion"] = criteria
    return out


def recommendation_resource(result: Forecast, *, patient_reference: str,
                            book: ScheduleBook | None = None,
                            resource_id: str | None = None) -> ImmunizationRecommendation:
    """Map a forecast to a validated FHIR ``ImmunizationRecommendation``.

    Parameters
    ----------
    result:
        The forecast of one child.
    patient_reference:
        Reference to the child, e.g. ``"Patient/123"``.
    book:
        Schedule versions (for vaccine names; default: the shipped ones).
    resource_id:
        Optional resource id.

    Returns
    -------
    ImmunizationRecommendation
        ``date`` = the as-of date, ``authority`` text = the schedule version, one recommendation
        per series in schedule order.
    """
    book = book or default_schedules()
    data: dict[str, Any] = {
        "resourceType": "ImmunizationRecommendation",
        "patient": {"reference": patient_reference},
        "date": result.as_of.isoformat(),
        "authority": {"display": f"National Immunisation Programme schedule "
                                 f"{result.schedule_version}"},
        "recommendation": [_recommendation(item, book) for item in result.series],
    }
    if resource_id is not None:
        data["id"] = resource_id
    return ImmunizationRecommendation.model_validate(data)


def immunization_resource(dose: HistoryDose, *, patient_reference: str,
                          dose_number: int | None = None, lot_number: str | None = None,
                          book: ScheduleBook | None = None,
                          resource_id: str | None = None) -> Immunization:
    """Map one given dose to a validated FHIR ``Immunization`` (status ``completed``).

    ``dose_number`` goes to ``protocolApplied.doseNumberPositiveInt`` (series = vaccine code).
    """
    book = book or default_schedules()
    data: dict[str, Any] = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": _vaccine_concept(dose.vaccine, book),
        "patient": {"reference": patient_reference},
        "occurrenceDateTime": dose.date.isoformat(),
    }
    if dose_number is not None:
        data["protocolApplied"] = [{"series": dose.vaccine, "doseNumberPositiveInt": dose_number}]
    if lot_number is not None:
        data["lotNumber"] = lot_number
    if resource_id is not None:
        data["id"] = resource_id
    return Immunization.model_validate(data)


def dose_from_immunization(resource: Immunization | Mapping[str, Any], *,
                           book: ScheduleBook | None = None) -> HistoryDose:
    """Read a given dose back from an ``Immunization`` resource (object or JSON dict).

    Raises
    ------
    InputError
        When the resource is not a valid ``Immunization``, its status is not ``completed``
        (a dose not done or entered in error is no history), it has no vaccine code of the
        programme's code system known to the schedule, or no full occurrence date.
    """
    book = book or default_schedules()
    if not isinstance(resource, Immunization):
        try:
            resource = Immunization.model_validate(dict(resource))
        except ValidationError as exc:
            raise InputError(problems_from_validation(exc.errors())) from exc
    problems: list[Problem] = []
    if resource.status != "completed":
        problems.append(Problem(reason=f"status {resource.status!r} is not a given dose",
                                field="status"))
    codes = [c.code for c in (resource.vaccineCode.coding or []) if c.system == VACCINE_SYSTEM]
    if not codes or codes[0] not in book.vaccines:
        problems.append(Problem(reason=f"no known vaccine code of {VACCINE_SYSTEM}",
                                field="vaccineCode", code="unknown_vaccine"))
    when = resource.occurrenceDateTime
    if when is None:
        problems.append(Problem(reason="no occurrenceDateTime", field="occurrenceDateTime"))
    if problems:
        raise InputError(problems)
    # the calendar date as recorded at the site (a dateTime keeps its own UTC offset)
    if isinstance(when, dt.datetime):
        day = when.date()
    elif isinstance(when, dt.date):
        day = when
    else:
        try:
            day = dt.date.fromisoformat(str(when)[:10])
        except ValueError as exc:
            raise InputError.single(f"{when!r} is not a full date", field="occurrenceDateTime",
                                    code="invalid_date") from exc
    return HistoryDose(vaccine=str(codes[0]), date=day)
