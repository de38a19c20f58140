"""Referral and appointment indicators for the performance evaluation (DOMAIN.md §7).

Definitions (period = referrals requested / appointments starting in ``[start, end]``, UTC days):

* **up / down referrals by pair and month**: counts per (month, direction, sender, receiver).
* **acceptance rate**: accepted ÷ answered (accepted + declined + expired), up-referrals.
* **completion rate**: completed ÷ accepted, up-referrals (still open ones count as not yet).
* **time to acceptance**: minutes from request to acceptance (median, 90th percentile).
* **treated within the county**: up-referrals received by a facility in the resident's county
  ÷ all up-referrals (target ≈ 90 %).
* **down : up ratio**: down-referrals ÷ up-referrals.
* **appointment rate**: referral arrivals that came with a booked appointment ÷ all referral
  arrivals; **waiting time**: minutes from check-in to being seen (median, mean).
* **no-show rate**: no-shows ÷ appointments whose slot has passed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from tiercare.auth.service import Actor
from tiercare.errors import InputError
from tiercare.referral.models import Referral
from tiercare.registry.models import Facility
from tiercare.residents.models import Resident
from tiercare.scheduling.models import Appointment
from tiercare.scheduling.service import as_utc


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 1)


def referral_indicators(session: Session, actor: Actor, *, start: date, end: date,
                        now: datetime | None = None) -> dict[str, Any]:
    """Indicators of the referrals touching the actor's area in ``[start, end]``."""
    if end < start:
        raise InputError.single("end before start", field="end")
    now = as_utc(now or datetime.now(UTC))
    lo = datetime.combine(start, time(0), tzinfo=UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
    src, dst = aliased(Facility), aliased(Facility)
    rows = session.execute(
        select(Referral, src.code, dst.code, dst.division_prefix, Resident.village_code)
        .join(src, src.id == Referral.from_facility_id)
        .join(dst, dst.id == Referral.to_facility_id)
        .join(Resident, Resident.id == Referral.resident_id)
        .where(Referral.requested_at >= lo, Referral.requested_at < hi,
               or_(src.division_prefix.like(actor.division_prefix + "%"),
                   dst.division_prefix.like(actor.division_prefix + "%")))).all()
    pairs: Counter[tuple[str, str, str, str]] = Counter()
    up = [r for r, *_ in rows if r.direction == "up"]
    down = [r for r, *_ in rows if r.direction == "down"]
    within = 0
    for r, from_code, to_code, to_prefix, village in rows:
        month = as_utc(r.requested_at).strftime("%Y-%m")
        pairs[(month, r.direction, from_code, to_code)] += 1
        if r.direction == "up" and to_prefix[:6] == village[:6]:
            within += 1
    accepted = [r for r in up if r.accepted_at is not None]
    answered = accepted + [r for r in up if r.status in ("declined", "expired")]
    completed = [r for r in up if r.status == "completed"]
    minutes = [(as_utc(r.accepted_at) - as_utc(r.requested_at)).total_seconds() / 60
               for r in accepted if r.accepted_at is not None]
    arrived = [r for r in up if r.arrived_at is not None]
    with_appointment = [r for r in arrived if r.appointment_id is not None]
    overdue = [r for r, *_ in rows if r.status == "requested" and as_utc(r.acknowledge_by) < now]

    appts = list(session.scalars(
        select(Appointment).join(Facility, Facility.id == Appointment.facility_id)
        .where(Appointment.start >= lo, Appointment.start < hi,
               Facility.division_prefix.like(actor.division_prefix + "%"))))
    waits = [(as_utc(a.seen_at) - as_utc(a.arrived_at)).total_seconds() / 60
             for a in appts if a.seen_at is not None and a.arrived_at is not None]
    past = [a for a in appts if as_utc(a.end) <= now and a.status != "cancelled"]
    no_show = [a for a in past if a.status == "no_show"]
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "up_referrals": len(up), "down_referrals": len(down),
        "down_up_ratio": _ratio(len(down), len(up)),
        "acceptance_rate": _ratio(len(accepted), len(answered)),
        "completion_rate": _ratio(len(completed), len(accepted)),
        "time_to_acceptance_minutes": {
            "median": _quantile(minutes, 0.5), "p90": _quantile(minutes, 0.9),
            "n": len(minutes)},
        "treated_within_county_share": _ratio(within, len(up)),
        "overdue_open": len(overdue),
        "appointment_rate": _ratio(len(with_appointment), len(arrived)),
        "appointments": len(appts),
        "waiting_minutes": {"median": _quantile(waits, 0.5),
                            "mean": round(statistics.fmean(waits), 1) if waits else None,
                            "n": len(waits)},
        "no_show_rate": _ratio(len(no_show), len(past)),
        "by_pair_month": [
            {"month": m, "direction": d, "from_facility": f, "to_facility": t, "count": n}
            for (m, d, f, t), n in sorted(pairs.items())],
        "status_counts": dict(Counter(r.status for r, *_ in rows)),
    }
