"""Shared helpers for TierCare's command-line commands.

Every command reports bad input the same way: the problems on standard error and exit code 2.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from tiercare.errors import InputError, TierCareError

if TYPE_CHECKING:
    from tiercare.config import Settings

# soft_wrap: never break printed lines (file paths, problem reports) at the console width, so
# that they can be copied and searched; tables still fit the width.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def input_errors_exit_2() -> Iterator[None]:
    """Turn :class:`InputError` (and other domain errors) into a clear message and exit code 2.

    A database that cannot be reached, or lacks TierCare's tables, is reported the same way.
    """
    try:
        yield
    except InputError as exc:
        err_console.print(f"[bold red]error:[/] input refused ({len(exc.problems)} problem(s))")
        for problem in exc.problems:
            err_console.print(f"  - {problem}", markup=False, highlight=False)
        raise typer.Exit(code=2) from exc
    except TierCareError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    except (OperationalError, ProgrammingError) as exc:
        # A database that cannot be reached or has no TierCare schema: say so, not a traceback.
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        err_console.print(f"[bold red]error:[/] database: {detail}", markup=True, highlight=False)
        err_console.print("  check --db / TIERCARE_DATABASE_URL; a new database needs "
                          "`tiercare db upgrade` first", markup=False, highlight=False)
        raise typer.Exit(code=2) from exc


def print_json(data: Any) -> None:
    """Print ``data`` as indented UTF-8 JSON on standard output (no Rich markup)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: TIERCARE_DATABASE_URL or var/tiercare.db)."),
]


def load_settings(database_override: str | None = None) -> Settings:
    """The settings (``--db`` overriding the database URL); invalid ones exit with code 2.

    A malformed URL or a refused setting (the default secret in production) is reported on
    standard error, naming the variable or option, instead of a validation traceback.
    """
    from pydantic import ValidationError

    from tiercare.config import Settings, get_settings

    try:
        return Settings(database_url=database_override) if database_override else get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = "_".join(str(part) for part in error["loc"]).upper()
            name = ("--db" if database_override and where == "DATABASE_URL"
                    else f"TIERCARE_{where}" if where else "settings")
            message = str(error["msg"]).removeprefix("Value error, ")
            err_console.print(f"[bold red]error:[/] {name}: {message}", highlight=False)
        raise typer.Exit(code=2) from exc


def database_url(override: str | None) -> str:
    """The database URL to use: ``--db`` when given, else the settings' one (normalised).

    Invalid settings exit with code 2 (see :func:`load_settings`).
    """
    return load_settings(override).database_url
