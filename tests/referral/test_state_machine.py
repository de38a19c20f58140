"""Every action from every status: allowed ones move on, refused ones answer 409, change nothing."""

from datetime import timedelta

import pytest
from referral_helpers import DAY, local, ready_county
from sqlalchemy import func, select

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import SYSTEM
from tiercare.errors import ConflictError, InputError
from tiercare.referral import service as rs
from tiercare.referral.models import Notification, Referral, ReferralEvent
from tiercare.scheduling.models import Appointment, Slot

NOW = local(DAY - timedelta(days=3), "09:00")
STATUSES = ["requested", "accepted", "declined", "scheduled", "arrived", "completed",
            "cancelled", "expired"]
# Hand-written expectation (independent of rs.TRANSITIONS): (status, action) -> new status.
ALLOWED = {
    ("requested", "accept"): "accepted", ("requested", "decline"): "declined",
    ("requested", "cancel"): "cancelled", ("requested", "expire"): "expired",
    ("accepted", "schedule"): "scheduled", ("accepted", "arrive"): "arrived",
    ("accepted", "cancel"): "cancelled",
    ("scheduled", "arrive"): "arrived", ("scheduled", "cancel"): "cancelled",
    ("arrived", "complete"): "completed",
}
ACTIONS = ["accept", "decline", "schedule", "arrive", "complete", "cancel", "expire"]


def _new(session, ctx, resident_index=0, urgency="routine"):
    r = rs.create_referral(session, ctx["doctor"], rs.ReferralIn(
        resident_id=ctx["residents"][resident_index], to_facility_code="H1", urgency=urgency,
        reason="胸痛", criteria=["chest_pain_nitro"], department="内科"), now=NOW)
    session.flush()
    return r


def _slot(session, ctx):
    return session.scalar(select(Slot).where(
        Slot.schedule_id == ctx["schedule"].id, Slot.booked < Slot.capacity).order_by(Slot.start))


def _bring_to(session, ctx, status):
    ctx["next"] = ctx.get("next", 0) + 1
    r = _new(session, ctx, ctx["next"] % len(ctx["residents"]))
    h = ctx["hospital"]
    path = {
        "requested": [], "accepted": ["accept"], "declined": ["decline"],
        "scheduled": ["accept", "schedule"], "arrived": ["accept", "schedule", "arrive"],
        "completed": ["accept", "schedule", "arrive", "complete"], "cancelled": ["cancel"],
        "expired": ["expire"],
    }[status]
    for step in path:
        _do(session, ctx, r.id, step, h)
    assert session.get(Referral, r.id).status == status
    return r


def _do(session, ctx, rid, action, actor=None):
    actor = actor or ctx["hospital"]
    if action == "decline":
        return rs.decline(session, actor, rid, reason="no bed", now=NOW)
    if action == "schedule":
        return rs.schedule(session, actor, rid, slot_id=_slot(session, ctx).id, now=NOW)
    if action == "arrive":
        return rs.arrive(session, actor, rid, now=NOW)
    if action == "cancel":
        return rs.cancel(session, ctx["doctor"], rid, reason="patient better", now=NOW)
    if action == "expire":
        return rs.transition(session, SYSTEM, rid, "expire", now=NOW)
    return rs.transition(session, actor, rid, action, now=NOW)


@pytest.fixture
def ctx(session):
    return ready_county(session, residents=60, capacity=12)


def test_every_transition(session, ctx):
    for status in STATUSES:
        for action in ACTIONS:
            r = _bring_to(session, ctx, status)
            events_before = session.scalar(select(func.count()).select_from(ReferralEvent))
            expected = ALLOWED.get((status, action))
            if expected is None:
                with pytest.raises(ConflictError) as err:
                    _do(session, ctx, r.id, action)
                assert err.value.reason == "invalid_transition", (status, action)
                assert session.get(Referral, r.id).status == status
                assert session.scalar(select(func.count()).select_from(ReferralEvent)) == \
                    events_before
            else:
                moved = _do(session, ctx, r.id, action)
                assert moved.status == expected, (status, action)
                stamp = getattr(moved, rs.TIMESTAMP[expected])
                assert stamp is not None
            session.commit()
    # every transition left an event, a notification and an audit entry
    n_events = session.scalar(select(func.count()).select_from(ReferralEvent))
    n_audit = session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.entity == "referral", AuditEntry.action.in_(ACTIONS)))
    n_created = session.scalar(select(func.count()).select_from(Referral))
    assert n_events == n_audit + n_created
    assert session.scalar(select(func.count()).select_from(Notification)) == n_events


def test_sides_and_side_effects(session, ctx):
    r = _new(session, ctx)
    with pytest.raises(ConflictError) as err:
        rs.transition(session, ctx["doctor"], r.id, "accept", now=NOW)
    assert err.value.reason == "not_your_side"
    with pytest.raises(ConflictError) as err:
        rs.cancel(session, ctx["hospital"], r.id, reason="x", now=NOW)
    assert err.value.reason == "not_your_side"
    with pytest.raises(InputError):
        rs.decline(session, ctx["hospital"], r.id, reason=" ", now=NOW)
    # accept-and-book: one transaction; cancel gives the reserved place back
    slot = _slot(session, ctx)
    done = rs.accept_and_book(session, ctx["hospital"], r.id, slot_id=slot.id, now=NOW)
    session.commit()
    assert done.status == "scheduled" and done.accepted_at and done.scheduled_at
    a = session.get(Appointment, done.appointment_id)
    assert (a.pool, a.referral_id, a.slot_id) == ("referral", r.id, slot.id)
    rs.cancel(session, ctx["doctor"], r.id, reason="patient better", now=NOW)
    session.commit()
    session.refresh(slot)
    assert session.get(Appointment, a.id).status == "cancelled"
    assert (slot.booked, slot.referral_booked) == (0, 0)


def test_accept_and_book_is_all_or_nothing(session):
    ctx = ready_county(session, capacity=1)
    slot = _slot(session, ctx)
    first = _new(session, ctx, 0)
    second = _new(session, ctx, 1)
    session.commit()
    rs.accept_and_book(session, ctx["hospital"], first.id, slot_id=slot.id, now=NOW)
    session.commit()
    with pytest.raises(ConflictError) as err:
        rs.accept_and_book(session, ctx["hospital"], second.id, slot_id=slot.id, now=NOW)
    assert err.value.reason in ("quota_full", "slot_full")
    session.rollback()
    assert session.get(Referral, second.id).status == "requested"


def test_time_limits_overdue_and_expiry(session, ctx):
    emergency = _new(session, ctx, 0, urgency="emergency")
    routine = _new(session, ctx, 1, urgency="routine")
    session.commit()
    assert rs.referral_dict(emergency, now=NOW + timedelta(minutes=9))["overdue"] is False
    assert rs.referral_dict(emergency, now=NOW + timedelta(minutes=11))["overdue"] is True
    assert rs.referral_dict(routine, now=NOW + timedelta(hours=23))["overdue"] is False
    total, items = rs.inbox(session, ctx["hospital"], overdue=True,
                            now=NOW + timedelta(minutes=11))
    assert [i["id"] for i in items] == [emergency.id]
    assert rs.expire_overdue(session, now=NOW + timedelta(hours=3)) == 1
    session.commit()
    assert session.get(Referral, emergency.id).status == "expired"
    assert session.get(Referral, routine.id).status == "requested"


def test_validation_and_down_referral(session, ctx):
    with pytest.raises(InputError) as err:
        rs.create_referral(session, ctx["doctor"], rs.ReferralIn(
            resident_id=ctx["residents"][0], to_facility_code="V2", urgency="soon",
            reason="x", criteria=["nonsense"]), now=NOW)
    fields = {p.field for p in err.value.problems}
    assert {"urgency", "criteria", "to_facility_code"} <= fields
    r = _bring_to(session, ctx, "arrived")
    plan = rs.FollowUpPlan(kind="chronic_disease", diagnosis="高血压",
                           instructions="每月随访血压", interval_days=30, visits=3)
    with pytest.raises(ConflictError):
        rs.down_refer(session, ctx["hospital"], _new(session, ctx, 1).id,
                      to_facility_code="T1", plan=plan, reason="stable", now=NOW)
    down = rs.down_refer(session, ctx["hospital"], r.id, to_facility_code="T1", plan=plan,
                         reason="病情稳定", criteria=["stable", "chronic_follow_up"], now=NOW)
    session.commit()
    assert (down.direction, down.parent_id, down.status) == ("down", r.id, "requested")
    with pytest.raises(ConflictError):
        rs.record_follow_up(session, ctx["centre"], down.id, kind="visit", note="bp 130/85",
                            now=NOW)
    rs.transition(session, ctx["centre"], down.id, "accept", now=NOW)
    rs.record_follow_up(session, ctx["centre"], down.id, kind="visit", note="bp 130/85",
                        now=NOW)
    session.commit()
    assert len(rs.follow_ups(session, down)) == 1
    total, notes = rs.notifications(session, ctx["centre"])
    assert total == 1 and notes[0]["kind"] == "referral_received"
