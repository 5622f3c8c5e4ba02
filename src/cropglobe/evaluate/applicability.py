"""Where a trained model applies: each new sample's distance from the training data.

A model says nothing reliable about a field unlike any it was trained on. cropglobe keeps, in
every model folder written by ``cropglobe train``, a compact reference of its training data
(``reference.safetensors``): up to 2,000 training samples (the series the model sees:
gap-filled, cut to its window, standardised) projected on their 16 principal components (plus
each one's distance from that subspace, so that a way of differing the training data never
show still counts), and the distance within which 95 % of them have their 5th-nearest other
training sample (the conformal rank ⌈0.95 (n + 1)⌉ of those n distances, as ``diagnose`` sets its
own limit: a new sample alike the training data lies beyond it with probability at most 5 %).

A new sample's **dissimilarity** is its distance to its 5th-nearest reference sample divided
by that limit: at most 1 inside the training data's range, above 1 outside it. About 5 % of
samples drawn like the training data lie above 1 (the limit's quantile); a region where far
more do is one the model has not seen. This is the idea of the "area of applicability" of
Meyer & Pebesma (2021, *Methods in Ecology and Evolution* 12:1620), with nearest-neighbour
distances in principal components instead of their importance-weighted predictors, so that it
works the same for every model family. ``cropglobe predict`` adds the dissimilarity to its
table and says how many samples lie outside; ``cropglobe map --applicability`` writes it as a
raster beside the map.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cropglobe._fs import atomic_path
from cropglobe.errors import DataFormatError, ModelError
from cropglobe.series import SeriesSet

__all__ = ["REFERENCE_FILE", "TrainingReference", "outside_text"]

logger = logging.getLogger(__name__)

#: the reference's file in a model folder
REFERENCE_FILE = "reference.safetensors"
#: quantile of the training samples' own distances that sets the limit
LEVEL = 0.95
#: fewer distinct training samples than this give a rough limit (a warning says so)
ROUGH = 50
#: the neighbour whose distance counts (the 5th: one odd training twin does not vouch)
K = 5


def window_values(ss: SeriesSet, window: tuple[int, int] | None) -> NDArray[np.float32]:
    """Values (N, C, T) cut to ``window`` (data already on the window as they are), then
    gap-filled inside it (linear in time, ends held); a band without any observation there
    stays NaN.

    Cut first, so that the same pixels give the same values whether they come on the full
    grid (``predict``) or composited to the window alone (``map`` of a model that reads its
    window without gap filling)."""
    from cropglobe.models.inputs import prepare_inputs

    if window is not None and not ss.grid.same_axis(ss.grid.window(*window)):
        ss = ss.select_window(*window)
    return prepare_inputs(ss.values, grid=ss.grid, fill="linear", nan=np.nan)


def feature_scales(
    x: NDArray[np.floating[Any]], n_bands: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-feature mean and standard deviation of ``x`` (N, C·T, band-major), NaN ignored.

    A feature without spread in ``x`` (one value everywhere, or a single observation) takes
    the median spread of its band's other features (else of all features; else 1): divided
    by 0 it could not be standardised, and divided by 1 a sample differing there would count
    its raw difference (hundreds of reflectance units) as that many standard deviations. A
    feature without any value has mean 0 and spread 1 (callers leave it out)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature without any value
        mean = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0).astype(np.float64)
    std = np.asarray(std, dtype=np.float64)
    good = np.isfinite(std) & (std > 0)
    observed = ~np.isnan(x).all(axis=0)
    if good.all() or not good.any():
        return mean, np.where(good, std, 1.0)
    fallback = float(np.median(std[good]))
    per_band = std.reshape(n_bands, -1) if std.size % n_bands == 0 else std[None, :]
    ok_band = good.reshape(per_band.shape)
    out = per_band.copy()
    for c in range(per_band.shape[0]):
        fill = float(np.median(per_band[c][ok_band[c]])) if ok_band[c].any() else fallback
        out[c] = np.where(ok_band[c], per_band[c], fill)
    out = out.reshape(-1)
    return mean, np.where(observed, out, 1.0)


@dataclass
class TrainingReference:
    """A compact stand-in for a model's training data (see the module docstring).

    Attributes:
        bands: band order of the features.
        window: days of season the features are cut to (None: the whole grid).
        mean, std: (F,) per-feature statistics of the training samples (F = bands × steps).
        components: (k, F) principal axes; ``centre`` (F,) their origin.
        points: (n, k + 1) the reference samples' coordinates: k principal components and the
            distance from their subspace.
        limit: the distance to its 5th-nearest reference sample that a new sample alike the
            training data exceeds with probability at most 5 %: the ⌈0.95 (n + 1)⌉-th smallest
            of the n reference samples' distances to their 5th-nearest other reference sample
            (models trained before this rule kept the plain 95 % quantile, nearly the same).
    """

    bands: tuple[str, ...]
    window: tuple[int, int] | None
    mean: NDArray[np.float32]
    std: NDArray[np.float32]
    components: NDArray[np.float32]
    centre: NDArray[np.float32]
    points: NDArray[np.float32]
    limit: float

    @classmethod
    def fit(
        cls,
        ss: SeriesSet,
        window: tuple[int, int] | None,
        *,
        max_samples: int = 2000,
        n_components: int = 16,
        random_state: int = 0,
    ) -> TrainingReference:
        """The reference of training data ``ss`` (labels are not read)."""
        from sklearn.decomposition import PCA
        from sklearn.neighbors import NearestNeighbors

        from cropglobe.evaluate.shift import _distinct, conformal_limit

        # a repeated series is its twin's neighbour at distance 0: six copies of most samples
        # would set the limit to 0 and put every new sample outside
        ss = _distinct(ss)
        if ss.n_samples < K + 2:
            raise DataFormatError(
                f"a training reference needs at least {K + 2} distinct samples, got {ss.n_samples}"
            )
        if ss.n_samples < ROUGH:
            logger.warning(
                "the training reference rests on %d distinct samples: its limit (the distance "
                "95 %% of them keep to their 5th neighbour) is rough under %d",
                ss.n_samples,
                ROUGH,
            )
        rng = np.random.default_rng(random_state)
        pick = (
            np.sort(rng.choice(ss.n_samples, max_samples, replace=False))
            if ss.n_samples > max_samples
            else np.arange(ss.n_samples)
        )
        x = window_values(ss.subset(pick), window).reshape(len(pick), -1).astype(np.float64)
        mean, std = feature_scales(x, len(ss.bands))
        unseen = np.isnan(x).all(axis=0)
        # a feature the training data never observed (a band without values) is left out of
        # the distance (z = x / inf = 0): its raw values would otherwise count in thousands of
        # "standard deviations" and put every sample holding it outside
        std = np.where(unseen, np.inf, std)
        z = np.nan_to_num((x - mean) / std, nan=0.0)
        k = int(min(n_components, z.shape[1], z.shape[0] - 1))
        pca = PCA(n_components=k, random_state=random_state).fit(z)
        points = _with_residual(z, pca.mean_, pca.components_)
        own = NearestNeighbors(n_neighbors=K + 1).fit(points).kneighbors(points)[0][:, K]
        # the conformal rank, as diagnose's outside share: a new sample alike the training
        # data lies beyond it with probability at most 1 − LEVEL at any n (under 19 samples
        # no rank says that much; the largest distance is the best there is, and rough)
        limit = conformal_limit(own, 1.0 - LEVEL)
        if not np.isfinite(limit):
            limit = float(own.max())
        return cls(
            bands=tuple(ss.bands),
            window=window,
            mean=mean.astype(np.float32),
            std=std.astype(np.float32),
            components=pca.components_.astype(np.float32),
            centre=pca.mean_.astype(np.float32),
            points=points.astype(np.float32),
            limit=max(limit, 1e-12),
        )

    @property
    def n_samples(self) -> int:
        """Reference samples kept."""
        return int(self.points.shape[0])

    def project(self, values: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Coordinates (N, k + 1) of gap-filled, windowed values (N, C, T) (NaN: the mean):
        the k principal components and the distance from their subspace."""
        x = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
        if x.shape[1] != self.mean.size:
            raise DataFormatError(
                f"values hold {x.shape[1]} features (bands × steps), the training reference "
                f"{self.mean.size}; give data on the model's bands and grid"
            )
        z = np.nan_to_num((x - self.mean) / self.std, nan=0.0)
        return _with_residual(z, self.centre, self.components)

    def dissimilarity_of_values(self, values: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        """Dissimilarity (N,) of gap-filled, windowed values (N, C, T): the distance to the
        5th-nearest reference sample over :attr:`limit` (above 1: outside the range)."""
        if values.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        d = self._index().kneighbors(self.project(values))[0][:, K - 1]
        return (d / self.limit).astype(np.float32)

    def _index(self) -> Any:
        """The neighbour index of :attr:`points`, built once (a map asks it for every strip);
        brute force, which beats a k-d tree on 17 coordinates."""
        index = self.__dict__.get("_nn")
        if index is None:
            from sklearn.neighbors import NearestNeighbors

            index = NearestNeighbors(n_neighbors=K, algorithm="brute")
            index.fit(self.points.astype(np.float64))
            self.__dict__["_nn"] = index
        return index

    def dissimilarity(self, ss: SeriesSet) -> NDArray[np.float32]:
        """Dissimilarity (N,) of each sample of ``ss`` (on the model's bands and grid)."""
        if ss.bands != self.bands:
            ss = ss.select_bands(self.bands)
        return self.dissimilarity_of_values(window_values(ss, self.window))

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write :data:`REFERENCE_FILE` into a model folder (atomically)."""
        from safetensors.numpy import save_file

        path = Path(folder) / REFERENCE_FILE
        arrays = {
            "mean": self.mean,
            "std": self.std,
            "components": self.components,
            "centre": self.centre,
            "points": self.points,
        }
        meta = {
            "format": "cropglobe-training-reference",
            "bands": json.dumps(list(self.bands)),
            "window": json.dumps(list(self.window) if self.window else None),
            "limit": repr(self.limit),
            "k": str(K),
            "level": str(LEVEL),
        }
        with atomic_path(path) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), meta)
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> TrainingReference | None:
        """The reference saved in a model folder; None when it has none (models trained
        before cropglobe kept one)."""
        from safetensors import SafetensorError, safe_open

        path = Path(folder) / REFERENCE_FILE
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            window = json.loads(meta["window"])
            return cls(
                bands=tuple(json.loads(meta["bands"])),
                window=(int(window[0]), int(window[1])) if window else None,
                mean=arrays["mean"],
                std=arrays["std"],
                components=arrays["components"],
                centre=arrays["centre"],
                points=arrays["points"],
                limit=float(meta["limit"]),
            )
        except (SafetensorError, OSError, KeyError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{path}: unreadable training reference ({exc}); delete it (predictions do "
                "not need it) or train the model again"
            ) from None


def _with_residual(
    z: NDArray[np.float64], centre: NDArray[Any], components: NDArray[Any]
) -> NDArray[np.float64]:
    """Principal coordinates of standardised features ``z`` (N, F), with the distance from the
    components' subspace as one more coordinate: a sample that differs from the training data
    in a way they never vary is far from all of them too."""
    c = components.astype(np.float64)
    centred = z - centre.astype(np.float64)
    coords = centred @ c.T
    # the components are orthonormal: |x − its projection|² = |x|² − |coordinates|²
    left = np.einsum("ij,ij->i", centred, centred) - np.einsum("ij,ij->i", coords, coords)
    return np.column_stack([coords, np.sqrt(np.maximum(left, 0.0))])


def outside_text(dissimilarity: NDArray[np.floating[Any]], what: str = "samples") -> str:
    """One line on how many of ``dissimilarity`` lie outside the training data's range."""
    d = np.asarray(dissimilarity, dtype=np.float64)
    share = float((d > 1.0).mean()) if d.size else 0.0
    verdict = (
        "as in data like the training data"
        if share <= 2 * (1 - LEVEL)
        else "the model has not seen fields like these: check them before trusting the result"
        if share > 5 * (1 - LEVEL)
        else "more than in data like the training data"
    )
    return (
        f"{100 * share:.1f} % of the {d.size:,} {what} lie outside the training data's range "
        f"(dissimilarity > 1; about {100 * (1 - LEVEL):.0f} % in data like them): {verdict}"
    )
