"""Reading point layers (facilities, demand) and choosing a metric CRS.

Every planning input enters through :func:`read_points`, which returns WGS84 (EPSG:4326)
points indexed by string ids and refuses bad rows with an :class:`~tiercare.errors.InputError`
naming every offending row and field. Computations then run in the metric CRS returned by
:func:`metric_crs_for` (the UTM zone of the data's centre).

Datum policy (GCJ-02)
---------------------
Chinese web maps publish coordinates in GCJ-02, an obfuscated datum offset from WGS84 by a few
hundred metres. The offset cannot be recognised from the numbers themselves, so TierCare does
not guess: coordinates are taken as WGS84 (or as the file's declared CRS) unless the caller
declares ``datum="gcj02"``, in which case the file is refused with a message asking for WGS84
coordinates. A file whose declared CRS names GCJ-02 or BD-09 is refused as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from tiercare.errors import InputError, Problem

__all__ = ["read_points", "read_population_points", "metric_crs_for", "WGS84"]

WGS84 = pyproj.CRS.from_epsg(4326)
"""The CRS of every layer at TierCare's edges."""

_VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip"}
RASTER_SUFFIXES = (".tif", ".tiff")
_CHINESE_OBFUSCATED = ("gcj", "bd-09", "bd09", "baidu")


def read_points(
    path: str | Path,
    *,
    id_field: str = "id",
    lon_field: str = "lon",
    lat_field: str = "lat",
    value_fields: Sequence[str] = (),
    kind: str = "facilities",
    datum: Literal["wgs84", "gcj02"] = "wgs84",
) -> gpd.GeoDataFrame:
    """Read a point layer (CSV, GeoJSON, GeoPackage or Shapefile) into WGS84.

    Parameters
    ----------
    path:
        ``.csv`` with columns ``id_field, lon_field, lat_field`` (WGS84 degrees), or a vector file
        (``.geojson``/``.json``, ``.gpkg``, ``.shp``) of Point features in any CRS that the file
        declares; the ids come from the attribute ``id_field``.
    id_field, lon_field, lat_field:
        Column names. ``lon_field``/``lat_field`` apply to CSV only.
    value_fields:
        Columns that must be present, numeric, finite and non-negative (e.g. ``population``,
        ``capacity``); they are returned as floats.
    kind:
        What the layer is (``"facilities"``, ``"demand"`` ...), used in error messages only.
    datum:
        The datum of the coordinates. ``"gcj02"`` is refused (see the module notes): convert to
        WGS84 before importing.

    Returns
    -------
    geopandas.GeoDataFrame
        Points in EPSG:4326, indexed by the ids as strings (index name ``"id"``), keeping the
        other attribute columns.

    Raises
    ------
    InputError
        With one problem per bad row/field: missing, blank or duplicate ids; missing,
        non-numeric or out-of-range coordinates; non-point geometries; bad value fields; a file
        without CRS or in an obfuscated Chinese datum.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "f.csv")
    >>> _ = open(p, "w").write("id,lon,lat,capacity\\nA,113.1,37.9,20\\nB,113.2,37.8,5\\n")
    >>> gdf = read_points(p, value_fields=["capacity"])
    >>> list(gdf.index), float(gdf.loc["B", "capacity"]), gdf.crs.to_epsg()
    (['A', 'B'], 5.0, 4326)
    """
    path = Path(path)
    if datum == "gcj02":
        raise InputError.single(
            f"{kind} file {path.name} is declared GCJ-02; TierCare needs WGS84 coordinates "
            "(convert them first, e.g. with the map provider's conversion tool)",
            code="gcj02_refused",
        )
    if datum != "wgs84":
        raise InputError.single(f"unknown datum {datum!r} (use 'wgs84')", field="datum")
    if not path.exists():
        raise InputError.single(f"{kind} file not found: {path}", code="not_found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame, lon, lat, problems = _read_csv(path, id_field, lon_field, lat_field, kind)
    elif suffix in _VECTOR_SUFFIXES:
        frame, lon, lat, problems = _read_vector(path, id_field, kind)
    else:
        raise InputError.single(
            f"unsupported {kind} file type '{suffix}' (use .csv, .geojson, .gpkg or .shp)",
            code="unsupported_format",
        )
    problems += _check_ids(frame, id_field)
    problems += _check_coordinates(lon, lat, lon_field, lat_field)
    values: dict[str, np.ndarray] = {}
    for name in value_fields:
        vals, more = _numeric_column(frame, name, kind)
        problems += more
        values[name] = vals
    if problems:
        raise InputError(problems)
    ids = frame[id_field].astype(str).str.strip()
    out = frame.drop(columns=[c for c in (id_field, lon_field, lat_field, "geometry")
                              if c in frame.columns])
    for name, vals in values.items():
        out[name] = vals
    out.index = pd.Index(ids.to_numpy(), name="id")
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(lon, lat), crs=WGS84)


def metric_crs_for(
    gdf_or_bounds: gpd.GeoDataFrame | gpd.GeoSeries | Sequence[float],
) -> pyproj.CRS:
    """Return the UTM CRS (WGS84 datum) of the zone holding the centre of the data.

    Parameters
    ----------
    gdf_or_bounds:
        A GeoDataFrame/GeoSeries with a CRS, or ``(min_lon, min_lat, max_lon, max_lat)`` in
        WGS84 degrees.

    Returns
    -------
    pyproj.CRS
        ``EPSG:326zz`` north of the equator, ``EPSG:327zz`` south of it, with
        ``zz = floor((lon + 180) / 6) + 1``.

    Examples
    --------
    >>> metric_crs_for((113.0, 37.7, 113.4, 38.1)).to_epsg()  # Shouyang county
    32649
    >>> metric_crs_for((24.9, 60.1, 25.0, 60.2)).to_epsg()  # Helsinki
    32635
    """
    if isinstance(gdf_or_bounds, gpd.GeoDataFrame | gpd.GeoSeries):
        if gdf_or_bounds.crs is None:
            raise InputError.single("layer has no CRS", code="no_crs")
        bounds = gdf_or_bounds.to_crs(WGS84).total_bounds
    else:
        bounds = np.asarray(gdf_or_bounds, dtype=float)
    if bounds.shape != (4,) or not np.all(np.isfinite(bounds)):
        raise InputError.single("bounds must be four finite numbers", field="bounds")
    lon = (bounds[0] + bounds[2]) / 2.0
    lat = (bounds[1] + bounds[3]) / 2.0
    zone = min(int(math.floor((lon + 180.0) / 6.0)) + 1, 60)
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _read_csv(
    path: Path, id_field: str, lon_field: str, lat_field: str, kind: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[Problem]]:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError.single(f"cannot read {kind} CSV {path.name}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (id_field, lon_field, lat_field) if c not in frame.columns]
    if missing:
        raise InputError([Problem(reason=f"{kind} CSV {path.name} has no column '{c}'", field=c,
                                  code="missing_column") for c in missing])
    problems: list[Problem] = []
    coords = []
    for name in (lon_field, lat_field):
        text = frame[name].str.strip()
        vals = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        for row in np.flatnonzero(~np.isfinite(vals)):
            problems.append(Problem(reason=f"coordinate {text.iloc[row]!r} is not a number",
                                    field=name, row=int(row) + 1, code="not_numeric"))
        coords.append(vals)
    return frame, coords[0], coords[1], problems


def _read_vector(
    path: Path, id_field: str, kind: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[Problem]]:
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError.single(f"cannot read {kind} file {path.name}: {exc}") from exc
    if gdf.crs is None:
        raise InputError.single(f"{kind} file {path.name} declares no CRS", code="no_crs")
    crs_text = (gdf.crs.name + " " + gdf.crs.to_wkt()).lower()
    if any(tag in crs_text for tag in _CHINESE_OBFUSCATED):
        raise InputError.single(f"{kind} file {path.name} is in an obfuscated Chinese datum "
                                f"({gdf.crs.name}); convert to WGS84 first", code="gcj02_refused")
    if id_field not in gdf.columns:
        raise InputError.single(f"{kind} file {path.name} has no attribute '{id_field}'",
                                field=id_field, code="missing_column")
    problems: list[Problem] = []
    geoms = gdf.geometry.to_numpy()
    types = shapely.get_type_id(geoms)
    single_multi = (types == 4) & (shapely.get_num_geometries(geoms) == 1)
    geoms = np.where(single_multi, shapely.get_geometry(geoms, 0), geoms)
    ok = shapely.get_type_id(geoms) == 0
    ok &= ~shapely.is_empty(geoms)
    for row in np.flatnonzero(~ok):
        problems.append(Problem(reason="geometry is not a single point", field="geometry",
                                row=int(row) + 1, code="not_point"))
    pts = gpd.GeoSeries(np.where(ok, geoms, shapely.Point(0.0, 0.0)), crs=gdf.crs).to_crs(WGS84)
    lon = np.where(ok, shapely.get_x(pts.to_numpy()), 0.0)
    lat = np.where(ok, shapely.get_y(pts.to_numpy()), 0.0)
    return pd.DataFrame(gdf.drop(columns="geometry")), lon, lat, problems


def _check_ids(frame: pd.DataFrame, id_field: str) -> list[Problem]:
    problems: list[Problem] = []
    ids = frame[id_field]
    text = ids.astype(str).str.strip()
    blank = ids.isna().to_numpy() | (text == "").to_numpy() | (text == "nan").to_numpy()
    for row in np.flatnonzero(blank):
        problems.append(Problem(reason="id is missing", field=id_field, row=int(row) + 1,
                                code="missing_id"))
    dup = text.duplicated(keep="first").to_numpy() & ~blank
    first_row = {v: i + 1 for i, v in reversed(list(enumerate(text)))}
    for row in np.flatnonzero(dup):
        problems.append(Problem(
            reason=f"duplicate id {text.iloc[row]!r} (first on row {first_row[text.iloc[row]]})",
            field=id_field, row=int(row) + 1, code="duplicate_id"))
    return problems


def _check_coordinates(lon: np.ndarray, lat: np.ndarray, lon_field: str,
                       lat_field: str) -> list[Problem]:
    problems: list[Problem] = []
    for vals, name, limit in ((lon, lon_field, 180.0), (lat, lat_field, 90.0)):
        bad = np.isfinite(vals) & (np.abs(vals) > limit)
        for row in np.flatnonzero(bad):
            problems.append(Problem(reason=f"{vals[row]} is outside [-{limit:g}, {limit:g}]",
                                    field=name, row=int(row) + 1, code="out_of_range"))
    return problems


def _numeric_column(frame: pd.DataFrame, name: str, kind: str) -> tuple[np.ndarray, list[Problem]]:
    if name not in frame.columns:
        return np.zeros(len(frame)), [Problem(reason=f"{kind} has no column '{name}'",
                                              field=name, code="missing_column")]
    raw = frame[name]
    text = raw.astype(str).str.strip() if raw.dtype == object else raw
    vals = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    problems = [Problem(reason=f"{raw.iloc[r]!r} is not a non-negative number", field=name,
                        row=int(r) + 1, code="not_numeric")
                for r in np.flatnonzero(~np.isfinite(vals) | (vals < 0))]
    return np.where(np.isfinite(vals), vals, 0.0), problems


def read_population_points(path: str | Path, *, field: str = "population") -> gpd.GeoDataFrame:
    """Turn a population raster (GeoTIFF such as WorldPop) into demand points.

    Every cell with people becomes one point at the cell centre, in WGS84, with its count in
    ``field``; cells with no data or 0 people are left out. Ids are ``r<row>c<col>`` of the
    raster, so results can be written back onto the grid.

    Raises
    ------
    InputError
        Missing or unreadable file, no CRS, negative counts, or no populated cell.
    """
    import rasterio
    import rasterio.transform
    from rasterio.errors import RasterioIOError

    path = Path(path)
    if not path.exists():
        raise InputError.single(f"demand file not found: {path}", field="demand",
                                code="not_found")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError.single(f"population raster {path.name} declares no CRS",
                                        field="demand", code="no_crs")
            band = src.read(1, masked=True)
            transform, crs = src.transform, src.crs
    except RasterioIOError as exc:
        raise InputError.single(f"cannot read population raster {path.name}: {exc}",
                                field="demand") from exc
    values = np.ma.filled(band.astype(np.float64), 0.0)
    values[~np.isfinite(values)] = 0.0
    negative = int((values < 0).sum())
    if negative:
        raise InputError.single(f"population raster {path.name} has {negative} negative cells",
                                field="demand", code="negative")
    rows, cols = np.nonzero(values > 0)
    if rows.size == 0:
        raise InputError.single(f"population raster {path.name} has no populated cell",
                                field="demand", code="no_rows")
    xs, ys = rasterio.transform.xy(transform, rows, cols, offset="center")
    to_wgs84 = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    lon, lat = to_wgs84.transform(np.asarray(xs, float), np.asarray(ys, float))
    ids = pd.Index([f"r{r}c{c}" for r, c in zip(rows.tolist(), cols.tolist(), strict=True)],
                   name="id")
    return gpd.GeoDataFrame({field: values[rows, cols]}, index=ids,
                            geometry=gpd.points_from_xy(lon, lat), crs=WGS84)
