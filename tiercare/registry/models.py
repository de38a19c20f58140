"""Registry tables."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tiercare.db.base import Base, TimestampMixin

DIVISION_LEVELS = ("province", "city", "county", "township", "village")


class Division(TimestampMixin, Base):
    """An administrative division with its 12-digit statistical code.

    ``prefix`` is the significant part of the code for the level (2, 4, 6, 9 or 12 digits); a
    division's subtree is every division whose code starts with that prefix.
    """

    __tablename__ = "divisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    prefix: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("divisions.id"), nullable=True, index=True
    )
    urban_rural_class: Mapped[str | None] = mapped_column(String(3), nullable=True)
    population: Mapped[int | None] = mapped_column(Integer, nullable=True)
    population_male: Mapped[int | None] = mapped_column(Integer, nullable=True)
    population_female: Mapped[int | None] = mapped_column(Integer, nullable=True)
    population_urban: Mapped[int | None] = mapped_column(Integer, nullable=True)
    population_rural: Mapped[int | None] = mapped_column(Integer, nullable=True)
    population_by_age: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Division | None] = relationship(remote_side=[id])

    __table_args__ = (
        CheckConstraint("population IS NULL OR population >= 0", name="population_nonneg"),
    )


class FacilityType(Base):
    """A configurable facility type (county general hospital, village clinic, …)."""

    __tablename__ = "facility_types"

    code: Mapped[str] = mapped_column(String(48), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(96))
    tier: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Facility(TimestampMixin, Base):
    """A health facility; closed facilities stay (``closed_on``) for past reports."""

    __tablename__ = "facilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    type_code: Mapped[str] = mapped_column(ForeignKey("facility_types.code"), index=True)
    level: Mapped[str] = mapped_column(String(16), default="primary")
    grade: Mapped[str] = mapped_column(String(16), default="")
    ownership: Mapped[str] = mapped_column(String(16), default="public")
    government_run: Mapped[bool] = mapped_column(Boolean, default=True)
    division_id: Mapped[int] = mapped_column(ForeignKey("divisions.id"), index=True)
    division_prefix: Mapped[str] = mapped_column(String(12), index=True)
    parent_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True
    )
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(String(256), default="")
    opened_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    centres: Mapped[list[str]] = mapped_column(JSON, default=list)
    building_m2: Mapped[float | None] = mapped_column(Float, nullable=True)

    division: Mapped[Division] = relationship()
    type: Mapped[FacilityType] = relationship()
    resources: Mapped[list[FacilityResource]] = relationship(
        back_populates="facility", cascade="all, delete-orphan"
    )

    @property
    def status(self) -> str:
        """``active`` or ``closed``."""
        return "closed" if self.closed_on is not None else "active"

    def resource(self, category: str, item: str) -> int:
        """Quantity of one resource (0 when not recorded)."""
        for res in self.resources:
            if res.category == category and res.item == item:
                return res.quantity
        return 0


class FacilityResource(Base):
    """Beds by kind, staff by cadre and key equipment of a facility."""

    __tablename__ = "facility_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(
        ForeignKey("facilities.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(16))  # beds | staff | equipment
    item: Mapped[str] = mapped_column(String(48))
    quantity: Mapped[int] = mapped_column(Integer)

    facility: Mapped[Facility] = relationship(back_populates="resources")

    __table_args__ = (
        UniqueConstraint("facility_id", "category", "item"),
        CheckConstraint("quantity >= 0", name="quantity_nonneg"),
    )


class StaffMember(TimestampMixin, Base):
    """A named member of staff (e.g. a village doctor) and the villages they serve."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(1), default="")
    cadre: Mapped[str] = mapped_column(String(32), index=True)
    qualification: Mapped[str] = mapped_column(String(64), default="")
    registration_number: Mapped[str] = mapped_column(String(64), default="")
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    facility: Mapped[Facility] = relationship()
    villages: Mapped[list[Division]] = relationship(secondary="staff_villages")

    @property
    def qualified(self) -> bool:
        """True when a qualification is recorded (licensed village doctor or physician)."""
        return bool(self.qualification.strip())


class StaffVillage(Base):
    """Which villages a member of staff serves."""

    __tablename__ = "staff_villages"

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    division_id: Mapped[int] = mapped_column(ForeignKey("divisions.id"), primary_key=True)


class MedicalGroup(TimestampMixin, Base):
    """A county medical group (医共体) or medical alliance (医联体)."""

    __tablename__ = "medical_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), default="county_medical_group")
    division_id: Mapped[int] = mapped_column(ForeignKey("divisions.id"), index=True)
    division_prefix: Mapped[str] = mapped_column(String(12), index=True)
    lead_facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    division: Mapped[Division] = relationship()
    lead_facility: Mapped[Facility] = relationship()
    members: Mapped[list[MedicalGroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan"
    )


class MedicalGroupMember(Base):
    """A facility's membership of a medical group, with the villages it serves."""

    __tablename__ = "medical_group_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("medical_groups.id", ondelete="CASCADE"), index=True
    )
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    role: Mapped[str] = mapped_column(String(32), default="member")
    served_village_codes: Mapped[list[str]] = mapped_column(JSON, default=list)

    group: Mapped[MedicalGroup] = relationship(back_populates="members")
    facility: Mapped[Facility] = relationship()

    __table_args__ = (UniqueConstraint("group_id", "facility_id"),)


class Checklist(Base):
    """A versioned standardisation checklist (village clinic, fever clinic, vaccination site)."""

    __tablename__ = "checklists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(48))
    version: Mapped[str] = mapped_column(String(32))
    effective_from: Mapped[date] = mapped_column(Date)
    title_zh: Mapped[str] = mapped_column(String(128))
    title_en: Mapped[str] = mapped_column(String(128))
    applies_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("code", "version"),)


class Assessment(TimestampMixin, Base):
    """One assessment of a facility against a checklist version."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    checklist_id: Mapped[int] = mapped_column(ForeignKey("checklists.id"))
    assessed_on: Mapped[date] = mapped_column(Date)
    assessor: Mapped[str] = mapped_column(String(64))
    answers: Mapped[dict[str, bool]] = mapped_column(JSON, default=dict)
    score: Mapped[float] = mapped_column(Float)
    unmet: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")

    facility: Mapped[Facility] = relationship()
    checklist: Mapped[Checklist] = relationship()
