"""Pregnancy risk grading throughput: vectorised batch vs the per-pregnancy function.

Run: ``.venv/bin/python benchmarks/bench_grading.py [--small]``. Prints JSON: pregnancies per
second of ``grade_batch`` (NumPy, all at once) next to its peer, a Python loop calling
``grade`` for each pregnancy, measured in the same run on the same synthetic cohort; the
ratio; the peak memory of each (each peer runs in its own subprocess so ``ru_maxrss`` is its
own); and a check that both give the same colours on the looped pregnancies.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from tiercare.maternal.criteria import load_table
from tiercare.maternal.grading import grade, grade_batch


CHUNK = 10_000


def cohort(n: int) -> pd.DataFrame:
    """A synthetic cohort (not real data); its first rows do not depend on ``n``."""
    chunks = [_chunk(CHUNK, seed=start // CHUNK) for start in range(0, n, CHUNK)]
    return pd.concat(chunks, ignore_index=True).head(n)


def _chunk(n: int, *, seed: int) -> pd.DataFrame:
    """``n`` synthetic pregnancies with a plausible mix of findings."""
    rng = np.random.default_rng([7, seed])
    table = load_table()
    codes = np.array(sorted(c.code for c in table.criteria
                            if c.assertable and not c.rules and not c.requires))

    def sometimes(values: np.ndarray, share: float) -> np.ndarray:
        return np.where(rng.random(n) < share, values, np.nan)

    surgeries = rng.choice([0, 1, 2, 3], size=n, p=[0.7, 0.24, 0.05, 0.01])
    frame = pd.DataFrame({
        "age": np.clip(rng.normal(28.5, 5.5, n), 15, 52).round(1),
        "height_cm": np.clip(rng.normal(160, 6, n), 140, 185).round(1),
        "weight_kg": np.clip(rng.normal(56, 9, n), 38, 110).round(1),
        "hb_g_l": sometimes(np.clip(rng.normal(118, 14, n), 35, 170).round(0), 0.9),
        "platelets_1e9_l": sometimes(np.clip(rng.normal(215, 60, n), 10, 500).round(0), 0.8),
        "fetuses": rng.choice([1, 2, 3], size=n, p=[0.985, 0.014, 0.001]),
        "previous_uterine_surgeries": surgeries,
        "months_since_uterine_surgery": np.where(surgeries > 0,
                                                 rng.uniform(6, 120, n).round(0), np.nan),
        "abortions": np.minimum(rng.poisson(0.5, n), 8),
        "pulmonary_artery_pressure_mmhg": sometimes(rng.uniform(15, 70, n).round(0), 0.02),
        "creatinine_ratio_to_uln": sometimes(rng.uniform(0.5, 2.0, n).round(2), 0.05),
    })
    counts = rng.poisson(0.12, n)
    frame["conditions"] = [list(rng.choice(codes, size=k, replace=False)) for k in counts]
    return frame


def as_findings(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Row dictionaries without the missing values, as the API would receive them."""
    records = []
    for row in frame.to_dict(orient="records"):
        records.append({k: (v if k == "conditions" else float(v))
                        for k, v in row.items() if k == "conditions" or pd.notna(v)})
    return records


def peak_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(kind: str, n: int) -> dict[str, Any]:
    """Time one peer on ``n`` pregnancies, in this process."""
    frame = cohort(n)
    table = load_table()
    if kind == "batch":
        grade_batch(frame.head(100), table=table)  # warm-up
        start = time.perf_counter()
        graded = grade_batch(frame, table=table)
        seconds = time.perf_counter() - start
        colours = graded.colour.tolist()
    else:
        findings = as_findings(frame)
        grade(findings[0], table=table)
        start = time.perf_counter()
        colours = [grade(f, table=table).colour for f in findings]
        seconds = time.perf_counter() - start
    mix = pd.Series(colours).value_counts(normalize=True).round(4).to_dict()
    return {"pregnancies": n, "seconds": round(seconds, 4),
            "pregnancies_per_second": round(n / seconds), "peak_rss_mib": round(peak_mib(), 1),
            "colour_mix": mix, "colours_head": colours[:2000]}


def run(kind: str, n: int) -> dict[str, Any]:
    """Run a peer in a fresh subprocess (separate peak memory)."""
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--n", str(n)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    """Parse arguments, run both peers, print the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="a quick run")
    parser.add_argument("--worker", choices=["batch", "loop"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.stdout.write(json.dumps(worker(args.worker, args.n)))
        return
    n_batch, n_loop = (20_000, 5_000) if args.small else (1_000_000, 100_000)
    batch = run("batch", n_batch)
    loop = run("loop", n_loop)
    agree = batch["colours_head"][: len(loop["colours_head"])] == loop["colours_head"]
    for peer in (batch, loop):
        del peer["colours_head"]
    print(json.dumps({
        "benchmark": "maternal risk grading",
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "grade_batch": batch,
        "peer_grade_loop": loop,
        "speedup_batch_over_loop": round(batch["pregnancies_per_second"]
                                         / loop["pregnancies_per_second"], 1),
        "same_colours_on_first_2000": agree,
    }, indent=2))


if __name__ == "__main__":
    main()
