"""Rules of maternal case management (no HTTP): registration, grading, cases, closure.

State of a pregnancy file::

    screened ──(re-grade)──▶ graded ──▶ delivered ──(42-day assessment)──▶ closed
    awaiting_grading ──────▶ graded         └─ red and not stable: stays delivered (open)

* Registration (建册) at the first antenatal visit records the screening findings and grades them
  with the national table: a non-green (or purple) screen is *positive* and creates the task
  "grade at a secondary-or-higher hospital within ``grading_within_days``".
* Grading and re-grading (any time before delivery) keep the full history. An orange, red or
  purple grade opens the high-risk case file: follow-up plan, report to the county maternal and
  child health (MCH) institution, PMTCT steps for purple. Once opened, a case stays under
  management until it is closed.
* Delivery and the 42-day postpartum assessment close the file, except a red case whose
  condition is not yet stable (its assessment carries ``red_condition_unstable_postpartum``).

Scope: users see pregnancies of women living in their division subtree; staff of a secondary or
tertiary facility (hospitals, the county MCH hospital) serve the whole county of their facility.
Every read of a file is audited (``read``), lists as ``list`` with the ids shown, every write
with before/after. Every function takes the clock ``now`` explicitly (timezone-aware UTC); the
calendar date is taken in ``tz`` (Asia/Shanghai by default).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import Actor, audit
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.maternal.criteria import CriteriaTable, available_tables, load_table
from tiercare.maternal.grading import GradeResult, grade
from tiercare.maternal.models import (
    CaseEvent,
    CaseReport,
    FollowUp,
    MaternalAlert,
    MaternalAssessment,
    Pregnancy,
)
from tiercare.maternal.rules import CaseRules, DeliveryRule, load_case_rules
from tiercare.maternal.schemas import (
    BookingIn,
    DeliveryIn,
    FollowUpDoneIn,
    FollowUpIn,
    GradingIn,
    PlanIn,
    PostpartumIn,
    PregnancyIn,
    StepIn,
    TertiaryAssessmentIn,
)
from tiercare.paging import check_window, fetch_page
from tiercare.registry.models import Division, Facility
from tiercare.residents.models import Resident
from tiercare.residents.service import register_resident

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
GESTATION_DAYS = 280
UNSTABLE_POSTPARTUM_CODE = "red_condition_unstable_postpartum"
HOSPITAL_LEVELS = ("secondary", "tertiary")
#: Roles that record clinical facts (registration, case management, delivery, follow-ups).
CLINICAL_ROLES = frozenset({"admin", "facility_staff", "village_doctor"})
#: Roles that may also acknowledge alerts and confirm receipt of reports (supervision).
SUPERVISING_ROLES = CLINICAL_ROLES | {"group_manager"}
MCH_FACILITY_TYPE = "county_mch_hospital"


# --------------------------------------------------------------------------- helpers


def as_utc(now: dt.datetime) -> dt.datetime:
    """An aware instant converted to UTC (what is stored; SQLite keeps no offset)."""
    if now.tzinfo is None:
        raise InputError.single("the clock must carry a time zone", field="now")
    return now.astimezone(dt.UTC)


def local_date(now: dt.datetime, tz: ZoneInfo = DEFAULT_TZ) -> dt.date:
    """Calendar date of an aware instant in ``tz``."""
    return as_utc(now).astimezone(tz).date()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes (stored UTC); make them aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def table_on(day: dt.date) -> CriteriaTable:
    """The national assessment table in force on ``day``.

    Resolved to the table's own effective date first, so that the loader's cache is hit for
    every day a version is in force.
    """
    starts = [start for start in _national_starts() if start <= day]
    return load_table(on=max(starts) if starts else day)


@functools.lru_cache(maxsize=1)
def _national_starts() -> tuple[dt.date, ...]:
    """Effective dates of the packaged national tables (package data: read once)."""
    return tuple(start for family, _v, start in available_tables() if family == "national")


def _rank(colour: str) -> int:
    ranked = load_table().ranked_colours
    return ranked.index(colour) if colour in ranked else 0


def actor_facility(session: Session, actor: Actor) -> Facility | None:
    """The facility a user works at, if any."""
    return session.get(Facility, actor.facility_id) if actor.facility_id is not None else None


def scope_prefix(session: Session, actor: Actor) -> str:
    """Division prefix of the pregnancies the actor may see.

    Staff of a secondary or tertiary facility serve the whole county of the facility (the
    first six digits); everyone else sees their own division subtree.
    """
    facility = actor_facility(session, actor)
    if facility is not None and facility.level in HOSPITAL_LEVELS:
        return facility.division_prefix[:6]
    return actor.division_prefix


def require_role(actor: Actor, roles: frozenset[str]) -> None:
    """Refuse a write by a role not in ``roles`` (planners only read).

    Raises
    ------
    ConflictError
        ``role_not_allowed``.
    """
    if actor.role not in roles:
        raise ConflictError("role_not_allowed",
                            f"role '{actor.role}' may not change maternal files")


def is_hospital(session: Session, actor: Actor, rules: CaseRules) -> bool:
    """Whether the actor may grade: an administrator or staff of a facility whose level is in
    ``rules.grading_facility_levels`` (secondary or tertiary)."""
    if actor.role == "admin":
        return True
    facility = actor_facility(session, actor)
    return facility is not None and facility.level in rules.grading_facility_levels


def _facility_by_code(session: Session, code: str, field: str) -> Facility:
    facility = session.scalar(select(Facility).where(Facility.code == code.strip()))
    if facility is None:
        raise InputError.single(f"unknown facility '{code}'", field=field,
                                code="unknown_facility")
    return facility


def county_mch(session: Session, village_code: str) -> Facility | None:
    """The county maternal and child health institution of a village (None when absent)."""
    return session.scalar(select(Facility).where(
        Facility.type_code == MCH_FACILITY_TYPE, Facility.division_prefix.like(
            village_code[:6] + "%"), Facility.closed_on.is_(None)).order_by(Facility.id))


def _event(session: Session, p: Pregnancy, actor: Actor, event: str, now: dt.datetime,
           **detail: Any) -> None:
    session.add(CaseEvent(pregnancy_id=p.id, at=now, username=actor.username, event=event,
                          detail=detail))


def _snapshot(p: Pregnancy) -> dict[str, Any]:
    return {"status": p.status, "colour": p.colour, "purple": p.purple,
            "high_risk": p.high_risk, "edd": p.edd.isoformat(),
            "case_manager_user_id": p.case_manager_user_id,
            "delivery_facility_id": p.delivery_facility_id}


def _open(p: Pregnancy) -> None:
    if p.status == "closed":
        raise ConflictError("case_closed", f"pregnancy {p.id} is closed")


def _result_json(result: GradeResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = result.to_dict()
    return data["reasons"], data["management"]


# --------------------------------------------------------------------------- registration


def register_pregnancy(session: Session, actor: Actor, data: PregnancyIn, *, secret: str,
                       now: dt.datetime, rules: CaseRules | None = None,
                       tz: ZoneInfo = DEFAULT_TZ) -> Pregnancy:
    """Register a pregnancy (建册) with its screening at the first antenatal visit.

    Parameters
    ----------
    session, actor:
        Database session and who registers (village doctor, township centre, hospital).
    data:
        The woman (``resident_id`` or a new ``resident``), dates and the screening findings.
    secret:
        Key of the identity digest (needed when the woman is registered as a resident here).
    now:
        The clock.
    rules:
        Case rules (default: in force today).

    Returns
    -------
    Pregnancy
        Status ``awaiting_grading`` after a positive screen (non-green or purple), else
        ``screened``.

    Raises
    ------
    InputError
        Unknown resident or facility, dates that do not fit, bad findings (each field named).
    ConflictError
        ``open_pregnancy_exists`` when the woman already has an open file;
        ``not_female`` for a male resident.
    """
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    problems: list[Problem] = []
    if (data.resident_id is None) == (data.resident is None):
        raise InputError.single("give either resident_id or resident", field="resident_id")
    if data.parity >= data.gravidity:
        problems.append(Problem(reason="parity must be smaller than gravidity (this pregnancy "
                                "counts)", field="parity"))
    edd = data.edd
    if data.lmp is not None:
        if data.lmp > today:
            problems.append(Problem(reason="the last menstrual period cannot be in the future",
                                    field="lmp"))
        elif (today - data.lmp).days > GESTATION_DAYS + 21:
            problems.append(Problem(reason="more than 43 weeks ago: not an ongoing pregnancy",
                                    field="lmp"))
        edd = edd or data.lmp + dt.timedelta(days=GESTATION_DAYS)
    if edd is None:
        problems.append(Problem(reason="give the last menstrual period or the expected "
                                "delivery date", field="edd"))
    elif edd < today - dt.timedelta(days=21) or edd > today + dt.timedelta(days=GESTATION_DAYS):
        problems.append(Problem(reason=f"{edd.isoformat()} is not within 3 weeks before and "
                                "40 weeks after today", field="edd"))
    facility = None
    if data.facility_code:
        try:
            facility = _facility_by_code(session, data.facility_code, "facility_code")
        except InputError as exc:
            problems.extend(exc.problems)
    else:
        facility = actor_facility(session, actor)
    table = table_on(today)
    result: GradeResult | None = None
    try:
        result = grade(data.screening, table=table)
    except InputError as exc:
        problems.extend(Problem(reason=p.reason, field=f"screening.{p.field}", row=p.row,
                                code=p.code) for p in exc.problems)
    if problems:
        raise InputError(problems)
    assert result is not None and edd is not None
    if data.resident is not None:
        resident = register_resident(session, actor, data.resident, secret=secret, today=today)
    else:
        found = session.get(Resident, data.resident_id)
        if found is None or not found.active or not found.village_code.startswith(
                scope_prefix(session, actor)):
            raise InputError.single(f"unknown resident {data.resident_id}", field="resident_id",
                                    code="unknown_resident")
        resident = found
        audit(session, actor, "read", "resident", str(resident.id),
              detail="maternal registration")
    if resident.sex != "F":
        raise ConflictError("not_female", f"resident {resident.id} is not a woman")
    if session.scalar(select(Pregnancy.id).where(Pregnancy.resident_id == resident.id,
                                                 Pregnancy.status != "closed")) is not None:
        raise ConflictError("open_pregnancy_exists",
                            f"resident {resident.id} already has an open pregnancy file")
    positive = result.colour != table.ranked_colours[0] or result.purple
    p = Pregnancy(
        resident_id=resident.id, village_code=resident.village_code, registered_on=today,
        registered_by=actor.username, registered_facility_id=facility.id if facility else None,
        lmp=data.lmp, edd=edd, gravidity=data.gravidity, parity=data.parity,
        status="awaiting_grading" if positive else "screened", colour=result.colour,
        purple=result.purple, high_risk=False, screening_positive=positive,
        grading_due_on=today + dt.timedelta(days=rules.grading_within_days) if positive
        else None, pmtct={},
    )
    session.add(p)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError("open_pregnancy_exists",
                            f"resident {resident.id} already has an open pregnancy file"
                            ) from exc
    reasons, management = _result_json(result)
    session.add(MaternalAssessment(
        pregnancy_id=p.id, kind="screening", at=now, on_date=today, username=actor.username,
        facility_id=facility.id if facility else None,
        gestational_days=_gestational_days(p, today), findings=dict(data.screening),
        colour=result.colour, purple=result.purple, previous_colour=None, reasons=reasons,
        management=management, table_family=result.table_family,
        table_version=result.table_version))
    _event(session, p, actor, "registered", now, screening_positive=positive,
           colour=result.colour, purple=result.purple)
    audit(session, actor, "create", "maternal_pregnancy", str(p.id), after=_snapshot(p))
    session.flush()
    return p


def _gestational_days(p: Pregnancy, on: dt.date) -> int:
    return GESTATION_DAYS - (p.edd - on).days


# --------------------------------------------------------------------------- reading


def pregnancy_query(session: Session, actor: Actor) -> Select[tuple[Pregnancy]]:
    """Pregnancies in the actor's scope (see :func:`scope_prefix`)."""
    return select(Pregnancy).where(Pregnancy.village_code.like(scope_prefix(session, actor)
                                                               + "%"))


def get_pregnancy(session: Session, actor: Actor, pregnancy_id: int, *,
                  purpose: str = "", audit_read: bool = True) -> Pregnancy:
    """One pregnancy file in scope (audited as ``read``); 404 otherwise."""
    p = session.scalar(pregnancy_query(session, actor).where(Pregnancy.id == pregnancy_id))
    if p is None:
        raise NotFoundError(f"pregnancy {pregnancy_id}")
    if audit_read:
        audit(session, actor, "read", "maternal_pregnancy", str(p.id), detail=purpose)
    return p


def list_pregnancies(session: Session, actor: Actor, *, status: str | None = None,
                     colour: str | None = None, township: str | None = None,
                     high_risk: bool | None = None, managed_by_me: bool = False,
                     open_only: bool = False, offset: int = 0, limit: int = 50
                     ) -> tuple[int, list[dict[str, Any]]]:
    """Pregnancies in scope, newest first, with the woman's identity masked.

    ``colour`` may be ``purple`` (the flag) or a ranked colour; ``township`` a 9-digit prefix.
    """
    check_window(offset, limit)
    query = pregnancy_query(session, actor).order_by(Pregnancy.id.desc())
    if status:
        query = query.where(Pregnancy.status == status)
    if colour == "purple":
        query = query.where(Pregnancy.purple.is_(True))
    elif colour:
        query = query.where(Pregnancy.colour == colour)
    if township:
        query = query.where(Pregnancy.village_code.like(township.strip() + "%"))
    if high_risk is not None:
        query = query.where(Pregnancy.high_risk.is_(high_risk))
    if managed_by_me:
        query = query.where(Pregnancy.case_manager_user_id == actor.user_id)
    if open_only:
        query = query.where(Pregnancy.status != "closed")
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    if rows:
        audit(session, actor, "list", "maternal_pregnancy", "",
              detail="ids " + ",".join(str(p.id) for p in rows))
    return total or 0, summaries(session, rows)


def summaries(session: Session, rows: list[Pregnancy]) -> list[dict[str, Any]]:
    """List rows: the woman masked (name shortened, identity number masked)."""
    residents = {r.id: r for r in session.scalars(select(Resident).where(
        Resident.id.in_({p.resident_id for p in rows})))} if rows else {}
    managers = {u.id: u for u in session.scalars(select(User).where(
        User.id.in_({p.case_manager_user_id for p in rows if p.case_manager_user_id})))}
    villages = {d.code: d.name for d in session.scalars(select(Division).where(
        Division.code.in_({p.village_code for p in rows})))} if rows else {}
    out = []
    for p in rows:
        r = residents.get(p.resident_id)
        manager = managers.get(p.case_manager_user_id) if p.case_manager_user_id else None
        out.append({
            "id": p.id, "resident_id": p.resident_id,
            "name": mask_name(r.name) if r else "", "identity_number": r.id_masked if r else "",
            "village_code": p.village_code, "village": villages.get(p.village_code, ""),
            "status": p.status, "colour": p.colour, "purple": p.purple, "high_risk": p.high_risk,
            "edd": p.edd.isoformat(), "registered_on": p.registered_on.isoformat(),
            "grading_due_on": p.grading_due_on.isoformat() if p.grading_due_on else None,
            "case_manager": manager.username if manager else None,
        })
    return out


def mask_name(name: str) -> str:
    """Keep the family name (first character): ``王**``."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def pregnancy_detail(session: Session, actor: Actor, p: Pregnancy, *,
                     rules: CaseRules | None = None, now: dt.datetime,
                     tz: ZoneInfo = DEFAULT_TZ) -> dict[str, Any]:
    """The whole file: woman (unmasked only for roles that may see identifiers), history,
    follow-ups, reports, alerts, PMTCT steps and the delivery recommendation."""
    now = as_utc(now)
    from tiercare.maternal.places import where_to_deliver
    from tiercare.scenarios.service import network_covering

    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    r = session.get(Resident, p.resident_id)
    audit(session, actor, "read", "resident", str(p.resident_id), detail="maternal file")
    see = actor.sees_identifiers
    woman = {
        "id": r.id, "name": r.name if see else mask_name(r.name),
        "identity_number": r.id_number if see else r.id_masked,
        "birth_date": r.birth_date.isoformat() if see else r.birth_date.isoformat()[:4],
        "age": _age(r.birth_date, today), "phone": r.phone if see else
        (r.phone[:3] + "****" + r.phone[-4:] if len(r.phone) >= 8 else ""),
        "village_code": r.village_code,
    } if r else {}
    facilities = _facility_names(session, [p.registered_facility_id, p.delivery_facility_id,
                                           p.tertiary_facility_id, p.plan_centre_facility_id])
    manager = session.get(User, p.case_manager_user_id) if p.case_manager_user_id else None
    assessments = list(session.scalars(select(MaternalAssessment).where(
        MaternalAssessment.pregnancy_id == p.id).order_by(MaternalAssessment.at,
                                                          MaternalAssessment.id)))
    follow_ups = list(session.scalars(select(FollowUp).where(
        FollowUp.pregnancy_id == p.id).order_by(FollowUp.due_on, FollowUp.id)))
    reports = list(session.scalars(select(CaseReport).where(
        CaseReport.pregnancy_id == p.id).order_by(CaseReport.reported_at, CaseReport.id)))
    alerts = list(session.scalars(select(MaternalAlert).where(
        MaternalAlert.pregnancy_id == p.id).order_by(MaternalAlert.raised_at.desc())))
    events = list(session.scalars(select(CaseEvent).where(
        CaseEvent.pregnancy_id == p.id).order_by(CaseEvent.at, CaseEvent.id)))
    return {
        **summaries(session, [p])[0],
        "woman": woman,
        "lmp": p.lmp.isoformat() if p.lmp else None, "gravidity": p.gravidity,
        "parity": p.parity, "gestational_weeks": round(_gestational_days(p, today) / 7, 1),
        "registered_by": p.registered_by,
        "registered_facility": facilities.get(p.registered_facility_id),
        "screening_positive": p.screening_positive,
        "grading_overdue": bool(p.status == "awaiting_grading" and p.grading_due_on
                                and today > p.grading_due_on),
        "graded_on": p.graded_on.isoformat() if p.graded_on else None,
        "case_opened_at": _iso(p.case_opened_at),
        "case_manager": ({"username": manager.username, "full_name": manager.full_name}
                         if manager else None),
        "delivery_facility": facilities.get(p.delivery_facility_id),
        "delivery_booked_on": _d(p.delivery_booked_on),
        "tertiary_assessed_on": _d(p.tertiary_assessed_on),
        "tertiary_facility": facilities.get(p.tertiary_facility_id),
        "continue_pregnancy": p.continue_pregnancy,
        "plan": p.plan, "plan_agreed_on": _d(p.plan_agreed_on),
        "plan_centre": facilities.get(p.plan_centre_facility_id),
        "pmtct": pmtct_status(p, rules),
        "delivered_on": _d(p.delivered_on), "delivery": p.delivery,
        "postpartum_on": _d(p.postpartum_on), "postpartum_stable": p.postpartum_stable,
        "closed_at": _iso(p.closed_at), "close_reason": p.close_reason,
        "assessments": [assessment_dict(a) for a in assessments],
        "follow_ups": [follow_up_dict(f, today) for f in follow_ups],
        "reports": [report_dict(x) for x in reports],
        "alerts": [alert_dict(a) for a in alerts],
        "events": [{"at": _iso(e.at), "username": e.username, "event": e.event,
                    "detail": e.detail} for e in events],
        "where_to_deliver": where_to_deliver(
            session, p, rules=rules, network=network_covering(session, p.village_code)),
    }


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _iso(value: dt.datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value is not None else None


def _d(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _facility_names(session: Session, ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {f.id: {"id": f.id, "code": f.code, "name": f.name, "level": f.level}
            for f in session.scalars(select(Facility).where(Facility.id.in_(wanted)))}


def assessment_dict(a: MaternalAssessment) -> dict[str, Any]:
    """An assessment as plain data."""
    return {"id": a.id, "pregnancy_id": a.pregnancy_id, "kind": a.kind, "at": _iso(a.at),
            "on": a.on_date.isoformat(), "username": a.username, "facility_id": a.facility_id,
            "gestational_days": a.gestational_days, "findings": a.findings,
            "colour": a.colour, "purple": a.purple, "previous_colour": a.previous_colour,
            "reasons": a.reasons, "management": a.management,
            "table": f"{a.table_family}-{a.table_version}", "note": a.note}


def assessment_history(session: Session, actor: Actor, pregnancy_id: int, *, offset: int = 0,
                       limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """A pregnancy's screening, grading and postpartum assessments, oldest first (the
    pregnancy read is audited; 404 outside the actor's scope)."""
    p = get_pregnancy(session, actor, pregnancy_id, purpose="assessment history")
    query = (select(MaternalAssessment).where(MaternalAssessment.pregnancy_id == p.id)
             .order_by(MaternalAssessment.at, MaternalAssessment.id))
    total, rows = fetch_page(session, query, offset=offset, limit=limit)
    return total, [assessment_dict(a) for a in rows]


def follow_up_dict(f: FollowUp, today: dt.date | None = None) -> dict[str, Any]:
    """A follow-up as plain data (``state``: planned, due, overdue, done, cancelled)."""
    if f.cancelled:
        state = "cancelled"
    elif f.done_on is not None:
        state = "done"
    elif today is not None and f.due_on < today:
        state = "overdue"
    elif today is not None and f.due_on == today:
        state = "due"
    else:
        state = "planned"
    return {"id": f.id, "pregnancy_id": f.pregnancy_id, "due_on": f.due_on.isoformat(),
            "kind": f.kind, "planned_by": f.planned_by, "done_on": _d(f.done_on),
            "done_by": f.done_by, "note": f.note, "state": state}


def report_dict(x: CaseReport) -> dict[str, Any]:
    """A report to the county MCH institution as plain data."""
    return {"id": x.id, "pregnancy_id": x.pregnancy_id, "event": x.event, "colour": x.colour,
            "purple": x.purple, "reported_at": _iso(x.reported_at), "reported_by": x.reported_by,
            "recipient_facility_id": x.recipient_facility_id, "content": x.content,
            "received_at": _iso(x.received_at), "received_by": x.received_by}


def alert_dict(a: MaternalAlert) -> dict[str, Any]:
    """An alert as plain data."""
    return {"id": a.id, "pregnancy_id": a.pregnancy_id, "kind": a.kind, "key": a.key,
            "colour": a.colour, "message": a.message, "detail": a.detail,
            "raised_at": _iso(a.raised_at), "level": a.level,
            "escalated_at": _iso(a.escalated_at), "acknowledged_at": _iso(a.acknowledged_at),
            "acknowledged_by": a.acknowledged_by, "acknowledge_note": a.acknowledge_note,
            "resolved_at": _iso(a.resolved_at),
            "open": a.resolved_at is None and a.acknowledged_at is None}


def pmtct_status(p: Pregnancy, rules: CaseRules) -> list[dict[str, Any]]:
    """The PMTCT steps of a purple case with what was done (empty for other cases)."""
    if not p.purple:
        return []
    infections = list(p.pmtct.get("infections", [])) if p.pmtct else []
    done = p.pmtct.get("done", {}) if p.pmtct else {}
    return [{"code": s.code, "zh": s.zh, "en": s.en, **done.get(s.code, {}),
             "done": s.code in done} for s in rules.steps_for(infections)]


# --------------------------------------------------------------------------- grading


def grade_pregnancy(session: Session, actor: Actor, pregnancy_id: int, data: GradingIn, *,
                    now: dt.datetime, rules: CaseRules | None = None,
                    tz: ZoneInfo = DEFAULT_TZ) -> MaternalAssessment:
    """Grade or re-grade a pregnancy at a secondary-or-higher hospital.

    The assessment is kept with the colour before it. A rising colour raises an alert at
    once; an orange, red or purple grade opens (or updates) the high-risk case file: report to
    the county MCH institution, follow-up plan, PMTCT steps.

    Raises
    ------
    ConflictError
        ``grading_needs_hospital`` (the actor is not at a secondary/tertiary facility),
        ``case_closed``, ``already_delivered`` (use the postpartum assessment).
    InputError
        Bad findings.
    """
    now = as_utc(now)
    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    if not is_hospital(session, actor, rules):
        raise ConflictError("grading_needs_hospital",
                            "risk grading is done at a secondary or tertiary hospital")
    p = get_pregnancy(session, actor, pregnancy_id, purpose="grading")
    _open(p)
    if p.status == "delivered":
        raise ConflictError("already_delivered", "after delivery use the postpartum assessment")
    result = grade(data.findings, table=table_on(today))
    before = _snapshot(p)
    previous_colour, previous_purple = p.colour, p.purple
    reasons, management = _result_json(result)
    facility = actor_facility(session, actor)
    assessment = MaternalAssessment(
        pregnancy_id=p.id, kind="grading", at=now, on_date=today, username=actor.username,
        facility_id=facility.id if facility else None,
        gestational_days=_gestational_days(p, today), findings=dict(data.findings),
        colour=result.colour, purple=result.purple, previous_colour=previous_colour,
        reasons=reasons, management=management, table_family=result.table_family,
        table_version=result.table_version, note=data.note)
    session.add(assessment)
    session.flush()
    p.colour, p.purple = result.colour, result.purple
    p.status = "graded"
    p.graded_on = p.graded_on or today
    if result.purple:
        infections = [r["code"] for r in reasons if r["colour"] == "purple"]
        known = list((p.pmtct or {}).get("infections", []))
        p.pmtct = {"infections": known + [c for c in infections if c not in known],
                   "done": dict((p.pmtct or {}).get("done", {}))}
    rising = _rank(result.colour) > _rank(previous_colour) or (result.purple
                                                                and not previous_purple)
    _event(session, p, actor, "graded", now, colour=result.colour, purple=result.purple,
           previous_colour=previous_colour, assessment_id=assessment.id)
    if rising:
        _raise_alert(session, p, "colour_rising", f"a{assessment.id}", now,
                     f"colour rose from {previous_colour} to {result.colour}"
                     + (" with purple" if result.purple else ""),
                     {"from": previous_colour, "to": result.colour, "purple": result.purple,
                      "assessment_id": assessment.id})
    if rules.is_high_risk(result.colour, purple=result.purple) and p.case_opened_at is None:
        p.high_risk = True
        p.case_opened_at = now
        _event(session, p, actor, "case_opened", now)
        _report(session, p, actor, "case_opened", now, assessment)
        _plan_follow_ups(session, p, actor, now, rules, tz)
    elif p.case_opened_at is not None and (previous_colour, previous_purple) != (
            result.colour, result.purple):
        _report(session, p, actor, "colour_changed", now, assessment)
        _plan_follow_ups(session, p, actor, now, rules, tz)
    audit(session, actor, "grade", "maternal_pregnancy", str(p.id), before=before,
          after=_snapshot(p))
    session.flush()
    return assessment


def _report(session: Session, p: Pregnancy, actor: Actor, event: str, now: dt.datetime,
            assessment: MaternalAssessment | None = None) -> CaseReport:
    mch = county_mch(session, p.village_code)
    content: dict[str, Any] = {"status": p.status, "colour": p.colour, "purple": p.purple,
                               "edd": p.edd.isoformat(), "village_code": p.village_code}
    if assessment is not None:
        content["reasons"] = [r["code"] for r in assessment.reasons]
        content["assessment_id"] = assessment.id
    if p.delivery:
        content["delivery"] = p.delivery
    report = CaseReport(pregnancy_id=p.id, event=event, colour=p.colour, purple=p.purple,
                        reported_at=now, reported_by=actor.username,
                        recipient_facility_id=mch.id if mch else None, content=content)
    session.add(report)
    return report


def _plan_follow_ups(session: Session, p: Pregnancy, actor: Actor, now: dt.datetime,
                     rules: CaseRules, tz: ZoneInfo) -> None:
    """Replace the planned (not yet done) antenatal follow-ups by the colour's schedule."""
    today = local_date(now, tz)
    interval = rules.interval_days(p.colour, purple=p.purple)
    if interval is None:
        return
    for f in session.scalars(select(FollowUp).where(
            FollowUp.pregnancy_id == p.id, FollowUp.planned_by == "plan",
            FollowUp.kind == "antenatal", FollowUp.done_on.is_(None),
            FollowUp.cancelled.is_(False), FollowUp.due_on > today)):
        f.cancelled = True
    due = today + dt.timedelta(days=interval)
    while due <= p.edd:
        session.add(FollowUp(pregnancy_id=p.id, due_on=due, kind="antenatal",
                             planned_by="plan"))
        due += dt.timedelta(days=interval)
    _event(session, p, actor, "follow_up_plan", now, interval_days=interval)


# --------------------------------------------------------------------------- case management


def _high_risk_case(session: Session, actor: Actor, pregnancy_id: int, purpose: str
                    ) -> Pregnancy:
    p = get_pregnancy(session, actor, pregnancy_id, purpose=purpose)
    _open(p)
    if not p.high_risk:
        raise ConflictError("not_high_risk", f"pregnancy {p.id} has no high-risk case file")
    return p


def assign_case_manager(session: Session, actor: Actor, pregnancy_id: int, username: str, *,
                        now: dt.datetime) -> Pregnancy:
    """Name the case manager (a user) of a high-risk case."""
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    p = _high_risk_case(session, actor, pregnancy_id, "assign case manager")
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None:
        raise InputError.single(f"unknown user '{username}'", field="username",
                                code="unknown_user")
    before = _snapshot(p)
    p.case_manager_user_id = user.id
    p.case_manager_assigned_at = now
    _event(session, p, actor, "case_manager", now, username=username)
    audit(session, actor, "update", "maternal_pregnancy", str(p.id), before=before,
          after=_snapshot(p), detail="case manager")
    session.flush()
    return p


def record_plan(session: Session, actor: Actor, pregnancy_id: int, data: PlanIn, *,
                now: dt.datetime) -> Pregnancy:
    """Record the personalised plans agreed with a critical maternal care centre."""
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    p = _high_risk_case(session, actor, pregnancy_id, "plan")
    centre = _facility_by_code(session, data.centre_code, "centre_code")
    if "critical_maternal" not in (centre.centres or []):
        raise InputError.single(f"{centre.name} is not a critical maternal care centre",
                                field="centre_code", code="not_a_centre")
    p.plan_centre_facility_id = centre.id
    p.plan_agreed_on = data.agreed_on
    p.plan = {"management": data.management, "treatment": data.treatment,
              "emergency": data.emergency}
    _event(session, p, actor, "plan", now, centre=centre.code)
    audit(session, actor, "update", "maternal_pregnancy", str(p.id), after={"plan": p.plan},
          detail="personalised plan")
    session.flush()
    return p


def record_tertiary_assessment(session: Session, actor: Actor, pregnancy_id: int,
                               data: TertiaryAssessmentIn, *, now: dt.datetime,
                               rules: CaseRules | None = None) -> Pregnancy:
    """Record a red case's assessment at a tertiary hospital."""
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    rules = rules or load_case_rules(on=data.on)
    p = _high_risk_case(session, actor, pregnancy_id, "tertiary assessment")
    facility = _facility_by_code(session, data.facility_code, "facility_code")
    if facility.level != rules.tertiary_level:
        raise InputError.single(f"{facility.name} is not a tertiary hospital",
                                field="facility_code", code="not_tertiary")
    p.tertiary_assessed_on = data.on
    p.tertiary_facility_id = facility.id
    p.continue_pregnancy = data.continue_pregnancy
    _event(session, p, actor, "tertiary_assessment", now, facility=facility.code,
           continue_pregnancy=data.continue_pregnancy)
    audit(session, actor, "update", "maternal_pregnancy", str(p.id),
          after={"tertiary_assessed_on": data.on.isoformat(), "facility": facility.code,
                 "continue_pregnancy": data.continue_pregnancy})
    session.flush()
    return p


def delivery_rule_met(facility: Facility, colour: str, purple: bool,
                      rules: CaseRules) -> bool:
    """Whether a facility meets the delivery requirement of a case (or its fallback).

    Purple adds its own requirement to the ranked colour's.
    """
    needs = [colour] + (["purple"] if purple else [])
    for need in needs:
        accepted = [rules.delivery.by_colour[need]]
        if need in rules.delivery.fallback:
            accepted.append(rules.delivery.fallback[need])
        if not any(_accepts(rule, facility) for rule in accepted):
            return False
    return True


def _accepts(rule: DeliveryRule, facility: Facility) -> bool:
    return facility.closed_on is None and rule.accepts(
        level=facility.level, services=facility.services or [], centres=facility.centres or [])


def book_delivery(session: Session, actor: Actor, pregnancy_id: int, data: BookingIn, *,
                  now: dt.datetime, rules: CaseRules | None = None,
                  tz: ZoneInfo = DEFAULT_TZ) -> Pregnancy:
    """Book the delivery facility; it must be of the level the colour requires.

    Raises
    ------
    ConflictError
        ``facility_level_insufficient`` when the facility does not meet the requirement.
    """
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    p = get_pregnancy(session, actor, pregnancy_id, purpose="delivery booking")
    _open(p)
    facility = _facility_by_code(session, data.facility_code, "facility_code")
    if not delivery_rule_met(facility, p.colour, p.purple, rules):
        raise ConflictError("facility_level_insufficient",
                            f"{facility.name} ({facility.level}) does not meet the delivery "
                            f"requirement of a {p.colour} case")
    p.delivery_facility_id = facility.id
    p.delivery_booked_on = data.on or today
    _event(session, p, actor, "delivery_booked", now, facility=facility.code)
    audit(session, actor, "update", "maternal_pregnancy", str(p.id),
          after={"delivery_facility": facility.code}, detail="delivery booking")
    session.flush()
    return p


def complete_pmtct_step(session: Session, actor: Actor, pregnancy_id: int, step: str,
                        data: StepIn, *, now: dt.datetime,
                        rules: CaseRules | None = None) -> Pregnancy:
    """Mark a PMTCT step of a purple case as done."""
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    rules = rules or load_case_rules(on=data.on)
    p = get_pregnancy(session, actor, pregnancy_id, purpose="pmtct")
    _open(p)
    codes = [s["code"] for s in pmtct_status(p, rules)]
    if step not in codes:
        raise InputError.single(f"'{step}' is not a PMTCT step of this case "
                                f"({', '.join(codes) or 'none'})", field="step",
                                code="unknown_step")
    done = dict((p.pmtct or {}).get("done", {}))
    done[step] = {"on": data.on.isoformat(), "by": actor.username, "note": data.note}
    p.pmtct = {"infections": list(p.pmtct.get("infections", [])), "done": done}
    _event(session, p, actor, "pmtct_step", now, step=step)
    audit(session, actor, "update", "maternal_pregnancy", str(p.id), after={"pmtct": step})
    session.flush()
    return p


def add_follow_up(session: Session, actor: Actor, pregnancy_id: int, data: FollowUpIn, *,
                  now: dt.datetime) -> FollowUp:
    """Plan an extra follow-up by hand."""
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    p = get_pregnancy(session, actor, pregnancy_id, purpose="follow-up")
    _open(p)
    f = FollowUp(pregnancy_id=p.id, due_on=data.due_on, kind=data.kind,
                 planned_by=actor.username, note=data.note)
    session.add(f)
    session.flush()
    _event(session, p, actor, "follow_up_added", now, follow_up_id=f.id)
    audit(session, actor, "create", "maternal_follow_up", str(f.id),
          after=follow_up_dict(f))
    return f


def complete_follow_up(session: Session, actor: Actor, follow_up_id: int,
                       data: FollowUpDoneIn, *, now: dt.datetime,
                       tz: ZoneInfo = DEFAULT_TZ) -> FollowUp:
    """Record that a follow-up took place (not in the future)."""
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    f = session.get(FollowUp, follow_up_id)
    if f is None:
        raise NotFoundError(f"follow-up {follow_up_id}")
    p = get_pregnancy(session, actor, f.pregnancy_id, purpose="follow-up")
    if f.done_on is not None or f.cancelled:
        raise ConflictError("follow_up_not_open", f"follow-up {f.id} is done or cancelled")
    if data.on > local_date(now, tz):
        raise InputError.single("a follow-up cannot be done in the future", field="on")
    f.done_on, f.done_by, f.note = data.on, actor.username, data.note or f.note
    _event(session, p, actor, "follow_up_done", now, follow_up_id=f.id)
    audit(session, actor, "update", "maternal_follow_up", str(f.id), after=follow_up_dict(f))
    session.flush()
    return f


def list_follow_ups(session: Session, actor: Actor, *, now: dt.datetime,
                    due_within_days: int | None = None, overdue: bool = False,
                    managed_by_me: bool = False, offset: int = 0, limit: int = 50,
                    tz: ZoneInfo = DEFAULT_TZ) -> tuple[int, list[dict[str, Any]]]:
    """Open follow-ups in scope (reminders: due within ``due_within_days``; or overdue)."""
    now = as_utc(now)
    check_window(offset, limit)
    today = local_date(now, tz)
    scope = pregnancy_query(session, actor).with_only_columns(Pregnancy.id).where(
        Pregnancy.status != "closed")
    if managed_by_me:
        scope = scope.where(Pregnancy.case_manager_user_id == actor.user_id)
    query = select(FollowUp).where(FollowUp.pregnancy_id.in_(scope), FollowUp.done_on.is_(None),
                                   FollowUp.cancelled.is_(False)).order_by(FollowUp.due_on,
                                                                           FollowUp.id)
    if overdue:
        query = query.where(FollowUp.due_on < today)
    elif due_within_days is not None:
        query = query.where(FollowUp.due_on <= today + dt.timedelta(days=due_within_days))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    return total or 0, [follow_up_dict(f, today) for f in rows]


# --------------------------------------------------------------------------- delivery, closure


def record_delivery(session: Session, actor: Actor, pregnancy_id: int, data: DeliveryIn, *,
                    now: dt.datetime, rules: CaseRules | None = None,
                    tz: ZoneInfo = DEFAULT_TZ) -> Pregnancy:
    """Record the delivery outcome; plans the postpartum visits.

    Raises
    ------
    ConflictError
        ``case_closed``, ``already_delivered``.
    InputError
        A date in the future or before registration, unknown facility.
    """
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    p = get_pregnancy(session, actor, pregnancy_id, purpose="delivery")
    _open(p)
    if p.status == "delivered":
        raise ConflictError("already_delivered", f"pregnancy {p.id} has a delivery recorded")
    if data.on > today:
        raise InputError.single("the delivery date cannot be in the future", field="on")
    if data.on < p.registered_on - dt.timedelta(days=1):
        raise InputError.single("the delivery date is before the registration", field="on")
    facility = _facility_by_code(session, data.facility_code, "facility_code") \
        if data.facility_code else None
    before = _snapshot(p)
    p.status = "delivered"
    p.delivered_on = data.on
    p.delivery = {"outcome": data.outcome, "mode": data.mode, "live_births": data.live_births,
                  "maternal_condition": data.maternal_condition,
                  "facility_code": facility.code if facility else None, "note": data.note}
    for f in session.scalars(select(FollowUp).where(
            FollowUp.pregnancy_id == p.id, FollowUp.kind == "antenatal",
            FollowUp.done_on.is_(None), FollowUp.cancelled.is_(False))):
        f.cancelled = True
    for days in rules.postpartum_visit_days:
        session.add(FollowUp(pregnancy_id=p.id, due_on=data.on + dt.timedelta(days=days),
                             kind="postpartum", planned_by="plan"))
    _event(session, p, actor, "delivered", now, **p.delivery)
    if p.high_risk:
        _report(session, p, actor, "delivered", now)
    audit(session, actor, "update", "maternal_pregnancy", str(p.id), before=before,
          after=_snapshot(p), detail="delivery")
    session.flush()
    return p


def record_postpartum(session: Session, actor: Actor, pregnancy_id: int, data: PostpartumIn,
                      *, now: dt.datetime, rules: CaseRules | None = None,
                      tz: ZoneInfo = DEFAULT_TZ) -> MaternalAssessment:
    """The 42-day postpartum assessment; closes the file unless a red condition is unstable.

    A case that is red (graded red, or red at this assessment) and not ``stable`` gets the
    criterion ``red_condition_unstable_postpartum`` and stays open; a later assessment that
    finds it stable closes it.

    Raises
    ------
    ConflictError
        ``not_delivered``, ``case_closed``, ``too_early`` (before day
        ``postpartum_assessment_day`` after delivery).
    """
    now = as_utc(now)
    require_role(actor, CLINICAL_ROLES)
    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    p = get_pregnancy(session, actor, pregnancy_id, purpose="postpartum assessment")
    _open(p)
    if p.status != "delivered" or p.delivered_on is None:
        raise ConflictError("not_delivered", f"pregnancy {p.id} has no delivery recorded")
    if data.on > today:
        raise InputError.single("the assessment date cannot be in the future", field="on")
    earliest = p.delivered_on + dt.timedelta(days=rules.postpartum_assessment_day)
    if data.on < earliest:
        raise ConflictError("too_early", f"the postpartum assessment is due on or after "
                            f"{earliest.isoformat()} (day {rules.postpartum_assessment_day})")
    table = table_on(today)
    findings = dict(data.findings)
    result = grade(findings, table=table)
    red = table.ranked_colours[-1]
    unstable_red = not data.stable and red in (p.colour, result.colour)
    if unstable_red:
        conditions = list(findings.get("conditions") or [])
        if UNSTABLE_POSTPARTUM_CODE not in conditions:
            conditions.append(UNSTABLE_POSTPARTUM_CODE)
        findings["conditions"] = conditions
        result = grade(findings, table=table)
    reasons, management = _result_json(result)
    facility = actor_facility(session, actor)
    assessment = MaternalAssessment(
        pregnancy_id=p.id, kind="postpartum", at=now, on_date=data.on,
        username=actor.username, facility_id=facility.id if facility else None,
        gestational_days=None, findings=findings, colour=result.colour, purple=result.purple,
        previous_colour=p.colour, reasons=reasons, management=management,
        table_family=result.table_family, table_version=result.table_version, note=data.note)
    session.add(assessment)
    session.flush()
    before = _snapshot(p)
    p.postpartum_on = data.on
    p.postpartum_stable = not unstable_red
    if unstable_red:
        p.colour = result.colour
        _event(session, p, actor, "postpartum_unstable", now, assessment_id=assessment.id)
    else:
        _close(session, p, actor, now, "postpartum_assessed")
    audit(session, actor, "postpartum", "maternal_pregnancy", str(p.id), before=before,
          after=_snapshot(p))
    session.flush()
    return assessment


def _close(session: Session, p: Pregnancy, actor: Actor, now: dt.datetime, reason: str) -> None:
    p.status = "closed"
    p.closed_at = now
    p.close_reason = reason
    for f in session.scalars(select(FollowUp).where(
            FollowUp.pregnancy_id == p.id, FollowUp.done_on.is_(None),
            FollowUp.cancelled.is_(False))):
        f.cancelled = True
    for a in session.scalars(select(MaternalAlert).where(
            MaternalAlert.pregnancy_id == p.id, MaternalAlert.resolved_at.is_(None))):
        a.resolved_at = now
    _event(session, p, actor, "closed", now, reason=reason)
    if p.high_risk:
        _report(session, p, actor, "closed", now)


# --------------------------------------------------------------------------- reports


def list_reports(session: Session, actor: Actor, *, event: str | None = None,
                 unreceived: bool = False, since: dt.datetime | None = None,
                 offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """What was reported to the county MCH institution, newest first."""
    check_window(offset, limit)
    scope = pregnancy_query(session, actor).with_only_columns(Pregnancy.id)
    query = select(CaseReport).where(CaseReport.pregnancy_id.in_(scope)).order_by(
        CaseReport.reported_at.desc(), CaseReport.id.desc())
    if event:
        query = query.where(CaseReport.event == event)
    if unreceived:
        query = query.where(CaseReport.received_at.is_(None))
    if since is not None:
        query = query.where(CaseReport.reported_at >= since)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    return total or 0, [report_dict(x) for x in rows]


def receive_report(session: Session, actor: Actor, report_id: int, *,
                   now: dt.datetime) -> CaseReport:
    """The county MCH institution confirms it received a report."""
    now = as_utc(now)
    require_role(actor, SUPERVISING_ROLES)
    x = session.get(CaseReport, report_id)
    if x is None:
        raise NotFoundError(f"report {report_id}")
    get_pregnancy(session, actor, x.pregnancy_id, purpose="report receipt")
    if x.received_at is not None:
        raise ConflictError("already_received", f"report {x.id} was received already")
    x.received_at, x.received_by = now, actor.username
    audit(session, actor, "receive", "maternal_report", str(x.id))
    session.flush()
    return x


# --------------------------------------------------------------------------- alerts


def _raise_alert(session: Session, p: Pregnancy, kind: str, key: str, now: dt.datetime,
                 message: str, detail: dict[str, Any]) -> tuple[MaternalAlert, bool]:
    """Raise (or reopen) the alert ``(pregnancy, kind, key)``; returns it and whether new."""
    existing = session.scalar(select(MaternalAlert).where(
        MaternalAlert.pregnancy_id == p.id, MaternalAlert.kind == kind,
        MaternalAlert.key == key))
    mch = county_mch(session, p.village_code)
    recipients = {"case_manager_user_id": p.case_manager_user_id,
                  "county_mch": mch.code if mch else None}
    if existing is not None:
        if existing.resolved_at is None:
            return existing, False
        existing.resolved_at = None
        existing.acknowledged_at = None
        existing.acknowledged_by = ""
        existing.raised_at = now
        existing.level = 0
        existing.escalated_at = None
        existing.message = message
        existing.detail = {**detail, "recipients": recipients}
        return existing, True
    alert = MaternalAlert(pregnancy_id=p.id, kind=kind, key=key, colour=p.colour,
                          message=message, detail={**detail, "recipients": recipients},
                          raised_at=now, level=0)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # raised meanwhile by a concurrent run: keep that one
        found = session.scalar(select(MaternalAlert).where(
            MaternalAlert.pregnancy_id == p.id, MaternalAlert.kind == kind,
            MaternalAlert.key == key))
        assert found is not None
        return found, False
    return alert, True


def _conditions(session: Session, p: Pregnancy, today: dt.date, rules: CaseRules
                ) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The alert conditions holding for an open pregnancy: ``(kind, key, message, detail)``."""
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    if p.status == "awaiting_grading" and p.grading_due_on and today > p.grading_due_on:
        found.append(("grading_overdue", f"due{p.grading_due_on.isoformat()}",
                      f"positive screen not graded by {p.grading_due_on.isoformat()}",
                      {"due_on": p.grading_due_on.isoformat()}))
    grace = dt.timedelta(days=rules.missed_follow_up_grace_days)
    for f in session.scalars(select(FollowUp).where(
            FollowUp.pregnancy_id == p.id, FollowUp.done_on.is_(None),
            FollowUp.cancelled.is_(False), FollowUp.due_on < today - grace)):
        found.append(("missed_follow_up", f"f{f.id}",
                      f"{f.kind} follow-up due {f.due_on.isoformat()} not done",
                      {"follow_up_id": f.id, "due_on": f.due_on.isoformat()}))
    needs_level = p.colour != load_table().ranked_colours[0] or p.purple
    if (p.status in ("screened", "awaiting_grading", "graded") and needs_level
            and (p.edd - today).days <= rules.due_date_warning_days):
        booked = session.get(Facility, p.delivery_facility_id) if p.delivery_facility_id \
            else None
        if booked is None or not delivery_rule_met(booked, p.colour, p.purple, rules):
            found.append(("due_date_no_facility", f"edd{p.edd.isoformat()}",
                          f"due {p.edd.isoformat()} without a booked delivery facility of "
                          f"the level a {p.colour} case requires",
                          {"edd": p.edd.isoformat(), "days_left": (p.edd - today).days,
                           "booked_facility_id": p.delivery_facility_id}))
    if p.colour == "red" and p.status == "graded" and p.tertiary_assessed_on is None:
        since = _red_since(session, p)
        if since is not None and (today - since).days >= rules.red_tertiary_assessment_days:
            found.append(("red_not_assessed_tertiary", f"red{since.isoformat()}",
                          f"red since {since.isoformat()} and not yet assessed at a tertiary "
                          "hospital", {"red_since": since.isoformat()}))
    opened = _aware(p.case_opened_at)
    if p.high_risk and p.case_manager_user_id is None and opened is not None:
        opened_on = opened.astimezone(DEFAULT_TZ).date()
        if (today - opened_on).days >= rules.no_case_manager_days:
            found.append(("no_case_manager", "open", "high-risk case without a named case "
                          "manager", {"case_opened_on": opened_on.isoformat()}))
    return found


def _red_since(session: Session, p: Pregnancy) -> dt.date | None:
    """Date of the grading that made the case red (the latest entry into red)."""
    return session.scalar(select(MaternalAssessment.on_date).where(
        MaternalAssessment.pregnancy_id == p.id, MaternalAssessment.kind == "grading",
        MaternalAssessment.colour == "red",
        or_(MaternalAssessment.previous_colour.is_(None),
            MaternalAssessment.previous_colour != "red"))
        .order_by(MaternalAssessment.at.desc(), MaternalAssessment.id.desc()).limit(1))


CONDITION_KINDS = ("grading_overdue", "missed_follow_up", "due_date_no_facility",
                   "red_not_assessed_tertiary", "no_case_manager")
"""Alert kinds that end by themselves when their condition ends (``colour_rising`` is an
event: it stays until acknowledged)."""


def generate_alerts(session: Session, *, now: dt.datetime, rules: CaseRules | None = None,
                    prefix: str = "", tz: ZoneInfo = DEFAULT_TZ) -> dict[str, int]:
    """Evaluate every open pregnancy under ``prefix`` at ``now``: raise, resolve, escalate.

    * a condition that holds raises its alert once (reopened if it comes back after ending);
    * an open alert whose condition no longer holds is resolved;
    * an alert nobody acknowledged goes up one level every ``escalate_after_hours`` (by
      colour) after it was raised, up to the last level of ``escalation_levels``.

    Idempotent for a given ``now``: running it twice changes nothing the second time.

    Returns
    -------
    dict
        ``raised``, ``resolved``, ``escalated`` counts and ``open`` alerts after the run.
    """
    now = as_utc(now)
    today = local_date(now, tz)
    rules = rules or load_case_rules(on=today)
    counts = {"raised": 0, "resolved": 0, "escalated": 0}
    pregnancies = list(session.scalars(select(Pregnancy).where(
        Pregnancy.status != "closed", Pregnancy.village_code.like(prefix + "%"))
        .order_by(Pregnancy.id)))
    for p in pregnancies:
        holding = _conditions(session, p, today, rules)
        keys = {(kind, key) for kind, key, _m, _d in holding}
        for kind, key, message, detail in holding:
            _alert, new = _raise_alert(session, p, kind, key, now, message, detail)
            counts["raised"] += int(new)
        for a in session.scalars(select(MaternalAlert).where(
                MaternalAlert.pregnancy_id == p.id, MaternalAlert.resolved_at.is_(None),
                MaternalAlert.kind.in_(CONDITION_KINDS))):
            if (a.kind, a.key) not in keys:
                a.resolved_at = now
                counts["resolved"] += 1
    top = len(rules.escalation_levels) - 1
    scope = select(Pregnancy.id).where(Pregnancy.village_code.like(prefix + "%"))
    for a in session.scalars(select(MaternalAlert).where(
            MaternalAlert.pregnancy_id.in_(scope), MaternalAlert.resolved_at.is_(None),
            MaternalAlert.acknowledged_at.is_(None), MaternalAlert.level < top)):
        hours = rules.escalation_hours(a.colour)
        raised = _aware(a.raised_at)
        assert raised is not None
        target = min(int((now - raised) / dt.timedelta(hours=hours)), top)
        if target > a.level:
            a.level = target
            a.escalated_at = raised + dt.timedelta(hours=hours * target)
            counts["escalated"] += 1
    session.flush()
    counts["open"] = session.scalar(select(func.count()).select_from(MaternalAlert).where(
        MaternalAlert.pregnancy_id.in_(scope), MaternalAlert.resolved_at.is_(None),
        MaternalAlert.acknowledged_at.is_(None))) or 0
    return counts


def list_alerts(session: Session, actor: Actor, *, open_only: bool = True,
                managed_by_me: bool = False, kind: str | None = None,
                min_level: int | None = None, offset: int = 0, limit: int = 50
                ) -> tuple[int, list[dict[str, Any]]]:
    """Alerts in scope, most escalated and newest first (``open``: unresolved and
    unacknowledged)."""
    check_window(offset, limit)
    scope = pregnancy_query(session, actor).with_only_columns(Pregnancy.id)
    if managed_by_me:
        scope = scope.where(Pregnancy.case_manager_user_id == actor.user_id)
    query = select(MaternalAlert).where(MaternalAlert.pregnancy_id.in_(scope)).order_by(
        MaternalAlert.level.desc(), MaternalAlert.raised_at.desc(), MaternalAlert.id.desc())
    if open_only:
        query = query.where(MaternalAlert.resolved_at.is_(None),
                            MaternalAlert.acknowledged_at.is_(None))
    if kind:
        query = query.where(MaternalAlert.kind == kind)
    if min_level is not None:
        query = query.where(MaternalAlert.level >= min_level)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.offset(offset).limit(limit)))
    return total or 0, [alert_dict(a) for a in rows]


def acknowledge_alert(session: Session, actor: Actor, alert_id: int, *, note: str = "",
                      now: dt.datetime) -> MaternalAlert:
    """Acknowledge an alert (stops its escalation).

    Raises
    ------
    ConflictError
        ``already_acknowledged`` or ``alert_resolved``.
    """
    now = as_utc(now)
    require_role(actor, SUPERVISING_ROLES)
    a = session.get(MaternalAlert, alert_id)
    if a is None:
        raise NotFoundError(f"alert {alert_id}")
    p = get_pregnancy(session, actor, a.pregnancy_id, purpose="acknowledge alert")
    if a.acknowledged_at is not None:
        raise ConflictError("already_acknowledged", f"alert {a.id} was acknowledged already")
    if a.resolved_at is not None:
        raise ConflictError("alert_resolved", f"alert {a.id} is resolved")
    a.acknowledged_at, a.acknowledged_by, a.acknowledge_note = now, actor.username, note
    _event(session, p, actor, "alert_acknowledged", now, alert_id=a.id, kind=a.kind)
    audit(session, actor, "acknowledge", "maternal_alert", str(a.id), detail=note)
    session.flush()
    return a


# --------------------------------------------------------------------------- county overview


def county_overview(session: Session, actor: Actor) -> dict[str, Any]:
    """Open files by township and colour (purple counted apart), and open alert counts."""
    prefix = scope_prefix(session, actor)
    rows = session.execute(
        select(func.substr(Pregnancy.village_code, 1, 9), Pregnancy.colour, Pregnancy.purple,
               func.count())
        .where(Pregnancy.village_code.like(prefix + "%"), Pregnancy.status != "closed")
        .group_by(func.substr(Pregnancy.village_code, 1, 9), Pregnancy.colour,
                  Pregnancy.purple)).all()
    names = {d.prefix: d.name for d in session.scalars(select(Division).where(
        Division.level == "township", Division.code.like(prefix + "%")))}
    colours = list(load_table().ranked_colours)
    table: dict[str, dict[str, Any]] = {}
    for township, colour, purple, n in rows:
        entry = table.setdefault(township, {"township": township,
                                            "name": names.get(township, township),
                                            **{c: 0 for c in colours}, "purple": 0, "total": 0})
        entry[colour] = entry.get(colour, 0) + n
        entry["purple"] += n if purple else 0
        entry["total"] += n
    townships = sorted(table.values(), key=lambda e: e["township"])
    totals = {c: sum(e[c] for e in townships) for c in [*colours, "purple", "total"]}
    return {"colours": colours, "townships": townships, "totals": totals}
