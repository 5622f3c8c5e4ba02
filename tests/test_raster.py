"""Opening raster stacks: dates, band names, grid checks, windowed reads, xarray and Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402

from cropglobe.errors import BandError, DataFormatError, MissingFileError  # noqa: E402
from cropglobe.io.raster import open_stack, parse_date, stack_from_xarray  # noqa: E402

T0 = Affine(20.0, 0.0, 300000.0, 0.0, -20.0, 6000000.0)
BANDS = ("B02", "B04", "B8A")


def _write(
    path: Path,
    data: np.ndarray,
    *,
    names: tuple[str, ...] | None = BANDS,
    crs: str = "EPSG:32633",
    transform: Affine = T0,
    tags: dict[str, str] | None = None,
    nodata: float | None = None,
) -> Path:
    count, h, w = data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=h,
        width=w,
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data)
        if names:
            ds.descriptions = names
        if tags:
            ds.update_tags(**tags)
    return path


def _data(seed: int, count: int = 3, h: int = 20, w: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 5000, (count, h, w)).astype(np.uint16)


def test_parse_date() -> None:
    assert parse_date("S2A_20230501_T31UFQ.tif") == np.datetime64("2023-05-01")
    assert parse_date("tile_2022-11-30_b.tif") == np.datetime64("2022-11-30")
    assert parse_date("S2_T31UFQ_2023_v2.tif") is None
    assert parse_date("x_20231345.tif") is None


def test_multiband_files_dates_from_names_and_tags(tmp_path: Path) -> None:
    _write(tmp_path / "b_20230610.tif", _data(1))
    _write(tmp_path / "a_20230501.tif", _data(0))
    _write(tmp_path / "undated.tif", _data(2), tags={"TIFFTAG_DATETIME": "2023:07:04 10:30:00"})
    st = open_stack(str(tmp_path / "*.tif"))
    assert list(st.dates.astype(str)) == ["2023-05-01", "2023-06-10", "2023-07-04"]
    assert st.bands == BANDS and (st.height, st.width) == (20, 24)
    assert st.transform == T0 and st.crs.to_epsg() == 32633
    with st.reader() as rd:
        vals, valid = rd.read((5, 3, 10, 12), [0, 2], [2, 0])
    assert vals.shape == (2, 2, 10, 12) and vals.dtype == np.float32 and valid.all()
    np.testing.assert_array_equal(vals[0, 0], _data(0)[2, 5:15, 3:15])
    np.testing.assert_array_equal(vals[1, 1], _data(2)[0, 5:15, 3:15])


def test_per_band_files_nodata_and_scl(tmp_path: Path) -> None:
    d = _data(3)
    d[0, 0, 0] = 0
    for j, b in enumerate(BANDS):
        _write(tmp_path / f"T33_2023-05-01_{b}.tif", d[j : j + 1], names=None, nodata=0)
    scl = np.full((1, 20, 24), 4, np.uint8)
    scl[0, 1, :] = 9
    _write(tmp_path / "T33_2023-05-01_SCL.tif", scl, names=None)
    st = open_stack(tmp_path)
    assert st.bands == BANDS and len(st.files) == 4 and st.mask_sources[0] is not None
    with st.reader() as rd:
        vals, valid = rd.read((0, 0, 20, 24), [0], [0, 1, 2])
    assert np.isnan(vals[0, 0, 0, 0]) and not np.isnan(vals[0, 1, 0, 0])
    assert not valid[0, 1].any() and valid[0, 0].all()


def test_band_names_from_argument(tmp_path: Path) -> None:
    _write(tmp_path / "x_20230501.tif", _data(0), names=None)
    with pytest.raises(BandError, match="no descriptions"):
        open_stack(tmp_path)
    st = open_stack(tmp_path, bands=["blue", "red", "B8a"])
    assert st.bands == BANDS
    with pytest.raises(BandError, match="lacks bands"):
        st.band_positions(["B02", "B11"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crs": "EPSG:4326"}, "CRS EPSG:4326 differs from EPSG:32633"),
        ({"transform": Affine(20.0, 0.0, 300020.0, 0.0, -20.0, 6000000.0)}, "transform"),
        ({"shape": (3, 20, 25)}, "shape 20×25 differs from 20×24"),
    ],
)
def test_grid_mismatch_names_the_file(tmp_path: Path, kwargs: dict, message: str) -> None:
    _write(tmp_path / "a_20230501.tif", _data(0))
    shape = kwargs.pop("shape", (3, 20, 24))
    data = np.ones(shape, np.uint16)
    _write(tmp_path / "b_20230601.tif", data, **kwargs)
    with pytest.raises(DataFormatError, match=rf"b_20230601\.tif: .*{message}"):
        open_stack(str(tmp_path / "*.tif"))


def test_bad_stacks(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="matches no file"):
        open_stack(str(tmp_path / "*.tif"))
    _write(tmp_path / "nodate.tif", _data(0))
    with pytest.raises(DataFormatError, match="no acquisition date"):
        open_stack(tmp_path / "nodate.tif")
    (tmp_path / "nodate.tif").unlink()
    _write(tmp_path / "a_20230501.tif", _data(0))
    _write(tmp_path / "b_20230501.tif", _data(1))
    with pytest.raises(DataFormatError, match="also in"):
        open_stack(tmp_path)
    (tmp_path / "b_20230501.tif").unlink()
    _write(tmp_path / "c_20230601.tif", _data(1)[:2], names=("B02", "B04"))
    st = open_stack(tmp_path)  # a band some dates lack matters only to a model that needs it
    assert st.bands == ("B02", "B04") and st.incomplete_bands == {"B8A": ("2023-06-01",)}
    assert st.band_positions(["B04", "B02"]) == [1, 0]
    with pytest.raises(BandError, match=r"dates \['2023-06-01'\] lack bands \['B8A'\] the mo"):
        st.band_positions(["B02", "B8A"])
    (tmp_path / "c_20230601.tif").unlink()
    (tmp_path / "broken_20230701.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataFormatError, match=r"broken_20230701\.tif: unreadable"):
        open_stack([tmp_path / "a_20230501.tif", tmp_path / "broken_20230701.tif"])


def test_bands_only_some_dates_have(tmp_path: Path) -> None:
    # one date holds an extra band (B11): the stack keeps the bands every date has
    _write(tmp_path / "a_20230501.tif", _data(0))
    _write(tmp_path / "b_20230601.tif", _data(1, count=4), names=(*BANDS, "B11"))
    st = open_stack(tmp_path)
    assert st.bands == BANDS and st.incomplete_bands == {"B11": ("2023-05-01",)}
    with st.reader() as rd:
        vals, _ = rd.read((0, 0, 20, 24), [0, 1], st.band_positions(["B8A", "B02"]))
    np.testing.assert_array_equal(vals[1], _data(1, count=4)[[2, 0]].astype(np.float32))
    np.testing.assert_array_equal(vals[0], _data(0)[[2, 0]].astype(np.float32))
    with pytest.raises(BandError, match=r"dates \['2023-05-01'\] lack bands \['B11'\]"):
        st.band_positions(["B11"])


def test_xarray_dataset_and_zarr(tmp_path: Path) -> None:
    xr = pytest.importorskip("xarray")
    t, h, w = 3, 8, 10
    rng = np.random.default_rng(0)
    x = 300010.0 + 20.0 * np.arange(w)
    y = 5999990.0 - 20.0 * np.arange(h)
    times = np.array(["2023-06-01", "2023-05-01", "2023-07-01"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {b: (("time", "y", "x"), rng.random((t, h, w)).astype(np.float32)) for b in BANDS}
        | {"SCL": (("time", "y", "x"), np.full((t, h, w), 4, np.uint8))},
        coords={"time": times, "y": y, "x": x},
    )
    st = stack_from_xarray(ds, crs="EPSG:32633")
    assert st.bands == BANDS and st.transform == T0 and st.mask_array is not None
    assert list(st.dates.astype(str)) == ["2023-05-01", "2023-06-01", "2023-07-01"]
    with st.reader() as rd:
        vals, valid = rd.read((2, 3, 4, 5), [0], [1])
    np.testing.assert_array_equal(vals[0, 0], ds["B04"].values[1, 2:6, 3:8])
    assert valid.all()
    with pytest.raises(DataFormatError, match="dims"):
        stack_from_xarray(ds["B02"])
    pytest.importorskip("zarr")
    store = tmp_path / "cube.zarr"
    ds.to_zarr(store, consolidated=False)
    zst = stack_from_xarray(store, crs="EPSG:32633")
    assert sorted(zst.bands) == sorted(BANDS) and zst.shape == (3, 3, h, w)
    with zst.reader() as rd:
        zvals, _ = rd.read((2, 3, 4, 5), [0], zst.band_positions(["B04"]))
    np.testing.assert_array_equal(zvals, vals)


def test_a_multi_band_mask_file_is_not_blamed_on_bands(tmp_path: Path) -> None:
    _write(tmp_path / "a_20230501.tif", _data(0))
    masks = tmp_path / "scl"
    masks.mkdir()
    _write(masks / "m_20230501.tif", _data(1, count=2), names=None)
    with pytest.raises(DataFormatError, match=r"m_20230501\.tif: given as a mask file but holds 2"):
        open_stack(tmp_path / "a_20230501.tif", mask=masks)
