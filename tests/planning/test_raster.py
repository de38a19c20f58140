"""Raster travel-time engine: equality with scikit-image, brute force with NetworkX, hand cases."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.graph import MCP_Geometric

from tiercare.errors import InputError
from tiercare.planning import raster as rm

UTM = "EPSG:32631"


def scenario(rows: list[tuple[int, str, float, str]]) -> rm.Scenario:
    return rm.Scenario.from_frame(pd.DataFrame(
        [(str(c), lab, str(s), m) for c, lab, s, m in rows],
        columns=["class", "label", "speed", "mode"]))


def grid(shape: tuple[int, int], cell: float = 100.0) -> Affine:
    return Affine(cell, 0.0, 400000.0, 0.0, -cell, 4700000.0 + shape[0] * cell)


# ---------------------------------------------------------------- isotropic vs MCP_Geometric


@st.composite
def friction_case(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[int, int]], tuple[float,
                                                                                     float]]:
    rows = draw(st.integers(1, 25))
    cols = draw(st.integers(2, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    pace = rng.uniform(0.05, 5.0, (rows, cols))
    pace[rng.random((rows, cols)) < draw(st.sampled_from([0.0, 0.1, 0.3]))] = np.inf
    n_src = draw(st.integers(1, 4))
    sources = [(int(rng.integers(rows)), int(rng.integers(cols))) for _ in range(n_src)]
    for r, c in sources:
        pace[r, c] = rng.uniform(0.05, 5.0)
    cell = (draw(st.sampled_from([1.0, 30.0, 92.6])), draw(st.sampled_from([1.0, 30.0, 71.3])))
    return pace, sources, cell


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(friction_case())
def test_isotropic_equals_mcp_geometric(case: tuple) -> None:
    pace, sources, cell = case
    expected, _ = MCP_Geometric(pace, sampling=cell).find_costs(sources)
    cost, nearest = rm.cost_distance(pace, sources, cell_size=cell)
    assert np.array_equal(np.isinf(cost), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(cost[finite], expected[finite], rtol=1e-12, atol=1e-9)
    assert np.all((nearest >= 0) == finite)


def test_isotropic_equals_mcp_on_a_larger_surface() -> None:
    rng = np.random.default_rng(7)
    pace = rng.lognormal(0.0, 1.0, (300, 240))
    sources = [(5, 7), (150, 200), (299, 0)]
    expected, _ = MCP_Geometric(pace, sampling=(50.0, 50.0)).find_costs(sources)
    cost, _ = rm.cost_distance(pace, sources, cell_size=(50.0, 50.0))
    np.testing.assert_allclose(cost, expected, rtol=1e-12)


def test_max_cost_cuts_exactly() -> None:
    rng = np.random.default_rng(3)
    pace = rng.uniform(0.5, 2.0, (40, 40))
    full, _ = rm.cost_distance(pace, [(20, 20)])
    limit = float(np.median(full))
    cut, nearest = rm.cost_distance(pace, [(20, 20)], max_cost=limit)
    inside = full <= limit
    np.testing.assert_array_equal(cut[inside], full[inside])
    assert np.all(np.isinf(cut[~inside])) and np.all(nearest[~inside] == -1)


# ---------------------------------------------------------------- brute force with NetworkX


def tobler_factor(slope: float) -> float:
    return math.exp(-3.5 * abs(slope + 0.05)) / math.exp(-3.5 * 0.05)


def brute_force(speed_kmh: np.ndarray, modes: np.ndarray, elev: np.ndarray | None,
                sources: list[tuple[int, int]], cell: tuple[float, float], neighbours: int,
                direction: str, bike: rm.BicycleModel) -> np.ndarray:
    """Travel time by NetworkX on an explicit graph built from the documented rules."""
    rows, cols = speed_kmh.shape
    moves = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    if neighbours == 16:
        moves += [(dr, dc) for dr in (-2, -1, 1, 2) for dc in (-2, -1, 1, 2)
                  if abs(dr) != abs(dc)]

    def cell_pace(r: int, c: int, slope: float) -> float:
        v = speed_kmh[r, c] / 3.6
        if v <= 0:
            return math.inf
        if elev is None or modes[r, c] == 0:
            return 1.0 / v
        if modes[r, c] == 1:
            return 1.0 / (v * tobler_factor(slope))
        return 1.0 / (bike.speed_kmh(speed_kmh[r, c], slope) / 3.6)

    g = nx.DiGraph()
    g.add_nodes_from((r, c) for r in range(rows) for c in range(cols))
    for r in range(rows):
        for c in range(cols):
            for dr, dc in moves:
                r2, c2 = r + dr, c + dc
                if not (0 <= r2 < rows and 0 <= c2 < cols):
                    continue
                d = math.hypot(dr * cell[0], dc * cell[1])
                slope = 0.0 if elev is None else (elev[r2, c2] - elev[r, c]) / d
                if abs(dr) == 2 or abs(dc) == 2:
                    # the segment between centres: a quarter of its length in each of 4 cells
                    ts = [0.125, 0.375, 0.625, 0.875]
                    crossed = {(r + math.floor(0.5 + t * dr), c + math.floor(0.5 + t * dc))
                               for t in ts}
                    assert len(crossed) == 4
                    w = d / 4 * sum(cell_pace(a, b, slope) for a, b in crossed)
                else:
                    w = d / 2 * (cell_pace(r, c, slope) + cell_pace(r2, c2, slope))
                if math.isfinite(w):
                    g.add_edge((r, c), (r2, c2), weight=w)
    if direction == "towards":
        g = g.reverse(copy=True)
    lengths = nx.multi_source_dijkstra_path_length(g, set(sources))
    out = np.full((rows, cols), np.inf)
    for (r, c), v in lengths.items():
        out[r, c] = v
    return out


@st.composite
def landscape_case(draw: st.DrawFn) -> dict:
    rows = draw(st.integers(2, 9))
    cols = draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    speed = rng.choice([0.0, 2.0, 5.0, 12.0, 40.0], size=(rows, cols),
                       p=[0.1, 0.3, 0.3, 0.15, 0.15])
    modes = rng.integers(0, 3, size=(rows, cols)).astype(np.int8)
    elev = np.cumsum(rng.normal(0, 15, (rows, cols)), axis=1) + rng.uniform(0, 50, (rows, 1))
    src = (int(rng.integers(rows)), int(rng.integers(cols)))
    speed[src] = 5.0
    return {"speed": speed, "modes": modes, "elev": elev, "sources": [src],
            "neighbours": draw(st.sampled_from([8, 16])),
            "direction": draw(st.sampled_from(["towards", "from"])),
            "anisotropic": draw(st.booleans()),
            "cell": (draw(st.sampled_from([30.0, 100.0])), draw(st.sampled_from([30.0, 80.0])))}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(landscape_case())
def test_matches_networkx_brute_force(case: dict) -> None:
    speed, modes, elev = case["speed"], case["modes"], case["elev"]
    pace = np.where(speed > 0, 3.6 / np.where(speed > 0, speed, 1), np.inf)
    bike = rm.BicycleModel()
    cost, nearest = rm.cost_distance(
        pace, case["sources"], cell_size=case["cell"], neighbours=case["neighbours"],
        anisotropic=case["anisotropic"], elevation=elev, mode=modes,
        direction=case["direction"], bicycle=bike)
    expected = brute_force(speed, modes, elev if case["anisotropic"] else None, case["sources"],
                           case["cell"], case["neighbours"], case["direction"], bike)
    assert np.array_equal(np.isinf(cost), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(cost[finite], expected[finite], rtol=1e-9)


def test_nearest_labels_agree_with_single_source_runs() -> None:
    rng = np.random.default_rng(11)
    pace = rng.uniform(0.1, 3.0, (30, 30))
    sources = [(0, 0), (10, 25), (29, 5), (15, 15)]
    cost, nearest = rm.cost_distance(pace, sources, neighbours=16)
    singles = np.stack([rm.cost_distance(pace, [s], neighbours=16)[0] for s in sources])
    np.testing.assert_allclose(cost, singles.min(axis=0), rtol=1e-12)
    picked = np.take_along_axis(singles, nearest[None].astype(np.int64), axis=0)[0]
    np.testing.assert_allclose(picked, cost, rtol=1e-12)


# ---------------------------------------------------------------- landscape-level facts


def slope_landscape(modes: str, shape: tuple[int, int] = (5, 30)) -> rm.Landscape:
    sc = scenario([(1, "walk", 5.0, modes), (2, "road", 60.0, "MOTORIZED")])
    classes = np.ones(shape, dtype=np.int32)
    elevation = np.tile(np.arange(shape[1]) * 20.0, (shape[0], 1))  # 20 % slope eastwards
    return rm.landscape_from_arrays(classes, sc, transform=grid(shape), crs=UTM,
                                    elevation=elevation)


def test_isotropic_equals_anisotropic_when_all_motorised() -> None:
    rng = np.random.default_rng(5)
    shape = (40, 50)
    sc = scenario([(1, "a", 30.0, "MOTORIZED"), (2, "b", 80.0, "MOTORIZED"),
                   (3, "water", 0.0, "MOTORIZED")])
    classes = rng.choice([1, 2, 3], size=shape, p=[0.6, 0.3, 0.1])
    classes[0, 0] = classes[39, 49] = 1
    land = rm.landscape_from_arrays(classes, sc, transform=grid(shape), crs=UTM,
                                    elevation=rng.uniform(0, 2000, shape))
    for neighbours in (8, 16):
        for direction in ("towards", "from"):
            iso = rm.travel_time(land, [(0, 0), (39, 49)], neighbours=neighbours)
            aniso = rm.travel_time(land, [(0, 0), (39, 49)], anisotropic=True,
                                   direction=direction, neighbours=neighbours)
            np.testing.assert_allclose(aniso.seconds, iso.seconds, rtol=1e-12)
            np.testing.assert_array_equal(aniso.nearest, iso.nearest)


def test_facility_cell_is_zero_and_neighbour_is_hand_computed() -> None:
    land = slope_landscape("WALKING")
    res = rm.travel_time(land, [(2, 10)])
    assert res.seconds[2, 10] == 0.0 and res.nearest[2, 10] == 0
    # 100 m at 5 km/h = 72 s
    assert res.seconds[2, 11] == pytest.approx(72.0)
    assert res.minutes[2, 11] == pytest.approx(1.2)


def test_direction_matters_for_anisotropic_walking_on_a_slope() -> None:
    land = slope_landscape("WALKING")
    towards = rm.travel_time(land, [(2, 0)], anisotropic=True, direction="towards")
    away = rm.travel_time(land, [(2, 0)], anisotropic=True, direction="from")
    # the facility is at the foot: going to it is downhill (-20 %), coming from it uphill
    down = 72.0 / tobler_factor(-0.2)
    up = 72.0 / tobler_factor(0.2)
    assert towards.seconds[2, 1] == pytest.approx(down)
    assert away.seconds[2, 1] == pytest.approx(up)
    assert towards.seconds[2, 29] == pytest.approx(29 * down)
    assert away.seconds[2, 29] == pytest.approx(29 * up)
    iso = rm.travel_time(land, [(2, 0)], direction="from")
    iso_back = rm.travel_time(land, [(2, 0)], direction="towards")
    np.testing.assert_array_equal(iso.seconds, iso_back.seconds)


def test_bicycle_model() -> None:
    bike = rm.BicycleModel()
    assert bike.speed_kmh(12.0, 0.0) == pytest.approx(12.0, rel=1e-12)
    for slope in (-0.3, -0.05, -0.01, 0.02, 0.1, 0.4):
        v = bike.speed_kmh(12.0, slope) / 3.6
        v0 = 12.0 / 3.6
        theta = math.atan(slope)
        g = 9.80665
        a = 0.5 * bike.air_density * bike.drag_area_m2
        power = v0 * (bike.mass_kg * g * bike.rolling_resistance + a * v0**2)
        residual = a * v**3 + bike.mass_kg * g * (
            math.sin(theta) + bike.rolling_resistance * math.cos(theta)) * v - power
        if v < 2 * v0 - 1e-9:
            assert abs(residual) < 1e-9 * power
        else:  # capped downhill: the free-rolling speed would be higher still
            assert residual < 0
    assert bike.speed_kmh(12.0, -0.3) == pytest.approx(24.0)
    assert bike.speed_kmh(12.0, 0.1) < bike.speed_kmh(12.0, 0.02) < 12.0


def test_a_barrier_really_blocks() -> None:
    shape = (20, 20)
    sc = scenario([(1, "grass", 4.0, "WALKING")])
    classes = np.ones(shape, dtype=np.int32)
    wall = np.zeros(shape, dtype=bool)
    rr = np.arange(20)
    wall[rr, rr] = True  # an 8-connected diagonal wall, the thinnest line a raster has
    wall[rr[:-1], rr[:-1] + 1] = True  # made 4-connected as all_touched rasterisation does
    land = rm.landscape_from_arrays(classes, sc, transform=grid(shape), crs=UTM, barrier=wall)
    for neighbours in (8, 16):
        res = rm.travel_time(land, [(15, 2)], neighbours=neighbours)
        upper = np.triu(np.ones(shape, dtype=bool), 1) & ~wall
        assert np.all(np.isinf(res.seconds[upper]))
        assert np.all(np.isinf(res.seconds[wall]))
    # open a gap: now the far side is reached, by a detour through the gap
    wall[0, 0] = wall[0, 1] = False
    land = rm.landscape_from_arrays(classes, sc, transform=grid(shape), crs=UTM, barrier=wall)
    res = rm.travel_time(land, [(15, 2)])
    assert np.isfinite(res.seconds[2, 15])
    assert res.seconds[2, 15] > 72.0 * 2 * 14


def test_barrier_lines_are_burned_touching_every_cell(tmp_path) -> None:
    import geopandas as gpd
    import rasterio
    from shapely.geometry import LineString

    shape = (30, 30)
    transform = grid(shape)
    lc = tmp_path / "lc.tif"
    with rasterio.open(lc, "w", driver="GTiff", height=30, width=30, count=1, dtype="uint8",
                       crs=UTM, transform=transform) as dst:
        dst.write(np.ones(shape, dtype=np.uint8), 1)
    sc = scenario([(1, "grass", 4.0, "WALKING")])
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (30, 30)
    river = gpd.GeoDataFrame(geometry=[LineString([(x0, y0 - 1.0), (x1, y1 + 37.0)])], crs=UTM)
    land = rm.read_landscape(lc, sc, barriers=[river.to_crs("EPSG:4326")])
    for neighbours in (8, 16):
        res = rm.travel_time(land, [(25, 3)], neighbours=neighbours)
        assert np.isinf(res.seconds[3, 25])


def test_inclusive_threshold_coverage_and_catchments() -> None:
    shape = (1, 12)
    sc = scenario([(1, "path", 4.0, "WALKING")])  # 100 m at 4 km/h = 90 s per cell
    land = rm.landscape_from_arrays(np.ones(shape, dtype=np.int32), sc, transform=grid(shape),
                                    crs=UTM)
    res = rm.travel_time(land, [(0, 0)], max_minutes=15)
    assert res.seconds[0, 10] == pytest.approx(900.0)
    assert np.isinf(res.seconds[0, 11])
    pop = np.arange(1.0, 13.0)[None, :]
    cov = rm.coverage_summary(res, pop, [15, 1.5])
    assert cov["covered"] == {"1.5": 3.0, "15": float(sum(range(1, 12)))}
    assert cov["unreachable"] == 12.0 and cov["population_total"] == 78.0
    polys = rm.catchment_polygons(res, land, pop, ["H"], [15]).to_crs(UTM)
    assert polys.loc[0, "cells"] == 11 and polys.loc[0, "population"] == 66.0
    assert polys.loc[0, "geometry"].area == pytest.approx(11 * 100 * 100, rel=1e-6)


def test_capacity_coverage_by_hand() -> None:
    shape = (1, 10)
    sc = scenario([(1, "path", 4.0, "WALKING")])  # 100 m at 4 km/h: 1.5 min per cell
    land = rm.landscape_from_arrays(np.ones(shape, dtype=np.int32), sc, transform=grid(shape),
                                    crs=UTM)
    pop = np.full(shape, 10.0)
    table = rm.capacity_coverage(land, [(0, 0), (0, 9)], [45.0, 100.0], pop, [9, 3],
                                 facility_ids=["A", "B"])
    got = {(r.threshold_minutes, r.id): (r.population_within, r.covered, r.capacity_left)
           for r in table.itertuples()}
    # 9 min (inclusive): A reaches cells 0..6 (70 people) and takes cells 0-3 and half of 4;
    # B reaches cells 3..9, where 5 + 50 people are left, and takes them all.
    assert got[(9.0, "A")] == (70.0, 45.0, 0.0)
    assert got[(9.0, "B")] == (55.0, 55.0, 45.0)
    # 3 min: A reaches cells 0..2, B cells 7..9: 30 people each
    assert got[(3.0, "A")] == (30.0, 30.0, 15.0)
    assert got[(3.0, "B")] == (30.0, 30.0, 70.0)
    assert rm.capacity_summary(table, 100.0) == {"3": {"covered": 60.0, "uncovered": 40.0},
                                                 "9": {"covered": 100.0, "uncovered": 0.0}}
    capped = rm.capacity_coverage(land, [(0, 0), (0, 9)], [45.0, 100.0], pop, [9],
                                  facility_ids=["A", "B"], max_minutes=3)
    assert capped.covered.tolist() == [30.0, 30.0]


def test_scenario_validation_reports_every_row() -> None:
    frame = pd.DataFrame({"class": ["1", "x", "1", "4"], "label": ["a", "b", "c", "d"],
                          "speed": ["5", "-1", "abc", "3"],
                          "mode": ["WALKING", "FLYING", "walking", "MOTORIZED"]})
    with pytest.raises(InputError) as err:
        rm.Scenario.from_frame(frame)
    found = {(p.row, p.field) for p in err.value.problems}
    assert found == {(2, "class"), (2, "speed"), (2, "mode"), (3, "class"), (3, "speed")}
    with pytest.raises(InputError) as err:
        rm.Scenario.from_frame(frame.drop(columns=["mode"]))
    assert err.value.problems[0].field == "mode"


def test_unknown_land_cover_classes_are_named() -> None:
    sc = scenario([(1, "grass", 4.0, "WALKING")])
    classes = np.array([[1, 2, 2], [1, 7, 255]])
    with pytest.raises(InputError) as err:
        rm.landscape_from_arrays(classes, sc, transform=grid((2, 3)), crs=UTM, nodata=255)
    reasons = [p.reason for p in err.value.problems]
    assert len(reasons) == 2 and "class 2 (2 cells)" in reasons[0] and "class 7" in reasons[1]
    with pytest.raises(InputError, match="not projected in metres"):
        rm.landscape_from_arrays(np.ones((2, 2)), sc, transform=grid((2, 2)), crs="EPSG:4326")


def test_facilities_outside_or_on_impassable_cells_are_refused() -> None:
    import geopandas as gpd

    shape = (10, 10)
    sc = scenario([(1, "grass", 4.0, "WALKING"), (9, "lake", 0.0, "WALKING")])
    classes = np.ones(shape, dtype=np.int32)
    classes[5, 5] = 9
    land = rm.landscape_from_arrays(classes, sc, transform=grid(shape), crs=UTM)
    t = land.transform
    pts = [t @ (5.5, 5.5), t @ (2.5, 3.5), t @ (20.0, 3.0)]
    facilities = gpd.GeoDataFrame(index=pd.Index(["lake", "ok", "far"], name="id"),
                                  geometry=gpd.points_from_xy(*zip(*pts)), crs=UTM)
    with pytest.raises(InputError) as err:
        rm.locate_facilities(land, facilities)
    assert [(p.row, p.code) for p in err.value.problems] == [(1, "impassable"), (3, "outside")]
    cells = rm.locate_facilities(land, facilities.iloc[[1]])
    assert cells.tolist() == [[3, 2]]
