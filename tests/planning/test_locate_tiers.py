"""Two-tier siting (upgrades + clinics) against brute-force enumeration on tiny instances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from tiercare.errors import InputError
from tiercare.planning.locate import LocateInfeasibleError, TwoTierCover


def _instance(seed: int, n: int = 9, mu: int = 4, ml: int = 5):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 10, (n, 2))
    up = rng.uniform(0, 10, (mu, 2))
    low = rng.uniform(0, 10, (ml, 2))
    upper = np.hypot(*(pts[:, None, :] - up[None, :, :]).transpose(2, 0, 1))
    lower = np.hypot(*(pts[:, None, :] - low[None, :, :]).transpose(2, 0, 1))
    w = rng.integers(0, 6, n).astype(float)
    return upper, lower, w


def brute_force(upper, lower, w, *, t1, t2, upgrades, new_lower=None, upper_fixed=(),
                lower_fixed=(), lower_forbidden=(), site_cost=None, budget=None,
                nested=None, required=None):
    """Best coverage and, among the best, the fewest new lower sites (``-inf`` if none)."""
    mu, ml = upper.shape[1], lower.shape[1]
    best = (-math.inf, math.inf)
    new_u = [u for u in range(mu) if u not in upper_fixed]
    new_l = [j for j in range(ml) if j not in lower_fixed and j not in lower_forbidden]
    served = w > 0
    need = served if required is None else required
    for ku in range(upgrades + 1):
        for extra_u in itertools.combinations(new_u, ku):
            us = sorted(set(upper_fixed) | set(extra_u))
            value = float(w[served & (upper[:, us] <= t1).any(axis=1)].sum()) if us else 0.0
            for kl in range(len(new_l) + 1):
                if new_lower is not None and kl > new_lower:
                    break
                for extra_l in itertools.combinations(new_l, kl):
                    if budget is not None and sum(site_cost[j] for j in extra_l) > budget:
                        continue
                    ls = set(lower_fixed) | set(extra_l)
                    if nested and any(nested[u] not in ls for u in us if u in nested):
                        continue
                    if not (lower[:, sorted(ls)] <= t2).any(axis=1)[need].all():
                        continue
                    if (value, -kl) > (best[0], -best[1]):
                        best = (value, kl)
    return best


def _check(res, upper, lower, w, t1, t2):
    """The reported solution is what its sites actually give."""
    us = list(res.upper_selected)
    ls = list(res.lower_selected)
    served = w > 0
    assert (lower[:, ls] <= t2).any(axis=1)[served].all()
    assert res.objective == pytest.approx(float(w[served & (upper[:, us] <= t1).any(axis=1)]
                                                .sum()) if us else 0.0)
    frame = res.to_frame()
    assert frame["covered"].sum() == int((served & (upper[:, us] <= t1).any(axis=1)).sum())
    assert res.bound >= res.objective - 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_two_tier_matches_bruteforce(seed: int) -> None:
    upper, lower, w = _instance(seed)
    t1, t2 = 3.5, 5.5
    lower_fixed = [0]
    kw = {"upgrades": 1 + seed % 2, "new_lower": 2 + seed % 2}
    expect = brute_force(upper, lower, w, t1=t1, t2=t2, lower_fixed=lower_fixed, **kw)
    model = TwoTierCover.from_cost_matrices(upper, lower, w, upper_threshold=t1,
                                            lower_threshold=t2, lower_fixed=lower_fixed, **kw)
    if not math.isfinite(expect[0]):
        with pytest.raises(LocateInfeasibleError):
            model.solve()
        return
    res = model.solve()
    assert res.status == "optimal"
    assert res.objective == pytest.approx(expect[0])
    assert len(res.lower_new) == expect[1]
    assert len(res.upper_new) <= kw["upgrades"]
    assert 0 in res.lower_selected
    _check(res, upper, lower, w, t1, t2)


@pytest.mark.parametrize("seed", range(6))
def test_two_tier_budget_nesting_and_fixed_upper(seed: int) -> None:
    upper, lower, w = _instance(50 + seed, n=8, mu=4, ml=5)
    t1, t2 = 4.0, 6.0
    cost = np.array([3.0, 1.0, 2.0, 2.0, 1.0])
    nested = {1: 2, 3: 4}
    kw = {"upgrades": 1, "upper_fixed": [0], "lower_fixed": [1], "lower_forbidden": [3]}
    expect = brute_force(upper, lower, w, t1=t1, t2=t2, site_cost=cost, budget=3.0,
                         nested=nested, **kw)
    model = TwoTierCover.from_cost_matrices(
        upper, lower, w, upper_threshold=t1, lower_threshold=t2, lower_costs_per_site=cost,
        lower_budget=3.0, upper_in_lower=nested, **kw)
    if not math.isfinite(expect[0]):
        with pytest.raises(LocateInfeasibleError):
            model.solve()
        return
    res = model.solve()
    assert res.objective == pytest.approx(expect[0])
    assert len(res.lower_new) == expect[1]
    assert 0 in res.upper_selected and 3 not in res.lower_selected
    assert sum(cost[j] for j in res.lower_new) <= 3.0
    for u, lo in nested.items():
        if u in res.upper_selected:
            assert lo in res.lower_selected
    _check(res, upper, lower, w, t1, t2)


def test_sparse_matrices_and_ids() -> None:
    upper, lower, w = _instance(7)
    w[:] = np.maximum(w, 1.0)
    dense = TwoTierCover.from_cost_matrices(upper, lower, w, upper_threshold=3.5,
                                            lower_threshold=6.0, upgrades=2).solve()
    us = sp.csr_matrix(np.where(upper <= 3.5, upper, 0.0))
    us.eliminate_zeros()
    ls = sp.csr_matrix(np.where(lower <= 6.0, lower, 0.0))
    ls.eliminate_zeros()
    ids = [f"v{i}" for i in range(len(w))]
    sparse = TwoTierCover.from_cost_matrices(
        us, ls, w, upper_threshold=3.5, lower_threshold=6.0, upgrades=2, demand_ids=ids,
        upper_ids=list("ABCD"), lower_ids=list("abcde")).solve()
    assert sparse.objective == pytest.approx(dense.objective)
    assert all(isinstance(v, str) for v in sparse.upper_selected + sparse.lower_selected)
    assert list(sparse.to_frame()["demand_id"]) == ids
    assert sparse.to_dict()["model"] == "two-tier"


@pytest.mark.parametrize("seed", range(8))
def test_required_points_of_weight_zero(seed: int) -> None:
    """With ``required`` every flagged point needs a lower-tier site within T2, weight 0 or
    not (a village whose population is unknown still needs a clinic); same as brute force."""
    upper, lower, w = _instance(200 + seed)
    w[seed % 9] = 0.0
    required = np.ones(w.size, dtype=bool)
    t1, t2, kw = 3.5, 5.5, {"upgrades": 1, "new_lower": 3}
    expect = brute_force(upper, lower, w, t1=t1, t2=t2, lower_fixed=[0], required=required,
                         **kw)
    model = TwoTierCover.from_cost_matrices(upper, lower, w, upper_threshold=t1,
                                            lower_threshold=t2, lower_fixed=[0],
                                            required=required, **kw)
    if not math.isfinite(expect[0]):
        with pytest.raises(LocateInfeasibleError):
            model.solve()
        return
    res = model.solve()
    assert res.objective == pytest.approx(expect[0]) and len(res.lower_new) == expect[1]
    assert (lower[:, list(res.lower_selected)] <= t2).any(axis=1).all()


def test_required_flags_are_checked() -> None:
    upper, lower, w = _instance(4)
    with pytest.raises(InputError) as bad:
        TwoTierCover.from_cost_matrices(upper, lower, w, upper_threshold=3.0,
                                        lower_threshold=4.0, upgrades=1, required=[1, 0])
    assert [p.field for p in bad.value.problems] == ["required"]


def test_unreachable_village_and_bad_input() -> None:
    upper, lower, w = _instance(3)
    w[2] = 1.0
    lower[2, :] = np.inf
    with pytest.raises(LocateInfeasibleError) as err:
        TwoTierCover.from_cost_matrices(upper, lower, w, upper_threshold=3.0,
                                        lower_threshold=4.0, upgrades=1).solve()
    assert 2 in err.value.demand_ids
    with pytest.raises(InputError) as bad:
        TwoTierCover.from_cost_matrices(upper, lower[:5], w, upper_threshold=-1,
                                        lower_threshold=4.0, upgrades=-2,
                                        lower_budget=3.0)
    fields = {p.field for p in bad.value.problems}
    assert {"upper_threshold", "upgrades", "lower_costs_per_site"} <= fields



def _pairs(costs: np.ndarray, prefix: str, cutoff: float, rng: np.random.Generator):
    """The pairs within ``cutoff`` of a matrix, by id (``v0``…, ``{prefix}0``…), shuffled."""
    rows, cols = np.nonzero(costs <= cutoff)
    order = rng.permutation(rows.size)
    rows, cols = rows[order], cols[order]
    return ([f"v{i}" for i in rows], [f"{prefix}{j}" for j in cols],
            costs[rows, cols].tolist())


@pytest.mark.parametrize("seed", range(4))
def test_from_pairs_matches_cost_matrices(seed: int) -> None:
    upper, lower, w = _instance(300 + seed, n=8, mu=4, ml=5)
    rng = np.random.default_rng(seed)
    cutoff = 7.0  # pairs beyond it are unreachable in both models
    t1, t2 = 4.0, 6.0
    kw = {"upgrades": 1, "lower_costs_per_site": [3.0, 1.0, 2.0, 2.0, 1.0],
          "lower_budget": 3.0}
    by_index = TwoTierCover.from_cost_matrices(
        np.where(upper <= cutoff, upper, np.inf), np.where(lower <= cutoff, lower, np.inf), w,
        upper_threshold=t1, lower_threshold=t2, upper_fixed=[0], lower_fixed=[1],
        lower_forbidden=[3], upper_in_lower={1: 2}, **kw)
    by_id = TwoTierCover.from_pairs(
        _pairs(upper, "U", cutoff, rng), _pairs(lower, "c", cutoff, rng), w,
        demand_ids=[f"v{i}" for i in range(len(w))], upper_ids=[f"U{j}" for j in range(4)],
        lower_ids=[f"c{j}" for j in range(5)], upper_threshold=t1, lower_threshold=t2,
        upper_fixed=["U0"], lower_fixed=["c1"], lower_forbidden=["c3"],
        upper_in_lower={"U1": "c2"}, **kw)
    expect, got = by_index.solve(), by_id.solve()
    assert (got.objective, got.bound, got.status) == (expect.objective, expect.bound,
                                                     expect.status)
    assert got.upper_selected == tuple(f"U{j}" for j in expect.upper_selected)
    assert got.lower_selected == tuple(f"c{j}" for j in expect.lower_selected)
    assert got.lower_new == tuple(f"c{j}" for j in expect.lower_new)
    frame = got.to_frame()
    assert list(frame["demand_id"]) == [f"v{i}" for i in range(len(w))]
    assert list(frame["covered"]) == list(expect.to_frame()["covered"])


def test_from_pairs_default_ids_in_order_of_appearance() -> None:
    model = TwoTierCover.from_pairs((["b", "a"], ["U", "U"], [1.0, 2.0]),
                                    (["c", "a", "b"], ["x", "x", "y"], [1.0, 1.0, 1.0]),
                                    [1.0, 2.0, 3.0], upper_threshold=5, lower_threshold=5,
                                    upgrades=1)
    assert model.demand_ids == ("b", "a", "c")
    assert (model.upper_ids, model.lower_ids) == (("U",), ("x", "y"))
    res = model.solve()
    assert res.objective == 3.0 and res.upper_new == ("U",)
    assert res.lower_new == ("x", "y")


def test_from_pairs_refuses_bad_pairs_naming_the_row() -> None:
    upper = (["a", "b"], ["U", "U"], [1.0, 2.0])
    lower = (["a", "b", "c"], ["x", "y", "y"], [1.0, 1.0, 1.0])
    kw = {"upper_threshold": 5.0, "lower_threshold": 5.0, "upgrades": 1,
          "demand_ids": ["a", "b"]}

    def problems(up, low, **more) -> list[tuple[str | None, int | None, str, str]]:
        with pytest.raises(InputError) as bad:
            TwoTierCover.from_pairs(up, low, **{**kw, **more})
        return [(p.field, p.row, p.reason, p.code) for p in bad.value.problems]

    # 'c' is not a demand point: the third lower pair names it
    assert problems(upper, lower) == [
        ("lower_demand", 3, "unknown demand id 'c'", "unknown_id")]
    assert problems(upper, lower, lower_ids=["x"]) == [
        ("lower_demand", 3, "unknown demand id 'c'", "unknown_id"),
        ("lower_candidate", 2, "unknown candidate id 'y'", "unknown_id"),
        ("lower_candidate", 3, "unknown candidate id 'y'", "unknown_id")]
    assert problems((["a", "b"], ["U", "U"], [1.0, -2.0]), (["a", "b"], ["x", "y"], [1, 1])) == [
        ("upper_cost", 2, "cost must be finite and >= 0, got -2.0", "bad_value")]
    assert problems(upper, (["a", "b", "a"], ["x", "y", "x"], [1.0, 1.0, 3.0])) == [
        ("lower_candidate", 3, "duplicate pair (same as row 1)", "duplicate_pair")]
    # an unknown id hides neither a repeated pair of its tier nor the other tier's problems
    assert problems((["a", "a"], ["U", "U"], [1.0, 1.0]),
                    (["a", "z", "a"], ["x", "x", "x"], [1.0, 1.0, 1.0])) == [
        ("upper_candidate", 2, "duplicate pair (same as row 1)", "duplicate_pair"),
        ("lower_demand", 2, "unknown demand id 'z'", "unknown_id"),
        ("lower_candidate", 3, "duplicate pair (same as row 1)", "duplicate_pair")]


def _line_road():
    """One road 0 — 1000 — 2000 m, 100 s per segment both ways (as the single-tier
    ``from_engine`` test)."""
    network = pytest.importorskip("tiercare.planning.network")
    return network.Network.from_arrays(np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]]),
                                       u=[0, 1], v=[1, 2], time_uv=[100.0, 100.0],
                                       time_vu=[100.0, 100.0], crs="EPSG:32649")


def _frame(xs, ys, index, **columns):
    gpd = pytest.importorskip("geopandas")
    return gpd.GeoDataFrame(columns, index=index, geometry=gpd.points_from_xy(xs, ys),
                            crs="EPSG:32649")


def test_from_engine_on_a_line_road() -> None:
    """Hand-solved: within 50 s only the site at a place reaches it, so the upgrade goes west
    (weight 2); within 150 s the clinic at a serves a and b (100 s), c needs the new site."""
    net = _line_road()
    demand = _frame([0, 1000, 2000], [0, 0, 0], ["a", "b", "c"], pop=[2.0, 1.0, 1.0])
    upper = _frame([0, 2000], [0, 0], ["west", "east"])
    lower = _frame([0, 2000], [0, 0], ["clinic_a", "new_c"])
    model = TwoTierCover.from_engine(net, demand, upper, lower, upper_threshold=50.0,
                                     lower_threshold=150.0, upgrades=1, weight_field="pop",
                                     lower_fixed=["clinic_a"])
    # upper: a-west 0, c-east 0; lower: a-clinic_a 0, b-clinic_a 100, b-new_c 100, c-new_c 0
    assert (model.upper.costs.nnz, model.lower.costs.nnz) == (2, 4)
    res = model.solve()
    assert (res.upper_new, res.lower_new, res.objective) == (("west",), ("new_c",), 2.0)
    assert list(res.to_frame()["demand_id"]) == ["a", "b", "c"]


def _grid_road(rng: np.random.Generator, k: int = 5):
    """A k × k grid of roads 1 km apart, mixed speeds, a quarter of the segments one-way."""
    network = pytest.importorskip("tiercare.planning.network")
    xy = np.array([(1000.0 * i, 1000.0 * j) for j in range(k) for i in range(k)])
    east = [(a, a + 1) for a in range(k * k) if (a + 1) % k]
    north = [(a, a + k) for a in range(k * k - k)]
    u, v = np.array(east + north).T
    t = 1000.0 / rng.choice([5.0, 10.0, 20.0], len(u))
    kind = rng.integers(0, 8, len(u))  # 0: u->v only, 1: v->u only, else both ways
    return network.Network.from_arrays(xy, u=u, v=v, time_uv=np.where(kind == 1, np.inf, t),
                                       time_vu=np.where(kind == 0, np.inf, t),
                                       crs="EPSG:32649")


def _near_roads(rng: np.random.Generator, count: int, index: list[str], **columns):
    """Points a few metres off random places of the grid's lines."""
    along = rng.uniform(0, 4000, count)
    line = 1000.0 * rng.integers(0, 5, count)
    vertical = rng.random(count) < 0.5
    xs = np.where(vertical, line, along) + rng.normal(0, 5, count)
    ys = np.where(vertical, along, line) + rng.normal(0, 5, count)
    return _frame(xs, ys, index, **columns)


@pytest.mark.parametrize("seed", [403, 405, 406, 410])  # an upgrade and a new clinic each
def test_from_engine_matches_cost_matrices(seed: int) -> None:
    """Same model as from the engine's matrices computed the other way round (demand points
    as origins, trips demand → site), with ids, fixed sites, nesting, a budget and required
    points of weight 0; one-way streets make the direction matter."""
    network = pytest.importorskip("tiercare.planning.network")
    rng = np.random.default_rng(seed)
    net = _grid_road(rng)
    w = rng.integers(0, 6, 14).astype(float)
    w[-1] = 0.0  # still needs a clinic within reach
    demand = _near_roads(rng, 14, [f"v{i}" for i in range(14)], pop=w,
                         need=np.ones(14, dtype=bool))
    upper = _near_roads(rng, 4, [f"U{j}" for j in range(4)])
    site_cost = [0.0, 0.0, 2.0, 1.0, 1.0, 3.0, 1.0]
    lower = _near_roads(rng, 7, [f"c{j}" for j in range(7)], cost=site_cost)
    t1, t2 = 350.0, 500.0
    kw = {"upgrades": 1, "lower_budget": 4.0, "upper_threshold": t1, "lower_threshold": t2}
    from_engine = TwoTierCover.from_engine(
        net, demand, upper, lower, weight_field="pop", required_field="need",
        lower_cost_field="cost", upper_fixed=["U0"], lower_fixed=["c0", "c1"],
        lower_forbidden=["c6"], upper_in_lower={"U2": "c2"}, **kw)
    by_index = TwoTierCover.from_cost_matrices(
        network.travel_time_matrix(net, demand, upper, cutoff_s=t1),
        network.travel_time_matrix(net, demand, lower, cutoff_s=t2), w,
        lower_costs_per_site=site_cost, upper_fixed=[0], lower_fixed=[0, 1],
        lower_forbidden=[6], upper_in_lower={2: 2}, required=np.ones(14, dtype=bool), **kw)
    for tier in ("upper", "lower"):
        got, expect = getattr(from_engine, tier).costs, getattr(by_index, tier).costs
        assert 0 < got.nnz < got.n * got.m
        assert np.array_equal(got.indptr, expect.indptr)
        assert np.array_equal(got.indices, expect.indices)
        np.testing.assert_allclose(got.data, expect.data, rtol=1e-9)
    expect, got = by_index.solve(), from_engine.solve()
    assert (got.objective, got.bound, got.status) == (expect.objective, expect.bound,
                                                     expect.status)
    assert got.upper_selected == tuple(f"U{j}" for j in expect.upper_selected)
    assert got.lower_selected == tuple(f"c{j}" for j in expect.lower_selected)
    assert got.lower_new == tuple(f"c{j}" for j in expect.lower_new)
    assert got.upper_new and got.lower_new
    frame = got.to_frame()
    assert list(frame["demand_id"]) == list(demand.index)
    assert list(frame["covered"]) == list(expect.to_frame()["covered"])


def test_from_engine_refuses_missing_columns_naming_the_option() -> None:
    net = _line_road()
    demand = _frame([0, 1000], [0, 0], ["a", "b"], pop=[1.0, 2.0], flag=[1, 0])
    sites = _frame([0], [0], ["s"])
    kw = {"upper_threshold": 100.0, "lower_threshold": 100.0, "upgrades": 1}

    def problems(*frames, **more) -> list[tuple[str | None, str]]:
        with pytest.raises(InputError) as bad:
            TwoTierCover.from_engine(net, *frames, **{**kw, **more})
        return [(p.field, p.code) for p in bad.value.problems]

    assert problems(demand, sites, sites, weight_field="people", required_field="needed",
                    lower_cost_field="price") == [
        ("weight_field", "missing_column"), ("required_field", "missing_column"),
        ("lower_cost_field", "missing_column")]
    # a required column must be true/false; a budget needs the site costs' column
    assert problems(demand, sites, sites, required_field="flag", lower_budget=1.0) == [
        ("required_field", "bad_value"), ("lower_cost_field", "missing")]
    # an empty frame and bad limits are refused together, before any travel time
    assert problems(demand, sites, sites.iloc[:0], upgrades=-1) == [
        ("lower", "empty"), ("upgrades", "invalid")]
