"""Aggregate reporting: data values, report forms, validation rules, deadlines and imports.

Every write goes through :func:`store_values`, which checks a whole batch before writing any of
it (all-or-nothing): element known, unit known and in the writer's scope, period readable,
value a number ≥ 0, the period not locked, and every validation rule of the data sets concerned
satisfied by the stored values merged with the new ones. The problems of the whole batch are
reported together (field, row, reason).

**Deadline and lock.** A data set's report for period *P* is due ``deadline_days`` after
*P* ends; a submission is *on time* when made on or before that day. After the deadline the
period is locked: only administrators may still change its values.

**DHIS2.** :func:`import_data_value_set` reads the ``dataValueSets`` JSON of DHIS2
(``{"dataSet", "period", "orgUnit", "dataValues": [{"dataElement", "period", "orgUnit",
"value", "comment"}]}``, the top-level fields being defaults for the values) with element codes
as ``dataElement`` and facility or division codes as ``orgUnit``; :func:`export_data_value_set`
writes the same shape with DHIS2 period spellings (``202610``).
"""

from __future__ import annotations

import json
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.errors import InputError, NotFoundError, Problem
from tiercare.indicators.catalogue import ensure_catalogue
from tiercare.indicators.expressions import parse_expression
from tiercare.indicators.models import (
    DataElement,
    DataSet,
    DataValue,
    ReportSubmission,
    ValidationRule,
)
from tiercare.indicators.periods import Period, dhis2_period, local_today, parse_period
from tiercare.registry.codes import normalise_code, prefix_of
from tiercare.registry.models import Division, Facility, FacilityResource, FacilityType
from tiercare.registry.tables import read_table_bytes

_OPERATORS = {"<=": operator.le, "<": operator.lt, "==": operator.eq, ">=": operator.ge,
              ">": operator.gt}
WRITER_ROLES = {"admin", "planner", "group_manager", "facility_staff", "village_doctor"}


@dataclass(frozen=True)
class StoreResult:
    """Outcome of a batch: values created and updated."""

    created: int
    updated: int

    def as_dict(self) -> dict[str, int]:
        """Plain data."""
        return {"created": self.created, "updated": self.updated}


@dataclass
class _Target:
    """A resolved unit to write for."""

    kind: str
    code: str
    division_code: str
    tier: str
    facility: Facility | None


def deadline(data_set: DataSet, period: Period) -> date:
    """Last day on which the report of ``period`` is on time."""
    return period.end + timedelta(days=data_set.deadline_days)


def _data_sets_for(session: Session) -> dict[str, list[DataSet]]:
    """Data sets by facility type."""
    out: dict[str, list[DataSet]] = defaultdict(list)
    for ds in session.scalars(select(DataSet)):
        for t in ds.facility_types:
            out[t].append(ds)
    return out


def _resolve_target(session: Session, actor: Actor, code: str,
                    cache: dict[str, _Target | str]) -> _Target | str:
    """The unit to write, or the reason it cannot be written."""
    if code in cache:
        return cache[code]
    facility = session.scalar(select(Facility).where(Facility.code == code))
    result: _Target | str
    if facility is not None:
        tier = session.scalar(select(FacilityType.tier).where(
            FacilityType.code == facility.type_code)) or ""
        division_code = session.scalar(select(Division.code).where(
            Division.id == facility.division_id)) or facility.division_prefix.ljust(12, "0")
        allowed = (facility.id == actor.facility_id or facility.parent_facility_id ==
                   actor.facility_id) if actor.facility_id is not None else \
            facility.division_prefix.startswith(actor.division_prefix)
        result = _Target("facility", facility.code, division_code, tier, facility) if allowed \
            else "facility outside your scope"
    else:
        try:
            code12 = normalise_code(code)
        except ValueError:
            code12 = ""
        division = session.scalar(select(Division).where(Division.code == code12)) \
            if code12 else None
        if division is None:
            result = "unknown facility or division"
        elif actor.facility_id is not None or not division.prefix.startswith(
                actor.division_prefix):
            result = "division outside your scope"
        else:
            result = _Target("division", division.code, division.code, "", None)
    cache[code] = result
    return result


def _context(session: Session, facility: Facility | None, period: Period) -> dict[str, float]:
    """Names a validation rule may use besides elements: days, beds, physicians, nurses."""
    out = {"days": float(period.days), "beds": 0.0, "physicians": 0.0, "nurses": 0.0}
    if facility is None:
        return out
    for category, item, quantity in session.execute(
            select(FacilityResource.category, FacilityResource.item, FacilityResource.quantity)
            .where(FacilityResource.facility_id == facility.id)).all():
        if category == "beds":
            out["beds"] += quantity
        elif category == "staff" and item in ("physician", "assistant_physician"):
            out["physicians"] += quantity
        elif category == "staff" and item == "nurse":
            out["nurses"] += quantity
    return out


def check_rules(rules: Sequence[ValidationRule], values: dict[str, float],
                context: dict[str, float], *, lang: str = "en") -> list[tuple[ValidationRule,
                                                                              str]]:
    """Rules broken by one report's values; a rule whose elements are not all present is skipped.

    Returns
    -------
    list
        ``(rule, message)`` for each broken rule, the message giving both sides' values.
    """
    broken = []
    names = {**context, **values}
    for rule in rules:
        left = parse_expression(rule.left, field="left")
        right = parse_expression(rule.right, field="right")
        if not (left.names | right.names) <= set(names):
            continue
        a, b = float(left.evaluate(names)), float(right.evaluate(names))
        if a != a or b != b:  # NaN: undefined, not a violation
            continue
        if not _OPERATORS[rule.operator](a, b):
            message = rule.message_zh if lang == "zh-CN" and rule.message_zh else (
                rule.message_en or f"{rule.left} {rule.operator} {rule.right}")
            broken.append((rule, f"{message} ({rule.left} = {a:g}, {rule.right} = {b:g})"))
    return broken


def store_values(session: Session, actor: Actor, rows: Iterable[dict[str, Any]], *,
                 source: str, today: date | None = None) -> StoreResult:
    """Check a batch of values completely, then write all of it or nothing.

    Parameters
    ----------
    rows:
        Dicts with ``element``, ``unit`` (facility code or division code), ``period``,
        ``value`` and optionally ``comment``; row numbers in problems are 1-based positions.
    source:
        Where the batch comes from (``form``, ``csv``, ``dhis2``…), for the audit log.
    today:
        The date deadlines are checked against (default: today in the display time zone).

    Raises
    ------
    InputError
        With every problem of the batch; nothing is written.
    """
    ensure_catalogue(session)
    today = today or local_today()
    if actor.role not in WRITER_ROLES:
        raise InputError.single(f"role '{actor.role}' may not report data", field="role")
    elements = {e.code: e for e in session.scalars(select(DataElement))}
    sets_by_type = _data_sets_for(session)
    rules_by_set: dict[str, list[ValidationRule]] = defaultdict(list)
    for rule in session.scalars(select(ValidationRule)):
        rules_by_set[rule.data_set_code].append(rule)
    problems: list[Problem] = []
    cache: dict[str, _Target | str] = {}
    accepted: dict[tuple[str, str, str], tuple[int, _Target, Period, float, str]] = {}
    for i, row in enumerate(rows, start=1):
        element_code = str(row.get("element") or "").strip()
        unit_code = str(row.get("unit") or "").strip()
        element = elements.get(element_code)
        if element is None:
            problems.append(Problem(reason=f"unknown data element '{element_code}'",
                                    field="element", row=i, code="unknown_element"))
        target = _resolve_target(session, actor, unit_code, cache) if unit_code else \
            "the unit is missing"
        if isinstance(target, str):
            problems.append(Problem(reason=f"{target}: '{unit_code}'", field="unit", row=i,
                                    code="unknown_unit"))
        elif element is not None and element.unit_kind != target.kind:
            problems.append(Problem(reason=f"'{element_code}' is reported by a "
                                    f"{element.unit_kind}, not a {target.kind}", field="unit",
                                    row=i))
        try:
            period = parse_period(str(row.get("period") or ""))
        except InputError as exc:
            problems += [Problem(reason=p.reason, field="period", row=i) for p in exc.problems]
            period = None
        raw = row.get("value")
        try:
            value = float(str(raw).strip())
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        except (TypeError, ValueError):
            problems.append(Problem(reason=f"not a number: {raw!r}", field="value", row=i))
            value = None
        if value is not None and value < 0:
            problems.append(Problem(reason="must be ≥ 0", field="value", row=i))
        if element is not None and element.value_type in ("count", "money_fen") and \
                value is not None and not float(value).is_integer():
            problems.append(Problem(reason=f"{element.value_type} must be a whole number",
                                    field="value", row=i))
        if element is None or isinstance(target, str) or period is None or value is None:
            continue
        if target.facility is not None and actor.role != "admin":
            for ds in sets_by_type.get(target.facility.type_code, []):
                if element_code in ds.elements and ds.period_type == period.type and \
                        today > deadline(ds, period):
                    problems.append(Problem(
                        reason=f"period {period.text} of '{ds.code}' is locked since "
                               f"{deadline(ds, period).isoformat()}", field="period", row=i,
                        code="locked"))
                    break
        key = (element_code, target.code, period.text)
        if key in accepted:
            problems.append(Problem(reason="the same element, unit and period twice in the "
                                    "batch", field="element", row=i, code="duplicate"))
        accepted[key] = (i, target, period, value, str(row.get("comment") or ""))
    if not problems:
        problems = _rule_problems(session, accepted, sets_by_type, rules_by_set)
    if problems:
        raise InputError(problems)
    created = updated = 0
    existing = _existing(session, accepted)
    for (element_code, unit_code, period_text), (_, target, period, value, comment) in \
            accepted.items():
        year, quarter, month = period.fits()
        row = existing.get((element_code, unit_code, period_text))
        if row is None:
            session.add(DataValue(
                element_code=element_code, unit_kind=target.kind, unit_code=unit_code,
                division_code=target.division_code, tier=target.tier, period=period_text,
                period_type=period.type, start_date=period.start, end_date=period.end,
                year=year, quarter=quarter, month=month, value=value, comment=comment,
                stored_by=actor.username))
            created += 1
        else:
            row.value, row.stored_by = value, actor.username
            if comment:
                row.comment = comment
            updated += 1
    session.flush()
    audit(session, actor, "import", "data_values", source,
          after={"created": created, "updated": updated}, detail=f"{len(accepted)} values")
    return StoreResult(created, updated)


def _existing(session: Session, accepted: dict[tuple[str, str, str], Any]
              ) -> dict[tuple[str, str, str], DataValue]:
    out: dict[tuple[str, str, str], DataValue] = {}
    units = sorted({k[1] for k in accepted})
    periods = sorted({k[2] for k in accepted})
    for chunk in range(0, len(units), 500):
        for row in session.scalars(select(DataValue).where(
                DataValue.unit_code.in_(units[chunk:chunk + 500]),
                DataValue.period.in_(periods))):
            out[(row.element_code, row.unit_code, row.period)] = row
    return out


def _rule_problems(session: Session, accepted: dict[tuple[str, str, str], Any],
                   sets_by_type: dict[str, list[DataSet]],
                   rules_by_set: dict[str, list[ValidationRule]]) -> list[Problem]:
    """Validation rules of every (facility, period) report touched by the batch."""
    problems: list[Problem] = []
    existing = _existing(session, accepted)
    reports: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    first_row: dict[tuple[str, str], int] = {}
    targets: dict[tuple[str, str], tuple[_Target, Period]] = {}
    for (element_code, unit_code, period_text), (i, target, period, _, _) in accepted.items():
        key = (unit_code, period_text)
        first_row[key] = min(first_row.get(key, i), i)
        targets[key] = (target, period)
    for (element_code, unit_code, period_text), row in existing.items():
        if (unit_code, period_text) in targets:
            reports[(unit_code, period_text)].setdefault(element_code, row.value)
    for (element_code, unit_code, period_text), (_, _, _, value, _) in accepted.items():
        reports[(unit_code, period_text)][element_code] = value
    for key, values in reports.items():
        target, period = targets[key]
        if target.facility is None:
            continue
        context = _context(session, target.facility, period)
        for ds in sets_by_type.get(target.facility.type_code, []):
            if ds.period_type != period.type:
                continue
            for rule, message in check_rules(rules_by_set.get(ds.code, []), values, context):
                problems.append(Problem(reason=f"{key[0]} {key[1]}: {message}",
                                        field=rule.left, row=first_row[key],
                                        code=f"rule:{rule.code}"))
    return problems


# --------------------------------------------------------------------------- report forms


def get_data_set(session: Session, code: str) -> DataSet:
    """One data set by code.

    Raises
    ------
    NotFoundError
    """
    ensure_catalogue(session)
    row = session.scalar(select(DataSet).where(DataSet.code == code))
    if row is None:
        raise NotFoundError(f"data set '{code}'")
    return row


def submit_report(session: Session, actor: Actor, *, data_set: str, facility: str, period: str,
                  values: dict[str, Any], comment: str = "",
                  today: date | None = None) -> dict[str, Any]:
    """Store one facility's report form for a period and record its completeness/timeliness.

    Raises
    ------
    InputError
        On an element outside the form, a facility type the form does not apply to, a locked
        period or a broken rule (nothing is written).
    """
    today = today or local_today()
    ds = get_data_set(session, data_set)
    unit = session.scalar(select(Facility).where(Facility.code == facility))
    if unit is None:
        raise NotFoundError(f"facility '{facility}'")
    problems = []
    if unit.type_code not in ds.facility_types:
        problems.append(Problem(reason=f"form '{ds.code}' is not for a {unit.type_code}",
                                field="facility"))
    p = parse_period(period)
    if p.type != ds.period_type:
        problems.append(Problem(reason=f"form '{ds.code}' is reported per {ds.period_type}",
                                field="period"))
    outside = sorted(set(values) - set(ds.elements))
    if outside:
        problems.append(Problem(reason=f"not on this form: {', '.join(outside)}",
                                field="values"))
    if problems:
        raise InputError(problems)
    rows = [{"element": k, "unit": facility, "period": p.text, "value": v}
            for k, v in values.items() if v is not None and str(v).strip() != ""]
    result = store_values(session, actor, rows, source=f"form:{ds.code}", today=today)
    submission = session.scalar(select(ReportSubmission).where(
        ReportSubmission.data_set_code == ds.code, ReportSubmission.facility_code == facility,
        ReportSubmission.period == p.text))
    on_time = today <= deadline(ds, p)
    if submission is None:
        division_code = session.scalar(select(Division.code).where(
            Division.id == unit.division_id)) or unit.division_prefix.ljust(12, "0")
        submission = ReportSubmission(data_set_code=ds.code, facility_code=facility,
                                      division_code=division_code, period=p.text,
                                      submitted_by=actor.username, on_time=on_time,
                                      comment=comment)
        session.add(submission)
    else:
        submission.submitted_by = actor.username
        submission.comment = comment or submission.comment
    session.flush()
    return {**result.as_dict(), "on_time": submission.on_time,
            "deadline": deadline(ds, p).isoformat()}


def report_form(session: Session, actor: Actor, *, data_set: str, facility: str,
                period: str, today: date | None = None) -> dict[str, Any]:
    """The form's elements with the stored values, rules, deadline and lock state."""
    today = today or local_today()
    ds = get_data_set(session, data_set)
    unit = session.scalar(select(Facility).where(Facility.code == facility))
    if unit is None or not unit.division_prefix.startswith(actor.division_prefix) or (
            actor.facility_id is not None and unit.id != actor.facility_id):
        raise NotFoundError(f"facility '{facility}'")
    p = parse_period(period)
    stored = {v.element_code: v for v in session.scalars(select(DataValue).where(
        DataValue.unit_code == facility, DataValue.period == p.text))}
    names = {e.code: e for e in session.scalars(select(DataElement).where(
        DataElement.code.in_(ds.elements)))}
    submission = session.scalar(select(ReportSubmission).where(
        ReportSubmission.data_set_code == ds.code, ReportSubmission.facility_code == facility,
        ReportSubmission.period == p.text))
    return {
        "data_set": ds.code, "name_zh": ds.name_zh, "name_en": ds.name_en,
        "facility": facility, "facility_name": unit.name, "period": p.text,
        "deadline": deadline(ds, p).isoformat(),
        "locked": today > deadline(ds, p) and actor.role != "admin",
        "submitted": submission is not None,
        "on_time": submission.on_time if submission else None,
        "comment": submission.comment if submission else "",
        "elements": [{"code": c, "name_zh": names[c].name_zh, "name_en": names[c].name_en,
                      "value_type": names[c].value_type,
                      "value": stored[c].value if c in stored else None,
                      "comment": stored[c].comment if c in stored else ""}
                     for c in ds.elements if c in names],
        "rules": [{"code": r.code, "rule": f"{r.left} {r.operator} {r.right}",
                   "message_zh": r.message_zh, "message_en": r.message_en}
                  for r in session.scalars(select(ValidationRule).where(
                      ValidationRule.data_set_code == ds.code))],
    }


def completeness(session: Session, actor: Actor, *, data_set: str, unit: str,
                 period: str, today: date | None = None) -> dict[str, Any]:
    """Expected, submitted and on-time reports of a data set in a division subtree.

    Facilities are expected when of the form's types, open during the period and inside both
    the unit and the actor's scope. Completeness = submitted / expected; timeliness = on time /
    expected.
    """
    today = today or local_today()
    ds = get_data_set(session, data_set)
    p = parse_period(period)
    try:
        prefix = session.scalar(select(Division.prefix).where(
            Division.code == normalise_code(unit)))
    except ValueError as exc:
        raise InputError.single(str(exc), field="unit") from exc
    if prefix is None or not prefix.startswith(actor.division_prefix):
        raise NotFoundError(f"division '{unit}'")
    expected = list(session.scalars(select(Facility).where(
        Facility.division_prefix.like(prefix + "%"), Facility.type_code.in_(ds.facility_types),
        (Facility.opened_on.is_(None)) | (Facility.opened_on <= p.end),
        (Facility.closed_on.is_(None)) | (Facility.closed_on >= p.start)).order_by(Facility.code)))
    submitted = {s.facility_code: s for s in session.scalars(select(ReportSubmission).where(
        ReportSubmission.data_set_code == ds.code, ReportSubmission.period == p.text,
        ReportSubmission.division_code.like(prefix + "%")))}
    rows = [{"facility": f.code, "name": f.name, "submitted": f.code in submitted,
             "on_time": submitted[f.code].on_time if f.code in submitted else False,
             "submitted_at": submitted[f.code].submitted_at.isoformat()
             if f.code in submitted else None} for f in expected]
    n = len(rows)
    done = sum(r["submitted"] for r in rows)
    timely = sum(r["on_time"] for r in rows)
    return {"data_set": ds.code, "unit": unit, "period": p.text,
            "deadline": deadline(ds, p).isoformat(), "past_deadline": today > deadline(ds, p),
            "expected": n, "submitted": done, "on_time": timely,
            "completeness": round(100.0 * done / n, 2) if n else None,
            "timeliness": round(100.0 * timely / n, 2) if n else None, "facilities": rows}


# --------------------------------------------------------------------------- imports / exports


def import_table(session: Session, actor: Actor, data: bytes, filename: str, *,
                 today: date | None = None) -> StoreResult:
    """Import a CSV/.xlsx of values (columns ``element``, ``unit``, ``period``, ``value``,
    optional ``comment``; ``facility`` is accepted for ``unit``), all or nothing.
    """
    rows = read_table_bytes(data, filename)
    missing = [c for c in ("element", "period", "value") if rows and c not in rows[0]]
    if rows and "unit" not in rows[0] and "facility" not in rows[0]:
        missing.append("unit")
    if missing:
        raise InputError([Problem(reason="missing column", field=c) for c in missing])
    for row in rows:
        row.setdefault("unit", row.get("facility", ""))
    return store_values(session, actor, rows, source=f"file:{filename}", today=today)


def import_data_value_set(session: Session, actor: Actor, payload: bytes | str | dict[str, Any],
                          *, today: date | None = None) -> StoreResult:
    """Import a DHIS2 ``dataValueSets`` JSON document, all or nothing."""
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError.single(f"not JSON: {exc}", field="file") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("dataValues"), list):
        raise InputError.single("expected an object with a 'dataValues' list",
                                field="dataValues")
    defaults = {"period": payload.get("period"), "orgUnit": payload.get("orgUnit")}
    rows = []
    for item in payload["dataValues"]:
        item = item if isinstance(item, dict) else {}
        rows.append({"element": item.get("dataElement"),
                     "unit": item.get("orgUnit") or defaults["orgUnit"],
                     "period": item.get("period") or defaults["period"],
                     "value": item.get("value"), "comment": item.get("comment", "")})
    return store_values(session, actor, rows, source="dhis2", today=today)


def query_values(session: Session, actor: Actor, *, unit: str | None = None,
                 elements: Sequence[str] | None = None, period: str | None = None,
                 data_set: str | None = None, offset: int = 0,
                 limit: int | None = None) -> tuple[int, list[DataValue]]:
    """Stored values in the actor's scope, filtered by unit subtree, elements and period.

    ``period`` selects every value lying inside it (a year returns its months and days).
    """
    query = select(DataValue).where(DataValue.division_code.like(actor.division_prefix + "%"))
    if actor.facility_id is not None:
        own = session.scalar(select(Facility.code).where(Facility.id == actor.facility_id))
        query = query.where(DataValue.unit_code == own)
    if unit:
        facility = session.scalar(select(Facility.code).where(Facility.code == unit))
        if facility is not None:
            query = query.where(DataValue.unit_code == unit)
        else:
            try:
                code12 = normalise_code(unit)
            except ValueError as exc:
                raise InputError.single(str(exc), field="unit") from exc
            query = query.where(DataValue.division_code.like(prefix_of(code12) + "%"))
    codes = list(elements or [])
    if data_set:
        codes += get_data_set(session, data_set).elements
    if codes:
        query = query.where(DataValue.element_code.in_(codes))
    if period:
        p = parse_period(period)
        query = query.where(DataValue.start_date >= p.start, DataValue.end_date <= p.end)
    query = query.order_by(DataValue.unit_code, DataValue.start_date, DataValue.element_code)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if limit is not None:
        query = query.offset(offset).limit(limit)
    return total, list(session.scalars(query))


def value_dict(v: DataValue) -> dict[str, Any]:
    """A data value as plain data."""
    return {"element": v.element_code, "unit": v.unit_code, "unit_kind": v.unit_kind,
            "division_code": v.division_code, "tier": v.tier, "period": v.period,
            "value": v.value, "comment": v.comment, "stored_by": v.stored_by,
            "updated_at": v.updated_at.isoformat() if v.updated_at else None}


def export_data_value_set(session: Session, actor: Actor, **filters: Any) -> dict[str, Any]:
    """Values as a DHIS2 ``dataValueSets`` document (filters as :func:`query_values`)."""
    _, rows = query_values(session, actor, **filters)
    return {"dataValues": [
        {"dataElement": v.element_code, "period": dhis2_period(parse_period(v.period)),
         "orgUnit": v.unit_code, "value": f"{v.value:g}", "storedBy": v.stored_by,
         "lastUpdated": v.updated_at.isoformat() if v.updated_at else None,
         "comment": v.comment} for v in rows]}
