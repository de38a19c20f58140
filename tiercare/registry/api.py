"""REST API of the registry under ``/api/v1``."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Path, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from tiercare.errors import InputError
from tiercare.registry import service
from tiercare.registry.exporting import write_template
from tiercare.registry.importing import KINDS, TABLE_KINDS, import_upload
from tiercare.registry.reports import blank_spot_summary, blank_spots, supply
from tiercare.registry.schemas import (
    AssessmentIn,
    ChecklistIn,
    DivisionIn,
    FacilityIn,
    ImportReport,
    MedicalGroupIn,
    Page,
    StaffIn,
)
from tiercare.web.deps import ActorDep, EditorDep, Limit, Offset, SessionDep

router = APIRouter(prefix="/api/v1")

DivisionFilter = Annotated[str | None, Query(description="Only this division's subtree (code)")]
DivisionCode = Annotated[str, Path(description="Division code (2, 4, 6, 9 or 12 digits)",
                                   examples=["140725"])]
FacilityCode = Annotated[str, Path(description="Facility code")]
StaffCode = Annotated[str, Path(description="Staff member's code")]
GroupCode = Annotated[str, Path(description="Medical group code")]


def _page(total: int, items: list[dict[str, Any]], offset: int, limit: int) -> Page:
    return Page(total=total, offset=offset, limit=limit, items=items)


# ------------------------------------------------------------------ divisions


@router.get("/divisions", response_model=Page, tags=["registry"],
            summary="List divisions (行政区划) in your scope")
def list_divisions(session: SessionDep, actor: ActorDep, division: DivisionFilter = None,
                   level: Annotated[str | None, Query(description="province … village")] = None,
                   q: Annotated[str | None, Query(description="Name contains")] = None,
                   offset: Offset = 0, limit: Limit = 50) -> Page:
    """Divisions of the caller's org-unit subtree, filtered and paginated."""
    total, items = service.list_divisions(session, actor, division=division, level=level, q=q,
                                          offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.get("/divisions/{code}", tags=["registry"], summary="Read a division")
def read_division(code: DivisionCode, session: SessionDep, actor: ActorDep,
                  boundary: bool = Query(False, description="Include the GeoJSON boundary"),
                  ) -> dict:
    """One division, with its children counts."""
    row = service.get_division(session, actor, code)
    out = service.division_dict(row, with_boundary=boundary)
    out["children"] = service.list_divisions(session, actor, division=row.code, limit=1)[0] - 1
    return out


@router.post("/divisions", status_code=201, tags=["registry"], summary="Create a division")
def create_division(data: DivisionIn, session: SessionDep, actor: EditorDep) -> dict:
    """Create a division; its level and parent follow from the code."""
    service.save(session, actor, data, create=True)
    return service.division_dict(service.get_division(session, actor, data.code))


@router.put("/divisions/{code}", tags=["registry"], summary="Update a division")
def update_division(code: DivisionCode, data: DivisionIn, session: SessionDep,
                    actor: EditorDep) -> dict:
    """Replace a division's attributes (the code in the path and body must agree)."""
    _same_code(code, data.code)
    service.save(session, actor, data, create=False)
    return service.division_dict(service.get_division(session, actor, data.code))


@router.delete("/divisions/{code}", status_code=204, tags=["registry"],
               summary="Deactivate a division")
def deactivate_division(code: DivisionCode, session: SessionDep, actor: EditorDep) -> None:
    """Mark a division inactive (kept for history)."""
    service.deactivate(session, actor, "divisions", code)


# ------------------------------------------------------------------ facilities


@router.get("/facility-types", tags=["registry"], summary="Configured facility types")
def list_facility_types(session: SessionDep, actor: ActorDep) -> list[dict]:
    """Facility types (DOMAIN.md §2.1) in display order: the fixed list of the shipped data
    file ``facility_types.csv``, so it is not paginated."""
    return service.facility_types(session)


@router.get("/facilities", response_model=Page, tags=["registry"],
            summary="List facilities in your scope")
def list_facilities(session: SessionDep, actor: ActorDep, division: DivisionFilter = None,
                    type: Annotated[str | None, Query(description="Facility type code")] = None,  # noqa: A002
                    level: Annotated[str | None, Query(description="primary|secondary|tertiary|village")] = None,
                    status: Annotated[str | None, Query(description="active or closed")] = None,
                    centre: Annotated[str | None, Query(description="e.g. stroke")] = None,
                    q: Annotated[str | None, Query(description="Name or code contains")] = None,
                    offset: Offset = 0, limit: Limit = 50) -> Page:
    """Facilities of the caller's scope with filters by subtree, type, level, status, centre."""
    total, items = service.list_facilities(session, actor, division=division, type=type,
                                           level=level, status=status, centre=centre, q=q,
                                           offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.get("/facilities/{code}", tags=["registry"], summary="Read a facility")
def read_facility(code: FacilityCode, session: SessionDep, actor: ActorDep) -> dict:
    """One facility with beds, staff and equipment."""
    return service.facility_dict(service.get_facility(session, actor, code))


@router.post("/facilities", status_code=201, tags=["registry"], summary="Create a facility")
def create_facility(data: FacilityIn, session: SessionDep, actor: EditorDep) -> dict:
    """Create a facility (validated like an import row: division, type, coordinates…)."""
    service.save(session, actor, data, create=True)
    return service.facility_dict(service.get_facility(session, actor, data.code))


@router.put("/facilities/{code}", tags=["registry"], summary="Update a facility")
def update_facility(code: FacilityCode, data: FacilityIn, session: SessionDep,
                    actor: EditorDep) -> dict:
    """Update a facility; resources named in the body are set, others kept."""
    _same_code(code, data.code)
    service.save(session, actor, data, create=False)
    return service.facility_dict(service.get_facility(session, actor, data.code))


@router.delete("/facilities/{code}", status_code=204, tags=["registry"],
               summary="Close a facility")
def close_facility(code: FacilityCode, session: SessionDep, actor: EditorDep) -> None:
    """Set the closing date to today; the facility stays for past reports."""
    service.deactivate(session, actor, "facilities", code)


# ------------------------------------------------------------------ staff


@router.get("/staff", response_model=Page, tags=["registry"], summary="List named staff")
def list_staff(session: SessionDep, actor: ActorDep, division: DivisionFilter = None,
               cadre: Annotated[str | None, Query(description="e.g. village_doctor")] = None,
               facility: Annotated[str | None, Query(description="Facility code")] = None,
               offset: Offset = 0, limit: Limit = 50) -> Page:
    """Village doctors and other named staff in the caller's scope."""
    total, items = service.list_staff(session, actor, division=division, cadre=cadre,
                                      facility=facility, offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.get("/staff/{code}", tags=["registry"], summary="Read a member of staff")
def read_staff(code: StaffCode, session: SessionDep, actor: ActorDep) -> dict:
    """One member of staff with the villages served."""
    return service.staff_dict(service.get_staff(session, actor, code))


@router.post("/staff", status_code=201, tags=["registry"], summary="Create a member of staff")
def create_staff(data: StaffIn, session: SessionDep, actor: EditorDep) -> dict:
    """Create a named member of staff."""
    service.save(session, actor, data, create=True)
    return service.staff_dict(service.get_staff(session, actor, data.code))


@router.put("/staff/{code}", tags=["registry"], summary="Update a member of staff")
def update_staff(code: StaffCode, data: StaffIn, session: SessionDep, actor: EditorDep) -> dict:
    """Update a member of staff."""
    _same_code(code, data.code)
    service.save(session, actor, data, create=False)
    return service.staff_dict(service.get_staff(session, actor, data.code))


@router.delete("/staff/{code}", status_code=204, tags=["registry"],
               summary="Deactivate a member of staff")
def deactivate_staff(code: StaffCode, session: SessionDep, actor: EditorDep) -> None:
    """Mark a member of staff inactive."""
    service.deactivate(session, actor, "staff", code)


# ------------------------------------------------------------------ medical groups


@router.get("/medical-groups", response_model=Page, tags=["registry"],
            summary="List medical groups (医共体/医联体)")
def list_groups(session: SessionDep, actor: ActorDep, offset: Offset = 0,
                limit: Limit = 50) -> Page:
    """Medical groups with their members."""
    total, items = service.list_groups(session, actor, offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.get("/medical-groups/{code}", tags=["registry"], summary="Read a medical group")
def read_group(code: GroupCode, session: SessionDep, actor: ActorDep) -> dict:
    """One medical group with members and the villages each serves."""
    return service.group_dict(service.get_group(session, actor, code))


@router.post("/medical-groups", status_code=201, tags=["registry"],
             summary="Create a medical group")
def create_group(data: MedicalGroupIn, session: SessionDep, actor: EditorDep) -> dict:
    """Create a medical group (members are added by importing group_members)."""
    service.save(session, actor, data, create=True)
    return service.group_dict(service.get_group(session, actor, data.code))


@router.put("/medical-groups/{code}", tags=["registry"], summary="Update a medical group")
def update_group(code: GroupCode, data: MedicalGroupIn, session: SessionDep,
                 actor: EditorDep) -> dict:
    """Update a medical group."""
    _same_code(code, data.code)
    service.save(session, actor, data, create=False)
    return service.group_dict(service.get_group(session, actor, data.code))


@router.delete("/medical-groups/{code}", status_code=204, tags=["registry"],
               summary="Deactivate a medical group")
def deactivate_group(code: GroupCode, session: SessionDep, actor: EditorDep) -> None:
    """Mark a medical group inactive."""
    service.deactivate(session, actor, "medical_groups", code)


# ------------------------------------------------------------------ checklists


@router.get("/checklists", response_model=Page, tags=["standards"],
            summary="List standardisation checklist versions")
def list_checklists(session: SessionDep, actor: ActorDep,
                    code: Annotated[str | None, Query(description="Only this checklist's "
                                                      "versions, e.g. village_clinic")] = None,
                    offset: Offset = 0, limit: Limit = 50) -> Page:
    """Checklist versions with their items (village clinic, fever clinic, vaccination
    site…), by code and effective date; administrators add versions, so the list grows."""
    total, items = service.list_checklists(session, code=code, offset=offset, limit=limit)
    return _page(total, items, offset, limit)


@router.post("/checklists", status_code=201, tags=["standards"],
             summary="Add a checklist version (administrators)")
def add_checklist(data: ChecklistIn, session: SessionDep, actor: EditorDep) -> dict:
    """A new version with its effective date; assessments use the version in force."""
    return service.checklist_dict(service.add_checklist_version(session, actor, data))


@router.get("/assessments", response_model=Page, tags=["standards"],
            summary="Assessments of facilities")
def list_assessments(session: SessionDep, actor: ActorDep,
                     facility: Annotated[str | None, Query(description="Facility code")] = None,
                     offset: Offset = 0, limit: Limit = 50) -> Page:
    """Assessments, newest first, with score and unmet items."""
    total, items = service.list_assessments(session, actor, facility=facility, offset=offset,
                                            limit=limit)
    return _page(total, items, offset, limit)


@router.post("/assessments", status_code=201, tags=["standards"],
             summary="Record an assessment")
def create_assessment(data: AssessmentIn, session: SessionDep, actor: EditorDep) -> dict:
    """Score a facility against the checklist in force on the assessment date."""
    return service.assessment_dict(service.record_assessment(session, actor, data))


# ------------------------------------------------------------------ imports and templates


@router.post("/imports/{kind}", response_model=ImportReport, tags=["import"],
             summary="Import a registry file (all or nothing)",
             responses={422: {"description": "Every bad row: row, field, reason"}})
async def import_file(kind: Annotated[str, Path(description=f"One of: {', '.join(KINDS)}")],
                      session: SessionDep, actor: EditorDep,
                      file: UploadFile = File(..., description="CSV, .xlsx, GeoJSON or .gpkg")
                      ) -> ImportReport:
    """Validate every row; if any is bad, write nothing and answer 422 with the full report."""
    if kind not in KINDS:
        raise HTTPException(404, f"unknown import kind '{kind}' (one of {', '.join(KINDS)})")
    data = await file.read()
    result = import_upload(session, kind, data, file.filename or "upload.csv", actor=actor)
    return ImportReport(**result.as_dict())


@router.get("/templates/{kind}.{fmt}", tags=["import"], summary="Download an import template")
def download_template(
    kind: Annotated[str, Path(description=f"One of: {', '.join(TABLE_KINDS)}")],
    fmt: Annotated[str, Path(description="csv or xlsx")], actor: ActorDep,
) -> FileResponse:
    """An empty template (.csv or .xlsx with column help) for an import kind."""
    if kind not in TABLE_KINDS or fmt not in {"csv", "xlsx"}:
        raise HTTPException(404, "unknown template")
    folder = FilePath(tempfile.mkdtemp(prefix="tiercare-template-"))
    path = folder / f"{kind}_template.{fmt}"
    write_template(kind, path)
    return FileResponse(path, filename=path.name,
                        background=BackgroundTask(lambda: path.unlink(missing_ok=True)))


# ------------------------------------------------------------------ reports


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError.single(f"'{value}' is not a date (YYYY-MM-DD)", field="as_of") from exc


@router.get("/reports/blank-spots", tags=["reports"], summary="Blank-spot report (空白点)")
def report_blank_spots(
    session: SessionDep, actor: ActorDep, division: DivisionFilter = None,
    as_of: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
    exempt_within_km: Annotated[float | None, Query(ge=0, description="Straight line")] = None,
    exempt_within_minutes: Annotated[float | None, Query(
        ge=0, description="Travel time to the nearest township centre (needs road_network)")]
    = None,
    road_network: Annotated[str | None, Query(description="Stored road network name")] = None,
) -> dict:
    """Counties, townships, villages and clinics missing what the standard asks for.

    A village without a clinic is exempt (and listed with the reason) when it lies within
    ``exempt_within_km`` of a township centre, or within ``exempt_within_minutes`` of one by
    road on ``road_network``.
    """
    minutes = None
    if exempt_within_minutes is not None:
        minutes = _minutes_to_centres(session, actor, road_network, division)
    spots = blank_spots(session, actor, root_code=_root(division), as_of=_as_of(as_of),
                        exempt_within_km=exempt_within_km, minutes_to_township_centre=minutes,
                        exempt_within_minutes=exempt_within_minutes)
    return {"summary": blank_spot_summary(spots), "items": [s.__dict__ for s in spots]}


@router.get("/reports/supply", tags=["reports"], summary="Supply per 1,000 against norms")
def report_supply(session: SessionDep, actor: ActorDep, division: DivisionFilter = None,
                  as_of: Annotated[str | None, Query(description="YYYY-MM-DD")] = None) -> dict:
    """Beds, physicians, nurses, GPs and village doctors per population, and the structure."""
    return supply(session, actor, root_code=_root(division), as_of=_as_of(as_of))


def _minutes_to_centres(session, actor, road_network: str | None,  # type: ignore[no-untyped-def]
                        division: str | None) -> dict[str, float]:
    from sqlalchemy import select

    from tiercare.registry.accessibility import minutes_to_tier
    from tiercare.registry.codes import prefix_of
    from tiercare.scenarios.models import RoadNetwork
    from tiercare.scenarios.service import network_from_layer

    roads = session.scalar(select(RoadNetwork).where(RoadNetwork.name == road_network)) \
        if road_network else None
    if roads is None:
        raise InputError.single("exempt_within_minutes needs a stored road_network",
                                field="road_network")
    network = network_from_layer(roads.geojson, class_field=roads.class_field,
                                 speed_field=roads.speed_field)
    root = _root(division)
    return minutes_to_tier(session, actor, network, root_prefix=prefix_of(root) if root else "")


def _root(division: str | None) -> str | None:
    if division is None:
        return None
    from tiercare.registry.codes import normalise_code

    try:
        return normalise_code(division)
    except ValueError as exc:
        raise InputError.single(str(exc), field="division") from exc


def _same_code(path_code: str, body_code: str) -> None:
    if path_code != body_code and path_code.ljust(12, "0") != body_code.ljust(12, "0"):
        raise InputError.single(f"code in path ({path_code}) and body ({body_code}) differ",
                                field="code", code="code_mismatch")
