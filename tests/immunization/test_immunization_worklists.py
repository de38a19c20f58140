"""Work lists and coverage from the database agree with the per-child engine, counted by hand."""

from __future__ import annotations

import datetime as dt
import random

from immunization_helpers import TODAY, setup
from sqlalchemy import select

from tiercare.auth.service import SYSTEM
from tiercare.immunization.forecast import forecast
from tiercare.immunization.models import Child
from tiercare.immunization.records import (
    DoseIn,
    child_records,
    engine_child,
    record_dose,
)
from tiercare.immunization.schedule import default_schedules
from tiercare.immunization.worklists import coverage, villages_below_target, work_list

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
