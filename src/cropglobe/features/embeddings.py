"""Precomputed embeddings (Presto, AlphaEarth) of the CropGlobe release as plain feature matrices.

The release ships per-country ``.npz`` files with keys ``fea`` (N, F) float and ``lbl`` (N,) int:
``presto_embedding_S2_{CC}.npz``, ``presto_embedding_S2_{CC}_MayNov.npz`` and
``alphaearth_embedding_{CC}.npz``. :func:`load_embeddings` reads one file;
:class:`EmbeddingLoader` finds a country's file under a release folder; :class:`Embeddings` is the
scikit-learn transformer that passes such a matrix through a pipeline with feature names
(``presto_000`` …) and refuses a matrix of another width.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from cropglobe.errors import DataFormatError, MissingFileError

__all__ = ["EMBEDDING_FILES", "EmbeddingLoader", "EmbeddingTable", "Embeddings", "load_embeddings"]

#: kind -> file name pattern of the CropGlobe release.
EMBEDDING_FILES: dict[str, str] = {
    "presto": "presto_embedding_S2_{country}.npz",
    "presto_maynov": "presto_embedding_S2_{country}_MayNov.npz",
    "alphaearth": "alphaearth_embedding_{country}.npz",
}

_PREFIX = {"presto": "presto", "presto_maynov": "presto", "alphaearth": "alphaearth"}


@dataclass
class EmbeddingTable:
    """An embedding feature matrix.

    Attributes:
        X: float32 (N, F) embeddings.
        y: int64 (N,) CropGlobe class ids (−1 when the file has no labels).
        feature_names: F names, ``{prefix}_{i:03d}``.
        source: the file read.
    """

    X: NDArray[np.float32]
    y: NDArray[np.int64]
    feature_names: tuple[str, ...]
    source: str = ""


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.startswith("alphaearth"):
        return "alphaearth"
    if name.startswith("presto"):
        return "presto_maynov" if "maynov" in name else "presto"
    return "embedding"


def load_embeddings(path: str | os.PathLike[str], *, prefix: str | None = None) -> EmbeddingTable:
    """Read one embedding ``.npz`` (keys ``fea`` (N, F), ``lbl`` (N,)).

    Args:
        path: the file.
        prefix: feature name prefix (default from the file name: ``presto`` or ``alphaearth``).

    Returns:
        :class:`EmbeddingTable`.

    Raises:
        MissingFileError: no such file.
        DataFormatError: not an npz with a 2-D ``fea`` and matching ``lbl``.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(
            f"{p}: no such file; expected a CropGlobe embedding file such as "
            "presto_embedding_S2_FRA.npz"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            fea = np.asarray(z["fea"])
            lbl = np.asarray(z["lbl"]) if "lbl" in z.files else np.full(fea.shape[0], -1)
    except (KeyError, ValueError, OSError, EOFError) as exc:  # EOFError: an empty file
        raise DataFormatError(
            f"{p}: not a CropGlobe embedding file ({exc}); expected an .npz with keys 'fea' "
            "(samples, features) and 'lbl'"
        ) from None
    if fea.ndim != 2:
        raise DataFormatError(
            f"{p}: 'fea' has shape {fea.shape}, expected (samples, features) for embeddings"
        )
    lbl = lbl.reshape(-1)
    if lbl.shape[0] != fea.shape[0]:
        raise DataFormatError(f"{p}: 'fea' has {fea.shape[0]} rows but 'lbl' has {lbl.shape[0]}")
    name = prefix or _PREFIX.get(_kind_of(p), "emb")
    names = tuple(f"{name}_{i:03d}" for i in range(fea.shape[1]))
    return EmbeddingTable(fea.astype(np.float32), lbl.astype(np.int64), names, str(p))


class EmbeddingLoader:
    """Finds and loads a kind of precomputed embedding, per country, under a release folder.

    Args:
        root: the CropGlobe release folder (searched recursively for the file name).
        kind: ``"presto"``, ``"presto_maynov"`` or ``"alphaearth"``.
    """

    def __init__(self, root: str | os.PathLike[str], kind: str = "presto") -> None:
        if kind not in EMBEDDING_FILES:
            raise DataFormatError(
                f"kind={kind!r} is not a known embedding; expected one of {sorted(EMBEDDING_FILES)}"
            )
        self.root = Path(root)
        self.kind = kind

    def path(self, country: str) -> Path:
        """The file of ``country`` (ISO3 code as in the release)."""
        name = EMBEDDING_FILES[self.kind].format(country=country.upper())
        if not self.root.is_dir():
            raise MissingFileError(f"{self.root}: no such folder; expected the CropGlobe release")
        direct = self.root / name
        if direct.is_file():
            return direct
        found = sorted(self.root.rglob(name))
        if not found:
            raise MissingFileError(
                f"{self.root}: no {name} found (kind={self.kind!r}, country={country!r}); "
                "check the country code or download the embeddings"
            )
        return found[0]

    def load(self, country: str) -> EmbeddingTable:
        """Embeddings of ``country`` (see :func:`load_embeddings`)."""
        return load_embeddings(self.path(country), prefix=_PREFIX[self.kind])


class Embeddings(TransformerMixin, BaseEstimator):
    """Pass-through transformer for precomputed embeddings, with names and a width check.

    Args:
        prefix: feature name prefix (``presto``, ``alphaearth``).

    Attributes:
        n_features_in_: F seen at fit.
    """

    def __init__(self, prefix: str = "presto") -> None:
        self.prefix = prefix

    def _array(self, X: Any) -> NDArray[np.float32]:
        arr = np.asarray(X.X if isinstance(X, EmbeddingTable) else X, dtype=np.float32)
        if arr.ndim != 2:
            raise DataFormatError(
                f"Embeddings input must be (samples, features), got shape {arr.shape}"
            )
        return arr

    def fit(self, X: Any, y: Any = None) -> Embeddings:
        """Remember the embedding width F."""
        self.n_features_in_ = self._array(X).shape[1]
        return self

    def transform(self, X: Any) -> NDArray[np.float32]:
        """float32 (N, F), unchanged."""
        check_is_fitted(self, "n_features_in_")
        arr = self._array(X)
        if arr.shape[1] != self.n_features_in_:
            raise DataFormatError(
                f"Embeddings was fitted on {self.n_features_in_} features but received "
                f"{arr.shape[1]}; use embeddings of the same kind or refit"
            )
        return arr

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``{prefix}_000`` …"""
        check_is_fitted(self, "n_features_in_")
        return np.asarray(
            [f"{self.prefix}_{i:03d}" for i in range(self.n_features_in_)], dtype=object
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
