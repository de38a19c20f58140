"""Scarce-vaccine releases: never oversold under concurrency (SQLite and PostgreSQL), fair queue,
one person one request, cancellations offered in order, the published lottery reproducible.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import numpy as np
import pytest
from immunization_helpers import SECRET, identity, setup
from pydantic import ValidationError
from sqlalchemy import func, select

from tiercare.auth.service import SYSTEM
from tiercare.db.engine import session_factory
from tiercare.errors import ConflictError, InputError, problems_from_validation
from tiercare.immunization.models import Release, ReleaseRequest
from tiercare.immunization.releases import (
    ReleaseIn,
    RequestIn,
    accept_offer,
    cancel_request,
    create_release,
    draw,
    expire_offers,
    lottery_order,
    request_dose,
    request_status,
)

OPENS = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
NOW = OPENS + dt.timedelta(minutes=1)
THREADS = 32
DOSES = 7


def _girl(i: int) -> str:
    return identity(dt.date(2008, 1, 1) + dt.timedelta(days=i), i % 400, sex="F")


def _release(session, **kw) -> Release:
    data = {"code": "HPV-1", "vaccine": "HPV", "site_code": "VS1", "doses": DOSES,
            "opens_at": OPENS, **kw}
    r = create_release(session, SYSTEM, ReleaseIn(**data))
    session.commit()
    return r


def _storm(engine, code: str, people: list[str]) -> Counter:
    factory = session_factory(engine)
    barrier = threading.Barrier(len(people))
    outcomes = [""] * len(people)

    def run(i: int) -> None:
        with factory() as s:
            barrier.wait()
            try:
                req = request_dose(s, SYSTEM, code, RequestIn(identity_number=people[i]),
                                   secret=SECRET, now=NOW)
                s.commit()
                outcomes[i] = req.status
            except ConflictError as exc:
                s.rollback()
                outcomes[i] = exc.reason

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(people))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(outcomes)


def _held(session, release_id: int) -> list[int]:
    return sorted(session.scalars(select(ReleaseRequest.place).where(
        ReleaseRequest.release_id == release_id, ReleaseRequest.place.is_not(None))))


def test_immunization_release_flash_crowd_exactly_n(session, engine):
    setup(session)
    release = _release(session)
    people = [_girl(i) for i in range(THREADS - 4)] + [_girl(0)] * 4  # 4 repeat requests
    outcomes = _storm(engine, "HPV-1", people)
    assert outcomes == Counter({"confirmed": DOSES, "waitlisted": THREADS - 4 - DOSES,
                                "already_requested": 4})
    session.expire_all()
    r = session.get(Release, release.id)
    assert (r.taken, r.requested) == (DOSES, THREADS - 4)
    assert _held(session, r.id) == list(range(1, DOSES + 1))
    # arrival order: the confirmed are exactly the first DOSES arrivals
    rows = list(session.scalars(select(ReleaseRequest).where(ReleaseRequest.release_id == r.id)
                                .order_by(ReleaseRequest.seq)))
    assert [x.seq for x in rows] == list(range(1, THREADS - 3))
    assert all(x.status == "confirmed" for x in rows[:DOSES])
    assert all(x.status == "waitlisted" for x in rows[DOSES:])


def test_immunization_release_queue_offers_and_eligibility(session):
    setup(session)
    _release(session, doses=2, offer_hours=2)
    people = [_girl(i) for i in range(5)]
    for p in people:
        request_dose(session, SYSTEM, "HPV-1", RequestIn(identity_number=p), secret=SECRET,
                     now=NOW)
    session.commit()
    with pytest.raises(ConflictError) as err:
        request_dose(session, SYSTEM, "HPV-1", RequestIn(identity_number=people[1]),
                     secret=SECRET, now=NOW)
    assert err.value.reason == "already_requested"
    session.rollback()
    status = request_status(session, "HPV-1", identity_number=people[4], secret=SECRET)
    assert (status["status"], status["ahead"]) == ("waitlisted", 2)
    cancel_request(session, SYSTEM, "HPV-1", identity_number=people[0], secret=SECRET, now=NOW)
    third = request_status(session, "HPV-1", identity_number=people[2], secret=SECRET)
    assert (third["status"], third["place"]) == ("offered", 1)
    # the offer expires: passes to the fourth, the third is out
    later = NOW + dt.timedelta(hours=3)
    assert expire_offers(session, SYSTEM, "HPV-1", now=later) == 1
    assert request_status(session, "HPV-1", identity_number=people[3],
                          secret=SECRET)["status"] == "offered"
    accept_offer(session, SYSTEM, "HPV-1", identity_number=people[3], secret=SECRET, now=later)
    session.commit()
    r = session.scalar(select(Release).where(Release.code == "HPV-1"))
    assert r.taken == 2 and _held(session, r.id) == [1, 2]
    # cancelling with an empty waitlist frees the place; a newcomer takes the gap
    cancel_request(session, SYSTEM, "HPV-1", identity_number=people[4], secret=SECRET, now=later)
    cancel_request(session, SYSTEM, "HPV-1", identity_number=people[1], secret=SECRET, now=later)
    req = request_dose(session, SYSTEM, "HPV-1", RequestIn(identity_number=_girl(9)),
                       secret=SECRET, now=later)
    assert (req.status, req.place) == ("confirmed", 2)
    session.commit()
    # a release not open yet; eligibility
    _release(session, code="HPV-2", eligibility={"sex": "F", "min_age": 9, "max_age": 45})
    with pytest.raises(ConflictError) as err:
        request_dose(session, SYSTEM, "HPV-2", RequestIn(identity_number=_girl(1)),
                     secret=SECRET, now=OPENS - dt.timedelta(seconds=1))
    assert err.value.reason == "not_open"
    session.rollback()
    boy = identity(dt.date(2010, 5, 5), 1, sex="M")
    with pytest.raises(InputError) as bad:
        request_dose(session, SYSTEM, "HPV-2", RequestIn(identity_number=boy), secret=SECRET,
                     now=NOW)
    assert bad.value.problems[0].code == "not_eligible"



def test_immunization_release_eligibility_rule_names_the_bad_key():
    def refused(rule):
        with pytest.raises(ValidationError) as caught:
            ReleaseIn(code="HPV-E", vaccine="HPV", site_code="VS1", doses=1, opens_at=OPENS,
                      eligibility=rule)
        return [(p.field, p.code) for p in problems_from_validation(caught.value.errors())]

    # min above max: a coded error on max_age (the form shows it there), not on the rule
    assert refused({"max_age": 9, "min_age": 45}) == [("eligibility.max_age", "min_above_max")]
    assert refused({"min_age": 200}) == [("eligibility.min_age", "less_than_equal")]
    assert refused({"min_age": "9"}) == [("eligibility.min_age", "int_type")]
    assert refused({"max_age": True}) == [("eligibility.max_age", "int_type")]
    assert refused({"sex": "X"}) == [("eligibility.sex", "literal_error")]
    assert refused({"race": "any"}) == [("eligibility.race", "extra_forbidden")]
    rule = {"sex": "F", "min_age": 9, "max_age": 9}
    assert ReleaseIn(code="HPV-E", vaccine="HPV", site_code="VS1", doses=1, opens_at=OPENS,
                     eligibility=rule).eligibility == rule


def test_immunization_release_lottery_published_seed(session, engine):
    setup(session)
    closes = NOW + dt.timedelta(hours=1)
    release = _release(session, mode="lottery", closes_at=closes, seed=20261120)
    people = [_girl(i) for i in range(THREADS)]
    outcomes = _storm(engine, "HPV-1", people)
    assert outcomes == Counter({"entered": THREADS})
    with pytest.raises(ConflictError):
        draw(session, SYSTEM, "HPV-1", now=NOW)
    session.rollback()
    out = draw(session, SYSTEM, "HPV-1", now=closes)
    session.commit()
    assert (out["confirmed"], out["waitlisted"]) == (DOSES, THREADS - DOSES)
    with pytest.raises(ConflictError):
        draw(session, SYSTEM, "HPV-1", now=closes)
    session.rollback()
    # anyone can recompute the draw from the published seed and the arrival numbers
    expected = np.random.Generator(np.random.PCG64(20261120)).permutation(
        np.arange(1, THREADS + 1))[:DOSES]
    assert lottery_order(list(range(THREADS, 0, -1)), 20261120)[:DOSES] == list(expected)
    confirmed = set(session.scalars(select(ReleaseRequest.seq).where(
        ReleaseRequest.release_id == release.id, ReleaseRequest.status == "confirmed")))
    assert confirmed == set(int(x) for x in expected)
    assert session.scalar(select(func.count()).select_from(ReleaseRequest).where(
        ReleaseRequest.place.is_not(None))) == DOSES
