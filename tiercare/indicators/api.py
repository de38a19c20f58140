"""REST API of indicators, aggregate reporting and analytics under ``/api/v1``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, UploadFile, status
from fastapi.responses import Response
from sqlalchemy import func, select

from tiercare.indicators import analytics as an
from tiercare.indicators import reporting
from tiercare.indicators.catalogue import (
    data_set_dict,
    element_dict,
    ensure_catalogue,
    get_indicator,
    indicator_dict,
    rule_dict,
    save_data_set,
    save_element,
    save_indicator,
    save_rule,
    save_scorecard,
    scorecard_dict,
)
from tiercare.indicators.facts import FACTS
from tiercare.indicators.models import (
    DataElement,
    DataSet,
    Indicator,
    Scorecard,
    ValidationRule,
)
from tiercare.indicators.schemas import (
    DataElementIn,
    DataSetIn,
    DataValueIn,
    IndicatorIn,
    ReportIn,
    ScorecardIn,
    ValidationRuleIn,
)
from tiercare.registry.schemas import Page
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1")
TAG = ["indicators"]


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated query values as one list."""
    return [part.strip() for v in values or [] for part in v.split(",") if part.strip()]


@router.get("/data-elements", response_model=Page, tags=TAG, summary="List data elements")
def list_data_elements(session: SessionDep, actor: ActorDep, offset: Offset = 0,
                       limit: Limit = 100) -> Page:
    """Every data element (reported counts and values)."""
    ensure_catalogue(session)
    total = session.scalar(select(func.count(DataElement.id))) or 0
    rows = session.scalars(select(DataElement).order_by(DataElement.code)
                           .offset(offset).limit(limit))
    return Page(total=total, offset=offset, limit=limit, items=[element_dict(r) for r in rows])


@router.put("/data-elements/{code}", tags=TAG,
            summary="Create or change a data element (admin)")
def put_data_element(code: str, data: DataElementIn, session: SessionDep,
                     actor: ActorDep) -> dict[str, Any]:
    """Save a data element; its code must be a name expressions can use (422 names the field)."""
    ensure_catalogue(session)
    return element_dict(save_element(session, actor, {"code": code, **data.model_dump()}))


@router.get("/indicators", response_model=Page, tags=TAG, summary="List indicators")
def list_indicators(session: SessionDep, actor: ActorDep,
                    group: Annotated[str | None, Query(description="Indicator group")] = None,
                    offset: Offset = 0, limit: Limit = 100) -> Page:
    """Indicators with their expressions, factor and target."""
    ensure_catalogue(session)
    query = select(Indicator)
    if group:
        query = query.where(Indicator.group == group)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Indicator.group, Indicator.code)
                           .offset(offset).limit(limit))
    return Page(total=total, offset=offset, limit=limit, items=[indicator_dict(r) for r in rows])


@router.get("/indicators/{code}", tags=TAG, summary="Read an indicator")
def read_indicator(code: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """One indicator."""
    ensure_catalogue(session)
    return indicator_dict(get_indicator(session, code))


@router.put("/indicators/{code}", tags=TAG, summary="Create or change an indicator (admin)")
def put_indicator(code: str, data: IndicatorIn, session: SessionDep,
                  actor: ActorDep) -> dict[str, Any]:
    """Save an indicator; its expressions are checked (422 names the field)."""
    ensure_catalogue(session)
    return indicator_dict(save_indicator(session, actor, {"code": code, **data.model_dump()}))


@router.get("/facts", response_model=Page, tags=TAG,
            summary="Operational facts and their source modules")
def list_facts(actor: ActorDep, offset: Offset = 0, limit: Limit = 100) -> Page:
    """Facts an indicator may name, with the module providing each."""
    facts = FACTS.describe()
    return Page(total=len(facts), offset=offset, limit=limit, items=facts[offset:offset + limit])


@router.get("/data-values", response_model=Page, tags=TAG, summary="List data values")
def list_data_values(
    session: SessionDep, actor: ActorDep,
    unit: Annotated[str | None, Query(description="Facility code or division subtree")] = None,
    element: Annotated[list[str] | None, Query(description="Element code(s)")] = None,
    period: Annotated[str | None, Query(description="Values inside this period")] = None,
    data_set: Annotated[str | None, Query(description="Elements of a data set")] = None,
    offset: Offset = 0, limit: Limit = 100,
) -> Page:
    """Stored values in your scope."""
    total, rows = reporting.query_values(session, actor, unit=unit, elements=_split(element),
                                         period=period, data_set=data_set, offset=offset,
                                         limit=limit)
    return Page(total=total, offset=offset, limit=limit,
                items=[reporting.value_dict(v) for v in rows])


@router.post("/data-values", tags=TAG, summary="Store data values (all or nothing)")
def post_data_values(values: list[DataValueIn], session: SessionDep,
                     actor: ActorDep) -> dict[str, int]:
    """Check every value (scope, lock, validation rules) and store all of them, or none (422)."""
    return reporting.store_values(session, actor, [v.model_dump() for v in values],
                                  source="api").as_dict()


@router.post("/data-values/import", tags=TAG, summary="Import values from CSV or .xlsx")
async def import_data_values(session: SessionDep, actor: ActorDep,
                             file: UploadFile = File(..., description="CSV or .xlsx")
                             ) -> dict[str, int]:
    """Columns ``element``, ``unit``, ``period``, ``value``, ``comment``; all or nothing."""
    data = await file.read()
    return reporting.import_table(session, actor, data, file.filename or "upload.csv").as_dict()


@router.post("/dataValueSets", tags=TAG, summary="Import a DHIS2 dataValueSets document")
def import_dhis2(payload: dict[str, Any], session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """DHIS2 ``dataValueSets`` JSON (``dataElement`` = element code, ``orgUnit`` = facility or
    division code); all or nothing, answered in DHIS2's import-summary shape."""
    result = reporting.import_data_value_set(session, actor, payload)
    return {"status": "SUCCESS", "importCount": {"imported": result.created,
                                                 "updated": result.updated, "ignored": 0,
                                                 "deleted": 0}}


@router.get("/dataValueSets", tags=TAG, summary="Export a DHIS2 dataValueSets document")
def export_dhis2(
    session: SessionDep, actor: ActorDep,
    unit: Annotated[str | None, Query(description="Facility or division subtree")] = None,
    element: Annotated[list[str] | None, Query()] = None,
    period: Annotated[str | None, Query()] = None,
    data_set: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Values in your scope as DHIS2 ``dataValueSets`` JSON."""
    return reporting.export_data_value_set(session, actor, unit=unit, elements=_split(element),
                                           period=period, data_set=data_set)


@router.get("/data-sets", response_model=Page, tags=TAG,
            summary="List report forms (data sets)")
def list_data_sets(session: SessionDep, actor: ActorDep, offset: Offset = 0,
                   limit: Limit = 100) -> Page:
    """Data sets with their elements, facility types and deadline."""
    ensure_catalogue(session)
    total = session.scalar(select(func.count(DataSet.id))) or 0
    rows = session.scalars(select(DataSet).order_by(DataSet.code).offset(offset).limit(limit))
    return Page(total=total, offset=offset, limit=limit,
                items=[data_set_dict(d) for d in rows])


@router.put("/data-sets/{code}", tags=TAG, summary="Create or change a report form (admin)")
def put_data_set(code: str, data: DataSetIn, session: SessionDep,
                 actor: ActorDep) -> dict[str, Any]:
    """Save a report form: its elements, facility types and deadline (422 names the field)."""
    ensure_catalogue(session)
    return data_set_dict(save_data_set(session, actor, {"code": code, **data.model_dump()}))


@router.get("/validation-rules", response_model=Page, tags=TAG, summary="List validation rules")
def list_rules(session: SessionDep, actor: ActorDep,
               data_set: Annotated[str | None, Query()] = None, offset: Offset = 0,
               limit: Limit = 100) -> Page:
    """Rules checked when a report is stored (``left operator right``)."""
    ensure_catalogue(session)
    query = select(ValidationRule)
    if data_set:
        query = query.where(ValidationRule.data_set_code == data_set)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ValidationRule.code).offset(offset).limit(limit))
    return Page(total=total, offset=offset, limit=limit, items=[rule_dict(r) for r in rows])


@router.put("/validation-rules/{code}", tags=TAG, summary="Create or change a rule (admin)")
def put_rule(code: str, data: ValidationRuleIn, session: SessionDep,
             actor: ActorDep) -> dict[str, Any]:
    """Save a rule; its expressions may name the data set's elements and days, beds,
    physicians, nurses (422 names the field)."""
    ensure_catalogue(session)
    return rule_dict(save_rule(session, actor, {"code": code, **data.model_dump()}))


@router.get("/reports/completeness", tags=TAG, summary="Completeness and timeliness")
def report_completeness(session: SessionDep, actor: ActorDep,
                        data_set: Annotated[str, Query()], unit: Annotated[str, Query()],
                        period: Annotated[str, Query()]) -> dict[str, Any]:
    """Expected, submitted and on-time reports of a form in a division subtree."""
    return reporting.completeness(session, actor, data_set=data_set, unit=unit, period=period)


@router.get("/reports/{data_set}/{facility}/{period}", tags=TAG, summary="A report form")
def read_report(data_set: str, facility: str, period: str, session: SessionDep,
                actor: ActorDep) -> dict[str, Any]:
    """The form with stored values, rules, deadline and lock state."""
    return reporting.report_form(session, actor, data_set=data_set, facility=facility,
                                 period=period)


@router.post("/reports", tags=TAG, summary="Submit a report form")
def submit_report(data: ReportIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Store a form's values (rules checked, all or nothing) and record the submission."""
    return reporting.submit_report(session, actor, data_set=data.data_set,
                                   facility=data.facility, period=data.period,
                                   values=data.values, comment=data.comment)


@router.get("/analytics", tags=TAG, summary="Indicator values by unit and period")
def get_analytics(
    session: SessionDep, actor: ActorDep,
    unit: Annotated[list[str], Query(description="Division or facility code(s)")],
    period: Annotated[list[str], Query(description="2026-10, 2026W43, 2026Q4, 2026…")],
    indicator: Annotated[list[str] | None, Query(description="Indicator code(s); all")] = None,
    children: Annotated[bool, Query(description="Add the units one level down")] = False,
    format: Annotated[str, Query(description="json, csv or xlsx")] = "json",  # noqa: A002
) -> Any:
    """Values, numerators, denominators, status (ok / no_data with sources / no_value) and
    whether each meets its target."""
    values = an.analytics(session, actor, indicators=_split(indicator), units=_split(unit),
                          periods=_split(period), children=children)
    if format == "json":
        return {"values": [v.as_dict() for v in values]}
    body = an.frame_bytes(an.values_frame(values), fmt=format)
    media = "text/csv" if format == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename=analytics.{format}"})


@router.get("/analytics/referral-flows", tags=TAG, summary="Facility-to-facility referrals")
def get_referral_flows(session: SessionDep, actor: ActorDep, unit: Annotated[str, Query()],
                       period: Annotated[str, Query()]) -> dict[str, Any]:
    """Referrals between facilities in a period where either end lies in the unit
    (``flows`` is null when the referral module holds no data)."""
    return {"unit": unit, "period": period,
            "flows": an.referral_flows(session, actor, unit=unit, period=period)}


@router.post("/analytics/rebuild", tags=TAG, summary="Full re-aggregation (admin)")
def rebuild(session: SessionDep, actor: ActorDep) -> dict[str, int]:
    """Rebuild the materialised totals by division level and month/quarter/year."""
    if actor.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only administrators rebuild analytics")
    return {"rows": an.rebuild_analytics(session)}


@router.get("/scorecards", response_model=Page, tags=TAG, summary="List scorecards")
def list_scorecards(session: SessionDep, actor: ActorDep, offset: Offset = 0,
                    limit: Limit = 100) -> Page:
    """Scorecards with their weighted indicators."""
    ensure_catalogue(session)
    total = session.scalar(select(func.count(Scorecard.id))) or 0
    rows = session.scalars(select(Scorecard).order_by(Scorecard.code).offset(offset)
                           .limit(limit))
    return Page(total=total, offset=offset, limit=limit,
                items=[scorecard_dict(r) for r in rows])


@router.put("/scorecards/{code}", tags=TAG, summary="Create or change a scorecard (admin)")
def put_scorecard(code: str, data: ScorecardIn, session: SessionDep,
                  actor: ActorDep) -> dict[str, Any]:
    """Save a scorecard's weighted indicators and facility types (422 names the field)."""
    ensure_catalogue(session)
    return scorecard_dict(save_scorecard(session, actor, {"code": code, **data.model_dump()}))


@router.get("/scorecards/{code}", tags=TAG, summary="Score and rank facilities")
def get_scorecard(code: str, session: SessionDep, actor: ActorDep,
                  unit: Annotated[str, Query()], period: Annotated[str, Query()]
                  ) -> dict[str, Any]:
    """Weighted achievement of each facility of the scorecard's types, ranked."""
    ensure_catalogue(session)
    return an.scorecard(session, actor, code=code, unit=unit, period=period)
