"""Sites (mobile route), sessions, bookings with capacity by vaccine and minute slots (concurrent,
SQLite and PostgreSQL), reminders, and stock with its alerts.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from immunization_helpers import SECRET, TODAY, identity, setup
from sqlalchemy import func, select

from tiercare.auth.service import SYSTEM
from tiercare.db.engine import session_factory
from tiercare.errors import ConflictError, InputError
from tiercare.immunization.models import Booking, SessionVaccine, VaccinationSession
from tiercare.immunization.records import DoseIn, record_dose
from tiercare.immunization.sites import (
    BookingIn,
    SessionIn,
    SiteIn,
    book,
    cancel_booking,
    create_site,
    open_session,
    reminders,
    session_dict,
)
from tiercare.immunization.stock import MoveIn, record_move, stock_report

TUESDAY = dt.date(2026, 12, 1)


def test_immunization_sites_slots_reminders_and_stock(session):
    ids = setup(session, children=3)
    s = open_session(session, SYSTEM, "MV1", SessionIn(on_date=TUESDAY))
    assert (s.village_code, s.place, s.start) == ("140725200201", "南村村委会", "08:30")
    with pytest.raises(InputError) as err:
        open_session(session, SYSTEM, "MV1", SessionIn(on_date=TUESDAY + dt.timedelta(days=1)))
    assert err.value.problems[0].code == "no_stop"
    with pytest.raises(ConflictError):
        open_session(session, SYSTEM, "MV1", SessionIn(on_date=TUESDAY))
    session.rollback()
    with pytest.raises(InputError) as err:
        create_site(session, SYSTEM, SiteIn(code="X", name="x", kind="mobile",
                                            division_code="140725100"))
    assert err.value.problems[0].field == "route"
    # minute slots, a self-paid booking, reminders
    s = open_session(session, SYSTEM, "SL1", SessionIn(on_date=TUESDAY, start="09:00",
                                                        end="10:00"))
    session.commit()
    info = session_dict(session, s)
    assert [x["start"] for x in info["slots"]] == ["09:00", "09:30"]
    woman = identity(dt.date(1990, 3, 3), 7, sex="F")
    with pytest.raises(InputError):
        book(session, SYSTEM, BookingIn(session_id=s.id, identity_number=woman,
                                        vaccines=["Flu"]), secret=SECRET, self_paid=True)
    session.rollback()
    b, created = book(session, SYSTEM, BookingIn(
        session_id=s.id, identity_number=woman, vaccines=["Flu"], slot_start="09:30",
        name="王女士", phone="13900001111", idempotency_key="k1"), secret=SECRET,
        self_paid=True)
    again, created2 = book(session, SYSTEM, BookingIn(
        session_id=s.id, identity_number=woman, vaccines=["Flu"], slot_start="09:30",
        idempotency_key="k1"), secret=SECRET, self_paid=True)
    assert created and not created2 and again.id == b.id
    session.commit()
    man = identity(dt.date(1980, 3, 3), 8, sex="M")
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, BookingIn(session_id=s.id, identity_number=man,
                                        vaccines=["Flu"], slot_start="09:30"), secret=SECRET)
    assert err.value.reason == "slot_full"
    session.rollback()
    total, items = reminders(session, SYSTEM, on_date=TUESDAY)
    assert total == 1
    assert [(r["name"], r["time"], r["vaccines"]) for r in items] == [("王女士", "09:30",
                                                                       ["Flu"])]
    assert reminders(session, SYSTEM, on_date=TUESDAY, site="NOPE") == (0, [])
    # stock
    record_move(session, SYSTEM, "VS1", MoveIn(vaccine="HepB", lot="A1", kind="receipt",
                                               doses=10, on_date=TODAY - dt.timedelta(days=40),
                                               expires_on=TODAY + dt.timedelta(days=30)))
    record_move(session, SYSTEM, "VS1", MoveIn(vaccine="MMR", lot="M1", kind="receipt",
                                               doses=5, on_date=TODAY - dt.timedelta(days=40),
                                               expires_on=TODAY - dt.timedelta(days=1)))
    record_move(session, SYSTEM, "VS1", MoveIn(vaccine="HepB", lot="A1", kind="wastage",
                                               doses=1, on_date=TODAY, reason="broken vial"))
    for cid in ids:
        record_dose(session, SYSTEM, DoseIn(child_id=cid, vaccine="HepB", given_on=TODAY,
                                            site_code="VS1", lot="A1"), today=TODAY)
    with pytest.raises(InputError):
        record_move(session, SYSTEM, "VS1", MoveIn(vaccine="HepB", lot="A1", kind="wastage",
                                                   doses=7, on_date=TODAY))
    report = stock_report(session, SYSTEM, "VS1", today=TODAY)
    lot = next(x for x in report["lots"] if x["lot"] == "A1")
    assert (lot["received"], lot["used"], lot["wasted"], lot["on_hand"]) == (10, 3, 1, 6)
    kinds = {(a["kind"], a["vaccine"]) for a in report["alerts"]}
    assert ("near_expiry", "HepB") in kinds and ("expired", "MMR") in kinds
    assert ("stock_out", "MMR") in kinds and ("stock_out", "DTaP") in kinds
    assert ("stock_out", "HepB") not in kinds


def test_immunization_booking_capacity_by_vaccine_concurrent(session, engine):
    ids = setup(session, children=30)
    s = open_session(session, SYSTEM, "VS1", SessionIn(on_date=TUESDAY, capacity=12,
                                                        vaccines={"HepB": 8, "MMR": 20}))
    session.commit()
    factory = session_factory(engine)
    barrier = threading.Barrier(len(ids))
    outcomes = [""] * len(ids)

    def run(i: int) -> None:
        with factory() as s2:
            barrier.wait()
            try:
                book(s2, SYSTEM, BookingIn(session_id=s.id, child_id=ids[i],
                                           vaccines=["HepB", "MMR"] if i % 2 else ["MMR"]),
                     secret=SECRET)
                s2.commit()
                outcomes[i] = "booked"
            except ConflictError as exc:
                s2.rollback()
                outcomes[i] = exc.reason

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(outcomes)
    session.expire_all()
    live = session.scalar(select(func.count()).select_from(Booking).where(
        Booking.status == "booked"))
    assert counts["booked"] == live == 12
    hepb = session.scalar(select(SessionVaccine).where(SessionVaccine.session_id == s.id,
                                                       SessionVaccine.vaccine == "HepB"))
    assert hepb.booked <= 8
    assert hepb.booked == sum(1 for b in session.scalars(select(Booking)) if "HepB" in b.vaccines
                              and b.status == "booked")
    assert session.get(VaccinationSession, s.id).booked == 12
    # one booking per person and session; cancelling gives the places back
    first = session.scalars(select(Booking).where(Booking.status == "booked")).first()
    with pytest.raises(ConflictError):
        book(session, SYSTEM, BookingIn(session_id=s.id, child_id=first.child_id,
                                        vaccines=["MMR"]), secret=SECRET)
    session.rollback()
    cancel_booking(session, SYSTEM, first.id)
    session.commit()
    assert session_dict(session, session.get(VaccinationSession, s.id))["free"] == 1
