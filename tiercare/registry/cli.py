"""Registry commands: import, template, export, and the blank-spot and supply reports."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tiercare.auth.service import SYSTEM
from tiercare.clisupport import DbOption, console, database_url, input_errors_exit_2, print_json
from tiercare.db.session import transaction
from tiercare.registry.exporting import export_file, write_template
from tiercare.registry.importing import KINDS, TABLE_KINDS, import_file
from tiercare.registry.report_files import write_registry_reports


def import_command(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}")],
    file: Annotated[Path, typer.Argument(help="CSV/.xlsx (boundaries: GeoJSON/GeoPackage)")],
    db: DbOption = None,
) -> None:
    """Import a registry file, all or nothing; on any bad row print every problem, exit 2."""
    url = database_url(db)
    with input_errors_exit_2(), transaction(url) as session:
        result = import_file(session, kind, file, actor=SYSTEM)
    console.print(
        f"[green]imported[/] {kind}: {result.rows} rows — {result.created} created, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )


def template_command(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(TABLE_KINDS)}")],
    file: Annotated[Path, typer.Argument(help="Output .csv or .xlsx")],
) -> None:
    """Write an empty import template (an .xlsx also explains every column)."""
    with input_errors_exit_2():
        write_template(kind, file)
    console.print(f"wrote {file}")


def export_command(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(TABLE_KINDS)}")],
    file: Annotated[Path, typer.Argument(help="Output .csv, .xlsx (divisions: also .geojson)")],
    db: DbOption = None,
) -> None:
    """Export registry entries in the import format (re-importing changes nothing)."""
    url = database_url(db)
    with input_errors_exit_2(), transaction(url) as session:
        count = export_file(session, SYSTEM, kind, file)
    console.print(f"wrote {count} rows to {file}")


def report_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report files")] = Path("out"),
    county: Annotated[str | None, typer.Option(
        "--division", "--county",
        help="Division code to report on (county, township…; default: your whole scope)")] = None,
    as_of: Annotated[str | None, typer.Option(help="Reference date YYYY-MM-DD")] = None,
    db: DbOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Write the blank-spot and supply reports (CSV and Excel) and print a summary."""
    from tiercare.errors import InputError

    url = database_url(db)
    with input_errors_exit_2():
        try:
            reference = date.fromisoformat(as_of) if as_of else None
        except ValueError as exc:
            raise InputError.single(f"'{as_of}' is not a date", field="as_of") from exc
        with transaction(url) as session:
            summary = write_registry_reports(session, SYSTEM, out, root_code=county,
                                             as_of=reference)
    if json_output:
        print_json(summary)
        return
    table = Table(title="Blank spots / 空白点")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in summary["blank_spots"].items():
        table.add_row(kind, str(count))
    console.print(table)
    for path in summary["files"]:
        console.print(f"wrote {path}")
