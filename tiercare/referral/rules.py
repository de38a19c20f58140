"""Versioned referral rules: criteria checklists, time limits per urgency, travel estimate.

All three are data files under ``tiercare/referral/data/`` with effective dates; a referral uses
the version in force on the day it is requested.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from tiercare.errors import InputError, Problem

DATA_DIR = Path(__file__).with_name("data")
URGENCIES = ("emergency", "urgent", "routine")
DIRECTIONS = ("up", "down")
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Criterion:
    """One item of a referral criteria checklist."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class CriteriaVersion:
    """Up- and down-referral criteria in force from ``effective_from``."""

    version: str
    effective_from: date
    up: tuple[Criterion, ...]
    down: tuple[Criterion, ...]

    def codes(self, direction: str) -> set[str]:
        """Codes valid for a direction."""
        return {c.code for c in (self.up if direction == "up" else self.down)}


@dataclass(frozen=True)
class TimeLimit:
    """How fast a referral of one urgency must be acknowledged, and when it expires (minutes)."""

    acknowledge_minutes: int
    expire_minutes: int


@dataclass(frozen=True)
class TimeLimitVersion:
    """Time limits per urgency in force from ``effective_from``."""

    version: str
    effective_from: date
    limits: dict[str, TimeLimit]


@dataclass(frozen=True)
class TravelModel:
    """Road-distance estimate: great-circle distance × ``road_factor`` at ``speed_kmh``."""

    version: str
    effective_from: date
    road_factor: float
    speed_kmh: float

    def seconds(self, lon1: float, lat1: float, lon2: float, lat2: float) -> float:
        """Estimated driving time in seconds between two WGS84 points.

        .. math:: t = \\frac{f \\cdot 2R\\arcsin\\sqrt{\\sin^2\\frac{\\Delta\\varphi}{2} +
                  \\cos\\varphi_1\\cos\\varphi_2\\sin^2\\frac{\\Delta\\lambda}{2}}}{v}

        Examples
        --------
        >>> round(TravelModel("x", date(2025, 1, 1), 1.0, 36.0).seconds(113, 38, 113, 38.1))
        1112
        """
        p1, p2 = math.radians(lat1), math.radians(lat2)
        dp, dl = p2 - p1, math.radians(lon2 - lon1)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        metres = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))
        return metres * self.road_factor / (self.speed_kmh / 3.6)


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))["versions"]


def _since(v: dict[str, Any], row: int, problems: list[Problem]) -> date:
    try:
        return date.fromisoformat(str(v.get("effective_from")))
    except ValueError:
        problems.append(Problem(reason="effective_from is not a date", field="effective_from",
                                row=row))
        return date.min


def parse_criteria(versions: list[dict[str, Any]]) -> list[CriteriaVersion]:
    """Validate criteria versions: unique codes, both languages present."""
    problems: list[Problem] = []
    out = []
    for i, v in enumerate(versions, start=1):
        since = _since(v, i, problems)
        lists = {}
        for direction in DIRECTIONS:
            items = []
            seen: set[str] = set()
            for item in v.get(direction, []):
                code = str(item.get("code", ""))
                if not code or code in seen or not item.get("zh") or not item.get("en"):
                    problems.append(Problem(reason=f"criterion '{code}' is duplicated or lacks "
                                            "a code / zh / en text", field=direction, row=i))
                    continue
                seen.add(code)
                items.append(Criterion(code, item["zh"], item["en"]))
            lists[direction] = tuple(items)
        out.append(CriteriaVersion(str(v.get("version", i)), since, lists["up"], lists["down"]))
    if problems:
        raise InputError(problems)
    return sorted(out, key=lambda c: c.effective_from)


def parse_time_limits(versions: list[dict[str, Any]]) -> list[TimeLimitVersion]:
    """Validate time-limit versions: every urgency, positive minutes, expiry after deadline."""
    problems: list[Problem] = []
    out = []
    for i, v in enumerate(versions, start=1):
        since = _since(v, i, problems)
        limits = {}
        for urgency in URGENCIES:
            item = (v.get("limits") or {}).get(urgency) or {}
            ack, exp = item.get("acknowledge_minutes"), item.get("expire_minutes")
            if not isinstance(ack, int) or not isinstance(exp, int) or not 0 < ack <= exp:
                problems.append(Problem(reason=f"{urgency}: need 0 < acknowledge_minutes ≤ "
                                        "expire_minutes", field=urgency, row=i))
                continue
            limits[urgency] = TimeLimit(ack, exp)
        out.append(TimeLimitVersion(str(v.get("version", i)), since, limits))
    if problems:
        raise InputError(problems)
    return sorted(out, key=lambda c: c.effective_from)


def parse_travel(versions: list[dict[str, Any]]) -> list[TravelModel]:
    """Validate travel-model versions (factor ≥ 1, speed > 0)."""
    problems: list[Problem] = []
    out = []
    for i, v in enumerate(versions, start=1):
        since = _since(v, i, problems)
        factor, speed = v.get("road_factor"), v.get("speed_kmh")
        if not isinstance(factor, int | float) or factor < 1:
            problems.append(Problem(reason="road_factor must be ≥ 1", field="road_factor", row=i))
        if not isinstance(speed, int | float) or speed <= 0:
            problems.append(Problem(reason="speed_kmh must be > 0", field="speed_kmh", row=i))
        if not problems:
            out.append(TravelModel(str(v.get("version", i)), since, float(factor),
                                   float(speed)))
    if problems:
        raise InputError(problems)
    return sorted(out, key=lambda c: c.effective_from)


def _in_force(versions: tuple[Any, ...], day: date, what: str) -> Any:
    valid = [v for v in versions if v.effective_from <= day]
    if not valid:
        raise InputError.single(f"no {what} in force on {day}", field="date")
    return valid[-1]


@lru_cache(maxsize=1)
def _criteria() -> tuple[CriteriaVersion, ...]:
    return tuple(parse_criteria(_load("criteria.json")))


@lru_cache(maxsize=1)
def _limits() -> tuple[TimeLimitVersion, ...]:
    return tuple(parse_time_limits(_load("time_limits.json")))


@lru_cache(maxsize=1)
def _travel() -> tuple[TravelModel, ...]:
    return tuple(parse_travel(_load("travel.json")))


def criteria_on(day: date) -> CriteriaVersion:
    """The referral criteria checklist in force on ``day``."""
    return _in_force(_criteria(), day, "referral criteria")


def time_limits_on(day: date) -> TimeLimitVersion:
    """The referral time limits in force on ``day``."""
    return _in_force(_limits(), day, "referral time limits")


def travel_model_on(day: date) -> TravelModel:
    """The straight-line travel estimate in force on ``day``."""
    return _in_force(_travel(), day, "travel model")
