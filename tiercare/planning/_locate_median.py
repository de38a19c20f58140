"""p-median engine: greedy + fast interchange, Lagrangian bound, reduced exact MIP.

Model (``S`` = open sites, ``F`` = fixed open, ``X`` = forbidden)::

    min  sum_i w_i min_{j in S} c_ij     s.t. |S| = p,  F ⊆ S,  S ∩ X = ∅

Pipeline (uncapacitated):

1. Greedy addition then *fast interchange* (vertex substitution, Teitz–Bart with the
   gain/loss/extra bookkeeping of Whitaker and Resende–Werneck) gives an incumbent ``UB``.
2. Lagrangian relaxation of the assignment constraints ``sum_j x_ij = 1`` with multipliers
   ``u``: ``L(u) = sum_i u_i + min_{|S|=p} sum_{j in S} rho_j(u)`` where
   ``rho_j(u) = sum_i min(0, w_i c_ij - u_i)``. Every ``L(u)`` is a valid lower bound; ``u`` is
   improved by subgradient steps (Polyak step towards ``UB``).
3. Reduced-cost fixing: a candidate whose forced opening (closing) lifts the Lagrangian bound to
   ``UB`` or beyond cannot be in a better solution and is fixed closed (open).
4. If the gap is still above the target, the reduced model (only free candidates; for each demand
   only candidates nearer than its nearest surely-open site) is solved exactly with HiGHS, warm
   started from the incumbent. The reported bound is ``min(UB, bound of the reduced model)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from tiercare.planning._locate_data import (
    BoolArray,
    FloatArray,
    Instance,
    SortedCosts,
    column_order,
    gather,
)
from tiercare.planning._locate_mip import solve_mip

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MedianOutcome:
    """Selected candidates and the certified bound of a p-median run."""

    open_: BoolArray
    objective: float
    bound: float
    method: str


def nearest_two(c: SortedCosts, open_: BoolArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Nearest open candidate of each demand, its cost and the second-nearest cost.

    Returns ``(f1, d1, d2)``; ``f1 = -1`` and ``d1 = inf`` when no open candidate is reachable,
    ``d2 = inf`` when fewer than two are.
    """
    pos = np.flatnonzero(open_[c.indices])
    f1 = np.full(c.n, -1, dtype=np.int64)
    d1 = np.full(c.n, np.inf)
    d2 = np.full(c.n, np.inf)
    if pos.size == 0:
        return f1, d1, d2
    rows = c.rows[pos]
    first = np.ones(pos.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    at = np.flatnonzero(first)
    fr = rows[at]
    f1[fr] = c.indices[pos[at]]
    d1[fr] = c.data[pos[at]]
    nxt = at + 1
    ok = nxt < pos.size
    ok[ok] = rows[nxt[ok]] == fr[ok]
    d2[fr[ok]] = c.data[pos[nxt[ok]]]
    return f1, d1, d2


def evaluate(c: SortedCosts, w: FloatArray, open_: BoolArray) -> float:
    """Weighted cost of serving each demand from its nearest open candidate (inf if any fails)."""
    _, d1, _ = nearest_two(c, open_)
    served = w > 0
    return float(np.dot(w[served], d1[served])) if np.isfinite(d1[served]).all() else math.inf


def _unserved_cost(c: SortedCosts, w: FloatArray) -> FloatArray:
    """Per-unit cost charged to an unserved demand inside the heuristics.

    ``w_i * cost_i`` equals the same large constant for every point, larger than the cost of
    any feasible solution, so the heuristics serve every point before they optimise.
    """
    top = float(c.data.max()) if c.nnz else 1.0
    big = 10.0 * (float(w.sum()) * top + 1.0)
    return big / np.maximum(w, big * 1e-300)


def _by_column(c: SortedCosts) -> tuple[IntArray, IntArray]:
    return column_order(c.indptr, c.indices, c.m)


def greedy(c: SortedCosts, w: FloatArray, *, p: int, fixed: BoolArray,
           allowed: BoolArray) -> BoolArray:
    """Greedy addition: open the candidate with the largest saving until ``p`` are open.

    Savings are updated incrementally: opening ``j`` only changes the savings of candidates
    that share a demand point whose nearest cost ``j`` improved.
    """
    big = _unserved_cost(c, w)
    open_ = fixed.copy()
    _, d1, _ = nearest_two(c, open_)
    d1 = np.minimum(d1, big)
    order, colptr = _by_column(c)
    gain = np.bincount(c.indices, weights=w[c.rows] * np.maximum(d1[c.rows] - c.data, 0.0),
                       minlength=c.m)
    while int(open_.sum()) < p:
        score = np.where(allowed & ~open_, gain, -1.0)
        j = int(np.argmax(score))
        if score[j] < 0:
            break
        open_[j] = True
        ent = order[colptr[j]:colptr[j + 1]]
        better = c.data[ent] < d1[c.rows[ent]]
        rows = c.rows[ent][better].astype(np.int64)
        new = c.data[ent][better]
        old = d1[rows]
        pos = gather(c.indptr, rows)
        rep = np.repeat(np.arange(rows.size), np.diff(c.indptr)[rows])
        cost = c.data[pos]
        delta = w[rows][rep] * (np.maximum(old[rep] - cost, 0.0) - np.maximum(new[rep] - cost,
                                                                              0.0))
        gain -= np.bincount(c.indices[pos], weights=delta, minlength=c.m)
        d1[rows] = new
    return open_


def interchange(c: SortedCosts, w: FloatArray, open_: BoolArray, *, fixed: BoolArray,
                allowed: BoolArray, deadline: float) -> BoolArray:
    """Fast interchange: apply the best improving swap (one in, one out) until none improves.

    For a swap inserting ``j`` and removing ``r`` the saving is
    ``gain(j) - loss(r) + extra(j, r)`` with ``gain(j) = sum_i w_i max(0, d1_i - c_ij)``,
    ``loss(r) = sum_{i: f1_i = r} w_i (d2_i - d1_i)`` and
    ``extra(j, r) = sum_{i: f1_i = r, c_ij < d2_i} w_i (d2_i - max(c_ij, d1_i))``.
    """
    big = _unserved_cost(c, w)
    full = c
    open_ = open_.copy()
    radius = np.full(c.n, -np.inf)
    wr = w[c.rows]
    while time.perf_counter() < deadline:
        removable = np.flatnonzero(open_ & ~fixed)
        insertable = allowed & ~open_
        if removable.size == 0 or not insertable.any():
            break
        f1, d1, d2 = nearest_two(c, open_)
        if np.any(~(d2 <= radius)):
            # the core (pairs within 3 × the second-nearest cost) no longer holds every
            # demand's two nearest open sites: rebuild it from the full matrix
            f1, d1, d2 = nearest_two(full, open_)
            radius = np.where(np.isfinite(d2), 3.0 * d2, np.inf)
            c = full.select(full.data <= radius[full.rows])
            wr = w[c.rows]
        d1 = np.minimum(d1, big)
        d2 = np.minimum(d2, big)
        d1r, d2r = d1[c.rows], d2[c.rows]
        total = float(np.dot(w, d1))
        saving = np.maximum(d1r - c.data, 0.0) * wr
        gain = np.bincount(c.indices, weights=saving, minlength=c.m)
        slot = np.full(c.m, -1, dtype=np.int64)
        slot[removable] = np.arange(removable.size)
        has = f1 >= 0
        loss = np.bincount(slot[f1[has]].clip(min=0), weights=(w * (d2 - d1))[has]
                           * (slot[f1[has]] >= 0), minlength=removable.size)
        f1r = f1[c.rows]
        sel = (c.data < d2r) & (f1r >= 0) & insertable[c.indices]
        sel[sel] = slot[f1r[sel]] >= 0
        k = removable.size
        extra = np.bincount(c.indices[sel].astype(np.int64) * k + slot[f1r[sel]],
                            weights=wr[sel] * (d2r[sel] - np.maximum(c.data[sel], d1r[sel])),
                            minlength=c.m * k).reshape(c.m, k)
        profit = gain[:, None] - loss[None, :] + extra
        profit[~insertable, :] = -np.inf
        flat = int(np.argmax(profit))
        j, rr = divmod(flat, k)
        if profit[j, rr] <= 1e-9 * max(total, 1.0):
            break
        open_[j] = True
        open_[removable[rr]] = False
    return open_


@dataclass
class _Lagrange:
    bound: float
    rho: FloatArray
    chosen: BoolArray
    incumbent: BoolArray
    upper: float
    u: FloatArray


def lagrangian(c: SortedCosts, w: FloatArray, *, p: int, fixed: BoolArray, allowed: BoolArray,
               incumbent: BoolArray, deadline: float, target_gap: float,
               max_iter: int = 3000) -> _Lagrange:
    """Subgradient optimisation of the Lagrangian dual, with primal repair.

    Multipliers are capped at ``u_i <= w_i * cap_i`` with ``cap_i`` 1.25 × the incumbent's
    second-nearest cost, so that pairs costing more than ``cap_i`` can never have a negative
    reduced cost and are left out of every iteration (the bound stays valid for any ``u``).
    Whenever the step size is halved, the current Lagrangian site set is polished by
    :func:`interchange`, which usually closes the gap from above.
    """
    upper = evaluate(c, w, incumbent)
    _, d1, d2 = nearest_two(c, incumbent)
    cap = np.where(np.isfinite(d2), 1.25 * d2, np.where(np.isfinite(d1), 3.0 * d1, np.inf))
    core = c.select(c.data <= cap[c.rows])
    wcap = np.full(c.n, np.inf)
    fin = np.isfinite(cap)
    wcap[fin] = w[fin] * cap[fin]
    wc = w[core.rows] * core.data
    u = np.zeros(c.n)
    fin = np.isfinite(d1)
    u[fin] = w[fin] * d1[fin]
    free = allowed & ~fixed
    cand = np.flatnonzero(free)
    k = p - int(fixed.sum())
    theta = 2.0
    best = _Lagrange(bound=-math.inf, rho=np.zeros(c.m), chosen=fixed.copy(),
                     incumbent=incumbent, upper=upper, u=u)
    tried: set[bytes] = set()
    stall = 0
    checkpoint = -math.inf
    direction = np.zeros(c.n)
    for it in range(max_iter):
        if it % 100 == 99:
            # stop when a hundred steps gained almost nothing
            if best.bound - checkpoint <= 1e-6 * abs(best.upper):
                break
            checkpoint = best.bound
        red = wc - u[core.rows]
        neg = red < 0
        rho = np.bincount(core.indices[neg], weights=red[neg], minlength=c.m)
        chosen = fixed.copy()
        if 0 < k < cand.size:
            chosen[cand[np.argpartition(rho[cand], k - 1)[:k]]] = True
        elif k > 0:
            chosen[cand] = True
        bound = float(u.sum() + rho[chosen].sum())
        if bound > best.bound + 1e-12 * abs(bound):
            best = _Lagrange(bound=bound, rho=rho, chosen=chosen, incumbent=best.incumbent,
                             upper=best.upper, u=u)
            stall = 0
        else:
            stall += 1
            if stall >= 20:
                theta /= 2.0
                stall = 0
                key = best.chosen.tobytes()
                if key not in tried:
                    tried.add(key)
                    now = time.perf_counter()
                    alt = interchange(c, w, best.chosen, fixed=fixed, allowed=allowed,
                                      deadline=now + 0.15 * max(deadline - now, 0.0))
                    value = evaluate(c, w, alt)
                    if value < best.upper:
                        best.incumbent, best.upper = alt, value
        if best.upper - best.bound <= target_gap * abs(best.upper) or theta < 1e-4:
            break
        if time.perf_counter() > deadline:
            break
        served = np.bincount(core.rows[neg & chosen[core.indices]], minlength=c.n)
        g = 1.0 - served
        g[w <= 0] = 0.0
        if not g.any():
            break
        # deflected subgradient: keep half of the previous direction
        direction = g + 0.5 * direction
        norm = float(np.dot(direction, direction))
        target = best.upper if math.isfinite(best.upper) else abs(bound) * 1.05 + 1.0
        u = np.minimum(u + theta * max(target - bound, 1e-9 * abs(target)) / norm * direction,
                       wcap)
    return best


def _fixings(lag: _Lagrange, *, p: int, fixed: BoolArray, allowed: BoolArray,
             upper: float) -> tuple[BoolArray, BoolArray]:
    """Candidates provably open / closed in every solution better than ``upper``."""
    free_idx = np.flatnonzero(allowed & ~fixed)
    k = p - int(fixed.sum())
    must_open = fixed.copy()
    must_close = ~allowed
    if k <= 0 or free_idx.size == 0:
        must_close = must_close | (allowed & ~fixed)
        return must_open, must_close
    rho = lag.rho[free_idx]
    order = np.argsort(rho, kind="stable")
    kth = rho[order[k - 1]]
    nxt = rho[order[k]] if k < free_idx.size else math.inf
    tol = 1e-9 * max(abs(upper), 1.0)
    ranked_in = np.zeros(free_idx.size, dtype=bool)
    ranked_in[order[:k]] = True
    close = ~ranked_in & (lag.bound + (rho - kth) >= upper - tol)
    open_ = ranked_in & (lag.bound + (nxt - rho) >= upper - tol)
    must_close = must_close.copy()
    must_close[free_idx[close]] = True
    must_open[free_idx[open_]] = True
    return must_open, must_close


def _reduced_mip(c: SortedCosts, w: FloatArray, *, p: int, must_open: BoolArray,
                 must_close: BoolArray, incumbent: BoolArray, time_limit: float, gap: float,
                 seed: int, max_pairs: int, pairs: BoolArray | None = None,
                 ) -> tuple[BoolArray | None, float, float] | None:
    """Solve the model restricted by the fixings exactly; ``None`` if it is too large.

    ``pairs`` masks the demand–candidate pairs that may still serve in a better solution
    (a demand's nearest surely-open site is always kept as its fallback).
    """
    free = ~must_open & ~must_close
    served = w > 0
    usable = ~must_close[c.indices] & served[c.rows]
    sure = must_open[c.indices] & usable
    # cost of each demand's nearest surely-open candidate
    d_sure = np.full(c.n, np.inf)
    sp_pos = np.flatnonzero(sure)
    if sp_pos.size:
        r = c.rows[sp_pos]
        first = np.ones(sp_pos.size, dtype=bool)
        first[1:] = r[1:] != r[:-1]
        d_sure[r[first]] = c.data[sp_pos[first]]
    keep = usable & ((c.data < d_sure[c.rows]) & free[c.indices])
    if pairs is not None:
        keep &= pairs
    # demands with a cheaper free option keep their nearest sure site as fallback
    rows_open = np.zeros(c.n, dtype=bool)
    rows_open[c.rows[keep]] = True
    const = float(np.dot(w[served & ~rows_open & np.isfinite(d_sure)],
                         d_sure[served & ~rows_open & np.isfinite(d_sure)]))
    if np.any(served & ~rows_open & ~np.isfinite(d_sure)):
        return None, math.inf, math.inf  # a demand has no usable candidate at all
    fallback = rows_open & np.isfinite(d_sure)
    free_idx = np.flatnonzero(free)
    n_y = free_idx.size
    ycol = np.full(c.m, -1, dtype=np.int64)
    ycol[free_idx] = np.arange(n_y)
    kp = np.flatnonzero(keep)
    dem = np.flatnonzero(rows_open)
    drow = np.full(c.n, -1, dtype=np.int64)
    drow[dem] = np.arange(dem.size)
    n_x = kp.size
    fb = np.flatnonzero(fallback)
    n_f = fb.size
    if n_x + n_f > max_pairs:
        return None
    n_col = n_y + n_x + n_f
    cost = np.concatenate([np.zeros(n_y), w[c.rows[kp]] * c.data[kp], w[fb] * d_sure[fb]])
    # rows: assignment (dem.size, == 1), linking (n_x, x - y <= 0), count (1, == p - |open|)
    xcols = n_y + np.arange(n_x)
    fcols = n_y + n_x + np.arange(n_f)
    r_assign = np.concatenate([drow[c.rows[kp]], drow[fb]])
    c_assign = np.concatenate([xcols, fcols])
    link_rows = dem.size + np.arange(n_x)
    count_row = dem.size + n_x
    rows = np.concatenate([r_assign, link_rows, link_rows, np.full(n_y, count_row)])
    cols = np.concatenate([c_assign, xcols, ycol[c.indices[kp]], np.arange(n_y)])
    vals = np.concatenate([np.ones(c_assign.size), np.ones(n_x), -np.ones(n_x), np.ones(n_y)])
    n_row = count_row + 1
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n_row, n_col))
    k = p - int(must_open.sum())
    lo = np.concatenate([np.ones(dem.size), np.full(n_x, -np.inf), [k]])
    hi = np.concatenate([np.ones(dem.size), np.zeros(n_x), [k]])
    integer = np.zeros(n_col, dtype=bool)
    integer[:n_y] = True
    start = None
    consistent = not (incumbent & must_close).any() and (incumbent | ~must_open).all()
    if consistent and int(incumbent.sum()) == p:
        f1, _, _ = nearest_two(c, incumbent)
        x0 = np.zeros(n_col)
        x0[:n_y] = incumbent[free_idx]
        ent_is_f1 = keep & (c.indices == f1[c.rows])
        first_hit = np.zeros(c.n, dtype=bool)
        pos = np.flatnonzero(ent_is_f1)
        pos = pos[np.unique(c.rows[pos], return_index=True)[1]]
        x0[n_y + np.searchsorted(kp, pos)] = 1.0
        first_hit[c.rows[pos]] = True
        x0[n_y + n_x + np.flatnonzero(~first_hit[fb])] = 1.0
        start = x0
    out = solve_mip(cost=cost, matrix=matrix, row_lower=lo, row_upper=hi,
                    col_lower=np.zeros(n_col), col_upper=np.ones(n_col), integer=integer,
                    maximize=False, time_limit=time_limit, gap=gap, seed=seed, start=start,
                    offset=const)
    if out.x is None:
        return None, math.inf, out.bound if not out.infeasible else math.inf
    chosen = must_open.copy()
    chosen[free_idx[out.x[:n_y] > 0.5]] = True
    return chosen, out.objective, out.bound


def solve_pmedian(inst: Instance, *, p: int, deadline: float, gap: float, seed: int,
                  method: str, max_pairs: int = 4_000_000) -> MedianOutcome:
    """Run the uncapacitated p-median pipeline described in the module docstring."""
    c, w = inst.costs, inst.weights
    allowed = ~inst.forbidden
    fixed = inst.fixed
    start = time.perf_counter()
    if method == "mip":
        out = _reduced_mip(c, w, p=p, must_open=fixed, must_close=~allowed,
                           incumbent=np.zeros(c.m, dtype=bool),
                           time_limit=deadline - start, gap=gap, seed=seed,
                           max_pairs=np.iinfo(np.int64).max)
        assert out is not None
        chosen, obj, bound = out
        if chosen is None:
            return MedianOutcome(open_=fixed.copy(), objective=math.inf, bound=bound,
                                 method="mip")
        return MedianOutcome(open_=chosen, objective=evaluate(c, w, chosen), bound=bound,
                             method="mip")
    open_ = greedy(c, w, p=p, fixed=fixed, allowed=allowed)
    budget = max(deadline - time.perf_counter(), 0.0)
    open_ = interchange(c, w, open_, fixed=fixed, allowed=allowed,
                        deadline=time.perf_counter() + 0.25 * budget)
    lag = lagrangian(c, w, p=p, fixed=fixed, allowed=allowed, incumbent=open_,
                     deadline=deadline,
                     target_gap=gap if method == "heuristic" else max(gap, 1e-5))
    open_, upper = lag.incumbent, lag.upper
    bound = min(lag.bound, upper)
    method_used = "lagrangian+interchange"
    if method == "heuristic" or _gap(upper, bound) <= gap or time.perf_counter() >= deadline:
        return MedianOutcome(open_=open_, objective=upper, bound=bound, method=method_used)
    must_open, must_close = (_fixings(lag, p=p, fixed=fixed, allowed=allowed, upper=upper)
                             if math.isfinite(upper) else (fixed, ~allowed))
    # a pair whose Lagrangian reduced cost alone lifts the bound to UB never serves
    pairs = lag.bound + (w[c.rows] * c.data - lag.u[c.rows]) < upper - 1e-9 * abs(upper)
    remaining = deadline - time.perf_counter()
    out = _reduced_mip(c, w, p=p, must_open=must_open, must_close=must_close, incumbent=open_,
                       time_limit=remaining, gap=gap, seed=seed, max_pairs=max_pairs,
                       pairs=pairs)
    if out is None:
        return MedianOutcome(open_=open_, objective=upper, bound=bound, method=method_used)
    chosen, obj, mip_bound = out
    if chosen is not None:
        cand = evaluate(c, w, chosen)
        if cand < upper:
            open_, upper = chosen, cand
    bound = max(bound, min(upper, mip_bound))
    return MedianOutcome(open_=open_, objective=upper, bound=bound,
                         method=method_used + "+reduced-mip")


def _gap(upper: float, lower: float) -> float:
    if not (math.isfinite(upper) and math.isfinite(lower)):
        return math.inf
    return max(upper - lower, 0.0) / max(abs(upper), 1e-12)
