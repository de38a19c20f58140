"""Demo data: two years of monthly facility reports and a year of daily fever reports.

The values are generated for whatever facilities the database holds (the demo county loaded by
``tiercare demo``) and stored through the same services as real reports (validation rules
included), so the demo exercises the whole path.

**Monthly reports** follow simple, plausible profiles by facility tier (outpatient visits per
month, bed occupancy 55–90 %, average stay 6–9 days, costs in fen, essential-medicine shares)
with a seasonal factor and ±10 % noise. About 5 % of reports are missing and 10 % late, so that
completeness and timeliness have something to show.

**Daily fever reports** have a deliberately *quiet* baseline: each sentinel's count alternates
between ``b`` and ``b + 1`` (phases staggered between sentinels, so that county totals stay
flat too). Any alert outside an injected outbreak is therefore a false alarm of the detection
pipeline, which is what the tests check. A few outbreaks (five days rising to +14 patients and
+6 positives) are injected at random sentinels and days, and a few sentinel-days are left
unreported (missing-report flags). :func:`seed_demo_indicators` returns what it injected.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM
from tiercare.indicators.catalogue import seed_catalogue
from tiercare.indicators.models import DataSet, ReportSubmission
from tiercare.indicators.periods import Period, local_today, period_of
from tiercare.indicators.reporting import deadline, store_values
from tiercare.registry.models import Division, Facility, FacilityResource, FacilityType
from tiercare.surveillance.reports import (
    load_config,
    run_detection,
    sentinel_frame,
    store_fever_reports,
)

#: Monthly outpatient visits by facility tier (a plausible order of magnitude).
OPD_PER_MONTH = {"tertiary": 40000, "secondary": 15000, "primary": 2500, "village": 350}
#: Extra patients and positives on the five days of an injected outbreak.
OUTBREAK_PATIENTS = (5, 9, 14, 10, 6)
OUTBREAK_POSITIVES = (3, 5, 6, 5, 3)
AGE_SHARES = (0.15, 0.2, 0.45, 0.2)


def _months(end: date, n: int) -> list[Period]:
    last = period_of(end, "month")
    out = [last]
    while len(out) < n:
        out.append(period_of(out[-1].start - timedelta(days=1), "month"))
    return out[::-1]


def _resources(session: Session) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for fid, category, item, q in session.execute(
            select(FacilityResource.facility_id, FacilityResource.category,
                   FacilityResource.item, FacilityResource.quantity)).all():
        out[fid][category if category == "beds" else item] += q
    return out


def _monthly_values(rng: np.random.Generator, ds: DataSet, tier: str, beds: int,
                    month: Period) -> dict[str, int]:
    """One facility's report for one month (consistent with the validation rules)."""
    season = 1.0 + 0.12 * np.cos(2 * np.pi * (month.start.month - 1) / 12)
    noise = rng.uniform(0.9, 1.1)
    opd = int(OPD_PER_MONTH.get(tier, 1000) * season * noise)
    occupancy = rng.uniform(0.55, 0.9)
    bed_days = int(beds * month.days * occupancy)
    admissions = int(bed_days / rng.uniform(6, 9))
    surgeries = int(admissions * rng.uniform(0.15, 0.3))
    prescriptions = int(opd * rng.uniform(0.6, 0.8))
    appointments = int(opd * rng.uniform(0.3, 0.6))
    seen = int(appointments * rng.uniform(0.85, 0.95))
    hr = int(rng.poisson(8 if tier in ("secondary", "tertiary") else 2))
    due = int(rng.poisson(60))
    given = int(due * rng.uniform(0.85, 1.0))
    values = {
        "opd_visits": opd, "admissions": admissions, "inpatient_days": bed_days,
        "surgeries": surgeries, "day_surgeries": int(surgeries * rng.uniform(0.1, 0.3)),
        "opd_cost_fen": int(opd * rng.uniform(150, 350) * 100),
        "inpatient_cost_fen": int(admissions * rng.uniform(5000, 9000) * 100),
        "prescriptions": prescriptions,
        "essential_prescriptions": int(prescriptions * rng.uniform(0.45, 0.8)),
        "appointments": appointments, "appointments_advance": int(appointments * rng.uniform(
            0.3, 0.7)), "appointments_seen": seen,
        "wait_minutes_total": int(seen * rng.uniform(12, 40)),
        "referrals_up_reported": int(rng.poisson(20 if tier == "primary" else 5)),
        "referrals_down_reported": int(rng.poisson(15 if tier == "secondary" else 2)),
        "hr_pregnancies": hr, "hr_pregnancies_managed": int(rng.binomial(hr, 0.9)),
        "vaccine_doses_due": due, "vaccine_doses_given": given,
        "vaccine_doses_on_time": int(given * rng.uniform(0.8, 0.97)),
    }
    return {k: v for k, v in values.items() if k in ds.elements}


def _split(total: int, shares: tuple[float, ...], cap: list[int] | None = None) -> list[int]:
    """Split a count over age bands (the remainder goes to the largest band), within ``cap``."""
    parts = [int(total * s) for s in shares]
    parts[int(np.argmax(shares))] += total - sum(parts)
    if cap is None:
        return parts
    parts = [min(p, c) for p, c in zip(parts, cap, strict=True)]
    left = total - sum(parts)
    for i in range(len(parts)):
        extra = min(left, cap[i] - parts[i])
        parts[i] += extra
        left -= extra
    return parts


def seed_demo_indicators(session: Session, *, seed: int, end: date | None = None,
                         outbreaks: int = 3, detect: bool = True) -> dict[str, Any]:
    """Generate the demo's monthly reports, daily fever reports and alerts (commits nothing).

    Parameters
    ----------
    seed:
        Random seed (same seed and ``end``, same data).
    end:
        Last day of the data (default: the last day of the previous month, local time).
    outbreaks:
        Number of outbreaks to inject into the fever reports.
    detect:
        Run the detectors over the year and store the alerts.

    Returns
    -------
    dict
        Counts (``data_values``, ``reports``, ``fever_reports``, ``alerts``, ``missing``) and
        ``outbreaks``: ``[{"facility", "county", "start", "end"}]`` (ISO dates), JSON-ready.
    """
    rng = np.random.default_rng(seed)
    if end is None:
        end = local_today().replace(day=1) - timedelta(days=1)
    seed_catalogue(session)
    sets = {t: ds for ds in session.scalars(select(DataSet)) for t in ds.facility_types}
    tiers = dict(session.execute(select(FacilityType.code, FacilityType.tier)).all())
    resources = _resources(session)
    facilities = list(session.scalars(select(Facility).where(Facility.closed_on.is_(None))
                                      .order_by(Facility.code)))
    months = _months(end, 24)
    n_values = n_reports = 0
    for month in months:
        rows = []
        for f in facilities:
            ds = sets.get(f.type_code)
            if ds is None or rng.random() < 0.05:
                continue
            values = _monthly_values(rng, ds, tiers.get(f.type_code, "primary"),
                                     resources[f.id].get("beds", 0), month)
            rows += [{"element": k, "unit": f.code, "period": month.text, "value": v}
                     for k, v in values.items()]
            late = rng.random() < 0.1
            day = deadline(ds, month) + timedelta(days=int(rng.integers(1, 10)) if late
                                                  else -int(rng.integers(0, ds.deadline_days)))
            session.add(ReportSubmission(
                data_set_code=ds.code, facility_code=f.code,
                division_code=f.division_prefix.ljust(12, "0"), period=month.text,
                submitted_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                submitted_by="demo", on_time=not late))
            n_reports += 1
        counties = session.scalars(select(Division.code).where(Division.level == "county"))
        for code in counties:
            resident = int(rng.integers(1500, 2500))
            rows += [{"element": "inpatients_resident", "unit": code, "period": month.text,
                      "value": resident},
                     {"element": "inpatients_resident_in_county", "unit": code,
                      "period": month.text, "value": int(resident * rng.uniform(0.8, 0.95))}]
        n_values += store_values(session, SYSTEM, rows, source="demo", today=end).created
    fever = _seed_fever(session, rng, end=end, outbreaks=outbreaks)
    alerts = len(run_detection(session, SYSTEM, end=end, days=365)) if detect else 0
    return {"data_values": n_values, "reports": n_reports, **fever, "alerts": alerts}


def _seed_fever(session: Session, rng: np.random.Generator, *, end: date,
                outbreaks: int) -> dict[str, Any]:
    config = load_config()
    sentinels = sentinel_frame(session)
    sentinels = sentinels[sentinels["closed_on"].isna()].reset_index(drop=True)
    start = end - timedelta(days=364)
    n_days = 365
    if sentinels.empty:
        return {"fever_reports": 0, "missing": 0, "outbreaks": []}
    base = rng.integers(4, 15, size=len(sentinels))
    base_pos = rng.integers(0, 3, size=len(sentinels))
    extra = np.zeros((len(sentinels), n_days), dtype=int)
    extra_pos = np.zeros_like(extra)
    injected = []
    busy = np.zeros((len(sentinels), n_days), dtype=bool)
    for _ in range(outbreaks):
        for _attempt in range(100):
            i = int(rng.integers(len(sentinels)))
            day0 = int(rng.integers(30, n_days - 10))
            if not busy[i, day0 - 25:day0 + 15].any() and not _county_busy(
                    injected, sentinels.loc[i, "division_code"][:6], start + timedelta(day0)):
                break
        else:
            break
        span = len(OUTBREAK_PATIENTS)
        extra[i, day0:day0 + span] = OUTBREAK_PATIENTS
        extra_pos[i, day0:day0 + span] = OUTBREAK_POSITIVES
        busy[i, day0 - 25:day0 + 15] = True
        injected.append({"facility": str(sentinels.loc[i, "code"]),
                         "county": sentinels.loc[i, "division_code"][:6].ljust(12, "0"),
                         "start": (start + timedelta(days=day0)).isoformat(),
                         "end": (start + timedelta(days=day0 + span - 1)).isoformat()})
    missing = 0
    rows = []
    for i, s in sentinels.iterrows():
        for d in range(n_days):
            if not busy[i, max(d - 12, 0):d + 12].any() and rng.random() < 0.003:
                missing += 1
                continue
            phase = (d + i) % 2
            patients = int(base[i] + phase + extra[i, d])
            positives = int(base_pos[i] + (1 - phase) + extra_pos[i, d])
            tests = max(patients - 2, positives)
            referrals = phase
            p_b = _split(patients, AGE_SHARES)
            t_b = _split(tests, AGE_SHARES, p_b)
            pos_b = _split(positives, AGE_SHARES, t_b)
            ref_b = _split(referrals, AGE_SHARES, p_b)
            day = (start + timedelta(days=d)).isoformat()
            for k, band in enumerate(config.age_bands):
                rows.append({"facility": s["code"], "date": day, "age_band": band,
                             "patients": p_b[k], "tests": t_b[k], "positives": pos_b[k],
                             "referrals": ref_b[k]})
    stored = store_fever_reports(session, SYSTEM, rows, source="demo", today=end)
    return {"fever_reports": stored["created"], "missing": missing, "outbreaks": injected}


def _county_busy(injected: list[dict[str, Any]], county6: str, day: date) -> bool:
    """True when another outbreak in the same county is within 25 days (keep them apart)."""
    return any(o["county"].startswith(county6)
               and abs((date.fromisoformat(o["start"]) - day).days) < 25 for o in injected)
