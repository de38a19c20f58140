"""Scenario rules: validate changes, apply them to the network, evaluate against the baseline.

A change is a dict with an ``action``:

``add``        ``{"action": "add", "code", "name", "type", "lon", "lat", "physicians"?, "beds"?,
               "centres"?}`` — a new facility.
``upgrade``    ``{"action": "upgrade", "code", "type", "centres"?}`` — an existing facility
``downgrade``  takes another type (e.g. a township centre becomes a county sub-centre).
``close``      ``{"action": "close", "code"}``.
``capacity``   ``{"action": "capacity", "code", "physicians"?, "beds"?}``.
``road_speed`` ``{"action": "road_speed", "road_id", "speed_kmh"}`` — e.g. an upgraded road.
``add_road``   ``{"action": "add_road", "coordinates": [[lon, lat], …], "class", "speed_kmh"}``.
"""

from __future__ import annotations

import copy
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, defer

from tiercare.auth.service import Actor, audit
from tiercare.errors import ConflictError, ForbiddenError, InputError, NotFoundError, Problem
from tiercare.paging import fetch_page
from tiercare.planning.network import Network, build_network
from tiercare.planning.roads import read_roads
from tiercare.registry.accessibility import (
    DEFAULT_THRESHOLDS,
    analyse,
    demand_points,
    facility_points,
)
from tiercare.registry.codes import normalise_code, prefix_of
from tiercare.registry.reference import facility_type_rows
from tiercare.scenarios.models import RoadNetwork, Scenario, ScenarioEvaluation

ACTIONS = ("add", "upgrade", "downgrade", "close", "capacity", "road_speed", "add_road")
#: New roads are joined to the existing network within this distance (metres).
CONNECT_NEW_ROADS_M = 150.0


def store_road_network(session: Session, actor: Actor, *, name: str, division_code: str,
                       geojson: dict[str, Any], class_field: str = "class",
                       speed_field: str = "speed_kmh") -> RoadNetwork:
    """Save (or replace) a named road layer for analyses and scenarios.

    The layer is built into a network first, so a layer without the named class or speed
    attribute, without a CRS or without usable lines is refused here (422), not at first use.
    """
    if geojson.get("type") != "FeatureCollection" or not geojson.get("features"):
        raise InputError.single("roads must be a non-empty GeoJSON FeatureCollection",
                                field="geojson")
    code12 = _code(division_code)
    network_from_layer(geojson, class_field=class_field, speed_field=speed_field)  # refuse now
    row = session.scalar(select(RoadNetwork).where(RoadNetwork.name == name))
    if row is None:
        row = RoadNetwork(name=name, division_code=code12, geojson=geojson,
                          feature_count=len(geojson["features"]),
                          class_field=class_field, speed_field=speed_field)
        session.add(row)
    else:
        row.geojson, row.division_code = geojson, code12
        row.feature_count = len(geojson["features"])
        row.class_field, row.speed_field = class_field, speed_field
    session.flush()
    audit(session, actor, "update", "road_network", str(row.id),
          detail=f"{name}: {len(geojson['features'])} features")
    return row


def _code(raw: str) -> str:
    try:
        return normalise_code(raw)
    except ValueError as exc:
        raise InputError.single(str(exc), field="division_code") from exc


def validate_changes(changes: list[dict[str, Any]], facilities: gpd.GeoDataFrame,
                     roads: dict[str, Any]) -> None:
    """Refuse unknown actions, unknown facilities or roads, bad types and coordinates."""
    types = {row["code"] for row in facility_type_rows()}
    codes = set(facilities["code"])
    road_ids = {str(f.get("properties", {}).get("id")) for f in roads["features"]}
    problems: list[Problem] = []
    added: set[str] = set()
    for index, change in enumerate(changes):
        where = f"changes[{index}]"
        action = change.get("action")
        if action not in ACTIONS:
            problems.append(Problem(f"unknown action {action!r} (one of {', '.join(ACTIONS)})",
                                    field=f"{where}.action"))
            continue
        if action in {"upgrade", "downgrade", "close", "capacity"} and \
                change.get("code") not in codes | added:
            problems.append(Problem(f"unknown facility {change.get('code')!r}",
                                    field=f"{where}.code"))
        if action in {"add", "upgrade", "downgrade"} and change.get("type") not in types:
            problems.append(Problem(f"unknown facility type {change.get('type')!r}",
                                    field=f"{where}.type"))
        if action == "add":
            if not change.get("code") or change["code"] in codes | added:
                problems.append(Problem("a new facility needs a new, unique code",
                                        field=f"{where}.code"))
            added.add(str(change.get("code")))
            for axis, low, high in (("lon", -180, 180), ("lat", -90, 90)):
                value = change.get(axis)
                if not isinstance(value, int | float) or not low <= value <= high:
                    problems.append(Problem(f"{axis} must be a number in {low}..{high}",
                                            field=f"{where}.{axis}"))
        for field in ("physicians", "beds"):
            if field in change and (not isinstance(change[field], int) or change[field] < 0):
                problems.append(Problem(f"{field} must be a whole number ≥ 0",
                                        field=f"{where}.{field}"))
        if action in {"road_speed", "add_road"}:
            speed = change.get("speed_kmh")
            if not isinstance(speed, int | float) or not 0 < speed <= 150:
                problems.append(Problem("speed_kmh must be in (0, 150]",
                                        field=f"{where}.speed_kmh"))
        if action == "road_speed" and str(change.get("road_id")) not in road_ids:
            problems.append(Problem(f"unknown road {change.get('road_id')!r}",
                                    field=f"{where}.road_id"))
        if action == "add_road":
            coords = change.get("coordinates")
            if not isinstance(coords, list) or len(coords) < 2:
                problems.append(Problem("a new road needs at least two [lon, lat] points",
                                        field=f"{where}.coordinates"))
    if problems:
        raise InputError(problems)


def apply_changes(changes: list[dict[str, Any]], facilities: gpd.GeoDataFrame,
                  roads: dict[str, Any], *, speed_field: str = "speed_kmh",
                  class_field: str = "class") -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The facilities and roads of the scenario (inputs are not modified)."""
    frame = facilities.copy()
    frame["centres"] = frame["centres"].map(list)
    layer = copy.deepcopy(roads)
    for change in changes:
        action = change["action"]
        if action == "add":
            row = {"code": change["code"], "name": change.get("name", change["code"]),
                   "type": change["type"], "centres": list(change.get("centres", [])),
                   "beds": change.get("beds", 0), "physicians": change.get("physicians", 0),
                   "geometry": Point(change["lon"], change["lat"])}
            frame = pd.concat([frame, gpd.GeoDataFrame([row], crs=frame.crs)],
                              ignore_index=True)
            continue
        if action in {"road_speed", "add_road"}:
            _apply_road(layer, change, speed_field=speed_field, class_field=class_field)
            continue
        mask = frame["code"] == change["code"]
        if action == "close":
            frame = frame[~mask].reset_index(drop=True)
        elif action in {"upgrade", "downgrade"}:
            frame.loc[mask, "type"] = change["type"]
            if "centres" in change:
                frame.loc[mask, "centres"] = pd.Series([list(change["centres"])] * mask.sum(),
                                                       index=frame.index[mask])
        elif action == "capacity":
            for field in ("physicians", "beds"):
                if field in change:
                    frame.loc[mask, field] = change[field]
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=facilities.crs), layer


def _apply_road(layer: dict[str, Any], change: dict[str, Any], *, speed_field: str,
                class_field: str) -> None:
    if change["action"] == "road_speed":
        for feature in layer["features"]:
            if str(feature.get("properties", {}).get("id")) == str(change["road_id"]):
                feature["properties"][speed_field] = change["speed_kmh"]
        return
    layer["features"].append({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": change["coordinates"]},
        "properties": {"id": change.get("road_id", f"new-{len(layer['features'])}"),
                       class_field: change.get("class", "county"),
                       speed_field: change["speed_kmh"]},
    })


def network_from_layer(layer: dict[str, Any], *, class_field: str, speed_field: str,
                       connect_m: float | None = None) -> Network:
    """Build a driving network from a GeoJSON road layer."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "roads.geojson"
        path.write_text(json.dumps(layer), encoding="utf-8")
        roads = read_roads(path, class_field=class_field, speed_field=speed_field)
    return build_network(roads, mode="driving", connect_tolerance_m=connect_m)


_built: dict[tuple[int, Any], Network] = {}
_built_lock = threading.Lock()
#: Stored networks kept built in memory (the newest versions used).
NETWORKS_KEPT = 4


def stored_network(row: RoadNetwork) -> Network:
    """The driving network of a stored road layer, built once per version and kept in memory."""
    key = (row.id, row.updated_at)
    with _built_lock:
        if key in _built:
            return _built[key]
    network = network_from_layer(row.geojson, class_field=row.class_field,
                                 speed_field=row.speed_field)
    with _built_lock:
        _built[key] = network
        while len(_built) > NETWORKS_KEPT:
            _built.pop(next(iter(_built)))
    return network


def network_covering(session: Session, prefix: str) -> Network | None:
    """The newest stored road network whose division contains the subtree ``prefix`` (a code
    prefix such as ``140725``, a full 12-digit code, or ``""`` for everything) or lies in it.

    ``None`` when no stored network covers it: callers then fall back to straight-line
    estimates and say so.
    """
    candidates = session.execute(select(RoadNetwork.id, RoadNetwork.division_code).order_by(
        RoadNetwork.updated_at.desc(), RoadNetwork.id.desc()))  # no GeoJSON loaded here
    for network_id, division_code in candidates:
        area = prefix_of(division_code)
        if prefix.startswith(area) or area.startswith(prefix):
            # the GeoJSON is read only if the built network is not kept in memory already
            return stored_network(session.get(RoadNetwork, network_id,
                                              options=[defer(RoadNetwork.geojson)]))
    return None


def create_scenario(session: Session, actor: Actor, *, name: str, division_code: str,
                    road_network: str, changes: list[dict[str, Any]], description: str = "",
                    source: str = "manual") -> Scenario:
    """Validate and save a scenario (409 when the name is taken)."""
    if not actor.can_edit_registry and actor.role != "planner":
        raise ForbiddenError(f"role '{actor.role}' may not create scenarios")
    if session.scalar(select(Scenario).where(Scenario.name == name)) is not None:
        raise ConflictError("duplicate_name", f"a scenario named {name!r} exists already")
    roads = session.scalar(select(RoadNetwork).where(RoadNetwork.name == road_network))
    if roads is None:
        raise InputError.single(f"unknown road network {road_network!r}", field="road_network")
    code12 = _code(division_code)
    if not actor.covers_division(code12):
        raise NotFoundError(f"division {code12}")
    facilities = facility_points(session, actor, root_prefix=prefix_of(code12))
    validate_changes(changes, facilities, roads.geojson)
    scenario = Scenario(name=name, description=description, division_code=code12,
                        road_network_id=roads.id, changes=changes, created_by=actor.username,
                        source=source)
    session.add(scenario)
    session.flush()
    audit(session, actor, "create", "scenario", str(scenario.id),
          after={"name": name, "changes": len(changes)})
    return scenario


def evaluate(session: Session, actor: Actor, scenario: Scenario, *,
             thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS) -> ScenarioEvaluation:
    """Evaluate baseline and scenario on the same villages; store and return the comparison."""
    roads = session.get(RoadNetwork, scenario.road_network_id)
    assert roads is not None
    prefix = prefix_of(scenario.division_code)
    demand = demand_points(session, actor, root_prefix=prefix)
    facilities = facility_points(session, actor, root_prefix=prefix)
    validate_changes(scenario.changes, facilities, roads.geojson)
    base_network = network_from_layer(roads.geojson, class_field=roads.class_field,
                                      speed_field=roads.speed_field)
    new_facilities, new_layer = apply_changes(scenario.changes, facilities, roads.geojson,
                                              speed_field=roads.speed_field,
                                              class_field=roads.class_field)
    roads_changed = any(c["action"] in {"road_speed", "add_road"} for c in scenario.changes)
    new_network = network_from_layer(
        new_layer, class_field=roads.class_field, speed_field=roads.speed_field,
        connect_m=CONNECT_NEW_ROADS_M if any(c["action"] == "add_road"
                                             for c in scenario.changes) else None,
    ) if roads_changed else base_network
    base = analyse(base_network, demand, facilities, thresholds=thresholds)
    after = analyse(new_network, demand, new_facilities, thresholds=thresholds)
    villages = _village_changes(base["villages"], after["villages"], thresholds)
    metrics = {"baseline": base["summary"], "scenario": after["summary"],
               "gains": sum(1 for v in villages if v["change"] == "gain"),
               "losses": sum(1 for v in villages if v["change"] == "loss")}
    row = ScenarioEvaluation(scenario_id=scenario.id, thresholds=list(thresholds),
                             metrics=_jsonable(metrics), villages=_jsonable(villages))
    session.add(row)
    session.flush()
    audit(session, actor, "create", "scenario_evaluation", str(row.id),
          detail=f"scenario {scenario.name}")
    return row


def _village_changes(base: pd.DataFrame, after: pd.DataFrame,
                     thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    """Per village and tier: minutes before/after and whether a threshold was crossed."""
    out = []
    tiers = [c[len("minutes_"):] for c in base.columns if c.startswith("minutes_")]
    for i in range(len(base)):
        entry: dict[str, Any] = {"code": base["code"].iloc[i], "name": base["name"].iloc[i],
                                 "township": base["township"].iloc[i],
                                 "population": float(base["population"].iloc[i])}
        gained = lost = False
        for tier in tiers:
            before = float(base[f"minutes_{tier}"].iloc[i])
            now = float(after[f"minutes_{tier}"].iloc[i])
            entry[f"{tier}_before"] = None if np.isnan(before) else before
            entry[f"{tier}_after"] = None if np.isnan(now) else now
            b = np.inf if np.isnan(before) else before
            a = np.inf if np.isnan(now) else now
            for t in thresholds:
                if b > t >= a:
                    gained = True
                if a > t >= b:
                    lost = True
        entry["change"] = "gain" if gained and not lost else "loss" if lost and not gained \
            else "mixed" if gained else "none"
        out.append(entry)
    return out


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON (NaN/inf become null)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v
    return json.loads(json.dumps(clean(value)))


def scoped_road_networks(actor: Actor) -> Select[tuple[RoadNetwork]]:
    """Query of the road networks in the actor's scope, by name, without their GeoJSON.

    The scope is a SQL condition, so a count of this query covers only what the actor may see.
    """
    return (select(RoadNetwork).options(defer(RoadNetwork.geojson))
            .where(actor.division_clause(RoadNetwork.division_code))
            .order_by(RoadNetwork.name))


def list_road_networks(session: Session, actor: Actor, *, offset: int = 0,
                       limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Road networks of the actor's scope by name, with their feature counts (one page).

    Only the listed columns are selected, so neither the page nor its count reads GeoJSON.
    """
    query = scoped_road_networks(actor).with_only_columns(
        RoadNetwork.name, RoadNetwork.division_code, RoadNetwork.feature_count)
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [{"name": r.name, "division_code": r.division_code,
                    "features": r.feature_count} for r in rows]


def scoped_scenarios(actor: Actor) -> Select[tuple[Scenario]]:
    """Query of the scenarios in the actor's scope, newest first (scope as a SQL condition)."""
    return (select(Scenario).where(actor.division_clause(Scenario.division_code))
            .order_by(Scenario.created_at.desc(), Scenario.id.desc()))


def list_scenarios(session: Session, actor: Actor, *, offset: int = 0,
                   limit: int = 50) -> tuple[int, list[Scenario]]:
    """Scenarios of the actor's scope, newest first (one page)."""
    return fetch_page(session, scoped_scenarios(actor), offset=offset, limit=limit)


def get_scenario(session: Session, actor: Actor, name: str) -> Scenario:
    """A scenario in the actor's scope."""
    row = session.scalar(select(Scenario).where(Scenario.name == name))
    if row is None or not actor.covers_division(row.division_code):
        raise NotFoundError(f"scenario {name}")
    return row


def delete_scenario(session: Session, actor: Actor, name: str) -> None:
    """Delete a scenario and its evaluations (audited)."""
    scenario = get_scenario(session, actor, name)
    audit(session, actor, "delete", "scenario", str(scenario.id),
          before={"name": scenario.name, "changes": scenario.changes})
    session.delete(scenario)
    session.flush()


def latest_evaluation(session: Session, scenario: Scenario) -> ScenarioEvaluation | None:
    """The newest evaluation of a scenario."""
    return session.scalars(
        select(ScenarioEvaluation).where(ScenarioEvaluation.scenario_id == scenario.id)
        .order_by(ScenarioEvaluation.id.desc())
    ).first()


def comparison_rows(evaluations: list[tuple[str, ScenarioEvaluation]]) -> list[dict[str, Any]]:
    """Side-by-side metric rows (baseline first) for several evaluated scenarios."""
    if not evaluations:
        return []
    rows = []
    first = evaluations[0][1]
    columns = [("baseline", first.metrics["baseline"])] + [
        (name, ev.metrics["scenario"]) for name, ev in evaluations]
    thresholds = first.thresholds
    for section in ("tiers", "centres"):
        for group in first.metrics["baseline"][section]:
            for metric in [f"covered_{t:g}" for t in thresholds] + [
                    "mean_minutes", "p90_minutes", "population_per_facility", "equity_gap",
                    "facilities"]:
                row = {"group": group, "metric": metric}
                for name, summary in columns:
                    entry = summary[section].get(group, {})
                    if metric.startswith("covered_"):
                        value = entry.get("covered", {}).get(metric[len("covered_"):])
                    else:
                        value = entry.get(metric)
                    row[name] = value
                rows.append(row)
    return rows
