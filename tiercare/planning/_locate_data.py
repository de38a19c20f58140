"""Validated location-allocation instances (private to :mod:`tiercare.planning.locate`).

An instance holds the demand × candidate cost matrix in a compressed, demand-major form whose
rows are sorted by cost: ``costs.indices[costs.indptr[i]:costs.indptr[i + 1]]`` are the
candidates that demand ``i`` can reach, nearest first. Pairs that are absent are unreachable
(beyond the matrix's cutoff), so a 100,000 × 5,000 matrix with a travel-time cutoff costs only its
stored pairs in memory.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from tiercare.errors import InputError, Problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MAX_LISTED = 20


@dataclass(frozen=True)
class SortedCosts:
    """Demand-major sparse costs with each row sorted by increasing cost.

    Attributes
    ----------
    n, m:
        Numbers of demand points (rows) and candidates (columns).
    indptr:
        Row pointers, length ``n + 1``.
    indices:
        Candidate index of each stored pair.
    data:
        Cost of each stored pair (finite, non-negative).
    rows:
        Demand index of each stored pair (the expanded ``indptr``).
    """

    n: int
    m: int
    indptr: IntArray
    indices: npt.NDArray[np.int32]
    data: FloatArray
    rows: npt.NDArray[np.int32]

    @property
    def nnz(self) -> int:
        """Number of stored (reachable) pairs."""
        return int(self.data.size)

    @classmethod
    def from_coo(cls, rows: npt.ArrayLike, cols: npt.ArrayLike, data: npt.ArrayLike, *,
                 n: int, m: int, upto: float = math.inf) -> SortedCosts:
        """Sort validated pairs by (demand, cost, candidate) and compress them.

        Pairs costing more than ``upto`` are dropped first (coverage models never use them).
        """
        r = np.asarray(rows, dtype=np.int32)
        c = np.asarray(cols, dtype=np.int32)
        d = np.asarray(data, dtype=np.float64)
        if upto < math.inf:
            near = d <= upto
            r, c, d = r[near], c[near], d[near]
        if r.size and np.any(r[1:] < r[:-1]):
            order = np.lexsort((c, r))
            r, c, d = r[order], c[order], d[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
        order = _row_sort(indptr, d)
        return cls(n=n, m=m, indptr=indptr, indices=c[order], data=d[order], rows=r)

    def select(self, keep: BoolArray) -> SortedCosts:
        """Keep the stored pairs where ``keep`` is true (rows stay sorted)."""
        r = self.rows[keep]
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=self.n), out=indptr[1:])
        return SortedCosts(n=self.n, m=self.m, indptr=indptr, indices=self.indices[keep],
                           data=self.data[keep], rows=r)

    def row_min(self) -> FloatArray:
        """Smallest cost of each row (``inf`` for a row with no stored pair)."""
        out = np.full(self.n, np.inf)
        nonempty = self.indptr[1:] > self.indptr[:-1]
        out[nonempty] = self.data[self.indptr[:-1][nonempty]]
        return out


def _row_sort(indptr: IntArray, data: FloatArray, *, cap: int = 1 << 22) -> IntArray:
    """Permutation sorting each CSR row by value (stable), rows left in place.

    Rows are processed in blocks of similar length, padded into a 2-D array and sorted along
    the rows, so the work is proportional to the stored pairs rather than a global sort.
    """
    lengths = np.diff(indptr)
    perm = np.arange(data.size, dtype=np.int64)
    by_len = np.argsort(lengths, kind="stable")
    by_len = by_len[lengths[by_len] > 1]
    i = 0
    while i < by_len.size:
        longest = int(lengths[by_len[i]])
        j = i + 1
        while j < by_len.size and (j - i + 1) * int(lengths[by_len[j]]) <= cap:
            j += 1
        rows = by_len[i:j]
        width = int(lengths[rows[-1]]) if j > i + 1 else longest
        col = np.arange(width)
        valid = col[None, :] < lengths[rows][:, None]
        idx = np.minimum(indptr[rows][:, None] + col[None, :], data.size - 1)
        vals = np.where(valid, data[idx], np.inf)
        order = np.argsort(vals, axis=1, kind="stable")
        starts = indptr[rows]
        lens = lengths[rows]
        dest = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        dest += np.arange(int(lens.sum()))
        perm[dest] = np.take_along_axis(idx, order, axis=1)[valid]
        i = j
    return perm


def _ids(values: Sequence[Hashable] | None, size: int, field: str,
         problems: list[Problem]) -> tuple[Hashable, ...]:
    if values is None:
        return tuple(range(size))
    ids = tuple(values)
    if len(ids) != size:
        problems.append(Problem(reason=f"expected {size} ids, got {len(ids)}", field=field,
                                code="length_mismatch"))
        return tuple(range(size))
    problems.extend(duplicate_ids(ids, field))
    return ids


def duplicate_ids(ids: Sequence[Hashable], field: str) -> list[Problem]:
    """One problem per repeated id, naming ``field``, its 1-based row and its first row."""
    seen: dict[Hashable, int] = {}
    found: list[Problem] = []
    for k, v in enumerate(ids):
        if v in seen:
            found.append(Problem(reason=f"duplicate id {v!r} (first at row {seen[v] + 1})",
                                 field=field, row=k + 1, code="duplicate_id"))
        else:
            seen[v] = k
    return found


def _vector(values: npt.ArrayLike | None, size: int, field: str, problems: list[Problem],
            *, default: float | None) -> FloatArray | None:
    """Validate a finite, non-negative vector of the given length."""
    if values is None:
        return None if default is None else np.full(size, default)
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        problems.append(Problem(reason="must be numbers", field=field, code="not_numeric"))
        return None
    if arr.size != size:
        problems.append(Problem(reason=f"expected {size} values, got {arr.size}", field=field,
                                code="length_mismatch"))
        return None
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    for k in bad[:_MAX_LISTED]:
        problems.append(Problem(reason=f"must be a finite number >= 0, got {arr[k]}",
                                field=field, row=int(k) + 1, code="bad_value"))
    if bad.size > _MAX_LISTED:
        problems.append(Problem(reason=f"{bad.size - _MAX_LISTED} more bad values", field=field))
    return arr


def costs_from_matrix(costs: Any, problems: list[Problem], *,
                      upto: float = math.inf) -> SortedCosts | None:
    """Convert a dense array (``inf`` = unreachable) or a SciPy sparse matrix.

    In a sparse matrix every *stored* entry is a reachable pair, including explicit zeros
    (a demand point at the candidate's site); entries that are not stored are unreachable.
    """
    if sp.issparse(costs):
        # CSR keeps rows grouped; summing duplicates is linear once indices are sorted
        csr = sp.csr_matrix(costs, dtype=np.float64, copy=True)
        csr.sum_duplicates()
        n, m = csr.shape
        rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(csr.indptr))
        cols, data = csr.indices, csr.data
    else:
        try:
            dense = np.asarray(costs, dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(Problem(reason="cost matrix must be numeric", field="costs"))
            return None
        if dense.ndim != 2:
            problems.append(Problem(reason=f"cost matrix must be 2-D, got {dense.ndim}-D",
                                    field="costs"))
            return None
        n, m = dense.shape
        nan = np.argwhere(np.isnan(dense))
        for i, j in nan[:_MAX_LISTED]:
            problems.append(Problem(reason=f"cost is NaN (candidate column {j + 1})",
                                    field="costs", row=int(i) + 1, code="bad_value"))
        finite = np.isfinite(dense)
        rows, cols = np.nonzero(finite)
        data = dense[finite]
    neg = np.flatnonzero(~np.isfinite(data) | (data < 0))
    for k in neg[:_MAX_LISTED]:
        problems.append(Problem(
            reason=f"cost must be finite and >= 0, got {data[k]} (candidate column {cols[k] + 1})",
            field="costs", row=int(rows[k]) + 1, code="bad_value"))
    if n == 0 or m == 0:
        problems.append(Problem(reason=f"cost matrix is empty ({n} × {m})", field="costs"))
    if problems:
        return None
    return SortedCosts.from_coo(rows, cols, data, n=n, m=m, upto=upto)


def costs_from_pairs(demand: npt.ArrayLike, candidate: npt.ArrayLike, cost: npt.ArrayLike, *,
                     n: int, m: int, problems: list[Problem], upto: float = math.inf,
                     fields: tuple[str, str, str] = ("demand", "candidate", "cost"),
                     ) -> SortedCosts | None:
    """Validate long-form pairs (0-based indices); every problem names its 1-based row.

    ``fields`` names the demand, candidate and cost inputs in the problems (the pairs of one
    tier of a two-tier model, for instance).
    """
    demand_field, candidate_field, cost_field = fields
    r = np.asarray(demand).reshape(-1)
    c = np.asarray(candidate).reshape(-1)
    d = np.asarray(cost, dtype=np.float64).reshape(-1)
    if not (r.size == c.size == d.size):
        problems.append(Problem(reason="demand, candidate and cost must have the same length",
                                field=cost_field))
        return None
    bad_rows: list[Problem] = []
    bad = np.flatnonzero((r < 0) | (r >= n))
    bad_rows += [Problem(reason=f"demand index {r[k]} out of range 0..{n - 1}",
                         field=demand_field, row=int(k) + 1) for k in bad[:_MAX_LISTED]]
    bad = np.flatnonzero((c < 0) | (c >= m))
    bad_rows += [Problem(reason=f"candidate index {c[k]} out of range 0..{m - 1}",
                         field=candidate_field, row=int(k) + 1) for k in bad[:_MAX_LISTED]]
    bad = np.flatnonzero(~np.isfinite(d) | (d < 0))
    bad_rows += [Problem(reason=f"cost must be finite and >= 0, got {d[k]}", field=cost_field,
                         row=int(k) + 1, code="bad_value") for k in bad[:_MAX_LISTED]]
    if bad_rows:
        problems.extend(bad_rows)
        return None
    problems.extend(_duplicate_pairs(r.astype(np.int64) * m + c, candidate_field))
    if problems:
        return None
    return SortedCosts.from_coo(r, c, d, n=n, m=m, upto=upto)


def _duplicate_pairs(key: IntArray, field: str) -> list[Problem]:
    """One problem per row whose ``key`` (demand × m + candidate) repeats an earlier row's."""
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    return [Problem(reason=f"duplicate pair (same as row {order[k] + 1})", field=field,
                    row=int(order[k + 1]) + 1, code="duplicate_pair")
            for k in dup[:_MAX_LISTED]]


def costs_from_id_pairs(demand: Sequence[Hashable], candidate: Sequence[Hashable],
                        cost: npt.ArrayLike, *, demand_ids: Sequence[Hashable],
                        candidate_ids: Sequence[Hashable], problems: list[Problem],
                        upto: float = math.inf,
                        fields: tuple[str, str, str] = ("demand", "candidate", "cost"),
                        ) -> SortedCosts | None:
    """Validate long-form pairs given by id; every problem names its 1-based row.

    ``demand_ids`` and ``candidate_ids`` are the universes (rows and columns, in order). A
    pair naming an id outside its universe is a problem naming the field; the repeated pairs
    among the others are listed too, but their costs are not checked then. Otherwise the pairs
    go through :func:`costs_from_pairs`, with the same ``fields``. An empty universe is refused
    as ``no pairs``.
    """
    d_index = {v: i for i, v in enumerate(demand_ids)}
    c_index = {v: i for i, v in enumerate(candidate_ids)}
    rows = np.fromiter((d_index.get(v, -1) for v in demand), dtype=np.int64, count=len(demand))
    cols = np.fromiter((c_index.get(v, -1) for v in candidate), dtype=np.int64,
                       count=len(candidate))
    unknown: list[Problem] = []
    for name, field, arr, vals in (("demand", fields[0], rows, demand),
                                   ("candidate", fields[1], cols, candidate)):
        bad = np.flatnonzero(arr < 0)
        unknown += [Problem(reason=f"unknown {name} id {vals[k]!r}", field=field,
                            row=int(k) + 1, code="unknown_id") for k in bad[:_MAX_LISTED]]
        if bad.size > _MAX_LISTED:
            unknown.append(Problem(reason=f"{bad.size - _MAX_LISTED} more unknown {name} ids",
                                   field=field))
    problems.extend(unknown)
    sc = None
    if unknown:
        # an unknown row gets a key of its own, so that only known pairs can repeat
        key = np.where((rows >= 0) & (cols >= 0), rows * len(candidate_ids) + cols,
                       -1 - np.arange(rows.size))
        problems.extend(_duplicate_pairs(key, fields[1]))
    else:
        sc = costs_from_pairs(rows, cols, cost, n=len(demand_ids), m=len(candidate_ids),
                              problems=problems, upto=upto, fields=fields)
    if not demand_ids or not candidate_ids:
        problems.append(Problem(reason="no pairs", field=fields[2]))
    return sc


@dataclass(frozen=True)
class Instance:
    """A validated instance shared by all models.

    ``fixed`` candidates are open in every solution (existing facilities); ``forbidden``
    candidates are closed in every solution (e.g. sites being closed or not for sale).
    """

    costs: SortedCosts
    weights: FloatArray
    demand_ids: tuple[Hashable, ...]
    candidate_ids: tuple[Hashable, ...]
    fixed: BoolArray
    forbidden: BoolArray
    capacities: FloatArray | None
    site_costs: FloatArray | None


def build_instance(costs: SortedCosts | None, weights: npt.ArrayLike | None, *,
                   demand_ids: Sequence[Hashable] | None,
                   candidate_ids: Sequence[Hashable] | None,
                   fixed: Collection[Hashable] | None, forbidden: Collection[Hashable] | None,
                   capacities: npt.ArrayLike | None, costs_per_site: npt.ArrayLike | None,
                   problems: list[Problem]) -> Instance:
    """Validate everything but the matrix itself and raise one :class:`InputError` if needed."""
    if costs is None:
        raise InputError(problems)
    n, m = costs.n, costs.m
    w = _vector(weights, n, "weights", problems, default=1.0)
    d_ids = _ids(demand_ids, n, "demand_ids", problems)
    c_ids = _ids(candidate_ids, m, "candidate_ids", problems)
    index = {v: k for k, v in enumerate(c_ids)}
    masks = []
    for name, chosen in (("fixed", fixed), ("forbidden", forbidden)):
        mask = np.zeros(m, dtype=bool)
        for v in chosen or ():
            k = index.get(v)
            if k is None:
                problems.append(Problem(reason=f"unknown candidate id {v!r}", field=name,
                                        code="unknown_id"))
            else:
                mask[k] = True
        masks.append(mask)
    both = np.flatnonzero(masks[0] & masks[1])
    for k in both[:_MAX_LISTED]:
        problems.append(Problem(reason=f"candidate {c_ids[k]!r} is both fixed and forbidden",
                                field="fixed", code="conflict"))
    caps = _vector(capacities, m, "capacities", problems, default=None)
    site_costs = _vector(costs_per_site, m, "costs_per_site", problems, default=None)
    if problems:
        raise InputError(problems)
    assert w is not None
    return Instance(costs=costs, weights=w, demand_ids=d_ids, candidate_ids=c_ids,
                    fixed=masks[0], forbidden=masks[1], capacities=caps, site_costs=site_costs)


def check_count(name: str, value: int | None, *, inst: Instance, required: bool,
                problems: list[Problem]) -> None:
    """Check a facility count ``p`` against the candidate pool and the fixed set."""
    if value is None:
        if required:
            problems.append(Problem(reason="is required for this model", field=name,
                                    code="missing"))
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        problems.append(Problem(reason=f"must be an integer, got {value!r}", field=name))
        return
    usable = int((~inst.forbidden).sum())
    nfixed = int(inst.fixed.sum())
    if value < 1:
        problems.append(Problem(reason=f"must be >= 1, got {value}", field=name))
    elif value > usable:
        problems.append(Problem(
            reason=f"p = {value} is larger than the {usable} usable candidates", field=name,
            code="p_too_large"))
    elif value < nfixed:
        problems.append(Problem(
            reason=f"p = {value} is smaller than the {nfixed} fixed (kept open) facilities",
            field="fixed", code="fixed_exceeds_p"))


def group_identical_rows(indptr: IntArray, indices: npt.NDArray[np.int32], m: int,
                         ) -> tuple[IntArray, IntArray]:
    """Group rows whose *sets* of column indices are identical.

    Each row's set is hashed with two independent 64-bit random keys per column (sum modulo
    2**64), so rows land in the same group only when both hashes and the row length agree; the
    chance that two different sets collide is about 2**-128.

    Returns
    -------
    group, first:
        ``group[i]`` is the group of row ``i`` (0..g-1, in order of first appearance) and
        ``first[g]`` is the first row of group ``g``.
    """
    n = indptr.size - 1
    rng = np.random.default_rng(0x7C3A)
    keys = rng.integers(0, np.iinfo(np.int64).max, size=(2, m), dtype=np.int64).view(np.uint64)
    lengths = np.diff(indptr)
    nonempty = lengths > 0
    h = np.zeros((3, n), dtype=np.uint64)
    starts = indptr[:-1][nonempty]
    for k in range(2):
        with np.errstate(over="ignore"):
            h[k, nonempty] = np.add.reduceat(keys[k][indices], starts) if indices.size else 0
    h[2] = lengths.astype(np.uint64)
    _, first, group = np.unique(h, axis=1, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[group.reshape(-1)].astype(np.int64), first[order].astype(np.int64)


def gather(indptr: IntArray, rows: IntArray) -> IntArray:
    """Positions of the stored entries of ``rows`` in a CSR structure."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return offsets + np.arange(total)


def column_order(indptr: IntArray, indices: npt.NDArray[np.int32], m: int,
                 ) -> tuple[IntArray, IntArray]:
    """Stored-entry positions grouped by column (stable), and the column pointers.

    Uses SciPy's linear-time CSR → CSC conversion rather than a comparison sort.
    """
    n = indptr.size - 1
    pos = np.arange(indices.size, dtype=np.int64)
    csc = sp.csr_matrix((pos, indices, indptr), shape=(n, m)).tocsc()
    return np.asarray(csc.data, dtype=np.int64), csc.indptr.astype(np.int64)


def describe_ids(ids: Sequence[Hashable]) -> str:
    """Short listing of ids for an error message."""
    shown = ", ".join(repr(v) for v in ids[:_MAX_LISTED])
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return shown + more
