"""The REST flow: residents, schedules, idempotent booking, referral round trip, indicators."""

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from referral_helpers import add_residents, load_small_county

from tiercare.auth.service import create_user
from tiercare.config import Settings
from tiercare.identity import check_character
from tiercare.web.app import create_app


@pytest.fixture
def client(db_url, engine, session):
    load_small_county(session)
    create_user(session, username="admin", password="admin-pass-1", role="admin")
    create_user(session, username="desk", password="desk-pass-1", role="facility_staff",
                facility_code="H1")
    create_user(session, username="doctor", password="doctor-pass", role="village_doctor",
                facility_code="V1")
    create_user(session, username="centre", password="centre-pass", role="facility_staff",
                facility_code="T1")
    session.commit()
    app = create_app(Settings(database_url=db_url, secret_key="api-test-secret"))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def _auth(client, username, password):
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_round_trip(client, session):
    admin = _auth(client, "admin", "admin-pass-1")
    desk = _auth(client, "desk", "desk-pass-1")
    doctor = _auth(client, "doctor", "doctor-pass")
    centre = _auth(client, "centre", "centre-pass")
    first17 = "14072519800101123"
    bad = client.post("/api/v1/residents", headers=doctor, json={
        "name": "赵强", "identity_number": first17 + ("0" if check_character(first17) != "0"
                                                       else "1"),
        "village_code": "140725100201"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "identity_number"
    assert bad.json()["detail"][0]["code"] == "bad_check_digit"
    made = client.post("/api/v1/residents", headers=doctor, json={
        "name": "赵强", "identity_number": first17 + check_character(first17),
        "village_code": "140725100201", "phone": "13912345678", "signed_staff_code": "S1"})
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert made.json()["identity_number"] == first17 + check_character(first17)
    listed = client.get("/api/v1/residents", headers=doctor).json()
    assert listed["items"][0]["identity_number"].count("*") == 8
    assert client.post("/api/v1/residents/lookup", headers=doctor, json={
        "identity_number": first17 + check_character(first17)}).json()["id"] == rid
    # schedule every day, slots for the day after tomorrow
    day = date.today() + timedelta(days=2)
    sched = client.post("/api/v1/schedules", headers=desk, json={
        "facility_code": "H1", "department": "心内科", "name": "心内科专家门诊",
        "expert": True, "capacity_per_slot": 1, "slot_minutes": 15,
        "weekly": [{"weekday": d, "start": "08:00", "end": "09:00"} for d in range(7)],
        "effective_from": (day - timedelta(days=30)).isoformat(), "follows_holidays": False})
    assert sched.status_code == 201, sched.text
    assert sched.json()["referral_share"] == 0.5
    sid = sched.json()["id"]
    assert client.post(f"/api/v1/schedules/{sid}/slots", headers=desk, json={
        "start": day.isoformat(), "end": day.isoformat()}).json()["created"] == 4
    slots = client.get("/api/v1/slots", headers=doctor, params={
        "facility": "H1", "day": day.isoformat()}).json()["items"]
    assert [s["referral_capacity"] for s in slots] == [0, 1, 0, 1]
    general = [s for s in slots if s["referral_capacity"] == 0]
    # idempotent booking of a general place
    key = {"Idempotency-Key": "booking-0001"}
    one = client.post("/api/v1/appointments", headers={**doctor, **key},
                      json={"slot_id": general[0]["id"], "resident_id": rid})
    assert one.status_code == 201, one.text
    two = client.post("/api/v1/appointments", headers={**doctor, **key},
                      json={"slot_id": general[0]["id"], "resident_id": rid})
    assert two.status_code == 200 and two.json()["id"] == one.json()["id"]
    other = add_residents(session, 1, village="140725100201")[0]
    full = client.post("/api/v1/appointments", headers=doctor,
                       json={"slot_id": general[0]["id"], "resident_id": other})
    assert full.status_code == 409 and full.json()["detail"]["reason"] == "slot_full"
    reserved_only = client.post("/api/v1/appointments", headers=doctor,
                                json={"slot_id": slots[1]["id"], "resident_id": other})
    assert reserved_only.json()["detail"]["reason"] == "slot_full"
    # referral: send, suggestions, accept-and-book, arrive, complete, down-refer, follow up
    suggested = client.get("/api/v1/referrals/suggestions", headers=doctor,
                           params={"resident_id": rid, "service": "chest_pain"}).json()
    assert suggested[0]["facility_code"] == "H1"
    sent = client.post("/api/v1/referrals", headers=doctor, json={
        "resident_id": rid, "to_facility_code": "H1", "urgency": "urgent",
        "reason": "胸痛待查", "criteria": ["chest_pain_nitro"], "department": "心内科",
        "attachments": [{"name": "心电图", "text": "ST段抬高"}]})
    assert sent.status_code == 201, sent.text
    ref = sent.json()["id"]
    incoming = client.get("/api/v1/referrals", headers=desk).json()
    assert incoming["items"][0]["id"] == ref
    assert client.post(f"/api/v1/referrals/{ref}/accept", headers=doctor,
                       json={}).json()["detail"]["reason"] == "not_your_side"
    booked = client.post(f"/api/v1/referrals/{ref}/accept-and-book", headers=desk,
                         json={"slot_id": slots[1]["id"]})
    assert booked.status_code == 200, booked.text
    assert booked.json()["status"] == "scheduled"
    assert [e["to"] for e in booked.json()["events"]] == ["requested", "accepted", "scheduled"]
    assert client.post(f"/api/v1/referrals/{ref}/arrive", headers=desk).json()["status"] == \
        "arrived"
    assert client.post(f"/api/v1/referrals/{ref}/complete", headers=desk,
                       json={"note": "PCI"}).json()["status"] == "completed"
    down = client.post(f"/api/v1/referrals/{ref}/down-referral", headers=desk, json={
        "to_facility_code": "T1", "reason": "病情稳定", "criteria": ["stable"],
        "plan": {"kind": "chronic_disease", "instructions": "每两周测血压",
                 "interval_days": 14, "visits": 4}})
    assert down.status_code == 201, down.text
    did = down.json()["id"]
    assert client.post(f"/api/v1/referrals/{did}/accept", headers=centre,
                       json={}).json()["status"] == "accepted"
    assert client.post(f"/api/v1/referrals/{did}/follow-ups", headers=centre,
                       json={"note": "血压 128/80"}).status_code == 201
    notes = client.get("/api/v1/notifications", headers=doctor).json()
    assert notes["total"] >= 3
    ind = client.get("/api/v1/indicators/referral", headers=admin).json()
    assert (ind["up_referrals"], ind["down_referrals"]) == (1, 1)
    assert ind["acceptance_rate"] == 1.0 and ind["completion_rate"] == 1.0
    assert ind["treated_within_county_share"] == 1.0
    assert ind["appointment_rate"] == 1.0
    # checklist data and holidays
    assert "stroke_4_5h" in {c["code"] for c in client.get(
        "/api/v1/referral-criteria", headers=doctor).json()["up"]}
    spring = [h for h in client.get("/api/v1/holidays", headers=doctor,
                                    params={"year": 2026}).json() if h["kind"] == "workday"]
    assert "2026-02-14" in {h["date"] for h in spring}
    whole_day = client.get("/api/v1/calendar", headers=desk, params={
        "facility": "H1", "day": day.isoformat()}).json()
    assert (whole_day["total"], whole_day["offset"], whole_day["limit"]) == (4, 0, 100)
    assert whole_day["items"][1]["appointments"][0]["resident_id"] == rid
    second = client.get("/api/v1/calendar", headers=desk, params={
        "facility": "H1", "day": day.isoformat(), "offset": 1, "limit": 1}).json()
    assert (second["total"], second["offset"], second["limit"]) == (4, 1, 1)
    assert [s["id"] for s in second["items"]] == [whole_day["items"][1]["id"]]
    too_big = client.get("/api/v1/calendar", headers=desk, params={
        "facility": "H1", "day": day.isoformat(), "limit": 501})
    assert too_big.status_code == 422
    assert [p["field"] for p in too_big.json()["detail"]] == ["limit"]
    outside = client.get("/api/v1/calendar", headers=_auth(client, "centre", "centre-pass"),
                         params={"facility": "H1", "day": day.isoformat()})
    assert outside.status_code == 422 and outside.json()["detail"][0]["field"] == "facility"
