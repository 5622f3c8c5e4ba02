"""Median 1D/2D features: window, names, gap filling, mismatch refusal."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from cropglobe.composite import fill_gaps
from cropglobe.errors import BandError, GridError
from cropglobe.features import Median1D, Median2D, step_labels
from cropglobe.series import SeriesSet, TimeGrid

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def _ss(n: int = 5, grid: TimeGrid | None = None) -> SeriesSet:
    g = grid or TimeGrid.cropglobe()
    v = np.arange(n * len(BANDS) * g.n_steps, dtype=np.float32).reshape(n, len(BANDS), -1)
    return SeriesSet(v, BANDS, g)


def test_median1d_paper_window_names_and_order() -> None:
    ss = _ss()
    m = Median1D().fit(ss)
    x = m.transform(ss)
    assert x.shape == (5, 10 * 43) and x.dtype == np.float32
    np.testing.assert_array_equal(x, ss.values[:, :, 24:67].reshape(5, -1))
    names = m.get_feature_names_out()
    assert names[0] == "B02_t24_median" and names[42] == "B02_t66_median"
    assert names[43] == "B03_t24_median" and names[-1] == "B12_t66_median"
    assert list(Median1D(window="may-nov").fit(ss).get_feature_names_out()) == list(names)
    assert Median1D(window="full").fit_transform(ss).shape == (5, 730)
    clone(m)


def test_median_window_file_has_same_names() -> None:
    """The May–Nov release file (43 steps) gives the same column names as the full file."""
    grid = TimeGrid.cropglobe().window(121, 334)
    m = Median1D(window=None).fit(_ss(grid=grid))
    assert m.get_feature_names_out()[0] == "B02_t24_median"


def test_median2d_and_bands() -> None:
    ss = _ss()
    m = Median2D(bands=("B04", "B08")).fit(ss)
    x = m.transform(ss)
    assert x.shape == (5, 1, 2, 43)
    np.testing.assert_array_equal(x[:, 0, 1], ss.values[:, 6, 24:67])
    sub = m.transform_series(ss)
    assert sub.bands == ("B04", "B08") and sub.grid.n_steps == 43


def test_gap_filling_interpolates_and_holds_edges() -> None:
    v = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan] * 5], dtype=np.float32)
    out = fill_gaps(v, TimeGrid.regular(1, 1, 5))
    np.testing.assert_allclose(out[0], [1, 1, 2, 3, 3])
    assert np.isnan(out[1]).all()
    # irregular spacing uses the bin centres (1.5, 3.5, 7.5)
    out = fill_gaps(np.array([1.0, np.nan, 4.0]), TimeGrid((1, 3, 5, 11)))
    np.testing.assert_allclose(out, [1, 1 + 3 * 2 / 6, 4])


def test_median_gaps_filled_or_kept() -> None:
    ss = _ss()
    ss.values[0, 0, 30] = np.nan
    assert not np.isnan(Median1D().fit_transform(ss)).any()
    assert np.isnan(Median1D(fill="none").fit_transform(ss)).sum() == 1


def test_step_labels_monthly_and_16day() -> None:
    assert step_labels(TimeGrid.monthly())[:2] == ["m01", "m02"]
    cawa = TimeGrid.from_starts(list(range(1, 354, 16)), kind="16-day")
    assert step_labels(cawa)[:2] == ["t00", "t01"]
    assert step_labels(TimeGrid.monthly(anchor="07-01"))[0] == "d001"


def test_median_refuses_mismatch_and_bad_window() -> None:
    ss = _ss()
    m = Median1D().fit(ss)
    with pytest.raises(BandError):
        m.transform(ss.select_bands(BANDS[:-1]))
    with pytest.raises(GridError):
        m.transform(_ss(grid=TimeGrid.regular(5, 1, 360)))
    with pytest.raises(GridError, match="not a known window"):
        Median1D(window="summer").fit(ss)
    with pytest.raises(BandError, match="B09"):
        Median1D(bands=("B09",)).fit(ss)
    arr = Median1D(input_bands=BANDS, input_grid=TimeGrid.cropglobe())
    np.testing.assert_array_equal(arr.fit_transform(ss.values), m.transform(ss))


def test_series_pipeline_cross_validates_on_a_seriesset() -> None:
    """scikit-learn splits a SeriesSet as it splits arrays (X[rows, ...]), so a pipeline of a
    series transformer and a classifier runs in cross_val_score on the set itself."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    n = 24
    labels = np.repeat([0, 1], n // 2)
    v = rng.normal(0, 1, (n, 2, 73)).astype(np.float32) + labels[:, None, None] * 10
    ss = SeriesSet(v, ("B04", "B08"), TimeGrid.cropglobe(), labels, ("a", "b"))
    pipe = make_pipeline(Median1D(), RandomForestClassifier(n_estimators=5, random_state=0))
    scores = cross_val_score(pipe, ss, ss.labels, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7
