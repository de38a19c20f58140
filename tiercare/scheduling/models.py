"""Tables of schedules, slots and appointments.

Never-oversell is a property of these tables, not of application locks:

* ``slots`` carries ``booked`` and ``referral_booked`` with CHECK constraints
  ``0 <= referral_booked <= referral_capacity <= capacity`` and ``0 <= booked <= capacity``;
  bookings increment them with a conditional ``UPDATE … WHERE booked < capacity`` whose row count
  says whether a place was won.
* ``appointments.idempotency_key`` is UNIQUE: a retried request finds the first booking.
* A partial UNIQUE index forbids two live appointments of one resident in one slot; overlapping
  slots are refused inside the transaction that holds the resident's row lock.
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
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tiercare.db.base import Base, TimestampMixin, utcnow
from tiercare.registry.models import Facility, StaffMember

#: Appointment statuses that hold a place in the slot.
LIVE_STATUSES = ("booked", "checked_in", "seen")
APPOINTMENT_STATUSES = ("booked", "checked_in", "seen", "cancelled", "no_show")
_LIVE_SQL = "status IN ('booked', 'checked_in', 'seen')"


class Schedule(TimestampMixin, Base):
    """A recurring weekly clinic session plan of one facility department (and clinician).

    ``weekly`` lists ``{"weekday": 0-6 (Monday = 0), "start": "08:00", "end": "11:30"}``
    sessions. Release and quota rules are copied from the booking policy in force when the
    schedule is created and can be changed per schedule.
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(128))
    expert: Mapped[bool] = mapped_column(Boolean, default=False)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity_per_slot: Mapped[int] = mapped_column(Integer, default=1)
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    follows_holidays: Mapped[bool] = mapped_column(Boolean, default=True)
    release_days: Mapped[int] = mapped_column(Integer)
    release_time: Mapped[str] = mapped_column(String(5))
    referral_share: Mapped[float] = mapped_column(Float)
    referral_release_days: Mapped[int] = mapped_column(Integer)
    referral_return_hours: Mapped[int] = mapped_column(Integer)
    cancel_deadline_hours: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    facility: Mapped[Facility] = relationship()
    clinician: Mapped[StaffMember | None] = relationship()

    __table_args__ = (
        CheckConstraint("slot_minutes BETWEEN 1 AND 240", name="slot_minutes_range"),
        CheckConstraint("capacity_per_slot >= 1", name="capacity_positive"),
        CheckConstraint("referral_share >= 0 AND referral_share <= 1", name="share_range"),
    )


class ScheduleException(Base):
    """A day on which a schedule is closed or runs different hours."""

    __tablename__ = "schedule_exceptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    on_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # closed | hours
    start: Mapped[str | None] = mapped_column(String(5), nullable=True)
    end: Mapped[str | None] = mapped_column(String(5), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("schedule_id", "on_date", "start"),)


class Slot(Base):
    """A bookable minute-precise time slot with its capacity and reserved referral places."""

    __tablename__ = "slots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer)
    referral_capacity: Mapped[int] = mapped_column(Integer, default=0)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    referral_booked: Mapped[int] = mapped_column(Integer, default=0)
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    referral_opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    quota_returns_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="open")

    facility: Mapped[Facility] = relationship()

    __table_args__ = (
        UniqueConstraint("schedule_id", "start"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        CheckConstraint(
            "referral_booked >= 0 AND referral_booked <= referral_capacity",
            name="referral_within_quota",
        ),
        CheckConstraint("referral_capacity >= 0 AND referral_capacity <= capacity",
                        name="quota_within_capacity"),
        CheckConstraint("referral_booked <= booked", name="referral_part_of_booked"),
        Index("ix_slots_facility_start", "facility_id", "start"),
    )


class Appointment(TimestampMixin, Base):
    """One resident's place in a slot, through the general pool or a referral quota."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pool: Mapped[str] = mapped_column(String(16))  # general | referral
    referral_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    request_fingerprint: Mapped[str] = mapped_column(String(128), default="")
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    booked_by: Mapped[str] = mapped_column(String(64), default="")
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    rescheduled_to_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    slot: Mapped[Slot] = relationship()

    __table_args__ = (
        Index("uq_appointments_live_resident_slot", "resident_id", "slot_id", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
        Index("ix_appointments_resident_start", "resident_id", "start"),
        CheckConstraint(
            "status IN ('booked', 'checked_in', 'seen', 'cancelled', 'no_show')",
            name="status_known",
        ),
        CheckConstraint("pool IN ('general', 'referral')", name="pool_known"),
    )
