"""Optimal objectives and valid bounds against brute-force enumeration on tiny instances."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercare.planning.locate import (
    LSCP,
    MCLP,
    LocateInfeasibleError,
    PCenter,
    PMedian,
    closure_losses,
)

# ------------------------------------------------------------------ brute force references


def _subsets(m: int, p: int, fixed: set[int], forbidden: set[int]):
    free = [j for j in range(m) if j not in fixed and j not in forbidden]
    for extra in itertools.combinations(free, p - len(fixed)):
        yield sorted(fixed | set(extra))


def _nearest(costs: np.ndarray, sites: list[int]) -> np.ndarray:
    return costs[:, sites].min(axis=1) if sites else np.full(costs.shape[0], np.inf)


def bf_pmedian(costs, w, p, fixed=(), forbidden=()):
    best = math.inf
    for s in _subsets(costs.shape[1], p, set(fixed), set(forbidden)):
        d = _nearest(costs, s)
        served = w > 0
        best = min(best, float(np.dot(w[served], d[served])) if np.isfinite(d[served]).all()
                   else math.inf)
    return best


def bf_pcenter(costs, w, p, fixed=(), forbidden=()):
    best = math.inf
    for s in _subsets(costs.shape[1], p, set(fixed), set(forbidden)):
        best = min(best, float(_nearest(costs, s)[w > 0].max()))
    return best


def bf_mclp(costs, w, t, p=None, fixed=(), forbidden=(), site_cost=None, budget=None):
    m = costs.shape[1]
    best = -math.inf
    limit = m if p is None else p
    for q in range(len(fixed), limit + 1):
        for s in _subsets(m, q, set(fixed), set(forbidden)):
            if budget is not None and sum(site_cost[j] for j in s if j not in fixed) > budget:
                continue
            best = max(best, float(w[_nearest(costs, s) <= t].sum()))
    return best


def bf_lscp(costs, w, t, fixed=(), forbidden=()):
    m = costs.shape[1]
    for q in range(len(fixed), m + 1):
        for s in _subsets(m, q, set(fixed), set(forbidden)):
            if (_nearest(costs, s)[w > 0] <= t).all():
                return q
    return math.inf


def bf_capacitated(costs, w, cap, *, model, p=None, t=math.inf):
    """Single-source capacitated models by enumerating every assignment."""
    n, m = costs.shape
    best = math.inf if model != "mclp" else -math.inf
    options = [[j for j in range(m) if costs[i, j] <= t] + ([-1] if model == "mclp" else [])
               for i in range(n)]
    for assign in itertools.product(*options):
        load = np.zeros(m)
        for i, j in enumerate(assign):
            if j >= 0:
                load[j] += w[i]
        if (load > cap + 1e-9).any():
            continue
        used = {j for j in assign if j >= 0}
        if model == "lscp":
            best = min(best, len(used))
        elif model == "pmedian":
            if len(used) <= p:
                best = min(best, sum(w[i] * costs[i, j] for i, j in enumerate(assign)))
        elif len(used) <= p:
            best = max(best, sum(w[i] for i, j in enumerate(assign) if j >= 0))
    return best


# ------------------------------------------------------------------ instances


def instance(seed: int, n: int = 12, m: int = 7, sparse_frac: float = 0.0):
    rng = np.random.default_rng(seed)
    xy_d = rng.uniform(0, 10, (n, 2))
    xy_c = rng.uniform(0, 10, (m, 2))
    costs = np.round(np.hypot(*(xy_d[:, None, :] - xy_c[None, :, :]).transpose(2, 0, 1)), 2)
    if sparse_frac:
        drop = rng.random((n, m)) < sparse_frac
        drop[np.arange(n), costs.argmin(axis=1)] = False
        costs[drop] = np.inf
    w = rng.integers(0, 20, n).astype(float)
    return costs, w


def check_consistent(result, costs, w, model: str) -> None:
    sel = list(result.selected)
    d = _nearest(costs, sel)
    if model == "pmedian":
        assert result.objective == pytest.approx(float(np.dot(w[w > 0], d[w > 0])))
    elif model == "pcenter":
        assert result.objective == pytest.approx(float(d[w > 0].max()))
    for i, j in result.assignment.items():
        assert j in result.selected
        assert costs[i, j] == pytest.approx(d[i])


SEEDS = range(8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [1, 2, 3])
def test_pmedian_bruteforce(seed: int, p: int) -> None:
    costs, w = instance(seed)
    opt = bf_pmedian(costs, w, p)
    res = PMedian.from_cost_matrix(costs, w, p=p).solve()
    assert res.objective == pytest.approx(opt)
    assert res.status == "optimal"
    check_consistent(res, costs, w, "pmedian")
    mip = PMedian.from_cost_matrix(costs, w, p=p).solve(method="mip")
    assert mip.objective == pytest.approx(opt)
    heur = PMedian.from_cost_matrix(costs, w, p=p).solve(method="heuristic")
    assert heur.bound <= opt + 1e-6 <= heur.objective + 2e-6


@pytest.mark.parametrize("seed", SEEDS)
def test_pmedian_sparse_fixed_forbidden(seed: int) -> None:
    costs, w = instance(seed, sparse_frac=0.4)
    fixed, forbidden = [seed % 7], [(seed + 3) % 7]
    opt = bf_pmedian(costs, w, 3, fixed, forbidden)
    matrix = sp.csr_matrix((costs[np.isfinite(costs)], np.nonzero(np.isfinite(costs))),
                           shape=costs.shape)
    if not math.isfinite(opt):
        with pytest.raises(LocateInfeasibleError):
            PMedian.from_cost_matrix(matrix, w, p=3, fixed=fixed, forbidden=forbidden).solve()
        return
    res = PMedian.from_cost_matrix(matrix, w, p=3, fixed=fixed, forbidden=forbidden).solve()
    assert res.objective == pytest.approx(opt)
    assert fixed[0] in res.selected and forbidden[0] not in res.selected
    dense = PMedian.from_cost_matrix(costs, w, p=3, fixed=fixed, forbidden=forbidden).solve()
    assert dense.objective == pytest.approx(opt)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [1, 2, 4])
def test_pcenter_bruteforce(seed: int, p: int) -> None:
    costs, w = instance(seed)
    res = PCenter.from_cost_matrix(costs, w, p=p).solve()
    assert res.objective == pytest.approx(bf_pcenter(costs, w, p))
    assert res.status == "optimal"
    assert len(res.selected) == p
    check_consistent(res, costs, w, "pcenter")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("t", "p"), [(2.0, 2), (3.5, 3), (5.0, 1)])
def test_mclp_bruteforce(seed: int, t: float, p: int) -> None:
    costs, w = instance(seed)
    opt = bf_mclp(costs, w, t, p)
    for method in ("auto", "mip", "heuristic"):
        res = MCLP.from_cost_matrix(costs, w, threshold=t, p=p).solve(method=method)
        assert res.bound >= opt - 1e-6
        assert res.objective <= opt + 1e-6
        assert res.covered_weight == pytest.approx(res.objective)
        assert len(res.selected) <= p
        if method != "heuristic":
            assert res.objective == pytest.approx(opt)


@pytest.mark.parametrize("seed", SEEDS)
def test_mclp_budget_and_fixed(seed: int) -> None:
    costs, w = instance(seed)
    site_cost = np.random.default_rng(seed).integers(1, 5, costs.shape[1]).astype(float)
    opt = bf_mclp(costs, w, 3.0, None, fixed=[1], site_cost=site_cost, budget=5.0)
    res = MCLP.from_cost_matrix(costs, w, threshold=3.0, fixed=[1], costs_per_site=site_cost,
                                budget=5.0).solve()
    assert res.objective == pytest.approx(opt)
    assert site_cost[[j for j in res.selected if j != 1]].sum() <= 5.0
    opt_p = bf_mclp(costs, w, 3.0, 3, fixed=[1], site_cost=site_cost, budget=5.0)
    res_p = MCLP.from_cost_matrix(costs, w, threshold=3.0, p=3, fixed=[1],
                                  costs_per_site=site_cost, budget=5.0).solve()
    assert res_p.objective == pytest.approx(opt_p)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("t", [2.5, 4.0])
def test_lscp_bruteforce(seed: int, t: float) -> None:
    costs, w = instance(seed)
    opt = bf_lscp(costs, w, t)
    if not math.isfinite(opt):
        with pytest.raises(LocateInfeasibleError) as info:
            LSCP.from_cost_matrix(costs, w, threshold=t).solve()
        lost = [i for i in range(len(w)) if w[i] > 0 and (costs[i] > t).all()]
        assert list(info.value.demand_ids) == lost
        return
    res = LSCP.from_cost_matrix(costs, w, threshold=t).solve()
    assert res.objective == opt
    assert len(res.selected) == opt
    assert (_nearest(costs, list(res.selected))[w > 0] <= t).all()


@pytest.mark.parametrize("seed", range(6))
def test_capacitated_models_bruteforce(seed: int) -> None:
    rng = np.random.default_rng(seed)
    costs, _ = instance(seed, n=5, m=4)
    w = rng.integers(1, 6, 5).astype(float)
    cap = rng.integers(4, 12, 4).astype(float)
    opt = bf_capacitated(costs, w, cap, model="pmedian", p=2)
    if math.isfinite(opt):
        res = PMedian.from_cost_matrix(costs, w, p=2, capacities=cap).solve()
        assert res.objective == pytest.approx(opt)
        load = {}
        for i, j in res.assignment.items():
            load[j] = load.get(j, 0.0) + w[i]
        assert all(load[j] <= cap[j] + 1e-9 for j in load)
    else:
        with pytest.raises(LocateInfeasibleError):
            PMedian.from_cost_matrix(costs, w, p=2, capacities=cap).solve()
    opt_m = bf_capacitated(costs, w, cap, model="mclp", p=2, t=5.0)
    res_m = MCLP.from_cost_matrix(costs, w, threshold=5.0, p=2, capacities=cap).solve()
    assert res_m.objective == pytest.approx(opt_m)
    opt_l = bf_capacitated(costs, w, cap, model="lscp", t=6.0)
    if math.isfinite(opt_l):
        assert LSCP.from_cost_matrix(costs, w, threshold=6.0,
                                     capacities=cap).solve().objective == opt_l
    else:
        with pytest.raises(LocateInfeasibleError):
            LSCP.from_cost_matrix(costs, w, threshold=6.0, capacities=cap).solve()


def test_closure_losses_by_hand() -> None:
    costs = np.array([[1.0, 4.0, 9.0], [2.0, 1.0, 8.0], [9.0, 9.0, 0.0]])
    frame = closure_losses(costs, [1.0, 2.0, 3.0], candidate_ids=["a", "b", "c"])
    row = frame.set_index("candidate_id")
    # a serves demand 0 (next: b at 4 -> +3); b serves demand 1 (next: a at 2 -> +2);
    # c serves demand 2 (next: a or b at 9 -> +27)
    assert row.loc["a", "added_cost"] == 3.0
    assert row.loc["b", "added_cost"] == 2.0
    assert row.loc["c", "added_cost"] == 27.0
    assert list(frame["candidate_id"]) == ["b", "a", "c"]


# ------------------------------------------------------------------ property tests

matrices = st.integers(min_value=0, max_value=2**31 - 1).flatmap(
    lambda seed: st.tuples(st.just(seed), st.integers(3, 9), st.integers(2, 6),
                           st.floats(0.0, 0.5)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrices, st.integers(1, 3))
def test_property_optimal_and_bounds(spec, p: int) -> None:
    seed, n, m, holes = spec
    p = min(p, m)
    costs, w = instance(seed, n=n, m=m, sparse_frac=holes)
    w[0] = max(w[0], 1.0)
    opt = bf_pmedian(costs, w, p)
    if math.isfinite(opt):
        for method in ("auto", "heuristic"):
            res = PMedian.from_cost_matrix(costs, w, p=p).solve(method=method, time_limit=10)
            assert res.bound <= opt + 1e-6 * max(1.0, opt)
            assert res.objective >= opt - 1e-6 * max(1.0, opt)
            if method == "auto":
                assert res.objective == pytest.approx(opt)
            check_consistent(res, costs, w, "pmedian")
        pc = PCenter.from_cost_matrix(costs, w, p=p).solve()
        assert pc.objective == pytest.approx(bf_pcenter(costs, w, p))
        assert pc.bound <= pc.objective
    t = float(np.nanmedian(np.where(np.isfinite(costs), costs, np.nan)))
    opt_m = bf_mclp(costs, w, t, p)
    res_m = MCLP.from_cost_matrix(costs, w, threshold=t, p=p).solve()
    assert res_m.objective == pytest.approx(opt_m)
    assert res_m.bound >= opt_m - 1e-6


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3))
def test_property_sparse_equals_dense(seed: int, p: int) -> None:
    costs, w = instance(seed, n=10, m=6, sparse_frac=0.3)
    rows, cols = np.nonzero(np.isfinite(costs))
    matrix = sp.coo_matrix((costs[rows, cols], (rows, cols)), shape=costs.shape)
    try:
        dense = PMedian.from_cost_matrix(costs, w, p=p).solve()
    except LocateInfeasibleError:
        with pytest.raises(LocateInfeasibleError):
            PMedian.from_cost_matrix(matrix, w, p=p).solve()
        return
    sparse = PMedian.from_cost_matrix(matrix, w, p=p).solve()
    pairs = PMedian.from_pairs(rows, cols, costs[rows, cols], w, demand_ids=range(10),
                               candidate_ids=range(6), p=p).solve()
    assert sparse.objective == pytest.approx(dense.objective)
    assert pairs.objective == pytest.approx(dense.objective)


@pytest.mark.parametrize("seed", range(4))
def test_bounds_valid_against_exact_mip(seed: int) -> None:
    """Bounds from stopped / heuristic runs never pass the optimum found by the full MIP."""
    costs, w = instance(100 + seed, n=80, m=20)
    w += 1.0
    exact = PMedian.from_cost_matrix(costs, w, p=4).solve(method="mip")
    assert exact.status == "optimal"
    for kwargs in ({"method": "heuristic"}, {"time_limit": 0.02}, {"gap": 0.05}):
        res = PMedian.from_cost_matrix(costs, w, p=4).solve(**kwargs)
        assert res.bound <= exact.objective * (1 + 1e-9)
        assert res.objective >= exact.objective * (1 - 1e-9)
        assert res.gap >= 0
    t = float(np.median(costs))
    exact_m = MCLP.from_cost_matrix(costs, w, threshold=t / 2, p=3).solve(method="mip")
    for kwargs in ({"method": "heuristic"}, {"time_limit": 0.02}, {"gap": 0.05}):
        res = MCLP.from_cost_matrix(costs, w, threshold=t / 2, p=3).solve(**kwargs)
        assert res.bound >= exact_m.objective * (1 - 1e-9)
        assert res.objective <= exact_m.objective * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("engine", ["lp", "lagrangian"])
def test_mclp_large_model_paths_on_small_instances(monkeypatch, seed: int, engine: str) -> None:
    """The LP-dual and Lagrangian paths (used on large models) give valid bounds and, with
    the reduced MIP, the optimum found by enumeration, with and without fixed sites."""
    import tiercare.planning.locate as locate

    monkeypatch.setattr(locate, "_SMALL_COVER_NNZ", 0)
    if engine == "lagrangian":
        monkeypatch.setattr(locate, "_LP_COVER_NNZ", 0)
    costs, w = instance(300 + seed, n=14, m=8)
    t = float(np.quantile(costs, 0.3))
    fixed = [seed % 8] if seed % 2 else []
    p = 3
    opt = bf_mclp(costs, w, t, p, fixed=fixed)
    for method in ("auto", "heuristic"):
        res = MCLP.from_cost_matrix(costs, w, threshold=t, p=p, fixed=fixed).solve(
            method=method)
        assert res.bound >= opt - 1e-6
        assert res.objective <= opt + 1e-6
        assert res.covered_weight == pytest.approx(res.objective)
        assert f"+{engine}" in res.method
        if method == "auto":
            assert res.objective == pytest.approx(opt)
            assert res.status == "optimal"


@pytest.mark.parametrize("seed", range(8))
def test_lagrangian_value_bounds_for_any_multipliers(seed: int) -> None:
    """``L(lam)`` is >= the optimum for every ``lam`` in [0, W] and equals the LP value at the
    LP's row duals."""
    from tiercare.planning import _locate_cover as cover

    costs, w = instance(400 + seed, n=14, m=8)
    t = float(np.quantile(costs, 0.3))
    p = 2 + seed % 2
    opt = bf_mclp(costs, w, t, p)
    model = MCLP.from_cost_matrix(costs, w, threshold=t, p=p)
    inst = model.instance
    g = cover.make_groups(inst.costs, inst.weights, radius=t, open_=inst.fixed,
                          usable=~inst.forbidden)
    free = np.ones(inst.costs.m, dtype=bool)
    rng = np.random.default_rng(seed)
    for lam in (np.zeros(g.size), g.weight, rng.uniform(0, 1, g.size) * g.weight):
        bound, sigma = cover.lagrangian_value(g, lam, free=free, k=p)
        assert bound >= opt - 1e-9
        assert sigma.shape == (inst.costs.m,)
    _, lp = cover.cover_mip(g, m=inst.costs.m, free=free, objective="max", count=p,
                            site_cost=None, budget=None, time_limit=10, gap=0.0, seed=0,
                            start=None, relax=True)
    dual = cover.lp_mclp(g, m=inst.costs.m, free=free, k=p,
                         incumbent=np.zeros(inst.costs.m, dtype=bool),
                         deadline=time.perf_counter() + 10, seed=0)
    assert dual is not None
    assert dual.bound == pytest.approx(lp.objective, rel=1e-7)
    assert opt - 1e-9 <= dual.bound
    assert dual.lower == pytest.approx(cover.covered_weight(g, dual.incumbent))
    assert dual.lower <= opt + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_smoothed_lagrangian_bound_against_exact_highs(seed: int) -> None:
    """The coordinate-descent Lagrangian bound is never below the exact optimum (HiGHS MIP),
    never below the LP value (its minimum), and lands within 1e-4 of the LP value; its incumbent's
    weight is reported exactly."""
    from tiercare.planning import _locate_cover as cover

    rng = np.random.default_rng(500 + seed)
    n, m = 120, 25
    pts, sites = rng.uniform(0, 10, (n, 2)), rng.uniform(0, 10, (m, 2))
    costs = np.hypot(pts[:, None, 0] - sites[None, :, 0], pts[:, None, 1] - sites[None, :, 1])
    w = np.round(rng.lognormal(3.0, 1.0, n))
    t, p = 2.0 + seed % 3, 3 + seed % 4
    inst = MCLP.from_cost_matrix(costs, w, threshold=t, p=p).instance
    g = cover.make_groups(inst.costs, inst.weights, radius=t, open_=inst.fixed,
                          usable=~inst.forbidden)
    free = np.ones(m, dtype=bool)
    common = {"m": m, "free": free, "objective": "max", "count": p, "site_cost": None,
              "budget": None, "time_limit": 30, "gap": 0.0, "seed": 0, "start": None}
    _, exact = cover.cover_mip(g, **common)
    _, lp = cover.cover_mip(g, relax=True, **common)
    dual = cover.lagrangian_mclp(g, m=m, free=free, k=p, incumbent=np.zeros(m, dtype=bool),
                                 deadline=time.perf_counter() + 30, target_gap=0.0)
    assert dual.bound >= exact.objective - 1e-6
    assert dual.bound >= lp.objective - 1e-6
    # continuation on the smoothing follows the smoothed minimum down to the LP bound
    assert dual.bound <= lp.objective * (1 + 1e-4)
    assert dual.lower == pytest.approx(cover.covered_weight(g, dual.incumbent))
    assert dual.lower <= exact.objective + 1e-6
    assert int(dual.incumbent.sum()) <= p


@pytest.mark.parametrize("numba_kernel", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_swap_search_reaches_a_one_swap_local_optimum(seed: int, numba_kernel: bool) -> None:
    """Both swap searches (NumPy best-improvement and the numba kernel) end where no single
    swap (one site in, one out) improves the covered weight — checked by trying every swap —
    never lose weight, keep ``p`` sites and respect a budget when given."""
    from tiercare.planning import _locate_cover as cover

    rng = np.random.default_rng(900 + seed)
    n, m = 150, 30
    pts, sites = rng.uniform(0, 10, (n, 2)), rng.uniform(0, 10, (m, 2))
    costs = np.hypot(pts[:, None, 0] - sites[None, :, 0], pts[:, None, 1] - sites[None, :, 1])
    w = np.round(rng.lognormal(3.0, 1.0, n))
    t, p = 1.5 + seed % 3, 4 + seed % 3
    inst = MCLP.from_cost_matrix(costs, w, threshold=t, p=p).instance
    g = cover.make_groups(inst.costs, inst.weights, radius=t, open_=inst.fixed,
                          usable=~inst.forbidden)
    free = np.ones(m, dtype=bool)
    free[rng.choice(m, 3, replace=False)] = False
    site_cost = rng.uniform(1, 3, m) if seed % 2 else None
    start = np.zeros(m, dtype=bool)
    start[rng.choice(np.flatnonzero(free), p, replace=False)] = True
    budget = float(site_cost[start].sum()) + 0.5 if site_cost is not None else None
    if numba_kernel:
        search = cover.SwapSearch(g, start, m=m, free=free)
        search.descend(deadline=time.perf_counter() + 30, site_cost=site_cost, budget=budget)
        out = search.chosen
    else:
        out = cover.swap_cover(g, start, m=m, free=free, site_cost=site_cost, budget=budget,
                               deadline=time.perf_counter() + 30)
    value = cover.covered_weight(g, out)
    assert value >= cover.covered_weight(g, start)
    assert int(out.sum()) == p and not (out & ~free).any()
    if budget is not None:
        assert site_cost[out].sum() <= budget + 1e-9
    for r in np.flatnonzero(out):
        for j in np.flatnonzero(free & ~out):
            trial = out.copy()
            trial[r], trial[j] = False, True
            if budget is not None and site_cost[trial].sum() > budget + 1e-9:
                continue
            assert cover.covered_weight(g, trial) <= value + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_swap_search_kicks_keep_an_exact_state_and_never_lose_weight(seed: int) -> None:
    """Iterated local search keeps its incremental covered weight equal to a recount, never
    ends below the 1-swap optimum it started from, and ends at a 1-swap local optimum."""
    from tiercare.planning import _locate_cover as cover

    rng = np.random.default_rng(1300 + seed)
    n, m, p = 200, 35, 5
    pts, sites = rng.uniform(0, 10, (n, 2)), rng.uniform(0, 10, (m, 2))
    costs = np.hypot(pts[:, None, 0] - sites[None, :, 0], pts[:, None, 1] - sites[None, :, 1])
    w = np.round(rng.lognormal(3.0, 1.0, n))
    inst = MCLP.from_cost_matrix(costs, w, threshold=1.5, p=p).instance
    g = cover.make_groups(inst.costs, inst.weights, radius=1.5, open_=inst.fixed,
                          usable=~inst.forbidden)
    free = np.ones(m, dtype=bool)
    start = np.zeros(m, dtype=bool)
    start[rng.choice(m, p, replace=False)] = True
    search = cover.SwapSearch(g, start, m=m, free=free)
    search.descend(deadline=time.perf_counter() + 30)
    local = search.value
    search.kick(deadline=time.perf_counter() + 0.3, seed=seed)
    value = cover.covered_weight(g, search.chosen)
    assert search.value == pytest.approx(value)
    assert value >= local - 1e-9 and int(search.chosen.sum()) == p
    for r in np.flatnonzero(search.chosen):
        for j in np.flatnonzero(~search.chosen):
            trial = search.chosen.copy()
            trial[r], trial[j] = False, True
            assert cover.covered_weight(g, trial) <= value + 1e-9
