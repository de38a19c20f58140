"""Two-tier siting model solved exactly with HiGHS (private to :mod:`tiercare.planning.locate`).

Upper tier (e.g. township centres to upgrade) and lower tier (e.g. clinics) are chosen together:
maximise the weight within ``T1`` of an open upper-tier site, subject to every required demand
point (by default those of positive weight) being within ``T2`` of an open lower-tier site.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from tiercare.planning._locate_data import BoolArray, FloatArray, IntArray, SortedCosts
from tiercare.planning._locate_median import nearest_two
from tiercare.planning._locate_mip import MipOutcome, solve_mip


@dataclass(frozen=True)
class TierData:
    """One tier: coverage pairs within its threshold and the site rules."""

    costs: SortedCosts
    threshold: float
    fixed: BoolArray
    forbidden: BoolArray


@dataclass(frozen=True)
class TwoTierSolution:
    """Open masks of both tiers and HiGHS's outcome of the coverage phase."""

    upper: BoolArray | None
    lower: BoolArray | None
    outcome: MipOutcome
    refined: bool


def _cover_entries(tier: TierData, rows_ok: BoolArray) -> tuple[IntArray, IntArray]:
    """(demand, site) pairs within the tier's threshold, usable sites and kept rows only."""
    c = tier.costs
    ent = (c.data <= tier.threshold) & ~tier.forbidden[c.indices] & rows_ok[c.rows]
    return c.rows[ent].astype(np.int64), c.indices[ent].astype(np.int64)


def uncovered_by_lower(lower: TierData, required: BoolArray) -> BoolArray:
    """Required demand points that no usable lower-tier site reaches within T2."""
    er, _ = _cover_entries(lower, required)
    reach = np.zeros(lower.costs.n, dtype=bool)
    reach[er] = True
    return required & ~reach


def solve_two_tier(upper: TierData, lower: TierData, weights: FloatArray, *,
                   required: BoolArray, upgrades: int,
                   nested: IntArray | None, new_lower: int | None,
                   lower_site_costs: FloatArray | None, lower_budget: float | None,
                   minimise_new_lower: bool, deadline: float, gap: float, seed: int,
                   ) -> TwoTierSolution:
    """Solve the two-tier model.

    Columns: ``Y_u`` (upper sites), ``X_l`` (lower sites), ``z_i`` (covered by the upper tier,
    continuous). Rows: ``z_i <= sum_{u in N1_i} Y_u``; ``sum_{l in N2_i} X_l >= 1`` for
    every ``required`` point; ``X_{nested[u]} >= Y_u`` when an upper site stands on a lower-tier site; at
    most ``upgrades`` new upper sites, ``new_lower`` new lower sites and ``lower_budget`` spent
    on new lower sites. The objective ``max sum w_i z_i``; then, if ``minimise_new_lower`` and
    the first phase is optimal, a second MIP keeps that coverage and opens the fewest new
    lower-tier sites. ``deadline`` is a :func:`time.perf_counter` value.
    """
    n = weights.size
    nu, nl = upper.costs.m, lower.costs.m
    ur, uc = _cover_entries(upper, weights > 0)
    lr, lc = _cover_entries(lower, required)
    dem = np.unique(ur)
    zcol = np.full(n, -1, dtype=np.int64)
    zcol[dem] = nu + nl + np.arange(dem.size)
    n_col = nu + nl + dem.size
    rows: list[IntArray] = [np.searchsorted(dem, ur), np.arange(dem.size)]
    cols: list[IntArray] = [uc, zcol[dem]]
    vals: list[FloatArray] = [-np.ones(ur.size), np.ones(dem.size)]
    lo: list[FloatArray] = [np.full(dem.size, -np.inf)]
    hi: list[FloatArray] = [np.zeros(dem.size)]
    nrow = dem.size
    need = np.flatnonzero(required)
    need_row = np.full(n, -1, dtype=np.int64)
    need_row[need] = nrow + np.arange(need.size)
    rows.append(need_row[lr])
    cols.append(nu + lc)
    vals.append(np.ones(lr.size))
    lo.append(np.ones(need.size))
    hi.append(np.full(need.size, np.inf))
    nrow += need.size
    if nested is not None:
        on = np.flatnonzero(nested >= 0)
        rows += [nrow + np.arange(on.size), nrow + np.arange(on.size)]
        cols += [nu + nested[on], on]
        vals += [np.ones(on.size), -np.ones(on.size)]
        lo.append(np.zeros(on.size))
        hi.append(np.full(on.size, np.inf))
        nrow += on.size
    new_u = ~upper.fixed
    new_l = ~lower.fixed
    limits: list[tuple[IntArray, FloatArray, float]] = [
        (np.flatnonzero(new_u), np.ones(int(new_u.sum())), float(upgrades))]
    if new_lower is not None:
        limits.append((nu + np.flatnonzero(new_l), np.ones(int(new_l.sum())), float(new_lower)))
    if lower_budget is not None and lower_site_costs is not None:
        limits.append((nu + np.flatnonzero(new_l), lower_site_costs[new_l], float(lower_budget)))
    for idx, coef, limit in limits:
        rows.append(np.full(idx.size, nrow))
        cols.append(idx)
        vals.append(coef)
        lo.append(np.array([-np.inf]))
        hi.append(np.array([limit]))
        nrow += 1
    matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(nrow, n_col))
    col_lo = np.concatenate([upper.fixed, lower.fixed, np.zeros(dem.size)]).astype(np.float64)
    col_hi = np.concatenate([~upper.forbidden, ~lower.forbidden,
                             np.ones(dem.size)]).astype(np.float64)
    integer = np.zeros(n_col, dtype=bool)
    integer[:nu + nl] = True
    cost = np.zeros(n_col)
    cost[nu + nl:] = weights[dem]
    row_lo, row_hi = np.concatenate(lo), np.concatenate(hi)
    out = solve_mip(cost=cost, matrix=matrix, row_lower=row_lo, row_upper=row_hi,
                    col_lower=col_lo, col_upper=col_hi, integer=integer, maximize=True,
                    time_limit=deadline - time.perf_counter(), gap=gap, seed=seed)
    if out.x is None:
        return TwoTierSolution(upper=None, lower=None, outcome=out, refined=False)
    x = out.x
    refined = False
    remaining = deadline - time.perf_counter()
    optimal = out.bound - out.objective <= 1e-9 * max(abs(out.objective), 1.0)
    if minimise_new_lower and optimal and remaining > 0:
        # keep the coverage (integral weights make the tolerance safe) and open fewest sites
        keep = sp.csr_matrix(cost[None, :])  # the objective row (weights of the z columns)
        tol = 1e-7 * max(abs(out.objective), 1.0)
        second = solve_mip(
            cost=np.concatenate([np.zeros(nu), new_l.astype(np.float64), np.zeros(dem.size)]),
            matrix=sp.vstack([matrix, keep], format="csr"),
            row_lower=np.concatenate([row_lo, [out.objective - tol]]),
            row_upper=np.concatenate([row_hi, [np.inf]]), col_lower=col_lo, col_upper=col_hi,
            integer=integer, maximize=False, time_limit=remaining, gap=0.0, seed=seed,
            start=x)
        if second.x is not None:
            x, refined = second.x, True
    return TwoTierSolution(upper=x[:nu] > 0.5, lower=x[nu:nu + nl] > 0.5, outcome=out,
                           refined=refined)


def covered_within(costs: SortedCosts, open_: BoolArray, threshold: float,
                   ) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Nearest open site within ``threshold`` of each demand point (-1 / ``nan`` if none)."""
    f1, d1, _ = nearest_two(costs, open_)
    within = d1 <= threshold
    return np.where(within, f1, -1), np.where(within, d1, math.nan)
