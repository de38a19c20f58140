"""Fever reports, detection and the alert workflow through the REST API (both DBs)."""

import importlib.util
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tiercare.auth.service import create_user
from tiercare.config import Settings
from tiercare.registry.models import Facility
from tiercare.web.app import create_app

_HELPERS = Path(__file__).resolve().parents[1] / "registry" / "registry_helpers.py"
START = date(2026, 9, 1)


def _load_small_county(session):
    if "registry_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("registry_helpers", _HELPERS)
        module = importlib.util.module_from_spec(spec)
        sys.modules["registry_helpers"] = module
        spec.loader.exec_module(module)
    sys.modules["registry_helpers"].load_small_county(session)


@pytest.fixture
def client(db_url, engine, session):
    _load_small_county(session)
    for facility in session.scalars(select(Facility)):
        if facility.code == "H1":
            facility.services = ["fever_clinic"]
        if facility.code == "T1":
            facility.services = ["fever_consulting_room"]
    create_user(session, username="admin", password="admin-pass-1", role="admin")
    create_user(session, username="doctor", password="doctor-pass", role="village_doctor",
                facility_code="V1")
    session.commit()
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def _token(client, username, password):
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _row(day, patients, *, facility="H1", band="15-59", tests=None, positives=0):
    return {"facility": facility, "date": day.isoformat(), "age_band": band,
            "patients": patients, "tests": patients if tests is None else tests,
            "positives": positives, "referrals": 0}


def test_reports_detection_and_alert_workflow(client):
    admin = _token(client, "admin", "admin-pass-1")
    doctor = _token(client, "doctor", "doctor-pass")
    # 19 quiet days alternating 5/6 patients, then 14 on the 20th
    rows = [_row(START + timedelta(days=k), 5 + k % 2) for k in range(19)]
    rows.append(_row(START + timedelta(days=19), 14))
    bad = [*rows[:2], _row(START, 3, tests=1, positives=2, band="0-4"),
           _row(START, 3, facility="V1"), _row(START, 3, band="old")]
    refused = client.post("/api/v1/fever-reports", json=bad, headers=admin)
    assert refused.status_code == 422
    assert [(p["row"], p["field"]) for p in refused.json()["detail"]] == [
        (3, "positives"), (4, "facility"), (5, "age_band")]
    assert client.get("/api/v1/fever-reports", headers=admin).json()["total"] == 0
    assert client.post("/api/v1/fever-reports", json=rows[:10],
                       headers=admin).json() == {"created": 10, "updated": 0}
    csv = "facility,date,age_band,patients,tests,positives,referrals\n" + "".join(
        f"{r['facility']},{r['date']},{r['age_band']},{r['patients']},{r['tests']},0,0\n"
        for r in rows[10:])
    imported = client.post("/api/v1/fever-reports/import", headers=admin,
                           files={"file": ("fever.csv", csv.encode(), "text/csv")})
    assert imported.json() == {"created": 10, "updated": 0}

    missing = client.get("/api/v1/fever-reports/missing", params={"day": "2026-09-20"},
                         headers=admin).json()
    assert [m["facility"] for m in missing["items"]] == ["T1"]

    detected = client.post("/api/v1/alerts/detect", json={"end": "2026-09-20", "days": 20},
                           headers=admin).json()
    found = {(a["level"], a["method"], a["day"]) for a in detected["alerts"]}
    # C1: baseline 9/13..9/19 = 5,6,5,6,5,6,5 (mean 38/7, sd 0.53 → floored to 1)
    assert ("facility", "C1", "2026-09-20") in found and ("county", "C1", "2026-09-20") in found
    assert {a["day"] for a in detected["alerts"]} == {"2026-09-20"}
    c1 = next(a for a in detected["alerts"] if a["level"] == "facility" and a["method"] == "C1")
    assert c1["statistic"] == pytest.approx(14 - 38 / 7)
    assert [v for _, v in c1["series"]] == [5, 6, 5, 6, 5, 6, 5, 14]
    again = client.post("/api/v1/alerts/detect", json={"end": "2026-09-20", "days": 20},
                        headers=admin).json()
    assert again["created"] == 0  # alerts are not duplicated

    status = {s["facility"]: s["status"] for s in client.get(
        "/api/v1/sentinels/status", params={"day": "2026-09-20"}, headers=admin).json()["items"]}
    assert status == {"H1": "alert", "T1": "missing"}

    listed = client.get("/api/v1/alerts", params={"status": "open", "level": "facility"},
                        headers=admin).json()
    alert_id = listed["items"][0]["id"]
    ack = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "calling H1"},
                      headers=admin)
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "admin"
    twice = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={}, headers=admin)
    assert twice.status_code == 409 and twice.json()["detail"]["reason"] == "bad_transition"
    closed = client.post(f"/api/v1/alerts/{alert_id}/close", json={"note": "cluster ruled out"},
                         headers=admin).json()
    assert closed["status"] == "closed" and closed["note"] == "calling H1\ncluster ruled out"
    assert client.post(f"/api/v1/alerts/{alert_id}/close", json={},
                       headers=admin).status_code == 409
    assert client.get("/api/v1/alerts", headers=doctor).json()["total"] == 0
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=doctor).status_code == 404
