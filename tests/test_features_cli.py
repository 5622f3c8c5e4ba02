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


def test_window_all_is_the_whole_season_as_in_train_and_transfer(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "ds.npz")
    tables = []
    for name in ("full", "all"):
        out = tmp_path / f"{name}.parquet"
        res = CliRunner().invoke(command, [str(src), "-o", str(out), "--window", name, "-q"])
        assert res.exit_code == 0, res.output
        tables.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[1].columns[3] == "B02_t00_median"


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


def test_harmonics_errors_name_the_command_line_options(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "ds.npz")
    runner = CliRunner()
    out = [str(src), "-o", str(tmp_path / "x.parquet"), "--family", "harmonics", "-q"]
    res = runner.invoke(command, [*out, "--min-obs", "2"])
    assert res.exit_code == 2 and "(on the command line: --min-obs 7 or leave it out)" in res.output
    res = runner.invoke(command, [*out, "--n-harmonics", "30", "--window", "121-200"])
    assert res.exit_code == 2 and "lower n_harmonics (--window, --n-harmonics)" in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_all_nan_table_is_not_written(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "ds.npz")
    out = tmp_path / "h.parquet"
    res = CliRunner().invoke(
        command, [str(src), "-o", str(out), "--family", "harmonics", "--min-obs", "1000", "-q"]
    )
    assert res.exit_code == 2 and "every harmonics feature" in res.output, res.output
    assert not out.exists()


def test_tables_carry_the_samples_metadata_and_info_names_them(tmp_path: Path) -> None:
    from cropglobe.cli.main import cli

    rng = np.random.default_rng(1)
    v = (rng.random((4, 2, 73)) * 3000 + 200).astype(np.float32)
    meta = pd.DataFrame(
        {
            "sample_id": ["p0", "p1", "p2", "p3"],
            "country": ["FRA", "FRA", "ARG", "ARG"],
            "region": ["sw", "ne", "pampa", "pampa"],
            "year": np.array([2022, 2023, 2022, 2023], dtype=np.int64),
            "label_name": ["maize", "ble", "maiz", "trigo"],  # clashes with the table's own
        }
    )
    ss = SeriesSet(v, ("B04", "B08"), TimeGrid.cropglobe(), np.array([0, 1, 0, 1]),
                   ("corn", "wheat"), meta)  # fmt: skip
    src = ss.save(tmp_path / "ds.npz")
    out = tmp_path / "f.parquet"
    res = CliRunner().invoke(command, [str(src), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    head = ["sample_id", "label", "label_name", "country", "region", "year", "meta_label_name"]
    assert list(df.columns[:8]) == [*head, "B04_t24_median"]
    assert df["country"].tolist() == ["FRA", "FRA", "ARG", "ARG"]
    assert df["year"].tolist() == [2022, 2023, 2022, 2023] and df["year"].dtype == np.int64
    assert df["label_name"].tolist() == ["corn", "wheat", "corn", "wheat"]
    assert df["meta_label_name"].tolist() == ["maize", "ble", "maiz", "trigo"]
    assert df.groupby("country").size().to_dict() == {"ARG": 2, "FRA": 2}
    params = json.loads((tmp_path / "f.json").read_text())
    assert params["meta_columns"] == ["country", "region", "year", "meta_label_name"]
    assert len(params["feature_names"]) == df.shape[1] - 3 - 4

    res = CliRunner().invoke(cli, ["info", str(out)])  # summarised as a feature table
    assert res.exit_code == 0, res.output
    assert "kind: feature table, 4 samples" in res.output
    assert f"computed by Median1D of {src}" in res.output
    assert "missing by feature" in res.output and "rf-table, lightgbm-table" in res.output
    # a table written without the Parquet metadata is known by the parameters beside it
    bare = tmp_path / "f2.parquet"
    df.to_parquet(bare)
    (tmp_path / "f2.json").write_text((tmp_path / "f.json").read_text())
    res = CliRunner().invoke(cli, ["info", str(bare), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["kind"] == "feature table"
    # commands reading series refuse it, naming the dataset it was computed from
    res = CliRunner().invoke(cli, ["train", "--data", str(out), "--model", "rf", "-o",
                                   str(tmp_path / "m")])  # fmt: skip
    assert res.exit_code == 2 and f"{out} is a feature table" in res.output
    assert str(src) in res.output and "rf-table" in res.output


def test_meta_of_mixed_objects_is_written_as_text(tmp_path: Path) -> None:
    from cropglobe.features.table import feature_table, make_features, write_feature_table

    v = np.arange(2 * 1 * 73, dtype=np.float32).reshape(2, 1, 73)
    meta = pd.DataFrame({"sample_id": ["a", "b"], "plot": [1, "b"]})
    ss = SeriesSet(v, ("B04",), TimeGrid.cropglobe(), np.array([0, 1]), ("corn", "wheat"), meta)
    table, params = feature_table(ss, make_features("median1d", window="full"))
    path, _ = write_feature_table(table, params, tmp_path / "f.parquet")
    assert pd.read_parquet(path)["plot"].tolist() == ["1", "b"]


def test_a_bands_name_the_data_lack_lists_the_bands_and_the_nearest_spelling(
    tmp_path: Path,
) -> None:
    src = _dataset(tmp_path / "ds.npz")
    out = tmp_path / "m.parquet"
    listed = "its bands are " + ", ".join(BANDS)
    cases = [
        (["--bands", "B02,X"], f"--bands X: not a band of the data; {listed}; give one of them"),
        (["--bands", "B021"], f"--bands B021: not a band of the data; {listed}; did you mean B02?"),
        (["--family", "harmonics", "--bands", "B04,nri"], "did you mean B08?"),
        (["--family", "indices", "--indices", "NDVI,EVI", "--bands", "NDV"],
         "Error: --bands NDV: --family indices computes the index series NDVI, EVI (--indices) "
         "and --bands picks among them; did you mean NDVI?"),
    ]  # fmt: skip
    for args, expected in cases:
        res = CliRunner().invoke(command, [str(src), "-o", str(out), *args])
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert expected in res.output and "fitted data" not in res.output, res.output
        assert not out.exists()
    res = CliRunner().invoke(command, [str(src), "-o", str(out), "--bands", "B2,B02"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "--bands B2,B02 names B02 more than once (B2, B02 are the same band)" in res.output
    res = CliRunner().invoke(command, [str(src), "-o", str(out), "--bands", "B2,nir", "-q"])
    assert res.exit_code == 0, res.output  # other spellings of the data's bands are accepted


def test_default_indices_are_those_the_bands_give(tmp_path: Path) -> None:
    """--family indices without --indices on an NDVI-only dataset (CAWa) gives NDVI, not an
    error about EVI's bands the user never asked for; bands giving no index are one line."""
    rng = np.random.default_rng(0)
    grid = TimeGrid.regular(16)
    v = rng.random((8, 1, grid.n_steps)).astype(np.float32)
    src = SeriesSet(v, ("NDVI",), grid, np.arange(8) % 2, ("corn", "wheat")).save(
        tmp_path / "ndvi.npz"
    )
    out = tmp_path / "idx.parquet"
    res = CliRunner().invoke(command, [str(src), "-o", str(out), "--family", "indices", "-q"])
    assert res.exit_code == 0, res.output
    first = next(c for c in pd.read_parquet(out).columns if c.endswith("_median"))
    assert first.startswith("NDVI")
    assert json.loads((tmp_path / "idx.json").read_text())["pipeline"]["steps"][0][1]["params"][
        "indices"
    ] == ["NDVI"]
    vv = SeriesSet(v, ("VV",), grid, np.arange(8) % 2, ("corn", "wheat")).save(tmp_path / "vv.npz")
    res = CliRunner().invoke(command, [str(vv), "-o", str(out), "--family", "indices", "-q"])
    assert res.exit_code == 2 and "give none of the default indices" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_harmonics_of_a_gap_filled_composite_say_so(tmp_path: Path) -> None:
    from cropglobe.cli.main import cli
    from cropglobe.composite import composite
    from cropglobe.io.tables import read_observations

    rng = np.random.default_rng(1)
    days = pd.to_datetime("2023-01-01") + pd.to_timedelta(np.arange(5, 360, 30), "D")
    table = pd.DataFrame(
        {
            "sample_id": np.repeat(["a", "b", "c"], len(days)),
            "date": np.tile(days, 3),
            "B04": rng.uniform(300, 900, 3 * len(days)),
            "B08": rng.uniform(2000, 4000, 3 * len(days)),
        }
    )
    table.to_csv(tmp_path / "obs.csv", index=False)
    obs = read_observations(tmp_path / "obs.csv")
    runner = CliRunner()
    for fill, said in ((True, True), (False, False)):
        ss = composite(obs, TimeGrid.cropglobe(), fill=fill)
        assert (ss.attrs["composite"].get("filled_fraction", 0.0) > 0.5) is fill
        path = ss.save(tmp_path / f"c{fill}.npz")
        out = tmp_path / f"h{fill}.parquet"
        res = runner.invoke(cli, ["features", str(path), "--family", "harmonics", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert ("interpolated across gaps" in res.output) is said, res.output
        assert ("--no-fill" in res.output) is said
