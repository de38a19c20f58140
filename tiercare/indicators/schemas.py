"""Pydantic input models of the indicators and surveillance API."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class IndicatorIn(BaseModel):
    """An indicator definition (administrators)."""

    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(max_length=128)
    name_en: str = Field(max_length=128)
    numerator: str = Field(description="Expression over data elements and facts",
                           examples=["opd_visits__primary_care"])
    denominator: str = Field("1", examples=["opd_visits"])
    factor: float = Field(1.0, examples=[100])
    unit: str = ""
    target: float | None = None
    target_direction: str = Field("min", description="min = at least, max = at most")
    target_source: str = ""
    group: str = ""
    description: str = ""
    active: bool = True


class DataElementIn(BaseModel):
    """A data element definition (administrators)."""

    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(max_length=128)
    name_en: str = Field(max_length=128)
    value_type: str = Field("count", description="count, money_fen or number")
    unit_kind: str = Field("facility", description="facility or division (who reports it)")
    description: str = ""


class DataSetIn(BaseModel):
    """A report form: which elements which facility types report, and the deadline."""

    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(max_length=128)
    name_en: str = Field(max_length=128)
    period_type: str = Field("month", description="day, week, month, quarter or year")
    facility_types: list[str] = Field(examples=[["township_health_centre"]])
    elements: list[str] = Field(examples=[["opd_visits", "admissions"]])
    deadline_days: int = Field(10, ge=0, le=366,
                               description="Days after the period's end before the form locks")


class ScorecardItemIn(BaseModel):
    """One weighted indicator of a scorecard."""

    model_config = ConfigDict(extra="forbid")

    indicator: str = Field(examples=["essential_medicine_share"])
    weight: float = Field(gt=0, le=1000)


class ScorecardIn(BaseModel):
    """A performance scorecard: weighted indicators for some facility types."""

    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(max_length=128)
    name_en: str = Field(max_length=128)
    facility_types: list[str] = Field(examples=[["township_health_centre"]])
    items: list[ScorecardItemIn]


class ValidationRuleIn(BaseModel):
    """A validation rule of a data set: ``left operator right``."""

    model_config = ConfigDict(extra="forbid")

    data_set_code: str = Field(examples=["hospital_monthly"])
    left: str = Field(examples=["admissions"])
    operator: str = Field(examples=["<="], description="<=, <, ==, >= or >")
    right: str = Field(examples=["beds * days"])
    message_zh: str = ""
    message_en: str = ""


class DataValueIn(BaseModel):
    """One value to store."""

    model_config = ConfigDict(extra="forbid")

    element: str = Field(examples=["opd_visits"])
    unit: str = Field(description="Facility code or division code", examples=["H1"])
    period: str = Field(examples=["2026-10"])
    value: float | int | str
    comment: str = ""


class ReportIn(BaseModel):
    """A facility's report form for one period."""

    model_config = ConfigDict(extra="forbid")

    data_set: str = Field(examples=["hospital_monthly"])
    facility: str = Field(examples=["H1"])
    period: str = Field(examples=["2026-10"])
    values: dict[str, Any] = Field(description="Element code → value")
    comment: str = ""


class FeverReportIn(BaseModel):
    """One sentinel's daily counts for one age band."""

    model_config = ConfigDict(extra="forbid")

    facility: str
    date: date
    age_band: str = Field(examples=["15-59"])
    patients: int
    tests: int
    positives: int
    referrals: int
    comment: str = ""


class DetectIn(BaseModel):
    """A detection run."""

    model_config = ConfigDict(extra="forbid")

    end: date
    days: int | None = Field(None, ge=10, le=730)
    unit: str = ""
    methods: dict[str, dict[str, float]] | None = Field(
        None, description="Detector settings overriding the file's, e.g. "
                          "{\"C2\": {\"threshold\": 2.5}}")


class AlertActionIn(BaseModel):
    """A note with an acknowledgement or closure."""

    model_config = ConfigDict(extra="forbid")

    note: str = ""
