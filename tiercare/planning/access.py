"""Coverage, catchments and accessibility scores from travel times.

Pure functions on NumPy arrays, SciPy sparse matrices and GeoDataFrames. Travel times are
seconds; thresholds and weight parameters are minutes. A *time matrix* here is the sparse
facility × demand matrix of :func:`tiercare.planning.network.travel_time_matrix` (stored entries
are the reachable pairs, explicit zeros included), normally computed with
``direction="to_origins"`` so that it holds the time from each demand point to each facility.

Thresholds are inclusive: a person exactly 30:00 away is covered by the 30-minute threshold
(times are compared in seconds with a 1 µs tolerance for floating-point sums).

Accessibility (floating catchment family)
-----------------------------------------
With ``t_ij`` the time from demand point ``i`` (population ``P_i``) to facility ``j`` (supply
``S_j``), a catchment ``d0`` and a weight ``W`` (``W = 1`` for 2SFCA; Luo & Qi's steps or a
Gaussian for E2SFCA; a power decay for gravity):

* step 1, supply-to-demand ratio of each facility
  ``R_j = S_j / Σ_{i: t_ij <= d0} W(t_ij) P_i`` (``R_j = 0`` when the sum is zero);
* step 2, score of each demand point ``A_i = Σ_{j: t_ij <= d0} W(t_ij) R_j``.

This is the formulation of the PySAL ``access`` package (``two_stage_fca`` with ``weight_fn``),
whose results the tests reproduce to 1e-9. Gravity (Joseph & Bantock 1982; Wang 2012) is the
same formula with ``W(t) = max(t, t_min)^(-β)`` and no (or a wide) catchment.

Examples
--------
Two villages, two clinics; clinic ``a`` (2 doctors) is 10 min from village 0 and 40 min from
village 1, clinic ``b`` (1 doctor) is 20 min from village 1 only:

>>> import numpy as np, scipy.sparse as sp
>>> times = sp.csr_matrix((np.array([600., 2400., 1200.]), np.array([0, 1, 1]),
...                        np.array([0, 2, 3])), shape=(2, 2))  # seconds; rows a, b
>>> pop, docs = np.array([1000., 500.]), np.array([2., 1.])
>>> np.round(two_step_fca(times, pop, docs, catchment_min=30) * 1000, 3).tolist()
[2.0, 2.0]
>>> coverage_table(np.array([600., 1800., np.inf]), np.array([1., 2., 3.]), [15, 30])
       population  covered_15  covered_30  unreachable
total         6.0         1.0         3.0          3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from tiercare.errors import InputError
from tiercare.planning.network import Network, Snapped, nearest_facility, snap

__all__ = [
    "StepWeights", "GaussianWeights", "PowerWeights", "floating_catchment", "two_step_fca",
    "enhanced_two_step_fca", "gravity_access", "nearest_table", "coverage_table",
    "catchment_population", "CapacityResult", "capacity_coverage", "TOLERANCE_S",
]

TOLERANCE_S = 1e-6
"""Slack (seconds) when comparing a travel time with an inclusive threshold."""


@dataclass(frozen=True)
class StepWeights:
    """Step distance decay: ``W(t) = weights[k]`` for the first ``t <= upper_min[k]``, else 0.

    The E2SFCA default (Luo & Qi 2009) is three equal zones of the catchment weighted
    1, 0.68 and 0.22: :meth:`luo_qi`.

    Examples
    --------
    >>> StepWeights((10, 20, 30), (1.0, 0.68, 0.22))(np.array([0., 10., 10.5, 30., 31.])).tolist()
    [1.0, 1.0, 0.68, 0.22, 0.0]
    """

    upper_min: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.upper_min) != len(self.weights) or not self.weights:
            raise InputError.single("step weights need as many limits as weights",
                                    field="weights")
        if any(w < 0 for w in self.weights) or list(self.upper_min) != sorted(self.upper_min):
            raise InputError.single("step limits must increase and weights be >= 0",
                                    field="weights")

    @classmethod
    def luo_qi(cls, catchment_min: float) -> StepWeights:
        """Three equal zones of the catchment weighted 1, 0.68, 0.22 (Luo & Qi 2009)."""
        c = float(catchment_min)
        return cls((c / 3.0, 2.0 * c / 3.0, c), (1.0, 0.68, 0.22))

    def __call__(self, minutes: np.ndarray) -> np.ndarray:
        """Weights of travel times given in minutes."""
        limits = np.asarray(self.upper_min, dtype=float)
        k = np.searchsorted(limits, minutes, side="left")
        w = np.append(np.asarray(self.weights, dtype=float), 0.0)
        return w[k]


@dataclass(frozen=True)
class GaussianWeights:
    """Gaussian decay ``W(t) = exp(-t² / (2 σ²))`` with σ in minutes (``W(0) = 1``)."""

    sigma_min: float

    def __call__(self, minutes: np.ndarray) -> np.ndarray:
        """Weights of travel times given in minutes."""
        if not self.sigma_min > 0:
            raise InputError.single("sigma must be positive", field="sigma")
        return np.exp(-(minutes * minutes) / (2.0 * self.sigma_min**2))


@dataclass(frozen=True)
class PowerWeights:
    """Gravity decay ``W(t) = max(t, t_min)^(-β)``, t in minutes."""

    beta: float = 1.0
    min_minutes: float = 1.0

    def __call__(self, minutes: np.ndarray) -> np.ndarray:
        """Weights of travel times given in minutes."""
        if not self.min_minutes > 0:
            raise InputError.single("the minimum time must be positive", field="min_minutes")
        return np.power(np.maximum(minutes, self.min_minutes), -self.beta)


Weight = Callable[[np.ndarray], np.ndarray]


def floating_catchment(
    times: sp.csr_matrix,
    population: np.ndarray,
    supply: np.ndarray,
    *,
    catchment_min: float | None,
    weights: Weight | None = None,
) -> np.ndarray:
    """Generalised two-step floating catchment score of every demand point.

    Parameters
    ----------
    times:
        Sparse facility × demand travel times in seconds (stored entries = reachable pairs).
    population:
        ``P_i`` per demand point.
    supply:
        ``S_j`` per facility (beds, physicians, any resource).
    catchment_min:
        ``d0`` in minutes (inclusive); ``None`` keeps every stored pair.
    weights:
        ``W(t)`` on minutes; ``None`` means 1 (plain 2SFCA).

    Returns
    -------
    numpy.ndarray
        ``A_i`` per demand point (supply per person); 0 where no facility is in reach.
    """
    times = sp.csr_matrix(times)
    pop = _vector(population, times.shape[1], "population")
    sup = _vector(supply, times.shape[0], "supply")
    minutes = times.data / 60.0
    keep = np.ones(times.nnz, bool)
    if catchment_min is not None:
        keep = times.data <= catchment_min * 60.0 + TOLERANCE_S
    w = np.where(keep, 1.0 if weights is None else weights(minutes), 0.0)
    wm = sp.csr_matrix((w, times.indices, times.indptr), shape=times.shape)
    weighted_demand = wm @ pop
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(weighted_demand > 0, sup / weighted_demand, 0.0)
    return np.asarray(wm.T @ ratio)


def two_step_fca(times: sp.csr_matrix, population: np.ndarray, supply: np.ndarray, *,
                 catchment_min: float) -> np.ndarray:
    """2SFCA (Luo & Wang 2003): :func:`floating_catchment` with ``W = 1`` inside ``d0``."""
    return floating_catchment(times, population, supply, catchment_min=catchment_min)


def enhanced_two_step_fca(
    times: sp.csr_matrix,
    population: np.ndarray,
    supply: np.ndarray,
    *,
    catchment_min: float,
    weights: Weight | None = None,
) -> np.ndarray:
    """E2SFCA (Luo & Qi 2009): step (default :meth:`StepWeights.luo_qi`) or Gaussian weights."""
    return floating_catchment(times, population, supply, catchment_min=catchment_min,
                              weights=weights or StepWeights.luo_qi(catchment_min))


def gravity_access(
    times: sp.csr_matrix,
    population: np.ndarray,
    supply: np.ndarray,
    *,
    beta: float = 1.0,
    min_minutes: float = 1.0,
    catchment_min: float | None = None,
) -> np.ndarray:
    """Gravity accessibility with competition: ``W(t) = max(t, t_min)^(-β)``."""
    return floating_catchment(times, population, supply, catchment_min=catchment_min,
                              weights=PowerWeights(beta, min_minutes))


def nearest_table(
    network: Network,
    facilities: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    group_field: str | None = None,
    cutoff_s: float = np.inf,
    snapped: tuple[Snapped, Snapped] | None = None,
) -> pd.DataFrame:
    """Nearest facility and travel time of every demand point, overall and per facility group.

    Parameters
    ----------
    facilities, demand:
        Point GeoDataFrames (e.g. from :func:`tiercare.planning.geo.read_points`), indexed by id.
    group_field:
        A facility column (type, tier, level...): adds ``nearest_<g>``/``seconds_<g>`` columns
        per value ``g``.
    cutoff_s:
        Times above this count as unreachable.
    snapped:
        ``(facilities, demand)`` already joined with :func:`~tiercare.planning.network.snap`.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``demand``: ``nearest_facility`` (id or ``None``), ``seconds`` (``inf`` if
        unreachable), ``offroad_seconds`` and the per-group columns.

    Examples
    --------
    A 2 km road at 10 m/s with a clinic at each end and a hospital in the middle:

    >>> import geopandas as gpd, shapely
    >>> from tiercare.planning.network import Network
    >>> net = Network.from_arrays(np.array([[0., 0.], [1000., 0.], [2000., 0.]]), u=[0, 1],
    ...                           v=[1, 2], time_uv=[100., 100.], time_vu=[100., 100.],
    ...                           crs="EPSG:32649")
    >>> fac = gpd.GeoDataFrame({"type": ["clinic", "hospital", "clinic"]}, index=["c1", "h", "c2"],
    ...                        geometry=[shapely.Point(0, 0), shapely.Point(1000, 0),
    ...                                  shapely.Point(2000, 0)], crs="EPSG:32649")
    >>> dem = gpd.GeoDataFrame(index=["v1"], geometry=[shapely.Point(300, 0)], crs="EPSG:32649")
    >>> t = nearest_table(net, fac, dem, group_field="type")
    >>> row = t.loc["v1"]
    >>> row["nearest_facility"], float(row["seconds"]), row["nearest_hospital"]
    ('c1', 30.0, 'h')
    >>> float(row["seconds_hospital"])
    70.0
    """
    fs, ds = snapped if snapped is not None else (snap(network, facilities),
                                                  snap(network, demand))
    fac_ids = np.asarray(facilities.index.astype(str), dtype=object)
    out = pd.DataFrame(index=demand.index)
    res = nearest_facility(network, fs, ds, cutoff_s=cutoff_s)
    out["nearest_facility"] = np.where(res.facility >= 0, fac_ids[res.facility], None)
    out["seconds"] = res.seconds
    out["offroad_seconds"] = ds.offroad_s
    if group_field is not None:
        if group_field not in facilities.columns:
            raise InputError.single(f"facilities have no column '{group_field}'",
                                    field=group_field)
        groups = facilities[group_field].astype(str).to_numpy()
        for g in sorted(set(groups)):
            sel = np.flatnonzero(groups == g)
            sub = Snapped(fs.segment[sel], fs.frac[sel], fs.offroad_m[sel], fs.offroad_s[sel])
            r = nearest_facility(network, sub, ds, cutoff_s=cutoff_s)
            out[f"nearest_{g}"] = np.where(r.facility >= 0, fac_ids[sel][r.facility], None)
            out[f"seconds_{g}"] = r.seconds
    return out


def coverage_table(
    seconds: np.ndarray,
    population: np.ndarray,
    thresholds_min: Sequence[float],
    *,
    divisions: np.ndarray | pd.Series | None = None,
) -> pd.DataFrame:
    """Population covered within each threshold (inclusive), overall and per division.

    Returns
    -------
    pandas.DataFrame
        Rows ``total`` then one per division; columns ``population``, ``covered_<T>`` per
        threshold ``T`` and ``unreachable`` (population with no facility in reach).
    """
    secs = np.asarray(seconds, dtype=float)
    pop = _vector(population, secs.shape[0], "population")
    cols: dict[str, np.ndarray] = {"population": pop}
    for t in thresholds_min:
        cols[f"covered_{_label(t)}"] = np.where(secs <= t * 60.0 + TOLERANCE_S, pop, 0.0)
    cols["unreachable"] = np.where(np.isfinite(secs), 0.0, pop)
    frame = pd.DataFrame(cols)
    total = frame.sum().to_frame("total").T
    if divisions is None:
        return total
    by = frame.groupby(np.asarray(divisions, dtype=object).astype(str)).sum()
    return pd.concat([total, by])


def catchment_population(
    times: sp.csr_matrix,
    population: np.ndarray,
    thresholds_min: Sequence[float],
) -> np.ndarray:
    """Population within each threshold of each facility (catchments overlap).

    Returns an array ``(n_facilities, n_thresholds)``.

    Examples
    --------
    >>> times = sp.csr_matrix((np.array([0., 900., 1800.]), np.array([0, 1, 2]),
    ...                        np.array([0, 3])), shape=(1, 3))
    >>> catchment_population(times, np.array([1., 10., 100.]), [15, 30]).tolist()
    [[11.0, 111.0]]
    """
    times = sp.csr_matrix(times)
    pop = _vector(population, times.shape[1], "population")
    out = np.zeros((times.shape[0], len(thresholds_min)))
    for k, t in enumerate(thresholds_min):
        w = (times.data <= t * 60.0 + TOLERANCE_S).astype(float)
        out[:, k] = sp.csr_matrix((w, times.indices, times.indptr), shape=times.shape) @ pop
    return out


@dataclass(frozen=True)
class CapacityResult:
    """Outcome of :func:`capacity_coverage`.

    Attributes
    ----------
    served:
        Population taken by each facility (≤ its capacity).
    covered:
        Population of each demand point that found a place.
    by_zone:
        Per zone (and ``total``): ``population``, ``covered``, ``uncovered``.
    """

    served: np.ndarray
    covered: np.ndarray
    by_zone: pd.DataFrame


def capacity_coverage(
    times: sp.csr_matrix,
    population: np.ndarray,
    capacity: np.ndarray,
    *,
    threshold_min: float,
    order: Sequence[int] | None = None,
    zones: np.ndarray | pd.Series | None = None,
) -> CapacityResult:
    """Geographic coverage with capacity (AccessMod's model, on the road network).

    Facilities are processed in ``order`` (default: as given; e.g. pass
    ``np.argsort(-capacity)``); each takes the still uncovered population within the threshold,
    nearest first, until its capacity is used (the last demand point may be split).

    Examples
    --------
    >>> times = sp.csr_matrix((np.array([60., 120., 60.]), np.array([0, 1, 1]),
    ...                        np.array([0, 2, 3])), shape=(2, 2))
    >>> r = capacity_coverage(times, np.array([50., 80.]), np.array([100., 10.]),
    ...                       threshold_min=5)
    >>> r.served.tolist(), r.covered.tolist()
    ([100.0, 10.0], [50.0, 60.0])
    """
    times = sp.csr_matrix(times)
    pop = _vector(population, times.shape[1], "population")
    cap = _vector(capacity, times.shape[0], "capacity")
    seq = np.arange(times.shape[0]) if order is None else np.asarray(order, dtype=np.int64)
    if sorted(seq.tolist()) != list(range(times.shape[0])):
        raise InputError.single("order must be a permutation of the facilities", field="order")
    remaining = pop.copy()
    served = np.zeros(times.shape[0])
    limit = threshold_min * 60.0 + TOLERANCE_S
    for j in seq:
        lo, hi = times.indptr[j], times.indptr[j + 1]
        cols, t = times.indices[lo:hi], times.data[lo:hi]
        inside = t <= limit
        cols = cols[inside][np.argsort(t[inside], kind="stable")]
        want = remaining[cols]
        before = np.concatenate([[0.0], np.cumsum(want)[:-1]])
        take = np.clip(cap[j] - before, 0.0, want)
        remaining[cols] -= take
        served[j] = take.sum()
    covered = pop - remaining
    frame = pd.DataFrame({"population": pop, "covered": covered, "uncovered": remaining})
    total = frame.sum().to_frame("total").T
    if zones is not None:
        total = pd.concat([total,
                           frame.groupby(np.asarray(zones, dtype=object).astype(str)).sum()])
    return CapacityResult(served=served, covered=covered, by_zone=total)


def _label(minutes: float) -> str:
    return f"{minutes:g}"


def _vector(values: np.ndarray | Sequence[float], n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise InputError.single(f"{name} must have {n} values, got {arr.shape}", field=name)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError.single(f"{name} must be finite and non-negative", field=name)
    return arr
