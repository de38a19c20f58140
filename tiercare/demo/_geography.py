"""County outline and township partition of the demo county (metric coordinates).

Model
-----
* **Outline.** A star-shaped polygon around the centre: radius
  ``r(θ) = R exp(Σ_k a_k cos(kθ + φ_k) + ε(θ))`` for k = 1…6 with amplitudes falling as
  ``1/k`` and a little vertex noise; ``R`` is set so that the area is the calibrated one.
* **Townships.** Twelve seats: the county seat a few km from the centre, the others by dart
  throwing with a minimum spacing, then relaxed by a few Lloyd iterations (each free seat moves
  to the centroid of its Voronoi cell clipped to the outline). The townships are the clipped
  Voronoi cells of the seats (a partition of the county).
* **Natural borders.** Straight Voronoi edges are bent by a smooth displacement field
  ``p ↦ p + d(p)``, ``d`` a sum of three plane waves per axis with amplitudes ``A_j`` and
  wavelengths ``λ_j``. Every partial derivative of ``d`` is bounded by ``Σ 2πA_j/λ_j < 0.5``, so
  ``det(I + ∂d/∂p) > 0`` and the map is a diffeomorphism of the plane: townships stay a
  partition, without gaps or overlaps, and every seat stays inside its own township. Shared
  vertices are moved identically, then snapped to a 1 m grid, then the whole county is scaled
  about the county seat to the exact calibrated area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import affinity
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry

#: Spacing of vertices along township borders before bending them (m).
_BORDER_STEP_M = 400.0
#: (amplitude m, wavelength m) of the border-bending waves; Σ 2πA/λ = 0.49 < 0.5.
_WAVES = ((450.0, 20_000.0), (220.0, 7_000.0), (60.0, 2_500.0))


@dataclass(frozen=True)
class CountyShape:
    """Outline, townships and seats of the demo county, in a metric CRS.

    Attributes
    ----------
    outline:
        The county polygon (the union of the townships).
    townships:
        One polygon per township; index 0 is the county-seat township.
    seats:
        ``(n, 2)`` array of township seat coordinates, index 0 the county seat.
    """

    outline: Polygon
    townships: tuple[Polygon, ...]
    seats: NDArray[np.float64]


def _star_outline(rng: np.random.Generator, centre: NDArray[np.float64], area: float) -> Polygon:
    n = 144
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    log_r = rng.normal(0.0, 0.01, n)
    for k in range(1, 7):
        amplitude = rng.uniform(0.5, 1.0) * 0.28 / k
        log_r += amplitude * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    radius = np.exp(log_r)
    polygon = Polygon(np.column_stack([radius * np.cos(theta), radius * np.sin(theta)]))
    factor = float(np.sqrt(area / polygon.area))
    return affinity.translate(
        affinity.scale(polygon, factor, factor, origin=(0.0, 0.0)), *centre.tolist()
    )


def _random_points_in(
    rng: np.random.Generator, region: BaseGeometry, count: int
) -> NDArray[np.float64]:
    """``count`` uniform random points inside ``region`` (rejection sampling)."""
    minx, miny, maxx, maxy = region.bounds
    found: list[NDArray[np.float64]] = []
    total = 0
    while total < count:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(64, 4 * count), 2))
        inside = xy[shapely.contains_xy(region, xy[:, 0], xy[:, 1])]
        found.append(inside)
        total += len(inside)
    return np.concatenate(found)[:count]


def _dart_seats(
    rng: np.random.Generator,
    region: BaseGeometry,
    first: NDArray[np.float64],
    count: int,
    spacing: float,
) -> NDArray[np.float64]:
    seats = [first]
    while len(seats) < count:
        for _ in range(4000):
            candidate = _random_points_in(rng, region, 1)[0]
            if min(float(np.hypot(*(candidate - s))) for s in seats) >= spacing:
                seats.append(candidate)
                break
        else:
            spacing *= 0.9
    return np.array(seats)


def _voronoi_cells(seats: NDArray[np.float64], outline: Polygon) -> list[BaseGeometry]:
    envelope = outline.envelope.buffer(50_000.0)
    cells = shapely.voronoi_polygons(MultiPoint(seats), extend_to=envelope, ordered=True)
    return [cell.intersection(outline) for cell in cells.geoms]


def _lloyd(
    seats: NDArray[np.float64], outline: Polygon, iterations: int, margin: float
) -> NDArray[np.float64]:
    """Move every seat but the first (the county seat) to the centroid of its cell."""
    inner = outline.buffer(-margin)
    seats = seats.copy()
    for _ in range(iterations):
        cells = _voronoi_cells(seats, outline)
        for i in range(1, len(seats)):
            centroid = cells[i].centroid
            if not inner.contains(centroid):
                centroid = cells[i].intersection(inner).representative_point()
            if not centroid.is_empty:
                seats[i] = (centroid.x, centroid.y)
    return seats


def _single_parts(cells: list[BaseGeometry], seats: NDArray[np.float64]) -> list[Polygon]:
    """Give stray parts of multi-part cells to the neighbour sharing the longest border."""
    cells = list(cells)
    for i, cell in enumerate(cells):
        if cell.geom_type != "MultiPolygon":
            continue
        seat = Point(seats[i])
        parts = sorted(cell.geoms, key=lambda p: (not p.contains(seat), -p.area))
        cells[i] = parts[0]
        for part in parts[1:]:
            shared = [
                part.boundary.intersection(other.boundary).length if j != i else -1.0
                for j, other in enumerate(cells)
            ]
            j = int(np.argmax(shared))
            cells[j] = cells[j].union(part)
    result: list[Polygon] = []
    for cell in cells:
        if cell.geom_type != "Polygon":
            raise RuntimeError("township partition produced a multi-part township")
        result.append(cell)
    return result


def _wave_field(rng: np.random.Generator) -> list[tuple[float, NDArray[np.float64], float, int]]:
    waves = []
    for axis in (0, 1):
        for amplitude, wavelength in _WAVES:
            angle = rng.uniform(0.0, np.pi)
            k = 2.0 * np.pi / wavelength * np.array([np.cos(angle), np.sin(angle)])
            waves.append((amplitude, k, float(rng.uniform(0.0, 2.0 * np.pi)), axis))
    return waves


def _bend(
    xy: NDArray[np.float64], waves: list[tuple[float, NDArray[np.float64], float, int]]
) -> NDArray[np.float64]:
    out = np.array(xy, dtype=float, copy=True)
    for amplitude, k, phase, axis in waves:
        out[:, axis] += amplitude * np.cos(xy @ k + phase)
    return out


def build_county_shape(
    rng: np.random.Generator,
    *,
    centre: tuple[float, float],
    area_m2: float,
    townships: int,
) -> CountyShape:
    """Generate the outline and the township partition of the county.

    Parameters
    ----------
    rng:
        Random generator (all randomness of this step).
    centre:
        Centre of the county in metric coordinates (m).
    area_m2:
        Exact area of the county (m²).
    townships:
        Number of townships (≥ 2).

    Returns
    -------
    CountyShape
        Polygons snapped to a 1 m grid; seats inside their townships.
    """
    centre_xy = np.asarray(centre, dtype=float)
    outline = _star_outline(rng, centre_xy, area_m2)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    county_seat = centre_xy + rng.uniform(2_000.0, 4_000.0) * np.array(
        [np.cos(angle), np.sin(angle)]
    )
    spacing = 0.7 * float(np.sqrt(area_m2 / townships))
    seats = _dart_seats(rng, outline.buffer(-5_000.0), county_seat, townships, spacing)
    seats = _lloyd(seats, outline, iterations=4, margin=3_000.0)
    cells = _single_parts(_voronoi_cells(seats, outline), seats)
    waves = _wave_field(rng)
    bent: list[Polygon] = []
    for cell in cells:
        dense = shapely.segmentize(shapely.set_precision(cell, 1.0), _BORDER_STEP_M)
        bent.append(shapely.transform(dense, lambda xy: _bend(xy, waves)))
    bent_seats = _bend(seats, waves)
    factor = float(np.sqrt(area_m2 / shapely.union_all(bent).area))
    origin = (float(bent_seats[0, 0]), float(bent_seats[0, 1]))
    final = [
        shapely.set_precision(affinity.scale(p, factor, factor, origin=origin), 1.0) for p in bent
    ]
    final_seats = origin + (bent_seats - np.asarray(origin)) * factor
    county = shapely.union_all(final)
    if county.geom_type != "Polygon":
        county = max(getattr(county, "geoms", [county]), key=lambda g: g.area)
    for i, polygon in enumerate(final):
        if polygon.geom_type != "Polygon" or not polygon.contains(Point(final_seats[i])):
            raise RuntimeError("bending the borders broke the township partition")
    return CountyShape(outline=county, townships=tuple(final), seats=final_seats)
