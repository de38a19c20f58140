"""``tiercare plan locate`` and ``tiercare plan locate-tiers``: location models from CSV files.

``costs.csv`` is long form, one reachable pair per row (``demand_id,candidate_id,cost`` by
default; spopt's test format ``distance,name,DestinationName,demand`` works with the ``--*-field``
options). Pairs that are absent are unreachable. Ids are read as text. ``locate-tiers`` reads two
such files, one per tier, over the same demand points.
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
from tiercare.planning._locate_data import duplicate_ids
from tiercare.planning.locate import LSCP, MCLP, LocationModel, PCenter, PMedian, TwoTierCover

_MODELS: dict[str, type[LocationModel]] = {"lscp": LSCP, "mclp": MCLP, "pmedian": PMedian,
                                           "pcenter": PCenter}
DEFAULT_WEIGHT_FIELD = "weight"
"""Weight column read when ``--weight-field`` is not given and the CSV has it."""


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


def _weight_column(frame: pd.DataFrame, weight_field: str | None, path: Path,
                   problems: list[Problem]) -> str | None:
    """The weight column to read: the one named (it must exist), else ``weight`` if present.

    None means every demand point weighs 1.
    """
    if weight_field is None:
        return DEFAULT_WEIGHT_FIELD if DEFAULT_WEIGHT_FIELD in frame.columns else None
    return weight_field if _columns(frame, [weight_field], path, problems) else None


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


def _demand_csv(path: Path, demand_field: str, weight_field: str | None,
                problems: list[Problem]) -> tuple[list[str] | None, np.ndarray | None]:
    """Read the ids and weights (None: every point weighs 1) of a demand CSV.

    The ids are None (with the problems recorded) when the file cannot be read or lacks the id
    column.
    """
    frame = _read_csv(path, "demand", problems)
    if frame is None or not _columns(frame, [demand_field], path, problems):
        return None, None
    column = _weight_column(frame, weight_field, path, problems)
    weights = None if column is None else _numbers(frame, column, problems, label="weight ")
    return frame[demand_field].str.strip().tolist(), weights


def _pairs(path: Path, field: str, problems: list[Problem], *, demand_field: str,
           candidate_field: str, cost_field: str,
           ) -> tuple[pd.DataFrame, list[str], list[str], np.ndarray] | None:
    """The frame, demand ids, candidate ids and costs of a long-form pairs CSV.

    ``None`` (with the problems recorded) when the file cannot be read or lacks a column.
    """
    frame = _read_csv(path, field, problems)
    if frame is None or not _columns(frame, [demand_field, candidate_field, cost_field], path,
                                     problems):
        return None
    cost = _numbers(frame, cost_field, problems, label=f"in {path.name}, cost ")
    return (frame, frame[demand_field].str.strip().tolist(),
            frame[candidate_field].str.strip().tolist(), cost)


def _id_lines(path: Path, field: str, problems: list[Problem]) -> list[tuple[int, str]]:
    """The ids of a one-id-per-line file with their 1-based line numbers (blank lines skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        problems.append(Problem(reason=f"cannot read {path}: {exc}", field=field))
        return []
    return [(k + 1, s.strip()) for k, s in enumerate(lines) if s.strip()]


def _id_list(path: Path, field: str, problems: list[Problem]) -> list[str]:
    return [v for _, v in _id_lines(path, field, problems)]


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
    weight_field: Annotated[str | None, typer.Option(
        help="Weight column (demand CSV, or costs CSV when no demand CSV); a named column "
        "must exist. Default: 'weight' when there is one, else every demand point weighs "
        "1.")] = None,
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
        read = _pairs(costs, "costs", problems, demand_field=demand_field,
                      candidate_field=candidate_field, cost_field=cost_field)
        if read is None:
            raise InputError(problems)
        pairs, d_col, c_col, cost = read
        demand_ids: list[str] | None = None
        weights: np.ndarray | None = None
        if demand is not None:
            demand_ids, weights = _demand_csv(demand, demand_field, weight_field, problems)
        elif (column := _weight_column(pairs, weight_field, costs, problems)) is not None:
            per_pair = _numbers(pairs, column, problems, label="weight ")
            demand_ids = list(dict.fromkeys(d_col))
            first: dict[str, float] = {}
            for k, (d, v) in enumerate(zip(d_col, per_pair, strict=True)):
                if d in first and first[d] != v and np.isfinite(v):
                    problems.append(Problem(
                        reason=f"weight {v:g} differs from {first[d]:g} given earlier for "
                        f"demand {d!r}", field=column, row=k + 1, code="inconsistent"))
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


def _listed(problems: list[Problem], found: list[Problem]) -> None:
    """Record the first 20 of ``found`` and how many more there were."""
    problems.extend(found[:20])
    if len(found) > 20:
        problems.append(Problem(reason=f"{len(found) - 20} more problems like these",
                                field=found[20].field))


def _unique(ids: list[str], option: str, problems: list[Problem]) -> None:
    """Record each repeated id of a CSV, naming ``option`` and the data row."""
    _listed(problems, duplicate_ids(ids, option))


def _in_file(problem: Problem, in_files: dict[str, tuple[Path, str]]) -> Problem:
    """Name the file and column of a problem with the pairs of one tier.

    ``in_files`` maps the fields of :meth:`TwoTierCover.from_pairs` (``upper_demand``, …) to
    the pairs CSV and its column; other problems are returned as they are.
    """
    if problem.field not in in_files:
        return problem
    path, column = in_files[problem.field]
    return Problem(reason=f"{path.name}: {problem.reason}", field=column, row=problem.row,
                   code=problem.code)


def _known_ids(path: Path | None, universe: list[str], option: str,
               problems: list[Problem]) -> list[str] | None:
    """The ids of an id-list file after checking each is a candidate of its tier.

    An unknown id is a problem naming ``option`` and its line in the file.
    """
    if path is None:
        return None
    lines = _id_lines(path, option, problems)
    known = set(universe)
    _listed(problems, [Problem(reason=f"unknown candidate id {v!r}", field=option,
                               row=row, code="unknown_id")
                       for row, v in lines if v not in known])
    return [v for _, v in lines]


def locate_tiers(
    upper_costs: Annotated[Path, typer.Option(
        help="Pairs CSV (demand, candidate, cost) to the upper-tier candidates, e.g. township "
        "centres that could become county sub-centres.")],
    lower_costs: Annotated[Path, typer.Option(
        help="Pairs CSV (demand, candidate, cost) to the lower-tier candidates, e.g. existing "
        "and possible village clinics.")],
    upper_threshold: Annotated[float, typer.Option(
        help="T1 in the cost units: the weight within T1 of an open upper-tier site is "
        "maximised.")],
    lower_threshold: Annotated[float, typer.Option(
        help="T2 in the cost units: every demand point must be within T2 of an open "
        "lower-tier site.")],
    upgrades: Annotated[int, typer.Option(
        help="At most this many upper-tier sites are opened besides --upper-fixed.")],
    out: Annotated[Path, typer.Option(help="Where to write result.json.")],
    demand: Annotated[Path | None, typer.Option(
        help="Demand CSV: id and weight columns (default: the ids of the pairs CSVs, "
        "weight 1).")] = None,
    upper_candidates: Annotated[Path | None, typer.Option(
        help="Upper-tier candidates CSV: id column (and --lower-id-field).")] = None,
    lower_candidates: Annotated[Path | None, typer.Option(
        help="Lower-tier candidates CSV: id column (and --site-cost-field).")] = None,
    upper_fixed: Annotated[Path | None, typer.Option(
        help="Text file, one upper-tier candidate id per line: already open.")] = None,
    upper_forbidden: Annotated[Path | None, typer.Option(
        help="Text file, one upper-tier candidate id per line: kept closed.")] = None,
    lower_fixed: Annotated[Path | None, typer.Option(
        help="Text file, one lower-tier candidate id per line: already open (existing "
        "clinics).")] = None,
    lower_forbidden: Annotated[Path | None, typer.Option(
        help="Text file, one lower-tier candidate id per line: kept closed.")] = None,
    new_lower: Annotated[int | None, typer.Option(
        help="At most this many new lower-tier sites (default: as many as needed).")] = None,
    site_cost_field: Annotated[str | None, typer.Option(
        help="Cost-per-site column of the lower-tier candidates CSV (with --budget).")] = None,
    budget: Annotated[float | None, typer.Option(
        help="Budget for the costs of the new lower-tier sites.")] = None,
    lower_id_field: Annotated[str | None, typer.Option(
        help="Column of the upper-tier candidates CSV naming the lower-tier candidate at the "
        "same place: an upgraded site stays open as a lower-tier site.")] = None,
    time_limit: Annotated[float, typer.Option(help="Time limit in seconds.")] = 60.0,
    gap: Annotated[float, typer.Option(help="Relative gap at which to stop.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed for the solver.")] = 0,
    demand_field: Annotated[str, typer.Option(help="Demand id column.")] = "demand_id",
    candidate_field: Annotated[str, typer.Option(help="Candidate id column.")] = "candidate_id",
    cost_field: Annotated[str, typer.Option(help="Cost column of the pairs CSVs.")] = "cost",
    weight_field: Annotated[str | None, typer.Option(
        help="Weight column of the demand CSV; a named column must exist. Default: 'weight' "
        "when there is one, else every demand point weighs 1.")] = None,
) -> None:
    """Choose upgrades and lower-tier sites together (two-tier cover).

    Opens at most --upgrades upper-tier sites so that the most weight lies
    within --upper-threshold of one, while every demand point (weight > 0)
    stays within --lower-threshold of an open lower-tier site: the
    --lower-fixed ones plus new ones, limited by --new-lower and/or --budget.
    Among the best solutions, the one with the fewest new lower-tier sites.

    result.json holds model, objective, bound, gap, status, upper_selected,
    lower_selected, upper_new, lower_new, seconds and method. Bad input, or
    limits that leave a demand point beyond --lower-threshold, exit with
    code 2 and name the file, row and field.
    """
    with input_errors_exit_2():
        problems: list[Problem] = []
        columns = {"demand_field": demand_field, "candidate_field": candidate_field,
                   "cost_field": cost_field}
        upper = _pairs(upper_costs, "upper-costs", problems, **columns)
        lower = _pairs(lower_costs, "lower-costs", problems, **columns)
        if upper is None or lower is None:
            raise InputError(problems)
        _, up_d, up_c, up_cost = upper
        _, low_d, low_c, low_cost = lower
        weights: np.ndarray | None = None
        if demand is not None:
            read_ids, weights = _demand_csv(demand, demand_field, weight_field, problems)
            if read_ids is None:
                raise InputError(problems)
            demand_ids = read_ids
        else:
            demand_ids = list(dict.fromkeys(up_d + low_d))
        upper_ids, lower_ids = list(dict.fromkeys(up_c)), list(dict.fromkeys(low_c))
        same_place: list[str] = []
        if upper_candidates is not None:
            frame = _read_csv(upper_candidates, "upper-candidates", problems)
            wanted = [candidate_field] + ([lower_id_field] if lower_id_field else [])
            if frame is not None and _columns(frame, wanted, upper_candidates, problems):
                upper_ids = frame[candidate_field].str.strip().tolist()
                if lower_id_field:
                    same_place = frame[lower_id_field].str.strip().tolist()
        elif lower_id_field:
            problems.append(Problem(reason="needs --upper-candidates", field=lower_id_field,
                                    code="missing"))
        site_costs = None
        if lower_candidates is not None:
            frame = _read_csv(lower_candidates, "lower-candidates", problems)
            wanted = [candidate_field] + ([site_cost_field] if site_cost_field else [])
            if frame is not None and _columns(frame, wanted, lower_candidates, problems):
                lower_ids = frame[candidate_field].str.strip().tolist()
                if site_cost_field:
                    site_costs = _numbers(frame, site_cost_field, problems, label="site cost ")
        elif site_cost_field:
            problems.append(Problem(reason="needs --lower-candidates", field=site_cost_field,
                                    code="missing"))
        if budget is not None and not site_cost_field:
            problems.append(Problem(reason="a budget needs --site-cost-field", field="budget",
                                    code="missing"))
        known_lower = set(lower_ids)
        _listed(problems, [Problem(reason=f"unknown lower-tier candidate id {lo!r}",
                                   field=lower_id_field, row=k + 1, code="unknown_id")
                           for k, lo in enumerate(same_place) if lo and lo not in known_lower])
        upper_in_lower = {u: lo for u, lo in zip(upper_ids, same_place, strict=False) if lo}
        for option, given, listed in (("demand", demand, demand_ids),
                                      ("upper-candidates", upper_candidates, upper_ids),
                                      ("lower-candidates", lower_candidates, lower_ids)):
            if given is not None:
                _unique(listed, option, problems)
        for option, listed, given in (("upper-costs", up_c, upper_candidates),
                                      ("lower-costs", low_c, lower_candidates)):
            if not listed and given is None:
                problems.append(Problem(reason="the file holds no pair, so no candidate",
                                        field=option, code="empty"))
        ids = {}
        for option, path, universe in (("upper-fixed", upper_fixed, upper_ids),
                                       ("upper-forbidden", upper_forbidden, upper_ids),
                                       ("lower-fixed", lower_fixed, lower_ids),
                                       ("lower-forbidden", lower_forbidden, lower_ids)):
            ids[option] = _known_ids(path, universe, option, problems)
        if problems:
            raise InputError(problems)
        in_files = {f"{tier}_{part}": (path, column)
                    for tier, path in (("upper", upper_costs), ("lower", lower_costs))
                    for part, column in (("demand", demand_field),
                                         ("candidate", candidate_field), ("cost", cost_field))}
        try:
            model = TwoTierCover.from_pairs(
                (up_d, up_c, up_cost), (low_d, low_c, low_cost), weights,
                upper_threshold=upper_threshold, lower_threshold=lower_threshold,
                upgrades=upgrades, demand_ids=demand_ids, upper_ids=upper_ids,
                lower_ids=lower_ids, upper_fixed=ids["upper-fixed"],
                upper_forbidden=ids["upper-forbidden"], lower_fixed=ids["lower-fixed"],
                lower_forbidden=ids["lower-forbidden"], new_lower=new_lower,
                lower_costs_per_site=site_costs, lower_budget=budget,
                upper_in_lower=upper_in_lower or None)
        except InputError as exc:
            raise InputError([_in_file(q, in_files) for q in exc.problems]) from exc
        data = model.solve(time_limit=time_limit, gap=gap, seed=seed).to_dict()
        out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        print_json({**data, "out": str(out)})
