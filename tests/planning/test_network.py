"""Road-network engine against brute force (NetworkX on explicitly split segments)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.planning.network import (
    Network,
    build_network,
    components,
    nearest_facility,
    snap,
    travel_time_matrix,
    travel_time_pairs,
)
from tiercare.planning.roads import RoadSegments

CRS = "EPSG:32649"


def _random_network(rng: np.random.Generator, n: int, m: int) -> Network:
    xy = rng.uniform(0, 1000, (n, 2)).round(1)
    u = rng.integers(0, n, m)
    v = rng.integers(0, n, m)
    keep = u != v
    u, v = u[keep], v[keep]
    length = np.hypot(*(xy[u] - xy[v]).T)
    speed = rng.choice([2.0, 5.0, 10.0, 20.0], len(u))
    t = length / speed
    kind = rng.integers(0, 5, len(u))  # 0: u->v only, 1: v->u only, else both
    tuv = np.where(kind == 1, np.inf, t)
    tvu = np.where(kind == 0, np.inf, t)
    return Network.from_arrays(xy, u=u, v=v, time_uv=tuv, time_vu=tvu, crs=CRS)


def _points(rng: np.random.Generator, net: Network, k: int) -> np.ndarray:
    """Random points: a third exactly on vertices, a third near a few shared segments."""
    pts = rng.uniform(-50, 1050, (k, 2)).round(1)
    kind = rng.random(k)
    on_node = kind < 0.35
    pts[on_node] = net.node_xy[rng.integers(0, net.n_nodes, on_node.sum())]
    on_seg = kind > 0.65
    seg = rng.integers(0, min(2, net.n_segments), on_seg.sum())
    f = rng.random(on_seg.sum())[:, None]
    a, b = net.node_xy[net.u[seg]], net.node_xy[net.v[seg]]
    pts[on_seg] = a + f * (b - a) + rng.normal(0, 3, (on_seg.sum(), 2))
    return pts


def _brute_force_times(net: Network, fac: np.ndarray, dem: np.ndarray) -> np.ndarray:
    """times[i, j] = seconds from demand j to facility i, by splitting segments in NetworkX."""
    fs, ds = snap(net, fac), snap(net, dem)
    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    along: dict[int, list[tuple[float, object]]] = {}
    for kind, s in (("f", fs), ("d", ds)):
        for i in range(len(s)):
            along.setdefault(int(s.segment[i]), []).append((float(s.frac[i]), (kind, i, "q")))
            g.add_edge((kind, i), (kind, i, "q"), weight=float(s.offroad_s[i]))
            g.add_edge((kind, i, "q"), (kind, i), weight=float(s.offroad_s[i]))

    def add(a: object, b: object, w: float) -> None:
        if np.isfinite(w) and (not g.has_edge(a, b) or g[a][b]["weight"] > w):
            g.add_edge(a, b, weight=w)

    for e in range(net.n_segments):
        stops = [(0.0, int(net.u[e]))] + sorted(along.get(e, []), key=lambda p: p[0]) \
            + [(1.0, int(net.v[e]))]
        for (fa, a), (fb, b) in zip(stops[:-1], stops[1:], strict=True):
            frac = fb - fa
            add(a, b, frac * net.time_uv[e] if frac > 0 else 0.0)
            add(b, a, frac * net.time_vu[e] if frac > 0 else 0.0)
    out = np.full((len(fac), len(dem)), np.inf)
    for j in range(len(dem)):
        lengths = nx.single_source_dijkstra_path_length(g, ("d", j))
        for i in range(len(fac)):
            out[i, j] = lengths.get(("f", i), np.inf)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 25), m=st.integers(1, 50),
       nf=st.integers(1, 5), nd=st.integers(1, 12))
def test_nearest_and_matrix_match_networkx(seed: int, n: int, m: int, nf: int, nd: int) -> None:
    rng = np.random.default_rng(seed)
    net = _random_network(rng, n, m)
    if net.n_segments == 0:
        return
    fac, dem = _points(rng, net, nf), _points(rng, net, nd)
    brute = _brute_force_times(net, fac, dem)  # facility x demand, demand -> facility
    res = nearest_facility(net, fac, dem)
    best = brute.min(axis=0)
    np.testing.assert_allclose(res.seconds, best, rtol=1e-9, atol=1e-9)
    reach = np.isfinite(best)
    assert np.all(res.facility[~reach] == -1)
    picked = brute[res.facility[reach], np.flatnonzero(reach)]
    np.testing.assert_allclose(picked, best[reach], rtol=1e-9, atol=1e-9)

    cutoff = float(np.nanmedian(np.where(np.isfinite(brute), brute, np.nan))) \
        if np.isfinite(brute).any() else 10.0
    m_to = travel_time_matrix(net, fac, dem, cutoff_s=cutoff, direction="to_origins")
    expected = brute <= cutoff
    got = np.zeros_like(expected)
    for i in range(len(fac)):
        got[i, m_to[i].indices] = True
        np.testing.assert_allclose(m_to[i].data, brute[i, m_to[i].indices], rtol=1e-9, atol=1e-9)
    # the cutoff is inclusive; allow pairs sitting within rounding of it
    near_edge = np.isclose(brute, cutoff, rtol=1e-12, atol=1e-9)
    assert np.array_equal(got | near_edge, expected | near_edge)

    # from_origins on the same instance: facility -> demand equals brute force on swapped roles
    brute_back = _brute_force_times(net, dem, fac).T  # facility x demand, facility -> demand
    oi, di, tt = travel_time_pairs(net, fac, dem, cutoff_s=np.inf)
    full = np.full(brute.shape, np.inf)
    full[oi, di] = tt
    np.testing.assert_allclose(full, brute_back, rtol=1e-9, atol=1e-9)
    back = nearest_facility(net, fac, dem, direction="from_facility")
    np.testing.assert_allclose(back.seconds, brute_back.min(axis=0), rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_snap_finds_nearest_segment_distance(seed: int) -> None:
    rng = np.random.default_rng(seed)
    net = _random_network(rng, int(rng.integers(2, 40)), int(rng.integers(1, 80)))
    if net.n_segments == 0:
        return
    pts = np.concatenate([_points(rng, net, 20), rng.uniform(-1e5, 1e5, (3, 2))])
    s = snap(net, pts)
    dists = shapely.distance(shapely.points(pts)[:, None], net.segment_lines[None, :])
    np.testing.assert_allclose(s.offroad_m, dists.min(axis=1), atol=1e-7)
    proj = net.node_xy[net.u[s.segment]] + s.frac[:, None] * (
        net.node_xy[net.v[s.segment]] - net.node_xy[net.u[s.segment]])
    np.testing.assert_allclose(np.hypot(*(pts - proj).T), s.offroad_m, atol=1e-7)


def _line() -> Network:
    # 0 --100 m-- 1 --100 m-- 2, 10 s per segment, segment 1->2 one-way
    return Network.from_arrays(np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]]),
                               u=[0, 1], v=[1, 2], time_uv=[10.0, 10.0],
                               time_vu=[10.0, np.inf], crs=CRS)


def test_point_on_node_has_no_offroad_time_and_partial_costs() -> None:
    net = _line()
    res = nearest_facility(net, np.array([[0.0, 0.0]]), np.array([[0.0, 0.0], [100.0, 0.0]]))
    assert res.seconds.tolist() == [0.0, 10.0]
    assert res.offroad_s.tolist() == [0.0, 0.0]
    # 36 m off the road at 5 km/h = 25.92 s, then 2.5 s along to vertex 0
    res = nearest_facility(net, np.array([[0.0, 0.0]]), np.array([[25.0, 36.0]]))
    assert res.seconds[0] == pytest.approx(25.92 + 2.5, abs=1e-9)


def test_one_way_direction_matters() -> None:
    net = _line()
    fac, dem = np.array([[0.0, 0.0]]), np.array([[200.0, 0.0]])
    assert nearest_facility(net, fac, dem).seconds[0] == np.inf  # 2 -> 1 is closed
    assert nearest_facility(net, fac, dem, direction="from_facility").seconds[0] == 20.0
    # inclusive cutoff
    m = travel_time_matrix(net, fac, dem, cutoff_s=20.0, direction="from_origins")
    assert m.nnz == 1 and m.data[0] == 20.0
    assert travel_time_matrix(net, fac, dem, cutoff_s=19.999).nnz == 0


def test_same_segment_points_travel_directly() -> None:
    net = Network.from_arrays(np.array([[0.0, 0.0], [1000.0, 0.0]]), u=[0], v=[1],
                              time_uv=[100.0], time_vu=[100.0], crs=CRS)
    res = nearest_facility(net, np.array([[400.0, 0.0]]), np.array([[500.0, 0.0]]))
    assert res.seconds[0] == pytest.approx(10.0)


def test_nearest_picks_best_of_several_on_same_segment() -> None:
    net = Network.from_arrays(np.array([[0.0, 0.0], [1000.0, 0.0]]), u=[0], v=[1],
                              time_uv=[100.0], time_vu=[100.0], crs=CRS)
    fac = np.array([[100.0, 0.0], [700.0, 0.0], [580.0, 0.0]])
    res = nearest_facility(net, fac, np.array([[500.0, 0.0], [150.0, 0.0]]))
    assert res.facility.tolist() == [2, 0]
    np.testing.assert_allclose(res.seconds, [8.0, 5.0])


def test_components_report_and_connect() -> None:
    # two pieces 30 m apart; facility on piece 0, demand on piece 1 is stranded
    lonlat = np.array([[113.0, 37.9], [113.001, 37.9], [113.00135, 37.9], [113.003, 37.9]])
    roads = RoadSegments(node_lonlat=lonlat, u=np.array([0, 2]), v=np.array([1, 3]),
                         length_m=np.array([88.0, 145.0]),
                         road_class=np.array(["county", "village"], dtype=object),
                         oneway=np.zeros(2, np.int8), speed_kmh=np.full(2, np.nan),
                         maxspeed_kmh=np.full(2, np.nan), source_row=np.array([1, 2]))
    net = build_network(roads, mode="driving")
    fac_xy = net.node_xy[[0]]
    dem_xy = net.node_xy[[3, 1]]
    rep = components(net, demand=dem_xy, population=np.array([70.0, 5.0]), facilities=fac_xy)
    assert rep.n_components == 2
    assert rep.stranded_population == 70.0
    assert nearest_facility(net, fac_xy, dem_xy).facility.tolist() == [-1, 0]
    joined = build_network(roads, mode="driving", connect_tolerance_m=50)
    assert components(joined).n_components == 1
    res = nearest_facility(joined, fac_xy, dem_xy)
    gap = np.hypot(*(net.node_xy[2] - net.node_xy[1]))
    expected = 88.0 / (45 / 3.6) + gap / (5 / 3.6) + 145.0 / (20 / 3.6)
    assert res.seconds[0] == pytest.approx(expected, rel=1e-9)


def test_bad_network_input() -> None:
    with pytest.raises(InputError):
        Network.from_arrays(np.zeros((2, 2)), u=[0], v=[5], time_uv=[1.0], time_vu=[1.0],
                            crs=CRS)
    with pytest.raises(InputError):
        travel_time_matrix(_line(), np.zeros((1, 2)), np.zeros((1, 2)), cutoff_s=-1)
