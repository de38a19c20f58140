import copy
import json
import subprocess
import sys

import pytest
from openpyxl import Workbook
from registry_helpers import COUNTY_SQUARE, DIVISIONS, FACILITIES, load_small_county
from sqlalchemy import func, select

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import SYSTEM
from tiercare.coords import wgs84_to_gcj02
from tiercare.errors import InputError
from tiercare.registry.exporting import export_file, write_template
from tiercare.registry.importing import import_boundaries, import_file, import_rows
from tiercare.registry.models import Division, Facility, FacilityResource, StaffMember


def _counts(session):
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Division, Facility, FacilityResource, StaffMember, AuditEntry)
    )


def test_import_then_reimport_changes_nothing(session):
    load_small_county(session)
    before = _counts(session)
    again = import_rows(session, "facilities", FACILITIES, actor=SYSTEM)
    session.commit()
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(FACILITIES))
    assert _counts(session) == before
    h1 = session.scalar(select(Facility).where(Facility.code == "H1"))
    assert h1.resource("beds", "general") == 300
    assert h1.division.code == "140725100000"
    assert sorted(h1.centres) == ["chest_pain", "stroke"]


def test_update_is_audited_with_before_and_after(session):
    load_small_county(session)
    rows = copy.deepcopy(FACILITIES)
    rows[1]["name"] = "甲镇中心卫生院"
    rows[1]["beds_general"] = "25"
    result = import_rows(session, "facilities", rows, actor=SYSTEM)
    session.commit()
    assert result.updated == 1
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "update").order_by(AuditEntry.id)
    ).all()
    assert any(e.before == {"name": "甲镇卫生院"} and e.after == {"name": "甲镇中心卫生院"}
               for e in entries)
    assert any(e.entity == "facility_resources" and e.after == {"beds.general": 25}
               for e in entries)


def test_bad_file_writes_nothing_and_reports_every_row(session):
    load_small_county(session)
    before = _counts(session)
    rows = [
        {"code": "N1", "name": "好的", "type": "village_clinic", "division_code": "140725100202",
         "lon": "113.05", "lat": "37.85"},
        {"code": "N2", "name": "坏类型", "type": "spaceship", "division_code": "140725100202"},
        {"code": "N3", "name": "负数", "type": "village_clinic", "division_code": "140725100202",
         "staff_nurse": "-2"},
        {"code": "N4", "name": "无区划", "type": "village_clinic", "division_code": "140725999999"},
        {"code": "N1", "name": "重复", "type": "village_clinic", "division_code": "140725100202"},
        {"code": "", "name": "", "type": "village_clinic", "division_code": "140725100202",
         "lon": "113.05"},
    ]
    with pytest.raises(InputError) as caught:
        import_rows(session, "facilities", rows, actor=SYSTEM)
    session.rollback()
    problems = {(p.row, p.field, p.code) for p in caught.value.problems}
    assert (3, "type", "unknown_type") in problems
    assert (4, "staff_nurse", "negative") in problems
    assert (5, "division_code", "unknown_division") in problems
    assert (6, "code", "duplicate") in problems
    assert (7, "code", "missing") in problems
    assert (7, "name", "missing") in problems
    assert any(p.row == 7 and p.field == "lat" for p in caught.value.problems)
    assert _counts(session) == before  # the good row N1 was not written either


def test_outside_division_and_gcj02_suspected(session):
    load_small_county(session)
    import_boundaries(session, json.dumps({"type": "FeatureCollection", "crs": {
        "type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": [{"type": "Feature", "properties": {"code": "140725"},
                      "geometry": COUNTY_SQUARE}]}).encode(), "county.geojson", actor=SYSTEM)
    session.commit()
    # A point just inside the eastern edge: in GCJ-02 it is pushed outside the county.
    lon, lat = 113.3985, 37.9
    glon, glat = wgs84_to_gcj02(lon, lat)
    rows = [
        {"code": "G1", "name": "GCJ", "type": "village_clinic", "division_code": "140725",
         "lon": f"{glon:.6f}", "lat": f"{glat:.6f}"},
        {"code": "G2", "name": "far", "type": "village_clinic", "division_code": "140725",
         "lon": "116.4", "lat": "39.9"},
    ]
    with pytest.raises(InputError) as caught:
        import_rows(session, "facilities", rows, actor=SYSTEM)
    codes = {(p.row, p.code) for p in caught.value.problems}
    assert codes == {(2, "gcj02_suspected"), (3, "outside_division")}


def test_real_boundary_and_nbs_lists(session, shared_data, tmp_path):
    """Import the real Shouyang township and village lists and the county boundary."""
    top = tmp_path / "top.csv"
    top.write_text("code,name\n14,山西省\n1407,晋中市\n140725,寿阳县\n", encoding="utf-8")
    import_file(session, "divisions", top, actor=SYSTEM)
    for name in ("townships_target_counties.csv", "villages_target_counties.csv"):
        lines = (shared_data / "admin" / name).read_text(encoding="utf-8").splitlines()
        subset = tmp_path / name
        subset.write_text("\n".join([lines[0]] + [ln for ln in lines[1:]
                                                   if ln.rstrip().endswith(",140725")]),
                          encoding="utf-8")
        import_file(session, "divisions", subset, actor=SYSTEM)
    import_file(session, "boundaries", shared_data / "boundaries" / "shouyang_140725.geojson",
                actor=SYSTEM)
    session.commit()
    levels = dict(session.execute(select(Division.level, func.count()).group_by(Division.level)).all())
    assert levels["township"] == 12  # the 2023 list (DOMAIN.md, data README)
    assert levels["village"] == 173
    county = session.scalar(select(Division).where(Division.code == "140725000000"))
    assert county.boundary["type"] in {"Polygon", "MultiPolygon"}
    # The county seat (about 113.18 E, 37.89 N) lies inside; Taiyuan (112.55, 37.87) does not.
    ok = import_rows(session, "facilities", [
        {"code": "R1", "name": "县医院", "type": "county_general_hospital",
         "division_code": "140725", "lon": "113.18", "lat": "37.89"}], actor=SYSTEM)
    assert ok.created == 1
    with pytest.raises(InputError) as caught:
        import_rows(session, "facilities", [
            {"code": "R2", "name": "太原", "type": "county_general_hospital",
             "division_code": "140725", "lon": "112.55", "lat": "37.87"}], actor=SYSTEM)
    assert caught.value.problems[0].code == "outside_division"


def test_xlsx_round_trip_and_template(session, tmp_path):
    load_small_county(session)
    path = tmp_path / "facilities.xlsx"
    assert export_file(session, SYSTEM, "facilities", path) == len(FACILITIES)
    result = import_file(session, "facilities", path, actor=SYSTEM)
    assert result.unchanged == len(FACILITIES)
    template = tmp_path / "t.xlsx"
    write_template("staff", template)
    with pytest.raises(InputError):
        import_file(session, "staff", tmp_path / "missing.csv", actor=SYSTEM)
    wb = Workbook()
    wb.active.append(["code", "name", "type", "division_code"])
    wb.active.append(["X1", "无效", "village_clinic", "notacode"])
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    with pytest.raises(InputError) as caught:
        import_file(session, "facilities", bad, actor=SYSTEM)
    assert caught.value.problems[0].row == 2
    assert caught.value.problems[0].field == "division_code"


def test_divisions_need_known_parents_and_consistent_population(session):
    with pytest.raises(InputError) as caught:
        import_rows(session, "divisions", [
            {"code": "140725100201", "name": "孤村"},
            {"code": "14", "name": "山西省", "population": "10", "population_male": "6",
             "population_female": "5"},
        ], actor=SYSTEM)
    reasons = " ".join(p.reason for p in caught.value.problems)
    assert "parent division 140725100000" in reasons
    assert "≠ total" in reasons


def test_cli_import_exit_codes(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    exe = [sys.executable, "-m", "tiercare"]
    assert subprocess.run([*exe, "db", "upgrade", "--db", db], capture_output=True).returncode == 0
    good = tmp_path / "d.csv"
    good.write_text("code,name\n" + "\n".join(f"{d['code']},{d['name']}" for d in DIVISIONS[:3]),
                    encoding="utf-8")
    run = subprocess.run([*exe, "import", "divisions", str(good), "--db", db],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    bad = tmp_path / "f.csv"
    bad.write_text("code,name,type,division_code\nF1,x,nope,140725\n", encoding="utf-8")
    run = subprocess.run([*exe, "import", "facilities", str(bad), "--db", db],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "row 2" in run.stderr and "type" in run.stderr and "nope" in run.stderr


def test_geometry_exports_round_trip(session, tmp_path):
    import geopandas as gpd

    load_small_county(session)
    import_boundaries(session, json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "140725"}, "geometry": COUNTY_SQUARE}]}
    ).encode(), "c.geojson", actor=SYSTEM)
    assert export_file(session, SYSTEM, "facilities", tmp_path / "f.gpkg") == len(FACILITIES)
    frame = gpd.read_file(tmp_path / "f.gpkg")
    assert set(frame["code"]) == {f["code"] for f in FACILITIES}
    # Province and city have neither boundary nor point and are left out.
    assert export_file(session, SYSTEM, "divisions", tmp_path / "d.gpkg") == len(DIVISIONS) - 2
    divisions = gpd.read_file(tmp_path / "d.gpkg").set_index("code")
    assert divisions.loc["140725000000"].geometry.geom_type == "Polygon"
    assert divisions.loc["140725100201"].geometry.geom_type == "Point"
    # The exported boundary polygons import back unchanged, and so does the whole export.
    divisions[divisions.geom_type == "Polygon"].reset_index().to_file(tmp_path / "p.gpkg")
    again = import_file(session, "boundaries", tmp_path / "p.gpkg", actor=SYSTEM)
    assert (again.updated, again.unchanged) == (0, 1)
    whole = import_file(session, "boundaries", tmp_path / "d.gpkg", actor=SYSTEM)
    assert (whole.updated, whole.unchanged) == (0, len(DIVISIONS) - 2)
