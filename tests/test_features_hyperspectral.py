"""EMIT L2A reader (GLT sampling) and hyperspectral features, on NetCDF files built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from cropglobe.bands import S2_BANDS, S2_CATALOGUE
from cropglobe.errors import BandError, DataFormatError, MissingFileError
from cropglobe.features import GoodBands, SimulateS2, SpectralPCA, SpectralSmoother
from cropglobe.io.emit import Spectra, read_emit, read_emit_points, sample_emit

h5netcdf = pytest.importorskip("h5netcdf")

from emit_files import CROSS, DOWN, GT, WL, glt, lonlat, refl, write_emit  # noqa: E402


def test_glt_sampling_returns_the_right_pixel(tmp_path: Path) -> None:
    path = write_emit(tmp_path / "EMIT_L2A_RFL_001_test.nc")
    gx, gy = glt()
    pixels = refl()
    cells = [(0, 0), (3, 2), (7, 6), (2, 5), (6, 1)]
    lon, lat = zip(*(lonlat(r, c) for r, c in cells), strict=True)
    got = sample_emit(path, lon, lat)
    assert got.shape == (len(cells), WL.size) and got.dtype == np.float32
    for k, (r, c) in enumerate(cells):
        if gx[r, c] == 0:
            assert np.isnan(got[k]).all()
            continue
        expected = pixels[gy[r, c] - 1, gx[r, c] - 1]
        if expected[0] == -9999:
            assert np.isnan(got[k]).all()
        else:
            np.testing.assert_array_equal(got[k], expected)
    assert (gx[[c[0] for c in cells], [c[1] for c in cells]] > 0).sum() >= 3


def test_points_outside_and_metadata(tmp_path: Path) -> None:
    path = write_emit(tmp_path / "scene.nc")
    sp = read_emit_points(path, [9.0, lonlat(1, 1)[0]], [45.0, lonlat(1, 1)[1]])
    assert isinstance(sp, Spectra)
    assert np.isnan(sp.values[0]).all() and not np.isnan(sp.values[1]).any()
    assert list(sp.meta.columns) == ["lon", "lat", "downtrack", "crosstrack"]
    assert sp.meta.downtrack[0] == -1
    assert sp.good.sum() < WL.size and sp.attrs["time_coverage_start"].startswith("2023")
    scene = read_emit(path)
    assert scene.shape == (DOWN, CROSS, WL.size) and scene.geotransform == GT
    np.testing.assert_allclose(scene.fwhm, 8.5)


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        read_emit(tmp_path / "nope.nc")
    with pytest.raises(DataFormatError, match="'glt_x'"):
        read_emit(write_emit(tmp_path / "a.nc", drop="glt"))
    with pytest.raises(DataFormatError, match="'reflectance'"):
        read_emit(write_emit(tmp_path / "b.nc", drop="reflectance"))
    bad = tmp_path / "c.nc"
    bad.write_text("not netcdf")
    with pytest.raises(DataFormatError, match="NetCDF4"):
        read_emit(bad)


def _spectra(n: int = 30, seed: int = 0) -> Spectra:
    rng = np.random.default_rng(seed)
    base = 0.05 + 0.4 / (1 + np.exp(-(WL - 720) / 15))  # red edge
    vals = base[None] * rng.uniform(0.7, 1.3, (n, 1)) + rng.normal(0, 0.002, (n, WL.size))
    good = ~((WL > 1340) & (WL < 1450))
    return Spectra(vals.astype(np.float32), WL, np.full(WL.size, 8.5), good)


def test_good_bands_drop_water_vapour_and_flags() -> None:
    sp = _spectra()
    g = GoodBands().fit(sp)
    out = g.transform(sp)
    kept = out.wavelengths
    assert not ((kept >= 1340) & (kept <= 1450)).any()
    assert not ((kept >= 1800) & (kept <= 1970)).any()
    assert out.values.shape == (30, kept.size) and 200 < kept.size < 285
    assert g.get_feature_names_out()[0] == "R0381"
    arr = GoodBands(wavelengths=WL).fit(sp.values)
    assert arr.transform(sp.values).shape[1] >= kept.size  # no good flags given for arrays
    with pytest.raises(BandError, match="fitted on 285 bands"):
        g.transform(out)


def test_pipeline_smooth_pca() -> None:
    sp = _spectra()
    pipe = Pipeline([("good", GoodBands()), ("smooth", SpectralSmoother()),
                     ("pca", SpectralPCA(n_components=3))])  # fmt: skip
    x = pipe.fit_transform(sp)
    assert x.shape == (30, 3) and x.dtype == np.float32
    assert list(pipe.get_feature_names_out()) == ["pc01", "pc02", "pc03"]
    np.testing.assert_array_equal(pipe.transform(sp), x)  # deterministic
    smooth = SpectralSmoother().fit(sp).transform(sp)
    assert np.abs(smooth.values - sp.values).mean() < 0.002
    sp.values[0, 0] = np.nan
    with pytest.raises(DataFormatError, match="missing values"):
        SpectralPCA(2).fit(sp)


def test_simulated_s2_of_flat_spectrum_is_flat() -> None:
    flat = Spectra(np.full((2, WL.size), 0.3, np.float32), WL, np.full(WL.size, 8.5))
    sim = SimulateS2().fit(flat)
    out = sim.transform(flat)
    assert out.shape == (2, len(S2_BANDS))
    np.testing.assert_allclose(out, 0.3, rtol=1e-6)
    assert list(sim.get_feature_names_out()) == list(S2_BANDS)
    dn = SimulateS2(scale=10_000, wavelengths=WL).fit(flat.values)
    np.testing.assert_allclose(dn.transform(flat.values), 3000.0, rtol=1e-6)
    # after dropping water-vapour bands: B10 (cirrus, 1373 nm) has no coverage -> NaN
    good = GoodBands().fit_transform(flat)
    s = SimulateS2(bands=("B04", "B10", "B11")).fit(good).transform(good)
    assert np.isnan(s[:, 1]).all()
    np.testing.assert_allclose(s[:, [0, 2]], 0.3, rtol=1e-6)


def test_simulated_s2_follows_spectrum_shape() -> None:
    sp = _spectra(5)
    out = SimulateS2(bands=("B04", "B08")).fit(sp).transform(sp)
    assert (out[:, 1] > 3 * out[:, 0]).all()  # NIR plateau above red
    # a linear spectrum gives its value at the band centre (symmetric response)
    lin = Spectra((1e-4 * WL)[None].astype(np.float32), WL)
    got = SimulateS2(bands=("B03", "B8A")).fit(lin).transform(lin)[0]
    centres = [S2_CATALOGUE["B03"].center_nm, S2_CATALOGUE["B8A"].center_nm]
    np.testing.assert_allclose(got, 1e-4 * np.array(centres), rtol=1e-3)
