"""A small, deterministic county for the page and browser tests.

Six townships of 3 × 3 villages on a jittered lattice (shared vertices, so the boundaries tile
the county exactly), with hospitals, township health centres, village clinics and village
doctors. Some gaps are built in on purpose: one township without a health centre, some
villages without a clinic, some clinics whose doctor has no qualification, one closed clinic.
Everything is imported through the registry importer, the way a user would load it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from shapely.geometry import Polygon, mapping
from shapely.ops import unary_union
from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM, create_user
from tiercare.registry.importing import import_boundaries, import_rows

PASSWORD = "secret-pass-1"
LON0, LAT0 = 113.0, 37.70
CELL_LON, CELL_LAT = 0.07, 0.05
COLS, ROWS = 9, 6  # village cells; townships are 3 × 3 blocks
COUNTY = "140725"
TOWNSHIP_NAMES = ["朝阳镇", "南燕竹镇", "宗艾镇", "平头镇", "松塔镇", "马首乡"]
VILLAGE_FIRST = "东西南北上下前后大小新老红青石柳杨李"
VILLAGE_SECOND = "庄村沟坪峪岭家堡"
NO_CENTRE_TOWNSHIP = 4  # index of the township without a health centre
CLOSED_CLINIC_VILLAGE = 12  # this village's clinic closed in 2018 (and has no other)


def _node(i: int, j: int) -> tuple[float, float]:
    """Lattice node (i along lon, j along lat), jittered deterministically."""
    jx = 0.28 * math.sin(12.9898 * i + 78.233 * j)
    jy = 0.28 * math.sin(39.3468 * i + 11.135 * j + 1.7)
    return (round(LON0 + (i + jx) * CELL_LON, 6), round(LAT0 + (j + jy) * CELL_LAT, 6))


def _cell(i: int, j: int) -> Polygon:
    return Polygon([_node(i, j), _node(i + 1, j), _node(i + 1, j + 1), _node(i, j + 1)])


def _township_code(t: int) -> str:
    return f"{COUNTY}{100 + 100 * t:03d}"


def build() -> dict[str, Any]:
    """Rows of every kind plus the boundaries, as the importer takes them."""
    divisions: list[dict[str, str]] = [
        {"code": "14", "name": "山西省"},
        {"code": "1407", "name": "晋中市"},
    ]
    boundaries: dict[str, dict[str, Any]] = {}
    villages: list[dict[str, str]] = []
    townships: list[dict[str, str]] = []
    cells_of: dict[str, list[Polygon]] = {}
    k = 0
    for t in range(6):
        tx, ty = (t % 3) * 3, (t // 3) * 3
        tcode = _township_code(t)
        cells_of[tcode] = []
        for n in range(9):
            i, j = tx + n % 3, ty + n // 3
            cell = _cell(i, j)
            cells_of[tcode].append(cell)
            centre = cell.representative_point()
            code = f"{tcode}{201 + n:03d}"
            urc = ("121" if t == 0 else "210") if n == 4 else "220"
            population = 600 + (37 * k) % 900
            name = VILLAGE_FIRST[k % len(VILLAGE_FIRST)] + VILLAGE_SECOND[k % 8]
            name = name + ("社区" if urc == "121" else "村")
            villages.append({"code": code, "name": name, "urban_rural_class": urc,
                             "population": str(population), "lon": f"{centre.x:.6f}",
                             "lat": f"{centre.y:.6f}", "township": tcode})
            boundaries[code] = mapping(cell)
            k += 1
        shape = unary_union(cells_of[tcode])
        point = cells_of[tcode][4].representative_point()
        inside = [v for v in villages if v["township"] == tcode]
        pop = sum(int(v["population"]) for v in inside)
        rural = sum(int(v["population"]) for v in inside if v["urban_rural_class"] > "200")
        townships.append({"code": tcode, "name": TOWNSHIP_NAMES[t], "population": str(pop),
                          "population_urban": str(pop - rural), "population_rural": str(rural),
                          "lon": f"{point.x:.6f}", "lat": f"{point.y:.6f}"})
        boundaries[tcode] = mapping(shape)
    total = sum(int(v["population"]) for v in villages)
    urban = sum(int(v["population"]) for v in villages if v["urban_rural_class"] < "200")
    divisions.append({"code": COUNTY, "name": "示范县", "population": str(total),
                      "population_urban": str(urban), "population_rural": str(total - urban)})
    boundaries[COUNTY] = mapping(unary_union([c for cs in cells_of.values() for c in cs]))
    divisions += townships
    divisions += [{key: v[key] for key in v if key != "township"} for v in villages]

    seat = villages[4]  # the county seat community
    facilities: list[dict[str, str]] = []

    def near(v: dict[str, str], dx: float, dy: float) -> dict[str, str]:
        return {"lon": f"{float(v['lon']) + dx:.6f}", "lat": f"{float(v['lat']) + dy:.6f}"}

    hospitals = [("H001", "示范县人民医院", "county_general_hospital", "400", "90", "120", "8",
                  "stroke;chest_pain;trauma"),
                 ("H002", "示范县中医医院", "county_tcm_hospital", "150", "35", "50", "3", ""),
                 ("H003", "示范县妇幼保健院", "county_mch_hospital", "60", "18", "30", "2",
                  "critical_maternal;critical_neonatal")]
    for n, (code, name, kind, beds, phys, nurses, gps, centres) in enumerate(hospitals):
        facilities.append({"code": code, "name": name, "type": kind, "level": "secondary",
                           "grade": "二级甲等" if n == 0 else "", "division_code": seat["code"],
                           **near(seat, 0.004 * (n - 1), 0.003), "beds_general": beds,
                           "beds_icu": "12" if n == 0 else "", "staff_physician": phys,
                           "staff_assistant_physician": str(int(phys) // 5),
                           "staff_nurse": nurses, "staff_gp": gps, "centres": centres,
                           "equipment_ct": "2" if n == 0 else "",
                           "services": "outpatient;inpatient;emergency",
                           "address": f"示范县城关{n + 1}号", "opened_on": f"19{52 + 10 * n}-05-01"})
    for t, township in enumerate(townships):
        centre_village = next(v for v in villages if v["township"] == township["code"]
                              and v["urban_rural_class"] != "220")
        if t == NO_CENTRE_TOWNSHIP:
            facilities.append({"code": f"P{t:02d}", "name": f"{township['name']}便民诊所",
                               "type": "private_clinic", "ownership": "private",
                               "government_run": "false", "division_code": township["code"],
                               **near(centre_village, -0.005, 0.0), "staff_physician": "1"})
            continue
        facilities.append({"code": f"T{t:02d}", "name": f"{township['name']}卫生院",
                           "type": "township_health_centre_central" if t == 1
                           else "township_health_centre",
                           "division_code": township["code"], **near(centre_village, -0.005, 0),
                           "beds_general": str(20 + 6 * t), "staff_physician": str(5 + t),
                           "staff_assistant_physician": "2", "staff_nurse": str(6 + t),
                           "staff_gp": str(1 + t % 3),
                           "services": "outpatient;inpatient;vaccination;public_health"})
    for t, township in enumerate(townships):
        corner = next(v for v in villages if v["township"] == township["code"])
        facilities.append({"code": f"Q{t:02d}", "name": f"{corner['name']}个体诊所",
                           "type": "private_clinic", "ownership": "private",
                           "government_run": "false", "division_code": corner["code"],
                           **near(corner, -0.003, -0.002), "staff_physician": "1"})
    staff: list[dict[str, str]] = []
    for k, village in enumerate(villages):
        if village["urban_rural_class"] != "220" or k % 7 == 3:
            continue  # urban communities and every 7th village have no clinic
        code = f"V{k:03d}"
        row = {"code": code, "name": f"{village['name']}卫生室", "type": "village_clinic",
               "level": "village", "division_code": village["code"],
               **near(village, 0.002, 0.001), "services": "outpatient;public_health"}
        if k == CLOSED_CLINIC_VILLAGE:
            row.update(opened_on="2004-03-01", closed_on="2018-12-31")
        facilities.append(row)
        if k == CLOSED_CLINIC_VILLAGE:
            continue
        staff.append({"code": f"D{k:03d}", "name": f"{village['name'][:1]}医生{k}",
                      "sex": "MF"[k % 2], "cadre": "village_doctor",
                      "qualification": "" if k % 5 == 1 else "rural_doctor_certificate",
                      "registration_number": "" if k % 5 == 1 else f"XC1407{k:05d}",
                      "facility_code": code, "village_codes": village["code"]})
    return {"divisions": divisions, "boundaries": boundaries, "facilities": facilities,
            "staff": staff, "villages": villages, "townships": townships}


COUNTY_DATA = build()


def load(session: Session) -> None:
    """Import the county, its boundaries, facilities and staff; create two users; commit."""
    import_rows(session, "divisions", COUNTY_DATA["divisions"], actor=SYSTEM)
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": code}, "geometry": geometry}
        for code, geometry in COUNTY_DATA["boundaries"].items()]}
    import_boundaries(session, json.dumps(collection).encode(), "county.geojson", actor=SYSTEM)
    import_rows(session, "facilities", COUNTY_DATA["facilities"], actor=SYSTEM)
    import_rows(session, "staff", COUNTY_DATA["staff"], actor=SYSTEM)
    create_user(session, username="planner", password=PASSWORD, role="planner",
                full_name="王规划", division_code=COUNTY)
    create_user(session, username="township", password=PASSWORD, role="facility_staff",
                full_name="李卫生院", division_code=_township_code(0))
    session.commit()
