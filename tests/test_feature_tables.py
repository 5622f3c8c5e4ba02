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
    # info summarises it; --plot (curves over time) is refused
    res = CliRunner().invoke(cli, ["info", str(harmonics)])
    assert res.exit_code == 0 and "kind: feature table, 150 samples" in res.output
    assert "features (70): B02_const" in res.output and "computed by Harmonics" in res.output
    res = CliRunner().invoke(cli, ["info", str(harmonics), "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 2 and "no time axis" in res.output


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
    # a table of the good bands (R0400 …) is a feature table, not a spectra table
    res = CliRunner().invoke(cli, ["info", str(feats)])
    assert res.exit_code == 0 and "kind: feature table, 60 samples" in res.output
    assert "computed by GoodBands of" in res.output and "corn  wheat  other" in res.output
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


def test_other_commands_refuse_a_table(harmonics, tmp_path) -> None:
    """train and diagnose read series (load_series): a feature table is refused in one line,
    not trained on as a one-step series."""
    for args in (
        ["train", "--data", str(harmonics), "--model", "rf", "-o", str(tmp_path / "m")],
        ["diagnose", "--data", str(harmonics), "--source", "FRA", "--targets", "BEL"],
    ):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "is a feature table" in res.output
    assert not (tmp_path / "m").exists()


def test_no_season_lag_on_a_table(tmp_path) -> None:
    """A table whose features are named B04 and B08 (EMIT --spectral s2) has no NDVI curve:
    its season lag is not measured (one step gave noise lags of ±days)."""
    from cropglobe.evaluate.shift import pair_diagnostics

    rng = np.random.default_rng(1)
    n = 60
    names = ["B04", "B08", "B11"]
    table = pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(n)],
        "label": np.arange(n) % 2,
        "country": np.where(np.arange(n) < 30, "FRA", "BEL"),
    })  # fmt: skip
    for i, name in enumerate(names):
        table[name] = rng.uniform(0.05, 0.5, n).astype(np.float32) + i
    path = tmp_path / "s2.parquet"
    write_feature_table(
        table, {"format": "cropglobe.features", "feature_names": names,
                "classes": ["corn", "wheat"]}, path,
    )  # fmt: skip
    ss = read_feature_table(path)
    found = pair_diagnostics(ss, [("FRA", "BEL")], window=None)
    assert len(found) == 1 and np.isnan(found.lag_days.iloc[0])


def test_table_refusals_name_the_file(harmonics, tmp_path) -> None:
    table = pd.read_parquet(harmonics)
    params = json.loads(harmonics.with_suffix(".json").read_text())
    name = params["feature_names"][0]
    cases = {
        "text": (table.assign(**{name: table[name].astype(str)}), "not numeric"),
        "huge": (table.assign(**{name: table[name].astype(np.float64) * 1e300}),
                 "beyond float32's range"),
        "float_label": (table.assign(label=table["label"].astype(float)), "holds float64"),
    }  # fmt: skip
    for case, (bad, said) in cases.items():
        path = tmp_path / f"{case}.parquet"
        write_feature_table(bad, params, path)
        with pytest.raises(DataFormatError, match=said) as err:
            read_feature_table(path)
        assert str(path) in str(err.value)


def test_series_table_is_no_feature_table(world, tmp_path) -> None:
    """A series table whose metadata merely mention 'cropglobe.features' stays a series."""
    import dataclasses

    from cropglobe.io import feature_table_params, write_series_table

    path = tmp_path / "series.parquet"
    noted = dataclasses.replace(world, attrs={**world.attrs, "note": "see cropglobe.features"})
    write_series_table(noted, path)
    assert feature_table_params(path) is None


def test_season_auto_and_own_holdout_on_a_table(harmonics, tmp_path) -> None:
    with pytest.raises(ParameterError, match="a feature table has none"):
        run_experiment(harmonics, sources=["FRA"], methods=["rf-table"], seeds=[1],
                       seasons="auto", output=tmp_path / "a")  # fmt: skip
    # a source scored only on its own hold-out: no pair to diagnose
    done = run_experiment(harmonics, sources=["FRA"], targets=["FRA"], within=True,
                          methods=["rf-table"], seeds=[1], output=tmp_path / "b")  # fmt: skip
    assert done.diagnostics is not None and done.diagnostics.empty


def test_applicability_of_repeated_sample_ids(tmp_path) -> None:
    """Two rows of one sample id (a point seen on two days) are inside or outside the
    source's range each on its own: here the first of each pair like the source, the second
    far from it."""
    rng = np.random.default_rng(2)
    names = [f"f{i}" for i in range(4)]
    src = rng.normal(0, 1, (40, 4))
    near, far = rng.normal(0, 1, (10, 4)), rng.normal(60, 1, (10, 4))
    tgt = np.stack([near, far], axis=1).reshape(20, 4)  # near, far, near, far …
    table = pd.DataFrame({
        "sample_id": [f"a{i}" for i in range(40)] + [f"p{i // 2}" for i in range(20)],
        "label": np.arange(60) % 2,
        "country": ["FRA"] * 40 + ["BEL"] * 20,
    })  # fmt: skip
    for i, name in enumerate(names):
        table[name] = np.r_[src[:, i], tgt[:, i]].astype(np.float32)
    path = tmp_path / "repeats.parquet"
    write_feature_table(
        table, {"format": "cropglobe.features", "feature_names": names,
                "classes": ["corn", "wheat"]}, path,
    )  # fmt: skip
    run_experiment(path, sources=["FRA"], targets=["BEL"], methods=["rf-table"], seeds=[1],
                   output=tmp_path / "exp")  # fmt: skip
    row = pd.read_csv(tmp_path / "exp" / "applicability.csv").iloc[0]
    assert (row.n_outside, row.n_inside) == (10, 10)


def test_rows_without_any_feature_are_left_out(harmonics, tmp_path, caplog) -> None:
    table = pd.read_parquet(harmonics)
    params = json.loads(harmonics.with_suffix(".json").read_text())
    table.loc[[0, 3], params["feature_names"]] = np.nan  # two French rows without features
    path = tmp_path / "holes.parquet"
    write_feature_table(table, params, path)
    rep = run_experiment(
        path, sources=["FRA"], targets=["BEL"], methods=["rf-table", "mlp-table"], seeds=[1],
        epochs=1, output=tmp_path / "exp", diagnostics=False,
    )  # fmt: skip
    assert "2 of 150 rows hold no feature value (all NaN) and are left out" in caplog.text
    assert set(rep.result.runs.method) == {"rf-table", "mlp-table"}
    metrics = json.loads((tmp_path / "exp/runs/rf-table/FRA/seed1/metrics.json").read_text())
    assert metrics["n_train"] == 48


def test_meta_renamed_by_the_writer_comes_back(tmp_path, caplog) -> None:
    """A feature named 'country' made the writer call the samples' country 'meta_country';
    the reader names it 'country' again, so --group-by country works; a window is said not
    to apply."""
    rng = np.random.default_rng(3)
    n = 40
    table = pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(n)],
        "label": np.arange(n) % 2,
        "label_name": np.where(np.arange(n) % 2, "wheat", "corn"),
        "meta_country": np.where(np.arange(n) < 20, "FRA", "BEL"),
        "country": rng.normal(size=n).astype(np.float32),  # a feature of that name
        "f1": (np.arange(n) % 2 + rng.normal(0, 0.1, n)).astype(np.float32),
    })  # fmt: skip
    path = tmp_path / "t.parquet"
    params = {"format": "cropglobe.features", "feature_names": ["country", "f1"],
              "classes": ["corn", "wheat"]}  # fmt: skip
    write_feature_table(table, params, path)
    ss = read_feature_table(path)
    assert ss.bands == ("country", "f1")
    assert ss.meta["country"].tolist() == table["meta_country"].tolist()
    rep = run_experiment(path, sources=["FRA"], targets=["BEL"], methods=["rf-table"],
                         seeds=[1], window=(91, 300), output=tmp_path / "exp")  # fmt: skip
    assert rep.result.runs.oa.iloc[0] == 1.0  # f1 tells the classes apart
    assert "window 91-300 does not apply to a feature table" in caplog.text
