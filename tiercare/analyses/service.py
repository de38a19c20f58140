"""Run access analyses and optimisations on the registry, recording progress and results.

A run is created (``queued``), then executed — in a background thread by the web app, or inline
by tests and the CLI — updating ``progress`` and ``message`` in short transactions of its own, so
a page can poll ``GET /api/v1/analyses/{id}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, shape
from shapely.prepared import prep
from sqlalchemy import select
from sqlalchemy.orm import Session, defer, sessionmaker

from tiercare.analyses.models import AnalysisRun
from tiercare.auth.service import Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.paging import fetch_page
from tiercare.planning.locate import LocateInfeasibleError, TwoTierCover
from tiercare.planning.network import Network, nearest_facility, snap
from tiercare.registry.accessibility import (
    DEFAULT_THRESHOLDS,
    analyse,
    demand_points,
    facility_points,
    groups,
    tiers,
)
from tiercare.registry.codes import normalise_code, prefix_of
from tiercare.registry.models import Division, Facility
from tiercare.scenarios.models import RoadNetwork, Scenario
from tiercare.scenarios.service import network_from_layer

KINDS = ("access", "optimise")
#: Models of an optimisation run; ``two-tier`` chooses upgrades and new village clinics together.
OPTIMISE_MODELS = ("lscp", "mclp", "pmedian", "pcenter", "two-tier")
#: The lower tier of the two-tier model (kept within ``lower_threshold`` of every village) and
#: the facility type its new sites get in a scenario.
LOWER_TIER = "village"
NEW_CLINIC_TYPE = "village_clinic"
#: Where an optimisation looks for sites: registry facilities of ``candidate_types`` (upgrades),
#: every village of the division, or the ``sites`` given with the run (both new facilities).
CANDIDATE_SETS = ("facilities", "villages", "sites")
#: Most sites a run may bring along.
MAX_SITES = 5000
#: Code prefix of a village proposed as a new site (the code of the facility a scenario adds).
NEW_SITE_PREFIX = "NEW"
#: Grid points per side of the travel-time surface.
SURFACE_SIZE = 60

Progress = Callable[[float, str], None]


def _division(session: Session, actor: Actor, code: str) -> Division:
    try:
        code12 = normalise_code(code)
    except ValueError as exc:
        raise InputError.single(str(exc), field="division_code") from exc
    division = session.scalar(select(Division).where(Division.code == code12))
    if division is None or not actor.covers_division(code12):
        raise InputError.single(f"unknown division {code12}", field="division_code")
    return division


def create_run(session: Session, actor: Actor, *, kind: str, division_code: str,
               params: dict[str, Any]) -> AnalysisRun:
    """Validate parameters and queue a run."""
    if kind not in KINDS:
        raise InputError.single(f"unknown analysis '{kind}' (one of {', '.join(KINDS)})",
                                field="kind")
    division = _division(session, actor, division_code)
    road_name = params.get("road_network")
    if session.scalar(select(RoadNetwork).where(RoadNetwork.name == road_name)) is None:
        raise InputError.single(f"unknown road network {road_name!r}", field="road_network")
    thresholds = params.get("thresholds", list(DEFAULT_THRESHOLDS))
    if not isinstance(thresholds, list) or not thresholds or not all(
            isinstance(t, int | float) and 0 < t <= 600 for t in thresholds):
        raise InputError.single("thresholds must be a list of minutes in (0, 600]",
                                field="thresholds")
    if kind == "optimise":
        if params.get("model", "mclp") not in OPTIMISE_MODELS:
            raise InputError.single(f"model must be one of {', '.join(OPTIMISE_MODELS)}",
                                    field="model")
        if params.get("tier", "county") not in tiers()["tiers"]:
            raise InputError.single("unknown tier", field="tier")
        new_sites = params.get("new_sites", 2)
        if not isinstance(new_sites, int) or not 0 <= new_sites <= 100:
            raise InputError.single("new_sites must be a whole number 0..100", field="new_sites")
        candidate_set = params.get("candidate_set", "facilities")
        if candidate_set not in CANDIDATE_SETS:
            raise InputError.single(f"candidate_set must be one of {', '.join(CANDIDATE_SETS)}",
                                    field="candidate_set")
        if candidate_set == "sites":
            params = {**params, "sites": validate_sites(session, division, params.get("sites"))}
        if params.get("budget") is not None:
            _check_budget(params)
        if params.get("model") == "two-tier":
            _check_two_tier(params)
    run = AnalysisRun(kind=kind, division_code=division.code, params=params,
                      created_by=actor.username)
    session.add(run)
    session.flush()
    audit(session, actor, "create", "analysis_run", str(run.id), after={"kind": kind,
                                                                         "params": params})
    return run


def _check_budget(params: dict[str, Any]) -> None:
    """A budget (MCLP only) needs uploaded sites that all carry a cost."""
    budget = params["budget"]
    problems: list[Problem] = []
    if isinstance(budget, bool) or not isinstance(budget, int | float) or \
            not math.isfinite(budget) or budget < 0:
        problems.append(Problem("budget must be a number >= 0", field="budget"))
    if params.get("model", "mclp") != "mclp":
        problems.append(Problem("a budget applies to the MCLP model", field="budget"))
    if params.get("candidate_set") != "sites":
        problems.append(Problem("a budget needs uploaded sites with a cost", field="budget"))
    else:
        problems += [Problem("a budget needs a cost for every site", field="cost", row=row,
                             code="missing")
                     for row, site in enumerate(params["sites"], start=1) if "cost" not in site]
    if problems:
        raise InputError(problems)


def _check_two_tier(params: dict[str, Any]) -> None:
    """The two-tier model upgrades registry facilities of a tier above the village tier."""
    problems: list[Problem] = []
    if params.get("tier", "county") == LOWER_TIER:
        problems.append(Problem("the two-tier model needs a tier above the village tier",
                                field="tier"))
    if params.get("candidate_set", "facilities") != "facilities":
        problems.append(Problem("the two-tier model upgrades registry facilities: choose "
                                "facility candidates", field="candidate_set"))
    lower = params.get("lower_threshold", 15)
    if isinstance(lower, bool) or not isinstance(lower, int | float) or not 0 < lower <= 600:
        problems.append(Problem("lower_threshold must be minutes in (0, 600]",
                                field="lower_threshold"))
    clinics = params.get("new_clinics")
    if clinics is not None and (isinstance(clinics, bool) or not isinstance(clinics, int)
                                or not 0 <= clinics <= 1000):
        problems.append(Problem("new_clinics must be a whole number 0..1000 or absent",
                                field="new_clinics"))
    if problems:
        raise InputError(problems)


def validate_sites(session: Session, division: Division, sites: Any) -> list[dict[str, Any]]:
    """Check candidate sites ``[{code, name?, lon, lat, cost?}, …]`` and return them cleaned.

    Every problem is reported with its site (``row`` = position, 1-based) and field: a missing
    or repeated code, a code that an existing facility already has, coordinates that are not
    numbers in range or fall outside the division's boundary (e.g. swapped lon/lat), a cost
    (optional, for a budget) that is not a number >= 0.
    """
    if not isinstance(sites, list) or not sites:
        raise InputError.single("give at least one candidate site", field="sites")
    if len(sites) > MAX_SITES:
        raise InputError.single(f"at most {MAX_SITES} candidate sites", field="sites")
    taken = set(session.scalars(select(Facility.code)))
    outline = prep(shape(division.boundary)) if division.boundary else None
    problems: list[Problem] = []
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row, site in enumerate(sites, start=1):
        if not isinstance(site, dict):
            problems.append(Problem("a site is an object with code, name, lon, lat",
                                    field="sites", row=row))
            continue
        code = str(site.get("code") or "").strip()
        if not code:
            problems.append(Problem("missing code", field="code", row=row, code="missing"))
        elif code in seen:
            problems.append(Problem(f"code {code!r} appears twice", field="code", row=row,
                                    code="duplicate"))
        elif code in taken:
            problems.append(Problem(f"code {code!r} belongs to an existing facility",
                                    field="code", row=row, code="duplicate"))
        seen.add(code)
        point: dict[str, float] = {}
        for axis, low, high in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
            try:
                value = float(str(site.get(axis, "")).strip())
            except ValueError:
                problems.append(Problem(f"{axis} must be a number in {low:g}..{high:g}",
                                        field=axis, row=row, code="not_a_number"))
                continue
            if not low <= value <= high:
                problems.append(Problem(f"{axis} must be a number in {low:g}..{high:g}",
                                        field=axis, row=row, code="out_of_range"))
            else:
                point[axis] = value
        if len(point) == 2 and outline is not None and \
                not outline.covers(Point(point["lon"], point["lat"])):
            problems.append(Problem(f"({point['lon']}, {point['lat']}) lies outside "
                                    f"{division.name}", field="lon", row=row,
                                    code="outside_division"))
        entry: dict[str, Any] = {"code": code, "name": str(site.get("name") or code).strip(),
                                 **point}
        if str(site.get("cost", "")).strip() != "":
            try:
                entry["cost"] = float(str(site["cost"]).strip())
            except ValueError:
                entry["cost"] = math.nan
            if not (math.isfinite(entry["cost"]) and entry["cost"] >= 0):
                problems.append(Problem("cost must be a number >= 0", field="cost", row=row,
                                        code="not_a_number"))
        cleaned.append(entry)
    if problems:
        raise InputError(problems)
    return cleaned


def list_runs(session: Session, actor: Actor, *, kind: str | None = None, offset: int = 0,
              limit: int = 50) -> tuple[int, list[AnalysisRun]]:
    """Runs of the actor's scope, newest first, optionally of one kind (results not loaded).

    The scope is a SQL condition, so ``total`` counts only runs the actor may see.
    """
    query = (select(AnalysisRun).options(defer(AnalysisRun.result))
             .where(actor.division_clause(AnalysisRun.division_code))
             .order_by(AnalysisRun.id.desc()))
    if kind is not None:
        if kind not in KINDS:
            raise InputError.single(f"kind must be one of {', '.join(KINDS)}", field="kind")
        query = query.where(AnalysisRun.kind == kind)
    return fetch_page(session, query, offset=offset, limit=limit)


def get_run(session: Session, actor: Actor, run_id: int) -> AnalysisRun:
    """A run in the actor's scope."""
    run = session.get(AnalysisRun, run_id)
    if run is None or not actor.covers_division(run.division_code):
        raise NotFoundError(f"analysis {run_id}")
    return run


def execute(sessions: sessionmaker[Session], actor: Actor, run_id: int) -> None:
    """Execute a queued run to the end, recording progress, the result or the failure."""
    def progress(fraction: float, message: str) -> None:
        with sessions() as s:
            row = s.get(AnalysisRun, run_id)
            assert row is not None
            row.status, row.progress, row.message = "running", round(fraction, 3), message
            s.commit()

    with sessions() as session:
        run = session.get(AnalysisRun, run_id)
        assert run is not None
        kind, division_code, params = run.kind, run.division_code, dict(run.params)
    try:
        with sessions() as session:
            runner = _access if kind == "access" else _optimise
            result = runner(session, actor, division_code, params, progress)
        status, message = "done", "finished"
    except InputError as exc:
        result, status, message = None, "failed", exc.summary()
    except Exception as exc:  # noqa: BLE001 - the failure is reported on the run
        result, status, message = None, "failed", f"{type(exc).__name__}: {exc}"
    with sessions() as session:
        row = session.get(AnalysisRun, run_id)
        assert row is not None
        row.status, row.message, row.result = status, message, result
        row.progress = 1.0 if status == "done" else row.progress
        row.finished_at = utcnow()
        session.commit()


def _network(session: Session, params: dict[str, Any]):  # type: ignore[no-untyped-def]
    roads = session.scalar(select(RoadNetwork).where(RoadNetwork.name == params["road_network"]))
    if roads is None:
        raise InputError.single("road network no longer exists", field="road_network")
    return network_from_layer(roads.geojson, class_field=roads.class_field,
                              speed_field=roads.speed_field)


def _clean(value: Any) -> Any:
    """JSON-safe copy (NaN and infinities become null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _access(session: Session, actor: Actor, division_code: str, params: dict[str, Any],
            progress: Progress) -> dict[str, Any]:
    progress(0.05, "building the road network")
    network = _network(session, params)
    prefix = prefix_of(division_code)
    thresholds = tuple(float(t) for t in params.get("thresholds", DEFAULT_THRESHOLDS))
    progress(0.25, "travel time to every tier and centre")
    demand = demand_points(session, actor, root_prefix=prefix)
    facilities = facility_points(session, actor, root_prefix=prefix)
    report = analyse(network, demand, facilities, thresholds=thresholds)
    progress(0.7, "travel-time surface")
    surface_tier = params.get("surface_tier", "county")
    surface = _surface(session, network, facilities, division_code, surface_tier)
    villages = report["villages"].copy()
    villages["lon"] = [p.x for p in demand.geometry]
    villages["lat"] = [p.y for p in demand.geometry]
    worst = max(thresholds)
    unreached = {
        name: villages.loc[~(villages[f"minutes_{name}"] <= worst), ["code", "name", "population",
                                                                    f"minutes_{name}"]]
        .to_dict("records")
        for name in tiers()["tiers"]
    }
    progress(0.95, "saving")
    coverage = report["coverage"].reset_index().rename(columns={"index": "division"})
    return _clean({
        "summary": report["summary"],
        "villages": villages.to_dict("records"),
        "coverage": coverage.to_dict("records"),
        "unreached": unreached,
        "surface": surface,
    })


def _surface(session: Session, network, facilities, division_code: str,  # type: ignore[no-untyped-def]
             tier: str) -> dict[str, Any] | None:
    """Travel minutes to the nearest facility of ``tier`` on a grid over the division."""
    division = session.scalar(select(Division).where(Division.code == division_code))
    if division is None or not division.boundary:
        return None
    outline = shape(division.boundary)
    supply = next((g for kind, name, g in groups(facilities) if name == tier), None)
    if supply is None or supply.empty:
        return None
    west, south, east, north = outline.bounds
    lons = np.linspace(west, east, SURFACE_SIZE)
    lats = np.linspace(south, north, SURFACE_SIZE)
    grid = np.array([(x, y) for y in lats for x in lons])
    inside = np.array([outline.contains(Point(x, y)) for x, y in grid])
    minutes = np.full(len(grid), np.nan)
    if inside.any():
        points = gpd.GeoSeries(gpd.points_from_xy(grid[inside, 0], grid[inside, 1]),
                               crs="EPSG:4326")
        result = nearest_facility(network, snap(network, supply), snap(network, points))
        minutes[inside] = np.where(np.isfinite(result.seconds), result.seconds / 60, np.nan)
    return {"tier": tier, "lon": lons.round(5).tolist(), "lat": lats.round(5).tolist(),
            "minutes": np.round(minutes.reshape(SURFACE_SIZE, SURFACE_SIZE), 1).tolist()}


def _optimise(session: Session, actor: Actor, division_code: str, params: dict[str, Any],
              progress: Progress) -> dict[str, Any]:
    from tiercare.scenarios.optimise import optimise_upgrades

    progress(0.1, "building the road network")
    network = _network(session, params)
    progress(0.3, "travel times and solving")
    if params.get("model") == "two-tier":
        return _clean(_optimise_two_tier(session, actor, network, division_code, params))
    if params.get("candidate_set", "facilities") != "facilities":
        return _clean(_optimise_new_sites(session, actor, network, division_code, params))
    result = optimise_upgrades(
        session, actor, network, division_code=division_code,
        model=params.get("model", "mclp"), tier=params.get("tier", "county"),
        candidate_types=tuple(params.get("candidate_types",
                                         ("township_health_centre_central",
                                          "township_health_centre"))),
        threshold_min=float(params.get("threshold", 30)), new_sites=params.get("new_sites", 2),
        time_limit=float(params.get("time_limit", 30)))
    facilities = facility_points(session, actor, root_prefix=prefix_of(division_code))
    located = {code: (p.x, p.y) for code, p in zip(facilities["code"], facilities.geometry,
                                                   strict=True)}
    for site in result["new_sites"]:
        site["lon"], site["lat"] = located.get(site["code"], (None, None))
    return _clean(json.loads(json.dumps(result, default=str)))


def _village_sites(demand: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Every village as a possible new site: code ``NEW`` + village code, at the village."""
    return gpd.GeoDataFrame({"code": NEW_SITE_PREFIX + demand["code"], "name": demand["name"]},
                            geometry=list(demand.geometry), crs="EPSG:4326")


def _optimise_new_sites(session: Session, actor: Actor, network: Network, division_code: str,
                        params: dict[str, Any]) -> dict[str, Any]:
    """Choose new sites among the villages or the given sites (existing tier facilities fixed).

    The same models and conventions as :func:`tiercare.scenarios.optimise.optimise_upgrades`:
    ``p`` = existing + ``new_sites`` (LSCP ignores it), weights are village populations,
    except that LSCP too keeps the existing facilities open (it finds the fewest additions),
    thresholds in minutes, travel times cut off at twice max(threshold, 60) minutes. With a
    ``budget`` (MCLP, given sites with a ``cost``) the new sites' costs must fit the budget
    instead of a count ``p``. Chosen sites carry ``"new": True`` with their coordinates; a
    scenario adds them as facilities.
    """
    from tiercare.scenarios.optimise import MODELS

    model, tier = params.get("model", "mclp"), params.get("tier", "county")
    prefix = prefix_of(division_code)
    demand = demand_points(session, actor, root_prefix=prefix)
    facilities = facility_points(session, actor, root_prefix=prefix)
    existing = facilities[facilities["type"].isin(tiers()["tiers"][tier]["types"])]
    if params.get("candidate_set") == "villages":
        candidates = _village_sites(demand)
    else:
        sites = params["sites"]
        candidates = gpd.GeoDataFrame(
            {"code": [s["code"] for s in sites], "name": [s["name"] for s in sites],
             "cost": [s.get("cost", 0.0) for s in sites]},
            geometry=gpd.points_from_xy([s["lon"] for s in sites], [s["lat"] for s in sites]),
            crs="EPSG:4326")
    budget = params.get("budget")
    pool = pd.concat([existing[["code", "name", "geometry"]].assign(cost=0.0), candidates],
                     ignore_index=True).fillna({"cost": 0.0})
    pool = gpd.GeoDataFrame(pool, geometry="geometry", crs="EPSG:4326").set_index("code")
    threshold_min = float(params.get("threshold", 30))
    p = None if model == "lscp" or budget is not None \
        else len(existing) + int(params.get("new_sites", 2))
    built = MODELS[model].from_engine(
        network, demand.set_index("code"), pool, cutoff_s=max(threshold_min, 60.0) * 2 * 60,
        weight_field="population",
        threshold=None if model in {"pmedian", "pcenter"} else threshold_min * 60, p=p,
        fixed=list(existing["code"]), cost_field="cost" if budget is not None else None,
        budget=float(budget) if budget is not None else None)
    result = built.solve(time_limit=float(params.get("time_limit", 30)), gap=0.0)
    fixed = set(existing["code"])
    new_sites = [{"code": code, "name": pool.at[code, "name"], "lon": pool.at[code, "geometry"].x,
                  "lat": pool.at[code, "geometry"].y, "cost": float(pool.at[code, "cost"]),
                  "new": True}
                 for code in result.selected if code not in fixed]
    return json.loads(json.dumps({
        "result": result.to_dict(), "tier": tier, "existing": sorted(fixed),
        "new_sites": new_sites, "population_total": float(demand["population"].sum()),
        "budget": budget, "spent": sum(site["cost"] for site in new_sites),
    }, default=str))


def _optimise_two_tier(session: Session, actor: Actor, network: Network, division_code: str,
                       params: dict[str, Any]) -> dict[str, Any]:
    """Upgrades and new village clinics chosen together (:class:`TwoTierCover`).

    Upper tier as in :func:`tiercare.scenarios.optimise.optimise_upgrades`: the facilities of
    ``tier`` stay open and at most ``new_sites`` facilities of ``candidate_types`` are upgraded
    so that the most people are within ``threshold`` minutes. Lower tier: the village tier's
    facilities stay open and every village is a possible new clinic (code ``NEW`` + village
    code; at most ``new_clinics`` when given), so that every village is within
    ``lower_threshold`` minutes of one; the fewest new clinics are chosen. Weights are the
    villages' populations.
    """
    tier = params.get("tier", "county")
    prefix = prefix_of(division_code)
    demand = demand_points(session, actor, root_prefix=prefix)
    facilities = facility_points(session, actor, root_prefix=prefix)
    spec = tiers()["tiers"]
    existing = facilities[facilities["type"].isin(spec[tier]["types"])]
    candidates = facilities[facilities["type"].isin(params.get("candidate_types", ()))
                            & ~facilities["code"].isin(existing["code"])]
    if candidates.empty:
        raise InputError.single("no candidate facility of the chosen types in scope",
                                field="candidate_types")
    clinics = facilities[facilities["type"].isin(spec[LOWER_TIER]["types"])]
    villages = _village_sites(demand)
    upper = gpd.GeoDataFrame(pd.concat([existing, candidates], ignore_index=True),
                             geometry="geometry", crs="EPSG:4326")
    lower = gpd.GeoDataFrame(pd.concat([clinics[["code", "name", "geometry"]], villages],
                                       ignore_index=True), geometry="geometry", crs="EPSG:4326")
    t1 = float(params.get("threshold", 30)) * 60
    t2 = float(params.get("lower_threshold", 15)) * 60
    # travel times from each village to the sites of each tier, the villages snapped once;
    # every village needs a clinic within reach, whether its population is known or not
    model = TwoTierCover.from_engine(
        network, demand.set_index("code").assign(needs_clinic=True), upper.set_index("code"),
        lower.set_index("code"), upper_threshold=t1, lower_threshold=t2,
        upgrades=int(params.get("new_sites", 2)), weight_field="population",
        upper_fixed=list(existing["code"]), lower_fixed=list(clinics["code"]),
        new_lower=params.get("new_clinics"), required_field="needs_clinic")
    try:
        result = model.solve(time_limit=float(params.get("time_limit", 30)))
    except LocateInfeasibleError as exc:
        limit = params.get("new_clinics")
        raise InputError.single(
            f"with at most {limit} new village clinics, not every village is within "
            f"{t2 / 60:g} minutes of one" if limit is not None else str(exc),
            field="new_clinics" if limit is not None else "lower_threshold") from exc

    def chosen(frame: gpd.GeoDataFrame, codes: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = frame.set_index("code").loc[list(codes)]
        return [{"code": code, "name": row["name"], "lon": row.geometry.x,
                 "lat": row.geometry.y} for code, row in rows.iterrows()]

    return json.loads(json.dumps({
        "result": result.to_dict(), "tier": tier, "lower_tier": LOWER_TIER,
        "existing": sorted(existing["code"]), "new_sites": chosen(upper, result.upper_new),
        "clinics_existing": len(clinics),
        "new_clinics": [{**site, "new": True} for site in chosen(lower, result.lower_new)],
        "population_total": float(demand["population"].sum()),
    }, default=str))


def save_as_scenario(session: Session, actor: Actor, run: AnalysisRun, *, name: str,
                     upgrade_to: str = "county_sub_centre") -> Scenario:
    """Turn a finished optimisation into a saved scenario (one action).

    Chosen registry facilities become ``upgrade`` changes (as in
    :func:`tiercare.scenarios.optimise.scenario_from_optimisation`); chosen new sites (villages
    or given sites) become ``add`` changes: a facility of type ``upgrade_to`` at the site; the
    new clinics of a two-tier run become ``add`` changes of a village clinic.
    """
    from tiercare.scenarios.optimise import scenario_from_optimisation
    from tiercare.scenarios.service import create_scenario

    if run.kind != "optimise" or run.status != "done" or not run.result:
        raise ConflictError("not_a_finished_optimisation",
                            "only a finished optimisation can be saved")
    sites = run.result["new_sites"]
    clinics = run.result.get("new_clinics", [])
    if not clinics and not any(site.get("new") for site in sites):
        return scenario_from_optimisation(session, actor, run.result, name=name,
                                          division_code=run.division_code,
                                          road_network=run.params["road_network"],
                                          upgrade_to=upgrade_to)
    changes = [{"action": "add", "code": site["code"], "name": site["name"], "type": upgrade_to,
                "lon": site["lon"], "lat": site["lat"]} if site.get("new") else
               {"action": "upgrade", "code": site["code"], "type": upgrade_to}
               for site in sites]
    changes += [{"action": "add", "code": site["code"], "name": site["name"],
                 "type": NEW_CLINIC_TYPE, "lon": site["lon"], "lat": site["lat"]}
                for site in clinics]
    result = run.result["result"]
    parts = [(text + ", ".join(site["name"] for site in chosen)) for text, chosen in (
        ("upgrade ", [site for site in sites if not site.get("new")]),
        ("new sites at ", [site for site in sites if site.get("new")]),
        ("new village clinics at ", clinics)) if chosen]
    description = (f"{result['model'].upper()} optimum ({result['status']}, gap "
                   f"{(result['gap'] or 0) * 100:.2f} %): " + "; ".join(parts))
    return create_scenario(session, actor, name=name, division_code=run.division_code,
                           road_network=run.params["road_network"], changes=changes,
                           description=description,
                           source=f"optimisation:{result['model']}")


def run_dict(run: AnalysisRun, *, with_result: bool = False) -> dict[str, Any]:
    """A run as plain data."""
    out = {"id": run.id, "kind": run.kind, "division_code": run.division_code,
           "params": run.params, "status": run.status, "progress": run.progress,
           "message": run.message, "created_by": run.created_by,
           "created_at": run.created_at.isoformat(),
           "finished_at": run.finished_at.isoformat() if run.finished_at else None}
    if with_result:
        out["result"] = run.result
    return out
