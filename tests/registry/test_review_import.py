"""Regressions from the user-eye review of the registry imports, exports and reports.

Each test reproduces something a county planner or administrator tripped over: export and
re-import losing facility parents, a partial file wiping stored columns, GCJ-02 points copied
from a web map, projected or swapped GeoJSON, folders instead of files, blank rows shifting the
row numbers, Excel formulas without values, and unknown report roots.
"""

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from registry_helpers import COUNTY_SQUARE
from sqlalchemy import func, select
from typer.testing import CliRunner

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import SYSTEM
from tiercare.cli import app
from tiercare.coords import wgs84_to_gcj02
from tiercare.errors import InputError, NotFoundError
from tiercare.registry import service
from tiercare.registry.codes import normalise_code
from tiercare.registry.exporting import export_file, write_template
from tiercare.registry.importing import import_boundaries, import_file, import_rows
from tiercare.registry.models import Division, Facility
from tiercare.registry.reports import supply
from tiercare.registry.tables import read_table_bytes

BRANCH = {"code": "B1", "name": "甲镇卫生院分院", "type": "township_health_centre_branch",
          "division_code": "140725100202", "lon": "113.05", "lat": "37.85", "parent_code": "T1"}


def _audit_count(session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry))


def _facility(session, code: str) -> Facility:
    return session.scalar(select(Facility).where(Facility.code == code))


def _parent_code(session, code: str) -> str | None:
    facility = _facility(session, code)
    if facility.parent_facility_id is None:
        return None
    return session.get(Facility, facility.parent_facility_id).code


def _problems(caught: pytest.ExceptionInfo[InputError]) -> set[tuple[int | None, str | None, str]]:
    return {(p.row, p.field, p.code) for p in caught.value.problems}


def _feature_collection(features: list[dict], crs: str | None = None) -> bytes:
    data: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(data).encode()


def _square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


# ------------------------------------------------------------------ export → import round trip


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_then_import_keeps_facility_parents(small_county, tmp_path, suffix):
    session = small_county
    import_rows(session, "facilities", [BRANCH], actor=SYSTEM)
    session.commit()
    assert service.facility_dict(_facility(session, "B1"))["parent_code"] == "T1"
    path = tmp_path / f"facilities{suffix}"
    export_file(session, SYSTEM, "facilities", path)
    audits = _audit_count(session)
    result = import_file(session, "facilities", path, actor=SYSTEM)
    session.commit()
    assert (result.created, result.updated) == (0, 0)
    assert _parent_code(session, "B1") == "T1"
    assert _audit_count(session) == audits


def test_clearing_a_parent_is_counted_and_audited(small_county):
    session = small_county
    import_rows(session, "facilities", [BRANCH], actor=SYSTEM)
    session.commit()
    result = import_rows(session, "facilities", [{**BRANCH, "parent_code": ""}], actor=SYSTEM)
    session.commit()
    assert (result.updated, result.unchanged) == (1, 0)
    assert _parent_code(session, "B1") is None
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.before, entry.after) == ({"parent_code": "T1"}, {"parent_code": None})


def test_file_without_parent_column_keeps_the_parent(small_county):
    session = small_county
    import_rows(session, "facilities", [BRANCH], actor=SYSTEM)
    session.commit()
    row = {k: v for k, v in BRANCH.items() if k != "parent_code"}
    result = import_rows(session, "facilities", [{**row, "name": "改名分院"}], actor=SYSTEM)
    session.commit()
    assert result.updated == 1
    assert _parent_code(session, "B1") == "T1"


# ------------------------------------------------------------------ partial files


def test_partial_division_file_keeps_the_columns_it_lacks(small_county):
    session = small_county
    result = import_rows(session, "divisions",
                         [{"code": "140725100201", "name": "东村", "population": "1200"}],
                         actor=SYSTEM)
    session.commit()
    assert result.updated == 1
    village = session.scalar(select(Division).where(Division.code == "140725100201"))
    assert (village.population, village.lon, village.lat, village.urban_rural_class) == (
        1200, 113.11, 37.91, "220")
    # A present but empty column does clear the value.
    import_rows(session, "divisions", [{"code": "140725100201", "name": "东村",
                                        "urban_rural_class": ""}], actor=SYSTEM)
    session.commit()
    session.refresh(village)
    assert village.urban_rural_class is None and village.population == 1200


def test_partial_staff_file_keeps_the_villages_served(small_county):
    session = small_county
    import_rows(session, "staff", [{"code": "S1", "name": "张医生", "cadre": "village_doctor",
                                    "facility_code": "V1"}], actor=SYSTEM)
    session.commit()
    assert service.staff_dict(service.get_staff(session, SYSTEM, "S1"))["village_codes"] == [
        "140725100201"]


# ------------------------------------------------------------------ coordinates


def test_gcj02_copy_of_a_stored_point_is_refused(small_county):
    session = small_county
    glon, glat = wgs84_to_gcj02(113.11, 37.91)  # V1's stored WGS84 point, as a web map shows it
    row = {"code": "V1", "name": "东村卫生室", "type": "village_clinic",
           "division_code": "140725100201", "lon": f"{glon:.6f}", "lat": f"{glat:.6f}"}
    with pytest.raises(InputError) as caught:
        import_rows(session, "facilities", [row], actor=SYSTEM)
    session.rollback()
    assert _problems(caught) == {(2, "lon", "gcj02_suspected")}
    assert (_facility(session, "V1").lon, _facility(session, "V1").lat) == (113.11, 37.91)
    # A genuine move of a few hundred metres in another direction is accepted.
    moved = {**row, "lon": "113.114", "lat": "37.907"}
    assert import_rows(session, "facilities", [moved], actor=SYSTEM).updated == 1


def test_swapped_lon_lat_is_named(small_county):
    row = {"code": "V9", "name": "颠倒", "type": "village_clinic",
           "division_code": "140725100201", "lon": "37.91", "lat": "113.11"}
    with pytest.raises(InputError) as caught:
        import_rows(small_county, "facilities", [row], actor=SYSTEM)
    (problem,) = caught.value.problems
    assert (problem.row, problem.field, problem.code) == (2, "lat", "out_of_range")
    assert "swapped" in problem.reason


# ------------------------------------------------------------------ boundaries


def _county_boundary(session) -> None:
    import_boundaries(session, _feature_collection(
        [{"type": "Feature", "properties": {"code": "140725"}, "geometry": COUNTY_SQUARE}]),
        "county.geojson", actor=SYSTEM)
    session.commit()


def test_projected_geojson_without_crs_is_refused(small_county):
    session = small_county
    # The township 甲镇 in Web Mercator metres, saved without a "crs" member.
    merc = _square(12583000, 4548000, 12590000, 4555000)
    with pytest.raises(InputError) as caught:
        import_boundaries(session, _feature_collection(
            [{"type": "Feature", "properties": {"code": "140725100"}, "geometry": merc}]),
            "merc.geojson", actor=SYSTEM)
    session.rollback()
    assert _problems(caught) == {(1, "geometry", "out_of_range")}
    assert "CRS" in caught.value.problems[0].reason
    assert session.scalar(select(Division).where(Division.code == "140725100000")).boundary is None


def test_projected_geojson_with_crs_is_reprojected(small_county):
    session = small_county
    merc = _square(12583000, 4548000, 12590000, 4555000)
    result = import_boundaries(session, _feature_collection(
        [{"type": "Feature", "properties": {"code": "140725100"}, "geometry": merc}],
        crs="urn:ogc:def:crs:EPSG::3857"), "merc.geojson", actor=SYSTEM)
    session.commit()
    assert result.updated == 1
    ring = session.scalar(
        select(Division).where(Division.code == "140725100000")).boundary["coordinates"][0]
    assert all(112.9 < x < 113.2 and 37.7 < y < 37.9 for x, y in ring)


def test_swapped_and_misplaced_boundaries_are_refused(small_county):
    session = small_county
    _county_boundary(session)
    features = [
        {"type": "Feature", "properties": {"code": "140725100"},
         "geometry": _square(37.85, 113.05, 37.95, 113.15)},  # (lat, lon)
        {"type": "Feature", "properties": {"code": "140725200"},
         "geometry": _square(116.3, 39.8, 116.5, 40.0)},  # Beijing, outside the county
    ]
    with pytest.raises(InputError) as caught:
        import_boundaries(session, _feature_collection(features), "bad.geojson", actor=SYSTEM)
    session.rollback()
    assert _problems(caught) == {(1, "geometry", "out_of_range"),
                                 (2, "geometry", "outside_division")}
    assert "swapped" in caught.value.problems[0].reason


def test_division_geojson_export_reimports_as_no_op(small_county, tmp_path):
    session = small_county
    _county_boundary(session)
    path = tmp_path / "divisions.geojson"
    written = export_file(session, SYSTEM, "divisions", path)
    again = import_file(session, "boundaries", path, actor=SYSTEM)
    assert (again.rows, again.unchanged, again.updated) == (written, written, 0)
    collection = json.loads(path.read_text(encoding="utf-8"))
    point = next(f for f in collection["features"] if f["geometry"]["type"] == "Point")
    code = point["properties"]["code"]
    lon, lat = point["geometry"]["coordinates"]
    point["geometry"]["coordinates"] = [round(lon + 0.001, 6), lat]
    moved = import_boundaries(session, _feature_collection([point]), "moved.geojson",
                              actor=SYSTEM)
    assert moved.updated == 1
    division = session.scalar(select(Division).where(Division.code == code))
    assert division.lon == round(lon + 0.001, 6) and division.lat == lat
    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "division_point")).one()
    assert entry.before["lon"] == lon and entry.after["lon"] == round(lon + 0.001, 6)


def test_empty_and_broken_geojson_name_the_file(session):
    with pytest.raises(InputError) as caught:
        import_boundaries(session, _feature_collection([]), "empty.geojson", actor=SYSTEM)
    assert _problems(caught) == {(None, "file", "no_rows")}
    with pytest.raises(InputError) as caught:
        import_boundaries(session, b'{"type": "Feature', "broken.geojson", actor=SYSTEM)
    reason = caught.value.problems[0].reason
    assert "broken.geojson" in reason and "/tmp" not in reason


# ------------------------------------------------------------------ files and tables


@pytest.mark.parametrize("kind", ["facilities", "boundaries"])
def test_folder_instead_of_file(session, tmp_path, kind):
    folder = tmp_path / "facilities.csv"
    folder.mkdir()
    with pytest.raises(InputError) as caught:
        import_file(session, kind, folder, actor=SYSTEM)
    assert _problems(caught) == {(None, "file", "not_a_file")}


def test_blank_rows_keep_spreadsheet_row_numbers(small_county):
    text = ("code,name,type,division_code\n\nZ1,好,village_clinic,140725100201\n\n"
            "Z2,坏,spaceship,140725100201\n")
    rows = read_table_bytes(text.encode(), "f.csv")
    assert rows.numbers == [3, 5]
    with pytest.raises(InputError) as caught:
        import_rows(small_county, "facilities", rows, actor=SYSTEM)
    assert _problems(caught) == {(5, "type", "unknown_type")}


def test_extra_cells_are_refused_with_the_row():
    text = "code,name,address\nZ1,好,山西省,寿阳县\nZ2,好,寿阳县\n"
    with pytest.raises(InputError) as caught:
        read_table_bytes(text.encode(), "f.csv")
    assert _problems(caught) == {(2, "header", "extra_cells")}
    assert "寿阳县" in caught.value.problems[0].reason


def test_missing_header_row_is_explained(session):
    data = "140725100201,东村\n140725100202,西村\n"
    with pytest.raises(InputError) as caught:
        import_rows(session, "divisions", read_table_bytes(data.encode(), "d.csv"), actor=SYSTEM)
    (problem,) = caught.value.problems
    assert (problem.row, problem.field) == (1, "header")
    assert "header row missing" in problem.reason
    repeated = "V1,东村卫生室,village_clinic,V1\n"
    with pytest.raises(InputError) as caught:
        read_table_bytes(repeated.encode(), "f.csv")
    assert _problems(caught) == {(1, "header", "duplicate_column")}
    assert "'v1'" in caught.value.problems[0].reason


def test_header_only_file_is_refused(session):
    rows = read_table_bytes("foo,bar\n".encode(), "f.csv")
    with pytest.raises(InputError) as caught:
        import_rows(session, "facilities", rows, actor=SYSTEM)
    assert _problems(caught) == {(None, "file", "no_rows")}


def test_formula_without_value_is_refused():
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "name", "population", "population_male", "population_female"])
    sheet.append(["140725100201", "东村", "=D2+E2", 400, 600])
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(InputError) as caught:
        read_table_bytes(buffer.getvalue(), "d.xlsx")
    assert _problems(caught) == {(2, "C", "formula_without_value")}


def test_gbk_bom_and_dotted_codes_are_read():
    gbk = "code,name\n140725100201.0, 东村 \n".encode("gbk")
    assert read_table_bytes(gbk, "d.csv") == [{"code": "140725100201.0", "name": "东村"}]
    assert normalise_code("140725100201.0") == "140725100201"
    bom = "\ufeffCode,Name\n1,甲\n".encode()
    assert read_table_bytes(bom, "d.csv") == [{"code": "1", "name": "甲"}]


def test_scientific_notation_code_is_explained():
    with pytest.raises(ValueError, match="scientific notation"):
        normalise_code("1.40725E+11")


# ------------------------------------------------------------------ listing and reports


def test_centre_filter_pages_and_totals(small_county):
    session = small_county
    extra = {"code": "H2", "name": "县中医院", "type": "county_tcm_hospital",
             "division_code": "140725100", "lon": "113.1", "lat": "37.9", "centres": "stroke"}
    import_rows(session, "facilities", [extra], actor=SYSTEM)
    session.commit()
    brute = [f.code for f in session.scalars(select(Facility).order_by(Facility.code))
             if "stroke" in (f.centres or [])]
    assert brute == ["H1", "H2"]
    pages = [service.list_facilities(session, SYSTEM, centre="stroke", offset=o, limit=1)
             for o in range(3)]
    assert [total for total, _ in pages] == [2, 2, 2]
    assert [[f["code"] for f in items] for _, items in pages] == [["H1"], ["H2"], []]
    with pytest.raises(InputError) as caught:
        service.list_facilities(session, SYSTEM, centre="bogus")
    assert caught.value.problems[0].field == "centre"


@pytest.mark.parametrize("lister", [service.list_facilities, service.list_divisions])
def test_unknown_level_filter_is_refused(small_county, lister):
    with pytest.raises(InputError) as caught:
        lister(small_county, SYSTEM, level="nonsense")
    assert caught.value.problems[0].field == "level"


def test_report_for_unknown_division_is_refused(small_county):
    with pytest.raises(NotFoundError):
        supply(small_county, SYSTEM, root_code="990000000000")


# ------------------------------------------------------------------ command line


def test_cli_refuses_bad_input_with_exit_2(db_url, small_county, tmp_path):
    runner = CliRunner()
    folder = tmp_path / "a.csv"
    folder.mkdir()
    cases = [
        (["import", "facilities", str(folder), "--db", db_url], "is a folder"),
        (["import", "facilities", str(tmp_path / "none.csv"), "--db", db_url], "not found"),
        (["report", "--county", "99", "--out", str(tmp_path / "r"), "--db", db_url],
         "unknown division"),
        (["import", "facilities", str(folder), "--db", "notaurl"], "not a database URL"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_cli_township_report_summarises_the_township(db_url, small_county, tmp_path):
    result = CliRunner().invoke(app, ["report", "--county", "140725100", "--json", "--out",
                                      str(tmp_path / "r"), "--db", db_url])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [row["division_code"] for row in summary["supply"]] == ["140725100000"]
    with (tmp_path / "r" / "supply.csv").open(encoding="utf-8-sig") as handle:
        codes = [row["division_code"] for row in csv.DictReader(handle)]
    assert "140725100000" in codes



@pytest.mark.parametrize("name", ["template.txt", "folder", "/proc/tiercare-review/t.csv"])
def test_template_and_export_refuse_bad_output_paths(small_county, tmp_path, name):
    target = tmp_path / name if not name.startswith("/") else Path(name)
    if name == "folder":
        target.mkdir()
    for write in (lambda: write_template("facilities", target),
                  lambda: export_file(small_county, SYSTEM, "staff", target)):
        with pytest.raises(InputError) as caught:
            write()
        assert caught.value.problems[0].field == "file"
    assert not (tmp_path / "template.txt").exists()


def test_geometry_export_to_unwritable_path_is_refused(small_county):
    with pytest.raises(InputError) as caught:
        export_file(small_county, SYSTEM, "facilities", Path("/proc/tiercare-review/f.geojson"))
    assert caught.value.problems[0].field == "file"


def test_single_object_saves_report_fields_without_row_numbers(small_county):
    from tiercare.registry.schemas import FacilityIn

    data = FacilityIn(code="Q1", name="x", type="spaceship", division_code="140725100201",
                      beds={"general": -1})
    with pytest.raises(InputError) as caught:
        service.save(small_county, SYSTEM, data, create=True)
    assert _problems(caught) == {(None, "type", "unknown_type"),
                                 (None, "beds_general", "negative")}


def test_user_create_names_each_field(db_url, small_county):
    result = CliRunner().invoke(app, ["user", "create", "u1", "--role", "facility_staff",
                                      "--facility", "NOPE", "--division", "9",
                                      "--password", "short", "--db", db_url])
    assert result.exit_code == 2, result.output
    lines = " ".join(result.output.split())
    for expected in ("field 'password'", "field 'division': division code '9'",
                     "field 'facility': unknown facility 'NOPE'"):
        assert expected in lines


def test_database_without_schema_is_explained(tmp_path):
    csv_file = tmp_path / "f.csv"
    csv_file.write_text("code,name,type,division_code\nA,b,village_clinic,140725\n")
    result = CliRunner().invoke(app, ["import", "facilities", str(csv_file), "--db",
                                      f"sqlite:///{tmp_path / 'empty.db'}"])
    assert result.exit_code == 2, result.output
    assert "tiercare db upgrade" in result.output and "Traceback" not in result.output
