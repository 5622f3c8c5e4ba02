"""Calibration under shift: does a model's confidence match its accuracy in a target?

A transfer run's maps ship class probabilities, and prior adaptation
(:mod:`cropglobe.evaluate.adapt`) assumes they are calibrated posteriors. These measures say
how far that holds in a target the model was not trained on, from the probabilities a run
saved (``predictions.parquet``), so they cost no training and no inference.

Samples are taken as :func:`cropglobe.evaluate.metrics.score_transfer` scores them: samples of
classes the model cannot output are excluded, and in a target that maps fewer classes (AUS,
CHN, ARG: :func:`cropglobe.classes.collapse_to_target`) the probabilities of the classes it
collapses are summed into "other", so the confidence is that of the prediction actually
scored. The *top-label confidence* of a sample is the (collapsed) probability of the class
predicted for it; it is right when that class is its true one.

- **ECE** (expected calibration error): the samples are put in 15 equal-width confidence bins
  ``(b/15, (b+1)/15]``; ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b| (0: as often
  right as confident). The equal-mass variant (``ece_mass``) uses 15 bins of equal counts
  instead (sorted by confidence), which is steadier when most samples sit in one bin.
- **Over-confidence**: mean confidence − accuracy (signed; > 0: the model claims more than it
  delivers, the usual failure under shift).
- **Brier score**: mean over samples of Σ_k (p_k − 1[y = k])², 0 … 2 (lower is better).
- **NLL**: mean −log p_y, probabilities clipped at 1e-12.

All values are fractions (ECE 0.04 = 4 %); the experiment's ``results.csv`` gives ECE and
over-confidence in percent, as it gives the accuracies, and Brier and NLL in their own units.

**Temperature scaling** (Guo et al. 2017, "On calibration of modern neural networks"): the
probabilities are sharpened or softened by one number T > 0, softmax(logits / T), with T
chosen to minimise the negative log-likelihood on labelled samples the model did not train on
(:func:`fit_temperature`). Since log p equals the logits up to a constant per row,
softmax(log p / T) is exactly softmax(logits / T), so it applies to saved probabilities
(:func:`apply_temperature`); a class of probability 0 stays 0, and the most probable class,
hence every accuracy, is unchanged. A neural run of a transfer experiment fits T on its
source's held-out validation split (:func:`cropglobe.evaluate.methods.source_temperature`) and
saves it in its ``metrics.json``; :func:`calibrate_runs` measures the targets again after
scaling (``ece_ts``, ``overconfidence_ts``, ``brier_ts``, ``nll_ts``), which says whether a
temperature fitted on source data still helps where the model is applied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from cropglobe.classes import CROPGLOBE_CLASSES, collapse_to_target
from cropglobe.errors import CropGlobeError, LabelError, ParameterError
from cropglobe.evaluate.metrics import aggregate_runs, scored_subset

__all__ = [
    "CALIBRATION_METRICS",
    "N_BINS",
    "SCALED_METRICS",
    "TEMPERATURE_BOUNDS",
    "aggregate_calibration",
    "apply_temperature",
    "brier_score",
    "calibrate_runs",
    "calibration_inputs",
    "collapse_proba",
    "expected_calibration_error",
    "fit_temperature",
    "merge_calibration",
    "negative_log_likelihood",
    "overconfidence",
    "reliability_table",
    "score_calibration",
    "top_label",
]

logger = logging.getLogger(__name__)

#: confidence bins of the ECE and the reliability table
N_BINS = 15
#: probabilities are clipped to at least this before their log is taken
NLL_FLOOR = 1e-12
#: per-run calibration columns: ``ece``, ``ece_mass``, ``overconfidence`` (fractions, reported
#: in percent) and ``brier``, ``nll`` (their own units)
CALIBRATION_METRICS = ("ece", "ece_mass", "overconfidence", "brier", "nll")
_PERCENT = ("ece", "ece_mass", "overconfidence")
_PLAIN = ("brier", "nll")
#: per-run columns after temperature scaling: ``temperature`` (the run's T, fitted on its
#: source's validation split; NaN: none) and the calibration in the target after scaling,
#: ``ece_ts``, ``overconfidence_ts`` (fractions, reported in percent), ``brier_ts``, ``nll_ts``
SCALED_METRICS = ("temperature", "ece_ts", "overconfidence_ts", "brier_ts", "nll_ts")
_PERCENT_TS = ("ece_ts", "overconfidence_ts")
_PLAIN_TS = ("temperature", "brier_ts", "nll_ts")
#: the range searched for the temperature (a fit at either end is logged)
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: the fewest labelled samples a temperature is fitted on
MIN_TEMPERATURE_SAMPLES = 10
_KEYS = ["method", "source", "target", "seed"]


class CalibrationInputs(NamedTuple):
    """Samples as scored: true classes (n,), probabilities (n, K) after the target's collapse,
    predicted classes (n,) after it, and how many samples were excluded."""

    y_true: NDArray[np.int64]
    proba: NDArray[np.float64]
    y_pred: NDArray[np.int64]
    n_excluded: int


def collapse_proba(
    proba: ArrayLike,
    target: str,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
    *,
    mapped: ArrayLike = (),
) -> NDArray[np.float64]:
    """Probabilities (N, K) with those of the classes ``target`` does not map summed into
    "other" (the class :func:`cropglobe.classes.collapse_to_target` turns their predictions
    into); classes it maps, or that ``mapped`` names, keep theirs. Rows keep their sums."""
    p = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    dest = collapse_to_target(np.arange(k), target, classes, mapped=mapped)
    into = np.zeros((k, k), dtype=np.float64)
    into[np.arange(k), dest] = 1.0
    return np.asarray(p @ into, dtype=np.float64)


def calibration_inputs(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    y_pred: ArrayLike | None = None,
    model_classes: Sequence[int] | None = None,
    target: str | ArrayLike | None = None,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
) -> CalibrationInputs:
    """The samples :func:`cropglobe.evaluate.metrics.score_transfer` scores, their
    probabilities and predictions collapsed by the same rules.

    Args:
        y_true: true class indices into ``classes`` (N,); −1 for unlabelled (left out).
        proba: (N, K) probabilities over all of ``classes`` (0 for classes the model lacks).
        y_pred: predicted class indices (N,) before any collapse; None: the most probable
            class of each row (as a run predicts).
        model_classes, target, classes: as :func:`score_transfer` takes them.

    Raises:
        ParameterError: ``proba`` is not a finite, non-negative (N, K) array.
        LabelError: labels outside ``classes``, or no sample of a class the model can output.
    """
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    if p.ndim != 2 or p.shape != (t.size, k):
        raise ParameterError(
            f"proba must be (samples, classes) = ({t.size}, {k}) — one row per label, one "
            f"column per class of ({', '.join(classes)}) — got shape {p.shape}"
        )
    if not np.isfinite(p).all() or (p < 0).any():
        raise ParameterError(
            "proba must hold finite probabilities >= 0; it holds NaN, infinite or negative "
            "values (check the predictions it was read from)"
        )
    pred = (
        np.asarray(p.argmax(axis=1), dtype=np.int64)
        if y_pred is None
        else np.asarray(y_pred, dtype=np.int64).reshape(-1)
    )
    if pred.shape != t.shape:
        raise LabelError(f"y_true has {t.size} labels but y_pred has {pred.size}; give one each")
    for name, values in (("y_true", t), ("y_pred", pred)):
        if values.size and values.max() >= k:
            raise LabelError(
                f"{name} holds class index {int(values.max())} but the vocabulary has {k} "
                f"classes ({', '.join(classes)}); give indices 0…{k - 1}"
            )
    if pred.size and pred.min() < 0:
        raise LabelError(
            f"y_pred holds class index {int(pred.min())}; predictions must be 0…{k - 1}"
        )
    keep, collapses = scored_subset(t, model_classes=model_classes, target=target, classes=classes)
    t, p, pred = t[keep], p[keep], pred[keep].copy()
    for rows, country, mapped in collapses:
        p[rows] = collapse_proba(p[rows], country, classes, mapped=mapped)
        pred[rows] = collapse_to_target(pred[rows], country, classes, mapped=mapped)
    return CalibrationInputs(t, p, pred, int(keep.size - keep.sum()))


def top_label(
    y_true: ArrayLike, proba: ArrayLike, y_pred: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Each sample's top-label confidence (the probability of its predicted class) and
    whether that prediction is right, both (N,).

    Args:
        y_true: true class indices (N,).
        proba: (N, K) probabilities.
        y_pred: predicted class indices (N,); None: each row's most probable class.
    """
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if p.ndim != 2 or p.shape[0] != t.size or t.size == 0:
        raise ParameterError(
            f"proba must be a non-empty (samples, classes) array with one row per label "
            f"({t.size}), got shape {p.shape}"
        )
    pred = p.argmax(axis=1) if y_pred is None else np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if pred.shape != t.shape:
        raise LabelError(f"y_true has {t.size} labels but y_pred has {pred.size}; give one each")
    conf = p[np.arange(t.size), pred]
    return np.asarray(conf, dtype=np.float64), np.asarray(pred == t, dtype=np.bool_)


def _bin_of(confidence: NDArray[np.float64], n_bins: int) -> NDArray[np.int64]:
    """Equal-width bin of each confidence: ``(b/n, (b+1)/n]``, the first bin holding 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.asarray(np.digitize(confidence, edges[1:-1], right=True), dtype=np.int64)


def _check_bins(n_bins: int) -> None:
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ParameterError(f"n_bins must be a whole number >= 1, got {n_bins!r}")


def expected_calibration_error(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    y_pred: ArrayLike | None = None,
    n_bins: int = N_BINS,
    binning: str = "width",
) -> float:
    """Top-label expected calibration error, a fraction 0 … 1.

    Args:
        y_true, proba, y_pred: as :func:`top_label` (samples already as scored:
            :func:`calibration_inputs`).
        n_bins: confidence bins.
        binning: ``"width"``, equal-width bins over 0 … 1 (the usual ECE); ``"mass"``, bins
            of equal counts in order of confidence.

    Returns:
        Σ_b (n_b / N) · |accuracy_b − mean confidence_b|.
    """
    _check_bins(n_bins)
    conf, right = top_label(y_true, proba, y_pred)
    gap = right.astype(np.float64) - conf
    if binning == "width":
        per_bin = np.bincount(_bin_of(conf, n_bins), weights=gap, minlength=n_bins)
    elif binning == "mass":
        order = np.argsort(conf, kind="stable")
        per_bin = np.array([gap[idx].sum() for idx in np.array_split(order, n_bins)])
    else:
        raise ParameterError(f"binning must be 'width' or 'mass', got {binning!r}")
    return float(np.abs(per_bin).sum() / conf.size)


def overconfidence(
    y_true: ArrayLike, proba: ArrayLike, *, y_pred: ArrayLike | None = None
) -> float:
    """Mean top-label confidence minus accuracy, signed (> 0: over-confident)."""
    conf, right = top_label(y_true, proba, y_pred)
    return float(conf.mean() - right.mean())


def brier_score(y_true: ArrayLike, proba: ArrayLike) -> float:
    """Multi-class Brier score: mean over samples of Σ_k (p_k − 1[y = k])², 0 … 2."""
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    top_label(t, p)  # the same shape checks
    onehot = np.zeros_like(p)
    onehot[np.arange(t.size), t] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def negative_log_likelihood(y_true: ArrayLike, proba: ArrayLike) -> float:
    """Mean −log of the true class's probability (clipped to 1e-12 … 1)."""
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    top_label(t, p)
    py = np.clip(p[np.arange(t.size), t], NLL_FLOOR, 1.0)
    return float(-np.log(py).mean())


def reliability_table(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    y_pred: ArrayLike | None = None,
    n_bins: int = N_BINS,
) -> pd.DataFrame:
    """Per equal-width confidence bin: ``bin``, ``lower``, ``upper``, ``count``,
    ``confidence`` (mean top-label confidence) and ``accuracy`` (NaN in empty bins)."""
    _check_bins(n_bins)
    conf, right = top_label(y_true, proba, y_pred)
    b = _bin_of(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        acc = np.bincount(b, weights=right.astype(np.float64), minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count.astype(np.int64),
            "confidence": np.where(count > 0, mean_conf, np.nan),
            "accuracy": np.where(count > 0, acc, np.nan),
        }
    )


def _check_proba_rows(p: NDArray[np.float64], what: str) -> None:
    """``p`` must be a 2-D array of finite probabilities >= 0, each row with a positive sum."""
    if p.ndim != 2 or p.shape[1] < 2:
        raise ParameterError(
            f"{what} must be a (samples, classes) array with at least 2 classes, got shape "
            f"{p.shape}"
        )
    if not np.isfinite(p).all() or (p < 0).any():
        raise ParameterError(
            f"{what} must hold finite probabilities >= 0; it holds NaN, infinite or negative "
            "values (check the predictions it was read from)"
        )
    if p.shape[0] and not (p.sum(axis=1) > 0).all():
        raise ParameterError(
            f"{what} has rows whose probabilities are all 0; every row needs a class of "
            "probability > 0"
        )


def _check_temperature(temperature: float) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    if not np.isfinite(t) or t <= 0:
        raise ParameterError(
            f"temperature must be a finite number > 0 (1: unchanged), got {temperature!r}"
        )
    return t


def _scaled_log(log_p: NDArray[np.float64], temperature: float) -> NDArray[np.float64]:
    """log softmax(log p / T) per row, from log p (−inf for p = 0, which stays −inf)."""
    z = log_p / temperature
    z = z - z.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)), dtype=np.float64)


def _log_proba(p: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(p), dtype=np.float64)


def apply_temperature(proba: ArrayLike, temperature: float) -> NDArray[np.float64]:
    """Probabilities after temperature scaling: softmax(log p / T) per row.

    softmax(log p / T) equals softmax(logits / T) exactly (log p is the logits minus a
    constant per row), so saved probabilities can be scaled without the model. Each row's
    order is kept, so its most probable class (hence any accuracy) is unchanged; classes of
    probability 0 stay 0. T > 1 softens (less confident), T < 1 sharpens, T = 1 returns the
    rows as given (renormalised).

    Args:
        proba: (N, K) probabilities, finite, >= 0, each row with a positive sum.
        temperature: T > 0.

    Returns:
        (N, K) float64 probabilities, rows summing to 1.

    Raises:
        ParameterError: ``proba`` is not such an array, or ``temperature`` is not > 0.
    """
    p = np.asarray(proba, dtype=np.float64)
    _check_proba_rows(p, "proba")
    t = _check_temperature(temperature)
    if p.shape[0] == 0:
        return p.copy()
    return np.exp(_scaled_log(_log_proba(p), t))


def fit_temperature(
    proba: ArrayLike,
    y_true: ArrayLike,
    *,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
    min_samples: int = MIN_TEMPERATURE_SAMPLES,
) -> float:
    """The temperature T minimising the mean negative log-likelihood of
    softmax(log p / T) on labelled samples (Guo et al. 2017).

    A bounded one-dimensional search over log T (the NLL is convex in 1/T, so it has one
    minimum). The samples must be ones the model did not train on (a held-out validation
    split): on its training samples a model looks better calibrated than it is, and the
    temperature fitted there is too low. The true class's scaled probability is clipped at
    1e-12 before its log is taken, as :func:`negative_log_likelihood` does.

    Args:
        proba: (N, K) predicted probabilities (finite, >= 0, rows with a positive sum).
        y_true: (N,) true class indices 0 … K−1 (columns of ``proba``).
        bounds: the range (low, high) searched, 0 < low < 1 < high; an optimum at either
            end is logged (a validation split the model gets all right pulls T to ``low``).
        min_samples: the fewest samples a temperature is fitted on.

    Returns:
        T > 0 (> 1: the probabilities were over-confident, and are softened).

    Raises:
        ParameterError: too few samples, labels of one class only, bad shapes or values.
        LabelError: labels outside 0 … K−1.
    """
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y_true).reshape(-1)
    if not np.issubdtype(t.dtype, np.integer):
        raise ParameterError(
            f"y_true must hold whole class indices (columns of proba), got dtype {t.dtype}"
        )
    t = t.astype(np.int64)
    _check_proba_rows(p, "proba")
    if p.shape[0] != t.size:
        raise ParameterError(
            f"proba has {p.shape[0]} rows but y_true {t.size} labels; give one row per label"
        )
    lo, hi = (float(b) for b in bounds)
    if not (0 < lo < 1 < hi and np.isfinite(hi)):
        raise ParameterError(
            f"bounds must be (low, high) with 0 < low < 1 < high, got {tuple(bounds)!r}"
        )
    if t.size < int(min_samples):
        raise ParameterError(
            f"a temperature needs at least {int(min_samples)} labelled samples, got {t.size}; "
            "give a larger validation set"
        )
    if t.size and (t.min() < 0 or t.max() >= p.shape[1]):
        raise LabelError(
            f"y_true holds class index {int(t.min() if t.min() < 0 else t.max())} but proba "
            f"has {p.shape[1]} columns; give indices 0…{p.shape[1] - 1}"
        )
    if np.unique(t).size < 2:
        raise ParameterError(
            f"a temperature needs labels of at least 2 classes, got only class {int(t[0])}; "
            "give a validation set holding several classes"
        )
    log_p = _log_proba(p)
    rows = np.arange(t.size)
    floor = np.log(NLL_FLOOR)

    def nll(log_t: float) -> float:
        scaled = _scaled_log(log_p, float(np.exp(log_t)))[rows, t]
        return float(-np.maximum(scaled, floor).mean())

    found = minimize_scalar(
        nll, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-6}
    )
    temperature = float(np.exp(found.x))
    if temperature < lo * 1.001 or temperature > hi / 1.001:
        logger.info(
            "temperature %.3g is at the end of the range searched (%g-%g): the samples pull "
            "it further (a validation split the model gets all right pulls it low)",
            temperature,
            lo,
            hi,
        )
    return temperature


def score_calibration(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    y_pred: ArrayLike | None = None,
    model_classes: Sequence[int] | None = None,
    target: str | ArrayLike | None = None,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
    n_bins: int = N_BINS,
) -> dict[str, Any]:
    """Calibration of a run's probabilities on a target, on the samples
    :func:`cropglobe.evaluate.metrics.score_transfer` scores (arguments as
    :func:`calibration_inputs`).

    Returns:
        ``ece``, ``ece_mass``, ``overconfidence``, ``confidence`` (mean), ``accuracy``
        (fractions; ``accuracy`` equals score_transfer's ``oa``), ``brier``, ``nll``,
        ``n_scored``, ``n_excluded`` and ``reliability`` (:func:`reliability_table`).
    """
    t, p, pred, excluded = calibration_inputs(
        y_true, proba, y_pred=y_pred, model_classes=model_classes, target=target, classes=classes
    )
    conf, right = top_label(t, p, pred)
    return {
        "ece": expected_calibration_error(t, p, y_pred=pred, n_bins=n_bins),
        "ece_mass": expected_calibration_error(t, p, y_pred=pred, n_bins=n_bins, binning="mass"),
        "overconfidence": float(conf.mean() - right.mean()),
        "confidence": float(conf.mean()),
        "accuracy": float(right.mean()),
        "brier": brier_score(t, p),
        "nll": negative_log_likelihood(t, p),
        "n_scored": int(t.size),
        "n_excluded": excluded,
        "reliability": reliability_table(t, p, y_pred=pred, n_bins=n_bins),
    }


#: a run's rows whose probabilities are not saved: the shift-averaged ones
_UNSAVED = ("+tta+prior", "+tta")


def _kind(method: str) -> tuple[str, str]:
    """``(trained method, kind)`` of a runs-table method name: kind ``""`` (the saved
    probabilities), ``"prior"`` (EM-adapted from them) or ``"tta"`` (not saved)."""
    for suffix in _UNSAVED:
        if method.endswith(suffix):
            return method[: -len(suffix)], "tta"
    if method.endswith("+prior"):
        return method[: -len("+prior")], "prior"
    return method, ""


def calibrate_runs(
    output: str | os.PathLike[str],
    runs: pd.DataFrame,
    classes: Sequence[str],
    rules: Mapping[str, str | Mapping[str, str] | None],
    *,
    n_bins: int = N_BINS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration of every row of an experiment's runs table, from the runs' saved
    predictions (``OUTPUT/runs/{method}/{source}/seed{seed}/predictions.parquet``).

    ``METHOD+prior`` rows are measured on the posteriors re-weighted by the target prior EM
    estimates from the saved probabilities (as the run scored them); rows whose probabilities
    are not saved (``+tta``, ``+tta+prior``: shift-averaged when scored), runs without
    probability columns and pairs with nothing to score get NaN.

    After temperature scaling (:data:`SCALED_METRICS`): the probabilities scaled by the
    temperature the run saved in its ``metrics.json`` (``temperature``, fitted on its
    source's validation split; ``within_temperature`` for the ``--within`` hold-out, scored
    by a second model) and measured again with the same predictions. ``METHOD+prior`` rows
    scale first and re-estimate the class mix from the scaled probabilities (EM assumes
    calibrated posteriors), so their predictions can differ from the row's. NaN where the run
    has no temperature (classical models, the paper protocol's CropNet, runs saved before
    temperatures were fitted).

    Args:
        output: the experiment folder.
        runs: one row per (method, source, target, seed) (:func:`run_transfer`'s table).
        classes: the data's vocabulary (the ``p_{class}`` columns).
        rules: per target, what its samples collapse by: a country, ``{sample_id:
            country}`` for a target of several countries, or None (no collapse).
        n_bins: confidence bins.

    Returns:
        ``per_run``: the runs' keys with ``ece``, ``ece_mass``, ``overconfidence``, ``brier``,
        ``nll``, ``confidence``, ``accuracy``, ``n_scored``, then ``temperature``, ``ece_ts``,
        ``overconfidence_ts``, ``brier_ts``, ``nll_ts`` and ``accuracy_ts``; ``reliability``:
        one row per run and bin (:func:`reliability_table`'s columns after the keys).
    """
    from cropglobe.evaluate.transfer import _read_predictions, _read_run, _run_dir

    out = Path(output)
    cols = [f"p_{c}" for c in classes]
    rows: list[dict[str, Any]] = []
    tables: list[pd.DataFrame] = []
    keys = runs[_KEYS].drop_duplicates() if len(runs) else pd.DataFrame(columns=_KEYS)
    parsed = [_kind(str(m)) for m in keys["method"]]
    keys = keys.assign(_base=[b for b, _ in parsed], _kind=[k for _, k in parsed])
    for _, group in keys.groupby(["_base", "source", "seed"], sort=False):
        preds: pd.DataFrame | None = None
        model_classes: list[int] = []
        temperatures: dict[str, float | None] = {}
        first = group.iloc[0]
        rdir = _run_dir(out, str(first["_base"]), str(first["source"]), int(first["seed"]))
        if (group["_kind"] != "tta").any() and (rdir / "metrics.json").is_file():
            try:
                saved = _read_run(rdir / "metrics.json")
                model_classes = [list(classes).index(c) for c in saved["model_classes"]]
                temperatures = {
                    "": _saved_temperature(saved, "temperature"),
                    "within": _saved_temperature(saved, "within_temperature"),
                }
                preds = _read_predictions(rdir)
            except (CropGlobeError, KeyError, ValueError) as exc:
                logger.warning("no calibration for %s: %s", rdir, exc)
            if preds is not None and not set(cols) <= set(preds.columns):
                preds = None  # no probabilities saved: left blank
        for r in group.to_dict(orient="records"):
            row: dict[str, Any] = {k: r[k] for k in _KEYS}
            rows.append(row)
            if preds is None or r["_kind"] == "tta":
                continue
            frame = preds[preds["target"].astype(str) == str(r["target"])]
            if not len(frame):
                continue
            p = frame[cols].to_numpy(dtype=np.float64)
            y_pred = frame["y_pred"].to_numpy(dtype=np.int64)
            rule = rules.get(str(r["target"]))
            country = (
                frame["sample_id"].astype(str).map(rule).fillna("").to_numpy(dtype=object)
                if isinstance(rule, Mapping)
                else rule
            )
            y_true = frame["y_true"].to_numpy(dtype=np.int64)
            how: dict[str, Any] = {
                "y_true": y_true,
                "prior": r["_kind"] == "prior",
                "model_classes": model_classes,
                "target": country,
                "classes": classes,
                "n_bins": n_bins,
            }
            try:
                s = _measured(p, y_pred, **how)
            except (LabelError, ParameterError) as exc:  # nothing scored, or damaged values
                logger.info("no calibration for %s on %s: %s", rdir, r["target"], exc)
                continue
            table = s.pop("reliability")
            row.update(s)
            tables.append(table.assign(**{k: row[k] for k in _KEYS}))
            # the hold-out of --within is scored by the second model, with its own temperature
            temperature = temperatures.get("within" if r["target"] == r["source"] else "")
            if temperature is None:
                continue
            try:  # the same predictions (argmax kept); +prior: scaled, then EM
                ts = _measured(apply_temperature(p, temperature), y_pred, **how)
            except (LabelError, ParameterError) as exc:
                logger.info("no scaled calibration for %s on %s: %s", rdir, r["target"], exc)
                continue
            row["temperature"] = temperature
            row.update({f"{k}_ts": ts[k] for k in ("ece", "overconfidence", "brier", "nll")})
            row["accuracy_ts"] = ts["accuracy"]
    columns = [
        *_KEYS,
        *CALIBRATION_METRICS,
        "confidence",
        "accuracy",
        "n_scored",
        *SCALED_METRICS,
        "accuracy_ts",
    ]
    per_run = pd.DataFrame(rows).reindex(columns=columns)
    bins = ["bin", "lower", "upper", "count", "confidence", "accuracy"]
    reliability = (
        pd.concat(tables, ignore_index=True)[[*_KEYS, *bins]]
        if tables
        else pd.DataFrame(columns=[*_KEYS, *bins])
    )
    return per_run, reliability


def _measured(
    p: NDArray[np.float64],
    y_pred: NDArray[np.int64],
    *,
    y_true: NDArray[np.int64],
    prior: bool,
    model_classes: Sequence[int],
    target: str | NDArray[Any] | None,
    classes: Sequence[str],
    n_bins: int,
) -> dict[str, Any]:
    """:func:`score_calibration` of one target's rows of a run; ``prior``: of the posteriors
    EM re-weights to the target's class mix, over all its rows (as the run scored them)."""
    from cropglobe.evaluate.adapt import adapt_posteriors, estimate_target_prior

    if prior:
        mc = np.asarray(model_classes, dtype=np.int64)
        pm = p[:, mc]
        adapted = adapt_posteriors(pm, estimate_target_prior(pm)[0])
        p = np.zeros_like(p)
        p[:, mc] = adapted
        y_pred = mc[adapted.argmax(axis=1)]
    return score_calibration(
        y_true,
        p,
        y_pred=y_pred,
        model_classes=model_classes,
        target=target,
        classes=classes,
        n_bins=n_bins,
    )


def merge_calibration(runs: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the :data:`CALIBRATION_METRICS` columns of ``per_run``, and its
    :data:`SCALED_METRICS` when it has them (NaN where a run has none), rows in their
    order."""
    metrics = [
        *CALIBRATION_METRICS,
        *(SCALED_METRICS if all(c in per_run.columns for c in SCALED_METRICS) else ()),
    ]
    ours = (*CALIBRATION_METRICS, *SCALED_METRICS)
    base = runs.drop(columns=[c for c in ours if c in runs.columns])
    if not len(base):
        return base.reindex(columns=[*base.columns, *metrics])
    cal = per_run[[*_KEYS, *metrics]].drop_duplicates(_KEYS)
    merged = base.merge(cal, on=_KEYS, how="left", validate="many_to_one")
    merged.index = base.index
    return merged.astype(dict.fromkeys(metrics, np.float64))


def aggregate_calibration(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame | None:
    """Per group of ``by``: ``{metric}_mean`` and ``{metric}_std`` (ddof 0) over seeds —
    ECE, equal-mass ECE and over-confidence in percent (as the accuracies), Brier and NLL in
    their own units; NaN where no run of the group has probabilities. With the
    :data:`SCALED_METRICS` columns in ``runs`` also ``ece_ts`` and ``overconfidence_ts`` (in
    percent), ``brier_ts``, ``nll_ts`` and ``temperature`` (their own units), NaN where no run
    of the group has a temperature. None when ``runs`` has no calibration columns."""
    if not all(c in runs.columns for c in CALIBRATION_METRICS):
        return None
    pct = aggregate_runs(runs, by, _PERCENT).drop(columns="n_runs")
    plain = aggregate_runs(runs, by, _PLAIN, percent=False).drop(columns="n_runs")
    out = pct.merge(plain, on=list(by), how="left")
    if all(c in runs.columns for c in SCALED_METRICS):
        pct = aggregate_runs(runs, by, _PERCENT_TS).drop(columns="n_runs")
        plain = aggregate_runs(runs, by, _PLAIN_TS, percent=False).drop(columns="n_runs")
        out = out.merge(pct, on=list(by), how="left").merge(plain, on=list(by), how="left")
    return out


def _saved_temperature(result: Mapping[str, Any], key: str) -> float | None:
    """The temperature a run saved under ``key``; None when it has none (null, absent: runs
    saved before temperatures were fitted) or a value that is no temperature (logged)."""
    value = result.get(key)
    if value is None:
        return None
    try:
        return _check_temperature(value)
    except ParameterError as exc:
        logger.warning("run %s/%s/seed%s: %s; left blank", result.get("method"),
                       result.get("source"), result.get("seed"), exc)  # fmt: skip
        return None
