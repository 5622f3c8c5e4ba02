"""Augmentation: batched definitions against slow per-sample ones, identities, draw statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.interpolate import CubicSpline

from cropglobe.augment import (
    BandJitter,
    Compose,
    MagnitudeWarp,
    ObservationDropout,
    TimeScale,
    TimeShift,
    augment_offline,
    gather_linear,
    get_augmentation,
    make_batch,
    online_augmentation,
    paper_augmentation,
    resample_window,
    spline_basis,
)
from cropglobe.errors import ParameterError
from cropglobe.series import TimeGrid

FIRST, LAST = 24, 66  # the paper's window (days 121–334) on the 73-bin 5-day grid


@pytest.fixture
def series() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(1000, 300, (64, 3, 73)).astype(np.float32)


def slow_window(x: np.ndarray, start_off: float, end_off: float, n_out: int = 43) -> np.ndarray:
    """REFERENCE.md written the slow way: window [121 + a, 334 + b] days, clamped to the year,
    taken from the 73 bins and linearly resampled to 43 steps (one sample, np.interp)."""
    p0 = np.clip(FIRST + start_off / 5.0, 0, 72)
    p1 = np.clip(LAST + end_off / 5.0, 0, 72)
    if p1 <= p0:
        p1 = min(p0 + 1.0, 72.0)
    pos = np.linspace(p0, p1, n_out)
    return np.stack([np.interp(pos, np.arange(73), band) for band in x])


def draws(aug: object, n: int, seed: int = 1) -> np.ndarray:
    batch = make_batch(np.zeros((n, 1, 73), np.float32))
    return aug.apply(batch, np.random.default_rng(seed)).offsets  # type: ignore[attr-defined]


def test_plain_window_is_bins_24_to_66(series: np.ndarray) -> None:
    out = Compose([])(series, np.random.default_rng(0))
    assert out.shape == (64, 3, 43)
    np.testing.assert_array_equal(out, series[:, :, 24:67])


def test_shift_zero_and_warp_sigma_zero_are_identities(series: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    plain = series[:, :, 24:67]
    np.testing.assert_array_equal(TimeShift(max_days=0)(series, rng), plain)
    np.testing.assert_array_equal(TimeScale(max_days=0, p=1)(series, rng), plain)
    np.testing.assert_array_equal(MagnitudeWarp(sigma=0.0, p=1.0)(series, rng), plain)
    np.testing.assert_array_equal(BandJitter(0.0, 0.0, p=1.0)(series, rng), plain)
    np.testing.assert_array_equal(ObservationDropout(p_drop=0.0)(series, rng), plain)
    np.testing.assert_array_equal(online_augmentation(0, 0, 0)(series, rng), plain)
    # p = 0: nothing applied whatever the amplitudes
    np.testing.assert_array_equal(TimeShift(50, p=0.0)(series, rng), plain)
    np.testing.assert_array_equal(MagnitudeWarp(0.5, p=0.0)(series, rng), plain)


def test_batched_shift_equals_slow_definition(series: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    out = TimeShift(50, p=1.0)(series, rng)
    offsets = draws(TimeShift(50, p=1.0), 64, seed=7)
    for i in range(series.shape[0]):
        s = offsets[i, 0]
        assert offsets[i, 1] == s
        np.testing.assert_allclose(out[i], slow_window(series[i], s, s), rtol=1e-5, atol=1e-3)


def test_batched_scale_equals_slow_definition(series: np.ndarray) -> None:
    out = TimeScale(50, p=1.0)(series, np.random.default_rng(3))
    offsets = draws(TimeScale(50, p=1.0), 64, seed=3)
    for i in range(series.shape[0]):
        a, b = offsets[i]
        np.testing.assert_allclose(out[i], slow_window(series[i], a, b), rtol=1e-5, atol=1e-3)


def test_extreme_windows_clamp_to_the_year(series: np.ndarray) -> None:
    # end beyond day 365 clamps to the last bin; end before start becomes start + 1 bin
    off = np.array([[50.0, 50.0], [-130.0, -400.0], [300.0, 300.0]])
    batch = make_batch(series[:3])
    batch.offsets = off
    from cropglobe.augment import _window_positions

    p0, p1 = _window_positions(batch.grid, FIRST, LAST, off)
    np.testing.assert_allclose(p0, [34.0, 0.0, 71.0])
    np.testing.assert_allclose(p1, [72.0, 1.0, 72.0])
    out = resample_window(series[:3], p0, p1, 43)
    np.testing.assert_allclose(out[0], slow_window(series[0], 50, 50), rtol=1e-5, atol=1e-3)
    assert np.isfinite(out).all()


def test_shift_draws_are_uniform() -> None:
    off = draws(TimeShift(50, p=1.0), 20000)
    s = off[:, 0]
    assert s.min() >= -50 and s.max() <= 50
    assert abs(s.mean()) < 1.0
    assert abs(s.std() - 100 / np.sqrt(12)) < 0.5
    assert stats.kstest(s, stats.uniform(loc=-50, scale=100).cdf).pvalue > 0.001
    applied = np.mean(draws(TimeShift(50, p=0.3), 20000)[:, 0] != 0)
    assert abs(applied - 0.3) < 0.02


def test_scale_draws_are_independent_uniform() -> None:
    off = draws(TimeScale(50, p=1.0), 20000)
    assert abs(np.corrcoef(off[:, 0], off[:, 1])[0, 1]) < 0.03
    for col in off.T:
        assert stats.kstest(col, stats.uniform(loc=-50, scale=100).cdf).pvalue > 0.001
    applied = np.mean(draws(TimeScale(50, p=0.5), 20000)[:, 0] != 0)
    assert abs(applied - 0.5) < 0.02


def test_paper_scale_replaces_shift_online_composes() -> None:
    rng_seed = 5
    batch = make_batch(np.zeros((2000, 1, 73), np.float32))
    rng = np.random.default_rng(rng_seed)
    batch = TimeShift(50, 1.0).apply(batch, rng)
    shifted = batch.offsets.copy()
    batch = TimeScale(50, 1.0, replace=True).apply(batch, rng)
    assert not np.any(batch.offsets == shifted)  # every window replaced by (a, b)
    assert np.abs(batch.offsets).max() <= 50
    batch2 = make_batch(np.zeros((2000, 1, 73), np.float32))
    rng = np.random.default_rng(rng_seed)
    batch2 = TimeShift(50, 1.0).apply(batch2, rng)
    batch2 = TimeScale(50, 1.0, replace=False).apply(batch2, rng)
    np.testing.assert_allclose(batch2.offsets, shifted + batch.offsets)


def test_magnitude_warp_knots_follow_normal() -> None:
    ones = np.ones((20000, 1, 73), np.float32)
    curves = MagnitudeWarp(0.1, 5, p=1.0)(ones, np.random.default_rng(2))[:, 0, :]
    # knots sit at steps 0, 10.5, 21, 31.5, 42: the curve passes through the knot values there
    for step in (0, 21, 42):
        k = curves[:, step]
        assert abs(k.mean() - 1.0) < 0.005
        assert abs(k.std() - 0.1) < 0.005
    assert np.mean(
        np.any(
            MagnitudeWarp(0.1, p=0.25)(ones[:4000], np.random.default_rng(3)) != 1.0, axis=(1, 2)
        )
    ) == pytest.approx(0.25, abs=0.03)


def test_spline_basis_equals_per_sample_spline() -> None:
    rng = np.random.default_rng(0)
    knots = rng.normal(1, 0.1, (10, 5))
    basis = spline_basis(5, 43)
    kx = np.linspace(0, 42, 5)
    for row in knots:
        slow = CubicSpline(kx, row, bc_type="natural")(np.arange(43))
        np.testing.assert_allclose(row @ basis, slow, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(basis.sum(axis=0), 1.0, atol=1e-12)


def test_radar_bands_get_an_additive_clipped_curve() -> None:
    x = np.full((500, 3, 73), 2.0, np.float32)
    out = MagnitudeWarp(0.1, p=1.0, radar_sigma=0.5)(
        x, np.random.default_rng(0), bands=["B04", "VV", "VH"]
    )
    add = out[:, 1, :] - 2.0
    assert np.abs(add).max() <= 0.3 + 1e-6 and np.abs(add).max() > 0.2
    np.testing.assert_allclose(out[:, 1], out[:, 2])  # one radar curve for both polarisations
    mult = out[:, 0, :] / 2.0
    assert mult.min() >= 0.7 - 1e-6 and mult.max() <= 1.3 + 1e-6


def test_same_seed_same_batch(series: np.ndarray) -> None:
    pipe = Compose([ObservationDropout(0.2), *online_augmentation().members, BandJitter()])
    a = pipe(series, np.random.default_rng(42))
    b = pipe(series, np.random.default_rng(42))
    c = pipe(series, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_observation_dropout_refills_linearly(series: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    out = ObservationDropout(p_drop=0.3, p=1.0)(series, rng, window=None)
    assert out.shape == series.shape and not np.isnan(out).any()
    kept = np.isclose(out, series).all(axis=1)  # (N, T) steps left untouched
    assert 0.6 < kept.mean() < 0.8
    # a dropped interior step is the linear interpolation of its kept neighbours
    i, t = next(
        (i, t)
        for i in range(64)
        for t in range(1, 72)
        if not kept[i, t] and kept[i, t - 1] and kept[i, t + 1]
    )
    np.testing.assert_allclose(
        out[i, :, t], (series[i, :, t - 1] + series[i, :, t + 1]) / 2, rtol=1e-5
    )


def test_band_jitter_is_affine_per_band(series: np.ndarray) -> None:
    out = BandJitter(offset_std=50, gain_std=0.1, p=1.0)(series, np.random.default_rng(0))
    plain = series[:, :, 24:67]
    for i in range(3):
        for c in range(3):
            slope, icpt = np.polyfit(plain[i, c], out[i, c], 1)
            np.testing.assert_allclose(out[i, c], slope * plain[i, c] + icpt, rtol=1e-4, atol=0.1)


def test_offline_paper_mode(series: np.ndarray) -> None:
    labels = np.arange(64) % 3
    x, y = augment_offline(series, labels, copies=2, rng=np.random.default_rng(0))
    assert x.shape == (192, 3, 43) and y.shape == (192,)
    np.testing.assert_array_equal(x[:64], series[:, :, 24:67])
    np.testing.assert_array_equal(y, np.tile(labels, 3))
    assert not np.array_equal(x[64:128], x[128:])
    assert get_augmentation("paper").members[1].replace  # type: ignore[union-attr]
    desc = paper_augmentation().to_dict()
    assert desc["members"][0] == {
        "name": "TimeShift",
        "max_days": 50.0,
        "p": 1.0,
        "whole_days": True,
    }
    assert desc["members"][2]["bc_type"] == "not-a-knot"  # scipy's default, the release's
    assert desc["resampling"] == "bins"
    # the default pipeline's description is unchanged by the new options (saved run folders)
    online = online_augmentation().to_dict()
    assert "resampling" not in online and "whole_days" not in online["members"][0]


def _release_window(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """The release's recipe for one sample, written out simply: days moved and clamped to
    1…365, the 5-day bins holding them sliced, ``F.interpolate(align_corners=False)`` to 43."""
    import torch
    import torch.nn.functional as F

    start, end = min(max(121 + a, 1), 365), min(max(334 + b, 1), 365)
    if end <= start:
        end = min(365, start + 5)
    part = torch.from_numpy(x[None, :, (start - 1) // 5 : (end - 1) // 5 + 1])
    return F.interpolate(part, size=43, mode="linear", align_corners=False)[0].numpy()


def test_bins_resampling_equals_the_release_recipe(series: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    offsets = rng.integers(-60, 61, (64, 2)).astype(np.float64)
    offsets[:16, 1] = offsets[:16, 0]  # pure shifts (43 or 44 bins)
    offsets[16:20] = [[230, -240]]  # end before start: end = start + 5 days
    offsets[20:24] = [[300, 300]]  # both ends clamped to day 365
    offsets[24:28] = [[-200, 45]]  # start clamped to day 1: 73 bins squeezed into 43
    batch = make_batch(series, window=(121, 334))
    batch.offsets = offsets
    out = Compose([], resampling="bins").apply(batch, rng).values
    want = np.stack(
        [_release_window(series[i], int(a), int(b)) for i, (a, b) in enumerate(offsets)]
    )
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-3)
    # whole-bin shifts copy bins exactly; no move is the plain window, bit for bit
    batch = make_batch(series, window=(121, 334))
    batch.offsets = np.tile([[10.0, 10.0]], (64, 1))
    shifted = Compose([], resampling="bins").apply(batch, rng).values
    np.testing.assert_array_equal(shifted, series[:, :, 26:69])
    plain = Compose([TimeShift(0, whole_days=True)], resampling="bins")(series, rng)
    np.testing.assert_array_equal(plain, series[:, :, 24:67])


def test_whole_day_draws() -> None:
    batch = make_batch(np.zeros((5000, 1, 73), np.float32))
    moved = TimeShift(3, whole_days=True).apply(batch, np.random.default_rng(0)).offsets
    assert set(np.unique(moved)) == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}
    np.testing.assert_array_equal(moved[:, 0], moved[:, 1])
    with pytest.raises(ParameterError, match="whole number"):
        TimeScale(2.5, whole_days=True)
    with pytest.raises(ParameterError, match="'linear' or 'bins'"):
        Compose([], resampling="nearest")


def test_gather_linear_against_numpy_interp() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 2, 9)).astype(np.float32)
    pos = rng.uniform(-1, 9, (4, 6))
    got = gather_linear(x, pos)
    for i in range(4):
        for c in range(2):
            want = np.interp(np.clip(pos[i], 0, 8), np.arange(9), x[i, c])
            np.testing.assert_allclose(got[i, c], want, rtol=1e-5, atol=1e-6)


def test_other_grids_and_window_none() -> None:
    grid = TimeGrid.monthly()
    x = np.random.default_rng(0).normal(size=(5, 2, 12)).astype(np.float32)
    out = Compose([TimeShift(0)])(x, np.random.default_rng(0), grid=grid, window=None)
    np.testing.assert_array_equal(out, x)
    out = online_augmentation()(x, np.random.default_rng(0), grid=grid, window=(121, 334))
    assert out.shape == (5, 2, 7)  # May … November


def test_bad_parameters_are_refused(series: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="p must be a probability"):
        TimeShift(50, p=1.5)
    with pytest.raises(ParameterError, match="knots"):
        MagnitudeWarp(knots=1)
    with pytest.raises(ParameterError, match="augment must be one of"):
        get_augmentation("sometimes")
    with pytest.raises(ParameterError, match=r"numpy\.random\.Generator"):
        TimeShift()(series, 42)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="pass the SeriesSet's grid"):
        TimeShift()(series[:, :, :40], np.random.default_rng(0))


def test_online_keeps_a_third_of_samples_original() -> None:
    from cropglobe.augment import online_augmentation
    from cropglobe.series import TimeGrid

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3000, 2, 73)).astype(np.float32)
    out = online_augmentation(p_original=1 / 3)(
        x, np.random.default_rng(1), grid=TimeGrid.cropglobe()
    )
    same = np.all(out == x[:, :, 24:67], axis=(1, 2))
    assert abs(same.mean() - 1 / 3) < 0.04
    default = online_augmentation()(x[:300], np.random.default_rng(1))
    assert not np.any(np.all(default == x[:300, :, 24:67], axis=(1, 2)))


def test_resample_window_layouts_and_nan_neighbours(series: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    start = rng.uniform(0, 30, 64)
    start[:8] = np.floor(start[:8])  # integer starts: exact copies
    end = start + rng.uniform(20, 42, 64)
    end[:8] = start[:8] + 42.0
    out = resample_window(series, start, end, 43)
    # time-major memory gives the identical result
    tm = np.ascontiguousarray(series.transpose(0, 2, 1)).transpose(0, 2, 1)
    np.testing.assert_array_equal(resample_window(tm, start, end, 43), out)
    for i in range(64):
        pos = np.linspace(start[i], end[i], 43)
        expect = np.stack([np.interp(pos, np.arange(73), band) for band in series[i]])
        np.testing.assert_allclose(out[i], expect, rtol=1e-5, atol=1e-3)
    # a NaN next to an integer position does not leak into the copied bin
    x = series[:8].copy()
    x[:, :, 1::2] = np.nan
    even = resample_window(x, np.zeros(8), np.full(8, 42.0), 22)  # positions 0, 2, …, 42
    np.testing.assert_array_equal(even, series[:8, :, 0:43:2])
