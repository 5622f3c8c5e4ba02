"""Shift diagnostics: how far a target region's series lie from the source's, without labels.

Before trusting a map of a new region, ask three questions of the target's series against the
source's (the data a model was, or would be, trained on). None needs a target label:

1. **Can the two be told apart?** ``domain_auc``: the leave-pair-out ROC AUC of a
   nearest-neighbour classifier telling source samples from target samples (each scored by the
   share of target samples among its 10 nearest others: the nearest-neighbour two-sample test),
   on the series the models see (gap-filled, cut to the window, standardised with the source's
   statistics, reduced to principal components of both). 0.5: the target looks like more of
   the source; 1.0: every target field is recognisably foreign. A different crop mix alone
   raises it too (a real difference, but one that :mod:`cropglobe.evaluate.adapt` can
   correct).
2. **How many target fields lie outside the source's range?** ``outside_share``: the share of
   target samples farther from their k-th nearest source sample (in the same components) than
   95 % of source samples are from theirs (each leaving itself out). Without shift it is near
   0.05 (:data:`OUTSIDE_LEVEL`).
3. **Is the season shifted?** ``lag_days``: the time shift that brings the target's NDVI curves
   closest to the source's: for each shift the target's curves are read that many days later
   (linear interpolation between bin centres), cut to the window, and each is compared with its
   nearest source curve; the shift with the smallest mean distance (over the closest 90 % of
   the target's curves, so that a few odd fields do not decide) wins. Positive: the
   target's season runs later. ``lag_gain``: how much closer the best shift brings them (1 −
   distance at the best shift / distance unshifted; 0 when no shift helps). Robust to a
   different crop mix, as each target field finds the source field it resembles most; the mean
(not the median) keeps a shift that fits the target's main crop to another source crop from
winning when it leaves a tenth or more of the fields far from any source curve.

They are not accuracies. They say that and how the target differs, not how much a given model
suffers from it: augmentation, for one, is meant to make a model indifferent to a lag.
:func:`pair_diagnostics` computes them for a transfer experiment's pairs, whose report puts them
beside the measured accuracies with their rank correlation, so that one can see whether they
track transfer on one's own data before relying on them in an unlabelled region.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe.errors import BandError, DataFormatError, GridError, ParameterError
from cropglobe.series import SeriesSet

__all__ = [
    "OUTSIDE_LEVEL",
    "ModelView",
    "ShiftDiagnosis",
    "conformal_limit",
    "diagnose_shift",
    "diagnosis_lines",
    "model_view",
    "model_view_lines",
    "pair_diagnostics",
    "season_lag",
]

logger = logging.getLogger(__name__)

#: The source quantile of nearest-neighbour distances beyond which a sample counts as outside:
#: without shift, about this share of target samples lies outside.
OUTSIDE_LEVEL = 0.05
#: Fewest samples per side for the diagnostics (cross-validation needs a few per fold).
MIN_SAMPLES = 10
#: The augmentation's largest time shift (days; REFERENCE.md): lags within it are what it trains
#: a model to ignore.
AUGMENT_SHIFT = 50


@dataclass(frozen=True)
class ShiftDiagnosis:
    """How a target's series differ from a source's (see the module docstring).

    Attributes:
        source, target: the names of the two sets.
        n_source, n_target: samples compared (distinct series, after the balanced
            subsample).
        domain_auc: cross-validated ROC AUC of a source-vs-target classifier, 0.5 … 1.
        outside_share: share of target samples outside the source's range, 0 … 1.
        lag_days: the target's season lag behind the source's, days (None without NDVI).
        lag_gain: how much closer the lag brings the curves, 0 … 1 (None without NDVI).
    """

    source: str
    target: str
    n_source: int
    n_target: int
    domain_auc: float
    outside_share: float
    lag_days: float | None
    lag_gain: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def _features(ss: SeriesSet, window: tuple[int, int] | None) -> NDArray[np.float64]:
    """Series cut to ``window``, gap-filled and flattened: (N, C·T) (a band without any
    observation in a sample stays NaN), as the training reference reads them
    (:func:`cropglobe.evaluate.applicability.window_values`)."""
    from cropglobe.evaluate.applicability import window_values

    v = window_values(ss, window)
    return np.asarray(v.reshape(v.shape[0], -1), dtype=np.float64)


def _distinct(ss: SeriesSet) -> SeriesSet:
    """``ss`` without exact duplicate series (the first of each kept).

    A duplicate would be its twin's nearest neighbour at distance 0: it would raise the domain
    AUC (a twin votes for its own side) and, from six copies on, set the outside limit to 0.
    """
    import hashlib

    rows = np.ascontiguousarray(ss.values.reshape(ss.n_samples, -1))
    first: dict[bytes, int] = {}
    for i, row in enumerate(rows):
        first.setdefault(hashlib.blake2b(row.tobytes(), digest_size=16).digest(), i)
    if len(first) == ss.n_samples:
        return ss
    logger.info(
        "%d of %d samples repeat another's series exactly; each is compared once",
        ss.n_samples - len(first),
        ss.n_samples,
    )
    return ss.subset(np.fromiter(first.values(), dtype=np.int64, count=len(first)))


def _balanced(n_a: int, n_b: int, most: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """Indices of an equal-size random subsample of two sets (at most ``most`` each)."""
    n = min(n_a, n_b, most)
    a = np.sort(rng.choice(n_a, n, replace=False)) if n < n_a else np.arange(n_a)
    b = np.sort(rng.choice(n_b, n, replace=False)) if n < n_b else np.arange(n_b)
    return a, b


def _check_pair(source: SeriesSet, target: SeriesSet) -> SeriesSet:
    """``target`` on the source's bands and grid, or a clear error."""
    missing = [b for b in source.bands if b not in target.bands]
    if missing:
        raise BandError(
            f"the target lacks band(s) {', '.join(missing)} of the source (source bands: "
            f"{', '.join(source.bands)}; target bands: {', '.join(target.bands)}); compare "
            "data holding the same bands"
        )
    if target.bands != source.bands:
        target = target.select_bands(source.bands)
    if target.grid.edges == source.grid.edges and target.grid.anchor != source.grid.anchor:
        # season-aligned data: days of season are compared, as a transfer does (on_anchor)
        target = target.on_anchor(source.grid.anchor)
    if not target.grid.same_axis(source.grid):
        raise GridError(
            f"the target is on grid '{target.grid}' and the source on '{source.grid}'; "
            "composite both to one grid (cropglobe composite --grid) before comparing them"
        )
    for name, ss in (("source", source), ("target", target)):
        if ss.n_samples < MIN_SAMPLES:
            raise DataFormatError(
                f"the {name} holds {ss.n_samples} distinct sample(s) with observations (exact "
                "repeats of a series count once); the shift "
                f"diagnostics need at least {MIN_SAMPLES} on each side"
            )
    return target


def _components(
    src: NDArray[np.float64],
    tgt: NDArray[np.float64],
    n_bands: int,
    n_components: int,
    seed: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both sets standardised with the source's per-feature statistics (a value still missing
    becomes the source mean) and projected on the principal components of the two together.

    Only features (band × step) observed in both sets are compared: a band without any value
    on one side has no statistics to standardise it with (its raw values would count as a
    shift of thousands of standard deviations) and would only measure the missing band. A
    feature without spread in the source is scaled by its band's typical spread
    (:func:`~cropglobe.evaluate.applicability.feature_scales`)."""
    from sklearn.decomposition import PCA

    from cropglobe.evaluate.applicability import feature_scales

    mean, std = feature_scales(src, n_bands)
    both = ~np.isnan(src).all(axis=0) & ~np.isnan(tgt).all(axis=0)
    if not both.any():
        raise DataFormatError(
            "the source and the target hold no band observed in both within the window; "
            "compare data with a band in common (check the window and --bands)"
        )
    src, tgt, mean, std = src[:, both], tgt[:, both], mean[both], std[both]
    zs = np.nan_to_num((src - mean) / std, nan=0.0)
    zt = np.nan_to_num((tgt - mean) / std, nan=0.0)
    pooled = np.vstack([zs, zt])
    k = int(min(n_components, pooled.shape[1], pooled.shape[0] - 1))
    # the exact components: the randomised solver scikit-learn picks for a few thousand
    # samples of hundreds of features approximates the last ones (a sample in or out)
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(pooled)
    return pca.transform(zs), pca.transform(zt)


def _domain_auc(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    k: int = 10,
    same: NDArray[np.int64] | None = None,
) -> float:
    """Leave-pair-out ROC AUC of a k-nearest-neighbour classifier telling ``a`` (0) from ``b``
    (1) of equal size: each sample is scored by the share of ``b`` among its k nearest others
    (the nearest-neighbour two-sample test; Schilling 1986, *JASA* 81:799).

    Left out of a sample's neighbours: itself and its partner on the other side (``a[i]`` with
    ``b[i]``), so that it chooses among as many samples of each side (left out alone, a sample
    would see one more of the other side: an AUC of 0.36 instead of 0.5 on two alike sets of
    10), and the samples whose series equal its own (``same``: one id per row of ``a`` then
    ``b``; equal ids, equal series), which would vote for the other side from distance 0 (a
    target identical to the source would score 0.08)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    n = len(a)
    if len(b) != n:
        raise ParameterError(f"the two sides must be of equal size, got {n} and {len(b)}")
    x = np.vstack([a, b])
    y = np.r_[np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]
    partner = np.r_[np.arange(n) + n, np.arange(n)]
    same = np.arange(2 * n) if same is None else np.asarray(same, dtype=np.int64)
    copies = int(np.bincount(same).max())  # the most rows of one series (itself included)
    k = max(1, min(k, len(x) - 1 - copies))
    idx = NearestNeighbors(n_neighbors=k + 1 + copies).fit(x).kneighbors(x)[1]
    keep = (same[idx] != same[:, None]) & (idx != partner[:, None])
    others = np.array([row[ok][:k] for row, ok in zip(idx, keep, strict=True)])
    return float(roc_auc_score(y, y[others].mean(axis=1)))


def _series_ids(x: NDArray[np.float64]) -> NDArray[np.int64]:
    """One id per row of ``x``, equal for equal rows (NaN equal to NaN)."""
    filled = np.where(np.isnan(x), np.inf, x)
    return np.asarray(np.unique(filled, axis=0, return_inverse=True)[1], dtype=np.int64).ravel()


def conformal_limit(own: NDArray[np.float64], level: float) -> float:
    """The distance a new sample alike those of ``own`` (their leave-one-out distances) exceeds
    with probability at most ``level``: the ⌈(1 − level)(n + 1)⌉-th smallest of the n
    distances (the conformal rank; infinite when n is too small to say)."""
    d = np.sort(np.asarray(own, dtype=np.float64).ravel())
    rank = int(np.ceil((1.0 - level) * (d.size + 1)))
    return float(d[rank - 1]) if rank <= d.size else float("inf")


def _outside_share(a: NDArray[np.float64], b: NDArray[np.float64], k: int = 5) -> float:
    """Share of ``b`` farther from its k-th nearest sample of ``a`` than ``a``'s own
    (leave-one-out) k-th distances allow at level 1 − :data:`OUTSIDE_LEVEL`: the
    ⌈(1 − level)(n + 1)⌉-th smallest of them (the conformal rank: a sample alike the source
    lies beyond it with probability at most the level, at any n; the plain 95 % quantile of
    10 distances let 13 % of alike samples out)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(a) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(a)
    own = nn.kneighbors(a)[0][:, k]  # column 0 is the sample itself
    limit = conformal_limit(own, OUTSIDE_LEVEL)
    other = nn.kneighbors(b, n_neighbors=k)[0][:, k - 1]
    return float((other > limit).mean())


def _read_later(
    curves: NDArray[np.float64], centers: NDArray[np.float64], days: NDArray[np.float64], year: bool
) -> NDArray[np.float64]:
    """Curves (N, T) on bin ``centers`` read at ``days`` (linear between centres; around the
    year when ``year``, else held at the ends): ``np.interp`` of each row, done at once."""
    t = centers.size
    if year:  # the centres repeated a year before and after: every day has two neighbours
        xs = np.concatenate([centers - 365.0, centers, centers + 365.0])
        cols = np.tile(np.arange(t), 3)
    else:
        xs, cols = centers, np.arange(t)
    d = np.clip(days, xs[0], xs[-1])
    hi = np.clip(np.searchsorted(xs, d, side="right"), 1, xs.size - 1)
    lo = hi - 1
    w = (d - xs[lo]) / (xs[hi] - xs[lo])
    return curves[:, cols[lo]] * (1.0 - w) + curves[:, cols[hi]] * w


def _nn_distance(q: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    """Mean distance (RMS over time) from each row of ``q`` to its nearest row of ``ref``, over
    the closest 90 % of the rows of ``q``."""
    d2 = (q**2).sum(1)[:, None] + (ref**2).sum(1)[None, :] - 2.0 * q @ ref.T
    best = np.sort(np.sqrt(np.maximum(d2.min(axis=1), 0.0) / q.shape[1]))
    return float(best[: max(1, int(np.ceil(0.9 * best.size)))].mean())


def season_lag(
    source: SeriesSet,
    target: SeriesSet,
    *,
    window: tuple[int, int] | None = (121, 334),
    max_lag: int = 90,
    max_samples: int = 1000,
    random_state: int = 0,
) -> tuple[float, float]:
    """The shift (days) that brings the target's NDVI curves closest to the source's.

    Args:
        source, target: sets on one grid holding NDVI, or B08 and B04.
        window: days of season compared (the models' window); None: the whole grid.
        max_lag: shifts tried, −max_lag … +max_lag days in steps of the grid's median step.
        max_samples: at most this many curves of each side (a seeded random subsample).
        random_state: seed of the subsample.

    Returns:
        ``(lag_days, gain)``: positive lag means the target's season runs later; ``gain`` is
        ``1 − d(lag) / d(0)`` of the mean nearest-curve distances d (0 when no shift helps).

    Raises:
        BandError: neither set can give NDVI.
    """
    from cropglobe.bands import ndvi
    from cropglobe.composite import fill_gaps

    grid = source.grid
    rng = np.random.default_rng(random_state)
    ia, ib = _balanced(source.n_samples, target.n_samples, max_samples, rng)
    curves: list[NDArray[np.float64]] = []
    for ss, idx in ((source, ia), (target, ib)):
        c = ndvi(ss.values[idx], ss.bands)[:, None, :]
        filled = np.asarray(fill_gaps(c, grid, edge="hold")[:, 0, :], dtype=np.float64)
        curves.append(filled[~np.isnan(filled).any(axis=1)])
    a, b = curves
    if len(a) < MIN_SAMPLES or len(b) < MIN_SAMPLES:
        raise DataFormatError(
            f"too few NDVI curves to time the seasons ({len(a)} source, {len(b)} target); the "
            f"lag needs at least {MIN_SAMPLES} each"
        )
    centers = grid.centers
    idx = np.arange(grid.n_steps) if window is None else grid.window_indices(*window)
    days = centers[idx]
    year = bool(grid.edges[0] <= 1 and grid.edges[-1] >= 366)
    step = float(np.median(np.diff(centers))) if grid.n_steps > 1 else 1.0
    n = int(max_lag // step)
    lags = np.arange(-n, n + 1) * step
    ref = a[:, idx]
    scores = np.array(
        [_nn_distance(_read_later(b, centers, days + lag, year), ref) for lag in lags]
    )
    best = int(np.argmin(scores))
    zero = scores[n]
    gain = 0.0 if zero <= 0 else max(0.0, 1.0 - float(scores[best]) / float(zero))
    return float(lags[best]) if gain > 0 else 0.0, gain


def diagnose_shift(
    source: SeriesSet,
    target: SeriesSet,
    *,
    window: tuple[int, int] | None = (121, 334),
    source_name: str = "source",
    target_name: str = "target",
    max_samples: int = 1500,
    n_components: int = 16,
    random_state: int = 0,
    phenology: tuple[SeriesSet, SeriesSet] | None = None,
) -> ShiftDiagnosis:
    """Label-free diagnostics of how ``target`` differs from ``source`` (module docstring).

    Args:
        source, target: the two sets on one grid; the target must hold the source's bands
            (others are ignored). Labels are not read.
        window: days of season the models see (None: the whole grid); the series are compared
            there.
        source_name, target_name: names carried into the result.
        max_samples: at most this many samples of each side, a seeded random subsample of equal
            size (the classifier would otherwise learn the sizes).
        n_components: principal components the series are reduced to.
        random_state: seed of the subsamples and of the principal components.
        phenology: the sets to time the seasons on, when other than ``source`` and ``target``
            (say, all bands while the models see a few); None: the same two.

    Returns:
        A :class:`ShiftDiagnosis`; ``lag_days`` and ``lag_gain`` are None when the bands give
        no NDVI.
    """
    if max_samples < MIN_SAMPLES:
        raise ParameterError(f"max_samples must be at least {MIN_SAMPLES}, got {max_samples}")
    source = _distinct(source.drop_empty())
    target = _check_pair(source, _distinct(target.drop_empty()))
    if window is not None:
        lo, hi = int(source.grid.edges[0]), int(source.grid.edges[-1]) - 1
        if not lo <= window[0] < window[1] <= hi:
            raise ParameterError(
                f"window {window[0]}-{window[1]} is outside the data's grid (days {lo}-{hi}); "
                "pass a window inside it, or None for the whole grid (--window all)"
            )
    rng = np.random.default_rng(random_state)
    ia, ib = _balanced(source.n_samples, target.n_samples, max_samples, rng)
    fa = _features(source.subset(ia), window)
    fb = _features(target.subset(ib), window)
    za, zb = _components(fa, fb, len(source.bands), n_components, random_state)
    auc = _domain_auc(za, zb, same=_series_ids(np.vstack([fa, fb])))
    outside = _outside_share(za, zb)
    lag: float | None = None
    gain: float | None = None
    # the season-lag sets as the others: without empty samples and exact duplicates (which
    # would otherwise change the subsample, so that transfer and diagnose disagreed)
    ps, pt = (
        (_distinct(phenology[0].drop_empty()), _distinct(phenology[1].drop_empty()))
        if phenology is not None
        else (source, target)
    )
    if ps.n_steps < 2:  # one step (a feature table's columns): no curve to shift
        logger.info("one time step in the data: the season lag is not measured")
    else:
        try:
            lag, gain = season_lag(ps, pt, window=window, random_state=random_state)
        except BandError:
            logger.info("no NDVI (B08 and B04) in the data: the season lag is not measured")
        except DataFormatError as exc:  # B08 or B04 without values: the other measures stand
            logger.warning("the season lag is not measured: %s", exc)
    return ShiftDiagnosis(
        source=source_name,
        target=target_name,
        n_source=len(ia),
        n_target=len(ib),
        domain_auc=auc,
        outside_share=outside,
        lag_days=lag,
        lag_gain=gain,
    )


def diagnosis_lines(d: ShiftDiagnosis) -> list[str]:
    """What a diagnosis says, in words (one line per finding)."""
    out = d.outside_share
    if out <= 2 * OUTSIDE_LEVEL:
        shift = "close to the source"
    elif out <= 5 * OUTSIDE_LEVEL:
        shift = "a partial shift"
    else:
        shift = "a large shift: check the model on labelled fields there before trusting it"
    auc = d.domain_auc
    lines = [
        f"{d.target} against {d.source} ({d.n_target:,} and {d.n_source:,} samples compared): "
        f"{100 * out:.0f} % of the target's fields lie outside the source's range "
        f"({100 * OUTSIDE_LEVEL:.0f} % expected without shift), {shift}",
        f"a classifier tells target from source fields with AUC {auc:.2f} (0.5: "
        "alike, 1: apart)"
        + (
            "; regions differ in crop mix, soils and sensors' days, so a high AUC is common "
            "even where models transfer well"
            if auc >= 0.8
            else ""
        ),
    ]
    if d.lag_days is None or d.lag_gain is None:
        lines.append("season lag: not measured (the data give no NDVI curves: B08 and B04)")
    elif d.lag_gain < 0.05 or abs(d.lag_days) < 10:
        lines.append(
            f"season lag: none to speak of (best shift {d.lag_days:+.0f} days brings the NDVI "
            f"curves {100 * d.lag_gain:.0f} % closer)"
        )
    else:
        when = "later" if d.lag_days > 0 else "earlier"
        cover = (
            f"within the ±{AUGMENT_SHIFT}-day time shifts of the augmentation (cropnet-aug "
            "trains for it; --tta averages over it)"
            if abs(d.lag_days) <= AUGMENT_SHIFT
            else f"beyond the augmentation's ±{AUGMENT_SHIFT}-day shifts: align the seasons "
            "(cropglobe transfer --season, or composite with --anchor)"
        )
        lines.append(
            f"season lag: the target's season looks {abs(d.lag_days):.0f} days {when} than "
            f"the source's (the NDVI curves come {100 * d.lag_gain:.0f} % closer), {cover}"
        )
    return lines


def pair_diagnostics(
    ss: SeriesSet,
    pairs: Sequence[tuple[str, str]],
    *,
    group_by: str = "country",
    window: tuple[int, int] | None = (121, 334),
    phenology: SeriesSet | None = None,
    random_state: int = 0,
    max_samples: int = 1500,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """:func:`diagnose_shift` for each (source group, target group) pair of ``ss``.

    Args:
        ss: every group's samples; ``group_by`` names the groups.
        pairs: (source, target) group names; pairs of a group with itself are skipped.
        phenology: the same samples with the bands to time the seasons (None: ``ss``).
        progress: called with a line per pair.

    Returns:
        One row per pair: ``source``, ``target``, ``n_source``, ``n_target``, ``domain_auc``,
        ``outside_share``, ``lag_days``, ``lag_gain`` (NaN where not measured). A pair that
        cannot be diagnosed (too few samples) is left out with a logged warning.
    """
    groups = ss.meta[group_by].astype(str).to_numpy()
    phen = phenology if phenology is not None else ss
    rows = []
    for s, t in dict.fromkeys((str(a), str(b)) for a, b in pairs if str(a) != str(b)):
        src, tgt = groups == s, groups == t
        try:
            d = diagnose_shift(
                ss.subset(src),
                ss.subset(tgt),
                window=window,
                source_name=s,
                target_name=t,
                random_state=random_state,
                max_samples=max_samples,
                phenology=(phen.subset(src), phen.subset(tgt)),
            )
        except DataFormatError as exc:
            logger.warning("shift diagnostics of %s → %s skipped: %s", s, t, exc)
            continue
        if progress is not None:
            lag = (
                "–"
                if d.lag_days is None or d.lag_gain is None
                else f"{d.lag_days:+.0f} d"
                if d.lag_gain >= 0.05 and abs(d.lag_days) >= 10
                # as diagnose words it: a shift that hardly brings the curves closer is none
                else f"none to speak of ({d.lag_days:+.0f} d brings the curves "
                f"{100 * d.lag_gain:.0f} % closer)"
            )
            progress(
                f"shift {s} → {t}: AUC {d.domain_auc:.2f}, outside "
                f"{100 * d.outside_share:.0f} %, season lag {lag}"
            )
        rows.append(d.to_dict())
    columns = list(ShiftDiagnosis.__dataclass_fields__)
    return pd.DataFrame(rows, columns=columns).astype(
        {"lag_days": np.float64, "lag_gain": np.float64}
    )


@dataclass(frozen=True)
class ModelView:
    """How a trained model sees a target against its own training data (no target label).

    Attributes:
        confidence_target: mean top-class probability on the target.
        unsure_target: share of target samples whose top-class probability is under 0.5.
        predicted: class -> share of the target predicted as it.
        estimated: class -> the target's class share estimated by EM from the predictions
            (:func:`cropglobe.evaluate.adapt.estimate_target_prior`); None for models whose
            probabilities are not calibrated enough (forests).
        outside_reference: share of the target outside the range of the model folder's
            training reference (:mod:`cropglobe.evaluate.applicability`); None without one.
        confidence_source: mean top-class probability on the source samples (in-sample for
            the training data, so optimistic); None without source data.
        source_shares: class -> share of the labelled source samples; None without source
            data.
    """

    confidence_target: float
    unsure_target: float
    predicted: dict[str, float]
    estimated: dict[str, float] | None
    outside_reference: float | None
    confidence_source: float | None = None
    source_shares: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def model_view(
    folder: Any, source: SeriesSet | None, target: SeriesSet, *, device: str = "cpu"
) -> ModelView:
    """Confidence, class mix and applicability of the model in ``folder`` on ``target``.

    Args:
        folder: a model folder.
        source: the model's training data (or data like them), on the model's grid; None when
            they are not at hand (the figures that need them are then None).
        target: the data to map, on the model's grid.
        device: torch device of neural models.
    """
    from cropglobe.evaluate.adapt import ADAPTABLE, estimate_target_prior
    from cropglobe.evaluate.applicability import TrainingReference
    from cropglobe.models.folder import card_proba, load_model, model_inputs

    model, card = load_model(folder)

    def proba(ss: SeriesSet) -> NDArray[np.float64]:
        if ss.bands != card.bands:
            ss = ss.select_bands(card.bands)
        return card_proba(model, card, model_inputs(card, ss), device=device)

    classes = list(card.classes)
    pt = proba(target)
    estimated = None
    if card.model in ADAPTABLE:
        # the networks are trained with balanced class weights: for a uniform prior
        prior, _ = estimate_target_prior(pt)
        estimated = {c: float(v) for c, v in zip(classes, prior, strict=True)}
    top = pt.max(axis=1)
    pred = np.bincount(pt.argmax(axis=1), minlength=len(classes)) / max(len(pt), 1)
    reference = TrainingReference.load(folder)
    outside = None if reference is None else float((reference.dissimilarity(target) > 1).mean())
    confidence_source = source_shares = None
    if source is not None:
        confidence_source = float(proba(source).max(axis=1).mean())
        names = source.label_names()
        counts = pd.Series(names[np.asarray(source.labels) >= 0]).value_counts()
        shares = np.array([counts.get(c, 0) for c in classes], dtype=np.float64)
        shares = shares / shares.sum() if shares.sum() else np.full(len(classes), np.nan)
        source_shares = {c: float(v) for c, v in zip(classes, shares, strict=True)}
    return ModelView(
        confidence_target=float(top.mean()),
        unsure_target=float((top < 0.5).mean()),
        predicted={c: float(v) for c, v in zip(classes, pred, strict=True)},
        estimated=estimated,
        outside_reference=outside,
        confidence_source=confidence_source,
        source_shares=source_shares,
    )


def model_view_lines(v: ModelView, source: str, target: str) -> list[str]:
    """What a :class:`ModelView` says, in words."""
    from cropglobe.evaluate.applicability import LEVEL

    def mix(shares: dict[str, float]) -> str:
        ranked = sorted(shares.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{c} {100 * s:.0f} %" for c, s in ranked if s >= 0.005) or "–"

    unsure = f"{100 * v.unsure_target:.0f} % of {target}'s fields get no class above 0.5"
    if v.confidence_source is None:
        lines = [f"model confidence: {v.confidence_target:.2f} on {target}; {unsure}"]
    else:
        drop = v.confidence_source - v.confidence_target
        lines = [
            f"model confidence: {v.confidence_target:.2f} on {target} against "
            f"{v.confidence_source:.2f} on {source} (its training data, so optimistic); "
            + unsure
            + (" — a clear drop" if drop >= 0.1 else "")
        ]
    if v.outside_reference is not None:
        lines.append(
            f"{100 * v.outside_reference:.0f} % of {target}'s fields lie outside the range of "
            f"the model's training reference (about {100 * (1 - LEVEL):.0f} % in data like "
            "its training data)"
        )
    lines.append(f"predicted in {target}: {mix(v.predicted)}")
    if v.source_shares is not None:
        lines.append(f"labelled in {source}: {mix(v.source_shares)}")
    if v.estimated is not None:
        lines.append(
            f"{target}'s class mix estimated from the predictions (EM): {mix(v.estimated)} "
            "(cropglobe transfer --adapt-prior uses it)"
        )
    return lines
