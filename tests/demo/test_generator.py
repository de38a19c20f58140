"""Tests of the demo county generator: figures read back from the files it writes."""

from __future__ import annotations

import copy
import csv
import json
import math
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from realdata import SHARED_DATA
from shapely.geometry import Point, shape
from shapely.ops import unary_union

from tiercare.demo._population import apportion, round_to_total, split_column
from tiercare.demo.generator import (
    DemoFiles,
    check_calibration,
    generate_demo_files,
    load_calibration,
)
from tiercare.errors import InputError

GEOD = Geod(ellps="WGS84")
FILES = ("divisions.csv", "boundaries.geojson", "facilities.csv", "staff.csv",
         "medical_groups.csv", "group_members.csv", "roads.geojson", "dem.tif", "GENERATED.txt")
TOWNSHIP_CODES = {f"140725{n}000" for n in (100, 101, 102, 103, 104, 105, 106, 200, 201, 202,
                                            203, 205)}
CENTRE_TYPES = {"township_health_centre", "township_health_centre_central"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _level(code: str) -> int:
    """Significant digits of a 12-digit code: 2 province … 12 village (independent of tiercare)."""
    if code[9:] != "000":
        return 12
    if code[6:9] != "000":
        return 9
    if code[4:6] != "00":
        return 6
    return 4 if code[2:4] != "00" else 2


def _parent(code: str) -> str | None:
    level = _level(code)
    keep = {12: 9, 9: 6, 6: 4, 4: 2}.get(level)
    return None if keep is None else code[:keep].ljust(12, "0")


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def _active(row: dict[str, str]) -> bool:
    return not row["closed_on"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return generate_demo_files(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def divisions(demo: DemoFiles) -> dict[str, dict[str, str]]:
    return {row["code"]: row for row in _rows(demo.divisions)}


@pytest.fixture(scope="module")
def facilities(demo: DemoFiles) -> list[dict[str, str]]:
    return _rows(demo.facilities)


@pytest.fixture(scope="module")
def townships(demo: DemoFiles) -> dict[str, object]:
    features = json.loads(demo.boundaries.read_text(encoding="utf-8"))["features"]
    return {f["properties"]["code"]: shape(f["geometry"]) for f in features}


def test_all_files_written_and_labelled(demo: DemoFiles) -> None:
    assert sorted(p.name for p in demo.directory.iterdir()) == sorted(FILES)
    note = demo.readme.read_text(encoding="utf-8")
    assert "GENERATED" in note and "Shouyang" in note and "示范" in note
    assert "寿阳县（示范）" in demo.divisions.read_text(encoding="utf-8")


def test_division_tree_codes_and_counts(divisions: dict[str, dict[str, str]]) -> None:
    for code in divisions:
        assert len(code) == 12 and code.isdigit()
        parent = _parent(code)
        assert parent is None or parent in divisions, code
    assert divisions["140000000000"]["name"] and divisions["140700000000"]["name"]
    county = divisions["140725000000"]
    assert county["name"] == "寿阳县（示范）"
    by_level = Counter(_level(c) for c in divisions)
    assert by_level == {2: 1, 4: 1, 6: 1, 9: 12, 12: 173}
    assert {c for c in divisions if _level(c) == 9} == TOWNSHIP_CODES
    for code, row in divisions.items():
        if _level(code) == 9:
            suffix = "镇" if code[6] == "1" else "乡"
            assert row["name"].endswith(suffix)
        if _level(code) == 12:
            urban = row["urban_rural_class"] in {"111", "112", "121"}
            assert row["urban_rural_class"] in {"111", "112", "121", "210", "220"}
            assert row["name"].endswith("社区居民委员会" if urban else "村民委员会")
            assert (int(code[9:]) < 100) if urban else (200 <= int(code[9:]) < 400)


def test_population_figures_exact(divisions: dict[str, dict[str, str]]) -> None:
    county = divisions["140725000000"]
    assert int(county["population"]) == 200_352
    assert int(county["population_urban"]) == 90_524
    assert int(county["population_rural"]) == 109_828
    assert int(county["population_male"]) == 108_660
    assert int(county["population_female"]) == 91_692
    share = int(county["age_65_plus"]) / int(county["population"])
    assert abs(100 * share - 15.94) < 0.01


def test_population_sums_at_every_level(divisions: dict[str, dict[str, str]]) -> None:
    columns = ("population", "population_male", "population_female", "population_urban",
               "population_rural", "age_0_14", "age_15_64", "age_65_plus")
    children: dict[str, list[dict[str, str]]] = defaultdict(list)
    for code, row in divisions.items():
        if _level(code) >= 9:
            children[_parent(code) or ""].append(row)
        if row["population"]:
            total = int(row["population"])
            assert int(row["population_male"]) + int(row["population_female"]) == total
            assert int(row["population_urban"]) + int(row["population_rural"]) == total
            assert sum(int(row[c]) for c in ("age_0_14", "age_15_64", "age_65_plus")) == total
            assert all(int(row[c]) >= 0 for c in columns)
    for parent, rows in children.items():
        for column in columns:
            assert sum(int(r[column]) for r in rows) == int(divisions[parent][column]), (
                parent, column)
    seat_town = divisions["140725100000"]
    assert int(seat_town["population_urban"]) > 0.75 * 90_524
    for code, row in divisions.items():
        if _level(code) == 12:
            urban = row["urban_rural_class"].startswith("1")
            assert int(row["population_urban" if urban else "population_rural"]) == int(
                row["population"])
            assert int(row["population"]) >= 100


def test_geography(divisions: dict[str, dict[str, str]], townships: dict[str, object]) -> None:
    county = townships.pop("140725000000")
    try:
        assert set(townships) == TOWNSHIP_CODES
        area_km2 = abs(GEOD.geometry_area_perimeter(county)[0]) / 1e6
        assert 2_000 < area_km2 < 2_200
        centroid = county.centroid
        assert _metres((centroid.x, centroid.y), (113.18, 37.90)) < 15_000
        total = 0.0
        polygons = list(townships.values())
        for i, polygon in enumerate(polygons):
            assert polygon.is_valid and polygon.geom_type == "Polygon"
            total += polygon.area
            for other in polygons[i + 1:]:
                assert polygon.intersection(other).area < 1e-9
        assert abs(unary_union(polygons).area - county.area) < 1e-6 * county.area
        assert abs(total - county.area) < 1e-6 * county.area
        for code, row in divisions.items():
            if _level(code) in (9, 12):
                township = townships[code[:9] + "000"]
                assert township.contains(Point(float(row["lon"]), float(row["lat"]))), code
    finally:
        townships["140725000000"] = county


def test_facilities_inside_their_township(
    facilities: list[dict[str, str]], townships: dict[str, object]
) -> None:
    for row in facilities:
        township = townships[row["division_code"][:9] + "000"]
        assert township.contains(Point(float(row["lon"]), float(row["lat"]))), row["code"]


def test_medical_group(demo: DemoFiles, facilities: list[dict[str, str]]) -> None:
    groups = _rows(demo.medical_groups)
    assert len(groups) == 1 and groups[0]["kind"] == "county_medical_group"
    assert groups[0]["division_code"] == "140725000000"
    members = _rows(demo.group_members)
    by_code = {f["code"]: f for f in facilities}
    assert len(members) == 24 and len({m["facility_code"] for m in members}) == 24
    assert all(_active(by_code[m["facility_code"]]) for m in members)
    leads = [m for m in members if m["role"] == "lead"]
    assert [by_code[m["facility_code"]]["type"] for m in leads] == ["county_general_hospital"]
    assert groups[0]["lead_facility_code"] == leads[0]["facility_code"]
    types = Counter(by_code[m["facility_code"]]["type"] for m in members)
    assert types["county_tcm_hospital"] == types["county_mch_hospital"] == 1
    assert types["township_health_centre"] + types["township_health_centre_central"] == 12
    assert types["community_health_centre"] >= 1
    assert "cdc" not in types and "village_clinic" not in types
    assert sum(1 for f in facilities if f["type"] == "cdc" and _active(f)) == 1


def test_one_government_health_centre_per_township(facilities: list[dict[str, str]]) -> None:
    centres = [f for f in facilities if f["type"] in CENTRE_TYPES and _active(f)]
    assert sorted(f["division_code"][:9] for f in centres) == sorted(
        c[:9] for c in TOWNSHIP_CODES)
    assert all(f["government_run"] == "true" and f["ownership"] == "public" for f in centres)
    assert all(10 <= sum(int(f[k]) for k in f if k.startswith("beds_")) <= 60 for f in centres)


def test_closed_facilities_are_history(facilities: list[dict[str, str]]) -> None:
    closed = [f for f in facilities if not _active(f)]
    assert 3 <= len(closed) <= 6
    for row in closed:
        assert date.fromisoformat(row["opened_on"]) < date.fromisoformat(row["closed_on"])
        assert date.fromisoformat(row["closed_on"]) < date(2023, 1, 1)


def test_clinics_doctors_and_blank_spots(
    demo: DemoFiles, divisions: dict[str, dict[str, str]], facilities: list[dict[str, str]]
) -> None:
    clinics = [f for f in facilities if f["type"] == "village_clinic" and _active(f)]
    assert len(clinics) == 153
    villages = {c for c, r in divisions.items() if r["urban_rural_class"] in {"210", "220"}}
    clinic_villages = Counter(f["division_code"] for f in clinics)
    assert set(clinic_villages) <= villages and max(clinic_villages.values()) == 1
    without = sorted(villages - set(clinic_villages))
    centres = [f for f in facilities if _active(f)
               and f["type"] in CENTRE_TYPES | {"community_health_centre"}]

    def point(row: dict[str, str]) -> tuple[float, float]:
        return float(row["lon"]), float(row["lat"])

    exempt, remote = [], []
    for code in without:
        own = next(f for f in centres if f["type"] in CENTRE_TYPES
                   and f["division_code"][:9] == code[:9])
        if _metres(point(divisions[code]), point(own)) <= 2_000:
            exempt.append(code)
        else:
            remote.append(code)
            assert min(_metres(point(divisions[code]), point(c)) for c in centres) > 5_000
    assert 3 <= len(without) <= 6 and exempt and remote
    detail = demo.figures["blank_spot_detail"]
    assert sorted(detail["villages_exempt"]) == exempt
    assert sorted(detail["villages_not_exempt"]) == remote

    doctors = _rows(demo.staff)
    assert len(doctors) == 221 and len({d["code"] for d in doctors}) == 221
    by_clinic: dict[str, list[dict[str, str]]] = defaultdict(list)
    clinic_by_code = {f["code"]: f for f in clinics}
    for doctor in doctors:
        assert doctor["cadre"] == "village_doctor" and doctor["sex"] in {"M", "F"}
        clinic = clinic_by_code[doctor["facility_code"]]
        assert doctor["village_codes"].split(";") == [clinic["division_code"]]
        assert bool(doctor["qualification"]) == bool(doctor["registration_number"])
        by_clinic[doctor["facility_code"]].append(doctor)
    assert set(by_clinic) == set(clinic_by_code)
    unqualified = sorted(c for c, ds in by_clinic.items()
                         if not any(d["qualification"] for d in ds))
    assert 2 <= len(unqualified) <= 3
    assert unqualified == sorted(detail["clinics_without_qualified_doctor"])
    assert all(len(by_clinic[c]) == 1 for c in unqualified)
    assert demo.figures["blank_spots"] == {
        "counties_without_public_county_hospital": 0,
        "townships_without_government_health_centre": 0,
        "villages_without_clinic": len(without),
        "villages_without_clinic_exempt": len(exempt),
        "villages_without_clinic_not_exempt": len(remote),
        "clinics_without_qualified_doctor": len(unqualified),
    }


def test_resources_services_and_ratios(
    demo: DemoFiles, divisions: dict[str, dict[str, str]], facilities: list[dict[str, str]]
) -> None:
    active = [f for f in facilities if _active(f)]
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in active:
        by_type[row["type"]].append(row)

    def beds(row: dict[str, str]) -> int:
        return sum(int(v) for k, v in row.items() if k.startswith("beds_"))

    general, tcm, mch = (by_type[t][0] for t in ("county_general_hospital",
                                                  "county_tcm_hospital", "county_mch_hospital"))
    assert 450 <= beds(general) <= 550 and 180 <= beds(tcm) <= 220 and 90 <= beds(mch) <= 110
    assert set(general["centres"].split(";")) == {
        "chest_pain", "stroke", "trauma", "critical_maternal", "critical_neonatal"}
    assert set(mch["centres"].split(";")) == {"critical_maternal", "critical_neonatal"}
    assert "fever_clinic" in general["services"].split(";")
    for row in (general, mch, *by_type["township_health_centre_central"]):
        assert {"antenatal", "delivery"} <= set(row["services"].split(";"))
    centres = by_type["township_health_centre"] + by_type["township_health_centre_central"]
    for row in centres + by_type["community_health_centre"]:
        assert "vaccination" in row["services"].split(";")
    fever_rooms = sum("fever_consulting_room" in r["services"].split(";") for r in centres)
    assert 4 <= fever_rooms <= 8

    population = int(divisions["140725000000"]["population"])

    def total(column: str) -> int:
        return sum(int(r[column]) for r in active)

    physicians = total("staff_physician") + total("staff_assistant_physician")
    gps = total("staff_gp")
    assert 2.5 <= 1000 * physicians / population <= 3.5
    assert 2.5 <= 1000 * (physicians + gps) / population <= 3.5
    assert 2.5 <= 1000 * total("staff_nurse") / population <= 4.0
    assert 3.0 <= 10000 * gps / population <= 4.0
    supply = demo.figures["supply"]
    assert supply["physicians"] == physicians and supply["general_practitioners"] == gps
    assert supply["beds"] == sum(beds(r) for r in active)


def test_roads_connect_every_settlement(
    demo: DemoFiles, divisions: dict[str, dict[str, str]]
) -> None:
    features = json.loads(demo.roads.read_text(encoding="utf-8"))["features"]
    speeds = {"county": 60, "township": 40, "village": 25}
    graph = nx.Graph()
    county_graph = nx.Graph()
    for feature in features:
        props = feature["properties"]
        assert speeds[props["class"]] == props["speed_kmh"]
        assert feature["geometry"]["type"] == "LineString"
        coords = [tuple(c) for c in feature["geometry"]["coordinates"]]
        assert len(coords) >= 2
        graph.add_edge(coords[0], coords[-1])
        if props["class"] == "county":
            county_graph.add_edge(coords[0], coords[-1])
    assert Counter(f["properties"]["class"] for f in features).keys() == speeds.keys()
    assert nx.is_connected(graph)
    settlements = {code: (float(r["lon"]), float(r["lat"])) for code, r in divisions.items()
                   if _level(code) in (9, 12)}
    missing = [code for code, xy in settlements.items() if xy not in graph]
    assert missing == []
    seats = [settlements[c] for c in sorted(TOWNSHIP_CODES)]
    assert all(seat in county_graph for seat in seats)
    county_seat = settlements["140725100000"]
    assert all(nx.has_path(county_graph, county_seat, seat) for seat in seats)


def test_dem_covers_the_county(demo: DemoFiles, townships: dict[str, object]) -> None:
    west, south, east, north = townships["140725000000"].bounds
    with rasterio.open(demo.dem) as dataset:
        assert dataset.crs.to_epsg() == 4326
        assert dataset.dtypes[0] == "float32"
        bounds = dataset.bounds
        elevation = dataset.read(1)
    assert bounds.left < west and bounds.right > east
    assert bounds.bottom < south and bounds.top > north
    assert 900 < elevation.min() < 1_150 and 1_600 < elevation.max() < 1_900
    steps = max(np.abs(np.diff(elevation, axis=0)).max(), np.abs(np.diff(elevation, axis=1)).max())
    assert steps < 60.0  # about 73-93 m pixels: slopes stay below ~40°


def test_same_seed_same_bytes(demo: DemoFiles, tmp_path: Path) -> None:
    again = generate_demo_files(tmp_path / "again")
    for name in FILES:
        first = (demo.directory / name).read_bytes()
        assert first == (tmp_path / "again" / name).read_bytes(), name
    assert again.figures == demo.figures


@pytest.mark.parametrize("seed", [1, 20260101])
def test_other_seeds_keep_the_exact_figures(demo: DemoFiles, tmp_path: Path, seed: int) -> None:
    other = generate_demo_files(tmp_path, seed=seed)
    assert other.divisions.read_bytes() != demo.divisions.read_bytes()
    figures = other.figures
    for key in ("population", "population_urban", "population_rural", "population_male",
                "population_female", "age_65_plus", "townships", "villages",
                "medical_group_members", "village_clinics", "village_doctors"):
        assert figures[key] == demo.figures[key], key
    assert figures["blank_spots"] == demo.figures["blank_spots"]


def test_names_are_not_copied_from_the_real_lists(
    divisions: dict[str, dict[str, str]],
) -> None:
    source = SHARED_DATA / "admin" / "villages_target_counties.csv"
    townships = SHARED_DATA / "admin" / "townships_target_counties.csv"
    if not source.exists():
        pytest.skip(f"real division lists not found at {SHARED_DATA}")
    real = {r["name"] for r in _rows(source) if r["code"].startswith("140725")}
    real |= {r["name"] for r in _rows(townships) if r["code"].startswith("140725")}
    ours = [r["name"] for c, r in divisions.items() if _level(c) in (9, 12)]
    shared = [n for n in ours if n in real]
    assert len(shared) <= 0.1 * len(ours), shared


def test_calibration_matches_the_census_table() -> None:
    table = SHARED_DATA / "census" / "census2020_shanxi_plus_jiyuan_shuicheng.csv"
    if not table.exists():
        pytest.skip(f"census table not found at {SHARED_DATA}")
    row = next(r for r in _rows(table) if r["code"].startswith("140725"))
    population = load_calibration()["population"]
    assert population["total"] == int(row["人口数_合计"])
    assert population["male"] == int(row["人口数_男"])
    assert population["urban"] == int(row["城镇人口"])
    old = sum(int(float(row[f"{s}_{a}"])) for s in "男女"
              for a in ("65到69岁", "70到74岁", "75到79岁", "80到84岁", "85岁以上"))
    assert population["age_65_plus"] == old


def test_inconsistent_calibration_is_refused() -> None:
    calibration = copy.deepcopy(load_calibration())
    calibration["population"]["male"] += 1
    calibration["village_clinics"] += 1
    with pytest.raises(InputError) as caught:
        check_calibration(calibration)
    assert len(caught.value.problems) == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1e4), min_size=1, max_size=30), st.integers(0, 10**6))
def test_apportion_is_exact_and_near_proportional(weights: list[float], total: int) -> None:
    if sum(weights) <= 0:
        return
    parts = apportion(weights, total)
    assert parts.sum() == total and (parts >= 0).all()
    quota = np.asarray(weights) / sum(weights) * total
    assert (np.abs(parts - quota) < 1.0 + 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.floats(0.01, 1.0)), min_size=1, max_size=30),
       st.floats(0.0, 1.0))
def test_split_column_respects_rows_and_total(
    rows: list[tuple[int, float]], fraction: float
) -> None:
    totals = np.array([t for t, _ in rows])
    shares = np.array([s for _, s in rows])
    column_total = int(math.floor(fraction * totals.sum()))
    parts = split_column(totals, shares, column_total)
    assert parts.sum() == column_total
    assert (parts >= 0).all() and (parts <= totals).all()


def test_round_to_total_hand_example() -> None:
    assert round_to_total([0.4, 0.4, 0.2], 1).tolist() == [1, 0, 0]
    assert round_to_total([2.5, 2.5], 5, upper=[2, 3]).tolist() == [2, 3]
