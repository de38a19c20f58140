"""Shared set-up of the immunisation tests: sites in the small test county, children, numbers."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM
from tiercare.identity import check_character
from tiercare.immunization.records import ChildIn, register_child
from tiercare.immunization.sites import SiteIn, StopIn, create_site

SECRET = "test-secret"
TODAY = dt.date(2026, 11, 20)
VILLAGES = ("140725100201", "140725100202", "140725200201")


def load_small_county(session: Session) -> None:
    """The registry's small county (tests/registry/registry_helpers.py)."""
    path = Path(__file__).resolve().parents[1] / "registry" / "registry_helpers.py"
    spec = importlib.util.spec_from_file_location("registry_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_small_county(session)


def identity(birth: dt.date, serial: int, *, sex: str = "F", county: str = "140725") -> str:
    """A valid GB 11643 number for a birth date (serial 0..499 → sequence with the sex)."""
    seq = 2 * serial + (1 if sex == "M" else 2)
    first17 = f"{county}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


def add_sites(session: Session) -> None:
    """A fixed site at T1 (with 15-minute slots off), a mobile vehicle and a temporary point."""
    create_site(session, SYSTEM, SiteIn(
        code="VS1", name="甲镇预防接种门诊", kind="fixed", facility_code="T1",
        division_code="140725100", capacity={"HepB": 20, "DTaP": 20, "MMR": 10, "HPV": 5}))
    create_site(session, SYSTEM, SiteIn(
        code="MV1", name="接种车", kind="mobile", facility_code="T1",
        division_code="140725200", capacity={"HepB": 5, "bOPV": 5},
        route=[StopIn(weekday=1, village_code="140725200201", place="南村村委会"),
               StopIn(weekday=3, village_code="140725100202", place="西村广场")]))
    create_site(session, SYSTEM, SiteIn(
        code="SL1", name="预约门诊", kind="fixed", facility_code="T1", division_code="140725100",
        slot_minutes=30, capacity={"HPV": 4, "Flu": 4}))
    session.flush()


def add_children(session: Session, n: int, *, start: dt.date = dt.date(2025, 3, 1),
                 site: str = "VS1") -> list[int]:
    """``n`` children born a week apart, alternately in the villages; returns their ids."""
    ids = []
    for i in range(n):
        birth = start + dt.timedelta(days=7 * i)
        c = register_child(session, SYSTEM, ChildIn(
            name=f"孩子{i}", identity_number=identity(birth, i % 400, sex="MF"[i % 2]),
            village_code=VILLAGES[i % len(VILLAGES)], site_code=site, guardian_name="母亲",
            guardian_phone=f"1380000{i:04d}"), secret=SECRET, today=TODAY)
        ids.append(c.id)
    return ids


def setup(session: Session, *, children: int = 0) -> list[int]:
    """County, sites and children, committed."""
    load_small_county(session)
    add_sites(session)
    ids = add_children(session, children)
    session.commit()
    return ids
