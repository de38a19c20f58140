"""Benchmark tiercare.planning.locate against spopt + HiGHS (through PuLP).

Run: ``.venv/bin/python benchmarks/bench_locate.py [--small] [--only NAME ...]``; prints JSON.

Instances are synthetic but shaped like a county/province: 40 % of the places (and most of the
population) around towns, the rest spread out, candidate sites drawn from the places; travel
time = straight-line distance × detour 1.3 / 40 km/h × local road-quality factors at both ends
(log-normal, σ = 0.15) × a little pair noise (σ = 0.05), in minutes. Each measure is
taken in a fresh subprocess so that peak memory (ru_maxrss) belongs to one solver.

Cases (full size; ``--small`` divides sizes so the whole run takes about a minute):

``mid``        2,000 × 200, p = 20, dense: p-median and MCLP (threshold 30 min) vs spopt.
``pmedian-large``  20,000 × 2,000, p = 100, sparse 60-min cutoff; spopt is attempted under a
               memory cap and its model size is estimated from the ``mid`` run.
``mclp-large`` 100,000 × 5,000, 30-min threshold, p = 200, sparse.
``mclp-lp-gap`` (only when named) the same instance family at a quarter of the size
               (25,000 × 1,250, p = 50): HiGHS's exact LP relaxation, the best coverage found
               by five long iterated-local-search restarts, and tiercare's 60-s result, to show
               how far the LP bound itself lies above the best known solution; then windows
               around tiercare's 60-s solution re-optimised exactly with HiGHS (one and two
               hops of shared demand, 120 s each), which would find better solutions if the
               incumbent rather than the bound made the gap.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

SPEED_KMH = 40.0
DETOUR = 1.3
NOISE = 0.15


def make_points(n: int, m: int, *, side_km: float, seed: int) -> tuple[np.ndarray, ...]:
    """Demand places (40 % around towns, 60 % spread out), populations, candidate sites.

    Town places are more populous (log-normal, scaled by town size); candidate sites are a
    random subset of the places, slightly displaced.
    """
    rng = np.random.default_rng(seed)
    n_towns = max(5, n // 400)
    towns = rng.uniform(0, side_km, size=(n_towns, 2))
    size = rng.pareto(1.2, n_towns) + 1.0
    share = size / size.sum()
    n_urban = int(0.4 * n)
    which = rng.choice(n_towns, size=n_urban, p=share)
    spread = 3.0 + 5.0 * np.sqrt(size[which] / size.max())
    urban = towns[which] + rng.normal(0, 1, (n_urban, 2)) * spread[:, None]
    rural = rng.uniform(0, side_km, size=(n - n_urban, 2))
    demand = np.clip(np.vstack([urban, rural]), 0, side_km)
    weights = np.round(np.concatenate([rng.lognormal(7.0, 0.8, n_urban),
                                       rng.lognormal(5.5, 0.7, n - n_urban)]))
    cand = demand[rng.choice(n, size=m, replace=False)] + rng.normal(0, 0.3, (m, 2))
    return demand, weights, cand


def minutes(dist_km: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int, m: int,
            rng: np.random.Generator) -> np.ndarray:
    """Travel minutes: local road quality at both ends (log-normal) and a little pair noise."""
    slow_d = rng.lognormal(0.0, NOISE, n)
    slow_c = rng.lognormal(0.0, NOISE, m)
    pair = rng.lognormal(0.0, NOISE / 3, dist_km.shape)
    return dist_km * DETOUR / SPEED_KMH * 60.0 * np.sqrt(slow_d[rows] * slow_c[cols]) * pair


def dense_instance(n: int, m: int, *, side_km: float, seed: int) -> tuple[np.ndarray, ...]:
    demand, weights, cand = make_points(n, m, side_km=side_km, seed=seed)
    rng = np.random.default_rng(seed + 1)
    dist = np.hypot(demand[:, None, 0] - cand[None, :, 0], demand[:, None, 1] - cand[None, :, 1])
    rows, cols = np.indices(dist.shape)
    return minutes(dist, rows, cols, n, m, rng), weights


def sparse_instance(n: int, m: int, *, side_km: float, cutoff_min: float,
                    seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    demand, weights, cand = make_points(n, m, side_km=side_km, seed=seed)
    rng = np.random.default_rng(seed + 1)
    radius = cutoff_min / 60.0 * SPEED_KMH / DETOUR * np.exp(3 * NOISE)
    pairs = cKDTree(demand).sparse_distance_matrix(cKDTree(cand), radius,
                                                   output_type="coo_matrix")
    t = minutes(pairs.data, pairs.row, pairs.col, n, m, rng)
    keep = t <= cutoff_min
    mat = sp.csr_matrix((t[keep], (pairs.row[keep], pairs.col[keep])), shape=(n, m))
    return mat, weights


# ----------------------------------------------------------------- measured workers
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one instance and solve it with one tool (runs in its own process)."""
    if spec["kind"] == "dense":
        costs, w = dense_instance(spec["n"], spec["m"], side_km=spec["side"], seed=spec["seed"])
    else:
        costs, w = sparse_instance(spec["n"], spec["m"], side_km=spec["side"],
                                   cutoff_min=spec["cutoff"], seed=spec["seed"])
    base = _peak_mb()
    out: dict[str, Any] = {"instance_peak_mb": round(base, 1)}
    if spec["kind"] != "dense":
        out["nnz"] = int(costs.nnz)
    if spec["tool"] == "lp-study":
        out.update(_lp_study(costs, w, spec))
    elif spec["tool"] == "window-study":
        out.update(_window_study(costs, w, spec))
    elif spec["tool"] == "tiercare":
        from tiercare.planning.locate import MCLP, PMedian

        t0 = time.perf_counter()
        if spec["model"] == "pmedian":
            model = PMedian.from_cost_matrix(costs, w, p=spec["p"])
        else:
            model = MCLP.from_cost_matrix(costs, w, threshold=spec["threshold"], p=spec["p"])
        # the time limit covers building the model too (targets are wall-clock from the matrix)
        res = model.solve(time_limit=max(spec["time_limit"] - (time.perf_counter() - t0), 1.0),
                          gap=spec["gap"], seed=0)
        out.update(seconds=round(time.perf_counter() - t0, 3), objective=res.objective,
                   bound=res.bound, gap=res.gap, status=res.status, method=res.method)
        if res.covered_weight is not None:
            out["covered_share"] = round(res.covered_weight / float(w.sum()), 5)
    else:
        import pulp
        from spopt.locate import MCLP as SMCLP
        from spopt.locate import PMedian as SPMedian

        dense = costs.toarray() if sp.issparse(costs) else costs
        if sp.issparse(costs):
            dense[dense == 0] = 1e6  # spopt has no notion of unreachable pairs
        t0 = time.perf_counter()
        if spec["model"] == "pmedian":
            model = SPMedian.from_cost_matrix(dense, w, spec["p"])
        else:
            model = SMCLP.from_cost_matrix(dense, w, spec["threshold"], spec["p"])
        built = time.perf_counter() - t0
        model.solve(pulp.HiGHS(msg=False, timeLimit=spec["time_limit"]))
        out.update(seconds=round(time.perf_counter() - t0, 3), build_seconds=round(built, 3),
                   objective=float(model.problem.objective.value()),
                   status=pulp.LpStatus[model.problem.status],
                   variables=len(model.problem.variables()))
    out["peak_mb"] = round(_peak_mb(), 1)
    out["solver_mb"] = round(out["peak_mb"] - base, 1)
    return out


def _lp_study(costs: sp.csr_matrix, w: np.ndarray, spec: dict[str, Any]) -> dict[str, Any]:
    """LP relaxation value (HiGHS, exact) against the best coverage from long restarts."""
    from tiercare.planning import _locate_cover as cover
    from tiercare.planning.locate import MCLP

    m, p = costs.shape[1], spec["p"]
    inst = MCLP.from_cost_matrix(costs, w, threshold=spec["threshold"], p=p).instance
    g = cover.make_groups(inst.costs, inst.weights, radius=spec["threshold"],
                          open_=inst.fixed, usable=~inst.forbidden)
    free = np.ones(m, dtype=bool)
    t0 = time.perf_counter()
    _, lp = cover.cover_mip(g, m=m, free=free, objective="max", count=p, site_cost=None,
                            budget=None, time_limit=1800, gap=0.0, seed=0, start=None,
                            relax=True, options={"simplex_strategy": 4, "presolve": "off"})
    lp_seconds = time.perf_counter() - t0
    # the LP's duals as Lagrangian multipliers: a certified bound whatever HiGHS's accuracy
    certified, _ = cover.lagrangian_value(g, np.abs(lp.row_dual[:g.size]), free=free, k=p)
    rng = np.random.default_rng(spec["seed"])
    columns = cover.swap_columns(g, m)
    restarts = []
    for r in range(5):
        start = np.zeros(m, dtype=bool)
        start[rng.choice(m, p, replace=False)] = True
        search = cover.SwapSearch(g, start, m=m, free=free, columns=columns)
        search.descend(deadline=time.perf_counter() + 60)
        search.kick(deadline=time.perf_counter() + spec["restart_seconds"], seed=r,
                    patience=10**9)
        restarts.append(search.value)
    best = max(restarts)
    return {"lp_value": lp.objective, "lp_bound_certified": certified, "lp_seconds": round(lp_seconds, 1),
            "restart_values": restarts, "best_known": best,
            "lp_above_best_known": round((certified - best) / best, 5)}


def _window_study(costs: sp.csr_matrix, w: np.ndarray, spec: dict[str, Any]) -> dict[str, Any]:
    """Re-optimise windows of tiercare's 60-s solution exactly, to see how far it is from optimal.

    A window is an open site and every candidate sharing covered demand with it (one hop), or
    also with those (two hops); everything outside keeps its state, the window keeps its number
    of open sites, and HiGHS solves the window's MIP. An improvement would show that the
    incumbent, not the bound, makes the gap.
    """
    from tiercare.planning import _locate_cover as cover
    from tiercare.planning.locate import MCLP

    m, p, threshold = costs.shape[1], spec["p"], spec["threshold"]
    model = MCLP.from_cost_matrix(costs, w, threshold=threshold, p=p)
    res = model.solve(time_limit=spec["time_limit"], gap=spec["gap"], seed=0)
    inst = model.instance
    g = cover.make_groups(inst.costs, inst.weights, radius=threshold, open_=inst.fixed,
                          usable=~inst.forbidden)
    chosen = np.zeros(m, dtype=bool)
    chosen[list(res.selected)] = True
    value = cover.covered_weight(g, chosen)
    member = sp.csr_matrix((np.ones(g.indices.size), (g.entry_group(), g.indices)),
                           shape=(g.size, m))
    shares = (member.T @ member).tocsr()
    rng = np.random.default_rng(spec["seed"])
    phases = []
    for hops in (1, 2):
        t0, windows, solved, improved = time.perf_counter(), 0, 0, 0
        while time.perf_counter() - t0 < spec["window_seconds"]:
            window = np.zeros(m, dtype=bool)
            window[rng.choice(np.flatnonzero(chosen))] = True
            for _ in range(hops):
                window[shares[np.flatnonzero(window)].indices] = True
            reduced = cover.restrict(g, open_=chosen & ~window, closed=~window & ~chosen, m=m)
            best, out = cover.cover_mip(reduced, m=m, free=window.copy(), objective="max",
                                        count=int((chosen & window).sum()), site_cost=None,
                                        budget=None, time_limit=30.0, gap=0.0, seed=0,
                                        start=chosen & window)
            windows += 1
            solved += out.bound <= out.objective + 1e-6 * max(abs(out.objective), 1.0)
            if best is None:
                continue
            candidate = (chosen & ~window) | best
            new = cover.covered_weight(g, candidate)
            if new > value + 1e-6:
                chosen, value, improved = candidate, new, improved + 1
        phases.append({"hops": hops, "windows": windows, "solved_to_optimality": int(solved),
                       "improved": improved, "value_after": value})
    return {"tiercare_objective": res.objective, "tiercare_bound": res.bound,
            "window_phases": phases, "gap_after_windows": round(res.bound / value - 1, 5)}


def run(spec: dict[str, Any], *, timeout: float, mem_cap_gb: float | None = None,
        ) -> dict[str, Any]:
    """Run :func:`worker` in a subprocess (optionally under an address-space cap)."""
    code = ("import json,sys,resource;"
            + (f"resource.setrlimit(resource.RLIMIT_AS,({int(mem_cap_gb * 2**30)},"
               f"{int(mem_cap_gb * 2**30)}));" if mem_cap_gb else "")
            + f"sys.path.insert(0,{str(Path(__file__).parent)!r});"
            + "import bench_locate as b;print(json.dumps(b.worker(json.loads(sys.argv[1]))))")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"no answer within {timeout:.0f} s (killed)",
                "wall_seconds": round(time.perf_counter() - t0, 1)}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"failed": last[:300], "returncode": proc.returncode,
                "wall_seconds": round(time.perf_counter() - t0, 1)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(ours: dict[str, Any], peer: dict[str, Any], *, maximize: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"tiercare": ours, "spopt_highs": peer}
    if "seconds" in ours and "seconds" in peer:
        out["speedup"] = round(peer["seconds"] / max(ours["seconds"], 1e-9), 2)
        out["memory_ratio"] = round(peer["peak_mb"] / max(ours["peak_mb"], 1e-9), 2)
        diff = ours["objective"] - peer["objective"]
        out["objective_rel_diff"] = abs(diff) / max(abs(peer["objective"]), 1e-12)
        out["same_objective"] = out["objective_rel_diff"] <= 1e-6
        out["tiercare_not_worse"] = (diff >= -1e-6 * abs(peer["objective"]) if maximize
                                     else diff <= 1e-6 * abs(peer["objective"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", action="store_true", help="reduced sizes (about a minute)")
    ap.add_argument("--peer-time-limit", type=float, default=600.0,
                    help="HiGHS time limit given to spopt on the mid-size cases (seconds)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="cases to run: mid-pmedian, mid-mclp, pmedian-large, mclp-large "
                         "(default) and mclp-lp-gap (only when named)")
    args = ap.parse_args()
    s = 10 if args.small else 1
    only = set(args.only or ["mid-pmedian", "mid-mclp", "pmedian-large", "mclp-large"])
    report: dict[str, Any] = {"small": args.small, "python": sys.version.split()[0]}
    mid_peer_mb_per_var = None
    n, m, p = (400, 40, 5) if args.small else (2000, 200, 20)
    for model in ("pmedian", "mclp"):
        if f"mid-{model}" in only:
            spec = {"kind": "dense", "n": n, "m": m, "p": p, "side": 120.0, "seed": 11,
                    "model": model, "threshold": 30.0, "time_limit": args.peer_time_limit,
                    "gap": 0.0}
            ours = run({**spec, "tool": "tiercare"}, timeout=900)
            peer = run({**spec, "tool": "spopt"}, timeout=args.peer_time_limit + 300)
            key = f"mid_{model}"
            report[key] = {"size": f"{n} x {m}, p={p}", **compare(ours, peer,
                                                                  maximize=model == "mclp")}
            if model == "pmedian" and "variables" in peer:
                mid_peer_mb_per_var = peer["solver_mb"] / peer["variables"]
    if "pmedian-large" in only:
        n, m, p = 20000 // s, 2000 // s, 100 // s
        spec = {"kind": "sparse", "n": n, "m": m, "p": p, "side": 250.0 / np.sqrt(s),
                "cutoff": 60.0, "seed": 21, "model": "pmedian", "time_limit": 60.0,
                "gap": 0.01}
        ours = run({**spec, "tool": "tiercare"}, timeout=300)
        entry: dict[str, Any] = {"size": f"{n} x {m}, p={p}, 60-min cutoff", "tiercare": ours,
                                 "target": "gap <= 1% certified within 60 s"}
        entry["met"] = bool(ours.get("gap", 1.0) <= 0.01 and ours.get("seconds", 1e9) <= 60.0)
        variables = n * m + m
        entry["spopt_model_variables"] = variables
        if mid_peer_mb_per_var is not None:
            # linear extrapolation of spopt's memory per model variable in the mid-size run
            entry["spopt_estimated_model_gb"] = round(mid_peer_mb_per_var * variables / 1024, 1)
        cap = 3.0
        entry["spopt_highs_attempt"] = {
            "memory_cap_gb": cap, "highs_time_limit_s": 60.0,
            **run({**spec, "tool": "spopt", "time_limit": 60.0},
                  timeout=120 if args.small else 300, mem_cap_gb=cap)}
        report["pmedian_large"] = entry
    if "mclp-large" in only:
        n, m, p = 100000 // s, 5000 // s, 200 // s
        spec = {"kind": "sparse", "n": n, "m": m, "p": p, "side": 400.0 / np.sqrt(s),
                "cutoff": 30.0, "seed": 31, "model": "mclp", "threshold": 30.0,
                "time_limit": 60.0, "gap": 0.001}
        ours = run({**spec, "tool": "tiercare"}, timeout=300)
        report["mclp_large"] = {
            "size": f"{n} x {m}, p={p}, 30-min threshold", "tiercare": ours,
            "target": "optimal or gap <= 0.1% within 60 s",
            "met": bool(ours.get("gap", 1.0) <= 0.001 and ours.get("seconds", 1e9) <= 60.0),
            "spopt_model_variables": n + m,
            "spopt_note": "spopt needs the dense n x m matrix (%.1f GB as float64) before "
                          "building its model" % (n * m * 8 / 2**30)}
    if "mclp-lp-gap" in only:
        n, m, p = 25000 // s, 1250 // s, 50 // s
        spec = {"kind": "sparse", "n": n, "m": m, "p": p, "side": 200.0 / np.sqrt(s),
                "cutoff": 30.0, "seed": 31, "model": "mclp", "threshold": 30.0,
                "time_limit": 60.0, "gap": 0.001, "restart_seconds": 40.0}
        ours = run({**spec, "tool": "tiercare"}, timeout=300)
        study = run({**spec, "tool": "lp-study"}, timeout=3000)
        windows = run({**spec, "tool": "window-study", "window_seconds": 120.0 / s},
                      timeout=1200)
        entry = {"size": f"{n} x {m}, p={p}, 30-min threshold", "tiercare": ours,
                 "lp_study": study, "window_study": windows}
        if "best_known" in study and "bound" in ours:
            entry["tiercare_bound_above_lp"] = round(
                ours["bound"] / study["lp_bound_certified"] - 1, 5)
            entry["tiercare_objective_below_best_known"] = round(
                1 - ours["objective"] / study["best_known"], 5)
        report["mclp_lp_gap"] = entry
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
