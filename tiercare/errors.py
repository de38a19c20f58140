"""Domain errors shared by every TierCare module.

A bad input is reported as :class:`InputError` carrying one :class:`Problem` per offending
field/row, so that the CLI can exit with code 2 and the API can answer 422 with the same list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused.

    Attributes
    ----------
    reason:
        Human-readable explanation (English; the web layer may translate known reasons).
    field:
        The field or column at fault, when there is one.
    row:
        1-based data row number (header excluded) or record index, when the input is tabular.
    code:
        Short machine-readable code, e.g. ``unknown_division``.
    """

    reason: str
    field: str | None = None
    row: int | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


def problems_from_validation(errors: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Turn Pydantic/FastAPI validation errors (``loc``, ``msg``, ``type``) into problems.

    An integer in the location is taken as the 1-based row of a list body (``[2, "name"]`` is
    row 3, field ``name``); the transport part of the location (``body``, ``query``, ``path``,
    ``form``) is kept as the field prefix only when nothing else names the field.
    """
    problems = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "__root__"]
        row = next((part + 1 for part in loc if isinstance(part, int)), None)
        names = [str(part) for part in loc if not isinstance(part, int)]
        if len(names) > 1 and names[0] in {"body", "query", "path", "form", "header", "cookie"}:
            names = names[1:]
        problems.append(Problem(
            reason=str(error.get("msg", "invalid value")).removeprefix("Value error, "),
            field=".".join(names) or None, row=row, code=str(error.get("type", "invalid"))))
    return problems


class TierCareError(Exception):
    """Base class of all TierCare errors."""


@dataclass
class InputError(TierCareError):
    """Input refused; carries every problem found (not only the first)."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    @classmethod
    def single(cls, reason: str, *, field: str | None = None, row: int | None = None,
               code: str = "invalid") -> InputError:
        """Build an error holding one problem."""
        return cls([Problem(reason=reason, field=field, row=row, code=code)])

    def summary(self) -> str:
        """One line per problem."""
        return "\n".join(str(p) for p in self.problems) or "invalid input"


class NotFoundError(TierCareError):
    """A referenced object does not exist (or is outside the caller's scope)."""


class ForbiddenError(TierCareError):
    """The caller's role may not do this (HTTP 403; CLI exit 2)."""


class ConflictError(TierCareError):
    """A request conflicts with the current state (slot full, duplicate, bad transition)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


class InfeasibleError(TierCareError):
    """An optimisation model has no feasible solution."""
