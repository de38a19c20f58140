"""Townships, villages and urban communities of the demo county, with codes, names and places.

Layout rules (metric coordinates)
---------------------------------
* Townships: index 0 holds the county seat and gets the first town code (…100). Of the others,
  the largest by area are towns (镇, codes …101–106), the rest townships (乡, …200–205); within
  each kind codes follow the bearing of the seat from the county seat, clockwise from north.
* The county seat town holds most residents' committees (社区居委会, classes 111/112) within a
  few km of the seat; a few other towns hold one community each at their centre (class 121).
* Every other township has a seat village (class 210) at its seat, one village 1.0–1.5 km from
  the seat, and further villages (class 220) thrown at random at least 1.5 km apart and 500 m
  inside the township border, each the lowest of three candidates on the terrain (villages sit
  in valleys). Village counts per township follow the township area.
* Codes: communities 001–099, villages 200–399 in the 12-digit statistical code, with a few
  numbers skipped as in real lists (committees merged away).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from tiercare.demo._geography import CountyShape
from tiercare.demo._names import NameMaker, community_committee_name, village_committee_name
from tiercare.demo._population import apportion

#: Minimum distance between villages (m) and from a village to the township border (m).
VILLAGE_SPACING_M = 1_500.0
BORDER_CLEARANCE_M = 500.0

Elevation = Callable[[NDArray[np.float64]], NDArray[np.float64]]


@dataclass
class Township:
    """One township (乡镇) of the demo county (mutable while the county is built)."""

    index: int
    code: str
    stem: str
    is_town: bool
    polygon: Polygon
    seat: NDArray[np.float64]
    has_community: bool = False

    @property
    def name(self) -> str:
        """Name with its suffix, 镇 for towns and 乡 for townships."""
        return self.stem + ("镇" if self.is_town else "乡")


@dataclass
class Place:
    """A village or urban community (村/社区) with its point and, later, its population."""

    code: str
    short: str
    township: int
    kind: str
    urban_rural_class: str
    role: str
    xy: NDArray[np.float64]
    population: int = 0
    male: int = 0
    age_0_14: int = 0
    age_65_plus: int = 0

    @property
    def name(self) -> str:
        """Statistical name (…村民委员会 / …社区居民委员会)."""
        if self.kind == "community":
            return community_committee_name(self.short)
        return village_committee_name(self.short)

    @property
    def is_urban(self) -> bool:
        """Urban residents' committee (classes 1xx)."""
        return self.kind == "community"


def _bearing(origin: NDArray[np.float64], point: NDArray[np.float64]) -> float:
    """Clockwise bearing from north, in [0, 2π)."""
    dx, dy = point - origin
    return float(np.arctan2(dx, dy) % (2.0 * np.pi))


def ring_point(
    rng: np.random.Generator,
    centre: NDArray[np.float64],
    r_min: float,
    r_max: float,
    region: BaseGeometry,
    others: list[NDArray[np.float64]],
    spacing: float,
) -> NDArray[np.float64]:
    """A random point at ``r_min``–``r_max`` from ``centre``, inside ``region``, spaced from others.

    The radius is drawn so that points are uniform over the annulus.
    """
    for _ in range(2000):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        radius = np.sqrt(rng.uniform(r_min**2, r_max**2))
        point = centre + radius * np.array([np.cos(angle), np.sin(angle)])
        if shapely.contains_xy(region, point[0], point[1]) and _far_from(point, others, spacing):
            return point
    raise RuntimeError("no room for a settlement near the seat")


def _far_from(
    point: NDArray[np.float64], others: list[NDArray[np.float64]], spacing: float
) -> bool:
    if not others:
        return True
    return bool(np.min(np.hypot(*(np.asarray(others) - point).T)) >= spacing)


def _thrown_point(
    rng: np.random.Generator,
    region: BaseGeometry,
    others: list[NDArray[np.float64]],
    elevation: Elevation,
) -> NDArray[np.float64]:
    """Lowest of three random points of ``region`` that keep the village spacing."""
    minx, miny, maxx, maxy = region.bounds
    spacing = VILLAGE_SPACING_M
    candidates: list[NDArray[np.float64]] = []
    tries = 0
    while len(candidates) < 3:
        point = rng.uniform((minx, miny), (maxx, maxy))
        tries += 1
        if tries % 3000 == 0:
            spacing *= 0.9
        if not shapely.contains_xy(region, point[0], point[1]):
            continue
        if _far_from(point, others, spacing):
            candidates.append(point)
    heights = elevation(np.asarray(candidates))
    return candidates[int(np.argmin(heights))]


def _township_codes(
    shape: CountyShape, town_codes: list[str], township_codes: list[str]
) -> list[tuple[str, bool]]:
    """(9-digit code, is_town) for every township index."""
    others = sorted(range(1, len(shape.townships)), key=lambda i: -shape.townships[i].area)
    n_towns = len(town_codes) - 1
    if len(others) != n_towns + len(township_codes):
        raise ValueError("the number of township codes does not match the number of townships")
    towns, rural = others[:n_towns], others[n_towns:]
    result: dict[int, tuple[str, bool]] = {0: (town_codes[0], True)}
    seat0 = shape.seats[0]
    for group, codes, is_town in ((towns, town_codes[1:], True), (rural, township_codes, False)):
        ordered = sorted(group, key=lambda i: _bearing(seat0, shape.seats[i]))
        for i, code in zip(ordered, codes, strict=True):
            result[i] = (code, is_town)
    return [result[i] for i in range(len(shape.townships))]


def _number_codes(
    rng: np.random.Generator, prefix: str, start: int, count: int, stop: int
) -> list[str]:
    """``count`` increasing 3-digit codes from ``start`` with a few numbers skipped."""
    codes, number = [], start
    for _ in range(count):
        codes.append(f"{prefix}{number:03d}")
        number += 1 + int(rng.random() < 0.12)
    if number > stop + 1:
        raise RuntimeError(f"village codes of {prefix} overflow {stop}")
    return codes


def build_settlements(
    rng: np.random.Generator,
    shape: CountyShape,
    names: NameMaker,
    elevation: Elevation,
    *,
    town_codes: list[str],
    township_codes: list[str],
    rural_villages: int,
    seat_communities: int,
    towns_with_community: int,
) -> tuple[list[Township], list[Place]]:
    """Place and name the townships, villages and communities.

    Parameters
    ----------
    rng, names:
        Random generator and name maker of this step.
    shape:
        The county outline, townships and seats.
    elevation:
        Elevation (m) at an ``(n, 2)`` array of metric points: villages prefer valleys.
    town_codes, township_codes:
        9-digit codes of the towns (the first is the county seat town) and of the townships.
    rural_villages:
        Number of village committees in the county.
    seat_communities, towns_with_community:
        Residents' committees in the county seat, and towns (besides it) with one community.

    Returns
    -------
    tuple
        The townships (index order of ``shape``) and the places sorted by code.
    """
    codes = _township_codes(shape, town_codes, township_codes)
    townships = [
        Township(
            index=i, code=code + "000", stem=names.township_stem(), is_town=is_town,
            polygon=shape.townships[i], seat=shape.seats[i],
        )
        for i, (code, is_town) in enumerate(codes)
    ]
    other_towns = sorted(
        (t for t in townships[1:] if t.is_town), key=lambda t: -t.polygon.area
    )
    for town in other_towns[:towns_with_community]:
        town.has_community = True

    areas = np.array([t.polygon.area for t in townships])
    minimum = 5
    counts = apportion(areas, rural_villages - minimum * len(townships)) + minimum
    placed: list[NDArray[np.float64]] = []
    places: list[Place] = []
    for township in townships:
        region = township.polygon.buffer(-BORDER_CLEARANCE_M)
        seat = township.seat
        communities: list[NDArray[np.float64]] = []
        villages: list[tuple[str, NDArray[np.float64]]] = []
        if township.index == 0:
            for _ in range(seat_communities):
                communities.append(ring_point(rng, seat, 0.0, 2_600.0, region, communities, 550.0))
            placed.extend(communities)
            near = ring_point(rng, seat, 3_500.0, 4_500.0, region, placed, VILLAGE_SPACING_M)
        else:
            villages.append(("seat", seat.copy()))
            placed.append(seat.copy())
            if township.has_community:
                communities.append(ring_point(rng, seat, 350.0, 500.0, region, [], 0.0))
                placed.extend(communities)
            near = ring_point(rng, seat, 1_000.0, 1_500.0, region, placed, 800.0)
        villages.append(("near_seat", near))
        placed.append(near)
        while len(villages) < counts[township.index]:
            point = _thrown_point(rng, region, placed, elevation)
            villages.append(("other", point))
            placed.append(point)
        places.extend(_code_places(rng, township, communities, villages, names))
    places.sort(key=lambda p: p.code)
    return townships, places


def _code_places(
    rng: np.random.Generator,
    township: Township,
    communities: list[NDArray[np.float64]],
    villages: list[tuple[str, NDArray[np.float64]]],
    names: NameMaker,
) -> list[Place]:
    prefix = township.code[:9]
    seat = township.seat
    result: list[Place] = []
    by_distance = sorted(communities, key=lambda p: float(np.hypot(*(p - seat))))
    start = 1 if township.index else int(rng.integers(1, 6))
    outer = len(by_distance) - max(1, round(len(by_distance) / 4)) if township.index == 0 else None
    for rank, (code, xy) in enumerate(
        zip(_number_codes(rng, prefix, start, len(by_distance), 99), by_distance, strict=True)
    ):
        if township.index == 0:
            urc = "111" if outer is not None and rank < outer else "112"
        else:
            urc = "121"
        result.append(Place(code=code, short=names.community(), township=township.index,
                            kind="community", urban_rural_class=urc, role="urban", xy=xy))
    seat_villages = [v for v in villages if v[0] == "seat"]
    rest = sorted((v for v in villages if v[0] != "seat"), key=lambda v: _bearing(seat, v[1]))
    ordered = seat_villages + rest
    for (role, xy), code in zip(
        ordered, _number_codes(rng, prefix, 200, len(ordered), 399), strict=True
    ):
        result.append(Place(code=code, short=names.village(), township=township.index,
                            kind="village", urban_rural_class="210" if role == "seat" else "220",
                            role=role, xy=xy))
    return result
