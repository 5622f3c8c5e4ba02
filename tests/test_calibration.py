"""Calibration measures against hand-computed answers, a plain-loop reference and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cropglobe.classes import CROPGLOBE_CLASSES
from cropglobe.errors import LabelError, ParameterError
from cropglobe.evaluate import aggregate_runs, score_transfer
from cropglobe.evaluate.calibration import (
    brier_score,
    calibration_inputs,
    collapse_proba,
    expected_calibration_error,
    merge_calibration,
    negative_log_likelihood,
    overconfidence,
    reliability_table,
    score_calibration,
)
from cropglobe.evaluate.scenarios import scenario

CORN, WHEAT, SUGARCANE, OTHER = 0, 3, 4, 6


def _binary(conf: float, n_right: int, n_wrong: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, every row confident ``conf`` in class 0; ``n_right`` of them are 0."""
    proba = np.tile([conf, 1.0 - conf], (n_right + n_wrong, 1))
    return np.array([0] * n_right + [1] * n_wrong), proba


def test_calibrated_and_overconfident_by_hand() -> None:
    # every sample 0.8 confident, 8 of 10 right: calibrated
    y, p = _binary(0.8, 8, 2)
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    assert overconfidence(y, p) == pytest.approx(0.0, abs=1e-12)
    # Brier: right rows 0.2² + 0.2², wrong rows 0.8² + 0.8²
    assert brier_score(y, p) == pytest.approx((8 * 0.08 + 2 * 1.28) / 10)
    assert negative_log_likelihood(y, p) == pytest.approx(
        -(8 * math.log(0.8) + 2 * math.log(0.2)) / 10
    )
    # certain of every prediction, 6 of 10 right: ECE 0.4, over-confident by 0.4
    y, p = _binary(1.0, 6, 4)
    assert expected_calibration_error(y, p) == pytest.approx(0.4)
    assert expected_calibration_error(y, p, binning="mass") == pytest.approx(0.4)
    assert overconfidence(y, p) == pytest.approx(0.4)
    assert brier_score(y, p) == pytest.approx(0.4 * 2.0)
    # a probability of 0 for the true class is clipped at 1e-12, not infinite
    assert negative_log_likelihood(y, p) == pytest.approx(0.4 * -math.log(1e-12))


def test_two_bins_by_hand() -> None:
    # 4 samples at 0.9 (bin 13 of 15), 3 right; 6 at 0.65 (bin 9), 5 right
    y9, p9 = _binary(0.9, 3, 1)
    y6, p6 = _binary(0.65, 5, 1)
    y, p = np.concatenate([y9, y6]), np.vstack([p9, p6])
    # 0.4 · |0.75 − 0.9| + 0.6 · |5/6 − 0.65|
    assert expected_calibration_error(y, p) == pytest.approx(0.4 * 0.15 + 0.6 * (5 / 6 - 0.65))
    # signed: mean confidence 0.75 against accuracy 0.8 — under-confident overall
    assert overconfidence(y, p) == pytest.approx(0.75 - 0.8)
    # equal mass with a bin per sample: the mean of |right − confidence|
    assert expected_calibration_error(y, p, binning="mass") == pytest.approx(
        (3 * 0.1 + 0.9 + 5 * 0.35 + 0.65) / 10
    )
    table = reliability_table(y, p)
    assert len(table) == 15 and table["count"].sum() == 10
    filled = table[table["count"] > 0].set_index("bin")
    assert filled.index.tolist() == [9, 13]
    assert filled.loc[13, "confidence"] == pytest.approx(0.9)
    assert filled.loc[13, "accuracy"] == pytest.approx(0.75)
    assert filled.loc[9, "accuracy"] == pytest.approx(5 / 6)
    assert filled.loc[9, "lower"] == pytest.approx(9 / 15) and filled.loc[9, "upper"] == (
        pytest.approx(10 / 15)
    )
    assert table["accuracy"].isna().sum() == 13  # empty bins: no accuracy, not 0


def test_brier_and_nll_three_classes_by_hand() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    y = np.array([0, 1])
    # (0.09 + 0.04 + 0.01) and (0.01 + 0.49 + 0.36)
    assert brier_score(y, p) == pytest.approx((0.14 + 0.86) / 2)
    assert negative_log_likelihood(y, p) == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)


def test_collapsed_probabilities_are_summed_into_other() -> None:
    # ARG maps no wheat: wheat's probability goes to "other", as a wheat prediction does
    p = np.zeros((3, 7))
    p[0, [CORN, WHEAT, OTHER]] = [0.42, 0.33, 0.25]  # predicted corn, truly other: wrong
    p[1, [CORN, WHEAT, OTHER]] = [0.18, 0.50, 0.32]  # predicted wheat -> other: right
    p[2, [SUGARCANE, OTHER]] = [0.9, 0.1]  # sugarcane: the model cannot output it
    y = np.array([OTHER, OTHER, SUGARCANE])
    model = [CORN, 1, WHEAT, OTHER]
    s = score_calibration(y, p, model_classes=model, target="ARG")
    assert s["n_scored"] == 2 and s["n_excluded"] == 1
    # the scored predictions are corn (0.42) and other (0.50 + 0.32): not the largest
    # collapsed probability for the first (other, 0.58), and not 0.32 for the second
    assert s["confidence"] == pytest.approx((0.42 + 0.82) / 2)
    assert s["ece"] == pytest.approx(0.5 * 0.42 + 0.5 * (1 - 0.82))
    assert s["overconfidence"] == pytest.approx((0.42 + 0.82) / 2 - 0.5)
    assert s["brier"] == pytest.approx((2 * 0.42**2 + 2 * 0.18**2) / 2)
    assert s["nll"] == pytest.approx(-(math.log(0.58) + math.log(0.82)) / 2)
    # the accuracy is the one the paper's scoring gives
    oa = score_transfer(y, p.argmax(axis=1), model_classes=model, target="ARG")["oa"]
    assert s["accuracy"] == pytest.approx(oa)
    # without the collapse (France maps wheat) the second prediction is wrong at 0.50
    s = score_calibration(y, p, model_classes=model, target="FRA")
    assert s["confidence"] == pytest.approx((0.42 + 0.50) / 2) and s["accuracy"] == 0.0
    # a target whose own labels hold wheat maps it: nothing is summed
    assert collapse_proba(p[:1], "ARG", mapped=[WHEAT]).tolist() == p[:1].tolist()
    # one country per sample: each by its own rules
    _, q, pred, _ = calibration_inputs(y[:2], p[:2], target=np.array(["ARG", "BEL"]))
    assert q[0, OTHER] == pytest.approx(0.58) and q[1, WHEAT] == pytest.approx(0.50)
    assert pred.tolist() == [CORN, WHEAT] and np.allclose(q.sum(axis=1), 1.0)


def _ece_loop(conf: np.ndarray, right: np.ndarray, n_bins: int = 15) -> float:
    """The textbook definition, one bin and one sample at a time."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        members = [
            i
            for i in range(len(conf))
            if (edges[b] < conf[i] <= edges[b + 1]) or (b == 0 and conf[i] == 0.0)
        ]
        if members:
            acc = sum(bool(right[i]) for i in members) / len(members)
            mean_conf = sum(conf[i] for i in members) / len(members)
            total += len(members) / len(conf) * abs(acc - mean_conf)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_ece_equals_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 400, 5
    logits = rng.normal(size=(n, k)) * rng.uniform(0.5, 4.0)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p[:20] = np.eye(k)[rng.integers(0, k, 20)]  # certain rows: confidence exactly 1
    y = np.where(rng.uniform(size=n) < 0.6, p.argmax(axis=1), rng.integers(0, k, n))
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    for bins in (1, 10, 15):
        assert expected_calibration_error(y, p, n_bins=bins) == pytest.approx(
            _ece_loop(conf, right, bins), abs=1e-12
        )
    table = reliability_table(y, p)
    for b in (0, 7, 14):
        lo, hi = table.loc[b, "lower"], table.loc[b, "upper"]
        members = (conf > lo) & (conf <= hi)
        assert table.loc[b, "count"] == members.sum()
    # equal mass: each of 15 sorted chunks against its own mean
    order = np.argsort(conf, kind="stable")
    loop = sum(
        abs(right[c].mean() - conf[c].mean()) * len(c) / n for c in np.array_split(order, 15)
    )
    assert expected_calibration_error(y, p, binning="mass") == pytest.approx(loop, abs=1e-12)


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ParameterError, match=r"proba must be \(samples, classes\) = \(2, 7\)"):
        calibration_inputs([0, 1], np.full((2, 3), 1 / 3))
    with pytest.raises(ParameterError, match="finite probabilities"):
        calibration_inputs([0], np.full((1, 7), np.nan))
    with pytest.raises(LabelError, match="no sample of a class the model can output"):
        calibration_inputs([SUGARCANE], np.eye(7)[[0]], model_classes=[0, 6], target="ARG")
    with pytest.raises(ParameterError, match="binning must be 'width' or 'mass'"):
        expected_calibration_error([0], [[1.0, 0.0]], binning="quantile")


def test_merge_and_aggregate_leave_methods_without_probabilities_blank() -> None:
    runs = pd.DataFrame(
        {
            "method": ["a", "a", "b", "b"],
            "source": "FRA",
            "target": "BEL",
            "seed": [1, 2, 1, 2],
            "scenario": "cross-country",
            "oa": [0.5, 0.6, 0.7, 0.8],
        }
    )
    per_run = runs[["method", "source", "target", "seed"]].assign(
        ece=[0.1, 0.3, np.nan, np.nan],
        ece_mass=0.0,
        overconfidence=[0.1, -0.1, np.nan, np.nan],
        brier=0.5,
        nll=1.0,
    )
    merged = merge_calibration(runs, per_run)
    assert merged.index.tolist() == runs.index.tolist() and merged["ece"].iloc[0] == 0.1
    agg = aggregate_runs(merged, ["method"], ("ece", "overconfidence")).set_index("method")
    assert agg.loc["a", "ece_mean"] == pytest.approx(20.0)
    assert agg.loc["a", "ece_std"] == pytest.approx(10.0)  # percent, ddof 0
    assert np.isnan(agg.loc["b", "ece_mean"]) and np.isnan(agg.loc["b", "ece_std"])
    plain = aggregate_runs(merged, ["method"], ("brier",), percent=False).set_index("method")
    assert plain.loc["a", "brier_mean"] == pytest.approx(0.5)


def test_report_section(tmp_path) -> None:
    from cropglobe.report.calibration import pooled_reliability
    from cropglobe.report.transfer import write_transfer_report

    rows, bins = [], []
    over = {"confident": 0.3, "humble": -0.05}
    for method in ("confident", "humble", "confident+tta"):
        for target in ("BEL", "USA", "ARG"):
            for seed in (82, 83):
                plain = method.split("+")[0]
                hard = {"BEL": 0.0, "USA": 0.05, "ARG": 0.1}[target]
                o = np.nan if "+tta" in method else over[plain] + hard
                rows.append(
                    {
                        "method": method,
                        "source": "FRA",
                        "target": target,
                        "seed": seed,
                        "scenario": scenario("FRA", target),
                        "oa": 0.6,
                        "macro_f1": 0.5,
                        "weighted_f1": 0.55,
                        "n_scored": 100,
                        "n_classes_scored": 3,
                        "ece": abs(o),
                        "ece_mass": abs(o),
                        "overconfidence": o,
                        "brier": 0.4,
                        "nll": 0.9,
                    }
                )
                if "+tta" not in method:
                    bins.append(
                        {
                            "method": method,
                            "source": "FRA",
                            "target": target,
                            "seed": seed,
                            "bin": 10,
                            "lower": 10 / 15,
                            "upper": 11 / 15,
                            "count": 100,
                            "confidence": 0.7,
                            "accuracy": 0.7 - o,
                        }
                    )
    runs = pd.DataFrame(rows)
    page = write_transfer_report(
        tmp_path, runs, pd.DataFrame(), {}, CROPGLOBE_CLASSES, reliability=pd.DataFrame(bins)
    ).read_text()
    assert "Calibration in the targets" in page
    assert (tmp_path / "figures" / "reliability.png").stat().st_size > 1000
    assert "confident is the most over-confident in the targets" in page
    assert "ECE grows with the scenario&#x27;s difficulty" in page
    assert "Rows METHOD+tta and METHOD+tta+prior are left blank" in page
    res = pd.read_csv(tmp_path / "results.csv")
    tta = res[res.method == "confident+tta"]
    assert tta.ece_mean.isna().all() and tta.ece_std.isna().all()  # blank, not 0
    usa = res[(res.method == "humble") & (res.target == "USA")].iloc[0]
    assert usa.overconfidence_mean == pytest.approx(0.0, abs=1e-9)
    assert usa.ece_mean == pytest.approx(0.0, abs=1e-9) and usa.brier_mean == 0.4
    pooled = pd.read_csv(tmp_path / "reliability.csv")
    arg = pooled[(pooled.method == "confident") & (pooled.scenario == "cross-hemisphere")]
    assert arg["count"].item() == 200 and arg["accuracy"].item() == pytest.approx(0.3)
    assert set(pooled.panel) == {"FRA → BEL", "FRA → USA", "FRA → ARG"}  # one source
    # several sources or many targets: a panel per scenario, its pairs pooled
    both = pooled_reliability(pd.DataFrame(bins), runs[runs.target != "BEL"])
    assert both.panel.tolist() == ["cross-continent"] * 2 + ["cross-hemisphere"] * 2
    assert (both["count"] == 200).all() and (both.pairs == 1).all()
    saved = json.loads((tmp_path / "results.json").read_text())["calibration"]
    assert {r["method"] for r in saved["by_scenario"]} == {"confident", "humble", "confident+tta"}
    # no reliability bins given: no section, but results.csv keeps the columns
    page = write_transfer_report(
        tmp_path / "plain", runs, pd.DataFrame(), {}, CROPGLOBE_CLASSES
    ).read_text()
    assert "Calibration in the targets" not in page
    assert "ece_mean" in pd.read_csv(tmp_path / "plain" / "results.csv").columns
    # the same folder rewritten without the section: its table and figure go with it
    write_transfer_report(tmp_path, runs, pd.DataFrame(), {}, CROPGLOBE_CLASSES)
    assert not (tmp_path / "reliability.csv").exists()
    assert not (tmp_path / "figures" / "reliability.png").exists()
    assert (tmp_path / "results.csv").exists()


def _tempered(t0: float, n: int = 4000, k: int = 5, seed: int = 0):
    """Logits z, labels drawn from softmax(z), and a model's probabilities softmax(t0 · z):
    over-confident by t0 (> 1), so the temperature that undoes it is t0."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, k))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (truth.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    p = np.exp(t0 * z - (t0 * z).max(axis=1, keepdims=True))
    return z, y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("t0", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(t0: float) -> None:
    from cropglobe.evaluate.calibration import apply_temperature, fit_temperature

    z, y, p = _tempered(t0)
    found = fit_temperature(p, y)
    assert found == pytest.approx(t0, rel=0.05)
    # scaling by it gives back the labels' own distribution softmax(z)
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(apply_temperature(p, t0), truth, atol=1e-9)
    # and the NLL there is no higher than at any other temperature nearby
    at = negative_log_likelihood(y, apply_temperature(p, found))
    for other in (found * 0.8, found * 1.25):
        assert at <= negative_log_likelihood(y, apply_temperature(p, other))


def test_temperature_keeps_the_argmax_and_zeros() -> None:
    from cropglobe.evaluate.calibration import apply_temperature

    _, y, p = _tempered(2.0, n=500, k=7, seed=1)
    p[:, [SUGARCANE, OTHER]] = 0.0  # classes the model cannot output
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-12)  # T = 1: as given
    for t in (0.05, 0.3, 1.7, 20.0):
        q = apply_temperature(p, t)
        np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-12)
        assert (q.argmax(axis=1) == p.argmax(axis=1)).all()
        assert (q[:, [SUGARCANE, OTHER]] == 0.0).all()
        # so every accuracy is the same, and the top-label confidence moves the right way
        a, b = score_transfer(y, p.argmax(axis=1)), score_transfer(y, q.argmax(axis=1))
        assert a["oa"] == b["oa"] and a["macro_f1"] == b["macro_f1"]
        top = q.max(axis=1).mean()
        assert top < p.max(axis=1).mean() if t > 1 else top > p.max(axis=1).mean()


def test_temperature_bad_input_is_refused_clearly() -> None:
    from cropglobe.evaluate.calibration import apply_temperature, fit_temperature

    _, y, p = _tempered(1.5, n=40)
    with pytest.raises(ParameterError, match="at least 10 labelled samples, got 5"):
        fit_temperature(p[:5], y[:5])
    with pytest.raises(ParameterError, match="at least 2 classes, got only class 2"):
        fit_temperature(p, np.full(40, 2))
    with pytest.raises(ParameterError, match="40 rows but y_true 39 labels"):
        fit_temperature(p, y[:39])
    with pytest.raises(LabelError, match="class index 5 but proba has 5 columns"):
        fit_temperature(p, np.where(np.arange(40) == 0, 5, y))
    with pytest.raises(ParameterError, match="whole class indices"):
        fit_temperature(p, y.astype(float))
    with pytest.raises(ParameterError, match="finite probabilities"):
        fit_temperature(np.where(p > 0.5, np.nan, p), y)
    with pytest.raises(ParameterError, match="bounds must be"):
        fit_temperature(p, y, bounds=(2.0, 5.0))
    with pytest.raises(ParameterError, match="rows whose probabilities are all 0"):
        apply_temperature(np.zeros((2, 3)), 1.0)
    for bad in (0.0, -1.0, float("inf"), "warm"):
        with pytest.raises(ParameterError, match="temperature must be a finite number > 0"):
            apply_temperature(p, bad)  # type: ignore[arg-type]


def test_a_validation_split_the_model_gets_all_right_pulls_the_temperature_low() -> None:
    from cropglobe.evaluate.calibration import TEMPERATURE_BOUNDS, fit_temperature

    y, p = _binary(0.7, 20, 0)
    p = np.vstack([p, p[:, ::-1]])  # both classes, every prediction right at 0.7
    y = np.r_[y, np.ones_like(y)]
    assert fit_temperature(p, y) == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-3)


def test_temperature_table_compares_the_same_runs_before_and_after() -> None:
    from cropglobe.evaluate.calibration import aggregate_calibration
    from cropglobe.report.calibration import (
        temperature_by_scenario,
        temperature_finding,
        temperature_table,
    )

    rows = []
    for method, t in (("net", 1.5), ("forest", np.nan)):
        for target in ("BEL", "USA"):
            for seed, ece in ((82, 0.2), (83, 0.1)):
                rows.append(
                    {
                        "method": method,
                        "source": "FRA",
                        "target": target,
                        "seed": seed,
                        "scenario": scenario("FRA", target),
                        "ece": ece,
                        "ece_mass": ece,
                        "overconfidence": ece,
                        "brier": 0.5,
                        "nll": 1.0,
                        "temperature": t,
                        # USA: scaling fitted in France helps less there
                        "ece_ts": ece / (4 if target == "BEL" else 2) if t == t else np.nan,
                        "overconfidence_ts": 0.01 if t == t else np.nan,
                        "brier_ts": 0.4 if t == t else np.nan,
                        "nll_ts": 0.8 if t == t else np.nan,
                    }
                )
    runs = pd.DataFrame(rows)
    agg = aggregate_calibration(runs, ["method", "target"]).set_index(["method", "target"])
    assert agg.loc[("net", "USA"), "ece_ts_mean"] == pytest.approx(7.5)  # percent
    assert agg.loc[("net", "USA"), "ece_ts_std"] == pytest.approx(2.5)
    assert agg.loc[("net", "USA"), "temperature_mean"] == pytest.approx(1.5)
    assert agg.loc[("forest", "USA"), ["ece_ts_mean", "temperature_mean"]].isna().all()
    by = temperature_by_scenario(runs).set_index(["method", "scenario"])
    assert set(by.index.get_level_values("method")) == {"net"}  # no temperature: not shown
    usa = by.loc[("net", "cross-continent")]
    assert usa.ece_mean == pytest.approx(15.0) and usa.ece_ts_mean == pytest.approx(7.5)
    assert usa.seeds == 2 and usa.nll_ts_mean == pytest.approx(0.8)
    shown = temperature_table(runs)
    assert shown.columns[:4].tolist() == ["method", "scenario", "T", "ECE (%) before"]
    assert shown.loc[1, "ECE (%) after"] == "7.5 ± 2.5" and shown.loc[0, "T"] == "1.50 ± 0.00"
    # 15 % before; after: BEL 3.75, USA 7.5 -> 5.625
    assert temperature_finding(runs) == (
        "Temperature scaling fitted on the source's validation split lowered the ECE of net "
        "from 15.0 % to 5.6 % (-9.4 points; lower in 4 of 4 runs, median T = 1.50) in the "
        "targets."
    )
    assert temperature_finding(runs[runs.method == "forest"]) is None
