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

from cropglobe._arrays import float32_array
from cropglobe.errors import DataFormatError, MissingFileError
from cropglobe.io.cropglobe_npz import CROPGLOBE_FEATURE_FILES

__all__ = ["EMBEDDING_FILES", "EmbeddingLoader", "EmbeddingTable", "Embeddings", "load_embeddings"]

#: kind -> file name pattern of the CropGlobe release.
EMBEDDING_FILES: dict[str, str] = {
    kind: CROPGLOBE_FEATURE_FILES[kind] for kind in ("presto", "presto_maynov", "alphaearth")
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
        return float32_array(
            X.X if isinstance(X, EmbeddingTable) else X,
            "Embeddings input",
            "(samples, features)",
            (2,),
        )

    def fit(self, X: Any, y: Any = None) -> Embeddings:
        """Remember the embedding width F."""
        arr = self._array(X)
        if arr.shape[0] == 0:
            raise DataFormatError(
                "Embeddings cannot be fitted on 0 samples; give at least one embedding row"
            )
        self.n_features_in_ = arr.shape[1]
        return self

    def transform(self, X: Any) -> NDArray[np.float32]:
        """float32 (N, F), unchanged."""
        check_is_fitted(self, "n_features_in_")
        arr = self._array(X)
        if arr.shape[1] != self.n_features_in_:
            raise DataFormatError(
                f"X has {arr.shape[1]} features, but Embeddings is expecting "
                f"{self.n_features_in_} features as input; use embeddings of the same kind or "
                "refit"
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
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings are float32
        return tags


# ---------------------------------------------------------------------------- beside the series
#: method feature name -> the release's precomputed family read beside the series
RELEASE_FEATURES: dict[str, str] = {
    "release:presto": "presto",
    "release:presto_maynov": "presto_maynov",
    "release:alphaearth": "alphaearth",
    "release:harmonic": "harmonic",
}

#: (family, country, files with their size and time) -> (X, y, the series' sample id of each
#: row, the feature file's SHA-256) of one country's features
_TABLES: dict[tuple[Any, ...], tuple[NDArray[np.float32], NDArray[np.int64], Any, str]] = {}
#: bytes of feature arrays :data:`_TABLES` keeps at most (the oldest go first)
_TABLES_BYTES = 1 << 30
#: (path, size, modification time) -> SHA-256 of a feature file
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, computed again only when its size or modification time changes
    (a rerun of an experiment checks every finished run's feature files)."""
    from cropglobe._fs import file_sha256

    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


class ReleaseFeatures(TransformerMixin, BaseEstimator):
    """The release's precomputed features of each sample of a series set (Presto or AlphaEarth
    embeddings, the release's own harmonic coefficients), found by the sample's row.

    The release keeps its files of one country row-aligned: ``for_CropNet/``, ``Median/``
    and the feature files list the same samples in the same order (on the shared CAN and FRA
    files ``Median`` is ``for_CropNet``'s bins 24…66 row for row, labels equal). A series set
    read from the release (:func:`cropglobe.io.read_cropglobe`) names each sample by its row
    (``FRA_000123``), so the features of its samples are those rows, duplicates dropped or
    not. That alignment is checked, not assumed: each feature file must hold as many rows as
    the country's series file, and the label of every row used must be the series' label.

    Args:
        family: ``"presto"``, ``"presto_maynov"``, ``"alphaearth"`` or ``"harmonic"``.

    Attributes:
        n_features_in_: the feature width F seen at fit.
        files_: country -> SHA-256 of each feature file read, at fit and by ``transform``
            since (provenance: a transfer run records them).
    """

    def __init__(self, family: str = "presto") -> None:
        self.family = family

    def _root(self, ss: Any) -> Path:
        from cropglobe.errors import ParameterError
        from cropglobe.io.cropglobe_npz import CROPGLOBE_FEATURE_FAMILIES

        if self.family not in CROPGLOBE_FEATURE_FAMILIES:
            raise ParameterError(
                f"family={self.family!r} is not a precomputed feature of the release; "
                f"expected one of {list(CROPGLOBE_FEATURE_FAMILIES)}"
            )
        attrs = getattr(ss, "attrs", {})
        pattern = CROPGLOBE_FEATURE_FILES[self.family].format(country="{CC}")
        if attrs.get("source") != "cropglobe" or not attrs.get("root"):
            raise ParameterError(
                f"{self.family} features are the CropGlobe release's {pattern} files, read "
                "beside the release's series, but these samples were not read from a release "
                f"folder (source: {attrs.get('source') or 'unknown'}); give the release folder "
                "as the data, or use a method computing its features from the series"
            )
        return Path(str(attrs["root"]))

    def _country(
        self, cc: str, series: Path, feat: Path
    ) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.object_], str]:
        """The features of country ``cc`` row by row, with the series' sample ids of the rows
        and the feature file's SHA-256 (cached while neither file changes)."""
        import pandas as pd

        from cropglobe.io.cropglobe_npz import cropglobe_sample_ids, read_cropglobe_feature_file

        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (series, feat))
        key = (self.family, cc, stamp)
        if key not in _TABLES:
            x, y, _ = read_cropglobe_feature_file(feat, cc)  # the file found by _rows
            ids = cropglobe_sample_ids(series, cc)
            if len(ids) != len(x):
                raise DataFormatError(
                    f"{feat}: {len(x)} rows, but {cc}'s series file {series} holds {len(ids)}; "
                    f"the {self.family} features are found by row, so the two files must list "
                    "the same samples in the same order (as the release's files do)"
                )
            if np.isinf(x).any():
                bad = np.flatnonzero(np.isinf(x).any(axis=1))
                raise DataFormatError(
                    f"{feat}: {bad.size} rows hold ±inf (first: row {int(bad[0])}); expected "
                    "finite features (NaN for missing); fix or replace the file"
                )
            repeated = pd.Index(ids.astype(str)).duplicated()
            if repeated.any():
                raise DataFormatError(
                    f"{series}: sample_id {str(ids[np.flatnonzero(repeated)[0]])!r} names "
                    f"several rows, but the {self.family} features are found by each sample's "
                    "row through its sample_id; rewrite the file with one sample_id per row"
                )
            while _TABLES and sum(v[0].nbytes for v in _TABLES.values()) + x.nbytes > _TABLES_BYTES:
                _TABLES.pop(next(iter(_TABLES)))
            _TABLES[key] = (x, y, ids, file_digest(feat))
        return _TABLES[key]

    def _rows(self, ss: Any) -> tuple[NDArray[np.float32], dict[str, str]]:
        import pandas as pd

        from cropglobe.classes import CROPGLOBE_CLASSES
        from cropglobe.io.cropglobe_npz import cropglobe_feature_files

        root = self._root(ss)
        meta = ss.meta
        if "sample_id" not in meta.columns or "country" not in meta.columns:
            raise DataFormatError(
                "the samples lack the 'sample_id' and 'country' columns the release's reader "
                f"gives; {self.family} features are found by them"
            )
        country = meta["country"].astype(str).to_numpy()
        countries = sorted(set(country))
        try:
            files = cropglobe_feature_files(root, self.family, countries)
        except MissingFileError as exc:
            raise MissingFileError(
                f"{exc}; the {self.family} features of every source and target country are "
                "read from the release folder beside its series"
            ) from None
        series_files = dict(ss.attrs.get("files") or {})
        xs, ys, keys, digests = [], [], [], {}
        paths: dict[str, Path] = {}  # country -> its series file
        for cc, feat in files.items():
            if cc not in series_files:
                raise DataFormatError(
                    f"the samples of {cc} do not say which release file they were read from; "
                    f"read the release folder with cropglobe.io.read_cropglobe"
                )
            series = Path(series_files[cc])
            series = paths[cc] = series if series.is_absolute() else root / series
            x, y, ids, digests[cc] = self._country(cc, series, feat)
            xs.append(x)
            ys.append(y)
            keys.append(np.char.add(f"{cc}\x1f", ids.astype(str)))
        x = np.concatenate(xs)
        y = np.concatenate(ys)
        wanted = np.char.add(
            np.char.add(country.astype(str), "\x1f"),
            meta["sample_id"].astype(str).to_numpy().astype(str),
        )
        at = pd.Index(np.concatenate(keys)).get_indexer(pd.Index(wanted))
        if (at < 0).any():
            first = str(wanted[at < 0][0]).replace("\x1f", " ")
            raise DataFormatError(
                f"{int((at < 0).sum())} samples (first: {first}) are not rows of their country's "
                "release series file; the release's precomputed features are found by row"
            )
        labels = np.asarray(ss.labels)
        have = (labels >= 0) & (y[at] >= 0)
        series_names = np.asarray(ss.classes, dtype=object)[labels[have]]
        table = np.asarray(CROPGLOBE_CLASSES, dtype=object)
        feat_y = y[at][have]
        known = feat_y < len(table)
        feat_names = np.where(known, table[np.clip(feat_y, 0, len(table) - 1)], "?")
        wrong = np.flatnonzero(series_names != feat_names)
        if wrong.size:
            i = wrong[0]
            sid = meta["sample_id"].astype(str).to_numpy()[have][i]
            cc = country[have][i]
            n_cc = int((country[have][wrong] == cc).sum())
            raise DataFormatError(
                f"{files[cc]}: its labels disagree with {cc}'s series file "
                f"{paths[cc]} on the class of {n_cc} of "
                f"{int((country[have] == cc).sum())} samples (first: {sid}, series "
                f"{series_names[i]!r}, {self.family} {feat_names[i]!r}); the files are not "
                "row-aligned; use feature files of the same release as the series"
            )
        rows = x[at]
        empty = np.flatnonzero(np.isnan(rows).all(axis=1)) if rows.shape[1] else np.zeros(0, int)
        if empty.size:
            i = int(empty[0])
            raise DataFormatError(
                f"{files[country[i]]}: the {self.family} features of {empty.size} samples are "
                f"all NaN (first: {meta['sample_id'].astype(str).iloc[i]}); expected features "
                "for every sample used; leave those samples out (--where) or fix the file"
            )
        return rows, digests

    def fit(self, X: Any, y: Any = None) -> ReleaseFeatures:
        """Find the samples' features; remember their width and the files read."""
        rows, digests = self._rows(X)
        self.n_features_in_ = int(rows.shape[1])
        self.files_ = digests
        return self

    def transform(self, X: Any) -> NDArray[np.float32]:
        """float32 (N, F): the features of ``X``'s samples, in its order."""
        check_is_fitted(self, "n_features_in_")
        rows, digests = self._rows(X)
        self.files_ = {**getattr(self, "files_", {}), **digests}
        if rows.shape[1] != self.n_features_in_:
            raise DataFormatError(
                f"{self.family} features were {self.n_features_in_} wide at fit but these "
                f"files hold {rows.shape[1]}; use files of one release"
            )
        return np.ascontiguousarray(rows, dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``presto_000`` … (``alphaearth_…``, ``harmonic_…``)."""
        check_is_fitted(self, "n_features_in_")
        prefix = _PREFIX.get(self.family, self.family)
        return np.asarray([f"{prefix}_{i:03d}" for i in range(self.n_features_in_)], dtype=object)
