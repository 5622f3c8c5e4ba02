"""The report's calibration section: can a model's probabilities be trusted in a target?

Per method and scenario, how well the confidence of each prediction (the probability of the
class predicted, after the target's collapse to "other") matched how often it was right in
the targets (:mod:`cropglobe.evaluate.calibration`): a reliability diagram pooled over the
scenario's pairs and seeds, a table of ECE and over-confidence, and a finding computed from
them. Where runs saved a temperature fitted on their source's validation split, a second table
sets the calibration in the targets before and after temperature scaling side by side, with a
sentence saying whether source-fitted scaling lowered the target ECE, and by how much.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PANELS_PER_TARGET",
    "calibration_by_scenario",
    "calibration_findings",
    "calibration_section",
    "calibration_table",
    "pooled_reliability",
    "reliability_figure",
    "temperature_by_scenario",
    "temperature_finding",
    "temperature_table",
]

_KEYS = ["method", "source", "target", "seed"]


def _transfers(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of transfers: not a source's hold-out of itself (``within-…``)."""
    return runs[~runs["scenario"].astype(str).str.startswith("within-")]


def calibration_by_scenario(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method and scenario: ECE (%) and over-confidence (points), mean and std (ddof 0)
    over seeds, each seed's value the mean over the scenario's pairs (as the accuracy
    tables); NaN where a method has no saved probabilities (``+tta`` rows).

    Returns:
        ``method``, ``scenario`` (in the report's order), ``ece_mean``, ``ece_std``,
        ``overconfidence_mean``, ``overconfidence_std``, ``seeds`` (seeds measured).
    """
    from cropglobe.report.transfer import _scenario_order

    per_seed = (
        runs.groupby(["method", "scenario", "seed"], sort=False)[["ece", "overconfidence"]].mean()
        * 100.0
    )
    grouped = per_seed.groupby(level=["method", "scenario"], sort=False)
    out = pd.concat(
        [
            grouped.mean().add_suffix("_mean"),
            grouped.std(ddof=0).add_suffix("_std"),
            grouped["ece"].count().rename("seeds"),
        ],
        axis=1,
    ).reset_index()
    out = out[["method", "scenario", "ece_mean", "ece_std", "overconfidence_mean",
               "overconfidence_std", "seeds"]]  # fmt: skip
    rank = {s: i for i, s in enumerate(_scenario_order(runs))}
    methods = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    key = [(methods[m], rank[s]) for m, s in zip(out["method"], out["scenario"], strict=True)]
    order = sorted(range(len(out)), key=key.__getitem__)
    return out.iloc[order].reset_index(drop=True)


def calibration_table(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`calibration_by_scenario` as the report shows it: a row per method, an ECE and
    an over-confidence column per scenario, ``mean ± std`` (``–``: not measured)."""
    from cropglobe.report.transfer import _scenario_order

    numbers = ["ece_mean", "ece_std", "overconfidence_mean", "overconfidence_std", "seeds"]
    nums: dict[tuple[str, str], dict[str, float]] = {
        (str(r["method"]), str(r["scenario"])): {k: float(r[k]) for k in numbers}
        for r in calibration_by_scenario(runs).to_dict(orient="records")
    }
    methods = [str(m) for m in dict.fromkeys(runs["method"])]
    cols: dict[tuple[str, str], list[str]] = {("", "method"): methods}
    for scen in _scenario_order(runs):
        for metric, label, sign in (
            ("ece", "ECE (%)", ""),
            ("overconfidence", "over-confidence (points)", "+"),
        ):
            cells = []
            for m in methods:
                row = nums.get((m, scen), {})
                v = row.get(f"{metric}_mean", np.nan)
                if not np.isfinite(v):
                    cells.append("–")
                elif row["seeds"] == 1:
                    cells.append(f"{v:{sign}.1f} (1 seed)")
                else:
                    cells.append(f"{v:{sign}.1f} ± {row[f'{metric}_std']:.1f}")
            cols[(scen, label)] = cells
    return pd.DataFrame(cols)


#: before/after pairs of the temperature table: (column before, column after, label, percent)
_SCALED = (
    ("ece", "ece_ts", "ECE (%)", True),
    ("overconfidence", "overconfidence_ts", "over-confidence (points)", True),
    ("nll", "nll_ts", "NLL", False),
)


def _scaled_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows measured both before and after temperature scaling (a temperature saved)."""
    if not all(c in runs.columns for c in ("temperature", "ece_ts", "ece")):
        return runs.iloc[0:0]
    return runs[runs["temperature"].notna() & runs["ece_ts"].notna() & runs["ece"].notna()]


def temperature_by_scenario(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method and scenario, on the runs with a temperature only (so that before and after
    compare the same runs): the temperature, and ECE, over-confidence (percent) and NLL
    before and after scaling — mean and std (ddof 0) over seeds, each seed's value the mean
    over the scenario's pairs, as :func:`calibration_by_scenario`.

    Returns:
        ``method``, ``scenario``, ``seeds``, then ``{m}_mean`` and ``{m}_std`` for ``m`` in
        ``temperature``, ``ece``, ``ece_ts``, ``overconfidence``, ``overconfidence_ts``,
        ``nll``, ``nll_ts``; empty when no run has a temperature.
    """
    from cropglobe.report.transfer import _scenario_order

    metrics = ["temperature", *(c for pair in _SCALED for c in pair[:2])]
    columns = ["method", "scenario", "seeds",
               *(f"{m}_{k}" for m in metrics for k in ("mean", "std"))]  # fmt: skip
    rows = _scaled_runs(runs)
    if not len(rows):
        return pd.DataFrame(columns=columns)
    scale = pd.Series(
        {m: 100.0 if m.startswith(("ece", "overconfidence")) else 1.0 for m in metrics}
    )
    per_seed = rows.groupby(["method", "scenario", "seed"], sort=False)[metrics].mean() * scale
    grouped = per_seed.groupby(level=["method", "scenario"], sort=False)
    mean, std = grouped.mean(), grouped.std(ddof=0)
    parts = [grouped["ece"].count().rename("seeds")]
    for m in metrics:
        parts += [mean[m].rename(f"{m}_mean"), std[m].rename(f"{m}_std")]
    out = pd.concat(parts, axis=1).reset_index()
    rank = {sc: i for i, sc in enumerate(_scenario_order(runs))}
    methods = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    key = [(methods[m], rank[sc]) for m, sc in zip(out["method"], out["scenario"], strict=True)]
    order = sorted(range(len(out)), key=key.__getitem__)
    return out.iloc[order].reset_index(drop=True)[columns]


def temperature_table(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`temperature_by_scenario` as the report shows it: a row per method and
    scenario, the temperature and each measure before and after scaling, ``mean ± std``."""
    numbers = temperature_by_scenario(runs)

    def cell(row: dict[Any, Any], m: str, fmt: str) -> str:
        v = float(row[f"{m}_mean"])
        if not np.isfinite(v):
            return "–"
        if int(row["seeds"]) == 1:
            return f"{v:{fmt}} (1 seed)"
        return f"{v:{fmt}} ± {float(row[f'{m}_std']):{fmt.lstrip('+')}}"

    out: dict[str, list[str]] = {"method": [], "scenario": [], "T": []}
    for _, _, label, _ in _SCALED:
        out[f"{label} before"], out[f"{label} after"] = [], []
    for row in numbers.to_dict(orient="records"):
        out["method"].append(str(row["method"]))
        out["scenario"].append(str(row["scenario"]))
        out["T"].append(cell(row, "temperature", ".2f"))
        for before, after, label, pct in _SCALED:
            fmt = (".1f" if pct else ".3f") if before != "overconfidence" else "+.1f"
            out[f"{label} before"].append(cell(row, before, fmt))
            out[f"{label} after"].append(cell(row, after, fmt))
    return pd.DataFrame(out)


def temperature_finding(runs: pd.DataFrame) -> str | None:
    """One plain sentence: whether temperature scaling fitted on the source lowered the ECE
    in the targets, per method (mean over the transfer pairs and seeds with a temperature,
    and on how many of them it was lower); None when no transfer run has a temperature."""
    rows = _scaled_runs(_transfers(runs))
    if not len(rows):
        return None
    parts = []
    for m, sub in rows.groupby("method", sort=False):
        before, after = 100.0 * float(sub["ece"].mean()), 100.0 * float(sub["ece_ts"].mean())
        lower = int((sub["ece_ts"] < sub["ece"]).sum())
        t = float(sub["temperature"].median())
        verb = "lowered" if after < before else "raised" if after > before else "left"
        parts.append(
            f"{verb} the ECE of {m} from {before:.1f} % to {after:.1f} % "
            f"({after - before:+.1f} points; lower in {lower} of {len(sub)} runs, median "
            f"T = {t:.2f})"
        )
    return (
        "Temperature scaling fitted on the source's validation split "
        + "; it ".join(parts)
        + " in the targets."
    )


#: an experiment with one source and at most this many targets is drawn target by target
PANELS_PER_TARGET = 4


def pooled_reliability(
    reliability: pd.DataFrame, runs: pd.DataFrame, *, per_target: bool = False
) -> pd.DataFrame:
    """The runs' reliability bins pooled per method and scenario (over its pairs and seeds),
    or per method and pair (over its seeds) with ``per_target``.

    Returns:
        ``method``, ``panel`` (the scenario, or ``SOURCE → TARGET``), ``scenario``, ``bin``,
        ``lower``, ``upper``, ``count``, ``confidence``, ``accuracy`` (NaN in empty bins),
        ``pairs``, ``seeds``; panels in the report's scenario order. Only runs of ``runs``
        count.
    """
    from cropglobe.report.transfer import _scenario_order

    columns = ["method", "panel", "scenario", "bin", "lower", "upper", "count", "confidence",
               "accuracy", "pairs", "seeds"]  # fmt: skip
    if not len(reliability) or not len(runs):
        return pd.DataFrame(columns=columns)
    tags = runs[[*_KEYS, "scenario"]].drop_duplicates(_KEYS)
    rel = reliability.merge(tags, on=_KEYS, how="inner")
    if not len(rel):
        return pd.DataFrame(columns=columns)
    count = rel["count"].to_numpy(dtype=np.float64)
    pair = rel["source"].astype(str) + " → " + rel["target"].astype(str)
    rel = rel.assign(
        panel=pair if per_target else rel["scenario"].astype(str),
        _conf=np.nan_to_num(rel["confidence"].to_numpy(dtype=np.float64)) * count,
        _right=np.nan_to_num(rel["accuracy"].to_numpy(dtype=np.float64)) * count,
        _pair=pair,
    )
    rank = {s: i for i, s in enumerate(_scenario_order(rel))}
    first = {p: i for i, p in enumerate(dict.fromkeys(rel["panel"]))}
    rel["_rank"] = [rank[str(s)] for s in rel["scenario"]]
    rel["_first"] = [first[p] for p in rel["panel"]]
    rel = rel.sort_values(["_rank", "_first"], kind="stable")
    grouped = rel.groupby(["method", "panel", "scenario", "bin"], sort=False)
    out = grouped.agg(
        lower=("lower", "first"),
        upper=("upper", "first"),
        count=("count", "sum"),
        _conf=("_conf", "sum"),
        _right=("_right", "sum"),
        pairs=("_pair", "nunique"),
        seeds=("seed", "nunique"),
    ).reset_index()
    n = out["count"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["confidence"] = np.where(n > 0, out["_conf"] / n, np.nan)
        out["accuracy"] = np.where(n > 0, out["_right"] / n, np.nan)
    return out[columns]


def reliability_figure(pooled: pd.DataFrame, methods: Sequence[str], path: Path) -> Path:
    """Accuracy against confidence per confidence bin: one panel per ``panel`` of
    :func:`pooled_reliability` (scenario or pair), one curve per method (marker area by the
    bin's share of the samples), the diagonal of calibration."""
    from cropglobe.report.transfer import _plt, _save, series_colors

    plt = _plt()
    panels = list(dict.fromkeys(pooled["panel"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(0.6 + 3.4 * len(panels), 3.9), squeeze=False)
    colors = series_colors(len(methods))
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="calibrated")
        here = pooled[pooled["panel"] == panel]
        for m, color in zip(methods, colors, strict=True):
            sub = here[(here["method"] == m) & (here["count"] > 0)].sort_values("bin")
            if not len(sub):
                continue
            share = sub["count"].to_numpy(dtype=np.float64) / sub["count"].sum()
            x = sub["confidence"].to_numpy(dtype=np.float64)
            y = sub["accuracy"].to_numpy(dtype=np.float64)
            ax.plot(x, y, color=color, linewidth=1.2, label=m)
            ax.scatter(x, y, s=8 + 120 * share, color=color, alpha=0.8, linewidths=0)
        pairs = int(here["pairs"].max()) if len(here) else 0
        seeds = int(here["seeds"].max()) if len(here) else 0
        scen = str(here["scenario"].iloc[0]) if len(here) else ""
        what = f"{pairs} pair{'s' if pairs != 1 else ''}" if panel == scen else scen
        ax.set_title(f"{panel}\n({what}, {seeds} seed{'s' if seeds != 1 else ''})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("confidence (probability of the class predicted)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # methods present only in later panels
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    wide = len(panels) > 1  # one panel: the title on two lines
    fig.suptitle(
        "Reliability in the targets"
        + (" " if wide else "\n")
        + "(15 confidence bins, seeds pooled; below the diagonal: over-confident)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=min(len(labels), 4),
        fontsize=8,
        frameon=False,
    )
    return _save(fig, path)


def calibration_findings(runs: pd.DataFrame) -> list[str]:
    """Plain statements from the transfer rows' calibration (mean over pairs and seeds): the
    most over-confident method, and whether ECE grows with the scenario's difficulty."""
    from cropglobe.report.transfer import _scenario_order

    if "overconfidence" not in runs.columns:
        return []
    rows = _transfers(runs)
    rows = rows[rows["ece"].notna() & rows["overconfidence"].notna()]
    if not len(rows):
        return []
    means = rows.groupby("method", sort=False)[["ece", "overconfidence"]].mean() * 100.0
    over = means["overconfidence"]
    top = str(over.idxmax())
    found = []
    if len(means) == 1:
        v, e = float(over.iloc[0]), float(means["ece"].iloc[0])
        side = "over" if v > 0 else "under"
        found.append(
            f"{top} is {side}-confident in the targets: its mean confidence is "
            f"{abs(v):.1f} points {'above' if v > 0 else 'below'} its accuracy (ECE {e:.1f} %)."
        )
    elif float(over.max()) > 0:
        low = str(over.idxmin())
        found.append(
            f"{top} is the most over-confident in the targets: its mean confidence exceeds its "
            f"accuracy by {float(over.max()):.1f} points (ECE {float(means['ece'][top]):.1f} %); "
            f"{low} the least ({float(over.min()):+.1f} points, ECE "
            f"{float(means['ece'][low]):.1f} %)."
        )
    else:
        found.append(
            "No method is over-confident in the targets on average: every one's mean "
            f"confidence is at or below its accuracy ({top} closest, {float(over.max()):+.1f} "
            "points)."
        )
    order = _scenario_order(rows)
    if len(order) >= 2:
        by = rows.groupby(["method", "scenario"], sort=False)["ece"].mean().mul(100.0)
        grows: list[str] = []
        not_grows: list[str] = []
        for m in means.index:
            vals = [float(by.get((m, s), np.nan)) for s in order]
            vals = [v for v in vals if np.isfinite(v)]
            if len(vals) < 2:
                continue
            path = " → ".join(f"{v:.1f}" for v in vals)
            steady = all(b >= a for a, b in pairwise(vals)) and vals[-1] > vals[0]
            (grows if steady else not_grows).append(f"{m} ({path} %)")
        span = f"{order[0]} → {order[-1]}"
        if grows and not not_grows:
            found.append(f"ECE grows with the scenario's difficulty ({span}) for every method: "
                         + ", ".join(grows) + ".")  # fmt: skip
        elif grows:
            found.append(
                f"ECE grows with the scenario's difficulty ({span}) for "
                + ", ".join(grows)
                + "; not steadily for "
                + ", ".join(not_grows)
                + "."
            )
        elif not_grows:
            found.append(
                f"ECE does not grow steadily with the scenario's difficulty ({span}): "
                + ", ".join(not_grows)
                + "."
            )
    return found


def calibration_section(
    runs: pd.DataFrame,
    reliability: pd.DataFrame,
    stage: Path,
) -> tuple[str, list[Path], dict[str, pd.DataFrame], list[str]]:
    """The report's calibration section: HTML, its figure, its tables (``by_scenario``:
    :func:`calibration_by_scenario`; ``reliability``: the pooled bins,
    :func:`pooled_reliability`) and its findings.

    Args:
        runs: the scored runs (pairs of one scored class left out) with the calibration
            columns (:func:`cropglobe.evaluate.calibration.merge_calibration`).
        reliability: the runs' bins (:func:`cropglobe.evaluate.calibration.calibrate_runs`).
        stage: where the figure is drawn.
    """
    from cropglobe.report.transfer import _img

    methods = list(dict.fromkeys(runs["method"].astype(str)))
    # one source and few targets: a panel per target; else one per scenario, pairs pooled
    per_target = runs["source"].nunique() == 1 and runs["target"].nunique() <= PANELS_PER_TARGET
    pooled = pooled_reliability(reliability, runs, per_target=per_target)
    drawn = any((pooled["method"] == m).any() for m in methods)
    # every method keeps its colour of the other figures; those without bins are not drawn
    figs = [reliability_figure(pooled, methods, stage / "reliability.png")] if drawn else []
    table = calibration_table(runs)
    numbers = calibration_by_scenario(runs)
    found = calibration_findings(runs)
    names = set(methods)
    notes = []
    if any(m.endswith("+prior") and not m.endswith("+tta+prior") for m in names):
        notes.append(
            "Rows METHOD+prior are measured on the posteriors re-weighted to the class mix EM "
            "estimates, recomputed from the saved probabilities as the run scored them."
        )
    if any("+tta" in m for m in names):
        notes.append(
            "Rows METHOD+tta and METHOD+tta+prior are left blank: their shift-averaged "
            "probabilities are not saved, and measuring them would run every model on every "
            "target again."
        )
    blank = [m for m in methods if "+tta" not in m and not (pooled["method"] == m).any()]
    if blank:
        notes.append(
            f"No probabilities to measure for {', '.join(blank)} (none saved with the runs): "
            "left blank."
        )
    parts = [
        "<h2>Calibration in the targets: can the probabilities be trusted?</h2>",
        "<p>Whether each method's confidence matched how often it was right where it was "
        "applied. The confidence of a prediction is the probability of the class predicted "
        "(in a target that maps fewer classes, the probabilities of the classes collapsed to "
        "“other” are summed into it), on the samples scored above. <b>ECE</b> (expected "
        "calibration error): the samples in 15 equal-width confidence bins, the gap between "
        "accuracy and mean confidence in each, weighted by its samples (0: as often right as "
        "confident). <b>Over-confidence</b>: mean confidence minus accuracy (positive: the "
        "model claims more than it delivers, and its probability and uncertainty layers "
        "overstate the map). Each seed's value is the mean over the scenario's pairs; per "
        "pair in <code>results.csv</code> (<code>ece_mean</code>, "
        "<code>overconfidence_mean</code>, equal-mass <code>ece_mass_mean</code>, "
        "<code>brier_mean</code>, <code>nll_mean</code>), per run in "
        "<code>results.json</code>. Measured from each run's saved predictions: nothing is "
        "trained or predicted again. The reliability diagram pools each method's seeds per "
        "target (with several sources or over 4 targets: the pairs of each scenario too); a "
        "curve below the diagonal is over-confident.</p>",
    ]
    if found:
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in found) + "</ul>")
    parts.append(table.to_html(index=False, escape=True))
    parts += [_img(p) for p in figs]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    tables = {"by_scenario": numbers, "reliability": pooled}
    if all(c in runs.columns for c in ("temperature", "ece_ts")):
        scaled_html, tables["temperature"], said = _temperature_part(runs, methods)
        parts.append(scaled_html)
        found = [*found, *said]
    return "\n".join(parts), figs, tables, found


def _temperature_part(
    runs: pd.DataFrame, methods: Sequence[str]
) -> tuple[str, pd.DataFrame, list[str]]:
    """The section's part on temperature scaling: HTML, its numbers and its sentence."""
    numbers = temperature_by_scenario(runs)
    with_t = list(dict.fromkeys(numbers["method"].astype(str)))
    without = [m for m in methods if m not in with_t and "+tta" not in m]
    parts = [
        "<h3>After temperature scaling fitted on the source</h3>",
        "<p>Temperature scaling (Guo et al. 2017) divides a network's logits by one number T "
        "before the softmax (T &gt; 1 softens over-confident probabilities), T chosen to "
        "minimise the log-loss on the source's validation split (the 20 % held out of "
        "training). It leaves every prediction, and so every accuracy above, as it is. Here each "
        "run's T is applied to its saved target probabilities and the calibration measured "
        "again: does a fix fitted where the model was trained still help where it is "
        "applied? Per pair in <code>results.csv</code> (<code>ece_ts_mean</code>, "
        "<code>overconfidence_ts_mean</code>, <code>brier_ts_mean</code>, "
        "<code>nll_ts_mean</code>, <code>temperature_mean</code>); each run's T and its "
        "validation figures in its <code>metrics.json</code>.</p>",
    ]
    said = []
    if (sentence := temperature_finding(runs)) is not None:
        said.append(sentence)
        parts.append(f"<p><b>{html.escape(sentence)}</b></p>")
    if len(numbers):
        parts.append(temperature_table(runs).to_html(index=False, escape=True))
    notes = []
    if any(m.endswith("+prior") for m in with_t):
        notes.append(
            "Rows METHOD+prior after scaling: the probabilities are scaled first and EM "
            "re-estimates the class mix from them (it assumes calibrated posteriors), so their "
            "predictions, and accuracy, can differ a little from the row's above."
        )
    if without:
        notes.append(
            f"No temperature for {', '.join(without)}: left blank. Temperatures are fitted for "
            "neural models only, on a validation split held out of training; CropNet under "
            "the paper protocol validates on its own training samples, where a temperature "
            "comes out biased low, so none is fitted; runs saved before temperatures were "
            "fitted have none (they are not trained again for it)."
        )
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    return "\n".join(parts), numbers, said
