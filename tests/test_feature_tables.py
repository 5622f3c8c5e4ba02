"""Transfer experiments on feature tables (``cropglobe features`` output): the ``*-table``
methods, their equivalence with the methods computing the same features, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.errors import DataFormatError, ParameterError
from cropglobe.evaluate.experiment import run_experiment
from cropglobe.features.table import (
    FeatureColumns,
    feature_table,
    is_feature_set,
    make_features,
    read_feature_table,
    write_feature_table,
)
from cropglobe.simulate import simulate_world

pytestmark = pytest.mark.usefixtures("few_trees")


@pytest.fixture(scope="module")
def world():
    return simulate_world(("FRA", "BEL", "USA"), 50, random_state=6)


@pytest.fixture(scope="module")
def harmonics(world, tmp_path_factory) -> Path:
    """The world's harmonic coefficients as ``cropglobe features`` writes them."""
    out = tmp_path_factory.mktemp("tables") / "harmonics.parquet"
    table, params = feature_table(world, make_features("harmonics", window=(121, 334)))
    write_feature_table(table, params, out)
    return out


def test_read_feature_table(world, harmonics) -> None:
    ss = read_feature_table(harmonics)
    table = pd.read_parquet(harmonics)
    names = json.loads(harmonics.with_suffix(".json").read_text())["feature_names"]
    assert is_feature_set(ss) and ss.values.shape == (world.n_samples, len(names), 1)
    assert ss.bands == tuple(names) and ss.classes == world.classes
    np.testing.assert_array_equal(ss.values[:, :, 0], table[names].to_numpy(np.float32))
    np.testing.assert_array_equal(ss.labels, world.labels)
    assert list(ss.meta.sample_id) == list(world.meta.sample_id.astype(str))
    assert list(ss.meta.country) == list(world.meta.country)
    cols = FeatureColumns().fit(ss)
    np.testing.assert_array_equal(cols.transform(ss), ss.values[:, :, 0])
    with pytest.raises(DataFormatError, match="the data are time series"):
        FeatureColumns().fit(world)
    plain = harmonics.parent / "plain.parquet"
    table.to_parquet(plain)
    with pytest.raises(DataFormatError, match="not a feature table"):
        read_feature_table(plain)


def test_rf_table_equals_rf_harmonic(world, harmonics, tmp_path) -> None:
    """A forest on the table of harmonics predicts what rf-harmonic predicts on the series
    (the same features, the same seed)."""
    kw = dict(sources=["FRA"], targets=["BEL", "USA"], seeds=[5], diagnostics=False)
    on_table = run_experiment(harmonics, methods=["rf-table"], output=tmp_path / "t", **kw)
    on_series = run_experiment(world, methods=["rf-harmonic"], output=tmp_path / "s", **kw)
    a = pd.read_parquet(tmp_path / "t/runs/rf-table/FRA/seed5/predictions.parquet")
    b = pd.read_parquet(tmp_path / "s/runs/rf-harmonic/FRA/seed5/predictions.parquet")
    np.testing.assert_array_equal(a.y_pred.to_numpy(), b.y_pred.to_numpy())
    assert on_table.result.runs.oa.tolist() == on_series.result.runs.oa.tolist()
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["config"]["window"] is None  # a table has no time axis
    assert (tmp_path / "t" / "report.html").exists()


def test_table_and_series_methods_do_not_mix(world, harmonics, tmp_path) -> None:
    with pytest.raises(ParameterError, match="methods cropnet cannot train on it"):
        run_experiment(harmonics, sources=["FRA"], methods=["rf-table", "cropnet"], seeds=[1],
                       output=tmp_path / "a")  # fmt: skip
    with pytest.raises(ParameterError, match="methods rf-table train on a feature table"):
        run_experiment(world, sources=["FRA"], methods=["rf-table"], seeds=[1],
                       output=tmp_path / "b")  # fmt: skip
    with pytest.raises(ParameterError, match="a feature table has none"):
        run_experiment(harmonics, sources=["FRA"], methods=["rf-table"], seeds=[1],
                       seasons={"USA": "07-01"}, output=tmp_path / "c")  # fmt: skip
    with pytest.raises(ParameterError, match="takes no read options"):
        run_experiment(harmonics, sources=["FRA"], methods=["rf-table"], seeds=[1],
                       read_options={"kind": "x"}, output=tmp_path / "d")  # fmt: skip
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_transfer_command_on_a_table(harmonics, tmp_path) -> None:
    out = tmp_path / "exp"
    head = ["transfer", "--data", str(harmonics), "--source", "FRA", "--targets", "BEL"]
    tail = ["--seeds", "1", "--epochs", "2", "-o", str(out)]
    res = CliRunner().invoke(cli, [*head, "--methods", "rf-table,mlp-table", *tail])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "results.csv")
    assert set(runs.method) == {"rf-table", "mlp-table"}
    res = CliRunner().invoke(cli, [*head, "--methods", "cropnet", *tail])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "is a feature table" in res.output
    # other commands still refuse a feature table, naming the transfer methods
    res = CliRunner().invoke(cli, ["info", str(harmonics)])
    assert res.exit_code == 2 and "rf-table, lightgbm-table and mlp-table" in res.output


def test_transfer_on_emit_spectra_features(tmp_path) -> None:
    """EMIT spectra -> cropglobe features --family hyperspectral --spectral bands -> transfer."""
    from cropglobe.io.emit import Spectra, write_spectra_table

    rng = np.random.default_rng(0)
    wl = np.linspace(400, 2400, 40)
    n = 60
    label = np.array(["corn", "wheat", "other"])[np.arange(n) % 3]
    shape = {"corn": np.sin(wl / 300), "wheat": np.cos(wl / 250), "other": 0.2 + 0 * wl}
    values = np.stack([0.3 + 0.1 * shape[c] + rng.normal(0, 0.02, wl.size) for c in label])
    meta = pd.DataFrame({
        "sample_id": [f"p{i // 2}" for i in range(n)],  # each point seen twice
        "label": label,
        "country": np.where(np.arange(n) < 40, "FRA", "BEL"),
        "date": pd.to_datetime("2023-07-01"),
        "granule": "g1",
    })  # fmt: skip
    spectra = write_spectra_table(
        Spectra(values.astype(np.float32), wl, meta=meta), tmp_path / "s.parquet"
    )
    feats = tmp_path / "emit.parquet"
    res = CliRunner().invoke(
        cli, ["features", str(spectra), "--family", "hyperspectral", "--spectral", "bands",
              "-o", str(feats)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = tmp_path / "exp"
    res = CliRunner().invoke(
        cli, ["transfer", "--data", str(feats), "--source", "FRA", "--targets", "BEL",
              "--methods", "rf-table", "--seeds", "1", "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "results.csv")
    assert runs.oa_mean.iloc[0] > 0.9  # three well-separated spectral shapes
    pred = pd.read_parquet(out / "runs/rf-table/FRA/seed1/predictions.parquet")
    assert len(pred) == 20 and pred.sample_id.nunique() == 10  # spectra, two per point


def test_real_data_rf_table_equals_rf_harmonic(shared_data, tmp_path) -> None:
    """CAN -> FRA (WorldCereal, release layout): a forest on the harmonics table written by
    cropglobe features predicts every French sample as rf-harmonic does on the series."""
    data = shared_data / "cropglobe_format"
    table = tmp_path / "harmonics.parquet"
    res = CliRunner().invoke(
        cli, ["features", str(data), "-o", str(table), "--family", "harmonics"]
    )
    assert res.exit_code == 0, res.output
    kw = dict(sources=["CAN"], targets=["FRA"], seeds=[82], diagnostics=False)
    run_experiment(table, methods=["rf-table"], output=tmp_path / "t", **kw)
    run_experiment(data, methods=["rf-harmonic"], output=tmp_path / "s", **kw)
    a = pd.read_parquet(tmp_path / "t/runs/rf-table/CAN/seed82/predictions.parquet")
    b = pd.read_parquet(tmp_path / "s/runs/rf-harmonic/CAN/seed82/predictions.parquet")
    assert len(a) == 499
    assert (a.sample_id.to_numpy() == b.sample_id.to_numpy()).all()
    np.testing.assert_array_equal(a.y_pred.to_numpy(), b.y_pred.to_numpy())
