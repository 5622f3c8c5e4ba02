"""Harmonic (Fourier) coefficients of each pixel's series, fitted by gap-aware least squares.

For every pixel and band (or index) the series y(t) over the season window is fitted by

    f(t) = c + Σ_{k=1..n} a_k cos(2π k ω t) + b_k sin(2π k ω t),

with t the bin centre as a fraction of the year (day of season / 365). Only valid (non-NaN)
observations enter a fit. The order ``n`` and the frequency ``ω`` are parameters: the defaults
n = 3, ω = 1 (one cycle per year, as in the authors' earlier harmonic work) are documented as an
assumption because the paper does not give them; n = 2 is a common, more robust choice on gappy
data, and ω = 1.5 or 2 fits a single growing season more tightly within a May–Nov window.

Algorithm (vectorised, no Python loop per pixel): with the design matrix A (T, P), P = 2n + 1,
and the validity mask w ∈ {0, 1} of a pixel-band, the normal equations are
(Aᵀ diag(w) A) β = Aᵀ diag(w) y. The P × P Gram matrices of a whole chunk are one matrix
product W @ O, with O[t] = A[t] ⊗ A[t] the outer products, the right-hand sides are Y₀ @ A
(missing values set to 0), and the systems are solved in float64 by a Cholesky factorisation
vectorised over the batch. Pixels whose bands share one validity pattern (clouds mask every band
at once) share one Gram matrix and are solved with C right-hand sides at once. A system that is
ill-conditioned (smallest relative pivot < 1e-5, e.g. a few observations clustered at one end of
the window) is re-solved by SVD of its weighted design matrix — the minimum-norm least-squares
solution ``lstsq`` gives — because the normal equations square the condition number.

A pixel-band with fewer than ``min_obs`` (default 2n + 1) valid observations is
*underdetermined*: its coefficients (and RMSE) are NaN, and the number of such pixels is logged
and kept in ``Harmonics.n_underdetermined_`` (``policy="raise"`` makes it an error instead).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils.validation import check_is_fitted

from cropglobe.bands import band_index
from cropglobe.errors import DataFormatError, GridError
from cropglobe.features._base import PAPER_WINDOW, SeriesTransformer, WindowSpec, resolve_window
from cropglobe.features.indices import _index_name, compute_indices
from cropglobe.series import TimeGrid

__all__ = [
    "HarmonicFit",
    "Harmonics",
    "evaluate_harmonics",
    "fit_harmonics",
    "harmonic_design",
    "harmonic_names",
    "sparse_fit_note",
]

logger = logging.getLogger(__name__)

F64 = NDArray[np.float64]
_POLICIES = ("nan", "raise")
#: Systems whose smallest relative Cholesky pivot falls below this are re-solved from the
#: weighted design matrix by SVD (exactly what ``lstsq`` does): the normal equations square
#: the condition number, so clustered observations would otherwise lose accuracy.
_ILL = 1e-5
DAYS_PER_YEAR = 365.0
#: harmonic fits with fewer window steps per coefficient than this are called unstable
STEPS_PER_COEFFICIENT = 3


def sparse_fit_note(n_harmonics: int, steps: int) -> str | None:
    """Why fits of order ``n_harmonics`` on ``steps`` window steps are unstable, in words, or
    None when there are at least :data:`STEPS_PER_COEFFICIENT` steps per coefficient.

    Each fit has 2n + 1 coefficients; with few steps each, the fits follow noise and the gaps
    of the window, and one crop's coefficients differ between groups (on CAWa's 13 steps,
    random forests on n = 3 coefficients transfer at a third of the accuracy of n = 1's,
    ``docs/results.md``)."""
    coefficients = 2 * n_harmonics + 1
    if n_harmonics <= 0 or steps >= STEPS_PER_COEFFICIENT * coefficients:
        return None
    return (
        f"each harmonic fit has {coefficients} coefficients (n_harmonics={n_harmonics}) for at "
        f"most {steps} time steps of the window; with under {STEPS_PER_COEFFICIENT} steps per "
        "coefficient the fits follow noise and gaps, and one crop's coefficients differ "
        "between groups (on CAWa's 13 steps, rf-harmonic transfers far worse at n=3 than at "
        "n=1)"
    )


def harmonic_design(t: NDArray[np.floating[Any]], n_harmonics: int, omega: float) -> F64:
    """Design matrix of the harmonic model.

    Args:
        t: (T,) times as a fraction of the year.
        n_harmonics: order n (number of cos/sin pairs), >= 0.
        omega: base frequency ω in cycles per year.

    Returns:
        float64 (T, 2n + 1): columns 1, cos(2π·1·ωt), sin(2π·1·ωt), …, cos(2πnωt), sin(2πnωt).
    """
    tt = np.asarray(t, dtype=np.float64).reshape(-1)
    cols = [np.ones_like(tt)]
    for k in range(1, n_harmonics + 1):
        arg = 2.0 * np.pi * k * omega * tt
        cols += [np.cos(arg), np.sin(arg)]
    return np.stack(cols, axis=1)


def harmonic_names(n_harmonics: int) -> list[str]:
    """Coefficient suffixes in design-matrix order: ``const``, ``h1_cos``, ``h1_sin``, …"""
    out = ["const"]
    for k in range(1, n_harmonics + 1):
        out += [f"h{k}_cos", f"h{k}_sin"]
    return out


def evaluate_harmonics(
    coef: NDArray[np.floating[Any]], t: NDArray[np.floating[Any]], omega: float = 1.0
) -> F64:
    """The fitted curve: coefficients (..., 2n + 1) at times t (T,) -> float64 (..., T)."""
    c = np.asarray(coef, dtype=np.float64)
    n = (c.shape[-1] - 1) // 2
    return c @ harmonic_design(t, n, omega).T


@dataclass
class HarmonicFit:
    """Result of :func:`fit_harmonics`.

    Attributes:
        coef: float64 (N, C, 2n + 1) coefficients (NaN where underdetermined).
        n_obs: int64 (N, C) number of valid observations that entered each fit.
        rmse: float64 (N, C) root-mean-square residual over the valid observations (None unless
            requested; NaN where underdetermined).
        determined: bool (N, C), True where the fit had at least ``min_obs`` observations.
    """

    coef: F64
    n_obs: NDArray[np.int64]
    rmse: F64 | None
    determined: NDArray[np.bool_]


def _cholesky_solve(gram_t: F64, rhs_t: F64, pairs: dict[tuple[int, int], int]) -> tuple[F64, F64]:
    """Batched Cholesky solve with the batch on the *last* axis (vectorised over systems).

    Args:
        gram_t: (P(P+1)/2, B) lower-triangle entries of B symmetric P × P Gram matrices, row
            ``pairs[(i, j)]`` holding entry (i, j), i >= j.
        rhs_t: (P, B) or (P, B, K) right-hand sides.
        pairs: (i, j) -> row of ``gram_t``.

    Returns:
        ``(x, ratio)``: x shaped like ``rhs_t``; ``ratio`` (B,) the smallest pivot relative to
        its diagonal entry (≈ 1 / condition of the system; <= 0 where the matrix is not
        numerically positive definite).
    """
    p = rhs_t.shape[0]
    extra = (slice(None),) + (None,) * (rhs_t.ndim - 2)
    low: dict[tuple[int, int], F64] = {}
    inv_d: list[F64] = []
    ratio = np.full(gram_t.shape[1], np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(p):
            diag = gram_t[pairs[(j, j)]]
            s = diag.copy()
            for q in range(j):
                s -= low[(j, q)] * low[(j, q)]
            ratio = np.fmin(ratio, s / np.abs(diag))
            inv = 1.0 / np.sqrt(s)
            inv_d.append(inv)
            for i in range(j + 1, p):
                r = gram_t[pairs[(i, j)]].copy()
                for q in range(j):
                    r -= low[(i, q)] * low[(j, q)]
                low[(i, j)] = r * inv
        z: list[F64] = []
        for i in range(p):
            r = rhs_t[i].copy()
            for q in range(i):
                r -= low[(i, q)][extra] * z[q]
            z.append(r * inv_d[i][extra])
        x: list[F64] = [z[0]] * p
        for i in reversed(range(p)):
            r = z[i].copy()
            for q in range(i + 1, p):
                r -= low[(q, i)][extra] * x[q]
            x[i] = r * inv_d[i][extra]
    return np.stack(x), np.nan_to_num(ratio, nan=-1.0)


def _zero_missing(y: NDArray[np.floating[Any]], valid: NDArray[np.bool_]) -> F64:
    """float64 copy of ``y`` with missing entries set to 0 (branch-free bit masking)."""
    if y.dtype == np.float32:
        mask = valid.view(np.int8).astype(np.int32)
        np.negative(mask, out=mask)
        return (y.view(np.int32) & mask).view(np.float32).astype(np.float64)
    out = np.asarray(y, dtype=np.float64).copy()
    out[~valid] = 0.0
    return out


class _Model:
    """Design-dependent constants of one harmonic model."""

    def __init__(self, design: F64) -> None:
        self.design = design
        p = design.shape[1]
        self.p = p
        self.pairs = {
            (i, j): k for k, (i, j) in enumerate((i, j) for i in range(p) for j in range(i + 1))
        }
        # outer_t[k] = A[:, i] * A[:, j] for pair k: the Gram entries are outer_t @ Wᵀ.
        self.outer_t = np.stack([design[:, i] * design[:, j] for (i, j) in self.pairs])
        self.count_row = self.pairs[(0, 0)]  # A[:, 0] = 1, so this entry counts observations


def _fit_chunk(
    y: NDArray[np.floating[Any]], model: _Model, min_obs: int, want_rmse: bool
) -> tuple[F64, NDArray[np.int64], F64 | None]:
    """Fit one chunk y (n, C, T) (see :func:`fit_harmonics`): coef (n, C, P), counts, rmse."""
    n, c, t = y.shape
    p = model.p
    valid = ~np.isnan(y)
    y0 = _zero_missing(y, valid).reshape(n * c, t)
    rhs_t = model.design.T @ y0.T  # (P, n*C): Aᵀ diag(w) y = Aᵀ y0
    counts = np.count_nonzero(valid, axis=2).astype(np.int64)
    ok = counts >= min_obs
    coef_t = np.empty((p, n, c), dtype=np.float64)
    shared = (valid == valid[:, :1, :]).all(axis=(1, 2)) if c > 1 else np.ones(n, dtype=bool)
    rhs3 = rhs_t.reshape(p, n, c)
    y3 = y0.reshape(n, c, t)
    # groups: (pixel positions, weights (B, T), right-hand sides (P, B[, K]), shared?)
    groups: list[tuple[NDArray[np.int64], F64, F64, bool]] = []
    s_idx = np.flatnonzero(shared)
    if s_idx.size:  # one Gram matrix per pixel, C right-hand sides
        w = valid[s_idx, 0, :].astype(np.float64)
        groups.append((s_idx, w, rhs3[:, s_idx, :], True))
    g_idx = np.flatnonzero(~shared)
    if g_idx.size:  # one Gram matrix per pixel-band
        w = valid[g_idx].reshape(-1, t).astype(np.float64)
        groups.append((g_idx, w, rhs3[:, g_idx, :].reshape(p, -1), False))
    for idx, w, rhs, per_pixel in groups:
        gram_t = model.outer_t @ w.T
        sol, ratio = _cholesky_solve(gram_t, rhs, model.pairs)
        redo = np.flatnonzero((ratio < _ILL) & (gram_t[model.count_row] >= min_obs))
        if redo.size:  # ill-conditioned: least squares on the weighted design (SVD), as lstsq
            aw = model.design[None, :, :] * w[redo, :, None]  # (R, T, P)
            if per_pixel:  # column = pixel, K = C bands
                vals = y3[idx[redo]].transpose(0, 2, 1)
            else:  # column = pixel-band
                vals = y3[idx].reshape(-1, t)[redo][:, :, None]
            beta = np.linalg.pinv(aw) @ vals  # (R, P, K)
            sol[:, redo] = np.moveaxis(beta, 1, 0).reshape(sol[:, redo].shape)
        coef_t[:, idx, :] = sol.reshape(p, idx.size, c)
    coef = np.ascontiguousarray(coef_t.transpose(1, 2, 0))
    coef[~ok] = np.nan
    rmse = None
    if want_rmse:
        pred = coef @ model.design.T
        resid = np.where(valid, y3 - pred, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rmse = np.sqrt((resid * resid).sum(axis=2) / counts)
        rmse[~ok] = np.nan
    return coef, counts, rmse


def fit_harmonics(
    values: NDArray[np.floating[Any]],
    t: NDArray[np.floating[Any]],
    n_harmonics: int = 3,
    omega: float = 1.0,
    *,
    min_obs: int | None = None,
    return_rmse: bool = False,
    chunk_size: int = 2048,
    n_jobs: int | None = None,
) -> HarmonicFit:
    """Gap-aware least-squares harmonic fit of many series at once.

    Args:
        values: float array (N, C, T) (or (N, T), treated as C = 1); NaN = missing observation.
        t: (T,) times as a fraction of the year (day of season / 365).
        n_harmonics: order n >= 0.
        omega: base frequency ω in cycles per year (> 0).
        min_obs: least number of valid observations for a fit (default and minimum 2n + 1).
        return_rmse: also compute the RMSE of the fitted curve over the valid observations.
        chunk_size: pixels per chunk (memory: about chunk_size × C × T × 30 bytes).
        n_jobs: worker threads (None = 1, -1 = all cores). Results do not depend on it.

    Returns:
        :class:`HarmonicFit` with arrays shaped (N, C, …) (C = 1 for 2-D input).

    Raises:
        DataFormatError: bad shapes or parameters.
    """
    arr = np.asarray(values)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise DataFormatError(
            f"values must be (N, C, T) or (N, T), got shape {arr.shape}; reshape the series"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    tt = np.asarray(t, dtype=np.float64).reshape(-1)
    if tt.size != arr.shape[2]:
        raise DataFormatError(
            f"t has {tt.size} times but values have {arr.shape[2]} time steps; give one per step"
        )
    if int(n_harmonics) != n_harmonics or n_harmonics < 0:
        raise DataFormatError(f"n_harmonics must be an integer >= 0, got {n_harmonics!r}")
    if not np.isfinite(omega) or omega <= 0:
        raise DataFormatError(
            f"omega must be a positive frequency in cycles per year, got {omega!r}"
        )
    p = 2 * int(n_harmonics) + 1
    need = p if min_obs is None else int(min_obs)
    if need < p:
        raise DataFormatError(
            f"min_obs={min_obs} is below the {p} coefficients of an order-{n_harmonics} fit; use "
            f"min_obs >= {p} or None (on the command line: --min-obs {p} or leave it out)"
        )
    if chunk_size < 1:
        raise DataFormatError(f"chunk_size must be a positive number of pixels, got {chunk_size}")
    model = _Model(harmonic_design(tt, int(n_harmonics), float(omega)))
    n, c, _ = arr.shape
    coef = np.empty((n, c, p), dtype=np.float64)
    counts = np.empty((n, c), dtype=np.int64)
    rmse = np.empty((n, c), dtype=np.float64) if return_rmse else None
    starts = list(range(0, n, chunk_size))

    def run(s: int) -> None:
        cf, ct, rm = _fit_chunk(arr[s : s + chunk_size], model, need, return_rmse)
        coef[s : s + chunk_size] = cf
        counts[s : s + chunk_size] = ct
        if rmse is not None and rm is not None:
            rmse[s : s + chunk_size] = rm

    jobs = 1 if n_jobs is None else (os.cpu_count() or 1) if n_jobs < 0 else max(1, int(n_jobs))
    if jobs == 1 or len(starts) == 1:
        for s in starts:
            run(s)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(jobs) as pool:
            list(pool.map(run, starts))
    return HarmonicFit(coef, counts, rmse, counts >= need)


class Harmonics(SeriesTransformer):
    """Harmonic coefficients per band (and per spectral index), gap-aware, vectorised.

    Args:
        n_harmonics: order n (number of cos/sin pairs). Default 3 (an assumption: the paper
            leaves it open; the authors' earlier work used 3).
        omega: base frequency ω in cycles per year. Default 1.
        window: season window to fit on: ``(start, end)`` days of season, a name (``"may-nov"``
            = ``"paper"`` = (121, 334), ``"full"``) or None (whole grid). Default May–Nov.
        bands: bands to fit, in this order (default: all input bands; ``()`` for indices only).
        indices: spectral indices to compute and fit too (``("NDVI",)`` …); an index that is
            already an input band is fitted once.
        scale: digital number per unit reflectance, for the indices (10,000 for Sentinel-2).
        min_obs: least valid observations per fit (default 2n + 1, the number of coefficients).
        add_rmse: append the fitted curve's RMSE (over valid observations) per series.
        policy: for underdetermined pixel-bands: ``"nan"`` (NaN features, count logged and kept
            in ``n_underdetermined_``) or ``"raise"`` (DataFormatError).
        chunk_size: pixels per chunk (bounds memory).
        n_jobs: worker threads (None = 1, -1 = all cores); results do not depend on it.
        dtype: output dtype, ``"float32"`` (default) or ``"float64"``.
        input_bands: band names of array input (ignored for SeriesSet input).
        input_grid: time grid of array input (ignored for SeriesSet input).

    Attributes:
        bands_in_, grid_in_: what fit saw.
        window_idx_: int64 (T_w,) bins of the input grid inside the window.
        t_: float64 (T_w,) fit times as a fraction of the year (bin centre / 365).
        design_: float64 (T_w, 2n + 1) design matrix.
        series_: names of the fitted series (bands then indices).
        n_underdetermined_: pixels with at least one underdetermined series in the last
            ``transform`` call.
        underdetermined_: bool (N,) mask of those pixels (last ``transform``).

    ``transform`` returns (N, S × (2n + 1 [+ 1])) features, series-major, named
    ``{series}_const``, ``{series}_h{k}_cos``, ``{series}_h{k}_sin`` [, ``{series}_rmse``].
    """

    def __init__(
        self,
        n_harmonics: int = 3,
        omega: float = 1.0,
        window: WindowSpec = PAPER_WINDOW,
        bands: Sequence[str] | None = None,
        indices: Sequence[str] = (),
        scale: float = 10_000.0,
        min_obs: int | None = None,
        add_rmse: bool = False,
        policy: str = "nan",
        chunk_size: int = 2048,
        n_jobs: int | None = None,
        dtype: str = "float32",
        input_bands: Sequence[str] | None = None,
        input_grid: TimeGrid | dict[str, Any] | None = None,
    ) -> None:
        self.n_harmonics = n_harmonics
        self.omega = omega
        self.window = window
        self.bands = bands
        self.indices = indices
        self.scale = scale
        self.min_obs = min_obs
        self.add_rmse = add_rmse
        self.policy = policy
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.dtype = dtype
        self.input_bands = input_bands
        self.input_grid = input_grid

    def fit(self, X: Any, y: Any = None) -> Harmonics:
        """Resolve window, bands and indices on the input; build the design matrix.

        Args:
            X: SeriesSet or float array (N, C, T).
            y: ignored.

        Returns:
            self.

        Raises:
            GridError: the window holds fewer steps than coefficients, or ω aliases on the grid.
            BandError: a band or an index input band is missing.
            DataFormatError: invalid parameters.
        """
        values, bands, grid = self._fit_input(X)
        n = self.n_harmonics
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise DataFormatError(f"n_harmonics must be an integer >= 0, got {n!r}")
        if not np.isfinite(self.omega) or self.omega <= 0:
            raise DataFormatError(
                f"omega must be a positive frequency in cycles per year, got {self.omega!r}"
            )
        if self.policy not in _POLICIES:
            raise DataFormatError(
                f"policy={self.policy!r} is not supported; expected one of {list(_POLICIES)}"
            )
        if self.dtype not in ("float32", "float64"):
            raise DataFormatError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        p = 2 * int(n) + 1
        if self.min_obs is not None and self.min_obs < p:
            raise DataFormatError(
                f"min_obs={self.min_obs} is below the {p} coefficients of an order-{n} fit; use "
                f"min_obs >= {p} or None (on the command line: --min-obs {p} or leave it out)"
            )
        self.window_idx_ = resolve_window(self.window, grid)
        if self.window_idx_.size < p:
            raise GridError(
                f"window {self.window!r} holds {self.window_idx_.size} steps of the grid '{grid}' "
                f"but an order-{n} harmonic fit has {p} coefficients; widen the window or lower "
                "n_harmonics (--window, --n-harmonics)"
            )
        self.t_ = grid.centers[self.window_idx_] / DAYS_PER_YEAR
        self.design_ = harmonic_design(self.t_, int(n), float(self.omega))
        if np.linalg.matrix_rank(self.design_) < p:
            raise GridError(
                f"omega={self.omega} with n_harmonics={n} aliases on the {self.window_idx_.size} "
                "steps of the window (design matrix rank-deficient); lower omega or n_harmonics"
                " (--omega, --n-harmonics)"
            )
        what = f"the fitted data ({len(bands)} bands)"
        chosen = bands if self.bands is None else tuple(str(b) for b in self.bands)
        self.band_idx_ = np.asarray(
            [band_index(bands, b, what=what) for b in chosen], dtype=np.int64
        )
        fitted = [bands[i] for i in self.band_idx_]
        names = [_index_name(i) for i in self.indices]
        self.index_names_ = tuple(i for i in dict.fromkeys(names) if i not in fitted)
        compute_indices(
            values[:1], bands, self.index_names_, scale=self.scale
        )  # early, clear error
        self.series_ = (*fitted, *self.index_names_)
        if not self.series_:
            raise DataFormatError(
                "Harmonics has nothing to fit: bands=() and no indices; give bands or indices"
            )
        return self

    def _series(self, values: NDArray[np.float32], bands: tuple[str, ...]) -> NDArray[np.float32]:
        """(N, S, T_w) series to fit (selected bands, then indices) in the window."""
        v = values[:, :, self.window_idx_]
        parts = [v[:, self.band_idx_, :]]
        if self.index_names_:
            parts.append(compute_indices(v, bands, self.index_names_, scale=self.scale))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def fit_series(self, X: Any) -> HarmonicFit:
        """The full fit result (coefficients, observation counts, RMSE) for ``X``."""
        values, bands, _ = self._check_input(X)
        return fit_harmonics(
            self._series(values, bands),
            self.t_,
            int(self.n_harmonics),
            float(self.omega),
            min_obs=self.min_obs,
            return_rmse=self.add_rmse,
            chunk_size=self.chunk_size,
            n_jobs=self.n_jobs,
        )

    def transform(self, X: Any) -> NDArray[np.floating[Any]]:
        """Harmonic features.

        Args:
            X: SeriesSet or float array (N, C, T) with the fitted bands and grid.

        Returns:
            (N, S × (2n + 1 [+ 1])) array of ``dtype``; NaN rows for underdetermined series.

        Raises:
            DataFormatError: underdetermined pixels with ``policy="raise"``.
        """
        res = self.fit_series(X)
        parts = [res.coef]
        if self.add_rmse and res.rmse is not None:
            parts.append(res.rmse[:, :, None])
        feats = np.concatenate(parts, axis=2) if len(parts) > 1 else res.coef
        under = ~res.determined.all(axis=1)
        self.underdetermined_ = under
        self.n_underdetermined_ = int(under.sum())
        if self.n_underdetermined_:
            need = self.min_obs or 2 * int(self.n_harmonics) + 1
            short = (~res.determined).sum(axis=0)  # pixels per series
            worst = ", ".join(
                f"{self.series_[i]} {int(short[i]):,}"
                for i in np.argsort(-short, kind="stable")[:4]
                if short[i]
            )
            msg = (
                f"{self.n_underdetermined_:,} of {under.size:,} pixels have a series with fewer "
                f"than {need} valid observations in the window ({int(short.sum()):,} of "
                f"{res.determined.size:,} pixel-series; most in {worst})"
            )
            fix = "lower n_harmonics or min_obs, widen the window, or fill gaps first"
            if self.policy == "raise":
                raise DataFormatError(f"Harmonics (policy='raise'): {msg}; {fix}")
            logger.warning("%s: the features of those series are NaN (%s)", msg, fix)
        return feats.reshape(feats.shape[0], -1).astype(self.dtype, copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``{s}_const``, ``{s}_h{k}_cos``, ``{s}_h{k}_sin`` [, ``{s}_rmse``] per series ``s``."""
        check_is_fitted(self, "series_")
        suffixes = harmonic_names(int(self.n_harmonics)) + (["rmse"] if self.add_rmse else [])
        return np.asarray([f"{s}_{x}" for s in self.series_ for x in suffixes], dtype=object)
