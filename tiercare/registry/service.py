"""Registry rules for the API and the pages: list, read, create, update, deactivate, assess.

Creates and updates go through the importer's validation (:func:`import_rows`) with a single row,
so a facility created in the web form and one imported from Excel obey the same rules.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session, selectinload

from tiercare.auth.service import Actor, audit
from tiercare.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from tiercare.paging import check_window, fetch_page
from tiercare.registry.codes import normalise_code
from tiercare.registry.importing import CENTRES, FACILITY_LEVELS, import_rows
from tiercare.registry.models import (
    DIVISION_LEVELS,
    Assessment,
    Checklist,
    Division,
    Facility,
    FacilityType,
    MedicalGroup,
    StaffMember,
)
from tiercare.registry.schemas import (
    AssessmentIn,
    ChecklistIn,
    DivisionIn,
    FacilityIn,
    MedicalGroupIn,
    StaffIn,
)

# --------------------------------------------------------------------------- serialisation


def division_dict(d: Division, *, with_boundary: bool = False) -> dict[str, Any]:
    """A division as plain data."""
    out = {
        "code": d.code, "name": d.name, "level": d.level, "prefix": d.prefix,
        "parent_code": d.parent.code if d.parent else None,
        "urban_rural_class": d.urban_rural_class, "population": d.population,
        "population_male": d.population_male, "population_female": d.population_female,
        "population_urban": d.population_urban, "population_rural": d.population_rural,
        "population_by_age": d.population_by_age, "lon": d.lon, "lat": d.lat,
        "has_boundary": d.boundary is not None, "active": d.active,
    }
    if with_boundary:
        out["boundary"] = d.boundary
    return out


def facility_dict(f: Facility) -> dict[str, Any]:
    """A facility as plain data, resources grouped by category."""
    grouped: dict[str, dict[str, int]] = {"beds": {}, "staff": {}, "equipment": {}}
    for r in f.resources:
        grouped.setdefault(r.category, {})[r.item] = r.quantity
    session = object_session(f)
    parent = (session.get(Facility, f.parent_facility_id)
              if session is not None and f.parent_facility_id else None)
    return {
        "code": f.code, "name": f.name, "type": f.type_code, "level": f.level, "grade": f.grade,
        "ownership": f.ownership, "government_run": f.government_run,
        "division_code": f.division.code, "division_name": f.division.name,
        "lon": f.lon, "lat": f.lat, "address": f.address,
        "opened_on": f.opened_on.isoformat() if f.opened_on else None,
        "closed_on": f.closed_on.isoformat() if f.closed_on else None,
        "status": f.status, "services": f.services, "centres": f.centres,
        "building_m2": f.building_m2, "parent_code": parent.code if parent else None,
        "beds": grouped["beds"], "staff": grouped["staff"],
        "equipment": grouped["equipment"], "beds_total": sum(grouped["beds"].values()),
    }


def staff_dict(s: StaffMember) -> dict[str, Any]:
    """A member of staff as plain data."""
    return {
        "code": s.code, "name": s.name, "sex": s.sex, "cadre": s.cadre,
        "qualification": s.qualification, "qualified": s.qualified,
        "registration_number": s.registration_number, "facility_code": s.facility.code,
        "facility_name": s.facility.name, "village_codes": [v.code for v in s.villages],
        "active": s.active,
    }


def group_dict(g: MedicalGroup) -> dict[str, Any]:
    """A medical group with its members."""
    return {
        "code": g.code, "name": g.name, "kind": g.kind, "active": g.active,
        "division_code": g.division.code,
        "lead_facility_code": g.lead_facility.code, "lead_facility_name": g.lead_facility.name,
        "members": [
            {"facility_code": m.facility.code, "facility_name": m.facility.name,
             "type": m.facility.type_code, "role": m.role,
             "village_codes": m.served_village_codes}
            for m in sorted(g.members, key=lambda m: (m.role != "lead", m.facility.code))
        ],
    }


# --------------------------------------------------------------------------- listing


def _subtree_prefix(session: Session, actor: Actor, division: str | None) -> str:
    """Prefix of the requested subtree, intersected with the actor's scope."""
    if not division:
        return actor.division_prefix
    try:
        code12 = normalise_code(division)
    except ValueError as exc:
        raise InputError.single(str(exc), field="division") from exc
    row = session.scalar(select(Division).where(Division.code == code12))
    if row is None:
        raise NotFoundError(f"division {code12}")
    if not row.prefix.startswith(actor.division_prefix):
        if actor.division_prefix.startswith(row.prefix):
            return actor.division_prefix
        raise NotFoundError(f"division {code12}")
    return row.prefix


def list_divisions(session: Session, actor: Actor, *, division: str | None = None,
                   level: str | None = None, q: str | None = None, offset: int = 0,
                   limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Divisions in the actor's scope (optionally a subtree, a level, a name search)."""
    prefix = _subtree_prefix(session, actor, division)
    query = select(Division).where(Division.code.like(prefix + "%")).order_by(Division.code)
    if level:
        if level not in DIVISION_LEVELS:
            raise InputError.single(f"level must be one of {', '.join(DIVISION_LEVELS)}",
                                    field="level")
        query = query.where(Division.level == level)
    if q:
        query = query.where(Division.name.contains(q))
    total, rows = fetch_page(session, query.options(selectinload(Division.parent)),
                             offset=offset, limit=limit)
    return total, [division_dict(d) for d in rows]


def list_facilities(session: Session, actor: Actor, *, division: str | None = None,
                    type: str | None = None, level: str | None = None,  # noqa: A002
                    status: str | None = None, centre: str | None = None,
                    q: str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Facilities in the actor's scope with the usual filters."""
    prefix = _subtree_prefix(session, actor, division)
    query = (
        select(Facility)
        .where(Facility.division_prefix.like(prefix + "%"), actor.facility_clause(Facility))
        .order_by(Facility.code)
        .options(selectinload(Facility.resources), selectinload(Facility.division))
    )
    if type:
        query = query.where(Facility.type_code == type)
    if level:
        if level not in FACILITY_LEVELS:
            raise InputError.single(f"level must be one of {', '.join(sorted(FACILITY_LEVELS))}",
                                    field="level")
        query = query.where(Facility.level == level)
    if status == "active":
        query = query.where(Facility.closed_on.is_(None))
    elif status == "closed":
        query = query.where(Facility.closed_on.is_not(None))
    elif status:
        raise InputError.single("status must be active or closed", field="status")
    if q:
        query = query.where(Facility.name.contains(q) | Facility.code.contains(q))
    if centre:
        # Centres are a JSON list (no portable SQL filter): filter the scope's facilities here,
        # then page, so that ``total`` and the pages agree.
        if centre not in CENTRES:
            raise InputError.single(f"centre must be one of {', '.join(sorted(CENTRES))}",
                                    field="centre")
        check_window(offset, limit)
        matching = [f for f in session.scalars(query) if centre in (f.centres or [])]
        return len(matching), [facility_dict(f) for f in matching[offset:offset + limit]]
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [facility_dict(f) for f in rows]


def list_staff(session: Session, actor: Actor, *, division: str | None = None,
               cadre: str | None = None, facility: str | None = None, offset: int = 0,
               limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Named staff in the actor's scope."""
    prefix = _subtree_prefix(session, actor, division)
    query = (
        select(StaffMember).join(Facility)
        .where(Facility.division_prefix.like(prefix + "%"), actor.facility_clause(Facility))
        .order_by(StaffMember.code)
        .options(selectinload(StaffMember.villages), selectinload(StaffMember.facility))
    )
    if cadre:
        query = query.where(StaffMember.cadre == cadre)
    if facility:
        query = query.where(Facility.code == facility)
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [staff_dict(s) for s in rows]


def list_groups(session: Session, actor: Actor, *, offset: int = 0,
                limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Medical groups whose county lies in the actor's scope."""
    query = (
        select(MedicalGroup)
        .where(MedicalGroup.division_prefix.like(actor.division_prefix + "%"))
        .order_by(MedicalGroup.code)
    )
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [group_dict(g) for g in rows]


def facility_types(session: Session) -> list[dict[str, Any]]:
    """The configured facility types."""
    return [
        {"code": t.code, "name_zh": t.name_zh, "name_en": t.name_en, "tier": t.tier,
         "category": t.category}
        for t in session.scalars(select(FacilityType).order_by(FacilityType.sort_order))
    ]


# --------------------------------------------------------------------------- read


def get_division(session: Session, actor: Actor, code: str) -> Division:
    """A division in the actor's scope (404 otherwise)."""
    try:
        code12 = normalise_code(code)
    except ValueError as exc:
        raise InputError.single(str(exc), field="code") from exc
    row = session.scalar(select(Division).where(Division.code == code12))
    if row is None or not actor.covers_division(row.code):
        raise NotFoundError(f"division {code}")
    return row


def get_facility(session: Session, actor: Actor, code: str) -> Facility:
    """A facility in the actor's scope (404 otherwise)."""
    row = session.scalar(
        select(Facility).where(Facility.code == code, actor.facility_clause(Facility),
                               Facility.division_prefix.like(actor.division_prefix + "%"))
    )
    if row is None:
        raise NotFoundError(f"facility {code}")
    return row


def get_staff(session: Session, actor: Actor, code: str) -> StaffMember:
    """A member of staff in the actor's scope."""
    row = session.scalar(select(StaffMember).where(StaffMember.code == code))
    if row is None:
        raise NotFoundError(f"staff {code}")
    get_facility(session, actor, row.facility.code)
    return row


def get_group(session: Session, actor: Actor, code: str) -> MedicalGroup:
    """A medical group in the actor's scope."""
    row = session.scalar(select(MedicalGroup).where(MedicalGroup.code == code))
    if row is None or not row.division_prefix.startswith(actor.division_prefix):
        raise NotFoundError(f"medical group {code}")
    return row


# --------------------------------------------------------------------------- writes


def _cells(values: dict[str, Any]) -> dict[str, str]:
    """Pydantic input → the importer's row of strings."""
    row: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            row[key] = ""
        elif isinstance(value, bool):
            row[key] = "true" if value else "false"
        elif isinstance(value, list):
            row[key] = ";".join(value)
        elif isinstance(value, date):
            row[key] = value.isoformat()
        else:
            row[key] = str(value)
    return row


def _facility_row(data: FacilityIn) -> dict[str, str]:
    values = data.model_dump(exclude={"beds", "staff", "equipment"})
    row = _cells(values)
    for category, counts in (("beds", data.beds), ("staff", data.staff),
                             ("equipment", data.equipment)):
        for item, quantity in counts.items():
            row[f"{category}_{item}"] = str(quantity)
    return row


_KINDS = {
    DivisionIn: ("divisions", lambda d: _cells(d.model_dump())),
    FacilityIn: ("facilities", _facility_row),
    StaffIn: ("staff", lambda d: _cells(d.model_dump())),
    MedicalGroupIn: ("medical_groups", lambda d: _cells(d.model_dump())),
}


def save(session: Session, actor: Actor, data: DivisionIn | FacilityIn | StaffIn | MedicalGroupIn,
         *, create: bool) -> None:
    """Create (must not exist) or update (must exist) one registry entry by code."""
    kind, to_row = _KINDS[type(data)]
    getter = {"divisions": get_division, "facilities": get_facility, "staff": get_staff,
              "medical_groups": get_group}[kind]
    try:
        getter(session, actor, data.code)
        exists = True
    except NotFoundError:
        exists = False
    if create and exists:
        raise ConflictError("duplicate_code", f"{kind} code {data.code} exists already")
    if not create and not exists:
        raise NotFoundError(f"{kind} {data.code}")
    try:
        import_rows(session, kind, [to_row(data)], actor=actor)
    except InputError as exc:
        # One JSON object, not a file: a spreadsheet row number would only confuse.
        raise InputError([replace(p, row=None) for p in exc.problems]) from exc


def deactivate(session: Session, actor: Actor, kind: str, code: str) -> None:
    """Deactivate (divisions, staff, groups) or close today (facilities); history is kept."""
    if not actor.can_edit_registry:
        raise ForbiddenError(f"role '{actor.role}' may not change the registry")
    if kind == "facilities":
        facility = get_facility(session, actor, code)
        if facility.closed_on is None:
            facility.closed_on = date.today()
            audit(session, actor, "deactivate", "facility", str(facility.id),
                  before={"closed_on": None}, after={"closed_on": facility.closed_on.isoformat()})
        return
    getter = {"divisions": get_division, "staff": get_staff, "medical_groups": get_group}[kind]
    obj = getter(session, actor, code)
    if obj.active:
        obj.active = False
        audit(session, actor, "deactivate", kind, str(obj.id), before={"active": True},
              after={"active": False})


# --------------------------------------------------------------------------- checklists


def checklist_in_force(session: Session, code: str, on: date,
                       version: str | None = None) -> Checklist:
    """The checklist version asked for, or the newest one in force on ``on``."""
    query = select(Checklist).where(Checklist.code == code)
    if version:
        query = query.where(Checklist.version == version)
    else:
        query = query.where(Checklist.effective_from <= on).order_by(
            Checklist.effective_from.desc())
    row = session.scalars(query).first()
    if row is None:
        raise InputError.single(f"no checklist '{code}' {version or 'in force on ' + str(on)}",
                                field="checklist_code")
    return row


def checklist_dict(c: Checklist) -> dict[str, Any]:
    """A checklist version as plain data."""
    return {"code": c.code, "version": c.version, "effective_from": c.effective_from.isoformat(),
            "title_zh": c.title_zh, "title_en": c.title_en, "applies_to": c.applies_to,
            "items": c.items, "source": c.source}


def list_checklists(session: Session, *, code: str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Checklist versions (every one, or one checklist's), by code and effective date."""
    query = select(Checklist).order_by(Checklist.code, Checklist.effective_from, Checklist.id)
    if code:
        query = query.where(Checklist.code == code)
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [checklist_dict(c) for c in rows]


def add_checklist_version(session: Session, actor: Actor, data: ChecklistIn) -> Checklist:
    """Store a new checklist version (administrators); earlier versions stay for old reports."""
    if actor.role != "admin":
        raise ForbiddenError("only administrators edit checklists")
    known_types = {t.code for t in session.scalars(select(FacilityType))}
    problems = [f"unknown facility type '{t}'" for t in data.applies_to if t not in known_types]
    codes = [item.code for item in data.items]
    if len(set(codes)) != len(codes):
        problems.append("item codes must be unique")
    if problems:
        raise InputError.single("; ".join(problems), field="applies_to" if known_types else "items")
    exists = session.scalar(select(Checklist).where(Checklist.code == data.code,
                                                    Checklist.version == data.version))
    if exists is not None:
        raise ConflictError("duplicate_version",
                            f"checklist {data.code} version {data.version} exists already")
    row = Checklist(code=data.code, version=data.version, effective_from=data.effective_from,
                    title_zh=data.title_zh, title_en=data.title_en, applies_to=data.applies_to,
                    items=[item.model_dump() for item in data.items], source=data.source)
    session.add(row)
    session.flush()
    audit(session, actor, "create", "checklist", str(row.id),
          after={"code": row.code, "version": row.version, "items": len(row.items)})
    return row


def score_answers(checklist: Checklist, answers: dict[str, bool]) -> tuple[float, list[str]]:
    """Weighted score in percent and the codes of unmet items (unanswered = unmet)."""
    known = {item["code"] for item in checklist.items}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise InputError.single(f"unknown checklist item(s): {', '.join(unknown)}",
                                field="answers")
    total = sum(item.get("weight", 1) for item in checklist.items)
    met = sum(item.get("weight", 1) for item in checklist.items if answers.get(item["code"]))
    unmet = [item["code"] for item in checklist.items if not answers.get(item["code"])]
    return (round(100 * met / total, 1) if total else 0.0), unmet


def record_assessment(session: Session, actor: Actor, data: AssessmentIn) -> Assessment:
    """Score and store an assessment (audited)."""
    if not actor.can_edit_registry:
        raise ForbiddenError(f"role '{actor.role}' may not record assessments")
    facility = get_facility(session, actor, data.facility_code)
    checklist = checklist_in_force(session, data.checklist_code, data.assessed_on,
                                   data.checklist_version)
    if checklist.applies_to and facility.type_code not in checklist.applies_to:
        raise InputError.single(
            f"checklist '{checklist.code}' does not apply to type '{facility.type_code}'",
            field="checklist_code")
    score, unmet = score_answers(checklist, data.answers)
    row = Assessment(facility_id=facility.id, checklist_id=checklist.id,
                     assessed_on=data.assessed_on, assessor=data.assessor,
                     answers=data.answers, score=score, unmet=unmet, notes=data.notes)
    session.add(row)
    session.flush()
    audit(session, actor, "create", "assessment", str(row.id),
          after={"facility": facility.code, "checklist": f"{checklist.code}@{checklist.version}",
                 "score": score, "unmet": unmet})
    return row


def assessment_dict(a: Assessment) -> dict[str, Any]:
    """An assessment as plain data (with the unmet items' wording)."""
    texts = {i["code"]: i for i in a.checklist.items}
    return {
        "id": a.id, "facility_code": a.facility.code, "facility_name": a.facility.name,
        "checklist_code": a.checklist.code, "checklist_version": a.checklist.version,
        "assessed_on": a.assessed_on.isoformat(), "assessor": a.assessor, "score": a.score,
        "unmet": [{"code": c, "text_zh": texts.get(c, {}).get("text_zh", c),
                   "text_en": texts.get(c, {}).get("text_en", c)} for c in a.unmet],
        "notes": a.notes,
    }


def list_assessments(session: Session, actor: Actor, *, facility: str | None = None,
                     offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """Assessments of facilities in the actor's scope, newest first."""
    query = (
        select(Assessment).join(Facility)
        .where(Facility.division_prefix.like(actor.division_prefix + "%"),
               actor.facility_clause(Facility))
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
    )
    if facility:
        query = query.where(Facility.code == facility)
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [assessment_dict(a) for a in rows]
