"""Earth Engine exports (reduceRegions CSV/GeoJSON, getRegion CSV) -> Observations."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.errors import BandError, DataFormatError
from cropglobe.io import read_dataset, read_gee_export, read_observations
from cropglobe.io.gee import geojson_lonlat
from cropglobe.series import Observations, SeriesSet

PRODUCTS = {
    "2021-05-01": "20210501T105031_20210501T105350_T31TCJ",
    "2021-05-03": "20210503T104619_20210503T104955_T31TCJ",
    "2021-06-10": "20210610T105031_20210610T105350_T31TCJ",
}
POINTS = {  # id -> (lon, lat, crop)
    "p1": (1.25, 43.40, "corn"),
    "p2": (1.30, 43.45, "wheat"),
}


def _reduce_regions_rows() -> list[dict]:
    """A reduceRegions export: 2 points x 3 images, plus p1 seen twice on 2021-06-10 (another
    tile), and p2 outside the 2021-05-03 image (no band values)."""
    rows = []
    for k, product in enumerate(PRODUCTS.values()):
        for j, (pid, (lon, lat, crop)) in enumerate(POINTS.items()):
            base = 1000 + 100 * k + 10 * j
            rows.append(
                {
                    "system:index": f"{product}_{j:020d}",
                    "B2": base,
                    "B3": base + 1,
                    "B4": base + 2,
                    "B8": base + 3,
                    "B8A": base + 4,
                    "AOT": 150,
                    "QA60": 0,
                    "SCL": 4,
                    "country": "FR",
                    "crop": crop,
                    "id": pid,
                    ".geo": json.dumps({"type": "Point", "coordinates": [lon, lat]}),
                }
            )
    rows[1]["SCL"] = 9  # p2 cloudy on 2021-05-01 (kept as SCL, masked by compositing)
    for c in ("B2", "B3", "B4", "B8", "B8A", "SCL"):
        rows[3][c] = None  # p2 outside the 2021-05-03 image
    extra = dict(rows[4])  # p1 on 2021-06-10 from the overlapping tile T31TCH
    extra["system:index"] = "20210610T105031_20210610T105350_T31TCH_00000000000000000000"
    extra.update(B2=1300, B3=1301, B4=1302, B8=1303, B8A=1304)
    rows.append(extra)
    cloudy = dict(extra)  # and a cloudy third tile, which the median leaves out
    cloudy["system:index"] = "20210610T105031_20210610T105350_T31TDH_00000000000000000000"
    cloudy.update(B2=9000, SCL=8)
    rows.append(cloudy)
    return rows


@pytest.fixture()
def rr_csv(tmp_path: Path) -> Path:
    path = tmp_path / "gee_export.csv"
    pd.DataFrame(_reduce_regions_rows()).to_csv(path, index=False)
    return path


def test_reduce_regions_csv(rr_csv: Path) -> None:
    obs = read_dataset(rr_csv)
    assert isinstance(obs, Observations) and obs.attrs["format"] == "gee"
    assert obs.bands == ("B02", "B03", "B04", "B08", "B8A")  # renamed, AOT/QA60/SCL are no bands
    s = obs.samples.set_index("sample_id")
    assert list(s.index) == ["p1", "p2"]
    assert s.loc["p1", ["lon", "lat"]].tolist() == [1.25, 43.40]
    assert s.loc["p2", ["lon", "lat"]].tolist() == [1.30, 43.45]
    assert s["country"].tolist() == ["FRA", "FRA"]
    assert [obs.classes[i] for i in s["label"]] == ["corn", "wheat"]
    t = obs.table
    p1 = t[t["sample"] == 0]
    assert p1["date"].dt.strftime("%Y-%m-%d").tolist() == ["2021-05-01", "2021-05-03", "2021-06-10"]
    # the three tiles of 2021-06-10: the cloudy one left out, the two clear ones' median
    np.testing.assert_array_equal(p1["B02"].to_numpy(), [1000, 1100, (1200 + 1300) / 2])
    assert p1["SCL"].tolist() == [4, 4, 4]
    p2 = t[t["sample"] == 1]
    assert p2["date"].dt.strftime("%Y-%m-%d").tolist() == ["2021-05-01", "2021-06-10"]
    assert p2["SCL"].tolist() == [9, 4]
    assert p2["B8A"].tolist() == [1014, 1214]


def test_duplicates_error_and_ids_from_system_index(rr_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"sample 'p1' has several rows on 2021-06-10"):
        read_gee_export(rr_csv, duplicates="error")
    # without the id property, the feature index of system:index tells the points apart
    df = pd.read_csv(rr_csv).drop(columns=["id"])
    path = tmp_path / "noid.csv"
    df.to_csv(path, index=False)
    obs = read_observations(path)
    assert obs.samples["sample_id"].tolist() == ["00000000000000000000", "00000000000000000001"]
    # without system:index either, the coordinates do
    df.drop(columns=["system:index"]).assign(date="2021-05-01").iloc[:2].to_csv(path, index=False)
    obs = read_observations(path)
    assert obs.samples["sample_id"].tolist() == ["1.250000,43.400000", "1.300000,43.450000"]


def test_dates_from_time_start_then_date_column(tmp_path: Path) -> None:
    rows = _reduce_regions_rows()[:2]
    ms = int(pd.Timestamp("2021-07-04T10:50:31Z").timestamp() * 1000)
    df = pd.DataFrame(rows).assign(**{"system:time_start": [ms, ms], "date": "2020-01-01"})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    assert set(read_observations(path).table["date"].astype(str)) == {"2021-07-04"}
    df.drop(columns=["system:time_start"]).to_csv(path, index=False)
    assert set(read_observations(path).table["date"].astype(str)) == {"2020-01-01"}


def test_get_region_csv_qa60(tmp_path: Path) -> None:
    ms = [int(pd.Timestamp(d, tz="UTC").timestamp() * 1000) + 37_000_000 for d in PRODUCTS]
    rows = []
    for k, (product, t) in enumerate(zip(PRODUCTS.values(), ms, strict=True)):
        for j, (lon, lat, _) in enumerate(POINTS.values()):
            qa = (1 << 10) if (k, j) == (1, 0) else (1 << 11) if (k, j) == (2, 1) else 0
            rows.append([product, lon, lat, t, 500 + k, 600 + j, 3000, qa])
    path = tmp_path / "region.csv"
    cols = ["id", "longitude", "latitude", "time", "B2", "B4", "B8", "QA60"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    obs = read_dataset(path)
    assert isinstance(obs, Observations) and obs.attrs["layout"] == "getRegion"
    assert obs.bands == ("B02", "B04", "B08") and "SCL" not in obs.table
    assert obs.samples["sample_id"].tolist() == ["1.250000,43.400000", "1.300000,43.450000"]
    assert (obs.samples["label"] == -1).all()
    t = obs.table
    assert t["date"].dt.strftime("%m-%d").tolist() == ["05-01", "05-03", "06-10"] * 2
    # QA60 bit 10 (opaque) on p1 2021-05-03, bit 11 (cirrus) on p2 2021-06-10
    assert t["valid"].tolist() == [True, False, True, True, True, False]


def test_geojson_export_and_polygon_centroid(tmp_path: Path) -> None:
    square = {"type": "Polygon", "coordinates": [[[1, 43], [1.2, 43], [1.2, 43.1], [1, 43.1],
                                                  [1, 43]]]}  # fmt: skip
    assert geojson_lonlat(square) == pytest.approx((1.1, 43.05))
    feats = []
    for k, product in enumerate(PRODUCTS.values()):
        feats.append(
            {
                "type": "Feature",
                "id": f"{product}_0",
                "geometry": square,
                "properties": {"B2": 100 + k, "B11": 200, "label": "rice", "fid": 7},
            }
        )
    path = tmp_path / "export.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    obs = read_dataset(path)
    assert isinstance(obs, Observations) and obs.bands == ("B02", "B11")
    assert obs.samples["sample_id"].tolist() == ["7"]
    assert obs.samples[["lon", "lat"]].iloc[0].tolist() == pytest.approx([1.1, 43.05])
    assert obs.table["B02"].tolist() == [100, 101, 102]
    assert obs.table["date"].dt.strftime("%Y-%m-%d").tolist() == list(PRODUCTS)


def test_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({".geo": ['{"type":"Point","coordinates":[1,2]}'], "B2": [1.0], "id": [1]}).to_csv(
        path, index=False
    )
    with pytest.raises(DataFormatError, match="no date information: expected a system:time_start"):
        read_observations(path)
    pd.DataFrame({"system:index": [f"{PRODUCTS['2021-05-01']}_0"], "AOT": [1], "id": [1]}).to_csv(
        path, index=False
    )
    with pytest.raises(BandError, match="no band columns found"):
        read_observations(path)
    tidy = tmp_path / "tidy.csv"
    pd.DataFrame({"sample_id": ["a"], "date": ["2021-05-01"], "B02": [1.0]}).to_csv(tidy)
    with pytest.raises(DataFormatError, match="format='gee' but the table has none"):
        read_observations(tidy, format="gee")
    with caplog.at_level(logging.WARNING, logger="cropglobe.io.gee"):
        pd.DataFrame(
            {"system:index": [f"{PRODUCTS['2021-05-01']}_0"], "B2": [0.05], "B4": [0.04]}
        ).to_csv(path, index=False)
        read_observations(path)
    assert "look like reflectance in 0-1" in caplog.text


def test_composite_cli_on_an_export(rr_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "series.npz"
    res = CliRunner().invoke(cli, ["composite", str(rr_csv), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    ss = SeriesSet.load(out)
    assert ss.bands == ("B02", "B03", "B04", "B08", "B8A") and ss.grid.n_steps == 73
    b02 = ss.bands.index("B02")
    # 5-day bins: 2021-05-01 (day 121) and 05-03 (day 123) share bin 24 (days 121-125),
    # 2021-06-10 (day 161) is bin 32 (days 161-165)
    p1, p2 = (int(np.flatnonzero(ss.meta["sample_id"] == s)[0]) for s in ("p1", "p2"))
    assert ss.values[p1, b02, 24] == pytest.approx((1000 + 1100) / 2)
    assert ss.values[p1, b02, 32] == pytest.approx((1200 + 1300) / 2)
    # p2's 2021-05-01 is cloudy (SCL 9) and it lies outside the 2021-05-03 image: the bin is
    # gap-filled from 2021-06-10 (held: the series' first observation)
    assert ss.values[p2, b02, 32] == pytest.approx(1210)
    assert ss.values[p2, b02, 24] == pytest.approx(1210)
    assert [ss.classes[i] for i in ss.labels[[p1, p2]]] == ["corn", "wheat"]


def test_reducer_suffixes_and_image_only_system_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # reduceRegions with a combined reducer: B2_first …, SCL both as mode and mean
    rows = _reduce_regions_rows()[:2]
    df = pd.DataFrame(rows).drop(columns=["QA60"])
    df = df.rename(columns={c: f"{c}_first" for c in ("B2", "B3", "B4", "B8", "B8A")})
    df = df.rename(columns={"SCL": "SCL_mode"}).assign(SCL_mean=6.5)
    path = tmp_path / "first.csv"
    df.to_csv(path, index=False)
    obs = read_observations(path)
    assert obs.bands == ("B02", "B03", "B04", "B08", "B8A")
    assert obs.table["B02"].tolist() == [1000, 1010] and obs.table["SCL"].tolist() == [4, 9]
    # an averaged SCL (reduceRegions with ee.Reducer.mean()) is read, with a WARNING
    with caplog.at_level(logging.WARNING, logger="cropglobe.io.gee"):
        df.drop(columns=["SCL_mode"]).to_csv(path, index=False)
        read_observations(path)
    assert "SCL holds non-integer values (e.g. 6.5)" in caplog.text
    # ee.Feature(point, img.reduceRegion(...)): system:index is the image's own, no feature
    # part; the tile (T31TCJ / T31TCH) is no sample name, the coordinates are
    products = [PRODUCTS["2021-05-01"], PRODUCTS["2021-05-01"].replace("T31TCJ", "T31TCH")]
    geo = json.dumps({"type": "Point", "coordinates": [1.25, 43.4]})
    one = pd.DataFrame({"system:index": products, "B2": [500, 520], "SCL": [4, 4], ".geo": geo})
    one.to_csv(path, index=False)
    obs = read_observations(path)
    assert obs.samples["sample_id"].tolist() == ["1.250000,43.400000"]
    assert obs.table["B02"].tolist() == [510]  # one point seen by two tiles: their median
    one.assign(**{".geo": None}).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match="cannot tell the points apart"):
        read_observations(path)
