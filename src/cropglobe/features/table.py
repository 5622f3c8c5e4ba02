"""Feature tables: one feature family applied to a SeriesSet, written as Parquet + JSON parameters.

:func:`make_features` builds the transformer of a family by name, :func:`feature_table` applies it
and returns a DataFrame with ``sample_id``, ``label``, ``label_name``, the per-sample metadata
(``country``, ``region``, ``year`` … to split it by) and one named column per feature, and
:func:`write_feature_table` writes the table and, beside it, the pipeline's parameters
(``<name>.json``), both atomically (the Parquet file carries the parameters too, so readers
recognise a feature table). This is what ``cropglobe features`` runs.
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
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from cropglobe._fs import atomic_path
from cropglobe.errors import DataFormatError
from cropglobe.features.harmonics import Harmonics
from cropglobe.features.indices import SpectralIndices
from cropglobe.features.median import Median1D
from cropglobe.series import SeriesSet, TimeGrid, parquet_ready

__all__ = ["FAMILIES", "feature_table", "make_features", "params_path", "write_feature_table"]

#: Parquet key-value metadata key of a feature table; its value is the parameters JSON, whose
#: ``format`` is ``"cropglobe.features"``.
FEATURE_TABLE_KEY = b"cropglobe"

#: Feature families :func:`make_features` knows.
FAMILIES: tuple[str, ...] = ("median1d", "harmonics", "indices")


def make_features(family: str, **params: Any) -> BaseEstimator:
    """The transformer of a feature family.

    Args:
        family: ``"median1d"`` (:class:`Median1D`), ``"harmonics"`` (:class:`Harmonics`) or
            ``"indices"`` (:class:`SpectralIndices` (indices only) followed by :class:`Median1D`,
            i.e. the index series in the window, flattened).
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
    meta_cols = _meta_columns(ss.meta, {*head.columns, *names})
    for name, col in meta_cols.items():
        head[name] = parquet_ready(ss.meta[col].reset_index(drop=True))
    feats = pd.DataFrame(X.astype(np.float32, copy=False), columns=names)
    table = pd.concat([head, feats], axis=1)
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
