"""``tiercare maternal alerts`` and ``tiercare maternal where-to-deliver`` on a SQLite database:
the alert run at a given instant, exit code 2 on a bad instant, and the road-network path
giving other (hand-computable) times than the straight-line estimate."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from maternal_case_helpers import NOW, SECRET, load_maternal_county, woman
from typer.testing import CliRunner

from tiercare.cli import app
from tiercare.config import get_settings
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.maternal import service
from tiercare.maternal.schemas import PregnancyIn
from tiercare.registry.reference import seed_reference_data


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        seed_reference_data(session)
        session.commit()
        actors = load_maternal_county(session)
        service.register_pregnancy(session, actors["vdoc"], PregnancyIn(
            resident=woman(41), lmp=NOW.date() - dt.timedelta(days=70), screening={"age": 37}),
            secret=SECRET, now=NOW)
        session.commit()
    engine.dispose()
    monkeypatch.setenv("TIERCARE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_alert_run_and_bad_instant(database: str) -> None:
    runner = CliRunner()
    early = runner.invoke(app, ["maternal", "alerts", "--at", "2026-03-05T00:00:00Z"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["raised"] == 0
    late = runner.invoke(app, ["maternal", "alerts", "--at", "2026-03-20T00:00:00+08:00"])
    assert json.loads(late.stdout) == {"raised": 1, "resolved": 0, "escalated": 0, "open": 1}
    bad = runner.invoke(app, ["maternal", "alerts", "--at", "next tuesday"])
    assert bad.exit_code == 2


def test_where_to_deliver_by_road(database: str, tmp_path: Path) -> None:
    runner = CliRunner()
    straight = runner.invoke(app, ["maternal", "where-to-deliver"])
    assert straight.exit_code == 0, straight.output
    by_line = json.loads(straight.stdout)
    assert by_line["method"] == "straight_line"
    # red needs a tertiary hospital: X1 (38.2 N) is beyond 60 minutes of every village
    assert {g["village_code"] for g in by_line["villages_beyond"] if g["colour"] == "red"} == {
        "140725100001", "140725100201", "140725100202", "140725200201"}
    # a fast straight road from 东村 (113.11, 37.91) north to X1 (113.1, 38.2), 120 km/h
    roads = tmp_path / "roads.geojson"
    roads.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"speed_kmh": 120},
        "geometry": {"type": "LineString",
                     "coordinates": [[113.11, 37.91], [113.1, 38.2]]}}]}), encoding="utf-8")
    network = runner.invoke(app, ["maternal", "where-to-deliver", "--roads", str(roads),
                                  "--speed-field", "speed_kmh"])
    assert network.exit_code == 0, network.output
    by_road = json.loads(network.stdout)
    assert by_road["method"] == "network"
    red_beyond = {g["village_code"] for g in by_road["villages_beyond"] if g["colour"] == "red"}
    # 东村 lies on the road: about 32 km at 120 km/h ≈ 16 minutes, so it is no longer beyond
    assert "140725100201" not in red_beyond
