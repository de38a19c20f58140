r"""Aberration detectors for daily surveillance counts: EARS C1, C2, C3 and a CUSUM.

All detectors are vectorised over many series: the input is a ``series × days`` array of
non-negative counts (a 1-D array is one series). Missing reports are ``NaN``; a day whose count
or baseline is missing gets a ``NaN`` statistic and never alerts.

Definitions (CDC Early Aberration Reporting System; Hutwagner et al. 2003, *J Urban Health*
80(2 Suppl 1):i89–96; Fricker, Hegler & Dunfee 2008, *Stat Med* 27:3407–3429). With
:math:`Y_t` the count of day :math:`t`, :math:`n` the baseline length (7 days) and
:math:`\bar Y`, :math:`s` the mean and *sample* standard deviation (divisor :math:`n-1`) of a
baseline window:

* **C1** ("mild"): baseline :math:`Y_{t-7},\dots,Y_{t-1}`, the 7 days immediately before;
  :math:`C1_t = (Y_t - \bar Y_{t}) / s_t`; alert when :math:`C1_t > 3`.
* **C2** ("medium"): the same 7-day baseline moved back by a 2-day lag,
  :math:`Y_{t-9},\dots,Y_{t-3}`, so that the first two days of an outbreak do not inflate it;
  alert when :math:`C2_t > 3`.
* **C3** ("ultra"): :math:`C3_t = \sum_{i=t-2}^{t} \max(0,\, C2_i - 1)`, the positive parts of the
  last three C2 statistics after subtracting one standard deviation; alert when
  :math:`C3_t > 2`. The "minus one" (``offset``) is part of the CDC definition; set
  ``offset=0`` for the plain sum of positive parts.
* **CUSUM**: an upper one-sided cumulative sum of the C2-standardised counts,
  :math:`S_t = \max(0,\, S_{t-1} + z_t - k)` with :math:`S` starting at 0, alert when
  :math:`S_t > h` (defaults :math:`k = 0.5`, :math:`h = 4`), and :math:`S` reset to 0 after an
  alert (so that one outbreak does not alert for ever).

Alerts use a strict inequality, as in the definitions above. :func:`daily_counts` lays out
long-format daily reports (one row per sentinel and day) as the ``series × days`` matrix, with
``NaN`` for days without a report, and :meth:`AberrationResult.alert_table` lists the alerts with
the labels of the series and days and the baseline window that triggered them.

**Zero standard deviation.** A flat baseline (e.g. seven days of 0 or seven days of 5) has
:math:`s = 0` and the statistic would be infinite for any rise. Every detector divides by
:math:`\max(s, \sigma_{min})` instead, with ``min_sigma`` = 1 count by default: after a flat
baseline, a day needs more than ``threshold`` extra cases (more than 3 for C1/C2) to alert. The
floored value is what is returned as ``baseline_sd``. ``min_sigma`` must be positive.

Examples
--------
>>> import numpy as np
>>> counts = np.array([[3, 5, 3, 5, 3, 5, 4, 8]])
>>> result = ears_c1(counts)
>>> float(result.statistic[0, 7]), bool(result.alert[0, 7])
(4.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from tiercare.errors import InputError, Problem

__all__ = [
    "DETECTORS",
    "AberrationResult",
    "DailyCounts",
    "cusum",
    "daily_counts",
    "ears_c1",
    "ears_c2",
    "ears_c3",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class AberrationResult:
    """Statistics, baselines and alerts of one detector over many series.

    All arrays have the shape ``(series, days)`` of the (2-D) input; days for which the
    statistic cannot be computed (too early in the series, missing count or baseline) hold
    ``NaN`` and never alert.

    Attributes
    ----------
    method:
        ``"C1"``, ``"C2"``, ``"C3"`` or ``"CUSUM"``.
    counts:
        The input counts as floats (``NaN`` for a missing report).
    statistic:
        The detector statistic of each day.
    alert:
        ``statistic > threshold``.
    threshold:
        The alert threshold used.
    baseline_mean:
        Mean of the baseline window of each day (the expected count).
    baseline_sd:
        Standard deviation of the baseline window, after the ``min_sigma`` floor.
    baseline_window:
        First and last day offsets of the baseline relative to the day tested, e.g. ``(-7, -1)``
        for C1 and ``(-9, -3)`` for C2, C3 and the CUSUM.
    upper_bound:
        The count above which the day alerts, given the baseline (and for C3 and the CUSUM the
        statistics of earlier days): ``alert == (counts > upper_bound)`` wherever the statistic
        is defined. ``-inf`` when the day alerts whatever its count (C3 whose two previous
        terms already exceed the threshold).
    parameters:
        The parameters the detector ran with.
    """

    method: str
    counts: FloatArray
    statistic: FloatArray
    alert: BoolArray
    threshold: float
    baseline_mean: FloatArray
    baseline_sd: FloatArray
    baseline_window: tuple[int, int]
    upper_bound: FloatArray
    parameters: dict[str, Any]

    def alert_table(
        self,
        *,
        series_ids: Sequence[Any] | None = None,
        dates: Sequence[Any] | None = None,
    ) -> pd.DataFrame:
        """List the alerts, one row per alerting series and day.

        Parameters
        ----------
        series_ids:
            Labels of the series (e.g. facility codes), one per row of the input; default the
            row index.
        dates:
            Labels of the days, one per column; default the column index.

        Returns
        -------
        pandas.DataFrame
            Columns ``series``, ``day``, ``count``, ``statistic``, ``threshold``,
            ``expected`` (baseline mean), ``baseline_sd``, ``upper_bound``, ``method``,
            ``baseline_from`` and ``baseline_to`` (day labels of the baseline window).
        """
        n_series, n_days = self.counts.shape
        ids = list(range(n_series)) if series_ids is None else list(series_ids)
        days = list(range(n_days)) if dates is None else list(dates)
        problems = []
        if len(ids) != n_series:
            problems.append(Problem(reason=f"expected {n_series} labels, got {len(ids)}",
                                    field="series_ids"))
        if len(days) != n_days:
            problems.append(Problem(reason=f"expected {n_days} labels, got {len(days)}",
                                    field="dates"))
        if problems:
            raise InputError(problems)
        rows, cols = np.nonzero(self.alert)
        first, last = self.baseline_window
        return pd.DataFrame(
            {
                "series": [ids[r] for r in rows],
                "day": [days[c] for c in cols],
                "count": self.counts[rows, cols],
                "statistic": self.statistic[rows, cols],
                "threshold": self.threshold,
                "expected": self.baseline_mean[rows, cols],
                "baseline_sd": self.baseline_sd[rows, cols],
                "upper_bound": self.upper_bound[rows, cols],
                "method": self.method,
                "baseline_from": [days[c + first] for c in cols],
                "baseline_to": [days[c + last] for c in cols],
            }
        )


@dataclass(frozen=True)
class DailyCounts:
    """Daily counts laid out for the detectors: one row per series, one column per day.

    Attributes
    ----------
    counts:
        ``series × days`` floats; ``NaN`` where a series has no report for a day.
    series:
        The series labels (e.g. facility codes), in row order.
    dates:
        Every calendar day of the period, in column order.
    """

    counts: FloatArray
    series: list[Any]
    dates: pd.DatetimeIndex


def daily_counts(
    reports: pd.DataFrame,
    *,
    series: str,
    date: str,
    count: str,
    start: Any = None,
    end: Any = None,
) -> DailyCounts:
    """Lay out long-format daily reports (one row per series and day) as a dense matrix.

    Days without a report become ``NaN`` (missing, not zero), so that a sentinel that did not
    report is not mistaken for one that saw no patient.

    Parameters
    ----------
    reports:
        One row per report.
    series, date, count:
        Column names: the series label (facility, county…), the report date and the count.
    start, end:
        First and last day of the matrix (default: the first and last report date).

    Returns
    -------
    DailyCounts

    Raises
    ------
    InputError
        On a missing column, an unreadable date or count, or two reports of one series for
        one day.

    Examples
    --------
    >>> reports = pd.DataFrame({"site": ["A", "A", "B"], "day": ["2026-01-01", "2026-01-03",
    ...                         "2026-01-02"], "patients": [4, 6, 1]})
    >>> laid_out = daily_counts(reports, series="site", date="day", count="patients")
    >>> laid_out.series, laid_out.counts.tolist()
    (['A', 'B'], [[4.0, nan, 6.0], [nan, 1.0, nan]])
    """
    missing = [c for c in (series, date, count) if c not in reports.columns]
    if missing:
        raise InputError([Problem(reason="missing column", field=c) for c in missing])
    days = pd.to_datetime(reports[date], errors="coerce").dt.normalize()
    problems = [Problem(reason=f"not a date: {reports[date].iloc[i]!r}", field=date, row=i + 1)
                for i in np.flatnonzero(days.isna().to_numpy())]
    numbers = pd.to_numeric(reports[count], errors="coerce")
    problems += [Problem(reason=f"not a count: {reports[count].iloc[i]!r}", field=count,
                         row=int(i) + 1)
                 for i in np.flatnonzero((numbers.isna() & reports[count].notna()).to_numpy())]
    duplicated = pd.DataFrame({"s": reports[series].to_numpy(), "d": days.to_numpy()})
    for i in np.flatnonzero(duplicated.duplicated().to_numpy() & days.notna().to_numpy()):
        problems.append(Problem(reason="second report of the same series and day",
                                field=date, row=int(i) + 1))
    if problems:
        raise InputError(problems)
    first = pd.Timestamp(start) if start is not None else days.min()
    last = pd.Timestamp(end) if end is not None else days.max()
    calendar = pd.date_range(first, last, freq="D")
    table = pd.DataFrame({"s": reports[series].to_numpy(), "d": days.to_numpy(),
                          "n": numbers.to_numpy()})
    wide = table.pivot(index="s", columns="d", values="n").reindex(columns=calendar)
    return DailyCounts(counts=wide.to_numpy(dtype=np.float64), series=list(wide.index),
                       dates=calendar)


def _as_counts(counts: ArrayLike) -> FloatArray:
    """Validate counts and return them as a 2-D float array (series × days)."""
    try:
        array = np.array(counts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError.single(f"counts must be numbers: {exc}", field="counts") from exc
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise InputError.single(
            f"counts must be 1-D (one series) or 2-D (series × days), got {array.ndim}-D",
            field="counts",
        )
    problems = []
    for row in np.unique(np.nonzero(np.isinf(array))[0]):
        problems.append(Problem(reason="infinite count", field="counts", row=int(row) + 1))
    with np.errstate(invalid="ignore"):
        negative_rows = np.unique(np.nonzero(array < 0)[0])
    for row in negative_rows:
        problems.append(Problem(reason="negative count", field="counts", row=int(row) + 1))
    if problems:
        raise InputError(problems)
    return array


def _check_parameters(
    *,
    baseline_days: int,
    lag_days: int,
    min_baseline_days: int | None,
    min_sigma: float,
    **positives: float,
) -> int:
    """Validate the common parameters; return the effective ``min_baseline_days``."""
    problems = []
    if baseline_days < 3:
        problems.append(Problem(reason="the baseline needs at least 3 days",
                                field="baseline_days"))
    if lag_days < 0:
        problems.append(Problem(reason="the lag cannot be negative", field="lag_days"))
    needed = baseline_days if min_baseline_days is None else min_baseline_days
    if not 2 <= needed <= max(baseline_days, 2):
        problems.append(Problem(
            reason="must be between 2 (a standard deviation needs two values) and baseline_days",
            field="min_baseline_days"))
    if not min_sigma > 0:
        problems.append(Problem(reason="must be positive (it floors a zero standard deviation)",
                                field="min_sigma"))
    for name, value in positives.items():
        if not np.isfinite(value) or value < 0:
            problems.append(Problem(reason="must be a finite number ≥ 0", field=name))
    if problems:
        raise InputError(problems)
    return needed


def _baseline(
    counts: FloatArray, *, baseline_days: int, lag_days: int, min_baseline_days: int
) -> tuple[FloatArray, FloatArray]:
    """Mean and sample standard deviation of the baseline window of every day.

    The window of day ``t`` is days ``t - lag_days - baseline_days`` to ``t - lag_days - 1``.
    Missing values are skipped; fewer than ``min_baseline_days`` present values give ``NaN``.
    """
    n_series, n_days = counts.shape
    mean = np.full((n_series, n_days), np.nan)
    sd = np.full((n_series, n_days), np.nan)
    first_day = baseline_days + lag_days
    if n_days <= first_day:
        return mean, sd
    # window j covers days j .. j + baseline_days - 1 and serves day j + first_day
    windows = sliding_window_view(counts, baseline_days, axis=1)[:, : n_days - first_day]
    present = ~np.isnan(windows)
    n = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        window_mean = np.where(present, windows, 0.0).sum(axis=-1) / n
        deviations = np.where(present, windows - window_mean[..., np.newaxis], 0.0)
        window_sd = np.sqrt((deviations**2).sum(axis=-1) / (n - 1))
    enough = n >= min_baseline_days
    mean[:, first_day:] = np.where(enough, window_mean, np.nan)
    sd[:, first_day:] = np.where(enough, window_sd, np.nan)
    return mean, sd


def _standardised(
    counts: FloatArray,
    *,
    baseline_days: int,
    lag_days: int,
    min_baseline_days: int,
    min_sigma: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return ``(z, mean, floored_sd)`` with ``z = (count - mean) / max(sd, min_sigma)``."""
    mean, sd = _baseline(counts, baseline_days=baseline_days, lag_days=lag_days,
                         min_baseline_days=min_baseline_days)
    floored = np.where(np.isnan(sd), np.nan, np.maximum(sd, min_sigma))
    z = (counts - mean) / floored
    return z, mean, floored


def _shewhart(
    method: str,
    counts: ArrayLike,
    *,
    baseline_days: int,
    lag_days: int,
    threshold: float,
    min_sigma: float,
    min_baseline_days: int | None,
) -> AberrationResult:
    """C1 and C2: a standardised count against a moving baseline."""
    needed = _check_parameters(baseline_days=baseline_days, lag_days=lag_days,
                               min_baseline_days=min_baseline_days, min_sigma=min_sigma,
                               threshold=threshold)
    values = _as_counts(counts)
    z, mean, sd = _standardised(values, baseline_days=baseline_days, lag_days=lag_days,
                                min_baseline_days=needed, min_sigma=min_sigma)
    with np.errstate(invalid="ignore"):
        alert = z > threshold
    return AberrationResult(
        method=method,
        counts=values,
        statistic=z,
        alert=alert,
        threshold=threshold,
        baseline_mean=mean,
        baseline_sd=sd,
        baseline_window=(-(lag_days + baseline_days), -(lag_days + 1)),
        upper_bound=mean + threshold * sd,
        parameters={"baseline_days": baseline_days, "lag_days": lag_days,
                    "threshold": threshold, "min_sigma": min_sigma,
                    "min_baseline_days": needed},
    )


def ears_c1(
    counts: ArrayLike,
    *,
    baseline_days: int = 7,
    threshold: float = 3.0,
    min_sigma: float = 1.0,
    min_baseline_days: int | None = None,
) -> AberrationResult:
    r"""EARS C1: today's count against the mean of the days immediately before.

    :math:`C1_t = (Y_t - \bar Y) / \max(s, \sigma_{min})` over :math:`Y_{t-7..t-1}`; alert when
    :math:`C1_t >` ``threshold``.

    Parameters
    ----------
    counts:
        Daily counts, ``series × days`` (or one series as a 1-D array); ``NaN`` = missing.
    baseline_days:
        Length of the baseline window (CDC: 7).
    threshold:
        Alert when the statistic exceeds this many standard deviations (CDC: 3).
    min_sigma:
        Floor of the baseline standard deviation (see the module notes on zero variance).
    min_baseline_days:
        Fewest non-missing baseline days needed for a statistic; default all of them.

    Returns
    -------
    AberrationResult
        With ``baseline_window == (-7, -1)`` by default.

    Examples
    --------
    >>> r = ears_c1([3, 5, 3, 5, 3, 5, 4, 7])  # baseline mean 4, sd 1
    >>> float(r.statistic[0, -1]), bool(r.alert[0, -1])
    (3.0, False)
    """
    return _shewhart("C1", counts, baseline_days=baseline_days, lag_days=0,
                     threshold=threshold, min_sigma=min_sigma,
                     min_baseline_days=min_baseline_days)


def ears_c2(
    counts: ArrayLike,
    *,
    baseline_days: int = 7,
    lag_days: int = 2,
    threshold: float = 3.0,
    min_sigma: float = 1.0,
    min_baseline_days: int | None = None,
) -> AberrationResult:
    r"""EARS C2: like C1 but the baseline ends ``lag_days`` (2) days before the day tested.

    :math:`C2_t = (Y_t - \bar Y) / \max(s, \sigma_{min})` over :math:`Y_{t-9..t-3}`; alert when
    :math:`C2_t >` ``threshold``.

    Parameters
    ----------
    counts:
        Daily counts, ``series × days`` (or one series as a 1-D array); ``NaN`` = missing.
    baseline_days:
        Length of the baseline window (CDC: 7).
    lag_days:
        Guard band between the baseline and the day tested (CDC: 2).
    threshold:
        Alert threshold in standard deviations (CDC: 3).
    min_sigma:
        Floor of the baseline standard deviation.
    min_baseline_days:
        Fewest non-missing baseline days needed; default all of them.

    Returns
    -------
    AberrationResult
        With ``baseline_window == (-9, -3)`` by default.
    """
    return _shewhart("C2", counts, baseline_days=baseline_days, lag_days=lag_days,
                     threshold=threshold, min_sigma=min_sigma,
                     min_baseline_days=min_baseline_days)


def ears_c3(
    counts: ArrayLike,
    *,
    baseline_days: int = 7,
    lag_days: int = 2,
    threshold: float = 2.0,
    offset: float = 1.0,
    min_sigma: float = 1.0,
    min_baseline_days: int | None = None,
) -> AberrationResult:
    r"""EARS C3: the sum of the last three C2 excesses.

    :math:`C3_t = \sum_{i=t-2}^{t} \max(0, C2_i - \text{offset})`; alert when
    :math:`C3_t >` ``threshold``. A day needs the C2 statistics of itself and of the two days
    before.

    Parameters
    ----------
    counts:
        Daily counts, ``series × days`` (or one series as a 1-D array); ``NaN`` = missing.
    baseline_days, lag_days, min_sigma, min_baseline_days:
        As for :func:`ears_c2`, used for the underlying C2 statistics.
    threshold:
        Alert threshold (CDC: 2).
    offset:
        Subtracted from each C2 before its positive part is taken (CDC: 1).

    Returns
    -------
    AberrationResult
        ``baseline_mean`` and ``baseline_sd`` are those of the C2 statistic of the day itself;
        ``upper_bound`` is :math:`\bar Y + s\,(\text{offset} + h - p_{t-1} - p_{t-2})` with
        :math:`p` the two earlier terms, or ``-inf`` when they alone exceed :math:`h`.
    """
    needed = _check_parameters(baseline_days=baseline_days, lag_days=lag_days,
                               min_baseline_days=min_baseline_days, min_sigma=min_sigma,
                               threshold=threshold, offset=offset)
    values = _as_counts(counts)
    c2, mean, sd = _standardised(values, baseline_days=baseline_days, lag_days=lag_days,
                                 min_baseline_days=needed, min_sigma=min_sigma)
    part = np.maximum(0.0, c2 - offset)  # NaN stays NaN
    earlier = np.full_like(part, np.nan)
    earlier[:, 2:] = part[:, 1:-1] + part[:, :-2]
    statistic = part + earlier
    remaining = threshold - earlier
    upper_bound = np.where(remaining < 0, -np.inf, mean + sd * (offset + remaining))
    with np.errstate(invalid="ignore"):
        alert = statistic > threshold
    return AberrationResult(
        method="C3",
        counts=values,
        statistic=statistic,
        alert=alert,
        threshold=threshold,
        baseline_mean=mean,
        baseline_sd=sd,
        baseline_window=(-(lag_days + baseline_days), -(lag_days + 1)),
        upper_bound=upper_bound,
        parameters={"baseline_days": baseline_days, "lag_days": lag_days,
                    "threshold": threshold, "offset": offset, "min_sigma": min_sigma,
                    "min_baseline_days": needed},
    )


def cusum(
    counts: ArrayLike,
    *,
    baseline_days: int = 7,
    lag_days: int = 2,
    k: float = 0.5,
    h: float = 4.0,
    reset: bool = True,
    min_sigma: float = 1.0,
    min_baseline_days: int | None = None,
) -> AberrationResult:
    r"""Upper one-sided CUSUM of counts standardised against a moving (C2-style) baseline.

    :math:`z_t = (Y_t - \bar Y) / \max(s, \sigma_{min})` over :math:`Y_{t-9..t-3}`;
    :math:`S_t = \max(0, S_{t-1} + z_t - k)` from :math:`S = 0`; alert when :math:`S_t > h`,
    after which :math:`S` restarts from 0 if ``reset``. A day without a statistic (missing count
    or baseline) leaves :math:`S` unchanged. The loop runs over days; each step is vectorised
    over all series.

    Parameters
    ----------
    counts:
        Daily counts, ``series × days`` (or one series as a 1-D array); ``NaN`` = missing.
    baseline_days, lag_days, min_sigma, min_baseline_days:
        As for :func:`ears_c2`.
    k:
        Reference value (allowance) in standard deviations; 0.5 targets a one-sd shift.
    h:
        Decision interval in standard deviations.
    reset:
        Restart the sum from 0 after each alert.

    Returns
    -------
    AberrationResult
        ``statistic`` is :math:`S_t`; ``upper_bound`` is
        :math:`\bar Y + s\,(h + k - S_{t-1})`.
    """
    needed = _check_parameters(baseline_days=baseline_days, lag_days=lag_days,
                               min_baseline_days=min_baseline_days, min_sigma=min_sigma,
                               k=k, h=h)
    values = _as_counts(counts)
    z, mean, sd = _standardised(values, baseline_days=baseline_days, lag_days=lag_days,
                                min_baseline_days=needed, min_sigma=min_sigma)
    n_series, n_days = values.shape
    statistic = np.full((n_series, n_days), np.nan)
    alert = np.zeros((n_series, n_days), dtype=bool)
    previous = np.full((n_series, n_days), np.nan)
    running = np.zeros(n_series)
    for day in range(n_days):
        z_day = z[:, day]
        present = ~np.isnan(z_day)
        previous[:, day] = running
        current = np.maximum(0.0, running + np.where(present, z_day, 0.0) - k)
        statistic[:, day] = np.where(present, current, np.nan)
        alert[:, day] = present & (current > h)
        running = np.where(present, current, running)
        if reset:
            running = np.where(alert[:, day], 0.0, running)
    return AberrationResult(
        method="CUSUM",
        counts=values,
        statistic=statistic,
        alert=alert,
        threshold=h,
        baseline_mean=mean,
        baseline_sd=sd,
        baseline_window=(-(lag_days + baseline_days), -(lag_days + 1)),
        upper_bound=mean + sd * (h + k - previous),
        parameters={"baseline_days": baseline_days, "lag_days": lag_days, "k": k, "h": h,
                    "reset": reset, "min_sigma": min_sigma, "min_baseline_days": needed},
    )


DETECTORS: dict[str, Callable[..., AberrationResult]] = {
    "C1": ears_c1,
    "C2": ears_c2,
    "C3": ears_c3,
    "CUSUM": cusum,
}
"""Detectors by name, so that a configuration (data) can choose them: ``DETECTORS["C2"](x)``."""
