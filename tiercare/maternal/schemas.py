"""Pydantic inputs of maternal case management (API bodies and page forms)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from tiercare.residents.service import ResidentIn


class PregnancyIn(BaseModel):
    """Registration (建册) at the first antenatal visit, with the screening findings."""

    resident_id: int | None = Field(default=None, description="An already registered resident")
    resident: ResidentIn | None = Field(
        default=None, description="Register the woman in the resident index at the same time")
    lmp: date | None = Field(default=None, description="First day of the last menstrual period")
    edd: date | None = Field(default=None,
                             description="Expected delivery date (default LMP + 280 days)")
    gravidity: int = Field(default=1, ge=1, le=30, description="Pregnancies including this one")
    parity: int = Field(default=0, ge=0, le=29, description="Previous births")
    facility_code: str | None = Field(
        default=None, description="Registering facility (default: the user's facility)")
    screening: dict[str, Any] = Field(
        default_factory=dict,
        description="Screening findings: numeric fields and 'conditions' (criterion codes)")


class GradingIn(BaseModel):
    """A grading (or re-grading) at a secondary-or-higher hospital."""

    findings: dict[str, Any] = Field(description="Numeric fields and 'conditions'")
    note: str = Field(default="", max_length=2000)


class ManagerIn(BaseModel):
    """The named case manager of a high-risk case."""

    username: str = Field(min_length=1, max_length=64)


class PlanIn(BaseModel):
    """Personalised plans agreed with a critical maternal care centre."""

    centre_code: str = Field(description="Facility code of the critical maternal care centre")
    agreed_on: date
    management: str = Field(min_length=1, max_length=4000)
    treatment: str = Field(default="", max_length=4000)
    emergency: str = Field(min_length=1, max_length=4000)


class TertiaryAssessmentIn(BaseModel):
    """A red case's assessment at a tertiary hospital (continue the pregnancy or not)."""

    facility_code: str
    on: date
    continue_pregnancy: bool


class BookingIn(BaseModel):
    """The facility booked for the delivery."""

    facility_code: str
    on: date | None = None


class FollowUpIn(BaseModel):
    """An extra follow-up planned by hand."""

    due_on: date
    kind: Literal["antenatal", "postpartum", "phone"] = "antenatal"
    note: str = Field(default="", max_length=2000)


class FollowUpDoneIn(BaseModel):
    """A follow-up carried out."""

    on: date
    note: str = Field(default="", max_length=2000)


class StepIn(BaseModel):
    """A PMTCT step carried out."""

    on: date
    note: str = Field(default="", max_length=2000)


class DeliveryIn(BaseModel):
    """The delivery outcome."""

    on: date
    facility_code: str | None = Field(default=None, description="Where (none: outside care)")
    outcome: Literal["live_birth", "stillbirth", "miscarriage", "termination"] = "live_birth"
    mode: Literal["vaginal", "caesarean", "assisted", "not_applicable"] = "vaginal"
    live_births: int = Field(default=1, ge=0, le=8)
    maternal_condition: Literal["stable", "unstable", "critical", "death"] = "stable"
    note: str = Field(default="", max_length=2000)


class PostpartumIn(BaseModel):
    """The 42-day postpartum assessment."""

    on: date
    stable: bool = Field(description="Whether every condition is stable")
    findings: dict[str, Any] = Field(default_factory=dict)
    note: str = Field(default="", max_length=2000)


class AcknowledgeIn(BaseModel):
    """Acknowledgement of an alert."""

    note: str = Field(default="", max_length=2000)
