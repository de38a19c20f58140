"""``tiercare indicators …``: compute indicators, seed the catalogue, import and export values."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tiercare.clisupport import DbOption, database_url, input_errors_exit_2, print_json

app = typer.Typer(help="Indicators, aggregate reports and analytics.", no_args_is_help=True)


@app.command("compute")
def compute_command(
    period: Annotated[list[str], typer.Option("--period", help="2026-10, 2026W43, 2026Q4, 2026 "
                                                               "(repeatable)")],
    unit: Annotated[list[str], typer.Option("--unit", help="Division or facility code "
                                                           "(repeatable)")],
    indicator: Annotated[list[str] | None, typer.Option(
        "--indicator", help="Indicator code (repeatable; default all)")] = None,
    children: Annotated[bool, typer.Option("--children", help="Add the units one level down")
                        ] = False,
    db: DbOption = None,
) -> None:
    """Print indicator values (JSON) for units and periods."""
    from tiercare.auth.service import SYSTEM
    from tiercare.db.session import transaction
    from tiercare.indicators.analytics import analytics

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        values = analytics(session, SYSTEM, indicators=indicator or [], units=unit,
                           periods=period, children=children)
        print_json({"values": [v.as_dict() for v in values]})


@app.command("seed")
def seed_command(db: DbOption = None) -> None:
    """Load the shipped indicator catalogue (keeps administrators' edits)."""
    from tiercare.db.session import transaction
    from tiercare.indicators.catalogue import seed_catalogue

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        print_json(seed_catalogue(session))


@app.command("rebuild")
def rebuild_command(db: DbOption = None) -> None:
    """Full re-aggregation of the analytics totals."""
    from tiercare.db.session import transaction
    from tiercare.indicators.analytics import rebuild_analytics

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        print_json({"rows": rebuild_analytics(session)})


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="CSV, .xlsx or DHIS2 dataValueSets .json",
                                         exists=True, dir_okay=False)],
    db: DbOption = None,
) -> None:
    """Import data values, all or nothing (problems listed, exit code 2)."""
    from tiercare.auth.service import SYSTEM
    from tiercare.db.session import transaction
    from tiercare.indicators.reporting import import_data_value_set, import_table

    data = path.read_bytes()
    with input_errors_exit_2(), transaction(database_url(db)) as session:
        if path.suffix.lower() == ".json":
            result = import_data_value_set(session, SYSTEM, data)
        else:
            result = import_table(session, SYSTEM, data, path.name)
        print_json(result.as_dict())


@app.command("export")
def export_command(
    unit: Annotated[str | None, typer.Option(help="Facility or division subtree")] = None,
    period: Annotated[str | None, typer.Option(help="Values inside this period")] = None,
    data_set: Annotated[str | None, typer.Option("--data-set", help="Elements of a form")
                        ] = None,
    db: DbOption = None,
) -> None:
    """Print values as DHIS2 dataValueSets JSON."""
    from tiercare.auth.service import SYSTEM
    from tiercare.db.session import transaction
    from tiercare.indicators.reporting import export_data_value_set

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        print_json(export_data_value_set(session, SYSTEM, unit=unit, period=period,
                                         data_set=data_set))
