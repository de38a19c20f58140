"""Facilities, village doctors and the county medical group of the demo county.

Two steps: :func:`plan_sites` fixes where the key facilities stand and which villages are left
without a clinic (this must precede the population step, which gives those villages their
size), then :func:`build_network` makes every facility record, the village doctors and the
medical group.

Layout
------
* County general, TCM and maternal & child health hospitals, the CDC and its vaccination site
  stand in the county seat, each in the urban community nearest to it.
* One government-run township health centre per township, 100–180 m from the seat village
  (in the county seat town: from a village 3.5–4.5 km out of town); the most populous towns
  get a *central* health centre (delivery, antenatal care).
* Community health service centres in county-seat communities spread by farthest-point
  sampling; community health stations in other communities.
* Branch health centres in the far corner of the largest townships.
* One village clinic 60–150 m from every village committee except the villages left without one
  on purpose: some within the exemption distance of their health centre (the seat village of
  a 乡 and a village next to a seat) and some more than 5 km from every health centre.
* Village doctors: one per clinic plus the rest by population (D'Hondt, at most three per
  clinic); a few clinics have only an unqualified doctor.
* Closed facilities kept for history: a former township health centre replaced by a branch,
  a clinic that closed in a village now without one, a clinic that moved, a station.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiercare.demo._names import NameMaker, clinic_name
from tiercare.demo._settlements import Place, Township, ring_point

#: A village without a clinic counts as a true blank spot when every health centre is farther.
FAR_FROM_CENTRES_M = 5_000.0


@dataclass
class Facility:
    """One facility row of the demo county (mutable while the network is built)."""

    code: str
    name: str
    profile: str
    division_code: str
    xy: NDArray[np.float64]
    township: int
    opened_on: date
    building_m2: int
    resources: dict[str, int]
    services: list[str]
    closed_on: date | None = None
    ownership: str = "public"
    government_run: bool = True
    parent_code: str = ""
    address: str = ""
    group_role: str = ""
    served: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VillageDoctor:
    """A named village doctor attached to a clinic and serving its village."""

    code: str
    name: str
    sex: str
    qualification: str
    registration_number: str
    facility_code: str
    village_codes: tuple[str, ...]


@dataclass(frozen=True)
class Sites:
    """Where the key facilities stand and which villages have no clinic."""

    health_centres: dict[int, tuple[NDArray[np.float64], str]]
    community_centres: tuple[str, ...]
    branches: dict[int, str]
    exempt: tuple[str, ...]
    not_exempt: tuple[str, ...]


@dataclass(frozen=True)
class Network:
    """Every facility, village doctor and the county medical group."""

    facilities: list[Facility]
    doctors: list[VillageDoctor]
    group_code: str
    group_name: str
    lead_code: str
    unqualified_only: tuple[str, ...]


def _distance(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(np.hypot(*(np.asarray(a) - np.asarray(b))))


def _farthest_first(
    points: list[NDArray[np.float64]], start: NDArray[np.float64], k: int
) -> list[int]:
    """Indices of ``k`` points chosen by farthest-point sampling, seeded away from ``start``."""
    chosen: list[int] = []
    anchors = [start]
    for _ in range(k):
        gaps = [min(_distance(p, a) for a in anchors) if i not in chosen else -1.0
                for i, p in enumerate(points)]
        best = int(np.argmax(gaps))
        chosen.append(best)
        anchors = [points[i] for i in chosen]
    return chosen


def plan_sites(
    rng: np.random.Generator,
    townships: list[Township],
    places: list[Place],
    *,
    design: dict[str, Any],
) -> Sites:
    """Fix the health-centre sites, the branch villages and the villages without a clinic.

    Parameters
    ----------
    rng:
        Random generator of this step.
    townships, places:
        The divisions built by :func:`~tiercare.demo._settlements.build_settlements`.
    design:
        The ``design`` block of the calibration file (counts of each kind of site).

    Returns
    -------
    Sites
        Health centres by township index, community centres and branch villages by code, and
        the villages left without a clinic (``exempt``: within the exemption distance of their
        township's health centre; ``not_exempt``: farther than 5 km from every health centre).
    """
    villages = [p for p in places if p.kind == "village"]
    centres: dict[int, tuple[NDArray[np.float64], str]] = {}
    for township in townships:
        role = "near_seat" if township.index == 0 else "seat"
        host = next(v for v in villages if v.township == township.index and v.role == role)
        region = township.polygon.buffer(-200.0)
        centres[township.index] = (ring_point(rng, host.xy, 100.0, 180.0, region, [], 0.0),
                                   host.code)

    seat_communities = [p for p in places if p.kind == "community" and p.township == 0]
    picks = _farthest_first([c.xy for c in seat_communities], townships[0].seat,
                            int(design["community_health_centres"]))
    community_centres = tuple(seat_communities[i].code for i in sorted(picks))

    by_area = sorted(townships[1:], key=lambda t: -t.polygon.area)
    branches: dict[int, str] = {}
    for township in by_area[: int(design["township_health_centre_branches"])]:
        centre_xy = centres[township.index][0]
        far = max((v for v in villages if v.township == township.index and v.role == "other"),
                  key=lambda v: _distance(v.xy, centre_xy))
        branches[township.index] = far.code

    rural = [t for t in townships[1:] if not t.is_town]
    first = rural[int(rng.integers(len(rural)))]
    others = [t for t in townships[1:] if t.index != first.index]
    second = others[int(rng.integers(len(others)))]
    exempt = (
        next(v.code for v in villages if v.township == first.index and v.role == "seat"),
        next(v.code for v in villages if v.township == second.index and v.role == "near_seat"),
    )[: int(design["villages_without_clinic_exempt"])]

    by_code = {p.code: p for p in places}
    centre_points = [xy for xy, _ in centres.values()]
    centre_points += [by_code[c].xy for c in community_centres]
    centre_points += [by_code[c].xy for c in branches.values()]
    candidates = [
        v for v in villages
        if v.role == "other" and v.code not in branches.values()
        and min(_distance(v.xy, c) for c in centre_points) > FAR_FROM_CENTRES_M
    ]
    not_exempt: list[str] = []
    used_townships: set[int] = set()
    for i in rng.permutation(len(candidates)):
        village = candidates[int(i)]
        if village.township in used_townships:
            continue
        not_exempt.append(village.code)
        used_townships.add(village.township)
        if len(not_exempt) == int(design["villages_without_clinic_not_exempt"]):
            break
    else:
        raise RuntimeError("not enough remote villages to leave without a clinic")
    return Sites(
        health_centres=centres, community_centres=community_centres, branches=branches,
        exempt=exempt, not_exempt=tuple(sorted(not_exempt)),
    )


def _day(rng: np.random.Generator, years: tuple[int, int] | list[int]) -> date:
    ordinal_low = date(int(years[0]), 1, 1).toordinal()
    ordinal_high = date(int(years[1]), 12, 31).toordinal()
    return date.fromordinal(int(rng.integers(ordinal_low, ordinal_high + 1)))


class _Builder:
    """Accumulates facility records with unique codes."""

    def __init__(
        self,
        rng: np.random.Generator,
        profiles: dict[str, Any],
        columns: list[str],
    ) -> None:
        self.rng = rng
        self.profiles = profiles
        self.columns = columns
        self.facilities: list[Facility] = []
        self._sequence: dict[str, int] = {}

    def code(self, letter: str, division_code: str) -> str:
        key = letter + division_code
        self._sequence[key] = self._sequence.get(key, 0) + 1
        return f"{key}{self._sequence[key]:02d}"

    def add(
        self,
        letter: str,
        profile: str,
        name: str,
        place: Place,
        xy: NDArray[np.float64],
        address: str,
        **extra: Any,
    ) -> Facility:
        spec = self.profiles[profile]
        resources = {
            column: int(self.rng.integers(spec["resources"][column][0],
                                          spec["resources"][column][1] + 1))
            if column in spec["resources"] else 0
            for column in self.columns
        }
        low, high = spec["building_m2"]
        facility = Facility(
            code=self.code(letter, place.code), name=name, profile=profile,
            division_code=place.code, xy=np.asarray(xy, dtype=float), township=place.township,
            opened_on=_day(self.rng, spec["opened_years"]),
            building_m2=int(self.rng.integers(low, high + 1)), resources=resources,
            services=list(spec["services"]), address=address,
        )
        for key, value in extra.items():
            setattr(facility, key, value)
        self.facilities.append(facility)
        return facility


def build_network(
    rng: np.random.Generator,
    townships: list[Township],
    places: list[Place],
    sites: Sites,
    *,
    profiles: dict[str, Any],
    resource_columns: list[str],
    design: dict[str, Any],
    names: NameMaker,
    county_name: str,
    county_code: str,
    village_doctors: int,
) -> Network:
    """Build every facility, the village doctors and the county medical group.

    Parameters
    ----------
    rng, names:
        Random generator and name maker of this step.
    townships, places:
        Divisions with their populations already set.
    sites:
        The plan made by :func:`plan_sites`.
    profiles, resource_columns:
        Facility size profiles and the resource columns (from ``facility_profiles.json``).
    design:
        The ``design`` block of the calibration file.
    county_name, county_code:
        Name and 6-digit code of the county.
    village_doctors:
        Exact number of village doctors.

    Returns
    -------
    Network
        Facilities (active and closed), doctors and the medical group.
    """
    builder = _Builder(rng, profiles, resource_columns)
    by_code = {p.code: p for p in places}
    seat = townships[0]
    seat_region = seat.polygon.buffer(-300.0)
    seat_communities = [p for p in places if p.kind == "community" and p.township == 0]

    def address(place: Place) -> str:
        township = townships[place.township]
        tail = f"{place.short}社区" if place.kind == "community" else place.name[: -len("村民委员会")]
        return f"{county_name}{township.name}{tail}"

    def nearest_community(xy: NDArray[np.float64]) -> Place:
        return min(seat_communities, key=lambda c: _distance(c.xy, xy))

    taken = [by_code[c].xy for c in sites.community_centres]
    county_level: dict[str, Facility] = {}
    for key, letter, suffix, radii in (
        ("county_general", "H", "人民医院", (200.0, 900.0)),
        ("county_tcm", "H", "中医医院", (600.0, 1_500.0)),
        ("county_mch", "H", "妇幼保健院", (600.0, 1_500.0)),
        ("cdc", "D", "疾病预防控制中心", (800.0, 2_000.0)),
    ):
        xy = ring_point(rng, seat.seat, radii[0], radii[1], seat_region, taken, 300.0)
        taken.append(xy)
        host = nearest_community(xy)
        county_level[key] = builder.add(letter, key, county_name + suffix, host, xy,
                                        address(host))
    cdc = county_level["cdc"]
    site_xy = ring_point(rng, cdc.xy, 30.0, 60.0, seat_region, [], 0.0)
    site_host = nearest_community(site_xy)
    builder.add("V", "vaccination_site", f"{cdc.name}预防接种门诊", site_host, site_xy,
                address(site_host), parent_code=cdc.code)

    towns = sorted((t for t in townships[1:] if t.is_town),
                   key=lambda t: -sum(p.population for p in places if p.township == t.index))
    central = {t.index for t in towns[: int(design["central_township_health_centres"])]}
    fever_rooms = set(central)
    for i in rng.permutation(len(townships)):
        if len(fever_rooms) >= int(design["fever_consulting_rooms"]):
            break
        fever_rooms.add(int(i))
    health_centres: dict[int, Facility] = {}
    for township in townships:
        xy, host_code = sites.health_centres[township.index]
        host = by_code[host_code]
        profile = "thc_central" if township.index in central else "thc"
        label = "中心卫生院" if township.index in central else "卫生院"
        thc = builder.add("T", profile, township.name + label, host, xy, address(host))
        if township.index in fever_rooms:
            thc.services.append("fever_consulting_room")
        health_centres[township.index] = thc

    branches: dict[int, Facility] = {}
    for number, (index, village_code) in enumerate(sorted(sites.branches.items())):
        village = by_code[village_code]
        region = townships[index].polygon.buffer(-200.0)
        xy = ring_point(rng, village.xy, 80.0, 150.0, region, [], 0.0)
        branch = builder.add(
            "B", "thc_branch", f"{townships[index].name}卫生院{village.short}分院", village, xy,
            address(village), parent_code=health_centres[index].code,
        )
        if branch.resources["beds_general"] > 0:
            branch.services.append("inpatient")
        if number == 0:
            branch.opened_on = date(2019, 7, 1)
            former = builder.add("T", "thc", f"{names.township_stem()}乡卫生院", village, xy,
                                 address(village), closed_on=date(2019, 6, 30))
            former.opened_on = _day(rng, (1956, 1960))
        branches[index] = branch

    centres_by_community: dict[str, Facility] = {}
    for community_code in sites.community_centres:
        community = by_code[community_code]
        xy = ring_point(rng, community.xy, 60.0, 120.0, seat_region, [], 0.0)
        centres_by_community[community_code] = builder.add(
            "S", "chc", f"{county_name}{community.short}社区卫生服务中心", community, xy,
            address(community),
        )
    chcs = list(centres_by_community.values())
    rest = [c for c in seat_communities if c.code not in centres_by_community]
    station_hosts = [rest[int(i)] for i in sorted(rng.permutation(len(rest))[
        : int(design["community_health_stations"]) + 1])]
    for number, community in enumerate(station_hosts):
        xy = ring_point(rng, community.xy, 40.0, 100.0, seat_region, [], 0.0)
        parent = min(chcs, key=lambda c: _distance(c.xy, community.xy))
        private = number % 3 == 2
        station = builder.add(
            "K", "chs", f"{community.short}社区卫生服务站", community, xy, address(community),
            parent_code="" if private else parent.code,
            ownership="private" if private else "public", government_run=not private,
        )
        if number == len(station_hosts) - 1:
            station.closed_on = date(2020, 6, 30)
            station.opened_on = _day(rng, (2008, 2010))

    clinics = _village_clinics(rng, builder, townships, places, sites, design, address)
    doctors, unqualified_only = _village_doctors(
        rng, clinics, by_code, names, design, county_code, village_doctors
    )

    group_code = f"MG{county_code}"
    lead = county_level["county_general"]
    members = [county_level["county_general"], county_level["county_tcm"],
               county_level["county_mch"]]
    members += [health_centres[t.index] for t in sorted(townships, key=lambda t: t.code)]
    members += [branches[i] for i in sorted(branches)]
    members += chcs
    _assign_served(places, health_centres, branches, centres_by_community)
    for member in members:
        member.group_role = "lead" if member is lead else "member"
    return Network(
        facilities=builder.facilities, doctors=doctors, group_code=group_code,
        group_name=f"{county_name}医疗集团", lead_code=lead.code,
        unqualified_only=unqualified_only,
    )


def _village_clinics(
    rng: np.random.Generator,
    builder: _Builder,
    townships: list[Township],
    places: list[Place],
    sites: Sites,
    design: dict[str, Any],
    address: Callable[[Place], str],
) -> list[Facility]:
    """One active clinic per village committee not left blank, plus two closed clinics."""
    without = set(sites.exempt) | set(sites.not_exempt)
    villages = [p for p in places if p.kind == "village"]
    clinics: list[Facility] = []
    moved_index = int(rng.integers(len(villages)))
    for number, village in enumerate(villages):
        region = townships[village.township].polygon.buffer(-200.0)
        xy = ring_point(rng, village.xy, 60.0, 150.0, region, [], 0.0)
        draw = rng.random()
        ownership = "collective" if draw < 0.65 else ("public" if draw < 0.85 else "private")
        options = {"ownership": ownership, "government_run": ownership == "public"}
        if village.code in without:
            if village.code == sites.not_exempt[0]:
                builder.add("C", "village_clinic", clinic_name(village.short), village, xy,
                            address(village), closed_on=date(2021, 3, 31), **options)
            continue
        if number == moved_index:
            old = builder.add("C", "village_clinic", clinic_name(village.short), village, xy,
                              address(village), closed_on=date(2019, 12, 31), **options)
            old.opened_on = _day(rng, (1985, 1990))
            xy = ring_point(rng, village.xy, 60.0, 150.0, region, [old.xy], 40.0)
        clinic = builder.add("C", "village_clinic", clinic_name(village.short), village, xy,
                             address(village), **options)
        if number == moved_index:
            clinic.opened_on = date(2020, 1, 1)
        clinics.append(clinic)
    small = rng.permutation(len(clinics))[: int(design["clinics_below_60m2"])]
    for i in small:
        clinics[int(i)].building_m2 = int(rng.integers(40, 59))
    return clinics


def _village_doctors(
    rng: np.random.Generator,
    clinics: list[Facility],
    by_code: dict[str, Place],
    names: NameMaker,
    design: dict[str, Any],
    county_code: str,
    total: int,
) -> tuple[list[VillageDoctor], tuple[str, ...]]:
    """Doctors per clinic by D'Hondt on population (1 each first, at most ``max`` each)."""
    cap = int(design["max_doctors_per_clinic"])
    populations = np.array([by_code[c.division_code].population for c in clinics], dtype=float)
    counts = np.ones(len(clinics), dtype=np.int64)
    if not len(clinics) <= total <= cap * len(clinics):
        raise ValueError("the number of village doctors does not fit the clinics")
    for _ in range(total - len(clinics)):
        quotient = np.where(counts < cap, populations / (counts + 1), -1.0)
        counts[int(np.argmax(quotient))] += 1
    singles = np.flatnonzero(counts == 1)
    multis = np.flatnonzero(counts > 1)
    unqualified_only = sorted(
        int(i) for i in rng.choice(singles, int(design["clinics_without_qualified_doctor"]),
                                   replace=False)
    )
    beside = {int(i) for i in rng.choice(
        multis, int(design["unqualified_doctors_beside_qualified_colleagues"]), replace=False)}
    doctors: list[VillageDoctor] = []
    for i, clinic in enumerate(clinics):
        for slot in range(int(counts[i])):
            number = len(doctors) + 1
            male = bool(rng.random() < 0.72)
            unqualified = (i in unqualified_only) or (i in beside and slot == counts[i] - 1)
            draw = rng.random()
            if unqualified:
                qualification, registration = "", ""
            elif draw < 0.05:
                qualification = "licensed_physician"
                registration = f"1{county_code[:2]}{int(rng.integers(10**11, 10**12))}"
            elif draw < 0.25:
                qualification = "licensed_assistant_physician"
                registration = f"2{county_code[:2]}{int(rng.integers(10**11, 10**12))}"
            else:
                qualification = "rural_doctor_certificate"
                registration = f"RD{county_code}{int(rng.integers(2005, 2023))}{number:04d}"
            doctors.append(VillageDoctor(
                code=f"VD{county_code}{number:04d}", name=names.person(male=male),
                sex="M" if male else "F", qualification=qualification,
                registration_number=registration, facility_code=clinic.code,
                village_codes=(clinic.division_code,),
            ))
    return doctors, tuple(clinics[i].code for i in unqualified_only)


def _assign_served(
    places: list[Place],
    health_centres: dict[int, Facility],
    branches: dict[int, Facility],
    community_centres: dict[str, Facility],
) -> None:
    """Set the villages each group member serves (county hospitals serve the whole county)."""
    chcs = list(community_centres.values())
    for place in places:
        if place.kind == "community" and place.township == 0:
            nearest = min(chcs, key=lambda c: _distance(c.xy, place.xy))
            nearest.served.append(place.code)
            continue
        thc = health_centres[place.township]
        branch = branches.get(place.township)
        if branch is not None and (
            place.code == branch.division_code
            or _distance(place.xy, branch.xy) < _distance(place.xy, thc.xy)
        ):
            branch.served.append(place.code)
        else:
            thc.served.append(place.code)
