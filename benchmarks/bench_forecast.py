"""Benchmark: immunisation forecast of a whole population in one batch vs the per-child function.

Usage::

    .venv/bin/python benchmarks/bench_forecast.py [--small] [--children N] [--loop-sample M]

A synthetic population with realistic histories is generated with a fixed seed: children aged
0–7 years, each programme dose given at its schedule age plus a delay (60 % within a week, 30 %
within about two months, 10 % months late), 2 % chance per dose of dropping out of a series,
1 % of doses given a few days too early (invalid), JE-I / HepA-I chosen by 15 % / 20 %,
HBsAg-positive mothers 6 %, birth weights N(3,300 g, 450 g), tuberculin tests for 2 %, self-paid
varicella and influenza for some. The schedule ages come from the version in force at birth.

Two measures, each in its own subprocess (so that peak memory is separate), on the same
population; peak RSS is reset just before each measure (Linux ``/proc/self/clear_refs``) so that
``peak_rss_mib`` is the peak during the measure and ``peak_rss_increase_mib`` its increase:

* ``batch``: :func:`forecast_batch` for all children in one call (from the encoded arrays);
* ``per_child_loop``: :func:`forecast` called child by child on the first ``M`` children (20,000
  by default), the rate extrapolated to the whole population (stated in the output).

Building ``Child`` objects and encoding vaccine codes are excluded from both timings. The batch
part also checks that its answers equal the per-child function on 1,000 children.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import gc
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from tiercare.immunization.batch import (
    NO_DATE,
    Population,
    forecast_batch,
    from_days,
    to_days,
)
from tiercare.immunization.forecast import (
    INVALID_REASONS,
    STATUSES,
    Child,
    HistoryDose,
    TbTest,
    forecast,
)
from tiercare.immunization.schedule import ScheduleVersion, default_schedules

AS_OF = dt.date(2026, 6, 30)


def add_months(days: np.ndarray, months: int) -> np.ndarray:
    """Calendar-month addition on int day arrays (day clamped to the month end)."""
    d = days.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day0 = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + months
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64)
    return target.astype("datetime64[D]").astype(np.int64) + np.minimum(day0, length - 1)


def delays(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.random(n)
    return np.where(kind < 0.6, rng.integers(0, 8, n),
                    np.where(kind < 0.9, rng.integers(7, 60, n),
                             rng.integers(60, 360, n))).astype(np.int64)


def generate(n: int, seed: int) -> Population:
    """A synthetic population of ``n`` children (see the module docstring)."""
    rng = np.random.default_rng(seed)
    book = default_schedules()
    codes = {c: i for i, c in enumerate(book.vaccine_codes)}
    as_of = to_days(AS_OF)
    birth = as_of - rng.integers(0, 7 * 365, n)
    version_of = np.array([book.versions.index(book.in_force(from_days(int(b))))
                           for b in np.unique(birth)])
    child_version = version_of[np.searchsorted(np.unique(birth), birth)]
    je_inactivated = rng.random(n) < 0.15
    hepa_inactivated = rng.random(n) < 0.20
    rows_child: list[np.ndarray] = []
    rows_code: list[np.ndarray] = []
    rows_date: list[np.ndarray] = []
    children = np.arange(n)
    for v, version in enumerate(book.versions):
        group = children[child_version == v]
        _add_series(rng, version, group, birth, je_inactivated, hepa_inactivated, codes,
                    rows_child, rows_code, rows_date)
    child = np.concatenate(rows_child)
    code = np.concatenate(rows_code)
    date = np.concatenate(rows_date)
    keep = date <= as_of
    early = rng.random(keep.sum()) < 0.01
    date_kept = date[keep] - np.where(early, rng.integers(3, 21, early.size), 0)
    date_kept = np.maximum(date_kept, birth[child[keep]])
    order = np.lexsort((date_kept, child[keep]))
    tested = rng.random(n) < 0.02
    test_date = np.where(tested, np.minimum(as_of, birth + rng.integers(90, 1400, n)), NO_DATE)
    hbsag = rng.choice([1, 2, 3], size=n, p=[0.06, 0.93, 0.01])  # positive, negative, unknown
    return Population(
        birth=birth.astype(np.int32),
        sex=rng.integers(1, 3, n).astype(np.int8),
        mother_hbsag=hbsag.astype(np.int8),
        birth_weight_g=rng.normal(3300, 450, n).clip(900, 5500).astype(np.float32),
        tb_test_date=test_date.astype(np.int32),
        tb_test_result=np.where(tested, rng.choice([1, 2], n, p=[0.95, 0.05]), 0).astype(np.int8),
        dose_child=child[keep][order].astype(np.int32),
        dose_vaccine=code[keep][order].astype(np.int16),
        dose_date=date_kept[order].astype(np.int32),
    )


def _add_series(rng: np.random.Generator, version: ScheduleVersion, group: np.ndarray,
                birth: np.ndarray, je_i: np.ndarray, hepa_i: np.ndarray, codes: dict[str, int],
                rows_child: list[np.ndarray], rows_code: list[np.ndarray],
                rows_date: list[np.ndarray]) -> None:
    uptake = {"VarV": 0.4, "Flu": 0.1, "HPV": 0.0, "Rabies": 0.01}
    for series in version.series:
        regimen = series.regimens[-1]
        if series.alternatives == "JE":
            members = group[je_i[group] == (series.id == "JE-I")]
        elif series.alternatives == "HepA":
            members = group[hepa_i[group] == (series.id == "HepA-I")]
        else:
            members = group
        if not series.programme:
            members = members[rng.random(members.size) < uptake.get(series.id, 0.0)]
        active = np.ones(members.size, dtype=bool)
        previous = np.zeros(members.size, dtype=np.int64)
        for k, dose in enumerate(regimen.doses):
            active &= rng.random(members.size) > 0.02
            planned = add_months(birth[members], dose.min_age.months) + dose.min_age.days
            if series.on_demand:
                planned = birth[members] + rng.integers(365, 2000, members.size)
            if k and dose.min_interval is not None:
                planned = np.maximum(planned, add_months(previous, dose.min_interval.months)
                                     + dose.min_interval.days)
            given = planned + delays(rng, members.size)
            previous = given
            rows_child.append(members[active])
            rows_code.append(np.full(active.sum(), codes[dose.products[0]]))
            rows_date.append(given[active])


def children_of(pop: Population, count: int) -> list[Child]:
    """``Child`` objects of the first ``count`` children."""
    stop = int(np.searchsorted(pop.dose_child, count))
    book = default_schedules()
    histories: list[list[HistoryDose]] = [[] for _ in range(count)]
    for c, v, d in zip(pop.dose_child[:stop], pop.dose_vaccine[:stop], pop.dose_date[:stop],
                       strict=True):
        histories[c].append(HistoryDose(book.vaccine_codes[v], from_days(int(d))))
    sexes, results = ("F", "M"), ("negative", "positive")
    hbsag = ("positive", "negative", "unknown")
    return [Child(birth_date=from_days(int(pop.birth[i])), history=tuple(histories[i]),
                  sex=sexes[pop.sex[i] - 1], mother_hbsag=hbsag[pop.mother_hbsag[i] - 1],
                  birth_weight_g=float(pop.birth_weight_g[i]),
                  tb_test=(TbTest(from_days(int(pop.tb_test_date[i])),
                                  results[pop.tb_test_result[i] - 1])
                           if pop.tb_test_result[i] else None)) for i in range(count)]


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> float:
    """Return freed heap to the system, reset the peak-RSS mark (Linux ``clear_refs``) and
    return the current RSS in MiB."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass
    return _status_mib("VmRSS") or peak_mib()


def peak_mib() -> float:
    """Peak RSS in MiB since the last :func:`reset_peak` (whole process if it cannot reset)."""
    return _status_mib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_batch(n: int, seed: int) -> dict[str, Any]:
    pop = generate(n, seed)
    before = reset_peak()
    start = time.perf_counter()
    result = forecast_batch(pop, as_of=AS_OF)
    seconds = time.perf_counter() - start
    peak = peak_mib()
    check = min(1000, n)
    offsets = np.searchsorted(pop.dose_child, np.arange(check + 1))
    mismatches = 0
    for i, child in enumerate(children_of(pop, check)):
        one = forecast(child, as_of=AS_OF)
        got = [(int(result.next_dose[i, j]) or None, STATUSES[result.status[i, j]],
                from_days(result.earliest[i, j]), from_days(result.overdue_after[i, j]))
               for j in range(len(result.series))]
        mine = (result.invalid_row >= offsets[i]) & (result.invalid_row < offsets[i + 1])
        bad = [(int(r - offsets[i]), INVALID_REASONS[x])
               for r, x in zip(result.invalid_row[mine], result.invalid_reason[mine],
                               strict=True)]
        mismatches += (got != [(s.next_dose, s.status, s.earliest, s.overdue_after)
                               for s in one.series]
                       or bad != [(d.index, d.reason) for d in one.invalid_doses])
    statuses = {name: int((result.status == i).sum()) for i, name in enumerate(STATUSES)}
    return {"children": n, "history_rows": int(pop.dose_date.size), "seconds": round(seconds, 3),
            "children_per_second": round(n / seconds), "peak_rss_mib": round(peak, 1),
            "peak_rss_increase_mib": round(peak - before, 1),
            "invalid_doses": int(result.invalid_row.size), "statuses": statuses,
            "checked_against_per_child": check, "mismatches": int(mismatches)}


def run_loop(n: int, sample: int, seed: int) -> dict[str, Any]:
    pop = generate(n, seed)
    kids = children_of(pop, min(sample, n))
    forecast(kids[0], as_of=AS_OF)  # load the schedule outside the timing
    del pop
    before = reset_peak()
    start = time.perf_counter()
    for child in kids:
        forecast(child, as_of=AS_OF)
    seconds = time.perf_counter() - start
    peak = peak_mib()
    rate = len(kids) / seconds
    return {"children_timed": len(kids), "seconds": round(seconds, 3),
            "children_per_second": round(rate),
            "extrapolated_seconds_for_all": round(n / rate, 1),
            "note": f"rate measured on the first {len(kids)} children, extrapolated to {n}",
            "peak_rss_mib": round(peak, 1), "peak_rss_increase_mib": round(peak - before, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="50,000 children, 2,000 in the loop")
    parser.add_argument("--children", type=int)
    parser.add_argument("--loop-sample", type=int)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--part", choices=["batch", "loop"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.children or (50_000 if args.small else 1_000_000)
    sample = args.loop_sample or (2_000 if args.small else 20_000)
    if args.part == "batch":
        print(json.dumps(run_batch(n, args.seed)))
        return
    if args.part == "loop":
        print(json.dumps(run_loop(n, sample, args.seed)))
        return
    common = [sys.executable, __file__, "--children", str(n), "--loop-sample", str(sample),
              "--seed", str(args.seed)]
    parts = {}
    for part in ("batch", "loop"):
        done = subprocess.run([*common, "--part", part], capture_output=True, text=True,
                              check=True)
        parts[part] = json.loads(done.stdout)
    batch, loop = parts["batch"], parts["loop"]
    print(json.dumps({
        "benchmark": "immunization forecast", "as_of": AS_OF.isoformat(), "children": n,
        "batch": batch, "per_child_loop": loop,
        "speedup_batch_vs_loop": round(batch["children_per_second"]
                                       / loop["children_per_second"], 1),
        "target_speedup": 20,
    }, indent=2))


if __name__ == "__main__":
    main()
