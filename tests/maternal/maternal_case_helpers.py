"""Fixtures of the maternal case-management tests: the small county plus maternity facilities.

The small registry county (``tests/registry/registry_helpers.py``) is extended with a county
MCH hospital (critical maternal care centre, delivers) and a city tertiary hospital 0.3° north
of the county seat, and with one user per role of the workflow.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import SYSTEM, Actor, actor_for, hash_password
from tiercare.identity import check_character
from tiercare.registry.importing import import_rows
from tiercare.registry.models import Division, Facility

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_helpers import load_small_county  # noqa: E402

SECRET = "maternal-test-secret"
#: A fixed clock: 2026-03-02 10:00 in Shanghai.
NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 2)

MATERNITY = [
    {"code": "M1", "name": "县妇幼保健院", "type": "county_mch_hospital", "division_code": "140725100",
     "lon": "113.12", "lat": "37.9", "services": "antenatal;delivery",
     "centres": "critical_maternal;critical_neonatal"},
    {"code": "X1", "name": "市第一医院", "type": "city_tertiary_hospital", "division_code": "140725100",
     "level": "tertiary", "lon": "113.1", "lat": "38.2", "services": "antenatal;delivery",
     "centres": "critical_maternal"},
]
USERS = [
    # username, role, facility, division
    ("vdoc", "village_doctor", "V1", None),
    ("hosp", "facility_staff", "H1", None),
    ("mch", "facility_staff", "M1", None),
    ("yixiang", "planner", None, "140725200"),
]
PASSWORD = "maternal-pass-1"


def identity_number(n: int, *, born: dt.date = dt.date(1995, 4, 12), female: bool = True) -> str:
    """A valid identity number of the test county (sequence from ``n``)."""
    seq = (2 * n + (0 if female else 1)) % 1000
    first17 = f"140725{born:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


@functools.lru_cache(maxsize=1)
def password_hash() -> str:
    """The Argon2 hash of :data:`PASSWORD`, computed once per test process (Argon2 is slow on
    purpose)."""
    return hash_password(PASSWORD)


def load_maternal_county(session: Session) -> dict[str, Actor]:
    """Small county + maternity facilities + users; returns the actor of each username."""
    load_small_county(session)
    import_rows(session, "facilities", MATERNITY, actor=SYSTEM)
    actors: dict[str, Actor] = {}
    for username, role, facility_code, division_code in [*USERS, ("admin", "admin", None, None)]:
        facility = session.scalar(select(Facility).where(Facility.code == facility_code)) \
            if facility_code else None
        division = session.scalar(select(Division).where(
            Division.code == division_code.ljust(12, "0"))) if division_code else None
        user = User(username=username, full_name=username.upper(), role=role,
                    password_hash=password_hash(), facility_id=facility.id if facility else None,
                    division_id=division.id if division else None)
        session.add(user)
        session.flush()
        actors[username] = actor_for(session, user)
    session.commit()
    return actors


def woman(n: int, *, village: str = "140725100201", born: dt.date = dt.date(1995, 4, 12)
          ) -> dict[str, object]:
    """A new resident (woman) for a registration body."""
    return {"name": f"王{'一二三四五六七八九十'[n % 10]}{n}", "identity_number":
            identity_number(n, born=born), "village_code": village, "phone": "13800001234"}
