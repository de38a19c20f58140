"""Forecast of one child's vaccinations: the next dose of every series, from when, its status.

Rules (the data are in :mod:`tiercare.immunization.schedule`)
-------------------------------------------------------------
*Judging the history.* Doses are taken in date order (same-day doses in their order in the
history). For each series, a dose counts as the next dose number of the child's regimen when it
was given

1. with a product accepted for that dose (``wrong_product`` otherwise),
2. on or after the dose's minimum age (``min_age``),
3. at least the minimum interval after the previous *valid* dose of the series (``min_interval``),
4. at least the stated time after the referenced dose of another series, when that dose was given
   on or before it (``after_other_series``; e.g. bOPV 1 ≥ 28 days after the last IPV), and
5. not 1–27 days after another injectable live vaccine (``live_spacing``; any administered live
   dose counts, valid or not, since the interference is biological),

judged by the schedule version in force on the day it was given (:func:`~tiercare.immunization.
schedule.judging_rule`). A dose failing a rule is reported in ``invalid_doses`` with the first
failed rule and does not count; doses beyond the regimen are ``extra_dose``; doses of the
alternative not chosen are ``alternative_not_chosen``; doses of a product that counts for no series
of the version are ``not_in_schedule``. A series is never restarted (catch-up continues from the
valid doses).

*Alternatives* (JE-L/JE-I, HepA-L/HepA-I): the product given first decides the series; the other
one is ``not_applicable``. Before any dose of the group the *preferred* series (JE-L, HepA-L) is
forecast and the alternative is ``not_applicable``, so that a child appears once on a due list.

*The next dose* ``k`` of a series has ``earliest`` = the latest of: birth + minimum age of dose
``k``; previous valid dose + its minimum interval; referenced dose of another series + the stated
interval; and, for an injectable live vaccine, the last injectable live dose + 28 days (the forecast
assumes the day's doses are already recorded, so a live vaccine is not proposed for the same day).
``overdue_after`` = birth + "complete before" age − 1 day (the last timely day), or ``None``.

*Status*, in this order: ``not_applicable`` (the series' condition does not hold for the child, or
its alternative was chosen); ``complete``; ``not_applicable`` (age ≥ the series' ``max_age``, e.g.
BCG from 4 years, programme catch-up until 18 years; an ``on_demand`` series not started, e.g.
rabies post-exposure; a positive tuberculin test for BCG); ``needs_test`` (age ≥
``tb_test_from_age`` and no negative tuberculin test; with one, ``earliest`` is not before the
test); ``upcoming`` (``earliest`` after the as-of date); ``overdue`` (as-of date after
``overdue_after``); else ``due``.

*Self-paid series* (``programme: false``) are left out unless ``include_self_paid`` is set; they
have no timeliness rule, so they are never overdue.

*Child attributes*: a missing ``mother_hbsag`` is taken as ``unknown`` (the special HepB regimen
covers unknown status); a missing birth weight or sex satisfies no condition.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiercare.errors import InputError, Problem
from tiercare.immunization.schedule import (
    CATEGORICAL_FIELDS,
    LIVE_SPACING_DAYS,
    AfterRule,
    Regimen,
    ScheduleBook,
    ScheduleVersion,
    Series,
    default_schedules,
    judging_rule,
)

STATUSES: tuple[str, ...] = ("complete", "upcoming", "due", "overdue", "needs_test",
                             "not_applicable")
"""Forecast statuses; their index is the status code of the batch engine."""

INVALID_REASONS: tuple[str, ...] = ("not_in_schedule", "alternative_not_chosen", "extra_dose",
                                    "wrong_product", "min_age", "min_interval",
                                    "after_other_series", "live_spacing")
"""Why a dose does not count; their index is the reason code of the batch engine."""

TB_RESULTS: tuple[str, ...] = ("negative", "positive")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CHILD_KEYS = ("id", "birth_date", "sex", "history", "mother_hbsag", "birth_weight_g", "tb_test")
MAX_BIRTH_WEIGHT_G = 10_000
"""Birth weights at or above this are refused as implausible."""


@dataclass(frozen=True)
class HistoryDose:
    """A dose given: vaccine code and date."""

    vaccine: str
    date: dt.date


@dataclass(frozen=True)
class TbTest:
    """A tuberculin (PPD/TB) test: date and ``negative``/``positive`` result."""

    date: dt.date
    result: str


@dataclass(frozen=True)
class Child:
    """What the engine needs to know about a child.

    Attributes
    ----------
    birth_date:
        Date of birth.
    history:
        Doses given, in the order recorded.
    sex:
        ``F``, ``M`` or ``None``.
    mother_hbsag:
        Mother's HBsAg status ``positive``/``negative``/``unknown`` or ``None`` (taken as unknown).
    birth_weight_g:
        Birth weight in grams, or ``None``.
    tb_test:
        The latest tuberculin test, or ``None``.
    """

    birth_date: dt.date
    history: tuple[HistoryDose, ...] = ()
    sex: str | None = None
    mother_hbsag: str | None = None
    birth_weight_g: float | None = None
    tb_test: TbTest | None = None

    def attributes(self) -> dict[str, Any]:
        """The attributes schedule conditions test (missing HBsAg status → ``unknown``)."""
        return {"sex": self.sex, "mother_hbsag": self.mother_hbsag or "unknown",
                "birth_weight_g": self.birth_weight_g}


@dataclass(frozen=True)
class SeriesForecast:
    """The next dose of one series (``next_dose``/dates are ``None`` when complete or n/a)."""

    vaccine: str
    next_dose: int | None
    status: str
    earliest: dt.date | None
    overdue_after: dt.date | None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of the CLI and API."""
        return {"vaccine": self.vaccine, "next_dose": self.next_dose, "status": self.status,
                "earliest": _iso(self.earliest), "overdue_after": _iso(self.overdue_after)}


@dataclass(frozen=True)
class InvalidDose:
    """A dose of the history that does not count.

    ``index`` is its 0-based position in the history, ``dose`` the dose number it was judged as
    (``None`` when it belongs to no series of the child), ``reason`` one of
    :data:`INVALID_REASONS` and ``detail`` a sentence for people.
    """

    index: int
    vaccine: str
    date: dt.date
    dose: int | None
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of the CLI and API."""
        return {"index": self.index, "vaccine": self.vaccine, "date": self.date.isoformat(),
                "dose": self.dose, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Forecast:
    """The forecast of one child on one date."""

    as_of: dt.date
    schedule_version: str
    series: tuple[SeriesForecast, ...]
    invalid_doses: tuple[InvalidDose, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"as_of", "schedule_version", "series": [...], "invalid_doses": [...]}``."""
        return {"as_of": self.as_of.isoformat(), "schedule_version": self.schedule_version,
                "series": [s.to_json() for s in self.series],
                "invalid_doses": [d.to_json() for d in self.invalid_doses]}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def parse_date(raw: Any, field: str, problems: list[Problem], *,
               row: int | None = None) -> dt.date | None:
    """Parse an ISO ``YYYY-MM-DD`` date, recording a problem naming ``field`` if impossible."""
    if not isinstance(raw, str) or not _ISO_DATE.match(raw):
        problems.append(Problem(reason=f"{raw!r} is not a date YYYY-MM-DD", field=field,
                                row=row, code="invalid_date"))
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(Problem(reason=f"{raw!r} is not a real date", field=field, row=row,
                                code="invalid_date"))
        return None


def parse_child(data: Any, *, book: ScheduleBook | None = None) -> Child:
    """Validate a ``child.json`` object and build a :class:`Child`.

    Parameters
    ----------
    data:
        ``{"birth_date", "sex"?, "history": [{"vaccine", "date"}, ...], "mother_hbsag"?,
        "birth_weight_g"?, "tb_test"?: {"date", "result"}}``. Extra keys in history entries
        (lot, site, ...) are ignored; unknown top-level keys are refused (a misspelt optional
        field would silently change the regimen).
    book:
        Schedule versions whose vaccine codes are known (default: the shipped ones).

    Raises
    ------
    InputError
        With every problem: unknown keys or vaccine codes, impossible dates, doses or test before
        birth, bad sex/HBsAg/result values, implausible birth weight (field e.g.
        ``history[3].vaccine``).
    """
    book = book or default_schedules()
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise InputError.single("the child must be a JSON object", field="child")
    for key in data:
        if key not in _CHILD_KEYS:
            problems.append(Problem(reason=f"unknown field (known: {', '.join(_CHILD_KEYS)})",
                                    field=str(key), code="unknown_field"))
    birth = parse_date(data.get("birth_date"), "birth_date", problems)
    sex = data.get("sex")
    if sex is not None and sex not in CATEGORICAL_FIELDS["sex"]:
        problems.append(Problem(reason=f"{sex!r} is not F or M", field="sex"))
    hbsag = data.get("mother_hbsag")
    if hbsag is not None and hbsag not in CATEGORICAL_FIELDS["mother_hbsag"]:
        problems.append(Problem(reason=f"{hbsag!r} is not positive, negative or unknown",
                                field="mother_hbsag"))
    weight = data.get("birth_weight_g")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)
                               or not 0 < weight < MAX_BIRTH_WEIGHT_G):
        problems.append(Problem(reason=f"{weight!r} is not a birth weight in grams "
                                       f"(0 < g < {MAX_BIRTH_WEIGHT_G})", field="birth_weight_g"))
        weight = None
    tb_test = None
    raw_test = data.get("tb_test")
    if raw_test is not None:
        if not isinstance(raw_test, Mapping):
            problems.append(Problem(reason="must be an object {date, result}", field="tb_test"))
        else:
            test_date = parse_date(raw_test.get("date"), "tb_test.date", problems)
            result = raw_test.get("result")
            if result not in TB_RESULTS:
                problems.append(Problem(reason=f"{result!r} is not negative or positive",
                                        field="tb_test.result"))
            if birth is not None and test_date is not None and test_date < birth:
                problems.append(Problem(reason="test before birth", field="tb_test.date",
                                        code="before_birth"))
            if test_date is not None and result in TB_RESULTS:
                tb_test = TbTest(date=test_date, result=result)
    history: list[HistoryDose] = []
    raw_history = data.get("history", [])
    if not isinstance(raw_history, list):
        problems.append(Problem(reason="must be a list of {vaccine, date}", field="history"))
        raw_history = []
    for i, entry in enumerate(raw_history):
        where = f"history[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(Problem(reason="must be an object {vaccine, date}", field=where,
                                    row=i + 1))
            continue
        vaccine = entry.get("vaccine")
        if vaccine not in book.vaccines:
            problems.append(Problem(
                reason=f"unknown vaccine {vaccine!r} (known: {', '.join(book.vaccine_codes)})",
                field=f"{where}.vaccine", row=i + 1, code="unknown_vaccine"))
        given = parse_date(entry.get("date"), f"{where}.date", problems, row=i + 1)
        if given is not None and birth is not None and given < birth:
            problems.append(Problem(reason=f"dose given {given} before birth {birth}",
                                    field=f"{where}.date", row=i + 1, code="before_birth"))
        if vaccine in book.vaccines and given is not None:
            history.append(HistoryDose(vaccine=vaccine, date=given))
    if problems or birth is None:
        raise InputError(problems)
    return Child(birth_date=birth, history=tuple(history), sex=sex, mother_hbsag=hbsag,
                 birth_weight_g=float(weight) if weight is not None else None, tb_test=tb_test)


def check_as_of(child: Child, as_of: dt.date) -> None:
    """Refuse a child whose birth, doses or test come after the as-of date.

    Raises
    ------
    InputError
        Naming ``birth_date``, ``history[i].date`` or ``tb_test.date``.
    """
    problems: list[Problem] = []
    if child.birth_date > as_of:
        problems.append(Problem(reason=f"born after the as-of date {as_of}", field="birth_date",
                                code="after_as_of"))
    for i, dose in enumerate(child.history):
        if dose.date > as_of:
            problems.append(Problem(reason=f"dose given after the as-of date {as_of}",
                                    field=f"history[{i}].date", row=i + 1, code="after_as_of"))
    if child.tb_test is not None and child.tb_test.date > as_of:
        problems.append(Problem(reason=f"test after the as-of date {as_of}",
                                field="tb_test.date", code="after_as_of"))
    if problems:
        raise InputError(problems)


def choose_version(book: ScheduleBook, *, as_of: dt.date,
                   version: str | None = None) -> ScheduleVersion:
    """The version named ``version``, or else the one in force on ``as_of``."""
    return book.get(version) if version is not None else book.in_force(as_of)


def forecast(child: Child, *, as_of: dt.date, book: ScheduleBook | None = None,
             version: str | None = None, include_self_paid: bool = False) -> Forecast:
    """Forecast every series of the schedule for one child on ``as_of``.

    Parameters
    ----------
    child:
        The child (see :func:`parse_child`).
    as_of:
        Reference date; the schedule version in force on it is used unless ``version`` is given.
    book:
        Schedule versions (default: the shipped ones).
    version:
        Force a version id instead of the one in force on ``as_of``.
    include_self_paid:
        Also forecast the self-paid (non-programme) series.

    Returns
    -------
    Forecast
        One :class:`SeriesForecast` per series (schedule order) and the invalid doses.

    Raises
    ------
    InputError
        When the birth, a dose or the test is after ``as_of`` or ``version`` is unknown.

    Examples
    --------
    >>> kid = Child(birth_date=dt.date(2025, 3, 1),
    ...             history=(HistoryDose("HepB", dt.date(2025, 3, 1)),))
    >>> hepb = forecast(kid, as_of=dt.date(2025, 4, 10)).series[0]
    >>> (hepb.vaccine, hepb.next_dose, hepb.status, hepb.earliest)
    ('HepB', 2, 'due', datetime.date(2025, 4, 1))
    """
    book = book or default_schedules()
    check_as_of(child, as_of)
    current = choose_version(book, as_of=as_of, version=version)
    attributes = child.attributes()
    birth = child.birth_date
    order = sorted(range(len(child.history)), key=lambda i: (child.history[i].date, i))
    invalid: dict[int, InvalidDose] = {}

    def reject(i: int, dose: int | None, reason: str, detail: str) -> None:
        given = child.history[i]
        invalid[i] = InvalidDose(index=i, vaccine=given.vaccine, date=given.date, dose=dose,
                                 reason=reason, detail=detail)

    # Injectable live vaccines: 28 days apart unless given on the same day.
    spacing_bad: set[int] = set()
    last_live: dt.date | None = None
    previous_day: dt.date | None = None
    for i in order:
        given = child.history[i]
        if not book.vaccines[given.vaccine].live_injectable:
            continue
        if last_live is not None and given.date > last_live:
            previous_day = last_live
        if previous_day is not None and (given.date - previous_day).days < LIVE_SPACING_DAYS:
            spacing_bad.add(i)
        last_live = given.date

    # Alternatives: the product given first decides; before any dose, the preferred series.
    chosen: dict[str, str] = {}
    first_given: dict[str, tuple[dt.date, int]] = {}
    for position, series in enumerate(current.series):
        if series.alternatives is None:
            continue
        if series.preferred:
            chosen.setdefault(series.alternatives, series.id)
        dates = [d.date for d in child.history if current.product_series.get(d.vaccine)
                 == series.id]
        if dates:
            key = (min(dates), position)
            best = first_given.get(series.alternatives)
            if best is None or key < best:
                first_given[series.alternatives] = key
                chosen[series.alternatives] = series.id

    for i in order:
        if child.history[i].vaccine not in current.product_series:
            reject(i, None, "not_in_schedule",
                   f"{child.history[i].vaccine} counts for no series of {current.id}")

    valid: dict[str, list[dt.date]] = {}
    results: list[SeriesForecast] = []
    for series in current.series:
        rows = [i for i in order if current.product_series.get(child.history[i].vaccine)
                == series.id]
        applicable = series.alternatives is None or chosen[series.alternatives] == series.id
        regimen = series.regimen_for(attributes)
        dates: list[dt.date] = []
        valid[series.id] = dates
        for i in rows:
            given = child.history[i]
            number = len(dates) + 1
            if not applicable:
                reject(i, None, "alternative_not_chosen",
                       f"{chosen[series.alternatives or '']} was given first")
                continue
            if number > len(regimen.doses):
                reject(i, number, "extra_dose", f"{series.id} series already complete")
                continue
            rule = judging_rule(book, current, series.id, regimen.id, number, given.date)
            floor_age = rule.min_age.after(birth)
            if given.vaccine not in rule.products:
                reject(i, number, "wrong_product",
                       f"dose {number} of {series.id} must be one of {list(rule.products)}")
            elif given.date < floor_age:
                reject(i, number, "min_age", f"before the minimum age {rule.min_age} "
                                             f"({floor_age})")
            elif (dates and rule.min_interval is not None
                  and given.date < rule.min_interval.after(dates[-1])):
                reject(i, number, "min_interval",
                       f"less than {rule.min_interval} after dose {number - 1} ({dates[-1]})")
            elif (blocking := _blocking_after(rule.after, valid, given.date)) is not None:
                reject(i, number, "after_other_series", blocking)
            elif i in spacing_bad:
                reject(i, number, "live_spacing",
                       f"less than {LIVE_SPACING_DAYS} days after another injectable live "
                       "vaccine not given the same day")
            else:
                dates.append(given.date)
        if not include_self_paid and not series.programme:
            continue
        results.append(_series_status(child, series, regimen, dates, valid, applicable,
                                      attributes, as_of, last_live, book))
    return Forecast(as_of=as_of, schedule_version=current.id, series=tuple(results),
                    invalid_doses=tuple(invalid[i] for i in sorted(invalid)))


def _blocking_after(rules: tuple[AfterRule, ...], valid: Mapping[str, list[dt.date]],
                    on: dt.date) -> str | None:
    """The reason a dose given ``on`` breaks an ``after`` rule, or ``None``."""
    for rule in rules:
        ref = _reference_date(rule, valid, on)
        if ref is not None and on < rule.interval.after(ref):
            return f"less than {rule.interval} after {rule.series} ({ref})"
    return None


def _reference_date(rule: AfterRule, valid: Mapping[str, list[dt.date]],
                    on: dt.date) -> dt.date | None:
    """The referenced valid dose of another series given on or before ``on``, if any."""
    dates = valid.get(rule.series, [])
    if rule.dose is not None:
        return dates[rule.dose - 1] if len(dates) >= rule.dose and dates[rule.dose - 1] <= on \
            else None
    before = [d for d in dates if d <= on]
    return max(before) if before else None


def _series_status(child: Child, series: Series, regimen: Regimen, dates: list[dt.date],
                   valid: Mapping[str, list[dt.date]], applicable: bool,
                   attributes: Mapping[str, Any], as_of: dt.date, last_live: dt.date | None,
                   book: ScheduleBook) -> SeriesForecast:
    """Status, next dose and dates of one series (see the module docstring)."""
    birth = child.birth_date

    def closed(status: str) -> SeriesForecast:
        return SeriesForecast(series.id, None, status, None, None)

    if not applicable or (series.when is not None and not series.when.holds(attributes)):
        return closed("not_applicable")
    if len(dates) >= len(regimen.doses):
        return closed("complete")
    if series.max_age is not None and as_of >= series.max_age.after(birth):
        return closed("not_applicable")
    if series.on_demand and not dates:
        return closed("not_applicable")
    number = len(dates) + 1
    rule = regimen.doses[number - 1]
    earliest = rule.min_age.after(birth)
    if dates and rule.min_interval is not None:
        earliest = max(earliest, rule.min_interval.after(dates[-1]))
    for after in rule.after:
        ref = _reference_date(after, valid, as_of)
        if ref is not None:
            earliest = max(earliest, after.interval.after(ref))
    if book.vaccines[rule.products[0]].live_injectable and last_live is not None:
        earliest = max(earliest, last_live + dt.timedelta(days=LIVE_SPACING_DAYS))
    overdue_after = (rule.complete_before.after(birth) - dt.timedelta(days=1)
                     if rule.complete_before is not None else None)
    if series.tb_test_from_age is not None and as_of >= series.tb_test_from_age.after(birth):
        test = child.tb_test
        if test is None:
            return SeriesForecast(series.id, number, "needs_test", earliest, overdue_after)
        if test.result == "positive":
            return closed("not_applicable")
        earliest = max(earliest, test.date)
    if earliest > as_of:
        status = "upcoming"
    elif overdue_after is not None and as_of > overdue_after:
        status = "overdue"
    else:
        status = "due"
    return SeriesForecast(series.id, number, status, earliest, overdue_after)
