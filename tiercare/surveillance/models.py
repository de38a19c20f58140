"""Tables of fever-clinic surveillance: daily sentinel reports and the alerts they raise."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tiercare.db.base import Base, TimestampMixin, utcnow


class FeverReport(TimestampMixin, Base):
    """One day's counts of one fever clinic / consulting room for one age band.

    ``division_code`` is the 12-digit code of the sentinel's division when it reported (values
    stay with the unit they were reported for).
    """

    __tablename__ = "fever_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    facility_code: Mapped[str] = mapped_column(String(32))
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    report_date: Mapped[date] = mapped_column(Date, index=True)
    age_band: Mapped[str] = mapped_column(String(16))
    patients: Mapped[int] = mapped_column(Integer)
    tests: Mapped[int] = mapped_column(Integer)
    positives: Mapped[int] = mapped_column(Integer)
    referrals: Mapped[int] = mapped_column(Integer)
    reported_by: Mapped[str] = mapped_column(String(64), default="")
    comment: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("facility_id", "report_date", "age_band"),
        CheckConstraint("patients >= 0 AND tests >= 0 AND positives >= 0 AND referrals >= 0",
                        name="counts_nonneg"),
        CheckConstraint("positives <= tests", name="positives_le_tests"),
    )


class SurveillanceAlert(Base):
    """An aberration found by a detector, with the series that triggered it.

    ``level`` is ``facility`` (``series_code`` = facility code) or ``division`` (a 12-digit
    division code, e.g. the county); ``series`` holds ``[[date, count], …]`` of the days the
    detector looked at (baseline window up to the alerting day).
    """

    __tablename__ = "surveillance_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    series_code: Mapped[str] = mapped_column(String(32), index=True)
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    measure: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date, index=True)
    count: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    statistic: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    upper_bound: Mapped[float | None] = mapped_column(Float, nullable=True)
    series: Mapped[list[Any]] = mapped_column(JSON, default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    closed_by: Mapped[str] = mapped_column(String(64), default="")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("level", "series_code", "measure", "method", "day"),)
