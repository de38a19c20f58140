"""Road layers and speed tables.

Roads come from an OpenStreetMap extract (``.osm.pbf``/``.osm``, read with pyosmium) or from a
line layer (GeoJSON, GeoPackage, Shapefile) in any declared CRS. Either way they become a
:class:`RoadSegments` table: one row per straight piece between two consecutive vertices, with
the road class, the geodesic length in metres, the one-way flag and an optional explicit speed.
:func:`tiercare.planning.network.build_network` turns it into a routable graph.

Speeds by road class and travel mode are data (``data/road_speeds.csv``), versioned with an
effective date, covering OSM ``highway`` classes and the Chinese administrative road grades
(expressway, national 国道, provincial 省道, county 县道, township 乡道, village 村道). A class
without a speed for a mode is closed to that mode (e.g. footways for driving).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from tiercare.errors import InputError, Problem
from tiercare.planning.geo import WGS84

__all__ = ["MODES", "SpeedTable", "load_speed_table", "RoadSegments", "read_roads", "read_osm",
           "read_road_lines"]

MODES = ("driving", "walking", "cycling")
"""Travel modes known to the speed tables."""

_GEOD = pyproj.Geod(ellps="WGS84")
_OFFROAD = "offroad"
_TRUE = {"yes", "true", "1", "t", "y"}


@dataclass(frozen=True)
class SpeedTable:
    """Speeds (km/h) by road class and travel mode, one version of the rules.

    Attributes
    ----------
    version, effective_from:
        Which version of the table this is and the date it applies from.
    speeds:
        ``{(class, mode): km/h}`` with lower-case class names.
    aliases:
        ``{alias: class}``, lower-case (e.g. ``"国道" -> "national"``, ``"g" -> "national"``).
    """

    version: str
    effective_from: dt.date | None
    speeds: dict[tuple[str, str], float]
    aliases: dict[str, str]

    def canonical(self, road_class: str) -> str:
        """Return the table's name for ``road_class`` (resolving aliases, ignoring case)."""
        key = str(road_class).strip().lower()
        return self.aliases.get(key, key)

    def known(self, road_class: str) -> bool:
        """Whether the class appears in the table for any mode."""
        key = self.canonical(road_class)
        return any((key, m) in self.speeds for m in MODES)

    def speeds_for(self, classes: Iterable[str], mode: str) -> np.ndarray:
        """Speeds in km/h for each class in ``mode``; NaN where the class is closed or unknown.

        Examples
        --------
        >>> t = load_speed_table()
        >>> t.speeds_for(["primary", "footway", "县道"], "driving").tolist()
        [60.0, nan, 45.0]
        """
        _check_mode(mode)
        uniq, inv = np.unique(np.asarray(list(classes), dtype=object).astype(str),
                              return_inverse=True)
        vals = np.array([self.speeds.get((self.canonical(c), mode), np.nan) for c in uniq],
                        dtype=float)
        return vals[inv] if len(uniq) else np.zeros(0)

    def offroad_kmh(self, mode: str) -> float:
        """Speed of the off-road part (walking to and from the road); 5 km/h by default."""
        _check_mode(mode)
        return self.speeds.get((_OFFROAD, mode), self.speeds.get((_OFFROAD, "walking"), 5.0))


def load_speed_table(path: str | Path | None = None, *, on: dt.date | None = None) -> SpeedTable:
    """Load and validate a speed table CSV.

    Parameters
    ----------
    path:
        A CSV with columns ``class, speed_kmh`` and optionally ``mode`` (blank or absent: every
        mode), ``aliases`` (``|``-separated), ``version``, ``effective_from`` (ISO date),
        ``scheme``. Defaults to the packaged ``data/road_speeds.csv``.
    on:
        The date at which the rules apply (default today): of the versions whose
        ``effective_from`` is on or before it, the latest is used.

    Raises
    ------
    InputError
        Listing every bad row (missing class, unknown mode, non-positive speed, bad date).

    Examples
    --------
    >>> t = load_speed_table()
    >>> t.speeds[("national", "driving")], t.canonical("G"), t.offroad_kmh("driving")
    (70.0, 'national', 5.0)
    """
    if path is None:
        ref = resources.files("tiercare.planning").joinpath("data/road_speeds.csv")
        with resources.as_file(ref) as p:
            frame = pd.read_csv(p, dtype=str, keep_default_na=False)
        name = "road_speeds.csv"
    else:
        p = Path(path)
        if not p.exists():
            raise InputError.single(f"speed table not found: {p}", field="speeds")
        try:
            frame = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True,
                                encoding="utf-8-sig")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError.single(f"cannot read speed table {p.name}: {exc}") from exc
        name = p.name
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in ("class", "speed_kmh") if c not in frame.columns]
    if missing:
        raise InputError([Problem(reason=f"speed table {name} has no column '{c}'", field=c,
                                  code="missing_column") for c in missing])
    for col in ("mode", "aliases", "version", "effective_from"):
        if col not in frame.columns:
            frame[col] = ""
    problems: list[Problem] = []
    dates: list[dt.date | None] = []
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        if not str(row[frame.columns.get_loc("class")]).strip():
            problems.append(Problem(reason="class is missing", field="class", row=i))
        mode = str(row[frame.columns.get_loc("mode")]).strip().lower()
        if mode and mode not in MODES:
            problems.append(Problem(reason=f"unknown mode {mode!r} (use {', '.join(MODES)})",
                                    field="mode", row=i))
        try:
            speed = float(row[frame.columns.get_loc("speed_kmh")])
        except ValueError:
            speed = float("nan")
        if not np.isfinite(speed) or speed <= 0:
            problems.append(Problem(reason="speed must be a positive number of km/h",
                                    field="speed_kmh", row=i))
        text = str(row[frame.columns.get_loc("effective_from")]).strip()
        try:
            dates.append(dt.date.fromisoformat(text) if text else None)
        except ValueError:
            problems.append(Problem(reason=f"{text!r} is not an ISO date", field="effective_from",
                                    row=i))
            dates.append(None)
    if problems:
        raise InputError(problems)
    frame["_date"] = dates
    on = on or dt.date.today()
    valid = frame[frame["_date"].map(lambda d: d is None or d <= on)]
    if valid.empty:
        raise InputError.single(f"no version of {name} is in force on {on}",
                                field="effective_from")
    starts = [d for d in valid["_date"] if d is not None]
    latest = max(starts) if starts else None
    chosen = valid[valid["_date"].map(lambda d: d == latest)]
    speeds: dict[tuple[str, str], float] = {}
    aliases: dict[str, str] = {}
    for _, row in chosen.iterrows():
        cls = row["class"].strip().lower()
        mode = row["mode"].strip().lower()
        for m in ([mode] if mode else MODES):
            speeds[(cls, m)] = float(row["speed_kmh"])
        for alias in str(row["aliases"]).split("|"):
            if alias.strip():
                aliases[alias.strip().lower()] = cls
    version = ",".join(sorted({v for v in chosen["version"] if v})) or name
    return SpeedTable(version=version, effective_from=latest, speeds=speeds, aliases=aliases)


@dataclass(frozen=True)
class RoadSegments:
    """Road network as straight segments between vertices (the input of ``build_network``).

    Attributes
    ----------
    node_lonlat:
        ``(n_nodes, 2)`` WGS84 longitude/latitude of every vertex.
    u, v:
        ``(n_segments,)`` start and end vertex of each segment (digitising direction).
    length_m:
        Geodesic length of each segment in metres.
    road_class:
        Class of the road each segment belongs to (``""`` when the layer has none).
    oneway:
        ``1`` one-way in the ``u → v`` direction, ``-1`` one-way ``v → u``, ``0`` both ways.
    speed_kmh:
        Explicit speed from the layer's speed attribute (NaN when absent): it overrides the table.
    maxspeed_kmh:
        Legal maximum (OSM ``maxspeed``), NaN when absent; caps driving speeds.
    source_row:
        1-based feature row (line layers) or OSM way id the segment came from, for messages.
    """

    node_lonlat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length_m: np.ndarray
    road_class: np.ndarray
    oneway: np.ndarray
    speed_kmh: np.ndarray
    maxspeed_kmh: np.ndarray
    source_row: np.ndarray

    @property
    def n_segments(self) -> int:
        """Number of segments."""
        return int(self.u.shape[0])

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """The segments as a WGS84 GeoDataFrame of two-point lines (for maps and exports)."""
        coords = np.stack([self.node_lonlat[self.u], self.node_lonlat[self.v]], axis=1)
        return gpd.GeoDataFrame(
            {"road_class": self.road_class, "oneway": self.oneway, "length_m": self.length_m,
             "speed_kmh": self.speed_kmh},
            geometry=shapely.linestrings(coords), crs=WGS84)


def read_roads(
    path: str | Path,
    *,
    class_field: str | None = None,
    speed_field: str | None = None,
    oneway_field: str | None = None,
) -> RoadSegments:
    """Read roads from an OSM extract or a line layer (dispatching on the file suffix).

    Parameters
    ----------
    path:
        ``.osm.pbf``/``.osm`` (OSM ``highway`` ways) or ``.geojson``/``.json``/``.gpkg``/``.shp``.
    class_field, speed_field, oneway_field:
        Attributes of a line layer holding the road class, the speed (km/h) and the one-way flag
        (``yes/true/1`` forward, ``-1`` reverse). Ignored for OSM, which uses ``highway``,
        ``oneway``, ``junction`` and ``maxspeed``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError.single(f"roads file not found: {p}", field="roads", code="not_found")
    name = p.name.lower()
    if name.endswith((".pbf", ".osm", ".osm.bz2", ".osm.gz")):
        return read_osm(p)
    return read_road_lines(p, class_field=class_field, speed_field=speed_field,
                           oneway_field=oneway_field)


def read_osm(path: str | Path, *, classes: Iterable[str] | None = None) -> RoadSegments:
    """Read the ``highway`` ways of an OSM file with pyosmium.

    Parameters
    ----------
    path:
        An ``.osm.pbf`` (or ``.osm``) file.
    classes:
        ``highway`` values to keep; default: every OSM class of the packaged speed table
        (so ``proposed``, ``construction``, ``platform`` ... are left out).

    Notes
    -----
    Ways tagged ``area=yes`` or ``access=no|private`` are skipped. ``oneway=yes|true|1`` and
    ``junction=roundabout`` (and ``highway=motorway``) are one-way forward, ``oneway=-1`` reverse.

    Examples
    --------
    >>> from pathlib import Path
    >>> p = Path(__file__).resolve().parents[3] / "shared/data/osm/andorra.osm.pbf"
    >>> roads = read_osm(p) if p.exists() else None
    >>> roads is None or roads.n_segments > 10_000
    True
    """
    import osmium

    if classes is None:
        table = load_speed_table()
        classes = {c for (c, _m) in table.speeds if c != _OFFROAD}
    keep = set(classes)
    refs: list[np.ndarray] = []
    lonlat: list[np.ndarray] = []
    way_class: list[str] = []
    way_oneway: list[int] = []
    way_max: list[float] = []
    way_ids: list[int] = []
    fp = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    fp = fp.with_filter(osmium.filter.KeyFilter("highway"))
    try:
        for way in fp:
            if not way.is_way():
                continue
            tags = way.tags
            hw = tags.get("highway")
            if hw not in keep or tags.get("area") == "yes":
                continue
            if tags.get("access") in ("no", "private"):
                continue
            nodes = way.nodes
            if len(nodes) < 2:
                continue
            try:
                pts = np.array([(n.lon, n.lat) for n in nodes], dtype=float)
            except osmium.InvalidLocationError:
                continue
            refs.append(np.array([n.ref for n in nodes], dtype=np.int64))
            lonlat.append(pts)
            ow = tags.get("oneway", "")
            flag = 1 if (ow in _TRUE or tags.get("junction") == "roundabout"
                         or (hw == "motorway" and ow != "no")) else 0
            way_oneway.append(-1 if ow == "-1" else flag)
            way_class.append(hw)
            way_max.append(_parse_maxspeed(tags.get("maxspeed")))
            way_ids.append(way.id)
    except RuntimeError as exc:
        raise InputError.single(f"cannot read OSM file {Path(path).name}: {exc}",
                                field="roads") from exc
    if not refs:
        raise InputError.single(f"no roads in {Path(path).name}", field="roads", code="empty")
    all_refs = np.concatenate(refs)
    all_pts = np.concatenate(lonlat)
    node_ids, first, inverse = np.unique(all_refs, return_index=True, return_inverse=True)
    counts = np.array([len(r) for r in refs])
    return _segments_from_vertices(all_pts[first], inverse, counts, np.array(way_class, object),
                                   np.array(way_oneway, np.int8), np.full(len(refs), np.nan),
                                   np.array(way_max), np.array(way_ids, np.int64))


def read_road_lines(
    path: str | Path,
    *,
    class_field: str | None = None,
    speed_field: str | None = None,
    oneway_field: str | None = None,
) -> RoadSegments:
    """Read a line layer (GeoJSON, GeoPackage, Shapefile) in any declared CRS.

    Lines are joined where they share a vertex (coordinates equal to about 1 cm) and where a
    line ends on another one (T-junction); lines that only cross (bridges, tunnels) stay apart.
    Multi-lines are split into their parts.

    Raises
    ------
    InputError
        No CRS, missing attribute, non-line geometries, non-numeric or non-positive speeds —
        every bad row is listed.
    """
    p = Path(path)
    try:
        gdf = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError.single(f"cannot read roads file {p.name}: {exc}", field="roads") from exc
    if gdf.crs is None:
        raise InputError.single(f"roads file {p.name} declares no CRS", field="roads",
                                code="no_crs")
    problems: list[Problem] = []
    for f in (class_field, speed_field, oneway_field):
        if f is not None and f not in gdf.columns:
            problems.append(Problem(reason=f"roads file {p.name} has no attribute '{f}'",
                                    field=f, code="missing_column"))
    if problems:
        raise InputError(problems)
    gdf = gdf.reset_index(drop=True)
    gdf["_row"] = np.arange(1, len(gdf) + 1)
    types = shapely.get_type_id(gdf.geometry.to_numpy())
    for row in np.flatnonzero(~np.isin(types, (1, 5))):
        problems.append(Problem(reason="geometry is not a line", field="geometry",
                                row=int(row) + 1, code="not_line"))
    speed = np.full(len(gdf), np.nan)
    if speed_field is not None:
        raw = gdf[speed_field]
        speed = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for row in np.flatnonzero(~(speed > 0)):
            problems.append(Problem(reason=f"speed {raw.iloc[row]!r} is not a positive number",
                                    field=speed_field, row=int(row) + 1, code="bad_speed"))
    if problems:
        raise InputError(problems)
    src_crs = gdf.crs
    gdf = gdf.explode(index_parts=False).reset_index(drop=True)
    gdf = gdf[~gdf.geometry.is_empty]
    classes = (gdf[class_field].astype(str).str.strip().to_numpy(dtype=object)
               if class_field else np.full(len(gdf), "", dtype=object))
    oneway = np.zeros(len(gdf), np.int8)
    if oneway_field is not None:
        text = gdf[oneway_field].astype(str).str.strip().str.lower()
        oneway = np.where(text.isin(_TRUE), 1, np.where(text == "-1", -1, 0)).astype(np.int8)
    rows = gdf["_row"].to_numpy(dtype=np.int64)
    speeds = speed[rows - 1]
    coords, line_idx = shapely.get_coordinates(gdf.geometry.to_numpy(), return_index=True)
    counts = np.bincount(line_idx, minlength=len(gdf))
    tol = 1e-7 if src_crs.is_geographic else 0.01  # about 1 cm
    key = np.round(coords / tol).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    node_src = coords[first]
    x, y = pyproj.Transformer.from_crs(src_crs, WGS84, always_xy=True).transform(
        node_src[:, 0], node_src[:, 1])
    segs = _segments_from_vertices(np.column_stack([x, y]), inverse, counts, classes, oneway,
                                   speeds, np.full(len(gdf), np.nan), rows)
    ends = np.unique(np.concatenate([inverse[np.concatenate([[0], np.cumsum(counts)[:-1]])],
                                     inverse[np.cumsum(counts) - 1]]))
    return _split_at_t_junctions(segs, ends, node_src, tol)


def _split_at_t_junctions(segs: RoadSegments, ends: np.ndarray, node_src: np.ndarray,
                          tol: float) -> RoadSegments:
    """Split segments whose interior holds another line's end vertex (within ``tol``).

    The test runs in the layer's own CRS (``node_src``), where its lines are straight.

    Digitised road layers often end a side road on the middle of a main road without a shared
    vertex; such T-junctions are joined. Lines that cross in both interiors (bridges, tunnels)
    are left apart.
    """
    if segs.n_segments == 0 or len(ends) == 0:
        return segs
    ll, src = segs.node_lonlat, node_src
    lines = shapely.linestrings(np.stack([src[segs.u], src[segs.v]], axis=1))
    tree = shapely.STRtree(lines)
    pt_idx, seg_idx = tree.query(shapely.points(src[ends]), predicate="dwithin", distance=tol)
    node = ends[pt_idx]
    inner = (node != segs.u[seg_idx]) & (node != segs.v[seg_idx])
    node, seg_idx = node[inner], seg_idx[inner]
    if len(node) == 0:
        return segs
    a, b = src[segs.u[seg_idx]], src[segs.v[seg_idx]]
    ab = b - a
    frac = np.einsum("ij,ij->i", src[node] - a, ab) / np.einsum("ij,ij->i", ab, ab)
    order = np.lexsort((frac, seg_idx))
    node, seg_idx = node[order], seg_idx[order]
    split = np.unique(seg_idx)
    keep = np.ones(segs.n_segments, bool)
    keep[split] = False
    new_u, new_v, new_from = [segs.u[keep]], [segs.v[keep]], [np.flatnonzero(keep)]
    starts = np.searchsorted(seg_idx, split)
    stops = np.append(starts[1:], len(seg_idx))
    for e, lo, hi in zip(split, starts, stops, strict=True):
        chain = np.concatenate([[segs.u[e]], node[lo:hi], [segs.v[e]]])
        new_u.append(chain[:-1])
        new_v.append(chain[1:])
        new_from.append(np.full(len(chain) - 1, e))
    u, v, src = np.concatenate(new_u), np.concatenate(new_v), np.concatenate(new_from)
    ok = u != v
    u, v, src = u[ok], v[ok], src[ok]
    pa, pb = ll[u], ll[v]
    _, _, length = _GEOD.inv(pa[:, 0], pa[:, 1], pb[:, 0], pb[:, 1])
    return RoadSegments(node_lonlat=ll, u=u, v=v, length_m=np.asarray(length, dtype=float),
                        road_class=segs.road_class[src], oneway=segs.oneway[src],
                        speed_kmh=segs.speed_kmh[src], maxspeed_kmh=segs.maxspeed_kmh[src],
                        source_row=segs.source_row[src])


def _segments_from_vertices(
    node_lonlat: np.ndarray, vertex_node: np.ndarray, counts: np.ndarray, line_class: np.ndarray,
    line_oneway: np.ndarray, line_speed: np.ndarray, line_max: np.ndarray, line_source: np.ndarray,
) -> RoadSegments:
    """Cut polylines (vertices concatenated, ``counts`` per line) into consecutive segments."""
    line_of_vertex = np.repeat(np.arange(len(counts)), counts)
    same_line = line_of_vertex[:-1] == line_of_vertex[1:]
    u = vertex_node[:-1][same_line]
    v = vertex_node[1:][same_line]
    line = line_of_vertex[:-1][same_line]
    keep = u != v
    u, v, line = u[keep], v[keep], line[keep]
    a, b = node_lonlat[u], node_lonlat[v]
    _, _, length = _GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    return RoadSegments(
        node_lonlat=node_lonlat, u=u.astype(np.int64), v=v.astype(np.int64),
        length_m=np.asarray(length, dtype=float), road_class=line_class[line],
        oneway=line_oneway[line], speed_kmh=line_speed[line], maxspeed_kmh=line_max[line],
        source_row=line_source[line])


def _parse_maxspeed(text: str | None) -> float:
    if not text:
        return float("nan")
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh)?\s*$", text)
    if not m:
        return float("nan")
    value = float(m.group(1))
    return value * 1.609344 if m.group(2) == "mph" else value


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError.single(f"unknown mode {mode!r} (use {', '.join(MODES)})", field="mode")
