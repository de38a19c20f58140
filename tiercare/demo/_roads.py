"""Road network of the demo county: county, township and village roads joining every settlement.

Model
-----
* **County roads** (县道) join the township seats: their Euclidean minimum spanning tree plus up
  to three extra links where the tree forces a detour of more than 1.6 times the straight
  distance (within 30 km).
* **Township roads** (乡道) join each seat to the villages and communities of its township: the
  township's minimum spanning tree, a direct link from the seat to the village next to it, and
  up to two extra links where the tree's detour exceeds 2.5 (within 5 km). A few links join
  the nearest villages of neighbouring townships.
* **Village roads** (村道) are the short spurs: tree edges of at most 3 km that end in a village
  with no other road (and the short links across township borders).
* Every road is drawn as a gentle curve between its two settlements (a perpendicular offset
  ``L (a₁ sin πt + a₂ sin 2πt)``, |a₁| ≤ 0.05, |a₂| ≤ 0.02, vertices every 250 m) that starts and
  ends *exactly* at the settlement points. Roads that cross are split at the crossing so that
  every junction is a shared vertex (``shapely.node``).

Speeds by class come from the calibration file and are written on every line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse.csgraph import minimum_spanning_tree, shortest_path
from scipy.spatial.distance import cdist
from shapely.geometry import LineString, MultiLineString

from tiercare.demo._settlements import Place, Township

_VERTEX_STEP_M = 250.0
_SPUR_MAX_M = 3_000.0


@dataclass(frozen=True)
class Road:
    """One road piece between two junctions (metric coordinates)."""

    geometry: LineString
    road_class: str
    ref: str


def _tree_edges(points: NDArray[np.float64]) -> list[tuple[int, int]]:
    tree = minimum_spanning_tree(cdist(points, points)).tocoo()
    return sorted((int(min(i, j)), int(max(i, j))) for i, j in zip(tree.row, tree.col, strict=True))


def _detour_links(
    points: NDArray[np.float64],
    edges: list[tuple[int, int]],
    *,
    max_links: int,
    max_length: float,
    min_ratio: float,
) -> list[tuple[int, int]]:
    """Extra links, greedily, where the network path is much longer than the straight line."""
    direct = cdist(points, points)
    added: list[tuple[int, int]] = []
    for _ in range(max_links):
        weights = np.zeros_like(direct)
        for i, j in edges + added:
            weights[i, j] = weights[j, i] = direct[i, j]
        network = shortest_path(weights, directed=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((direct > 0) & (direct <= max_length), network / direct, 0.0)
        i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[i, j] <= min_ratio:
            break
        added.append((int(min(i, j)), int(max(i, j))))
    return added


def _curve(rng: np.random.Generator, a: NDArray[np.float64], b: NDArray[np.float64]) -> LineString:
    vector = b - a
    length = float(np.hypot(*vector))
    steps = max(2, int(np.ceil(length / _VERTEX_STEP_M)))
    t = np.linspace(0.0, 1.0, steps + 1)[:, None]
    normal = np.array([-vector[1], vector[0]]) / length
    bend = length * (rng.uniform(-0.05, 0.05) * np.sin(np.pi * t)
                     + rng.uniform(-0.02, 0.02) * np.sin(2.0 * np.pi * t))
    coords = a + t * vector + bend * normal
    coords[0], coords[-1] = a, b
    return LineString(coords)


def build_roads(
    rng: np.random.Generator, townships: list[Township], places: list[Place]
) -> list[Road]:
    """Build the road pieces (split at every junction), county roads first.

    Parameters
    ----------
    rng:
        Random generator of this step.
    townships, places:
        Townships (with seats) and places (villages and communities with points).

    Returns
    -------
    list of Road
        Pieces whose end points are settlement points or crossings shared by the pieces that
        meet there.
    """
    links: list[tuple[NDArray[np.float64], NDArray[np.float64], str]] = []
    seats = np.array([t.seat for t in townships])
    county_edges = _tree_edges(seats)
    county_edges += _detour_links(seats, county_edges, max_links=3, max_length=30_000.0,
                                  min_ratio=1.6)
    links += [(seats[i], seats[j], "county") for i, j in county_edges]

    members: dict[int, list[Place]] = {t.index: [] for t in townships}
    for place in places:
        if place.role != "seat":
            members[place.township].append(place)
    for township in townships:
        group = members[township.index]
        points = np.vstack([township.seat] + [p.xy for p in group])
        edges = _tree_edges(points)
        near = 1 + next(k for k, p in enumerate(group) if p.role == "near_seat")
        if (0, near) not in edges:
            edges.append((0, near))
        degree = np.bincount(np.array(edges).ravel(), minlength=len(points))
        for i, j in edges:
            length = float(np.hypot(*(points[i] - points[j])))
            spur = length <= _SPUR_MAX_M and (
                (i > 0 and degree[i] == 1) or (j > 0 and degree[j] == 1)
            )
            links.append((points[i], points[j], "village" if spur else "township"))
        for i, j in _detour_links(points, edges, max_links=2, max_length=5_000.0, min_ratio=2.5):
            links.append((points[i], points[j], "township"))

    for a in range(len(townships)):
        for b in range(a + 1, len(townships)):
            if not townships[a].polygon.touches(townships[b].polygon):
                continue
            first, second = members[a], members[b]
            distance = cdist([p.xy for p in first], [p.xy for p in second])
            i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
            if distance[i, j] <= 4_000.0 and rng.random() < 0.6:
                kind = "village" if distance[i, j] <= 2_500.0 else "township"
                links.append((first[int(i)].xy, second[int(j)].xy, kind))

    lines = [_curve(rng, a, b) for a, b, _ in links]
    classes = [kind for _, _, kind in links]
    counters = {"county": 0, "township": 0, "village": 0}
    prefixes = {"county": "X", "township": "Y", "village": "C"}
    refs = []
    for kind in classes:
        counters[kind] += 1
        refs.append(f"{prefixes[kind]}{counters[kind]:03d}")
    tree = shapely.STRtree(lines)
    pieces = shapely.node(MultiLineString(lines)).geoms
    roads = []
    for piece in pieces:
        middle = piece.interpolate(0.5, normalized=True)
        source = int(tree.query_nearest(middle)[0])
        roads.append(Road(geometry=piece, road_class=classes[source], ref=refs[source]))
    order = {"county": 0, "township": 1, "village": 2}
    roads.sort(key=lambda r: (order[r.road_class], r.ref))
    return roads
