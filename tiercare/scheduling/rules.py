"""Versioned scheduling rules: public holidays / make-up working days and the booking policy.

Both are data files under ``tiercare/scheduling/data/`` (a health commission edits them, no
release needed); they are loaded once, validated (every problem reported) and looked up by date.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any

from tiercare.errors import InputError, Problem

DATA_DIR = Path(__file__).with_name("data")
HOLIDAY_KINDS = ("holiday", "workday")


@dataclass(frozen=True)
class DayRule:
    """A public holiday (no clinics) or a make-up working day (clinics as on a weekday)."""

    day: date
    kind: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Calendar:
    """Public holidays and make-up working days, by date."""

    days: dict[date, DayRule]

    def rule(self, day: date) -> DayRule | None:
        """The holiday / make-up rule of ``day`` (None for an ordinary day)."""
        return self.days.get(day)

    def is_working_day(self, day: date) -> bool:
        """Monday–Friday unless a public holiday; weekends only when a make-up working day."""
        rule = self.days.get(day)
        if rule is not None:
            return rule.kind == "workday"
        return day.weekday() < 5


def parse_calendar(rows: list[dict[str, str]]) -> Calendar:
    """Validate holiday rows (``date, kind, name_zh, name_en``); collects every problem."""
    problems: list[Problem] = []
    days: dict[date, DayRule] = {}
    for i, row in enumerate(rows, start=1):
        try:
            day = date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            problems.append(Problem(reason=f"'{row.get('date')}' is not a date", field="date",
                                    row=i, code="bad_date"))
            continue
        kind = (row.get("kind") or "").strip()
        if kind not in HOLIDAY_KINDS:
            problems.append(Problem(reason=f"kind must be one of {HOLIDAY_KINDS}", field="kind",
                                    row=i, code="bad_kind"))
            continue
        if day in days:
            problems.append(Problem(reason=f"{day} listed twice", field="date", row=i,
                                    code="duplicate"))
            continue
        days[day] = DayRule(day, kind, row.get("name_zh", ""), row.get("name_en", ""))
    if problems:
        raise InputError(problems)
    return Calendar(days)


@lru_cache(maxsize=1)
def china_calendar() -> Calendar:
    """The shipped calendar of Chinese public holidays and make-up days (2025–2026)."""
    with (DATA_DIR / "holidays_cn.csv").open(encoding="utf-8") as handle:
        return parse_calendar(list(csv.DictReader(handle)))


@dataclass(frozen=True)
class BookingPolicy:
    """Release windows, referral quotas and cancellation deadline in force from a date.

    Attributes
    ----------
    release_days, release_time:
        General places of a day's slots open ``release_days`` before that day at
        ``release_time`` (local time).
    referral_share, referral_share_expert:
        Share of places reserved for referrals from member primary units (expert clinics get
        the larger share).
    referral_release_days:
        Reserved places open this many days before the day (same time of day).
    referral_return_hours:
        Reserved places still free this many hours before the slot start return to the
        general pool.
    cancel_deadline_hours:
        A resident may cancel until this many hours before the slot start.
    makeup_day_weekday:
        A make-up working day runs the weekly sessions of this weekday (0 = Monday).
    """

    version: str
    effective_from: date
    timezone: str
    release_days: int
    release_time: time
    referral_share: float
    referral_share_expert: float
    referral_release_days: int
    referral_return_hours: int
    cancel_deadline_hours: int
    slot_minutes: int
    makeup_day_weekday: int


def _positive_int(data: dict[str, Any], key: str, problems: list[Problem], row: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or value < 0:
        problems.append(Problem(reason=f"{key} must be a non-negative integer", field=key,
                                row=row, code="bad_value"))
        return 0
    return value


def parse_policies(versions: list[dict[str, Any]]) -> list[BookingPolicy]:
    """Validate booking policy versions (sorted by effective date)."""
    problems: list[Problem] = []
    out: list[BookingPolicy] = []
    for i, v in enumerate(versions, start=1):
        n = len(problems)
        try:
            since = date.fromisoformat(str(v.get("effective_from")))
        except ValueError:
            problems.append(Problem(reason="effective_from is not a date", field="effective_from",
                                    row=i))
            since = date.min
        try:
            release_time = time.fromisoformat(str(v.get("release_time")))
        except ValueError:
            problems.append(Problem(reason="release_time must be HH:MM", field="release_time",
                                    row=i))
            release_time = time(0)
        shares = []
        for key in ("referral_share", "referral_share_expert"):
            share = v.get(key)
            if not isinstance(share, int | float) or not 0 <= share <= 1:
                problems.append(Problem(reason=f"{key} must be within 0..1", field=key, row=i))
                share = 0.0
            shares.append(float(share))
        ints = {k: _positive_int(v, k, problems, i) for k in (
            "release_days", "referral_release_days", "referral_return_hours",
            "cancel_deadline_hours", "slot_minutes", "makeup_day_weekday")}
        if ints["makeup_day_weekday"] > 6:
            problems.append(Problem(reason="makeup_day_weekday must be 0..6",
                                    field="makeup_day_weekday", row=i))
        if len(problems) == n:
            out.append(BookingPolicy(
                version=str(v.get("version", i)), effective_from=since,
                timezone=str(v.get("timezone", "Asia/Shanghai")), release_time=release_time,
                referral_share=shares[0], referral_share_expert=shares[1], **ints))
    if problems:
        raise InputError(problems)
    return sorted(out, key=lambda p: p.effective_from)


@lru_cache(maxsize=1)
def booking_policies() -> tuple[BookingPolicy, ...]:
    """Every shipped booking policy version."""
    data = json.loads((DATA_DIR / "booking_policy.json").read_text(encoding="utf-8"))
    return tuple(parse_policies(data["versions"]))


def policy_on(day: date) -> BookingPolicy:
    """The booking policy in force on ``day``."""
    valid = [p for p in booking_policies() if p.effective_from <= day]
    if not valid:
        raise InputError.single(f"no booking policy in force on {day}", field="date",
                                code="no_policy")
    return valid[-1]


def parse_hhmm(value: str, *, field: str) -> time:
    """A ``HH:MM`` local time, or :class:`InputError` naming the field."""
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError):
        raise InputError.single(f"'{value}' is not a time HH:MM", field=field) from None
    return parsed


def combine_local(day: date, at: time, zone: Any) -> datetime:
    """Local wall-clock ``day`` + ``at`` in ``zone`` (a ``ZoneInfo``) as an aware datetime."""
    return datetime.combine(day, at, tzinfo=zone)
