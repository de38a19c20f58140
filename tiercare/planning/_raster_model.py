"""Inputs of the raster model (private; the public names are re-exported by ``raster``).

The AccessMod scenario table, the slope models of walking and cycling, and the
:class:`Landscape`: land cover with roads burned over it, barriers, and a DEM on its grid.
See :mod:`tiercare.planning.raster` for the model as a whole.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.transform
import rasterio.warp
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling

from tiercare.errors import InputError, Problem
from tiercare.planning import _raster_engine as _engine

EXAMPLE_SCENARIO = Path(__file__).parent / "data" / "accessmod_scenario_example.csv"
"""A scenario template in AccessMod's format (land-cover classes 1-6, road classes 1001-1007)."""

_MAX_CELLS = 2**31 - 1
_NO_ROAD = -1


# --------------------------------------------------------------------------------------------
# Scenario table
# --------------------------------------------------------------------------------------------


class TravelMode(StrEnum):
    """AccessMod travel modes."""

    WALKING = "WALKING"
    BICYCLING = "BICYCLING"
    MOTORIZED = "MOTORIZED"


_MODE_CODE = {
    TravelMode.MOTORIZED: _engine.MODE_MOTORIZED,
    TravelMode.WALKING: _engine.MODE_WALKING,
    TravelMode.BICYCLING: _engine.MODE_BICYCLING,
}


@dataclass(frozen=True)
class ScenarioClass:
    """One row of the scenario table.

    Attributes
    ----------
    code:
        Class code as it appears in the land-cover raster or the roads' class field.
    label:
        Free text (e.g. ``"Primary road"``).
    speed_kmh:
        Speed on the flat in km/h; ``0`` makes the class impassable.
    mode:
        How the class is travelled (decides the slope correction).
    """

    code: int
    label: str
    speed_kmh: float
    mode: TravelMode


@dataclass(frozen=True)
class Scenario:
    """An AccessMod travel scenario: speed and mode of every land-cover and road class.

    Examples
    --------
    >>> import pandas as pd
    >>> s = Scenario.from_frame(pd.DataFrame(
    ...     {"class": ["1", "1001"], "label": ["Grass", "Track"], "speed": ["4", "20"],
    ...      "mode": ["WALKING", "MOTORIZED"]}))
    >>> s.get(1001).speed_kmh, s.get(1).mode
    (20.0, <TravelMode.WALKING: 'WALKING'>)
    """

    classes: tuple[ScenarioClass, ...]
    _by_code: dict[int, ScenarioClass] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {c.code: c for c in self.classes})

    def get(self, code: int) -> ScenarioClass:
        """Return the row of ``code`` (``KeyError`` if absent)."""
        return self._by_code[code]

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    @property
    def codes(self) -> np.ndarray:
        """The class codes as an int64 array, in table order."""
        return np.array([c.code for c in self.classes], dtype=np.int64)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str = "scenario") -> Scenario:
        """Validate a table with columns ``class, label, speed, mode`` (``label`` optional).

        Every bad cell is reported (row numbers are 1-based data rows): a class that is not an
        integer or is repeated, a speed that is not a number >= 0, a mode other than
        ``WALKING``, ``BICYCLING`` or ``MOTORIZED`` (case-insensitive).
        """
        frame = frame.rename(columns=lambda c: str(c).strip().lower())
        missing = [c for c in ("class", "speed", "mode") if c not in frame.columns]
        if missing:
            raise InputError([Problem(reason=f"{source} has no column '{c}'", field=c,
                                      code="missing_column") for c in missing])
        if len(frame) == 0:
            raise InputError.single(f"{source} has no rows", code="empty")
        problems: list[Problem] = []
        rows: list[ScenarioClass] = []
        first_row: dict[int, int] = {}
        labels = frame["label"] if "label" in frame.columns else pd.Series([""] * len(frame))
        for i, (raw_class, raw_speed, raw_mode, raw_label) in enumerate(
                zip(frame["class"], frame["speed"], frame["mode"], labels, strict=True)):
            row = i + 1
            code = _parse_int(raw_class)
            if code is None:
                problems.append(Problem(reason=f"class {raw_class!r} is not an integer",
                                        field="class", row=row, code="not_integer"))
            elif code in first_row:
                problems.append(Problem(reason=f"class {code} is repeated (first on row "
                                        f"{first_row[code]})", field="class", row=row,
                                        code="duplicate"))
            else:
                first_row[code] = row
            speed = _parse_float(raw_speed)
            if speed is None or speed < 0:
                problems.append(Problem(reason=f"speed {raw_speed!r} is not a number >= 0 "
                                        "(km/h; 0 makes the class impassable)",
                                        field="speed", row=row, code="bad_speed"))
            mode_text = str(raw_mode).strip().upper()
            if mode_text not in TravelMode.__members__:
                problems.append(Problem(reason=f"mode {raw_mode!r} is not one of WALKING, "
                                        "BICYCLING, MOTORIZED", field="mode", row=row,
                                        code="bad_mode"))
            if not problems:
                label = "" if pd.isna(raw_label) else str(raw_label).strip()
                rows.append(ScenarioClass(code=int(code), label=label,  # type: ignore[arg-type]
                                          speed_kmh=float(speed),  # type: ignore[arg-type]
                                          mode=TravelMode(mode_text)))
        if problems:
            raise InputError(problems)
        return cls(tuple(rows))

    def lookup(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Speed (km/h, float64) and mode code (int8) of each cell of ``classes``.

        Codes absent from the table (e.g. the nodata marker ``-1``) get speed 0.
        """
        codes = self.codes
        order = np.argsort(codes)
        sorted_codes = codes[order]
        speeds = np.array([c.speed_kmh for c in self.classes], dtype=np.float64)[order]
        modes = np.array([_MODE_CODE[c.mode] for c in self.classes], dtype=np.int8)[order]
        idx = np.clip(np.searchsorted(sorted_codes, classes), 0, len(codes) - 1)
        known = sorted_codes[idx] == classes
        return np.where(known, speeds[idx], 0.0), np.where(known, modes[idx], 0).astype(np.int8)


def read_scenario(path: str | Path) -> Scenario:
    """Read an AccessMod scenario table (CSV ``class,label,speed,mode``).

    The package ships a template, :data:`EXAMPLE_SCENARIO`: AccessMod's example land-cover
    speeds for walking (km/h) and the Chinese road grades (expressway to village road) driven.

    Examples
    --------
    >>> s = read_scenario(EXAMPLE_SCENARIO)
    >>> s.get(1004).label, s.get(1004).speed_kmh, s.get(6).speed_kmh
    ('County road (县道)', 40.0, 0.0)

    Raises
    ------
    InputError
        Unreadable file or any bad row (see :meth:`Scenario.from_frame`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError.single(f"scenario file not found: {path}", field="scenario",
                                code="not_found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError.single(f"cannot read scenario CSV {path.name}: {exc}",
                                field="scenario") from exc
    return Scenario.from_frame(frame, source=f"scenario {path.name}")


def _parse_int(value: object) -> int | None:
    number = _parse_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _parse_float(value: object) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Slope models
# --------------------------------------------------------------------------------------------


def walking_speed_factor(slope: np.ndarray | float) -> np.ndarray:
    """Tobler's hiking function relative to the flat: ``tobler(s) / tobler(0)``.

    ``s`` is the rise over the run in the direction of travel (``0.1`` = 10 % uphill).

    Examples
    --------
    >>> [round(float(f), 3) for f in walking_speed_factor(np.array([-0.05, 0.0, 0.1]))]
    [1.191, 1.0, 0.705]
    """
    s = np.asarray(slope, dtype=np.float64)
    return np.exp(-3.5 * (np.abs(s + 0.05) - 0.05))


@dataclass(frozen=True)
class BicycleModel:
    """Constant-power cycling on a slope.

    The rider produces the power needed for the flat speed ``v0`` of the class,
    ``P = v0 (m g Crr + rho CdA v0^2 / 2)``; on a slope of angle ``theta`` the speed ``v``
    solves ``rho CdA v^3 / 2 + m g (sin theta + Crr cos theta) v = P`` (one positive root,
    found in closed form), capped at ``max_downhill_factor * v0``.

    Attributes
    ----------
    mass_kg:
        Rider plus bicycle.
    rolling_resistance:
        Coefficient of rolling resistance ``Crr`` (0.008: mixed asphalt and gravel).
    drag_area_m2:
        ``CdA`` of an upright rider.
    air_density:
        ``rho`` in kg/m^3.
    max_downhill_factor:
        Cap on the downhill speed relative to the flat (AccessMod uses 2).

    Examples
    --------
    >>> m = BicycleModel()
    >>> round(m.speed_kmh(12.0, 0.0), 6)
    12.0
    >>> m.speed_kmh(12.0, 0.05) < 12.0 < m.speed_kmh(12.0, -0.05) <= 24.0
    True
    """

    mass_kg: float = 90.0
    rolling_resistance: float = 0.008
    drag_area_m2: float = 0.5
    air_density: float = 1.2
    max_downhill_factor: float = 2.0

    def parameters(self) -> np.ndarray:
        """The parameters in the order the compiled kernel expects."""
        return np.array([self.mass_kg, self.rolling_resistance, self.drag_area_m2,
                         self.air_density, self.max_downhill_factor], dtype=np.float64)

    def speed_kmh(self, flat_speed_kmh: float, slope: float) -> float:
        """Speed (km/h) on ``slope`` (rise over run) for a flat speed of ``flat_speed_kmh``."""
        p = self.parameters()
        v = _engine.bicycle_speed(flat_speed_kmh / 3.6, float(slope), p[0], p[1], p[2], p[3],
                                  p[4])
        return float(v) * 3.6


# --------------------------------------------------------------------------------------------
# Landscape
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Landscape:
    """The merged land cover with its speeds, modes, barriers and elevation.

    Attributes
    ----------
    classes:
        ``(rows, cols)`` int64 class codes after burning roads; ``-1`` where the land cover
        has no data.
    speed_kmh:
        Flat speed of each cell (km/h); 0 where impassable (speed-0 class, barrier, no data).
    mode:
        Mode code of each cell (0 motorised, 1 walking, 2 bicycling).
    barrier:
        Cells touched by a barrier.
    transform, crs:
        Georeferencing of the grid (north-up, metres).
    elevation:
        Elevation in metres on the same grid (``nan`` where unknown), or ``None``.
    """

    classes: np.ndarray
    speed_kmh: np.ndarray
    mode: np.ndarray
    barrier: np.ndarray
    transform: Affine
    crs: CRS
    elevation: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid."""
        return (int(self.classes.shape[0]), int(self.classes.shape[1]))

    @property
    def cell_size(self) -> tuple[float, float]:
        """``(height, width)`` of a cell in metres."""
        return (abs(float(self.transform.e)), abs(float(self.transform.a)))

    def passable(self, *, anisotropic: bool = False) -> np.ndarray:
        """Cells one can enter (with known elevation when ``anisotropic``)."""
        ok = self.speed_kmh > 0
        if anisotropic:
            if self.elevation is None:
                raise InputError.single("anisotropic travel needs a DEM", field="dem",
                                        code="missing_dem")
            ok &= np.isfinite(self.elevation)
        return ok

    def pace(self, *, anisotropic: bool = False) -> np.ndarray:
        """Flat pace of each cell in s/m (``inf`` where impassable)."""
        ok = self.passable(anisotropic=anisotropic)
        with np.errstate(divide="ignore"):
            return np.where(ok, 3.6 / np.where(ok, self.speed_kmh, 1.0), np.inf)


def landscape_from_arrays(
    classes: np.ndarray,
    scenario: Scenario,
    *,
    transform: Affine,
    crs: CRS | str | int,
    nodata: float | None = None,
    barrier: np.ndarray | None = None,
    elevation: np.ndarray | None = None,
) -> Landscape:
    """Build a :class:`Landscape` from a class grid already in memory.

    Parameters
    ----------
    classes:
        2-D array of class codes (integers, or floats holding integers).
    scenario:
        The travel scenario; every class present (other than ``nodata``) must be in it.
    transform, crs:
        North-up affine transform and a projected CRS in metres.
    nodata:
        Class value meaning "no data" (impassable).
    barrier, elevation:
        Optional boolean barrier mask and elevation grid (m) of the same shape.

    Raises
    ------
    InputError
        Unknown classes (each named with its cell count), non-integer classes, a geographic or
        non-metric CRS, a rotated grid, arrays of the wrong shape.
    """
    arr = np.asarray(classes)
    crs = CRS.from_user_input(crs)
    problems = _check_grid(arr.shape, transform, crs, "land cover")
    if problems:
        raise InputError(problems)
    valid = np.ones(arr.shape, dtype=bool)
    if nodata is not None:
        valid &= ~((arr == nodata) | (np.isnan(arr) if np.isnan(nodata) else False))
    if np.issubdtype(arr.dtype, np.floating):
        valid &= np.isfinite(arr)
        fractional = valid & (arr != np.floor(np.where(valid, arr, 0)))
        if fractional.any():
            raise InputError.single(f"the land cover holds {int(fractional.sum())} non-integer "
                                    "class values", field="class", code="not_integer")
    codes = np.where(valid, arr, -1).astype(np.int64)
    present, counts = _class_counts(codes[valid])
    unknown = [(int(c), int(n)) for c, n in zip(present, counts, strict=True)
               if int(c) not in scenario]
    if unknown:
        raise InputError([Problem(reason=f"land-cover class {c} ({n} cells) is not in the "
                                  "scenario table", field="class", code="unknown_class")
                          for c, n in unknown])
    for name, extra in (("barriers", barrier), ("dem", elevation)):
        if extra is not None and np.shape(extra) != arr.shape:
            raise InputError.single(f"{name} grid has shape {np.shape(extra)}, the land cover "
                                    f"{arr.shape}", field=name, code="shape_mismatch")
    if arr.size > _MAX_CELLS:
        raise InputError.single(f"the land cover has {arr.size} cells (at most {_MAX_CELLS})",
                                field="landcover", code="too_large")
    barrier_mask = (np.zeros(arr.shape, dtype=bool) if barrier is None
                    else np.asarray(barrier, dtype=bool))
    codes[~valid] = -1
    speed, mode = scenario.lookup(codes)
    speed[barrier_mask] = 0.0
    elev = None if elevation is None else np.asarray(elevation, dtype=np.float64)
    return Landscape(classes=codes, speed_kmh=speed, mode=mode, barrier=barrier_mask,
                     transform=transform, crs=crs, elevation=elev)


def _class_counts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes and their counts (a histogram when the codes are small, else a sort)."""
    if codes.size and 0 <= codes.min() and codes.max() < 1 << 20:
        counts = np.bincount(codes)
        present = np.flatnonzero(counts)
        return present, counts[present]
    return np.unique(codes, return_counts=True)


def read_landscape(
    landcover: str | Path,
    scenario: Scenario | str | Path,
    *,
    roads: str | Path | gpd.GeoDataFrame | None = None,
    road_class_field: str | None = None,
    barriers: Sequence[str | Path | gpd.GeoDataFrame] = (),
    dem: str | Path | None = None,
) -> Landscape:
    """Read an AccessMod-style project into a :class:`Landscape`.

    Parameters
    ----------
    landcover:
        Single-band GeoTIFF (any raster GDAL reads) of integer class codes in a projected CRS
        with metre units.
    scenario:
        A :class:`Scenario` or the path of its CSV.
    roads:
        Line layer (GeoJSON, GeoPackage, Shapefile, or a GeoDataFrame) in any declared CRS,
        whose ``road_class_field`` holds class codes of the scenario table. Burned over the
        land cover (cells whose centre the line's rasterisation reaches), faster classes last
        so they win where roads overlap.
    road_class_field:
        Required with ``roads``.
    barriers:
        Line and polygon layers; every cell they touch becomes impassable (``all_touched``, so a
        thin river line is a closed wall even against diagonal moves). Barriers win over roads:
        leave gaps in barrier lines where bridges are.
    dem:
        Elevation raster in any CRS; resampled bilinearly onto the land-cover grid.

    Raises
    ------
    InputError
        Every problem found: missing files, unknown classes, bad road codes (with their row),
        wrong geometry types, layers without a CRS or outside the land cover.
    """
    if not isinstance(scenario, Scenario):
        scenario = read_scenario(scenario)
    path = Path(landcover)
    if not path.exists():
        raise InputError.single(f"land-cover raster not found: {path}", field="landcover",
                                code="not_found")
    try:
        with rasterio.open(path) as src:
            classes = src.read(1)
            transform, crs, nodata = src.transform, src.crs, src.nodata
    except rasterio.errors.RasterioIOError as exc:
        raise InputError.single(f"cannot read land-cover raster {path.name}: {exc}",
                                field="landcover") from exc
    if crs is None:
        raise InputError.single(f"land-cover raster {path.name} declares no CRS",
                                field="landcover", code="no_crs")
    problems = _check_grid(classes.shape, transform, crs, "land cover")
    if problems:
        raise InputError(problems)
    shape = classes.shape
    merged = np.asarray(classes)
    if roads is not None:
        if not road_class_field:
            raise InputError.single("--road-class-field is required with roads",
                                    field="road_class_field", code="missing")
        burned = _burn_roads(roads, road_class_field, scenario, shape, transform, crs)
        on_road = burned != _NO_ROAD
        merged = np.where(on_road, burned, merged)
        if nodata is not None and np.any(on_road & (burned == nodata)):
            raise InputError.single(f"a road class equals the land cover's nodata value "
                                    f"{nodata}", field=road_class_field)
    barrier = np.zeros(shape, dtype=bool)
    for layer in barriers:
        barrier |= _burn_barriers(layer, shape, transform, crs)
    elevation = None if dem is None else _read_dem(dem, shape, transform, crs)
    return landscape_from_arrays(merged, scenario, transform=transform, crs=crs, nodata=nodata,
                                 barrier=barrier, elevation=elevation)


def _check_grid(shape: tuple[int, ...], transform: Affine, crs: CRS, what: str) -> list[Problem]:
    problems: list[Problem] = []
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        problems.append(Problem(reason=f"{what} must be a non-empty 2-D grid, got shape {shape}",
                                field="landcover", code="bad_shape"))
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        problems.append(Problem(reason=f"{what} grid must be north-up without rotation",
                                field="landcover", code="rotated"))
    if not crs.is_projected or crs.linear_units not in ("metre", "meter", "m"):
        problems.append(Problem(reason=f"{what} CRS {crs.to_string()} is not projected in "
                                "metres; reproject the land cover (e.g. to its UTM zone)",
                                field="landcover", code="not_metric"))
    return problems


def _read_layer(source: str | Path | gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if isinstance(source, gpd.GeoDataFrame):
        gdf = source
        name = what
    else:
        path = Path(source)
        name = path.name
        if not path.exists():
            raise InputError.single(f"{what} file not found: {path}", field=what,
                                    code="not_found")
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # pyogrio raises several types for unreadable files
            raise InputError.single(f"cannot read {what} file {name}: {exc}",
                                    field=what) from exc
    if gdf.crs is None:
        raise InputError.single(f"{what} layer {name} declares no CRS", field=what,
                                code="no_crs")
    return gdf


def _geometry_problems(gdf: gpd.GeoDataFrame, allowed: tuple[str, ...],
                       what: str) -> list[Problem]:
    geoms = gdf.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = np.array([g.geom_type if g is not None else "" for g in geoms], dtype=object)
    bad |= ~np.isin(types, allowed)
    return [Problem(reason=f"{what} geometry is {types[r] or 'missing'}, expected one of "
                    f"{', '.join(allowed)}", field="geometry", row=int(r) + 1,
                    code="bad_geometry") for r in np.flatnonzero(bad)]


def _check_overlap(gdf: gpd.GeoDataFrame, shape: tuple[int, int], transform: Affine,
                   what: str, field_name: str) -> None:
    left, bottom, right, top = rasterio.transform.array_bounds(shape[0], shape[1], transform)
    if len(gdf) and not gdf.intersects(shapely.box(left, bottom, right, top)).any():
        raise InputError.single(f"no {what} feature lies on the land cover (check the layer's "
                                "CRS)", field=field_name, code="outside")


def _burn_roads(roads: str | Path | gpd.GeoDataFrame, class_field: str, scenario: Scenario,
                shape: tuple[int, int], transform: Affine, crs: CRS) -> np.ndarray:
    gdf = _read_layer(roads, "roads")
    if class_field not in gdf.columns:
        raise InputError.single(f"roads have no attribute '{class_field}'", field=class_field,
                                code="missing_column")
    problems = _geometry_problems(gdf, ("LineString", "MultiLineString"), "road")
    codes: list[int] = []
    for i, raw in enumerate(gdf[class_field].tolist()):
        code = _parse_int(raw)
        if code is None:
            problems.append(Problem(reason=f"road class {raw!r} is not an integer",
                                    field=class_field, row=i + 1, code="not_integer"))
        elif code not in scenario:
            problems.append(Problem(reason=f"road class {code} is not in the scenario table",
                                    field=class_field, row=i + 1, code="unknown_class"))
        codes.append(-1 if code is None else code)
    if problems:
        raise InputError(problems)
    gdf = gdf.to_crs(crs)
    _check_overlap(gdf, shape, transform, "road", class_field)
    speeds = np.array([scenario.get(c).speed_kmh for c in codes])
    order = np.argsort(speeds, kind="stable")  # faster classes burned last win
    geoms = gdf.geometry.to_numpy()
    out = np.full(shape, _NO_ROAD, dtype=np.int64)
    if len(order):
        rasterio.features.rasterize(((geoms[i], codes[i]) for i in order), out=out,
                                    transform=transform)
    return out


def _burn_barriers(layer: str | Path | gpd.GeoDataFrame, shape: tuple[int, int],
                   transform: Affine, crs: CRS) -> np.ndarray:
    gdf = _read_layer(layer, "barriers")
    problems = _geometry_problems(gdf, ("LineString", "MultiLineString", "Polygon",
                                        "MultiPolygon"), "barrier")
    if problems:
        raise InputError(problems)
    gdf = gdf.to_crs(crs)
    _check_overlap(gdf, shape, transform, "barrier", "barriers")
    mask = np.zeros(shape, dtype=np.uint8)
    if len(gdf):
        rasterio.features.rasterize(((g, 1) for g in gdf.geometry), out=mask,
                                    transform=transform, all_touched=True)
    return mask.astype(bool)


def _warp_to_grid(path: str | Path, what: str, shape: tuple[int, int], transform: Affine,
                  crs: CRS, resampling: Resampling) -> tuple[np.ndarray, np.ndarray]:
    """Read band 1 of ``path`` onto the grid: values (float64) and a has-data mask."""
    source = _raster_source(path, what)
    try:
        with rasterio.open(source) as src:
            if src.crs is None:
                raise InputError.single(f"{what} raster {source} declares no CRS",
                                        field=what, code="no_crs")
            same = (src.crs == crs and src.transform == transform
                    and (src.height, src.width) == shape)
            if same:
                band = src.read(1, masked=True)
                values = np.asarray(band.filled(np.nan), dtype=np.float64)
            else:
                values = np.full(shape, np.nan, dtype=np.float64)
                rasterio.warp.reproject(
                    source=rasterio.band(src, 1), destination=values, dst_transform=transform,
                    dst_crs=crs, dst_nodata=np.nan, resampling=resampling)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError.single(f"cannot read {what} raster {source}: {exc}",
                                field=what) from exc
    has_data = np.isfinite(values)
    if not has_data.any():
        raise InputError.single(f"the {what} raster has no data on the land cover (check its "
                                "CRS and extent)", field=what, code="outside")
    return values, has_data


def _raster_source(path: str | Path, what: str) -> str:
    """A GDAL-readable name: a file, a ``zip://archive!member`` URL, or a one-file archive."""
    text = str(path)
    if text.startswith(("zip://", "/vsizip/")):
        return text
    file = Path(text)
    if not file.exists():
        raise InputError.single(f"{what} raster not found: {file}", field=what,
                                code="not_found")
    if file.suffix.lower() == ".zip":
        with zipfile.ZipFile(file) as archive:
            members = [n for n in archive.namelist() if not n.endswith("/")]
        if len(members) != 1:
            raise InputError.single(f"{what} archive {file.name} holds {len(members)} files; "
                                    f"name one as zip://{file}!MEMBER", field=what)
        return f"zip://{file.resolve()}!{members[0]}"
    return text


def _read_dem(path: str | Path, shape: tuple[int, int], transform: Affine,
              crs: CRS) -> np.ndarray:
    values, _ = _warp_to_grid(path, "dem", shape, transform, crs, Resampling.bilinear)
    return values


def read_population(path: str | Path, landscape: Landscape) -> np.ndarray:
    """Read a population raster onto the landscape grid (people per cell, float64).

    A raster on another grid is resampled with GDAL's ``sum`` method, which keeps the total;
    no-data cells count as 0 people.

    Raises
    ------
    InputError
        Missing file or CRS, no overlap with the land cover, negative counts.
    """
    values, has_data = _warp_to_grid(path, "population", landscape.shape, landscape.transform,
                                     landscape.crs, Resampling.sum)
    negative = has_data & (values < 0)
    if negative.any():
        raise InputError.single(f"the population raster has {int(negative.sum())} negative "
                                "cells", field="population", code="negative")
    return np.where(has_data, values, 0.0)


def locate_facilities(landscape: Landscape, facilities: gpd.GeoDataFrame, *,
                      anisotropic: bool = False) -> np.ndarray:
    """Cells ``(row, col)`` of the facilities, in their order.

    Raises
    ------
    InputError
        One problem per facility (1-based row, id) outside the land cover or on an
        impassable cell (speed 0, barrier, no data, unknown elevation when anisotropic).
    """
    if facilities.crs is None:
        raise InputError.single("facilities declare no CRS", field="facilities", code="no_crs")
    pts = facilities.geometry.to_crs(landscape.crs)
    xs = shapely.get_x(pts.to_numpy())
    ys = shapely.get_y(pts.to_numpy())
    t = landscape.transform  # north-up (checked when the landscape was built)
    with np.errstate(invalid="ignore"):
        rows = np.floor((ys - t.f) / t.e).astype(np.int64)
        cols = np.floor((xs - t.c) / t.a).astype(np.int64)
    nrows, ncols = landscape.shape
    passable = landscape.passable(anisotropic=anisotropic)
    problems: list[Problem] = []
    for i, (fid, r, c) in enumerate(zip(facilities.index, rows, cols, strict=True)):
        if not (0 <= r < nrows and 0 <= c < ncols):
            problems.append(Problem(reason=f"facility {fid!r} lies outside the land cover",
                                    field="lon/lat", row=i + 1, code="outside"))
        elif not passable[r, c]:
            why = [f"class {int(landscape.classes[r, c])}"]
            if landscape.barrier[r, c]:
                why.append("barrier")
            elif landscape.speed_kmh[r, c] <= 0:
                why.append("speed 0 or no data")
            else:
                why.append("unknown elevation")
            problems.append(Problem(
                reason=f"facility {fid!r} lies on an impassable cell ({', '.join(why)}); "
                "move it or change the scenario", field="lon/lat", row=i + 1,
                code="impassable"))
    if problems:
        raise InputError(problems)
    return np.column_stack([rows, cols])
