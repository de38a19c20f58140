"""``tiercare plan access`` end to end: outputs on a hand-built river town, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from realdata import SHARED_DATA
from typer.testing import CliRunner

from tiercare.cli import app

UTM = "EPSG:32649"
DATA = SHARED_DATA / "osm"
runner = CliRunner()


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(x, y)


@pytest.fixture()
def river_town(tmp_path: Path) -> Path:
    """Two county roads on either bank of a river (y = 0 and y = 120) and one bridge at x = 1500.

    Everything at 36 km/h (10 m/s): the road class is 'county' with a custom speed table.
    """
    x0, y0 = 500_000.0, 4_200_000.0
    roads = gpd.GeoDataFrame(
        {"grade": ["县道", "county", "county"]},
        geometry=[shapely.LineString([(x0, y0), (x0 + 2000, y0)]),
                  shapely.LineString([(x0, y0 + 120), (x0 + 2000, y0 + 120)]),
                  shapely.LineString([(x0 + 1500, y0), (x0 + 1500, y0 + 120)])], crs=UTM)
    roads.to_file(tmp_path / "roads.geojson")
    (tmp_path / "speeds.csv").write_text("class,aliases,mode,speed_kmh\ncounty,县道,,36\n"
                                         "offroad,,,5\n", encoding="utf-8")
    pts = {"H": (x0 + 500, y0)}
    pd.DataFrame([{"id": k, "lon": _lonlat(*v)[0], "lat": _lonlat(*v)[1], "beds": 30}
                  for k, v in pts.items()]).to_csv(tmp_path / "fac.csv", index=False)
    demand = {"same": (x0 + 500, y0), "across": (x0 + 500, y0 + 120),
              "off": (x0 + 1000, y0 - 50), "far": (x0 + 9000, y0 + 5000)}
    pd.DataFrame([{"id": k, "lon": _lonlat(*v)[0], "lat": _lonlat(*v)[1], "population": 100 * i,
                   "township": "north" if k == "across" else "south"}
                  for i, (k, v) in enumerate(demand.items(), start=1)]
                 ).to_csv(tmp_path / "dem.csv", index=False)
    return tmp_path


def _run(d: Path, *extra: str) -> object:
    return runner.invoke(app, ["plan", "access", "--roads", str(d / "roads.geojson"),
                               "--class-field", "grade", "--speeds", str(d / "speeds.csv"),
                               "--facilities", str(d / "fac.csv"), "--demand",
                               str(d / "dem.csv"), "--out", str(d / "out"), *extra])


def test_cli_outputs_on_river_town(river_town: Path) -> None:
    res = _run(river_town, "--thresholds", "5,10", "--division-field", "township",
               "--method", "2sfca", "--supply-field", "beds", "--catchment", "10")
    assert res.exit_code == 0, res.output
    out = river_town / "out"
    dem = pd.read_csv(out / "demand.csv", keep_default_na=False)
    assert list(dem.columns) == ["id", "nearest_facility", "minutes", "score"]
    row = dem.set_index("id")
    assert float(row.loc["same", "minutes"]) == 0.0
    # across the river: 1000 m east, the 120 m bridge, 1000 m back west, at 10 m/s
    assert float(row.loc["across", "minutes"]) == pytest.approx(2120 / 10 / 60, rel=2e-3)
    # 50 m off the road at 5 km/h (36 s) then 500 m along it (50 s)
    assert float(row.loc["off", "minutes"]) == pytest.approx((36 + 50) / 60, rel=2e-3)
    # 'far' snaps to the end of the north road 9 km away: reachable but beyond 10 minutes
    assert float(row.loc["far", "minutes"]) > 60
    cov = json.loads((out / "coverage.json").read_text())
    assert cov["thresholds"] == [5, 10]
    assert cov["population_total"] == 1000.0
    assert cov["covered"] == {"5": 600.0, "10": 600.0}  # all but 'far'
    # 2SFCA, 10-min catchment: 30 beds shared by the 600 people within reach
    assert row["score"].astype(float).tolist() == pytest.approx([0.05, 0.05, 0.05, 0.0])
    assert cov["unreachable"] == 0.0
    assert cov["by_division"]["north"]["population"] == 200.0
    fac = pd.read_csv(out / "facilities.csv")
    assert list(fac.columns) == ["id", "population_within_5", "population_within_10"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    json.loads(res.stdout)  # the summary printed on stdout is JSON


@pytest.mark.parametrize("extra, message", [
    (["--mode", "flying"], "mode"),
    (["--thresholds", "15,abc"], "thresholds"),
    (["--method", "2sfca"], "supply-field"),
    (["--speed-field", "kmh"], "not both"),
])
def test_cli_bad_options_exit_2(river_town: Path, extra: list[str], message: str) -> None:
    res = _run(river_town, *extra)
    assert res.exit_code == 2
    assert message in res.output


def test_cli_bad_points_exit_2_naming_row_and_field(river_town: Path) -> None:
    (river_town / "dem.csv").write_text("id,lon,lat,population\nv1,113.1,37.9,10\n"
                                        "v2,east,37.9,5\nv2,113.1,37.9,-1\n")
    res = _run(river_town)
    assert res.exit_code == 2
    for text in ("row 2, field 'lon'", "row 3, field 'id'", "row 3, field 'population'"):
        assert text in res.output


def test_cli_line_layer_needs_speed_or_class(river_town: Path) -> None:
    res = runner.invoke(app, ["plan", "access", "--roads", str(river_town / "roads.geojson"),
                              "--facilities", str(river_town / "fac.csv"), "--demand",
                              str(river_town / "dem.csv"), "--out", str(river_town / "o")])
    assert res.exit_code == 2 and "--speed-field or --class-field" in res.output


@pytest.mark.skipif(not (DATA / "andorra.osm.pbf").exists(), reason="Andorra extract absent")
def test_cli_on_andorra_osm(tmp_path: Path) -> None:
    from tiercare.planning.roads import read_osm

    roads = read_osm(DATA / "andorra.osm.pbf")
    ll = roads.node_lonlat[roads.u[roads.road_class == "primary"][[0, 500]]]
    pd.DataFrame({"id": ["H1", "H2"], "lon": ll[:, 0], "lat": ll[:, 1],
                  "type": ["hospital", "clinic"], "beds": [80, 10]}).to_csv(tmp_path / "f.csv",
                                                                           index=False)
    rng = np.random.default_rng(0)
    pts = roads.node_lonlat[rng.choice(len(roads.node_lonlat), 50)]
    pd.DataFrame({"id": ["H1-site"] + [f"v{i}" for i in range(50)],
                  "lon": np.r_[ll[0, 0], pts[:, 0]], "lat": np.r_[ll[0, 1], pts[:, 1]],
                  "population": 10}).to_csv(tmp_path / "d.csv", index=False)
    res = runner.invoke(app, ["plan", "access", "--roads", str(DATA / "andorra.osm.pbf"),
                              "--facilities", str(tmp_path / "f.csv"), "--demand",
                              str(tmp_path / "d.csv"), "--method", "e2sfca", "--supply-field",
                              "beds", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    dem = pd.read_csv(tmp_path / "out" / "demand.csv").set_index("id")
    assert dem.loc["H1-site", "minutes"] == 0.0 and dem.loc["H1-site", "nearest_facility"] == "H1"
    cov = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert set(cov["by_type"]) == {"hospital", "clinic"}
    assert cov["covered"]["15"] <= cov["covered"]["30"] <= cov["covered"]["60"] <= 510


def test_population_raster_as_demand(river_town: Path) -> None:
    """A 3 × 2 grid of 100 m cells south of the road: each populated cell is a demand point."""
    import rasterio
    from rasterio.transform import from_origin

    x0, y0 = 500_000.0, 4_200_000.0
    people = np.array([[10, 0, 5], [-9999, 20, 0]], dtype="float32")
    tif = river_town / "pop.tif"
    with rasterio.open(tif, "w", driver="GTiff", height=2, width=3, count=1, dtype="float32",
                       crs=UTM, transform=from_origin(x0 + 400, y0, 100, 100),
                       nodata=-9999) as dst:
        dst.write(people, 1)
    res = runner.invoke(app, ["plan", "access", "--roads", str(river_town / "roads.geojson"),
                              "--class-field", "grade", "--speeds",
                              str(river_town / "speeds.csv"), "--facilities",
                              str(river_town / "fac.csv"), "--demand", str(tif),
                              "--thresholds", "1,5", "--out", str(river_town / "out")])
    assert res.exit_code == 0, res.output
    dem = pd.read_csv(river_town / "out" / "demand.csv").set_index("id")
    assert sorted(dem.index) == ["r0c0", "r0c2", "r1c1"]  # no-data and empty cells left out
    cov = json.loads((river_town / "out" / "coverage.json").read_text())
    assert cov["population_total"] == 35.0
    # cell r0c0 is centred 50 m south of the road, 50 m west of the hospital: 50 m on foot at
    # 5 km/h (36 s) then 50 m by road at 10 m/s (5 s)
    assert float(dem.loc["r0c0", "minutes"]) == pytest.approx(41 / 60, rel=2e-3)
    # r1c1: 150 m on foot (108 s) + 50 m by road (5 s): outside 1 minute, inside 5
    assert float(dem.loc["r1c1", "minutes"]) == pytest.approx(113 / 60, rel=2e-3)
    assert cov["covered"] == {"1": 15.0, "5": 35.0}
    bad = runner.invoke(app, ["plan", "access", "--roads", str(river_town / "roads.geojson"),
                              "--class-field", "grade", "--speeds",
                              str(river_town / "speeds.csv"), "--facilities",
                              str(river_town / "fac.csv"), "--demand", str(tif),
                              "--population-field", "pop", "--out", str(river_town / "o2")])
    assert bad.exit_code == 2 and "population_field" in bad.output
