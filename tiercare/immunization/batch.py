"""Forecast for a whole population at once, vectorised with NumPy.

The rules are exactly those of :func:`tiercare.immunization.forecast.forecast` (read its module
docstring); only the computation differs. Dates are ``int32`` days since 1970-01-01
(:data:`NO_DATE` when absent), a population is a set of flat arrays (:class:`Population`), and the
result holds one row per child and one column per series (:class:`BatchForecast`), ready for due
and overdue work lists and coverage counts.

How it is vectorised
--------------------
The history rows are sorted once by (child, date, row). Live-vaccine spacing is a shifted
comparison over the sorted injectable live doses. Each series is then processed in schedule order
(series referenced by an ``after`` rule come first): its rows are numbered within their child
(0, 1, 2, …) and the engine walks these *columns* — a handful — judging all children's j-th dose
of the series at once against rule tables indexed by ``[regimen, version in force on the dose
date, dose number]``. Calendar-month arithmetic uses a month table (start day of every month over
the range concerned), so adding months to millions of dates is two table look-ups and a minimum.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tiercare.errors import InputError, Problem
from tiercare.immunization.forecast import INVALID_REASONS, STATUSES, TB_RESULTS, Child
from tiercare.immunization.schedule import (
    CATEGORICAL_FIELDS,
    LIVE_SPACING_DAYS,
    Condition,
    Duration,
    ScheduleBook,
    ScheduleVersion,
    Series,
    default_schedules,
    judging_rule,
)

NO_DATE = np.int32(np.iinfo(np.int32).min)
"""The missing-date sentinel of the day arrays."""

EPOCH = dt.date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH.toordinal()
_STATUS = {name: np.int8(i) for i, name in enumerate(STATUSES)}
_REASON = {name: np.int8(i) for i, name in enumerate(INVALID_REASONS)}


def to_days(day: dt.date) -> int:
    """Days since 1970-01-01 of a date."""
    return day.toordinal() - _EPOCH_ORDINAL


def from_days(days: int) -> dt.date | None:
    """The date of a day number (``None`` for :data:`NO_DATE`)."""
    return None if days == NO_DATE else dt.date.fromordinal(int(days) + _EPOCH_ORDINAL)


def category_code(field: str, value: str | None) -> int:
    """Integer code of a categorical attribute: 0 when missing, else 1 + index of the value."""
    return 0 if value is None else 1 + CATEGORICAL_FIELDS[field].index(value)


@dataclass(frozen=True)
class Population:
    """Children and their histories as flat arrays.

    Attributes
    ----------
    birth:
        ``int32`` days since 1970-01-01, one per child.
    sex, mother_hbsag:
        ``int8`` codes from :func:`category_code` (0 = missing; a missing HBsAg status is taken as
        ``unknown``).
    birth_weight_g:
        ``float32`` grams, NaN when missing.
    tb_test_date:
        ``int32`` days, :data:`NO_DATE` without a test.
    tb_test_result:
        ``int8``: 0 none, 1 negative, 2 positive.
    dose_child:
        ``int32`` index of the child of each history row.
    dose_vaccine:
        ``int16`` index into ``book.vaccine_codes`` (see :func:`encode_vaccines`).
    dose_date:
        ``int32`` days of each history row.
    """

    birth: NDArray[np.int32]
    sex: NDArray[np.int8]
    mother_hbsag: NDArray[np.int8]
    birth_weight_g: NDArray[np.float32]
    tb_test_date: NDArray[np.int32]
    tb_test_result: NDArray[np.int8]
    dose_child: NDArray[np.int32]
    dose_vaccine: NDArray[np.int16]
    dose_date: NDArray[np.int32]

    @property
    def size(self) -> int:
        """Number of children."""
        return int(self.birth.shape[0])

    @classmethod
    def from_children(cls, children: Sequence[Child], *,
                      book: ScheduleBook | None = None) -> Population:
        """Build the arrays from :class:`Child` objects (history rows child by child, in order)."""
        book = book or default_schedules()
        index = {code: i for i, code in enumerate(book.vaccine_codes)}
        rows = [(c, index[d.vaccine], to_days(d.date)) for c, child in enumerate(children)
                for d in child.history]
        dose = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return cls(
            birth=np.array([to_days(c.birth_date) for c in children], dtype=np.int32),
            sex=np.array([category_code("sex", c.sex) for c in children], dtype=np.int8),
            mother_hbsag=np.array([category_code("mother_hbsag", c.mother_hbsag)
                                   for c in children], dtype=np.int8),
            birth_weight_g=np.array([np.nan if c.birth_weight_g is None else c.birth_weight_g
                                     for c in children], dtype=np.float32),
            tb_test_date=np.array([NO_DATE if c.tb_test is None else to_days(c.tb_test.date)
                                   for c in children], dtype=np.int32),
            tb_test_result=np.array([0 if c.tb_test is None else
                                     1 + TB_RESULTS.index(c.tb_test.result) for c in children],
                                    dtype=np.int8),
            dose_child=dose[:, 0].astype(np.int32),
            dose_vaccine=dose[:, 1].astype(np.int16),
            dose_date=dose[:, 2].astype(np.int32),
        )


def encode_vaccines(codes: Sequence[str] | NDArray[np.object_], *,
                    book: ScheduleBook | None = None) -> NDArray[np.int16]:
    """Vaccine codes → ``int16`` indices into ``book.vaccine_codes``.

    Raises
    ------
    InputError
        Listing every row (1-based) with an unknown code.
    """
    book = book or default_schedules()
    known = pd.Index(book.vaccine_codes)
    found = known.get_indexer(pd.Index(np.asarray(codes, dtype=object)))
    bad = np.flatnonzero(found < 0)
    if bad.size:
        raise InputError([Problem(reason=f"unknown vaccine {codes[i]!r}", field="vaccine",
                                  row=int(i) + 1, code="unknown_vaccine") for i in bad])
    return found.astype(np.int16)


@dataclass(frozen=True)
class BatchForecast:
    """Forecast of a population: one row per child, one column per series.

    Attributes
    ----------
    as_of, schedule_version, series:
        Reference date, version id and series ids (columns).
    next_dose:
        ``int8`` next dose number, 0 when complete or not applicable.
    status:
        ``int8`` index into :data:`~tiercare.immunization.forecast.STATUSES`.
    earliest, overdue_after:
        ``int32`` days, :data:`NO_DATE` when absent.
    invalid_row:
        History rows (indices into the population's dose arrays) that do not count, ascending.
    invalid_dose:
        Dose number each was judged as (0: none).
    invalid_reason:
        ``int8`` index into :data:`~tiercare.immunization.forecast.INVALID_REASONS`.
    chosen:
        For each alternatives group (``"JE"``, ``"HepA"``), the series each child follows as an
        ``int16`` index into the version's ``series``: the product given first, else the
        preferred one.
    """

    as_of: dt.date
    schedule_version: str
    series: tuple[str, ...]
    next_dose: NDArray[np.int8]
    status: NDArray[np.int8]
    earliest: NDArray[np.int32]
    overdue_after: NDArray[np.int32]
    invalid_row: NDArray[np.int64]
    invalid_dose: NDArray[np.int8]
    invalid_reason: NDArray[np.int8]
    chosen: Mapping[str, NDArray[np.int16]] = dataclasses.field(default_factory=dict)

    def to_frame(self, *, statuses: Sequence[str] | None = None) -> pd.DataFrame:
        """Long table (child, vaccine, next_dose, status, earliest, overdue_after).

        Parameters
        ----------
        statuses:
            Keep only these statuses (e.g. ``["due", "overdue"]`` for a work list).
        """
        n_children, n_series = self.status.shape
        child = np.repeat(np.arange(n_children), n_series)
        column = np.tile(np.arange(n_series), n_children)
        status = self.status.ravel()
        keep = (np.isin(status, [STATUSES.index(s) for s in statuses]) if statuses is not None
                else np.ones(status.shape, dtype=bool))

        def dates(values: NDArray[np.int32]) -> pd.Series:
            flat = values.ravel()[keep].astype("int64")
            out = pd.Series(flat.astype("datetime64[D]")).astype("datetime64[s]")
            return out.where(flat != NO_DATE)

        return pd.DataFrame({
            "child": child[keep],
            "vaccine": pd.Categorical.from_codes(column[keep], categories=list(self.series)),
            "next_dose": self.next_dose.ravel()[keep],
            "status": pd.Categorical.from_codes(status[keep], categories=list(STATUSES)),
            "earliest": dates(self.earliest),
            "overdue_after": dates(self.overdue_after),
        })


class _Calendar:
    """Vectorised calendar-month arithmetic over a fixed span of months.

    A day is split into (month index, day of month − 1) with a day → month table; adding ``m``
    months is then ``month_start[i + m] + min(day0, month_length[i + m] − 1)``.
    """

    def __init__(self, first_day: int, last_day: int, max_months: int) -> None:
        start = np.datetime64(int(first_day), "D").astype("datetime64[M]")
        end = np.datetime64(int(last_day), "D").astype("datetime64[M]") + max_months + 2
        starts = np.arange(start, end + 1).astype("datetime64[D]").astype(np.int64)
        self.month_start = starts[:-1].astype(np.int32)
        self.month_length = np.diff(starts).astype(np.int32)
        self.first_day = int(starts[0])
        days = np.arange(self.first_day, int(last_day) + 1)
        self.month_of = (np.searchsorted(starts, days, side="right") - 1).astype(np.int32)

    def split(self, days: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(month index, day of month − 1) of days within the span."""
        month = self.month_of[days - self.first_day]
        return month, days - self.month_start[month]

    def add_split(self, month: NDArray[np.int64], day0: NDArray[np.int64],
                  months: NDArray[np.int64] | int,
                  extra_days: NDArray[np.int64] | int) -> NDArray[np.int64]:
        """Split date + ``months`` calendar months (day clamped) + ``extra_days``."""
        target = month + months
        return (self.month_start[target] + np.minimum(day0, self.month_length[target] - 1)
                + extra_days)

    def add(self, days: NDArray[np.int64], months: NDArray[np.int64] | int,
            extra_days: NDArray[np.int64] | int) -> NDArray[np.int64]:
        """``days`` + ``months`` calendar months (day clamped) + ``extra_days``."""
        return self.add_split(*self.split(days), months, extra_days)


@dataclass
class _Rules:
    """Rule tables of one series, flattened from ``[regimen, version, dose]`` (dose 0-based).

    ``flat(regimen, version, dose) = (regimen * n_versions + version) * n_dose + dose``;
    ``accepts`` has one more axis (vaccine code) and the ``after`` tables one more (rule slot).
    """

    n_versions: int
    n_dose: int
    n_codes: int
    slots: int
    same_products: bool                  # every dose accepts exactly the series' products
    n_doses: NDArray[np.int64]           # per regimen
    age_m: NDArray[np.int64]
    age_d: NDArray[np.int64]
    has_interval: NDArray[np.bool_]
    interval_m: NDArray[np.int64]
    interval_d: NDArray[np.int64]
    accepts: NDArray[np.bool_]
    has_after: NDArray[np.bool_]
    after_series: NDArray[np.int64]      # series index
    after_dose: NDArray[np.int64]        # 0-based dose, -1 = latest valid
    after_m: NDArray[np.int64]
    after_d: NDArray[np.int64]
    has_complete: NDArray[np.bool_]
    complete_m: NDArray[np.int64]
    complete_d: NDArray[np.int64]
    live_next: NDArray[np.bool_]         # first product of the dose is an injectable live vaccine

    def flat(self, regimen: NDArray[np.int64] | int, version: NDArray[np.int64] | int,
             dose: NDArray[np.int64]) -> NDArray[np.int64]:
        """Flat index of (regimen, version, dose)."""
        return (regimen * self.n_versions + version) * self.n_dose + dose


def _rule_tables(book: ScheduleBook, current: ScheduleVersion, series_index: int) -> _Rules:
    """Build the rule tables of a series with :func:`judging_rule` for every version."""
    series = current.series[series_index]
    position = {s.id: i for i, s in enumerate(current.series)}
    codes = {c: i for i, c in enumerate(book.vaccine_codes)}
    n_reg, n_ver = len(series.regimens), len(book.versions)
    n_dose = max(len(r.doses) for r in series.regimens)
    slots = max(1, max(len(d.after) for r in series.regimens for d in r.doses))
    size = n_reg * n_ver * n_dose

    def zeros(per: int = 1, dtype: type = np.int32) -> NDArray:  # type: ignore[type-arg]
        return np.zeros(size * per, dtype=dtype)

    same = all(set(judging_rule(book, current, series.id, r.id, k + 1, v.effective_from)
                   .products) == set(series.products)
               for r in series.regimens for v in book.versions for k in range(len(r.doses)))
    t = _Rules(
        n_versions=n_ver, n_dose=n_dose, n_codes=len(codes), slots=slots, same_products=same,
        n_doses=np.array([len(r.doses) for r in series.regimens], dtype=np.int32),
        age_m=zeros(), age_d=zeros(), has_interval=zeros(dtype=np.bool_), interval_m=zeros(),
        interval_d=zeros(), accepts=zeros(len(codes), np.bool_),
        has_after=zeros(slots, np.bool_), after_series=zeros(slots), after_dose=zeros(slots),
        after_m=zeros(slots), after_d=zeros(slots), has_complete=zeros(dtype=np.bool_),
        complete_m=zeros(), complete_d=zeros(), live_next=zeros(dtype=np.bool_),
    )
    for r, regimen in enumerate(series.regimens):
        for v, version in enumerate(book.versions):
            for k in range(len(regimen.doses)):
                rule = judging_rule(book, current, series.id, regimen.id, k + 1,
                                    version.effective_from)
                at = int(t.flat(r, v, np.int64(k)))
                t.age_m[at], t.age_d[at] = rule.min_age.months, rule.min_age.days
                if rule.min_interval is not None:
                    t.has_interval[at] = True
                    t.interval_m[at] = rule.min_interval.months
                    t.interval_d[at] = rule.min_interval.days
                if rule.complete_before is not None:
                    t.has_complete[at] = True
                    t.complete_m[at] = rule.complete_before.months
                    t.complete_d[at] = rule.complete_before.days
                t.live_next[at] = book.vaccines[rule.products[0]].live_injectable
                for product in rule.products:
                    t.accepts[at * len(codes) + codes[product]] = True
                for a, after in enumerate(rule.after):
                    slot = at * slots + a
                    t.has_after[slot] = True
                    t.after_series[slot] = position[after.series]
                    t.after_dose[slot] = -1 if after.dose is None else after.dose - 1
                    t.after_m[slot] = after.interval.months
                    t.after_d[slot] = after.interval.days
    return t


def _condition_mask(condition: Condition | None, pop: Population) -> NDArray[np.bool_]:
    """Children for whom a schedule condition holds (missing HBsAg status = unknown)."""
    mask = np.ones(pop.size, dtype=bool)
    if condition is None:
        return mask
    hbsag = np.where(pop.mother_hbsag == 0, category_code("mother_hbsag", "unknown"),
                     pop.mother_hbsag)
    for clause in condition.clauses:
        if clause.op == "in":
            values = pop.sex if clause.field == "sex" else hbsag
            values_in = clause.value if isinstance(clause.value, tuple) else ()
            allowed = [category_code(clause.field, v) for v in values_in]
            mask &= np.isin(values, allowed)
        else:
            weight = pop.birth_weight_g.astype(np.float64)
            limit = float(clause.value)  # type: ignore[arg-type]
            with np.errstate(invalid="ignore"):
                mask &= {"lt": weight < limit, "le": weight <= limit, "gt": weight > limit,
                         "ge": weight >= limit}[clause.op]
    return mask


def _validate(pop: Population, as_of: int, book: ScheduleBook) -> None:
    """Refuse inconsistent arrays and impossible dates, listing every offending row."""
    n = pop.size
    for name in ("sex", "mother_hbsag", "birth_weight_g", "tb_test_date", "tb_test_result"):
        if getattr(pop, name).shape != (n,):
            raise InputError.single(f"must have one value per child ({n})", field=name)
    if not pop.dose_child.shape == pop.dose_vaccine.shape == pop.dose_date.shape:
        raise InputError.single("dose arrays differ in length", field="dose_child")
    problems: list[Problem] = []

    def report(mask: NDArray[np.bool_], field: str, reason: str, code: str) -> None:
        problems.extend(Problem(reason=reason, field=field, row=int(i) + 1, code=code)
                        for i in np.flatnonzero(mask))

    report(pop.birth > as_of, "birth", "born after the as-of date", "after_as_of")
    bad_child = (pop.dose_child < 0) | (pop.dose_child >= n)
    report(bad_child, "dose_child", "no such child", "invalid")
    report((pop.dose_vaccine < 0) | (pop.dose_vaccine >= len(book.vaccine_codes)),
           "dose_vaccine", "unknown vaccine code", "unknown_vaccine")
    child = np.where(bad_child, 0, pop.dose_child)
    report(~bad_child & (pop.dose_date < pop.birth[child] if n else bad_child), "dose_date",
           "dose given before birth", "before_birth")
    report(pop.dose_date > as_of, "dose_date", "dose given after the as-of date", "after_as_of")
    tested = pop.tb_test_result > 0
    report(tested & ((pop.tb_test_date < pop.birth) | (pop.tb_test_date > as_of)),
           "tb_test_date", "test before birth or after the as-of date", "invalid_date")
    report((pop.tb_test_result < 0) | (pop.tb_test_result > len(TB_RESULTS)), "tb_test_result",
           "unknown test result code", "invalid")
    for field, values in CATEGORICAL_FIELDS.items():
        codes = getattr(pop, field)
        report((codes < 0) | (codes > len(values)), field, "unknown code", "invalid")
    if problems:
        raise InputError(problems)


def forecast_batch(pop: Population, *, as_of: dt.date, book: ScheduleBook | None = None,
                   version: str | None = None, include_self_paid: bool = False) -> BatchForecast:
    """Forecast every child of a population on one as-of date.

    Same rules and same answers as :func:`tiercare.immunization.forecast.forecast` applied to
    each child (the test suite checks that on random children).

    Parameters
    ----------
    pop:
        The children and their history rows.
    as_of:
        Reference date (the version in force on it is used unless ``version`` is given).
    book:
        Schedule versions (default: the shipped ones).
    version:
        Force a version id.
    include_self_paid:
        Also forecast the self-paid (non-programme) series.

    Raises
    ------
    InputError
        Listing every bad row: births, doses or tests after ``as_of``, doses before birth,
        unknown codes, inconsistent array lengths.
    """
    book = book or default_schedules()
    as_of_day = to_days(as_of)
    _validate(pop, as_of_day, book)
    current = book.get(version) if version is not None else book.in_force(as_of)
    n = pop.size
    first = int(min(pop.birth.min(initial=as_of_day), pop.dose_date.min(initial=as_of_day)))
    cal = _Calendar(first, as_of_day, _max_months(book))
    birth_split = cal.split(pop.birth.astype(np.int32))

    # History sorted by (child, date, row); rows from a database usually come sorted already.
    order: NDArray[np.int64] | None = None
    s_child, s_date, s_vac = pop.dose_child, pop.dose_date, pop.dose_vaccine
    if s_child.size > 1 and not np.all(
            (s_child[1:] > s_child[:-1])
            | ((s_child[1:] == s_child[:-1]) & (s_date[1:] >= s_date[:-1]))):
        key = s_child.astype(np.int64) * (np.int64(1) << 32) + (s_date.astype(np.int64) - first)
        order = np.argsort(key, kind="stable")
        del key
        s_child, s_date, s_vac = s_child[order], s_date[order], s_vac[order]

    # Injectable live vaccines: previous distinct day of a live dose within 28 days.
    is_live = np.array([book.vaccines[c].live_injectable for c in book.vaccine_codes])
    live_pos = np.flatnonzero(is_live[s_vac])
    spacing_bad = np.zeros(s_date.size, dtype=bool)
    last_live = np.full(n, NO_DATE, dtype=np.int32)
    if live_pos.size:
        lc, ld = s_child[live_pos], s_date[live_pos]
        new_run = np.ones(live_pos.size, dtype=bool)
        new_run[1:] = (lc[1:] != lc[:-1]) | (ld[1:] != ld[:-1])
        prev = np.maximum.accumulate(np.where(new_run, np.arange(live_pos.size), 0)) - 1
        has_prev = prev >= 0
        has_prev[has_prev] = lc[prev[has_prev]] == lc[has_prev]
        bad = np.zeros(live_pos.size, dtype=bool)
        bad[has_prev] = ld[has_prev] - ld[prev[has_prev]] < LIVE_SPACING_DAYS
        spacing_bad[live_pos] = bad
        is_last = np.ones(live_pos.size, dtype=bool)
        is_last[:-1] = lc[:-1] != lc[1:]
        last_live[lc[is_last]] = ld[is_last]
        del lc, ld, new_run, prev, has_prev, bad, is_last

    n_series = len(current.series)
    position = {s.id: i for i, s in enumerate(current.series)}
    prod_series = np.full(len(book.vaccine_codes), -1, dtype=np.int16)
    for code, series_id in current.product_series.items():
        prod_series[book.vaccine_codes.index(code)] = position[series_id]
    s_series = prod_series[s_vac]
    # rows of each series: a stable radix sort keeps (child, date) order inside each block
    by_series = np.argsort(s_series, kind="stable")
    bounds = np.searchsorted(s_series[by_series], np.arange(-1, n_series + 1))
    # version in force on each day from `first` to the as-of date
    days = np.arange(first, as_of_day + 1)
    version_of_day = np.zeros(days.size, dtype=np.int32)
    for v, item in enumerate(book.versions[1:], start=1):
        version_of_day[days >= to_days(item.effective_from)] = v

    inv_pos: list[NDArray[np.int64]] = []
    inv_dose: list[NDArray[np.int64]] = []
    inv_reason: list[NDArray[np.int64]] = []

    def reject(pos: NDArray[np.int64], dose: NDArray[np.int64] | int,
               reason: NDArray[np.int64] | int) -> None:
        inv_pos.append(pos)
        inv_dose.append(np.broadcast_to(np.asarray(dose, dtype=np.int64), pos.shape))
        inv_reason.append(np.broadcast_to(np.asarray(reason, dtype=np.int64), pos.shape))

    reject(by_series[bounds[0]:bounds[1]], 0, _REASON["not_in_schedule"])

    # Alternatives: the product given first decides (ties: schedule order); else preferred.
    chosen: dict[str, NDArray[np.int64]] = {}
    for group in {s.alternatives for s in current.series if s.alternatives is not None}:
        members = [i for i, s in enumerate(current.series) if s.alternatives == group]
        preferred = next(i for i in members if current.series[i].preferred)
        pick = np.full(n, preferred, dtype=np.int64)
        best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        for member in members:
            rows = by_series[bounds[member + 1]:bounds[member + 2]]
            kids = s_child[rows]
            firsts = np.ones(rows.size, dtype=bool)  # each child's first dose of the member
            firsts[1:] = kids[1:] != kids[:-1]
            kids = kids[firsts]
            rank = (s_date[rows[firsts]].astype(np.int64) - first) * n_series + member
            better = rank < best[kids]
            best[kids[better]] = rank[better]
            pick[kids[better]] = member
        chosen[group] = pick

    referenced = {a.series for s in current.series for r in s.regimens for d in r.doses
                  for a in d.after}
    valid_dates: dict[int, NDArray[np.int32]] = {}
    shown = [i for i, s in enumerate(current.series) if include_self_paid or s.programme]
    out_next = np.zeros((n, len(shown)), dtype=np.int8)
    out_status = np.zeros((n, len(shown)), dtype=np.int8)
    out_earliest = np.full((n, len(shown)), NO_DATE, dtype=np.int32)
    out_overdue = np.full((n, len(shown)), NO_DATE, dtype=np.int32)
    for si, series in enumerate(current.series):
        rules = _rule_tables(book, current, si)
        regimen: NDArray[np.int64] | int = 0
        if len(series.regimens) > 1:
            regimen = np.zeros(n, dtype=np.int64)
            undecided = np.ones(n, dtype=bool)
            for r, reg in enumerate(series.regimens):
                hit = undecided & _condition_mask(reg.when, pop)
                regimen[hit] = r
                undecided &= ~hit
        applicable = (chosen[series.alternatives] == si if series.alternatives is not None
                      else None)
        n_valid = np.zeros(n, dtype=np.int32)
        last_valid = np.full(n, NO_DATE, dtype=np.int32)
        if series.id in referenced:
            valid_dates[si] = np.full((n, rules.n_dose), NO_DATE, dtype=np.int32)

        pos = by_series[bounds[si + 1]:bounds[si + 2]]
        if applicable is not None:
            usable = applicable[s_child[pos]]
            reject(pos[~usable], 0, _REASON["alternative_not_chosen"])
            pos = pos[usable]
        b_child, b_date = s_child[pos], s_date[pos]
        b_vac = None if rules.same_products else s_vac[pos].astype(np.int32)
        b_ver = version_of_day[b_date - first]
        b_month, b_day0 = birth_split[0][b_child], birth_split[1][b_child]
        b_spacing = spacing_bad[pos]
        new_child = np.ones(pos.size, dtype=bool)
        new_child[1:] = b_child[1:] != b_child[:-1]
        ramp = np.arange(pos.size, dtype=np.int32)
        column = ramp - np.maximum.accumulate(np.where(new_child, ramp, 0))
        del new_child, ramp
        for j in range(int(column.max(initial=-1)) + 1):
            sel = np.flatnonzero(column == j)
            c, d = b_child[sel], b_date[sel]
            k = n_valid[c]
            reg = regimen[c] if isinstance(regimen, np.ndarray) else 0
            count = rules.n_doses[reg]
            f = rules.flat(reg, b_ver[sel], np.minimum(k, count - 1))
            checks = [k >= count]
            names = ["extra_dose"]
            if b_vac is not None:
                checks.append(~rules.accepts[f * rules.n_codes + b_vac[sel]])
                names.append("wrong_product")
            checks.append(d < cal.add_split(b_month[sel], b_day0[sel], rules.age_m[f],
                                            rules.age_d[f]))
            names.append("min_age")
            if rules.has_interval.any():
                has_int = rules.has_interval[f] & (k > 0)
                checks.append(has_int & (d < cal.add(np.where(has_int, last_valid[c], first),
                                                     rules.interval_m[f], rules.interval_d[f])))
                names.append("min_interval")
            if rules.has_after.any():
                checks.append(_after_blocked(rules, f, valid_dates, c, d, cal, first))
                names.append("after_other_series")
            checks.append(b_spacing[sel])
            names.append("live_spacing")
            failed = np.logical_or.reduce(checks)
            if failed.any():
                bad_at = np.flatnonzero(failed)
                reason = np.select([check[bad_at] for check in checks],
                                   [_REASON[name] for name in names])
                reject(pos[sel[bad_at]], k[bad_at] + 1, reason)
            ok = ~failed
            good, day = c[ok], d[ok]
            if series.id in referenced:
                valid_dates[si][good, k[ok]] = day
            n_valid[good] += 1
            last_valid[good] = day

        if si not in shown:
            continue
        col = shown.index(si)
        (out_next[:, col], out_status[:, col], out_earliest[:, col],
         out_overdue[:, col]) = _series_status(
            series, rules, book.versions.index(current), pop, birth_split, regimen, applicable,
            n_valid, last_valid, valid_dates, last_live, as_of_day, cal)

    positions = np.concatenate(inv_pos)
    rows = positions if order is None else order[positions]
    sort = np.argsort(rows, kind="stable")
    return BatchForecast(
        as_of=as_of, schedule_version=current.id,
        series=tuple(current.series[i].id for i in shown),
        next_dose=out_next, status=out_status, earliest=out_earliest, overdue_after=out_overdue,
        invalid_row=rows[sort].astype(np.int64),
        invalid_dose=np.concatenate(inv_dose)[sort].astype(np.int8),
        invalid_reason=np.concatenate(inv_reason)[sort].astype(np.int8),
        chosen={group: pick.astype(np.int16) for group, pick in chosen.items()},
    )


def _after_limits(rules: _Rules, f: NDArray[np.int64],
                  valid_dates: dict[int, NDArray[np.int32]], child: NDArray[np.int64],
                  on: NDArray[np.int64] | int, cal: _Calendar,
                  filler: int) -> Iterator[tuple[NDArray[np.bool_], NDArray[np.int64]]]:
    """Per ``after`` rule slot: which rows have a referenced dose on or before ``on``, and the
    date the rule allows from (referenced dose + interval)."""
    for slot in range(rules.slots):
        at = f * rules.slots + slot
        has = rules.has_after[at]
        if not has.any():
            continue
        ref = _reference(valid_dates, rules.after_series[at], rules.after_dose[at], child, on,
                         has)
        has &= ref != NO_DATE
        yield has, cal.add(np.where(has, ref, filler), rules.after_m[at], rules.after_d[at])


def _after_blocked(rules: _Rules, f: NDArray[np.int64],
                   valid_dates: dict[int, NDArray[np.int32]], child: NDArray[np.int64],
                   on: NDArray[np.int64], cal: _Calendar, filler: int) -> NDArray[np.bool_]:
    """Which doses given on ``on`` break an ``after`` rule."""
    blocked = np.zeros(child.shape, dtype=bool)
    for has, limit in _after_limits(rules, f, valid_dates, child, on, cal, filler):
        blocked |= has & (on < limit)
    return blocked


def _after_earliest(rules: _Rules, f: NDArray[np.int64],
                    valid_dates: dict[int, NDArray[np.int32]], child: NDArray[np.int64],
                    as_of: int, cal: _Calendar, filler: int) -> NDArray[np.int64]:
    """Earliest date the ``after`` rules allow for a next dose (``filler`` when none applies)."""
    earliest = np.full(child.shape, filler, dtype=np.int64)
    for has, limit in _after_limits(rules, f, valid_dates, child, as_of, cal, filler):
        earliest = np.where(has, np.maximum(earliest, limit), earliest)
    return earliest


def _reference(valid_dates: dict[int, NDArray[np.int32]], ref_series: NDArray[np.int64],
               ref_dose: NDArray[np.int64], child: NDArray[np.int64], on: NDArray[np.int64] | int,
               has: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Referenced valid dose dates (given on or before ``on``) per row, :data:`NO_DATE` if none."""
    out = np.full(child.shape, NO_DATE, dtype=np.int64)
    on_arr = np.broadcast_to(np.asarray(on, dtype=np.int64), child.shape)
    for ref in np.unique(ref_series[has]):
        rows = np.flatnonzero(has & (ref_series == ref))
        table = valid_dates[int(ref)][child[rows]]
        upto = on_arr[rows, None]
        latest = np.where(table <= upto, table, NO_DATE).max(axis=1)
        dose = ref_dose[rows]
        specific = table[np.arange(rows.size), np.maximum(dose, 0)]
        specific = np.where(specific <= upto[:, 0], specific, NO_DATE)
        out[rows] = np.where(dose < 0, latest, specific)
    return out


def _series_status(series: Series, rules: _Rules, version: int, pop: Population,
                   birth: tuple[NDArray[np.int32], NDArray[np.int32]],
                   regimen: NDArray[np.int64] | int, applicable: NDArray[np.bool_] | None,
                   n_valid: NDArray[np.int32], last_valid: NDArray[np.int32],
                   valid_dates: dict[int, NDArray[np.int32]], last_live: NDArray[np.int32],
                   as_of: int, cal: _Calendar) -> tuple[NDArray[np.int64], ...]:
    """Next dose, status, earliest and overdue-after of one series for every child.

    ``birth`` is the birth dates split by :meth:`_Calendar.split`. Children whose series is
    closed (complete or not applicable) are settled first; the dates are computed only for the
    others.
    """
    n = n_valid.shape[0]
    filler = cal.first_day
    n_doses = rules.n_doses[regimen]
    complete = n_valid >= n_doses
    excluded = np.zeros(n, dtype=bool) if applicable is None else ~applicable
    if series.when is not None:
        excluded |= ~_condition_mask(series.when, pop)
    late = np.zeros(n, dtype=bool)
    if series.max_age is not None:
        late |= cal.add_split(*birth, series.max_age.months, series.max_age.days) <= as_of
    if series.on_demand:
        late |= n_valid == 0
    status = np.where(complete & ~excluded, _STATUS["complete"],
                      _STATUS["not_applicable"]).astype(np.int8)
    next_dose = np.zeros(n, dtype=np.int8)
    earliest_out = np.full(n, NO_DATE, dtype=np.int32)
    overdue_out = np.full(n, NO_DATE, dtype=np.int32)
    kids = np.flatnonzero(~(excluded | complete | late))
    if not kids.size:
        return next_dose, status, earliest_out, overdue_out

    done = n_valid[kids]
    reg = regimen[kids] if isinstance(regimen, np.ndarray) else regimen
    f = rules.flat(reg, version, np.minimum(done, rules.n_doses[reg] - 1))
    born = (birth[0][kids], birth[1][kids])
    earliest = cal.add_split(*born, rules.age_m[f], rules.age_d[f])
    if rules.has_interval.any():
        has_int = rules.has_interval[f] & (done > 0)
        after_prev = cal.add(np.where(has_int, last_valid[kids], filler), rules.interval_m[f],
                             rules.interval_d[f])
        earliest = np.where(has_int, np.maximum(earliest, after_prev), earliest)
    if rules.has_after.any():
        earliest = np.maximum(earliest, _after_earliest(rules, f, valid_dates, kids, as_of, cal,
                                                        filler))
    if rules.live_next.any():
        live_day = last_live[kids]
        live = rules.live_next[f] & (live_day != NO_DATE)
        earliest = np.where(live, np.maximum(earliest, live_day + LIVE_SPACING_DAYS), earliest)
    has_due = rules.has_complete[f]
    overdue = np.where(has_due, cal.add_split(*born, rules.complete_m[f],
                                              rules.complete_d[f]) - 1, NO_DATE)
    no_test = positive = np.zeros(kids.size, dtype=bool)
    if series.tb_test_from_age is not None:
        gate = cal.add_split(*born, series.tb_test_from_age.months,
                             series.tb_test_from_age.days) <= as_of
        result = pop.tb_test_result[kids]
        no_test = gate & (result == 0)
        positive = gate & (result == 1 + TB_RESULTS.index("positive"))
        negative = gate & (result == 1 + TB_RESULTS.index("negative"))
        earliest = np.where(negative, np.maximum(earliest, pop.tb_test_date[kids]), earliest)
    state = np.where(has_due & (as_of > overdue), _STATUS["overdue"], _STATUS["due"])
    for condition, name in ((earliest > as_of, "upcoming"), (no_test, "needs_test"),
                            (positive, "not_applicable")):
        state = np.where(condition, _STATUS[name], state)
    status[kids] = state
    open_ = ~positive
    next_dose[kids[open_]] = done[open_] + 1
    earliest_out[kids[open_]] = earliest[open_]
    overdue_out[kids[open_]] = overdue[open_]
    return next_dose, status, earliest_out, overdue_out


def _max_months(book: ScheduleBook) -> int:
    """The longest age or interval of any version, in months (rounded up), for the calendar."""
    longest: list[Duration] = []
    for version in book.versions:
        for series in version.series:
            longest += [d for d in (series.max_age, series.tb_test_from_age) if d is not None]
            for regimen in series.regimens:
                for dose in regimen.doses:
                    longest += [d for d in (dose.min_age, dose.min_interval,
                                            dose.complete_before) if d is not None]
                    longest += [a.interval for a in dose.after]
    return max(d.months + d.days // 28 + 1 for d in longest)
