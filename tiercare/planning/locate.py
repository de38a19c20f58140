"""Location-allocation: where to build, upgrade or close facilities.

Four models share one API. Build a model from a cost matrix (dense NumPy array, ``inf`` =
unreachable, or a SciPy sparse matrix whose stored entries are the reachable pairs), from long
pairs, or from the travel-time engine, then call :meth:`~LocationModel.solve`, which returns a
frozen :class:`LocateResult` with the objective, a *certified* bound, the gap and a status.

Notation: demand points ``i`` with weights ``w_i`` (population or observed need), candidate sites
``j``, costs ``c_ij`` (travel time in seconds, or metres), open-site indicators ``y_j``,
coverage sets ``N_i = {j : c_ij <= T}``, fixed (existing, kept open) sites ``F`` and forbidden
(closed) sites ``X``.

``LSCP``
    ``min sum_j y_j`` s.t. every demand with ``w_i > 0`` has an open site in ``N_i``.
``MCLP``
    ``max sum_i w_i [N_i ∩ S ≠ ∅]`` with at most ``p`` sites and/or
    ``sum_{j ∉ F} cost_j y_j <= budget``.
``PMedian``
    ``min sum_i w_i min_{j in S} c_ij`` with exactly ``p`` sites.
``PCenter``
    ``min max_{i: w_i > 0} min_{j in S} c_ij`` with exactly ``p`` sites.
``TwoTierCover``
    Two tiers at once: upgrades maximising coverage within ``T1`` while every demand point
    stays within ``T2`` of an open lower-tier site (existing ones fixed, new ones limited).

Every model accepts ``fixed`` (counted in ``p``) and ``forbidden`` candidate ids; LSCP, MCLP and
PMedian accept ``capacities`` (single-source: a demand point is served wholly by one site and
``sum_i w_i x_ij <= Q_j``).

Solving
-------
Small or capacitated models are solved exactly with HiGHS. Large uncapacitated ones combine a
heuristic (greedy + vertex substitution) with a Lagrangian bound, fix variables by reduced cost and
solve the remaining model exactly if time allows, so every result carries a bound that is valid
whatever happened: ``bound <= optimum <= objective`` for minimisation (the reverse for MCLP).
Coverage models merge demand points with identical covering sets before solving.

Examples
--------
>>> import numpy as np
>>> costs = np.array([[1.0, 5.0], [4.0, 1.0], [6.0, 2.0]])
>>> result = PMedian.from_cost_matrix(costs, [10, 1, 1], p=1).solve()
>>> result.selected, result.objective, result.status
((0,), 20.0, 'optimal')
>>> MCLP.from_cost_matrix(costs, [10, 1, 1], threshold=2.0, p=1).solve().covered_weight
10.0
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from tiercare.errors import InfeasibleError, InputError, Problem
from tiercare.planning import _locate_cover as cover
from tiercare.planning import _locate_median as median
from tiercare.planning import _locate_tiers
from tiercare.planning._locate_data import (
    BoolArray,
    Instance,
    SortedCosts,
    build_instance,
    check_count,
    costs_from_id_pairs,
    costs_from_matrix,
    describe_ids,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from tiercare.planning.network import Network

__all__ = [
    "LSCP",
    "MCLP",
    "PMedian",
    "PCenter",
    "LocateResult",
    "LocateInfeasibleError",
    "LocationModel",
    "Status",
    "TwoTierCover",
    "TwoTierResult",
    "closure_losses",
]

Status = Literal["optimal", "gap-limited", "time-limited", "infeasible"]
Method = Literal["auto", "mip", "heuristic"]
_OPT_TOL = 1e-7
_SMALL_COVER_NNZ = 2_000  # merged coverage models up to this size go straight to HiGHS
_LP_COVER_NNZ = 400_000  # MCLP bound from HiGHS's LP up to this size, else Lagrangian
_MIP_COVER_NNZ = 1_000_000  # largest reduced MCLP model worth handing to HiGHS's MIP
# time kept back from the MCLP Lagrangian's local search for building the result (per demand
# point, at most _FINISH_SHARE of the remaining time)
_FINISH_SECONDS_PER_DEMAND = 1.5e-5
_FINISH_SHARE = 0.05
_M = TypeVar("_M", bound="LocationModel")


class LocateInfeasibleError(InfeasibleError):
    """The model has no feasible solution.

    Attributes
    ----------
    demand_ids:
        Demand points that cannot be served (empty when infeasibility is not tied to points).
    """

    def __init__(self, message: str, *, demand_ids: Sequence[Hashable] = ()) -> None:
        super().__init__(message)
        self.demand_ids = tuple(demand_ids)


@dataclass(frozen=True)
class LocateResult:
    """Outcome of :meth:`LocationModel.solve`.

    Attributes
    ----------
    model:
        ``"lscp"``, ``"mclp"``, ``"pmedian"`` or ``"pcenter"``.
    objective:
        Value of the returned solution (sites for LSCP, covered weight for MCLP, weighted cost
        for p-median, worst cost for p-center); ``nan`` if no solution was found.
    bound:
        Proven bound on the optimum: lower for minimisation, upper for MCLP.
    gap:
        ``|objective - bound| / |objective|`` (0 when both are 0).
    status:
        ``"optimal"`` (gap closed), ``"gap-limited"`` (gap <= the requested gap),
        ``"time-limited"`` (stopped by the time limit) or ``"infeasible"``.
    selected:
        Open candidate ids (fixed ones included), in candidate order.
    assignment:
        Demand id → candidate id: the serving site (nearest open site, or the capacitated
        assignment); for coverage models only covered demand points appear.
    covered_weight:
        Weight covered within the threshold (coverage models), else ``None``.
    seconds:
        Wall-clock time of the solve.
    method:
        How the result was obtained, e.g. ``"mip"`` or ``"lagrangian+interchange"``.
    """

    model: str
    objective: float
    bound: float
    gap: float
    status: Status
    selected: tuple[Hashable, ...]
    assignment: Mapping[Hashable, Hashable]
    covered_weight: float | None
    seconds: float
    method: str
    _table: pd.DataFrame = field(repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per demand point: ``demand_id``, ``weight``, ``candidate_id``, ``cost``,
        ``covered`` (coverage models; otherwise all ``True`` for served points)."""
        return self._table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``result.json``)."""
        return {
            "model": self.model,
            "objective": _num(self.objective),
            "bound": _num(self.bound),
            "gap": _num(self.gap),
            "status": self.status,
            "selected": [_plain(v) for v in self.selected],
            "assignment": {str(_plain(k)): _plain(v) for k, v in self.assignment.items()},
            "covered_weight": _num(self.covered_weight),
            "seconds": self.seconds,
            "method": self.method,
        }


def _as_ids(values: Sequence[Hashable] | npt.ArrayLike) -> list[Hashable]:
    """Ids as a list; the items of a NumPy array become Python scalars."""
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _plain(v: Hashable) -> Any:
    """Return a NumPy scalar id as the Python value JSON takes."""
    return v.item() if isinstance(v, np.generic) else v


def _num(v: float | None) -> float | None:
    """Return a finite number as ``float``, else ``None`` (JSON has no inf or NaN)."""
    return None if v is None or not math.isfinite(v) else float(v)


def _check_limits(time_limit: float, gap: float) -> None:
    """Refuse a time limit that is not a positive number or a gap outside ``[0, 1)``."""
    if not (time_limit > 0 and math.isfinite(time_limit)):
        raise InputError.single(f"must be a positive number, got {time_limit!r}",
                                field="time_limit")
    if not (0 <= gap < 1):
        raise InputError.single(f"must be in [0, 1), got {gap!r}", field="gap")


def _rel_gap(objective: float, bound: float, maximize: bool) -> float:
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    diff = (bound - objective) if maximize else (objective - bound)
    diff = max(diff, 0.0)
    if diff <= 1e-9:
        return 0.0
    return diff / max(abs(objective), 1e-12)


def _status(gap_value: float, target: float) -> Status:
    if gap_value <= _OPT_TOL:
        return "optimal"
    if gap_value <= target:
        return "gap-limited"
    return "time-limited"


class LocationModel(abc.ABC):
    """Common constructors and result assembly; use one of the concrete models.

    Parameters are validated when the model is built; :class:`~tiercare.errors.InputError`
    lists every problem (field, row, reason).
    """

    name: ClassVar[str] = ""
    maximize: ClassVar[bool] = False
    _needs_threshold: ClassVar[bool] = False
    _needs_p: ClassVar[bool] = False
    _allows: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, instance: Instance, *, threshold: float | None, p: int | None,
                 budget: float | None) -> None:
        self.instance = instance
        self.threshold = threshold
        self.p = p
        self.budget = budget

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_cost_matrix(
        cls: type[_M], costs: Any, weights: npt.ArrayLike | None = None, *,
        threshold: float | None = None, p: int | None = None,
        fixed: Collection[Hashable] | None = None,
        forbidden: Collection[Hashable] | None = None,
        capacities: npt.ArrayLike | None = None, costs_per_site: npt.ArrayLike | None = None,
        budget: float | None = None, demand_ids: Sequence[Hashable] | None = None,
        candidate_ids: Sequence[Hashable] | None = None,
    ) -> _M:
        """Build the model from a demand × candidate cost matrix.

        Parameters
        ----------
        costs:
            Dense array (``inf`` marks an unreachable pair) or SciPy sparse matrix (stored
            entries — explicit zeros included — are the reachable pairs, e.g. the output of
            :func:`tiercare.planning.network.travel_time_matrix`).
        weights:
            Demand weights (population or observed need), default 1. Points of weight 0 are
            ignored by every model.
        threshold:
            Coverage threshold in the matrix's units (LSCP, MCLP).
        p:
            Number of open sites, fixed ones included (MCLP: at most ``p``).
        fixed, forbidden:
            Candidate ids kept open / kept closed.
        capacities:
            Capacity per candidate in weight units (single-source assignment).
        costs_per_site, budget:
            MCLP: cost of opening each candidate and the budget for the new (non-fixed) sites.
        demand_ids, candidate_ids:
            Ids reported in results (default: row / column numbers).
        """
        problems: list[Problem] = []
        sc = costs_from_matrix(costs, problems, upto=cls._upto(threshold))
        return cls._build(sc, weights, problems, threshold=threshold, p=p, fixed=fixed,
                          forbidden=forbidden, capacities=capacities,
                          costs_per_site=costs_per_site, budget=budget, demand_ids=demand_ids,
                          candidate_ids=candidate_ids)

    @classmethod
    def from_pairs(
        cls: type[_M], demand: Sequence[Hashable] | npt.ArrayLike,
        candidate: Sequence[Hashable] | npt.ArrayLike, cost: npt.ArrayLike,
        weights: npt.ArrayLike | None = None, *, demand_ids: Sequence[Hashable] | None = None,
        candidate_ids: Sequence[Hashable] | None = None, threshold: float | None = None,
        p: int | None = None, fixed: Collection[Hashable] | None = None,
        forbidden: Collection[Hashable] | None = None, capacities: npt.ArrayLike | None = None,
        costs_per_site: npt.ArrayLike | None = None, budget: float | None = None,
    ) -> _M:
        """Build the model from long-form pairs ``(demand id, candidate id, cost)``.

        This is the sparse constructor: only the listed pairs are reachable. ``demand_ids`` and
        ``candidate_ids`` fix the universe and order (``weights``, ``capacities`` and
        ``costs_per_site`` follow them); by default they are the ids in order of first
        appearance. A pair naming an id outside the universe is refused with its row number.
        Other parameters as in :meth:`from_cost_matrix`.

        Examples
        --------
        >>> m = PMedian.from_pairs(["a", "a", "b"], ["x", "y", "y"], [1.0, 2.0, 0.0], p=1)
        >>> m.solve().selected
        ('y',)
        """
        problems: list[Problem] = []
        d, k = _as_ids(demand), _as_ids(candidate)
        d_ids = list(dict.fromkeys(d)) if demand_ids is None else list(demand_ids)
        c_ids = list(dict.fromkeys(k)) if candidate_ids is None else list(candidate_ids)
        sc = costs_from_id_pairs(d, k, cost, demand_ids=d_ids, candidate_ids=c_ids,
                                 problems=problems, upto=cls._upto(threshold))
        return cls._build(sc, weights, problems, threshold=threshold, p=p, fixed=fixed,
                          forbidden=forbidden, capacities=capacities,
                          costs_per_site=costs_per_site, budget=budget, demand_ids=d_ids,
                          candidate_ids=c_ids)

    @classmethod
    def from_engine(
        cls: type[_M], network: Network, demand: gpd.GeoDataFrame,
        candidates: gpd.GeoDataFrame, *, cutoff_s: float, weight_field: str | None = None,
        threshold: float | None = None, p: int | None = None,
        fixed: Collection[Hashable] | None = None,
        forbidden: Collection[Hashable] | None = None, capacity_field: str | None = None,
        cost_field: str | None = None, budget: float | None = None,
    ) -> _M:
        """Build the model from travel times computed by the planning engine.

        Travel times (seconds) from each demand point to each candidate within ``cutoff_s``
        come from :func:`tiercare.planning.network.travel_time_pairs`; pairs beyond the cutoff
        are unreachable, which keeps province-scale matrices sparse. Ids are the frames'
        indexes; ``weight_field``, ``capacity_field`` and ``cost_field`` (cost per site) name
        columns. ``threshold`` is in seconds.
        """
        from tiercare.planning.network import travel_time_pairs

        problems: list[Problem] = []
        for frame, col, name in ((demand, weight_field, "weight_field"),
                                 (candidates, capacity_field, "capacity_field"),
                                 (candidates, cost_field, "cost_field")):
            if col is not None and col not in frame.columns:
                problems.append(Problem(reason=f"no column {col!r}", field=name))
        if problems:
            raise InputError(problems)
        cand_i, dem_i, secs = travel_time_pairs(network, candidates, demand, cutoff_s=cutoff_s,
                                                direction="to_origins")
        sc = SortedCosts.from_coo(dem_i, cand_i, secs, n=len(demand), m=len(candidates))
        return cls._build(
            sc, demand[weight_field].to_numpy() if weight_field else None, problems,
            threshold=threshold, p=p, fixed=fixed, forbidden=forbidden,
            capacities=candidates[capacity_field].to_numpy() if capacity_field else None,
            costs_per_site=candidates[cost_field].to_numpy() if cost_field else None,
            budget=budget, demand_ids=list(demand.index), candidate_ids=list(candidates.index))

    @classmethod
    def _upto(cls, threshold: float | None) -> float:
        """Largest cost the model can use: the threshold for coverage models."""
        if cls._needs_threshold and isinstance(threshold, int | float) and threshold >= 0:
            return float(threshold)
        return math.inf

    @classmethod
    def _build(cls: type[_M], sc: SortedCosts | None, weights: npt.ArrayLike | None,
               problems: list[Problem], *, threshold: float | None, p: int | None,
               fixed: Collection[Hashable] | None, forbidden: Collection[Hashable] | None,
               capacities: npt.ArrayLike | None, costs_per_site: npt.ArrayLike | None,
               budget: float | None, demand_ids: Sequence[Hashable] | None,
               candidate_ids: Sequence[Hashable] | None) -> _M:
        given = {"threshold": threshold, "p": p, "capacities": capacities,
                 "costs_per_site": costs_per_site, "budget": budget}
        for key, value in given.items():
            if value is not None and key not in cls._allows:
                problems.append(Problem(reason=f"not used by {cls.name}", field=key,
                                        code="not_supported"))
        if cls._needs_threshold:
            if threshold is None:
                problems.append(Problem(reason="is required", field="threshold",
                                        code="missing"))
            elif not (isinstance(threshold, int | float) and math.isfinite(threshold)
                      and threshold >= 0):
                problems.append(Problem(reason=f"must be a number >= 0, got {threshold!r}",
                                        field="threshold"))
        if budget is not None:
            if costs_per_site is None:
                problems.append(Problem(reason="a budget needs costs_per_site",
                                        field="costs_per_site", code="missing"))
            if not (isinstance(budget, int | float) and math.isfinite(budget) and budget >= 0):
                problems.append(Problem(reason=f"must be a number >= 0, got {budget!r}",
                                        field="budget"))
        inst = build_instance(sc, weights, demand_ids=demand_ids, candidate_ids=candidate_ids,
                              fixed=fixed, forbidden=forbidden, capacities=capacities,
                              costs_per_site=costs_per_site, problems=problems)
        needs_p = cls._needs_p and not (cls.name == "mclp" and budget is not None)
        check_count("p", p, inst=inst, required=needs_p, problems=problems)
        if problems:
            raise InputError(problems)
        return cls(inst, threshold=None if threshold is None else float(threshold),
                   p=None if p is None else int(p),
                   budget=None if budget is None else float(budget))

    # ----------------------------------------------------------------- solving
    def solve(self, *, time_limit: float = 60.0, gap: float = 0.0, seed: int = 0,
              method: Method = "auto", raise_infeasible: bool = True) -> LocateResult:
        """Solve the model.

        Parameters
        ----------
        time_limit:
            Wall-clock limit in seconds (the result then says ``"time-limited"`` if the gap is
            not closed).
        gap:
            Relative gap at which to stop (0 = prove optimality).
        seed:
            Seed for HiGHS; the heuristics are deterministic, so a seed gives one answer when
            the time limit is not reached.
        method:
            ``"auto"`` (default), ``"mip"`` (HiGHS on the full model) or ``"heuristic"``
            (heuristic + Lagrangian bound only, where the model has one).
        raise_infeasible:
            Raise :class:`LocateInfeasibleError` on a proven infeasible model (default) or
            return a result with status ``"infeasible"``.

        Returns
        -------
        LocateResult
        """
        _check_limits(time_limit, gap)
        if method not in ("auto", "mip", "heuristic"):
            raise InputError.single(f"unknown method {method!r}", field="method")
        t0 = time.perf_counter()
        try:
            open_, objective, bound, how, assigned = self._solve(
                deadline=t0 + time_limit, gap=gap, seed=seed, method=method)
        except LocateInfeasibleError:
            if raise_infeasible:
                raise
            return self._result(None, math.nan, math.nan, "infeasible", 0.0, "infeasible",
                                None, time.perf_counter() - t0)
        g = _rel_gap(objective, bound, self.maximize)
        return self._result(open_, objective, bound, _status(g, gap), g, how, assigned,
                            time.perf_counter() - t0)

    @abc.abstractmethod
    def _solve(self, *, deadline: float, gap: float, seed: int, method: Method,
               ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        """Return ``(open mask, objective, bound, method, assignment or None)``."""

    def _covering_radius(self) -> float:
        return math.inf

    def _result(self, open_: BoolArray | None, objective: float, bound: float, status: Status,
                gap_value: float, how: str, assigned: npt.NDArray[np.int64] | None,
                seconds: float) -> LocateResult:
        inst = self.instance
        c = inst.costs
        if open_ is None:
            open_ = inst.fixed.copy()
        if assigned is None:
            f1, d1, _ = median.nearest_two(c, open_)
            radius = self._covering_radius()
            assigned = np.where(d1 <= radius, f1, -1)
        cost = np.full(c.n, np.nan)
        has = assigned >= 0
        if has.any():
            # cost of each demand's assigned pair: look it up in the sorted rows
            pair_cost = _pair_costs(c, np.flatnonzero(has), assigned[has])
            cost[has] = pair_cost
        covered = has & (inst.weights > 0)
        cand = np.asarray(inst.candidate_ids, dtype=object)
        table = pd.DataFrame({
            "demand_id": list(inst.demand_ids),
            "weight": inst.weights,
            "candidate_id": np.where(has, cand[np.maximum(assigned, 0)], None),
            "cost": cost,
            "covered": covered,
        })
        sel = tuple(inst.candidate_ids[j] for j in np.flatnonzero(open_))
        assignment = MappingProxyType({inst.demand_ids[i]: inst.candidate_ids[assigned[i]]
                                       for i in np.flatnonzero(has)})
        cw = float(inst.weights[covered].sum()) if self.name in ("lscp", "mclp") else None
        return LocateResult(model=self.name, objective=float(objective), bound=float(bound),
                            gap=float(gap_value), status=status, selected=sel,
                            assignment=assignment, covered_weight=cw, seconds=seconds,
                            method=how, _table=table)

    def _free(self) -> BoolArray:
        return ~self.instance.fixed & ~self.instance.forbidden

    def _uncoverable(self, mask: BoolArray, radius: float) -> LocateInfeasibleError:
        ids = [self.instance.demand_ids[i] for i in np.flatnonzero(mask)]
        return LocateInfeasibleError(
            f"{len(ids)} demand point(s) have no usable candidate within {radius:g}: "
            f"{describe_ids(ids)}", demand_ids=ids)


def _pair_costs(c: SortedCosts, rows: npt.NDArray[np.int64],
                cols: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    key = c.rows.astype(np.int64) * c.m + c.indices
    order = np.argsort(key, kind="stable")
    pos = order[np.searchsorted(key[order], rows * c.m + cols)]
    return c.data[pos]


class LSCP(LocationModel):
    """Location set covering: fewest sites so that every demand point is within ``threshold``.

    ``min sum_j y_j`` s.t. ``sum_{j in N_i} y_j >= 1`` for each demand with ``w_i > 0``,
    ``y_j = 1`` for fixed and ``0`` for forbidden sites. With ``capacities``, each demand is
    assigned wholly to one covering open site and ``sum_i w_i x_ij <= Q_j y_j``.
    A demand point that no usable candidate covers makes the model infeasible;
    :class:`LocateInfeasibleError` lists those points.

    Examples
    --------
    >>> costs = np.array([[1.0, 9.0], [9.0, 1.0], [2.0, 2.0]])
    >>> LSCP.from_cost_matrix(costs, threshold=2.0).solve().objective
    2.0
    """

    name = "lscp"
    _needs_threshold = True
    _allows = frozenset({"threshold", "capacities"})

    def _covering_radius(self) -> float:
        assert self.threshold is not None
        return self.threshold

    def _solve(self, *, deadline: float, gap: float, seed: int, method: Method,
               ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        inst, radius = self.instance, self._covering_radius()
        g = cover.make_groups(inst.costs, inst.weights, radius=radius, open_=inst.fixed,
                              usable=~inst.forbidden)
        if g.uncoverable.any():
            raise self._uncoverable(g.uncoverable, radius)
        nfixed = int(inst.fixed.sum())
        if inst.capacities is not None:
            return self._capacitated(deadline=deadline, gap=gap, seed=seed)
        if g.size == 0:
            return inst.fixed.copy(), float(nfixed), float(nfixed), "presolve", None
        free = self._free()
        start = cover.greedy_cover(g, m=inst.costs.m, free=free, count=None, site_cost=None,
                                   budget=None, weighted=False)
        chosen, out = cover.cover_mip(g, m=inst.costs.m, free=free, objective="min",
                                      count=None, site_cost=None, budget=None,
                                      time_limit=deadline - time.perf_counter(), gap=gap,
                                      seed=seed, start=start)
        if chosen is None or chosen.sum() > start.sum():
            chosen = start
        bound = math.ceil(out.bound - 1e-6) if math.isfinite(out.bound) else 0.0
        return inst.fixed | chosen, float(nfixed + chosen.sum()), float(nfixed + bound), \
            "mip", None

    def _capacitated(self, *, deadline: float, gap: float, seed: int,
                     ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        inst = self.instance
        assert inst.capacities is not None
        open_, assigned, out = cover.capacitated_mip(
            inst.costs, inst.weights, model="lscp", radius=self._covering_radius(),
            capacities=inst.capacities, fixed=inst.fixed, allowed=~inst.forbidden, count=None,
            site_cost=None, budget=None, time_limit=deadline - time.perf_counter(), gap=gap,
            seed=seed)
        if out.infeasible:
            raise LocateInfeasibleError("the capacities cannot serve every demand point within "
                                        f"{self._covering_radius():g}")
        if open_ is None:
            return inst.fixed.copy(), math.nan, out.bound, "capacitated-mip", None
        return open_, out.objective, math.ceil(out.bound - 1e-6), "capacitated-mip", assigned


class MCLP(LocationModel):
    """Maximal covering: with at most ``p`` sites (and/or a budget) cover the most weight.

    ``max sum_i w_i z_i`` s.t. ``z_i <= sum_{j in N_i} y_j``, ``sum_j y_j <= p``,
    ``sum_{j ∉ F} cost_j y_j <= budget``, ``0 <= z_i <= 1``, ``y`` binary. Demand points with
    identical ``N_i`` are merged first; for large instances a Lagrangian bound (coverage
    constraints relaxed) fixes candidates that cannot be in a better solution than the
    greedy + swap incumbent before HiGHS solves the rest. With ``capacities`` each covered point
    is assigned wholly to one covering site within the site's capacity.

    Examples
    --------
    >>> costs = np.array([[1.0, 9.0], [9.0, 1.0], [2.0, 2.0]])
    >>> r = MCLP.from_cost_matrix(costs, [5, 1, 1], threshold=2.0, p=1).solve()
    >>> r.selected, r.covered_weight, r.bound
    ((0,), 6.0, 6.0)
    """

    name = "mclp"
    maximize = True
    _needs_threshold = True
    _needs_p = True
    _allows = frozenset({"threshold", "p", "capacities", "costs_per_site", "budget"})

    def _covering_radius(self) -> float:
        assert self.threshold is not None
        return self.threshold

    def _solve(self, *, deadline: float, gap: float, seed: int, method: Method,
               ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        inst, radius = self.instance, self._covering_radius()
        m = inst.costs.m
        if inst.capacities is not None:
            return self._capacitated(deadline=deadline, gap=gap, seed=seed)
        g = cover.make_groups(inst.costs, inst.weights, radius=radius, open_=inst.fixed,
                              usable=~inst.forbidden)
        free = self._free()
        k = None if self.p is None else self.p - int(inst.fixed.sum())
        site_cost = inst.site_costs if self.budget is not None else None
        total = g.constant + float(g.weight.sum())
        if g.size == 0 or k == 0:
            return inst.fixed.copy(), g.constant, g.constant, "presolve", None
        chosen = cover.greedy_cover(g, m=m, free=free, count=k, site_cost=site_cost,
                                    budget=self.budget)
        small = g.indices.size <= _SMALL_COVER_NNZ and method != "heuristic"
        dual_bound = site_cost is None and k is not None and not small
        how = "greedy"
        if not (dual_bound and g.indices.size > _LP_COVER_NNZ):
            # the Lagrangian engine swaps from its own (better) start instead
            now = time.perf_counter()
            chosen = cover.swap_cover(g, chosen, m=m, free=free, site_cost=site_cost,
                                      budget=self.budget, deadline=now + 0.3 * (deadline - now))
            how += "+swap"
        lower = cover.covered_weight(g, chosen)
        upper = total
        must_open = np.zeros(m, dtype=bool)
        must_close = np.zeros(m, dtype=bool)
        if dual_bound:
            assert k is not None
            dual = None
            if g.indices.size <= _LP_COVER_NNZ:
                now = time.perf_counter()
                dual = cover.lp_mclp(g, m=m, free=free, k=k, incumbent=chosen,
                                     deadline=now + 0.5 * (deadline - now), seed=seed)
                how += "+lp"
            if dual is None:
                now = time.perf_counter()
                finish = min(_FINISH_SECONDS_PER_DEMAND * inst.costs.n,
                             _FINISH_SHARE * max(deadline - now, 0.0))
                dual = cover.lagrangian_mclp(g, m=m, free=free, k=k, incumbent=chosen,
                                             deadline=deadline - finish, target_gap=gap,
                                             seed=seed)
                how += "+lagrangian"
            chosen, lower = dual.incumbent, dual.lower
            upper = min(upper, dual.bound)
            if method != "mip":
                must_open, must_close = cover.fix_by_dual(dual, free=free, k=k, lower=lower)
        if (method == "heuristic" or _rel_gap(lower, upper, True) <= gap
                or time.perf_counter() >= deadline):
            return inst.fixed | chosen, lower, max(upper, lower), how, None
        if not (must_open | must_close).any() and g.indices.size > _MIP_COVER_NNZ:
            return inst.fixed | chosen, lower, max(upper, lower), how, None
        reduced = cover.restrict(g, open_=must_open, closed=must_close, m=m)
        if reduced.indices.size > _MIP_COVER_NNZ:
            return inst.fixed | chosen, lower, max(upper, lower), how, None
        free_r = free & ~must_open & ~must_close
        k_r = None if k is None else k - int(must_open.sum())
        consistent = not (chosen & must_close).any() and not (must_open & ~chosen).any()
        chosen_r, out = cover.cover_mip(
            reduced, m=m, free=free_r, objective="max", count=k_r, site_cost=site_cost,
            budget=None if self.budget is None else self.budget - float(
                (site_cost[must_open].sum()) if site_cost is not None else 0.0),
            time_limit=deadline - time.perf_counter(), gap=gap, seed=seed,
            start=(chosen & free_r) if consistent else None,
            # HiGHS's presolve finds little left to do after merging and fixing, and costs
            # more than it saves on these models
            options={"presolve": "off"} if how.endswith("+lp") else None)
        how += "+reduced-mip" if (must_open | must_close).any() else "+mip"
        if chosen_r is not None:
            cand = must_open | chosen_r
            value = cover.covered_weight(g, cand)
            if value > lower:
                chosen, lower = cand, value
        upper = min(upper, max(out.bound, lower))
        return inst.fixed | chosen, lower, max(upper, lower), how, None

    def _capacitated(self, *, deadline: float, gap: float, seed: int,
                     ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        inst = self.instance
        assert inst.capacities is not None
        open_, assigned, out = cover.capacitated_mip(
            inst.costs, inst.weights, model="mclp", radius=self._covering_radius(),
            capacities=inst.capacities, fixed=inst.fixed, allowed=~inst.forbidden,
            count=self.p, site_cost=inst.site_costs if self.budget is not None else None,
            budget=self.budget, time_limit=deadline - time.perf_counter(), gap=gap, seed=seed)
        if out.infeasible:
            raise LocateInfeasibleError("the fixed sites exceed the budget")
        if open_ is None:
            return inst.fixed.copy(), 0.0, out.bound, "capacitated-mip", None
        return open_, out.objective, out.bound, "capacitated-mip", assigned


class PMedian(LocationModel):
    """p-median: ``p`` sites minimising the total weighted cost of reaching the nearest one.

    ``min sum_ij w_i c_ij x_ij`` s.t. ``sum_j x_ij = 1``, ``x_ij <= y_j``, ``sum_j y_j = p``.
    Only stored (reachable) pairs may be used, so with a sparse matrix every demand point must
    keep an open site within the matrix's cutoff. With ``capacities`` the assignment is
    single-source and ``sum_i w_i x_ij <= Q_j y_j`` (solved with HiGHS).

    To ask *which k of the existing facilities could be closed with the least loss*, use the
    existing facilities as the only candidates and ``p = len(existing) - k`` (see also
    :func:`closure_losses` for the loss of closing each one alone).

    Examples
    --------
    >>> costs = np.array([[0.0, 3.0, 4.0], [3.0, 0.0, 1.0], [4.0, 1.0, 0.0]])
    >>> r = PMedian.from_cost_matrix(costs, [1, 1, 1], p=1).solve()
    >>> r.selected, r.objective, r.bound
    ((1,), 4.0, 4.0)
    """

    name = "pmedian"
    _needs_p = True
    _allows = frozenset({"p", "capacities"})

    def _solve(self, *, deadline: float, gap: float, seed: int, method: Method,
               ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        inst = self.instance
        assert self.p is not None
        reach = np.zeros(inst.costs.n, dtype=bool)
        reach[inst.costs.rows[~inst.forbidden[inst.costs.indices]]] = True
        lost = (inst.weights > 0) & ~reach
        if lost.any():
            raise self._uncoverable(lost, math.inf)
        if inst.capacities is not None:
            if float(np.sort(inst.capacities[~inst.forbidden])[-self.p:].sum()) < float(
                    inst.weights.sum()) - 1e-9:
                raise LocateInfeasibleError(
                    f"the {self.p} largest capacities cannot hold the total demand "
                    f"{inst.weights.sum():g}")
            open_, assigned, out = cover.capacitated_mip(
                inst.costs, inst.weights, model="pmedian", radius=math.inf,
                capacities=inst.capacities, fixed=inst.fixed, allowed=~inst.forbidden,
                count=self.p, site_cost=None, budget=None,
                time_limit=deadline - time.perf_counter(), gap=gap, seed=seed)
            if out.infeasible:
                raise LocateInfeasibleError("no assignment respects the capacities")
            if open_ is None:
                return inst.fixed.copy(), math.nan, out.bound, "capacitated-mip", None
            return open_, out.objective, out.bound, "capacitated-mip", assigned
        out_m = median.solve_pmedian(inst, p=self.p, deadline=deadline, gap=gap, seed=seed,
                                     method=method)
        if not math.isfinite(out_m.objective) and math.isinf(out_m.bound):
            raise LocateInfeasibleError(
                f"no choice of {self.p} sites serves every demand point within the matrix")
        return out_m.open_, out_m.objective, out_m.bound, out_m.method, None


class PCenter(LocationModel):
    """p-center: ``p`` sites minimising the largest cost from a demand point to its nearest site.

    Solved exactly by bisection on the sorted distinct costs: radius ``r`` is achievable iff
    the set-covering model with radius ``r`` needs at most ``p`` sites (a greedy cover answers
    *yes* quickly; otherwise HiGHS decides). The bound is the largest radius proven infeasible
    (its successor value). Weights only select the points to serve (``w_i > 0``).

    Examples
    --------
    >>> costs = np.array([[1.0, 5.0], [4.0, 1.0], [6.0, 2.0]])
    >>> PCenter.from_cost_matrix(costs, p=1).solve().objective
    5.0
    """

    name = "pcenter"
    _needs_p = True
    _allows = frozenset({"p"})

    def _solve(self, *, deadline: float, gap: float, seed: int, method: Method,
               ) -> tuple[BoolArray, float, float, str, npt.NDArray[np.int64] | None]:
        inst = self.instance
        assert self.p is not None
        c, w = inst.costs, inst.weights
        usable = ~inst.forbidden
        served = w > 0
        ent = usable[c.indices] & served[c.rows]
        nearest = np.full(c.n, np.inf)
        np.minimum.at(nearest, c.rows[ent], c.data[ent])
        if np.isinf(nearest[served]).any():
            raise self._uncoverable(served & np.isinf(nearest), math.inf)
        if not served.any():
            return inst.fixed.copy(), 0.0, 0.0, "presolve", None
        values = np.unique(c.data[ent])
        lo = int(np.searchsorted(values, nearest[served].max()))
        k = self.p - int(inst.fixed.sum())
        best = self._farthest_first(k)
        best_val = self._radius_of(best)
        hi = len(values) - 1 if math.isinf(best_val) else int(np.searchsorted(values, best_val))
        timed_out = False
        while lo < hi and not timed_out:
            mid = (lo + hi) // 2
            sol, verdict = self._feasible(values[mid], k, deadline=deadline, seed=seed)
            if verdict == "yes":
                assert sol is not None
                best, best_val = sol, self._radius_of(sol)
                hi = int(np.searchsorted(values, best_val))
            elif verdict == "no":
                lo = mid + 1
            else:
                timed_out = True
        if math.isinf(best_val):
            sol, verdict = self._feasible(values[-1], k, deadline=deadline, seed=seed)
            if verdict == "no":
                raise LocateInfeasibleError(
                    f"no choice of {self.p} sites serves every demand point within the matrix")
            if sol is None:
                return inst.fixed.copy(), math.inf, float(values[lo]), "bisection", None
            best, best_val = sol, self._radius_of(sol)
        return best, best_val, float(values[min(lo, len(values) - 1)]), "bisection", None

    def _radius_of(self, open_: BoolArray) -> float:
        _, d1, _ = median.nearest_two(self.instance.costs, open_)
        served = self.instance.weights > 0
        return float(d1[served].max()) if served.any() else 0.0

    def _farthest_first(self, k: int) -> BoolArray:
        """Open, k times, the nearest usable site of the worst-served demand point."""
        inst = self.instance
        c = inst.costs
        open_ = inst.fixed.copy()
        served = inst.weights > 0
        usable = ~inst.forbidden
        for _ in range(k):
            _, d1, _ = median.nearest_two(c, open_)
            d1 = np.where(served, d1, -1.0)
            i = int(np.argmax(d1))
            seg = slice(c.indptr[i], c.indptr[i + 1])
            options = c.indices[seg][usable[c.indices[seg]] & ~open_[c.indices[seg]]]
            if options.size == 0:
                break
            open_[options[0]] = True
        if int(open_.sum()) < self.p:
            # fill with the usable sites nearest to the worst-served points
            rest = np.flatnonzero(usable & ~open_)[: self.p - int(open_.sum())]
            open_[rest] = True
        return open_

    def _feasible(self, radius: float, k: int, *, deadline: float, seed: int,
                  ) -> tuple[BoolArray | None, str]:
        inst = self.instance
        m = inst.costs.m
        g = cover.make_groups(inst.costs, inst.weights, radius=radius, open_=inst.fixed,
                              usable=~inst.forbidden)
        if g.uncoverable.any():
            return None, "no"
        if g.size == 0:
            return self._pad(inst.fixed.copy()), "yes"
        free = self._free()
        greedy = cover.greedy_cover(g, m=m, free=free, count=None, site_cost=None, budget=None,
                                    weighted=False)
        if int(greedy.sum()) <= k:
            return self._pad(inst.fixed | greedy), "yes"
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None, "unknown"
        chosen, out = cover.cover_mip(g, m=m, free=free, objective="min", count=k,
                                      site_cost=None, budget=None, time_limit=remaining,
                                      gap=0.0, seed=seed, start=None, stop_at_first=True)
        if chosen is not None:
            return self._pad(inst.fixed | chosen), "yes"
        return None, "no" if out.infeasible else "unknown"

    def _pad(self, open_: BoolArray) -> BoolArray:
        """Open further sites (nearest-first is irrelevant for the radius) up to exactly p."""
        assert self.p is not None
        missing = self.p - int(open_.sum())
        if missing > 0:
            open_[np.flatnonzero(~open_ & ~self.instance.forbidden)[:missing]] = True
        return open_


def closure_losses(costs: Any, weights: npt.ArrayLike | None = None, *,
                   demand_ids: Sequence[Hashable] | None = None,
                   candidate_ids: Sequence[Hashable] | None = None) -> pd.DataFrame:
    """Loss of closing each open facility alone (all columns of ``costs`` are open).

    When facility ``j`` closes, each demand point it serves moves to its second-nearest
    facility; the loss is ``sum_{i: f1(i) = j} w_i (d2_i - d1_i)``. Points with no other
    reachable facility are counted in ``stranded_weight``. Sorted by increasing loss: the
    first rows are the facilities that could be closed or merged with the least harm. For the
    best set of ``k`` closures at once, solve :class:`PMedian` with ``p = m - k``.

    Returns
    -------
    pandas.DataFrame
        Columns ``candidate_id``, ``served_weight``, ``added_cost`` (finite part of the loss),
        ``stranded_weight``.
    """
    model = PMedian.from_cost_matrix(costs, weights, p=1, demand_ids=demand_ids,
                                     candidate_ids=candidate_ids)
    inst = model.instance
    c, w = inst.costs, inst.weights
    f1, d1, d2 = median.nearest_two(c, np.ones(c.m, dtype=bool))
    has = (f1 >= 0) & (w > 0)
    served = np.bincount(f1[has], weights=w[has], minlength=c.m)
    moved = has & np.isfinite(d2)
    added = np.bincount(f1[moved], weights=(w * (d2 - d1))[moved], minlength=c.m)
    stranded = np.bincount(f1[has & ~moved], weights=w[has & ~moved], minlength=c.m)
    frame = pd.DataFrame({"candidate_id": list(inst.candidate_ids), "served_weight": served,
                          "added_cost": added, "stranded_weight": stranded})
    return frame.sort_values(["stranded_weight", "added_cost"], kind="stable").reset_index(
        drop=True)


@dataclass(frozen=True)
class TwoTierResult:
    """Outcome of :meth:`TwoTierCover.solve`.

    Attributes
    ----------
    objective:
        Weight within the upper threshold of an open upper-tier site (``nan`` without a
        solution).
    bound:
        Proven upper bound on that weight.
    gap, status, seconds, method:
        As in :class:`LocateResult`.
    upper_selected, lower_selected:
        Open site ids of each tier (fixed ones included), in candidate order.
    upper_new, lower_new:
        The opened sites that were not fixed (upgrades, new lower-tier sites).
    """

    objective: float
    bound: float
    gap: float
    status: Status
    upper_selected: tuple[Hashable, ...]
    lower_selected: tuple[Hashable, ...]
    upper_new: tuple[Hashable, ...]
    lower_new: tuple[Hashable, ...]
    seconds: float
    method: str
    _table: pd.DataFrame = field(repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per demand point.

        Columns: ``demand_id``, ``weight``, ``upper_id`` / ``upper_cost`` (nearest open
        upper-tier site within its threshold, else missing), ``covered``, ``lower_id`` /
        ``lower_cost`` (nearest open lower-tier site within its threshold).
        """
        return self._table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        def plain(values: tuple[Hashable, ...]) -> list[Any]:
            return [_plain(v) for v in values]

        return {"model": "two-tier", "objective": _num(self.objective),
                "bound": _num(self.bound), "gap": _num(self.gap), "status": self.status,
                "upper_selected": plain(self.upper_selected),
                "lower_selected": plain(self.lower_selected),
                "upper_new": plain(self.upper_new), "lower_new": plain(self.lower_new),
                "seconds": self.seconds, "method": self.method}


class TwoTierCover:
    """Choose sites of two tiers together (e.g. upgrades and clinics), solved with HiGHS.

    ``max sum_i w_i [some open upper site within T1 of i]`` subject to: every required demand
    point (default: ``w_i > 0``) is within ``T2`` of an open lower-tier site; at most ``upgrades`` upper
    sites are opened besides ``upper_fixed``; at most ``new_lower`` lower sites (and/or
    ``sum cost <= lower_budget``) besides ``lower_fixed`` (existing clinics). When
    ``upper_in_lower`` maps an upper candidate to the lower candidate at the same place, an
    open upper site keeps that lower site open (an upgraded centre still serves as a clinic).
    Among the solutions with the best coverage, the one with the fewest new lower-tier sites is
    returned when the coverage is proven optimal.

    Build it with :meth:`from_cost_matrices`, :meth:`from_pairs` or :meth:`from_engine`; the
    model is a MIP of size (demand points + both candidate sets), meant for district-scale
    instances.

    Examples
    --------
    >>> upper = np.array([[5.0, 40.0], [40.0, 5.0], [30.0, 40.0]])
    >>> lower = np.array([[1.0, 20.0], [20.0, 1.0], [9.0, 30.0]])
    >>> m = TwoTierCover.from_cost_matrices(upper, lower, [10, 5, 1], upper_threshold=10,
    ...                                     lower_threshold=10, upgrades=1,
    ...                                     lower_fixed=[1], new_lower=1)
    >>> r = m.solve()
    >>> r.upper_new, r.lower_new, r.objective
    ((0,), (0,), 10.0)
    """

    def __init__(self, upper: Any, lower: Any, weights: npt.NDArray[np.float64], *,
                 required: BoolArray, demand_ids: tuple[Hashable, ...], upper_ids: tuple[Hashable, ...],
                 lower_ids: tuple[Hashable, ...], upgrades: int,
                 nested: npt.NDArray[np.int64] | None, new_lower: int | None,
                 lower_site_costs: npt.NDArray[np.float64] | None,
                 lower_budget: float | None) -> None:
        self.upper = upper
        self.lower = lower
        self.weights = weights
        self.required = required
        self.demand_ids = demand_ids
        self.upper_ids = upper_ids
        self.lower_ids = lower_ids
        self.upgrades = upgrades
        self.nested = nested
        self.new_lower = new_lower
        self.lower_site_costs = lower_site_costs
        self.lower_budget = lower_budget

    @classmethod
    def from_cost_matrices(
        cls, upper_costs: Any, lower_costs: Any, weights: npt.ArrayLike | None = None, *,
        upper_threshold: float, lower_threshold: float, upgrades: int,
        upper_fixed: Collection[Hashable] | None = None,
        upper_forbidden: Collection[Hashable] | None = None,
        lower_fixed: Collection[Hashable] | None = None,
        lower_forbidden: Collection[Hashable] | None = None, new_lower: int | None = None,
        lower_costs_per_site: npt.ArrayLike | None = None, lower_budget: float | None = None,
        upper_in_lower: Mapping[Hashable, Hashable] | None = None,
        demand_ids: Sequence[Hashable] | None = None,
        upper_ids: Sequence[Hashable] | None = None,
        lower_ids: Sequence[Hashable] | None = None,
        required: npt.ArrayLike | None = None,
    ) -> TwoTierCover:
        """Build the model from two demand × candidate cost matrices (same demand rows).

        Parameters
        ----------
        upper_costs, lower_costs:
            Costs to the upper-tier and lower-tier candidates (dense with ``inf`` for
            unreachable pairs, or SciPy sparse as in :meth:`LocationModel.from_cost_matrix`).
        weights:
            Demand weights (default 1).
        upper_threshold, lower_threshold:
            ``T1`` (coverage counted in the objective) and ``T2`` (required for every point).
        upgrades:
            At most this many upper-tier sites besides ``upper_fixed``.
        upper_fixed, upper_forbidden, lower_fixed, lower_forbidden:
            Candidate ids kept open / closed in each tier (``lower_fixed``: existing clinics).
        new_lower, lower_costs_per_site, lower_budget:
            Limits on new lower-tier sites: a count and/or a budget on their costs. Without
            either, any number of new lower-tier sites may open.
        upper_in_lower:
            Upper candidate id → lower candidate id at the same place.
        demand_ids, upper_ids, lower_ids:
            Ids reported in results (default: row / column numbers).
        required:
            One flag per demand point: it must be within ``T2`` of an open lower-tier site
            (default: the points of positive weight; e.g. every village, inhabited or not).
        """
        problems = cls._check_limits(upper_threshold, lower_threshold, upgrades, new_lower,
                                     lower_costs_per_site, lower_budget)
        t1 = upper_threshold if not problems else math.inf
        t2 = lower_threshold if not problems else math.inf
        upper_sc = costs_from_matrix(upper_costs, problems, upto=float(t1))
        lower_sc = costs_from_matrix(lower_costs, problems, upto=float(t2))
        if upper_sc is not None and lower_sc is not None and upper_sc.n != lower_sc.n:
            problems.append(Problem(
                reason=f"upper_costs has {upper_sc.n} demand rows, lower_costs {lower_sc.n}",
                field="lower_costs", code="length_mismatch"))
        return cls._build(
            upper_sc, lower_sc, weights, problems, upper_threshold=upper_threshold,
            lower_threshold=lower_threshold, upgrades=upgrades, upper_fixed=upper_fixed,
            upper_forbidden=upper_forbidden, lower_fixed=lower_fixed,
            lower_forbidden=lower_forbidden, new_lower=new_lower,
            lower_costs_per_site=lower_costs_per_site, lower_budget=lower_budget,
            upper_in_lower=upper_in_lower, demand_ids=demand_ids, upper_ids=upper_ids,
            lower_ids=lower_ids, required=required)

    @classmethod
    def from_pairs(
        cls, upper_pairs: tuple[Sequence[Hashable] | npt.ArrayLike,
                                Sequence[Hashable] | npt.ArrayLike, npt.ArrayLike],
        lower_pairs: tuple[Sequence[Hashable] | npt.ArrayLike,
                           Sequence[Hashable] | npt.ArrayLike, npt.ArrayLike],
        weights: npt.ArrayLike | None = None, *, upper_threshold: float,
        lower_threshold: float, upgrades: int, demand_ids: Sequence[Hashable] | None = None,
        upper_ids: Sequence[Hashable] | None = None,
        lower_ids: Sequence[Hashable] | None = None,
        upper_fixed: Collection[Hashable] | None = None,
        upper_forbidden: Collection[Hashable] | None = None,
        lower_fixed: Collection[Hashable] | None = None,
        lower_forbidden: Collection[Hashable] | None = None, new_lower: int | None = None,
        lower_costs_per_site: npt.ArrayLike | None = None, lower_budget: float | None = None,
        upper_in_lower: Mapping[Hashable, Hashable] | None = None,
        required: npt.ArrayLike | None = None,
    ) -> TwoTierCover:
        """Build the model from long-form pairs ``(demand id, candidate id, cost)`` of each tier.

        This is the sparse constructor, as :meth:`LocationModel.from_pairs`: only the listed
        pairs are reachable. ``demand_ids`` fixes the demand points and their order (``weights``
        and ``required`` follow it), ``upper_ids`` and ``lower_ids`` the candidates of each tier
        (``lower_costs_per_site`` follows ``lower_ids``); by default they are the ids in order
        of first appearance (the demand ids of the upper pairs, then of the lower pairs). A pair
        naming an unknown id, a repeated pair or a negative cost is refused with its row number;
        the field is ``upper_demand``, ``upper_candidate`` or ``upper_cost`` (``lower_…`` for
        the lower tier). Other parameters as in :meth:`from_cost_matrices`.

        Examples
        --------
        >>> m = TwoTierCover.from_pairs(
        ...     (["a", "b"], ["U", "U"], [5.0, 40.0]),
        ...     (["a", "b", "b"], ["x", "x", "y"], [1.0, 20.0, 2.0]),
        ...     upper_threshold=10, lower_threshold=10, upgrades=1, lower_fixed=["x"])
        >>> r = m.solve()
        >>> r.upper_new, r.lower_new
        (('U',), ('y',))

        """
        problems = cls._check_limits(upper_threshold, lower_threshold, upgrades, new_lower,
                                     lower_costs_per_site, lower_budget)
        t1 = upper_threshold if not problems else math.inf
        t2 = lower_threshold if not problems else math.inf
        tiers = [(_as_ids(d), _as_ids(c), cost) for d, c, cost in (upper_pairs, lower_pairs)]
        d_ids = (list(dict.fromkeys(tiers[0][0] + tiers[1][0])) if demand_ids is None
                 else list(demand_ids))
        read = []
        for tier, (d, c, cost), ids, upto in (("upper", tiers[0], upper_ids, t1),
                                               ("lower", tiers[1], lower_ids, t2)):
            c_ids = list(dict.fromkeys(c)) if ids is None else list(ids)
            sc = costs_from_id_pairs(
                d, c, cost, demand_ids=d_ids, candidate_ids=c_ids, problems=problems,
                upto=float(upto), fields=(f"{tier}_demand", f"{tier}_candidate", f"{tier}_cost"))
            read.append((sc, c_ids))
        (upper_sc, u_ids), (lower_sc, l_ids) = read
        return cls._build(
            upper_sc, lower_sc, weights, problems, upper_threshold=upper_threshold,
            lower_threshold=lower_threshold, upgrades=upgrades, upper_fixed=upper_fixed,
            upper_forbidden=upper_forbidden, lower_fixed=lower_fixed,
            lower_forbidden=lower_forbidden, new_lower=new_lower,
            lower_costs_per_site=lower_costs_per_site, lower_budget=lower_budget,
            upper_in_lower=upper_in_lower, demand_ids=d_ids, upper_ids=u_ids,
            lower_ids=l_ids, required=required)

    @classmethod
    def from_engine(
        cls, network: Network, demand: gpd.GeoDataFrame, upper: gpd.GeoDataFrame,
        lower: gpd.GeoDataFrame, *, upper_threshold: float, lower_threshold: float,
        upgrades: int, weight_field: str | None = None,
        upper_fixed: Collection[Hashable] | None = None,
        upper_forbidden: Collection[Hashable] | None = None,
        lower_fixed: Collection[Hashable] | None = None,
        lower_forbidden: Collection[Hashable] | None = None, new_lower: int | None = None,
        lower_cost_field: str | None = None, lower_budget: float | None = None,
        upper_in_lower: Mapping[Hashable, Hashable] | None = None,
        required_field: str | None = None,
    ) -> TwoTierCover:
        """Build the model from travel times computed by the planning engine.

        The two-tier counterpart of :meth:`LocationModel.from_engine`: travel times (seconds)
        from each demand point to the candidates of each tier come from
        :func:`tiercare.planning.network.travel_time_pairs`, each tier's threshold being its
        cutoff (pairs beyond it are never used). The demand points are snapped to the network
        once for both tiers. Ids are the frames' indexes; columns are named by the ``*_field``
        options. Thresholds are in seconds.

        Parameters
        ----------
        network:
            The road network.
        demand:
            Demand points (one row each, with a CRS).
        upper, lower:
            Candidate sites of the upper and the lower tier.
        weight_field:
            Column of ``demand`` with the weights (default 1).
        lower_cost_field:
            Column of ``lower`` with the cost of each lower-tier site (for ``lower_budget``).
        required_field:
            True/false column of ``demand``: the point must be within ``T2`` of an open
            lower-tier site (default: the points of positive weight).
        upper_threshold, lower_threshold, upgrades, upper_fixed, upper_forbidden, lower_fixed,
        lower_forbidden, new_lower, lower_budget, upper_in_lower:
            As in :meth:`from_cost_matrices`, ids being index values.

        Raises
        ------
        InputError
            Every problem at once, before any travel time is computed: an empty frame, a
            named column that is missing (the problem names the option), a required column
            that is not true/false, bad thresholds, counts or budget.
        """
        from tiercare.planning.network import snap, travel_time_pairs

        problems: list[Problem] = []
        for frame, name in ((demand, "demand"), (upper, "upper"), (lower, "lower")):
            if len(frame) == 0:
                problems.append(Problem(reason="has no rows", field=name, code="empty"))
        for frame, col, name in ((demand, weight_field, "weight_field"),
                                 (demand, required_field, "required_field"),
                                 (lower, lower_cost_field, "lower_cost_field")):
            if col is not None and col not in frame.columns:
                problems.append(Problem(reason=f"no column {col!r}", field=name,
                                        code="missing_column"))
        if (required_field is not None and required_field in demand.columns
                and demand[required_field].dtype != bool):
            problems.append(Problem(
                reason=f"column {required_field!r} must be true/false, got "
                f"{demand[required_field].dtype}", field="required_field", code="bad_value"))
        site_costs = (lower[lower_cost_field].to_numpy()
                      if lower_cost_field is not None and lower_cost_field in lower.columns
                      else None)
        problems += cls._check_limits(upper_threshold, lower_threshold, upgrades, new_lower,
                                      site_costs, lower_budget, costs_field="lower_cost_field")
        if problems:
            raise InputError(problems)
        at = snap(network, demand)
        tiers = []
        for sites, threshold in ((upper, upper_threshold), (lower, lower_threshold)):
            site_i, dem_i, secs = travel_time_pairs(network, sites, at, cutoff_s=threshold,
                                                    direction="to_origins")
            tiers.append(SortedCosts.from_coo(dem_i, site_i, secs, n=len(demand),
                                              m=len(sites)))
        return cls._build(
            tiers[0], tiers[1], demand[weight_field].to_numpy() if weight_field else None,
            problems, upper_threshold=upper_threshold, lower_threshold=lower_threshold,
            upgrades=upgrades, upper_fixed=upper_fixed, upper_forbidden=upper_forbidden,
            lower_fixed=lower_fixed, lower_forbidden=lower_forbidden, new_lower=new_lower,
            lower_costs_per_site=site_costs, lower_budget=lower_budget,
            upper_in_lower=upper_in_lower, demand_ids=list(demand.index),
            upper_ids=list(upper.index), lower_ids=list(lower.index),
            required=demand[required_field].to_numpy() if required_field else None)

    @staticmethod
    def _check_limits(upper_threshold: float, lower_threshold: float, upgrades: int,
                      new_lower: int | None, lower_costs_per_site: npt.ArrayLike | None,
                      lower_budget: float | None,
                      costs_field: str = "lower_costs_per_site") -> list[Problem]:
        """Problems with the thresholds, the counts and the budget.

        ``costs_field`` is the option that gives the site costs, named when a budget has none.
        """
        problems: list[Problem] = []
        for name, value in (("upper_threshold", upper_threshold),
                            ("lower_threshold", lower_threshold)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                problems.append(Problem(reason=f"must be a number >= 0, got {value!r}",
                                        field=name))
        for name, count in (("upgrades", upgrades), ("new_lower", new_lower)):
            if count is None and name == "new_lower":
                continue
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                problems.append(Problem(reason=f"must be an integer >= 0, got {count!r}",
                                        field=name))
        if lower_budget is not None:
            if lower_costs_per_site is None:
                problems.append(Problem(reason=f"a budget needs {costs_field}",
                                        field=costs_field, code="missing"))
            if not (isinstance(lower_budget, int | float) and math.isfinite(lower_budget)
                    and lower_budget >= 0):
                problems.append(Problem(reason=f"must be a number >= 0, got {lower_budget!r}",
                                        field="lower_budget"))
        return problems

    @classmethod
    def _build(
        cls, upper_sc: SortedCosts | None, lower_sc: SortedCosts | None,
        weights: npt.ArrayLike | None, problems: list[Problem], *, upper_threshold: float,
        lower_threshold: float, upgrades: int, upper_fixed: Collection[Hashable] | None,
        upper_forbidden: Collection[Hashable] | None, lower_fixed: Collection[Hashable] | None,
        lower_forbidden: Collection[Hashable] | None, new_lower: int | None,
        lower_costs_per_site: npt.ArrayLike | None, lower_budget: float | None,
        upper_in_lower: Mapping[Hashable, Hashable] | None,
        demand_ids: Sequence[Hashable] | None, upper_ids: Sequence[Hashable] | None,
        lower_ids: Sequence[Hashable] | None, required: npt.ArrayLike | None,
    ) -> TwoTierCover:
        """Validate the rest once both tiers' costs are read; raise every problem at once."""
        if problems or upper_sc is None or lower_sc is None:
            raise InputError(problems)
        up = build_instance(upper_sc, weights, demand_ids=demand_ids, candidate_ids=upper_ids,
                            fixed=upper_fixed, forbidden=upper_forbidden, capacities=None,
                            costs_per_site=None, problems=problems)
        low = build_instance(lower_sc, up.weights, demand_ids=demand_ids,
                             candidate_ids=lower_ids, fixed=lower_fixed,
                             forbidden=lower_forbidden, capacities=None,
                             costs_per_site=lower_costs_per_site, problems=problems)
        must = up.weights > 0
        if required is not None:
            flags = np.asarray(required)
            if flags.dtype != bool or flags.shape != must.shape:
                problems.append(Problem(
                    reason=f"expected {must.size} true/false flags, got {flags.shape} of "
                    f"{flags.dtype}", field="required", code="length_mismatch"))
            else:
                must = flags
        nested = None
        if upper_in_lower:
            u_index = {v: k for k, v in enumerate(up.candidate_ids)}
            l_index = {v: k for k, v in enumerate(low.candidate_ids)}
            nested = np.full(up.costs.m, -1, dtype=np.int64)
            for u, lo in upper_in_lower.items():
                if u not in u_index:
                    problems.append(Problem(reason=f"unknown upper candidate id {u!r}",
                                            field="upper_in_lower", code="unknown_id"))
                elif lo not in l_index:
                    problems.append(Problem(reason=f"unknown lower candidate id {lo!r}",
                                            field="upper_in_lower", code="unknown_id"))
                else:
                    nested[u_index[u]] = l_index[lo]
        if problems:
            raise InputError(problems)
        return cls(
            _locate_tiers.TierData(costs=up.costs, threshold=float(upper_threshold),
                                   fixed=up.fixed, forbidden=up.forbidden),
            _locate_tiers.TierData(costs=low.costs, threshold=float(lower_threshold),
                                   fixed=low.fixed, forbidden=low.forbidden),
            up.weights, required=must, demand_ids=up.demand_ids, upper_ids=up.candidate_ids,
            lower_ids=low.candidate_ids, upgrades=int(upgrades), nested=nested,
            new_lower=None if new_lower is None else int(new_lower),
            lower_site_costs=low.site_costs,
            lower_budget=None if lower_budget is None else float(lower_budget))

    def solve(self, *, time_limit: float = 60.0, gap: float = 0.0, seed: int = 0,
              minimise_new_lower: bool = True) -> TwoTierResult:
        """Solve with HiGHS.

        Parameters
        ----------
        time_limit, gap, seed:
            As in :meth:`LocationModel.solve`.
        minimise_new_lower:
            After proving the best coverage, open the fewest new lower-tier sites that keep it.

        Raises
        ------
        LocateInfeasibleError
            Some demand points have no usable lower-tier site within ``T2`` (listed in
            ``demand_ids``), or the limits on new lower-tier sites cannot serve every point.
        """
        _check_limits(time_limit, gap)
        t0 = time.perf_counter()
        lost = _locate_tiers.uncovered_by_lower(self.lower, self.required)
        if lost.any():
            ids = [self.demand_ids[i] for i in np.flatnonzero(lost)]
            raise LocateInfeasibleError(
                f"{len(ids)} demand point(s) have no usable lower-tier site within "
                f"{self.lower.threshold:g}: {describe_ids(ids)}", demand_ids=ids)
        sol = _locate_tiers.solve_two_tier(
            self.upper, self.lower, self.weights, required=self.required,
            upgrades=self.upgrades, nested=self.nested,
            new_lower=self.new_lower, lower_site_costs=self.lower_site_costs,
            lower_budget=self.lower_budget, minimise_new_lower=minimise_new_lower,
            deadline=t0 + time_limit, gap=gap, seed=seed)
        out = sol.outcome
        if sol.upper is None or sol.lower is None:
            if out.infeasible:
                raise LocateInfeasibleError(
                    "the limits on new lower-tier sites cannot keep every demand point within "
                    f"{self.lower.threshold:g} of one")
            return self._result(self.upper.fixed, self.lower.fixed, math.nan, out.bound,
                                "time-limited", math.inf, "mip", t0)
        up_site, _ = _locate_tiers.covered_within(self.upper.costs, sol.upper,
                                                  self.upper.threshold)
        value = float(self.weights[(up_site >= 0) & (self.weights > 0)].sum())
        bound = max(out.bound, value)
        g = _rel_gap(value, bound, True)
        return self._result(sol.upper, sol.lower, value, bound, _status(g, gap), g,
                            "mip+fewest-lower" if sol.refined else "mip", t0)

    def _result(self, upper: BoolArray, lower: BoolArray, objective: float, bound: float,
                status: Status, gap_value: float, how: str, t0: float) -> TwoTierResult:
        up_site, up_cost = _locate_tiers.covered_within(self.upper.costs, upper,
                                                        self.upper.threshold)
        low_site, low_cost = _locate_tiers.covered_within(self.lower.costs, lower,
                                                          self.lower.threshold)
        u_ids = np.asarray(self.upper_ids, dtype=object)
        l_ids = np.asarray(self.lower_ids, dtype=object)
        table = pd.DataFrame({
            "demand_id": list(self.demand_ids), "weight": self.weights,
            "upper_id": np.where(up_site >= 0, u_ids[np.maximum(up_site, 0)], None),
            "upper_cost": up_cost, "covered": (up_site >= 0) & (self.weights > 0),
            "lower_id": np.where(low_site >= 0, l_ids[np.maximum(low_site, 0)], None),
            "lower_cost": low_cost})
        return TwoTierResult(
            objective=float(objective), bound=float(bound), gap=float(gap_value), status=status,
            upper_selected=tuple(self.upper_ids[j] for j in np.flatnonzero(upper)),
            lower_selected=tuple(self.lower_ids[j] for j in np.flatnonzero(lower)),
            upper_new=tuple(self.upper_ids[j] for j in np.flatnonzero(upper & ~self.upper.fixed)),
            lower_new=tuple(self.lower_ids[j] for j in np.flatnonzero(lower & ~self.lower.fixed)),
            seconds=time.perf_counter() - t0, method=how, _table=table)
