"""Web pages of appointments: booking page, day calendar of a clinic, schedule editor.

The pages use the same services as the REST API. Templates live in this package and in
:mod:`tiercare.referral`; they extend the web layout (``base.html``) through a loader that
searches this domain's folders first, then the web app's. Labels are bilingual in the
templates through the ``L(zh, en)`` helper (the viewer's language picks one).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader, pass_context
from pydantic import ValidationError
from sqlalchemy import select

from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError
from tiercare.paging import MAX_PAGE
from tiercare.registry.models import Facility
from tiercare.residents.models import Resident
from tiercare.scheduling import service
from tiercare.scheduling.api import start_write_transaction
from tiercare.scheduling.models import Schedule
from tiercare.scheduling.service import STAFF_ROLES, ScheduleIn, SessionIn, as_utc
from tiercare.web.deps import SessionDep
from tiercare.web.i18n import LANGUAGES, Translator
from tiercare.web.pages import TEMPLATE_DIR as WEB_TEMPLATES
from tiercare.web.pages import Viewer, ViewerDep
from tiercare.web.pages import templates as web_templates

TEMPLATE_DIRS = [Path(__file__).with_name("templates"),
                 Path(__file__).parents[1] / "referral" / "templates", WEB_TEMPLATES]

templates = Jinja2Templates(directory=TEMPLATE_DIRS[0])
templates.env.loader = ChoiceLoader([FileSystemLoader(str(d)) for d in TEMPLATE_DIRS])
templates.env.filters.update(web_templates.env.filters)


@pass_context
def _bilingual(context: Any, zh: str, en: str) -> str:
    """``L("转诊", "Referral")`` — the text in the page language."""
    return en if context.get("lang") == "en" else zh


templates.env.globals["L"] = _bilingual

STATUS_LABELS = {
    "requested": ("待接收", "requested"), "accepted": ("已接收", "accepted"),
    "declined": ("已拒绝", "declined"), "scheduled": ("已预约", "scheduled"),
    "arrived": ("已到达", "arrived"), "completed": ("已完成", "completed"),
    "cancelled": ("已撤回", "cancelled"), "expired": ("已过期", "expired"),
    "booked": ("已预约", "booked"), "checked_in": ("已签到", "checked in"),
    "seen": ("已就诊", "seen"), "no_show": ("爽约", "no-show"),
}


@pass_context
def _status_label(context: Any, code: str) -> str:
    """Display label of a referral or appointment status in the page language."""
    zh, en = STATUS_LABELS.get(code, (code, code))
    return en if context.get("lang") == "en" else zh


templates.env.filters["status"] = _status_label
router = APIRouter(include_in_schema=False)


def local_time(value: Any, fmt: str = "%Y-%m-%d %H:%M", timezone: str = "Asia/Shanghai") -> str:
    """A stored UTC timestamp (datetime or ISO text) in local wall-clock time."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value).astimezone(ZoneInfo(timezone)).strftime(fmt)


templates.env.filters["local"] = local_time


def render(request: Request, name: str, *, viewer: Viewer, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """Render one of this domain's pages inside the common layout."""
    other = [code for code in LANGUAGES if code != viewer.lang]
    return templates.TemplateResponse(request, name, {
        "t": Translator(viewer.lang), "lang": viewer.lang, "viewer": viewer,
        "switch_links": [(code, str(request.url.include_query_params(lang=code)))
                         for code in other],
        "path": request.url.path, "message": request.query_params.get("msg"),
        "error": context.pop("error", request.query_params.get("err")), **context,
    }, status_code=status_code)


def redirect(path: str, **params: Any) -> RedirectResponse:
    """303 to ``path`` with a message in the query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(path + ("?" + query if query else ""), status_code=303)


def explain(exc: Exception) -> str:
    """A one-line message of a refused action for the page."""
    if isinstance(exc, ConflictError):
        return f"{exc.reason}: {exc}"
    if isinstance(exc, InputError):
        return "; ".join(str(p) for p in exc.problems)
    return str(exc)


def _facilities(session: Any, *, with_slots: bool = False) -> list[Facility]:
    query = select(Facility).where(Facility.closed_on.is_(None)).order_by(Facility.level.desc(),
                                                                         Facility.code)
    if with_slots:
        query = query.where(Facility.id.in_(select(Schedule.facility_id)))
    return list(session.scalars(query))


# --------------------------------------------------------------------------- booking page


@router.get("/booking", response_class=HTMLResponse)
def booking_page(request: Request, session: SessionDep, viewer: ViewerDep,
                 facility: str = "", department: str = "", day: str = "",
                 resident_id: int | None = None) -> Response:
    """Pick facility, department, day and a minute slot; book it for a resident."""
    settings = request.app.state.settings
    facilities = _facilities(session, with_slots=True)
    chosen = facility or (facilities[0].code if facilities else "")
    departments = sorted(set(session.scalars(select(Schedule.department).join(
        Facility, Facility.id == Schedule.facility_id).where(Facility.code == chosen))))
    try:
        the_day = date.fromisoformat(day) if day else date.today() + timedelta(days=1)
    except ValueError:
        the_day = date.today() + timedelta(days=1)
    slots: list[dict[str, Any]] = []
    if chosen:
        _, slots = service.list_slots(session, facility=chosen, department=department or None,
                                      day=the_day, timezone=settings.timezone, limit=200)
    now = utcnow()
    for s in slots:
        s["open_now"] = as_utc_iso(s["opens_at"]) <= now
    residents = list(session.scalars(select(Resident).where(
        viewer.actor.division_clause(Resident.village_code), Resident.active.is_(True))
        .order_by(Resident.name).limit(200)))
    return render(request, "booking.html", viewer=viewer, facilities=facilities,
                  facility=chosen, departments=departments, department=department,
                  day=the_day, slots=slots, residents=residents, resident_id=resident_id,
                  prev_day=the_day - timedelta(days=1), next_day=the_day + timedelta(days=1))


def as_utc_iso(text: str) -> Any:
    """An ISO timestamp as an aware UTC datetime."""
    return as_utc(datetime.fromisoformat(text))


@router.post("/booking", response_class=HTMLResponse)
async def booking_submit(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Book the chosen slot (general pool) with a per-form idempotency key."""
    form = await request.form()
    back = {"facility": form.get("facility"), "department": form.get("department"),
            "day": form.get("day")}
    try:
        start_write_transaction(session)
        appointment, created = service.book(
            session, viewer.actor, slot_id=int(str(form.get("slot_id"))),
            resident_id=int(str(form.get("resident_id") or 0)),
            idempotency_key=str(form.get("idempotency_key") or "") or None)
    except (ConflictError, InputError, NotFoundError, ValueError) as exc:
        session.rollback()
        return redirect("/booking", err=explain(exc), **back)
    word = "已预约" if viewer.lang != "en" else "Booked"
    return redirect("/booking", msg=f"{word} #{appointment.id} "
                    f"{local_time(appointment.start)}", **back)


# --------------------------------------------------------------------------- day calendar


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(request: Request, session: SessionDep, viewer: ViewerDep,
                  facility: str = "", day: str = "", department: str = "") -> Response:
    """A clinic's day: its slots (one page of the largest size), who is booked, arrival and
    waiting time."""
    settings = request.app.state.settings
    facilities = [f for f in _facilities(session, with_slots=True)
                  if viewer.actor.facility_id in (None, f.id)]
    chosen = facility or (facilities[0].code if facilities else "")
    try:
        the_day = date.fromisoformat(day) if day else date.today()
    except ValueError:
        the_day = date.today()
    rows: list[dict[str, Any]] = []
    slots = 0
    error = None
    if chosen:
        try:
            slots, rows = service.day_calendar(session, viewer.actor, facility=chosen,
                                               day=the_day, department=department or None,
                                               timezone=settings.timezone, limit=MAX_PAGE)
        except InputError as exc:
            error = explain(exc)
    booked = sum(len(r["appointments"]) for r in rows)
    return render(request, "calendar.html", viewer=viewer, facilities=facilities,
                  facility=chosen, day=the_day, rows=rows, slots=slots, booked=booked,
                  error=error,
                  prev_day=the_day - timedelta(days=1), next_day=the_day + timedelta(days=1),
                  can_act=viewer.actor.role in STAFF_ROLES)


@router.post("/calendar/{appointment_id}/{action}", response_class=HTMLResponse)
def calendar_action(appointment_id: int, action: str, request: Request, session: SessionDep,
                    viewer: ViewerDep) -> Response:
    """Check in, seen, no-show or cancel from the calendar."""
    functions = {"check-in": service.check_in, "seen": service.mark_seen,
                 "no-show": service.mark_no_show, "cancel": service.cancel_appointment}
    back = dict(request.query_params)
    if action not in functions:
        return redirect("/calendar", err=f"unknown action {action}", **back)
    try:
        start_write_transaction(session)
        functions[action](session, viewer.actor, appointment_id)
    except (ConflictError, InputError, NotFoundError) as exc:
        session.rollback()
        return redirect("/calendar", err=explain(exc), **back)
    return redirect("/calendar", msg=f"#{appointment_id} {action}", **back)


# --------------------------------------------------------------------------- schedule editor


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Schedules in scope, a form for a new weekly template and slot generation."""
    total, items = service.list_schedules(session, viewer.actor, limit=200)
    facilities = [f for f in _facilities(session)
                  if f.level in ("secondary", "tertiary", "primary")
                  and (viewer.actor.facility_id in (None, f.id))]
    return render(request, "schedules.html", viewer=viewer, items=items, total=total,
                  facilities=facilities, today=date.today(),
                  can_edit=viewer.actor.role in STAFF_ROLES)


@router.post("/schedules", response_class=HTMLResponse)
async def schedules_submit(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Create a schedule from the form (weekdays ticked, one session per day)."""
    form = await request.form()
    try:
        weekdays = [int(str(d)) for d in form.getlist("weekday")]
        data = ScheduleIn(
            facility_code=str(form.get("facility_code")), department=str(form.get("department")),
            name=str(form.get("name")), expert=form.get("expert") == "on",
            slot_minutes=int(str(form.get("slot_minutes") or 10)),
            capacity_per_slot=int(str(form.get("capacity") or 1)),
            weekly=[SessionIn(weekday=d, start=str(form.get("start")), end=str(form.get("end")))
                    for d in weekdays],
            effective_from=date.fromisoformat(str(form.get("effective_from"))))
        schedule = service.create_schedule(session, viewer.actor, data)
        days = int(str(form.get("generate_days") or 0))
        if days > 0:
            service.generate_slots(session, viewer.actor, schedule.id, start=date.today(),
                                   end=date.today() + timedelta(days=days))
    except ValidationError as exc:
        session.rollback()
        return redirect("/schedules", err="; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))
    except (InputError, ValueError) as exc:
        session.rollback()
        return redirect("/schedules", err=explain(exc))
    return redirect("/schedules", msg=f"schedule {schedule.id}")


@router.post("/schedules/{schedule_id}/generate", response_class=HTMLResponse)
async def schedules_generate(schedule_id: int, request: Request, session: SessionDep,
                             viewer: ViewerDep) -> Response:
    """Generate slots for the next N days."""
    form = await request.form()
    try:
        days = int(str(form.get("days") or 14))
        n = service.generate_slots(session, viewer.actor, schedule_id, start=date.today(),
                                   end=date.today() + timedelta(days=days))
    except (InputError, NotFoundError, ValueError) as exc:
        session.rollback()
        return redirect("/schedules", err=explain(exc))
    return redirect("/schedules", msg=f"{n} slots")
