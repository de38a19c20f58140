"""Demo data of the referral and appointment system for the demo county.

:func:`seed_demo_referral` gives the county hospitals and township centres weekly schedules, a
sample of residents (identity numbers valid, protected like real ones), and a few months of
history generated *through the services* with simulated clocks — so every booking obeyed the
release windows, quotas and state machine exactly as a live one would:

* up-referrals from village clinics and township centres to the nearest hospital with free
  reserved places, accepted-and-booked, declined, cancelled or left to expire; arrivals, waiting
  times, completions and down-referrals with follow-up plans and recorded follow-ups;
* general appointments (booked ahead, checked in, seen, a few no-shows and cancellations);
* recent open referrals (some overdue) so the inboxes have work in them.

Rates are demo assumptions (about 20 up-referrals per 1,000 residents per year, 85 % of them
answered in time), not statistics.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import SYSTEM, Actor, create_user
from tiercare.config import get_settings
from tiercare.demo._names import NameMaker
from tiercare.errors import ConflictError, InputError
from tiercare.identity import check_character, identity_digest, mask_identity_number
from tiercare.referral import service as rs
from tiercare.referral.models import Referral
from tiercare.referral.rules import criteria_on, travel_model_on
from tiercare.registry.models import Division, Facility, StaffMember, StaffVillage
from tiercare.residents.models import Resident
from tiercare.scheduling import service as ss
from tiercare.scheduling.models import Slot

DEMO_PASSWORD = "tiercare-demo"
HOSPITAL_DEPARTMENTS = (("内科", False, 2), ("外科", False, 2), ("儿科", False, 1),
                        ("心内科专家", True, 1), ("神经内科专家", True, 1))
CENTRE_DEPARTMENTS = (("全科", False, 2),)
UP_PER_1000_YEAR = 20.0
MAX_UP = 700
GENERAL_PER_UP = 3


def _actor(f: Facility, role: str) -> Actor:
    return Actor(user_id=None, username=f"demo-{f.code}", role=role,
                 division_prefix=f.division_prefix, facility_id=f.id)


def _weekly(department: str, centre: bool) -> list[ss.SessionIn]:
    days = range(6) if centre else range(5)
    out = [ss.SessionIn(weekday=d, start="08:00", end="11:30") for d in days]
    if not centre:
        out += [ss.SessionIn(weekday=d, start="14:30", end="17:00") for d in days]
    return out


def _local_noon(day: date) -> datetime:
    return datetime.combine(day, time(4, 0), tzinfo=UTC)  # 12:00 Asia/Shanghai


def seed_demo_referral(session: Session, *, seed: int, today: date | None = None,
                       months: int = 4, residents: int = 1500, secret: str | None = None
                       ) -> dict[str, int]:
    """Generate schedules, residents and referral / appointment history (commits at the end).

    Parameters
    ----------
    session:
        A session on a database holding the demo county's divisions, facilities and staff.
    seed:
        Seed of the random generator (same seed and ``today`` → same data).
    today:
        The simulated "now" (default today); history covers the ``months`` before it and the
        schedules run two weeks after it.
    residents:
        Residents to register (spread over villages by population).
    secret:
        Key of the identity digests (default the settings' secret key).

    Returns
    -------
    dict
        Counts: ``schedules``, ``slots``, ``residents``, ``up_referrals``,
        ``down_referrals``, ``appointments``, ``follow_ups``, ``open_referrals``.
    """
    today = today or date.today()
    secret = secret or get_settings().secret_key
    rng = np.random.default_rng(seed)
    names = NameMaker(np.random.default_rng(seed + 7))
    villages = list(session.scalars(select(Division).where(
        Division.level == "village", Division.population > 0, Division.lon.is_not(None))
        .order_by(Division.code)))
    if not villages:
        raise InputError.single("no village with population and coordinates",
                                field="divisions")
    county = villages[0].code[:6]
    facilities = list(session.scalars(select(Facility).where(
        Facility.closed_on.is_(None), Facility.division_prefix.like(county + "%"))
        .order_by(Facility.code)))
    hospitals = [f for f in facilities if f.level in ("secondary", "tertiary")
                 and f.type_code.endswith("hospital") and f.lon is not None]
    centres = [f for f in facilities if f.type_code.startswith("township_health_centre")
               and f.lon is not None]
    clinics = {f.division.code: f for f in facilities if f.type_code == "village_clinic"}
    if not hospitals:
        raise InputError.single("the county has no hospital", field="facilities")

    # ---------------------------------------------------------------- schedules and slots
    start_day = today - timedelta(days=30 * months)
    end_day = today + timedelta(days=14)
    n_schedules = n_slots = 0
    for f, departments, centre in [(h, HOSPITAL_DEPARTMENTS, False) for h in hospitals] + [
            (c, CENTRE_DEPARTMENTS, True) for c in centres]:
        for department, expert, capacity in departments:
            schedule = ss.create_schedule(session, SYSTEM, ss.ScheduleIn(
                facility_code=f.code, department=department, expert=expert,
                name=f"{department}门诊", slot_minutes=15 if expert else 10,
                capacity_per_slot=capacity, weekly=_weekly(department, centre),
                effective_from=start_day - timedelta(days=20)))
            n_schedules += 1
            n_slots += ss.generate_slots(session, SYSTEM, schedule.id, start=start_day,
                                         end=end_day)
    session.flush()

    # ---------------------------------------------------------------- residents
    population = np.array([v.population or 0 for v in villages], dtype=float)
    counts = rng.multinomial(residents, population / population.sum())
    doctors: dict[int, int] = dict(session.execute(
        select(StaffVillage.division_id, func.min(StaffVillage.staff_id))
        .group_by(StaffVillage.division_id)).all())
    staff_facility = dict(session.execute(select(StaffMember.id, StaffMember.facility_id)).all())
    used = set(session.scalars(select(Resident.id_digest)))
    rows: list[dict[str, Any]] = []
    for village, k in zip(villages, counts, strict=True):
        for _ in range(int(k)):
            male = bool(rng.random() < 0.5)
            born = date(1935, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 88)))
            while True:
                seq = int(rng.integers(0, 500)) * 2 + (1 if male else 0)
                first17 = f"{county}{born:%Y%m%d}{seq:03d}"
                number = first17 + check_character(first17)
                digest = identity_digest(number, secret=secret)
                if digest not in used:
                    used.add(digest)
                    break
            staff_id = doctors.get(village.id)
            rows.append(dict(
                name=names.person(male=male), sex="M" if male else "F", birth_date=born,
                id_masked=mask_identity_number(number), id_digest=digest, id_number=number,
                phone=f"13{int(rng.integers(0, 10**9)):09d}", village_code=village.code,
                signed_staff_id=staff_id,
                signed_facility_id=staff_facility.get(staff_id) if staff_id else None,
                active=True, lock_version=0))
    session.execute(Resident.__table__.insert(), rows)
    people = list(session.scalars(select(Resident).where(
        Resident.id_digest.in_([r["id_digest"] for r in rows])).order_by(Resident.id)))
    village_of = {v.code: v for v in villages}

    # ---------------------------------------------------------------- referral history
    up_total = min(MAX_UP, int(round(population.sum() * UP_PER_1000_YEAR / 1000
                                     * months / 12)))
    travel = travel_model_on(today)
    criteria = [c.code for c in criteria_on(today).up]
    down_codes = [c.code for c in criteria_on(today).down]
    days = (today - start_day).days
    moments = sorted(_local_noon(start_day) + timedelta(
        minutes=float(rng.uniform(0, days * 1440 - 2880))) for _ in range(up_total))
    # a few recent requests left open (some past their answer deadline)
    recent = [datetime.combine(today, time(0), tzinfo=UTC) - timedelta(
        minutes=float(rng.uniform(5, 36 * 60))) for _ in range(max(6, up_total // 40))]
    stats = {"up_referrals": 0, "down_referrals": 0, "appointments": 0, "follow_ups": 0,
             "open_referrals": 0}
    hospital_actor = {h.id: _actor(h, "facility_staff") for h in hospitals}

    def nearest_hospitals(v: Division) -> list[Facility]:
        return sorted(hospitals, key=lambda h: travel.seconds(v.lon, v.lat, h.lon, h.lat))

    for i, when in enumerate(moments + recent):
        person = people[int(rng.integers(len(people)))]
        village = village_of[person.village_code]
        clinic = clinics.get(village.code)
        township_centres = [c for c in centres if c.division_prefix == village.code[:9]]
        origin = clinic if clinic is not None and rng.random() < 0.6 else (
            township_centres[0] if township_centres else clinic)
        if origin is None:
            continue
        options = nearest_hospitals(village)
        target = options[0] if rng.random() < 0.85 or len(options) == 1 else options[1]
        urgency = str(rng.choice(["emergency", "urgent", "routine"], p=[0.1, 0.3, 0.6]))
        role = "village_doctor" if origin.type_code == "village_clinic" else "facility_staff"
        sender = _actor(origin, role)
        department = str(rng.choice([d for d, _, _ in HOSPITAL_DEPARTMENTS]))
        try:
            ref = rs.create_referral(session, sender, rs.ReferralIn(
                resident_id=person.id, to_facility_code=target.code, urgency=urgency,
                reason=str(rng.choice(["胸痛待查", "血压控制不佳", "疑似脑卒中", "外伤", "发热待查",
                                       "糖尿病并发症", "腹痛待查", "孕期检查异常"])),
                criteria=list(rng.choice(criteria, size=int(rng.integers(1, 3)),
                                         replace=False)),
                summary="生命体征：" + f"BP {int(rng.integers(100, 190))}/"
                f"{int(rng.integers(60, 110))} mmHg", department=department), now=when)
        except InputError:
            continue
        stats["up_referrals"] += 1
        if i >= len(moments):
            stats["open_referrals"] += 1
            continue
        desk = hospital_actor[target.id]
        answer_at = when + timedelta(minutes=float(rng.gamma(2.0, {
            "emergency": 3, "urgent": 30, "routine": 240}[urgency])))
        fate = rng.random()
        if fate < 0.03:
            rs.expire_overdue(session, now=ref.expires_at + timedelta(minutes=1))
            continue
        if fate < 0.07:
            rs.cancel(session, sender, ref.id, reason="患者好转", now=answer_at)
            continue
        if fate < 0.15:
            rs.decline(session, desk, ref.id, reason="专科床位已满，建议转上级医院", now=answer_at)
            continue
        slot = session.scalar(select(Slot).where(
            Slot.facility_id == target.id, Slot.department == department,
            Slot.start > answer_at + timedelta(hours=2 if urgency != "routine" else 20),
            Slot.referral_opens_at <= answer_at, Slot.referral_booked < Slot.referral_capacity,
            Slot.booked < Slot.capacity).order_by(Slot.start).limit(1))
        try:
            if slot is None:
                raise ConflictError("quota_full")
            with session.begin_nested():
                rs.accept_and_book(session, desk, ref.id, slot_id=slot.id, now=answer_at)
        except ConflictError:
            rs.accept(session, desk, ref.id, now=answer_at, note="急诊直接收治")
            arrived = answer_at + timedelta(minutes=float(rng.uniform(20, 120)))
            if arrived < datetime.now(UTC):
                rs.arrive(session, desk, ref.id, now=arrived)
            continue
        stats["appointments"] += 1
        start = ss.as_utc(slot.start)
        if start > datetime.combine(today, time(0), tzinfo=UTC):
            continue  # booked in the future: stays scheduled
        if rng.random() < 0.04:
            ss.mark_no_show(session, desk, ref.appointment_id, now=start + timedelta(hours=1))
            continue
        arrival = start - timedelta(minutes=float(rng.uniform(0, 25)))
        rs.arrive(session, desk, ref.id, now=arrival)
        ss.mark_seen(session, desk, ref.appointment_id,
                     now=arrival + timedelta(minutes=float(rng.gamma(2.0, 9.0))))
        done = start + timedelta(days=float(rng.uniform(0.2, 8)))
        if done.date() >= today:
            continue
        rs.complete(session, desk, ref.id, now=done)
        if rng.random() < 0.55 and township_centres + ([clinic] if clinic else []):
            back = township_centres[0] if township_centres and rng.random() < 0.6 else (
                clinic or township_centres[0])
            kind = str(rng.choice(["chronic_disease", "rehabilitation"]))
            down = rs.down_refer(session, desk, ref.id, to_facility_code=back.code,
                                 plan=rs.FollowUpPlan(
                                     kind=kind, diagnosis=ref.reason,
                                     instructions="按时服药，定期复查" if kind == "chronic_disease"
                                     else "康复训练，每周评估",
                                     interval_days=int(rng.choice([14, 30])),
                                     visits=int(rng.integers(2, 6))),
                                 reason="病情稳定", now=done,
                                 criteria=list(rng.choice(down_codes, size=2, replace=False)))
            stats["down_referrals"] += 1
            ack = done + timedelta(hours=float(rng.uniform(1, 40)))
            if ack.date() < today:
                receiver = _actor(back, "village_doctor" if back.type_code == "village_clinic"
                                  else "facility_staff")
                rs.transition(session, receiver, down.id, "accept", now=ack)
                visit = ack
                for _ in range(int(rng.integers(1, 4))):
                    visit += timedelta(days=float(rng.uniform(10, 31)))
                    if visit.date() >= today:
                        break
                    rs.record_follow_up(session, receiver, down.id, kind="visit",
                                        note="血压/血糖平稳，继续原方案", now=visit)
                    stats["follow_ups"] += 1

    # ---------------------------------------------------------------- general appointments
    stats["appointments"] += _general_history(session, rng, hospitals + centres, people,
                                              hospital_actor, today=today,
                                              n=GENERAL_PER_UP * stats["up_referrals"])
    for username, role, facility, full_name in (
            ("hospital_desk", "facility_staff", hospitals[0], "县医院转诊办"),
            ("centre_doctor", "facility_staff", centres[0] if centres else hospitals[0],
             "卫生院全科医生")):
        if session.scalar(select(User).where(User.username == username)) is None:
            create_user(session, username=username, password=DEMO_PASSWORD, role=role,
                        facility_code=facility.code, full_name=full_name)
    if clinics and session.scalar(select(User).where(User.username == "village_doctor")) is None:
        busiest = max(clinics.values(), key=lambda c: c.division.population or 0)
        create_user(session, username="village_doctor", password=DEMO_PASSWORD,
                    role="village_doctor", facility_code=busiest.code, full_name="乡村医生")
    session.commit()
    stats.update(schedules=n_schedules, slots=n_slots, residents=len(rows),
                 open_referrals=session.scalar(select(func.count()).select_from(Referral).where(
                     Referral.status == "requested")) or 0)
    return stats


def _general_history(session: Session, rng: np.random.Generator, facilities: list[Facility],
                     people: list[Resident], actors: dict[int, Actor], *, today: date,
                     n: int) -> int:
    """General-pool bookings made 0–6 days ahead, then checked in / seen / no-show."""
    now_real = datetime.combine(today, time(0), tzinfo=UTC)
    ids = [f.id for f in facilities]
    weights = np.array([5.0 if f.level != "primary" else 1.0 for f in facilities])
    made = 0
    for _ in range(n):
        f_id = ids[int(rng.choice(len(ids), p=weights / weights.sum()))]
        actor = actors.get(f_id) or Actor(None, "demo-desk", "facility_staff", "", f_id)
        offset_days = float(rng.uniform(-110, 10))
        target = now_real + timedelta(days=offset_days)
        slot = session.scalar(select(Slot).where(
            Slot.facility_id == f_id, Slot.start > target, Slot.booked < Slot.capacity)
            .order_by(Slot.start).limit(1))
        if slot is None:
            continue
        start = ss.as_utc(slot.start)
        booked_at = max(ss.as_utc(slot.opens_at), start - timedelta(
            days=float(rng.uniform(0.1, 6)))) + timedelta(minutes=1)
        if booked_at >= start:
            continue
        person = people[int(rng.integers(len(people)))]
        try:
            with session.begin_nested():
                a, _ = ss.book(session, actor, slot_id=slot.id, resident_id=person.id,
                               now=booked_at)
        except ConflictError:
            continue
        made += 1
        if start >= now_real:
            continue
        u = rng.random()
        if u < 0.05:
            ss.mark_no_show(session, actor, a.id, now=start + timedelta(hours=1))
        elif u < 0.09:
            ss.cancel_appointment(session, actor, a.id, reason="行程变更",
                                  now=start - timedelta(hours=float(rng.uniform(3, 48))))
        else:
            arrival = start - timedelta(minutes=float(rng.uniform(-5, 30)))
            ss.check_in(session, actor, a.id, now=arrival)
            ss.mark_seen(session, actor, a.id,
                         now=max(arrival, start) + timedelta(minutes=float(rng.gamma(2, 8))))
    return made

