"""Deterministic generator of the demo county's import files.

:func:`generate_demo_files` writes a complete, clearly labelled *generated* county (示范县)
calibrated on the public figures of Shouyang county, Shanxi (``data/shouyang_calibration.json``)
as the files that the registry importers read: divisions, boundaries, facilities, staff, the
county medical group and its members, a road network, a terrain model and a note saying what
the data are. The same seed gives byte-identical files.

Steps (each with its own random stream spawned from the seed, so that changing one step does
not reshuffle the others): county outline and townships (:mod:`._geography`), terrain
(:mod:`._terrain`), villages and communities (:mod:`._settlements`), health-centre sites and
blank spots (:mod:`._network`), population (exact integer apportionment, :mod:`._population`),
facilities, village doctors and the medical group (:mod:`._network`), roads (:mod:`._roads`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import mapping

from tiercare.demo._geography import build_county_shape
from tiercare.demo._names import NameMaker
from tiercare.demo._network import Network, Sites, build_network, plan_sites
from tiercare.demo._population import apportion, split_column
from tiercare.demo._roads import Road, build_roads
from tiercare.demo._settlements import Place, Township, build_settlements
from tiercare.demo._terrain import Terrain, build_terrain
from tiercare.errors import InputError, Problem

DEFAULT_SEED = 140725
_DATA = resources.files("tiercare.demo") / "data"

DIVISION_COLUMNS = (
    "code", "name", "urban_rural_class", "population", "population_male", "population_female",
    "population_urban", "population_rural", "age_0_14", "age_15_64", "age_65_plus", "lon", "lat",
)
FACILITY_COLUMNS = (
    "code", "name", "type", "level", "grade", "ownership", "government_run", "division_code",
    "lon", "lat", "address", "opened_on", "closed_on", "services", "centres", "building_m2",
    "parent_code",
)
STAFF_COLUMNS = (
    "code", "name", "sex", "cadre", "qualification", "registration_number", "facility_code",
    "village_codes",
)
GROUP_COLUMNS = ("code", "name", "kind", "division_code", "lead_facility_code")
MEMBER_COLUMNS = ("group_code", "facility_code", "role", "village_codes")


@dataclass(frozen=True)
class DemoFiles:
    """The files written by :func:`generate_demo_files` and the figures they were built to show.

    Attributes
    ----------
    directory:
        The output directory.
    divisions, boundaries, facilities, staff, medical_groups, group_members, roads, dem, readme:
        Paths of the files written (CSV, GeoJSON, GeoTIFF and ``GENERATED.txt``).
    figures:
        The intended figures, computed from the generated records: population totals,
        counts (townships, villages, group members, clinics, doctors), blank spots by kind and
        supply ratios. The reports built from the imported files should show the same.
    """

    directory: Path
    divisions: Path
    boundaries: Path
    facilities: Path
    staff: Path
    medical_groups: Path
    group_members: Path
    roads: Path
    dem: Path
    readme: Path
    figures: Mapping[str, Any]


def load_calibration() -> dict[str, Any]:
    """Read and check the calibration figures and the facility profiles shipped with TierCare.

    Returns
    -------
    dict
        The calibration document with the profiles under ``"facility_profiles"``.

    Raises
    ------
    InputError
        If the figures contradict each other (see :func:`check_calibration`).
    """
    calibration: dict[str, Any] = json.loads(
        (_DATA / "shouyang_calibration.json").read_text(encoding="utf-8")
    )
    calibration["facility_profiles"] = json.loads(
        (_DATA / "facility_profiles.json").read_text(encoding="utf-8")
    )
    check_calibration(calibration)
    return calibration


def check_calibration(calibration: Mapping[str, Any]) -> None:
    """Check that the calibration figures agree with each other.

    Parameters
    ----------
    calibration:
        The calibration document (as in ``data/shouyang_calibration.json``).

    Raises
    ------
    InputError
        Listing every contradiction (totals that do not add up, a medical group or a village
        count that the design cannot reach).
    """
    pop, design = calibration["population"], calibration["design"]
    problems: list[Problem] = []

    def need(condition: bool, field: str, reason: str) -> None:
        if not condition:
            problems.append(Problem(reason=reason, field=field, code="inconsistent"))

    need(pop["male"] + pop["female"] == pop["total"], "population.male",
         "male + female must equal the total")
    need(pop["urban"] + pop["rural"] == pop["total"], "population.urban",
         "urban + rural must equal the total")
    need(pop["age_0_14"] + pop["age_15_64"] + pop["age_65_plus"] == pop["total"],
         "population.age_0_14", "the age bands must sum to the total")
    townships = len(calibration["town_codes"]) + len(calibration["township_codes"])
    members = 3 + townships + design["township_health_centre_branches"] + design[
        "community_health_centres"]
    need(members == calibration["medical_group_members"], "design",
         f"3 county hospitals + {townships} health centres + branches + community centres = "
         f"{members}, not {calibration['medical_group_members']}")
    rural = calibration["village_clinics"] + design["villages_without_clinic_exempt"] + design[
        "villages_without_clinic_not_exempt"]
    communities = design["county_seat_communities"] + design["towns_with_a_community"]
    need(rural + communities == calibration["villages_total"], "design",
         f"{rural} villages + {communities} communities ≠ {calibration['villages_total']}")
    need(design["towns_with_a_community"] < len(calibration["town_codes"]), "design",
         "more towns with a community than towns")
    need(design["villages_without_clinic_exempt"] <= 2, "design.villages_without_clinic_exempt",
         "the generator leaves at most two exempt villages (a seat village and a village next "
         "to a seat)")
    if problems:
        raise InputError(problems)


def _spawn(seed: int, names: list[str]) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


def _populate(
    rng: np.random.Generator, places: list[Place], sites: Sites, figures: dict[str, int]
) -> None:
    """Give every place its population, males and age bands, summing exactly to the county.

    Urban residents go to the communities (most of them in the county seat), rural residents to
    the villages in proportion to log-normal weights (seat villages and branch villages larger,
    villages without a clinic smaller). Sex and age shares differ between town and country
    (older, more male villages) and are scaled to the county totals by :func:`split_column`.
    """
    urban = [p for p in places if p.is_urban]
    rural = [p for p in places if not p.is_urban]
    seat_share = rng.uniform(0.82, 0.88)
    in_seat = [p for p in urban if p.township == 0]
    in_towns = [p for p in urban if p.township != 0]
    seat_total = int(round(seat_share * figures["urban"]))
    for group, total, spread in ((in_seat, seat_total, 0.35),
                                 (in_towns, figures["urban"] - seat_total, 0.3)):
        counts = apportion(np.exp(rng.normal(0.0, spread, len(group))), total)
        for place, count in zip(group, counts, strict=True):
            place.population = int(count)
    larger = {"seat": 2.5, "near_seat": 1.3}
    without = set(sites.exempt) | set(sites.not_exempt)
    weights = np.exp(np.clip(rng.normal(0.0, 0.55, len(rural)), -2.0, 2.0))
    for k, place in enumerate(rural):
        weights[k] *= larger.get(place.role, 1.0)
        if place.code in sites.branches.values():
            weights[k] *= 1.8
        if place.code in without and place.role != "seat":
            weights[k] *= 0.6
    for place, count in zip(rural, apportion(weights, figures["rural"]), strict=True):
        place.population = int(count)

    populations = np.array([p.population for p in places])
    is_urban = np.array([p.is_urban for p in places])
    n = len(places)
    male_share = np.where(is_urban, 0.535, 0.548) + rng.normal(0.0, 0.01, n)
    old_share = np.clip(np.where(is_urban, 0.12, 0.19) + rng.normal(0.0, 0.02, n), 0.05, 0.35)
    young_share = np.clip(np.where(is_urban, 0.16, 0.14) + rng.normal(0.0, 0.015, n), 0.05, 0.3)
    males = split_column(populations, male_share, figures["male"])
    old = split_column(populations, old_share, figures["age_65_plus"])
    young = split_column(populations - old, young_share, figures["age_0_14"])
    for k, place in enumerate(places):
        place.male, place.age_65_plus, place.age_0_14 = int(males[k]), int(old[k]), int(young[k])


def _sum_places(places: list[Place]) -> dict[str, int]:
    total = sum(p.population for p in places)
    urban = sum(p.population for p in places if p.is_urban)
    male = sum(p.male for p in places)
    young = sum(p.age_0_14 for p in places)
    old = sum(p.age_65_plus for p in places)
    return {
        "population": total, "population_male": male, "population_female": total - male,
        "population_urban": urban, "population_rural": total - urban,
        "age_0_14": young, "age_15_64": total - young - old, "age_65_plus": old,
    }


class _Projector:
    """Metric (UTM) ↔ WGS84 with coordinates rounded to 6 decimals (about 0.1 m)."""

    def __init__(self, epsg: int) -> None:
        self._to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
        self._to_metric = Transformer.from_crs(4326, epsg, always_xy=True)

    def metric(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self._to_metric.transform(lon, lat)
        return float(x), float(y)

    def lonlat(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        lon, lat = self._to_lonlat.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 6)

    def geometry(self, geometry: Any) -> Any:
        return shapely.transform(geometry, self.lonlat)


def _write_csv(
    path: Path, columns: tuple[str, ...] | list[str], rows: list[dict[str, Any]]
) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_features(path: Path, features: list[dict[str, Any]]) -> None:
    body = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features)
    path.write_text('{"type":"FeatureCollection","features":[\n' + body + "\n]}\n",
                    encoding="utf-8")


def _coord(value: float) -> str:
    return f"{value:.6f}"


def _division_rows(
    calibration: dict[str, Any],
    townships: list[Township],
    places: list[Place],
    project: _Projector,
) -> list[dict[str, Any]]:
    empty = dict.fromkeys(DIVISION_COLUMNS, "")
    rows = [
        {**empty, "code": calibration["province"]["code"], "name": calibration["province"]["name"]},
        {**empty, "code": calibration["city"]["code"], "name": calibration["city"]["name"]},
    ]
    seat_lon, seat_lat = project.lonlat(townships[0].seat)[0]
    rows.append({**empty, "code": calibration["county"]["code"],
                 "name": calibration["county"]["name"], **_sum_places(places),
                 "lon": _coord(seat_lon), "lat": _coord(seat_lat)})
    for township in sorted(townships, key=lambda t: t.code):
        lon, lat = project.lonlat(township.seat)[0]
        members = [p for p in places if p.township == township.index]
        rows.append({**empty, "code": township.code, "name": township.name,
                     **_sum_places(members), "lon": _coord(lon), "lat": _coord(lat)})
    for place in places:
        lon, lat = project.lonlat(place.xy)[0]
        rows.append({**empty, "code": place.code, "name": place.name,
                     "urban_rural_class": place.urban_rural_class, **_sum_places([place]),
                     "lon": _coord(lon), "lat": _coord(lat)})
    return sorted(rows, key=lambda r: r["code"])


def _facility_rows(
    network: Network, calibration: dict[str, Any], project: _Projector
) -> tuple[list[str], list[dict[str, Any]]]:
    profiles = calibration["facility_profiles"]
    columns = list(FACILITY_COLUMNS) + list(profiles["resource_columns"])
    rows = []
    for facility in network.facilities:
        spec = profiles["profiles"][facility.profile]
        lon, lat = project.lonlat(facility.xy)[0]
        rows.append({
            "code": facility.code, "name": facility.name, "type": spec["type"],
            "level": spec["level"], "grade": spec["grade"], "ownership": facility.ownership,
            "government_run": "true" if facility.government_run else "false",
            "division_code": facility.division_code, "lon": _coord(lon), "lat": _coord(lat),
            "address": facility.address, "opened_on": facility.opened_on.isoformat(),
            "closed_on": facility.closed_on.isoformat() if facility.closed_on else "",
            "services": ";".join(facility.services), "centres": ";".join(spec["centres"]),
            "building_m2": facility.building_m2, "parent_code": facility.parent_code,
            **facility.resources,
        })
    return columns, rows


def _boundary_features(
    calibration: dict[str, Any], outline: Any, townships: list[Township], project: _Projector
) -> list[dict[str, Any]]:
    county = calibration["county"]
    features = [{"type": "Feature",
                 "properties": {"code": county["code"], "name": county["name"], "level": "county"},
                 "geometry": mapping(project.geometry(outline))}]
    for township in sorted(townships, key=lambda t: t.code):
        features.append({
            "type": "Feature",
            "properties": {"code": township.code, "name": township.name, "level": "township"},
            "geometry": mapping(project.geometry(township.polygon)),
        })
    return features


def _road_features(
    roads: list[Road], speeds: dict[str, int], project: _Projector
) -> list[dict[str, Any]]:
    features = []
    for number, road in enumerate(roads, start=1):
        coords = project.lonlat(np.asarray(road.geometry.coords))
        keep = np.ones(len(coords), dtype=bool)
        keep[1:] = np.any(coords[1:] != coords[:-1], axis=1)
        coords = coords[keep]
        if len(coords) < 2:
            continue
        features.append({
            "type": "Feature",
            "properties": {"id": f"R{number:05d}", "class": road.road_class,
                           "speed_kmh": int(speeds[road.road_class]), "ref": road.ref},
            "geometry": {"type": "LineString", "coordinates": coords.tolist()},
        })
    return features


def _write_dem(path: Path, terrain: Terrain) -> None:
    rows, cols = terrain.elevation.shape
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "float32",
        "crs": "EPSG:4326", "transform": terrain.transform, "compress": "deflate",
        "predictor": 3, "tiled": True, "blockxsize": 256, "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(terrain.elevation, 1)
        dataset.set_band_description(1, "elevation (m), generated")
        dataset.update_tags(SOURCE="TierCare demo county generator: synthetic terrain",
                            UNITS="metre")


def _figures(
    seed: int,
    calibration: dict[str, Any],
    area_km2: float,
    townships: list[Township],
    places: list[Place],
    network: Network,
    sites: Sites,
    roads: list[Road],
    exempt_km: float,
) -> dict[str, Any]:
    totals = _sum_places(places)
    active = [f for f in network.facilities if f.closed_on is None]
    profiles = calibration["facility_profiles"]["profiles"]
    types = {f.code: profiles[f.profile]["type"] for f in network.facilities}

    def total(prefix: str, *names: str) -> int:
        return sum(f.resources.get(f"{prefix}_{n}", 0) for f in active for n in names)

    beds = sum(v for f in active for k, v in f.resources.items() if k.startswith("beds_"))
    physicians = total("staff", "physician", "assistant_physician")
    gps = total("staff", "gp")
    nurses = total("staff", "nurse")
    population = totals["population"]
    clinics = [f for f in active if types[f.code] == "village_clinic"]
    members = [f for f in network.facilities if f.group_role]
    centre_types = {"township_health_centre_central", "township_health_centre"}
    townships_with_centre = {f.township for f in active
                             if types[f.code] in centre_types and f.government_run}
    county_hospitals = [f for f in active if types[f.code].startswith("county_")
                        and f.ownership == "public"]
    by_code = {p.code: p for p in places}
    health_centre_xy = {i: xy for i, (xy, _) in sites.health_centres.items()}
    distances = {code: round(float(np.hypot(*(by_code[code].xy
                                              - health_centre_xy[by_code[code].township]))))
                 for code in sites.exempt + sites.not_exempt}
    return {
        "seed": seed,
        "county_code": calibration["county"]["code"],
        "county_name": calibration["county"]["name"],
        "area_km2": round(area_km2, 1),
        **totals,
        "share_65_plus_percent": round(100.0 * totals["age_65_plus"] / population, 2),
        "townships": len(townships),
        "villages": len(places),
        "residents_committees": sum(p.is_urban for p in places),
        "village_committees": sum(not p.is_urban for p in places),
        "facilities": len(network.facilities),
        "facilities_active": len(active),
        "facilities_closed": [f.code for f in network.facilities if f.closed_on is not None],
        "medical_group_members": len(members),
        "village_clinics": len(clinics),
        "village_doctors": len(network.doctors),
        "road_pieces": len(roads),
        "blank_spots": {
            "counties_without_public_county_hospital": 0 if county_hospitals else 1,
            "townships_without_government_health_centre": len(townships)
            - len(townships_with_centre),
            "villages_without_clinic": len(sites.exempt) + len(sites.not_exempt),
            "villages_without_clinic_exempt": len(sites.exempt),
            "villages_without_clinic_not_exempt": len(sites.not_exempt),
            "clinics_without_qualified_doctor": len(network.unqualified_only),
        },
        "blank_spot_detail": {
            "exempt_within_km": exempt_km,
            "villages_exempt": {c: distances[c] for c in sites.exempt},
            "villages_not_exempt": {c: distances[c] for c in sites.not_exempt},
            "clinics_without_qualified_doctor": list(network.unqualified_only),
            "note": "distances in metres, straight line from the village point to its "
                    "township's health centre",
        },
        "supply": {
            "beds": beds,
            "physicians": physicians,
            "general_practitioners": gps,
            "nurses": nurses,
            "beds_per_1000": round(1000.0 * beds / population, 2),
            "physicians_per_1000": round(1000.0 * physicians / population, 2),
            "physicians_incl_gps_per_1000": round(1000.0 * (physicians + gps) / population, 2),
            "nurses_per_1000": round(1000.0 * nurses / population, 2),
            "gps_per_10000": round(10000.0 * gps / population, 2),
            "village_doctors_per_1000_rural": round(
                1000.0 * len(network.doctors) / totals["population_rural"], 2),
        },
    }


def _readme(figures: Mapping[str, Any], calibration: dict[str, Any]) -> str:
    speeds = calibration["road_speeds_kmh"]
    blank = figures["blank_spots"]
    lines = [
        f"{figures['county_name']} — GENERATED DEMO DATA / 生成的示范数据",
        "",
        "Every file in this folder was generated by the TierCare demo generator",
        f"(tiercare.demo.generator, seed {figures['seed']}). The county, its townships, villages,",
        "facilities, people, roads and terrain are FICTITIOUS: the names are made from syllable",
        "pools and the places are drawn at random. They are calibrated on public figures of",
        "Shouyang county (寿阳县), Jinzhong, Shanxi:",
    ]
    lines += [f"  - {key}: {text}" for key, text in calibration["sources"].items()]
    lines += [
        "",
        "本目录中的全部数据均为程序生成的示范数据（虚构），仅人口总数、乡镇与村（社区）数量、",
        "医共体成员数、村卫生室数和乡村医生数等按寿阳县公开数据校准，不代表任何真实机构或个人。",
        "",
        "Figures reproduced exactly:",
        f"  population {figures['population']} (urban {figures['population_urban']}, rural "
        f"{figures['population_rural']}; male {figures['population_male']}, female "
        f"{figures['population_female']}; aged 65+ {figures['age_65_plus']} = "
        f"{figures['share_65_plus_percent']} %)",
        f"  {figures['townships']} townships, {figures['villages']} villages and communities, "
        f"{figures['medical_group_members']} institutions in one county medical group,",
        f"  {figures['village_clinics']} village clinics, {figures['village_doctors']} village "
        f"doctors; area {figures['area_km2']} km².",
        "",
        "Blank spots left on purpose (for the blank-spot report):",
        f"  villages without a clinic: {blank['villages_without_clinic']} "
        f"({blank['villages_without_clinic_exempt']} within "
        f"{figures['blank_spot_detail']['exempt_within_km']} km of their township health centre, "
        f"{blank['villages_without_clinic_not_exempt']} more than 5 km from every health centre)",
        f"  clinics whose only village doctor has no qualification: "
        f"{blank['clinics_without_qualified_doctor']}",
        f"  closed facilities kept for history (closed_on set): "
        f"{len(figures['facilities_closed'])}",
        "",
        "Files:",
        "  divisions.csv        province, city, county, townships, villages (points, population,",
        "                       sex, age bands 0-14 / 15-64 / 65+)",
        "  boundaries.geojson   county and township polygons (WGS84)",
        "  facilities.csv       facilities with services, centres, beds, staff by cadre, equipment",
        "  staff.csv            village doctors (qualification empty = none)",
        "  medical_groups.csv   the county medical group",
        "  group_members.csv    its members and the villages each serves (empty = whole county)",
        "  roads.geojson        road pieces split at every junction; properties class, speed_kmh,",
        f"                       ref; speeds: county {speeds['county']} km/h, township "
        f"{speeds['township']} km/h, village {speeds['village']} km/h",
        "  dem.tif              synthetic terrain, float32 metres, EPSG:4326, 3 arc-seconds",
        "",
        "Staff cadres are disjoint: staff_gp (general practitioners) is not part of",
        "staff_physician. Coordinates are WGS84 (not GCJ-02).",
        "",
    ]
    return "\n".join(lines)


def generate_demo_files(out_dir: Path, *, seed: int = DEFAULT_SEED) -> DemoFiles:
    """Generate the demo county and write its import files into ``out_dir``.

    Parameters
    ----------
    out_dir:
        Directory to write into (created if missing; existing files of the same names are
        replaced).
    seed:
        Seed of every random choice; the same seed gives byte-identical files.

    Returns
    -------
    DemoFiles
        Paths written and the intended figures (see :class:`DemoFiles`).

    Examples
    --------
    >>> import tempfile
    >>> files = generate_demo_files(Path(tempfile.mkdtemp()))  # doctest: +SKIP
    >>> files.figures["population"], files.figures["village_doctors"]  # doctest: +SKIP
    (200352, 221)
    """
    calibration = load_calibration()
    county, design, pop = calibration["county"], calibration["design"], calibration["population"]
    rngs = _spawn(seed, ["shape", "terrain", "names", "settlements", "sites", "population",
                         "network", "roads"])
    project = _Projector(int(county["utm_epsg"]))
    centre = project.metric(float(county["centre_lon"]), float(county["centre_lat"]))
    townships_total = len(calibration["town_codes"]) + len(calibration["township_codes"])
    shape = build_county_shape(rngs["shape"], centre=centre,
                               area_m2=float(county["area_km2"]) * 1e6, townships=townships_total)
    seat_lonlat = project.lonlat(shape.seats[0])[0]
    bounds = tuple(project.geometry(shape.outline).bounds)
    elevation_range = (float(calibration["elevation_m"]["min"]),
                       float(calibration["elevation_m"]["max"]))
    terrain = build_terrain(rngs["terrain"], bounds=bounds,  # type: ignore[arg-type]
                            seat=(float(seat_lonlat[0]), float(seat_lonlat[1])),
                            elevation_range=elevation_range)

    def elevation(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        lonlat = project.lonlat(xy)
        return terrain.sample(lonlat[:, 0], lonlat[:, 1])

    names = NameMaker(rngs["names"])
    rural_villages = (calibration["village_clinics"] + design["villages_without_clinic_exempt"]
                      + design["villages_without_clinic_not_exempt"])
    townships, places = build_settlements(
        rngs["settlements"], shape, names, elevation,
        town_codes=list(calibration["town_codes"]),
        township_codes=list(calibration["township_codes"]),
        rural_villages=rural_villages,
        seat_communities=int(design["county_seat_communities"]),
        towns_with_community=int(design["towns_with_a_community"]),
    )
    sites = plan_sites(rngs["sites"], townships, places, design=design)
    _populate(rngs["population"], places, sites, pop)
    profiles = calibration["facility_profiles"]
    network = build_network(
        rngs["network"], townships, places, sites,
        profiles=profiles["profiles"], resource_columns=list(profiles["resource_columns"]),
        design=design, names=names, county_name=county["name"],
        county_code=county["code"][:6], village_doctors=int(calibration["village_doctors"]),
    )
    roads = build_roads(rngs["roads"], townships, places)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "divisions": out_dir / "divisions.csv", "boundaries": out_dir / "boundaries.geojson",
        "facilities": out_dir / "facilities.csv", "staff": out_dir / "staff.csv",
        "medical_groups": out_dir / "medical_groups.csv",
        "group_members": out_dir / "group_members.csv", "roads": out_dir / "roads.geojson",
        "dem": out_dir / "dem.tif", "readme": out_dir / "GENERATED.txt",
    }
    _write_csv(paths["divisions"], DIVISION_COLUMNS,
               _division_rows(calibration, townships, places, project))
    _write_features(paths["boundaries"],
                    _boundary_features(calibration, shape.outline, townships, project))
    facility_columns, facility_rows = _facility_rows(network, calibration, project)
    _write_csv(paths["facilities"], facility_columns, facility_rows)
    _write_csv(paths["staff"], STAFF_COLUMNS, [
        {"code": d.code, "name": d.name, "sex": d.sex, "cadre": "village_doctor",
         "qualification": d.qualification, "registration_number": d.registration_number,
         "facility_code": d.facility_code, "village_codes": ";".join(d.village_codes)}
        for d in network.doctors
    ])
    _write_csv(paths["medical_groups"], GROUP_COLUMNS, [
        {"code": network.group_code, "name": network.group_name, "kind": "county_medical_group",
         "division_code": county["code"], "lead_facility_code": network.lead_code}
    ])
    members = sorted((f for f in network.facilities if f.group_role),
                     key=lambda f: (f.group_role != "lead", f.code))
    _write_csv(paths["group_members"], MEMBER_COLUMNS, [
        {"group_code": network.group_code, "facility_code": f.code, "role": f.group_role,
         "village_codes": ";".join(sorted(f.served))}
        for f in members
    ])
    _write_features(paths["roads"],
                    _road_features(roads, calibration["road_speeds_kmh"], project))
    _write_dem(paths["dem"], terrain)
    figures = _figures(seed, calibration, shape.outline.area / 1e6, townships, places, network,
                       sites, roads, float(design["exempt_within_km"]))
    paths["readme"].write_text(_readme(figures, calibration), encoding="utf-8")
    return DemoFiles(directory=out_dir, figures=figures, **paths)
