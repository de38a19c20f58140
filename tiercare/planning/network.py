"""Routable road networks: build, snap points, shortest travel times.

The graph is a compressed sparse row matrix (``scipy.sparse.csr_matrix``) with one entry per
open direction of every road segment: entry ``(a, b)`` holds the travel time in seconds from
vertex ``a`` to vertex ``b`` (parallel segments stay parallel entries). Shortest paths are
SciPy's Dijkstra (``scipy.sparse.csgraph.dijkstra``). Nearest-segment search uses an exact
k-d tree scheme (``scipy.spatial.cKDTree``) that scales to millions of segments.

Joining points to the network
-----------------------------
A point ``P`` is joined to the *nearest segment* ``(a, b)`` (not the nearest vertex): it is
projected onto the segment at ``Q = a + f (b - a)`` with ``0 <= f <= 1``; the off-road part
``|PQ|`` is walked at the off-road speed (5 km/h by default), and the segment's time is split
between its ends: reaching ``a`` from ``Q`` costs ``f · t(b→a)``, reaching ``b`` costs
``(1 - f) · t(a→b)`` (``inf`` where the direction is closed). A point lying on a vertex has no
off-road time and no partial cost. Two points on the same segment may also travel directly
along it.

Sources are attached as extra virtual vertices with edges to the ends of their segments, so
that *one* multi-source Dijkstra pass gives every demand point its nearest facility and time
(:func:`nearest_facility`), and a bounded Dijkstra per source gives sparse origin–destination
travel times (:func:`travel_time_matrix`).

Examples
--------
A 3-vertex line, 100 m per segment at 36 km/h (10 m/s → 10 s per segment):

>>> import numpy as np
>>> net = Network.from_arrays(np.array([[0., 0.], [100., 0.], [200., 0.]]), u=[0, 1], v=[1, 2],
...                           time_uv=[10., 10.], time_vu=[10., 10.], crs="EPSG:32649")
>>> fac = np.array([[0., 0.]])                 # on vertex 0
>>> dem = np.array([[150., 0.], [200., 50.]])  # mid-segment; 50 m off vertex 2
>>> res = nearest_facility(net, fac, dem)
>>> res.facility.tolist(), np.round(res.seconds, 3).tolist()
([0, 0], [15.0, 56.0])
>>> m = travel_time_matrix(net, fac, dem, cutoff_s=30)  # the second point is 56 s away
>>> m.shape, m.indices.tolist(), m.data.tolist()
((1, 2), [0], [15.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import geopandas as gpd
import numba
import numpy as np
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from tiercare.errors import InputError, Problem
from tiercare.planning.geo import WGS84, metric_crs_for
from tiercare.planning.roads import RoadSegments, SpeedTable, load_speed_table

__all__ = [
    "Network", "Snapped", "NearestResult", "ComponentReport", "build_network", "snap",
    "nearest_facility", "travel_time_pairs", "travel_time_matrix", "components", "project_points",
]

Direction = Literal["from_origins", "to_origins"]
_CHUNK_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class Network:
    """A directed road graph in a metric CRS, with travel times in seconds.

    Attributes
    ----------
    crs:
        Metric CRS of ``node_xy`` (the UTM zone of the roads by default).
    node_xy:
        ``(n_nodes, 2)`` vertex coordinates in metres.
    u, v:
        ``(n_segments,)`` vertices of each straight segment.
    time_uv, time_vu:
        Seconds to traverse each segment ``u → v`` and ``v → u``; ``inf`` when closed (one-way).
    offroad_mps:
        Speed of the off-road part of a trip (metres per second).
    mode:
        The travel mode the times are for (informative).
    """

    crs: pyproj.CRS
    node_xy: np.ndarray
    u: np.ndarray
    v: np.ndarray
    time_uv: np.ndarray
    time_vu: np.ndarray
    offroad_mps: float = 5.0 / 3.6
    mode: str = "driving"

    @classmethod
    def from_arrays(
        cls,
        node_xy: np.ndarray,
        *,
        u: np.ndarray | list[int],
        v: np.ndarray | list[int],
        time_uv: np.ndarray | list[float],
        time_vu: np.ndarray | list[float],
        crs: pyproj.CRS | str,
        offroad_kmh: float = 5.0,
        mode: str = "driving",
    ) -> Network:
        """Build a network from vertex coordinates (metres) and per-segment times (seconds).

        ``time_uv``/``time_vu`` may be ``inf`` for a closed direction; segments closed both
        ways are dropped.
        """
        xy = np.ascontiguousarray(node_xy, dtype=float)
        # copies: the network must not change with the caller's arrays
        uu, vv = np.array(u, dtype=np.int64), np.array(v, dtype=np.int64)
        tuv, tvu = np.array(time_uv, dtype=float), np.array(time_vu, dtype=float)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise InputError.single("node_xy must have shape (n, 2)", field="node_xy")
        n = xy.shape[0]
        if not (uu.shape == vv.shape == tuv.shape == tvu.shape):
            raise InputError.single("u, v, time_uv and time_vu must have the same length")
        if uu.size and (min(uu.min(), vv.min()) < 0 or max(uu.max(), vv.max()) >= n):
            raise InputError.single("segment vertex index out of range", field="u")
        if not ((tuv >= 0).all() and (tvu >= 0).all()):  # NaN fails too
            raise InputError.single("travel times must be non-negative", field="time")
        if not offroad_kmh > 0:
            raise InputError.single("off-road speed must be positive", field="offroad_kmh")
        keep = np.isfinite(tuv) | np.isfinite(tvu)
        if not keep.all():
            uu, vv, tuv, tvu = uu[keep], vv[keep], tuv[keep], tvu[keep]
        return cls(crs=pyproj.CRS.from_user_input(crs), node_xy=xy, u=uu, v=vv,
                   time_uv=tuv, time_vu=tvu, offroad_mps=offroad_kmh / 3.6, mode=mode)

    @property
    def n_nodes(self) -> int:
        """Number of vertices."""
        return int(self.node_xy.shape[0])

    @property
    def n_segments(self) -> int:
        """Number of segments."""
        return int(self.u.shape[0])

    @cached_property
    def graph(self) -> sp.csr_matrix:
        """Forward graph: an entry ``(a, b)`` holds the seconds from ``a`` to ``b``.

        Parallel segments between the same two vertices stay parallel entries (shortest paths
        take the fastest); use the sparsity pattern, not ``graph[a, b]``, which would sum them.
        """
        return _csr(self.u, self.v, self.time_uv, self.time_vu, self.n_nodes)

    @cached_property
    def graph_reversed(self) -> sp.csr_matrix:
        """Reversed graph: an entry ``(b, a)`` holds the seconds from ``a`` to ``b``."""
        return _csr(self.v, self.u, self.time_uv, self.time_vu, self.n_nodes)

    @cached_property
    def segment_lines(self) -> np.ndarray:
        """The segments as Shapely two-point ``LineString`` objects (for maps and exports)."""
        return shapely.linestrings(np.stack([self.node_xy[self.u], self.node_xy[self.v]], axis=1))

    @cached_property
    def snap_index(self) -> _SnapIndex:
        """Spatial index used by :func:`snap` (built on first use)."""
        return _SnapIndex.build(self)


@dataclass(frozen=True)
class _SnapIndex:
    """Exact nearest-segment search on a uniform grid of sample points.

    Each segment is cut into pieces no longer than ``2 * half_gap`` and represented by the
    midpoints of its pieces, so every point of a segment lies within ``half_gap`` of one of
    *its* samples. Samples are bucketed in square cells of side ``cell`` (a counting sort by
    cell, with the cells of a grid column contiguous). A query scans square rings of cells
    around its own, nearest first: once every sample closer than ``R`` has been scanned (``R``
    being the distance from the point to the cells of the grid outside the block scanned) and
    the best segment found is at distance ``d`` with ``d + half_gap <= R``, the answer is exact
    (the true nearest segment has a sample within ``d + half_gap``).
    """

    origin: np.ndarray
    cell: float
    nx: int
    ny: int
    start: np.ndarray  # first sample of each cell (cells numbered x * ny + y), plus the end
    segment_of: np.ndarray  # segment of each sample, sorted by cell
    half_gap: float

    @classmethod
    def build(cls, net: Network) -> _SnapIndex:
        """Sample every segment and bucket the samples by cell."""
        xy, u, v, m = net.node_xy, net.u, net.v, net.n_segments
        sub = slice(None, None, max(1, m // 100_000))
        length = np.hypot(*(xy[v[sub]] - xy[u[sub]]).T)
        # at most about five samples per segment overall, whatever the lengths
        spacing = max(float(np.percentile(length, 90)), float(length.mean()) / 4.0, 1e-3)
        pieces, longest = _count_pieces(xy, u, v, spacing)
        n_samples = int(pieces.sum())
        lo = np.array([xy[:, 0].min(), xy[:, 1].min()])
        extent = np.maximum(np.array([xy[:, 0].max(), xy[:, 1].max()]) - lo, 1e-3)
        half_gap = longest / 2.0
        # cells of about two samples, at least ``half_gap`` wide
        cell = max(half_gap, float(np.sqrt(2.0 * extent[0] * extent[1] / n_samples)), 1e-3)
        while np.prod(np.floor(extent / cell) + 1) > 4 * n_samples + 16:
            cell *= 1.5
        nx, ny = (int(k) for k in np.floor(extent / cell) + 1)
        index_type = np.int32 if max(nx * ny + 1, n_samples, m) < 2**31 - 1 else np.int64
        start = np.zeros(nx * ny + 1, index_type)
        segment_of = np.empty(n_samples, index_type)
        _bucket_samples(xy, u, v, pieces, lo[0], lo[1], cell, nx, ny, start, segment_of)
        return cls(origin=lo, cell=cell, nx=nx, ny=ny, start=start, segment_of=segment_of,
                   half_gap=half_gap)

    def nearest(self, xy: np.ndarray,
                net: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Find the nearest segment of each point of ``net`` (exact; ties to any of them).

        Returns the segments, the position of each projection along its segment (0 at ``u``,
        1 at ``v``) and the distances (metres).
        """
        pts = np.ascontiguousarray(xy, dtype=float)
        # points in cell order share the cells (and segments) they read
        cx = np.clip((pts[:, 0] - self.origin[0]) / self.cell, -1, self.nx).astype(np.int64)
        cy = np.clip((pts[:, 1] - self.origin[1]) / self.cell, -1, self.ny).astype(np.int64)
        order = np.argsort(cx * (self.ny + 2) + cy)
        seg, frac, dist = (np.empty(len(pts), np.int64), np.empty(len(pts)),
                           np.empty(len(pts)))
        _nearest_segments(pts, order, net.node_xy, net.u, net.v, self.start, self.segment_of,
                          self.origin[0], self.origin[1], self.cell, self.nx, self.ny,
                          self.half_gap, seg, frac, dist)
        return seg, frac, dist


@numba.njit(cache=True, nogil=True)
def _count_pieces(xy: np.ndarray, u: np.ndarray, v: np.ndarray,
                  spacing: float) -> tuple[np.ndarray, float]:
    """Count the pieces no longer than ``spacing`` of each segment; return the longest too."""
    pieces = np.empty(len(u), np.int32)
    longest = 0.0
    for s in range(len(u)):
        dx = xy[v[s], 0] - xy[u[s], 0]
        dy = xy[v[s], 1] - xy[u[s], 1]
        length = math.sqrt(dx * dx + dy * dy)
        p = max(1, int(math.ceil(length / spacing)))
        pieces[s] = p
        longest = max(longest, length / p)
    return pieces, longest


@numba.njit(cache=True, nogil=True)
def _bucket_samples(xy: np.ndarray, u: np.ndarray, v: np.ndarray, pieces: np.ndarray,
                    x0: float, y0: float, cell: float, nx: int, ny: int, start: np.ndarray,
                    segment_of: np.ndarray) -> None:
    """Sort the piece midpoints by cell (a counting sort).

    Fills ``start`` (zeros on entry) with the first sample of each cell, plus the end, and
    ``segment_of`` with the segment of each sample.
    """
    key = np.empty(len(segment_of), start.dtype)
    k = 0
    for s in range(len(u)):
        ax, ay = xy[u[s], 0], xy[u[s], 1]
        dx, dy = xy[v[s], 0] - ax, xy[v[s], 1] - ay
        p = pieces[s]
        for i in range(p):
            f = (i + 0.5) / p
            cx = min(max(int((ax + f * dx - x0) / cell), 0), nx - 1)
            cy = min(max(int((ay + f * dy - y0) / cell), 0), ny - 1)
            key[k] = cx * ny + cy
            start[key[k] + 1] += 1
            k += 1
    for c in range(nx * ny):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    k = 0
    for s in range(len(u)):
        for _i in range(pieces[s]):
            segment_of[fill[key[k]]] = s
            fill[key[k]] += 1
            k += 1


@numba.njit(cache=True, nogil=True)
def _project(xy: np.ndarray, u: np.ndarray, v: np.ndarray, s: int, px: float,
             py: float) -> tuple[float, float, float]:
    """Projection of point (px, py) on segment ``s``: the fraction along it and the offset."""
    ax, ay = xy[u[s], 0], xy[u[s], 1]
    dx, dy = xy[v[s], 0] - ax, xy[v[s], 1] - ay
    wx, wy = px - ax, py - ay
    len2 = dx * dx + dy * dy
    f = 0.0
    if len2 > 0.0:
        f = min(max((wx * dx + wy * dy) / len2, 0.0), 1.0)
    return f, wx - f * dx, wy - f * dy


@numba.njit(cache=True, nogil=True)
def _nearest_segments(pts: np.ndarray, order: np.ndarray, xy: np.ndarray, u: np.ndarray,
                      v: np.ndarray, start: np.ndarray, segment_of: np.ndarray, x0: float,
                      y0: float, cell: float, nx: int, ny: int, half_gap: float,
                      seg: np.ndarray, frac: np.ndarray, dist: np.ndarray) -> None:
    """Write the nearest segment of each point into ``seg``, ``frac`` and ``dist``.

    Points are taken in ``order``; each scans rings of cells outwards (see ``_SnapIndex``).
    """
    for i in order:
        px, py = pts[i, 0], pts[i, 1]
        # position in cells (bounded so that cell numbers fit in 64 bits)
        fx = min(max((px - x0) / cell, -1e15), 1e15)
        fy = min(max((py - y0) / cell, -1e15), 1e15)
        cx, cy = int(math.floor(fx)), int(math.floor(fy))
        gap_x = max(0.0, -fx, fx - nx)  # distance (in cells) to the grid's columns
        gap_y = max(0.0, -fy, fy - ny)
        # rings nearer than the grid hold no cell: start at the first one that may
        r = max(0, cx - (nx - 1), -cx, cy - (ny - 1), -cy)
        best, best_seg = math.inf, -1
        while True:
            for ix in range(max(cx - r, 0), min(cx + r, nx - 1) + 1):
                # the whole column on the left and right sides of the ring, else its two ends
                edge = ix == cx - r or ix == cx + r
                step = 1 if edge else 2 * r
                iy = max(cy - r, 0) if edge else cy - r
                while iy <= min(cy + r, ny - 1):
                    if iy >= 0:
                        c = ix * ny + iy
                        for k in range(start[c], start[c + 1]):
                            s = segment_of[k]
                            _f, ex, ey = _project(xy, u, v, s, px, py)
                            d2 = ex * ex + ey * ey
                            if d2 < best or best_seg < 0:
                                best, best_seg = d2, s
                    iy += step
            # distance (in cells) from the point to the cells left unscanned: the strips of
            # the grid beyond each side of the block
            reach = math.inf
            if cx - r > 0:
                reach = min(reach, math.hypot(fx - (cx - r), gap_y))
            if cx + r < nx - 1:
                reach = min(reach, math.hypot(cx + r + 1 - fx, gap_y))
            if cy - r > 0:
                reach = min(reach, math.hypot(fy - (cy - r), gap_x))
            if cy + r < ny - 1:
                reach = min(reach, math.hypot(cy + r + 1 - fy, gap_x))
            if best_seg >= 0 and math.sqrt(best) + half_gap <= reach * cell:
                break
            if reach == math.inf:  # the block holds the whole grid
                break
            r += 1
        s = best_seg
        f, ex, ey = _project(xy, u, v, s, px, py)
        d = math.hypot(ex, ey)
        seg[i], frac[i], dist[i] = s, f, 0.0 if d < 1e-6 else d


@dataclass(frozen=True)
class Snapped:
    """Points joined to a network's nearest segments.

    Attributes
    ----------
    segment:
        Index of the nearest segment of each point.
    frac:
        Position of the projection along the segment, 0 at ``u`` and 1 at ``v``.
    offroad_m:
        Straight-line distance from the point to its projection (metres).
    offroad_s:
        Time of that off-road part at the network's off-road speed (seconds).
    """

    segment: np.ndarray
    frac: np.ndarray
    offroad_m: np.ndarray
    offroad_s: np.ndarray

    def __len__(self) -> int:
        return int(self.segment.shape[0])


@dataclass(frozen=True)
class NearestResult:
    """Nearest source of every destination.

    Attributes
    ----------
    facility:
        Index (into the facilities given) of the nearest one; ``-1`` when none is reachable.
    seconds:
        Travel time in seconds; ``inf`` when unreachable (or beyond the cutoff).
    offroad_s:
        Off-road part of each destination's trip (seconds), for reporting.
    """

    facility: np.ndarray
    seconds: np.ndarray
    offroad_s: np.ndarray


@dataclass(frozen=True)
class ComponentReport:
    """Weakly connected pieces of a network and what they strand.

    Attributes
    ----------
    n_components:
        How many pieces the network falls into.
    node_label:
        Piece of every vertex (0 = the largest piece).
    sizes:
        Vertices per piece (descending).
    population:
        Demand population joined to each piece (zeros when no demand was given).
    facilities:
        Facilities joined to each piece.
    stranded_population:
        Population in pieces holding no facility.
    """

    n_components: int
    node_label: np.ndarray
    sizes: np.ndarray
    population: np.ndarray
    facilities: np.ndarray
    stranded_population: float

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary (sizes/population of the 20 largest pieces)."""
        return {
            "n_components": self.n_components,
            "largest_sizes": self.sizes[:20].tolist(),
            "population_by_component": self.population[:20].tolist(),
            "facilities_by_component": self.facilities[:20].tolist(),
            "stranded_population": self.stranded_population,
        }


def build_network(
    roads: RoadSegments,
    *,
    mode: str = "driving",
    speeds: SpeedTable | None = None,
    use_class: bool = True,
    connect_tolerance_m: float | None = None,
    crs: pyproj.CRS | None = None,
) -> Network:
    """Turn road segments into a routable :class:`Network` for one travel mode.

    A segment's time is its length over its speed. The speed is the layer's explicit speed
    where present, else the table's speed for its class and ``mode`` (classes closed to the mode
    are dropped); driving speeds are capped by OSM ``maxspeed``. One-way flags apply to driving
    and cycling.

    Parameters
    ----------
    roads:
        From :func:`tiercare.planning.roads.read_roads`.
    mode:
        ``"driving"``, ``"walking"`` or ``"cycling"``.
    speeds:
        Speed table (default: the packaged one in force today).
    use_class:
        Use class speeds where the layer has no explicit speed (``False``: every segment must
        have one).
    connect_tolerance_m:
        Join pieces of the network lying within this distance of another piece with a walked
        connector (see :func:`components` to report them first).
    crs:
        Metric CRS to work in (default: UTM zone of the roads).

    Raises
    ------
    InputError
        Segments without speed or class, classes unknown to the table (each with the first row),
        or no segment open to ``mode``.
    """
    table = speeds or load_speed_table()
    speed = roads.speed_kmh.astype(float).copy()
    need = ~np.isfinite(speed)
    problems: list[Problem] = []
    if need.any():
        classes = roads.road_class[need]
        if not use_class:
            rows = roads.source_row[need]
            problems.append(Problem(reason=f"{need.sum()} segment(s) have no speed", field="speed",
                                    row=int(rows[0])))
        else:
            uniq, first = np.unique(classes.astype(str), return_index=True)
            for cls, i in zip(uniq, first, strict=True):
                if not cls:
                    problems.append(Problem(reason="road has neither a speed nor a class",
                                            field="class", row=int(roads.source_row[need][i])))
                elif not table.known(cls):
                    problems.append(Problem(
                        reason=f"road class {cls!r} is not in the speed table {table.version}",
                        field="class", row=int(roads.source_row[need][i]), code="unknown_class"))
            speed[need] = table.speeds_for(classes, mode)
    if problems:
        raise InputError(problems)
    if mode == "driving":
        speed = np.fmin(speed, roads.maxspeed_kmh)
    open_ = np.isfinite(speed) & (speed > 0)
    if not open_.any():
        raise InputError.single(f"no road is open to {mode}", field="mode", code="empty")
    t = roads.length_m[open_] / (speed[open_] / 3.6)
    ow = roads.oneway[open_] if mode in ("driving", "cycling") else np.zeros(open_.sum())
    tuv = np.where(ow < 0, np.inf, t)
    tvu = np.where(ow > 0, np.inf, t)
    used, uv = np.unique(np.concatenate([roads.u[open_], roads.v[open_]]), return_inverse=True)
    u, v = uv[: open_.sum()], uv[open_.sum():]
    lonlat = roads.node_lonlat[used]
    crs = crs or metric_crs_for((*lonlat.min(axis=0), *lonlat.max(axis=0)))
    xy = _to_xy(lonlat, WGS84, crs)
    offroad = table.offroad_kmh(mode)
    if connect_tolerance_m:
        cu, cv, clen = _connectors(xy, u, v, connect_tolerance_m)
        ct = clen / (offroad / 3.6)
        u, v = np.concatenate([u, cu]), np.concatenate([v, cv])
        tuv, tvu = np.concatenate([tuv, ct]), np.concatenate([tvu, ct])
    return Network.from_arrays(xy, u=u, v=v, time_uv=tuv, time_vu=tvu, crs=crs,
                               offroad_kmh=offroad, mode=mode)


def snap(network: Network, points: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray) -> Snapped:
    """Join points to their nearest segments (projection, not nearest vertex).

    Parameters
    ----------
    points:
        A GeoDataFrame/GeoSeries of points with a CRS, or an ``(n, 2)`` array of coordinates
        already in ``network.crs``.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network.from_arrays(np.array([[0., 0.], [100., 0.]]), u=[0], v=[1],
    ...                           time_uv=[10.], time_vu=[10.], crs="EPSG:32649")
    >>> s = snap(net, np.array([[25., 36.]]))
    >>> s.segment.tolist(), s.frac.tolist(), s.offroad_m.tolist(), round(float(s.offroad_s[0]), 3)
    ([0], [0.25], [36.0], 25.92)
    """
    xy = project_points(network, points)
    if network.n_segments == 0:
        raise InputError.single("the network has no segment", code="empty")
    seg, f, d = network.snap_index.nearest(xy, network)
    return Snapped(segment=seg, frac=f, offroad_m=d, offroad_s=d / network.offroad_mps)


def nearest_facility(
    network: Network,
    facilities: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped,
    demand: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped,
    *,
    cutoff_s: float = np.inf,
    direction: Literal["to_facility", "from_facility"] = "to_facility",
) -> NearestResult:
    """Nearest facility and travel time of every demand point, in one multi-source Dijkstra.

    Parameters
    ----------
    facilities, demand:
        Points (GeoDataFrame/GeoSeries with CRS, ``(n, 2)`` arrays in ``network.crs``) or
        already :func:`snap`-ed.
    cutoff_s:
        Times above this are reported unreachable (``-1``/``inf``); also bounds the search.
    direction:
        ``"to_facility"`` (default): time from the demand point to the facility (going to
        care); ``"from_facility"``: the way back (differs on one-way streets).

    Returns
    -------
    NearestResult

    Notes
    -----
    With ``to_facility`` the search runs on the reversed graph from the facilities' virtual
    vertices, so all demand points are served by a single pass:
    ``T(d) = min over ends e of segment(d) of [leave(d→e) + dist(e)]``, ``dist`` being the
    multi-source shortest time from ``e`` to its nearest facility.
    """
    fs = facilities if isinstance(facilities, Snapped) else snap(network, facilities)
    ds = demand if isinstance(demand, Snapped) else snap(network, demand)
    reverse = direction == "to_facility"
    if direction not in ("to_facility", "from_facility"):
        raise InputError.single(f"unknown direction {direction!r}", field="direction")
    n = network.n_nodes
    if len(fs) == 0:
        return NearestResult(np.full(len(ds), -1), np.full(len(ds), np.inf), ds.offroad_s)
    graph, src_a, src_b = _augmented(network, fs, reverse)
    dist, _pred, sources = dijkstra(graph, directed=True, indices=np.arange(n, n + len(fs)),
                                    min_only=True, return_predecessors=True,
                                    limit=float(cutoff_s))
    ja, jb = _join_costs(network, ds, reverse)
    ta = dist[network.u[ds.segment]] + ja
    tb = dist[network.v[ds.segment]] + jb
    use_b = tb < ta
    seconds = np.where(use_b, tb, ta)
    src = np.where(use_b, sources[network.v[ds.segment]], sources[network.u[ds.segment]])
    fac = np.where(np.isfinite(seconds), src - n, -1)
    oi, di, tt = _same_segment(network, fs, ds, reverse)
    if len(oi):
        order = np.lexsort((tt, di))
        first = np.ones(len(order), bool)
        first[1:] = di[order][1:] != di[order][:-1]
        best_d, best_o, best_t = di[order][first], oi[order][first], tt[order][first]
        better = best_t < seconds[best_d]
        seconds[best_d[better]] = best_t[better]
        fac[best_d[better]] = best_o[better]
    beyond = seconds > cutoff_s
    seconds[beyond] = np.inf
    fac[beyond | ~np.isfinite(seconds)] = -1
    return NearestResult(facility=fac.astype(np.int64), seconds=seconds, offroad_s=ds.offroad_s)


def travel_time_pairs(
    network: Network,
    origins: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped,
    destinations: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped,
    *,
    cutoff_s: float,
    direction: Direction = "from_origins",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All origin–destination pairs within ``cutoff_s`` seconds, as three flat arrays.

    Parameters
    ----------
    origins, destinations:
        Points or :class:`Snapped` points. Put the smaller set as ``origins``: one bounded
        Dijkstra runs per origin.
    cutoff_s:
        Pairs with a time above this are left out (a time equal to it is kept).
    direction:
        ``"from_origins"``: time of the trip origin → destination; ``"to_origins"``: time of
        the trip destination → origin (e.g. demand travelling to facilities given as origins).

    Returns
    -------
    (origin_index, destination_index, seconds)
        Sorted by origin then destination.
    """
    if direction not in ("from_origins", "to_origins"):
        raise InputError.single(f"unknown direction {direction!r}", field="direction")
    if not cutoff_s >= 0:
        raise InputError.single("cutoff must be a non-negative number of seconds", field="cutoff")
    os_ = origins if isinstance(origins, Snapped) else snap(network, origins)
    ds = destinations if isinstance(destinations, Snapped) else snap(network, destinations)
    reverse = direction == "to_origins"
    n, k = network.n_nodes, len(os_)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if k == 0 or len(ds) == 0:
        return empty
    graph, _a, _b = _augmented(network, os_, reverse)
    ja, jb = _join_costs(network, ds, reverse)
    du, dv = network.u[ds.segment], network.v[ds.segment]
    chunk = max(1, min(256, _CHUNK_BYTES // (8 * (n + k))))
    parts_o, parts_d, parts_t = [], [], []
    for start in range(0, k, chunk):
        idx = np.arange(start, min(start + chunk, k))
        dist = dijkstra(graph, directed=True, indices=n + idx, limit=float(cutoff_s))
        t = np.minimum(dist[:, du] + ja, dist[:, dv] + jb)
        r, c = np.nonzero(t <= cutoff_s)
        parts_o.append(idx[r])
        parts_d.append(c)
        parts_t.append(t[r, c])
    oi, di, tt = (np.concatenate(parts_o), np.concatenate(parts_d), np.concatenate(parts_t))
    so, sd, st = _same_segment(network, os_, ds, reverse)
    if len(so):
        keep = st <= cutoff_s
        oi = np.concatenate([oi, so[keep]])
        di = np.concatenate([di, sd[keep]])
        tt = np.concatenate([tt, st[keep]])
        order = np.lexsort((tt, di, oi))
        oi, di, tt = oi[order], di[order], tt[order]
        first = np.ones(len(oi), bool)
        first[1:] = (oi[1:] != oi[:-1]) | (di[1:] != di[:-1])
        oi, di, tt = oi[first], di[first], tt[first]
    return oi.astype(np.int64), di.astype(np.int64), tt


def travel_time_matrix(
    network: Network,
    origins: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped,
    destinations: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped,
    *,
    cutoff_s: float,
    direction: Direction = "from_origins",
) -> sp.csr_matrix:
    """Sparse origin × destination travel times (seconds) within ``cutoff_s``.

    The matrix has shape ``(len(origins), len(destinations))``. **Its stored entries are the
    reachable pairs**; a stored entry may be an explicit ``0.0`` (same place), so test
    reachability with the sparsity pattern (``m[i].indices``), never with ``m[i, j] != 0``, and do
    not call ``eliminate_zeros``. See :func:`travel_time_pairs` for the arguments.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network.from_arrays(np.array([[0., 0.], [100., 0.]]), u=[0], v=[1],
    ...                           time_uv=[10.], time_vu=[10.], crs="EPSG:32649")
    >>> m = travel_time_matrix(net, np.array([[0., 0.]]), np.array([[0., 0.], [100., 0.]]),
    ...                        cutoff_s=60)
    >>> m.nnz, m.data.tolist()
    (2, [0.0, 10.0])
    """
    os_ = origins if isinstance(origins, Snapped) else snap(network, origins)
    ds = destinations if isinstance(destinations, Snapped) else snap(network, destinations)
    oi, di, tt = travel_time_pairs(network, os_, ds, cutoff_s=cutoff_s, direction=direction)
    counts = np.bincount(oi, minlength=len(os_))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((tt, di, indptr), shape=(len(os_), len(ds)))


def components(
    network: Network,
    *,
    demand: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped | None = None,
    population: np.ndarray | None = None,
    facilities: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray | Snapped | None = None,
) -> ComponentReport:
    """Report the weakly connected pieces of a network and the population they strand.

    Demand points and facilities are joined to the piece of their nearest segment; population
    in a piece without any facility is *stranded* (it cannot reach care by road). Use
    ``build_network(..., connect_tolerance_m=...)`` to join pieces lying close together.
    """
    ncomp, labels = connected_components(network.graph, directed=True, connection="weak")
    sizes = np.bincount(labels, minlength=ncomp)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(ncomp, np.int64)
    rank[order] = np.arange(ncomp)
    labels = rank[labels]
    sizes = sizes[order]
    pop = np.zeros(ncomp)
    fac = np.zeros(ncomp, np.int64)
    if demand is not None:
        ds = demand if isinstance(demand, Snapped) else snap(network, demand)
        w = np.ones(len(ds)) if population is None else np.asarray(population, float)
        pop = np.bincount(labels[network.u[ds.segment]], weights=w, minlength=ncomp)
    if facilities is not None:
        fs = facilities if isinstance(facilities, Snapped) else snap(network, facilities)
        fac = np.bincount(labels[network.u[fs.segment]], minlength=ncomp)
    stranded = float(pop[fac == 0].sum())
    return ComponentReport(n_components=int(ncomp), node_label=labels, sizes=sizes,
                           population=pop, facilities=fac, stranded_population=stranded)


def _csr(rows: np.ndarray, cols: np.ndarray, forward: np.ndarray, backward: np.ndarray,
         n: int) -> sp.csr_matrix:
    """CSR matrix with entries ``(rows, cols) = forward`` and ``(cols, rows) = backward``.

    Infinite values are left out; parallel entries are kept (SciPy's COO route would sum them).
    """
    nnz = int(np.isfinite(forward).sum() + np.isfinite(backward).sum())
    index_type = np.int32 if max(n, nnz) < 2**31 - 1 else np.int64
    indptr = np.zeros(n + 1, index_type)
    indices = np.empty(nnz, index_type)
    data = np.empty(nnz)
    _fill_csr(rows, cols, forward, backward, indptr, indices, data)
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


@numba.njit(cache=True, nogil=True)
def _fill_csr(rows: np.ndarray, cols: np.ndarray, forward: np.ndarray, backward: np.ndarray,
              indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
    """Sort the finite entries of :func:`_csr` by row (a counting sort; ``indptr`` zeros)."""
    for s in range(len(rows)):
        if math.isfinite(forward[s]):
            indptr[rows[s] + 1] += 1
        if math.isfinite(backward[s]):
            indptr[cols[s] + 1] += 1
    for i in range(len(indptr) - 1):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    for s in range(len(rows)):
        if math.isfinite(forward[s]):
            indices[fill[rows[s]]] = cols[s]
            data[fill[rows[s]]] = forward[s]
            fill[rows[s]] += 1
        if math.isfinite(backward[s]):
            indices[fill[cols[s]]] = rows[s]
            data[fill[cols[s]]] = backward[s]
            fill[cols[s]] += 1


def _part(frac: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``frac * t`` with ``0 * inf = 0`` (a point on the vertex itself)."""
    with np.errstate(invalid="ignore"):
        return np.where(frac <= 0.0, 0.0, frac * t)


def _leave_costs(net: Network, s: Snapped) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from each point to the ``u`` and ``v`` ends of its segment."""
    tuv, tvu = net.time_uv[s.segment], net.time_vu[s.segment]
    return s.offroad_s + _part(s.frac, tvu), s.offroad_s + _part(1.0 - s.frac, tuv)


def _enter_costs(net: Network, s: Snapped) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from the ``u`` and ``v`` ends of each point's segment to the point."""
    tuv, tvu = net.time_uv[s.segment], net.time_vu[s.segment]
    return _part(s.frac, tuv) + s.offroad_s, _part(1.0 - s.frac, tvu) + s.offroad_s


def _join_costs(net: Network, dest: Snapped, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Costs joining destinations to their segment ends (enter forward, leave in reverse)."""
    return _leave_costs(net, dest) if reverse else _enter_costs(net, dest)


def _augmented(net: Network, src: Snapped,
               reverse: bool) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Graph with one virtual vertex per source (numbered from ``n_nodes``), edges to its ends."""
    base = net.graph_reversed if reverse else net.graph
    ca, cb = _enter_costs(net, src) if reverse else _leave_costs(net, src)
    k, n = len(src), net.n_nodes
    a, b = net.u[src.segment], net.v[src.segment]
    targets = np.stack([a, b], axis=1)
    costs = np.stack([ca, cb], axis=1)
    ok = np.isfinite(costs)
    counts = ok.sum(axis=1)
    indptr = np.concatenate([base.indptr, base.indptr[-1] + np.cumsum(counts)])
    indices = np.concatenate([base.indices, targets[ok].astype(base.indices.dtype)])
    data = np.concatenate([base.data, costs[ok]])
    graph = sp.csr_matrix((data, indices, indptr), shape=(n + k, n + k))
    return graph, ca, cb


def _same_segment(net: Network, origins: Snapped, dest: Snapped,
                  reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direct trips along a shared segment (origin, destination, seconds)."""
    by_segment = np.argsort(origins.segment, kind="stable")
    sorted_seg = origins.segment[by_segment]
    lo = np.searchsorted(sorted_seg, dest.segment, side="left")
    counts = np.searchsorted(sorted_seg, dest.segment, side="right") - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    di = np.repeat(np.arange(len(dest)), counts)
    oi = by_segment[np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)]
    seg = dest.segment[di]
    fo, fd = origins.frac[oi], dest.frac[di]
    start, end = (fd, fo) if reverse else (fo, fd)
    step = end - start
    with np.errstate(invalid="ignore"):
        along = np.where(step > 0, step * net.time_uv[seg],
                         np.where(step < 0, -step * net.time_vu[seg], 0.0))
    t = origins.offroad_s[oi] + dest.offroad_s[di] + along
    ok = np.isfinite(t)
    return oi[ok], di[ok], t[ok]


def _to_xy(coords: np.ndarray, src: pyproj.CRS, dst: pyproj.CRS) -> np.ndarray:
    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    x, y = tr.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def project_points(net: Network,
                   points: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray) -> np.ndarray:
    """Coordinates of points in the network's metric CRS, as an ``(n, 2)`` array.

    GeoDataFrames/GeoSeries are transformed from their CRS; arrays are taken as already in
    ``net.crs`` and only checked.
    """
    if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
        if points.crs is None:
            raise InputError.single("points have no CRS", code="no_crs")
        geoms = points.geometry.to_numpy() if isinstance(points, gpd.GeoDataFrame) \
            else points.to_numpy()
        lonlat = shapely.get_coordinates(geoms)
        if lonlat.shape[0] != len(points):
            raise InputError.single("every point must be a single point", field="geometry")
        return _to_xy(lonlat, pyproj.CRS.from_user_input(points.crs), net.crs)
    xy = np.asarray(points, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise InputError.single("points must be an (n, 2) array of finite coordinates")
    return xy


def _connectors(xy: np.ndarray, u: np.ndarray, v: np.ndarray,
                tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest vertex-to-vertex links (≤ tolerance) joining each piece to another one."""
    n = xy.shape[0]
    tree = cKDTree(xy)
    cu: list[np.ndarray] = []
    cv: list[np.ndarray] = []
    for _round in range(20):
        uu = np.concatenate([u, *cu]) if cu else u
        vv = np.concatenate([v, *cv]) if cv else v
        g = sp.coo_matrix((np.ones(len(uu)), (uu, vv)), shape=(n, n))
        ncomp, labels = connected_components(g, directed=False)
        if ncomp == 1:
            break
        giant = np.argmax(np.bincount(labels))
        small = np.flatnonzero(labels != giant)
        k = min(32, n)
        dist, idx = tree.query(xy[small], k=k, distance_upper_bound=tolerance)
        dist, idx = dist.reshape(len(small), k), idx.reshape(len(small), k)
        valid = np.isfinite(dist)
        other = np.where(valid, labels[np.minimum(idx, n - 1)], -1)
        valid &= other != labels[small][:, None]
        dist = np.where(valid, dist, np.inf)
        j = np.argmin(dist, axis=1)
        best = dist[np.arange(len(small)), j]
        has = np.isfinite(best)
        if not has.any():
            break
        frm, to, d = small[has], idx[np.arange(len(small)), j][has], best[has]
        comp = labels[frm]
        order = np.lexsort((d, comp))
        first = np.ones(len(order), bool)
        first[1:] = comp[order][1:] != comp[order][:-1]
        cu.append(frm[order][first])
        cv.append(to[order][first])
    if not cu:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    a, b = np.concatenate(cu), np.concatenate(cv)
    return a, b, np.hypot(*(xy[a] - xy[b]).T)
