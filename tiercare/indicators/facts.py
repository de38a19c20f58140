"""Operational facts: values computed from other modules' tables, by org unit and period.

Indicators may name a *fact* (``population``, ``beds``, ``referrals_up``,
``access_covered_15``…) wherever they may name a data element. Each fact has a provider, a
function ``provider(session, units, period, **params) -> {unit key: value} | None`` that reads
its source module's tables; ``None`` means "the source module holds no data", and the
indicator's value is then reported with status ``no_data`` naming the source.

Providers registered here:

========================  =======================================================================
source                    facts
========================  =======================================================================
``calendar``              ``days`` (length of the period)
``registry``              ``population``, ``population_rural``, ``population_urban``, ``beds``,
                          ``physicians``, ``nurses``, ``gps``, ``village_doctors``,
                          ``facilities``, ``villages``, ``villages_with_standard_clinic``
``planning``              ``access_population``, ``access_covered_<T>`` (``T`` minutes), each
                          optionally suffixed ``_<tier>``, from the latest stored access run
``referral``              ``referrals_up``, ``referrals_down``, ``referrals_completed``
``scheduling``            ``appointments_booked``, ``appointments_attended``
``surveillance``          ``fever_patients_daily``, ``fever_tests_daily``,
                          ``fever_positives_daily``, ``fever_referrals_daily``,
                          ``fever_reports_received``, ``fever_reports_expected``
``maternal``              ``pregnancies_high_risk``, ``pregnancies_high_risk_managed`` (when the
                          ``maternal_pregnancies`` table exists)
``immunization``          ``imm_children[_aged_<M>m]``, ``imm_doses[_<vaccine>]``,
                          ``imm_dosed_<vaccine>_<dose>`` (from ``imm_records``/``imm_children``)
========================  =======================================================================

A fact may also be declared without a provider (``provider=None``) for a module whose tables do
not exist yet; an indicator naming it then reports ``no_data`` with that module as source.

Registry facts describe the network *as it is now* for facilities open during the period
(opened on or before its end, not closed before its start); population is the division's
recorded population. Time stamps of referrals and appointments are compared with the period's
calendar days in the display time zone (:func:`day_bounds`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from tiercare.errors import InputError, Problem
from tiercare.indicators.models import AccessResult, AccessRun
from tiercare.indicators.periods import Period, local_today
from tiercare.registry.models import (
    Assessment,
    Division,
    Facility,
    FacilityResource,
    StaffMember,
)


@dataclass(frozen=True)
class Unit:
    """An org unit an indicator is computed for: a division subtree or one facility.

    Attributes
    ----------
    kind:
        ``division`` or ``facility``.
    code:
        12-digit division code or facility code (the key of results).
    name:
        Display name.
    prefix:
        Division subtree prefix (for a facility: the prefix of its division).
    facility_id:
        The facility's id (``None`` for a division).
    level:
        Division level, or ``facility``.
    """

    kind: str
    code: str
    name: str
    prefix: str
    facility_id: int | None = None
    level: str = "facility"
    type_code: str = ""


Provider = Callable[..., dict[str, float] | None]


@dataclass(frozen=True)
class Fact:
    """A registered fact: its name (or pattern), source module, description and provider."""

    name: str
    source: str
    description: str
    provider: Provider | None
    pattern: re.Pattern[str] | None = field(default=None, compare=False)


class FactRegistry:
    """Facts by exact name, plus patterns with parameters (``access_covered_<T>``)."""

    def __init__(self) -> None:
        self._facts: dict[str, Fact] = {}
        self._patterns: list[Fact] = []

    def register(self, name: str, source: str, description: str,
                 provider: Provider | None, *, pattern: str | None = None) -> None:
        """Register a fact; ``pattern`` (a regex with named groups) makes it parametrised.

        Raises
        ------
        InputError
            When the name is registered already.
        """
        if name in self._facts or any(f.name == name for f in self._patterns):
            raise InputError.single(f"fact '{name}' is registered already", field="name")
        fact = Fact(name, source, description, provider,
                    re.compile(pattern) if pattern else None)
        if pattern:
            self._patterns.append(fact)
        else:
            self._facts[name] = fact

    def resolve(self, name: str) -> tuple[Fact, dict[str, str]] | None:
        """The fact serving ``name`` and the parameters taken from it, or None."""
        if name in self._facts:
            return self._facts[name], {}
        for fact in self._patterns:
            assert fact.pattern is not None
            match = fact.pattern.fullmatch(name)
            if match:
                return fact, {k: v for k, v in match.groupdict().items() if v is not None}
        return None

    def describe(self) -> list[dict[str, Any]]:
        """Every fact as plain data (name, source, description, provided)."""
        return [{"name": f.name, "source": f.source, "description": f.description,
                 "provided": f.provider is not None}
                for f in [*self._facts.values(), *self._patterns]]

    def fetch(self, session: Session, name: str, units: Sequence[Unit],
              period: Period) -> tuple[dict[str, float] | None, str]:
        """Values of fact ``name`` for ``units`` in ``period`` and the fact's source.

        Returns ``(None, source)`` when the source module has no data.
        """
        resolved = self.resolve(name)
        if resolved is None:
            raise InputError.single(f"unknown fact '{name}'", field="expression")
        fact, params = resolved
        if fact.provider is None:
            return None, fact.source
        return fact.provider(session, units, period, **params), fact.source


# --------------------------------------------------------------------------- helpers


def _table_exists(session: Session, name: str) -> bool:
    return inspect(session.connection()).has_table(name)


def _facility_frame(session: Session, period: Period) -> pd.DataFrame:
    """Facilities open during ``period``: id, division prefix, type."""
    rows = session.execute(
        select(Facility.id, Facility.division_prefix, Facility.type_code).where(
            (Facility.opened_on.is_(None)) | (Facility.opened_on <= period.end),
            (Facility.closed_on.is_(None)) | (Facility.closed_on >= period.start),
        )
    ).all()
    return pd.DataFrame(rows, columns=["id", "prefix", "type_code"])


def _sum_by_unit(frame: pd.DataFrame, units: Sequence[Unit], *, value: str,
                 facility: str = "facility_id", prefix: str = "prefix") -> dict[str, float]:
    """Sum ``value`` over rows inside each unit (facility id, else division prefix)."""
    out: dict[str, float] = {}
    for unit in units:
        if frame.empty:
            out[unit.code] = 0.0
            continue
        if unit.kind == "facility":
            mask = frame[facility] == unit.facility_id
        else:
            mask = frame[prefix].astype(str).str.startswith(unit.prefix)
        out[unit.code] = float(frame.loc[mask, value].sum())
    return out


def day_bounds(period: Period) -> tuple[datetime, datetime]:
    """The period as ``[start, end)`` instants: its first and the day after its last
    midnight in the display time zone (Asia/Shanghai by default)."""
    from tiercare.config import get_settings

    zone = ZoneInfo(get_settings().timezone)
    return (datetime.combine(period.start, time.min, tzinfo=zone),
            datetime.combine(period.end + timedelta(days=1), time.min, tzinfo=zone))


# --------------------------------------------------------------------------- calendar


def _days(session: Session, units: Sequence[Unit], period: Period) -> dict[str, float]:
    return {u.code: float(period.days) for u in units}


# --------------------------------------------------------------------------- registry


def _population(column: str) -> Provider:
    def provide(session: Session, units: Sequence[Unit], period: Period) -> dict[str, float]:
        codes = [u.code for u in units if u.kind == "division"]
        rows = dict(session.execute(
            select(Division.code, getattr(Division, column)).where(Division.code.in_(codes))
        ).all()) if codes else {}
        return {u.code: float(rows[u.code]) if rows.get(u.code) is not None else float("nan")
                for u in units}

    provide.__doc__ = f"Division {column} (facilities: no value)."
    return provide


def _resources(category: str, items: tuple[str, ...] | None) -> Provider:
    def provide(session: Session, units: Sequence[Unit], period: Period) -> dict[str, float]:
        open_ = _facility_frame(session, period)
        query = select(FacilityResource.facility_id, FacilityResource.quantity).where(
            FacilityResource.category == category)
        if items is not None:
            query = query.where(FacilityResource.item.in_(items))
        res = pd.DataFrame(session.execute(query).all(), columns=["facility_id", "quantity"])
        frame = res.merge(open_, left_on="facility_id", right_on="id")
        return _sum_by_unit(frame, units, value="quantity")

    provide.__doc__ = f"Sum of {category} resources {items or 'of every item'}."
    return provide


def _facilities(session: Session, units: Sequence[Unit], period: Period) -> dict[str, float]:
    frame = _facility_frame(session, period).rename(columns={"id": "facility_id"})
    frame["n"] = 1.0
    return _sum_by_unit(frame, units, value="n")


def _village_doctors(session: Session, units: Sequence[Unit],
                     period: Period) -> dict[str, float]:
    rows = session.execute(
        select(StaffMember.facility_id, Facility.division_prefix)
        .join(Facility, Facility.id == StaffMember.facility_id)
        .where(StaffMember.cadre == "village_doctor", StaffMember.active.is_(True))
    ).all()
    frame = pd.DataFrame(rows, columns=["facility_id", "prefix"])
    frame["n"] = 1.0
    return _sum_by_unit(frame, units, value="n")


def _villages(session: Session, units: Sequence[Unit], period: Period) -> dict[str, float]:
    rows = session.execute(
        select(Division.code).where(Division.level == "village", Division.active.is_(True))
    ).scalars().all()
    frame = pd.DataFrame({"prefix": rows, "facility_id": None, "n": 1.0})
    return {u.code: (float("nan") if u.kind == "facility" else v)
            for u, v in zip(units, _sum_by_unit(frame, units, value="n").values(), strict=True)}


def _standard_villages(session: Session, units: Sequence[Unit],
                       period: Period) -> dict[str, float]:
    """Villages with an open village clinic whose latest assessment (by period end) is met."""
    clinics = session.execute(
        select(Facility.id, Facility.division_prefix).where(
            Facility.type_code == "village_clinic",
            (Facility.closed_on.is_(None)) | (Facility.closed_on >= period.start))
    ).all()
    assessments = pd.DataFrame(session.execute(
        select(Assessment.facility_id, Assessment.assessed_on, Assessment.unmet)
        .where(Assessment.assessed_on <= period.end)
    ).all(), columns=["facility_id", "assessed_on", "unmet"])
    standard: set[int] = set()
    if not assessments.empty:
        latest = assessments.sort_values("assessed_on").groupby("facility_id").tail(1)
        standard = {int(r.facility_id) for r in latest.itertuples() if not r.unmet}
    villages = {prefix for fid, prefix in clinics if fid in standard and len(prefix) == 12}
    frame = pd.DataFrame({"prefix": sorted(villages), "facility_id": None, "n": 1.0})
    return {u.code: (float("nan") if u.kind == "facility" else v)
            for u, v in zip(units, _sum_by_unit(frame, units, value="n").values(), strict=True)}


# --------------------------------------------------------------------------- planning


def store_access_coverage(session: Session, frame: pd.DataFrame, *, run_label: str) -> int:
    """Store a planning run's coverage per division as the latest access run.

    Parameters
    ----------
    session:
        Open session (the caller commits).
    frame:
        One row per division and tier with columns ``division`` (a division code),
        ``group`` (the tier, e.g. a facility level), ``population``, ``covered_<T>`` for each
        threshold ``T`` in minutes and optionally ``unreachable`` (ignored). Rows whose
        division is ``total`` are skipped.
    run_label:
        Label of the run (scenario name, date).

    Returns
    -------
    int
        The id of the stored run.

    Raises
    ------
    InputError
        On missing columns, unreadable codes or numbers, or covered > population.
    """
    from tiercare.registry.codes import normalise_code

    problems: list[Problem] = []
    for column in ("division", "group", "population"):
        if column not in frame.columns:
            problems.append(Problem(reason="missing column", field=column))
    thresholds = {c: c.removeprefix("covered_") for c in frame.columns
                  if str(c).startswith("covered_")}
    if not thresholds:
        problems.append(Problem(reason="no covered_<minutes> column", field="covered_15"))
    for column, minutes in thresholds.items():
        if not minutes.isdigit():
            problems.append(Problem(reason="threshold must be whole minutes", field=column))
    if problems:
        raise InputError(problems)
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(frame.reset_index(drop=True).to_dict("records"), start=1):
        if str(record["division"]).strip().lower() == "total":
            continue
        try:
            code = normalise_code(record["division"])
        except ValueError as exc:
            problems.append(Problem(reason=str(exc), field="division", row=i))
            continue
        population = pd.to_numeric(record["population"], errors="coerce")
        if pd.isna(population) or population < 0:
            problems.append(Problem(reason="population must be a number ≥ 0",
                                    field="population", row=i))
            continue
        for column, minutes in thresholds.items():
            covered = pd.to_numeric(record[column], errors="coerce")
            if pd.isna(covered) or not 0 <= covered <= population + 1e-6:
                problems.append(Problem(reason="must be between 0 and the population",
                                        field=column, row=i))
                continue
            rows.append({"division_code": code, "tier": str(record["group"]),
                         "threshold": int(minutes), "covered": float(covered),
                         "population": float(population)})
    if problems:
        raise InputError(problems)
    run = AccessRun(label=run_label)
    session.add(run)
    session.flush()
    session.add_all(AccessResult(run_id=run.id, computed_at=run.computed_at, **row)
                    for row in rows)
    session.flush()
    return run.id


def _latest_access(session: Session) -> pd.DataFrame | None:
    run_id = session.scalar(select(func.max(AccessRun.id)))
    if run_id is None:
        return None
    rows = session.execute(
        select(AccessResult.division_code, AccessResult.tier, AccessResult.threshold,
               AccessResult.covered, AccessResult.population)
        .where(AccessResult.run_id == run_id)
    ).all()
    return pd.DataFrame(rows, columns=["prefix", "tier", "threshold", "covered", "population"])


def _access_rows(frame: pd.DataFrame, tier: str | None) -> pd.DataFrame:
    """Rows of one tier; without a tier: ``all`` when stored, else the best tier per division."""
    if tier is not None:
        return frame[frame["tier"] == tier]
    if (frame["tier"] == "all").any():
        return frame[frame["tier"] == "all"]
    return frame.groupby(["prefix", "threshold"], as_index=False).agg(
        covered=("covered", "max"), population=("population", "max"))


def _access_covered(session: Session, units: Sequence[Unit], period: Period, *,
                    minutes: str, tier: str | None = None) -> dict[str, float] | None:
    """Population within ``minutes`` (of ``tier``; without one: see :func:`_access_rows`)."""
    frame = _latest_access(session)
    if frame is None:
        return None
    rows = _access_rows(frame, tier)
    rows = rows[rows["threshold"] == int(minutes)].assign(facility_id=None)
    if rows.empty:
        return {u.code: float("nan") for u in units}
    return {u.code: (float("nan") if u.kind == "facility" else v) for u, v in
            zip(units, _sum_by_unit(rows, units, value="covered").values(), strict=True)}


def _access_population(session: Session, units: Sequence[Unit], period: Period, *,
                       tier: str | None = None) -> dict[str, float] | None:
    frame = _latest_access(session)
    if frame is None:
        return None
    rows = _access_rows(frame, tier)
    first = rows["threshold"].min() if not rows.empty else None
    rows = rows[rows["threshold"] == first].assign(facility_id=None)
    return {u.code: (float("nan") if u.kind == "facility" else v) for u, v in
            zip(units, _sum_by_unit(rows, units, value="population").values(), strict=True)}


# --------------------------------------------------------------------------- referral


def _referrals(condition: str) -> Provider:
    def provide(session: Session, units: Sequence[Unit],
                period: Period) -> dict[str, float] | None:
        from tiercare.referral.models import Referral

        if not _table_exists(session, "referrals") or session.scalar(
                select(func.count(Referral.id))) == 0:
            return None
        start, end = day_bounds(period)
        query = (select(Referral.from_facility_id, Facility.division_prefix)
                 .join(Facility, Facility.id == Referral.from_facility_id)
                 .where(Referral.requested_at >= start, Referral.requested_at < end))
        if condition in ("up", "down"):
            query = query.where(Referral.direction == condition)
        else:
            query = query.where(Referral.status == "completed")
        frame = pd.DataFrame(session.execute(query).all(), columns=["facility_id", "prefix"])
        frame["n"] = 1.0
        return _sum_by_unit(frame, units, value="n")

    provide.__doc__ = f"Referrals ({condition}) requested in the period by facilities in the unit."
    return provide


# --------------------------------------------------------------------------- scheduling


def _appointments(attended: bool) -> Provider:
    def provide(session: Session, units: Sequence[Unit],
                period: Period) -> dict[str, float] | None:
        from tiercare.scheduling.models import Appointment

        if not _table_exists(session, "appointments") or session.scalar(
                select(func.count(Appointment.id))) == 0:
            return None
        start, end = day_bounds(period)
        query = (select(Appointment.facility_id, Facility.division_prefix)
                 .join(Facility, Facility.id == Appointment.facility_id)
                 .where(Appointment.start >= start, Appointment.start < end,
                        Appointment.cancelled_at.is_(None)))
        if attended:
            query = query.where(Appointment.arrived_at.is_not(None))
        frame = pd.DataFrame(session.execute(query).all(), columns=["facility_id", "prefix"])
        frame["n"] = 1.0
        return _sum_by_unit(frame, units, value="n")

    provide.__doc__ = "Appointments starting in the period (not cancelled)" + (
        ", attended" if attended else "")
    return provide


# --------------------------------------------------------------------------- surveillance


def _fever(column: str) -> Provider:
    def provide(session: Session, units: Sequence[Unit],
                period: Period) -> dict[str, float] | None:
        from tiercare.surveillance.models import FeverReport

        if session.scalar(select(func.count(FeverReport.id))) == 0:
            return None
        rows = session.execute(
            select(FeverReport.facility_id, FeverReport.division_code,
                   func.sum(getattr(FeverReport, column)))
            .where(FeverReport.report_date >= period.start,
                   FeverReport.report_date <= period.end)
            .group_by(FeverReport.facility_id, FeverReport.division_code)
        ).all()
        frame = pd.DataFrame(rows, columns=["facility_id", "prefix", "n"])
        return _sum_by_unit(frame, units, value="n")

    provide.__doc__ = f"Sum of daily fever-report {column} in the period."
    return provide


def _fever_received(session: Session, units: Sequence[Unit],
                    period: Period) -> dict[str, float] | None:
    from tiercare.surveillance.models import FeverReport

    if session.scalar(select(func.count(FeverReport.id))) == 0:
        return None
    rows = session.execute(
        select(FeverReport.facility_id, FeverReport.division_code, FeverReport.report_date)
        .where(FeverReport.report_date >= period.start, FeverReport.report_date <= period.end)
        .distinct()
    ).all()
    frame = pd.DataFrame(rows, columns=["facility_id", "prefix", "day"])
    frame["n"] = 1.0
    return _sum_by_unit(frame, units, value="n")


def _fever_expected(session: Session, units: Sequence[Unit],
                    period: Period) -> dict[str, float] | None:
    from tiercare.surveillance.models import FeverReport
    from tiercare.surveillance.reports import sentinel_frame

    if session.scalar(select(func.count(FeverReport.id))) == 0:
        return None
    sentinels = sentinel_frame(session)
    today = local_today()
    days = []
    for row in sentinels.itertuples():
        first = max(period.start, row.opened_on or period.start)
        last = min(period.end, row.closed_on or period.end, today)
        days.append(max((last - first).days + 1, 0))
    frame = pd.DataFrame({"facility_id": sentinels["facility_id"],
                          "prefix": sentinels["division_code"], "n": days})
    return _sum_by_unit(frame, units, value="n")


# --------------------------------------------------------------------------- maternal


def _maternal(managed: bool) -> Provider:
    def provide(session: Session, units: Sequence[Unit],
                period: Period) -> dict[str, float] | None:
        if not _table_exists(session, "maternal_pregnancies"):
            return None
        if session.execute(text("SELECT COUNT(*) FROM maternal_pregnancies")).scalar() == 0:
            return None
        sql = ("SELECT registered_facility_id, village_code FROM maternal_pregnancies "
               "WHERE high_risk = :yes AND registered_on <= :end "
               "AND (closed_at IS NULL OR closed_at >= :start)")
        if managed:
            sql += " AND case_manager_user_id IS NOT NULL"
        start, _ = day_bounds(period)
        rows = session.execute(text(sql), {"yes": True, "end": period.end,
                                           "start": start}).all()
        frame = pd.DataFrame(rows, columns=["facility_id", "prefix"])
        frame["n"] = 1.0
        return _sum_by_unit(frame, units, value="n")

    provide.__doc__ = "High-risk pregnancies open during the period" + (
        " with a case manager" if managed else "")
    return provide


# --------------------------------------------------------------------------- immunization


def _imm_ready(session: Session) -> bool:
    return _table_exists(session, "imm_records") and bool(
        session.execute(text("SELECT COUNT(*) FROM imm_children")).scalar())


def _imm_doses(session: Session, units: Sequence[Unit], period: Period, *,
               vaccine: str | None = None) -> dict[str, float] | None:
    """Doses given in the period: by the child's village (divisions) or the giving site's
    facility (facilities); ``vaccine`` in lower case with ``-`` written ``_`` (``je_l``)."""
    if not _imm_ready(session):
        return None
    sql = ("SELECT s.facility_id, c.village_code FROM imm_records r "
           "JOIN imm_children c ON c.id = r.child_id LEFT JOIN imm_sites s ON s.id = r.site_id "
           "WHERE r.given_on >= :start AND r.given_on <= :end")
    params: dict[str, Any] = {"start": period.start, "end": period.end}
    if vaccine is not None:
        sql += " AND replace(lower(r.vaccine), '-', '_') = :vaccine"
        params["vaccine"] = vaccine.lower()
    frame = pd.DataFrame(session.execute(text(sql), params).all(),
                         columns=["facility_id", "prefix"])
    frame["n"] = 1.0
    return _sum_by_unit(frame, units, value="n")


def _imm_children(session: Session, units: Sequence[Unit], period: Period, *,
                  months: str = "0") -> dict[str, float] | None:
    """Active registered children at least ``months`` old at the end of the period, by
    village of residence (divisions) or responsible site's facility (facilities)."""
    if not _imm_ready(session):
        return None
    born_by = (pd.Timestamp(period.end) - pd.DateOffset(months=int(months))).date()
    rows = session.execute(text(
        "SELECT c.village_code, s.facility_id FROM imm_children c "
        "LEFT JOIN imm_sites s ON s.id = c.site_id "
        "WHERE c.active = :yes AND c.birth_date <= :born_by"),
        {"yes": True, "born_by": born_by}).all()
    frame = pd.DataFrame(rows, columns=["prefix", "facility_id"])
    frame["n"] = 1.0
    return _sum_by_unit(frame, units, value="n")


def _imm_dosed(session: Session, units: Sequence[Unit], period: Period, *, vaccine: str,
               dose: str) -> dict[str, float] | None:
    """Registered children with at least ``dose`` doses of ``vaccine`` by the end of the period.

    Doses are counted, not read from the recorded dose number (which uploads may leave blank);
    ``vaccine`` is the code in lower case with ``-`` written ``_`` (``je_l`` for JE-L).
    """
    if not _imm_ready(session):
        return None
    rows = session.execute(text(
        "SELECT c.village_code, s.facility_id FROM imm_children c "
        "LEFT JOIN imm_sites s ON s.id = c.site_id "
        "WHERE c.active = :yes AND c.birth_date <= :end AND (SELECT COUNT(*) FROM imm_records r "
        "WHERE r.child_id = c.id AND replace(lower(r.vaccine), '-', '_') = :vaccine "
        "AND r.given_on <= :end) >= :dose"),
        {"yes": True, "end": period.end, "vaccine": vaccine.lower(), "dose": int(dose)}).all()
    frame = pd.DataFrame(rows, columns=["prefix", "facility_id"])
    frame["n"] = 1.0
    return _sum_by_unit(frame, units, value="n")


def default_registry() -> FactRegistry:
    """The registry with every provider of this module."""
    reg = FactRegistry()
    reg.register("days", "calendar", "Number of days in the period", _days)
    for column in ("population", "population_rural", "population_urban"):
        reg.register(column, "registry", f"Division {column.replace('_', ' ')}",
                     _population(column))
    reg.register("beds", "registry", "Beds of open facilities", _resources("beds", None))
    reg.register("physicians", "registry", "Licensed and assistant physicians",
                 _resources("staff", ("physician", "assistant_physician")))
    reg.register("nurses", "registry", "Registered nurses", _resources("staff", ("nurse",)))
    reg.register("gps", "registry", "General practitioners", _resources("staff", ("gp",)))
    reg.register("village_doctors", "registry", "Active village doctors", _village_doctors)
    reg.register("facilities", "registry", "Open facilities", _facilities)
    reg.register("villages", "registry", "Active villages", _villages)
    reg.register("villages_with_standard_clinic", "registry",
                 "Villages whose clinic met its latest standard checklist", _standard_villages)
    reg.register("access_covered", "planning",
                 "Population within T minutes (access_covered_<T>[_<tier>]), latest run",
                 _access_covered, pattern=r"access_covered_(?P<minutes>\d+)(?:_(?P<tier>\w+))?")
    reg.register("access_population", "planning",
                 "Population of the access run (access_population[_<tier>])",
                 _access_population, pattern=r"access_population(?:_(?P<tier>\w+))?")
    reg.register("referrals_up", "referral", "Up-referrals requested", _referrals("up"))
    reg.register("referrals_down", "referral", "Down-referrals requested", _referrals("down"))
    reg.register("referrals_completed", "referral", "Referrals completed",
                 _referrals("completed"))
    reg.register("appointments_booked", "scheduling", "Appointments (not cancelled)",
                 _appointments(False))
    reg.register("appointments_attended", "scheduling", "Appointments attended",
                 _appointments(True))
    for column in ("patients", "tests", "positives", "referrals"):
        reg.register(f"fever_{column}_daily", "surveillance",
                     f"Fever-clinic {column} (daily reports)", _fever(column))
    reg.register("fever_reports_received", "surveillance",
                 "Sentinel-days with a daily report", _fever_received)
    reg.register("fever_reports_expected", "surveillance",
                 "Sentinel-days expected (open sentinels × days up to today)", _fever_expected)
    reg.register("pregnancies_high_risk", "maternal", "High-risk pregnancies open",
                 _maternal(False))
    reg.register("pregnancies_high_risk_managed", "maternal",
                 "High-risk pregnancies with a case manager", _maternal(True))
    reg.register("imm_children", "immunization",
                 "Registered children (imm_children[_aged_<M>m]: at least M months old at the "
                 "period's end)", _imm_children,
                 pattern=r"imm_children(?:_aged_(?P<months>\d+)m)?")
    reg.register("imm_doses", "immunization",
                 "Doses given in the period (imm_doses[_<vaccine>])", _imm_doses,
                 pattern=r"imm_doses(?:_(?P<vaccine>[a-z0-9_]+))?")
    reg.register("imm_dosed", "immunization",
                 "Children with dose D of vaccine V by the period's end "
                 "(imm_dosed_<vaccine>_<dose>)", _imm_dosed,
                 pattern=r"imm_dosed_(?P<vaccine>[a-z0-9_]+?)_(?P<dose>\d+)")
    return reg


FACTS = default_registry()
"""The fact registry used by the analytics (other modules may ``FACTS.register`` more)."""
