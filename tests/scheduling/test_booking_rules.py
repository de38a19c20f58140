"""Booking rules: release windows, quotas, quota return, overlaps, idempotency, cancellation."""

from datetime import date, timedelta

import pytest
from booking_helpers import add_residents, add_schedule, load_small_county, local
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, Actor
from tiercare.errors import ConflictError, InputError
from tiercare.scheduling.models import Slot
from tiercare.scheduling.service import (
    book,
    cancel_appointment,
    check_in,
    mark_no_show,
    mark_seen,
    reschedule_appointment,
    reserved_split,
)

DAY = date(2026, 12, 7)  # a Monday
RESIDENT = Actor(user_id=None, username="resident-app", role="village_doctor",
                 division_prefix="140725")


@pytest.fixture
def setup(session):
    load_small_county(session)
    residents = add_residents(session, 6)
    schedule = add_schedule(session, day=DAY, capacity=2, share=0.5)
    slots = list(session.scalars(select(Slot).where(Slot.schedule_id == schedule.id)
                                 .order_by(Slot.start)))
    return session, residents, slots


def test_reserved_split_brute_force():
    for n in range(1, 13):
        for cap in (1, 2, 3):
            for tenths in range(11):
                total = n * cap
                parts = reserved_split(total, tenths / 10, n, cap)
                # independent count in integers: ceil(tenths * total / 10)
                assert sum(parts) == -(-tenths * total // 10)
                assert all(0 <= p <= cap for p in parts)
                # every run of consecutive slots holds its fair share (within one place)
                for i in range(n):
                    for j in range(i + 1, n + 1):
                        assert abs(sum(parts[i:j]) - (j - i) * sum(parts) / n) < 1 + 1e-9


def test_slots_and_windows(setup):
    session, residents, slots = setup
    assert len(slots) == 6 and sum(s.referral_capacity for s in slots) == 6
    first = slots[0]
    general_opens = local(DAY - timedelta(days=7), "08:00")
    referral_opens = local(DAY - timedelta(days=14), "08:00")
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=first.id, resident_id=residents[0],
             now=general_opens - timedelta(minutes=1))
    assert err.value.reason == "outside_release_window"
    session.rollback()
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=first.id, resident_id=residents[0], pool="referral",
             referral_id=1, now=referral_opens - timedelta(minutes=1))
    assert err.value.reason == "outside_release_window"
    session.rollback()
    with pytest.raises(InputError):
        book(session, SYSTEM, slot_id=first.id, resident_id=residents[0], pool="referral")
    a, created = book(session, SYSTEM, slot_id=first.id, resident_id=residents[0],
                      pool="referral", referral_id=1, now=referral_opens)
    assert created and a.pool == "referral"
    session.commit()
    # general pool: one general place in a capacity-2 slot with one reserved
    now = general_opens + timedelta(hours=1)
    ref_slot = slots[1]
    assert ref_slot.referral_capacity == 1
    book(session, SYSTEM, slot_id=ref_slot.id, resident_id=residents[1], now=now)
    session.commit()
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=ref_slot.id, resident_id=residents[2], now=now)
    assert err.value.reason == "slot_full"
    session.rollback()
    # after the unused reserved place returns (24 h before), the general pool may take it
    late = local(DAY, "08:00") - timedelta(hours=23)
    a3, _ = book(session, SYSTEM, slot_id=ref_slot.id, resident_id=residents[2], now=late)
    assert a3.pool == "general"
    session.commit()
    session.refresh(ref_slot)
    assert (ref_slot.booked, ref_slot.referral_booked) == (2, 0)
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=ref_slot.id, resident_id=residents[3], pool="referral",
             referral_id=2, now=late)
    assert err.value.reason == "slot_full"
    session.rollback()


def test_overlap_idempotency_and_lifecycle(setup):
    session, residents, slots = setup
    now = local(DAY - timedelta(days=1), "09:00")
    a, created = book(session, SYSTEM, slot_id=slots[0].id, resident_id=residents[0],
                      idempotency_key="key-000001", now=now)
    session.commit()
    again, created_again = book(session, SYSTEM, slot_id=slots[0].id, resident_id=residents[0],
                                idempotency_key="key-000001", now=now)
    session.commit()
    assert (again.id, created, created_again) == (a.id, True, False)
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=slots[1].id, resident_id=residents[0],
             idempotency_key="key-000001", now=now)
    assert err.value.reason == "idempotency_key_reused"
    session.rollback()
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=slots[0].id, resident_id=residents[0], now=now)
    assert err.value.reason == "overlapping_appointment"
    session.rollback()
    # another schedule at the same time in another department overlaps too
    other = add_schedule(session, day=DAY, department="外科", start="08:05", end="08:25")
    other_slot = session.scalar(select(Slot).where(Slot.schedule_id == other.id)
                                .order_by(Slot.start))
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=other_slot.id, resident_id=residents[0], now=now)
    assert err.value.reason == "overlapping_appointment"
    session.rollback()
    # reschedule into the slot right after (no overlap with itself)
    moved = reschedule_appointment(session, SYSTEM, a.id, slot_id=slots[1].id, now=now)
    session.commit()
    session.refresh(slots[0])
    assert slots[0].booked == 0 and moved.slot_id == slots[1].id
    # cancellation deadline: 2 h before for residents, staff may still cancel
    late = local(DAY, "07:00")
    with pytest.raises(ConflictError) as err:
        cancel_appointment(session, RESIDENT, moved.id, now=late)
    assert err.value.reason == "past_cancellation_deadline"
    session.rollback()
    check_in(session, SYSTEM, moved.id, now=local(DAY, "08:05"))
    seen = mark_seen(session, SYSTEM, moved.id, now=local(DAY, "08:27"))
    session.commit()
    assert seen.status == "seen"
    with pytest.raises(ConflictError) as err:
        cancel_appointment(session, SYSTEM, moved.id, now=late)
    assert err.value.reason == "invalid_transition"
    session.rollback()
    b, _ = book(session, SYSTEM, slot_id=slots[3].id, resident_id=residents[1], now=now)
    session.commit()
    with pytest.raises(ConflictError) as err:
        mark_no_show(session, SYSTEM, b.id, now=now)
    assert err.value.reason == "too_early"
    session.rollback()
    assert mark_no_show(session, SYSTEM, b.id, now=local(DAY, "09:00")).status == "no_show"
    session.commit()
    with pytest.raises(ConflictError) as err:
        book(session, SYSTEM, slot_id=slots[2].id, resident_id=residents[2],
             now=local(DAY, "08:30"))
    assert err.value.reason == "slot_in_past"
