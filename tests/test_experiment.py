"""Transfer experiments end to end on a tiny simulated world: results, resume, bad input."""

from __future__ import annotations

import dataclasses
import html
import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from cropglobe._fs import safe_name
from cropglobe.cli.main import cli
from cropglobe.errors import CropGlobeError, DataFormatError, LabelError, ParameterError
from cropglobe.evaluate import methods as methods_mod
from cropglobe.evaluate.experiment import run_experiment
from cropglobe.evaluate.transfer import ExperimentMismatchError, parse_seeds
from cropglobe.simulate import simulate_world, write_world

pytestmark = pytest.mark.usefixtures("few_trees")


@pytest.fixture(scope="module")
def world():
    return simulate_world(("FRA", "BEL", "USA", "ARG"), 80, random_state=3)


def _run(world, out, **kw):
    args = dict(
        sources=["FRA"],
        targets=["BEL", "USA", "ARG"],
        methods=["rf-median1d"],
        seeds=[82, 83],
        output=out,
    )
    args.update(kw)
    return run_experiment(world, **args)


def test_end_to_end(world, tmp_path) -> None:
    rep = _run(world, tmp_path / "exp")
    runs = rep.result.runs
    assert len(runs) == 2 * 3
    assert set(runs.scenario) == {"cross-country", "cross-continent", "cross-hemisphere"}
    assert runs.oa.between(0, 1).all() and (runs.n_scored > 0).all()
    assert rep.report.exists() and (tmp_path / "exp" / "results.csv").exists()
    # the report opens with the findings, computed from the same scores
    assert rep.findings[0].startswith("rf-median1d: cross-country ")
    page = rep.report.read_text()
    assert "<h3>Findings</h3>" in page and html.escape(rep.findings[-1]) in page
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved["findings"] == rep.findings
    pred = pd.read_parquet(
        tmp_path / "exp" / "runs" / "rf-median1d" / "FRA" / "seed82" / "predictions.parquet"
    )
    assert set(pred.target) == {"BEL", "USA", "ARG"}
    probs = pred[[c for c in pred.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # FRA has no sugarcane or cotton: the model never predicts them
    assert np.all(pred[["p_sugarcane", "p_cotton"]].to_numpy() == 0)
    # scores recomputed from the saved predictions agree with the run's metrics
    metrics = json.loads((tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json").read_text())
    bel = pred[pred.target == "BEL"]
    assert metrics["targets"]["BEL"]["oa"] == pytest.approx(np.mean(bel.y_true == bel.y_pred))
    assert "Overall accuracy" in rep.summary_text
    assert "Paired by seed" not in rep.summary_text  # one method: nothing to compare
    # calibration, from the saved probabilities: in results.csv as the accuracies (percent)
    res = pd.read_csv(tmp_path / "exp" / "results.csv")
    for col in ("ece", "ece_mass", "overconfidence", "brier", "nll"):
        assert {f"{col}_mean", f"{col}_std"} <= set(res.columns)
    assert res.ece_mean.between(0, 100).all() and res.ece_mass_mean.between(0, 100).all()
    assert res.overconfidence_mean.between(-100, 100).all() and res.brier_mean.between(0, 2).all()
    # ECE by hand on ARG, where the truth has no wheat: wheat's probability goes to "other"
    other, wheat = world.classes.index("other"), world.classes.index("wheat")
    by_seed = []
    for seed in (82, 83):
        run = tmp_path / f"exp/runs/rf-median1d/FRA/seed{seed}"
        arg = pd.read_parquet(run / "predictions.parquet").query("target == 'ARG'")
        model = json.loads((run / "metrics.json").read_text())["model_classes"]
        arg = arg[[world.classes[i] in model for i in arg.y_true]]
        q = arg[[f"p_{c}" for c in world.classes]].to_numpy(dtype=np.float64, copy=True)
        q[:, other] += q[:, wheat]
        q[:, wheat] = 0.0
        pred = arg.y_pred.replace(wheat, other).to_numpy()
        conf = q[np.arange(len(q)), pred]
        by_seed.append(_ece_loop(conf, pred == arg.y_true.to_numpy()))
    row = runs[(runs.target == "ARG") & (runs.seed == 82)]
    assert row.ece.item() == pytest.approx(by_seed[0], abs=1e-9)
    reported = res.loc[res.target == "ARG", "ece_mean"].item()
    assert reported == pytest.approx(100 * np.mean(by_seed), abs=1e-3)
    assert rep.summary.loc[rep.summary.target == "ARG", "ece_mean"].item() == pytest.approx(
        100 * np.mean(by_seed)
    )
    assert "Calibration in the targets" in page and "reliability" in saved["calibration"]
    assert (tmp_path / "exp" / "figures" / "reliability.png").stat().st_size > 1000


def _ece_loop(conf: np.ndarray, right: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE as textbooks write it: equal-width bins (lo, hi], one at a time."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi) | ((lo == 0) & (conf == 0))
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return total


def test_summary_compares_methods_paired_by_seed(world, tmp_path) -> None:
    rep = _run(world, tmp_path / "exp", methods=["rf-median1d", "rf-harmonic"])
    assert "rf-harmonic vs rf-median1d: OA" in rep.summary_text
    cmp = pd.read_csv(tmp_path / "exp" / "comparison.csv")
    assert set(cmp.method) == {"rf-harmonic"} and (cmp.n_seeds == 2).all()
    again = _run(
        world, tmp_path / "exp", methods=["rf-median1d", "rf-harmonic"], baseline="rf-harmonic"
    )
    assert "rf-median1d vs rf-harmonic: OA" in again.summary_text


def test_resume_after_interrupt(world, tmp_path, monkeypatch) -> None:
    ref = _run(world, tmp_path / "ref").result.runs
    real_fit = methods_mod.Method.fit
    calls = {"n": 0}

    def flaky_fit(self, train, *, seed, config, on_epoch=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_fit(self, train, seed=seed, config=config)

    monkeypatch.setattr(methods_mod.Method, "fit", flaky_fit)
    with pytest.raises(KeyboardInterrupt):
        _run(world, tmp_path / "exp")
    done = tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json"
    assert done.exists()
    assert not (tmp_path / "exp/runs/rf-median1d/FRA/seed83/metrics.json").exists()
    stamp = done.stat().st_mtime_ns
    monkeypatch.setattr(methods_mod.Method, "fit", real_fit)
    again = _run(world, tmp_path / "exp").result.runs
    assert done.stat().st_mtime_ns == stamp  # the finished run was reused, not redone
    pd.testing.assert_frame_equal(
        again.drop(columns="train_seconds"), ref.drop(columns="train_seconds")
    )


def test_other_experiment_in_folder_refused(world, tmp_path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ExperimentMismatchError, match="already holds other files"):
        _run(world, tmp_path / "busy", seeds=[82])
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    _run(world, tmp_path / "exp", seeds=[82])
    with pytest.raises(ExperimentMismatchError, match="different experiment"):
        _run(world, tmp_path / "exp", seeds=[82], protocol="paper")
    assert (tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json").exists()


def test_bad_input(world, tmp_path) -> None:
    with pytest.raises(CropGlobeError, match="valid methods: cropnet-aug"):
        _run(world, tmp_path / "a", methods=["svm"])
    with pytest.raises(DataFormatError, match="present: ARG, BEL, FRA, USA"):
        _run(world, tmp_path / "b", targets=["XYZ"])
    with pytest.raises(DataFormatError, match="no metadata column 'province'"):
        _run(world, tmp_path / "c", group_by="province")
    assert parse_seeds("82-84,90") == [82, 83, 84, 90]
    with pytest.raises(DataFormatError, match="do not parse"):
        parse_seeds("a-b")


def test_transfer_cli(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "transfer",
            "--data",
            str(data),
            "--source",
            "FRA",
            "--targets",
            "BEL",
            "ARG",
            "--methods",
            "rf-median1d",
            "--seeds",
            "1",
            "-o",
            str(tmp_path / "out"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "cross-hemisphere" in res.output and (tmp_path / "out/report.html").exists()
    assert "What the numbers say:\n  - rf-median1d: cross-country " in res.output
    bad = runner.invoke(
        cli,
        [
            "transfer",
            "--data",
            str(data),
            "--source",
            "FRA",
            "--methods",
            "nope",
            "--seeds",
            "1",
            "-o",
            str(tmp_path / "o2"),
        ],
    )
    assert bad.exit_code == 2
    assert bad.output.strip().startswith("Error: unknown method 'nope'")
    assert len(bad.output.strip().splitlines()) == 1
    args = ["transfer", "--data", str(data), "--source", "FRA", "--methods", "rf-median1d"]
    bad = runner.invoke(cli, [*args, "--tta", "--tta-shifts", "a,b", "-o", str(tmp_path / "o3")])
    assert bad.exit_code == 2 and "comma-separated list of days" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "o3").exists()
    bad = runner.invoke(cli, [*args, "--baseline", "rf-harmonic", "-o", str(tmp_path / "o4")])
    assert bad.exit_code == 2, bad.output
    assert "baseline 'rf-harmonic' is not one of the methods" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "o4").exists()


def test_collect_runs_matches_result(world, tmp_path) -> None:
    from cropglobe.evaluate.transfer import collect_runs

    runs = _run(world, tmp_path / "exp").result.runs
    collected = collect_runs(tmp_path / "exp")
    key = ["method", "source", "target", "seed"]
    a = runs.sort_values(key).reset_index(drop=True)
    b = collected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[[*key, "oa", "macro_f1"]], b[[*key, "oa", "macro_f1"]])


def test_neural_run_keeps_its_model(world, tmp_path) -> None:
    from cropglobe.workflow import predict_dataset

    _run(world, tmp_path / "exp", methods=["tempcnn"], seeds=[82], targets=["BEL"], epochs=1)
    folder = tmp_path / "exp/runs/tempcnn/FRA/seed82/model"
    assert (folder / "card.json").exists()
    table = predict_dataset(folder, world.where(country="BEL"))
    pred = pd.read_parquet(tmp_path / "exp/runs/tempcnn/FRA/seed82/predictions.parquet")
    assert table["predicted"].tolist() == [world.classes[i] for i in pred["y_pred"]]


def test_prior_adaptation_rescores_neural_runs(world, tmp_path, monkeypatch) -> None:
    from cropglobe.evaluate.adapt import adapt_posteriors, estimate_target_prior
    from cropglobe.evaluate.metrics import score_transfer
    from cropglobe.evaluate.transfer import collect_runs

    kw = {"methods": ["tempcnn", "rf-median1d"], "seeds": [82], "targets": ["BEL"], "epochs": 1}
    plain = _run(world, tmp_path / "exp", **kw).result.runs
    assert set(plain.method) == {"tempcnn", "rf-median1d"}
    # rescoring a finished experiment: nothing is retrained, neural methods gain a +prior row
    rep = _run(world, tmp_path / "exp", adapt_prior=True, **kw).result.runs
    assert set(rep.method) == {"tempcnn", "rf-median1d", "tempcnn+prior"}
    pd.testing.assert_frame_equal(
        rep[rep.method != "tempcnn+prior"].reset_index(drop=True), plain.reset_index(drop=True)
    )
    run = tmp_path / "exp/runs/tempcnn/FRA/seed82"
    metrics = json.loads((run / "metrics.json").read_text())
    adapted = metrics["adapted"]["prior"]["BEL"]
    # the same numbers by hand from the saved predictions
    pred = pd.read_parquet(run / "predictions.parquet")
    model_classes = [world.classes.index(c) for c in metrics["model_classes"]]
    p = pred[[f"p_{world.classes[i]}" for i in model_classes]].to_numpy()
    prior, _ = estimate_target_prior(p)
    y = np.asarray(model_classes)[adapt_posteriors(p, prior).argmax(axis=1)]
    expect = score_transfer(
        pred.y_true, y, model_classes=model_classes, target="BEL", classes=world.classes
    )
    assert adapted["oa"] == pytest.approx(expect["oa"])
    assert sum(adapted["estimated_prior"].values()) == pytest.approx(1.0)
    # its calibration is that of the adapted posteriors (BEL collapses nothing)
    post = adapt_posteriors(p, prior)
    scored = np.isin(pred.y_true, model_classes)
    ece = _ece_loop(post.max(axis=1)[scored], (y == pred.y_true.to_numpy())[scored])
    row = rep[rep.method == "tempcnn+prior"]
    assert row.ece.item() == pytest.approx(ece, abs=1e-9)
    assert row.ece.item() != rep.loc[rep.method == "tempcnn", "ece"].item()
    assert set(collect_runs(tmp_path / "exp").method) == set(rep.method)
    page = (tmp_path / "exp/report.html").read_text()
    assert "Rows METHOD+prior" in page and "Rows METHOD+tta" not in page
    # temperature scaling: fitted on the source's validation split, saved with the run
    t = metrics["temperature"]
    assert isinstance(t, float) and 0.05 <= t <= 20.0
    assert metrics["temperature_fit"]["n_val"] == metrics["training"]["n_val"] > 0
    forest = json.loads((tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json").read_text())
    assert forest["temperature"] is None and "classical" in forest["temperature_fit"]["reason"]
    # ECE after scaling, by hand: p^(1/T) renormalised, the same predictions
    q = pred[[f"p_{c}" for c in world.classes]].to_numpy(dtype=np.float64) ** (1.0 / t)
    q /= q.sum(axis=1, keepdims=True)
    yp = pred.y_pred.to_numpy()
    conf = q[np.arange(len(q)), yp][scored]
    ece_ts = _ece_loop(conf, (yp == pred.y_true.to_numpy())[scored])
    res = pd.read_csv(tmp_path / "exp/results.csv").set_index("method")
    assert rep.loc[rep.method == "tempcnn", "ece_ts"].item() == pytest.approx(ece_ts, abs=1e-9)
    assert res.loc["tempcnn", "ece_ts_mean"] == pytest.approx(100 * ece_ts, abs=1e-3)
    assert res.loc["tempcnn", "temperature_mean"] == pytest.approx(t, abs=1e-3)
    # +prior: scaled first, then EM from the scaled probabilities
    qm = q[:, model_classes]
    post_ts = adapt_posteriors(qm, estimate_target_prior(qm)[0])
    y_ts = np.asarray(model_classes)[post_ts.argmax(axis=1)]
    ece = _ece_loop(post_ts.max(axis=1)[scored], (y_ts == pred.y_true.to_numpy())[scored])
    assert rep.loc[rep.method == "tempcnn+prior", "ece_ts"].item() == pytest.approx(ece, abs=1e-9)
    # a forest has no temperature: blank, not 0
    cols = ["temperature_mean", "ece_ts_mean", "ece_ts_std", "overconfidence_ts_mean",
            "nll_ts_mean"]  # fmt: skip
    assert res.loc["rf-median1d", cols].isna().all() and res.loc["tempcnn", cols].notna().all()
    assert "After temperature scaling fitted on the source" in page
    assert "No temperature for rf-median1d" in page
    found = json.loads((tmp_path / "exp/results.json").read_text())["calibration"]["findings"]
    assert found[-1].startswith("Temperature scaling fitted on the source")
    assert "the ECE of tempcnn from" in found[-1]
    # a run saved before temperatures were fitted: blank after scaling, and not trained again
    for key in ("temperature", "temperature_fit"):
        del metrics[key]
    (run / "metrics.json").write_text(json.dumps(metrics))

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(methods_mod.Method, "fit", no_training)
    old = _run(world, tmp_path / "exp", adapt_prior=True, **kw).result.runs
    tempcnn = old[old.method.str.startswith("tempcnn")]
    assert tempcnn[["temperature", "ece_ts", "nll_ts"]].isna().all().all()
    assert tempcnn.ece.tolist() == rep[rep.method.str.startswith("tempcnn")].ece.tolist()
    assert pd.read_csv(tmp_path / "exp/results.csv").ece_ts_mean.isna().all()


def test_averaged_method_also_scores_its_best_epoch(world, tmp_path) -> None:
    kw = {"seeds": [82], "targets": ["BEL"], "epochs": 2}
    _run(world, tmp_path / "avg", methods=["cropnet-aug-swa"], **kw)
    _run(world, tmp_path / "plain", methods=["cropnet-aug"], **kw)
    avg = json.loads((tmp_path / "avg/runs/cropnet-aug-swa/FRA/seed82/metrics.json").read_text())
    plain = json.loads((tmp_path / "plain/runs/cropnet-aug/FRA/seed82/metrics.json").read_text())
    assert avg["training"]["averaged_epochs"] == [2, 2]
    assert 0.0 <= avg["training"]["averaged_val_macro_f1"] <= 1.0
    # averaging leaves training alone: the best single epoch is the plain method's model
    assert avg["training"]["history"][0]["loss"] == plain["training"]["history"][0]["loss"]
    best = avg["best_epoch_targets"]["BEL"]
    for key in ("oa", "macro_f1", "weighted_f1"):
        assert best[key] == pytest.approx(plain["targets"]["BEL"][key], abs=1e-12)
    assert "best_epoch_targets" not in plain


def test_shift_averaging_rescores_neural_runs(world, tmp_path, monkeypatch) -> None:
    from cropglobe.evaluate import transfer as transfer_mod
    from cropglobe.evaluate.metrics import score_transfer
    from cropglobe.models import predict_proba
    from cropglobe.models.folder import load_model, model_inputs

    kw = {"methods": ["tempcnn", "rf-median1d"], "seeds": [82], "targets": ["BEL"], "epochs": 1}
    plain = _run(world, tmp_path / "exp", **kw).result.runs
    rep = _run(world, tmp_path / "exp", tta=[-10, 0, 10], **kw).result.runs
    assert set(rep.method) == {"tempcnn", "rf-median1d", "tempcnn+tta"}
    pd.testing.assert_frame_equal(
        rep[rep.method != "tempcnn+tta"].reset_index(drop=True), plain.reset_index(drop=True)
    )
    run = tmp_path / "exp/runs/tempcnn/FRA/seed82"
    scores = json.loads((run / "metrics.json").read_text())["adapted"]["tta"]["BEL"]
    assert scores["shifts"] == [-10.0, 0.0, 10.0]
    page = (tmp_path / "exp/report.html").read_text()
    assert "Rows METHOD+tta" in page and "-10, 0, +10 days" in page
    # the same numbers by hand from the saved model
    model, card = load_model(run / "model")
    bel = world.where(country="BEL")
    proba = sum(predict_proba(model, model_inputs(card, bel, shift=s)) for s in (-10, 0, 10))
    y = np.asarray([world.classes.index(c) for c in card.classes])[proba.argmax(axis=1)]
    expect = score_transfer(
        bel.labels,
        y,
        model_classes=[world.classes.index(c) for c in card.classes],
        target="BEL",
        classes=world.classes,
    )
    assert scores["oa"] == pytest.approx(expect["oa"])
    assert scores["macro_f1"] == pytest.approx(expect["macro_f1"])

    # rerun with the same shifts: nothing is recomputed; other shifts: rescored
    calls: list[int] = []
    real = transfer_mod._add_tta_scores
    monkeypatch.setattr(
        transfer_mod, "_add_tta_scores", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    _run(world, tmp_path / "exp", tta=[-10, 0, 10], **kw)
    assert calls == []
    _run(world, tmp_path / "exp", tta=[-20, 0, 20], **kw)
    assert calls == [1]
    again = json.loads((run / "metrics.json").read_text())["adapted"]["tta"]["BEL"]
    assert again["shifts"] == [-20.0, 0.0, 20.0]


def test_tta_needs_a_window(world, tmp_path) -> None:
    with pytest.raises(CropGlobeError, match="experiment has none"):
        _run(world, tmp_path / "w", methods=["tempcnn"], window=None, tta=[-10, 0, 10])
    assert not (tmp_path / "w" / "runs").exists()
    _run(world, tmp_path / "rf", window=None, tta=[-10, 0, 10], seeds=[1], targets=["BEL"])


def test_bad_tta_shifts() -> None:
    from cropglobe.evaluate.transfer import parse_shifts

    assert parse_shifts("-20, -10,0,10,20") == [-20.0, -10.0, 0.0, 10.0, 20.0]
    with pytest.raises(CropGlobeError, match="comma-separated list of days"):
        parse_shifts("ten")
    with pytest.raises(CropGlobeError, match="comma-separated list of days"):
        parse_shifts(",")


def test_paper_protocol_drops_duplicate_samples(world, tmp_path) -> None:
    from cropglobe.series import SeriesSet

    bel = np.flatnonzero(world.meta["country"].to_numpy() == "BEL")[:7]
    doubled = SeriesSet.concat([world, world.subset(bel)])
    lines: list[str] = []
    rep = _run(doubled, tmp_path / "dup", seeds=[82], protocol="paper", echo=lines.append)
    assert "paper protocol: dropped 7 duplicate samples" in lines[0]
    ref = _run(world, tmp_path / "ref", seeds=[82], protocol="paper").result.runs
    got = rep.result.runs
    assert got.n_scored.tolist() == ref.n_scored.tolist()
    np.testing.assert_allclose(got.oa, ref.oa)
    # the clean protocol keeps every sample as given
    clean = _run(doubled, tmp_path / "clean", seeds=[82]).result.runs
    assert clean.set_index("target").n_scored["BEL"] == ref.set_index("target").n_scored["BEL"] + 7


def test_shift_averaging_with_prior_adaptation(world, tmp_path) -> None:
    from cropglobe.evaluate.adapt import adapt_posteriors, estimate_target_prior
    from cropglobe.evaluate.metrics import score_transfer
    from cropglobe.models.folder import load_model, shift_averaged_proba

    kw = {"methods": ["tempcnn"], "seeds": [82], "targets": ["BEL", "USA"], "epochs": 1}
    _run(world, tmp_path / "exp", tta=[-10, 0, 10], **kw)  # first without prior adaptation
    lines: list[str] = []
    rep = _run(world, tmp_path / "exp", tta=[-10, 0, 10], adapt_prior=True, echo=lines.append, **kw)
    assert any("test-time shift averaging" in ln for ln in lines)  # tta_prior was missing
    runs = rep.result.runs
    assert set(runs.method) == {"tempcnn", "tempcnn+tta", "tempcnn+prior", "tempcnn+tta+prior"}
    from cropglobe.evaluate.transfer import collect_runs

    assert set(collect_runs(tmp_path / "exp").method) == set(runs.method)  # same row names
    run = tmp_path / "exp/runs/tempcnn/FRA/seed82"
    saved = json.loads((run / "metrics.json").read_text())["adapted"]["tta_prior"]["USA"]
    model, card = load_model(run / "model")
    usa = world.where(country="USA")
    proba = shift_averaged_proba(model, card, usa, [-10, 0, 10])
    prior, _ = estimate_target_prior(proba)
    model_classes = [world.classes.index(c) for c in card.classes]
    y = np.asarray(model_classes)[adapt_posteriors(proba, prior).argmax(axis=1)]
    expect = score_transfer(
        usa.labels, y, model_classes=model_classes, target="USA", classes=world.classes
    )
    assert saved["oa"] == pytest.approx(expect["oa"])
    assert saved["macro_f1"] == pytest.approx(expect["macro_f1"])
    assert saved["shifts"] == [-10.0, 0.0, 10.0]
    row = runs[(runs.method == "tempcnn+tta+prior") & (runs.target == "USA")]
    assert row.oa.item() == pytest.approx(expect["oa"])
    page = (tmp_path / "exp/report.html").read_text()
    assert "Rows METHOD+tta+prior" in page
    # shift-averaged probabilities are not saved: their calibration is blank, not 0
    res = pd.read_csv(tmp_path / "exp/results.csv")
    shifted = res.method.str.contains("+tta", regex=False)
    assert res[shifted].ece_mean.isna().all() and res[shifted].ece_std.isna().all()
    assert res[~shifted].ece_mean.notna().all()
    assert "Rows METHOD+tta and METHOD+tta+prior are left blank" in page
    # nothing left to compute on a rerun
    lines.clear()
    _run(world, tmp_path / "exp", tta=[-10, 0, 10], adapt_prior=True, echo=lines.append, **kw)
    assert not any("test-time shift averaging" in ln for ln in lines)


def test_changed_targets_on_resume(world, tmp_path) -> None:
    out = tmp_path / "exp"
    _run(world, out, targets=["BEL", "USA"], seeds=[82])
    # fewer targets: the finished run is reused and the dropped target is not reported
    fewer = _run(world, out, targets=["BEL"], seeds=[82]).result.runs
    assert fewer.target.tolist() == ["BEL"]
    # a new target a classical run was never scored on: trained again, same scores as a
    # fresh experiment, and the target not asked for now (USA) is kept on disk
    lines: list[str] = []
    more = _run(world, out, targets=["BEL", "ARG"], seeds=[82], echo=lines.append).result.runs
    assert any(
        "train FRA, seed 82 again for ARG (classical runs keep no model)" in ln for ln in lines
    )
    ref = _run(world, tmp_path / "ref", targets=["BEL", "ARG"], seeds=[82]).result.runs
    cols = ["target", "oa", "macro_f1", "n_scored"]
    pd.testing.assert_frame_equal(
        more[cols].sort_values("target").reset_index(drop=True),
        ref[cols].sort_values("target").reset_index(drop=True),
    )
    m = json.loads((out / "runs/rf-median1d/FRA/seed82/metrics.json").read_text())
    assert set(m["targets"]) == {"BEL", "USA", "ARG"}
    pred = pd.read_parquet(out / "runs/rf-median1d/FRA/seed82/predictions.parquet")
    assert sorted(set(pred.target)) == ["ARG", "BEL", "USA"] and len(pred) == 3 * 80


def test_runs_that_cannot_score_new_targets_are_all_named(world, tmp_path) -> None:
    out = tmp_path / "exp"
    kw = {"methods": ["mlp-median1d"], "epochs": 1, "seeds": [82, 83]}
    _run(world, out, targets=["BEL"], **kw)
    with pytest.raises(ExperimentMismatchError, match=r"2 finished run\(s\) were not scored") as e:
        _run(world, out, targets=["BEL", "ARG"], **kw)
    assert "seed82" in str(e.value) and "seed83" in str(e.value)
    # and the refused plan is not saved as the experiment's configuration
    assert json.loads((out / "config.json").read_text())["config"]["targets"] == ["BEL"]


def test_neural_runs_are_not_continued_in_another_precision(world, tmp_path, monkeypatch) -> None:
    from cropglobe.models import inputs

    out = tmp_path / "exp"
    kw = {"methods": ["tempcnn"], "epochs": 1, "targets": ["BEL"]}
    monkeypatch.setattr(inputs, "native_bf16_cpu", lambda: False)
    _run(world, out, seeds=[82], **kw)
    m = json.loads((out / "runs/tempcnn/FRA/seed82/metrics.json").read_text())
    assert m["training"]["precision_used"] == "fp32"
    monkeypatch.setattr(inputs, "native_bf16_cpu", lambda: True)  # "auto" now means bf16
    _run(world, out, seeds=[82], **kw)  # nothing to train: reusing is fine
    with pytest.raises(ExperimentMismatchError, match=r"trained in fp32 .* pass --precision fp32"):
        _run(world, out, seeds=[82, 83], **kw)
    assert not (out / "runs/tempcnn/FRA/seed83").exists()
    with pytest.raises(ExperimentMismatchError, match=r"trained in fp32"):
        _run(world, out, seeds=[83], **kw)  # runs this call leaves out count too
    _run(world, out, seeds=[82, 83], precision="fp32", **kw)  # same computation: accepted
    m = json.loads((out / "runs/tempcnn/FRA/seed83/metrics.json").read_text())
    assert m["training"]["precision_used"] == "fp32"
    # a folder filled before the check: the report says its runs mix precisions
    m["training"]["precision_used"] = "bf16"
    (out / "runs/tempcnn/FRA/seed83/metrics.json").write_text(json.dumps(m))
    rep = _run(world, out, seeds=[82, 83], precision="fp32", **kw)
    assert any("different precisions (1 in bf16, 1 in fp32)" in w for w in rep.result.warnings)
    saved = json.loads((out / "results.json").read_text())["config"]
    assert saved["precision"] == "fp32" and saved["precision_used"] == ["bf16", "fp32"]


def test_new_target_is_scored_from_the_saved_model(world, tmp_path, monkeypatch) -> None:
    """A neural run asked for a target it was not scored on is scored from its saved model,
    not retrained, and the scores equal those of a run that had the target from the start."""
    kw = {"methods": ["tempcnn"], "seeds": [82], "epochs": 1}
    ref = _run(world, tmp_path / "ref", targets=["BEL", "USA", "ARG"], **kw).result.runs
    out = tmp_path / "exp"
    _run(world, out, targets=["BEL", "USA"], **kw)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(methods_mod.Method, "fit", no_training)
    lines: list[str] = []
    runs = _run(
        world, out, targets=["BEL", "USA", "ARG"], adapt_prior=True, echo=lines.append, **kw
    ).result.runs
    assert any("scoring the saved model on ARG" in ln for ln in lines)
    base = runs[runs.method == "tempcnn"].set_index("target")
    want = ref.set_index("target")
    for col in ("oa", "macro_f1", "n_scored", "n_excluded"):
        assert base[col].to_dict() == pytest.approx(want[col].to_dict())
    assert base.scenario["ARG"] == "cross-hemisphere"
    pred = pd.read_parquet(out / "runs/tempcnn/FRA/seed82/predictions.parquet")
    assert sorted(pred.target.value_counts().to_dict().items()) == [
        ("ARG", 80),
        ("BEL", 80),
        ("USA", 80),
    ]
    # prior adaptation covers the new target too
    assert set(runs[runs.method == "tempcnn+prior"].target) == {"BEL", "USA", "ARG"}
    # a third run has nothing left to score
    lines.clear()
    _run(world, out, targets=["BEL", "USA", "ARG"], adapt_prior=True, echo=lines.append, **kw)
    assert not any("scoring the saved model" in ln for ln in lines)


def test_damaged_saved_model_is_found_before_training(world, tmp_path) -> None:
    out = tmp_path / "exp"
    kw = {"methods": ["tempcnn"], "epochs": 1}
    _run(world, out, targets=["BEL"], seeds=[82], **kw)
    (out / "runs/tempcnn/FRA/seed82/model/model.safetensors").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"cannot be loaded to score it again .*delete"):
        _run(world, out, targets=["BEL", "USA"], seeds=[82, 83], **kw)
    assert not (out / "runs/tempcnn/FRA/seed83").exists()  # nothing trained


def test_plans_that_cannot_run_are_refused_before_training(world, tmp_path) -> None:
    from cropglobe.errors import LabelError, ParameterError

    with pytest.raises(ParameterError, match="source 'FRA' has no target"):
        _run(world, tmp_path / "a", targets=["FRA"])
    with pytest.raises(ParameterError, match="names no methods"):
        _run(world, tmp_path / "b", methods=[])
    labels = world.labels.copy()
    labels[world.meta["country"].to_numpy() == "BEL"] = world.classes.index("cotton")
    no_shared = dataclasses.replace(world, labels=labels)
    with pytest.raises(LabelError, match="target 'BEL' has no sample of a class a model"):
        _run(no_shared, tmp_path / "c", targets=["USA", "BEL"])
    assert not any(tmp_path.joinpath(d).exists() for d in ("a", "b", "c"))
    # the same through the CLI: one line, status 2
    data = tmp_path / "world"
    write_world(world, data)
    args = ["transfer", "--data", str(data), "--source", "FRA", "--targets", "FRA"]
    res = CliRunner().invoke(cli, [*args, "--methods", "rf-median1d", "-o", str(tmp_path / "d")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output


def test_named_twice_counts_once(world, tmp_path) -> None:
    assert parse_seeds("1-3,2") == [1, 2, 3]
    runs = _run(
        world, tmp_path / "exp", sources=["FRA", "FRA"], targets=["BEL", "BEL"], seeds=[82, 82]
    ).result.runs
    assert len(runs) == 1


def test_group_names_never_leave_the_output_folder(world, tmp_path) -> None:
    from cropglobe.evaluate.transfer import collect_runs

    assert safe_name("FRA") == "FRA" and safe_name("cropnet-aug+tta") == "cropnet-aug+tta"
    assert safe_name("São Paulo") == "São Paulo"  # folders of earlier versions stay valid
    assert safe_name("a/b") != safe_name("a_b") and "/" not in safe_name("a/b")
    assert safe_name("..") not in ("..", ".") and safe_name("..").startswith("_-")

    meta = world.meta.copy()
    meta["region"] = meta["country"].map({"FRA": "../up", "BEL": "a/b"}).fillna("rest")
    ss = dataclasses.replace(world, meta=meta)
    rep = _run(
        ss, tmp_path / "exp", sources=["../up"], targets=["a/b"], seeds=[82], group_by="region"
    )
    runs_dir = tmp_path / "exp" / "runs" / "rf-median1d"
    assert [p.name for p in runs_dir.iterdir()] == [safe_name("../up")]
    collected = collect_runs(tmp_path / "exp")
    assert collected[["source", "target"]].values.tolist() == [["../up", "a/b"]]
    assert rep.result.runs.oa.tolist() == collected.oa.tolist()


def test_missing_country_file_is_named(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    args = ["transfer", "--data", str(data), "--source", "FRA", "--targets", "GBR"]
    res = CliRunner().invoke(cli, [*args, "--methods", "rf-median1d", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert line.startswith("Error: ") and len(line.splitlines()) == 1
    assert "for_CropNet/median_S2_GBR_month1-12_day5.npz: no such file" in line
    assert "countries with files: ARG, BEL, FRA, USA" in line and not (tmp_path / "o").exists()


def test_damaged_run_is_named_with_its_fix(world, tmp_path) -> None:
    _run(world, tmp_path / "exp", seeds=[82])
    done = tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json"
    done.write_text("{not json")
    with pytest.raises(DataFormatError, match=r"seed82/metrics\.json is damaged.*delete the run"):
        _run(world, tmp_path / "exp", seeds=[82])
    assert done.read_text() == "{not json"  # left for the user to look at


def test_country_whose_file_holds_no_usable_sample_is_named(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    path = data / "for_CropNet" / "median_S2_BEL_month1-12_day5.npz"
    with np.load(path) as z:
        members = {k: z[k] for k in z.files}
    members["fea"] = np.full_like(members["fea"], np.nan)
    np.savez(path, **members)
    args = ["transfer", "--data", str(data), "--source", "FRA", "--targets", "BEL"]
    res = CliRunner().invoke(cli, [*args, "--methods", "rf-median1d", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "median_S2_BEL_month1-12_day5.npz: none of its samples has observations" in res.output


def test_epoch_progress_says_how_long_is_left(world, tmp_path) -> None:
    import re

    from cropglobe.evaluate.transfer import _minutes

    lines: list[str] = []
    _run(world, tmp_path / "exp", methods=["tempcnn"], epochs=5, seeds=[1], echo=lines.append)
    epochs = [ln for ln in lines if "val macro-F1" in ln]
    assert re.search(r"epoch   1/5 .*\(\d+ s, ~\d+ s left\)$", epochs[0])
    assert re.search(r"epoch   5/5 .*\(\d+ s\)$", epochs[-1])  # the last: nothing left
    assert (_minutes(42.4), _minutes(119.0), _minutes(210.0)) == ("42 s", "119 s", "3.5 min")


# ---------------------------------------------------------------------- found in review
def test_seeds_outside_what_the_generators_take_are_refused() -> None:
    assert parse_seeds("0,4294967295") == [0, 4294967295]
    with pytest.raises(DataFormatError, match="above 4294967295"):
        parse_seeds("4294967296")
    with pytest.raises(DataFormatError, match="names 100000000 seeds"):
        parse_seeds("1-100000000")
    with pytest.raises(DataFormatError, match="name 20000 seeds"):
        parse_seeds("0-9999,10000-19999")


def test_region_grouping_keeps_country_rules_and_scenarios(world, tmp_path) -> None:
    from cropglobe.evaluate.metrics import score_transfer

    rep = _run(
        world,
        tmp_path / "exp",
        group_by="region",
        sources=["USA-R1"],
        targets=["USA-R2", "FRA-R1", "ARG-R1"],
        seeds=[82],
    )
    runs = rep.result.runs.set_index("target")
    assert runs.loc["USA-R2", "scenario"] == "cross-region"  # one country
    assert runs.loc["FRA-R1", "scenario"] == "cross-continent"
    assert runs.loc["ARG-R1", "scenario"] == "cross-hemisphere"
    pred = pd.read_parquet(tmp_path / "exp/runs/rf-median1d/USA-R1/seed82/predictions.parquet")
    arg = pred[pred.target == "ARG-R1"]
    model_classes = sorted(set(world.labels[world.meta.region.to_numpy() == "USA-R1"]))
    expected = score_transfer(
        arg.y_true.to_numpy(),
        arg.y_pred.to_numpy(),
        model_classes=model_classes,
        target="ARG",  # wheat predictions count as "other" in Argentina
        classes=world.classes,
    )
    assert runs.loc["ARG-R1", "oa"] == pytest.approx(expected["oa"])
    plain = score_transfer(
        arg.y_true.to_numpy(),
        arg.y_pred.to_numpy(),
        model_classes=model_classes,
        classes=world.classes,
    )
    assert (arg.y_pred == world.classes.index("wheat")).any() and plain["oa"] != expected["oa"]


def test_country_missing_from_the_table_is_tagged_unknown(world, tmp_path) -> None:
    meta = world.meta.copy()
    meta["country"] = meta["country"].replace({"BEL": "XYZ"})
    renamed = dataclasses.replace(world, meta=meta)
    rep = _run(renamed, tmp_path / "exp", targets=["XYZ", "USA"], seeds=[82])
    runs = rep.result.runs.set_index("target")
    assert runs.loc["XYZ", "scenario"] == "unknown"
    assert runs.loc["USA", "scenario"] == "cross-continent"
    assert any("XYZ are not in cropglobe's country table" in w for w in rep.result.warnings)
    assert "XYZ are not in cropglobe" in rep.report.read_text()


def test_full_matrix_leaves_out_what_cannot_run(world, tmp_path) -> None:
    lines: list[str] = []
    rep = _run(
        world, tmp_path / "a", sources=["all"], targets=["BEL"], seeds=[82], echo=lines.append
    )
    assert sorted(set(rep.result.runs.source)) == ["ARG", "FRA", "USA"]  # BEL: no target
    # without its "other" samples BEL shares no class with ARG (no corn/wheat left in ARG)
    keep = ~((world.meta.country.to_numpy() == "ARG") & np.isin(world.labels, [0, 6]))
    sub = world.subset(keep)
    rep = _run(sub, tmp_path / "b", sources=["all"], seeds=[82], echo=lines.append)
    pairs = set(zip(rep.result.runs.source, rep.result.runs.target, strict=True))
    assert ("ARG", "BEL") not in pairs and ("BEL", "ARG") not in pairs and ("FRA", "ARG") in pairs
    assert any("left out (no class in common): ARG → BEL, BEL → ARG" in ln for ln in lines)
    assert "Left out of the matrix: ARG → BEL, BEL → ARG" in rep.report.read_text()


def test_full_matrix_lists_as_left_out_only_pairs_of_its_sources(world, tmp_path) -> None:
    # BEL keeps only its wheat: no source (one class), and ARG holds no wheat
    countries = world.meta.country.to_numpy()
    keep = (countries != "BEL") | (world.labels == world.classes.index("wheat"))
    lines: list[str] = []
    rep = _run(world.subset(keep), tmp_path / "a", sources=["all"], targets=None, seeds=[82],
               echo=lines.append)  # fmt: skip
    assert sorted(set(rep.result.runs.source)) == ["ARG", "FRA", "USA"]
    # BEL → ARG was never to run (BEL is no source): only ARG → BEL is left out
    assert [ln for ln in lines if ln.startswith("left out")] == [
        "left out (no class in common): ARG → BEL"
    ]
    assert "not used as sources (under 2 classes, or no target): BEL" in lines
    saved = json.loads((tmp_path / "a/config.json").read_text())
    assert saved["config"]["skip_pairs"] == [["ARG", "BEL"]]


def test_full_matrix_without_a_source_fails_in_one_line(world, tmp_path) -> None:
    # one group per crop: every group holds one class, so none can be a source
    meta = world.meta.copy()
    meta["crop"] = [world.classes[i] for i in world.labels]
    by_crop = dataclasses.replace(world, meta=meta)
    lines: list[str] = []
    with pytest.raises(ParameterError, match="--source all leaves no source"):
        _run(by_crop, tmp_path / "a", sources=["all"], targets=None, group_by="crop",
             echo=lines.append)  # fmt: skip
    assert not lines  # no list of the pairs of sources that are none, before the error
    by_crop.save(tmp_path / "crops.npz")
    args = ["transfer", "--data", str(tmp_path / "crops.npz"), "--source", "all"]
    args += ["--group-by", "crop", "--methods", "rf-median1d", "-o", str(tmp_path / "b")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "b").exists()


def test_group_by_a_misspelt_column_names_the_nearest(world, tmp_path) -> None:
    with pytest.raises(DataFormatError) as err:
        _run(world, tmp_path / "a", group_by="regoin")
    assert str(err.value).startswith(
        "data has no metadata column 'regoin' to group by (did you mean 'region'?); give one "
        "of its columns (--group-by): sample_id, country, region, year"
    )


def test_groups_observed_in_different_years_are_said_to_be_so(world, tmp_path) -> None:
    meta = world.meta.copy()  # CAWa-like: each region sampled in its own year(s)
    meta["year"] = meta["region"].str[-2:].map({"R1": 2015, "R2": 2016, "R3": 2016})
    meta.loc[meta.region == "FRA-R1", "year"] = 2016
    years = dataclasses.replace(world, meta=meta)
    plan = dict(group_by="region", sources=["FRA-R1"], targets=["BEL-R1", "BEL-R2"], seeds=[82])
    rep = _run(years, tmp_path / "a", **plan)
    note = [w for w in rep.result.warnings if "different years" in w]
    assert note == [
        "Groups by 'region' were observed in different years (BEL-R1: 2015; BEL-R2: 2016; "
        "FRA-R1: 2016): a pair of them is a transfer across years as well as across region "
        "values, which its scenario tag does not say. To compare them in one year, keep only "
        "its samples (--where year=2016 on the command line, SeriesSet.where(year=2016) in "
        "Python)."
    ]
    assert html.escape(note[0]) in rep.report.read_text()
    # no year shared by two groups: no selection to suggest
    apart = _run(years, tmp_path / "d", **{**plan, "targets": ["BEL-R1"]})
    said = [w for w in apart.result.warnings if "different years" in w]
    assert len(said) == 1 and said[0].endswith(
        "No year holds two of them, so these data cannot tell the change of region from the "
        "change of year."
    )
    # one year for every group used (or groups by year): nothing to say
    same = _run(years, tmp_path / "b", **{**plan, "targets": ["BEL-R2"]})
    assert not any("different years" in w for w in same.result.warnings)
    by_year = _run(years, tmp_path / "c", group_by="year", sources=["2015"], targets=["2016"],
                   seeds=[82])  # fmt: skip
    assert not any("different years" in w for w in by_year.result.warnings)


def test_a_group_added_to_the_data_leaves_finished_runs_valid(world, tmp_path) -> None:
    countries = world.meta.country.to_numpy()
    without_usa = world.subset(countries != "USA")
    first = _run(without_usa, tmp_path / "exp", targets=["BEL"], seeds=[82])
    done = tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json"
    stamp = done.stat().st_mtime_ns
    again = _run(world, tmp_path / "exp", targets=["BEL"], seeds=[82])  # USA's file added
    assert done.stat().st_mtime_ns == stamp  # reused, not retrained
    pd.testing.assert_frame_equal(first.result.runs, again.result.runs)
    saved = json.loads((tmp_path / "exp/config.json").read_text())
    assert set(saved["identity"]["group_fingerprints"]) == {"FRA", "BEL"}
    changed = world.values.copy()
    changed[countries == "FRA"] *= 1.01
    with pytest.raises(ExperimentMismatchError, match=r"differs in \['data of FRA'\]"):
        _run(dataclasses.replace(world, values=changed), tmp_path / "exp", targets=["BEL"])


def test_config_of_a_folder_without_finished_runs_is_replaced(world, tmp_path) -> None:
    out = tmp_path / "exp"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"identity": {"epochs": 5, "lr": 0.5}}))
    _run(world, out, seeds=[82], targets=["BEL"])  # a first try stopped before any run ended
    assert json.loads((out / "config.json").read_text())["identity"]["epochs"] == 50
    (out / "config.json").write_text("[1, 2]")
    with pytest.raises(ExperimentMismatchError, match=r"config\.json is damaged"):
        _run(world, out, seeds=[82], targets=["BEL"])  # now it has a finished run to protect


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: {"targets": {}},
        lambda m: {**m, "targets": []},
        lambda m: {k: v for k, v in m.items() if k != "model_classes"},
        lambda m: {**m, "targets": {"BEL": {"oa": 0.5}}},
        lambda m: {**m, "adapted": {"prior": {"BEL": {}}}},
    ],
)
def test_run_metrics_of_the_wrong_shape_are_damaged(world, tmp_path, damage) -> None:
    _run(world, tmp_path / "exp", seeds=[82], targets=["BEL"])
    done = tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json"
    done.write_text(json.dumps(damage(json.loads(done.read_text()))))
    with pytest.raises(DataFormatError, match=r"seed82/metrics\.json is damaged.*delete the run"):
        _run(world, tmp_path / "exp", seeds=[82], targets=["BEL"])


def test_report_keeps_only_its_own_figures(world, tmp_path) -> None:
    _run(world, tmp_path / "exp", methods=["rf-median1d", "rf-harmonic"], seeds=[82])
    figures = tmp_path / "exp/figures"
    assert (figures / "matrix_oa.png").exists()
    before = {p.name for p in figures.glob("*.png")}
    _run(world, tmp_path / "exp", methods=["rf-median1d"], seeds=[82], targets=["BEL"])
    names = {p.name for p in figures.glob("*.png")}
    assert "matrix_oa.png" in names and names < before
    assert not any("USA" in n or "harmonic" in n for n in names)
    page = (tmp_path / "exp/report.html").read_text()
    assert page.count("<img") == len(names)


def test_cli_list_options_and_empty_values(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    base = ["transfer", "--data", str(data), "--methods", "rf-median1d", "--seeds", "1", "-q"]
    runner = CliRunner()
    res = runner.invoke(
        cli, [*base, "--source", "FRA", "BEL", "--targets", "USA", "-o", str(tmp_path / "a")]
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "a/config.json").read_text())["config"]
    assert saved["sources"] == ["FRA", "BEL"] and saved["targets"] == ["USA"]
    for args, message in (
        (["BEL", "--source", "FRA", "--targets", "USA"], "unexpected arguments ['BEL']"),
        (["--source", "FRA", "--targets", ""], "--targets names no group"),
        (["--source", "FRA", "--targets", "--lr", "0.1"], "--targets names no group before --lr"),
        (["--source", "--targets", "BEL"], "--source names no group before --targets"),
        (["--source", "FRA", "--tta-shifts", ""], "not a comma-separated list of days"),
        (["--source", "FRA", "--seeds", "4294967296"], "above 4294967295"),
        (["--source", "FRA", "--lr", "nan"], "'nan' is not a finite number"),
        (["--source", "FRA", "--window", "300-100"], "'300-100' ends before it starts"),
        (["--source", "FRA", "--window", "121-121"], "'121-121' ends before it starts"),
    ):
        res = runner.invoke(cli, [*base, *args, "-o", str(tmp_path / "b")])
        assert res.exit_code == 2 and message in res.output, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
    res = runner.invoke(cli, [*base, "--source", "FRA", "-o", ""])
    assert res.exit_code == 2 and "'--output': is empty" in res.output, res.output
    empty = data / "for_CropNet" / "median_S2_BEL_month1-12_day5.npz"
    empty.write_bytes(b"")
    res = runner.invoke(
        cli, [*base, "--source", "FRA", "--targets", "USA", "-o", str(tmp_path / "c")]
    )
    assert res.exit_code == 2 and "not a readable .npz archive" in res.output, res.output


def test_config_saved_with_a_whole_data_fingerprint_still_resumes(world, tmp_path) -> None:
    _run(world, tmp_path / "exp", seeds=[82], targets=["BEL"])
    path = tmp_path / "exp/config.json"
    saved = json.loads(path.read_text())
    del saved["identity"]["group_fingerprints"]  # as configs were written before
    saved["identity"]["data_fingerprint"] = world.fingerprint()
    path.write_text(json.dumps(saved))
    _run(world, tmp_path / "exp", seeds=[82], targets=["BEL"])
    assert set(json.loads(path.read_text())["identity"]["group_fingerprints"]) == {"FRA", "BEL"}
    saved["identity"]["data_fingerprint"] = "0" * 64
    path.write_text(json.dumps(saved))
    with pytest.raises(ExperimentMismatchError, match=r"differs in \['data_fingerprint'\]"):
        _run(world, tmp_path / "exp", seeds=[82], targets=["BEL"])


def test_within_on_a_source_too_small_for_a_hold_out(world, tmp_path) -> None:
    countries = world.meta.country.to_numpy()
    tiny = world.subset((countries != "FRA") | (np.cumsum(countries == "FRA") <= 3))
    with pytest.raises(LabelError, match="hold-out of FRA drawn with seed 82 holds 0 samples"):
        _run(tiny, tmp_path / "exp", seeds=[82], targets=["BEL"], within=True)


def test_unavailable_device_fails_before_anything_is_written(world, tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU; the check is for one without")
    with pytest.raises(CropGlobeError, match="no CUDA GPU is available"):
        _run(world, tmp_path / "exp", methods=["tempcnn"], device="cuda", seeds=[82])
    assert not (tmp_path / "exp").exists()
    _run(world, tmp_path / "rf", device="cuda", seeds=[82], targets=["BEL"])  # no neural method


def test_paper_quirks_are_cropnets_only(world, tmp_path) -> None:
    """--protocol paper trains CropNet as the release's CropNet script (all of the source,
    validated on itself); its other neural baselines keep a held-out split."""
    rep = _run(
        world,
        tmp_path / "p",
        methods=["cropnet", "mlp-median1d"],
        seeds=[82],
        targets=["BEL"],
        protocol="paper",
        epochs=1,
        batch_size=64,
    )
    n_train = {}
    for method in ("cropnet", "mlp-median1d"):
        m = json.loads((tmp_path / f"p/runs/{method}/FRA/seed82/metrics.json").read_text())
        n_train[method] = (m["n_train"], m["training"]["n_val"])
    assert n_train["cropnet"][0] == n_train["cropnet"][1]  # validated on all its samples
    n, n_val = n_train["mlp-median1d"]
    assert 0.15 * n < n_val < 0.25 * n
    assert len(rep.result.runs) == 2
    # a temperature only where the validation samples were held out of training
    cropnet = json.loads((tmp_path / "p/runs/cropnet/FRA/seed82/metrics.json").read_text())
    assert cropnet["temperature"] is None
    assert cropnet["temperature_fit"]["reason"].startswith("paper protocol")
    mlp = json.loads((tmp_path / "p/runs/mlp-median1d/FRA/seed82/metrics.json").read_text())
    assert mlp["temperature"] > 0 and mlp["temperature_fit"]["n_val"] == n_val
    runs = rep.result.runs.set_index("method")
    assert np.isnan(runs.loc["cropnet", "ece_ts"])
    assert np.isfinite(runs.loc["mlp-median1d", "ece_ts"])


def test_model_options_reach_the_network(world, tmp_path) -> None:
    from cropglobe.errors import ModelError, ParameterError
    from cropglobe.models import load_model

    kw = dict(methods=["cropnet"], seeds=[82], targets=["BEL"], epochs=1, batch_size=64)
    _run(world, tmp_path / "w", model_options={"cropnet": {"width": 16}}, **kw)
    model, _ = load_model(tmp_path / "w/runs/cropnet/FRA/seed82/model")
    assert model.config["width"] == 16 and model.head.in_features == 16
    saved = json.loads((tmp_path / "w/config.json").read_text())["identity"]
    assert saved["model_options"] == {"cropnet": {"width": 16}}
    # another width is another experiment
    with pytest.raises(ExperimentMismatchError, match="model_options"):
        _run(world, tmp_path / "w", model_options={"cropnet": {"width": 32}}, **kw)
    with pytest.raises(ParameterError, match="neural model families"):
        _run(world, tmp_path / "x", model_options={"rf": {"n_estimators": 3}}, **kw)
    # the same for a classical model a method of the experiment uses, without a warning first
    with pytest.raises(ParameterError, match="'random_forest': only neural model families"):
        _run(world, tmp_path / "x", model_options={"random_forest": {"n_estimators": 3}},
             **{**kw, "methods": ["rf-median1d"]})  # fmt: skip
    with pytest.raises(ModelError, match="bad hyperparameters for model 'cropnet'"):
        _run(world, tmp_path / "y", model_options={"cropnet": {"widht": 16}}, **kw)
    assert not (tmp_path / "y").exists()  # refused before anything is written
    base = ["transfer", "--data", str(tmp_path / "world"), "--source", "FRA", "--targets", "BEL"]
    write_world(world, tmp_path / "world")
    res = CliRunner().invoke(
        cli, [*base, "--methods", "cropnet", "--model-option", "cropnet.width", "-o", "z"]
    )
    assert res.exit_code == 2 and "is not MODEL.NAME=VALUE" in res.output, res.output
    res = CliRunner().invoke(
        cli,
        [*base, "--methods", "cropnet", "--seeds", "82", "--epochs", "1",
         "--model-option", "cropnet.width=8", "-q", "-o", str(tmp_path / "cli")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "cli/config.json").read_text())["identity"]
    assert saved["model_options"] == {"cropnet": {"width": 8}}


def test_within_leaves_the_transfer_scores_unchanged(world, tmp_path) -> None:
    plain = _run(world, tmp_path / "a", targets=["BEL", "USA"]).result.runs
    within = _run(world, tmp_path / "b", targets=["BEL", "USA"], within=True).result.runs
    cols = ["source", "target", "seed", "oa", "macro_f1", "n_scored"]
    transfers = within[within.target != "FRA"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(transfers, plain[cols].reset_index(drop=True))
    m = json.loads((tmp_path / "b/runs/rf-median1d/FRA/seed82/metrics.json").read_text())
    n_fra = int((world.meta.country == "FRA").sum())
    assert m["n_train"] == n_fra  # the transfer model saw the whole source
    assert (
        m["within_n_train"] + m["targets"]["FRA"]["n_scored"] + m["targets"]["FRA"]["n_excluded"]
        == n_fra
    )  # the hold-out model saw the rest
    assert m["targets"]["FRA"]["scenario"] == "within-country"


def test_within_hold_out_is_scaled_by_its_own_models_temperature(world, tmp_path) -> None:
    from cropglobe.evaluate.calibration import apply_temperature, score_calibration

    kw = {"methods": ["tempcnn"], "seeds": [82], "targets": ["BEL"], "epochs": 1}
    runs = _run(world, tmp_path / "exp", within=True, **kw).result.runs.set_index("target")
    run = tmp_path / "exp/runs/tempcnn/FRA/seed82"
    m = json.loads((run / "metrics.json").read_text())
    t, t_within = m["temperature"], m["within_temperature"]
    assert t > 0 and t_within > 0 and m["temperature_fit"]["within"]["n_val"] > 0
    pred = pd.read_parquet(run / "predictions.parquet")
    model_classes = [world.classes.index(c) for c in m["model_classes"]]
    for target, temp in (("BEL", t), ("FRA", t_within)):
        rows = pred[pred.target == target]
        p = rows[[f"p_{c}" for c in world.classes]].to_numpy(dtype=np.float64)
        s = score_calibration(
            rows.y_true, apply_temperature(p, temp), y_pred=rows.y_pred,
            model_classes=model_classes, target=target, classes=world.classes,
        )  # fmt: skip
        assert runs.loc[target, "ece_ts"] == pytest.approx(s["ece"], abs=1e-12)
        assert runs.loc[target, "temperature"] == pytest.approx(temp)


def test_scenario_tags_follow_the_country_table_not_the_saved_runs(world, tmp_path) -> None:
    _run(world, tmp_path / "exp", methods=["rf-median1d", "rf-harmonic"])
    path = tmp_path / "exp/runs/rf-median1d/FRA/seed83/metrics.json"
    m = json.loads(path.read_text())
    m["targets"]["BEL"]["scenario"] = "cross-continent"  # as an older country table said
    path.write_text(json.dumps(m))
    rep = _run(world, tmp_path / "exp", methods=["rf-median1d", "rf-harmonic"])
    runs = rep.result.runs
    assert set(runs[runs.target == "BEL"].scenario) == {"cross-country"}
    assert rep.report.exists()


def test_a_group_of_several_countries_is_collapsed_sample_by_sample(world, tmp_path) -> None:
    from cropglobe.evaluate.metrics import score_transfer

    meta = world.meta.copy()
    meta["block"] = np.where(meta.country.isin(["BEL", "ARG"]), "BEL+ARG", meta.country)
    blocks = dataclasses.replace(world, meta=meta)
    rep = _run(blocks, tmp_path / "exp", group_by="block", targets=["BEL+ARG", "USA"], seeds=[82])
    runs = rep.result.runs.set_index("target")
    # FRA's nearest in the block is BEL (cross-country), ARG's is cross-hemisphere
    assert runs.loc["BEL+ARG", "scenario"] == "mixed"
    assert runs.loc["USA", "scenario"] == "cross-continent"
    pred = pd.read_parquet(tmp_path / "exp/runs/rf-median1d/FRA/seed82/predictions.parquet")
    block = pred[pred.target == "BEL+ARG"]
    country = blocks.meta.set_index("sample_id").loc[block.sample_id, "country"].to_numpy()
    model_classes = sorted(set(world.labels[world.meta.country.to_numpy() == "FRA"]))
    expected = score_transfer(
        block.y_true.to_numpy(),
        block.y_pred.to_numpy(),
        model_classes=model_classes,
        target=country,
        classes=world.classes,
    )
    assert runs.loc["BEL+ARG", "oa"] == pytest.approx(expected["oa"])
    arg = country == "ARG"
    wheat = world.classes.index("wheat")
    assert (block.y_pred.to_numpy()[arg] == wheat).any()  # so ARG's rule changes the score
    plain = score_transfer(
        block.y_true.to_numpy(),
        block.y_pred.to_numpy(),
        model_classes=model_classes,
        classes=world.classes,
    )
    assert plain["oa"] != expected["oa"]
    # a run saved by an earlier cropglobe (no collapse in mixed groups) is rescored
    path = tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json"
    m = json.loads(path.read_text())
    del m["scoring"]
    m["targets"]["BEL+ARG"]["oa"] = plain["oa"]
    path.write_text(json.dumps(m))
    again = _run(blocks, tmp_path / "exp", group_by="block", targets=["BEL+ARG", "USA"], seeds=[82])
    assert again.result.runs.set_index("target").loc["BEL+ARG", "oa"] == pytest.approx(
        expected["oa"]
    )
    assert json.loads(path.read_text())["scoring"] == 2
    from cropglobe.evaluate.transfer import collect_runs

    tags = collect_runs(tmp_path / "exp").set_index("target").scenario
    assert tags["BEL+ARG"] == "mixed" and tags["USA"] == "cross-continent"


def test_shift_averaging_skips_targets_no_longer_asked_for(world, tmp_path) -> None:
    kw = dict(methods=["cropnet"], seeds=[82], epochs=1, model_options={"cropnet": {"width": 8}})
    _run(world, tmp_path / "exp", targets=["BEL", "USA"], **kw)
    without_usa = world.subset(world.meta.country.to_numpy() != "USA")
    rep = _run(without_usa, tmp_path / "exp", targets=["BEL"], tta=[-10.0, 0.0, 10.0], **kw)
    assert set(rep.result.runs.method) == {"cropnet", "cropnet+tta"}
    assert set(rep.result.runs.target) == {"BEL"}
    # asked for again, USA gets its shift-averaged score
    rep = _run(world, tmp_path / "exp", targets=["BEL", "USA"], tta=[-10.0, 0.0, 10.0], **kw)
    tta = rep.result.runs[rep.result.runs.method == "cropnet+tta"]
    assert set(tta.target) == {"BEL", "USA"}


def test_collect_runs_keeps_what_the_experiment_last_asked_for(world, tmp_path) -> None:
    from cropglobe.evaluate.transfer import collect_runs

    _run(world, tmp_path / "exp", methods=["rf-median1d", "rf-harmonic"])
    rep = _run(world, tmp_path / "exp", methods=["rf-harmonic"], seeds=[83], targets=["BEL"])
    note = "3 finished run(s) in this folder are not in this report (methods rf-harmonic, "
    assert any(w.startswith(note + "rf-median1d; seed82, seed83)") for w in rep.result.warnings)
    planned = collect_runs(tmp_path / "exp")
    assert set(zip(planned.method, planned.seed, planned.target, strict=True)) == {
        ("rf-harmonic", 83, "BEL")
    }
    assert len(collect_runs(tmp_path / "exp", planned=False)) == 2 * 2 * 3


def test_a_folder_in_use_by_another_experiment_is_refused(world, tmp_path) -> None:
    import fcntl

    from cropglobe._fs import LOCK_NAME

    out = tmp_path / "exp"
    out.mkdir()
    with open(out / LOCK_NAME, "w") as fh:  # as another process running in it holds it
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write("4242")
        fh.flush()
        with pytest.raises(
            CropGlobeError, match=r"in use by another cropglobe transfer \(pid 4242\)"
        ):
            _run(world, out, seeds=[82])
        assert not (out / "config.json").exists()
    rep = _run(world, out, seeds=[82])  # released: the lock file is no foreign file
    assert rep.report.exists()


def test_samples_without_a_group_are_refused(world, tmp_path) -> None:
    meta = world.meta.copy()
    meta.loc[meta.index[:3], "country"] = np.nan
    holes = dataclasses.replace(world, meta=meta)
    with pytest.raises(DataFormatError, match=r"3 of 320 samples have no 'country' value"):
        _run(holes, tmp_path / "exp")
    assert not (tmp_path / "exp").exists()
    meta = world.meta.copy()
    meta["year"] = np.where(meta.country == "FRA", 2020.0, 2021.0)
    years = dataclasses.replace(world, meta=meta)
    rep = _run(
        years, tmp_path / "y", group_by="year", sources=["2020"], targets=["2021"], seeds=[82]
    )
    assert set(rep.result.runs.target) == {"2021"}


def test_integral_float_groups_are_named_as_integers_value_by_value() -> None:
    from cropglobe.evaluate.transfer import group_names, resolve_groups

    # one year that is not whole does not make the others 2020.0
    meta = pd.DataFrame({"year": [2020.0, 2021.0, 2019.5, 2020.0]})
    assert group_names(meta, "year").tolist() == ["2020", "2021", "2019.5", "2020"]
    mixed = pd.DataFrame({"year": np.array([2020.0, "2021", 2022, np.float32(2023)], object)})
    assert group_names(mixed, "year").tolist() == ["2020", "2021", "2022", "2023"]
    present = ["2019.5", "2020", "2021", "FRA"]
    assert resolve_groups([2020.0, "2021.0", "2019.5", "FRA", "all"], present) == [
        "2020", "2021", "2019.5", "FRA", "all"
    ]  # fmt: skip
    assert resolve_groups(["2020.0"], ["2020", "2020.0"]) == ["2020.0"]  # a text group


def test_float_year_groups_keep_their_runs_across_reruns(world, tmp_path) -> None:
    meta = world.meta.copy()
    years = {"FRA": 2020.0, "BEL": 2021.0, "USA": 2019.5, "ARG": 2022.0}
    meta["year"] = meta.country.map(years).astype(float)
    data = dataclasses.replace(world, meta=meta)
    out = tmp_path / "y"

    def run(data, sources):
        from cropglobe.evaluate.transfer import ExperimentConfig, run_transfer

        lines: list[str] = []
        config = ExperimentConfig(sources, [2021.0], ["rf-median1d"], [82], group_by="year")
        result = run_transfer(data, config, out, progress=lines.append)
        return result, [ln for ln in lines if ": train " in ln]

    # a year read as floats names its group 2020 even beside a year that is not whole; the
    # spelling 2020.0 (as a float column shows it) names it too
    first, trained = run(data, ["2020.0"])
    assert len(trained) == 1 and set(first.runs.source) == {"2020"}
    run_dir = out / "runs" / "rf-median1d" / "2020" / "seed82"
    assert (run_dir / "metrics.json").is_file()
    # without that year the names are the same: the finished run is reused
    no_usa = data.subset((meta.country != "USA").to_numpy())
    again, trained = run(no_usa, [2020.0])
    assert trained == [] and list(again.runs.oa) == list(first.runs.oa)
    # runs saved under the float spelling (an earlier cropglobe named groups so) are adopted
    legacy = out / "runs" / "rf-median1d" / "2020.0" / "seed82"
    legacy.parent.mkdir()
    run_dir.rename(legacy)
    run_dir.parent.rmdir()
    m = json.loads((legacy / "metrics.json").read_text())
    m["source"], m["targets"] = "2020.0", {"2021.0": m["targets"]["2021"]}
    (legacy / "metrics.json").write_text(json.dumps(m))
    pred = pd.read_parquet(legacy / "predictions.parquet")
    pred.assign(target="2021.0").to_parquet(legacy / "predictions.parquet", index=False)
    cfg = json.loads((out / "config.json").read_text())
    for part in (cfg["identity"], cfg["config"]):
        part["group_fingerprints"] = {f"{g}.0": v for g, v in part["group_fingerprints"].items()}
    cfg["config"]["sources"], cfg["config"]["targets"] = ["2020.0"], ["2021.0"]
    (out / "config.json").write_text(json.dumps(cfg))
    adopted, trained = run(no_usa, ["2020"])
    assert trained == [] and list(adopted.runs.oa) == list(first.runs.oa)
    assert not legacy.parent.exists() and json.loads((run_dir / "metrics.json").read_text())[
        "targets"
    ].keys() == {"2021"}
    assert set(pd.read_parquet(run_dir / "predictions.parquet").target) == {"2021"}
    assert set(json.loads((out / "config.json").read_text())["identity"]["group_fingerprints"]) == {
        "2020", "2021"
    }  # fmt: skip


def test_a_source_of_one_class_is_refused_before_training(world, tmp_path) -> None:
    labels = world.labels.copy()
    fra = world.meta.country.to_numpy() == "FRA"
    labels[fra] = world.classes.index("corn")
    one = dataclasses.replace(world, labels=labels)
    with pytest.raises(LabelError, match="source 'FRA' holds only samples of corn"):
        _run(one, tmp_path / "exp")
    assert not (tmp_path / "exp").exists()
    lines: list[str] = []
    rep = _run(one, tmp_path / "all", sources=["all"], seeds=[82], echo=lines.append)
    assert "FRA" not in set(rep.result.runs.source)
    assert any("not used as sources" in ln and "FRA" in ln for ln in lines)
    only = one.subset(fra)
    with pytest.raises(CropGlobeError, match="--source all leaves no source"):
        _run(only, tmp_path / "only", sources=["all"], targets=None)


def test_long_group_names_fit_the_file_system(world, tmp_path) -> None:
    meta = world.meta.copy()
    long = {c: c + "-" + "very long region name " * 14 for c in meta.country.unique()}
    meta["place"] = meta.country.map(long)
    named = dataclasses.replace(world, meta=meta)
    rep = _run(
        named,
        tmp_path / "exp",
        group_by="place",
        sources=[long["FRA"]],
        targets=[long["BEL"]],
        seeds=[82],
    )
    assert rep.report.exists()
    assert all(len(p.name.encode()) <= 230 for p in (tmp_path / "exp").rglob("*"))


def test_model_options_that_build_no_network_are_refused_first(world, tmp_path) -> None:
    from cropglobe.errors import ModelError, ParameterError

    kw = {"methods": ["cropnet"], "seeds": [82], "epochs": 1}
    with pytest.raises(ParameterError, match=r"cropnet.width=0 builds no working cropnet"):
        _run(world, tmp_path / "a", model_options={"cropnet": {"width": 0}}, **kw)
    with pytest.raises(
        ModelError, match=r"bad hyperparameters for model 'cropnet' \(width='abc'\)"
    ):
        _run(world, tmp_path / "a", model_options={"cropnet": {"width": "abc"}}, **kw)
    assert not (tmp_path / "a").exists()  # refused after the folder was locked: removed again


def test_neural_settings_do_not_bind_a_folder_of_forests(world, tmp_path) -> None:
    from cropglobe.evaluate.transfer import _with_defaults

    out = tmp_path / "exp"
    _run(world, out, seeds=[82], targets=["BEL"])

    def again(options, epochs=1):
        methods = ["rf-median1d", "cropnet"]
        return _run(
            world, out, methods=methods, model_options=options, seeds=[82], targets=["BEL"],
            epochs=epochs,
        )  # fmt: skip

    # forests read neither epochs nor CropNet's options: their runs are reused
    rep = again({"cropnet": {"width": 8}})
    assert set(rep.result.runs.method) == {"rf-median1d", "cropnet"}
    # now a CropNet run has finished: its settings count
    with pytest.raises(ExperimentMismatchError, match=r"differs in \['epochs'\]"):
        again({"cropnet": {"width": 8}}, epochs=2)
    with pytest.raises(ExperimentMismatchError, match=r"differs in \['model_options'\]") as err:
        again({"cropnet": {"width": 16}})
    # the old and the new value, so the user sees what to give to reuse the runs
    assert 'model_options: {"cropnet": {"width": 8}} then, {"cropnet": {"width": 16}} now' in str(
        err.value
    )
    # an option for a family with no finished run changes nothing
    again({"cropnet": {"width": 8}, "tempcnn": {"filters": 16}})
    # options are compared with the model's defaults filled in: the paper's width is no change
    assert _with_defaults("cropnet", {}) == _with_defaults("cropnet", {"width": 128})
    assert _with_defaults("cropnet", {}) != _with_defaults("cropnet", {"width": 64})


def test_a_group_column_that_changes_within_a_sample_is_explained(tmp_path) -> None:
    rows = [
        {"sample_id": s, "date": d, "B04": 100.0, "B08": 300.0, "label": "corn", "country": c}
        for s, c in (("a", "FRA"), ("b", "BEL"))
        for d in ("2023-05-01", "2023-06-01", "2023-07-01")
    ]
    rows[1]["country"] = "BEL"  # sample a moves country between two dates
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"column 'country' changes within sample 'a'"):
        run_experiment(
            path, sources=["FRA"], targets=["BEL"], methods=["rf-median1d"], seeds=[1],
            output=tmp_path / "exp",
        )  # fmt: skip


def test_within_runs_of_an_earlier_version_are_named(world, tmp_path) -> None:
    out = tmp_path / "exp"
    _run(world, out, targets=["BEL"], within=True, seeds=[82])
    path = out / "runs/rf-median1d/FRA/seed82/metrics.json"
    m = json.loads(path.read_text())
    del m["within_n_train"]  # as runs whose transfer model saw 80 % of the source
    path.write_text(json.dumps(m))
    with pytest.raises(
        ExperimentMismatchError, match=r"1 finished run\(s\) were made by an earlier"
    ):
        _run(world, out, targets=["BEL"], within=True, seeds=[82, 83])
    assert not (out / "runs/rf-median1d/FRA/seed83").exists()


def test_threads_of_one_process_do_not_share_a_folder(tmp_path) -> None:
    import threading

    from cropglobe._fs import folder_lock

    held, seen = threading.Event(), []

    def other() -> None:
        try:
            with folder_lock(tmp_path / "exp", "test"):
                seen.append("held")
        except CropGlobeError as exc:
            seen.append(str(exc))

    with folder_lock(tmp_path / "exp", "test"):
        with folder_lock(tmp_path / "exp", "test"):  # nested in one thread: fine
            held.set()
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(seen) == 1 and "is in use by another test" in seen[0]
    assert not (tmp_path / "exp").exists()  # created for the lock, and nothing written


def test_plausible_mistakes_get_hints_and_warnings(world, tmp_path, caplog) -> None:
    with pytest.raises(DataFormatError, match=r"group 'fra' .* but 'FRA' is; group names are case"):
        _run(world, tmp_path / "a", sources=["fra"])
    with pytest.raises(DataFormatError, match=r"is a value of 'region'; pass --group-by region"):
        _run(world, tmp_path / "a", sources=["FRA-R1"])
    assert not (tmp_path / "a").exists()
    with caplog.at_level("WARNING", logger="cropglobe.evaluate.experiment"):
        rep = _run(
            world,
            tmp_path / "b",
            targets=["FRA", "BEL"],
            seeds=[82],
            adapt_prior=True,
            window=(121, 130),
        )
    text = caplog.text
    assert "FRA named as target and source" in text
    assert "--adapt-prior and --tta rescore neural methods only" in text
    assert "window 121-130 keeps 2 time step(s)" in text
    assert set(rep.result.runs.target) == {"BEL"}


def test_report_curves_show_gaps_while_models_see_filled_series(
    tmp_path, monkeypatch, caplog
) -> None:
    import cropglobe.report.figures as figures
    from cropglobe.evaluate.experiment import _load_series, load_series

    rng = np.random.default_rng(0)
    rows = []
    for country, last in (("FRA", 12), ("BEL", 7)):  # Belgium observed January-July only
        for i in range(24):
            label = ("corn", "wheat")[i % 2]
            for m in range(1, last + 1):
                if country == "FRA" and m == 3:
                    continue  # one missing month inside the season: bridged on a monthly grid
                rows.append(
                    {
                        "sample_id": f"{country}{i}",
                        "date": f"2022-{m:02d}-15",
                        "B04": 500.0 + rng.normal(0, 5),
                        "B08": 1000.0 + (100 if label == "corn" else 50) * m,
                        "label": label,
                        "country": country,
                    }
                )
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    filled, observed, raw = _load_series(path)
    bel = (filled.meta["country"] == "BEL").to_numpy()
    assert raw is not None and raw.n_samples == filled.n_samples  # the table it was read from
    assert np.isnan(observed.values[bel][:, :, 7:]).all()
    assert not np.isnan(filled.values).any()  # July held over August-December for the models
    np.testing.assert_array_equal(filled.values[bel][:, :, 11], filled.values[bel][:, :, 6])
    assert filled.attrs["composite"]["fill"] is True
    assert filled.attrs["composite"]["max_gap_days"] == 62  # two 31-day steps (Jul, Aug)
    fra = ~bel
    assert np.isnan(observed.values[fra][:, :, 2]).all()
    c = filled.grid.centers
    share = (c[2] - c[1]) / (c[3] - c[1])  # March interpolated between February and April
    np.testing.assert_allclose(
        filled.values[fra][:, :, 2],
        (1 - share) * filled.values[fra][:, :, 1] + share * filled.values[fra][:, :, 3],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(load_series(path).values, filled.values)
    # the same as compositing with composite's own gap filling
    from cropglobe.composite import composite
    from cropglobe.io import read_dataset
    from cropglobe.summary import infer_grid

    raw = read_dataset(path)
    direct = composite(raw, infer_grid(raw), fill=True, allow_empty=True).drop_empty()
    np.testing.assert_array_equal(direct.values, filled.values)
    seen = {}

    def capture(ss, png, **kw):
        seen.update(figures.class_mean_curves(ss, group_by=kw["group_by"]))
        png.write_bytes(b"png")
        return png

    monkeypatch.setattr(figures, "plot_phenology", capture)
    run_experiment(
        path, sources=["FRA"], targets=["BEL"], methods=["rf-median1d"], seeds=[1],
        output=tmp_path / "exp", window=None, protocol="paper",
    )  # fmt: skip
    curve = seen["BEL"]["corn"][0]
    assert np.isnan(curve[7:]).all() and not np.isnan(curve[:7]).any()
    fra_curve = seen["FRA"]["corn"][0]  # March unobserved: a gap in the figure too
    assert np.isnan(fra_curve[2]) and not np.isnan(np.delete(fra_curve, 2)).any()
    # Belgium's August-December are held July values: said, with the days it never observed
    said = [r.getMessage() for r in caplog.records if "gap-filled, not observed" in r.message]
    assert said == [
        "BEL: 42% of its values in the models' window are gap-filled, not observed; steps "
        "observed in under half of its samples: days 213–365. Its scores rest on interpolated "
        "or held values; check the data's date range (cropglobe info) or narrow --window."
    ]
    page = (tmp_path / "exp" / "report.html").read_text()
    assert "BEL: 42% of its values in the models" in page


def test_summary_names_targets_scored_on_one_class(tmp_path) -> None:
    # Australia collapses every class a French model knows but one into "other"
    world = simulate_world(("FRA", "BEL", "AUS"), 60, random_state=2)
    said: list[str] = []
    rep = run_experiment(world, sources=["FRA"], targets=["BEL", "AUS"], methods=["rf-median1d"],
                         seeds=[1], output=tmp_path / "exp", echo=said.append)  # fmt: skip
    assert said[0] == f"experiment: 1 method × 1 source × 1 seed -> {tmp_path / 'exp'}"
    assert "epochs" not in said[1] and "window (121, 334)" in said[1]  # no neural settings
    assert rep.result.runs.set_index("target").loc["AUS", "n_classes_scored"] == 1
    assert "Left out above: FRA → AUS (only one class of the target could be scored" in (
        rep.summary_text
    )
    assert "AUS" not in rep.summary_text.split("Left out above")[0]
    # with Australia alone nothing is left out of the table, but the caveat is still printed
    only = run_experiment(world, sources=["FRA"], targets=["AUS"], methods=["rf-median1d"],
                          seeds=[1], output=tmp_path / "aus")  # fmt: skip
    assert "AUS" in only.summary_text and "Left out above" not in only.summary_text
    assert "only one class of the target could be scored" in only.summary_text


def test_transfer_on_chosen_bands(world, tmp_path) -> None:
    def fingerprints(out):
        return json.loads((out / "config.json").read_text())["identity"]["group_fingerprints"]

    rep = _run(world, tmp_path / "exp", targets=["BEL"], seeds=[1], bands=["B04", "B08", "B11"])
    _run(world, tmp_path / "all", targets=["BEL"], seeds=[1])
    assert len(rep.result.runs) == 1
    assert fingerprints(tmp_path / "exp")["FRA"] != fingerprints(tmp_path / "all")["FRA"]
    # other bands are other data: the folder refuses them
    with pytest.raises(ExperimentMismatchError):
        _run(world, tmp_path / "exp", targets=["BEL"], seeds=[1])


def _with_copies(world, country: str, n: int):
    """``world`` with the first ``n`` samples of ``country`` repeated (sample ids ``…-copy``),
    as a table holding a field twice."""
    first = np.flatnonzero(world.meta.country.to_numpy() == country)[:n]
    copies = world.subset(first)
    copies.meta["sample_id"] = copies.meta["sample_id"].astype(str) + "-copy"
    return world.concat([world, copies])


def test_within_holdout_keeps_identical_samples_on_one_side() -> None:
    from cropglobe.evaluate.transfer import within_holdout
    from cropglobe.series import SeriesSet, TimeGrid

    values = np.array([1, 2, 1, 3, 2, 1, np.nan, np.nan], np.float32).reshape(8, 1, 1)
    grid = TimeGrid.from_starts([1], end=10)
    ss = SeriesSet(values, ("NDVI",), grid, np.zeros(8, np.int64), ("a",))
    draw = np.random.default_rng(5).random(8) < 0.5
    first = [0, 1, 0, 3, 1, 0, 6, 6]  # each row's first identical row (NaN equals NaN)
    np.testing.assert_array_equal(within_holdout(ss, 5, fraction=0.5), draw[first])
    # without repeats, each sample is drawn on its own (the draw of runs saved before)
    distinct = ss.subset([0, 1, 3, 6])
    np.testing.assert_array_equal(
        within_holdout(distinct, 82), np.random.default_rng(82).random(4) < 0.2
    )


def test_within_never_scores_a_sample_whose_copy_it_trained_on(world, tmp_path) -> None:
    doubled = _with_copies(world, "FRA", 40)
    _run(doubled, tmp_path / "exp", targets=["BEL"], within=True, seeds=[82])
    pred = pd.read_parquet(tmp_path / "exp/runs/rf-median1d/FRA/seed82/predictions.parquet")
    held = set(pred.loc[pred.target == "FRA", "sample_id"].astype(str))
    fra = doubled.meta.sample_id[doubled.meta.country == "FRA"].astype(str)
    copied = [s.removesuffix("-copy") for s in fra if s.endswith("-copy")]
    split = [s for s in copied if (s in held) != (f"{s}-copy" in held)]
    assert split == []  # a pair is held out together or trained on together
    assert any(s in held for s in copied)  # some pairs are held out
    m = json.loads((tmp_path / "exp/runs/rf-median1d/FRA/seed82/metrics.json").read_text())
    assert m["within_holdout"] == 2
    assert m["within_n_train"] + len(held) == len(fra)


def test_within_runs_drawn_apart_from_their_copies_are_refused(world, tmp_path) -> None:
    doubled = _with_copies(world, "FRA", 40)
    for data, name in ((doubled, "copies"), (world, "plain")):
        _run(data, tmp_path / name, targets=["BEL"], within=True, seeds=[82])
        path = tmp_path / name / "runs/rf-median1d/FRA/seed82/metrics.json"
        m = json.loads(path.read_text())
        del m["within_holdout"]  # as a run of a cropglobe drawing each sample on its own
        path.write_text(json.dumps(m))
    with pytest.raises(
        ExperimentMismatchError, match=r"1 finished --within run\(s\) \(.*\) drew their source"
    ):
        _run(doubled, tmp_path / "copies", targets=["BEL"], within=True, seeds=[82, 83])
    assert not (tmp_path / "copies/runs/rf-median1d/FRA/seed83").exists()
    # a source without repeats drew the same hold-out then: its run is reused
    path = tmp_path / "plain/runs/rf-median1d/FRA/seed82/metrics.json"
    stamp = path.stat().st_mtime_ns
    _run(world, tmp_path / "plain", targets=["BEL"], within=True, seeds=[82])
    assert path.stat().st_mtime_ns == stamp


def test_group_names_of_another_spelling_get_the_right_hint(world, tmp_path) -> None:
    """A country's ISO2 code or name points at its ISO3 group (before any other column
    holding it, such as WorldCereal's country_original), and a misspelt group at the nearest
    one, with the groups present."""
    from cropglobe.workflow import country_alias, suggest_group

    groups = ["ARG", "BEL", "FRA", "USA"]
    assert country_alias("BE", groups) == "BEL"
    assert country_alias("France", groups) == "FRA" and country_alias("fr", groups) == "FRA"
    assert country_alias("DE", groups) is None and country_alias("Fergana", groups) is None
    data = world.subset(np.arange(world.n_samples) < 200)
    data.meta["country_original"] = data.meta["country"].map({"FRA": "FR", "BEL": "BE"})
    with pytest.raises(DataFormatError, match=r"did you mean 'BEL' \(Belgium\)\? Name the group"):
        suggest_group(data, "BE", ["BEL", "FRA"], "country")
    with pytest.raises(DataFormatError, match=r"did you mean 'FRA' \(France\)"):
        _run(world, tmp_path / "a", targets=["France"])
    data.meta["region"] = data.meta["country"].map({"FRA": "Samarkand", "BEL": "Fergana"})
    with pytest.raises(
        DataFormatError,
        match=r"'Samarkhand' is not in the data's 'region' column; did you mean 'Samarkand'\? "
        r"present: Fergana, Samarkand",
    ):
        suggest_group(data, "Samarkhand", ["Fergana", "Samarkand"], "region")
    suggest_group(data, "Tashkent", ["Fergana", "Samarkand"], "region")  # no near name
    suggest_group(data, "DEU", ["BEL", "FRA"], "country")  # a real country the data lacks
    suggest_group(data, "2019", ["2015", "2018"], "year")  # a year is no misspelt one
    assert not (tmp_path / "a").exists()


def test_real_worldcereal_iso2_target_points_at_iso3(shared_data, tmp_path) -> None:
    path = shared_data / "worldcereal" / "s2_monthly_long.parquet"
    res = CliRunner().invoke(
        cli,
        ["transfer", "--data", str(path), "--source", "CAN", "--targets", "BE",
         "--methods", "rf-median1d", "--seeds", "82", "-q", "-o", str(tmp_path / "x")],
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "did you mean 'BEL' (Belgium)?" in res.output and "country_original" not in res.output
    assert not (tmp_path / "x").exists()


def test_an_unaligned_southern_season_is_named_with_its_fix(tmp_path, caplog) -> None:
    # Argentina and Australia left on the calendar year: their crops peak in January-April,
    # outside the models' window; France's wheat just before it is no reason to warn
    world = simulate_world(("FRA", "ARG", "AUS"), 60, random_state=0, season_aligned_south=False)
    rep = run_experiment(world, sources=["FRA"], targets=["ARG", "AUS"], methods=["rf-median1d"],
                         seeds=[1], output=tmp_path / "exp")  # fmt: skip
    said = [r.getMessage() for r in caplog.records if "looks unaligned" in r.getMessage()]
    assert [m.split(":")[0] for m in said] == ["ARG", "AUS"]
    assert "Fix: rerun with --season ARG=07-01 (or --season auto)" in said[0]
    assert "Fix: rerun with --season AUS=07-01 (or --season auto)" in said[1]
    assert html.escape(said[0]) in rep.report.read_text()
    # the fix as given: no warning left, and the seasons are recorded
    write_world(world, tmp_path / "w")
    caplog.clear()
    fixed = run_experiment(tmp_path / "w", sources=["FRA"], targets=["ARG"],
                           methods=["rf-median1d"], seeds=[1], output=tmp_path / "fromfiles",
                           seasons={"ARG": "07-01"})  # fmt: skip
    assert not [r for r in caplog.records if "looks unaligned" in r.getMessage()]
    config = json.loads((tmp_path / "fromfiles/config.json").read_text())
    assert config["config"]["seasons"] == {"ARG": "07-01"} and "seasons" not in config["identity"]
    assert "Season-aligned: ARG on a season starting 07-01" in fixed.report.read_text()
    caplog.clear()
    aligned = simulate_world(("FRA", "ARG"), 60, random_state=0)  # rotated: no warning
    run_experiment(aligned, sources=["FRA"], targets=["ARG"], methods=["rf-median1d"], seeds=[1],
                   output=tmp_path / "ok")  # fmt: skip
    assert not [r for r in caplog.records if "looks unaligned" in r.getMessage()]


def test_where_selects_samples_before_grouping_and_decides_run_reuse(world, tmp_path) -> None:
    meta = world.meta.copy()  # years that span the countries' regions, as CAWa's years do
    meta["year"] = meta["region"].str[-2:].map({"R1": 2015, "R2": 2016, "R3": 2017})
    years = dataclasses.replace(world, meta=meta)
    plan = dict(group_by="year", sources=["2015"], targets=["2016"], seeds=[82])
    mixed = _run(years, tmp_path / "exp", **plan)
    note = [w for w in mixed.result.warnings if "mix" in w]
    assert len(note) == 1 and note[0].startswith(
        "Groups by 'year' mix regions (2015: ARG-R1, BEL-R1, FRA-R1, USA-R1; 2016: ARG-R2, "
        "BEL-R2, FRA-R2, USA-R2): each pair of such groups is tagged as one scenario"
    )
    # the same experiment on the French samples only: other rows in both groups, so the
    # runs trained on all four countries must not be reused
    fra = {"country": ["FRA"]}
    with pytest.raises(ExperimentMismatchError) as err:
        _run(years, tmp_path / "exp", **plan, where=fra)
    assert "differs in ['data of 2015', 'data of 2016']; the samples kept changed" in str(err.value)
    lines: list[str] = []
    rep = _run(years, tmp_path / "fra", **plan, where=fra, echo=lines.append)
    n_fra = int((meta.country == "FRA").sum())
    assert any(ln.endswith(f"where country=FRA ({n_fra} of {len(meta)} samples)") for ln in lines)
    assert not any("mix" in w for w in rep.result.warnings)  # one region a year now
    saved = json.loads((tmp_path / "fra/config.json").read_text())
    assert saved["config"]["where"] == fra and "where" not in saved["identity"]
    run = rep.result.runs.iloc[0]
    n_target = int(((meta.country == "FRA") & (meta.year == 2016)).sum())
    assert run.n_scored + run.n_excluded == n_target
    pred = pd.read_parquet(tmp_path / "fra/runs/rf-median1d/2015/seed82/predictions.parquet")
    assert pred.sample_id.str.startswith("FRA_").all() and len(pred) == n_target
    # another selection that keeps the same samples in each group: the runs are reused
    done = tmp_path / "fra/runs/rf-median1d/2015/seed82/metrics.json"
    stamp = done.stat().st_mtime_ns
    same = {"country": "FRA", "region": ["FRA-R1", "FRA-R2"]}
    again = _run(years, tmp_path / "fra", **plan, where=same)
    assert done.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(rep.result.runs, again.result.runs)
    saved = json.loads((tmp_path / "fra/config.json").read_text())["config"]
    assert saved["where"] == {"country": ["FRA"], "region": ["FRA-R1", "FRA-R2"]}


def test_transfer_cli_where(world, tmp_path) -> None:
    path = tmp_path / "world.npz"
    world.save(path)
    args = ["transfer", "--data", str(path), "--group-by", "region", "--source", "FRA-R1",
            "--targets", "FRA-R2", "--methods", "rf-median1d", "--seeds", "82"]  # fmt: skip
    runner = CliRunner()
    res = runner.invoke(cli, [*args, "--where", "country=FRA", "-o", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    n_fra = int((world.meta.country == "FRA").sum())
    assert f"where country=FRA ({n_fra} of {world.n_samples} samples)" in res.output
    config = json.loads((tmp_path / "exp/config.json").read_text())["config"]
    assert config["where"] == {"country": ["FRA"]}
    res = runner.invoke(cli, [*args, "--where", "country=FR", "-o", str(tmp_path / "b")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1] == (
        "Error: column 'country' holds no value 'FR' (did you mean 'FRA'?); its values: ARG, "
        "BEL, FRA, USA"
    )
    assert not (tmp_path / "b").exists()


def test_network_options_for_forests_only_are_said_to_change_nothing(world, tmp_path) -> None:
    """--epochs (or --lr …) with rf methods only was silently ignored; transfer says so, as it
    does for --model-option and --adapt-prior."""
    data = tmp_path / "world"
    write_world(world.where(country=["FRA", "BEL"]), data)
    res = CliRunner().invoke(cli, ["transfer", "--data", str(data), "--source", "FRA",
                                   "--targets", "BEL", "--methods", "rf-median1d",
                                   "--seeds", "1", "--epochs", "3", "-q",
                                   "-o", str(tmp_path / "exp")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (
        "--epochs applies to neural methods only, and none is asked for (rf-median1d); it "
        "changes nothing here"
    ) in res.output


def test_a_group_the_selection_removed_is_named_as_such(world, tmp_path) -> None:
    with pytest.raises(DataFormatError) as err:
        _run(world, tmp_path / "exp", where={"country": ["FRA", "BEL"]})
    assert str(err.value).startswith(
        "group 'USA' has no sample left after the selection where country=FRA,BEL; groups it "
        "keeps: BEL, FRA"
    )
    assert not (tmp_path / "exp").exists()


def test_long_plan_lines_are_cut_with_their_count() -> None:
    from cropglobe.evaluate.experiment import _names_text, _pairs_text

    assert _pairs_text([["A", "B"], ["C", "D"]]) == "A → B, C → D"
    names = [f"G{i}" for i in range(20)]
    assert _names_text(names) == ", ".join(names[:12]) + " … (20 in all)"
    assert _pairs_text([[n, "X"] for n in names]).endswith("G11 → X … (20 in all)")
