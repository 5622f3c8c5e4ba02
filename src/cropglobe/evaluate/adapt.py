"""Label-shift (class prior) adaptation to a target region, without target labels.

Countries grow different mixes of crops: south-west France has two thirds "other" fields where
the Canadian training set has under half, and every cropglobe classifier is trained with
balanced class weights, i.e. for a uniform prior. When only the class *mix* changes between
source and target (p(x | y) fixed, p(y) different), the Bayes-optimal posterior on the target is
the source posterior re-weighted by the prior ratio:

    p_t(y | x) ∝ p_s(y | x) · π_t(y) / π_s(y)

and the unknown target prior π_t can be estimated from the model's own target predictions by
expectation–maximisation (Saerens, Latinne & Decaestecker 2002, *Neural Computation* 14:21):
E-step re-weight the posteriors with the current π_t, M-step set π_t to their mean. This uses no
target label, only the unlabelled target samples a transfer run predicts anyway.

Caveat, measured (docs/results.md): EM needs *calibrated* probabilities. Softmax outputs of the
neural models are close enough; the vote fractions of a random forest are not, and EM then
drifts to the majority class (CAN → FRA: every field "other"). :data:`ADAPTABLE` lists the
model families the transfer experiment adapts.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cropglobe.errors import ParameterError

__all__ = ["ADAPTABLE", "adapt_posteriors", "estimate_target_prior", "vanished_classes"]

#: Model families whose probabilities are calibrated well enough for prior adaptation.
ADAPTABLE: frozenset[str] = frozenset({"cropnet", "mlp", "tempcnn", "transformer"})


def _check(proba: ArrayLike, source_prior: ArrayLike | None) -> tuple[NDArray[np.float64], ...]:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ParameterError(
            f"probabilities must be a non-empty (samples, classes >= 2) array, got {p.shape}"
        )
    if not np.isfinite(p).all() or (p < 0).any():
        raise ParameterError("probabilities must be finite and non-negative")
    k = p.shape[1]
    prior = (
        np.full(k, 1.0 / k)
        if source_prior is None
        else np.asarray(source_prior, dtype=np.float64).reshape(-1)
    )
    if prior.shape != (k,) or not np.isfinite(prior).all() or (prior <= 0).any():
        raise ParameterError(
            f"source_prior must hold {k} positive class shares (one per probability column), "
            f"got {prior.tolist()}"
        )
    return p, prior / prior.sum()


def adapt_posteriors(
    proba: ArrayLike, target_prior: ArrayLike, source_prior: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Posteriors re-weighted from the source prior to ``target_prior`` (rows sum to 1).

    Args:
        proba: (N, K) class probabilities of a model trained under ``source_prior``.
        target_prior: (K,) class shares of the target.
        source_prior: (K,) class shares the model was trained for; None = uniform (the
            balanced class weights every cropglobe model uses).
    """
    p, prior = _check(proba, source_prior)
    t = np.asarray(target_prior, dtype=np.float64).reshape(-1)
    if t.shape != prior.shape or not np.isfinite(t).all() or (t < 0).any() or not t.sum() > 0:
        raise ParameterError(
            f"target_prior must hold {prior.size} finite shares >= 0, not all 0, got {t.tolist()}"
        )
    q = p * (t / prior)[None, :]
    s = q.sum(axis=1, keepdims=True)
    return np.asarray(np.where(s > 0, q / np.where(s > 0, s, 1.0), p), dtype=np.float64)


def estimate_target_prior(
    proba: ArrayLike,
    source_prior: ArrayLike | None = None,
    *,
    max_iter: int = 1000,
    tol: float = 1e-8,
) -> tuple[NDArray[np.float64], int]:
    """EM estimate of the target's class shares from unlabelled predictions (Saerens 2002).

    Args:
        proba: (N, K) class probabilities of the model on the target samples.
        source_prior: (K,) class shares the model was trained for; None = uniform.
        max_iter: largest number of EM iterations.
        tol: stop when no share moves by more than this.

    Returns:
        ``(prior, iterations)``: the (K,) estimated target shares and the iterations used.
    """
    p, prior = _check(proba, source_prior)
    if (
        isinstance(max_iter, bool)
        or not isinstance(max_iter, (int, np.integer))
        or max_iter < 1
        or isinstance(tol, bool)
        or not isinstance(tol, (int, float, np.number))
        or not 0 < tol < np.inf
    ):
        raise ParameterError(
            f"max_iter must be a whole number >= 1 and tol a finite number > 0, got "
            f"{max_iter!r}, {tol!r}"
        )
    est = prior.copy()
    move = np.inf
    for it in range(1, int(max_iter) + 1):
        new = adapt_posteriors(p, est, prior).mean(axis=0)
        move = float(np.abs(new - est).max())
        est = new
        if move <= tol:
            return est, it
    logging.getLogger(__name__).warning(
        "the class-prior estimate did not settle within %d EM iterations (its last step moved "
        "a share by %.2g, more than %.2g); the shares of the last iteration are used",
        int(max_iter),
        move,
        tol,
    )
    return est, int(max_iter)


def vanished_classes(prior: ArrayLike, n_samples: int) -> NDArray[np.bool_]:
    """Classes whose estimated target share is worth less than half a sample.

    EM on imperfectly calibrated posteriors can drive a rare class to a share of ~0 (measured:
    CAN → FRA soybeans, 13 of 499 fields, estimated at 1e-8 on some seeds); the adapted model
    then never predicts it and its F1 is 0. Flag such estimates instead of hiding them.

    Args:
        prior: (K,) estimated target shares.
        n_samples: number of target samples the estimate came from.

    Returns:
        (K,) bool, True where ``share · n_samples < 0.5``.
    """
    p = np.asarray(prior, dtype=np.float64).reshape(-1)
    return np.asarray(p * max(int(n_samples), 1) < 0.5)
