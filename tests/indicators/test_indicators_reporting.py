"""Report forms, validation rules, deadlines, scope and all-or-nothing imports (both DBs)."""

import io
import json
from datetime import date

import pytest
from indicators_helpers import load_county_with_catalogue
from openpyxl import Workbook
from sqlalchemy import func, select

from tiercare.auth.service import SYSTEM, actor_for, create_user
from tiercare.errors import InputError
from tiercare.indicators.models import DataValue
from tiercare.indicators.reporting import (
    completeness,
    export_data_value_set,
    import_data_value_set,
    import_table,
    store_values,
    submit_report,
)


def _count(session):
    return session.scalar(select(func.count(DataValue.id)))


def test_rules_deadlines_scope_and_atomic_imports(session):
    load_county_with_catalogue(session)
    staff = actor_for(session, create_user(session, username="t1", password="t1-password",
                                           role="facility_staff", facility_code="T1"))
    on_time = date(2026, 11, 5)

    # admissions <= beds x days: H1 has 300 beds, October has 31 days
    with pytest.raises(InputError) as info:
        submit_report(session, SYSTEM, data_set="hospital_monthly", facility="H1",
                      period="2026-10", values={"admissions": 9301, "surgeries": 4},
                      today=on_time)
    assert [p.code for p in info.value.problems] == ["rule:hospital_admissions_beds"]
    assert "9301" in info.value.problems[0].reason and "9300" in info.value.problems[0].reason
    assert _count(session) == 0
    result = submit_report(session, SYSTEM, data_set="hospital_monthly", facility="H1",
                           period="2026-10", values={"admissions": 9300, "surgeries": 4},
                           today=on_time)
    assert result["created"] == 2 and result["on_time"] is True

    # a rule is checked against the stored values merged with the new ones
    with pytest.raises(InputError) as info:
        store_values(session, SYSTEM, [{"element": "day_surgeries", "unit": "H1",
                                        "period": "2026-10", "value": 5}], source="t",
                     today=on_time)
    assert info.value.problems[0].code == "rule:hospital_day_surgeries"
    # positives <= tests style rule on another form, and a form for the wrong facility type
    with pytest.raises(InputError) as info:
        submit_report(session, SYSTEM, data_set="hospital_monthly", facility="T1",
                      period="2026-10", values={"nonsense": 1}, today=on_time)
    assert {p.field for p in info.value.problems} == {"facility", "values"}

    # deadline: primary_monthly is due 7 days after the month; staff are locked out after it
    row = {"element": "opd_visits", "unit": "T1", "period": "2026-10", "value": 100}
    assert store_values(session, staff, [row], source="t", today=date(2026, 11, 7)).created == 1
    with pytest.raises(InputError) as info:
        store_values(session, staff, [{**row, "value": 120}], source="t",
                     today=date(2026, 11, 8))
    assert info.value.problems[0].code == "locked"
    assert store_values(session, SYSTEM, [{**row, "value": 120}], source="t",
                        today=date(2026, 11, 8)).updated == 1
    # scope: a township centre's staff cannot report for the county hospital
    with pytest.raises(InputError) as info:
        store_values(session, staff, [{**row, "unit": "H1"}], source="t", today=on_time)
    assert info.value.problems[0].field == "unit"

    # completeness and timeliness of the hospital form in the county
    done = completeness(session, SYSTEM, data_set="hospital_monthly", unit="140725",
                        period="2026-10", today=on_time)
    assert (done["expected"], done["submitted"], done["completeness"]) == (1, 1, 100.0)
    late = submit_report(session, SYSTEM, data_set="primary_monthly", facility="T1",
                         period="2026-09", values={"opd_visits": 90}, today=date(2026, 10, 20))
    assert late["on_time"] is False
    session.commit()

    # CSV import: every bad row is reported and nothing is written
    before = _count(session)
    csv = ("element,unit,period,value,comment\n"
           "opd_visits,V1,2026-10,300,ok\n"
           "no_such_element,V1,2026-10,3,\n"
           "opd_visits,V9,2026-10,3,\n"
           "opd_visits,V2,2026-10,lots,\n"
           "opd_visits,V2,2026-15,3,\n").encode()
    with pytest.raises(InputError) as info:
        import_table(session, SYSTEM, csv, "october.csv", today=on_time)
    assert [(p.row, p.field) for p in info.value.problems] == [
        (2, "element"), (3, "unit"), (4, "value"), (5, "period")]
    assert _count(session) == before
    ok = "element,unit,period,value\nopd_visits,V1,2026-10,300\nopd_visits,V2,2026-10,200\n"
    assert import_table(session, SYSTEM, ok.encode(), "ok.csv", today=on_time).created == 2

    book = Workbook()
    sheet = book.active
    sheet.append(["element", "facility", "period", "value"])
    sheet.append(["opd_visits", "V1", "2026-11", 310])
    buffer = io.BytesIO()
    book.save(buffer)
    assert import_table(session, SYSTEM, buffer.getvalue(), "nov.xlsx",
                        today=on_time).created == 1

    # DHIS2 dataValueSets: defaults at the top, one bad value rejects the whole document
    document = {"period": "202609", "orgUnit": "V1", "dataValues": [
        {"dataElement": "opd_visits", "value": "280"},
        {"dataElement": "prescriptions", "value": "200"},
        {"dataElement": "essential_prescriptions", "value": "250"},  # > prescriptions
    ]}
    with pytest.raises(InputError) as info:
        import_data_value_set(session, SYSTEM, json.dumps(document), today=on_time)
    assert info.value.problems[0].code == "rule:village_essential"
    document["dataValues"][2]["value"] = "150"
    assert import_data_value_set(session, SYSTEM, document, today=on_time).created == 3
    exported = export_data_value_set(session, SYSTEM, unit="V1", period="2026Q3")
    assert sorted((v["dataElement"], v["period"], v["orgUnit"], v["value"])
                  for v in exported["dataValues"]) == [
        ("essential_prescriptions", "202609", "V1", "150"),
        ("opd_visits", "202609", "V1", "280"),
        ("prescriptions", "202609", "V1", "200")]
    # re-importing the export changes nothing but is accepted (idempotent updates)
    again = import_data_value_set(session, SYSTEM, exported, today=on_time)
    assert (again.created, again.updated) == (0, 3)
