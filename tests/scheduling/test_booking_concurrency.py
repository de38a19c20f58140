"""Many threads, each with its own session, fire bookings at one slot / one quota at once.

Runs on SQLite and on PostgreSQL; the exact number confirmed must equal the capacity (or the
quota), every other attempt must be refused with the right reason, and the stored counters
must agree with the appointments.
"""

import threading
from collections import Counter
from datetime import date, timedelta

import pytest
from booking_helpers import add_residents, add_schedule, load_small_county, local
from sqlalchemy import func, select

from tiercare.auth.service import SYSTEM
from tiercare.db.engine import session_factory
from tiercare.errors import ConflictError
from tiercare.scheduling.models import Appointment, Slot
from tiercare.scheduling.service import book

DAY = date(2026, 12, 8)
THREADS = 24


def _storm(engine, jobs):
    """Run ``jobs`` (kwargs for book) concurrently; returns the outcome of each."""
    factory = session_factory(engine)
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = [""] * len(jobs)

    def run(i: int) -> None:
        with factory() as session:
            barrier.wait()
            try:
                _, created = book(session, SYSTEM, **jobs[i])
                session.commit()
                outcomes[i] = "created" if created else "replayed"
            except ConflictError as exc:
                session.rollback()
                outcomes[i] = exc.reason

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(outcomes)


def _check_counters(session, slot_id):
    slot = session.get(Slot, slot_id, populate_existing=True)
    live = session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.slot_id == slot_id, Appointment.status == "booked"))
    live_ref = session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.slot_id == slot_id, Appointment.status == "booked",
        Appointment.pool == "referral"))
    assert (slot.booked, slot.referral_booked) == (live, live_ref)
    return slot


@pytest.fixture
def storm_setup(session, engine):
    load_small_county(session)
    residents = add_residents(session, THREADS)
    schedule = add_schedule(session, day=DAY, capacity=5, share=0.4, start="08:00",
                            end="08:10")
    slot = session.scalar(select(Slot).where(Slot.schedule_id == schedule.id))
    assert (slot.capacity, slot.referral_capacity) == (5, 2)
    return session, engine, residents, slot


def test_flash_crowd_general_pool_never_oversells(storm_setup):
    session, engine, residents, slot = storm_setup
    now = local(DAY, "07:00")  # general open, reserved places returned (24 h rule)
    outcome = _storm(engine, [dict(slot_id=slot.id, resident_id=r, now=now) for r in residents])
    assert outcome == Counter({"created": 5, "slot_full": THREADS - 5})
    session.rollback()
    assert _check_counters(session, slot.id).booked == 5


def test_flash_crowd_referral_quota(storm_setup):
    session, engine, residents, slot = storm_setup
    now = local(DAY - timedelta(days=10), "09:00")  # only the reserved places are open
    outcome = _storm(engine, [dict(slot_id=slot.id, resident_id=r, pool="referral",
                                   referral_id=i + 1, now=now)
                              for i, r in enumerate(residents)])
    assert outcome == Counter({"created": 2, "quota_full": THREADS - 2})
    # general pool before the reserved places return: only the 3 general places
    now = local(DAY - timedelta(days=3), "09:00")
    outcome = _storm(engine, [dict(slot_id=slot.id, resident_id=r, now=now)
                              for r in residents[2:]])
    assert outcome["created"] == 3
    session.rollback()
    slot = _check_counters(session, slot.id)
    assert (slot.booked, slot.referral_booked) == (5, 2)


def test_retries_with_one_key_book_once(storm_setup):
    session, engine, residents, slot = storm_setup
    now = local(DAY, "07:00")
    jobs = [dict(slot_id=slot.id, resident_id=residents[0], idempotency_key="retry-key-1",
                 now=now) for _ in range(12)]
    outcome = _storm(engine, jobs)
    assert outcome == Counter({"created": 1, "replayed": 11})
    session.rollback()
    assert _check_counters(session, slot.id).booked == 1


def test_one_resident_many_slots_at_once_gets_one(session, engine):
    load_small_county(session)
    residents = add_residents(session, 1)
    schedules = [add_schedule(session, day=DAY, capacity=3, share=0.0, minutes=minutes,
                              start="08:00", end="08:20", department=dept)
                 for dept, minutes in (("内科", 20), ("外科", 20), ("儿科", 20))]
    slot_ids = list(session.scalars(select(Slot.id).where(
        Slot.schedule_id.in_([s.id for s in schedules]))))
    assert len(slot_ids) == 3
    now = local(DAY, "07:00")
    outcome = _storm(engine, [dict(slot_id=s, resident_id=residents[0], now=now)
                              for s in slot_ids * 5])
    assert outcome == Counter({"created": 1, "overlapping_appointment": 14})
