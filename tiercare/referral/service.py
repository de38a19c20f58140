"""Two-way referral: requests, the state machine, accept-and-book, down-referral, inboxes.

State machine (every transition timestamped, written to ``referral_events`` and audited)::

    requested --accept--> accepted --schedule--> scheduled --arrive--> arrived
    requested --decline--> declined                accepted --arrive--> arrived (walk-in)
    requested --expire--> expired                  arrived --complete--> completed
    requested | accepted | scheduled --cancel--> cancelled

A transition is ONE conditional ``UPDATE … WHERE id = :id AND status = :from``: of two
concurrent clerks only one wins, the other gets 409 ``concurrent_change``. Accept-and-book runs
accept, the reserved-slot booking and schedule in the caller's single transaction, so a full
quota leaves the referral untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM, Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.paging import check_window
from tiercare.referral.models import FollowUp, Notification, Referral, ReferralEvent
from tiercare.referral.rules import (
    DIRECTIONS,
    URGENCIES,
    criteria_on,
    time_limits_on,
    travel_model_on,
)
from tiercare.registry.models import Division, Facility, MedicalGroupMember
from tiercare.residents.models import Resident
from tiercare.scheduling.models import Appointment, Slot
from tiercare.scheduling.service import as_utc, book, cancel_appointment, check_in

LEVEL_RANK = {"village": 0, "primary": 1, "secondary": 2, "tertiary": 3}

#: Allowed transitions: action → {from status: to status}.
TRANSITIONS: dict[str, dict[str, str]] = {
    "accept": {"requested": "accepted"},
    "decline": {"requested": "declined"},
    "schedule": {"accepted": "scheduled"},
    "arrive": {"scheduled": "arrived", "accepted": "arrived"},
    "complete": {"arrived": "completed"},
    "cancel": {"requested": "cancelled", "accepted": "cancelled", "scheduled": "cancelled"},
    "expire": {"requested": "expired"},
}
#: Which side may take an action: ``to`` = receiving facility, ``from`` = sending facility.
SIDE = {"accept": "to", "decline": "to", "schedule": "to", "arrive": "to", "complete": "to",
        "cancel": "from", "expire": "system"}
TIMESTAMP = {"accepted": "accepted_at", "declined": "declined_at", "scheduled": "scheduled_at",
             "arrived": "arrived_at", "completed": "completed_at", "cancelled": "cancelled_at",
             "expired": "expired_at"}


class Attachment(BaseModel):
    """A document sent with a referral (text inline, or a reference to a stored file)."""

    name: str = Field(min_length=1, max_length=128)
    content_type: str = Field(default="text/plain", max_length=64)
    text: str | None = Field(default=None, max_length=20000)
    url: str | None = Field(default=None, max_length=512)


class FollowUpPlan(BaseModel):
    """What the primary side should do after a down-referral."""

    kind: str = Field(description="chronic_disease | rehabilitation | other")
    diagnosis: str = Field(default="", max_length=256)
    instructions: str = Field(min_length=1, max_length=4000)
    interval_days: int = Field(default=30, ge=1, le=365)
    visits: int = Field(default=3, ge=1, le=52)


class ReferralIn(BaseModel):
    """A referral request as sent by the referring facility."""

    resident_id: int
    to_facility_code: str
    from_facility_code: str | None = Field(
        default=None, description="Defaults to the caller's facility")
    direction: str = Field(default="up", description="up | down")
    urgency: str = Field(default="routine", description="emergency | urgent | routine")
    reason: str = Field(min_length=1, max_length=2000)
    criteria: list[str] = Field(default_factory=list, description="Codes of the checklist met")
    summary: str = Field(default="", max_length=8000, description="Clinical summary")
    department: str = Field(default="", max_length=64)
    service: str = Field(default="", max_length=64, description="Needed service or centre")
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)
    follow_up_plan: FollowUpPlan | None = None
    parent_id: int | None = Field(default=None, description="Up-referral this one answers")


# --------------------------------------------------------------------------- helpers


def _facility_by_code(session: Session, code: str | None, field: str,
                      problems: list[Problem]) -> Facility | None:
    if not code:
        problems.append(Problem(reason="a facility is needed", field=field))
        return None
    facility = session.scalar(select(Facility).where(Facility.code == code))
    if facility is None:
        problems.append(Problem(reason=f"unknown facility '{code}'", field=field,
                                code="unknown_facility"))
    elif facility.closed_on is not None:
        problems.append(Problem(reason=f"facility '{code}' is closed", field=field,
                                code="closed_facility"))
    return facility


def acts_for(actor: Actor, facility: Facility) -> bool:
    """True when the actor works at ``facility`` or manages its area."""
    if actor.facility_id is not None:
        return actor.facility_id in (facility.id, facility.parent_facility_id)
    return actor.role in ("admin", "group_manager", "facility_staff") and \
        facility.division_prefix.startswith(actor.division_prefix)


def _notify(session: Session, facility_id: int, referral: Referral, kind: str,
            message: str) -> None:
    session.add(Notification(facility_id=facility_id, referral_id=referral.id, kind=kind,
                             message=message))


def _event(session: Session, referral: Referral, old: str, new: str, actor: Actor,
           note: str, now: datetime) -> None:
    session.add(ReferralEvent(referral_id=referral.id, at=now, from_status=old, to_status=new,
                              username=actor.username, note=note))


# --------------------------------------------------------------------------- create


def create_referral(session: Session, actor: Actor, data: ReferralIn, *,
                    now: datetime | None = None) -> Referral:
    """Validate and send a referral; the receiving facility is notified.

    Rules: known facilities, not the same; an up-referral goes to a higher tier (or beyond the
    group), a down-referral to a lower tier and carries a follow-up plan; criteria codes come
    from the checklist in force; the caller acts for the sending facility.
    """
    now = as_utc(now or utcnow())
    problems: list[Problem] = []
    if data.direction not in DIRECTIONS:
        problems.append(Problem(reason="direction must be up or down", field="direction"))
    if data.urgency not in URGENCIES:
        problems.append(Problem(reason=f"urgency must be one of {URGENCIES}", field="urgency"))
    from_code = data.from_facility_code
    if from_code is None and actor.facility_id is not None:
        own = session.get(Facility, actor.facility_id)
        from_code = own.code if own else None
    origin = _facility_by_code(session, from_code, "from_facility_code", problems)
    target = _facility_by_code(session, data.to_facility_code, "to_facility_code", problems)
    if origin is not None and not acts_for(actor, origin):
        problems.append(Problem(reason="you do not act for the sending facility",
                                field="from_facility_code", code="out_of_scope"))
    if origin is not None and target is not None and data.direction in DIRECTIONS:
        if origin.id == target.id:
            problems.append(Problem(reason="sending and receiving facility are the same",
                                    field="to_facility_code"))
        else:
            up = LEVEL_RANK.get(target.level, 1) > LEVEL_RANK.get(origin.level, 1)
            down = LEVEL_RANK.get(target.level, 1) < LEVEL_RANK.get(origin.level, 1)
            if data.direction == "up" and not up:
                problems.append(Problem(reason=f"an up-referral goes to a higher tier "
                                        f"({origin.level} → {target.level})",
                                        field="to_facility_code", code="wrong_direction"))
            if data.direction == "down" and not down:
                problems.append(Problem(reason=f"a down-referral goes to a lower tier "
                                        f"({origin.level} → {target.level})",
                                        field="to_facility_code", code="wrong_direction"))
    if data.direction == "down" and data.follow_up_plan is None:
        problems.append(Problem(reason="a down-referral needs a follow-up plan",
                                field="follow_up_plan"))
    version = criteria_on(now.date())
    if data.direction in DIRECTIONS:
        unknown = sorted(set(data.criteria) - version.codes(data.direction))
        if unknown:
            problems.append(Problem(reason=f"unknown criteria {unknown} (checklist "
                                    f"{version.version})", field="criteria",
                                    code="unknown_criteria"))
    resident = session.get(Resident, data.resident_id)
    if resident is None or not resident.active:
        problems.append(Problem(reason=f"unknown resident {data.resident_id}",
                                field="resident_id"))
    if data.parent_id is not None and session.get(Referral, data.parent_id) is None:
        problems.append(Problem(reason=f"unknown referral {data.parent_id}", field="parent_id"))
    for i, att in enumerate(data.attachments, start=1):
        if att.text is None and att.url is None:
            problems.append(Problem(reason="an attachment needs text or a url",
                                    field="attachments", row=i))
    if problems or origin is None or target is None or resident is None:
        raise InputError(problems)
    limit = time_limits_on(now.date()).limits[data.urgency]
    referral = Referral(
        number="tmp-" + uuid4().hex[:20], direction=data.direction, resident_id=resident.id,
        from_facility_id=origin.id, to_facility_id=target.id, department=data.department,
        service=data.service, urgency=data.urgency, reason=data.reason,
        criteria=sorted(set(data.criteria)), criteria_version=version.version,
        summary=data.summary, attachments=[a.model_dump() for a in data.attachments],
        follow_up_plan=data.follow_up_plan.model_dump() if data.follow_up_plan else None,
        parent_id=data.parent_id, status="requested", requested_by=actor.username,
        requested_at=now, acknowledge_by=now + timedelta(minutes=limit.acknowledge_minutes),
        expires_at=now + timedelta(minutes=limit.expire_minutes))
    session.add(referral)
    session.flush()
    referral.number = f"{'U' if data.direction == 'up' else 'D'}{now:%Y%m%d}-{referral.id:06d}"
    _event(session, referral, "", "requested", actor, data.reason[:200], now)
    word = "up-referral" if data.direction == "up" else "down-referral"
    _notify(session, target.id, referral, "referral_received",
            f"{data.urgency} {word} {referral.number} from {origin.name}")
    audit(session, actor, "create", "referral", str(referral.id),
          after={"number": referral.number, "direction": data.direction, "from": origin.code,
                 "to": target.code, "urgency": data.urgency, "resident": resident.id})
    session.flush()
    return referral


# --------------------------------------------------------------------------- reading


def may_see(actor: Actor, r: Referral) -> bool:
    """True when the actor acts for either side of the referral."""
    return acts_for(actor, r.from_facility) or acts_for(actor, r.to_facility) or (
        actor.facility_id is None and actor.role in ("admin", "group_manager", "planner")
        and (r.from_facility.division_prefix.startswith(actor.division_prefix)
             or r.to_facility.division_prefix.startswith(actor.division_prefix)))


def get_referral(session: Session, actor: Actor, referral_id: int, *,
                 audit_read: bool = True) -> Referral:
    """One referral visible to the actor (its read is audited: it holds health data)."""
    r = session.get(Referral, referral_id, populate_existing=True)
    if r is None or not may_see(actor, r):
        raise NotFoundError(f"referral {referral_id}")
    if audit_read:
        audit(session, actor, "read", "referral", str(r.id))
    return r


def referral_dict(r: Referral, *, now: datetime | None = None,
                  with_identity: bool = False, actor: Actor | None = None) -> dict[str, Any]:
    """A referral as plain data, with ``overdue`` when unanswered past its deadline."""
    now = as_utc(now or utcnow())

    def ts(value: datetime | None) -> str | None:
        return as_utc(value).isoformat() if value else None

    show_id = with_identity and actor is not None and actor.sees_identifiers
    return {
        "id": r.id, "number": r.number, "direction": r.direction, "status": r.status,
        "urgency": r.urgency, "resident_id": r.resident_id, "resident_name": r.resident.name,
        "resident_sex": r.resident.sex, "resident_birth_date": r.resident.birth_date.isoformat(),
        "resident_identity": r.resident.id_number if show_id else r.resident.id_masked,
        "from_facility_code": r.from_facility.code, "from_facility_name": r.from_facility.name,
        "to_facility_code": r.to_facility.code, "to_facility_name": r.to_facility.name,
        "department": r.department, "service": r.service, "reason": r.reason,
        "criteria": r.criteria, "criteria_version": r.criteria_version, "summary": r.summary,
        "attachments": r.attachments, "follow_up_plan": r.follow_up_plan,
        "parent_id": r.parent_id, "requested_by": r.requested_by,
        "requested_at": ts(r.requested_at), "acknowledge_by": ts(r.acknowledge_by),
        "expires_at": ts(r.expires_at), "accepted_at": ts(r.accepted_at),
        "declined_at": ts(r.declined_at), "decline_reason": r.decline_reason,
        "scheduled_at": ts(r.scheduled_at), "appointment_id": r.appointment_id,
        "arrived_at": ts(r.arrived_at), "completed_at": ts(r.completed_at),
        "cancelled_at": ts(r.cancelled_at), "expired_at": ts(r.expired_at),
        "overdue": r.status == "requested" and as_utc(r.acknowledge_by) < now,
    }


def events(session: Session, referral: Referral) -> list[dict[str, Any]]:
    """The referral's transitions, oldest first."""
    rows = session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == referral.id)
                           .order_by(ReferralEvent.at, ReferralEvent.id))
    return [{"at": as_utc(e.at).isoformat(), "from": e.from_status, "to": e.to_status,
             "by": e.username, "note": e.note} for e in rows]


def inbox(session: Session, actor: Actor, *, box: str = "incoming",
          status: str | None = None, direction: str | None = None, overdue: bool = False,
          now: datetime | None = None, offset: int = 0, limit: int = 50
          ) -> tuple[int, list[dict[str, Any]]]:
    """Referrals received (``incoming``) or sent (``outgoing``) by the actor's facility.

    Users without a facility see the referrals of every facility in their area. Open requests
    come first, most urgent and oldest first.
    """
    now = as_utc(now or utcnow())
    if box not in ("incoming", "outgoing"):
        raise InputError.single("box must be incoming or outgoing", field="box")
    check_window(offset, limit)
    column = Referral.to_facility_id if box == "incoming" else Referral.from_facility_id
    query = select(Referral).join(Facility, Facility.id == column)
    if actor.facility_id is not None:
        query = query.where(or_(Facility.id == actor.facility_id,
                                Facility.parent_facility_id == actor.facility_id))
    else:
        query = query.where(Facility.division_prefix.like(actor.division_prefix + "%"))
    if status:
        query = query.where(Referral.status == status)
    if direction:
        query = query.where(Referral.direction == direction)
    if overdue:
        query = query.where(Referral.status == "requested", Referral.acknowledge_by < now)
    urgency_rank = case({"emergency": 0, "urgent": 1}, value=Referral.urgency, else_=2)
    query = query.order_by((Referral.status != "requested"), urgency_rank,
                           Referral.requested_at.desc(), Referral.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    if rows:
        audit(session, actor, "list", "referral", box,
              detail="ids " + ",".join(str(r.id) for r in rows))
    return total or 0, [referral_dict(r, now=now) for r in rows]


# --------------------------------------------------------------------------- transitions


def transition(session: Session, actor: Actor, referral_id: int, action: str, *,
               note: str = "", now: datetime | None = None,
               values: dict[str, Any] | None = None) -> Referral:
    """Apply one state-machine action (see :data:`TRANSITIONS`).

    Raises
    ------
    ConflictError
        ``invalid_transition`` (not allowed from the current status), ``not_your_side``
        (e.g. the sender accepting its own referral), ``concurrent_change`` (another user
        changed it first).
    """
    if action not in TRANSITIONS:
        raise InputError.single(f"unknown action '{action}'", field="action")
    now = as_utc(now or utcnow())
    r = get_referral(session, actor, referral_id, audit_read=False)
    side = SIDE[action]
    if side == "to" and not acts_for(actor, r.to_facility):
        raise ConflictError("not_your_side", f"only {r.to_facility.name} may {action} this")
    if side == "from" and not acts_for(actor, r.from_facility):
        raise ConflictError("not_your_side", f"only {r.from_facility.name} may {action} this")
    if side == "system" and actor.role != "admin":
        raise ConflictError("not_your_side", "only the system expires referrals")
    old = r.status
    new = TRANSITIONS[action].get(old)
    if new is None:
        raise ConflictError("invalid_transition", f"cannot {action} a referral that is {old}")
    changes = {"status": new, TIMESTAMP[new]: now, **(values or {})}
    won = session.execute(
        update(Referral).where(Referral.id == r.id, Referral.status == old).values(**changes),
        execution_options={"synchronize_session": False}).rowcount
    if won != 1:
        raise ConflictError("concurrent_change", "the referral was changed by someone else")
    session.refresh(r)
    _event(session, r, old, new, actor, note, now)
    other = r.from_facility_id if side == "to" else r.to_facility_id
    _notify(session, other, r, f"referral_{new}", f"{r.number} {new}" + (
        f": {note}" if note else ""))
    audit(session, actor, action, "referral", str(r.id), before={"status": old},
          after={"status": new, **{k: str(v) for k, v in (values or {}).items()}}, detail=note)
    return r


def accept(session: Session, actor: Actor, referral_id: int, *, note: str = "",
           now: datetime | None = None) -> Referral:
    """Accept without booking yet (e.g. an emergency that comes straight in)."""
    return transition(session, actor, referral_id, "accept", note=note, now=now)


def decline(session: Session, actor: Actor, referral_id: int, *, reason: str,
            now: datetime | None = None) -> Referral:
    """Decline with a reason (required)."""
    if not reason.strip():
        raise InputError.single("a reason is needed to decline", field="reason")
    return transition(session, actor, referral_id, "decline", note=reason, now=now,
                      values={"decline_reason": reason})


def schedule(session: Session, actor: Actor, referral_id: int, *, slot_id: int,
             idempotency_key: str | None = None, now: datetime | None = None) -> Referral:
    """Book a reserved place for an accepted referral and mark it scheduled."""
    r = get_referral(session, actor, referral_id, audit_read=False)
    if r.status != "accepted":
        raise ConflictError("invalid_transition", f"cannot schedule a referral that is "
                            f"{r.status}")
    slot = session.get(Slot, slot_id)
    if slot is None or slot.facility_id != r.to_facility_id:
        raise InputError.single("the slot must belong to the receiving facility",
                                field="slot_id")
    appointment, _ = book(session, actor, slot_id=slot_id, resident_id=r.resident_id,
                          pool="referral", referral_id=r.id, idempotency_key=idempotency_key,
                          now=now)
    return transition(session, actor, r.id, "schedule", now=now,
                      note=f"appointment #{appointment.id}",
                      values={"appointment_id": appointment.id})


def accept_and_book(session: Session, actor: Actor, referral_id: int, *, slot_id: int,
                    idempotency_key: str | None = None, note: str = "",
                    now: datetime | None = None) -> Referral:
    """Accept and book a reserved slot in the same transaction (all or nothing).

    The first statement is the conditional UPDATE of the referral, so on SQLite the
    transaction holds the write lock before it reads slots.
    """
    accept(session, actor, referral_id, note=note, now=now)
    return schedule(session, actor, referral_id, slot_id=slot_id,
                    idempotency_key=idempotency_key, now=now)


def arrive(session: Session, actor: Actor, referral_id: int, *,
           now: datetime | None = None) -> Referral:
    """The patient arrived; a booked appointment is checked in at the same time."""
    r = transition(session, actor, referral_id, "arrive", now=now)
    if r.appointment_id is not None:
        a = session.get(Appointment, r.appointment_id)
        if a is not None and a.status == "booked":
            check_in(session, actor, a.id, now=now)
    return r


def complete(session: Session, actor: Actor, referral_id: int, *, note: str = "",
             now: datetime | None = None) -> Referral:
    """Treatment at the receiving facility is finished."""
    return transition(session, actor, referral_id, "complete", note=note, now=now)


def cancel(session: Session, actor: Actor, referral_id: int, *, reason: str,
           now: datetime | None = None) -> Referral:
    """The sender withdraws the referral; a booked reserved place is given back."""
    r = transition(session, actor, referral_id, "cancel", note=reason, now=now)
    if r.appointment_id is not None:
        a = session.get(Appointment, r.appointment_id)
        if a is not None and a.status == "booked":
            cancel_appointment(session, SYSTEM, a.id, reason=f"referral cancelled: {reason}",
                               now=now)
    return r


def expire_overdue(session: Session, *, now: datetime | None = None) -> int:
    """Mark unanswered referrals past their expiry as ``expired``; returns how many."""
    now = as_utc(now or utcnow())
    ids = list(session.scalars(select(Referral.id).where(
        Referral.status == "requested", Referral.expires_at < now)))
    done = 0
    for rid in ids:
        try:
            transition(session, SYSTEM, rid, "expire", now=now, note="no answer in time")
            done += 1
        except ConflictError:
            continue
    return done


# --------------------------------------------------------------------------- down-referral


def down_refer(session: Session, actor: Actor, parent_id: int, *, to_facility_code: str,
               plan: FollowUpPlan, reason: str, summary: str = "",
               criteria: list[str] | None = None, now: datetime | None = None) -> Referral:
    """Send the patient of an up-referral back to primary care with a follow-up plan."""
    parent = get_referral(session, actor, parent_id, audit_read=False)
    if parent.direction != "up" or parent.status not in ("arrived", "completed"):
        raise ConflictError("invalid_transition", "only an up-referral that arrived can be "
                            "answered by a down-referral")
    return create_referral(session, actor, ReferralIn(
        resident_id=parent.resident_id, to_facility_code=to_facility_code,
        from_facility_code=parent.to_facility.code, direction="down", urgency="routine",
        reason=reason, summary=summary, criteria=criteria or [], follow_up_plan=plan,
        department=parent.department, parent_id=parent.id), now=now)


def record_follow_up(session: Session, actor: Actor, referral_id: int, *, kind: str,
                     note: str, now: datetime | None = None) -> FollowUp:
    """The primary side records a follow-up of a down-referred patient."""
    r = get_referral(session, actor, referral_id, audit_read=False)
    if r.direction != "down":
        raise ConflictError("not_down_referral", "follow-ups belong to down-referrals")
    if not acts_for(actor, r.to_facility):
        raise ConflictError("not_your_side", "only the receiving primary unit records follow-ups")
    if r.status not in ("accepted", "arrived"):
        raise ConflictError("invalid_transition", f"cannot record a follow-up when {r.status}")
    row = FollowUp(referral_id=r.id, at=as_utc(now or utcnow()), username=actor.username,
                   kind=kind, note=note)
    session.add(row)
    session.flush()
    audit(session, actor, "create", "referral_follow_up", str(row.id),
          after={"referral": r.id, "kind": kind})
    return row


def follow_ups(session: Session, referral: Referral) -> list[dict[str, Any]]:
    """Follow-ups of a down-referral, oldest first."""
    rows = session.scalars(select(FollowUp).where(FollowUp.referral_id == referral.id)
                           .order_by(FollowUp.at))
    return [{"id": f.id, "at": as_utc(f.at).isoformat(), "by": f.username, "kind": f.kind,
             "note": f.note} for f in rows]


# --------------------------------------------------------------------------- notifications


def notifications(session: Session, actor: Actor, *, unread_only: bool = False,
                  offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Notifications of the actor's facility (newest first)."""
    if actor.facility_id is None:
        return 0, []
    query = select(Notification).where(Notification.facility_id == actor.facility_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.offset(offset).limit(limit))
    return total or 0, [{"id": n.id, "kind": n.kind, "message": n.message,
                         "referral_id": n.referral_id,
                         "created_at": as_utc(n.created_at).isoformat(),
                         "read": n.read_at is not None} for n in rows]


def mark_read(session: Session, actor: Actor, notification_id: int) -> None:
    """Mark one of the facility's notifications read."""
    changed = session.execute(update(Notification).where(
        Notification.id == notification_id, Notification.facility_id == actor.facility_id)
        .values(read_at=utcnow()), execution_options={"synchronize_session": False}).rowcount
    if changed != 1:
        raise NotFoundError(f"notification {notification_id}")


# --------------------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class Suggestion:
    """A candidate receiving facility for an up-referral."""

    facility_code: str
    facility_name: str
    level: str
    member_of_group: bool
    travel_minutes: float
    free_reserved: int
    has_service: bool


def suggest_receivers(session: Session, *, resident_id: int, service: str = "",
                      from_level: str = "village", now: datetime | None = None,
                      days: int = 14, limit: int = 10) -> list[Suggestion]:
    """Higher-tier facilities that offer ``service``, nearest first, then most free places.

    Travel time is the straight-line distance from the resident's village times the road
    factor of :func:`tiercare.referral.rules.travel_model_on` at its mean speed (the database
    holds no road network; the planning engine's network times can replace it where a
    network is loaded). ``service`` matches a facility's services or specialised centres.
    Facilities in the resident's county medical group come before those outside it at equal
    travel time.
    """
    now = as_utc(now or utcnow())
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFoundError(f"resident {resident_id}")
    village = session.scalar(select(Division).where(Division.code == resident.village_code))
    if village is None or village.lon is None or village.lat is None:
        raise InputError.single("the resident's village has no coordinates",
                                field="resident_id")
    model = travel_model_on(now.date())
    rank = LEVEL_RANK.get(from_level, 0)
    candidates = [f for f in session.scalars(select(Facility).where(
        Facility.closed_on.is_(None), Facility.lon.is_not(None)))
        if LEVEL_RANK.get(f.level, 1) > rank and LEVEL_RANK.get(f.level, 1) >= 2]
    if service:
        candidates = [f for f in candidates
                      if service in (f.services or []) or service in (f.centres or [])]
    if not candidates:
        return []
    members = set(session.scalars(select(MedicalGroupMember.facility_id)))
    free = dict(session.execute(
        select(Slot.facility_id, func.sum(Slot.referral_capacity - Slot.referral_booked))
        .where(Slot.facility_id.in_([f.id for f in candidates]), Slot.start > now,
               Slot.start < now + timedelta(days=days), Slot.status == "open")
        .group_by(Slot.facility_id)).all())
    out = [Suggestion(
        facility_code=f.code, facility_name=f.name, level=f.level,
        member_of_group=f.id in members,
        travel_minutes=round(model.seconds(village.lon, village.lat, f.lon, f.lat) / 60, 1),
        free_reserved=int(free.get(f.id) or 0), has_service=bool(service))
        for f in candidates]
    out.sort(key=lambda s: (s.travel_minutes, not s.member_of_group, -s.free_reserved,
                            s.facility_code))
    return out[:limit]


def first_free_reserved_slot(session: Session, facility_id: int, *, department: str = "",
                             now: datetime | None = None) -> Slot | None:
    """The earliest future slot with a free reserved place (open for referral booking)."""
    now = as_utc(now or utcnow())
    query = select(Slot).where(
        Slot.facility_id == facility_id, Slot.start > now, Slot.status == "open",
        Slot.referral_booked < Slot.referral_capacity, Slot.booked < Slot.capacity,
        Slot.referral_opens_at <= now).order_by(Slot.start).limit(1)
    if department:
        query = query.where(Slot.department == department)
    return session.scalar(query)

