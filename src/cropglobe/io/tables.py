"""Long and wide tables: raw observations, SeriesSet tables, wide per-date tables, CAWa.

Long tables (one row per sample and date) become :class:`~cropglobe.series.Observations`
(:func:`read_observations`); three layouts are understood:

- ``"worldcereal"`` — the WorldCereal extraction format (GeoParquet): ``sample_id``,
  ``timestamp``, band columns ``S2-L2A-B02`` … ``S2-L2A-B12``, ``S2-L2A-B8A``, ``S1-SIGMA0-VV``,
  ``S1-SIGMA0-VH`` stored as uint16 with 65535 = no data (-> NaN), ``geometry`` WKB points
  (-> ``lon``/``lat``), ``ewoc_code`` (-> CropGlobe labels; a code naming no crop, such as 0
  "Unknown", -> unlabelled, see :func:`cropglobe.classes.ewoc_is_unspecified`). Sentinel-2
  values are reflectance × 10,000. Sentinel-1 values are kept **raw**: WorldCereal stores
  backscatter in its own integer dB encoding (roughly ``20 * log10(sigma0) ≈ dB``, shifted and
  scaled into uint16); decode them yourself if physical units matter — the invariant features
  of this toolkit do not need it.
- ``"tidy"`` — ``sample_id, date, B02, …, label`` with optional ``valid`` (bool), ``SCL``
  (Sentinel-2 scene classification) and ``cloud`` (flag, or cloud probability in %) columns;
  every other column that is constant within each sample becomes sample metadata.
- ``"monthly"`` — WorldCereal monthly composites in long form (``month`` = ``"YYYY-MM"``,
  ``crop6`` class names). Each month is dated on its **15th day** (mid-month), so it falls in the
  month's own bin on monthly, dekad and 5-day grids alike. ``crop6`` calls every crop it does
  not name "other"; where an ``ewoc_code`` column says the crop is unknown, the sample is read
  as unlabelled instead (a WARNING gives the count).

:func:`write_series_table` / :func:`read_series_table` round-trip a :class:`SeriesSet` through
a long Parquet table exactly (the grid, bands, classes and attrs travel in the Parquet key-value
metadata). :func:`read_wide_table` reads one-row-per-sample tables with one column per
day-of-year or date; :func:`read_cawa` reads the CAWa Central-Asia crop-type tables.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from cropglobe._fs import atomic_path, json_default
from cropglobe.bands import S2_CATALOGUE, canonical_band, canonical_bands
from cropglobe.classes import (
    CROPGLOBE_CLASSES,
    _map_labels,
    country_table,
    ewoc_is_unspecified,
    normalise_country,
)
from cropglobe.errors import BandError, DataFormatError, LabelError, MissingFileError
from cropglobe.series import Observations, SeriesSet, TimeGrid, day_of_season, parse_anchor

__all__ = [
    "OBSERVATION_FORMATS",
    "read_cawa",
    "read_observations",
    "read_series_table",
    "read_wide_table",
    "write_observations",
    "write_series_table",
]

log = logging.getLogger(__name__)

#: Layouts understood by :func:`read_observations`.
OBSERVATION_FORMATS: tuple[str, ...] = ("auto", "worldcereal", "tidy", "monthly", "gee")

#: WorldCereal's no-data value in its uint16 band columns.
WORLDCEREAL_NODATA = 65535

_PARQUET_SUFFIXES = (".parquet", ".geoparquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
_META_KEY = b"cropglobe"
_KNOWN_NON_S2 = {"VV", "VH", "HH", "HV", "NDVI", "EVI", "NDWI", "NDRE", "GCVI", "NBR", "SAVI",
                 "NDMI"}  # fmt: skip
_WC_BAND_RE = re.compile(r"^(S2-L2A-B\d{1,2}A?|S1-SIGMA0-(VV|VH|HH|HV))$", re.IGNORECASE)
_MONTHLY_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "VV", "VH")
_NO_META = {"sample", "date", "valid", "SCL", "cloud", "geometry", "feature_index"}

LabelTable = Mapping[str, str] | Callable[[str], str] | str


# ---------------------------------------------------------------------------- file access
def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".csv.gz" if name.endswith(".csv.gz") else path.suffix.lower()


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise DataFormatError(f"{p}: is a folder; expected {what}")
    if not p.is_file():
        raise MissingFileError(f"{p}: no such file; expected {what}")
    return p


def _read_table(path: Path) -> tuple[pd.DataFrame, dict[bytes, bytes]]:
    """A CSV or Parquet file as a DataFrame plus its Parquet key-value metadata."""
    suffix = _suffix(path)
    try:
        if suffix in _PARQUET_SUFFIXES:
            table = pq.read_table(path)
            return table.to_pandas(), dict(table.schema.metadata or {})
        if suffix in _CSV_SUFFIXES:
            sep = "\t" if suffix == ".tsv" else ","
            return pd.read_csv(path, sep=sep, low_memory=False), {}
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read the table ({exc})") from None
    raise DataFormatError(
        f"{path}: unknown table type {suffix!r}; expected .csv, .csv.gz, .tsv, .parquet or "
        ".geoparquet"
    )


def _require_rows(path: Path, df: pd.DataFrame, what: str) -> None:
    """DataFormatError when a table has its header but no rows: nothing to read."""
    if len(df) == 0:
        raise DataFormatError(
            f"no observations in {path}: the table has columns {list(df.columns)[:12]} but no "
            f"rows; expected {what}; add the rows or give the file they were exported to"
        )


def warn_empty_bands(
    source: object, bands: Sequence[str], empty: Sequence[bool] | NDArray[np.bool_]
) -> list[str]:
    """Log one WARNING naming the bands that hold no value at all (every entry NaN) in
    ``source`` (or saying that no band holds one).

    Called once per read by the readers, so that training, prediction, transfer and
    compositing all say it, once. Returns the empty bands.
    """
    names = [str(b) for b, e in zip(bands, empty, strict=True) if bool(e)]
    if len(names) > 1 and len(names) == len(bands):
        log.warning(
            "no band holds a value in %s (every entry is NaN): no sample has an observation to "
            "learn from or predict; check the extraction",
            source,
        )
    elif names:
        log.warning(
            "band%s %s hold%s no value in %s: a model trained on %s learns nothing from %s; "
            "leave %s out when training (train / transfer --bands, SeriesSet.select_bands in "
            "Python) or fill %s",
            *("s", ", ".join(names), "", source, "them", "them", "them", "them")
            if len(names) > 1
            else ("", names[0], "s", source, "it", "it", "it", "it"),
        )
    return names


#: a column name holding a date (``B04_2023-05-01``, ``NDVI_20230501``)
_DATED_COLUMN = re.compile(r"(?:19|20)\d{2}-?[01]\d-?[0-3]\d")


def _missing_columns(path: Path, df: pd.DataFrame, needed: Sequence[str], fmt: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        import difflib

        columns = [str(c) for c in df.columns]
        # a long table's first 20 columns may not hold the one meant (crop6 for crop7): the
        # nearest names are said, and a cut list says so
        near = {
            m: hit[0]
            for m in missing
            if (hit := difflib.get_close_matches(str(m), columns, n=1, cutoff=0.6))
        }
        hint = "".join(f" (did you mean {v!r} for {k!r}?)" for k, v in near.items())
        dated = [c for c in columns if _DATED_COLUMN.search(c)]
        if len(dated) >= 2 and fmt == "tidy":  # one column per band and date (B04_2023-05-01)
            hint += (
                f" ({len(dated)} columns such as {dated[0]!r} look like one column per band "
                "and date: reshape to one row per sample and date with a column per band, "
                "e.g. with pandas.melt)"
            )
        more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
        raise DataFormatError(
            f"{path}: the {fmt} layout needs columns {list(needed)} but {missing} are missing"
            f"{hint}; found {columns[:20]}{more}; rename the columns or choose another format="
        )


#: Numeric date formats tried besides pandas' guesses (two-digit years are never guessed).
_EXTRA_DATE_FORMATS = tuple(
    f.replace("/", sep)
    for sep in "/.-"
    for f in ("%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y", "%m/%d/%y", "%y/%m/%d")
)
_FORMAT_WORDS = {"%Y": "YYYY", "%y": "YY", "%m": "MM", "%d": "DD", "%H": "hh", "%M": "mm",
                 "%S": "ss", "%B": "<month name>", "%b": "<month abbreviation>"}  # fmt: skip
_ISO_FIX = "write dates as YYYY-MM-DD (ISO 8601)"


def _format_words(fmt: str) -> str:
    """``"%d/%m/%Y"`` -> ``"DD/MM/YYYY"``."""
    for code, word in _FORMAT_WORDS.items():
        fmt = fmt.replace(code, word)
    return fmt


def _date_guesses(value: str) -> list[str]:
    """strptime formats that might read ``value`` (pandas' guesses, either order of day/month)."""
    from pandas.tseries.api import guess_datetime_format

    out: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Parsing dates in %d/%m/%Y format when dayfirst=…"
        for dayfirst in (False, True):
            guess = guess_datetime_format(value, dayfirst=dayfirst)
            # year-day-month is no convention anyone writes; reading it would turn
            # invalid ISO dates into valid ones
            if guess and not re.match(r"%Y\W?%d", guess) and guess not in out:
                out.append(guess)
    return out


def _strptime_all(text: pd.Index, fmt: str) -> pd.DatetimeIndex:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce"))


def _text_dates(path: Path, column: str, text: pd.Index) -> pd.DatetimeIndex:
    """Distinct date strings of one column parsed with ONE format: ISO 8601 as is, otherwise
    the single text format that reads every value (logged at INFO); DataFormatError when
    values are no dates, formats mix, or day and month cannot be told apart."""
    where = f"{path}: column {column!r}"
    try:
        iso = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", errors="coerce"))
    except ValueError:  # offsets of several zones left in forms not stripped: one clock, UTC
        iso = pd.DatetimeIndex(
            pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        ).tz_convert(None)
    if iso.notna().all():
        return iso.tz_localize(None) if iso.tz is not None else iso
    other = [str(v) for v in text[iso.isna()]]
    guesses = {v: _date_guesses(v) for v in other[:200]}
    cands = list(dict.fromkeys([f for g in guesses.values() for f in g]))
    cands += [f for f in _EXTRA_DATE_FORMATS if f not in cands]
    parsed = {f: _strptime_all(text, f) for f in cands} if not iso.notna().any() else {}
    whole = {f: d for f, d in parsed.items() if d.notna().all()}
    if whole:
        fmts = list(whole)
        first = whole[fmts[0]]
        differ = [f for f in fmts[1:] if not first.equals(whole[f])]
        if differ:
            alt = whole[differ[0]]
            i = int(np.flatnonzero(first.to_numpy() != alt.to_numpy())[0])
            raise DataFormatError(
                f"{where}: dates are ambiguous: the whole column reads both as "
                f"{_format_words(fmts[0])} and as {_format_words(differ[0])} (e.g. {text[i]!r} "
                f"is {first[i]:%Y-%m-%d} or {alt[i]:%Y-%m-%d}); expected dates that read one way "
                f"only; {_ISO_FIX}"
            )
        log.info(
            "%s: dates read as %s (the one format that reads all %d distinct values), e.g. %r "
            "-> %s",
            where, _format_words(fmts[0]), len(text), text[0], f"{first[0]:%Y-%m-%d}",
        )  # fmt: skip
        return first
    # no single format: values that no format reads are no dates; otherwise formats mix
    if iso.notna().any():
        unread = other
    else:
        read = np.zeros(len(text), dtype=bool)
        for d in parsed.values():
            read |= np.asarray(d.notna())
        unread = [str(v) for v in text[~read]]
    # the first non-date is the example; looked for among a few hundred values at most (each
    # costs a dozen single-value parses), the rest counted as dates mixing formats
    not_date = next((v for v in unread[:300] if not _is_some_date(v)), None)
    if not_date is not None:
        doy = not_date.isdigit() and 1 <= int(not_date) <= 366
        raise DataFormatError(
            f"{where} holds values that are not dates, e.g. {not_date!r}; expected dates "
            "like '2023-05-01'; "
            + (
                "day-of-year numbers need their year: convert them to dates (Jan 1 of the "
                "year + day - 1) or pass date_column= to another column"
                if doy
                else "fix those rows or pass date_column="
            )
        )
    if iso.notna().any():
        example, odd = str(text[iso.notna()][0]), other[0]
    else:
        best = max(parsed, key=lambda f: int(np.asarray(parsed[f].notna()).sum()))
        example = str(text[parsed[best].notna()][0])
        odd = str(text[parsed[best].isna()][0])
    raise DataFormatError(
        f"{where} mixes date formats, e.g. {example!r} and {odd!r}; expected one format for the "
        f"whole column; {_ISO_FIX}"
    )


def _is_some_date(value: str) -> bool:
    """Whether any text format cropglobe knows reads ``value`` as a date."""
    one = pd.Index([value], dtype=object)
    formats = [*_date_guesses(value), *_EXTRA_DATE_FORMATS]
    return any(pd.notna(_strptime_all(one, f)[0]) for f in formats)


def _parse_dates(path: Path, column: str, values: pd.Series, fmt: str | None = None) -> pd.Series:
    """Parse a date column to datetime64[ns]; DataFormatError naming a bad example.

    Native datetime columns are kept. Text is parsed strictly with ``fmt`` or, without it,
    as ISO 8601, else with the one text format that reads every value of the column (e.g.
    day-first ``DD/MM/YYYY`` when some first field exceeds 12; logged at INFO). Values that
    are no dates, columns mixing formats and dates whose day and month cannot be told apart
    raise instead of being read one way or the other.
    """
    if values.isna().any():
        bad = int(values.isna().sum())
        raise DataFormatError(
            f"{path}: column {column!r} holds {bad} empty values; every row needs a date; fix "
            "those rows or pass date_column="
        )
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
    else:
        codes, uniques = pd.factorize(values.astype(str).str.strip())
        text = _local_times(path, column, pd.Index(uniques, dtype=object))
        if fmt is not None:
            parsed = _strptime_all(text, fmt)
            if parsed.isna().any():
                raise DataFormatError(
                    f"{path}: column {column!r} holds values that are not dates in format "
                    f"{fmt!r}, e.g. {text[parsed.isna()][0]!r}; fix those rows or pass "
                    "date_column="
                )
        else:
            parsed = _text_dates(path, column, text)
        out = pd.Series(parsed.to_numpy()[codes], index=values.index)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)  # the local date and time, as for text with offsets
    return out.astype("datetime64[ns]")


#: an ISO 8601 date and time followed by its UTC offset (``Z``, ``+02:00``, ``-0500``)
_ISO_OFFSET = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"
)


def _local_times(path: Path, column: str, text: pd.Index) -> pd.Index:
    """``text`` with the UTC offsets of ISO 8601 date-times left out: each value is read as
    the local date and time written, not moved to UTC. A date stored at local midnight
    (``2023-07-01T00:00:00+02:00``, as time-zone-aware tools write dates) is 30 June in UTC:
    converting would move every such observation to the day before, and across bin edges;
    an acquisition time (Sentinel-2 passes mid-morning) has the same date either way."""
    stripped = text.str.replace(_ISO_OFFSET, r"\1", regex=True)
    changed = int((stripped != text).sum())
    if changed:
        log.info(
            "%s: column %r: %d distinct date-times carry a UTC offset (e.g. %r); each is read "
            "as the local date and time written, not converted to UTC",
            path, column, changed, str(text[np.flatnonzero(stripped != text)[0]]),
        )  # fmt: skip
    return pd.Index(stripped, dtype=object)


# ---------------------------------------------------------------------------- WKB points
def wkb_points_to_lonlat(geoms: Sequence[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Longitude/latitude (x, y) of WKB or EWKB point geometries, vectorised over equal lengths.

    Args:
        geoms: WKB byte strings (2-D points; EWKB with an SRID also works), (N,). None gives NaN.

    Returns:
        ``(x, y)`` float64 arrays (N,).

    Raises:
        DataFormatError: a geometry is not a point.
    """
    n = len(geoms)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    blobs = pd.Series(list(geoms), dtype=object)
    present = blobs.notna().to_numpy()
    if not present.any():
        return x, y
    lengths = blobs[present].map(len).to_numpy()
    pos_all = np.flatnonzero(present)
    for length in np.unique(lengths):
        pos = pos_all[lengths == length]
        raw = np.frombuffer(b"".join(bytes(b) for b in blobs.iloc[pos]), dtype=np.uint8)
        raw = raw.reshape(len(pos), int(length))
        if length not in (21, 25):
            raise DataFormatError(
                f"geometry of {length} bytes is not a 2-D WKB point; expected point geometries "
                "(convert polygons to centroids first)"
            )
        for order, endian in ((1, "<"), (0, ">")):
            sel = raw[:, 0] == order
            if not sel.any():
                continue
            r = raw[sel]
            gtype = r[:, 1:5].copy().view(f"{endian}u4").ravel()
            off = 9 if length == 25 else 5
            if np.any((gtype & 0xFFFF) != 1):
                raise DataFormatError(
                    f"WKB geometry type {int(gtype[(gtype & 0xFFFF) != 1][0])} is not a point; "
                    "expected point geometries (convert polygons to centroids first)"
                )
            xy = r[:, off : off + 16].copy().view(f"{endian}f8")
            x[pos[sel]] = xy[:, 0]
            y[pos[sel]] = xy[:, 1]
    return x, y


def _wkb_point(lon: float, lat: float) -> bytes:
    """Little-endian WKB of a 2-D point (helper for tests and writers)."""
    return struct.pack("<BIdd", 1, 1, lon, lat)


# ---------------------------------------------------------------------------- labels
#: how to map labels a reader's table does not know: readers take ``label_table=`` (on the
#: command line ``--read-option``), not ``map_labels``'s ``default=``
_LABEL_ADVICE = (
    "map every label to a class with label_table= (on the command line: --read-option "
    '\'label_table={"LABEL": "other", …}\')'
)


def _encode_labels(
    path: Path,
    column: str,
    values: pd.Series,
    table: LabelTable | None,
    classes: Sequence[str],
    advice: str = _LABEL_ADVICE,
) -> NDArray[np.int64]:
    """Class indices of per-sample label values; LabelError naming the file and column, and
    ``advice`` for labels the table does not know."""
    try:
        if table is None and pd.api.types.is_integer_dtype(values.dtype):
            out = values.to_numpy(dtype=np.int64)
            bad = (out < -1) | (out >= len(classes))
            if bad.any():
                raise LabelError(
                    f"class ids {sorted(set(out[bad].tolist()))[:5]} fall outside 0…"
                    f"{len(classes) - 1} of {list(classes)}"
                )
            return out
        if table is None and pd.api.types.is_float_dtype(values.dtype):
            v = values.to_numpy(dtype=np.float64)
            ok = np.isnan(v) | (v == np.round(v))
            if ok.all():
                out = np.where(np.isnan(v), -1, v).astype(np.int64)
                bad = (out < -1) | (out >= len(classes))
                if bad.any():
                    raise LabelError(
                        f"class ids {sorted(set(out[bad].tolist()))[:5]} fall outside 0…"
                        f"{len(classes) - 1} of {list(classes)}"
                    )
                return out
        tbl: LabelTable
        if table is None:
            names = set(values.dropna().astype(str).unique())
            tbl = {c: c for c in classes} if names <= set(classes) else "names"
        else:
            tbl = table
        if pd.api.types.is_float_dtype(values.dtype):
            v = values.to_numpy(dtype=np.float64)
            if (np.isnan(v) | (v == np.round(v))).all():  # codes read as floats: 3.0 is "3"
                values = values.astype("Int64")
        if isinstance(tbl, Mapping):  # numeric codes as keys ({1: "wheat"}) match as text
            tbl = {_code_text(k): c for k, c in tbl.items()}
        str_values = values.astype(object).where(values.notna(), None)
        if not isinstance(tbl, str) or tbl != "ewoc":
            str_values = str_values.map(lambda v: v if v is None else str(v))
        return _map_labels(str_values.to_numpy(), tbl, classes, None, advice)
    except LabelError as exc:
        raise LabelError(f"{path}: column {column!r}: {exc}") from None


def _code_text(key: Any) -> str:
    """A label table's key as the label column's values are compared: text, with a whole
    number written without decimals (1, 1.0 and "1" are one code)."""
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


# ---------------------------------------------------------------------------- core builder
def _known_band(name: str) -> bool:
    code = canonical_band(str(name))
    return code in S2_CATALOGUE or code in _KNOWN_NON_S2


_S2_ORDER = {b: i for i, b in enumerate(S2_CATALOGUE)}
_S1_ORDER = {b: 100 + i for i, b in enumerate(("VV", "VH", "HH", "HV"))}


def _band_rank(code: str) -> tuple[int, str]:
    """Sort key: Sentinel-2 bands in wavelength order, then Sentinel-1, then the rest."""
    return (_S2_ORDER.get(code, _S1_ORDER.get(code, 200)), code)


def _pick_bands(
    path: Path, columns: Sequence[str], candidates: Mapping[str, str], bands: Sequence[str] | None
) -> dict[str, str]:
    """Source column -> canonical band, in the order requested (or of the file)."""
    if bands is None:
        if not candidates:
            raise BandError(
                f"{path}: no band columns found among {list(columns)[:20]}; expected names like "
                "B02…B12, B8A, VV, VH, NDVI (or pass bands=[...]; on the command line: "
                "--read-option 'bands=[\"NAME\", …]')"
            )
        return dict(sorted(candidates.items(), key=lambda kv: _band_rank(kv[1])))
    wanted = canonical_bands(tuple(str(b) for b in bands))
    by_code = {code: col for col, code in candidates.items()}
    for col in columns:  # allow any column to be named as a band explicitly
        by_code.setdefault(canonical_band(str(col)), col)
    missing = [b for b in wanted if b not in by_code]
    if missing:
        raise BandError(
            f"{path}: bands {missing} are not columns of the table; available bands "
            f"{sorted(set(candidates.values()))}; pass bands= from those (on the command line: "
            "--read-option 'bands=[\"NAME\", …]')"
        )
    return {by_code[b]: b for b in wanted}


def _build(
    path: Path,
    df: pd.DataFrame,
    *,
    sample_col: str,
    dates: pd.Series,
    band_cols: Mapping[str, str],
    label_col: str | None,
    label_table: LabelTable | None,
    classes: Sequence[str],
    nodata: float | None,
    attrs: dict[str, Any],
    exclude_meta: set[str],
    cloud_threshold: float,
) -> Observations:
    if df[sample_col].isna().any():
        raise DataFormatError(
            f"{path}: column {sample_col!r} has {int(df[sample_col].isna().sum())} empty sample "
            "ids; every row needs one"
        )
    codes, uniques = pd.factorize(df[sample_col], sort=False)
    n_samples = len(uniques)
    table = pd.DataFrame({"sample": codes.astype(np.int64), "date": dates.to_numpy()})
    for col, band in band_cols.items():
        series = df[col]
        if not (pd.api.types.is_numeric_dtype(series) or series.isna().all()):
            raise DataFormatError(
                f"{path}: band column {col!r} is not numeric (dtype {series.dtype}, e.g. "
                f"{series.dropna().iloc[0]!r}); expected numbers with NaN or empty for no data"
            )
        v = series.to_numpy(dtype=np.float32, na_value=np.nan)
        if nodata is not None:
            v[v == nodata] = np.nan
        table[band] = v
    valid: NDArray[np.bool_] | None = None
    if "valid" in df.columns:
        valid = df["valid"].fillna(False).astype(bool).to_numpy()
    if "cloud" in df.columns:
        cloud = pd.to_numeric(df["cloud"], errors="coerce").to_numpy(dtype=np.float64)
        flag = cloud > (0.5 if np.nanmax(np.append(cloud, 0.0)) <= 1.0 else cloud_threshold)
        clear = ~flag  # unknown (NaN) cloud state keeps the observation
        valid = clear if valid is None else valid & clear
    if valid is not None:
        table["valid"] = valid
    if "SCL" in df.columns:
        table["SCL"] = pd.to_numeric(df["SCL"], errors="coerce").fillna(0).astype(np.int64)

    # Sample metadata: columns constant within every sample (checked vectorised).
    first = np.unique(codes, return_index=True)[1]
    skip = set(band_cols) | _NO_META | exclude_meta | {sample_col}
    cand = [c for c in df.columns if c not in skip]
    keep: list[str] = []
    if cand:
        hashable = [c for c in cand if _hashable(df[c])]
        if hashable:
            nun = df[hashable].groupby(codes, sort=True).nunique(dropna=False)
            keep = [c for c in hashable if bool((nun[c] <= 1).all())]
            # columns that vary within a sample stay out of its metadata; say where, so that
            # grouping by one of them can explain why it is missing
            varying = {
                c: str(uniques[int(np.flatnonzero(nun[c].to_numpy() > 1)[0])])
                for c in hashable
                if c not in keep and c not in ("valid", "cloud")
            }
            if varying:
                attrs = {**attrs, "varying_columns": varying}
    samples = df.iloc[first][keep].reset_index(drop=True)
    samples.insert(0, "sample_id", pd.Series(uniques, dtype=object).astype(str).to_numpy())
    if label_col is not None:
        lab = df[label_col]
        nun_lab = lab.groupby(codes).nunique(dropna=True)
        if (nun_lab > 1).any():
            bad = uniques[int(np.flatnonzero(nun_lab.to_numpy() > 1)[0])]
            raise DataFormatError(
                f"{path}: column {label_col!r} changes within sample {bad!r}; expected one label "
                "per sample"
            )
        per_sample = lab.groupby(codes).first()
        per_sample = per_sample.reindex(np.arange(n_samples))
        labels = _encode_labels(path, label_col, per_sample.reset_index(drop=True),
                                label_table, classes)  # fmt: skip
    else:
        labels = np.full(n_samples, -1, dtype=np.int64)
    if label_col is not None and label_table in ("ewoc", "crop6") and "ewoc_code" in samples:
        labels = _unlabel_unspecified(path, samples["ewoc_code"], labels)
    samples["label"] = labels
    if "country" in samples:
        orig = samples["country"]
        iso = _iso3(orig)
        if not (iso.astype(str) == orig.astype(str)).all():
            samples["country_original"] = orig
        samples["country"] = iso
    table = table.sort_values(["sample", "date"], kind="stable").reset_index(drop=True)
    obs = Observations(table, tuple(band_cols.values()), samples, tuple(classes), attrs)
    warn_empty_bands(path, obs.bands, [bool(table[b].isna().all()) for b in obs.bands])
    log.info("%s: %d rows, %d samples, bands %s", path, len(table), n_samples, list(obs.bands))
    return obs


def _unlabel_unspecified(
    path: Path, codes: pd.Series, labels: NDArray[np.int64]
) -> NDArray[np.int64]:
    """``labels`` with the samples whose WorldCereal ``ewoc_code`` does not say which crop
    grows (0 "Unknown", unspecified cropland or cereals: :func:`ewoc_is_unspecified`) made
    unlabelled (−1), with one WARNING giving their number by code: an unknown crop may be
    maize or wheat, so training or scoring it as "other" (WorldCereal's ``crop6`` does) would
    be label noise."""
    unspecified = codes.map(lambda c: c is not None and c == c and ewoc_is_unspecified(c))
    hit = unspecified.to_numpy(dtype=bool)
    if not hit.any():
        return labels
    counts = codes[hit].map(lambda c: c if isinstance(c, str) else str(int(c))).value_counts()
    shown = ", ".join(f"{code}: {n}" for code, n in counts.head(5).items())
    log.warning(
        "%s: %d sample(s) have an ewoc_code that does not say which crop grows (by code: "
        "%s%s; 0 is WorldCereal's 'Unknown', the others stop above the crop, such as "
        "unspecified cereals); they are read as unlabelled, left out of training and scoring "
        "rather than counted as 'other'",
        path,
        int(hit.sum()),
        shown,
        ", …" if len(counts) > 5 else "",
    )
    out = labels.copy()
    out[hit] = -1
    return out


def _hashable(s: pd.Series) -> bool:
    if s.dtype != object:
        return True
    sample = s.dropna()
    return sample.empty or isinstance(sample.iloc[0], str | bytes | int | float | bool)


def _iso3(values: pd.Series) -> pd.Series:
    """ISO3 country codes of ISO2/ISO3 codes or English names (unknown values unchanged)."""
    table = country_table()
    by_name = {str(n).lower(): iso for iso, n in zip(table.index, table["name"], strict=True)}
    uniq = values.dropna().unique()
    lut = {}
    for u in uniq:
        text = str(u)
        lut[u] = by_name.get(text.strip().lower(), normalise_country(text))
    return values.map(lut).astype(object)


# ---------------------------------------------------------------------------- observations
def _detect(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    if any(_WC_BAND_RE.match(c) for c in cols):
        return "worldcereal"
    if "month" in cols and "date" not in cols:
        return "monthly"
    from cropglobe.io.gee import is_gee_table

    return "gee" if is_gee_table(cols) else "tidy"


def read_observations(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    label_column: str | None = None,
    label_table: LabelTable | None = None,
    classes: Sequence[str] | None = None,
    bands: Sequence[str] | None = None,
    sample_column: str = "sample_id",
    date_column: str | None = None,
    cloud_threshold: float = 50.0,
) -> Observations:
    """Read a long table of raw observations (CSV, Parquet or GeoParquet).

    Args:
        path: the table file (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``, ``.geoparquet``).
        format: ``"worldcereal"``, ``"tidy"``, ``"monthly"``, ``"gee"`` or ``"auto"``
            (WorldCereal when ``S2-L2A-…``/``S1-SIGMA0-…`` columns exist, monthly when there is
            a ``month`` and no ``date`` column, an Earth Engine export when there is a
            ``system:index`` or ``.geo`` column or getRegion's ``id, longitude, latitude,
            time``, or the file is GeoJSON; tidy otherwise). See the module docstring for each
            layout and :mod:`cropglobe.io.gee` for Earth Engine exports.
        label_column: column holding the label; default ``ewoc_code`` (worldcereal), ``crop6``
            (monthly), ``label`` (tidy, when present; else the samples are unlabelled).
        label_table: how label values map to ``classes`` (see :func:`cropglobe.classes.map_labels`);
            default ``"ewoc"`` for ``ewoc_code``, ``"crop6"`` for ``crop6``, otherwise integer
            columns are class ids and names are matched directly or through ``"names"``.
        classes: the target vocabulary; None = the vocabulary stored in a table written by
            :func:`write_observations`, else ``CROPGLOBE_CLASSES``.
        bands: bands to keep, any spelling (``"B2"``, ``"S2-L2A-B02"``); None keeps every
            recognised band column (Sentinel-2, Sentinel-1, spectral indices; the ``monthly``
            layout keeps B02…B12, B8A, VV, VH and leaves out its derived ``ndvi``).
        sample_column: the sample id column.
        date_column: the date column; default ``timestamp`` (worldcereal), ``date`` (tidy).
        cloud_threshold: a ``cloud`` column with values above 1 is a probability in %; rows
            above this threshold are marked invalid.

    Returns:
        Observations: table ``sample, date, <bands float32>, [valid], [SCL]`` sorted by sample
        and date; samples ``sample_id, <constant-per-sample metadata>, label`` (countries
        normalised to ISO3, originals in ``country_original``); WorldCereal geometries become
        ``lon``/``lat``.

    Raises:
        MissingFileError: no such file.
        DataFormatError: unreadable file, missing columns (lists found vs expected), dates
            that do not parse (names the column and an example).
        BandError: requested bands are absent.
        LabelError: labels outside the vocabulary.
    """
    p = _require_file(path, "a long observation table (.csv, .parquet or .geoparquet)")
    if format not in OBSERVATION_FORMATS:
        raise DataFormatError(
            f"format={format!r} is unknown; expected one of {list(OBSERVATION_FORMATS)}"
        )
    if format in ("auto", "gee") and p.name.lower().endswith((".geojson", ".json")):
        from cropglobe.io.gee import read_gee_export

        return read_gee_export(p, **_gee_settings(bands, sample_column, label_column,
                                                  label_table, classes, date_column,
                                                  cloud_threshold))  # fmt: skip
    df, kv = _read_table(p)
    df.columns = [str(c) for c in df.columns]
    _require_rows(p, df, "one row per sample and date")
    stored = _stored_meta(kv)
    if classes is None:
        classes = tuple(stored.get("classes", CROPGLOBE_CLASSES))
    fmt = _detect(df) if format == "auto" else format
    attrs: dict[str, Any] = {**stored.get("attrs", {}), "source": str(p), "format": fmt}
    common: dict[str, Any] = {
        "classes": tuple(classes),
        "attrs": attrs,
        "cloud_threshold": cloud_threshold,
    }

    if fmt == "gee":
        from cropglobe.io.gee import is_gee_table, observations_from_frame

        if not is_gee_table(list(df.columns)):
            raise DataFormatError(
                f"{p}: format='gee' but the table has none of an Earth Engine export's columns "
                "(system:index, .geo, or getRegion's id, longitude, latitude, time); found "
                f"{list(df.columns)[:12]}; leave format= out to detect the layout"
            )

        settings = _gee_settings(bands, sample_column, label_column, label_table, classes,
                                 date_column, cloud_threshold)  # fmt: skip
        return observations_from_frame(p, df, **settings, attrs=attrs)

    if fmt == "worldcereal":
        dcol = date_column or "timestamp"
        _missing_columns(p, df, [sample_column, dcol], "WorldCereal")
        cands = {c: canonical_band(c) for c in df.columns if _WC_BAND_RE.match(c)}
        band_cols = _pick_bands(p, list(df.columns), cands, bands)
        dates = _parse_dates(p, dcol, df[dcol])
        if "geometry" in df.columns and not {"lon", "lat"} <= set(df.columns):
            first = np.unique(pd.factorize(df[sample_column])[0], return_index=True)[1]
            try:
                x, y = wkb_points_to_lonlat(df["geometry"].iloc[first].tolist())
            except DataFormatError as exc:
                raise DataFormatError(f"{p}: column 'geometry': {exc}") from None
            codes = pd.factorize(df[sample_column])[0]
            df = df.assign(lon=x[codes], lat=y[codes])
        lcol = label_column or ("ewoc_code" if "ewoc_code" in df.columns else None)
        if lcol is not None and lcol not in df.columns:
            _missing_columns(p, df, [lcol], "WorldCereal")
        ltable = label_table if label_table is not None else ("ewoc" if lcol == "ewoc_code"
                                                              else None)  # fmt: skip
        if "country" not in df.columns and "ref_id" in df.columns:
            cc = df["ref_id"].astype(str).str.extract(r"^\d{4}_([A-Za-z]{2,3})_", expand=False)
            if cc.notna().all():
                df = df.assign(country=cc)
        return _build(p, df, sample_col=sample_column, dates=dates, band_cols=band_cols,
                      label_col=lcol, label_table=ltable, nodata=WORLDCEREAL_NODATA,
                      exclude_meta={dcol}, **common)  # fmt: skip

    if fmt == "monthly":
        dcol = date_column or "month"
        _missing_columns(p, df, [sample_column, dcol], "monthly")
        cands = {c: canonical_band(c) for c in df.columns if canonical_band(c) in _MONTHLY_BANDS}
        band_cols = _pick_bands(p, list(df.columns), cands, bands)
        month_fmt = None if pd.api.types.is_datetime64_any_dtype(df[dcol]) else "%Y-%m"
        dates = _parse_dates(p, dcol, df[dcol], fmt=month_fmt) + pd.Timedelta(days=14)
        lcol = label_column or ("crop6" if "crop6" in df.columns else None)
        if lcol is not None and lcol not in df.columns:
            _missing_columns(p, df, [lcol], "monthly")
        ltable = label_table if label_table is not None else ("crop6" if lcol == "crop6"
                                                              else None)  # fmt: skip
        return _build(p, df, sample_col=sample_column, dates=dates, band_cols=band_cols,
                      label_col=lcol, label_table=ltable, nodata=None,
                      exclude_meta={dcol, "ndvi"}, **common)  # fmt: skip

    # tidy
    dcol = date_column or "date"
    _missing_columns(p, df, [sample_column, dcol], "tidy")
    skip = {sample_column, dcol, "valid", "SCL", "cloud", "label", label_column}
    cands = {c: canonical_band(c) for c in df.columns if c not in skip and _known_band(c)}
    band_cols = _pick_bands(p, list(df.columns), cands, bands)
    dates = _parse_dates(p, dcol, df[dcol])
    lcol = label_column or ("label" if "label" in df.columns else None)
    if lcol is not None and lcol not in df.columns:
        _missing_columns(p, df, [lcol], "tidy")
    from cropglobe.io.gee import warn_unit_scale

    df, dates = _drop_repeated_rows(p, df, dates, sample_column, list(band_cols))
    df = _integer_nodata(p, df, list(band_cols))
    warn_unit_scale(p, df, list(band_cols))
    return _build(p, df, sample_col=sample_column, dates=dates, band_cols=band_cols,
                  label_col=lcol, label_table=label_table, nodata=None,
                  exclude_meta={dcol}, **common)  # fmt: skip


def _drop_repeated_rows(
    p: Path, df: pd.DataFrame, dates: pd.Series, sample_col: str, band_cols: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """``df`` and ``dates`` without the rows that repeat another row of the same sample and
    date exactly (every band and validity column equal), with one WARNING: a copy (tables
    concatenated twice, overlapping exports) would otherwise count twice in its bin's median."""
    flags = [c for c in ("valid", "SCL", "cloud") if c in df.columns]
    key = df[[sample_col, *band_cols, *flags]].assign(_date=dates.to_numpy())
    dup = key.duplicated().to_numpy()
    if not dup.any():
        return df, dates
    first = df.loc[dup].iloc[0]
    log.warning(
        "%s: %d row(s) repeat another row exactly (same %s, date and values; e.g. %r on %s); "
        "each is kept once, so that a copy does not count twice in a composite's median",
        p, int(dup.sum()), sample_col, first[sample_col], f"{dates[dup].iloc[0]:%Y-%m-%d}",
    )  # fmt: skip
    return df.loc[~dup].reset_index(drop=True), dates[~dup].reset_index(drop=True)


def _integer_nodata(p: Path, df: pd.DataFrame, band_cols: list[str]) -> pd.DataFrame:
    """``df`` with the value 65535 in integer-coded band columns read as no data (NaN), with
    one WARNING naming the bands: it is the uint16 no-data value of WorldCereal extractions
    (and Sentinel-2's saturation code), never a reflectance, and would pull medians far up."""
    hit: dict[str, int] = {}
    out = df
    for col in band_cols:
        series = df[col]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = v[np.isfinite(v)]
        if not (finite == WORLDCEREAL_NODATA).any() or (finite != np.round(finite)).any():
            continue
        if out is df:
            out = df.copy()
        hit[col] = int((v == WORLDCEREAL_NODATA).sum())
        out[col] = np.where(v == WORLDCEREAL_NODATA, np.nan, v)
    if hit:
        log.warning(
            "%s: the value %d in integer band columns is read as no data (NaN): %s",
            p,
            WORLDCEREAL_NODATA,
            ", ".join(f"{c} {n} row(s)" for c, n in hit.items()),
        )
    return out


def _gee_settings(
    bands: Sequence[str] | None,
    sample_column: str,
    label_column: str | None,
    label_table: LabelTable | None,
    classes: Sequence[str] | None,
    date_column: str | None,
    cloud_threshold: float,
) -> dict[str, Any]:
    """:func:`read_observations`' settings as :mod:`cropglobe.io.gee` takes them (its sample
    column is looked for by name unless one other than the default was given)."""
    return {
        "bands": bands,
        "sample_column": None if sample_column == "sample_id" else sample_column,
        "label_column": label_column,
        "label_table": label_table,
        "classes": classes,
        "date_column": date_column,
        "cloud_threshold": cloud_threshold,
    }


def _stored_meta(kv: Mapping[bytes, bytes]) -> dict[str, Any]:
    raw = kv.get(_META_KEY)
    if not raw:
        return {}
    try:
        out = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return out if isinstance(out, dict) else {}


def _write_table(df: pd.DataFrame, path: Path, meta: dict[str, Any]) -> Path:
    suffix = _suffix(path)
    with atomic_path(path) as tmp:
        if suffix in _PARQUET_SUFFIXES:
            table = pa.Table.from_pandas(df, preserve_index=False)
            kv = dict(table.schema.metadata or {})
            kv[_META_KEY] = json.dumps(meta, default=json_default).encode("utf-8")
            pq.write_table(table.replace_schema_metadata(kv), tmp)
        elif suffix in _CSV_SUFFIXES and suffix != ".tsv":
            df.to_csv(tmp, index=False, compression="gzip" if suffix == ".csv.gz" else None)
        else:
            raise DataFormatError(
                f"{path}: cannot write a {suffix!r} table; use .csv, .csv.gz or .parquet"
            )
    return path


def write_observations(obs: Observations, path: str | os.PathLike[str]) -> Path:
    """Write observations as a tidy long table (``.csv``, ``.csv.gz`` or ``.parquet``; atomic).

    Columns: ``sample_id``, ``date``, the bands, ``valid``/``SCL`` when present, ``label``
    (class name, empty for unlabelled) and the per-sample metadata repeated on each row. Parquet
    files also store the vocabulary and attrs, so :func:`read_observations` restores them.

    Returns:
        The written path.
    """
    p = Path(path)
    t = obs.table
    sample = t["sample"].to_numpy(dtype=np.int64)
    s = obs.samples
    names = np.array([*obs.classes, None], dtype=object)
    out = pd.DataFrame({"sample_id": s["sample_id"].astype(str).to_numpy()[sample],
                        "date": t["date"].to_numpy()})  # fmt: skip
    for b in obs.bands:
        out[b] = t[b].to_numpy()
    for c in ("valid", "SCL"):
        if c in t:
            out[c] = t[c].to_numpy()
    out["label"] = names[s["label"].to_numpy(dtype=np.int64)][sample]
    reserved = set(out.columns)
    for c in s.columns:
        if c in ("sample_id", "label"):
            continue
        if c in reserved or _known_band(c):
            raise DataFormatError(
                f"samples column {c!r} clashes with an observation column; rename it before "
                f"writing {p}"
            )
        out[c] = s[c].to_numpy()[sample]
    meta = {"format": "cropglobe.observations", "version": 1, "classes": list(obs.classes),
            "bands": list(obs.bands), "attrs": obs.attrs}  # fmt: skip
    return _write_table(out, p, meta)


# ---------------------------------------------------------------------------- series tables
def _bin_start_dates(
    grid: TimeGrid, years: NDArray[np.int64], anchors: NDArray[np.object_] | None = None
) -> NDArray[np.datetime64]:
    """Calendar date of each bin start for each sample's season year, (N, T); ``anchors``:
    each sample's season anchor in a set of several seasons (default: the grid's)."""
    a = np.full(len(years), parse_anchor(grid.anchor), dtype=np.int64)
    if anchors is not None:
        days = {s: parse_anchor(str(s)) for s in set(anchors.tolist())}
        a = np.array([days[s] for s in anchors.tolist()], dtype=np.int64)
    # days after 1 Jan of the season year, non-leap reference
    offset = (a - 1)[:, None] + (np.asarray(grid.starts) - 1)[None, :]
    cal_year = years[:, None] + (offset >= 365)
    doy = offset % 365 + 1
    leap = ((cal_year % 4 == 0) & (cal_year % 100 != 0)) | (cal_year % 400 == 0)
    doy = doy + (leap & (doy >= 60))
    base = (cal_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    return base + (doy - 1).astype("timedelta64[D]")


def write_series_table(ss: SeriesSet, path: str | os.PathLike[str]) -> Path:
    """Write a SeriesSet as a long tidy Parquet table, one row per sample × time step (atomic).

    Columns: ``sample`` (row position 0…N−1), ``sample_id``, ``step`` (0…T−1), ``date`` (the
    bin's first day in the sample's season year — ``meta["year"]`` when present, else 2001), one
    float32 column per band, ``label`` (class name, null for unlabelled) and every meta column
    (renamed ``meta_<name>`` when it clashes). The grid, bands, classes, attrs and meta order
    are stored as JSON in the Parquet key-value metadata (key ``cropglobe``), so
    :func:`read_series_table` restores the set exactly.

    Returns:
        The written path.
    """
    p = Path(path)
    if _suffix(p) not in _PARQUET_SUFFIXES:
        raise DataFormatError(f"{p}: series tables are Parquet; use a .parquet file name")
    out, info = series_frame(ss)
    return _write_table(out, p, info)


def series_frame(ss: SeriesSet) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A SeriesSet as the long table :func:`write_series_table` writes (one row per sample ×
    time step; the columns are described there), in memory, with the metadata that restores
    the set (grid, bands, classes, attrs, meta order). ``SeriesSet.to_frame()`` is its table.
    """
    n, c, t = ss.shape
    meta = ss.meta
    reserved = {"sample", "sample_id", "step", "date", "label", *ss.bands}
    meta_cols: dict[str, str] = {}
    for col in meta.columns:
        name = str(col)
        if name == "sample_id":
            continue
        while name in reserved or name in meta_cols.values():
            name = f"meta_{name}"
        meta_cols[str(col)] = name
    if "year" in meta and pd.api.types.is_integer_dtype(meta["year"]):
        years = meta["year"].to_numpy(dtype=np.int64)
    else:
        years = np.full(n, 2001, dtype=np.int64)
    ids = (meta["sample_id"].astype(str).to_numpy() if "sample_id" in meta
           else np.arange(n).astype(str))  # fmt: skip
    rows = np.repeat(np.arange(n), t)
    out = pd.DataFrame(
        {
            "sample": rows.astype(np.int64),
            "sample_id": np.asarray(ids, dtype=object)[rows],
            "step": np.tile(np.arange(t, dtype=np.int64), n),
            "date": _bin_start_dates(ss.grid, years, ss.anchors)
            .reshape(-1)
            .astype("datetime64[ns]"),
        }
    )
    flat = ss.values.transpose(0, 2, 1).reshape(n * t, c)
    for i, b in enumerate(ss.bands):
        out[b] = flat[:, i]
    names = np.array([*ss.classes, None], dtype=object)
    out["label"] = names[ss.labels][rows]
    for col, name in meta_cols.items():
        out[name] = meta[col].iloc[rows].reset_index(drop=True)
    info = {
        "format": "cropglobe.series_table",
        "version": 1,
        "bands": list(ss.bands),
        "grid": ss.grid.to_dict(),
        "classes": list(ss.classes),
        "attrs": ss.attrs,
        "n_samples": n,
        "meta_columns": [[str(k), v] for k, v in meta_cols.items()],
        "has_sample_id": "sample_id" in meta,
        "meta_order": [str(x) for x in meta.columns],
    }
    return out, info


def read_series_table(path: str | os.PathLike[str]) -> SeriesSet:
    """Read a table written by :func:`write_series_table` back into the same SeriesSet.

    Raises:
        MissingFileError: no such file.
        DataFormatError: the Parquet file lacks the ``cropglobe`` series metadata (read raw
            long tables with :func:`read_observations` and composite them instead) or its
            columns.
    """
    p = _require_file(path, "a Parquet series table written by write_series_table")
    if _suffix(p) not in _PARQUET_SUFFIXES:
        raise DataFormatError(f"{p}: series tables are Parquet files; got {p.suffix!r}")
    df, kv = _read_table(p)
    info = _stored_meta(kv)
    if info.get("format") != "cropglobe.series_table":
        raise DataFormatError(
            f"{p}: no cropglobe series-table metadata; expected a table written by "
            "write_series_table; read raw long tables with read_observations and composite them"
        )
    bands = tuple(info["bands"])
    grid = TimeGrid.from_dict(info["grid"])
    classes = tuple(info["classes"])
    meta_cols = {k: v for k, v in info.get("meta_columns", [])}
    _missing_columns(p, df, ["sample_id", "step", "label", *bands, *meta_cols.values()],
                     "series-table")  # fmt: skip
    if "sample" in df:  # row position of the sample (sample ids need not be unique)
        codes = df["sample"].to_numpy(dtype=np.int64)
        n_found = int(codes.max()) + 1 if codes.size else 0
    else:
        codes, uniques = pd.factorize(df["sample_id"], sort=False)
        n_found = len(uniques)
    n = int(info.get("n_samples", n_found))
    if n_found != n or (codes.size and codes.min() < 0):
        raise DataFormatError(f"{p}: {n_found} samples in the table but the metadata says {n}")
    t = grid.n_steps
    step = df["step"].to_numpy(dtype=np.int64)
    if step.size and (step.min() < 0 or step.max() >= t):
        raise DataFormatError(f"{p}: column 'step' leaves 0…{t - 1} of the stored grid")
    values = np.full((n, len(bands), t), np.nan, dtype=np.float32)
    arr = df[list(bands)].to_numpy(dtype=np.float32, na_value=np.nan)
    values[codes[:, None], np.arange(len(bands))[None, :], step[:, None]] = arr
    first = np.unique(codes, return_index=True)[1]
    if len(first) != n:
        raise DataFormatError(f"{p}: {n - len(first)} of {n} samples have no rows; rewrite it")
    rows = df.iloc[first].reset_index(drop=True)
    meta = pd.DataFrame(index=pd.RangeIndex(n))
    order = info.get("meta_order", [])
    for col in order:
        if col == "sample_id":
            meta[col] = rows["sample_id"]
        else:
            meta[col] = rows[meta_cols[col]]
    if not info.get("has_sample_id", True):
        meta = meta.drop(columns=["sample_id"], errors="ignore")
    labels = _encode_labels(
        p, "label", rows["label"], {c: c for c in classes}, classes,
        "a series table's labels are classes of its own vocabulary: the file was altered "
        "after it was written; write it again",
    )  # fmt: skip
    if n:
        warn_empty_bands(p, bands, np.isnan(values).all(axis=(0, 2)).reshape(-1))
    return SeriesSet(values, bands, grid, labels, classes, meta, dict(info.get("attrs", {})))


# ---------------------------------------------------------------------------- wide tables
def _time_columns(
    path: Path, df: pd.DataFrame, doy_columns: Sequence[str] | None
) -> tuple[list[str], str]:
    """Columns holding the time axis and whether they are ``"doy"`` or ``"date"``."""
    if doy_columns is not None:
        cols = [str(c) for c in doy_columns]
        _missing_columns(path, df, cols, "wide")
        return cols, "doy"
    names = [str(c) for c in df.columns]
    doy = [c for c in names if re.fullmatch(r"\d{1,3}", c.strip()) and 1 <= int(c) <= 366]
    if len(doy) >= 2:
        return doy, "doy"
    dated = [c for c in names if re.fullmatch(r"\d{4}-\d{2}-\d{2}", c.strip())]
    if len(dated) >= 2:
        return dated, "date"
    raise DataFormatError(
        f"{path}: no time columns found; expected one column per day of year ('1', '17', …) or "
        f"per date ('2023-05-01'), found {names[:12]}; pass doy_columns=[...]"
    )


def read_wide_table(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    value_name: str = "NDVI",
    doy_columns: Sequence[str] | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    label_table: LabelTable | None = None,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
    attributes: str | os.PathLike[str] | pd.DataFrame | None = None,
    anchor: str = "01-01",
    season_end: int = 365,
) -> SeriesSet:
    """Read a wide table (one row per sample, one column per time step) of one band.

    Args:
        path: a CSV/Parquet file or a DataFrame.
        value_name: band name of the values (``"NDVI"``).
        doy_columns: the time columns, each named by its first day of season; None detects
            integer column names (``"1"``, ``"17"`` …) or ISO dates (``"2023-05-01"``).
        id_column: sample id column; None takes ``sample_id`` if there is one, else numbers
            the rows.
        label_column: label column (in the table or in ``attributes``); None takes
            ``label`` if there is one, else leaves samples unlabelled.
        label_table: label mapping (see :func:`cropglobe.classes.map_labels`).
        classes: target vocabulary.
        attributes: per-sample attribute table in the **same row order** (file or DataFrame);
            its columns join ``meta``.
        anchor: ``"MM-DD"`` season start; DOY columns are converted to days of this season.
        season_end: last day of season covered by the last step (365: to the end of the year).

    Returns:
        SeriesSet with values float32 (N, 1, T) (NaN gaps kept), bands ``(value_name,)``, grid
        built with :meth:`TimeGrid.from_starts` (DOY columns) or from the dates' days of season
        (all dates must lie in one season), labels (−1 when no label column) and meta (every
        non-time column, plus ``year`` for dated columns).

    Raises:
        DataFormatError: no time columns, non-numeric values, dates spanning several seasons,
            attribute rows that do not match.
    """
    if isinstance(path, pd.DataFrame):
        p, df = Path("<DataFrame>"), path.copy()
    else:
        p = _require_file(path, "a wide table (.csv or .parquet)")
        df, _ = _read_table(p)
    df.columns = [str(c) for c in df.columns]
    _require_rows(p, df, "one row per sample")
    cols, kind = _time_columns(p, df, doy_columns)
    extra_meta: dict[str, Any] = {}
    if kind == "doy":
        doy = np.array([int(c) for c in cols], dtype=np.int64)
        a = parse_anchor(anchor)
        dos = (doy - a) % 365 + 1
    else:
        season, dos = day_of_season(np.array(cols, dtype="datetime64[D]"), anchor)
        if len(np.unique(season)) != 1:
            raise DataFormatError(
                f"{p}: date columns span seasons {sorted(set(season.tolist()))} of a season "
                f"starting {anchor}; expected one season; pass anchor= (the season's first day, "
                "MM-DD; on the command line: --read-option anchor=MM-DD) or split the table"
            )
        extra_meta["year"] = int(season[0])
    order = np.argsort(dos, kind="stable")
    if np.any(np.diff(dos[order]) == 0):
        raise DataFormatError(f"{p}: two time columns fall on the same day of season")
    cols = [cols[i] for i in order]
    starts = dos[order]
    diffs = np.diff(starts)
    grid_kind = f"{int(diffs[0])}-day" if diffs.size and np.all(diffs == diffs[0]) else "custom"
    grid = TimeGrid.from_starts(starts.tolist(), end=season_end, anchor=anchor, kind=grid_kind)
    block = df[cols]
    non_num = [c for c in cols if not pd.api.types.is_numeric_dtype(block[c])
               and not block[c].isna().all()]  # fmt: skip
    if non_num:
        raise DataFormatError(
            f"{p}: time columns {non_num[:3]} are not numeric (e.g. "
            f"{block[non_num[0]].dropna().iloc[0]!r}); expected numbers, empty for missing"
        )
    values = block.to_numpy(dtype=np.float32, na_value=np.nan)[:, None, :]
    meta = df.drop(columns=cols).reset_index(drop=True)
    if attributes is not None:
        if isinstance(attributes, pd.DataFrame):
            att, att_name = attributes.reset_index(drop=True), "<attributes>"
        else:
            ap = _require_file(attributes, "a per-sample attribute table")
            att, att_name = _read_table(ap)[0], str(ap)
        if len(att) != len(meta):
            raise DataFormatError(
                f"{att_name}: {len(att)} rows but {p} has {len(meta)} samples; the attribute "
                "table must list the samples in the same order"
            )
        dup = [c for c in att.columns if c in meta.columns]
        meta = pd.concat([meta, att.drop(columns=dup)], axis=1)
    for k, v in extra_meta.items():
        if k not in meta:
            meta[k] = v
    if id_column is None and "sample_id" in meta.columns:
        id_column = "sample_id"  # the id column cropglobe's own tables use
    if label_column is None and "label" in meta.columns:
        label_column = "label"  # as the long-table reader detects it
    if id_column is not None:
        _missing_columns(p, meta, [id_column], "wide")
        ids = meta.pop(id_column).astype(str)
    else:
        ids = pd.Series(np.arange(len(meta)).astype(str))
    meta.insert(0, "sample_id", ids.to_numpy())
    if label_column is not None:
        _missing_columns(p, meta, [label_column], "wide")
        labels = _encode_labels(p, label_column, meta[label_column], label_table, classes)
    else:
        labels = np.full(len(meta), -1, dtype=np.int64)
    band = canonical_band(value_name)
    attrs = {"source": str(p), "format": "wide"}
    ss = SeriesSet(values, (band,), grid, labels, tuple(classes), meta, attrs)
    ss.validate(str(p), allow_empty=True)
    warn_empty_bands(p, ss.bands, np.isnan(values).all(axis=(0, 2)).reshape(-1))
    return ss


_CAWA_SERIES = "CAWa_CropType_time-series.csv"
_CAWA_ATTRS = "samples_attributes.csv"
_CAWA_POLY = "CAWa_CropType_polygon-info.csv"

#: a town at the heart of each CAWa region (latitude, longitude in degrees), to tell which
#: projection a region-year's polygon coordinates are in
_CAWA_TOWNS = {
    "fergana": (40.39, 71.79),
    "samarkand": (39.65, 66.96),
    "kashkadarya": (38.86, 65.80),  # Qarshi
    "khorezm": (41.55, 60.63),  # Urgench
    "dushanbe": (38.56, 68.78),
}
#: the MODIS sinusoidal projection (PROJ string: it has no EPSG code)
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
#: projections the CAWa polygon table's x/y may be in: MODIS sinusoidal, UTM 40-44 N (WGS 84)
_CAWA_CRS_CANDIDATES = (MODIS_SINUSOIDAL, *(f"EPSG:{32600 + zone}" for zone in range(40, 45)))


def _cawa_xy_crs(
    region: pd.Series, year: pd.Series, x: pd.Series, y: pd.Series
) -> NDArray[np.object_]:
    """Per row, the projection the CAWa polygon table's ``x``/``y`` are most likely in
    (``EPSG:32642``, :data:`MODIS_SINUSOIDAL` …), ``"unknown"`` where none is clear.

    The table names none, and its region-years differ: by magnitude, x is ~6.0e6 (sinusoidal)
    for Fergana 2011 and 0.9e5-1.25e6 (UTM eastings) elsewhere, and UTM eastings do not say
    their zone. For each (region, year), every candidate projection is inverted and the one
    placing the points nearest the region's town is kept when its median distance is under
    300 km and the next candidate's is over twice as far (UTM zones lie ~500 km apart).
    """
    from rasterio.warp import transform

    out = np.full(len(x), "unknown", dtype=object)
    xs, ys = x.to_numpy(dtype=np.float64), y.to_numpy(dtype=np.float64)
    finite = np.isfinite(xs) & np.isfinite(ys)
    if not finite.any():
        return out
    lonlat = {}
    for crs in _CAWA_CRS_CANDIDATES:
        lon, lat = transform(crs, "EPSG:4326", xs[finite].tolist(), ys[finite].tolist())
        full = np.full((2, len(xs)), np.nan)
        full[:, finite] = np.asarray([lon, lat], dtype=np.float64)
        lonlat[crs] = full
    keys = pd.DataFrame({"region": region.astype(str).str.strip().str.lower(), "year": year})
    for key, found in keys.groupby(["region", "year"], dropna=False).indices.items():
        town = _CAWA_TOWNS.get(str(key[0]) if isinstance(key, tuple) else "")
        rows = np.asarray(found)[finite[found]]
        if town is None or not rows.size:
            continue
        lat0, lon0 = np.radians(town)
        km = {}
        for crs, (lon, lat) in lonlat.items():
            la, lo = np.radians(lat[rows]), np.radians(lon[rows])
            hav = (
                np.sin((la - lat0) / 2) ** 2
                + np.cos(la) * np.cos(lat0) * np.sin((lo - lon0) / 2) ** 2
            )
            dist = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))
            km[crs] = float(np.nanmedian(dist)) if np.isfinite(dist).any() else np.inf
        best, second = sorted(km, key=km.__getitem__)[:2]
        if km[best] < 300 and km[second] > 2 * km[best]:
            out[rows] = best
    return out


def read_cawa(
    folder: str | os.PathLike[str],
    *,
    label_table: LabelTable = "cawa",
    classes: Sequence[str] = CROPGLOBE_CLASSES,
) -> SeriesSet:
    """Read the CAWa crop-type dataset (Remelgado et al. 2020) from its original CSV tables.

    Reads ``CAWa_CropType_time-series.csv`` (wide NDVI, 16-day composites, columns DOY 1, 17,
    …, 353), ``samples_attributes.csv`` (same row order: ``sampler, country, region, date,
    year, label_1, label_2, area``) and, when present, ``CAWa_CropType_polygon-info.csv``
    (``x``, ``y`` polygon coordinates in metres; cover statistics; pixel ``count`` ->
    ``pix_count``).

    The polygon table names no coordinate system and its region-years use several: Fergana
    2011 is MODIS sinusoidal (x ~6.0e6), Fergana 2018 and Khorezm UTM zone 41 N, the others UTM
    zone 42 N (placing each in its named region tells them apart; by magnitude alone the UTM
    eastings look alike). ``x`` and ``y`` are therefore kept as they are, and ``xy_crs`` holds
    each row's projection as far as it can be told (``EPSG:32641``, ``EPSG:32642``,
    :data:`MODIS_SINUSOIDAL`; ``"unknown"`` where no candidate places the region-year's
    points near its region), for ``rasterio.warp.transform`` or pyproj.

    Args:
        folder: the CAWa folder, or the time-series CSV inside it. The ``cawa_ndvi.npz``
            convenience file is refused: it holds object arrays that would need unpickling.
        label_table: how ``label_1`` maps to ``classes`` (default: CAWa -> CropGlobe, double
            crops and unknown crops -> "other").
        classes: target vocabulary.

    Returns:
        SeriesSet: values float32 (N, 1, 23) NDVI with NaN gaps (~26 %), grid
        ``TimeGrid.from_starts([1, 17, …, 353])`` (16-day), meta ``sample_id`` (``CAWa_000000``),
        ``country`` (ISO3), ``country_name``, ``region``, ``year``, ``date``, ``sampler``,
        ``label_1``, ``label_2``, ``label_original`` (= ``label_1``), ``area``, and from the
        polygon table ``x``, ``y``, ``xy_crs``, ``pix_count`` …

    Raises:
        MissingFileError: a required CSV is absent.
        DataFormatError: the npz was given, or the tables disagree in length.
    """
    p = Path(folder)
    if p.is_file() and p.suffix.lower() == ".npz":
        raise DataFormatError(
            f"{p}: this npz stores object arrays that can only be read by unpickling, which "
            f"cropglobe never does; read the CSV tables instead: read_cawa('{p.parent}')"
        )
    root = p.parent if p.is_file() else p
    if not root.is_dir():
        raise MissingFileError(
            f"{root}: no such folder; expected the CAWa folder holding {_CAWA_SERIES} and "
            f"{_CAWA_ATTRS}"
        )
    series = root / _CAWA_SERIES
    if not series.is_file():
        raise MissingFileError(
            f"{series}: no such file; expected the CAWa wide NDVI table in {root}"
        )
    att_path = root / _CAWA_ATTRS
    if not att_path.is_file():
        raise MissingFileError(
            f"{att_path}: no such file; the CAWa labels come from it (same row order as "
            f"{_CAWA_SERIES})"
        )
    att, _ = _read_table(att_path)
    _missing_columns(att_path, att, ["country", "region", "year", "label_1"], "CAWa attribute")
    poly = root / _CAWA_POLY
    if poly.is_file():
        pinfo, _ = _read_table(poly)
        pinfo = pinfo.rename(columns={"count": "pix_count"})
        if len(pinfo) == len(att):
            att = pd.concat([att.reset_index(drop=True), pinfo.reset_index(drop=True)], axis=1)
            if {"x", "y"} <= set(att.columns):
                att["xy_crs"] = _cawa_xy_crs(att["region"], att["year"], att["x"], att["y"])
        else:
            log.warning("%s: %d rows for %d samples; ignored", poly, len(pinfo), len(att))
    att = att.copy()
    att["label_original"] = att["label_1"]
    att["country_name"] = att["country"]
    att["country"] = _iso3(att["country"])
    ss = read_wide_table(series, value_name="NDVI", attributes=att, label_column="label_1",
                         label_table=label_table, classes=classes)  # fmt: skip
    ss.meta["sample_id"] = np.char.add("CAWa_", np.char.zfill(
        np.arange(ss.n_samples).astype(str), 6)).astype(object)  # fmt: skip
    ss.attrs = {"source": str(root), "format": "cawa", "dataset": "CAWa (Remelgado et al. 2020)",
                "licence": "CC BY 4.0"}  # fmt: skip
    return ss
