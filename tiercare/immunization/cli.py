"""``tiercare immunization``: the schedule engine's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tiercare.clisupport import input_errors_exit_2, print_json
from tiercare.errors import InputError, Problem
from tiercare.immunization.fhir import recommendation_resource
from tiercare.immunization.forecast import forecast as forecast_child
from tiercare.immunization.forecast import parse_child, parse_date
from tiercare.immunization.schedule import default_schedules

app = typer.Typer(
    help="Immunisation: the National Immunisation Programme schedule engine.",
    no_args_is_help=True,
)


@app.command("forecast")
def forecast(
    child: Annotated[Path, typer.Option("--child", help="child.json: birth date, history, ...")],
    as_of: Annotated[str, typer.Option("--as-of", help="Reference date YYYY-MM-DD.")],
    schedule_version: Annotated[str | None, typer.Option(
        "--schedule-version", help="Force a schedule version id (default: in force on --as-of)."
    )] = None,
    self_paid: Annotated[bool, typer.Option(
        "--self-paid", help="Also forecast self-paid (non-programme) vaccines.")] = False,
    fhir: Annotated[bool, typer.Option(
        "--fhir", help="Print a FHIR R4B ImmunizationRecommendation instead.")] = False,
    patient: Annotated[str, typer.Option(
        "--patient", help="Patient reference used with --fhir.")] = "Patient/unknown",
) -> None:
    """Forecast the next dose of every series for one child and print JSON.

    Output: as_of, schedule_version, series (vaccine, next_dose, status, earliest,
    overdue_after) and invalid_doses. Bad input (unknown vaccine, impossible date, dose before
    birth or after the as-of date) exits with code 2.
    """
    with input_errors_exit_2():
        problems: list[Problem] = []
        day = parse_date(as_of, "as_of", problems)
        try:
            data = json.loads(child.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(Problem(reason=f"cannot read {child}: {exc}", field="child"))
            data = None
        if problems or day is None:
            raise InputError(problems)
        book = default_schedules()
        result = forecast_child(parse_child(data, book=book), as_of=day, book=book,
                                version=schedule_version, include_self_paid=self_paid)
        if fhir:
            print_json(recommendation_resource(result, patient_reference=patient, book=book)
                       .model_dump(mode="json", exclude_none=True))
        else:
            print_json(result.to_json())


@app.command("upload")
def upload_command(
    file: Annotated[Path, typer.Argument(help="CSV batch or FHIR Bundle (.json)")],
    site: Annotated[str, typer.Option("--site", help="Code of the uploading site")],
    db: Annotated[str | None, typer.Option("--db", help="Database URL")] = None,
) -> None:
    """Upload a batch of vaccination records: all rows or none, idempotent.

    Prints ``{"batch_id", "rows", "inserted", "already_present"}``; a bad batch exits with code
    2 and lists every bad row (nothing is written).
    """
    from tiercare.auth.service import SYSTEM
    from tiercare.config import Settings, get_settings
    from tiercare.db.session import transaction
    from tiercare.immunization.upload import upload_bundle, upload_csv

    settings = Settings(database_url=db) if db else get_settings()
    with input_errors_exit_2():
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise InputError.single(f"cannot read {file}: {exc}", field="file") from exc
        with transaction(settings.database_url) as session:
            if file.suffix.lower() == ".json":
                try:
                    bundle = json.loads(content)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise InputError.single(f"not JSON: {exc}", field="file") from exc
                out = upload_bundle(session, SYSTEM, bundle, site_code=site,
                                    secret=settings.secret_key)
            else:
                out = upload_csv(session, SYSTEM, content, site_code=site,
                                 secret=settings.secret_key)
        print_json(out)


@app.command("worklist")
def worklist_command(
    start: Annotated[str, typer.Option("--start", help="First day YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--end", help="Last day YYYY-MM-DD")],
    site: Annotated[str | None, typer.Option("--site", help="Site code")] = None,
    staff: Annotated[str | None, typer.Option("--staff", help="Village doctor's code")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write CSV here")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL")] = None,
) -> None:
    """Due and overdue doses of a site's or a village doctor's children for a period (CSV)."""
    from tiercare.auth.service import SYSTEM
    from tiercare.config import Settings, get_settings
    from tiercare.db.session import transaction
    from tiercare.immunization.worklists import work_list

    settings = Settings(database_url=db) if db else get_settings()
    with input_errors_exit_2():
        problems: list[Problem] = []
        first = parse_date(start, "start", problems)
        last = parse_date(end, "end", problems)
        if not (site or staff):
            problems.append(Problem(reason="give --site or --staff", field="site"))
        if problems or first is None or last is None:
            raise InputError(problems)
        with transaction(settings.database_url) as session:
            table = work_list(session, SYSTEM, start=first, end=last, site=site, staff=staff)
        text = table.to_csv(index=False)
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            print_json({"lines": len(table), "children": int(table["child_id"].nunique()),
                        "file": str(out)})
