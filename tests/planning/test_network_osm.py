"""Hand-verifiable facts on real OpenStreetMap extracts (Andorra, Helsinki)."""

from __future__ import annotations

from functools import cache

import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely
from realdata import SHARED_DATA
from scipy.spatial import cKDTree

from tiercare.planning.access import coverage_table
from tiercare.planning.network import Network, build_network, nearest_facility, snap
from tiercare.planning.roads import read_osm

DATA = SHARED_DATA / "osm"
ANDORRA = DATA / "andorra.osm.pbf"
HELSINKI = DATA / "helsinki.osm.pbf"

needs_andorra = pytest.mark.skipif(not ANDORRA.exists(), reason=f"{ANDORRA} not present")
needs_helsinki = pytest.mark.skipif(not HELSINKI.exists(), reason=f"{HELSINKI} not present")


@cache
def _andorra() -> Network:
    return build_network(read_osm(ANDORRA), mode="driving")


@cache
def _nx_graph(net: Network) -> nx.DiGraph:
    g = nx.DiGraph()
    for a, b, tuv, tvu in zip(net.u, net.v, net.time_uv, net.time_vu, strict=True):
        for x, y, t in ((a, b, tuv), (b, a, tvu)):
            if np.isfinite(t) and (not g.has_edge(x, y) or g[x][y]["weight"] > t):
                g.add_edge(int(x), int(y), weight=float(t))
    return g


@needs_andorra
def test_andorra_roads_are_read() -> None:
    roads = read_osm(ANDORRA)
    assert 10_000 < roads.n_segments < 100_000
    assert {"primary", "secondary", "residential", "track"} <= set(roads.road_class)
    assert (roads.oneway != 0).any()
    # total length of the primary roads: Andorra's CG network is a few tens of km
    primary_km = roads.length_m[roads.road_class == "primary"].sum() / 1000
    assert 30 < primary_km < 200


@needs_andorra
def test_andorra_times_equal_networkx_and_own_location_is_zero() -> None:
    net = _andorra()
    rng = np.random.default_rng(3)
    fac_nodes = rng.choice(net.n_nodes, 4, replace=False)
    dem_nodes = rng.choice(net.n_nodes, 60, replace=False)
    fac, dem = net.node_xy[fac_nodes], net.node_xy[dem_nodes]
    res = nearest_facility(net, fac, np.concatenate([fac, dem]))
    assert res.seconds[:4].tolist() == [0.0] * 4  # a facility's own location: 0 minutes
    assert res.facility[:4].tolist() == [0, 1, 2, 3]
    g = _nx_graph(net).reverse()
    expected = nx.multi_source_dijkstra_path_length(g, set(fac_nodes.tolist()))
    want = np.array([expected.get(int(n), np.inf) for n in dem_nodes])
    np.testing.assert_allclose(res.seconds[4:], want, rtol=1e-9)


@needs_andorra
def test_andorra_offroad_part_walked_at_5_kmh() -> None:
    net = _andorra()
    length = np.hypot(*(net.node_xy[net.v] - net.node_xy[net.u]).T)
    for e in np.flatnonzero((length > 300) & np.isfinite(net.time_uv) & np.isfinite(net.time_vu)):
        a, b = net.node_xy[net.u[e]], net.node_xy[net.v[e]]
        normal = np.array([-(b - a)[1], (b - a)[0]]) / length[e]
        point = (a + b) / 2 + 100.0 * normal
        if snap(net, point[None, :]).segment[0] != e:
            continue
        res = nearest_facility(net, a[None, :], point[None, :])
        assert res.offroad_s[0] == pytest.approx(72.0)  # 100 m at 5 km/h
        assert res.seconds[0] <= 72.0 + net.time_vu[e] / 2 + 1e-9
        assert res.seconds[0] >= 72.0
        return
    pytest.fail("no long straight road found")


@needs_andorra
def test_andorra_point_across_the_river_takes_a_bridge() -> None:
    import osmium

    net = _andorra()
    tr = pyproj.Transformer.from_crs(4326, net.crs, always_xy=True)
    rivers, bridges = [], []
    for w in osmium.FileProcessor(str(ANDORRA), osmium.osm.NODE | osmium.osm.WAY) \
            .with_locations():
        if not w.is_way():
            continue
        t = w.tags
        is_river = t.get("waterway") == "river" and t.get("tunnel") != "yes"
        is_bridge = t.get("bridge") == "yes" and "highway" in t
        if is_river or is_bridge:
            xy = np.array([tr.transform(n.lon, n.lat) for n in w.nodes])
            (rivers if is_river else bridges).append(shapely.LineString(xy))
    river, bridge = shapely.union_all(rivers), shapely.union_all(bridges)
    crossing = np.flatnonzero(shapely.intersects(net.segment_lines, river))
    crossing_pts = shapely.intersection(net.segment_lines[crossing], river)
    # pairs of road vertices 20-120 m from the river, < 200 m apart, straight line crossing it
    # once, where no road crosses within 150 m of that spot: the trip must detour to a bridge
    dist = shapely.distance(shapely.points(net.node_xy), river)
    near = np.flatnonzero((dist > 20) & (dist < 120))
    pairs = cKDTree(net.node_xy[near]).query_pairs(200, output_type="ndarray")
    a, b = near[pairs[:, 0]], near[pairs[:, 1]]
    shapely.prepare(river)
    lines = shapely.linestrings(np.stack([net.node_xy[a], net.node_xy[b]], axis=1))
    hit = shapely.intersects(lines, river)
    a, b = a[hit], b[hit]
    cut = shapely.intersection(lines[hit], river)
    single = shapely.get_type_id(cut) == 0
    a, b, cut = a[single], b[single], cut[single]
    far = shapely.distance(cut[:, None], crossing_pts[None, :]).min(axis=1) > 150
    a, b = a[far], b[far]
    assert len(a) > 0
    g = _nx_graph(net)
    crossing_set = {(int(net.u[e]), int(net.v[e])) for e in crossing}
    crossing_set |= {(y, x) for x, y in crossing_set}
    checked = 0
    for x, y in zip(a[:40], b[:40], strict=True):
        res = nearest_facility(net, net.node_xy[[y]], net.node_xy[[x]])
        if not np.isfinite(res.seconds[0]):
            continue
        path = nx.dijkstra_path(g, int(x), int(y))
        assert res.seconds[0] == pytest.approx(nx.path_weight(g, path, "weight"), rel=1e-9)
        used = [(p, q) for p, q in zip(path[:-1], path[1:], strict=True)
                if (p, q) in crossing_set]
        assert used, "the route must cross the river"
        for p, q in used:
            seg = shapely.LineString([net.node_xy[p], net.node_xy[q]])
            assert shapely.distance(seg, bridge) < 1.0, "the river is crossed on a bridge"
        checked += 1
    assert checked >= 5


@needs_helsinki
def test_helsinki_walking_coverage_threshold_inclusive() -> None:
    net = build_network(read_osm(HELSINKI), mode="walking")
    driving = build_network(read_osm(HELSINKI), mode="driving")
    assert net.n_segments > driving.n_segments  # footways, steps and paths are walkable
    rng = np.random.default_rng(5)
    lo, hi = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    dem = lo + rng.random((300, 2)) * (hi - lo)
    fac = net.node_xy[rng.choice(net.n_nodes, 3, replace=False)]
    res = nearest_facility(net, fac, dem)
    reach = np.isfinite(res.seconds)
    assert reach.mean() > 0.9
    exact = float(np.sort(res.seconds[reach])[150])  # a threshold equal to a trip's time
    table = coverage_table(res.seconds, np.ones(300), [exact / 60.0])
    assert table.iloc[0, 1] == float((res.seconds <= exact).sum())
    assert table.iloc[0, 1] == float((res.seconds < exact).sum()) + 1.0
