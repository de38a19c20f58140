"""Web pages of planning scenarios: list, new scenario by hand, a scenario with its evaluation
against the baseline and the villages that gain or lose, and up to three side by side.

They call :mod:`tiercare.scenarios.service` like the REST API does; the HTML and Excel
exports are the API's ``/api/v1/scenario-comparison?format=html|xlsx``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tiercare.analyses import _pagekit as kit
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.registry.accessibility import DEFAULT_THRESHOLDS, facility_points, tiers
from tiercare.registry.codes import prefix_of
from tiercare.registry.models import Division
from tiercare.registry.reference import facility_type_rows
from tiercare.scenarios import service as scenarios
from tiercare.scenarios.models import RoadNetwork, Scenario, ScenarioEvaluation
from tiercare.web.deps import SessionDep
from tiercare.web.maps import SvgMap
from tiercare.web.pages import Viewer, ViewerDep

#: Most scenarios compared side by side.
MAX_COMPARED = 3
#: Half-width in degrees of a changed road drawn on a scenario map.
ROAD_HALF_WIDTH_DEG = 0.0012

router = APIRouter(include_in_schema=False)


# --------------------------------------------------------------------------- scenarios


def _scenario_rows(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    rows = []
    for scenario in session.scalars(scenarios.scoped_scenarios(viewer.actor)):
        evaluation = scenarios.latest_evaluation(session, scenario)
        headline = None
        if evaluation is not None:
            first = f"{evaluation.thresholds[1 if len(evaluation.thresholds) > 1 else 0]:g}"
            before = evaluation.metrics["baseline"]["tiers"].get("county", {})
            after = evaluation.metrics["scenario"]["tiers"].get("county", {})
            headline = {"threshold": first,
                        "before": before.get("covered", {}).get(first),
                        "after": after.get("covered", {}).get(first),
                        "gains": evaluation.metrics["gains"],
                        "losses": evaluation.metrics["losses"]}
        rows.append({"scenario": scenario, "evaluation": evaluation, "headline": headline})
    return rows


@router.get("/planning/scenarios", response_class=HTMLResponse)
def scenario_list(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Saved scenarios with their headline figures; choose up to three to compare."""
    return kit.render(request, "planning_scenarios.html", viewer,
                      rows=_scenario_rows(session, viewer), max_compared=MAX_COMPARED,
                      message=request.query_params.get("msg"))


def _change_rows(changes: list[dict[str, Any]], names: dict[str, str],
                 roads: RoadNetwork | None, t: kit.PlanningTranslator) -> list[dict[str, Any]]:
    """Changes in words: action, what (facility name, road class and ref), detail."""
    features = {}
    if roads is not None:
        features = {str(f.get("properties", {}).get("id")): f.get("properties", {})
                    for f in roads.geojson.get("features", [])}
    rows = []
    for change in changes:
        action = change.get("action", "")
        code = change.get("code")
        what = names.get(code, change.get("name", code)) if code else t("plan.new_road")
        detail = ""
        if action in {"add", "upgrade", "downgrade"}:
            detail = t.label("ftype", change.get("type"))
        elif action == "road_speed":
            road = features.get(str(change.get("road_id")), {})
            kind = road.get(roads.class_field) if roads is not None else None
            what = " ".join(str(x) for x in (t.label("road", kind) if kind else None,
                                             road.get("ref"), f"#{change.get('road_id')}")
                            if x)
            before = road.get(roads.speed_field) if roads is not None else None
            detail = f"{_speed(before)} → {_speed(change.get('speed_kmh'))} km/h"
        elif action == "add_road":
            detail = f"{_speed(change.get('speed_kmh'))} km/h"
        elif action == "capacity":
            detail = ", ".join(f"{t('plan.' + k)} {change[k]}" for k in ("physicians", "beds")
                               if k in change)
        rows.append({"action": action, "code": code if action != "add" else None,
                     "what": what, "detail": detail})
    return rows


def _speed(value: Any) -> str:
    """A speed as written by people: 80, 12.5; '?' when unknown."""
    return f"{value:g}" if isinstance(value, int | float) else "?"


def _village_points(session: Session, codes: set[str]) -> dict[str, tuple[float, float]]:
    if not codes:
        return {}
    rows = session.execute(select(Division.code, Division.lon, Division.lat)
                           .where(Division.code.in_(sorted(codes)),
                                  Division.lon.is_not(None)))
    return {code: (lon, lat) for code, lon, lat in rows}


def _change_map(session: Session, viewer: Viewer, scenario: Scenario,
                evaluation: ScenarioEvaluation | None, *, width: float,
                max_height: float) -> SvgMap | None:
    """Townships, villages by gain/loss, changed facilities and roads of a scenario."""
    t = kit.PlanningTranslator(viewer.lang)
    prefix = prefix_of(scenario.division_code)
    builder = kit.outline_map(session, prefix, scenario.division_code)
    roads = session.get(RoadNetwork, scenario.road_network_id)
    changed_roads = {str(c["road_id"]): c["speed_kmh"] for c in scenario.changes
                     if c.get("action") == "road_speed"}
    if roads is not None and changed_roads:
        for feature in roads.geojson.get("features", []):
            road_id = str(feature.get("properties", {}).get("id"))
            if road_id in changed_roads and feature.get("geometry"):
                band = shape(feature["geometry"]).buffer(ROAD_HALF_WIDTH_DEG)
                builder.polygon(band.__geo_interface__, css="road-changed",
                                label=f"{road_id} → {_speed(changed_roads[road_id])} km/h")
    for change in scenario.changes:
        if change.get("action") == "add_road" and len(change.get("coordinates") or []) >= 2:
            band = shape({"type": "LineString", "coordinates": change["coordinates"]}) \
                .buffer(ROAD_HALF_WIDTH_DEG)
            builder.polygon(band.__geo_interface__, css="road-changed",
                            label=f"{t('plan.new_road')} {_speed(change.get('speed_kmh'))} km/h")
    villages = evaluation.villages if evaluation is not None else []
    located = _village_points(session, {v["code"] for v in villages})
    for village in sorted(villages, key=lambda v: v["change"] != "none", reverse=False):
        point = located.get(village["code"])
        if point is None:
            continue
        moved = village["change"] != "none"
        builder.point(point[0], point[1], css=f"village-{village['change']}",
                      label=f"{village['name']} · {t.label('change', village['change'])}",
                      href=f"/divisions/{village['code']}", radius=4.5 if moved else 2.2)
    facilities = facility_points(session, viewer.actor, root_prefix=prefix)
    where = {c: (p.x, p.y, n) for c, p, n in zip(facilities["code"], facilities.geometry,
                                                  facilities["name"], strict=True)}
    for change in scenario.changes:
        action = change.get("action")
        if action == "add":
            builder.point(change.get("lon"), change.get("lat"), css="site-new",
                          label=f"{change.get('name', change.get('code'))} · "
                                f"{t.label('action', 'add')}", radius=8)
        elif action in {"upgrade", "downgrade", "close", "capacity"} and \
                change.get("code") in where:
            x, y, name = where[change["code"]]
            css = {"close": "site-closed", "downgrade": "site-closed"}.get(action, "site-new")
            builder.point(x, y, css=css, label=f"{name} · {t.label('action', action)}",
                          href=f"/facilities/{quote(change['code'])}", radius=8)
    return builder.render(width=width, max_height=max_height)


#: Columns of the scenario-against-baseline matrix after the coverage thresholds.
MATRIX_METRICS = ("mean_minutes", "p90_minutes", "equity_gap", "facilities",
                  "population_per_facility")


def _matrix(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decorated comparison rows regrouped as one row per tier/centre, one cell per metric."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["group"], {"group": row["group"],
                                              "label": row["group_label"], "metrics": {}})
        entry["metrics"][row["metric"]] = row
    return list(out.values())


def _decorate(row: dict[str, Any], names: list[str], t: kit.PlanningTranslator) -> dict[str, Any]:
    """A comparison row with labels, deltas and a better/worse verdict per column.

    Coverage is better when higher, times and the equity gap when lower; counts of facilities
    and population per facility are shown without a verdict. A change that disappears at the
    shown precision (e.g. 1.32 → 1.28 minutes shown as 1.3 → 1.3) gets no verdict either.
    """
    metric = row["metric"]
    base = row["baseline"]
    digits = 0 if metric.startswith("covered_") or metric in {
        "facilities", "population_per_facility"} else 1
    is_share = metric == "equity_gap"
    cells = []
    for name in names:
        value = row[name]
        verdict = ""
        delta = None
        if isinstance(value, int | float) and isinstance(base, int | float):
            delta = value - base
            shown = round(delta * 100, 1) if is_share else round(delta, digits)
            if shown == 0:
                delta = None
            elif metric not in {"facilities", "population_per_facility"}:
                higher_better = metric.startswith("covered_")
                verdict = "better" if (delta > 0) == higher_better else "worse"
        cells.append({"value": value, "delta": delta, "verdict": verdict})
    if metric.startswith("covered_"):
        label = t("plan.metric.covered", minutes=metric[len("covered_"):])
    else:
        label = t(f"plan.metric.{metric}")
    return {"group": row["group"], "group_label": t.group(row["group"]), "metric": metric,
            "label": label, "baseline": base, "cells": cells, "digits": digits,
            "is_share": is_share, "is_tier": row["group"] in tiers()["tiers"]}


#: Rows of each kind on the new-scenario form.
FORM_ROWS = {"upgrade": 4, "add": 3, "road": 3}


def _scenario_form_context(session: Session, viewer: Viewer, division: str | None,
                           network: str | None) -> dict[str, Any]:
    """Choices of the new-scenario form for one county: facilities, types, roads."""
    defaults = kit.form_defaults(session, viewer)
    counties = defaults["counties"]
    county = next((c for c in counties if c.code == division), counties[0] if counties else None)
    networks = defaults["networks"]
    chosen = network or (defaults["default_network"].get(county.code) if county else None) \
        or (networks[0].name if networks else "")
    facilities: list[dict[str, Any]] = []
    roads: dict[str, list[tuple[str, str]]] = {}
    if county is not None:
        frame = facility_points(session, viewer.actor, root_prefix=county.prefix)
        facilities = sorted(({"code": c, "name": n, "type": ft} for c, n, ft in
                             zip(frame["code"], frame["name"], frame["type"], strict=True)),
                            key=lambda f: (f["type"], f["name"]))
    layer = session.scalar(select(RoadNetwork).where(RoadNetwork.name == chosen))
    if layer is not None:
        t = kit.PlanningTranslator(viewer.lang)
        speeds: dict[tuple[str, str], list[float]] = {}
        for feature in layer.geojson.get("features", []):
            props = feature.get("properties", {})
            kind = str(props.get(layer.class_field) or "")
            speeds.setdefault((kind, str(props.get("ref") or "")), []).append(
                props.get(layer.speed_field) or 0)
        for (kind, ref), values in sorted(speeds.items()):
            label = t.label("road", kind) if kind else "—"
            speed = "/".join(f"{v:g}" for v in sorted(set(values)))
            options = roads.setdefault(label, [(f"class:{kind}", t("plan.all_roads", kind=label))])
            if ref:
                options.append((f"ref:{ref}", f"{ref} · {speed} km/h · "
                                              f"{t('plan.pieces', n=len(values))}"))
    return {**defaults, "county": county, "network": chosen, "facilities": facilities,
            "roads": roads, "types": [row["code"] for row in facility_type_rows()],
            "rows": FORM_ROWS}


@router.get("/planning/new-scenario", response_class=HTMLResponse)
def new_scenario_form(request: Request, session: SessionDep, viewer: ViewerDep,
                      division: str | None = None, network: str | None = None) -> Response:
    """A form for a scenario of hand-made changes: upgrades, closures, new sites, roads."""
    return kit.render(request, "planning_new_scenario.html", viewer, form=FormData(),
                      **_scenario_form_context(session, viewer, division, network))


def _form_changes(form: Any, layer: RoadNetwork | None, t: kit.PlanningTranslator
                  ) -> tuple[list[dict[str, Any]], list[str], list[Problem]]:
    """Changes from the new-scenario form, the form row of each, and the form's own problems."""
    changes: list[dict[str, Any]] = []
    origin: list[str] = []
    problems: list[Problem] = []
    for i in range(FORM_ROWS["upgrade"]):
        code = str(form.get(f"upgrade_code_{i}", "")).strip()
        if code:
            changes.append({"action": "upgrade", "code": code,
                            "type": str(form.get(f"upgrade_type_{i}", ""))})
            origin.append(t("plan.row.upgrade", n=i + 1))
    for code in form.getlist("close_codes"):
        changes.append({"action": "close", "code": str(code)})
        origin.append(t("plan.row.close"))
    for i in range(FORM_ROWS["add"]):
        values = {k: str(form.get(f"add_{k}_{i}", "")).strip()
                  for k in ("name", "type", "lon", "lat")}
        if not values["name"] and not values["lon"] and not values["lat"]:
            continue
        change: dict[str, Any] = {"action": "add", "code": f"NEW-{uuid.uuid4().hex[:8]}",
                                  "name": values["name"] or t("plan.new_site"),
                                  "type": values["type"]}
        for axis in ("lon", "lat"):
            try:
                change[axis] = float(values[axis])
            except ValueError:
                change[axis] = values[axis]  # refused, with its row, by validate_changes
        changes.append(change)
        origin.append(t("plan.row.add", n=i + 1))
    features = layer.geojson.get("features", []) if layer is not None else []
    for i in range(FORM_ROWS["road"]):
        key = str(form.get(f"road_key_{i}", ""))
        if not key:
            continue
        try:
            speed = float(str(form.get(f"road_speed_{i}", "")))
        except ValueError:
            problems.append(Problem("speed must be km/h", field=f"road_speed_{i}", row=i + 1,
                                    code="not_a_number"))
            continue
        field, _, value = key.partition(":")
        attribute = (layer.class_field if field == "class" else "ref") if layer else "ref"
        for feature in features:
            props = feature.get("properties", {})
            if str(props.get(attribute) or "") == value:
                changes.append({"action": "road_speed", "road_id": props.get("id"),
                                "speed_kmh": speed})
                origin.append(t("plan.row.road", n=i + 1))
    return changes, origin, problems


@router.post("/planning/new-scenario", response_class=HTMLResponse)
async def new_scenario_submit(request: Request, session: SessionDep,
                              viewer: ViewerDep) -> Response:
    """Create the scenario, evaluate it against the baseline and open its page."""
    t = kit.PlanningTranslator(viewer.lang)
    form = await request.form()
    division, network = str(form.get("division_code", "")), str(form.get("road_network", ""))
    name = str(form.get("name", "")).strip()
    layer = session.scalar(select(RoadNetwork).where(RoadNetwork.name == network))
    changes, origin, problems = _form_changes(form, layer, t)
    if not name:
        problems.insert(0, Problem("a name is needed", field="name", code="missing"))
    if not changes:
        problems.append(Problem(t("plan.no_change_given"), field="changes", code="missing"))
    error = None
    if problems and layer is not None and viewer.actor.covers_division(division):
        try:  # the form's own problems and the changes' problems, all at once
            scenarios.validate_changes(changes, facility_points(
                session, viewer.actor, root_prefix=prefix_of(division)), layer.geojson)
        except InputError as exc:
            problems += [_form_problem(p, origin) for p in exc.problems]
        except ValueError:
            pass
    if not problems:
        try:
            scenario = scenarios.create_scenario(
                session, viewer.actor, name=name, division_code=division,
                road_network=network, changes=changes,
                description=str(form.get("description", "")).strip())
            scenarios.evaluate(session, viewer.actor, scenario)
            session.commit()
            return kit.redirect(f"/planning/scenarios/{quote(name, safe='')}", saved=1)
        except ConflictError:
            error = t("plan.name_taken", name=name)
        except InputError as exc:
            problems = [_form_problem(p, origin) for p in exc.problems]
        except NotFoundError as exc:
            error = str(exc)
        session.rollback()
    context = _scenario_form_context(session, viewer, division, network)
    return kit.render(request, "planning_new_scenario.html", viewer, status_code=422 if problems
                      else 409, form=form, problems=problems, error=error, **context)


def _form_problem(problem: Problem, origin: list[str]) -> Problem:
    """``changes[3].type`` → the form row it came from (e.g. ``新增机构 2: type``)."""
    field = problem.field or ""
    if field.startswith("changes[") and "]" in field:
        index = int(field[len("changes["):field.index("]")])
        if index < len(origin):
            rest = field[field.index("]") + 1:].lstrip(".")
            return Problem(problem.reason, field=f"{origin[index]}: {rest}", row=problem.row,
                           code=problem.code)
    return problem


@router.get("/planning/scenarios/{name}", response_class=HTMLResponse)
def scenario_page(request: Request, session: SessionDep, viewer: ViewerDep,
                  name: str) -> Response:
    """A scenario: its changes, evaluation against the baseline, the villages that move."""
    t = kit.PlanningTranslator(viewer.lang)
    try:
        scenario = scenarios.get_scenario(session, viewer.actor, name)
    except NotFoundError:
        return kit.render(request, "not_found.html", viewer, status_code=404, what=name)
    evaluation = scenarios.latest_evaluation(session, scenario)
    facilities = facility_points(session, viewer.actor,
                                 root_prefix=prefix_of(scenario.division_code))
    names = dict(zip(facilities["code"], facilities["name"], strict=True))
    roads = session.get(RoadNetwork, scenario.road_network_id)
    moved: list[dict[str, Any]] = []
    tier_names = list(tiers()["tiers"])
    if evaluation is not None:
        townships = kit.division_names(session, {v["township"] for v in evaluation.villages})
        moved = [{**v, "township_name": townships.get(v["township"], v["township"])}
                 for v in evaluation.villages if v["change"] != "none"]
        moved.sort(key=lambda v: ({"loss": 0, "mixed": 1, "gain": 2}.get(v["change"], 3),
                                  -v["population"]))
    return kit.render(
        request, "planning_scenario.html", viewer, scenario=scenario, evaluation=evaluation,
        road_network=roads.name if roads else "—",
        division_name=kit.division_names(session, {scenario.division_code}).get(
            scenario.division_code, scenario.division_code),
        changes=_change_rows(scenario.changes, names, roads, t),
        matrix=_matrix([_decorate(row, ["scenario"], t) for row in
                        scenarios.comparison_rows([("scenario", evaluation)])])
        if evaluation is not None else [],
        covered_metrics=[f"covered_{x:g}" for x in evaluation.thresholds] if evaluation else [],
        matrix_metrics=MATRIX_METRICS,
        moved=moved, tier_names=tier_names,
        map=_change_map(session, viewer, scenario, evaluation, width=760, max_height=560),
        saved=request.query_params.get("saved") == "1",
        error=request.query_params.get("err"),
        quoted=quote(scenario.name, safe=""),
        thresholds=", ".join(f"{x:g}" for x in (evaluation.thresholds if evaluation
                                                 else DEFAULT_THRESHOLDS)),
    )


@router.post("/planning/scenarios/{name}/evaluate")
def scenario_evaluate(request: Request, session: SessionDep, viewer: ViewerDep, name: str,
                      thresholds: Annotated[str, Form()] = "15,30,60") -> Response:
    """Evaluate the scenario against the baseline now and show the result."""
    target = f"/planning/scenarios/{quote(name, safe='')}"
    if not kit.can_plan(viewer):
        return kit.redirect(target, err=kit.PlanningTranslator(viewer.lang)("plan.no_permission"))
    try:
        scenario = scenarios.get_scenario(session, viewer.actor, name)
        values = tuple(float(x) for x in kit.parse_thresholds(thresholds))
        scenarios.evaluate(session, viewer.actor, scenario, thresholds=values)
    except NotFoundError:
        return kit.render(request, "not_found.html", viewer, status_code=404, what=name)
    except InputError as exc:
        session.rollback()
        return kit.redirect(target, err="; ".join(
            f"{p.field}: {p.reason}" if p.field else p.reason for p in exc.problems))
    session.commit()
    return kit.redirect(target)


@router.post("/planning/scenarios/{name}/delete")
def scenario_delete(request: Request, session: SessionDep, viewer: ViewerDep,
                    name: str) -> Response:
    """Delete a scenario (planners and registry editors)."""
    t = kit.PlanningTranslator(viewer.lang)
    if not kit.can_plan(viewer):
        return kit.redirect(f"/planning/scenarios/{quote(name, safe='')}",
                            err=t("plan.no_permission"))
    try:
        scenarios.delete_scenario(session, viewer.actor, name)
    except NotFoundError:
        return kit.render(request, "not_found.html", viewer, status_code=404, what=name)
    session.commit()
    return kit.redirect("/planning/scenarios", msg=t("plan.deleted", name=name))


@router.get("/planning/comparison", response_class=HTMLResponse)
def comparison(request: Request, session: SessionDep, viewer: ViewerDep,
               names: Annotated[list[str] | None, Query()] = None) -> Response:
    """Up to three scenarios side by side against the baseline, with maps of what changes."""
    t = kit.PlanningTranslator(viewer.lang)
    wanted = [n for n in dict.fromkeys(names or []) if n]
    dropped = wanted[MAX_COMPARED:]
    wanted = wanted[:MAX_COMPARED]
    evaluations: list[tuple[str, ScenarioEvaluation]] = []
    shown: list[Scenario] = []
    missing: list[str] = []
    for name in wanted:
        try:
            scenario = scenarios.get_scenario(session, viewer.actor, name)
        except NotFoundError:
            missing.append(name)
            continue
        evaluation = scenarios.latest_evaluation(session, scenario)
        if evaluation is None:
            evaluation = scenarios.evaluate(session, viewer.actor, scenario)
            session.commit()
        evaluations.append((name, evaluation))
        shown.append(scenario)
    if evaluations:
        reference = evaluations[0][1].thresholds
        mixed = [n for n, e in evaluations if e.thresholds != reference]
    else:
        mixed = []
    rows = [_decorate(row, [n for n, _ in evaluations], t)
            for row in scenarios.comparison_rows(evaluations)]
    maps = [{"scenario": s, "evaluation": e, "quoted": quote(s.name, safe=""),
             "map": _change_map(session, viewer, s, e, width=460, max_height=380)}
            for s, (_, e) in zip(shown, evaluations, strict=True)]
    joined = ",".join(n for n, _ in evaluations)
    return kit.render(
        request, "planning_comparison.html", viewer, rows=rows, maps=maps,
        names=[n for n, _ in evaluations], all_rows=_scenario_rows(session, viewer),
        missing=missing, dropped=dropped, mixed=mixed, max_compared=MAX_COMPARED,
        export_html=f"/api/v1/scenario-comparison?{urlencode({'names': joined, 'format': 'html'})}"
        if evaluations else None,
        export_xlsx=f"/api/v1/scenario-comparison?{urlencode({'names': joined, 'format': 'xlsx'})}"
        if evaluations else None,
    )
