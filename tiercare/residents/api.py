"""REST API of the resident index under ``/api/v1/residents``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tiercare.registry.schemas import Page
from tiercare.residents import service
from tiercare.residents.service import ResidentIn
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["residents"])


class LookupIn(BaseModel):
    """Look a resident up by identity number (never put it in a URL)."""

    identity_number: str


class MergeIn(BaseModel):
    """Fold a duplicate into the resident in the path."""

    merge_id: int = Field(description="The duplicate record to fold in")
    reason: str = Field(min_length=1, max_length=500)


@router.get("/residents", response_model=Page, summary="List residents of your area (masked)")
def list_residents(session: SessionDep, actor: ActorDep,
                   village: Annotated[str | None, Query(description="Division code prefix")] = None,
                   q: Annotated[str | None, Query(description="Name contains")] = None,
                   offset: Offset = 0, limit: Limit = 50) -> Page:
    """Residents living in the caller's scope; identity numbers are always masked here and
    the listing is audited."""
    total, items = service.list_residents(session, actor, village=village, q=q, offset=offset,
                                          limit=limit)
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("/residents", status_code=201, summary="Register a resident")
def create_resident(data: ResidentIn, session: SessionDep, actor: ActorDep,
                    settings: SettingsDep) -> dict:
    """Validate the identity number (GB 11643: format, birth date, check character) and store
    it protected. 409 ``duplicate_identity`` / ``possible_duplicate``."""
    r = service.register_resident(session, actor, data, secret=settings.secret_key)
    return service.resident_dict(r, actor, session=session)


@router.get("/residents/{resident_id}", summary="Read a resident (audited)")
def read_resident(resident_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """One resident; unmasked identity number only for roles allowed to see it."""
    r = service.get_resident(session, actor, resident_id, purpose="api")
    return service.resident_dict(r, actor, session=session)


@router.post("/residents/lookup", summary="Find a resident by identity number (audited)")
def lookup_resident(data: LookupIn, session: SessionDep, actor: ActorDep,
                    settings: SettingsDep) -> dict:
    """Exact match through the keyed digest; 404 when unknown or outside your scope."""
    r = service.find_by_identity(session, actor, data.identity_number,
                                 secret=settings.secret_key)
    return service.resident_dict(r, actor, session=session)


@router.post("/residents/{resident_id}/merge", summary="Merge a duplicate into this resident")
def merge_resident(resident_id: int, data: MergeIn, session: SessionDep,
                   actor: ActorDep) -> dict:
    """Moves the duplicate's appointments and referrals; the duplicate stays, inactive."""
    r = service.merge_residents(session, actor, keep_id=resident_id, merge_id=data.merge_id,
                                reason=data.reason)
    return service.resident_dict(r, actor, session=session)
