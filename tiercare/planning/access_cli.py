"""``tiercare plan access``: travel time to care, coverage and accessibility on a road network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import scipy.sparse as sp
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tiercare.clisupport import err_console, input_errors_exit_2, print_json
from tiercare.errors import InputError, Problem
from tiercare.planning import access as acc
from tiercare.planning.geo import RASTER_SUFFIXES, read_points, read_population_points
from tiercare.planning.network import (
    Network,
    build_network,
    components,
    project_points,
    snap,
    travel_time_matrix,
)
from tiercare.planning.report import render_access_report
from tiercare.planning.roads import (
    MODES,
    load_speed_table,
    read_osm,
    read_road_lines,
    read_roads,
)

_METHODS = ("2sfca", "e2sfca", "gravity")


def access(
    roads: Annotated[Path, typer.Option(help="Roads: .osm.pbf or line GeoJSON/GPKG/SHP.")],
    facilities: Annotated[Path, typer.Option(help="Facilities: CSV id,lon,lat[,type] or GIS.")],
    demand: Annotated[Path, typer.Option(
        help="Demand: points (CSV id,lon,lat,population or GIS) or a population GeoTIFF.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    speed_field: Annotated[str | None, typer.Option(help="Road attribute with km/h.")] = None,
    class_field: Annotated[str | None, typer.Option(help="Road attribute with the class.")] = None,
    speeds: Annotated[Path | None, typer.Option(help="Speed table CSV (class,speed_kmh,mode).")]
    = None,
    population_field: Annotated[str | None, typer.Option(
        help="Demand population column (default 'population' if present, else 1 per point).")]
    = None,
    mode: Annotated[str, typer.Option(help="driving, walking or cycling.")] = "driving",
    thresholds: Annotated[str, typer.Option(help="Minutes, comma-separated.")] = "15,30,60",
    method: Annotated[str | None, typer.Option(help="2sfca, e2sfca or gravity.")] = None,
    supply_field: Annotated[str | None, typer.Option(help="Facility supply column (beds...).")]
    = None,
    catchment: Annotated[float, typer.Option(help="Catchment in minutes for --method.")] = 60.0,
    division_field: Annotated[str | None, typer.Option(
        help="Demand column naming the division (township...) for coverage by division.")]
    = None,
    type_field: Annotated[str, typer.Option(help="Facility column with the type or tier.")]
    = "type",
    connect_tolerance: Annotated[float | None, typer.Option(
        help="Join network pieces within this many metres.")] = None,
) -> None:
    """Nearest facility, coverage within thresholds and accessibility scores by road.

    Writes demand.csv, facilities.csv, coverage.json and report.html into --out and prints
    the coverage summary as JSON. A population raster as --demand gives one demand point per
    populated cell (ids r<row>c<col>).
    """
    with input_errors_exit_2():
        limits = _check_options(roads, speed_field, class_field, speeds, mode, thresholds, method,
                                supply_field, catchment)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            step = progress.add_task("reading roads", total=None)
            table = load_speed_table(speeds)
            if speed_field is not None:
                segs = read_road_lines(roads, speed_field=speed_field)
            elif _is_osm(roads):  # keep the OSM classes that the speed table knows
                segs = read_osm(roads, classes={c for (c, _m) in table.speeds})
            else:
                segs = read_roads(roads, class_field=class_field)
            progress.update(step, description="building the network")
            net = build_network(segs, mode=mode, speeds=table, use_class=speed_field is None,
                                connect_tolerance_m=connect_tolerance)
            progress.update(step, description="reading facilities and demand")
            fac = read_points(facilities, kind="facilities",
                              value_fields=[supply_field] if supply_field else ())
            if demand.suffix.lower() in RASTER_SUFFIXES:
                if population_field is not None:
                    raise InputError.single("--population-field does not apply to a population "
                                            "raster (its cell values are the counts)",
                                            field="population_field")
                pop_field = "population"
                dem = read_population_points(demand, field=pop_field)
            else:
                pop_field = population_field or ("population" if "population" in
                                                 _columns(demand) else None)
                dem = read_points(demand, kind="demand",
                                  value_fields=[pop_field] if pop_field else ())
            if division_field and division_field not in dem.columns:
                raise InputError.single(f"demand has no column '{division_field}'",
                                        field=division_field, code="missing_column")
            if len(fac) == 0 or len(dem) == 0:
                raise InputError.single("facilities and demand need at least one point each")
            pop = dem[pop_field].to_numpy(float) if pop_field else np.ones(len(dem))
            progress.update(step, description="joining points to the network")
            fs, ds = snap(net, fac), snap(net, dem)
            progress.update(step, description="nearest facility (multi-source Dijkstra)")
            group = type_field if type_field in fac.columns else None
            nearest = acc.nearest_table(net, fac, dem, group_field=group, snapped=(fs, ds))
            progress.update(step, description="facility catchments")
            horizon = max(max(limits), catchment if method else 0.0)
            times = travel_time_matrix(net, fs, ds, cutoff_s=horizon * 60.0,
                                       direction="to_origins")
            score = None
            if method is not None:
                progress.update(step, description=f"accessibility ({method})")
                supply = fac[supply_field].to_numpy(float)
                if method == "2sfca":
                    score = acc.two_step_fca(times, pop, supply, catchment_min=catchment)
                elif method == "e2sfca":
                    score = acc.enhanced_two_step_fca(times, pop, supply,
                                                      catchment_min=catchment)
                else:
                    score = acc.gravity_access(times, pop, supply, catchment_min=catchment)
            progress.update(step, description="writing outputs")
            pieces = components(net, demand=ds, population=pop, facilities=fs)
            summary = _write_outputs(out, net, fac, dem, pop, nearest, times, score, limits,
                                     division_field, group, pieces.to_dict(), mode, table.version,
                                     method)
        print_json(summary)


def _is_osm(path: Path) -> bool:
    return path.name.lower().endswith((".pbf", ".osm"))


def _columns(path: Path) -> list[str]:
    """Attribute names of a CSV or vector file (empty when unreadable: read_points reports)."""
    try:
        if path.suffix.lower() == ".csv":
            return [c.strip() for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns]
        return list(pyogrio.read_info(path)["fields"])
    except Exception:  # the real read reports the problem with its details
        return []


def _check_options(roads: Path, speed_field: str | None, class_field: str | None,
                   speeds: Path | None, mode: str, thresholds: str, method: str | None,
                   supply_field: str | None, catchment: float) -> list[float]:
    problems: list[Problem] = []
    if speed_field and class_field:
        problems.append(Problem(reason="give --speed-field or --class-field, not both",
                                field="speed-field"))
    if not _is_osm(roads) and not (speed_field or class_field):
        problems.append(Problem(reason="a line layer needs --speed-field or --class-field",
                                field="roads"))
    if speeds is not None and speed_field:
        problems.append(Problem(reason="--speeds applies with --class-field or OSM roads only",
                                field="speeds"))
    if mode not in MODES:
        problems.append(Problem(reason=f"unknown mode {mode!r} (use {', '.join(MODES)})",
                                field="mode"))
    limits: list[float] = []
    for part in thresholds.split(","):
        try:
            value = float(part)
        except ValueError:
            value = float("nan")
        if not (np.isfinite(value) and value > 0):
            problems.append(Problem(reason=f"threshold {part.strip()!r} is not a positive number "
                                    "of minutes", field="thresholds"))
        else:
            limits.append(value)
    if method is not None:
        if method not in _METHODS:
            problems.append(Problem(reason=f"unknown method {method!r} (use "
                                    f"{', '.join(_METHODS)})", field="method"))
        if not supply_field:
            problems.append(Problem(reason="--method needs --supply-field", field="supply-field"))
        if not catchment > 0:
            problems.append(Problem(reason="catchment must be positive", field="catchment"))
    if problems:
        raise InputError(problems)
    return sorted(set(limits))


def _write_outputs(out: Path, net: Network, fac: gpd.GeoDataFrame, dem: gpd.GeoDataFrame,
                   pop: np.ndarray, nearest: pd.DataFrame, times: sp.csr_matrix,
                   score: np.ndarray | None, limits: list[float], division_field: str | None,
                   group: str | None, pieces: dict[str, Any], mode: str, speed_version: str,
                   method: str | None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    secs = nearest["seconds"].to_numpy()
    minutes = secs / 60.0
    demand_out = pd.DataFrame({
        "id": dem.index.astype(str),
        "nearest_facility": nearest["nearest_facility"].to_numpy(),
        "minutes": np.where(np.isfinite(minutes), np.round(minutes, 4), np.nan),
    })
    if score is not None:
        demand_out["score"] = score
    demand_out.to_csv(out / "demand.csv", index=False)
    labels = [f"{t:g}" for t in limits]
    within = acc.catchment_population(times, pop, limits)
    fac_out = pd.DataFrame({"id": fac.index.astype(str)})
    for k, label in enumerate(labels):
        fac_out[f"population_within_{label}"] = within[:, k]
    fac_out.to_csv(out / "facilities.csv", index=False)
    divisions = dem[division_field].to_numpy() if division_field else None
    table = acc.coverage_table(secs, pop, limits, divisions=divisions)
    total = table.loc["total"]
    summary: dict[str, Any] = {
        "thresholds": [int(t) if float(t).is_integer() else t for t in limits],
        "population_total": float(total["population"]),
        "covered": {label: float(total[f"covered_{label}"]) for label in labels},
        "unreachable": float(total["unreachable"]),
        "mode": mode,
        "speed_table": speed_version,
        "network": pieces,
    }
    if method is not None:
        summary["method"] = method
    if division_field:
        summary["by_division"] = {
            str(k): {"population": float(r["population"]),
                     "covered": {lb: float(r[f"covered_{lb}"]) for lb in labels},
                     "unreachable": float(r["unreachable"])}
            for k, r in table.drop(index="total").iterrows()}
    if group is not None:
        by_type: dict[str, Any] = {}
        for col in nearest.columns:
            if col.startswith("seconds_"):
                t = acc.coverage_table(nearest[col].to_numpy(), pop, limits).loc["total"]
                by_type[col[len("seconds_"):]] = {
                    "covered": {lb: float(t[f"covered_{lb}"]) for lb in labels},
                    "unreachable": float(t["unreachable"])}
        summary["by_type"] = by_type
    (out / "coverage.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                       encoding="utf-8")
    seg_xy = np.stack([net.node_xy[net.u], net.node_xy[net.v]], axis=1)
    html_text = render_access_report(
        title=f"Travel time to care by road ({mode})",
        segments_xy=seg_xy, facilities_xy=project_points(net, fac), facility_ids=list(fac.index),
        demand_xy=project_points(net, dem), demand_minutes=minutes, population=pop,
        thresholds=limits, coverage=summary,
        by_division=table if division_field else None,
        facility_table=fac_out.set_index("id"),
        notes=[f"{len(fac)} facilities, {len(dem)} demand points, "
               f"population {summary['population_total']:,.0f}",
               f"network: {net.n_nodes:,} vertices, {net.n_segments:,} segments, "
               f"{pieces['n_components']} piece(s); population stranded in pieces without a "
               f"facility: {pieces['stranded_population']:,.0f}",
               f"speeds: table {speed_version}, mode {mode}; off-road at "
               f"{net.offroad_mps * 3.6:g} km/h; thresholds inclusive"])
    (out / "report.html").write_text(html_text, encoding="utf-8")
    return summary
