"""`tiercare plan raster` end to end on a small synthetic AccessMod project, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import LineString, Polygon
from typer.testing import CliRunner

from tiercare.cli import app
from tiercare.errors import InputError
from tiercare.planning import raster as rm

UTM = "EPSG:32631"
ROWS, COLS, CELL = 40, 60, 100.0
ORIGIN = (380000.0, 4720000.0)
TRANSFORM = Affine(CELL, 0.0, ORIGIN[0], 0.0, -CELL, ORIGIN[1])


def xy(row: float, col: float) -> tuple[float, float]:
    return ORIGIN[0] + col * CELL, ORIGIN[1] - row * CELL


def write_tif(path: Path, data: np.ndarray, transform: Affine, crs: str,
              nodata: float | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1],
                       count=1, dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data, 1)
    return path


def to_wgs84(geoms: list) -> gpd.GeoSeries:
    return gpd.GeoSeries(geoms, crs=UTM).to_crs("EPSG:4326")


@pytest.fixture()
def project(tmp_path: Path) -> dict[str, Path]:
    classes = np.ones((ROWS, COLS), dtype=np.uint8)
    classes[:, 30:] = 2  # forest in the east
    classes[0, :] = 255  # a nodata border row
    classes[20:25, 40:45] = 3  # a lake
    lc = write_tif(tmp_path / "lc.tif", classes, TRANSFORM, UTM, nodata=255)
    (tmp_path / "scenario.csv").write_text(
        "class,label,speed,mode\n1,Grass,4,WALKING\n2,Forest,2,WALKING\n3,Lake,0,WALKING\n"
        "1001,Main road,60,MOTORIZED\n1002,Track,20,BICYCLING\n", encoding="utf-8")
    road = LineString([xy(10.5, 0.5), xy(10.5, 59.5)])
    track = LineString([xy(5.5, 20.5), xy(35.5, 20.5)])
    roads = gpd.GeoDataFrame({"cls": [1001, 1002]}, geometry=to_wgs84([road, track]))
    roads.to_file(tmp_path / "roads.geojson", driver="GeoJSON")
    wall = Polygon([xy(30, 0), xy(30, 20), xy(31, 20), xy(31, 0)])
    gpd.GeoDataFrame(geometry=to_wgs84([wall])).to_file(tmp_path / "barriers.gpkg",
                                                        driver="GPKG")
    # DEM in geographic coordinates, rising to the east
    lon0, lat0 = to_wgs84([LineString([xy(-5, -5), xy(45, 65)])]).iloc[0].coords[0]
    lon1, lat1 = to_wgs84([LineString([xy(-5, -5), xy(45, 65)])]).iloc[0].coords[1]
    dem_shape = (120, 160)
    dem_t = Affine((lon1 - lon0) / dem_shape[1], 0, lon0, 0, (lat1 - lat0) / dem_shape[0], lat0)
    dem = np.tile(np.linspace(500, 900, dem_shape[1], dtype=np.float32), (dem_shape[0], 1))
    dem_path = write_tif(tmp_path / "dem.tif", dem, dem_t, "EPSG:4326")
    # population on a finer grid (50 m), 1 person per fine cell
    pop = np.ones((ROWS * 2, COLS * 2), dtype=np.float32)
    pop_path = write_tif(tmp_path / "pop.tif", pop,
                         Affine(CELL / 2, 0, ORIGIN[0], 0, -CELL / 2, ORIGIN[1]), UTM)
    pa, pb = to_wgs84([LineString([xy(10.5, 5.5), xy(30.5, 50.5)])]).iloc[0].coords
    (tmp_path / "facilities.csv").write_text(
        f"id,lon,lat,beds\nA,{pa[0]},{pa[1]},500\nB,{pb[0]},{pb[1]},300\n",
        encoding="utf-8")
    return {"lc": lc, "scenario": tmp_path / "scenario.csv",
            "roads": tmp_path / "roads.geojson", "barriers": tmp_path / "barriers.gpkg",
            "dem": dem_path, "pop": pop_path, "facilities": tmp_path / "facilities.csv",
            "out": tmp_path / "out"}


def base_args(p: dict[str, Path]) -> list[str]:
    return ["plan", "raster", "--landcover", str(p["lc"]), "--scenario", str(p["scenario"]),
            "--facilities", str(p["facilities"]), "--out", str(p["out"])]


def test_roads_are_burned_over_land_cover(project: dict[str, Path]) -> None:
    land = rm.read_landscape(project["lc"], project["scenario"], roads=project["roads"],
                             road_class_field="cls", barriers=[project["barriers"]],
                             dem=project["dem"])
    assert np.all(land.classes[10, :] == 1001)  # roads win over grass and forest
    assert land.classes[10, 20] == 1001  # the faster road wins the crossing
    assert np.all(land.classes[6:10, 20] == 1002)
    assert land.speed_kmh[10, 5] == 60.0 and land.speed_kmh[15, 5] == 4.0
    assert np.all(land.barrier[30, 0:20]) and not land.barrier[28, 5]
    assert np.all(land.speed_kmh[30, 0:20] == 0.0)
    assert np.all(land.classes[0, :] == -1)
    # the DEM was warped onto the grid: rising eastwards by ~6.4 m per 100 m cell
    step = np.diff(land.elevation[20, 5:55])
    assert np.all(step > 4) and np.all(step < 9)


def test_cli_end_to_end(project: dict[str, Path]) -> None:
    args = base_args(project) + [
        "--roads", str(project["roads"]), "--road-class-field", "cls",
        "--barriers", str(project["barriers"]), "--dem", str(project["dem"]),
        "--mode", "anisotropic", "--direction", "towards", "--neighbours", "16",
        "--max-minutes", "90", "--population", str(project["pop"]),
        "--thresholds", "15,30,60", "--capacity-field", "beds"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    out = project["out"]
    with rasterio.open(out / "travel_time.tif") as src:
        assert src.dtypes[0] == "float32" and src.nodata == rm.TRAVEL_TIME_NODATA
        tt = src.read(1)
    with rasterio.open(out / "nearest.tif") as src:
        near = src.read(1)
        ids = json.loads(src.tags()["facility_ids"])
    assert ids == ["A", "B"]
    assert tt[10, 5] == 0.0 and near[10, 5] == 0
    assert tt[30, 50] == 0.0 and near[30, 50] == 1
    assert np.all(tt[0, :] == rm.TRAVEL_TIME_NODATA) and np.all(near[0, :] == -1)
    assert np.all(tt[20:25, 40:45] == rm.TRAVEL_TIME_NODATA)  # lake
    reached = tt != rm.TRAVEL_TIME_NODATA
    assert np.all(tt[reached] <= 90.0) and np.all((near >= 0) == reached)
    # along the road (60 km/h, gentle slope) 5.4 km takes a few minutes
    assert 4.0 < tt[10, 59] < 8.0
    coverage = json.loads((out / "coverage.json").read_text())
    assert coverage == summary["coverage"]
    assert coverage["population_total"] == pytest.approx(ROWS * COLS * 4)
    assert coverage["thresholds"] == [15, 30, 60]
    covered = [coverage["covered"][k] for k in ("15", "30", "60")]
    assert covered == sorted(covered)
    pop_cells = 4.0
    assert coverage["unreachable"] == pytest.approx(pop_cells * (~reached).sum())
    catch = gpd.read_file(out / "catchments.gpkg")
    assert len(catch) == 6 and catch.crs.to_epsg() == 4326
    c60 = catch[catch.threshold_minutes == 60].set_index("facility_id")
    assert c60.population.sum() == pytest.approx(coverage["covered"]["60"])
    area = c60.to_crs(UTM).area
    assert np.allclose(area, c60.cells * CELL * CELL, rtol=1e-6)
    cap = pd.read_csv(out / "capacity.csv")
    assert list(cap.columns) == ["threshold_minutes", "order", "id", "capacity",
                                 "population_within", "covered", "capacity_left"]
    assert len(cap) == 6 and np.all(cap.covered <= cap.capacity + 1e-9)
    assert coverage["capacity"]["60"]["covered"] == pytest.approx(
        cap[cap.threshold_minutes == 60].covered.sum())


def run_bad(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    return result.output


def test_cli_bad_inputs_exit_2(project: dict[str, Path], tmp_path: Path) -> None:
    base = base_args(project)
    assert "needs --dem" in run_bad(base + ["--mode", "anisotropic"])
    assert "neighbours" in run_bad(base + ["--neighbours", "12"])
    assert "threshold" in run_bad(base + ["--population", str(project["pop"]),
                                          "--thresholds", "15,abc"])
    assert "capacity" in run_bad(base + ["--capacity-field", "beds"])
    bad_scenario = tmp_path / "bad.csv"
    bad_scenario.write_text("class,label,speed,mode\n1,Grass,-4,WALKING\n2,F,2,FLYING\n")
    out = run_bad(base[:5] + [str(bad_scenario)] + base[6:])
    assert "row 1" in out and "speed" in out and "row 2" in out and "mode" in out
    small = tmp_path / "small.csv"
    small.write_text("class,label,speed,mode\n1,Grass,4,WALKING\n")
    out = run_bad(base[:5] + [str(small)] + base[6:])
    assert "class 2" in out and "class 3" in out
    bad_roads = gpd.read_file(project["roads"])
    bad_roads["cls"] = [1001, 77]
    bad_roads.to_file(tmp_path / "bad_roads.geojson", driver="GeoJSON")
    out = run_bad(base + ["--roads", str(tmp_path / "bad_roads.geojson"),
                          "--road-class-field", "cls"])
    assert "row 2" in out and "77" in out
    far = tmp_path / "far.csv"
    far.write_text("id,lon,lat\nX,100.0,30.0\n")
    out = run_bad(base[:7] + [str(far)] + base[8:])
    assert "outside" in out
    with pytest.raises(InputError, match="no CRS"):
        rm.read_landscape(write_tif(tmp_path / "nocrs.tif", np.ones((3, 3), np.uint8),
                                    TRANSFORM, None), project["scenario"])


def test_dem_inside_a_one_file_zip_and_the_example_scenario(project: dict[str, Path],
                                                           tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "dem.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(project["dem"], "dem.tif")
    direct = rm.read_landscape(project["lc"], project["scenario"], dem=project["dem"])
    zipped = rm.read_landscape(project["lc"], project["scenario"], dem=archive)
    np.testing.assert_array_equal(direct.elevation, zipped.elevation)
    example = rm.read_scenario(rm.EXAMPLE_SCENARIO)
    assert example.get(6).speed_kmh == 0.0
    assert {c.mode for c in example.classes} == set(rm.TravelMode)
