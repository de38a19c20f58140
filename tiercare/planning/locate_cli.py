"""``tiercare plan locate``: solve a location-allocation model from CSV files.

``costs.csv`` is long form, one reachable pair per row (``demand_id,candidate_id,cost`` by
default; spopt's test format ``distance,name,DestinationName,demand`` works with the ``--*-field``
options). Pairs that are absent are unreachable. Ids are read as text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from tiercare.clisupport import input_errors_exit_2, print_json
from tiercare.errors import InputError, Problem
from tiercare.planning.locate import LSCP, MCLP, LocationModel, PCenter, PMedian

_MODELS: dict[str, type[LocationModel]] = {"lscp": LSCP, "mclp": MCLP, "pmedian": PMedian,
                                           "pcenter": PCenter}


def _read_csv(path: Path, field: str, problems: list[Problem]) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        problems.append(Problem(reason=f"file not found: {path}", field=field))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        problems.append(Problem(reason=f"cannot read {path}: {exc}", field=field))
    return None


def _columns(frame: pd.DataFrame, names: list[str], path: Path,
             problems: list[Problem]) -> bool:
    missing = [n for n in names if n not in frame.columns]
    for n in missing:
        problems.append(Problem(reason=f"{path.name} has no column {n!r} (columns: "
                                f"{', '.join(map(str, frame.columns))})", field=n,
                                code="missing_column"))
    return not missing


def _numbers(frame: pd.DataFrame, column: str, problems: list[Problem], *,
             nonnegative: bool = True, label: str = "") -> np.ndarray:
    raw = frame[column].str.strip()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | ((values < 0) if nonnegative else False))
    for k in bad[:20]:
        problems.append(Problem(reason=f"{label}must be a number >= 0, got {raw.iat[k]!r}",
                                field=column, row=int(k) + 1, code="bad_value"))
    if bad.size > 20:
        problems.append(Problem(reason=f"{bad.size - 20} more bad values", field=column))
    return values


def _id_list(path: Path, field: str, problems: list[Problem]) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        problems.append(Problem(reason=f"cannot read {path}: {exc}", field=field))
        return []
    return [s.strip() for s in lines if s.strip()]


def locate(
    model: Annotated[str, typer.Option(help="lscp | mclp | pmedian | pcenter")],
    costs: Annotated[Path, typer.Option(help="Long-form pairs CSV (demand, candidate, cost).")],
    out: Annotated[Path, typer.Option(help="Where to write result.json.")],
    demand: Annotated[Path | None, typer.Option(help="Demand CSV: id and weight columns.")] = None,
    candidates: Annotated[Path | None, typer.Option(
        help="Candidates CSV: id column (and capacity / site cost columns).")] = None,
    p: Annotated[int | None, typer.Option(help="Number of sites (fixed ones included).")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Coverage threshold in the cost column's units (minutes or metres).")] = None,
    fixed: Annotated[Path | None, typer.Option(
        help="Text file, one candidate id per line: kept open.")] = None,
    forbidden: Annotated[Path | None, typer.Option(
        help="Text file, one candidate id per line: kept closed.")] = None,
    capacity_field: Annotated[str | None, typer.Option(
        help="Capacity column of the candidates CSV.")] = None,
    site_cost_field: Annotated[str | None, typer.Option(
        help="Cost-per-site column of the candidates CSV (MCLP with --budget).")] = None,
    budget: Annotated[float | None, typer.Option(help="MCLP budget for new sites.")] = None,
    time_limit: Annotated[float, typer.Option(help="Time limit in seconds.")] = 60.0,
    gap: Annotated[float, typer.Option(help="Relative gap at which to stop.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed for the solver.")] = 0,
    demand_field: Annotated[str, typer.Option(help="Demand id column.")] = "demand_id",
    candidate_field: Annotated[str, typer.Option(help="Candidate id column.")] = "candidate_id",
    cost_field: Annotated[str, typer.Option(help="Cost column of costs.csv.")] = "cost",
    weight_field: Annotated[str, typer.Option(
        help="Weight column (demand CSV, or costs CSV when no demand CSV).")] = "weight",
) -> None:
    """Choose sites with a location-allocation model and write result.json.

    result.json holds model, objective, bound, gap, status, selected, assignment,
    covered_weight and seconds. Bad input exits with code 2 and names the row and field.
    """
    with input_errors_exit_2():
        problems: list[Problem] = []
        cls = _MODELS.get(model.lower())
        if cls is None:
            raise InputError.single(f"unknown model {model!r}; choose one of "
                                    f"{', '.join(_MODELS)}", field="model")
        pairs = _read_csv(costs, "costs", problems)
        if pairs is None or not _columns(pairs, [demand_field, candidate_field, cost_field],
                                         costs, problems):
            raise InputError(problems)
        cost = _numbers(pairs, cost_field, problems, label="cost ")
        d_col = pairs[demand_field].str.strip().tolist()
        c_col = pairs[candidate_field].str.strip().tolist()
        demand_ids: list[str] | None = None
        weights: np.ndarray | None = None
        if demand is not None:
            frame = _read_csv(demand, "demand", problems)
            if frame is not None and _columns(frame, [demand_field], demand, problems):
                demand_ids = frame[demand_field].str.strip().tolist()
                if weight_field in frame.columns:
                    weights = _numbers(frame, weight_field, problems, label="weight ")
        elif weight_field in pairs.columns:
            per_pair = _numbers(pairs, weight_field, problems, label="weight ")
            demand_ids = list(dict.fromkeys(d_col))
            first: dict[str, float] = {}
            for k, (d, v) in enumerate(zip(d_col, per_pair, strict=True)):
                if d in first and first[d] != v and np.isfinite(v):
                    problems.append(Problem(
                        reason=f"weight {v:g} differs from {first[d]:g} given earlier for "
                        f"demand {d!r}", field=weight_field, row=k + 1, code="inconsistent"))
                first.setdefault(d, v)
            weights = np.array([first[d] for d in demand_ids])
        candidate_ids: list[str] | None = None
        capacities = site_costs = None
        if candidates is not None:
            frame = _read_csv(candidates, "candidates", problems)
            wanted = [candidate_field] + [f for f in (capacity_field, site_cost_field) if f]
            if frame is not None and _columns(frame, wanted, candidates, problems):
                candidate_ids = frame[candidate_field].str.strip().tolist()
                if capacity_field:
                    capacities = _numbers(frame, capacity_field, problems, label="capacity ")
                if site_cost_field:
                    site_costs = _numbers(frame, site_cost_field, problems, label="site cost ")
        elif capacity_field or site_cost_field:
            problems.append(Problem(reason="needs --candidates", field=capacity_field
                                    or site_cost_field, code="missing"))
        fixed_ids = _id_list(fixed, "fixed", problems) if fixed else None
        forbidden_ids = _id_list(forbidden, "forbidden", problems) if forbidden else None
        if problems:
            raise InputError(problems)
        built = cls.from_pairs(
            d_col, c_col, cost, weights, demand_ids=demand_ids, candidate_ids=candidate_ids,
            threshold=threshold, p=p, fixed=fixed_ids, forbidden=forbidden_ids,
            capacities=capacities, costs_per_site=site_costs, budget=budget)
        result = built.solve(time_limit=time_limit, gap=gap, seed=seed)
        data = result.to_dict()
        out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        summary = {k: v for k, v in data.items() if k != "assignment"}
        summary["out"] = str(out)
        print_json(summary)
