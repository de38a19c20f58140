"""Raster travel time to care, compatible with WHO AccessMod projects.

The model
---------
A *landscape* is a grid in a projected CRS (metres) whose cells carry a class code. The
*scenario table* (AccessMod's ``class,label,speed,mode`` CSV) gives every class a flat speed
(km/h) and a travel mode (``WALKING``, ``BICYCLING`` or ``MOTORIZED``); a speed of 0 makes the
class impassable. Road lines carrying class codes of the same table are burned over the land
cover (roads win; where roads overlap the faster class wins), then barrier lines and polygons are
burned as impassable (every cell they touch). An optional DEM is resampled onto the grid.

Travel time is a minimum-cost path over the grid graph whose nodes are cell centres and whose
edges join each cell to its 8 neighbours (rook and bishop moves) or 16 (plus knight's moves).
With the pace ``p = 1 / speed`` (s/m) of each cell, a move of length ``d`` costs
``d * (p_a + p_b) / 2`` (the move runs half in each cell: scikit-image ``MCP_Geometric``'s
convention) and a knight's move ``d * (p_a + p_i + p_j + p_b) / 4`` (it crosses four cells,
a quarter of its length in each, so it never jumps an impassable cell).

Anisotropic travel
------------------
With a DEM, each move has the slope ``s = dz / d`` in the direction of travel and every crossed
cell's pace is scaled by its mode's slope factor:

* ``MOTORIZED``: 1 (speed unaffected by slope);
* ``WALKING``: Tobler's hiking function relative to the class's flat speed,
  ``v(s) = v_flat * tobler(s) / tobler(0)`` with ``tobler(s) = 6 exp(-3.5 |s + 0.05|)``, so a
  gentle descent (5 %) is the fastest and a 10 % climb is about 30 % slower than the flat;
* ``BICYCLING``: the constant-power model of :class:`BicycleModel` (the rider keeps the power
  needed for the flat speed against rolling and air resistance, and gravity slows or speeds
  them on the slope; the downhill speed is capped at twice the flat speed, as in AccessMod).

Direction matters only for anisotropic travel: ``"towards"`` the facilities (patients travel
to care, AccessMod's default) or ``"from"`` them (outreach teams).

Examples
--------
>>> import numpy as np
>>> pace = np.full((3, 4), 1.0)  # 1 s/m everywhere
>>> cost, nearest = cost_distance(pace, [(0, 0)], cell_size=(10.0, 10.0))
>>> round(float(cost[2, 3]), 3)  # two diagonal steps and one straight step
38.284
>>> int(nearest[2, 3])
0
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import shapely

from tiercare.errors import InputError, Problem
from tiercare.planning import _raster_engine as _engine
from tiercare.planning._raster_model import (
    EXAMPLE_SCENARIO,
    BicycleModel,
    Landscape,
    Scenario,
    ScenarioClass,
    TravelMode,
    landscape_from_arrays,
    locate_facilities,
    read_landscape,
    read_population,
    read_scenario,
    walking_speed_factor,
)
from tiercare.planning.geo import WGS84

__all__ = [
    "TravelMode",
    "ScenarioClass",
    "Scenario",
    "read_scenario",
    "EXAMPLE_SCENARIO",
    "BicycleModel",
    "walking_speed_factor",
    "Landscape",
    "landscape_from_arrays",
    "read_landscape",
    "read_population",
    "locate_facilities",
    "cost_distance",
    "TravelTimeResult",
    "travel_time",
    "coverage_summary",
    "catchment_population",
    "catchment_polygons",
    "capacity_coverage",
    "capacity_summary",
    "write_travel_time",
    "write_nearest",
]

Direction = Literal["towards", "from"]

TRAVEL_TIME_NODATA = -9999.0
"""Nodata value of ``travel_time.tif`` (cells not reached within the maximum)."""

NEAREST_NODATA = -1
"""Nodata value of ``nearest.tif``."""

_THRESHOLD_RTOL = 1e-12  # a cell exactly at a threshold stays covered despite rounding


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------

_ROOK_BISHOP = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
_KNIGHT = [(-2, -1), (-2, 1), (-1, -2), (-1, 2), (1, -2), (1, 2), (2, -1), (2, 1)]


def _offsets(neighbours: int, cell_size: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    if neighbours not in (8, 16):
        raise InputError.single(f"neighbours must be 8 or 16, got {neighbours}",
                                field="neighbours", code="bad_neighbours")
    rows = [(dr, dc, 0, 0, 0, 0) for dr, dc in _ROOK_BISHOP]
    if neighbours == 16:
        for dr, dc in _KNIGHT:
            if abs(dc) == 2:  # crosses (r, c + sign) and (r + dr, c + sign)
                step = int(np.sign(dc))
                rows.append((dr, dc, 0, step, dr, step))
            else:  # crosses (r + sign, c) and (r + sign, c + dc)
                step = int(np.sign(dr))
                rows.append((dr, dc, step, 0, step, dc))
    offsets = np.array(rows, dtype=np.int64)
    height, width = cell_size
    lengths = np.hypot(offsets[:, 0] * height, offsets[:, 1] * width).astype(np.float64)
    return offsets, lengths


class _Search:
    """Work arrays for Dijkstra runs on one grid (``record``: reusable after :meth:`reset`)."""

    def __init__(self, pace: np.ndarray, *, cell_size: tuple[float, float], neighbours: int,
                 anisotropic: bool, elevation: np.ndarray | None, mode: np.ndarray | None,
                 direction: Direction, bicycle: BicycleModel, record: bool = False) -> None:
        if direction not in ("towards", "from"):
            raise InputError.single(f"direction must be 'towards' or 'from', got {direction!r}",
                                    field="direction", code="bad_direction")
        pace = np.asarray(pace, dtype=np.float64)
        if pace.ndim != 2 or pace.size == 0:
            raise InputError.single("pace must be a non-empty 2-D array", field="pace")
        if np.any(np.isnan(pace)) or np.any(pace < 0):
            raise InputError.single("pace must be >= 0 (inf for impassable)", field="pace")
        self.shape = (int(pace.shape[0]), int(pace.shape[1]))
        n = pace.size
        self.pace = np.ascontiguousarray(pace).ravel()
        self.anisotropic = anisotropic
        if anisotropic:
            if elevation is None or mode is None:
                raise InputError.single("anisotropic travel needs elevation and mode grids",
                                        field="dem", code="missing_dem")
            elev = np.ascontiguousarray(elevation, dtype=np.float64).ravel()
            unknown = ~np.isfinite(elev)
            if unknown.any():
                self.pace = np.where(unknown, np.inf, self.pace)
                elev = np.where(unknown, 0.0, elev)
            self.elevation = elev
            self.mode = np.ascontiguousarray(mode, dtype=np.int8).ravel()
        else:
            self.elevation = np.zeros(1, dtype=np.float64)
            self.mode = np.zeros(1, dtype=np.int8)
        self.offsets, self.lengths = _offsets(neighbours, cell_size)
        self.slope_sign = 1.0 if direction == "from" else -1.0
        self.bike = bicycle.parameters()
        self.dist = np.full(n, np.inf, dtype=np.float64)
        self.label = np.full(n, -1, dtype=np.int32)
        self.pos = np.full(n, -1, dtype=np.int32)
        self.heap = np.empty(n, dtype=np.int32)
        self.keys = np.empty(n, dtype=np.float64)
        self.settled = np.empty(n if record else 1, dtype=np.int32)

    def flat_sources(self, sources: np.ndarray | Sequence[tuple[int, int]]) -> np.ndarray:
        rc = np.asarray(sources, dtype=np.int64).reshape(-1, 2)
        nrows, ncols = self.shape
        outside = (rc[:, 0] < 0) | (rc[:, 0] >= nrows) | (rc[:, 1] < 0) | (rc[:, 1] >= ncols)
        if outside.any():
            raise InputError([Problem(reason=f"source {tuple(int(v) for v in rc[i])} is outside "
                                      f"the {nrows}x{ncols} grid", field="sources", row=int(i) + 1,
                                      code="outside") for i in np.flatnonzero(outside)])
        return rc[:, 0] * ncols + rc[:, 1]

    def run(self, flat_sources: np.ndarray, max_cost: float) -> int:
        return int(_engine.cost_distance_kernel(
            self.pace, self.mode, self.elevation, self.shape[0], self.shape[1], self.offsets,
            self.lengths, flat_sources, float(max_cost), self.anisotropic, self.slope_sign,
            self.bike, self.dist, self.label, self.pos, self.heap, self.keys, self.settled))

    def reset(self, n_settled: int) -> None:
        touched = self.settled[:n_settled]
        self.dist[touched] = np.inf
        self.label[touched] = -1
        self.pos[touched] = -1


def cost_distance(
    pace: np.ndarray,
    sources: np.ndarray | Sequence[tuple[int, int]],
    *,
    cell_size: tuple[float, float] = (1.0, 1.0),
    neighbours: int = 8,
    max_cost: float = math.inf,
    anisotropic: bool = False,
    elevation: np.ndarray | None = None,
    mode: np.ndarray | None = None,
    direction: Direction = "towards",
    bicycle: BicycleModel = BicycleModel(),  # noqa: B008 - frozen, immutable default
) -> tuple[np.ndarray, np.ndarray]:
    """Least accumulated cost from the nearest source to every cell of a pace grid.

    Parameters
    ----------
    pace:
        ``(rows, cols)`` cost of a unit distance in each cell (s/m for travel time); ``inf``
        marks impassable cells.
    sources:
        ``(row, col)`` of each source; cost 0 there.
    cell_size:
        ``(height, width)`` of a cell (m).
    neighbours:
        8 (rook and bishop moves) or 16 (plus knight's moves).
    max_cost:
        Cells costing more are left unreached (``inf``); the search stops there, so a small
        maximum is also faster.
    anisotropic, elevation, mode:
        Scale each crossed cell's pace by its mode's slope factor (see the module notes);
        needs the elevation (m, ``nan`` = impassable) and mode-code grids.
    direction:
        ``"towards"``: cost of travelling from each cell to its nearest source; ``"from"``:
        from the nearest source to the cell. Equal unless ``anisotropic``.
    bicycle:
        Slope model of bicycling cells.

    Returns
    -------
    cost, nearest:
        float64 accumulated cost (``inf`` if unreached) and the int32 index of the source
        that reaches the cell first (``-1`` if unreached; ties go to the one settled first).

    Notes
    -----
    Isotropic costs equal scikit-image's ``MCP_Geometric(pace, sampling=cell_size)`` with 8
    neighbours. The search is Dijkstra's algorithm with a 4-ary heap on the implicit grid
    graph, compiled with Numba.
    """
    search = _Search(pace, cell_size=cell_size, neighbours=neighbours, anisotropic=anisotropic,
                     elevation=elevation, mode=mode, direction=direction, bicycle=bicycle)
    search.run(search.flat_sources(sources), max_cost)
    return search.dist.reshape(search.shape), search.label.reshape(search.shape)


@dataclass(frozen=True, eq=False)
class TravelTimeResult:
    """Travel time to (or from) the nearest facility for every cell.

    Attributes
    ----------
    seconds:
        float64 travel time; ``inf`` where no facility is reached within ``max_seconds``.
    nearest:
        int32 index (in facility order) of the nearest facility, ``-1`` where unreached.
    max_seconds:
        The maximum travel time searched (``inf`` for none).
    """

    seconds: np.ndarray
    nearest: np.ndarray
    max_seconds: float

    @property
    def minutes(self) -> np.ndarray:
        """float32 minutes, ``nan`` where unreached."""
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(self.seconds), self.seconds / 60.0,
                            np.nan).astype(np.float32)


def travel_time(
    landscape: Landscape,
    sources: np.ndarray | Sequence[tuple[int, int]],
    *,
    anisotropic: bool = False,
    direction: Direction = "towards",
    neighbours: int = 8,
    max_minutes: float | None = None,
    bicycle: BicycleModel = BicycleModel(),  # noqa: B008 - frozen, immutable default
) -> TravelTimeResult:
    """Travel time between every cell and its nearest facility cell.

    ``sources`` are ``(row, col)`` cells, e.g. from :func:`locate_facilities`. See
    :func:`cost_distance` for the other parameters; ``max_minutes`` is inclusive.
    """
    if max_minutes is not None and not max_minutes > 0:
        raise InputError.single(f"max minutes must be > 0, got {max_minutes}",
                                field="max_minutes", code="bad_max")
    max_seconds = math.inf if max_minutes is None else float(max_minutes) * 60.0
    seconds, nearest = cost_distance(
        landscape.pace(anisotropic=anisotropic), sources, cell_size=landscape.cell_size,
        neighbours=neighbours, max_cost=max_seconds * (1 + _THRESHOLD_RTOL),
        anisotropic=anisotropic, elevation=landscape.elevation if anisotropic else None,
        mode=landscape.mode if anisotropic else None, direction=direction, bicycle=bicycle)
    return TravelTimeResult(seconds=seconds, nearest=nearest, max_seconds=max_seconds)


# --------------------------------------------------------------------------------------------
# Analyses
# --------------------------------------------------------------------------------------------


def _within(seconds: np.ndarray, minutes: float) -> np.ndarray:
    return seconds <= minutes * 60.0 * (1 + _THRESHOLD_RTOL)


def _threshold_key(minutes: float) -> str:
    return str(int(minutes)) if float(minutes).is_integer() else repr(float(minutes))


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    values = [float(t) for t in thresholds]
    if not values or any(not (math.isfinite(t) and t > 0) for t in values):
        raise InputError.single(f"thresholds must be positive minutes, got {list(thresholds)}",
                                field="thresholds", code="bad_thresholds")
    return sorted(set(values))


def coverage_summary(result: TravelTimeResult, population: np.ndarray,
                     thresholds: Sequence[float]) -> dict[str, object]:
    """Population within each threshold (inclusive) of its nearest facility.

    Thresholds above the result's maximum travel time count only the cells within it.

    Returns
    -------
    dict
        ``{"thresholds": [...], "population_total": P, "covered": {"15": ..., ...},
        "unreachable": U, "max_minutes": M or None}``; ``unreachable`` is the population that
        reaches no facility (within the maximum travel time, if any).
    """
    levels = _check_thresholds(thresholds)
    pop = np.asarray(population, dtype=np.float64)
    covered = {_threshold_key(t): float(pop[_within(result.seconds, t)].sum()) for t in levels}
    return {
        "thresholds": [int(t) if t.is_integer() else t for t in levels],
        "population_total": float(pop.sum()),
        "covered": covered,
        "unreachable": float(pop[~np.isfinite(result.seconds)].sum()),
        "max_minutes": None if math.isinf(result.max_seconds) else result.max_seconds / 60.0,
    }


def catchment_population(result: TravelTimeResult, population: np.ndarray, n_facilities: int,
                         minutes: float) -> np.ndarray:
    """Population of each facility's catchment: cells it is nearest to within ``minutes``."""
    inside = _within(result.seconds, minutes)
    return np.bincount(result.nearest[inside], weights=np.asarray(population)[inside],
                       minlength=n_facilities)[:n_facilities]


def catchment_polygons(result: TravelTimeResult, landscape: Landscape,
                       population: np.ndarray | None, facility_ids: Sequence[str],
                       thresholds: Sequence[float]) -> gpd.GeoDataFrame:
    """Polygons of each facility's cells within each threshold, in WGS84.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per facility and threshold: ``facility_id``, ``threshold_minutes``, ``cells``,
        ``population`` (``nan`` without a population grid) and a (Multi)Polygon geometry
        (``None`` when the facility has no cell within the threshold).
    """
    ids = list(facility_ids)
    records: list[dict[str, object]] = []
    for t in _check_thresholds(thresholds):
        inside = _within(result.seconds, t)
        labels = np.where(inside, result.nearest, NEAREST_NODATA).astype(np.int32)
        parts: dict[int, list[shapely.Geometry]] = {}
        for geom, value in rasterio.features.shapes(labels, mask=labels >= 0,
                                                    transform=landscape.transform):
            parts.setdefault(int(value), []).append(shapely.geometry.shape(geom))
        cells = np.bincount(labels[inside], minlength=len(ids))
        pops = (catchment_population(result, population, len(ids), t) if population is not None
                else np.full(len(ids), np.nan))
        for k, fid in enumerate(ids):
            geom = shapely.union_all(parts[k]) if k in parts else None
            records.append({"facility_id": fid, "threshold_minutes": t, "cells": int(cells[k]),
                            "population": float(pops[k]), "geometry": geom})
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=landscape.crs)
    return gdf.to_crs(WGS84)


def capacity_coverage(
    landscape: Landscape,
    sources: np.ndarray | Sequence[tuple[int, int]],
    capacities: Sequence[float],
    population: np.ndarray,
    thresholds: Sequence[float],
    *,
    facility_ids: Sequence[str],
    anisotropic: bool = False,
    direction: Direction = "towards",
    neighbours: int = 8,
    max_minutes: float | None = None,
    bicycle: BicycleModel = BicycleModel(),  # noqa: B008 - frozen, immutable default
) -> pd.DataFrame:
    """Geographic coverage with capacity (AccessMod's "geographic coverage" analysis).

    Facilities are processed in the given order. Each one computes its own travel time to
    (or from) every cell up to the threshold (inclusive, and no further than ``max_minutes``),
    then takes the still uncovered population of those cells, nearest first, until its
    capacity is used (the last cell partly). Covered people are removed before the next
    facility. Each threshold is an independent run.

    Returns
    -------
    pandas.DataFrame
        One row per threshold and facility: ``threshold_minutes``, ``order`` (1-based),
        ``id``, ``capacity``, ``population_within`` (uncovered population within the
        threshold when its turn came), ``covered`` and ``capacity_left``.
    """
    levels = _check_thresholds(thresholds)
    caps = np.asarray(capacities, dtype=np.float64)
    ids = list(facility_ids)
    if caps.shape != (len(ids),) or np.any(~np.isfinite(caps)) or np.any(caps < 0):
        raise InputError.single("capacities must be one non-negative number per facility",
                                field="capacity", code="bad_capacity")
    search = _Search(landscape.pace(anisotropic=anisotropic), cell_size=landscape.cell_size,
                     neighbours=neighbours, anisotropic=anisotropic,
                     elevation=landscape.elevation if anisotropic else None,
                     mode=landscape.mode if anisotropic else None, direction=direction,
                     bicycle=bicycle, record=True)
    flat = search.flat_sources(sources)
    remaining = {t: np.asarray(population, dtype=np.float64).ravel().copy() for t in levels}
    cap_minutes = math.inf if max_minutes is None else float(max_minutes)
    limits = np.array([min(t, cap_minutes) * 60.0 * (1 + _THRESHOLD_RTOL) for t in levels])
    records: list[dict[str, object]] = []
    for k, (fid, cap, cell) in enumerate(zip(ids, caps, flat, strict=True)):
        n = search.run(np.array([cell], dtype=np.int64), float(limits[-1]))
        order = search.settled[:n].astype(np.int64)  # settled by increasing time
        times = search.dist[order]
        for t, limit in zip(levels, limits, strict=True):
            cells = order[: int(np.searchsorted(times, limit, side="right"))]
            pop_left = remaining[t]
            available = pop_left[cells]
            within = float(available.sum())
            taken = _take_until(available, float(cap))
            pop_left[cells] = available - taken
            covered = float(taken.sum())
            records.append({"threshold_minutes": t, "order": k + 1, "id": fid,
                            "capacity": float(cap), "population_within": within,
                            "covered": covered, "capacity_left": float(cap) - covered})
        search.reset(n)
    return pd.DataFrame.from_records(records, columns=[
        "threshold_minutes", "order", "id", "capacity", "population_within", "covered",
        "capacity_left"])


def capacity_summary(table: pd.DataFrame,
                     population_total: float) -> dict[str, dict[str, float]]:
    """Covered and uncovered population per threshold from :func:`capacity_coverage`'s table.

    Returns
    -------
    dict
        ``{"15": {"covered": C, "uncovered": population_total - C}, ...}``.
    """
    by_level = table.groupby("threshold_minutes")["covered"].sum()
    return {_threshold_key(float(t)): {"covered": float(c),
                                       "uncovered": float(population_total) - float(c)}
            for t, c in by_level.items()}


def _take_until(available: np.ndarray, capacity: float) -> np.ndarray:
    """Take ``available`` in order until ``capacity`` is used (the last one partly)."""
    before = np.cumsum(available) - available
    return np.clip(capacity - before, 0.0, available)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _profile(landscape: Landscape, dtype: str, nodata: float) -> dict[str, object]:
    rows, cols = landscape.shape
    profile: dict[str, object] = {
        "driver": "GTiff", "height": rows, "width": cols, "count": 1, "dtype": dtype,
        "crs": landscape.crs, "transform": landscape.transform, "nodata": nodata,
        "compress": "deflate"}
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def write_travel_time(path: str | Path, result: TravelTimeResult, landscape: Landscape) -> None:
    """Write minutes as float32 GeoTIFF (nodata :data:`TRAVEL_TIME_NODATA` where unreached)."""
    minutes = result.minutes
    data = np.where(np.isnan(minutes), np.float32(TRAVEL_TIME_NODATA), minutes)
    with rasterio.open(path, "w", **_profile(landscape, "float32", TRAVEL_TIME_NODATA)) as dst:
        dst.write(data.astype(np.float32), 1)
        dst.update_tags(units="minutes")


def write_nearest(path: str | Path, result: TravelTimeResult, landscape: Landscape,
                  facility_ids: Sequence[str]) -> None:
    """Write the nearest facility's 0-based index as int32 GeoTIFF (nodata -1).

    The tag ``facility_ids`` lists the ids (JSON) so that index ``k`` maps to the k-th id.
    """
    with rasterio.open(path, "w", **_profile(landscape, "int32", NEAREST_NODATA)) as dst:
        dst.write(result.nearest.astype(np.int32), 1)
        dst.update_tags(facility_ids=json.dumps(list(facility_ids), ensure_ascii=False))
