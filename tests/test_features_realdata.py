"""Median and harmonic features of real data (../shared/data): no spurious NaN, and they separate
corn, soybeans and wheat in Canada (5-fold cross-validated macro-F1 printed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cropglobe.features import Harmonics, Median1D
from cropglobe.series import SeriesSet, TimeGrid

pytestmark = pytest.mark.realdata

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
CAN = "cropglobe_format/for_CropNet/median_S2_CAN_month1-12_day5.npz"
CLASSES = ("corn", "soybeans", "rice", "wheat", "sugarcane", "cotton", "other")


def _can(shared_data: Path) -> SeriesSet:
    path = shared_data / CAN
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with np.load(path, allow_pickle=False) as z:
        fea, lbl = z["fea"], z["lbl"]
    return SeriesSet(fea, BANDS, TimeGrid.cropglobe(), lbl, CLASSES)


def _cawa(shared_data: Path) -> SeriesSet:
    import pandas as pd

    path = shared_data / "cawa" / "CAWa_CropType_time-series.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    df = pd.read_csv(path)
    starts = [int(c) for c in df.columns]
    grid = TimeGrid.from_starts(starts, kind="16-day")
    return SeriesSet(df.to_numpy(np.float32)[:, None, :], ("NDVI",), grid)


def test_cropglobe_can_features_have_no_nan(shared_data: Path) -> None:
    ss = _can(shared_data)
    med = Median1D().fit_transform(ss)
    h = Harmonics(indices=("NDVI",), add_rmse=True)
    harm = h.fit_transform(ss)
    assert med.shape == (3620, 430) and harm.shape == (3620, 11 * 8)
    assert not np.isnan(med).any() and not np.isnan(harm).any()
    assert h.n_underdetermined_ == 0


def test_cawa_features_nan_only_where_too_few_observations(shared_data: Path) -> None:
    ss = _cawa(shared_data)
    assert 0.2 < ss.missing_fraction() < 0.35
    for n, window in [(2, "full"), (1, "may-nov"), (3, "full")]:
        h = Harmonics(n_harmonics=n, window=window)
        x = h.fit_transform(ss)
        valid = (~np.isnan(ss.values[:, 0, h.window_idx_])).sum(axis=1)
        enough = valid >= 2 * n + 1
        assert not np.isnan(x[enough]).any()
        assert np.isnan(x[~enough]).all()
        assert h.n_underdetermined_ == int((~enough).sum())
    med = Median1D().fit_transform(ss)
    has_any = (~np.isnan(ss.values[:, 0])).any(axis=1)
    assert not np.isnan(med[has_any]).any()


@pytest.mark.slow
def test_random_forest_separates_corn_soy_wheat_in_canada(shared_data: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    ss = _can(shared_data)
    ss = ss.subset(np.isin(ss.labels, [0, 1, 3]))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = {}
    feature_sets = [
        ("median1d", Median1D()),
        ("harmonics (n=3, ω=1, May–Nov, bands+NDVI)", Harmonics(indices=("NDVI",))),
        (
            "harmonics (n=3, ω=1, full season, bands+NDVI)",
            Harmonics(window="full", indices=("NDVI",)),
        ),
    ]
    for name, tr in feature_sets:
        x = tr.fit_transform(ss)
        rf = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=2)
        scores[name] = cross_val_score(rf, x, ss.labels, cv=cv, scoring="f1_macro")
    for name, s in scores.items():
        print(
            f"CAN corn/soybeans/wheat, RF 3-fold macro-F1, {name}: {s.mean():.3f} ± {s.std():.3f}"
        )
    # three classes: chance is about 0.33
    assert scores["median1d"].mean() > 0.75
    assert min(s.mean() for s in scores.values()) > 0.6
