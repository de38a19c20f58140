"""Web pages of the planning engine: access analyses and optimisation (scenarios: see
:mod:`tiercare.analyses.scenario_pages`, whose routes this router includes).

The pages sit on the same services as the REST API (:mod:`tiercare.analyses.service`,
:mod:`tiercare.scenarios.service`): a form starts a run exactly like ``POST /api/v1/analyses``
does, the run page polls ``GET /api/v1/analyses/{id}`` for progress (the API accepts the page's
session cookie) and reloads when the run has finished; results are drawn on the server (tables,
inline SVG maps from :class:`tiercare.web.maps.MapBuilder`) and with the locally served Plotly
(travel-time surface, coverage chart).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from shapely.geometry import Point, shape
from shapely.prepared import prep
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.analyses import _pagekit as kit
from tiercare.analyses import service
from tiercare.analyses.api import analysis_executor
from tiercare.analyses.models import AnalysisRun
from tiercare.analyses.scenario_pages import router as scenario_router
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.registry.accessibility import DEFAULT_THRESHOLDS, facility_points, tiers
from tiercare.registry.codes import prefix_of
from tiercare.registry.models import Division
from tiercare.scenarios import service as scenarios
from tiercare.web.deps import SessionDep
from tiercare.web.pages import Viewer, ViewerDep

#: Runs shown in the lists of previous runs.
RUN_LIST = 30
#: Candidate sets of an optimisation: registry facilities of some types (upgraded), every
#: village, or sites uploaded with the form (both become new facilities).
CANDIDATE_SETS: dict[str, tuple[str, ...]] = {
    "township_centres": ("township_health_centre_central", "township_health_centre"),
    "township_level": ("township_health_centre_central", "township_health_centre",
                       "township_health_centre_branch", "community_health_centre"),
    "village_clinics": ("village_clinic", "community_health_station"),
    "villages": (),
    "sites": (),
}
#: Facility type a chosen site takes by default, per tier to extend.
TIER_DEFAULT_TYPE = {"county": "county_sub_centre", "township": "township_health_centre",
                     "village": "village_clinic"}
#: Accepted column names of an uploaded site list (English and Chinese headers).
SITE_COLUMNS = {"code": ("code", "id", "编码", "代码"), "name": ("name", "名称", "站点名称"),
                "lon": ("lon", "lng", "longitude", "x", "经度"),
                "lat": ("lat", "latitude", "y", "纬度"),
                "cost": ("cost", "费用", "投资", "造价")}
#: Columns an uploaded site list must have.
SITE_REQUIRED = ("code", "lon", "lat")
MODELS = ("mclp", "lscp", "pmedian", "pcenter", "two-tier")
#: Share bands (lower bounds) of the township coverage map.
SHARE_BANDS = (0.0, 0.5, 0.8, 0.95)
router = APIRouter(include_in_schema=False)


@router.get("/planning/assets/{name}")
def asset(name: str) -> FileResponse:
    """The planning pages' script and style sheet (served by the app, no CDN)."""
    media = {"planning.js": "text/javascript", "planning.css": "text/css"}
    if name not in media:
        raise HTTPException(404, "no such asset")
    return FileResponse(kit.STATIC_DIR / name, media_type=media[name])


def _runs(session: Session, viewer: Viewer, kind: str | None = None) -> list[dict[str, Any]]:
    """The newest runs in the viewer's scope (without results), with division names."""
    _total, runs = service.list_runs(session, viewer.actor, kind=kind, limit=RUN_LIST)
    rows = [service.run_dict(r) for r in runs]
    names = kit.division_names(session, {r["division_code"] for r in rows})
    for row in rows:
        row["division_name"] = names.get(row["division_code"], row["division_code"])
    return rows


# --------------------------------------------------------------------------- access analyses


def _start(request: Request, session: Session, viewer: Viewer, *, kind: str,
           division_code: str, params: dict[str, Any]) -> AnalysisRun:
    """Queue a run and hand it to the app's analysis worker (as the API does)."""
    run = service.create_run(session, viewer.actor, kind=kind, division_code=division_code,
                             params=params)
    session.commit()
    analysis_executor(request).submit(service.execute, request.app.state.sessions, viewer.actor, run.id)
    return run


@router.get("/planning", response_class=HTMLResponse)
def planning_home(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """The access-analysis form and the previous runs."""
    return _access_form(request, session, viewer, form={})


def _access_form(request: Request, session: Session, viewer: Viewer, *, form: dict[str, Any],
                 problems: list[Problem] | None = None,
                 status_code: int = 200) -> HTMLResponse:
    return kit.render(request, "planning_access_form.html", viewer,
                      status_code=status_code, form=form, problems=problems,
                      runs=_runs(session, viewer), default_thresholds=", ".join(
                      f"{t:g}" for t in DEFAULT_THRESHOLDS),
                      **kit.form_defaults(session, viewer))


@router.post("/planning/access", response_class=HTMLResponse)
def start_access(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    division_code: Annotated[str, Form()],
    road_network: Annotated[str, Form()] = "",
    thresholds: Annotated[str, Form()] = "15,30,60",
    surface_tier: Annotated[str, Form()] = "county",
) -> Response:
    """Start an access run from the form and go to its page."""
    form = {"division_code": division_code, "road_network": road_network,
            "thresholds": thresholds, "surface_tier": surface_tier}
    try:
        if surface_tier not in tiers()["tiers"]:
            raise InputError.single(f"unknown tier {surface_tier!r}", field="surface_tier")
        params = {"road_network": road_network, "thresholds": kit.parse_thresholds(thresholds),
                  "surface_tier": surface_tier}
        run = _start(request, session, viewer, kind="access", division_code=division_code,
                     params=params)
    except InputError as exc:
        session.rollback()
        return _access_form(request, session, viewer, form=form, problems=exc.problems,
                            status_code=422)
    return kit.redirect(f"/planning/runs/{run.id}")


@router.get("/planning/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, session: SessionDep, viewer: ViewerDep, run_id: int,
             tier: str | None = None, threshold: float | None = None) -> Response:
    """A run: progress while it runs, the failure, or its results."""
    try:
        run = service.get_run(session, viewer.actor, run_id)
    except NotFoundError:
        return kit.render(request, "not_found.html", viewer, status_code=404,
                          what=f"#{run_id}")
    info = service.run_dict(run)
    info["division_name"] = kit.division_names(session, {run.division_code}).get(
        run.division_code, run.division_code)
    if run.status != "done" or not run.result:
        return kit.render(request, "planning_run_progress.html", viewer, run=info)
    if run.kind == "access":
        return kit.render(request, "planning_access_result.html", viewer, run=info,
                          **_access_context(session, viewer, run, tier=tier, threshold=threshold))
    return kit.render(request, "planning_optimise_result.html", viewer, run=info,
                      **_optimise_context(session, viewer, run))


def _lines(geometries: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Polygon boundaries as one Plotly line trace (``None`` between rings)."""
    lon: list[float | None] = []
    lat: list[float | None] = []
    for geojson in geometries:
        outline = shape(geojson).simplify(0.0005).boundary
        parts = list(outline.geoms) if hasattr(outline, "geoms") else [outline]
        for part in parts:
            for x, y in part.coords:
                lon.append(round(x, 5))
                lat.append(round(y, 5))
            lon.append(None)
            lat.append(None)
    return {"lon": lon, "lat": lat}


def _share(covered: float | None, population: float | None) -> float | None:
    if covered is None or not population:
        return None
    return covered / population


def _band(share: float | None) -> str:
    if share is None:
        return "share-na"
    index = max(i for i, low in enumerate(SHARE_BANDS) if share >= low)
    return f"share-{index}"


def _pick_threshold(value: float | None, thresholds: list[float]) -> float:
    if value is not None and any(abs(value - t) < 1e-9 for t in thresholds):
        return float(value)
    return float(thresholds[0])


def _access_context(session: Session, viewer: Viewer, run: AnalysisRun, *, tier: str | None,
                    threshold: float | None) -> dict[str, Any]:
    """Everything the access result page shows, computed from the stored result."""
    t = kit.PlanningTranslator(viewer.lang)
    result = run.result or {}
    summary = result["summary"]
    thresholds = [float(x) for x in summary["thresholds"]]
    labels = [f"{x:g}" for x in thresholds]
    total = summary["population_total"]
    tier_names = list(tiers()["tiers"])
    tier = tier if tier in tier_names else "township"
    chosen = _pick_threshold(threshold, thresholds)
    chosen_label = f"{chosen:g}"
    prefix = prefix_of(run.division_code)
    facilities = facility_points(session, viewer.actor, root_prefix=prefix)
    facility_names = dict(zip(facilities["code"], facilities["name"], strict=True))

    def rows_of(section: str) -> list[dict[str, Any]]:
        out = []
        for name, entry in summary[section].items():
            covered = entry.get("covered", {})
            out.append({"name": name, "label": t.group(name), "facilities": entry["facilities"],
                        "covered": [(covered.get(x), _share(covered.get(x), total))
                                    for x in labels],
                        "unreachable": entry.get("unreachable"),
                        "mean": entry.get("mean_minutes"), "p90": entry.get("p90_minutes"),
                        "per_facility": entry.get("population_per_facility"),
                        "equity_gap": entry.get("equity_gap")})
        return out

    township_rows = [r for r in result["coverage"]
                     if r["group"] == tier and r["division"] != "total"]
    names = kit.division_names(session, {r["division"] for r in township_rows})
    coverage = []
    for row in township_rows:
        shares = [_share(row.get(f"covered_{x}"), row["population"]) for x in labels]
        coverage.append({"code": row["division"], "name": names.get(row["division"],
                                                                     row["division"]),
                         "population": row["population"],
                         "covered": list(zip([row.get(f"covered_{x}") for x in labels], shares,
                                             strict=True)),
                         "unreachable": row.get("unreachable"),
                         "share": shares[thresholds.index(chosen)]})
    total_row = next((r for r in result["coverage"]
                      if r["group"] == tier and r["division"] == "total"), None)

    choropleth = kit.outline_map(session, prefix, run.division_code, {
        row["code"]: (_band(row["share"]),
                      f"{row['name']}: {kit.percent(row['share'])} ≤ {chosen_label} min")
        for row in coverage})
    chart = {"townships": [r["name"] for r in coverage],
             "series": [{"name": t("plan.within", minutes=x),
                         "values": [None if r["covered"][i][1] is None
                                    else round(r["covered"][i][1] * 100, 1) for r in coverage]}
                        for i, x in enumerate(labels)],
             "yaxis": t("plan.share_covered"), "height": 440}

    minutes_key, nearest_key = f"minutes_{tier}", f"nearest_{tier}"
    villages = result["villages"]
    unreached = [v for v in villages
                 if v.get(minutes_key) is None or v[minutes_key] > chosen]
    unreached.sort(key=lambda v: (v.get(minutes_key) is not None,
                                  -(v.get(minutes_key) or 0)))
    township_names = kit.division_names(session, {v["township"] for v in villages})
    unreached_rows = [{"code": v["code"], "name": v["name"],
                       "township": township_names.get(v["township"], v["township"]),
                       "population": v["population"], "minutes": v.get(minutes_key),
                       "nearest": facility_names.get(v.get(nearest_key) or "",
                                                     v.get(nearest_key) or "—")}
                      for v in unreached]
    missed = {v["code"] for v in unreached}
    village_map = kit.outline_map(session, prefix, run.division_code)
    tier_types = set(tiers()["tiers"][tier]["types"])
    for v in villages:
        minutes = v.get(minutes_key)
        text = "—" if minutes is None else f"{minutes:.0f} min"
        village_map.point(v["lon"], v["lat"],
                          css="village-out" if v["code"] in missed else "village-in",
                          label=f"{v['name']} · {text}", href=f"/divisions/{v['code']}",
                          radius=4.5 if v["code"] in missed else 2.5)
    for code, ftype, point in zip(facilities["code"], facilities["type"],
                                  facilities.geometry, strict=True):
        if ftype in tier_types:
            village_map.point(point.x, point.y, css="site-existing",
                              label=f"{facility_names[code]} · {t.label('ftype', ftype)}",
                              href=f"/facilities/{quote(code)}", radius=5.5)

    surface = result.get("surface")
    surface_data = None
    if surface:
        outlines = [d.boundary for d in kit.townships(session, prefix) if d.boundary]
        if not outlines:
            county = session.scalar(select(Division).where(Division.code == run.division_code))
            outlines = [county.boundary] if county is not None and county.boundary else []
        types = set(tiers()["tiers"].get(surface["tier"], {}).get("types", ()))
        sites = facilities[facilities["type"].isin(types)]
        surface_data = {
            "lon": surface["lon"], "lat": surface["lat"], "minutes": surface["minutes"],
            "thresholds": thresholds, "lines": _lines(outlines),
            "sites": {"lon": [p.x for p in sites.geometry], "lat": [p.y for p in sites.geometry],
                      "text": list(sites["name"])},
            "labels": {"minutes": t("plan.minutes"), "sites": t.label("tier", surface["tier"]),
                       "outline": t("plan.township_outlines")},
        }
    e2sfca = summary.get("e2sfca_physicians_per_1000")
    return {
        "thresholds": labels, "population_total": total, "tier": tier,
        "tier_names": tier_names, "threshold": chosen_label,
        "tier_rows": rows_of("tiers"), "centre_rows": rows_of("centres"),
        "coverage": coverage, "coverage_total": total_row,
        "choropleth": choropleth.render(width=620, max_height=520),
        "chart_json": kit.script_json(chart),
        "surface_json": kit.script_json(surface_data) if surface_data else None,
        "surface_tier": surface["tier"] if surface else None,
        "unreached": unreached_rows,
        "unreached_population": sum(v["population"] for v in unreached),
        "village_map": village_map.render(width=620, max_height=520),
        "e2sfca": e2sfca, "share_legend": _share_legend(),
    }


def _share_legend() -> list[tuple[str, str]]:
    """Legend of the township coverage map, best band first."""
    out = []
    for index, low in enumerate(SHARE_BANDS):
        high = SHARE_BANDS[index + 1] if index + 1 < len(SHARE_BANDS) else None
        text = (f"≥ {low * 100:g} %" if high is None else f"< {high * 100:g} %" if index == 0
                else f"{low * 100:g}–{high * 100:g} %")
        out.append((f"share-{index}", text))
    return out[::-1]


# --------------------------------------------------------------------------- optimisation


@router.get("/planning/optimise", response_class=HTMLResponse)
def optimise_form(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """The optimisation form and the previous optimisation runs."""
    return _optimise_form(request, session, viewer, form={})


def _optimise_form(request: Request, session: Session, viewer: Viewer, *,
                   form: dict[str, Any], problems: list[Problem] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    return kit.render(request, "planning_optimise_form.html", viewer, status_code=status_code,
                      form=form, problems=problems, runs=_runs(session, viewer, "optimise"),
                      models=MODELS, candidate_sets=CANDIDATE_SETS,
                      **kit.form_defaults(session, viewer))


def _whole(text: str, field: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise InputError.single(f"{field} must be a whole number {low}..{high}",
                                field=field) from exc
    if not low <= value <= high:
        raise InputError.single(f"{field} must be a whole number {low}..{high}", field=field)
    return value


def _minutes(text: str, field: str) -> int | float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError.single(f"{field} must be minutes in (0, 600]", field=field) from exc
    if not 0 < value <= 600:
        raise InputError.single(f"{field} must be minutes in (0, 600]", field=field)
    return int(value) if value.is_integer() else value


@router.post("/planning/optimise", response_class=HTMLResponse)
async def start_optimise(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    division_code: Annotated[str, Form()],
    road_network: Annotated[str, Form()] = "",
    model: Annotated[str, Form()] = "mclp",
    tier: Annotated[str, Form()] = "county",
    threshold: Annotated[str, Form()] = "30",
    new_sites: Annotated[str, Form()] = "2",
    candidates: Annotated[str, Form()] = "township_centres",
    time_limit: Annotated[str, Form()] = "30",
    budget: Annotated[str, Form()] = "",
    lower_threshold: Annotated[str, Form()] = "15",
    new_clinics: Annotated[str, Form()] = "",
    sites_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Start an optimisation from the form and go to its page."""
    form = {"division_code": division_code, "road_network": road_network, "model": model,
            "tier": tier, "threshold": threshold, "new_sites": new_sites,
            "candidates": candidates, "time_limit": time_limit, "budget": budget,
            "lower_threshold": lower_threshold, "new_clinics": new_clinics}
    problems: list[Problem] = []
    params: dict[str, Any] = {"road_network": road_network, "model": model, "tier": tier}
    parsers: list[tuple[str, Callable[[], Any]]] = [
        ("threshold", lambda: _minutes(threshold, "threshold")),
        ("new_sites", lambda: _whole(new_sites, "new_sites", 0, 100)),
        ("time_limit", lambda: _whole(time_limit, "time_limit", 1, 600))]
    if model == "two-tier":
        parsers += [("lower_threshold", lambda: _minutes(lower_threshold, "lower_threshold")),
                    ("new_clinics", lambda: _whole(new_clinics, "new_clinics", 0, 1000)
                     if new_clinics.strip() else None)]
    for field, parse in parsers:
        try:
            params[field] = parse()
        except InputError as exc:
            problems += exc.problems
    if budget.strip():
        try:
            params["budget"] = float(budget)
        except ValueError:
            problems.append(Problem(reason="budget must be a number >= 0", field="budget",
                                    code="not_a_number"))
    if candidates not in CANDIDATE_SETS:
        problems.append(Problem(reason=f"unknown candidate set {candidates!r}",
                                field="candidates"))
    elif candidates in {"villages", "sites"}:
        params["candidate_set"] = candidates
    else:
        params["candidate_types"] = list(CANDIDATE_SETS[candidates])
    if candidates == "sites":
        data = await sites_file.read() if sites_file is not None else b""
        try:
            params["sites"] = _read_sites(data, sites_file.filename if sites_file else "")
        except InputError as exc:
            problems += exc.problems
    try:
        if problems:
            raise InputError(problems)
        run = _start(request, session, viewer, kind="optimise", division_code=division_code,
                     params=params)
    except InputError as exc:
        session.rollback()
        shown = [Problem(p.reason, field=f"sites_file: {p.field}", row=p.row + 1, code=p.code)
                 if candidates == "sites" and p.row is not None and p.field in SITE_COLUMNS
                 else p for p in exc.problems]
        return _optimise_form(request, session, viewer, form=form, problems=shown,
                              status_code=422)
    return kit.redirect(f"/planning/runs/{run.id}")


def _read_sites(data: bytes, filename: str) -> list[dict[str, Any]]:
    """Rows ``{code, name, lon, lat}`` of an uploaded CSV (UTF-8 or GB18030) or GeoJSON.

    Values stay text here; :func:`tiercare.analyses.service.validate_sites` checks them.
    """
    if not data:
        raise InputError.single("choose a CSV or GeoJSON file of candidate sites",
                                field="sites_file", code="missing")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    if filename.lower().endswith((".geojson", ".json")):
        try:
            features = json.loads(text)["features"]
            return [{"code": f["properties"].get("code") or f["properties"].get("id"),
                     "name": f["properties"].get("name"),
                     "lon": f["geometry"]["coordinates"][0],
                     "lat": f["geometry"]["coordinates"][1],
                     **({"cost": f["properties"]["cost"]} if "cost" in f["properties"]
                        else {})} for f in features]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise InputError.single("not a GeoJSON FeatureCollection of points with a code "
                                    "property", field="sites_file") from exc
    reader = csv.DictReader(io.StringIO(text))
    headers = {h.strip().lower(): h for h in reader.fieldnames or []}
    found = {key: next((headers[a] for a in aliases if a in headers), None)
             for key, aliases in SITE_COLUMNS.items()}
    missing = [key for key in SITE_REQUIRED if found[key] is None]
    if missing:
        raise InputError.single(f"the file needs the columns code, lon, lat (missing: "
                                f"{', '.join(missing)})", field="sites_file",
                                code="missing_column")
    return [{key: (row.get(column) or "").strip() for key, column in found.items()
             if column is not None} for row in reader]


def _objective_text(model: str, value: float | None, total: float,
                    t: kit.PlanningTranslator) -> str:
    """The objective (or bound) in a planner's units."""
    if value is None:
        return "—"
    if model in {"mclp", "two-tier"}:
        return t("plan.obj.covered", people=f"{value:,.0f}", share=kit.percent(value / total)
                 if total else "—")
    if model == "lscp":
        return t("plan.obj.sites", n=f"{value:,.0f}")
    if model == "pmedian":
        return t("plan.obj.mean", minutes=f"{value / total / 60:,.1f}" if total else "—")
    return t("plan.obj.worst", minutes=f"{value / 60:,.1f}")


def _optimise_context(session: Session, viewer: Viewer, run: AnalysisRun) -> dict[str, Any]:
    """The optimisation result: figures, the map of existing and chosen sites, save form."""
    t = kit.PlanningTranslator(viewer.lang)
    data = run.result or {}
    result = data["result"]
    model = result["model"]
    tier = data.get("tier", run.params.get("tier", "county"))
    total = float(data.get("population_total") or 0)
    prefix = prefix_of(run.division_code)
    facilities = facility_points(session, viewer.actor, root_prefix=prefix)
    existing = set(data.get("existing", []))
    chosen = {site["code"] for site in data.get("new_sites", [])}
    candidate_set = run.params.get("candidate_set", "facilities")
    candidate_types = set(run.params.get("candidate_types",
                                         CANDIDATE_SETS["township_centres"])) \
        if candidate_set == "facilities" else set()
    builder = kit.outline_map(session, prefix, run.division_code)
    villages = session.execute(
        select(Division.code, Division.name, Division.lon, Division.lat, Division.population)
        .where(Division.code.like(prefix + "%"), Division.level == "village",
               Division.lon.is_not(None)).order_by(Division.code)).all()
    village_css = "site-candidate" if candidate_set == "villages" else "village-in"
    for village in villages:
        builder.point(village.lon, village.lat, css=village_css,
                      label=f"{village.name} · {village.population or 0:,}",
                      radius=3.0 if candidate_set == "villages" else 2.2)
    for site in run.params.get("sites", []) if candidate_set == "sites" else []:
        if site["code"] not in chosen:
            builder.point(site["lon"], site["lat"], css="site-candidate",
                          label=f"{site['name']} ({site['code']})", radius=4.0)
    # the two-tier model also shows the village-level facilities it keeps open
    lower_types = set(tiers()["tiers"][service.LOWER_TIER]["types"]) \
        if model == "two-tier" else set()
    for css, radius in (("clinic-existing", 3.5), ("site-candidate", 4.0),
                        ("site-existing", 6.5)):
        for code, name, ftype, point in zip(facilities["code"], facilities["name"],
                                            facilities["type"], facilities.geometry,
                                            strict=True):
            kind = ("site-existing" if code in existing and code not in chosen
                    else "site-candidate" if ftype in candidate_types and code not in chosen
                    else "clinic-existing" if ftype in lower_types else None)
            if kind == css:
                builder.point(point.x, point.y, css=css,
                              label=f"{name} · {t.label('ftype', ftype)}",
                              href=f"/facilities/{quote(code)}", radius=radius)
    types_of = dict(zip(facilities["code"], facilities["type"], strict=True))
    located = {c: (p.x, p.y) for c, p in zip(facilities["code"], facilities.geometry,
                                              strict=True)}
    townships = [(d.name, prep(shape(d.boundary))) for d in kit.townships(session, prefix)
                 if d.boundary]

    def township_of(lon: float | None, lat: float | None) -> str:
        return next((name for name, area in townships
                     if lon is not None and area.covers(Point(lon, lat))), "")

    sites = []
    for site in data.get("new_sites", []):
        lon, lat = (site["lon"], site["lat"]) if site.get("lon") is not None \
            else located.get(site["code"], (None, None))
        sites.append({**site, "type": types_of.get(site["code"], ""),
                      "township": township_of(lon, lat)})
        builder.point(lon, lat, css="site-new", radius=8.5,
                      label=f"{site['name']} · {t('plan.legend.new')}",
                      href=None if site.get("new") else f"/facilities/{quote(site['code'])}")
    clinics = []
    for site in data.get("new_clinics", []):
        clinics.append({**site, "type": service.NEW_CLINIC_TYPE, "clinic": True,
                        "township": township_of(site["lon"], site["lat"])})
        builder.point(site["lon"], site["lat"], css="site-new-clinic", radius=6.5,
                      label=f"{site['name']} · {t('plan.legend.new_clinic')}")
    if model == "lscp":
        sites_text = t("plan.sites_lscp", total=len(result.get("selected", [])),
                       kept=len(existing & set(result.get("selected", []))))
    elif model == "two-tier":
        sites_text = t("plan.sites_two_tier", existing=len(existing), new=len(sites),
                       clinics=len(clinics))
    else:
        sites_text = t("plan.sites_text", existing=len(existing), new=len(sites))
    types = list(tiers()["tiers"][tier]["types"]) if tier in tiers()["tiers"] else []
    upgrade_default = TIER_DEFAULT_TYPE.get(tier, types[0] if types else "county_sub_centre")
    gap = result.get("gap")
    return {
        "model": model, "tier": tier, "result": result, "population_total": total,
        "objective_text": _objective_text(model, result.get("objective"), total, t),
        "bound_text": _objective_text(model, result.get("bound"), total, t),
        "gap_text": "—" if gap is None else f"{gap * 100:.2f} %",
        "existing_count": len(existing), "sites": sites, "clinics": clinics,
        "candidate_set": candidate_set, "sites_text": sites_text,
        "budget": data.get("budget"), "spent": data.get("spent"),
        "with_costs": any(site.get("cost") for site in sites),
        "map": builder.render(width=760, max_height=560),
        "upgrade_types": types, "upgrade_default": upgrade_default,
        "default_name": t("plan.default_scenario_name",
                          model=t("plan.model.two-tier") if model == "two-tier"
                          else model.upper(),
                          tier=t.label("tier", tier), n=len(sites), run=run.id),
    }


@router.post("/planning/runs/{run_id}/scenario", response_class=HTMLResponse)
def save_scenario(request: Request, session: SessionDep, viewer: ViewerDep, run_id: int,
                  name: Annotated[str, Form()] = "",
                  upgrade_to: Annotated[str, Form()] = "county_sub_centre") -> Response:
    """Save an optimisation's chosen sites as a scenario, evaluate it, open its page."""
    try:
        run = service.get_run(session, viewer.actor, run_id)
    except NotFoundError:
        return kit.render(request, "not_found.html", viewer, status_code=404, what=f"#{run_id}")
    info = service.run_dict(run)
    info["division_name"] = kit.division_names(session, {run.division_code}).get(
        run.division_code, run.division_code)
    name = name.strip()
    error: str | None = None
    problems: list[Problem] | None = None
    if run.kind != "optimise" or run.status != "done" or not run.result:
        error = kit.PlanningTranslator(viewer.lang)("plan.not_finished")
    elif not kit.can_plan(viewer):
        error = kit.PlanningTranslator(viewer.lang)("plan.no_permission")
    elif not name or len(name) > 128:
        problems = [Problem(reason="a name of 1 to 128 characters is needed", field="name")]
    else:
        try:
            scenario = service.save_as_scenario(session, viewer.actor, run, name=name,
                                                upgrade_to=upgrade_to)
            scenarios.evaluate(session, viewer.actor, scenario)
            session.commit()
            return kit.redirect(f"/planning/scenarios/{quote(name, safe='')}", saved=1)
        except ConflictError as exc:
            session.rollback()
            error = kit.PlanningTranslator(viewer.lang)("plan.name_taken", name=name) \
                if exc.reason == "duplicate_name" else str(exc)
        except InputError as exc:
            session.rollback()
            problems = exc.problems
    session.rollback()
    if run.status != "done" or not run.result:
        return kit.render(request, "planning_run_progress.html", viewer, run=info,
                          status_code=409)
    context = _optimise_context(session, viewer, run)
    context["default_name"] = name or context["default_name"]
    return kit.render(request, "planning_optimise_result.html", viewer, run=info,
                      status_code=409 if error else 422, save_error=error,
                      save_problems=problems, **context)


router.include_router(scenario_router)
