"""Helpers shared by the immunisation services: keyed digests, paging, scope, write start."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor
from tiercare.errors import InputError, NotFoundError, Problem
from tiercare.identity import identity_digest, mask_identity_number, parse_identity_number
from tiercare.immunization.models import VaccinationSite

BIRTH_CERTIFICATE = re.compile(r"^[A-Z]\d{9}$")
"""Number of a medical birth certificate (出生医学证明): one letter and nine digits."""
PHONE = re.compile(r"^\+?\d{7,15}$")
WRITERS = frozenset({"admin", "facility_staff", "village_doctor", "group_manager"})
"""Roles that vaccinate or run sites: only they change records, sessions and releases."""


def keyed_digest(kind: str, value: str, *, secret: str) -> str:
    """HMAC-SHA256 (hex) of ``kind:value`` — for phones and certificate numbers."""
    return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def normalise_phone(text: str) -> str:
    """Digits of a phone number (a leading ``+86`` kept as ``86``)."""
    return re.sub(r"[^\d]", "", text or "")


def phone_digest(text: str, *, secret: str) -> str:
    """Keyed digest of a normalised phone number (empty for no phone)."""
    digits = normalise_phone(text)
    return keyed_digest("phone", digits, secret=secret) if digits else ""


def mask_phone(text: str) -> str:
    """``138****5678`` style."""
    return text[:3] + "****" + text[-4:] if len(text) >= 8 else "*" * len(text)


def person_identity(number: str, *, secret: str, field: str = "identity_number",
                    row: int | None = None) -> tuple[str, str, str, str]:
    """Validate a resident identity number or a birth-certificate number.

    Returns
    -------
    tuple
        ``(kind, normalised number, masked, digest)``; resident identity numbers use the same
        digest as the resident index so a child or guardian links to its resident record.

    Raises
    ------
    InputError
        Neither a valid GB 11643 number nor a birth-certificate number.
    """
    value = (number or "").strip().upper()
    if BIRTH_CERTIFICATE.match(value):
        masked = value[:2] + "*" * 4 + value[-4:]
        return "birth_certificate", value, masked, keyed_digest("birthcert", value, secret=secret)
    try:
        ident = parse_identity_number(value)
    except InputError as exc:
        reason = "; ".join(p.reason for p in exc.problems)
        raise InputError([Problem(reason=reason + " (or a birth-certificate number A123456789)",
                                  field=field, row=row, code="invalid_identity")]) from exc
    return ("resident_id", ident.number, mask_identity_number(ident.number),
            identity_digest(ident.number, secret=secret))


def site_by_code(session: Session, code: str, *, field: str = "site") -> VaccinationSite:
    """The site with that code.

    Raises
    ------
    InputError
        Unknown code (naming ``field``).
    """
    site = session.scalar(select(VaccinationSite).where(VaccinationSite.code == code.strip()))
    if site is None:
        raise InputError.single(f"unknown vaccination site '{code}'", field=field,
                                code="unknown_site")
    return site


def in_scope(actor: Actor, site: VaccinationSite) -> bool:
    """A site is in scope when its division lies in the actor's subtree or it is theirs."""
    if actor.facility_id is not None and site.facility_id == actor.facility_id:
        return True
    return site.division_prefix.startswith(actor.division_prefix)


def require_site(actor: Actor, site: VaccinationSite) -> None:
    """404 for a site outside the actor's scope."""
    if not in_scope(actor, site):
        raise NotFoundError(f"vaccination site {site.code}")


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime (SQLite returns naive values that were stored as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def begin_write(session: Session) -> None:
    """End any read-only transaction so that the next statement starts a writing one.

    On SQLite (WAL) a transaction that has read and then tries to write fails at once if another
    writer committed in between; a transaction whose first statement is a write waits for the
    lock instead. PostgreSQL needs nothing.
    """
    if session.get_bind().dialect.name == "sqlite" and session.in_transaction():
        session.commit()
