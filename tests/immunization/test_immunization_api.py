"""REST API of the immunisation module through the HTTP client (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from immunization_helpers import SECRET, identity, setup
from sqlalchemy import select

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import create_user
from tiercare.config import Settings
from tiercare.immunization.upload import immunization_entry
from tiercare.web.app import create_app

TODAY = dt.date.today()


@pytest.fixture
def client(db_url, engine, session):
    setup(session)
    create_user(session, username="admin", password="admin-pass-1", role="admin")
    create_user(session, username="planner", password="planner-pass", role="planner",
                division_code="140725200")
    session.commit()
    app = create_app(Settings(database_url=db_url, secret_key=SECRET))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def _token(client, username, password):
    response = client.post("/api/v1/auth/token", data={"username": username,
                                                       "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_immunization_api_children_records_upload_family(client, session):
    admin = _token(client, "admin", "admin-pass-1")
    planner = _token(client, "planner", "planner-pass")
    birth = TODAY - dt.timedelta(days=200)
    number = identity(birth, 5, sex="F")
    body = {"name": "小雨", "identity_number": number, "village_code": "140725100201",
            "site_code": "VS1", "guardian_name": "母亲", "guardian_phone": "13811112222"}
    assert client.post("/api/v1/immunization/children", json=body).status_code == 401
    assert client.post("/api/v1/immunization/children", json=body,
                       headers=planner).status_code == 403
    made = client.post("/api/v1/immunization/children", json=body, headers=admin)
    assert made.status_code == 201, made.text
    child = made.json()
    bad = client.post("/api/v1/immunization/children", headers=admin,
                      json={**body, "identity_number": "123", "village_code": "1"})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["detail"]} >= {"identity_number", "village_code"}
    dose = {"child_id": child["id"], "vaccine": "HepB", "given_on": birth.isoformat(),
            "site_code": "VS1", "lot": "A1", "route": "IM"}
    first = client.post("/api/v1/immunization/immunizations", json=dose, headers=admin)
    again = client.post("/api/v1/immunization/immunizations", json=dose, headers=admin)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    csv = ("record_id,child_identity,vaccine,dose,date\n"
           f"a1,{number},BCG,1,{birth}\n"
           f"a2,{number},HepB,2,{birth + dt.timedelta(days=31)}\n").encode()
    up = client.post("/api/v1/immunization/immunizations/upload", params={"site": "VS1"},
                     content=csv, headers={**admin, "Content-Type": "text/csv"})
    assert up.status_code == 200 and up.json()["inserted"] == 2, up.text
    bad_csv = csv + f"a3,{number},NOPE,1,{birth}\n".encode()
    refused = client.post("/api/v1/immunization/immunizations/upload", params={"site": "VS1"},
                          content=bad_csv, headers={**admin, "Content-Type": "text/csv"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0] == {"field": "vaccine", "row": 3,
                                           "reason": "unknown vaccine code",
                                           "code": "unknown_vaccine"}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [immunization_entry(
        {"record_id": "a1", "child_identity": number, "vaccine": "BCG", "date": str(birth)})]}
    fhir = client.post("/api/v1/immunization/immunizations/upload", params={"site": "VS1"},
                       json=bundle, headers=admin)
    assert fhir.json()["already_present"] == 1 and fhir.json()["inserted"] == 0
    read = client.get(f"/api/v1/immunization/children/{child['id']}", headers=admin).json()
    assert sorted(r["vaccine"] for r in read["immunizations"]) == ["BCG", "HepB", "HepB"]
    forecast = client.get(f"/api/v1/immunization/children/{child['id']}/forecast",
                          params={"as_of": TODAY.isoformat()}, headers=admin).json()
    hepb = next(s for s in forecast["series"] if s["vaccine"] == "HepB")
    assert hepb["next_dose"] == 3
    listing = client.get("/api/v1/immunization/children", headers=admin).json()
    assert listing["items"][0]["identity_number"] == number[:6] + "********" + number[-4:]
    # the family: phone or nothing
    denied = client.post("/api/v1/immunization/family/lookup",
                         json={"identity_number": number, "guardian_phone": "13800000000"})
    assert denied.status_code == 404
    view = client.post("/api/v1/immunization/family/lookup",
                       json={"identity_number": number, "guardian_phone": "13811112222"})
    assert view.status_code == 200 and len(view.json()["records"]) == 3
    assert client.post("/api/v1/immunization/family/code",
                       json={"identity_number": number}).status_code == 202
    audited = session.scalars(select(AuditEntry.action).where(
        AuditEntry.username == "family")).all()
    assert {"family_denied", "family_read", "code_sent"} <= set(audited)


def test_immunization_api_sites_releases_stock_coverage_fhir(client):
    admin = _token(client, "admin", "admin-pass-1")
    day = TODAY + dt.timedelta(days=3)
    opened = client.post("/api/v1/immunization/sites/VS1/sessions", headers=admin,
                         json={"on_date": day.isoformat(), "capacity": 1})
    assert opened.status_code == 201, opened.text
    sid = opened.json()["id"]
    sessions = client.get("/api/v1/immunization/sessions",
                          params={"start": TODAY.isoformat(), "vaccine": "HepB"}).json()
    assert sessions["total"] == 1 and sessions["items"][0]["free"] == 1
    woman = identity(dt.date(1995, 2, 2), 3, sex="F")
    booked = client.post("/api/v1/immunization/bookings", params={"self_paid": True},
                         headers=admin, json={"session_id": sid, "vaccines": ["HPV"],
                                              "identity_number": woman})
    assert booked.status_code == 201, booked.text
    full = client.post("/api/v1/immunization/bookings", headers=admin, json={
        "session_id": sid, "vaccines": ["HPV"],
        "identity_number": identity(dt.date(1996, 2, 2), 4, sex="F")})
    assert full.status_code == 409 and full.json()["detail"]["reason"] == "session_full"
    opens = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    rel = client.post("/api/v1/immunization/releases", headers=admin, json={
        "code": "HPV-A", "vaccine": "HPV", "site_code": "VS1", "doses": 1,
        "opens_at": opens.isoformat()})
    assert rel.status_code == 201, rel.text
    one = client.post("/api/v1/immunization/releases/HPV-A/requests",
                      json={"identity_number": woman})
    two = client.post("/api/v1/immunization/releases/HPV-A/requests",
                      json={"identity_number": identity(dt.date(1997, 2, 2), 4, sex="F")})
    dup = client.post("/api/v1/immunization/releases/HPV-A/requests",
                      json={"identity_number": woman})
    assert (one.json()["status"], two.json()["status"]) == ("confirmed", "waitlisted")
    assert dup.status_code == 409 and dup.json()["detail"]["reason"] == "already_requested"
    assert client.get("/api/v1/immunization/releases/HPV-A").json()["free"] == 0
    move = client.post("/api/v1/immunization/stock/VS1/moves", headers=admin, json={
        "vaccine": "HepB", "lot": "Z9", "kind": "receipt", "doses": 50,
        "on_date": TODAY.isoformat(), "expires_on": (TODAY + dt.timedelta(days=20)).isoformat()})
    assert move.status_code == 201
    report = client.get("/api/v1/immunization/stock/VS1", headers=admin).json()
    assert any(a["kind"] == "near_expiry" for a in report["alerts"])
    cov = client.get("/api/v1/immunization/coverage", headers=admin,
                     params={"as_of": TODAY.isoformat()})
    assert cov.status_code == 200
    work = client.get("/api/v1/immunization/worklists", headers=admin,
                      params={"start": TODAY.isoformat(), "end": day.isoformat(),
                              "site": "VS1", "format": "csv"})
    assert work.status_code == 200 and work.text.startswith("child_id,name")
    assert client.get("/api/v1/immunization/worklists", headers=admin, params={
        "start": TODAY.isoformat(), "end": day.isoformat()}).status_code == 422
    # FHIR: Patient, Immunization (search, upload), ImmunizationRecommendation
    planner = _token(client, "planner", "planner-pass")
    birth = TODAY - dt.timedelta(days=70)
    number = identity(birth, 9, sex="M")
    child = client.post("/api/v1/immunization/children", headers=admin, json={
        "name": "小刚", "identity_number": number, "village_code": "140725100201",
        "site_code": "VS1"}).json()
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        immunization_entry({"record_id": "f1", "child_identity": number, "vaccine": "HepB",
                            "dose": "1", "date": str(birth), "lot": "H1", "route": "IM"}),
        immunization_entry({"record_id": "f2", "child_identity": number, "vaccine": "BCG",
                            "dose": "1", "date": str(birth)})]}
    up = client.post("/fhir/Immunization/$upload", params={"site": "VS1"}, json=bundle,
                     headers=admin)
    assert up.status_code == 200 and '"inserted": 2' in up.json()["issue"][0]["diagnostics"]
    patient = client.get(f"/fhir/Patient/child-{child['id']}", headers=admin).json()
    assert patient["resourceType"] == "Patient" and patient["gender"] == "male"
    assert patient["identifier"][0]["value"] == number
    search = client.get("/fhir/Immunization", params={"patient": f"Patient/child-{child['id']}"},
                        headers=admin).json()
    assert search["total"] == 2
    hepb = next(e["resource"] for e in search["entry"]
                if e["resource"]["vaccineCode"]["coding"][0]["code"] == "HepB")
    assert (hepb["lotNumber"], hepb["route"]["coding"][0]["code"]) == ("H1", "IM")
    # round trip: the searchset's resources uploaded again add nothing
    again = client.post("/fhir/Immunization/$upload", params={"site": "VS1"}, headers=admin,
                        json={"resourceType": "Bundle", "type": "batch", "entry": [
                            {"resource": e["resource"]} for e in search["entry"]]})
    assert '"inserted": 0' in again.json()["issue"][0]["diagnostics"], again.text
    rec = client.get("/fhir/ImmunizationRecommendation", headers=admin, params={
        "patient": f"Patient/child-{child['id']}", "date": TODAY.isoformat()}).json()
    assert rec["resourceType"] == "ImmunizationRecommendation"
    codes = {r["vaccineCode"][0]["coding"][0]["code"]: r["forecastStatus"]["text"]
             for r in rec["recommendation"]}
    assert codes["HepB"] == "due" and codes["IPV"] == "due"
    assert client.get(f"/fhir/Patient/child-{child['id']}",
                      headers=planner).status_code == 404  # outside the planner's township
    listed = client.get("/api/v1/immunization/worklists", headers=admin, params={
        "start": TODAY.isoformat(), "end": day.isoformat(), "site": "VS1"}).json()
    assert listed["lines"] == len(listed["items"]) > 0
    assert dt.date.fromisoformat(listed["items"][0]["earliest"]) <= day


def test_reminders_page_within_the_callers_scope(client, session):
    """A day's bookings to remind: total, offset and limit; a site filter; a writer of
    another division sees none; a page larger than the maximum is refused naming limit."""
    create_user(session, username="yi-doctor", password="yi-doctor-pass", role="village_doctor",
                division_code="140725200")
    session.commit()
    admin = _token(client, "admin", "admin-pass-1")
    day = TODAY + dt.timedelta(days=3)
    sid = client.post("/api/v1/immunization/sites/VS1/sessions", headers=admin,
                      json={"on_date": day.isoformat(), "capacity": 3}).json()["id"]
    for serial in range(3):
        booked = client.post("/api/v1/immunization/bookings", params={"self_paid": True},
                             headers=admin, json={
                                 "session_id": sid, "vaccines": ["HPV"],
                                 "identity_number": identity(dt.date(1995, 2, 2), serial)})
        assert booked.status_code == 201, booked.text
    url = "/api/v1/immunization/reminders"
    every = client.get(url, headers=admin, params={"on_date": day.isoformat()}).json()
    assert (every["total"], every["offset"], every["limit"]) == (3, 0, 50)
    ids = [r["booking_id"] for r in every["items"]]
    assert ids == sorted(ids) and {r["site_code"] for r in every["items"]} == {"VS1"}
    page = client.get(url, headers=admin,
                      params={"on_date": day.isoformat(), "offset": 1, "limit": 1}).json()
    assert (page["total"], page["offset"], page["limit"]) == (3, 1, 1)
    assert [r["booking_id"] for r in page["items"]] == ids[1:2]
    assert client.get(url, headers=admin, params={"on_date": day.isoformat(),
                                                  "site": "SL1"}).json()["total"] == 0
    other = _token(client, "yi-doctor", "yi-doctor-pass")
    assert client.get(url, headers=other, params={"on_date": day.isoformat()}).json() == {
        "total": 0, "offset": 0, "limit": 50, "items": []}
    too_big = client.get(url, headers=admin, params={"on_date": day.isoformat(), "limit": 501})
    assert too_big.status_code == 422
    assert [p["field"] for p in too_big.json()["detail"]] == ["limit"]
