"""Reference data shipped with TierCare (facility types, checklists, norms, blank-spot rules).

Each is a versioned data file under ``tiercare/registry/data``; ``seed_reference_data`` loads
the files into the database without overwriting rows an administrator has edited since.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.registry.models import Checklist, FacilityType

_DATA = resources.files("tiercare.registry") / "data"


def _read_csv(name: str) -> list[dict[str, str]]:
    with (_DATA / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def facility_type_rows() -> tuple[dict[str, str], ...]:
    """The shipped facility types."""
    return tuple(_read_csv("facility_types.csv"))


@dataclass(frozen=True)
class Norm:
    """A supply norm such as "physicians per 1,000 population ≥ 3.2"."""

    version: str
    effective_from: date
    indicator: str
    numerator: str
    denominator: str
    per: float
    target: float
    direction: str
    label_zh: str
    label_en: str
    source: str


@cache
def norms(as_of: date | None = None) -> tuple[Norm, ...]:
    """Norms of the newest version in force on ``as_of`` (today by default)."""
    as_of = as_of or date.today()
    rows = [
        Norm(
            version=r["version"],
            effective_from=date.fromisoformat(r["effective_from"]),
            indicator=r["indicator"],
            numerator=r["numerator"],
            denominator=r["denominator"],
            per=float(r["per"]),
            target=float(r["target"]),
            direction=r["direction"],
            label_zh=r["label_zh"],
            label_en=r["label_en"],
            source=r["source"],
        )
        for r in _read_csv("norms.csv")
    ]
    in_force = [n for n in rows if n.effective_from <= as_of]
    if not in_force:
        return ()
    newest = max(n.effective_from for n in in_force)
    version = next(n.version for n in in_force if n.effective_from == newest)
    return tuple(n for n in in_force if n.version == version)


@cache
def blank_spot_rules() -> dict[str, Any]:
    """The blank-spot rules (types that count, exemption distance)."""
    return json.loads((_DATA / "blank_spot_rules.json").read_text(encoding="utf-8"))


def shipped_checklists() -> list[dict[str, Any]]:
    """Every checklist version shipped with TierCare."""
    folder = _DATA / "checklists"
    return [
        json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


def seed_reference_data(session: Session) -> None:
    """Insert shipped facility types and checklist versions that are missing (idempotent)."""
    known_types = set(session.scalars(select(FacilityType.code)))
    for row in facility_type_rows():
        if row["code"] not in known_types:
            session.add(
                FacilityType(
                    code=row["code"],
                    name_zh=row["name_zh"],
                    name_en=row["name_en"],
                    tier=row["tier"],
                    category=row["category"],
                    sort_order=int(row["sort_order"]),
                )
            )
    known_lists = {(c.code, c.version) for c in session.scalars(select(Checklist))}
    for data in shipped_checklists():
        if (data["code"], data["version"]) not in known_lists:
            session.add(
                Checklist(
                    code=data["code"],
                    version=data["version"],
                    effective_from=date.fromisoformat(data["effective_from"]),
                    title_zh=data["title_zh"],
                    title_en=data["title_en"],
                    applies_to=data["applies_to"],
                    items=data["items"],
                    source=data.get("source", ""),
                )
            )
    session.flush()
