"""Small registry fixtures built through the importer (the same path users take)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tiercare.auth.service import SYSTEM
from tiercare.registry.importing import import_rows

# A square county around (113.0..113.4, 37.8..38.0) with two townships and four villages.
COUNTY_SQUARE = {"type": "Polygon", "coordinates": [[[113.0, 37.8], [113.4, 37.8], [113.4, 38.0],
                                                     [113.0, 38.0], [113.0, 37.8]]]}

DIVISIONS = [
    {"code": "14", "name": "山西省"},
    {"code": "1407", "name": "晋中市"},
    {"code": "140725", "name": "测试县", "population": "10000", "population_urban": "4000",
     "population_rural": "6000"},
    {"code": "140725100", "name": "甲镇", "population": "6000", "lon": "113.1", "lat": "37.9"},
    {"code": "140725200", "name": "乙乡", "population": "4000", "lon": "113.3", "lat": "37.9"},
    {"code": "140725100001", "name": "甲镇社区", "urban_rural_class": "111",
     "population": "4000", "lon": "113.1", "lat": "37.9"},
    {"code": "140725100201", "name": "东村", "urban_rural_class": "220", "population": "1000",
     "lon": "113.11", "lat": "37.91"},
    {"code": "140725100202", "name": "西村", "urban_rural_class": "220", "population": "1000",
     "lon": "113.05", "lat": "37.85"},
    {"code": "140725200201", "name": "南村", "urban_rural_class": "220", "population": "4000",
     "lon": "113.3", "lat": "37.85"},
]

FACILITIES = [
    {"code": "H1", "name": "县人民医院", "type": "county_general_hospital", "division_code": "140725100",
     "lon": "113.1", "lat": "37.9", "beds_general": "300", "staff_physician": "20",
     "staff_assistant_physician": "5", "staff_nurse": "30", "staff_gp": "2",
     "centres": "stroke;chest_pain"},
    {"code": "T1", "name": "甲镇卫生院", "type": "township_health_centre", "division_code": "140725100",
     "lon": "113.1", "lat": "37.9", "beds_general": "20", "staff_physician": "4", "staff_nurse": "4"},
    {"code": "V1", "name": "东村卫生室", "type": "village_clinic", "division_code": "140725100201",
     "lon": "113.11", "lat": "37.91"},
    {"code": "V2", "name": "南村卫生室", "type": "village_clinic", "division_code": "140725200201",
     "lon": "113.3", "lat": "37.85"},
]

STAFF = [
    {"code": "S1", "name": "张医生", "cadre": "village_doctor",
     "qualification": "rural_doctor_certificate", "facility_code": "V1",
     "village_codes": "140725100201"},
    {"code": "S2", "name": "李医生", "cadre": "village_doctor", "qualification": "",
     "facility_code": "V2", "village_codes": "140725200201"},
]


def load_small_county(session: Session) -> None:
    """Import the small county (divisions, facilities, staff) and commit."""
    import_rows(session, "divisions", DIVISIONS, actor=SYSTEM)
    import_rows(session, "facilities", FACILITIES, actor=SYSTEM)
    import_rows(session, "staff", STAFF, actor=SYSTEM)
    session.commit()
