"""REST API of two-way referral under ``/api/v1``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from pydantic import BaseModel, Field

from tiercare.db.base import utcnow
from tiercare.referral import service
from tiercare.referral.indicators import referral_indicators
from tiercare.referral.rules import criteria_on, time_limits_on
from tiercare.referral.service import FollowUpPlan, ReferralIn
from tiercare.registry.schemas import Page
from tiercare.scheduling.api import start_write_transaction
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1", tags=["referrals"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


class NoteIn(BaseModel):
    """An optional note."""

    note: str = ""


class ReasonIn(BaseModel):
    """A required reason."""

    reason: str = Field(min_length=1, max_length=2000)


class BookSlotIn(BaseModel):
    """The reserved slot to book."""

    slot_id: int
    note: str = ""


class DownReferralIn(BaseModel):
    """Send the patient back to primary care."""

    to_facility_code: str
    reason: str = Field(min_length=1)
    summary: str = ""
    criteria: list[str] = Field(default_factory=list)
    plan: FollowUpPlan


class FollowUpIn(BaseModel):
    """A follow-up contact after a down-referral."""

    kind: str = Field(default="visit", max_length=32)
    note: str = Field(min_length=1, max_length=4000)


def _full(session, actor, r) -> dict:  # type: ignore[no-untyped-def]
    out = service.referral_dict(r, with_identity=True, actor=actor)
    out["events"] = service.events(session, r)
    out["follow_ups"] = service.follow_ups(session, r)
    return out


@router.get("/referral-criteria", summary="Referral criteria checklist in force")
def criteria(actor: ActorDep, on: date | None = None) -> dict:
    """The versioned checklist (DOMAIN.md §3) and the time limits per urgency."""
    day = on or utcnow().date()
    version = criteria_on(day)
    limits = time_limits_on(day)
    return {
        "version": version.version, "effective_from": version.effective_from.isoformat(),
        "up": [c.__dict__ for c in version.up], "down": [c.__dict__ for c in version.down],
        "time_limits": {"version": limits.version,
                        **{u: lim.__dict__ for u, lim in limits.limits.items()}},
    }


@router.post("/referrals", status_code=201, summary="Send a referral")
def create(data: ReferralIn, session: SessionDep, actor: ActorDep) -> dict:
    """Up- or down-referral with reason, urgency, criteria met, summary and attachments."""
    return _full(session, actor, service.create_referral(session, actor, data))


@router.get("/referrals", response_model=Page, summary="Referral inbox / outbox")
def inbox(session: SessionDep, actor: ActorDep,
          box: Annotated[str, Query(description="incoming | outgoing")] = "incoming",
          status: str | None = None, direction: str | None = None, overdue: bool = False,
          offset: Offset = 0, limit: Limit = 50) -> Page:
    """Open requests first (emergency first); ``overdue`` marks unanswered past the limit."""
    total, items = service.inbox(session, actor, box=box, status=status, direction=direction,
                                 overdue=overdue, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.get("/referrals/suggestions", summary="Suggest receiving facilities")
def suggestions(session: SessionDep, actor: ActorDep, resident_id: int, service_code: Annotated[
        str, Query(alias="service", description="Service or centre, e.g. stroke")] = "",
        limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[dict]:
    """Higher-tier facilities with the service, nearest first (travel estimate), then by free
    reserved places in the next 14 days: the ``limit`` best (at most 50), not paginated."""
    level = "village"
    if actor.facility_id is not None:
        from tiercare.registry.models import Facility

        own = session.get(Facility, actor.facility_id)
        level = own.level if own else level
    return [s.__dict__ for s in service.suggest_receivers(
        session, resident_id=resident_id, service=service_code, from_level=level, limit=limit)]


@router.get("/referrals/{referral_id}", summary="Read a referral (audited)")
def read(referral_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """With its transitions and follow-ups."""
    return _full(session, actor, service.get_referral(session, actor, referral_id))


@router.post("/referrals/{referral_id}/accept", summary="Accept (without booking)")
def accept(referral_id: int, data: NoteIn, session: SessionDep, actor: ActorDep) -> dict:
    """requested → accepted."""
    return _full(session, actor, service.accept(session, actor, referral_id, note=data.note))


@router.post("/referrals/{referral_id}/accept-and-book",
             summary="Accept and book a reserved slot in one step")
def accept_and_book(referral_id: int, data: BookSlotIn, session: SessionDep, actor: ActorDep,
                    idempotency_key: IdempotencyKey = None) -> dict:
    """requested → accepted → scheduled in one transaction; 409 ``quota_full`` leaves the
    referral requested."""
    start_write_transaction(session)
    return _full(session, actor, service.accept_and_book(
        session, actor, referral_id, slot_id=data.slot_id, note=data.note,
        idempotency_key=idempotency_key))


@router.post("/referrals/{referral_id}/schedule", summary="Book a reserved slot")
def schedule(referral_id: int, data: BookSlotIn, session: SessionDep, actor: ActorDep,
             idempotency_key: IdempotencyKey = None) -> dict:
    """accepted → scheduled."""
    start_write_transaction(session)
    return _full(session, actor, service.schedule(session, actor, referral_id,
                                                  slot_id=data.slot_id,
                                                  idempotency_key=idempotency_key))


@router.post("/referrals/{referral_id}/decline", summary="Decline with a reason")
def decline(referral_id: int, data: ReasonIn, session: SessionDep, actor: ActorDep) -> dict:
    """requested → declined."""
    return _full(session, actor, service.decline(session, actor, referral_id,
                                                 reason=data.reason))


@router.post("/referrals/{referral_id}/arrive", summary="The patient arrived")
def arrive(referral_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """scheduled / accepted → arrived (the appointment is checked in)."""
    return _full(session, actor, service.arrive(session, actor, referral_id))


@router.post("/referrals/{referral_id}/complete", summary="Treatment finished")
def complete(referral_id: int, data: NoteIn, session: SessionDep, actor: ActorDep) -> dict:
    """arrived → completed."""
    return _full(session, actor, service.complete(session, actor, referral_id,
                                                  note=data.note))


@router.post("/referrals/{referral_id}/cancel", summary="Withdraw a referral")
def cancel(referral_id: int, data: ReasonIn, session: SessionDep, actor: ActorDep) -> dict:
    """By the sender; a booked reserved place is given back."""
    return _full(session, actor, service.cancel(session, actor, referral_id,
                                                reason=data.reason))


@router.post("/referrals/{referral_id}/down-referral", status_code=201,
             summary="Refer the patient back down with a follow-up plan")
def down_referral(referral_id: int, data: DownReferralIn, session: SessionDep,
                  actor: ActorDep) -> dict:
    """Creates a down-referral answering the up-referral in the path."""
    r = service.down_refer(session, actor, referral_id, to_facility_code=data.to_facility_code,
                           plan=data.plan, reason=data.reason, summary=data.summary,
                           criteria=data.criteria)
    return _full(session, actor, r)


@router.post("/referrals/{referral_id}/follow-ups", status_code=201,
             summary="Record a follow-up of a down-referred patient")
def follow_up(referral_id: int, data: FollowUpIn, session: SessionDep, actor: ActorDep) -> dict:
    """By the receiving primary unit."""
    row = service.record_follow_up(session, actor, referral_id, kind=data.kind, note=data.note)
    return {"id": row.id, "kind": row.kind, "note": row.note}


@router.post("/referrals/expire", summary="Expire unanswered referrals past their limit")
def expire(session: SessionDep, actor: ActorDep) -> dict:
    """Administrators (or a scheduled job) run this."""
    if actor.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "administrators only")
    return {"expired": service.expire_overdue(session)}


@router.get("/notifications", response_model=Page, summary="Your facility's notifications")
def notifications(session: SessionDep, actor: ActorDep, unread: bool = False,
                  offset: Offset = 0, limit: Limit = 50) -> Page:
    """Newest first."""
    total, items = service.notifications(session, actor, unread_only=unread, offset=offset,
                                         limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/notifications/{notification_id}/read", status_code=204,
             summary="Mark a notification read")
def read_notification(notification_id: int, session: SessionDep, actor: ActorDep) -> None:
    """Only your facility's notifications."""
    service.mark_read(session, actor, notification_id)


@router.get("/indicators/referral", summary="Referral and appointment indicators")
def indicators(session: SessionDep, actor: ActorDep, start: date | None = None,
               end: date | None = None) -> dict:
    """Up/down referrals by pair and month, acceptance and completion rates, time to
    acceptance, share treated within the county, appointment rate and waiting time."""
    end = end or utcnow().date()
    start = start or end - timedelta(days=90)
    return referral_indicators(session, actor, start=start, end=end)
