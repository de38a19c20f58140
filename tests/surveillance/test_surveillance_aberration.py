"""EARS C1/C2/C3 and CUSUM against hand-computed series and a brute-force re-implementation."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.surveillance.aberration import (
    DETECTORS,
    cusum,
    daily_counts,
    ears_c1,
    ears_c2,
    ears_c3,
)

# A week whose mean is 4 and whose sample sd is 1:
#   sum = 3+5+3+5+3+5+4 = 28, mean = 28/7 = 4,
#   squared deviations = 1+1+1+1+1+1+0 = 6, variance = 6/(7-1) = 1, sd = 1.
# Any 7 consecutive days of this pattern repeated hold the same values, so every baseline
# window drawn from the repetition has mean 4 and sd 1 too.
WEEK = [3, 5, 3, 5, 3, 5, 4]


def test_c1_hand_computed() -> None:
    # day 8 (index 7): baseline = days 1..7 = WEEK, mean 4, sd 1
    # count 8 -> C1 = (8 - 4) / 1 = 4 > 3 -> alert
    result = ears_c1(WEEK + [8])
    assert result.statistic[0, 7] == pytest.approx(4.0)
    assert result.alert[0, 7]
    assert result.baseline_mean[0, 7] == pytest.approx(4.0)
    assert result.baseline_sd[0, 7] == pytest.approx(1.0)
    assert result.baseline_window == (-7, -1)
    assert result.upper_bound[0, 7] == pytest.approx(4 + 3 * 1)
    # the first 7 days have no baseline
    assert np.isnan(result.statistic[0, :7]).all()
    assert not result.alert[0, :7].any()


def test_c1_threshold_is_strict() -> None:
    # count 7 -> C1 = (7 - 4) / 1 = 3, not > 3 -> no alert
    result = ears_c1(WEEK + [7])
    assert result.statistic[0, 7] == pytest.approx(3.0)
    assert not result.alert[0, 7]
    # a configurable threshold: 2.5 -> alert
    assert ears_c1(WEEK + [7], threshold=2.5).alert[0, 7]


def test_c1_unequal_baseline() -> None:
    # baseline 1..7: mean = 28/7 = 4, squared deviations 9+4+1+0+1+4+9 = 28,
    # variance = 28/6, sd = sqrt(14/3) = 2.1602; count 12 -> C1 = 8 / 2.1602 = 3.7033
    result = ears_c1([1, 2, 3, 4, 5, 6, 7, 12])
    assert result.statistic[0, 7] == pytest.approx(8 / math.sqrt(28 / 6))
    assert result.alert[0, 7]


def test_c2_uses_a_two_day_lag() -> None:
    # days 1..7 = WEEK, days 8 and 9 = 20 (the lag: outbreak start, not in the baseline),
    # day 10 (index 9): baseline = days 1..7, mean 4, sd 1
    #   count 7 -> C2 = 3 -> no alert; count 8 -> C2 = 4 -> alert
    quiet = ears_c2(WEEK + [20, 20, 7])
    loud = ears_c2(WEEK + [20, 20, 8])
    assert quiet.statistic[0, 9] == pytest.approx(3.0)
    assert not quiet.alert[0, 9]
    assert loud.statistic[0, 9] == pytest.approx(4.0)
    assert loud.alert[0, 9]
    assert loud.baseline_window == (-9, -3)
    assert np.isnan(loud.statistic[0, :9]).all()
    # C1 on the same day sees the two 20s in its baseline (days 3..9):
    #   3,5,3,5,4,20,20: mean = 60/7 = 8.571, so C1 = (8 - 8.571)/sd < 0
    assert ears_c1(WEEK + [20, 20, 8]).statistic[0, 9] < 0


def test_c3_hand_computed() -> None:
    # x = WEEK + [3, 5] + [a, b, c]; indices 9, 10, 11 hold a, b, c.
    # C2 baselines (each 7 days ending 3 days before):
    #   index 9  -> indices 0..6 = 3,5,3,5,3,5,4  mean 4 sd 1
    #   index 10 -> indices 1..7 = 5,3,5,3,5,4,3  mean 4 sd 1
    #   index 11 -> indices 2..8 = 3,5,3,5,4,3,5  mean 4 sd 1
    # so C2 = a-4, b-4, c-4 and C3(11) = max(0,a-5) + max(0,b-5) + max(0,c-5).
    base = WEEK + [3, 5]
    # a = b = c = 6: C2 = 2, 2, 2 (no C2 alert), C3 = 1 + 1 + 1 = 3 > 2 -> alert
    result = ears_c3(base + [6, 6, 6])
    c2 = ears_c2(base + [6, 6, 6])
    assert c2.statistic[0, 9:12] == pytest.approx([2.0, 2.0, 2.0])
    assert not c2.alert[0].any()
    assert result.statistic[0, 11] == pytest.approx(3.0)
    assert result.alert[0, 11]
    # the first index with three C2 values is 11
    assert np.isnan(result.statistic[0, :11]).all()
    # upper bound at index 11: earlier terms 1 + 1 = 2, remaining 2 - 2 = 0,
    # bound = 4 + 1 * (1 + 0) = 5; the count 6 is above it
    assert result.upper_bound[0, 11] == pytest.approx(5.0)
    # a = 6, b = 5, c = 6: C3 = 1 + 0 + 1 = 2, not > 2 -> no alert
    quiet = ears_c3(base + [6, 5, 6])
    assert quiet.statistic[0, 11] == pytest.approx(2.0)
    assert not quiet.alert[0, 11]
    # offset 0 (plain sum of positive parts): 2 + 1 + 2 = 5
    assert ears_c3(base + [6, 5, 6], offset=0).statistic[0, 11] == pytest.approx(5.0)


def test_c3_upper_bound_minus_infinity_when_earlier_days_suffice() -> None:
    # a = b = 8: terms 3 and 3 already sum to 6 > 2, so index 11 alerts whatever its count
    result = ears_c3(WEEK + [3, 5] + [8, 8, 0])
    assert result.upper_bound[0, 11] == -np.inf
    assert result.alert[0, 11]


def test_cusum_hand_computed() -> None:
    # 14 days of the repeated WEEK: every baseline (days t-9..t-3) has mean 4 and sd 1.
    # First statistic at index 9; z = x - 4 for indices 9..13 = 3,5,3,5,4 -> -1,1,-1,1,0
    #   S:  max(0, 0 - 1 - .5) = 0;  max(0, 0 + 1 - .5) = .5;  max(0, .5 - 1 - .5) = 0;
    #       .5;  max(0, .5 + 0 - .5) = 0
    # index 14: x = 7, z = 3 -> S = 0 + 3 - .5 = 2.5
    # index 15: x = 7, z = 3 -> S = 2.5 + 2.5 = 5.0 > 4 -> alert, reset to 0
    # index 16: x = 6, z = 2 -> S = 0 + 2 - .5 = 1.5
    x = WEEK * 2 + [7, 7, 6]
    result = cusum(x)
    assert result.statistic[0, 9:17] == pytest.approx([0, 0.5, 0, 0.5, 0, 2.5, 5.0, 1.5])
    assert result.alert[0].tolist() == [False] * 15 + [True, False]
    # upper bound at index 15: 4 + 1 * (4 + 0.5 - 2.5) = 6; the count 7 is above it
    assert result.upper_bound[0, 15] == pytest.approx(6.0)
    # C2 never alerts here: its largest statistic is 3 (not > 3)
    assert not ears_c2(x).alert.any()
    # without reset the sum keeps growing: 5.0 + 1.5 = 6.5
    assert cusum(x, reset=False).statistic[0, 16] == pytest.approx(6.5)


def test_zero_sd_is_floored() -> None:
    # baseline 4,4,4,4,4,4,4: sd 0 -> floored to min_sigma = 1
    #   count 5 -> C1 = 1 (no alert); count 8 -> C1 = 4 > 3 -> alert
    flat = [4] * 7
    assert ears_c1(flat + [5]).statistic[0, 7] == pytest.approx(1.0)
    assert not ears_c1(flat + [5]).alert[0, 7]
    assert ears_c1(flat + [8]).alert[0, 7]
    assert ears_c1(flat + [8]).baseline_sd[0, 7] == pytest.approx(1.0)
    # min_sigma 2 -> C1 = (8 - 4) / 2 = 2 -> no alert
    assert ears_c1(flat + [8], min_sigma=2.0).statistic[0, 7] == pytest.approx(2.0)


@pytest.mark.parametrize("level", [0, 1, 5, 250])
@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_flat_series_raise_no_alert(method: str, level: int) -> None:
    counts = np.full((3, 90), float(level))
    result = DETECTORS[method](counts)
    assert not result.alert.any()
    assert np.nanmax(result.statistic) == pytest.approx(0.0)


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_injected_outbreak_is_found(method: str) -> None:
    rng = np.random.default_rng(20261123)
    counts = rng.poisson(10, size=(40, 120)).astype(float)
    outbreak_series, start = 17, 80
    counts[outbreak_series, start:start + 4] += [12, 18, 24, 24]
    result = DETECTORS[method](counts)
    assert result.alert[outbreak_series, start:start + 4].any()
    table = result.alert_table(series_ids=[f"F{i:02d}" for i in range(40)])
    hits = table[(table["series"] == "F17") & table["day"].between(start, start + 3)]
    assert len(hits) >= 1
    assert (hits["count"] > hits["upper_bound"]).all()


def _brute_force(method: str, series: list[float], *, min_sigma: float = 1.0) -> list[float]:
    """Day-by-day re-implementation with the statistics module (NaN where undefined)."""
    def z(t: int, lag: int) -> float:
        window = series[t - lag - 7:t - lag]
        if t - lag - 7 < 0:
            return math.nan
        sd = max(statistics.stdev(window), min_sigma)
        return (series[t] - statistics.fmean(window)) / sd

    out = []
    running = 0.0
    for t in range(len(series)):
        if method == "C1":
            out.append(z(t, 0))
        elif method == "C2":
            out.append(z(t, 2))
        elif method == "C3":
            terms = [z(i, 2) for i in (t - 2, t - 1, t)] if t >= 2 else [math.nan]
            out.append(math.nan if any(math.isnan(v) for v in terms)
                       else sum(max(0.0, v - 1.0) for v in terms))
        else:
            value = z(t, 2)
            if math.isnan(value):
                out.append(math.nan)
                continue
            running = max(0.0, running + value - 0.5)
            out.append(running)
            if running > 4.0:
                running = 0.0
    return out


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.lists(st.integers(0, 60), min_size=25, max_size=25), min_size=1,
                  max_size=4),
    method=st.sampled_from(sorted(DETECTORS)),
)
def test_vectorised_equals_brute_force(data: list[list[int]], method: str) -> None:
    result = DETECTORS[method](np.array(data))
    for row, series in enumerate(data):
        expected = _brute_force(method, [float(v) for v in series])
        np.testing.assert_allclose(result.statistic[row], expected, rtol=1e-9, atol=1e-9)
        threshold = {"C1": 3.0, "C2": 3.0, "C3": 2.0, "CUSUM": 4.0}[method]
        assert result.alert[row].tolist() == [
            (not math.isnan(v)) and v > threshold for v in expected
        ]
        defined = ~np.isnan(result.statistic[row])
        assert np.array_equal(
            result.alert[row][defined],
            (result.counts[row] > result.upper_bound[row])[defined],
        )


def test_missing_reports() -> None:
    x = np.array(WEEK + [3, 8], dtype=float)
    x[2] = np.nan
    # index 8's baseline (indices 1..7) misses a day -> no statistic by default
    strict = ears_c1(x)
    assert np.isnan(strict.statistic[0, 7:]).all()
    assert not strict.alert.any()
    # allowing 6 of 7 days: index 8 baseline = 5,5,3,5,4,3 (index 2 missing):
    #   mean = 25/6; squared deviations = 109 - 6 * (25/6)**2 = 29/6; variance = 29/30;
    #   sd = 0.983 < 1 -> floored to 1; C1 = (8 - 25/6) / 1 = 23/6 = 3.833 -> alert
    lenient = ears_c1(x, min_baseline_days=6)
    assert lenient.baseline_mean[0, 8] == pytest.approx(25 / 6)
    assert lenient.baseline_sd[0, 8] == pytest.approx(1.0)
    assert lenient.statistic[0, 8] == pytest.approx(23 / 6)
    assert lenient.alert[0, 8]
    # a missing count itself has no statistic
    x[8] = np.nan
    assert np.isnan(ears_c1(x, min_baseline_days=6).statistic[0, 8])


def test_bad_input_is_refused_with_the_field() -> None:
    with pytest.raises(InputError) as info:
        ears_c1([[1, 2, -3, 4], [1, 2, 3, np.inf]])
    assert {(p.field, p.row) for p in info.value.problems} == {("counts", 1), ("counts", 2)}
    with pytest.raises(InputError) as info:
        ears_c2([1, 2, 3], baseline_days=2, lag_days=-1, min_sigma=0)
    assert {p.field for p in info.value.problems} == {"baseline_days", "lag_days", "min_sigma"}
    with pytest.raises(InputError) as info:
        cusum([1, 2, 3], h=-1)
    assert info.value.problems[0].field == "h"
    with pytest.raises(InputError):
        ears_c1(np.zeros((2, 2, 2)))


def test_daily_counts_from_long_reports_and_dated_alerts() -> None:
    dates = pd.date_range("2026-03-01", periods=8, freq="D")
    reports = pd.DataFrame({
        "facility": ["140725001"] * 8 + ["140725002"] * 7,
        "day": list(dates) + list(dates[:6]) + [dates[7]],  # 002 misses 8 March
        "fever_patients": WEEK + [8] + [2] * 7,
    })
    laid_out = daily_counts(reports, series="facility", date="day", count="fever_patients")
    assert laid_out.series == ["140725001", "140725002"]
    assert list(laid_out.dates) == list(dates)
    assert np.isnan(laid_out.counts[1, 6])
    result = ears_c1(laid_out.counts)
    table = result.alert_table(series_ids=laid_out.series, dates=laid_out.dates)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["series"], row["day"]) == ("140725001", dates[7])
    assert (row["baseline_from"], row["baseline_to"]) == (dates[0], dates[6])
    assert (row["count"], row["expected"], row["statistic"]) == (8, 4, 4)


def test_daily_counts_refuses_bad_reports() -> None:
    reports = pd.DataFrame({"site": ["A", "A", "B"], "day": ["2026-01-01", "2026-01-01", "x"],
                            "n": [1, "two", 3]})
    with pytest.raises(InputError) as info:
        daily_counts(reports, series="site", date="day", count="n")
    assert {(p.field, p.row) for p in info.value.problems} == {
        ("day", 3), ("n", 2), ("day", 2)}
    with pytest.raises(InputError):
        daily_counts(reports, series="site", date="date", count="n")
