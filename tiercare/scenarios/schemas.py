"""Pydantic I/O of the scenario API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScenarioIn(BaseModel):
    """A scenario to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    division_code: str = Field(description="County (or other division) the scenario covers")
    road_network: str = Field(description="Name of a stored road network")
    changes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Changes: add, upgrade, downgrade, close, capacity, road_speed, add_road "
                    "(see tiercare.scenarios.service)",
    )


class RoadNetworkIn(BaseModel):
    """A road layer to store."""

    model_config = ConfigDict(extra="forbid")
    name: str
    division_code: str
    geojson: dict[str, Any]
    class_field: str = "class"
    speed_field: str = "speed_kmh"
