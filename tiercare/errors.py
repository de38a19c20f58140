"""Domain errors shared by every TierCare module.

A bad input is reported as :class:`InputError` carrying one :class:`Problem` per offending
field/row, so that the CLI can exit with code 2 and the API can answer 422 with the same list.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
