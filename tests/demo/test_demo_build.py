"""`tiercare demo` end to end: the figures of issue #2 on SQLite and on PostgreSQL."""

import json
import subprocess
import sys

from sqlalchemy import func, select

from tiercare.db.engine import create_db_engine, session_factory
from tiercare.demo.run import build_demo
from tiercare.registry.models import Facility


def test_demo_builds_the_county_with_exact_figures(db_url, tmp_path):
    result = build_demo(db_url, tmp_path / "out", reset=True, operations=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary == json.loads(json.dumps(result.summary, ensure_ascii=False))
    assert summary["population"] == 200_352
    assert summary["population_urban"] == 90_524
    assert summary["population_rural"] == 109_828
    assert summary["townships"] == 12
    assert summary["villages"] == 173
    assert summary["medical_group_members"] == 24
    assert summary["village_clinics"] == 153
    assert summary["village_doctors"] == 221
    assert summary["blank_spots"] == {
        "county_without_public_hospital": 0, "township_without_health_centre": 0,
        "village_without_clinic": 3, "clinic_without_qualified_doctor": 3, "exempt_villages": 2,
    }
    assert 2.0 < summary["supply"]["physicians_per_1000"] < 4.0
    access = summary["access"]
    assert access["population_total"] == 200_352
    county = access["tiers"]["county"]["covered"]
    assert county["15"] <= county["30"] <= county["60"] <= 200_352
    # The optimiser's covered population is what the scenario evaluator finds for its sites.
    optimisation = summary["optimisation"]
    assert optimisation["status"] == "optimal" and len(optimisation["new_sites"]) == 2
    optimised = summary["scenarios"]["两个县域医疗次中心（优化）"]
    assert optimised["county_covered_30"] == optimisation["objective"]
    assert optimised["county_covered_30"] >= optimised["baseline_county_covered_30"]
    assert optimised["losses"] == 0
    for name in ("blank_spots.csv", "supply.xlsx", "access_villages.csv", "access_summary.json",
                 "optimisation.json", "scenario_comparison.html", "scenario_comparison.xlsx"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    # Building again without reset changes nothing (imports are upserts).
    build_demo(db_url, tmp_path / "out2", reset=False, operations=False)
    engine = create_db_engine(db_url)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Facility)) == 188
    engine.dispose()


def test_demo_cli_with_operational_history(tmp_path):
    """The full `tiercare demo` (what `make demo` runs), operational history included."""
    run = subprocess.run(
        [sys.executable, "-m", "tiercare", "demo", "--db", f"sqlite:///{tmp_path / 'd.db'}",
         "--out", str(tmp_path / "out"), "--reset"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "summary.json" in run.stdout and "admin / tiercare-demo" in run.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["operations"]) == {"referral", "maternal", "immunization", "indicators"}
    assert all(summary["operations"][module] for module in summary["operations"])
