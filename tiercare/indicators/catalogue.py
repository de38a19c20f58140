"""The indicator catalogue: a versioned data file loaded, validated and seeded into the database.

``tiercare/indicators/data/catalogue-<year>.json`` holds the data elements, the tier groups
(``primary_care`` = primary + village facilities…), the indicators (numerator, denominator,
factor, target), the report forms (data sets) with their validation rules and the scorecards.
:func:`seed_catalogue` inserts what the database lacks and refreshes rows an administrator has
not edited; administrators then edit elements, indicators, report forms, rules and scorecards
through the ``save_*`` functions (the API).
Every expression is checked: it must parse (see :mod:`tiercare.indicators.expressions`) and
every name must be a data element (optionally ``element__<tier group>``) or a registered fact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.errors import ForbiddenError, InputError, NotFoundError, Problem
from tiercare.indicators.expressions import parse_expression, split_name
from tiercare.indicators.facts import FACTS
from tiercare.indicators.models import (
    CatalogueVersion,
    DataElement,
    DataSet,
    Indicator,
    Scorecard,
    ValidationRule,
    row_dict,
)
from tiercare.indicators.periods import PERIOD_TYPES
from tiercare.registry.reference import facility_type_rows

_DATA = resources.files("tiercare.indicators") / "data"
CATALOGUE_FILE = "catalogue-2026.json"
VALUE_TYPES = ("count", "money_fen", "number")
UNIT_KINDS = ("facility", "division")
DIRECTIONS = ("min", "max")
OPERATORS = ("<=", "<", "==", ">=", ">")
#: Names a validation rule may use besides the elements of its data set.
RULE_CONTEXT = ("days", "beds", "physicians", "nurses")

ELEMENT_COLUMNS = ("code", "name_zh", "name_en", "value_type", "unit_kind", "description",
                   "version")
INDICATOR_COLUMNS = ("code", "name_zh", "name_en", "numerator", "denominator", "factor", "unit",
                     "target", "target_direction", "target_source", "group", "description",
                     "version", "active")
DATA_SET_COLUMNS = ("code", "name_zh", "name_en", "period_type", "facility_types", "elements",
                    "deadline_days", "version")
RULE_COLUMNS = ("code", "data_set_code", "left", "operator", "right", "message_zh", "message_en",
                "version")
SCORECARD_COLUMNS = ("code", "name_zh", "name_en", "facility_types", "items", "version")
#: Codes of data elements: names that indicator and rule expressions can use.
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class CatalogueFile:
    """The parsed catalogue file."""

    version: str
    effective_from: date
    tier_groups: dict[str, tuple[str, ...]]
    data_elements: tuple[dict[str, Any], ...]
    indicators: tuple[dict[str, Any], ...]
    data_sets: tuple[dict[str, Any], ...]
    validation_rules: tuple[dict[str, Any], ...]
    scorecards: tuple[dict[str, Any], ...]


@cache
def load_catalogue(name: str = CATALOGUE_FILE) -> CatalogueFile:
    """Read and validate a shipped catalogue file.

    Raises
    ------
    InputError
        Listing every problem of the file (unknown names, bad expressions, duplicates…).
    """
    raw = json.loads((_DATA / name).read_text(encoding="utf-8"))
    catalogue = CatalogueFile(
        version=str(raw["version"]),
        effective_from=date.fromisoformat(raw["effective_from"]),
        tier_groups={k: tuple(v) for k, v in raw["tier_groups"].items()},
        data_elements=tuple(raw["data_elements"]),
        indicators=tuple(raw["indicators"]),
        data_sets=tuple(raw["data_sets"]),
        validation_rules=tuple(raw["validation_rules"]),
        scorecards=tuple(raw.get("scorecards", [])),
    )
    problems = _check_catalogue(catalogue)
    if problems:
        raise InputError(problems)
    return catalogue


def tier_groups() -> dict[str, tuple[str, ...]]:
    """Tier groups usable as ``element__<group>`` (from the shipped catalogue)."""
    return load_catalogue().tier_groups


def check_names(names: frozenset[str] | set[str], elements: set[str], *, field: str,
                groups: dict[str, tuple[str, ...]] | None = None) -> list[Problem]:
    """Problems for names that are neither an element (``__group``) nor a fact."""
    problems = []
    groups = tier_groups() if groups is None else groups
    for name in sorted(names):
        element, group = split_name(name)
        if element in elements:
            if group and group not in groups:
                problems.append(Problem(reason=f"unknown tier group '{group}' in '{name}' "
                                        f"(one of {', '.join(groups)})", field=field))
            continue
        if FACTS.resolve(name) is None:
            problems.append(Problem(reason=f"unknown data element or fact '{name}'",
                                    field=field, code="unknown_name"))
    return problems


def _check_catalogue(cat: CatalogueFile) -> list[Problem]:
    problems: list[Problem] = []
    elements = {e["code"] for e in cat.data_elements}
    for i, e in enumerate(cat.data_elements, start=1):
        if e.get("value_type", "count") not in VALUE_TYPES:
            problems.append(Problem(reason="bad value_type", field="value_type", row=i))
        if FACTS.resolve(e["code"]) is not None:
            problems.append(Problem(reason=f"'{e['code']}' is also a fact", field="code", row=i))
        if "__" in e["code"]:
            problems.append(Problem(reason="'__' is reserved for tier groups", field="code",
                                    row=i))
    if len(elements) != len(cat.data_elements):
        problems.append(Problem(reason="duplicate data element codes", field="data_elements"))
    for i, ind in enumerate(cat.indicators, start=1):
        for part in ("numerator", "denominator"):
            try:
                expr = parse_expression(str(ind.get(part, "1")), field=part)
            except InputError as exc:
                problems += [Problem(reason=f"{ind['code']}: {p.reason}", field=part, row=i)
                             for p in exc.problems]
                continue
            problems += [Problem(reason=f"{ind['code']}: {p.reason}", field=part, row=i)
                         for p in check_names(expr.names, elements, field=part,
                                             groups=cat.tier_groups)]
        if ind.get("target_direction", "min") not in DIRECTIONS:
            problems.append(Problem(reason="target_direction must be min or max",
                                    field="target_direction", row=i))
    sets = {d["code"]: d for d in cat.data_sets}
    for i, d in enumerate(cat.data_sets, start=1):
        unknown = sorted(set(d["elements"]) - elements)
        if unknown:
            problems.append(Problem(reason=f"unknown elements {unknown}", field="elements",
                                    row=i))
    for i, rule in enumerate(cat.validation_rules, start=1):
        data_set = sets.get(rule["data_set"])
        if data_set is None:
            problems.append(Problem(reason="unknown data set", field="data_set", row=i))
            continue
        problems += rule_problems(rule["left"], rule["operator"], rule["right"],
                                  set(data_set["elements"]), row=i)
    indicators = {ind["code"] for ind in cat.indicators}
    for i, card in enumerate(cat.scorecards, start=1):
        for item in card["items"]:
            if item["indicator"] not in indicators:
                problems.append(Problem(reason=f"unknown indicator '{item['indicator']}'",
                                        field="items", row=i))
    return problems


def rule_problems(left: str, operator: str, right: str, elements: set[str], *,
                  row: int | None = None) -> list[Problem]:
    """Problems of a validation rule over ``elements`` and :data:`RULE_CONTEXT`."""
    problems = []
    if operator not in OPERATORS:
        problems.append(Problem(reason=f"operator must be one of {OPERATORS}", field="operator",
                                row=row))
    for side, text in (("left", left), ("right", right)):
        try:
            expr = parse_expression(text, field=side)
        except InputError as exc:
            problems += [Problem(reason=p.reason, field=side, row=row) for p in exc.problems]
            continue
        unknown = sorted(expr.names - elements - set(RULE_CONTEXT))
        if unknown:
            problems.append(Problem(reason=f"unknown names {unknown}", field=side, row=row))
    return problems


def _upsert(session: Session, model: Any, rows: list[dict[str, Any]],
            columns: tuple[str, ...]) -> int:
    existing = {r.code: r for r in session.scalars(select(model))}
    changed = 0
    for data in rows:
        row = existing.get(data["code"])
        if row is None:
            session.add(model(**{c: data[c] for c in columns if c in data}))
            changed += 1
        elif not getattr(row, "edited", False) and row.version != data.get("version"):
            for c in columns:
                if c in data:
                    setattr(row, c, data[c])
            changed += 1
    return changed


def seed_catalogue(session: Session, *, name: str = CATALOGUE_FILE) -> dict[str, int]:
    """Load the shipped catalogue into the database (idempotent; keeps administrators' edits).

    Returns
    -------
    dict
        Rows inserted or refreshed per kind.
    """
    cat = load_catalogue(name)
    version = {"version": cat.version}
    counts = {
        "data_elements": _upsert(session, DataElement,
                                 [{**e, **version} for e in cat.data_elements], ELEMENT_COLUMNS),
        "indicators": _upsert(session, Indicator,
                              [{"denominator": "1", "factor": 1.0, **i, **version}
                               for i in cat.indicators], INDICATOR_COLUMNS),
    }
    session.flush()
    counts["data_sets"] = _upsert(session, DataSet, [{**d, **version} for d in cat.data_sets],
                                  DATA_SET_COLUMNS)
    session.flush()
    counts["validation_rules"] = _upsert(
        session, ValidationRule,
        [{**r, "data_set_code": r["data_set"], **version} for r in cat.validation_rules],
        RULE_COLUMNS)
    counts["scorecards"] = _upsert(session, Scorecard,
                                   [{**s, **version} for s in cat.scorecards], SCORECARD_COLUMNS)
    if session.scalar(select(CatalogueVersion).where(
            CatalogueVersion.version == cat.version)) is None:
        session.add(CatalogueVersion(version=cat.version, effective_from=cat.effective_from))
    session.flush()
    return counts


def ensure_catalogue(session: Session) -> None:
    """Seed the shipped catalogue when the database has none yet."""
    if session.scalar(select(CatalogueVersion.id).limit(1)) is None:
        seed_catalogue(session)


def element_codes(session: Session) -> set[str]:
    """Codes of every data element in the database."""
    return set(session.scalars(select(DataElement.code)))


def get_indicator(session: Session, code: str) -> Indicator:
    """One indicator by code.

    Raises
    ------
    NotFoundError
    """
    row = session.scalar(select(Indicator).where(Indicator.code == code))
    if row is None:
        raise NotFoundError(f"indicator '{code}'")
    return row


def indicator_dict(row: Indicator) -> dict[str, Any]:
    """An indicator as plain data."""
    return {**row_dict(row, INDICATOR_COLUMNS), "edited": row.edited}


def element_dict(row: DataElement) -> dict[str, Any]:
    """A data element as plain data."""
    return {**row_dict(row, ELEMENT_COLUMNS), "edited": row.edited}


def _require_admin(actor: Actor, what: str) -> None:
    if actor.role != "admin":
        raise ForbiddenError(f"only administrators edit {what}")


def _store(session: Session, actor: Actor, model: Any, columns: tuple[str, ...], entity: str,
           data: dict[str, Any], as_dict: Any) -> Any:
    """Create or update the row of ``model`` with ``data['code']``, marked edited and audited."""
    row = session.scalar(select(model).where(model.code == data["code"]))
    before = as_dict(row) if row is not None else None
    if row is None:
        row = model(code=data["code"], version="local")
        session.add(row)
    for column in columns:
        if column in data and column not in ("code", "version"):
            setattr(row, column, data[column])
    if hasattr(model, "edited"):
        row.edited = True
    session.flush()
    audit(session, actor, "update" if before else "create", entity, row.code,
          before=before, after=as_dict(row))
    return row


def save_element(session: Session, actor: Actor, data: dict[str, Any]) -> DataElement:
    """Create or update a data element (administrators).

    Raises
    ------
    InputError
        On a bad value type or unit kind, or a code that clashes with a fact or a tier group.
    ForbiddenError
        When the actor is not an administrator.
    """
    _require_admin(actor, "data elements")
    problems: list[Problem] = []
    if data.get("value_type", "count") not in VALUE_TYPES:
        problems.append(Problem(reason=f"must be one of {', '.join(VALUE_TYPES)}",
                                field="value_type"))
    if data.get("unit_kind", "facility") not in UNIT_KINDS:
        problems.append(Problem(reason=f"must be one of {', '.join(UNIT_KINDS)}",
                                field="unit_kind"))
    code = data["code"]
    if not CODE_PATTERN.fullmatch(code) or "__" in code:
        problems.append(Problem(reason="use lower-case letters, digits and single underscores "
                                "(a name expressions can use)", field="code"))
    elif FACTS.resolve(code) is not None:
        problems.append(Problem(reason=f"'{code}' is already an operational fact", field="code"))
    if problems:
        raise InputError(problems)
    return _store(session, actor, DataElement, ELEMENT_COLUMNS, "data_element", data,
                  element_dict)


def save_indicator(session: Session, actor: Actor, data: dict[str, Any]) -> Indicator:
    """Create or update an indicator (administrators); expressions are checked first.

    Raises
    ------
    InputError
        On a bad expression, an unknown name or a bad direction.
    ForbiddenError
        When the actor is not an administrator.
    """
    _require_admin(actor, "indicators")
    elements = element_codes(session)
    problems: list[Problem] = []
    for part in ("numerator", "denominator"):
        try:
            expr = parse_expression(str(data.get(part, "1")), field=part)
        except InputError as exc:
            problems += exc.problems
            continue
        problems += check_names(expr.names, elements, field=part)
    if data.get("target_direction", "min") not in DIRECTIONS:
        problems.append(Problem(reason="must be min or max", field="target_direction"))
    if problems:
        raise InputError(problems)
    return _store(session, actor, Indicator, INDICATOR_COLUMNS, "indicator", data,
                  indicator_dict)


def data_set_dict(row: DataSet) -> dict[str, Any]:
    """A data set (report form) as plain data."""
    return {**row_dict(row, DATA_SET_COLUMNS), "edited": row.edited}


def save_data_set(session: Session, actor: Actor, data: dict[str, Any]) -> DataSet:
    """Create or update a report form (administrators): its elements, facility types, deadline.

    Raises
    ------
    InputError
        On an unknown element or facility type, or a bad period type.
    ForbiddenError
        When the actor is not an administrator.
    """
    _require_admin(actor, "report forms")
    problems: list[Problem] = []
    if data.get("period_type", "month") not in PERIOD_TYPES:
        problems.append(Problem(reason=f"must be one of {', '.join(PERIOD_TYPES)}",
                                field="period_type"))
    unknown = sorted(set(data.get("elements", [])) - element_codes(session))
    if unknown:
        problems.append(Problem(reason=f"unknown data elements: {', '.join(unknown)}",
                                field="elements"))
    if not data.get("elements"):
        problems.append(Problem(reason="a report form needs at least one element",
                                field="elements"))
    problems += _facility_type_problems(data.get("facility_types", []))
    if problems:
        raise InputError(problems)
    return _store(session, actor, DataSet, DATA_SET_COLUMNS, "data_set", data, data_set_dict)


def scorecard_dict(row: Scorecard) -> dict[str, Any]:
    """A scorecard as plain data."""
    return {**row_dict(row, SCORECARD_COLUMNS), "edited": row.edited}


def save_scorecard(session: Session, actor: Actor, data: dict[str, Any]) -> Scorecard:
    """Create or update a performance scorecard (administrators): indicators and weights.

    Raises
    ------
    InputError
        On an unknown indicator or facility type, a repeated indicator or no items.
    ForbiddenError
        When the actor is not an administrator.
    """
    _require_admin(actor, "scorecards")
    problems: list[Problem] = []
    items = data.get("items", [])
    if not items:
        problems.append(Problem(reason="a scorecard needs at least one indicator", field="items"))
    known = set(session.scalars(select(Indicator.code)))
    seen: set[str] = set()
    for row, item in enumerate(items, start=1):
        if item["indicator"] not in known:
            problems.append(Problem(reason=f"unknown indicator '{item['indicator']}'",
                                    field="items.indicator", row=row))
        elif item["indicator"] in seen:
            problems.append(Problem(reason=f"indicator '{item['indicator']}' listed twice",
                                    field="items.indicator", row=row))
        seen.add(item["indicator"])
    problems += _facility_type_problems(data.get("facility_types", []))
    if problems:
        raise InputError(problems)
    return _store(session, actor, Scorecard, SCORECARD_COLUMNS, "scorecard", data,
                  scorecard_dict)


def _facility_type_problems(types: list[str]) -> list[Problem]:
    known = {row["code"] for row in facility_type_rows()}
    unknown = sorted(set(types) - known)
    if not types:
        return [Problem(reason="name at least one facility type", field="facility_types")]
    if unknown:
        return [Problem(reason=f"unknown facility types: {', '.join(unknown)}",
                        field="facility_types")]
    return []


def rule_dict(row: ValidationRule) -> dict[str, Any]:
    """A validation rule as plain data."""
    return row_dict(row, RULE_COLUMNS)


def save_rule(session: Session, actor: Actor, data: dict[str, Any]) -> ValidationRule:
    """Create or update a validation rule (administrators); checked against its data set.

    Raises
    ------
    InputError
        On an unknown data set, a bad operator or expression, or a name that is neither an
        element of the data set nor one of :data:`RULE_CONTEXT`.
    ForbiddenError
        When the actor is not an administrator.
    """
    _require_admin(actor, "validation rules")
    data_set = session.scalar(select(DataSet).where(DataSet.code == data.get("data_set_code")))
    if data_set is None:
        raise InputError.single(f"unknown data set '{data.get('data_set_code')}'",
                                field="data_set_code")
    problems = rule_problems(str(data.get("left", "")), str(data.get("operator", "")),
                             str(data.get("right", "")), set(data_set.elements))
    if problems:
        raise InputError(problems)
    return _store(session, actor, ValidationRule, RULE_COLUMNS, "validation_rule", data,
                  rule_dict)
