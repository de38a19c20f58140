"""The planning pages through the HTTP client, on SQLite and PostgreSQL.

The small test county (tests/registry/registry_helpers.py) on the hand-made road network of
planning_county.py: a main road west–east along 37.9°N at 60 km/h with 25 km/h spurs to the
villages. Expected figures are worked out by hand from that geometry (see each test), not
taken from the engine.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient
from planning_county import PASSWORD, prepare
from sqlalchemy import select

from tiercare.analyses.models import AnalysisRun
from tiercare.auth.service import SYSTEM
from tiercare.config import Settings
from tiercare.registry.importing import import_rows
from tiercare.scenarios.models import Scenario
from tiercare.web.app import create_app

NAME_T2 = "乙乡卫生院"


@pytest.fixture
def client(db_url, small_county):
    prepare(small_county)
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as test_client:
        _login(test_client, "planner")
        yield test_client
    app.state.engine.dispose()


def _login(client: TestClient, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "next": "/planning"}, follow_redirects=False)
    assert response.status_code == 303


def _wait(client: TestClient, location: str) -> int:
    """Run id of a run page URL, once the run has finished (polling the API like the page)."""
    run_id = int(location.rstrip("/").rsplit("/", 1)[1])
    for _ in range(600):
        run = client.get(f"/api/v1/analyses/{run_id}?result=false").json()
        if run["status"] in {"done", "failed"}:
            assert run["status"] == "done", run["message"]
            return run_id
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def _text(html: str) -> str:
    """Visible text with tags removed and whitespace collapsed (for readable assertions)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _start_access(client: TestClient, thresholds: str = "15, 30") -> int:
    response = client.post("/planning/access", data={
        "division_code": "140725000000", "road_network": "roads", "thresholds": thresholds,
        "surface_tier": "county"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return _wait(client, response.headers["location"])


def test_access_run_page_then_languages_scopes_and_missing_things(client, session):
    form = client.get("/planning")
    assert form.status_code == 200
    assert "测试县" in form.text and 'value="roads"' in form.text
    run_id = _start_access(client)

    page = client.get(f"/planning/runs/{run_id}?tier=county&threshold=15")
    assert page.status_code == 200
    text = _text(page.text)
    # County hospital H1 stands in the community at (113.1, 37.9): the community (4,000) and
    # 东村 (1,000, on a 1.4 km spur) are within 15 min; 西村 needs ~18 min (4.4 km of main road
    # + 5.6 km of spur at 25 km/h) and 南村 ~31 min: 5,000 of 10,000 within 15, 6,000 within 30.
    tile = text[text.index("县级医院"):]
    assert re.search(r"≤ 15 分钟 50\.0 % 5,000 人 ≤ 30 分钟 60\.0 % 6,000 人", tile), tile[:300]
    # by township: 甲镇 5,000 of 6,000 within 15 min, 乙乡 none of its 4,000
    table = page.text[page.text.index('class="grid coverage-table"'):]
    rows = {m.group(1): _text(m.group(2)) for m in re.finditer(
        r'<tr><td><a href="/divisions/\d+">([^<]+)</a></td>(.*?)</tr>', table, re.S)}
    assert rows["甲镇"].split()[:3] == ["6,000", "83.3", "%"]
    assert rows["乙乡"].split()[:3] == ["4,000", "0.0", "%"]
    unreached = _text(page.text[page.text.index('class="grid compact unreached-table"'):])
    assert "西村" in unreached and "南村" in unreached and "东村" not in unreached
    # at 30 min only 南村 is left
    page30 = client.get(f"/planning/runs/{run_id}?tier=county&threshold=30")
    unreached30 = _text(page30.text[page30.text.index('unreached-table'):])
    assert "南村" in unreached30 and "西村" not in unreached30
    # the surface sent to the chart is the run's surface, with the county hospital on it
    surface = json.loads(re.search(r'<script type="application/json" id="surface-data">(.*?)'
                                   r'</script>', page.text, re.S).group(1))
    stored = client.get(f"/api/v1/analyses/{run_id}").json()["result"]["surface"]
    assert surface["minutes"] == stored["minutes"] and surface["lon"] == stored["lon"]
    assert surface["sites"]["text"] == ["县人民医院"]
    assert surface["thresholds"] == [15, 30]
    # downloads
    for table_name in ("villages", "coverage"):
        href = f"/api/v1/analyses/{run_id}/download/{table_name}.csv"
        assert href in page.text
        assert client.get(href).status_code == 200
    # the run is listed on the form page
    assert f'href="/planning/runs/{run_id}"' in client.get("/planning").text

    # runs still going or failed
    queued = AnalysisRun(kind="access", division_code="140725000000",
                         params={"road_network": "roads"}, status="running", progress=0.25,
                         message="travel time to every tier and centre", created_by="planner")
    failed = AnalysisRun(kind="optimise", division_code="140725000000",
                         params={"road_network": "roads"}, status="failed",
                         message="road_network: road network no longer exists",
                         created_by="planner")
    session.add_all([queued, failed])
    session.commit()
    page = client.get(f"/planning/runs/{queued.id}")
    assert 'id="run-progress"' in page.text and 'style="width: 25%"' in page.text
    assert 'data-run-id="%d"' % queued.id in page.text
    page = client.get(f"/planning/runs/{failed.id}")
    assert 'id="run-failed"' in page.text and "road network no longer exists" in page.text
    # a run that has not finished cannot become a scenario
    refused = client.post(f"/planning/runs/{queued.id}/scenario", data={"name": "x"})
    assert refused.status_code == 409
    assert client.get("/api/v1/scenarios").json()["total"] == 0

    # English, missing things, other users
    assert client.get("/planning?lang=en").text.count("Access to care") >= 1
    english = client.get(f"/planning/runs/{run_id}")
    assert "Coverage by township" in english.text
    client.get("/planning?lang=zh-CN")
    assert client.get("/planning/runs/99999").status_code == 404
    assert client.get("/planning/scenarios/nope").status_code == 404
    many = client.get("/planning/comparison", params={"names": ["a", "b", "c", "d"]})
    assert many.status_code == 200
    assert "未包括：d" in many.text and "没有找到方案“a”" in many.text
    assert client.get("/planning/assets/planning.js").status_code == 200
    assert client.get("/planning/assets/secret.py").status_code == 404
    client.cookies.clear()
    assert client.get("/planning", follow_redirects=False).status_code == 303
    _login(client, "doctor")
    page = client.get(f"/planning/runs/{run_id}")
    assert page.status_code == 404  # outside the village doctor's scope


def test_optimise_save_as_scenario_and_compare(client, session):
    import_rows(session, "facilities", [
        {"code": "T2", "name": NAME_T2, "type": "township_health_centre",
         "division_code": "140725200", "lon": "113.3", "lat": "37.9"}], actor=SYSTEM)
    session.commit()
    assert client.get("/planning/optimise").status_code == 200
    response = client.post("/planning/optimise", data={
        "division_code": "140725000000", "road_network": "roads", "model": "mclp",
        "tier": "county", "threshold": "15", "new_sites": "1",
        "candidates": "township_centres", "time_limit": "10"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    run_id = _wait(client, response.headers["location"])
    page = client.get(f"/planning/runs/{run_id}")
    text = _text(page.text)
    # T1 stands beside the county hospital and adds nothing; T2 brings 南村 (4,000, on a
    # 5.6 km spur ≈ 13 min) within 15 min: 9,000 of 10,000 covered.
    assert "覆盖 9,000 人（90.0 %）" in text
    chosen = _text(page.text[page.text.index('id="chosen-sites"'):])
    assert NAME_T2 in chosen and "甲镇卫生院" not in chosen and "乙乡" in chosen

    saved = client.post(f"/planning/runs/{run_id}/scenario",
                        data={"name": "升级乙乡", "upgrade_to": "county_sub_centre"},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert unquote(saved.headers["location"]).startswith("/planning/scenarios/升级乙乡")
    scenario_page = client.get(saved.headers["location"])
    assert scenario_page.status_code == 200
    matrix = _text(scenario_page.text[scenario_page.text.index("matrix-table"):])
    # county tier within 15 min: 5,000 → 9,000 (+4,000)
    assert re.search(r"县级医院[^>]*? 5,000 → 9,000 \+4,000", matrix), matrix[:400]
    moved = _text(scenario_page.text[scenario_page.text.index("moved-table"):])
    assert "南村" in moved and "西村" not in moved
    changes = _text(scenario_page.text[scenario_page.text.index("changes-table"):])
    assert NAME_T2 in changes and "县域医疗卫生次中心" in changes

    # the same name again is refused with a message, nothing is written
    again = client.post(f"/planning/runs/{run_id}/scenario", data={"name": "升级乙乡"})
    assert again.status_code == 409 and "升级乙乡" in again.text
    assert [s["name"] for s in client.get("/api/v1/scenarios").json()["items"]] == ["升级乙乡"]

    listing = client.get("/planning/scenarios")
    assert "升级乙乡" in listing.text
    comparison = client.get("/planning/comparison", params={"names": ["升级乙乡"]})
    assert comparison.status_code == 200
    assert 'class="num better"' in comparison.text
    assert "format=xlsx" in comparison.text and "format=html" in comparison.text
    export = re.search(r'href="(/api/v1/scenario-comparison\?[^"]+format=xlsx)"',
                       comparison.text).group(1)
    assert client.get(export.replace("&amp;", "&")).status_code == 200

    evaluated = client.post(f"/planning/scenarios/{quote('升级乙乡', safe='')}/evaluate",
                            data={"thresholds": "20"}, follow_redirects=False)
    assert evaluated.status_code == 303
    again = client.get(evaluated.headers["location"])
    assert "≤ 20 分钟覆盖人口" in again.text

    deleted = client.post(f"/planning/scenarios/{quote('升级乙乡', safe='')}/delete",
                          follow_redirects=False)
    assert deleted.status_code == 303
    assert client.get("/api/v1/scenarios").json()["total"] == 0


def test_new_sites_from_villages_and_by_hand(client, session):
    response = client.post("/planning/optimise", data={
        "division_code": "140725000000", "road_network": "roads", "model": "mclp",
        "tier": "county", "threshold": "15", "new_sites": "1", "candidates": "villages"},
        follow_redirects=False)
    assert response.status_code == 303, response.text
    run_id = _wait(client, response.headers["location"])
    result = client.get(f"/api/v1/analyses/{run_id}").json()["result"]
    # One new site within 15 min of the most people: 南村 itself (4,000; 西村 has 1,000).
    assert [s["code"] for s in result["new_sites"]] == ["NEW140725200201"]
    assert result["result"]["objective"] == 9000
    page = client.get(f"/planning/runs/{run_id}")
    assert "新建站点" in page.text and "南村" in page.text
    saved = client.post(f"/planning/runs/{run_id}/scenario",
                        data={"name": "南村新建", "upgrade_to": "county_sub_centre"},
                        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    scenario = session.scalar(select(Scenario).where(Scenario.name == "南村新建"))
    assert scenario.changes == [{"action": "add", "code": "NEW140725200201", "name": "南村",
                                 "type": "county_sub_centre", "lon": 113.3, "lat": 37.85}]
    body = client.get(saved.headers["location"]).text
    assert re.search(r"5,000 → 9,000", _text(body[body.index("matrix-table"):]))

    # the same kind of change by hand, with a closure and a faster main road
    form = client.get("/planning/new-scenario")
    assert form.status_code == 200 and 'value="ref:MAIN"' in form.text
    bad = client.post("/planning/new-scenario", data={
        "division_code": "140725000000", "road_network": "roads", "name": "手工方案",
        "add_name_0": "乙乡新院", "add_type_0": "no_such_type", "add_lon_0": "113.3",
        "add_lat_0": "x", "road_key_0": "ref:MAIN", "road_speed_0": "fast"})
    assert bad.status_code == 422
    problems = _text(bad.text[bad.text.index("problems"):])
    assert "road_speed_0" in problems
    assert "新增机构第 1 行: type" in problems and "新增机构第 1 行: lat" in problems
    made = client.post("/planning/new-scenario", data={
        "division_code": "140725000000", "road_network": "roads", "name": "手工方案",
        "add_name_0": "乙乡新院", "add_type_0": "township_health_centre",
        "add_lon_0": "113.3", "add_lat_0": "37.9", "close_codes": ["V2"],
        "road_key_0": "ref:MAIN", "road_speed_0": "80"}, follow_redirects=False)
    assert made.status_code == 303, made.text
    session.rollback()  # a fresh snapshot of what the app wrote
    scenario = session.scalar(select(Scenario).where(Scenario.name == "手工方案"))
    actions = [(c["action"], c.get("code") or c.get("road_id")) for c in scenario.changes]
    assert actions[0] == ("close", "V2") and actions[2] == ("road_speed", "main")
    assert actions[1][0] == "add" and scenario.changes[1]["lon"] == 113.3
    page = _text(client.get(made.headers["location"]).text)
    # 南村 gains a township centre within 15 min but loses its village clinic: mixed
    assert "有增有减" in page and "县道 MAIN #main 60 → 80 km/h" in page


def test_bad_parameters_and_sites_are_named_then_sites_used(client, session):
    response = client.post("/planning/access", data={
        "division_code": "140725000000", "road_network": "roads", "thresholds": "15, abc"})
    assert response.status_code == 422
    assert "thresholds" in response.text
    response = client.post("/planning/access", data={
        "division_code": "140725000000", "road_network": "nope", "thresholds": "15"})
    assert response.status_code == 422 and "road_network" in response.text
    response = client.post("/planning/optimise", data={
        "division_code": "140725000000", "road_network": "roads", "model": "mclp",
        "tier": "county", "threshold": "-5", "new_sites": "x", "candidates": "township_centres"})
    assert response.status_code == 422
    assert "threshold" in response.text and "new_sites" in response.text
    bad = ("编码,名称,经度,纬度\n"
           "S1,南站,113.3,37.9\n"
           "S1,重复,113.2,37.9\n"
           "H1,占用,113.2,37.9\n"
           "S4,颠倒,37.9,113.2\n"
           "S5,县外,112.0,37.9\n").encode("gb18030")
    response = client.post("/planning/optimise", data={
        "division_code": "140725000000", "road_network": "roads", "model": "mclp",
        "tier": "county", "threshold": "15", "new_sites": "1", "candidates": "sites"},
        files={"sites_file": ("sites.csv", bad, "text/csv")})
    assert response.status_code == 422
    problems = _text(response.text[response.text.index("problems"):])
    # file lines: header is line 1, so the second S1 is line 3, H1 line 4, S4 line 5
    assert re.search(r"3 sites_file: code .*appears twice", problems)
    assert re.search(r"4 sites_file: code .*existing facility", problems)
    assert re.search(r"5 sites_file: lat ", problems)
    assert re.search(r"6 sites_file: lon .*outside 测试县", problems)
    # the API checks sites the same way (row = position in the list)
    api = client.post("/api/v1/analyses", json={
        "kind": "optimise", "division_code": "140725", "params": {
            "road_network": "roads", "candidate_set": "sites",
            "sites": [{"code": "S9", "lon": 113.2, "lat": 37.9}, {"code": "S9", "lon": "x"}]}})
    assert api.status_code == 422
    assert {(p["field"], p["row"]) for p in api.json()["detail"]} == {
        ("code", 2), ("lon", 2), ("lat", 2)}
    assert session.scalars(select(AnalysisRun)).all() == []

    good = ("code,name,lon,lat\nS1,南站,113.3,37.9\nS2,西站,113.05,37.9\n").encode()
    response = client.post("/planning/optimise", data={
        "division_code": "140725000000", "road_network": "roads", "model": "mclp",
        "tier": "county", "threshold": "15", "new_sites": "1", "candidates": "sites"},
        files={"sites_file": ("sites.csv", good, "text/csv")}, follow_redirects=False)
    assert response.status_code == 303, response.text
    run_id = _wait(client, response.headers["location"])
    result = client.get(f"/api/v1/analyses/{run_id}").json()["result"]
    # S1 on the main road above 南村 reaches it in ~13 min (4,000); S2 would bring 西村 (1,000).
    assert [s["code"] for s in result["new_sites"]] == ["S1"]
    assert result["result"]["objective"] == 9000

    # a budget instead of a count: S1 costs 5, S2 (西村) 1, S3 (on 南村's spur) 4. With 4 only
    # S3 or S2 fit: S3 (4,000 people); with 5, S2 + S3 beat S1 alone: everybody is covered.
    costly = ("code,name,lon,lat,cost\nS1,南站,113.3,37.9,5\nS2,西站,113.05,37.9,1\n"
              "S3,南村口,113.3,37.88,4\n").encode()
    form = {"division_code": "140725000000", "road_network": "roads", "model": "mclp",
            "tier": "county", "threshold": "15", "new_sites": "1", "candidates": "sites"}
    for budget, chosen, covered in (("4", {"S3"}, 9000), ("5", {"S2", "S3"}, 10000)):
        response = client.post("/planning/optimise", data={**form, "budget": budget},
                               files={"sites_file": ("sites.csv", costly, "text/csv")},
                               follow_redirects=False)
        assert response.status_code == 303, response.text
        run_id = _wait(client, response.headers["location"])
        result = client.get(f"/api/v1/analyses/{run_id}").json()["result"]
        assert {s["code"] for s in result["new_sites"]} == chosen
        assert result["result"]["objective"] == covered
    assert f"已用 5.0 / 预算 {5:.1f}" in client.get(f"/planning/runs/{run_id}").text
    refused = client.post("/planning/optimise", data={**form, "budget": "5", "model": "pmedian"},
                          files={"sites_file": ("sites.csv", good, "text/csv")})
    assert refused.status_code == 422
    text = _text(refused.text[refused.text.index("problems"):])
    assert "a budget applies to the MCLP model" in text
    assert re.search(r"2 sites_file: cost .*needs a cost", text)
    assert re.search(r"3 sites_file: cost .*needs a cost", text)


def test_two_tier_upgrades_with_new_clinics_saved_as_scenario(client, session):
    import_rows(session, "facilities", [
        {"code": "T2", "name": NAME_T2, "type": "township_health_centre",
         "division_code": "140725200", "lon": "113.3", "lat": "37.9"}], actor=SYSTEM)
    session.commit()
    form_page = client.get("/planning/optimise")
    assert 'value="two-tier"' in form_page.text and "两级同时选址" in form_page.text
    assert 'name="lower_threshold"' in form_page.text
    form = {"division_code": "140725000000", "road_network": "roads", "model": "two-tier",
            "tier": "county", "threshold": "15", "new_sites": "1", "lower_threshold": "15",
            "candidates": "township_centres", "time_limit": "10"}
    response = client.post("/planning/optimise", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    run_id = _wait(client, response.headers["location"])
    result = client.get(f"/api/v1/analyses/{run_id}").json()["result"]
    # Upper tier as in the MCLP test: T2 brings 南村 within 15 min of a county-level site,
    # 9,000 of 10,000. Lower tier: the village clinics V1 (东村) and V2 (南村) serve 东村, 南村
    # and 甲镇社区 (1.4 km spur, ~3 min); 西村 is ~21 min from V1 (5.6 km of spur + 4.4 km of
    # main road + 1.4 km of spur), so it gets the one new clinic, at its own place.
    assert result["result"]["model"] == "two-tier" and result["result"]["status"] == "optimal"
    assert result["result"]["objective"] == 9000
    assert [s["code"] for s in result["new_sites"]] == ["T2"]
    assert result["new_clinics"] == [{"code": "NEW140725100202", "name": "西村",
                                      "lon": 113.05, "lat": 37.85, "new": True}]
    page = client.get(f"/planning/runs/{run_id}")
    text = _text(page.text)
    assert "两级同时选址 #" in text and "覆盖 9,000 人（90.0 %）" in text
    assert "现有 1 + 升级 1 · 新建村卫生室 1" in text
    chosen = _text(page.text[page.text.index('id="chosen-sites"'):page.text.index("</table>")])
    assert NAME_T2 in chosen and "西村" in chosen and "新建村卫生室" in chosen
    assert page.text.count('class="site-new-clinic"') == 1
    assert page.text.count('class="site-new"') == 1
    assert page.text.count('class="clinic-existing"') == 2  # V1 and V2 stay open
    assert 'value="两级同时选址 县级医院（含县域医疗次中心） +1' in page.text
    listing = _text(client.get("/planning/optimise").text)
    assert "两级同时选址 · 县级医院（含县域医疗次中心） · +1 · ≤15 分钟 · 村卫生室 ≤15 分钟" \
        in listing
    assert "Two tiers at once" in client.get(f"/planning/runs/{run_id}?lang=en").text
    client.get("/planning?lang=zh-CN")

    saved = client.post(f"/planning/runs/{run_id}/scenario",
                        data={"name": "两级方案", "upgrade_to": "county_sub_centre"},
                        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    scenario = session.scalar(select(Scenario).where(Scenario.name == "两级方案"))
    assert scenario.source == "optimisation:two-tier"
    assert scenario.changes == [
        {"action": "upgrade", "code": "T2", "type": "county_sub_centre"},
        {"action": "add", "code": "NEW140725100202", "name": "西村", "type": "village_clinic",
         "lon": 113.05, "lat": 37.85}]
    body = client.get(saved.headers["location"]).text
    matrix = _text(body[body.index("matrix-table"):])
    # county tier within 15 min 5,000 → 9,000; village tier within 15 min 9,000 → 10,000
    assert re.search(r"县级医院[^>]*? 5,000 → 9,000 \+4,000", matrix), matrix[:600]
    assert re.search(r"村级[^>]*? 9,000 → 10,000 \+1,000", matrix), matrix[:600]

    # refused before a run starts, naming the field; a clinic limit that cannot serve every
    # village makes the run fail with the reason
    for bad, field in (({"candidates": "villages"}, "candidate_set"), ({"tier": "village"}, "tier"),
                       ({"new_clinics": "-1"}, "new_clinics"),
                       ({"lower_threshold": "0"}, "lower_threshold")):
        response = client.post("/planning/optimise", data={**form, **bad})
        assert response.status_code == 422, bad
        assert field in _text(response.text[response.text.index("problems"):])
    response = client.post("/planning/optimise", data={**form, "new_clinics": "0"},
                           follow_redirects=False)
    assert response.status_code == 303
    failed_id = int(response.headers["location"].rsplit("/", 1)[1])
    for _ in range(600):
        run = client.get(f"/api/v1/analyses/{failed_id}?result=false").json()
        if run["status"] in {"done", "failed"}:
            break
        time.sleep(0.05)
    assert run["status"] == "failed"
    failed = client.get(f"/planning/runs/{failed_id}")
    assert 'id="run-failed"' in failed.text
    assert "new_clinics" in failed.text
    assert "with at most 0 new village clinics, not every village is within 15 minutes" \
        in failed.text
