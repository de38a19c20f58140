"""Reporting periods: day, ISO week, month, quarter and year, written as DHIS2 does.

========  ==============  =====================================
type      example         covers
========  ==============  =====================================
day       ``2026-10-05``  one calendar day
week      ``2026W43``     ISO 8601 week (Monday to Sunday)
month     ``2026-10``     one calendar month
quarter   ``2026Q4``      three months
year      ``2026``        one calendar year
========  ==============  =====================================

A value reported for period *p* counts toward period *q* when *p* lies entirely inside *q*
(``q.start <= p.start`` and ``p.end <= q.end``); so days roll up into every longer period,
months into quarters and years, but a week that straddles two months belongs to neither month.

Examples
--------
>>> p = parse_period("2026W43")
>>> p.type, p.start.isoformat(), p.end.isoformat()
('week', '2026-10-19', '2026-10-25')
>>> [q.text for q in parse_period("2026Q4").split("month")]
['2026-10', '2026-11', '2026-12']
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tiercare.errors import InputError

PERIOD_TYPES: tuple[str, ...] = ("day", "week", "month", "quarter", "year")

_PATTERNS = (
    ("day", re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")),
    ("week", re.compile(r"^(\d{4})-?W(\d{1,2})$")),
    ("month", re.compile(r"^(\d{4})-?(\d{2})$")),
    ("quarter", re.compile(r"^(\d{4})-?Q([1-4])$")),
    ("year", re.compile(r"^(\d{4})$")),
)


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: canonical text, type and first/last day (inclusive).

    Attributes
    ----------
    start, end:
        First and last calendar day of the period (inclusive).
    type:
        One of :data:`PERIOD_TYPES`.
    text:
        Canonical spelling (``2026-10``, ``2026W43``…).
    """

    start: date
    end: date
    type: str
    text: str

    @property
    def days(self) -> int:
        """Number of calendar days in the period."""
        return (self.end - self.start).days + 1

    def contains(self, other: Period) -> bool:
        """True when ``other`` lies entirely inside this period."""
        return self.start <= other.start and other.end <= self.end

    def split(self, period_type: str) -> list[Period]:
        """The periods of ``period_type`` lying entirely inside this one, in order.

        Raises
        ------
        InputError
            On an unknown period type.
        """
        if period_type not in PERIOD_TYPES:
            raise InputError.single(f"unknown period type '{period_type}'", field="period_type")
        out: list[Period] = []
        day = self.start
        while day <= self.end:
            candidate = period_of(day, period_type)
            if self.contains(candidate):
                out.append(candidate)
                day = candidate.end + timedelta(days=1)
            else:
                day = max(candidate.end, day) + timedelta(days=1)
        return out

    def fits(self) -> tuple[int | None, int | None, int | None]:
        """``(year, quarter, month)`` containing the period, each ``None`` where it spans two."""
        year = self.start.year if self.start.year == self.end.year else None
        quarter = ((self.start.month - 1) // 3 + 1) if year is not None else None
        if quarter is not None and (self.end.month - 1) // 3 + 1 != quarter:
            quarter = None
        month = self.start.month if year is not None and self.start.month == self.end.month \
            else None
        return year, quarter, month


def _month(year: int, month: int) -> Period:
    last = calendar.monthrange(year, month)[1]
    return Period(date(year, month, 1), date(year, month, last), "month", f"{year:04d}-{month:02d}")


def period_of(day: date, period_type: str) -> Period:
    """The period of ``period_type`` containing ``day``.

    Examples
    --------
    >>> period_of(date(2026, 12, 31), "week").text
    '2026W53'
    """
    if period_type == "day":
        return Period(day, day, "day", day.isoformat())
    if period_type == "week":
        iso_year, week, weekday = day.isocalendar()
        monday = day - timedelta(days=weekday - 1)
        return Period(monday, monday + timedelta(days=6), "week", f"{iso_year:04d}W{week:02d}")
    if period_type == "month":
        return _month(day.year, day.month)
    if period_type == "quarter":
        q = (day.month - 1) // 3 + 1
        first, last = _month(day.year, 3 * q - 2), _month(day.year, 3 * q)
        return Period(first.start, last.end, "quarter", f"{day.year:04d}Q{q}")
    if period_type == "year":
        return Period(date(day.year, 1, 1), date(day.year, 12, 31), "year", f"{day.year:04d}")
    raise InputError.single(f"unknown period type '{period_type}'", field="period_type")


def parse_period(text: str, *, field: str = "period") -> Period:
    """Parse a period string (``2026-10-05``, ``2026W43``, ``2026-10``, ``2026Q4``, ``2026``).

    Raises
    ------
    InputError
        When the text matches no pattern or names an impossible date, week or month.
    """
    raw = str(text).strip().upper()
    for kind, pattern in _PATTERNS:
        match = pattern.match(raw)
        if match is None:
            continue
        numbers = [int(g) for g in match.groups()]
        try:
            if kind == "day":
                return period_of(date(*numbers), "day")
            if kind == "week":
                year, week = numbers
                monday = date.fromisocalendar(year, week, 1)
                return period_of(monday, "week")
            if kind == "month":
                return _month(numbers[0], numbers[1])
            if kind == "quarter":
                return period_of(date(numbers[0], 3 * numbers[1] - 2, 1), "quarter")
            return period_of(date(numbers[0], 1, 1), "year")
        except ValueError as exc:
            raise InputError.single(f"impossible period '{text}': {exc}", field=field) from exc
    raise InputError.single(
        f"unreadable period '{text}' (use 2026-10-05, 2026W43, 2026-10, 2026Q4 or 2026)",
        field=field)


def local_today(zone: str | None = None) -> date:
    """Today's calendar date in ``zone`` (default: the settings' display time zone, e.g.
    Asia/Shanghai), the date that reports, deadlines and "future day" checks refer to."""
    if zone is None:
        from tiercare.config import get_settings

        zone = get_settings().timezone
    return datetime.now(ZoneInfo(zone)).date()


def dhis2_period(period: Period) -> str:
    """The DHIS2 spelling of a period (``20261005``, ``2026W43``, ``202610``, ``2026Q4``).

    Examples
    --------
    >>> dhis2_period(parse_period("2026-10"))
    '202610'
    """
    return period.text.replace("-", "")


def period_range(first: str, last: str, period_type: str) -> list[Period]:
    """Every period of ``period_type`` from the one containing ``first`` to ``last``'s."""
    start = period_of(parse_period(first, field="from").start, period_type).start
    end = period_of(parse_period(last, field="to").end, period_type).end
    if end < start:
        raise InputError.single("the last period ends before the first starts", field="to")
    return Period(start, end, "range", f"{first}..{last}").split(period_type)
