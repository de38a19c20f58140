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


@numba.njit(cache=True, nogil=True)
def _swap_apply(indptr: IntArray, indices: npt.NDArray[np.int32], colptr: IntArray,
                colgrp: IntArray, weight: FloatArray, chosen: BoolArray, cnt: IntArray,
                sole: IntArray, gain: FloatArray, loss: FloatArray, covered: FloatArray, j: int,
                delta: int) -> None:
    """Open (``delta = 1``) or close (``delta = -1``) site ``j``, updating the swap state.

    ``cnt[g]`` counts the chosen sites covering group ``g`` and ``sole[g]`` sums their ids (so
    it *is* the covering site when ``cnt[g] == 1``); ``gain[j]`` is the uncovered weight ``j``
    covers, ``loss[r]`` the weight only ``r`` covers and ``covered[0]`` the covered weight.
    """
    chosen[j] = delta > 0
    for e in range(colptr[j], colptr[j + 1]):
        g = colgrp[e]
        wg = weight[g]
        before = cnt[g]
        after = before + delta
        if before == 1:
            loss[sole[g]] -= wg
        cnt[g] = after
        sole[g] += delta * j
        if after == 1:
            loss[sole[g]] += wg
        if before == 0 or after == 0:
            sign = -wg if before == 0 else wg
            covered[0] -= sign
            for f in range(indptr[g], indptr[g + 1]):
                gain[indices[f]] += sign


@numba.njit(cache=True, nogil=True)
def _swap_run(indptr: IntArray, indices: npt.NDArray[np.int32], colptr: IntArray,
              colgrp: IntArray, weight: FloatArray, chosen: BoolArray, free: BoolArray,
              cost: FloatArray, budget: float, cnt: IntArray, sole: IntArray, gain: FloatArray,
              loss: FloatArray, covered: FloatArray, start: int, max_moves: int,
              tol: float) -> tuple[int, int]:
    """First-improvement 1-swaps, scanning entering sites cyclically from ``start``.

    For an entering site ``j`` the best leaving site ``r`` maximises
    ``gain[j] - loss[r] + extra[r]``, where ``extra[r]`` is the weight covered by ``r`` alone
    that ``j`` also covers (one read of ``j``'s column). The best swap for ``j`` is applied when
    it gains more than ``tol`` (and keeps ``sum cost`` within ``budget``). Stops after
    ``max_moves`` swaps or a full cycle without one; returns (swaps made, next start).
    """
    m = chosen.size
    extra = np.zeros(m)
    sites = np.flatnonzero(chosen)
    spent = 0.0
    for r in sites:
        spent += cost[r]
    moves, idle, j = 0, 0, start
    while idle < m and moves < max_moves:
        idle += 1
        if not chosen[j] and free[j] and gain[j] > tol:
            for e in range(colptr[j], colptr[j + 1]):
                g = colgrp[e]
                if cnt[g] == 1:
                    extra[sole[g]] += weight[g]
            best, br = -math.inf, -1
            for t in range(sites.size):
                r = sites[t]
                v = extra[r] - loss[r]
                extra[r] = 0.0
                if v > best and spent + cost[j] - cost[r] <= budget:
                    best, br = v, t
            if br >= 0 and gain[j] + best > tol:
                r = sites[br]
                _swap_apply(indptr, indices, colptr, colgrp, weight, chosen, cnt, sole, gain,
                            loss, covered, j, 1)
                _swap_apply(indptr, indices, colptr, colgrp, weight, chosen, cnt, sole, gain,
                            loss, covered, r, -1)
                sites[br] = j
                spent += cost[j] - cost[r]
                moves += 1
                idle = 0
        j = j + 1 if j + 1 < m else 0
    return moves, j


@numba.njit(cache=True, nogil=True)
def _kick_run(indptr: IntArray, indices: npt.NDArray[np.int32], colptr: IntArray,
              colgrp: IntArray, weight: FloatArray, chosen: BoolArray, free: BoolArray,
              cnt: IntArray, sole: IntArray, gain: FloatArray, loss: FloatArray,
              covered: FloatArray, kicks: int, size: int, seed: int, tol: float) -> int:
    """Run ``kicks`` rounds of iterated local search on the state.

    Each round perturbs, descends by 1-swaps and is undone if the covered weight dropped.
    A perturbation makes ``size`` random swaps, each opening a random free site that covers a
    random uncovered group and closing a random chosen site. The state (a 1-swap local optimum
    on entry) is left at the best solution found; returns the number of rounds that improved.
    """
    np.random.seed(seed)
    m, ng = chosen.size, cnt.size
    nocost = np.zeros(m)
    improved = 0
    for _ in range(kicks):
        saved = chosen.copy()
        before = covered[0]
        for _ in range(size):
            g = -1
            for _ in range(64):
                h = np.random.randint(ng)
                if cnt[h] == 0:
                    g = h
                    break
            if g < 0:
                break
            j = indices[indptr[g] + np.random.randint(indptr[g + 1] - indptr[g])]
            if chosen[j] or not free[j]:
                continue
            sites = np.flatnonzero(chosen)
            r = sites[np.random.randint(sites.size)]
            _swap_apply(indptr, indices, colptr, colgrp, weight, chosen, cnt, sole, gain,
                        loss, covered, j, 1)
            _swap_apply(indptr, indices, colptr, colgrp, weight, chosen, cnt, sole, gain,
                        loss, covered, r, -1)
        start = 0
        while True:
            moves, start = _swap_run(indptr, indices, colptr, colgrp, weight, chosen, free,
                                     nocost, math.inf, cnt, sole, gain, loss, covered, start,
                                     m, tol)
            if moves < m:
                break
        if covered[0] > before + tol:
            improved += 1
        elif covered[0] < before - tol:
            for j in range(m):
                if saved[j] and not chosen[j]:
                    _swap_apply(indptr, indices, colptr, colgrp, weight, chosen, cnt, sole,
                                gain, loss, covered, j, 1)
            for j in range(m):
                if chosen[j] and not saved[j]:
                    _swap_apply(indptr, indices, colptr, colgrp, weight, chosen, cnt, sole,
                                gain, loss, covered, j, -1)
    return improved


class SwapSearch:
    """Incremental local-search state of one maximal-coverage solution (numba kernels).

    Used on the large models of :func:`lagrangian_mclp`, where one 1-swap descent costs a
    fraction of a second; small models keep the NumPy :func:`swap_cover`, which needs no
    compiled code to be loaded. Build once per solution; the column structure (``columns``
    from :func:`swap_columns`) can be shared between several starts.
    """

    def __init__(self, g: Groups, chosen: BoolArray, *, m: int, free: BoolArray,
                 columns: tuple[IntArray, IntArray] | None = None) -> None:
        self.g, self.free = g, free
        self.chosen = chosen.copy()
        self.colptr, self.colgrp = columns if columns is not None else swap_columns(g, m)
        eg = g.entry_group()
        on = self.chosen[g.indices]
        self.cnt = np.bincount(eg[on], minlength=g.size).astype(np.int64)
        self.sole = np.bincount(eg[on], weights=g.indices[on], minlength=g.size).astype(np.int64)
        zero = self.cnt[eg] == 0
        self.gain = np.bincount(g.indices[zero], weights=g.weight[eg[zero]], minlength=m)
        one = np.flatnonzero(self.cnt == 1)
        self.loss = np.bincount(self.sole[one], weights=g.weight[one], minlength=m)
        self.covered = np.array([float(g.weight[self.cnt > 0].sum())])
        self.tol = 1e-9 * max(float(g.weight.sum()), 1.0)

    @property
    def value(self) -> float:
        """Covered weight of the current solution (plus the groups' constant)."""
        return self.g.constant + float(self.covered[0])

    def _args(self) -> tuple[npt.NDArray[np.generic], ...]:
        return (self.g.indptr, self.g.indices, self.colptr, self.colgrp, self.g.weight,
                self.chosen, self.free)

    def descend(self, *, deadline: float, site_cost: FloatArray | None = None,
                budget: float | None = None) -> None:
        """1-swaps until none improves (or the deadline passes)."""
        m = self.chosen.size
        if not self.chosen.any() or not (self.free & ~self.chosen).any():
            return
        priced = site_cost is not None and budget is not None
        cost = site_cost if priced else np.zeros(m)
        limit = float(budget) if priced else math.inf
        start = 0
        while time.perf_counter() < deadline:
            moves, start = _swap_run(*self._args(), cost, limit, self.cnt, self.sole,
                                     self.gain, self.loss, self.covered, start, 64, self.tol)
            if moves < 64:
                break

    def kick(self, *, deadline: float, seed: int, stop: float = math.inf, size: int = 3,
             chunk: int = 8, patience: int = 50) -> None:
        """Improve by iterated local search (:func:`_kick_run`), ``chunk`` rounds at a time.

        Call after :meth:`descend`. Ends before a chunk as long as the last one would run past
        the deadline, once the covered weight reaches ``stop`` or after ``patience`` chunks
        without improvement. Seeds follow from ``seed``.
        """
        if not self.chosen.any() or not (self.free & ~self.chosen).any():
            return
        round_, idle, last = 0, 0, 0.0
        while (time.perf_counter() + last < deadline and self.value < stop
               and idle < patience):
            began = time.perf_counter()
            better = _kick_run(*self._args(), self.cnt, self.sole, self.gain, self.loss,
                               self.covered, chunk, size, seed * 100_003 + round_, self.tol)
            last = time.perf_counter() - began
            idle = 0 if better else idle + 1
            round_ += 1


def swap_columns(g: Groups, m: int) -> tuple[IntArray, IntArray]:
    """Column pointers and the group of each column entry, as the swap kernels read them."""
    order, colptr, eg = _columns(g, m)
    return colptr, eg[order]


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


# Smoothing schedule of :func:`lagrangian_mclp` (measured on benchmarks/bench_locate.py's
# MCLP instances): start at 0.3 x the k-th best site score, lower tau by 0.7 once a pass gains
# less than 1e-7 of the smoothed value (or after 50 passes), never lag behind the clock's
# geometric path to 1e-3 x the start, stop below 1e-5 x the start.
_TAU_START = 0.3
_TAU_STEP = 0.7
_TAU_SETTLED = 1e-7
_TAU_LEVEL_PASSES = 50
_TAU_BY_DEADLINE = 1e-3
_TAU_END = 1e-5


def _smoothed_dual(g: Groups, lam: FloatArray, sigma: FloatArray, cand: IntArray, k: int,
                   nu: float, tau: float) -> float:
    """The smoothed Lagrangian ``const + sum (W - lam) + k nu + tau sum softplus(.)``."""
    x = (sigma[cand] - nu) / tau
    return (g.constant + float((g.weight - lam).sum()) + k * nu
            + tau * float(np.logaddexp(0.0, x).sum()))


def lagrangian_mclp(g: Groups, *, m: int, free: BoolArray, k: int, incumbent: BoolArray,
                    deadline: float, target_gap: float, seed: int = 0, polish: float = 0.25,
                    ) -> _Dual:
    """Lagrangian upper bound of MCLP (coverage constraints relaxed, multipliers in [0, w]).

    ``L(lam) = const + sum_g (W_g - lam_g) + max_{|S| = k} sum_{j in S} sigma_j`` with
    ``sigma_j = sum_{g covered by j} lam_g``. Writing the top-``k`` sum as
    ``min_nu k nu + sum_j (sigma_j - nu)_+`` and replacing ``(.)_+`` by
    ``tau softplus(./tau)`` gives a smooth convex function, minimised by exact coordinate
    descent (each ``lam_g`` in turn, then ``nu``). ``tau`` is lowered by continuation: once
    the smoothed value settles at one level (or, at the latest, as the clock runs towards
    the deadline), so that the descent follows the smoothed minimum down to the LP bound
    instead of stalling at a kink. Every pass's ``L(lam)`` is a valid bound; the best
    multipliers are re-evaluated exactly by :func:`lagrangian_value`.
    In the last ``polish`` share of the time, the ``k`` best-scored sites and ``incumbent``
    are each taken to a 1-swap local optimum, and the better one is improved by iterated
    local search (:class:`SwapSearch`) until the deadline.
    """
    began = time.perf_counter()
    span = max((1.0 - polish) * (deadline - began), 1e-9)
    polish_from = began + span
    cand = np.flatnonzero(free)
    lower = covered_weight(g, incumbent)
    if k >= cand.size:
        bound, sigma = lagrangian_value(g, np.zeros(g.size), free=free, k=k)
        return _Dual(bound=bound, sigma=sigma, incumbent=incumbent, lower=lower)
    lam = g.weight / np.maximum(np.diff(g.indptr), 1)
    sigma = np.bincount(g.indices, weights=lam[g.entry_group()], minlength=m)
    buf = np.empty(max(int(np.diff(g.indptr).max()), 1))
    tau_start = _TAU_START * float(-np.partition(-sigma[cand], k - 1)[k - 1])
    tau = max(tau_start, 1e-12)
    best, best_lam = math.inf, lam.copy()
    previous, passes = math.inf, 0
    while True:
        nu = _smooth_threshold(sigma, free, k, tau)
        _descent_pass(g.indptr, g.indices, g.weight, lam, sigma, free, nu, tau, buf)
        value = g.constant + float((g.weight - lam).sum()
                                   + np.partition(-sigma[cand], k - 1)[:k].sum() * -1.0)
        if value < best:
            best, best_lam = value, lam.copy()
        now = time.perf_counter()
        if best - lower <= target_gap * max(abs(lower), 1e-12) or now > polish_from:
            break
        smoothed = _smoothed_dual(g, lam, sigma, cand, k, nu, tau)
        passes += 1
        if previous - smoothed <= _TAU_SETTLED * abs(smoothed) or passes >= _TAU_LEVEL_PASSES:
            tau *= _TAU_STEP
            previous, passes = math.inf, 0
        else:
            previous = smoothed
        tau = min(tau, tau_start * _TAU_BY_DEADLINE ** ((now - began) / span))
        if tau < _TAU_END * tau_start or tau <= 1e-12:
            break
    bound, sigma = lagrangian_value(g, best_lam, free=free, k=k)
    out = _Dual(bound=bound, sigma=sigma, incumbent=incumbent, lower=lower)
    if bound - lower > target_gap * max(abs(lower), 1e-12):
        start = np.zeros(m, dtype=bool)
        start[cand[np.argpartition(-sigma[cand], k - 1)[:k]]] = True
        columns = swap_columns(g, m)
        best_search = None
        for first in (start, incumbent):
            if int(first.sum()) != k:
                continue
            search = SwapSearch(g, first, m=m, free=free, columns=columns)
            search.descend(deadline=deadline)
            if best_search is None or search.value > best_search.value:
                best_search = search
        if best_search is not None:
            best_search.kick(deadline=deadline, seed=seed,
                             stop=bound - target_gap * max(abs(bound), 1e-12))
            value = covered_weight(g, best_search.chosen)
            if value > lower:
                out.incumbent, out.lower = best_search.chosen, value
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
