"""Road layers, speed tables and point readers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from tiercare.errors import InputError
from tiercare.planning.geo import metric_crs_for, read_points
from tiercare.planning.network import build_network, nearest_facility
from tiercare.planning.roads import load_speed_table, read_road_lines, read_roads

UTM49 = "EPSG:32649"  # Shanxi


def _lines(tmp_path: Path, rows: list[dict], name: str = "roads.gpkg", crs: str = UTM49) -> Path:
    gdf = gpd.GeoDataFrame(rows, geometry=[r.pop("geometry") for r in rows], crs=crs)
    path = tmp_path / name
    gdf.to_file(path)
    return path


def test_packaged_speed_table_has_osm_and_chinese_grades() -> None:
    t = load_speed_table()
    for cls in ("motorway", "primary", "residential", "track", "national", "provincial",
                "county", "township", "village"):
        assert t.known(cls)
    assert t.canonical("国道") == "national" and t.canonical("X") == "county"
    assert np.isnan(t.speeds_for(["footway"], "driving")[0])
    assert t.speeds_for(["footway"], "walking")[0] == 5.0
    assert t.effective_from == dt.date(2024, 1, 1)


def test_speed_table_versions_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("version,effective_from,class,mode,speed_kmh\n"
                 "v1,2020-01-01,county,driving,40\n"
                 "v2,2030-01-01,county,driving,50\n")
    assert load_speed_table(p, on=dt.date(2025, 1, 1)).speeds[("county", "driving")] == 40.0
    assert load_speed_table(p, on=dt.date(2031, 1, 1)).speeds[("county", "driving")] == 50.0
    p.write_text("class,mode,speed_kmh\ncounty,flying,40\n,driving,-3\n")
    with pytest.raises(InputError) as err:
        load_speed_table(p)
    fields = {(q.row, q.field) for q in err.value.problems}
    assert fields == {(1, "mode"), (2, "class"), (2, "speed_kmh")}


def test_line_layer_with_chinese_grades_gives_length_over_speed(tmp_path: Path) -> None:
    # a 3 km county road (县道 given by its Chinese name) then 1 km of village road
    path = _lines(tmp_path, [
        {"grade": "县道", "geometry": shapely.LineString([(500000, 4200000), (503000, 4200000)])},
        {"grade": "village", "geometry": shapely.LineString([(503000, 4200000),
                                                             (503000, 4201000)])},
    ])
    roads = read_roads(path, class_field="grade")
    assert roads.n_segments == 2
    net = build_network(roads, mode="driving")
    # lengths are geodesic; UTM distorts by its scale factor (< 0.1 % here)
    res = nearest_facility(net, gpd.GeoSeries([shapely.Point(500000, 4200000)], crs=UTM49),
                           gpd.GeoSeries([shapely.Point(503000, 4201000)], crs=UTM49))
    assert res.seconds[0] == pytest.approx(3000 / (45 / 3.6) + 1000 / (20 / 3.6), rel=1e-3)
    walk = build_network(roads, mode="walking")
    assert walk.time_uv.sum() == pytest.approx(4000 / (5 / 3.6), rel=1e-3)


def test_speed_field_and_oneway(tmp_path: Path) -> None:
    path = _lines(tmp_path, [
        {"kmh": 36.0, "ow": "yes",
         "geometry": shapely.LineString([(500000, 4200000), (501000, 4200000)])},
    ])
    roads = read_road_lines(path, speed_field="kmh", oneway_field="ow")
    net = build_network(roads, mode="driving", use_class=False)
    assert np.isfinite(net.time_uv[0]) and net.time_vu[0] == np.inf
    assert net.time_uv[0] == pytest.approx(100.0, rel=1e-3)
    assert np.isfinite(build_network(roads, mode="walking", use_class=False).time_vu[0])


def test_bad_road_layers_list_every_row(tmp_path: Path) -> None:
    path = _lines(tmp_path, [
        {"kmh": "fast", "cls": "county",
         "geometry": shapely.LineString([(500000, 4200000), (501000, 4200000)])},
        {"kmh": "-5", "cls": "motorway_of_dreams",
         "geometry": shapely.LineString([(501000, 4200000), (502000, 4200000)])},
    ])
    with pytest.raises(InputError) as err:
        read_road_lines(path, speed_field="kmh")
    assert {(p.row, p.field) for p in err.value.problems} == {(1, "kmh"), (2, "kmh")}
    with pytest.raises(InputError) as err:
        build_network(read_road_lines(path, class_field="cls"))
    assert [(p.row, p.code) for p in err.value.problems] == [(2, "unknown_class")]
    with pytest.raises(InputError):
        read_road_lines(path, class_field="nope")


def test_read_points_csv_collects_every_problem(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("id,lon,lat,beds\nA,113.1,37.9,10\nA,abc,37.9,5\n,113.1,95,x\nB,200,37,1\n")
    with pytest.raises(InputError) as err:
        read_points(p, value_fields=["beds"])
    got = {(q.row, q.field, q.code) for q in err.value.problems}
    assert got == {(2, "id", "duplicate_id"), (2, "lon", "not_numeric"),
                   (3, "id", "missing_id"), (3, "lat", "out_of_range"),
                   (3, "beds", "not_numeric"), (4, "lon", "out_of_range")}


def test_read_points_vector_any_crs_to_wgs84(tmp_path: Path) -> None:
    lon, lat = 113.2, 37.9
    x, y = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    gdf = gpd.GeoDataFrame({"id": [7], "population": [120]},
                           geometry=[shapely.Point(x, y)], crs=3857)
    for name in ("d.geojson", "d.gpkg", "d.shp"):
        gdf.to_file(tmp_path / name)
        out = read_points(tmp_path / name, value_fields=["population"], kind="demand")
        assert out.crs.to_epsg() == 4326 and list(out.index) == ["7"]
        assert out.geometry.x.iloc[0] == pytest.approx(lon) and out.geometry.y.iloc[0] == \
            pytest.approx(lat)
        assert out["population"].iloc[0] == 120.0


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_read_points_refuses_gcj02_and_missing_crs(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    pd.DataFrame({"id": ["a"], "lon": [113.1], "lat": [37.9]}).to_csv(p, index=False)
    with pytest.raises(InputError) as err:
        read_points(p, datum="gcj02")
    assert err.value.problems[0].code == "gcj02_refused"
    gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.Point(1, 2)]).to_file(tmp_path / "n.shp")
    with pytest.raises(InputError):
        read_points(tmp_path / "n.shp")
    gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.LineString([(1, 2), (2, 3)])],
                     crs=4326).to_file(tmp_path / "l.geojson")
    with pytest.raises(InputError) as err:
        read_points(tmp_path / "l.geojson")
    assert err.value.problems[0].code == "not_point"


def test_metric_crs_is_utm_of_centre() -> None:
    assert metric_crs_for((113.0, 37.7, 113.4, 38.1)).to_epsg() == 32649
    assert metric_crs_for((-70.7, -33.6, -70.5, -33.4)).to_epsg() == 32719
    g = gpd.GeoSeries([shapely.Point(1.5, 42.5)], crs=4326).to_crs(3857)
    assert metric_crs_for(g).to_epsg() == 32631


def test_t_junctions_join_but_crossings_do_not(tmp_path: Path) -> None:
    x0, y0 = 500000.0, 4200000.0
    path = _lines(tmp_path, [
        {"c": "county", "geometry": shapely.LineString([(x0, y0), (x0 + 1000, y0)])},
        # ends on the middle of the first road: a T-junction
        {"c": "county", "geometry": shapely.LineString([(x0 + 400, y0), (x0 + 400, y0 + 300)])},
        # crosses the second road without a shared vertex: an overpass
        {"c": "county", "geometry": shapely.LineString([(x0 + 200, y0 + 150),
                                                       (x0 + 600, y0 + 150)])},
    ], name="t.geojson")
    from tiercare.planning.network import components

    net = build_network(read_road_lines(path, class_field="c"))
    assert net.n_segments == 4
    assert components(net).n_components == 2


def test_read_points_excel_bom_and_bad_encoding(tmp_path: Path) -> None:
    p = tmp_path / "villages.csv"
    p.write_text("id,lon,lat,population\n东村,113.1,37.9,820\n", encoding="utf-8-sig")
    out = read_points(p, value_fields=["population"], kind="demand")
    assert list(out.index) == ["东村"] and out["population"].iloc[0] == 820.0
    p.write_bytes("id,lon,lat\n东村,113.1,37.9\n".encode("gbk"))
    with pytest.raises(InputError) as err:
        read_points(p)
    assert "cannot read" in str(err.value)
