"""Vaccination sites, their route (mobile), sessions with capacity by vaccine, and bookings.

Booking never over-fills a session: in one transaction the session's total counter, the counter
of every vaccine booked and, where the site uses minute slots, the slot's counter are raised by
conditional ``UPDATE … SET booked = booked + 1 WHERE … AND booked < capacity``; a row count of
zero refuses the booking (409 ``session_full`` / ``vaccine_full`` / ``slot_full``) and the
transaction is rolled back. ``UNIQUE(active_key)`` keeps one standing booking per person and
session, ``UNIQUE(idempotency_key)`` makes a repeated request return the first booking.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.immunization.common import (
    mask_phone,
    person_identity,
    require_site,
    site_by_code,
)
from tiercare.immunization.models import (
    Booking,
    Child,
    SessionSlot,
    SessionVaccine,
    SiteCapacity,
    SiteStop,
    VaccinationSession,
    VaccinationSite,
)
from tiercare.immunization.schedule import default_schedules
from tiercare.paging import check_window, fetch_page
from tiercare.registry.codes import normalise_code
from tiercare.registry.models import Assessment, Checklist, Division, Facility

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class StopIn(BaseModel):
    """Where a mobile site stands on a weekday."""

    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    village_code: str
    place: str = ""
    lon: float | None = None
    lat: float | None = None
    start: str = "08:30"
    end: str = "16:30"


class SiteIn(BaseModel):
    """A vaccination site."""

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["fixed", "temporary", "mobile"]
    facility_code: str | None = Field(default=None, description="Registry facility running it")
    division_code: str = Field(description="Township (or village) the site serves")
    village_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    slot_minutes: int = Field(default=0, ge=0, le=240)
    active_from: dt.date | None = None
    active_until: dt.date | None = None
    capacity: dict[str, int] = Field(default_factory=dict,
                                     description="Daily doses by vaccine code")
    route: list[StopIn] = Field(default_factory=list, description="Mobile sites: weekly route")


class SessionIn(BaseModel):
    """Open a session of a site on one day."""

    on_date: dt.date
    start: str = "08:30"
    end: str = "11:30"
    capacity: int | None = Field(default=None, ge=1,
                                 description="Total visits (default: sum of vaccine capacity)")
    vaccines: dict[str, int] | None = Field(default=None,
                                            description="Default: the site's daily capacity")
    slot_capacity: int = Field(default=1, ge=1, description="Visits per minute slot")


class BookingIn(BaseModel):
    """Book a session for a registered child (due doses) or a person (self-paid vaccine)."""

    session_id: int
    vaccines: list[str] = Field(min_length=1)
    child_id: int | None = None
    identity_number: str | None = Field(default=None,
                                        description="For a person not in the child register")
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=32)
    slot_start: str | None = Field(default=None, description="HH:MM where the site uses slots")
    idempotency_key: str | None = Field(default=None, max_length=64)


def _code12(text: str) -> str:
    try:
        return normalise_code(text)
    except ValueError:
        return text


def _minutes(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:])


def _times(start: str, end: str, problems: list[Problem], prefix: str = "") -> None:
    for name, value in (("start", start), ("end", end)):
        if not _HHMM.match(value):
            problems.append(Problem(reason="not a time HH:MM", field=prefix + name))
    if not problems and _minutes(end) <= _minutes(start):
        problems.append(Problem(reason="end must be after start", field=prefix + "end"))


def _vaccine_problems(codes: Any, field: str) -> list[Problem]:
    known = default_schedules().vaccines
    return [Problem(reason=f"unknown vaccine {c!r}", field=field, code="unknown_vaccine")
            for c in codes if c not in known]


def site_dict(session: Session, s: VaccinationSite) -> dict[str, Any]:
    """A site with capacity, route and the latest ``vaccination_site`` checklist assessment."""
    capacity = {c.vaccine: c.daily_doses for c in session.scalars(
        select(SiteCapacity).where(SiteCapacity.site_id == s.id).order_by(SiteCapacity.vaccine))}
    route = [{"weekday": r.weekday, "village_code": r.village_code, "place": r.place,
              "lon": r.lon, "lat": r.lat, "start": r.start, "end": r.end}
             for r in session.scalars(select(SiteStop).where(SiteStop.site_id == s.id)
                                      .order_by(SiteStop.weekday))]
    facility = session.get(Facility, s.facility_id) if s.facility_id else None
    checklist = None
    if facility is not None:
        row = session.execute(
            select(Assessment, Checklist).join(Checklist, Checklist.id == Assessment.checklist_id)
            .where(Assessment.facility_id == facility.id, Checklist.code == "vaccination_site")
            .order_by(Assessment.assessed_on.desc()).limit(1)).first()
        if row is not None:
            a, cl = row
            checklist = {"checklist": cl.code, "version": cl.version,
                         "assessed_on": a.assessed_on.isoformat(), "score": a.score,
                         "unmet": a.unmet}
    return {"id": s.id, "code": s.code, "name": s.name, "kind": s.kind,
            "facility_code": facility.code if facility else None,
            "division_prefix": s.division_prefix, "village_code": s.village_code,
            "lon": s.lon, "lat": s.lat, "slot_minutes": s.slot_minutes,
            "active_from": s.active_from.isoformat() if s.active_from else None,
            "active_until": s.active_until.isoformat() if s.active_until else None,
            "active": s.active, "capacity": capacity, "route": route,
            "checklist": checklist,
            "checklist_url": f"/api/v1/facilities/{facility.code}" if facility else None}


def create_site(session: Session, actor: Actor, data: SiteIn) -> VaccinationSite:
    """Create a site with its daily capacity and (mobile) weekly route.

    Raises
    ------
    InputError
        Duplicate code, unknown division/facility/vaccine, a mobile site without a route or a
        fixed site with one, a temporary site without dates, bad times.
    """
    problems: list[Problem] = []
    if session.scalar(select(VaccinationSite.id).where(VaccinationSite.code == data.code)):
        problems.append(Problem(reason="a site with this code exists", field="code",
                                code="duplicate"))
    division = session.scalar(select(Division).where(Division.code == _code12(
        data.division_code)))
    if division is None:
        problems.append(Problem(reason=f"unknown division '{data.division_code}'",
                                field="division_code", code="unknown_division"))
    elif not actor.covers_division(division.code):
        problems.append(Problem(reason="division outside your scope", field="division_code",
                                code="out_of_scope"))
    facility = None
    if data.facility_code:
        facility = session.scalar(select(Facility).where(Facility.code == data.facility_code))
        if facility is None:
            problems.append(Problem(reason=f"unknown facility '{data.facility_code}'",
                                    field="facility_code"))
    if data.kind == "mobile" and not data.route:
        problems.append(Problem(reason="a mobile site needs its weekly route", field="route"))
    if data.kind != "mobile" and data.route:
        problems.append(Problem(reason="only mobile sites have a route", field="route"))
    if data.kind == "temporary" and (data.active_from is None or data.active_until is None):
        problems.append(Problem(reason="a temporary site needs active_from and active_until",
                                field="active_until"))
    if data.active_from and data.active_until and data.active_until < data.active_from:
        problems.append(Problem(reason="ends before it starts", field="active_until"))
    problems += _vaccine_problems(data.capacity, "capacity")
    problems += [Problem(reason="must be ≥ 0", field=f"capacity.{k}")
                 for k, v in data.capacity.items() if v < 0]
    weekdays = [r.weekday for r in data.route]
    if len(set(weekdays)) != len(weekdays):
        problems.append(Problem(reason="one stop per weekday", field="route"))
    for i, stop in enumerate(data.route):
        _times(stop.start, stop.end, problems, prefix=f"route[{i}].")
        if session.scalar(select(Division.id).where(Division.code == stop.village_code)) is None:
            problems.append(Problem(reason=f"unknown division '{stop.village_code}'",
                                    field=f"route[{i}].village_code", row=i + 1))
    if problems or division is None:
        raise InputError(problems)
    site = VaccinationSite(
        code=data.code, name=data.name, kind=data.kind,
        facility_id=facility.id if facility else None, division_prefix=division.prefix,
        village_code=data.village_code, lon=data.lon, lat=data.lat,
        slot_minutes=data.slot_minutes, active_from=data.active_from,
        active_until=data.active_until)
    session.add(site)
    session.flush()
    for vaccine, doses in data.capacity.items():
        session.add(SiteCapacity(site_id=site.id, vaccine=vaccine, daily_doses=doses))
    for stop in data.route:
        session.add(SiteStop(site_id=site.id, **stop.model_dump()))
    session.flush()
    audit(session, actor, "create", "imm_site", str(site.id), after=data.model_dump(mode="json"))
    return site


def list_sites(session: Session, actor: Actor, *, kind: str | None = None, offset: int = 0,
               limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Sites in the actor's scope."""
    check_window(offset, limit)
    query = select(VaccinationSite).where(
        VaccinationSite.division_prefix.like(actor.division_prefix + "%")
    ).order_by(VaccinationSite.code)
    if kind:
        query = query.where(VaccinationSite.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return total or 0, [site_dict(session, s) for s in
                        session.scalars(query.offset(offset).limit(limit))]


def open_session(session: Session, actor: Actor, site_code: str,
                 data: SessionIn) -> VaccinationSession:
    """Open a session (a mobile site opens where its route puts it that weekday).

    Raises
    ------
    InputError
        Bad times, unknown vaccines, a mobile site with no stop that weekday, a temporary site
        outside its dates, no capacity.
    ConflictError
        ``session_exists`` for the same site, day and start.
    """
    site = site_by_code(session, site_code)
    require_site(actor, site)
    problems: list[Problem] = []
    start, end = data.start, data.end
    village, place = site.village_code, ""
    if site.kind == "mobile":
        stop = session.scalar(select(SiteStop).where(SiteStop.site_id == site.id,
                                                     SiteStop.weekday == data.on_date.weekday()))
        if stop is None:
            problems.append(Problem(reason="the vehicle's route has no stop that weekday",
                                    field="on_date", code="no_stop"))
        else:
            village, place = stop.village_code, stop.place
            if "start" not in data.model_fields_set:
                start, end = stop.start, stop.end
    if site.active_from and data.on_date < site.active_from or \
            site.active_until and data.on_date > site.active_until:
        problems.append(Problem(reason="outside the temporary site's dates", field="on_date"))
    _times(start, end, problems)
    vaccines = data.vaccines
    if vaccines is None:
        vaccines = {c.vaccine: c.daily_doses for c in session.scalars(
            select(SiteCapacity).where(SiteCapacity.site_id == site.id))}
    problems += _vaccine_problems(vaccines, "vaccines")
    total = data.capacity or sum(vaccines.values())
    if total <= 0:
        problems.append(Problem(reason="no capacity", field="capacity"))
    if problems:
        raise InputError(problems)
    if session.scalar(select(VaccinationSession.id).where(
            VaccinationSession.site_id == site.id, VaccinationSession.on_date == data.on_date,
            VaccinationSession.start == start)) is not None:
        raise ConflictError("session_exists", "this site has a session then already")
    row = VaccinationSession(site_id=site.id, on_date=data.on_date, start=start, end=end,
                             village_code=village, place=place, capacity=total, booked=0)
    session.add(row)
    session.flush()
    for vaccine, doses in vaccines.items():
        session.add(SessionVaccine(session_id=row.id, vaccine=vaccine, capacity=doses,
                                   booked=0))
    if site.slot_minutes:
        minute = _minutes(start)
        while minute + site.slot_minutes <= _minutes(end):
            session.add(SessionSlot(session_id=row.id,
                                    start=f"{minute // 60:02d}:{minute % 60:02d}",
                                    capacity=data.slot_capacity, booked=0))
            minute += site.slot_minutes
    session.flush()
    audit(session, actor, "create", "imm_session", str(row.id),
          after={"site": site.code, "on_date": data.on_date.isoformat(), "start": start,
                 "capacity": total, "vaccines": vaccines})
    return row


def session_dict(session: Session, s: VaccinationSession) -> dict[str, Any]:
    """A session with its remaining places by vaccine and slot."""
    site = session.get(VaccinationSite, s.site_id)
    vaccines = {v.vaccine: {"capacity": v.capacity, "booked": v.booked,
                            "free": v.capacity - v.booked}
                for v in session.scalars(select(SessionVaccine).where(
                    SessionVaccine.session_id == s.id).order_by(SessionVaccine.vaccine))}
    slots = [{"id": x.id, "start": x.start, "capacity": x.capacity, "booked": x.booked,
              "free": x.capacity - x.booked}
             for x in session.scalars(select(SessionSlot).where(
                 SessionSlot.session_id == s.id).order_by(SessionSlot.start))]
    return {"id": s.id, "site_code": site.code if site else None,
            "site_name": site.name if site else None, "site_kind": site.kind if site else None,
            "on_date": s.on_date.isoformat(), "start": s.start, "end": s.end,
            "village_code": s.village_code, "place": s.place, "capacity": s.capacity,
            "booked": s.booked, "free": s.capacity - s.booked, "status": s.status,
            "vaccines": vaccines, "slots": slots}


def list_sessions(session: Session, actor: Actor, *, site: str | None = None,
                  start: dt.date | None = None, end: dt.date | None = None,
                  vaccine: str | None = None, offset: int = 0, limit: int = 50,
                  public: bool = False) -> tuple[int, list[dict[str, Any]]]:
    """Sessions between two dates (``public``: any site, for families booking)."""
    check_window(offset, limit)
    query = select(VaccinationSession).join(
        VaccinationSite, VaccinationSite.id == VaccinationSession.site_id
    ).order_by(VaccinationSession.on_date, VaccinationSession.start, VaccinationSession.id)
    if not public:
        query = query.where(VaccinationSite.division_prefix.like(actor.division_prefix + "%"))
    if site:
        query = query.where(VaccinationSite.code == site)
    if start:
        query = query.where(VaccinationSession.on_date >= start)
    if end:
        query = query.where(VaccinationSession.on_date <= end)
    if vaccine:
        query = query.where(VaccinationSession.id.in_(select(SessionVaccine.session_id).where(
            SessionVaccine.vaccine == vaccine)))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return total or 0, [session_dict(session, s) for s in
                        session.scalars(query.offset(offset).limit(limit))]


def _raise(session: Session, table: Any, row_id: int, reason: str, message: str) -> None:
    done = session.execute(
        update(table).where(table.id == row_id, table.booked < table.capacity)
        .values(booked=table.booked + 1),
        execution_options={"synchronize_session": False}).rowcount
    if done != 1:
        raise ConflictError(reason, message)


def book(session: Session, actor: Actor, data: BookingIn, *, secret: str,
         self_paid: bool = False) -> tuple[Booking, bool]:
    """Book a session; returns ``(booking, created)``.

    The first statement is the conditional update of the session counter (a write), so on
    SQLite the transaction waits for the write lock instead of failing; call
    :func:`~tiercare.immunization.common.begin_write` before when the session has read.

    Raises
    ------
    ConflictError
        ``session_full``, ``vaccine_full`` (or ``vaccine_not_offered``), ``slot_full``,
        ``already_booked`` (one standing booking per person and session), ``session_closed``.
    InputError
        Neither child nor identity, bad slot time.
    NotFoundError
        Unknown session or child outside the actor's scope.
    """
    if data.idempotency_key:
        earlier = session.scalar(select(Booking).where(
            Booking.idempotency_key == data.idempotency_key))
        if earlier is not None:
            return earlier, False
    try:
        _raise(session, VaccinationSession, data.session_id, "session_full",
               "no place left in this session")
    except ConflictError:
        if session.get(VaccinationSession, data.session_id) is None:
            raise NotFoundError(f"session {data.session_id}") from None
        raise
    target = session.get(VaccinationSession, data.session_id)
    if target is None:
        raise NotFoundError(f"session {data.session_id}")
    if target.status != "open":
        raise ConflictError("session_closed", "this session is closed")
    name, phone = data.name, data.phone
    if data.child_id is not None:
        child = session.get(Child, data.child_id)
        if child is None or (actor.role != "family" and
                             not actor.covers_division(child.village_code)):
            raise NotFoundError(f"child {data.child_id}")
        person, name, phone = child.id_digest, child.name, phone or child.guardian_phone
    elif data.identity_number:
        person = person_identity(data.identity_number, secret=secret)[3]
    else:
        raise InputError.single("give child_id or identity_number", field="child_id")
    for vaccine in sorted(set(data.vaccines)):
        row = session.scalar(select(SessionVaccine.id).where(
            SessionVaccine.session_id == target.id, SessionVaccine.vaccine == vaccine))
        if row is None:
            raise ConflictError("vaccine_not_offered", f"{vaccine} is not given in this session")
        _raise(session, SessionVaccine, row, "vaccine_full", f"no {vaccine} dose left")
    slot_id = None
    if data.slot_start:
        slot_id = session.scalar(select(SessionSlot.id).where(
            SessionSlot.session_id == target.id, SessionSlot.start == data.slot_start))
        if slot_id is None:
            raise InputError.single("no such slot in this session", field="slot_start")
        _raise(session, SessionSlot, slot_id, "slot_full", "this slot is full")
    elif session.scalar(select(SessionSlot.id).where(SessionSlot.session_id == target.id)
                        .limit(1)) is not None:
        raise InputError.single("this site books minute slots: choose one", field="slot_start")
    booking = Booking(session_id=target.id, slot_id=slot_id, child_id=data.child_id,
                      person_digest=person, person_name=name, phone=phone,
                      vaccines=sorted(set(data.vaccines)), self_paid=self_paid,
                      status="booked", active_key=f"{target.id}:{person}",
                      idempotency_key=data.idempotency_key, username=actor.username)
    session.add(booking)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError("already_booked",
                            "this person has a booking in this session already") from exc
    audit(session, actor, "create", "imm_booking", str(booking.id),
          after={"session": target.id, "vaccines": booking.vaccines, "slot": data.slot_start,
                 "child_id": data.child_id})
    return booking, True


def cancel_booking(session: Session, actor: Actor, booking_id: int) -> Booking:
    """Cancel a booking and give its places back (session, vaccines, slot)."""
    b = session.get(Booking, booking_id)
    if b is None:
        raise NotFoundError(f"booking {booking_id}")
    if b.status != "booked":
        raise ConflictError("not_booked", f"booking is {b.status}")
    done = session.execute(update(Booking).where(Booking.id == b.id, Booking.status == "booked")
                           .values(status="cancelled", active_key=None),
                           execution_options={"synchronize_session": False}).rowcount
    if done != 1:
        raise ConflictError("not_booked", "booking changed meanwhile")
    session.execute(update(VaccinationSession).where(VaccinationSession.id == b.session_id)
                    .values(booked=VaccinationSession.booked - 1))
    session.execute(update(SessionVaccine).where(SessionVaccine.session_id == b.session_id,
                                                 SessionVaccine.vaccine.in_(b.vaccines))
                    .values(booked=SessionVaccine.booked - 1))
    if b.slot_id is not None:
        session.execute(update(SessionSlot).where(SessionSlot.id == b.slot_id)
                        .values(booked=SessionSlot.booked - 1))
    session.refresh(b)
    audit(session, actor, "cancel", "imm_booking", str(b.id))
    return b


def booking_dict(session: Session, b: Booking) -> dict[str, Any]:
    """A booking as plain data."""
    s = session.get(VaccinationSession, b.session_id)
    slot = session.get(SessionSlot, b.slot_id) if b.slot_id else None
    site = session.get(VaccinationSite, s.site_id) if s else None
    return {"id": b.id, "session_id": b.session_id, "site_code": site.code if site else None,
            "on_date": s.on_date.isoformat() if s else None,
            "start": slot.start if slot else (s.start if s else None),
            "child_id": b.child_id, "name": b.person_name, "vaccines": b.vaccines,
            "self_paid": b.self_paid, "status": b.status}


def reminders(session: Session, actor: Actor, *, on_date: dt.date, site: str | None = None,
              offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """The bookings standing on ``on_date`` in the actor's scope (or at one ``site``) with
    the phone to remind: their number and one page, by site, time and booking.

    The phone is masked unless the actor sees identifiers; the page read is audited.
    """
    query = (select(Booking, VaccinationSession, VaccinationSite)
             .join(VaccinationSession, VaccinationSession.id == Booking.session_id)
             .join(VaccinationSite, VaccinationSite.id == VaccinationSession.site_id)
             .where(VaccinationSession.on_date == on_date, Booking.status == "booked",
                    VaccinationSite.division_prefix.like(actor.division_prefix + "%"))
             .order_by(VaccinationSite.code, VaccinationSession.start, Booking.id))
    if site:
        query = query.where(VaccinationSite.code == site)
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    out = []
    for b, s, site in rows:
        slot = session.get(SessionSlot, b.slot_id) if b.slot_id else None
        phone = b.phone if actor.sees_identifiers else mask_phone(b.phone)
        out.append({"booking_id": b.id, "name": b.person_name, "phone": phone,
                    "site_code": site.code, "site_name": site.name, "place": s.place,
                    "on_date": s.on_date.isoformat(),
                    "time": slot.start if slot else s.start, "vaccines": b.vaccines})
    if out:
        audit(session, actor, "list", "imm_booking", "",
              detail=f"reminders {on_date.isoformat()}: {len(out)}")
    return total, out
