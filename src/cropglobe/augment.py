"""Temporal and spectral augmentation of pixel time series, batched and seeded.

The paper's three augmentations (REFERENCE.md "Temporal augmentation") plus two that mimic the
shift between countries more directly:

- :class:`TimeShift` — move the season window by ``s ~ U(−max_days, max_days)`` days.
- :class:`TimeScale` — move the window's start and end independently (stretch / squeeze).
- :class:`MagnitudeWarp` — multiply every band by a smooth cubic-spline curve through
  ``knots`` values ``~ N(1, sigma²)`` (Sentinel-1 bands: an additive curve instead).
- :class:`ObservationDropout` — drop whole observations (cloud) and re-fill the gaps with the
  same linear gap filling used at inference.
- :class:`BandJitter` — per-band reflectance gain and offset.

How the window works. Augmentations run on the *full* series (e.g. CropGlobe's 73 five-day bins)
and output the model's window (days 121–334 by default: bins 24…66, 43 steps). The window is
described by its first and last bin; shift and scale move those two ends by a number of days,
which is converted to a fractional bin position through the bin centres of the grid and clamped
to the grid (the paper's clamp to days 1…365). If the end is then not after the start, the end is
put one bin after it (the paper's "end = start + 5 days"). The output is the series resampled
linearly at ``T_out`` evenly spaced positions between the two ends, so a shift of 0 gives exactly
the plain window. (The release's own variant, used by :func:`paper_augmentation`, is
``Compose(resampling="bins")``: whole-day moves, the window cut to the whole bins holding its
ends and resampled half-pixel-centred, as ``F.interpolate(align_corners=False)`` does.)
Everything is computed for the whole batch at once — random draws, window ends
and spline curves as numpy array operations (the spline is a fixed basis matrix, not a per-sample
spline object), and the resampling and the warping of the whole batch in fused compiled loops
(:mod:`cropglobe._kernels`, Numba; its numpy twin gives identical bits and is used when Numba is
absent). There is no per-sample Python loop.

Stages. A :class:`Compose` runs its members in three stages whatever their order in the list:
``"series"`` members (observation dropout) on the full series, then ``"window"`` members (shift,
scale) which only move the window ends, then one resampling, then ``"output"`` members (magnitude
warp, band jitter) on the window. Inside a stage the list order is kept.

Randomness is always an explicit :class:`numpy.random.Generator`; each member draws its
parameters for every sample (applied or not), so the stream consumed depends only on the batch
shape, never on which samples were picked.

Two ready-made pipelines: :func:`online_augmentation` (the default for training: fresh draws every
batch, shift and scale composed) and :func:`paper_augmentation` with :func:`augment_offline`
(the release's offline recipe: original + 2 copies, a time-scale draw *replaces* the shift).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cropglobe._kernels import resample_rows, scale_rows
from cropglobe.composite import fill_gaps
from cropglobe.errors import DataFormatError, ParameterError
from cropglobe.series import TimeGrid

__all__ = [
    "DEFAULT_WINDOW",
    "RADAR_BANDS",
    "AugmentBatch",
    "Augmentation",
    "BandJitter",
    "Compose",
    "MagnitudeWarp",
    "ObservationDropout",
    "TimeScale",
    "TimeShift",
    "augment_offline",
    "gather_linear",
    "get_augmentation",
    "online_augmentation",
    "paper_augmentation",
    "resample_window",
    "spline_basis",
]

#: The paper's season window in days of season (bins 24…66 of the 5-day grid, 43 steps).
DEFAULT_WINDOW: tuple[int, int] = (121, 334)

#: Band names treated as radar (additive magnitude warp).
RADAR_BANDS: frozenset[str] = frozenset({"VV", "VH", "HH", "HV"})


def _check_p(name: str, p: float) -> None:
    if not 0.0 <= float(p) <= 1.0:
        raise ParameterError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_nonneg(name: str, value: float) -> None:
    if not float(value) >= 0.0:  # also rejects NaN
        raise ParameterError(f"{name} must be >= 0, got {value!r}")


def _check_whole(name: str, max_days: float, whole_days: bool) -> None:
    if whole_days and float(max_days) != int(max_days):
        raise ParameterError(
            f"{name} with whole_days=True needs a whole number of max_days, got {max_days!r}"
        )


def _draw_days(
    rng: np.random.Generator, max_days: float, whole_days: bool, shape: tuple[int, ...]
) -> NDArray[np.float64]:
    if whole_days:
        m = int(max_days)
        return rng.integers(-m, m + 1, shape).astype(np.float64)
    return rng.uniform(-max_days, max_days, shape)


# ---------------------------------------------------------------------------------- the batch
@dataclass
class AugmentBatch:
    """The state a :class:`Compose` passes between its members.

    Attributes:
        values: float32 (N, C, T) — the full series before resampling, the window after.
        grid: the time axis of ``values`` (full grid before resampling, window grid after).
        bands: the C band names, or None when unknown.
        first: index of the window's first bin on the full grid.
        last: index of the window's last bin on the full grid.
        offsets: float64 (N, 2) — days added to the window's start and end (window stage).
        n_out: number of output steps T_out.
        days: (start, end) days of season of the window before any move (inside its first and
            last bin), used by the ``"bins"`` resampling of :class:`Compose`.
        owned: True when ``values`` is a fresh array of this batch (members may then change it
            in place); False while it may be the caller's array.
    """

    values: NDArray[np.float32]
    grid: TimeGrid
    bands: tuple[str, ...] | None
    first: int
    last: int
    offsets: NDArray[np.float64]
    n_out: int
    days: tuple[int, int]
    owned: bool = False


class Augmentation:
    """Base class: one augmentation with visible parameters.

    Subclasses set :attr:`stage` and implement :meth:`apply`. Calling an augmentation runs it
    alone, as ``Compose([self])``.
    """

    stage: ClassVar[str] = "output"
    p: float

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        """Transform ``batch`` in place or return a new one (see :class:`AugmentBatch`)."""
        raise NotImplementedError

    def __call__(
        self,
        values: ArrayLike,
        rng: np.random.Generator,
        *,
        grid: TimeGrid | None = None,
        bands: Sequence[str] | None = None,
        window: tuple[int, int] | None = DEFAULT_WINDOW,
    ) -> NDArray[np.float32]:
        """Run this augmentation alone; see :meth:`Compose.__call__`."""
        return Compose([self])(values, rng, grid=grid, bands=bands, window=window)

    #: parameters left out of :meth:`to_dict` while they hold their default (added after
    #: descriptions were first saved in run folders and checkpoints, which must stay valid)
    _quiet_defaults: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"name": class name, **parameters}``."""
        params = asdict(self) if hasattr(self, "__dataclass_fields__") else {}  # type: ignore[call-overload]
        for key, default in self._quiet_defaults.items():
            if params.get(key) == default:
                del params[key]
        return {"name": type(self).__name__, **params}

    def _applied(self, rng: np.random.Generator, n: int) -> NDArray[np.bool_]:
        return rng.random(n) < self.p


@dataclass(frozen=True)
class TimeShift(Augmentation):
    """Move the whole window by ``s ~ U(−max_days, max_days)`` days (with probability ``p``).

    Attributes:
        max_days: largest shift in days.
        p: probability that a sample is shifted.
        whole_days: draw whole days, ``s`` uniform over the integers −max_days … max_days
            (the release), instead of a continuous uniform.
    """

    max_days: float = 50.0
    p: float = 1.0
    whole_days: bool = False
    stage: ClassVar[str] = "window"
    _quiet_defaults: ClassVar[dict[str, Any]] = {"whole_days": False}

    def __post_init__(self) -> None:
        _check_nonneg("TimeShift max_days", self.max_days)
        _check_p("TimeShift p", self.p)
        _check_whole("TimeShift", self.max_days, self.whole_days)

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        n = batch.values.shape[0]
        draws = _draw_days(rng, self.max_days, self.whole_days, (n,))
        applied = self._applied(rng, n)
        shift = np.where(applied, draws, 0.0)
        batch.offsets = batch.offsets + shift[:, None]
        return batch


@dataclass(frozen=True)
class TimeScale(Augmentation):
    """Move the window's start by ``a`` and its end by ``b`` days, a, b ~ U(−max_days, max_days).

    Attributes:
        max_days: largest move of either end, in days.
        p: probability that a sample is scaled.
        replace: when True a scaled sample's window is ``[start + a, end + b]`` whatever an
            earlier shift did (the release: a scale draw *replaces* the shift); when False the
            moves add to earlier ones (shift and scale composed).
        whole_days: draw whole days (the release) instead of a continuous uniform.
    """

    max_days: float = 50.0
    p: float = 0.5
    replace: bool = False
    whole_days: bool = False
    stage: ClassVar[str] = "window"
    _quiet_defaults: ClassVar[dict[str, Any]] = {"whole_days": False}

    def __post_init__(self) -> None:
        _check_nonneg("TimeScale max_days", self.max_days)
        _check_p("TimeScale p", self.p)
        _check_whole("TimeScale", self.max_days, self.whole_days)

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        n = batch.values.shape[0]
        ab = _draw_days(rng, self.max_days, self.whole_days, (n, 2))
        applied = self._applied(rng, n)[:, None]
        if self.replace:
            batch.offsets = np.where(applied, ab, batch.offsets)
        else:
            batch.offsets = batch.offsets + np.where(applied, ab, 0.0)
        return batch


@functools.lru_cache(maxsize=64)
def _spline_basis_cached(knots: int, n_steps: int, bc_type: str) -> NDArray[np.float64]:
    from scipy.interpolate import CubicSpline

    kx = np.linspace(0.0, n_steps - 1.0, knots)
    spline = CubicSpline(kx, np.eye(knots), bc_type=bc_type, axis=0)
    basis = np.asarray(spline(np.arange(n_steps, dtype=np.float64)), dtype=np.float64).T
    basis.setflags(write=False)
    return basis


def spline_basis(knots: int, n_steps: int, bc_type: str = "natural") -> NDArray[np.float64]:
    """The (knots, n_steps) matrix B with ``spline(values) = values @ B``.

    A cubic spline interpolant is linear in its knot values, so the curve through knot values
    ``y`` (…, knots) placed at ``linspace(0, n_steps − 1, knots)`` and evaluated at steps
    ``0 … n_steps − 1`` is ``y @ B``. Computed once per shape (cached).

    Args:
        knots: number of knots (>= 2).
        n_steps: number of time steps of the curve.
        bc_type: scipy CubicSpline boundary condition (``"natural"``, ``"not-a-knot"`` …).
    """
    if knots < 2 or n_steps < 1:
        raise ParameterError(f"spline needs knots >= 2 and n_steps >= 1, got {knots}, {n_steps}")
    return _spline_basis_cached(int(knots), int(n_steps), str(bc_type))


@dataclass(frozen=True)
class MagnitudeWarp(Augmentation):
    """Multiply every band by a smooth curve through ``knots`` values ``~ N(1, sigma²)``.

    The knots sit at evenly spaced steps of the output window; a cubic spline (``bc_type``)
    through them gives one curve per sample over the T_out steps. Radar bands
    (:data:`RADAR_BANDS`, when band names are known) get an additive curve with knots
    ``~ N(0, radar_sigma²)`` clipped to ±``radar_clip``, and the optical curve is then clipped to
    ``optical_clip`` (the paper's Sentinel-1 variant).

    Attributes:
        sigma: standard deviation of the multiplicative knots.
        knots: number of knots.
        p: probability that a sample is warped.
        bc_type: spline boundary condition.
        radar_sigma: standard deviation of the additive radar knots (data units, e.g. dB).
        radar_clip: bound of the additive radar curve.
        optical_clip: (low, high) bounds of the optical curve when radar bands are present.
    """

    sigma: float = 0.1
    knots: int = 5
    p: float = 0.25
    bc_type: str = "natural"
    radar_sigma: float = 0.1
    radar_clip: float = 0.3
    optical_clip: tuple[float, float] = (0.7, 1.3)
    stage: ClassVar[str] = "output"

    def __post_init__(self) -> None:
        _check_nonneg("MagnitudeWarp sigma", self.sigma)
        _check_nonneg("MagnitudeWarp radar_sigma", self.radar_sigma)
        _check_p("MagnitudeWarp p", self.p)
        if int(self.knots) < 2:
            raise ParameterError(f"MagnitudeWarp knots must be >= 2, got {self.knots!r}")

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        n, _, t = batch.values.shape
        basis = spline_basis(self.knots, t, self.bc_type)
        z = rng.normal(0.0, self.sigma, (n, self.knots))
        applied = self._applied(rng, n)
        radar = [i for i, b in enumerate(batch.bands or ()) if b.upper() in RADAR_BANDS]
        if radar:
            curve = 1.0 + np.where(applied[:, None], z, 0.0) @ basis  # (N, T)
            zr = rng.normal(0.0, self.radar_sigma, (n, self.knots))
            add = np.clip(
                np.where(applied[:, None], zr, 0.0) @ basis, -self.radar_clip, self.radar_clip
            )
            curve = np.where(applied[:, None], np.clip(curve, *self.optical_clip), curve)
            optical = np.setdiff1d(np.arange(batch.values.shape[1]), radar)
            out = batch.values.copy()
            out[:, optical, :] *= curve[:, None, :].astype(np.float32)
            out[:, radar, :] += add[:, None, :].astype(np.float32)
            batch.values = out
        elif applied.any():
            # only the warped samples change (p = 0.25: a quarter of the work); the layout of
            # ``values`` (time-major after resampling) is kept, and values the batch owns (the
            # fresh output of resampling) are changed in place
            which = np.flatnonzero(applied)
            curves = (z[which] @ basis + 1.0).astype(np.float32)  # (warped samples, T)
            out = batch.values if batch.owned else batch.values.copy(order="K")
            tm = out.transpose(0, 2, 1)  # time-major after resampling: whole-sample rows
            if tm.flags.c_contiguous:
                scale_rows(tm, curves, which)
            else:
                out[which] *= curves[:, None, :]
            batch.values = out
            batch.owned = True
        return batch


@dataclass(frozen=True)
class ObservationDropout(Augmentation):
    """Drop whole observations (all bands of a time step, like a cloud) and re-fill the gaps.

    Each step of an applied sample is set missing with probability ``p_drop``; the gaps are then
    filled by linear interpolation in time (edges hold the nearest value) with
    :func:`cropglobe.composite.fill_gaps` — the same filling as inference
    (:func:`cropglobe.models.prepare_inputs`). A sample left with no observation keeps
    its original values.

    Attributes:
        p_drop: probability that one observation is dropped.
        p: probability that a sample is affected.
    """

    p_drop: float = 0.2
    p: float = 1.0
    stage: ClassVar[str] = "series"

    def __post_init__(self) -> None:
        _check_p("ObservationDropout p_drop", self.p_drop)
        _check_p("ObservationDropout p", self.p)

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        n, _, t = batch.values.shape
        drop = rng.random((n, t)) < self.p_drop
        applied = self._applied(rng, n)
        drop &= applied[:, None]
        if not drop.any():
            return batch
        orig = batch.values
        holed = np.where(drop[:, None, :], np.float32(np.nan), orig)
        filled = fill_gaps(holed, batch.grid, edge="hold")
        batch.values = np.where(np.isnan(filled) & ~np.isnan(orig), orig, filled)
        return batch


@dataclass(frozen=True)
class BandJitter(Augmentation):
    """Per-sample, per-band reflectance gain and offset: ``x · (1 + g) + o``.

    ``g ~ N(0, gain_std²)`` and ``o ~ N(0, offset_std²)`` are drawn per sample and band
    (constant in time), mimicking calibration and atmospheric-correction differences.

    Attributes:
        offset_std: standard deviation of the offset, in data units (CropGlobe: reflectance ×
            10,000, so 100 is 0.01 reflectance).
        gain_std: standard deviation of the relative gain.
        p: probability that a sample is jittered.
    """

    offset_std: float = 100.0
    gain_std: float = 0.05
    p: float = 0.5
    stage: ClassVar[str] = "output"

    def __post_init__(self) -> None:
        _check_nonneg("BandJitter offset_std", self.offset_std)
        _check_nonneg("BandJitter gain_std", self.gain_std)
        _check_p("BandJitter p", self.p)

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        n, c, _ = batch.values.shape
        g = rng.normal(0.0, self.gain_std, (n, c))
        o = rng.normal(0.0, self.offset_std, (n, c))
        applied = self._applied(rng, n)[:, None]
        gain = np.where(applied, 1.0 + g, 1.0).astype(np.float32)
        off = np.where(applied, o, 0.0).astype(np.float32)
        batch.values = batch.values * gain[:, :, None] + off[:, :, None]
        return batch


# ---------------------------------------------------------------------------------- resampling
def _window_positions(
    grid: TimeGrid, first: int, last: int, offsets: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fractional bin positions (N,) of the window's start and end after adding ``offsets``."""
    centers, steps = _centers_steps(grid)
    t = grid.n_steps
    step = _regular_step(grid)
    if step is not None:  # evenly spaced bins: the interpolation below is this straight line
        ends = np.array([float(first), float(last)]) + offsets / step  # 0 offset: exact ends
        np.clip(ends, 0.0, t - 1.0, out=ends)
        p0, p1 = ends[:, 0], ends[:, 1]
    else:
        p0 = np.interp(centers[first] + offsets[:, 0], centers, steps)  # clamps to [0, T-1]
        p1 = np.interp(centers[last] + offsets[:, 1], centers, steps)
        p0 = np.where(offsets[:, 0] == 0.0, float(first), p0)  # exact identity without a move
        p1 = np.where(offsets[:, 1] == 0.0, float(last), p1)
    if t > 1:
        bad = p1 <= p0  # end not after start: end one bin after the start
        p1 = np.where(bad, np.minimum(p0 + 1.0, t - 1.0), p1)
        p0 = np.where(bad & (p1 <= p0), p1 - 1.0, p0)
    return p0, p1


def _bin_positions(batch: AugmentBatch) -> NDArray[np.float64]:
    """(N, T_out) fractional bin positions of the ``"bins"`` resampling (the release's).

    The window's start and end days plus the offsets (whole days: fractions are dropped) are
    clamped to the grid; when the end is then not after the start it becomes the start plus
    one bin length. The bins holding the two days, ``b0 … b1`` (L bins), are resampled to T_out
    steps by half-pixel-centred linear interpolation (``F.interpolate(mode="linear",
    align_corners=False)``): step k reads ``b0 + clip((k + 0.5) · L / T_out − 0.5, 0, L − 1)``.
    A window of exactly T_out bins is copied bin for bin.
    """
    grid = batch.grid
    lo_day, hi_day = float(grid.edges[0]), float(grid.edges[-1] - 1)
    days = np.floor(np.asarray(batch.days, dtype=np.float64) + batch.offsets)
    np.clip(days, lo_day, hi_day, out=days)
    d0, d1 = days[:, 0], days[:, 1]
    bin_len = grid.lengths[grid.bin_index(d0.astype(np.int64))]
    d1 = np.where(d1 <= d0, np.minimum(d0 + bin_len, hi_day), d1)
    b0 = grid.bin_index(d0.astype(np.int64)).astype(np.float64)
    b1 = grid.bin_index(d1.astype(np.int64)).astype(np.float64)
    n_bins = (b1 - b0 + 1.0)[:, None]
    k = np.arange(batch.n_out, dtype=np.float64)[None, :]
    rel = (k + 0.5) * n_bins / batch.n_out - 0.5
    return b0[:, None] + np.clip(rel, 0.0, n_bins - 1.0)


def gather_linear(values: ArrayLike, positions: ArrayLike) -> NDArray[np.float32]:
    """Linear interpolation of each sample's series at its own fractional positions.

    Args:
        values: float (N, C, T).
        positions: (N, T_out) fractional positions within 0 … T−1 (clipped to that range).

    Returns:
        float32 (N, C, T_out); integer positions copy the bin exactly.
    """
    v = np.asarray(values, dtype=np.float32)
    t = v.shape[2]
    pos = np.clip(np.asarray(positions, dtype=np.float64), 0.0, t - 1.0)
    lo = np.floor(pos).astype(np.intp)
    w = (pos - lo).astype(np.float32)[:, None, :]
    hi = np.minimum(lo + 1, t - 1)
    a = np.take_along_axis(v, lo[:, None, :], axis=2)
    b = np.take_along_axis(v, hi[:, None, :], axis=2)
    return np.where(w > 0.0, a + (b - a) * w, a).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=32)
def _centers_steps(grid: TimeGrid) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bin centres and bin positions 0 … T−1 of ``grid`` (cached, read-only)."""
    centers = np.asarray(grid.centers, dtype=np.float64)
    steps = np.arange(grid.n_steps, dtype=np.float64)
    centers.setflags(write=False)
    steps.setflags(write=False)
    return centers, steps


@functools.lru_cache(maxsize=32)
def _regular_step(grid: TimeGrid) -> float | None:
    """Days between consecutive bin centres when they are evenly spaced, else None (cached)."""
    centers, _ = _centers_steps(grid)
    if centers.size < 2:
        return None
    gaps = np.diff(centers)
    return float(gaps[0]) if gaps[0] > 0 and np.all(gaps == gaps[0]) else None


@functools.lru_cache(maxsize=32)
def _window_bins(grid: TimeGrid, start: int, end: int) -> tuple[int, int]:
    """First and last bin of the window ``start`` … ``end`` days of season (cached)."""
    idx = grid.window_indices(start, end)
    return int(idx[0]), int(idx[-1])


@functools.lru_cache(maxsize=32)
def _window_grid(grid: TimeGrid, first: int, last: int) -> TimeGrid:
    """The window's bins of ``grid`` (cached: the same few windows come back every batch)."""
    return grid.select(slice(first, last + 1))


def resample_window(
    values: NDArray[np.float32], start: ArrayLike, end: ArrayLike, n_out: int
) -> NDArray[np.float32]:
    """Linear resampling of each sample between its own fractional start and end bin.

    Args:
        values: float32 (N, C, T).
        start: (N,) fractional bin position of the first output step (0 … T−1).
        end: (N,) fractional bin position of the last output step.
        n_out: number of output steps.

    Returns:
        float32 (N, C, n_out), a strided view of time-major memory (``np.ascontiguousarray``
        it if a C-contiguous array is needed). Output step k of sample i reads position
        ``start_i + (end_i − start_i) · k / (n_out − 1)``; integer positions copy the bin
        exactly (a NaN neighbour does not leak in).
    """
    v = np.asarray(values, dtype=np.float32)
    n, c, t = v.shape
    s = np.asarray(start, dtype=np.float64).reshape(n)
    e = np.asarray(end, dtype=np.float64).reshape(n)
    # Time-major rows: whole (C,) rows are read per output step. ``values`` stored time-major
    # ((N, T, C) memory, e.g. ``x_tm.transpose(0, 2, 1)``) needs no copy here; the trainer keeps
    # its training set that way.
    vt = v.transpose(0, 2, 1)
    if not vt.flags.c_contiguous:
        vt = np.ascontiguousarray(vt)
    a = resample_rows(vt.reshape(n * t, c), t, s, e, n_out)  # (N, n_out, C), fused kernel
    return a.transpose(0, 2, 1)  # (N, C, n_out) view of time-major memory; no copy


# ---------------------------------------------------------------------------------- compose
_STAGES = ("series", "window", "output")


class Compose(Augmentation):
    """A pipeline of augmentations (run by stage: series, window, resample, output).

    Attributes:
        members: the augmentations, in order.
        p_original: probability that a sample passes through un-augmented (only cut to the
            window). The release trains on the originals plus 2 augmented copies, so a third
            of what its network sees is un-augmented; ``p_original=1/3`` keeps that mixture
            while drawing fresh augmentations every batch.
        resampling: how the moved window becomes T_out steps. ``"linear"`` (default): the two
            ends move by any fraction of a bin and the output is sampled evenly between them
            (a shift of 2.5 days on 5-day bins is a half-bin blend of every step).
            ``"bins"``: the release's — the moved start and end days select the whole bins
            that hold them and those bins are resampled half-pixel-centred (see
            :func:`_bin_positions`): a shift by whole bins copies bins exactly, other shifts
            also squeeze the window by one bin.
    """

    p: float = 1.0

    def __init__(
        self,
        members: Sequence[Augmentation] = (),
        *,
        p_original: float = 0.0,
        resampling: str = "linear",
    ) -> None:
        _check_p("p_original", p_original)
        if resampling not in ("linear", "bins"):
            raise ParameterError(
                f"Compose resampling must be 'linear' or 'bins', got {resampling!r}"
            )
        self.p_original = float(p_original)
        self.resampling = resampling
        self.members: tuple[Augmentation, ...] = tuple(members)
        for m in self.members:
            if not isinstance(m, Augmentation) or m.stage not in _STAGES:
                raise ParameterError(
                    f"Compose members must be cropglobe.augment augmentations, got {m!r}"
                )

    def __repr__(self) -> str:
        extra = f", p_original={self.p_original:g}" if self.p_original else ""
        extra += f", resampling={self.resampling!r}" if self.resampling != "linear" else ""
        return f"Compose([{', '.join(repr(m) for m in self.members)}]{extra})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Compose)
            and self.members == other.members
            and self.p_original == other.p_original
            and self.resampling == other.resampling
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``{"name": "Compose", "members": [...]}``."""
        out: dict[str, Any] = {
            "name": "Compose",
            "members": [m.to_dict() for m in self.members],
            "p_original": self.p_original,
        }
        if self.resampling != "linear":  # absent by default: older descriptions stay valid
            out["resampling"] = self.resampling
        return out

    def apply(self, batch: AugmentBatch, rng: np.random.Generator) -> AugmentBatch:
        keep: NDArray[np.bool_] | None = None
        if self.p_original > 0.0:
            keep = np.asarray(rng.random(batch.values.shape[0]) < self.p_original)
            n_keep = int(np.count_nonzero(keep))
            plain = resample_window(
                batch.values[keep],
                np.full(n_keep, float(batch.first)),
                np.full(n_keep, float(batch.last)),
                batch.n_out,
            )
        for stage in _STAGES:
            if stage == "output":
                if self.resampling == "bins":
                    batch.values = gather_linear(batch.values, _bin_positions(batch))
                else:
                    p0, p1 = _window_positions(batch.grid, batch.first, batch.last, batch.offsets)
                    batch.values = resample_window(batch.values, p0, p1, batch.n_out)
                batch.owned = True
                batch.grid = _window_grid(batch.grid, batch.first, batch.last)
            for m in self.members:
                if m.stage == stage:
                    batch = m.apply(batch, rng)
        if keep is not None and keep.any():
            batch.values[keep] = plain
        return batch

    def __call__(
        self,
        values: ArrayLike,
        rng: np.random.Generator,
        *,
        grid: TimeGrid | None = None,
        bands: Sequence[str] | None = None,
        window: tuple[int, int] | None = DEFAULT_WINDOW,
    ) -> NDArray[np.float32]:
        """Augment a batch.

        Args:
            values: float (N, C, T) series on ``grid`` (NaN propagates; fill gaps first).
            rng: the random generator (consumed; pass a seeded ``np.random.default_rng``).
            grid: the time axis of ``values``; None means the CropGlobe 73-bin 5-day grid.
            bands: band names (needed only for the radar variant of magnitude warp).
            window: (start, end) days of season of the output window, or None for the whole
                grid. Default: the paper's 121–334 (43 steps on the 5-day grid).

        Returns:
            float32 (N, C, T_out), T_out the number of bins in the window.
        """
        if not isinstance(rng, np.random.Generator):
            raise ParameterError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
                f"{type(rng).__name__}"
            )
        batch = make_batch(values, grid=grid, bands=bands, window=window)
        return self.apply(batch, rng).values


def make_batch(
    values: ArrayLike,
    *,
    grid: TimeGrid | None = None,
    bands: Sequence[str] | None = None,
    window: tuple[int, int] | None = DEFAULT_WINDOW,
) -> AugmentBatch:
    """Wrap a (N, C, T) array in an :class:`AugmentBatch` with the window of ``window``."""
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 3:
        raise DataFormatError(
            f"augmentation values must be a 3-D array (samples, bands, time), got shape {v.shape}"
        )
    if grid is None:
        if v.shape[2] != 73:
            raise ParameterError(
                f"values have {v.shape[2]} time steps; without grid= the CropGlobe 73-bin grid is "
                "assumed; pass the SeriesSet's grid"
            )
        grid = TimeGrid.cropglobe()
    if grid.n_steps != v.shape[2]:
        raise ParameterError(
            f"grid has {grid.n_steps} steps but values have {v.shape[2]}; pass the matching grid"
        )
    if bands is not None and len(bands) != v.shape[1]:
        raise ParameterError(f"{len(bands)} band names given for {v.shape[1]} bands")
    if window is None:
        first, last = 0, grid.n_steps - 1
        days = (grid.edges[0], grid.edges[-1] - 1)
    else:
        first, last = _window_bins(grid, int(window[0]), int(window[1]))
        starts, ends = grid.starts, grid.ends
        days = (
            int(np.clip(int(window[0]), starts[first], ends[first])),
            int(np.clip(int(window[1]), starts[last], ends[last])),
        )
    return AugmentBatch(
        values=v,
        grid=grid,
        bands=tuple(bands) if bands is not None else None,
        first=first,
        last=last,
        offsets=np.zeros((v.shape[0], 2)),
        n_out=last - first + 1,
        days=days,
    )


# ---------------------------------------------------------------------------------- pipelines
def online_augmentation(
    max_shift: float = 50.0,
    max_scale: float = 50.0,
    sigma: float = 0.1,
    knots: int = 5,
    *,
    p_shift: float = 1.0,
    p_scale: float = 0.5,
    p_warp: float = 0.25,
    p_original: float = 0.0,
) -> Compose:
    """The default training pipeline: shift, then scale composed with it, then magnitude warp.

    Applied with fresh draws to every batch (online). ``p_original`` lets a share of the
    samples pass un-augmented (1/3 reproduces the release's originals + 2 copies mixture). It
    defaults to 0 because on real data the mixture did not help: CAN → FRA OA 76.2 vs 76.2 %
    (seed 82), and CAWa Fergana → Samarkand / Kashkadarya OA 56.9 / 51.1 % against 68.4 /
    67.3 % with every sample augmented (3 seeds; docs/results.md).
    """
    return Compose(
        [
            TimeShift(max_shift, p_shift),
            TimeScale(max_scale, p_scale, replace=False),
            MagnitudeWarp(sigma, knots, p_warp),
        ],
        p_original=p_original,
    )


def paper_augmentation(
    max_shift: float = 50.0,
    max_scale: float = 50.0,
    sigma: float = 0.1,
    knots: int = 5,
) -> Compose:
    """The release's recipe for one augmented copy: shift (p 1), a scale draw that *replaces*
    the shift (p 0.5), magnitude warp (p 0.25) — with the release's details: whole-day draws,
    the ``"bins"`` resampling of :class:`Compose` and a not-a-knot spline for the warp curve
    (scipy's default, which the release uses)."""
    return Compose(
        [
            TimeShift(max_shift, 1.0, whole_days=True),
            TimeScale(max_scale, 0.5, replace=True, whole_days=True),
            MagnitudeWarp(sigma, knots, 0.25, bc_type="not-a-knot"),
        ],
        resampling="bins",
    )


def get_augmentation(name: str | Compose | None) -> Compose | None:
    """``"online"``, ``"paper"``, ``"none"``/None or a :class:`Compose` -> pipeline (None: none)."""
    if name is None or isinstance(name, Compose):
        return name
    if isinstance(name, Augmentation):
        return Compose([name])
    table = {"online": online_augmentation, "paper": paper_augmentation}
    if name == "none":
        return None
    if name not in table:
        raise ParameterError(
            f"augment must be one of 'online', 'paper', 'none' or a Compose, got {name!r}"
        )
    return table[name]()


def augment_offline(
    values: ArrayLike,
    labels: ArrayLike,
    *,
    copies: int = 2,
    rng: np.random.Generator,
    grid: TimeGrid | None = None,
    bands: Sequence[str] | None = None,
    window: tuple[int, int] | None = DEFAULT_WINDOW,
    pipeline: Compose | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The paper's offline augmentation: the plain window plus ``copies`` augmented copies.

    Args:
        values: float (N, C, T) full series on ``grid``.
        labels: (N,) labels, repeated for the copies.
        copies: number of augmented copies per sample.
        rng: the random generator.
        grid: time axis of ``values`` (None: the CropGlobe 73-bin grid).
        bands: band names (radar variant of the warp).
        window: output window in days of season (None: the whole grid).
        pipeline: augmentation of one copy; default :func:`paper_augmentation`.

    Returns:
        ``(x, y)``: float32 (N · (1 + copies), C, T_out) — originals first, then copy 1, copy 2 …
        — and int64 (N · (1 + copies),) labels.
    """
    if int(copies) < 0:
        raise ParameterError(f"copies must be >= 0, got {copies!r}")
    y = np.asarray(labels, dtype=np.int64)
    pipe = pipeline if pipeline is not None else paper_augmentation()
    plain = Compose([])(values, rng, grid=grid, bands=bands, window=window)
    if y.shape != (plain.shape[0],):
        raise ParameterError(f"labels must have shape ({plain.shape[0]},), got {y.shape}")
    parts = [plain]
    parts += [pipe(values, rng, grid=grid, bands=bands, window=window) for _ in range(copies)]
    return np.concatenate(parts), np.tile(y, int(copies) + 1)
