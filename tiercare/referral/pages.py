"""Web pages of two-way referral: referral form, inboxes, detail with accept-and-book, slip,
dashboard. They call :mod:`tiercare.referral.service` exactly like the REST API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError
from tiercare.referral import service
from tiercare.referral.indicators import referral_indicators
from tiercare.referral.rules import criteria_on
from tiercare.registry.models import Facility
from tiercare.residents.models import Resident
from tiercare.scheduling.api import start_write_transaction
from tiercare.scheduling.models import Appointment, Slot
from tiercare.scheduling.pages import explain, redirect, render
from tiercare.web.deps import SessionDep
from tiercare.web.pages import ViewerDep

router = APIRouter(include_in_schema=False)
REFUSED = (ConflictError, InputError, NotFoundError, ValidationError, ValueError)


@router.get("/referrals", response_class=HTMLResponse)
def inbox_page(request: Request, session: SessionDep, viewer: ViewerDep, box: str = "incoming",
               status: str = "", page: int = 1) -> Response:
    """Incoming / outgoing referrals of the viewer's facility; overdue ones highlighted."""
    box = box if box in ("incoming", "outgoing") else "incoming"
    page = max(page, 1)
    total, items = service.inbox(session, viewer.actor, box=box, status=status or None,
                                 offset=(page - 1) * 50, limit=50)
    counts = {b: service.inbox(session, viewer.actor, box=b, status="requested", limit=1)[0]
              for b in ("incoming", "outgoing")}
    _, notes = service.notifications(session, viewer.actor, unread_only=True, limit=10)
    return render(request, "referral_inbox.html", viewer=viewer, box=box, status=status,
                  items=items, total=total, page=page, counts=counts, notes=notes)


def _form_context(session: Any, viewer: Any, resident_id: int | None, service_code: str
                  ) -> dict[str, Any]:
    residents = list(session.scalars(select(Resident).where(
        viewer.actor.division_clause(Resident.village_code), Resident.active.is_(True))
        .order_by(Resident.name).limit(300)))
    suggestions: list[Any] = []
    own = session.get(Facility, viewer.actor.facility_id) if viewer.actor.facility_id else None
    if resident_id:
        try:
            suggestions = service.suggest_receivers(
                session, resident_id=resident_id, service=service_code,
                from_level=own.level if own else "village")
        except (InputError, NotFoundError):
            suggestions = []
    targets = list(session.scalars(select(Facility).where(
        Facility.closed_on.is_(None), Facility.level.in_(("secondary", "tertiary")))
        .order_by(Facility.code)))
    return {"residents": residents, "suggestions": suggestions, "targets": targets,
            "criteria": criteria_on(date.today()), "resident_id": resident_id,
            "service_code": service_code, "own": own}


@router.get("/referrals/new", response_class=HTMLResponse)
def new_referral(request: Request, session: SessionDep, viewer: ViewerDep,
                 resident_id: int | None = None, service_code: str = "") -> Response:
    """The village doctor's referral form with suggested receiving facilities."""
    return render(request, "referral_form.html", viewer=viewer,
                  **_form_context(session, viewer, resident_id, service_code))


@router.post("/referrals/new", response_class=HTMLResponse)
async def submit_referral(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Send the referral; problems re-render the form with every reason."""
    form = await request.form()
    try:
        attachments = []
        if str(form.get("attachment_text") or "").strip():
            attachments.append({"name": str(form.get("attachment_name") or "附件"),
                                "text": str(form.get("attachment_text"))})
        data = service.ReferralIn(
            resident_id=int(str(form.get("resident_id") or 0)),
            to_facility_code=str(form.get("to_facility_code") or ""),
            urgency=str(form.get("urgency") or "routine"), reason=str(form.get("reason") or ""),
            criteria=[str(c) for c in form.getlist("criteria")],
            summary=str(form.get("summary") or ""),
            department=str(form.get("department") or ""),
            service=str(form.get("service") or ""), attachments=attachments)
        r = service.create_referral(session, viewer.actor, data)
    except REFUSED as exc:
        session.rollback()
        message = explain(exc) if not isinstance(exc, ValidationError) else "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        rid = str(form.get("resident_id") or "")
        return render(request, "referral_form.html", viewer=viewer, status_code=422,
                      error=message, **_form_context(session, viewer,
                                                     int(rid) if rid.isdigit() else None, ""))
    return redirect(f"/referrals/{r.id}", msg=f"{r.number} sent")


@router.get("/referrals/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, viewer: ViewerDep, days: int = 90
              ) -> Response:
    """Indicators of the referral flow for the viewer's area."""
    end = date.today()
    start = end - timedelta(days=max(1, min(days, 730)))
    data = referral_indicators(session, viewer.actor, start=start, end=end)
    months = sorted({p["month"] for p in data["by_pair_month"]})
    flows: dict[str, dict[str, int]] = {m: {"up": 0, "down": 0} for m in months}
    for p in data["by_pair_month"]:
        flows[p["month"]][p["direction"]] += p["count"]
    top_pairs: dict[tuple[str, str, str], int] = {}
    for p in data["by_pair_month"]:
        key = (p["direction"], p["from_facility"], p["to_facility"])
        top_pairs[key] = top_pairs.get(key, 0) + p["count"]
    names = dict(session.execute(select(Facility.code, Facility.name)).all())
    pairs = sorted(top_pairs.items(), key=lambda kv: -kv[1])[:20]
    return render(request, "referral_dashboard.html", viewer=viewer, data=data, flows=flows,
                  pairs=pairs, names=names, days=days, start=start, end=end)


def _slots_for(session: Any, r: Any) -> list[Slot]:
    now = utcnow()
    query = select(Slot).where(
        Slot.facility_id == r.to_facility_id, Slot.start > now, Slot.status == "open",
        Slot.referral_booked < Slot.referral_capacity, Slot.booked < Slot.capacity,
        Slot.referral_opens_at <= now).order_by(Slot.start).limit(40)
    if r.department:
        dept = list(session.scalars(query.where(Slot.department == r.department)))
        if dept:
            return dept
    return list(session.scalars(query))


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
def detail(referral_id: int, request: Request, session: SessionDep, viewer: ViewerDep
           ) -> Response:
    """A referral with its history and the actions open to the viewer."""
    try:
        r = service.get_referral(session, viewer.actor, referral_id)
    except NotFoundError:
        return render(request, "not_found.html", viewer=viewer, status_code=404,
                      what=f"referral {referral_id}")
    receiver = service.acts_for(viewer.actor, r.to_facility)
    sender = service.acts_for(viewer.actor, r.from_facility)
    primaries = list(session.scalars(select(Facility).where(
        Facility.closed_on.is_(None), Facility.level.in_(("primary", "village")))
        .order_by(Facility.level, Facility.code)))
    appointment = session.get(Appointment, r.appointment_id) if r.appointment_id else None
    return render(request, "referral_detail.html", viewer=viewer, appointment=appointment,
                  r=service.referral_dict(r, with_identity=True, actor=viewer.actor),
                  events=service.events(session, r), follow_ups=service.follow_ups(session, r),
                  slots=_slots_for(session, r) if receiver and r.status in (
                      "requested", "accepted") else [],
                  receiver=receiver, sender=sender, primaries=primaries,
                  criteria=criteria_on(date.today()))


@router.post("/referrals/{referral_id}/{action}", response_class=HTMLResponse)
async def act(referral_id: int, action: str, request: Request, session: SessionDep,
              viewer: ViewerDep) -> Response:
    """Accept-and-book, decline, arrive, complete, cancel, down-refer, follow up."""
    form = await request.form()
    actor = viewer.actor
    target = f"/referrals/{referral_id}"
    try:
        start_write_transaction(session)
        if action == "accept-and-book":
            service.accept_and_book(session, actor, referral_id,
                                    slot_id=int(str(form.get("slot_id"))),
                                    idempotency_key=str(form.get("idempotency_key") or "")
                                    or None)
        elif action == "accept":
            service.accept(session, actor, referral_id)
        elif action == "schedule":
            service.schedule(session, actor, referral_id, slot_id=int(str(form.get("slot_id"))))
        elif action == "decline":
            service.decline(session, actor, referral_id, reason=str(form.get("reason") or ""))
        elif action == "arrive":
            service.arrive(session, actor, referral_id)
        elif action == "complete":
            service.complete(session, actor, referral_id, note=str(form.get("note") or ""))
        elif action == "cancel":
            service.cancel(session, actor, referral_id, reason=str(form.get("reason") or
                                                                   "withdrawn"))
        elif action == "down-refer":
            plan = service.FollowUpPlan(
                kind=str(form.get("kind") or "chronic_disease"),
                diagnosis=str(form.get("diagnosis") or ""),
                instructions=str(form.get("instructions") or ""),
                interval_days=int(str(form.get("interval_days") or 30)),
                visits=int(str(form.get("visits") or 3)))
            down = service.down_refer(session, actor, referral_id,
                                      to_facility_code=str(form.get("to_facility_code")),
                                      plan=plan, reason=str(form.get("reason") or ""),
                                      criteria=[str(c) for c in form.getlist("criteria")])
            target = f"/referrals/{down.id}"
        elif action == "follow-up":
            service.record_follow_up(session, actor, referral_id,
                                     kind=str(form.get("kind") or "visit"),
                                     note=str(form.get("note") or ""))
        else:
            return redirect(target, err=f"unknown action {action}")
    except REFUSED as exc:
        session.rollback()
        message = explain(exc) if not isinstance(exc, ValidationError) else "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return redirect(f"/referrals/{referral_id}", err=message)
    done = {"accept-and-book": "已接收并预约 / accepted and booked", "accept": "已接收 / accepted",
            "schedule": "已预约 / booked", "decline": "已拒绝 / declined",
            "arrive": "已到达 / arrived", "complete": "已完成 / completed",
            "cancel": "已撤回 / withdrawn", "down-refer": "已下转 / referred down",
            "follow-up": "已记录随访 / follow-up recorded"}
    return redirect(target, msg=done[action])


@router.get("/referrals/{referral_id}/slip", response_class=HTMLResponse)
def slip(referral_id: int, request: Request, session: SessionDep, viewer: ViewerDep
         ) -> Response:
    """The printable referral slip (转诊单)."""
    try:
        r = service.get_referral(session, viewer.actor, referral_id)
    except NotFoundError:
        return render(request, "not_found.html", viewer=viewer, status_code=404,
                      what=f"referral {referral_id}")
    appointment = None
    if r.appointment_id is not None:
        appointment = session.get(Appointment, r.appointment_id)
    criteria = {c.code: c for c in criteria_on(date.today()).up + criteria_on(date.today()).down}
    return render(request, "referral_slip.html", viewer=viewer,
                  r=service.referral_dict(r, with_identity=True, actor=viewer.actor),
                  appointment=appointment, criteria=criteria)
