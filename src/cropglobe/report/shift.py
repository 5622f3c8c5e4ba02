"""The report's shift section: label-free diagnostics of each pair beside its accuracies.

The question it answers for a reader: had I measured only the unlabelled target, could I have
told which pairs transfer badly? Each pair's diagnostics (:mod:`cropglobe.evaluate.shift`) sit
beside the mean overall accuracy of each method, with Spearman's rank correlation between each
diagnostic and the accuracy over the pairs, and a scatter plot of the two.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DIAGNOSTICS",
    "applicability_table",
    "shift_correlations",
    "shift_figure",
    "shift_section",
    "shift_table",
]

#: diagnostic column -> (label, how a value is shown); |lag| is what a model suffers from
DIAGNOSTICS: dict[str, tuple[str, str]] = {
    "domain_auc": ("source-vs-target AUC", "{:.2f}"),
    "outside_share": ("outside the source's range (%)", "{:.0f}"),
    "abs_lag": ("|season lag| (days)", "{:.0f}"),
}
#: fewest pairs a rank correlation is shown for
MIN_PAIRS = 4

#: most pairs whose rank-correlation p-value is exact (every ordering of the pairs: 8! = 40,320)
EXACT_PAIRS = 8


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's ρ of ``x`` and ``y`` and its two-sided p-value.

    Up to :data:`EXACT_PAIRS` pairs the p-value is exact: the share of the n! orderings of
    ``y`` whose |ρ| reaches the observed one (scipy's t approximation is far off on so few
    pairs: it gives p = 0 for ρ = ±1, where 4 pairs fall in that order by chance 2 times in
    24, p = 0.083). Beyond, the t approximation, never below the exact test's smallest
    p-value 2 / n!.
    """
    from scipy.stats import rankdata, spearmanr

    res = spearmanr(x, y)
    rho = float(res.statistic)
    n = len(x)
    if n > EXACT_PAIRS:
        return rho, max(float(res.pvalue), 2.0 / math.factorial(n))
    a = rankdata(x) - (n + 1) / 2.0
    b = rankdata(y) - (n + 1) / 2.0
    every = b[np.array(list(itertools.permutations(range(n))))]  # (n!, n)
    r = every @ a / np.sqrt((a * a).sum() * (b * b).sum())
    return rho, float(np.mean(np.abs(r) >= abs(rho) - 1e-9))


def shift_table(diag: pd.DataFrame, agg: pd.DataFrame) -> pd.DataFrame:
    """One row per diagnosed pair: the diagnostics and each method's mean OA (%) on it.

    Args:
        diag: :func:`cropglobe.evaluate.shift.pair_diagnostics` rows.
        agg: the experiment's aggregated results (``method``, ``source``, ``target``,
            ``scenario``, ``oa_mean`` in percent …).
    """
    t = diag[["source", "target"]].astype(str).copy()
    t["domain_auc"] = diag["domain_auc"].to_numpy(dtype=np.float64)
    t["outside_share"] = 100.0 * diag["outside_share"].to_numpy(dtype=np.float64)
    t["lag_days"] = diag["lag_days"].to_numpy(dtype=np.float64)
    t["abs_lag"] = np.abs(t["lag_days"])
    a = agg.assign(source=agg["source"].astype(str), target=agg["target"].astype(str))
    scen = a.drop_duplicates(["source", "target"]).set_index(["source", "target"])["scenario"]
    keys = list(zip(t["source"], t["target"], strict=True))
    t.insert(2, "scenario", [scen.get(k, "") for k in keys])
    for method in dict.fromkeys(a["method"]):
        oa = a[a["method"] == method].set_index(["source", "target"])["oa_mean"]
        t[f"OA {method}"] = [float(oa[k]) if k in oa.index else np.nan for k in keys]
    return t


def shift_correlations(
    table: pd.DataFrame, methods: Sequence[str], exclude: Sequence[tuple[str, str]] = ()
) -> pd.DataFrame:
    """Spearman's ρ between each diagnostic and each method's OA over the pairs.

    Args:
        table: :func:`shift_table`.
        methods: the methods (``OA {method}`` columns).
        exclude: (source, target) pairs left out (a single class scored: no transfer score).

    Returns:
        One row per (diagnostic, method): ``rho``, ``p`` (two-sided, :func:`spearman`),
        ``n_pairs``; ``rho`` is NaN under :data:`MIN_PAIRS` pairs or when either side is
        constant.
    """
    sub = _kept(table, exclude)
    rows = []
    for col in DIAGNOSTICS:
        for m in methods:
            x = sub[col].to_numpy(dtype=np.float64)
            y = sub[f"OA {m}"].to_numpy(dtype=np.float64)
            ok = np.isfinite(x) & np.isfinite(y)
            n = int(ok.sum())
            rho = p = np.nan
            if n >= MIN_PAIRS and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
                rho, p = spearman(x[ok], y[ok])
            rows.append({"diagnostic": col, "method": m, "rho": rho, "p": p, "n_pairs": n})
    return pd.DataFrame(rows)


def _kept(table: pd.DataFrame, exclude: Sequence[tuple[str, str]]) -> pd.DataFrame:
    drop = {(str(s), str(t)) for s, t in exclude}
    keep = [(s, t) not in drop for s, t in zip(table["source"], table["target"], strict=True)]
    return table[np.asarray(keep, dtype=bool)]  # a plain empty list would select no column


def shift_figure(table: pd.DataFrame, methods: Sequence[str], path: Path) -> Path:
    """Each diagnostic (one panel each) against each method's OA, a dot per pair."""
    from cropglobe.report.transfer import _plt, _save, series_colors

    plt = _plt()
    cols = [c for c in DIAGNOSTICS if table[c].notna().any()]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6), squeeze=False)
    colors = series_colors(len(methods))
    several = table["source"].nunique() > 1
    names = [
        _short(f"{s}→{t}" if several else str(t))
        for s, t in zip(table["source"], table["target"], strict=True)
    ]
    for ax, col in zip(axes[0], cols, strict=True):
        x = table[col].to_numpy(dtype=np.float64)
        for m, color in zip(methods, colors, strict=True):
            y = table[f"OA {m}"].to_numpy(dtype=np.float64)
            ax.scatter(x, y, s=28, color=color, label=m, alpha=0.85)
        top = table[[f"OA {m}" for m in methods]].max(axis=1).to_numpy(dtype=np.float64)
        for xi, yi, name in zip(x, top, names, strict=True):
            if np.isfinite(xi) and np.isfinite(yi):
                ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=7)
        ax.set_xlabel(DIAGNOSTICS[col][0])
        ax.set_ylabel("overall accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("Shift measured without target labels, against the accuracy reached")
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, path)


def _short(name: str, most: int = 18) -> str:
    """A label for a dot: long group names cut (the table below the figure has them whole)."""
    return name if len(name) <= most else name[: most - 1] + "…"


def _rho_text(row: pd.Series) -> str:
    if not np.isfinite(row["rho"]):
        return f"– ({int(row['n_pairs'])} pairs)"
    return f"{row['rho']:+.2f} (p {row['p']:.2g}, {int(row['n_pairs'])} pairs)"


def shift_section(
    diag: pd.DataFrame,
    agg: pd.DataFrame,
    stage: Path,
    exclude: Sequence[tuple[str, str]] = (),
    applicability: pd.DataFrame | None = None,
) -> tuple[str, list[Path], dict[str, pd.DataFrame]]:
    """The report's shift section: HTML, its figure, and its tables (``diagnostics``: the
    pairs with their accuracies; ``correlations``)."""
    from cropglobe.evaluate.shift import OUTSIDE_LEVEL
    from cropglobe.report.transfer import _img

    methods = list(dict.fromkeys(agg["method"].astype(str)))
    table = shift_table(diag, agg)
    corr = shift_correlations(table, methods, exclude)
    shown_pairs = _kept(table, exclude)
    # a scatter of fewer pairs than a correlation needs shows nothing the table does not
    many = len(shown_pairs) >= MIN_PAIRS
    figs = [shift_figure(shown_pairs, methods, stage / "shift.png")] if many else []
    lagged = bool(table["lag_days"].notna().any())  # no NDVI curves over time: no lag at all
    shown = table.drop(columns=["abs_lag"] if lagged else ["abs_lag", "lag_days"]).astype(object)
    formats = {"domain_auc": "{:.2f}", "outside_share": "{:.1f}", "lag_days": "{:+.0f}"}
    for col in shown.columns[3:]:
        fmt = formats.get(str(col), "{:.1f}")
        shown[col] = [fmt.format(v) if np.isfinite(v) else "–" for v in table[col]]
    shown = shown.rename(
        columns={
            "domain_auc": DIAGNOSTICS["domain_auc"][0],
            "outside_share": DIAGNOSTICS["outside_share"][0],
            "lag_days": "season lag (days)",
        }
    )
    if len(shown_pairs) < len(table):
        out = ~table.index.isin(shown_pairs.index)
        shown["note"] = np.where(out, "one class scored: left out below", "")
    lag_text = (
        "<b>Season lag</b>: the shift of the target's NDVI curves that brings them closest to "
        "the source's (positive: later). "
        if lagged
        else "The season lag is not measured here: the data give no NDVI curves over time "
        "(no B04 and B08 bands, or a feature table's single step). "
    )
    parts = [
        "<h2>Shift: could the drop be seen without target labels?</h2>",
        f"<p>For each pair, {'three' if lagged else 'two'} measures of how the target's data "
        "differ from the source's, taken from the data alone (no target label), beside the "
        "accuracy each method reached. <b>Source-vs-target AUC</b>: how well a "
        "nearest-neighbour classifier tells source fields from target fields (0.5: alike, 1: "
        "apart). <b>Outside the source's range</b>: the share of target fields farther from "
        "their nearest source fields than 95 % of source fields are from theirs "
        f"({100 * OUTSIDE_LEVEL:.0f} % without shift). {lag_text}They measure difference, "
        "not harm: a model trained for a shift (augmentation) may not suffer from it.</p>",
        shown.to_html(index=False, escape=True)
        if len(table)
        else "<p>No pair could be diagnosed: the shift diagnostics need at least 10 samples "
        "with observations on each side.</p>",
    ]
    if len(shown_pairs):
        parts.append(
            "<h3>Do they track the accuracy? (Spearman's ρ over the pairs)</h3><p>A measure that "
            "warns of a poor transfer has ρ &lt; 0 (more shift, lower accuracy). On few pairs "
            "ρ is uncertain: with 6 pairs only |ρ| ≥ 0.89 is significant at 5 %; pairs where "
            "only one class could be scored are left out.</p>"
        )
        wide = corr.assign(text=corr.apply(_rho_text, axis=1)).pivot(
            index="diagnostic", columns="method", values="text"
        )
        measured = [c for c in DIAGNOSTICS if lagged or c != "abs_lag"]
        wide = wide.reindex(index=measured, columns=methods)
        wide.index = [DIAGNOSTICS[c][0] for c in wide.index]
        parts.append(wide.to_html(escape=True))
        parts += [_img(p) for p in figs]
    tables = {"diagnostics": table, "correlations": corr}
    if applicability is not None and len(applicability):
        inout = applicability_table(applicability, exclude)
        tables["applicability"] = inout
        parts.append(
            "<h3>Within each source's range and beyond it</h3><p>Each run's overall accuracy "
            "on the target samples inside its source's range (dissimilarity ≤ 1 from a "
            "reference of the source's series, as <code>cropglobe predict</code> and "
            "<code>map --applicability</code> compute it) and outside, scored as above and "
            "averaged over seeds (samples scored in brackets; per seed in "
            "<code>applicability.csv</code>). Where the outside column is lower, the "
            "dissimilarity marks the fields to distrust on this data; where it is not, it "
            "does not.</p>"
        )
        parts.append(inout.to_html(index=False, escape=True))
    return "\n".join(parts), figs, tables


def applicability_table(
    runs: pd.DataFrame, exclude: Sequence[tuple[str, str]] = ()
) -> pd.DataFrame:
    """Per method and pair: samples outside (%), and the accuracy inside and outside the
    source's range averaged over seeds, as text (``"78.1 (412)"``); pairs of ``exclude`` (a
    single class scored) left out."""
    kept = _kept(runs.assign(source=runs["source"].astype(str), target=runs["target"].astype(
        str)), exclude)  # fmt: skip
    rows = []
    for (method, source, target), g in kept.groupby(["method", "source", "target"], sort=False):
        n_in, n_out = float(g["n_inside"].mean()), float(g["n_outside"].mean())
        rows.append(
            {
                "method": method,
                "source": source,
                "target": target,
                "outside (%)": f"{100 * n_out / max(n_in + n_out, 1):.1f}",
                "OA inside (%)": _mean_text(g["oa_inside"], n_in),
                "OA outside (%)": _mean_text(g["oa_outside"], n_out),
            }
        )
    return pd.DataFrame(rows)


def _mean_text(values: pd.Series, n: float) -> str:
    v = values.to_numpy(dtype=np.float64)
    return "–" if not np.isfinite(v).any() else f"{np.nanmean(v):.1f} ({n:.0f})"
