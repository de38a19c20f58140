"""Offline maps: division boundaries and facility points drawn as inline SVG.

No tiles and no map library: the pages draw only our own data. Coordinates (WGS84 lon/lat) are
projected with a local equirectangular projection,

.. math::

    x = (\\lambda - \\lambda_{min}) \\cos\\varphi_0 \\cdot s, \\qquad
    y = (\\varphi_{max} - \\varphi) \\cdot s,

where :math:`\\varphi_0` is the latitude of the middle of the drawn extent and :math:`s` the
scale that fits the extent into the requested width (and maximum height). Over a county or a
province the distortion of this projection is far below what a screen map can show.
Polygons are simplified (Douglas–Peucker, via Shapely) to about one pixel before drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

#: Half-size in degrees of the extent drawn around a single point.
MIN_HALF_EXTENT_DEG = 0.01


@dataclass(frozen=True)
class MapShape:
    """A projected polygon: an SVG path with its style class, tooltip and link."""

    path: str
    css: str
    label: str
    href: str | None = None


@dataclass(frozen=True)
class MapPoint:
    """A projected point marker."""

    x: float
    y: float
    css: str
    label: str
    href: str | None = None
    radius: float = 5.0


@dataclass(frozen=True)
class MapLabel:
    """A text label placed at a projected position (e.g. a division's name)."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class SvgMap:
    """A map ready for the ``svg_map`` template macro (pixel coordinates)."""

    width: float
    height: float
    shapes: tuple[MapShape, ...]
    points: tuple[MapPoint, ...]
    labels: tuple[MapLabel, ...]


@dataclass
class MapBuilder:
    """Collects polygons and points in lon/lat, then projects them all at once.

    Examples
    --------
    >>> square = {"type": "Polygon",
    ...           "coordinates": [[[113, 37], [114, 37], [114, 38], [113, 38], [113, 37]]]}
    >>> builder = MapBuilder()
    >>> builder.polygon(square, css="division", label="县")
    True
    >>> builder.point(113.5, 37.5, css="facility", label="医院")
    True
    >>> svg = builder.render(width=200, padding=0)
    >>> svg.points[0].x, svg.height  # centre of the frame; 1° of latitude = 1/cos(37.5°) of lon
    (100.0, 252.1)
    """

    _polygons: list[tuple[BaseGeometry, str, str, str | None, str | None]] = field(
        default_factory=list
    )
    _points: list[tuple[float, float, str, str, str | None, float]] = field(default_factory=list)

    def polygon(self, geojson: dict[str, Any] | None, *, css: str, label: str,
                href: str | None = None, caption: str | None = None) -> bool:
        """Add a Polygon/MultiPolygon (GeoJSON mapping); returns False when there is none.

        ``caption`` is written at the polygon's representative point.
        """
        if not geojson:
            return False
        geometry = shape(geojson)
        if geometry.is_empty or geometry.geom_type not in {"Polygon", "MultiPolygon"}:
            return False
        self._polygons.append((geometry, css, label, href, caption))
        return True

    def point(self, lon: float | None, lat: float | None, *, css: str, label: str,
              href: str | None = None, radius: float = 5.0) -> bool:
        """Add a point marker; returns False when the coordinates are missing."""
        if lon is None or lat is None:
            return False
        self._points.append((lon, lat, css, label, href, radius))
        return True

    @property
    def empty(self) -> bool:
        """True when nothing was added."""
        return not self._polygons and not self._points

    def _extent(self) -> tuple[float, float, float, float]:
        xs: list[float] = []
        ys: list[float] = []
        for geometry, *_ in self._polygons:
            x0, y0, x1, y1 = geometry.bounds
            xs += [x0, x1]
            ys += [y0, y1]
        for lon, lat, *_ in self._points:
            xs.append(lon)
            ys.append(lat)
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if x1 - x0 < 2 * MIN_HALF_EXTENT_DEG:
            mid = (x0 + x1) / 2
            x0, x1 = mid - MIN_HALF_EXTENT_DEG, mid + MIN_HALF_EXTENT_DEG
        if y1 - y0 < 2 * MIN_HALF_EXTENT_DEG:
            mid = (y0 + y1) / 2
            y0, y1 = mid - MIN_HALF_EXTENT_DEG, mid + MIN_HALF_EXTENT_DEG
        return x0, y0, x1, y1

    def render(self, *, width: float = 640, max_height: float = 520,
               padding: float = 14) -> SvgMap | None:
        """Project everything into a ``width`` × (at most) ``max_height`` pixel frame.

        Returns None when nothing with coordinates was added.
        """
        if self.empty:
            return None
        lon0, lat0, lon1, lat1 = self._extent()
        kx = math.cos(math.radians((lat0 + lat1) / 2))
        span_x = (lon1 - lon0) * kx
        span_y = lat1 - lat0
        scale = min((width - 2 * padding) / span_x, (max_height - 2 * padding) / span_y)
        used_w = span_x * scale
        offset_x = (width - used_w) / 2

        def project(lon: float, lat: float) -> tuple[float, float]:
            return (round(offset_x + (lon - lon0) * kx * scale, 1),
                    round(padding + (lat1 - lat) * scale, 1))

        tolerance = 0.8 / scale  # about a pixel, in degrees
        shapes: list[MapShape] = []
        labels: list[MapLabel] = []
        for geometry, css, label, href, caption in self._polygons:
            simple = geometry.simplify(tolerance, preserve_topology=True)
            shapes.append(MapShape(_svg_path(simple, project), css, label, href))
            if caption:
                anchor = geometry.representative_point()
                x, y = project(anchor.x, anchor.y)
                labels.append(MapLabel(x, y, caption))
        points = [
            MapPoint(*project(lon, lat), css=css, label=label, href=href, radius=radius)
            for lon, lat, css, label, href, radius in self._points
        ]
        height = round(span_y * scale + 2 * padding, 1)
        return SvgMap(width, height, tuple(shapes), tuple(points), tuple(labels))


def _svg_path(geometry: BaseGeometry, project: Any) -> str:
    """SVG path data of a (Multi)Polygon: one closed sub-path per ring (even-odd filling)."""
    polygons = list(geometry.geoms) if geometry.geom_type == "MultiPolygon" else [geometry]
    parts: list[str] = []
    for polygon in polygons:
        for ring in (polygon.exterior, *polygon.interiors):
            coords = [project(x, y) for x, y in ring.coords]
            if len(coords) < 3:
                continue
            head, *tail = coords
            parts.append(f"M{head[0]},{head[1]}" + "".join(f"L{x},{y}" for x, y in tail) + "Z")
    return "".join(parts)
