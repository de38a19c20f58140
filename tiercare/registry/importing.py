"""All-or-nothing imports of registry files, with a report of every bad row.

An import first validates every row of the file against the file itself and the database,
collecting every problem (row, column, reason). If any problem is found nothing is written and
:class:`~tiercare.errors.InputError` carries the full report. Otherwise all rows are upserted by
code in one transaction; rows equal to what is stored change nothing (re-importing a file is a
no-op), and every change is audited.

Column formats: ``docs/import-formats.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from tiercare.auth.service import Actor, audit
from tiercare.coords import gcj02_to_wgs84, haversine_m, in_china, wgs84_to_gcj02
from tiercare.errors import ForbiddenError, InputError, Problem
from tiercare.registry.codes import level_of, normalise_code, parent_code, prefix_of
from tiercare.registry.models import (
    Division,
    Facility,
    FacilityResource,
    FacilityType,
    MedicalGroup,
    MedicalGroupMember,
    StaffMember,
)
from tiercare.registry.tables import read_input_file, read_table, read_table_bytes

URBAN_RURAL_CLASSES = {"111", "112", "121", "122", "123", "210", "220"}
FACILITY_LEVELS = {"primary", "secondary", "tertiary", "village"}
OWNERSHIPS = {"public", "collective", "private"}
CENTRES = {"chest_pain", "stroke", "trauma", "critical_maternal", "critical_neonatal"}
CADRES = {
    "village_doctor", "physician", "assistant_physician", "nurse", "gp", "pharmacist",
    "technician", "other",
}
GROUP_KINDS = {"county_medical_group", "medical_alliance"}
RESOURCE_PREFIXES = {"beds_": "beds", "staff_": "staff", "equipment_": "equipment"}
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
#: Tolerance when checking that a point lies in its division (boundaries are simplified).
BOUNDARY_TOLERANCE_DEG = 0.003

TABLE_KINDS = ("divisions", "facilities", "staff", "medical_groups", "group_members")
GEOMETRY_KINDS = ("boundaries",)
KINDS = TABLE_KINDS + GEOMETRY_KINDS

COLUMNS: dict[str, tuple[str, ...]] = {
    "divisions": (
        "code", "name", "urban_rural_class", "population", "population_male",
        "population_female", "population_urban", "population_rural", "age_0_14", "age_15_64",
        "age_65_plus", "lon", "lat",
    ),
    "facilities": (
        "code", "name", "type", "level", "grade", "ownership", "government_run", "division_code",
        "lon", "lat", "address", "opened_on", "closed_on", "services", "centres", "building_m2",
        "parent_code", "beds_general", "staff_physician", "staff_assistant_physician",
        "staff_nurse", "staff_gp", "staff_pharmacist", "equipment_ct",
    ),
    "staff": (
        "code", "name", "sex", "cadre", "qualification", "registration_number", "facility_code",
        "village_codes",
    ),
    "medical_groups": ("code", "name", "kind", "division_code", "lead_facility_code"),
    "group_members": ("group_code", "facility_code", "role", "village_codes"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "divisions": ("code", "name"),
    "facilities": ("code", "name", "type", "division_code"),
    "staff": ("code", "name", "cadre", "facility_code"),
    "medical_groups": ("code", "name", "division_code", "lead_facility_code"),
    "group_members": ("group_code", "facility_code"),
}
HELP: dict[str, str] = {
    "code": "unique code (upsert key) / 唯一编码",
    "name": "name / 名称",
    "urban_rural_class": "城乡分类代码 111 112 121 122 123 210 220",
    "population": "total population / 常住人口",
    "lon": "longitude, WGS84 (not GCJ-02) / 经度",
    "lat": "latitude, WGS84 (not GCJ-02) / 纬度",
    "type": "facility type code (see /api/v1/facility-types) / 机构类型",
    "level": "primary | secondary | tertiary | village",
    "ownership": "public | collective | private",
    "government_run": "true | false (政府办)",
    "division_code": "division code, 6/9/12 digits / 所在区划代码",
    "services": "services separated by ';' / 服务项目",
    "centres": "chest_pain;stroke;trauma;critical_maternal;critical_neonatal",
    "cadre": "village_doctor | physician | assistant_physician | nurse | gp | pharmacist | ...",
    "qualification": "empty = none; licensed_physician | rural_doctor_certificate | ...",
    "village_codes": "12-digit village codes separated by ';' / 服务村",
}


#: Record keys filled from columns of another name. On update, a key whose columns are all
#: absent from the file keeps its stored value (a file with only ``code,name,population``
#: must not wipe coordinates); an empty cell in a present column does clear the value.
SOURCE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "divisions": {"population_by_age": ("age_0_14", "age_15_64", "age_65_plus")},
    "facilities": {"type_code": ("type",), "division_id": ("division_code",),
                   "division_prefix": ("division_code",)},
    "staff": {"facility_id": ("facility_code",), "village_ids": ("village_codes",)},
    "medical_groups": {"division_id": ("division_code",), "division_prefix": ("division_code",),
                       "lead_facility_id": ("lead_facility_code",)},
    "group_members": {"served_village_codes": ("village_codes",)},
}


def absent_keys(kind: str, records: list[dict[str, Any]], present: set[str]) -> set[str]:
    """Record keys of ``kind`` none of whose source columns is among ``present``.

    Keys that do not come from a column (a division's level, derived from its code) are never
    absent.
    """
    sources = SOURCE_COLUMNS[kind]
    vocabulary = set(COLUMNS[kind]) | {c for cols in sources.values() for c in cols}
    keys = {k for record in records for k in record}
    absent = set()
    for key in keys:
        columns = sources.get(key, (key,))
        if set(columns) <= vocabulary and not set(columns) & present:
            absent.add(key)
    return absent


@dataclass
class ImportResult:
    """What an import did."""

    kind: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return dict(self.__dict__)


@dataclass
class _Checker:
    """Collects problems while parsing the cells of one row."""

    row: int
    problems: list[Problem] = field(default_factory=list)

    def fail(self, column: str, reason: str, code: str = "invalid") -> None:
        self.problems.append(Problem(reason=reason, field=column, row=self.row, code=code))

    def text(self, data: dict[str, str], column: str, *, required: bool = False) -> str:
        value = data.get(column, "").strip()
        if required and not value:
            self.fail(column, "is required", "missing")
        return value

    def count(self, data: dict[str, str], column: str) -> int | None:
        raw = data.get(column, "").strip()
        if not raw:
            return None
        try:
            number = float(raw)
        except ValueError:
            self.fail(column, f"'{raw}' is not a number", "not_a_number")
            return None
        if not number.is_integer():
            self.fail(column, f"'{raw}' is not a whole number", "not_integer")
            return None
        if number < 0:
            self.fail(column, f"negative count {raw}", "negative")
            return None
        return int(number)

    def number(self, data: dict[str, str], column: str) -> float | None:
        raw = data.get(column, "").strip()
        if not raw:
            return None
        try:
            return float(raw)
        except ValueError:
            self.fail(column, f"'{raw}' is not a number", "not_a_number")
            return None

    def coordinates(self, data: dict[str, str]) -> tuple[float | None, float | None]:
        lon, lat = self.number(data, "lon"), self.number(data, "lat")
        if (lon is None) != (lat is None):
            self.fail("lon" if lon is None else "lat", "lon and lat must be given together")
            return None, None
        if lon is not None and not -180 <= lon <= 180:
            self.fail("lon", f"longitude {lon} outside -180..180", "out_of_range")
            return None, None
        if lat is not None and not -90 <= lat <= 90:
            hint = (" — longitude and latitude swapped?"
                    if lon is not None and in_china(lat, lon) else "")
            self.fail("lat", f"latitude {lat} outside -90..90{hint}", "out_of_range")
            return None, None
        return lon, lat

    def division_code(self, data: dict[str, str], column: str, *, required: bool) -> str | None:
        raw = self.text(data, column, required=required)
        if not raw:
            return None
        try:
            return normalise_code(raw)
        except ValueError as exc:
            self.fail(column, str(exc), "bad_code")
            return None

    def day(self, data: dict[str, str], column: str) -> date | None:
        raw = data.get(column, "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            self.fail(column, f"'{raw}' is not a date (YYYY-MM-DD)", "bad_date")
            return None

    def flag(self, data: dict[str, str], column: str, default: bool) -> bool:
        raw = data.get(column, "").strip().lower()
        if not raw:
            return default
        if raw in {"true", "1", "yes", "y", "是"}:
            return True
        if raw in {"false", "0", "no", "n", "否"}:
            return False
        self.fail(column, f"'{raw}' is not true/false", "bad_flag")
        return default

    def choice(self, data: dict[str, str], column: str, allowed: set[str], default: str) -> str:
        raw = data.get(column, "").strip() or default
        if raw not in allowed:
            self.fail(column, f"'{raw}' is not one of {', '.join(sorted(allowed))}", "unknown_value")
        return raw

    def codes_list(self, data: dict[str, str], column: str) -> list[str]:
        raw = data.get(column, "").strip()
        return [part.strip() for part in raw.split(";") if part.strip()] if raw else []


class _Context:
    """Database look-ups shared by the validators of one import (cached)."""

    def __init__(self, session: Session, actor: Actor,
                 numbers: list[int] | None = None) -> None:
        self.session = session
        self.actor = actor
        self.numbers = numbers
        #: Record keys left as stored when updating (their columns are not in the file).
        self.absent: set[str] = set()
        self._divisions: dict[str, Division | None] = {}

    def row_number(self, index: int) -> int:
        """Spreadsheet row number of data row ``index`` (header = row 1, blank rows counted)."""
        if self.numbers is not None and index < len(self.numbers):
            return self.numbers[index]
        return index + 2

    def division(self, code12: str) -> Division | None:
        if code12 not in self._divisions:
            self._divisions[code12] = self.session.scalar(
                select(Division).where(Division.code == code12)
            )
        return self._divisions[code12]

    def boundary_of(self, code12: str) -> BaseGeometry | None:
        """The boundary of a division or of its nearest ancestor that has one."""
        current: str | None = code12
        while current:
            division = self.division(current)
            if division is not None and division.boundary:
                return shape(division.boundary)
            current = parent_code(current)
        return None

    def facility_by_code(self, code: str) -> Facility | None:
        return self.session.scalar(select(Facility).where(Facility.code == code))


def _check_point_in_division(
    check: _Checker, ctx: _Context, code12: str, lon: float | None, lat: float | None
) -> None:
    if lon is None or lat is None:
        return
    boundary = ctx.boundary_of(code12)
    if boundary is None:
        return
    if boundary.buffer(BOUNDARY_TOLERANCE_DEG).contains(Point(lon, lat)):
        return
    wlon, wlat = gcj02_to_wgs84(lon, lat)
    if boundary.buffer(BOUNDARY_TOLERANCE_DEG / 3).contains(Point(wlon, wlat)):
        check.fail(
            "lon",
            f"({lon}, {lat}) lies outside division {code12} but inside it when read as GCJ-02: "
            f"GCJ-02 suspected — convert to WGS84 (≈ {wlon:.6f}, {wlat:.6f})",
            "gcj02_suspected",
        )
    else:
        check.fail("lon", f"({lon}, {lat}) lies outside division {code12}", "outside_division")


#: A move from the stored point to within this many metres of its GCJ-02 reading is a conversion.
GCJ_SHIFT_MATCH_M = 2.0


def _check_gcj_shift(check: _Checker, stored: tuple[float | None, float | None],
                     lon: float | None, lat: float | None) -> None:
    """Refuse a point that equals the stored WGS84 point shifted by the GCJ-02 offset.

    Inside a division the GCJ-02 offset (a few hundred metres) rarely crosses a boundary, but
    an update that moves a known point by exactly that offset is a GCJ-02 copy from a web map.
    """
    old_lon, old_lat = stored
    if lon is None or lat is None or old_lon is None or old_lat is None:
        return
    if not in_china(old_lon, old_lat):
        return
    glon, glat = wgs84_to_gcj02(old_lon, old_lat)
    if haversine_m(lon, lat, glon, glat) <= GCJ_SHIFT_MATCH_M:
        check.fail(
            "lon",
            f"({lon}, {lat}) is the stored point ({old_lon}, {old_lat}) shifted by the GCJ-02 "
            "offset: GCJ-02 suspected — give WGS84 coordinates",
            "gcj02_suspected",
        )


# ---------------------------------------------------------------------------------------------
# Validators: each returns (records ready to write, problems).
# ---------------------------------------------------------------------------------------------


def _validate_divisions(rows: list[dict[str, str]], ctx: _Context):  # type: ignore[no-untyped-def]
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, data in enumerate(rows):
        check = _Checker(ctx.row_number(index))
        code = check.division_code(data, "code", required=True)
        name = check.text(data, "name", required=True)
        urc = data.get("urban_rural_class", "").strip() or None
        if urc is not None and urc not in URBAN_RURAL_CLASSES:
            check.fail("urban_rural_class", f"'{urc}' is not an urban-rural class code")
        counts = {c: check.count(data, c) for c in COLUMNS["divisions"][3:11]}
        lon, lat = check.coordinates(data)
        if code is not None:
            stored = ctx.division(code)
            if stored is not None:
                _check_gcj_shift(check, (stored.lon, stored.lat), lon, lat)
            if code in seen:
                check.fail("code", f"duplicate code {code} (also row {seen[code]})", "duplicate")
            seen[code] = check.row
            if code and not ctx.actor.covers_division(code):
                check.fail("code", f"division {code} is outside your scope", "out_of_scope")
        total = counts["population"]
        male, female = counts["population_male"], counts["population_female"]
        if total is not None and male is not None and female is not None and male + female != total:
            check.fail("population_male", f"male {male} + female {female} ≠ total {total}")
        urban, rural = counts["population_urban"], counts["population_rural"]
        if total is not None and urban is not None and rural is not None and urban + rural != total:
            check.fail("population_urban", f"urban {urban} + rural {rural} ≠ total {total}")
        problems.extend(check.problems)
        if check.problems or code is None:
            continue
        ages = {k: counts[k] for k in ("age_0_14", "age_15_64", "age_65_plus") if counts[k] is not None}
        records.append(
            {
                "row": check.row,
                "code": code,
                "name": name,
                "level": level_of(code),
                "prefix": prefix_of(code),
                "urban_rural_class": urc,
                "population": total,
                "population_male": male,
                "population_female": female,
                "population_urban": urban,
                "population_rural": rural,
                "population_by_age": ages or None,
                "lon": lon,
                "lat": lat,
            }
        )
    # Parents must exist in the file or in the database.
    in_file = {r["code"] for r in records} | set(seen)
    for record in records:
        parent = parent_code(record["code"])
        if parent and parent not in in_file and ctx.division(parent) is None:
            problems.append(
                Problem(
                    reason=f"parent division {parent} of {record['code']} is unknown "
                    "(add it to the file or import it first)",
                    field="code",
                    row=record["row"],
                    code="unknown_division",
                )
            )
    records.sort(key=lambda r: len(r["prefix"]))
    return records, problems


def _validate_facilities(rows: list[dict[str, str]], ctx: _Context):  # type: ignore[no-untyped-def]
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    types = {t.code: t for t in ctx.session.scalars(select(FacilityType))}
    seen: dict[str, int] = {}
    in_file = {d.get("code", "").strip() for d in rows}
    stored = {f.code: f for f in ctx.session.scalars(
        select(Facility).where(Facility.code.in_(sorted(in_file - {""}))))}
    for index, data in enumerate(rows):
        check = _Checker(ctx.row_number(index))
        code = check.text(data, "code", required=True)
        name = check.text(data, "name", required=True)
        type_code = check.text(data, "type", required=True)
        if type_code and type_code not in types:
            check.fail("type", f"unknown facility type '{type_code}'", "unknown_type")
        level_default = types[type_code].tier if type_code in types else "primary"
        level = check.choice(data, "level", FACILITY_LEVELS, level_default)
        ownership = check.choice(data, "ownership", OWNERSHIPS, "public")
        government_run = check.flag(data, "government_run", ownership == "public")
        division_code = check.division_code(data, "division_code", required=True)
        division = ctx.division(division_code) if division_code else None
        if division_code and division is None:
            check.fail("division_code", f"unknown division code {division_code}", "unknown_division")
        if division is not None and not ctx.actor.covers_division(division.code):
            check.fail("division_code", f"division {division.code} is outside your scope",
                       "out_of_scope")
        lon, lat = check.coordinates(data)
        if division is not None:
            _check_point_in_division(check, ctx, division.code, lon, lat)
        stored_facility = stored.get(code)
        if stored_facility is not None:
            _check_gcj_shift(check, (stored_facility.lon, stored_facility.lat), lon, lat)
        opened, closed = check.day(data, "opened_on"), check.day(data, "closed_on")
        if opened and closed and closed < opened:
            check.fail("closed_on", f"closed {closed} before opened {opened}")
        services = check.codes_list(data, "services")
        for service in services:
            if not _SNAKE.match(service):
                check.fail("services", f"service code '{service}' must be snake_case")
        centres = check.codes_list(data, "centres")
        for centre in centres:
            if centre not in CENTRES:
                check.fail("centres", f"unknown centre '{centre}' (one of {', '.join(sorted(CENTRES))})")
        building = check.number(data, "building_m2")
        if building is not None and building < 0:
            check.fail("building_m2", f"negative area {building}", "negative")
        parent = check.text(data, "parent_code")
        if parent and parent not in in_file and ctx.facility_by_code(parent) is None:
            check.fail("parent_code", f"unknown parent facility '{parent}'", "unknown_facility")
        resources: dict[tuple[str, str], int] = {}
        for column in data:
            for prefix, category in RESOURCE_PREFIXES.items():
                if column.startswith(prefix) and len(column) > len(prefix):
                    value = check.count(data, column)
                    if value is not None:
                        resources[(category, column[len(prefix):])] = value
        if code:
            if code in seen:
                check.fail("code", f"duplicate code {code} (also row {seen[code]})", "duplicate")
            seen[code] = check.row
        problems.extend(check.problems)
        if check.problems:
            continue
        assert division is not None
        records.append(
            {
                "row": check.row,
                "code": code,
                "name": name,
                "type_code": type_code,
                "level": level,
                "grade": data.get("grade", "").strip(),
                "ownership": ownership,
                "government_run": government_run,
                "division_id": division.id,
                "division_prefix": division.prefix,
                "lon": lon,
                "lat": lat,
                "address": data.get("address", "").strip(),
                "opened_on": opened,
                "closed_on": closed,
                "services": services,
                "centres": centres,
                "building_m2": building,
                "parent_code": parent or None,
                "resources": resources,
            }
        )
    return records, problems


def _validate_staff(rows: list[dict[str, str]], ctx: _Context):  # type: ignore[no-untyped-def]
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    facilities: dict[str, Facility | None] = {}
    for index, data in enumerate(rows):
        check = _Checker(ctx.row_number(index))
        code = check.text(data, "code", required=True)
        name = check.text(data, "name", required=True)
        cadre = check.choice(data, "cadre", CADRES, "")
        sex = data.get("sex", "").strip().upper()
        if sex not in {"", "M", "F"}:
            check.fail("sex", f"'{sex}' is not M or F")
        facility_code = check.text(data, "facility_code", required=True)
        if facility_code and facility_code not in facilities:
            facilities[facility_code] = ctx.facility_by_code(facility_code)
        facility = facilities.get(facility_code)
        if facility_code and facility is None:
            check.fail("facility_code", f"unknown facility '{facility_code}'", "unknown_facility")
        if facility is not None and not ctx.actor.covers_division(facility.division_prefix):
            check.fail("facility_code", "facility is outside your scope", "out_of_scope")
        villages = _villages(check, ctx, data)
        if code:
            if code in seen:
                check.fail("code", f"duplicate code {code} (also row {seen[code]})", "duplicate")
            seen[code] = check.row
        problems.extend(check.problems)
        if check.problems:
            continue
        assert facility is not None
        records.append(
            {
                "row": check.row,
                "code": code,
                "name": name,
                "sex": sex,
                "cadre": cadre,
                "qualification": data.get("qualification", "").strip(),
                "registration_number": data.get("registration_number", "").strip(),
                "facility_id": facility.id,
                "village_ids": [division_id for division_id, _ in villages],
            }
        )
    return records, problems


def _villages(check: _Checker, ctx: _Context, data: dict[str, str]) -> list[tuple[int, str]]:
    """(id, 12-digit code) of every village named in the ``village_codes`` cell."""
    found = []
    for raw in check.codes_list(data, "village_codes"):
        try:
            code12 = normalise_code(raw)
        except ValueError as exc:
            check.fail("village_codes", str(exc), "bad_code")
            continue
        division = ctx.division(code12)
        if division is None:
            check.fail("village_codes", f"unknown village {code12}", "unknown_division")
        elif division.level != "village":
            check.fail("village_codes", f"{code12} is a {division.level}, not a village")
        else:
            found.append((division.id, code12))
    return found


def _validate_groups(rows: list[dict[str, str]], ctx: _Context):  # type: ignore[no-untyped-def]
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, data in enumerate(rows):
        check = _Checker(ctx.row_number(index))
        code = check.text(data, "code", required=True)
        name = check.text(data, "name", required=True)
        kind = check.choice(data, "kind", GROUP_KINDS, "county_medical_group")
        division_code = check.division_code(data, "division_code", required=True)
        division = ctx.division(division_code) if division_code else None
        if division_code and division is None:
            check.fail("division_code", f"unknown division code {division_code}", "unknown_division")
        lead_code = check.text(data, "lead_facility_code", required=True)
        lead = ctx.facility_by_code(lead_code) if lead_code else None
        if lead_code and lead is None:
            check.fail("lead_facility_code", f"unknown facility '{lead_code}'", "unknown_facility")
        if code:
            if code in seen:
                check.fail("code", f"duplicate code {code} (also row {seen[code]})", "duplicate")
            seen[code] = check.row
        problems.extend(check.problems)
        if check.problems:
            continue
        assert division is not None and lead is not None
        records.append(
            {
                "row": check.row,
                "code": code,
                "name": name,
                "kind": kind,
                "division_id": division.id,
                "division_prefix": division.prefix,
                "lead_facility_id": lead.id,
            }
        )
    return records, problems


def _validate_members(rows: list[dict[str, str]], ctx: _Context):  # type: ignore[no-untyped-def]
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    groups: dict[str, MedicalGroup | None] = {}
    for index, data in enumerate(rows):
        check = _Checker(ctx.row_number(index))
        group_code = check.text(data, "group_code", required=True)
        if group_code and group_code not in groups:
            groups[group_code] = ctx.session.scalar(
                select(MedicalGroup).where(MedicalGroup.code == group_code)
            )
        group = groups.get(group_code)
        if group_code and group is None:
            check.fail("group_code", f"unknown medical group '{group_code}'", "unknown_group")
        facility_code = check.text(data, "facility_code", required=True)
        facility = ctx.facility_by_code(facility_code) if facility_code else None
        if facility_code and facility is None:
            check.fail("facility_code", f"unknown facility '{facility_code}'", "unknown_facility")
        role = check.choice(data, "role", {"lead", "member"}, "member")
        villages = _villages(check, ctx, data)
        key = (group_code, facility_code)
        if key in seen:
            check.fail("facility_code", f"duplicate member (also row {seen[key]})", "duplicate")
        seen[key] = check.row
        problems.extend(check.problems)
        if check.problems:
            continue
        assert group is not None and facility is not None
        records.append(
            {
                "row": check.row,
                "group_id": group.id,
                "facility_id": facility.id,
                "role": role,
                "served_village_codes": [code12 for _, code12 in villages],
            }
        )
    return records, problems


# ---------------------------------------------------------------------------------------------
# Writers: upsert validated records; return (created, updated, unchanged).
# ---------------------------------------------------------------------------------------------


def _apply(obj: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set attributes that differ; return {field: [old, new]} of the changes."""
    changes = {}
    for key, value in values.items():
        old = getattr(obj, key)
        if old != value:
            changes[key] = [_jsonable(old), _jsonable(value)]
            setattr(obj, key, value)
    return changes


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def _upsert(
    ctx: _Context, model: type, key: dict[str, Any], values: dict[str, Any], entity: str
) -> tuple[Any, str]:
    session = ctx.session
    obj = session.scalar(select(model).filter_by(**key))
    if obj is None:
        obj = model(**key, **values)
        session.add(obj)
        session.flush()
        audit(session, ctx.actor, "create", entity, str(obj.id),
              after={k: _jsonable(v) for k, v in {**key, **values}.items()}, detail="import")
        return obj, "created"
    changes = _apply(obj, {k: v for k, v in values.items() if k not in ctx.absent})
    if changes:
        session.flush()
        audit(session, ctx.actor, "update", entity, str(obj.id),
              before={k: v[0] for k, v in changes.items()},
              after={k: v[1] for k, v in changes.items()}, detail="import")
        return obj, "updated"
    return obj, "unchanged"


def _write_divisions(ctx: _Context, records: list[dict[str, Any]], result: ImportResult) -> None:
    for record in records:
        parent = parent_code(record["code"])
        parent_row = ctx.division(parent) if parent else None
        values = {k: record[k] for k in record if k not in {"row", "code"}}
        values["parent_id"] = parent_row.id if parent_row else None
        obj, outcome = _upsert(ctx, Division, {"code": record["code"]}, values, "division")
        ctx._divisions[record["code"]] = obj  # noqa: SLF001
        _count(result, outcome)


def _write_facilities(ctx: _Context, records: list[dict[str, Any]], result: ImportResult) -> None:
    pending_parents = []
    for record in records:
        values = {k: record[k] for k in record if k not in {"row", "code", "resources", "parent_code"}}
        obj, outcome = _upsert(ctx, Facility, {"code": record["code"]}, values, "facility")
        changed = _write_resources(ctx, obj, record["resources"])
        if changed and outcome == "unchanged":
            outcome = "updated"
        pending_parents.append((obj, record["parent_code"], outcome))
        _count(result, outcome)
    for obj, parent, outcome in pending_parents:
        if outcome != "created" and "parent_code" in ctx.absent:
            continue
        parent_row = ctx.facility_by_code(parent) if parent else None
        parent_id = parent_row.id if parent_row else None
        if obj.parent_facility_id != parent_id:
            old = (ctx.session.get(Facility, obj.parent_facility_id)
                   if obj.parent_facility_id else None)
            before = old.code if old else None
            obj.parent_facility_id = parent_id
            ctx.session.flush()
            if outcome != "created":
                audit(ctx.session, ctx.actor, "update", "facility", str(obj.id),
                      before={"parent_code": before}, after={"parent_code": parent or None},
                      detail="import")
                if outcome == "unchanged":
                    result.unchanged -= 1
                    result.updated += 1
    ctx.session.flush()


def _write_resources(ctx: _Context, facility: Facility, wanted: dict[tuple[str, str], int]) -> bool:
    """Set the facility's resources to those named in the file (others are kept)."""
    existing = {(r.category, r.item): r for r in facility.resources}
    changes = {}
    for key, quantity in wanted.items():
        row = existing.get(key)
        if row is None:
            facility.resources.append(
                FacilityResource(category=key[0], item=key[1], quantity=quantity)
            )
            changes[f"{key[0]}.{key[1]}"] = [None, quantity]
        elif row.quantity != quantity:
            changes[f"{key[0]}.{key[1]}"] = [row.quantity, quantity]
            row.quantity = quantity
    if changes:
        ctx.session.flush()
        audit(ctx.session, ctx.actor, "update", "facility_resources", str(facility.id),
              before={k: v[0] for k, v in changes.items()},
              after={k: v[1] for k, v in changes.items()}, detail="import")
    return bool(changes)


def _write_staff(ctx: _Context, records: list[dict[str, Any]], result: ImportResult) -> None:
    for record in records:
        values = {k: record[k] for k in record if k not in {"row", "code", "village_ids"}}
        obj, outcome = _upsert(ctx, StaffMember, {"code": record["code"]}, values, "staff")
        wanted = sorted(record["village_ids"])
        current = sorted(v.id for v in obj.villages)
        if outcome != "created" and "village_ids" in ctx.absent:
            wanted = current
        if wanted != current:
            obj.villages = [ctx.session.get(Division, i) for i in wanted]  # type: ignore[misc]
            ctx.session.flush()
            audit(ctx.session, ctx.actor, "update", "staff_villages", str(obj.id),
                  before={"villages": current}, after={"villages": wanted}, detail="import")
            if outcome == "unchanged":
                outcome = "updated"
        _count(result, outcome)


def _write_groups(ctx: _Context, records: list[dict[str, Any]], result: ImportResult) -> None:
    for record in records:
        values = {k: record[k] for k in record if k not in {"row", "code"}}
        _, outcome = _upsert(ctx, MedicalGroup, {"code": record["code"]}, values, "medical_group")
        _count(result, outcome)


def _write_members(ctx: _Context, records: list[dict[str, Any]], result: ImportResult) -> None:
    for record in records:
        key = {"group_id": record["group_id"], "facility_id": record["facility_id"]}
        values = {"role": record["role"], "served_village_codes": record["served_village_codes"]}
        _, outcome = _upsert(ctx, MedicalGroupMember, key, values, "medical_group_member")
        _count(result, outcome)


def _count(result: ImportResult, outcome: str) -> None:
    setattr(result, outcome, getattr(result, outcome) + 1)


_VALIDATORS: dict[str, Callable[..., Any]] = {
    "divisions": _validate_divisions,
    "facilities": _validate_facilities,
    "staff": _validate_staff,
    "medical_groups": _validate_groups,
    "group_members": _validate_members,
}
_WRITERS: dict[str, Callable[..., None]] = {
    "divisions": _write_divisions,
    "facilities": _write_facilities,
    "staff": _write_staff,
    "medical_groups": _write_groups,
    "group_members": _write_members,
}


def import_rows(
    session: Session, kind: str, rows: list[dict[str, str]], *, actor: Actor
) -> ImportResult:
    """Validate and upsert table rows of one kind, all or nothing.

    Raises
    ------
    InputError
        With every bad row (row number, column, reason); nothing is written.
    """
    if kind not in _VALIDATORS:
        raise InputError.single(f"unknown import kind '{kind}' (one of {', '.join(KINDS)})",
                                field="kind")
    if not actor.can_edit_registry:
        raise ForbiddenError(f"role '{actor.role}' may not import")
    if not rows:
        raise InputError.single("the file has no data rows", field="file", code="no_rows")
    present = {column for row in rows for column in row}
    missing = [c for c in REQUIRED[kind] if c not in present]
    if missing:
        hint = ("" if present & set(COLUMNS[kind]) else
                f" — is the header row missing? The first row must name the columns "
                f"({', '.join(COLUMNS[kind][:4])}, …)")
        raise InputError.single(f"missing required column(s): {', '.join(missing)}{hint}",
                                field="header", row=1, code="missing_column")
    ctx = _Context(session, actor, getattr(rows, "numbers", None))
    records, problems = _VALIDATORS[kind](rows, ctx)
    if problems:
        raise InputError(problems)
    ctx.absent = absent_keys(kind, records, present)
    result = ImportResult(kind=kind, rows=len(rows))
    with session.begin_nested():
        _WRITERS[kind](ctx, records, result)
    return result


def _degrees_problem(geometry: BaseGeometry) -> str | None:
    """Why a geometry read as WGS84 cannot be longitude/latitude degrees, or None."""
    min_x, min_y, max_x, max_y = geometry.bounds
    if -180 <= min_x and max_x <= 180 and -90 <= min_y and max_y <= 90:
        return None
    if -90 <= min_x and max_x <= 90 and in_china(min_y, min_x) and in_china(max_y, max_x):
        return "coordinates are (latitude, longitude): longitude and latitude swapped"
    return (f"coordinates ({min_x:.0f}, {min_y:.0f}) are not longitude/latitude degrees: "
            "projected coordinates without a CRS? (e.g. EPSG:3857 saved without a 'crs' member; "
            "give the CRS or reproject to EPSG:4326)")


def _outside_parent(ctx: _Context, code12: str, geometry: BaseGeometry) -> str | None:
    """Why ``geometry`` cannot belong to division ``code12`` (it misses the parent), or None."""
    parent = parent_code(code12)
    boundary = ctx.boundary_of(parent) if parent else None
    if boundary is None or boundary.buffer(BOUNDARY_TOLERANCE_DEG).intersects(geometry):
        return None
    return (f"the geometry lies outside the parent division {parent}: wrong CRS, swapped "
            "coordinates or GCJ-02/BD-09 shifted data?")


def import_boundaries(
    session: Session, data: bytes, filename: str, *, actor: Actor
) -> ImportResult:
    """Attach boundaries (GeoJSON or GeoPackage, any CRS) to divisions by code.

    Polygons become the division's boundary; a Point (as a divisions export writes where no
    boundary is known) sets the division's location, so an export re-imports as a no-op.
    Geometries that are not longitude/latitude degrees once read (a projected file without a
    CRS, swapped axes) or that miss the parent division's boundary are refused.
    """
    import tempfile

    import geopandas as gpd

    suffix = Path(filename).suffix.lower()
    if suffix not in {".geojson", ".json", ".gpkg"}:
        raise InputError.single(f"unsupported file type '{suffix}' (use .geojson or .gpkg)",
                                field="file")
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        try:
            frame = gpd.read_file(handle.name)
        except Exception as exc:  # pyogrio raises DataSourceError and others
            reason = str(exc).replace(handle.name, filename).split("; It might help")[0]
            raise InputError.single(f"cannot read {filename}: {reason}", field="file") from exc
    if frame.crs is None:
        raise InputError.single("the file has no CRS definition", field="crs")
    if frame.crs.to_epsg() not in (4326, 4490):  # CGCS2000 is within centimetres of WGS84
        frame = frame.to_crs(4326)
    if len(frame) == 0:
        raise InputError.single(f"{filename} has no features", field="file", code="no_rows")
    ctx = _Context(session, actor)
    problems: list[Problem] = []
    updates: list[tuple[Division, dict[str, Any]]] = []
    for index, (_, feature) in enumerate(frame.iterrows()):
        row = index + 1
        raw = str(feature.get("code") or "").strip()
        if not raw and feature.get("gb"):
            raw = str(feature["gb"]).strip()[3:]
        try:
            code12 = normalise_code(raw)
        except ValueError as exc:
            problems.append(Problem(str(exc), field="code", row=row, code="bad_code"))
            continue
        division = ctx.division(code12)
        geometry = feature.geometry
        if division is None:
            problems.append(Problem(f"unknown division {code12}", field="code", row=row,
                                    code="unknown_division"))
        elif not actor.covers_division(code12):
            problems.append(Problem(f"division {code12} is outside your scope", field="code",
                                    row=row, code="out_of_scope"))
        elif geometry is None or geometry.is_empty or geometry.geom_type not in {
                "Polygon", "MultiPolygon", "Point"}:
            kind = "no geometry" if geometry is None or geometry.is_empty else (
                f"a {geometry.geom_type}")
            problems.append(Problem(
                f"geometry must be a Polygon, MultiPolygon or Point, not {kind}",
                field="geometry", row=row))
        elif (reason := _degrees_problem(geometry)) is not None:
            problems.append(Problem(reason, field="geometry", row=row, code="out_of_range"))
        elif (reason := _outside_parent(ctx, code12, geometry)) is not None:
            problems.append(Problem(reason, field="geometry", row=row, code="outside_division"))
        elif geometry.geom_type != "Point" and not geometry.is_valid:
            problems.append(Problem("invalid polygon (self-intersecting?)", field="geometry",
                                    row=row))
        else:
            updates.append((division, json.loads(json.dumps(mapping(geometry)))))
    if problems:
        raise InputError(problems)
    result = ImportResult(kind="boundaries", rows=len(frame))
    with session.begin_nested():
        for division, geojson in updates:
            if geojson["type"] == "Point":
                lon, lat = (round(float(v), 6) for v in geojson["coordinates"][:2])
                if (division.lon, division.lat) == (lon, lat):
                    result.unchanged += 1
                    continue
                before = {"lon": division.lon, "lat": division.lat}
                division.lon, division.lat = lon, lat
                audit(session, actor, "update", "division_point", str(division.id),
                      before=before, after={"lon": lon, "lat": lat},
                      detail=f"point from {filename}")
                result.updated += 1
                continue
            if division.boundary == geojson:
                result.unchanged += 1
                continue
            had = division.boundary is not None
            division.boundary = geojson
            if division.lon is None:
                centre = shape(geojson).representative_point()
                division.lon, division.lat = round(centre.x, 6), round(centre.y, 6)
            audit(session, actor, "update", "division_boundary", str(division.id),
                  detail=f"boundary {'replaced' if had else 'added'} from {filename}")
            result.updated += 1
        session.flush()
    return result


def import_file(session: Session, kind: str, path: Path, *, actor: Actor) -> ImportResult:
    """Import a file from disk (table kinds: CSV/.xlsx; boundaries: GeoJSON/GeoPackage)."""
    if kind == "boundaries":
        return import_boundaries(session, read_input_file(path), path.name, actor=actor)
    return import_rows(session, kind, read_table(path), actor=actor)


def import_upload(session: Session, kind: str, data: bytes, filename: str, *,
                  actor: Actor) -> ImportResult:
    """Import an uploaded file's bytes (same rules as :func:`import_file`)."""
    if kind == "boundaries":
        return import_boundaries(session, data, filename, actor=actor)
    return import_rows(session, kind, read_table_bytes(data, filename), actor=actor)
