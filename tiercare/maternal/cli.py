"""``tiercare maternal``: pregnancy risk grading from the command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from tiercare.clisupport import console, input_errors_exit_2, print_json
from tiercare.errors import InputError
from tiercare.maternal.criteria import CriteriaTable, language_key, load_table
from tiercare.maternal.grading import CONDITIONS_FIELD, grade, grade_batch

app = typer.Typer(
    help="Maternal safety: pregnancy risk grading (green/yellow/orange/red, purple).",
    no_args_is_help=True,
)

TableOption = Annotated[
    Path | None, typer.Option("--table", help="An assessment table file (JSON) to use instead")
]
FamilyOption = Annotated[
    str, typer.Option("--family", help="Packaged table family: national or a local variant")
]
OnOption = Annotated[
    str | None,
    typer.Option("--on", help="Assessment date YYYY-MM-DD (picks the table version in force)"),
]


def _table(table: Path | None, family: str, on: str | None) -> CriteriaTable:
    try:
        day = dt.date.fromisoformat(on) if on else None
    except ValueError as exc:
        raise InputError.single(f"'{on}' is not a date (YYYY-MM-DD)", field="on") from exc
    return load_table(table, family=family, on=day)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(f"no such file: {path}", field="findings") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.single(f"cannot read {path.name} as JSON: {exc}",
                                field="findings") from exc


@app.command("grade")
def grade_command(
    findings: Annotated[Path, typer.Option("--findings", help="Findings of one pregnancy (JSON)")],
    lang: Annotated[str, typer.Option("--lang", help="Text language: zh-CN or en")] = "zh-CN",
    table: TableOption = None,
    family: FamilyOption = "national",
    on: OnOption = None,
) -> None:
    """Grade one pregnancy; print {"colour","purple","reasons","management"} as JSON.

    The findings file holds numeric fields (age, bmi or height_cm and weight_kg, hb_g_l,
    platelets_1e9_l, …) and "conditions", a list of criterion codes. Bad input exits with 2.
    """
    with input_errors_exit_2():
        language_key(lang)
        criteria = _table(table, family, on)
        result = grade(_read_json(findings), table=criteria, language=lang)
    print_json(result.to_dict())


@app.command("grade-batch")
def grade_batch_command(
    source: Annotated[Path, typer.Option("--input", help="CSV: one pregnancy per row; "
                                         "'conditions' holds codes separated by ';'")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write (input + colour, "
                                         "purple, reasons)")],
    table: TableOption = None,
    family: FamilyOption = "national",
    on: OnOption = None,
) -> None:
    """Grade many pregnancies from a CSV, all or nothing (every bad cell is reported)."""
    with input_errors_exit_2():
        criteria = _table(table, family, on)
        try:
            frame = pd.read_csv(source, dtype={CONDITIONS_FIELD: str}, keep_default_na=True)
        except (OSError, ValueError) as exc:
            raise InputError.single(f"cannot read {source}: {exc}", field="input") from exc
        graded = grade_batch(frame.drop(columns=["id"], errors="ignore"), table=criteria)
        frame.join(graded.to_frame()).to_csv(output, index=False)
    counts = pd.Series(graded.colour).value_counts().to_dict()
    console.print(f"graded {len(frame)} pregnancies → {output}: "
                  + ", ".join(f"{k} {v}" for k, v in counts.items())
                  + f"; purple {int(graded.purple.sum())}")


def _session() -> Any:
    from tiercare.config import get_settings
    from tiercare.db.engine import create_db_engine, session_factory

    return session_factory(create_db_engine(get_settings().database_url))()


@app.command("alerts")
def alerts_command(
    at: Annotated[str | None, typer.Option(
        "--at", help="Evaluate at this instant (ISO 8601, default now); for replays")] = None,
    division: Annotated[str, typer.Option(
        "--division", help="Only pregnancies under this division code prefix")] = "",
) -> None:
    """Evaluate the early-warning rules on the database (TIERCARE_DATABASE_URL).

    Raises, resolves and escalates alerts; meant to be run by a scheduler (e.g. hourly).
    Prints {"raised","resolved","escalated","open"} as JSON.
    """
    from tiercare.db.base import utcnow
    from tiercare.maternal.service import generate_alerts

    with input_errors_exit_2():
        try:
            now = dt.datetime.fromisoformat(at) if at else utcnow()
        except ValueError as exc:
            raise InputError.single(f"'{at}' is not an ISO instant", field="at") from exc
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        with _session() as session:
            counts = generate_alerts(session, now=now, prefix=division.strip())
            session.commit()
    print_json(counts)


@app.command("where-to-deliver")
def where_command(
    roads: Annotated[Path | None, typer.Option(
        "--roads", help="Road network (OSM extract or line layer); default straight line × "
        "road factor")] = None,
    class_field: Annotated[str | None, typer.Option(
        "--class-field", help="Road class column of a line layer")] = None,
    speed_field: Annotated[str | None, typer.Option(
        "--speed-field", help="Speed (km/h) column of a line layer")] = None,
    division: Annotated[str, typer.Option(
        "--division", help="Division code prefix of the villages")] = "",
) -> None:
    """Villages where the delivery level a colour requires is beyond the time limit, and the
    critical maternal care centres' catchments, as JSON (database: TIERCARE_DATABASE_URL)."""
    from tiercare.maternal.places import centre_catchments, planner_gaps
    from tiercare.maternal.rules import load_case_rules
    from tiercare.planning.network import build_network
    from tiercare.planning.roads import read_roads

    with input_errors_exit_2():
        rules = load_case_rules()
        network = None
        if roads is not None:
            network = build_network(read_roads(roads, class_field=class_field,
                                               speed_field=speed_field),
                                    use_class=speed_field is None)
        with _session() as session:
            gaps = planner_gaps(session, prefix=division.strip(), rules=rules,
                                network=network)
            catchments = centre_catchments(session, prefix=division.strip(), rules=rules,
                                           network=network)
    print_json({"limit_minutes": rules.delivery.max_travel_minutes,
                "method": "network" if network is not None else "straight_line",
                "villages_beyond": gaps,
                "centres": catchments["centres"]})
