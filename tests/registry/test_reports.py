import pytest
from registry_helpers import load_small_county
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, Actor
from tiercare.registry.importing import import_rows
from tiercare.registry.models import Division
from tiercare.registry.reports import blank_spot_summary, blank_spots, supply


def test_blank_spots_by_kind_with_exemption(session):
    load_small_county(session)
    spots = blank_spots(session, SYSTEM)
    by_kind = {}
    for spot in spots:
        by_kind.setdefault(spot.kind, []).append(spot)
    # 乙乡 has no township health centre; 西村 has no clinic (and is ~6 km from 甲镇卫生院);
    # 南村's clinic has only an unqualified doctor; the urban community needs no clinic.
    assert [s.division_name for s in by_kind["township_without_health_centre"]] == ["乙乡"]
    assert [s.division_name for s in by_kind["village_without_clinic"]] == ["西村"]
    assert not by_kind["village_without_clinic"][0].exempt
    assert [s.facility_code for s in by_kind["clinic_without_qualified_doctor"]] == ["V2"]
    assert "county_without_public_hospital" not in by_kind
    # With a 10 km exemption, 西村 (about 7 km from the centre) is exempt, with the reason.
    wide = blank_spots(session, SYSTEM, exempt_within_km=10)
    village = next(s for s in wide if s.kind == "village_without_clinic")
    assert village.exempt and "甲镇卫生院" in village.exemption and "km" in village.exemption
    assert blank_spot_summary(wide)["village_without_clinic"] == 0
    assert blank_spot_summary(wide)["exempt_villages"] == 1


def test_closed_hospital_is_a_blank_spot_after_closing_only(session):
    load_small_county(session)
    import_rows(session, "facilities", [
        {"code": "H1", "name": "县人民医院", "type": "county_general_hospital",
         "division_code": "140725100", "lon": "113.1", "lat": "37.9", "closed_on": "2024-01-01"}],
        actor=SYSTEM)
    import datetime as dt

    before = blank_spot_summary(blank_spots(session, SYSTEM, as_of=dt.date(2023, 6, 30)))
    after = blank_spot_summary(blank_spots(session, SYSTEM, as_of=dt.date(2024, 6, 30)))
    assert before["county_without_public_hospital"] == 0
    assert after["county_without_public_hospital"] == 1


def test_supply_ratios_by_hand(session):
    load_small_county(session)
    report = supply(session, SYSTEM)
    county = next(r for r in report["rows"] if r["level"] == "county")
    # Beds 300 + 20; physicians 20 + 5 + 4; nurses 30 + 4; GPs 2; village doctors 2;
    # population 10,000 (rural 6,000).
    assert county["beds"] == 320 and county["beds_per_1000"] == pytest.approx(32.0)
    assert county["physicians"] == 29 and county["physicians_per_1000"] == pytest.approx(2.9)
    assert county["nurses_per_1000"] == pytest.approx(3.4)
    assert county["gps_per_10000"] == pytest.approx(2.0)
    assert county["village_doctors_per_1000"] == pytest.approx(2 / 6, abs=1e-3)
    assert county["nurse_per_physician"] == pytest.approx(34 / 29, abs=1e-3)
    assert report["structure"]["type"]["village_clinic"]["facilities"] == 2
    assert {n["indicator"] for n in report["norms"]} >= {"beds_per_1000", "gps_per_10000"}


def test_scope_limits_reports(session):
    load_small_county(session)
    township = session.scalar(select(Division).where(Division.code == "140725200000"))
    actor = Actor(user_id=None, username="t", role="planner", division_prefix=township.prefix)
    spots = blank_spots(session, actor)
    assert {s.division_code[:9] for s in spots} == {"140725200"}
