"""Demo data: pregnancy files of the demo county, run through the real case-management rules.

:func:`seed_demo_maternal` generates the pregnancies a county of the loaded population would
have in its files on a reference date — every pregnancy whose due date falls in the 90 days
before it or the 32 weeks after it — and plays each one through
:mod:`tiercare.maternal.service` with the clock set to the day of each step (registration
with screening at about 10 weeks, grading at a secondary hospital a few days after a positive
screen, follow-ups, delivery, the 42-day assessment), so that assessments, reports, events
and alerts are what the rules produce.

Calibration (parameters, defaults documented here):

* births: ``births_per_1000`` per year (default 6.5, the range 6–7 of recent Chinese county
  figures) times the population of the villages in the database;
* the findings are drawn to give about ``colour_mix`` (default 60 % green, 25 % yellow, 10 %
  orange, 3 % red, 2 % purple); the colour each file gets is the grading engine's;
* follow-ups in the past are marked done directly (about 90 %; the rest are missed) and
  about 30 % of the positive screens of the last four weeks are still ungraded (some
  overdue), so that the early-warning lists have realistic content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import Actor, actor_for, create_user
from tiercare.config import get_settings
from tiercare.demo._names import NameMaker
from tiercare.errors import ConflictError, InputError
from tiercare.identity import check_character, identity_digest
from tiercare.maternal import service
from tiercare.maternal.models import CaseReport, FollowUp, MaternalAlert, Pregnancy
from tiercare.maternal.rules import load_case_rules
from tiercare.maternal.schemas import (
    BookingIn,
    DeliveryIn,
    GradingIn,
    PostpartumIn,
    PregnancyIn,
)
from tiercare.registry.models import Division, Facility
from tiercare.residents.models import Resident
from tiercare.residents.service import ResidentIn

__all__ = ["DEFAULT_COLOUR_MIX", "seed_demo_maternal"]

DEFAULT_COLOUR_MIX: Mapping[str, float] = {"green": 0.60, "yellow": 0.25, "orange": 0.10,
                                            "red": 0.03, "purple": 0.02}
DEMO_PASSWORD = "tiercare-demo"
#: Files whose due date lies this many days before the reference date (most of them closed by
#: it) or up to ``AHEAD_DAYS`` after it (registered at 8-14 weeks, so still open).
RECENT_DAYS = 90
AHEAD_DAYS = 224
SHANGHAI = service.DEFAULT_TZ

# one finding per category, drawn uniformly (values in the table's fields, or condition codes)
_YELLOW = ("age35", "bmi25", "hb100", "scarred_uterus", "assisted_reproduction", "twins",
           "gestational_hypertension", "diabetes_no_drugs", "thyroid_disease_no_drugs",
           "hbv_carrier_normal_liver", "abortions3", "macrosomia", "fetal_growth_restriction")
_ORANGE = ("age41", "bmi29", "asthma", "diabetes_on_drugs", "thyroid_disease_on_drugs",
           "severe_preeclampsia", "rh_incompatibility", "chronic_hypertension_with_preeclampsia",
           "platelets40", "hb50", "uterine2", "fever_of_unknown_cause")
_RED = ("cardiomyopathy", "pah55", "pernicious_placenta_praevia", "placental_abruption",
        "thromboembolic_disease", "generalised_epilepsy", "platelets20", "aplastic_anaemia",
        "malignancy_found_in_pregnancy", "drug_abuse")
_PURPLE = ("syphilis", "syphilis", "active_viral_hepatitis", "active_viral_hepatitis", "hiv",
           "tuberculosis")


def _finding(item: str, rng: np.random.Generator, findings: dict[str, Any]) -> None:
    """Apply one drawn finding to a findings dict."""
    numeric = {
        "age35": ("age", lambda: int(rng.integers(35, 40))),
        "age41": ("age", lambda: int(rng.integers(40, 45))),
        "bmi25": ("bmi", lambda: round(float(rng.uniform(25.2, 27.8)), 1)),
        "bmi29": ("bmi", lambda: round(float(rng.uniform(28.2, 34.0)), 1)),
        "hb100": ("hb_g_l", lambda: int(rng.integers(85, 109))),
        "hb50": ("hb_g_l", lambda: int(rng.integers(45, 59))),
        "twins": ("fetuses", lambda: 2),
        "abortions3": ("abortions", lambda: 3),
        "platelets40": ("platelets_1e9_l", lambda: int(rng.integers(31, 49))),
        "platelets20": ("platelets_1e9_l", lambda: int(rng.integers(12, 28))),
        "uterine2": ("previous_uterine_surgeries", lambda: 2),
        "pah55": ("pulmonary_artery_pressure_mmhg", lambda: int(rng.integers(52, 80))),
    }
    if item in numeric:
        name, draw = numeric[item]
        findings[name] = draw()
    else:
        findings.setdefault("conditions", []).append(item)


def _findings_for(category: str, rng: np.random.Generator) -> dict[str, Any]:
    """Findings of a pregnancy drawn for a target category (the engine decides the colour)."""
    findings: dict[str, Any] = {
        "age": int(np.clip(round(rng.normal(28.5, 4.0)), 20, 34)),
        "bmi": round(float(np.clip(rng.normal(21.8, 1.7), 18.6, 24.8)), 1),
        "hb_g_l": int(rng.integers(112, 140)),
        "platelets_1e9_l": int(rng.integers(150, 320)),
    }
    pools = {"yellow": _YELLOW, "orange": _ORANGE, "red": _RED}
    if category in pools:
        _finding(str(rng.choice(pools[category])), rng, findings)
    elif category == "purple":
        _finding(str(rng.choice(_PURPLE)), rng, findings)
        if rng.random() < 0.4:
            _finding(str(rng.choice(_YELLOW)), rng, findings)
    return findings


def _local_instant(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(dt.UTC)


def _demo_user(session: Session, username: str, role: str, facility: Facility,
               full_name: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = create_user(session, username=username, password=DEMO_PASSWORD, role=role,
                           facility_code=facility.code, full_name=full_name)
    return actor_for(session, user)


def _identity(rng: np.random.Generator, county: str, born: dt.date) -> str:
    seq = int(rng.integers(0, 500)) * 2  # even: female
    first17 = f"{county}{born:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


def seed_demo_maternal(
    session: Session,
    *,
    seed: int,
    today: dt.date | None = None,
    births_per_1000: float = 6.5,
    colour_mix: Mapping[str, float] = DEFAULT_COLOUR_MIX,
    secret: str | None = None,
) -> dict[str, int]:
    """Generate the demo county's pregnancy files (commits once at the end).

    Parameters
    ----------
    session:
        A session on a database holding the demo county (divisions with population,
        facilities of the county with a county MCH hospital or another secondary hospital).
    seed:
        Seed of the random generator; the same seed and ``today`` give the same files.
    today:
        Reference date of the files (default today).
    births_per_1000:
        Births per 1,000 population per year.
    colour_mix:
        Target shares of green, yellow, orange, red and purple (summing to 1).
    secret:
        Key of the identity digests (default the settings' secret key).

    Returns
    -------
    dict
        Counts: ``pregnancies``, ``open``, ``closed``, one per colour (``green`` … ``red``,
        ``purple``), ``high_risk``, ``awaiting_grading``, ``alerts_open``, ``reports``,
        ``births_per_year``.

    Raises
    ------
    InputError
        No village with population, no secondary hospital, or a colour mix not summing to 1.
    """
    today = today or dt.date.today()
    secret = secret or get_settings().secret_key
    rules = load_case_rules(on=today)
    cats = list(colour_mix)
    probs = np.array([colour_mix[c] for c in cats], dtype=float)
    if set(cats) - set(DEFAULT_COLOUR_MIX) or not np.isclose(probs.sum(), 1.0) or (
            probs < 0).any():
        raise InputError.single("colour_mix must give shares of green, yellow, orange, red, "
                                "purple summing to 1", field="colour_mix")
    villages = list(session.scalars(select(Division).where(
        Division.level == "village", Division.population > 0).order_by(Division.code)))
    if not villages:
        raise InputError.single("no village with a population in the database",
                                field="divisions")
    hospitals = list(session.scalars(select(Facility).where(
        Facility.level.in_(("secondary", "tertiary")), Facility.closed_on.is_(None),
        Facility.division_prefix.like(villages[0].code[:6] + "%")).order_by(Facility.id)))
    delivering = [h for h in hospitals if "delivery" in (h.services or [])] or hospitals
    if not hospitals:
        raise InputError.single("the county has no secondary or tertiary hospital",
                                field="facilities")
    mch = service.county_mch(session, villages[0].code) or delivering[0]
    rng = np.random.default_rng(seed)
    names = NameMaker(np.random.default_rng(seed + 1))
    grader = _demo_user(session, "mch_doctor", "facility_staff", mch, "妇幼保健院产科医生")
    managers = [grader, _demo_user(session, "case_manager", "facility_staff", mch,
                                   "高危孕产妇专案管理员")]
    registrar = Actor(None, "village_doctor_demo", "village_doctor", "", None)
    population = np.array([v.population or 0 for v in villages], dtype=float)
    births_per_year = int(round(population.sum() * births_per_1000 / 1000))
    window_days = RECENT_DAYS + AHEAD_DAYS
    n = int(round(births_per_year * window_days / 365))
    taken = set(session.scalars(select(Resident.id_digest)))
    counts = {c: 0 for c in ("green", "yellow", "orange", "red", "purple")}
    made = 0
    for _ in range(n):
        edd = today - dt.timedelta(days=RECENT_DAYS) + dt.timedelta(
            days=int(rng.integers(0, window_days)))
        registered = edd - dt.timedelta(days=service.GESTATION_DAYS - int(rng.integers(56, 98)))
        if registered > today:
            continue
        village = villages[int(rng.choice(len(villages), p=population / population.sum()))]
        category = cats[int(rng.choice(len(cats), p=probs))]
        findings = _findings_for(category, rng)
        born = registered - dt.timedelta(days=int(findings["age"] * 365.25
                                                  + rng.integers(30, 330)))
        number = _identity(rng, village.code[:6], born)
        digest = identity_digest(number, secret=secret)
        if digest in taken:
            continue
        taken.add(digest)
        try:
            p = service.register_pregnancy(session, registrar, PregnancyIn(
                resident=ResidentIn(name=names.person(male=False), identity_number=number,
                                    village_code=village.code, allow_similar=True,
                                    phone=f"13{int(rng.integers(0, 10**9)):09d}"),
                edd=edd, gravidity=int(rng.integers(1, 4)), parity=0,
                screening=findings), secret=secret, now=_local_instant(registered),
                rules=rules)
        except (InputError, ConflictError):
            continue
        made += 1
        _play(session, p, findings, rng, today=today, rules=rules, grader=grader,
              manager=managers[made % len(managers)], delivering=delivering)
    session.flush()
    for days_before in (2, 1):  # earlier daily runs: unacknowledged alerts have escalated
        service.generate_alerts(session, now=_local_instant(today - dt.timedelta(
            days=days_before), 10), rules=rules)
    alerts = service.generate_alerts(session, now=_local_instant(today, 10), rules=rules)
    rows = session.execute(select(Pregnancy.colour, Pregnancy.purple, Pregnancy.status,
                                  Pregnancy.high_risk)).all()
    for colour, purple, _status, _hr in rows:
        counts[colour] = counts.get(colour, 0) + 1
        counts["purple"] += int(purple)
    session.commit()
    return {
        "births_per_year": births_per_year, "pregnancies": len(rows),
        "open": sum(1 for r in rows if r.status != "closed"),
        "closed": sum(1 for r in rows if r.status == "closed"),
        **counts, "high_risk": sum(1 for r in rows if r.high_risk),
        "awaiting_grading": sum(1 for r in rows if r.status == "awaiting_grading"),
        "alerts_open": alerts["open"],
        "reports": session.scalar(select(func.count()).select_from(
            CaseReport)) or 0,
        "alerts_total": session.scalar(select(func.count()).select_from(MaternalAlert)) or 0,
    }


def _play(session: Session, p: Pregnancy, findings: dict[str, Any], rng: np.random.Generator,
          *, today: dt.date, rules: Any, grader: Actor, manager: Actor,
          delivering: list[Facility]) -> None:
    """Take one registered pregnancy through grading, follow-ups, delivery and closure."""
    if p.status == "awaiting_grading":
        graded_on = p.registered_on + dt.timedelta(days=int(rng.integers(2, 13)))
        recent = (today - p.registered_on).days < 2 * rules.grading_within_days
        if graded_on > today or (recent and rng.random() < 0.3):
            return
        service.grade_pregnancy(session, grader, p.id, GradingIn(findings=findings),
                                now=_local_instant(graded_on, 11), rules=rules)
        if p.high_risk and rng.random() < 0.9:
            service.assign_case_manager(session, grader, p.id, manager.username,
                                        now=_local_instant(graded_on, 15))
    for report in session.scalars(select(CaseReport).where(
            CaseReport.pregnancy_id == p.id)):
        received = report.reported_at + dt.timedelta(hours=int(rng.integers(2, 40)))
        if received.astimezone(SHANGHAI).date() <= today and rng.random() < 0.85:
            report.received_at, report.received_by = received, "mch_doctor"
    for f in session.scalars(select(FollowUp).where(
            FollowUp.pregnancy_id == p.id, FollowUp.due_on < today,
            FollowUp.done_on.is_(None), FollowUp.cancelled.is_(False))):
        if rng.random() < 0.9:
            f.done_on, f.done_by = f.due_on, manager.username
    if p.colour != "green" or p.purple:
        book_on = p.edd - dt.timedelta(days=int(rng.integers(20, 70)))
        if book_on <= today and rng.random() < 0.85:
            ok = [h for h in delivering
                  if service.delivery_rule_met(h, p.colour, p.purple, rules)]
            if ok:
                service.book_delivery(session, manager, p.id, BookingIn(
                    facility_code=ok[int(rng.integers(len(ok)))].code, on=book_on),
                    now=_local_instant(book_on), rules=rules)
    delivered = p.edd + dt.timedelta(days=int(np.clip(rng.normal(-4, 7), -28, 12)))
    if delivered >= today or p.status == "awaiting_grading":
        return
    place = delivering[int(rng.integers(len(delivering)))] if delivering else None
    service.record_delivery(session, manager, p.id, DeliveryIn(
        on=delivered, facility_code=place.code if place else None,
        outcome="live_birth" if rng.random() < 0.99 else "stillbirth",
        mode="caesarean" if rng.random() < 0.4 else "vaginal",
        live_births=2 if findings.get("fetuses") == 2 else 1),
        now=_local_instant(delivered, 18), rules=rules)
    for f in session.scalars(select(FollowUp).where(
            FollowUp.pregnancy_id == p.id, FollowUp.kind == "postpartum",
            FollowUp.due_on < today, FollowUp.done_on.is_(None),
            FollowUp.cancelled.is_(False))):
        if rng.random() < 0.92:
            f.done_on, f.done_by = f.due_on, manager.username
    check_on = delivered + dt.timedelta(days=rules.postpartum_assessment_day
                                        + int(rng.integers(0, 5)))
    if check_on <= today:
        stable = not (p.colour == "red" and rng.random() < 0.15)
        service.record_postpartum(session, manager, p.id, PostpartumIn(
            on=check_on, stable=stable, findings={"hb_g_l": int(rng.integers(105, 135))}),
            now=_local_instant(check_on, 10), rules=rules)
