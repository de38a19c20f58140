import pytest
from fastapi.testclient import TestClient
from registry_helpers import load_small_county
from sqlalchemy import select

from tiercare.auth.models import AuditEntry
from tiercare.auth.service import create_user
from tiercare.config import Settings
from tiercare.registry.reference import shipped_checklists
from tiercare.web.app import create_app


@pytest.fixture
def client(db_url, engine, session):
    load_small_county(session)
    create_user(session, username="admin", password="admin-pass-1", role="admin")
    create_user(session, username="yixiang", password="yixiang-pass", role="planner",
                division_code="140725200")
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


def test_health_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/api/v1/facilities" in spec["paths"]
    assert client.get("/api/v1/facilities").status_code == 401
    assert client.post("/api/v1/auth/token",
                       data={"username": "admin", "password": "wrong"}).status_code == 401


def test_scope_and_filters(client):
    admin = _token(client, "admin", "admin-pass-1")
    township = _token(client, "yixiang", "yixiang-pass")
    doctor = _token(client, "doctor", "doctor-pass")
    assert client.get("/api/v1/facilities", headers=admin).json()["total"] == 4
    seen = client.get("/api/v1/facilities", headers=township).json()
    assert [f["code"] for f in seen["items"]] == ["V2"]
    assert client.get("/api/v1/facilities/H1", headers=township).status_code == 404
    assert [f["code"] for f in client.get("/api/v1/facilities", headers=doctor).json()["items"]] == ["V1"]
    page = client.get("/api/v1/facilities", params={"division": "140725100", "limit": 2,
                                                    "offset": 0}, headers=admin).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert client.get("/api/v1/facilities", params={"type": "village_clinic"},
                      headers=admin).json()["total"] == 2
    assert client.get("/api/v1/facilities", params={"centre": "stroke"},
                      headers=admin).json()["items"][0]["code"] == "H1"
    divisions = client.get("/api/v1/divisions", params={"level": "village"}, headers=township)
    assert [d["code"] for d in divisions.json()["items"]] == ["140725200201"]


def test_create_update_close_with_audit(client, session):
    admin = _token(client, "admin", "admin-pass-1")
    body = {"code": "V3", "name": "西村卫生室", "type": "village_clinic",
            "division_code": "140725100202", "lon": 113.05, "lat": 37.85,
            "staff": {"nurse": 1}}
    created = client.post("/api/v1/facilities", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["staff"] == {"nurse": 1}
    assert client.post("/api/v1/facilities", json=body, headers=admin).status_code == 409
    body["name"] = "西村标准化卫生室"
    assert client.put("/api/v1/facilities/V3", json=body, headers=admin).status_code == 200
    assert client.delete("/api/v1/facilities/V3", headers=admin).status_code == 204
    detail = client.get("/api/v1/facilities/V3", headers=admin).json()
    assert detail["status"] == "closed" and detail["name"] == "西村标准化卫生室"
    actions = [a["action"] for a in client.get("/api/v1/audit", params={"entity": "facility"},
                                                  headers=admin).json()["items"]]
    assert actions[:3] == ["deactivate", "update", "create"]
    assert all(e.username == "admin" for e in session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "facility", AuditEntry.entity_id != "")
    ) if e.detail != "import")


def test_bad_input_names_field(client):
    admin = _token(client, "admin", "admin-pass-1")
    bad = client.post("/api/v1/facilities", headers=admin, json={
        "code": "X", "name": "x", "type": "nope", "division_code": "140725"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "type"
    missing = client.post("/api/v1/facilities", headers=admin, json={"code": "X"})
    assert missing.status_code == 422
    fields = {p["field"]: p for p in missing.json()["detail"]}
    assert {"name", "type", "division_code"} <= set(fields)
    assert fields["name"]["reason"] and fields["name"]["code"] == "missing"
    paging = client.get("/api/v1/facilities", headers=admin, params={"limit": "many"})
    assert paging.status_code == 422 and paging.json()["detail"][0]["field"] == "limit"
    doctor = _token(client, "doctor", "doctor-pass")
    assert client.post("/api/v1/facilities", headers=doctor, json={
        "code": "Y", "name": "y", "type": "village_clinic",
        "division_code": "140725100201"}).status_code == 403


def test_import_upload_is_all_or_nothing(client):
    admin = _token(client, "admin", "admin-pass-1")
    good_and_bad = ("code,name,type,division_code\nN1,好,village_clinic,140725100202\n"
                    "N2,坏,village_clinic,140725999999\n").encode("utf-8")
    response = client.post("/api/v1/imports/facilities", headers=admin,
                           files={"file": ("f.csv", good_and_bad, "text/csv")})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": "division_code", "row": 3,
                                          "reason": "unknown division code 140725999999",
                                          "code": "unknown_division"}]
    assert client.get("/api/v1/facilities/N1", headers=admin).status_code == 404
    good = b"code,name,type,division_code\nN1,ok,village_clinic,140725100202\n"
    ok = client.post("/api/v1/imports/facilities", headers=admin,
                     files={"file": ("f.csv", good, "text/csv")})
    assert ok.json() == {"kind": "facilities", "rows": 1, "created": 1, "updated": 0,
                         "unchanged": 0}
    template = client.get("/api/v1/templates/facilities.xlsx", headers=admin)
    assert template.status_code == 200 and template.content[:2] == b"PK"


def test_reports_and_assessment(client):
    admin = _token(client, "admin", "admin-pass-1")
    spots = client.get("/api/v1/reports/blank-spots", headers=admin).json()
    assert spots["summary"]["village_without_clinic"] == 1
    supply = client.get("/api/v1/reports/supply", params={"division": "140725"},
                        headers=admin).json()
    assert supply["rows"][0]["division_code"] == "140725000000"
    checklists = client.get("/api/v1/checklists", headers=admin).json()["items"]
    village = next(c for c in checklists if c["code"] == "village_clinic")
    answers = {item["code"]: True for item in village["items"]}
    answers["eq_uv_lamp"] = False
    result = client.post("/api/v1/assessments", headers=admin, json={
        "facility_code": "V1", "checklist_code": "village_clinic", "assessed_on": "2026-10-01",
        "assessor": "县卫健委", "answers": answers})
    assert result.status_code == 201, result.text
    total = sum(i["weight"] for i in village["items"])
    assert result.json()["score"] == round(100 * (total - 1) / total, 1)
    assert [u["code"] for u in result.json()["unmet"]] == ["eq_uv_lamp"]
    wrong = client.post("/api/v1/assessments", headers=admin, json={
        "facility_code": "H1", "checklist_code": "village_clinic", "assessed_on": "2026-10-01",
        "assessor": "x", "answers": {}})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "checklist_code"


def test_admin_adds_a_checklist_version(client):
    admin = _token(client, "admin", "admin-pass-1")
    planner = _token(client, "yixiang", "yixiang-pass")
    body = {"code": "village_clinic", "version": "2026-local", "effective_from": "2026-01-01",
            "title_zh": "村卫生室（本地2026版）", "title_en": "Village clinic (local 2026)",
            "applies_to": ["village_clinic"],
            "items": [{"code": "area_80m2", "text_zh": "面积不少于80平方米",
                       "text_en": "At least 80 m²", "weight": 2},
                      {"code": "eq_ecg", "text_zh": "心电图机", "text_en": "ECG machine"}]}
    assert client.post("/api/v1/checklists", json=body, headers=planner).status_code == 403
    assert client.post("/api/v1/checklists", json=body, headers=admin).status_code == 201
    assert client.post("/api/v1/checklists", json=body, headers=admin).status_code == 409
    bad = client.post("/api/v1/checklists", headers=admin,
                      json={**body, "version": "x", "applies_to": ["spaceship"]})
    assert bad.status_code == 422 and "spaceship" in bad.json()["detail"][0]["reason"]
    # An assessment dated 2026 uses the new version; one dated 2025 the 2014 version.
    new = client.post("/api/v1/assessments", headers=admin, json={
        "facility_code": "V1", "checklist_code": "village_clinic", "assessed_on": "2026-03-01",
        "assessor": "县卫健委", "answers": {"area_80m2": True}})
    assert new.json()["checklist_version"] == "2026-local" and new.json()["score"] == 66.7
    old = client.post("/api/v1/assessments", headers=admin, json={
        "facility_code": "V1", "checklist_code": "village_clinic", "assessed_on": "2025-03-01",
        "assessor": "县卫健委", "answers": {}})
    assert old.json()["checklist_version"] == "2014"
    # the versions page like every list; any user may read them
    everything = client.get("/api/v1/checklists", headers=planner).json()
    assert everything["total"] == len(shipped_checklists()) + 1
    versions = client.get("/api/v1/checklists", headers=planner,
                          params={"code": "village_clinic", "limit": 1, "offset": 1}).json()
    assert (versions["total"], versions["offset"], versions["limit"]) == (2, 1, 1)
    assert [c["version"] for c in versions["items"]] == ["2026-local"]
    too_big = client.get("/api/v1/checklists", headers=planner, params={"limit": 501})
    assert too_big.status_code == 422
    assert [p["field"] for p in too_big.json()["detail"]] == ["limit"]
