"""Work lists and coverage from the database agree with the per-child engine, counted by hand."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from immunization_helpers import SECRET, TODAY, VILLAGES, add_children, identity, setup
from sqlalchemy import select

from tiercare.auth.service import SYSTEM
from tiercare.errors import InputError
from tiercare.immunization.forecast import forecast
from tiercare.immunization.models import Booking, Child
from tiercare.immunization.records import (
    ChildIn,
    DoseIn,
    child_records,
    engine_child,
    record_dose,
    register_child,
)
from tiercare.immunization.schedule import default_schedules
from tiercare.immunization.sites import BookingIn, SessionIn, book, cancel_booking, open_session
from tiercare.immunization.worklists import (
    coverage,
    reminder_list,
    villages_below_target,
    work_list,
)

PROGRAMME = [("HepB", 0), ("BCG", 0), ("HepB", 1), ("IPV", 2), ("IPV", 3), ("bOPV", 4),
             ("DTaP", 3), ("DTaP", 4), ("MMR", 8), ("HepB", 6)]


def _histories(session, ids: list[int], seed: int) -> None:
    rng = random.Random(seed)
    for cid in ids:
        c = session.get(Child, cid)
        for vaccine, months in PROGRAMME:
            if rng.random() < 0.25:
                continue  # a gap
            day = c.birth_date + dt.timedelta(days=int(months * 30.5) + rng.choice([0, 3, 40]))
            if day <= TODAY:
                record_dose(session, SYSTEM, DoseIn(child_id=cid, vaccine=vaccine, given_on=day,
                                                    site_code="VS1"), today=TODAY)
    session.commit()


def test_immunization_work_list_and_coverage_by_hand(session):
    ids = setup(session, children=24)
    _histories(session, ids, 1)
    start, end = TODAY, TODAY + dt.timedelta(days=30)
    table = work_list(session, SYSTEM, start=start, end=end, site="VS1")
    expected = set()
    for cid in ids:
        c = session.get(Child, cid)
        result = forecast(engine_child(c, child_records(session, cid), as_of=start),
                          as_of=start)
        for s in result.series:
            if s.status in ("due", "overdue") or (s.status == "upcoming" and s.earliest <= end):
                expected.add((cid, s.vaccine, s.next_dose, s.status, s.earliest))
    got = {(r.child_id, r.vaccine, r.next_dose, r.status, r.earliest)
           for r in table.itertuples()}
    assert got == expected and expected
    assert table.iloc[0]["status"] == "overdue"
    assert not any("****" in p for p in table["phone"])  # admin sees phones
    # village doctor S1 serves 140725100201 only
    mine = work_list(session, SYSTEM, start=start, end=end, staff="S1")
    assert set(mine["village_code"]) == {"140725100201"}
    # coverage counted by hand
    as_of = TODAY
    table = coverage(session, SYSTEM, as_of=as_of, level="village")
    book = default_schedules()
    hepb = book.in_force(as_of).series_by_id["HepB"].regimens[-1].doses
    for village in table["division_code"].unique():
        for cohort in table[table["division_code"] == village]["cohort"].unique():
            kids = [session.get(Child, i) for i in ids]
            kids = [k for k in kids if k.village_code == village and k.birth_date.year == cohort]
            for rule in hepb:
                eligible = [k for k in kids if rule.min_age.after(k.birth_date) <= as_of]
                vaccinated = 0
                for k in eligible:
                    res = forecast(engine_child(k, child_records(session, k.id)), as_of=as_of)
                    invalid = {(d.vaccine, d.date) for d in res.invalid_doses}
                    valid = [r for r in child_records(session, k.id)
                             if r.vaccine == "HepB" and (r.vaccine, r.given_on) not in invalid]
                    vaccinated += len(valid) >= rule.number
                row = table[(table["division_code"] == village) & (table["cohort"] == cohort)
                            & (table["vaccine"] == "HepB") & (table["dose"] == rule.number)]
                if not eligible:
                    assert row.empty
                    continue
                assert (int(row["eligible"].iloc[0]), int(row["vaccinated"].iloc[0])) == \
                    (len(eligible), vaccinated)
    township = coverage(session, SYSTEM, as_of=as_of, level="township")
    assert set(township["division_code"]) <= {"140725100000", "140725200000"}
    below = villages_below_target(session, SYSTEM, as_of=as_of, vaccine="HepB", dose=1)
    assert below and all(0 <= v["coverage"] <= 1 for v in below)
    assert [v["coverage"] for v in below] == sorted(v["coverage"] for v in below)
    assert session.scalars(select(Child)).first() is not None


def test_coverage_groups_alternatives_by_the_series_chosen(session):
    """JE (JE-L or JE-I) and HepA (HepA-L or HepA-I) counted by hand on a six-child cohort.

    Born 2024-01-10 in one village, as of 2026-11-20 (2 years 10 months old):
    A JE-L at 8 m and 2 y, HepA-L at 18 m; B JE-I at 8 m, 8 m + 10 d and 2 y, HepA-I at 18 m and
    25 m; C nothing (follows the preferred JE-L / HepA-L); D JE-I at 13 m, HepA-I at 20 m;
    E JE-L at 6 m (too early: does not count, but JE-L was given first, so the JE-I at 10 m is
    not the chosen series); F JE-L at 14 m (late).
    """
    setup(session)
    birth = dt.date(2024, 1, 10)
    histories = {
        "A": [("JE-L", "2024-09-10"), ("JE-L", "2026-01-10"), ("HepA-L", "2025-07-10")],
        "B": [("JE-I", "2024-09-10"), ("JE-I", "2024-09-20"), ("JE-I", "2026-01-10"),
              ("HepA-I", "2025-07-10"), ("HepA-I", "2026-02-10")],
        "C": [],
        "D": [("JE-I", "2025-02-10"), ("HepA-I", "2025-09-10")],
        "E": [("JE-L", "2024-07-10"), ("JE-I", "2024-11-10")],
        "F": [("JE-L", "2025-03-10")],
    }
    for serial, (name, history) in enumerate(histories.items()):
        c = register_child(session, SYSTEM, ChildIn(
            name=name, identity_number=identity(birth, serial), village_code=VILLAGES[0],
            site_code="VS1", guardian_name="母亲", guardian_phone=f"1390000{serial:04d}"),
            secret=SECRET, today=TODAY)
        for vaccine, day in history:
            record_dose(session, SYSTEM, DoseIn(child_id=c.id, vaccine=vaccine,
                                                given_on=dt.date.fromisoformat(day),
                                                site_code="VS1"), today=TODAY)
    session.commit()
    table = coverage(session, SYSTEM, as_of=TODAY, level="village")
    assert set(table["division_code"]) == {VILLAGES[0]} and set(table["cohort"]) == {2024}

    def rows(vaccine: str) -> dict[int, tuple[int, int, int, int]]:
        part = table[table["vaccine"] == vaccine]
        return {int(r.dose): (int(r.eligible), int(r.vaccinated), int(r.timely_eligible),
                              int(r.timely)) for r in part.itertuples()}

    # (eligible, vaccinated, timely_eligible, timely) by dose
    assert rows("JE") == {
        1: (6, 4, 4, 1),  # A B D F; before 12 m: only A (JE-I has no "complete before")
        2: (6, 2, 0, 0),  # JE-L dose 2 at 2 y (A C E F), JE-I dose 2 at 8 m (B D): A and B
        3: (2, 1, 0, 0),  # JE-I dose 3 at 2 y: B and D eligible, B given; dose 4 at 6 y: none
    }
    assert rows("HepA") == {1: (6, 3, 4, 1), 2: (2, 1, 0, 0)}
    # the products' own rows: every child of the age is eligible, a product's doses count
    assert rows("JE-L") == {1: (6, 2, 6, 1), 2: (6, 1, 0, 0)}
    assert rows("JE-I")[1][:2] == (6, 2) and rows("HepA-I") == {1: (6, 2, 0, 0),
                                                                  2: (6, 1, 0, 0)}
    je = table[(table["vaccine"] == "JE") & (table["dose"] == 1)].iloc[0]
    assert je["coverage"] == pytest.approx(4 / 6) and je["timeliness"] == pytest.approx(1 / 4)
    assert bool(je["below_target"])  # default target 90 %
    # a group alone, and the planners' map of villages below target
    only = coverage(session, SYSTEM, as_of=TODAY, vaccines=["HepA"])
    assert set(only["vaccine"]) == {"HepA"}
    below = villages_below_target(session, SYSTEM, as_of=TODAY, vaccine="JE", dose=1)
    assert [(v["code"], v["eligible"], v["vaccinated"]) for v in below] == [(VILLAGES[0], 6, 4)]


def test_reminder_list_joins_bookings_and_due_doses(session):
    """Families to remind in a week: bookings standing in the period (not later, not cancelled),
    self-paid persons, children with a due dose; the dose a booking covers is marked."""
    ids = setup(session, children=3)  # at VS1, villages V0 V1 V2, overdue for everything
    away = add_children(session, 1, start=dt.date(2024, 6, 1), site="MV1")[0]  # village V0
    session.get(Child, away).name = "外来儿童"
    soon = open_session(session, SYSTEM, "VS1", SessionIn(on_date=TODAY + dt.timedelta(days=2)))
    later = open_session(session, SYSTEM, "VS1",
                         SessionIn(on_date=TODAY + dt.timedelta(days=20)))
    session.commit()
    for child, target in ((ids[0], soon), (ids[1], later), (ids[2], soon), (away, soon)):
        book(session, SYSTEM, BookingIn(session_id=target.id, vaccines=["HepB"],
                                        child_id=child), secret=SECRET)
    woman = identity(dt.date(1990, 3, 3), 7, sex="F")
    book(session, SYSTEM, BookingIn(session_id=soon.id, identity_number=woman, vaccines=["HPV"],
                                    name="王女士", phone="13900001111"),
         secret=SECRET, self_paid=True)
    cancelled = session.scalar(select(Booking).where(Booking.child_id == ids[2]))
    cancel_booking(session, SYSTEM, cancelled.id)
    session.commit()
    end = TODAY + dt.timedelta(days=7)
    items = reminder_list(session, SYSTEM, start=TODAY, end=end, site="VS1")
    by_name = {e["name"]: e for e in items}
    assert sorted(by_name) == sorted(["孩子0", "孩子1", "孩子2", "王女士", "外来儿童"])
    lines = work_list(session, SYSTEM, start=TODAY, end=end, site="VS1")
    for i, cid in enumerate(ids):
        mine = lines[lines["child_id"] == cid]
        entry = by_name[f"孩子{i}"]
        assert entry["child_id"] == cid and entry["due"]
        assert [(d["vaccine"], d["next_dose"], d["status"]) for d in entry["due"]] == list(
            zip(mine["vaccine"], mine["next_dose"], mine["status"], strict=True))
        assert {d["vaccine"] for d in entry["due"] if d["booked"]} == (
            {"HepB"} if i == 0 else set())
    assert [(b["on_date"], b["vaccines"]) for b in by_name["孩子0"]["bookings"]] == [
        (TODAY + dt.timedelta(days=2), ["HepB"])]
    assert by_name["孩子1"]["bookings"] == [] and by_name["孩子2"]["bookings"] == []
    visitor = by_name["外来儿童"]  # booked here, followed by MV1
    assert visitor["due"] == [] and len(visitor["bookings"]) == 1
    self_paid = by_name["王女士"]
    assert (self_paid["child_id"], self_paid["phone"], self_paid["bookings"][0]["vaccines"]) \
        == (None, "13900001111", ["HPV"])
    # overdue children first (from the start day), then the bookings of the third day
    assert [e["name"] for e in items][-2:] == sorted(["外来儿童", "王女士"])
    # a village doctor's villages: children living there, wherever they are followed
    s1 = reminder_list(session, SYSTEM, start=TODAY, end=end, staff="S1")
    assert {e["child_id"] for e in s1} == {ids[0], away}
    assert all(e["due"] for e in s1)
    with pytest.raises(InputError):
        reminder_list(session, SYSTEM, start=TODAY, end=TODAY - dt.timedelta(days=1), site="VS1")
    with pytest.raises(InputError):
        reminder_list(session, SYSTEM, start=TODAY, end=TODAY + dt.timedelta(days=90),
                      site="VS1")
