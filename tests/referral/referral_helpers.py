"""Actors and a ready county for the referral tests."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduling"))
from booking_helpers import (  # noqa: E402
    add_residents,
    add_schedule,
    load_small_county,
    local,
)

from tiercare.auth.service import Actor  # noqa: E402
from tiercare.registry.models import Facility  # noqa: E402

DAY = date(2026, 12, 9)  # a Wednesday

__all__ = ["DAY", "add_residents", "add_schedule", "local", "ready_county", "staff_of"]


def staff_of(session: Session, code: str, *, role: str = "facility_staff") -> Actor:
    """An actor working at facility ``code``."""
    f = session.scalar(select(Facility).where(Facility.code == code))
    return Actor(user_id=None, username=f"staff-{code}", role=role,
                 division_prefix=f.division_prefix, facility_id=f.id)


def ready_county(session: Session, *, residents: int = 3, capacity: int = 4) -> dict:
    """County + residents + an H1 schedule on DAY whose places are all reserved."""
    load_small_county(session)
    ids = add_residents(session, residents)
    schedule = add_schedule(session, day=DAY, capacity=capacity, share=1.0, start="08:00",
                            end="10:00", facility="H1")
    return {"residents": ids, "schedule": schedule,
            "doctor": staff_of(session, "V1", role="village_doctor"),
            "hospital": staff_of(session, "H1"), "centre": staff_of(session, "T1")}
