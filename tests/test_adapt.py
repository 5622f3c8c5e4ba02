"""Class-prior adaptation (Saerens EM): known answers on constructed posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from cropglobe.errors import ParameterError
from cropglobe.evaluate.adapt import adapt_posteriors, estimate_target_prior, vanished_classes


def gaussian_posteriors(prior: list[float], n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Samples of 3 unit-variance 1-D Gaussian classes (means 0, 1.5, 3) drawn with ``prior``,
    and their exact posteriors under a uniform prior (what a balanced model would output)."""
    rng = np.random.default_rng(seed)
    means = np.array([0.0, 1.5, 3.0])
    y = rng.choice(3, n, p=prior)
    x = rng.normal(means[y], 1.0)
    lik = np.exp(-0.5 * (x[:, None] - means[None, :]) ** 2)
    return lik / lik.sum(axis=1, keepdims=True), y


def test_em_recovers_the_target_prior() -> None:
    truth = [0.7, 0.2, 0.1]
    p, y = gaussian_posteriors(truth, 40_000)
    prior, iterations = estimate_target_prior(p)
    np.testing.assert_allclose(prior, truth, atol=0.02)
    assert 1 < iterations < 1000
    # adapted posteriors are the Bayes posteriors under the true prior: better accuracy
    lik = p  # uniform source prior: posterior ∝ likelihood
    bayes = lik * np.asarray(truth)
    bayes /= bayes.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(adapt_posteriors(p, prior), bayes, atol=0.03)
    assert (adapt_posteriors(p, prior).argmax(1) == y).mean() > (p.argmax(1) == y).mean()


def test_known_answers_and_identities() -> None:
    np.testing.assert_allclose(adapt_posteriors([[0.5, 0.5]], [0.8, 0.2]), [[0.8, 0.2]])
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_allclose(adapt_posteriors(p, [0.5, 0.5]), p)  # same prior: unchanged
    np.testing.assert_allclose(adapt_posteriors(p, [0.3, 0.7], [0.3, 0.7]), p)
    # a source prior other than uniform: re-weighting by the ratio target / source
    q = adapt_posteriors([[0.5, 0.5]], [0.5, 0.5], [0.25, 0.75])
    np.testing.assert_allclose(q, [[0.75, 0.25]])
    # a target of one balanced class mix stays put
    p, _ = gaussian_posteriors([1 / 3, 1 / 3, 1 / 3], 30_000, seed=1)
    np.testing.assert_allclose(estimate_target_prior(p)[0], [1 / 3] * 3, atol=0.02)


def test_bad_input() -> None:
    with pytest.raises(ParameterError, match="non-empty"):
        estimate_target_prior(np.zeros((0, 3)))
    with pytest.raises(ParameterError, match="finite"):
        estimate_target_prior([[np.nan, 1.0]])
    with pytest.raises(ParameterError, match="source_prior"):
        estimate_target_prior([[0.5, 0.5]], [1.0, 0.0])
    with pytest.raises(ParameterError, match="target_prior"):
        adapt_posteriors([[0.5, 0.5]], [1.0])
    p = [[0.7, 0.3], [0.2, 0.8]]
    # nan and inf pass every comparison with 0: they must be refused, not adapt to NaN rows
    # or silently return the posteriors unadapted
    for bad in ([np.inf, 1.0], [np.nan, 1.0], [0.0, 0.0]):
        with pytest.raises(ParameterError, match="target_prior must hold 2 finite shares"):
            adapt_posteriors(p, bad)
    for bad in ([np.inf, 1.0], [np.nan, 1.0]):
        with pytest.raises(ParameterError, match="source_prior must hold 2 positive"):
            adapt_posteriors(p, [0.5, 0.5], bad)
        with pytest.raises(ParameterError, match=r"got \[(inf|nan), 1\.0\]"):
            estimate_target_prior(p, bad)
    for kwargs in ({"max_iter": None}, {"max_iter": 0}, {"tol": np.nan}, {"tol": "x"}):
        with pytest.raises(ParameterError, match="max_iter must be a whole number"):
            estimate_target_prior(p, **kwargs)


def test_em_collapse_is_flagged() -> None:
    """Identical posteriors: the likelihood is maximal with all mass on the top class, so EM
    drives the other shares to zero — exactly the collapse vanished_classes must flag."""
    p = np.tile([0.5, 0.4, 0.1], (200, 1))
    prior, _ = estimate_target_prior(p, max_iter=5000)
    assert prior[0] > 0.99
    assert vanished_classes(prior, 200).tolist() == [False, True, True]
    # a share worth one sample of 200 is kept; half a sample is not
    assert vanished_classes([0.005, 0.0024, 0.9926], 200).tolist() == [False, True, False]


def test_vanished_notes_one_line_per_pair() -> None:
    from cropglobe.evaluate.transfer import _vanished_notes

    key = ("cropnet-aug+prior", "CAN", "FRA")
    notes = _vanished_notes({key: {"soybeans": 2}, ("cropnet+prior", "CAN", "FRA"): {}}, {key: 3})
    assert len(notes) == 1  # the pair with nothing at zero gives no line
    assert notes[0].startswith("cropnet-aug+prior, CAN → FRA: ")
    assert "soybeans (2 of 3 seeds)" in notes[0]


def test_vanished_of_old_and_new_scores() -> None:
    """Scores written before the check (no n_adapted) and after give the same classes."""
    from cropglobe.evaluate.transfer import _vanished_of

    shares = {"corn": 0.3, "soybeans": 1e-8, "other": 0.7 - 1e-8}
    old = {"estimated_prior": shares, "n_scored": 450, "n_excluded": 49}
    new = {**old, "n_adapted": 499}
    assert _vanished_of(old) == _vanished_of(new) == ["soybeans"]
    assert _vanished_of({"n_scored": 10}) == []


def test_em_that_does_not_settle_says_so(caplog) -> None:
    p, _ = gaussian_posteriors([0.7, 0.2, 0.1], 2_000)
    with caplog.at_level("WARNING", logger="cropglobe.evaluate.adapt"):
        _, iterations = estimate_target_prior(p, max_iter=3)
    assert iterations == 3 and "did not settle within 3 EM iterations" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="cropglobe.evaluate.adapt"):
        estimate_target_prior(p)
    assert not caplog.text
