"""Early-warning alerts with a fixed clock (SQLite and PostgreSQL): each kind raised exactly when
its threshold is crossed, resolved when its condition ends, escalated when not acknowledged,
and idempotent for a given instant."""

from __future__ import annotations

import datetime as dt

import pytest
from maternal_case_helpers import NOW, SECRET, TODAY, load_maternal_county, woman
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.errors import ConflictError
from tiercare.maternal import service
from tiercare.maternal.models import FollowUp, MaternalAlert
from tiercare.maternal.rules import load_case_rules
from tiercare.maternal.schemas import BookingIn, FollowUpDoneIn, GradingIn, PregnancyIn

RULES = load_case_rules(on=TODAY)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def _open(session: Session, pregnancy_id: int) -> set[tuple[str, str]]:
    return {(a.kind, a.key) for a in session.scalars(select(MaternalAlert).where(
        MaternalAlert.pregnancy_id == pregnancy_id, MaternalAlert.resolved_at.is_(None)))}


def _kinds(session: Session, pregnancy_id: int) -> set[str]:
    return {kind for kind, _key in _open(session, pregnancy_id)}


def test_each_alert_kind_at_its_threshold(session: Session) -> None:
    actors = load_maternal_county(session)
    vdoc, hosp = actors["vdoc"], actors["hosp"]
    # grading overdue: due on day 14, alert from day 15 on
    p = service.register_pregnancy(session, vdoc, PregnancyIn(
        resident=woman(11), lmp=TODAY - dt.timedelta(days=70), screening={"age": 36}),
        secret=SECRET, now=NOW)
    due = p.grading_due_on
    assert due is not None
    on_due_day = dt.datetime.combine(due, dt.time(12), service.DEFAULT_TZ)
    service.generate_alerts(session, now=on_due_day, rules=RULES)
    assert "grading_overdue" not in _kinds(session, p.id)
    service.generate_alerts(session, now=on_due_day + DAY, rules=RULES)
    assert "grading_overdue" in _kinds(session, p.id)
    # grading resolves it; the red grade raises "colour rising" at once
    t_grade = on_due_day + 2 * DAY
    service.grade_pregnancy(session, hosp, p.id, GradingIn(
        findings={"age": 36, "conditions": ["placental_abruption"]}), now=t_grade)
    rising = session.scalar(select(MaternalAlert).where(
        MaternalAlert.pregnancy_id == p.id, MaternalAlert.kind == "colour_rising"))
    assert rising is not None and rising.detail["from"] == "yellow"
    assert rising.detail["to"] == "red"
    counts = service.generate_alerts(session, now=t_grade, rules=RULES)
    assert counts["resolved"] == 1 and "grading_overdue" not in _kinds(session, p.id)
    # red without tertiary assessment: after red_tertiary_assessment_days
    graded_day = t_grade.astimezone(service.DEFAULT_TZ).date()
    threshold = RULES.red_tertiary_assessment_days
    service.generate_alerts(session, now=t_grade + (threshold - 1) * DAY, rules=RULES)
    assert "red_not_assessed_tertiary" not in _kinds(session, p.id)
    service.generate_alerts(session, now=t_grade + threshold * DAY, rules=RULES)
    assert ("red_not_assessed_tertiary", f"red{graded_day.isoformat()}") in _open(session, p.id)
    # no case manager after no_case_manager_days
    assert "no_case_manager" in _kinds(session, p.id)
    service.assign_case_manager(session, hosp, p.id, "mch", now=t_grade + threshold * DAY)
    service.generate_alerts(session, now=t_grade + threshold * DAY, rules=RULES)
    assert "no_case_manager" not in _kinds(session, p.id)
    # missed follow-up: the first planned visit, grace days after it
    first = session.scalars(select(FollowUp).where(FollowUp.pregnancy_id == p.id,
                                                   FollowUp.cancelled.is_(False))
                            .order_by(FollowUp.due_on)).first()
    assert first is not None
    at = dt.datetime.combine(first.due_on, dt.time(12), service.DEFAULT_TZ)
    grace = RULES.missed_follow_up_grace_days
    service.generate_alerts(session, now=at + grace * DAY, rules=RULES)
    assert ("missed_follow_up", f"f{first.id}") not in _open(session, p.id)
    service.generate_alerts(session, now=at + (grace + 1) * DAY, rules=RULES)
    assert ("missed_follow_up", f"f{first.id}") in _open(session, p.id)
    service.complete_follow_up(session, hosp, first.id, FollowUpDoneIn(on=first.due_on),
                               now=at + (grace + 1) * DAY)
    service.generate_alerts(session, now=at + (grace + 1) * DAY, rules=RULES)
    assert ("missed_follow_up", f"f{first.id}") not in _open(session, p.id)
    # due date approaching without a facility of the required level (red: tertiary, or the
    # county critical maternal care centre as fallback)
    warn = RULES.due_date_warning_days
    edd_noon = dt.datetime.combine(p.edd, dt.time(12), service.DEFAULT_TZ)
    for f in session.scalars(select(FollowUp).where(FollowUp.pregnancy_id == p.id)):
        f.done_on = f.due_on  # keep the follow-ups out of this part
    service.generate_alerts(session, now=edd_noon - (warn + 1) * DAY, rules=RULES)
    assert "due_date_no_facility" not in _kinds(session, p.id)
    service.generate_alerts(session, now=edd_noon - warn * DAY, rules=RULES)
    assert "due_date_no_facility" in _kinds(session, p.id)
    with pytest.raises(ConflictError):
        service.book_delivery(session, hosp, p.id, BookingIn(facility_code="T1"),
                              now=edd_noon - warn * DAY)
    service.book_delivery(session, hosp, p.id, BookingIn(facility_code="X1"),
                          now=edd_noon - warn * DAY)
    service.generate_alerts(session, now=edd_noon - warn * DAY, rules=RULES)
    assert "due_date_no_facility" not in _kinds(session, p.id)
    session.commit()


def test_escalation_acknowledgement_and_idempotence(session: Session) -> None:
    actors = load_maternal_county(session)
    p = service.register_pregnancy(session, actors["vdoc"], PregnancyIn(
        resident=woman(12), lmp=TODAY - dt.timedelta(days=70), screening={"age": 41}),
        secret=SECRET, now=NOW)
    start = dt.datetime.combine(p.grading_due_on + DAY, dt.time(9), service.DEFAULT_TZ)
    first = service.generate_alerts(session, now=start, rules=RULES)
    again = service.generate_alerts(session, now=start, rules=RULES)
    assert first["raised"] == 1 and again == {"raised": 0, "resolved": 0, "escalated": 0,
                                               "open": first["open"]}
    alert = session.scalar(select(MaternalAlert).where(MaternalAlert.pregnancy_id == p.id))
    hours = RULES.escalation_hours(p.colour)  # orange screen
    assert hours == RULES.escalate_after_hours["orange"]
    service.generate_alerts(session, now=start + hours * HOUR - dt.timedelta(seconds=1),
                            rules=RULES)
    assert alert.level == 0
    service.generate_alerts(session, now=start + hours * HOUR, rules=RULES)
    assert alert.level == 1
    assert service._aware(alert.escalated_at) == start + hours * HOUR
    # far later: capped at the last level
    top = len(RULES.escalation_levels) - 1
    service.generate_alerts(session, now=start + 100 * hours * HOUR, rules=RULES)
    assert alert.level == top
    # acknowledgement stops it; listed no more as open
    service.acknowledge_alert(session, actors["mch"], alert.id, note="called her",
                              now=start + 101 * hours * HOUR)
    with pytest.raises(ConflictError) as exc:
        service.acknowledge_alert(session, actors["mch"], alert.id,
                                  now=start + 101 * hours * HOUR)
    assert exc.value.reason == "already_acknowledged"
    total, _items = service.list_alerts(session, actors["mch"])
    assert total == 0
    # the village doctor of another village does not see it; the township planner does not
    # either (the woman lives in 甲镇, the planner's scope is 乙乡)
    assert service.list_alerts(session, actors["yixiang"], open_only=False)[0] == 0
    assert service.list_alerts(session, actors["mch"], open_only=False)[0] == 1
    session.commit()
