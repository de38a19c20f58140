"""Thin, typed wrapper around HiGHS (``highspy``) for the location models.

Models are passed as arrays (objective, a SciPy CSR constraint matrix, bounds, integrality), so
that building even a million-column model costs a few NumPy operations rather than one Python
object per variable.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float64]

_banner_lock = threading.Lock()
_banner_done = False


def _new_highs() -> highspy.Highs:
    """Create a solver; the first one in a process has its banner sent to standard error.

    HiGHS prints a copyright banner on standard output when the first solver of a process is
    created, which would corrupt JSON written to standard output by the command line.
    """
    global _banner_done
    with _banner_lock:
        if _banner_done:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            _banner_done = True
        return h


@dataclass(frozen=True)
class MipOutcome:
    """What HiGHS returned.

    Attributes
    ----------
    x:
        Column values of the best solution, or ``None`` if none was found.
    objective:
        Objective of ``x`` (``nan`` without a solution).
    bound:
        Proven dual bound (lower for minimisation, upper for maximisation); ``-inf``/``inf``
        when HiGHS proved nothing.
    infeasible:
        HiGHS proved that the model has no feasible solution.
    row_dual:
        Row duals of a solved linear program (``None`` for a MIP or without a solution).
    """

    x: FloatArray | None
    objective: float
    bound: float
    infeasible: bool
    row_dual: FloatArray | None = None


def solve_mip(*, cost: FloatArray, matrix: sp.csr_matrix, row_lower: FloatArray,
              row_upper: FloatArray, col_lower: FloatArray, col_upper: FloatArray,
              integer: npt.NDArray[np.bool_], maximize: bool, time_limit: float, gap: float,
              seed: int, start: FloatArray | None = None, offset: float = 0.0,
              stop_at_first: bool = False, lp_method: str = "choose",
              options: dict[str, str | int | float | bool] | None = None) -> MipOutcome:
    """Solve ``opt cost·x + offset`` s.t. ``row_lower <= matrix x <= row_upper`` and bounds.

    Parameters
    ----------
    integer:
        Mask of integer columns (the others are continuous).
    time_limit, gap:
        HiGHS ``time_limit`` (seconds) and ``mip_rel_gap``.
    seed:
        HiGHS ``random_seed``.
    start:
        A feasible solution handed to HiGHS as the first incumbent.
    stop_at_first:
        Stop at the first feasible solution (feasibility questions).
    options:
        Further HiGHS options, e.g. ``{"presolve": "off"}``.
    """
    if cost.size == 0:
        # nothing left to decide: the constant is the answer if the empty rows allow zero
        ok = bool(np.all(row_lower <= 0.0) and np.all(row_upper >= 0.0))
        value = float(offset) if ok else math.nan
        return MipOutcome(x=np.zeros(0) if ok else None, objective=value,
                          bound=value if ok else (-math.inf if maximize else math.inf),
                          infeasible=not ok)
    inf = highspy.kHighsInf
    csc = sp.csc_matrix(matrix)
    lp = highspy.HighsLp()
    lp.num_col_ = int(cost.size)
    lp.num_row_ = int(csc.shape[0])
    lp.col_cost_ = np.ascontiguousarray(cost, dtype=np.float64)
    lp.col_lower_ = np.ascontiguousarray(col_lower, dtype=np.float64)
    lp.col_upper_ = np.ascontiguousarray(col_upper, dtype=np.float64)
    lp.row_lower_ = np.where(np.isneginf(row_lower), -inf, row_lower).astype(np.float64)
    lp.row_upper_ = np.where(np.isposinf(row_upper), inf, row_upper).astype(np.float64)
    lp.offset_ = float(offset)
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(np.float64)
    is_mip = bool(integer.any())
    if is_mip:
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous
                           for b in integer]
    h = _new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    h.setOptionValue("mip_rel_gap", float(gap))
    h.setOptionValue("random_seed", int(seed) % 2147483647)
    if lp_method != "choose":
        h.setOptionValue("solver", lp_method)
        h.setOptionValue("run_crossover", "off")
    if stop_at_first:
        h.setOptionValue("mip_max_improving_sols", 1)
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    h.passModel(lp)
    if start is not None and is_mip:
        sol = highspy.HighsSolution()
        sol.col_value = list(np.asarray(start, dtype=np.float64))
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    infeasible = status == highspy.HighsModelStatus.kInfeasible
    has_sol = info.primal_solution_status == 2
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else None
    objective = float(info.objective_function_value) if has_sol else math.nan
    if is_mip:
        bound = float(info.mip_dual_bound)
        if not math.isfinite(bound):
            bound = math.inf if maximize else -math.inf
    elif status == highspy.HighsModelStatus.kOptimal:
        bound = objective
    else:
        bound = math.inf if maximize else -math.inf
    row_dual = None
    if not is_mip and has_sol and info.dual_solution_status == 2:
        row_dual = np.asarray(h.getSolution().row_dual, dtype=np.float64)
    return MipOutcome(x=x, objective=objective, bound=bound, infeasible=infeasible,
                      row_dual=row_dual)
