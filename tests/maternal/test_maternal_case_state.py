"""Case-management states on SQLite and PostgreSQL: registration and screening, grading and
re-grading with history, high-risk case file, delivery and closure (a red case not yet stable
stays open), and the refusals (wrong state, wrong facility, duplicates)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from maternal_case_helpers import NOW, SECRET, TODAY, load_maternal_county, woman
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.models import AuditEntry
from tiercare.db.engine import session_factory
from tiercare.errors import ConflictError, InputError
from tiercare.maternal import service
from tiercare.maternal.models import CaseReport, FollowUp, MaternalAssessment, Pregnancy
from tiercare.maternal.rules import load_case_rules
from tiercare.maternal.schemas import (
    BookingIn,
    DeliveryIn,
    GradingIn,
    PlanIn,
    PostpartumIn,
    PregnancyIn,
    StepIn,
    TertiaryAssessmentIn,
)

RULES = load_case_rules(on=TODAY)


def _register(session: Session, actor, n: int, screening: dict, **extra) -> Pregnancy:
    data = PregnancyIn(resident=woman(n), lmp=TODAY - dt.timedelta(days=70),
                       screening=screening, **extra)
    return service.register_pregnancy(session, actor, data, secret=SECRET, now=NOW)


def test_registration_screening_and_grading_history(session: Session) -> None:
    actors = load_maternal_county(session)
    # bad input: every problem named, nothing written
    with pytest.raises(InputError) as exc:
        service.register_pregnancy(session, actors["vdoc"], PregnancyIn(
            resident=woman(3), lmp=TODAY + dt.timedelta(days=2), gravidity=1, parity=1,
            screening={"age": 3, "platelets_1e9_l": -5, "conditions": ["no_such_thing"]}),
            secret=SECRET, now=NOW)
    fields = {p.field for p in exc.value.problems}
    assert {"lmp", "parity", "screening.age", "screening.platelets_1e9_l",
            "screening.conditions"} <= fields
    assert session.scalar(select(func.count()).select_from(Pregnancy)) == 0  # nothing written
    # planners read, they do not register
    with pytest.raises(ConflictError) as denied:
        _register(session, actors["yixiang"], 9, {"age": 30})
    assert denied.value.reason == "role_not_allowed"
    # negative screen: routine care, no grading task
    green = _register(session, actors["vdoc"], 1, {"age": 28, "hb_g_l": 125})
    assert (green.status, green.colour, green.grading_due_on) == ("screened", "green", None)
    assert green.edd == TODAY - dt.timedelta(days=70) + dt.timedelta(days=280)
    # positive screen: task due in exactly grading_within_days
    p = _register(session, actors["vdoc"], 2, {"age": 36})
    assert p.status == "awaiting_grading" and p.screening_positive
    assert p.grading_due_on == TODAY + dt.timedelta(days=RULES.grading_within_days)
    # the village doctor may not grade
    with pytest.raises(ConflictError) as exc:
        service.grade_pregnancy(session, actors["vdoc"], p.id,
                                GradingIn(findings={"age": 36}), now=NOW)
    assert exc.value.reason == "grading_needs_hospital"
    # grading at the county hospital: orange opens the case file
    later = NOW + dt.timedelta(days=3)
    a1 = service.grade_pregnancy(session, actors["hosp"], p.id,
                                 GradingIn(findings={"age": 36, "conditions": ["asthma"]}),
                                 now=later)
    assert (a1.colour, a1.previous_colour) == ("orange", "yellow")
    assert p.status == "graded" and p.high_risk and p.case_opened_at is not None
    reports = session.scalars(select(CaseReport).where(CaseReport.pregnancy_id == p.id)).all()
    assert [(r.event, r.colour) for r in reports] == [("case_opened", "orange")]
    assert reports[0].recipient_facility_id is not None  # the county MCH hospital M1
    # follow-up plan: every 14 days from the grading day up to the due date
    due = sorted(f.due_on for f in session.scalars(select(FollowUp).where(
        FollowUp.pregnancy_id == p.id, FollowUp.cancelled.is_(False))))
    start = TODAY + dt.timedelta(days=3)
    expected = []
    day = start + dt.timedelta(days=14)
    while day <= p.edd:
        expected.append(day)
        day += dt.timedelta(days=14)
    assert due == expected
    # re-grading red: history kept, plan re-made weekly, colour change reported
    a2 = service.grade_pregnancy(session, actors["hosp"], p.id, GradingIn(
        findings={"age": 36, "conditions": ["asthma", "cardiomyopathy"]}), now=later)
    assert (a2.colour, a2.previous_colour) == ("red", "orange")
    history = session.scalars(select(MaternalAssessment.kind).where(
        MaternalAssessment.pregnancy_id == p.id).order_by(MaternalAssessment.id)).all()
    assert history == ["screening", "grading", "grading"]
    live = sorted(f.due_on for f in session.scalars(select(FollowUp).where(
        FollowUp.pregnancy_id == p.id, FollowUp.cancelled.is_(False))))
    assert live[0] == start + dt.timedelta(days=7)
    assert all((b - a).days == 7 for a, b in zip(live, live[1:], strict=False))
    assert [r.event for r in session.scalars(select(CaseReport).where(
        CaseReport.pregnancy_id == p.id).order_by(CaseReport.id))] == ["case_opened",
                                                                        "colour_changed"]
    # a second open file for the same woman is refused
    with pytest.raises(ConflictError) as exc:
        service.register_pregnancy(session, actors["vdoc"], PregnancyIn(
            resident_id=p.resident_id, lmp=TODAY - dt.timedelta(days=30)),
            secret=SECRET, now=NOW)
    assert exc.value.reason == "open_pregnancy_exists"
    session.commit()
    # every read of a file is audited
    before = session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "read", AuditEntry.entity == "maternal_pregnancy"))
    service.get_pregnancy(session, actors["mch"], p.id)
    after = session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "read", AuditEntry.entity == "maternal_pregnancy"))
    assert after == before + 1


def test_purple_case_to_closure_and_red_unstable_stays_open(session: Session) -> None:
    actors = load_maternal_county(session)
    hosp, mch = actors["hosp"], actors["mch"]
    # purple (syphilis) on a yellow woman: high-risk file with the PMTCT steps
    p = _register(session, actors["vdoc"], 4, {"age": 37, "conditions": ["syphilis"]})
    service.grade_pregnancy(session, hosp, p.id,
                            GradingIn(findings={"age": 37, "conditions": ["syphilis"]}), now=NOW)
    assert (p.colour, p.purple, p.high_risk) == ("yellow", True, True)
    steps = [s["code"] for s in service.pmtct_status(p, RULES)]
    assert steps == [s.code for s in RULES.pmtct_steps["syphilis"]]
    with pytest.raises(InputError):
        service.complete_pmtct_step(session, hosp, p.id, "hiv_art", StepIn(on=TODAY), now=NOW)
    service.complete_pmtct_step(session, hosp, p.id, steps[0], StepIn(on=TODAY), now=NOW)
    assert [s["done"] for s in service.pmtct_status(p, RULES)] == [True, False]
    service.assign_case_manager(session, hosp, p.id, "mch", now=NOW)
    # a village clinic does not meet a purple case's delivery requirement; M1 does
    with pytest.raises(ConflictError) as exc:
        service.book_delivery(session, mch, p.id, BookingIn(facility_code="V1"), now=NOW)
    assert exc.value.reason == "facility_level_insufficient"
    service.book_delivery(session, mch, p.id, BookingIn(facility_code="M1"), now=NOW)
    # postpartum before delivery, and before day 42, are refused
    with pytest.raises(ConflictError) as exc:
        service.record_postpartum(session, mch, p.id, PostpartumIn(on=TODAY, stable=True),
                                  now=NOW)
    assert exc.value.reason == "not_delivered"
    delivered_on = TODAY + dt.timedelta(days=10)
    later = NOW + dt.timedelta(days=70)  # the clock after delivery and day 42
    service.record_delivery(session, mch, p.id, DeliveryIn(on=delivered_on,
                                                           facility_code="M1"), now=later)
    postpartum_visits = sorted(f.due_on for f in session.scalars(select(FollowUp).where(
        FollowUp.pregnancy_id == p.id, FollowUp.kind == "postpartum")))
    assert postpartum_visits == [delivered_on + dt.timedelta(days=d)
                                 for d in RULES.postpartum_visit_days]
    with pytest.raises(ConflictError) as exc:
        service.record_postpartum(session, mch, p.id, PostpartumIn(
            on=delivered_on + dt.timedelta(days=41), stable=True), now=later)
    assert exc.value.reason == "too_early"
    service.record_postpartum(session, mch, p.id, PostpartumIn(
        on=delivered_on + dt.timedelta(days=42), stable=True), now=later)
    assert p.status == "closed" and p.close_reason == "postpartum_assessed"
    assert session.scalar(select(func.count()).select_from(FollowUp).where(
        FollowUp.pregnancy_id == p.id, FollowUp.done_on.is_(None),
        FollowUp.cancelled.is_(False))) == 0
    with pytest.raises(ConflictError) as exc:
        service.grade_pregnancy(session, hosp, p.id, GradingIn(findings={}), now=NOW)
    assert exc.value.reason == "case_closed"
    events = [r.event for r in session.scalars(select(CaseReport).where(
        CaseReport.pregnancy_id == p.id).order_by(CaseReport.id))]
    assert events == ["case_opened", "delivered", "closed"]

    # red case: plan with the centre, tertiary assessment, unstable after delivery stays open
    r = _register(session, actors["vdoc"], 5, {"age": 30})
    service.grade_pregnancy(session, hosp, r.id, GradingIn(
        findings={"age": 30, "pulmonary_artery_pressure_mmhg": 50}), now=NOW)
    assert r.colour == "red"
    with pytest.raises(InputError):
        service.record_plan(session, hosp, r.id, PlanIn(
            centre_code="H1", agreed_on=TODAY, management="m", emergency="e"), now=NOW)
    service.record_plan(session, hosp, r.id, PlanIn(
        centre_code="M1", agreed_on=TODAY, management="weekly", emergency="call 120"), now=NOW)
    with pytest.raises(InputError):
        service.record_tertiary_assessment(session, hosp, r.id, TertiaryAssessmentIn(
            facility_code="H1", on=TODAY, continue_pregnancy=True), now=NOW)
    service.record_tertiary_assessment(session, hosp, r.id, TertiaryAssessmentIn(
        facility_code="X1", on=TODAY, continue_pregnancy=True), now=NOW)
    service.record_delivery(session, hosp, r.id, DeliveryIn(
        on=delivered_on, facility_code="X1", maternal_condition="unstable"), now=later)
    with pytest.raises(ConflictError) as exc:
        service.record_delivery(session, hosp, r.id, DeliveryIn(on=delivered_on), now=later)
    assert exc.value.reason == "already_delivered"
    a = service.record_postpartum(session, hosp, r.id, PostpartumIn(
        on=delivered_on + dt.timedelta(days=45), stable=False), now=later)
    assert a.colour == "red"
    assert [x["code"] for x in a.reasons] == [service.UNSTABLE_POSTPARTUM_CODE]
    assert r.status == "delivered" and r.postpartum_stable is False
    service.record_postpartum(session, hosp, r.id, PostpartumIn(
        on=delivered_on + dt.timedelta(days=49), stable=True), now=later)
    assert r.status == "closed"
    session.commit()


def test_concurrent_registrations_keep_one_open_file(engine, session: Session) -> None:
    actors = load_maternal_county(session)
    first = _register(session, actors["vdoc"], 6, {"age": 25})
    later = NOW + dt.timedelta(days=60)
    service.record_delivery(session, actors["hosp"], first.id, DeliveryIn(
        on=TODAY + dt.timedelta(days=5)), now=later)
    service.record_postpartum(session, actors["hosp"], first.id, PostpartumIn(
        on=TODAY + dt.timedelta(days=55), stable=True), now=later)
    session.commit()
    resident_id = first.resident_id
    factory = session_factory(engine)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        with factory() as s:
            try:
                service.register_pregnancy(s, actors["vdoc"], PregnancyIn(
                    resident_id=resident_id, lmp=TODAY + dt.timedelta(days=30)),
                    secret=SECRET, now=later)
                s.commit()
                result = "ok"
            except ConflictError as exc:
                s.rollback()
                result = exc.reason
            except Exception as exc:  # noqa: BLE001 - a lost race surfacing at commit
                s.rollback()
                result = type(exc).__name__
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Pregnancy).where(
            Pregnancy.resident_id == resident_id, Pregnancy.status != "closed")) == 1
