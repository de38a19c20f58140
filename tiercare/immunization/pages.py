"""Web pages of the immunisation module.

* vaccinators: ``/immunization/today`` (today's due list and bookings of a site),
  ``/immunization/children/{id}`` (record, forecast, *record a dose*);
* site managers: ``/immunization/sites/{code}`` (sessions, stock and alerts, releases);
* village doctors: ``/immunization/worklist`` (printable notice slips, CSV export),
  ``/immunization/reminders`` (families with a booking or a due dose in the coming days);
* families (no account): ``/immunization/family`` (record, due doses, booking a session);
* planners: ``/immunization/coverage`` (coverage table and the map of villages below target).

Pages use the same services as the REST API. Templates live in this package and extend the web
layout (``base.html``) through a loader that searches this folder first, then the web app's;
labels are bilingual through the ``L(zh, en)`` helper.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
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

from tiercare.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    Problem,
    problems_from_validation,
)
from tiercare.immunization import records, releases, sites, stock, worklists
from tiercare.immunization.common import WRITERS, begin_write, in_scope
from tiercare.immunization.models import (
    Release,
    SessionVaccine,
    VaccinationSession,
    VaccinationSite,
)
from tiercare.immunization.records import FAMILY
from tiercare.immunization.schedule import default_schedules
from tiercare.paging import MAX_PAGE
from tiercare.web.deps import SessionDep
from tiercare.web.i18n import LANGUAGES, Translator
from tiercare.web.maps import MapBuilder
from tiercare.web.pages import TEMPLATE_DIR as WEB_TEMPLATES
from tiercare.web.pages import Viewer, ViewerDep
from tiercare.web.pages import templates as web_templates

TEMPLATE_DIRS = [Path(__file__).with_name("templates"), WEB_TEMPLATES]
templates = Jinja2Templates(directory=TEMPLATE_DIRS[0])
templates.env.loader = ChoiceLoader([FileSystemLoader(str(d)) for d in TEMPLATE_DIRS])
templates.env.filters.update(web_templates.env.filters)
router = APIRouter(include_in_schema=False)

STATUS_LABELS = {"due": ("应种", "due"), "overdue": ("逾期", "overdue"),
                 "upcoming": ("即将到期", "upcoming"), "complete": ("已完成", "complete"),
                 "needs_test": ("需先做结素试验", "needs TB test"),
                 "not_applicable": ("不适用", "not applicable")}


@pass_context
def _bilingual(context: Any, zh: str, en: str) -> str:
    """``L("接种", "Vaccination")`` — the text in the page language."""
    return en if context.get("lang") == "en" else zh


@pass_context
def _status(context: Any, code: str) -> str:
    zh, en = STATUS_LABELS.get(code, (code, code))
    return en if context.get("lang") == "en" else zh


def _local(value: str, timezone: str = "Asia/Shanghai") -> str:
    """An ISO UTC timestamp in local wall-clock time."""
    return dt.datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)).strftime(
        "%Y-%m-%d %H:%M")


templates.env.globals["L"] = _bilingual
templates.env.filters["imm_status"] = _status
templates.env.filters["local"] = _local


def _lang(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get("lang") or "zh-CN"
    return "en" if wanted.lower().startswith("en") else "zh-CN"


def render(request: Request, name: str, *, viewer: Viewer | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """Render one of this module's pages inside the common layout (viewer may be None)."""
    lang = viewer.lang if viewer is not None else _lang(request)
    other = [code for code in LANGUAGES if code != lang]
    response = templates.TemplateResponse(request, name, {
        "t": Translator(lang), "lang": lang, "viewer": viewer,
        "switch_links": [(code, str(request.url.include_query_params(lang=code)))
                         for code in other],
        "path": request.url.path, "message": request.query_params.get("msg"),
        "error": context.pop("error", request.query_params.get("err")), **context,
    }, status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return response


def redirect(path: str, **params: Any) -> RedirectResponse:
    """303 to ``path`` with a message in the query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(path + ("?" + query if query else ""), status_code=303)


def explain(exc: Exception) -> str:
    """One line for a refused action."""
    if isinstance(exc, ConflictError):
        return f"{exc.reason}: {exc}"
    if isinstance(exc, InputError):
        return "; ".join(str(p) for p in exc.problems)
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _day(text: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _my_sites(session: Any, viewer: Viewer) -> list[VaccinationSite]:
    return [s for s in session.scalars(select(VaccinationSite).where(
        VaccinationSite.active.is_(True)).order_by(VaccinationSite.code))
        if in_scope(viewer.actor, s)]


@router.get("/immunization", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Entry page: the sites in scope and links to every page."""
    return render(request, "imm_index.html", viewer=viewer, sites=_my_sites(session, viewer))


@router.get("/immunization/today", response_class=HTMLResponse)
def today_page(request: Request, session: SessionDep, viewer: ViewerDep, site: str = "",
               day: str = "") -> Response:
    """Vaccinator's day: bookings of the site and the children due or overdue."""
    choices = _my_sites(session, viewer)
    chosen = site or (choices[0].code if choices else "")
    the_day = _day(day, dt.date.today())
    lines: list[dict[str, Any]] = []
    booked: list[dict[str, Any]] = []
    booked_total = 0
    error = None
    if chosen:
        try:
            table = worklists.work_list(session, viewer.actor, start=the_day, end=the_day,
                                        site=chosen)
            lines = table[table["status"] != "upcoming"].to_dict("records")
            booked_total, booked = sites.reminders(session, viewer.actor, on_date=the_day,
                                                   site=chosen, limit=MAX_PAGE)
        except (InputError, NotFoundError) as exc:
            error = explain(exc)
    return render(request, "imm_today.html", viewer=viewer, sites=choices, site=chosen,
                  day=the_day, lines=lines, booked=booked, booked_total=booked_total,
                  error=error)


@router.get("/immunization/children/{child_id}", response_class=HTMLResponse)
def child_page(request: Request, session: SessionDep, viewer: ViewerDep, child_id: int
               ) -> Response:
    """A child's record, forecast and the form to record a dose (the read is audited)."""
    try:
        c, result = records.child_forecast(session, viewer.actor, child_id,
                                           as_of=dt.date.today())
    except (NotFoundError, InputError) as exc:
        return render(request, "imm_message.html", viewer=viewer, status_code=404,
                      error=explain(exc))
    codes = dict(session.execute(select(VaccinationSite.id, VaccinationSite.code)).all())
    history = [records.record_dict(r, site_code=codes.get(r.site_id))
               for r in records.child_records(session, c.id)]
    due = [s for s in result.series if s.status in ("due", "overdue")]
    return render(request, "imm_child.html", viewer=viewer, child=records.child_dict(
        c, viewer.actor, session=session), history=history, forecast=result, due=due,
        sites=_my_sites(session, viewer), vaccines=sorted(default_schedules().vaccines),
        routes=records.ROUTES, body_sites=records.BODY_SITES, today=dt.date.today())


@router.post("/immunization/children/{child_id}/doses", response_class=HTMLResponse)
async def record_dose_submit(request: Request, session: SessionDep, viewer: ViewerDep,
                             child_id: int) -> Response:
    """Record a dose from the form."""
    form = await request.form()
    back = f"/immunization/children/{child_id}"
    try:
        data = records.DoseIn(
            child_id=child_id, vaccine=str(form.get("vaccine", "")),
            given_on=str(form.get("given_on", "")), site_code=str(form.get("site_code", "")),
            dose_number=int(str(form.get("dose_number"))) if form.get("dose_number") else None,
            vaccinator=str(form.get("vaccinator", "")), lot=str(form.get("lot", "")),
            manufacturer=str(form.get("manufacturer", "")), route=str(form.get("route", "")),
            body_site=str(form.get("body_site", "")))
        rec, created = records.record_dose(session, viewer.actor, data)
    except (InputError, NotFoundError, ValidationError, ValueError) as exc:
        session.rollback()
        return redirect(back, err=explain(exc))
    word = ("已记录" if created else "已存在") if viewer.lang != "en" else \
        ("Recorded" if created else "Already recorded")
    return redirect(back, msg=f"{word}: {rec.vaccine} {rec.given_on.isoformat()}")


@router.get("/immunization/reminders", response_class=HTMLResponse)
def reminders_page(request: Request, session: SessionDep, viewer: ViewerDep, site: str = "",
                   staff: str = "", start: str = "", days: str = "7") -> Response:
    """Families to remind: a booking or a due dose in the coming days (a list; nothing sent)."""
    choices = _my_sites(session, viewer)
    chosen = site if site or staff else (choices[0].code if choices else "")
    first = _day(start, dt.date.today())
    span = int(days) if days.isdigit() else 7
    families: list[dict[str, Any]] = []
    error = None
    if chosen or staff:
        try:
            families = worklists.reminder_list(
                session, viewer.actor, start=first, end=first + dt.timedelta(days=span),
                site=chosen or None, staff=staff or None)
        except (InputError, NotFoundError) as exc:
            error = explain(exc)
    csv_link = "/api/v1/immunization/reminders/families?" + urlencode(
        {k: v for k, v in {"site": chosen, "staff": staff, "start": first.isoformat(),
                           "end": (first + dt.timedelta(days=span)).isoformat(),
                           "format": "csv"}.items() if v})
    return render(request, "imm_reminders.html", viewer=viewer, sites=choices, site=chosen,
                  staff=staff, start=first, days=span, end=first + dt.timedelta(days=span),
                  families=families, error=error, csv_link=csv_link)


@router.get("/immunization/worklist", response_class=HTMLResponse)
def worklist_page(request: Request, session: SessionDep, viewer: ViewerDep, site: str = "",
                  staff: str = "", start: str = "", end: str = "") -> Response:
    """Notice slips of due and overdue doses for a site or a village doctor (printable)."""
    first = _day(start, dt.date.today())
    last = _day(end, first + dt.timedelta(days=14))
    slips: list[dict[str, Any]] = []
    error = None
    if site or staff:
        try:
            table = worklists.work_list(session, viewer.actor, start=first, end=last,
                                        site=site or None, staff=staff or None)
            for child_id, part in table.groupby("child_id", sort=False):
                head = part.iloc[0]
                slips.append({"child_id": int(child_id), "name": head["name"],
                              "village_code": head["village_code"],
                              "guardian": head["guardian"], "phone": head["phone"],
                              "doses": part.to_dict("records")})
        except (InputError, NotFoundError) as exc:
            error = explain(exc)
    csv_link = "/api/v1/immunization/worklists?" + urlencode(
        {k: v for k, v in {"site": site, "staff": staff, "start": first.isoformat(),
                           "end": last.isoformat(), "format": "csv"}.items() if v})
    return render(request, "imm_worklist.html", viewer=viewer, sites=_my_sites(session, viewer),
                  site=site, staff=staff, start=first, end=last, slips=slips, error=error,
                  csv_link=csv_link)


RELEASE_FORM_DEFAULTS = {"code": "", "vaccine": "HPV", "doses": "", "opens_at": "",
                         "closes_at": "", "mode": "arrival", "seed": "", "offer_hours": "24",
                         "sex": "", "min_age": "", "max_age": ""}
"""The release form's fields (text as typed) and their initial values."""


def _site_view(request: Request, session: Any, viewer: Viewer, code: str, *,
               status_code: int = 200, release_form: dict[str, str] | None = None,
               release_errors: dict[str, str] | None = None, error: str | None = None
               ) -> Response:
    try:
        site = sites.site_by_code(session, code)
        sites.require_site(viewer.actor, site)
    except (InputError, NotFoundError) as exc:
        return render(request, "imm_message.html", viewer=viewer, status_code=404,
                      error=explain(exc))
    today = dt.date.today()
    _, upcoming = sites.list_sessions(session, viewer.actor, site=code, start=today,
                                      end=today + dt.timedelta(days=28), limit=100)
    report = stock.stock_report(session, viewer.actor, code)
    rels = [releases.release_dict(session, r) for r in session.scalars(
        select(Release).where(Release.site_id == site.id).order_by(Release.opens_at.desc()))]
    extra = {} if error is None else {"error": error}
    return render(request, "imm_site.html", viewer=viewer, status_code=status_code,
                  site=sites.site_dict(session, site), sessions=upcoming, stock=report,
                  releases=rels, today=today, may_write=viewer.actor.role in WRITERS,
                  release_form=release_form or RELEASE_FORM_DEFAULTS,
                  release_errors=release_errors or {},
                  vaccines=sorted(default_schedules().vaccines), **extra)


@router.get("/immunization/sites/{code}", response_class=HTMLResponse)
def site_page(request: Request, session: SessionDep, viewer: ViewerDep, code: str) -> Response:
    """Site manager: sessions of the next four weeks, stock with alerts, releases."""
    return _site_view(request, session, viewer, code)


def release_input(values: dict[str, str], site_code: str, timezone: str) -> releases.ReleaseIn:
    """Build the release described by the manager's form (text as typed).

    Times are local wall-clock times (``YYYY-MM-DDTHH:MM``) in ``timezone``; sex and the age
    bounds become the eligibility rule. Raises :class:`InputError` with one problem per bad
    field (the form's field names), before anything is written.
    """
    problems: list[Problem] = []

    def whole(name: str) -> int | None:
        text = values.get(name, "").strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            problems.append(Problem(reason="not a whole number", field=name,
                                    code="not_integer"))
            return None

    def moment(name: str) -> dt.datetime | None:
        text = values.get(name, "").strip()
        if not text:
            return None
        try:
            local = dt.datetime.fromisoformat(text)
        except ValueError:
            problems.append(Problem(reason="not a date and time (YYYY-MM-DDTHH:MM)", field=name,
                                    code="not_a_date_time"))
            return None
        return local if local.tzinfo else local.replace(tzinfo=ZoneInfo(timezone))

    doses, seed, offer_hours = whole("doses"), whole("seed"), whole("offer_hours")
    opens_at, closes_at = moment("opens_at"), moment("closes_at")
    min_age, max_age = whole("min_age"), whole("max_age")
    if doses is None and "doses" not in {p.field for p in problems}:
        problems.append(Problem(reason="required", field="doses", code="missing"))
    if opens_at is None and "opens_at" not in {p.field for p in problems}:
        problems.append(Problem(reason="required", field="opens_at", code="missing"))
    if problems:
        raise InputError(problems)
    rule: dict[str, Any] = {"sex": values.get("sex", "").strip() or None,
                            "min_age": min_age, "max_age": max_age}
    try:
        return releases.ReleaseIn(
            code=values.get("code", "").strip(), vaccine=values.get("vaccine", "").strip(),
            site_code=site_code, doses=doses, opens_at=opens_at, closes_at=closes_at,
            mode=values.get("mode", "").strip() or "arrival", seed=seed,
            offer_hours=24 if offer_hours is None else offer_hours,
            eligibility={k: v for k, v in rule.items() if v is not None})
    except ValidationError as exc:
        # The rule's keys (eligibility.sex, .min_age, .max_age) are the form's own fields.
        raise InputError([
            replace(p, field=p.field.removeprefix("eligibility.")) if p.field else p
            for p in problems_from_validation(exc.errors())]) from None


@router.post("/immunization/sites/{code}/releases", response_class=HTMLResponse)
async def create_release_submit(request: Request, session: SessionDep, viewer: ViewerDep,
                                code: str) -> Response:
    """Create a scarce-vaccine release from the manager's form.

    A refused form is shown again (422) with each bad field and its reason; nothing is written.
    """
    form = await request.form()
    values = {name: str(form.get(name, "")) for name in RELEASE_FORM_DEFAULTS}
    if viewer.actor.role not in WRITERS:
        return render(request, "imm_message.html", viewer=viewer, status_code=403,
                      error=f"role '{viewer.actor.role}' may not create releases")
    try:
        site = sites.site_by_code(session, code)
        sites.require_site(viewer.actor, site)
        data = release_input(values, code, request.app.state.settings.timezone)
        begin_write(session)
        release = releases.create_release(session, viewer.actor, data)
    except InputError as exc:
        session.rollback()
        t = Translator(viewer.lang)
        errors: dict[str, str] = {}
        for p in exc.problems:
            name = p.field or ""
            text = t.label("problem", p.code, default=p.reason)
            errors[name] = "; ".join(filter(None, [errors.get(name), text]))
        return _site_view(request, session, viewer, code, status_code=422,
                          release_form=values, release_errors=errors,
                          error=t("problem.form_refused"))
    except NotFoundError as exc:
        session.rollback()
        return render(request, "imm_message.html", viewer=viewer, status_code=404,
                      error=explain(exc))
    word = "已创建放号" if viewer.lang != "en" else "Release created"
    return redirect(f"/immunization/sites/{code}", msg=f"{word}: {release.code}")


@router.post("/immunization/sites/{code}/sessions", response_class=HTMLResponse)
async def open_session_submit(request: Request, session: SessionDep, viewer: ViewerDep,
                              code: str) -> Response:
    """Open a session from the manager's form."""
    form = await request.form()
    back = f"/immunization/sites/{code}"
    try:
        data = sites.SessionIn(on_date=str(form.get("on_date", "")),
                               start=str(form.get("start") or "08:30"),
                               end=str(form.get("end") or "11:30"))
        row = sites.open_session(session, viewer.actor, code, data)
    except (InputError, NotFoundError, ConflictError, ValidationError) as exc:
        session.rollback()
        return redirect(back, err=explain(exc))
    return redirect(back, msg=f"#{row.id} {row.on_date.isoformat()} {row.start}")


@router.get("/immunization/coverage", response_class=HTMLResponse)
def coverage_page(request: Request, session: SessionDep, viewer: ViewerDep,
                  vaccine: str = "MMR", dose: int = 1, as_of: str = "",
                  cohort: str = "") -> Response:
    """Planner: coverage of one dose by village and the map of villages below target."""
    day = _day(as_of, dt.date.today())
    cohorts = [int(cohort)] if cohort.isdigit() else None
    error = None
    rows: list[dict[str, Any]] = []
    svg = None
    try:
        rows = worklists.villages_below_target(session, viewer.actor, as_of=day,
                                               vaccine=vaccine, dose=dose, cohorts=cohorts)
        builder = MapBuilder()
        for r in rows:
            css = "imm-below" if r["below_target"] else "imm-ok"
            label = f"{r['name']} {r['coverage']:.0%}"
            if not builder.polygon(r["boundary"], css=css, label=label, caption=r["name"]):
                builder.point(r["lon"], r["lat"], css=css, label=label, radius=7)
        svg = builder.render()
    except InputError as exc:
        error = explain(exc)
    version = default_schedules().in_force(day)
    series = [s.id for s in version.series if s.programme] + list(
        worklists.alternative_groups(version))
    return render(request, "imm_coverage.html", viewer=viewer, rows=rows, svg=svg,
                  vaccine=vaccine, dose=dose, as_of=day, cohort=cohort, series=series,
                  error=error)


# --------------------------------------------------------------------------- families


def _family_view(session: Any, request: Request, identity: str, phone: str) -> dict[str, Any]:
    settings = request.app.state.settings
    try:
        return records.family_lookup(session, identity_number=identity, guardian_phone=phone,
                                     secret=settings.secret_key)
    except NotFoundError:
        session.commit()  # keep the audit entry of the refused attempt
        raise


@router.get("/immunization/family", response_class=HTMLResponse)
def family_page(request: Request) -> Response:
    """The family form: the child's identity number and the guardian's phone."""
    return render(request, "imm_family.html", viewer=None, view=None, sessions=[],
                  identity="", phone="")


@router.post("/immunization/family", response_class=HTMLResponse)
async def family_lookup_submit(request: Request, session: SessionDep) -> Response:
    """Show the record, the due doses and sessions of the child's site with free places."""
    form = await request.form()
    identity, phone = str(form.get("identity_number", "")), str(form.get("guardian_phone", ""))
    try:
        view = _family_view(session, request, identity, phone)
    except (NotFoundError, InputError) as exc:
        return render(request, "imm_family.html", viewer=None, view=None, sessions=[],
                      identity=identity, phone="", status_code=404, error=explain(exc))
    due = {s["vaccine"] for s in view["forecast"]["series"] if s["status"] in ("due", "overdue")}
    _, open_sessions = sites.list_sessions(session, FAMILY, site=view["child"]["site_code"],
                                           start=dt.date.today(), public=True, limit=50)
    offered = [s for s in open_sessions if s["free"] > 0 and due & set(s["vaccines"])]
    due &= {v for s in offered for v in s["vaccines"]}
    return render(request, "imm_family.html", viewer=None, view=view, sessions=offered,
                  identity=identity, phone=phone, due=sorted(due),
                  message=str(form.get("msg", "")) or None)


@router.post("/immunization/family/book", response_class=HTMLResponse)
async def family_book_submit(request: Request, session: SessionDep) -> Response:
    """Book the chosen session for the due doses it offers."""
    form = await request.form()
    identity, phone = str(form.get("identity_number", "")), str(form.get("guardian_phone", ""))
    lang = _lang(request)
    try:
        view = _family_view(session, request, identity, phone)
        target = session.get(VaccinationSession, int(str(form.get("session_id", "0"))))
        if target is None:
            raise NotFoundError("session")
        given_there = {v.vaccine for v in session.scalars(select(SessionVaccine).where(
            SessionVaccine.session_id == target.id, SessionVaccine.booked <
            SessionVaccine.capacity))}
        wanted = [str(v) for v in form.getlist("vaccine") if str(v) in given_there]
        if not wanted:
            raise InputError.single("choose at least one vaccine", field="vaccine")
        begin_write(session)
        booking, _ = sites.book(session, FAMILY, sites.BookingIn(
            session_id=target.id, vaccines=wanted, child_id=view["child"]["id"],
            slot_start=str(form.get("slot_start") or "") or None,
            idempotency_key=str(form.get("idempotency_key") or "") or None),
            secret=request.app.state.settings.secret_key)
        info = sites.booking_dict(session, booking)
    except (NotFoundError, InputError, ConflictError, ValueError) as exc:
        session.rollback()
        return render(request, "imm_family.html", viewer=None, view=None, sessions=[],
                      identity=identity, phone="", status_code=409, error=explain(exc))
    word = "预约成功" if lang != "en" else "Booked"
    return render(request, "imm_family.html", viewer=None, view=None, sessions=[],
                  identity="", phone="", booked=info,
                  message=f"{word}: {info['on_date']} {info['start']} "
                          f"{', '.join(info['vaccines'])}")


@router.get("/immunization/releases/{code}", response_class=HTMLResponse)
def release_page(request: Request, session: SessionDep, code: str) -> Response:
    """Public page of a scarce-vaccine release: places left, opening time, request form."""
    release = session.scalar(select(Release).where(Release.code == code))
    if release is None:
        return render(request, "imm_message.html", viewer=None, status_code=404,
                      error=f"release {code}")
    return render(request, "imm_release.html", viewer=None,
                  release=releases.release_dict(session, release), result=None)


@router.post("/immunization/releases/{code}", response_class=HTMLResponse)
async def release_request_submit(request: Request, session: SessionDep, code: str
                                 ) -> Response:
    """Queue a request (or show one's own status) from the public form."""
    form = await request.form()
    identity = str(form.get("identity_number", ""))
    secret = request.app.state.settings.secret_key
    status_code, result, error = 200, None, None
    try:
        if form.get("action") == "status":
            result = releases.request_status(session, code, identity_number=identity,
                                             secret=secret)
        else:
            begin_write(session)
            req = releases.request_dose(session, FAMILY, code, releases.RequestIn(
                identity_number=identity, name=str(form.get("name", ""))[:64],
                phone=str(form.get("phone", ""))[:32]), secret=secret)
            result = releases.request_dict(req)
            session.commit()
    except (InputError, NotFoundError, ConflictError) as exc:
        session.rollback()
        status_code, error = (404 if isinstance(exc, NotFoundError) else 409), explain(exc)
    release = session.scalar(select(Release).where(Release.code == code))
    if release is None:
        return render(request, "imm_message.html", viewer=None, status_code=404,
                      error=f"release {code}")
    return render(request, "imm_release.html", viewer=None, status_code=status_code,
                  release=releases.release_dict(session, release), result=result, error=error)
