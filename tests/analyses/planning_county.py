"""The small test county made ready for the planning pages: roads, township boundaries, users.

A main road west–east along 37.9°N at 60 km/h with 25 km/h spurs to the villages of the small
county of tests/registry/registry_helpers.py; the county square split into its two townships at
113.2°E.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM, create_user
from tiercare.registry.importing import import_boundaries
from tiercare.scenarios.service import store_road_network

PASSWORD = "planner-pass"


def _line(road_id: str, coords: list[list[float]], cls: str = "county",
          speed: int = 60) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": road_id, "class": cls, "speed_kmh": speed,
                                              "ref": road_id.upper()},
            "geometry": {"type": "LineString", "coordinates": coords}}


def _box(code: str, west: float, east: float) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code}, "geometry": {
        "type": "Polygon", "coordinates": [[[west, 37.8], [east, 37.8], [east, 38.0],
                                            [west, 38.0], [west, 37.8]]]}}


ROADS = {"type": "FeatureCollection", "features": [
    _line("main", [[113.0, 37.9], [113.05, 37.9], [113.1, 37.9], [113.3, 37.9], [113.4, 37.9]]),
    _line("east", [[113.1, 37.9], [113.11, 37.91]], "village", 25),
    _line("west", [[113.05, 37.9], [113.05, 37.85]], "village", 25),
    _line("south", [[113.3, 37.9], [113.3, 37.85]], "village", 25),
]}
BOUNDARIES = {"type": "FeatureCollection", "features": [
    _box("140725", 113.0, 113.4), _box("140725100", 113.0, 113.2),
    _box("140725200", 113.2, 113.4)]}


def prepare(session: Session) -> None:
    """Store the roads ("roads"), the boundaries, a planner and a village doctor; commit."""
    store_road_network(session, SYSTEM, name="roads", division_code="140725", geojson=ROADS)
    import_boundaries(session, json.dumps(BOUNDARIES).encode(), "b.geojson", actor=SYSTEM)
    create_user(session, username="planner", password=PASSWORD, role="planner",
                division_code="140725", full_name="王规划")
    create_user(session, username="doctor", password=PASSWORD, role="village_doctor",
                division_code="140725100201", facility_code="V1")
    session.commit()
