"""Spectral indices by band name: hand-computed values, NaN safety, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cropglobe.errors import BandError
from cropglobe.features import SpectralIndices, compute_index
from cropglobe.series import SeriesSet, TimeGrid

BANDS = ("B02", "B03", "B04", "B05", "B08", "B11", "B12")
# reflectance x 10,000: blue, green, red, red-edge 1, nir, swir1, swir2
PIX = np.array([500.0, 800.0, 600.0, 1200.0, 3000.0, 2000.0, 1000.0])


def _ss() -> SeriesSet:
    v = np.stack([PIX, PIX * 0.5], axis=1)[None].astype(np.float32)  # (1, 7, 2)
    v = np.concatenate([v, v[:, ::-1]], axis=0)  # (2, 7, 2): band order is arbitrary per test
    return SeriesSet(v[:, :, :], BANDS, TimeGrid.from_starts([1, 100]))


def test_hand_computed_values() -> None:
    b, g, r, re1, n, s1, s2 = PIX / 10_000
    expected = {
        "NDVI": (n - r) / (n + r),
        "EVI": 2.5 * (n - r) / (n + 6 * r - 7.5 * b + 1),
        "NDWI": (g - n) / (g + n),
        "NDRE": (n - re1) / (n + re1),
        "GCVI": n / g - 1,
        "NBR": (n - s2) / (n + s2),
        "NDMI": (n - s1) / (n + s1),
        "SAVI": 1.5 * (n - r) / (n + r + 0.5),
    }
    v = PIX[None, :, None].astype(np.float32)
    for name, value in expected.items():
        got = compute_index(v, BANDS, name)
        assert got.shape == (1, 1)
        np.testing.assert_allclose(got[0, 0], value, rtol=1e-6, err_msg=name)


def test_by_name_not_position() -> None:
    order = np.array([4, 2, 0, 1, 3, 6, 5])
    v = PIX[order][None, :, None]
    got = compute_index(v, [BANDS[i] for i in order], "ndvi")
    np.testing.assert_allclose(got, compute_index(PIX[None, :, None], BANDS, "NDVI"))
    # other spellings of band names work too
    assert compute_index(
        np.array([[3000.0, 600.0]]), ["nir", "red"], "NDVI", band_axis=1
    ).shape == (1,)


def test_transformer_appends_and_is_nan_safe() -> None:
    ss = _ss()
    ss.values[0, 2, 0] = np.nan  # red missing at step 0
    ss.values[1, 4, 1] = 0.0
    ss.values[1, 2, 1] = 0.0  # nir + red = 0
    t = SpectralIndices().fit(ss)
    out = t.transform(ss)
    assert isinstance(out, SeriesSet)
    assert out.bands == (*BANDS, "NDVI", "EVI", "NDWI", "NDRE", "GCVI", "NBR")
    ndvi = out.values[:, 7, :]
    assert np.isnan(ndvi[0, 0]) and np.isnan(ndvi[1, 1]) and np.isfinite(ndvi[0, 1])
    only = SpectralIndices(indices=("NDVI",), append=False).fit(ss)
    assert list(only.get_feature_names_out()) == ["NDVI"]
    arr = SpectralIndices(("NDVI",), append=False, input_bands=BANDS, input_grid=ss.grid)
    np.testing.assert_array_equal(arr.fit_transform(ss.values), only.transform(ss).values)


def test_existing_index_band_is_used() -> None:
    ss = SeriesSet(np.full((2, 1, 3), 0.5, np.float32), ("NDVI",), TimeGrid.from_starts([1, 2, 3]))
    out = SpectralIndices(indices=("NDVI",)).fit_transform(ss)
    assert out.bands == ("NDVI",)


def test_missing_band_error_names_band_and_index() -> None:
    ss = _ss().select_bands(["B02", "B03", "B04", "B08"])
    with pytest.raises(BandError, match=r"index NBR needs band B12"):
        SpectralIndices(indices=("NDVI", "NBR")).fit(ss)
    with pytest.raises(BandError, match="unknown spectral index"):
        SpectralIndices(indices=("XYZ",)).fit(ss)
    t = SpectralIndices(indices=("NDVI",)).fit(_ss())
    with pytest.raises(BandError, match="fitted on bands"):
        t.transform(ss)


def test_feature_names_before_fit_is_not_fitted_error() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SpectralIndices().get_feature_names_out()
