"""The indicators REST API and CLI on SQLite and PostgreSQL."""

import json

import pytest
from fastapi.testclient import TestClient
from indicators_helpers import load_county_with_catalogue
from typer.testing import CliRunner

from tiercare.auth.service import create_user
from tiercare.cli import app as cli_app
from tiercare.config import Settings
from tiercare.web.app import create_app


@pytest.fixture
def client(db_url, engine, session):
    load_county_with_catalogue(session)
    create_user(session, username="admin", password="admin-pass-1", role="admin")
    create_user(session, username="yixiang", password="yixiang-pass", role="planner",
                division_code="140725200")
    session.commit()
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def _token(client, username, password):
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_catalogue_values_reports_analytics_and_cli(client, db_url):
    admin = _token(client, "admin", "admin-pass-1")
    planner = _token(client, "yixiang", "yixiang-pass")
    assert client.get("/api/v1/indicators").status_code == 401
    elements = client.get("/api/v1/data-elements", headers=admin).json()
    assert elements["total"] == 25
    page = client.get("/api/v1/indicators", params={"limit": 5}, headers=admin).json()
    assert page["total"] == 32 and len(page["items"]) == 5
    share = client.get("/api/v1/indicators/primary_opd_share", headers=admin).json()
    assert share["target"] == 65 and share["numerator"] == "opd_visits__primary_care"
    assert any(f["name"] == "referrals_up" and f["source"] == "referral"
               for f in client.get("/api/v1/facts", headers=admin).json()["items"])
    assert client.get("/api/v1/data-sets", headers=admin).json()["total"] == 3

    # administrators edit indicators; expressions are checked
    body = {"name_zh": "门诊总量", "name_en": "Outpatient visits", "numerator": "opd_visits",
            "denominator": "1"}
    assert client.put("/api/v1/indicators/opd_total", json=body,
                      headers=planner).status_code == 403
    bad = client.put("/api/v1/indicators/opd_total", json={**body, "numerator": "opd_visits ** 2"},
                     headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "numerator"
    unknown = client.put("/api/v1/indicators/opd_total", json={**body, "denominator": "x_y"},
                         headers=admin)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["code"] == "unknown_name"
    saved = client.put("/api/v1/indicators/opd_total", json=body, headers=admin)
    assert saved.status_code == 200 and saved.json()["edited"] is True

    # administrators add validation rules; they are enforced on the next report
    rule = {"data_set_code": "village_monthly", "left": "prescriptions", "operator": "<=",
            "right": "opd_visits * 3", "message_en": "too many prescriptions"}
    assert client.put("/api/v1/validation-rules/village_rx", json={**rule, "right": "beds2"},
                      headers=admin).json()["detail"][0]["field"] == "right"
    assert client.put("/api/v1/validation-rules/village_rx", json=rule,
                      headers=planner).status_code == 403
    assert client.put("/api/v1/validation-rules/village_rx", json=rule,
                      headers=admin).status_code == 200
    rules = client.get("/api/v1/validation-rules", params={"data_set": "village_monthly"},
                       headers=admin).json()
    assert rules["total"] == 2
    too_many = client.post("/api/v1/data-values", headers=admin, json=[
        {"element": "opd_visits", "unit": "V1", "period": "2026-09", "value": 10},
        {"element": "prescriptions", "unit": "V1", "period": "2026-09", "value": 31}])
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["code"] == "rule:village_rx"

    # values: all or nothing
    values = [{"element": "opd_visits", "unit": code, "period": "2026-10", "value": v}
              for code, v in (("H1", 1000), ("T1", 600), ("V1", 300), ("V2", 100))]
    bad_batch = [*values, {"element": "opd_visits", "unit": "H1", "period": "2026-10-40",
                           "value": 1}, {"element": "nope", "unit": "H1", "period": "2026-10",
                                         "value": 1}]
    refused = client.post("/api/v1/data-values", json=bad_batch, headers=admin)
    assert refused.status_code == 422
    assert [(p["row"], p["field"]) for p in refused.json()["detail"]] == [
        (5, "period"), (6, "element")]
    assert client.get("/api/v1/data-values", headers=admin).json()["total"] == 0
    assert client.post("/api/v1/data-values", json=values, headers=admin).json() == {
        "created": 4, "updated": 0}
    upload = client.post("/api/v1/data-values/import", headers=admin, files={
        "file": ("nov.csv", b"element,unit,period,value\nopd_visits,H1,2026-11,900\n",
                 "text/csv")})
    assert upload.status_code == 200 and upload.json()["created"] == 1
    listed = client.get("/api/v1/data-values", params={"unit": "140725100", "period": "2026"},
                        headers=admin).json()
    assert listed["total"] == 4
    assert client.get("/api/v1/data-values", headers=planner).json()["total"] == 1  # V2 only

    # analytics with drill-down, CSV export, scope
    result = client.get("/api/v1/analytics", params={
        "indicator": "primary_opd_share,opd_total", "unit": "140725", "period": "2026-10",
        "children": "true"}, headers=admin).json()["values"]
    got = {(v["indicator"], v["unit"]): v for v in result}
    assert got[("primary_opd_share", "140725000000")]["value"] == pytest.approx(50.0)
    assert got[("primary_opd_share", "140725100000")]["value"] == pytest.approx(
        100 * 900 / 1900)
    assert got[("opd_total", "140725200000")]["value"] == 100
    csv = client.get("/api/v1/analytics", params={"indicator": "opd_total", "unit": "140725",
                                                  "period": ["2026-10", "2026Q4"],
                                                  "format": "csv"}, headers=admin)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("indicator,unit,unit_name,period,value") and len(lines) == 3
    assert client.get("/api/v1/analytics", params={"unit": "140725100", "period": "2026-10"},
                      headers=planner).status_code == 404
    assert client.get("/api/v1/analytics", params={"unit": "140725", "period": "2026-13"},
                      headers=admin).json()["detail"][0]["field"] == "period"

    # report forms, completeness, DHIS2 round trip, scorecard, re-aggregation
    form = client.get("/api/v1/reports/primary_monthly/T1/2026-10", headers=admin).json()
    assert form["elements"][0]["code"] == "opd_visits" and form["elements"][0]["value"] == 600
    submitted = client.post("/api/v1/reports", json={
        "data_set": "primary_monthly", "facility": "T1", "period": "2026-10",
        "values": {"opd_visits": 600, "prescriptions": 500, "essential_prescriptions": 400,
                   "vaccine_doses_due": 50, "vaccine_doses_given": 48,
                   "vaccine_doses_on_time": 45, "admissions": 30, "inpatient_days": 400}},
        headers=admin)
    assert submitted.status_code == 200, submitted.text
    broken = client.post("/api/v1/reports", json={
        "data_set": "primary_monthly", "facility": "T1", "period": "2026-10",
        "values": {"admissions": 621}}, headers=admin)  # 20 beds x 31 days = 620
    assert broken.status_code == 422 and broken.json()["detail"][0]["code"].startswith("rule:")
    done = client.get("/api/v1/reports/completeness", params={
        "data_set": "primary_monthly", "unit": "140725", "period": "2026-10"},
        headers=admin).json()
    assert (done["expected"], done["submitted"]) == (1, 1)
    exported = client.get("/api/v1/dataValueSets", params={"unit": "T1", "period": "2026-10"},
                          headers=admin).json()
    assert len(exported["dataValues"]) == 8
    imported = client.post("/api/v1/dataValueSets", json=exported, headers=admin).json()
    assert imported["importCount"] == {"imported": 0, "updated": 8, "ignored": 0, "deleted": 0}
    card = client.get("/api/v1/scorecards/township_centre", params={
        "unit": "140725", "period": "2026-10"}, headers=admin).json()
    assert [f["facility"] for f in card["facilities"]] == ["T1"]
    t1 = card["facilities"][0]
    # essential 400/500 = 80 % ≥ 60 → 30; coverage 96 % ≥ 90 → 25; timeliness 45/48 = 93.75 %
    # ≥ 85 → 15; no pregnancies → 0 of 20; occupancy 400/620 = 64.5 % ≤ 85 → 10
    assert t1["score"] == pytest.approx(80.0) and t1["missing"] == ["hr_pregnancy_managed_share"]
    assert client.post("/api/v1/analytics/rebuild", headers=planner).status_code == 403
    assert client.post("/api/v1/analytics/rebuild", headers=admin).json()["rows"] > 0

    # the CLI prints the same values as JSON
    run = CliRunner().invoke(cli_app, ["indicators", "compute", "--period", "2026-10", "--unit",
                                       "140725", "--indicator", "primary_opd_share", "--db",
                                       db_url])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["values"][0]["value"] == pytest.approx(50.0)
    bad_run = CliRunner().invoke(cli_app, ["indicators", "compute", "--period", "2026-10",
                                           "--unit", "999999", "--db", db_url])
    assert bad_run.exit_code == 2


def test_administrators_edit_elements_forms_and_scorecards(client):
    admin = _token(client, "admin", "admin-pass-1")
    planner = _token(client, "yixiang", "yixiang-pass")
    element = {"name_zh": "口腔门诊人次", "name_en": "Dental visits", "value_type": "count"}
    assert client.put("/api/v1/data-elements/dental_visits", json=element,
                      headers=planner).status_code == 403
    bad = client.put("/api/v1/data-elements/Dental-Visits",
                     json={**element, "value_type": "litres"}, headers=admin)
    assert bad.status_code == 422
    assert {p["field"] for p in bad.json()["detail"]} == {"code", "value_type"}
    saved = client.put("/api/v1/data-elements/dental_visits", json=element, headers=admin)
    assert saved.status_code == 200 and saved.json()["edited"] is True

    form = {"name_zh": "口腔月报", "name_en": "Dental monthly", "period_type": "month",
            "facility_types": ["township_health_centre"], "elements": ["dental_visits"]}
    wrong = client.put("/api/v1/data-sets/dental_monthly", headers=admin, json={
        **form, "elements": ["dental_visits", "nope"], "facility_types": ["spaceship"]})
    assert wrong.status_code == 422
    reasons = {p["field"]: p["reason"] for p in wrong.json()["detail"]}
    assert "nope" in reasons["elements"] and "spaceship" in reasons["facility_types"]
    assert client.put("/api/v1/data-sets/dental_monthly", json=form,
                      headers=admin).status_code == 200
    assert client.get("/api/v1/data-sets", headers=admin).json()["total"] == 4

    card = {"name_zh": "乡镇卫生院绩效考核", "name_en": "Township centre scorecard",
            "facility_types": ["township_health_centre"],
            "items": [{"indicator": "essential_medicine_share", "weight": 60},
                      {"indicator": "vaccination_coverage", "weight": 40}]}
    unknown = client.put("/api/v1/scorecards/township_centre", headers=admin, json={
        **card, "items": [card["items"][0], {"indicator": "nope", "weight": 5}]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0] | {"reason": ""} == {
        "field": "items.indicator", "row": 2, "reason": "", "code": "invalid"}
    zero = client.put("/api/v1/scorecards/township_centre", headers=admin, json={
        **card, "items": [{"indicator": "vaccination_coverage", "weight": 0}]})
    assert zero.status_code == 422
    assert (zero.json()["detail"][0]["field"], zero.json()["detail"][0]["row"]) == (
        "items.weight", 1)
    assert client.put("/api/v1/scorecards/township_centre", json=card,
                      headers=planner).status_code == 403
    saved = client.put("/api/v1/scorecards/township_centre", json=card, headers=admin)
    assert saved.status_code == 200 and saved.json()["edited"] is True
    listed = {c["code"]: c for c in client.get("/api/v1/scorecards", headers=admin).json()["items"]}
    assert [i["weight"] for i in listed["township_centre"]["items"]] == [60, 40]
    audit = client.get("/api/v1/audit", params={"entity": "scorecard"}, headers=admin).json()
    assert audit["total"] == 1 and audit["items"][0]["action"] == "update"
