"""Tables of maternal case management (pregnancy file, assessments, follow-ups, alerts, reports).

A :class:`Pregnancy` is the case file (建册) of one pregnancy of one resident, from the first
antenatal visit to the 42-day postpartum assessment. Every screening, grading and postpartum
assessment is kept (:class:`MaternalAssessment`: the full history of re-grading); follow-ups,
reports to the county maternal and child health (MCH) institution and early-warning alerts hang
off the pregnancy. The woman herself is a :class:`tiercare.residents.models.Resident`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tiercare.db.base import Base, TimestampMixin, utcnow

PREGNANCY_STATUSES = ("screened", "awaiting_grading", "graded", "delivered", "closed")
"""``screened``: registered, screening negative (routine care); ``awaiting_grading``: positive
screen, to be graded at a secondary-or-higher hospital; ``graded``: managed by colour;
``delivered``: delivery recorded, waiting for the 42-day assessment; ``closed``."""
ASSESSMENT_KINDS = ("screening", "grading", "postpartum")
ALERT_KINDS = (
    "grading_overdue", "missed_follow_up", "colour_rising", "due_date_no_facility",
    "red_not_assessed_tertiary", "no_case_manager",
)
REPORT_EVENTS = ("case_opened", "colour_changed", "delivered", "closed")
_OPEN_STATUSES_SQL = "status <> 'closed'"


class Pregnancy(TimestampMixin, Base):
    """The case file of one pregnancy (建册), also the high-risk case file when high risk.

    ``village_code`` is copied from the resident at registration: scope checks and the
    county's lists by township use it without reading the resident's record.
    """

    __tablename__ = "maternal_pregnancies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    registered_on: Mapped[date] = mapped_column(Date)
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True)
    lmp: Mapped[date | None] = mapped_column(Date, nullable=True)
    edd: Mapped[date] = mapped_column(Date, index=True)
    gravidity: Mapped[int] = mapped_column(Integer, default=1)
    parity: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(24), index=True)
    colour: Mapped[str] = mapped_column(String(16), default="green", index=True)
    purple: Mapped[bool] = mapped_column(Boolean, default=False)
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    screening_positive: Mapped[bool] = mapped_column(Boolean, default=False)
    grading_due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    graded_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    case_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)
    case_manager_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True)
    case_manager_assigned_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True)
    delivery_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True)
    delivery_booked_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    tertiary_assessed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    tertiary_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True)
    continue_pregnancy: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    plan_centre_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True)
    plan_agreed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    pmtct: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivered_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    delivery: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    postpartum_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    postpartum_stable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    close_reason: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (
        CheckConstraint(
            "status IN ('screened', 'awaiting_grading', 'graded', 'delivered', 'closed')",
            name="status_known"),
        CheckConstraint("gravidity >= 1 AND parity >= 0 AND parity < gravidity",
                        name="gravidity_parity"),
        # one open pregnancy per woman: a second registration is refused by the database
        Index("uq_maternal_pregnancies_open_resident", "resident_id", unique=True,
              sqlite_where=text(_OPEN_STATUSES_SQL), postgresql_where=text(_OPEN_STATUSES_SQL)),
    )


class MaternalAssessment(Base):
    """One screening, grading or postpartum assessment with its findings and result."""

    __tablename__ = "maternal_assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pregnancy_id: Mapped[int] = mapped_column(
        ForeignKey("maternal_pregnancies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    on_date: Mapped[date] = mapped_column(Date)
    username: Mapped[str] = mapped_column(String(64))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"), nullable=True)
    gestational_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    findings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    colour: Mapped[str] = mapped_column(String(16))
    purple: Mapped[bool] = mapped_column(Boolean, default=False)
    previous_colour: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    management: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    table_family: Mapped[str] = mapped_column(String(48))
    table_version: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        CheckConstraint("kind IN ('screening', 'grading', 'postpartum')", name="kind_known"),
    )


class FollowUp(TimestampMixin, Base):
    """A planned contact with the woman (antenatal visit, postpartum visit, phone call)."""

    __tablename__ = "maternal_follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pregnancy_id: Mapped[int] = mapped_column(
        ForeignKey("maternal_pregnancies.id", ondelete="CASCADE"), index=True)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    planned_by: Mapped[str] = mapped_column(String(64))
    done_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    done_by: Mapped[str] = mapped_column(String(64), default="")
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        CheckConstraint("kind IN ('antenatal', 'postpartum', 'phone')", name="kind_known"),
    )


class CaseReport(Base):
    """What was reported to the county MCH institution about a case, and when."""

    __tablename__ = "maternal_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pregnancy_id: Mapped[int] = mapped_column(
        ForeignKey("maternal_pregnancies.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(24))
    colour: Mapped[str] = mapped_column(String(16))
    purple: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    reported_by: Mapped[str] = mapped_column(String(64))
    recipient_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_by: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        CheckConstraint("event IN ('case_opened', 'colour_changed', 'delivered', 'closed')",
                        name="event_known"),
    )


class MaternalAlert(Base):
    """An early-warning alert on a pregnancy, to the case manager and the county MCH.

    ``(pregnancy_id, kind, key)`` is unique: the same condition raises one alert, which is
    resolved when the condition ends and reopened if it comes back. ``level`` counts the
    escalations of an alert nobody acknowledged.
    """

    __tablename__ = "maternal_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pregnancy_id: Mapped[int] = mapped_column(
        ForeignKey("maternal_pregnancies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str] = mapped_column(String(64))
    colour: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                            nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledge_note: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("pregnancy_id", "kind", "key"),
        CheckConstraint("level >= 0", name="level_nonneg"),
    )


class CaseEvent(Base):
    """The timeline of a pregnancy file: who did what when (besides the audit log)."""

    __tablename__ = "maternal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pregnancy_id: Mapped[int] = mapped_column(
        ForeignKey("maternal_pregnancies.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    username: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
