"""Paging shared by every list: the largest page and one page of a query with its total.

DESIGN.md: every list endpoint paginates. The API's ``offset``/``limit`` query parameters
(:data:`tiercare.web.deps.Offset`, :data:`tiercare.web.deps.Limit`) and the services that
check a window themselves use :data:`MAX_PAGE`, so a page can never be larger in one place than
in another.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tiercare.errors import InputError, Problem

MAX_PAGE = 500
"""Largest ``limit`` a list accepts."""


def check_window(offset: int, limit: int) -> None:
    """Refuse a page outside ``offset ≥ 0`` and ``1 ≤ limit ≤ MAX_PAGE``.

    Raises
    ------
    InputError
        Naming ``limit`` and/or ``offset``.
    """
    problems = []
    if not 1 <= limit <= MAX_PAGE:
        problems.append(Problem(f"limit must be 1..{MAX_PAGE}", field="limit"))
    if offset < 0:
        problems.append(Problem("offset must be ≥ 0", field="offset"))
    if problems:
        raise InputError(problems)


def fetch_page(session: Session, query: Select[Any], *, offset: int,
               limit: int) -> tuple[int, list[Any]]:
    """Number of rows ``query`` matches and the ``limit`` rows after the first ``offset``.

    ``query`` carries its own filters and order; the count runs on the same filters (without
    the order), so ``total`` always describes what paging walks through. A query of one
    entity or column gives those values; a query of several columns gives its rows.
    """
    check_window(offset, limit)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    window = query.offset(offset).limit(limit)
    if len(query.column_descriptions) > 1:
        return total or 0, list(session.execute(window).all())
    return total or 0, list(session.scalars(window))
