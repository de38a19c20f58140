from contextlib import contextmanager

import pytest

from tiercare.auth.service import SYSTEM
from tiercare.errors import ConflictError, InputError
from tiercare.scenarios.service import (
    comparison_rows,
    create_scenario,
    evaluate,
    store_road_network,
)


def _line(road_id, coords, cls="county", speed=60):
    return {"type": "Feature", "properties": {"id": road_id, "class": cls, "speed_kmh": speed},
            "geometry": {"type": "LineString", "coordinates": coords}}


ROADS = {"type": "FeatureCollection", "features": [
    _line("main-w", [[113.0, 37.9], [113.05, 37.9], [113.1, 37.9]]),
    _line("main-e", [[113.1, 37.9], [113.3, 37.9], [113.4, 37.9]]),
    _line("east", [[113.1, 37.9], [113.11, 37.91]], "village", 25),
    _line("west", [[113.05, 37.9], [113.05, 37.85]], "village", 25),
    _line("south", [[113.3, 37.9], [113.3, 37.85]], "village", 25),
]}


@pytest.fixture
def county(small_county):
    store_road_network(small_county, SYSTEM, name="roads", division_code="140725",
                       geojson=ROADS)
    small_county.commit()
    return small_county


def test_new_health_centre_gains_and_closed_clinic_loses(county):
    scenario = create_scenario(county, SYSTEM, name="乙乡卫生院", division_code="140725",
                               road_network="roads", changes=[
                                   {"action": "add", "code": "T2", "name": "乙乡卫生院",
                                    "type": "township_health_centre", "lon": 113.3, "lat": 37.9,
                                    "physicians": 4},
                                   {"action": "close", "code": "V2"}])
    evaluation = evaluate(county, SYSTEM, scenario)
    villages = {v["code"]: v for v in evaluation.villages}
    south = villages["140725200201"]
    # 南村: township centre from ~21 min (0.2° east along a 60 km/h road + spur) to ~13 min.
    assert south["township_before"] > 15 >= south["township_after"]
    assert south["village_before"] < 1 and south["village_after"] > 15  # its clinic closed
    assert south["change"] == "mixed"
    base = evaluation.metrics["baseline"]["tiers"]["township"]
    after = evaluation.metrics["scenario"]["tiers"]["township"]
    assert after["facilities"] == base["facilities"] + 1
    assert after["covered"]["15"] == base["covered"]["15"] + 4000  # 南村's 4,000 residents
    assert after["mean_minutes"] < base["mean_minutes"]
    rows = comparison_rows([("乙乡卫生院", evaluation)])
    covered = next(r for r in rows if r["group"] == "township" and r["metric"] == "covered_15")
    assert covered["乙乡卫生院"] - covered["baseline"] == 4000


def test_faster_road_helps(county):
    scenario = create_scenario(county, SYSTEM, name="快速路", division_code="140725",
                               road_network="roads",
                               changes=[{"action": "road_speed", "road_id": "main-e",
                                         "speed_kmh": 120}])
    evaluation = evaluate(county, SYSTEM, scenario)
    south = next(v for v in evaluation.villages if v["code"] == "140725200201")
    assert south["county_after"] < south["county_before"]


def test_bad_changes_name_the_field(county):
    with pytest.raises(InputError) as caught:
        create_scenario(county, SYSTEM, name="bad", division_code="140725", road_network="roads",
                        changes=[{"action": "teleport"},
                                 {"action": "close", "code": "NOPE"},
                                 {"action": "add", "code": "H1", "type": "x", "lon": 500,
                                  "lat": 37.9},
                                 {"action": "road_speed", "road_id": "main-e", "speed_kmh": -5}])
    fields = {p.field for p in caught.value.problems}
    assert {"changes[0].action", "changes[1].code", "changes[2].code", "changes[2].type",
            "changes[2].lon", "changes[3].speed_kmh"} <= fields
    create_scenario(county, SYSTEM, name="ok", division_code="140725", road_network="roads",
                    changes=[])
    with pytest.raises(ConflictError):
        create_scenario(county, SYSTEM, name="ok", division_code="140725", road_network="roads",
                        changes=[])


@contextmanager
def _planner_client(db_url, county):
    """A test client of the web app and the bearer headers of a county planner."""
    from fastapi.testclient import TestClient

    from tiercare.auth.service import create_user
    from tiercare.config import Settings
    from tiercare.web.app import create_app

    create_user(county, username="planner", password="planner-pass", role="planner",
                division_code="140725")
    county.commit()
    app = create_app(Settings(database_url=db_url))
    try:
        with TestClient(app) as client:
            token = client.post("/api/v1/auth/token",
                                data={"username": "planner", "password": "planner-pass"}).json()
            yield app, client, {"Authorization": f"Bearer {token['access_token']}"}
    finally:
        app.state.engine.dispose()


def test_scenario_api_round_trip(db_url, county):
    with _planner_client(db_url, county) as (_app, client, headers):
        body = {"name": "新卫生院", "division_code": "140725", "road_network": "roads",
                "changes": [{"action": "add", "code": "T2", "name": "乙乡卫生院",
                             "type": "township_health_centre", "lon": 113.3, "lat": 37.9}]}
        assert client.post("/api/v1/scenarios", json=body, headers=headers).status_code == 201
        assert client.post("/api/v1/scenarios", json=body, headers=headers).status_code == 409
        bad = client.post("/api/v1/scenarios", headers=headers, json={
            **body, "name": "x", "changes": [{"action": "close", "code": "ZZ"}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "changes[0].code"
        evaluated = client.post("/api/v1/scenarios/新卫生院/evaluate", headers=headers).json()
        assert evaluated["evaluation"]["metrics"]["gains"] >= 1
        compared = client.get("/api/v1/scenario-comparison",
                              params={"names": "新卫生院"}, headers=headers).json()
        assert any(r["metric"] == "covered_15" for r in compared["rows"])
        page = client.get("/api/v1/scenario-comparison",
                          params={"names": "新卫生院", "format": "html"}, headers=headers)
        assert "方案比较" in page.text
        xlsx = client.get("/api/v1/scenario-comparison",
                          params={"names": "新卫生院", "format": "xlsx"}, headers=headers)
        assert xlsx.content[:2] == b"PK"


def test_listing_road_networks_reads_no_geojson(db_url, county):
    from sqlalchemy import event

    with _planner_client(db_url, county) as (app, client, headers):
        statements: list[str] = []

        def record(_conn, _cursor, sql, *_args):
            statements.append(sql)

        event.listen(app.state.engine, "before_cursor_execute", record)
        listed = client.get("/api/v1/road-networks", headers=headers)
        event.remove(app.state.engine, "before_cursor_execute", record)
        assert listed.status_code == 200
        assert listed.json() == {"total": 1, "offset": 0, "limit": 50, "items": [
            {"name": "roads", "division_code": "140725000000", "features": 5}]}
        assert any("road_networks" in sql for sql in statements)
        assert not any("geojson" in sql for sql in statements)
        stored = client.post("/api/v1/road-networks", headers=headers, json={
            "name": "roads", "division_code": "140725",
            "geojson": {**ROADS, "features": ROADS["features"][:3]}})
        assert stored.json() == {"name": "roads", "features": 3}
        listed = client.get("/api/v1/road-networks", headers=headers).json()
        assert listed["items"][0]["features"] == 3


def _token(client, username):
    response = client.post("/api/v1/auth/token",
                           data={"username": username, "password": f"{username}-pass"})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_lists_page_within_the_callers_scope(db_url, county):
    """Road networks and scenarios: total, offset and limit count only what the caller may
    see (the scope is filtered in SQL, before paging)."""
    from tiercare.auth.service import create_user

    for name, division in (("roads-a", "140725"), ("roads-yi", "140725200"),
                           ("roads-z", "140725")):
        store_road_network(county, SYSTEM, name=name, division_code=division, geojson=ROADS)
    for name, division in (("s1", "140725"), ("s-yi", "140725200"), ("s2", "140725"),
                           ("s3", "140725")):
        create_scenario(county, SYSTEM, name=name, division_code=division,
                        road_network="roads", changes=[])
    for username, division in (("yixiang", "140725200"), ("jiazhen", "140725100")):
        create_user(county, username=username, password=f"{username}-pass", role="planner",
                    division_code=division)
    county.commit()
    with _planner_client(db_url, county) as (_app, client, planner):
        networks = client.get("/api/v1/road-networks", headers=planner,
                              params={"offset": 1, "limit": 2}).json()
        assert (networks["total"], networks["offset"], networks["limit"]) == (4, 1, 2)
        assert [n["name"] for n in networks["items"]] == ["roads-a", "roads-yi"]
        scenarios = client.get("/api/v1/scenarios", headers=planner,
                               params={"offset": 1, "limit": 2}).json()
        assert (scenarios["total"], scenarios["offset"], scenarios["limit"]) == (4, 1, 2)
        assert [x["name"] for x in scenarios["items"]] == ["s2", "s-yi"]  # newest first
        assert client.get("/api/v1/scenarios", headers=planner).json()["limit"] == 50

        township = _token(client, "yixiang")
        for path, name in (("/api/v1/road-networks", "roads-yi"), ("/api/v1/scenarios", "s-yi")):
            page = client.get(path, headers=township).json()
            assert page["total"] == 1 and [x["name"] for x in page["items"]] == [name]
            assert client.get(path, headers=township,
                              params={"offset": 1}).json() == {"total": 1, "offset": 1,
                                                               "limit": 50, "items": []}
        other = _token(client, "jiazhen")
        for path in ("/api/v1/road-networks", "/api/v1/scenarios"):
            assert client.get(path, headers=other).json() == {"total": 0, "offset": 0,
                                                              "limit": 50, "items": []}
            too_big = client.get(path, headers=planner, params={"limit": 501})
            assert too_big.status_code == 422
            assert [p["field"] for p in too_big.json()["detail"]] == ["limit"]
            negative = client.get(path, headers=planner, params={"offset": -1})
            assert negative.status_code == 422
            assert [p["field"] for p in negative.json()["detail"]] == ["offset"]


def test_migration_back_fills_the_feature_count(db_url, county):
    from alembic import command
    from sqlalchemy import text

    from tiercare.db.engine import create_db_engine
    from tiercare.db.migrate import alembic_config, upgrade

    county.close()
    engine = create_db_engine(db_url)
    with engine.connect() as connection:
        config = alembic_config(db_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0501")
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text(
            "SELECT feature_count FROM road_networks WHERE name = 'roads'")).scalar_one() == 5
    engine.dispose()
