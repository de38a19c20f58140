"""Tables of two-way referral: referrals, their transitions, follow-ups and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tiercare.db.base import Base, TimestampMixin, utcnow
from tiercare.registry.models import Facility
from tiercare.residents.models import Resident
from tiercare.scheduling import models as _scheduling_models  # noqa: F401  (appointments FK)

REFERRAL_STATUSES = ("requested", "accepted", "declined", "scheduled", "arrived", "completed",
                     "cancelled", "expired")


class Referral(TimestampMixin, Base):
    """An up- or down-referral of a resident from one facility to another."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # up | down
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    from_facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    to_facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    department: Mapped[str] = mapped_column(String(64), default="")
    service: Mapped[str] = mapped_column(String(64), default="")
    urgency: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    criteria: Mapped[list[str]] = mapped_column(JSON, default=list)
    criteria_version: Mapped[str] = mapped_column(String(32), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    follow_up_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="requested", index=True)
    requested_by: Mapped[str] = mapped_column(String(64), default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                   index=True)
    acknowledge_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    declined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id"), nullable=True
    )
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    resident: Mapped[Resident] = relationship()
    from_facility: Mapped[Facility] = relationship(foreign_keys=[from_facility_id])
    to_facility: Mapped[Facility] = relationship(foreign_keys=[to_facility_id])

    __table_args__ = (
        CheckConstraint("direction IN ('up', 'down')", name="direction_known"),
        CheckConstraint("urgency IN ('emergency', 'urgent', 'routine')", name="urgency_known"),
        CheckConstraint(
            "status IN ('requested', 'accepted', 'declined', 'scheduled', 'arrived', "
            "'completed', 'cancelled', 'expired')",
            name="status_known",
        ),
        CheckConstraint("from_facility_id <> to_facility_id", name="different_facilities"),
    )


class ReferralEvent(Base):
    """One timestamped transition of a referral (the audit log keeps the full before/after)."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    from_status: Mapped[str] = mapped_column(String(16), default="")
    to_status: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class FollowUp(Base):
    """A follow-up contact recorded by the primary side after a down-referral."""

    __tablename__ = "referral_follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), default="visit")
    note: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """An in-app notification for the users of a facility."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
