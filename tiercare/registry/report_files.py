"""Write the registry reports (blank spots, supply, structure) as CSV and Excel files."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tiercare.auth.service import Actor
from tiercare.registry.reports import BlankSpot, blank_spot_summary, blank_spots, supply
from tiercare.registry.tables import write_table


def write_registry_reports(
    session: Session, actor: Actor, out: Path, *, root_code: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Write ``blank_spots``, ``supply`` and ``structure`` (.csv and .xlsx) into ``out``.

    Returns a summary: blank spots by kind, the supply row of ``root_code`` (default: the
    county rows) and the files. An unknown ``root_code`` is refused, naming the ``division`` field.
    """
    from tiercare.errors import InputError, NotFoundError
    from tiercare.registry.codes import normalise_code

    if root_code:
        try:
            root_code = normalise_code(root_code)
        except ValueError as exc:
            raise InputError.single(str(exc), field="division") from exc
    try:
        spots = blank_spots(session, actor, root_code=root_code, as_of=as_of)
    except NotFoundError as exc:
        raise InputError.single(f"unknown division {root_code} (or outside your scope)",
                                field="division", code="unknown_division") from exc
    report = supply(session, actor, root_code=root_code, as_of=as_of)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    spot_columns = [f.name for f in fields(BlankSpot)]
    supply_columns = list(report["rows"][0]) if report["rows"] else []
    structure_rows = [
        [axis, key, value["facilities"], value["beds"]]
        for axis, entries in report["structure"].items()
        for key, value in sorted(entries.items())
    ]
    for suffix in (".csv", ".xlsx"):
        path = out / f"blank_spots{suffix}"
        write_table(path, spot_columns, [list(asdict(s).values()) for s in spots])
        files.append(str(path))
        path = out / f"supply{suffix}"
        write_table(path, supply_columns, [list(r.values()) for r in report["rows"]])
        files.append(str(path))
        path = out / f"structure{suffix}"
        write_table(path, ["axis", "key", "facilities", "beds"], structure_rows)
        files.append(str(path))
    top = [r for r in report["rows"]
           if (r["division_code"] == root_code if root_code else r["level"] == "county")]
    return {
        "blank_spots": blank_spot_summary(spots),
        "supply": top,
        "norms": report["norms"],
        "files": files,
    }
