import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiercare.errors import InputError
from tiercare.indicators.expressions import parse_expression, split_name


def test_arithmetic_names_and_numbers():
    e = parse_expression("100 * (opd_visits__primary_care) / opd_visits")
    assert e.names == {"opd_visits__primary_care", "opd_visits"}
    assert e.evaluate({"opd_visits__primary_care": 650, "opd_visits": 1000}) == pytest.approx(65)
    assert parse_expression("-a + +b - 2.5").evaluate({"a": 1, "b": 4}) == pytest.approx(0.5)
    assert parse_expression("beds * days").evaluate({"beds": 300, "days": 31}) == 9300
    assert split_name("x__hospital") == ("x", "hospital")


def test_division_by_zero_and_missing_values_are_nan():
    e = parse_expression("a / b")
    assert math.isnan(e.evaluate({"a": 1, "b": 0}))
    out = e.evaluate({"a": np.array([1.0, 2.0, np.nan]), "b": np.array([2.0, 0.0, 1.0])})
    assert out[0] == 0.5 and np.isnan(out[1]) and np.isnan(out[2])
    with pytest.raises(InputError, match="no value for b"):
        e.evaluate({"a": 1})


@pytest.mark.parametrize("text, reason", [
    ("__import__('os')", "function calls"),
    ("open('x')", "function calls"),
    ("a.b", "attributes"),
    ("a[0]", "indexing"),
    ("a ** 2", "not allowed"),
    ("a // 2", "not allowed"),
    ("a < b", "comparisons"),
    ("a and b", "'and'/'or'"),
    ("'text'", "only numbers"),
    ("True", "only numbers"),
    ("lambda: 1", "lambdas"),
    ("a if b else c", "'if … else'"),
    ("A + 1", "lower-case"),
    ("1 +", "syntax error"),
    ("", "empty"),
    ("[1, 2]", "not allowed"),
])
def test_everything_else_is_refused(text, reason):
    with pytest.raises(InputError) as info:
        parse_expression(text, field="numerator")
    problem = info.value.problems[0]
    assert problem.field == "numerator" and reason in problem.reason


def test_depth_and_length_limits():
    with pytest.raises(InputError, match="nested deeper"):
        parse_expression("-" * 40 + "a")
    with pytest.raises(InputError, match="longer than"):
        parse_expression("a + " * 400 + "a")


# An independent evaluator over a random tree, compared with the parser's result.
_names = st.sampled_from(["a", "b", "c"])
_leaf = st.one_of(st.integers(0, 50).map(lambda n: ("num", n)), _names.map(lambda n: ("name", n)))


def _tree(children):
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children),
        st.tuples(st.just("neg"), children),
    )


_trees = st.recursive(_leaf, _tree, max_leaves=12)


def _text(t):
    if t[0] == "num":
        return str(t[1])
    if t[0] == "name":
        return t[1]
    if t[0] == "neg":
        return f"(-{_text(t[1])})"
    return f"({_text(t[1])} {t[0]} {_text(t[2])})"


def _value(t, env):
    if t[0] == "num":
        return float(t[1])
    if t[0] == "name":
        return env[t[1]]
    if t[0] == "neg":
        return -_value(t[1], env)
    left, right = _value(t[1], env), _value(t[2], env)
    if math.isnan(left) or math.isnan(right):
        return math.nan
    if t[0] == "+":
        return left + right
    if t[0] == "-":
        return left - right
    if t[0] == "*":
        return left * right
    return math.nan if right == 0 else left / right


@settings(max_examples=150, deadline=None)
@given(_trees, st.fixed_dictionaries({n: st.integers(-20, 20).map(float) for n in "abc"}))
def test_matches_an_independent_evaluator(tree, env):
    expected = _value(tree, env)
    got = parse_expression(_text(tree)).evaluate(env)
    if math.isnan(expected) or math.isinf(expected):
        assert math.isnan(got) or math.isinf(expected)
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_division_by_zero_inside_an_expression_is_nan():
    assert math.isnan(parse_expression("0 / (1 / 0)").evaluate({}))
    assert math.isnan(parse_expression("1 + a / b").evaluate({"a": 1, "b": 0}))
    out = parse_expression("1 / (a / b)").evaluate({"a": np.array([1.0, 2.0]),
                                                   "b": np.array([0.0, 4.0])})
    assert np.isnan(out[0]) and out[1] == 2.0
