"""Raster travel time on real data: Andorra's SRTM tile and OpenStreetMap roads."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling
from realdata import SHARED_DATA
from skimage.graph import MCP_Geometric

from tiercare.planning import raster as rm

DATA = SHARED_DATA / "osm"
DEM = DATA / "N42E001.hgt.zip"
PBF = DATA / "andorra.osm.pbf"
UTM = "EPSG:32631"
CELL = 100.0

# class codes of this test's scenario (land cover 1-2, roads 1001-1005)
ROAD_CODES = {
    "primary": 1001, "primary_link": 1001, "trunk": 1001,
    "secondary": 1002, "secondary_link": 1002,
    "tertiary": 1003, "unclassified": 1003, "residential": 1003, "service": 1003,
    "living_street": 1003, "road": 1003,
    "track": 1004,
    "path": 1005, "footway": 1005, "steps": 1005, "bridleway": 1005, "pedestrian": 1005,
}
SCENARIO = pd.DataFrame(
    [("1", "Meadow and forest", "4", "WALKING"), ("2", "Alpine (above 2,400 m)", "2.5",
                                                   "WALKING"),
     ("1001", "Primary road", "60", "MOTORIZED"), ("1002", "Secondary road", "50", "MOTORIZED"),
     ("1003", "Local road", "30", "MOTORIZED"), ("1004", "Track", "15", "MOTORIZED"),
     ("1005", "Path", "5", "WALKING")], columns=["class", "label", "speed", "mode"])

# WGS84 (lon, lat) of hand-checkable places
HOSPITAL = (1.5397, 42.5097)  # Hospital Nostra Senyora de Meritxell, Escaldes-Engordany
PAS_DE_LA_CASA = (1.7333, 42.5428)  # ~30 km by the CG-2 over the Port d'Envalira (2,408 m)
SANT_JULIA = (1.4912, 42.4636)  # ~7 km down the CG-1
COMA_PEDROSA = (1.4444, 42.5917)  # highest summit (2,942 m), no road


@pytest.fixture(scope="module")
def andorra(tmp_path_factory: pytest.TempPathFactory) -> tuple[rm.Landscape, np.ndarray]:
    if not (DEM.exists() and PBF.exists()):
        pytest.skip(f"real data not found in {DATA}")
    from tiercare.planning.roads import read_osm

    roads = read_osm(PBF).to_geodataframe()
    roads = roads[roads.road_class.isin(list(ROAD_CODES))].copy()
    roads["code"] = roads.road_class.map(ROAD_CODES)
    left, bottom, right, top = roads.to_crs(UTM).total_bounds
    left, top = np.floor(left / CELL) * CELL - 1000, np.ceil(top / CELL) * CELL + 1000
    cols = int(np.ceil((right + 1000 - left) / CELL))
    rows = int(np.ceil((top - (bottom - 1000)) / CELL))
    transform = Affine(CELL, 0, left, 0, -CELL, top)
    dem_url = f"zip://{DEM}!N42E001.hgt"
    elevation = np.full((rows, cols), np.nan)
    with rasterio.open(dem_url) as src:
        rasterio.warp.reproject(rasterio.band(src, 1), elevation, dst_transform=transform,
                                dst_crs=UTM, dst_nodata=np.nan, resampling=Resampling.bilinear)
    classes = np.where(elevation >= 2400, 2, 1).astype(np.uint8)
    tmp = tmp_path_factory.mktemp("andorra")
    with rasterio.open(tmp / "lc.tif", "w", driver="GTiff", height=rows, width=cols, count=1,
                       dtype="uint8", crs=UTM, transform=transform) as dst:
        dst.write(classes, 1)
    land = rm.read_landscape(tmp / "lc.tif", rm.Scenario.from_frame(SCENARIO), roads=roads,
                             road_class_field="code", dem=dem_url)
    facility = gpd.GeoDataFrame(index=pd.Index(["meritxell"], name="id"),
                                geometry=gpd.points_from_xy([HOSPITAL[0]], [HOSPITAL[1]]),
                                crs="EPSG:4326")
    return land, rm.locate_facilities(land, facility, anisotropic=True)


def cell_of(land: rm.Landscape, lonlat: tuple[float, float]) -> tuple[int, int]:
    pt = gpd.GeoSeries(gpd.points_from_xy([lonlat[0]], [lonlat[1]]), crs="EPSG:4326")
    x, y = pt.to_crs(land.crs).iloc[0].coords[0]
    t = land.transform
    return int((y - t.f) // t.e), int((x - t.c) // t.a)


def test_dem_and_roads_were_read(andorra: tuple[rm.Landscape, np.ndarray]) -> None:
    land, _ = andorra
    summit = cell_of(land, COMA_PEDROSA)
    window = land.elevation[summit[0] - 3:summit[0] + 4, summit[1] - 3:summit[1] + 4]
    assert 2800 < np.nanmax(window) < 2960  # Coma Pedrosa, 2,942 m
    assert 900 < land.elevation[cell_of(land, SANT_JULIA)] < 1100
    assert (land.classes >= 1001).sum() > 3000  # burned road cells
    r, c = cell_of(land, PAS_DE_LA_CASA)
    assert np.any(land.classes[r - 2:r + 3, c - 2:c + 3] >= 1001)  # the village has streets


def test_travel_times_are_plausible(andorra: tuple[rm.Landscape, np.ndarray]) -> None:
    land, hospital = andorra
    res = rm.travel_time(land, hospital, anisotropic=True, neighbours=16)
    minutes = res.minutes
    assert minutes[tuple(hospital[0])] == 0.0
    assert 4 < minutes[cell_of(land, SANT_JULIA)] < 20
    assert 20 < minutes[cell_of(land, PAS_DE_LA_CASA)] < 60
    summit = cell_of(land, COMA_PEDROSA)
    assert minutes[summit] > 90  # hours of walking from the nearest road
    away = rm.travel_time(land, hospital, anisotropic=True, direction="from", neighbours=16)
    # climbing from the valley to the summit takes longer than coming down from it
    assert away.minutes[summit] > 1.2 * minutes[summit]
    capped = rm.travel_time(land, hospital, anisotropic=True, neighbours=16, max_minutes=30)
    assert np.isnan(capped.minutes[summit])
    assert capped.minutes[cell_of(land, SANT_JULIA)] == minutes[cell_of(land, SANT_JULIA)]


def test_isotropic_equals_mcp_geometric_on_real_data(
        andorra: tuple[rm.Landscape, np.ndarray]) -> None:
    land, hospital = andorra
    res = rm.travel_time(land, hospital)
    expected, _ = MCP_Geometric(land.pace(), sampling=land.cell_size).find_costs(
        [tuple(hospital[0])])
    np.testing.assert_allclose(res.seconds, expected, rtol=1e-12)
