"""``tiercare surveillance …``: import daily fever reports and run the detectors."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from tiercare.clisupport import DbOption, database_url, input_errors_exit_2, print_json

app = typer.Typer(help="Fever-clinic surveillance.", no_args_is_help=True)


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="CSV or .xlsx of daily reports", exists=True,
                                         dir_okay=False)],
    db: DbOption = None,
) -> None:
    """Import daily fever reports, all or nothing."""
    from tiercare.auth.service import SYSTEM
    from tiercare.db.session import transaction
    from tiercare.surveillance.reports import import_fever_file

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        print_json(import_fever_file(session, SYSTEM, path.read_bytes(), path.name))


@app.command("detect")
def detect_command(
    end: Annotated[str, typer.Option(help="Last day examined (YYYY-MM-DD)")],
    days: Annotated[int | None, typer.Option(help="History length in days")] = None,
    unit: Annotated[str, typer.Option(help="Division subtree")] = "",
    db: DbOption = None,
) -> None:
    """Run the configured detectors and print the new alerts (JSON)."""
    from tiercare.auth.service import SYSTEM
    from tiercare.db.session import transaction
    from tiercare.errors import InputError
    from tiercare.surveillance.reports import alert_dict, run_detection

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        try:
            last = date.fromisoformat(end)
        except ValueError as exc:
            raise InputError.single(f"not a date: {end!r}", field="end") from exc
        created = run_detection(session, SYSTEM, end=last, days=days, unit=unit)
        print_json({"created": len(created), "alerts": [alert_dict(a) for a in created]})
