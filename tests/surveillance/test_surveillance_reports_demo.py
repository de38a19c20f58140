"""The demo's injected outbreaks are all found; quiet periods raise no alert (SQLite)."""

import importlib.util
import json
import statistics
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tiercare.auth.service import SYSTEM
from tiercare.cli import app as cli_app
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.indicators.analytics import analytics
from tiercare.indicators.demo import seed_demo_indicators
from tiercare.registry.models import Facility
from tiercare.registry.reference import seed_reference_data
from tiercare.surveillance.models import FeverReport, SurveillanceAlert
from tiercare.surveillance.reports import missing_reports

END = date(2026, 10, 31)
_HELPERS = Path(__file__).resolve().parents[1] / "registry" / "registry_helpers.py"


def _load_small_county(session):
    if "registry_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("registry_helpers", _HELPERS)
        module = importlib.util.module_from_spec(spec)
        sys.modules["registry_helpers"] = module
        spec.loader.exec_module(module)
    sys.modules["registry_helpers"].load_small_county(session)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    session = session_factory(engine)()
    seed_reference_data(session)
    _load_small_county(session)
    for facility in session.scalars(select(Facility)):
        if facility.code == "H1":
            facility.services = ["outpatient", "fever_clinic"]
        if facility.code == "T1":
            facility.services = ["outpatient", "fever_consulting_room"]
    session.commit()
    result = seed_demo_indicators(session, seed=11, end=END, outbreaks=4)
    session.commit()
    yield session, result, url
    session.close()
    engine.dispose()


def _window(outbreak):
    # C3 sums the last three days, so it may still alert two days after the outbreak ends
    start, end = date.fromisoformat(outbreak["start"]), date.fromisoformat(outbreak["end"])
    return start, end + timedelta(days=2)


def test_every_outbreak_found_and_no_false_alarm(demo):
    session, result, _ = demo
    assert len(result["outbreaks"]) == 4 and result["alerts"] > 0
    alerts = list(session.scalars(select(SurveillanceAlert)))
    for outbreak in result["outbreaks"]:
        first, last = _window(outbreak)
        found = {(a.level, a.measure) for a in alerts if first <= a.day <= last and (
            a.series_code in (outbreak["facility"], outbreak["county"]))}
        assert {("facility", "patients"), ("county", "patients")} <= found, outbreak
    for a in alerts:
        inside = any(_window(o)[0] <= a.day <= _window(o)[1] and a.series_code in (
            o["facility"], o["county"]) for o in result["outbreaks"])
        assert inside, f"false alarm {a.level} {a.series_code} {a.method} {a.day}"


def test_stored_alert_matches_hand_computed_c1(demo):
    session, result, _ = demo
    outbreak = result["outbreaks"][0]
    alert = session.scalar(select(SurveillanceAlert).where(
        SurveillanceAlert.level == "facility", SurveillanceAlert.method == "C1",
        SurveillanceAlert.measure == "patients",
        SurveillanceAlert.series_code == outbreak["facility"]).order_by(SurveillanceAlert.day))
    day = alert.day
    totals = dict(session.execute(
        select(FeverReport.report_date, func.sum(FeverReport.patients))
        .where(FeverReport.facility_code == outbreak["facility"],
               FeverReport.report_date >= day - timedelta(days=7),
               FeverReport.report_date <= day)
        .group_by(FeverReport.report_date)).all())
    baseline = [totals[day - timedelta(days=k)] for k in range(7, 0, -1)]
    mean, sd = statistics.mean(baseline), max(statistics.stdev(baseline), 1.0)
    assert alert.count == totals[day]
    assert alert.statistic == pytest.approx((totals[day] - mean) / sd)
    assert alert.statistic > 3 and alert.expected == pytest.approx(mean)
    assert [v for _, v in alert.series] == [*baseline, totals[day]]


def test_missing_reports_and_indicators_over_the_demo(demo):
    session, result, _ = demo
    reported = {(r.facility_code, r.report_date) for r in session.scalars(select(FeverReport))}
    gaps = [(code, END - timedelta(days=k)) for code in ("H1", "T1") for k in range(365)
            if (code, END - timedelta(days=k)) not in reported]
    assert len(gaps) == result["missing"]
    for code, day in gaps:
        assert code in {m["facility"] for m in missing_reports(session, SYSTEM, day=day)}
    values = {(v.indicator, v.period): v for v in analytics(
        session, SYSTEM, indicators=["primary_opd_share", "fever_report_completeness",
                                     "fever_positivity", "bed_occupancy"],
        units=["140725"], periods=["2026", "2025Q4", "2026Q3"])}
    assert values[("primary_opd_share", "2026")].status == "ok"
    assert values[("bed_occupancy", "2025Q4")].status == "ok"
    completeness = values[("fever_report_completeness", "2026Q3")]
    expected_days = 2 * 92
    in_q3 = sum(1 for _, d in gaps if date(2026, 7, 1) <= d <= date(2026, 9, 30))
    assert completeness.value == pytest.approx(100 * (expected_days - in_q3) / expected_days)
    assert 0 < values[("fever_positivity", "2026")].value < 100


def test_detect_cli_finds_nothing_new_and_refuses_bad_dates(demo):
    _, _, url = demo
    runner = CliRunner()
    run = runner.invoke(cli_app, ["surveillance", "detect", "--end", END.isoformat(), "--days",
                                  "60", "--db", url])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["created"] == 0
    bad = runner.invoke(cli_app, ["surveillance", "detect", "--end", "31/10/2026", "--db", url])
    assert bad.exit_code == 2
