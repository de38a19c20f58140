"""Raster travel time: TierCare's engine against scikit-image's MCP_Geometric, same run.

Usage: ``.venv/bin/python benchmarks/bench_raster.py [--small]``

* isotropic, 8 neighbours, on a 4,000 x 4,000 land cover (1,000 x 1,000 with ``--small``):
  seconds of TierCare's ``cost_distance`` and of ``MCP_Geometric.find_costs`` on the same pace
  grid and sources, their ratio and the largest absolute difference (seconds);
* anisotropic (walking / bicycling / motorised cells on a DEM), 8 and 16 neighbours: seconds
  and seconds per million cells.

Each measure runs in its own subprocess so that its peak memory (``ru_maxrss``) is its own;
``seconds`` is wall time, ``cpu_seconds`` the process's CPU time (steadier on a shared machine);
``rss_before_mb`` is the peak before the timed call (interpreter, libraries and input grids,
loaded from files written by the parent) and ``run_memory_mb`` what the call added to it.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 20261123
SPEEDS_KMH = np.array([0.0, 2.0, 4.0, 5.0, 15.0, 40.0, 80.0])
CLASS_P = np.array([0.02, 0.2, 0.35, 0.2, 0.1, 0.08, 0.05])
MODES = np.array([1, 1, 1, 1, 2, 0, 0], dtype=np.int8)  # walking, bicycling, motorised
CELL = (100.0, 100.0)
N_SOURCES = 50


def make_inputs(n: int, folder: Path) -> None:
    """Write the pace (s/m), elevation (m), mode codes and sources of the test grid."""
    rng = np.random.default_rng(SEED)
    classes = rng.choice(len(SPEEDS_KMH), size=(n, n), p=CLASS_P)
    speed = SPEEDS_KMH[classes]
    pace = np.where(speed > 0, 3.6 / np.where(speed > 0, speed, 1.0), np.inf)
    np.save(folder / "pace.npy", pace)
    np.save(folder / "mode.npy", MODES[classes])
    del classes, speed
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    np.save(folder / "elevation.npy",
            800 + 400 * np.sin(xx / 97.0) * np.cos(yy / 131.0) + 0.05 * xx)
    del yy, xx
    passable = np.flatnonzero(np.isfinite(pace).ravel())
    picks = rng.choice(passable, size=N_SOURCES, replace=False)
    np.save(folder / "sources.npy", np.column_stack([picks // n, picks % n]))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(name: str, folder: Path) -> dict[str, object]:
    """Run one measure on the saved inputs; save its cost grid beside them."""
    pace = np.load(folder / "pace.npy")
    sources = [tuple(int(v) for v in rc) for rc in np.load(folder / "sources.npy")]
    report: dict[str, object] = {"name": name, "cells": int(pace.size)}
    if name == "mcp_geometric":
        from skimage.graph import MCP_Geometric

        report["rss_before_mb"] = peak_mb()
        start, cpu = time.perf_counter(), time.process_time()
        cost, _ = MCP_Geometric(pace, sampling=CELL).find_costs(sources)
        report["seconds"] = time.perf_counter() - start
        report["cpu_seconds"] = time.process_time() - cpu
    else:
        from tiercare.planning.raster import cost_distance

        anisotropic = name.startswith("anisotropic")
        neighbours = 16 if name.endswith("16") else 8
        elevation = np.load(folder / "elevation.npy") if anisotropic else None
        modes = np.load(folder / "mode.npy") if anisotropic else None
        start = time.perf_counter()
        cost_distance(pace[:8, :8], [(0, 0)])  # loads (or compiles) the kernel
        report["warmup_seconds"] = time.perf_counter() - start
        report["rss_before_mb"] = peak_mb()
        start, cpu = time.perf_counter(), time.process_time()
        cost, _ = cost_distance(pace, sources, cell_size=CELL, neighbours=neighbours,
                                anisotropic=anisotropic, elevation=elevation, mode=modes,
                                direction="towards")
        report["seconds"] = time.perf_counter() - start
        report["cpu_seconds"] = time.process_time() - cpu
    report["peak_rss_mb"] = peak_mb()
    report["run_memory_mb"] = report["peak_rss_mb"] - report["rss_before_mb"]  # type: ignore
    report["seconds_per_million_cells"] = report["seconds"] / (pace.size / 1e6)  # type: ignore
    np.save(folder / f"{name}.npy", cost)
    return report


def run_worker(name: str, folder: Path, size: int = 0) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--data", str(folder),
                           "--size", str(size)], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="1,000 x 1,000 cells")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "prepare":
        make_inputs(args.size, args.data)
        print("{}")
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.data)))
        return
    n = 1000 if args.small else 4000
    with tempfile.TemporaryDirectory() as tmpdir:
        # every step runs in a child process: Linux children inherit the parent's peak RSS,
        # so the parent never holds a grid
        tmp = Path(tmpdir)
        run_worker("prepare", tmp, n)
        ours = run_worker("isotropic", tmp)
        peer = run_worker("mcp_geometric", tmp)
        aniso8 = run_worker("anisotropic8", tmp)
        aniso16 = run_worker("anisotropic16", tmp)
        a, b = np.load(tmp / "isotropic.npy"), np.load(tmp / "mcp_geometric.npy")
        same_reach = bool(np.array_equal(np.isinf(a), np.isinf(b)))
        finite = np.isfinite(a) & np.isfinite(b)
        max_abs = float(np.max(np.abs(a[finite] - b[finite])))
        max_rel = float(np.max(np.abs(a[finite] - b[finite]) / np.maximum(b[finite], 1e-300)))
    result = {
        "grid": f"{n}x{n}", "cells": n * n, "sources": N_SOURCES, "cell_size_m": CELL,
        "isotropic": {
            "tiercare": ours, "peer_mcp_geometric": peer,
            "speedup_vs_mcp_geometric": peer["seconds"] / ours["seconds"],  # type: ignore
            "cpu_speedup_vs_mcp_geometric":
                peer["cpu_seconds"] / ours["cpu_seconds"],  # type: ignore
            "same_unreached_cells": same_reach, "max_abs_difference_s": max_abs,
            "max_rel_difference": max_rel},
        "anisotropic_8": aniso8,
        "anisotropic_16": aniso16,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
