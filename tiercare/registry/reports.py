"""Blank-spot and supply reports on the registry (DOMAIN.md §2.1 and §2.2).

Both reports read the facilities active on a reference date, so closed facilities still count
for reports about the past.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from tiercare.auth.service import Actor
from tiercare.coords import haversine_m
from tiercare.errors import NotFoundError
from tiercare.registry.models import Division, Facility, StaffMember
from tiercare.registry.reference import blank_spot_rules, norms

BLANK_SPOT_KINDS = (
    "county_without_public_hospital",
    "township_without_health_centre",
    "village_without_clinic",
    "clinic_without_qualified_doctor",
)


@dataclass(frozen=True)
class BlankSpot:
    """One blank spot (or an exempted one, with the reason)."""

    kind: str
    division_code: str
    division_name: str
    township_name: str
    facility_code: str
    facility_name: str
    reason: str
    exempt: bool
    exemption: str


def _active_on(as_of: date):  # type: ignore[no-untyped-def]
    return [
        or_(Facility.opened_on.is_(None), Facility.opened_on <= as_of),
        or_(Facility.closed_on.is_(None), Facility.closed_on > as_of),
    ]


def _load(session: Session, actor: Actor, root_code: str | None, as_of: date):  # type: ignore[no-untyped-def]
    prefix = actor.division_prefix
    if root_code:
        root = session.scalar(select(Division).where(Division.code == root_code))
        if root is None or not (root.prefix.startswith(prefix) or prefix.startswith(root.prefix)):
            raise NotFoundError(f"division {root_code}")
        if root.prefix.startswith(prefix):
            prefix = root.prefix
    divisions = list(
        session.scalars(select(Division).where(Division.code.like(prefix + "%")).order_by(Division.code))
    )
    facilities = list(
        session.scalars(
            select(Facility)
            .where(Facility.division_prefix.like(prefix + "%"), *_active_on(as_of))
            .options(selectinload(Facility.resources))
        )
    )
    staff = list(
        session.scalars(
            select(StaffMember)
            .join(Facility)
            .where(
                StaffMember.active.is_(True),
                Facility.division_prefix.like(prefix + "%"),
                *_active_on(as_of),
            )
            .options(selectinload(StaffMember.villages))
        )
    )
    return prefix, divisions, facilities, staff


def blank_spots(
    session: Session,
    actor: Actor,
    *,
    root_code: str | None = None,
    as_of: date | None = None,
    exempt_within_km: float | None = None,
    minutes_to_township_centre: dict[str, float] | None = None,
    exempt_within_minutes: float | None = None,
) -> list[BlankSpot]:
    """Every blank spot in the actor's scope (optionally below ``root_code``).

    Parameters
    ----------
    exempt_within_km:
        A village without a clinic whose point lies within this straight-line distance of a
        government-run health centre of its township is listed as exempt (default from
        ``blank_spot_rules.json``).
    minutes_to_township_centre, exempt_within_minutes:
        Travel minutes per village code (e.g. from the planning engine); with a threshold,
        villages within it are exempt too.
    """
    as_of = as_of or date.today()
    rules = blank_spot_rules()
    if exempt_within_km is None:
        exempt_within_km = rules["exempt_within_km"]
    if exempt_within_minutes is None:
        exempt_within_minutes = rules.get("exempt_within_minutes")
    _, divisions, facilities, staff = _load(session, actor, root_code, as_of)
    by_code = {d.code: d for d in divisions}

    def township_of(code: str) -> Division | None:
        return by_code.get(code[:9] + "000")

    spots: list[BlankSpot] = []
    county_types = set(rules["county_hospital_types"])
    centre_types = set(rules["township_centre_types"])
    clinic_types = set(rules["village_clinic_types"])
    counted = set(rules["qualifications_counted"])

    facilities_in: dict[str, list[Facility]] = defaultdict(list)
    for facility in facilities:
        facilities_in[facility.division_prefix].append(facility)

    def within(prefix: str, types: set[str], *, public: bool = False, gov: bool = False):  # type: ignore[no-untyped-def]
        return [
            f for p, group in facilities_in.items() if p.startswith(prefix) for f in group
            if f.type_code in types
            and (not public or f.ownership == "public")
            and (not gov or f.government_run)
        ]

    for division in divisions:
        if division.level == "county" and not within(division.prefix, county_types, public=True):
            spots.append(BlankSpot("county_without_public_hospital", division.code, division.name,
                                   "", "", "", "no public county hospital", False, ""))
        if division.level == "township" and not within(division.prefix, centre_types, gov=True):
            spots.append(BlankSpot("township_without_health_centre", division.code, division.name,
                                   division.name, "", "",
                                   "no government-run township health centre", False, ""))

    served_by_staff: dict[int, set[int]] = defaultdict(set)
    for member in staff:
        if member.facility.type_code in clinic_types:
            for village in member.villages:
                served_by_staff[village.id].add(member.facility_id)
    village_classes = set(rules["village_urban_rural_classes"])
    for division in divisions:
        if division.level != "village":
            continue
        if division.urban_rural_class and division.urban_rural_class not in village_classes:
            continue  # urban communities are served by community health services
        if within(division.prefix, clinic_types) or served_by_staff.get(division.id):
            continue
        township = township_of(division.code)
        exemption = ""
        centres = within(division.code[:9], centre_types, gov=True) if township else []
        if minutes_to_township_centre and exempt_within_minutes is not None:
            minutes = minutes_to_township_centre.get(division.code)
            if minutes is not None and minutes <= exempt_within_minutes:
                exemption = (f"{minutes:.0f} min from the township health centre "
                             f"(≤ {exempt_within_minutes:g} min)")
        if not exemption and division.lon is not None and centres:
            located = [f for f in centres if f.lon is not None]
            if located:
                nearest = min(located, key=lambda f: haversine_m(division.lon, division.lat,
                                                                 f.lon, f.lat))
                km = haversine_m(division.lon, division.lat, nearest.lon, nearest.lat) / 1000
                if km <= exempt_within_km:
                    exemption = (f"{km:.1f} km from {nearest.name} "
                                 f"(≤ {exempt_within_km:g} km)")
        spots.append(BlankSpot("village_without_clinic", division.code, division.name,
                               township.name if township else "", "", "", "no village clinic",
                               bool(exemption), exemption))

    staff_at: dict[int, list[StaffMember]] = defaultdict(list)
    for member in staff:
        staff_at[member.facility_id].append(member)
    for facility in facilities:
        if facility.type_code != "village_clinic":
            continue
        doctors = [m for m in staff_at[facility.id] if m.cadre in {"village_doctor", "physician",
                                                                   "assistant_physician", "gp"}]
        if any(m.qualification in counted for m in doctors):
            continue
        township = township_of(facility.division.code)
        reason = ("no village doctor" if not doctors else
                  f"{len(doctors)} doctor(s), none with a recognised qualification")
        spots.append(BlankSpot("clinic_without_qualified_doctor", facility.division.code,
                               facility.division.name, township.name if township else "",
                               facility.code, facility.name, reason, False, ""))
    return spots


def blank_spot_summary(spots: list[BlankSpot]) -> dict[str, int]:
    """Count of non-exempt blank spots by kind (every kind present, zeros included)."""
    counts = {kind: 0 for kind in BLANK_SPOT_KINDS}
    for spot in spots:
        if not spot.exempt:
            counts[spot.kind] += 1
    counts["exempt_villages"] = sum(1 for s in spots if s.exempt)
    return counts


@dataclass(frozen=True)
class SupplyRow:
    """Resources and ratios of one division."""

    division_code: str
    division_name: str
    level: str
    population: int
    rural_population: int
    facilities: int
    beds: int
    physicians: int
    nurses: int
    gps: int
    village_doctors: int
    beds_per_1000: float | None
    physicians_per_1000: float | None
    nurses_per_1000: float | None
    gps_per_10000: float | None
    village_doctors_per_1000: float | None
    nurse_per_physician: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)


PHYSICIAN_CADRES = ("physician", "assistant_physician")


def _ratio(numerator: float, denominator: float, per: float) -> float | None:
    return round(numerator / denominator * per, 3) if denominator else None


def supply(
    session: Session, actor: Actor, *, root_code: str | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """Supply per 1,000 by county and township, the structure of the network, and the norms.

    Physicians are licensed physicians plus assistant physicians (``staff_physician`` +
    ``staff_assistant_physician``); ``staff_gp`` counts the GPs among them; village doctors are
    the named staff of cadre ``village_doctor``.
    """
    as_of = as_of or date.today()
    _, divisions, facilities, staff = _load(session, actor, root_code, as_of)
    rows: list[SupplyRow] = []
    for division in divisions:
        if division.level not in {"county", "township"}:
            continue
        inside = [f for f in facilities if f.division_prefix.startswith(division.prefix)]
        ids = {f.id for f in inside}
        beds = sum(r.quantity for f in inside for r in f.resources if r.category == "beds")
        physicians = sum(f.resource("staff", c) for f in inside for c in PHYSICIAN_CADRES)
        nurses = sum(f.resource("staff", "nurse") for f in inside)
        gps = sum(f.resource("staff", "gp") for f in inside)
        village_doctors = sum(1 for m in staff if m.cadre == "village_doctor" and m.facility_id in ids)
        population = division.population or 0
        rural = division.population_rural or 0
        rows.append(
            SupplyRow(
                division.code, division.name, division.level, population, rural, len(inside),
                beds, physicians, nurses, gps, village_doctors,
                _ratio(beds, population, 1000), _ratio(physicians, population, 1000),
                _ratio(nurses, population, 1000), _ratio(gps, population, 10000),
                _ratio(village_doctors, rural, 1000), _ratio(nurses, physicians, 1),
            )
        )
    structure: dict[str, dict[str, dict[str, int]]] = {"tier": {}, "type": {}, "ownership": {}}
    for facility in facilities:
        beds = sum(r.quantity for r in facility.resources if r.category == "beds")
        for axis, key in (("tier", facility.level), ("type", facility.type_code),
                          ("ownership", facility.ownership)):
            entry = structure[axis].setdefault(key, {"facilities": 0, "beds": 0})
            entry["facilities"] += 1
            entry["beds"] += beds
    return {
        "as_of": as_of.isoformat(),
        "rows": [r.as_dict() for r in rows],
        "structure": structure,
        "norms": [
            {"indicator": n.indicator, "target": n.target, "direction": n.direction,
             "label_zh": n.label_zh, "label_en": n.label_en, "version": n.version,
             "source": n.source}
            for n in norms(as_of)
        ],
    }


def norm_checks(row: dict[str, Any], as_of: date | None = None) -> dict[str, bool | None]:
    """For one supply row: does each ratio meet its norm (None when not computable)."""
    out: dict[str, bool | None] = {}
    for norm in norms(as_of):
        value = row.get(norm.indicator)
        if value is None:
            out[norm.indicator] = None
        else:
            out[norm.indicator] = value >= norm.target if norm.direction == "min" else value <= norm.target
    return out
