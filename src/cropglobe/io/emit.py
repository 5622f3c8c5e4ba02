"""EMIT L2A surface reflectance (NetCDF4) reader: scene metadata and spectra at points.

The EMIT L2A RFL product (``EMIT_L2A_RFL_001_*.nc``) stores reflectance in *instrument*
geometry and a geolocation lookup table (GLT) that maps a north-up grid to it:

* root variable ``reflectance`` (downtrack, crosstrack, bands), float32 surface reflectance
  (unitless, 0…1), fill value −9999;
* group ``sensor_band_parameters``: ``wavelengths`` (bands, nm), ``fwhm`` (bands, nm),
  ``good_wavelengths`` (bands; 0 marks a band flagged bad, e.g. deep water-vapour absorption);
* group ``location``: ``glt_x`` and ``glt_y`` (ortho_y, ortho_x) — 1-based crosstrack and
  downtrack indices of the instrument pixel that fills each cell of the north-up grid, 0 where no
  pixel does — and ``lat``/``lon`` (downtrack, crosstrack) of each instrument pixel;
* root attribute ``geotransform``: the GDAL geotransform (6 numbers) of the GLT grid
  (x = lon, y = lat in EPSG:4326).

:func:`sample_emit` maps each (lon, lat) to a GLT cell through the inverse geotransform, looks up
``glt_x``/``glt_y`` and returns ``reflectance[glt_y − 1, glt_x − 1, :]``. Negative GLT entries
(used by some processing chains for pixels filled by nearest neighbour) are read by their absolute
value. Points outside the grid, on a GLT cell without data, or on fill values get NaN.
Files are read with h5netcdf (the product is NetCDF4/HDF5), only the rows that are needed.

The granule's L2A MASK file (``EMIT_L2A_MASK_001_*.nc``) shares the reflectance file's instrument
geometry: :func:`read_emit_mask` reads its flag bands at the same pixels and
:func:`emit_mask_reasons` says which spectra to drop (Aggregate flag; cloud, cirrus, dilated
cloud when there is none).

Spectra tables (:func:`write_spectra_table`, :func:`read_spectra_table`) hold one spectrum per
row: meta columns, then one column per band named ``R{nm:04d}``; what
``cropglobe download --collection EMITL2ARFL_001 --points …`` writes
(:mod:`cropglobe.io.emit_stac`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cropglobe.errors import DataFormatError, MissingFileError

__all__ = [
    "EMIT_MASK_BANDS",
    "SPECTRA_FORMAT",
    "EmitScene",
    "Spectra",
    "emit_mask_reasons",
    "read_emit",
    "read_emit_mask",
    "read_emit_points",
    "read_spectra_table",
    "sample_emit",
    "spectra_frame",
    "wavelength_names",
    "write_spectra_table",
]

logger = logging.getLogger(__name__)

#: Fill value of EMIT L2A reflectance.
EMIT_FILL_VALUE = -9999.0


@dataclass
class Spectra:
    """Reflectance spectra of N samples (the hyperspectral counterpart of a SeriesSet).

    Attributes:
        values: float32 (N, B) reflectance (unitless, 0…1 for EMIT); NaN = no data.
        wavelengths: float64 (B,) band centres in nanometres, increasing.
        fwhm: float64 (B,) band widths (full width at half maximum, nm), or None.
        good: bool (B,) the product's good-band flags (True = usable).
        meta: one row per sample (``lon``, ``lat``, ``downtrack``, ``crosstrack`` …).
        attrs: JSON-ready facts (``source`` path, acquisition time …).
    """

    values: NDArray[np.float32]
    wavelengths: NDArray[np.float64]
    fwhm: NDArray[np.float64] | None = None
    good: NDArray[np.bool_] | None = None
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float32)
        if v.ndim != 2:
            raise DataFormatError(f"Spectra values must be (samples, bands), got shape {v.shape}")
        self.values = v
        self.wavelengths = np.asarray(self.wavelengths, dtype=np.float64).reshape(-1)
        b = v.shape[1]
        if self.wavelengths.size != b:
            raise DataFormatError(
                f"Spectra has {b} bands but {self.wavelengths.size} wavelengths; give one per band"
            )
        if self.fwhm is not None:
            self.fwhm = np.asarray(self.fwhm, dtype=np.float64).reshape(-1)
            if self.fwhm.size != b:
                raise DataFormatError(f"Spectra fwhm has {self.fwhm.size} values for {b} bands")
        self.good = (
            np.ones(b, dtype=bool) if self.good is None else np.asarray(self.good, dtype=bool)
        )
        if self.good.shape != (b,):
            raise DataFormatError(
                f"Spectra good flags have shape {self.good.shape}, expected ({b},)"
            )
        if len(self.meta.columns) == 0:
            self.meta = pd.DataFrame(index=range(v.shape[0]))
        if len(self.meta) != v.shape[0]:
            raise DataFormatError(
                f"Spectra meta has {len(self.meta)} rows for {v.shape[0]} samples"
            )
        self.meta = self.meta.reset_index(drop=True)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_bands(self) -> int:
        """B."""
        return int(self.values.shape[1])

    def band_names(self) -> list[str]:
        """``R{nm:04d}`` names of the bands (``R0552`` = band centred at ~552 nm)."""
        return wavelength_names(self.wavelengths)

    def subset(self, rows: ArrayLike) -> Spectra:
        """The spectra of ``rows``: a boolean mask (N,) or indices.

        Raises:
            DataFormatError: a boolean mask of another length.
        """
        idx = np.asarray(rows)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise DataFormatError(
                    f"row mask has shape {idx.shape}, expected ({len(self)},) for these spectra"
                )
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        return Spectra(
            self.values[idx],
            self.wavelengths,
            self.fwhm,
            self.good,
            self.meta.iloc[idx].reset_index(drop=True),
            dict(self.attrs),
        )

    def with_bands(
        self, mask: NDArray[np.bool_], values: NDArray[np.float32] | None = None
    ) -> Spectra:
        """A copy with the bands in ``mask`` (optionally new values (N, mask.sum()))."""
        return Spectra(
            self.values[:, mask] if values is None else values,
            self.wavelengths[mask],
            None if self.fwhm is None else self.fwhm[mask],
            None if self.good is None else self.good[mask],
            self.meta,
            dict(self.attrs),
        )


def wavelength_names(wavelengths: ArrayLike) -> list[str]:
    """``R{nm:04d}`` band names from wavelengths in nm (rounded to the nanometre)."""
    return [f"R{round(float(w)):04d}" for w in np.asarray(wavelengths).reshape(-1)]


@dataclass
class EmitScene:
    """Metadata and geolocation of one EMIT L2A reflectance file (reflectance stays on disk).

    Attributes:
        path: the NetCDF file.
        wavelengths, fwhm: float64 (B,) nm.
        good: bool (B,) good-band flags.
        glt_x, glt_y: int32 (H, W) 1-based crosstrack / downtrack indices (0 = no data).
        geotransform: the GLT grid's GDAL geotransform (6 floats).
        shape: (downtrack, crosstrack, bands) of ``reflectance``.
        fill_value: reflectance fill value.
        attrs: the file's root attributes that are plain numbers or strings.
    """

    path: Path
    wavelengths: NDArray[np.float64]
    fwhm: NDArray[np.float64]
    good: NDArray[np.bool_]
    glt_x: NDArray[np.int32]
    glt_y: NDArray[np.int32]
    geotransform: tuple[float, ...]
    shape: tuple[int, int, int]
    fill_value: float = EMIT_FILL_VALUE
    attrs: dict[str, Any] = field(default_factory=dict)

    def pixel_of(
        self, lon: ArrayLike, lat: ArrayLike
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Instrument (downtrack, crosstrack) 0-based indices of points; −1 where no pixel.

        Args:
            lon, lat: (N,) longitudes and latitudes in degrees (EPSG:4326).

        Returns:
            ``(downtrack, crosstrack)`` int64 arrays (N,).
        """
        x = np.asarray(lon, dtype=np.float64).reshape(-1)
        y = np.asarray(lat, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise DataFormatError(
                f"lon has {x.size} values but lat has {y.size}; give one per point"
            )
        g0, g1, g2, g3, g4, g5 = self.geotransform
        det = g1 * g5 - g2 * g4
        if det == 0:
            raise DataFormatError(
                f"{self.path}: geotransform {self.geotransform} is not invertible"
            )
        dx, dy = x - g0, y - g3
        col = np.floor((g5 * dx - g2 * dy) / det)
        row = np.floor((-g4 * dx + g1 * dy) / det)
        h, w = self.glt_x.shape
        inside = (
            np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        )
        r = np.where(inside, row, 0).astype(np.int64)
        c = np.where(inside, col, 0).astype(np.int64)
        gx = np.abs(self.glt_x[r, c].astype(np.int64))
        gy = np.abs(self.glt_y[r, c].astype(np.int64))
        ok = inside & (gx > 0) & (gy > 0) & (gx <= self.shape[1]) & (gy <= self.shape[0])
        return np.where(ok, gy - 1, -1), np.where(ok, gx - 1, -1)


def _open(path: str | os.PathLike[str], what: str = "an EMIT L2A reflectance NetCDF (.nc)") -> Any:
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{p}: no such file; expected {what}")
    try:
        import h5netcdf

        return h5netcdf.File(p, "r")
    except ImportError as exc:
        raise DataFormatError(
            f"{p}: reading EMIT NetCDF needs h5netcdf and h5py ({exc}); install them with "
            "'pip install h5netcdf h5py'"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataFormatError(
            f"{p}: cannot be opened as NetCDF4/HDF5 ({exc}); expected {what}"
        ) from None


def _get(node: Any, name: str, path: Path, where: str) -> Any:
    try:
        return node[name]
    except KeyError:
        raise DataFormatError(
            f"{path}: no {where}{name!r}; expected the EMIT L2A layout (reflectance, "
            "sensor_band_parameters/{wavelengths,fwhm,good_wavelengths}, location/{glt_x,glt_y})"
        ) from None


def _scene(f: Any, path: Path) -> EmitScene:
    refl = _get(f, "reflectance", path, "variable ")
    if len(refl.shape) != 3:
        raise DataFormatError(
            f"{path}: reflectance has shape {refl.shape}, expected (downtrack, crosstrack, bands)"
        )
    sbp = _get(f.groups, "sensor_band_parameters", path, "group ")
    loc = _get(f.groups, "location", path, "group ")
    wl = np.asarray(_get(sbp, "wavelengths", path, "variable sensor_band_parameters/")[:], float)
    fwhm = np.asarray(_get(sbp, "fwhm", path, "variable sensor_band_parameters/")[:], float)
    good = np.asarray(_get(sbp, "good_wavelengths", path, "variable sensor_band_parameters/")[:])
    glt_x = np.asarray(_get(loc, "glt_x", path, "variable location/")[:])
    glt_y = np.asarray(_get(loc, "glt_y", path, "variable location/")[:])
    shape = (int(refl.shape[0]), int(refl.shape[1]), int(refl.shape[2]))
    if not (wl.size == fwhm.size == good.size == shape[2]):
        raise DataFormatError(
            f"{path}: {shape[2]} reflectance bands but {wl.size} wavelengths, {fwhm.size} fwhm and "
            f"{good.size} good_wavelengths; the file is inconsistent"
        )
    if glt_x.shape != glt_y.shape or glt_x.ndim != 2:
        raise DataFormatError(
            f"{path}: glt_x {glt_x.shape} and glt_y {glt_y.shape} must be 2-D and of one shape"
        )
    gt = f.attrs.get("geotransform")
    if gt is None or np.asarray(gt).size != 6:
        raise DataFormatError(
            f"{path}: root attribute 'geotransform' (6 numbers, GDAL order) is missing or has "
            f"{None if gt is None else np.asarray(gt).size} values; it is needed to use the GLT"
        )
    fill = refl.attrs.get("_FillValue", EMIT_FILL_VALUE)
    attrs = {
        str(k): (v.item() if isinstance(v, np.generic) else v)
        for k, v in f.attrs.items()
        if isinstance(v, str | int | float | np.generic)
    }
    return EmitScene(
        path,
        wl,
        fwhm,
        good.astype(bool),
        np.nan_to_num(glt_x, nan=0).astype(np.int32),
        np.nan_to_num(glt_y, nan=0).astype(np.int32),
        tuple(float(v) for v in np.asarray(gt).reshape(-1)),
        shape,
        float(np.asarray(fill).reshape(-1)[0]),
        attrs,
    )


def read_emit(path: str | os.PathLike[str]) -> EmitScene:
    """Read the band parameters, GLT and geotransform of an EMIT L2A reflectance file.

    Raises:
        MissingFileError: no such file.
        DataFormatError: not NetCDF4, or not the EMIT L2A layout (the message names what lacks).
    """
    with _open(path) as f:
        return _scene(f, Path(path))


def _read_pixels(
    f: Any, down: NDArray[np.int64], cross: NDArray[np.int64], n_bands: int, fill: float
) -> NDArray[np.float32]:
    out = np.full((down.size, n_bands), np.nan, dtype=np.float32)
    refl = f["reflectance"]
    ok = np.flatnonzero(down >= 0)
    for row in np.unique(down[ok]):  # one contiguous read per needed downtrack row
        sel = ok[down[ok] == row]
        c0, c1 = int(cross[sel].min()), int(cross[sel].max())
        block = np.asarray(refl[int(row), c0 : c1 + 1, :], dtype=np.float32)
        out[sel] = block[cross[sel] - c0]
    bad = (out == np.float32(fill)) | (out <= -9990)
    out[bad] = np.nan
    return out


def sample_emit(
    path: str | os.PathLike[str], lon: ArrayLike, lat: ArrayLike
) -> NDArray[np.float32]:
    """Reflectance spectra at points, through the file's geolocation lookup table.

    Args:
        path: EMIT L2A RFL NetCDF file.
        lon, lat: (N,) point coordinates in degrees (EPSG:4326).

    Returns:
        float32 (N, B) reflectance (all B bands, in file order); NaN rows for points outside the
        scene or on cells without data, NaN entries for fill values.
    """
    return read_emit_points(path, lon, lat).values


def read_emit_points(path: str | os.PathLike[str], lon: ArrayLike, lat: ArrayLike) -> Spectra:
    """Like :func:`sample_emit`, with wavelengths, fwhm, good-band flags and per-point meta.

    Returns:
        :class:`Spectra` whose meta has ``lon``, ``lat``, ``downtrack``, ``crosstrack`` (−1 where
        the point has no pixel).
    """
    p = Path(path)
    with _open(p) as f:
        scene = _scene(f, p)
        down, cross = scene.pixel_of(lon, lat)
        values = _read_pixels(f, down, cross, scene.shape[2], scene.fill_value)
    missing = int((down < 0).sum())
    if missing:
        logger.info("%s: %d of %d points fall outside the scene's data", p, missing, down.size)
    meta = pd.DataFrame(
        {
            "lon": np.asarray(lon, dtype=np.float64).reshape(-1),
            "lat": np.asarray(lat, dtype=np.float64).reshape(-1),
            "downtrack": down,
            "crosstrack": cross,
        }
    )
    attrs = {
        "source": str(p),
        **{k: scene.attrs[k] for k in ("time_coverage_start",) if k in scene.attrs},
    }
    return Spectra(values, scene.wavelengths, scene.fwhm, scene.good, meta, attrs)


# ---------------------------------------------------------------------------- L2A masks
#: the mask bands of EMIT L2A MASK files (EMITL2ARFL version 001), used when a file does not
#: name them in ``sensor_band_parameters/mask_bands``
EMIT_MASK_BANDS: tuple[str, ...] = (
    "Cloud flag", "Cirrus flag", "Water flag", "Spacecraft Flag", "Dilated Cloud Flag",
    "AOD550", "H2O (g cm-2)", "Aggregate Flag",
)  # fmt: skip

#: flags that drop a spectrum when the mask has no aggregate flag
MASK_FLAGS_WITHOUT_AGGREGATE: tuple[str, ...] = ("cloud", "cirrus", "dilated cloud")

#: the flags a dropped spectrum is reported under, in this order (the first one set)
_REASONS: tuple[str, ...] = ("cloud", "cirrus", "dilated cloud", "spacecraft", "water")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_emit_mask(
    path: str | os.PathLike[str], downtrack: ArrayLike, crosstrack: ArrayLike
) -> pd.DataFrame:
    """The mask bands of an EMIT L2A MASK file at instrument pixels.

    The MASK file of a granule shares its reflectance file's instrument geometry: variable
    ``mask`` (downtrack, crosstrack, bands), float32, band names in
    ``sensor_band_parameters/mask_bands`` (version 001: Cloud flag, Cirrus flag, Water flag,
    Spacecraft Flag, Dilated Cloud Flag, AOD550, H2O (g cm-2), Aggregate Flag; flags are 0/1).

    Args:
        path: the ``EMIT_L2A_MASK_*.nc`` file.
        downtrack, crosstrack: (N,) 0-based instrument pixel indices, −1 where a point has no
            pixel (the ``downtrack``/``crosstrack`` meta of :func:`read_emit_points`).

    Returns:
        DataFrame with N rows and one float64 column per mask band (the file's names); NaN for
        points without a pixel and for fill values.

    Raises:
        MissingFileError, DataFormatError: no file, or not the MASK layout.
    """
    p = Path(path)
    down = np.asarray(downtrack, dtype=np.int64).reshape(-1)
    cross = np.asarray(crosstrack, dtype=np.int64).reshape(-1)
    with _open(p, "an EMIT L2A mask NetCDF (EMIT_L2A_MASK_*.nc)") as f:
        try:
            var = f["mask"]
        except KeyError:
            raise DataFormatError(
                f"{p}: no variable 'mask'; expected an EMIT L2A MASK file (mask (downtrack, "
                "crosstrack, bands), sensor_band_parameters/mask_bands)"
            ) from None
        if len(var.shape) != 3:
            raise DataFormatError(
                f"{p}: mask has shape {var.shape}, expected (downtrack, crosstrack, bands)"
            )
        n_down, n_cross, n_bands = (int(v) for v in var.shape)
        names: list[str] | None = None
        try:
            names = [_text(v).strip() for v in f.groups["sensor_band_parameters"]["mask_bands"][:]]
        except KeyError:
            names = None
        if names is None or len(names) != n_bands:
            if n_bands != len(EMIT_MASK_BANDS):
                raise DataFormatError(
                    f"{p}: the mask's {n_bands} bands are not named (sensor_band_parameters/"
                    "mask_bands) and are not the 8 bands of version 001; cannot tell the "
                    "cloud flags apart"
                )
            logger.warning("%s: mask bands not named; read as %s", p, list(EMIT_MASK_BANDS))
            names = list(EMIT_MASK_BANDS)
        if ((down >= n_down) | (cross >= n_cross)).any():
            raise DataFormatError(
                f"{p}: mask is {n_down} x {n_cross} pixels, smaller than its reflectance file; "
                "give the MASK file of the same granule"
            )
        fill = float(np.asarray(var.attrs.get("_FillValue", EMIT_FILL_VALUE)).reshape(-1)[0])
        out = np.full((down.size, n_bands), np.nan, dtype=np.float64)
        ok = np.flatnonzero((down >= 0) & (cross >= 0))
        for row in np.unique(down[ok]):  # one contiguous read per needed downtrack row
            sel = ok[down[ok] == row]
            c0, c1 = int(cross[sel].min()), int(cross[sel].max())
            block = np.asarray(var[int(row), c0 : c1 + 1, :], dtype=np.float64)
            out[sel] = block[cross[sel] - c0]
    out[(out == fill) | (out <= -9990)] = np.nan
    return pd.DataFrame(out, columns=names)


def _flag_column(columns: list[str], word: str) -> str | None:
    """The mask column of flag ``word`` (``"cloud"`` is not ``"dilated cloud"``)."""
    for col in columns:
        low = " ".join(col.lower().replace("_", " ").split())
        if "flag" not in low or word not in low:
            continue
        if word == "cloud" and "dilated" in low:
            continue
        return col
    return None


def emit_mask_reasons(mask: pd.DataFrame) -> NDArray[np.object_]:
    """Why each spectrum is masked out: None where it is kept, else the flag's name.

    A spectrum is dropped where the Aggregate flag is set (> 0.5); masks without one drop it
    where the cloud, cirrus or dilated-cloud flag is set. The reason given is the first flag
    set among cloud, cirrus, dilated cloud, spacecraft, water, else ``"aggregate"``.

    Args:
        mask: :func:`read_emit_mask`'s table.

    Returns:
        object array (N,) of None or a reason (``"cloud"``, ``"cirrus"`` …).
    """
    cols = [str(c) for c in mask.columns]

    def is_set(word: str) -> NDArray[np.bool_]:
        col = _flag_column(cols, word)
        if col is None:
            return np.zeros(len(mask), dtype=bool)
        return np.nan_to_num(mask[col].to_numpy(dtype=np.float64), nan=0.0) > 0.5

    agg_col = _flag_column(cols, "aggregate")
    if agg_col is not None:
        drop = is_set("aggregate")
    else:
        drop = np.zeros(len(mask), dtype=bool)
        for word in MASK_FLAGS_WITHOUT_AGGREGATE:
            drop |= is_set(word)
    out = np.full(len(mask), None, dtype=object)
    for word in reversed(_REASONS):  # the first flag set wins
        out[drop & is_set(word)] = word
    out[drop & (out == None)] = "aggregate"  # noqa: E711 - elementwise
    return out


# ---------------------------------------------------------------------------- spectra tables
#: ``format`` of the parameters a spectra table stores (Parquet key-value metadata)
SPECTRA_FORMAT = "cropglobe.spectra"

_BAND_COLUMN = re.compile(r"R(\d{4})")


def spectra_frame(spectra: Spectra) -> pd.DataFrame:
    """``spectra`` as one table: its meta columns, then one float32 column per band
    (``R0381`` …, :func:`wavelength_names`).

    Raises:
        DataFormatError: two bands that round to one nanometre, or a meta column named like a
            band.
    """
    names = spectra.band_names()
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataFormatError(
            f"bands {', '.join(twice)} occur twice (wavelengths that round to one nanometre); "
            "a spectra table names each band by its wavelength in nm"
        )
    clash = [c for c in spectra.meta.columns if _BAND_COLUMN.fullmatch(str(c))]
    if clash:
        raise DataFormatError(
            f"meta column {clash[0]!r} is named like a band (R####); rename it before writing"
        )
    bands = pd.DataFrame(spectra.values.astype(np.float32, copy=False), columns=names)
    return pd.concat([spectra.meta.reset_index(drop=True), bands], axis=1)


def write_spectra_table(spectra: Spectra, path: str | os.PathLike[str]) -> Path:
    """Write spectra as a table, one row per spectrum (``.parquet``, ``.csv`` or ``.csv.gz``;
    atomic).

    Columns: the meta columns (``sample_id``, ``label`` …, ``lon``, ``lat``, ``date``,
    ``granule`` for :func:`cropglobe.io.emit_stac.extract_emit_points`), then one float32
    column per band named ``R{nm:04d}``, NaN for no data. Parquet files also store the exact
    wavelengths, fwhm, good-band flags and attrs (key-value metadata ``cropglobe``), which
    :func:`read_spectra_table` restores; CSV files keep the rounded wavelengths of the names.

    Returns:
        The written path.
    """
    from cropglobe.io.tables import _write_table

    frame = spectra_frame(spectra)
    meta = {
        "format": SPECTRA_FORMAT,
        "version": 1,
        "wavelengths": spectra.wavelengths.tolist(),
        "fwhm": None if spectra.fwhm is None else spectra.fwhm.tolist(),
        "good": None if spectra.good is None else spectra.good.astype(bool).tolist(),
        "attrs": spectra.attrs,
    }
    return _write_table(frame, Path(path), meta)


def read_spectra_table(path: str | os.PathLike[str]) -> Spectra:
    """Read a spectra table (:func:`write_spectra_table`, ``cropglobe download`` of an EMIT
    collection with ``--points``).

    The band columns are those named ``R####`` (band centre in nm); wavelengths are parsed from
    the names, or taken exactly from the Parquet metadata with fwhm and good-band flags when it
    is there (else fwhm is None and every band counts as good: :class:`~cropglobe.features.
    GoodBands` then drops the water-vapour ranges only). Bands are sorted by wavelength.

    Returns:
        :class:`Spectra`: values float32 (N, B), meta = every other column (``date`` as
        datetime64), attrs as stored plus ``source``.

    Raises:
        MissingFileError: no such file.
        DataFormatError: unreadable, no ``R####`` columns, or non-numeric band values.
    """
    from cropglobe.io.tables import _read_table, _require_file, _stored_meta

    p = _require_file(path, "a spectra table (.parquet or .csv with R#### band columns)")
    df, kv = _read_table(p)
    df.columns = [str(c) for c in df.columns]
    bands = [c for c in df.columns if _BAND_COLUMN.fullmatch(c)]
    if not bands:
        raise DataFormatError(
            f"{p}: no band columns; expected a spectra table with one column per band named "
            "R#### (centre in nm, e.g. R0552), as 'cropglobe download --collection "
            f"EMITL2ARFL_001 --points …' writes; found {list(df.columns)[:12]}"
        )
    wl = np.array([float(c[1:]) for c in bands])
    stored = _stored_meta(kv)
    fwhm: NDArray[np.float64] | None = None
    good: NDArray[np.bool_] | None = None
    attrs: dict[str, Any] = {}
    if stored.get("format") == SPECTRA_FORMAT:
        exact = np.asarray(stored.get("wavelengths") or [], dtype=np.float64)
        if exact.size and wavelength_names(exact) == bands:
            wl = exact
            if stored.get("fwhm") is not None and len(stored["fwhm"]) == len(bands):
                fwhm = np.asarray(stored["fwhm"], dtype=np.float64)
            if stored.get("good") is not None and len(stored["good"]) == len(bands):
                good = np.asarray(stored["good"], dtype=bool)
        else:
            logger.warning(
                "%s: stored wavelengths do not match the band columns; the names are used", p
            )
        attrs = dict(stored.get("attrs") or {})
    try:
        values = df[bands].apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{p}: band columns hold non-numbers ({exc})") from None
    order = np.argsort(wl, kind="stable")
    meta = df.drop(columns=bands)
    if "date" in meta.columns and not pd.api.types.is_datetime64_any_dtype(meta["date"]):
        try:
            meta["date"] = pd.to_datetime(meta["date"])
        except (ValueError, TypeError):
            logger.warning("%s: column 'date' holds values that are no dates; kept as text", p)
    if "sample_id" in meta.columns:
        meta["sample_id"] = meta["sample_id"].astype(str)
    attrs["source"] = str(p)
    return Spectra(
        values[:, order],
        wl[order],
        None if fwhm is None else fwhm[order],
        None if good is None else good[order],
        meta,
        attrs,
    )
