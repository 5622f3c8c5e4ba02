"""``--where COLUMN=VALUE`` on the commands that read a dataset: info, train, predict,
features, composite (transfer's is tested with the experiments)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.series import SeriesSet, TimeGrid

#: region and year of the 12 samples of :func:`_dataset`: years span regions, as CAWa's do
REGIONS = ["Fergana", "Khorezm", "Samarkand"] * 4
YEARS = [2015, 2015, 2016, 2016, 2016, 2016, 2015, 2015, 2016, 2016, 2016, 2016]


def _dataset(path: Path) -> Path:
    """12 NDVI series on CAWa's 16-day grid; wheat (even samples) peaks in spring, cotton in
    summer; ``year`` is an integer column."""
    grid = TimeGrid.from_starts(range(1, 354, 16), kind="16-day")
    labels = np.arange(12) % 2
    peak = np.where(labels == 0, 120.0, 220.0)[:, None]
    ndvi = 0.2 + 0.6 * np.exp(-(((grid.centers[None, :] - peak) / 40.0) ** 2))
    meta = pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(12)], "region": REGIONS, "year": YEARS}
    )
    ss = SeriesSet(
        ndvi[:, None, :].astype(np.float32), ("NDVI",), grid, labels, ("wheat", "cotton"), meta
    )
    return ss.save(path)


def test_info_says_what_the_filter_kept(tmp_path) -> None:
    path = _dataset(tmp_path / "ds.npz")
    runner = CliRunner()
    # text "2016" matches the integer year; the summary counts only the samples kept
    res = runner.invoke(cli, ["info", str(path), "--where", "region=Fergana", "--where",
                              "year=2016", "--group-by", "year"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "where region=Fergana year=2016: 2 of 12 samples kept"
    assert "2 samples" in res.output
    res = runner.invoke(cli, ["info", str(path), "--where", "region=Fergana,Khorezm", "--json"])
    assert res.exit_code == 0, res.output
    desc = json.loads(res.stdout)
    assert desc["where"] == {"region": ["Fergana", "Khorezm"], "samples_kept": 8}
    assert desc["n_samples"] == 8


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            ["region=fergana"],
            "Error: column 'region' holds no value 'fergana' (did you mean 'Fergana'?); its "
            "values: Fergana, Khorezm, Samarkand",
        ),
        (
            ["year=2017"],
            "Error: column 'year' holds no value '2017' (did you mean '2016'?); its values: "
            "2015, 2016",
        ),
        (
            ["regoin=Fergana"],
            "Error: no metadata column 'regoin' to select samples by (did you mean 'region'?); "
            "the columns are sample_id, region, year",
        ),
        (["region"], "'region' is not COLUMN=VALUE; e.g. region=Fergana"),
        (["region="], "'region=' is not COLUMN=VALUE"),
        (
            ["region=Fergana", "region=Khorezm"],
            "column 'region' is given twice (a sample holds one value, so both could not "
            "match); give its values once, comma-separated: region=Fergana,Khorezm",
        ),
    ],
)
def test_a_filter_that_cannot_apply_is_one_line(tmp_path, where, message) -> None:
    path = _dataset(tmp_path / "ds.npz")
    args = [arg for w in where for arg in ("--where", w)]
    res = CliRunner().invoke(cli, ["info", str(path), *args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("Error:")


def test_train_predict_and_features_read_only_the_samples_kept(tmp_path) -> None:
    path = _dataset(tmp_path / "ds.npz")
    runner = CliRunner()
    model = tmp_path / "rf"
    rf = ["--model", "random_forest", "--model-option", "n_estimators=10", "--window", "all"]
    res = runner.invoke(cli, ["train", "--data", str(path), "--where", "region=Fergana,Khorezm",
                              "--group-by", "year", "--country", "2015", *rf,
                              "-o", str(model)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "where region=Fergana,Khorezm: 8 of 12 samples kept" in res.output
    # the year groups are selected as numbers too: 2015 of Fergana and Khorezm is s0, s1, s6, s7
    assert "trained random_forest on 4 samples" in res.output
    card = json.loads((model / "card.json").read_text())
    assert card["classes"] == ["wheat", "cotton"]
    out = tmp_path / "p.csv"
    res = runner.invoke(cli, ["predict", str(model), "--data", str(path), "--where",
                              "region=Samarkand", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "where region=Samarkand: 4 of 12 samples kept" in res.output
    assert pd.read_csv(out)["sample_id"].tolist() == ["s2", "s5", "s8", "s11"]
    table = tmp_path / "f.parquet"
    res = runner.invoke(cli, ["features", str(path), "--where", "year=2015", "-o", str(table)])
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(table)["sample_id"].tolist() == ["s0", "s1", "s6", "s7"]
    assert json.loads((tmp_path / "f.json").read_text())["where"] == {"year": ["2015"]}


def test_composite_keeps_the_observations_of_the_samples_kept(tmp_path) -> None:
    rows = [
        {"sample_id": f"p{i}", "date": f"2022-{m:02d}-15", "label": ("wheat", "maize")[i % 2],
         "country": "FRA", "region": ("A", "B", "C")[i % 3], "B04": 500.0 + i,
         "B08": 1000.0 + 50 * m * (i % 2)}
        for i in range(6)
        for m in range(3, 11)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    out = tmp_path / "b.npz"
    res = CliRunner().invoke(cli, ["composite", str(tmp_path / "long.csv"), "--grid", "monthly",
                                   "--where", "region=B", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "where region=B: 2 of 6 samples kept" in res.output
    ss = SeriesSet.load(out)
    assert ss.meta["sample_id"].tolist() == ["p1", "p4"]
    # each sample keeps its own observations: B04 = 500 + its number, in every month observed
    b04 = ss.values[:, ss.bands.index("B04"), 2:10]
    np.testing.assert_array_equal(b04, np.array([[501.0] * 8, [504.0] * 8], dtype=np.float32))


def test_cawa_year_by_year_within_fergana(shared_data) -> None:
    res = CliRunner().invoke(cli, ["info", str(shared_data / "cawa"), "--where",
                                   "region=Fergana", "--group-by", "year", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    desc = json.loads(res.stdout)
    assert desc["where"]["samples_kept"] == 2419  # DATA.md: Fergana (2011, 2015–2018; 2,419)
    totals = {year: c["total"] for year, c in desc["class_counts"].items()}
    assert totals == {"2011": 213, "2015": 311, "2016": 1250, "2017": 340, "2018": 305}


def test_predict_selects_a_table_on_its_own_year_before_compositing(tmp_path) -> None:
    """On a July-June model the composited ``year`` is the season's start year; --where
    year=2023 means the table's own (harvest) year 2023, as in info, composite and train."""
    rows = [
        {"sample_id": f"a{i}", "date": f"{y - 1 + (m < 7)}-{m:02d}-15", "year": y,
         "label": ("corn", "soybeans")[i % 2], "country": "ARG", "B04": 500.0,
         "B08": 1000.0 + (400 if m in (1, 2) else 0) * (1 + i % 2)}
        for i, y in enumerate([2023] * 4 + [2024] * 4)
        for m in (7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6)
    ]  # fmt: skip
    table = tmp_path / "arg.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    runner = CliRunner()
    series = tmp_path / "arg.npz"
    res = runner.invoke(cli, ["composite", str(table), "--grid", "monthly", "--anchor", "07-01",
                              "-o", str(series)])  # fmt: skip
    assert res.exit_code == 0, res.output
    model = tmp_path / "rf"
    res = runner.invoke(cli, ["train", "--data", str(series), "--country", "ARG", "--model",
                              "random_forest", "--model-option", "n_estimators=5", "--window",
                              "all", "-o", str(model)])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = tmp_path / "p.csv"
    res = runner.invoke(cli, ["predict", str(model), "--data", str(table), "--where",
                              "year=2023", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "where year=2023: 4 of 8 samples kept" in res.output
    assert pd.read_csv(out)["sample_id"].tolist() == ["a0", "a1", "a2", "a3"]
