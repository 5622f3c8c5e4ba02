"""Compiled inner loops (Numba) for the hot paths of augmentation and gap filling, with numpy
equivalents.

The batched numpy formulation of window resampling needs two row gathers, a subtraction, a
broadcast multiply and an add over the whole batch — five passes over memory plus temporaries,
most of the time of an augmented batch. One fused loop reads each input row once and writes each
output row once. The kernels are compiled on first use (cached on disk); they run serially and
release the GIL, so they neither fight torch's intra-op threads nor block a loader thread.

Every kernel here has a numpy twin with *identical* float32 results (same operations in the same
order; no fast-math contraction), which the tests compare bit for bit. When Numba is missing
(it is a declared dependency, but a stripped install may lack it) the numpy twin runs.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "compiled",
    "fill_rows",
    "resample_rows",
    "resample_rows_numpy",
    "scale_rows",
    "scale_rows_numpy",
]


def resample_rows_numpy(
    rows: NDArray[np.float32],
    t: int,
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    n_out: int,
) -> NDArray[np.float32]:
    """Linear resampling of time-major samples; the reference for :func:`resample_rows`.

    Args:
        rows: float32 (N · T, C) — sample i's time step j is row ``i · T + j``.
        t: steps per sample T.
        start, end: float64 (N,) fractional positions of the first and last output step.
        n_out: output steps.

    Returns:
        float32 (N, n_out, C): output step k of sample i reads position
        ``start_i + (end_i − start_i) · k / (n_out − 1)`` clipped to [0, T − 1]; an integer
        position copies its row exactly.
    """
    n = start.shape[0]
    k = np.arange(n_out, dtype=np.float64)[None, :]
    pos = start.reshape(n, 1) + (end.reshape(n, 1) - start.reshape(n, 1)) * k / max(n_out - 1, 1)
    np.clip(pos, 0.0, t - 1.0, out=pos)
    lo = pos.astype(np.intp)  # floor (pos >= 0)
    w = pos - lo
    idx_lo = lo + (np.arange(n, dtype=np.intp) * t)[:, None]
    idx_hi = idx_lo + (w > 0.0)  # weight 0: the upper neighbour is the lower one (no NaN leak)
    a = rows.take(idx_lo, axis=0)
    b = rows.take(idx_hi, axis=0)
    b -= a
    b *= w.astype(np.float32)[:, :, None]
    a += b
    return a


def scale_rows_numpy(
    tm: NDArray[np.float32], curve: NDArray[np.float32], which: NDArray[np.intp]
) -> None:
    """``tm[which[j], k, :] *= curve[j, k]``, in place (tm: (N, T, C); curve: (len(which), T))."""
    tm[which] *= curve[:, :, None]


def _resample_rows_loop(
    rows: Any, t: int, start: Any, end: Any, n_out: int, out: Any
) -> None:  # pragma: no cover - compiled
    n = start.shape[0]
    c = rows.shape[1]
    denom = max(n_out - 1, 1)
    top = t - 1.0
    pos = np.empty(n_out)
    for i in range(n):
        s = start[i]
        span = end[i] - s
        base = i * t
        for k in range(n_out):  # positions first: this loop vectorises (the division)
            pos[k] = min(max(s + span * k / denom, 0.0), top)
        for k in range(n_out):
            p = pos[k]
            lo = int(p)
            w64 = p - lo
            r0 = base + lo
            if w64 > 0.0:
                w = np.float32(w64)
                for ch in range(c):
                    a = rows[r0, ch]
                    out[i, k, ch] = a + (rows[r0 + 1, ch] - a) * w
            else:
                for ch in range(c):
                    out[i, k, ch] = rows[r0, ch]


def _scale_rows_loop(tm: Any, curve: Any, which: Any) -> None:  # pragma: no cover - compiled
    c = tm.shape[2]
    for j in range(which.shape[0]):
        i = which[j]
        for k in range(tm.shape[1]):
            f = curve[j, k]
            for ch in range(c):
                tm[i, k, ch] *= f


def _fill_rows_loop(
    v: Any, centers: Any, max_gap: float, hold: bool
) -> None:  # pragma: no cover - compiled
    # the twin is cropglobe.composite._fill_flat: the same float64 formula, the same tests
    m, t = v.shape
    for i in range(m):
        p = -1  # the last valid step so far
        for j in range(t):
            if np.isnan(v[i, j]):
                continue
            if p < 0:
                if hold:
                    for k in range(j):
                        v[i, k] = v[i, j]
            elif j > p + 1:
                x0 = centers[p]
                x1 = centers[j]
                if x1 - x0 <= max_gap:
                    y0 = np.float64(v[i, p])
                    dy = np.float64(v[i, j]) - y0
                    for k in range(p + 1, j):
                        v[i, k] = np.float32(y0 + (centers[k] - x0) / (x1 - x0) * dy)
            p = j
        if hold and 0 <= p < t - 1:
            for k in range(p + 1, t):
                v[i, k] = v[i, p]


@functools.lru_cache(maxsize=1)
def compiled() -> dict[str, Any] | None:
    """The compiled kernels by name, or None without Numba (imported on first use: importing
    Numba costs about 0.4 s, which commands that never augment should not pay)."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None

    def jit(fn: Any) -> Any:
        try:
            return numba.njit(cache=True, nogil=True)(fn)
        except RuntimeError:  # pragma: no cover - no writable cache location: compile each run
            return numba.njit(cache=False, nogil=True)(fn)

    return {
        "resample_rows": jit(_resample_rows_loop),
        "scale_rows": jit(_scale_rows_loop),
        "fill_rows": jit(_fill_rows_loop),
    }


def resample_rows(
    rows: NDArray[np.float32],
    t: int,
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    n_out: int,
) -> NDArray[np.float32]:
    """Fused :func:`resample_rows_numpy` (same arguments, bit-identical result)."""
    kernels = compiled()
    if kernels is None:  # pragma: no cover
        return resample_rows_numpy(rows, t, start, end, n_out)
    out = np.empty((start.shape[0], n_out, rows.shape[1]), dtype=np.float32)
    kernels["resample_rows"](
        rows,
        int(t),
        np.ascontiguousarray(start, dtype=np.float64),
        np.ascontiguousarray(end, dtype=np.float64),
        int(n_out),
        out,
    )
    return out


def scale_rows(
    tm: NDArray[np.float32], curve: NDArray[np.float32], which: NDArray[np.intp]
) -> None:
    """Fused :func:`scale_rows_numpy` (in place; ``tm`` C-contiguous (N, T, C))."""
    kernels = compiled()
    if kernels is None:  # pragma: no cover
        scale_rows_numpy(tm, curve, which)
        return
    kernels["scale_rows"](tm, np.ascontiguousarray(curve, dtype=np.float32), which.astype(np.intp))


def fill_rows(
    v: NDArray[np.float32], centers: NDArray[np.float64], max_gap: float | None, hold: bool
) -> bool:
    """Gap-fill the rows of a C-contiguous float32 (M, T) array in place, as
    :func:`cropglobe.composite.fill_gaps` does (bit-identical to its numpy path).

    Returns:
        False without Numba (nothing was done; the caller runs the numpy path).
    """
    kernels = compiled()
    if kernels is None:  # pragma: no cover
        return False
    kernels["fill_rows"](
        v,
        np.ascontiguousarray(centers, dtype=np.float64),
        np.inf if max_gap is None else float(max_gap),
        bool(hold),
    )
    return True
