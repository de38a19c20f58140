"""REST API of fever-clinic surveillance under ``/api/v1``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from sqlalchemy import func, select

from tiercare.indicators.schemas import AlertActionIn, DetectIn, FeverReportIn
from tiercare.registry.schemas import Page
from tiercare.surveillance import reports
from tiercare.surveillance.models import FeverReport
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1")
TAG = ["surveillance"]


def _report_dict(r: FeverReport) -> dict[str, Any]:
    return {"facility": r.facility_code, "division_code": r.division_code,
            "date": r.report_date.isoformat(), "age_band": r.age_band, "patients": r.patients,
            "tests": r.tests, "positives": r.positives, "referrals": r.referrals,
            "comment": r.comment, "reported_by": r.reported_by}


@router.get("/fever-reports", response_model=Page, tags=TAG, summary="List daily fever reports")
def list_fever_reports(
    session: SessionDep, actor: ActorDep,
    facility: Annotated[str | None, Query()] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    offset: Offset = 0, limit: Limit = 100,
) -> Page:
    """Daily reports in your scope, newest first."""
    query = select(FeverReport).where(FeverReport.division_code.like(
        actor.division_prefix + "%"))
    if actor.facility_id is not None:
        query = query.where(FeverReport.facility_id == actor.facility_id)
    if facility:
        query = query.where(FeverReport.facility_code == facility)
    if start:
        query = query.where(FeverReport.report_date >= start)
    if end:
        query = query.where(FeverReport.report_date <= end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(FeverReport.report_date.desc(),
                                          FeverReport.facility_code, FeverReport.age_band)
                           .offset(offset).limit(limit))
    return Page(total=total, offset=offset, limit=limit, items=[_report_dict(r) for r in rows])


@router.post("/fever-reports", tags=TAG, summary="Store daily fever reports (all or nothing)")
def post_fever_reports(items: list[FeverReportIn], session: SessionDep,
                       actor: ActorDep) -> dict[str, int]:
    """Every row is checked (sentinel, scope, age band, positives ≤ tests…) before any write."""
    rows = [{**i.model_dump(), "date": i.date.isoformat()} for i in items]
    return reports.store_fever_reports(session, actor, rows, source="api")


@router.post("/fever-reports/import", tags=TAG, summary="Import daily reports (CSV or .xlsx)")
async def import_fever_reports(session: SessionDep, actor: ActorDep,
                               file: UploadFile = File(..., description="CSV or .xlsx")
                               ) -> dict[str, int]:
    """Columns facility, date, age_band, patients, tests, positives, referrals, comment."""
    data = await file.read()
    return reports.import_fever_file(session, actor, data, file.filename or "upload.csv")


@router.get("/fever-reports/missing", response_model=Page, tags=TAG,
            summary="Sentinels without a report for a day")
def missing(session: SessionDep, actor: ActorDep, day: Annotated[date, Query()],
            unit: Annotated[str, Query(description="Division subtree")] = "",
            offset: Offset = 0, limit: Limit = 100) -> Page:
    """Open sentinels in scope that have not reported for ``day``."""
    rows = reports.missing_reports(session, actor, day=day, unit=unit)
    return Page(total=len(rows), offset=offset, limit=limit, items=rows[offset:offset + limit])


@router.get("/sentinels/status", response_model=Page, tags=TAG,
            summary="Each sentinel's status on a day")
def sentinels_status(session: SessionDep, actor: ActorDep, day: Annotated[date, Query()],
                     unit: Annotated[str, Query()] = "", offset: Offset = 0,
                     limit: Limit = 100) -> Page:
    """ok / missing / alert / closed, with position for the map."""
    rows = reports.sentinel_status(session, actor, day=day, unit=unit)
    return Page(total=len(rows), offset=offset, limit=limit, items=rows[offset:offset + limit])


@router.post("/alerts/detect", tags=TAG, summary="Run the aberration detectors")
def detect(data: DetectIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Run the configured EARS detectors per sentinel and per county; store new alerts."""
    created = reports.run_detection(session, actor, end=data.end, days=data.days,
                                    unit=data.unit, methods=data.methods)
    return {"created": len(created), "alerts": [reports.alert_dict(a) for a in created]}


@router.get("/alerts", response_model=Page, tags=TAG, summary="List surveillance alerts")
def list_alerts(session: SessionDep, actor: ActorDep,
                status: Annotated[str | None, Query(description="open, acknowledged, closed")]
                = None,
                level: Annotated[str | None, Query(description="facility or county")] = None,
                since: Annotated[date | None, Query()] = None,
                offset: Offset = 0, limit: Limit = 50) -> Page:
    """Alerts in your scope, newest first."""
    total, rows = reports.list_alerts(session, actor, status=status, level=level, since=since,
                                      offset=offset, limit=limit)
    return Page(total=total, offset=offset, limit=limit,
                items=[reports.alert_dict(a) for a in rows])


@router.get("/alerts/{alert_id}", tags=TAG, summary="Read an alert with its series")
def read_alert(alert_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """One alert and the counts that triggered it."""
    return reports.alert_dict(reports.get_alert(session, actor, alert_id))


@router.post("/alerts/{alert_id}/acknowledge", tags=TAG, summary="Acknowledge an alert")
def acknowledge(alert_id: int, data: AlertActionIn, session: SessionDep,
                actor: ActorDep) -> dict[str, Any]:
    """open → acknowledged (409 ``bad_transition`` otherwise)."""
    return reports.alert_dict(reports.transition_alert(session, actor, alert_id,
                                                       to="acknowledged", note=data.note))


@router.post("/alerts/{alert_id}/close", tags=TAG, summary="Close an alert")
def close(alert_id: int, data: AlertActionIn, session: SessionDep,
          actor: ActorDep) -> dict[str, Any]:
    """open / acknowledged → closed (409 ``bad_transition`` otherwise)."""
    return reports.alert_dict(reports.transition_alert(session, actor, alert_id, to="closed",
                                                       note=data.note))
