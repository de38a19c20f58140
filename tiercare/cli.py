"""The ``tiercare`` command line.

Each domain contributes a Typer sub-application from its own ``cli.py``; they are registered
below, one line each.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tiercare",
    help="TierCare — plan and run an integrated, tiered health-service network.",
    no_args_is_help=True,
    add_completion=False,
)


from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

from tiercare.clisupport import (  # noqa: E402
    DbOption,
    console,
    database_url,
    input_errors_exit_2,
    load_settings,
)


@app.command("config")
def config_command() -> None:
    """Print the effective settings (secrets masked)."""
    from rich.table import Table

    table = Table(title="TierCare settings")
    table.add_column("variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in load_settings().public_items().items():
        table.add_row(name, value)
    console.print(table)


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema to the newest revision and load shipped reference data."""
    from tiercare.db.migrate import current_revisions, upgrade
    from tiercare.db.session import engine_for, transaction
    from tiercare.indicators.catalogue import seed_catalogue
    from tiercare.registry.reference import seed_reference_data

    url = database_url(db)
    with input_errors_exit_2():
        engine = engine_for(url)
        upgrade(engine)
        with transaction(url) as session:
            seed_reference_data(session)
            seed_catalogue(session)
    console.print(f"database at revision {', '.join(current_revisions(engine))}: "
                  f"{engine.url.render_as_string(hide_password=True)}")


user_app = typer.Typer(help="Users and their scope.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="admin | planner | group_manager | facility_staff | "
                                            "village_doctor")] = "planner",
    division: Annotated[str | None, typer.Option(help="Scope: a division code")] = None,
    facility: Annotated[str | None, typer.Option(help="Scope: a facility code")] = None,
    full_name: Annotated[str, typer.Option(help="Display name")] = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True,
                                          help="At least 8 characters")] = "",
    db: DbOption = None,
) -> None:
    """Create a user scoped to a division subtree or to one facility."""
    from tiercare.auth.service import create_user
    from tiercare.db.session import transaction

    with input_errors_exit_2(), transaction(database_url(db)) as session:
        create_user(session, username=username, password=password, role=role,
                    full_name=full_name, division_code=division, facility_code=facility)
    console.print(f"created user {username} ({role})")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (one per CPU core in production)")] = 1,
    db: DbOption = None,
) -> None:
    """Run the web app and the API (open http://HOST:PORT/)."""
    import os

    import uvicorn

    from tiercare.web.app import create_app

    settings = load_settings(db)
    console.print(f"TierCare on http://{host}:{port}/  (API docs: /docs)")
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    # each worker process builds its own app from the environment
    os.environ["TIERCARE_DATABASE_URL"] = settings.database_url
    uvicorn.run("tiercare.web.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info")


from tiercare.registry import cli as _registry_cli  # noqa: E402

app.command("import")(_registry_cli.import_command)
app.command("template")(_registry_cli.template_command)
app.command("export")(_registry_cli.export_command)
app.command("report")(_registry_cli.report_command)

# --- domain command groups (one line each) ---
from tiercare.planning.cli import app as _plan_app  # noqa: E402

app.add_typer(_plan_app, name="plan")
from tiercare.scenarios.cli import app as _scenario_app  # noqa: E402

_plan_app.add_typer(_scenario_app, name="scenario")

from tiercare.maternal.cli import app as _maternal_app  # noqa: E402

app.add_typer(_maternal_app, name="maternal")
from tiercare.immunization.cli import app as _immunization_app  # noqa: E402

app.add_typer(_immunization_app, name="immunization")


@app.command("demo")
def demo(
    db: DbOption = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the results")] = Path("out"),
    seed: Annotated[int, typer.Option(help="Random seed of the generator")] = 140725,
    reset: Annotated[bool, typer.Option("--reset",
                                        help="Drop every TierCare table of the database first")
                     ] = False,
    operations: Annotated[bool, typer.Option(
        "--operations/--registry-only",
        help="Also generate referral, maternal, immunisation and reporting history")] = True,
) -> None:
    """Build the generated demo county with its history, run the analyses, write OUT/."""
    from tiercare.demo.run import build_demo

    url = database_url(db)
    with input_errors_exit_2():
        result = build_demo(url, out, seed=seed, reset=reset, operations=operations,
                            console=console)
    s = result.summary
    console.print(
        f"\n[bold]{s['county']['name']}[/] (generated): population {s['population']:,}, "
        f"{s['townships']} townships, {s['villages']} villages, "
        f"{s['medical_group_members']} medical-group members, {s['village_clinics']} village "
        f"clinics, {s['village_doctors']} village doctors"
    )
    console.print("blank spots: " + ", ".join(f"{k} {v}" for k, v in s["blank_spots"].items()))
    console.print("\nwrote:")
    for path in result.files:
        console.print(f"  {path}", soft_wrap=True, highlight=False)
    console.print("\nstart the web app: [bold]make serve[/] (or .venv/bin/tiercare serve)"
                  "\nthen open http://127.0.0.1:8000/ and log in as admin / tiercare-demo")

from tiercare.indicators.cli import app as _indicators_app  # noqa: E402
from tiercare.surveillance.cli import app as _surveillance_app  # noqa: E402

app.add_typer(_indicators_app, name="indicators")
app.add_typer(_surveillance_app, name="surveillance")
