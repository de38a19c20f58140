"""Exports in the import formats (so an export re-imports unchanged) and blank templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tiercare.auth.service import Actor
from tiercare.errors import InputError
from tiercare.paging import MAX_PAGE
from tiercare.registry import service
from tiercare.registry.importing import COLUMNS, HELP, TABLE_KINDS
from tiercare.registry.tables import write_table


def write_template(kind: str, path: Path) -> None:
    """An empty import template (header row; .xlsx gets a second sheet explaining columns)."""
    if kind not in COLUMNS:
        raise InputError.single(f"no template for '{kind}' (one of {', '.join(COLUMNS)})",
                                field="kind")
    columns = COLUMNS[kind]
    write_table(path, columns, [], help_rows=[(c, HELP.get(c, "")) for c in columns])


def _all(lister, session: Session, actor: Actor, **filters: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        total, items = lister(session, actor, offset=offset, limit=MAX_PAGE, **filters)
        out.extend(items)
        offset += len(items)
        if offset >= total or not items:
            return out


def export_rows(session: Session, actor: Actor, kind: str) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of every entry of ``kind`` in the actor's scope, in import format."""
    if kind == "divisions":
        items = _all(service.list_divisions, session, actor)
        columns = list(COLUMNS["divisions"])
        rows = []
        for d in items:
            ages = d["population_by_age"] or {}
            rows.append([d["code"], d["name"], d["urban_rural_class"], d["population"],
                         d["population_male"], d["population_female"], d["population_urban"],
                         d["population_rural"], ages.get("age_0_14"), ages.get("age_15_64"),
                         ages.get("age_65_plus"), d["lon"], d["lat"]])
        return columns, rows
    if kind == "facilities":
        items = _all(service.list_facilities, session, actor)
        extra = sorted({f"{cat}_{k}" for f in items for cat in ("beds", "staff", "equipment")
                        for k in f[cat]})
        base = [c for c in COLUMNS["facilities"] if not c.startswith(("beds_", "staff_", "equipment_"))]
        columns = base + extra
        rows = []
        for f in items:
            cells = {**f, "type": f["type"], "services": ";".join(f["services"]),
                     "centres": ";".join(f["centres"]), "parent_code": f["parent_code"] or "",
                     "government_run": "true" if f["government_run"] else "false"}
            for cat in ("beds", "staff", "equipment"):
                for k, v in f[cat].items():
                    cells[f"{cat}_{k}"] = v
            rows.append([cells.get(c, "") for c in columns])
        return columns, rows
    if kind == "staff":
        items = _all(service.list_staff, session, actor)
        columns = list(COLUMNS["staff"])
        return columns, [[s["code"], s["name"], s["sex"], s["cadre"], s["qualification"],
                          s["registration_number"], s["facility_code"],
                          ";".join(s["village_codes"])] for s in items]
    if kind in {"medical_groups", "group_members"}:
        groups = _all(service.list_groups, session, actor)
        if kind == "medical_groups":
            columns = list(COLUMNS["medical_groups"])
            return columns, [[g["code"], g["name"], g["kind"], g["division_code"], g["lead_facility_code"]]
                             for g in groups]
        columns = list(COLUMNS["group_members"])
        return columns, [[g["code"], m["facility_code"], m["role"], ";".join(m["village_codes"])]
                         for g in groups for m in g["members"]]
    raise InputError.single(f"cannot export '{kind}' (one of {', '.join(TABLE_KINDS)})",
                            field="kind")


def export_file(session: Session, actor: Actor, kind: str, path: Path) -> int:
    """Write an export to CSV or .xlsx, or geometry to GeoJSON / GeoPackage; return the count.

    Geometry exports: ``divisions`` (boundary polygons, or points where no boundary is known)
    and ``facilities`` (points), in WGS84.
    """
    suffix = path.suffix.lower()
    if suffix in {".geojson", ".gpkg"}:
        return _export_geometry(session, actor, kind, path)
    columns, rows = export_rows(session, actor, kind)
    write_table(path, columns, rows)
    return len(rows)


def _export_geometry(session: Session, actor: Actor, kind: str, path: Path) -> int:
    import geopandas as gpd
    from pyogrio.errors import DataSourceError
    from shapely.geometry import Point, shape

    if kind == "facilities":
        items = [f for f in _all(service.list_facilities, session, actor) if f["lon"] is not None]
        frame = gpd.GeoDataFrame(
            [{k: f[k] for k in ("code", "name", "type", "level", "division_code", "status",
                                "beds_total")} for f in items],
            geometry=[Point(f["lon"], f["lat"]) for f in items], crs="EPSG:4326")
    elif kind == "divisions":
        records, geometries = [], []
        for d in _all(service.list_divisions, session, actor):
            division = service.get_division(session, actor, d["code"])
            if division.boundary:
                geometries.append(shape(division.boundary))
            elif d["lon"] is not None:
                geometries.append(Point(d["lon"], d["lat"]))
            else:
                continue
            records.append({k: d[k] for k in ("code", "name", "level", "population")})
        frame = gpd.GeoDataFrame(records, geometry=geometries, crs="EPSG:4326")
    else:
        raise InputError.single("geometry exports exist for divisions and facilities",
                                field="kind")
    if path.is_dir():
        raise InputError.single(f"{path} is a folder: give a file name", field="file",
                                code="not_a_file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        frame.to_file(path, driver="GPKG" if path.suffix.lower() == ".gpkg" else "GeoJSON")
    except (OSError, DataSourceError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).split(": ")[-1]
        raise InputError.single(f"cannot write {path}: {reason}", field="file") from exc
    return len(frame)
