"""Compiled cost-distance kernel behind :mod:`tiercare.planning.raster` (private).

The grid graph is never materialised: a multi-source Dijkstra with an indexed 4-ary heap walks
the cells, computing each move's cost on the fly from per-cell arrays. Memory is a few arrays of
one value per cell, so 16 million cells fit in well under a gigabyte.

Cost of a move
--------------
A move from cell ``a`` to cell ``b`` over the offset ``(dr, dc)`` has the horizontal length
``d = hypot(dr * cell_height, dc * cell_width)`` (metres). Its time is the line integral of the
pace (s/m) along the straight segment between the two cell centres:

* a rook or bishop move spends half its length in each of the two cells:
  ``t = d * (p_a + p_b) / 2`` (scikit-image ``MCP_Geometric``'s convention);
* a knight's move (offset (1, 2) or (2, 1)) crosses four cells and spends exactly a quarter of
  its length in each: ``t = d * (p_a + p_i + p_j + p_b) / 4`` where ``i`` and ``j`` are the two
  cells between. A knight's move therefore never jumps over an impassable cell.

Anisotropic travel multiplies each crossed cell's flat pace by a slope factor that depends on
the cell's travel mode and on the slope of the move ``s = dz / d`` (rise over run, in the
direction of travel): 1 for motorised cells, Tobler's ratio for walking cells and the inverse
speed ratio of the power model for bicycling cells (see :mod:`tiercare.planning.raster`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

MODE_MOTORIZED = 0
MODE_WALKING = 1
MODE_BICYCLING = 2

_GRAVITY = 9.80665
_HEAP_SHIFT = 2
_HEAP_ARITY = 4  # a 4-ary heap: shallower than a binary one, children share a cache line


@numba.njit(cache=True, nogil=True)
def tobler_pace_factor(slope: float) -> float:
    """Return ``tobler(0) / tobler(slope)``: how much slower than on the flat one walks."""
    return math.exp(3.5 * (abs(slope + 0.05) - 0.05))


@numba.njit(cache=True, nogil=True)
def bicycle_speed(flat_speed: float, slope: float, mass: float, crr: float, cda: float,
                  air_density: float, max_factor: float) -> float:
    """Speed (m/s) on ``slope`` of a cyclist who rides at ``flat_speed`` (m/s) on the flat.

    The rider keeps the power needed on the flat,
    ``P = v0 * (m g Crr + rho CdA v0^2 / 2)``, and on a slope of angle ``theta`` solves
    ``rho CdA v^3 / 2 + m g (sin theta + Crr cos theta) v - P = 0`` for its positive root
    (Cardano); the result is capped at ``max_factor * v0`` downhill.
    """
    if flat_speed <= 0.0:
        return 0.0
    theta = math.atan(slope)
    a = 0.5 * air_density * cda
    power = flat_speed * (mass * _GRAVITY * crr + a * flat_speed * flat_speed)
    b = mass * _GRAVITY * (math.sin(theta) + crr * math.cos(theta))
    p = b / a
    q = -power / a
    disc = 0.25 * q * q + p * p * p / 27.0
    if disc >= 0.0:
        root = math.sqrt(disc)
        u = -0.5 * q + root
        w = -0.5 * q - root
        v = math.copysign(abs(u) ** (1.0 / 3.0), u) + math.copysign(abs(w) ** (1.0 / 3.0), w)
    else:
        m = 2.0 * math.sqrt(-p / 3.0)
        arg = 1.5 * q / p * math.sqrt(-3.0 / p)
        arg = min(1.0, max(-1.0, arg))
        v = m * math.cos(math.acos(arg) / 3.0)
    return min(v, max_factor * flat_speed)


@numba.njit(cache=True, nogil=True)
def _cell_pace(cell: int, slope: float, pace: np.ndarray, mode: np.ndarray,
               anisotropic: bool, bike: np.ndarray) -> float:
    p = pace[cell]
    if not anisotropic or p == np.inf:
        return p
    m = mode[cell]
    if m == MODE_WALKING:
        return p * tobler_pace_factor(slope)
    if m == MODE_BICYCLING:
        v = bicycle_speed(1.0 / p, slope, bike[0], bike[1], bike[2], bike[3], bike[4])
        return 1.0 / v
    return p


@numba.njit(cache=True, nogil=True)
def _sift_up(heap: np.ndarray, keys: np.ndarray, pos: np.ndarray, i: int, node: int,
             key: float) -> None:
    while i > 0:
        parent = (i - 1) >> _HEAP_SHIFT
        pkey = keys[parent]
        if pkey <= key:
            break
        pnode = heap[parent]
        heap[i] = pnode
        keys[i] = pkey
        pos[pnode] = i
        i = parent
    heap[i] = node
    keys[i] = key
    pos[node] = i


@numba.njit(cache=True, nogil=True)
def _sift_down(heap: np.ndarray, keys: np.ndarray, pos: np.ndarray, size: int, node: int,
               key: float) -> None:
    i = 0
    while True:
        first = (i << _HEAP_SHIFT) + 1
        if first >= size:
            break
        best = first
        bkey = keys[first]
        last = min(first + _HEAP_ARITY, size)
        for child in range(first + 1, last):
            ckey = keys[child]
            if ckey < bkey:
                best = child
                bkey = ckey
        if bkey >= key:
            break
        bnode = heap[best]
        heap[i] = bnode
        keys[i] = bkey
        pos[bnode] = i
        i = best
    heap[i] = node
    keys[i] = key
    pos[node] = i


@numba.njit(cache=True, nogil=True)
def cost_distance_kernel(
    pace: np.ndarray,
    mode: np.ndarray,
    elevation: np.ndarray,
    nrows: int,
    ncols: int,
    offsets: np.ndarray,
    lengths: np.ndarray,
    sources: np.ndarray,
    max_cost: float,
    anisotropic: bool,
    slope_sign: float,
    bike: np.ndarray,
    dist: np.ndarray,
    label: np.ndarray,
    pos: np.ndarray,
    heap: np.ndarray,
    keys: np.ndarray,
    settled: np.ndarray,
) -> int:
    """Multi-source Dijkstra on the implicit grid graph; returns the number of settled cells.

    Parameters
    ----------
    pace:
        Flat pace per cell (s/m, C order, ``inf`` = impassable).
    mode, elevation:
        Per-cell travel mode code and elevation (m); read only when ``anisotropic``.
    offsets:
        ``(K, 6)`` int64 rows ``dr, dc, ir, ic, jr, jc``; ``(ir, ic)``/``(jr, jc)`` are the
        offsets of the two intermediate cells of a knight's move and ``(0, 0)`` otherwise.
    lengths:
        Length (m) of each offset.
    sources:
        Flat indices of the sources; source ``k`` labels the cells it reaches first with ``k``.
    max_cost:
        Cells whose cost would exceed this are left unreached.
    slope_sign:
        ``+1`` when travelling away from the sources, ``-1`` when travelling towards them (the
        search then follows the moves backwards).
    bike:
        Bicycle model parameters ``mass, crr, cda, air_density, max_factor``.
    dist, label, pos:
        Work arrays, ``inf``, ``-1`` and ``-1`` everywhere on entry; ``dist``/``label`` hold the
        result on exit, ``pos`` is ``-2`` on settled cells.
    heap, keys:
        Work arrays of one entry per cell: a 4-ary heap of cells with their keys stored beside
        them (only the pages the frontier reaches are ever touched).
    settled:
        One entry per cell to have ``settled[:n]`` list the settled cells in order (used to
        reset the work arrays after a bounded run), or a shorter array not to record them.
    """
    size = 0
    for k in range(sources.shape[0]):
        s = sources[k]
        if dist[s] > 0.0:
            dist[s] = 0.0
            label[s] = k
            heap[size] = s
            keys[size] = 0.0
            pos[s] = size
            size += 1
    # all keys are zero: the array is already a heap
    n_settled = 0
    record = settled.shape[0] >= dist.shape[0]
    n_off = offsets.shape[0]
    while size > 0:
        v = heap[0]
        size -= 1
        if size > 0:
            _sift_down(heap, keys, pos, size, heap[size], keys[size])
        pos[v] = -2
        if record:
            settled[n_settled] = v
        n_settled += 1
        dv = dist[v]
        lv = label[v]
        r = v // ncols
        c = v - r * ncols
        for k in range(n_off):
            r2 = r + offsets[k, 0]
            c2 = c + offsets[k, 1]
            if r2 < 0 or r2 >= nrows or c2 < 0 or c2 >= ncols:
                continue
            u = r2 * ncols + c2
            if pos[u] == -2:
                continue
            d = lengths[k]
            slope = 0.0
            if anisotropic:
                slope = slope_sign * (elevation[u] - elevation[v]) / d
            total = _cell_pace(v, slope, pace, mode, anisotropic, bike)
            total += _cell_pace(u, slope, pace, mode, anisotropic, bike)
            if offsets[k, 2] == 0 and offsets[k, 3] == 0:
                cost = d * 0.5 * total
            else:
                i = (r + offsets[k, 2]) * ncols + c + offsets[k, 3]
                j = (r + offsets[k, 4]) * ncols + c + offsets[k, 5]
                total += _cell_pace(i, slope, pace, mode, anisotropic, bike)
                total += _cell_pace(j, slope, pace, mode, anisotropic, bike)
                cost = d * 0.25 * total
            nd = dv + cost
            if nd > max_cost or not nd < dist[u]:
                continue
            dist[u] = nd
            label[u] = lv
            if pos[u] == -1:
                size += 1
                _sift_up(heap, keys, pos, size - 1, u, nd)
            else:
                _sift_up(heap, keys, pos, pos[u], u, nd)
    return n_settled
