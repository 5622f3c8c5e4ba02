"""Scoring exactly as REFERENCE.md describes the paper's protocol.

For a model trained in a source and applied to a target:

1. target samples whose true class the model cannot output (absent from its training classes)
   are excluded;
2. predictions are collapsed to "other" for classes the target does not map (AUS keeps
   sugarcane and cotton, CHN corn/soybeans/rice, ARG drops wheat); the ground truth is left
   as it is, and a class the target's ground truth holds counts as mapped (data other than
   the CropGlobe release may label, say, Argentinian wheat: its wheat predictions are then
   scored as wheat, neither turned into "other" nor the truth collapsed with them);
3. overall accuracy, macro-F1 over the classes present in the target's (remaining) ground
   truth, support-weighted F1, per-class F1 and the confusion matrix are computed.

Runs over seeds aggregate as mean ± std with ddof = 0, in percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cropglobe.classes import CROPGLOBE_CLASSES, collapse_to_target
from cropglobe.errors import LabelError

__all__ = ["aggregate_runs", "confusion", "f1_per_class", "score_transfer", "scored_subset"]


def confusion(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """Confusion matrix (K, K): rows are true classes, columns predicted classes."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def f1_per_class(cm: NDArray[np.int64]) -> NDArray[np.float64]:
    """F1 of each class from a confusion matrix (0 where precision and recall are undefined)."""
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    denom = pred + true
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def score_transfer(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    model_classes: Sequence[int] | None = None,
    target: str | ArrayLike | None = None,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
) -> dict[str, Any]:
    """Score predictions on a target the way the paper does.

    Args:
        y_true: true class indices into ``classes``, (N,).
        y_pred: predicted class indices into ``classes``, (N,).
        model_classes: class indices the model can output (its training classes); None means
            all classes.
        target: ISO3 code of the target country, for the per-target collapse rules; or each
            sample's country, (N,), for a target holding several countries (each collapsed by
            its own rules, with its own labels counting as mapped; "" for none).
        classes: the vocabulary.

    Returns:
        ``oa``, ``macro_f1``, ``weighted_f1`` (fractions 0…1), ``per_class_f1``
        (``{class: f1}`` for classes present in the scored ground truth), ``confusion``
        ((K, K) int64 over all of ``classes``), ``n_scored``, ``n_excluded``, ``present``.

    Raises:
        LabelError: when no target sample has a class the model can output.
    """
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise LabelError(f"y_true has {t.size} labels but y_pred has {p.size}; give one each")
    k = len(classes)
    for name, values in (("y_true", t), ("y_pred", p)):
        if values.size and values.max() >= k:
            raise LabelError(
                f"{name} holds class index {int(values.max())} but the vocabulary has {k} "
                f"classes ({', '.join(classes)}); give indices 0…{k - 1}"
            )
    if p.size and p.min() < 0:
        raise LabelError(f"y_pred holds class index {int(p.min())}; predictions must be 0…{k - 1}")
    keep, collapses = scored_subset(t, model_classes=model_classes, target=target, classes=classes)
    n_excluded = int(t.size - keep.sum())
    t, p = t[keep], p[keep].copy()
    # the predictions only; the truth is the target's own labels
    for rows, country, mapped in collapses:
        p[rows] = collapse_to_target(p[rows], country, classes, mapped=mapped)
    cm = confusion(t, p, k)
    f1 = f1_per_class(cm)
    support = cm.sum(axis=1)
    present = [int(i) for i in np.flatnonzero(support > 0)]
    return {
        "oa": float(np.trace(cm) / cm.sum()),
        "macro_f1": float(f1[present].mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "per_class_f1": {classes[i]: float(f1[i]) for i in present},
        "confusion": cm,
        "n_scored": int(t.size),
        "n_excluded": n_excluded,
        "present": [classes[i] for i in present],
    }


def scored_subset(
    y_true: NDArray[np.int64],
    *,
    model_classes: Sequence[int] | None = None,
    target: str | ArrayLike | None = None,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
) -> tuple[NDArray[np.bool_], list[tuple[NDArray[np.bool_], str, NDArray[np.int64]]]]:
    """Which samples :func:`score_transfer` scores and how their predictions collapse.

    Args:
        y_true: true class indices (N,), already checked against ``classes``.
        model_classes, target, classes: as :func:`score_transfer` takes them.

    Returns:
        ``keep``, a boolean mask (N,) of the samples scored (labelled, of a class the model
        can output), and the collapses to apply to the kept samples: ``(rows, country,
        mapped)`` with ``rows`` a mask over the kept samples, ``country`` the rules they
        follow (:func:`cropglobe.classes.collapse_to_target`) and ``mapped`` the classes of
        their ground truth (which count as mapped). Predicted labels and probabilities
        (:mod:`cropglobe.evaluate.calibration`) are collapsed by the same plan.

    Raises:
        LabelError: when no sample has a class the model can output, or ``target`` gives
            a country per sample for another number of samples.
    """
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    k = len(classes)
    per_sample = None
    if target is not None and not isinstance(target, str):
        per_sample = np.asarray(target, dtype=object).reshape(-1)
        if per_sample.shape != t.shape:
            raise LabelError(
                f"target gives {per_sample.size} countries for {t.size} samples; give one "
                "country per sample, or one country for all"
            )
    keep = t >= 0
    if model_classes is not None:
        mc = np.asarray(list(model_classes), dtype=np.int64)
        if mc.size and (mc.min() < 0 or mc.max() >= k):
            raise LabelError(
                f"model_classes {mc.tolist()} are not all class indices 0…{k - 1} of "
                f"({', '.join(classes)})"
            )
        allowed = np.zeros(k, dtype=bool)
        allowed[mc] = True
        keep &= allowed[np.clip(t, 0, k - 1)]
    kept = t[keep]
    if kept.size == 0:
        names = [classes[i] for i in model_classes] if model_classes is not None else classes
        which = f"target {target}" if isinstance(target, str) else "the target"
        raise LabelError(
            f"{which} has no sample of a class the model can output "
            f"({list(names)}); choose a target that shares classes with the source"
        )
    collapses: list[tuple[NDArray[np.bool_], str, NDArray[np.int64]]] = []
    if per_sample is not None:
        where = per_sample[keep]
        for c in dict.fromkeys(where.tolist()):
            rows = np.asarray(where == c, dtype=bool)
            collapses.append((rows, str(c or ""), np.unique(kept[rows])))
    elif isinstance(target, str):
        collapses.append((np.ones(kept.size, dtype=bool), target, np.unique(kept)))
    return keep, collapses


def aggregate_runs(
    runs: pd.DataFrame,
    by: Sequence[str],
    metrics: Sequence[str] = ("oa", "macro_f1", "weighted_f1"),
    *,
    percent: bool = True,
) -> pd.DataFrame:
    """Mean ± std (ddof 0) in percent of metrics over seeds.

    Args:
        runs: one row per run with the ``by`` columns and metric columns (fractions 0…1).
        by: grouping columns (e.g. ``["method", "source", "target"]``).
        metrics: metric columns.
        percent: scale the fractions to percent; False keeps the metrics' own units (a
            Brier score, a log-likelihood).

    Returns:
        One row per group with ``{metric}_mean``, ``{metric}_std`` (percent) and ``n_runs``.
        A metric missing from every run of a group (NaN: a method without probabilities has
        no calibration) gives NaN for both, not a spread of 0.
    """
    cols = list(metrics)
    scale = 100.0 if percent else 1.0
    grouped = runs.groupby(list(by), sort=False)
    mean = grouped[cols].mean() * scale
    # ddof 0: the paper reports the population standard deviation over its ten seeds.
    std = grouped[cols].std(ddof=0).fillna(0.0).where(mean.notna()) * scale
    out = pd.concat([mean.add_suffix("_mean"), std.add_suffix("_std")], axis=1)
    out["n_runs"] = grouped.size()
    return out.reset_index()
