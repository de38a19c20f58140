"""Property tests: monotonicity of the grade and batch grading equal to one-by-one grading."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.maternal.criteria import load_table
from tiercare.maternal.grading import grade, grade_batch

TABLE = load_table()
SIX = load_table(family="example-six-colour")

# values drawn from the boundaries of the table (and their neighbours) or anywhere possible
BOUNDARIES: dict[str, list[float]] = {
    "age": [18, 18.5, 34.9, 35, 39.9, 40],
    "bmi": [18.4, 18.5, 25, 25.1, 27.9, 28],
    "hb_g_l": [40, 40.1, 59.9, 60, 60.1, 109.9, 110],
    "platelets_1e9_l": [0, 29.9, 30, 49.9, 50, 99.9, 100],
    "pulmonary_artery_pressure_mmhg": [29.9, 30, 49.9, 50],
    "ejection_fraction_pct": [39.9, 40, 50, 50.1],
    "months_since_uterine_surgery": [0, 17.9, 18],
    "creatinine_ratio_to_uln": [1.0, 1.01, 1.5, 1.51],
}
INTEGER_FIELDS = {"nyha_class": (1, 4), "fetuses": (1, 4), "previous_uterine_surgeries": (0, 3),
                  "abortions": (0, 5)}
RANGES = {name: (TABLE.fields[name].valid.lower, TABLE.fields[name].valid.upper)
          for name in BOUNDARIES}


def _value(name: str) -> st.SearchStrategy[float]:
    low, high = RANGES[name]
    return st.one_of(st.sampled_from(BOUNDARIES[name]),
                     st.floats(low, high, allow_nan=False).map(lambda v: round(v, 1)))


def _field_strategies() -> dict[str, st.SearchStrategy[Any]]:
    strategies: dict[str, st.SearchStrategy[Any]] = {
        name: _value(name) for name in BOUNDARIES if name != "bmi"}
    strategies.update({name: st.integers(low, high)
                       for name, (low, high) in INTEGER_FIELDS.items()})
    return strategies


FIELDS = _field_strategies()
ASSERTABLE = sorted(c.code for c in TABLE.criteria if c.assertable)


@st.composite
def findings(draw: st.DrawFn, table_codes: list[str] = ASSERTABLE) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=6))
    result: dict[str, Any] = {name: draw(FIELDS[name]) for name in chosen}
    body = draw(st.sampled_from(["none", "bmi", "height_weight"]))
    if body == "bmi":
        result["bmi"] = draw(_value("bmi"))
    elif body == "height_weight":
        result["height_cm"] = draw(st.floats(140, 190).map(lambda v: round(v, 1)))
        result["weight_kg"] = draw(st.floats(40, 120).map(lambda v: round(v, 1)))
    result["conditions"] = draw(st.lists(st.sampled_from(table_codes), unique=True,
                                         max_size=4))
    return result


def _rank(colour: str) -> int:
    return TABLE.rank(colour)


@settings(max_examples=150, deadline=None)
@given(base=findings(), data=st.data())
def test_adding_a_finding_never_lowers_the_colour(base: dict[str, Any],
                                                  data: st.DataObject) -> None:
    before = grade(base, table=TABLE)
    extended = dict(base)
    missing = [name for name in FIELDS if name not in base]
    kinds = ["condition"] + (["field"] if missing else [])
    if "bmi" not in base and "height_cm" not in base:
        kinds.append("bmi")
    kind = data.draw(st.sampled_from(kinds))
    if kind == "condition":
        extended["conditions"] = [*base["conditions"], data.draw(st.sampled_from(ASSERTABLE))]
    elif kind == "field":
        name = data.draw(st.sampled_from(missing))
        extended[name] = data.draw(FIELDS[name])
    else:
        extended["bmi"] = data.draw(_value("bmi"))
    after = grade(extended, table=TABLE)
    assert _rank(after.colour) >= _rank(before.colour)
    assert after.purple or not before.purple
    assert {r.code for r in before.reasons} <= {r.code for r in after.reasons}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records = [{k: v for k, v in row.items() if k != "conditions"} for row in rows]
    frame = pd.DataFrame.from_records(records, columns=sorted({k for r in records for k in r}))
    frame["conditions"] = [row["conditions"] for row in rows]
    return frame


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(findings(), min_size=1, max_size=25))
def test_batch_equals_one_by_one(rows: list[dict[str, Any]]) -> None:
    batch = grade_batch(_frame(rows), table=TABLE)
    for i, row in enumerate(rows):
        single = grade(row, table=TABLE)
        assert batch.colour[i] == single.colour
        assert bool(batch.purple[i]) == single.purple
        assert set(batch.reason_codes(i)) == {r.code for r in single.reasons}


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(findings(sorted(c.code for c in SIX.criteria if c.assertable)),
                     min_size=1, max_size=10))
def test_batch_equals_one_by_one_on_the_six_colour_table(rows: list[dict[str, Any]]) -> None:
    batch = grade_batch(_frame(rows), table=SIX)
    for i, row in enumerate(rows):
        assert batch.colour[i] == grade(row, table=SIX).colour


def test_batch_accepts_semicolon_strings_and_reports_rows() -> None:
    frame = pd.DataFrame({
        "age": [30, 41, np.nan],
        "hb_g_l": [120, np.nan, 55],
        "conditions": ["", "hiv; asthma", None],
    })
    graded = grade_batch(frame, table=TABLE)
    assert graded.colour.tolist() == ["green", "orange", "orange"]
    assert graded.purple.tolist() == [False, True, False]
    table = graded.to_frame()
    assert table.loc[1, "reasons"] == "age_40_or_over;asthma;hiv"
    # codes as NumPy strings (e.g. drawn with numpy) are codes too
    numpy_codes = pd.DataFrame({"conditions": [list(np.array(["hiv", "asthma"]))]})
    assert grade_batch(numpy_codes, table=TABLE).colour.tolist() == ["orange"]

    bad = pd.DataFrame({
        "age": [3, 30, 30],
        "platelets_1e9_l": [150, -5, 150],
        "height_cm": [160, 160, np.nan],
        "weight_kg": [60, 60, 70],
        "fetuses": [1, 1.5, 1],
        "shoe_size": [1, 2, 3],
        "conditions": [["hiv"], ["nope"], ["advanced_maternal_age"]],
    })
    with pytest.raises(InputError) as info:
        grade_batch(bad, table=TABLE)
    found = {(p.field, p.row) for p in info.value.problems}
    assert found == {("age", 1), ("platelets_1e9_l", 2), ("fetuses", 2), ("shoe_size", None),
                     ("height_cm", 3), ("conditions", 2), ("conditions", 3)}
