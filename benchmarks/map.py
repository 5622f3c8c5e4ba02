"""Benchmark: mapping a synthetic raster stack end to end, against in-memory model throughput.

Writes a synthetic Sentinel-2-like stack (default 4096 × 4096 pixels × 10 bands × 24 dates,
uint16, one tiled GeoTIFF per date) to a temporary folder, then in one process:

* a small model (LightGBM, 40 trees × 4 classes, or ``--small tempcnn``) trained on synthetic
  pixels of the same generator, mapped with :func:`cropglobe.mapping.map_raster`
  (``--workers`` threads, ``--block-size`` windows, probabilities written as uint8) on the whole
  stack;
* CropNet (random weights: the cost does not depend on them) mapped on the top-left
  ``--cropnet-size`` × ``--cropnet-size`` pixels (CropNet costs ~0.23 GFLOP per pixel), with
  the torch float32 engine and with the ``onnx-int8`` engine (``cropnet_int8``);
* for each model, its plain in-memory ``predict_proba`` throughput on already prepared inputs
  (the same predictor the mapping uses, same batch size).

Reports pixels/s end to end (including reading, compositing to the 5-day grid, gap filling,
writing and assembling the COGs), the ratio to the in-memory throughput, the share of worker
time in model compute versus reading + compositing, and peak memory (RSS sampled every 20 ms
during each mapping, and the process's maximum RSS). Prints ONE JSON line.

With ``--applicability`` the small model is mapped a second time writing the per-pixel
dissimilarity from its training data too (``map --applicability``: the training reference's
5-nearest-neighbour distances), and the cost of that layer is reported as the ratio of the two
end-to-end throughputs (``applicability.slowdown``).

Run: ``python benchmarks/map.py`` (or ``--size 1024`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from cropglobe.bands import S2_BANDS
from cropglobe.composite import composite_arrays
from cropglobe.series import SeriesSet, TimeGrid, day_of_season

CLASSES = ("wheat", "maize", "grassland", "rapeseed")
PEAKS = np.array([140.0, 215.0, 180.0, 110.0])  # NDVI peak, day of year, per class
GRID = TimeGrid.cropglobe()
WINDOW = (121, 334)


def dates(n: int) -> np.ndarray:
    """``n`` acquisition dates of 2023, evenly spread from 1 April to 30 November."""
    start = np.datetime64("2023-04-01")
    return start + np.rint(np.linspace(0, 243, n)).astype("timedelta64[D]")


def synth(r0: int, c0: int, h: int, w: int, dts: np.ndarray, seed: int = 0) -> np.ndarray:
    """(T, 10, h, w) uint16 reflectance × 10000 of a field pattern (32-pixel fields)."""
    rows = np.arange(r0, r0 + h)[:, None] // 32
    cols = np.arange(c0, c0 + w)[None, :] // 32
    cls = (rows * 7919 + cols * 104729 + seed) % 4  # (h, w)
    _, doy = day_of_season(dts)
    rng = np.random.default_rng([seed, r0, c0])
    green = np.exp(-(((doy[:, None, None] - PEAKS[cls][None]) / 40.0) ** 2)).astype(np.float32)
    vis = 900 - 600 * green
    red_edge = 1500 + 1500 * green
    nir = 2000 + 3000 * green
    swir = 2500 - 1000 * green
    bands = [
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
    out = np.stack(bands, axis=1)
    out += rng.normal(0, 60, out.shape).astype(np.float32)
    return np.clip(out, 1, 10000).astype(np.uint16)


def labels(r0: int, c0: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rows = np.arange(r0, r0 + h)[:, None] // 32
    cols = np.arange(c0, c0 + w)[None, :] // 32
    return np.asarray((rows * 7919 + cols * 104729 + seed) % 4, dtype=np.int64)


def write_stack(folder: Path, size: int, n_dates: int, block: int) -> Path:
    """One tiled uint16 GeoTIFF per date, written strip by strip (bounded memory)."""
    import rasterio
    from affine import Affine

    dts = dates(n_dates)
    prof = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 10,
        "dtype": "uint16",
        "crs": "EPSG:32631",
        "transform": Affine(10.0, 0, 500000.0, 0, -10.0, 5000000.0),
        "tiled": True,
        "blockxsize": min(block, 512),
        "blockysize": min(block, 512),
        "interleave": "pixel",
    }
    strip = min(block, 512)
    with rasterio.Env(GDAL_CACHEMAX=64):
        for d in dts:
            name = folder / f"S2_{str(d).replace('-', '')}.tif"
            with rasterio.open(name, "w", **prof) as ds:
                for r0 in range(0, size, strip):
                    h = min(strip, size - r0)
                    ds.write(
                        synth(r0, 0, h, size, np.array([d]))[0], window=((r0, r0 + h), (0, size))
                    )
                ds.descriptions = tuple(S2_BANDS)
    return folder


def training_set(n_side: int, n_dates: int) -> SeriesSet:
    """Composited synthetic pixels (another part of the pattern) on the CropGlobe grid."""
    dts = dates(n_dates)
    raw = synth(100_000, 100_000, n_side, n_side, dts, seed=1).astype(np.float32)
    t, c, h, w = raw.shape
    p = h * w
    obs = raw.reshape(t, c, p).transpose(2, 0, 1).reshape(p * t, c)
    _, dos = day_of_season(dts)
    vals = composite_arrays(np.repeat(np.arange(p), t), np.tile(dos, p), obs, p, GRID)
    y = labels(100_000, 100_000, n_side, n_side, seed=1).reshape(-1)
    return SeriesSet(vals, S2_BANDS, GRID, y, CLASSES)


class PeakRSS:
    """Samples this process's RSS every 20 ms while active."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self) -> PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()


def in_memory_throughput(
    model_dir: Path, ss: SeriesSet, batch_size: int, device: str = "cpu"
) -> float:
    """Pixels/s of the mapping's own predictor on prepared inputs (median of 3 runs)."""
    from cropglobe.mapping import _Job, _load_predictor
    from cropglobe.models.folder import model_inputs, read_card

    card = read_card(model_dir)
    job = _Job(
        None,
        str(model_dir),
        "torch",
        None,
        (),
        (),
        (),
        (),
        "uint8",
        True,
        None,  # type: ignore[arg-type]
        batch_size,
        0,
        None,
        device=device,
    )
    predict, _ = _load_predictor(job)
    x = model_inputs(card, ss)
    predict(x[: min(256, len(x))])  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - t0)
    return float(len(x) / np.median(times))


def run_map(
    model_dir: Path,
    stack: Any,
    out: Path,
    workers: int,
    block: int,
    batch: int,
    engine: str = "torch",
    applicability: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    import psutil

    from cropglobe.mapping import map_raster

    before = psutil.Process().memory_info().rss
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        res = map_raster(
            model_dir,
            stack,
            out / "map.tif",
            probabilities=out / "probs.tif",
            block_size=block,
            workers=workers,
            batch_size=batch,
            engine=engine,  # type: ignore[arg-type]
            applicability=out / "aoa.tif" if applicability else None,
            device=device,
        )
        wall = time.perf_counter() - t0
    s = res.seconds
    work = s["read"] + s["composite"] + s["model"]
    return {
        "pixels": res.n_pixels,
        "windows": res.n_windows,
        "wall_s": round(wall, 2),
        "end_to_end_px_s": round(res.n_pixels / wall, 1),
        "model_share": round(s["model"] / work, 3),
        "io_composite_share": round((s["read"] + s["composite"]) / work, 3),
        "seconds": {k: round(v, 2) for k, v in s.items()},
        "rss_before_map_mb": round(before / 2**20, 1),
        "peak_rss_mb_during_map": round(rss.peak / 2**20, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096, help="raster side in pixels")
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--small", choices=["lightgbm", "tempcnn"], default="lightgbm")
    ap.add_argument("--cropnet-size", type=int, default=64, help="0 skips CropNet")
    ap.add_argument("--tmp", default=None, help="folder for the stack (default: a temp dir)")
    ap.add_argument(
        "--device",
        default="cpu",
        help="torch device CropNet is mapped on (cpu, cuda); on a GPU the int8 comparison is "
        "skipped and CropNet's in-memory CPU throughput is measured beside it",
    )
    ap.add_argument(
        "--no-int8", action="store_true", help="skip CropNet through the onnx-int8 engine"
    )
    ap.add_argument(
        "--applicability",
        action="store_true",
        help="also map the small model with the dissimilarity layer and report its cost",
    )
    args = ap.parse_args()

    from cropglobe.io.raster import open_stack
    from cropglobe.models import LightGBMModel, ModelCard, create_model, save_model

    if args.tmp is not None:
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        root = Path(tmp)
        (root / "stack").mkdir()
        t0 = time.perf_counter()
        write_stack(root / "stack", args.size, args.dates, args.block_size)
        write_s = time.perf_counter() - t0
        train = training_set(96, args.dates)
        card_kw = {"bands": S2_BANDS, "grid": GRID, "classes": CLASSES, "window": WINDOW}
        if args.small == "lightgbm":
            small = LightGBMModel(n_estimators=40, num_leaves=15, random_state=0)
            win = train.select_window(*WINDOW)
            small.fit(win.values, win.labels)
            # trained on medians without gap filling: the card says so, so map does not fill
            no_fill = {"composite": {"reducer": "median", "fill": False}}
            card = ModelCard(
                model="lightgbm", params={"n_estimators": 40}, features=no_fill, **card_kw
            )  # type: ignore[arg-type]
        else:
            from cropglobe.train import train as train_fn

            tr = train_fn("tempcnn", train, epochs=1, augment="none", window=WINDOW)
            small, card = tr.model, tr.card
        small_dir = save_model(root / "small", small, card)
        probe = training_set(128, args.dates)
        stack = open_stack(str(root / "stack" / "*.tif"))
        result: dict[str, Any] = {
            "benchmark": "map",
            "size": args.size,
            "dates": args.dates,
            "bands": 10,
            "block_size": args.block_size,
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
            "write_stack_s": round(write_s, 1),
        }
        mem_px_s = in_memory_throughput(small_dir, probe, args.batch_size)
        (root / "out_small").mkdir()
        r = run_map(
            small_dir, stack, root / "out_small", args.workers, args.block_size, args.batch_size
        )
        r.update(
            model=args.small,
            in_memory_px_s=round(mem_px_s, 1),
            ratio_to_in_memory=round(r["end_to_end_px_s"] / mem_px_s, 3),
        )
        result["small_model"] = r
        if args.applicability:
            from cropglobe.evaluate.applicability import TrainingReference

            TrainingReference.fit(train, WINDOW).save(small_dir)
            (root / "out_aoa").mkdir()
            ra = run_map(
                small_dir,
                stack,
                root / "out_aoa",
                args.workers,
                args.block_size,
                args.batch_size,
                applicability=True,
            )
            ra.update(slowdown=round(r["end_to_end_px_s"] / ra["end_to_end_px_s"], 3))
            result["applicability"] = ra
        if args.cropnet_size > 0:
            n = min(args.cropnet_size, args.size)
            net = create_model("cropnet", len(CLASSES), 10, 43)
            ccard = ModelCard(
                model="cropnet",
                params=net.config,
                features={"fill": "linear", "scale": None, "nan": 0.0},
                **card_kw,
            )  # type: ignore[arg-type]
            cdir = save_model(root / "cropnet", net, ccard)
            sub = root / "sub"
            sub.mkdir()
            (root / "out_cropnet").mkdir()
            import rasterio
            from rasterio.windows import Window

            for f in stack.files:
                with rasterio.open(f) as src:
                    prof = src.profile | {
                        "width": n,
                        "height": n,
                        "blockxsize": min(n, 512),
                        "blockysize": min(n, 512),
                    }
                    data = src.read(window=Window(0, 0, n, n))  # type: ignore[call-arg]
                    with rasterio.open(sub / Path(f).name, "w", **prof) as dst:
                        dst.write(data)
                        dst.descriptions = src.descriptions
            cblock = max(16, min(args.block_size, n // 2 // 16 * 16 or 16))
            gpu = args.device != "cpu"
            cbatch = args.batch_size if gpu else 1024
            pix = probe.subset(np.arange(min(probe.n_samples, 8 * cbatch if gpu else 1024)))
            cmem = in_memory_throughput(cdir, pix, cbatch, args.device)
            rc = run_map(
                cdir,
                str(sub / "*.tif"),
                root / "out_cropnet",
                args.workers,
                cblock,
                cbatch,
                device=args.device,
            )
            rc.update(
                model="cropnet",
                device=args.device,
                batch_size=cbatch,
                block_size=cblock,
                in_memory_px_s=round(cmem, 1),
                ratio_to_in_memory=round(rc["end_to_end_px_s"] / cmem, 3),
            )
            if gpu:  # the same model on this machine's CPU cores, for the ratio
                import torch

                cpu = in_memory_throughput(cdir, probe.subset(np.arange(1024)), 1024)
                rc.update(
                    cpu_in_memory_px_s=round(cpu, 1),
                    cpu_threads=torch.get_num_threads(),
                    end_to_end_vs_cpu_in_memory=round(rc["end_to_end_px_s"] / cpu, 1),
                )
            result["cropnet"] = rc
        if args.cropnet_size > 0 and args.device == "cpu" and not args.no_int8:
            # the same CropNet through the int8 ONNX engine (static quantization calibrated
            # on the first windows' pixels; the quantization time is part of the wall time)
            (root / "out_cropnet_int8").mkdir()
            rq = run_map(
                cdir,
                str(sub / "*.tif"),
                root / "out_cropnet_int8",
                args.workers,
                cblock,
                1024,
                engine="onnx-int8",
            )
            rq.update(
                model="cropnet (onnx-int8)",
                block_size=cblock,
                speedup_vs_torch_fp32_map=round(rq["end_to_end_px_s"] / rc["end_to_end_px_s"], 2),
                speedup_model_time=round(rc["seconds"]["model"] / rq["seconds"]["model"], 2),
            )
            result["cropnet_int8"] = rq
        result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
