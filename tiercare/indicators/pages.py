"""Web pages of indicators and surveillance: dashboards, scorecard, pivot, data entry, sentinels.

The pages use the same services as the REST API (same scope, same validation) and the layout
of :mod:`tiercare.web.pages` (``base.html``, the viewer and its language). Texts of these pages
are given in both languages in the templates (``L(zh, en)``). Trends are drawn as inline SVG and
the sentinel map with :class:`tiercare.web.maps.MapBuilder`; nothing is loaded from outside.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.indicators import analytics as an
from tiercare.indicators import reporting
from tiercare.indicators.catalogue import ensure_catalogue
from tiercare.indicators.facts import Unit
from tiercare.indicators.models import DataSet, Indicator, Scorecard
from tiercare.indicators.periods import (
    Period,
    local_today,
    parse_period,
    period_of,
    period_range,
)
from tiercare.registry.models import Division, Facility
from tiercare.surveillance import reports as surv
from tiercare.web.deps import SessionDep
from tiercare.web.i18n import LANGUAGES, Translator
from tiercare.web.maps import MapBuilder
from tiercare.web.pages import TEMPLATE_DIR as WEB_TEMPLATES
from tiercare.web.pages import Viewer, ViewerDep

TEMPLATE_DIR = Path(__file__).with_name("templates")
templates = Jinja2Templates(directory=TEMPLATE_DIR)
templates.env.loader = ChoiceLoader([FileSystemLoader(TEMPLATE_DIR),
                                     FileSystemLoader(WEB_TEMPLATES)])
router = APIRouter(include_in_schema=False)

#: Indicators shown in the drill-down table (the rest are on the unit's own table).
KEY_INDICATORS = ("primary_opd_share", "beds_per_1000", "physicians_per_1000",
                  "essential_medicine_share", "vaccination_coverage",
                  "hr_pregnancy_managed_share", "access_15_share", "fever_positivity")
STATUS_CSS = {"alert": "spot", "missing": "spot-exempt", "ok": "ok-point",
              "closed": "division-point"}


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


templates.env.filters["fmt"] = _fmt


def _render(request: Request, name: str, *, viewer: Viewer, **context: Any) -> HTMLResponse:
    lang = viewer.lang

    def label(zh: str, en: str) -> str:
        return zh if lang == "zh-CN" else en

    other = [code for code in LANGUAGES if code != lang]
    return templates.TemplateResponse(request, name, {
        "t": Translator(lang), "lang": lang, "viewer": viewer, "L": label,
        "switch_links": [(code, str(request.url.include_query_params(lang=code)))
                         for code in other],
        "path": request.url.path, **context})


def _default_unit(session: Session, viewer: Viewer) -> str:
    """The viewer's own scope: its division, its facility, or the first county."""
    actor = viewer.actor
    if actor.facility_id is not None:
        return session.scalar(select(Facility.code).where(Facility.id == actor.facility_id)) \
            or ""
    if actor.division_prefix:
        return actor.division_prefix
    return session.scalar(select(Division.prefix).where(Division.level == "county")
                          .order_by(Division.code)) or "14"


def _last_month() -> Period:
    return period_of(local_today().replace(day=1) - timedelta(days=1), "month")


def _ancestors(session: Session, unit: Unit, viewer: Viewer) -> list[Division]:
    out = []
    code = session.scalar(select(Division.id).where(Division.code == unit.code)) \
        if unit.kind == "division" else session.scalar(
            select(Facility.division_id).where(Facility.id == unit.facility_id))
    current = session.get(Division, code) if code else None
    while current is not None and viewer.actor.covers_division(current.code):
        out.insert(0, current)
        current = current.parent
    return out


def trend_svg(points: list[tuple[str, float | None]], *, target: float | None = None,
              width: int = 520, height: int = 160) -> str:
    """An inline SVG line chart of ``(period, value)`` points (gaps for missing values)."""
    values = [v for _, v in points if v is not None]
    if not values:
        return ""
    top = max([*values, target or 0.0]) * 1.1 or 1.0
    left, bottom = 40, 22
    step = (width - left - 10) / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, round(height - bottom - (height - bottom - 8) * v / top, 1)

    paths, current = [], []
    for i, (_, v) in enumerate(points):
        if v is None:
            if current:
                paths.append(current)
            current = []
            continue
        current.append(xy(i, v))
    if current:
        paths.append(current)
    lines = "".join(
        '<polyline fill="none" stroke="#2b6cb0" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y}" for x, y in p) + '"/>' for p in paths)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y}" r="2.5" fill="#2b6cb0"><title>'
                   f'{points[i][0]}: {_fmt(points[i][1], 2)}</title></circle>'
                   for i, (x, y) in ((i, xy(i, v)) for i, (_, v) in enumerate(points)
                                     if v is not None))
    goal = ""
    if target is not None:
        _, y = xy(0, target)
        goal = (f'<line x1="{left}" x2="{width - 10}" y1="{y}" y2="{y}" stroke="#c05621" '
                f'stroke-dasharray="4 3"/>')
    labels = "".join(f'<text x="{left + i * step:.1f}" y="{height - 6}" font-size="10" '
                     f'text-anchor="middle" fill="#64748b">{p}</text>'
                     for i, (p, _) in enumerate(points) if i % max(len(points) // 6, 1) == 0)
    axis = (f'<text x="4" y="14" font-size="10" fill="#64748b">{_fmt(top / 1.1, 1)}</text>'
            f'<line x1="{left}" x2="{left}" y1="8" y2="{height - bottom}" stroke="#cbd5e1"/>')
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" class="trend">'
            f"{axis}{goal}{lines}{dots}{labels}</svg>")


# --------------------------------------------------------------------------- dashboard


#: The flow diagram draws the largest flows only (the table lists them all).
FLOW_CHART_LIMIT = 25


def flow_chart_data(flows: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    """Sankey data for the largest referral flows: senders left, receivers right.

    Each facility appears once per side (a centre that sends up and receives down shows on
    both), so the diagram has no cycles; up-referrals are blue, down-referrals green. Only the
    :data:`FLOW_CHART_LIMIT` largest flows are drawn; ``shown`` and ``total`` say how many.
    """
    nodes: list[str] = []
    index: dict[tuple[str, str], int] = {}

    def node(side: str, code: str, name: str) -> int:
        if (side, code) not in index:
            index[(side, code)] = len(nodes)
            nodes.append(name)
        return index[(side, code)]

    links: dict[str, list[Any]] = {"source": [], "target": [], "value": [], "color": [],
                                   "label": []}
    up, down = ("上转", "下转") if lang == "zh-CN" else ("up", "down")
    largest = sorted(flows, key=lambda f: -f["referrals"])[:FLOW_CHART_LIMIT]
    for f in largest:
        links["source"].append(node("from", f["from"], f["from_name"]))
        links["target"].append(node("to", f["to"], f["to_name"]))
        links["value"].append(f["referrals"])
        links["color"].append("rgba(43,108,176,0.45)" if f["direction"] == "up"
                              else "rgba(47,133,90,0.45)")
        links["label"].append(up if f["direction"] == "up" else down)
    return {"nodes": nodes, "links": links, "shown": len(largest), "total": len(flows)}



@router.get("/indicators", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, viewer: ViewerDep,
              unit: str | None = None, period: str | None = None,
              indicator: str = "primary_opd_share", group: str = "") -> Response:
    """Indicators of one org unit and period, its children (drill-down) and a 12-month trend."""
    ensure_catalogue(session)
    problems: list[Problem] = []
    try:
        root = an.resolve_unit(session, unit or _default_unit(session, viewer),
                               actor=viewer.actor)
        chosen = parse_period(period) if period else _last_month()
    except (InputError, NotFoundError) as exc:
        problems = exc.problems if isinstance(exc, InputError) else [
            Problem(reason=str(exc), field="unit")]
        root = an.resolve_unit(session, _default_unit(session, viewer), actor=viewer.actor)
        chosen = _last_month()
    rows = an.load_indicators(session, None)
    if group:
        rows = [r for r in rows if r.group == group]
    values = an.compute(session, indicators=rows, units=[root], periods=[chosen])
    children = [c for c in an.child_units(session, root) if an.in_scope(viewer.actor, c)]
    key = [r for r in an.load_indicators(session, None) if r.code in KEY_INDICATORS]
    child_values = an.compute(session, indicators=key, units=children, periods=[chosen]) \
        if children else []
    table = {(v.indicator, v.unit): v for v in child_values}
    focus = next((r for r in an.load_indicators(session, None) if r.code == indicator), None)
    trend = ""
    if focus is not None:
        months = period_of(chosen.end, "month")
        first = period_of(months.start - timedelta(days=330), "month")
        history = an.compute(session, indicators=[focus], units=[root],
                             periods=period_range(first.text, months.text, "month"))
        trend = trend_svg([(v.period, v.value) for v in history], target=focus.target)
    groups = sorted({r.group for r in an.load_indicators(session, None)})
    flows = an.referral_flows(session, viewer.actor, unit=root.code, period=chosen.text)
    return _render(request, "ind_dashboard.html", viewer=viewer, root=root, period=chosen,
                   flows=flows, flow_chart=flow_chart_data(flows, viewer.lang) if flows else None,
                   values=values, names={r.code: r for r in an.load_indicators(session, None)},
                   children=children, key=key, table=table, trend=trend, focus=focus,
                   groups=groups, group=group, problems=problems,
                   ancestors=_ancestors(session, root, viewer),
                   printable=request.query_params.get("print") == "1")


@router.get("/indicators/export")
def dashboard_export(session: SessionDep, viewer: ViewerDep, unit: str, period: str,
                     format: str = "xlsx") -> Response:  # noqa: A002
    """The dashboard's values (unit and its children, every indicator) as Excel or CSV."""
    root = an.resolve_unit(session, unit, actor=viewer.actor)
    units = [root, *[c for c in an.child_units(session, root) if an.in_scope(viewer.actor, c)]]
    values = an.compute(session, indicators=an.load_indicators(session, None), units=units,
                        periods=[parse_period(period)])
    return _download(an.values_frame(values), f"indicators-{root.code}-{period}", format)


def _download(frame: Any, name: str, fmt: str) -> Response:
    body = an.frame_bytes(frame, fmt=fmt)
    media = "text/csv" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename={name}.{fmt}"})


# --------------------------------------------------------------------------- scorecard


@router.get("/indicators/scorecard", response_class=HTMLResponse)
def scorecard_page(request: Request, session: SessionDep, viewer: ViewerDep,
                   code: str = "hospital", unit: str | None = None,
                   period: str | None = None, format: str = "html") -> Response:  # noqa: A002
    """Ranked facilities of a scorecard, with each item's value, target and achievement."""
    ensure_catalogue(session)
    chosen = period or _last_month().text
    result = an.scorecard(session, viewer.actor, code=code,
                          unit=unit or _default_unit(session, viewer), period=chosen)
    if format in ("xlsx", "csv"):
        flat = [{"rank": f["rank"], "facility": f["facility"], "name": f["name"],
                 "score": f["score"], **{i["indicator"]: i["value"] for i in f["items"]}}
                for f in result["facilities"]]
        return _download(pd.DataFrame(flat), f"scorecard-{code}-{chosen}", format)
    cards = list(session.scalars(select(Scorecard).order_by(Scorecard.code)))
    names = {r.code: r for r in session.scalars(select(Indicator))}
    return _render(request, "ind_scorecard.html", viewer=viewer, result=result, cards=cards,
                   names=names, printable=request.query_params.get("print") == "1")


# --------------------------------------------------------------------------- pivot


@router.get("/indicators/pivot", response_class=HTMLResponse)
def pivot_page(request: Request, session: SessionDep, viewer: ViewerDep,
               format: str = "html") -> Response:  # noqa: A002
    """Choose indicators, units and a period range; see or download the pivot table."""
    ensure_catalogue(session)
    params = request.query_params
    chosen = params.getlist("indicator") or ["primary_opd_share"]
    units = [u for u in params.get("units", "").replace(",", " ").split() if u] or [
        _default_unit(session, viewer)]
    start = params.get("from") or _last_month().text
    end = params.get("to") or start
    ptype = params.get("type", "month")
    problems: list[Problem] = []
    frame = None
    try:
        periods = period_range(start, end, ptype)
        if len(periods) > 60:
            raise InputError.single("at most 60 periods", field="to")
        values = an.analytics(session, viewer.actor, indicators=chosen, units=units,
                              periods=[p.text for p in periods],
                              children=params.get("children") == "1")
        frame = an.pivot_frame(values)
    except InputError as exc:
        problems = exc.problems
    except NotFoundError as exc:
        problems = [Problem(reason=str(exc), field="units")]
    if frame is not None and format in ("csv", "xlsx"):
        return _download(frame, "pivot", format)
    return _render(request, "ind_pivot.html", viewer=viewer,
                   indicators=an.load_indicators(session, None), chosen=chosen,
                   units=" ".join(units), start=start, end=end, ptype=ptype, frame=frame,
                   problems=problems, query=str(request.url.query))


# --------------------------------------------------------------------------- data entry


@router.get("/indicators/entry", response_class=HTMLResponse)
def entry_form(request: Request, session: SessionDep, viewer: ViewerDep,
               data_set: str | None = None, facility: str | None = None,
               period: str | None = None) -> Response:
    """A facility's report form for a period (values, rules, deadline, lock)."""
    return _entry(request, session, viewer, data_set=data_set, facility=facility,
                  period=period)


def _entry(request: Request, session: Session, viewer: Viewer, *, data_set: str | None,
           facility: str | None, period: str | None, problems: list[Problem] | None = None,
           message: str = "") -> HTMLResponse:
    ensure_catalogue(session)
    sets = list(session.scalars(select(DataSet).order_by(DataSet.code)))
    form = None
    errors = list(problems or [])
    if data_set and facility:
        try:
            form = reporting.report_form(session, viewer.actor, data_set=data_set,
                                         facility=facility, period=period or
                                         _last_month().text)
        except InputError as exc:
            errors += exc.problems
        except NotFoundError as exc:
            errors.append(Problem(reason=str(exc), field="facility"))
    return _render(request, "ind_entry.html", viewer=viewer, sets=sets, form=form,
                   data_set=data_set or "", facility=facility or "",
                   period=period or _last_month().text, problems=errors, message=message)


@router.post("/indicators/entry", response_class=HTMLResponse)
async def entry_submit(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Submit the form: all values are checked together; nothing is stored on a problem."""
    data = await request.form()
    values = {k.removeprefix("v_"): str(v) for k, v in data.items()
              if k.startswith("v_") and str(v).strip()}
    args = {"data_set": str(data.get("data_set", "")), "facility": str(data.get("facility", "")),
            "period": str(data.get("period", ""))}
    try:
        result = reporting.submit_report(session, viewer.actor, values=values,
                                         comment=str(data.get("comment", "")), **args)
    except InputError as exc:
        session.rollback()
        return _entry(request, session, viewer, problems=exc.problems, **args)
    message = (f"✓ {result['created']} + {result['updated']} · "
               f"{'on time' if result['on_time'] else 'late'}")
    return _entry(request, session, viewer, message=message, **args)


@router.post("/indicators/upload", response_class=HTMLResponse)
async def entry_upload(request: Request, session: SessionDep, viewer: ViewerDep,
                       file: UploadFile = File(...)) -> Response:
    """Import values from CSV/.xlsx or DHIS2 JSON, all or nothing."""
    data = await file.read()
    name = file.filename or "upload.csv"
    try:
        if name.lower().endswith(".json"):
            result = reporting.import_data_value_set(session, viewer.actor, data)
        else:
            result = reporting.import_table(session, viewer.actor, data, name)
    except InputError as exc:
        session.rollback()
        return _entry(request, session, viewer, data_set=None, facility=None, period=None,
                      problems=exc.problems)
    return _entry(request, session, viewer, data_set=None, facility=None, period=None,
                  message=f"✓ {name}: {result.created} + {result.updated}")


# --------------------------------------------------------------------------- surveillance


@router.get("/surveillance", response_class=HTMLResponse)
def surveillance_page(request: Request, session: SessionDep, viewer: ViewerDep,
                      day: str | None = None) -> Response:
    """Sentinel map with today's status, missing reports, open alerts and entry forms."""
    return _surveillance(request, session, viewer, day=day)


def _surveillance(request: Request, session: Session, viewer: Viewer, *, day: str | None,
                  problems: list[Problem] | None = None, message: str = "") -> HTMLResponse:
    errors = list(problems or [])
    try:
        chosen = date.fromisoformat(day) if day else local_today()
    except ValueError:
        errors.append(Problem(reason=f"not a date: {day!r}", field="day"))
        chosen = local_today()
    status = surv.sentinel_status(session, viewer.actor, day=chosen)
    builder = MapBuilder()
    scope = viewer.actor.division_prefix[:6]
    county = session.scalar(select(Division).where(
        Division.level == "county", Division.prefix.like(scope + "%"),
        Division.boundary.is_not(None)).order_by(Division.code))
    if county is not None:
        builder.polygon(county.boundary, css="outline", label=county.name)
    for s in status:
        builder.point(s["lon"], s["lat"], css=STATUS_CSS[s["status"]],
                      label=f"{s['name']} · {s['status']}", radius=7)
    _, alerts = surv.list_alerts(session, viewer.actor, since=chosen - timedelta(days=30),
                                 limit=100)
    config = surv.load_config()
    return _render(request, "ind_surveillance.html", viewer=viewer, day=chosen, status=status,
                   svg=builder.render(width=560, max_height=420),
                   alerts=[a for a in alerts if a.status != "closed"], problems=errors,
                   message=message, bands=config.age_bands,
                   counts={k: sum(1 for s in status if s["status"] == k)
                           for k in STATUS_CSS})


@router.post("/surveillance/report", response_class=HTMLResponse)
async def surveillance_report(request: Request, session: SessionDep,
                              viewer: ViewerDep) -> Response:
    """Store one sentinel's daily report (one row per age band)."""
    data = await request.form()
    config = surv.load_config()
    rows = [{"facility": data.get("facility"), "date": data.get("date"), "age_band": band,
             **{m: data.get(f"{m}_{band}") or "0" for m in surv.MEASURES}}
            for band in config.age_bands]
    try:
        result = surv.store_fever_reports(session, viewer.actor, rows, source="page")
    except InputError as exc:
        session.rollback()
        return _surveillance(request, session, viewer, day=str(data.get("date") or ""),
                             problems=exc.problems)
    return _surveillance(request, session, viewer, day=str(data.get("date")),
                         message=f"✓ {result['created']} + {result['updated']}")


@router.post("/surveillance/upload", response_class=HTMLResponse)
async def surveillance_upload(request: Request, session: SessionDep, viewer: ViewerDep,
                              file: UploadFile = File(...)) -> Response:
    """Import daily reports from CSV/.xlsx, all or nothing."""
    data = await file.read()
    try:
        result = surv.import_fever_file(session, viewer.actor, data, file.filename or "x.csv")
    except InputError as exc:
        session.rollback()
        return _surveillance(request, session, viewer, day=None, problems=exc.problems)
    return _surveillance(request, session, viewer, day=None,
                         message=f"✓ {result['created']} + {result['updated']}")


@router.post("/surveillance/alerts/{alert_id}/{action}")
def surveillance_alert(alert_id: int, action: str, session: SessionDep, viewer: ViewerDep,
                       note: str = Form("")) -> Response:
    """Acknowledge or close an alert from the page."""
    target = {"acknowledge": "acknowledged", "close": "closed"}.get(action)
    if target is None:
        raise NotFoundError(f"action '{action}'")
    try:
        surv.transition_alert(session, viewer.actor, alert_id, to=target, note=note)
    except ConflictError:
        session.rollback()
    return RedirectResponse("/surveillance", status_code=303)
