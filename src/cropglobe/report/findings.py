"""What a transfer experiment found, in plain sentences computed from its scores.

:func:`transfer_findings` turns the aggregated scores of a transfer experiment (one row per
method, source, target and scenario: :func:`cropglobe.evaluate.metrics.aggregate_runs`) into a
few statements a reader can check against the tables: how each method fares by scenario and
how much it loses with distance, which method leads in each scenario, which targets are
hardest, and what phenology augmentation changes for each network run with and without it
(with its 95 % interval over seeds, paired by seed, when the runs are given). The transfer
report opens with them; ``cropglobe demo`` and ``cropglobe transfer`` print them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["transfer_findings"]


def _augmentation_pairs(methods: list[str]) -> list[tuple[str, str]]:
    """``(plain, augmented)`` method names run both ways: ``cropnet`` and ``cropnet-aug`` …"""
    return [(m[: -len("-aug")], m) for m in methods if m.endswith("-aug") and m[:-4] in methods]


def _augmentation_line(
    table: pd.DataFrame, cols: list[str], plain: str, aug: str, runs: pd.DataFrame | None
) -> str:
    from cropglobe.evaluate.compare import paired_comparison
    from cropglobe.report.transfer import signed_points

    gains = table.loc[aug, cols] - table.loc[plain, cols]
    intervals: dict[str, str] = {}
    if runs is not None:
        pair = runs[runs["method"].isin([plain, aug])]
        cmp = paired_comparison(pair, plain, metrics=("oa",))
        for r in cmp.to_dict(orient="records"):
            if r["n_seeds"] >= 2:
                intervals[str(r["scenario"])] = (
                    f" ({signed_points(r['oa_low'])} … {signed_points(r['oa_high'])})"
                )
    parts = ", ".join(f"{c} {gains[c]:+.1f}{intervals.get(c, '')}" for c in cols)
    ci = ", 95 % CI over seeds" if intervals else ""
    best = str(gains.idxmax())
    shown = float(np.nanmax(gains.to_numpy(dtype=float))) >= 0.05  # visible at one decimal
    verdict = f"largest gain: {best}" if shown else "no gain in any scenario"
    return f"augmentation ({aug} − {plain}, OA points{ci}): {parts}; {verdict}"


def _shift_lines(agg: pd.DataFrame, diagnostics: pd.DataFrame, method: str) -> list[str]:
    """The pair farthest outside its source's range and, from :data:`MIN_PAIRS` pairs on, how
    the share outside ranks with ``method``'s accuracy."""
    from cropglobe.report.shift import MIN_PAIRS, shift_correlations, shift_table

    table = shift_table(diagnostics, agg)
    keep = {(str(s), str(t)) for s, t in zip(agg["source"], agg["target"], strict=True)}
    pairs = list(zip(table["source"], table["target"], strict=True))
    table = table[np.array([p in keep for p in pairs], dtype=bool)]
    share = table["outside_share"].to_numpy(dtype=np.float64)
    if not np.isfinite(share).any():
        return []
    from cropglobe.evaluate.shift import OUTSIDE_LEVEL

    far = table.iloc[int(np.nanargmax(share))]
    if far["outside_share"] <= 200 * OUTSIDE_LEVEL:  # percent; "close" as diagnose says it
        # no pair is far outside: naming the largest share "farthest outside" would read as
        # a warning about a pair at or below the 5 % expected without any shift
        head = "no pair lies far outside its source's range: at most"
    else:
        head = "farthest outside its source's range:"
    out = [
        f"{head} {far['source']} → {far['target']} "
        f"({far['outside_share']:.0f} % of its fields; about 5 % without shift)"
    ]
    if len(table) >= MIN_PAIRS:
        corr = shift_correlations(table, [method])
        row = corr[corr["diagnostic"] == "outside_share"].iloc[0]
        if np.isfinite(row["rho"]):
            out.append(
                f"share outside against {method}'s OA over {int(row['n_pairs'])} pairs: "
                f"Spearman ρ = {row['rho']:+.2f} (p = {row['p']:.2g}; negative: the farther "
                "outside, the lower the accuracy)"
            )
    return out


def transfer_findings(
    agg: pd.DataFrame, runs: pd.DataFrame | None = None, diagnostics: pd.DataFrame | None = None
) -> list[str]:
    """Plain statements about a transfer experiment's scores.

    Args:
        agg: aggregated scores with ``method``, ``target``, ``scenario`` and ``oa_mean``
            (percent); pairs whose accuracy is no transfer score (one class scored) should
            be left out beforehand.
        runs: the per-run scores (``method``, ``source``, ``target``, ``scenario``, ``seed``,
            ``oa``) the intervals of the augmentation lines are computed from; None: no
            intervals.
        diagnostics: the pairs' label-free shift diagnostics
            (:func:`cropglobe.evaluate.shift.pair_diagnostics`), or None.

    Returns:
        One line per method (mean OA per scenario, the pairs averaged, and the points lost from
        the nearest scenario, a source's own hold-out when there is one, to the farthest), one
        naming the leading method of each scenario (with two or more methods), one naming the
        hardest and easiest targets (with two or more; hold-outs left out), with
        ``diagnostics`` the pair farthest outside its source's range and (from four pairs on)
        how the share outside ranks with the first method's accuracy, then one per network
        run with and without augmentation (``X-aug`` against ``X``), last.
    """
    if agg.empty:
        return []
    scored = runs["n_classes_scored"] if runs is not None and "n_classes_scored" in runs else None
    if scored is not None and len(scored) and bool((scored <= 1).all()):
        return []  # one class scored on every pair: no accuracy here is a transfer score
    pct = agg
    table = pct.groupby(["method", "scenario"])["oa_mean"].mean().unstack("scenario")
    from cropglobe.report.transfer import _scenario_order

    cols = _scenario_order(pct)  # hold-outs (within-…) first, then by distance
    methods = list(dict.fromkeys(pct["method"]))
    table = table.reindex(index=methods)
    out: list[str] = []
    for method, row in table[cols].iterrows():
        parts = ", ".join(f"{c} {row[c]:.1f} %" for c in cols if np.isfinite(row[c]))
        trend = ""
        near, far = cols[0], cols[-1]
        if len(cols) > 1 and np.isfinite(row[near]) and np.isfinite(row[far]):
            drop = row[near] - row[far]
            trend = (
                f" — {drop:.1f} points lost from {near} to {far}"
                if drop > 0
                else f" — no loss from {near} to {far} ({-drop:+.1f} points)"
            )
        out.append(f"{method}: {parts}{trend}")
    if len(methods) > 1:
        leads = []
        for c in cols:
            ranked = table[c].dropna().sort_values(ascending=False)
            if len(ranked) >= 2:
                leads.append(
                    f"{c} {ranked.index[0]} {ranked.iloc[0]:.1f} % "
                    f"(next {ranked.index[1]} {ranked.iloc[1]:.1f} %)"
                )
        if leads:
            out.append("leading method: " + "; ".join(leads))
    moved = pct[~pct["scenario"].astype(str).str.startswith("within-")]  # no hold-outs
    per_target = moved.groupby("target")["oa_mean"].mean().sort_values()
    if len(per_target) >= 2:
        out.append(
            f"hardest target: {per_target.index[0]} ({per_target.iloc[0]:.1f} % mean OA over "
            f"methods and sources); easiest: {per_target.index[-1]} ({per_target.iloc[-1]:.1f} %)"
        )
    if diagnostics is not None and len(diagnostics):
        out += _shift_lines(pct, diagnostics, methods[0])
    for plain, aug in _augmentation_pairs(methods):
        out.append(_augmentation_line(table, cols, plain, aug, runs))
    return out
