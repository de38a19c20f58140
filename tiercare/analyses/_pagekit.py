"""Shared parts of the planning pages: templates, texts, rendering, choices and base maps.

Templates extend the web layout (``base.html``) through a loader that searches this package's
``templates`` folder first, then the web app's; texts come from this package's catalogues
(``data/ui/<lang>.json``) first, then the web app's (:class:`PlanningTranslator`).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.errors import InputError
from tiercare.registry.accessibility import tiers
from tiercare.registry.models import Division
from tiercare.registry.reference import facility_type_rows
from tiercare.scenarios import service as scenarios
from tiercare.scenarios.models import RoadNetwork
from tiercare.web.i18n import LANG_COOKIE, LANGUAGES, Translator
from tiercare.web.maps import MapBuilder
from tiercare.web.pages import TEMPLATE_DIR as WEB_TEMPLATE_DIR
from tiercare.web.pages import Viewer
from tiercare.web.pages import templates as web_templates

PACKAGE_DIR = Path(__file__).parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
CATALOGUE_DIR = PACKAGE_DIR / "data" / "ui"
templates = Jinja2Templates(directory=TEMPLATE_DIR)
templates.env.loader = ChoiceLoader([FileSystemLoader(TEMPLATE_DIR),
                                     FileSystemLoader(WEB_TEMPLATE_DIR)])
templates.env.filters.update(web_templates.env.filters)


# --------------------------------------------------------------------------- texts


@lru_cache(maxsize=None)
def planning_catalogue(lang: str) -> dict[str, str]:
    """The planning pages' messages of one language (``data/ui/<lang>.json``)."""
    with (CATALOGUE_DIR / f"{lang}.json").open(encoding="utf-8") as fh:
        data: dict[str, str] = json.load(fh)
    return data


class PlanningTranslator(Translator):
    """Looks up the planning catalogue first, then the web app's catalogues.

    Examples
    --------
    >>> PlanningTranslator("en")("plan.title")
    'Planning'
    >>> PlanningTranslator("zh-CN")("nav.facilities")
    '医疗机构'
    """

    def __call__(self, key: str, **values: Any) -> str:
        """The text of ``key`` with ``{placeholders}`` filled from ``values``."""
        text = planning_catalogue(self.lang).get(key)
        if text is None:
            return super().__call__(key, **values)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        """True when either catalogue holds ``key``."""
        return key in planning_catalogue(self.lang) or super().has(key)

    def label(self, group: str, code: str | None) -> str:
        """Display label of a code; tiers and facility types come from the data files."""
        if code and group == "tier":
            spec = tiers()["tiers"].get(code)
            if spec is not None:
                return str(spec["label_zh" if self.lang == "zh-CN" else "label_en"])
        if code and group == "ftype":
            names = type_names()
            if code in names:
                return names[code][0 if self.lang == "zh-CN" else 1]
        if code and f"{group}.{code}" in planning_catalogue(self.lang):
            return self(f"{group}.{code}")
        return super().label(group, code)

    def group(self, name: str) -> str:
        """Label of an analysis group: a tier or a specialised centre."""
        return self.label("tier" if name in tiers()["tiers"] else "centre", name)


@lru_cache(maxsize=1)
def type_names() -> dict[str, tuple[str, str]]:
    """Facility type code → (Chinese name, English name), from the shipped reference data."""
    return {row["code"]: (row["name_zh"], row["name_en"]) for row in facility_type_rows()}


def local_time(value: datetime | str | None, timezone: str) -> str:
    """A stored UTC time as local wall-clock text."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def percent(value: float | None, digits: int = 1) -> str:
    """A share 0..1 as a percentage, '—' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.{digits}f} %"


def signed(value: float | None, digits: int = 0) -> str:
    """A difference with its sign and thousands separators."""
    if value is None:
        return "—"
    return f"{value:+,.{digits}f}"


templates.env.filters["pct"] = percent
templates.env.filters["signed"] = signed
templates.env.globals["zip"] = zip


def render(request: Request, name: str, viewer: Viewer, *, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """Render one of the planning pages inside the common layout."""
    other = [code for code in LANGUAGES if code != viewer.lang]
    timezone = request.app.state.settings.timezone
    response = templates.TemplateResponse(request, name, {
        "t": PlanningTranslator(viewer.lang), "lang": viewer.lang, "viewer": viewer,
        "switch_links": [(code, str(request.url.include_query_params(lang=code)))
                         for code in other],
        "path": request.url.path, "local": lambda v: local_time(v, timezone),
        "can_plan": can_plan(viewer), **context,
    }, status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, viewer.lang, max_age=365 * 86400, samesite="lax")
    return response


def can_plan(viewer: Viewer) -> bool:
    """Whether the viewer may save, evaluate and delete scenarios."""
    return viewer.actor.can_edit_registry or viewer.actor.role == "planner"


def script_json(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block (no ``</script>`` break-out)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")


def redirect(url: str, **params: Any) -> RedirectResponse:
    """303 to ``url`` with ``params`` (those not None) in the query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(url + ("?" + query if query else ""), status_code=303)


# --------------------------------------------------------------------------- choices


def counties(session: Session, viewer: Viewer) -> list[Division]:
    """Divisions an analysis can run on: the counties in scope (or the scope itself)."""
    rows = list(session.scalars(
        select(Division).where(Division.level == "county",
                               viewer.actor.division_clause(Division.code))
        .order_by(Division.code)))
    if rows or not viewer.actor.division_prefix:
        return rows
    own = session.scalar(select(Division).where(
        Division.prefix == viewer.actor.division_prefix))
    return [own] if own is not None else []


def road_networks(session: Session, viewer: Viewer) -> list[RoadNetwork]:
    """Stored road networks of the viewer's scope (their GeoJSON is not loaded)."""
    return list(session.scalars(scenarios.scoped_road_networks(viewer.actor)))


def division_names(session: Session, codes: set[str]) -> dict[str, str]:
    """Division code → name for ``codes`` (unknown codes are left out)."""
    if not codes:
        return {}
    rows = session.execute(select(Division.code, Division.name)
                           .where(Division.code.in_(sorted(codes))))
    return {code: name for code, name in rows}


def form_defaults(session: Session, viewer: Viewer) -> dict[str, Any]:
    """Choices shared by the forms: counties, road networks (and each county's own), tiers."""
    found = counties(session, viewer)
    networks = road_networks(session, viewer)
    return {"counties": found, "networks": networks,
            "tier_names": list(tiers()["tiers"]),
            "default_network": {c.code: next((n.name for n in networks
                                               if n.division_code == c.code), "")
                                for c in found}}


def parse_thresholds(text: str) -> list[float]:
    """``"15, 30,60"`` → ``[15, 30, 60]`` (sorted, unique); InputError naming the field."""
    try:
        values = sorted({float(part) for part in text.replace("，", ",").split(",")
                         if part.strip()})
    except ValueError as exc:
        raise InputError.single("thresholds must be minutes separated by commas",
                                field="thresholds") from exc
    if not values or not all(0 < v <= 600 for v in values):
        raise InputError.single("thresholds must be minutes in (0, 600]", field="thresholds")
    return [int(v) if v.is_integer() else v for v in values]


def townships(session: Session, prefix: str) -> list[Division]:
    """The townships under a division prefix, in code order."""
    return list(session.scalars(
        select(Division).where(Division.code.like(prefix + "%"), Division.level == "township")
        .order_by(Division.code)))


def outline_map(session: Session, prefix: str, division_code: str,
                css: dict[str, tuple[str, str]] | None = None) -> MapBuilder:
    """A map builder holding the townships (styled per code by ``css``) or the outline."""
    builder = MapBuilder()
    drawn = False
    for township in townships(session, prefix):
        style, label = (css or {}).get(township.code, ("child", township.name))
        drawn |= builder.polygon(township.boundary, css=style, label=label,
                                 href=f"/divisions/{township.code}", caption=township.name)
    if not drawn:
        division = session.scalar(select(Division).where(Division.code == division_code))
        if division is not None:
            builder.polygon(division.boundary, css="outline", label=division.name)
    return builder
