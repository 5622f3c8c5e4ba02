"""Accuracy and area of a class map with confidence intervals: the stratified estimator of
Olofsson et al. (2014).

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
Good practices for estimating area and assessing accuracy of land change. *Remote Sensing of
Environment* 148: 42–57. doi:10.1016/j.rse.2014.02.015.

The map's classes are the strata. A stratified random sample of its pixels
(:func:`draw_sample`) is labelled with the reference (true) class of each point, and the
sample counts n_ij (map class i = stratum, reference class j) with the mapped pixel count N_i
of each class give, by :func:`stratified_estimate` (equation numbers are the paper's):

- the estimated area proportions p̂_ij = W_i n_ij / n_i., with W_i = N_i / N (eq. 4 and 9);
- overall accuracy Ô = Σ_j p̂_jj (eq. 1), variance Σ_i W_i² Û_i (1 − Û_i) / (n_i. − 1) (eq. 5);
- user's accuracy Û_i = p̂_ii / p̂_i. (eq. 2), variance Û_i (1 − Û_i) / (n_i. − 1) (eq. 6);
- producer's accuracy P̂_j = p̂_jj / p̂_.j (eq. 3), variance eq. 7 (with the estimated
  reference-class totals N̂_.j = Σ_i N_i n_ij / n_i.);
- the area of each reference class Â_j = A p̂_.j (eq. 9), S(p̂_.j) eq. 10, S(Â_j) = A S(p̂_.j)
  (eq. 11), A = N × the area of one pixel;
- confidence intervals estimate ± z S (normal approximation: z = 1.96 for 95 %).

Each stratum's variance term is multiplied by the finite population correction 1 − n_i./N_i
(Cochran 1977, eq. 5.7; Stehman 2014). The paper leaves it out, since it is negligible when a
class has millions of pixels; it matters for a small class, most of whose pixels are in the
sample, and makes the variance of a class sampled completely 0, as it should be (its accuracy
is then known, not estimated). ``finite_population_correction=False`` gives the paper's
equations exactly.

:func:`sample_size` plans the sample (eq. 13) and allocates it to the classes;
:func:`count_pixels`, :func:`draw_sample` and :func:`read_reference` stream the map window by
window (strips of whole rows), so a map of any size is read with bounded memory;
:func:`assess_map` runs the whole estimate from a map and a labelled point table.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cropglobe.errors import DataFormatError, LabelError, MissingFileError, ParameterError

__all__ = [
    "ALLOCATIONS",
    "MIN_PER_CLASS",
    "AreaEstimate",
    "ClassMap",
    "ReferencePoints",
    "SamplePlan",
    "assess_map",
    "count_pixels",
    "draw_sample",
    "open_class_map",
    "read_reference",
    "sample_size",
    "stratified_estimate",
]

log = logging.getLogger(__name__)

#: the sample points per map class Olofsson et al. (2014, section 5.1.1) suggest at least
MIN_PER_CLASS = 50

#: how :func:`sample_size` shares the points among the classes
ALLOCATIONS: tuple[str, ...] = ("compromise", "proportional", "equal")
Allocation = Literal["compromise", "proportional", "equal"]

#: pixels read per strip of whole rows when streaming a map (4 MB of uint8)
STRIP_PIXELS = 1 << 22
#: pixels counted at a time within a strip
_COUNT_CHUNK = 1 << 20
#: GDAL's block cache while streaming a map (MB): each block is read once per pass
_GDAL_CACHE_MB = 64

_CITE = "Olofsson et al. 2014"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 'es' if noun.endswith('s') else 's'}"


def _z(confidence: float) -> float:
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise ParameterError(
            f"confidence must lie between 0 and 1 (0.95 for a 95 % interval), got "
            f"{confidence!r}; e.g. confidence=0.95 (--confidence 0.95)"
        )
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _names(classes: Sequence[str] | None, k: int) -> tuple[str, ...]:
    if classes is None:
        return tuple(f"class {i}" for i in range(k))
    names = tuple(str(c) for c in classes)
    if len(names) != k:
        raise ParameterError(
            f"classes names {len(names)} classes but the error matrix has {k} rows; give one "
            "name per map class, in class-id order"
        )
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ParameterError(f"classes {dup} are named twice; give each class one unique name")
    return names


def _none_if_nan(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


# ---------------------------------------------------------------------------- the estimator
@dataclass(frozen=True)
class AreaEstimate:
    """Accuracy and area of a map by the stratified estimator (Olofsson et al. 2014).

    Class arrays are (K,) in the order of ``classes``; accuracies are fractions (0–1); areas
    are in ``unit`` (``"ha"`` when ``pixel_area`` was given in hectares, else ``"px"``:
    pixels). Each ``*_se`` is a standard error; the half-width of the confidence interval is
    ``z * se`` (the ``*_ci`` properties). NaN marks what is undefined: the user's accuracy of a
    class never mapped, the producer's accuracy of a class found nowhere in the sample.

    Attributes:
        classes: class names, (K,).
        counts: int64 (K, K) sample counts n_ij, rows = map class (stratum), columns =
            reference class.
        mapped_pixels: int64 (K,) pixels of each map class N_i.
        pixel_area: area of one pixel in ``unit`` (1.0 for ``"px"``).
        unit: ``"ha"`` or ``"px"``.
        confidence: level of the intervals (0.95).
        z: the normal quantile of ``confidence`` (1.96 for 0.95).
        proportions: float64 (K, K) estimated area proportions p̂_ij (they sum to 1).
        overall_accuracy, overall_accuracy_se: Ô and S(Ô).
        users_accuracy, users_accuracy_se: Û_i and S(Û_i), (K,).
        producers_accuracy, producers_accuracy_se: P̂_j and S(P̂_j), (K,).
        area_proportion, area_proportion_se: p̂_.j and S(p̂_.j), (K,).
        mapped_area: area of each map class, N_i × ``pixel_area``, (K,).
        area, area_se: the estimated area Â_j of each reference class and S(Â_j), (K,).
        notes: where the sample came from (map, reference table, points dropped …), for the
            record; empty when built from counts.
        finite_population_correction: whether the variances carry 1 − n_i./N_i.
    """

    classes: tuple[str, ...]
    counts: NDArray[np.int64]
    mapped_pixels: NDArray[np.int64]
    pixel_area: float
    unit: str
    confidence: float
    z: float
    proportions: NDArray[np.float64]
    overall_accuracy: float
    overall_accuracy_se: float
    users_accuracy: NDArray[np.float64]
    users_accuracy_se: NDArray[np.float64]
    producers_accuracy: NDArray[np.float64]
    producers_accuracy_se: NDArray[np.float64]
    area_proportion: NDArray[np.float64]
    area_proportion_se: NDArray[np.float64]
    mapped_area: NDArray[np.float64]
    area: NDArray[np.float64]
    area_se: NDArray[np.float64]
    notes: Mapping[str, Any] = field(default_factory=dict)
    finite_population_correction: bool = True

    @property
    def overall_accuracy_ci(self) -> float:
        """Half-width of the confidence interval of the overall accuracy."""
        return self.z * self.overall_accuracy_se

    @property
    def users_accuracy_ci(self) -> NDArray[np.float64]:
        """Half-widths of the user's accuracies' confidence intervals, (K,)."""
        return self.z * self.users_accuracy_se

    @property
    def producers_accuracy_ci(self) -> NDArray[np.float64]:
        """Half-widths of the producer's accuracies' confidence intervals, (K,)."""
        return self.z * self.producers_accuracy_se

    @property
    def area_ci(self) -> NDArray[np.float64]:
        """Half-widths of the estimated areas' confidence intervals, in ``unit``, (K,)."""
        return self.z * self.area_se

    @property
    def samples(self) -> NDArray[np.int64]:
        """Sample points in each stratum (map class) n_i., (K,)."""
        return self.counts.sum(axis=1)

    @property
    def total_area(self) -> float:
        """Area of the mapped pixels (no data left out), in ``unit``."""
        return float(self.mapped_area.sum())

    def table(self, total: bool = True) -> pd.DataFrame:
        """One row per class: samples, mapped and estimated area ± CI, accuracies ± CI.

        Args:
            total: add a last row ``all`` with the totals, and the overall accuracy in both
                accuracy columns (over all classes together, the share of the map that is
                right: what user's and producer's accuracy become).

        Returns:
            Columns ``class, samples, mapped_pixels, mapped_<unit>, area_<unit>,
            area_ci_<unit>, area_se_<unit>, users_accuracy, users_accuracy_ci,
            producers_accuracy, producers_accuracy_ci`` (``<unit>`` is ``ha`` or ``px``;
            ``*_ci`` are half-widths at ``confidence``).
        """
        u = self.unit
        frame = pd.DataFrame(
            {
                "class": list(self.classes),
                "samples": self.samples,
                "mapped_pixels": self.mapped_pixels,
                f"mapped_{u}": self.mapped_area,
                f"area_{u}": self.area,
                f"area_ci_{u}": self.area_ci,
                f"area_se_{u}": self.area_se,
                "users_accuracy": self.users_accuracy,
                "users_accuracy_ci": self.users_accuracy_ci,
                "producers_accuracy": self.producers_accuracy,
                "producers_accuracy_ci": self.producers_accuracy_ci,
            }
        )
        if total:
            row = {
                "class": "all",
                "samples": int(self.counts.sum()),
                "mapped_pixels": int(self.mapped_pixels.sum()),
                f"mapped_{u}": self.total_area,
                f"area_{u}": float(self.area.sum()),
                f"area_ci_{u}": 0.0,
                f"area_se_{u}": 0.0,
                "users_accuracy": self.overall_accuracy,
                "users_accuracy_ci": self.overall_accuracy_ci,
                "producers_accuracy": self.overall_accuracy,
                "producers_accuracy_ci": self.overall_accuracy_ci,
            }
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (NaN as None): method, unit, confidence, the error
        matrix and area proportions (rows = map, columns = reference), overall accuracy and
        one record per class."""

        def stat(est: float, se: float) -> dict[str, float | None]:
            return {
                "estimate": _none_if_nan(est),
                "se": _none_if_nan(se),
                "ci": _none_if_nan(self.z * se),
            }

        per_class = [
            {
                "class": c,
                "samples": int(self.samples[k]),
                "mapped_pixels": int(self.mapped_pixels[k]),
                "mapped_area": float(self.mapped_area[k]),
                "area": stat(self.area[k], self.area_se[k]),
                "area_proportion": stat(self.area_proportion[k], self.area_proportion_se[k]),
                "users_accuracy": stat(self.users_accuracy[k], self.users_accuracy_se[k]),
                "producers_accuracy": stat(
                    self.producers_accuracy[k], self.producers_accuracy_se[k]
                ),
            }
            for k, c in enumerate(self.classes)
        ]
        return {
            "method": f"stratified estimator by map class ({_CITE}, RSE 148: 42-57)",
            "finite_population_correction": self.finite_population_correction,
            "unit": self.unit,
            "pixel_area": self.pixel_area,
            "total_area": self.total_area,
            "confidence": self.confidence,
            "z": self.z,
            "classes": list(self.classes),
            "error_matrix": self.counts.tolist(),
            "proportions": self.proportions.tolist(),
            "overall_accuracy": stat(self.overall_accuracy, self.overall_accuracy_se),
            "per_class": per_class,
            "notes": dict(self.notes),
        }


def _as_counts(counts: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(counts)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ParameterError(
            f"counts must be a square error matrix (K, K) of sample counts, rows = map class, "
            f"columns = reference class; got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise ParameterError("counts must hold finite numbers of sample points")
    if np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise ParameterError(
            "counts must be whole numbers of sample points, 0 or more; got "
            f"{arr[(arr < 0) | (arr != np.round(arr))][:3].tolist()}"
        )
    return arr.astype(np.int64)


def _as_pixels(mapped_pixels: ArrayLike, k: int) -> NDArray[np.int64]:
    arr = np.asarray(mapped_pixels)
    if arr.shape != (k,):
        raise ParameterError(
            f"mapped_pixels must give the pixel count of each of the {k} map classes, (K,); "
            f"got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ParameterError("mapped_pixels must be pixel counts, 0 or more")
    if np.any(arr != np.round(arr)):
        raise ParameterError(
            f"mapped_pixels must be whole pixel counts, got {arr[arr != np.round(arr)][:3]}; "
            "for areas, divide them by the area of one pixel"
        )
    if arr.sum() <= 0:
        raise ParameterError("mapped_pixels are all 0: the map holds no mapped pixel")
    return arr.astype(np.int64)


def _check_strata(
    names: tuple[str, ...], n_i: NDArray[np.int64], pixels: NDArray[np.int64]
) -> None:
    """Refuse a mapped class with fewer than 2 sample points (the variances divide by
    n_i. − 1; a class mapped on one pixel may have 1: it is then known exactly), and sample
    points in a class the map never shows."""
    ghost = [names[i] for i in np.flatnonzero((pixels == 0) & (n_i > 0))]
    if ghost:
        raise ParameterError(
            f"the sample has points in {ghost}, which the map shows on no pixel; the strata "
            "are the map's classes: give the map's pixel counts (mapped_pixels) and the sample "
            "points by the map class at each point"
        )
    over = [i for i in np.flatnonzero(n_i > pixels) if pixels[i] > 0]
    if over:
        parts = [
            f"{names[i]!r} has {_plural(int(n_i[i]), 'sample point')} but "
            f"{_plural(int(pixels[i]), 'mapped pixel')}"
            for i in over
        ]
        raise ParameterError(
            f"{'; '.join(parts)}: a stratified sample draws each pixel at most once (without "
            "replacement), so a class has no more points than pixels; remove the points "
            "counted twice, and check that mapped_pixels are this map's pixel counts"
        )
    short = [i for i in np.flatnonzero((pixels > 0) & (n_i < np.minimum(2, pixels)))]
    if short:
        parts = [
            f"{names[i]!r} ({_plural(int(pixels[i]), 'mapped pixel')}) has "
            f"{_plural(int(n_i[i]), 'sample point')}, needs {2 - int(n_i[i])} more"
            for i in short
        ]
        raise ParameterError(
            f"{'; '.join(parts)}: every mapped class needs at least 2 sample points for a "
            f"standard error ({_CITE} recommend {MIN_PER_CLASS} or more); label more points "
            "drawn at random in that class, or merge it into another class"
        )


def stratified_estimate(
    counts: ArrayLike,
    mapped_pixels: ArrayLike,
    pixel_area: float | None = None,
    classes: Sequence[str] | None = None,
    confidence: float = 0.95,
    finite_population_correction: bool = True,
) -> AreaEstimate:
    """Accuracy and class areas from a stratified sample, by map class (Olofsson et al. 2014).

    Args:
        counts: (K, K) sample counts n_ij: points whose map class (stratum) is i and whose
            reference class is j.
        mapped_pixels: (K,) pixel count N_i of each map class (no data left out).
        pixel_area: area of one pixel in hectares (0.09 for 30 m pixels); None gives areas in
            pixels.
        classes: (K,) class names; default ``class 0`` …
        confidence: level of the confidence intervals (normal approximation).
        finite_population_correction: multiply each stratum's variance term by
            1 − n_i./N_i (a class sampled completely then has no variance); False gives the
            paper's equations, which leave it out.

    Returns:
        An :class:`AreaEstimate`.

    Raises:
        ParameterError: ``counts`` is not a square matrix of counts, ``mapped_pixels`` does
            not match it, a mapped class has fewer than 2 sample points (the message names
            it and how many more it needs), a class has more sample points than pixels, or
            the sample holds points of a class the map never shows. A class that is never
            mapped but found in the reference is fine: its area comes from the other
            classes' omission errors.
    """
    n = _as_counts(counts)
    k = n.shape[0]
    pixels = _as_pixels(mapped_pixels, k)
    names = _names(classes, k)
    z = _z(confidence)
    if pixel_area is not None and not (math.isfinite(pixel_area) and pixel_area > 0):
        raise ParameterError(
            f"pixel_area must be a positive area in hectares (0.01 for a 10 m pixel), got "
            f"{pixel_area!r}"
        )
    n_i = n.sum(axis=1)
    _check_strata(names, n_i, pixels)

    big_n = float(pixels.sum())
    w = pixels / big_n  # W_i
    sampled = n_i > 0
    rows = np.where(sampled, n_i, 1).astype(np.float64)
    f = n / rows[:, None]  # n_ij / n_i. (0 in unsampled, unmapped strata)
    # n_i. − 1; infinite (no variance) for a one-pixel class whose pixel is in the sample
    df = np.where(n_i >= 2, n_i - 1, np.inf).astype(np.float64)
    if finite_population_correction:
        # the variances' n_i. − 1 divided by 1 − n_i./N_i: infinite for a class sampled
        # completely (it is known, not estimated)
        part = n_i < pixels
        fpc = np.where(part, 1.0 - n_i / np.maximum(pixels, 1), 1.0)
        df = np.where(part, df / fpc, np.inf)
    p = w[:, None] * f  # eq. 4 / 9: p̂_ij
    p_k = p.sum(axis=0)  # p̂_.j
    diag = np.diag(p)

    with np.errstate(invalid="ignore", divide="ignore"):
        users = np.where(sampled, np.diag(f), np.nan)  # eq. 2: Û_i = n_ii / n_i.
        producers = np.where(p_k > 0, diag / np.where(p_k > 0, p_k, 1.0), np.nan)  # eq. 3
    overall = float(diag.sum())  # eq. 1
    u0 = np.nan_to_num(users)
    var_users = np.where(sampled, u0 * (1 - u0) / df, np.nan)  # eq. 6
    var_overall = float(np.sum(w**2 * u0 * (1 - u0) / df))  # eq. 5
    cell = f * (1 - f) / df[:, None]  # n_ij/n_i. (1 − n_ij/n_i.) / (n_i. − 1) (× the fpc)
    var_pk = np.sum((w**2)[:, None] * cell, axis=0)  # eq. 10 squared

    # eq. 7: producer's accuracy, with the estimated reference totals N̂_.j = Σ_i N_i n_ij/n_i.
    n_hat = pixels[:, None] * f  # (K, K) N_i n_ij / n_i.
    n_dot = n_hat.sum(axis=0)  # N̂_.j
    p0 = np.nan_to_num(producers)
    # the first term vanishes for a class never mapped (N_j = 0, no V(Û_j))
    own = pixels.astype(np.float64) ** 2 * (1 - p0) ** 2 * np.nan_to_num(var_users)
    others = (pixels.astype(np.float64) ** 2)[:, None] * cell  # N_i² n_ij/n_i.(1−…)/(n_i.−1)
    others_sum = others.sum(axis=0) - np.diag(others)  # Σ over i ≠ j
    with np.errstate(invalid="ignore", divide="ignore"):
        var_producers = np.where(
            n_dot > 0, (own + p0**2 * others_sum) / np.where(n_dot > 0, n_dot, 1.0) ** 2, np.nan
        )

    unit_area = 1.0 if pixel_area is None else float(pixel_area)
    total = big_n * unit_area  # A
    return AreaEstimate(
        classes=names,
        counts=n,
        mapped_pixels=pixels,
        pixel_area=unit_area,
        unit="px" if pixel_area is None else "ha",
        confidence=float(confidence),
        z=z,
        proportions=p,
        overall_accuracy=overall,
        overall_accuracy_se=math.sqrt(var_overall),
        users_accuracy=users,
        users_accuracy_se=np.sqrt(var_users),
        producers_accuracy=producers,
        producers_accuracy_se=np.sqrt(var_producers),
        area_proportion=p_k,
        area_proportion_se=np.sqrt(var_pk),
        mapped_area=pixels.astype(np.float64) * unit_area,
        area=p_k * total,  # eq. 9: Â_j = A p̂_.j
        area_se=np.sqrt(var_pk) * total,  # eq. 11
        finite_population_correction=bool(finite_population_correction),
    )


# ---------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class SamplePlan:
    """A stratified sample design: how many points, and how many in each map class.

    Attributes:
        classes: class names, (K,).
        mapped_pixels: int64 (K,) pixels of each map class.
        expected_user_accuracy: float64 (K,) the user's accuracy expected of each class.
        target_se: the standard error of the overall accuracy aimed at.
        n_total: the sample size of eq. 13 for ``target_se`` (before allocation).
        allocation: ``"compromise"``, ``"proportional"`` or ``"equal"``.
        min_per_class: the least points of a class under ``"compromise"``.
        per_class: int64 (K,) the points to draw in each class (never more than its pixels;
            0 for a class without pixels).
        expected_se: the standard error of the overall accuracy that ``per_class`` gives if
            the user's accuracies are as expected (eq. 5, with the finite population
            correction of :func:`stratified_estimate`).
    """

    classes: tuple[str, ...]
    mapped_pixels: NDArray[np.int64]
    expected_user_accuracy: NDArray[np.float64]
    target_se: float
    n_total: int
    allocation: str
    min_per_class: int
    per_class: NDArray[np.int64]
    expected_se: float

    @property
    def n(self) -> int:
        """Points in all classes (``per_class.sum()``)."""
        return int(self.per_class.sum())

    def table(self) -> pd.DataFrame:
        """One row per class: ``class, mapped_pixels, share, expected_user_accuracy, points``."""
        total = float(self.mapped_pixels.sum())
        return pd.DataFrame(
            {
                "class": list(self.classes),
                "mapped_pixels": self.mapped_pixels,
                "share": self.mapped_pixels / total if total else np.zeros(len(self.classes)),
                "expected_user_accuracy": self.expected_user_accuracy,
                "points": self.per_class,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON types."""
        return {
            "method": f"eq. 13 of {_CITE} (Cochran's stratified sample size)",
            "target_se": self.target_se,
            "n_total": self.n_total,
            "allocation": self.allocation,
            "min_per_class": self.min_per_class,
            "expected_se": self.expected_se,
            "n": self.n,
            "per_class": self.table().to_dict(orient="records"),
        }

    def summary(self) -> str:
        """One line: how many points, in which classes, and why."""
        active = self.mapped_pixels > 0
        u = self.expected_user_accuracy[active]
        ua = f"{u.min():.2f}" if np.ptp(u) == 0 else f"{u.min():.2f}–{u.max():.2f}"
        why = {
            "compromise": f"at least {self.min_per_class} per class, the rest by mapped area",
            "proportional": "shared by mapped area",
            "equal": "the same number in each class",
        }[self.allocation]
        shares = ", ".join(
            f"{c} {int(p):,}"
            for c, p, a in zip(self.classes, self.per_class, active, strict=True)
            if a
        )
        capped = [
            c
            for c, p, m in zip(self.classes, self.per_class, self.mapped_pixels, strict=True)
            if 0 < m == p
        ]
        short = f" ({', '.join(capped)}: every pixel)" if capped else ""
        few = [
            c
            for c, p, m in zip(self.classes, self.per_class, self.mapped_pixels, strict=True)
            if m > 0 and p < min(2, m)
        ]
        se = (
            f"expected standard error {self.expected_se:.4f}"
            if not few
            else f"no standard error for {', '.join(few)} (under 2 points: allocate at least "
            "2 per class, e.g. the compromise allocation)"
        )
        return (
            f"{self.n_total:,} points give a standard error of {self.target_se:g} in overall "
            f"accuracy at expected user's accuracies {ua} ({_CITE}, eq. 13); {why}: {shares}"
            f"{short} = {self.n:,} points, {se}"
        )


def _largest_remainder(n: int, weights: NDArray[np.float64]) -> NDArray[np.int64]:
    """``n`` shared in proportion to ``weights`` as whole numbers summing to ``n`` (Hamilton's
    largest remainders; ties to the first)."""
    out = np.zeros(weights.shape, dtype=np.int64)
    total = weights.sum()
    if n <= 0 or total <= 0:
        return out
    exact = n * weights / total
    out = np.floor(exact).astype(np.int64)
    rest = n - int(out.sum())
    order = np.argsort(-(exact - out), kind="stable")
    out[order[:rest]] += 1
    return out


def _expected_accuracy(
    value: float | Sequence[float] | Mapping[str, float] | ArrayLike, names: tuple[str, ...]
) -> NDArray[np.float64]:
    k = len(names)
    if isinstance(value, Mapping):
        unknown = [c for c in value if c not in names]
        if unknown:
            raise ParameterError(
                f"expected_user_accuracy names {unknown}, which are not classes of the map "
                f"{list(names)}"
            )
        missing = [c for c in names if c not in value]
        if missing:
            raise ParameterError(
                f"expected_user_accuracy gives no value for {missing}; give one per class, or "
                "one number for all"
            )
        arr = np.array([float(value[c]) for c in names])
    else:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(k, float(arr))
        elif arr.shape != (k,):
            raise ParameterError(
                f"expected_user_accuracy must be one number or one per class ({k}), got shape "
                f"{arr.shape}"
            )
    if not np.all((arr > 0) & (arr <= 1)):
        raise ParameterError(
            f"expected user's accuracies must lie in (0, 1], got {arr.tolist()}; e.g. 0.8 for "
            "a class expected to be right on 80 % of its mapped area"
        )
    return arr


def sample_size(
    mapped_pixels: ArrayLike,
    expected_user_accuracy: float | Sequence[float] | Mapping[str, float] = 0.8,
    target_se: float = 0.01,
    min_per_class: int = MIN_PER_CLASS,
    allocation: Allocation = "compromise",
    classes: Sequence[str] | None = None,
) -> SamplePlan:
    """Plan a stratified random sample for a map's accuracy and area (Olofsson et al. 2014).

    The total is eq. 13 (Cochran 1977, eq. 5.25): n = (Σ_i W_i S_i)² / (S(Ô)² + Σ_i W_i S_i² /
    N), S_i = √(U_i (1 − U_i)), N the mapped pixels, rounded up; for a map of many pixels it
    is (Σ_i W_i S_i / S(Ô))². It is then allocated:

    - ``"proportional"``: n W_i, as whole numbers summing to n (largest remainders);
    - ``"equal"``: n / K in each mapped class (rounded);
    - ``"compromise"`` (the paper's recommendation): every mapped class gets at least
      ``min_per_class`` points, and what is left of n is shared among the others in
      proportion to their mapped area (repeated until no class falls below the minimum).
      When K × ``min_per_class`` exceeds n, every class gets the minimum and the sample is
      larger than n.

    A class never gets more points than it has pixels, nor any when it has none.

    Args:
        mapped_pixels: (K,) pixels of each map class.
        expected_user_accuracy: the user's accuracy expected of each class: one number for
            all, (K,) values, or a mapping class name -> value (needs ``classes``).
        target_se: the standard error of the overall accuracy aimed at (0.01 = 1 point).
        min_per_class: the least points per class of the ``"compromise"`` allocation.
        allocation: ``"compromise"``, ``"proportional"`` or ``"equal"``.
        classes: (K,) class names.

    Returns:
        A :class:`SamplePlan`.
    """
    pixels = np.asarray(mapped_pixels)
    if pixels.ndim != 1 or pixels.size == 0:
        raise ParameterError(
            f"mapped_pixels must give the pixels of each map class, (K,); got shape {pixels.shape}"
        )
    pixels = _as_pixels(pixels, pixels.size)
    names = _names(classes, pixels.size)
    if not (isinstance(target_se, int | float) and 0 < target_se < 0.5):
        raise ParameterError(
            f"target_se must be a standard error of overall accuracy between 0 and 0.5, got "
            f"{target_se!r}; e.g. 0.01 (--target-se 0.01) for ±2 points at 95 %"
        )
    if not (isinstance(min_per_class, int | np.integer) and min_per_class >= 2):
        raise ParameterError(
            f"min_per_class must be a whole number of at least 2 (each stratum's variance needs "
            f"2 points; {MIN_PER_CLASS} is recommended), got {min_per_class!r}"
        )
    if allocation not in ALLOCATIONS:
        raise ParameterError(f"allocation must be one of {list(ALLOCATIONS)}, got {allocation!r}")
    ua = _expected_accuracy(expected_user_accuracy, names)
    w = pixels / pixels.sum()
    s = np.sqrt(ua * (1 - ua))
    # eq. 13 with its finite-population term, which the estimate's correction matches
    big_n = float(pixels.sum())
    n_exact = float(np.sum(w * s)) ** 2 / (target_se**2 + float(np.sum(w * s**2)) / big_n)
    n_total = math.ceil(round(n_exact, 9))
    active = pixels > 0
    k_active = int(active.sum())
    per = np.zeros(pixels.size, dtype=np.int64)
    if allocation == "proportional":
        per = _largest_remainder(n_total, w)
    elif allocation == "equal":
        per[active] = max(round(n_total / k_active), 2)
    else:
        floor = np.minimum(min_per_class, pixels)
        fixed = np.zeros(pixels.size, dtype=bool)
        while True:
            free = active & ~fixed
            rest = n_total - int(floor[fixed].sum())
            if not free.any():
                break
            share = _largest_remainder(max(rest, 0), np.where(free, w, 0.0))
            low = free & (share < floor)
            if not low.any():
                per[free] = share[free]
                break
            fixed |= low
        per[fixed] = floor[fixed]
    per = np.minimum(per, pixels)
    sampled = per >= 2
    fpc = 1.0 - per / np.maximum(pixels, 1)  # as stratified_estimate: 0 for every pixel
    term = w**2 * ua * (1 - ua) * fpc / np.where(sampled, per - 1, 1)
    var = float(np.sum(np.where(sampled, term, 0.0)))
    if np.any(active & (per < np.minimum(2, pixels))):
        var = float("inf")  # a mapped class with under 2 points: no standard error
    return SamplePlan(
        classes=names,
        mapped_pixels=pixels,
        expected_user_accuracy=ua,
        target_se=float(target_se),
        n_total=n_total,
        allocation=allocation,
        min_per_class=int(min_per_class),
        per_class=per,
        expected_se=math.sqrt(var),
    )


# ---------------------------------------------------------------------------- the class map
@dataclass(frozen=True)
class ClassMap:
    """A class map on disk: a one-band GeoTIFF of integer class ids (``cropglobe map``'s).

    Attributes:
        path: the GeoTIFF.
        classes: class names by id: id i is ``classes[i]``.
        nodata: the no-data value (255 in cropglobe maps), or None.
        height, width: size in pixels.
        crs: the rasterio CRS, or None.
        transform: the affine pixel -> CRS transform.
        block_shape: (rows, columns) of the file's blocks.
    """

    path: Path
    classes: tuple[str, ...]
    nodata: int | None
    height: int
    width: int
    crs: Any
    transform: Any
    block_shape: tuple[int, int]

    def pixel_area_ha(self) -> float:
        """Area of one pixel in hectares, from the transform of a projected CRS.

        Raises:
            DataFormatError: the map has no CRS, or a geographic one (degrees: pixel areas
                change with latitude, which cropglobe does not integrate); the message says
                how to reproject it or to give the area (``--pixel-area``).
        """
        fix = (
            "reproject the map to an equal-area or UTM CRS with nearest-neighbour resampling "
            f"(gdalwarp -t_srs EPSG:6933 -r near {self.path.name} {self.path.stem}_ea.tif) and "
            "draw the sample from that map, or give the area of one pixel in hectares with "
            "pixel_area= (--pixel-area HA)"
        )
        if self.crs is None:
            raise DataFormatError(
                f"{self.path} has no CRS, so the area of its pixels is unknown; {fix}"
            )
        if self.crs.is_geographic:
            raise DataFormatError(
                f"{self.path} is in a geographic CRS ({self.crs.to_string()}, degrees): its "
                f"pixels' areas change with latitude; {fix}"
            )
        t = self.transform
        _, factor = self.crs.linear_units_factor
        area_m2 = abs(t.a * t.e - t.b * t.d) * float(factor) ** 2
        if self.crs.to_dict().get("proj") == "merc":
            log.warning(
                "%s is in a Mercator projection (%s): its pixels cover less ground than they "
                "seem away from the equator (by cos² of the latitude), so the areas are too "
                "large; reproject it to an equal-area or UTM CRS for areas",
                self.path,
                self.crs.to_string(),
            )
        return area_m2 / 10_000.0

    def strips(self, strip_pixels: int = STRIP_PIXELS) -> Iterator[tuple[int, NDArray[Any]]]:
        """Yield ``(first row, values (h, width))`` strips of whole rows, top to bottom, each
        about ``strip_pixels`` pixels (a multiple of the file's block height)."""
        import rasterio
        from rasterio.windows import Window

        bh = max(1, self.block_shape[0])
        rows = max(bh, (max(1, strip_pixels // max(self.width, 1)) // bh) * bh)
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB), rasterio.open(self.path) as ds:
            for r0 in range(0, self.height, rows):
                h = min(rows, self.height - r0)
                yield r0, ds.read(1, window=Window(0, r0, self.width, h))


def _require_map(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        raise DataFormatError(f"{p}: is a folder; expected a class map GeoTIFF (cropglobe map)")
    if not p.is_file():
        raise MissingFileError(
            f"{p}: no such file; expected a class map GeoTIFF (written by cropglobe map); check "
            "the path"
        )
    return p


def _names_from_file(ds: Any, path: Path) -> tuple[str, ...] | None:
    """Class names a cropglobe map records: the ``CROPGLOBE_CLASSES`` tag, ``CLASS_i`` tags,
    or the sidecar ``map.json`` (``model.classes``)."""
    tags = ds.tags()
    text = tags.get("CROPGLOBE_CLASSES")
    if text:
        try:
            names = json.loads(text)
            if isinstance(names, list) and names and all(isinstance(c, str) for c in names):
                return tuple(names)
        except ValueError:
            pass
    numbered = {
        int(k[6:]): v for k, v in tags.items() if k.startswith("CLASS_") and k[6:].isdigit()
    }
    if numbered and sorted(numbered) == list(range(len(numbered))):
        return tuple(numbered[i] for i in range(len(numbered)))
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
            names = meta.get("model", {}).get("classes")
            if isinstance(names, list) and names and all(isinstance(c, str) for c in names):
                return tuple(names)
        except (ValueError, AttributeError, OSError):
            pass
    return None


def open_class_map(path: str | os.PathLike[str], classes: Sequence[str] | None = None) -> ClassMap:
    """Open a class map and find its class names.

    Args:
        path: a one-band GeoTIFF of integer class ids, such as ``cropglobe map``'s.
        classes: class names in id order (id 0 first); default: the names the map records
            (the ``CROPGLOBE_CLASSES`` / ``CLASS_i`` tags, or ``model.classes`` of the
            sidecar JSON beside it).

    Returns:
        A :class:`ClassMap`.

    Raises:
        MissingFileError: no such file.
        DataFormatError: not a raster, not one band of integers, or no class names recorded
            and none given.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    p = _require_map(path)
    try:
        ds = rasterio.open(p)
    except RasterioIOError as exc:
        raise DataFormatError(
            f"{p}: cannot read it as a raster ({str(exc).splitlines()[0]}); expected a class "
            "map GeoTIFF written by cropglobe map"
        ) from None
    with ds:
        if ds.count != 1:
            raise DataFormatError(
                f"{p} has {ds.count} bands; expected one band of class ids (the class map of "
                "cropglobe map, not its probabilities)"
            )
        tags = ds.tags()
        if "CROPGLOBE_ENCODING" in tags:  # a layer of values beside the class map
            layer = (
                f"uncertainty layer ({tags['CROPGLOBE_UNCERTAINTY']})"
                if "CROPGLOBE_UNCERTAINTY" in tags
                else "probabilities or applicability layer"
            )
            raise DataFormatError(
                f"{p} is the {layer} of cropglobe map, not its class map; give the class map "
                "(the GeoTIFF named by cropglobe map's -o)"
            )
        dtype = np.dtype(ds.dtypes[0])
        if dtype.kind not in "ui":
            raise DataFormatError(
                f"{p} holds {dtype} values; expected integer class ids (uint8, as cropglobe map "
                "writes them), not probabilities or reflectances"
            )
        recorded = _names_from_file(ds, p)
        if classes is not None:
            names = tuple(str(c).strip() for c in classes)
            if not names or not all(names):
                raise ParameterError(
                    f"classes {list(classes)} has an empty name; give the name of every class "
                    "id in order, e.g. classes=['wheat', 'maize'] (--classes wheat,maize)"
                )
            if len(set(names)) != len(names):
                raise ParameterError(f"classes {list(names)} names a class twice")
            if recorded is not None and recorded != names:
                log.info("%s records the classes %s; using %s as given", p, recorded, names)
        elif recorded is None:
            raise DataFormatError(
                f"{p} names no classes (no CROPGLOBE_CLASSES tag, no {p.with_suffix('.json').name}"
                " beside it): it was not written by cropglobe map; give the name of each class "
                "id in order with classes=[…] (--classes wheat,maize,…; id 0 first)"
            )
        else:
            names = recorded
        nodata = ds.nodata
        crs = ds.crs
        if crs is not None and not crs.to_wkt():
            crs = None
        block = ds.block_shapes[0] if ds.block_shapes else (1, ds.width)
        return ClassMap(
            path=p,
            classes=names,
            nodata=None if nodata is None or not math.isfinite(nodata) else int(nodata),
            height=int(ds.height),
            width=int(ds.width),
            crs=crs,
            transform=ds.transform,
            block_shape=(int(block[0]), int(block[1])),
        )


def _as_map(
    map_or_path: ClassMap | str | os.PathLike[str], classes: Sequence[str] | None
) -> ClassMap:
    if isinstance(map_or_path, ClassMap):
        return map_or_path
    return open_class_map(map_or_path, classes)


def _class_counts(cmap: ClassMap, values: NDArray[Any]) -> NDArray[np.int64]:
    """Pixels of each class in ``values`` (no data left out), (K,); refuses ids without a
    name."""
    k = len(cmap.classes)
    total = np.zeros(k, dtype=np.int64)
    values = values.ravel()
    for start in range(0, values.size, _COUNT_CHUNK):  # bounds the int64 copy bincount makes
        flat = values[start : start + _COUNT_CHUNK]
        if cmap.nodata is not None:
            flat = flat[flat != cmap.nodata]
        if flat.size == 0:
            continue
        lo, hi = int(flat.min()), int(flat.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            nd = "" if cmap.nodata is None else f" (no data is {cmap.nodata})"
            raise DataFormatError(
                f"{cmap.path} holds class id {bad} but names only {_plural(k, 'class')} (ids "
                f"0–{k - 1}){nd}; give every class id a name with classes=[…] (--classes "
                "a,b,…), or set the map's no-data value"
            )
        total += np.bincount(flat.astype(np.intp), minlength=k)
    return total


def count_pixels(
    map_or_path: ClassMap | str | os.PathLike[str],
    classes: Sequence[str] | None = None,
    strip_pixels: int = STRIP_PIXELS,
) -> NDArray[np.int64]:
    """Pixels of each class of a class map, streamed strip by strip (no data left out).

    Args:
        map_or_path: a :class:`ClassMap` or the map's path.
        classes: class names when the map records none (see :func:`open_class_map`).
        strip_pixels: pixels read at a time.

    Returns:
        int64 (K,) pixel counts in class-id order.
    """
    cmap = _as_map(map_or_path, classes)
    total = np.zeros(len(cmap.classes), dtype=np.int64)
    for _, strip in cmap.strips(strip_pixels):
        total += _class_counts(cmap, strip)
    return total


def _per_class_request(
    n_per_class: int | Sequence[int] | Mapping[str, int] | SamplePlan, names: tuple[str, ...]
) -> NDArray[np.int64]:
    if isinstance(n_per_class, SamplePlan):
        if n_per_class.classes != names:
            raise ParameterError(
                f"the plan is for classes {list(n_per_class.classes)}, the map has "
                f"{list(names)}; plan on this map"
            )
        return n_per_class.per_class.copy()
    if isinstance(n_per_class, Mapping):
        unknown = [c for c in n_per_class if c not in names]
        if unknown:
            raise ParameterError(
                f"n_per_class names {unknown}, which are not classes of the map {list(names)}"
            )
        arr = np.array([n_per_class.get(c, 0) for c in names])
    else:
        arr = np.asarray(n_per_class)
        if arr.ndim == 0:
            arr = np.full(len(names), arr)
        elif arr.shape != (len(names),):
            raise ParameterError(
                f"n_per_class must be one number or one per class ({len(names)}), got shape "
                f"{arr.shape}"
            )
    if not np.issubdtype(arr.dtype, np.integer) or np.any(arr < 0):
        raise ParameterError(
            f"n_per_class must be whole numbers of points, 0 or more, got {arr.tolist()}"
        )
    return arr.astype(np.int64)


def _lonlat(
    cmap: ClassMap, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if cmap.crs is None or x.size == 0:
        return np.full(x.shape, np.nan), np.full(y.shape, np.nan)
    if cmap.crs.is_geographic and cmap.crs.to_epsg() == 4326:
        return x.copy(), y.copy()
    from rasterio.warp import transform

    lon, lat = transform(cmap.crs, "EPSG:4326", x.tolist(), y.tolist())
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _centres(
    cmap: ClassMap, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = cmap.transform
    c = cols + 0.5
    r = rows + 0.5
    return t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f


def draw_sample(
    map_or_path: ClassMap | str | os.PathLike[str],
    n_per_class: int | Sequence[int] | Mapping[str, int] | SamplePlan,
    random_state: int | np.random.Generator | None = None,
    *,
    classes: Sequence[str] | None = None,
    strip_pixels: int = STRIP_PIXELS,
) -> pd.DataFrame:
    """Draw a stratified random sample of pixels, the map's classes as strata.

    Two passes over the map, strip by strip: the first counts each class's pixels; then
    ``n`` ranks are drawn without replacement among each class's pixels (in row-major
    order), and the second pass finds the pixels of those ranks. Memory is one strip plus
    the sample; the sample depends only on the map and the seed, not on ``strip_pixels``.
    A class with fewer pixels than asked gives all of them (logged); no-data pixels are
    never drawn. The points come in a random order (so an interpreter does not label one
    class after another), numbered from 1.

    Args:
        map_or_path: a :class:`ClassMap` or the map's path.
        n_per_class: points per class: one number for all, (K,) numbers, a mapping class
            name -> number (others 0), or a :class:`SamplePlan`.
        random_state: seed or ``numpy.random.Generator``; the same seed gives the same points.
        classes: class names when the map records none.
        strip_pixels: pixels read at a time.

    Returns:
        One row per point: ``point_id, map_class, row, col, x, y`` (pixel centre in the
        map's CRS), ``lon, lat`` (degrees, WGS 84; NaN for a map without CRS).
    """
    cmap = _as_map(map_or_path, classes)
    want = _per_class_request(n_per_class, cmap.classes)
    counts = count_pixels(cmap, strip_pixels=strip_pixels)
    take = np.minimum(want, counts)
    for k in np.flatnonzero((want > counts) & (counts > 0)):
        log.warning(
            "class %r has %s, fewer than the %s asked: all of them are in the sample",
            cmap.classes[k],
            _plural(int(counts[k]), "pixel"),
            f"{int(want[k]):,}",
        )
    rng = np.random.default_rng(random_state)
    ranks = [
        np.sort(rng.choice(int(counts[k]), int(take[k]), replace=False)).astype(np.int64)
        if take[k] > 0
        else np.zeros(0, dtype=np.int64)
        for k in range(len(cmap.classes))
    ]
    found_r: list[list[NDArray[np.int64]]] = [[] for _ in cmap.classes]
    found_c: list[list[NDArray[np.int64]]] = [[] for _ in cmap.classes]
    seen = np.zeros(len(cmap.classes), dtype=np.int64)
    if take.sum() > 0:
        for r0, strip in cmap.strips(strip_pixels):
            here = _class_counts(cmap, strip)
            flat = strip.ravel()
            for k in np.flatnonzero(here):
                lo, hi = np.searchsorted(ranks[k], [seen[k], seen[k] + here[k]])
                if hi > lo:
                    pos = np.flatnonzero(flat == k)[ranks[k][lo:hi] - seen[k]]
                    found_r[k].append(r0 + pos // cmap.width)
                    found_c[k].append(pos % cmap.width)
            seen += here
    rows = np.concatenate([a for parts in found_r for a in parts] or [np.zeros(0, np.int64)])
    cols = np.concatenate([a for parts in found_c for a in parts] or [np.zeros(0, np.int64)])
    ids = np.repeat(np.arange(len(cmap.classes)), take)
    order = rng.permutation(rows.size)
    rows, cols, ids = rows[order].astype(np.int64), cols[order].astype(np.int64), ids[order]
    x, y = _centres(cmap, rows, cols)
    lon, lat = _lonlat(cmap, x, y)
    return pd.DataFrame(
        {
            "point_id": np.arange(1, rows.size + 1),
            "map_class": [cmap.classes[i] for i in ids],
            "row": rows,
            "col": cols,
            "x": x,
            "y": y,
            "lon": lon,
            "lat": lat,
        }
    )


# ---------------------------------------------------------------------------- the reference
@dataclass(frozen=True)
class ReferencePoints:
    """Labelled points on a class map: each point's map class (stratum) and reference class.

    Attributes:
        frame: the kept points: ``row, col, map_class, reference`` and the table's columns.
        map_ids: int64 (n,) map class id of each kept point.
        reference_ids: int64 (n,) reference class id of each kept point.
        n_read: rows in the table.
        n_unlabelled: rows without a reference class (dropped).
        n_no_position: rows without finite coordinates (dropped).
        n_outside: points outside the map (dropped).
        n_nodata: points on the map's no-data pixels (dropped).
        coords: ``"xy"`` (the map's CRS), ``"lonlat"`` (WGS 84) or ``"geometry"``.
    """

    frame: pd.DataFrame
    map_ids: NDArray[np.int64]
    reference_ids: NDArray[np.int64]
    n_read: int
    n_unlabelled: int
    n_no_position: int
    n_outside: int
    n_nodata: int
    coords: str

    def error_matrix(self, k: int) -> NDArray[np.int64]:
        """int64 (k, k) sample counts n_ij, rows = map class, columns = reference class."""
        out = np.zeros((k, k), dtype=np.int64)
        np.add.at(out, (self.map_ids, self.reference_ids), 1)
        return out

    def notes(self) -> dict[str, Any]:
        """The counts of read and dropped points, for the record."""
        return {
            "points_read": self.n_read,
            "points_used": len(self.map_ids),
            "unlabelled": self.n_unlabelled,
            "without_coordinates": self.n_no_position,
            "outside_map": self.n_outside,
            "on_nodata": self.n_nodata,
            "coordinates": self.coords,
        }


_LON_NAMES = ("lon", "longitude", "lng", "long")
_LAT_NAMES = ("lat", "latitude")


def _column(df: pd.DataFrame, name: str, path: str, what: str, option: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    columns = [str(c) for c in df.columns]
    near = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
    raise DataFormatError(
        f"{path} has no column {name!r}{hint}, the {what}; found {columns[:20]}{more}; name "
        f"the column with {option}"
    )


def _first_present(df: pd.DataFrame, names: Sequence[str]) -> str | None:
    lower = {str(c).lower(): str(c) for c in df.columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _geometry_xy(
    df: pd.DataFrame, meta: Mapping[bytes, bytes]
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """x, y of a GeoParquet's WKB point ``geometry`` and their CRS (recorded, else lon/lat)."""
    from cropglobe.io.tables import wkb_points_to_lonlat

    x, y = wkb_points_to_lonlat(df["geometry"].tolist())
    crs_text = "OGC:CRS84"  # GeoParquet's default: longitude, latitude
    try:
        geo = json.loads(meta.get(b"geo", b"{}"))
        crs = geo.get("columns", {}).get("geometry", {}).get("crs")
        if crs is not None:
            crs_text = json.dumps(crs) if isinstance(crs, dict) else str(crs)
    except (ValueError, AttributeError):
        pass
    return x, y, crs_text


def _labels(
    values: pd.Series,
    names: tuple[str, ...],
    label_map: Mapping[str, str] | None,
    where: str,
    column: str,
) -> NDArray[np.int64]:
    """Reference class ids (−1 for missing labels); unknown labels are refused."""
    text = values.astype("string").str.strip()
    missing = text.isna() | (text == "")
    mapping = dict(label_map or {})
    bad_targets = sorted({v for v in mapping.values() if v not in names})
    if bad_targets:
        raise LabelError(
            f"label_map maps to {bad_targets}, which are not classes of the map; the map's "
            f"classes are {list(names)}"
        )
    mapped = text.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)
    index = {c: i for i, c in enumerate(names)}
    present = mapped[~missing]
    unknown = sorted({str(v) for v in present.unique() if v not in index})
    if unknown:
        near = {u: h[0] for u in unknown if (h := _close(u, names))}
        hint = "".join(f" (did you mean {v!r} for {k!r}?)" for k, v in near.items())
        shown = unknown[:10] + (["…"] if len(unknown) > 10 else [])
        example = ",".join(f"{u}={near.get(u, 'CLASS')}" for u in unknown[:2])
        raise LabelError(
            f"{where}: reference classes {shown} in column {column!r} are not classes of the "
            f"map{hint}; the map's classes are {list(names)}; rename them in the table, or map "
            f"them with label_map={{…}} (--label-map {example})"
        )
    out = np.full(len(values), -1, dtype=np.int64)
    keep = (~missing).to_numpy()
    out[keep] = [index[str(v)] for v in mapped[~missing]]
    return out


def _close(name: str, names: Sequence[str]) -> list[str]:
    lower = {n.lower(): n for n in names}
    if name.lower() in lower:
        return [lower[name.lower()]]
    return difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)


def _values_at(
    cmap: ClassMap, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Map values at pixels (rows, cols), reading each file block that holds a point once."""
    import rasterio
    from rasterio.windows import Window

    out = np.empty(rows.size, dtype=np.int64)
    if rows.size == 0:
        return out
    bh, bw = cmap.block_shape
    nbx = -(-cmap.width // bw)
    key = (rows // bh) * nbx + cols // bw
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB), rasterio.open(cmap.path) as ds:
        for group in np.split(order, bounds):
            b = int(key[group[0]])
            r0, c0 = (b // nbx) * bh, (b % nbx) * bw
            h, w = min(bh, cmap.height - r0), min(bw, cmap.width - c0)
            block = ds.read(1, window=Window(c0, r0, w, h))
            out[group] = block[rows[group] - r0, cols[group] - c0]
    return out


def read_reference(
    reference: str | os.PathLike[str] | pd.DataFrame,
    map_or_path: ClassMap | str | os.PathLike[str],
    label_column: str,
    *,
    coords: Literal["auto", "xy", "lonlat"] = "auto",
    x_column: str | None = None,
    y_column: str | None = None,
    label_map: Mapping[str, str] | None = None,
    classes: Sequence[str] | None = None,
    xy_crs: str | None = None,
) -> ReferencePoints:
    """Read labelled reference points and find each one's class on the map.

    Coordinates: ``coords="xy"`` reads ``x``/``y`` (any case; or ``x_column``/``y_column``) in
    the map's CRS, or in ``xy_crs`` when given; ``"lonlat"`` reads ``lon``/``lat`` (also
    ``longitude``/``latitude``; or the columns named) in degrees, WGS 84; ``"auto"`` takes
    ``x``/``y`` when the table has them (the points :func:`draw_sample` writes: exact pixel
    centres), else longitude/latitude columns, else a GeoParquet ``geometry`` of points (in
    its recorded CRS, else lon/lat).

    Points outside the map, on its no-data pixels, without coordinates or without a label
    are counted, dropped and logged (WARNING). Reference classes must be the map's class
    names, after ``label_map``. Two points on one pixel are refused (a stratified sample
    holds each pixel once), and so is a ``map_class`` column (written by
    :func:`draw_sample`) that disagrees with the map: the sample was drawn from another map.

    Args:
        reference: a CSV / Parquet / GeoParquet table, or a DataFrame.
        map_or_path: the class map (a :class:`ClassMap` or its path).
        label_column: the column holding each point's reference class name.
        coords: ``"auto"``, ``"xy"`` or ``"lonlat"``.
        x_column, y_column: the coordinate columns (need ``coords`` ``"xy"`` or ``"lonlat"``).
        label_map: reference label -> map class name, for a reference legend that differs.
        classes: class names when the map records none.
        xy_crs: the CRS of the x/y columns when it is not the map's (``"EPSG:2154"``, any
            form rasterio reads).

    Returns:
        :class:`ReferencePoints`.

    Raises:
        DataFormatError: a column is missing (the message suggests the nearest), no
            labelled point lies on the map's mapped pixels, two points lie on one pixel, or
            the table's ``map_class`` is not the map's class at a point.
        LabelError: a reference class is not a class of the map.
    """
    cmap = _as_map(map_or_path, classes)
    meta: Mapping[bytes, bytes] = {}
    if isinstance(reference, pd.DataFrame):
        df, where = reference.reset_index(drop=True), "the reference table"
    else:
        from cropglobe.io.tables import _read_table, _require_file

        p = _require_file(reference, "a table of labelled points (.csv, .parquet, .geoparquet)")
        df, meta = _read_table(p)
        where = str(p)
    if coords not in ("auto", "xy", "lonlat"):
        raise ParameterError(f"coords must be 'auto', 'xy' or 'lonlat', got {coords!r}")
    if len(df) == 0:
        raise DataFormatError(
            f"{where} has no rows; expected one labelled point per row (cropglobe area sample "
            "writes the points to label)"
        )
    labels = _column(df, label_column, where, "reference class", "label_column (--label-column)")
    crs_of_points: Any = None  # a CRS rasterio reads; None: the map's
    kind: str = coords
    if kind == "auto":
        if x_column is not None or y_column is not None:
            raise ParameterError(
                "x_column/y_column need coords='xy' (the map's CRS) or 'lonlat' (degrees): say "
                "which (--coords xy or --coords lonlat)"
            )
        if (xc := _first_present(df, ("x",))) and (yc := _first_present(df, ("y",))):
            kind, x_column, y_column = "xy", xc, yc
        elif (lon := _first_present(df, _LON_NAMES)) and (lat := _first_present(df, _LAT_NAMES)):
            kind, x_column, y_column = "lonlat", lon, lat
        elif "geometry" in df.columns:
            kind = "geometry"
        else:
            columns = [str(c) for c in df.columns][:20]
            raise DataFormatError(
                f"{where} has no point coordinates: no x/y (the map's CRS), lon/lat or "
                f"geometry columns among {columns}; name them with x_column=, y_column= and "
                "coords= (--x-column, --y-column, --coords xy|lonlat)"
            )
    if xy_crs is not None:
        if kind != "xy":
            source = (
                "lon/lat columns (WGS 84)"
                if kind == "lonlat"
                else "a GeoParquet geometry, whose CRS the file records"
            )
            raise ParameterError(
                f"xy_crs (--xy-crs) is the CRS of x/y columns, but the points are read from "
                f"{source}; leave it out, or read x/y columns with coords='xy' (--coords xy)"
            )
        crs_of_points = _parse_crs(xy_crs)
    if kind == "geometry":
        x, y, crs_of_points = _geometry_xy(df, meta)
    else:
        if kind == "xy":
            xn = x_column or _first_present(df, ("x",)) or "x"
            yn = y_column or _first_present(df, ("y",)) or "y"
        else:
            xn = x_column or _first_present(df, _LON_NAMES) or "lon"
            yn = y_column or _first_present(df, _LAT_NAMES) or "lat"
        opt = "x_column / y_column (--x-column, --y-column)"
        xs = pd.to_numeric(_column(df, xn, where, "x coordinate", opt), errors="coerce")
        ys = pd.to_numeric(_column(df, yn, where, "y coordinate", opt), errors="coerce")
        x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        if kind == "lonlat":
            crs_of_points = "EPSG:4326"

    ref = _labels(labels, cmap.classes, label_map, where, label_column)
    n_read = len(df)
    labelled = ref >= 0
    finite = np.isfinite(x) & np.isfinite(y)
    mx, my = x.copy(), y.copy()
    if crs_of_points is not None:
        if cmap.crs is None:
            raise DataFormatError(
                f"{cmap.path} has no CRS, so points in another CRS cannot be placed on it; "
                "give the points' x/y in the map's own coordinates (coords='xy', --coords xy, "
                "without xy_crs)"
            )
        from rasterio.crs import CRS
        from rasterio.warp import transform

        src = CRS.from_user_input(crs_of_points)
        if src != cmap.crs and finite.any():
            tx, ty = transform(src, cmap.crs, x[finite].tolist(), y[finite].tolist())
            mx[finite], my[finite] = tx, ty
    inv = ~cmap.transform
    with np.errstate(invalid="ignore"):
        colf = inv.a * mx + inv.b * my + inv.c
        rowf = inv.d * mx + inv.e * my + inv.f
    finite &= np.isfinite(colf) & np.isfinite(rowf)
    rows = np.floor(np.where(finite, rowf, -1)).astype(np.int64)
    cols = np.floor(np.where(finite, colf, -1)).astype(np.int64)
    inside = finite & (rows >= 0) & (rows < cmap.height) & (cols >= 0) & (cols < cmap.width)
    use = labelled & inside
    values = np.full(n_read, -1, dtype=np.int64)
    values[use] = _values_at(cmap, rows[use], cols[use])
    on_nodata = use & (values == cmap.nodata) if cmap.nodata is not None else np.zeros_like(use)
    k = len(cmap.classes)
    bad = use & ~on_nodata & ((values < 0) | (values >= k))
    if bad.any():
        raise DataFormatError(
            f"{cmap.path} holds class id {int(values[bad][0])} at a reference point but names "
            f"only {_plural(k, 'class')}; give every class id a name with classes=[…] "
            "(--classes a,b,…)"
        )
    keep = use & ~on_nodata
    n_unlabelled = int((~labelled).sum())
    n_no_position = int((labelled & ~finite).sum())
    n_outside = int((labelled & finite & ~inside).sum())
    n_nodata = int(on_nodata.sum())
    dropped = [
        (n_unlabelled, f"without a reference class in {label_column!r}"),
        (n_no_position, "without coordinates"),
        (n_outside, f"outside {cmap.path.name}"),
        (n_nodata, f"on its no-data pixels (value {cmap.nodata})"),
    ]
    said = [f"{n:,} {why}" for n, why in dropped if n]
    if said and keep.any():  # none kept: the error below says why
        log.warning(
            "%s of the %s points of %s dropped: %s",
            f"{n_read - int(keep.sum()):,}",
            f"{n_read:,}",
            where,
            "; ".join(said),
        )
    if not keep.any():
        raise DataFormatError(_no_points_message(where, cmap, kind, x, y, labelled, n_nodata))
    _check_one_point_per_pixel(where, rows, cols, keep, cmap.width)
    if "map_class" in df.columns:
        _check_map_class(where, cmap, df["map_class"], values, rows, cols, keep)
    frame = df.loc[keep].copy()
    frame["row"] = rows[keep]
    frame["col"] = cols[keep]
    frame["map_class"] = [cmap.classes[i] for i in values[keep]]
    frame["reference"] = [cmap.classes[i] for i in ref[keep]]
    return ReferencePoints(
        frame=frame.reset_index(drop=True),
        map_ids=values[keep],
        reference_ids=ref[keep],
        n_read=n_read,
        n_unlabelled=n_unlabelled,
        n_no_position=n_no_position,
        n_outside=n_outside,
        n_nodata=n_nodata,
        coords=kind,
    )


def _parse_crs(text: str) -> Any:
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        with rasterio.Env():  # GDAL's messages go to logging, not straight to stderr
            return CRS.from_user_input(text)
    except CRSError as exc:
        raise ParameterError(
            f"xy_crs {text!r} is not a CRS rasterio knows ({str(exc).splitlines()[0]}); give it "
            "as EPSG:code, e.g. --xy-crs EPSG:2154"
        ) from None


def _check_one_point_per_pixel(
    where: str,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    keep: NDArray[np.bool_],
    width: int,
) -> None:
    """Refuse two kept points on one pixel: a stratified random sample draws each pixel at
    most once, and a pixel counted twice weighs twice in its stratum."""
    index = np.flatnonzero(keep)
    pixel = rows[index] * width + cols[index]
    uniq, counts = np.unique(pixel, return_counts=True)
    if not np.any(counts > 1):
        return
    first = uniq[counts > 1][0]
    at = index[pixel == first]
    numbers = [str(int(i) + 1) for i in at[:5]]
    shown = ", ".join(numbers[:-1]) + f" and {numbers[-1]}"
    n_pixels = int(np.sum(counts > 1))
    raise DataFormatError(
        f"{where}: {_plural(n_pixels, 'pixel')} of the map {'holds' if n_pixels == 1 else 'hold'} "
        f"more than one labelled point ({_plural(int(np.sum(counts[counts > 1] - 1)), 'point')} "
        f"too many; rows {shown} of the table are on the pixel at row {int(first // width)}, "
        f"column {int(first % width)}); a stratified random sample holds each pixel once "
        "(drawn without replacement), and a pixel counted twice weighs twice: keep one row per "
        "pixel, with one reference class"
    )


def _check_map_class(
    where: str,
    cmap: ClassMap,
    stated: pd.Series,
    values: NDArray[np.int64],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    keep: NDArray[np.bool_],
) -> None:
    """Refuse a table whose ``map_class`` (the stratum :func:`draw_sample` wrote) is not the
    map's class at the point: the sample was stratified by another map."""
    text = stated.astype("string").str.strip().to_numpy(dtype=object, na_value="")
    index = np.flatnonzero(keep)
    on_map = np.asarray(cmap.classes, dtype=object)[values[index]]
    named = np.isin(text[index], np.asarray(cmap.classes, dtype=object))
    wrong = index[named & (text[index] != on_map)]
    if wrong.size == 0:
        return
    i = int(wrong[0])
    raise DataFormatError(
        f"{where}: the map_class of {wrong.size:,} of its {index.size:,} points is not the "
        f"class of {cmap.path.name} at the point (row {i + 1} of the table: {text[i]!r} "
        f"in the table, {cmap.classes[values[i]]!r} on the map at pixel row {int(rows[i])}, "
        f"column {int(cols[i])}): the sample was drawn from another map, or another version "
        "of this one, and the estimate needs a sample stratified by the map it assesses; draw "
        "the sample again from this map (cropglobe area sample), or drop the map_class column "
        "if it means something else"
    )


def _no_points_message(
    where: str,
    cmap: ClassMap,
    coords: str,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    labelled: NDArray[np.bool_],
    n_nodata: int,
) -> str:
    if not labelled.any():
        return (
            f"{where} holds no labelled point: its reference class column is empty; label the "
            "points first (one reference class name per row)"
        )
    if n_nodata:
        return (
            f"every labelled point of {where} lies on no-data pixels of {cmap.path}; check that "
            "the points were drawn on this map"
        )
    fin = np.isfinite(x) & np.isfinite(y)
    if not fin.any():
        return f"no labelled point of {where} has coordinates; fill the coordinate columns"
    span = (
        f"x {np.min(x[fin]):.6g}…{np.max(x[fin]):.6g}, y {np.min(y[fin]):.6g}…{np.max(y[fin]):.6g}"
    )
    from rasterio.transform import array_bounds

    west, south, east, north = array_bounds(cmap.height, cmap.width, cmap.transform)
    bounds = (
        f"x {min(west, east):.6g}…{max(west, east):.6g}, "
        f"y {min(south, north):.6g}…{max(south, north):.6g}"
    )
    degrees = bool(np.all(np.abs(x[fin]) <= 180) and np.all(np.abs(y[fin]) <= 90))
    if coords == "xy" and degrees and cmap.crs is not None and not cmap.crs.is_geographic:
        hint = (
            "they look like longitude/latitude: read them as such with coords='lonlat' "
            "(--coords lonlat)"
        )
    elif coords == "lonlat" and not degrees:
        hint = "they are not degrees: read them in the map's CRS with coords='xy' (--coords xy)"
    else:
        hint = (
            "check that the points and the map cover the same region, and give the points' "
            "CRS with xy_crs= (--xy-crs EPSG:…) when their x/y are not in the map's"
        )
    return (
        f"no reference point of {where} lies inside {cmap.path} (points: {span}; map: {bounds} "
        f"in {cmap.crs.to_string() if cmap.crs is not None else 'its pixel grid'}); {hint}"
    )


def assess_map(
    map_path: str | os.PathLike[str],
    reference: str | os.PathLike[str] | pd.DataFrame,
    label_column: str,
    *,
    classes: Sequence[str] | None = None,
    pixel_area: float | None = None,
    coords: Literal["auto", "xy", "lonlat"] = "auto",
    x_column: str | None = None,
    y_column: str | None = None,
    label_map: Mapping[str, str] | None = None,
    confidence: float = 0.95,
    strip_pixels: int = STRIP_PIXELS,
    xy_crs: str | None = None,
) -> AreaEstimate:
    """Accuracy and class areas of a class map from labelled reference points.

    Reads the map's classes and pixel area, counts its pixels per class (streaming), places
    the reference points on it (:func:`read_reference`), and applies
    :func:`stratified_estimate`. The points must be a stratified random sample by map class
    (:func:`draw_sample`) or a simple random sample of the map (then the same estimator is
    the post-stratified one); points chosen by hand give no valid estimate.

    Args:
        map_path: the class map (``cropglobe map``'s GeoTIFF).
        reference: the labelled points (CSV / Parquet / GeoParquet, or a DataFrame).
        label_column: the reference class column.
        classes: class names when the map records none.
        pixel_area: area of one pixel in hectares; default: from the map's transform
            (projected CRS only).
        coords, x_column, y_column, label_map, xy_crs: see :func:`read_reference`.
        confidence: level of the confidence intervals.
        strip_pixels: pixels read at a time.

    Returns:
        An :class:`AreaEstimate` in hectares, whose ``notes`` record the map, the table and
        the points dropped.
    """
    cmap = open_class_map(map_path, classes)
    _z(confidence)  # a bad level fails before the map is read
    area = cmap.pixel_area_ha() if pixel_area is None else float(pixel_area)
    ref = read_reference(
        reference,
        cmap,
        label_column,
        coords=coords,
        x_column=x_column,
        y_column=y_column,
        label_map=label_map,
        xy_crs=xy_crs,
    )
    pixels = count_pixels(cmap, strip_pixels=strip_pixels)
    est = stratified_estimate(
        ref.error_matrix(len(cmap.classes)), pixels, area, cmap.classes, confidence
    )
    notes = {
        "map": str(cmap.path),
        "reference": "DataFrame" if isinstance(reference, pd.DataFrame) else str(reference),
        "label_column": label_column,
        "crs": None if cmap.crs is None else cmap.crs.to_string(),
        "pixel_area_ha": area,
        "pixel_area_from": "the map's transform" if pixel_area is None else "given",
        **ref.notes(),
    }
    return dataclasses.replace(est, notes=notes)
