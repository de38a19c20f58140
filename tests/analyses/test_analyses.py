import time

import pytest
from fastapi.testclient import TestClient

from tiercare.auth.service import SYSTEM, create_user
from tiercare.config import Settings
from tiercare.registry.importing import import_boundaries
from tiercare.scenarios.service import store_road_network
from tiercare.web.app import create_app


def _line(road_id, coords, cls="county", speed=60):
    return {"type": "Feature", "properties": {"id": road_id, "class": cls, "speed_kmh": speed},
            "geometry": {"type": "LineString", "coordinates": coords}}


ROADS = {"type": "FeatureCollection", "features": [
    _line("main", [[113.0, 37.9], [113.05, 37.9], [113.1, 37.9], [113.3, 37.9], [113.4, 37.9]]),
    _line("east", [[113.1, 37.9], [113.11, 37.91]], "village", 25),
    _line("west", [[113.05, 37.9], [113.05, 37.85]], "village", 25),
    _line("south", [[113.3, 37.9], [113.3, 37.85]], "village", 25),
]}
SQUARE = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
    "code": "140725"}, "geometry": {"type": "Polygon", "coordinates": [[
        [113.0, 37.8], [113.4, 37.8], [113.4, 38.0], [113.0, 38.0], [113.0, 37.8]]]}}]}


@pytest.fixture
def client(db_url, small_county):
    import json

    store_road_network(small_county, SYSTEM, name="roads", division_code="140725", geojson=ROADS)
    import_boundaries(small_county, json.dumps(SQUARE).encode(), "c.geojson", actor=SYSTEM)
    create_user(small_county, username="planner", password="planner-pass", role="planner",
                division_code="140725")
    small_county.commit()
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as test_client:
        token = test_client.post("/api/v1/auth/token", data={
            "username": "planner", "password": "planner-pass"}).json()["access_token"]
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client
    app.state.engine.dispose()


def _wait(client, run_id):
    for _ in range(600):
        run = client.get(f"/api/v1/analyses/{run_id}").json()
        if run["status"] in {"done", "failed"}:
            return run
        time.sleep(0.05)
    raise AssertionError("analysis did not finish")


def test_access_run_with_progress_surface_and_downloads(client):
    started = client.post("/api/v1/analyses", json={
        "kind": "access", "division_code": "140725",
        "params": {"road_network": "roads", "thresholds": [15, 30]}})
    assert started.status_code == 202
    run = _wait(client, started.json()["id"])
    assert run["status"] == "done", run["message"]
    result = run["result"]
    assert result["summary"]["population_total"] == 10000
    south = next(v for v in result["villages"] if v["code"] == "140725200201")
    assert south["minutes_township"] > 15  # the township centre is 0.2° west
    # 南村 → county hospital: ~17.5 km of main road at 60 km/h + 5.6 km of spur at 25 km/h
    # ≈ 31 min, beyond the widest threshold (30): listed as unreached; 东村 is not.
    unreached = {v["code"] for v in result["unreached"]["county"]}
    assert "140725200201" in unreached and "140725100201" not in unreached
    surface = result["surface"]
    assert surface["tier"] == "county" and len(surface["minutes"]) == len(surface["lat"])
    finite = [m for row in surface["minutes"] for m in row if m is not None]
    assert min(finite) < 5 and max(finite) > min(finite)
    csv = client.get(f"/api/v1/analyses/{run['id']}/download/villages.csv")
    assert csv.status_code == 200 and "minutes_county" in csv.text


def test_optimise_run_saved_as_scenario(client, session):
    from tiercare.registry.importing import import_rows

    import_rows(session, "facilities", [
        {"code": "T2", "name": "乙乡卫生院", "type": "township_health_centre",
         "division_code": "140725200", "lon": "113.3", "lat": "37.9"}], actor=SYSTEM)
    session.commit()
    started = client.post("/api/v1/analyses", json={
        "kind": "optimise", "division_code": "140725",
        "params": {"road_network": "roads", "model": "mclp", "tier": "county", "new_sites": 1,
                   "threshold": 15, "candidate_types": ["township_health_centre"]}})
    run = _wait(client, started.json()["id"])
    assert run["status"] == "done", run["message"]
    # T1 stands beside the county hospital and adds nothing; T2 brings 南村 within 15 min.
    assert [s["code"] for s in run["result"]["new_sites"]] == ["T2"]
    # Within 15 min: the community (4,000), 东村 (1,000) and 南村 (4,000); 西村 needs ~18 min
    # (4.4 km of main road at 60 km/h and a 5.6 km spur at 25 km/h).
    assert run["result"]["result"]["objective"] == 9000
    saved = client.post(f"/api/v1/analyses/{run['id']}/scenario", json={"name": "升级T2"})
    assert saved.status_code == 201
    assert saved.json()["changes"] == [{"action": "upgrade", "code": "T2",
                                        "type": "county_sub_centre"}]


def test_bad_parameters(client):
    bad = client.post("/api/v1/analyses", json={"kind": "access", "division_code": "140725",
                                                "params": {"road_network": "nope"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "road_network"
    bad = client.post("/api/v1/analyses", json={"kind": "magic", "division_code": "140725"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "kind"


def test_blank_spot_exemption_by_travel_time(client):
    # 西村 has no clinic; by road it is ~18 min from 甲镇卫生院 (4.4 km at 60 + 5.6 km at 25).
    strict = client.get("/api/v1/reports/blank-spots", params={
        "exempt_within_minutes": 15, "road_network": "roads", "exempt_within_km": 0}).json()
    loose = client.get("/api/v1/reports/blank-spots", params={
        "exempt_within_minutes": 20, "road_network": "roads", "exempt_within_km": 0}).json()
    assert strict["summary"]["village_without_clinic"] == 1
    assert loose["summary"]["village_without_clinic"] == 0
    exempt = next(s for s in loose["items"] if s["kind"] == "village_without_clinic")
    assert "min" in exempt["exemption"]
    missing = client.get("/api/v1/reports/blank-spots", params={"exempt_within_minutes": 15})
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "road_network"


def test_runs_list_pages_within_the_callers_scope(client, small_county):
    """Out-of-scope runs, however many and however new, neither hide in-scope ones nor count
    in ``total`` (the scope is filtered in SQL before paging)."""
    from tiercare.analyses.models import AnalysisRun

    mine = [AnalysisRun(kind=kind, division_code="140725000000", params={}, status="done")
            for kind in ("access", "optimise")]
    small_county.add_all(mine)
    small_county.flush()
    small_county.add_all([AnalysisRun(kind="access", division_code="140726000000", params={},
                                      status="done") for _ in range(210)])
    create_user(small_county, username="jiazhen", password="jiazhen-pass", role="planner",
                division_code="140725100")
    small_county.commit()
    first = client.get("/api/v1/analyses").json()
    assert (first["total"], first["offset"], first["limit"]) == (2, 0, 50)
    assert [r["id"] for r in first["items"]] == [mine[1].id, mine[0].id]
    assert "result" not in first["items"][0]
    second = client.get("/api/v1/analyses", params={"offset": 1, "limit": 1}).json()
    assert (second["total"], second["offset"], second["limit"]) == (2, 1, 1)
    assert [r["id"] for r in second["items"]] == [mine[0].id]
    optimise = client.get("/api/v1/analyses", params={"kind": "optimise"}).json()
    assert optimise["total"] == 1 and optimise["items"][0]["kind"] == "optimise"
    for params, field in (({"limit": 501}, "limit"), ({"offset": -1}, "offset"),
                          ({"kind": "magic"}, "kind")):
        refused = client.get("/api/v1/analyses", params=params)
        assert refused.status_code == 422
        assert [p["field"] for p in refused.json()["detail"]] == [field]
    token = client.post("/api/v1/auth/token", data={
        "username": "jiazhen", "password": "jiazhen-pass"}).json()["access_token"]
    other = client.get("/api/v1/analyses", headers={"Authorization": f"Bearer {token}"})
    assert other.json() == {"total": 0, "offset": 0, "limit": 50, "items": []}
