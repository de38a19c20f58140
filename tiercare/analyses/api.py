"""REST API of analysis runs: start, poll progress, read and download results."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tiercare.analyses import service
from tiercare.registry.schemas import Page
from tiercare.web.deps import ActorDep, EditorDep, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1", tags=["analyses"])


class AnalysisIn(BaseModel):
    """An analysis to start."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="access | optimise")
    division_code: str = Field(description="Division (usually a county) to analyse")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="access: road_network, thresholds, surface_tier; optimise: road_network, "
                    "model (lscp|mclp|pmedian|pcenter|two-tier), tier, new_sites, threshold, "
                    "candidate_types, time_limit; two-tier also lower_threshold (minutes "
                    "from every village to a village clinic) and new_clinics (limit, "
                    "optional)",
    )


class ScenarioFromRun(BaseModel):
    """Name of the scenario to create from an optimisation run."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    upgrade_to: str = "county_sub_centre"


def analysis_executor(request: Request) -> ThreadPoolExecutor:
    """The app's worker thread for long runs (one at a time per process; see create_app)."""
    return request.app.state.background


@router.post("/analyses", status_code=202, summary="Start an analysis (runs in the background)")
def start(data: AnalysisIn, request: Request, session: SessionDep, actor: ActorDep) -> dict:
    """Queue a run; poll ``GET /api/v1/analyses/{id}`` for progress and the result."""
    run = service.create_run(session, actor, kind=data.kind, division_code=data.division_code,
                             params=data.params)
    session.commit()
    analysis_executor(request).submit(service.execute, request.app.state.sessions, actor, run.id)
    return service.run_dict(run)


@router.get("/analyses", response_model=Page, summary="List analysis runs in your scope")
def list_runs(session: SessionDep, actor: ActorDep,
              kind: Annotated[str | None, Query(description="access or optimise")] = None,
              offset: Offset = 0, limit: Limit = 50) -> Page:
    """Runs in the caller's scope, newest first, with status and progress (without results:
    read one run with ``GET /api/v1/analyses/{id}``)."""
    total, rows = service.list_runs(session, actor, kind=kind, offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit,
                items=[service.run_dict(r) for r in rows])


@router.get("/analyses/{run_id}", summary="Progress and result of a run")
def read_run(run_id: int, session: SessionDep, actor: ActorDep,
             result: Annotated[bool, Query(description="Include the result")] = True) -> dict:
    """Status (queued, running, done, failed), progress 0..1, message and the result."""
    return service.run_dict(service.get_run(session, actor, run_id), with_result=result)


@router.get("/analyses/{run_id}/download/{table}.csv", summary="Download a result table")
def download(run_id: int, table: str, session: SessionDep, actor: ActorDep) -> Response:
    """``villages`` or ``coverage`` of an access run as CSV (UTF-8 with BOM for Excel)."""
    run = service.get_run(session, actor, run_id)
    if run.status != "done" or not run.result or table not in {"villages", "coverage"} \
            or table not in run.result:
        raise HTTPException(404, "no such table for this run")
    rows = run.result[table]
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="analysis_{run_id}_{table}.csv"'})


@router.post("/analyses/{run_id}/scenario", status_code=201,
             summary="Save an optimisation result as a scenario")
def save_as_scenario(run_id: int, data: ScenarioFromRun, session: SessionDep,
                     actor: EditorDep) -> dict:
    """One action: the optimiser's chosen sites become a scenario (upgrades and new sites)."""
    from tiercare.scenarios.api import scenario_dict

    run = service.get_run(session, actor, run_id)
    if run.kind != "optimise" or run.status != "done" or not run.result:
        raise HTTPException(409, detail={"reason": "not_a_finished_optimisation",
                                         "message": "only a finished optimisation can be saved"})
    scenario = service.save_as_scenario(session, actor, run, name=data.name,
                                        upgrade_to=data.upgrade_to)
    return scenario_dict(session, scenario)
