r"""A small, safe expression language for indicators and validation rules.

An expression is arithmetic over names and numbers: ``+ - * /``, unary minus, parentheses,
integer and decimal numbers, and names (data elements such as ``opd_visits``, element totals
restricted to a tier group such as ``opd_visits__primary_care``, or operational facts such as
``population`` and ``access_covered_15``). It is parsed with Python's :mod:`ast` and every node
is checked against that short list; nothing is ever evaluated by Python itself.

Evaluation works element-wise on NumPy arrays or pandas Series (one entry per unit × period),
so that a pivot of hundreds of units is one pass. A division by zero gives ``NaN`` ("no value"),
not an error — wherever it happens, so ``0 / (1 / 0)`` is ``NaN`` too — and a missing input
stays ``NaN``.

Examples
--------
>>> e = parse_expression("100 * (a - b) / a")
>>> sorted(e.names)
['a', 'b']
>>> float(e.evaluate({"a": 4, "b": 1}))
75.0
>>> parse_expression("__import__('os')")
Traceback (most recent call last):
...
tiercare.errors.InputError: field 'expression': function calls are not allowed
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiercare.errors import InputError

MAX_LENGTH = 1000
MAX_DEPTH = 30
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _divide(a: Any, b: Any) -> Any:
    """``a / b`` with NaN wherever ``b`` is zero (also inside a larger expression)."""
    out = np.divide(a, b)
    if np.ndim(out) == 0:
        return float("nan") if np.all(np.asarray(b) == 0) else out
    if hasattr(out, "index") and hasattr(out, "where"):  # pandas Series
        return out.where(np.asarray(b) != 0)
    return np.where(np.asarray(b) == 0, np.nan, out)


_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: _divide}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
_REFUSED = {
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attributes ('a.b') are not allowed",
    ast.Subscript: "indexing is not allowed",
    ast.Compare: "comparisons are not allowed in an expression",
    ast.BoolOp: "'and'/'or' are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.IfExp: "'if … else' is not allowed",
}


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its names and its syntax tree.

    Attributes
    ----------
    text:
        The expression as written.
    names:
        Every name it refers to.
    """

    text: str
    names: frozenset[str]
    tree: ast.Expression

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluate with ``values`` (numbers, arrays or Series) for every name.

        Raises
        ------
        InputError
            When a name has no value.
        """
        missing = sorted(self.names - set(values))
        if missing:
            raise InputError.single(f"no value for {', '.join(missing)}", field="expression")
        with np.errstate(divide="ignore", invalid="ignore"):
            result = _walk(self.tree.body, values)
        return _finite(result)


def _finite(value: Any) -> Any:
    """Replace ±inf (a division by zero) by NaN."""
    if isinstance(value, int | float | np.floating | np.integer):
        number = float(value)
        return number if np.isfinite(number) else float("nan")
    return value.where(np.isfinite(value)) if hasattr(value, "where") and hasattr(
        value, "index") else np.where(np.isfinite(value), value, np.nan)


def _walk(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        value = values[node.id]
        return float(value) if isinstance(value, int) else value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_walk(node.left, values), _walk(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_walk(node.operand, values))
    raise AssertionError(f"unchecked node {type(node).__name__}")  # parse_expression checked


def _check(node: ast.AST, depth: int, names: set[str]) -> None:
    if depth > MAX_DEPTH:
        raise InputError.single(f"nested deeper than {MAX_DEPTH} levels", field="expression")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise InputError.single(f"only numbers are allowed, not {node.value!r}",
                                    field="expression")
        return
    if isinstance(node, ast.Name):
        if not NAME_RE.match(node.id):
            raise InputError.single(
                f"name '{node.id}' must be lower-case letters, digits and '_'",
                field="expression")
        names.add(node.id)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise InputError.single(f"operator {type(node.op).__name__} is not allowed "
                                    "(only + - * /)", field="expression")
        _check(node.left, depth + 1, names)
        _check(node.right, depth + 1, names)
        return
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise InputError.single(f"operator {type(node.op).__name__} is not allowed",
                                    field="expression")
        _check(node.operand, depth + 1, names)
        return
    reason = _REFUSED.get(type(node), f"{type(node).__name__} is not allowed")
    raise InputError.single(reason, field="expression")


def parse_expression(text: str, *, field: str = "expression") -> Expression:
    """Parse and check an expression.

    Parameters
    ----------
    text:
        The expression, e.g. ``"100 * opd_visits__primary_care / opd_visits"``.
    field:
        Field name used in the error (``numerator``, ``denominator``…).

    Raises
    ------
    InputError
        On a syntax error or any construct outside arithmetic, names and numbers.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError.single("the expression is empty", field=field)
    if len(text) > MAX_LENGTH:
        raise InputError.single(f"longer than {MAX_LENGTH} characters", field=field)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InputError.single(f"syntax error: {exc.msg}", field=field) from exc
    names: set[str] = set()
    try:
        _check(tree.body, 0, names)
    except InputError as exc:
        raise InputError.single(exc.problems[0].reason, field=field) from exc
    return Expression(text=text.strip(), names=frozenset(names), tree=tree)


def split_name(name: str) -> tuple[str, str]:
    """Split ``element__group`` into ``(element, group)``; ``group`` is ``""`` when absent.

    Examples
    --------
    >>> split_name("opd_visits__primary_care")
    ('opd_visits', 'primary_care')
    >>> split_name("opd_visits")
    ('opd_visits', '')
    """
    element, _, group = name.partition("__")
    return element, group
