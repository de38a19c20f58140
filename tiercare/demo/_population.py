"""Integer apportionment: split exact totals into integer parts.

The demo county must reproduce published totals *exactly* (e.g. 200,352 residents, 108,660 of
them male) while every village gets a plausible integer share. Two tools do it:

* :func:`round_to_total` rounds non-negative real targets ``x_i`` (with ``sum(x) == total``) to
  integers ``n_i`` with ``sum(n) == total`` and ``floor(x_i) <= n_i <= ceil(x_i)``: the largest-
  remainder (Hamilton) method. Ties in the remainder are broken by position, so the result is
  deterministic.
* :func:`split_column` splits each row total ``t_i`` into a sub-count ``k_i`` (e.g. males) so that
  ``0 <= k_i <= t_i``, ``sum(k) == K`` exactly, and ``k_i / t_i`` follows the wanted shares.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def round_to_total(
    values: ArrayLike, total: int, *, upper: ArrayLike | None = None
) -> NDArray[np.int64]:
    """Round real targets to integers that sum exactly to ``total`` (largest remainder).

    Parameters
    ----------
    values:
        Non-negative real targets; their sum should be ``total`` (up to rounding error).
    total:
        The exact integer sum wanted.
    upper:
        Optional integer upper bound of each part (a part is never rounded above it).

    Returns
    -------
    numpy.ndarray
        Integers ``n`` with ``n.sum() == total`` and ``floor(x) <= n <= floor(x) + 1``.

    Raises
    ------
    ValueError
        If the targets cannot be rounded to the total within the bounds.

    Examples
    --------
    >>> round_to_total([1.5, 1.5, 1.0], 4).tolist()
    [2, 1, 1]
    """
    x = np.asarray(values, dtype=float)
    if np.any(x < 0) or not np.all(np.isfinite(x)):
        raise ValueError("targets must be finite and non-negative")
    base = np.floor(x + 1e-9).astype(np.int64)
    cap = (
        np.full(x.shape, np.iinfo(np.int64).max, dtype=np.int64)
        if upper is None
        else np.asarray(upper, dtype=np.int64)
    )
    base = np.minimum(base, cap)
    deficit = int(total - base.sum())
    if deficit < 0:
        raise ValueError(f"targets sum above the total {total}")
    remainder = np.where(base < cap, x - base, -np.inf)
    order = np.argsort(-remainder, kind="stable")
    eligible = order[np.isfinite(remainder[order])]
    if deficit > eligible.size:
        raise ValueError(f"cannot reach the total {total} within the bounds")
    result = base.copy()
    result[eligible[:deficit]] += 1
    return result


def apportion(weights: ArrayLike, total: int) -> NDArray[np.int64]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Examples
    --------
    >>> apportion([1, 1, 1], 10).tolist()
    [4, 3, 3]
    """
    w = np.asarray(weights, dtype=float)
    if w.sum() <= 0:
        raise ValueError("weights must have a positive sum")
    return round_to_total(w / w.sum() * total, total)


def split_column(
    row_totals: ArrayLike, shares: ArrayLike, column_total: int
) -> NDArray[np.int64]:
    """Integer sub-counts of each row that follow ``shares`` and sum to ``column_total``.

    The targets are ``x_i = min(λ s_i t_i, t_i)`` with the common factor ``λ`` that makes them
    sum to ``column_total``: rows that would exceed their total are clipped and ``λ`` is solved
    again for the others (each round clips at least one more row, so at most one round per
    row), then :func:`round_to_total` makes them integers bounded by the row totals.

    Parameters
    ----------
    row_totals:
        Integer total of each row (e.g. the population of each village).
    shares:
        Wanted share of each row in the sub-count (e.g. the share of males), in [0, 1].
    column_total:
        Exact sum of the sub-counts over all rows.

    Examples
    --------
    >>> split_column([100, 200], [0.5, 0.5], 160).tolist()
    [53, 107]
    """
    totals = np.asarray(row_totals, dtype=np.int64)
    if not 0 <= column_total <= int(totals.sum()):
        raise ValueError("the column total must lie between 0 and the sum of the rows")
    wanted = np.asarray(shares, dtype=float) * totals
    clipped = np.zeros(totals.shape, dtype=bool)
    x = wanted
    for _ in range(len(totals) + 1):
        free_sum = float(wanted[~clipped].sum())
        rest = column_total - float(totals[clipped].sum())
        if free_sum <= 0:
            if rest > 1e-9:
                raise ValueError("the shares cannot reach the column total")
            factor = 0.0
        else:
            factor = rest / free_sum
        x = np.where(clipped, totals, factor * wanted)
        over = ~clipped & (x > totals)
        if not over.any():
            break
        clipped |= over
    return round_to_total(x, column_total, upper=totals)
