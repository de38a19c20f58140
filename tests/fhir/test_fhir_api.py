"""FHIR endpoints: every resource validates with fhir.resources R4B, search, create, errors."""

import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduling"))
from booking_helpers import add_residents, load_small_county  # noqa: E402

from tiercare.auth.service import SYSTEM, create_user  # noqa: E402
from tiercare.config import Settings  # noqa: E402
from tiercare.scheduling.service import (  # noqa: E402
    ScheduleIn,
    SessionIn,
    create_schedule,
    generate_slots,
)
from tiercare.web.app import create_app  # noqa: E402


@pytest.fixture
def fhir(db_url, engine, session):
    load_small_county(session)
    ids = add_residents(session, 2)
    day = date.today() + timedelta(days=2)
    s = create_schedule(session, SYSTEM, ScheduleIn(
        facility_code="H1", department="心内科", name="胸痛门诊", capacity_per_slot=1,
        weekly=[SessionIn(weekday=d, start="08:00", end="08:40") for d in range(7)],
        effective_from=date.today() - timedelta(days=1), follows_holidays=False,
        referral_share=0.5))
    generate_slots(session, SYSTEM, s.id, start=day, end=day)
    create_user(session, username="desk", password="desk-pass-1", role="facility_staff",
                facility_code="H1")
    create_user(session, username="doc", password="doc-pass-11", role="village_doctor",
                facility_code="V1")
    create_user(session, username="planner", password="plan-pass-1", role="planner",
                division_code="140725")
    session.commit()
    app = create_app(Settings(database_url=db_url, secret_key="fhir-secret"))
    with TestClient(app) as client:
        tokens = {}
        for name, pw in (("desk", "desk-pass-1"), ("doc", "doc-pass-11"),
                         ("planner", "plan-pass-1")):
            r = client.post("/api/v1/auth/token", data={"username": name, "password": pw})
            tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        yield client, tokens, ids, s.id
    app.state.engine.dispose()


def _validated_bundle(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return Bundle.model_validate(response.json())


def test_metadata_and_reads(fhir):
    client, tok, ids, schedule_id = fhir
    cap = CapabilityStatement.model_validate(client.get("/fhir/metadata").json())
    assert cap.fhirVersion == "4.3.0"
    types = {r.type for r in cap.rest[0].resource}
    assert types == {"Patient", "Practitioner", "Organization", "Location", "HealthcareService",
                     "Schedule", "Slot", "Appointment", "ServiceRequest", "Task",
                     "Immunization", "ImmunizationRecommendation", "Observation",
                     "RiskAssessment", "EpisodeOfCare"}
    doc, planner = tok["doc"], tok["planner"]
    patient = client.get(f"/fhir/Patient/{ids[0]}", headers=doc).json()
    assert patient["resourceType"] == "Patient" and "*" not in patient["identifier"][0]["value"]
    masked = client.get(f"/fhir/Patient/{ids[0]}", headers=planner).json()
    assert masked["identifier"][0]["value"].count("*") == 8
    orgs = _validated_bundle(client.get("/fhir/Organization", headers=doc,
                                        params={"identifier": "H1"}))
    assert orgs.total == 1
    h1 = orgs.entry[0].resource.id
    for kind in ("Organization", "Location"):
        assert client.get(f"/fhir/{kind}/{h1}", headers=doc).status_code == 200
    practitioners = _validated_bundle(client.get("/fhir/Practitioner", headers=doc))
    assert practitioners.total == 2
    for kind in ("HealthcareService", "Schedule"):
        assert client.get(f"/fhir/{kind}/{schedule_id}", headers=doc).status_code == 200
    slots = _validated_bundle(client.get("/fhir/Slot", headers=doc, params={
        "schedule": f"Schedule/{schedule_id}", "status": "free"}))
    # 4 one-place slots, half reserved: 2 general + 2 reserved FHIR Slots
    assert slots.total == 4
    reserved = _validated_bundle(client.get("/fhir/Slot", headers=doc, params={
        "schedule": str(schedule_id), "service-type": "referral"}))
    assert reserved.total == 2
    paged = _validated_bundle(client.get("/fhir/Slot", headers=doc, params={
        "schedule": str(schedule_id), "_count": 3}))
    assert len(paged.entry) == 3 and any(link.relation == "next" for link in paged.link)
    bad = client.get("/fhir/Slot", headers=doc, params={"colour": "red"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient/999", headers=doc).status_code == 404


def test_create_referral_and_appointments(fhir):
    client, tok, ids, schedule_id = fhir
    doc, desk = tok["doc"], tok["desk"]
    orgs = {e.resource.identifier[0].value: e.resource.id
            for e in _validated_bundle(client.get("/fhir/Organization", headers=doc)).entry}
    sr = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
          "priority": "urgent", "subject": {"reference": f"Patient/{ids[0]}"},
          "requester": {"reference": f"Organization/{orgs['V1']}"},
          "performer": [{"reference": f"Organization/{orgs['H1']}"}],
          "code": {"text": "chest_pain"},
          "reasonCode": [{"text": "胸痛 30 分钟", "coding": [{
              "system": "urn:tiercare:codesystem:referral-criteria",
              "code": "chest_pain_nitro"}]}],
          "note": [{"text": "ECG: ST elevation"}]}
    made = client.post("/fhir/ServiceRequest", headers=doc, json=sr)
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert made.json()["priority"] == "urgent"
    task = client.get(f"/fhir/Task/{rid}", headers=desk).json()
    assert task["status"] == "requested" and task["owner"]["reference"] == \
        f"Organization/{orgs['H1']}"
    reserved = _validated_bundle(client.get("/fhir/Slot", headers=desk, params={
        "schedule": str(schedule_id), "service-type": "referral"})).entry[0].resource
    booked = client.post("/fhir/Appointment", headers=desk, json={
        "resourceType": "Appointment", "status": "booked",
        "slot": [{"reference": f"Slot/{reserved.id}"}],
        "basedOn": [{"reference": f"ServiceRequest/{rid}"}],
        "participant": [{"actor": {"reference": f"Patient/{ids[0]}"}, "status": "accepted"}]})
    assert booked.status_code == 201, booked.text
    assert client.get(f"/fhir/Task/{rid}", headers=desk).json()["status"] == "accepted"
    tasks = _validated_bundle(client.get("/fhir/Task", headers=desk,
                                         params={"owner": f"Organization/{orgs['H1']}"}))
    assert tasks.total == 1
    general = _validated_bundle(client.get("/fhir/Slot", headers=doc, params={
        "schedule": str(schedule_id), "service-type": "general"})).entry[0].resource
    body = {"resourceType": "Appointment", "status": "booked",
            "slot": [{"reference": f"Slot/{general.id}"}],
            "participant": [{"actor": {"reference": f"Patient/{ids[1]}"},
                             "status": "accepted"}]}
    key = {"Idempotency-Key": "fhir-key-0001"}
    first = client.post("/fhir/Appointment", headers={**doc, **key}, json=body)
    again = client.post("/fhir/Appointment", headers={**doc, **key}, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    body["participant"][0]["actor"]["reference"] = f"Patient/{ids[0]}"
    full = client.post("/fhir/Appointment", headers=doc, json=body)
    assert full.status_code == 409
    assert full.json()["issue"][0]["details"]["coding"][0]["code"] == "slot_full"
    listed = _validated_bundle(client.get("/fhir/Appointment", headers=desk,
                                          params={"patient": f"Patient/{ids[1]}"}))
    assert listed.total == 1
    invalid = client.post("/fhir/Appointment", headers=doc, json={
        "resourceType": "Appointment", "status": "nonsense", "participant": []})
    assert invalid.status_code == 422
    assert client.post("/fhir/Task", headers=doc, json={}).status_code == 405
