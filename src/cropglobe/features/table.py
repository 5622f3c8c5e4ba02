"""Feature tables: one feature family applied to a SeriesSet, written as Parquet + JSON parameters.

:func:`make_features` builds the transformer of a family by name, :func:`feature_table` applies it
and returns a DataFrame with ``sample_id``, ``label``, ``label_name``, the per-sample metadata
(``country``, ``region``, ``year`` … to split it by) and one named column per feature, and
:func:`write_feature_table` writes the table and, beside it, the pipeline's parameters
(``<name>.json``), both atomically (the Parquet file carries the parameters too, so readers
recognise a feature table). This is what ``cropglobe features`` runs.

The ``hyperspectral`` family works on EMIT spectra (:class:`~cropglobe.io.emit.Spectra`, e.g.
:func:`~cropglobe.io.emit.read_spectra_table`) instead of series: :func:`hyperspectral_pipeline`
builds it and :func:`spectra_feature_table` applies it, with the same table layout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from cropglobe._fs import atomic_path
from cropglobe.errors import DataFormatError
from cropglobe.features.harmonics import Harmonics
from cropglobe.features.hyperspectral import GoodBands, SimulateS2, SpectralPCA, SpectralSmoother
from cropglobe.features.indices import SpectralIndices
from cropglobe.features.median import Median1D
from cropglobe.io.emit import Spectra
from cropglobe.series import SeriesSet, TimeGrid, parquet_ready

__all__ = [
    "FAMILIES",
    "SPECTRAL_OUTPUTS",
    "feature_table",
    "hyperspectral_pipeline",
    "make_features",
    "params_path",
    "spectra_feature_table",
    "write_feature_table",
]

#: Parquet key-value metadata key of a feature table; its value is the parameters JSON, whose
#: ``format`` is ``"cropglobe.features"``.
FEATURE_TABLE_KEY = b"cropglobe"

#: Feature families :func:`make_features` knows.
FAMILIES: tuple[str, ...] = ("median1d", "harmonics", "indices", "hyperspectral")

#: What the ``hyperspectral`` family outputs: principal components, simulated Sentinel-2 bands,
#: or the good bands themselves.
SPECTRAL_OUTPUTS: tuple[str, ...] = ("pca", "s2", "bands")


def hyperspectral_pipeline(
    spectral: str = "pca",
    n_components: int = 10,
    smooth: bool = False,
    window_length: int = 7,
    polyorder: int = 2,
) -> Pipeline:
    """The ``hyperspectral`` family: :class:`GoodBands`, optionally :class:`SpectralSmoother`,
    then the output step.

    Args:
        spectral: ``"pca"`` (:class:`SpectralPCA`, ``n_components`` scores ``pc01`` …),
            ``"s2"`` (:class:`SimulateS2`: the 10 CropGlobe Sentinel-2 bands simulated,
            reflectance 0…1) or ``"bands"`` (the good bands, ``R0381`` …).
        n_components: principal components kept (``"pca"`` only).
        smooth: Savitzky–Golay smoothing along wavelength after GoodBands.
        window_length, polyorder: the smoother's settings.

    Raises:
        DataFormatError: an unknown ``spectral`` or ``n_components`` below 1.
    """
    if spectral not in SPECTRAL_OUTPUTS:
        raise DataFormatError(
            f"spectral={spectral!r} is no hyperspectral output; expected one of "
            f"{', '.join(SPECTRAL_OUTPUTS)}"
        )
    if int(n_components) < 1:
        raise DataFormatError(f"n_components={n_components} is below 1; give 1 or more")
    steps: list[tuple[str, Any]] = [("good", GoodBands())]
    if smooth:
        steps.append(("smooth", SpectralSmoother(window_length, polyorder)))
    if spectral == "pca":
        steps.append(("pca", SpectralPCA(n_components=int(n_components))))
    elif spectral == "s2":
        steps.append(("s2", SimulateS2()))
    return Pipeline(steps)


def make_features(family: str, **params: Any) -> BaseEstimator:
    """The transformer of a feature family.

    Args:
        family: ``"median1d"`` (:class:`Median1D`), ``"harmonics"`` (:class:`Harmonics`),
            ``"indices"`` (:class:`SpectralIndices` (indices only) followed by :class:`Median1D`,
            i.e. the index series in the window, flattened) or ``"hyperspectral"``
            (:func:`hyperspectral_pipeline`, for Spectra).
        **params: constructor parameters; for ``indices`` the ``indices`` and ``scale`` go to
            SpectralIndices and the rest to Median1D. Parameters that are None are dropped.

    Raises:
        DataFormatError: unknown family or parameter.
    """
    kw = {k: v for k, v in params.items() if v is not None}
    try:
        if family == "median1d":
            return Median1D(**kw)
        if family == "harmonics":
            return Harmonics(**kw)
        if family == "indices":
            idx_kw = {k: kw.pop(k) for k in ("indices", "scale") if k in kw}
            return Pipeline(
                [("indices", SpectralIndices(append=False, **idx_kw)), ("median", Median1D(**kw))]
            )
        if family == "hyperspectral":
            return hyperspectral_pipeline(**kw)
    except TypeError as exc:
        raise DataFormatError(f"family {family!r}: {exc}; check the feature parameters") from None
    raise DataFormatError(f"family={family!r} is not a feature family; expected one of {FAMILIES}")


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, TimeGrid):
        return obj.to_dict()
    if isinstance(obj, BaseEstimator):
        return {"class": type(obj).__name__, "params": _json_ready(obj.get_params(deep=False))}
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return repr(obj)


def _describe(est: BaseEstimator) -> Any:
    if isinstance(est, Pipeline):
        return {"class": "Pipeline", "steps": [[n, _describe(s)] for n, s in est.steps]}
    return _json_ready(est)


def feature_table(
    ss: SeriesSet, transformer: BaseEstimator, *, fit: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply a feature transformer to a SeriesSet.

    Args:
        ss: the series.
        transformer: a transformer from :func:`make_features` (or any with
            ``get_feature_names_out`` returning one name per output column).
        fit: fit the transformer on ``ss`` first (False: it is already fitted).

    Returns:
        ``(table, params)``: table with ``sample_id`` (str), ``label`` (int64, −1 unlabelled),
        ``label_name`` (str or None), every per-sample meta column (``country``, ``region``,
        ``year`` …; a name already used becomes ``meta_<name>``) and float32 feature columns;
        params, a JSON-ready description of the pipeline, the input bands and grid, the
        feature names, the meta columns and the class vocabulary.
    """
    X = transformer.fit_transform(ss) if fit else transformer.transform(ss)
    X = np.asarray(X)
    names = [str(n) for n in transformer.get_feature_names_out()]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise DataFormatError(
            f"transformer {type(transformer).__name__} gave features of shape {X.shape} for "
            f"{len(names)} names; use a transformer with flat (samples, features) output"
        )
    ids = (
        ss.meta["sample_id"].astype(str).to_numpy()
        if "sample_id" in ss.meta
        else np.arange(ss.n_samples).astype(str)
    )
    head = pd.DataFrame(
        {"sample_id": ids, "label": ss.labels, "label_name": ss.label_names().astype(object)}
    )
    table, meta_cols = _assemble(head, ss.meta, X, names)
    final = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
    params: dict[str, Any] = {
        "format": "cropglobe.features",
        "pipeline": _describe(transformer),
        "input_bands": list(ss.bands),
        "input_grid": ss.grid.to_dict(),
        "classes": list(ss.classes),
        "n_samples": int(ss.n_samples),
        "feature_names": names,
        "meta_columns": list(meta_cols),
        "n_nan_rows": int(np.isnan(X).any(axis=1).sum()) if X.size else 0,
    }
    if hasattr(final, "n_underdetermined_"):
        params["n_underdetermined"] = int(final.n_underdetermined_)
    return table, params


def _spectra_labels(meta: pd.DataFrame) -> tuple[Any, Any, tuple[str, ...]]:
    """``(label int64, label_name, classes)`` of a spectra table's ``label`` column: the
    CropGlobe classes when every label is one of them, else the labels' own sorted names."""
    from cropglobe.classes import CROPGLOBE_CLASSES

    n = len(meta)
    if "label" not in meta.columns:
        return np.full(n, -1, np.int64), np.full(n, None, object), ()
    text = np.array(
        [None if pd.isna(v) or str(v).strip() == "" else str(v) for v in meta["label"]],
        dtype=object,
    )
    names = sorted({v for v in text if v is not None})
    classes = CROPGLOBE_CLASSES if set(names) <= set(CROPGLOBE_CLASSES) else tuple(names)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([-1 if v is None else index[v] for v in text], dtype=np.int64)
    return labels, text, tuple(classes)


def spectra_feature_table(
    spectra: Spectra, transformer: BaseEstimator, *, fit: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply a hyperspectral transformer (:func:`hyperspectral_pipeline`) to spectra.

    Args:
        spectra: the spectra (:func:`~cropglobe.io.emit.read_spectra_table`); their meta's
            ``sample_id`` and ``label`` columns name and label the rows.
        transformer: a fitted or unfitted transformer taking Spectra and returning Spectra or
            a (N, F) array, with ``get_feature_names_out``.
        fit: fit it on ``spectra`` first.

    Returns:
        ``(table, params)`` as :func:`feature_table`: ``sample_id``, ``label`` (int64 index
        into ``params["classes"]``, −1 unlabelled), ``label_name`` (the label text), the other
        meta columns (``lon``, ``lat``, ``date``, ``granule`` …) and float32 features; params
        with ``input_wavelengths`` instead of an input grid.
    """
    out = transformer.fit_transform(spectra) if fit else transformer.transform(spectra)
    X = np.asarray(out.values if isinstance(out, Spectra) else out)
    names = [str(n) for n in transformer.get_feature_names_out()]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise DataFormatError(
            f"transformer {type(transformer).__name__} gave features of shape {X.shape} for "
            f"{len(names)} names; use a transformer with flat (samples, features) output"
        )
    meta = spectra.meta
    ids = (
        meta["sample_id"].astype(str).to_numpy()
        if "sample_id" in meta
        else np.arange(len(spectra)).astype(str)
    )
    labels, label_names, classes = _spectra_labels(meta)
    head = pd.DataFrame({"sample_id": ids, "label": labels, "label_name": label_names})
    rest = meta.drop(columns=[c for c in ("label",) if c in meta.columns])
    table, meta_cols = _assemble(head, rest, X, names)
    final = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
    params: dict[str, Any] = {
        "format": "cropglobe.features",
        "pipeline": _describe(transformer),
        "input_bands": spectra.band_names(),
        "input_wavelengths": spectra.wavelengths.tolist(),
        "classes": list(classes),
        "n_samples": len(spectra),
        "feature_names": names,
        "meta_columns": list(meta_cols),
        "n_nan_rows": int(np.isnan(X).any(axis=1).sum()) if X.size else 0,
    }
    if isinstance(final, SpectralPCA):
        params["explained_variance_ratio"] = [float(v) for v in final.explained_variance_ratio_]
    return table, params


def _assemble(
    head: pd.DataFrame, meta: pd.DataFrame, X: Any, names: list[str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The feature table: ``head`` (``sample_id``, ``label``, ``label_name``), the per-sample
    meta columns (:func:`_meta_columns`), then the float32 features; and those meta columns."""
    meta_cols = _meta_columns(meta, {*head.columns, *names})
    for name, col in meta_cols.items():
        head[name] = parquet_ready(meta[col].reset_index(drop=True))
    feats = pd.DataFrame(np.asarray(X).astype(np.float32, copy=False), columns=names)
    return pd.concat([head, feats], axis=1), meta_cols


def _meta_columns(meta: pd.DataFrame, taken: set[str]) -> dict[str, Any]:
    """Table column name -> meta column, for every per-sample meta column but ``sample_id``
    (``country``, ``region``, ``year`` …); a name already taken becomes ``meta_<name>``."""
    out: dict[str, Any] = {}
    used = set(taken)
    for col in meta.columns:
        if str(col) == "sample_id":
            continue
        name = str(col)
        while name in used:
            name = f"meta_{name}"
        used.add(name)
        out[name] = col
    return out


def params_path(path: str | os.PathLike[str]) -> Path:
    """Parameters file of a feature table: ``features.parquet`` -> ``features.json``."""
    return Path(path).with_suffix(".json")


def write_feature_table(
    table: pd.DataFrame, params: dict[str, Any], path: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Write the table (Parquet) and its parameters (JSON beside it), each atomically.

    Returns:
        ``(table_path, params_path)``.
    """
    target = Path(path)
    if target.suffix.lower() not in (".parquet", ".pq"):
        raise DataFormatError(
            f"output {target} must end in .parquet; feature tables are written as Parquet"
        )
    side = params_path(target)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    kv = dict(arrow.schema.metadata or {})
    kv[FEATURE_TABLE_KEY] = json.dumps(params).encode("utf-8")  # readers tell it apart by this
    with atomic_path(target) as tmp:
        pq.write_table(arrow.replace_schema_metadata(kv), tmp)
    with atomic_path(side) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(params, fh, indent=2)
        fh.write("\n")
    return target, side


#: the time axis of a feature table read as a SeriesSet: one step holding every feature
FEATURE_GRID = TimeGrid((1, 366), "01-01", "features")


def read_feature_table(path: str | os.PathLike[str]) -> SeriesSet:
    """A feature table of ``cropglobe features`` (:func:`write_feature_table`) as a SeriesSet
    of one step: values (N, F, 1), one band per feature, on :data:`FEATURE_GRID`.

    This is how ``cropglobe transfer`` compares methods on features computed elsewhere (the
    ``*-table`` methods): EMIT spectra's features, or embeddings of your own written as a
    feature table. Each row is a sample (a spectra table's rows are spectra: a point seen on
    two days is two samples of one ``sample_id``).

    Raises:
        MissingFileError: no such file.
        DataFormatError: not a feature table, or its columns do not match its parameters.
    """
    from cropglobe.errors import MissingFileError
    from cropglobe.io import feature_table_params

    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{p}: no such file; expected a feature table of cropglobe features")
    params = feature_table_params(p)
    if params is None:
        raise DataFormatError(
            f"{p}: not a feature table (no 'cropglobe.features' parameters in its Parquet "
            "metadata or beside it); write one with cropglobe features, or "
            "cropglobe.features.table.write_feature_table"
        )
    names = params.get("feature_names")
    classes = params.get("classes")
    if not isinstance(names, list) or not names or not isinstance(classes, list):
        raise DataFormatError(
            f"{p}: its parameters lack 'feature_names' or 'classes'; expected the parameters "
            "cropglobe features writes; write the table again"
        )
    table = pd.read_parquet(p)
    missing = [c for c in ("sample_id", "label", *names) if c not in table.columns]
    if missing:
        raise DataFormatError(
            f"{p}: columns {missing[:5]} named by its parameters are absent; expected "
            "sample_id, label and every feature column; write the table again"
        )
    labels = table["label"].to_numpy()
    integral = np.issubdtype(labels.dtype, np.integer)
    if not integral or (labels >= len(classes)).any() or (labels < -1).any():
        if not integral:
            found = f"holds {table['label'].dtype} values"
        else:
            outside = labels[(labels >= len(classes)) | (labels < -1)]
            found = f"holds {int(outside[0])}"
        raise DataFormatError(
            f"{p}: 'label' must hold integer class indices 0…{len(classes) - 1} (−1 "
            f"unlabelled) into its classes {classes}, but {found}; write the table again"
        )
    text = [n for n in names if not pd.api.types.is_numeric_dtype(table[n])]
    if text:
        raise DataFormatError(
            f"{p}: feature columns {text[:5]} are not numeric ({table[text[0]].dtype}); "
            "expected numbers (NaN for missing); write the table again"
        )
    wide = table[names].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(wide) & (np.abs(wide) > np.finfo(np.float32).max)
    if beyond.any():
        cols = [n for n, b in zip(names, beyond.any(axis=0), strict=True) if b]
        raise DataFormatError(
            f"{p}: feature columns {cols[:5]} hold values beyond float32's range (±3.4e38), "
            "which the models read as infinite; rescale them and write the table again"
        )
    values = wide.astype(np.float32)[:, :, None]
    meta = table.drop(columns=["label", "label_name", *names], errors="ignore")
    meta["sample_id"] = meta["sample_id"].astype(str)
    # the writer renamed meta columns whose names a feature (or the label) took: meta_country
    # is the samples' country again where no column of that name is left
    renamed: dict[str, str] = {}
    for col in map(str, meta.columns):
        name = col
        while name.startswith("meta_") and name[5:] not in meta.columns:
            name = name[5:]
        if name != col and name not in renamed.values():
            renamed[col] = name
    meta = meta.rename(columns=renamed)
    attrs = {
        "source": "features",
        "path": str(p),
        "features": params.get("pipeline", {}),
        **({"input": params["input"]} if params.get("input") else {}),
    }
    ss = SeriesSet(
        values,
        tuple(str(n) for n in names),
        FEATURE_GRID,
        labels.astype(np.int64),
        tuple(str(c) for c in classes),
        meta.reset_index(drop=True),
        attrs,
    )
    return ss.validate(str(p), allow_empty=True)


def is_feature_set(ss: SeriesSet) -> bool:
    """Whether ``ss`` is a feature table read by :func:`read_feature_table` (one step of
    features, no time series)."""
    return ss.grid.kind == "features" and ss.n_steps == 1


class FeatureColumns(BaseEstimator):
    """The features of a feature table read as a SeriesSet (:func:`read_feature_table`) as a
    plain (N, F) matrix: what the ``*-table`` transfer methods train on. Refuses time series
    and a table of other features than the one it was fitted on.

    Attributes:
        names_: the F feature names seen at fit.
    """

    def fit(self, X: SeriesSet, y: Any = None) -> FeatureColumns:
        """Remember the feature names."""
        self._check(X)
        self.names_ = np.asarray(X.bands, dtype=object)
        return self

    @staticmethod
    def _check(X: Any) -> None:
        if not isinstance(X, SeriesSet) or not is_feature_set(X):
            raise DataFormatError(
                "the *-table methods train on a feature table's columns, but the data are "
                "time series; give --data a table written by cropglobe features, or use a "
                "method on the series (rf-median1d, rf-harmonic …)"
            )

    def transform(self, X: SeriesSet) -> NDArray[np.float32]:
        """float32 (N, F)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "names_")
        self._check(X)
        if list(X.bands) != list(self.names_):
            raise DataFormatError(
                f"the table's features {list(X.bands)[:4]}… are not those fitted on "
                f"{list(self.names_)[:4]}…; use tables of one cropglobe features run"
            )
        return np.ascontiguousarray(X.values[:, :, 0], dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """The feature names."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "names_")
        return np.asarray(self.names_, dtype=object)
