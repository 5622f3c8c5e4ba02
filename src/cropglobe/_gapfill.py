"""A small vectorised linear gap filler along the time axis (shared by augment and models).

Kept private and dependency-free (numpy only) so that :mod:`cropglobe.augment` and
:mod:`cropglobe.models` fill gaps exactly like each other without importing each other.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cropglobe.errors import ParameterError

__all__ = ["linear_fill"]


def linear_fill(
    values: ArrayLike, x: ArrayLike | None = None, *, edge: str = "hold"
) -> NDArray[np.float32]:
    """Fill NaN along the last axis by linear interpolation between the nearest valid steps.

    Args:
        values: float array (..., T); NaN marks a missing observation.
        x: (T,) strictly increasing time coordinate of each step (e.g. bin centres in days);
            None means equally spaced steps.
        edge: ``"hold"`` repeats the first/last valid value before/after it; ``"nan"`` leaves
            leading and trailing gaps missing.

    Returns:
        float32 array of the input's shape. Rows without any valid value stay all NaN.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.size == 0 or not np.isnan(v).any():
        return v.copy()
    t = v.shape[-1]
    xs = np.arange(t, dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    flat = v.reshape(-1, t)
    valid = ~np.isnan(flat)
    steps = np.arange(t)
    # Index of the previous / next valid step of every position (-1 / t when there is none).
    prev = np.maximum.accumulate(np.where(valid, steps, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(valid, steps, t)[:, ::-1], axis=1)[:, ::-1]
    has_prev, has_next = prev >= 0, nxt < t
    p = np.clip(prev, 0, t - 1)
    n = np.clip(nxt, 0, t - 1)
    rows = np.arange(flat.shape[0])[:, None]
    vp, vn = flat[rows, p], flat[rows, n]
    span = xs[n] - xs[p]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(span > 0, (xs[None, :] - xs[p]) / np.where(span > 0, span, 1.0), 0.0)
    inner = vp + w.astype(np.float32) * (vn - vp)
    out = np.where(valid, flat, np.where(has_prev & has_next, inner, np.nan))
    if edge == "hold":
        out = np.where(~has_prev & has_next, vn, out)
        out = np.where(has_prev & ~has_next, vp, out)
    elif edge != "nan":
        raise ParameterError(f"edge must be 'hold' or 'nan', got {edge!r}")
    return np.asarray(out, dtype=np.float32).reshape(v.shape)
