"""Tables for stored road networks, scenarios and their evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tiercare.db.base import Base, TimestampMixin, utcnow


class RoadNetwork(TimestampMixin, Base):
    """A road layer (GeoJSON FeatureCollection, WGS84) that analyses and scenarios route on."""

    __tablename__ = "road_networks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    class_field: Mapped[str] = mapped_column(String(32), default="class")
    speed_field: Mapped[str] = mapped_column(String(32), default="speed_kmh")
    geojson: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Number of features in ``geojson``, kept so that listing layers reads no GeoJSON.
    feature_count: Mapped[int] = mapped_column(Integer, server_default="0")


class Scenario(TimestampMixin, Base):
    """A named set of changes to the registry's network (add, upgrade, close, roads…)."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    road_network_id: Mapped[int] = mapped_column(ForeignKey("road_networks.id"))
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(64), default="manual")


class ScenarioEvaluation(Base):
    """Metrics of a scenario next to its baseline, computed at one moment."""

    __tablename__ = "scenario_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"),
                                             index=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    thresholds: Mapped[list[float]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    villages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
