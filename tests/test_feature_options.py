"""Feature settings of transfer experiments (``--feature-option harmonic.n_harmonics=1``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.errors import ParameterError
from cropglobe.evaluate import methods as methods_mod
from cropglobe.evaluate.experiment import run_experiment
from cropglobe.evaluate.transfer import ExperimentMismatchError, check_feature_options
from cropglobe.features import Harmonics
from cropglobe.models.classical import RandomForestModel
from cropglobe.simulate import simulate_world

pytestmark = pytest.mark.usefixtures("few_trees")


@pytest.fixture(scope="module")
def world():
    return simulate_world(("FRA", "BEL", "USA"), 60, random_state=4)


def _run(world, out, **kw):
    args = dict(sources=["FRA"], targets=["BEL", "USA"], seeds=[5], output=out)
    args.update(kw)
    return run_experiment(world, **args)


def test_options_are_checked_and_defaults_are_no_change() -> None:
    assert check_feature_options({"harmonic": {"n_harmonics": 1}}) == {
        "harmonic": {"n_harmonics": 1}
    }
    # the defaults given are the same features as none given: the same experiment
    assert check_feature_options({"harmonic": {"n_harmonics": 3, "omega": 1}}) == {}
    assert check_feature_options({"harmonic": {"omega": 2}}) == {"harmonic": {"omega": 2.0}}
    for bad, match in [
        ({"median1d": {"n": 1}}, "only harmonic take"),
        ({"harmonic": {"order": 1}}, r"harmonic.order: unknown; harmonic takes .*n_harmonics"),
        ({"harmonic": {"n_harmonics": 1.5}}, "whole number"),
        ({"harmonic": {"n_harmonics": -1}}, "whole number"),
        ({"harmonic": {"n_harmonics": True}}, "whole number"),
        ({"harmonic": {"omega": 0}}, "above 0"),
        ({"harmonic": {"omega": "fast"}}, "above 0"),
        ({"harmonic": 1}, "dictionary"),
    ]:
        with pytest.raises(ParameterError, match=match):
            check_feature_options(bad)


def test_rf_harmonic_uses_the_order_given(world, tmp_path) -> None:
    rep = _run(
        world,
        tmp_path / "exp",
        methods=["rf-harmonic"],
        feature_options={"harmonic": {"n_harmonics": 1}},
    )
    assert len(rep.result.runs) == 2
    # the forest is the one fitted by hand on first-order harmonics of the source
    src = world.subset(world.meta["country"].to_numpy() == "FRA")
    src = src.subset(src.labels >= 0)
    h = Harmonics(window=(121, 334), n_harmonics=1).fit(src)
    assert h.transform(src).shape[1] == 3 * world.n_bands  # c, a1, b1 per band
    forest = RandomForestModel(n_estimators=methods_mod.RF_TREES, random_state=5, n_jobs=-1)
    forest.fit(h.transform(src), src.labels)
    pred = pd.read_parquet(tmp_path / "exp/runs/rf-harmonic/FRA/seed5/predictions.parquet")
    for cc in ("BEL", "USA"):
        tgt = world.subset(world.meta["country"].to_numpy() == cc)
        mine = np.asarray(forest.classes_)[forest.predict_proba(h.transform(tgt)).argmax(axis=1)]
        np.testing.assert_array_equal(pred[pred.target == cc].y_pred.to_numpy(), mine)
    # a rerun with other settings would mix features: refused, the runs kept
    with pytest.raises(ExperimentMismatchError, match="feature_options"):
        _run(world, tmp_path / "exp", methods=["rf-harmonic"])
    assert (tmp_path / "exp/runs/rf-harmonic/FRA/seed5/metrics.json").exists()
    # the defaults spelt out are the default experiment
    a = _run(world, tmp_path / "default", methods=["rf-harmonic"])
    b = _run(
        world,
        tmp_path / "default",
        methods=["rf-harmonic"],
        feature_options={"harmonic": {"n_harmonics": 3}},
    )
    assert a.result.runs.oa.tolist() == b.result.runs.oa.tolist()


def test_runs_without_harmonics_take_any_feature_option(world, tmp_path, caplog) -> None:
    first = _run(world, tmp_path / "exp", methods=["rf-median1d"])
    with caplog.at_level("WARNING", logger="cropglobe.evaluate.experiment"):
        again = _run(
            world,
            tmp_path / "exp",
            methods=["rf-median1d"],
            feature_options={"harmonic": {"n_harmonics": 1}},
        )
    assert again.result.runs.oa.tolist() == first.result.runs.oa.tolist()  # reused
    assert "feature options for harmonic: no method of this experiment computes" in caplog.text


def test_few_steps_per_coefficient_are_warned_of(world, tmp_path, caplog) -> None:
    # a window of 10 five-day steps: n = 3 fits 7 coefficients, under 3 steps each
    with caplog.at_level("WARNING", logger="cropglobe.evaluate.experiment"):
        _run(world, tmp_path / "narrow", methods=["rf-harmonic"], window=(151, 200))
    assert "7 coefficients (n_harmonics=3) for at most 10 time steps" in caplog.text
    assert "--feature-option harmonic.n_harmonics=1" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="cropglobe.evaluate.experiment"):
        _run(world, tmp_path / "paper", methods=["rf-harmonic"])  # 43 steps: no warning
        _run(
            world,
            tmp_path / "narrow1",
            methods=["rf-harmonic"],
            window=(151, 200),
            feature_options={"harmonic": {"n_harmonics": 1}},
        )
    assert "coefficients" not in caplog.text


def test_cli_feature_option(world, tmp_path) -> None:
    data = tmp_path / "world.npz"
    world.save(data)
    base = ["transfer", "--data", str(data), "--source", "FRA", "--targets", "BEL"]
    base += ["--methods", "rf-harmonic", "--seeds", "1", "-q"]
    res = CliRunner().invoke(
        cli, [*base, "-o", str(tmp_path / "ok"), "--feature-option", "harmonic.n_harmonics=1"]
    )
    assert res.exit_code == 0, res.output
    assert '"n_harmonics": 1' in (tmp_path / "ok/config.json").read_text()
    for bad, match in [
        ("harmonic.order=1", "harmonic.order: unknown"),
        ("n_harmonics=1", "is not FEATURE.NAME=VALUE; e.g. harmonic.n_harmonics=1"),
    ]:
        res = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "bad"), "--feature-option", bad])
        assert res.exit_code == 2 and match in res.output and "Traceback" not in res.output


def test_features_cli_warns_of_few_steps_per_coefficient(world, tmp_path) -> None:
    data = tmp_path / "world.npz"
    world.save(data)
    base = ["features", str(data), "--family", "harmonics", "--window", "151-200"]
    res = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "h3.parquet")])
    assert res.exit_code == 0, res.output
    assert "7 coefficients (n_harmonics=3) for at most 10 time steps" in res.output
    assert "try --n-harmonics 1" in res.output
    res = CliRunner().invoke(cli, [*base, "--n-harmonics", "1", "-o", str(tmp_path / "h1.parquet")])
    assert res.exit_code == 0 and "coefficients" not in res.output, res.output
