"""Readers and writers. Every reader validates its input once and returns the data contract.

:func:`read_dataset` opens any supported input by looking at it:

- a folder in the CropGlobe release layout (``for_CropNet/``, ``Median/``) -> :class:`SeriesSet`
- a SeriesSet ``.npz`` written by :meth:`SeriesSet.save` -> :class:`SeriesSet`
- a single CropGlobe ``.npz`` (``fea``/``lbl``; 73 or 43 steps) -> :class:`SeriesSet`
- a SeriesSet Parquet table written by :func:`write_series_table` -> :class:`SeriesSet`
- a long observation table (CSV, Parquet, GeoParquet) -> :class:`Observations`
- a Google Earth Engine export (CSV or GeoJSON; :mod:`cropglobe.io.gee`) -> :class:`Observations`
- the CAWa folder or its time-series CSV -> :class:`SeriesSet`
- a wide CSV/Parquet (one column per day of year or date) -> :class:`SeriesSet`
"""

from __future__ import annotations

import inspect
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cropglobe.errors import DataFormatError, MissingFileError, ParameterError
from cropglobe.io.cropglobe_npz import (
    CROPGLOBE_FEATURE_FAMILIES,
    CROPGLOBE_KINDS,
    list_cropglobe,
    read_cropglobe,
    read_cropglobe_features,
    read_cropglobe_file,
    write_cropglobe,
)
from cropglobe.io.gee import read_gee_export
from cropglobe.io.tables import (
    OBSERVATION_FORMATS,
    read_cawa,
    read_observations,
    read_series_table,
    read_wide_table,
    warn_empty_bands,
    wkb_points_to_lonlat,
    write_observations,
    write_series_table,
)
from cropglobe.series import Observations, SeriesSet

__all__ = [
    "CROPGLOBE_FEATURE_FAMILIES",
    "CROPGLOBE_KINDS",
    "OBSERVATION_FORMATS",
    "list_cropglobe",
    "read_cawa",
    "read_cropglobe",
    "read_cropglobe_features",
    "read_cropglobe_file",
    "read_dataset",
    "read_gee_export",
    "read_observations",
    "read_series_table",
    "read_wide_table",
    "wkb_points_to_lonlat",
    "write_cropglobe",
    "write_observations",
    "write_series_table",
]

_ACCEPTED = (
    "a CropGlobe release folder (for_CropNet/, Median/), a CropGlobe .npz (fea, lbl), a "
    "SeriesSet .npz, a long table (.csv/.parquet/.geoparquet with sample_id and date, timestamp "
    "or month columns), an Earth Engine export (.csv/.geojson), a wide table (one column per "
    "day of year or date), or the CAWa folder"
)
_CROPGLOBE_FILE = re.compile(r"^median_S2_[A-Za-z0-9]+_month(1-12|5-11)_day5\.npz$")


def _npz_members(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return {n[:-4] if n.endswith(".npy") else n for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable .npz archive ({exc})") from None


def _is_wide(columns: list[str]) -> bool:
    doy = [c for c in columns if re.fullmatch(r"\d{1,3}", c.strip())]
    dated = [c for c in columns if re.fullmatch(r"\d{4}-\d{2}-\d{2}", c.strip())]
    return max(len(doy), len(dated)) >= 2


def _columns(path: Path) -> list[str]:
    try:
        if path.suffix.lower() in (".parquet", ".geoparquet", ".pq"):
            return [str(c) for c in pq.read_schema(path).names]
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read the table header ({exc})") from None


def _checked(ss: SeriesSet, source: Path) -> SeriesSet:
    """``ss``, after warning about bands without any value (the table readers do it
    themselves)."""
    if ss.n_samples:
        empty = np.isnan(ss.values).all(axis=(0, 2)).reshape(-1)
        warn_empty_bands(source, ss.bands, empty)
    return ss


def feature_table_params(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parameters of a feature table written by ``cropglobe features`` (its Parquet
    metadata or, for older tables, the JSON beside it); None when ``path`` is no such table."""
    p = Path(path)
    if not p.is_file() or not p.name.lower().endswith((".parquet", ".geoparquet", ".pq")):
        return None
    try:
        md = pq.read_schema(p).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    stored = md.get(b"cropglobe", b"")
    info = _feature_table_info(p, stored)
    return info if isinstance(info, dict) else None


def _feature_table_info(path: Path, stored: bytes) -> Any:
    """What :func:`feature_table_params` finds: the parameters, {} for a table whose stored
    parameters cannot be read, None for no feature table."""
    info: Any = None
    if b"cropglobe.features" in stored:
        try:
            info = json.loads(stored.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            info = {}
        # another cropglobe table (a series table) whose metadata merely mention the name
        if isinstance(info, dict) and info and info.get("format") != "cropglobe.features":
            info = None
    else:
        side = path.with_suffix(".json")
        try:
            found = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else None
        except (OSError, ValueError, UnicodeDecodeError):
            found = None
        if isinstance(found, dict) and found.get("format") == "cropglobe.features":
            info = found
    return info


def _refuse_feature_table(path: Path, stored: bytes) -> None:
    """DataFormatError when ``path`` is a feature table written by ``cropglobe features``
    (recognised by its Parquet metadata or, for older tables, by the parameters JSON beside
    it): one row per sample and one column per feature, no time series to read."""
    info = _feature_table_info(path, stored)
    if info is None:
        return
    source = info.get("input") if isinstance(info, dict) else None
    raise DataFormatError(
        f"{path} is a feature table written by 'cropglobe features' (one row per sample, one "
        "column per feature), not a time-series input; give the dataset it was computed from"
        + (f" ({source})" if source else "")
        + "; cropglobe transfer takes it as it is with the methods rf-table, lightgbm-table "
        "and mlp-table"
    )


def is_spectra_table(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a table with three or more ``R####`` band columns: EMIT spectra
    (as ``cropglobe download`` of an EMIT collection writes them), not time series; a feature
    table of the spectra's good bands (``features --spectral bands``) is none."""
    p = Path(path)
    suffixes = (".parquet", ".geoparquet", ".pq", ".csv", ".csv.gz")
    if not p.is_file() or not p.name.lower().endswith(suffixes):
        return False
    if feature_table_params(p) is not None:
        return False
    try:
        cols = _columns(p)
    except DataFormatError:
        return False  # the reader chosen next says what is wrong
    return sum(bool(re.fullmatch(r"R\d{4}", c)) for c in cols) >= 3


def _refuse_spectra_table(path: Path) -> None:
    """DataFormatError when ``path`` is an EMIT spectra table (:func:`is_spectra_table`)."""
    if is_spectra_table(path):
        raise DataFormatError(
            f"{path} is a spectra table (one hyperspectral spectrum per row, band columns "
            "R####), not a time-series input; compute its features with 'cropglobe features "
            f"{path} --family hyperspectral -o features.parquet' (in Python: "
            "cropglobe.io.emit.read_spectra_table)"
        )


def read_dataset(path: str | os.PathLike[str], **kw: Any) -> SeriesSet | Observations:
    """Open any supported dataset by looking at what ``path`` is.

    Args:
        path: file or folder (see the module docstring for what is recognised).
        **kw: passed on to the reader chosen (e.g. ``countries=``, ``kind=`` for a CropGlobe
            folder; ``format=``, ``bands=`` for a long table).

    Returns:
        A :class:`SeriesSet` (composited series) or :class:`Observations` (raw long tables).

    Raises:
        MissingFileError: ``path`` does not exist.
        DataFormatError: ``path`` is none of the accepted inputs (the message lists them).
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{p}: no such file or folder; expected {_ACCEPTED}")
    if p.is_dir():
        if any(p.rglob("median_S2_*_day5.npz")):
            if "kind" not in kw and not any(p.rglob("median_S2_*_month1-12_day5.npz")):
                kw["kind"] = "median_maynov"  # only the release's Median/ files (May-November)
            return _checked(_call(read_cropglobe, p, kw), p)
        if (p / "CAWa_CropType_time-series.csv").is_file():
            return _call(read_cawa, p, kw)
        raise DataFormatError(_folder_message(p))
    name = p.name.lower()
    if name.endswith(".npz"):
        members = _npz_members(p)
        if {"header", "values", "labels"} <= members:
            return _checked(_call(SeriesSet.load, p, kw), p)
        if {"fea", "lbl"} <= members:
            return _checked(_call(read_cropglobe_file, p, kw), p)
        if "ndvi" in members and "doy" in members:
            cawa = (p.parent / "CAWa_CropType_time-series.csv").is_file()
            raise DataFormatError(
                f"{p}: this CAWa npz stores object arrays that can only be read by unpickling, "
                "which cropglobe never does; "
                + (
                    f"give the folder beside it instead, which holds the same data as CSV "
                    f"tables: {p.parent}"
                    if cawa
                    else "give the CAWa folder (CAWa_CropType_time-series.csv and "
                    "samples_attributes.csv) instead"
                )
            )
        raise DataFormatError(
            f"{p}: npz arrays {sorted(members)} match no known layout; expected {_ACCEPTED}"
        )
    if name == "cawa_croptype_time-series.csv":
        return _call(read_cawa, p, kw)
    if name.endswith(".geojson"):  # an Earth Engine table export as GeoJSON
        return _call(read_observations, p, kw)
    if name.endswith((".parquet", ".geoparquet", ".pq", ".csv", ".csv.gz", ".tsv")):
        if name.endswith((".parquet", ".geoparquet", ".pq")):
            try:
                md = pq.read_schema(p).metadata or {}
            except (pa.ArrowException, OSError) as exc:
                raise DataFormatError(f"{p}: not a readable Parquet file ({exc})") from None
            if b"cropglobe.series_table" in md.get(b"cropglobe", b""):
                return _call(read_series_table, p, kw)
            _refuse_feature_table(p, md.get(b"cropglobe", b""))
        if name.endswith((".parquet", ".geoparquet", ".pq", ".csv", ".csv.gz")):
            _refuse_spectra_table(p)
        if name.endswith((".parquet", ".geoparquet", ".pq", ".csv")) and _is_wide(_columns(p)):
            return _call(read_wide_table, p, kw)
        return _call(read_observations, p, kw)
    raise DataFormatError(f"{p}: unknown input type; expected {_ACCEPTED}")


def _readable_files(folder: Path) -> list[tuple[Path, str]]:
    """The files directly in ``folder`` that :func:`read_dataset` opens, with what each is
    (judged from table headers and npz member names, without reading the data)."""
    found: list[tuple[Path, str]] = []
    for f in sorted(folder.iterdir()):
        name = f.name.lower()
        if not f.is_file() or name.startswith("."):
            continue
        try:
            if name.endswith(".npz"):
                members = _npz_members(f)
                if {"header", "values", "labels"} <= members:
                    found.append((f, "a SeriesSet"))
                elif {"fea", "lbl"} <= members:
                    found.append((f, "a CropGlobe .npz"))
            elif name.endswith((".parquet", ".geoparquet", ".pq", ".csv")):
                cols = _columns(f)
                lower = {c.lower() for c in cols}
                if _is_wide(cols):
                    found.append((f, "a wide table"))
                elif "sample_id" in lower and lower & {"date", "timestamp", "month"}:
                    found.append((f, "a long table"))
        except DataFormatError:
            continue
    return found


def _folder_message(folder: Path) -> str:
    """Why ``folder`` is not read as a whole, and which of its files to pass instead."""
    files = _readable_files(folder)
    whole = (
        "a folder is read as a whole only in the CropGlobe release layout (for_CropNet/, "
        "Median/) or as the CAWa folder"
    )
    if not files:
        return f"{folder}: folder holds no recognised dataset; expected {_ACCEPTED}"
    listed = "; ".join(f"{f} ({what})" for f, what in files)
    if len(files) == 1:
        return f"{folder}: {whole}; it holds one dataset file: pass it instead: {listed}"
    return (
        f"{folder}: {whole}, and this one holds {len(files)} dataset files, so which to read is "
        f"ambiguous; pass one of them: {listed}"
    )


def _call(reader: Any, path: Path, kw: dict[str, Any]) -> Any:
    """``reader(path, **kw)``, refusing settings the reader does not take (one line naming
    those it does) instead of a ``TypeError`` or, for readers without settings, silence."""
    if kw:
        named = list(inspect.signature(reader).parameters.values())[1:]  # after the path
        params = [
            prm.name
            for prm in named
            if prm.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        unknown = sorted(k for k in kw if k not in params)
        if unknown:
            takes = f"it takes {', '.join(params)}" if params else "it takes none"
            raise ParameterError(
                f"{path}: reading it ({reader.__qualname__}) takes no setting "
                f"{', '.join(unknown)}; {takes}"
            )
    return reader(path, **kw)
