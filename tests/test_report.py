"""The transfer report is written completely, self-contained, from plain tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cropglobe.classes import CROPGLOBE_CLASSES
from cropglobe.evaluate.scenarios import scenario
from cropglobe.report.transfer import (
    scenario_seeds,
    scenario_table,
    series_colors,
    write_transfer_report,
)


def _runs() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rows, pcs = [], []
    rng = np.random.default_rng(0)
    for method in ("cropnet-aug", "rf-median1d"):
        for target in ("BEL", "USA", "ARG"):
            for seed in (82, 83):
                oa = rng.uniform(0.4, 0.9)
                rows.append(
                    {
                        "method": method,
                        "source": "FRA",
                        "target": target,
                        "seed": seed,
                        "scenario": scenario("FRA", target),
                        "oa": oa,
                        "macro_f1": oa - 0.1,
                        "weighted_f1": oa - 0.05,
                        "n_scored": 100,
                    }
                )
                pcs += [
                    {
                        "method": method,
                        "source": "FRA",
                        "target": target,
                        "seed": seed,
                        "class": c,
                        "f1": rng.uniform(),
                    }
                    for c in ("corn", "other")
                ]
    cms = {("cropnet-aug", "FRA", "BEL"): np.diag([5, 0, 0, 3, 0, 0, 9])}
    return pd.DataFrame(rows), pd.DataFrame(pcs), cms


def test_report_files(tmp_path) -> None:
    runs, pcs, cms = _runs()
    page = write_transfer_report(
        tmp_path, runs, pcs, cms, CROPGLOBE_CLASSES, config={"source": "FRA"}
    )
    text = page.read_text()
    assert "cross-hemisphere" in text and "<img" in text
    assert "http://" not in text and "https://" not in text
    res = pd.read_csv(tmp_path / "results.csv")
    assert len(res) == 6 and set(res.scenario) == {
        "cross-country",
        "cross-continent",
        "cross-hemisphere",
    }
    one = runs[(runs.method == "rf-median1d") & (runs.target == "USA")].oa
    row = res[(res.method == "rf-median1d") & (res.target == "USA")].iloc[0]
    assert row.oa_mean == np.round(100 * one.mean(), 3)
    assert json.loads((tmp_path / "results.json").read_text())["config"] == {"source": "FRA"}
    assert (tmp_path / "figures" / "matrix_oa_cropnet-aug.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "scenarios.png").stat().st_size > 1000
    assert "By scenario, seed by seed" in text
    # the other method against the first, paired by seed, per scenario and over all of them
    assert "Against cropnet-aug, paired by seed" in text
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert set(cmp.method) == {"rf-median1d"} and set(cmp.baseline) == {"cropnet-aug"}
    assert len(cmp) == 4 and "all scenarios" in set(cmp.scenario)
    usa = cmp[cmp.scenario == "cross-continent"].iloc[0]
    a = runs[(runs.target == "USA") & (runs.method == "cropnet-aug")].oa.to_numpy()
    b = runs[(runs.target == "USA") & (runs.method == "rf-median1d")].oa.to_numpy()
    assert usa.oa_diff == pytest.approx(100 * (b - a).mean(), abs=1e-4)
    assert len(json.loads((tmp_path / "results.json").read_text())["comparison"]) == 4


def test_scenario_table_shape() -> None:
    runs, _, _ = _runs()
    table = scenario_table(runs)
    assert list(table.columns) == ["cross-country", "cross-continent", "cross-hemisphere"]
    assert "±" in table.iloc[0, 0]


def test_scenario_table_std_is_over_seeds() -> None:
    # two cross-country pairs whose seeds disagree in opposite directions: every seed's
    # scenario mean is 85 %, so the spread over seeds is zero (not the pairs' mean std of 5)
    rows = [
        {
            "method": "m",
            "source": "FRA",
            "target": t,
            "seed": seed,
            "scenario": "cross-country",
            "oa": oa,
        }
        for t, scores in (("BEL", (0.8, 0.9)), ("NLD", (0.9, 0.8)))
        for seed, oa in zip((1, 2), scores, strict=True)
    ]
    assert scenario_table(pd.DataFrame(rows)).loc["m", "cross-country"] == "85.0 ± 0.0"


def test_scenario_seeds_known_answer() -> None:
    """Each seed's scenario score is the mean over the scenario's pairs; the interval is the
    Student-t one over seeds."""
    from scipy import stats

    rows = [
        {"method": "m", "source": "FRA", "target": t, "seed": seed, "scenario": scen, "oa": oa}
        for t, scen, scores in (
            ("BEL", "cross-country", (0.8, 0.9, 0.7)),
            ("NLD", "cross-country", (0.6, 0.7, 0.9)),
            ("ARG", "cross-hemisphere", (0.5, 0.5, 0.5)),
        )
        for seed, oa in zip((1, 2, 3), scores, strict=True)
    ]
    table = scenario_seeds(pd.DataFrame(rows)).set_index("scenario")
    assert list(table.index) == ["cross-country", "cross-hemisphere"]
    country = table.loc["cross-country"]
    assert country.seeds == (1, 2, 3)
    assert country["values"] == pytest.approx((70.0, 80.0, 80.0))
    half = stats.t.ppf(0.975, 2) * np.std([70.0, 80.0, 80.0], ddof=1) / np.sqrt(3)
    assert country["mean"] == pytest.approx(230 / 3)
    assert (country.low, country.high) == pytest.approx((230 / 3 - half, 230 / 3 + half))
    hemi = table.loc["cross-hemisphere"]
    assert hemi["mean"] == hemi.low == hemi.high == pytest.approx(50.0)
    one = scenario_seeds(pd.DataFrame(rows[:1]))
    assert one["mean"].item() == pytest.approx(80.0) and np.isnan(one.low.item())


def test_series_colours_do_not_repeat_up_to_twenty() -> None:
    from matplotlib.colors import to_hex

    for n in (1, 4, 10, 12, 20):
        assert len({to_hex(c) for c in series_colors(n)}) == n
