"""Holidays, make-up working days, exceptions and the booking policy data (no database)."""

from datetime import date, time, timedelta

import pytest

from tiercare.errors import InputError
from tiercare.scheduling.models import Schedule, ScheduleException
from tiercare.scheduling.rules import china_calendar, parse_calendar, parse_policies, policy_on
from tiercare.scheduling.service import day_plan

WEEKLY = [{"weekday": d, "start": "08:00", "end": "11:30"} for d in range(5)] + [
    {"weekday": 0, "start": "14:30", "end": "17:00"}]


def _schedule(follows: bool = True) -> Schedule:
    return Schedule(weekly=WEEKLY, effective_from=date(2025, 1, 1), effective_to=None,
                    follows_holidays=follows)


def test_spring_festival_2026():
    cal = china_calendar()
    s = _schedule()
    plans = {d: day_plan(s, d, [], calendar=cal, makeup_weekday=0)
             for d in (date(2026, 2, 9) + timedelta(days=i) for i in range(21))}
    for d, plan in plans.items():
        if date(2026, 2, 15) <= d <= date(2026, 2, 23):
            assert plan.sessions == () and "holiday" in plan.note, d
        elif d in (date(2026, 2, 14), date(2026, 2, 28)):  # Saturdays worked (调休)
            assert len(plan.sessions) == 2 and "make-up" in plan.note
        elif d.weekday() >= 5:
            assert plan.sessions == ()
        else:
            assert len(plan.sessions) == (2 if d.weekday() == 0 else 1)
    # the same days without holiday rules follow the weekly plan
    assert day_plan(_schedule(False), date(2026, 2, 16), [], calendar=cal,
                    makeup_weekday=0).sessions[0] == (time(8), time(11, 30))


def test_known_days_2025_2026():
    cal = china_calendar()
    holidays = {date(2025, 10, 8), date(2025, 5, 5), date(2026, 1, 2), date(2026, 10, 7),
                date(2026, 6, 19), date(2026, 9, 25)}
    workdays = {date(2025, 1, 26), date(2025, 9, 28), date(2026, 1, 4), date(2026, 5, 9),
                date(2026, 9, 20), date(2026, 10, 10)}
    assert all(not cal.is_working_day(d) for d in holidays)
    assert all(cal.is_working_day(d) and d.weekday() >= 5 for d in workdays)
    assert cal.is_working_day(date(2026, 3, 3)) and not cal.is_working_day(date(2026, 3, 7))


def test_exceptions_win():
    cal = china_calendar()
    day = date(2026, 3, 2)  # Monday
    closed = ScheduleException(on_date=day, kind="closed", reason="培训")
    hours = ScheduleException(on_date=day + timedelta(days=1), kind="hours", start="09:00",
                              end="10:00")
    assert day_plan(_schedule(), day, [closed], calendar=cal, makeup_weekday=0).sessions == ()
    assert day_plan(_schedule(), day + timedelta(days=1), [hours], calendar=cal,
                    makeup_weekday=0).sessions == ((time(9), time(10)),)


def test_bad_data_reports_every_row():
    with pytest.raises(InputError) as err:
        parse_calendar([{"date": "2026-13-01", "kind": "holiday"},
                        {"date": "2026-01-01", "kind": "party"},
                        {"date": "2026-01-02", "kind": "holiday"},
                        {"date": "2026-01-02", "kind": "workday"}])
    assert [(p.row, p.code) for p in err.value.problems] == [
        (1, "bad_date"), (2, "bad_kind"), (4, "duplicate")]
    with pytest.raises(InputError) as err:
        parse_policies([{"version": "x", "effective_from": "2025-01-01", "release_time": "8h",
                         "referral_share": 1.5, "referral_share_expert": 0.5,
                         "release_days": -1, "referral_release_days": 14,
                         "referral_return_hours": 24, "cancel_deadline_hours": 2,
                         "slot_minutes": 10, "makeup_day_weekday": 0}])
    assert {p.field for p in err.value.problems} == {"release_time", "referral_share",
                                                     "release_days"}
    policy = policy_on(date(2026, 1, 1))
    assert (policy.referral_share, policy.referral_share_expert, policy.release_days,
            policy.referral_release_days) == (0.3, 0.5, 7, 14)
