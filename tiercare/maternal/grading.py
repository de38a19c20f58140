"""Pregnancy risk grading: one pregnancy (:func:`grade`) or many at once (:func:`grade_batch`).

The rules are those of a :class:`~tiercare.maternal.criteria.CriteriaTable` (data, see
``tiercare/maternal/data``); this module only applies them:

* every criterion triggered by the findings becomes a *reason* ``(code, colour, text)``;
* the result colour is the highest ranked colour among the reasons (green when there is none);
* purple (infectious disease) is reported alongside as a flag, whatever the ranked colour;
* the management actions are those of the result colour, followed by purple's when purple
  (each action listed once).

Findings are a mapping of numeric fields (``age``, ``bmi`` or ``height_cm`` and ``weight_kg``,
``hb_g_l``, ``platelets_1e9_l`` …, see the table's ``fields``) and ``conditions``, a list of
criterion codes. Fields that are absent (or ``None``) trigger nothing. BMI, when not given, is
computed from height and weight and rounded to one decimal. Unknown fields and codes, and
impossible values, are refused with an :class:`~tiercare.errors.InputError` naming each field.

Texts are Chinese (``language="zh-CN"``, the default) or English (``language="en"``).

Examples
--------
>>> result = grade({"age": 41, "hb_g_l": 95, "conditions": ["syphilis"]}, language="en")
>>> result.colour, result.purple, [r.code for r in result.reasons]
('orange', True, ['age_40_or_over', 'anaemia_hb_60_110', 'syphilis'])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tiercare.errors import InputError, Problem
from tiercare.maternal.criteria import CriteriaTable, Criterion, language_key, load_table

__all__ = [
    "CONDITIONS_FIELD",
    "BatchGrades",
    "GradeResult",
    "ManagementAction",
    "Reason",
    "compute_bmi",
    "grade",
    "grade_batch",
    "validate_findings",
]

CONDITIONS_FIELD = "conditions"
"""Name of the findings entry (and batch column) holding the asserted criterion codes."""


@dataclass(frozen=True)
class Reason:
    """A criterion that contributed to the grade."""

    code: str
    colour: str
    text: str


@dataclass(frozen=True)
class ManagementAction:
    """A management action required by a colour of the result."""

    code: str
    colour: str
    text: str


@dataclass(frozen=True)
class GradeResult:
    """The grade of one pregnancy.

    Attributes
    ----------
    colour:
        Highest ranked colour triggered (``green`` … ``red``; a local table may rank more).
    purple:
        Whether an infectious-disease (purple) criterion was triggered.
    reasons:
        Triggered criteria, highest colour first, purple last, table order within a colour.
    management:
        Actions for ``colour`` and, when ``purple``, for purple (each once, first colour wins).
    table_family, table_version:
        The assessment table used.
    language:
        Language of the texts.
    """

    colour: str
    purple: bool
    reasons: tuple[Reason, ...]
    management: tuple[ManagementAction, ...]
    table_family: str
    table_version: str
    language: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the CLI and the API.

        ``{"colour", "purple", "reasons": [{"code", "colour", "text"}],
        "management": [{"code", "colour", "text"}]}``.
        """
        return {
            "colour": self.colour,
            "purple": self.purple,
            "reasons": [{"code": r.code, "colour": r.colour, "text": r.text}
                        for r in self.reasons],
            "management": [{"code": m.code, "colour": m.colour, "text": m.text}
                           for m in self.management],
        }


def compute_bmi(height_cm: float, weight_kg: float) -> float:
    """Body-mass index ``weight / (height/100)²`` rounded to one decimal (kg/m²).

    Examples
    --------
    >>> compute_bmi(160, 64)
    25.0
    """
    return float(np.round(weight_kg / (height_cm / 100.0) ** 2, 1))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def validate_findings(
    findings: Mapping[str, Any], *, table: CriteriaTable
) -> tuple[dict[str, float], frozenset[str]]:
    """Check one pregnancy's findings against the table's fields and codes.

    Parameters
    ----------
    findings:
        Numeric fields and ``conditions`` (a list of criterion codes).
    table:
        The assessment table.

    Returns
    -------
    tuple
        The numeric values by field (with ``bmi`` computed from height and weight when
        missing) and the set of asserted codes.

    Raises
    ------
    InputError
        One problem per unknown field, unknown or non-assertable code, non-number, value
        outside the possible range, non-integer count, or inconsistent BMI.
    """
    if not isinstance(findings, Mapping):
        raise InputError.single("findings must be a JSON object", field="findings")
    problems: list[Problem] = []
    values: dict[str, float] = {}
    for name, value in findings.items():
        if name == CONDITIONS_FIELD or value is None:
            continue
        spec = table.fields.get(name)
        if spec is None:
            problems.append(Problem(reason="unknown field", field=name, code="unknown_field"))
        elif not _is_number(value) or not math.isfinite(value):
            problems.append(Problem(reason=f"must be a number, got {value!r}", field=name))
        elif not spec.valid.contains(value):
            problems.append(Problem(
                reason=f"{value:g} {spec.unit} is impossible (possible: {spec.valid})",
                field=name, code="out_of_range"))
        elif spec.integer and value != int(value):
            problems.append(Problem(reason=f"must be a whole number, got {value:g}", field=name))
        else:
            values[name] = float(value)

    height, weight = values.get("height_cm"), values.get("weight_kg")
    given_bmi = findings.get("bmi")
    bad_bmi = given_bmi is not None and "bmi" not in values
    if (height is None) != (weight is None) and given_bmi is None:
        missing = "weight_kg" if weight is None else "height_cm"
        if findings.get(missing) is None:
            problems.append(Problem(reason="height_cm and weight_kg are needed together "
                                    "to compute the BMI", field=missing))
    if height is not None and weight is not None and not bad_bmi:
        computed = compute_bmi(height, weight)
        spec = table.fields["bmi"]
        if "bmi" in values:
            if abs(values["bmi"] - computed) > table.bmi_tolerance:
                problems.append(Problem(
                    reason=f"given BMI {values['bmi']:g} differs from {computed:g} computed "
                    "from height_cm and weight_kg", field="bmi", code="inconsistent"))
        elif not spec.valid.contains(computed):
            problems.append(Problem(
                reason=f"BMI {computed:g} computed from height_cm and weight_kg is impossible "
                f"(possible: {spec.valid})", field="bmi", code="out_of_range"))
        else:
            values["bmi"] = computed

    raw_codes = findings.get(CONDITIONS_FIELD)
    codes: set[str] = set()
    if raw_codes is not None:
        if isinstance(raw_codes, str) or not isinstance(raw_codes, Sequence | set | frozenset):
            problems.append(Problem(reason="must be a list of condition codes",
                                    field=CONDITIONS_FIELD))
            raw_codes = []
        for code in raw_codes:
            problem = _code_problem(code, table)
            if problem is None:
                codes.add(code)
            else:
                problems.append(problem)
    if problems:
        raise InputError(problems)
    return values, frozenset(codes)


def _code_problem(code: Any, table: CriteriaTable, row: int | None = None) -> Problem | None:
    """Why an asserted code is refused, or ``None`` when it is accepted."""
    criterion = table.by_code.get(code) if isinstance(code, str) else None
    if criterion is None:
        return Problem(reason=f"unknown condition code {code!r}", field=CONDITIONS_FIELD,
                       row=row, code="unknown_code")
    if not criterion.assertable:
        fields = ", ".join(sorted({r.field for r in criterion.rules}))
        return Problem(reason=f"'{code}' follows from the field(s) {fields}; give the value",
                       field=CONDITIONS_FIELD, row=row, code="not_assertable")
    return None


def _ordered_reasons(triggered: Iterable[Criterion], table: CriteriaTable,
                     language: str) -> tuple[Reason, ...]:
    position = {code: i for i, code in enumerate(table.codes)}
    ranked = table.ranked_colours

    def key(c: Criterion) -> tuple[int, int]:
        severity = -ranked.index(c.colour) if c.colour in ranked else 1
        return severity, position[c.code]

    return tuple(Reason(c.code, c.colour, c.text(language)) for c in sorted(triggered, key=key))


def _management(colour: str, purple: bool, table: CriteriaTable,
                language: str) -> tuple[ManagementAction, ...]:
    actions: list[ManagementAction] = []
    seen: set[str] = set()
    for required_by in (colour, "purple") if purple else (colour,):
        for code in table.management[required_by]:
            if code not in seen:
                seen.add(code)
                actions.append(ManagementAction(code, required_by,
                                                table.actions[code].text(language)))
    return tuple(actions)


def grade(
    findings: Mapping[str, Any],
    *,
    table: CriteriaTable | None = None,
    language: str = "zh-CN",
) -> GradeResult:
    """Grade one pregnancy.

    Parameters
    ----------
    findings:
        Numeric fields and ``conditions`` (criterion codes), e.g.
        ``{"age": 36, "hb_g_l": 95, "conditions": ["scarred_uterus"]}``.
    table:
        The assessment table; default the national table in force today.
    language:
        ``"zh-CN"`` (default) or ``"en"`` for the reason and action texts.

    Returns
    -------
    GradeResult

    Raises
    ------
    InputError
        For unknown fields or codes and impossible values (all of them at once).
    """
    language_key(language)
    table = table if table is not None else load_table()
    values, asserted = validate_findings(findings, table=table)
    triggered: dict[str, Criterion] = {}
    dependent = []
    for criterion in table.criteria:
        if criterion.requires:
            dependent.append(criterion)
        elif (criterion.assertable and criterion.code in asserted) or any(
                rule.field in values and rule.interval.contains(values[rule.field])
                for rule in criterion.rules):
            triggered[criterion.code] = criterion
    for criterion in dependent:
        rule_holds = not criterion.rules or any(
            rule.field in values and rule.interval.contains(values[rule.field])
            for rule in criterion.rules)
        if (criterion.assertable and criterion.code in asserted) or (
                rule_holds and all(code in triggered for code in criterion.requires)):
            triggered[criterion.code] = criterion
    ranks = [table.rank(c.colour) for c in triggered.values() if c.colour in table.ranked_colours]
    colour = table.ranked_colours[max(ranks, default=0)]
    purple = any(c.colour == "purple" for c in triggered.values())
    return GradeResult(
        colour=colour,
        purple=purple,
        reasons=_ordered_reasons(triggered.values(), table, language),
        management=_management(colour, purple, table, language),
        table_family=table.family,
        table_version=table.version,
        language=language,
    )


@dataclass(frozen=True)
class BatchGrades:
    """Grades of many pregnancies (rows of the input frame, same order).

    Attributes
    ----------
    index:
        The index of the input frame.
    codes:
        Criterion codes, the columns of ``triggered``.
    triggered:
        ``(pregnancies, criteria)`` booleans: which criteria each pregnancy triggers.
    colour:
        Result colour of each pregnancy (strings).
    purple:
        Purple flag of each pregnancy.
    table_family, table_version:
        The assessment table used.
    """

    index: pd.Index
    codes: tuple[str, ...]
    triggered: NDArray[np.bool_]
    colour: NDArray[np.object_]
    purple: NDArray[np.bool_]
    table_family: str
    table_version: str

    def reason_codes(self, row: int) -> list[str]:
        """Codes triggered by the pregnancy at position ``row`` (table order)."""
        return [self.codes[j] for j in np.flatnonzero(self.triggered[row])]

    def to_frame(self) -> pd.DataFrame:
        """``colour``, ``purple`` and ``reasons`` (codes joined by ``;``) per pregnancy."""
        codes = np.array(self.codes, dtype=object)
        reasons = [";".join(codes[row]) for row in self.triggered]
        return pd.DataFrame({"colour": self.colour, "purple": self.purple,
                             "reasons": reasons}, index=self.index)


_TEXT_TYPES = (str, np.str_)


def _asserted_codes(cells: pd.Series) -> pd.Series:
    """One entry per (row position, code): cells are lists of codes or ``;``-strings."""
    cells = cells.reset_index(drop=True)
    is_text = cells.map(type).isin(_TEXT_TYPES).to_numpy()
    if is_text.any():
        split = cells[is_text].str.strip().str.split(r"\s*;\s*", regex=True)
        cells = cells.where(~is_text, split)
    exploded = cells.explode()
    return exploded[exploded.notna() & (exploded != "")]


def grade_batch(frame: pd.DataFrame, *, table: CriteriaTable | None = None) -> BatchGrades:
    """Grade many pregnancies at once (vectorised over pregnancies with NumPy).

    Equal, row by row, to :func:`grade` (same colours, purple flags and reasons).

    Parameters
    ----------
    frame:
        One row per pregnancy: numeric columns named like the table's fields (``NaN`` = not
        given) and optionally ``conditions``, each cell a list of codes or a ``;``-separated
        string.
    table:
        The assessment table; default the national table in force today.

    Returns
    -------
    BatchGrades

    Raises
    ------
    InputError
        Listing every bad cell with its 1-based row and column.
    """
    table = table if table is not None else load_table()
    n = len(frame)
    problems: list[Problem] = []
    columns: dict[str, NDArray[np.float64]] = {}
    for name in frame.columns:
        if name == CONDITIONS_FIELD:
            continue
        spec = table.fields.get(name) if isinstance(name, str) else None
        if spec is None:
            problems.append(Problem(reason="unknown field", field=str(name),
                                    code="unknown_field"))
            continue
        raw = frame[name]
        if raw.dtype == bool:
            numbers = pd.Series(np.nan, index=raw.index)
        else:
            numbers = pd.to_numeric(raw, errors="coerce")
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        given = raw.notna().to_numpy()
        bad_type = given & ~np.isfinite(values)
        with np.errstate(invalid="ignore"):
            bad_range = np.isfinite(values) & ~spec.valid.mask(values)
            bad_integer = (np.isfinite(values) & ~bad_range & (values != np.floor(values))
                           if spec.integer else np.zeros(n, dtype=bool))
        for row in np.flatnonzero(bad_type):
            problems.append(Problem(reason=f"must be a number, got {raw.iloc[row]!r}",
                                    field=name, row=int(row) + 1))
        for row in np.flatnonzero(bad_range):
            problems.append(Problem(
                reason=f"{values[row]:g} {spec.unit} is impossible (possible: {spec.valid})",
                field=name, row=int(row) + 1, code="out_of_range"))
        for row in np.flatnonzero(bad_integer):
            problems.append(Problem(reason=f"must be a whole number, got {values[row]:g}",
                                    field=name, row=int(row) + 1))
        columns[name] = np.where(bad_type | bad_range | bad_integer, np.nan, values)

    nan = np.full(n, np.nan)
    height = columns.get("height_cm", nan)
    weight = columns.get("weight_kg", nan)
    bmi_given = frame["bmi"].notna().to_numpy() if "bmi" in frame.columns else np.zeros(n, bool)
    height_given = (frame["height_cm"].notna().to_numpy() if "height_cm" in frame.columns
                    else np.zeros(n, bool))
    weight_given = (frame["weight_kg"].notna().to_numpy() if "weight_kg" in frame.columns
                    else np.zeros(n, bool))
    for row in np.flatnonzero((height_given != weight_given) & ~bmi_given):
        missing = "weight_kg" if height_given[row] else "height_cm"
        problems.append(Problem(reason="height_cm and weight_kg are needed together to "
                                "compute the BMI", field=missing, row=int(row) + 1))
    with np.errstate(invalid="ignore"):
        computed = np.round(weight / (height / 100.0) ** 2, 1)
        bmi = columns.get("bmi", nan)
        spec = table.fields["bmi"]
        both = np.isfinite(bmi) & np.isfinite(computed)
        inconsistent = both & (np.abs(bmi - computed) > table.bmi_tolerance)
        derive = ~bmi_given & np.isfinite(computed)
        impossible = derive & ~spec.valid.mask(computed)
    for row in np.flatnonzero(inconsistent):
        problems.append(Problem(
            reason=f"given BMI {bmi[row]:g} differs from {computed[row]:g} computed from "
            "height_cm and weight_kg", field="bmi", row=int(row) + 1, code="inconsistent"))
    for row in np.flatnonzero(impossible):
        problems.append(Problem(
            reason=f"BMI {computed[row]:g} computed from height_cm and weight_kg is impossible "
            f"(possible: {spec.valid})", field="bmi", row=int(row) + 1, code="out_of_range"))
    columns["bmi"] = np.where(derive & ~impossible, computed, bmi)

    position = {code: j for j, code in enumerate(table.codes)}
    # column-major: each criterion is one contiguous column of pregnancies
    asserted = np.zeros((n, len(table.criteria)), dtype=bool, order="F")
    if CONDITIONS_FIELD in frame.columns:
        exploded = _asserted_codes(frame[CONDITIONS_FIELD])
        known = exploded.where(exploded.map(type).isin(_TEXT_TYPES)).map(position)
        for row, code in exploded[known.isna()].items():
            problems.append(Problem(reason=f"unknown condition code {code!r}",
                                    field=CONDITIONS_FIELD, row=int(row) + 1,
                                    code="unknown_code"))
        rows = known.index.to_numpy()[known.notna().to_numpy()]
        cols = known.dropna().to_numpy(dtype=np.int64)
        assertable = np.array([c.assertable for c in table.criteria])
        for row, col in zip(rows[~assertable[cols]], cols[~assertable[cols]], strict=True):
            problem = _code_problem(table.codes[col], table, int(row) + 1)
            if problem is not None:
                problems.append(problem)
        asserted[rows, cols] = True
    if problems:
        raise InputError(problems)

    triggered = np.zeros(asserted.shape, dtype=bool, order="F")
    for requires_pass in (False, True):
        for j, criterion in enumerate(table.criteria):
            if bool(criterion.requires) != requires_pass:
                continue
            by_rule = np.zeros(n, dtype=bool)
            for rule in criterion.rules:
                by_rule |= rule.interval.mask(columns.get(rule.field, nan))
            if criterion.requires:
                if not criterion.rules:
                    by_rule[:] = True
                for code in criterion.requires:
                    by_rule &= triggered[:, position[code]]
            triggered[:, j] = by_rule | (asserted[:, j] & criterion.assertable)

    best = np.zeros(n, dtype=np.int64)
    purple = np.zeros(n, dtype=bool)
    for j, criterion in enumerate(table.criteria):
        if criterion.colour in table.ranked_colours:
            np.maximum(best, np.where(triggered[:, j], table.rank(criterion.colour), 0), out=best)
        else:
            purple |= triggered[:, j]
    return BatchGrades(
        index=frame.index,
        codes=table.codes,
        triggered=triggered,
        colour=np.array(table.ranked_colours, dtype=object)[best],
        purple=purple,
        table_family=table.family,
        table_version=table.version,
    )
