"""The compiled augmentation kernels against their numpy twins (bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest

from cropglobe import _kernels
from cropglobe.augment import online_augmentation, paper_augmentation
from cropglobe.series import TimeGrid


def test_kernels_compile() -> None:
    assert _kernels.compiled() is not None, "numba is a dependency; the fast path must be active"


@pytest.mark.parametrize("n_out", [43, 22, 1, 60])
def test_resample_rows_equals_numpy_twin(n_out: int) -> None:
    rng = np.random.default_rng(5)
    n, t, c = 64, 73, 10
    rows = rng.normal(1000.0, 300.0, (n * t, c)).astype(np.float32)
    rows[rng.random(n * t) < 0.05, 3] = np.nan  # NaN neighbours must not leak into exact steps
    start = rng.uniform(-5.0, 40.0, n)  # below 0: clamped
    end = start + rng.uniform(-3.0, 60.0, n)  # beyond T − 1: clamped; some reversed
    start[:8] = np.arange(8) + 10.0  # integer positions copy rows exactly
    end[:8] = start[:8] + 42.0
    fast = _kernels.resample_rows(rows, t, start, end, n_out)
    slow = _kernels.resample_rows_numpy(rows, t, start, end, n_out)
    assert fast.shape == (n, n_out, c) and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, slow)  # equal NaN positions, identical bits elsewhere
    if n_out == 43:  # the integer windows are plain copies of rows 10 … 52 of each sample
        for i in range(8):
            np.testing.assert_array_equal(fast[i], rows[i * t + 10 + i : i * t + 10 + i + 43])


def test_scale_rows_equals_numpy_twin() -> None:
    rng = np.random.default_rng(6)
    tm = rng.normal(size=(32, 43, 10)).astype(np.float32)
    which = np.flatnonzero(rng.random(32) < 0.3)
    curve = rng.normal(1.0, 0.1, (which.size, 43)).astype(np.float32)
    a, b = tm.copy(), tm.copy()
    _kernels.scale_rows(a, curve, which)
    _kernels.scale_rows_numpy(b, curve, which)
    np.testing.assert_array_equal(a, b)
    untouched = np.setdiff1d(np.arange(32), which)
    np.testing.assert_array_equal(a[untouched], tm[untouched])


@pytest.mark.parametrize("make", [paper_augmentation, online_augmentation])
def test_pipelines_same_with_and_without_kernels(
    make: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole pipelines give identical batches on the compiled and the numpy path."""
    rng_data = np.random.default_rng(7)
    x_tm = rng_data.normal(1000.0, 300.0, (300, 73, 10)).astype(np.float32)
    x = x_tm.transpose(0, 2, 1)
    pipe = make()  # type: ignore[operator]
    grid = TimeGrid.cropglobe()
    fast = pipe(x, np.random.default_rng(1), grid=grid)
    monkeypatch.setattr(_kernels, "compiled", lambda: None)
    slow = pipe(x, np.random.default_rng(1), grid=grid)
    np.testing.assert_array_equal(fast, slow)


def test_regular_grid_positions_match_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The straight-line window ends of an evenly spaced grid equal the general interpolation."""
    from cropglobe import augment

    grid = TimeGrid.cropglobe()
    offsets = np.random.default_rng(8).uniform(-80.0, 80.0, (500, 2))
    offsets[:50] = 0.0
    offsets[50:60, 1] = -200.0  # end before start: end one bin after it
    fast = augment._window_positions(grid, 24, 66, offsets)
    assert augment._regular_step(grid) == 5.0
    monkeypatch.setattr(augment, "_regular_step", lambda g: None)
    slow = augment._window_positions(grid, 24, 66, offsets)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert (fast[0][:50] == 24.0).all() and (fast[1][:50] == 66.0).all()


@pytest.mark.parametrize("max_gap", [None, 30.0, 0.0])
@pytest.mark.parametrize("edge", ["hold", "nan"])
def test_compiled_gap_filling_equals_the_numpy_path(
    max_gap: float | None, edge: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cropglobe import composite

    rng = np.random.default_rng(8)
    grid = TimeGrid.cropglobe()
    x = rng.normal(2000.0, 500.0, (400, 10, grid.n_steps)).astype(np.float32)
    x[rng.random(x.shape) < rng.uniform(0.0, 0.95, (400, 1, 1))] = np.nan  # 0-95 % missing
    x[:5] = np.nan  # series without any value stay NaN
    x[5:10] = np.nan
    x[5:10, :, 20] = 1.5  # one value: held at both ends (or left alone)
    x[10, :, :30] = np.nan  # a long leading gap, a long trailing one
    x[10, :, 60:] = np.nan
    assert composite._FILL_COMPILED
    fast = composite.fill_gaps(x, grid, max_gap_days=max_gap, edge=edge)  # type: ignore[arg-type]
    monkeypatch.setattr(composite, "_FILL_COMPILED", False)
    slow = composite.fill_gaps(x, grid, max_gap_days=max_gap, edge=edge)  # type: ignore[arg-type]
    np.testing.assert_array_equal(fast, slow)  # equal NaN positions, identical bits elsewhere
    assert np.isnan(fast[:5]).all()
    assert (fast[5:10] == 1.5).all() if edge == "hold" else (np.isnan(fast[5:10, :, 21:])).all()
    filled = np.isnan(x) & ~np.isnan(fast)
    assert filled.any() == (edge == "hold" or max_gap != 0.0)  # 0 days bridges no gap
    assert not (np.isnan(fast) & ~np.isnan(x)).any()
    np.testing.assert_array_equal(fast[~np.isnan(x)], x[~np.isnan(x)])  # valid values untouched
