"""Server-rendered pages of the web app (Jinja2 templates, zh-CN by default, English switchable).

The pages sit on the registry's service layer (:mod:`tiercare.registry.service`, the importer
and the reports) exactly like the REST API does, so a page and an API call see the same scope
and obey the same rules. Every page except ``/login`` needs the signed session cookie; without it
the browser is sent to ``/login?next=…``.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Match

from tiercare.auth.models import User
from tiercare.auth.service import Actor, actor_for, authenticate
from tiercare.config import Settings
from tiercare.errors import InputError, NotFoundError, Problem, problems_from_validation
from tiercare.paging import MAX_PAGE
from tiercare.registry import service
from tiercare.registry.codes import LEVEL_DIGITS
from tiercare.registry.importing import KINDS, TABLE_KINDS, import_upload
from tiercare.registry.models import (
    DIVISION_LEVELS,
    Assessment,
    Checklist,
    Division,
    Facility,
)
from tiercare.registry.reports import (
    BLANK_SPOT_KINDS,
    blank_spot_summary,
    blank_spots,
    norm_checks,
    supply,
)
from tiercare.registry.schemas import AssessmentIn
from tiercare.web.deps import SESSION_COOKIE, SessionDep, cookie_serializer, user_from_cookie
from tiercare.web.i18n import LANG_COOKIE, LANGUAGES, Translator, choose_language
from tiercare.web.maps import MapBuilder, SvgMap

TEMPLATE_DIR = Path(__file__).with_name("templates")
PAGE_SIZE = 50
#: Above this many rows the home-page tree stops at county level.
TREE_ROW_LIMIT = 400
FACILITY_STATUSES = ("active", "closed")
FACILITY_LEVELS = ("tertiary", "secondary", "primary", "village")

#: The page that shows the form a POST answers (for the language links of a form answer).
GET_PAGE_OF = {"/standards/assess": "/standards"}

templates = Jinja2Templates(directory=TEMPLATE_DIR)
router = APIRouter(include_in_schema=False)


def _number(value: float | int | None, digits: int = 0) -> str:
    """Thousands separators for counts, fixed decimals for ratios, '—' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


_KM_EXEMPTION = re.compile(r"^(?P<km>[\d.]+) km from (?P<name>.+) \(≤ (?P<limit>[\d.]+) km\)$")
_MINUTES_EXEMPTION = re.compile(
    r"^(?P<minutes>[\d.]+) min from the township health centre \(≤ (?P<limit>[\d.]+) min\)$")


def _exemption(text: str, t: Translator) -> str:
    """The blank-spot report's exemption reason in the page language (as is when unknown)."""
    for key, pattern in (("blank.exempt_km", _KM_EXEMPTION),
                         ("blank.exempt_minutes", _MINUTES_EXEMPTION)):
        match = pattern.match(text)
        if match:
            return t(key, **match.groupdict())
    return text


templates.env.filters["num"] = _number
templates.env.filters["exemption"] = _exemption


# --------------------------------------------------------------------------- who is looking


class _LoginRequired(HTTPException):
    """Sends a browser without a valid session to the login form."""

    def __init__(self, request: Request) -> None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        super().__init__(status_code=303, detail="login required",
                         headers={"Location": "/login?next=" + quote(target, safe="/")})


#: Entry pages of the other domains, linked from the layout's module bar when the app serves them.
MODULE_PAGES: tuple[tuple[str, str], ...] = (
    ("/planning", "nav.planning"),
    ("/referrals", "nav.referrals"),
    ("/booking", "nav.booking"),
    ("/immunization", "nav.immunization"),
    ("/maternal", "nav.maternal"),
    ("/indicators", "nav.indicators"),
    ("/surveillance", "nav.surveillance"),
)


def module_links(app: Any) -> tuple[tuple[str, str], ...]:
    """The :data:`MODULE_PAGES` that ``app`` actually serves (looked up once, then cached)."""
    cached = getattr(app.state, "module_links", None)
    if cached is None:
        served = []
        for path, key in MODULE_PAGES:
            scope = {"type": "http", "method": "GET", "path": path, "root_path": "",
                     "query_string": b"", "headers": []}
            if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
                served.append((path, key))
        cached = tuple(served)
        app.state.module_links = cached
    return cached


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of a page request, with scope, language and translator.

    ``modules`` are the (path, message id) links to the other domains' pages for the layout.
    """

    user: User
    actor: Actor
    lang: str
    scope_name: str
    modules: tuple[tuple[str, str], ...] = ()

    @property
    def t(self) -> Translator:
        """Translator of the viewer's language."""
        return Translator(self.lang)


def _language(request: Request, user: User | None) -> str:
    settings: Settings = request.app.state.settings
    return choose_language(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(LANG_COOKIE),
        user_language=user.language if user is not None else None,
        default=settings.default_language,
    )


def page_viewer(request: Request, session: SessionDep) -> Viewer:
    """Dependency: the logged-in viewer, or a redirect to the login form."""
    user = user_from_cookie(request, session)
    if user is None:
        raise _LoginRequired(request)
    actor = actor_for(session, user)
    lang = _language(request, user)
    if user.facility_id is not None:
        facility = session.get(Facility, user.facility_id)
        scope = facility.name if facility else "?"
    elif user.division_id is not None:
        division = session.get(Division, user.division_id)
        scope = division.name if division else "?"
    else:
        scope = Translator(lang)("scope.all")
    return Viewer(user, actor, lang, scope, module_links(request.app))


ViewerDep = Annotated[Viewer, Depends(page_viewer)]


def _render(request: Request, name: str, *, viewer: Viewer | None, lang: str | None = None,
            status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the layout context (translator, viewer, language links)."""
    lang = viewer.lang if viewer is not None else (lang or _language(request, None))
    # language links are relative; a form answer (POST) switches on the form's own page
    path = request.url.path if request.method == "GET" else GET_PAGE_OF.get(
        request.url.path, request.url.path)
    params = dict(request.query_params) if request.method == "GET" else {}
    switch_links = [(code, path + "?" + urlencode({**params, "lang": code}))
                    for code in LANGUAGES if code != lang]
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": Translator(lang), "lang": lang, "viewer": viewer,
            "switch_links": switch_links, "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def _not_found(request: Request, viewer: Viewer, what: str) -> HTMLResponse:
    return _render(request, "not_found.html", viewer=viewer, status_code=404, what=what)


# --------------------------------------------------------------------------- login / logout


def _safe_next(target: str) -> str:
    """Only same-site paths are followed after login."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str = "/") -> Response:  # noqa: A002
    """The login form (a user already logged in goes straight on to ``next``)."""
    if user_from_cookie(request, session) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _render(request, "login.html", viewer=None, next=_safe_next(next), error=None,
                   username="")


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    """Check the password (Argon2) and set the signed session cookie."""
    user = authenticate(session, username.strip(), password)
    if user is None:
        lang = _language(request, None)
        return _render(request, "login.html", viewer=None, lang=lang, next=_safe_next(next),
                       username=username, error=Translator(lang)("login.failed"),
                       status_code=401)
    settings: Settings = request.app.state.settings
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie_serializer(settings).dumps({"uid": user.id}),
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/logout")
def logout() -> Response:
    """Forget the session cookie and go back to the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --------------------------------------------------------------------------- division counts


@dataclass
class DivisionNode:
    """A division with the counts of its subtree (for the tree and the child tables)."""

    code: str
    prefix: str
    name: str
    level: str
    population: int | None
    facilities: int = 0
    villages: int = 0
    village_population: int = 0
    children: list[DivisionNode] = field(default_factory=list)

    @property
    def shown_population(self) -> int | None:
        """The recorded population, else the sum over the villages below."""
        if self.population is not None:
            return self.population
        return self.village_population or None


def _ancestor_prefixes(prefix: str) -> list[str]:
    return [prefix[:n] for n in LEVEL_DIGITS.values() if n <= len(prefix)]


def _division_nodes(session: Session, actor: Actor, prefix: str) -> dict[str, DivisionNode]:
    """Every division under ``prefix`` (within the actor's scope) with subtree counts."""
    rows = session.execute(
        select(Division.code, Division.prefix, Division.name, Division.level,
               Division.population, Division.parent_id, Division.id)
        .where(Division.code.like(prefix + "%"), actor.division_clause(Division.code))
        .order_by(Division.code)
    ).all()
    nodes = {r.prefix: DivisionNode(r.code, r.prefix, r.name, r.level, r.population)
             for r in rows}
    by_id = {r.id: nodes[r.prefix] for r in rows}
    for r in rows:
        parent = by_id.get(r.parent_id) if r.parent_id is not None else None
        if parent is not None:
            parent.children.append(nodes[r.prefix])
        if r.level == "village":
            for ancestor in _ancestor_prefixes(r.prefix):
                if ancestor in nodes:
                    nodes[ancestor].villages += 1
                    nodes[ancestor].village_population += r.population or 0
    facility_prefixes = session.scalars(
        select(Facility.division_prefix).where(
            Facility.division_prefix.like(prefix + "%"), Facility.closed_on.is_(None),
            actor.facility_clause(Facility),
        )
    )
    for facility_prefix in facility_prefixes:
        for ancestor in _ancestor_prefixes(facility_prefix):
            if ancestor in nodes:
                nodes[ancestor].facilities += 1
    return nodes


def _roots(nodes: dict[str, DivisionNode]) -> list[DivisionNode]:
    children = {id(c) for node in nodes.values() for c in node.children}
    return [node for node in nodes.values() if id(node) not in children]


def _flatten(roots: list[DivisionNode], *, deepest: str) -> list[tuple[int, DivisionNode]]:
    stop = DIVISION_LEVELS.index(deepest)
    out: list[tuple[int, DivisionNode]] = []

    def walk(node: DivisionNode, depth: int) -> None:
        if DIVISION_LEVELS.index(node.level) > stop:
            return
        out.append((depth, node))
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


# --------------------------------------------------------------------------- maps


#: Display order of resource items (others follow alphabetically).
RESOURCE_ORDER = {
    "beds": ("general", "icu", "obstetric", "paediatric", "tcm", "infectious", "psychiatric",
             "rehabilitation"),
    "staff": ("physician", "assistant_physician", "nurse", "gp", "pharmacist", "technician",
              "other"),
    "equipment": ("ct", "mri", "dr", "ultrasound", "ecg", "dialysis", "ambulance"),
}


def _ordered(category: str, values: dict[str, int]) -> list[tuple[str, int]]:
    """Resource items in their usual reporting order."""
    order = RESOURCE_ORDER.get(category, ())
    rank = {item: n for n, item in enumerate(order)}
    return sorted(values.items(), key=lambda kv: (rank.get(kv[0], len(order)), kv[0]))


FACILITY_TIER_CSS = {"tertiary": "fac-tertiary", "secondary": "fac-secondary",
                     "primary": "fac-primary", "village": "fac-village"}


def _boundary_with_ancestors(division: Division) -> Division | None:
    """The division itself or its nearest ancestor that has a boundary."""
    current: Division | None = division
    while current is not None and current.boundary is None:
        current = current.parent
    return current


def _facility_point(builder: MapBuilder, f: dict[str, Any], t: Translator) -> None:
    builder.point(
        f["lon"], f["lat"], css=FACILITY_TIER_CSS.get(f["level"], "fac-primary"),
        label=f"{f['name']} · {t.label('ftype', f['type'])}",
        href=f"/facilities/{quote(f['code'])}",
        radius=6.0 if f["level"] in {"secondary", "tertiary"} else 4.5,
    )


def _division_map(division: Division, children: list[Division],
                  facilities: list[dict[str, Any]], t: Translator) -> SvgMap | None:
    """The division's outline, its children (boundaries or points) and facility points."""
    builder = MapBuilder()
    outline = _boundary_with_ancestors(division)
    if outline is not None:
        builder.polygon(outline.boundary, css="outline", label=outline.name)
    for child in children:
        href = f"/divisions/{child.code}"
        if not builder.polygon(child.boundary, css="child", label=child.name, href=href,
                               caption=child.name):
            builder.point(child.lon, child.lat, css="division-point", label=child.name,
                          href=href, radius=3.5)
    for f in facilities:
        _facility_point(builder, f, t)
    return builder.render()


# --------------------------------------------------------------------------- home and divisions


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Division tree of the viewer's scope with facility, village and population counts."""
    nodes = _division_nodes(session, viewer.actor, viewer.actor.division_prefix)
    roots = _roots(nodes)
    deepest = "village" if any(r.level == "village" for r in roots) else "township"
    rows = _flatten(roots, deepest=deepest)
    if len(rows) > TREE_ROW_LIMIT:
        rows = _flatten(roots, deepest="county")
    focus = roots[0] if len(roots) == 1 else None
    while focus is not None and len(focus.children) == 1:
        focus = focus.children[0]
    svg = None
    if focus is not None:
        division = session.scalar(select(Division).where(Division.code == focus.code))
        if division is not None:
            children = list(session.scalars(
                select(Division).where(Division.parent_id == division.id).order_by(Division.code)))
            _, located = service.list_facilities(session, viewer.actor, division=division.code,
                                                 status="active", limit=MAX_PAGE)
            svg = _division_map(division, children,
                                [f for f in located if f["level"] != "village"], viewer.t)
    totals = {
        "population": sum(r.shown_population or 0 for r in roots),
        "facilities": sum(r.facilities for r in roots),
        "villages": sum(r.villages for r in roots),
        "townships": sum(1 for n in nodes.values() if n.level == "township"),
    }
    return _render(request, "home.html", viewer=viewer, rows=rows, focus=focus, svg=svg,
                   totals=totals)


@router.get("/divisions/{code}", response_class=HTMLResponse)
def division_page(code: str, request: Request, session: SessionDep,
                  viewer: ViewerDep) -> Response:
    """A division: its children with counts, its facilities and a map."""
    try:
        division = service.get_division(session, viewer.actor, code)
    except (NotFoundError, InputError):
        return _not_found(request, viewer, code)
    nodes = _division_nodes(session, viewer.actor, division.prefix)
    node = nodes[division.prefix]
    children = list(session.scalars(
        select(Division).where(Division.parent_id == division.id).order_by(Division.code)))
    total, facilities = service.list_facilities(session, viewer.actor, division=division.code,
                                                limit=MAX_PAGE)
    ancestors: list[Division] = []
    parent = division.parent
    while parent is not None and viewer.actor.covers_division(parent.code):
        ancestors.insert(0, parent)
        parent = parent.parent
    active = [f for f in facilities if f["status"] == "active"]
    svg = _division_map(division, children, active, viewer.t)
    return _render(
        request, "division.html", viewer=viewer, division=division, node=node,
        children=[nodes[c.prefix] for c in children if c.prefix in nodes],
        facilities=facilities[:PAGE_SIZE], facilities_total=total, ancestors=ancestors,
        svg=svg,
    )


# --------------------------------------------------------------------------- facilities


def _int_param(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        return default


@router.get("/facilities", response_class=HTMLResponse)
def facility_list(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Facilities with filters (type, level, status, name search, division) and pagination."""
    params = request.query_params
    filters = {
        "type": params.get("type") or None,
        "level": params.get("level") if params.get("level") in FACILITY_LEVELS else None,
        "status": params.get("status") if params.get("status") in FACILITY_STATUSES else None,
        "q": (params.get("q") or "").strip() or None,
        "division": params.get("division") or None,
    }
    page = _int_param(params.get("page"), 1)
    types = service.facility_types(session)
    if filters["type"] not in {t["code"] for t in types}:
        filters["type"] = None
    try:
        total, items = service.list_facilities(session, viewer.actor,
                                               offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
                                               **filters)
        division = (service.get_division(session, viewer.actor, filters["division"])
                    if filters["division"] else None)
    except (NotFoundError, InputError):
        return _not_found(request, viewer, filters["division"] or "")
    pages = max(1, math.ceil(total / PAGE_SIZE))
    kept = {k: v for k, v in filters.items() if v}

    def page_link(number: int) -> str:
        return "/facilities?" + urlencode({**kept, "page": number})

    return _render(
        request, "facilities.html", viewer=viewer, items=items, total=total, page=page,
        pages=pages, filters=filters, types=types, levels=FACILITY_LEVELS,
        statuses=FACILITY_STATUSES, division=division,
        prev_link=page_link(page - 1) if page > 1 else None,
        next_link=page_link(page + 1) if page < pages else None,
        first_index=(page - 1) * PAGE_SIZE,
    )


@router.get("/facilities/{code}", response_class=HTMLResponse)
def facility_page(code: str, request: Request, session: SessionDep,
                  viewer: ViewerDep) -> Response:
    """A facility: identity, resources, services, history, assessments, staff and a map."""
    try:
        facility = service.get_facility(session, viewer.actor, code)
    except NotFoundError:
        return _not_found(request, viewer, code)
    data = service.facility_dict(facility)
    _, assessments = service.list_assessments(session, viewer.actor, facility=facility.code)
    staff_total, staff = service.list_staff(session, viewer.actor, facility=facility.code,
                                            limit=MAX_PAGE)
    ancestors: list[Division] = []
    current: Division | None = facility.division
    while current is not None and viewer.actor.covers_division(current.code):
        ancestors.insert(0, current)
        current = current.parent
    builder = MapBuilder()
    outline = _boundary_with_ancestors(facility.division)
    if outline is not None:
        builder.polygon(outline.boundary, css="outline", label=outline.name,
                        href=f"/divisions/{outline.code}")
        for child in session.scalars(select(Division).where(Division.parent_id == outline.id)
                                     .order_by(Division.code)):
            href = f"/divisions/{child.code}"
            if not builder.polygon(child.boundary, css="child", label=child.name, href=href,
                                   caption=child.name):
                builder.point(child.lon, child.lat, css="division-point", label=child.name,
                              href=href, radius=3)
    builder.point(data["lon"], data["lat"], css=f"{FACILITY_TIER_CSS.get(data['level'])} focus",
                  label=data["name"], radius=8)
    resources = {category: _ordered(category, data[category])
                 for category in ("beds", "staff", "equipment")}
    return _render(
        request, "facility.html", viewer=viewer, f=data, facility=facility,
        type_name=facility.type.name_zh if viewer.lang == "zh-CN" else facility.type.name_en,
        assessments=assessments, staff=staff, staff_total=staff_total, ancestors=ancestors,
        svg=builder.render(width=560, max_height=400), outline=outline, resources=resources,
    )


# --------------------------------------------------------------------------- import


def _import_page(request: Request, viewer: Viewer, *, kind: str = "facilities",
                 result: dict[str, Any] | None = None, problems: list[Problem] | None = None,
                 filename: str = "", status_code: int = 200) -> HTMLResponse:
    return _render(
        request, "import.html", viewer=viewer, kinds=KINDS, table_kinds=TABLE_KINDS, kind=kind,
        result=result, problems=problems, filename=filename, status_code=status_code,
        can_edit=viewer.actor.can_edit_registry,
    )


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request, viewer: ViewerDep, kind: str = "facilities") -> Response:
    """Choose a kind, upload a file; template downloads for each kind."""
    return _import_page(request, viewer, kind=kind if kind in KINDS else "facilities")


@router.post("/import", response_class=HTMLResponse)
async def import_submit(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    kind: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
) -> Response:
    """Run an all-or-nothing import; on any bad row show every problem and write nothing."""
    filename = file.filename or ""
    if kind not in KINDS:
        problems = [Problem(reason=f"unknown import kind '{kind}'", field="kind")]
        return _import_page(request, viewer, problems=problems, status_code=422)
    data = await file.read()
    if not filename or not data:
        problems = [Problem(reason=viewer.t("import.no_file"), field="file", code="missing")]
        return _import_page(request, viewer, kind=kind, problems=problems, status_code=422)
    try:
        result = import_upload(session, kind, data, filename, actor=viewer.actor)
        session.flush()
    except InputError as exc:
        session.rollback()
        return _import_page(request, viewer, kind=kind, problems=exc.problems,
                            filename=filename, status_code=422)
    return _import_page(request, viewer, kind=kind, result=result.as_dict(), filename=filename)


# --------------------------------------------------------------------------- standards


def _checklists(session: Session) -> list[Checklist]:
    return list(session.scalars(select(Checklist).order_by(Checklist.code,
                                                           Checklist.effective_from)))


def _standards_page(request: Request, session: Session, viewer: Viewer, *,
                    checklist_code: str | None, facility_code: str | None = None,
                    result: dict[str, Any] | None = None, problems: list[Problem] | None = None,
                    form: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    checklists = _checklists(session)
    current: Checklist | None = None
    if checklist_code:
        try:
            current = service.checklist_in_force(session, checklist_code, date.today())
        except InputError:
            current = None
    candidates: list[dict[str, Any]] = []
    if current is not None:
        for type_code in current.applies_to or [None]:
            _, found = service.list_facilities(session, viewer.actor, type=type_code,
                                               status="active", limit=MAX_PAGE)
            candidates += found
    _, assessments = service.list_assessments(session, viewer.actor, limit=PAGE_SIZE)
    return _render(
        request, "standards.html", viewer=viewer, checklists=checklists, current=current,
        candidates=candidates, facility_code=facility_code, assessments=assessments,
        result=result, problems=problems, form=form or {}, today=date.today().isoformat(),
        can_edit=viewer.actor.can_edit_registry, status_code=status_code,
    )


@router.get("/standards", response_class=HTMLResponse)
def standards(request: Request, session: SessionDep, viewer: ViewerDep,
              checklist: str | None = None, facility: str | None = None,
              assessment: int | None = None) -> Response:
    """Checklists, recent assessments and the assessment form of one checklist."""
    result = None
    if assessment is not None:
        row = session.get(Assessment, assessment)
        if row is not None:
            try:
                service.get_facility(session, viewer.actor, row.facility.code)
                result = service.assessment_dict(row)
                checklist = checklist or row.checklist.code
            except NotFoundError:
                result = None
    return _standards_page(request, session, viewer, checklist_code=checklist,
                           facility_code=facility, result=result)


@router.post("/standards/assess", response_class=HTMLResponse)
async def standards_assess(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Record an assessment from the checkbox form; show the score and the unmet items."""
    form = await request.form()
    checklist_code = str(form.get("checklist_code", ""))
    met = {str(v) for v in form.getlist("met")}
    values = {k: str(form.get(k, "")) for k in ("facility_code", "assessed_on", "assessor",
                                                 "notes")}
    problems: list[Problem] = []
    try:
        checklist = service.checklist_in_force(session, checklist_code, date.today())
        data = AssessmentIn(
            facility_code=values["facility_code"], checklist_code=checklist.code,
            checklist_version=checklist.version,
            assessed_on=values["assessed_on"] or date.today().isoformat(),
            assessor=values["assessor"].strip() or viewer.user.full_name or viewer.user.username,
            answers={item["code"]: item["code"] in met for item in checklist.items},
            notes=values["notes"],
        )
        row = service.record_assessment(session, viewer.actor, data)
    except ValidationError as exc:
        problems = problems_from_validation(exc.errors())
    except InputError as exc:
        problems = list(exc.problems)
    except NotFoundError as exc:
        problems = [Problem(reason=f"not found: {exc}", field="facility_code")]
    if problems:
        session.rollback()
        return _standards_page(request, session, viewer, checklist_code=checklist_code,
                               facility_code=values["facility_code"], problems=problems,
                               form={**values, "met": met}, status_code=422)
    session.commit()
    return RedirectResponse(
        "/standards?" + urlencode({"checklist": checklist.code, "assessment": row.id}),
        status_code=303)


# --------------------------------------------------------------------------- reports


def _report_root(session: Session, viewer: Viewer, code: str | None) -> Division | None:
    if not code:
        return None
    try:
        return service.get_division(session, viewer.actor, code)
    except (NotFoundError, InputError):
        return None


def _context_outlines(builder: MapBuilder, session: Session, prefix: str) -> None:
    """Draw township boundaries under ``prefix`` (or the county ones when there are none)."""
    for level in ("township", "county", "city"):
        found = False
        for division in session.scalars(
            select(Division).where(Division.code.like(prefix + "%"), Division.level == level,
                                   Division.boundary.is_not(None)).order_by(Division.code)
        ):
            found |= builder.polygon(division.boundary, css="child", label=division.name,
                                     href=f"/divisions/{division.code}",
                                     caption=division.name if level == "township" else None)
        if found:
            return


@router.get("/reports/blank-spots", response_class=HTMLResponse)
def report_blank_spots(request: Request, session: SessionDep, viewer: ViewerDep,
                       division: str | None = None, km: str | None = None) -> Response:
    """Blank spots (with exemptions and their reasons) as a table and a map."""
    root = _report_root(session, viewer, division)
    try:
        exempt_km = float(km) if km else None
    except ValueError:
        exempt_km = None
    if exempt_km is not None and (exempt_km < 0 or not math.isfinite(exempt_km)):
        exempt_km = None
    spots = blank_spots(session, viewer.actor, root_code=root.code if root else None,
                        exempt_within_km=exempt_km)
    summary = blank_spot_summary(spots)
    prefix = root.prefix if root else viewer.actor.division_prefix
    builder = MapBuilder()
    _context_outlines(builder, session, prefix)
    _, clinics = service.list_facilities(session, viewer.actor,
                                         division=root.code if root else None,
                                         type="village_clinic", status="active",
                                         limit=MAX_PAGE)
    flagged = {s.facility_code for s in spots if s.facility_code}
    for clinic in clinics:
        if clinic["code"] not in flagged:
            builder.point(clinic["lon"], clinic["lat"], css="ok-point", label=clinic["name"],
                          href=f"/facilities/{quote(clinic['code'])}", radius=3)
    codes = {s.division_code for s in spots}
    located = {d.code: d for d in session.scalars(select(Division).where(Division.code.in_(codes)))}
    facilities = {f.code: f for f in session.scalars(
        select(Facility).where(Facility.code.in_(flagged)))} if flagged else {}
    for spot in spots:
        label = f"{spot.division_name} · {viewer.t.label('blank', spot.kind)}"
        if spot.facility_code and spot.facility_code in facilities:
            f = facilities[spot.facility_code]
            builder.point(f.lon, f.lat, css="spot-doctor", label=f"{f.name} · " + label,
                          href=f"/facilities/{quote(f.code)}", radius=5)
            continue
        place = located.get(spot.division_code)
        if place is None:
            continue
        if spot.kind != "village_without_clinic":
            builder.polygon(place.boundary, css="spot-area", label=label,
                            href=f"/divisions/{place.code}")
            continue
        builder.point(place.lon, place.lat, css="spot-exempt" if spot.exempt else "spot",
                      label=label + (f" ({spot.exemption})" if spot.exempt else ""),
                      href=f"/divisions/{place.code}", radius=5)
    return _render(
        request, "blank_spots.html", viewer=viewer, spots=spots, summary=summary,
        kinds=BLANK_SPOT_KINDS, svg=builder.render(width=760, max_height=560), root=root,
        km=exempt_km,
    )


@router.get("/reports/supply", response_class=HTMLResponse)
def report_supply(request: Request, session: SessionDep, viewer: ViewerDep,
                  division: str | None = None) -> Response:
    """Supply per 1,000 by county and township against the norms, with bar charts."""
    root = _report_root(session, viewer, division)
    report = supply(session, viewer.actor, root_code=root.code if root else None)
    rows = [{**row, "checks": norm_checks(row)} for row in report["rows"]]
    norms = report["norms"]
    label_key = "label_zh" if viewer.lang == "zh-CN" else "label_en"
    townships = [r for r in rows if r["level"] == "township"] or rows
    charts = [
        {
            "id": f"chart-{n['indicator']}",
            "title": n[label_key],
            "names": [r["division_name"] for r in townships],
            "values": [r[n["indicator"]] for r in townships],
            "passes": [r["checks"].get(n["indicator"]) for r in townships],
            "target": n["target"],
            "target_label": viewer.t("supply.norm_line", target=_number(n["target"], 2)),
        }
        for n in norms
    ]
    structure = defaultdict(list)
    for axis, entries in report["structure"].items():
        for key, values in sorted(entries.items(), key=lambda kv: -kv[1]["facilities"]):
            structure[axis].append((key, values["facilities"], values["beds"]))
    return _render(
        request, "supply.html", viewer=viewer, rows=rows, norms=norms, label_key=label_key,
        charts_json=json.dumps(charts, ensure_ascii=False).replace("<", "\\u003c"),
        structure=dict(structure),
        as_of=report["as_of"], root=root,
    )
