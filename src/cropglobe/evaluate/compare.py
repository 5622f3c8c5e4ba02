"""Is one method really better than another? Paired-by-seed differences with confidence intervals.

A transfer table of mean ± std over a handful of seeds invites over-reading: 78.1 against 78.8 %
may be a difference of methods or a difference of draws. These helpers answer the question the
way the seeds allow. For every seed, the difference between a method and a baseline is averaged
over the (source, target) pairs being summarised (pairs scored with the same seed share a trained
model, so they are not independent); the seeds are then the independent units: mean difference,
a Student-t confidence interval, a paired t-test, and how often the method won. Rows derived from
the same trained models (``METHOD+tta``, ``METHOD+prior``) pair exactly with their base method, so
the test sees only the effect of the evaluation step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from cropglobe.errors import CropGlobeError

__all__ = ["mean_ci", "paired_comparison", "welch_comparison"]

ALL_SCENARIOS = "all scenarios"


def mean_ci(values: ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its two-sided Student-t confidence interval.

    Args:
        values: 1-D sample (e.g. one number per seed).
        level: confidence level in (0, 1).

    Returns:
        ``(mean, low, high)``; the bounds are NaN with fewer than two values, and equal to the
        mean when all values are equal.
    """
    from scipy import stats

    if not 0.0 < level < 1.0:
        raise CropGlobeError(f"level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    se = float(v.std(ddof=1)) / np.sqrt(v.size)
    half = float(stats.t.ppf(0.5 + level / 2.0, v.size - 1)) * se
    return m, m - half, m + half


def _paired_p(d: np.ndarray) -> float:
    """Two-sided paired t-test p-value of differences ``d`` (NaN with < 2 values)."""
    from scipy import stats

    if d.size < 2:
        return float("nan")
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return 1.0 if float(d.mean()) == 0.0 else 0.0
    t = float(d.mean()) / (sd / np.sqrt(d.size))
    return float(2.0 * stats.t.sf(abs(t), d.size - 1))


def paired_comparison(
    runs: pd.DataFrame,
    baseline: str,
    metrics: Sequence[str] = ("oa", "macro_f1"),
    level: float = 0.95,
    by_scenario: bool = True,
) -> pd.DataFrame:
    """Every method against ``baseline``, paired by seed, in percentage points.

    Args:
        runs: one row per run with columns ``method``, ``source``, ``target``, ``seed``,
            ``scenario`` and the metric columns (fractions 0…1), as ``ExperimentResult.runs``.
        baseline: the method every other method is compared with.
        metrics: metric columns to compare.
        level: confidence level of the intervals.
        by_scenario: one row per scenario as well as one over all transfer scenarios (the
            latter only when there are several; it leaves out the sources' own hold-outs).

    Returns:
        One row per (method, scenario) with ``n_seeds`` (seeds both methods ran on the same
        pairs), ``n_pairs`` (source → target pairs), and per metric ``{m}_diff`` (mean
        difference, method − baseline, in points), ``{m}_low`` / ``{m}_high`` (confidence
        interval, cut at ±100 points: two percentages differ by at most 100), ``{m}_ci_cut``
        (True where the Student-t interval reached past ±100 points and was cut there: a bound
        of ±100 then comes from the scale, not from the seeds, which are too few or too spread
        to bound the difference; False otherwise and without an interval), ``{m}_p`` (two-sided
        paired t-test) and ``{m}_wins`` / ``{m}_losses`` (seeds on which the method was better
        / worse). Empty when no other method shares a seed and a pair with the baseline (the
        columns are there all the same).

    Raises:
        CropGlobeError: ``baseline`` is not a method of ``runs``.
    """
    columns = ["method", "baseline", "scenario", "n_seeds", "n_pairs"]
    per_metric = ("diff", "low", "high", "ci_cut", "p", "wins", "losses")
    columns += [f"{m}_{k}" for m in metrics for k in per_metric]
    if not len(runs):
        return pd.DataFrame(columns=columns)
    methods = list(dict.fromkeys(runs["method"]))
    if baseline not in methods:
        raise CropGlobeError(
            f"baseline method {baseline!r} is not in the runs; present: {', '.join(methods)}"
        )
    key = ["source", "target", "seed"]
    base = runs[runs["method"] == baseline].set_index(key)
    groups: list[tuple[str, pd.Series]] = []
    scenarios = list(dict.fromkeys(runs["scenario"]))
    if by_scenario:
        groups += [(s, runs["scenario"] == s) for s in scenarios]
    transfers = runs["source"].astype(str) != runs["target"].astype(str)
    if not by_scenario or len(set(runs.loc[transfers, "scenario"])) > 1:
        # all transfers: a source's own hold-out (--within) is no transfer to pool with them
        groups.append((ALL_SCENARIOS, transfers))
    rows: list[dict[str, object]] = []
    for method in methods:
        if method == baseline:
            continue
        for scenario, mask in groups:
            other = runs[(runs["method"] == method) & mask].set_index(key)
            both = other.index.intersection(base.index)
            if not len(both):
                continue
            row: dict[str, object] = {
                "method": method,
                "baseline": baseline,
                "scenario": scenario,
                "n_seeds": int(both.get_level_values("seed").nunique()),
                "n_pairs": len(both.droplevel("seed").unique()),
            }
            for m in metrics:
                diff = (other.loc[both, m] - base.loc[both, m]) * 100.0
                per_seed = diff.groupby(level="seed").mean().to_numpy(dtype=np.float64)
                mean, low, high = mean_ci(per_seed, level)
                row[f"{m}_diff"] = mean
                # two percentages differ by at most 100 points (few seeds: wide t intervals)
                row[f"{m}_low"] = float(np.clip(low, -100.0, 100.0))
                row[f"{m}_high"] = float(np.clip(high, -100.0, 100.0))
                # said in the file: a cut bound is the scale's, not the seeds' (NaN: False)
                row[f"{m}_ci_cut"] = bool(low < -100.0 or high > 100.0)
                row[f"{m}_p"] = _paired_p(per_seed)
                row[f"{m}_wins"] = int((per_seed > 0).sum())
                row[f"{m}_losses"] = int((per_seed < 0).sum())
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def welch_comparison(a: ArrayLike, b: ArrayLike, level: float = 0.95) -> dict[str, float]:
    """Two independent sets of runs (e.g. two implementations over their own seeds), unpaired.

    Welch's t-test, which does not assume equal spreads: the right test when the seeds of ``a``
    and ``b`` draw unrelated random streams, so that seed numbers do not pair.

    Args:
        a: one score per run of the first set.
        b: one score per run of the second set.
        level: confidence level of the interval of the difference.

    Returns:
        ``diff`` (mean of ``a`` − mean of ``b``), ``low`` / ``high`` (Welch–Satterthwaite
        Student-t interval of it), ``p`` (two-sided), ``df``, ``n_a``, ``n_b``.

    Raises:
        CropGlobeError: either set has fewer than two values.
    """
    from scipy import stats

    if not 0.0 < level < 1.0:
        raise CropGlobeError(f"level must be in (0, 1), got {level}")
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size < 2 or y.size < 2:
        raise CropGlobeError(
            f"Welch's test needs at least two runs on each side, got {x.size} and {y.size}; "
            "run more seeds"
        )
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(x.mean() - y.mean())
    se = float(np.sqrt(va + vb))
    if se == 0.0:  # both sets constant: the difference is exact
        p, df, half = (1.0 if diff == 0.0 else 0.0), float("inf"), 0.0
    else:
        df = float((va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1)))
        half = float(stats.t.ppf(0.5 + level / 2.0, df)) * se
        p = float(2.0 * stats.t.sf(abs(diff) / se, df))
    return {
        "diff": diff,
        "low": diff - half,
        "high": diff + half,
        "p": p,
        "df": df,
        "n_a": float(x.size),
        "n_b": float(y.size),
    }
