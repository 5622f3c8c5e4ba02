"""Raster time-series stacks: GeoTIFF/COG files, xarray DataArrays and Zarr stores.

A :class:`RasterStack` is a lazy (time, band, y, x) view of many acquisitions on one pixel grid.
:func:`open_stack` builds one from

- GeoTIFF/COG files, either one multi-band file per acquisition date or one file per date and
  band. The date of a file comes from its name (``20230501`` or ``2023-05-01`` anywhere in it)
  or, failing that, from its GDAL tags (``DATE``, ``ACQUISITION_DATE``, ``DATETIME``,
  ``TIFFTAG_DATETIME``). Band names come from the band descriptions, or for single-band files
  without a description from a band code in the file name (``…_B8A.tif``), or from ``bands=``.
  A band described ``SCL`` is used as the Sentinel-2 scene classification (validity) layer;
  separate SCL / validity files can be given with ``mask=``.
- an :class:`xarray.DataArray` with dims ``(time, band, y, x)`` (or a Dataset with one variable
  per band and dims ``(time, y, x)``, as odc-stac produces), or
- a Zarr store holding such an array (needs the optional ``zarr`` package).

Every file must share the CRS, the affine transform and the shape of the first; the error names
the file that differs and how. Reads are windowed (:meth:`RasterStack.read`): nothing is loaded
before a window is asked for, so memory is bounded by the window, not by the raster.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cropglobe.bands import SCL_INVALID, canonical_band
from cropglobe.errors import BandError, DataFormatError, MissingFileError, ParameterError

__all__ = [
    "RasterStack",
    "Window",
    "open_stack",
    "parse_date",
    "stack_from_xarray",
    "to_float",
]

logger = logging.getLogger(__name__)

#: (row_off, col_off, height, width) of a window, in pixels.
Window = tuple[int, int, int, int]
MaskKind = Literal["scl", "valid"]

_DATE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")
_DATE_TAGS = ("DATE", "ACQUISITION_DATE", "DATETIME", "SENSING_TIME", "TIFFTAG_DATETIME")
_TAG_DATE_RE = re.compile(r"((?:19|20)\d{2})[-:/]?(\d{2})[-:/]?(\d{2})")
_SCL_NAMES = {"SCL", "SCENE_CLASSIFICATION"}
_MASK_NAMES = {"VALID", "MASK", "VALIDITY"}
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
#: the tag cropglobe writes into its own maps (class, probability, uncertainty COGs)
_OWN_TAG = "CROPGLOBE_MODEL"


def parse_date(text: str) -> np.datetime64 | None:
    """The acquisition date in a file name or tag (``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY:MM:DD``).

    Returns:
        a ``datetime64[D]``, or None when ``text`` holds no valid date.
    """
    for m in _DATE_RE.finditer(text):
        try:
            return np.datetime64(f"{m.group(1)}-{m.group(2)}-{m.group(3)}", "D")
        except ValueError:
            continue
    return None


def _tag_date(tags: dict[str, str]) -> np.datetime64 | None:
    upper = {k.upper(): v for k, v in tags.items()}
    for key in _DATE_TAGS:
        if key in upper:
            m = _TAG_DATE_RE.search(str(upper[key]))
            if m:
                try:
                    return np.datetime64(f"{m.group(1)}-{m.group(2)}-{m.group(3)}", "D")
                except ValueError:
                    continue
    return None


def _band_from_name(path: Path) -> str | None:
    """A band code found as a token of the file name (``x_20230501_B8A.tif`` -> ``B8A``)."""
    from cropglobe.bands import S2_CATALOGUE

    for token in reversed(re.split(r"[_.\-\s]+", path.stem)):
        code = canonical_band(token)
        if code in S2_CATALOGUE or code in ("VV", "VH") or code.upper() in _SCL_NAMES:
            return code.upper() if code.upper() in _SCL_NAMES else code
    return None


@dataclass(frozen=True)
class _Source:
    """One band of one acquisition: ``path`` band ``index`` (1-based) with its nodata value."""

    path: str
    index: int
    nodata: float | None


@dataclass
class RasterStack:
    """A lazy (time, band, y, x) raster time series on one pixel grid.

    Attributes:
        dates: ``datetime64[D]`` (T,), acquisition dates, increasing.
        bands: the C band names (canonical spelling), in order.
        height: rows H of the pixel grid.
        width: columns W.
        crs: the coordinate reference system (a ``rasterio.crs.CRS``) or None.
        transform: the affine transform (a ``rasterio.Affine``) of the pixel grid.
        sources: for file stacks, ``sources[t][c]`` is where band c of date t lives.
        mask_sources: per date, the SCL / validity layer, or None.
        mask_kind: ``"scl"`` (Sentinel-2 scene classes; :data:`SCL_INVALID` is masked) or
            ``"valid"`` (non-zero = valid).
        array: for in-memory / xarray stacks, the (T, C, H, W) array-like (NumPy or dask).
        mask_array: for xarray stacks, an optional (T, H, W) mask array-like.
        array_nodata: for xarray stacks, each band's nodata value (None: none).
        description: how to name the stack in messages (the glob, the first file …).
        incomplete_bands: bands some dates of a file stack have and others lack, each with the
            dates lacking it (ISO strings). They are not in :attr:`bands`: a model that needs
            one gets an error from :meth:`band_positions` naming those dates.
    """

    dates: NDArray[np.datetime64]
    bands: tuple[str, ...]
    height: int
    width: int
    crs: Any = None
    transform: Any = None
    sources: list[list[_Source]] = field(default_factory=list)
    mask_sources: list[_Source | None] = field(default_factory=list)
    mask_kind: MaskKind = "scl"
    array: Any = None
    mask_array: Any = None
    array_nodata: tuple[float | None, ...] = ()
    description: str = "raster stack"
    incomplete_bands: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(T, C, H, W)."""
        return (len(self.dates), len(self.bands), self.height, self.width)

    @property
    def files(self) -> list[str]:
        """Every distinct file the stack reads, in date order."""
        seen: dict[str, None] = {}
        for row in self.sources:
            for s in row:
                seen.setdefault(s.path, None)
        for m in self.mask_sources:
            if m is not None:
                seen.setdefault(m.path, None)
        return list(seen)

    def __repr__(self) -> str:
        t, _c, h, w = self.shape
        span = f"{self.dates[0]}…{self.dates[-1]}" if t else "no dates"
        return f"RasterStack({t} dates {span}, bands={list(self.bands)}, {h}×{w}, {self.crs})"

    def band_positions(self, names: Sequence[str]) -> list[int]:
        """Positions of ``names`` in :attr:`bands`; :class:`BandError` naming what is missing."""
        wanted = [canonical_band(str(n)) for n in names]
        missing = [b for b in wanted if b not in self.bands]
        partial = [b for b in missing if b in self.incomplete_bands]
        if partial:
            lacking = sorted({d for b in partial for d in self.incomplete_bands[b]})
            t = int(np.flatnonzero(self.dates == np.datetime64(lacking[0], "D"))[0])
            have = sorted({s.path for s in self.sources[t]}) if self.sources else []
            raise BandError(
                f"{self.description}: dates {lacking} lack bands {partial} the model needs, "
                f"which other dates have (files of {lacking[0]}: {have}); add the missing files "
                "or drop those dates"
            )
        if missing:
            raise BandError(
                f"{self.description}: lacks bands {missing} the model needs; the stack has "
                f"{list(self.bands)}; add files (or band descriptions) for those bands"
            )
        return [self.bands.index(b) for b in wanted]

    @contextlib.contextmanager
    def reader(self) -> Iterator[_Reader]:
        """Open the stack's files for a series of windowed reads (closed on exit).

        Each thread or process should use its own reader (GDAL handles are not thread-safe).
        """
        r = _Reader(self)
        try:
            yield r
        finally:
            r.close()


class _Reader:
    """Open file handles of a stack (per thread), windowed reads into NumPy arrays."""

    def __init__(self, stack: RasterStack) -> None:
        self.stack = stack
        self._handles: dict[str, Any] = {}

    def _open(self, path: str) -> Any:
        h = self._handles.get(path)
        if h is None:
            import rasterio

            try:
                h = rasterio.open(path)
            except (rasterio.errors.RasterioIOError, OSError) as exc:
                raise DataFormatError(
                    f"{path}: cannot open this raster ({_first_line(exc)}); check that the file "
                    "exists and is a complete GeoTIFF"
                ) from None
            self._handles[path] = h
        return h

    def close(self) -> None:
        for h in self._handles.values():
            h.close()
        self._handles.clear()

    def read(
        self, window: Window, date_index: Sequence[int], band_index: Sequence[int]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Values and validity of a window.

        Args:
            window: (row_off, col_off, height, width) in pixels.
            date_index: the T' dates to read (positions into :attr:`RasterStack.dates`).
            band_index: the C' bands to read (positions into :attr:`RasterStack.bands`).

        Returns:
            ``(values, valid)``: float32 (T', C', h, w) with NaN where a file holds its nodata
            value, and bool (T', h, w), False where the SCL / validity layer masks the pixel.

        Raises:
            DataFormatError: a file cannot be read (the message names it).
        """
        raw, nodata, valid = self.read_raw(window, date_index, band_index)
        return to_float(raw, nodata), valid

    def read_raw(
        self, window: Window, date_index: Sequence[int], band_index: Sequence[int]
    ) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.bool_]]:
        """Like :meth:`read` but in the files' own dtype (half the memory of float32 for uint16).

        Returns:
            ``(data, nodata, valid)``: data (T', C', h, w) in the sources' common dtype, nodata
            float64 (T', C') (NaN = none), valid bool (T', h, w). Convert a slice with
            :func:`to_float`.
        """
        st = self.stack
        r0, c0, h, w = window
        t_n, c_n = len(date_index), len(band_index)
        nodata = np.full((t_n, c_n), np.nan)
        valid = np.ones((t_n, h, w), dtype=bool)
        if st.array is not None:
            for j, b in enumerate(band_index):
                value = st.array_nodata[b] if b < len(st.array_nodata) else None
                if value is not None:
                    nodata[:, j] = value
            return self._read_array(window, date_index, band_index, valid), nodata, valid
        import rasterio
        from rasterio.windows import Window as RioWindow

        win = RioWindow(c0, r0, w, h)
        data: NDArray[Any] | None = None
        for i, t in enumerate(date_index):
            row = st.sources[t]
            # group the bands by file so that each file is read once per window
            by_file: dict[str, list[tuple[int, _Source]]] = {}
            for j, b in enumerate(band_index):
                by_file.setdefault(row[b].path, []).append((j, row[b]))
            for path, items in by_file.items():
                ds = self._open(path)
                try:
                    block = ds.read([s.index for _, s in items], window=win)
                except (rasterio.errors.RasterioIOError, rasterio.errors.RasterioError) as exc:
                    raise DataFormatError(
                        f"{path}: cannot read window rows {r0}–{r0 + h - 1}, columns "
                        f"{c0}–{c0 + w - 1} ({_first_line(exc)}); the file is damaged or "
                        "incomplete — re-download or re-export it"
                    ) from None
                if data is None:
                    data = np.empty((t_n, c_n, h, w), dtype=block.dtype)
                elif not np.can_cast(block.dtype, data.dtype, "safe"):
                    data = data.astype(np.result_type(data.dtype, block.dtype))
                for k, (j, s) in enumerate(items):
                    data[i, j] = block[k]
                    if s.nodata is not None:
                        nodata[i, j] = s.nodata
            m = st.mask_sources[t] if st.mask_sources else None
            if m is not None:
                ds = self._open(m.path)
                try:
                    layer = ds.read(m.index, window=win)
                except (rasterio.errors.RasterioIOError, rasterio.errors.RasterioError) as exc:
                    raise DataFormatError(
                        f"{m.path}: cannot read the validity layer ({_first_line(exc)}); the file "
                        "is damaged or incomplete"
                    ) from None
                valid[i] = _valid_from_layer(layer, st.mask_kind)
        if data is None:
            data = np.empty((t_n, c_n, h, w), dtype=np.float32)
        return data, nodata, valid

    def _read_array(
        self,
        window: Window,
        date_index: Sequence[int],
        band_index: Sequence[int],
        valid: NDArray[np.bool_],
    ) -> NDArray[Any]:
        st = self.stack
        r0, c0, h, w = window
        ti, bi = np.asarray(date_index), np.asarray(band_index)
        block = st.array[:, :, r0 : r0 + h, c0 : c0 + w]
        out = np.asarray(block[ti][:, bi])  # computes dask-backed arrays for this window only
        if st.mask_array is not None:
            layer = np.asarray(st.mask_array[:, r0 : r0 + h, c0 : c0 + w][ti])
            valid[...] = _valid_from_layer(layer, st.mask_kind)
        return out


def to_float(raw: NDArray[Any], nodata: NDArray[np.float64]) -> NDArray[np.float32]:
    """float32 copy of raw values (T, C, …) with NaN where a value equals its (T, C) nodata."""
    out = raw.astype(np.float32)
    for t, c in zip(*np.nonzero(~np.isnan(nodata)), strict=True):
        out[t, c][raw[t, c] == nodata[t, c]] = np.nan
    return out


def _valid_from_layer(layer: NDArray[Any], kind: MaskKind) -> NDArray[np.bool_]:
    if kind == "scl":
        return np.asarray(~np.isin(layer, np.array(sorted(SCL_INVALID))), dtype=bool)
    return np.asarray(layer != 0, dtype=bool)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# =====================================================================================
# Opening file stacks
# =====================================================================================
def _expand(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], what: str
) -> list[Path]:
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise MissingFileError(
                    f"{what} pattern {text!r} matches no file; check the path and quote the "
                    "pattern so that the shell does not expand it"
                )
            out += [Path(h) for h in found]
        elif p.is_dir():
            hits = sorted(q for q in p.iterdir() if q.suffix.lower() in _RASTER_SUFFIXES)
            if not hits:
                raise MissingFileError(f"{what} folder {p} holds no .tif/.tiff raster")
            out += hits
        elif p.is_file():
            out.append(p)
        else:
            raise MissingFileError(f"{what} {p}: no such file; expected GeoTIFF/COG files")
    return out


@dataclass
class _FileInfo:
    path: Path
    date: np.datetime64
    bands: list[str]
    nodata: list[float | None]
    crs: Any
    transform: Any
    height: int
    width: int


def _inspect(path: Path, bands: Sequence[str] | None, what: str) -> _FileInfo | None:
    """Metadata of one stack or mask file; None for a file cropglobe wrote itself (a map)."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
            descriptions = list(ds.descriptions)
            nodata = list(ds.nodatavals)
            info = (ds.crs, ds.transform, ds.height, ds.width, ds.count)
    except (rasterio.errors.RasterioIOError, OSError) as exc:
        raise DataFormatError(
            f"{path}: unreadable {what} ({_first_line(exc)}); expected a GeoTIFF/COG — remove or "
            "replace the file"
        ) from None
    if _OWN_TAG in tags:
        return None
    crs, transform, height, width, count = info
    date = parse_date(path.name)
    if date is None:
        date = _tag_date(tags)
    if date is None:
        raise DataFormatError(
            f"{path}: no acquisition date in the file name (expected YYYYMMDD or YYYY-MM-DD) or "
            f"in its tags ({', '.join(_DATE_TAGS)}); rename the file to include its date"
        )
    own: list[str] | None = None  # the bands the file names itself
    if all(d for d in descriptions):
        own = [canonical_band(str(d)) for d in descriptions]
    elif count == 1 and _band_from_name(path) is not None:
        own = [str(_band_from_name(path))]
    if own is not None:
        if (
            bands is not None
            and what != "mask file"
            and [canonical_band(str(b)) for b in bands] != own
        ):  # silently ignoring them would hide a mistake in either
            raise BandError(
                f"{path}: names its own bands {own} (band descriptions or file name), but "
                f"bands= names {list(bands)}; leave bands out, or give the same names"
            )
        names = own
    elif bands is not None:
        if len(bands) != count and what == "mask file":
            raise DataFormatError(
                f"{path}: given as a mask file but holds {count} undescribed bands; a mask file "
                "holds one SCL or validity band"
            )
        if len(bands) != count:
            raise BandError(
                f"{path}: has {count} bands but bands= names {len(bands)} ({list(bands)}); give "
                "one name per band in file order"
            )
        names = [canonical_band(str(b)) for b in bands]
    else:
        raise BandError(
            f"{path}: its {count} bands have no descriptions and the file name names no band; "
            "set band descriptions (e.g. B02 … B12) or pass bands=[…] in file order"
        )
    names = [n.upper() if n.upper() in _SCL_NAMES | _MASK_NAMES else n for n in names]
    return _FileInfo(path, date, names, nodata, crs, transform, height, width)


def _inspect_all(
    files: Sequence[Path], bands: Sequence[str] | None, what: str, where: str
) -> list[_FileInfo]:
    """:func:`_inspect` each file, skipping (and logging) the maps cropglobe wrote itself: a map
    written into the stack's folder is not an acquisition of the next run."""
    infos: list[_FileInfo] = []
    own: list[str] = []
    for p in files:
        info = _inspect(p, bands, what)
        if info is None:
            own.append(p.name)
        else:
            infos.append(info)
    if own:
        logger.info(
            "%s: skipped %d file%s written by cropglobe (tagged %s, not acquisitions): %s",
            where,
            len(own),
            "" if len(own) == 1 else "s",
            _OWN_TAG,
            ", ".join(own),
        )
    if not infos:
        raise MissingFileError(
            f"{where}: holds only files written by cropglobe ({', '.join(own)}), no acquisition; "
            f"give the {what}s of the stack"
        )
    return infos


def _check_same_grid(info: _FileInfo, ref: _FileInfo) -> None:
    if info.crs != ref.crs:
        raise DataFormatError(
            f"{info.path}: CRS {_crs_text(info.crs)} differs from {_crs_text(ref.crs)} of "
            f"{ref.path}; reproject every file of the stack to one grid (e.g. gdalwarp)"
        )
    if (info.height, info.width) != (ref.height, ref.width):
        raise DataFormatError(
            f"{info.path}: shape {info.height}×{info.width} differs from {ref.height}×{ref.width} "
            f"of {ref.path}; resample every file of the stack to one pixel grid"
        )
    if not info.transform.almost_equals(ref.transform, precision=1e-6 * abs(ref.transform.a)):
        raise DataFormatError(
            f"{info.path}: transform {tuple(info.transform)[:6]} differs from "
            f"{tuple(ref.transform)[:6]} of {ref.path}; align every file to one pixel grid"
        )


def _crs_text(crs: Any) -> str:
    if crs is None:
        return "None"
    return str(crs.to_string() if hasattr(crs, "to_string") else crs)


def open_stack(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    mask: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    mask_kind: MaskKind = "scl",
    bands: Sequence[str] | None = None,
) -> RasterStack:
    """Open a stack of GeoTIFF/COG files (one per date, or one per date and band).

    Only metadata are read; the pixel values are read window by window later.

    Args:
        paths: a glob pattern (``"tiles/*.tif"``), a folder, a file, or a list of those.
        mask: optional SCL / validity files, one per date (matched by date), same grid.
        mask_kind: ``"scl"``: Sentinel-2 scene classes, :data:`~cropglobe.bands.SCL_INVALID`
            masked; ``"valid"``: non-zero means valid.
        bands: band names in file order, for multi-band files without band descriptions.

    Returns:
        The :class:`RasterStack`; a band described ``SCL`` inside the files becomes the mask.

    Raises:
        MissingFileError: no file matches.
        DataFormatError: a file is unreadable, has no date, or differs in CRS, transform or
            shape (the message names it and the reference file); two files give one band of one
            date.
        BandError: band names cannot be found. (A band some dates lack is left out of
            :attr:`RasterStack.bands` and recorded in :attr:`RasterStack.incomplete_bands`;
            :meth:`RasterStack.band_positions` refuses it, naming the dates.)
    """
    if mask_kind not in ("scl", "valid"):
        raise ParameterError(f"mask_kind must be 'scl' or 'valid', got {mask_kind!r}")
    files = _expand(paths, "stack")
    description = os.fspath(paths) if isinstance(paths, str | os.PathLike) else str(files[0].parent)
    infos = _inspect_all(files, bands, "stack file", description)
    ref = infos[0]
    for info in infos[1:]:
        _check_same_grid(info, ref)
    per_date: dict[np.datetime64, dict[str, _Source]] = {}
    scl: dict[np.datetime64, _Source] = {}
    for info in infos:
        slot = per_date.setdefault(info.date, {})
        for k, (name, nd) in enumerate(zip(info.bands, info.nodata, strict=True)):
            src = _Source(str(info.path), k + 1, None if nd is None else float(nd))
            if name in _SCL_NAMES | _MASK_NAMES:
                scl[info.date] = src
                if name in _MASK_NAMES:
                    mask_kind = "valid"
                continue
            if name in slot:
                raise DataFormatError(
                    f"{info.path}: band {name} of {info.date} is also in {slot[name].path}; "
                    "keep one file per date and band"
                )
            slot[name] = src
    dates = sorted(per_date)
    order = [b for b in ref.bands if b not in _SCL_NAMES | _MASK_NAMES]
    for d in dates:
        order += [b for b in per_date[d] if b not in order]
    if not order:
        raise BandError(f"{description}: the stack holds no spectral band (only a mask layer)")
    # a band some dates lack is left out of the stack's bands: only the bands the model needs
    # must be on every date (RasterStack.band_positions names the dates lacking one)
    incomplete = {
        b: tuple(str(d) for d in dates if b not in per_date[d])
        for b in order
        if any(b not in per_date[d] for d in dates)
    }
    if incomplete:
        logger.info(
            "%s: bands %s are missing on some dates (%s); usable only by models without them",
            description,
            list(incomplete),
            "; ".join(
                f"{b}: {', '.join(ds[:3])}{' …' * (len(ds) > 3)}" for b, ds in incomplete.items()
            ),
        )
        order = [b for b in order if b not in incomplete]
    masks: list[_Source | None] = [scl.get(d) for d in dates]
    if mask is not None:
        mwhere = os.fspath(mask) if isinstance(mask, str | os.PathLike) else "mask files"
        mfiles = _inspect_all(_expand(mask, "mask"), ["SCL"], "mask file", mwhere)
        by_date: dict[np.datetime64, _Source] = {}
        for info in mfiles:
            if len(info.bands) != 1 or info.bands[0] not in _SCL_NAMES | _MASK_NAMES:
                raise DataFormatError(
                    f"{info.path}: given as a mask file but holds bands {info.bands}; a mask "
                    "file holds one SCL or validity band (name it SCL or valid, or leave it "
                    "undescribed)"
                )
            _check_same_grid(info, ref)
            by_date[info.date] = _Source(
                str(info.path), 1, None if info.nodata[0] is None else float(info.nodata[0])
            )
        lacking = [str(d) for d in dates if d not in by_date]
        if lacking:
            raise DataFormatError(
                f"mask {os.fspath(mask) if isinstance(mask, str | os.PathLike) else 'files'}: no "
                f"SCL/validity file for dates {lacking[:5]} of the stack; give one per date"
            )
        masks = [by_date[d] for d in dates]
    return RasterStack(
        dates=np.array(dates, dtype="datetime64[D]"),
        bands=tuple(order),
        height=int(ref.height),
        width=int(ref.width),
        crs=ref.crs,
        transform=ref.transform,
        sources=[[per_date[d][b] for b in order] for d in dates],
        mask_sources=masks,
        mask_kind=mask_kind,
        description=description,
        incomplete_bands=incomplete,
    )


# =====================================================================================
# xarray / Zarr
# =====================================================================================
def stack_from_xarray(
    data: Any,
    *,
    mask: Any = None,
    mask_kind: MaskKind = "scl",
    crs: Any = None,
    transform: Any = None,
) -> RasterStack:
    """A :class:`RasterStack` over an xarray DataArray (time, band, y, x), Dataset or Zarr store.

    Args:
        data: a DataArray with dims ``("time", "band", "y", "x")`` (a ``time`` coordinate of
            dates and a ``band`` coordinate of names); a Dataset whose data variables are bands
            with dims ``(time, y, x)`` (odc-stac); or a path to a Zarr store holding either
            (needs ``zarr``). A variable/band named ``SCL`` becomes the mask. Dask-backed arrays
            stay lazy: only the windows asked for are computed.
        mask: optional (time, y, x) DataArray of SCL classes / validity.
        mask_kind: see :func:`open_stack`.
        crs: CRS when the data carry none (``rioxarray``'s ``.rio.crs`` or a ``spatial_ref``
            coordinate are used otherwise).
        transform: affine transform when the data carry none; otherwise from ``.rio``,
            ``spatial_ref.GeoTransform`` or the regular ``x``/``y`` pixel-centre coordinates.

    Raises:
        DataFormatError: wrong dims, no time coordinate, irregular coordinates.
        ModelError: never; ParameterError: bad ``mask_kind``.
    """
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency of the raster extra
        raise DataFormatError(
            "xarray inputs need the package 'xarray'; pip install xarray"
        ) from None
    if mask_kind not in ("scl", "valid"):
        raise ParameterError(f"mask_kind must be 'scl' or 'valid', got {mask_kind!r}")
    description = "xarray stack"
    if isinstance(data, str | os.PathLike):
        description = os.fspath(data)
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise DataFormatError(
                f"{description}: reading a Zarr store needs the package 'zarr'; pip install zarr"
            ) from None
        if not Path(description).exists():
            raise MissingFileError(f"{description}: no such Zarr store")
        try:
            with warnings.catch_warnings():  # "no consolidated metadata" is not the user's problem
                warnings.simplefilter("ignore")
                data = xr.open_zarr(description)
        except Exception as exc:  # zarr raises many types
            raise DataFormatError(
                f"{description}: not a readable Zarr store ({_first_line(exc)})"
            ) from None
        if isinstance(data, xr.Dataset) and len(data.data_vars) == 1:
            data = data[next(iter(data.data_vars))]
    var_nodata: dict[str, float | None] | None = None
    if isinstance(data, xr.Dataset):
        names = [str(v) for v in data.data_vars]
        scl_vars = [v for v in names if v.upper() in _SCL_NAMES | _MASK_NAMES]
        if scl_vars and mask is None:
            mask = data[scl_vars[0]]
            if scl_vars[0].upper() in _MASK_NAMES:
                mask_kind = "valid"
        spectral = [v for v in names if v not in scl_vars]
        var_nodata = {v: _xarray_nodata(data[v]) for v in spectral}  # odc-stac: attrs["nodata"]
        data = data[spectral].to_array("band").transpose("time", "band", "y", "x")
    if not isinstance(data, xr.DataArray):
        raise DataFormatError(
            f"expected an xarray DataArray (time, band, y, x), a Dataset or a Zarr path, got "
            f"{type(data).__name__}"
        )
    if set(data.dims) != {"time", "band", "y", "x"}:
        raise DataFormatError(
            f"{description}: dims {tuple(data.dims)} are not (time, band, y, x); rename them "
            "(e.g. da.rename(latitude='y')) and transpose"
        )
    data = data.transpose("time", "band", "y", "x")
    if var_nodata is None:  # one DataArray: one nodata value for all its bands
        value = _xarray_nodata(data)
        var_nodata = {str(b): value for b in data["band"].values} if "band" in data.coords else {}
    if "time" not in data.coords:
        raise DataFormatError(f"{description}: no 'time' coordinate; give acquisition dates")
    dates = np.asarray(data["time"].values).astype("datetime64[D]")
    raw_names = [str(b) for b in data["band"].values] if "band" in data.coords else []
    bnames = [canonical_band(b) for b in raw_names]
    if not bnames:
        raise BandError(f"{description}: no 'band' coordinate; give band names")
    band_nodata = [var_nodata.get(b) for b in raw_names]
    bnames = [b.upper() if b.upper() in _SCL_NAMES | _MASK_NAMES else b for b in bnames]
    scl_pos = [i for i, b in enumerate(bnames) if b in _SCL_NAMES | _MASK_NAMES]
    if scl_pos:
        if mask is None:
            mask = data.isel(band=scl_pos[0])
            if bnames[scl_pos[0]] in _MASK_NAMES:
                mask_kind = "valid"
        keep = [i for i in range(len(bnames)) if i not in scl_pos]
        data = data.isel(band=keep)
        bnames = [bnames[i] for i in keep]
        band_nodata = [band_nodata[i] for i in keep]
    order = np.argsort(dates, kind="stable")
    if np.any(order != np.arange(order.size)):
        data = data.isel(time=order)
        dates = dates[order]
        if mask is not None:
            mask = mask.isel(time=order)
    crs_, transform_ = _xarray_georef(data, crs, transform, description)
    mask_arr = None
    if mask is not None:
        mask = mask.transpose("time", "y", "x")
        if mask.shape != (data.shape[0], data.shape[2], data.shape[3]):
            raise DataFormatError(
                f"{description}: mask shape {mask.shape} does not match (time, y, x) "
                f"{(data.shape[0], data.shape[2], data.shape[3])}"
            )
        mask_arr = mask.data
    return RasterStack(
        dates=dates,
        bands=tuple(bnames),
        height=int(data.shape[2]),
        width=int(data.shape[3]),
        crs=crs_,
        transform=transform_,
        array=data.data,
        mask_array=mask_arr,
        mask_kind=mask_kind,
        array_nodata=tuple(band_nodata),
        description=description,
    )


def _xarray_nodata(da: Any) -> float | None:
    """A variable's nodata value: ``attrs["nodata"]`` (odc-stac, stackstac), ``_FillValue`` left
    undecoded, or rioxarray's ``.rio.nodata``; None when it declares none (or NaN)."""
    value = None
    for key in ("nodata", "_FillValue"):
        if da.attrs.get(key) is not None:
            value = da.attrs[key]
            break
    if value is None:
        try:
            value = da.rio.nodata  # rioxarray, when installed and the variable says
        except Exception:  # no .rio accessor or no georeferencing
            value = None
    try:
        number = float(np.asarray(value).reshape(-1)[0]) if value is not None else None
    except (TypeError, ValueError, IndexError):
        return None
    return None if number is None or np.isnan(number) else number


def _xarray_georef(data: Any, crs: Any, transform: Any, what: str) -> tuple[Any, Any]:
    from affine import Affine
    from rasterio.crs import CRS

    if crs is None:
        rio = getattr(data, "rio", None)
        if rio is not None and getattr(rio, "crs", None) is not None:
            crs = rio.crs
        elif "spatial_ref" in data.coords:
            attrs = data["spatial_ref"].attrs
            wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
            crs = wkt
        elif "crs" in data.attrs:
            crs = data.attrs["crs"]
    if crs is not None and not isinstance(crs, CRS):
        try:
            crs = CRS.from_user_input(crs)
        except Exception as exc:  # rasterio raises CRSError
            raise DataFormatError(f"{what}: unusable CRS {crs!r} ({_first_line(exc)})") from None
    if transform is None:
        if "spatial_ref" in data.coords and "GeoTransform" in data["spatial_ref"].attrs:
            gt = [float(v) for v in str(data["spatial_ref"].attrs["GeoTransform"]).split()]
            transform = Affine.from_gdal(*gt)
        elif "transform" in data.attrs:
            transform = Affine(*list(data.attrs["transform"])[:6])
        elif (
            "x" in data.coords
            and "y" in data.coords
            and data.sizes["x"] > 1
            and data.sizes["y"] > 1
        ):
            x = np.asarray(data["x"].values, dtype=np.float64)
            y = np.asarray(data["y"].values, dtype=np.float64)
            dx, dy = np.diff(x), np.diff(y)
            if not (np.allclose(dx, dx[0]) and np.allclose(dy, dy[0])):
                raise DataFormatError(
                    f"{what}: x/y coordinates are not regularly spaced; pass transform= (in "
                    "Python; a Zarr store given on the command line needs regularly spaced x/y "
                    "or a GeoTransform in its spatial_ref attributes)"
                )
            transform = Affine(dx[0], 0.0, x[0] - dx[0] / 2, 0.0, dy[0], y[0] - dy[0] / 2)
        else:
            transform = Affine.identity()
    elif not isinstance(transform, Affine):
        transform = Affine(*list(transform)[:6])
    return crs, transform
