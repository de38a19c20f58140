"""Demo pregnancies: as many as the county's births give, and every file consistent with the
rules (states, dates, high-risk files, alerts)."""

from __future__ import annotations

import datetime as dt

from maternal_case_helpers import load_maternal_county
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.maternal.demo import AHEAD_DAYS, RECENT_DAYS, seed_demo_maternal
from tiercare.maternal.models import CaseReport, MaternalAssessment, Pregnancy
from tiercare.maternal.rules import load_case_rules
from tiercare.registry.models import Division

TODAY = dt.date(2026, 6, 1)


def test_demo_files_follow_births_and_rules(session: Session) -> None:
    load_maternal_county(session)
    population = session.scalar(select(func.sum(Division.population)).where(
        Division.level == "village"))
    counts = seed_demo_maternal(session, seed=7, today=TODAY, births_per_1000=8.0,
                                secret="demo-test")
    rules = load_case_rules(on=TODAY)
    births = round(population * 8.0 / 1000)
    assert counts["births_per_year"] == births
    drawn = round(births * (RECENT_DAYS + AHEAD_DAYS) / 365)
    # registrations later than the reference date are not on file yet
    assert 0.6 * drawn <= counts["pregnancies"] <= drawn
    rows = list(session.scalars(select(Pregnancy)))
    assert len(rows) == counts["pregnancies"]
    assert counts["open"] + counts["closed"] == len(rows)
    assert sum(counts[c] for c in ("green", "yellow", "orange", "red")) == len(rows)
    assert counts["green"] > counts["yellow"] > counts["orange"]
    for p in rows:
        assert p.registered_on <= TODAY
        kinds = session.scalars(select(MaternalAssessment.kind).where(
            MaternalAssessment.pregnancy_id == p.id).order_by(MaternalAssessment.id)).all()
        assert kinds[0] == "screening"
        if p.status == "closed":
            assert p.delivered_on is not None and p.postpartum_on is not None
            assert p.postpartum_on >= p.delivered_on + dt.timedelta(
                days=rules.postpartum_assessment_day)
            assert p.postpartum_on <= TODAY
        if p.status in ("screened", "awaiting_grading", "graded"):
            assert p.delivered_on is None
        if p.high_risk:
            assert p.case_opened_at is not None and "grading" in kinds
            assert session.scalar(select(CaseReport.event).where(
                CaseReport.pregnancy_id == p.id).order_by(CaseReport.id).limit(1)) == \
                "case_opened"
        else:
            assert not rules.is_high_risk(p.colour, purple=p.purple) or p.status == \
                "awaiting_grading"
    assert counts["alerts_total"] >= counts["alerts_open"]
