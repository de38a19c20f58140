"""Dashboard, scorecard, pivot, report entry and sentinel pages (SQLite and PostgreSQL)."""

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from indicators_helpers import load_county_with_catalogue
from sqlalchemy import select

from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.indicators.reporting import store_values
from tiercare.registry.models import Facility
from tiercare.surveillance.reports import run_detection, store_fever_reports
from tiercare.web.app import create_app

DAY = date(2026, 9, 20)


@pytest.fixture
def client(db_url, engine, session):
    load_county_with_catalogue(session)
    for facility in session.scalars(select(Facility)):
        if facility.code == "H1":
            facility.services = ["fever_clinic"]
    create_user(session, username="admin", password="admin-pass-1", role="admin")
    rows = [{"element": "opd_visits", "unit": code, "period": f"2026-{m:02d}", "value": v * m}
            for m in range(1, 11) for code, v in (("H1", 100), ("T1", 60), ("V1", 30))]
    store_values(session, SYSTEM, rows, source="test", today=date(2026, 11, 1))
    fever = [{"facility": "H1", "date": (DAY - timedelta(days=k)).isoformat(),
              "age_band": "15-59", "patients": 5 + k % 2 + (9 if k == 0 else 0), "tests": 5,
              "positives": 1, "referrals": 0} for k in range(20)]
    store_fever_reports(session, SYSTEM, fever, source="test")
    run_detection(session, SYSTEM, end=DAY, days=20)
    session.commit()
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as test_client:
        assert test_client.post("/login", data={"username": "admin",
                                                "password": "admin-pass-1"}).status_code in (
            200, 303)
        yield test_client
    app.state.engine.dispose()


def test_pages(client):
    page = client.get("/indicators", params={"unit": "140725", "period": "2026-10",
                                             "lang": "en"})
    assert page.status_code == 200
    assert "Share of outpatient visits at primary level" in page.text
    assert "甲镇" in page.text and "<svg" in page.text  # drill-down rows and the trend chart
    assert "no data" in page.text and "referral" in page.text  # sources without data named
    printable = client.get("/indicators", params={"unit": "140725", "period": "2026-10",
                                                  "print": "1"})
    assert "display: none" in printable.text
    xlsx = client.get("/indicators/export", params={"unit": "140725", "period": "2026-10"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    card = client.get("/indicators/scorecard", params={"code": "hospital", "unit": "140725",
                                                       "period": "2026-10"})
    assert card.status_code == 200 and "H1" in card.text
    pivot = client.get("/indicators/pivot", params={"indicator": "primary_opd_share",
                                                    "units": "140725 140725100",
                                                    "from": "2026-01", "to": "2026-03"})
    assert pivot.status_code == 200 and "2026-03" in pivot.text
    csv = client.get("/indicators/pivot", params={"indicator": "primary_opd_share",
                                                  "units": "140725", "from": "2026-01",
                                                  "to": "2026-03", "format": "csv"})
    header = csv.content.decode("utf-8-sig").splitlines()[0]
    assert header == "indicator,unit,unit_name,2026-01,2026-02,2026-03"

    form = client.get("/indicators/entry", params={"data_set": "hospital_monthly",
                                                   "facility": "H1", "period": "2026-12"})
    assert form.status_code == 200 and 'name="v_admissions"' in form.text
    refused = client.post("/indicators/entry", data={
        "data_set": "hospital_monthly", "facility": "H1", "period": "2026-12",
        "v_surgeries": "3", "v_day_surgeries": "4"})
    assert "day surgeries cannot exceed surgeries" in refused.text
    accepted = client.post("/indicators/entry", data={
        "data_set": "hospital_monthly", "facility": "H1", "period": "2026-12",
        "v_surgeries": "4", "v_day_surgeries": "3"})
    assert "✓ 2 + 0" in accepted.text

    sentinels = client.get("/surveillance", params={"day": DAY.isoformat(), "lang": "en"})
    assert sentinels.status_code == 200 and 'class="spot"' in sentinels.text
    assert "C1" in sentinels.text
    report = client.post("/surveillance/report", data={
        "facility": "H1", "date": "2026-09-21", "patients_15-59": "6", "tests_15-59": "2",
        "positives_15-59": "3"})
    assert "positives cannot exceed tests" in report.text
