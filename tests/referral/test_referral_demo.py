"""The demo generator fills every page and indicator, through the services' own rules."""

from datetime import date

from referral_helpers import load_small_county
from sqlalchemy import func, select

from tiercare.auth.service import SYSTEM
from tiercare.referral.demo import seed_demo_referral
from tiercare.referral.indicators import referral_indicators
from tiercare.referral.models import Referral
from tiercare.scheduling.models import Appointment, Slot

TODAY = date(2026, 11, 20)


def test_demo_history(session):
    load_small_county(session)
    counts = seed_demo_referral(session, seed=3, today=TODAY, months=2, residents=80,
                                secret="demo-secret")
    assert counts["residents"] == 80 and counts["schedules"] == 6 and counts["slots"] > 1000
    assert counts["up_referrals"] > 0 and counts["appointments"] > counts["up_referrals"]
    statuses = dict(session.execute(select(Referral.status, func.count())
                                    .group_by(Referral.status)).all())
    assert statuses.get("requested", 0) >= 6 and statuses.get("completed", 0) > 0
    # never oversold, counters agree with the live appointments
    live = dict(session.execute(select(Appointment.slot_id, func.count()).where(
        Appointment.status.in_(("booked", "checked_in", "seen", "no_show")))
        .group_by(Appointment.slot_id)).all())
    for slot in session.scalars(select(Slot).where(Slot.booked > 0)):
        assert slot.booked == live.get(slot.id, 0) <= slot.capacity
    ind = referral_indicators(session, SYSTEM, start=date(2026, 9, 1), end=TODAY)
    assert ind["up_referrals"] == counts["up_referrals"]
    assert 0 < ind["acceptance_rate"] <= 1 and ind["waiting_minutes"]["n"] > 0
