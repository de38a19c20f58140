"""Coverage engines (LSCP, MCLP, p-center) and the capacitated MIPs.

Coverage models only depend on *which* candidates cover a demand point (cost <= threshold), so
demand points with identical covering sets are merged into one group whose weight is their sum.
On realistic instances this shrinks a 100,000-row model by an order of magnitude before HiGHS
sees it; a demand already covered by a fixed (existing) facility leaves the model entirely.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from tiercare.planning._locate_data import (
    BoolArray,
    FloatArray,
    IntArray,
    SortedCosts,
    column_order,
    gather,
    group_identical_rows,
)
from tiercare.planning._locate_mip import MipOutcome, solve_mip


@dataclass(frozen=True)
class Groups:
    """Demand points merged by identical covering sets.

    Attributes
    ----------
    weight:
        Total weight of each group.
    indptr, indices:
        Covering candidates of each group (CSR).
    constant:
        Weight already covered by surely-open candidates (not in any group).
    uncoverable:
        Mask of demand points (weight > 0) that no usable candidate covers.
    """

    weight: FloatArray
    indptr: IntArray
    indices: npt.NDArray[np.int32]
    constant: float
    uncoverable: BoolArray

    @property
    def size(self) -> int:
        """Number of groups."""
        return int(self.weight.size)

    def entry_group(self) -> IntArray:
        """Group of each stored entry."""
        return np.repeat(np.arange(self.size), np.diff(self.indptr))


def make_groups(c: SortedCosts, w: FloatArray, *, radius: float, open_: BoolArray,
                usable: BoolArray) -> Groups:
    """Group the demand points that open candidates do not already cover within ``radius``."""
    served = w > 0
    within = (c.data <= radius) & served[c.rows]
    covered = np.zeros(c.n, dtype=bool)
    covered[c.rows[within & open_[c.indices]]] = True
    ent = within & usable[c.indices] & ~open_[c.indices] & ~covered[c.rows]
    counts = np.bincount(c.rows[ent], minlength=c.n)
    uncoverable = served & ~covered & (counts == 0)
    rows_in = np.flatnonzero(counts > 0)
    indptr = np.zeros(rows_in.size + 1, dtype=np.int64)
    np.cumsum(counts[rows_in], out=indptr[1:])
    indices = c.indices[ent]
    return _merge(indptr, indices, w[rows_in], m=c.m,
                  constant=float(w[covered].sum()), uncoverable=uncoverable)


def _merge(indptr: IntArray, indices: npt.NDArray[np.int32], weight: FloatArray, *, m: int,
           constant: float, uncoverable: BoolArray) -> Groups:
    if weight.size == 0:
        return Groups(weight=weight, indptr=indptr, indices=indices, constant=constant,
                      uncoverable=uncoverable)
    group, first = group_identical_rows(indptr, indices, m)
    gw = np.bincount(group, weights=weight, minlength=first.size)
    pos = gather(indptr, first)
    gptr = np.zeros(first.size + 1, dtype=np.int64)
    np.cumsum(indptr[first + 1] - indptr[first], out=gptr[1:])
    return Groups(weight=gw, indptr=gptr, indices=indices[pos], constant=constant,
                  uncoverable=uncoverable)


def restrict(g: Groups, *, open_: BoolArray, closed: BoolArray, m: int) -> Groups:
    """Remove closed candidates, take groups covered by ``open_`` out, and merge again."""
    eg = g.entry_group()
    hit = np.zeros(g.size, dtype=bool)
    hit[eg[open_[g.indices]]] = True
    keep = ~closed[g.indices] & ~open_[g.indices] & ~hit[eg]
    counts = np.bincount(eg[keep], minlength=g.size)
    alive = counts > 0
    indptr = np.zeros(int(alive.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[alive], out=indptr[1:])
    return _merge(indptr, g.indices[keep], g.weight[alive], m=m,
                  constant=g.constant + float(g.weight[hit].sum()), uncoverable=g.uncoverable)


def _columns(g: Groups, m: int) -> tuple[IntArray, IntArray, IntArray]:
    order, colptr = column_order(g.indptr, g.indices, m)
    return order, colptr, g.entry_group()


def greedy_cover(g: Groups, *, m: int, free: BoolArray, count: int | None,
                 site_cost: FloatArray | None, budget: float | None,
                 weighted: bool = True) -> BoolArray:
    """Greedy maximal coverage (or set cover when ``count`` is ``None`` and no budget).

    Each step opens the free candidate covering the most uncovered weight (per unit cost when a
    budget applies); gains are updated incrementally, so a full run reads every entry twice.
    """
    order, colptr, eg = _columns(g, m)
    gw = g.weight if weighted else np.ones(g.size)
    gain = np.bincount(g.indices, weights=gw[eg], minlength=m)
    gain[~free] = -1.0
    covered = np.zeros(g.size, dtype=bool)
    chosen = np.zeros(m, dtype=bool)
    spent = 0.0
    while count is None or int(chosen.sum()) < count:
        if site_cost is not None and budget is not None:
            affordable = free & ~chosen & (site_cost <= budget - spent + 1e-9)
            score = np.where(affordable, gain / np.maximum(site_cost, 1e-12), -1.0)
        else:
            score = np.where(~chosen, gain, -1.0)
        j = int(np.argmax(score))
        if score[j] <= 0 or gain[j] <= 0:
            break
        chosen[j] = True
        if site_cost is not None:
            spent += float(site_cost[j])
        new = eg[order[colptr[j]:colptr[j + 1]]]
        new = new[~covered[new]]
        covered[new] = True
        pos = gather(g.indptr, new)
        gain -= np.bincount(g.indices[pos], weights=gw[eg[pos]], minlength=m)
        if count is None and covered.all():
            break
    return chosen


def _counts(g: Groups, chosen: BoolArray, order: IntArray, colptr: IntArray,
            eg: IntArray) -> IntArray:
    """Number of chosen candidates covering each group (reads only the chosen columns)."""
    entries = order[gather(colptr, np.flatnonzero(chosen))]
    return np.bincount(eg[entries], minlength=g.size)


def swap_cover(g: Groups, chosen: BoolArray, *, m: int, free: BoolArray,
               site_cost: FloatArray | None, budget: float | None,
               deadline: float) -> BoolArray:
    """Best-improvement swaps (one in, one out) for maximal coverage until none improves.

    Only groups covered at most once matter for a single swap: ``gain(j)`` sums the uncovered
    weight ``j`` covers, ``loss(r)`` the weight covered by ``r`` alone, and ``extra(j, r)`` the
    part of ``loss(r)`` that ``j`` would keep covered.
    """
    order, colptr, eg = _columns(g, m)
    chosen = chosen.copy()
    while time.perf_counter() < deadline:
        removable = np.flatnonzero(chosen)
        insertable = free & ~chosen
        if removable.size == 0 or not insertable.any():
            break
        cnt = _counts(g, chosen, order, colptr, eg)
        low = np.flatnonzero(cnt <= 1)
        pos = gather(g.indptr, low)
        grp = np.repeat(low, np.diff(g.indptr)[low])
        idx = g.indices[pos]
        on = chosen[idx]
        zero = cnt[grp] == 0
        gain = np.bincount(idx[zero], weights=g.weight[grp[zero]], minlength=m)
        slot = np.full(m, -1, dtype=np.int64)
        slot[removable] = np.arange(removable.size)
        only = np.full(g.size, -1, dtype=np.int64)
        only[grp[on]] = idx[on]
        k = removable.size
        has = only >= 0
        loss = np.bincount(slot[only[has]], weights=g.weight[has], minlength=k)
        sel = ~zero & ~on
        extra = np.bincount(idx[sel].astype(np.int64) * k + slot[only[grp[sel]]],
                            weights=g.weight[grp[sel]], minlength=m * k).reshape(m, k)
        profit = gain[:, None] - loss[None, :] + extra
        profit[~insertable, :] = -np.inf
        if site_cost is not None and budget is not None:
            spent = float(site_cost[chosen].sum())
            over = spent + site_cost[:, None] - site_cost[removable][None, :] > budget + 1e-9
            profit[over] = -np.inf
        flat = int(np.argmax(profit))
        j, r = divmod(flat, k)
        if not profit[j, r] > 1e-9 * max(float(g.weight.sum()), 1.0):
            break
        chosen[j] = True
        chosen[removable[r]] = False
    return chosen


def covered_weight(g: Groups, chosen: BoolArray) -> float:
    """Weight covered by ``chosen`` (plus the constant part)."""
    hit = np.zeros(g.size, dtype=bool)
    hit[g.entry_group()[chosen[g.indices]]] = True
    return g.constant + float(g.weight[hit].sum())


@dataclass
class _Dual:
    bound: float
    sigma: FloatArray
    incumbent: BoolArray
    lower: float


@numba.njit(cache=True, nogil=True)
def _sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(cache=True, nogil=True)
def _smooth_threshold(sigma: FloatArray, free: BoolArray, k: int, tau: float) -> float:
    """``nu`` with ``sum_{j free} sigmoid((sigma_j - nu) / tau) = k`` (needs ``k < #free``).

    Safeguarded Newton on a decreasing function, bracketed by the extreme scores.
    """
    lo, hi = math.inf, -math.inf
    for j in range(sigma.size):
        if free[j]:
            lo = min(lo, sigma[j])
            hi = max(hi, sigma[j])
    lo -= 60.0 * tau
    hi += 60.0 * tau
    nu = 0.5 * (lo + hi)
    for _ in range(200):
        h, d = -float(k), 0.0
        for j in range(sigma.size):
            if free[j]:
                s = _sigmoid((sigma[j] - nu) / tau)
                h += s
                d += s * (1.0 - s)
        if h > 0.0:
            lo = nu
        else:
            hi = nu
        if abs(h) < 1e-9 or hi - lo <= 1e-12 * max(abs(nu), 1.0):
            break
        step = nu + h * tau / max(d, 1e-300)
        nu = step if lo < step < hi else 0.5 * (lo + hi)
    return nu


@numba.njit(cache=True, nogil=True)
def _descent_pass(indptr: IntArray, indices: npt.NDArray[np.int32], weight: FloatArray,
                  lam: FloatArray, sigma: FloatArray, free: BoolArray, nu: float, tau: float,
                  buf: FloatArray) -> None:
    """One sweep of exact coordinate minimisation of the smoothed dual over each ``lam_g``.

    For group ``g`` with ``a_j = sigma_j - lam_g - nu``, the minimiser of
    ``-x + tau * sum_j softplus((a_j + x) / tau)`` over ``[0, W_g]`` solves
    ``sum_j sigmoid((a_j + x) / tau) = 1``; sites far below or above the threshold are settled
    without evaluating exponentials. ``sigma`` is updated in place.
    """
    cut = 35.0 * tau
    for g in range(weight.size):
        lg, wg = lam[g], weight[g]
        n = 0
        hot = False
        for e in range(indptr[g], indptr[g + 1]):
            j = indices[e]
            if not free[j]:
                continue
            a = sigma[j] - lg - nu
            if a > cut:
                hot = True
                break
            if a + wg > -cut:
                buf[n] = a
                n += 1
        if hot:
            new = 0.0
        elif n == 0:
            new = wg
        else:
            h0, hw = -1.0, -1.0
            for t in range(n):
                h0 += _sigmoid(buf[t] / tau)
                hw += _sigmoid((buf[t] + wg) / tau)
            if h0 >= 0.0:
                new = 0.0
            elif hw <= 0.0:
                new = wg
            else:
                lo, hi = 0.0, wg
                x = min(max(lg, 0.0), wg)
                for _ in range(60):
                    h, d = -1.0, 0.0
                    for t in range(n):
                        s = _sigmoid((buf[t] + x) / tau)
                        h += s
                        d += s * (1.0 - s)
                    if h > 0.0:
                        hi = x
                    else:
                        lo = x
                    if abs(h) < 1e-10 or hi - lo <= 1e-12 * max(wg, 1.0):
                        break
                    step = x - h * tau / max(d, 1e-300)
                    x = step if lo < step < hi else 0.5 * (lo + hi)
                new = x
        if new != lg:
            lam[g] = new
            for e in range(indptr[g], indptr[g + 1]):
                sigma[indices[e]] += new - lg


def lagrangian_mclp(g: Groups, *, m: int, free: BoolArray, k: int, incumbent: BoolArray,
                    deadline: float, target_gap: float, max_passes: int = 400,
                    shrink: float = 0.975) -> _Dual:
    """Lagrangian upper bound of MCLP (coverage constraints relaxed, multipliers in [0, w]).

    ``L(lam) = const + sum_g (W_g - lam_g) + max_{|S| = k} sum_{j in S} sigma_j`` with
    ``sigma_j = sum_{g covered by j} lam_g``. Writing the top-``k`` sum as
    ``min_nu k nu + sum_j (sigma_j - nu)_+`` and replacing ``(.)_+`` by
    ``tau softplus(./tau)`` gives a smooth convex function, minimised by exact coordinate
    descent (each ``lam_g`` in turn, then ``nu``) while ``tau`` shrinks geometrically; this
    converges to the LP bound far faster than subgradient steps. Every pass's ``L(lam)`` is a
    valid bound; the best multipliers are re-evaluated exactly by :func:`lagrangian_value`.
    The ``k`` best-scored sites are then polished by :func:`swap_cover` (given the last
    quarter of the time) as an alternative incumbent.
    """
    polish_from = time.perf_counter() + 0.75 * max(deadline - time.perf_counter(), 0.0)
    cand = np.flatnonzero(free)
    lower = covered_weight(g, incumbent)
    if k >= cand.size:
        bound, sigma = lagrangian_value(g, np.zeros(g.size), free=free, k=k)
        return _Dual(bound=bound, sigma=sigma, incumbent=incumbent, lower=lower)
    lam = g.weight / np.maximum(np.diff(g.indptr), 1)
    sigma = np.bincount(g.indices, weights=lam[g.entry_group()], minlength=m)
    buf = np.empty(max(int(np.diff(g.indptr).max()), 1))
    tau = 0.05 * float(-np.partition(-sigma[cand], k - 1)[k - 1])
    best, best_lam = math.inf, lam.copy()
    checkpoint = math.inf
    for it in range(max_passes):
        nu = _smooth_threshold(sigma, free, k, max(tau, 1e-12))
        _descent_pass(g.indptr, g.indices, g.weight, lam, sigma, free, nu, max(tau, 1e-12),
                      buf)
        value = g.constant + float((g.weight - lam).sum()
                                   + np.partition(-sigma[cand], k - 1)[:k].sum() * -1.0)
        if value < best:
            best, best_lam = value, lam.copy()
        tau *= shrink
        if (best - lower <= target_gap * max(abs(lower), 1e-12)
                or time.perf_counter() > polish_from):
            break
        if it % 20 == 19:
            if checkpoint - best <= 1e-6 * abs(best):
                break
            checkpoint = best
    bound, sigma = lagrangian_value(g, best_lam, free=free, k=k)
    out = _Dual(bound=bound, sigma=sigma, incumbent=incumbent, lower=lower)
    if bound - lower > target_gap * max(abs(lower), 1e-12):
        start = np.zeros(m, dtype=bool)
        start[cand[np.argpartition(-sigma[cand], k - 1)[:k]]] = True
        alt = swap_cover(g, start, m=m, free=free, site_cost=None, budget=None,
                         deadline=deadline)
        value = covered_weight(g, alt)
        if value > lower:
            out.incumbent, out.lower = alt, value
    return out


def lagrangian_value(g: Groups, lam: FloatArray, *, free: BoolArray, k: int,
                     ) -> tuple[float, FloatArray]:
    """Exact Lagrangian bound ``L(lam)`` of MCLP and the site scores ``sigma``.

    Valid for *any* ``lam`` with ``0 <= lam <= W`` (it is clipped to that box first), so a
    dual vector from an LP solver is turned into a certified bound whatever its accuracy.
    """
    lam = np.clip(lam, 0.0, g.weight)
    sigma = np.bincount(g.indices, weights=lam[g.entry_group()], minlength=free.size)
    cand = np.flatnonzero(free)
    top = sigma[cand]
    if 0 < k < cand.size:
        top = top[np.argpartition(-top, k - 1)[:k]]
    elif k <= 0:
        top = top[:0]
    return g.constant + float((g.weight - lam).sum() + top.sum()), sigma


def lp_mclp(g: Groups, *, m: int, free: BoolArray, k: int, incumbent: BoolArray,
            deadline: float, seed: int) -> _Dual | None:
    """LP relaxation of MCLP solved by HiGHS: certified bound, scores and a rounded solution.

    The row duals of the coverage rows are the Lagrangian multipliers ``lam``; the bound is
    recomputed from them with :func:`lagrangian_value`, so it is valid even if HiGHS stopped
    early. The LP solution is rounded (the ``k`` largest ``y_j``, ties broken by score) and
    polished by :func:`swap_cover`; the better of that and ``incumbent`` is returned.
    Returns ``None`` when HiGHS gives no dual solution in time.
    """
    # primal simplex without presolve is the quickest on these merged models
    _, out = cover_mip(g, m=m, free=free, objective="max", count=k, site_cost=None,
                       budget=None, time_limit=deadline - time.perf_counter(), gap=0.0,
                       seed=seed, start=None, relax=True,
                       options={"simplex_strategy": 4, "presolve": "off"})
    if out.x is None or out.row_dual is None:
        return None
    bound, sigma = lagrangian_value(g, np.abs(out.row_dual[:g.size]), free=free, k=k)
    best = _Dual(bound=bound, sigma=sigma, incumbent=incumbent,
                 lower=covered_weight(g, incumbent))
    free_idx = np.flatnonzero(free)
    y = np.zeros(m)
    y[free_idx] = out.x[:free_idx.size]
    rank = np.lexsort((-sigma[free_idx], -np.round(y[free_idx], 6)))
    start = np.zeros(m, dtype=bool)
    start[free_idx[rank[:k]]] = True
    now = time.perf_counter()
    alt = swap_cover(g, start, m=m, free=free, site_cost=None, budget=None,
                     deadline=now + 0.2 * max(deadline - now, 0.0))
    value = covered_weight(g, alt)
    if value > best.lower:
        best.incumbent, best.lower = alt, value
    return best


def fix_by_dual(dual: _Dual, *, free: BoolArray, k: int, lower: float,
                ) -> tuple[BoolArray, BoolArray]:
    """Free candidates provably open / closed in every solution better than ``lower``."""
    m = free.size
    must_open = np.zeros(m, dtype=bool)
    must_close = np.zeros(m, dtype=bool)
    cand = np.flatnonzero(free)
    if k <= 0 or cand.size <= k:
        return must_open, must_close
    s = dual.sigma[cand]
    order = np.argsort(-s, kind="stable")
    kth, nxt = s[order[k - 1]], s[order[k]]
    ranked = np.zeros(cand.size, dtype=bool)
    ranked[order[:k]] = True
    tol = 1e-9 * max(abs(lower), 1.0)
    must_close[cand[~ranked & (dual.bound - (kth - s) <= lower + tol)]] = True
    must_open[cand[ranked & (dual.bound - (s - nxt) <= lower + tol)]] = True
    return must_open, must_close


def cover_mip(g: Groups, *, m: int, free: BoolArray, objective: str, count: int | None,
              site_cost: FloatArray | None, budget: float | None, time_limit: float,
              gap: float, seed: int, start: BoolArray | None,
              stop_at_first: bool = False, relax: bool = False,
              options: dict[str, str | int | float | bool] | None = None,
              ) -> tuple[BoolArray | None, MipOutcome]:
    """Exact model on groups (its LP relaxation with ``relax``).

    ``objective="max"`` (MCLP): ``max sum W_g z_g`` s.t. ``z_g <= sum_{j in N_g} y_j``,
    ``0 <= z <= 1``; ``objective="min"`` (set cover): ``min sum y`` s.t.
    ``sum_{j in N_g} y_j >= 1``. Both with ``sum y <= count`` and ``sum cost_j y_j <= budget``
    when given. Returns the chosen candidates (global mask) and HiGHS's outcome; ``options``
    go to HiGHS.
    """
    free_idx = np.flatnonzero(free)
    ycol = np.full(m, -1, dtype=np.int64)
    ycol[free_idx] = np.arange(free_idx.size)
    n_y = free_idx.size
    eg = g.entry_group()
    ok = ycol[g.indices] >= 0
    gmax = objective == "max"
    n_z = g.size if gmax else 0
    rows = [eg[ok]]
    cols = [ycol[g.indices[ok]]]
    vals = [np.full(int(ok.sum()), -1.0 if gmax else 1.0)]
    if gmax:
        rows.append(np.arange(g.size))
        cols.append(n_y + np.arange(g.size))
        vals.append(np.ones(g.size))
        lo = [np.full(g.size, -np.inf)]
        hi = [np.zeros(g.size)]
    else:
        lo = [np.ones(g.size)]
        hi = [np.full(g.size, np.inf)]
    nrow = g.size
    for coef, limit in ((np.ones(n_y), count),
                        (site_cost[free_idx] if site_cost is not None else None, budget)):
        if limit is None or coef is None:
            continue
        rows.append(np.full(n_y, nrow))
        cols.append(np.arange(n_y))
        vals.append(coef)
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(limit)]))
        nrow += 1
    n_col = n_y + n_z
    matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(nrow, n_col))
    cost = np.concatenate([np.zeros(n_y), g.weight]) if gmax else np.ones(n_y)
    if stop_at_first:
        cost = np.zeros(n_col)
    integer = np.zeros(n_col, dtype=bool)
    integer[:n_y] = not relax
    x0 = None
    if start is not None:
        x0 = np.zeros(n_col)
        x0[:n_y] = start[free_idx]
        if gmax:
            hit = np.zeros(g.size)
            hit[eg[start[g.indices]]] = 1.0
            x0[n_y:] = hit
    out = solve_mip(cost=cost, matrix=matrix, row_lower=np.concatenate(lo),
                    row_upper=np.concatenate(hi), col_lower=np.zeros(n_col),
                    col_upper=np.ones(n_col), integer=integer, maximize=gmax,
                    time_limit=time_limit, gap=gap, seed=seed, start=x0,
                    offset=g.constant if gmax else 0.0, stop_at_first=stop_at_first,
                    options=options)
    if out.x is None or relax:
        return None, out
    chosen = np.zeros(m, dtype=bool)
    chosen[free_idx[out.x[:n_y] > 0.5]] = True
    return chosen, out


def capacitated_mip(c: SortedCosts, w: FloatArray, *, model: str, radius: float,
                    capacities: FloatArray, fixed: BoolArray, allowed: BoolArray,
                    count: int | None, site_cost: FloatArray | None, budget: float | None,
                    time_limit: float, gap: float, seed: int,
                    ) -> tuple[BoolArray | None, IntArray, MipOutcome]:
    """Capacitated single-source model solved exactly with HiGHS.

    Binary ``x_ij`` assigns all of demand ``i`` to candidate ``j`` (reachable within
    ``radius``), ``x_ij <= y_j`` and ``sum_i w_i x_ij <= Q_j y_j``. ``model`` chooses the rest:
    ``"lscp"`` — every demand assigned, ``min sum y``; ``"mclp"`` — ``sum_j x_ij <= 1``,
    ``max sum w_i x_ij``; ``"pmedian"`` — every demand assigned, ``min sum w_i c_ij x_ij``.
    Returns the open mask, the assigned candidate per demand (-1 if none) and the outcome.
    """
    served = w > 0
    ent = np.flatnonzero((c.data <= radius) & served[c.rows] & allowed[c.indices])
    dem = np.flatnonzero(served)
    drow = np.full(c.n, -1, dtype=np.int64)
    drow[dem] = np.arange(dem.size)
    m, n_x, nd = c.m, ent.size, dem.size
    er, ej = c.rows[ent], c.indices[ent].astype(np.int64)
    xc = m + np.arange(n_x)
    rows = [drow[er], nd + np.arange(n_x), nd + np.arange(n_x),
            nd + n_x + ej, nd + n_x + np.arange(m)]
    cols = [xc, xc, ej, xc, np.arange(m)]
    vals = [np.ones(n_x), np.ones(n_x), -np.ones(n_x), w[er], -capacities]
    assign_lo = 0.0 if model == "mclp" else 1.0
    lo = [np.full(nd, assign_lo), np.full(n_x, -np.inf), np.full(m, -np.inf)]
    hi = [np.ones(nd), np.zeros(n_x), np.zeros(m)]
    nrow = nd + n_x + m
    for coef, limit, equal in ((np.ones(m), count, model == "pmedian"),
                               (np.where(fixed, 0.0, site_cost) if site_cost is not None
                                else None, budget, False)):
        if limit is None or coef is None:
            continue
        rows.append(np.full(m, nrow))
        cols.append(np.arange(m))
        vals.append(coef)
        lo.append(np.array([float(limit) if equal else -np.inf]))
        hi.append(np.array([float(limit)]))
        nrow += 1
    matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(nrow, m + n_x))
    if model == "lscp":
        cost = np.concatenate([np.ones(m), np.zeros(n_x)])
    elif model == "mclp":
        cost = np.concatenate([np.zeros(m), w[er]])
    else:
        cost = np.concatenate([np.zeros(m), w[er] * c.data[ent]])
    col_lo = np.concatenate([fixed.astype(np.float64), np.zeros(n_x)])
    col_hi = np.concatenate([allowed.astype(np.float64), np.ones(n_x)])
    out = solve_mip(cost=cost, matrix=matrix, row_lower=np.concatenate(lo),
                    row_upper=np.concatenate(hi), col_lower=col_lo, col_upper=col_hi,
                    integer=np.ones(m + n_x, dtype=bool), maximize=model == "mclp",
                    time_limit=time_limit, gap=gap, seed=seed)
    assigned = np.full(c.n, -1, dtype=np.int64)
    if out.x is None:
        return None, assigned, out
    on = out.x[m:] > 0.5
    assigned[er[on]] = ej[on]
    return out.x[:m] > 0.5, assigned, out
