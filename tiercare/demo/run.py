"""``tiercare demo``: build the demo county into a database and write every report to ``out/``.

The generator writes ordinary import files; this module loads them through the same importers a
health bureau uses, then runs the registry reports and the planning analyses, and writes
``summary.json`` with the headline figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tiercare.auth.models import User
from tiercare.auth.service import SYSTEM, create_user
from tiercare.db.base import Base
from tiercare.db.engine import create_db_engine, session_factory
from tiercare.db.migrate import upgrade
from tiercare.demo.generator import generate_demo_files
from tiercare.registry.importing import import_file
from tiercare.registry.models import (
    Division,
    Facility,
    MedicalGroup,
    MedicalGroupMember,
    StaffMember,
)
from tiercare.registry.reference import seed_reference_data
from tiercare.registry.report_files import write_registry_reports

DEMO_COUNTY = "140725000000"
DEMO_USERS = (
    # username, password, role, division, facility, full name
    ("admin", "tiercare-demo", "admin", None, None, "系统管理员"),
    ("planner", "tiercare-demo", "planner", "140725", None, "县卫健委规划科"),
)
DEMO_SCENARIOS = ("两个县域医疗次中心（优化）", "县道提速")
IMPORT_ORDER = (
    ("divisions", "divisions.csv"),
    ("boundaries", "boundaries.geojson"),
    ("facilities", "facilities.csv"),
    ("staff", "staff.csv"),
    ("medical_groups", "medical_groups.csv"),
    ("group_members", "group_members.csv"),
)


@dataclass(frozen=True)
class DemoResult:
    """What ``tiercare demo`` produced."""

    summary: dict[str, Any]
    files: list[Path]


def _reset(url: str) -> None:
    """Drop every TierCare table (and Alembic's bookkeeping) from the demo database."""
    import tiercare.db.models  # noqa: F401  (registers every table)

    engine = create_db_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


def _count(session: Session, model: Any, *conditions: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def build_demo(url: str, out: Path, *, seed: int = 140725, reset: bool = True,
               operations: bool = True, console: Console | None = None) -> DemoResult:
    """Generate, import and analyse the demo county; write reports and ``summary.json``.

    With ``operations`` the county also gets generated operational history (referrals and
    appointments, pregnancies, children and vaccinations, monthly and fever reports) through
    each module's own services, so every page and indicator shows data.
    """
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    inputs = out / "demo_input"
    files: list[Path] = []
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console, transient=False)
    with progress:
        step = progress.add_task("generating the demo county files", total=None)
        generate_demo_files(inputs, seed=seed)
        progress.update(step, description="generated demo county files", completed=1, total=1)

        step = progress.add_task("migrating the database", total=None)
        if reset:
            _reset(url)
        engine = create_db_engine(url)
        upgrade(engine)
        sessions = session_factory(engine)
        progress.update(step, description="database ready", completed=1, total=1)

        with sessions() as session:
            seed_reference_data(session)
            step = progress.add_task("importing", total=len(IMPORT_ORDER))
            for kind, name in IMPORT_ORDER:
                progress.update(step, description=f"importing {name}")
                import_file(session, kind, inputs / name, actor=SYSTEM)
                progress.advance(step)
            for username, password, role, division, facility, full_name in DEMO_USERS:
                if session.scalar(select(User).where(User.username == username)) is None:
                    create_user(session, username=username, password=password, role=role,
                                division_code=division, facility_code=facility,
                                full_name=full_name)
            session.commit()
            progress.update(step, description="imported the registry")

            step = progress.add_task("registry reports", total=None)
            reports = write_registry_reports(session, SYSTEM, out, root_code=DEMO_COUNTY)
            files.extend(Path(p) for p in reports["files"])
            progress.update(step, description="registry reports written", completed=1, total=1)

            step = progress.add_task("travel time and coverage", total=None)
            access = _run_access(session, inputs / "roads.geojson", out)
            files.extend(access.pop("files"))
            progress.update(step, description="travel time and coverage written", completed=1,
                            total=1)

            step = progress.add_task("optimisation and scenarios", total=None)
            planning = _run_scenarios(session, inputs / "roads.geojson", out)
            files.extend(planning.pop("files"))
            session.commit()
            progress.update(step, description="optimisation and scenario comparison written",
                            completed=1, total=1)

            summary = _summary(session, reports, access)
            summary["optimisation"] = planning["optimisation"]
            summary["scenarios"] = planning["scenarios"]
            if operations:
                summary["operations"] = _run_operations(session, seed, out, progress)
        engine.dispose()
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    files.append(summary_path)
    return DemoResult(summary=summary, files=files)


def _run_access(session: Session, roads_path: Path, out: Path) -> dict[str, Any]:
    from tiercare.planning.network import build_network
    from tiercare.planning.roads import read_roads
    from tiercare.registry.accessibility import access_report

    roads = read_roads(roads_path, class_field="class", speed_field="speed_kmh")
    network = build_network(roads, mode="driving")
    report = access_report(session, SYSTEM, network, root_prefix=DEMO_COUNTY[:6])
    villages_path = out / "access_villages.csv"
    coverage_path = out / "access_coverage.csv"
    report["villages"].to_csv(villages_path, index=False, encoding="utf-8-sig")
    report["coverage"].to_csv(coverage_path, index_label="division", encoding="utf-8-sig")
    access_path = out / "access_summary.json"
    access_path.write_text(json.dumps(report["summary"], ensure_ascii=False, indent=2),
                           encoding="utf-8")
    return {**report["summary"], "files": [villages_path, coverage_path, access_path]}


def _run_scenarios(session: Session, roads_path: Path, out: Path) -> dict[str, Any]:
    """Store the roads, optimise county sub-centres, and compare two scenarios."""
    from tiercare.errors import NotFoundError
    from tiercare.scenarios.optimise import optimise_upgrades, scenario_from_optimisation
    from tiercare.scenarios.report import write_comparison
    from tiercare.scenarios.service import (
        create_scenario,
        delete_scenario,
        evaluate,
        network_from_layer,
        store_road_network,
    )

    for name in DEMO_SCENARIOS:
        try:
            delete_scenario(session, SYSTEM, name)
        except NotFoundError:
            pass

    layer = json.loads(roads_path.read_text(encoding="utf-8"))
    roads = store_road_network(session, SYSTEM, name="demo-roads", division_code=DEMO_COUNTY,
                               geojson=layer)
    network = network_from_layer(roads.geojson, class_field=roads.class_field,
                                 speed_field=roads.speed_field)
    optimisation = optimise_upgrades(session, SYSTEM, network, division_code=DEMO_COUNTY,
                                     model="mclp", threshold_min=30, new_sites=2)
    optimised = scenario_from_optimisation(session, SYSTEM, optimisation,
                                           name=DEMO_SCENARIOS[0],
                                           division_code=DEMO_COUNTY, road_network=roads.name)
    slowest = max(layer["features"], key=lambda f: f["properties"].get("speed_kmh") or 0)
    manual = create_scenario(
        session, SYSTEM, name=DEMO_SCENARIOS[1], division_code=DEMO_COUNTY, road_network=roads.name,
        description="All county roads upgraded to 80 km/h",
        changes=[{"action": "road_speed", "road_id": f["properties"]["id"], "speed_kmh": 80}
                 for f in layer["features"] if f["properties"].get("class") == "county"]
        or [{"action": "road_speed", "road_id": slowest["properties"]["id"], "speed_kmh": 80}])
    evaluations = [(s.name, evaluate(session, SYSTEM, s)) for s in (optimised, manual)]
    optimisation_path = out / "optimisation.json"
    optimisation_path.write_text(json.dumps(optimisation, ensure_ascii=False, indent=2),
                                 encoding="utf-8")
    html_path = write_comparison(evaluations, out / "scenario_comparison.html")
    xlsx_path = write_comparison(evaluations, out / "scenario_comparison.xlsx")
    return {
        "optimisation": {k: optimisation["result"][k] for k in
                         ("model", "objective", "bound", "gap", "status", "seconds")}
        | {"new_sites": optimisation["new_sites"]},
        "scenarios": {name: {"gains": ev.metrics["gains"], "losses": ev.metrics["losses"],
                             "county_covered_30": ev.metrics["scenario"]["tiers"]["county"]
                             .get("covered", {}).get("30"),
                             "baseline_county_covered_30": ev.metrics["baseline"]["tiers"]
                             ["county"].get("covered", {}).get("30")}
                      for name, ev in evaluations},
        "files": [optimisation_path, html_path, xlsx_path],
    }


OPERATIONS = (
    # (label, module, seed function): order matters — residents first, indicators last.
    ("referrals and appointments", "tiercare.referral.demo", "seed_demo_referral"),
    ("pregnancies", "tiercare.maternal.demo", "seed_demo_maternal"),
    ("children and vaccinations", "tiercare.immunization.demo", "seed_demo_immunization"),
    ("monthly and fever reports", "tiercare.indicators.demo", "seed_demo_indicators"),
)


def _run_operations(session: Session, seed: int, out: Path,
                    progress: Progress) -> dict[str, Any]:
    """Seed each module's generated history and the latest access coverage for indicators."""
    import importlib

    import pandas as pd

    from tiercare.indicators.facts import store_access_coverage

    coverage = pd.read_csv(out / "access_coverage.csv", dtype={"division": str})
    store_access_coverage(session, coverage, run_label="demo")
    session.commit()
    counts: dict[str, Any] = {}
    for label, module, function in OPERATIONS:
        step = progress.add_task(f"generating {label}", total=None)
        seeder = getattr(importlib.import_module(module), function)
        result = seeder(session, seed=seed)
        session.commit()
        counts[module.split(".")[1]] = {k: v for k, v in result.items()
                                        if isinstance(v, int | float | str)}
        progress.update(step, description=f"generated {label}", completed=1, total=1)
    return counts


def _summary(session: Session, reports: dict[str, Any], access: dict[str, Any]) -> dict[str, Any]:
    county = session.scalar(select(Division).where(Division.code == DEMO_COUNTY))
    group = session.scalar(select(MedicalGroup).where(MedicalGroup.division_id == county.id))
    members = _count(session, MedicalGroupMember, MedicalGroupMember.group_id == group.id) \
        if group else 0
    supply = reports["supply"][0] if reports["supply"] else {}
    return {
        "generated": True,
        "note": "Generated demo county (示范县), calibrated on public figures of Shouyang county, "
                "Shanxi. Not real data.",
        "county": {"code": county.code, "name": county.name},
        "population": county.population,
        "population_urban": county.population_urban,
        "population_rural": county.population_rural,
        "townships": _count(session, Division, Division.level == "township",
                            Division.code.like(county.prefix + "%")),
        "villages": _count(session, Division, Division.level == "village",
                           Division.code.like(county.prefix + "%")),
        "medical_group": group.name if group else None,
        "medical_group_members": members,
        "village_clinics": _count(session, Facility, Facility.type_code == "village_clinic",
                                  Facility.closed_on.is_(None)),
        "village_doctors": _count(session, StaffMember, StaffMember.cadre == "village_doctor",
                                  StaffMember.active.is_(True)),
        "blank_spots": reports["blank_spots"],
        "supply": {k: supply.get(k) for k in (
            "beds_per_1000", "physicians_per_1000", "nurses_per_1000", "gps_per_10000",
            "village_doctors_per_1000", "nurse_per_physician")},
        "norms": {n["indicator"]: n["target"] for n in reports["norms"]},
        "access": access,
    }
