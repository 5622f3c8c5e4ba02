"""Mapping raster stacks with a trained model: equivalence with table prediction, COG output,
Dask, resume, CLI and bad input. Stacks are tiny GeoTIFFs written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from cropglobe.bands import S2_BANDS  # noqa: E402
from cropglobe.composite import composite  # noqa: E402
from cropglobe.errors import BandError, DataFormatError, GridError, ParameterError  # noqa: E402
from cropglobe.mapping import MapJob, MapWriteError, map_raster  # noqa: E402
from cropglobe.series import Observations, TimeGrid  # noqa: E402

SIZE = 64
CLASSES = ("wheat", "maize", "grassland", "rapeseed")
DATES = [
    f"2023-{m:02d}-{d:02d}"
    for m, d in [(2, 10), (3, 15), (4, 12), (5, 20), (6, 14), (7, 9), (8, 18), (9, 22), (10, 25)]
]
PEAKS = (140, 215, 180, 110)  # day of year of the NDVI peak per class
CRS = "EPSG:32631"
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)


def _field_map() -> np.ndarray:
    """(64, 64) class id per pixel: four fields in the quadrants, a stripe of the first class."""
    f = np.zeros((SIZE, SIZE), dtype=np.int64)
    f[:32, 32:] = 1
    f[32:, :32] = 2
    f[32:, 32:] = 3
    f[28:36, 8:56] = 0
    return f


def _pixels(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """values (T, C, H, W) uint16 reflectance × 10000, scl (T, H, W) uint8, fields (H, W)."""
    rng = np.random.default_rng(seed)
    fields = _field_map()
    doy = np.array([np.datetime64(d, "D").astype(object).timetuple().tm_yday for d in DATES])
    t = len(DATES)
    # NDVI-like curve per class and date, with pixel noise
    peak = np.asarray(PEAKS)[fields]  # (H, W)
    green = np.exp(-(((doy[:, None, None] - peak[None]) / 40.0) ** 2))  # (T, H, W)
    green = green * (0.8 + 0.2 * rng.random((1, SIZE, SIZE)))
    vis = 900 - 600 * green  # B02 B03 B04
    red_edge = 1500 + 1500 * green  # B05 B06
    nir = 2000 + 3000 * green  # B07 B08 B8A
    swir = 2500 - 1000 * green  # B11 B12
    per_band = [
        vis,
        vis * 1.2,
        vis * 0.9,
        red_edge,
        red_edge * 1.3,
        nir * 0.9,
        nir,
        nir * 1.05,
        swir,
        swir * 0.7,
    ]
    values = np.stack(per_band, axis=1) + rng.normal(0, 40, (t, 10, SIZE, SIZE))
    values = np.clip(values, 1, 10000).astype(np.uint16)
    scl = np.full((t, SIZE, SIZE), 4, dtype=np.uint8)
    cloud = rng.random((t, SIZE, SIZE)) < 0.15
    scl[cloud] = 9
    scl[:, :3, :3] = 8  # always cloudy corner -> no data in the map
    values[2, :, 10:12, 40:50] = 0  # nodata value on one date
    return values, scl, fields


def write_stack(
    folder: Path,
    *,
    per_band: bool = False,
    scl_separate: bool = True,
    seed: int = 0,
    dates: list[str] | None = None,
    transform: Any = TRANSFORM,
    crs: str = CRS,
) -> tuple[Path, Path | None]:
    """Write the synthetic stack as GeoTIFFs; returns (stack folder, SCL folder or None)."""
    values, scl, _ = _pixels(seed)
    folder.mkdir(parents=True, exist_ok=True)
    scl_dir = folder.parent / f"{folder.name}_scl"
    if scl_separate:
        scl_dir.mkdir(exist_ok=True)
    prof = {
        "driver": "GTiff",
        "height": SIZE,
        "width": SIZE,
        "dtype": "uint16",
        "crs": crs,
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 32,
        "blockysize": 32,
    }
    for i, date in enumerate(dates or DATES):
        stamp = date.replace("-", "")
        if per_band:
            for j, b in enumerate(S2_BANDS):
                with rasterio.open(folder / f"S2_{stamp}_{b}.tif", "w", count=1, **prof) as ds:
                    ds.write(values[i, j], 1)
        else:
            count = 10 if scl_separate else 11
            with rasterio.open(folder / f"S2_{stamp}.tif", "w", count=count, **prof) as ds:
                ds.write(values[i], list(range(1, 11)))
                names = list(S2_BANDS)
                if not scl_separate:
                    ds.write(scl[i].astype(np.uint16), 11)
                    names.append("SCL")
                ds.descriptions = tuple(names)
        if scl_separate:
            p = {**prof, "dtype": "uint8", "nodata": None}
            with rasterio.open(scl_dir / f"SCL_{stamp}.tif", "w", count=1, **p) as ds:
                ds.write(scl[i], 1)
    return folder, (scl_dir if scl_separate else None)


def observations(seed: int = 0) -> Observations:
    """The same pixels as a long observation table (sample = row-major pixel)."""
    values, scl, fields = _pixels(seed)
    t, c, h, w = values.shape
    v = values.reshape(t, c, h * w).transpose(2, 0, 1).reshape(-1, c).astype(np.float32)
    v[v == 0] = np.nan
    table = pd.DataFrame(v, columns=list(S2_BANDS))
    table.insert(0, "sample", np.repeat(np.arange(h * w), t))
    table.insert(1, "date", np.tile(np.array(DATES, dtype="datetime64[ns]"), h * w))
    table["SCL"] = scl.reshape(t, h * w).T.reshape(-1)
    samples = pd.DataFrame(
        {"sample_id": [str(i) for i in range(h * w)], "label": fields.reshape(-1)}
    )
    return Observations(table, tuple(S2_BANDS), samples, CLASSES)


GRID = TimeGrid.monthly()
WINDOW = (32, 300)  # February … October: the classical model reads 9 months


@pytest.fixture(scope="module")
def lgbm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LightGBM model folder trained on composited pixels of another seed."""
    from cropglobe.models import LightGBMModel, ModelCard, save_model

    ss = composite(observations(seed=1), GRID, season_year=2023, allow_empty=True).drop_empty()
    model = LightGBMModel(n_estimators=15, num_leaves=8, random_state=0, n_jobs=1)
    model.fit(ss.select_window(*WINDOW).values, ss.labels)
    card = ModelCard(
        model="lightgbm",
        params={"n_estimators": 15},
        bands=S2_BANDS,
        grid=GRID,
        classes=CLASSES,
        window=WINDOW,
        # trained on composites without gap filling: the card says so (else map and predict
        # fill the gaps of a model's raw inputs, as training from a table does)
        features={"fill": "none", "composite": {"reducer": "median", "fill": False}},
    )
    return save_model(tmp_path_factory.mktemp("models") / "lgbm", model, card)


@pytest.fixture(scope="module")
def stack_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stack")
    folder, scl = write_stack(root / "tiles")
    assert scl is not None
    return folder, scl


def _table_prediction(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from cropglobe.models import load_model
    from cropglobe.models.folder import model_inputs

    model, card = load_model(model_dir)
    ss = composite(observations(), GRID, season_year=2023, allow_empty=True)
    has = ~ss.empty_samples()
    proba = np.zeros((ss.n_samples, len(CLASSES)))
    proba[np.ix_(has, np.asarray(model.classes_))] = model.predict_proba(
        model_inputs(card, ss.subset(has))
    )
    cls = np.where(has, np.argmax(proba, axis=1), 255).reshape(SIZE, SIZE)
    proba[~has] = np.nan
    return cls, proba.reshape(SIZE, SIZE, -1).transpose(2, 0, 1)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_map_equals_table_prediction_and_is_a_cog(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scl = stack_dirs
    out = tmp_path / "map.tif"
    res = map_raster(
        lgbm_model,
        str(folder / "*.tif"),
        out,
        mask=str(scl / "*.tif"),
        probabilities=tmp_path / "p.tif",
        probability_dtype="float32",
        uncertainty="entropy",
        block_size=32,
        workers=2,
    )
    cls_ref, proba_ref = _table_prediction(lgbm_model)
    cls = _read(out)[0]
    np.testing.assert_array_equal(cls, cls_ref)
    assert (cls[:3, :3] == 255).all() and res.n_valid == SIZE * SIZE - 9
    proba = _read(tmp_path / "p.tif")
    np.testing.assert_allclose(proba, proba_ref.astype(np.float32), rtol=0, atol=1e-7)
    assert (cls_ref[cls_ref != 255] == _field_map()[cls_ref != 255]).mean() > 0.9
    for path in (out, tmp_path / "p.tif", res.uncertainty):
        assert path is not None
        with rasterio.open(path) as ds:
            assert ds.profile["tiled"] and ds.block_shapes[0] == (32, 32)
            assert ds.overviews(1) == [2]
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.crs == rasterio.crs.CRS.from_string(CRS) and ds.transform == TRANSFORM
    with rasterio.open(out) as ds:
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        assert ds.colormap(1)[1][:3] != (0, 0, 0)
        assert json.loads(ds.tags()["CROPGLOBE_CLASSES"]) == list(CLASSES)
    side = json.loads(res.sidecar.read_text())
    assert side["model"]["model"] == "lightgbm" and side["inputs"]["season"] == 2023
    assert side["n_valid"] == res.n_valid and side["seconds"]["total"] > 0
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_uint8_probabilities_and_single_thread_match(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scl = stack_dirs
    map_raster(
        lgbm_model,
        folder,
        tmp_path / "a.tif",
        mask=scl,
        probabilities=tmp_path / "pa.tif",
        block_size=32,
        workers=0,
        strip_pixels=100,
    )
    map_raster(
        lgbm_model,
        folder,
        tmp_path / "b.tif",
        mask=scl,
        probabilities=tmp_path / "pb.tif",
        block_size=32,
        workers=3,
    )
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    assert (tmp_path / "pa.tif").read_bytes() == (tmp_path / "pb.tif").read_bytes()
    _, proba_ref = _table_prediction(lgbm_model)
    p = _read(tmp_path / "pa.tif")
    expect = np.where(np.isnan(proba_ref), 255, np.rint(np.nan_to_num(proba_ref) * 254))
    np.testing.assert_array_equal(p, expect.astype(np.uint8))
    with rasterio.open(tmp_path / "pa.tif") as ds:
        assert ds.scales[0] == pytest.approx(1 / 254)


@pytest.mark.parametrize("processes", [False, True])
def test_dask_local_cluster_is_byte_identical(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, processes: bool
) -> None:
    distributed = pytest.importorskip("distributed")
    folder, scl = stack_dirs
    map_raster(
        lgbm_model,
        folder,
        tmp_path / "one.tif",
        mask=scl,
        probabilities=tmp_path / "p1.tif",
        block_size=32,
    )
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        map_raster(
            lgbm_model,
            folder,
            tmp_path / "two.tif",
            mask=scl,
            probabilities=tmp_path / "p2.tif",
            block_size=32,
            client=client,
        )
    assert (tmp_path / "one.tif").read_bytes() == (tmp_path / "two.tif").read_bytes()
    assert (tmp_path / "p1.tif").read_bytes() == (tmp_path / "p2.tif").read_bytes()


def test_resume_after_kill_gives_the_same_file(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scl = stack_dirs
    map_raster(
        lgbm_model,
        folder,
        tmp_path / "ref.tif",
        mask=scl,
        probabilities=tmp_path / "pref.tif",
        block_size=16,
    )

    class Killed(Exception):
        pass

    def kill_after_5(done: int, total: int) -> None:
        if done == 5:
            raise Killed

    out, probs = tmp_path / "map.tif", tmp_path / "p.tif"
    with pytest.raises(Killed):
        map_raster(
            lgbm_model,
            folder,
            out,
            mask=scl,
            probabilities=probs,
            block_size=16,
            workers=2,
            on_window=kill_after_5,
        )
    assert not out.exists() and not probs.exists()
    assert (tmp_path / ".map.tif.partial" / "done.log").is_file()
    # resuming with other options is refused, and the partial output is kept
    with pytest.raises(ParameterError, match=r"another map job \(it differs in block_size\)"):
        MapJob(lgbm_model, folder, out, mask=scl, probabilities=probs, block_size=32, resume=True)
    assert (tmp_path / ".map.tif.partial" / "done.log").is_file()
    # a partial map of the previous version (no mask kind or file stats recorded) resumes
    import hashlib

    meta = tmp_path / ".map.tif.partial" / "job.json"
    job = json.loads(meta.read_text())["job"]
    for key in ("mask_kind", "file_stats"):
        del job[key]
    digest = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
    meta.write_text(json.dumps({"hash": digest, "job": job}))
    job = MapJob(lgbm_model, folder, out, mask=scl, probabilities=probs, block_size=16, resume=True)
    assert job.resumed >= 5 and len(job.pending) == 16 - job.resumed
    seen = list(job.run())
    res = job.finish()
    assert sorted(seen) == job.pending and res.resumed_windows == job.resumed
    assert out.read_bytes() == (tmp_path / "ref.tif").read_bytes()
    assert probs.read_bytes() == (tmp_path / "pref.tif").read_bytes()


def test_scl_band_inside_per_date_files_and_per_band_files(
    lgbm_model: Path, tmp_path: Path
) -> None:
    inside, _ = write_stack(tmp_path / "inside", scl_separate=False)
    map_raster(lgbm_model, inside, tmp_path / "a.tif", block_size=32)
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(tmp_path / "a.tif")[0], cls_ref)
    per_band, scl = write_stack(tmp_path / "per_band", per_band=True)
    map_raster(lgbm_model, str(per_band / "*.tif"), tmp_path / "b.tif", mask=scl, block_size=64)
    np.testing.assert_array_equal(_read(tmp_path / "b.tif")[0], cls_ref)


def _data_array(attrs: dict[str, Any]) -> tuple[Any, Any]:
    """The test pixels as an xarray (time, band, y, x) DataArray (NaN = no data) with
    ``attrs``, and its SCL mask."""
    xr = pytest.importorskip("xarray")
    values, scl, _ = _pixels()
    da = xr.DataArray(
        np.where(values == 0, np.nan, values.astype(np.float32)),
        dims=("time", "band", "y", "x"),
        coords={"time": np.array(DATES, dtype="datetime64[ns]"), "band": list(S2_BANDS)},
        attrs=attrs,
    )
    return da, xr.DataArray(scl, dims=("time", "y", "x"))


def test_xarray_input_matches_files(lgbm_model: Path, tmp_path: Path) -> None:
    da, mask = _data_array({"crs": CRS, "transform": tuple(TRANSFORM)[:6]})
    res = map_raster(lgbm_model, da, tmp_path / "x.tif", mask=mask, block_size=32, workers=2)
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(res.output)[0], cls_ref)
    with rasterio.open(res.output) as ds:
        assert ds.transform == TRANSFORM and ds.crs.to_epsg() == 32631


@pytest.mark.parametrize("layout", ["dataset", "dataarray"])
def test_xarray_nodata_values_are_missing(lgbm_model: Path, tmp_path: Path, layout: str) -> None:
    # odc-stac's layout: integer bands with attrs["nodata"] = 0, no NaN anywhere
    xr = pytest.importorskip("xarray")
    values, scl, _ = _pixels()
    assert (values == 0).any()
    coords = {"time": np.array(DATES, dtype="datetime64[ns]")}
    geo = {"crs": CRS, "transform": tuple(TRANSFORM)[:6]}
    if layout == "dataset":
        data = xr.Dataset(
            {
                b: xr.DataArray(
                    values[:, i].astype(np.uint16),
                    dims=("time", "y", "x"),
                    coords=coords,
                    attrs={"nodata": 0},
                )
                for i, b in enumerate(S2_BANDS)
            },
            attrs=geo,
        )
        data["SCL"] = xr.DataArray(scl, dims=("time", "y", "x"), coords=coords)
        mask = None
    else:
        data = xr.DataArray(
            values.astype(np.uint16), dims=("time", "band", "y", "x"),
            coords={**coords, "band": list(S2_BANDS)}, attrs={**geo, "nodata": 0},
        )  # fmt: skip
        mask = xr.DataArray(scl, dims=("time", "y", "x"))
    res = map_raster(
        lgbm_model, data, tmp_path / "x.tif", mask=mask, block_size=32,
        probabilities=tmp_path / "p.tif", probability_dtype="float32",
    )  # fmt: skip
    cls_ref, proba_ref = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(res.output)[0], cls_ref)
    proba = _read(tmp_path / "p.tif")
    np.testing.assert_allclose(proba, proba_ref.astype(np.float32), rtol=0, atol=1e-7)


# ------------------------------------------------------------------------------ bad input
def test_missing_band_and_dates_outside_the_season(lgbm_model: Path, tmp_path: Path) -> None:
    folder, scl = write_stack(tmp_path / "s", per_band=True)
    for p in folder.glob("*_B8A.tif"):
        p.unlink()
    with pytest.raises(BandError, match=r"lacks bands \['B8A'\]"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, block_size=32)
    assert not (tmp_path / "m.tif").exists()
    old, scl2 = write_stack(tmp_path / "old", dates=[d.replace("2023", "2021") for d in DATES])
    with pytest.raises(GridError, match="season 2023"):
        map_raster(lgbm_model, old, tmp_path / "m.tif", mask=scl2, season_year=2023)
    # the command line names its own option (season_year is the library's)
    from cropglobe.cli.main import cli

    args = ["map", str(lgbm_model), "--stack", str(old), "--scl", str(scl2), "-o",
            str(tmp_path / "m.tif"), "--season-year", "2023"]  # fmt: skip
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "pass the right season_year (--season-year)" in r.output, r.output


def test_mismatched_grid_names_the_file(lgbm_model: Path, tmp_path: Path) -> None:
    folder, scl = write_stack(tmp_path / "s")
    odd = folder / "S2_20231101.tif"
    values, _, _ = _pixels()
    prof = {
        "driver": "GTiff",
        "height": SIZE,
        "width": SIZE,
        "count": 10,
        "dtype": "uint16",
        "crs": "EPSG:32632",
        "transform": TRANSFORM,
    }
    with rasterio.open(odd, "w", **prof) as ds:
        ds.write(values[0])
        ds.descriptions = tuple(S2_BANDS)
    with pytest.raises(DataFormatError, match=r"S2_20231101\.tif: CRS EPSG:32632 differs"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl)


def test_cli_map_and_its_errors(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from cropglobe.cli.main import cli

    folder, scl = stack_dirs
    runner = CliRunner()
    out = tmp_path / "cli.tif"
    r = runner.invoke(
        cli,
        [
            "map",
            str(lgbm_model),
            "--stack",
            str(folder / "*.tif"),
            "-o",
            str(out),
            "--probabilities",
            str(tmp_path / "p.tif"),
            "--block-size",
            "32",
            "--workers",
            "2",
            "--scl",
            str(scl / "*.tif"),
            "--uncertainty",
            "margin",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(out)[0], cls_ref)
    assert (tmp_path / "cli.uncertainty.tif").is_file()
    # an unreadable tile
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in folder.glob("*.tif"):
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / "S2_20230512.tif").write_bytes(b"II*\x00garbage")
    r = runner.invoke(
        cli,
        [
            "map",
            str(lgbm_model),
            "--stack",
            str(bad / "*.tif"),
            "-o",
            str(tmp_path / "bad.tif"),
            "-q",
        ],
    )
    assert r.exit_code == 2
    assert "S2_20230512.tif: unreadable stack file" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not (tmp_path / "bad.tif").exists()
    # no stack files at all
    r = runner.invoke(
        cli,
        [
            "map",
            str(lgbm_model),
            "--stack",
            str(tmp_path / "none*.tif"),
            "-o",
            str(tmp_path / "x.tif"),
        ],
    )
    assert r.exit_code == 2 and "matches no file" in r.output
    # the map written over one of its own input files
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in folder.glob("*.tif"):
        (copy / p.name).write_bytes(p.read_bytes())
    victim = sorted(copy.glob("S2_*.tif"))[0]
    before = victim.read_bytes()
    r = runner.invoke(
        cli, ["map", str(lgbm_model), "--stack", str(copy / "*.tif"), "-o", str(victim)]
    )
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "is one of the stack's input files" in r.output and victim.read_bytes() == before


def test_full_disk_is_a_clear_error(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    import cropglobe.mapping as mapping

    folder, scl = stack_dirs
    monkeypatch.setattr(mapping, "_free_bytes", lambda _folder: 1000)
    with pytest.raises(MapWriteError, match="free some space"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, block_size=32)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ neural + ONNX
@pytest.fixture(scope="module")
def tempcnn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TempCNN trained for one epoch on composited pixels (monthly grid, no window)."""
    pytest.importorskip("torch")
    return _tiny_tempcnn(tmp_path_factory.mktemp("models") / "tempcnn", window=None, every=4)


def _tiny_tempcnn(path: Path, window: tuple[int, int] | None, every: int) -> Path:
    """A TempCNN trained for one epoch on every ``every``-th composited pixel, saved to path."""
    from cropglobe.models import save_model
    from cropglobe.train import train

    ss = composite(observations(seed=1), GRID, season_year=2023, allow_empty=True).drop_empty()
    res = train(
        "tempcnn",
        ss.subset(np.arange(0, ss.n_samples, every)),
        epochs=1,
        window=window,
        augment="none",
        batch_size=64,
        model_options={"filters": 8, "hidden": 16},
    )
    assert res.card is not None
    return save_model(path, res.model, res.card)


def _table_probabilities(
    model_dir: Path, shifts: tuple[float, ...] = (0.0,)
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mapped-pixel mask and the model's probabilities of those pixels from the observation
    table, one array per window shift (the reference the maps are checked against)."""
    from cropglobe.models import load_model, predict_proba
    from cropglobe.models.folder import model_inputs

    model, card = load_model(model_dir)
    ss = composite(observations(), GRID, season_year=2023, allow_empty=True)
    has = ~ss.empty_samples()
    return has, [predict_proba(model, model_inputs(card, ss.subset(has), shift=s)) for s in shifts]


def test_applicability_needs_a_training_reference(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, _scl = stack_dirs
    with pytest.raises(ParameterError, match="holds no training reference"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", applicability=tmp_path / "a.tif")
    assert not list(tmp_path.iterdir())  # refused before any output


def test_neural_map_equals_table_prediction(
    tempcnn_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:

    folder, scl = stack_dirs
    res = map_raster(
        tempcnn_model,
        folder,
        tmp_path / "m.tif",
        mask=scl,
        block_size=32,
        probabilities=tmp_path / "p.tif",
        probability_dtype="float32",
        workers=2,
    )
    has, each = _table_probabilities(tempcnn_model)
    proba = each[0]
    p = _read(res.probabilities).reshape(len(CLASSES), -1)[:, has].T  # type: ignore[arg-type]
    np.testing.assert_allclose(p, proba, rtol=0, atol=1e-5)
    cls = _read(res.output).reshape(-1)
    assert (cls[~has] == 255).all()
    agree = cls[has] == np.argmax(proba, axis=1)
    top2 = np.sort(proba, axis=1)[:, -2:]
    assert agree.all() or (top2[~agree, 1] - top2[~agree, 0] < 1e-5).all()
    assert json.loads(res.sidecar.read_text())["options"]["device"] == "cpu"


def test_the_device_a_map_runs_on(
    tempcnn_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    import torch

    from cropglobe.mapping import _map_device

    gpu = torch.cuda.is_available()
    assert _map_device("auto", "torch", True) == ("cuda" if gpu else "cpu")
    assert _map_device("cpu", "torch", True) == "cpu"
    # classical models and the ONNX engines run on the CPU; "auto" never refuses
    assert _map_device("cuda", "torch", False) == "cpu"
    assert _map_device("auto", "onnx-int8", True) == "cpu"
    assert _map_device("cpu", "onnx", True) == "cpu"
    with pytest.raises(ParameterError, match="is not a torch device"):
        _map_device("tpu", "torch", True)
    if not gpu:  # asked for by name without one: refused before any output
        folder, _scl = stack_dirs
        with pytest.raises(ParameterError, match="no CUDA GPU is available"):
            map_raster(tempcnn_model, folder, tmp_path / "m.tif", device="cuda")
        assert not list(tmp_path.iterdir())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _map_device("cuda:1", "torch", True) == "cuda:1"
    with pytest.raises(ParameterError, match=r"engine 'onnx' runs on the CPU .*--engine torch"):
        _map_device("cuda", "onnx", True)


def test_default_workers_of_the_command_line(
    tempcnn_model: Path, lgbm_model: Path, monkeypatch: Any
) -> None:
    import cropglobe.mapping
    from cropglobe.cli import map as map_cli

    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert map_cli._default_workers(tempcnn_model, "cpu", "torch") == 2
    assert map_cli._default_workers(tempcnn_model / "missing", "cuda", "torch") == 2
    monkeypatch.setattr(cropglobe.mapping, "_map_device", lambda d, e, n: "cuda" if n else "cpu")
    assert map_cli._default_workers(tempcnn_model, "auto", "torch") == 15  # a network on a GPU
    assert map_cli._default_workers(lgbm_model, "auto", "torch") == 2  # a forest: the CPU
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert map_cli._default_workers(tempcnn_model, "auto", "torch") == 16


@pytest.mark.skipif(not pytest.importorskip("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_a_map_on_the_gpu_equals_the_cpu_map(
    tempcnn_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from cropglobe.cli.main import cli

    folder, scl = stack_dirs
    kw: dict[str, Any] = {"mask": scl, "block_size": 32, "probability_dtype": "float32"}
    cpu = map_raster(
        tempcnn_model, folder, tmp_path / "c.tif", probabilities=tmp_path / "pc.tif", **kw
    )
    gpu = map_raster(
        tempcnn_model,
        folder,
        tmp_path / "g.tif",
        probabilities=tmp_path / "pg.tif",
        workers=4,
        device="cuda",
        **kw,
    )
    pc, pg = (_read(r.probabilities) for r in (cpu, gpu))  # type: ignore[arg-type]
    # cuDNN convolves in TF32 by default: probabilities differ by about 2e-4 (an H200)
    np.testing.assert_allclose(pg, pc, rtol=0, atol=1e-3)
    assert (np.isnan(pg) == np.isnan(pc)).all()
    assert json.loads(gpu.sidecar.read_text())["options"]["device"] == "cuda"
    # the command line's default ("auto") maps a neural model on the GPU and says so
    r = CliRunner().invoke(
        cli,
        [
            "map",
            str(tempcnn_model),
            "--stack",
            str(folder / "*.tif"),
            "--scl",
            str(scl / "*.tif"),
            "--block-size",
            "32",
            "-o",
            str(tmp_path / "cli.tif"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert " on cuda)" in r.output
    assert (_read(tmp_path / "cli.tif") == _read(cpu.output)).mean() > 0.999


def test_onnx_engines(tempcnn_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    folder, scl = stack_dirs
    kw: dict[str, Any] = {"mask": scl, "block_size": 32, "probability_dtype": "float32"}
    ref = map_raster(
        tempcnn_model, folder, tmp_path / "t.tif", probabilities=tmp_path / "pt.tif", **kw
    )
    onnx = map_raster(
        tempcnn_model,
        folder,
        tmp_path / "o.tif",
        engine="onnx",
        probabilities=tmp_path / "po.tif",
        **kw,
    )
    q = map_raster(
        tempcnn_model,
        folder,
        tmp_path / "q.tif",
        engine="onnx-int8",
        probabilities=tmp_path / "pq.tif",
        **kw,
    )
    pt, po, pq = (_read(r.probabilities) for r in (ref, onnx, q))  # type: ignore[arg-type]
    np.testing.assert_allclose(po, pt, atol=1e-4)
    valid = ~np.isnan(pt)
    assert np.abs(pq[valid] - pt[valid]).max() < 0.1
    assert (_read(q.output) == _read(ref.output)).mean() > 0.95
    assert json.loads(q.sidecar.read_text())["options"]["engine"] == "onnx-int8"


def test_map_with_shift_averaging(
    tempcnn_model: Path, lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from cropglobe.cli.main import cli

    windowed = _tiny_tempcnn(tmp_path / "windowed", window=WINDOW, every=1)
    folder, scl = stack_dirs
    shifts = (-31.0, 0.0, 31.0)
    out = map_raster(
        windowed,
        folder,
        tmp_path / "m.tif",
        mask=scl,
        block_size=32,
        probabilities=tmp_path / "p.tif",
        probability_dtype="float32",
        tta=shifts,
    )
    has, each = _table_probabilities(windowed, shifts)
    k = each[0].shape[1]  # the model's classes
    p = _read(out.probabilities).reshape(k, -1)[:, has].T  # type: ignore[arg-type]
    np.testing.assert_allclose(p, np.mean(each, axis=0), rtol=0, atol=1e-5)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # the shifts do change the inputs
    assert json.loads(out.sidecar.read_text())["options"]["tta_shifts"] == list(shifts)
    # models the shifts cannot apply to: one clear error before any pixel is read
    for bad in (tempcnn_model, lgbm_model):
        with pytest.raises(ParameterError, match="trained on a window"):
            map_raster(bad, folder, tmp_path / "x.tif", mask=scl, block_size=32, tta=shifts)
    runner = CliRunner()
    args = ["map", str(windowed), "--stack", str(folder), "--scl", str(scl), "--block-size", "32"]
    ok = runner.invoke(cli, [*args, "--tta-shifts", "-31,0,31", "-o", str(tmp_path / "c.tif")])
    assert ok.exit_code == 0, ok.output
    np.testing.assert_array_equal(_read(tmp_path / "c.tif"), _read(out.output))
    bad = runner.invoke(cli, ["map", str(tempcnn_model), *args[2:], "--tta", "-o", "y.tif"])
    assert bad.exit_code == 2 and "trained on a window" in bad.output


def test_reflectance_files_given_as_masks_are_refused(stack_dirs: tuple[Path, Path]) -> None:
    from cropglobe.io.raster import open_stack

    folder, scl = stack_dirs
    with pytest.raises(DataFormatError, match="given as a mask file but holds bands"):
        open_stack(folder / "*.tif", mask=folder / "*.tif")
    assert open_stack(folder / "*.tif", mask=scl / "*.tif").mask_sources[0] is not None


def test_a_model_trained_on_gap_filled_composites_maps_as_it_predicts(
    stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    # trained from a raw table composited with gap filling: the card says so, and the map
    # fills the stack's gaps the same way instead of handing the model NaN
    from cropglobe.workflow import predict_dataset, train_to_folder

    def filled(seed: int) -> Any:
        return composite(observations(seed=seed), GRID, season_year=2023, fill=True,
                         allow_empty=True).drop_empty()  # fmt: skip

    summary = train_to_folder(filled(1), "lightgbm", tmp_path / "m", seed=1, window=None)
    card = json.loads((summary.folder / "card.json").read_text())
    assert card["features"]["composite"]["fill"] is True
    test = filled(0)
    table = predict_dataset(summary.folder, test)
    folder, scl = stack_dirs
    res = map_raster(
        summary.folder, str(folder / "*.tif"), tmp_path / "map.tif", mask=str(scl / "*.tif"),
        probabilities=tmp_path / "p.tif", probability_dtype="float32", block_size=32,
        applicability=tmp_path / "aoa.tif",
    )  # fmt: skip
    proba = _read(tmp_path / "p.tif").reshape(len(summary.classes), -1)
    pixels = table["sample_id"].astype(int).to_numpy()
    assert np.isnan(observations().table[list(S2_BANDS)].to_numpy()).any()  # gaps to fill
    np.testing.assert_allclose(
        proba[:, pixels].T, table[[f"p_{c}" for c in summary.classes]], rtol=0, atol=1e-6
    )
    # the distance from the training data: the map's pixels as predict's table rows
    dis = _read(tmp_path / "aoa.tif").reshape(-1)
    np.testing.assert_allclose(dis[pixels], table["dissimilarity"], rtol=1e-5, atol=1e-5)
    assert np.isnan(np.delete(dis, pixels)).all()  # no data where nothing was mapped
    assert res.outside_share == pytest.approx(float((table["dissimilarity"] > 1).mean()))
    side = json.loads(res.sidecar.read_text())["outputs"]
    assert side["applicability"] == str(tmp_path / "aoa.tif")


def test_a_model_trained_on_series_maps_as_predict_composites_for_it(
    stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """A card without compositing settings (trained on series, not on a raw table): map and
    predict composite raw inputs alike, with training-from-a-table's gap filling (map used not
    to fill, predict to fill: 492 of 9,000 pixels of a forest's map differed)."""
    import dataclasses

    from cropglobe.workflow import predict_dataset, series_for_model, train_to_folder

    ss = composite(observations(seed=1), GRID, season_year=2023, fill=True, allow_empty=True)
    ss = dataclasses.replace(ss.drop_empty(), attrs={})  # series of unknown making
    summary = train_to_folder(ss, "random_forest", tmp_path / "m", seed=1,
                              model_options={"n_estimators": 10})  # fmt: skip
    assert "composite" not in json.loads((summary.folder / "card.json").read_text())["features"]
    table = predict_dataset(summary.folder, series_for_model(observations(), summary.folder))
    folder, scl = stack_dirs
    map_raster(
        summary.folder, str(folder / "*.tif"), tmp_path / "map.tif", mask=str(scl / "*.tif"),
        probabilities=tmp_path / "p.tif", probability_dtype="float32", block_size=32,
    )  # fmt: skip
    proba = _read(tmp_path / "p.tif").reshape(len(summary.classes), -1)
    pixels = table["sample_id"].astype(int).to_numpy()
    np.testing.assert_allclose(
        proba[:, pixels].T, table[[f"p_{c}" for c in summary.classes]], rtol=0, atol=1e-6
    )
    assert np.isnan(np.delete(proba, pixels, axis=1)).all()


def test_resume_survives_a_cut_log_line_and_refuses_another_mask_kind(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scl = stack_dirs
    map_raster(lgbm_model, folder, tmp_path / "ref.tif", mask=scl, block_size=16)

    class Killed(Exception):
        pass

    def kill_after(n: int) -> Any:
        def hook(done: int, total: int) -> None:
            if done == n:
                raise Killed

        return hook

    out = tmp_path / "map.tif"
    with pytest.raises(Killed):
        map_raster(lgbm_model, folder, out, mask=scl, block_size=16, on_window=kill_after(1))
    log = tmp_path / ".map.tif.partial" / "done.log"
    with open(log, "ab") as fh:
        fh.write(b"1")  # a line cut short by a full disk or a kill
    # the same stack read with another mask meaning is another job
    with pytest.raises(ParameterError, match="belongs to another map job"):
        MapJob(lgbm_model, folder, out, mask=scl, mask_kind="valid", block_size=16, resume=True)
    with pytest.raises(Killed):
        map_raster(
            lgbm_model, folder, out, mask=scl, block_size=16, resume=True,
            on_window=kill_after(3),
        )  # fmt: skip
    assert all(line.count(" ") == 1 for line in log.read_text().splitlines())
    map_raster(lgbm_model, folder, out, mask=scl, block_size=16, resume=True)
    assert out.read_bytes() == (tmp_path / "ref.tif").read_bytes()


def test_a_scheduler_address_without_port_is_a_clear_error(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scl = stack_dirs
    import distributed

    def no_client(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a half-built Client hangs 40 s when collected")

    with pytest.MonkeyPatch.context() as mp:  # refused before a Client is made
        mp.setattr(distributed, "Client", no_client)
        with pytest.raises(ParameterError, match="cannot connect to the Dask scheduler 'host'"):
            map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, dask_scheduler="host")
    with pytest.raises(ParameterError, match="cannot connect to the Dask scheduler 'localhost'"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, dask_scheduler="localhost")
    assert list(tmp_path.iterdir()) == []  # no empty partial folder left behind
    # nor a dead client as the process's dask scheduler: a later dask.compute would wait forever
    import dask
    from distributed.client import _global_clients

    assert dask.config.get("scheduler", None) != "dask.distributed" and not _global_clients


def test_a_failed_rename_leaves_no_temporary_files(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch
) -> None:
    import os

    import cropglobe.mapping as mapping

    folder, scl = stack_dirs
    out, probs = tmp_path / "m.tif", tmp_path / "p.tif"
    real = os.replace

    def replace(src, dst):
        if Path(dst) == probs:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(mapping.os, "replace", replace)
    with pytest.raises(mapping.MapWriteError, match=r"No space left|free"):
        map_raster(lgbm_model, folder, out, mask=scl, probabilities=probs, block_size=32)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".m.tif.partial"]  # the class map is renamed last: neither map is there
    monkeypatch.undo()
    map_raster(lgbm_model, folder, out, mask=scl, probabilities=probs, block_size=32, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tif", "p.tif"]


def test_a_failed_cog_write_names_the_resume_option(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    import rasterio.shutil
    from rasterio.errors import RasterioError

    from cropglobe.cli.main import cli

    def copy(*args: Any, **kwargs: Any) -> None:
        raise RasterioError("disk went away")

    monkeypatch.setattr(rasterio.shutil, "copy", copy)
    folder, scl = stack_dirs
    r = CliRunner().invoke(cli, ["map", str(lgbm_model), "--stack", str(folder), "--scl",
                                 str(scl), "-o", str(tmp_path / "m.tif"), "-q"])  # fmt: skip
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "writing the COG failed (disk went away)" in r.output
    assert r.output.rstrip().endswith("then map again with resume=True (--resume)")
    monkeypatch.undo()  # the advice works: the computed windows are kept for --resume
    r = CliRunner().invoke(cli, ["map", str(lgbm_model), "--stack", str(folder), "--scl",
                                 str(scl), "-o", str(tmp_path / "m.tif"), "--resume"])  # fmt: skip
    assert r.exit_code == 0 and (tmp_path / "m.tif").is_file(), r.output


def test_a_damaged_model_fails_before_any_partial_output(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    from cropglobe.errors import ModelError

    bad = tmp_path / "bad"
    shutil.copytree(lgbm_model, bad)
    (bad / "lightgbm.txt").write_text("tree\nversion=v4\n")
    folder, scl = stack_dirs
    with pytest.raises(ModelError, match="truncated"):
        map_raster(bad, folder, tmp_path / "out" / "m.tif", mask=scl)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_map_written_into_the_stack_folder_is_not_read_as_an_acquisition(
    lgbm_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, _ = write_stack(tmp_path / "tiles", scl_separate=False)
    kw: dict[str, Any] = {"block_size": 32, "uncertainty": "margin"}
    first = map_raster(lgbm_model, folder, folder / "map.tif", probabilities=folder / "p.tif", **kw)
    ref = _read(first.output)
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(ref[0], cls_ref)
    with caplog.at_level("INFO", logger="cropglobe.io.raster"):
        again = map_raster(lgbm_model, folder, folder / "map.tif", probabilities=folder / "p.tif",
                           **kw)  # fmt: skip
    skipped = [r.getMessage() for r in caplog.records if "written by cropglobe" in r.getMessage()]
    assert skipped and "3 files" in skipped[0] and "map.uncertainty.tif" in skipped[0]
    np.testing.assert_array_equal(_read(again.output), ref)
    side = json.loads(again.sidecar.read_text())
    assert side["inputs"]["n_files"] == len(DATES)  # the maps are not inputs
    # a glob that only matches maps: one clear error
    with pytest.raises(FileNotFoundError, match="only files written by cropglobe"):
        map_raster(lgbm_model, str(folder / "*map*.tif"), tmp_path / "x.tif", block_size=32)


def test_small_blocks_do_not_print_gdal_blocksize_warnings(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, caplog: Any
) -> None:
    import logging

    from cropglobe.mapping import _quiet_small_blocks

    folder, scl = stack_dirs
    with caplog.at_level("WARNING", logger="rasterio._env"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, block_size=32)
    assert not [r for r in caplog.records if "BLOCKSIZE" in r.getMessage()]
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.block_shapes[0] == (32, 32)
    caplog.clear()
    gdal = logging.getLogger("rasterio._env")
    with caplog.at_level("WARNING", logger="rasterio._env"), _quiet_small_blocks():
        gdal.warning("CPLE_NotSupported in '32' is an unexpected value for BLOCKSIZE creation "
                     "option that should be >= 128.")  # fmt: skip
        gdal.warning("CPLE_AppDefined in other trouble")  # other GDAL messages still pass
    assert [r.getMessage() for r in caplog.records] == ["CPLE_AppDefined in other trouble"]
    assert not gdal.filters  # removed after use


def test_a_band_the_model_does_not_use_may_be_on_some_dates_only(
    lgbm_model: Path, tmp_path: Path
) -> None:
    folder, scl = write_stack(tmp_path / "s", per_band=True)
    with rasterio.open(folder / "S2_20230412_B02.tif") as ds:  # B01 (unused) on one date
        prof, data = ds.profile, ds.read()
    with rasterio.open(folder / "S2_20230412_B01.tif", "w", **prof) as ds:
        ds.write(data)
    res = map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, block_size=32)
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(res.output)[0], cls_ref)
    # a band the model needs, missing on one date: the error names that date
    (folder / "S2_20230709_B8A.tif").unlink()
    with pytest.raises(BandError, match=r"dates \['2023-07-09'\] lack bands \['B8A'\] the model"):
        map_raster(lgbm_model, folder, tmp_path / "m2.tif", mask=scl, block_size=32)


def test_resume_ignores_a_replaced_file_of_a_band_only_some_dates_have(
    lgbm_model: Path, tmp_path: Path
) -> None:
    import os

    folder, scl = write_stack(tmp_path / "s", per_band=True)
    with rasterio.open(folder / "S2_20230412_B02.tif") as ds:
        prof, data = ds.profile, ds.read()
    extra = folder / "S2_20230412_B01.tif"  # B01 (unused by the model) on one date only
    with rasterio.open(extra, "w", **prof) as ds:
        ds.write(data)

    class Killed(Exception):
        pass

    def kill_after_2(done: int, total: int) -> None:
        if done == 2:
            raise Killed

    out = tmp_path / "m.tif"
    with pytest.raises(Killed):
        map_raster(lgbm_model, folder, out, mask=scl, block_size=32, on_window=kill_after_2)
    # the file is replaced (other values, size and time) between the two attempts
    with rasterio.open(extra, "w", **{**prof, "dtype": "float32"}) as ds:
        ds.write(data.astype(np.float32) * 3 + 7)
    os.utime(extra, ns=(1_000_000_000, 1_000_000_000))
    job = MapJob(lgbm_model, folder, out, mask=scl, block_size=32, resume=True)
    try:
        assert str(extra) not in job.stack.files  # no map reads it ...
        assert job.resumed == 2  # ... so the partial map is still this job's
        list(job.run())
        job.finish()
    finally:
        job.close()
    cls_ref, _ = _table_prediction(lgbm_model)  # ... and the map is the one without B01
    np.testing.assert_array_equal(_read(out)[0], cls_ref)
    # a file the map reads, replaced the same way, makes another job
    again = tmp_path / "again.tif"
    with pytest.raises(Killed):
        map_raster(lgbm_model, folder, again, mask=scl, block_size=32, on_window=kill_after_2)
    os.utime(folder / "S2_20230412_B02.tif", ns=(1_000_000_000, 1_000_000_000))
    with pytest.raises(ParameterError, match=r"another map job \(it differs in file_stats\)"):
        MapJob(lgbm_model, folder, again, mask=scl, block_size=32, resume=True)


def test_resume_tells_in_memory_stacks_of_one_shape_apart(lgbm_model: Path, tmp_path: Path) -> None:
    xr = pytest.importorskip("xarray")

    def cube(seed: int) -> Any:
        values, scl, _ = _pixels(seed)
        da = xr.DataArray(
            np.where(values == 0, np.nan, values.astype(np.float32)),
            dims=("time", "band", "y", "x"),
            coords={"time": np.array(DATES, dtype="datetime64[ns]"), "band": list(S2_BANDS)},
            attrs={"crs": CRS, "transform": tuple(TRANSFORM)[:6]},
        )
        return da, xr.DataArray(scl, dims=("time", "y", "x"))

    class Killed(Exception):
        pass

    def kill_after_3(done: int, total: int) -> None:
        if done == 3:
            raise Killed

    a, mask_a = cube(0)
    b, mask_b = cube(1)
    out = tmp_path / "m.tif"
    with pytest.raises(Killed):
        map_raster(lgbm_model, a, out, mask=mask_a, block_size=16, on_window=kill_after_3)
    # another array of the same shape, dates, bands and grid is another job
    with pytest.raises(ParameterError, match="belongs to another map job"):
        MapJob(lgbm_model, b, out, mask=mask_b, block_size=16, resume=True)
    again, mask_again = cube(0)  # an equal array built anew resumes
    res = map_raster(lgbm_model, again, out, mask=mask_again, block_size=16, resume=True)
    assert res.resumed_windows == 3
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(out)[0], cls_ref)


def test_a_second_map_to_the_same_output_is_refused_while_the_first_runs(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cropglobe.cli.main import cli

    folder, scl = stack_dirs
    out = tmp_path / "m.tif"
    first = MapJob(lgbm_model, folder, out, mask=scl, block_size=32)
    try:
        it = first.run()
        next(it)  # one window written into the partial folder
        with ThreadPoolExecutor(1) as pool:  # another thread (or process) mapping to `out`
            second = pool.submit(MapJob, lgbm_model, folder, out, mask=scl, block_size=32)
            with pytest.raises(ParameterError, match=rf"{out}: another map is being written"):
                second.result()
            args = ["map", str(lgbm_model), "--stack", str(folder), "--scl", str(scl), "-q"]
            cli_run = pool.submit(CliRunner().invoke, cli, [*args, "-o", str(out)])
            r = cli_run.result()
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
        assert f"Error: {out}: another map is being written to it (pid " in r.output
        assert (tmp_path / ".m.tif.partial" / "done.log").read_text().count("\n") == 1
        list(it)
        first.finish()
    finally:
        first.close()
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(out)[0], cls_ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tif"]  # no lock left
    # released: the next map to it runs
    map_raster(lgbm_model, folder, out, mask=scl, block_size=32)


def test_a_second_map_job_to_the_same_output_in_the_same_thread_is_refused(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    import os
    import re

    folder, scl = stack_dirs
    out = tmp_path / "m.tif"

    def refused(path: Path) -> str:
        return re.escape(
            f"{path}: another map is being written to it (pid {os.getpid()}: another MapJob of "
            "this process); finish() and close() that job first, or write this map elsewhere"
        )

    first = MapJob(lgbm_model, folder, out, mask=scl, block_size=32)
    try:
        it = first.run()
        next(it)  # one window written into the partial folder
        # interleaved in this thread: a second job would start the partial folder afresh
        with pytest.raises(ParameterError, match=refused(out)):
            MapJob(lgbm_model, folder, out, mask=scl, block_size=32)
        assert (tmp_path / ".m.tif.partial" / "done.log").read_text().count("\n") == 1
        list(it)
        first.finish()
    finally:
        first.close()
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(out)[0], cls_ref)
    # a job started from within another's progress callback, to its output: refused too
    other = tmp_path / "n.tif"

    def nested(done: int, total: int) -> None:
        map_raster(lgbm_model, folder, other, mask=scl, block_size=32)

    with pytest.raises(ParameterError, match=refused(other)):
        map_raster(lgbm_model, folder, other, mask=scl, block_size=16, on_window=nested)
    # released: the next job to it in this thread runs
    map_raster(lgbm_model, folder, out, mask=scl, block_size=32)


def test_bands_for_files_without_band_descriptions(lgbm_model: Path, tmp_path: Path) -> None:
    from cropglobe.cli.main import cli

    folder, scl = write_stack(tmp_path / "s")
    for p in folder.glob("*.tif"):
        with rasterio.open(p, "r+") as ds:
            for b in range(1, ds.count + 1):
                ds.set_band_description(b, "")
    with pytest.raises(BandError, match=r"pass bands=\[…\] in file order"):
        map_raster(lgbm_model, folder, tmp_path / "x.tif", mask=scl, block_size=32)
    res = map_raster(lgbm_model, folder, tmp_path / "a.tif", mask=scl, block_size=32,
                     bands=list(S2_BANDS))  # fmt: skip
    cls_ref, _ = _table_prediction(lgbm_model)
    np.testing.assert_array_equal(_read(res.output)[0], cls_ref)
    runner = CliRunner()
    args = ["map", str(lgbm_model), "--stack", str(folder), "--scl", str(scl), "-q"]
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "b.tif")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "pass --bands B02,B03,… in file order" in r.output and "bands=" not in r.output
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "c.tif"), "--bands", "B02,B03,B04"])
    assert r.exit_code == 2 and "has 10 bands but --bands names 3" in r.output, r.output
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "d.tif"), "--bands", ",".join(S2_BANDS)])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(_read(tmp_path / "d.tif")[0], cls_ref)
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "e.tif"), "--bands", "B02,,B04"])
    assert r.exit_code == 2 and "--bands 'B02,,B04' has an empty name" in r.output
    # files that name their own bands: --bands must agree with them, not be ignored
    described, scl2 = write_stack(tmp_path / "described")
    args = ["map", str(lgbm_model), "--stack", str(described), "--scl", str(scl2), "-q"]
    swapped = ",".join([S2_BANDS[1], S2_BANDS[0], *S2_BANDS[2:]])
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "g.tif"), "--bands", swapped])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "names its own bands" in r.output and "leave --bands out" in r.output
    assert not (tmp_path / "g.tif").exists()
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "h.tif"), "--bands", ",".join(S2_BANDS)])
    assert r.exit_code == 0, r.output
    xr = pytest.importorskip("xarray")
    cube = xr.DataArray(np.zeros((1, 1, 2, 2)), dims=("time", "band", "y", "x"))
    with pytest.raises(ParameterError, match="Zarr/xarray stack that names its own bands"):
        map_raster(lgbm_model, cube, tmp_path / "f.tif", bands=["B02"])


def test_a_stack_without_crs_warns_and_the_sidecar_says_so(
    lgbm_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    da, mask = _data_array({"transform": tuple(TRANSFORM)[:6]})  # no CRS
    with caplog.at_level("WARNING", logger="cropglobe.mapping"):
        res = map_raster(lgbm_model, da, tmp_path / "x.tif", mask=mask, block_size=32)
    said = [r for r in caplog.records if r.levelname == "WARNING" and "no CRS" in r.getMessage()]
    assert len(said) == 1 and "xarray stack" in said[0].getMessage()
    assert "stack_from_xarray(data, crs=" in said[0].getMessage()
    assert json.loads(res.sidecar.read_text())["inputs"]["crs"] is None
    with rasterio.open(res.output) as ds:
        assert ds.crs is None and ds.transform == TRANSFORM
    np.testing.assert_array_equal(_read(res.output)[0], _table_prediction(lgbm_model)[0])


def test_cli_refuses_fewer_than_one_worker(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from cropglobe.cli.main import cli

    folder, scl = stack_dirs
    for n in ("0", "-2"):
        r = CliRunner().invoke(
            cli, ["map", str(lgbm_model), "--stack", str(folder), "--scl", str(scl),
                  "-o", str(tmp_path / "m.tif"), "--workers", n],
        )  # fmt: skip
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
        assert f"Error: --workers must be at least 1 (threads computing windows), got {n}" in (
            r.output
        )
    assert list(tmp_path.iterdir()) == []


def test_map_messages_count_in_the_singular_and_plural(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from cropglobe.cli.main import cli
    from cropglobe.mapping import _part, _plural

    assert [_plural(n, "window") for n in (0, 1, 2)] == ["0 windows", "1 window", "2 windows"]
    assert _part(1, 9, "date", ("lies", "lie")) == "1 of 9 dates lies"
    assert _part(2, 9, "date", ("lies", "lie")) == "2 of 9 dates lie"
    assert _part(1, 1, "window") == "1 of 1 window"
    folder, scl = stack_dirs
    job = MapJob(lgbm_model, folder, tmp_path / "m.tif", mask=scl, block_size=64)
    try:
        with pytest.raises(ParameterError, match=r"m\.tif: 1 of 1 window is not computed yet"):
            job.finish()
        with pytest.raises(ParameterError, match=r"map again with resume=True, --resume\)"):
            job.finish()
    finally:
        job.discard_if_empty()
        job.close()
    r = CliRunner().invoke(
        cli, ["map", str(lgbm_model), "--stack", str(folder), "--scl", str(scl),
              "-o", str(tmp_path / "c.tif"), "--block-size", "64"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"({SIZE * SIZE - 9} of {SIZE * SIZE} pixels mapped, 1 window, " in r.output


def test_value_percentiles_known_answers() -> None:
    from cropglobe.models.folder import value_percentiles
    from cropglobe.series import SeriesSet

    v = np.full((100, 3, 2), np.nan, dtype=np.float32)
    v[:, 0, 0] = np.arange(1, 101)  # 1 … 100, the other step missing
    v[:, 1, :] = 0.25
    ss = SeriesSet(v, ("B02", "B04", "B08"), TimeGrid(edges=(1, 32, 60)))
    got = value_percentiles(ss)
    assert list(got) == ["B02", "B04"]  # B08 holds no value: left out
    np.testing.assert_allclose(got["B02"], [1.99, 50.5, 99.01])
    assert got["B04"] == [0.25, 0.25, 0.25]


def _float_stack(folder: Path, divide: float) -> Path:
    """The synthetic stack as float32 GeoTIFFs of values / ``divide`` (SCL band inside)."""
    values, scl, _ = _pixels()
    folder.mkdir(parents=True)
    prof = {"driver": "GTiff", "height": SIZE, "width": SIZE, "dtype": "float32", "crs": CRS,
            "transform": TRANSFORM, "nodata": 0, "count": 11}  # fmt: skip
    for i, date in enumerate(DATES):
        with rasterio.open(folder / f"S2_{date.replace('-', '')}.tif", "w", **prof) as ds:
            ds.write((values[i] / divide).astype(np.float32), list(range(1, 11)))
            ds.write(scl[i].astype(np.float32), 11)
            ds.descriptions = (*S2_BANDS, "SCL")
    return folder


def test_a_stack_on_another_scale_than_training_is_refused_and_scale_fixes_it(
    lgbm_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools
    import shutil

    from cropglobe.cli.main import cli
    from cropglobe.models import LightGBMModel, registry
    from cropglobe.models.folder import value_percentiles
    from cropglobe.workflow import train_to_folder

    train_set = composite(observations(seed=1), GRID, season_year=2023, allow_empty=True)
    train_set = train_set.drop_empty()
    small = train_set.subset(np.arange(0, train_set.n_samples, 40))
    monkeypatch.setattr(  # a few trees: the card is what is checked here
        registry, "model_class", lambda name: functools.partial(LightGBMModel, n_estimators=3)
    )
    trained = train_to_folder(small, "lightgbm", tmp_path / "t", seed=1, window=None).folder
    monkeypatch.undo()
    card = json.loads((trained / "card.json").read_text())
    assert card["features"]["value_percentiles"] == value_percentiles(small)
    assert 500 < card["features"]["value_percentiles"]["B08"][1] < 5000  # reflectance × 10,000
    # the fixture's model with the record of its training data
    model = tmp_path / "m"
    shutil.copytree(lgbm_model, model)
    card = json.loads((model / "card.json").read_text())
    card["features"]["value_percentiles"] = value_percentiles(train_set)
    (model / "card.json").write_text(json.dumps(card))
    ints, _ = write_stack(tmp_path / "ints", scl_separate=False)
    ref = map_raster(model, ints, tmp_path / "ref.tif", block_size=32)
    # 0 … 1 reflectance (here / 16384: exact in binary floats, so the rescaled map is the same)
    floats = _float_stack(tmp_path / "floats", 16384.0)
    with pytest.raises(ParameterError, match=r"10 of 10 bands off by more than 20×.*scale=10000$"):
        map_raster(model, floats, tmp_path / "x.tif", block_size=32)
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / ".x.tif.partial").exists()
    res = map_raster(model, floats, tmp_path / "ok.tif", block_size=32, scale=16384)
    np.testing.assert_array_equal(_read(res.output), _read(ref.output))
    assert json.loads(res.sidecar.read_text())["options"]["scale"] == 16384
    with pytest.raises(ParameterError, match="on another scale"):  # a wrong factor is caught too
        map_raster(model, ints, tmp_path / "y.tif", block_size=32, scale=1e-4)
    with pytest.raises(ParameterError, match="scale=0 is not a positive finite factor"):
        map_raster(model, ints, tmp_path / "y.tif", block_size=32, scale=0)
    # a card without the record is not checked (the fixture's hand-made card)
    map_raster(lgbm_model, floats, tmp_path / "unchecked.tif", block_size=32)
    runner = CliRunner()
    args = ["map", str(model), "--stack", str(floats), "--block-size", "32", "-q"]
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "c.tif")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.strip().endswith("pass --scale 10000") and "scale=" not in r.output
    r = runner.invoke(cli, [*args, "-o", str(tmp_path / "d.tif"), "--scale", "16384"])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(_read(tmp_path / "d.tif"), _read(ref.output))


def test_trained_neural_cards_record_value_percentiles(tempcnn_model: Path) -> None:
    from cropglobe.models.folder import value_percentiles

    card = json.loads((tempcnn_model / "card.json").read_text())
    ss = composite(observations(seed=1), GRID, season_year=2023, allow_empty=True).drop_empty()
    want = value_percentiles(ss.subset(np.arange(0, ss.n_samples, 4)))
    got = card["features"]["value_percentiles"]
    assert list(got) == list(S2_BANDS)
    np.testing.assert_allclose([got[b] for b in S2_BANDS], [want[b] for b in S2_BANDS], rtol=0.05)


def test_an_unreachable_scheduler_leaves_no_partial_folder_and_keeps_one_to_resume(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    import cropglobe.mapping as mapping
    from cropglobe.cli.main import cli

    monkeypatch.setattr(mapping, "_DASK_CONNECT_TIMEOUT", "0.5s")
    folder, scl = stack_dirs
    out = tmp_path / "m.tif"
    args = ["map", str(lgbm_model), "--stack", str(folder), "--scl", str(scl), "-o", str(out),
            "--block-size", "16", "-q"]  # fmt: skip
    r = CliRunner().invoke(cli, [*args, "--dask-scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "cannot connect to the Dask scheduler 'tcp://127.0.0.1:1'" in r.output
    assert list(tmp_path.iterdir()) == []  # no partial folder with nothing done in it
    job = MapJob(lgbm_model, folder, out, mask=scl, block_size=16)
    for i, _ in enumerate(job.run()):  # stopped after three windows: a partial map to resume
        if i == 2:
            break
    job.close()
    log = tmp_path / ".m.tif.partial" / "done.log"
    assert len(log.read_text().splitlines()) == 3
    r = CliRunner().invoke(cli, [*args, "--resume", "--dask-scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2 and len(log.read_text().splitlines()) == 3, r.output
    r = CliRunner().invoke(cli, [*args, "--resume"])
    assert r.exit_code == 0 and out.is_file() and not log.parent.exists(), r.output


def test_cli_names_the_bad_batch_size_only(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    from cropglobe.cli.main import cli

    folder, scl = stack_dirs
    r = CliRunner().invoke(
        cli, ["map", str(lgbm_model), "--stack", str(folder), "--scl", str(scl),
              "-o", str(tmp_path / "m.tif"), "--batch-size", "0"],
    )  # fmt: skip
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "Error: --batch-size must be at least 1 (pixels per model call), got 0" in r.output
    assert "strip_pixels" not in r.output and list(tmp_path.iterdir()) == []
    with pytest.raises(ParameterError, match=r"^strip_pixels must be >= 1 .* got 0"):
        map_raster(lgbm_model, folder, tmp_path / "m.tif", mask=scl, strip_pixels=0)


def test_an_output_on_the_sidecar_path_is_named_in_the_error(
    lgbm_model: Path, stack_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scl = stack_dirs
    out = tmp_path / "m.tif"
    with pytest.raises(ParameterError, match=r"sidecar .*m\.json"):
        map_raster(lgbm_model, folder, out, mask=scl, probabilities=tmp_path / "m.json")
