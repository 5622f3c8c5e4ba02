"""The transfer report is written completely, self-contained, from plain tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

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
    # one source: one method × target matrix per metric, not a one-row matrix per method
    assert (tmp_path / "figures" / "matrix_oa.png").stat().st_size > 1000
    assert not list((tmp_path / "figures").glob("matrix_oa_*.png"))
    assert "Method × target matrices" in text
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
    # the confusion matrices summed over seeds, as a table
    conf = pd.read_csv(tmp_path / "confusion.csv")
    assert conf.to_dict(orient="list") == {
        "method": ["cropnet-aug"] * 3,
        "source": ["FRA"] * 3,
        "target": ["BEL"] * 3,
        "true": ["corn", "wheat", "other"],
        "predicted": ["corn", "wheat", "other"],
        "count": [5, 3, 9],
    }


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
    # one seed has no spread to show; methods keep the experiment's order
    one = pd.DataFrame([{**r, "method": "z"} for r in rows if r["seed"] == 1] + rows)
    table = scenario_table(one)
    assert list(table.index) == ["z", "m"] and table.loc["z", "cross-country"] == "85.0 (1 seed)"


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


def _pair_runs(pairs: list[tuple[str, str]], n_classes: int = 2) -> tuple[pd.DataFrame, dict]:
    """Two seeds of one method on each (source, target) pair, and their confusion matrices."""
    rows = [
        {
            "method": "rf-median1d",
            "source": s,
            "target": t,
            "seed": seed,
            "scenario": "cross-region",
            "oa": 0.5 + 0.1 * i,
            "macro_f1": 0.4,
            "weighted_f1": 0.45,
            "n_scored": 10,
            "n_classes_scored": n_classes,
        }
        for i, (s, t) in enumerate(pairs)
        for seed in (1, 2)
    ]
    cms = {
        ("rf-median1d", s, t): np.diag([1 + i, 0, 0, 2, 0, 0, 3]) for i, (s, t) in enumerate(pairs)
    }
    return pd.DataFrame(rows), cms


def test_figure_names_never_collide(tmp_path) -> None:
    """'A_B' → 'C' and 'A' → 'B_C' would both be confusion_M_A_B_C.png: each gets its own."""
    runs, cms = _pair_runs([("A_B", "C"), ("A", "B_C"), ("A", "C")])
    page = write_transfer_report(tmp_path, runs, pd.DataFrame(), cms, CROPGLOBE_CLASSES)
    names = sorted(p.name for p in (tmp_path / "figures").glob("confusion_*.png"))
    assert len(names) == 3 and "confusion_rf-median1d_A_C.png" in names
    assert all(n.startswith("confusion_rf-median1d_A_B_C-") for n in names if n.count("_") == 4)
    assert page.read_text().count('alt="confusion_') == 3


def test_single_class_note_says_what_the_tables_hold(tmp_path) -> None:
    runs, cms = _pair_runs([("FRA", "AUS")], n_classes=1)
    text = write_transfer_report(tmp_path, runs, pd.DataFrame(), cms, CROPGLOBE_CLASSES).read_text()
    assert "Left out of the scenario tables" not in text
    # no findings drawn from accuracies that are no transfer score ("hardest target: …")
    assert "<h3>Findings</h3>" not in text
    assert json.loads((tmp_path / "results.json").read_text())["findings"] == []
    assert "On every pair of this experiment only one class" in text
    runs2, cms2 = _pair_runs([("FRA", "AUS"), ("FRA", "BEL")])
    runs2.loc[runs2.target == "AUS", "n_classes_scored"] = 1
    text = write_transfer_report(tmp_path, runs2, pd.DataFrame(), cms2, CROPGLOBE_CLASSES)
    assert "Left out of the scenario tables, the comparison and the per-class F1: FRA → AUS" in (
        text.read_text()
    )
    # results.csv says how many classes each pair's scores rest on
    table = pd.read_csv(tmp_path / "results.csv").set_index("target")
    assert table.loc["AUS", "classes_scored"] == 1 and table.loc["BEL", "classes_scored"] == 2


def test_per_class_figure_shows_transfers_only(tmp_path, monkeypatch) -> None:
    """A source's own hold-out (--within) and single-class pairs stay out of the per-class
    bars titled "on targets"; classes in vocabulary order."""
    import cropglobe.report.transfer as rt

    runs, cms = _pair_runs([("FRA", "BEL"), ("FRA", "FRA"), ("FRA", "AUS")])
    runs.loc[runs.target == "AUS", "n_classes_scored"] = 1
    pcs = pd.DataFrame(
        [
            {"method": "rf-median1d", "source": "FRA", "target": t, "seed": 1, "class": c, "f1": f}
            for t, c, f in [
                ("BEL", "wheat", 0.5),
                ("BEL", "corn", 0.7),
                ("FRA", "rice", 1.0),
                ("AUS", "cotton", 1.0),
            ]
        ]
    )
    seen = []
    real = rt.per_class_figure
    monkeypatch.setattr(
        rt, "per_class_figure", lambda pc, *a, **k: seen.append(pc.copy()) or real(pc, *a, **k)
    )
    write_transfer_report(tmp_path, runs, pcs, cms, CROPGLOBE_CLASSES)
    assert seen[0]["target"].tolist() == ["BEL", "BEL"]


def test_dollar_signs_in_names_are_text(tmp_path) -> None:
    """matplotlib would parse '$^$' as a formula and fail after all the training."""
    runs, cms = _pair_runs([("FRA", "BEL $^$ north"), ("cost $5", "FRA")])
    page = write_transfer_report(tmp_path, runs, pd.DataFrame(), cms, CROPGLOBE_CLASSES)
    assert "BEL $^$ north" in page.read_text()


def test_interrupted_report_leaves_the_previous_one(tmp_path, monkeypatch) -> None:
    import cropglobe.report.transfer as rt

    runs, pcs, cms = _runs()
    write_transfer_report(tmp_path, runs, pcs, cms, CROPGLOBE_CLASSES)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rt, "confusion_figure", stop)  # drawn after the tables and matrices
    more = runs.assign(seed=runs.seed + 10, oa=0.99)
    with pytest.raises(KeyboardInterrupt):
        write_transfer_report(tmp_path, pd.concat([runs, more]), pcs, cms, CROPGLOBE_CLASSES)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no new table beside an old page, no staging folder left
    assert not list(tmp_path.glob(".report-staging-*"))


def test_phenology_figure_always_shows_the_source(tmp_path, monkeypatch) -> None:
    """With more groups than panels the largest are shown, but never without the source."""
    import cropglobe.report.figures as rf
    from cropglobe.series import SeriesSet, TimeGrid

    grid = TimeGrid.regular(30)
    sizes = {"tiny-source": 2, **{f"t{i:02d}": 10 + i for i in range(13)}}
    names = [g for g, n in sizes.items() for _ in range(n)]
    n = len(names)
    values = np.random.default_rng(0).uniform(0, 1, (n, 1, grid.n_steps)).astype(np.float32)
    ss = SeriesSet(
        values, ("NDVI",), grid, np.zeros(n, np.int64), ("corn",), pd.DataFrame({"region": names})
    )
    shown = []
    real = rf._draw_curves
    monkeypatch.setattr(
        rf,
        "_draw_curves",
        lambda s, c, groups, *a, **k: shown.append(groups) or real(s, c, groups, *a, **k),
    )
    rf.plot_phenology(ss, tmp_path / "a.png", group_by="region", max_groups=12)
    assert "tiny-source" not in shown[-1] and len(shown[-1]) == 12 and "t00" not in shown[-1]
    rf.plot_phenology(ss, tmp_path / "b.png", group_by="region", keep=["tiny-source"])
    assert shown[-1][0] == "tiny-source" and len(shown[-1]) == 12  # the source first
    assert shown[-1][1:] == sorted(shown[-1][1:])  # then the targets alphabetically
    assert "t00" not in shown[-1] and "t01" not in shown[-1]  # the two smallest targets


def test_phenology_axes_are_labelled_by_each_panels_season_start(tmp_path, monkeypatch) -> None:
    """Season-aligned southern series (rotated half a year, as cropglobe.simulate writes them)
    and grids anchored on 07-01 are labelled in days since their start, with month ticks."""
    import cropglobe.report.figures as rf
    from cropglobe.series import SeriesSet, TimeGrid

    figs = []
    real = rf._draw_curves
    monkeypatch.setattr(rf, "_draw_curves", lambda *a, **k: figs.append(real(*a, **k)) or figs[-1])

    def axes_of(ss):
        rf.plot_phenology(ss, tmp_path / "p.png", group_by="country")
        return {ax.get_title(): ax for ax in figs[-1].axes if ax.get_visible()}

    n = 4
    values = np.random.default_rng(0).uniform(0, 1, (n, 1, 73)).astype(np.float32)
    meta = pd.DataFrame({"country": ["FRA", "FRA", "ARG", "ARG"]})
    ss = SeriesSet(values, ("NDVI",), TimeGrid.cropglobe(), np.zeros(n, np.int64), ("corn",),
                   meta, {"south_rotation_days": 180})  # fmt: skip
    axes = axes_of(ss)
    assert axes["FRA"].get_xlabel() == "day of year"
    arg = axes["ARG"]
    assert arg.get_xlabel() == "days since 06-30"  # stored day 1 = calendar day 181
    ticks = [t.get_text() for t in arg.get_xticklabels()]
    assert ticks[:3] == ["Jul", "Aug", "Sep"] and ticks[-1] == "Jun" and len(ticks) == 12
    assert arg.get_xticks()[:2].tolist() == [2, 33]  # 1 July is day 2, 1 August day 33

    july = SeriesSet(values, ("NDVI",), TimeGrid.cropglobe("07-01"), np.zeros(n, np.int64),
                     ("corn",), meta)  # fmt: skip
    for ax in axes_of(july).values():
        assert ax.get_xlabel() == "days since 07-01"
        assert ax.get_xticks()[0] == 1 and ax.get_xticklabels()[0].get_text() == "Jul"


def test_results_json_is_strict_json_and_per_class_numbers_are_written(tmp_path) -> None:
    runs, pcs, cms = _runs()
    # a classical run has no training precision: NaN in the table, null in the JSON
    runs["precision_used"] = np.where(runs.method == "cropnet-aug", "bf16", None)
    runs.loc[runs.method == "rf-median1d", "precision_used"] = np.nan
    page = write_transfer_report(tmp_path, runs, pcs, cms, CROPGLOBE_CLASSES)

    def strict(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    payload = json.loads((tmp_path / "results.json").read_text(), parse_constant=strict)
    rf = [r for r in payload["runs"] if r["method"] == "rf-median1d"]
    assert len(rf) == 6 and all(r["precision_used"] is None for r in rf)
    assert len(payload["per_class"]) == len(pcs)
    # per_class.csv: mean ± std (ddof 0) over the seeds of each pair and class, in percent
    table = pd.read_csv(tmp_path / "per_class.csv")
    assert len(table) == 2 * 3 * 2  # methods × targets × classes
    one = pcs[(pcs.method == "rf-median1d") & (pcs.target == "USA") & (pcs["class"] == "corn")]
    row = table[
        (table.method == "rf-median1d") & (table.target == "USA") & (table["class"] == "corn")
    ]
    assert row.f1_mean.iloc[0] == pytest.approx(100 * one.f1.mean(), abs=1e-3)
    assert row.f1_std.iloc[0] == pytest.approx(100 * one.f1.std(ddof=0), abs=1e-3)
    assert row.n_runs.iloc[0] == 2
    # the page prints the bars' numbers: mean over the transfers and seeds per method and class
    mean = 100 * pcs[(pcs.method == "cropnet-aug") & (pcs["class"] == "other")].f1.mean()
    assert f"<td>{mean:.1f}</td>" in page.read_text()


def test_single_class_cells_are_marked_and_counted(tmp_path, monkeypatch) -> None:
    import matplotlib.axes

    runs, cms = _pair_runs([("FRA", "AUS"), ("FRA", "BEL")])
    runs.loc[runs.target == "AUS", "n_classes_scored"] = 1
    texts: list[str] = []
    real = matplotlib.axes.Axes.text
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "text",
        lambda ax, x, y, s, *a, **k: texts.append(s) or real(ax, x, y, s, *a, **k),
    )
    page = write_transfer_report(tmp_path, runs, pd.DataFrame(), cms, CROPGLOBE_CLASSES)
    # AUS (oa 0.5) is marked in both matrices; BEL (oa 0.6) is not
    assert texts.count("50.0*\n1 class") == 1 and "60.0\n±0.0" in texts
    assert sum("1 class" in t for t in texts) == 2  # oa and macro-F1 matrices
    # the "All pairs" table says how many classes each pair's scores rest on
    all_pairs = page.read_text().split("<h2>All pairs</h2>")[1].split("</table>")[0]
    header = re.findall(r"<th>([^<]*)</th>", all_pairs)
    assert header[-2:] == ["classes_scored", "n_runs"]
    rows = [re.findall(r"<td>([^<]*)</td>", r) for r in all_pairs.split("<tr")]
    rows = [r for r in rows if r]
    assert {r[2]: r[-2] for r in rows} == {"AUS": "1", "BEL": "2"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0005, "+0.0005"),
        (-0.04, "-0.04"),
        (0.0, "+0.0"),
        (2.449, "+2.4"),
        (np.nan, "n/a"),
        (3e-7, "+3e-07"),
    ],
)
def test_interval_bounds_never_round_to_zero(value: float, text: str) -> None:
    from cropglobe.report.transfer import signed_points

    assert signed_points(value) == text


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.049938, "0.0499"),
        (0.04996, "0.04996"),
        (0.049999, "0.049999"),
        (0.0504, "0.050"),
        (0.05, "0.050"),
        (0.2, "0.200"),
        (0.0004, "< 0.001"),
    ],
)
def test_p_values_never_round_across_five_percent(p: float, text: str) -> None:
    from cropglobe.report.transfer import p_text

    assert p_text(p) == text


def test_several_sources_get_a_source_by_target_matrix_per_method(tmp_path) -> None:
    runs, cms = _pair_runs([("FRA", "BEL"), ("BEL", "FRA")])
    page = write_transfer_report(tmp_path, runs, pd.DataFrame(), cms, CROPGLOBE_CLASSES)
    figures = {p.name for p in (tmp_path / "figures").glob("matrix_*.png")}
    assert figures == {"matrix_oa_rf-median1d.png", "matrix_f1_rf-median1d.png"}
    assert "Source × target matrices" in page.read_text()


def _tick_labels(monkeypatch) -> dict[str, tuple[list[str], list[str]]]:
    """Filled as the report saves its figures: each file name's (y, x) tick labels."""
    import cropglobe.report.transfer as rt

    ticks: dict[str, tuple[list[str], list[str]]] = {}
    real = rt._save

    def save(fig, path):
        ax = fig.axes[0]
        ticks[path.name] = (
            [t.get_text() for t in ax.get_yticklabels()],
            [t.get_text() for t in ax.get_xticklabels()],
        )
        return real(fig, path)

    monkeypatch.setattr(rt, "_save", save)
    return ticks


def test_one_source_matrix_has_a_row_per_method_in_order(tmp_path, monkeypatch) -> None:
    runs, pcs, cms = _runs()
    runs = pd.concat([runs[runs.method == "rf-median1d"], runs[runs.method == "cropnet-aug"]])
    ticks = _tick_labels(monkeypatch)
    write_transfer_report(tmp_path, runs, pcs, cms, CROPGLOBE_CLASSES)
    assert ticks["matrix_oa.png"][0] == ["rf-median1d", "cropnet-aug"]


def test_confusion_rows_are_the_targets_classes(tmp_path, monkeypatch) -> None:
    """A class the target lacks gets no (empty) row; it keeps its column when predicted."""
    import cropglobe.report.transfer as rt

    cm = np.zeros((7, 7), dtype=int)
    cm[0, 0], cm[0, 1], cm[3, 3], cm[6, 0] = 5, 2, 4, 1  # corn → soybeans; no soybean field
    ticks = _tick_labels(monkeypatch)
    rt.confusion_figure(cm, CROPGLOBE_CLASSES, "t", tmp_path / "c.png")
    assert ticks == {"c.png": (["corn", "wheat", "other"], ["corn", "soybeans", "wheat", "other"])}


@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
    reason="Debian's chromium is not installed (apt-get install chromium)",
)
def test_report_renders_in_headless_chromium(tmp_path) -> None:
    """scripts/screenshot_report.sh renders the page offline: figures drawn, not blank."""
    from PIL import Image

    runs, pcs, cms = _runs()
    page = write_transfer_report(tmp_path / "r", runs, pcs, cms, CROPGLOBE_CLASSES)
    script = Path(__file__).parents[1] / "scripts" / "screenshot_report.sh"
    out = tmp_path / "shot.png"
    done = subprocess.run(
        ["bash", str(script), str(page), str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    pixels = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1400)
    # text, tables and figures: far from a blank page
    assert (pixels < 128).mean() > 0.01 and pixels.std() > 20


def test_one_source_matrix_marks_the_sources_hold_out(tmp_path, monkeypatch) -> None:
    runs, cms = _pair_runs([("FRA", "FRA"), ("FRA", "BEL")])
    ticks = _tick_labels(monkeypatch)
    write_transfer_report(tmp_path, runs, pd.DataFrame(), cms, CROPGLOBE_CLASSES)
    assert ticks["matrix_oa.png"][1] == ["BEL", "FRA\n(hold-out)"]
