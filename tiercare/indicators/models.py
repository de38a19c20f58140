"""Tables of the indicators domain: data elements, data values, indicators, data sets, reports.

A data value keeps the division code and the facility tier *of the time it was reported*, so
that closing a facility or reorganising divisions later never moves past values: a value counts
for every division whose prefix its stored ``division_code`` starts with.
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
)
from sqlalchemy.orm import Mapped, mapped_column

from tiercare.db.base import Base, TimestampMixin, utcnow


class CatalogueVersion(Base):
    """Which version of the shipped indicator catalogue was loaded into the database."""

    __tablename__ = "indicator_catalogue_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    effective_from: Mapped[date] = mapped_column(Date)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataElement(TimestampMixin, Base):
    """A reported quantity (outpatient visits, admissions, costs in fen, fever patients…)."""

    __tablename__ = "data_elements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    value_type: Mapped[str] = mapped_column(String(16), default="count")  # count|money_fen|number
    unit_kind: Mapped[str] = mapped_column(String(16), default="facility")  # facility|division
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(32), default="")
    edited: Mapped[bool] = mapped_column(Boolean, default=False)


class Indicator(TimestampMixin, Base):
    """An indicator: ``factor × numerator / denominator`` with a target (expressions as text)."""

    __tablename__ = "indicators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    numerator: Mapped[str] = mapped_column(Text)
    denominator: Mapped[str] = mapped_column(Text, default="1")
    factor: Mapped[float] = mapped_column(Float, default=1.0)
    unit: Mapped[str] = mapped_column(String(32), default="")
    target: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_direction: Mapped[str] = mapped_column(String(8), default="min")  # min = "at least"
    target_source: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)


class DataSet(TimestampMixin, Base):
    """A report form: the elements a facility type reports each period, and its deadline."""

    __tablename__ = "data_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    period_type: Mapped[str] = mapped_column(String(8), default="month")
    facility_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    elements: Mapped[list[str]] = mapped_column(JSON, default=list)
    deadline_days: Mapped[int] = mapped_column(Integer, default=10)
    version: Mapped[str] = mapped_column(String(32), default="")
    edited: Mapped[bool] = mapped_column(Boolean, default=False)


class Scorecard(TimestampMixin, Base):
    """A performance scorecard: weighted indicators for some facility types."""

    __tablename__ = "scorecards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    facility_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[str] = mapped_column(String(32), default="")
    edited: Mapped[bool] = mapped_column(Boolean, default=False)


class ValidationRule(TimestampMixin, Base):
    """``left operator right`` over the elements of one report (and ``days``, ``beds``…)."""

    __tablename__ = "validation_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    data_set_code: Mapped[str] = mapped_column(ForeignKey("data_sets.code"), index=True)
    left: Mapped[str] = mapped_column(Text)
    operator: Mapped[str] = mapped_column(String(2))
    right: Mapped[str] = mapped_column(Text)
    message_zh: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(32), default="")


class DataValue(TimestampMixin, Base):
    """One value of one element for one unit and period.

    ``unit_code`` is a facility code (``unit_kind = "facility"``) or a 12-digit division code;
    ``division_code`` and ``tier`` are frozen at entry; ``year``/``quarter``/``month`` are set
    when the period lies inside one of them (for SQL roll-ups).
    """

    __tablename__ = "data_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    element_code: Mapped[str] = mapped_column(ForeignKey("data_elements.code"))
    unit_kind: Mapped[str] = mapped_column(String(16), default="facility")
    unit_code: Mapped[str] = mapped_column(String(32))
    division_code: Mapped[str] = mapped_column(String(12))
    tier: Mapped[str] = mapped_column(String(16), default="")
    period: Mapped[str] = mapped_column(String(16))
    period_type: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quarter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    value: Mapped[float] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text, default="")
    stored_by: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        UniqueConstraint("element_code", "unit_code", "period"),
        Index("ix_data_values_division_period", "division_code", "start_date"),
        Index("ix_data_values_element_start", "element_code", "start_date"),
    )


class ReportSubmission(TimestampMixin, Base):
    """Completeness and timeliness of one data-set report of one facility and period."""

    __tablename__ = "report_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_set_code: Mapped[str] = mapped_column(ForeignKey("data_sets.code"), index=True)
    facility_code: Mapped[str] = mapped_column(String(32), index=True)
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    period: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(64), default="")
    on_time: Mapped[bool] = mapped_column(Boolean, default=True)
    comment: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("data_set_code", "facility_code", "period"),)


class AccessRun(Base):
    """A stored planning access computation (population within 15/30/60 minutes)."""

    __tablename__ = "access_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessResult(Base):
    """Population of one division and the part within ``threshold`` minutes of a tier."""

    __tablename__ = "access_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("access_runs.id", ondelete="CASCADE"),
                                        index=True)
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    tier: Mapped[str] = mapped_column(String(48))
    threshold: Mapped[int] = mapped_column(Integer)
    covered: Mapped[float] = mapped_column(Float)
    population: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "division_code", "tier", "threshold"),
        CheckConstraint("covered >= 0 AND population >= 0", name="nonneg"),
    )


class AnalyticsValue(Base):
    """Materialised totals of one element by division prefix, tier and period (re-aggregation)."""

    __tablename__ = "analytics_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    element_code: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    division_prefix: Mapped[str] = mapped_column(String(12))
    period: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_analytics_values_lookup", "division_prefix", "period", "element_code"),
    )


def row_dict(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    """Selected attributes of a row as a plain dict (dates as ISO text)."""
    out: dict[str, Any] = {}
    for name in columns:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, date | datetime) else value
    return out


# The surveillance tables belong to the same migration branch ("indicators", 0401).
from tiercare.surveillance import models as surveillance_models  # noqa: E402,F401
