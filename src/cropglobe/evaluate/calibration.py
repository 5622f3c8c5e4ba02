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

from cropglobe.classes import CROPGLOBE_CLASSES, collapse_to_target
from cropglobe.errors import CropGlobeError, LabelError, ParameterError
from cropglobe.evaluate.metrics import aggregate_runs, scored_subset

__all__ = [
    "CALIBRATION_METRICS",
    "N_BINS",
    "aggregate_calibration",
    "brier_score",
    "calibrate_runs",
    "calibration_inputs",
    "collapse_proba",
    "expected_calibration_error",
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

    Args:
        output: the experiment folder.
        runs: one row per (method, source, target, seed) (:func:`run_transfer`'s table).
        classes: the data's vocabulary (the ``p_{class}`` columns).
        rules: per target, what its samples collapse by: a country, ``{sample_id:
            country}`` for a target of several countries, or None (no collapse).
        n_bins: confidence bins.

    Returns:
        ``per_run``: the runs' keys with ``ece``, ``ece_mass``, ``overconfidence``, ``brier``,
        ``nll``, ``confidence``, ``accuracy``, ``n_scored``; ``reliability``: one row per run
        and bin (:func:`reliability_table`'s columns after the keys).
    """
    from cropglobe.evaluate.adapt import adapt_posteriors, estimate_target_prior
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
        first = group.iloc[0]
        rdir = _run_dir(out, str(first["_base"]), str(first["source"]), int(first["seed"]))
        if (group["_kind"] != "tta").any() and (rdir / "metrics.json").is_file():
            try:
                names = _read_run(rdir / "metrics.json")["model_classes"]
                model_classes = [list(classes).index(c) for c in names]
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
            try:
                if r["_kind"] == "prior":  # as the run scored it: EM over all the target's rows
                    mc = np.asarray(model_classes, dtype=np.int64)
                    pm = p[:, mc]
                    adapted = adapt_posteriors(pm, estimate_target_prior(pm)[0])
                    p = np.zeros_like(p)
                    p[:, mc] = adapted
                    y_pred = mc[adapted.argmax(axis=1)]
                s = score_calibration(
                    frame["y_true"].to_numpy(dtype=np.int64),
                    p,
                    y_pred=y_pred,
                    model_classes=model_classes,
                    target=country,
                    classes=classes,
                    n_bins=n_bins,
                )
            except (LabelError, ParameterError) as exc:  # nothing scored, or damaged values
                logger.info("no calibration for %s on %s: %s", rdir, r["target"], exc)
                continue
            table = s.pop("reliability")
            row.update(s)
            tables.append(table.assign(**{k: row[k] for k in _KEYS}))
    columns = [*_KEYS, *CALIBRATION_METRICS, "confidence", "accuracy", "n_scored"]
    per_run = pd.DataFrame(rows).reindex(columns=columns)
    bins = ["bin", "lower", "upper", "count", "confidence", "accuracy"]
    reliability = (
        pd.concat(tables, ignore_index=True)[[*_KEYS, *bins]]
        if tables
        else pd.DataFrame(columns=[*_KEYS, *bins])
    )
    return per_run, reliability


def merge_calibration(runs: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the :data:`CALIBRATION_METRICS` columns of ``per_run`` (NaN where a run
    has none), rows in their order."""
    base = runs.drop(columns=[c for c in CALIBRATION_METRICS if c in runs.columns])
    if not len(base):
        return base.reindex(columns=[*base.columns, *CALIBRATION_METRICS])
    cal = per_run[[*_KEYS, *CALIBRATION_METRICS]].drop_duplicates(_KEYS)
    merged = base.merge(cal, on=_KEYS, how="left", validate="many_to_one")
    merged.index = base.index
    return merged.astype(dict.fromkeys(CALIBRATION_METRICS, np.float64))


def aggregate_calibration(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame | None:
    """Per group of ``by``: ``{metric}_mean`` and ``{metric}_std`` (ddof 0) over seeds —
    ECE, equal-mass ECE and over-confidence in percent (as the accuracies), Brier and NLL in
    their own units; NaN where no run of the group has probabilities. None when ``runs`` has
    no calibration columns."""
    if not all(c in runs.columns for c in CALIBRATION_METRICS):
        return None
    pct = aggregate_runs(runs, by, _PERCENT).drop(columns="n_runs")
    plain = aggregate_runs(runs, by, _PLAIN, percent=False).drop(columns="n_runs")
    return pct.merge(plain, on=list(by), how="left")
