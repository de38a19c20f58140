"""Scheduling rules: schedules and exceptions, slot generation, booking that never oversells.

Booking model
-------------
A slot has ``capacity`` places of which ``referral_capacity`` are reserved for referrals from
member primary units. With ``b`` = places booked and ``r`` = reserved places booked, a booking
through

* the **referral** pool wins a place iff ``r < referral_capacity`` and ``b < capacity``
  (from ``referral_opens_at``);
* the **general** pool wins a place iff ``b < capacity`` and either
  ``b - r < capacity - referral_capacity`` or the reserved places have returned to the general
  pool (``now ≥ quota_returns_at``) (from ``opens_at``).

Each test-and-increment is ONE conditional ``UPDATE`` whose row count decides; PostgreSQL
re-checks the ``WHERE`` on the latest row version after waiting for a concurrent writer, and
SQLite has a single writer, so concurrent requests can never push ``b`` past ``capacity`` (the
CHECK constraints on ``slots`` are a second guard). A resident's bookings are serialised by a
conditional update of the resident row taken first, so the overlap check that follows sees every
committed appointment of that resident. Idempotency keys are UNIQUE.

On PostgreSQL a request for a slot that is already full (most of a flash crowd) is refused
after one read, before any write; the refusal is re-derived from the row, so it is never
wrong about the capacity rule (a concurrent cancellation at worst makes it conservative).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import bindparam, literal, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.paging import fetch_page
from tiercare.registry.models import Facility, StaffMember
from tiercare.residents.models import Resident
from tiercare.scheduling.models import (
    LIVE_STATUSES,
    Appointment,
    Schedule,
    ScheduleException,
    Slot,
)
from tiercare.scheduling.rules import Calendar, china_calendar, parse_hhmm, policy_on

POOLS = ("general", "referral")
#: Roles that may change schedules and handle appointments at the desk.
STAFF_ROLES = {"admin", "facility_staff", "group_manager"}


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite returns naive UTC values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------- schedules


class SessionIn(BaseModel):
    """One weekly clinic session."""

    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start: str = Field(description="Local start time HH:MM")
    end: str = Field(description="Local end time HH:MM")


class ScheduleIn(BaseModel):
    """A weekly schedule template; omitted release / quota fields follow the booking policy."""

    facility_code: str
    department: str = Field(min_length=1, max_length=64)
    clinician_code: str | None = None
    name: str = Field(min_length=1, max_length=128)
    expert: bool = False
    slot_minutes: int | None = Field(default=None, ge=1, le=240)
    capacity_per_slot: int = Field(default=1, ge=1, le=100)
    weekly: list[SessionIn] = Field(min_length=1)
    effective_from: date
    effective_to: date | None = None
    follows_holidays: bool = True
    release_days: int | None = Field(default=None, ge=0, le=90)
    release_time: str | None = None
    referral_share: float | None = Field(default=None, ge=0, le=1)
    referral_release_days: int | None = Field(default=None, ge=0, le=120)
    referral_return_hours: int | None = Field(default=None, ge=0, le=720)
    cancel_deadline_hours: int | None = Field(default=None, ge=0, le=168)


def _facility(session: Session, actor: Actor, code: str, *, field: str) -> Facility:
    facility = session.scalar(select(Facility).where(Facility.code == code,
                                                     actor.facility_clause(Facility)))
    if facility is None:
        raise InputError.single(f"unknown facility '{code}' (or outside your scope)", field=field,
                                code="unknown_facility")
    return facility


def create_schedule(session: Session, actor: Actor, data: ScheduleIn) -> Schedule:
    """Validate and store a schedule (every problem reported at once)."""
    if actor.role not in STAFF_ROLES:
        raise InputError.single(f"role '{actor.role}' may not edit schedules", field="role",
                                code="forbidden")
    problems: list[Problem] = []
    facility = None
    try:
        facility = _facility(session, actor, data.facility_code, field="facility_code")
    except InputError as exc:
        problems.extend(exc.problems)
    clinician_id = None
    if data.clinician_code:
        staff = session.scalar(select(StaffMember).where(StaffMember.code == data.clinician_code))
        if staff is None:
            problems.append(Problem(reason=f"unknown staff '{data.clinician_code}'",
                                    field="clinician_code"))
        else:
            clinician_id = staff.id
    for i, s in enumerate(data.weekly, start=1):
        try:
            start, end = parse_hhmm(s.start, field="start"), parse_hhmm(s.end, field="end")
        except InputError as exc:
            problems.extend(Problem(reason=p.reason, field=f"weekly.{p.field}", row=i)
                            for p in exc.problems)
            continue
        if end <= start:
            problems.append(Problem(reason="session ends before it starts", field="weekly.end",
                                    row=i))
    if data.effective_to is not None and data.effective_to < data.effective_from:
        problems.append(Problem(reason="effective_to before effective_from",
                                field="effective_to"))
    release_time = data.release_time
    if release_time is not None:
        try:
            parse_hhmm(release_time, field="release_time")
        except InputError as exc:
            problems.extend(exc.problems)
    if problems or facility is None:
        raise InputError(problems)
    policy = policy_on(data.effective_from)
    share = data.referral_share
    if share is None:
        share = policy.referral_share_expert if data.expert else policy.referral_share
    schedule = Schedule(
        facility_id=facility.id, department=data.department, clinician_id=clinician_id,
        name=data.name, expert=data.expert,
        slot_minutes=data.slot_minutes or policy.slot_minutes,
        capacity_per_slot=data.capacity_per_slot,
        weekly=[s.model_dump() for s in data.weekly],
        effective_from=data.effective_from, effective_to=data.effective_to,
        follows_holidays=data.follows_holidays,
        release_days=policy.release_days if data.release_days is None else data.release_days,
        release_time=release_time or policy.release_time.strftime("%H:%M"),
        referral_share=share,
        referral_release_days=(policy.referral_release_days
                               if data.referral_release_days is None
                               else data.referral_release_days),
        referral_return_hours=(policy.referral_return_hours
                               if data.referral_return_hours is None
                               else data.referral_return_hours),
        cancel_deadline_hours=(policy.cancel_deadline_hours
                               if data.cancel_deadline_hours is None
                               else data.cancel_deadline_hours),
        policy_version=policy.version,
    )
    session.add(schedule)
    session.flush()
    audit(session, actor, "create", "schedule", str(schedule.id),
          after={"facility": facility.code, "department": data.department,
                 "weekly": schedule.weekly, "referral_share": share})
    return schedule


def schedule_dict(s: Schedule) -> dict[str, Any]:
    """A schedule as plain data."""
    return {
        "id": s.id, "facility_code": s.facility.code, "facility_name": s.facility.name,
        "department": s.department, "clinician_code": s.clinician.code if s.clinician else None,
        "name": s.name, "expert": s.expert, "slot_minutes": s.slot_minutes,
        "capacity_per_slot": s.capacity_per_slot, "weekly": s.weekly,
        "effective_from": s.effective_from.isoformat(),
        "effective_to": s.effective_to.isoformat() if s.effective_to else None,
        "follows_holidays": s.follows_holidays, "release_days": s.release_days,
        "release_time": s.release_time, "referral_share": s.referral_share,
        "referral_release_days": s.referral_release_days,
        "referral_return_hours": s.referral_return_hours,
        "cancel_deadline_hours": s.cancel_deadline_hours, "policy_version": s.policy_version,
        "active": s.active,
    }


def get_schedule(session: Session, actor: Actor, schedule_id: int) -> Schedule:
    """A schedule of a facility in the actor's scope."""
    s = session.get(Schedule, schedule_id)
    if s is None or session.scalar(select(Facility.id).where(
            Facility.id == s.facility_id, actor.facility_clause(Facility))) is None:
        raise NotFoundError(f"schedule {schedule_id}")
    return s


def add_exception(session: Session, actor: Actor, schedule_id: int, *, on_date: date,
                  kind: str, start: str | None = None, end: str | None = None,
                  reason: str = "") -> ScheduleException:
    """Close a schedule for a day (``closed``) or run one session of other hours (``hours``)."""
    schedule = get_schedule(session, actor, schedule_id)
    if kind not in ("closed", "hours"):
        raise InputError.single("kind must be closed or hours", field="kind")
    if kind == "hours":
        if start is None or end is None:
            raise InputError.single("start and end are needed for kind 'hours'", field="start")
        if parse_hhmm(end, field="end") <= parse_hhmm(start, field="start"):
            raise InputError.single("end must be after start", field="end")
    row = ScheduleException(schedule_id=schedule.id, on_date=on_date, kind=kind, start=start,
                            end=end, reason=reason)
    session.add(row)
    session.flush()
    audit(session, actor, "create", "schedule_exception", str(row.id),
          after={"schedule": schedule.id, "date": on_date.isoformat(), "kind": kind})
    return row


def list_schedules(session: Session, actor: Actor, *, facility: str | None = None,
                   offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Schedules of facilities in the actor's scope."""
    query = (select(Schedule).join(Facility, Facility.id == Schedule.facility_id)
             .where(actor.facility_clause(Facility),
                    Facility.division_prefix.like(actor.division_prefix + "%"))
             .order_by(Schedule.id))
    if facility:
        query = query.where(Facility.code == facility)
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [schedule_dict(s) for s in rows]


# --------------------------------------------------------------------------- slot generation


def reserved_split(total_places: int, share: float, n_slots: int, capacity: int) -> list[int]:
    """Reserved places per slot so that the day reserves ``ceil(share × total)``, spread evenly.

    Slot ``i`` gets ``⌊(i+1)·R/n⌋ − ⌊i·R/n⌋`` places (never more than its capacity), so any
    run of consecutive slots holds its fair share of the quota.

    Examples
    --------
    >>> reserved_split(10, 0.3, 10, 1)
    [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    """
    reserved = min(total_places, math.ceil(round(share * total_places, 9)))
    return [min(capacity, (i + 1) * reserved // n_slots - i * reserved // n_slots)
            for i in range(n_slots)]


@dataclass(frozen=True)
class DayPlan:
    """The sessions a schedule runs on one day (local times) and why."""

    day: date
    sessions: tuple[tuple[time, time], ...]
    note: str


def day_plan(schedule: Schedule, day: date, exceptions: list[ScheduleException], *,
             calendar: Calendar, makeup_weekday: int) -> DayPlan:
    """Which sessions run on ``day``: exceptions first, then holidays, then the weekly plan."""
    if day < schedule.effective_from or (schedule.effective_to and day > schedule.effective_to):
        return DayPlan(day, (), "outside validity")
    todays = [e for e in exceptions if e.on_date == day]
    if any(e.kind == "closed" for e in todays):
        return DayPlan(day, (), "closed: " + "; ".join(e.reason for e in todays))
    if todays:
        return DayPlan(day, tuple((time.fromisoformat(e.start or ""), time.fromisoformat(
            e.end or "")) for e in todays), "special hours")
    weekday = day.weekday()
    note = "weekly"
    if schedule.follows_holidays:
        rule = calendar.rule(day)
        if rule is not None and rule.kind == "holiday":
            return DayPlan(day, (), f"public holiday: {rule.name_zh}")
        if rule is not None and rule.kind == "workday" and weekday >= 5:
            weekday = makeup_weekday
            note = f"make-up working day: {rule.name_zh}"
    sessions = tuple(sorted((time.fromisoformat(s["start"]), time.fromisoformat(s["end"]))
                            for s in schedule.weekly if s["weekday"] == weekday))
    return DayPlan(day, sessions, note)


def generate_slots(session: Session, actor: Actor, schedule_id: int, *, start: date,
                   end: date, calendar: Calendar | None = None) -> int:
    """Create the slots of a schedule for ``start … end`` (inclusive); existing ones are kept.

    Returns
    -------
    int
        Number of slots created.
    """
    if end < start:
        raise InputError.single("end before start", field="end")
    if (end - start).days > 400:
        raise InputError.single("at most 400 days at a time", field="end")
    schedule = get_schedule(session, actor, schedule_id)
    calendar = calendar or china_calendar()
    exceptions = list(session.scalars(select(ScheduleException).where(
        ScheduleException.schedule_id == schedule.id)))
    existing = {as_utc(t) for t in session.scalars(select(Slot.start).where(
        Slot.schedule_id == schedule.id))}
    release_at = time.fromisoformat(schedule.release_time)
    created = 0
    rows: list[dict[str, Any]] = []
    day = start
    while day <= end:
        policy = policy_on(day)
        zone = ZoneInfo(policy.timezone)
        plan = day_plan(schedule, day, exceptions, calendar=calendar,
                        makeup_weekday=policy.makeup_day_weekday)
        starts: list[datetime] = []
        step = timedelta(minutes=schedule.slot_minutes)
        for s_start, s_end in plan.sessions:
            at = datetime.combine(day, s_start, tzinfo=zone)
            stop = datetime.combine(day, s_end, tzinfo=zone)
            while at + step <= stop:
                starts.append(at)
                at += step
        if starts:
            cap = schedule.capacity_per_slot
            quota = reserved_split(cap * len(starts), schedule.referral_share, len(starts), cap)
            opens = datetime.combine(day - timedelta(days=schedule.release_days), release_at,
                                     tzinfo=zone).astimezone(UTC)
            ref_opens = datetime.combine(day - timedelta(days=schedule.referral_release_days),
                                         release_at, tzinfo=zone).astimezone(UTC)
            for at, reserved in zip(starts, quota, strict=True):
                at_utc = at.astimezone(UTC)
                if at_utc in existing:
                    continue
                rows.append(dict(
                    schedule_id=schedule.id, facility_id=schedule.facility_id,
                    department=schedule.department, clinician_id=schedule.clinician_id,
                    start=at_utc, end=at_utc + step, capacity=cap, referral_capacity=reserved,
                    booked=0, referral_booked=0, opens_at=min(opens, at_utc),
                    referral_opens_at=min(ref_opens, opens, at_utc),
                    quota_returns_at=at_utc - timedelta(hours=schedule.referral_return_hours),
                    status="open"))
        day += timedelta(days=1)
    if rows:
        session.execute(Slot.__table__.insert(), rows)
        created = len(rows)
    audit(session, actor, "generate", "slots", str(schedule.id),
          after={"from": start.isoformat(), "to": end.isoformat(), "created": created})
    return created


def slot_dict(s: Slot, *, now: datetime | None = None) -> dict[str, Any]:
    """A slot with its free places per pool at ``now``."""
    now = now or utcnow()
    returned = as_utc(s.quota_returns_at) <= now
    general_cap = s.capacity if returned else s.capacity - s.referral_capacity
    general_used = s.booked if returned else s.booked - s.referral_booked
    free = s.capacity - s.booked
    return {
        "id": s.id, "schedule_id": s.schedule_id, "facility_code": s.facility.code,
        "department": s.department, "start": as_utc(s.start).isoformat(),
        "end": as_utc(s.end).isoformat(), "capacity": s.capacity,
        "referral_capacity": s.referral_capacity, "booked": s.booked,
        "referral_booked": s.referral_booked,
        "free_general": max(0, min(free, general_cap - general_used)),
        "free_referral": max(0, min(free, s.referral_capacity - s.referral_booked)),
        "opens_at": as_utc(s.opens_at).isoformat(),
        "referral_opens_at": as_utc(s.referral_opens_at).isoformat(),
        "quota_returns_at": as_utc(s.quota_returns_at).isoformat(), "status": s.status,
    }


def list_slots(session: Session, *, facility: str | None = None, department: str | None = None,
               day: date | None = None, start: datetime | None = None,
               end: datetime | None = None, free_only: bool = False, timezone: str =
               "Asia/Shanghai", offset: int = 0, limit: int = 100
               ) -> tuple[int, list[dict[str, Any]]]:
    """Slots by facility, department and local day (or UTC range); bookable places per pool.

    Slots are public information (no personal data), like a hospital's published timetable.
    """
    query = select(Slot).join(Facility, Facility.id == Slot.facility_id).order_by(
        Slot.start, Slot.id)
    if facility:
        query = query.where(Facility.code == facility)
    if department:
        query = query.where(Slot.department == department)
    if day is not None:
        zone = ZoneInfo(timezone)
        lo = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        query = query.where(Slot.start >= lo, Slot.start < lo + timedelta(days=1))
    if start is not None:
        query = query.where(Slot.start >= as_utc(start))
    if end is not None:
        query = query.where(Slot.start < as_utc(end))
    if free_only:
        query = query.where(Slot.booked < Slot.capacity, Slot.status == "open")
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [slot_dict(s) for s in rows]


# --------------------------------------------------------------------------- booking


def _fingerprint(resident_id: int, slot_id: int, pool: str) -> str:
    return f"{resident_id}:{slot_id}:{pool}"


# The statements of the booking path run on every request of a flash crowd. Each is built
# once per variant with bound parameters on the tables themselves: SQLAlchemy then reuses the
# statement's cache key and compiled form, and skips the ORM bulk-update machinery. The live
# statuses are inlined (an IN list of bound values is re-rendered at every execution).
_slots = Slot.__table__
_appointments = Appointment.__table__
_residents = Resident.__table__
_LIVE_VALUES = [literal_column(f"'{status}'") for status in LIVE_STATUSES]


def _live_overlap(exclude: bool) -> Any:
    """Build the SQL test "resident ``:resident_id`` holds an overlapping live appointment".

    The overlap is with the slot row being read or updated; ``exclude`` leaves appointment
    ``:exclude_id`` out (the one being rescheduled).
    """
    a = _appointments.c
    clause = select(a.id).where(
        a.resident_id == bindparam("resident_id"), a.status.in_(_LIVE_VALUES),
        a.start < _slots.c.end, a.end > _slots.c.start)
    if exclude:
        clause = clause.where(a.id != bindparam("exclude_id"))
    return clause.exists()


@functools.cache
def _take_place_statement(pool: str, exclude: bool) -> Any:
    """The conditional ``UPDATE … RETURNING`` of :func:`_take_place` for one pool."""
    c = _slots.c
    now = bindparam("now", type_=c.start.type)
    rules = [c.id == bindparam("slot_id"), c.status == "open", c.start > now,
             c.booked < c.capacity, ~_live_overlap(exclude)]
    if pool == "referral":
        rules += [c.referral_opens_at <= now, c.referral_booked < c.referral_capacity]
        values = {"booked": c.booked + 1, "referral_booked": c.referral_booked + 1}
    else:
        rules += [c.opens_at <= now, or_(
            c.booked - c.referral_booked < c.capacity - c.referral_capacity,
            c.quota_returns_at <= now)]
        values = {"booked": c.booked + 1}
    return (update(_slots).where(*rules).values(**values)
            .returning(c.start, c.end, c.facility_id, c.department))


def _take_place(session: Session, slot_id: int, pool: str, now: datetime, resident_id: int,
                exclude_id: int | None) -> Any:
    """The ONE conditional UPDATE that wins a place of ``pool`` (a row) or not (None).

    Every rule is in its ``WHERE``: slot open and in the future, release window open, a free
    place in the pool, no overlapping live appointment of the resident; ``RETURNING`` gives
    what the appointment needs.
    """
    return session.execute(_take_place_statement(pool, exclude_id is not None), {
        "slot_id": slot_id, "now": now, "resident_id": resident_id,
        "exclude_id": exclude_id}).first()


@functools.cache
def _refusal_statement(with_key: bool, exclude: bool) -> Any:
    """The one ``SELECT`` of :func:`_refusal` (slot row, overlap, prior use of the key)."""
    c = _slots.c
    key_used = (select(_appointments.c.id)
                .where(_appointments.c.idempotency_key == bindparam("key")).exists()
                if with_key else literal(False))
    return select(c.status, c.start, c.opens_at, c.referral_opens_at, c.booked, c.capacity,
                  _live_overlap(exclude).label("overlap"), key_used.label("key_used")
                  ).where(c.id == bindparam("slot_id"))


@functools.cache
def _lock_resident_statement() -> Any:
    """The conditional ``UPDATE`` that takes a resident's row lock (in the caller's scope)."""
    r = _residents.c
    return (update(_residents)
            .where(r.id == bindparam("resident_id"), r.active.is_(True),
                   r.village_code.like(bindparam("scope_like")))
            .values(lock_version=r.lock_version + 1))


def _refusal(session: Session, slot_id: int, pool: str, now: datetime, resident_id: int,
             exclude_id: int | None, *, precheck_key: str | None = None,
             precheck: bool = False) -> ConflictError | NotFoundError | None:
    """Why a booking loses (one query). With ``precheck`` (before any write) only reasons a
    concurrent booking cannot undo are given, and none when ``precheck_key`` was used
    before (a retry must find its first booking); otherwise None."""
    row = session.execute(
        _refusal_statement(precheck_key is not None, exclude_id is not None),
        {"slot_id": slot_id, "resident_id": resident_id, "exclude_id": exclude_id,
         "key": precheck_key}).first()
    if precheck and row is not None and row.key_used:
        return None
    if row is None:
        return NotFoundError(f"slot {slot_id}")
    opens = as_utc(row.referral_opens_at if pool == "referral" else row.opens_at)
    if row.status != "open":
        return ConflictError("slot_closed", "this slot is closed")
    if as_utc(row.start) <= now:
        return ConflictError("slot_in_past", "the slot has started already")
    if now < opens:
        return ConflictError("outside_release_window",
                             f"{pool} booking of this slot opens at {opens.isoformat()}")
    if row.booked >= row.capacity and not row.overlap:
        return ConflictError("slot_full", "every place of this slot is booked")
    if precheck:
        return None
    if row.overlap:
        return ConflictError("overlapping_appointment",
                             "the resident already holds an appointment at this time")
    if pool == "referral":
        return ConflictError("quota_full", "the reserved referral places are booked")
    return ConflictError("slot_full", "the general places of this slot are booked "
                         "(remaining places are reserved for referrals)")


def book(session: Session, actor: Actor, *, slot_id: int, resident_id: int,
         pool: str = "general", idempotency_key: str | None = None,
         referral_id: int | None = None, now: datetime | None = None,
         replaces_appointment_id: int | None = None) -> tuple[Appointment, bool]:
    """Book a place; the caller's transaction commits (or rolls back) the whole booking.

    Parameters
    ----------
    pool:
        ``general`` or ``referral`` (reserved places; only with a referral). A referral booking
        falls back to the general pool when the reserved places are taken and general booking
        is open.
    idempotency_key:
        A retried request with the same key returns the first appointment (``created=False``).
    replaces_appointment_id:
        When rescheduling: this appointment is ignored by the overlap check.

    Returns
    -------
    (Appointment, bool)
        The appointment and whether it was created by this call.

    Raises
    ------
    ConflictError
        ``slot_full``, ``quota_full``, ``overlapping_appointment``, ``outside_release_window``,
        ``slot_in_past``, ``slot_closed``, ``idempotency_key_reused``.
    """
    now = as_utc(now or utcnow())
    if pool not in POOLS:
        raise InputError.single(f"pool must be one of {POOLS}", field="pool")
    if pool == "referral" and referral_id is None:
        raise InputError.single("reserved places need a referral", field="referral_id",
                                code="referral_required")
    if idempotency_key is not None and not 8 <= len(idempotency_key) <= 128:
        raise InputError.single("idempotency key must have 8..128 characters",
                                field="Idempotency-Key")
    # 0. Refuse a full, closed, past or unreleased slot with one read and no write (most of
    #    a flash crowd). Skipped on SQLite, where a read before the first write would expose
    #    the transaction to a stale-snapshot error, and when the key may be a retry.
    if session.get_bind().dialect.name != "sqlite":
        early = _refusal(session, slot_id, pool, now, resident_id, replaces_appointment_id,
                         precheck_key=idempotency_key, precheck=True)
        if early is not None:
            raise early
    # 1. Serialise this resident's bookings: the first statement is a write (row lock / the
    #    SQLite write lock), so everything read below is current. Desk staff book for anyone;
    #    other roles only for residents living in their area.
    scope = "" if actor.role in STAFF_ROLES else actor.division_prefix
    locked = session.execute(_lock_resident_statement(),
                             {"resident_id": resident_id, "scope_like": scope + "%"}).rowcount
    if locked != 1:
        raise NotFoundError(f"resident {resident_id}")
    fingerprint = _fingerprint(resident_id, slot_id, pool)
    # 2. A retried request returns the first booking.
    if idempotency_key is not None:
        previous = session.scalar(select(Appointment).where(
            Appointment.idempotency_key == idempotency_key))
        if previous is not None:
            if previous.request_fingerprint != fingerprint:
                raise ConflictError("idempotency_key_reused",
                                    "this idempotency key was used for another booking")
            return previous, False
    # 3. Win a place with one conditional UPDATE; a refused referral booking may still take
    #    a general place once general booking is open.
    used = pool
    won = _take_place(session, slot_id, pool, now, resident_id, replaces_appointment_id)
    if won is None and pool == "referral":
        used = "general"
        won = _take_place(session, slot_id, "general", now, resident_id,
                          replaces_appointment_id)
    if won is None:
        refusal = _refusal(session, slot_id, pool, now, resident_id, replaces_appointment_id)
        raise refusal or ConflictError("slot_full", "no place left")
    start, end = as_utc(won.start), as_utc(won.end)
    appointment = Appointment(
        slot_id=slot_id, resident_id=resident_id, facility_id=won.facility_id,
        department=won.department, start=start, end=end, pool=used, referral_id=referral_id,
        status="booked", idempotency_key=idempotency_key, request_fingerprint=fingerprint,
        booked_at=now, booked_by=actor.username)
    session.add(appointment)
    try:
        session.flush()
    except IntegrityError as exc:
        # A concurrent transaction committed the same key or a live booking of this slot
        # first; the caller rolls the whole transaction back (the place won above too).
        raise ConflictError("overlapping_appointment" if idempotency_key is None
                            else "idempotency_key_reused",
                            "a concurrent identical booking exists") from exc
    audit(session, actor, "create", "appointment", str(appointment.id),
          after={"slot": slot_id, "resident": resident_id, "pool": used,
                 "referral": referral_id})
    return appointment, True


def get_appointment(session: Session, actor: Actor, appointment_id: int) -> Appointment:
    """An appointment visible to the actor (its facility in scope, or the resident's area)."""
    a = session.get(Appointment, appointment_id)
    if a is None:
        raise NotFoundError(f"appointment {appointment_id}")
    facility = session.get(Facility, a.facility_id)
    resident = session.get(Resident, a.resident_id)
    in_scope = (actor.facility_id == a.facility_id
                or (actor.facility_id is None and facility is not None
                    and facility.division_prefix.startswith(actor.division_prefix))
                or (resident is not None and actor.covers_division(resident.village_code)))
    if not in_scope:
        raise NotFoundError(f"appointment {appointment_id}")
    audit(session, actor, "read", "appointment", str(a.id))
    return a


def appointment_dict(a: Appointment) -> dict[str, Any]:
    """An appointment as plain data (waiting time in minutes once seen)."""
    waited = None
    if a.arrived_at is not None and a.seen_at is not None:
        waited = round((as_utc(a.seen_at) - as_utc(a.arrived_at)).total_seconds() / 60, 1)
    return {
        "id": a.id, "slot_id": a.slot_id, "resident_id": a.resident_id,
        "facility_id": a.facility_id, "department": a.department,
        "start": as_utc(a.start).isoformat(), "end": as_utc(a.end).isoformat(), "pool": a.pool,
        "referral_id": a.referral_id, "status": a.status,
        "booked_at": as_utc(a.booked_at).isoformat(),
        "arrived_at": as_utc(a.arrived_at).isoformat() if a.arrived_at else None,
        "seen_at": as_utc(a.seen_at).isoformat() if a.seen_at else None,
        "cancelled_at": as_utc(a.cancelled_at).isoformat() if a.cancelled_at else None,
        "waiting_minutes": waited, "rescheduled_to_id": a.rescheduled_to_id,
    }


APPOINTMENT_TRANSITIONS: dict[str, dict[str, str]] = {
    "cancel": {"booked": "cancelled"},
    "check_in": {"booked": "checked_in"},
    "seen": {"checked_in": "seen"},
    "no_show": {"booked": "no_show"},
}


def _transition(session: Session, a: Appointment, action: str, values: dict[str, Any]) -> None:
    allowed = APPOINTMENT_TRANSITIONS[action]
    target = allowed.get(a.status)
    if target is None:
        raise ConflictError("invalid_transition", f"cannot {action} an appointment that is "
                            f"{a.status}")
    changed = session.execute(
        update(Appointment).where(Appointment.id == a.id, Appointment.status == a.status)
        .values(status=target, **values), execution_options={"synchronize_session": False}
    ).rowcount
    if changed != 1:
        raise ConflictError("concurrent_change", "the appointment changed meanwhile")
    session.refresh(a)


def cancel_appointment(session: Session, actor: Actor, appointment_id: int, *,
                       reason: str = "", now: datetime | None = None) -> Appointment:
    """Cancel and give the place back to its pool; residents only before the deadline.

    Staff of the facility may cancel after the deadline (e.g. the clinician falls ill).
    """
    now = as_utc(now or utcnow())
    a = get_appointment(session, actor, appointment_id)
    schedule = session.get(Schedule, a.slot.schedule_id)
    deadline = as_utc(a.start) - timedelta(hours=schedule.cancel_deadline_hours if schedule
                                           else 0)
    if a.status == "booked" and now > deadline and actor.role not in STAFF_ROLES:
        raise ConflictError("past_cancellation_deadline",
                            f"cancellation was possible until {deadline.isoformat()}")
    _transition(session, a, "cancel", {"cancelled_at": now, "cancel_reason": reason})
    values: dict[str, Any] = {"booked": Slot.booked - 1}
    if a.pool == "referral":
        values["referral_booked"] = Slot.referral_booked - 1
    session.execute(update(Slot).where(Slot.id == a.slot_id).values(**values),
                    execution_options={"synchronize_session": False})
    audit(session, actor, "cancel", "appointment", str(a.id), before={"status": "booked"},
          after={"status": "cancelled"}, detail=reason)
    return a


def reschedule_appointment(session: Session, actor: Actor, appointment_id: int, *,
                           slot_id: int, idempotency_key: str | None = None,
                           now: datetime | None = None) -> Appointment:
    """Book the new slot (same pool and referral) and cancel the old one, in one transaction."""
    old = get_appointment(session, actor, appointment_id)
    if old.status != "booked":
        raise ConflictError("invalid_transition", f"cannot reschedule a {old.status} appointment")
    new, _ = book(session, actor, slot_id=slot_id, resident_id=old.resident_id, pool=old.pool,
                  referral_id=old.referral_id, idempotency_key=idempotency_key, now=now,
                  replaces_appointment_id=old.id)
    cancel_appointment(session, actor, old.id, reason=f"rescheduled to {new.id}", now=now)
    old.rescheduled_to_id = new.id
    return new


def check_in(session: Session, actor: Actor, appointment_id: int, *,
             now: datetime | None = None) -> Appointment:
    """The resident arrived (the waiting time counts from here)."""
    a = get_appointment(session, actor, appointment_id)
    _transition(session, a, "check_in", {"arrived_at": as_utc(now or utcnow())})
    audit(session, actor, "check_in", "appointment", str(a.id))
    return a


def mark_seen(session: Session, actor: Actor, appointment_id: int, *,
              now: datetime | None = None) -> Appointment:
    """The clinician saw the resident."""
    a = get_appointment(session, actor, appointment_id)
    _transition(session, a, "seen", {"seen_at": as_utc(now or utcnow())})
    audit(session, actor, "seen", "appointment", str(a.id))
    return a


def mark_no_show(session: Session, actor: Actor, appointment_id: int, *,
                 now: datetime | None = None) -> Appointment:
    """The resident did not come (only once the slot has started)."""
    a = get_appointment(session, actor, appointment_id)
    if as_utc(now or utcnow()) < as_utc(a.start):
        raise ConflictError("too_early", "no-show can be recorded once the slot has started")
    _transition(session, a, "no_show", {})
    audit(session, actor, "no_show", "appointment", str(a.id))
    return a


def day_calendar(session: Session, actor: Actor, *, facility: str, day: date,
                 department: str | None = None, timezone: str = "Asia/Shanghai",
                 offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Slots of a facility's day with their appointments (names shown, identity masked):
    their number and one page, by start time."""
    f = _facility(session, actor, facility, field="facility")
    zone = ZoneInfo(timezone)
    lo = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    query = select(Slot).where(Slot.facility_id == f.id, Slot.start >= lo,
                               Slot.start < lo + timedelta(days=1)
                               ).order_by(Slot.start, Slot.id)
    if department:
        query = query.where(Slot.department == department)
    total, slots = fetch_page(session, query, offset=offset, limit=limit)
    ids = [s.id for s in slots]
    booked: dict[int, list[dict[str, Any]]] = {}
    if ids:
        rows = session.execute(
            select(Appointment, Resident.name, Resident.id_masked)
            .join(Resident, Resident.id == Appointment.resident_id)
            .where(Appointment.slot_id.in_(ids), Appointment.status != "cancelled"))
        for a, name, masked in rows:
            booked.setdefault(a.slot_id, []).append(
                {**appointment_dict(a), "resident_name": name, "identity_masked": masked})
    if ids:
        audit(session, actor, "list", "appointment", f.code, detail=f"day calendar {day}")
    return total, [{**slot_dict(s),
                    "local_start": as_utc(s.start).astimezone(zone).strftime("%H:%M"),
                    "appointments": booked.get(s.id, [])} for s in slots]



def list_appointments(session: Session, actor: Actor, *, resident_id: int | None = None,
                      facility: str | None = None, status: str | None = None,
                      start: datetime | None = None, end: datetime | None = None,
                      offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Appointments at facilities of the actor's scope, or of residents living in it."""
    query = (select(Appointment).join(Facility, Facility.id == Appointment.facility_id)
             .join(Resident, Resident.id == Appointment.resident_id))
    if actor.facility_id is not None:
        query = query.where(or_(Facility.id == actor.facility_id,
                                Resident.village_code.like(actor.division_prefix + "%")))
    else:
        query = query.where(or_(Facility.division_prefix.like(actor.division_prefix + "%"),
                                Resident.village_code.like(actor.division_prefix + "%")))
    if resident_id is not None:
        query = query.where(Appointment.resident_id == resident_id)
    if facility:
        query = query.where(Facility.code == facility)
    if status:
        query = query.where(Appointment.status == status)
    if start is not None:
        query = query.where(Appointment.start >= as_utc(start))
    if end is not None:
        query = query.where(Appointment.start < as_utc(end))
    total, rows = fetch_page(session, query.order_by(Appointment.start, Appointment.id),
                             offset=offset, limit=limit)
    if rows:
        audit(session, actor, "list", "appointment", "",
              detail="ids " + ",".join(str(a.id) for a in rows))
    return total, [appointment_dict(a) for a in rows]
