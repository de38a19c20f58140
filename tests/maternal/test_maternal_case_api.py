"""The maternal REST API and FHIR endpoints through the HTTP client, on SQLite and PostgreSQL:
authentication, scope, masking, audit of reads, 422 naming the field, 409 with a machine
reason, pagination, and FHIR resources that validate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.riskassessment import RiskAssessment
from maternal_case_helpers import PASSWORD, load_maternal_county, woman
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.models import AuditEntry
from tiercare.config import Settings
from tiercare.maternal.fhir import from_risk_assessment
from tiercare.web.app import create_app

API = "/api/v1/maternal"


@pytest.fixture
def client(db_url: str, engine, session: Session) -> Iterator[TestClient]:
    load_maternal_county(session)
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def _auth(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token",
                           data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _reads(session: Session) -> int:
    session.rollback()  # a fresh snapshot
    return session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "read", AuditEntry.entity == "maternal_pregnancy")) or 0


def test_register_grade_manage_and_close_over_http(client: TestClient, session: Session) -> None:
    assert client.get(f"{API}/pregnancies").status_code == 401
    vdoc, hosp, mch = (_auth(client, u) for u in ("vdoc", "hosp", "mch"))
    today = dt.date.today()
    body = {"resident": woman(21), "lmp": (today - dt.timedelta(days=80)).isoformat(),
            "screening": {"age": 38, "hb_g_l": 100}}
    created = client.post(f"{API}/pregnancies", json=body, headers=vdoc)
    assert created.status_code == 201, created.text
    p = created.json()
    assert p["status"] == "awaiting_grading" and p["colour"] == "yellow"
    # the village doctor sees the identity number in the file, lists are masked for everyone
    assert p["woman"]["identity_number"] == woman(21)["identity_number"]
    listed = client.get(f"{API}/pregnancies", headers=hosp).json()
    assert listed["total"] == 1
    assert listed["items"][0]["identity_number"] == "140725********" + \
        str(woman(21)["identity_number"])[-4:]
    assert listed["items"][0]["name"].endswith("**")
    # the same woman twice: 409 with the reason; bad values: 422 naming each field
    again = client.post(f"{API}/pregnancies", json={**body, "resident": None,
                                                      "resident_id": p["resident_id"]},
                        headers=vdoc)
    assert again.status_code == 409
    assert again.json()["detail"]["reason"] == "open_pregnancy_exists"
    bad = client.post(f"{API}/pregnancies", json={"resident": woman(22), "edd": today.isoformat(),
                                                  "screening": {"age": 3, "hb_g_l": 95,
                                                                "conditions": ["zika_x"]}},
                      headers=vdoc)
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["detail"]} == {"screening.age",
                                                          "screening.conditions"}
    # grading: the village doctor may not; the hospital may
    findings = {"findings": {"age": 38, "conditions": ["cardiomyopathy", "hiv"]}}
    refused = client.post(f"{API}/pregnancies/{p['id']}/assessments", json=findings,
                          headers=vdoc)
    assert refused.status_code == 409
    assert refused.json()["detail"]["reason"] == "grading_needs_hospital"
    graded = client.post(f"{API}/pregnancies/{p['id']}/assessments", json=findings,
                         headers=hosp)
    assert graded.status_code == 201
    assessment = graded.json()
    assert (assessment["colour"], assessment["purple"], assessment["previous_colour"]) == (
        "red", True, "yellow")
    history = client.get(f"{API}/pregnancies/{p['id']}/assessments", headers=mch).json()
    assert (history["total"], history["offset"], history["limit"]) == (2, 0, 50)
    assert [a["kind"] for a in history["items"]] == ["screening", "grading"]
    later = client.get(f"{API}/pregnancies/{p['id']}/assessments", headers=mch,
                       params={"offset": 1, "limit": 1}).json()
    assert (later["total"], [a["kind"] for a in later["items"]]) == (2, ["grading"])
    too_big = client.get(f"{API}/pregnancies/{p['id']}/assessments", headers=mch,
                         params={"limit": 501})
    assert too_big.status_code == 422
    assert [x["field"] for x in too_big.json()["detail"]] == ["limit"]
    # case management
    cases = client.get(f"{API}/cases", headers=mch).json()
    assert [c["id"] for c in cases["items"]] == [p["id"]]
    assert client.put(f"{API}/cases/{p['id']}/manager", json={"username": "nobody"},
                      headers=mch).status_code == 422
    managed = client.put(f"{API}/cases/{p['id']}/manager", json={"username": "mch"},
                         headers=mch).json()
    assert managed["case_manager"]["username"] == "mch"
    assert client.get(f"{API}/cases?mine=true", headers=mch).json()["total"] == 1
    assert client.get(f"{API}/cases?mine=true", headers=hosp).json()["total"] == 0
    file = client.get(f"{API}/pregnancies/{p['id']}", headers=mch).json()
    assert [s["code"] for s in file["pmtct"]][:1] == ["hiv_art"]
    # red needs a tertiary hospital: X1 is beyond the limit, so the county critical maternal
    # care centre is proposed as the fallback
    where = file["where_to_deliver"]
    assert (where["facility"]["code"], where["fallback"], where["within_limit"]) == (
        "M1", True, True)
    assert file["woman"]["identity_number"] == woman(21)["identity_number"]  # facility staff
    step = client.post(f"{API}/cases/{p['id']}/pmtct/hiv_art", json={"on": today.isoformat()},
                       headers=mch)
    assert step.status_code == 200 and step.json()["pmtct"][0]["done"]
    reports = client.get(f"{API}/reports", headers=mch).json()
    assert [r["event"] for r in reports["items"]] == ["case_opened"]
    received = client.post(f"{API}/reports/{reports['items'][0]['id']}/receive", headers=mch)
    assert received.status_code == 200
    assert client.post(f"{API}/reports/{reports['items'][0]['id']}/receive",
                       headers=mch).json()["detail"]["reason"] == "already_received"
    # alerts: colour rising is raised at once, acknowledged over HTTP
    alerts = client.get(f"{API}/alerts", headers=mch).json()
    rising = [a for a in alerts["items"] if a["kind"] == "colour_rising"]
    assert len(rising) == 1
    ack = client.post(f"{API}/alerts/{rising[0]['id']}/acknowledge", json={"note": "seen"},
                      headers=mch)
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "mch"
    assert client.post(f"{API}/alerts/run?at=2030-01-01T00:00:00Z",
                       headers=mch).status_code == 403
    # delivery, then the postpartum assessment is too early
    delivered = client.post(f"{API}/pregnancies/{p['id']}/delivery",
                            json={"on": today.isoformat(), "facility_code": "X1"}, headers=hosp)
    assert delivered.status_code == 200 and delivered.json()["status"] == "delivered"
    early = client.post(f"{API}/pregnancies/{p['id']}/postpartum",
                        json={"on": today.isoformat(), "stable": True}, headers=hosp)
    assert early.status_code == 409 and early.json()["detail"]["reason"] == "too_early"
    # every read of the file was audited
    before = _reads(session)
    client.get(f"{API}/pregnancies/{p['id']}", headers=mch)
    assert _reads(session) == before + 1


def test_fhir_pagination_and_scope(client: TestClient) -> None:
    vdoc, hosp, planner = (_auth(client, u) for u in ("vdoc", "hosp", "yixiang"))
    today = dt.date.today()
    ids = []
    for n in range(3):
        r = client.post(f"{API}/pregnancies", headers=vdoc, json={
            "resident": woman(30 + n), "edd": (today + dt.timedelta(days=150)).isoformat(),
            "screening": {"age": 30, "hb_g_l": 95, "height_cm": 160, "weight_kg": 70}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    page = client.get(f"{API}/pregnancies?limit=2&offset=0", headers=hosp).json()
    rest = client.get(f"{API}/pregnancies?limit=2&offset=2", headers=hosp).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and len(rest["items"]) == 1
    assert {i["id"] for i in page["items"] + rest["items"]} == set(ids)
    assert client.get(f"{API}/pregnancies?limit=0", headers=hosp).status_code == 422
    # the planner of another township sees none of them
    assert client.get(f"{API}/pregnancies", headers=planner).json()["total"] == 0
    assert client.get(f"{API}/pregnancies/{ids[0]}", headers=planner).status_code == 404
    assert client.get(f"{API}/pregnancies/{ids[0]}/assessments",
                      headers=planner).status_code == 404
    graded = client.post(f"{API}/pregnancies/{ids[0]}/assessments", headers=hosp, json={
        "findings": {"age": 30, "hb_g_l": 95, "height_cm": 160, "weight_kg": 70}}).json()
    # FHIR
    episode = client.get(f"/fhir/EpisodeOfCare/{ids[0]}", headers=hosp)
    assert episode.headers["content-type"].startswith("application/fhir+json")
    parsed = EpisodeOfCare.model_validate(episode.json())
    assert parsed.status == "active"
    risk = RiskAssessment.model_validate(
        client.get(f"/fhir/RiskAssessment/{graded['id']}", headers=hosp).json())
    colour, purple, codes = from_risk_assessment(risk)
    assert (colour, purple) == ("yellow", False)
    assert codes == [r["code"] for r in graded["reasons"]]
    assert {b.reference for b in risk.basis} >= {f"Observation/mat-{graded['id']}-hb-g-l"}
    obs = Observation.model_validate(client.get(
        f"/fhir/Observation/mat-{graded['id']}-hb-g-l", headers=hosp).json())
    assert obs.valueQuantity.value == 95 and obs.valueQuantity.code == "g/L"
    assert client.get("/fhir/Observation/mat-999-x", headers=hosp).status_code == 404
    bundle = Bundle.model_validate(client.get(f"/fhir/EpisodeOfCare/{ids[0]}/$everything",
                                              headers=hosp).json())
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds[:2] == ["Patient", "EpisodeOfCare"] and kinds.count("RiskAssessment") == 2
    patient = client.get(f"/fhir/Patient/{bundle.entry[0].resource.id}", headers=planner)
    assert patient.status_code == 404
    # stateless grading, JSON and FHIR
    graded_json = client.post(f"{API}/grade?lang=en", headers=hosp,
                              json={"age": 40, "bmi": 28, "hb_g_l": 100,
                                    "platelets_1e9_l": 80}).json()
    assert graded_json["colour"] == "orange"
    assert {r["code"] for r in graded_json["reasons"]} == {
        "age_40_or_over", "obesity_bmi_28", "anaemia_hb_60_110", "thrombocytopenia_50_100"}
    fhir_grade = client.post(f"{API}/grade?format=fhir", headers=hosp, json={"age": 25})
    assert RiskAssessment.model_validate(fhir_grade.json()).status == "final"


def test_page_catalogues_complete() -> None:
    import re
    from pathlib import Path

    from tiercare.maternal.pages import MATERNAL_TEMPLATES, maternal_catalogue
    from tiercare.web.i18n import LANGUAGES, catalogue

    keys = [set(maternal_catalogue(lang)) for lang in LANGUAGES]
    assert all(k == keys[0] for k in keys)
    known = keys[0] | set(catalogue(LANGUAGES[0]))
    used: set[str] = set()
    for template in Path(MATERNAL_TEMPLATES).rglob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]*[a-z])["']""", template.read_text()))
    assert len(used) > 100 and used <= known, used - known


def test_where_to_deliver_uses_the_stored_road_network(client: TestClient,
                                                       session: Session) -> None:
    from tiercare.auth.service import SYSTEM
    from tiercare.scenarios.service import store_road_network

    admin = _auth(client, "admin")
    by_line = client.get(f"{API}/where-to-deliver", headers=admin).json()
    assert by_line["method"] == "straight_line"
    red = {g["village_code"] for g in by_line["villages"] if g["colour"] == "red"}
    assert "140725100201" in red
    # a fast road from 东村 (113.11, 37.91) north to the tertiary hospital X1 (113.1, 38.2)
    store_road_network(session, SYSTEM, name="county roads", division_code="140725",
                       speed_field="speed_kmh", geojson={
                           "type": "FeatureCollection", "features": [{
                               "type": "Feature", "properties": {"class": "primary", "speed_kmh": 120},
                               "geometry": {"type": "LineString",
                                            "coordinates": [[113.11, 37.91], [113.1, 38.2]]}}]})
    session.commit()
    response = client.get(f"{API}/where-to-deliver", headers=admin)
    assert response.status_code == 200, response.text
    by_road = response.json()
    assert by_road["method"] == "network"
    red = {g["village_code"] for g in by_road["villages"] if g["colour"] == "red"}
    assert "140725100201" not in red  # about 32 km at 120 km/h ≈ 16 minutes
