"""Long, wide and series tables: WorldCereal, tidy, monthly, CAWa, SeriesSet Parquet."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cropglobe.classes import CROPGLOBE_CLASSES
from cropglobe.errors import BandError, DataFormatError, LabelError, MissingFileError
from cropglobe.io import (
    read_cawa,
    read_dataset,
    read_observations,
    read_series_table,
    read_wide_table,
    wkb_points_to_lonlat,
    write_observations,
    write_series_table,
)
from cropglobe.series import Observations, SeriesSet, TimeGrid

WC_S2 = ["S2-L2A-B02", "S2-L2A-B03", "S2-L2A-B04", "S2-L2A-B05", "S2-L2A-B06", "S2-L2A-B07",
         "S2-L2A-B08", "S2-L2A-B11", "S2-L2A-B12"]  # fmt: skip


def _worldcereal(path: Path, seed: int = 0, lonlat_columns: bool = False) -> pd.DataFrame:
    """A WorldCereal-style extraction: 3 samples × 4 dekads, uint16 with 65535 no-data."""
    rng = np.random.default_rng(seed)
    ids = ["2023_FRA_LPIS_POLY_110_1", "2023_FRA_LPIS_POLY_110_2", "2023_FRA_LPIS_POLY_110_3"]
    codes = [1101060000, 1101010012, 2000000000]  # maize, wheat, other
    coords = [(-0.46, 43.33), (1.5, 44.1), (2.25, 45.0)]
    rows = []
    for i, sid in enumerate(ids):
        for d in ("2023-05-01", "2023-05-11", "2023-05-21", "2023-06-01"):
            lon, lat = coords[i]
            row = {"sample_id": sid, "ref_id": "2023_FRA_LPIS_POLY_110",
                   "timestamp": pd.Timestamp(d), "ewoc_code": codes[i], "year": 2023,
                   "valid_time": "2023-06-01", "AGERA5-TMEAN": int(rng.integers(28000, 30000)),
                   "geometry": (struct.pack("<BIdd", 1, 1, lon, lat) if i != 1
                                else struct.pack(">BIdd", 0, 1, lon, lat))}  # fmt: skip
            for c in WC_S2:
                row[c] = int(rng.integers(100, 5000))
            row["S1-SIGMA0-VV"] = int(rng.integers(1000, 5000))
            row["S1-SIGMA0-VH"] = 65535
            row["S2-L2A-B8A"] = 65535
            if lonlat_columns:
                row["lon"], row["lat"] = lon, lat
            rows.append(row)
    df = pd.DataFrame(rows)
    for c in [*WC_S2, "S1-SIGMA0-VV", "S1-SIGMA0-VH", "AGERA5-TMEAN"]:
        df[c] = df[c].astype(np.uint16)
    df.loc[1, "S2-L2A-B04"] = 65535
    df.to_parquet(path, index=False)
    return df


def test_worldcereal_geoparquet(tmp_path: Path) -> None:
    f = tmp_path / "raw.geoparquet"
    df = _worldcereal(f)
    obs = read_observations(f)
    assert isinstance(obs, Observations) and obs.attrs["format"] == "worldcereal"
    assert obs.bands == ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12",
                         "VV", "VH")  # fmt: skip
    assert obs.n_samples == 3 and len(obs.table) == 12
    assert obs.table["B8A"].isna().all() and obs.table["VH"].isna().all()
    assert np.isnan(obs.table.loc[1, "B04"]) and obs.table["B02"].notna().all()
    assert obs.table["B02"].dtype == np.float32
    assert obs.table["date"].dtype == "datetime64[ns]"
    np.testing.assert_allclose(obs.table.loc[0, "B03"], df.loc[0, "S2-L2A-B03"])
    np.testing.assert_allclose(obs.samples["lon"], [-0.46, 1.5, 2.25])
    np.testing.assert_allclose(obs.samples["lat"], [43.33, 44.1, 45.0])
    names = [CROPGLOBE_CLASSES[i] for i in obs.samples["label"]]
    assert names == ["corn", "wheat", "other"]
    s = obs.samples
    assert {"sample_id", "ref_id", "year", "valid_time", "ewoc_code", "country"} <= set(s.columns)
    assert "AGERA5-TMEAN" not in s.columns and "geometry" not in s.columns
    assert list(s["country"]) == ["FRA"] * 3
    sub = read_observations(f, bands=["b4", "S1-SIGMA0-VV"])
    assert sub.bands == ("B04", "VV")


def test_worldcereal_prefers_lonlat_columns(tmp_path: Path) -> None:
    f = tmp_path / "raw.parquet"
    _worldcereal(f, lonlat_columns=True)
    obs = read_observations(f, format="worldcereal")
    np.testing.assert_allclose(obs.samples["lon"], [-0.46, 1.5, 2.25])


def test_wkb_points() -> None:
    ewkb = struct.pack("<BIIdd", 1, 0x20000001, 4326, 3.0, 4.0)
    x, y = wkb_points_to_lonlat([struct.pack("<BIdd", 1, 1, 1.0, 2.0), None, ewkb])
    np.testing.assert_allclose(x, [1.0, np.nan, 3.0])
    np.testing.assert_allclose(y, [2.0, np.nan, 4.0])
    poly = struct.pack("<BII", 1, 3, 0) + b"\x00" * 12
    with pytest.raises(DataFormatError, match="point"):
        wkb_points_to_lonlat([poly, poly])


def _tidy(path: Path) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "sample_id": ["a", "a", "a", "b", "b"],
            "date": ["2023-05-03", "2023-05-01", "2023-06-10", "2023-05-02", "2023-07-01"],
            "b2": [1.0, 2.0, 3.0, 4.0, np.nan],
            "B8": [10.0, 20.0, 30.0, 40.0, 50.0],
            "red": [5.0, 6.0, 7.0, 8.0, 9.0],
            "cloud": [0, 1, 0, 0, 0],
            "SCL": [4, 4, 9, 4, 5],
            "label": ["maize", "maize", "maize", "winter wheat", "winter wheat"],
            "region": ["north", "north", "north", "south", "south"],
            "country": ["BE", "BE", "BE", "FRA", "FRA"],
            "quality": [1, 2, 3, 4, 5],
        }
    )
    df.to_csv(path, index=False)
    return df


def test_tidy_csv(tmp_path: Path) -> None:
    f = tmp_path / "obs.csv"
    _tidy(f)
    obs = read_observations(f)
    assert obs.bands == ("B02", "B04", "B08")
    t = obs.table
    assert list(t["sample"]) == [0, 0, 0, 1, 1]
    assert list(t["date"].dt.day[:3]) == [1, 3, 10]  # sorted by date within sample
    assert list(t["valid"]) == [False, True, True, True, True]
    assert list(t["SCL"]) == [4, 4, 9, 4, 5]
    s = obs.samples
    assert list(s["sample_id"]) == ["a", "b"]
    assert list(s["label"]) == [0, 3]
    assert list(s["region"]) == ["north", "south"]
    assert list(s["country"]) == ["BEL", "FRA"] and list(s["country_original"]) == ["BE", "FRA"]
    assert "quality" not in s.columns  # varies within a sample


def test_observations_roundtrip(tmp_path: Path) -> None:
    f = tmp_path / "obs.csv"
    _tidy(f)
    obs = read_observations(f)
    for name in ("out.parquet", "out.csv"):
        out = write_observations(obs, tmp_path / name)
        back = read_observations(out)
        assert back.bands == obs.bands
        pd.testing.assert_frame_equal(back.table, obs.table, check_dtype=False)
        assert list(back.samples["label"]) == list(obs.samples["label"])
        assert list(back.samples["region"]) == list(obs.samples["region"])


def test_observations_custom_vocabulary_roundtrip(tmp_path: Path) -> None:
    table = pd.DataFrame({"sample": [0, 1], "date": pd.to_datetime(["2023-01-01", "2023-01-02"]),
                          "NDVI": np.array([0.1, 0.2], np.float32)})  # fmt: skip
    samples = pd.DataFrame({"sample_id": ["x", "y"], "label": [1, -1]})
    obs = Observations(table, ("NDVI",), samples, ("barley", "oats"))
    back = read_observations(write_observations(obs, tmp_path / "o.parquet"))
    assert back.classes == ("barley", "oats") and list(back.samples["label"]) == [1, -1]


def _series(n: int = 5, seed: int = 0) -> SeriesSet:
    rng = np.random.default_rng(seed)
    grid = TimeGrid.monthly("07-01")
    values = rng.normal(size=(n, 3, 12)).astype(np.float32)
    values[1, :, 4:7] = np.nan
    meta = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                         "year": np.arange(n, dtype=np.int64) + 2020,
                         "lat": rng.normal(size=n), "region": list("abcab")[:n],
                         "label": ["orig"] * n, "B02": np.arange(n)})  # fmt: skip
    labels = np.array([0, 3, -1, 6, 1])[:n]
    return SeriesSet(values, ("B02", "B08", "VV"), grid, labels, CROPGLOBE_CLASSES, meta,
                     {"source": "test", "synthetic": True})  # fmt: skip


def test_series_table_roundtrip_exact(tmp_path: Path) -> None:
    ss = _series()
    f = write_series_table(ss, tmp_path / "s.parquet")
    long = pd.read_parquet(f)
    assert len(long) == 5 * 12 and {"sample_id", "step", "date", "B02", "label"} <= set(long)
    # date = bin start in the sample's season year (season 2020 starts 1 July 2020)
    assert long["date"].iloc[0] == pd.Timestamp("2020-07-01")
    assert long["date"].iloc[6] == pd.Timestamp("2021-01-01")
    back = read_series_table(f)
    np.testing.assert_array_equal(back.values, ss.values)
    np.testing.assert_array_equal(back.labels, ss.labels)
    assert back.grid == ss.grid and back.bands == ss.bands and back.classes == ss.classes
    pd.testing.assert_frame_equal(back.meta, ss.meta)
    assert back.attrs == ss.attrs
    assert isinstance(read_dataset(f), SeriesSet)


def test_series_table_requires_metadata(tmp_path: Path) -> None:
    f = tmp_path / "plain.parquet"
    pd.DataFrame({"sample_id": ["a"], "step": [0]}).to_parquet(f)
    with pytest.raises(DataFormatError, match=r"plain\.parquet"):
        read_series_table(f)
    with pytest.raises(DataFormatError, match="Parquet"):
        write_series_table(_series(), tmp_path / "s.csv")


def test_wide_table_doy_and_dates(tmp_path: Path) -> None:
    f = tmp_path / "wide.csv"
    pd.DataFrame({"id": ["p", "q"], "1": [0.1, np.nan], "17": [0.2, 0.3], "33": [0.4, 0.5],
                  "crop": ["cotton", "rice"]}).to_csv(f, index=False)  # fmt: skip
    ss = read_wide_table(f, id_column="id", label_column="crop")
    assert ss.shape == (2, 1, 3) and ss.bands == ("NDVI",)
    assert ss.grid.edges == (1, 17, 33, 366) and ss.grid.kind == "16-day"
    assert list(ss.meta["sample_id"]) == ["p", "q"] and np.isnan(ss.values[1, 0, 0])
    assert [ss.classes[i] for i in ss.labels] == ["cotton", "rice"]
    g = tmp_path / "dated.csv"
    pd.DataFrame({"2023-05-11": [1.0], "2023-05-01": [2.0]}).to_csv(g, index=False)
    sd = read_wide_table(g, value_name="evi")
    assert sd.grid.starts.tolist() == [121, 131] and sd.values[0, 0].tolist() == [2.0, 1.0]
    assert sd.meta["year"].iloc[0] == 2023 and sd.bands == ("EVI",)
    assert isinstance(read_dataset(g), SeriesSet)
    h = tmp_path / "twoseasons.csv"
    pd.DataFrame({"2022-05-01": [1.0], "2023-05-01": [2.0]}).to_csv(h, index=False)
    with pytest.raises(DataFormatError, match="seasons"):
        read_wide_table(h)
    k = tmp_path / "notime.csv"
    pd.DataFrame({"a": [1.0]}).to_csv(k, index=False)
    with pytest.raises(DataFormatError, match=r"notime\.csv.*no time columns"):
        read_wide_table(k)


def test_wide_table_finds_its_id_and_label_columns(tmp_path: Path) -> None:
    f = tmp_path / "wide.csv"
    table = {"sample_id": ["p", "q"], "1": [0.1, 0.2], "17": [0.2, 0.3],
             "label": ["corn", "wheat"], "country": ["FRA", "BEL"]}  # fmt: skip
    pd.DataFrame(table).to_csv(f, index=False)
    ss = read_dataset(f)
    assert isinstance(ss, SeriesSet)
    assert list(ss.meta["sample_id"]) == ["p", "q"] and list(ss.meta["country"]) == ["FRA", "BEL"]
    assert [ss.classes[i] for i in ss.labels] == ["corn", "wheat"]


def test_monthly_layout(tmp_path: Path) -> None:
    f = tmp_path / "monthly.parquet"
    pd.DataFrame({"sample_id": ["a", "a", "b"], "month": ["2017-01", "2017-02", "2017-05"],
                  "B02": [1.0, 2.0, 3.0], "VV": [4.0, 5.0, 6.0], "ndvi": [0.1, 0.2, 0.3],
                  "crop6": ["corn", "corn", "soybeans"],
                  "country": ["BE", "BE", "CAN"]}).to_parquet(f)  # fmt: skip
    obs = read_observations(f)
    assert obs.attrs["format"] == "monthly" and obs.bands == ("B02", "VV")
    assert list(obs.table["date"]) == list(pd.to_datetime(["2017-01-15", "2017-02-15",
                                                           "2017-05-15"]))  # fmt: skip
    assert list(obs.samples["label"]) == [0, 1] and list(obs.samples["country"]) == ["BEL", "CAN"]
    bad = tmp_path / "badmonth.parquet"
    pd.DataFrame({"sample_id": ["a"], "month": ["2017-13"], "B02": [1.0]}).to_parquet(bad)
    with pytest.raises(DataFormatError, match=r"badmonth\.parquet.*'month'.*2017-13"):
        read_observations(bad)


def test_worldcereal_unknown_crops_are_unlabelled(tmp_path: Path, caplog) -> None:
    """ewoc_code 0 ("Unknown") and unspecified cereals are unlabelled, with a warning
    counting them, whether the labels come from ewoc_code or from crop6 (which calls them
    "other"); known non-target codes stay "other"."""
    raw = tmp_path / "raw.geoparquet"
    df = _worldcereal(raw)
    df["ewoc_code"] = df["ewoc_code"].replace({1101010012: 0, 1101060000: 1101000000})
    df.to_parquet(raw, index=False)
    with caplog.at_level("WARNING", logger="cropglobe.io.tables"):
        obs = read_observations(raw)
    assert list(obs.samples["label"]) == [-1, -1, 6]  # 2000000000: herbaceous vegetation
    said = [r.getMessage() for r in caplog.records if "which crop grows" in r.getMessage()]
    assert len(said) == 1 and "2 sample(s)" in said[0] and "0: 1" in said[0]
    monthly = tmp_path / "monthly.parquet"
    pd.DataFrame({"sample_id": ["a", "a", "b", "c", "d"],
                  "month": ["2017-01", "2017-02", "2017-05", "2017-05", "2017-06"],
                  "B02": [1.0, 2.0, 3.0, 4.0, 5.0],
                  "crop6": ["other", "other", "other", "corn", "other"],
                  "ewoc_code": [0, 0, 4000000000, 1101060000, 1101000000],
                  "country": ["CAN"] * 5}).to_parquet(monthly)  # fmt: skip
    caplog.clear()
    with caplog.at_level("WARNING", logger="cropglobe.io.tables"):
        obs = read_observations(monthly)
    assert list(obs.samples["label"]) == [-1, 6, 0, -1]
    assert any("2 sample(s)" in r.getMessage() for r in caplog.records)
    # a table of the user's own (a dict) is taken as it is
    own = read_observations(monthly, label_table={"other": "other", "corn": "corn"})
    assert list(own.samples["label"]) == [6, 6, 0, 6]


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"absent\.csv"):
        read_observations(tmp_path / "absent.csv")
    f = tmp_path / "obs.csv"
    df = _tidy(f)
    with pytest.raises(BandError, match=r"obs\.csv.*B99"):
        read_observations(f, bands=["B99"])
    d = tmp_path / "dates.csv"
    df.assign(date=["2023-05-01", "soon", "2023-06-01", "x", "2023-07-01"]).to_csv(d, index=False)
    with pytest.raises(DataFormatError, match=r"dates\.csv.*'date'.*'soon'"):
        read_observations(d)
    lab = tmp_path / "labels.csv"
    df.assign(label=["barley"] * 3 + ["wheat"] * 2).to_csv(lab, index=False)
    with pytest.raises(LabelError, match=r"labels\.csv.*barley"):
        read_observations(lab)
    ids = tmp_path / "ids.csv"
    df.assign(label=[9, 9, 9, 0, 0]).to_csv(ids, index=False)
    with pytest.raises(LabelError, match=r"ids\.csv.*outside"):
        read_observations(ids)
    changing = tmp_path / "changing.csv"
    df.assign(label=["maize", "wheat", "maize", "wheat", "wheat"]).to_csv(changing, index=False)
    with pytest.raises(DataFormatError, match="changes within sample"):
        read_observations(changing)
    pq_path = tmp_path / "cols.parquet"
    pd.DataFrame({"id": ["a"], "when": ["2023-01-01"], "B02": [1.0]}).to_parquet(pq_path)
    with pytest.raises(DataFormatError, match=r"cols\.parquet.*\['sample_id', 'date'\].*found"):
        read_observations(pq_path)
    nob = tmp_path / "nobands.csv"
    pd.DataFrame({"sample_id": ["a"], "date": ["2023-01-01"], "x": [1]}).to_csv(nob, index=False)
    with pytest.raises(BandError, match="no band columns"):
        read_observations(nob)
    txt = tmp_path / "obs.xlsx"
    txt.write_bytes(b"")
    with pytest.raises(DataFormatError, match="unknown table type"):
        read_observations(txt)
    with pytest.raises(DataFormatError, match="format="):
        read_observations(f, format="gee")
    wc = tmp_path / "wc.parquet"
    _worldcereal(wc).drop(columns=["timestamp"]).to_parquet(wc)
    with pytest.raises(DataFormatError, match=r"wc\.parquet.*timestamp"):
        read_observations(wc)


def test_cawa_npz_refused_and_missing(tmp_path: Path) -> None:
    npz = tmp_path / "cawa_ndvi.npz"
    np.savez(npz, ndvi=np.zeros((2, 3)), doy=np.arange(3), label=np.array(["a", "b"], object))
    with pytest.raises(DataFormatError, match="unpickling"):
        read_dataset(npz)
    with pytest.raises(MissingFileError, match=r"CAWa_CropType_time-series\.csv"):
        read_cawa(tmp_path)


def test_cawa_small(tmp_path: Path) -> None:
    pd.DataFrame({"1": [0.1, np.nan, 0.3], "17": [0.2, 0.2, np.nan]}).to_csv(
        tmp_path / "CAWa_CropType_time-series.csv", index=False)  # fmt: skip
    pd.DataFrame({"sampler": "x", "country": ["Uzbekistan", "Tajikistan", "Uzbekistan"],
                  "region": ["Fergana", "Dushanbe", "Khorezm"], "date": "2016-06-01",
                  "year": [2016, 2016, 2015], "label_1": ["cotton", "wheat-rice", "maize"],
                  "label_2": "summer", "area": 1.0}).to_csv(
        tmp_path / "samples_attributes.csv", index=False)  # fmt: skip
    ss = read_cawa(tmp_path)
    assert [ss.classes[i] for i in ss.labels] == ["cotton", "other", "corn"]
    assert list(ss.meta["label_original"]) == ["cotton", "wheat-rice", "maize"]
    assert list(ss.meta["country"]) == ["UZB", "TJK", "UZB"]
    assert isinstance(read_dataset(tmp_path), SeriesSet)


def test_cawa_coordinates_keep_their_own_projection(tmp_path: Path) -> None:
    """The polygon table's x/y stay as they are (no projection named in their column names);
    ``xy_crs`` tells each region-year's projection by where it places the points."""
    from rasterio.warp import transform

    from cropglobe.io.tables import MODIS_SINUSOIDAL

    # (region, year, lon, lat, projection the file stores the point in)
    rows = [
        ("Fergana", 2011, 71.6, 40.7, MODIS_SINUSOIDAL),
        ("Fergana", 2018, 71.2, 40.45, "EPSG:32641"),
        ("Dushanbe", 2016, 68.7, 38.5, "EPSG:32642"),
        ("Khorezm", 2015, 60.6, 41.5, "EPSG:32641"),
        ("Atlantis", 2016, 68.7, 38.5, "EPSG:32642"),  # not a CAWa region: unknown
    ]
    xy = [transform("EPSG:4326", crs, [lon], [lat]) for _, _, lon, lat, crs in rows]
    x, y = [float(p[0][0]) for p in xy], [float(p[1][0]) for p in xy]
    pd.DataFrame({"1": [0.1] * 5, "17": [0.2] * 5}).to_csv(
        tmp_path / "CAWa_CropType_time-series.csv", index=False)  # fmt: skip
    pd.DataFrame({"country": "Uzbekistan", "region": [r[0] for r in rows],
                  "year": [r[1] for r in rows], "label_1": "cotton"}).to_csv(
        tmp_path / "samples_attributes.csv", index=False)  # fmt: skip
    pd.DataFrame({"x": x, "y": y, "count": 3}).to_csv(
        tmp_path / "CAWa_CropType_polygon-info.csv", index=False)  # fmt: skip
    meta = read_cawa(tmp_path).meta
    assert "x_sinu" not in meta and "y_sinu" not in meta
    np.testing.assert_allclose(meta["x"], x)
    np.testing.assert_allclose(meta["y"], y)
    assert list(meta["xy_crs"]) == [r[4] for r in rows[:4]] + ["unknown"]
    assert list(meta["pix_count"]) == [3] * 5


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_monthly_long(shared_data: Path) -> None:
    obs = read_observations(shared_data / "worldcereal" / "s2_monthly_long.parquet")
    s = obs.samples
    names = np.array([*obs.classes, "?"])[s["label"]]
    counts = pd.crosstab(s["country"], names)
    # ewoc_code 0 ("Unknown": 200 CAN, 19 BEL), unspecified cereals (10 CAN, 1 FRA),
    # oilseeds (6 FRA) and cropland (1 BEL) are unlabelled, not "other" as crop6 says;
    # Corsica's trees and grassland with trees ("unmapped" in label_name) stay "other"
    expected = {
        "CAN": {"corn": 517, "soybeans": 562, "wheat": 853, "other": 1479, "?": 210},
        "FRA": {"corn": 94, "soybeans": 13, "wheat": 62, "other": 824, "?": 7},
        "BEL": {"corn": 5, "soybeans": 0, "wheat": 1, "other": 24, "?": 20},
    }
    for cc, row in expected.items():
        assert {k: int(counts.loc[cc, k]) for k in row} == row
    assert set(s.loc[s["country"] == "BEL", "country_original"]) == {"BE"}
    assert obs.table["B8A"].isna().all()
    assert {"lat", "lon", "ewoc_code", "label_name", "ref_id"} <= set(s.columns)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name",
    [
        "raw_2023_FRA_LPIS_POLY_110_dekad.geoparquet",
        "raw_2022_FRA_LPIS_POLY_110_month.geoparquet",
    ],
)
def test_real_worldcereal_raw(shared_data: Path, name: str) -> None:
    path = shared_data / "worldcereal" / name
    obs = read_observations(path)
    assert obs.n_samples == 500 and obs.attrs["format"] == "worldcereal"
    assert obs.table["B8A"].isna().all() and (obs.table["B02"].dropna() < 65535).all()
    assert obs.samples["lon"].notna().all()
    # WKB geometry and the lon/lat columns agree
    first = pq.read_table(path, columns=["sample_id", "geometry", "lon", "lat"]).to_pandas()
    first = first.drop_duplicates("sample_id")
    x, y = wkb_points_to_lonlat(first["geometry"].tolist())
    np.testing.assert_allclose(x, first["lon"]) and np.testing.assert_allclose(y, first["lat"])


@pytest.mark.realdata
def test_real_cawa(shared_data: Path) -> None:
    ss = read_cawa(shared_data / "cawa")
    assert ss.shape == (8435, 1, 23)
    assert 0.24 < ss.missing_fraction() < 0.28
    assert ss.grid.starts.tolist() == list(range(1, 354, 16))
    assert (ss.meta["label_original"] == "cotton").sum() == 4025
    assert ss.class_counts()["cotton"] == 4025
    # x/y in the polygon table's own units: MODIS sinusoidal only for Fergana 2011 (x ~6e6),
    # UTM 41 N for Fergana 2018 and Khorezm, UTM 42 N elsewhere
    m = ss.meta
    assert "x_sinu" not in m and m["x"].notna().all()
    crs = m["xy_crs"].map(lambda c: "sinusoidal" if "+proj=sinu" in c else c)
    assert crs.value_counts().to_dict() == {
        "EPSG:32642": 6903,
        "EPSG:32641": 1319,
        "sinusoidal": 213,
    }
    fergana_2011 = (m["region"] == "Fergana") & (m["year"] == 2011)
    assert (crs[fergana_2011] == "sinusoidal").all() and (m.loc[fergana_2011, "x"] > 5e6).all()
    with pytest.raises(DataFormatError, match="CSV"):
        read_cawa(shared_data / "cawa" / "cawa_ndvi.npz")


def test_mixed_and_bad_first_dates(tmp_path: Path) -> None:
    f = tmp_path / "mixed.csv"
    pd.DataFrame({"sample_id": ["a", "a"], "date": ["2023-05-01", "2023-05-02T10:30:00"],
                  "B04": [1.0, 2.0]}).to_csv(f, index=False)  # fmt: skip
    assert read_observations(f).table["date"].dt.day.tolist() == [1, 2]
    g = tmp_path / "firstbad.csv"
    pd.DataFrame({"sample_id": ["a", "a"], "date": ["later", "2023-05-02"],
                  "B04": [1.0, 2.0]}).to_csv(g, index=False)  # fmt: skip
    with pytest.raises(DataFormatError, match=r"firstbad\.csv.*'later'"):
        read_observations(g)


def test_series_table_duplicate_ids_and_default_meta(tmp_path: Path) -> None:
    grid = TimeGrid.regular(10, 1, 30)
    one = SeriesSet(np.ones((2, 1, 3), np.float32), ("NDVI",), grid)
    two = SeriesSet(np.zeros((2, 1, 3), np.float32), ("NDVI",), grid)
    ss = SeriesSet.concat([one, two])  # sample ids "0", "1", "0", "1"
    back = read_series_table(write_series_table(ss, tmp_path / "d.parquet"))
    np.testing.assert_array_equal(back.values, ss.values)
    np.testing.assert_array_equal(back.labels, [-1, -1, -1, -1])
    pd.testing.assert_frame_equal(back.meta, ss.meta)


def test_a_folder_given_for_a_table_is_named_as_one(tmp_path) -> None:
    from cropglobe.errors import DataFormatError
    from cropglobe.io import read_observations

    with pytest.raises(DataFormatError, match="is a folder; expected a long observation table"):
        read_observations(tmp_path)


def test_tables_with_a_header_and_no_rows_are_refused(tmp_path: Path) -> None:
    csv = tmp_path / "header_only.csv"
    csv.write_text("sample_id,date,B04\n")
    with pytest.raises(DataFormatError, match=r"no observations in .*header_only\.csv.*no rows"):
        read_observations(csv)
    zero = tmp_path / "zero.parquet"
    empty = {"sample_id": pd.Series([], dtype=str), "date": pd.Series([], dtype="datetime64[ns]"),
             "B04": pd.Series([], dtype=np.float32)}  # fmt: skip
    pd.DataFrame(empty).to_parquet(zero)
    with pytest.raises(DataFormatError, match=r"no observations in .*zero\.parquet"):
        read_dataset(zero)
    wide = tmp_path / "wide.csv"
    wide.write_text("sample_id,1,17,33\n")
    with pytest.raises(DataFormatError, match=r"no observations in .*wide\.csv"):
        read_dataset(wide)
    cawa = tmp_path / "cawa"
    cawa.mkdir()
    (cawa / "CAWa_CropType_time-series.csv").write_text('"1","17","33"\n')
    (cawa / "samples_attributes.csv").write_text("country,region,year,label_1\n")
    with pytest.raises(DataFormatError, match=r"no observations in .*CAWa_CropType_time-series"):
        read_cawa(cawa)


def _dated(path: Path, dates: list[object]) -> Path:
    n = len(dates)
    pd.DataFrame({"sample_id": ["a"] * n, "date": dates, "B04": np.arange(n, dtype=float)}).to_csv(
        path, index=False
    )
    return path


def test_day_first_dates_are_read_with_one_format(tmp_path: Path, caplog) -> None:
    f = _dated(tmp_path / "dayfirst.csv", ["01/05/2023", "02/06/2023", "13/06/2023", "05/07/2023"])
    with caplog.at_level("INFO", logger="cropglobe.io.tables"):
        obs = read_observations(f)
    got = obs.table["date"].dt.strftime("%Y-%m-%d").tolist()
    assert got == ["2023-05-01", "2023-06-02", "2023-06-13", "2023-07-05"]
    assert obs.table["B04"].tolist() == [0.0, 1.0, 2.0, 3.0]  # rows keep their own dates
    assert any("DD/MM/YYYY" in r.getMessage() for r in caplog.records)
    g = _dated(tmp_path / "monthfirst.csv", ["01/05/2023", "02/16/2023"])
    got = read_observations(g).table["date"].dt.strftime("%Y-%m-%d").tolist()
    assert got == ["2023-01-05", "2023-02-16"]
    h = _dated(tmp_path / "dots.csv", ["13.05.2023 10:30", "01.06.2023 11:00"])
    got = read_observations(h).table["date"].dt.strftime("%Y-%m-%d %H:%M").tolist()
    assert got == ["2023-05-13 10:30", "2023-06-01 11:00"]


def test_iso_dates_and_native_timestamps_are_read_as_they_are(tmp_path: Path) -> None:
    f = _dated(tmp_path / "iso.csv", ["2023-05-01T10:00:00+02:00", "2023-05-02", "2023/06/13"])
    got = read_observations(f).table["date"].dt.strftime("%Y-%m-%d %H:%M").tolist()
    assert got == ["2023-05-01 10:00", "2023-05-02 00:00", "2023-06-13 00:00"]
    p = tmp_path / "native.parquet"
    dates = pd.to_datetime(["2023-01-05", "2023-02-06"])
    pd.DataFrame({"sample_id": ["a", "a"], "date": dates, "B04": [1.0, 2.0]}).to_parquet(p)
    assert read_observations(p).table["date"].tolist() == list(dates)


@pytest.mark.parametrize(
    "dates, expect",
    [
        (["01/05/2023", "02/06/2023"], r"ambiguous.*MM/DD/YYYY.*DD/MM/YYYY.*'01/05/2023'"),
        (["2023-05-01", "13/06/2023"], r"mixes date formats.*'2023-05-01'.*'13/06/2023'"),
        (["13/06/2023", "06/13/2023"], r"mixes date formats.*'13/06/2023'.*'06/13/2023'"),
        (["2023-05-01", "2023-13-01"], r"not dates.*'2023-13-01'"),
        (["01/05/23", "02/06/23"], r"ambiguous"),
    ],
)
def test_ambiguous_or_mixed_dates_are_refused(tmp_path: Path, dates, expect) -> None:
    f = _dated(tmp_path / "d.csv", dates)
    with pytest.raises(DataFormatError, match=r"d\.csv: column 'date'") as err:
        read_observations(f)
    msg = str(err.value)
    assert "\n" not in msg and re.search(expect, msg), msg
    if "not dates" not in msg:
        assert msg.endswith("write dates as YYYY-MM-DD (ISO 8601)")


def test_an_empty_band_is_warned_about_once_per_read(tmp_path: Path, caplog) -> None:
    f = tmp_path / "t.csv"
    rows = {"sample_id": ["a", "a", "b"], "date": ["2023-05-01", "2023-06-01", "2023-05-01"],
            "B04": [1.0, 2.0, 3.0], "B8A": [np.nan] * 3}  # fmt: skip
    pd.DataFrame(rows).to_csv(f, index=False)

    def warnings_of(read):
        caplog.clear()
        with caplog.at_level("WARNING"):
            out = read()
        return out, [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    obs, said = warnings_of(lambda: read_dataset(f))
    assert said == [
        f"band B8A holds no value in {f}: a model trained on it learns nothing from it; "
        "leave it out when training (train / transfer --bands, SeriesSet.select_bands in "
        "Python) or fill it"
    ]
    two = tmp_path / "two.csv"
    pd.DataFrame({**rows, "B05": [np.nan] * 3}).to_csv(two, index=False)
    _, said = warnings_of(lambda: read_dataset(two))
    assert len(said) == 1 and said[0].startswith(f"bands B05, B8A hold no value in {two}: ")
    from cropglobe.composite import composite

    ss, said = warnings_of(lambda: composite(obs, TimeGrid.monthly(), season_year=2023))
    assert said == []  # the read said it already
    npz = tmp_path / "s.npz"
    ss.save(npz)
    _, said = warnings_of(lambda: read_dataset(npz))
    assert len(said) == 1 and "band B8A holds no value in" in said[0] and "s.npz" in said[0]
    _, said = warnings_of(lambda: read_series_table(write_series_table(ss, tmp_path / "s.pq")))
    assert len(said) == 1 and "band B8A" in said[0]
    wide = tmp_path / "wide.csv"
    pd.DataFrame({"1": [np.nan, np.nan], "17": [np.nan, np.nan]}).to_csv(wide, index=False)
    _, said = warnings_of(lambda: read_dataset(wide))
    assert len(said) == 1 and "band NDVI holds no value" in said[0]
    ok = tmp_path / "ok.csv"
    _tidy(ok)  # B02 has a gap but values elsewhere: nothing to say
    _, said = warnings_of(lambda: read_dataset(ok))
    assert said == []


def test_reader_messages_give_the_command_line_form_of_their_advice(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.main import cli

    def info(path: Path, *options: str) -> tuple[int, str]:
        res = CliRunner().invoke(cli, ["info", str(path), *options])
        if res.exit_code:  # an error is one line
            assert len(res.output.strip().splitlines()) == 1, res.output
        return res.exit_code, res.output

    # labels the table does not know: readers take label_table=, not map_labels' default=
    f = tmp_path / "labels.csv"
    rows = {"sample_id": ["a", "a", "b"], "date": ["2023-05-01", "2023-06-01", "2023-05-01"],
            "B04": [1.0, 2.0, 3.0], "label": ["barley", "barley", "wheat"]}  # fmt: skip
    pd.DataFrame(rows).to_csv(f, index=False)
    code, out = info(f)
    assert code == 2 and "default=" not in out
    assert """--read-option 'label_table={"LABEL": "other", …}'""" in out
    code, out = info(f, "--read-option", 'label_table={"barley": "other", "wheat": "wheat"}')
    assert code == 0, out  # the advice works
    # no band column recognised: bands= is a reader setting too
    f = tmp_path / "bands.csv"
    pd.DataFrame({"sample_id": ["a", "a"], "date": ["2023-05-01", "2023-06-01"],
                  "foo": [1.0, 2.0]}).to_csv(f, index=False)  # fmt: skip
    code, out = info(f)
    assert code == 2 and """--read-option 'bands=["NAME", …]'""" in out
    assert info(f, "--read-option", 'bands=["foo"]')[0] == 0
    # a wide table over two seasons: anchor=
    f = tmp_path / "wide.csv"
    pd.DataFrame({"sample_id": ["a", "b"], "2022-11-01": [0.1, 0.2],
                  "2023-02-01": [0.3, 0.4]}).to_csv(f, index=False)  # fmt: skip
    code, out = info(f)
    assert code == 2 and "--read-option anchor=MM-DD" in out
    assert info(f, "--read-option", "anchor=10-01")[0] == 0


def test_numeric_label_codes_with_a_table_of_number_keys(tmp_path: Path) -> None:
    # a user's own codes (1 = wheat, 2 = corn) mapped with a table keyed by numbers; a label
    # column read as floats (a missing label) holds the same codes
    path = tmp_path / "own.csv"
    pd.DataFrame(
        {
            "sample_id": ["a", "a", "b", "c"],
            "date": ["2021-05-01", "2021-06-01", "2021-05-01", "2021-05-01"],
            "B04": [500.0, 400.0, 600.0, 550.0],
            "B08": [3000.0, 3500.0, 2500.0, 2600.0],
            "label": [1, 1, 2, None],
        }
    ).to_csv(path, index=False)
    obs = read_observations(path, label_table={1: "wheat", 2.0: "corn"})
    names = dict(zip(obs.samples["sample_id"], obs.samples["label"], strict=True))
    assert [obs.classes[names["a"]], obs.classes[names["b"]], names["c"]] == ["wheat", "corn", -1]


def test_a_missing_column_is_matched_to_the_nearest_and_a_cut_list_says_so(
    tmp_path: Path,
) -> None:
    """label_column=crop7 on a table with 25 columns, crop6 among the last: the error names
    crop6 and says the list of columns found is cut (it once showed the first 20 only)."""
    f = tmp_path / "own.csv"
    cols = {f"extra{i:02d}": [1.0, 2.0] for i in range(20)}
    pd.DataFrame({"parcel": ["a", "a"], "obs_date": ["2023-05-01", "2023-06-01"], **cols,
                  "B04": [500, 600], "B08": [3000, 3500], "crop6": ["corn", "corn"]}
                 ).to_csv(f, index=False)  # fmt: skip
    with pytest.raises(DataFormatError) as err:
        read_observations(f, sample_column="parcel", date_column="obs_date", label_column="crop7")
    text = str(err.value)
    assert "did you mean 'crop6' for 'crop7'?" in text and "and 5 more" in text


def test_dates_with_utc_offsets_keep_their_local_day(tmp_path: Path) -> None:
    # dates stored at local midnight by a time-zone-aware tool: 1 July in Paris is 30 June in
    # UTC, and converting moved every observation into the month (or 5-day bin) before
    from cropglobe.composite import composite

    text = ["2023-06-15T00:00:00+02:00", "2023-07-01T00:00:00+02:00", "2023-08-01T00:00+0200"]
    f = _dated(tmp_path / "tz.csv", text)
    got = read_observations(f).table["date"].dt.strftime("%Y-%m-%d %H:%M").tolist()
    assert got == ["2023-06-15 00:00", "2023-07-01 00:00", "2023-08-01 00:00"]
    ss = composite(read_observations(f), TimeGrid.monthly())
    assert ss.values[0, 0, 5:8].tolist() == [0.0, 1.0, 2.0]  # June, July, August
    p = tmp_path / "tz.parquet"
    dates = pd.to_datetime(["2023-07-01", "2023-08-01"]).tz_localize("Europe/Paris")
    pd.DataFrame({"sample_id": ["a", "a"], "date": dates, "B04": [1.0, 2.0]}).to_parquet(p)
    got = read_observations(p).table["date"].dt.strftime("%Y-%m-%d").tolist()
    assert got == ["2023-07-01", "2023-08-01"]


def test_tidy_integer_65535_is_no_data(tmp_path: Path, caplog) -> None:
    p = tmp_path / "u16.parquet"
    df = pd.DataFrame({"sample_id": ["a"] * 3, "date": ["2023-05-01", "2023-05-02", "2023-05-03"],
                       "B04": np.array([500, 65535, 700], dtype=np.uint16),
                       "B08": np.array([3000, 3100, 3200], dtype=np.uint16)})  # fmt: skip
    df.to_parquet(p, index=False)
    with caplog.at_level("WARNING", logger="cropglobe.io.tables"):
        obs = read_observations(p)
    assert np.isnan(obs.table["B04"].to_numpy()[1]) and obs.table["B08"].notna().all()
    assert any("65535" in r.getMessage() and "B04 1 row" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_tidy_reflectance_in_0_1_is_warned_about(tmp_path: Path, caplog) -> None:
    p = tmp_path / "unit.csv"
    pd.DataFrame({"sample_id": ["a", "a"], "date": ["2023-05-01", "2023-05-11"],
                  "B04": [0.05, 0.06], "B08": [0.3, 0.35]}).to_csv(p, index=False)  # fmt: skip
    with caplog.at_level("WARNING"):
        read_observations(p)
    assert any("0-1" in r.getMessage() for r in caplog.records)


def test_tidy_rows_repeated_exactly_count_once(tmp_path: Path, caplog) -> None:
    from cropglobe.composite import composite

    p = tmp_path / "dup.csv"
    pd.DataFrame({"sample_id": ["a"] * 3, "date": ["2023-05-02", "2023-05-02", "2023-05-20"],
                  "B04": [100.0, 100.0, 300.0]}).to_csv(p, index=False)  # fmt: skip
    with caplog.at_level("WARNING", logger="cropglobe.io.tables"):
        obs = read_observations(p)
    assert len(obs.table) == 2
    assert any("repeat another row exactly" in r.getMessage() for r in caplog.records)
    assert composite(obs, TimeGrid.monthly()).values[0, 0, 4] == 200.0  # not 100: no copy


def test_offsets_of_several_zones_in_unusual_forms_are_read(tmp_path: Path) -> None:
    # forms the offset stripping leaves (an hour without minutes) fall back to one clock, UTC
    f = _dated(tmp_path / "zones.csv", ["2023-05-01T10+02:00", "2023-05-01T10+03:00"])
    got = read_observations(f).table["date"].dt.strftime("%Y-%m-%d %H:%M").tolist()
    assert sorted(got) == ["2023-05-01 07:00", "2023-05-01 08:00"]


def test_day_of_year_numbers_and_per_date_columns_get_a_way_out(tmp_path: Path) -> None:
    f = _dated(tmp_path / "doy.csv", [121, 136, 151])
    with pytest.raises(DataFormatError, match=r"not dates, e\.g\. '121'.*day-of-year numbers"):
        read_observations(f)
    p = tmp_path / "wide.csv"
    pd.DataFrame({"sample_id": ["a"], "B04_2023-05-01": [1.0], "B04_2023-05-11": [2.0]}).to_csv(
        p, index=False
    )
    with pytest.raises(DataFormatError, match=r"one column per band and date.*pandas\.melt"):
        read_observations(p)


def test_to_frame_is_the_written_table_in_memory(tmp_path: Path) -> None:
    ss = _series()
    frame = ss.to_frame()
    pd.testing.assert_frame_equal(frame, pd.read_parquet(write_series_table(ss, tmp_path / "s.pq")))
    # row (sample i, step j) holds values[i, :, j]; unlabelled samples have no class name
    row = frame[(frame["sample"] == 1) & (frame["step"] == 3)].iloc[0]
    np.testing.assert_array_equal(row[["B02", "B08", "VV"]].to_numpy(float), ss.values[1, :, 3])
    assert frame.loc[frame["sample"] == 2, "label"].isna().all()
