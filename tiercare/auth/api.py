"""Authentication API: tokens, the current user, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query
from sqlalchemy import func, select

from tiercare.auth.models import AuditEntry, User
from tiercare.auth.service import authenticate, issue_token
from tiercare.registry.schemas import Page
from tiercare.web.deps import ActorDep, Limit, Offset, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", summary="Log in and get a bearer token")
def login_for_token(session: SessionDep, settings: SettingsDep,
                    username: Annotated[str, Form()], password: Annotated[str, Form()]) -> dict:
    """Exchange a username and password for a bearer token (OAuth2 password form)."""
    user = authenticate(session, username, password)
    if user is None:
        raise HTTPException(401, "wrong username or password")
    token = issue_token(session, user, hours=settings.token_hours, label="api")
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.token_hours * 3600}


@router.get("/auth/me", summary="Who am I")
def me(session: SessionDep, actor: ActorDep) -> dict:
    """The caller's user name, role and scope."""
    user = session.get(User, actor.user_id)
    return {"username": actor.username, "role": actor.role,
            "full_name": user.full_name if user else "",
            "division_prefix": actor.division_prefix, "facility_id": actor.facility_id}


@router.get("/audit", response_model=Page, summary="Audit log (administrators)")
def audit_log(session: SessionDep, actor: ActorDep,
              entity: Annotated[str | None, Query(description="e.g. facility")] = None,
              offset: Offset = 0, limit: Limit = 50) -> Page:
    """Who changed or read what, newest first."""
    if actor.role != "admin":
        raise HTTPException(403, "only administrators read the audit log")
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if entity:
        query = query.where(AuditEntry.entity == entity)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.offset(offset).limit(limit))
    items = [{"at": r.at.isoformat(), "username": r.username, "action": r.action,
              "entity": r.entity, "entity_id": r.entity_id, "before": r.before,
              "after": r.after, "detail": r.detail} for r in rows]
    return Page(total=total, offset=offset, limit=limit, items=items)
