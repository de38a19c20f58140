"""``tiercare plan raster``: AccessMod-style raster travel time, coverage and capacity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from tiercare.clisupport import input_errors_exit_2, print_json
from tiercare.errors import InputError, Problem
from tiercare.planning import raster as rm
from tiercare.planning.geo import read_points


def _parse_thresholds(text: str) -> list[float]:
    values: list[float] = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise InputError.single(f"threshold {part.strip()!r} is not a positive number of "
                                    "minutes", field="thresholds", code="bad_thresholds")
        values.append(value)
    return values


def _check_options(mode: str, direction: str, neighbours: int, dem: Path | None,
                   capacity_field: str | None, population: Path | None,
                   max_minutes: float | None) -> None:
    problems: list[Problem] = []
    if mode not in ("isotropic", "anisotropic"):
        problems.append(Problem(reason=f"mode {mode!r} is not 'isotropic' or 'anisotropic'",
                                field="mode", code="bad_mode"))
    elif mode == "anisotropic" and dem is None:
        problems.append(Problem(reason="anisotropic travel needs --dem", field="dem",
                                code="missing_dem"))
    if direction not in ("towards", "from"):
        problems.append(Problem(reason=f"direction {direction!r} is not 'towards' or 'from'",
                                field="direction", code="bad_direction"))
    if neighbours not in (8, 16):
        problems.append(Problem(reason=f"neighbours must be 8 or 16, got {neighbours}",
                                field="neighbours", code="bad_neighbours"))
    if capacity_field and population is None:
        problems.append(Problem(reason="--capacity-field needs --population",
                                field="capacity_field", code="missing_population"))
    if max_minutes is not None and not max_minutes > 0:
        problems.append(Problem(reason=f"max minutes must be > 0, got {max_minutes}",
                                field="max_minutes", code="bad_max"))
    if problems:
        raise InputError(problems)


def raster(
    landcover: Annotated[Path, typer.Option("--landcover", help="Land-cover GeoTIFF of class "
                                            "codes (projected CRS in metres).")],
    scenario: Annotated[Path, typer.Option("--scenario", help="Scenario CSV "
                                           "class,label,speed,mode (km/h; WALKING, BICYCLING, "
                                           "MOTORIZED).")],
    facilities: Annotated[Path, typer.Option("--facilities", help="Facility points: CSV "
                                             "id,lon,lat[,capacity], GeoJSON, GPKG or SHP.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    roads: Annotated[Path | None, typer.Option("--roads", help="Road lines whose class field "
                                               "holds scenario codes.")] = None,
    road_class_field: Annotated[str | None, typer.Option(
        "--road-class-field", help="Attribute of the roads holding the class code.")] = None,
    barriers: Annotated[list[Path] | None, typer.Option(
        "--barriers", help="Impassable lines/polygons (repeatable).")] = None,
    dem: Annotated[Path | None, typer.Option("--dem", help="Elevation raster.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="isotropic or anisotropic.")] = "isotropic",
    direction: Annotated[str, typer.Option("--direction", help="towards or from the "
                                           "facilities.")] = "towards",
    neighbours: Annotated[int, typer.Option("--neighbours", help="8 or 16 (knight's "
                                            "moves).")] = 8,
    max_minutes: Annotated[float | None, typer.Option(
        "--max-minutes", help="Maximum travel time; cells beyond are nodata.")] = None,
    population: Annotated[Path | None, typer.Option(
        "--population", help="Population raster (people per cell).")] = None,
    thresholds: Annotated[str, typer.Option("--thresholds", help="Coverage thresholds in "
                                            "minutes, comma-separated (inclusive).")] = "15,30,60",
    capacity_field: Annotated[str | None, typer.Option(
        "--capacity-field", help="Facility attribute with its capacity (people); writes "
        "capacity.csv.")] = None,
) -> None:
    """Travel time to the nearest facility on an AccessMod-style raster model.

    Outputs in --out (a JSON summary is printed; bad input exits with code 2):

    - travel_time.tif: minutes, float32, nodata -9999 beyond --max-minutes
    - nearest.tif: 0-based facility index, nodata -1, ids in tag facility_ids
    - with --population: coverage.json and catchments.gpkg (WGS84)
    - with --capacity-field: capacity.csv (facilities served in file order)
    """
    with input_errors_exit_2():
        _check_options(mode, direction, neighbours, dem, capacity_field, population,
                       max_minutes)
        levels = _parse_thresholds(thresholds)
        anisotropic = mode == "anisotropic"
        landscape = rm.read_landscape(landcover, scenario, roads=roads,
                                      road_class_field=road_class_field,
                                      barriers=tuple(barriers or ()), dem=dem)
        points = read_points(facilities, value_fields=[capacity_field] if capacity_field else ())
        sources = rm.locate_facilities(landscape, points, anisotropic=anisotropic)
        pop = None if population is None else rm.read_population(population, landscape)
        ids = [str(i) for i in points.index]
        result = rm.travel_time(landscape, sources, anisotropic=anisotropic,
                                direction=direction,  # type: ignore[arg-type]
                                neighbours=neighbours, max_minutes=max_minutes)
        out.mkdir(parents=True, exist_ok=True)
        written = ["travel_time.tif", "nearest.tif"]
        rm.write_travel_time(out / "travel_time.tif", result, landscape)
        rm.write_nearest(out / "nearest.tif", result, landscape, ids)
        summary: dict[str, object] = {
            "cells": int(result.seconds.size),
            "cells_reached": int((result.nearest >= 0).sum()),
            "facilities": len(ids), "mode": mode, "direction": direction,
            "neighbours": neighbours}
        if pop is not None:
            coverage = rm.coverage_summary(result, pop, levels)
            catchments = rm.catchment_polygons(result, landscape, pop, ids, levels)
            catchments.to_file(out / "catchments.gpkg", layer="catchments", driver="GPKG")
            written.append("catchments.gpkg")
            if capacity_field:
                table = rm.capacity_coverage(
                    landscape, sources, points[capacity_field].to_numpy(), pop, levels,
                    facility_ids=ids, anisotropic=anisotropic,
                    direction=direction,  # type: ignore[arg-type]
                    neighbours=neighbours, max_minutes=max_minutes)
                table.to_csv(out / "capacity.csv", index=False)
                written.append("capacity.csv")
                coverage["capacity"] = rm.capacity_summary(table, float(pop.sum()))
            (out / "coverage.json").write_text(json.dumps(coverage, indent=2) + "\n",
                                               encoding="utf-8")
            written.append("coverage.json")
            summary["coverage"] = coverage
        summary["written"] = [str(out / name) for name in written]
        print_json(summary)
