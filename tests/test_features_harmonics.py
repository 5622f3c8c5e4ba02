"""Harmonic features: exact recovery, parity with per-pixel lstsq, gaps, mismatch refusal."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.base import clone

from cropglobe.errors import BandError, DataFormatError, GridError
from cropglobe.features import Harmonics, evaluate_harmonics, fit_harmonics, harmonic_design
from cropglobe.series import SeriesSet, TimeGrid

GRID = TimeGrid.cropglobe()
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def _lstsq(values: np.ndarray, t: np.ndarray, n: int, omega: float) -> np.ndarray:
    a = harmonic_design(t, n, omega)
    out = np.full((*values.shape[:-1], a.shape[1]), np.nan)
    for idx in np.ndindex(values.shape[:-1]):
        v = ~np.isnan(values[idx])
        if v.sum() >= a.shape[1]:
            out[idx] = np.linalg.lstsq(a[v], values[idx][v].astype(np.float64), rcond=None)[0]
    return out


def test_recovers_known_coefficients_with_gaps() -> None:
    rng = np.random.default_rng(0)
    t = GRID.centers / 365.0
    n, c, omega = 200, 3, 1.0
    true = rng.normal(size=(n, c, 7)) * np.array([1000, 300, 300, 100, 100, 50, 50])
    y = evaluate_harmonics(true, t, omega)
    y[rng.random(y.shape) < 0.3] = np.nan  # 30 % gaps, independent per band
    y[:50] = np.where(np.isnan(y[:50, :1]), np.nan, y[:50])  # and shared masks
    res = fit_harmonics(y, t, 3, omega)
    assert res.determined.all()
    np.testing.assert_allclose(res.coef, true, rtol=1e-4, atol=1e-4 * np.abs(true).max())
    assert np.abs(res.coef - true).max() / np.abs(true).max() < 1e-8


def test_recovers_with_noise_approximately() -> None:
    rng = np.random.default_rng(1)
    t = GRID.centers / 365.0
    true = np.array([[[0.4, -0.2, 0.1, 0.05, -0.03, 0.0, 0.01]]])
    y = evaluate_harmonics(true, t) + rng.normal(0, 0.01, size=(1, 1, 73))
    y[..., rng.random(73) < 0.3] = np.nan
    res = fit_harmonics(y, t, 3, 1.0, return_rmse=True)
    np.testing.assert_allclose(res.coef, true, atol=0.01)
    assert res.rmse is not None and 0.005 < res.rmse[0, 0] < 0.015


@pytest.mark.parametrize(("n", "omega", "gap"), [(3, 1.0, 0.3), (2, 1.5, 0.5), (1, 2.0, 0.7)])
def test_matches_per_pixel_lstsq(n: int, omega: float, gap: float) -> None:
    rng = np.random.default_rng(2)
    t = GRID.centers[24:67] / 365.0
    y = (rng.normal(size=(300, 4, t.size)) * 1000 + 2000).astype(np.float32)
    y[rng.random(y.shape) < gap] = np.nan
    y[:100] = np.where(np.isnan(y[:100, :1]), np.nan, y[:100])
    ref = _lstsq(y, t, n, omega)
    got = fit_harmonics(y, t, n, omega, chunk_size=64).coef
    assert np.array_equal(np.isnan(ref), np.isnan(got))
    ok = ~np.isnan(ref[..., 0])
    assert ok.mean() > 0.3
    scale = np.abs(ref[ok]).max(axis=-1, keepdims=True)
    rel = np.abs(got[ok] - ref[ok]) / scale
    assert rel.max() < 1e-6


def test_chunking_and_threads_do_not_change_results() -> None:
    rng = np.random.default_rng(3)
    t = GRID.centers / 365.0
    y = rng.normal(size=(500, 2, 73)).astype(np.float32)
    y[rng.random(y.shape) < 0.4] = np.nan
    a = fit_harmonics(y, t, chunk_size=500).coef
    b = fit_harmonics(y, t, chunk_size=37, n_jobs=2).coef
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _series(n: int = 40, seed: int = 0) -> SeriesSet:
    rng = np.random.default_rng(seed)
    v = (rng.random((n, len(BANDS), 73)) * 3000 + 100).astype(np.float32)
    v[rng.random(v.shape) < 0.2] = np.nan
    return SeriesSet(v, BANDS, GRID, np.zeros(n, np.int64), ("corn",))


def test_transformer_shapes_names_and_underdetermined(caplog: pytest.LogCaptureFixture) -> None:
    ss = _series()
    ss.values[0, 2, :] = np.nan  # B04 empty in pixel 0
    ss.values[1, :, 30:] = np.nan  # pixel 1: 6 steps in the window
    h = Harmonics(bands=("B04", "B08"), indices=("NDVI",), add_rmse=True)
    assert h.fit(ss) is h
    with caplog.at_level(logging.WARNING, logger="cropglobe.features.harmonics"):
        x = h.transform(ss)
    names = list(h.get_feature_names_out())
    assert x.shape == (40, 3 * 8) and x.dtype == np.float32
    assert names[:8] == ["B04_const", "B04_h1_cos", "B04_h1_sin", "B04_h2_cos", "B04_h2_sin",
                         "B04_h3_cos", "B04_h3_sin", "B04_rmse"]  # fmt: skip
    assert names[-8] == "NDVI_const"
    assert h.n_underdetermined_ == 2 and h.underdetermined_[:2].all()
    assert np.isnan(x[0, :8]).all() and not np.isnan(x[0, 8:16]).any()
    assert np.isnan(x[1]).all() and not np.isnan(x[2:]).any()
    assert "2 of 40 pixels" in caplog.text
    # which series: pixel 0 lacks B04 (so NDVI), pixel 1 all three
    assert "(5 of 120 pixel-series; most in B04 2, NDVI 2, B08 1)" in caplog.text
    with pytest.raises(DataFormatError, match="policy='raise'"):
        Harmonics(policy="raise").fit(ss).transform(ss)


def test_transformer_matches_function_and_array_input() -> None:
    ss = _series()
    h = Harmonics(dtype="float64").fit(ss)
    direct = fit_harmonics(ss.values[:, :, 24:67], GRID.centers[24:67] / 365).coef
    np.testing.assert_allclose(h.transform(ss), direct.reshape(40, -1))
    arr = Harmonics(dtype="float64", input_bands=BANDS, input_grid=GRID)
    np.testing.assert_allclose(arr.fit_transform(ss.values), direct.reshape(40, -1))
    clone(h).fit(ss)  # a real scikit-learn estimator


def test_refuses_other_bands_or_grid() -> None:
    ss = _series()
    h = Harmonics().fit(ss)
    with pytest.raises(BandError, match="fitted on bands"):
        h.transform(ss.select_bands(list(reversed(BANDS))))
    other = SeriesSet(
        ss.values[:, :, :72], BANDS, TimeGrid.regular(5, 1, 360), ss.labels, ss.classes
    )
    with pytest.raises(GridError, match="fitted on the grid"):
        h.transform(other)
    with pytest.raises(DataFormatError, match="input_bands"):
        Harmonics().fit(ss.values)


def test_parameter_errors() -> None:
    ss = _series()
    with pytest.raises(GridError, match="widen the window"):
        Harmonics(n_harmonics=3, window=(121, 150)).fit(ss)
    with pytest.raises(DataFormatError, match="min_obs"):
        Harmonics(min_obs=3).fit(ss)
    with pytest.raises(DataFormatError, match="policy"):
        Harmonics(policy="drop").fit(ss)
    with pytest.raises(BandError, match="B05"):
        Harmonics(bands=("B04",), indices=("NDRE",)).fit(ss.select_bands(["B04", "B08"]))
