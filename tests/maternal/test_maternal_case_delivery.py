"""Where to deliver (pure): straight-line estimate against a haversine computed here, nearest
qualifying facility against brute force, the road-network path against hand-computed times,
and the validation of the case-rules file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.maternal.delivery import nearest_qualifying, straight_line_seconds
from tiercare.maternal.rules import DeliveryRule, load_case_rules
from tiercare.planning.network import Network

RULES = load_case_rules()
DELIVERY = RULES.delivery
EARTH_M = 6_371_008.8
LEVELS = ("village", "primary", "secondary", "tertiary")


def _haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(a))


def test_straight_line_matches_haversine_times_road_factor() -> None:
    a = np.array([[113.0, 37.8], [113.3, 38.0]])
    b = np.array([[113.1, 37.9], [112.9, 37.7], [113.3, 38.0]])
    got = straight_line_seconds(a, b, delivery=DELIVERY)
    for i, (lon1, lat1) in enumerate(a):
        for j, (lon2, lat2) in enumerate(b):
            expected = (_haversine_m(lon1, lat1, lon2, lat2) * DELIVERY.road_factor
                        / (DELIVERY.straight_line_speed_kmh / 3.6))
            # ellipsoid vs sphere: within 0.5 %
            assert got[i, j] == pytest.approx(expected, rel=5e-3, abs=1e-6)
    assert got[1, 2] == 0.0


facility_rows = st.lists(
    st.tuples(st.floats(112.8, 113.6), st.floats(37.6, 38.3), st.sampled_from(LEVELS),
              st.booleans(), st.booleans()), min_size=0, max_size=8)
village_rows = st.lists(st.tuples(st.floats(112.8, 113.6), st.floats(37.6, 38.3)),
                        min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(facility_rows, village_rows, st.sampled_from(["green", "yellow", "orange", "red",
                                                       "purple"]))
def test_nearest_qualifying_is_the_brute_force_nearest(facilities, villages, colour) -> None:
    fac = pd.DataFrame({
        "id": np.arange(100, 100 + len(facilities)),
        "lon": [f[0] for f in facilities], "lat": [f[1] for f in facilities],
        "level": [f[2] for f in facilities],
        "services": [["delivery"] if f[3] else [] for f in facilities],
        "centres": [["critical_maternal"] if f[4] else [] for f in facilities]})
    vil = pd.DataFrame({"code": [f"v{i}" for i in range(len(villages))],
                        "lon": [v[0] for v in villages], "lat": [v[1] for v in villages]})
    rule = DELIVERY.by_colour[colour]
    out = nearest_qualifying(vil, fac, rule, delivery=DELIVERY)
    speed = DELIVERY.straight_line_speed_kmh / 3.6
    for i, (vlon, vlat) in enumerate(villages):
        best_t, best_ids = math.inf, set()
        for k, (flon, flat, level, delivers, centre) in enumerate(facilities):
            ok = (level in rule.levels and (not rule.services or delivers)
                  and (not rule.centres or centre))
            if not ok:
                continue
            t = _haversine_m(vlon, vlat, flon, flat) * DELIVERY.road_factor / speed
            if t < best_t - 1e-3 * max(t, 1):
                best_t, best_ids = t, {100 + k}
            elif abs(t - best_t) <= 1e-2 * max(t, 1):
                best_ids.add(100 + k)
        if not best_ids:
            assert out.loc[i, "facility_id"] == -1 and math.isinf(out.loc[i, "minutes"])
        else:
            assert out.loc[i, "facility_id"] in best_ids
            assert out.loc[i, "minutes"] * 60 == pytest.approx(best_t, rel=5e-3)
            assert out.loc[i, "beyond_limit"] == (out.loc[i, "minutes"]
                                                  > DELIVERY.max_travel_minutes)


def test_road_network_path() -> None:
    crs = "EPSG:32649"
    to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    # a road along x at y = 4,200,000: vertices every 10 km, 20 m/s (72 km/h)
    xs = np.arange(0, 6) * 10_000.0 + 500_000.0
    nodes = np.column_stack([xs, np.full(len(xs), 4_200_000.0)])
    seg = np.arange(len(xs) - 1)
    net = Network.from_arrays(nodes, u=seg, v=seg + 1, time_uv=np.full(len(seg), 500.0),
                              time_vu=np.full(len(seg), 500.0), crs=crs)

    def lonlat(x: float) -> tuple[float, float]:
        return to_lonlat.transform(x, 4_200_000.0)

    fac = pd.DataFrame({"id": [1, 2], "lon": [lonlat(xs[0])[0], lonlat(xs[5])[0]],
                        "lat": [lonlat(xs[0])[1], lonlat(xs[5])[1]],
                        "level": ["tertiary", "secondary"], "services": [["delivery"]] * 2,
                        "centres": [[], ["critical_maternal"]]})
    vil = pd.DataFrame({"code": ["a", "b"], "lon": [lonlat(xs[1])[0], lonlat(xs[4])[0]],
                        "lat": [lonlat(xs[1])[1], lonlat(xs[4])[1]]})
    red = nearest_qualifying(vil, fac, DELIVERY.by_colour["red"], delivery=DELIVERY,
                             network=net)
    # only facility 1 is tertiary: 1 segment (500 s) from a, 4 segments (2000 s) from b
    assert red["facility_id"].tolist() == [1, 1]
    assert red["minutes"].to_numpy() == pytest.approx([500 / 60, 2000 / 60], abs=0.05)
    assert red["method"].tolist() == ["network", "network"]
    assert red["beyond_limit"].tolist() == [False, False]
    yellow = nearest_qualifying(vil, fac, DELIVERY.by_colour["yellow"], delivery=DELIVERY,
                                network=net)
    assert yellow["facility_id"].tolist() == [1, 2]
    assert yellow["minutes"].to_numpy() == pytest.approx([500 / 60, 500 / 60], abs=0.05)
    nothing = nearest_qualifying(vil, fac, DeliveryRule(("tertiary",), (), ("trauma",)),
                                 delivery=DELIVERY, network=net)
    assert nothing["facility_id"].tolist() == [-1, -1]


def test_case_rules_file_is_validated(tmp_path: Path) -> None:
    doc = json.loads((Path(__file__).resolve().parents[2] / "tiercare" / "maternal" / "data"
                      / "case_rules_2017.json").read_text(encoding="utf-8"))
    doc["grading_within_days"] = -1
    doc["delivery"]["road_factor"] = 0.5
    doc["delivery"]["by_colour"].pop("red")
    doc["follow_up_interval_days"] = {"red": 0}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_case_rules(path)
    fields = {p.field for p in exc.value.problems}
    assert {"grading_within_days", "delivery.road_factor", "delivery.by_colour",
            "follow_up_interval_days"} <= fields
    assert RULES.grading_within_days == 14
    assert RULES.interval_days("red", purple=True) == 7
    assert RULES.interval_days("yellow", purple=True) == RULES.follow_up_interval_days["purple"]
    assert RULES.interval_days("yellow", purple=False) is None


@pytest.mark.parametrize("module", ["tiercare.maternal.rules", "tiercare.maternal.delivery"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    outcome = doctest.testmod(importlib.import_module(module))
    assert outcome.attempted > 0 and outcome.failed == 0
