r"""Indicator values by org unit and period: aggregation up the tree and over periods.

For an org unit *u* (a division subtree or one facility) and a period *P*, a data element's
total is

.. math:: E(u, P) = \sum \{ v.value : v.element = E,\; v \in u,\; P.start \le v.start,\;
          v.end \le P.end \}

where :math:`v \in u` means the value's stored ``division_code`` starts with *u*'s prefix (or
its ``unit_code`` is the facility). The stored code is the one at the time of reporting, so
facilities that closed or moved and divisions that were reorganised keep their history.
``E__group`` restricts the sum to values whose stored facility tier is in the tier group.
An indicator is then ``factor × numerator / denominator`` evaluated element-wise over all the
units requested (see :mod:`tiercare.indicators.expressions`), with facts from
:mod:`tiercare.indicators.facts` for names that are not data elements.

Status of a value:

* ``ok`` — computed;
* ``no_data`` — a data element has no value at all in the unit and period, or a fact's source
  module holds no data (``sources`` names them);
* ``no_value`` — inputs exist but the result is undefined (zero denominator, a population
  asked of a facility).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, delete, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from tiercare.auth.service import Actor
from tiercare.errors import InputError, NotFoundError
from tiercare.indicators.catalogue import ensure_catalogue, tier_groups
from tiercare.indicators.expressions import Expression, parse_expression, split_name
from tiercare.indicators.facts import FACTS, Unit, day_bounds
from tiercare.indicators.models import AnalyticsValue, DataElement, DataValue, Indicator, Scorecard
from tiercare.indicators.periods import Period, parse_period
from tiercare.registry.codes import LEVEL_DIGITS, level_of, normalise_code, prefix_of
from tiercare.registry.models import Division, Facility

REPORTS_SOURCE = "reports"


@dataclass(frozen=True)
class IndicatorValue:
    """One indicator for one unit and period."""

    indicator: str
    unit: str
    unit_name: str
    period: str
    value: float | None
    numerator: float | None
    denominator: float | None
    status: str
    sources: tuple[str, ...]
    target: float | None
    target_direction: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        out = asdict(self)
        out["sources"] = list(self.sources)
        return out


# --------------------------------------------------------------------------- units


def resolve_unit(session: Session, code: str, *, actor: Actor | None = None) -> Unit:
    """The org unit named by a division code (2–12 digits) or a facility code.

    A division code that is no longer in the registry (reorganised away) still resolves when
    data values were reported under it.

    Raises
    ------
    NotFoundError
        Unknown code, or outside the actor's scope.
    """
    raw = str(code).strip()
    unit: Unit | None = None
    if raw.isdigit() and len(raw) in LEVEL_DIGITS.values():
        code12 = normalise_code(raw)
        division = session.scalar(select(Division).where(Division.code == code12))
        if division is not None:
            unit = Unit("division", code12, division.name, division.prefix,
                        level=division.level)
        else:
            prefix = prefix_of(code12)
            if session.scalar(select(DataValue.id).where(
                    DataValue.division_code.like(prefix + "%")).limit(1)) is not None:
                unit = Unit("division", code12, code12, prefix, level=level_of(code12))
    if unit is None:
        facility = session.scalar(select(Facility).where(Facility.code == raw))
        if facility is not None:
            unit = Unit("facility", facility.code, facility.name, facility.division_prefix,
                        facility_id=facility.id, type_code=facility.type_code)
    if unit is None:
        raise NotFoundError(f"org unit '{code}'")
    if actor is not None and not in_scope(actor, unit):
        raise NotFoundError(f"org unit '{code}'")
    return unit


def in_scope(actor: Actor, unit: Unit) -> bool:
    """True when the actor may see the unit."""
    if actor.facility_id is not None:
        return unit.kind == "facility" and unit.facility_id == actor.facility_id
    return unit.prefix.startswith(actor.division_prefix)


def child_units(session: Session, unit: Unit) -> list[Unit]:
    """Drill-down: child divisions (above township), else the facilities of the subtree.

    At every level, facilities located directly in the division (not in a child) are listed too.
    """
    if unit.kind == "facility":
        return []
    out: list[Unit] = []
    if unit.level not in ("township", "village"):
        parent = session.scalar(select(Division.id).where(Division.code == unit.code))
        for d in session.scalars(select(Division).where(Division.parent_id == parent,
                                                        Division.active.is_(True))
                                 .order_by(Division.code)):
            out.append(Unit("division", d.code, d.name, d.prefix, level=d.level))
        facilities = select(Facility).where(Facility.division_prefix == unit.prefix)
    else:
        facilities = select(Facility).where(Facility.division_prefix.like(unit.prefix + "%"))
    for f in session.scalars(facilities.order_by(Facility.code)):
        out.append(Unit("facility", f.code, f.name, f.division_prefix, facility_id=f.id,
                        type_code=f.type_code))
    return out


# --------------------------------------------------------------------------- element totals


def element_totals(session: Session, names: set[str], units: Sequence[Unit],
                   period: Period) -> dict[str, np.ndarray]:
    """Totals of data-element names (``E`` or ``E__group``) per unit, NaN where none reported.

    A ``E__group`` total is 0 (not NaN) when ``E`` has values in the unit but none in the group.
    """
    bases = sorted({split_name(n)[0] for n in names})
    out = {n: np.full(len(units), np.nan) for n in names}
    if not bases or not units:
        return out
    clauses = []
    for u in units:
        if u.kind == "facility":
            clauses.append((DataValue.unit_kind == "facility") & (DataValue.unit_code == u.code))
        else:
            clauses.append(DataValue.division_code.like(u.prefix + "%"))
    rows = session.execute(
        select(DataValue.element_code, DataValue.tier, DataValue.unit_kind, DataValue.unit_code,
               DataValue.division_code, func.sum(DataValue.value), func.count(DataValue.id))
        .where(DataValue.element_code.in_(bases), DataValue.start_date >= period.start,
               DataValue.end_date <= period.end, or_(*clauses))
        .group_by(DataValue.element_code, DataValue.tier, DataValue.unit_kind,
                  DataValue.unit_code, DataValue.division_code)
    ).all()
    frame = pd.DataFrame(rows, columns=["element", "tier", "kind", "unit", "division", "value",
                                        "n"])
    if frame.empty:
        return out
    groups = tier_groups()
    for i, u in enumerate(units):
        if u.kind == "facility":
            inside = frame[(frame["kind"] == "facility") & (frame["unit"] == u.code)]
        else:
            inside = frame[frame["division"].str.startswith(u.prefix)]
        for name in names:
            element, group = split_name(name)
            rows_e = inside[inside["element"] == element]
            if rows_e.empty:
                continue
            if group:
                rows_e = rows_e[rows_e["tier"].isin(groups[group])]
            out[name][i] = float(rows_e["value"].sum())
    return out


# --------------------------------------------------------------------------- compute


@dataclass(frozen=True)
class _Compiled:
    row: Indicator
    numerator: Expression
    denominator: Expression


def _compile(rows: Sequence[Indicator]) -> list[_Compiled]:
    return [_Compiled(r, parse_expression(r.numerator, field="numerator"),
                      parse_expression(r.denominator or "1", field="denominator"))
            for r in rows]


def _met(value: float, target: float | None, direction: str) -> bool | None:
    if target is None or math.isnan(value):
        return None
    return value >= target if direction == "min" else value <= target


def _clean(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def load_indicators(session: Session, codes: Sequence[str] | None) -> list[Indicator]:
    """Active indicators (all, or the given codes in that order).

    Raises
    ------
    NotFoundError
        On an unknown code.
    """
    ensure_catalogue(session)
    if not codes:
        return list(session.scalars(select(Indicator).where(Indicator.active.is_(True))
                                    .order_by(Indicator.group, Indicator.code)))
    rows = {r.code: r for r in session.scalars(select(Indicator).where(
        Indicator.code.in_(list(codes))))}
    missing = [c for c in codes if c not in rows]
    if missing:
        raise NotFoundError(f"indicator {', '.join(missing)}")
    return [rows[c] for c in codes]


def compute(session: Session, *, indicators: Sequence[Indicator], units: Sequence[Unit],
            periods: Sequence[Period]) -> list[IndicatorValue]:
    """Values of ``indicators`` for every unit and period (indicator-major order).

    One SQL query per period fetches every element total; each fact's provider runs once per
    period for all units; expressions are evaluated on arrays over the units.
    """
    compiled = _compile(indicators)
    elements = set(session.scalars(select(DataElement.code)))
    names: set[str] = set()
    for c in compiled:
        names |= c.numerator.names | c.denominator.names
    element_names = {n for n in names if split_name(n)[0] in elements}
    fact_names = names - element_names
    out: list[IndicatorValue] = []
    for period in periods:
        values: dict[str, np.ndarray] = element_totals(session, element_names, units, period)
        sources: dict[str, str] = {n: REPORTS_SOURCE for n in element_names}
        absent: set[str] = set()
        for name in sorted(fact_names):
            fetched, source = FACTS.fetch(session, name, units, period)
            sources[name] = source
            if fetched is None:
                absent.add(name)
                values[name] = np.full(len(units), np.nan)
            else:
                values[name] = np.array([fetched.get(u.code, np.nan) for u in units],
                                        dtype=float)
        for c in compiled:
            used = c.numerator.names | c.denominator.names
            num = np.broadcast_to(c.numerator.evaluate(values), (len(units),))
            den = np.broadcast_to(c.denominator.evaluate(values), (len(units),))
            with np.errstate(divide="ignore", invalid="ignore"):
                result = c.row.factor * num / den
            result = np.where(np.isfinite(result), result, np.nan)
            for i, u in enumerate(units):
                missing = sorted({sources[n] for n in used if n in absent or (
                    n in element_names and np.isnan(values[n][i]))})
                value = float(result[i])
                status = "no_data" if missing else ("ok" if not math.isnan(value)
                                                    else "no_value")
                out.append(IndicatorValue(
                    indicator=c.row.code, unit=u.code, unit_name=u.name, period=period.text,
                    value=_clean(value), numerator=_clean(float(num[i])),
                    denominator=_clean(float(den[i])), status=status, sources=tuple(missing),
                    target=c.row.target, target_direction=c.row.target_direction,
                    met=_met(value, c.row.target, c.row.target_direction)))
    order = {c.row.code: k for k, c in enumerate(compiled)}
    out.sort(key=lambda v: order[v.indicator])
    return out


def analytics(session: Session, actor: Actor, *, indicators: Sequence[str] | None,
              units: Sequence[str], periods: Sequence[str],
              children: bool = False) -> list[IndicatorValue]:
    """Resolve codes (in the actor's scope) and compute; ``children`` adds the drill-down."""
    if not units:
        raise InputError.single("name at least one org unit", field="unit")
    if not periods:
        raise InputError.single("name at least one period", field="period")
    resolved = [resolve_unit(session, code, actor=actor) for code in units]
    if children:
        resolved += [c for u in resolved for c in child_units(session, u) if in_scope(actor, c)]
    parsed = [parse_period(p) for p in periods]
    return compute(session, indicators=load_indicators(session, indicators), units=resolved,
                   periods=parsed)


# --------------------------------------------------------------------------- re-aggregation


_PERIOD_SQL = {
    "month": ("month IS NOT NULL",
              "CAST(year AS VARCHAR(4)) || '-' || CASE WHEN month < 10 THEN '0' ELSE '' END "
              "|| CAST(month AS VARCHAR(2))", "year, month"),
    "quarter": ("quarter IS NOT NULL",
                "CAST(year AS VARCHAR(4)) || 'Q' || CAST(quarter AS VARCHAR(1))",
                "year, quarter"),
    "year": ("year IS NOT NULL", "CAST(year AS VARCHAR(4))", "year"),
}
_AGG_LEVELS = ("province", "city", "county", "township")


def rebuild_analytics(session: Session) -> int:
    """Full re-aggregation: totals by element, tier, division prefix and month/quarter/year.

    Materialises :class:`AnalyticsValue` rows for every division level down to township (a
    facility's own values are the raw data). The raw values are scanned once, into a temporary
    table of township × (year, quarter, month) totals; each coarser level is a ``GROUP BY`` of
    the level below (county of townships, city of counties…), and every level's month, quarter
    and year rows are grouped from its table. The lookup index is dropped during the bulk
    insert and rebuilt after. The SQL runs unchanged on SQLite and PostgreSQL. Returns the
    number of rows written.
    """
    dialect = session.get_bind().dialect.name
    session.execute(text("TRUNCATE analytics_values") if dialect == "postgresql"
                    else delete(AnalyticsValue))
    session.execute(text("DROP INDEX IF EXISTS ix_analytics_values_lookup"))
    levels = sorted(_AGG_LEVELS, key=lambda name: -LEVEL_DIGITS[name])  # township first
    source, source_column = "data_values", "division_code"
    for level in levels:
        digits = LEVEL_DIGITS[level]
        table = f"tmp_analytics_{level}"
        session.execute(text(f"DROP TABLE IF EXISTS {table}"))
        session.execute(text(
            f"CREATE TEMPORARY TABLE {table} AS "
            f"SELECT element_code, tier, substr({source_column}, 1, {digits}) AS prefix, year, "
            f"quarter, month, SUM(value) AS value FROM {source} WHERE year IS NOT NULL "
            f"GROUP BY element_code, tier, substr({source_column}, 1, {digits}), year, "
            "quarter, month"))
        for where, period_sql, group in _PERIOD_SQL.values():
            session.execute(text(
                "INSERT INTO analytics_values (element_code, tier, division_prefix, period, value) "
                f"SELECT element_code, tier, prefix, {period_sql}, SUM(value) FROM {table} "
                f"WHERE {where} GROUP BY element_code, tier, prefix, {group}"))
        if source != "data_values":
            session.execute(text(f"DROP TABLE {source}"))
        source, source_column = table, "prefix"
    session.execute(text(f"DROP TABLE {source}"))
    session.execute(text("CREATE INDEX ix_analytics_values_lookup ON analytics_values "
                         "(division_prefix, period, element_code)"))
    session.flush()
    return int(session.scalar(select(func.count(AnalyticsValue.id))) or 0)


# --------------------------------------------------------------------------- scorecard


def scorecard(session: Session, actor: Actor, *, code: str, unit: str,
              period: str) -> dict[str, Any]:
    r"""Score the facilities of a scorecard's types in ``unit`` for ``period`` and rank them.

    Each item scores :math:`w \cdot a` with achievement :math:`a = \min(v / t, 1)` for an "at
    least" target and :math:`a = \min(t / v, 1)` for an "at most" target (:math:`a = 1` when
    :math:`v = 0`); a missing value scores 0 and is listed. The total is
    :math:`100 \sum w a / \sum w`.
    """
    card = session.scalar(select(Scorecard).where(Scorecard.code == code))
    if card is None:
        raise NotFoundError(f"scorecard '{code}'")
    root = resolve_unit(session, unit, actor=actor)
    facilities = [u for u in _subtree_facilities(session, root)
                  if u.type_code in card.facility_types and in_scope(actor, u)]
    items = card.items
    rows = load_indicators(session, [i["indicator"] for i in items])
    values = compute(session, indicators=rows, units=facilities,
                     periods=[parse_period(period)])
    by_key = {(v.indicator, v.unit): v for v in values}
    total_weight = float(sum(i["weight"] for i in items)) or 1.0
    ranked = []
    for f in facilities:
        parts, score, missing = [], 0.0, []
        for item in items:
            v = by_key[(item["indicator"], f.code)]
            achievement = _achievement(v)
            if achievement is None:
                missing.append(item["indicator"])
                achievement = 0.0
            score += item["weight"] * achievement
            parts.append({"indicator": item["indicator"], "weight": item["weight"],
                          "value": v.value, "target": v.target, "status": v.status,
                          "achievement": round(achievement, 4)})
        ranked.append({"facility": f.code, "name": f.name, "type": f.type_code,
                       "score": round(100.0 * score / total_weight, 2), "items": parts,
                       "missing": missing})
    ranked.sort(key=lambda r: (-r["score"], r["facility"]))
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    return {"scorecard": card.code, "name_zh": card.name_zh, "name_en": card.name_en,
            "unit": root.code, "period": parse_period(period).text, "facilities": ranked}


def _achievement(v: IndicatorValue) -> float | None:
    if v.value is None or v.target is None:
        return None
    if v.target_direction == "min":
        return min(v.value / v.target, 1.0) if v.target else 1.0
    return 1.0 if v.value <= 0 else min(v.target / v.value, 1.0)


def _subtree_facilities(session: Session, root: Unit) -> list[Unit]:
    if root.kind == "facility":
        return [root]
    query = select(Facility).where(Facility.division_prefix.like(root.prefix + "%"),
                                   Facility.closed_on.is_(None)).order_by(Facility.code)
    return [Unit("facility", f.code, f.name, f.division_prefix, facility_id=f.id,
                 type_code=f.type_code) for f in session.scalars(query)]


# --------------------------------------------------------------------------- referral flows


def referral_flows(session: Session, actor: Actor, *, unit: str,
                   period: str) -> list[dict[str, Any]] | None:
    """Facility-to-facility referral counts in a period, for flows touching ``unit``.

    A flow is counted when its sending or receiving facility lies in the unit; rows give the
    two facilities, the direction, the number of referrals requested in the period and how many
    were completed. ``None`` when the referral module holds no data.
    """
    from tiercare.referral.models import Referral

    root = resolve_unit(session, unit, actor=actor)
    p = parse_period(period)
    if session.scalar(select(func.count(Referral.id))) == 0:
        return None
    start, end = day_bounds(p)
    sender, receiver = aliased(Facility), aliased(Facility)
    rows = session.execute(
        select(sender.code, sender.name, receiver.code, receiver.name, Referral.direction,
               func.count(Referral.id),
               func.sum(case((Referral.status == "completed", 1), else_=0)))
        .join(sender, sender.id == Referral.from_facility_id)
        .join(receiver, receiver.id == Referral.to_facility_id)
        .where(Referral.requested_at >= start, Referral.requested_at < end,
               or_(_facility_in(sender, root), _facility_in(receiver, root)))
        .group_by(sender.code, sender.name, receiver.code, receiver.name, Referral.direction)
        .order_by(func.count(Referral.id).desc(), sender.code, receiver.code)).all()
    return [{"from": a, "from_name": an_, "to": b, "to_name": bn, "direction": d,
             "referrals": int(n), "completed": int(c or 0)}
            for a, an_, b, bn, d, n, c in rows]


def _facility_in(model: Any, unit: Unit) -> Any:
    if unit.kind == "facility":
        return model.id == unit.facility_id
    return model.division_prefix.like(unit.prefix + "%")


# --------------------------------------------------------------------------- pivot / export


def values_frame(values: Sequence[IndicatorValue]) -> pd.DataFrame:
    """Long table of values (one row per indicator, unit and period)."""
    return pd.DataFrame([{**v.as_dict(), "sources": ";".join(v.sources)} for v in values],
                        columns=["indicator", "unit", "unit_name", "period", "value",
                                 "numerator", "denominator", "status", "sources", "target",
                                 "target_direction", "met"])


def pivot_frame(values: Sequence[IndicatorValue]) -> pd.DataFrame:
    """Wide table: rows (indicator, unit, unit name), one column per period."""
    long = values_frame(values)
    if long.empty:
        return long
    wide = long.pivot_table(index=["indicator", "unit", "unit_name"], columns="period",
                            values="value", aggfunc="first", dropna=False)
    return wide.reset_index()


def frame_bytes(frame: pd.DataFrame, *, fmt: str) -> bytes:
    """A table as CSV (UTF-8 with BOM, for Excel) or .xlsx bytes."""
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8-sig")
    if fmt == "xlsx":
        buffer = io.BytesIO()
        frame.to_excel(buffer, index=False, engine="openpyxl")
        return buffer.getvalue()
    raise InputError.single("format must be csv or xlsx", field="format")
