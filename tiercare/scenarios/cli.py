"""``tiercare plan scenario``: create, evaluate, compare and optimise scenarios on the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tiercare.auth.service import SYSTEM
from tiercare.clisupport import DbOption, console, database_url, input_errors_exit_2, print_json
from tiercare.db.session import transaction
from tiercare.errors import InputError

app = typer.Typer(help="Scenarios: named changes to the network compared with the baseline.",
                  no_args_is_help=True)


def _json_file(path: Path, field: str) -> object:
    if not path.exists():
        raise InputError.single(f"file not found: {path}", field=field)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError.single(f"not valid JSON: {exc}", field=field) from exc


@app.command("roads")
def roads_command(
    file: Annotated[Path, typer.Argument(help="GeoJSON road lines with class and speed")],
    name: Annotated[str, typer.Option(help="Name to store the network under")],
    division: Annotated[str, typer.Option(help="Division code the roads cover")],
    class_field: Annotated[str, typer.Option(help="Road class attribute")] = "class",
    speed_field: Annotated[str, typer.Option(help="Speed (km/h) attribute")] = "speed_kmh",
    db: DbOption = None,
) -> None:
    """Store a road network that scenarios route on."""
    from tiercare.scenarios.service import store_road_network

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        layer = _json_file(file, "file")
        row = store_road_network(session, SYSTEM, name=name, division_code=division,
                                 geojson=layer, class_field=class_field,  # type: ignore[arg-type]
                                 speed_field=speed_field)
        count = len(row.geojson["features"])
    console.print(f"stored road network {name}: {count} features")


@app.command("create")
def create_command(
    name: Annotated[str, typer.Option(help="Scenario name")],
    division: Annotated[str, typer.Option(help="Division code (e.g. the county)")],
    roads: Annotated[str, typer.Option(help="Stored road network name")],
    changes: Annotated[Path, typer.Option(help="JSON list of changes (see docs/scenarios.md)")],
    description: Annotated[str, typer.Option(help="Free text")] = "",
    db: DbOption = None,
) -> None:
    """Create a scenario from a JSON list of changes (bad changes exit 2, naming the field)."""
    from tiercare.scenarios.service import create_scenario

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        data = _json_file(changes, "changes")
        if not isinstance(data, list):
            raise InputError.single("changes must be a JSON list", field="changes")
        create_scenario(session, SYSTEM, name=name, division_code=division, road_network=roads,
                        changes=data, description=description)
    console.print(f"created scenario {name} ({len(data)} changes)")


@app.command("evaluate")
def evaluate_command(
    name: Annotated[str, typer.Argument(help="Scenario name")],
    thresholds: Annotated[str, typer.Option(help="Minutes, comma-separated")] = "15,30,60",
    db: DbOption = None,
) -> None:
    """Evaluate a scenario against the baseline and print the headline changes."""
    from tiercare.scenarios.service import evaluate, get_scenario

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        try:
            values = tuple(float(t) for t in thresholds.split(","))
        except ValueError as exc:
            raise InputError.single("thresholds must be numbers", field="thresholds") from exc
        evaluation = evaluate(session, SYSTEM, get_scenario(session, SYSTEM, name),
                              thresholds=values)
        metrics = evaluation.metrics
    table = Table(title=f"{name}: coverage by tier")
    table.add_column("tier")
    for t in values:
        table.add_column(f"≤{t:g} min baseline", justify="right")
        table.add_column(f"≤{t:g} min scenario", justify="right")
    for tier, base in metrics["baseline"]["tiers"].items():
        after = metrics["scenario"]["tiers"].get(tier, {})
        cells = []
        for t in values:
            cells += [f"{base.get('covered', {}).get(f'{t:g}', 0):,.0f}",
                      f"{after.get('covered', {}).get(f'{t:g}', 0):,.0f}"]
        table.add_row(tier, *cells)
    console.print(table)
    console.print(f"villages gaining: {metrics['gains']}, losing: {metrics['losses']}")


@app.command("compare")
def compare_command(
    names: Annotated[list[str], typer.Argument(help="Scenario names")],
    out: Annotated[Path, typer.Option(help="Report file: .html or .xlsx")],
    db: DbOption = None,
) -> None:
    """Write a side-by-side comparison of scenarios with the baseline (HTML or Excel)."""
    from tiercare.scenarios.report import write_comparison
    from tiercare.scenarios.service import evaluate, get_scenario, latest_evaluation

    if out.suffix.lower() not in {".html", ".xlsx"}:
        with input_errors_exit_2():
            raise InputError.single("--out must end in .html or .xlsx", field="out")
    with input_errors_exit_2(), transaction(database_url(db)) as session:
        evaluations = []
        for name in names:
            scenario = get_scenario(session, SYSTEM, name)
            evaluations.append((name, latest_evaluation(session, scenario)
                                or evaluate(session, SYSTEM, scenario)))
        write_comparison(evaluations, out)
    console.print(f"wrote {out}")


@app.command("optimise")
def optimise_command(
    division: Annotated[str, typer.Option(help="Division code (e.g. the county)")],
    roads: Annotated[str, typer.Option(help="Stored road network name")],
    model: Annotated[str, typer.Option(help="lscp | mclp | pmedian | pcenter")] = "mclp",
    tier: Annotated[str, typer.Option(help="Tier to extend: village | township | county")]
    = "county",
    new_sites: Annotated[int, typer.Option(help="How many facilities to upgrade")] = 2,
    threshold: Annotated[float, typer.Option(help="Minutes (LSCP, MCLP)")] = 30.0,
    save_as: Annotated[str | None, typer.Option(help="Save the result as this scenario")] = None,
    upgrade_to: Annotated[str, typer.Option(help="Facility type of upgraded sites")]
    = "county_sub_centre",
    db: DbOption = None,
) -> None:
    """Choose township health centres to upgrade so the chosen tier best serves the villages.

    Existing facilities of the tier stay open; --new-sites more are chosen among the township
    centres, weighted by village population. --save-as stores the answer as a scenario.
    """
    from sqlalchemy import select

    from tiercare.scenarios.models import RoadNetwork
    from tiercare.scenarios.optimise import optimise_upgrades, scenario_from_optimisation
    from tiercare.scenarios.service import network_from_layer

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        layer = session.scalar(select(RoadNetwork).where(RoadNetwork.name == roads))
        if layer is None:
            raise InputError.single(f"unknown road network {roads!r}", field="roads")
        network = network_from_layer(layer.geojson, class_field=layer.class_field,
                                     speed_field=layer.speed_field)
        result = optimise_upgrades(session, SYSTEM, network, division_code=division,
                                   model=model, tier=tier, threshold_min=threshold,
                                   new_sites=new_sites)
        if save_as:
            scenario_from_optimisation(session, SYSTEM, result, name=save_as,
                                       division_code=division, road_network=roads,
                                       upgrade_to=upgrade_to)
    print_json(result)
