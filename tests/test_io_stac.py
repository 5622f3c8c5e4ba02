"""STAC search, stack loading and point sampling on a tiny static catalog built in tmp_path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pystac = pytest.importorskip("pystac")
pytest.importorskip("odc.stac")
rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402
from rasterio.warp import transform, transform_bounds  # noqa: E402

from cropglobe.cli.main import cli  # noqa: E402
from cropglobe.errors import BandError, ParameterError  # noqa: E402
from cropglobe.io import read_observations  # noqa: E402
from cropglobe.io.raster import open_stack, stack_from_xarray  # noqa: E402
from cropglobe.io.stac import (  # noqa: E402
    StacError,
    _quiet_deprecations,
    extract_points,
    load_stack,
    search_items,
)
from cropglobe.series import SeriesSet  # noqa: E402

CRS = "EPSG:32631"
X0, Y0, N = 370000.0, 4810000.0, 32
DAYS = ("2021-05-01", "2021-06-10", "2021-07-20")
CLOUD = (10.0, 50.0, 90.0)
KEYS = {"blue": "B02", "red": "B04", "nir": "B08"}  # Earth Search asset keys


def _value(k: int, j: int, r: int, c: int) -> int:
    """Digital number of item k, band j at row r, column c."""
    return 2000 + 10000 * k + 1000 * j + r * N + c


def _scl(k: int) -> np.ndarray:
    """SCL at 20 m (16 x 16): vegetation, except a cloudy top-left quarter on the 2nd date."""
    scl = np.full((N // 2, N // 2), 4, np.uint8)
    if k == 1:
        scl[:8, :8] = 9
    return scl


def _write(path: Path, arr: np.ndarray, res: float) -> None:
    with rasterio.open(
        path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
        dtype=arr.dtype, crs=CRS, transform=Affine(res, 0.0, X0, 0.0, -res, Y0), nodata=0,
    ) as ds:  # fmt: skip
        ds.write(arr, 1)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 items (3 dates, cloud 10/50/90 %), each with blue/red/nir at 10 m and scl at 20 m;
    the last of processing baseline 04.00 (DN = reflectance x 10,000 + 1,000)."""
    root = tmp_path_factory.mktemp("stac")
    bounds = transform_bounds(CRS, "EPSG:4326", X0, Y0 - 10 * N, X0 + 10 * N, Y0)
    w, s, e, n = bounds
    geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    cat = pystac.Catalog("tiny", "a tiny Sentinel-2 catalog")
    rows, cols = np.mgrid[0:N, 0:N]
    for k, day in enumerate(DAYS):
        iid = f"S2A_31TCJ_{day.replace('-', '')}_0_L2A"
        when = dt.datetime.fromisoformat(f"{day}T10:46:00+00:00")
        props = {"eo:cloud_cover": CLOUD[k]}
        if k == 2:
            props["s2:processing_baseline"] = "04.00"
        item = pystac.Item(iid, geom, list(bounds), when, props, collection="sentinel-2-l2a")
        folder = root / iid
        folder.mkdir()
        for j, key in enumerate(KEYS):
            _write(folder / f"{key}.tif", _value(k, j, rows, cols).astype(np.uint16), 10.0)
            item.add_asset(key, pystac.Asset(f"./{key}.tif", media_type=pystac.MediaType.GEOTIFF))
        _write(folder / "scl.tif", _scl(k), 20.0)
        item.add_asset("scl", pystac.Asset("./scl.tif", media_type=pystac.MediaType.GEOTIFF))
        item.properties["proj:code"] = CRS
        cat.add_item(item)
    cat.normalize_hrefs(str(root))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def _lonlat(r: float, c: float) -> tuple[float, float]:
    """Lon/lat of the centre of pixel (r, c) of the 10 m grid."""
    lon, lat = transform(CRS, "EPSG:4326", [X0 + 10 * c + 5], [Y0 - 10 * r - 5])
    return lon[0], lat[0]


def _tile_bbox() -> list[float]:
    """The lon/lat envelope of the tile (it holds the whole tile and a margin of no data)."""
    return list(transform_bounds(CRS, "EPSG:4326", X0, Y0 - 10 * N, X0 + 10 * N, Y0))


WIDE = [1.0, 43.0, 2.0, 44.0]


def test_search_filters(catalog: Path) -> None:
    every = search_items(catalog, bbox=WIDE, start="2021-01-01", end="2021-12-31")
    assert [i.datetime.date().isoformat() for i in every] == list(DAYS)
    assert len(search_items(catalog, bbox=WIDE, start="2021-01-01", end="2021-12-31",
                            max_cloud=60)) == 2  # fmt: skip
    late = search_items(catalog, bbox=WIDE, start="2021-06-10", end="2021-07-20", max_cloud=60)
    assert [i.datetime.date().isoformat() for i in late] == ["2021-06-10"]
    with pytest.raises(StacError, match="relaxing the bbox alone finds 3"):
        search_items(catalog, bbox=[10, 50, 11, 51], start="2021-01-01", end="2021-12-31")
    with pytest.raises(StacError, match="relaxing --max-cloud alone finds 1"):
        search_items(catalog, bbox=WIDE, start="2021-07-01", end="2021-07-31", max_cloud=20)
    with pytest.raises(ParameterError, match="not WEST SOUTH EAST NORTH"):
        search_items(catalog, bbox=[2, 43, 1, 44], start="2021-01-01", end="2021-12-31")
    with pytest.raises(ParameterError, match="end before they start"):
        search_items(catalog, bbox=WIDE, start="2021-12-31", end="2021-01-01")


def test_load_stack_values(catalog: Path) -> None:
    items = search_items(catalog, bbox=WIDE, start="2021-01-01", end="2021-12-31")
    da = load_stack(items, bands=["B2", "B08"], bbox=_tile_bbox(), chunks={"x": 16, "y": 16})
    assert da.dims == ("time", "band", "y", "x")
    assert list(da["band"].values) == ["B02", "B08", "SCL"] and "32631" in da.attrs["crs"]
    assert list(da["time"].values.astype("datetime64[D]").astype(str)) == list(DAYS)
    for r, c in ((1, 2), (20, 30), (31, 0)):
        px = da.sel(x=X0 + 10 * c + 5, y=Y0 - 10 * r - 5, method=None).values
        for k in range(3):
            shift = -1000 if k == 2 else 0  # baseline 04.00 harmonised
            assert px[k, 0] == _value(k, 0, r, c) + shift
            assert px[k, 1] == _value(k, 2, r, c) + shift
            assert px[k, 2] == _scl(k)[r // 2, c // 2]
    st = stack_from_xarray(da)
    assert st.bands == ("B02", "B08") and st.mask_array is not None


def test_extract_points(catalog: Path) -> None:
    items = search_items(catalog, bbox=WIDE, start="2021-01-01", end="2021-12-31")
    pix = {"a": (3, 4), "b": (25, 17), "out": (-40, 5)}
    lonlat = [_lonlat(*rc) for rc in pix.values()]
    points = pd.DataFrame(
        {"sample_id": list(pix), "lon": [p[0] for p in lonlat], "lat": [p[1] for p in lonlat]}
    ).assign(label=["corn", "wheat", "rice"])
    obs = extract_points(items, points, bands=["B04", "B08"], assets={"B04": "red"})
    assert obs.bands == ("B04", "B08") and len(obs.table) == 6  # "out" lies outside the tile
    assert [obs.classes[i] for i in obs.samples["label"]] == ["corn", "wheat", "rice"]
    t = obs.table
    for s, (name, (r, c)) in enumerate(list(pix.items())[:2]):
        rows = t[t["sample"] == s]
        assert rows["date"].dt.strftime("%Y-%m-%d").tolist() == list(DAYS)
        shift = np.array([0, 0, -1000])
        np.testing.assert_array_equal(rows["B04"], [_value(k, 1, r, c) for k in range(3)] + shift)
        np.testing.assert_array_equal(rows["B08"], [_value(k, 2, r, c) for k in range(3)] + shift)
        assert rows["SCL"].tolist() == [_scl(k)[r // 2, c // 2] for k in range(3)], name
    assert t[t["sample"] == 0]["SCL"].tolist() == [4, 9, 4]  # the cloudy corner
    with pytest.raises(BandError, match="not a Sentinel-2 L2A band; expected some of B01"):
        extract_points(items, points, bands=["B10"])


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["download", *args])
    return res.exit_code, res.output


def test_cli_download_stack_and_points(catalog: Path, tmp_path: Path) -> None:
    box = [f"{v:.6f}" for v in _tile_bbox()]
    common = ["--stac", str(catalog), "--dates", "2021-01-01/2021-12-31", "-q"]
    code, out = _run(*common, "--bbox", *box, "--bands", "B02,B04", "-o", str(tmp_path / "s.zarr"))
    assert code == 0, out
    assert "found 3 items on 3 days (2021-05-01 … 2021-07-20)" in out
    assert "bands B02,B04 + SCL" in out
    st = stack_from_xarray(tmp_path / "s.zarr")  # as `cropglobe map --stack s.zarr` opens it
    assert st.bands == ("B02", "B04") and st.mask_array is not None and "32631" in str(st.crs)
    assert list(st.dates.astype(str)) == list(DAYS)
    # the stack's pixel holding (r, c) = (5, 6) of the source grid
    row, col = rasterio.transform.rowcol(st.transform, X0 + 10 * 6 + 5, Y0 - 10 * 5 - 5)
    with st.reader() as rd:
        vals, valid = rd.read((int(row), int(col), 1, 1), [0, 1, 2], [1])
    assert vals[:, 0, 0, 0].tolist() == [_value(0, 1, 5, 6), _value(1, 1, 5, 6),
                                        _value(2, 1, 5, 6) - 1000]  # fmt: skip
    assert valid[:, 0, 0].tolist() == [True, False, True]  # SCL 9 on the second date
    # a folder of GeoTIFFs, as `cropglobe map --stack folder/` opens it
    code, out = _run(*common, "--bbox", *box, "--bands", "B08", "-o", str(tmp_path / "tifs"))
    assert code == 0, out
    ts = open_stack(tmp_path / "tifs")
    assert ts.bands == ("B08",) and len(ts.dates) == 3 and ts.mask_sources[0] is not None
    # points -> observations -> composite
    pts = tmp_path / "points.csv"
    lon, lat = _lonlat(20, 20)
    pd.DataFrame({"lon": [lon], "lat": [lat], "id": ["f1"], "crop": ["corn"]}).to_csv(pts)
    obs_path = tmp_path / "obs.parquet"
    code, out = _run(*common, "--points", str(pts), "--bands", "B04", "-o", str(obs_path))
    assert code == 0, out
    assert "3 observations of 1 points, bands B04 + SCL" in out
    obs = read_observations(obs_path)
    assert obs.table["B04"].tolist() == [_value(0, 1, 20, 20), _value(1, 1, 20, 20),
                                         _value(2, 1, 20, 20) - 1000]  # fmt: skip
    series = tmp_path / "series.npz"
    res = CliRunner().invoke(cli, ["composite", str(obs_path), "-o", str(series), "-q"])
    assert res.exit_code == 0, res.output
    ss = SeriesSet.load(series)
    # 2021-05-01 is day 121 (bin 24 of the 5-day grid), 06-10 day 161 (bin 32), 07-20 day 201
    assert ss.values[0, 0, 24] == _value(0, 1, 20, 20)
    assert ss.values[0, 0, 32] == _value(1, 1, 20, 20)
    assert ss.values[0, 0, 40] == _value(2, 1, 20, 20) - 1000
    assert ss.meta["sample_id"].tolist() == ["f1"] and ss.classes[ss.labels[0]] == "corn"


def test_cli_download_errors(catalog: Path, tmp_path: Path) -> None:
    base = ["--stac", str(catalog), "--bbox", "1", "43", "2", "44", "-q"]
    out_zarr = ["-o", str(tmp_path / "x.zarr")]
    code, out = _run(*base, "--dates", "2021-01-01/2021-12-31", "--bands", "B02,B99", *out_zarr)
    assert code == 2 and "band 'B99' is not a Sentinel-2 L2A band" in out and "B8A" in out
    assert "Traceback" not in out
    code, out = _run(*base, "--dates", "2021-13-01/2021-12-31", *out_zarr)
    assert code == 2 and "start '2021-13-01' is not a date; expected YYYY-MM-DD" in out
    code, out = _run(*base, "--dates", "2022-01-01/2022-12-31", *out_zarr)
    assert code == 2 and "no items found" in out and "relaxing the dates alone finds 3" in out
    code, out = _run("--stac", str(catalog), "--bbox", "3", "43", "2", "44",
                     "--dates", "2021-01-01/2021-12-31", *out_zarr)  # fmt: skip
    assert code == 2 and "bbox 3 43 2 44 is not WEST SOUTH EAST NORTH" in out
    code, out = _run("--stac", "http://127.0.0.1:9/v1", "--bbox", "1", "43", "2", "44",
                     "--dates", "2021-01-01/2021-12-31", *out_zarr)  # fmt: skip
    assert code == 2 and "cannot search the STAC API at http://127.0.0.1:9/v1" in out
    assert len(out.strip().splitlines()) == 1
    code, out = _run(*base, "--dates", "2021-01-01/2021-12-31", "-o", str(tmp_path / "x.parquet"))
    assert code == 2 and "without --points a raster stack is written" in out
    assert not (tmp_path / "x.zarr").exists()


def test_linear_offset_undeclared_follows_the_baseline() -> None:
    from cropglobe.io.stac import _linear

    def item(baseline: str, band: dict) -> pystac.Item:
        it = pystac.Item("x", None, None, dt.datetime(2022, 3, 1, tzinfo=dt.UTC),
                         {"s2:processing_baseline": baseline})  # fmt: skip
        it.add_asset("red", pystac.Asset("red.tif", extra_fields={"raster:bands": [band]}))
        return it

    assert _linear(item("04.00", {"scale": 0.0001}), "red", True) == (1.0, -1000.0)
    assert _linear(item("02.14", {"scale": 0.0001}), "red", True) == (1.0, 0.0)
    assert _linear(item("04.00", {"scale": 0.0001, "offset": -0.1}), "red", True) == (1.0, -1000.0)
    assert _linear(item("04.00", {"scale": 0.0001, "offset": 0}), "red", True) == (1.0, 0.0)
    assert _linear(item("04.00", {"scale": 0.0001}), "red", False) == (1.0, 0.0)


def test_load_stack_one_day_of_two_baselines_and_crs(tmp_path: Path) -> None:
    """Two adjacent tiles of one day, baselines 02.14 and 04.00: one time step, each harmonised
    by its own rule (not two steps of one date, the second overwriting the first's GeoTIFF)."""
    items = []
    for k, (x0, baseline) in enumerate(((X0, "02.14"), (X0 + 10 * N, "04.00"))):
        b = transform_bounds(CRS, "EPSG:4326", x0, Y0 - 10 * N, x0 + 10 * N, Y0)
        w, s, e, n = b
        geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
        it = pystac.Item(f"tile{k}", geom, list(b), dt.datetime(2022, 3, 1, 10, 46, k,
                         tzinfo=dt.UTC), {"s2:processing_baseline": baseline})  # fmt: skip
        path = tmp_path / f"red{k}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", height=N, width=N, count=1, dtype="uint16", crs=CRS,
            transform=Affine(10.0, 0.0, x0, 0.0, -10.0, Y0), nodata=0,
        ) as ds:  # fmt: skip
            ds.write(np.full((N, N), 3000 + 1000 * k, np.uint16), 1)
        it.add_asset("red", pystac.Asset(str(path), media_type=pystac.MediaType.GEOTIFF))
        items.append(it)
    box = list(transform_bounds(CRS, "EPSG:4326", X0 + 50, Y0 - 300, X0 + 10 * N + 300, Y0 - 50))
    da = load_stack(items, bands=["B04"], bbox=box, crs=CRS)
    assert da.sizes["time"] == 1
    left = da.sel(x=X0 + 105, y=Y0 - 105).values[0, 0]
    right = da.sel(x=X0 + 10 * N + 105, y=Y0 - 105).values[0, 0]
    assert (left, right) == (3000, 3000)  # 3000 + 0 and 4000 - 1000
    with pytest.raises(ParameterError, match="crs='EPSG:99999' is not a coordinate reference"):
        load_stack(items, bands=["B04"], bbox=box, crs="EPSG:99999")
    geo = load_stack(items, bands=["B04"], bbox=box, crs="EPSG:4326", resolution=0.0005)
    assert geo.dims == ("time", "band", "y", "x") and "4326" in geo.attrs["crs"]
    # reprojected reads warn NotGeoreferencedWarning from odc-loader's threads on some runs;
    # write_stack (what the CLI computes the stack in) silences it the same way
    with _quiet_deprecations():
        assert np.nanmax(geo.values) == 3000


def test_sample_reads_by_block(tmp_path: Path) -> None:
    """Points across the 16 x 16 tiles of a tiled GeoTIFF, outside it and on nodata."""
    from cropglobe.io.stac import _sample

    arr = (np.arange(64 * 64).reshape(64, 64) + 1).astype(np.uint16)
    arr[5, 7] = 0  # nodata
    path = tmp_path / "tiled.tif"
    with rasterio.open(
        path, "w", driver="GTiff", height=64, width=64, count=1, dtype="uint16", crs=CRS,
        transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0), nodata=0, tiled=True,
        blockxsize=16, blockysize=16,
    ) as ds:  # fmt: skip
        ds.write(arr, 1)
    rng = np.random.default_rng(0)
    r, c = rng.integers(-3, 67, 300), rng.integers(-3, 67, 300)
    r[:2], c[:2] = (5, 63), (7, 63)
    lon, lat = transform(CRS, "EPSG:4326", list(X0 + 10 * c + 5.0), list(Y0 - 10 * r - 5.0))
    got = _sample(str(path), np.array(lon), np.array(lat), transform, rasterio)
    inside = (r >= 0) & (r < 64) & (c >= 0) & (c < 64)
    want = np.where(inside, arr[r.clip(0, 63), c.clip(0, 63)], 0).astype(np.float64)
    want[want == 0] = np.nan
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[0]) and got[1] == arr[63, 63]


def test_zarr_stack_is_written_in_strips_of_chunk_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dask-backed date is computed and written in strips of whole chunk rows (bounded
    memory, as the GeoTIFFs), and the store holds exactly the stack's values and the
    coordinates `cropglobe map` reads."""
    pytest.importorskip("zarr")
    import xarray as xr

    from cropglobe.io import stac

    rng = np.random.default_rng(4)
    values = rng.uniform(0, 5000, (2, 3, 300, 200)).astype(np.float32)
    values[1, 0, 40:90, 10:30] = np.nan
    da = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.array(["2021-05-01", "2021-06-10"], dtype="datetime64[ns]"),
            "band": ["B02", "B04", "SCL"],
            "y": Y0 - 10 * np.arange(300) - 5.0,
            "x": X0 + 10 * np.arange(200) + 5.0,
        },
        attrs={"crs": "EPSG:32631"},
    ).chunk({"time": 1, "band": 3, "y": 64, "x": 200})
    computed: list[tuple[int, ...]] = []
    real = xr.Dataset.compute

    def spy(self: xr.Dataset, **kw: object) -> xr.Dataset:
        computed.append(tuple(self["reflectance"].shape))
        return real(self, **kw)

    monkeypatch.setattr(xr.Dataset, "compute", spy)
    monkeypatch.setattr(stac, "_GEOTIFF_STRIP_BYTES", 3 * 200 * 4 * 150)  # 150 rows: 2 chunks
    stac.write_stack(da, tmp_path / "s.zarr")
    # strips of 128 rows (whole 64-row chunks), the last one shorter, for each date
    assert computed == [(1, 3, 128, 200), (1, 3, 128, 200), (1, 3, 44, 200)] * 2
    back = xr.open_zarr(tmp_path / "s.zarr")["reflectance"]
    np.testing.assert_array_equal(back.values, values)
    np.testing.assert_array_equal(back["x"].values, da["x"].values)
    np.testing.assert_array_equal(back["y"].values, da["y"].values)
    assert list(back["band"].values) == ["B02", "B04", "SCL"]
    st = stack_from_xarray(tmp_path / "s.zarr")
    assert st.bands == ("B02", "B04") and "32631" in str(st.crs)


def test_geotiff_stack_is_written_in_strips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A date is computed and written in strips of 256-row tiles (bounded memory), and the
    files hold exactly the stack's values, whatever the strip size."""
    import xarray as xr

    from cropglobe.io import stac

    rng = np.random.default_rng(3)
    values = rng.uniform(0, 5000, (2, 3, 600, 300)).astype(np.float32)
    values[0, 1, 10:20, 5:9] = np.nan
    da = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.array(["2021-05-01", "2021-06-10"], dtype="datetime64[ns]"),
            "band": ["B02", "B04", "SCL"],
            "y": Y0 - 10 * np.arange(600) - 5.0,
            "x": X0 + 10 * np.arange(300) + 5.0,
        },
        attrs={"crs": "EPSG:32631"},
    )
    monkeypatch.setattr(stac, "_GEOTIFF_STRIP_BYTES", 3 * 300 * 4 * 256)  # 256 rows a strip
    written = stac.write_stack(da, tmp_path / "tifs")
    for i, day in enumerate(["2021-05-01", "2021-06-10"]):
        with rasterio.open(written / f"{day}.tif") as ds:
            np.testing.assert_array_equal(ds.read(), values[i])  # NaN where the stack has NaN
            assert ds.descriptions == ("B02", "B04", "SCL") and ds.block_shapes[0] == (256, 256)
            assert ds.transform.c == X0 and ds.transform.f == Y0


def test_planetary_computer_without_its_package_says_how_to_sign(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # not installed
    url = "http://127.0.0.1:9/planetarycomputer/api/stac/v1"  # refused at once
    with caplog.at_level("WARNING", logger="cropglobe.io.stac"), pytest.raises(StacError):
        search_items(url, bbox=(1, 43, 2, 44), start="2021-01-01", end="2021-12-31")
    text = caplog.text
    assert "pip install planetary-computer" in text
    assert "modifier=planetary_computer.sign_inplace" in text and "403" in text
