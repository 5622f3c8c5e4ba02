"""Google Earth Engine exports of per-point Sentinel-2 time series -> :class:`Observations`.

Two layouts are understood (see ``docs/acquire.md`` for the Earth Engine code producing them):

- ``reduceRegions`` — ``Export.table.toDrive`` of
  ``collection.map(img -> img.reduceRegions(points, ee.Reducer.first(), 10)).flatten()`` as CSV
  or GeoJSON: columns ``system:index`` (``20210105T105441_20210105T105439_T31TCJ_0000…03``: the
  Sentinel-2 product id, ``_``, the feature index), the band columns (``B1`` … ``B12``, ``B8A``;
  often ``SCL``, ``QA60``, ``MSK_CLDPRB``), the points' own properties (an id such as ``id`` /
  ``sample_id`` / ``fid``, a label such as ``crop`` / ``label`` / ``class``, ``country`` …),
  perhaps ``system:time_start`` (ms since 1970) or a ``date`` property, and ``.geo`` (a GeoJSON
  geometry string). In a GeoJSON export the feature ``id`` is the ``system:index`` and the
  geometry is the feature's own.
- ``getRegion`` — ``collection.getRegion(points, scale)`` saved as CSV: ``id`` (the image id),
  ``longitude``, ``latitude``, ``time`` (ms since 1970), then the bands.

What the reader does with them:

- **dates** come from ``system:time_start`` / ``time`` (ms since 1970, UTC), else from a ``date``
  column (text such as ``2021-01-05``, or ms), else from the ``YYYYMMDDTHHMMSS`` sensing time of
  the product id in ``system:index`` (or in getRegion's ``id``); each observation is dated on
  its UTC day.
- **lon/lat** come from ``.geo``: a point's coordinates; for a polygon (or multipolygon) the
  *planar centroid of its rings in degrees* (exact enough for field-sized polygons); for lines
  and multipoints the mean of their vertices. Else from ``longitude``/``latitude`` (or
  ``lon``/``lat``) columns.
- **bands** are renamed to cropglobe's codes (``B2`` -> ``B02``, ``B8A`` stays); the other
  image bands (``AOT``, ``WVP``, ``TCI_*``, ``QA10/20/60``, ``MSK_*``) are not kept as bands.
- **scale**: ``COPERNICUS/S2_SR_HARMONIZED`` (and ``S2_HARMONIZED``) store reflectance ×
  10,000, which is cropglobe's scale already (:data:`cropglobe.bands.S2_REFLECTANCE_SCALE`): the
  values are kept as they are. The non-harmonized ``COPERNICUS/S2_SR`` adds 1,000 to scenes of
  processing baseline 04.00 and later (from 25 January 2022) — export from the harmonized
  collection. Values that look like reflectance in 0–1 (divided by 10,000 in Earth Engine)
  are kept too, with a WARNING.
- **validity**: an ``SCL`` column is kept as the scene classification, masked by compositing
  exactly as in cropglobe's own tables (:data:`cropglobe.bands.SCL_INVALID`). Without SCL, the
  ``QA60`` cloud bits (bit 10 opaque clouds, bit 11 cirrus) mark rows invalid, and so does a
  ``MSK_CLDPRB`` cloud probability above ``cloud_threshold`` %. (Earth Engine's QA60 is empty
  from February 2022 on: export SCL where you can.)
- **samples**: the id column when there is one (``sample_id``, ``id``, ``fid``, ``ID``,
  ``point_id``, ``plot_id``, ``parcel_id``, ``field_id``; never getRegion's ``id``, which names
  the image), else the feature index of ``system:index``, else the lon/lat (6 decimals).
  Columns constant within a sample (the label, ``country`` …) become sample metadata.
- **rows** without any band value (a point outside the image) are dropped. Several rows of one
  sample on one day (overlapping tiles or orbits) are combined as compositing would combine
  them: the per-band **median** of the valid rows (of all rows when none is valid), with the
  first valid row's SCL; ``duplicates="error"`` refuses them instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe.bands import SCL_INVALID, canonical_band
from cropglobe.classes import CROPGLOBE_CLASSES
from cropglobe.errors import DataFormatError, ParameterError
from cropglobe.series import Observations

__all__ = [
    "GEE_ID_COLUMNS",
    "GEE_LABEL_COLUMNS",
    "QA60_CLOUD_BITS",
    "combine_same_day",
    "geojson_lonlat",
    "is_gee_table",
    "read_gee_export",
]

log = logging.getLogger(__name__)

#: sample id columns looked for, in this order (the first present is the id)
GEE_ID_COLUMNS: tuple[str, ...] = (
    "sample_id", "id", "fid", "ID", "point_id", "plot_id", "parcel_id", "field_id",
)  # fmt: skip
#: label columns looked for, in this order
GEE_LABEL_COLUMNS: tuple[str, ...] = (
    "label", "crop", "class", "crop_type", "croptype", "class_name", "classname",
)  # fmt: skip
#: QA60 bits that mark a cloudy pixel: 10 opaque clouds, 11 cirrus
QA60_CLOUD_BITS = (1 << 10) | (1 << 11)
#: day-level Sentinel-2 product id inside ``system:index``: sensing time, product time, tile
_PRODUCT_RE = re.compile(r"(\d{8})T\d{6}_\d{8}T\d{6}_T[0-9A-Z]{5}")
#: columns of an Earth Engine export that are neither bands nor sample metadata
_GEE_RESERVED = {
    "system:index", ".geo", "system:time_start", "system:time_end", "time", "longitude",
    "latitude", "QA10", "QA20", "QA60", "MSK_CLDPRB", "MSK_SNWPRB", "MSK_CLASSI_OPAQUE",
    "MSK_CLASSI_CIRRUS", "MSK_CLASSI_SNOW_ICE", "AOT", "WVP", "TCI_R", "TCI_G", "TCI_B",
    "SCL", "cs", "cs_cdf",
}  # fmt: skip
_GEOJSON_SUFFIXES = (".geojson", ".json")
#: reducer output suffixes (``B2_first``) read as the band, in order of preference
_REDUCER_SUFFIXES = ("first", "median", "mean", "mode")
#: bands of class codes or bit flags, which only ``mode`` / ``first`` summarise meaningfully
_CLASS_BANDS = {"SCL", "QA60"}


def is_gee_table(columns: Sequence[str]) -> bool:
    """Whether a table's columns are those of an Earth Engine export (``system:index`` or
    ``.geo``; or getRegion's ``id, longitude, latitude, time``)."""
    cols = {str(c) for c in columns}
    return bool(cols & {"system:index", ".geo"}) or {"id", "longitude", "latitude", "time"} <= cols


def read_gee_export(
    path: str | os.PathLike[str],
    *,
    bands: Sequence[str] | None = None,
    sample_column: str | None = None,
    label_column: str | None = None,
    label_table: Any = None,
    classes: Sequence[str] | None = None,
    date_column: str | None = None,
    cloud_threshold: float = 50.0,
    duplicates: str = "median",
) -> Observations:
    """Read an Earth Engine export (CSV, CSV.gz, Parquet or GeoJSON) as raw observations.

    See the module docstring for the layouts and how dates, coordinates, bands, validity and
    samples are read. :func:`cropglobe.io.read_observations` and
    :func:`cropglobe.io.read_dataset` call this for tables they recognise as Earth Engine
    exports (``format="gee"`` forces it).

    Args:
        path: the exported file.
        bands: bands to keep, any spelling (``"B2"``, ``"B02"``); None keeps every band column.
        sample_column: the sample id column; None looks for :data:`GEE_ID_COLUMNS`.
        label_column: the label column; None looks for :data:`GEE_LABEL_COLUMNS` (no label
            column: the samples are unlabelled).
        label_table: how labels map to ``classes`` (see :func:`cropglobe.classes.map_labels`).
        classes: the target vocabulary (default ``CROPGLOBE_CLASSES``).
        date_column: the date column, overriding ``system:time_start`` / ``time`` / ``date``;
            text dates or numbers in ms since 1970.
        cloud_threshold: ``MSK_CLDPRB`` cloud probability (%) above which a row is invalid
            (used only without an SCL column).
        duplicates: ``"median"`` combines several rows of one sample on one day (see the
            module docstring); ``"error"`` refuses them when their values differ.

    Returns:
        Observations: table ``sample, date, <bands float32>, [SCL | valid]`` sorted by sample
        and date (dates datetime64[ns], midnight UTC); samples ``sample_id, lon, lat,
        <constant properties>, label``; attrs ``source``, ``format="gee"``, ``layout``.

    Raises:
        MissingFileError: no such file.
        DataFormatError: unreadable file, no date information, unparsable geometries, rows of
            one sample and day that differ (with ``duplicates="error"``).
        BandError: no band columns, or requested bands absent.
    """
    from cropglobe.io import tables

    p = tables._require_file(path, "an Earth Engine export (.csv or .geojson)")
    if p.name.lower().endswith(_GEOJSON_SUFFIXES):
        df = _geojson_frame(p)
    else:
        df, _ = tables._read_table(p)
    df.columns = [str(c) for c in df.columns]
    return observations_from_frame(
        p, df, bands=bands, sample_column=sample_column, label_column=label_column,
        label_table=label_table, classes=classes, date_column=date_column,
        cloud_threshold=cloud_threshold, duplicates=duplicates,
    )  # fmt: skip


def observations_from_frame(
    p: Path,
    df: pd.DataFrame,
    *,
    bands: Sequence[str] | None = None,
    sample_column: str | None = None,
    label_column: str | None = None,
    label_table: Any = None,
    classes: Sequence[str] | None = None,
    date_column: str | None = None,
    cloud_threshold: float = 50.0,
    duplicates: str = "median",
    attrs: dict[str, Any] | None = None,
) -> Observations:
    """:func:`read_gee_export` on a table already read (``p`` names it in messages)."""
    from cropglobe.io import tables

    if duplicates not in ("median", "error"):
        raise ParameterError(
            f"duplicates={duplicates!r} is unknown; expected 'median' (combine rows of one "
            "sample and day) or 'error' (refuse them)"
        )
    tables._require_rows(p, df, "one row per image and point")
    df = _strip_reducer_suffixes(p, df)
    cols = list(df.columns)
    region = {"longitude", "latitude", "time"} <= set(cols) and "system:index" not in cols
    layout = "getRegion" if region else "reduceRegions"
    index = df["system:index"].astype(str) if "system:index" in cols else None
    image_ids = df["id"].astype(str) if region and "id" in cols else index

    dates = _dates(p, df, image_ids, date_column)
    lon, lat = _lonlat(p, df)

    # band columns: recognised band names that are not Earth Engine's auxiliary bands
    user_cols = {sample_column, label_column, date_column}
    skip = _GEE_RESERVED | {"date", "lon", "lat", "valid", "cloud"} | user_cols
    if region:
        skip |= {"id"}
    cands = {c: canonical_band(c) for c in cols if c not in skip and tables._known_band(c)}
    band_cols = tables._pick_bands(p, cols, cands, bands)

    # samples
    id_col = _id_column(p, cols, sample_column, region)
    if id_col is not None:
        ids = df[id_col]
        if ids.isna().any():
            raise DataFormatError(
                f"{p}: sample id column {id_col!r} has {int(ids.isna().sum())} empty values; "
                "every point needs an id; fill them or pass sample_column="
            )
        ids = ids.astype(str)
        how = f"column {id_col!r}"
    elif index is not None and (feat := index.map(_feature_index)).str.len().gt(0).all():
        ids = feat
        how = "the feature index of system:index"
    elif np.isfinite(lon).all() and np.isfinite(lat).all():
        ids = pd.Series([f"{x:.6f},{y:.6f}" for x, y in zip(lon, lat, strict=True)])
        how = "the longitude/latitude"
    else:
        raise DataFormatError(
            f"{p}: cannot tell the points apart: no id column ({', '.join(GEE_ID_COLUMNS)}), no "
            "feature index in system:index and no coordinates; export the points' id property "
            "(or pass sample_column=)"
        )
    log.info("%s: Earth Engine %s export; samples identified by %s", p, layout, how)

    work = pd.DataFrame({"sample_id": ids.to_numpy(), "date": dates.to_numpy()})
    work["lon"], work["lat"] = lon, lat
    for c in band_cols:
        work[c] = df[c].to_numpy()
    if "SCL" in cols:
        work["SCL"] = pd.to_numeric(df["SCL"], errors="coerce")
        scl = work["SCL"].to_numpy(dtype=np.float64, na_value=np.nan)
        averaged = np.isfinite(scl) & (scl != np.round(scl))
        if averaged.any():
            log.warning(
                "%s: SCL holds non-integer values (e.g. %g): a mean or median of scene classes, "
                "whose codes mean nothing averaged (clouds may pass as valid); reduce SCL with "
                "ee.Reducer.mode() (or sample points with ee.Reducer.first())",
                p,
                float(scl[averaged][0]),
            )
    else:
        valid = np.ones(len(df), dtype=bool)
        if "QA60" in cols:
            qa = pd.to_numeric(df["QA60"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
            valid &= (qa & QA60_CLOUD_BITS) == 0
        if "MSK_CLDPRB" in cols:
            prob = pd.to_numeric(df["MSK_CLDPRB"], errors="coerce").to_numpy(dtype=np.float64)
            valid &= ~(prob > cloud_threshold)  # unknown probability keeps the row
        if "QA60" in cols or "MSK_CLDPRB" in cols:
            work["valid"] = valid
    lcol = label_column or next((c for c in GEE_LABEL_COLUMNS if c in cols), None)
    meta_cols = [c for c in cols if c not in skip and c not in band_cols and c != id_col]
    for c in meta_cols:
        if c not in work.columns:
            work[c] = df[c].to_numpy()
    if lcol is not None and lcol not in work.columns:
        tables._missing_columns(p, df, [lcol], "Earth Engine export")

    # rows without any band value: the point lies outside the image (or it is masked there)
    band_block = work[list(band_cols)].to_numpy(dtype=np.float64, na_value=np.nan)
    empty = np.isnan(band_block).all(axis=1)
    if empty.any():
        log.info("%s: %d row(s) without any band value dropped", p, int(empty.sum()))
        work = work[~empty].reset_index(drop=True)
    if work.empty:
        raise DataFormatError(
            f"{p}: no row holds a band value (all {len(df)} are empty); the points lie outside "
            "the exported images, or the images were masked before export; check the export"
        )
    warn_unit_scale(p, work, list(band_cols))
    work = combine_same_day(
        p, work, ["sample_id", "date"], list(band_cols), error=duplicates == "error"
    )
    return tables._build(
        p, work, sample_col="sample_id", dates=work["date"], band_cols=band_cols,
        label_col=lcol, label_table=label_table,
        classes=tuple(classes) if classes is not None else CROPGLOBE_CLASSES, nodata=None,
        attrs={**(attrs or {}), "source": str(p), "format": "gee", "layout": layout},
        exclude_meta={"date"}, cloud_threshold=cloud_threshold,
    )  # fmt: skip


# ---------------------------------------------------------------------------- pieces
def _geojson_frame(p: Path) -> pd.DataFrame:
    """A GeoJSON FeatureCollection export as a table: properties, ``system:index`` (the
    feature id) and ``.geo`` (the geometry as a GeoJSON string), as in a CSV export."""
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{p}: not a readable GeoJSON file ({exc})") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list):
        raise DataFormatError(
            f"{p}: not a GeoJSON FeatureCollection (no 'features' list); expected an Earth "
            "Engine table export with fileFormat 'GeoJSON'"
        )
    rows = []
    for f in feats:
        props = dict(f.get("properties") or {}) if isinstance(f, dict) else {}
        if "system:index" not in props and isinstance(f, dict) and f.get("id") is not None:
            props["system:index"] = str(f["id"])
        geom = f.get("geometry") if isinstance(f, dict) else None
        props[".geo"] = json.dumps(geom) if geom is not None else None
        rows.append(props)
    return pd.DataFrame(rows)


def _id_column(p: Path, cols: Sequence[str], given: str | None, region: bool) -> str | None:
    if given is not None:
        if given not in cols:
            raise DataFormatError(
                f"{p}: sample_column={given!r} is not a column; found {list(cols)[:20]}; pass "
                "one of those"
            )
        return given
    for c in GEE_ID_COLUMNS:
        if c in cols and not (region and c == "id"):
            return c
    return None


def _feature_index(system_index: str) -> str:
    """The feature part of ``<image index>_<feature index>``: what follows a Sentinel-2 product
    id, else the last ``_``-separated token; ``""`` when ``system_index`` is a bare product id
    (a feature built from ``image.reduceRegion``, whose index is the image's: its tile is no
    point's name)."""
    m = _PRODUCT_RE.search(system_index)
    if m is not None:
        return system_index[m.end() :].lstrip("_")
    return system_index.rsplit("_", 1)[-1]


def _strip_reducer_suffixes(p: Path, df: pd.DataFrame) -> pd.DataFrame:
    """``B2_first``, ``SCL_mode`` … (the outputs of a combined or renamed reducer) as ``B2``,
    ``SCL`` when the plain column is absent; of several reducers of one band the first of
    :data:`_REDUCER_SUFFIXES` wins (``mode`` first for SCL/QA60)."""
    from cropglobe.io import tables

    cols = set(df.columns)
    chosen: dict[str, tuple[int, str]] = {}
    for c in df.columns:
        base, sep, suffix = str(c).rpartition("_")
        if not sep or suffix not in _REDUCER_SUFFIXES or base in cols:
            continue
        if base in _CLASS_BANDS:
            rank = ("mode", *_REDUCER_SUFFIXES).index(suffix)
        elif tables._known_band(base) or base in _GEE_RESERVED:
            rank = _REDUCER_SUFFIXES.index(suffix)
        else:
            continue
        if base not in chosen or rank < chosen[base][0]:
            chosen[base] = (rank, str(c))
    if not chosen:
        return df
    log.info("%s: reducer outputs read as bands: %s", p,
             ", ".join(f"{c} -> {b}" for b, (_, c) in chosen.items()))  # fmt: skip
    return df.rename(columns={c: b for b, (_, c) in chosen.items()})


def _ms_dates(values: pd.Series) -> pd.Series:
    """Milliseconds since 1970 (UTC) -> datetime64[ns], NaT where not a number."""
    ms = pd.to_numeric(values, errors="coerce")
    return pd.Series(pd.to_datetime(ms, unit="ms", errors="coerce"), index=values.index)


def _dates(
    p: Path, df: pd.DataFrame, image_ids: pd.Series | None, date_column: str | None
) -> pd.Series:
    """Each row's UTC day from the first source that gives one (see the module docstring)."""
    from cropglobe.io import tables

    out = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    sources: list[str] = []
    if date_column is not None:
        tables._missing_columns(p, df, [date_column], "Earth Engine export")
        order = [date_column]
    else:
        order = [c for c in ("system:time_start", "time", "date") if c in df.columns]
    for col in order:
        todo = out.isna()
        if not todo.any():
            break
        values = df.loc[todo, col]
        present = values.notna()
        if not present.any():
            continue
        sources.append(col)
        values = values[present]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and (col != "date" or float(numeric.abs().min()) > 1e9):
            parsed = _ms_dates(values)
        else:
            parsed = tables._parse_dates(p, col, values)
        out.loc[parsed.index] = parsed.to_numpy()
    if out.isna().any() and image_ids is not None:
        found = image_ids[out.isna()].str.extract(_PRODUCT_RE, expand=False)
        got = found.dropna()
        if not got.empty:
            sources.append("product ids")
            out.loc[got.index] = pd.to_datetime(got, format="%Y%m%d").to_numpy()
    if not sources:
        raise DataFormatError(
            f"{p}: no date information: expected a system:time_start or time column (ms since "
            "1970), a date column, or Sentinel-2 product ids in system:index (e.g. "
            "20210105T105441_20210105T105439_T31TCJ_0); in Earth Engine add "
            ".set('date', img.date().format('YYYY-MM-dd')) to each feature, or pass date_column="
        )
    if out.isna().any():
        i = int(np.flatnonzero(out.isna().to_numpy())[0])
        where = f" (system:index {image_ids.iloc[i]!r})" if image_ids is not None else ""
        raise DataFormatError(
            f"{p}: row {i + 2}{where} has no date in {', '.join(sources)}; expected every row "
            "dated; fill the dates or drop those rows"
        )
    return out.dt.normalize()


def geojson_lonlat(geometry: Any) -> tuple[float, float]:
    """Longitude/latitude of a GeoJSON geometry (a dict, or its JSON text).

    A point gives its coordinates; a polygon or multipolygon the planar centroid (in degrees)
    of its area, holes subtracted; lines and multipoints the mean of their vertices. None or
    an empty geometry gives NaN.

    Raises:
        DataFormatError: not a GeoJSON geometry.
    """
    if geometry is None or (isinstance(geometry, float) and np.isnan(geometry)):
        return np.nan, np.nan
    geom = json.loads(geometry) if isinstance(geometry, str) else geometry
    if not isinstance(geom, dict) or "type" not in geom:
        raise DataFormatError(f"not a GeoJSON geometry: {str(geometry)[:80]!r}")
    kind = geom["type"]
    coords = geom.get("coordinates")
    if kind == "GeometryCollection":
        parts = [geojson_lonlat(g) for g in geom.get("geometries", [])]
        parts = [q for q in parts if np.isfinite(q[0])]
        if not parts:
            return np.nan, np.nan
        return float(np.mean([q[0] for q in parts])), float(np.mean([q[1] for q in parts]))
    if not coords:
        return np.nan, np.nan
    if kind == "Point":
        return float(coords[0]), float(coords[1])
    if kind in ("MultiPoint", "LineString", "MultiLineString"):
        pts = coords if kind != "MultiLineString" else [pt for line in coords for pt in line]
        flat = np.asarray(pts, dtype=np.float64)
        return float(flat[:, 0].mean()), float(flat[:, 1].mean())
    if kind in ("Polygon", "MultiPolygon"):
        polys = [coords] if kind == "Polygon" else coords
        area = cx = cy = 0.0
        for poly in polys:
            for k, ring in enumerate(poly):
                r = np.asarray(ring, dtype=np.float64)[:, :2]
                x, y = r[:, 0], r[:, 1]
                x1, y1 = np.roll(x, -1), np.roll(y, -1)
                cross = x * y1 - x1 * y
                a = cross.sum() / 2
                sign = 1.0 if k == 0 else -1.0  # holes subtract
                a_abs = abs(a)
                if a_abs == 0:
                    continue
                area += sign * a_abs
                cx += sign * a_abs * float(((x + x1) * cross).sum() / (6 * a))
                cy += sign * a_abs * float(((y + y1) * cross).sum() / (6 * a))
        if area == 0:
            flat = np.asarray([pt for poly in polys for pt in poly[0]], dtype=np.float64)
            return float(flat[:, 0].mean()), float(flat[:, 1].mean())
        return cx / area, cy / area
    raise DataFormatError(f"unknown GeoJSON geometry type {kind!r}")


def _lonlat(p: Path, df: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-row lon/lat from ``.geo``, else ``longitude``/``latitude`` or ``lon``/``lat``."""
    n = len(df)
    if ".geo" in df.columns:
        codes, uniques = pd.factorize(df[".geo"], use_na_sentinel=True)
        xy = np.full((len(uniques) + 1, 2), np.nan)
        for k, g in enumerate(uniques):
            try:
                xy[k] = geojson_lonlat(g)
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise DataFormatError(
                    f"{p}: column '.geo' holds {str(g)[:60]!r}, not a GeoJSON geometry ({exc}); "
                    "expected the geometry strings Earth Engine exports"
                ) from None
        picked = xy[np.where(codes < 0, len(uniques), codes)]
        return picked[:, 0], picked[:, 1]
    for xc, yc in (("longitude", "latitude"), ("lon", "lat")):
        if xc in df.columns and yc in df.columns:
            x = pd.to_numeric(df[xc], errors="coerce").to_numpy(dtype=np.float64)
            y = pd.to_numeric(df[yc], errors="coerce").to_numpy(dtype=np.float64)
            return np.round(x, 7), np.round(y, 7)
    return np.full(n, np.nan), np.full(n, np.nan)


def warn_unit_scale(p: Path, work: pd.DataFrame, bands: Sequence[str]) -> None:
    """WARNING when the reflectances look like 0–1 instead of cropglobe's × 10,000."""
    from cropglobe.bands import S2_CATALOGUE

    s2 = [b for b in bands if canonical_band(b) in S2_CATALOGUE]
    if not s2:
        return
    v = work[s2].to_numpy(dtype=np.float64, na_value=np.nan)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and float(np.median(v)) < 2.0:
        log.warning(
            "%s: Sentinel-2 values look like reflectance in 0-1 (median %.3g), not cropglobe's "
            "reflectance x 10,000; models trained on CropGlobe-scale data will misread them: "
            "export the bands without dividing by 10,000, or multiply them",
            p,
            float(np.median(v)),
        )


def combine_same_day(
    p: Path | str, work: pd.DataFrame, keys: list[str], bands: list[str], *, error: bool = False
) -> pd.DataFrame:
    """Rows of ``work`` with one row per ``keys`` (sample and day): several rows of one key
    become their per-band NaN-median over the valid rows (SCL not in
    :data:`~cropglobe.bands.SCL_INVALID`, ``valid`` True) — over all rows when none is valid —
    with the other columns of the first of those rows.

    Args:
        p: the source, for messages.
        work: the rows; ``bands`` columns numeric, optional ``SCL`` / ``valid`` columns.
        keys: the columns identifying one observation (``["sample_id", "date"]``).
        bands: the band columns.
        error: raise instead of combining rows whose band values differ (identical rows are
            always kept once).

    Raises:
        DataFormatError: with ``error``, rows of one key whose values differ.
    """
    dup = work.duplicated(keys, keep=False).to_numpy()
    if not dup.any():
        return work
    d = work[dup]
    same = d.drop_duplicates(keys + bands)
    if error and same.duplicated(keys).any():
        first = same[same.duplicated(keys, keep=False)].sort_values(keys).head(2)
        a, b = first.iloc[0], first.iloc[1]
        diff = next(c for c in bands if not (a[c] == b[c] or (pd.isna(a[c]) and pd.isna(b[c]))))
        raise DataFormatError(
            f"{p}: sample {a[keys[0]]!r} has several rows on {pd.Timestamp(a[keys[1]]):%Y-%m-%d} "
            f"with different values ({diff} {a[diff]} vs {b[diff]}; overlapping tiles or "
            "orbits); expected one row per sample and day; pass duplicates='median' to combine "
            "them by their per-band median"
        )
    ok = np.ones(len(d), dtype=bool)
    if "SCL" in d.columns:
        scl = d["SCL"].to_numpy(dtype=np.float64, na_value=np.nan)
        ok &= np.isfinite(scl) & ~np.isin(scl, sorted(SCL_INVALID))
    if "valid" in d.columns:
        ok &= d["valid"].fillna(False).to_numpy(dtype=bool)
    okser = pd.Series(ok, index=d.index)
    any_ok = okser.groupby([d[k] for k in keys]).transform("any").to_numpy(dtype=bool)
    d = d[ok | ~any_ok]
    grouped = d.groupby(keys, sort=False, dropna=False)
    first = grouped.first()
    med = grouped[bands].median()
    first[bands] = med[bands]
    combined = first.reset_index()[list(work.columns)]
    n_before = int(dup.sum())
    log.info(
        "%s: %d rows shared a sample and day with another (overlapping tiles or orbits); "
        "combined into %d by their per-band median",
        p,
        n_before,
        len(combined),
    )
    return pd.concat([work[~dup], combined], ignore_index=True)
