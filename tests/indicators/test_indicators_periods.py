from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.indicators.periods import (
    PERIOD_TYPES,
    dhis2_period,
    parse_period,
    period_of,
    period_range,
)


@pytest.mark.parametrize("text, kind, start, end, canonical", [
    ("2026-10-05", "day", date(2026, 10, 5), date(2026, 10, 5), "2026-10-05"),
    ("20261005", "day", date(2026, 10, 5), date(2026, 10, 5), "2026-10-05"),
    ("2026W43", "week", date(2026, 10, 19), date(2026, 10, 25), "2026W43"),
    ("2026-W1", "week", date(2025, 12, 29), date(2026, 1, 4), "2026W01"),
    ("2026-10", "month", date(2026, 10, 1), date(2026, 10, 31), "2026-10"),
    ("202602", "month", date(2026, 2, 1), date(2026, 2, 28), "2026-02"),
    ("2026Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31), "2026Q4"),
    ("2026q1", "quarter", date(2026, 1, 1), date(2026, 3, 31), "2026Q1"),
    ("2026", "year", date(2026, 1, 1), date(2026, 12, 31), "2026"),
])
def test_parse(text, kind, start, end, canonical):
    p = parse_period(text)
    assert (p.type, p.start, p.end, p.text) == (kind, start, end, canonical)


@pytest.mark.parametrize("text", ["2026-13", "2026W54", "2025W53", "2026Q5", "2026-02-30",
                                  "26-10", "October", ""])
def test_bad_periods(text):
    with pytest.raises(InputError) as info:
        parse_period(text)
    assert info.value.problems[0].field == "period"


def test_roll_ups():
    year = parse_period("2026")
    assert [q.text for q in year.split("quarter")] == ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]
    assert len(year.split("month")) == 12 and len(year.split("day")) == 365
    # weeks entirely inside 2026 (W01 starts on 29 Dec 2025, W53 ends on 3 Jan 2027)
    assert [w.text for w in year.split("week")][:2] == ["2026W02", "2026W03"]
    assert sum(m.days for m in parse_period("2026Q1").split("month")) == 90
    # a week straddling two months belongs to neither month
    week = parse_period("2026W05")
    assert not parse_period("2026-01").contains(week) and parse_period("2026Q1").contains(week)
    assert [p.text for p in period_range("2026-11-15", "2027-01-02", "month")] == [
        "2026-11", "2026-12", "2027-01"]
    assert dhis2_period(parse_period("2026-10")) == "202610"


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       st.sampled_from(PERIOD_TYPES))
def test_period_of_contains_the_day_and_round_trips(day, kind):
    p = period_of(day, kind)
    assert p.start <= day <= p.end
    assert parse_period(p.text) == p
    assert parse_period(dhis2_period(p)) == p
    if kind == "week":  # brute force against the standard library's ISO calendar
        iso = day.isocalendar()
        assert p.text == f"{iso[0]:04d}W{iso[1]:02d}" and p.start.weekday() == 0 and p.days == 7
    # the next period starts the day after
    assert period_of(p.end + timedelta(days=1), kind).start == p.end + timedelta(days=1)
