"""Web pages of maternal safety (zh-CN by default, English switchable).

* village doctor: register a pregnancy with the screening (``/maternal/register``);
* hospital: files waiting for grading, grade / re-grade, plans (``/maternal/pregnancies``,
  ``/maternal/pregnancies/{id}``);
* case manager: my cases with reminders, alerts to acknowledge (``/maternal/cases``,
  ``/maternal/alerts``);
* county MCH institution: open files by colour and township, reports received, map of the
  critical maternal care centres' catchments and villages beyond reach (``/maternal/county``,
  ``/maternal/reports``, ``/maternal/map``).

The pages call :mod:`tiercare.maternal.service` exactly like the API. Templates live in
``tiercare/maternal/templates`` and extend the web layout (``base.html``); texts come from
``tiercare/maternal/data/ui`` with the web catalogues as fallback.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from tiercare.config import Settings
from tiercare.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    Problem,
    problems_from_validation,
)
from tiercare.maternal import service
from tiercare.maternal.api import ClockDep
from tiercare.maternal.criteria import load_table
from tiercare.maternal.places import centre_catchments, planner_gaps
from tiercare.maternal.rules import load_case_rules
from tiercare.maternal.schemas import (
    BookingIn,
    DeliveryIn,
    FollowUpDoneIn,
    GradingIn,
    PlanIn,
    PostpartumIn,
    PregnancyIn,
    StepIn,
    TertiaryAssessmentIn,
)
from tiercare.paging import MAX_PAGE
from tiercare.registry.models import Division
from tiercare.scenarios.service import network_covering
from tiercare.web.deps import SessionDep
from tiercare.web.i18n import LANGUAGES, Translator
from tiercare.web.maps import MapBuilder
from tiercare.web.pages import TEMPLATE_DIR, Viewer, ViewerDep, _number

MATERNAL_TEMPLATES = Path(__file__).with_name("templates")
CATALOGUE_DIR = Path(__file__).with_name("data") / "ui"
PAGE_SIZE = 50
NUMERIC_FIELDS = ("age", "height_cm", "weight_kg", "bmi", "hb_g_l", "platelets_1e9_l",
                  "pulmonary_artery_pressure_mmhg", "nyha_class", "ejection_fraction_pct",
                  "fetuses", "previous_uterine_surgeries", "months_since_uterine_surgery",
                  "abortions", "creatinine_ratio_to_uln")

templates = Jinja2Templates(directory=MATERNAL_TEMPLATES)
templates.env.loader = ChoiceLoader([FileSystemLoader(MATERNAL_TEMPLATES),
                                     FileSystemLoader(TEMPLATE_DIR)])
templates.env.filters["num"] = _number


def _local_time(value: str | None) -> str:
    """An ISO instant shown in Asia/Shanghai as ``YYYY-MM-DD HH:MM``."""
    if not value:
        return "—"
    return dt.datetime.fromisoformat(value).astimezone(service.DEFAULT_TZ).strftime(
        "%Y-%m-%d %H:%M")


templates.env.filters["local"] = _local_time
router = APIRouter(prefix="/maternal", include_in_schema=False)


@lru_cache(maxsize=None)
def maternal_catalogue(lang: str) -> dict[str, str]:
    """The maternal pages' messages of one language."""
    with (CATALOGUE_DIR / f"{lang}.json").open(encoding="utf-8") as fh:
        data: dict[str, str] = json.load(fh)
    return data


class MaternalTranslator(Translator):
    """The maternal catalogue first, then the web catalogues."""

    def __call__(self, key: str, **values: Any) -> str:
        """The text of ``key`` with ``{placeholders}`` filled."""
        text = maternal_catalogue(self.lang).get(key)
        if text is None:
            return super().__call__(key, **values)
        return text.format(**values) if values else text

    def alert(self, alert: dict[str, Any]) -> str:
        """An alert's message in this language, from its kind and detail."""
        key = f"m.alertmsg.{alert['kind']}"
        detail = {k: v for k, v in alert.get("detail", {}).items() if isinstance(v, str | int)}
        if "from" in detail:
            detail["from_"] = self.label("colour", str(detail["from"]))
        if "to" in detail:
            detail["to"] = self.label("colour", str(detail["to"]))
        try:
            return self(key, **detail)
        except (KeyError, IndexError):
            return str(alert["message"])

    def label(self, group: str, code: str | None) -> str:
        """Display label of a code (maternal groups first)."""
        if code is not None and f"{group}.{code}" in maternal_catalogue(self.lang):
            return self(f"{group}.{code}")
        return super().label(group, code)


def _render(request: Request, name: str, viewer: Viewer, *, status_code: int = 200,
            **context: Any) -> HTMLResponse:
    other = [code for code in LANGUAGES if code != viewer.lang]
    return templates.TemplateResponse(request, name, {
        "t": MaternalTranslator(viewer.lang), "lang": viewer.lang, "viewer": viewer,
        "switch_links": [(code, str(request.url.include_query_params(lang=code)))
                         for code in other],
        "path": request.url.path, "msg": request.query_params.get("msg"), **context,
    }, status_code=status_code)


def _problems(exc: ValidationError | InputError) -> list[Problem]:
    if isinstance(exc, InputError):
        return exc.problems
    return problems_from_validation(exc.errors())


def _redirect(url: str, **params: str) -> RedirectResponse:
    return RedirectResponse(url + ("?" + urlencode(params) if params else ""), status_code=303)


def _findings(form: Any) -> dict[str, Any]:
    """Numeric fields (blank = not given) and the ticked conditions of a findings form."""
    out: dict[str, Any] = {}
    for name in NUMERIC_FIELDS:
        raw = str(form.get(name) or "").strip()
        if raw:
            try:
                out[name] = float(raw) if "." in raw else int(raw)
            except ValueError:
                out[name] = raw
    conditions = [c for c in form.getlist("conditions") if c]
    if conditions:
        out["conditions"] = conditions
    return out


def _condition_choices(lang: str) -> list[dict[str, str]]:
    table = load_table()
    return [{"code": c.code, "colour": c.colour, "text": c.text(lang)}
            for c in table.criteria if c.assertable
            and c.code != service.UNSTABLE_POSTPARTUM_CODE]


def _villages(session: SessionDep, viewer: Viewer) -> list[Division]:
    prefix = service.scope_prefix(session, viewer.actor)
    return list(session.scalars(select(Division).where(
        Division.level == "village", Division.code.like(prefix + "%")).order_by(Division.code)))


# --------------------------------------------------------------------------- home


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Landing page: counts and the entry points of each role."""
    actor = viewer.actor
    overview = service.county_overview(session, actor)
    awaiting = service.list_pregnancies(session, actor, status="awaiting_grading", limit=1)[0]
    mine = service.list_pregnancies(session, actor, managed_by_me=True, open_only=True,
                                    limit=1)[0]
    alerts = service.list_alerts(session, actor, limit=1)[0]
    return _render(request, "maternal/home.html", viewer, overview=overview,
                   awaiting=awaiting, mine=mine, alerts=alerts)


# --------------------------------------------------------------------------- registration


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Village doctor: register a pregnancy (建册) with the screening."""
    return _render(request, "maternal/register.html", viewer,
                   villages=_villages(session, viewer),
                   conditions=_condition_choices(viewer.lang), form={}, problems=[])


@router.post("/register", response_class=HTMLResponse)
async def register_submit(now: ClockDep, request: Request, session: SessionDep,
                          viewer: ViewerDep) -> Response:
    """Store the file, or show every problem next to the form."""
    form = await request.form()
    settings: Settings = request.app.state.settings
    try:
        data = PregnancyIn.model_validate({
            "resident": {"name": form.get("name", ""), "identity_number":
                         form.get("identity_number", ""), "phone": form.get("phone", ""),
                         "village_code": form.get("village_code", "")},
            "lmp": form.get("lmp") or None, "edd": form.get("edd") or None,
            "gravidity": form.get("gravidity") or 1, "parity": form.get("parity") or 0,
            "screening": _findings(form),
        })
        p = service.register_pregnancy(session, viewer.actor, data,
                                       secret=settings.secret_key, now=now)
    except (ValidationError, InputError) as exc:
        session.rollback()
        return _render(request, "maternal/register.html", viewer, status_code=422,
                       villages=_villages(session, viewer),
                       conditions=_condition_choices(viewer.lang), form=dict(form),
                       problems=_problems(exc))
    except ConflictError as exc:
        session.rollback()
        return _render(request, "maternal/register.html", viewer, status_code=409,
                       villages=_villages(session, viewer),
                       conditions=_condition_choices(viewer.lang), form=dict(form),
                       problems=[Problem(reason=str(exc), code=exc.reason)])
    session.commit()  # before the browser follows the redirect
    return _redirect(f"/maternal/pregnancies/{p.id}", msg="registered")


# --------------------------------------------------------------------------- lists


@router.get("/pregnancies", response_class=HTMLResponse)
def pregnancies(now: ClockDep, request: Request, session: SessionDep, viewer: ViewerDep,
                status: str | None = None, colour: str | None = None,
                township: str | None = None, page: int = 1) -> Response:
    """Files in scope (hospital: ``status=awaiting_grading`` is the grading work list)."""
    page = max(page, 1)
    total, items = service.list_pregnancies(session, viewer.actor, status=status or None,
                                            colour=colour or None, township=township or None,
                                            offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    townships = session.scalars(select(Division).where(
        Division.level == "township",
        Division.code.like(service.scope_prefix(session, viewer.actor) + "%"))
        .order_by(Division.code))
    return _render(request, "maternal/pregnancies.html", viewer, items=items, total=total,
                   page=page, pages=max(1, -(-total // PAGE_SIZE)), townships=list(townships),
                   filters={"status": status, "colour": colour, "township": township},
                   today=service.local_date(now))


@router.get("/cases", response_class=HTMLResponse)
def my_cases(now: ClockDep, request: Request, session: SessionDep, viewer: ViewerDep,
             everyone: bool = False) -> Response:
    """Case manager: my high-risk cases and the follow-ups due soon."""
    rules = load_case_rules()
    total, items = service.list_pregnancies(session, viewer.actor, high_risk=True,
                                            managed_by_me=not everyone, open_only=True,
                                            limit=MAX_PAGE)
    _n, reminders = service.list_follow_ups(session, viewer.actor, now=now,
                                            due_within_days=rules.reminder_days_ahead,
                                            managed_by_me=not everyone,
                                            limit=MAX_PAGE)
    return _render(request, "maternal/cases.html", viewer, items=items, total=total,
                   reminders=reminders, everyone=everyone,
                   reminder_days=rules.reminder_days_ahead)


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, session: SessionDep, viewer: ViewerDep, mine: bool = False,
           show_all: bool = False) -> Response:
    """Open early-warning alerts (most escalated first)."""
    total, items = service.list_alerts(session, viewer.actor, open_only=not show_all,
                                       managed_by_me=mine, limit=MAX_PAGE)
    rules = load_case_rules()
    return _render(request, "maternal/alerts.html", viewer, items=items, total=total,
                   mine=mine, show_all=show_all, levels=rules.escalation_levels)


@router.post("/alerts/run")
def alerts_run(now: ClockDep, session: SessionDep, viewer: ViewerDep) -> Response:
    """Evaluate the early-warning rules now for the viewer's scope."""
    counts = service.generate_alerts(session, now=now,
                                     prefix=service.scope_prefix(session, viewer.actor))
    session.commit()
    return _redirect("/maternal/alerts", msg="alerts_run:" + json.dumps(counts))


@router.post("/alerts/{alert_id}/ack")
async def alert_ack(now: ClockDep, request: Request, alert_id: int, session: SessionDep,
                    viewer: ViewerDep) -> Response:
    """Acknowledge an alert and come back to the page it was shown on."""
    form = await request.form()
    back = str(form.get("back") or "/maternal/alerts")
    back = back if back.startswith("/maternal") else "/maternal/alerts"
    try:
        service.acknowledge_alert(session, viewer.actor, alert_id,
                                  note=str(form.get("note") or ""), now=now)
    except ConflictError as exc:
        return _redirect(back, msg="error:" + exc.reason)
    session.commit()
    return _redirect(back, msg="acknowledged")


@router.get("/reports", response_class=HTMLResponse)
def reports(request: Request, session: SessionDep, viewer: ViewerDep,
            unreceived: bool = False) -> Response:
    """County MCH: what was reported, when, and whether it was received."""
    total, items = service.list_reports(session, viewer.actor, unreceived=unreceived,
                                        limit=MAX_PAGE)
    return _render(request, "maternal/reports.html", viewer, items=items, total=total,
                   unreceived=unreceived)


@router.post("/reports/{report_id}/receive")
def report_receive(now: ClockDep, report_id: int, session: SessionDep,
                   viewer: ViewerDep) -> Response:
    """Confirm receipt of a report."""
    try:
        service.receive_report(session, viewer.actor, report_id, now=now)
    except ConflictError as exc:
        return _redirect("/maternal/reports", msg="error:" + exc.reason)
    session.commit()
    return _redirect("/maternal/reports", msg="received")


@router.get("/county", response_class=HTMLResponse)
def county(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """County MCH: open files by township and colour."""
    overview = service.county_overview(session, viewer.actor)
    alerts_open = service.list_alerts(session, viewer.actor, limit=1)[0]
    escalated = service.list_alerts(session, viewer.actor, min_level=1, limit=1)[0]
    unreceived = service.list_reports(session, viewer.actor, unreceived=True, limit=1)[0]
    return _render(request, "maternal/county.html", viewer, overview=overview,
                   alerts_open=alerts_open, escalated=escalated, unreceived=unreceived)


@router.get("/map", response_class=HTMLResponse)
def county_map(request: Request, session: SessionDep, viewer: ViewerDep,
               colour: str = "yellow") -> Response:
    """Critical maternal care centres, their catchments and the villages where the level a
    colour requires is beyond reach (``colour``: whose requirement is checked)."""
    rules = load_case_rules()
    if colour not in rules.delivery.by_colour:
        colour = "yellow"
    prefix = service.scope_prefix(session, viewer.actor)
    network = network_covering(session, prefix)
    catchments = centre_catchments(session, prefix=prefix, rules=rules, network=network)
    gaps = [g for g in planner_gaps(session, prefix=prefix, rules=rules, network=network)
            if g["colour"] == colour]
    palette = [f"catch-{i % 6}" for i in range(len(catchments["centres"]))]
    css_of = {c["id"]: palette[i] for i, c in enumerate(catchments["centres"])}
    builder = MapBuilder()
    county_division = session.scalar(select(Division).where(
        Division.level == "county", Division.code.like(prefix[:6] + "%")))
    if county_division is not None:
        builder.polygon(county_division.boundary, css="outline", label=county_division.name)
    beyond = {g["village_code"] for g in gaps}
    for v in catchments["villages"]:
        css = css_of.get(v["centre_id"], "catch-none")
        minutes = "—" if v["minutes"] is None else f"{v['minutes']:.0f} min"
        builder.point(v["lon"], v["lat"], css=css + (" beyond" if v["code"] in beyond else ""),
                      label=f"{v['name']} · {minutes}", radius=4)
    for c in catchments["centres"]:
        builder.point(c["lon"], c["lat"], css="centre " + css_of[c["id"]],
                      label=f"{c['name']} ({c['villages']})", radius=9)
    svg = builder.render(width=760)
    legend = [(css_of[c["id"]], c["name"]) for c in catchments["centres"]]
    return _render(request, "maternal/map.html", viewer, svg=svg, legend=legend, gaps=gaps,
                   check_colour=colour, colours=list(rules.delivery.by_colour),
                   catchments=catchments, limit=rules.delivery.max_travel_minutes,
                   by_network=network is not None, road_factor=rules.delivery.road_factor,
                   speed=rules.delivery.straight_line_speed_kmh)


# --------------------------------------------------------------------------- the file


@router.get("/pregnancies/{pregnancy_id}", response_class=HTMLResponse)
def pregnancy_page(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                   viewer: ViewerDep) -> Response:
    """The file: woman, colour, history, case management, delivery, closure."""
    return _file_page(request, session, viewer, pregnancy_id, now=now)


def _file_page(request: Request, session: SessionDep, viewer: Viewer, pregnancy_id: int, *,
               now: dt.datetime, problems: list[Problem] | None = None,
               status_code: int = 200) -> Response:
    rules = load_case_rules()
    try:
        p = service.get_pregnancy(session, viewer.actor, pregnancy_id, purpose="page")
    except NotFoundError:
        return _render(request, "not_found.html", viewer, status_code=404,
                       what=f"pregnancy {pregnancy_id}")
    detail = service.pregnancy_detail(session, viewer.actor, p, now=now, rules=rules)
    return _render(request, "maternal/pregnancy.html", viewer, p=detail,
                   conditions=_condition_choices(viewer.lang), problems=problems or [],
                   hospital=service.is_hospital(session, viewer.actor, rules),
                   today=service.local_date(now), status_code=status_code,
                   postpartum_day=rules.postpartum_assessment_day)


async def _act(request: Request, session: SessionDep, viewer: Viewer, pregnancy_id: int,
               build: type[BaseModel] | None, call: Any, message: str,
               payload: dict[str, Any] | None = None, *, now: dt.datetime) -> Response:
    """Validate a form into ``build``, run ``call`` and come back to the file."""
    form = await request.form()
    try:
        data = build.model_validate(payload if payload is not None else dict(form)) \
            if build is not None else None
        call(data, form)
    except (ValidationError, InputError) as exc:
        session.rollback()
        return _file_page(request, session, viewer, pregnancy_id, problems=_problems(exc),
                          status_code=422, now=now)
    except ConflictError as exc:
        session.rollback()
        return _file_page(request, session, viewer, pregnancy_id, status_code=409,
                          problems=[Problem(reason=str(exc), code=exc.reason)], now=now)
    session.commit()  # before the browser follows the redirect
    return _redirect(f"/maternal/pregnancies/{pregnancy_id}", msg=message)


@router.post("/pregnancies/{pregnancy_id}/grade")
async def grade_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                       viewer: ViewerDep) -> Response:
    """Hospital: grade or re-grade."""
    form = await request.form()
    payload = {"findings": _findings(form), "note": form.get("note") or ""}
    return await _act(request, session, viewer, pregnancy_id, GradingIn,
                      lambda d, f: service.grade_pregnancy(session, viewer.actor, pregnancy_id,
                                                           d, now=now),
                      "graded", payload, now=now)


@router.post("/pregnancies/{pregnancy_id}/manager")
async def manager_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                         viewer: ViewerDep) -> Response:
    """Name the case manager."""
    return await _act(request, session, viewer, pregnancy_id, None,
                      lambda d, f: service.assign_case_manager(
                          session, viewer.actor, pregnancy_id,
                          str(f.get("username") or "").strip(), now=now), "manager", now=now)


@router.post("/pregnancies/{pregnancy_id}/plan")
async def plan_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                      viewer: ViewerDep) -> Response:
    """Personalised plans with the critical maternal care centre."""
    return await _act(request, session, viewer, pregnancy_id, PlanIn,
                      lambda d, f: service.record_plan(session, viewer.actor, pregnancy_id, d,
                                                       now=now), "plan", now=now)


@router.post("/pregnancies/{pregnancy_id}/tertiary")
async def tertiary_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                          viewer: ViewerDep) -> Response:
    """A red case's tertiary assessment."""
    return await _act(request, session, viewer, pregnancy_id, TertiaryAssessmentIn,
                      lambda d, f: service.record_tertiary_assessment(
                          session, viewer.actor, pregnancy_id, d, now=now), "tertiary", now=now)


@router.post("/pregnancies/{pregnancy_id}/booking")
async def booking_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                         viewer: ViewerDep) -> Response:
    """Book the delivery facility."""
    return await _act(request, session, viewer, pregnancy_id, BookingIn,
                      lambda d, f: service.book_delivery(session, viewer.actor, pregnancy_id,
                                                         d, now=now), "booked", now=now)


@router.post("/pregnancies/{pregnancy_id}/pmtct/{step}")
async def pmtct_submit(now: ClockDep, request: Request, pregnancy_id: int, step: str,
                       session: SessionDep,
                       viewer: ViewerDep) -> Response:
    """A PMTCT step done."""
    return await _act(request, session, viewer, pregnancy_id, StepIn,
                      lambda d, f: service.complete_pmtct_step(
                          session, viewer.actor, pregnancy_id, step, d, now=now), "pmtct", now=now)


@router.post("/pregnancies/{pregnancy_id}/follow-ups/{follow_up_id}/done")
async def follow_up_submit(now: ClockDep, request: Request, pregnancy_id: int, follow_up_id: int,
                           session: SessionDep, viewer: ViewerDep) -> Response:
    """A follow-up done."""
    return await _act(request, session, viewer, pregnancy_id, FollowUpDoneIn,
                      lambda d, f: service.complete_follow_up(
                          session, viewer.actor, follow_up_id, d, now=now), "follow_up", now=now)


@router.post("/pregnancies/{pregnancy_id}/delivery")
async def delivery_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                          viewer: ViewerDep) -> Response:
    """The delivery outcome."""
    form = await request.form()
    payload = {k: v for k, v in form.items() if v != ""}
    return await _act(request, session, viewer, pregnancy_id, DeliveryIn,
                      lambda d, f: service.record_delivery(session, viewer.actor,
                                                           pregnancy_id, d, now=now),
                      "delivered", payload, now=now)


@router.post("/pregnancies/{pregnancy_id}/postpartum")
async def postpartum_submit(now: ClockDep, request: Request, pregnancy_id: int, session: SessionDep,
                            viewer: ViewerDep) -> Response:
    """The 42-day postpartum assessment."""
    form = await request.form()
    payload = {"on": form.get("on"), "stable": form.get("stable") == "yes",
               "findings": _findings(form), "note": form.get("note") or ""}
    return await _act(request, session, viewer, pregnancy_id, PostpartumIn,
                      lambda d, f: service.record_postpartum(session, viewer.actor,
                                                             pregnancy_id, d, now=now),
                      "postpartum", payload, now=now)

