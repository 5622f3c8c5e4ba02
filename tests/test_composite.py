"""Tests of cropglobe.composite: median composites, gap filling, resampling, seasons."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cropglobe.composite as cmp
from cropglobe.bands import canonical_band
from cropglobe.composite import (
    composite,
    composite_arrays,
    detect_season_alignment,
    fill_gaps,
    paper_window,
    resample,
    season_findings,
    select_window,
    shift_anchor,
    shift_series,
)
from cropglobe.errors import DataFormatError, GridError, ParameterError
from cropglobe.series import (
    Observations,
    SeriesSet,
    TimeGrid,
    day_of_season,
    season_label_year,
    season_start_year,
)
from cropglobe.simulate import simulate_world

NAN = np.nan


def _obs(
    rows: list[tuple[int, str, float, float]],
    n_samples: int,
    *,
    valid: list[bool] | None = None,
    scl: list[int] | None = None,
    samples: pd.DataFrame | None = None,
) -> Observations:
    """Observations with bands B04, B08 from (sample, date, b04, b08) rows."""
    table = pd.DataFrame(
        {
            "sample": np.array([r[0] for r in rows], dtype=np.int64),
            "date": pd.to_datetime([r[1] for r in rows]),
            "B04": np.array([r[2] for r in rows], dtype=np.float32),
            "B08": np.array([r[3] for r in rows], dtype=np.float32),
        }
    )
    if valid is not None:
        table["valid"] = valid
    if scl is not None:
        table["SCL"] = np.array(scl, dtype=np.int64)
    if samples is None:
        samples = pd.DataFrame(
            {"sample_id": [f"s{i}" for i in range(n_samples)], "label": np.zeros(n_samples, int)}
        )
    return Observations(table, ("B04", "B08"), samples, classes=("corn",))


def _slow_reference(sample, dos, values, n, grid):
    """Loop-per-group reference with np.median on the valid values."""
    bins = grid.bin_index(dos)
    out = np.full((n, values.shape[1], grid.n_steps), np.nan, dtype=np.float32)
    for i in range(n):
        for t in range(grid.n_steps):
            sel = (sample == i) & (bins == t)
            for c in range(values.shape[1]):
                x = values[sel, c]
                x = x[~np.isnan(x)]
                if x.size:
                    out[i, c, t] = np.median(x.astype(np.float64))
    return out


# ----------------------------------------------------------------------------- composite
def test_composite_hand_computed() -> None:
    grid = TimeGrid.regular(10, 1, 60)  # 6 bins of 10 days: 1-10, 11-20, ...
    rows = [
        (0, "2023-01-02", 1.0, 10.0),  # bin 0: two values -> median 2
        (0, "2023-01-05", 3.0, 30.0),
        (0, "2023-01-12", 10.0, 100.0),  # bin 1: three values -> median 20 (B04)
        (0, "2023-01-15", 30.0, NAN),  # B08 missing here: median of 100, 200 = 150
        (0, "2023-01-18", 20.0, 200.0),
        (0, "2023-01-25", 999.0, 999.0),  # bin 2: masked (valid False)
        (0, "2023-01-27", 7.0, 70.0),
        (1, "2023-02-14", 5.0, 50.0),  # sample 1, bin 4
        (1, "2023-02-15", 6.0, 60.0),
        (1, "2023-02-16", 900.0, 900.0),  # masked
        (1, "2022-02-15", 111.0, 111.0),  # another season: ignored
    ]
    valid = [True] * 5 + [False, True, True, True, False, True]
    ss = composite(_obs(rows, 2, valid=valid), grid, season_year=2023)
    expected = np.full((2, 2, 6), NAN, dtype=np.float32)
    expected[0, :, 0] = [2.0, 20.0]
    expected[0, :, 1] = [20.0, 150.0]
    expected[0, :, 2] = [7.0, 70.0]
    expected[1, :, 4] = [5.5, 55.0]
    np.testing.assert_array_equal(ss.values, expected)
    assert ss.values.dtype == np.float32
    assert ss.bands == ("B04", "B08")
    assert ss.grid == grid
    assert list(ss.meta["year"]) == [2023, 2023]
    assert "label" not in ss.meta.columns
    assert list(ss.labels) == [0, 0]
    assert ss.classes == ("corn",)


def test_composite_scl_mask_and_mask_modes() -> None:
    grid = TimeGrid.regular(10, 1, 30)
    rows = [(0, "2023-01-02", 1.0, 1.0), (0, "2023-01-03", 50.0, 50.0)]
    obs = _obs(rows, 1, scl=[4, 9])  # 9 = cloud high probability
    assert composite(obs, grid, season_year=2023).values[0, 0, 0] == 1.0
    assert composite(obs, grid, season_year=2023, mask="scl").values[0, 0, 0] == 1.0
    assert composite(obs, grid, season_year=2023, mask="none").values[0, 0, 0] == 25.5
    with pytest.raises(DataFormatError, match="mask='valid' needs"):
        composite(obs, grid, season_year=2023, mask="valid")
    with pytest.raises(ParameterError, match="mask must be one of"):
        composite(obs, grid, season_year=2023, mask="clouds")  # type: ignore[arg-type]


def test_composite_mean_reducer_and_fill() -> None:
    grid = TimeGrid.regular(10, 1, 50)
    rows = [
        (0, "2023-01-02", 1.0, 1.0),
        (0, "2023-01-03", 2.0, 2.0),
        (0, "2023-01-04", 6.0, 6.0),
        (0, "2023-01-22", 9.0, 9.0),
    ]
    obs = _obs(rows, 1)
    mean = composite(obs, grid, season_year=2023, reducer="mean")
    np.testing.assert_allclose(mean.values[0, 0], [3.0, NAN, 9.0, NAN, NAN])
    filled = composite(obs, grid, season_year=2023, fill=True, max_gap_days=20)
    np.testing.assert_allclose(filled.values[0, 0], [2.0, 5.5, 9.0, 9.0, 9.0])
    assert filled.attrs["composite"]["fill"] is True


def test_composite_arrays_matches_slow_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    grid = TimeGrid.regular(16, 1, 365)
    n = 30
    r = 4000
    sample = np.r_[rng.integers(0, n, r), np.zeros(40, int)]  # one big group (sample 0, day 100)
    dos = np.r_[rng.integers(1, 366, r), np.full(40, 100)]
    values = rng.normal(size=(sample.size, 3)).astype(np.float32)
    values[rng.random(values.shape) < 0.3] = np.nan
    expected = _slow_reference(sample, dos, values, n, grid)
    np.testing.assert_allclose(composite_arrays(sample, dos, values, n, grid), expected,
                               rtol=1e-6, equal_nan=True)  # fmt: skip
    # Several chunks, unsorted input, float64 values, and masked rows (sample −1).
    monkeypatch.setattr(cmp, "_CHUNK_ROWS", 97)
    got = composite_arrays(sample, dos, values.astype(np.float64), n, grid)
    np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)
    masked = np.where(sample == 3, -1, sample)
    got = composite_arrays(masked, dos, values, n, grid)
    assert np.isnan(got[3]).all()
    np.testing.assert_allclose(np.delete(got, 3, 0), np.delete(expected, 3, 0), equal_nan=True)


def test_composite_arrays_sorted_input_and_errors() -> None:
    grid = TimeGrid.cropglobe()
    order = np.lexsort(([5, 3, 1, 3], [1, 0, 0, 0]))
    sample = np.array([1, 0, 0, 0])[order]
    dos = np.array([5, 3, 1, 3])[order]
    values = np.array([[4.0], [1.0], [2.0], [3.0]])[order]
    out = composite_arrays(sample, dos, values, 2, grid)
    assert out.shape == (2, 1, 73)
    assert out[0, 0, 0] == 2.0 and out[1, 0, 0] == 4.0
    assert np.isnan(out[:, :, 1:]).all()
    with pytest.raises(DataFormatError, match="n_samples"):
        composite_arrays(sample, dos, values, 1, grid)
    with pytest.raises(DataFormatError, match="one length R"):
        composite_arrays(sample[:2], dos, values, 2, grid)
    assert composite_arrays(sample[:0], dos[:0], values[:0], 3, grid).shape == (3, 1, 73)


def test_composite_empty_sample_raises_unless_allowed() -> None:
    grid = TimeGrid.monthly()
    rows = [(0, "2023-03-02", 1.0, 1.0), (1, "2023-03-03", 5.0, 5.0), (2, "2023-05-01", 2.0, 2.0)]
    obs = _obs(rows, 3, valid=[True, False, True])
    with pytest.raises(DataFormatError, match=r"1 of 3 samples have no valid observation.*s1"):
        composite(obs, grid, season_year=2023)
    ss = composite(obs, grid, season_year=2023, allow_empty=True)
    assert np.isnan(ss.values[1]).all()
    with pytest.raises(DataFormatError, match="no valid observation"):
        ss.validate()
    ss.validate(allow_empty=True)


def test_season_year_inference_and_sources() -> None:
    grid = TimeGrid.monthly()
    months = pd.date_range("2017-01-01", "2018-06-01", freq="MS") + pd.Timedelta(days=14)
    rows = [(0, str(d.date()), float(d.year * 100 + d.month), 0.0) for d in months]
    rows += [(1, "2019-03-10", 3.0, 0.0), (1, "2020-03-10", 4.0, 0.0)]  # tie: earlier season
    obs = _obs(rows, 2)
    ss = composite(obs, grid)
    assert list(ss.meta["year"]) == [2017, 2019]
    np.testing.assert_array_equal(ss.values[0, 0], [201700 + m for m in range(1, 13)])
    assert ss.values[1, 0, 2] == 3.0
    # Explicit int, mapping and a 'year' column.
    assert composite(obs, grid, season_year=2018, allow_empty=True).values[0, 0, 0] == 201801
    ss_map = composite(obs, grid, season_year={"s0": 2018, "s1": 2020}, allow_empty=True)
    assert ss_map.values[0, 0, 5] == 201806 and np.isnan(ss_map.values[0, 0, 6])
    assert ss_map.values[1, 0, 2] == 4.0
    with pytest.raises(DataFormatError, match="lacks 1 of 2 sample ids"):
        composite(obs, grid, season_year={"s0": 2018})
    samples = obs.samples.assign(year=[2018, 2020])
    obs_y = Observations(obs.table, obs.bands, samples, obs.classes)
    assert list(composite(obs_y, grid).meta["year"]) == [2018, 2020]
    gap = Observations(obs.table, obs.bands, obs.samples.assign(year=[2018, None]), obs.classes)
    with pytest.raises(DataFormatError, match=r"season_year explicitly \(on the command line: "
                       r"cropglobe composite --season-year YEAR\)"):  # fmt: skip
        composite(gap, grid)


def test_southern_season_spans_two_calendar_years() -> None:
    grid = TimeGrid.monthly("07-01")
    dates = pd.date_range("2023-07-01", "2024-06-01", freq="MS") + pd.Timedelta(days=9)
    rows = [(0, str(d.date()), float(d.month), 0.0) for d in dates]
    rows.append((0, "2024-02-29", 2.0, 0.0))  # leap day lands in February
    rows.append((0, "2022-12-10", 99.0, 0.0))  # previous season: ignored
    ss = composite(_obs(rows, 1), grid)
    assert ss.meta["year"][0] == 2023
    np.testing.assert_array_equal(ss.values[0, 0], [7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6])


def test_day_of_season_leap_day() -> None:
    year, dos = day_of_season(["2024-02-28", "2024-02-29", "2024-03-01", "2024-07-01"], "07-01")
    assert list(year) == [2023, 2023, 2023, 2024]
    assert list(dos) == [243, 243, 244, 1]


# ----------------------------------------------------------------------------- fill_gaps
def test_fill_gaps_known_answers() -> None:
    grid = TimeGrid.regular(10, 1, 90)  # centres 5.5, 15.5, ..., 85.5
    v = np.array([[[NAN, 1.0, NAN, 3.0, NAN, NAN, NAN, NAN, 8.0]]], dtype=np.float32)
    got = fill_gaps(v, grid, max_gap_days=20)
    np.testing.assert_allclose(got[0, 0], [1, 1, 2, 3, NAN, NAN, NAN, NAN, 8], equal_nan=True)
    got = fill_gaps(v, grid, max_gap_days=50)
    np.testing.assert_allclose(got[0, 0], [1, 1, 2, 3, 4, 5, 6, 7, 8])
    got = fill_gaps(v, grid, max_gap_days=None, edge="nan")
    np.testing.assert_allclose(got[0, 0], [NAN, 1, 2, 3, 4, 5, 6, 7, 8], equal_nan=True)
    assert np.isnan(v[0, 0, 0])  # input untouched
    trailing = np.array([1.0, NAN, NAN], dtype=np.float32)
    np.testing.assert_allclose(fill_gaps(trailing, TimeGrid.regular(10, 1, 30)), [1, 1, 1])
    assert np.isnan(fill_gaps(np.full((2, 9), NAN), grid)).all()


def test_fill_gaps_uneven_bins_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = TimeGrid.monthly()  # centres differ in spacing
    rng = np.random.default_rng(1)
    v = rng.random((50, 3, 12)).astype(np.float32)
    v[rng.random(v.shape) < 0.5] = np.nan
    c = grid.centers
    ref = fill_gaps(v, grid, max_gap_days=62)
    s, b = 4, 1
    row = v[s, b]
    ok = np.flatnonzero(~np.isnan(row))
    for t in range(12):
        if np.isnan(row[t]) and ok[0] < t < ok[-1]:
            j = np.searchsorted(ok, t)
            lo, hi = ok[j - 1], ok[j]
            if c[hi] - c[lo] <= 62:
                expected = row[lo] + (c[t] - c[lo]) / (c[hi] - c[lo]) * (row[hi] - row[lo])
                assert ref[s, b, t] == pytest.approx(expected, rel=1e-6)
            else:
                assert np.isnan(ref[s, b, t])
    monkeypatch.setattr(cmp, "_CHUNK_SERIES", 1)  # one series per chunk
    np.testing.assert_array_equal(fill_gaps(v, grid, max_gap_days=62), ref)
    with pytest.raises(GridError, match="time steps"):
        fill_gaps(v, TimeGrid.cropglobe())
    with pytest.raises(ParameterError, match="edge"):
        fill_gaps(v, grid, edge="zero")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- resample
def _series(values: np.ndarray, grid: TimeGrid, **meta: list) -> SeriesSet:
    n = values.shape[0]
    bands = ("B04", "B08", "NDVI")[: values.shape[1]]
    m = pd.DataFrame({"sample_id": [str(i) for i in range(n)], **meta})
    return SeriesSet(values.astype(np.float32), bands, grid, meta=m)


def test_monthly_to_5day_to_monthly_round_trip() -> None:
    monthly = TimeGrid.monthly()
    c = monthly.centers
    base = np.stack([1000 + 400 * np.sin(2 * np.pi * (c - 80) / 365), 2000 + 0 * c])
    ss = _series(base[None], monthly)
    fine = resample(ss, TimeGrid.cropglobe())
    assert fine.shape == (1, 2, 73) and fine.grid.kind == "5-day"
    assert not np.isnan(fine.values).any()
    # Values at the monthly centres are reproduced exactly where a 5-day bin centre hits one.
    back = resample(fine, monthly)
    np.testing.assert_allclose(back.values, ss.values, rtol=0.03)
    np.testing.assert_allclose(back.values[0, 1], 2000.0)


def test_resample_interpolates_like_the_release_and_aggregates() -> None:
    monthly = TimeGrid.monthly()
    v = np.full((1, 1, 12), NAN, dtype=np.float32)
    v[0, 0, 2], v[0, 0, 4] = 10.0, 30.0  # March and May only
    fine = resample(_series(v, monthly), TimeGrid.cropglobe(), method="interpolate").values[0, 0]
    c5, cm = TimeGrid.cropglobe().centers, monthly.centers
    expected = np.interp(c5, [cm[2], cm[4]], [10.0, 30.0])  # edge hold outside
    np.testing.assert_allclose(fine, expected, rtol=1e-6)
    coarse = np.arange(73, dtype=np.float32)[None, None]
    med = resample(_series(coarse, TimeGrid.cropglobe()), monthly).values[0, 0]
    assert med[0] == pytest.approx(2.5)  # January holds the 5-day bins 0 … 5 -> median 2.5
    mean = resample(_series(coarse, TimeGrid.cropglobe()), monthly, method="mean").values[0, 0]
    assert mean[0] == pytest.approx(2.5)
    dek = resample(_series(coarse, TimeGrid.cropglobe()), TimeGrid.dekads())
    assert dek.n_steps == 36 and not np.isnan(dek.values).any()


def test_resample_refuses_other_anchor() -> None:
    ss = _series(np.zeros((1, 1, 12)), TimeGrid.monthly())
    with pytest.raises(GridError, match="shift_anchor"):
        resample(ss, TimeGrid.monthly("07-01"))
    with pytest.raises(ParameterError, match="method"):
        resample(ss, TimeGrid.cropglobe(), method="cubic")  # type: ignore[arg-type]


def test_paper_window_is_bins_24_to_66() -> None:
    v = np.tile(np.arange(73, dtype=np.float32), (2, 1, 1))
    ss = _series(v, TimeGrid.cropglobe())
    win = paper_window(ss)
    assert win.n_steps == 43
    np.testing.assert_array_equal(win.values[0, 0], np.arange(24, 67))
    assert win.grid.edges[0] == 121 and win.grid.edges[-1] == 336
    np.testing.assert_array_equal(select_window(ss, 121, 334).values, win.values)
    assert paper_window(win).n_steps == 43  # already windowed
    monthly = _series(np.ones((1, 1, 12)), TimeGrid.monthly())
    assert paper_window(monthly).shape == (1, 1, 43)
    short = select_window(ss, 150, 200)
    with pytest.raises(GridError, match="43"):
        paper_window(short)


# ----------------------------------------------------------------------------- seasons
def _two_year_observations() -> Observations:
    days = pd.date_range("2023-01-01", "2024-12-31", freq="3D")
    t = (days - pd.Timestamp("2023-01-01")).days.to_numpy(dtype=float)
    rows = [(0, str(d.date()), 100 + x, 5000 - x) for d, x in zip(days, t, strict=True)]
    rows.append((0, "2024-02-29", 100 + 424.0, 5000 - 424.0))
    return _obs(rows, 1)


def test_shift_anchor_builds_a_july_june_season_from_two_years() -> None:
    obs = _two_year_observations()
    cal = TimeGrid.monthly()
    y23 = composite(obs, cal, season_year=2023)
    y24 = composite(obs, cal, season_year=2024)
    # the new season ends in the same year: calendar 2024 -> July 2023 – June 2024
    shifted = shift_anchor(y24, "07-01", previous_season=y23)
    direct = composite(obs, TimeGrid.monthly("07-01"), season_year=2023)
    assert shifted.grid.same_axis(direct.grid)
    np.testing.assert_array_equal(shifted.values, direct.values)
    assert shifted.meta["year"][0] == 2023  # named by the year it starts
    alone = shift_anchor(y24, "07-01")
    np.testing.assert_array_equal(alone.values[..., 6:], direct.values[..., 6:])
    assert np.isnan(alone.values[..., :6]).all()
    wrapped = shift_anchor(y24, "07-01", wrap=True)  # July–December 2024 stand in for 2023's
    np.testing.assert_array_equal(wrapped.values[..., 6:], direct.values[..., 6:])
    np.testing.assert_array_equal(wrapped.values[..., :6], y24.values[..., 6:])
    # and back: July 2023 – June 2024 -> calendar 2024, July–December from the next season
    nxt = composite(obs, TimeGrid.monthly("07-01"), season_year=2024, allow_empty=True)
    back = shift_anchor(shifted, "01-01", next_season=nxt)
    assert back.meta["year"][0] == 2024
    np.testing.assert_array_equal(back.values, y24.values)
    with pytest.raises(GridError, match="previous_season"):
        shift_anchor(y24, "07-01", previous_season=resample(y23, TimeGrid.dekads()))
    with pytest.raises(ParameterError, match="pass previous_season="):
        shift_anchor(y24, "07-01", next_season=y23)  # the advice the old check gave
    with pytest.raises(ParameterError, match="not both"):
        shift_anchor(y24, "07-01", previous_season=y23, wrap=True)


def test_shift_anchor_on_5day_grid_interpolates() -> None:
    grid = TimeGrid.cropglobe()
    line = grid.centers.astype(np.float32)  # value = day of the calendar year 2023
    prev = _series(line[None, None], grid)
    ss = _series((line + 365)[None, None], grid)
    out = shift_anchor(ss, "07-01", previous_season=prev)
    assert out.grid.anchor == "07-01" and out.n_steps == 73
    # New day of season d is calendar day 181 + d of the year before: a linear signal is
    # reproduced.
    np.testing.assert_allclose(out.values[0, 0], out.grid.centers + 181, rtol=1e-6)
    with pytest.raises(GridError, match="whole season"):
        shift_anchor(select_window(ss, 121, 334), "07-01")


def test_shift_series() -> None:
    grid = TimeGrid.regular(10, 1, 100)
    v = grid.centers.astype(np.float32)[None, None]
    ss = _series(v, grid)
    later = shift_series(ss, 15).values[0, 0]
    assert np.isnan(later[:1]).all()
    np.testing.assert_allclose(later[2:], grid.centers[2:] - 15)
    held = shift_series(ss, -25, edge="hold").values[0, 0]
    np.testing.assert_allclose(held[:7], grid.centers[:7] + 25)
    assert (held[8:] == v[0, 0, -1]).all()
    assert np.array_equal(shift_series(ss, 0).values, ss.values)


def test_detect_season_alignment_flags_summer_peak_in_january() -> None:
    grid = TimeGrid.cropglobe()
    c = grid.centers
    north = 0.2 + 0.6 * np.exp(-(((c - 200) / 30) ** 2))
    south = 0.2 + 0.6 * np.exp(-(((((c - 20 + 182) % 365) - 182) / 30) ** 2))
    ndvi = np.stack([north, north, south, south])[:, None, :]
    ss = SeriesSet(
        ndvi.astype(np.float32), ("NDVI",), grid, np.array([0, 1, 0, 1]), ("corn", "wheat"),
        pd.DataFrame({"sample_id": list("abcd"), "country": ["FRA", "FRA", "ARG", "ARG"]}),
    )  # fmt: skip
    df = detect_season_alignment(ss).set_index("country")
    assert df.loc["FRA", "peak_month"] == 7 and not df.loc["FRA", "unaligned_southern"]
    assert df.loc["ARG", "peak_month"] == 1 and df.loc["ARG", "unaligned_southern"]
    assert df.loc["ARG", "unaligned"] and df.loc["ARG", "suggested_anchor"] == "07-01"
    assert "outside days 121–334" in df.loc["ARG", "note"]
    assert df.loc["ARG", "n_classes"] == 2


# ----------------------------------------------------------------------------- southern seasons
_FEB_1 = pd.Timestamp("2023-02-01")


def _arg_table() -> pd.DataFrame:
    """A tidy table for ARG, label year 2023: 5-day observations July 2022 – June 2023 whose
    NDVI peaks (0.85) on 1 February 2023, the southern summer crop of the 2022/23 season."""
    dates = pd.date_range("2022-07-01", "2023-06-30", freq="5D")
    nd = 0.15 + 0.7 * np.exp(-((((dates - _FEB_1).days.to_numpy()) / 35.0) ** 2))
    red = np.full(nd.size, 800.0)
    frames = [
        pd.DataFrame(
            {
                "sample_id": f"ARG_{i}",
                "date": dates.strftime("%Y-%m-%d"),
                "B04": red,
                "B08": red * (1 + nd) / (1 - nd),
                "label": lab,
                "year": 2023,
                "country": "ARG",
            }
        )
        for i, lab in enumerate(["soybeans", "corn", "soybeans", "corn"])
    ]
    return pd.concat(frames, ignore_index=True)


def _arg_obs() -> Observations:
    df = _arg_table()
    ids = df["sample_id"].unique()
    table = pd.DataFrame(
        {
            "sample": np.searchsorted(ids, df["sample_id"]).astype(np.int64),
            "date": pd.to_datetime(df["date"]),
            "B04": df["B04"].to_numpy(np.float32),
            "B08": df["B08"].to_numpy(np.float32),
        }
    )
    first = df.drop_duplicates("sample_id")
    samples = pd.DataFrame({"sample_id": ids, "country": "ARG", "year": 2023,
                            "label": (first["label"] == "soybeans").to_numpy(int)})  # fmt: skip
    return Observations(table, ("B04", "B08"), samples, classes=("corn", "soybeans"))


def _ndvi(ss: SeriesSet) -> np.ndarray:
    if "NDVI" in ss.bands:
        return ss.values[:, ss.bands.index("NDVI")]
    b04, b08 = ss.values[:, ss.bands.index("B04")], ss.values[:, ss.bands.index("B08")]
    return (b08 - b04) / (b08 + b04)


def test_year_column_is_the_label_year_the_season_ends_in() -> None:
    assert season_start_year(2023, "07-01") == 2022 and season_start_year(2023) == 2023
    assert season_label_year(2022, "07-01") == 2023 and season_label_year(2023) == 2023
    obs = _arg_obs()
    jul = composite(obs, TimeGrid.monthly("07-01"))  # no season_year: the year column (2023)
    assert (jul.meta["year"] == 2022).all()  # the season July 2022 – June 2023, named 2022
    assert not np.isnan(jul.values).any()
    peak = int(np.argmax(_ndvi(jul)[0]))
    assert peak == 7  # February, the 8th month of the July–June season
    assert 121 <= jul.grid.centers[peak] <= 334  # inside the window the models see
    cal = composite(obs, TimeGrid.monthly())  # label year 2023 = calendar 2023 in the north
    assert (cal.meta["year"] == 2023).all()
    assert np.isnan(cal.values[..., 6:]).all() and int(np.argmax(_ndvi(cal)[0, :6])) == 1


def test_composite_names_the_season_year_that_holds_the_observations() -> None:
    obs = _arg_obs()
    with pytest.raises(DataFormatError, match=r"pass --season-year 2022 \(season_year=2022\)"):
        composite(obs, TimeGrid.monthly("07-01"), season_year=2023)
    start_years = Observations(obs.table, obs.bands, obs.samples.assign(year=2022), obs.classes)
    with pytest.raises(DataFormatError, match="read as the label") as err:
        composite(start_years, TimeGrid.monthly("07-01"))  # a year column naming the start
    assert "2021-07-01 … 2022-06-30" in str(err.value)
    assert "pass --season-year 2022" in str(err.value)


def test_shift_anchor_keeps_the_label_year_and_the_peak() -> None:
    """Calendar 2023 -> July 2022 – June 2023: the February peak stays, mid-season."""
    obs = _arg_obs()
    cal23 = composite(obs, TimeGrid.monthly(), season_year=2023)
    cal22 = composite(obs, TimeGrid.monthly(), season_year=2022)
    direct = composite(obs, TimeGrid.monthly("07-01"))
    shifted = shift_anchor(cal23, "07-01", previous_season=cal22)
    np.testing.assert_array_equal(shifted.values, direct.values)
    assert (shifted.meta["year"] == 2022).all()
    alone = shift_anchor(cal23, "07-01")  # without the year before: July–December unknown
    np.testing.assert_array_equal(alone.values[..., 6:], direct.values[..., 6:])
    peak = int(np.nanargmax(_ndvi(alone)[0]))
    assert peak == 7 and 121 <= alone.grid.centers[peak] <= 334


def test_detect_flags_a_february_peak_and_the_advice_keeps_it() -> None:
    obs = _arg_obs()
    cal23 = composite(obs, TimeGrid.monthly(), season_year=2023)
    row = detect_season_alignment(cal23).iloc[0]
    assert abs(row["peak_dos"] - 32) <= 5 and row["unaligned"]  # 1 February = day 32
    assert row["suggested_anchor"] == "07-01"
    (found,) = season_findings(cal23)
    assert found.unaligned and found.suggested_anchor == "07-01"
    assert "previous_season=" in found.fix and "next_season" not in found.fix
    cal22 = composite(obs, TimeGrid.monthly(), season_year=2022)
    fixed = shift_anchor(cal23, found.suggested_anchor, previous_season=cal22)
    assert season_findings(fixed) == []
    assert not detect_season_alignment(fixed)["unaligned"].any()
    (as_table,) = season_findings(cal23, source="data/arg.csv", observations=True)
    assert as_table.fix == "cropglobe composite data/arg.csv -o arg_07-01.npz --anchor 07-01"
    (as_series,) = season_findings(cal23, source="arg.npz")
    assert as_series.fix.startswith(
        "cropglobe composite arg.npz -o arg_07-01.npz --anchor 07-01 --wrap-season"
    )


def test_simulated_southern_seasons_are_flagged_and_fixed() -> None:
    ss = simulate_world(["ARG", "AUS", "USA"], 60, random_state=3, season_aligned_south=False,
                        cloud_fraction=0.0)  # fmt: skip
    df = detect_season_alignment(ss).set_index("country")
    assert df.loc["ARG", "unaligned_southern"]
    assert df.loc["AUS", "unaligned_southern"]  # cotton Feb, sugarcane March: not in Dec–Feb
    assert not df.loc["USA", "unaligned_southern"]
    assert df.loc[["ARG", "AUS"], "unaligned"].all()
    assert (df.loc[["ARG", "AUS"], "suggested_anchor"] == "07-01").all()
    found = {f.group: f for f in season_findings(ss)}
    assert found["ARG"].unaligned and found["AUS"].unaligned
    assert "USA" not in found or not found["USA"].unaligned
    for country in ("ARG", "AUS"):
        south = ss.where(country=country)
        for kw in ({}, {"wrap": True}):
            moved = shift_anchor(south, "07-01", **kw)
            peaks = detect_season_alignment(moved).iloc[0]
            assert not peaks["unaligned"], (country, kw, peaks["class_peaks"])
            assert 121 <= peaks["peak_dos"] <= 334
    wrapped = shift_anchor(ss.where(country="ARG"), "07-01", wrap=True)
    assert np.isnan(wrapped.values).mean() < 0.01
    aligned = simulate_world(["ARG"], 60, random_state=3, cloud_fraction=0.0)  # rotated 180 d
    close = np.abs(_ndvi(wrapped) - _ndvi(aligned)) < 0.05
    assert close.mean() > 0.9


def test_peaks_on_the_cut_edge_of_a_window_grid_are_outside() -> None:
    """A May–November series whose NDVI falls from its first step: the peak lies before it."""
    grid = TimeGrid.cropglobe().window(121, 334)
    c = grid.centers
    nd = (0.2 + 0.6 * np.exp(-(((c - 60) / 40) ** 2))).astype(np.float32)  # peak on day 60
    ss = SeriesSet(np.stack([nd, nd, nd])[:, None, :], ("NDVI",), grid,
                   meta=pd.DataFrame({"sample_id": list("abc"), "country": "AUS"}))  # fmt: skip
    (found,) = season_findings(ss)
    assert list(found.outside) == ["unlabelled"]  # although its top (days 123…) is in the window
    assert not found.unaligned  # where the peak lies is unknown: no anchor to suggest
    assert f"covers only days 121–{grid.edges[-1] - 1}" in found.fix
    assert "use the whole-season series" in found.fix


def test_a_curve_rising_where_the_observations_stop_does_not_vote_for_an_anchor() -> None:
    """Observations January–July (Belgium's table): a maize curve still rising in July has its
    peak beyond the data; its green spring cover crop must not make the season look unaligned."""
    grid = TimeGrid.monthly()
    nd = np.array([0.7, 0.75, 0.7, 0.5, 0.4, 0.6, 0.8] + [np.nan] * 5, dtype=np.float32)
    ss = SeriesSet(np.tile(nd, (12, 1, 1)), ("NDVI",), grid, np.zeros(12, int), ("corn",),
                   pd.DataFrame({"sample_id": list("abcdefghijkl"), "country": "BEL"}))  # fmt: skip
    (found,) = season_findings(ss)
    assert not found.unaligned and found.suggested_anchor is None
    assert found.fix.startswith("BEL's observations cover only days 1–212 of the season")
    assert not detect_season_alignment(ss)["unaligned"].any()


def test_a_winter_crop_outside_the_window_gets_a_wider_window() -> None:
    grid = TimeGrid.cropglobe()
    c = grid.centers
    summer = 0.2 + 0.6 * np.exp(-(((c - 200) / 30) ** 2))
    winter = 0.2 + 0.6 * np.exp(-(((c - 100) / 30) ** 2))  # wheat, peak 10 April
    v = np.stack([summer, summer, winter])[:, None, :].astype(np.float32)
    ss = SeriesSet(v, ("NDVI",), grid, np.array([0, 1, 2]), ("corn", "soybeans", "wheat"),
                   pd.DataFrame({"sample_id": list("abc"), "country": "FRA"}))  # fmt: skip
    (found,) = season_findings(ss)
    assert not found.unaligned and found.suggested_anchor is None
    assert list(found.outside) == ["wheat"]
    assert found.class_peaks["wheat"] == pytest.approx(100, abs=3)
    assert found.fix.startswith("a wider window for the models: --window 85-334")


# ----------------------------------------------------------------------------- CLI
def test_cli_composite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import cropglobe.io
    from cropglobe.cli.composite import command

    obs = _two_year_observations()
    monkeypatch.setattr(cropglobe.io, "read_observations", lambda p, **kw: obs, raising=False)
    out = tmp_path / "out.npz"
    res = CliRunner().invoke(
        command,
        [
            "in.parquet",
            "-o",
            str(out),
            "--grid",
            "monthly",
            "--season-year",
            "2024",
            "--window",
            "121-334",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    ss = SeriesSet.load(out)
    assert ss.shape == (1, 2, 7) and ss.grid.kind == "monthly"
    res = CliRunner().invoke(command, ["x", "-o", str(out), "--window", "9-1", "-q"])
    assert res.exit_code == 2 and "--window" in res.output
    res = CliRunner().invoke(command, ["x", "-o", str(out), "--anchor", "13-01", "-q"])
    assert res.exit_code == 2 and "anchor" in res.output


def test_cli_composite_southern_table_by_label_year(tmp_path: Path) -> None:
    """`composite arg.csv --anchor 07-01` reads the year column (2023) as the label year."""
    from click.testing import CliRunner

    from cropglobe.cli.composite import command

    csv = tmp_path / "arg.csv"
    _arg_table().to_csv(csv, index=False)
    out = tmp_path / "a.npz"
    args = [str(csv), "-o", str(out), "--grid", "monthly", "--anchor", "07-01", "-q"]
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 0, res.output
    ss = SeriesSet.load(out)
    assert (ss.meta["year"] == 2022).all() and int(np.argmax(_ndvi(ss)[0])) == 7
    res = CliRunner().invoke(command, [*args, "--season-year", "2023"])
    assert res.exit_code == 2 and "pass --season-year 2022" in res.output


def test_cli_composite_reanchors_a_series(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.composite import command

    obs = _arg_obs()
    cal23, cal22 = tmp_path / "cal23.npz", tmp_path / "cal22.npz"
    composite(obs, TimeGrid.monthly(), season_year=2023).save(cal23)
    composite(obs, TimeGrid.monthly(), season_year=2022).save(cal22)
    out = tmp_path / "jul.npz"
    base = [str(cal23), "-o", str(out), "--anchor", "07-01", "-q"]
    res = CliRunner().invoke(command, base)
    assert res.exit_code == 2
    assert "pass --previous-season FILE" in res.output and "--wrap-season" in res.output
    res = CliRunner().invoke(command, [*base, "--next-season", str(cal22)])
    assert res.exit_code == 2 and "--next-season is not used" in res.output
    res = CliRunner().invoke(command, [*base, "--season-year", "2022"])
    assert res.exit_code == 2 and "--season-year applies only to observation tables" in res.output
    res = CliRunner().invoke(command, [*base, "--previous-season", str(cal22)])
    assert res.exit_code == 0, res.output
    direct = composite(obs, TimeGrid.monthly("07-01"))
    got = SeriesSet.load(out)
    np.testing.assert_array_equal(got.values, direct.values)
    assert (got.meta["year"] == 2022).all() and got.grid.same_axis(direct.grid)
    res = CliRunner().invoke(command, [*base, "--wrap-season", "--grid", "5-day"])
    assert res.exit_code == 0, res.output
    five = SeriesSet.load(out)
    assert five.grid.kind == "5-day" and five.grid.anchor == "07-01"
    peak = five.grid.centers[int(np.nanargmax(_ndvi(five)[0]))]
    assert 121 <= peak <= 334


# ----------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_worldcereal_dekads_to_monthly(shared_data: Path) -> None:
    path = shared_data / "worldcereal" / "raw_2023_FRA_LPIS_POLY_110_dekad.geoparquet"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    raw_bands = [f"S2-L2A-B{b}" for b in ("02", "03", "04", "05", "06", "07", "08", "11", "12")]
    df = pd.read_parquet(path, columns=["sample_id", "timestamp", *raw_bands])
    ids = np.sort(df["sample_id"].unique())
    table = pd.DataFrame(
        {"sample": np.searchsorted(ids, df["sample_id"]), "date": df["timestamp"].to_numpy()}
    )
    bands = tuple(canonical_band(b) for b in raw_bands)
    for raw, band in zip(raw_bands, bands, strict=True):
        col = df[raw].to_numpy().astype(np.float32)
        col[df[raw].to_numpy() == 65535] = np.nan
        table[band] = col
    labels_csv = pd.read_csv(shared_data / "worldcereal" / "samples.csv")
    crop = pd.Series(ids).map(labels_csv.set_index("sample_id")["crop6"]).fillna("other")
    classes = ("corn", "soybeans", "wheat", "other")
    samples = pd.DataFrame(
        {"sample_id": ids, "label": [classes.index(c) for c in crop], "country": "FRA"}
    )
    obs = Observations(table, bands, samples, classes)
    with pytest.raises(DataFormatError, match="1 of 500 samples have no valid observation"):
        composite(obs, TimeGrid.dekads())  # one field has no Sentinel-2 data at all
    dekad = composite(obs, TimeGrid.dekads(), allow_empty=True)  # dekad dates map one to one
    assert (dekad.meta["year"] == 2023).all()  # Sep 2022 … Jan 2024: most in 2023
    monthly = resample(dekad, TimeGrid.monthly())
    direct = composite(obs, TimeGrid.monthly(), allow_empty=True)
    assert direct.shape == (500, 9, 12)
    assert int(direct.empty_samples().sum()) == 1
    assert monthly.shape == (500, 9, 12)
    nd = (direct.values[:, 6] - direct.values[:, 2]) / (direct.values[:, 6] + direct.values[:, 2])
    corn = direct.labels == 0
    assert corn.sum() == 88
    valid = ~np.isnan(nd[corn])
    curve = np.where(valid, nd[corn], 0).sum(0) / valid.sum(0)
    assert int(np.argmax(curve)) in (6, 7)  # July or August
    assert curve.max() > 0.7
    # Medians of dekads vs median of the month's dates agree closely where both are valid.
    both = ~np.isnan(monthly.values) & ~np.isnan(direct.values)
    assert both.mean() > 0.5
    np.testing.assert_allclose(monthly.values[both], direct.values[both], rtol=0.6)
    filled = composite(obs, TimeGrid.cropglobe(), fill=True, max_gap_days=30, allow_empty=True)
    assert filled.missing_fraction() < direct.missing_fraction() + 0.5
    alignment = detect_season_alignment(direct)
    assert not alignment["unaligned_southern"].any()


def test_fill_gaps_non_contiguous_input() -> None:
    """A band subset by fancy indexing is not C-ordered; filling must still happen."""
    from cropglobe.composite import fill_gaps
    from cropglobe.series import TimeGrid

    v = np.arange(5 * 10 * 73, dtype=np.float32).reshape(5, 10, 73)
    v[0, 0, 30] = np.nan
    sub = v[:, np.arange(10), :]
    out = fill_gaps(sub, TimeGrid.cropglobe())
    assert out[0, 0, 30] == 30.0 and not np.isnan(out).any()


@pytest.mark.parametrize("reducer", ["median", "mean"])
def test_composite_dense_equals_composite_arrays(reducer: str) -> None:
    from cropglobe.composite import composite_dense

    rng = np.random.default_rng(5)
    n_dates, c, p = 40, 3, 50
    dos = np.sort(rng.choice(np.arange(1, 366), n_dates, replace=False))
    dos[5] = dos[4]  # two acquisitions on one day
    values = rng.normal(1000, 200, (n_dates, c, p)).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    valid = rng.random((n_dates, p)) > 0.3
    grid = TimeGrid.regular(16)
    dense = composite_dense(values, valid, dos, grid, reducer=reducer)
    sample = np.repeat(np.arange(p), n_dates)
    sample[~valid.T.reshape(-1)] = -1
    rows = values.transpose(2, 0, 1).reshape(p * n_dates, c)
    table = composite_arrays(sample, np.tile(dos, p), rows, p, grid, reducer=reducer)
    np.testing.assert_array_equal(dense, table)
    assert np.isnan(dense).any() and not np.isnan(dense).all()


def test_composite_dense_bad_input() -> None:
    from cropglobe.composite import composite_dense

    grid = TimeGrid.regular(16)
    with pytest.raises(DataFormatError, match="dates, bands, pixels"):
        composite_dense(np.zeros((3, 4)), None, [1, 2, 3], grid)
    with pytest.raises(DataFormatError, match="dos"):
        composite_dense(np.zeros((3, 2, 4)), np.ones((3, 5), bool), [1, 2, 3], grid)
    with pytest.raises(ParameterError, match="reducer"):
        composite_dense(np.zeros((3, 2, 4)), None, [1, 2, 3], grid, reducer="max")  # type: ignore[arg-type]


def test_composite_of_no_observations_raises() -> None:
    obs = _obs([], 0)
    obs.attrs["source"] = "empty.csv"
    for allow in (False, True):
        with pytest.raises(DataFormatError, match=r"no observations in empty\.csv \(0 samples"):
            composite(obs, TimeGrid.monthly(), allow_empty=allow)


def test_cli_composite_of_a_header_only_table_is_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.main import cli

    src = tmp_path / "header_only.csv"
    src.write_text("sample_id,date,B04\n")
    out = tmp_path / "h.npz"
    res = CliRunner().invoke(cli, ["composite", str(src), "-o", str(out)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no observations in")
    assert "header_only.csv" in lines[0] and not out.exists()


@pytest.mark.parametrize(
    ("grid", "days"),
    [
        (TimeGrid.cropglobe(), 35.0),  # a month between observations, wherever in the bins
        (TimeGrid.regular(10), 40.0),
        (TimeGrid.regular(16), 46.0),  # one missing 16-day step (two are 48 days)
        (TimeGrid.monthly(), 62.0),  # one missing month (July-August: 31 + 31 days)
    ],
)
def test_auto_max_gap_bridges_one_missing_step_on_coarse_grids(grid, days) -> None:
    from cropglobe.composite import auto_max_gap, fill_gaps

    assert auto_max_gap(grid) == days
    # on the monthly grid a single missing month is filled, two in a row are not
    if grid.kind == "monthly":
        v = np.arange(12, dtype=np.float32)[None, :].copy()
        v[0, 3] = np.nan
        v[0, 7:9] = np.nan
        out = fill_gaps(v, grid, max_gap_days=auto_max_gap(grid))
        assert np.isfinite(out[0, 3]) and np.isnan(out[0, 7:9]).all()


def _invoke(args: list[str]) -> tuple[int, str]:
    from click.testing import CliRunner

    from cropglobe.cli.composite import command

    res = CliRunner().invoke(command, [*args, "-q"])
    return res.exit_code, res.output


def test_cli_composite_keeps_a_series_anchor_unless_anchor_is_given(tmp_path: Path) -> None:
    obs = _arg_obs()
    jul = composite(obs, TimeGrid.monthly("07-01"))
    src, out = tmp_path / "jul.npz", tmp_path / "out.npz"
    jul.save(src)
    for extra in ([], ["--where", "country=ARG"], ["--grid", "monthly"], ["--window", "121-300"]):
        code, text = _invoke([str(src), "-o", str(out), *extra])
        assert code == 0, (extra, text)
        got = SeriesSet.load(out)
        assert got.grid.anchor == "07-01", extra
    np.testing.assert_array_equal(got.values, select_window(jul, 121, 300).values)
    # a series cut to a window is written as it is (no whole season needed: nothing shifts)
    cut = tmp_path / "cut.npz"
    select_window(composite(obs, TimeGrid.cropglobe(), season_year=2023), 121, 334).save(cut)
    code, text = _invoke([str(cut), "-o", str(out)])
    assert code == 0, text
    assert SeriesSet.load(out).n_steps == 43
    # an explicit --anchor 01-01 still re-anchors (and asks for the next season)
    code, text = _invoke([str(src), "-o", str(out), "--anchor", "01-01"])
    assert code == 2 and "--next-season FILE" in text


def test_shift_anchor_to_the_same_anchor_keeps_a_cut_series() -> None:
    cut = select_window(composite(_arg_obs(), TimeGrid.cropglobe(), season_year=2023), 121, 334)
    same = shift_anchor(cut, "01-01")
    assert same.grid.same_axis(cut.grid)
    np.testing.assert_array_equal(same.values, cut.values)


def test_cli_composite_max_gap_fills_a_series_and_records_it(tmp_path: Path) -> None:
    grid = TimeGrid.monthly()
    v = np.arange(12, dtype=np.float32)[None, None].repeat(2, axis=1) + 100
    v[..., 5] = np.nan  # one missing month
    src, out = tmp_path / "gap.npz", tmp_path / "out.npz"
    _series(v, grid).save(src)
    code, text = _invoke([str(src), "-o", str(out), "--max-gap", "62"])
    assert code == 0, text
    got = SeriesSet.load(out)
    np.testing.assert_allclose(got.values[0, :, 5], 105.0)
    assert got.attrs["composite"]["fill"] is True
    assert got.attrs["composite"]["max_gap_days"] == 62
    code, text = _invoke([str(src), "-o", str(out)])  # no filling asked for: kept as it is
    assert code == 0 and np.isnan(SeriesSet.load(out).values[0, :, 5]).all()
    code, text = _invoke([str(src), "-o", str(out), "--no-fill", "--max-gap", "62"])
    assert code == 2 and "--max-gap 62" in text and "--no-fill" in text


def _two_country_series(year: int) -> SeriesSet:
    grid = TimeGrid.monthly()
    n = 6
    v = np.linspace(0, 1, 12, dtype=np.float32)[None, None].repeat(n, 0).repeat(2, 1)
    v = v + np.arange(n, dtype=np.float32)[:, None, None] + year
    meta = pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(n)], "country": ["ARG"] * 3 + ["AUS"] * 3,
         "year": year}
    )  # fmt: skip
    labels = np.array([0, 1, 0, 1, 1, 0])
    return SeriesSet(v, ("B04", "B08"), grid, labels, ("corn", "soybeans"), meta)


def test_cli_neighbour_season_takes_where_and_must_hold_the_same_samples(tmp_path: Path) -> None:
    cur, prev = _two_country_series(2023), _two_country_series(2022)
    f_cur, f_prev, out = tmp_path / "cur.npz", tmp_path / "prev.npz", tmp_path / "out.npz"
    cur.save(f_cur)
    prev.save(f_prev)
    args = [str(f_cur), "-o", str(out), "--anchor", "07-01", "--where", "country=ARG"]
    code, text = _invoke([*args, "--previous-season", str(f_prev)])
    assert code == 0, text
    want = shift_anchor(
        cur.where(country="ARG"), "07-01", previous_season=prev.where(country="ARG")
    )
    np.testing.assert_array_equal(SeriesSet.load(out).values, want.values)
    # Australia's previous season for Argentina's samples: refused, naming the option
    f_aus = tmp_path / "aus.npz"
    aus = prev.where(country="AUS")
    aus.save(f_aus)
    code, text = _invoke([*args, "--previous-season", str(f_aus)])
    assert code == 2 and f"--previous-season {f_aus}: column 'country'" in text, text
    f_arg = tmp_path / "arg.npz"
    cur.where(country="ARG").save(f_arg)
    code, text = _invoke([str(f_arg), "-o", str(out), "--anchor", "07-01",
                          "--previous-season", str(f_aus)])  # fmt: skip
    assert code == 2 and f"--previous-season {f_aus} holds other samples than {f_arg}" in text
    assert "previous_season" not in text and len(text.strip().splitlines()) == 1


def test_shift_anchor_matches_the_neighbour_season_by_sample() -> None:
    cur, prev = _two_country_series(2023), _two_country_series(2022)
    want = shift_anchor(cur, "07-01", previous_season=prev)
    shuffled = prev.subset(np.array([5, 4, 3, 2, 1, 0]))
    got = shift_anchor(cur, "07-01", previous_season=shuffled)  # matched by sample_id
    np.testing.assert_array_equal(got.values, want.values)
    with pytest.raises(DataFormatError, match="previous_season holds other samples than ss"):
        shift_anchor(
            cur.subset(np.arange(3)), "07-01", previous_season=prev.subset(np.arange(3, 6))
        )
    # without sample ids: the same number of samples with the same labels
    bare_cur = dataclasses.replace(cur, meta=cur.meta.drop(columns=["sample_id"]))
    bare_prev = dataclasses.replace(prev, meta=prev.meta.drop(columns=["sample_id"]))
    shift_anchor(bare_cur, "07-01", previous_season=bare_prev)
    other = dataclasses.replace(bare_prev, labels=bare_prev.labels[::-1].copy())
    with pytest.raises(DataFormatError, match="with other labels"):
        shift_anchor(bare_cur, "07-01", previous_season=other)
    with pytest.raises(DataFormatError, match="holds 3 samples, expected the same 6"):
        shift_anchor(bare_cur, "07-01", previous_season=bare_prev.subset(np.arange(3)))


def test_a_peak_is_the_centre_of_the_highest_contiguous_run() -> None:
    centers = TimeGrid.monthly().centers
    # highs in April–May (0.88, 0.90) and November (0.86), the minimum in August: the
    # November bin is within 20 % of the amplitude too, but another peak
    two = np.array([[0.3, 0.4, 0.6, 0.88, 0.9, 0.7, 0.4, 0.2, 0.4, 0.7, 0.86, 0.5]])
    want = round((centers[3] + centers[4]) / 2, 1)
    assert cmp._top_centre(two, centers, whole=False)[0] == want
    assert cmp._top_centre(two, centers, whole=True)[0] == pytest.approx(want, abs=0.6)
    # a December–January top wraps around the turn of the year on a whole-season grid
    turn = np.array([[0.9, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.5, 0.88]])
    got = cmp._top_centre(turn, centers, whole=True)[0]
    assert got > 360 or got < 5
    # a missing bin inside the run neither counts nor ends it
    gap = two.copy()
    gap[0, 3], gap[0, 5] = -np.inf, 0.85
    assert cmp._top_centre(gap, centers, whole=False)[0] == round((centers[4] + centers[5]) / 2, 1)


def _feb_peak_series(labels: list[int], countries: list[str]) -> SeriesSet:
    grid = TimeGrid.monthly()
    feb = 0.2 + 0.6 * np.exp(-(((grid.centers - 45) / 30) ** 2))  # peaks in February
    v = np.repeat(feb[None, None].astype(np.float32), len(labels), axis=0)
    meta = pd.DataFrame({"sample_id": [str(i) for i in range(len(labels))], "country": countries})
    return SeriesSet(v, ("NDVI",), grid, np.array(labels), ("corn", "other"), meta)


def test_a_catch_all_or_unlabelled_only_group_does_not_vote_for_an_anchor() -> None:
    # FRA: 12 'other' and 3 corn (left out, < 10); BRA: unlabelled only; both peak in February
    labels = [1] * 12 + [0] * 3 + [-1] * 12
    ss = _feb_peak_series(labels, ["FRA"] * 15 + ["BRA"] * 12)
    rows = detect_season_alignment(ss).set_index("country")
    assert not rows["unaligned"].any() and (rows["suggested_anchor"] == "").all()
    assert "no checkable class" in rows.loc["FRA", "note"]
    found = {f.group: f for f in season_findings(ss)}
    assert set(found) == {"FRA", "BRA"}
    assert not any(f.unaligned or f.outside for f in found.values())
    assert "only the catch-all class 'other'" in found["FRA"].message
    assert "only unlabelled samples" in found["BRA"].message
    # a wholly unlabelled dataset still has a season of its own: it votes
    bare = _feb_peak_series([-1] * 12, ["ARG"] * 12)
    (only,) = season_findings(bare)
    assert only.unaligned and only.suggested_anchor == "07-01"


def test_the_season_year_hint_does_not_loop_over_several_seasons(tmp_path: Path) -> None:
    # a year column naming the year each season STARTS: 2022 for July 2022 – June 2023 (samples
    # 0, 1), 2021 for July 2021 – June 2022 (samples 2, 3, observed a year earlier)
    obs = _arg_obs()
    table = obs.table.copy()
    early = table["sample"].isin([2, 3])
    table.loc[early, "date"] = table.loc[early, "date"] - pd.Timedelta(days=365)
    samples = obs.samples.assign(year=np.where(obs.samples.index.isin([2, 3]), 2021, 2022))
    start = Observations(table, obs.bands, samples, obs.classes)
    grid = TimeGrid.monthly("07-01")
    for season_year in (None, 2021, 2022):
        with pytest.raises(DataFormatError) as err:
            composite(start, grid, season_year=season_year)
        text = str(err.value)
        assert "no single --season-year" in text and "pass --season-year" not in text, text
        assert "--where year=2021 --season-year 2021" in text
        assert "--where year=2022 --season-year 2022" in text
        assert "fix the year column (add 1)" in text
    # the fixes it names work
    one = composite(start.where(year=2021), grid, season_year=2021)
    assert one.n_samples == 2 and (one.meta["year"] == 2021).all()
    fixed = Observations(table, obs.bands, samples.assign(year=samples["year"] + 1), obs.classes)
    assert composite(fixed, grid).n_samples == 4


def _monthly_table(path: Path, months: range | list[int]) -> Path:
    """Two corn samples observed on the 1st of the given months of 2023, NDVI rising."""
    rows = [
        {
            "sample_id": s,
            "date": f"2023-{m:02d}-01",
            "label": "corn",
            "B04": 500.0,
            "B08": 1000.0 + 50 * m + (10 if s == "b" else 0),
        }
        for s in ("a", "b")
        for m in months
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_observations_a_month_apart_are_bridged_on_the_5_day_grid(tmp_path) -> None:
    from cropglobe.io import read_dataset

    obs = read_dataset(_monthly_table(tmp_path / "m.csv", range(1, 13)))
    ss = composite(obs, TimeGrid.cropglobe(), fill=True)
    # 1 March (bin 56-60) to 1 April (bin 91-95): 31 days, 35 between the bins' centres
    assert not np.isnan(ss.values[:, :, :67]).any()  # up to 1 December's bin
    comp = ss.attrs["composite"]
    assert comp["max_gap_days"] == 35.0
    size = 2 * 2 * 73  # samples × bands × bins
    observed, held = 12 * 2 * 2, (73 - 67) * 2 * 2  # December's bin is the last observed
    assert comp["held_fraction"] == pytest.approx(held / size, abs=1e-6)
    assert comp["filled_fraction"] == pytest.approx((size - observed - held) / size, abs=1e-6)
    # the same values as filling in one pass
    raw = composite(obs, TimeGrid.cropglobe(), fill=False)
    np.testing.assert_array_equal(ss.values, fill_gaps(raw.values, raw.grid, max_gap_days=35.0))


def test_held_ends_are_reported_and_not_timed_as_a_season(tmp_path) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.main import cli

    table = _monthly_table(tmp_path / "mayjul.csv", [5, 6, 7])
    res = CliRunner().invoke(cli, ["composite", str(table), "-o", str(tmp_path / "s.npz")])
    assert res.exit_code == 0, res.output
    assert "0.0% missing, 13.7% gap-filled, 82.2% held at the series' ends" in res.output
    res = CliRunner().invoke(cli, ["info", str(tmp_path / "s.npz")])
    assert "not observed: 13.7% gap-filled, 82.2% held at the series' ends" in res.output
    # the held July plateau is no peak: the curve still rises where the observations stop
    assert "corn day 178 (Jun, a step at an end of the data)" in res.output, res.output
    assert "observations cover only days 121–185 of the season" in res.output


def test_unheld_blanks_repeated_ends_and_keeps_their_observed_value() -> None:
    c = np.array([[1, 1, 1, 2, 3, 4, 4, 4], [5, 6, 7, 8, 9, 9, 9, 9], [3.0] * 8])
    got = cmp._unheld(c)
    nan = np.nan
    np.testing.assert_array_equal(got[0], [nan, nan, 1, 2, 3, 4, nan, nan])
    np.testing.assert_array_equal(got[1], [5, 6, 7, 8, 9, nan, nan, nan])
    np.testing.assert_array_equal(got[2], c[2])  # a constant series is left as it is
