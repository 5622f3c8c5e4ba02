"""SeriesSet and TimeGrid: the data contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cropglobe import CROPGLOBE_CLASSES, SeriesSet, TimeGrid
from cropglobe.bands import S2_BANDS
from cropglobe.errors import BandError, DataFormatError, GridError, LabelError, MissingFileError
from cropglobe.series import day_of_season, parse_anchor


def make_set(n: int = 6, t_grid: TimeGrid | None = None, seed: int = 0) -> SeriesSet:
    grid = t_grid or TimeGrid.cropglobe()
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 5000, (n, len(S2_BANDS), grid.n_steps)).astype(np.float32)
    values[0, 2, 5] = np.nan
    labels = rng.integers(0, 7, n)
    meta = pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(n)], "country": ["FRA", "BEL"] * (n // 2)}
    )
    return SeriesSet(values, S2_BANDS, grid, labels, CROPGLOBE_CLASSES, meta, {"source": "x"})


def test_cropglobe_grid_bins() -> None:
    g = TimeGrid.cropglobe()
    assert g.n_steps == 73
    assert g.starts[0] == 1 and g.ends[0] == 5 and g.starts[72] == 361 and g.ends[72] == 365
    assert g.step_days == 5
    w = g.window_indices(121, 334)
    assert (w[0], w[-1], w.size) == (24, 66, 43)
    sub = g.window(121, 334)
    assert sub.n_steps == 43 and sub.starts[0] == 121 and sub.ends[-1] == 335


def test_bin_index_known_days() -> None:
    g = TimeGrid.cropglobe()
    np.testing.assert_array_equal(g.bin_index([1, 5, 6, 365, 366, 0]), [0, 0, 1, 72, -1, -1])
    cawa = TimeGrid.from_starts(range(1, 354, 16))
    assert cawa.n_steps == 23 and cawa.same_axis(TimeGrid.regular(16))


def test_calendar_grids() -> None:
    m = TimeGrid.monthly()
    assert m.edges == (1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366)
    assert TimeGrid.dekads().n_steps == 36
    south = TimeGrid.monthly("07-01")
    assert south.n_steps == 12 and south.edges[0] == 1 and south.edges[6] == 185  # Jan 1
    may_nov = m.window_indices(121, 334)
    np.testing.assert_array_equal(may_nov, np.arange(4, 11))
    with pytest.raises(GridError, match="first of a month"):
        TimeGrid.monthly("07-15")


def test_day_of_season_leap_and_anchor() -> None:
    year, dos = day_of_season(["2023-01-01", "2024-02-29", "2024-03-01", "2024-12-31"])
    np.testing.assert_array_equal(year, [2023, 2024, 2024, 2024])
    np.testing.assert_array_equal(dos, [1, 59, 60, 365])
    year, dos = day_of_season(["2022-07-01", "2022-12-31", "2023-01-01", "2023-06-30"], "07-01")
    np.testing.assert_array_equal(year, [2022, 2022, 2022, 2022])
    np.testing.assert_array_equal(dos, [1, 184, 185, 365])
    assert parse_anchor("07-01") == 182
    with pytest.raises(GridError, match="MM-DD"):
        parse_anchor("02-30")


def test_grid_dates_and_dict_roundtrip() -> None:
    g = TimeGrid.regular(10, anchor="07-01")
    assert TimeGrid.from_dict(g.to_dict()) == g
    d = g.dates(2022)
    assert str(d[0]) == "2022-07-05"
    with pytest.raises(GridError):
        TimeGrid((5, 3))


def test_seriesset_checks() -> None:
    g = TimeGrid.cropglobe()
    with pytest.raises(BandError, match="band names"):
        SeriesSet(np.zeros((2, 3, 73)), ("B02", "B03"), g)
    with pytest.raises(GridError, match="73"):
        SeriesSet(np.zeros((2, 2, 43)), ("B02", "B03"), g)
    with pytest.raises(LabelError, match="vocabulary"):
        SeriesSet(np.zeros((2, 1, 73)), ("NDVI",), g, np.array([0, 7]), CROPGLOBE_CLASSES)
    with pytest.raises(DataFormatError, match="3-D"):
        SeriesSet(np.zeros((2, 73)), ("NDVI",), g)
    ss = SeriesSet(np.zeros((2, 1, 73)), ("NDVI",), g)
    assert ss.labels.tolist() == [-1, -1] and ss.values.dtype == np.float32


def test_validate_rejects_empty_and_inf() -> None:
    ss = make_set()
    ss.values[3] = np.nan
    with pytest.raises(DataFormatError, match="1 of 6 samples have no valid observation"):
        ss.validate("f.npz")
    assert ss.drop_empty().n_samples == 5
    ss.values[0, 0, 0] = np.inf
    with pytest.raises(DataFormatError, match="inf"):
        ss.validate("f.npz", allow_empty=True)


def test_subset_where_select_concat() -> None:
    ss = make_set()
    fra = ss.where(country="FRA")
    assert fra.n_samples == 3 and set(fra.meta.country) == {"FRA"}
    sub = ss.select_bands(["B8", "red"])
    assert sub.bands == ("B08", "B04")
    np.testing.assert_array_equal(sub.values[:, 1], ss.values[:, 2])
    with pytest.raises(BandError, match="B09"):
        ss.select_bands(["B09"])
    win = ss.select_window(121, 334)
    assert win.shape == (6, 10, 43)
    np.testing.assert_array_equal(win.values, ss.values[:, :, 24:67])
    both = SeriesSet.concat([ss, ss.subset([0, 1])])
    assert both.n_samples == 8 and both.meta.sample_id.tolist()[-2:] == ["s0", "s1"]
    with pytest.raises(GridError):
        SeriesSet.concat([ss, win])


def _places() -> SeriesSet:
    """Six samples: three regions of two countries over two years, one year read as floats."""
    ss = make_set()
    meta = ss.meta.assign(
        region=["Fergana", "Khorezm", "Fergana", "Samarkand", "Fergana", "Khorezm"],
        year=[2015, 2015, 2016, 2016, 2018, np.nan],  # floats, one missing
        season=[2015, 2015, 2016, 2016, 2018, 2018],  # integers
        code=["2015", "x", "2016", "2016", "7", None],  # text holding numbers
    )
    return SeriesSet(ss.values, ss.bands, ss.grid, ss.labels, ss.classes, meta)


def test_where_compares_values_as_the_column_type() -> None:
    ss = _places()
    # text "2016" matches the number 2016 in a float and an integer column, and back
    assert ss.where(year="2016").meta.sample_id.tolist() == ["s2", "s3"]
    assert ss.where(season="2016").meta.sample_id.tolist() == ["s2", "s3"]
    assert ss.where(season=2016.0).meta.sample_id.tolist() == ["s2", "s3"]
    assert ss.where(code=2016).meta.sample_id.tolist() == ["s2", "s3"]
    # a list is 'any of'; several columns must all match
    both = ss.where(region=["Fergana", "Khorezm"], year=["2015", 2018])
    assert both.meta.sample_id.tolist() == ["s0", "s1", "s4"]
    np.testing.assert_array_equal(ss.where_rows(region="Fergana"), [0, 2, 4])
    kept = ss.where(region="Fergana")
    np.testing.assert_array_equal(kept.values, ss.values[[0, 2, 4]])
    np.testing.assert_array_equal(kept.labels, ss.labels[[0, 2, 4]])


def test_where_explains_what_it_cannot_match() -> None:
    ss = _places()
    with pytest.raises(DataFormatError) as err:
        ss.where(region="fergana")  # text compares exactly: the case-variant is a suggestion
    assert str(err.value) == (
        "column 'region' holds no value 'fergana' (did you mean 'Fergana'?); its values: "
        "Fergana, Khorezm, Samarkand"
    )
    with pytest.raises(DataFormatError, match=r"'Ferghana' \(did you mean 'Fergana'\?\)"):
        ss.where(region="Ferghana")
    nearest = r"'2019' \(did you mean '2018'\?\); its values: 2015, 2016, 2018$"
    with pytest.raises(DataFormatError, match=nearest):  # numbers: the nearest, a gap not listed
        ss.where(year="2019")
    with pytest.raises(DataFormatError, match=r"no value 'Fergana' \(it is a value of 'region'\)"):
        ss.where(country="Fergana")
    # a country's ISO2 code or English name suggests its ISO3 code (as the group options take)
    with pytest.raises(DataFormatError, match=r"'Belgium' \(did you mean 'BEL'\?\); its values"):
        ss.where(country="Belgium")
    with pytest.raises(DataFormatError, match=r"'fr' \(did you mean 'FRA'\?\)"):
        ss.where(country="fr")
    with pytest.raises(DataFormatError, match="'year' holds numbers, but 'abc' is not a number"):
        ss.where(year="abc")
    with pytest.raises(DataFormatError) as err:
        ss.where(regoin="Fergana")
    assert str(err.value) == (
        "no metadata column 'regoin' to select samples by (did you mean 'region'?); the "
        "columns are sample_id, country, region, year, season, code"
    )
    with pytest.raises(DataFormatError) as err:
        ss.where(region="Samarkand", year=2015)
    assert str(err.value).startswith(
        "no sample meets all of region=Samarkand and year=2015 (each alone keeps: "
        "region=Samarkand 1, year=2015 2 samples)"
    )
    many = SeriesSet(
        np.zeros((30, 1, 1), np.float32),
        ("NDVI",),
        TimeGrid((1, 2)),
        meta=pd.DataFrame({"field": [f"f{i:02d}" for i in range(30)]}),
    )
    with pytest.raises(DataFormatError, match=r"f19, … \(30 values in all\)$"):
        many.where(field="g")


def test_observations_where_keeps_their_observations() -> None:
    from cropglobe.series import Observations

    samples = pd.DataFrame(
        {"sample_id": ["a", "b", "c"], "label": [0, 1, 0], "region": ["R1", "R2", "R1"]}
    )
    table = pd.DataFrame(
        {
            "sample": [0, 0, 1, 2, 2, 2],
            "date": pd.to_datetime(["2020-05-01"] * 6),
            "B04": np.arange(6, dtype=np.float32),
        }
    )
    obs = Observations(table, ("B04",), samples, ("wheat", "maize"))
    kept = obs.where(region="R1")
    assert kept.samples.sample_id.tolist() == ["a", "c"]
    assert kept.table["sample"].tolist() == [0, 0, 1, 1, 1]
    assert kept.table["B04"].tolist() == [0, 1, 3, 4, 5]
    with pytest.raises(DataFormatError, match=r"columns are sample_id, region$"):
        obs.where(label=0)  # class indices are no metadata


def test_deduplicate_nan_equal() -> None:
    ss = make_set()
    doubled = SeriesSet.concat([ss, ss.subset([0, 2])])
    dedup = doubled.deduplicate()
    assert dedup.n_samples == 6
    np.testing.assert_array_equal(dedup.meta.sample_id, ss.meta.sample_id)


def test_deduplicate_as_the_release() -> None:
    """Values only, within each group, the first labelled row kept (the release: per country
    file, ``np.unique(fea, axis=0)`` after dropping unusable labels)."""
    ss = make_set()
    v = ss.values.copy()
    v[1], v[2], v[3] = v[0], v[0], v[0]  # rows 0-3 equal values
    labels = np.array([-1, 1, 0, 1, 0, 1])
    meta = ss.meta.assign(country=["FRA", "FRA", "FRA", "BEL", "BEL", "BEL"])
    s2 = SeriesSet(v, ss.bands, ss.grid, labels, ss.classes, meta)
    # values and label, all rows: rows 2 (=0's values, other label) kept; 3 (= row 1) dropped
    assert s2.deduplicate().meta.sample_id.tolist() == ["s0", "s1", "s2", "s4", "s5"]
    # by country: BEL's row 3 is not a repeat of a FRA row
    assert s2.deduplicate(by="country").n_samples == 6
    # values only, by country: FRA keeps its first labelled row (1), BEL its row 3
    got = s2.deduplicate(by="country", labels=False).meta.sample_id.tolist()
    assert got == ["s1", "s3", "s4", "s5"]
    ids = s2.deduplicate(labels=False).meta.sample_id.tolist()
    assert ids == ["s1", "s4", "s5"]
    with pytest.raises(DataFormatError, match="no such metadata column"):
        s2.deduplicate(by="region")


def test_relabel_and_counts() -> None:
    g = TimeGrid.regular(30)
    ss = SeriesSet(
        np.ones((4, 1, g.n_steps)), ("NDVI",), g, np.array([0, 1, 1, -1]), ("maize", "wheat")
    )
    assert ss.class_counts().to_dict() == {"maize": 1, "wheat": 2, "<unlabelled>": 1}
    with pytest.raises(LabelError, match="maize"):
        ss.relabel(CROPGLOBE_CLASSES)
    re = ss.relabel(CROPGLOBE_CLASSES, unknown="other")
    assert re.labels.tolist() == [6, 3, 3, -1]


def test_save_load_roundtrip(tmp_path) -> None:
    ss = make_set()
    path = ss.save(tmp_path / "set.npz")
    back = SeriesSet.load(path)
    np.testing.assert_array_equal(back.values, ss.values)
    np.testing.assert_array_equal(back.labels, ss.labels)
    assert back.bands == ss.bands and back.grid == ss.grid and back.classes == ss.classes
    pd.testing.assert_frame_equal(back.meta, ss.meta)
    assert back.attrs == {"source": "x"}
    assert back.fingerprint() == ss.fingerprint()
    assert not list(tmp_path.glob(".*tmp*"))


def test_load_errors(tmp_path) -> None:
    with pytest.raises(MissingFileError, match="no such file"):
        SeriesSet.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "foreign.npz", fea=np.zeros((2, 10, 73)))
    with pytest.raises(DataFormatError, match="not a cropglobe SeriesSet"):
        SeriesSet.load(tmp_path / "foreign.npz")
    (tmp_path / "text.npz").write_text("sample,label\n")  # np.load would call it a pickle
    with pytest.raises(DataFormatError, match="not a zip archive"):
        SeriesSet.load(tmp_path / "text.npz")


def test_meta_mixing_value_types_is_saved_as_text(tmp_path) -> None:
    from cropglobe.series import SeriesSet, TimeGrid

    ss = SeriesSet(
        np.zeros((2, 1, 3), np.float32), ("B04",), TimeGrid.regular(1, 1, 3),
        np.array([0, 1]), ("a", "b"), pd.DataFrame({"sample_id": ["x", "y"], "plot": [1, "b"]}),
    )  # fmt: skip
    back = SeriesSet.load(ss.save(tmp_path / "s.npz"))
    assert list(back.meta["plot"]) == ["1", "b"] and list(back.meta["sample_id"]) == ["x", "y"]


def test_anchors_have_one_spelling() -> None:
    from cropglobe.series import anchor_text

    assert anchor_text("7-1") == "07-01" and anchor_text("12-31") == "12-31"
    assert TimeGrid.cropglobe("7-1") == TimeGrid.cropglobe("07-01")
    assert TimeGrid.cropglobe("7-1").same_axis(TimeGrid.cropglobe("07-01"))
    with pytest.raises(GridError, match="'2-30' is not a valid 'MM-DD' day"):
        anchor_text("2-30")


def test_equality_is_identity_and_sets_are_hashable() -> None:
    """``==`` on two sets must not raise NumPy's "truth value is ambiguous" (the dataclass
    comparison of arrays); a set compares equal to itself only, and can go into a dict."""
    ss = make_set()
    copy = ss.subset(slice(None))
    assert ss == ss
    assert (ss == copy) is False and ss != copy
    assert len({ss, copy}) == 2
    obs_like = {ss: "a"}
    assert obs_like[ss] == "a"


def test_indexing_selects_samples_as_subset() -> None:
    ss = make_set(6)
    np.testing.assert_array_equal(ss[1:3].values, ss.values[1:3])
    np.testing.assert_array_equal(ss[[4, 0]].labels, ss.labels[[4, 0]])
    mask = np.array([True, False] * 3)
    assert list(ss[mask].meta["sample_id"]) == ["s0", "s2", "s4"]
    one = ss[5]
    assert one.shape == (1, ss.n_bands, ss.n_steps) and one.meta["sample_id"][0] == "s5"
    assert ss[-1].meta["sample_id"][0] == "s5"
    # scikit-learn's indexing (cross-validation splits) writes X[rows, ...]
    np.testing.assert_array_equal(ss[np.array([2, 3]), ...].values, ss.values[[2, 3]])
    with pytest.raises(IndexError):
        ss[6]
    assert len(list(ss)) == 6  # iteration stops at the end
    with pytest.raises(DataFormatError, match="select_bands"):
        ss[0, 1]
    # NumPy sees the values, not a sequence of one-sample sets
    assert np.asarray(ss).shape == ss.shape and np.shares_memory(np.asarray(ss), ss.values)
    assert np.asarray(ss, dtype=np.float64).dtype == np.float64


def test_subset_refuses_fractional_positions() -> None:
    ss = make_set(4)
    with pytest.raises(DataFormatError, match="integer positions"):
        ss.subset([0.5, 1.7])


def test_construction_refuses_what_would_go_wrong_later() -> None:
    g = TimeGrid.monthly()
    with pytest.raises(LabelError, match="unique"):
        SeriesSet(np.zeros((2, 1, 12)), ("NDVI",), g, np.array([0, 1]), ("a", "a"))
    with pytest.raises(GridError, match="TimeGrid"):
        SeriesSet(np.zeros((2, 1, 12)), ("NDVI",), "monthly")  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="DataFrame"):
        SeriesSet(np.zeros((2, 1, 12)), ("NDVI",), g, meta={"sample_id": ["a", "b"]})  # type: ignore[arg-type]
    # a single band name is one band, not its characters
    one = SeriesSet(np.zeros((2, 1, 12)), "NDVI", g)  # type: ignore[arg-type]
    assert one.bands == ("NDVI",)
    with pytest.raises(BandError, match="1 band names"):
        SeriesSet(np.zeros((2, 3, 12)), "B04", g)  # type: ignore[arg-type]


def test_attrs_none_is_empty_and_saves(tmp_path: Path) -> None:
    ss = SeriesSet(np.zeros((2, 1, 12)), ("NDVI",), TimeGrid.monthly(), attrs=None)  # type: ignore[arg-type]
    assert ss.attrs == {}
    assert SeriesSet.load(ss.save(tmp_path / "a.npz")).attrs == {}
    given = {"source": "x"}
    ss2 = SeriesSet(np.zeros((2, 1, 12)), ("NDVI",), TimeGrid.monthly(), attrs=given)
    ss2.attrs["note"] = 1
    assert given == {"source": "x"}  # the caller's dict is not the set's


def test_labels_are_each_sets_own() -> None:
    labels = np.array([0, 1, 0], dtype=np.int64)
    ss = SeriesSet(np.zeros((3, 2, 5), np.float32), ("B04", "B08"), TimeGrid.regular(90),
                   labels, ("corn", "wheat"))  # fmt: skip
    sub = ss.select_bands(["B04"])
    sub.labels[0] = 1
    labels[1] = 0
    assert ss.labels.tolist() == [0, 1, 0]
