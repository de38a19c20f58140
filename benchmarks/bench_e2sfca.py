"""E2SFCA with a 60-minute catchment: tiercare against PySAL ``access`` on the same costs.

Instance: 20,000 demand points and 2,000 facilities on a synthetic grid-like road network (see
``bench_access_network.road_grid``) travelled at non-motorised speeds (15/10/5 km/h by road
class), so that a 60-minute catchment holds a realistic share of the pairs. The sparse
facility x demand travel times come from ``tiercare.planning.network.travel_time_matrix``
(timed and reported on their own: ``access`` has no router and takes the cost table as input).

Both engines then compute the enhanced two-step floating catchment (Luo & Qi step weights 1,
0.68, 0.22 on 0-20, 20-40, 40-60 min) from the same costs, each in its own subprocess for its
own peak memory: ``tiercare.planning.access.enhanced_two_step_fca`` on the sparse matrix, and
``access.Access(...).enhanced_two_stage_fca`` on the long cost table (origin, dest, minutes).
The scores are compared (maximum absolute and relative difference).

Usage: ``.venv/bin/python benchmarks/bench_e2sfca.py [--small]`` (``--small``: 2,000 x 200).
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

from bench_access_network import random_points, road_grid

CATCHMENT = 60.0


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would carry the parent's peak
    across fork + exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _matrix(z: dict):  # noqa: ANN202
    import scipy.sparse as sp

    return sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))


def worker_tiercare(z: dict, out: Path) -> dict[str, object]:
    from tiercare.planning.access import enhanced_two_step_fca

    times = _matrix(z)
    loaded = _peak_mb()
    t = time.perf_counter()
    score = enhanced_two_step_fca(times, z["population"], z["supply"], catchment_min=CATCHMENT)
    seconds = time.perf_counter() - t
    np.save(out / "tiercare.npy", score)
    return {"seconds": seconds, "peak_rss_mb": _peak_mb(), "peak_rss_after_loading_mb": loaded}


def worker_access(z: dict, out: Path) -> dict[str, object]:
    import pandas as pd
    from access import Access, weights

    coo = _matrix(z).tocoo()
    n_dem, n_fac = len(z["population"]), len(z["supply"])
    cost = pd.DataFrame({"origin": coo.col, "dest": coo.row, "minutes": coo.data / 60.0})
    demand = pd.DataFrame({"did": np.arange(n_dem), "pop": z["population"]})
    supply = pd.DataFrame({"sid": np.arange(n_fac), "beds": z["supply"]})
    loaded = _peak_mb()
    t = time.perf_counter()
    model = Access(demand_df=demand, demand_index="did", demand_value="pop", supply_df=supply,
                   supply_index="sid", supply_value="beds", cost_df=cost, cost_origin="origin",
                   cost_dest="dest", cost_name="minutes")
    step = weights.step_fn({CATCHMENT / 3: 1.0, 2 * CATCHMENT / 3: 0.68, CATCHMENT: 0.22})
    res = model.enhanced_two_stage_fca(name="e2", max_cost=CATCHMENT, weight_fn=step)
    seconds = time.perf_counter() - t
    score = res["e2_beds"].reindex(np.arange(n_dem)).fillna(0.0).to_numpy()
    np.save(out / "access.npy", score)
    return {"seconds": seconds, "peak_rss_mb": _peak_mb(), "peak_rss_after_loading_mb": loaded}


WORKERS = {"tiercare": worker_tiercare, "access": worker_access}


def _run(name: str, data: Path, timeout: float) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--worker", name, "--data", str(data)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds_at_least": timeout}
    if proc.returncode != 0:
        return {"status": "failed", "stderr": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.rsplit("RESULT ", 1)[-1].strip())
    out["status"] = "ok"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="quick run on a small instance")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    if args.worker:
        with np.load(args.data) as npz:
            z = {k: npz[k] for k in npz.files}
        result = WORKERS[args.worker](z, args.data.parent)
        print("\nRESULT " + json.dumps(result), flush=True)
        return

    from tiercare.planning.network import Network, travel_time_matrix

    side, n_dem, n_fac = (120, 2_000, 200) if args.small else (400, 20_000, 2_000)
    g = road_grid(side, seed=0, speeds_kmh=(15.0, 10.0, 5.0))
    net = Network.from_arrays(g["xy"], u=g["u"], v=g["v"], time_uv=g["time_uv"],
                              time_vu=g["time_vu"], crs="EPSG:32650", mode="walking")
    demand = random_points(g["xy"], n_dem, seed=1)
    facilities = random_points(g["xy"], n_fac, seed=3)
    rng = np.random.default_rng(4)
    population = rng.integers(50, 3000, n_dem).astype(float)
    supply = rng.integers(1, 120, n_fac).astype(float)
    t = time.perf_counter()
    times = travel_time_matrix(net, facilities, demand, cutoff_s=CATCHMENT * 60.0,
                               direction="to_origins")
    matrix_seconds = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "instance.npz"
        np.savez(data, data=times.data, indices=times.indices, indptr=times.indptr,
                 shape=np.array(times.shape), population=population, supply=supply)
        results = {name: _run(name, data, args.timeout) for name in ("tiercare", "access")}
        same = None
        if all(r["status"] == "ok" for r in results.values()):
            ours, theirs = np.load(Path(tmp) / "tiercare.npy"), np.load(Path(tmp) / "access.npy")
            diff = np.abs(ours - theirs)
            same = {"max_abs_diff": float(diff.max()),
                    "max_rel_diff": float((diff / np.maximum(np.abs(theirs), 1e-300)).max()),
                    "equal_to_1e-9": bool(np.allclose(ours, theirs, rtol=1e-9, atol=1e-12))}
    ratio = None
    if results["tiercare"]["status"] == "ok":
        acc = results["access"]
        theirs_t = acc.get("seconds") or acc.get("seconds_at_least")
        ratio = {("access_over_tiercare" if acc["status"] == "ok"
                  else "access_over_tiercare_at_least"): theirs_t / results["tiercare"]["seconds"]}
    print(json.dumps({
        "benchmark": "E2SFCA, 60-min catchment, step weights 1/0.68/0.22",
        "instance": {"demand_points": n_dem, "facilities": n_fac, "road_vertices": side * side,
                     "pairs_within_catchment": int(times.nnz), "small": args.small},
        "tiercare_travel_time_matrix_seconds": matrix_seconds,
        "results": results, "ratios": ratio, "same_numbers": same,
        "targets": {"access_over_tiercare": ">= 20"},
    }, indent=2))


if __name__ == "__main__":
    main()
