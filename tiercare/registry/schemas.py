"""Pydantic models of the registry API (input and output)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Page(BaseModel):
    """One page of a list."""

    total: int = Field(description="Number of matching items in the caller's scope")
    offset: int
    limit: int
    items: list[dict[str, Any]]


class DivisionIn(BaseModel):
    """A division to create or update (the code decides level and parent)."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="Division code with 2, 4, 6, 9 or 12 digits", examples=["140725100000"])
    name: str = Field(min_length=1, max_length=128)
    urban_rural_class: str | None = Field(default=None, description="城乡分类代码, e.g. 220")
    population: int | None = Field(default=None, ge=0)
    population_male: int | None = Field(default=None, ge=0)
    population_female: int | None = Field(default=None, ge=0)
    population_urban: int | None = Field(default=None, ge=0)
    population_rural: int | None = Field(default=None, ge=0)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)


class FacilityIn(BaseModel):
    """A facility to create or update."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    type: str = Field(description="Facility type code, see GET /api/v1/facility-types")
    division_code: str
    level: str | None = Field(default=None, description="primary | secondary | tertiary | village")
    grade: str = ""
    ownership: str = "public"
    government_run: bool | None = None
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    address: str = ""
    opened_on: date | None = None
    closed_on: date | None = None
    services: list[str] = Field(default_factory=list)
    centres: list[str] = Field(default_factory=list)
    building_m2: float | None = Field(default=None, ge=0)
    parent_code: str | None = None
    beds: dict[str, int] = Field(default_factory=dict, description="Beds by kind")
    staff: dict[str, int] = Field(default_factory=dict, description="Staff counts by cadre")
    equipment: dict[str, int] = Field(default_factory=dict, description="Key equipment counts")


class StaffIn(BaseModel):
    """A named member of staff (e.g. a village doctor)."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    sex: str = ""
    cadre: str
    qualification: str = ""
    registration_number: str = ""
    facility_code: str
    village_codes: list[str] = Field(default_factory=list)


class MedicalGroupIn(BaseModel):
    """A county medical group or medical alliance."""

    model_config = ConfigDict(extra="forbid")
    code: str
    name: str
    kind: str = "county_medical_group"
    division_code: str
    lead_facility_code: str


class ChecklistItemIn(BaseModel):
    """One item of a checklist."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    text_zh: str = Field(min_length=1)
    text_en: str = Field(min_length=1)
    weight: float = Field(default=1, gt=0, le=100)
    required: bool = True


class ChecklistIn(BaseModel):
    """A new version of a standardisation checklist (administrators)."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48,
                      description="e.g. village_clinic, fever_clinic, vaccination_site")
    version: str = Field(min_length=1, max_length=32)
    effective_from: date
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    applies_to: list[str] = Field(default_factory=list, description="Facility type codes")
    items: list[ChecklistItemIn] = Field(min_length=1)
    source: str = ""


class AssessmentIn(BaseModel):
    """An assessment of a facility against a checklist."""

    model_config = ConfigDict(extra="forbid")
    facility_code: str
    checklist_code: str
    checklist_version: str | None = Field(default=None, description="Default: newest in force")
    assessed_on: date
    assessor: str = Field(min_length=1)
    answers: dict[str, bool] = Field(description="Item code → met")
    notes: str = ""


class ImportReport(BaseModel):
    """Outcome of an import."""

    kind: str
    rows: int
    created: int
    updated: int
    unchanged: int
