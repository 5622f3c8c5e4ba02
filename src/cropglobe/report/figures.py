"""Figures that people would rather look at than read."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cropglobe._fs import atomic_path
from cropglobe.bands import ndvi
from cropglobe.classes import class_colors, country_table
from cropglobe.errors import DataFormatError
from cropglobe.series import SeriesSet, parse_anchor

__all__ = ["class_mean_curves", "plot_phenology"]


def class_mean_curves(
    ss: SeriesSet, group_by: str | None = "country", band: str = "NDVI"
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, int]]]:
    """Class-mean curves of one band (or NDVI) per group.

    Returns:
        ``{group: {class: (mean (T,), std (T,), n_samples)}}``; NaN observations are ignored.
    """
    if band.upper() == "NDVI":
        curve = ndvi(ss.values, ss.bands)
    else:
        from cropglobe.bands import band_index

        curve = ss.values[:, band_index(ss.bands, band), :]
    if group_by and group_by in ss.meta.columns:
        groups = ss.meta[group_by].astype(str).to_numpy()
    else:
        groups = np.full(ss.n_samples, "all", dtype=object)
    names = ss.label_names()
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray, int]]] = {}
    for g in dict.fromkeys(groups):
        out[str(g)] = {}
        for c in ss.classes:
            sel = (groups == g) & (names == c)
            if not sel.any():
                continue
            block = curve[sel]
            with np.errstate(all="ignore"):
                valid = ~np.isnan(block)
                count = valid.sum(axis=0)
                mean = np.where(count > 0, np.nansum(block, 0) / np.maximum(count, 1), np.nan)
                var = np.where(
                    count > 0,
                    np.nansum((block - mean) ** 2, 0) / np.maximum(count, 1),
                    np.nan,
                )
            out[str(g)][c] = (mean, np.sqrt(var), int(sel.sum()))
    return out


def plot_phenology(
    ss: SeriesSet,
    path: str | os.PathLike[str],
    *,
    band: str = "NDVI",
    group_by: str | None = "country",
    title: str | None = None,
    max_groups: int = 12,
    keep: Sequence[str] = (),
) -> Path:
    """Draw class-mean curves (± 1 std band) per group, one panel per group, to a PNG.

    Args:
        ss: the data; NDVI needs ``B04`` and ``B08`` (or an ``NDVI`` band).
        path: output PNG path (written atomically).
        band: ``"NDVI"`` or a band name.
        group_by: meta column giving one panel per value (``country``, ``region``), or None.
        title: figure title; defaults to a description of the data.
        max_groups: panels beyond this many groups are left out (the groups of ``keep``,
            then the largest, are kept).
        keep: groups always shown, in the first panels and titled "(source)": the source of
            a transfer, however small.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = class_mean_curves(ss, group_by, band)
    if not curves:
        raise DataFormatError("nothing to plot: the dataset holds no samples")
    first = {str(g) for g in keep}

    def rank(g: str) -> tuple[bool, int]:  # kept groups first, then the largest
        return g not in first, -sum(v[2] for v in curves[g].values())

    chosen = sorted(curves, key=rank)[: max(max_groups, 1)]
    # the kept groups (a transfer's source) in the first panels, in the order given; the
    # others alphabetically
    order = {str(g): i for i, g in enumerate(keep)}
    groups = sorted(chosen, key=lambda g: (order.get(g, len(order)), g))
    colors = dict(zip(ss.classes, class_colors(ss.classes), strict=True))
    ncols = min(4, len(groups))
    nrows = int(np.ceil(len(groups) / ncols))
    with plt.rc_context({"text.parse_math": False}):  # a "$" in a name is a dollar sign
        fig = _draw_curves(
            ss, curves, groups, band, group_by, title, colors, nrows, ncols, source_names=first
        )
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return target


def _draw_curves(
    ss: SeriesSet,
    curves: dict[str, Any],
    groups: list[str],
    band: str,
    group_by: str | None,
    title: str | None,
    colors: dict[str, Any],
    nrows: int,
    ncols: int,
    source_names: set[str] | frozenset[str] = frozenset(),
) -> Any:
    """The figure of :func:`plot_phenology` (the panels of ``source_names`` titled so)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False, sharey=True
    )
    x = ss.grid.centers
    for ax, g in zip(axes.flat, groups, strict=False):
        for c, (mean, std, n) in curves[g].items():
            col = colors[c]
            edge = "#333333" if c == "cotton" else col
            ax.plot(x, mean, color=edge, lw=1.8, label=f"{c} (n={n:,})")
            ax.fill_between(x, mean - std, mean + std, color=col, alpha=0.15, lw=0)
        ax.set_title(f"{g} (source)" if g in source_names else g)
        ax.set_xlim(ss.grid.edges[0], ss.grid.edges[-1] - 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        _label_time_axis(ax, ss, _panel_start(ss, group_by, g))
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(band.upper() if band.upper() == "NDVI" else band)
    synthetic = " — SYNTHETIC data" if ss.attrs.get("synthetic") else ""
    fig.suptitle(title or f"Class-mean {band} per {group_by or 'dataset'}{synthetic}")
    fig.tight_layout()
    return fig


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_STARTS = np.cumsum([1, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])  # day of year, 365


def _panel_start(ss: SeriesSet, group_by: str | None, group: str) -> int | None:
    """Calendar day of year (1…365) on which day 1 of a panel's axis falls: the season anchor
    of the panel's samples (``meta["season_anchor"]`` in a set of several seasons), plus the
    half-year rotation of southern-hemisphere countries in season-aligned data
    (``attrs["south_rotation_days"]``, as :mod:`cropglobe.simulate` writes it); None when the
    panel mixes seasons, or rotated and unrotated countries."""
    mine = (
        ss.meta[group_by].astype(str).to_numpy() == group
        if group_by and group_by in ss.meta.columns
        else np.ones(ss.n_samples, dtype=bool)
    )
    seasons = set(ss.anchors[mine].tolist())
    if len(seasons) > 1:
        return None
    start = parse_anchor(seasons.pop() if seasons else ss.grid.anchor)
    rotation = int(ss.attrs.get("south_rotation_days") or 0)
    if not rotation or "country" not in ss.meta.columns:
        return start
    countries = ss.meta["country"].astype(str)[mine]
    table = country_table()
    south = {
        bool(str(c) in table.index and table.loc[str(c), "hemisphere"] == "south")
        for c in countries.unique()
    }
    if len(south) != 1:
        return None
    return int((start - 1 + (rotation if south.pop() else 0)) % 365 + 1)


def _label_time_axis(ax: Any, ss: SeriesSet, start: int | None) -> None:
    """X label by the panel's season start: "day of year" for a calendar-year axis, else
    "days since MM-DD" with ticks on the first day of each month."""
    if start == 1:
        ax.set_xlabel("day of year")
        return
    if start is None:
        ax.set_xlabel("day of season (samples of several season starts)")
        return
    when = np.datetime64("2001-01-01") + np.timedelta64(start - 1, "D")  # a non-leap year
    ax.set_xlabel(f"days since {str(when)[5:]}")
    pos = (_MONTH_STARTS - start) % 365 + 1
    lo, hi = ss.grid.edges[0], ss.grid.edges[-1] - 1
    keep = (pos >= lo) & (pos <= hi)
    order = np.argsort(pos[keep])
    ax.set_xticks(pos[keep][order].tolist())
    ax.set_xticklabels([_MONTHS[i] for i in np.flatnonzero(keep)[order]], fontsize=7)


def plot_spectra(
    spectra: Any,
    path: str | os.PathLike[str],
    *,
    group_by: str | None = None,
    title: str | None = None,
    max_groups: int = 8,
) -> Path:
    """Draw class-mean reflectance spectra (± 1 std band) to a PNG, one panel per group.

    Bands the product flags as bad and the water-vapour ranges are gaps in the lines.

    Args:
        spectra: a :class:`~cropglobe.io.emit.Spectra` whose meta may hold ``label``.
        path: output PNG path (written atomically).
        group_by: meta column giving one panel per value, or None (one panel).
        title: figure title; defaults to the number of spectra.
        max_groups: panels beyond this many groups are left out (the largest are kept).

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cropglobe.features.hyperspectral import WATER_VAPOUR_NM

    wl = np.asarray(spectra.wavelengths, dtype=np.float64)
    hide = ~np.asarray(spectra.good, dtype=bool)
    for lo, hi in WATER_VAPOUR_NM:
        hide |= (wl >= lo) & (wl <= hi)
    values = spectra.values.astype(np.float64)
    values[:, hide] = np.nan
    meta = spectra.meta
    if len(spectra) == 0 or hide.all():
        raise DataFormatError("nothing to plot: the table holds no spectrum on a good band")
    labels = (
        meta["label"].where(meta["label"].notna(), "<unlabelled>").astype(str).to_numpy()
        if "label" in meta
        else np.full(len(spectra), "all spectra")
    )
    groups = (
        meta[group_by].astype(str).to_numpy()
        if group_by is not None and group_by in meta
        else np.full(len(spectra), "")
    )
    sizes = _counts(groups)
    chosen = sorted(sorted(sizes, key=lambda g: -sizes[g])[: max(max_groups, 1)])
    classes = sorted(set(labels))
    colors = dict(zip(classes, class_colors(classes), strict=True))
    ncols = min(4, len(chosen))
    nrows = int(np.ceil(len(chosen) / ncols))
    with plt.rc_context({"text.parse_math": False}):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, sharey=True
        )
        for ax, g in zip(axes.flat, chosen, strict=False):
            in_group = groups == g
            for c in classes:
                rows = values[in_group & (labels == c)]
                if not len(rows):
                    continue
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a band without values
                    mean, std = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
                ax.plot(wl, mean, color=colors[c], lw=1.4, label=f"{c} ({len(rows):,})")
                ax.fill_between(wl, mean - std, mean + std, color=colors[c], alpha=0.15, lw=0)
            ax.set_title(f"{group_by} {g}" if group_by is not None and g else "all spectra")
            ax.set_xlabel("wavelength (nm)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        for ax in axes[:, 0]:
            ax.set_ylabel("reflectance")
        for ax in list(axes.flat)[len(chosen) :]:
            ax.set_visible(False)
        fig.suptitle(title or f"class-mean reflectance spectra ({len(spectra):,} spectra)")
        fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return target


def _counts(values: Any) -> dict[str, int]:
    """Occurrences of each value of a 1-D array, as ``{value: count}``."""
    uniq, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return {str(u): int(n) for u, n in zip(uniq, counts, strict=True)}
