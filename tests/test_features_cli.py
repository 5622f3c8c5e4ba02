"""``cropglobe features``: dataset -> Parquet feature table + JSON parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from cropglobe.cli.features import command
from cropglobe.series import SeriesSet, TimeGrid

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def _dataset(path: Path) -> Path:
    rng = np.random.default_rng(0)
    v = (rng.random((12, 10, 73)) * 3000 + 200).astype(np.float32)
    v[rng.random(v.shape) < 0.2] = np.nan
    labels = np.arange(12) % 2
    return SeriesSet(v, BANDS, TimeGrid.cropglobe(), labels, ("corn", "wheat")).save(path)


def test_median_and_harmonics_tables(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "ds.npz")
    runner = CliRunner()
    out = tmp_path / "med.parquet"
    res = runner.invoke(command, [str(src), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert list(df.columns[:4]) == ["sample_id", "label", "label_name", "B02_t24_median"]
    assert df.shape == (12, 3 + 430) and not df.iloc[:, 3:].isna().any().any()
    params = json.loads((tmp_path / "med.json").read_text())
    assert params["pipeline"]["class"] == "Median1D" and params["input_bands"] == list(BANDS)

    out = tmp_path / "harm.parquet"
    res = runner.invoke(command, [str(src), "-o", str(out), "--family", "harmonics",
                                  "--n-harmonics", "2", "--omega", "1", "--window", "121-334",
                                  "--bands", "B04,B08", "--indices", "NDVI", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert "NDVI_h1_cos" in df.columns and df.shape[1] == 3 + 3 * 5
    params = json.loads((tmp_path / "harm.json").read_text())
    assert params["pipeline"]["params"]["window"] == [121, 334]
    assert params["n_underdetermined"] == 0

    out = tmp_path / "idx.parquet"
    res = runner.invoke(command, [str(src), "-o", str(out), "--family", "indices",
                                  "--indices", "NDVI,EVI", "--window", "full", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out).columns[3] == "NDVI_t00_median"


def test_errors_are_one_line(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "ds.npz")
    runner = CliRunner()
    res = runner.invoke(command, [str(src), "-o", str(tmp_path / "x.parquet"), "--family",
                                  "harmonics", "--bands", "B09", "-q"])  # fmt: skip
    assert res.exit_code == 2 and "B09" in res.output and "Traceback" not in res.output
    res = runner.invoke(command, [str(src), "-o", str(tmp_path / "x.parquet"),
                                  "--n-harmonics", "2"])  # fmt: skip
    assert res.exit_code == 2 and "--family harmonics" in res.output
    res = runner.invoke(command, [str(src), "-o", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and ".parquet" in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_all_nan_table_is_not_written(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "ds.npz")
    out = tmp_path / "h.parquet"
    res = CliRunner().invoke(
        command, [str(src), "-o", str(out), "--family", "harmonics", "--min-obs", "1000", "-q"]
    )
    assert res.exit_code == 2 and "every harmonics feature" in res.output, res.output
    assert not out.exists()
