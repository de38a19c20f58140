"""Fever-clinic surveillance: daily sentinel reports, missing reports, detection and alerts.

Sentinels are the facilities of a sentinel type (fever clinic, fever consulting room) or
offering a sentinel service (a hospital's fever clinic, a township centre's fever consulting
room) — both lists are in ``tiercare/surveillance/data/fever-2026.json`` with the age bands,
the reporting delay and the detector settings.

Each sentinel reports per day and age band: patients seen, tests, positives and referrals.
Detection sums the age bands into one daily count per sentinel (facility level) and per county
(the sentinels' reports summed by the county part of their stored division code), lays the
counts out with :func:`tiercare.surveillance.aberration.daily_counts` (a missing report is a
missing value, not a zero) and runs the configured EARS detectors. Each alert is stored with the
days of its baseline window and the alerting day (the series that triggered it); a user
acknowledges then closes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.db.base import utcnow
from tiercare.errors import ConflictError, InputError, NotFoundError, Problem
from tiercare.indicators.periods import local_today
from tiercare.registry.codes import normalise_code, prefix_of
from tiercare.registry.models import Division, Facility
from tiercare.registry.tables import read_table_bytes
from tiercare.surveillance.aberration import DETECTORS, daily_counts
from tiercare.surveillance.models import FeverReport, SurveillanceAlert

_DATA = resources.files("tiercare.surveillance") / "data"
CONFIG_FILE = "fever-2026.json"
MEASURES = ("patients", "tests", "positives", "referrals")
LEVELS = ("facility", "county")
ALERT_STATUSES = ("open", "acknowledged", "closed")


@dataclass(frozen=True)
class FeverConfig:
    """Sentinel definition, age bands and detector settings (a versioned data file)."""

    version: str
    effective_from: date
    sentinel_types: tuple[str, ...]
    sentinel_services: tuple[str, ...]
    age_bands: tuple[str, ...]
    report_due_hours: int
    history_days: int
    levels: tuple[str, ...]
    measures: tuple[str, ...]
    methods: dict[str, dict[str, float]]
    status_alert_days: int


@cache
def load_config(name: str = CONFIG_FILE) -> FeverConfig:
    """Read and check the surveillance settings file.

    Raises
    ------
    InputError
        On an unknown detector, level or measure.
    """
    raw = json.loads((_DATA / name).read_text(encoding="utf-8"))
    det = raw["detection"]
    config = FeverConfig(
        version=raw["version"], effective_from=date.fromisoformat(raw["effective_from"]),
        sentinel_types=tuple(raw["sentinel_types"]),
        sentinel_services=tuple(raw["sentinel_services"]), age_bands=tuple(raw["age_bands"]),
        report_due_hours=int(raw["report_due_hours"]), history_days=int(det["history_days"]),
        levels=tuple(det["levels"]), measures=tuple(det["measures"]),
        methods={k: dict(v) for k, v in det["methods"].items()},
        status_alert_days=int(det["status_alert_days"]))
    problems = [Problem(reason=f"unknown detector '{m}'", field="methods")
                for m in config.methods if m not in DETECTORS]
    problems += [Problem(reason=f"unknown level '{x}'", field="levels")
                 for x in config.levels if x not in LEVELS]
    problems += [Problem(reason=f"unknown measure '{x}'", field="measures")
                 for x in config.measures if x not in MEASURES]
    if problems:
        raise InputError(problems)
    return config


# --------------------------------------------------------------------------- sentinels


def _is_sentinel(facility: Facility, config: FeverConfig) -> bool:
    return facility.type_code in config.sentinel_types or any(
        s in config.sentinel_services for s in (facility.services or []))


def sentinel_frame(session: Session, *, prefix: str = "") -> pd.DataFrame:
    """Every sentinel (open or closed) in a division subtree.

    Columns ``facility_id``, ``code``, ``name``, ``type_code``, ``division_code`` (12-digit),
    ``lon``, ``lat``, ``opened_on``, ``closed_on``.
    """
    config = load_config()
    rows = []
    query = (select(Facility, Division.code).join(Division, Division.id == Facility.division_id)
             .where(Facility.division_prefix.like(prefix + "%")).order_by(Facility.code))
    for facility, code in session.execute(query).all():
        if _is_sentinel(facility, config):
            rows.append({"facility_id": facility.id, "code": facility.code,
                         "name": facility.name, "type_code": facility.type_code,
                         "division_code": code, "lon": facility.lon, "lat": facility.lat,
                         "opened_on": facility.opened_on, "closed_on": facility.closed_on})
    return pd.DataFrame(rows, columns=["facility_id", "code", "name", "type_code",
                                       "division_code", "lon", "lat", "opened_on",
                                       "closed_on"])


def _open_on(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    opened = frame["opened_on"].apply(lambda d: d is None or pd.isna(d) or d <= day)
    closed = frame["closed_on"].apply(lambda d: d is None or pd.isna(d) or d >= day)
    return frame[opened & closed]


# --------------------------------------------------------------------------- reports


def _count(raw: Any) -> int | None:
    try:
        number = float(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and number >= 0 else None


def store_fever_reports(session: Session, actor: Actor, rows: list[dict[str, Any]], *,
                        source: str, today: date | None = None) -> dict[str, int]:
    """Check every row of a batch of daily reports, then write all of them or none.

    Rows carry ``facility``, ``date``, ``age_band``, ``patients``, ``tests``, ``positives``,
    ``referrals`` and optionally ``comment``. A report for the same facility, day and age band
    replaces the earlier one.

    Raises
    ------
    InputError
        With every problem of the batch (row numbers 1-based); nothing is written.
    """
    config = load_config()
    today = today or local_today()
    problems: list[Problem] = []
    facilities: dict[str, tuple[Facility, str] | None] = {}
    accepted: dict[tuple[int, date, str], dict[str, Any]] = {}
    for i, row in enumerate(rows, start=1):
        code = str(row.get("facility") or "").strip()
        if code not in facilities:
            found = session.execute(
                select(Facility, Division.code).join(Division, Division.id == Facility.division_id)
                .where(Facility.code == code)).first()
            facilities[code] = (found[0], found[1]) if found else None
        entry = facilities[code]
        if entry is None:
            problems.append(Problem(reason=f"unknown facility '{code}'", field="facility",
                                    row=i, code="unknown_facility"))
        else:
            facility = entry[0]
            if not _is_sentinel(facility, config):
                problems.append(Problem(reason=f"'{code}' is not a fever clinic or consulting "
                                        "room", field="facility", row=i))
            in_scope = facility.id == actor.facility_id if actor.facility_id is not None \
                else facility.division_prefix.startswith(actor.division_prefix)
            if not in_scope:
                problems.append(Problem(reason="facility outside your scope", field="facility",
                                        row=i))
        try:
            day = date.fromisoformat(str(row.get("date") or "").strip()[:10])
        except ValueError:
            problems.append(Problem(reason=f"not a date: {row.get('date')!r}", field="date",
                                    row=i))
            day = None
        if day is not None and day > today:
            problems.append(Problem(reason="a report cannot be for a future day", field="date",
                                    row=i))
        band = str(row.get("age_band") or "").strip()
        if band not in config.age_bands:
            problems.append(Problem(reason=f"unknown age band '{band}' (one of "
                                    f"{', '.join(config.age_bands)})", field="age_band", row=i))
        counts = {}
        for measure in MEASURES:
            value = _count(row.get(measure))
            if value is None:
                problems.append(Problem(reason=f"not a whole number ≥ 0: {row.get(measure)!r}",
                                        field=measure, row=i))
            counts[measure] = value
        if None not in counts.values():
            if counts["positives"] > counts["tests"]:
                problems.append(Problem(reason="positives cannot exceed tests",
                                        field="positives", row=i, code="rule:positives_le_tests"))
            if counts["referrals"] > counts["patients"]:
                problems.append(Problem(reason="referrals cannot exceed patients",
                                        field="referrals", row=i))
        if problems or entry is None or day is None:
            continue
        key = (entry[0].id, day, band)
        if key in accepted:
            problems.append(Problem(reason="same facility, day and age band twice",
                                    field="date", row=i, code="duplicate"))
        accepted[key] = {"facility": entry[0], "division_code": entry[1], **counts,
                         "comment": str(row.get("comment") or "")}
    if problems:
        raise InputError(problems)
    existing = {}
    if accepted:
        ids = sorted({k[0] for k in accepted})
        days = sorted({k[1] for k in accepted})
        for report in session.scalars(select(FeverReport).where(
                FeverReport.facility_id.in_(ids), FeverReport.report_date >= days[0],
                FeverReport.report_date <= days[-1])):
            existing[(report.facility_id, report.report_date, report.age_band)] = report
    created = updated = 0
    for (facility_id, day, band), data in accepted.items():
        report = existing.get((facility_id, day, band))
        if report is None:
            report = FeverReport(facility_id=facility_id, facility_code=data["facility"].code,
                                 division_code=data["division_code"], report_date=day,
                                 age_band=band)
            session.add(report)
            created += 1
        else:
            updated += 1
        for measure in MEASURES:
            setattr(report, measure, data[measure])
        report.comment = data["comment"]
        report.reported_by = actor.username
    session.flush()
    audit(session, actor, "import", "fever_reports", source,
          after={"created": created, "updated": updated})
    return {"created": created, "updated": updated}


def import_fever_file(session: Session, actor: Actor, data: bytes, filename: str, *,
                      today: date | None = None) -> dict[str, int]:
    """Import daily reports from CSV/.xlsx (columns as :func:`store_fever_reports`)."""
    rows = read_table_bytes(data, filename)
    required = ("facility", "date", "age_band", *MEASURES)
    missing = [c for c in required if rows and c not in rows[0]]
    if missing:
        raise InputError([Problem(reason="missing column", field=c) for c in missing])
    return store_fever_reports(session, actor, rows, source=f"file:{filename}", today=today)


def missing_reports(session: Session, actor: Actor, *, day: date,
                    unit: str = "") -> list[dict[str, Any]]:
    """Sentinels open on ``day`` (in scope and in ``unit``'s subtree) without a report for it."""
    prefix = _scope_prefix(actor, unit)
    sentinels = _open_on(sentinel_frame(session, prefix=prefix), day)
    reported = set(session.scalars(select(FeverReport.facility_id).where(
        FeverReport.report_date == day).distinct()))
    return [{"facility": r.code, "name": r.name, "division_code": r.division_code,
             "date": day.isoformat()}
            for r in sentinels.itertuples() if r.facility_id not in reported]


def _scope_prefix(actor: Actor, unit: str) -> str:
    prefix = ""
    if unit:
        try:
            prefix = prefix_of(normalise_code(unit))
        except ValueError as exc:
            raise InputError.single(str(exc), field="unit") from exc
    if prefix.startswith(actor.division_prefix):
        return prefix
    if actor.division_prefix.startswith(prefix):
        return actor.division_prefix
    raise NotFoundError(f"division '{unit}'")


# --------------------------------------------------------------------------- detection


def daily_frame(session: Session, *, start: date, end: date, prefix: str = "") -> pd.DataFrame:
    """Daily totals over age bands per sentinel: facility, division code, date, measures."""
    rows = session.execute(
        select(FeverReport.facility_code, FeverReport.division_code, FeverReport.report_date,
               *[func.sum(getattr(FeverReport, m)) for m in MEASURES])
        .where(FeverReport.report_date >= start, FeverReport.report_date <= end,
               FeverReport.division_code.like(prefix + "%"))
        .group_by(FeverReport.facility_code, FeverReport.division_code,
                  FeverReport.report_date)
    ).all()
    return pd.DataFrame(rows, columns=["facility", "division_code", "date", *MEASURES])


def detect(frame: pd.DataFrame, *, start: date, end: date, level: str, measure: str,
           method: str, **settings: float) -> pd.DataFrame:
    """Run one detector on one level and measure; the alerts with their triggering series.

    Returns
    -------
    pandas.DataFrame
        :meth:`~tiercare.surveillance.aberration.AberrationResult.alert_table` columns plus
        ``series_values`` (``[[date, count], …]`` from the baseline start to the alerting
        day) and ``parameters``.
    """
    if frame.empty:
        return pd.DataFrame()
    data = frame.copy()
    if level == "county":
        data["series"] = data["division_code"].str.slice(0, 6).str.ljust(12, "0")
        data = data.groupby(["series", "date"], as_index=False)[measure].sum()
    else:
        data["series"] = data["facility"]
    laid = daily_counts(data, series="series", date="date", count=measure, start=start, end=end)
    result = DETECTORS[method](laid.counts, **settings)
    table = result.alert_table(series_ids=laid.series, dates=[d.date() for d in laid.dates])
    if table.empty:
        return table
    first = result.baseline_window[0]
    index = {s: k for k, s in enumerate(laid.series)}
    series_values = []
    for row in table.itertuples():
        col = (row.day - start).days
        lo = max(col + first, 0)
        values = laid.counts[index[row.series], lo:col + 1]
        series_values.append([[(start + timedelta(days=lo + k)).isoformat(),
                               None if np.isnan(v) else float(v)] for k, v in enumerate(values)])
    table["series_values"] = series_values
    table["parameters"] = [result.parameters] * len(table)
    return table


def run_detection(session: Session, actor: Actor, *, end: date, days: int | None = None,
                  unit: str = "", methods: dict[str, dict[str, float]] | None = None
                  ) -> list[SurveillanceAlert]:
    """Detect aberrations over the ``days`` up to ``end`` and store new alerts.

    Parameters
    ----------
    end:
        Last day examined (usually yesterday or today).
    days:
        Length of the history (default the settings' ``history_days``).
    unit:
        Division subtree (default the actor's scope).
    methods:
        Detector settings overriding the file's, e.g. ``{"C2": {"threshold": 2.5}}``.

    Returns
    -------
    list of SurveillanceAlert
        The alerts created by this run (alerts found before are kept, not duplicated).
    """
    config = load_config()
    history = days or config.history_days
    if history < 10:
        raise InputError.single("the history needs at least 10 days", field="days")
    chosen = {**config.methods, **(methods or {})}
    unknown = [m for m in chosen if m not in DETECTORS]
    if unknown:
        raise InputError.single(f"unknown detector(s) {unknown}", field="methods")
    prefix = _scope_prefix(actor, unit)
    start = end - timedelta(days=history - 1)
    frame = daily_frame(session, start=start, end=end, prefix=prefix)
    existing = {(a.level, a.series_code, a.measure, a.method, a.day) for a in session.scalars(
        select(SurveillanceAlert).where(SurveillanceAlert.day >= start,
                                        SurveillanceAlert.day <= end))}
    created: list[SurveillanceAlert] = []
    for level in config.levels:
        for measure in config.measures:
            for method, settings in chosen.items():
                table = detect(frame, start=start, end=end, level=level, measure=measure,
                               method=method, **settings)
                for row in table.itertuples():
                    key = (level, row.series, measure, method, row.day)
                    if key in existing:
                        continue
                    existing.add(key)
                    division = row.series if level == "county" else str(
                        frame.loc[frame["facility"] == row.series, "division_code"].iloc[0])
                    alert = SurveillanceAlert(
                        level=level, series_code=row.series, division_code=division,
                        measure=measure, method=method, day=row.day, count=float(row.count),
                        expected=float(row.expected), statistic=float(row.statistic),
                        threshold=float(row.threshold),
                        upper_bound=float(row.upper_bound) if np.isfinite(row.upper_bound)
                        else None, series=row.series_values, parameters=row.parameters)
                    session.add(alert)
                    created.append(alert)
    session.flush()
    audit(session, actor, "detect", "surveillance_alerts", prefix or "*",
          after={"created": len(created)}, detail=f"{start.isoformat()}..{end.isoformat()}")
    return created


# --------------------------------------------------------------------------- alerts


def alert_dict(alert: SurveillanceAlert) -> dict[str, Any]:
    """An alert as plain data."""
    def stamp(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {"id": alert.id, "level": alert.level, "series_code": alert.series_code,
            "division_code": alert.division_code, "measure": alert.measure,
            "method": alert.method, "day": alert.day.isoformat(), "count": alert.count,
            "expected": alert.expected, "statistic": alert.statistic,
            "threshold": alert.threshold, "upper_bound": alert.upper_bound,
            "series": alert.series, "parameters": alert.parameters, "status": alert.status,
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": stamp(alert.acknowledged_at), "closed_by": alert.closed_by,
            "closed_at": stamp(alert.closed_at), "note": alert.note}


def list_alerts(session: Session, actor: Actor, *, status: str | None = None,
                level: str | None = None, since: date | None = None, offset: int = 0,
                limit: int = 50) -> tuple[int, list[SurveillanceAlert]]:
    """Alerts in the actor's scope, newest first."""
    query = select(SurveillanceAlert).where(
        SurveillanceAlert.division_code.like(actor.division_prefix + "%"))
    if actor.facility_id is not None:
        own = session.scalar(select(Facility.code).where(Facility.id == actor.facility_id))
        query = query.where(SurveillanceAlert.series_code == own)
    if status:
        if status not in ALERT_STATUSES:
            raise InputError.single(f"status must be one of {ALERT_STATUSES}", field="status")
        query = query.where(SurveillanceAlert.status == status)
    if level:
        query = query.where(SurveillanceAlert.level == level)
    if since:
        query = query.where(SurveillanceAlert.day >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(SurveillanceAlert.day.desc(),
                                                SurveillanceAlert.id.desc())
                                 .offset(offset).limit(limit)))
    return total, items


def get_alert(session: Session, actor: Actor, alert_id: int) -> SurveillanceAlert:
    """One alert in the actor's scope.

    Raises
    ------
    NotFoundError
    """
    alert = session.get(SurveillanceAlert, alert_id)
    if alert is None or not alert.division_code.startswith(actor.division_prefix):
        raise NotFoundError(f"alert {alert_id}")
    return alert


def transition_alert(session: Session, actor: Actor, alert_id: int, *, to: str,
                     note: str = "") -> SurveillanceAlert:
    """Acknowledge (open → acknowledged) or close (open/acknowledged → closed) an alert.

    The status changes with a conditional UPDATE so that two users acting at once cannot both
    move it.

    Raises
    ------
    ConflictError
        ``bad_transition`` when the alert is not in a state that allows the change.
    """
    alert = get_alert(session, actor, alert_id)
    allowed = {"acknowledged": ("open",), "closed": ("open", "acknowledged")}
    if to not in allowed:
        raise InputError.single("must be acknowledged or closed", field="status")
    values: dict[str, Any] = {"status": to}
    now = utcnow()
    if to == "acknowledged":
        values |= {"acknowledged_by": actor.username, "acknowledged_at": now}
    else:
        values |= {"closed_by": actor.username, "closed_at": now}
    if note:
        values["note"] = (alert.note + "\n" if alert.note else "") + note
    before = alert.status
    result = session.execute(update(SurveillanceAlert).where(
        SurveillanceAlert.id == alert_id, SurveillanceAlert.status.in_(allowed[to]))
        .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise ConflictError("bad_transition", f"alert {alert_id} is {before}; cannot become {to}")
    session.refresh(alert)
    audit(session, actor, to, "surveillance_alert", str(alert_id),
          before={"status": before}, after={"status": to}, detail=note)
    return alert


def sentinel_status(session: Session, actor: Actor, *, day: date,
                    unit: str = "") -> list[dict[str, Any]]:
    """Each sentinel's status on ``day``: ``alert`` (open or acknowledged alert in the last
    ``status_alert_days``), ``missing`` (no report), ``ok``, or ``closed``.
    """
    config = load_config()
    prefix = _scope_prefix(actor, unit)
    sentinels = sentinel_frame(session, prefix=prefix)
    reported = set(session.scalars(select(FeverReport.facility_code).where(
        FeverReport.report_date == day).distinct()))
    since = day - timedelta(days=config.status_alert_days - 1)
    active = pd.DataFrame(session.execute(
        select(SurveillanceAlert.series_code, SurveillanceAlert.level, SurveillanceAlert.id)
        .where(SurveillanceAlert.day >= since, SurveillanceAlert.day <= day,
               or_(SurveillanceAlert.status == "open",
                   SurveillanceAlert.status == "acknowledged"))).all(),
        columns=["series", "level", "id"])
    counts = active[active["level"] == "facility"].groupby("series")["id"].count().to_dict() \
        if not active.empty else {}
    out = []
    open_today = set(_open_on(sentinels, day)["code"]) if not sentinels.empty else set()
    for r in sentinels.itertuples():
        if r.code not in open_today:
            status = "closed"
        elif counts.get(r.code):
            status = "alert"
        elif r.code not in reported:
            status = "missing"
        else:
            status = "ok"
        out.append({"facility": r.code, "name": r.name, "type": r.type_code,
                    "division_code": r.division_code, "lon": r.lon, "lat": r.lat,
                    "status": status, "alerts": int(counts.get(r.code, 0)),
                    "reported": r.code in reported})
    return out
