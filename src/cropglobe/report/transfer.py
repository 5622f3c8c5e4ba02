"""The transfer-experiment report: PNG figures plus one self-contained HTML page.

Inputs are plain tables so that any experiment (CropGlobe countries, CAWa regions, years) can
be reported:

- ``runs``: one row per (method, source, target, seed) with ``scenario``, ``oa``,
  ``macro_f1``, ``weighted_f1`` (fractions 0…1), ``n_scored``;
- ``per_class``: one row per (method, source, target, seed, class) with ``f1``;
- ``confusions``: ``{(method, source, target): (K, K) int array}`` summed over seeds.

Figures are embedded in the HTML as base64 PNGs and also written beside it; the page loads no
network assets.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cropglobe._fs import atomic_path, safe_name
from cropglobe.evaluate.compare import ALL_SCENARIOS, mean_ci, paired_comparison
from cropglobe.evaluate.metrics import aggregate_runs
from cropglobe.evaluate.scenarios import SCENARIOS

__all__ = ["write_transfer_report"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    _plt().close(fig)
    return path


def heatmap_figure(agg: pd.DataFrame, method: str, metric: str, path: Path) -> Path:
    """Source × target matrix of ``metric`` (mean over seeds, percent) for one method."""
    plt = _plt()
    sub = agg[agg["method"] == method]
    mat = sub.pivot(index="source", columns="target", values=f"{metric}_mean")
    std = sub.pivot(index="source", columns="target", values=f"{metric}_std")
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * mat.shape[1], 0.9 + 0.6 * mat.shape[0]))
    im = ax.imshow(mat.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(mat.shape[1]), mat.columns)
    ax.set_yticks(range(mat.shape[0]), mat.index)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    mvals = mat.to_numpy(dtype=float)
    svals = std.to_numpy(dtype=float)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = float(mvals[i, j])
            if np.isfinite(v):
                s = float(svals[i, j])
                ax.text(
                    j,
                    i,
                    f"{v:.1f}\n±{s:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < 60 else "black",
                )
    fig.colorbar(im, ax=ax, label=f"{metric} (%)")
    ax.set_title(f"{method}: {metric} (mean ± std over seeds)")
    return _save(fig, path)


def per_class_figure(per_class: pd.DataFrame, path: Path) -> Path:
    """Mean per-class F1 over all targets and seeds, one bar group per class."""
    plt = _plt()
    table = per_class.groupby(["class", "method"])["f1"].mean().unstack("method") * 100
    table = table[list(dict.fromkeys(per_class["method"]))]  # the runs' order: same colours
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(table), 3.5))
    table.plot.bar(ax=ax, rot=0, width=0.8, color=series_colors(table.shape[1]))
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Per-class F1 on targets (mean over targets and seeds)")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def confusion_figure(cm: np.ndarray, classes: Sequence[str], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix with counts."""
    plt = _plt()
    keep = np.flatnonzero((cm.sum(axis=0) + cm.sum(axis=1)) > 0)
    sub = cm[np.ix_(keep, keep)]
    names = [classes[int(i)] for i in keep]
    rows = sub.sum(axis=1, keepdims=True)
    norm = np.divide(sub, rows, out=np.zeros(sub.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(names), 1.0 + 0.65 * len(names)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{sub[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def scenario_table(runs: pd.DataFrame, metric: str = "oa") -> pd.DataFrame:
    """Method × scenario table of ``metric`` in percent, mean ± std (ddof 0) over seeds.

    Each seed's score in a scenario is the mean over the scenario's (source, target) pairs;
    the table gives the mean and the standard deviation of those per-seed scores.
    """
    present = _scenario_order(runs)
    per_seed = runs.groupby(["method", "scenario", "seed"])[metric].mean() * 100.0
    grouped = per_seed.groupby(level=["method", "scenario"])
    mean = grouped.mean().unstack("scenario")
    std = grouped.std(ddof=0).fillna(0.0).unstack("scenario")
    out = pd.DataFrame(index=mean.index)
    for s in present:
        out[s] = [
            "–" if np.isnan(m) else f"{m:.1f} ± {d:.1f}"
            for m, d in zip(
                mean[s].to_numpy(dtype=np.float64), std[s].to_numpy(dtype=np.float64), strict=True
            )
        ]
    return out


def _scenario_order(runs: pd.DataFrame) -> list[str]:
    """Scenarios present in ``runs`` by difficulty: hold-outs (``within-…``), moves within
    one country (``cross-region``, ``cross-year`` …), then cross-country, -continent and
    -hemisphere; others (``unknown``) last, by name."""

    def rank(name: str) -> tuple[int, str]:
        if name in SCENARIOS:
            return (2 + SCENARIOS.index(name), "") if name != "within-country" else (0, name)
        if name.startswith("within-"):
            return 0, name
        if name.startswith("cross-"):
            return 1, name
        return 2 + len(SCENARIOS), name

    return sorted(dict.fromkeys(str(s) for s in runs["scenario"]), key=rank)


def scenario_seeds(runs: pd.DataFrame, metric: str = "oa", level: float = 0.95) -> pd.DataFrame:
    """Per method and scenario: each seed's score (the mean over the scenario's pairs, in
    percent, as :func:`scenario_table`) and their mean with a Student-t interval.

    Returns:
        One row per (method, scenario) in scenario order: ``method``, ``scenario``, ``seeds``
        (tuple of seeds), ``values`` (tuple of per-seed scores), ``mean``, ``low``, ``high``
        (NaN bounds with a single seed).
    """
    per_seed = runs.groupby(["method", "scenario", "seed"])[metric].mean() * 100.0
    present = set(
        zip(
            per_seed.index.get_level_values("method"),
            per_seed.index.get_level_values("scenario"),
            strict=True,
        )
    )
    rows = []
    for method in dict.fromkeys(runs["method"]):
        for scen in _scenario_order(runs):
            if (method, scen) not in present:
                continue
            vals = per_seed.loc[(method, scen)]
            m, lo, hi = mean_ci(vals.to_numpy(), level)
            rows.append(
                {
                    "method": method,
                    "scenario": scen,
                    "seeds": tuple(int(v) for v in vals.index),
                    "values": tuple(float(v) for v in vals),
                    "mean": m,
                    "low": lo,
                    "high": hi,
                }
            )
    return pd.DataFrame(
        rows, columns=["method", "scenario", "seeds", "values", "mean", "low", "high"]
    )


def series_colors(n: int) -> list[Any]:
    """``n`` colours for plot series: matplotlib's default cycle, or 20 distinct ones when the
    cycle is too short (``+tta`` / ``+prior`` rows multiply the methods); repeats only past 20."""
    plt = _plt()
    cycle = list(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    if n <= len(cycle):
        return cycle[:n]
    return [plt.get_cmap("tab20")(i % 20) for i in range(n)]


def scenario_figure(runs: pd.DataFrame, path: Path) -> Path:
    """OA and macro-F1 by scenario: each seed as a dot, the mean with its 95 % interval, the
    means of a method joined across scenarios (so a reader sees transfer degrade)."""
    plt = _plt()
    order = _scenario_order(runs)
    methods = list(dict.fromkeys(runs["method"]))
    width = 0.7 / max(len(methods), 1)
    fig, axes = plt.subplots(
        1, 2, figsize=(2.0 + 2.2 * len(order), 3.6), sharey=False, squeeze=False
    )
    colors = series_colors(len(methods))
    for ax, (metric, label) in zip(
        axes[0], (("oa", "Overall accuracy (%)"), ("macro_f1", "Macro-F1 (%)")), strict=True
    ):
        table = scenario_seeds(runs, metric)
        for k, method in enumerate(methods):
            sub = table[table["method"] == method]
            color = colors[k % len(colors)]
            xs = [order.index(s) + (k - (len(methods) - 1) / 2) * width for s in sub["scenario"]]
            for x, vals in zip(xs, sub["values"], strict=True):
                ax.scatter([x] * len(vals), vals, s=14, color=color, alpha=0.5, linewidths=0)
            means = sub["mean"].to_numpy(dtype=np.float64)
            # a score lies in 0 … 100: with two or three seeds the t interval reaches far
            # beyond, and drawn in full it would squeeze the seeds into a sliver of the axis
            low = np.clip(sub["low"].to_numpy(dtype=np.float64), 0.0, 100.0)
            high = np.clip(sub["high"].to_numpy(dtype=np.float64), 0.0, 100.0)
            err = np.vstack([means - low, high - means])
            ax.errorbar(
                xs,
                means,
                yerr=np.nan_to_num(err),
                color=color,
                marker="o",
                markersize=5,
                capsize=3,
                linewidth=1.2,
                label=method,
            )
        ax.set_xticks(range(len(order)), order, rotation=15)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(
        "By scenario: dots are seeds, markers the mean with its 95 % interval (cut at 0 and 100)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(len(methods), 4),
        fontsize=8,
        frameon=False,
    )
    return _save(fig, path)


def single_class_pairs(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(source, target) pairs on which at most one class could be scored."""
    if "n_classes_scored" not in runs.columns or not len(runs):
        return []
    n = runs.groupby(["source", "target"], sort=False)["n_classes_scored"].max().reset_index()
    low = n[n["n_classes_scored"] <= 1]
    return [(str(a), str(b)) for a, b in zip(low["source"], low["target"], strict=True)]


def scored_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` without the pairs of :func:`single_class_pairs` (all of them if none is left)."""
    single = single_class_pairs(runs)
    keep = runs[[(a, b) not in single for a, b in zip(runs.source, runs.target, strict=True)]]
    return keep if len(keep) else runs


def default_baseline(runs: pd.DataFrame) -> str | None:
    """The method others are compared with: the first one listed that is not a derived row."""
    methods = list(dict.fromkeys(runs["method"])) if len(runs) else []
    plain = [m for m in methods if "+" not in str(m)]
    return str((plain or methods)[0]) if methods else None


def comparison_table(comparison: pd.DataFrame, metric: str = "oa") -> pd.DataFrame:
    """Readable rows of :func:`paired_comparison`: difference, interval, p-value, seed counts."""

    def signed(v: float) -> str:
        return "n/a" if not np.isfinite(v) else f"{v:+.1f}"

    def p_value(p: float) -> str:
        return "n/a" if not np.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"

    rows = []
    for r in comparison.to_dict(orient="records"):
        n = int(r["n_seeds"])
        low, high = float(r[f"{metric}_low"]), float(r[f"{metric}_high"])
        p = float(r[f"{metric}_p"])
        rows.append(
            {
                "method": r["method"],
                "scenario": r["scenario"],
                "difference (points)": signed(float(r[f"{metric}_diff"])),
                "95 % CI": f"{signed(low)} … {signed(high)}" if np.isfinite(low) else "n/a",
                "p (paired t)": p_value(p),
                "seeds better / worse": f"{r[f'{metric}_wins']} / {r[f'{metric}_losses']} of {n}",
            }
        )
    return pd.DataFrame(rows)


def comparison_lines(comparison: pd.DataFrame) -> list[str]:
    """One sentence per method: its overall-accuracy difference from the baseline, over all
    scenarios (or the one scenario there is)."""
    if not len(comparison):
        return []
    overall = comparison
    if (comparison["scenario"] == ALL_SCENARIOS).any():
        overall = comparison[comparison["scenario"] == ALL_SCENARIOS]
    lines = []
    for r in overall.to_dict(orient="records"):
        p = "p < 0.001" if r["oa_p"] < 0.001 else f"p = {r['oa_p']:.3f}"
        ci = (
            f"95 % CI {r['oa_low']:+.1f} … {r['oa_high']:+.1f}, {p}, "
            if np.isfinite(r["oa_low"])
            else ""
        )
        lines.append(
            f"{r['method']} vs {r['baseline']}: OA {r['oa_diff']:+.1f} points ({ci}better on "
            f"{r['oa_wins']} of {r['n_seeds']} seeds)"
        )
    return lines


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:72rem;
color:#222;padding:0 1rem}h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}td,th{border:1px solid #ddd;
padding:.25rem .6rem;text-align:right}th{background:#f4f4f4}img{max-width:100%;margin:.5rem 0}
.note{background:#fff8e1;border-left:4px solid #f2c12e;padding:.5rem 1rem}.grid{display:flex;
flex-wrap:wrap;gap:1rem}.grid img{max-width:30rem}pre{background:#f6f6f6;padding:1rem;
overflow:auto;font-size:.8rem}
"""


def write_transfer_report(
    output: str | os.PathLike[str],
    runs: pd.DataFrame,
    per_class: pd.DataFrame,
    confusions: Mapping[tuple[str, str, str], np.ndarray],
    classes: Sequence[str],
    *,
    config: Mapping[str, Any] | None = None,
    phenology_figures: Sequence[Path] = (),
    title: str = "cropglobe transfer experiment",
    notes: Sequence[str] = (),
    baseline: str | None = None,
    comparison: pd.DataFrame | None = None,
) -> Path:
    """Write ``report.html``, PNG figures, ``results.csv``, ``comparison.csv`` and
    ``results.json`` to ``output``.

    Args:
        baseline: the method the others are compared with, paired by seed (default: the first
            method of ``runs`` that is not a ``+tta`` / ``+prior`` row).
        comparison: that comparison when the caller already has it
            (:func:`cropglobe.evaluate.compare.paired_comparison` of :func:`scored_runs`).

    Returns:
        The path of ``report.html``.
    """
    out = Path(output)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    agg = aggregate_runs(runs, ["method", "source", "target", "scenario"])
    single = single_class_pairs(runs)
    if single:
        pairs = ", ".join(f"{a} → {b}" for a, b in single)
        notes = (
            *notes,
            f"Left out of the scenario tables: {pairs}. Only one class of these "
            "targets could be scored (the model cannot output the others), so their "
            "accuracy says nothing about transfer; they remain in the matrices below.",
        )
    base = baseline or default_baseline(runs)
    if comparison is None:
        comparison = paired_comparison(scored_runs(runs), base if base is not None else "")
    with atomic_path(out / "results.csv") as tmp:
        agg.to_csv(tmp, index=False, float_format="%.3f")
    with atomic_path(out / "comparison.csv") as tmp:
        comparison.to_csv(tmp, index=False, float_format="%.4f")
    payload = {
        "aggregated": agg.to_dict(orient="records"),
        # NaN (no interval with one seed) is not JSON: null
        "comparison": comparison.astype(object)
        .where(comparison.notna(), None)
        .to_dict(orient="records"),
        "runs": runs.to_dict(orient="records"),
        "config": dict(config or {}),
    }
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=str))

    methods = list(dict.fromkeys(runs["method"]))
    sections: list[str] = []
    written: list[Path] = [Path(p) for p in phenology_figures]
    for metric, label in (("oa", "Overall accuracy"), ("macro_f1", "Macro-F1")):
        table = scenario_table(scored_runs(runs), metric)
        sections.append(f"<h3>{label} by scenario (%, mean ± std over seeds)</h3>")
        sections.append(table.to_html(escape=True))
    if len(scored_runs(runs)):
        fig = scenario_figure(scored_runs(runs), fig_dir / "scenarios.png")
        written.append(fig)
        sections.append("<h3>By scenario, seed by seed</h3>" + _img(fig))
    if len(comparison):
        sections.append(
            f"<h3>Against {html.escape(str(base))}, paired by seed</h3><p>Each method minus "
            f"{html.escape(str(base))}, in percentage points, on the same seeds and pairs: the "
            "per-seed difference is averaged over the scenario's pairs, then the seeds are the "
            "samples (mean, Student-t 95 % interval, two-sided paired t-test). An interval that "
            "spans 0 means these seeds cannot tell the two apart.</p>"
        )
        for metric, label in (("oa", "Overall accuracy"), ("macro_f1", "Macro-F1")):
            sections.append(f"<h4>{label}</h4>")
            sections.append(comparison_table(comparison, metric).to_html(index=False, escape=True))
    heat = [
        heatmap_figure(agg, m, "oa", fig_dir / f"matrix_oa_{safe_name(m)}.png") for m in methods
    ]
    heat += [
        heatmap_figure(agg, m, "macro_f1", fig_dir / f"matrix_f1_{safe_name(m)}.png")
        for m in methods
    ]
    written += heat
    sections.append("<h2>Source × target matrices</h2><div class='grid'>")
    sections += [_img(p) for p in heat]
    sections.append("</div>")
    if len(per_class):
        pc = per_class_figure(per_class, fig_dir / "per_class_f1.png")
        written.append(pc)
        sections.append("<h2>Per-class F1</h2>" + _img(pc))
    sections.append("<h2>Confusion matrices (summed over seeds)</h2><div class='grid'>")
    for (method, source, target), cm in confusions.items():
        p = confusion_figure(
            cm,
            classes,
            f"{method}: {source} → {target}",
            fig_dir / f"confusion_{safe_name(method)}_{safe_name(source)}_{safe_name(target)}.png",
        )
        written.append(p)
        sections.append(_img(p))
    sections.append("</div>")
    if phenology_figures:
        sections.append("<h2>Phenology: source vs targets (class-mean NDVI)</h2>")
        sections += [_img(Path(p)) for p in phenology_figures]
    detail = agg.copy()
    for m in ("oa", "macro_f1", "weighted_f1"):
        detail[m] = [
            f"{a:.1f} ± {b:.1f}"
            for a, b in zip(detail[f"{m}_mean"], detail[f"{m}_std"], strict=True)
        ]
    detail = detail[
        ["method", "source", "target", "scenario", "oa", "macro_f1", "weighted_f1", "n_runs"]
    ]
    sections.append("<h2>All pairs</h2>" + detail.to_html(index=False, escape=True))
    sections.append(
        "<h2>Configuration</h2><pre>"
        + html.escape(json.dumps(dict(config or {}), indent=2, default=str))
        + "</pre>"
    )
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{note_html}"
        + "<h2>Summary</h2>"
        + "\n".join(sections)
        + "</body></html>"
    )
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    # figures of an earlier, larger configuration that this report no longer shows
    keep = {p.resolve() for p in written}
    for old in fig_dir.glob("*.png"):
        if old.resolve() not in keep:
            old.unlink()
    return out / "report.html"
