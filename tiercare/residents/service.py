"""Rules of the resident index: register, look up, list (masked), merge duplicates.

Every read of a resident's record is audited (action ``read``; lists as ``list`` with the ids
shown), every write audited with before/after. Identity numbers leave this module unmasked only
for roles with :attr:`Actor.sees_identifiers`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.identity import identity_digest, parse_identity_number
from tiercare.paging import check_window
from tiercare.registry.models import Division, Facility, StaffMember
from tiercare.residents.models import Resident, ResidentMerge


class ResidentIn(BaseModel):
    """A resident as registered by a village doctor or a facility."""

    name: str = Field(min_length=1, max_length=64, description="Full name")
    identity_number: str = Field(description="18-character resident identity number")
    sex: str | None = Field(default=None, description="M or F; must agree with the number")
    birth_date: date | None = Field(default=None, description="Must agree with the number")
    phone: str = Field(default="", max_length=32)
    village_code: str = Field(description="12-digit code of the village / community of residence")
    signed_facility_code: str | None = Field(
        default=None, description="Clinic or centre of the family-doctor contract")
    signed_staff_code: str | None = Field(default=None, description="Contracted family doctor")
    allow_similar: bool = Field(
        default=False,
        description="Register even though a resident with the same name, birth date and "
                    "village exists (after checking it is another person)")


def resident_dict(r: Resident, actor: Actor, *, session: Session | None = None,
                  masked: bool = False) -> dict[str, Any]:
    """A resident as plain data; identity number and phone masked unless the actor may see
    them (and always with ``masked``, e.g. in lists)."""
    show = actor.sees_identifiers and not masked
    out: dict[str, Any] = {
        "id": r.id, "name": r.name, "sex": r.sex, "birth_date": r.birth_date.isoformat(),
        "identity_number": r.id_number if show else r.id_masked,
        "identity_masked": r.id_masked, "phone": r.phone if show else
        (r.phone[:3] + "****" + r.phone[-4:] if len(r.phone) >= 8 else r.phone),
        "village_code": r.village_code, "active": r.active, "merged_into_id": r.merged_into_id,
        "signed_facility_code": None, "signed_staff_code": None,
    }
    if session is not None:
        if r.signed_facility_id is not None:
            facility = session.get(Facility, r.signed_facility_id)
            out["signed_facility_code"] = facility.code if facility else None
        if r.signed_staff_id is not None:
            staff = session.get(StaffMember, r.signed_staff_id)
            out["signed_staff_code"] = staff.code if staff else None
    return out


def _village(session: Session, code: str, problems: list[Problem]) -> Division | None:
    division = session.scalar(select(Division).where(Division.code == code.strip()))
    if division is None:
        problems.append(Problem(reason=f"unknown division '{code}'", field="village_code",
                                code="unknown_division"))
    return division


def register_resident(session: Session, actor: Actor, data: ResidentIn, *, secret: str,
                      today: date | None = None) -> Resident:
    """Validate and store a new resident.

    Raises
    ------
    InputError
        Bad identity number (with the reason), sex or birth date disagreeing with it, unknown
        village / facility / staff, a village outside the actor's scope.
    ConflictError
        ``duplicate_identity`` when the number is registered already; ``possible_duplicate``
        when name + birth date + village match another resident (unless ``allow_similar``).
    """
    problems: list[Problem] = []
    ident = None
    try:
        ident = parse_identity_number(data.identity_number, today=today)
    except InputError as exc:
        problems.extend(exc.problems)
    if ident is not None:
        if data.sex is not None and data.sex != ident.sex:
            problems.append(Problem(reason=f"sex {data.sex} disagrees with the identity number "
                                    f"({ident.sex})", field="sex", code="inconsistent"))
        if data.birth_date is not None and data.birth_date != ident.birth_date:
            problems.append(Problem(reason=f"birth date {data.birth_date} disagrees with the "
                                    f"identity number ({ident.birth_date})", field="birth_date",
                                    code="inconsistent"))
    if data.sex is not None and data.sex not in ("M", "F"):
        problems.append(Problem(reason="sex must be M or F", field="sex"))
    village = _village(session, data.village_code, problems)
    if village is not None and not actor.covers_division(village.code):
        problems.append(Problem(reason="village outside your scope", field="village_code",
                                code="out_of_scope"))
    facility_id = staff_id = None
    if data.signed_facility_code:
        facility = session.scalar(select(Facility).where(
            Facility.code == data.signed_facility_code))
        if facility is None:
            problems.append(Problem(reason=f"unknown facility '{data.signed_facility_code}'",
                                    field="signed_facility_code"))
        else:
            facility_id = facility.id
    if data.signed_staff_code:
        staff = session.scalar(select(StaffMember).where(
            StaffMember.code == data.signed_staff_code))
        if staff is None:
            problems.append(Problem(reason=f"unknown staff '{data.signed_staff_code}'",
                                    field="signed_staff_code"))
        else:
            staff_id = staff.id
            facility_id = facility_id or staff.facility_id
    if problems or ident is None or village is None:
        raise InputError(problems)
    digest = identity_digest(ident.number, secret=secret)
    existing = session.scalar(select(Resident).where(Resident.id_digest == digest))
    if existing is not None:
        raise ConflictError("duplicate_identity",
                            f"identity number already registered (resident {existing.id})")
    similar = session.scalar(select(Resident).where(
        Resident.name == data.name.strip(), Resident.birth_date == ident.birth_date,
        Resident.village_code == village.code, Resident.active.is_(True)))
    if similar is not None and not data.allow_similar:
        raise ConflictError("possible_duplicate",
                            f"resident {similar.id} has the same name, birth date and village")
    resident = Resident(
        name=data.name.strip(), sex=ident.sex, birth_date=ident.birth_date,
        id_masked=ident.masked, id_digest=digest, id_number=ident.number, phone=data.phone,
        village_code=village.code, signed_facility_id=facility_id, signed_staff_id=staff_id,
    )
    session.add(resident)
    session.flush()
    audit(session, actor, "create", "resident", str(resident.id),
          after={"name": resident.name, "identity": resident.id_masked,
                 "village": resident.village_code})
    return resident


def _may_read(session: Session, actor: Actor, r: Resident) -> bool:
    """In scope by residence, or the resident has business with the actor's facility."""
    if actor.covers_division(r.village_code):
        return True
    if actor.facility_id is None:
        return False
    from tiercare.referral.models import Referral
    from tiercare.scheduling.models import Appointment

    linked = session.scalar(select(Referral.id).where(
        Referral.resident_id == r.id,
        or_(Referral.to_facility_id == actor.facility_id,
            Referral.from_facility_id == actor.facility_id)).limit(1))
    if linked is not None:
        return True
    return session.scalar(select(Appointment.id).where(
        Appointment.resident_id == r.id,
        Appointment.facility_id == actor.facility_id).limit(1)) is not None


def get_resident(session: Session, actor: Actor, resident_id: int, *,
                 purpose: str = "") -> Resident:
    """Read one resident (audited as ``read``); 404 outside the actor's scope."""
    r = session.get(Resident, resident_id)
    if r is None or not _may_read(session, actor, r):
        raise NotFoundError(f"resident {resident_id}")
    audit(session, actor, "read", "resident", str(r.id), detail=purpose)
    return r


def find_by_identity(session: Session, actor: Actor, number: str, *, secret: str) -> Resident:
    """Look a resident up by identity number (through the keyed digest; audited)."""
    ident = parse_identity_number(number)
    r = session.scalar(select(Resident).where(
        Resident.id_digest == identity_digest(ident.number, secret=secret)))
    if r is None or not _may_read(session, actor, r):
        raise NotFoundError("resident with this identity number")
    audit(session, actor, "read", "resident", str(r.id), detail="lookup by identity number")
    return r


def list_residents(session: Session, actor: Actor, *, village: str | None = None,
                   q: str | None = None, offset: int = 0, limit: int = 50
                   ) -> tuple[int, list[dict[str, Any]]]:
    """Residents living in the actor's scope; identity numbers always masked in lists."""
    check_window(offset, limit)
    query = select(Resident).where(actor.division_clause(Resident.village_code),
                                   Resident.active.is_(True)).order_by(Resident.id)
    if village:
        query = query.where(Resident.village_code.like(village.strip() + "%"))
    if q:
        query = query.where(Resident.name.contains(q.strip()))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    if rows:
        audit(session, actor, "list", "resident", "",
              detail="ids " + ",".join(str(r.id) for r in rows))
    return total or 0, [resident_dict(r, actor, masked=True) for r in rows]


def merge_residents(session: Session, actor: Actor, *, keep_id: int, merge_id: int,
                    reason: str) -> Resident:
    """Fold a duplicate record into the one kept, moving its appointments and referrals.

    The duplicate stays (inactive, ``merged_into_id`` set) and a :class:`ResidentMerge` row
    records what moved, so the history can be traced.
    """
    if keep_id == merge_id:
        raise InputError.single("cannot merge a resident into itself", field="merge_id")
    keep = get_resident(session, actor, keep_id, purpose="merge")
    dup = get_resident(session, actor, merge_id, purpose="merge")
    if not dup.active:
        raise ConflictError("already_merged", f"resident {merge_id} was merged already")
    from tiercare.referral.models import Referral
    from tiercare.scheduling.models import Appointment

    moved_appointments = session.execute(
        update(Appointment).where(Appointment.resident_id == dup.id)
        .values(resident_id=keep.id)).rowcount
    moved_referrals = session.execute(
        update(Referral).where(Referral.resident_id == dup.id)
        .values(resident_id=keep.id)).rowcount
    dup.active = False
    dup.merged_into_id = keep.id
    moved = f"appointments={moved_appointments}; referrals={moved_referrals}"
    session.add(ResidentMerge(kept_id=keep.id, merged_id=dup.id, username=actor.username,
                              reason=reason, moved=moved))
    audit(session, actor, "merge", "resident", str(keep.id),
          before={"merged_id": dup.id}, after={"moved": moved}, detail=reason)
    session.flush()
    return keep
