"""Tiny EMIT L2A files for the tests: reflectance (RFL) and mask (MASK) NetCDFs in the product
layout, small enough to build in tmp_path in milliseconds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np

WL = np.linspace(381.0, 2493.0, 285)  # EMIT: 285 bands, ~7.4 nm apart
GT = (10.0, 0.001, 0.0, 45.0, 0.0, -0.001)  # GLT grid: lon 10.000…, lat 45.000 downwards
DOWN, CROSS, OY, OX = 6, 5, 8, 7

#: the mask bands of an EMIT L2A MASK file (version 001)
MASK_BANDS = (
    "Cloud flag", "Cirrus flag", "Water flag", "Spacecraft Flag", "Dilated Cloud Flag",
    "AOD550", "H2O (g cm-2)", "Aggregate Flag",
)  # fmt: skip


def refl(offset: float = 0.0) -> np.ndarray:
    """Pixel (d, c) has spectrum 0.01 * (10 d + c) + 1e-5 * band index (+ offset); (5, 4) is
    a fill pixel."""
    d, c, b = np.meshgrid(np.arange(DOWN), np.arange(CROSS), np.arange(WL.size), indexing="ij")
    r = (0.01 * (10 * d + c) + 1e-5 * b + offset).astype(np.float32)
    r[5, 4, :] = -9999.0  # a fill pixel
    return r


def glt() -> tuple[np.ndarray, np.ndarray]:
    """GLT cell (row, col) -> instrument pixel; rotated like a real swath, with empty cells."""
    gx = np.zeros((OY, OX), np.int32)
    gy = np.zeros((OY, OX), np.int32)
    for row in range(OY):
        for col in range(OX):
            d, c = (row + col) % DOWN, (2 * row + col) % CROSS
            if (row + col) % 5 != 4:  # leave some cells without data
                gx[row, col], gy[row, col] = c + 1, d + 1  # 1-based
    return gx, gy


def lonlat(row: int, col: int, gt: tuple[float, ...] = GT) -> tuple[float, float]:
    """Centre of GLT cell (row, col) of a grid with geotransform ``gt``."""
    return gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]


def write_emit(
    path: Path,
    *,
    drop: str | None = None,
    gt: tuple[float, ...] = GT,
    offset: float = 0.0,
    when: str = "2023-07-01T10:00:00+0000",
) -> Path:
    """A small file in the EMIT L2A RFL product layout."""
    import h5netcdf

    good = np.ones(WL.size, np.int8)
    good[(WL > 1340) & (WL < 1450)] = 0
    gx, gy = glt()
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": DOWN, "crosstrack": CROSS, "bands": WL.size,
                        "ortho_y": OY, "ortho_x": OX}  # fmt: skip
        if drop != "reflectance":
            v = f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), "f4",
                                  fillvalue=np.float32(-9999))  # fmt: skip
            v[...] = refl(offset)
        f.attrs["geotransform"] = np.array(gt)
        f.attrs["time_coverage_start"] = when
        sbp = f.create_group("sensor_band_parameters")
        sbp.create_variable("wavelengths", ("bands",), "f4", data=WL.astype(np.float32))
        sbp.create_variable("fwhm", ("bands",), "f4", data=np.full(WL.size, 8.5, np.float32))
        sbp.create_variable("good_wavelengths", ("bands",), "i1", data=good)
        loc = f.create_group("location")
        if drop != "glt":
            loc.create_variable("glt_x", ("ortho_y", "ortho_x"), "i4", data=gx)
            loc.create_variable("glt_y", ("ortho_y", "ortho_x"), "i4", data=gy)
        loc.create_variable("lat", ("downtrack", "crosstrack"), "f8",
                            data=np.zeros((DOWN, CROSS)))  # fmt: skip
        loc.create_variable("lon", ("downtrack", "crosstrack"), "f8",
                            data=np.zeros((DOWN, CROSS)))  # fmt: skip
    return path


def write_emit_mask(
    path: Path,
    *,
    cloud: Iterable[tuple[int, int]] = (),
    cirrus: Iterable[tuple[int, int]] = (),
    aggregate: bool = True,
) -> Path:
    """A small file in the EMIT L2A MASK layout, clear but for the instrument pixels
    (downtrack, crosstrack) in ``cloud`` / ``cirrus`` (their Aggregate flag set too)."""
    import h5netcdf

    names = [n for n in MASK_BANDS if aggregate or n != "Aggregate Flag"]
    mask = np.zeros((DOWN, CROSS, len(names)), np.float32)
    mask[..., names.index("AOD550")] = 0.08
    mask[..., names.index("H2O (g cm-2)")] = 1.7
    for band, pixels in (("Cloud flag", cloud), ("Cirrus flag", cirrus)):
        for d, c in pixels:
            mask[d, c, names.index(band)] = 1.0
            if aggregate:
                mask[d, c, names.index("Aggregate Flag")] = 1.0
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": DOWN, "crosstrack": CROSS, "bands": len(names)}
        f.create_variable("mask", ("downtrack", "crosstrack", "bands"), "f4", data=mask,
                          fillvalue=np.float32(-9999))  # fmt: skip
        sbp = f.create_group("sensor_band_parameters")
        sbp.create_variable(
            "mask_bands", ("bands",), h5py.string_dtype(), data=np.array(names, dtype=object)
        )
    return path
