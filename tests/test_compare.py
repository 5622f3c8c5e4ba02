"""Paired-by-seed method comparison: known answers on constructed runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cropglobe.errors import CropGlobeError
from cropglobe.evaluate.compare import ALL_SCENARIOS, mean_ci, paired_comparison, welch_comparison
from cropglobe.report.transfer import comparison_lines, comparison_table


def test_mean_ci_known_answer() -> None:
    # mean 2, sd 1 (ddof 1), se 1/sqrt(3); t(0.975, 2 df) = 4.302653
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert m - lo == pytest.approx(hi - m)
    m, lo, hi = mean_ci([5.0])
    assert m == 5.0 and np.isnan(lo) and np.isnan(hi)
    assert mean_ci([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)
    with pytest.raises(CropGlobeError, match="level must be in"):
        mean_ci([1.0, 2.0], level=95)


def _runs() -> pd.DataFrame:
    # method "b" beats "a" by exactly 1, 2, 3 points (OA) on seeds 1, 2, 3 on target X, and by
    # 3, 2, 1 points on target Y; macro-F1 is the same as a's everywhere.
    rows = []
    for seed, (dx, dy) in zip((1, 2, 3), ((1, 3), (2, 2), (3, 1)), strict=True):
        for target, d, scen in (("X", dx, "cross-country"), ("Y", dy, "cross-continent")):
            base = 0.5 + 0.01 * seed
            for method, oa in (("a", base), ("b", base + d / 100), ("a+tta", base)):
                rows.append(
                    {
                        "method": method,
                        "source": "S",
                        "target": target,
                        "seed": seed,
                        "scenario": scen,
                        "oa": oa,
                        "macro_f1": 0.4,
                    }
                )
    return pd.DataFrame(rows)


def test_paired_comparison_known_answer() -> None:
    cmp = paired_comparison(_runs(), "a").set_index(["method", "scenario"])
    x = cmp.loc[("b", "cross-country")]
    assert x.n_seeds == 3 and x.n_pairs == 1
    assert x.oa_diff == pytest.approx(2.0)
    _, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert (x.oa_low, x.oa_high) == (pytest.approx(lo), pytest.approx(hi))
    expect_p = stats.ttest_rel([0.51, 0.52, 0.53], [0.50, 0.50, 0.50]).pvalue
    assert x.oa_p == pytest.approx(expect_p)
    assert (x.oa_wins, x.oa_losses) == (3, 0)
    # over both targets every seed's mean difference is exactly 2 points: no spread, p = 0
    both = cmp.loc[("b", ALL_SCENARIOS)]
    assert both.n_pairs == 2 and both.oa_diff == pytest.approx(2.0)
    assert both.oa_high - both.oa_low == pytest.approx(0.0, abs=1e-9)
    assert both.oa_p == 0.0
    # identical scores: difference 0, p = 1, neither better nor worse
    same = cmp.loc[("a+tta", ALL_SCENARIOS)]
    assert same.oa_diff == 0.0 and same.oa_p == 1.0 and same.oa_wins == same.oa_losses == 0
    assert cmp.loc[("b", "cross-continent")].macro_f1_diff == 0.0


def test_paired_interval_is_cut_at_100_points() -> None:
    # two seeds, b - a = +80 and -60 points: t(0.975, 1 df) = 12.7 makes the raw interval
    # 10 -+ 889 points; no two percentages differ by more than 100
    rows = [
        {"method": m, "source": "S", "target": "X", "seed": seed, "scenario": "cross-country",
         "oa": oa, "macro_f1": 0.5}
        for seed, a, b in ((1, 0.1, 0.9), (2, 0.8, 0.2))
        for m, oa in (("a", a), ("b", b))
    ]  # fmt: skip
    row = paired_comparison(pd.DataFrame(rows), "a", by_scenario=False).iloc[0]
    _, lo, hi = mean_ci([80.0, -60.0])
    assert lo < -100 and hi > 100  # what the t interval alone would say
    assert row.oa_diff == pytest.approx(10.0)
    assert (row.oa_low, row.oa_high) == (-100.0, 100.0)
    # the cut is said, not silent; macro-F1 differs by 0 on both seeds: nothing to cut
    assert (bool(row.oa_ci_cut), bool(row.macro_f1_ci_cut)) == (True, False)


def test_cut_intervals_are_marked_in_the_csv_and_the_report(tmp_path: Path) -> None:
    from cropglobe.classes import CROPGLOBE_CLASSES
    from cropglobe.report.transfer import write_transfer_report

    # b - a = +80 / -60 points on target X (interval cut), a steady +1 / +2 on target Y (not)
    rows = [
        {"method": m, "source": "S", "target": t, "seed": seed, "scenario": scen,
         "oa": oa, "macro_f1": 0.5, "weighted_f1": 0.5, "n_scored": 10}
        for t, scen, pairs in (
            ("X", "cross-country", ((1, 0.1, 0.9), (2, 0.8, 0.2))),
            ("Y", "cross-continent", ((1, 0.5, 0.51), (2, 0.5, 0.52))),
        )
        for seed, a, b in pairs
        for m, oa in (("a", a), ("b", b))
    ]  # fmt: skip
    write_transfer_report(tmp_path, pd.DataFrame(rows), pd.DataFrame(), {}, CROPGLOBE_CLASSES)
    cmp = pd.read_csv(tmp_path / "comparison.csv").set_index("scenario")
    assert cmp["oa_ci_cut"].dtype == bool and cmp["macro_f1_ci_cut"].dtype == bool
    assert cmp["oa_ci_cut"].to_dict() == {
        "cross-country": True,
        "cross-continent": False,
        ALL_SCENARIOS: True,  # the mean of +80, -60 and +1, +2: still too spread
    }
    assert not cmp["macro_f1_ci_cut"].any()
    cut = paired_comparison(pd.DataFrame(rows), "a")
    table = comparison_table(cut).set_index("scenario")["95 % CI"]
    assert table["cross-country"] == "-100.0 … +100.0 (cut at ±100)"
    assert "cut" not in table["cross-continent"]
    assert "<td>-100.0 … +100.0 (cut at ±100)</td>" in (tmp_path / "report.html").read_text()
    x = comparison_lines(cut[cut.scenario == "cross-country"])
    assert "95 % CI -100.0 … +100.0 (cut at ±100), p = " in x[0]


def test_paired_comparison_pairs_only_shared_runs() -> None:
    runs = _runs()
    runs = runs[~((runs.method == "b") & (runs.seed == 3))]  # b never ran seed 3
    row = paired_comparison(runs, "a", by_scenario=False).set_index("method").loc["b"]
    assert row.scenario == ALL_SCENARIOS and row.n_seeds == 2
    assert row.oa_diff == pytest.approx(2.0)
    with pytest.raises(CropGlobeError, match="baseline method 'c' is not in the runs"):
        paired_comparison(runs, "c")


def test_comparison_tables_read_well() -> None:
    runs = _runs()
    cmp = paired_comparison(runs, "a")
    table = comparison_table(cmp).set_index(["method", "scenario"])
    assert table.loc[("b", "cross-country"), "difference (points)"] == "+2.0"
    assert table.loc[("b", "cross-country"), "seeds better / worse"] == "3 / 0 of 3"
    assert table.loc[("b", ALL_SCENARIOS), "p (paired t)"] == "< 0.001"
    lines = comparison_lines(cmp)
    assert lines[0].startswith("b vs a: OA +2.0 points, over all 2 transfer pairs (95 % CI +2.0")
    one = paired_comparison(runs[runs.seed == 1], "a")
    assert comparison_table(one).iloc[0]["95 % CI"] == "n/a"
    assert "CI" not in comparison_lines(one)[0]


def test_welch_matches_scipy_and_known_interval() -> None:
    a = np.array([78.0, 79.5, 77.0, 80.0, 76.5])
    b = np.array([78.5, 79.0, 78.8, 79.6])
    r = welch_comparison(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert r["p"] == pytest.approx(ref.pvalue) and r["df"] == pytest.approx(ref.df)
    ci = ref.confidence_interval(0.95)
    assert (r["low"], r["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert r["diff"] == pytest.approx(a.mean() - b.mean())
    same = welch_comparison([1.0, 1.0], [1.0, 1.0])
    assert same["p"] == 1.0 and same["low"] == same["high"] == 0.0
    with pytest.raises(CropGlobeError, match="at least two runs on each side, got 1 and 2"):
        welch_comparison([1.0], [1.0, 2.0])


def test_release_comparison_in_the_docs_is_reproducible() -> None:
    """docs/results.md: cropglobe vs the release on the H200, OA p = 0.31, macro-F1 p = 0.34."""
    path = Path(__file__).parents[1] / "docs" / "data" / "can_fra_h200_per_seed.csv"
    table = pd.read_csv(path)
    ours = table[table.implementation == "cropglobe cropnet-aug"]
    release = table[table.implementation == "release"]
    assert len(ours) == 14 and len(release) == 13
    assert round(release.oa.mean(), 1) == 78.6 and round(ours.oa.mean(), 1) == 78.1
    assert round(welch_comparison(ours.oa, release.oa)["p"], 2) == 0.31
    assert round(welch_comparison(ours.macro_f1, release.macro_f1)["p"], 2) == 0.34
    ten = release[release.seed <= 91]
    assert round(ten.oa.mean(), 1) == 78.7 and (release.oa < 78.8).sum() == 8


def test_pooled_gpu_comparison_in_the_docs_is_reproducible() -> None:
    """docs/results.md: H200 and H100 seeds pooled, 26 cropglobe against 22 release runs:
    OA -0.6 points (-1.4 … +0.2), p = 0.12; macro-F1 -0.6, p = 0.16."""
    import importlib.util

    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location(
        "compare_seeds", root / "scripts/compare_seeds.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    table = script.load(
        f"{root}/docs/data/can_fra_h200_per_seed.csv,{root}/docs/data/can_fra_h100_per_seed.csv"
    )
    ours = table[table.implementation == "cropglobe cropnet-aug"]
    release = table[table.implementation == "release"]
    assert len(ours) == 26 and len(release) == 22
    assert not ours.duplicated("seed").any() and not release.duplicated("seed").any()
    assert round(release.oa.mean(), 1) == 78.5 and (release.oa < 78.8).sum() == 14
    oa = welch_comparison(ours.oa, release.oa)
    assert (round(oa["diff"], 1), round(oa["low"], 1), round(oa["high"], 1)) == (-0.6, -1.4, 0.2)
    assert round(oa["p"], 2) == 0.12
    f1 = welch_comparison(ours.macro_f1, release.macro_f1)
    assert round(f1["diff"], 1) == -0.6 and round(f1["p"], 2) == 0.16


def test_one_method_or_one_seed_reports_cleanly(tmp_path) -> None:
    import json

    from cropglobe.classes import CROPGLOBE_CLASSES
    from cropglobe.report.transfer import write_transfer_report

    runs = _runs().assign(weighted_f1=0.5, n_scored=10)
    only = runs[runs.method == "a"]
    assert list(paired_comparison(only, "a").columns[:3]) == ["method", "baseline", "scenario"]
    write_transfer_report(tmp_path / "one", only, pd.DataFrame(), {}, CROPGLOBE_CLASSES)
    assert pd.read_csv(tmp_path / "one" / "comparison.csv").empty  # a header, no rows
    single = runs[runs.seed == 1]
    write_transfer_report(tmp_path / "seed", single, pd.DataFrame(), {}, CROPGLOBE_CLASSES)
    text = (tmp_path / "seed" / "results.json").read_text()
    assert "NaN" not in text
    rows = json.loads(text)["comparison"]
    assert rows and all(r["oa_low"] is None and r["oa_p"] is None for r in rows)


def test_all_scenarios_leaves_out_the_sources_own_hold_outs() -> None:
    runs = _runs()
    # a hold-out on which b loses 10 points on every seed
    hold = runs[runs.target == "X"].copy()
    hold["target"], hold["scenario"] = "S", "within-country"
    hold.loc[hold.method == "b", "oa"] -= 0.10 + 0.02 * (hold.seed - 1) / 2
    cmp = paired_comparison(pd.concat([runs, hold]), "a").set_index(["method", "scenario"])
    overall = cmp.loc[("b", ALL_SCENARIOS)]
    assert overall.n_pairs == 2 and overall.oa_diff == pytest.approx(2.0)
    assert cmp.loc[("b", "within-country")].oa_diff < 0
    # one transfer scenario and the hold-outs: no pooled row, and the summary line is the transfer's
    one = pd.concat([runs[runs.target == "X"], hold])
    cmp = paired_comparison(one, "a")
    assert ALL_SCENARIOS not in set(cmp.scenario)
    lines = comparison_lines(cmp[cmp.method == "b"])
    assert len(lines) == 1 and "OA +2.0 points, cross-country (" in lines[0]
