"""Small county + residents + a schedule, built through the services (the path users take)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM
from tiercare.identity import check_character
from tiercare.residents.service import ResidentIn, register_resident
from tiercare.scheduling.models import Schedule
from tiercare.scheduling.service import ScheduleIn, SessionIn, create_schedule, generate_slots

SECRET = "test-secret"
_REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "registry_helpers.py"


def _registry_helpers():  # type: ignore[no-untyped-def]
    name = "registry_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _REGISTRY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_small_county(session: Session) -> None:
    """The registry's tiny test county (H1 hospital, T1 centre, V1/V2 clinics)."""
    _registry_helpers().load_small_county(session)


def id_number(seq: int, *, born: str = "19800101", area: str = "140725") -> str:
    """A valid identity number with a 3-digit sequence derived from ``seq``."""
    first17 = f"{area}{born}{seq % 1000:03d}"
    return first17 + check_character(first17)


def add_residents(session: Session, n: int, *, village: str = "140725100201") -> list[int]:
    """``n`` residents with distinct identity numbers (committed)."""
    ids = []
    for i in range(n):
        born = (date(1950, 1, 1) + timedelta(days=37 * i + i // 1000)).strftime("%Y%m%d")
        r = register_resident(session, SYSTEM, ResidentIn(
            name=f"居民{i}", identity_number=id_number(i, born=born), village_code=village),
            secret=SECRET)
        ids.append(r.id)
    session.commit()
    return ids


def add_schedule(session: Session, *, day: date, capacity: int = 1, share: float = 0.3,
                 minutes: int = 10, start: str = "08:00", end: str = "09:00",
                 facility: str = "H1", department: str = "内科") -> Schedule:
    """A schedule for one weekday session and its slots on ``day`` (committed)."""
    schedule = create_schedule(session, SYSTEM, ScheduleIn(
        facility_code=facility, department=department, name=f"{department}门诊",
        slot_minutes=minutes, capacity_per_slot=capacity,
        weekly=[SessionIn(weekday=day.weekday(), start=start, end=end)],
        effective_from=day - timedelta(days=30), follows_holidays=False,
        referral_share=share))
    generate_slots(session, SYSTEM, schedule.id, start=day, end=day)
    session.commit()
    return schedule


def local(day: date, hhmm: str) -> datetime:
    """Asia/Shanghai wall clock as UTC."""
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=UTC) - timedelta(hours=8)
