"""REST API of schedules, slots and appointments under ``/api/v1``.

Conflicts answer 409 with a machine reason: ``slot_full``, ``quota_full``,
``overlapping_appointment``, ``outside_release_window``, ``slot_in_past``,
``idempotency_key_reused``, ``past_cancellation_deadline``, ``invalid_transition``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor
from tiercare.registry.schemas import Page
from tiercare.scheduling import service
from tiercare.scheduling.rules import china_calendar
from tiercare.scheduling.service import ScheduleIn
from tiercare.web.deps import (
    ActorDep,
    AuthenticateBeforeRefusingRoute,
    BearerDep,
    Limit,
    Offset,
    SessionDep,
    SettingsDep,
    run_authenticated,
)

router = APIRouter(prefix="/api/v1", tags=["appointments"])
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", description="Client-chosen key; a retry with the same key "
    "returns the first booking instead of booking twice")]


def start_write_transaction(session: Session) -> None:
    """End the read-only transaction opened by authentication before a booking.

    On SQLite (WAL) a transaction that has read and then writes fails at once when another
    writer committed in between; ending the reads here makes the booking's first statement
    its first write, which waits for the lock instead. PostgreSQL needs nothing.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.commit()


class GenerateIn(BaseModel):
    """Days to generate slots for (inclusive)."""

    start: date
    end: date


class ExceptionIn(BaseModel):
    """A closed day or special hours."""

    on_date: date
    kind: str = Field(description="closed | hours")
    start: str | None = None
    end: str | None = None
    reason: str = ""


class BookIn(BaseModel):
    """Book a general place (reserved places are booked through a referral)."""

    slot_id: int
    resident_id: int


class RescheduleIn(BaseModel):
    """Move an appointment to another slot."""

    slot_id: int


class CancelIn(BaseModel):
    """Why the appointment is cancelled."""

    reason: str = ""


@router.get("/holidays", tags=["schedules"], summary="Public holidays and make-up working days")
def holidays(actor: ActorDep, year: Annotated[int, Query(ge=2000, le=2100)]) -> list[dict]:
    """The versioned calendar (data file) for one year, by date: a few dozen days at most,
    so it is not paginated."""
    return [{"date": d.day.isoformat(), "kind": d.kind, "name_zh": d.name_zh,
             "name_en": d.name_en}
            for d in sorted(china_calendar().days.values(), key=lambda d: d.day)
            if d.day.year == year]


@router.get("/schedules", response_model=Page, tags=["schedules"], summary="List schedules")
def list_schedules(session: SessionDep, actor: ActorDep, facility: str | None = None,
                   offset: Offset = 0, limit: Limit = 50) -> Page:
    """Schedules of facilities in your scope."""
    total, items = service.list_schedules(session, actor, facility=facility, offset=offset,
                                          limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/schedules", status_code=201, tags=["schedules"], summary="Create a schedule")
def create_schedule(data: ScheduleIn, session: SessionDep, actor: ActorDep) -> dict:
    """A weekly template; release windows and referral share default to the booking policy."""
    return service.schedule_dict(service.create_schedule(session, actor, data))


@router.get("/schedules/{schedule_id}", tags=["schedules"], summary="Read a schedule")
def read_schedule(schedule_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """One schedule."""
    return service.schedule_dict(service.get_schedule(session, actor, schedule_id))


@router.post("/schedules/{schedule_id}/exceptions", status_code=201, tags=["schedules"],
             summary="Close a day or change its hours")
def add_exception(schedule_id: int, data: ExceptionIn, session: SessionDep,
                  actor: ActorDep) -> dict:
    """Exceptions take precedence over holidays and the weekly plan."""
    row = service.add_exception(session, actor, schedule_id, on_date=data.on_date,
                                kind=data.kind, start=data.start, end=data.end,
                                reason=data.reason)
    return {"id": row.id, "on_date": row.on_date.isoformat(), "kind": row.kind}


@router.post("/schedules/{schedule_id}/slots", tags=["schedules"],
             summary="Generate the slots of a period")
def generate(schedule_id: int, data: GenerateIn, session: SessionDep, actor: ActorDep) -> dict:
    """Creates missing slots (holidays, make-up days and exceptions applied)."""
    n = service.generate_slots(session, actor, schedule_id, start=data.start, end=data.end)
    return {"created": n}


@router.get("/slots", response_model=Page, tags=["appointments"], summary="Find slots")
def list_slots(session: SessionDep, actor: ActorDep, settings: SettingsDep,
               facility: str | None = None, department: str | None = None,
               day: Annotated[date | None, Query(description="Local day")] = None,
               free_only: bool = False, offset: Offset = 0, limit: Limit = 100) -> Page:
    """Minute-precise slots with free places per pool (general / referral)."""
    total, items = service.list_slots(session, facility=facility, department=department,
                                      day=day, free_only=free_only, timezone=settings.timezone,
                                      offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


async def create_appointment(data: BookIn, request: Request, response: Response,
                             credentials: BearerDep,
                             idempotency_key: IdempotencyKey = None) -> dict:
    """Books a general place. 201 when booked, 200 when a retry with the same
    ``Idempotency-Key`` finds the first booking; 409 with a reason otherwise."""
    def book_place(session: Session, actor: Actor) -> tuple[dict, bool]:
        start_write_transaction(session)
        appointment, created = service.book(session, actor, slot_id=data.slot_id,
                                            resident_id=data.resident_id,
                                            idempotency_key=idempotency_key)
        return service.appointment_dict(appointment), created

    booked, created = await run_authenticated(request, credentials, book_place)
    if not created:
        response.status_code = 200
    return booked


# Authentication happens in the handler (one thread hand-off per booking), after FastAPI has
# validated the body: this route class still answers 401 before 422, like the other routes.
router.add_api_route("/appointments", create_appointment, methods=["POST"], status_code=201,
                     summary="Book a place (idempotent)",
                     route_class_override=AuthenticateBeforeRefusingRoute)


@router.get("/appointments", response_model=Page, summary="List appointments")
def list_appointments(session: SessionDep, actor: ActorDep, resident_id: int | None = None,
                      facility: str | None = None, status: str | None = None,
                      start: datetime | None = None, end: datetime | None = None,
                      offset: Offset = 0, limit: Limit = 50) -> Page:
    """Appointments at your facility or of residents of your area (audited)."""
    total, items = service.list_appointments(session, actor, resident_id=resident_id,
                                             facility=facility, status=status, start=start,
                                             end=end, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.get("/appointments/{appointment_id}", summary="Read an appointment")
def read_appointment(appointment_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """One appointment (audited)."""
    return service.appointment_dict(service.get_appointment(session, actor, appointment_id))


@router.post("/appointments/{appointment_id}/cancel", summary="Cancel an appointment")
def cancel(appointment_id: int, data: CancelIn, session: SessionDep, actor: ActorDep) -> dict:
    """Gives the place back; residents only before the cancellation deadline."""
    start_write_transaction(session)
    return service.appointment_dict(service.cancel_appointment(
        session, actor, appointment_id, reason=data.reason))


@router.post("/appointments/{appointment_id}/reschedule", summary="Move to another slot")
def reschedule(appointment_id: int, data: RescheduleIn, session: SessionDep, actor: ActorDep,
               idempotency_key: IdempotencyKey = None) -> dict:
    """Books the new slot and cancels the old one in one transaction."""
    start_write_transaction(session)
    return service.appointment_dict(service.reschedule_appointment(
        session, actor, appointment_id, slot_id=data.slot_id,
        idempotency_key=idempotency_key))


@router.post("/appointments/{appointment_id}/check-in", summary="The resident arrived")
def check_in(appointment_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """Start of the waiting time."""
    return service.appointment_dict(service.check_in(session, actor, appointment_id))


@router.post("/appointments/{appointment_id}/seen", summary="The clinician saw the resident")
def seen(appointment_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """End of the waiting time."""
    return service.appointment_dict(service.mark_seen(session, actor, appointment_id))


@router.post("/appointments/{appointment_id}/no-show", summary="The resident did not come")
def no_show(appointment_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """Only once the slot has started."""
    return service.appointment_dict(service.mark_no_show(session, actor, appointment_id))


@router.get("/calendar", response_model=Page, summary="Day calendar of a clinic")
def calendar(session: SessionDep, actor: ActorDep, settings: SettingsDep, facility: str,
             day: date, department: str | None = None, offset: Offset = 0,
             limit: Limit = 100) -> Page:
    """Slots of the local day by start time, each with its appointments (names, masked
    identity numbers); the listing is audited."""
    total, items = service.day_calendar(session, actor, facility=facility, day=day,
                                        department=department, timezone=settings.timezone,
                                        offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)
