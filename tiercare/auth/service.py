"""Password hashing, sessions, API tokens, org-unit scope and the audit log."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Select, bindparam, or_, select
from sqlalchemy.orm import Session

from tiercare.auth.models import ApiToken, AuditEntry, User
from tiercare.db.base import utcnow
from tiercare.errors import InputError, NotFoundError, Problem

ROLES = {
    "admin": "Administrator / 管理员",
    "planner": "Planner / analyst / 规划分析",
    "group_manager": "Medical group manager / 医共体管理",
    "facility_staff": "Facility staff / 机构工作人员",
    "village_doctor": "Village doctor / 乡村医生",
}
#: Roles allowed to change the registry (always within their scope).
REGISTRY_EDITORS = {"admin", "planner", "group_manager", "facility_staff"}
#: Roles that may see unmasked personal identifiers.
PII_ROLES = {"admin", "facility_staff", "village_doctor"}

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Actor:
    """Who is acting and what they may see.

    ``division_prefix`` is the significant part of the user's division code ("" = everything);
    ``facility_id`` restricts a facility user to one facility and its sub-units.
    """

    user_id: int | None
    username: str
    role: str
    division_prefix: str = ""
    facility_id: int | None = None

    @property
    def can_edit_registry(self) -> bool:
        """True for roles that may change registry entries in their scope."""
        return self.role in REGISTRY_EDITORS

    @property
    def sees_identifiers(self) -> bool:
        """True for roles that may see unmasked identity numbers."""
        return self.role in PII_ROLES

    def division_clause(self, code_column: Any) -> ColumnElement[bool]:
        """SQL condition: a 12-digit code column lies inside the actor's subtree."""
        return code_column.like(self.division_prefix + "%")

    def facility_clause(self, facility_model: Any) -> ColumnElement[bool]:
        """SQL condition on the facilities table for the actor's scope."""
        if self.facility_id is not None:
            return or_(
                facility_model.id == self.facility_id,
                facility_model.parent_facility_id == self.facility_id,
            )
        return facility_model.division_prefix.like(self.division_prefix + "%")

    def covers_division(self, code12: str) -> bool:
        """True when a division code lies inside the actor's subtree."""
        return code12.startswith(self.division_prefix)


SYSTEM = Actor(user_id=None, username="system", role="admin")


def actor_for(session: Session, user: User) -> Actor:
    """Build the :class:`Actor` of a stored user (resolving the scope's division prefix)."""
    from tiercare.registry.models import Division, Facility

    prefix = ""
    if user.facility_id is not None:
        facility = session.get(Facility, user.facility_id)
        prefix = facility.division_prefix if facility else "-"
    elif user.division_id is not None:
        division = session.get(Division, user.division_id)
        prefix = division.prefix if division else "-"
    return Actor(user.id, user.username, user.role, prefix, user.facility_id)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    full_name: str = "",
    division_code: str | None = None,
    facility_code: str | None = None,
) -> User:
    """Create a user scoped to a division or a facility (none = whole database, admins only)."""
    from tiercare.registry.codes import normalise_code
    from tiercare.registry.models import Division, Facility

    problems: list[Problem] = []
    if role not in ROLES:
        problems.append(Problem(f"unknown role '{role}' (one of {', '.join(ROLES)})",
                                field="role", code="unknown_value"))
    if len(password) < 8:
        problems.append(Problem("password must have at least 8 characters", field="password"))
    if not username.strip():
        problems.append(Problem("is required", field="username", code="missing"))
    elif session.scalar(select(User).where(User.username == username)) is not None:
        problems.append(Problem(f"user '{username}' exists already", field="username",
                                code="duplicate"))
    division_id = facility_id = None
    if division_code:
        try:
            code12 = normalise_code(division_code)
        except ValueError as exc:
            problems.append(Problem(str(exc), field="division", code="bad_code"))
        else:
            division = session.scalar(select(Division).where(Division.code == code12))
            if division is None:
                problems.append(Problem(f"unknown division '{division_code}'", field="division",
                                        code="unknown_division"))
            else:
                division_id = division.id
    if facility_code:
        facility = session.scalar(select(Facility).where(Facility.code == facility_code))
        if facility is None:
            problems.append(Problem(f"unknown facility '{facility_code}'", field="facility",
                                    code="unknown_facility"))
        else:
            facility_id = facility.id
    if not division_code and not facility_code and role != "admin":
        problems.append(Problem("a user other than an administrator needs a division or a "
                                "facility", field="division", code="missing"))
    if problems:
        raise InputError(problems)
    user = User(
        username=username,
        full_name=full_name,
        password_hash=hash_password(password),
        role=role,
        division_id=division_id,
        facility_id=facility_id,
    )
    session.add(user)
    session.flush()
    audit(session, SYSTEM, "create", "user", str(user.id),
          after={"username": username, "role": role})
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not verify_password(user.password_hash, password):
        return None
    return user


def issue_token(session: Session, user: User, *, hours: int, label: str = "") -> str:
    """Create an API bearer token; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            label=label,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    return token


@functools.cache
def _token_actor_statement() -> Select[Any]:
    """Token → user → facility / division in one ``SELECT`` (built once: runs per request)."""
    from tiercare.registry.models import Division, Facility

    token, user = ApiToken.__table__.c, User.__table__.c
    facility, division = Facility.__table__, Division.__table__
    return (
        select(token.expires_at, user.id, user.username, user.role, user.active,
               user.facility_id, user.division_id, facility.c.id.label("facility_found"),
               facility.c.division_prefix, division.c.id.label("division_found"),
               division.c.prefix)
        .select_from(ApiToken.__table__
                     .outerjoin(User.__table__, user.id == token.user_id)
                     .outerjoin(facility, facility.c.id == user.facility_id)
                     .outerjoin(division, division.c.id == user.division_id))
        .where(token.token_sha256 == bindparam("digest")))


def actor_for_token(session: Session, token: str) -> Actor:
    """The :class:`Actor` of an unexpired token of an active user, in one query.

    The scope is the one :func:`actor_for` gives; the token, its user and the user's facility
    or division are read by a single joined ``SELECT`` of plain columns, because this runs on
    every API request.

    Raises
    ------
    NotFoundError
        ``unknown token``, ``token expired`` or ``user inactive``.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = session.execute(_token_actor_statement(), {"digest": digest}).first()
    if row is None:
        raise NotFoundError("unknown token")
    expires = row.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=utcnow().tzinfo)
    if expires < utcnow():
        raise NotFoundError("token expired")
    if row.id is None or not row.active:
        raise NotFoundError("user inactive")
    prefix = ""
    if row.facility_id is not None:
        prefix = row.division_prefix if row.facility_found is not None else "-"
    elif row.division_id is not None:
        prefix = row.prefix if row.division_found is not None else "-"
    return Actor(row.id, row.username, row.role, prefix, row.facility_id)


def audit(
    session: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str = "",
) -> None:
    """Append an entry to the audit log (in the caller's transaction)."""
    session.add(
        AuditEntry(
            user_id=actor.user_id,
            username=actor.username,
            action=action,
            entity=entity,
            entity_id=entity_id,
            before=before,
            after=after,
            detail=detail,
        )
    )
