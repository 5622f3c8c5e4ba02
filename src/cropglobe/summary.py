"""What a dataset holds: countries, classes and counts, bands, grid, years, missing-value share,
and whether each group's season lies in the window the models see."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cropglobe.errors import BandError
from cropglobe.series import Observations, SeriesSet, TimeGrid, parse_anchor

__all__ = ["describe", "filled_text", "format_description", "infer_grid", "season_check"]


def _group_column(meta: pd.DataFrame) -> str | None:
    for col in ("country", "region"):
        if col in meta.columns and meta[col].notna().any():
            return col
    return None


def _class_table(
    names: np.ndarray, groups: np.ndarray | None, classes: tuple[str, ...]
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"group": groups if groups is not None else np.full(len(names), "all"), "class": names}
    )
    frame["class"] = frame["class"].fillna("<unlabelled>")
    table = frame.groupby(["group", "class"]).size().unstack(fill_value=0)
    order = [c for c in (*classes, "<unlabelled>") if c in table.columns]
    table = table[order]
    table["total"] = table.sum(axis=1)
    return table.astype(np.int64)


def describe(data: SeriesSet | Observations, group_by: str | None = None) -> dict[str, Any]:
    """Summary of a SeriesSet or raw Observations as a JSON-ready dict.

    Args:
        data: what to summarise.
        group_by: metadata column the class counts are split by (None: ``country``, else
            ``region``, when present).

    Keys: ``kind``, ``n_samples``, ``bands``, ``grid`` (SeriesSet) or ``dates`` (Observations),
    ``missing_fraction``, ``band_missing_fraction`` (``{band: share}``), ``empty_bands``
    (bands without any value), ``group_by``, ``class_counts``
    (``{group: {class: n, …, "total": n}}``), ``attrs``.
    """
    if isinstance(data, SeriesSet):
        meta = data.meta
        names = data.label_names()
        col = group_by if group_by is not None else _group_column(meta)
        groups = meta[col].astype(str).to_numpy() if col else None
        table = _class_table(names, groups, data.classes)
        empty = int(data.empty_samples().sum())
        band_missing = (
            np.isnan(data.values).mean(axis=(0, 2)) if data.values.size else np.zeros(data.n_bands)
        )
        out: dict[str, Any] = {
            "kind": "SeriesSet",
            "n_samples": data.n_samples,
            "bands": list(data.bands),
            "grid": str(data.grid),
            **_seasons_held(data),
            "n_steps": data.n_steps,
            "missing_fraction": round(data.missing_fraction(), 4),
            "empty_samples": empty,
        }
        out.update(_years_and_dates(data))
    else:
        meta = data.samples
        labels = meta["label"].to_numpy()
        names = np.array([*data.classes, None], dtype=object)[labels]
        col = group_by if group_by is not None else _group_column(meta)
        groups = meta[col].astype(str).to_numpy() if col else None
        table = _class_table(names, groups, data.classes)
        band_vals = data.table[list(data.bands)].to_numpy(dtype=np.float32)
        band_missing = (
            np.isnan(band_vals).mean(axis=0) if len(band_vals) else np.zeros(len(data.bands))
        )
        dates = pd.to_datetime(data.table["date"])
        per_sample = data.table.groupby("sample").size()
        out = {
            "kind": "Observations",
            "n_samples": data.n_samples,
            "n_rows": len(data.table),
            "bands": list(data.bands),
            "dates": f"{dates.min():%Y-%m-%d} … {dates.max():%Y-%m-%d}",
            "observations_per_sample": {
                "min": int(per_sample.min()),
                "median": float(per_sample.median()),
                "max": int(per_sample.max()),
            },
            "missing_fraction": round(float(np.isnan(band_vals).mean()), 4)
            if band_vals.size
            else 0,
        }
    out["band_missing_fraction"] = {
        str(b): round(float(f), 4) for b, f in zip(data.bands, band_missing, strict=True)
    }
    # bands without a single value: a model would learn nothing from them
    out["empty_bands"] = [str(b) for b, f in zip(data.bands, band_missing, strict=True) if f >= 1]
    out["group_by"] = col or "all"
    out["class_counts"] = {
        str(g): {str(k): int(v) for k, v in row.items()} for g, row in table.iterrows()
    }
    out["attrs"] = dict(data.attrs)
    return out


def _seasons_held(ss: SeriesSet) -> dict[str, Any]:
    """``{"seasons": {anchor: samples}}`` for season-aligned data (several anchors), else
    nothing."""
    if len(ss.seasons) == 1:
        return {}
    counts = pd.Series(ss.anchors).value_counts(sort=False)
    return {"seasons": {str(a): int(n) for a, n in counts.items()}}


def _years_and_dates(ss: SeriesSet) -> dict[str, Any]:
    """``years`` (season year -> samples) and ``dates`` (first … last day the series cover)
    from ``meta["year"]``; nothing without that column."""
    if "year" not in ss.meta.columns or ss.n_samples == 0:
        return {}
    years = pd.to_numeric(ss.meta["year"], errors="coerce").dropna()
    if years.empty or not np.all(years == np.round(years)):
        return {}
    counts = years.astype(np.int64).value_counts().sort_index()
    anchors = ss.anchors[years.index.to_numpy()]
    first = min(
        _season_date(int(years[anchors == a].min()), a, ss.grid.edges[0]) for a in set(anchors)
    )
    last = max(
        _season_date(int(years[anchors == a].max()), a, ss.grid.edges[-1] - 1) for a in set(anchors)
    )
    return {
        "years": {str(y): int(n) for y, n in counts.items()},
        "dates": f"{first:%Y-%m-%d} … {last:%Y-%m-%d}",
    }


def _season_date(season_year: int, anchor: str, dos: int) -> pd.Timestamp:
    """Calendar date of day of season ``dos`` of the season starting ``anchor`` in
    ``season_year`` (non-leap reference: 29 February shares 28 February's day)."""
    offset = parse_anchor(anchor) - 1 + int(dos) - 1
    year, doy = season_year + offset // 365, offset % 365 + 1
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    return pd.Timestamp(year, 1, 1) + pd.Timedelta(days=doy - 1 + int(leap and doy >= 60))


def season_check(
    series: SeriesSet,
    *,
    window: tuple[int, int] | None = (121, 334),
    group_by: str | None = None,
    source: str | os.PathLike[str] | Mapping[str, str] | None = None,
    observations: bool = False,
) -> dict[str, Any]:
    """Whether each group's class NDVI peaks fall inside the window the models see.

    :func:`cropglobe.composite.season_findings` as a JSON-ready dict for :func:`describe`'s
    output (key ``season_check``).

    Args:
        series: the data as series (raw observations composited first, e.g. on
            :func:`infer_grid`'s grid).
        window: ``(start, end)`` days of season the models see; None: the whole season.
        group_by: metadata column splitting the samples (None: ``country``, else ``region``).
        source: the file the data came from (the fixes name it), or group -> file.
        observations: ``source`` is a table of raw observations (its fix re-composites it).

    Returns:
        ``{"window": [start, end], "anchor": "MM-DD", "group_by": col, "findings": [{group,
        unaligned, outside: {class: day}, suggested_anchor, message, fix}, …]}``, plus
        ``"skipped"`` (the reason) when NDVI cannot be computed from the bands.
    """
    from cropglobe.composite import season_findings

    w = (1, 365) if window is None else (int(window[0]), int(window[1]))
    col = group_by if group_by is not None else _group_column(series.meta)
    out: dict[str, Any] = {"window": list(w), "anchor": " or ".join(series.seasons),
                           "group_by": col or "all", "findings": []}  # fmt: skip
    try:
        found = season_findings(series, window=w, group_by=col or "country", source=source,
                                observations=observations)  # fmt: skip
    except BandError:
        out["skipped"] = "no NDVI band, nor B08 and B04, to time the peaks"
        return out
    out["findings"] = [
        {
            "group": f.group,
            "unaligned": f.unaligned,
            "outside": f.outside,
            "suggested_anchor": f.suggested_anchor,
            "message": f.message,
            "fix": f.fix,
        }
        for f in found
    ]
    return out


def _season_check_lines(check: dict[str, Any]) -> list[str]:
    if check.get("skipped"):
        return [f"  season check: skipped ({check['skipped']})"]
    w0, w1 = check["window"]
    season = (
        f"each group's season (starting {check['anchor']})"
        if " or " in check["anchor"]
        else f"the season starting {check['anchor']}"
    )
    where = f"days {w0}–{w1} of {season}, the window the models see"
    if not check["findings"]:
        return [f"  season check: every class's mean NDVI peaks inside {where}"]
    lines = [f"  season check (class-mean NDVI peaks vs {where}):"]
    for f in check["findings"]:
        lines.append(f"    {f['message']}")
        lines.append(f"      {'fix' if f['unaligned'] else 'option'}: {f['fix']}")
        if f["unaligned"] and f["suggested_anchor"]:
            lines.append(
                f"      or, for a transfer experiment alone: cropglobe transfer ... --season "
                f"{f['group']}={f['suggested_anchor']}"
            )
    return lines


def filled_text(attrs: dict[str, Any]) -> str:
    """``"12.0% gap-filled, 40.1% held at the series' ends"``: how much of a composited set
    is not observed (``attrs["composite"]``, as :func:`cropglobe.composite.composite`
    records it); ``""`` when unknown or nothing was filled."""
    comp = attrs.get("composite")
    if not isinstance(comp, dict) or "filled_fraction" not in comp:
        return ""
    filled, held = float(comp["filled_fraction"]), float(comp.get("held_fraction", 0.0))
    if not filled and not held:
        return ""
    return (
        f"{100 * filled:.1f}% gap-filled"
        + (f", {100 * held:.1f}% held at the series' ends" if held else "")
        + " (values not observed)"
    )


def format_description(desc: dict[str, Any], source: str = "") -> str:
    """Plain-text rendering of :func:`describe` for the terminal."""
    lines = [f"{source}" if source else desc["kind"]]
    synthetic = desc["attrs"].get("synthetic")
    if synthetic:
        lines.append("  SYNTHETIC data (generated by cropglobe.simulate, not real observations)")
    lines.append(f"  kind: {desc['kind']}, {desc['n_samples']:,} samples")
    files = desc["attrs"].get("files")
    if isinstance(files, dict) and files:
        lines.append("  files: " + ", ".join(f"{c} {f}" for c, f in files.items()))
    for kind, held in desc.get("release_files", {}).items():
        about = [", ".join(held["countries"])]
        if "features" in held:
            about.append(f"{held['features']} features")
        if held.get("methods"):
            about.append("transfer --methods " + ", ".join(held["methods"]))
        lines.append(f"  also in the folder: {kind} ({'; '.join(about)})")
    if "n_rows" in desc:
        lines.append(f"  rows: {desc['n_rows']:,} observations, dates {desc['dates']}")
        o = desc["observations_per_sample"]
        lines.append(
            f"  observations per sample: min {o['min']}, median {o['median']:g}, max {o['max']}"
        )
    if desc["kind"] == "feature table":
        names = desc["bands"]
        shown = " ".join(names) if len(names) <= 12 else f"{' '.join(names[:4])} … {names[-1]}"
        source = f" of {desc['input']}" if desc.get("input") else ""
        lines.append(
            f"  features ({len(names)}): {shown}; computed by {desc['computed_by']}{source}"
        )
        lines.append(f"  transfer on it: --methods {', '.join(desc['methods'])}")
    else:
        lines.append(f"  bands ({len(desc['bands'])}): {' '.join(desc['bands'])}")
    if "grid" in desc:
        lines.append(f"  grid: {desc['grid']}")
    if desc.get("seasons"):
        held = ", ".join(f"{n:,} starting {a}" for a, n in desc["seasons"].items())
        lines.append(f"  seasons (season-aligned data, meta['season_anchor']): {held}")
    if desc.get("years"):
        named = ", ".join(f"{y} ({n:,})" for y, n in desc["years"].items())
        # in data of several seasons one harvest can start in two years: say which year it is
        what = "season years (the year each season starts)" if desc.get("seasons") else "years"
        lines.append(f"  {what}: {named}; dates {desc['dates']}")
    lines.append(f"  missing values: {100 * desc['missing_fraction']:.1f} %")
    filled = filled_text(desc["attrs"])
    if filled:
        lines.append(f"  not observed: {filled}, when composited")
    shares = desc.get("band_missing_fraction", {})
    if shares:
        line = _band_missing_line(shares)
        if desc["kind"] == "feature table":
            line = line.replace("by band", "by feature").replace(" bands", " features")
        lines.append(line)
    empty = desc.get("empty_bands", [])
    if empty:
        named = " ".join(empty[:20]) + (f" … ({len(empty)} in all)" if len(empty) > 20 else "")
        lines.append(
            f"  bands with no value at all: {named} (models would learn nothing from them; "
            "drop or fill them)"
        )
    if desc.get("empty_samples"):
        lines.append(f"  samples with no valid observation: {desc['empty_samples']}")
    counts = pd.DataFrame(desc["class_counts"]).T.fillna(0).astype(np.int64)
    counts.index.name = desc["group_by"]
    lines.append("  class counts:")
    lines.extend("    " + line for line in counts.to_string().splitlines())
    if desc.get("season_check"):
        lines.extend(_season_check_lines(desc["season_check"]))
    return "\n".join(lines)


def _band_missing_line(shares: dict[str, float], most: int = 16) -> str:
    """``missing by band: B02 5.9 %, … B8A 100.0 % (no value)``; many bands (hyperspectral)
    are summarised by their range and the bands without any value."""
    if len(shares) <= most:
        parts = [
            f"{b} {100 * f:.1f} %" + (" (no value)" if f >= 1 else "") for b, f in shares.items()
        ]
        return "  missing by band: " + ", ".join(parts)
    v = np.array(list(shares.values()))
    return (
        f"  missing by band: {100 * v.min():.1f} % … {100 * v.max():.1f} % "
        f"(median {100 * float(np.median(v)):.1f} %) over {len(v)} bands"
    )


def infer_grid(obs: Observations, anchor: str = "01-01") -> TimeGrid:
    """A natural grid for raw observations from their typical spacing.

    Median spacing between a sample's consecutive dates: ≤ 6 days -> 5-day grid, ≤ 12 ->
    dekads, ≤ 20 -> 16-day, otherwise monthly.
    """
    dates = pd.to_datetime(obs.table["date"]).to_numpy(dtype="datetime64[D]")
    order = np.lexsort((dates, obs.table["sample"].to_numpy()))
    d = np.diff(dates[order].astype(np.int64))
    same = np.diff(obs.table["sample"].to_numpy()[order]) == 0
    gaps = d[same & (d > 0)]
    spacing = float(np.median(gaps)) if gaps.size else 30.0
    if spacing <= 6:
        return TimeGrid.regular(5, anchor=anchor)
    if spacing <= 12:
        return TimeGrid.dekads(anchor)
    if spacing <= 20:
        return TimeGrid.regular(16, anchor=anchor)
    return TimeGrid.monthly(anchor)


def describe_spectra(spectra: Any, group_by: str | None = None) -> dict[str, Any]:
    """What a spectra table holds (:func:`cropglobe.io.emit.read_spectra_table`), as a dict.

    Args:
        spectra: a :class:`~cropglobe.io.emit.Spectra`.
        group_by: meta column splitting the label counts; None: ``country`` or ``region``
            when present.

    Returns:
        ``kind``, ``n_spectra``, ``n_points`` (distinct ``sample_id``), ``bands`` (count,
        first and last wavelength in nm, good bands by the product's flags and outside the
        water-vapour ranges), ``dates`` (first, last, days), ``granules``, ``missing`` (share
        of NaN over the good bands; spectra with any NaN there) and ``class_counts`` (spectra
        per label, per group; ``points_per_class`` counts each point once).
    """
    from cropglobe.features.hyperspectral import WATER_VAPOUR_NM

    meta = spectra.meta
    wl = np.asarray(spectra.wavelengths, dtype=np.float64)
    water = np.zeros(wl.size, dtype=bool)
    for lo, hi in WATER_VAPOUR_NM:
        water |= (wl >= lo) & (wl <= hi)
    good = np.asarray(spectra.good, dtype=bool) & ~water
    values = spectra.values[:, good] if good.any() else spectra.values[:, :0]
    desc: dict[str, Any] = {
        "kind": "spectra (EMIT)",
        "n_spectra": len(spectra),
        "n_points": int(meta["sample_id"].nunique()) if "sample_id" in meta else len(spectra),
        "bands": {
            "count": int(wl.size),
            "first_nm": float(wl[0]) if wl.size else None,
            "last_nm": float(wl[-1]) if wl.size else None,
            "good": int(good.sum()),
        },
    }
    if "date" in meta and len(meta) and pd.api.types.is_datetime64_any_dtype(meta["date"]):
        days = pd.to_datetime(meta["date"]).dt.normalize()
        desc["dates"] = {
            "first": str(days.min().date()),
            "last": str(days.max().date()),
            "days": int(days.nunique()),
        }
    if "granule" in meta:
        desc["granules"] = int(meta["granule"].nunique())
    desc["missing"] = {
        "share": float(np.isnan(values).mean()) if values.size else 1.0,
        "spectra_with_gaps": int(np.isnan(values).any(axis=1).sum()) if values.size else 0,
    }
    group = group_by if group_by is not None else _group_column(meta)
    groups = meta[group].astype(str).to_numpy() if group in meta else None
    if "label" in meta:
        names = np.array(
            [None if pd.isna(v) or str(v).strip() == "" else str(v) for v in meta["label"]],
            dtype=object,
        )
        classes = tuple(sorted({str(v) for v in names if v is not None}))
        table = _class_table(names, groups, classes)
        desc["class_counts"] = {
            "group_by": group if groups is not None else None,
            "table": table.to_dict(orient="index"),
        }
        if "sample_id" in meta:
            once = ~meta["sample_id"].astype(str).duplicated().to_numpy()
            counts = pd.Series(names[once]).fillna("<unlabelled>").value_counts()
            desc["points_per_class"] = {
                c: int(counts[c]) for c in (*classes, "<unlabelled>") if c in counts.index
            }
    return desc


def format_spectra_description(desc: dict[str, Any], source: str = "") -> str:
    """The lines ``cropglobe info`` prints for :func:`describe_spectra`."""
    b = desc["bands"]
    lines = [source] if source else []
    lines.append(
        f"  kind: spectra (EMIT), {desc['n_spectra']:,} spectra of {desc['n_points']:,} points"
    )
    if b["count"]:
        lines.append(
            f"  bands ({b['count']}): {b['first_nm']:.0f}–{b['last_nm']:.0f} nm, {b['good']} good "
            "(the product's flags, water-vapour ranges 1340–1450 and 1800–1970 nm left out)"
        )
    if "dates" in desc:
        d = desc["dates"]
        lines.append(f"  dates: {d['first']} … {d['last']} ({d['days']} days)")
    if "granules" in desc:
        lines.append(f"  granules: {desc['granules']}")
    m = desc["missing"]
    lines.append(
        f"  missing values (good bands): {100 * m['share']:.1f} %; "
        f"{m['spectra_with_gaps']:,} spectra with gaps"
    )
    if "class_counts" in desc:
        cc = desc["class_counts"]
        table = pd.DataFrame.from_dict(cc["table"], orient="index")
        table.index.name = cc["group_by"]
        lines.append("  spectra per class:")
        lines.extend("    " + line for line in table.to_string().splitlines())
    if "points_per_class" in desc:
        per = ", ".join(f"{k} {v:,}" for k, v in desc["points_per_class"].items())
        lines.append(f"  points per class: {per}")
    return "\n".join(lines)
