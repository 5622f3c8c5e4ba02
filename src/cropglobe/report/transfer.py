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
import contextlib
import hashlib
import html
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cropglobe._fs import atomic_path, cap_name, safe_name
from cropglobe.evaluate.calibration import aggregate_calibration
from cropglobe.evaluate.compare import ALL_SCENARIOS, mean_ci, paired_comparison
from cropglobe.evaluate.metrics import aggregate_runs
from cropglobe.evaluate.scenarios import SCENARIOS
from cropglobe.report.findings import transfer_findings

__all__ = ["report_staging", "write_transfer_report"]

#: prefix of the folders a report is drawn in before it replaces the previous one
STAGING_PREFIX = ".report-staging-"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def plain_text() -> Iterator[None]:
    """Matplotlib text drawn as written: a ``$`` in a class, group or method name is a dollar
    sign, not the start of a formula (which could fail to parse and lose the report)."""
    with _plt().rc_context({"text.parse_math": False}):
        yield


@contextlib.contextmanager
def report_staging(output: str | os.PathLike[str], in_use: Sequence[Path] = ()) -> Iterator[Path]:
    """A fresh folder inside ``output`` to draw figures in; removed afterwards (left-overs of
    an interrupted report, other than the folders ``in_use``, are removed first).
    :func:`write_transfer_report` moves the figures it is given from there into ``figures/``
    together with the rest of the report."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    busy = {Path(p).resolve() for p in in_use}
    for old in out.glob(STAGING_PREFIX + "*"):
        if old.resolve() not in busy:
            shutil.rmtree(old, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    _plt().close(fig)
    return path


def heatmap_figure(agg: pd.DataFrame, method: str, metric: str, path: Path) -> Path:
    """Source × target matrix of ``metric`` (mean over seeds, percent) for one method."""
    sub = agg[agg["method"] == method]
    return _matrix_figure(sub, "source", metric, f"{method}: {metric}", path)


def methods_heatmap_figure(agg: pd.DataFrame, metric: str, path: Path) -> Path:
    """Method × target matrix of ``metric`` (mean over seeds, percent) for an experiment with
    one source: every method in one figure, in the experiment's order."""
    source = str(agg["source"].iloc[0])
    return _matrix_figure(agg, "method", metric, f"from {source}: {metric}", path)


def _matrix_figure(sub: pd.DataFrame, rows: str, metric: str, name: str, path: Path) -> Path:
    """A heatmap of ``metric`` with ``rows`` (source or method) down and targets across, each
    cell its mean ± std over seeds; pairs where one class was scored are hatched."""
    plt = _plt()
    order = list(dict.fromkeys(sub[rows]))
    mat = sub.pivot(index=rows, columns="target", values=f"{metric}_mean").reindex(order)
    std = sub.pivot(index=rows, columns="target", values=f"{metric}_std").reindex(order)
    runs = sub.pivot(index=rows, columns="target", values="n_runs").reindex(order)
    one_class = (
        sub.pivot(index=rows, columns="target", values="classes_scored")
        .reindex(index=mat.index, columns=mat.columns)
        .to_numpy(dtype=float)
        if "classes_scored" in sub.columns
        else np.full(mat.shape, np.nan)
    ) <= 1
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * mat.shape[1], 0.9 + 0.6 * mat.shape[0]))
    im = ax.imshow(mat.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    long = mat.shape[1] > 6 or any(len(str(c)) > 5 for c in mat.columns)
    own = set(sub["source"]) if rows == "method" else set()  # one source: its hold-out column
    ticks = [f"{c}\n(hold-out)" if c in own else str(c) for c in mat.columns]
    ax.set_xticks(range(mat.shape[1]), ticks, rotation=45 if long else 0)
    if long:
        plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_yticks(range(mat.shape[0]), mat.index)
    ax.set_xlabel("target")
    ax.set_ylabel(rows)
    mvals = mat.to_numpy(dtype=float)
    svals = std.to_numpy(dtype=float)
    nvals = runs.to_numpy(dtype=float)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = float(mvals[i, j])
            if np.isfinite(v):
                s = float(svals[i, j])
                text = f"{v:.1f}\n1 seed" if nvals[i, j] == 1 else f"{v:.1f}\n±{s:.1f}"
                if one_class[i, j]:
                    # one class scored: not a transfer score; hatched and marked
                    text = f"{v:.1f}*\n1 class"
                    ax.add_patch(
                        plt.Rectangle(
                            (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", lw=0, alpha=0.6
                        )
                    )
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < 60 else "black",
                )
    fig.colorbar(im, ax=ax, label=f"{metric} (%)")
    title = f"{name} (mean ± std over seeds)"
    if one_class.any():
        title += "\n* only one target class scored: not a transfer score"
    ax.set_title(title, fontsize=10 if one_class.any() else None)
    return _save(fig, path)


def per_class_table(per_class: pd.DataFrame) -> pd.DataFrame:
    """Per-class F1 (percent) of each (method, source, target, class), mean ± std (ddof 0)
    over seeds, with the number of runs: ``per_class.csv``."""
    cols = ["method", "source", "target", "class"]
    if not len(per_class):
        return pd.DataFrame(columns=[*cols, "f1_mean", "f1_std", "n_runs"])
    grouped = per_class.groupby(cols, sort=False)["f1"]
    out = pd.DataFrame(
        {
            "f1_mean": grouped.mean() * 100.0,
            "f1_std": grouped.std(ddof=0).fillna(0.0) * 100.0,
            "n_runs": grouped.size(),
        }
    )
    return out.reset_index()


def per_class_means(per_class: pd.DataFrame, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean per-class F1 (percent) over all rows of ``per_class``: one row per method, one
    column per class (vocabulary order when ``classes`` is given), as the bar chart shows."""
    table = per_class.groupby(["method", "class"], sort=False)["f1"].mean().unstack("class") * 100
    table = table.reindex(list(dict.fromkeys(per_class["method"])))
    if classes is not None:
        table = table[[c for c in classes if c in table.columns]]
    table.columns.name = None
    return table


def per_class_figure(
    per_class: pd.DataFrame, path: Path, classes: Sequence[str] | None = None
) -> Path:
    """Mean per-class F1 over all targets and seeds, one bar group per class (in the order of
    ``classes``, the vocabulary, when given)."""
    plt = _plt()
    table = per_class.groupby(["class", "method"])["f1"].mean().unstack("method") * 100
    table = table[list(dict.fromkeys(per_class["method"]))]  # the runs' order: same colours
    if classes is not None:
        table = table.reindex([c for c in classes if c in table.index])
    crowded = len(table) > 8 or any(len(str(c)) > 10 for c in table.index)
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(table), 3.5))
    table.plot.bar(ax=ax, rot=45 if crowded else 0, width=0.8, color=series_colors(table.shape[1]))
    if crowded:
        plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Per-class F1 on targets (mean over targets and seeds)")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def confusion_figure(cm: np.ndarray, classes: Sequence[str], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix with counts: a row for each class the target holds, a
    column for each class it holds or was predicted as (empty rows say nothing)."""
    plt = _plt()
    cols = np.flatnonzero((cm.sum(axis=0) + cm.sum(axis=1)) > 0)
    keep = np.flatnonzero(cm.sum(axis=1) > 0)
    sub = cm[np.ix_(keep, cols)]
    names = [classes[int(i)] for i in cols]
    rows = sub.sum(axis=1, keepdims=True)
    norm = np.divide(sub, rows, out=np.zeros(sub.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(cols), 1.0 + 0.65 * max(len(keep), 1)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(keep)), [classes[int(i)] for i in keep])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(keep)):
        for j in range(len(cols)):
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
    methods = list(dict.fromkeys(runs["method"]))  # in the experiment's order
    mean = grouped.mean().unstack("scenario").reindex(methods)
    std = grouped.std(ddof=0).fillna(0.0).unstack("scenario").reindex(methods)
    count = grouped.size().unstack("scenario").reindex(methods)
    out = pd.DataFrame(index=mean.index)
    for s in present:
        out[s] = [
            "–" if np.isnan(m) else f"{m:.1f} (1 seed)" if n == 1 else f"{m:.1f} ± {d:.1f}"
            for m, d, n in zip(
                mean[s].to_numpy(dtype=np.float64),
                std[s].to_numpy(dtype=np.float64),
                count[s].to_numpy(dtype=np.float64),
                strict=True,
            )
        ]
    return out


def confusion_table(
    confusions: Mapping[tuple[str, str, str], np.ndarray], classes: Sequence[str]
) -> pd.DataFrame:
    """The confusion matrices summed over seeds as one long table: ``method``, ``source``,
    ``target``, ``true``, ``predicted``, ``count`` (rows of classes present in the target or
    predicted there; cells of zero left out)."""
    rows = []
    for (method, source, target), cm in confusions.items():
        m = np.asarray(cm)
        for i, j in zip(*np.nonzero(m), strict=True):
            rows.append((method, source, target, classes[i], classes[j], int(m[i, j])))
    return pd.DataFrame(rows, columns=["method", "source", "target", "true", "predicted", "count"])


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


def signed_points(v: float) -> str:
    """A difference in points, one decimal; a non-zero value that would read as 0.0 gets the
    decimals that show its first digit (an interval bound of +0.0005 is not "+0.0")."""
    if not np.isfinite(v):
        return "n/a"
    text = f"{v:+.1f}"
    if v != 0 and float(text) == 0:
        digits = int(-math.floor(math.log10(abs(v))))
        text = f"{v:+.{digits}f}" if digits <= 4 else f"{v:+.0e}"  # +0.0005, or +3e-07
    return text


def p_text(p: float) -> str:
    """A p-value, three decimals; more where three would carry it across 0.05 (0.0499 is not
    "0.050", 0.049999 not "0.0500")."""
    if not np.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.3f}"
    digits = 3
    while (p < 0.05) != (float(text) < 0.05) and digits < 12:
        digits += 1
        text = f"{p:.{digits}f}"
    return text


def _cut_note(row: Mapping[Any, Any], metric: str) -> str:
    """`` (cut at ±100)`` where :func:`paired_comparison` cut the row's interval, else ``""``
    (a comparison without the ``_ci_cut`` column, from before it was written, says nothing)."""
    cut = row.get(f"{metric}_ci_cut")
    return " (cut at ±100)" if cut is not None and not pd.isna(cut) and bool(cut) else ""


def comparison_table(comparison: pd.DataFrame, metric: str = "oa") -> pd.DataFrame:
    """Readable rows of :func:`paired_comparison`: difference, interval, p-value, seed counts."""
    signed, p_value = signed_points, p_text
    rows = []
    for r in comparison.to_dict(orient="records"):
        n = int(r["n_seeds"])
        low, high = float(r[f"{metric}_low"]), float(r[f"{metric}_high"])
        ci = f"{signed(low)} … {signed(high)}{_cut_note(r, metric)}" if np.isfinite(low) else "n/a"
        p = float(r[f"{metric}_p"])
        rows.append(
            {
                "method": r["method"],
                "scenario": r["scenario"],
                "difference (points)": signed(float(r[f"{metric}_diff"])),
                "95 % CI": ci,
                "p (paired t)": p_value(p),
                "seeds better / worse": f"{r[f'{metric}_wins']} / {r[f'{metric}_losses']} of {n}",
            }
        )
    return pd.DataFrame(rows)


def comparison_lines(comparison: pd.DataFrame) -> list[str]:
    """One sentence per method: its overall-accuracy difference from the baseline over all
    transfers (or the one transfer scenario there is), without the sources' own hold-outs."""
    if not len(comparison):
        return []
    overall = comparison
    if (comparison["scenario"] == ALL_SCENARIOS).any():
        overall = comparison[comparison["scenario"] == ALL_SCENARIOS]
    elif (transfers := ~comparison["scenario"].astype(str).str.startswith("within-")).any():
        overall = comparison[transfers]  # the one transfer scenario, without the hold-outs
    lines = []
    for r in overall.to_dict(orient="records"):
        p = "p < 0.001" if r["oa_p"] < 0.001 else f"p = {p_text(r['oa_p'])}"
        ci = (
            f"95 % CI {signed_points(r['oa_low'])} … {signed_points(r['oa_high'])}"
            f"{_cut_note(r, 'oa')}, {p}, "
            if np.isfinite(r["oa_low"])
            else ""
        )
        pairs = f"{r['n_pairs']} transfer pair{'s' if r['n_pairs'] != 1 else ''}"
        scope = f"over all {pairs}" if r["scenario"] == ALL_SCENARIOS else f"{r['scenario']}"
        lines.append(
            f"{r['method']} vs {r['baseline']}: OA {r['oa_diff']:+.1f} points, {scope} "
            f"({ci}better on {r['oa_wins']} of {r['n_seeds']} seeds)"
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


def _confusion_names(keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """A figure file name per (method, source, target): ``confusion_M_S_T.png``, with a short
    hash of the three names added where two pairs would otherwise share a name (group names
    may hold ``_``: ``A_B`` → ``C`` and ``A`` → ``B_C``)."""
    plain = {k: "_".join(["confusion", *(safe_name(v) for v in k)]) for k in keys}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    out = {}
    for k, name in plain.items():
        if counts[name] > 1:
            digest = hashlib.sha256(json.dumps(list(k)).encode()).hexdigest()[:8]
            name = f"{name}-{digest}"
        out[k] = cap_name(name) + ".png"
    return out


def _target_per_class(per_class: pd.DataFrame, single: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Per-class F1 rows of transfers: without a source's own hold-out (``--within``) and
    without the pairs on which only one class could be scored."""
    if not len(per_class):
        return per_class
    pairs = set(single)
    keep = [
        a != b and (a, b) not in pairs
        for a, b in zip(per_class["source"], per_class["target"], strict=True)
    ]
    return per_class[keep]


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
    diagnostics: pd.DataFrame | None = None,
    applicability: pd.DataFrame | None = None,
    reliability: pd.DataFrame | None = None,
) -> Path:
    """Write ``report.html``, PNG figures, ``results.csv``, ``comparison.csv``,
    ``confusion.csv`` (the confusion matrices summed over seeds, one row per cell) and
    ``results.json`` to ``output``.

    Everything is drawn first, in a staging folder; only then are the figures moved into
    ``figures/`` and the tables and the page written (each file atomically), so an interrupted
    report leaves the previous one as it was.

    Args:
        phenology_figures: PNGs to show in the phenology section; those outside ``figures/``
            (drawn in a :func:`report_staging` folder) are moved there with the rest.
        baseline: the method the others are compared with, paired by seed (default: the first
            method of ``runs`` that is not a ``+tta`` / ``+prior`` row).
        comparison: that comparison when the caller already has it
            (:func:`cropglobe.evaluate.compare.paired_comparison` of :func:`scored_runs`).
        diagnostics: the pairs' label-free shift diagnostics
            (:func:`cropglobe.evaluate.shift.pair_diagnostics`, with a ``key`` column when
            they are a rerun's cache): a section of the page, ``diagnostics.csv`` and
            ``results.json``'s ``shift``. None: no section, and the folder's file is left as
            it is.
        applicability: each run's accuracy inside and outside its source's range (one row per
            method, source, target and seed; ``applicability.csv``), shown in that section.
        reliability: each run's reliability bins in its target
            (:func:`cropglobe.evaluate.calibration.calibrate_runs`), with ``runs`` holding the
            calibration columns (:func:`cropglobe.evaluate.calibration.merge_calibration`):
            the calibration section, ``reliability.csv`` (the diagram's bins, pooled per
            method and target or scenario) and ``results.json``'s ``calibration``. The
            calibration columns of ``runs`` join ``results.csv`` whether or not it is given.

    Returns:
        The path of ``report.html``.
    """
    out = Path(output)
    fig_dir = out / "figures"
    in_use = [Path(p).parent for p in phenology_figures]
    with report_staging(out, in_use) as stage, plain_text():
        files = _draw_report(
            stage,
            runs,
            per_class,
            confusions,
            classes,
            config=config,
            phenology_figures=phenology_figures,
            title=title,
            notes=notes,
            baseline=baseline,
            comparison=comparison,
            diagnostics=diagnostics,
            applicability=applicability,
            reliability=reliability,
        )
        figures = list(dict.fromkeys(files.pop("figures")))  # a figure given twice moves once
        fig_dir.mkdir(parents=True, exist_ok=True)
        kept = set()
        for fig in figures:
            dest = fig_dir / fig.name
            if fig.resolve() != dest.resolve():
                os.replace(fig, dest)
            kept.add(dest.resolve())
        for name, text in files.items():  # the page last
            with atomic_path(out / name) as tmp:
                tmp.write_text(text, encoding="utf-8")
    # figures of an earlier, larger configuration that this report no longer shows
    for old in fig_dir.glob("*.png"):
        if old.resolve() not in kept:
            old.unlink()
    # tables of sections this report no longer has (diagnostics.csv stays: reruns reuse it)
    for name in _SECTION_TABLES:
        if name not in files:
            (out / name).unlink(missing_ok=True)
    return out / "report.html"


#: tables written only with their section of the report
_SECTION_TABLES = ("applicability.csv", "reliability.csv")


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: missing values (NaN, None, NA) become null."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{str(k): v for k, v in r.items()} for r in records]


def _draw_report(
    stage: Path,
    runs: pd.DataFrame,
    per_class: pd.DataFrame,
    confusions: Mapping[tuple[str, str, str], np.ndarray],
    classes: Sequence[str],
    *,
    config: Mapping[str, Any] | None,
    phenology_figures: Sequence[Path],
    title: str,
    notes: Sequence[str],
    baseline: str | None,
    comparison: pd.DataFrame | None,
    diagnostics: pd.DataFrame | None = None,
    applicability: pd.DataFrame | None = None,
    reliability: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The report's figures (drawn into ``stage``) and the text of its files, by file name
    (``figures``: the PNG paths; ``report.html`` last)."""
    agg = aggregate_runs(runs, ["method", "source", "target", "scenario"])
    if "n_classes_scored" in runs.columns and len(agg):
        # how many target classes the scores rest on: 1 means the accuracy is not a transfer
        # score (the model cannot output the others)
        n = runs.groupby(["method", "source", "target", "scenario"], sort=False)[
            "n_classes_scored"
        ].max()
        agg["classes_scored"] = n.to_numpy()
    by = ["method", "source", "target", "scenario"]
    if (calibrated := aggregate_calibration(runs, by)) is not None:
        agg = agg.merge(calibrated, on=by, how="left")
    single = single_class_pairs(runs)
    scored = scored_runs(runs)
    if single and len(scored) < len(runs):
        pairs = ", ".join(f"{a} → {b}" for a, b in single)
        notes = (
            *notes,
            f"Left out of the scenario tables, the comparison and the per-class F1: {pairs}. "
            "Only one class of these targets could be scored (the model cannot output the "
            "others), so their accuracy says nothing about transfer; they remain in the "
            "matrices below.",
        )
    elif single:
        notes = (
            *notes,
            "On every pair of this experiment only one class of the target could be scored "
            "(the model cannot output the others): the tables below show them all, but such "
            "an accuracy says nothing about transfer.",
        )
    base = baseline or default_baseline(runs)
    if comparison is None:
        comparison = paired_comparison(scored, base if base is not None else "")
    files: dict[str, Any] = {
        "results.csv": agg.to_csv(index=False, float_format="%.3f"),
        # p-values can be tiny: significant digits, not decimals
        "comparison.csv": comparison.to_csv(index=False, float_format="%.6g"),
        "confusion.csv": confusion_table(confusions, classes).to_csv(index=False),
        "per_class.csv": per_class_table(per_class).to_csv(index=False, float_format="%.3f"),
    }
    payload = {
        # NaN (no interval with one seed, no precision for a classical run) is not JSON: null
        "aggregated": _json_records(agg),
        "comparison": _json_records(comparison),
        "runs": _json_records(runs),
        "per_class": _json_records(per_class),
        "config": dict(config or {}),
    }
    shift_html, shift_figs = "", list[Path]()
    if diagnostics is not None:
        from cropglobe.report.shift import shift_section

        files["diagnostics.csv"] = diagnostics.to_csv(index=False, float_format="%.6g")
        shift_html, shift_figs, tables = shift_section(
            diagnostics, agg, stage, single, applicability
        )
        payload["shift"] = {name: _json_records(t) for name, t in tables.items()}
        if applicability is not None:
            files["applicability.csv"] = applicability.to_csv(index=False, float_format="%.3f")

    calibration_html, calibration_figs = "", list[Path]()
    if reliability is not None and "ece" in scored.columns and len(scored):
        from cropglobe.report.calibration import calibration_section

        calibration_html, calibration_figs, tables, said = calibration_section(
            scored, reliability, stage
        )
        files["reliability.csv"] = tables["reliability"].to_csv(index=False, float_format="%.6g")
        payload["calibration"] = {
            **{name: _json_records(t) for name, t in tables.items()},
            "findings": said,
        }

    methods = list(dict.fromkeys(runs["method"]))
    sections: list[str] = []
    written: list[Path] = [Path(p) for p in phenology_figures]
    found = transfer_findings(
        aggregate_runs(scored, ["method", "source", "target", "scenario"]), scored, diagnostics
    )
    payload["findings"] = found
    files["results.json"] = json.dumps(payload, indent=1, default=str, allow_nan=False)
    if found:
        sections.append(
            "<h3>Findings</h3><p>Computed from the tables below (overall accuracy, mean over "
            "seeds, pairs averaged within a scenario"
            + (", pairs of one scored class left out" if single else "")
            + "); whether the seeds tell two methods apart is in the paired comparison "
            "below.</p><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in found) + "</ul>"
        )
    for metric, label in (("oa", "Overall accuracy"), ("macro_f1", "Macro-F1")):
        table = scenario_table(scored, metric)
        sections.append(f"<h3>{label} by scenario (%, mean ± std over seeds)</h3>")
        sections.append(table.reset_index().to_html(index=False, escape=True))
    if len(scored):
        fig = scenario_figure(scored, stage / "scenarios.png")
        written.append(fig)
        sections.append("<h3>By scenario, seed by seed</h3>" + _img(fig))
    if len(comparison):
        sections.append(
            f"<h3>Against {html.escape(str(base))}, paired by seed</h3><p>Each method minus "
            f"{html.escape(str(base))}, in percentage points, on the same seeds and pairs: the "
            "per-seed difference is averaged over the scenario's pairs, then the seeds are the "
            "samples (mean, Student-t 95 % interval, two-sided paired t-test). An interval that "
            "spans 0 means these seeds cannot tell the two apart; one marked “cut at ±100” "
            "reached past ±100 points (too few or too spread seeds) and was cut there, as no "
            "two percentages differ by more (comparison.csv: the oa_ci_cut and "
            "macro_f1_ci_cut columns).</p>"
        )
        for metric, label in (("oa", "Overall accuracy"), ("macro_f1", "Macro-F1")):
            sections.append(f"<h4>{label}</h4>")
            sections.append(comparison_table(comparison, metric).to_html(index=False, escape=True))
    one_source = len(agg) > 0 and agg["source"].nunique() == 1
    if one_source:  # one figure per metric, the methods down: no page of one-row matrices
        heat = [
            methods_heatmap_figure(agg, "oa", stage / "matrix_oa.png"),
            methods_heatmap_figure(agg, "macro_f1", stage / "matrix_f1.png"),
        ]
    else:
        heat = [
            heatmap_figure(agg, m, metric, stage / f"matrix_{short}_{safe_name(m)}.png")
            for metric, short in (("oa", "oa"), ("macro_f1", "f1"))
            for m in methods
        ]
    written += heat
    n_targets = agg["target"].nunique() if len(agg) else 0
    # a large matrix is shown at full width, a small one two to a row
    sections.append(
        ("<h2>Method × target matrices</h2>" if one_source else "<h2>Source × target matrices</h2>")
        + ("<div>" if n_targets > 5 else "<div class='grid'>")
    )
    sections += [_img(p) for p in heat]
    sections.append("</div>")
    transfers = _target_per_class(per_class, single)
    if len(transfers):
        pc = per_class_figure(transfers, stage / "per_class_f1.png", classes)
        written.append(pc)
        means = per_class_means(transfers, classes)
        sections.append(
            "<h2>Per-class F1</h2>"
            + _img(pc)
            + "<p>The bars' numbers (%, mean over the transfer pairs and seeds; per pair and "
            "seed in <code>per_class.csv</code>):</p>"
            + means.rename_axis("method")
            .reset_index()
            .to_html(index=False, escape=True, float_format=lambda v: f"{v:.1f}", na_rep="–")
        )
    sections.append(
        "<h2>Confusion matrices (summed over seeds)</h2><p>Cells hold counts; their shade is "
        "the share of the true class's row, so rows of rare classes read as clearly as common "
        "ones. A row for each class the target holds, a column for each class it holds or was "
        "predicted as.</p><div class='grid'>"
    )
    names = _confusion_names(list(confusions))
    for (method, source, target), cm in confusions.items():
        p = confusion_figure(
            cm, classes, f"{method}: {source} → {target}", stage / names[(method, source, target)]
        )
        written.append(p)
        sections.append(_img(p))
    sections.append("</div>")
    if phenology_figures:
        sections.append("<h2>Phenology: source vs targets (class-mean NDVI)</h2>")
        sections += [_img(Path(p)) for p in phenology_figures]
    if shift_html:
        sections.append(shift_html)
        written += shift_figs
    if calibration_html:
        sections.append(calibration_html)
        written += calibration_figs
    detail = agg.copy()
    for m in ("oa", "macro_f1", "weighted_f1"):
        detail[m] = [
            f"{a:.1f}" if n == 1 else f"{a:.1f} ± {b:.1f}"  # one seed: no spread to show
            for a, b, n in zip(
                detail[f"{m}_mean"], detail[f"{m}_std"], detail["n_runs"], strict=True
            )
        ]
    shown = ["method", "source", "target", "scenario", "oa", "macro_f1", "weighted_f1"]
    shown += [c for c in ("classes_scored", "n_runs") if c in detail.columns]
    detail = detail[shown]
    sections.append("<h2>All pairs</h2>" + detail.to_html(index=False, escape=True))
    sections.append(
        "<h2>Configuration</h2><pre>"
        + html.escape(json.dumps(dict(config or {}), indent=2, default=str))
        + "</pre>"
    )
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    files["report.html"] = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{note_html}"
        + "<h2>Summary</h2>"
        + "\n".join(sections)
        + "</body></html>"
    )
    files["figures"] = written
    return files
