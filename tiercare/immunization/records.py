"""Children, vaccination records, transfers, AEFI follow-up and the family look-up.

Every write is audited with before/after, every read of a child's record audited as ``read``
(lists as ``list`` with the ids shown). Identity numbers leave this module unmasked only for
roles with :attr:`~tiercare.auth.service.Actor.sees_identifiers`. The family look-up is checked
against the guardian's registered phone or a one-time code and audited as actor ``family``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import InputError, NotFoundError, Problem
from tiercare.immunization.common import (
    PHONE,
    as_utc,
    keyed_digest,
    mask_phone,
    normalise_phone,
    person_identity,
    phone_digest,
    require_site,
    site_by_code,
)
from tiercare.immunization.forecast import Child as EngineChild
from tiercare.immunization.forecast import Forecast, HistoryDose, TbTest, forecast
from tiercare.immunization.models import (
    Child,
    FamilyCode,
    ImmunizationRecord,
    Transfer,
    VaccinationSite,
)
from tiercare.immunization.schedule import default_schedules
from tiercare.paging import check_window
from tiercare.registry.models import Division
from tiercare.residents.models import Resident

ROUTES = ("IM", "SC", "ID", "PO", "IN")
"""Routes of administration: intramuscular, subcutaneous, intradermal, oral, intranasal."""
BODY_SITES = ("left_arm", "right_arm", "left_thigh", "right_thigh", "mouth", "nose")
FAMILY = Actor(user_id=None, username="family", role="family")
CODE_MINUTES = 10
"""Lifetime of a one-time family look-up code."""
MAX_FAILED_LOOKUPS = 5
"""Refused family look-ups of one child within an hour before further attempts are refused."""


class ChildIn(BaseModel):
    """A child registered at birth or on arrival."""

    name: str = Field(min_length=1, max_length=64)
    identity_number: str = Field(
        description="Resident identity number (18 characters) or birth-certificate number")
    sex: Literal["M", "F"] | None = Field(
        default=None, description="Required with a birth-certificate number")
    birth_date: dt.date | None = Field(
        default=None, description="Required with a birth-certificate number")
    village_code: str = Field(description="12-digit code of the village of residence")
    site_code: str = Field(description="Responsible vaccination site")
    guardian_name: str = Field(default="", max_length=64)
    guardian_relation: str = Field(default="mother", max_length=16)
    guardian_phone: str = Field(default="", max_length=32)
    guardian_identity_number: str | None = Field(
        default=None, description="Links the guardian to the resident index when registered")
    registered_how: Literal["birth", "arrival"] = "birth"
    mother_hbsag: Literal["positive", "negative", "unknown"] | None = None
    birth_weight_g: float | None = Field(default=None, gt=0, lt=10_000)


class DoseIn(BaseModel):
    """A dose given (recorded at the site)."""

    child_id: int
    vaccine: str
    given_on: dt.date
    site_code: str
    dose_number: int | None = Field(default=None, ge=1, le=10)
    vaccinator: str = Field(default="", max_length=64)
    lot: str = Field(default="", max_length=32)
    manufacturer: str = Field(default="", max_length=64)
    route: str = Field(default="", description="IM, SC, ID, PO or IN")
    body_site: str = Field(default="", description="left_arm, right_arm, left_thigh, …")
    source_id: str | None = Field(default=None, max_length=64,
                                  description="The site's own record id (stable key)")


class AefiIn(BaseModel):
    """Adverse event following immunisation and its follow-up."""

    onset_on: dt.date
    symptoms: str = Field(min_length=1, max_length=500)
    severity: Literal["mild", "moderate", "severe"]
    reported_on: dt.date
    outcome: Literal["recovered", "recovering", "sequelae", "died", "unknown"] = "unknown"
    follow_up: str = Field(default="", max_length=1000)


def record_key(*, site_code: str, source_id: str | None, child_digest: str, vaccine: str,
               given_on: dt.date) -> str:
    """The stable key of a record (see :class:`~tiercare.immunization.models.ImmunizationRecord`).

    >>> record_key(site_code="S1", source_id="42", child_digest="ab", vaccine="HepB",
    ...            given_on=dt.date(2025, 1, 2))
    'S1:42'
    """
    if source_id:
        return f"{site_code}:{source_id}"
    raw = f"{child_digest}|{vaccine}|{given_on.isoformat()}".encode()
    return "d:" + hashlib.sha256(raw).hexdigest()[:40]


def child_dict(c: Child, actor: Actor, *, session: Session | None = None) -> dict[str, Any]:
    """A child as plain data; identity number and phone masked unless the actor may see them."""
    out: dict[str, Any] = {
        "id": c.id, "name": c.name, "sex": c.sex, "birth_date": c.birth_date.isoformat(),
        "id_kind": c.id_kind,
        "identity_number": c.id_number if actor.sees_identifiers else c.id_masked,
        "identity_masked": c.id_masked, "village_code": c.village_code,
        "guardian_name": c.guardian_name, "guardian_relation": c.guardian_relation,
        "guardian_phone": c.guardian_phone if actor.sees_identifiers
        else mask_phone(c.guardian_phone),
        "guardian_resident_id": c.guardian_resident_id, "resident_id": c.resident_id,
        "registered_how": c.registered_how, "registered_on": c.registered_on.isoformat(),
        "mother_hbsag": c.mother_hbsag, "birth_weight_g": c.birth_weight_g,
        "active": c.active, "site_code": None,
    }
    if session is not None:
        site = session.get(VaccinationSite, c.site_id)
        out["site_code"] = site.code if site else None
    return out


def record_dict(r: ImmunizationRecord, *, site_code: str | None = None) -> dict[str, Any]:
    """A record as plain data."""
    return {"id": r.id, "record_key": r.record_key, "child_id": r.child_id,
            "vaccine": r.vaccine, "dose_number": r.dose_number,
            "given_on": r.given_on.isoformat(), "site_code": site_code,
            "vaccinator": r.vaccinator, "lot": r.lot, "manufacturer": r.manufacturer,
            "route": r.route, "body_site": r.body_site, "aefi": r.aefi}


def _village(session: Session, code: str, problems: list[Problem]) -> None:
    if session.scalar(select(Division.id).where(Division.code == code.strip())) is None:
        problems.append(Problem(reason=f"unknown division '{code}'", field="village_code",
                                code="unknown_division"))


def register_child(session: Session, actor: Actor, data: ChildIn, *, secret: str,
                   today: dt.date | None = None) -> Child:
    """Validate and store a new child.

    With a resident identity number the sex and birth date come from the number (given values
    must agree); the child is linked to its resident record when one exists, and the guardian
    to theirs when ``guardian_identity_number`` is given.

    Raises
    ------
    InputError
        Every problem found: bad identity, disagreeing sex/birth date, unknown village or site,
        birth date in the future, bad phone, unknown guardian.
    ConflictError
        Never; a child already registered is reported as an :class:`InputError` with code
        ``duplicate``.
    """
    today = today or dt.date.today()
    problems: list[Problem] = []
    kind = number = masked = digest = ""
    sex, birth = data.sex, data.birth_date
    try:
        kind, number, masked, digest = person_identity(data.identity_number, secret=secret)
    except InputError as exc:
        problems.extend(exc.problems)
    if kind == "resident_id":
        code_sex = "M" if int(number[16]) % 2 == 1 else "F"
        code_birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        if sex is not None and sex != code_sex:
            problems.append(Problem(reason=f"sex {sex} disagrees with the identity number",
                                    field="sex"))
        if birth is not None and birth != code_birth:
            problems.append(Problem(reason="birth date disagrees with the identity number",
                                    field="birth_date"))
        sex, birth = code_sex, code_birth
    elif kind == "birth_certificate":
        if sex is None:
            problems.append(Problem(reason="required with a birth-certificate number",
                                    field="sex"))
        if birth is None:
            problems.append(Problem(reason="required with a birth-certificate number",
                                    field="birth_date"))
    if birth is not None and birth > today:
        problems.append(Problem(reason="birth date is in the future", field="birth_date"))
    if birth is not None and (today - birth).days > 18 * 366:
        problems.append(Problem(reason="the register holds children under 18",
                                field="birth_date"))
    _village(session, data.village_code, problems)
    site = None
    try:
        site = site_by_code(session, data.site_code, field="site_code")
        require_site(actor, site)
    except InputError as exc:
        problems.extend(exc.problems)
    phone = normalise_phone(data.guardian_phone)
    if phone and not PHONE.match(phone):
        problems.append(Problem(reason="not a phone number", field="guardian_phone"))
    guardian_id = None
    if data.guardian_identity_number:
        try:
            gkind, _, _, gdigest = person_identity(data.guardian_identity_number, secret=secret,
                                                   field="guardian_identity_number")
            guardian = session.scalar(select(Resident).where(Resident.id_digest == gdigest))
            if gkind != "resident_id" or guardian is None:
                problems.append(Problem(reason="no registered resident with this number",
                                        field="guardian_identity_number",
                                        code="unknown_resident"))
            else:
                guardian_id = guardian.id
                phone = phone or normalise_phone(guardian.phone)
        except InputError as exc:
            problems.extend(exc.problems)
    if digest and session.scalar(select(Child.id).where(Child.id_digest == digest)) is not None:
        problems.append(Problem(reason="a child with this identity is registered already",
                                field="identity_number", code="duplicate"))
    if problems or site is None or birth is None or sex is None:
        raise InputError(problems)
    resident_id = session.scalar(select(Resident.id).where(Resident.id_digest == digest))
    child = Child(
        name=data.name.strip(), sex=sex, birth_date=birth, id_kind=kind, id_masked=masked,
        id_digest=digest, id_number=number, resident_id=resident_id,
        guardian_resident_id=guardian_id, guardian_name=data.guardian_name.strip(),
        guardian_relation=data.guardian_relation, guardian_phone=phone,
        guardian_phone_digest=phone_digest(phone, secret=secret),
        village_code=data.village_code.strip(), site_id=site.id,
        registered_how=data.registered_how, registered_on=today,
        mother_hbsag=data.mother_hbsag, birth_weight_g=data.birth_weight_g,
    )
    session.add(child)
    session.flush()
    audit(session, actor, "create", "imm_child", str(child.id),
          after={"name": child.name, "village_code": child.village_code,
                 "site": site.code, "identity": masked})
    return child


def _may_read(actor: Actor, session: Session, c: Child) -> bool:
    if actor.covers_division(c.village_code):
        return True
    site = session.get(VaccinationSite, c.site_id)
    return site is not None and actor.facility_id is not None and \
        site.facility_id == actor.facility_id


def get_child(session: Session, actor: Actor, child_id: int, *, purpose: str = "") -> Child:
    """Read one child (audited ``read``); 404 outside the actor's scope."""
    c = session.get(Child, child_id)
    if c is None or not _may_read(actor, session, c):
        raise NotFoundError(f"child {child_id}")
    audit(session, actor, "read", "imm_child", str(c.id), detail=purpose)
    return c


def find_child(session: Session, actor: Actor, number: str, *, secret: str) -> Child:
    """Look a child up by identity or birth-certificate number (keyed digest; audited)."""
    _, _, _, digest = person_identity(number, secret=secret)
    c = session.scalar(select(Child).where(Child.id_digest == digest))
    if c is None or not _may_read(actor, session, c):
        raise NotFoundError("child with this identity")
    audit(session, actor, "read", "imm_child", str(c.id), detail="lookup by identity")
    return c


def list_children(session: Session, actor: Actor, *, site: str | None = None,
                  village: str | None = None, q: str | None = None, offset: int = 0,
                  limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Children in the actor's scope (identity masked in lists; the ids shown are audited)."""
    check_window(offset, limit)
    query = select(Child).where(actor.division_clause(Child.village_code),
                                Child.active.is_(True)).order_by(Child.id)
    if site:
        query = query.where(Child.site_id == site_by_code(session, site).id)
    if village:
        query = query.where(Child.village_code.like(village.strip() + "%"))
    if q:
        query = query.where(Child.name.contains(q.strip()))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    if rows:
        audit(session, actor, "list", "imm_child", "",
              detail="ids " + ",".join(str(c.id) for c in rows))
    masked = Actor(actor.user_id, actor.username, "planner", actor.division_prefix,
                   actor.facility_id)
    return total or 0, [child_dict(c, masked, session=session) for c in rows]


def transfer_child(session: Session, actor: Actor, child_id: int, *, to_site_code: str,
                   village_code: str | None = None, reason: str = "") -> Transfer:
    """Move a child to another responsible site (and village when it moved house)."""
    c = get_child(session, actor, child_id, purpose="transfer")
    target = site_by_code(session, to_site_code, field="to_site_code")
    problems: list[Problem] = []
    if target.id == c.site_id:
        problems.append(Problem(reason="the child is already at this site",
                                field="to_site_code", code="same_site"))
    if village_code:
        _village(session, village_code, problems)
    if problems:
        raise InputError(problems)
    before = {"site_id": c.site_id, "village_code": c.village_code}
    move = Transfer(child_id=c.id, from_site_id=c.site_id, to_site_id=target.id,
                    village_code=village_code, username=actor.username, reason=reason)
    c.site_id = target.id
    if village_code:
        c.village_code = village_code.strip()
    session.add(move)
    session.flush()
    audit(session, actor, "transfer", "imm_child", str(c.id), before=before,
          after={"site_id": c.site_id, "village_code": c.village_code}, detail=reason)
    return move


def check_dose_fields(*, vaccine: str, given_on: dt.date | None, birth: dt.date,
                      route: str, body_site: str, today: dt.date,
                      row: int | None = None) -> list[Problem]:
    """Problems of one dose's fields (vaccine code, date, route, body site)."""
    problems: list[Problem] = []
    if vaccine not in default_schedules().vaccines:
        problems.append(Problem(reason=f"unknown vaccine {vaccine!r}", field="vaccine", row=row,
                                code="unknown_vaccine"))
    if given_on is None:
        problems.append(Problem(reason="not a date YYYY-MM-DD", field="date", row=row,
                                code="invalid_date"))
    elif given_on > today:
        problems.append(Problem(reason="date is in the future", field="date", row=row,
                                code="future_date"))
    elif given_on < birth:
        problems.append(Problem(reason="dose before the child's birth", field="date", row=row,
                                code="before_birth"))
    if route and route not in ROUTES:
        problems.append(Problem(reason=f"route must be one of {', '.join(ROUTES)}",
                                field="route", row=row))
    if body_site and body_site not in BODY_SITES:
        problems.append(Problem(reason=f"injection site must be one of {', '.join(BODY_SITES)}",
                                field="body_site", row=row))
    return problems


def record_dose(session: Session, actor: Actor, data: DoseIn, *,
                today: dt.date | None = None) -> tuple[ImmunizationRecord, bool]:
    """Record a dose given; returns ``(record, created)`` — the same dose again is not added.

    Raises
    ------
    InputError
        Unknown vaccine, date in the future or before birth, bad route or injection site,
        unknown site.
    NotFoundError
        Child or site outside the actor's scope.
    """
    today = today or dt.date.today()
    c = get_child(session, actor, data.child_id, purpose="record dose")
    site = site_by_code(session, data.site_code, field="site_code")
    require_site(actor, site)
    problems = check_dose_fields(vaccine=data.vaccine, given_on=data.given_on,
                                 birth=c.birth_date, route=data.route,
                                 body_site=data.body_site, today=today)
    if problems:
        raise InputError(problems)
    key = record_key(site_code=site.code, source_id=data.source_id, child_digest=c.id_digest,
                     vaccine=data.vaccine, given_on=data.given_on)
    existing = session.scalar(select(ImmunizationRecord).where(
        ImmunizationRecord.record_key == key))
    if existing is not None:
        return existing, False
    rec = ImmunizationRecord(
        record_key=key, child_id=c.id, vaccine=data.vaccine, dose_number=data.dose_number,
        given_on=data.given_on, site_id=site.id, vaccinator=data.vaccinator, lot=data.lot,
        manufacturer=data.manufacturer, route=data.route, body_site=data.body_site)
    session.add(rec)
    session.flush()
    audit(session, actor, "create", "imm_record", str(rec.id),
          after=record_dict(rec, site_code=site.code))
    return rec, True


def record_aefi(session: Session, actor: Actor, record_id: int, data: AefiIn) -> ImmunizationRecord:
    """Attach (or update) the adverse-event follow-up of a record."""
    rec = session.get(ImmunizationRecord, record_id)
    if rec is None:
        raise NotFoundError(f"record {record_id}")
    get_child(session, actor, rec.child_id, purpose="AEFI")
    if data.onset_on < rec.given_on:
        raise InputError.single("onset before the dose", field="onset_on")
    before = rec.aefi
    rec.aefi = data.model_dump(mode="json")
    audit(session, actor, "update", "imm_record", str(rec.id), before={"aefi": before},
          after={"aefi": rec.aefi})
    return rec


def child_records(session: Session, child_id: int) -> list[ImmunizationRecord]:
    """Records of a child in date order (no audit: callers audited the child read)."""
    return list(session.scalars(select(ImmunizationRecord).where(
        ImmunizationRecord.child_id == child_id).order_by(ImmunizationRecord.given_on,
                                                          ImmunizationRecord.id)))


def engine_child(c: Child, records: list[ImmunizationRecord], *,
                 as_of: dt.date | None = None) -> EngineChild:
    """The schedule engine's view of a child (records after ``as_of`` left out)."""
    history = tuple(HistoryDose(vaccine=r.vaccine, date=r.given_on) for r in records
                    if as_of is None or r.given_on <= as_of)
    tb = (TbTest(date=c.tb_test_date, result=c.tb_test_result)
          if c.tb_test_date is not None and c.tb_test_result else None)
    return EngineChild(birth_date=c.birth_date, history=history, sex=c.sex,
                       mother_hbsag=c.mother_hbsag, birth_weight_g=c.birth_weight_g,
                       tb_test=tb)


def child_forecast(session: Session, actor: Actor, child_id: int, *, as_of: dt.date,
                   include_self_paid: bool = False) -> tuple[Child, Forecast]:
    """Forecast of a registered child on ``as_of`` (audited read)."""
    c = get_child(session, actor, child_id, purpose="forecast")
    if as_of < c.birth_date:
        raise InputError.single("as-of date before the child's birth", field="as_of")
    result = forecast(engine_child(c, child_records(session, c.id), as_of=as_of), as_of=as_of,
                      include_self_paid=include_self_paid)
    return c, result


# --------------------------------------------------------------------------- family look-up


def request_family_code(session: Session, *, identity_number: str, secret: str,
                        now: dt.datetime | None = None) -> tuple[Child, str] | None:
    """Create a one-time code for the guardian's registered phone.

    Returns the child and the code for the SMS gateway, or ``None`` when no child with a
    registered phone matches (the caller answers the same either way, revealing nothing).
    """
    now = now or utcnow()
    _, _, _, digest = person_identity(identity_number, secret=secret)
    c = session.scalar(select(Child).where(Child.id_digest == digest))
    if c is None or not c.guardian_phone:
        audit(session, FAMILY, "code_refused", "imm_child", "", detail="no match")
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(FamilyCode(child_id=c.id, code_digest=keyed_digest("otp", f"{c.id}:{code}",
                                                                   secret=secret),
                           expires_at=now + timedelta(minutes=CODE_MINUTES)))
    audit(session, FAMILY, "code_sent", "imm_child", str(c.id),
          detail=f"to {mask_phone(c.guardian_phone)}")
    return c, code


def family_lookup(session: Session, *, identity_number: str, secret: str,
                  guardian_phone: str | None = None, code: str | None = None,
                  as_of: dt.date | None = None, now: dt.datetime | None = None
                  ) -> dict[str, Any]:
    """A family's view of a child's record and due doses.

    Access needs the child's identity plus the guardian's registered phone or an unexpired,
    unused one-time code. Every attempt is audited (``family_read`` or ``family_denied``); a
    refusal never says which part was wrong. After :data:`MAX_FAILED_LOOKUPS` refusals for a
    child within an hour, every attempt is refused (``family_locked``) for the rest of it.

    Raises
    ------
    NotFoundError
        No match (wrong identity, phone or code).
    """
    now = now or utcnow()
    as_of = as_of or now.date()
    _, _, _, digest = person_identity(identity_number, secret=secret)
    c = session.scalar(select(Child).where(Child.id_digest == digest))
    if c is not None and session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "imm_child", AuditEntry.entity_id == str(c.id),
            AuditEntry.action == "family_denied",
            AuditEntry.at >= now - timedelta(hours=1))) >= MAX_FAILED_LOOKUPS:
        audit(session, FAMILY, "family_locked", "imm_child", str(c.id))
        raise NotFoundError("too many failed attempts for this child: try again in an hour")
    allowed = False
    if c is not None and guardian_phone:
        allowed = bool(c.guardian_phone_digest) and \
            phone_digest(guardian_phone, secret=secret) == c.guardian_phone_digest
    elif c is not None and code:
        wanted = keyed_digest("otp", f"{c.id}:{code.strip()}", secret=secret)
        row = session.scalar(select(FamilyCode).where(
            FamilyCode.child_id == c.id, FamilyCode.code_digest == wanted,
            FamilyCode.used_at.is_(None)))
        if row is not None and as_utc(row.expires_at) >= now:
            row.used_at = now
            allowed = True
    if c is None or not allowed:
        audit(session, FAMILY, "family_denied", "imm_child", str(c.id) if c else "",
              detail="phone" if guardian_phone else "code")
        raise NotFoundError("no child matches this identity and phone or code")
    audit(session, FAMILY, "family_read", "imm_child", str(c.id),
          detail="phone" if guardian_phone else "code")
    records = child_records(session, c.id)
    result = forecast(engine_child(c, records, as_of=as_of), as_of=as_of)
    site = session.get(VaccinationSite, c.site_id)
    return {
        "child": {"id": c.id, "name": c.name, "sex": c.sex,
                  "birth_date": c.birth_date.isoformat(), "identity_masked": c.id_masked,
                  "site_code": site.code if site else None,
                  "site_name": site.name if site else None},
        "records": [{"vaccine": r.vaccine, "dose_number": r.dose_number,
                     "given_on": r.given_on.isoformat(), "lot": r.lot} for r in records],
        "forecast": result.to_json(),
    }
