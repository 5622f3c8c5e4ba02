"""The synthetic CropGlobe-like world generator and its CLI command."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cropglobe import CROPGLOBE_CLASSES, CROPGLOBE_COUNTRIES, SeriesSet, TimeGrid
from cropglobe.bands import S2_BANDS, ndvi
from cropglobe.classes import collapse_to_target, country
from cropglobe.errors import BandError, CropGlobeError, DataFormatError, LabelError
from cropglobe.simulate import (
    CROP_CALENDARS,
    SOUTH_ROTATION_BINS,
    crop_calendar,
    simulate_world,
    write_world,
)

GRID = TimeGrid.cropglobe()


@pytest.fixture(scope="module")
def world() -> SeriesSet:
    return simulate_world(n_per_country=300, random_state=0)


def _median_ndvi(ss: SeriesSet, cc: str, cls: str) -> np.ndarray:
    sub = ss.where(country=cc)
    sub = sub.subset(sub.labels == CROPGLOBE_CLASSES.index(cls))
    return np.nanmedian(ndvi(sub.values, sub.bands), axis=0)


def _peak_day(curve: np.ndarray) -> float:
    return float(GRID.centers[int(np.nanargmax(curve))])


# ---------------------------------------------------------------------------- contract
def test_shapes_dtypes_grid_meta_attrs(world: SeriesSet) -> None:
    n = 300 * len(CROPGLOBE_COUNTRIES)
    assert world.shape == (n, 10, 73)
    assert world.values.dtype == np.float32 and world.labels.dtype == np.int64
    assert world.bands == S2_BANDS
    assert world.grid.same_axis(GRID)
    assert world.classes == CROPGLOBE_CLASSES
    assert list(world.meta.columns) == ["sample_id", "country", "region", "year", "lon", "lat"]
    assert world.meta["sample_id"].is_unique
    assert set(world.meta["country"]) == set(CROPGLOBE_COUNTRIES)
    assert (world.meta["year"] == 2023).all()
    assert world.meta.groupby("country")["region"].nunique().between(2, 5).all()
    attrs = world.attrs
    assert attrs["synthetic"] is True and attrs["generator"] == "cropglobe.simulate"
    assert attrs["random_state"] == 0 and attrs["phenology_shift"] == {}
    json.dumps(attrs)  # JSON-ready
    world.validate("simulated")  # finite or NaN, no empty sample


def test_lon_lat_near_country_centroid(world: SeriesSet) -> None:
    for cc in CROPGLOBE_COUNTRIES:
        m = world.meta[world.meta["country"] == cc]
        c = country(cc)
        assert abs(m["lat"].mean() - c.lat) < 1.0 and abs(m["lon"].mean() - c.lon) < 1.0
        assert m["lat"].std() < 3.0


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a = simulate_world(["FRA", "ARG"], 120, random_state=5)
    b = simulate_world(["FRA", "ARG"], 120, random_state=5)
    c = simulate_world(["FRA", "ARG"], 120, random_state=6)
    np.testing.assert_array_equal(a.values, b.values)  # NaN positions included
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.meta.equals(b.meta)
    assert not np.array_equal(a.values, c.values, equal_nan=True)


def test_a_country_does_not_depend_on_the_others() -> None:
    alone = simulate_world(["BEL"], 100, random_state=3)
    together = simulate_world(["FRA", "BEL"], 100, random_state=3).where(country="BEL")
    np.testing.assert_array_equal(alone.values, together.values)


def test_class_availability_matches_the_country_table(world: SeriesSet) -> None:
    for cc in CROPGLOBE_COUNTRIES:
        present = set(world.where(country=cc).label_names())
        assert present == set(country(cc).classes), cc
    assert set(world.where(country="AUS").label_names()) == {"sugarcane", "cotton", "other"}
    assert set(world.where(country="CHN").label_names()) == {"corn", "soybeans", "rice", "other"}
    assert "wheat" not in set(world.where(country="ARG").label_names())


def test_class_counts_are_exact_and_weights_apply() -> None:
    ss = simulate_world(["FRA"], 100, random_state=0, class_weights={"corn": 1, "wheat": 3})
    counts = ss.class_counts()
    assert counts.to_dict() == {"corn": 25, "wheat": 75}
    with pytest.raises(LabelError, match="class_weights"):
        simulate_world(["AUS"], 10, class_weights={"corn": 1.0})
    with pytest.raises(LabelError, match="unknown class"):
        simulate_world(["FRA"], 10, class_weights={"maize": 1.0})


def test_crop_calendar_table_covers_every_class_with_sources() -> None:
    for cc in CROPGLOBE_COUNTRIES:
        cal = crop_calendar(cc)
        assert set(cal["class"]) == set(country(cc).classes), cc
        assert cal[["sow", "green", "peak", "harvest"]].stack().between(1, 365).all()
        assert (cal["source"].str.len() > 10).all()
        np.testing.assert_allclose(cal.groupby("class")["weight"].sum(), 1.0)
    us = crop_calendar("US").set_index("class")
    assert us.loc["corn", "peak_date"].startswith("Jul")
    assert len({e.country for e in CROP_CALENDARS}) == 8
    with pytest.raises(DataFormatError, match="CAN"):
        crop_calendar("CAN")


# ---------------------------------------------------------------------------- physics
def test_reflectance_range_and_ndvi_levels(world: SeriesSet) -> None:
    v = world.values[np.isfinite(world.values)]
    assert v.min() >= 0 and v.max() <= 10_000
    corn = _median_ndvi(world, "USA", "corn")
    july_aug = (GRID.centers >= 182) & (GRID.centers <= 243)
    assert np.nanmax(corn[july_aug]) > 0.7
    april = (GRID.centers >= 91) & (GRID.centers <= 120)
    assert np.nanmax(corn[april]) < 0.3  # bare soil before emergence
    assert 182 <= _peak_day(corn) <= 243  # US corn peaks in July–August
    wheat = _median_ndvi(world, "FRA", "wheat")
    assert 100 <= _peak_day(wheat) <= 160  # winter wheat peaks April–early June
    sub = world.where(country="USA")
    red = sub.values[:, S2_BANDS.index("B04")]
    nir = sub.values[:, S2_BANDS.index("B08")]
    assert 1500 < np.nanmedian(nir) < 4500 and 200 < np.nanmedian(red) < 2000


def test_rice_shows_flooding_before_canopy_closure(world: SeriesSet) -> None:
    rice, corn = _median_ndvi(world, "CHN", "rice"), _median_ndvi(world, "CHN", "corn")
    transplanting = (GRID.centers >= 130) & (GRID.centers <= 160)
    assert np.nanmin(rice[transplanting]) < 0.05 < np.nanmin(corn[transplanting])


def test_classes_separable_within_a_country_and_transfer_degrades() -> None:
    ss = simulate_world(["FRA", "BEL", "ARG"], 400, random_state=0)
    v = ss.values[:, :, 24:66].reshape(len(ss), 10, 14, 3)
    with warnings.catch_warnings():  # 3-bin blocks without any valid observation give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        x = np.nanmean(v, axis=3)
    x = np.where(np.isnan(x), np.nanmean(x, axis=2, keepdims=True), x).reshape(len(ss), -1)
    x /= 10_000.0
    cc, y = ss.meta["country"].to_numpy(), ss.labels

    def knn(train: np.ndarray, query: np.ndarray, k: int = 5) -> np.ndarray:
        xt, yt = x[train], y[train]
        d = (x[query] ** 2).sum(1)[:, None] - 2 * x[query] @ xt.T + (xt**2).sum(1)[None]
        votes = yt[np.argsort(d, axis=1)[:, :k]]
        return np.array([np.bincount(r, minlength=7).argmax() for r in votes])

    fra = cc == "FRA"
    half = np.arange(len(y)) % 2 == 0
    within = float((knn(fra & half, fra & ~half) == y[fra & ~half]).mean())
    acc = {}
    for target in ("BEL", "ARG"):
        m = (cc == target) & np.isin(y, np.unique(y[fra]))
        acc[target] = float((collapse_to_target(knn(fra, m), target) == y[m]).mean())
    assert within > 0.65
    assert acc["BEL"] > acc["ARG"] + 0.05  # cross-country beats cross-hemisphere


# ---------------------------------------------------------------------------- knobs
def test_phenology_shift_moves_the_peak() -> None:
    base = simulate_world(["USA"], 300, random_state=1, cloud_fraction=0.0)
    late = simulate_world(["USA"], 300, random_state=1, cloud_fraction=0.0,
                          phenology_shift={"USA": 30})  # fmt: skip
    assert late.attrs["phenology_shift"] == {"USA": 30.0}
    for cls in ("corn", "soybeans"):
        moved = _peak_day(_median_ndvi(late, "USA", cls)) - _peak_day(
            _median_ndvi(base, "USA", cls)
        )
        assert 20 <= moved <= 40, (cls, moved)


def test_southern_alignment_rotates_half_a_year() -> None:
    kw = {"n_per_country": 200, "random_state": 2}
    aligned = simulate_world(["ARG", "FRA"], season_aligned_south=True, **kw)
    calendar = simulate_world(["ARG", "FRA"], season_aligned_south=False, **kw)
    a, c = aligned.where(country="ARG"), calendar.where(country="ARG")
    np.testing.assert_array_equal(a.values, np.roll(c.values, -SOUTH_ROTATION_BINS, axis=-1))
    np.testing.assert_array_equal(  # the north is untouched
        aligned.where(country="FRA").values, calendar.where(country="FRA").values
    )
    peak_cal = _peak_day(_median_ndvi(calendar, "ARG", "soybeans"))
    peak_al = _peak_day(_median_ndvi(aligned, "ARG", "soybeans"))
    assert 20 <= peak_cal <= 80  # February: southern summer
    assert 190 <= peak_al <= 250  # on the northern summer window after rotation
    assert abs((peak_al - peak_cal) % 365 - 180) <= 10
    assert aligned.attrs["south_rotation_days"] == 180
    assert calendar.attrs["south_rotation_days"] == 0


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.6])
def test_cloud_fraction_sets_the_missing_share(fraction: float) -> None:
    ss = simulate_world(["NLD"], 300, random_state=0, cloud_fraction=fraction)
    expected = fraction * (1 - 0.1)
    assert ss.missing_fraction() == pytest.approx(expected, abs=0.02)
    assert not ss.empty_samples().any()


def test_residual_clouds_are_bright_and_noise_free_option() -> None:
    clean = simulate_world(["FRA"], 100, random_state=0, cloud_fraction=0.0, noise=0.0)
    hazy = simulate_world(["FRA"], 100, random_state=0, cloud_fraction=0.5, residual_cloud=1.0,
                          noise=0.0)  # fmt: skip
    assert clean.missing_fraction() == 0 and hazy.missing_fraction() == 0
    blue = S2_BANDS.index("B02")
    assert np.median(hazy.values[:, blue]) > np.median(clean.values[:, blue]) + 300


def test_band_selection_and_ndvi_band() -> None:
    ss = simulate_world(["GBR"], 50, random_state=0, bands=["B8", "red", "NDVI"])
    assert ss.bands == ("B08", "B04", "NDVI")
    full = simulate_world(["GBR"], 50, random_state=0)
    np.testing.assert_array_equal(ss.values[:, 0], full.values[:, S2_BANDS.index("B08")])
    nd = ss.values[:, 2]
    assert np.nanmin(nd) >= -1 and np.nanmax(nd) <= 1
    np.testing.assert_allclose(nd, ndvi(full.values, full.bands), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"countries": ["FRA", "XYZ"]}, DataFormatError, "XYZ"),
        ({"countries": ["FRA", "FR"]}, DataFormatError, "repeat"),
        ({"n_per_country": 0}, DataFormatError, "n_per_country"),
        ({"cloud_fraction": 1.0}, DataFormatError, "cloud_fraction"),
        ({"residual_cloud": -0.1}, DataFormatError, "residual_cloud"),
        ({"noise": -1.0}, DataFormatError, "noise"),
        ({"phenology_shift": {"AUS": 10}, "countries": ["FRA"]}, DataFormatError, "AUS"),
        ({"phenology_shift": {"FRA": "late"}, "countries": ["FRA"]}, DataFormatError, "days"),
        ({"bands": ["B02", "VV"]}, BandError, "VV"),
        ({"random_state": "zero"}, DataFormatError, "random_state"),
    ],
)
def test_bad_arguments_raise_one_line_errors(
    kwargs: dict[str, object], error: type[CropGlobeError], match: str
) -> None:
    kw: dict[str, object] = {"countries": ["FRA"], "n_per_country": 10, **kwargs}
    with pytest.raises(error, match=match) as info:
        simulate_world(**kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_generator_and_comma_string_inputs() -> None:
    a = simulate_world("FRA,BEL", 20, random_state=np.random.default_rng(0))
    assert a.attrs["random_state"] is None and list(a.meta["country"].unique()) == ["FRA", "BEL"]


# ---------------------------------------------------------------------------- files
def test_write_read_round_trip_in_the_release_layout(tmp_path: Path) -> None:
    io = pytest.importorskip("cropglobe.io.cropglobe_npz", reason="the CropGlobe layout reader")
    ss = simulate_world(["AUS", "FRA"], 60, random_state=4)
    paths = write_world(ss, tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert names == [
        "Median/median_S2_AUS_month5-11_day5.npz",
        "Median/median_S2_FRA_month5-11_day5.npz",
        "for_CropNet/median_S2_AUS_month1-12_day5.npz",
        "for_CropNet/median_S2_FRA_month1-12_day5.npz",
    ]
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            assert z["fea"].dtype == np.float32 and z["lbl"].dtype == np.int64
            blob = json.loads(bytes(z["meta_json"]).decode())
        assert blob["attrs"]["synthetic"] is True
        assert blob["attrs"]["generator"] == "cropglobe.simulate"
    back = io.read_cropglobe(tmp_path, ["AUS", "FRA"])
    np.testing.assert_array_equal(back.values, ss.values)
    np.testing.assert_array_equal(back.labels, ss.labels)
    assert back.attrs["synthetic"] is True
    assert list(back.meta["region"]) == list(ss.meta["region"])
    maynov = io.read_cropglobe(tmp_path, "FRA", kind="median_maynov")
    assert maynov.shape == (60, 10, 43) and maynov.attrs["synthetic"] is True


# ---------------------------------------------------------------------------- CLI
def test_cli_writes_the_layout_and_prints_a_summary(tmp_path: Path) -> None:
    from cropglobe.cli.main import cli

    out = tmp_path / "world"
    args = ["simulate", "-q", "-o", str(out), "--countries", "FRA,AUS", "--n-per-country", "40",
            "--seed", "3", "--shift", "AUS=-20", "--calendar-months-south"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    assert "FRA" in result.output and "sugarcane" in result.output
    assert (out / "for_CropNet" / "median_S2_AUS_month1-12_day5.npz").is_file()
    assert (out / "Median" / "median_S2_FRA_month5-11_day5.npz").is_file()
    with np.load(out / "for_CropNet" / "median_S2_AUS_month1-12_day5.npz") as z:
        attrs = json.loads(bytes(z["meta_json"]).decode())["attrs"]
    assert attrs["phenology_shift"] == {"AUS": -20.0}
    assert attrs["season_aligned_south"] is False and attrs["random_state"] == 3
    # the same countries again (ISO2 accepted) overwrite; a subset would mix two worlds
    again = ["simulate", "-q", "-o", str(out), "--n-per-country", "40"]
    assert CliRunner().invoke(cli, [*again, "--countries", "FR,AU"]).exit_code == 0
    result = CliRunner().invoke(cli, [*again, "--countries", "FRA"])
    assert result.exit_code == 2 and "countries ['AUS'] that this one does not" in result.output


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--shift", "ARG30"], "COUNTRY=DAYS"),
        (["--shift", "ARG=soon"], "COUNTRY=DAYS"),
        (["--countries", "FRA,XYZ"], "XYZ"),
        (["--countries", "FRA", "--shift", "ARG=5"], "not simulated"),
        (["--cloud-fraction", "1.5"], "cloud_fraction"),
    ],
)
def test_cli_bad_input_gives_one_error_line_and_exit_2(
    tmp_path: Path, extra: list[str], match: str
) -> None:
    from cropglobe.cli.main import cli

    result = CliRunner().invoke(cli, ["simulate", "-q", "-o", str(tmp_path / "w"), *extra])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and match in lines[0]
    assert not (tmp_path / "w").exists()
