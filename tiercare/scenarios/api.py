"""REST API of road networks and scenarios under ``/api/v1``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from tiercare.registry.schemas import Page
from tiercare.scenarios import service
from tiercare.scenarios.models import Scenario
from tiercare.scenarios.report import comparison_html, write_comparison
from tiercare.scenarios.schemas import RoadNetworkIn, ScenarioIn
from tiercare.web.deps import ActorDep, EditorDep, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1", tags=["scenarios"])


def scenario_dict(session, scenario: Scenario) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A scenario with its newest evaluation's headline figures."""
    evaluation = service.latest_evaluation(session, scenario)
    return {
        "name": scenario.name, "description": scenario.description,
        "division_code": scenario.division_code, "changes": scenario.changes,
        "created_by": scenario.created_by, "source": scenario.source,
        "created_at": scenario.created_at.isoformat(),
        "evaluation": None if evaluation is None else {
            "computed_at": evaluation.computed_at.isoformat(),
            "thresholds": evaluation.thresholds,
            "metrics": evaluation.metrics,
        },
    }


@router.get("/road-networks", response_model=Page,
            summary="List stored road networks in your scope")
def list_road_networks(session: SessionDep, actor: ActorDep, offset: Offset = 0,
                       limit: Limit = 50) -> Page:
    """Road layers that analyses and scenarios can route on, by name: division and number
    of features (the GeoJSON itself is not returned)."""
    total, items = service.list_road_networks(session, actor, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/road-networks", status_code=201, summary="Store a road network")
def store_road_network(data: RoadNetworkIn, session: SessionDep, actor: EditorDep) -> dict:
    """Save (or replace) a GeoJSON road layer with class and speed attributes."""
    row = service.store_road_network(session, actor, name=data.name,
                                     division_code=data.division_code, geojson=data.geojson,
                                     class_field=data.class_field, speed_field=data.speed_field)
    return {"name": row.name, "features": row.feature_count}


@router.get("/scenarios", response_model=Page, summary="List scenarios in your scope")
def list_scenarios(session: SessionDep, actor: ActorDep, offset: Offset = 0,
                   limit: Limit = 50) -> Page:
    """Scenarios in the caller's scope, newest first, with their latest evaluation's
    headline figures (per-village changes: ``GET /api/v1/scenarios/{name}``)."""
    total, rows = service.list_scenarios(session, actor, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit,
                items=[scenario_dict(session, s) for s in rows])


@router.post("/scenarios", status_code=201, summary="Create a scenario",
             responses={409: {"description": "name taken"},
                        422: {"description": "bad change, e.g. changes[2].code"}})
def create_scenario(data: ScenarioIn, session: SessionDep, actor: ActorDep) -> dict:
    """Validate and save a named set of changes."""
    scenario = service.create_scenario(session, actor, name=data.name,
                                       division_code=data.division_code,
                                       road_network=data.road_network, changes=data.changes,
                                       description=data.description)
    return scenario_dict(session, scenario)


@router.get("/scenarios/{name}", summary="Read a scenario")
def read_scenario(name: str, session: SessionDep, actor: ActorDep) -> dict:
    """A scenario and its newest evaluation (with per-village changes)."""
    scenario = service.get_scenario(session, actor, name)
    out = scenario_dict(session, scenario)
    evaluation = service.latest_evaluation(session, scenario)
    if evaluation is not None:
        out["villages"] = evaluation.villages
    return out


@router.delete("/scenarios/{name}", status_code=204, summary="Delete a scenario")
def delete_scenario(name: str, session: SessionDep, actor: EditorDep) -> None:
    """Remove a scenario and its evaluations."""
    service.delete_scenario(session, actor, name)


@router.post("/scenarios/{name}/evaluate", summary="Evaluate a scenario against the baseline")
def evaluate_scenario(name: str, session: SessionDep, actor: ActorDep,
                      thresholds: Annotated[str, Query(description="Minutes, comma-separated")]
                      = "15,30,60") -> dict:
    """Coverage, mean/P90 time, population per facility, equity and villages gaining/losing."""
    try:
        values = tuple(float(t) for t in thresholds.split(","))
    except ValueError as exc:
        raise HTTPException(422, "thresholds must be numbers separated by commas") from exc
    scenario = service.get_scenario(session, actor, name)
    service.evaluate(session, actor, scenario, thresholds=values)
    return scenario_dict(session, scenario)


def _evaluations(session, actor, names: str):  # type: ignore[no-untyped-def]
    out = []
    for name in [n for n in names.split(",") if n]:
        scenario = service.get_scenario(session, actor, name)
        evaluation = service.latest_evaluation(session, scenario) or service.evaluate(
            session, actor, scenario)
        out.append((name, evaluation))
    if not out:
        raise HTTPException(422, "name at least one scenario")
    return out


@router.get("/scenario-comparison", summary="Compare scenarios side by side")
def compare(session: SessionDep, actor: ActorDep,
            names: Annotated[str, Query(description="Scenario names, comma-separated")],
            format: Annotated[str, Query(pattern="^(json|html|xlsx)$")] = "json") -> Any:  # noqa: A002
    """Baseline and each scenario's metrics; ``format=html`` or ``xlsx`` for a report."""
    evaluations = _evaluations(session, actor, names)
    rows = service.comparison_rows(evaluations)
    if format == "json":
        return {"scenarios": [n for n, _ in evaluations], "rows": rows}
    if format == "html":
        return HTMLResponse(comparison_html(evaluations, rows,
                                            ["baseline"] + [n for n, _ in evaluations]))
    path = Path(tempfile.mkdtemp(prefix="tiercare-compare-")) / "scenario_comparison.xlsx"
    write_comparison(evaluations, path)
    return FileResponse(path, filename=path.name)
