"""Irregular observations -> a fixed time grid: median composites, masking, gap filling, windows.

The pipeline from a long observation table (:class:`~cropglobe.series.Observations`) to pixel
series on a :class:`~cropglobe.series.TimeGrid` (:class:`~cropglobe.series.SeriesSet`):

1. **Masking** — rows flagged ``valid == False`` or with a Sentinel-2 scene class in
   :data:`cropglobe.bands.SCL_INVALID` are dropped.
2. **Season** — each sample is composited over one season (the grid's anchor gives its first
   day), named by its *season year*, the calendar year in which it starts. It comes from, in
   order: ``season_year=`` (one int for all, or a mapping ``sample_id -> year``), a ``year``
   column of ``obs.samples`` — a *label year*, the year of the harvest, which names the season
   that ends in it (:func:`cropglobe.series.season_start_year`: label year 2023 on a ``"07-01"``
   grid is July 2022 – June 2023) — or the season holding most of the sample's valid
   observations that fall inside the grid (ties go to the earlier season). Observations of
   other seasons are ignored.
3. **Reduction** — the NaN-aware median (or mean) of the observations in each
   (sample, band, bin): :func:`composite_arrays`, a fully vectorised kernel also used on raster
   pixel blocks.
4. **Gap filling** (optional) — :func:`fill_gaps`: linear interpolation between bin centres
   across gaps up to ``max_gap_days``, leading/trailing gaps held or left missing.

Further tools move series between grids (:func:`resample`), windows (:func:`select_window`,
:func:`paper_window`), seasons (:func:`shift_anchor`: the new season ends in the same year, so a
calendar-year 2023 series becomes July 2022 – June 2023), shift them in time
(:func:`shift_series`) and check from the data whether a country's season is aligned — whether
its classes' NDVI peaks fall inside the window the models see (:func:`detect_season_alignment`,
and :func:`season_findings` for the groups to report with the exact fix).

Every function here is vectorised with NumPy: the Python-level loops run over bands, group sizes,
chunks of samples or target bins, never over pixels or samples.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cropglobe.bands import SCL_INVALID, ndvi
from cropglobe.errors import DataFormatError, GridError, ParameterError
from cropglobe.series import (
    _MONTH_STARTS,
    Observations,
    SeriesSet,
    TimeGrid,
    anchor_text,
    day_of_season,
    parse_anchor,
    season_label_year,
    season_start_year,
)

__all__ = [
    "PAPER_WINDOW",
    "SeasonFinding",
    "align_seasons",
    "composite",
    "composite_arrays",
    "composite_dense",
    "detect_season_alignment",
    "fill_gaps",
    "neighbour_season",
    "paper_window",
    "resample",
    "season_findings",
    "select_window",
    "shift_anchor",
    "shift_series",
]

logger = logging.getLogger(__name__)

MaskMode = Literal["auto", "none", "valid", "scl"]
Reducer = Literal["median", "mean"]
Edge = Literal["hold", "nan"]

#: Rows of the observation table processed at once by :func:`composite_arrays` (bounds memory).
_CHUNK_ROWS = 1 << 18
#: Samples processed at once by :func:`fill_gaps` (bounds memory).
_CHUNK_SERIES = 1 << 16
#: Largest group size sorted with a min/max network rather than ``np.sort``.
_NETWORK_MAX = 8

_PAPER_START, _PAPER_END, _PAPER_STEPS = 121, 334, 43


# =====================================================================================
# Kernel: median per (sample, bin) of irregular observations
# =====================================================================================
def composite_arrays(
    sample: ArrayLike,
    dos: ArrayLike,
    values: ArrayLike,
    n_samples: int,
    grid: TimeGrid,
    *,
    reducer: Reducer = "median",
) -> NDArray[np.float32]:
    """Reduce irregular observations to one value per (sample, band, bin) of ``grid``.

    Observations are grouped by (sample, bin); within each group, each band is reduced
    separately ignoring NaN (the median of an even count is the mean of the two middle values).
    Rows are sorted by (sample, bin) once (skipped when already in order, as in tables sorted by
    sample and date), then groups are reduced by size bucket with vectorised sorting networks or
    ``np.sort`` — no loop over samples or pixels. Memory beyond the output is bounded by
    processing about a million rows at a time.

    Args:
        sample: int array (R,), sample position 0 … ``n_samples`` − 1 of each observation; rows
            with a negative sample are ignored (a cheap way to mask rows without copying
            ``values``).
        dos: int array (R,), day of season 1 … 365 of each observation (see
            :func:`cropglobe.series.day_of_season`); rows outside the grid are ignored.
        values: float array (R, C), band values; NaN = no data.
        n_samples: N, the number of output series.
        grid: the time grid (T bins).
        reducer: ``"median"`` (default) or ``"mean"``.

    Returns:
        float32 array (N, C, T); NaN where a (sample, band, bin) holds no valid observation.

    Raises:
        DataFormatError: mismatched lengths, or sample positions ≥ ``n_samples``.
        ParameterError: unknown ``reducer``.
    """
    if reducer not in ("median", "mean"):
        raise ParameterError(
            f"reducer must be 'median' or 'mean', got {reducer!r}; pick one of those"
        )
    v = np.asarray(values)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise DataFormatError(
            f"composite_arrays needs values of shape (R, C), got {v.shape}; pass one row per "
            "observation and one column per band"
        )
    if not np.issubdtype(v.dtype, np.floating):
        v = v.astype(np.float32)
    return _composite_columns(sample, dos, [v[:, j] for j in range(v.shape[1])], n_samples,
                              grid, reducer)  # fmt: skip


def _composite_columns(
    sample: ArrayLike,
    dos: ArrayLike,
    columns: list[NDArray[Any]],
    n_samples: int,
    grid: TimeGrid,
    reducer: str,
) -> NDArray[np.float32]:
    """:func:`composite_arrays` on C band columns (R,) each, read chunk by chunk (no full copy)."""
    s: NDArray[Any] = np.asarray(sample)
    d: NDArray[Any] = np.asarray(dos)
    n_rows = s.shape[0] if s.ndim == 1 else -1
    if s.ndim != 1 or d.shape != s.shape or any(c.shape != s.shape for c in columns):
        raise DataFormatError(
            f"composite_arrays needs sample (R,), dos (R,) and values (R, C) of one length R, "
            f"got shapes {s.shape}, {d.shape} and "
            f"{(len(columns[0]) if columns else 0, len(columns))}; pass one row per observation"
        )
    if not (np.issubdtype(s.dtype, np.integer) and np.issubdtype(d.dtype, np.integer)):
        raise DataFormatError(
            f"sample and dos must be integer arrays, got dtypes {s.dtype} and {d.dtype}"
        )
    n_bands = len(columns)
    n_steps = grid.n_steps
    n_samples = int(n_samples)
    if n_rows and s.max() >= n_samples:
        raise DataFormatError(
            f"sample positions reach {int(s.max())} but n_samples is {n_samples}; sample must "
            "index 0 … n_samples − 1 (or be negative to skip a row)"
        )
    # Key (sample, bin) in the narrowest integer type; bins via a lookup table over days 0…366.
    ktype = np.dtype(np.int32 if n_samples * n_steps < 2**31 - 1 else np.int64)
    lut = np.full(368, -1, dtype=ktype)
    lut[1:367] = grid.bin_index(np.arange(1, 367))
    bins = lut[np.clip(d, 0, 367)]
    keep = (s >= 0) & (bins >= 0)
    if keep.all():
        rows: NDArray[np.integer[Any]] | None = None
        key = s.astype(ktype) * n_steps + bins
    else:
        rows = np.flatnonzero(keep)
        if n_rows < 2**31 - 1:
            rows = rows.astype(np.int32)
        key = s[rows].astype(ktype) * n_steps + bins[rows]
    del bins, keep
    out = np.full((n_samples, n_bands, n_steps), np.nan, dtype=np.float32)
    if key.size == 0 or n_bands == 0:
        return out
    if key.size > 1 and np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind="stable")
        key = key[order]
        rows = order if rows is None else rows[order]
        del order
    ftype = np.result_type(np.float32, *[c.dtype for c in columns])
    if not np.issubdtype(ftype, np.floating):
        ftype = np.dtype(np.float32)
    start = 0
    n = key.size
    while start < n:
        stop = min(start + _CHUNK_ROWS, n)
        if stop < n:  # end the chunk on a group boundary
            cut = int(np.searchsorted(key, key[stop], side="left"))
            stop = cut if cut > start else int(np.searchsorted(key, key[stop], side="right"))
        sel: slice | NDArray[np.integer[Any]] = (
            slice(start, stop) if rows is None else rows[start:stop]
        )
        block = np.empty((stop - start, n_bands), dtype=ftype)
        for j, col in enumerate(columns):
            block[:, j] = col[sel]
        _reduce_chunk(key[start:stop].astype(np.int64), block, out, n_steps, reducer)
        start = stop
    return out


def _reduce_chunk(
    key: NDArray[np.int64],
    block: NDArray[np.floating[Any]],
    out: NDArray[np.float32],
    n_steps: int,
    reducer: str,
) -> None:
    """Reduce one chunk of key-sorted rows into ``out`` (N, C, T) in place."""
    n = key.size
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, n])
    gkey = key[starts]
    if reducer == "mean":
        finite = ~np.isnan(block)
        sums = np.add.reduceat(np.where(finite, block, 0).astype(np.float64), starts, axis=0)
        counts = np.add.reduceat(finite.astype(np.int32), starts, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            res = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        out[gkey // n_steps, :, gkey % n_steps] = res
        return
    res = np.empty((starts.size, block.shape[1]), dtype=np.float64)
    one = sizes == 1
    if one.all():
        out[gkey // n_steps, :, gkey % n_steps] = block
        return
    res[one] = block[starts[one]]
    # Buckets: exact sizes up to _NETWORK_MAX, then power-of-two widths padded with NaN.
    rest = np.flatnonzero(~one)
    rsizes = sizes[rest]
    widths = np.where(
        rsizes <= _NETWORK_MAX,
        rsizes,
        1 << np.ceil(np.log2(np.maximum(rsizes, 1))).astype(np.int64),
    )
    for width in np.unique(widths):
        sel = rest[widths == width]
        res[sel] = _median_groups(block, starts[sel], sizes[sel], int(width))
    out[gkey // n_steps, :, gkey % n_steps] = res


def _median_groups(
    block: NDArray[np.floating[Any]],
    starts: NDArray[np.int64],
    sizes: NDArray[np.int64],
    width: int,
) -> NDArray[np.float64]:
    """NaN-median of G groups of at most ``width`` consecutive rows of ``block`` -> (G, C)."""
    offs = np.arange(width)
    inside = offs[None, :] < sizes[:, None]
    idx = np.where(inside, starts[:, None] + offs[None, :], 0)
    groups = block[idx]  # (G, width, C)
    groups[~inside] = np.nan
    return _nanmedian_axis1(groups)


def _nanmedian_axis1(groups: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """NaN-median along axis 1 of a (G, W, C) array -> (G, C) float64; NaN where all NaN.

    Small widths use an odd–even transposition network of ``np.minimum``/``np.maximum``
    (vectorised over G × C, far cheaper than many tiny sorts); wider ones ``np.sort``.
    Never warns on all-NaN groups.
    """
    nan = np.isnan(groups)
    count = (~nan).sum(axis=1)  # (G, C)
    width = groups.shape[1]
    if width == 1:
        return groups[:, 0, :].astype(np.float64)
    if width == 2:
        a, b = groups[:, 0, :].astype(np.float64), groups[:, 1, :].astype(np.float64)
        return np.where(nan[:, 0, :], b, np.where(nan[:, 1, :], a, (a + b) / 2))
    filled = np.where(nan, np.inf, groups)
    if width <= _NETWORK_MAX:
        cols = [filled[:, i, :] for i in range(width)]
        for rnd in range(width):
            for i in range(rnd % 2, width - 1, 2):
                lo = np.minimum(cols[i], cols[i + 1])
                cols[i + 1] = np.maximum(cols[i], cols[i + 1])
                cols[i] = lo
        ordered = np.stack(cols, axis=1)
    else:
        ordered = np.sort(filled, axis=1)
    lo_i = np.maximum((count - 1) // 2, 0)[:, None, :]
    hi_i = np.maximum(count // 2, 0)[:, None, :]
    lo_v = np.take_along_axis(ordered, lo_i, axis=1)[:, 0, :].astype(np.float64)
    hi_v = np.take_along_axis(ordered, np.minimum(hi_i, width - 1), axis=1)[:, 0, :]
    med = (lo_v + hi_v.astype(np.float64)) / 2
    return np.where(count > 0, med, np.nan)


def composite_dense(
    values: ArrayLike,
    valid: ArrayLike | None,
    dos: ArrayLike,
    grid: TimeGrid,
    *,
    reducer: Reducer = "median",
) -> NDArray[np.float32]:
    """Composite pixels that share their acquisition dates (a raster stack) to ``grid``.

    The same result as :func:`composite_arrays` on the pixels' observations taken as rows —
    the same NaN-median (mean of the two middle values for an even count, computed in float64)
    or mean — but reduced bin by bin over the dates of that bin for all pixels at once, with no
    sorting or grouping: a bin holding one date is a copy, a bin with a few dates one small
    min/max network over whole pixel arrays.

    Args:
        values: float (D, C, P): D dates, C bands, P pixels; NaN = no data.
        valid: bool (D, P), False = masked (cloud, SCL class), or None (all valid).
        dos: int (D,), day of season of each date; dates outside the grid are ignored.
        grid: the time grid (T bins).
        reducer: ``"median"`` (default) or ``"mean"``.

    Returns:
        float32 (P, C, T); NaN where a (pixel, band, bin) holds no valid observation.
    """
    if reducer not in ("median", "mean"):
        raise ParameterError(
            f"reducer must be 'median' or 'mean', got {reducer!r}; pick one of those"
        )
    v = np.asarray(values)
    if v.ndim != 3:
        raise DataFormatError(f"composite_dense needs values (dates, bands, pixels), got {v.shape}")
    d_, c, p = v.shape
    d = np.asarray(dos, dtype=np.int64).reshape(-1)
    ok = None if valid is None else np.asarray(valid, dtype=bool)
    if d.shape != (d_,) or (ok is not None and ok.shape != (d_, p)):
        raise DataFormatError(
            f"composite_dense needs dos ({d_},) and valid ({d_}, {p}) for values {v.shape}, got "
            f"{d.shape} and {None if ok is None else ok.shape}"
        )
    bins = grid.bin_index(d)
    # written bin by bin straight into the (P, C, T) layout: a stack's dates fill a third of a
    # 5-day grid's bins, and transposing a whole (T, C, P) result took longer than the median
    out = np.full((p, c, grid.n_steps), np.nan, dtype=np.float32)
    res = out.transpose(2, 1, 0)  # a (T, C, P) view of it
    for b in np.unique(bins[bins >= 0]):
        dates = np.flatnonzero(bins == b)
        stack = v[dates].astype(np.float32, copy=True)  # (W, C, P)
        if ok is not None:
            stack[np.broadcast_to(~ok[dates][:, None, :], stack.shape)] = np.nan
        if dates.size == 1:
            res[b] = stack[0]
        elif reducer == "mean":
            finite = ~np.isnan(stack)
            total = np.where(finite, stack, 0.0).astype(np.float64).sum(axis=0)
            count = finite.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                res[b] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            res[b] = _nanmedian_axis1(stack.reshape(1, dates.size, c * p))[0].reshape(c, p)
    return out


def _nanmedian_last(a: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """NaN-median along the last axis, without warnings on all-NaN slices."""
    shape = a.shape[:-1]
    flat = a.reshape(-1, 1, a.shape[-1]).transpose(0, 2, 1)  # (M, W, 1)
    return _nanmedian_axis1(flat)[:, 0].reshape(shape)


# =====================================================================================
# Observations -> SeriesSet
# =====================================================================================
def composite(
    obs: Observations,
    grid: TimeGrid,
    *,
    season_year: int | Mapping[Any, int] | None = None,
    mask: MaskMode = "auto",
    fill: bool | Literal["linear"] = False,
    max_gap_days: float | Literal["auto"] | None = "auto",
    edge: Edge = "hold",
    reducer: Reducer = "median",
    allow_empty: bool = False,
) -> SeriesSet:
    """Composite irregular observations to ``grid``: one NaN-aware median per bin.

    Args:
        obs: the long observation table (see :class:`~cropglobe.series.Observations`).
        grid: the target time grid; its anchor defines the season (``"07-01"`` collects
            July of year Y to June of Y + 1, so series spanning two calendar years work).
        season_year: which season to composite for each sample, named by the calendar year in
            which it *starts* (2022 for July 2022 – June 2023): one int for all samples; a
            mapping ``sample_id -> year``; or None to take ``obs.samples["year"]`` when that
            column exists — read as the *label year* (the harvest year, as CropGlobe and
            WorldCereal name samples), i.e. the season that *ends* in that year: the same year
            on a calendar-year grid, the year before for any later anchor (label year 2023 on
            a ``"07-01"`` grid is the season 2022) — else the season holding most of the
            sample's valid observations (unmasked, inside the grid, at least one band not NaN;
            ties: the earlier season; a sample without any gets the most common season of the
            others). A calendar-year grid and a series from 2017-01 to 2018-06 gives 2017.
            Observations of other seasons are ignored.
        mask: ``"auto"`` masks with the ``valid`` column and/or the ``SCL`` column when
            present; ``"valid"`` / ``"scl"`` require that column; ``"none"`` uses every row.
            SCL classes in :data:`cropglobe.bands.SCL_INVALID` are masked.
        fill: False keeps empty bins NaN; True or ``"linear"`` fills them with
            :func:`fill_gaps`.
        max_gap_days: longest gap (days between the centres of the two valid neighbours) that
            gap filling bridges; None bridges any gap; ``"auto"`` (default): observations up
            to a month apart are bridged, and at least one missing step (:func:`auto_max_gap`:
            35 days on the 5-day grid, 62 on a monthly grid). Used only when ``fill`` is on.
        edge: ``"hold"`` repeats the first/last valid value over leading/trailing gaps when
            filling; ``"nan"`` leaves them missing.
        reducer: ``"median"`` (default, as CropGlobe) or ``"mean"``.
        allow_empty: accept samples left without any valid observation in their season (they
            stay all NaN); by default they raise.

    Returns:
        A SeriesSet (N = ``obs.n_samples``, C = ``len(obs.bands)``, T = ``grid.n_steps``),
        float32, with the labels and classes of ``obs``; ``meta`` is ``obs.samples`` without
        ``label`` and with ``year`` set to the season year used (the year the season starts:
        2022 for a label year 2023 on a ``"07-01"`` grid).

    Raises:
        DataFormatError: no observations at all, bad sample positions, a missing season-year
            mapping entry, or samples without any valid observation (unless ``allow_empty``);
            when their observations lie in another season, the message names the
            ``season_year`` (``--season-year``) that holds them.
        ParameterError: an unknown ``mask``, ``fill``, ``edge`` or ``reducer``.
    """
    _check_choice("mask", mask, ("auto", "none", "valid", "scl"))
    _check_choice("edge", edge, ("hold", "nan"))
    _check_choice("reducer", reducer, ("median", "mean"))
    if fill not in (False, True, "linear"):
        raise ParameterError(f"fill must be False, True or 'linear', got {fill!r}")
    table = obs.table
    n = obs.n_samples
    if n == 0 or len(table) == 0:
        source = obs.attrs.get("source", "the observations")
        raise DataFormatError(
            f"composite: no observations in {source} ({n} samples, {len(table)} rows); "
            "expected at least one row per sample and date; composite a table that holds data"
        )
    sample = _sample_positions(table, n)
    keep = sample >= 0
    keep &= _row_mask(table, mask)
    syear, dos, has_date = _season_days(table["date"], grid.anchor)
    keep &= has_date
    years = _season_years(obs, grid, season_year, sample, syear, dos, keep, obs.bands)
    if n:
        keep &= syear == years.astype(np.int32)[sample]
    del syear
    columns = _band_columns(table, obs.bands)
    logger.debug("compositing %d of %d rows for %d samples", int(keep.sum()), len(table), n)
    row_sample = np.where(keep, sample, -1).astype(np.int32 if n < 2**31 - 1 else np.int64)
    del keep
    out = _composite_columns(row_sample, dos, columns, n, grid, reducer)
    del columns, row_sample, dos
    empty = np.isnan(out).all(axis=(1, 2)) if n else np.zeros(0, dtype=bool)
    if empty.any() and not allow_empty:
        ids = obs.samples["sample_id"].astype(str).to_numpy()[empty][:3]
        hint = _other_season_hint(obs, grid, sample, mask, np.asarray(empty), years, season_year)
        raise DataFormatError(
            f"composite: {int(empty.sum())} of {n} samples have no valid observation in their "
            f"season on the {grid.kind} grid (e.g. {list(ids)}); "
            + (hint or "check season_year and masking")
            + "; else drop those samples, or keep them (allow_empty=True, --allow-empty)"
        )
    if max_gap_days == "auto":
        max_gap_days = auto_max_gap(grid)
    shares: dict[str, float] = {}
    if fill:  # inner gaps first, then the ends: the same values as one pass, counted apart
        before = int(np.isnan(out).sum())
        _fill_inplace(out, grid.centers, max_gap_days, "nan")
        inner = int(np.isnan(out).sum())
        if edge == "hold":
            _fill_inplace(out, grid.centers, 0.0, "hold")  # a 0-day limit bridges no inner gap
        size = max(out.size, 1)
        shares = {
            "filled_fraction": round((before - inner) / size, 6),
            "held_fraction": round((inner - int(np.isnan(out).sum())) / size, 6),
        }
    meta = obs.samples.drop(columns=["label"]).copy()
    meta["year"] = years
    labels = obs.samples["label"].to_numpy(dtype=np.int64)
    attrs = dict(obs.attrs)
    attrs["composite"] = {
        "reducer": reducer,
        "mask": mask,
        "fill": bool(fill),
        "max_gap_days": max_gap_days,
        "edge": edge,
        **shares,  # shares of all values interpolated across gaps / held at the series' ends
    }
    return SeriesSet(out, obs.bands, grid, labels, obs.classes, meta, attrs)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(
            f"{name} must be one of {list(choices)}, got {value!r}; pick one of those"
        )


def _sample_positions(table: pd.DataFrame, n: int) -> NDArray[np.int64]:
    s = table["sample"].to_numpy()
    if not np.issubdtype(s.dtype, np.integer):
        raise DataFormatError(
            f"observation column 'sample' must hold integer positions into samples, got dtype "
            f"{s.dtype}; map sample ids to positions 0 … {n - 1}"
        )
    s = s.astype(np.int64, copy=False)
    if s.size and (s.min() < 0 or s.max() >= n):
        raise DataFormatError(
            f"observation column 'sample' ranges {int(s.min())} … {int(s.max())} but there are "
            f"{n} samples; positions must lie in 0 … {n - 1}"
        )
    return s


def _row_mask(table: pd.DataFrame, mask: str) -> NDArray[np.bool_]:
    """True for rows kept by the masking rule."""
    keep = np.ones(len(table), dtype=bool)
    has_valid, has_scl = "valid" in table.columns, "SCL" in table.columns
    if mask == "valid" and not has_valid:
        raise DataFormatError(
            "mask='valid' needs a boolean 'valid' column in the observation table, which has "
            f"{list(table.columns)}; use mask='auto' (--mask auto) or add the column"
        )
    if mask == "scl" and not has_scl:
        raise DataFormatError(
            "mask='scl' needs an 'SCL' scene-classification column in the observation table, "
            f"which has {list(table.columns)}; use mask='auto' (--mask auto) or add the column"
        )
    if has_valid and mask in ("auto", "valid"):
        keep &= table["valid"].fillna(False).to_numpy(dtype=bool)
    if has_scl and mask in ("auto", "scl"):
        scl = pd.to_numeric(table["SCL"], errors="coerce").to_numpy(dtype=np.float64)
        keep &= ~np.isin(scl, np.array(sorted(SCL_INVALID), dtype=np.float64))
    return keep


def _season_days(
    dates: pd.Series, anchor: str
) -> tuple[NDArray[np.int32], NDArray[np.int16], NDArray[np.bool_]]:
    """(season year, day of season, has a date) of each row, via a lookup over the date range."""
    try:
        d = pd.to_datetime(dates).to_numpy(dtype="datetime64[ns]")
    except (TypeError, ValueError):
        raise DataFormatError(
            f"observation column 'date' must hold dates, got dtype {dates.dtype}; convert it "
            "with pandas.to_datetime"
        ) from None
    has = ~np.isnat(d)
    if not has.any():
        return np.zeros(d.size, np.int32), np.zeros(d.size, np.int16), has
    days = np.empty(d.size, dtype=np.int32)  # days since 1970-01-01 (NaT gives a junk value)
    np.floor_divide(d.view(np.int64), 86_400 * 10**9, out=days, casting="unsafe")
    lo, hi = int(days[has].min()), int(days[has].max())
    days -= lo
    np.clip(days, 0, hi - lo, out=days)
    year_lut, dos_lut = day_of_season(np.arange(lo, hi + 1).astype("datetime64[D]"), anchor)
    return year_lut.astype(np.int32)[days], dos_lut.astype(np.int16)[days], has


def _band_columns(table: pd.DataFrame, bands: tuple[str, ...]) -> list[NDArray[Any]]:
    """Band columns as 1-D numeric arrays (views where possible), NaN for missing."""
    out: list[NDArray[Any]] = []
    for b in bands:
        col = table[b]
        try:
            if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiu":
                out.append(col.to_numpy())
            else:
                out.append(col.to_numpy(dtype=np.float32, na_value=np.nan))
        except (TypeError, ValueError):
            raise DataFormatError(
                f"band column {b!r} must hold numbers, got dtype {col.dtype}; convert it to float"
            ) from None
    return out


def _season_years(
    obs: Observations,
    grid: TimeGrid,
    season_year: int | Mapping[Any, int] | None,
    sample: NDArray[np.int64],
    syear: NDArray[np.int32],
    dos: NDArray[np.int16],
    keep: NDArray[np.bool_],
    bands: tuple[str, ...],
) -> NDArray[np.int64]:
    """Season year of each sample (S,), following the rules of :func:`composite`."""
    n = obs.n_samples
    if isinstance(season_year, bool):
        raise ParameterError(f"season_year must be an int, a mapping or None, got {season_year!r}")
    if isinstance(season_year, int | np.integer):
        return np.full(n, int(season_year), dtype=np.int64)
    ids = obs.samples["sample_id"].astype(str)
    if isinstance(season_year, Mapping):
        lookup = {str(k): v for k, v in season_year.items()}
        mapped = ids.map(lookup)
        missing = mapped.isna().to_numpy()
        if missing.any():
            raise DataFormatError(
                f"season_year mapping lacks {int(missing.sum())} of {n} sample ids (e.g. "
                f"{list(ids[missing][:3])}); give a year for every sample_id"
            )
        return np.asarray(mapped.to_numpy(dtype=np.int64), dtype=np.int64)
    if season_year is not None:
        raise ParameterError(
            f"season_year must be an int, a mapping sample_id -> year or None, got "
            f"{type(season_year).__name__}"
        )
    if "year" in obs.samples.columns:
        col = pd.to_numeric(obs.samples["year"], errors="coerce")
        if col.isna().any():
            raise DataFormatError(
                f"samples column 'year' has {int(col.isna().sum())} missing or non-numeric "
                "values; fill it or pass season_year explicitly (on the command line: cropglobe "
                "composite --season-year YEAR)"
            )
        # a label (harvest) year names the season that ends in it
        return season_start_year(col.to_numpy(dtype=np.int64), grid.anchor)
    years = _infer_season_years(obs, grid, sample, syear, dos, keep, bands)
    unknown = years < 0
    if unknown.any():
        known = years[~unknown]
        fallback = int(np.bincount(known - known.min()).argmax() + known.min()) if known.size else 0
        logger.debug("%d samples have no valid observation to infer a season; using %d",
                     int(unknown.sum()), fallback)  # fmt: skip
        years[unknown] = fallback
    return years


def _infer_season_years(
    obs: Observations,
    grid: TimeGrid,
    sample: NDArray[np.int64],
    syear: NDArray[np.int32],
    dos: NDArray[np.int16],
    keep: NDArray[np.bool_],
    bands: tuple[str, ...],
) -> NDArray[np.int64]:
    """The season holding most of each sample's valid in-grid observations (rows whose bands
    are all missing do not count; ties: the earlier season); −1 for samples without any."""
    n = obs.n_samples
    use = keep & (grid.bin_index(dos) >= 0)
    has_value = np.zeros(len(use), dtype=bool)
    for values in _band_columns(obs.table, bands):
        has_value |= ~np.isnan(values) if values.dtype.kind == "f" else True
    use &= has_value
    del has_value
    s, y = sample[use], syear[use]
    years = np.full(n, -1, dtype=np.int64)
    if s.size:
        y0 = int(y.min())
        span = int(y.max()) - y0 + 1
        pair, counts = np.unique(s * span + (y - y0), return_counts=True)
        ps, py = pair // span, pair % span + y0
        order = np.lexsort((py, -counts, ps))  # per sample: most observations, then earliest
        first = np.r_[True, ps[order][1:] != ps[order][:-1]]
        years[ps[order][first]] = py[order][first]
    return years


def _season_span(season_year: int, anchor: str) -> str:
    """``"2022-07-01 … 2023-06-30"``: the first and last day of a season."""
    start = pd.Timestamp(f"{season_year:04d}-{anchor}")
    end = pd.Timestamp(f"{season_year + 1:04d}-{anchor}") - pd.Timedelta(days=1)
    return f"{start:%Y-%m-%d} … {end:%Y-%m-%d}"


def _other_season_hint(
    obs: Observations,
    grid: TimeGrid,
    sample: NDArray[np.int64],
    mask: str,
    empty: NDArray[np.bool_],
    years: NDArray[np.int64],
    season_year: int | Mapping[Any, int] | None,
) -> str:
    """For samples left empty: the season their observations lie in, and what to pass to get
    it (``""`` when they have no valid observation in any season or the season was inferred)."""
    if season_year is None and "year" not in obs.samples.columns:
        return ""  # inferred: the sample has no valid observation in any season
    keep = (sample >= 0) & _row_mask(obs.table, mask)
    syear, dos, has_date = _season_days(obs.table["date"], grid.anchor)
    inferred = _infer_season_years(obs, grid, sample, syear, dos, keep & has_date, obs.bands)
    pick = empty & (inferred >= 0)
    if not pick.any():
        return ""
    seasons = np.unique(inferred[inferred >= 0])
    if seasons.size > 1 and not isinstance(season_year, Mapping):
        return _several_seasons_hint(obs, grid, inferred, seasons)
    pairs, counts = np.unique(np.c_[years[pick], inferred[pick]], axis=0, return_counts=True)
    given, found = (int(v) for v in pairs[np.argmax(counts)])
    holds = (
        f"their observations lie in the season {_season_span(found, grid.anchor)} (season year "
        f"{found}, the year it starts)"
    )
    fix = f"pass --season-year {found} (season_year={found})"
    if season_year is None:
        label = int(season_label_year(given, grid.anchor))
        return (
            f"the samples' year column is read as the label (harvest) year, the year the season "
            f"ends: label year {label} is the season {_season_span(given, grid.anchor)} on a grid "
            f"starting {grid.anchor}, but {holds}; if the year column names the year the season "
            f"starts, {fix}"
        )
    return (
        f"season year {given} selects the season {_season_span(given, grid.anchor)} (named by the "
        f"year it starts), but {holds}; {fix}"
    )


def _several_seasons_hint(
    obs: Observations, grid: TimeGrid, inferred: NDArray[np.int64], seasons: NDArray[np.int64]
) -> str:
    """The hint when the samples' observations lie in several seasons: no single season year
    fits them all (naming one would only empty the others)."""
    counts = ", ".join(
        f"{int((inferred == y).sum())} in {_season_span(int(y), grid.anchor)}" for y in seasons[:4]
    ) + (", …" if seasons.size > 4 else "")
    head = (
        f"the samples' observations lie in {seasons.size} seasons ({counts}): no single "
        "--season-year (season_year=) fits them all"
    )
    if "year" not in obs.samples.columns:
        return f"{head}; composite each season apart (--where … --season-year YEAR)"
    col = pd.to_numeric(obs.samples["year"], errors="coerce").to_numpy()
    known = (inferred >= 0) & np.isfinite(col)
    pairs = np.unique(np.c_[col[known].astype(np.int64), inferred[known]], axis=0)
    split = ", ".join(f"--where year={a} --season-year {b}" for a, b in pairs[:3])
    label = {int(a): int(season_label_year(b, grid.anchor)) for a, b in pairs}
    offsets = {lab - a for a, lab in label.items()}
    fix_col = ""
    if len(offsets) == 1 and len(label) == len(pairs) and (off := offsets.pop()) != 0:
        fix_col = (
            f", or fix the year column ({'add' if off > 0 else 'subtract'} {abs(off)}): it is "
            "read as the label (harvest) year, the year the season ends"
        )
    return f"{head}; composite each season apart ({split}){fix_col}"


# =====================================================================================
# Gap filling
# =====================================================================================
#: observations at most this many days apart are always bridged by the default gap filling
MONTH_GAP_DAYS = 31


def auto_max_gap(grid: TimeGrid) -> float:
    """The default longest gap to bridge on ``grid``, in days between bin centres.

    Observations up to a month (31 days) apart are always bridged, wherever they fall in
    their bins: in bins w days wide two observations lie up to w − 1 days closer than their
    bins' centres, so the limit is 31 + w − 1 for the widest bin (35 days on CropGlobe's
    5-day grid, where monthly observations on the 1st lie 35 centre days apart from March to
    April); and never less than one missing step (twice the longest step between centres: 62
    days on a monthly grid)."""
    widths = np.diff(np.asarray(grid.edges, dtype=np.float64))
    steps = np.diff(np.asarray(grid.centers, dtype=np.float64))
    widest = float(widths.max()) if widths.size else 1.0
    longest = float(steps.max()) if steps.size else 0.0
    return max(MONTH_GAP_DAYS + widest - 1.0, 2.0 * longest)


def fill_gaps(
    values: ArrayLike,
    grid: TimeGrid,
    *,
    max_gap_days: float | None = None,
    edge: Edge = "hold",
) -> NDArray[np.float32]:
    """Fill missing bins by linear interpolation in time between valid bins.

    A gap is bridged only when the distance between the centres of its two valid neighbours
    (:attr:`TimeGrid.centers`, days) is at most ``max_gap_days``; longer gaps stay NaN.
    Leading and trailing gaps (before the first / after the last valid bin) are held at the
    nearest valid value (``edge="hold"``, whatever their length) or left NaN (``"nan"``).
    Series without any valid value stay all NaN. Vectorised with forward/backward index
    propagation (``np.maximum.accumulate``), in chunks of samples.

    Args:
        values: float array (..., T), typically (N, C, T); NaN = missing.
        grid: the time grid of the last axis (T bins).
        max_gap_days: longest gap to bridge, in days; None bridges every inner gap.
        edge: ``"hold"`` or ``"nan"``.

    Returns:
        float32 array of the input's shape (a new array).

    Raises:
        GridError: the last axis does not have ``grid.n_steps`` steps.
        ParameterError: unknown ``edge`` or a negative ``max_gap_days``.
    """
    v = np.array(values, dtype=np.float32, order="C")  # a C-contiguous copy: filled in place
    if v.ndim == 0 or v.shape[-1] != grid.n_steps:
        raise GridError(
            f"values have {v.shape[-1] if v.ndim else 0} time steps but the grid has "
            f"{grid.n_steps} ({grid}); pass the grid the values are on"
        )
    _fill_inplace(v, grid.centers, max_gap_days, edge)
    return v


#: fill gaps with the compiled loop (:func:`cropglobe._kernels.fill_rows`; 8 to 15 times
#: faster than the numpy path, whose results it equals bit for bit); the tests switch it off
_FILL_COMPILED = True


def _fill_inplace(
    v: NDArray[np.float32],
    centers: NDArray[np.float64],
    max_gap_days: float | None,
    edge: str,
) -> None:
    """Gap-fill a C-contiguous float32 array (..., T) in place (see :func:`fill_gaps`)."""
    _check_choice("edge", edge, ("hold", "nan"))
    if max_gap_days is not None and max_gap_days < 0:
        raise ParameterError(
            f"max_gap_days must be a non-negative number of days or None, got {max_gap_days}"
        )
    t = v.shape[-1]
    if v.size == 0 or t == 0:
        return
    centers = np.asarray(centers, dtype=np.float64)
    if _FILL_COMPILED and v.flags.c_contiguous:  # reshape must give a view to fill in place
        from cropglobe._kernels import fill_rows

        if fill_rows(v.reshape(-1, t), centers, max_gap_days, edge == "hold"):
            return
    flat = v.reshape(-1)  # a view (v is C-contiguous)
    chunk = max(1, (_CHUNK_SERIES * 16) // t) * t  # whole series per chunk
    for lo in range(0, flat.size, chunk):
        _fill_flat(flat[lo : lo + chunk], centers, max_gap_days, edge == "hold")


def _fill_flat(
    part: NDArray[np.float32],
    centers: NDArray[np.float64],
    max_gap_days: float | None,
    hold: bool,
) -> None:
    """Gap-fill whole series laid end to end in a flat view (M · T,) in place.

    The previous / next valid element of each missing one comes from a running count of valid
    elements (``cumsum``) indexing the list of valid positions; a neighbour counts only when it
    lies in the same series.
    """
    t = centers.size
    nan = np.isnan(part)
    miss = np.flatnonzero(nan)
    if miss.size == 0:
        return
    good = np.flatnonzero(~nan)
    if good.size == 0:
        return
    n_before = np.cumsum(~nan, dtype=np.int64 if part.size >= 2**31 else np.int32)
    del nan
    k: NDArray[Any] = n_before.take(miss)  # valid elements before each missing one
    del n_before
    col = miss % t
    row0 = miss - col
    pf = good.take(np.maximum(k - 1, 0))
    qf = good.take(np.minimum(k, good.size - 1))
    has_p = (k > 0) & (pf >= row0)
    has_q = (k < good.size) & (qf < row0 + t)
    del k, row0
    inner = has_p & has_q
    if max_gap_days is not None:
        gap = centers.take(col + (qf - miss), mode="clip") - centers.take(
            col - (miss - pf), mode="clip"
        )
        inner &= gap <= max_gap_days
    if inner.any():
        mi, ci = miss[inner], col[inner]
        pi, qi = pf[inner], qf[inner]
        x = centers.take(ci)
        x0 = centers.take(ci - (mi - pi))
        x1 = centers.take(ci + (qi - mi))
        y0 = part.take(pi).astype(np.float64)
        y1 = part.take(qi).astype(np.float64)
        part[mi] = y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    if hold:
        lead = ~has_p & has_q
        part[miss[lead]] = part.take(qf[lead])
        trail = has_p & ~has_q
        part[miss[trail]] = part.take(pf[trail])


# =====================================================================================
# Grid changes and windows
# =====================================================================================
def resample(
    ss: SeriesSet,
    grid: TimeGrid,
    *,
    method: Literal["auto", "interpolate", "median", "mean"] = "auto",
) -> SeriesSet:
    """Move a SeriesSet to another grid with the same season anchor.

    * ``"interpolate"`` (coarse -> fine, e.g. monthly -> 5-day): each series is linearly
      interpolated between the centres of its valid bins and read at the target centres; before
      the first / after the last valid centre the edge value is held (as the shared
      ``cropglobe_format`` files were made). Target bins whose centre lies outside the source
      grid's span are NaN.
    * ``"median"`` / ``"mean"`` (fine -> coarse, e.g. 5-day -> monthly or dekad): NaN-median
      (or mean) of the source bins whose centres fall in each target bin; NaN when none is valid.
    * ``"auto"``: interpolate when the target's median bin is shorter than the source's, else
      median.

    Args:
        ss: the series (N, C, T_src).
        grid: the target grid (T_dst bins), same anchor as ``ss.grid``.
        method: see above.

    Returns:
        A new SeriesSet (N, C, T_dst) on ``grid``; labels, classes, meta and attrs kept.

    Raises:
        GridError: the anchors differ (call :func:`shift_anchor` first).
        ParameterError: unknown ``method``.
    """
    _check_choice("method", method, ("auto", "interpolate", "median", "mean"))
    src = ss.grid
    if grid.anchor not in ss.seasons:  # a set of several seasons: any of its anchors
        raise GridError(
            f"resample: the series' grid starts its season on {src.anchor!r} but the target grid "
            f"on {grid.anchor!r}; call cropglobe.composite.shift_anchor(ss, {grid.anchor!r}) "
            "first, then resample"
        )
    if src.same_axis(grid):
        return _with_values(ss, ss.values.copy(), grid)
    if method == "auto":
        method = "interpolate" if np.median(grid.lengths) < np.median(src.lengths) else "median"
    if method == "interpolate":
        out = _interpolate_grid(ss.values, src, grid)
    else:
        out = _aggregate_grid(ss.values, src, grid, method)
    return _with_values(ss, out, grid)


def _with_values(ss: SeriesSet, values: NDArray[np.float32], grid: TimeGrid) -> SeriesSet:
    return SeriesSet(values, ss.bands, grid, ss.labels, ss.classes, ss.meta, dict(ss.attrs))


def _interpolate_grid(
    values: NDArray[np.float32], src: TimeGrid, dst: TimeGrid
) -> NDArray[np.float32]:
    """Linear interpolation between valid source centres, edge hold, read at target centres."""
    filled = fill_gaps(values, src, max_gap_days=None, edge="hold")
    sc, dc = src.centers, dst.centers
    out = _linear_at(filled, sc, np.clip(dc, sc[0], sc[-1]))
    outside = (dc < src.edges[0]) | (dc >= src.edges[-1])
    out[..., outside] = np.nan
    return out


def _linear_at(
    values: NDArray[np.float32], x: NDArray[np.float64], xq: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Linear interpolation of (…, S) values known at x (S,) at points xq (T,) inside x's range.

    Where one of the two bracketing values is NaN the other is used only if its weight is 1
    (exact hit); otherwise the result is NaN.
    """
    s = x.size
    if s == 1:
        return np.repeat(values[..., :1], xq.size, axis=-1).astype(np.float32)
    j = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, s - 2)
    w = (xq - x[j]) / (x[j + 1] - x[j])
    a = values[..., j].astype(np.float64)
    b = values[..., j + 1].astype(np.float64)
    res = a * (1 - w) + b * w
    res = np.where(w == 0, a, np.where(w == 1, b, res))
    return res.astype(np.float32)


def _aggregate_grid(
    values: NDArray[np.float32], src: TimeGrid, dst: TimeGrid, method: str
) -> NDArray[np.float32]:
    """NaN-median / mean of the source bins whose centres fall in each target bin."""
    edges = np.asarray(dst.edges, dtype=np.float64)
    sc = src.centers
    member = np.searchsorted(edges, sc, side="right") - 1
    member[(sc < edges[0]) | (sc >= edges[-1])] = -1
    n, c, _ = values.shape
    out = np.full((n, c, dst.n_steps), np.nan, dtype=np.float32)
    for t in range(dst.n_steps):  # loop over target bins, vectorised over all series
        idx = np.flatnonzero(member == t)
        if idx.size == 0:
            continue
        part = values[:, :, idx]
        if method == "median":
            out[:, :, t] = _nanmedian_last(part)
        else:
            cnt = (~np.isnan(part)).sum(axis=-1)
            tot = np.where(np.isnan(part), 0, part).astype(np.float64).sum(axis=-1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, :, t] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    return out


def select_window(ss: SeriesSet, start_doy: int, end_doy: int) -> SeriesSet:
    """The time steps whose bin centre lies within days of season ``start_doy`` … ``end_doy``.

    A thin wrapper of :meth:`SeriesSet.select_window`; on the 5-day CropGlobe grid
    ``select_window(ss, 121, 334)`` gives bins 24 … 66 (43 steps).
    """
    return ss.select_window(int(start_doy), int(end_doy))


def paper_window(ss: SeriesSet) -> SeriesSet:
    """The paper's 43-step input: days of season 121 … 334 of the 5-day grid (bins 24 … 66).

    A series not on (a window of) the 5-day grid is first resampled to
    ``TimeGrid.cropglobe(anchor)`` with :func:`resample`. Days count from the grid's anchor, so
    for an aligned southern-hemisphere season (anchor ``"07-01"``) the window is the same
    stretch of that season.

    Raises:
        GridError: the series does not cover the whole window.
    """
    full = TimeGrid.cropglobe(ss.grid.anchor)
    if not set(ss.grid.edges) <= set(full.edges):
        ss = resample(ss, full)
    out = ss.select_window(_PAPER_START, _PAPER_END)
    if out.n_steps != _PAPER_STEPS:
        raise GridError(
            f"paper_window: the series covers only {out.n_steps} of the {_PAPER_STEPS} 5-day steps "
            f"of days {_PAPER_START}–{_PAPER_END} (its grid: {ss.grid}); composite the whole "
            "season first"
        )
    return out


# =====================================================================================
# Seasons: anchors, shifts, alignment
# =====================================================================================
def _grid_like(grid: TimeGrid, anchor: str) -> TimeGrid:
    """A grid of the same kind as ``grid`` over a whole season starting on ``anchor``."""
    if grid.kind == "monthly":
        return TimeGrid.monthly(anchor)
    if grid.kind == "dekad":
        return TimeGrid.dekads(anchor)
    step = grid.step_days
    if step is None:
        raise GridError(
            f"shift_anchor cannot rebuild a '{grid.kind}' grid with unequal bins ({grid}) on "
            "another anchor; resample to a regular, monthly or dekad grid first"
        )
    return TimeGrid.regular(step, 1, 365, anchor)


def _season_delta(old_anchor: str, new_anchor: str) -> int:
    """Day of season d of the new season is day d + delta of the old one, for the two seasons
    that end in the same calendar year (a season starting after 1 January ends in the year
    after its start)."""
    a0, a1 = parse_anchor(old_anchor), parse_anchor(new_anchor)
    return (a1 - a0) - 365 * (int(a1 > 1) - int(a0 > 1))


def neighbour_season(old_anchor: str, new_anchor: str) -> Literal["previous", "next"] | None:
    """Which neighbour season :func:`shift_anchor` needs to move a series from ``old_anchor``
    to ``new_anchor``: ``"previous"`` (``"01-01"`` -> ``"07-01"``: July–December of the year
    before), ``"next"`` (``"07-01"`` -> ``"01-01"``), or None (same anchor)."""
    delta = _season_delta(old_anchor, new_anchor)
    if delta == 0:
        return None
    return "previous" if delta < 0 else "next"


def shift_anchor(
    ss: SeriesSet,
    anchor: str,
    *,
    previous_season: SeriesSet | None = None,
    next_season: SeriesSet | None = None,
    wrap: bool = False,
) -> SeriesSet:
    """Re-express a series on a grid whose season starts on ``anchor`` (e.g. ``"07-01"``).

    The new season is the one that *ends in the same calendar year* as ``ss``'s season, so a
    sample keeps its label (harvest) year: a calendar-year 2023 series becomes the July 2022 –
    June 2023 season (whose January–March peak is the southern summer crop labelled 2023), and a
    July 2022 – June 2023 series becomes calendar year 2023. The new season therefore reaches
    *before* ``ss``'s season when ``anchor`` lies later in the year than ``ss``'s anchor
    (``"01-01"`` -> ``"07-01"``: July–December come from ``previous_season``, the same samples'
    series of the year before) and *after* it otherwise (``"07-01"`` -> ``"01-01"``:
    July–December come from ``next_season``). With ``wrap=True`` those days are taken from
    ``ss`` itself, the series read as one repeating annual cycle — what a single calendar year
    holding a whole southern season allows (it is how :func:`cropglobe.simulate.simulate_world`
    aligns southern series; July–December then show the next crop's start rather than this
    one's). Without any of them those days are NaN.

    The new grid is of the same kind: monthly and dekad grids are rebuilt on calendar months
    (values are copied exactly, no smoothing); regular grids (5-day …) get bins starting on the
    anchor, and each new bin takes the linear interpolation between the two source bins whose
    centres bracket its centre (the single valid one when the other is missing, NaN when both
    are).

    Args:
        ss: series (N, C, T) on a whole-season grid.
        anchor: ``"MM-DD"`` first day of the new season.
        previous_season: series of the season before ``ss``'s (same samples, bands and grid);
            used when the new season starts before ``ss``'s.
        next_season: series of the season after ``ss``'s; used when the new season ends after
            ``ss``'s.
        wrap: take the days outside ``ss``'s season from ``ss`` itself (one year as a repeating
            cycle); exclusive with ``previous_season`` and ``next_season``.

    Returns:
        A new SeriesSet on the re-anchored grid; ``meta["year"]`` (when present) is the new
        season year (the year the new season starts: 2022 for calendar 2023 -> ``"07-01"``);
        ``attrs["shifted_from_anchor"]`` names the old anchor.

    Raises:
        GridError: ``ss`` does not cover a whole season, a neighbour season is on another grid,
            or the grid kind cannot be rebuilt.
        DataFormatError: a neighbour season holds other samples or bands.
        ParameterError: a neighbour season the new season does not use (e.g. ``next_season``
            for ``"01-01"`` -> ``"07-01"``, which needs ``previous_season``), or ``wrap``
            together with a neighbour season.
    """
    ss.require_one_season("shift_anchor")
    a0, a1 = parse_anchor(ss.grid.anchor), parse_anchor(anchor)
    if a0 == a1:
        return _with_values(ss, ss.values.copy(), ss.grid)  # the same season: nothing to move
    if ss.grid.edges[0] != 1 or ss.grid.edges[-1] != 366:
        raise GridError(
            f"shift_anchor needs series over a whole season (days 1–365), got grid '{ss.grid}'; "
            "shift the full-season series, then select a window"
        )
    if wrap and (previous_season is not None or next_season is not None):
        raise ParameterError(
            "shift_anchor: wrap=True takes the days outside the season from ss itself; pass "
            "either wrap=True or previous_season=/next_season=, not both"
        )
    dst = _grid_like(ss.grid, anchor)
    delta = _season_delta(ss.grid.anchor, anchor)
    src = ss.grid
    needed, unused = ("previous", "next") if delta < 0 else ("next", "previous")
    given = {"previous": previous_season, "next": next_season}
    if given[unused] is not None:
        raise ParameterError(
            f"shift_anchor: {unused}_season is not used: the season starting {anchor} that ends "
            f"in the same year as ss's (starting {ss.grid.anchor}) reaches into the {needed} "
            f"season, so pass {needed}_season= (the same samples' series of the {needed} "
            f"season) or wrap=True instead"
        )
    other = given[needed]
    if other is not None:
        other = _match_neighbour(ss, other, f"{needed}_season", "ss")
        nb_values = other.values
    elif wrap:
        nb_values = ss.values
    else:
        nb_values = np.full_like(ss.values, np.nan)
    if delta < 0:
        both = np.concatenate([nb_values, ss.values], axis=-1)
        x = np.r_[src.centers - 365, src.centers]
    else:
        both = np.concatenate([ss.values, nb_values], axis=-1)
        x = np.r_[src.centers, src.centers + 365]
    xq = dst.centers + delta
    inside = (xq >= x[0]) & (xq <= x[-1])
    vals = _linear_nanfallback(both, x, np.clip(xq, x[0], x[-1]))
    vals[..., ~inside] = np.nan
    meta = ss.meta.copy()
    if "year" in meta.columns:
        meta["year"] = pd.to_numeric(meta["year"], errors="coerce") + (int(a0 > 1) - int(a1 > 1))
    attrs = dict(ss.attrs)
    attrs["shifted_from_anchor"] = ss.grid.anchor
    if wrap:
        attrs["shifted_wrapped"] = True
    return SeriesSet(vals, ss.bands, dst, ss.labels, ss.classes, meta, attrs)


def align_seasons(
    ss: SeriesSet, seasons: Mapping[str, str], *, group_by: str = "country"
) -> SeriesSet:
    """Season-aligned data: the groups named in ``seasons`` re-anchored, the others unchanged,
    in one set of several seasons (``meta["season_anchor"]``), samples in their order.

    Each named group is moved with :func:`shift_anchor` (``wrap=True``: the months its new
    season takes from the year before are the same months of its own year, as for a series
    that holds one calendar year, the CropGlobe release's case). From raw observations,
    composite each group with its anchor instead, which needs no such stand-in. A grid whose
    bins depend on the anchor (months, dekads) keeps the set's bins, as days of season: a
    re-anchored group is resampled to them.

    Args:
        ss: whole-season series (days 1–365), e.g. the release's ``for_CropNet`` files on the
            calendar-year grid; it may already hold several seasons.
        seasons: group -> ``"MM-DD"`` anchor (``{"ARG": "07-01", "AUS": "07-01"}``); a group
            already on that anchor is left as it is. The group column keeps its values (a year
            column of a moved group would otherwise become the year its season starts).
        group_by: the metadata column naming the groups.

    Raises:
        DataFormatError: ``group_by`` is not a column, or a group named is not in it.
        GridError: a bad anchor, a group to move that holds several seasons, or a grid over
            part of a season.
    """
    if not seasons:
        return ss
    if group_by not in ss.meta.columns:
        raise DataFormatError(
            f"align_seasons: no column {group_by!r} to find the groups in; columns: "
            f"{', '.join(map(str, ss.meta.columns))}"
        )
    names = ss.meta[group_by].astype(str).to_numpy()
    present = list(dict.fromkeys(names.tolist()))
    absent = [g for g in seasons if str(g) not in present]
    if absent:
        raise DataFormatError(
            f"align_seasons: {', '.join(map(str, absent))} not in the {group_by!r} column; "
            f"present: {', '.join(present)}"
        )
    seasons = {str(g): anchor_text(a) for g, a in seasons.items()}  # "7-1" -> "07-01"
    order = np.arange(ss.n_samples)
    anchors = ss.anchors
    moving = [g for g, a in seasons.items() if set(anchors[names == g]) != {a}]
    moved = np.isin(names, moving)
    parts, index = [ss.subset(~moved)], [order[~moved]]
    for g in moving:
        a, rows = seasons[g], names == g
        group = ss.subset(rows)
        group.require_one_season(f"re-anchoring {g}")
        part = shift_anchor(group, a, wrap=True)
        if part.grid.edges != ss.grid.edges:  # months of another anchor: the others' days
            part = resample(part, TimeGrid(ss.grid.edges, a, "custom"))
        # the group keeps its name, though a year column becomes the year its season starts
        part.meta[group_by] = group.meta[group_by].to_numpy()
        parts.append(part)
        index.append(order[rows])
    if not moving:
        return ss
    out = SeriesSet.concat([p for p in parts if p.n_samples], mixed_seasons=True)
    back = np.argsort(np.concatenate([i for i, p in zip(index, parts, strict=True) if p.n_samples]))
    aligned = out.subset(back)
    aligned.attrs = {**ss.attrs, "aligned_seasons": dict(seasons)}
    return aligned


def _match_neighbour(ss: SeriesSet, other: SeriesSet, what: str, main: str) -> SeriesSet:
    """``other`` (a neighbour season of ``ss``) checked to hold the same samples, bands and
    grid, in ``ss``'s sample order; ``what`` and ``main`` name the two in errors
    (``"previous_season"`` and ``"ss"``, or ``"--previous-season FILE"`` and the input file).

    Same samples: the same ``sample_id`` values when both have the column (reordered to
    ``ss``'s order), else the same number of samples with the same labels.

    Raises:
        GridError: another grid.
        DataFormatError: other bands or samples.
    """
    if not other.grid.same_axis(ss.grid):
        raise GridError(
            f"{what} is on grid '{other.grid}' but {main} on '{ss.grid}'; composite both to one "
            "grid"
        )
    if other.bands != ss.bands:
        raise DataFormatError(
            f"{what} holds bands {list(other.bands)}, expected the same bands as {main}: "
            f"{list(ss.bands)}; pass the same samples' series of that season"
        )
    fix = "pass the same samples' series of that season (the same --where selection)"
    if "sample_id" in ss.meta.columns and "sample_id" in other.meta.columns:
        mine = ss.meta["sample_id"].astype(str).to_numpy()
        theirs = other.meta["sample_id"].astype(str).to_numpy()
        if not np.array_equal(mine, theirs):
            pos = pd.Index(theirs)
            missing = ~np.isin(mine, theirs)
            if missing.any() or not pos.is_unique or mine.size != theirs.size:
                extra = np.setdiff1d(theirs, mine)
                raise DataFormatError(
                    f"{what} holds other samples than {main}: {int(missing.sum())} of "
                    f"{mine.size} sample ids of {main} are not in it (e.g. "
                    f"{list(mine[missing][:3])}) and {extra.size} of its {theirs.size} are not "
                    f"in {main}; {fix}"
                )
            other = other.subset(pos.get_indexer(pd.Index(mine)))
        return other
    if other.n_samples != ss.n_samples:
        raise DataFormatError(
            f"{what} holds {other.n_samples} samples, expected the same {ss.n_samples} samples "
            f"as {main}; {fix}"
        )
    same = np.array_equal(np.asarray(other.labels), np.asarray(ss.labels)) and list(
        other.classes
    ) == list(ss.classes)
    if not same:
        raise DataFormatError(
            f"{what} holds {other.n_samples} samples as {main} does but with other labels (no "
            f"sample_id to match them); {fix}"
        )
    return other


def _linear_nanfallback(
    values: NDArray[np.float32], x: NDArray[np.float64], xq: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Like :func:`_linear_at` but a missing neighbour falls back to the valid one."""
    s = x.size
    if s == 1:
        return np.repeat(values[..., :1], xq.size, axis=-1).astype(np.float32)
    j = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, s - 2)
    w = (xq - x[j]) / (x[j + 1] - x[j])
    a = values[..., j].astype(np.float64)
    b = values[..., j + 1].astype(np.float64)
    wa = np.where(np.isnan(a), 0.0, 1 - w)
    wb = np.where(np.isnan(b), 0.0, w)
    tot = wa + wb
    num = np.where(wa > 0, a, 0.0) * wa + np.where(wb > 0, b, 0.0) * wb
    with np.errstate(invalid="ignore", divide="ignore"):
        res = np.where(tot > 0, num / np.where(tot > 0, tot, 1.0), np.nan)
    return res.astype(np.float32)


def shift_series(ss: SeriesSet, days: float, *, edge: Edge = "nan") -> SeriesSet:
    """Shift every series in time by ``days`` (positive = later), on the same grid.

    The value at bin centre t becomes the linear interpolation of the original series at
    t − days (between the two bracketing bin centres; a missing neighbour falls back to the
    valid one). Where t − days falls outside the original centres the result is NaN
    (``edge="nan"``) or the nearest edge value (``edge="hold"``). Used by stress tests that
    mimic a shifted phenology.

    Args:
        ss: series (N, C, T).
        days: shift in days; may be fractional or negative.
        edge: ``"nan"`` (default) or ``"hold"``.

    Returns:
        A new SeriesSet on the same grid.
    """
    _check_choice("edge", edge, ("hold", "nan"))
    c = ss.grid.centers
    xq = c - float(days)
    vals = _linear_nanfallback(ss.values, c, np.clip(xq, c[0], c[-1]))
    if edge == "nan":
        vals[..., (xq < c[0]) | (xq > c[-1])] = np.nan
    else:
        vals = _hold_edges(ss.values, vals, xq < c[0], xq > c[-1])
    return _with_values(ss, vals, ss.grid)


def _hold_edges(
    orig: NDArray[np.float32],
    vals: NDArray[np.float32],
    before: NDArray[np.bool_],
    after: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """Set steps before/after the data range to the first/last valid value of each series."""
    t = orig.shape[-1]
    valid = ~np.isnan(orig)
    steps = np.arange(t)
    first = np.where(valid, steps, t).min(axis=-1)
    last = np.where(valid, steps, -1).max(axis=-1)
    fv = np.take_along_axis(orig, np.minimum(first, t - 1)[..., None], axis=-1)
    lv = np.take_along_axis(orig, np.maximum(last, 0)[..., None], axis=-1)
    vals = np.where(before, fv, vals)
    return np.where(after, lv, vals).astype(np.float32)


#: The window of days of season the paper's models see (May–November on a calendar grid).
PAPER_WINDOW: tuple[int, int] = (_PAPER_START, _PAPER_END)
#: Share of its amplitude below the maximum within which a class-mean NDVI curve counts as
#: being at its peak (the peak is the centre of those bins).
_TOP_SHARE = 0.2
#: Anchors :func:`season_findings` may suggest: calendar years and July–June seasons.
_CANDIDATE_ANCHORS = ("01-01", "07-01")


@dataclass(frozen=True)
class _GroupPeaks:
    """Class-mean NDVI peaks of one group of samples."""

    group: str
    n_samples: int
    classes: list[str]
    peak_dos: NDArray[np.float64]  # (K,) bin centre of each class's peak, days of season
    peak_ndvi: NDArray[np.float64]  # (K,)
    outside: NDArray[np.bool_]  # (K,) peak outside the window (or on a cut edge of the grid)
    at_edge: NDArray[np.bool_]  # (K,) maximum on the first/last step with data, season going on
    observed: tuple[int, int]  # first and last day of season with data in the group's classes
    # False when the group's only classes are the catch-all "other" or unlabelled samples (in
    # labelled data): no crop season to time, so no vote for an anchor
    checkable: bool = True


def _group_peaks(
    ss: SeriesSet, group_by: str, window: tuple[int, int], min_samples: int
) -> list[_GroupPeaks]:
    """Per group: the peak of each class's mean NDVI curve and whether it lies in ``window``.

    A class's peak is the centre of its high season, the contiguous run of bins around the
    maximum where its mean curve lies within :data:`_TOP_SHARE` of its amplitude from the
    maximum (circular on a whole-season grid, so a December–January top is centred on the turn
    of the year; a second, lower peak does not pull it): robust to the broad
    plateaus of perennial crops (sugarcane stays green for months, and the maximum of a noisy
    plateau can sit anywhere on it). A maximum on the first (last) bin with data, when the
    season goes on before (after) it — a grid cut to a window, or observations that stop in
    July — counts as outside: the curve is still rising there, its true peak lies beyond the
    data (and its position cannot vote for another anchor).
    Classes with fewer than ``min(min_samples, largest class)`` samples in the group are left
    out (their mean curve is noise), and so is the catch-all class ``"other"`` when the group
    has another class (a mixture of crops and grassland has no season of its own: its mean
    curve can peak in any month).
    """
    curve: NDArray[Any] = ndvi(ss.values, ss.bands)  # (N, T); BandError without NDVI, B08+B04
    comp = ss.attrs.get("composite")
    if isinstance(comp, dict) and comp.get("held_fraction", 0) and comp.get("edge") == "hold":
        curve = _unheld(curve)  # held ends are no season: a plateau of repeats is not a peak
    groups = (
        ss.meta[group_by].astype(str).to_numpy()
        if group_by in ss.meta.columns
        else np.full(ss.n_samples, "all", dtype=object)
    )
    centers = ss.grid.centers
    t = centers.size
    cut_start, cut_end = ss.grid.edges[0] > 1, ss.grid.edges[-1] < 366
    w0, w1 = window
    names = np.array([*ss.classes, "unlabelled"], dtype=object)
    labelled_data = bool((np.asarray(ss.labels) >= 0).any())
    out: list[_GroupPeaks] = []
    for group in pd.unique(groups):  # loop over groups, vectorised inside
        in_g = groups == group
        cur = curve[in_g]
        uniq, inv, counts = np.unique(ss.labels[in_g], return_inverse=True, return_counts=True)
        valid = ~np.isnan(cur)
        sums = np.zeros((uniq.size, t))
        cnts = np.zeros((uniq.size, t))
        np.add.at(sums, inv, np.where(valid, cur, 0.0))
        np.add.at(cnts, inv, valid)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(cnts > 0, sums / np.maximum(cnts, 1), -np.inf)
        use = np.isfinite(means).any(axis=1)
        unlabelled = uniq < 0  # a season of its own only where no sample is labelled
        if (use & ~unlabelled).any():
            use &= ~unlabelled
        if use.any():
            use &= counts >= min(min_samples, int(counts[use].max()))
        catch_all = names[uniq] == "other"
        if (use & ~catch_all).any():
            use &= ~catch_all
        crops = use & ~catch_all & (~unlabelled if labelled_data else True)
        peak_bin = np.argmax(means, axis=1)[use]
        dos = _top_centre(means[use], centers, whole=not (cut_start or cut_end))
        # the first/last bin with a value: a curve whose maximum sits there, with no data
        # before/after it in the season, may peak beyond the observations
        has = np.isfinite(means[use])
        first = np.argmax(has, axis=1)
        last = t - 1 - np.argmax(has[:, ::-1], axis=1)
        at_edge = ((peak_bin == first) & (cut_start | (first > 0))) | (
            (peak_bin == last) & (cut_end | (last < t - 1))
        )
        outside = (dos < w0) | (dos > w1) | at_edge
        out.append(
            _GroupPeaks(
                group=str(group),
                n_samples=int(in_g.sum()),
                classes=[str(names[u]) for u in uniq[use]],
                peak_dos=dos.astype(np.float64),
                peak_ndvi=means[use, :][np.arange(peak_bin.size), peak_bin].astype(np.float64),
                outside=outside,
                at_edge=at_edge,
                observed=(
                    int(ss.grid.edges[int(first.min())]) if first.size else 0,
                    int(ss.grid.edges[int(last.max()) + 1]) - 1 if last.size else 0,
                ),
                checkable=bool(crops.any()) or not use.any(),
            )
        )
    return out


def _unheld(curve: NDArray[Any]) -> NDArray[np.float64]:
    """``curve`` (N, T) without the values gap filling held over its ends: the leading run of
    repeats of the first value and the trailing run of repeats of the last one become NaN,
    each run's observed end (the last of the leading run, the first of the trailing run)
    kept."""
    c = np.array(curve, dtype=np.float64)
    n, t = c.shape
    if t < 2 or n == 0:
        return c
    pos = np.arange(t)
    lead = c == c[:, :1]
    lead_len = np.where(lead.all(axis=1), t, np.argmin(lead, axis=1))  # run from the start
    trail = c == c[:, -1:]
    trail_len = np.where(trail.all(axis=1), t, np.argmin(trail[:, ::-1], axis=1))
    gone = (pos < (lead_len - 1)[:, None]) | (pos > (t - trail_len)[:, None])
    gone &= (lead_len < t)[:, None]  # a constant series keeps its values
    c[gone] = np.nan
    return c


def _top_centre(
    means: NDArray[np.float64], centers: NDArray[np.float64], *, whole: bool
) -> NDArray[np.float64]:
    """(K,) centre (day of season) of each curve's (K, T) high season: the contiguous run of
    bins around its maximum that lie within :data:`_TOP_SHARE` of its amplitude from the
    maximum (circular on a whole-season grid, so a December–January top is centred on the turn
    of the year). High bins elsewhere — a second peak, say — do not count: the run of the
    highest peak is taken. ``-inf`` marks missing bins; they neither count nor end a run."""
    finite = np.isfinite(means)
    hi = np.where(finite, means, -np.inf).max(axis=1, keepdims=True)
    lo = np.where(finite, means, np.inf).min(axis=1, keepdims=True)
    top = finite & (means >= hi - _TOP_SHARE * (hi - lo))
    low = finite & ~top  # the bins that end a run
    k, t = means.shape
    run = np.zeros_like(top)
    for i in range(k):
        m = int(np.argmax(np.where(finite[i], means[i], -np.inf)))
        run[i, m] = top[i, m]
        for step in (-1, 1):
            j = m
            for _ in range(t - 1):
                j += step
                if whole:
                    j %= t
                elif not 0 <= j < t:
                    break
                if j == m or low[i, j]:
                    break
                run[i, j] = top[i, j]
    if not whole:
        return np.round((run * centers).sum(axis=1) / np.maximum(run.sum(axis=1), 1), 1)
    angle = 2 * np.pi * (centers - 1) / 365
    x, y = (run * np.cos(angle)).sum(axis=1), (run * np.sin(angle)).sum(axis=1)
    return np.round((np.arctan2(y, x) % (2 * np.pi)) * 365 / (2 * np.pi) + 1, 1)


def _season_group_peaks(
    ss: SeriesSet, group_by: str, window: tuple[int, int], min_samples: int
) -> list[tuple[str, _GroupPeaks]]:
    """:func:`_group_peaks` with each group's season anchor; a set of several seasons
    (season-aligned data) is checked one season at a time, each group in its own season
    (a group holding two seasons is checked in each), in the order the groups first appear."""
    if len(ss.seasons) == 1:
        return [(ss.grid.anchor, gp) for gp in _group_peaks(ss, group_by, window, min_samples)]
    anchors = ss.anchors
    found: list[tuple[str, _GroupPeaks]] = []
    for a in ss.seasons:
        part = ss.subset(anchors == a)
        found += [(a, gp) for gp in _group_peaks(part, group_by, window, min_samples)]
    if group_by not in ss.meta.columns:
        return found
    first = {g: i for i, g in enumerate(dict.fromkeys(ss.meta[group_by].astype(str)))}
    return sorted(found, key=lambda f: first.get(f[1].group, len(first)))


def _calendar_doy(dos: NDArray[np.float64] | float, anchor: str) -> NDArray[np.int64]:
    """Day of year (non-leap, 1…365) of days of season on a grid starting ``anchor``."""
    d = np.floor(np.asarray(dos, dtype=np.float64)).astype(np.int64)
    return (parse_anchor(anchor) - 1 + d - 1) % 365 + 1


def _best_anchor(gp: _GroupPeaks, anchor: str, window: tuple[int, int]) -> str | None:
    """The candidate anchor that puts most class peaks inside ``window`` (centred best on
    ties), when it puts more inside than ``anchor`` does; else None."""
    known = ~gp.at_edge  # peaks beyond the data have no known position
    if not gp.checkable or not known.any():
        return None
    doy = _calendar_doy(gp.peak_dos[known], anchor)
    w0, w1 = window
    mid = (w0 + w1) / 2

    def score(a: str) -> tuple[int, float]:
        d = (doy - parse_anchor(a)) % 365 + 1
        return int(((d >= w0) & (d <= w1)).sum()), -float(np.abs(np.median(d) - mid))

    current = int((~gp.outside[known]).sum())
    best = max(_CANDIDATE_ANCHORS, key=score)
    return best if best != anchor and score(best)[0] > current else None


def detect_season_alignment(
    ss: SeriesSet,
    band: str = "NDVI",
    *,
    window: tuple[int, int] = PAPER_WINDOW,
    group_by: str = "country",
    min_samples: int = 10,
) -> pd.DataFrame:
    """When does NDVI peak in each group? Flags class peaks outside the window a model sees.

    For each group (``meta[group_by]``, or one group ``"all"``) the class-mean NDVI curve of
    every class present (all samples together when unlabelled; the catch-all ``"other"`` only
    when it is the only class) is computed and its peak found. A group left with only the
    catch-all class (or only unlabelled samples, in labelled data) has no crop season to time:
    it is never unaligned and its note says it has no checkable class.
    A class whose peak lies outside ``window`` (days of season; the paper's models see days
    121–334, May–November on a calendar-year grid) — or on the first/last bin of a grid cut
    shorter than the season, where the curve is still rising — is *outside*: the models see
    only part of its season. When another anchor (``"01-01"`` or ``"07-01"``) would bring more
    class peaks inside the window, the season looks unaligned (typically a southern-hemisphere
    summer season, peaking December–April, on a calendar-year grid) and that anchor is
    suggested: re-composite with it, or :func:`shift_anchor` the series (the new season ends in
    the same year, so a calendar year's January–April peak lands in the middle of the July–June
    season). The reference leaves open whether the release stores ARG/AUS
    aligned; detect it from the data, never assume.

    Args:
        ss: series with an ``NDVI`` band, or ``B08`` and ``B04`` to compute it.
        band: ``"NDVI"`` (the only index supported).
        window: ``(start, end)`` days of season the models see.
        group_by: metadata column splitting the samples (missing: one group ``"all"``).
        min_samples: classes with fewer samples in a group (and fewer than its largest class)
            are left out.

    Returns:
        DataFrame, one row per group: ``<group_by>``, ``n_samples``, ``n_classes``,
        ``peak_dos`` (median of the class peaks, day of season of the bin centre; NaN without
        NDVI), ``peak_month`` (its calendar month 1–12, −1 without NDVI), ``peak_ndvi``,
        ``class_peaks`` (``"class:dos, …"``), ``classes_outside`` (the same for the classes
        outside the window), ``unaligned`` (bool: another anchor brings more peaks inside),
        ``unaligned_southern``
        (the same; kept for compatibility), ``suggested_anchor`` (``""`` when none helps) and
        ``note``.

    Raises:
        BandError: NDVI cannot be computed from the bands.
        ParameterError: ``band`` is not ``"NDVI"`` or a bad ``window``.
    """
    if band.upper() != "NDVI":
        raise ParameterError(f"band must be 'NDVI' (the index whose peak is timed), got {band!r}")
    window = _check_window(window)
    rows: list[dict[str, Any]] = []
    for anchor, gp in _season_group_peaks(ss, group_by, window, min_samples):
        row: dict[str, Any] = {group_by: gp.group, "n_samples": gp.n_samples,
                               "n_classes": len(gp.classes)}  # fmt: skip
        if not gp.classes:
            rows.append({**row, "peak_dos": np.nan, "peak_month": -1, "peak_ndvi": np.nan,
                         "class_peaks": "", "classes_outside": "", "unaligned": False,
                         "unaligned_southern": False, "suggested_anchor": "",
                         "note": "no valid NDVI"})  # fmt: skip
            continue
        dos = float(np.median(gp.peak_dos))
        month = int(np.searchsorted(_MONTH_STARTS, _calendar_doy(dos, anchor), side="right"))
        n_out = int(gp.outside.sum())
        suggested = _best_anchor(gp, anchor, window) if n_out else None
        unaligned = suggested is not None
        w = f"days {window[0]}–{window[1]} of the season starting {anchor}"
        if not gp.checkable:
            note = (
                f"no checkable class: only {_uncheckable(gp)}, which has no crop season of its "
                "own; not checked for alignment"
            )
        elif unaligned:
            note = (
                f"{n_out} of {len(gp.classes)} class peaks lie outside {w}: the season looks "
                "unaligned (a southern-hemisphere season on a calendar-year grid?); re-anchor "
                f"to {suggested!r} (composite with that anchor, or shift_anchor(ss, "
                f"{suggested!r}, ...))"
            )
        elif n_out:
            note = f"{n_out} of {len(gp.classes)} class peaks lie outside {w}"
        else:
            note = f"class peaks inside {w}"
        rows.append(
            {
                **row,
                "peak_dos": dos,
                "peak_month": month,
                "peak_ndvi": float(np.median(gp.peak_ndvi)),
                "class_peaks": _peaks_text(gp.classes, gp.peak_dos),
                "classes_outside": _peaks_text(gp.classes, gp.peak_dos, gp.outside),
                "unaligned": bool(unaligned),
                "unaligned_southern": bool(unaligned),
                "suggested_anchor": suggested or "",
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def _uncheckable(gp: _GroupPeaks) -> str:
    """What a group without a checkable class holds: ``"the catch-all class 'other'"``…"""
    kinds = []
    if "other" in gp.classes:
        kinds.append("the catch-all class 'other'")
    if "unlabelled" in gp.classes:
        kinds.append("unlabelled samples")
    return " and ".join(kinds) or "classes without a season"


def _peaks_text(
    classes: list[str], dos: NDArray[np.float64], sel: NDArray[np.bool_] | None = None
) -> str:
    keep = np.ones(len(classes), dtype=bool) if sel is None else sel
    return ", ".join(f"{c}:{d:g}" for c, d, k in zip(classes, dos, keep, strict=True) if k)


def _check_window(window: tuple[int, int]) -> tuple[int, int]:
    try:
        w0, w1 = (int(v) for v in window)
    except (TypeError, ValueError):
        raise ParameterError(
            f"window must be (start, end) days of season, got {window!r}; e.g. (121, 334)"
        ) from None
    if not 1 <= w0 < w1 <= 365:
        raise ParameterError(
            f"window must satisfy 1 <= start < end <= 365 days of season, got {window!r}; "
            "e.g. (121, 334)"
        )
    return w0, w1


@dataclass(frozen=True)
class SeasonFinding:
    """A group of samples whose class NDVI peaks fall outside the window the models see.

    Attributes:
        group: the group's name (a country, region …; ``"all"`` without the column).
        n_samples: samples in the group.
        anchor: the series' season anchor (``"MM-DD"``).
        window: ``(start, end)`` days of season checked.
        class_peaks: class -> day of season of its mean-NDVI peak (bin centre), every class.
        outside: class -> peak day, the classes whose peak lies outside the window (or on a cut
            edge of a grid shorter than the season).
        unaligned: another anchor brings more class peaks inside the window: the season looks
            unaligned.
        suggested_anchor: that anchor (``"07-01"``, ``"01-01"``), or None when re-anchoring
            would not help.
        message: one line saying what was found (without the fix).
        fix: the exact fix: a CLI command when a source file is known, else the Python call.
    """

    group: str
    n_samples: int
    anchor: str
    window: tuple[int, int]
    class_peaks: dict[str, float]
    outside: dict[str, float]
    unaligned: bool
    suggested_anchor: str | None
    message: str
    fix: str


def season_findings(
    ss: SeriesSet,
    *,
    window: tuple[int, int] = PAPER_WINDOW,
    group_by: str = "country",
    source: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    observations: bool = False,
    min_samples: int = 10,
) -> list[SeasonFinding]:
    """The groups whose class NDVI peaks fall outside ``window``, each with the exact fix.

    The check of :func:`detect_season_alignment`, as findings to report: one per group with at
    least one class peaking outside the window (groups without NDVI or with every peak inside
    give none; a group left with only the catch-all class ``"other"``, or only unlabelled samples
    in labelled data, gives one saying it has no class to check, never unaligned). A group for
    which another anchor (``"07-01"``, ``"01-01"``) would bring more
    class peaks inside the window looks unaligned; its fix re-anchors the season
    (``cropglobe composite SOURCE -o OUT.npz --anchor 07-01``, with ``--wrap-season`` or
    ``--previous-season FILE`` for a series that is already composited).
    A group with only some classes outside (winter wheat peaking in April on a calendar-year
    grid, say) gets a wider window to consider (``--window START-END`` of train and transfer).

    Args:
        ss: the series (N, C, T), with an NDVI band or B08 and B04.
        window: ``(start, end)`` days of season the models see (the paper's 121–334 by
            default).
        group_by: metadata column splitting the samples (one group ``"all"`` without it).
        source: the file the series came from, or a mapping group -> file; None uses
            ``ss.attrs["files"]`` (relative to ``ss.attrs["root"]``) when the series was read
            from a CropGlobe folder. Without a file the fix is a Python call.
        observations: the source is a table of raw observations (the fix re-composites it)
            rather than composited series (the fix re-anchors them).
        min_samples: see :func:`detect_season_alignment`.

    Returns:
        List of :class:`SeasonFinding`, in the order the groups first appear; empty when every
        class of every group peaks inside the window.

    Raises:
        BandError: NDVI cannot be computed from the bands.
        ParameterError: a bad ``window``.
    """
    window = _check_window(window)
    whole = ss.grid.edges[0] == 1 and ss.grid.edges[-1] == 366
    out: list[SeasonFinding] = []
    for anchor, gp in _season_group_peaks(ss, group_by, window, min_samples):
        outside: dict[str, float] = {}
        suggested: str | None = None
        if not gp.checkable:  # the catch-all class or unlabelled samples alone: no season
            message = (
                f"{gp.group}: no class to check: only {_uncheckable(gp)} (crop classes with "
                f"fewer than {min_samples} samples left out), whose mean NDVI curve has no "
                "season of its own; the group's season is not checked"
            )
            fix = (
                f"label at least {min_samples} samples of a crop class in {gp.group} to check "
                "its season"
            )
        elif not gp.outside.any():
            continue
        else:
            n_out, k = int(gp.outside.sum()), len(gp.classes)
            suggested = _best_anchor(gp, anchor, window)
            outside = {c: float(d) for c, d, o in
                       zip(gp.classes, gp.peak_dos, gp.outside, strict=True) if o}  # fmt: skip
            edge = dict(zip(gp.classes, gp.at_edge, strict=True))
            listed = ", ".join(
                f"{c} day {d:g} ({_month_abbr(_calendar_doy(d, anchor))}"
                + (", a step at an end of the data" if edge[c] else "")
                + ")"
                for c, d in outside.items()
            )
            where = f"outside days {window[0]}–{window[1]} of the season starting {anchor}"
            if suggested is not None:
                message = (
                    f"{gp.group}: {n_out} of {k} class peaks lie {where} ({listed}): the season "
                    "looks unaligned (a southern-hemisphere season on a calendar-year grid?)"
                )
                fix = _anchor_fix(
                    ss, anchor, suggested, _source_file(ss, gp.group, source), observations, whole
                )
            else:
                message = (
                    f"{gp.group}: {n_out} of {k} class peaks lie {where} ({listed}): the models "
                    "see only part of their season"
                )
                fix = _window_fix(ss, gp, outside, window)
        out.append(
            SeasonFinding(
                group=gp.group,
                n_samples=gp.n_samples,
                anchor=anchor,
                window=window,
                class_peaks={c: float(d) for c, d in zip(gp.classes, gp.peak_dos, strict=True)},
                outside=outside,
                unaligned=suggested is not None,
                suggested_anchor=suggested,
                message=message,
                fix=fix,
            )
        )
    return out


def _month_abbr(doy: NDArray[np.int64] | int) -> str:
    return (pd.Timestamp(2001, 1, 1) + pd.Timedelta(days=int(doy) - 1)).strftime("%b")


def _source_file(
    ss: SeriesSet,
    group: str,
    source: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None,
) -> str | None:
    """The file holding ``group``'s series, when known."""
    if isinstance(source, Mapping):
        found = source.get(group)
        return None if found is None else str(found)
    if source is not None:
        return str(source)
    files, root = ss.attrs.get("files"), ss.attrs.get("root")
    if isinstance(files, Mapping) and group in files:
        return str(Path(str(root)) / str(files[group])) if root else str(files[group])
    return None


def _anchor_fix(
    ss: SeriesSet,
    current: str,
    anchor: str | None,
    file: str | None,
    observations: bool,
    whole: bool,
) -> str:
    """The command (or call) that re-anchors a group's season (starting ``current``) to
    ``anchor``."""
    if anchor is None:
        return (
            "no anchor brings most peaks inside the window; check the dates and the grid's "
            f"anchor ({current})"
        )
    if observations:
        src = file or "TABLE"
        return f"cropglobe composite {src} -o {_stem(src)}_{anchor}.npz --anchor {anchor}"
    if not whole:
        return (
            f"the series covers only days {ss.grid.edges[0]}–{ss.grid.edges[-1] - 1} of its "
            f"season: re-anchor the whole-season series (the release's for_CropNet "
            f"month1-12 file), e.g. cropglobe composite FULL_SEASON.npz -o OUT.npz --anchor "
            f"{anchor} --wrap-season"
        )
    nb = neighbour_season(current, anchor)
    if file is None:
        return (
            f"shift_anchor(ss, {anchor!r}, {nb}_season=<the same samples' {nb} season>), or "
            f"shift_anchor(ss, {anchor!r}, wrap=True) when one year holds the whole season"
        )
    return (
        f"cropglobe composite {file} -o {_stem(file)}_{anchor}.npz --anchor {anchor} "
        f"--wrap-season (or --{nb}-season FILE: the same samples' {nb} season)"
    )


def _window_fix(
    ss: SeriesSet, gp: _GroupPeaks, outside: dict[str, float], window: tuple[int, int]
) -> str:
    """A wider model window that takes in the outside peaks, with a 15-day margin; or, when a
    peak lies beyond the data, the longer series to use."""
    lo_grid, hi_grid = ss.grid.edges[0], ss.grid.edges[-1] - 1
    lo = max(lo_grid, min(window[0], int(np.floor(min(outside.values()))) - 15))
    hi = min(hi_grid, max(window[1], int(np.ceil(max(outside.values()))) + 15))
    if (lo_grid, hi_grid) != (1, 365) and (gp.at_edge.any() or (lo, hi) == window):
        return (
            f"the series covers only days {lo_grid}–{hi_grid} of its season and those peaks "
            "lie at or beyond its ends: use the whole-season series (the release's for_CropNet "
            "month1-12 files) to see them"
        )
    if gp.at_edge.any():
        a, b = gp.observed
        return (
            f"{gp.group}'s observations cover only days {a}–{b} of the season and those curves "
            "peak at an end of them, so their peaks lie beyond the data: use observations that "
            "cover the whole season"
        )
    return f"a wider window for the models: --window {lo}-{hi} (train, transfer)"


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".csv.gz", ".geoparquet", ".parquet", ".csv", ".npz", ".tsv", ".pq"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem
