"""Tables of the resident index."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tiercare.db.base import Base, TimestampMixin, utcnow


class Resident(TimestampMixin, Base):
    """A resident (patient) of the county.

    The identity number is kept three ways: ``id_masked`` for lists, ``id_digest`` (keyed HMAC,
    unique) for look-ups and duplicate detection, and ``id_number`` which the service returns only
    to roles allowed to see identifiers. ``lock_version`` is bumped by every booking so that the
    bookings of one resident are serialised by the database (row lock / single writer).
    """

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    id_masked: Mapped[str] = mapped_column(String(18))
    id_digest: Mapped[str] = mapped_column(String(64), unique=True)
    id_number: Mapped[str] = mapped_column(String(18))
    phone: Mapped[str] = mapped_column(String(32), default="")
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    signed_facility_id: Mapped[int | None] = mapped_column(
        ForeignKey("facilities.id"), nullable=True, index=True
    )
    signed_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id"), nullable=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_residents_name_birth", "name", "birth_date", "village_code"),)


class ResidentMerge(Base):
    """History of a merge: which duplicate record was folded into which, by whom and why."""

    __tablename__ = "resident_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kept_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    moved: Mapped[str] = mapped_column(Text, default="")
