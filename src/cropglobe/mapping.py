"""Crop maps from raster stacks: windowed, batched, parallel (threads or Dask), COG out.

:func:`map_raster` applies a trained model folder (:func:`cropglobe.models.save_model`) to a
:class:`~cropglobe.io.raster.RasterStack` and writes

- a Cloud-Optimized GeoTIFF of class ids (uint8, a colour table, class names in the tags,
  255 = no data where a pixel has no valid observation),
- optionally a COG of per-class probabilities (``uint8``: probability × 254 rounded, 255 = no
  data, band scale 1/254 so GDAL-aware readers see 0 … 1; or ``float32``, NaN = no data),
- optionally an uncertainty COG (normalised entropy or top-two margin, same encoding),
- a JSON sidecar (``map.json`` beside ``map.tif``): model card summary, inputs, options, timings.

Each window of the output's tile grid (``block_size`` × ``block_size``) goes through the same
code path as training data: read (T, C, h, w) -> composite to the model's time grid with
:func:`cropglobe.composite.composite_dense` (the NaN-median of :func:`~cropglobe.composite.
composite_arrays`, bin by bin over dates shared by all pixels; day of season of each
acquisition from :func:`cropglobe.series.day_of_season`) -> :func:`cropglobe.models.
folder.model_inputs` (the card's gap filling and window) -> batched prediction. Windows are read
in strips of about ``strip_pixels`` pixels, so the memory of one window in flight is about
``T × C × strip_pixels × 4`` bytes × a small factor, whatever the raster size (see
``docs/mapping.md``).

Results are written by one writer (the calling process) into a *partial* folder beside the
output (``.map.tif.partial/``): fixed-offset block files plus an append-only log of finished
windows. ``resume=True`` continues from it window by window; the final COGs are assembled from
it at the end and renamed into place, so an interrupted run never leaves a file that looks
complete, and a resumed run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cropglobe._fs import atomic_path, folder_lock
from cropglobe.composite import auto_max_gap, composite_dense, fill_gaps
from cropglobe.errors import CropGlobeError, DataFormatError, GridError, ModelError, ParameterError
from cropglobe.io.raster import RasterStack, Window, open_stack, stack_from_xarray, to_float
from cropglobe.series import SeriesSet, day_of_season

__all__ = [
    "ENGINES",
    "MapJob",
    "MapResult",
    "MapWriteError",
    "WindowResult",
    "compute_window",
    "map_raster",
]

logger = logging.getLogger(__name__)

Engine = Literal["torch", "onnx", "onnx-int8"]
ENGINES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
ProbDtype = Literal["uint8", "float32"]
Uncertainty = Literal["entropy", "margin"]

NODATA_CLASS = 255
_U8_SCALE = 254.0
_GDAL_CACHE_MB = 128
_FORMAT = "cropglobe.map"


class MapWriteError(CropGlobeError, OSError):
    """Writing the map failed (disk full, unwritable folder); nothing complete-looking is left."""

    def __str__(self) -> str:  # OSError would format errno tuples
        return str(self.args[0]) if self.args else "map write error"


# =====================================================================================
# The job: everything a worker needs to compute a window (picklable, small)
# =====================================================================================
@dataclass(frozen=True)
class _Job:
    stack: RasterStack
    model_dir: str
    engine: str
    onnx_path: str | None
    date_index: tuple[int, ...]
    dos: tuple[int, ...]
    band_index: tuple[int, ...]
    windows: tuple[Window, ...]
    prob_dtype: str
    write_probs: bool
    uncertainty: str | None
    batch_size: int
    strip_pixels: int
    threads: int | None
    model_stamp: str = ""
    tta: tuple[float, ...] = ()
    scale: float = 1.0
    applicability: bool = False
    device: str = "cpu"


@dataclass
class WindowResult:
    """What a worker returns for one window (arrays the writer puts in place).

    Attributes:
        index: window number (row-major over the tile grid).
        classes: uint8 (h, w) class ids, 255 = no data.
        probs: (K, h, w) uint8 (× 254, 255 = no data) or float32 (NaN = no data), or None.
        uncertainty: (h, w) in the probability encoding, or None.
        n_valid: pixels with at least one valid observation.
        seconds: ``read``, ``composite`` (incl. model inputs) and ``model`` seconds.
        dissimilarity: float32 (h, w) distance from the training data (NaN = no data), or None
            (:mod:`cropglobe.evaluate.applicability`).
    """

    index: int
    classes: NDArray[np.uint8]
    probs: NDArray[Any] | None
    uncertainty: NDArray[Any] | None
    n_valid: int
    seconds: dict[str, float]
    dissimilarity: NDArray[np.float32] | None = None


_PREDICTORS: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_PRED_LOCK = threading.Lock()
_PREDICTORS_KEPT = 4  # models held by a long-lived process (a notebook mapping many regions)


def _predictor(job: _Job) -> tuple[Callable[[NDArray[np.float32]], NDArray[np.float64]], Any]:
    """A cached ``(predict_proba over card.classes, card)`` for this process."""
    # the ONNX file's size and time: a map written again to one output re-quantizes it
    onnx = tuple(_file_stat(job.onnx_path)) if job.onnx_path else None
    key = (
        job.model_dir,
        job.model_stamp,
        job.engine,
        job.onnx_path,
        onnx,
        job.threads,
        job.device,
    )
    with _PRED_LOCK:
        hit = _PREDICTORS.pop(key, None)
        if hit is None:
            hit = _load_predictor(job)
            while len(_PREDICTORS) >= _PREDICTORS_KEPT:
                del _PREDICTORS[next(iter(_PREDICTORS))]  # the least recently used
        _PREDICTORS[key] = hit
    return hit


def _load_predictor(job: _Job) -> tuple[Callable[[NDArray[np.float32]], NDArray[np.float64]], Any]:
    from cropglobe.models.folder import card_proba, load_model, proba_columns, read_card
    from cropglobe.models.registry import is_neural

    card = read_card(job.model_dir)
    bs = job.batch_size
    if job.engine != "torch":
        from cropglobe.export import OnnxClassifier

        if job.onnx_path is None:  # pragma: no cover - set by MapJob for ONNX engines
            raise ModelError("ONNX engine selected without an ONNX file")
        clf = OnnxClassifier(job.onnx_path, threads=job.threads)

        def onnx_proba(x: NDArray[np.float32]) -> NDArray[np.float64]:
            return clf.predict_proba(x, batch_size=bs)

        return onnx_proba, card
    model, card = load_model(job.model_dir)
    if is_neural(card.model):
        from cropglobe.models.inputs import predict_proba, resolve_device

        # moved once here, not by each call: the workers' threads share this model
        dev = resolve_device(job.device)
        model.to(dev)

        def torch_proba(x: NDArray[np.float32]) -> NDArray[np.float64]:
            return predict_proba(model, x, batch_size=bs, device=dev)

        return torch_proba, card
    # classical: its columns are some of the card's classes (absent ones stay zero)
    cols = proba_columns(model, card, job.model_dir)

    def classical_proba(x: NDArray[np.float32]) -> NDArray[np.float64]:
        return card_proba(model, card, x, batch_size=bs, columns=cols)

    return classical_proba, card


def _composite_pixels(
    values: NDArray[np.float32],
    valid: NDArray[np.bool_],
    dos: NDArray[np.int64],
    grid: Any,
    comp: dict[str, Any],
) -> NDArray[np.float32]:
    """Pixels of a (T, C, h, w) block as observations, composited to ``grid``.

    Args:
        values: float32 (T, C, h, w), NaN = no data.
        valid: bool (T, h, w), False = masked by the SCL / validity layer.
        dos: int (T,) day of season of each date, increasing.
        grid: the target :class:`~cropglobe.series.TimeGrid`.
        comp: the card's compositing (:func:`cropglobe.models.folder.composite_of`).

    Returns:
        float32 (h · w, C, T_grid), pixels row-major; NaN where a bin holds no valid value.
    """
    t, c, h, w = values.shape
    out = composite_dense(
        values.reshape(t, c, h * w),
        valid.reshape(t, h * w),
        dos,
        grid,
        reducer=comp.get("reducer", "median"),
    )
    if comp.get("fill"):
        gap = comp.get("max_gap_days", "auto")
        out = fill_gaps(
            out,
            grid,
            max_gap_days=auto_max_gap(grid) if gap == "auto" else gap,
            edge=comp.get("edge", "hold"),
        )
    return out


def _plan(card: Any, dos: NDArray[np.int64]) -> tuple[Any, NDArray[np.int64]]:
    """The grid to composite to and the dates (positions into ``dos``) that reach it.

    Neural models fill gaps over the card's whole grid before the window is cut, so they need
    the whole grid. Classical models read only the window, and median bins are independent:
    compositing straight to the window's bins gives the same values for less work.
    """
    from cropglobe.models.folder import composite_of
    from cropglobe.models.registry import is_neural

    comp = composite_of(card)
    if card.window is not None and not is_neural(card.model) and not comp["fill"]:
        grid = card.model_grid
    else:
        grid = card.grid
    return grid, np.flatnonzero(grid.bin_index(dos) >= 0)


def _encode(p: NDArray[np.float64], dtype: str) -> NDArray[Any]:
    if dtype == "uint8":
        return np.rint(np.clip(p, 0.0, 1.0) * _U8_SCALE).astype(np.uint8)
    return p.astype(np.float32)


def _uncertainty(p: NDArray[np.float64], kind: str) -> NDArray[np.float64]:
    """Normalised entropy (0 … 1) or top-two margin (0 … 1) of probabilities (N, K)."""
    if kind == "margin":
        if p.shape[1] < 2:
            return np.ones(p.shape[0])
        top = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return np.asarray(top[:, 1] - top[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.asarray(ent / math.log(max(p.shape[1], 2)))


def _reference(job: _Job) -> Any:
    """The model folder's training reference (cached per process with the predictors)."""
    from cropglobe.evaluate.applicability import TrainingReference

    key = ("reference", job.model_dir, job.model_stamp)
    with _PRED_LOCK:
        hit = _PREDICTORS.get(key)
        if hit is None:
            hit = (TrainingReference.load(job.model_dir), None)
            _PREDICTORS[key] = hit
    return hit[0]


def _window_inputs(
    job: _Job,
    index: int,
    card: Any,
    secs: dict[str, float],
    dissimilarity: list[NDArray[np.float32]] | None = None,
) -> Iterator[tuple[int, NDArray[np.bool_], list[NDArray[np.float32]]]]:
    """Model inputs of one window, strip by strip: ``(first row, mapped mask, inputs)``.

    Reads the window, composites each strip of about ``job.strip_pixels`` pixels to the model's
    grid and prepares the model inputs of its mapped pixels (those with a valid observation in
    the season). ``mapped`` is a bool (rows · w,) mask of the strip; ``inputs`` holds one array
    per window shift of ``job.tta`` (days, :func:`cropglobe.models.folder.model_inputs`; one
    unshifted array without test-time shifts), each
    with one row per mapped pixel. Adds the time spent to ``secs["read"]`` and
    ``secs["composite"]``. ``dissimilarity``: a list that receives, before each strip is
    yielded, the mapped pixels' distance from the training data (the model folder's training
    reference).
    """
    from cropglobe.models.folder import composite_of, model_inputs

    _r0, _c0, h, w = job.windows[index]
    dos = np.asarray(job.dos, dtype=np.int64)
    grid, sel = _plan(card, dos)
    comp = composite_of(card)  # as predict composites a table for the card
    rows = max(1, job.strip_pixels // max(w, 1))
    t0 = time.perf_counter()  # the whole window is read at once, in the files' dtype
    with rasterio_env(), job.stack.reader() as rd:
        raw, nodata, valid_all = rd.read_raw(job.windows[index], job.date_index, job.band_index)
    secs["read"] += time.perf_counter() - t0
    for s0 in range(0, h, rows):
        sh = min(rows, h - s0)
        t1 = time.perf_counter()
        values = to_float(raw[:, :, s0 : s0 + sh], nodata)
        if job.scale != 1.0:  # the stack on the training data's scale (NaN stays NaN)
            values *= np.float32(job.scale)
        valid = valid_all[:, s0 : s0 + sh]
        # a pixel is mapped when it has a valid observation in the season (as a table row
        # composited with allow_empty=True would be non-empty)
        seen = valid & ~np.isnan(values).all(axis=1)  # (T, sh, w)
        has = seen.any(axis=0).reshape(-1)
        n = int(has.sum())
        if n == 0:
            secs["composite"] += time.perf_counter() - t1
            yield s0, has, [np.zeros((0, 0, 0), dtype=np.float32)]
            continue
        if sel.size < dos.size:
            values, valid = values[sel], valid[sel]
        series = _composite_pixels(values, valid, dos[sel], grid, comp)
        del values, valid, seen
        ss = SeriesSet(series if n == series.shape[0] else series[has], card.bands, grid)
        xs = [model_inputs(card, ss, shift=v) for v in job.tta or (0.0,)]
        if dissimilarity is not None:
            dissimilarity.append(_reference(job).dissimilarity(ss))
        del series, ss
        secs["composite"] += time.perf_counter() - t1
        yield s0, has, xs


def compute_window(job: _Job, index: int) -> WindowResult:
    """Read, composite and classify one window (runs in a thread, a Dask worker, anywhere).

    Args:
        job: the job description built by :class:`MapJob` (picklable).
        index: the window number.

    Returns:
        the :class:`WindowResult`.
    """
    predict, card = _predictor(job)
    _r0, _c0, h, w = job.windows[index]
    k = len(card.classes)
    classes = np.full((h, w), NODATA_CLASS, dtype=np.uint8)
    fill = np.uint8(255) if job.prob_dtype == "uint8" else np.float32(np.nan)
    pdtype = np.uint8 if job.prob_dtype == "uint8" else np.float32
    probs = np.full((k, h, w), fill, dtype=pdtype) if job.write_probs else None
    unc = np.full((h, w), fill, dtype=pdtype) if job.uncertainty else None
    dis = np.full((h, w), np.nan, dtype=np.float32) if job.applicability else None
    found: list[NDArray[np.float32]] | None = [] if job.applicability else None
    secs = {"read": 0.0, "composite": 0.0, "model": 0.0}
    n_valid = 0
    for s0, has, xs in _window_inputs(job, index, card, secs, found):
        if xs[0].shape[0] == 0:
            continue
        n_valid += xs[0].shape[0]
        t2 = time.perf_counter()
        # test-time shift averaging: the probabilities averaged over the shifted windows
        p = predict(xs[0]) if len(xs) == 1 else np.mean([predict(x) for x in xs], axis=0)
        del xs
        secs["model"] += time.perf_counter() - t2
        rr, cc = np.divmod(np.flatnonzero(has), w)
        rr += s0
        classes[rr, cc] = np.argmax(p, axis=1).astype(np.uint8)
        if probs is not None:
            probs[:, rr, cc] = _encode(p, job.prob_dtype).T
        if unc is not None and job.uncertainty is not None:
            unc[rr, cc] = _encode(_uncertainty(p, job.uncertainty), job.prob_dtype)
        if dis is not None and found:
            dis[rr, cc] = found.pop()
    return WindowResult(index, classes, probs, unc, n_valid, secs, dis)


def calibration_inputs(job: _Job, n_pixels: int = 1024, seed: int = 0) -> NDArray[np.float32]:
    """Model inputs of up to ``n_pixels`` mapped pixels for int8 calibration.

    Takes windows in order until ``4 · n_pixels`` mapped pixels are collected (or the raster
    ends), then a seeded random subset of ``n_pixels`` of them: the activation ranges of a
    statically quantized model come from the region being mapped, and a rerun (or a resumed
    run) calibrates on the same pixels.
    """
    from cropglobe.models.folder import read_card

    card = read_card(job.model_dir)
    secs = {"read": 0.0, "composite": 0.0}
    parts: list[NDArray[np.float32]] = []
    total = 0
    for index in range(len(job.windows)):
        for _s0, _has, xs in _window_inputs(job, index, card, secs):
            for x in xs if xs[0].shape[0] else ():  # calibrate on what the model will read
                parts.append(x)
                total += x.shape[0]
        if total >= 4 * n_pixels:
            break
    if not parts:
        raise DataFormatError(
            "no pixel of the stack has a valid observation in the model's season; nothing to "
            "calibrate the int8 model on (check the dates and the validity layer)"
        )
    x_all = np.concatenate(parts)
    pick = np.random.default_rng(seed).permutation(x_all.shape[0])[:n_pixels]
    return np.ascontiguousarray(x_all[np.sort(pick)])


# =====================================================================================
# Partial output: fixed-offset block files + an append-only log of finished windows
# =====================================================================================
class _BlockFile:
    """Window arrays (bands, h, w) at fixed offsets of one raw file (window i at i × slot)."""

    def __init__(self, path: Path, n_windows: int, bands: int, block: int, dtype: Any) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.bands = bands
        self.slot = bands * block * block * self.dtype.itemsize
        size = n_windows * self.slot
        mode = os.O_RDWR | os.O_CREAT
        self.fd = os.open(path, mode, 0o644)
        if os.fstat(self.fd).st_size != size:
            os.ftruncate(self.fd, size)

    def write(self, index: int, arr: NDArray[Any]) -> None:
        data = np.ascontiguousarray(arr, dtype=self.dtype).tobytes()
        view = memoryview(data)
        off = index * self.slot
        while view:
            n = os.pwrite(self.fd, view, off)
            view, off = view[n:], off + n

    def read(self, index: int, h: int, w: int) -> NDArray[Any]:
        n = self.bands * h * w * self.dtype.itemsize
        buf = os.pread(self.fd, n, index * self.slot)
        return np.frombuffer(buf, dtype=self.dtype).reshape(self.bands, h, w)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class MapResult:
    """What :func:`map_raster` returns.

    Attributes:
        output: the class-id COG.
        probabilities: the probability COG, or None.
        uncertainty: the uncertainty COG, or None.
        sidecar: the JSON sidecar.
        applicability: the dissimilarity COG (distance from the training data), or None.
        outside_share: share of the mapped pixels outside the training data's range
            (dissimilarity > 1), or None without ``applicability``.
        n_windows: windows of the tile grid.
        n_pixels: H × W.
        n_valid: pixels with at least one valid observation (the others are no data).
        seconds: ``total``, ``read``, ``composite``, ``model`` (summed over windows, so they can
            exceed ``total`` with several workers), ``assemble`` (COG writing).
        resumed_windows: windows taken from an earlier interrupted run.
    """

    output: Path
    probabilities: Path | None
    uncertainty: Path | None
    sidecar: Path
    n_windows: int
    n_pixels: int
    n_valid: int
    seconds: dict[str, float] = field(default_factory=dict)
    resumed_windows: int = 0
    applicability: Path | None = None
    outside_share: float | None = None


def _plural(n: int, noun: str) -> str:
    """``"1 window"``, ``"2 windows"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _part(k: int, n: int, noun: str, verbs: tuple[str, str] | None = None) -> str:
    """``"1 of 1 window"``, ``"2 of 9 dates"``; with ``verbs`` (singular, plural) the verb that
    agrees with ``k``: ``"1 of 9 dates lies"``."""
    text = f"{k} of {_plural(n, noun)}"
    return text if verbs is None else f"{text} {verbs[0] if k == 1 else verbs[1]}"


def _free_bytes(folder: Path) -> int:
    return int(shutil.disk_usage(folder).free)


def _as_stack(
    stack: Any, mask: Any, mask_kind: str, bands: Sequence[str] | None = None
) -> RasterStack:
    files = isinstance(stack, str | os.PathLike | list | tuple) and not (
        isinstance(stack, str | os.PathLike) and str(stack).rstrip("/").endswith(".zarr")
    )
    if bands is not None and not files:
        raise ParameterError(
            "bands= names the bands of GeoTIFF files without band descriptions; this stack is "
            f"a {'RasterStack' if isinstance(stack, RasterStack) else 'Zarr/xarray stack'} "
            "that names its own bands (its 'band' coordinate); leave bands out"
        )
    if isinstance(stack, RasterStack):
        return stack
    if files:
        return open_stack(stack, mask=mask, mask_kind=mask_kind, bands=bands)  # type: ignore[arg-type]
    return stack_from_xarray(stack, mask=mask, mask_kind=mask_kind)  # type: ignore[arg-type]


def _choose_season(
    stack: RasterStack, card: Any, season_year: int | None
) -> tuple[list[int], list[int], int]:
    """Dates of the stack used for the map: one season, inside the card's grid."""
    years, dos = day_of_season(stack.dates, card.grid.anchor)
    inside = card.grid.bin_index(dos) >= 0
    if season_year is None:
        cand = years[inside]
        if cand.size == 0:
            season = int(years[0]) if years.size else 0
        else:
            uniq, counts = np.unique(cand, return_counts=True)
            season = int(uniq[np.argmax(counts)])  # most dates; ties: the earlier season
    else:
        season = int(season_year)
    use = inside & (years == season)
    mg = card.model_grid
    in_window = use & (dos >= mg.edges[0]) & (dos < mg.edges[-1])
    if not in_window.any():
        span = f"{stack.dates[0]} … {stack.dates[-1]}" if stack.dates.size else "no dates"
        raise GridError(
            f"{stack.description}: no acquisition date ({span}) falls in the model's time window "
            f"of season {season} (days {mg.edges[0]}–{mg.edges[-1] - 1} of a season starting "
            f"{card.grid.anchor}); give a stack of that season or pass the right season_year "
            "(--season-year)"
        )
    skipped = int((~use).sum())
    if skipped:
        logger.info(
            "%s outside season %d of the model's grid; ignored",
            _part(skipped, int(stack.dates.size), "acquisition date", ("lies", "lie")),
            season,
        )
    idx = [int(i) for i in np.flatnonzero(use)]
    order = sorted(idx, key=lambda i: (int(dos[i]), i))
    return order, [int(dos[i]) for i in order], season


def _windows(height: int, width: int, block: int) -> list[Window]:
    return [
        (r, c, min(block, height - r), min(block, width - c))
        for r in range(0, height, block)
        for c in range(0, width, block)
    ]


def _card_summary(card: Any) -> dict[str, Any]:
    return {
        "model": card.model,
        "classes": list(card.classes),
        "bands": list(card.bands),
        "grid": card.grid.to_dict(),
        "window": list(card.window) if card.window else None,
        "features": card.features,
        "metrics": card.metrics,
        "data_fingerprint": card.data_fingerprint,
        "created": card.created,
        "version": card.version,
    }


def _check_tta(tta: Sequence[float] | None, card: Any, model_dir: Path) -> tuple[float, ...]:
    """The test-time shifts as floats (empty: off), checked against the model."""
    from cropglobe.models.registry import is_neural

    if not tta:
        return ()
    shifts = tuple(float(v) for v in tta)
    if not all(math.isfinite(v) for v in shifts):
        raise ParameterError(f"tta shifts must be finite numbers of days, got {list(tta)}")
    if not is_neural(card.model) or card.window is None:
        raise ParameterError(
            f"test-time shift averaging needs a neural model trained on a window; {model_dir} "
            f"holds a {card.model!r} model "
            f"{'without a window' if card.window is None else '(classical)'}; map without --tta"
        )
    return shifts


def _file_stat(path: str) -> list[int]:
    """Size and modification time (ns) of a stack file: [-1, -1] when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return [-1, -1]
    return [int(st.st_size), int(st.st_mtime_ns)]


_SAMPLE_PATCH = 16  # pixels a side of each patch of an in-memory stack's fingerprint


def _array_fingerprint(
    stack: RasterStack, date_index: Sequence[int], band_index: Sequence[int]
) -> str:
    """A cheap content fingerprint of an xarray / in-memory stack (its resume identity).

    Such a stack has no files whose size and time could tell two of them apart, so the values
    the map reads (the used dates and bands, with the mask) of three 16 × 16 patches along the
    diagonal (at 1/4, 1/2 and 3/4) are hashed, with the dtype, the nodata values, the CRS and
    the transform. Reading them costs about as much as three small windows (dask-backed arrays
    compute only the chunks they touch). Two stacks that differ only outside the patches still
    share a fingerprint; resume such a stack only with the stack it was started with.
    """
    ph, pw = min(_SAMPLE_PATCH, stack.height), min(_SAMPLE_PATCH, stack.width)
    spots = sorted(
        {(int((stack.height - ph) * f), int((stack.width - pw) * f)) for f in (0.25, 0.5, 0.75)}
    )
    digest = hashlib.sha256()
    digest.update(repr((str(stack.crs), tuple(stack.transform or ())[:6])).encode())
    with rasterio_env(), stack.reader() as rd:
        for r0, c0 in spots:
            raw, nodata, valid = rd.read_raw((r0, c0, ph, pw), date_index, band_index)
            digest.update(str(raw.dtype).encode())
            for arr in (np.ascontiguousarray(raw), nodata, valid):
                digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


_SCALE_RATIO = 20.0  # a band "on another scale": its median off by more than this factor
_SCALE_WINDOWS = 16  # windows searched for valid pixels before the scale check gives up


def _check_scale(
    stack: RasterStack,
    card: Any,
    windows: Sequence[Window],
    date_index: Sequence[int],
    band_index: Sequence[int],
    scale: float,
) -> None:
    """Refuse a stack whose values are on another scale than the model's training data.

    The card's ``features["value_percentiles"]`` (recorded at training time) gives each band's
    median training value. The first window (of the first few) with valid pixels is read and,
    when most bands' medians (times ``scale``) differ from the training medians by a factor
    above 20, a :class:`ParameterError` names both scales and the factor to pass. Cards
    without the record are not checked.
    """
    ref = card.features.get("value_percentiles")
    if not isinstance(ref, dict) or not ref:
        return
    values = None
    with rasterio_env(), stack.reader() as rd:
        for win in windows[:_SCALE_WINDOWS]:
            raw, nodata, valid = rd.read_raw(win, date_index, band_index)
            block = to_float(raw, nodata)
            block[~np.broadcast_to(valid[:, None], block.shape)] = np.nan
            if not np.isnan(block).all():
                values = block
                break
    if values is None:
        return  # no valid pixel in the first windows: nothing to compare
    rows: list[tuple[str, float, float]] = []  # band, stack median (unscaled), training median
    for j, band in enumerate(card.bands):
        p = ref.get(str(band))
        v = values[:, j]
        v = v[~np.isnan(v)]
        if not isinstance(p, list | tuple) or len(p) != 3 or not v.size:
            continue
        here, there = float(np.median(v)), float(p[1])
        if here != 0.0 and there != 0.0 and math.isfinite(here) and math.isfinite(there):
            rows.append((str(band), here, there))
    ratios = [abs(here * scale / there) for _b, here, there in rows]
    off = [r > _SCALE_RATIO or r < 1.0 / _SCALE_RATIO for r in ratios]
    if not rows or 2 * sum(off) <= len(rows):
        return
    band, here, there = rows[off.index(True)]
    need = float(np.median([abs(t / h) for (_b, h, t), o in zip(rows, off, strict=True) if o]))
    factor = 10.0 ** round(math.log10(need))  # the power of ten nearest the scale's factor
    scaled = f" × scale={scale:g}" if scale != 1.0 else ""
    raise ParameterError(
        f"{stack.description}: its values are on another scale than the model's training data "
        f"({sum(off)} of {_plural(len(rows), 'band')} off by more than {_SCALE_RATIO:g}×; "
        f"median {band} {here * scale:.4g} in the stack{scaled}, {there:.4g} in training); "
        f"rescale the stack's values (e.g. 0–1 reflectance × 10,000): pass scale={factor:g}"
    )


#: job-key entries an earlier version did not record (its partial maps still resume)
_LATER_KEYS = ("mask_kind", "file_stats", "content")


def _job_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _earlier_same_job(old: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether ``old`` (a job.json) is this job as an earlier version, without the later
    entries of the key, recorded it."""
    job = old.get("job")
    if not isinstance(job, dict) or any(k in job for k in _LATER_KEYS):
        return False
    return _job_hash({k: v for k, v in key.items() if k not in _LATER_KEYS}) == old.get("hash")


def _job_diff(old: dict[str, Any], key: dict[str, Any]) -> str:
    """What differs between an earlier job (job.json) and this one, in words."""
    job = old.get("job")
    if not isinstance(job, dict):
        return "another model, stack or options"
    names = sorted(k for k in {*job, *key} if job.get(k) != key.get(k))
    return "it differs in " + ", ".join(names) if names else "another cropglobe version"


def _drop_cut_line(log: Path) -> None:
    """Truncate a progress log after its last complete line (a kill can cut the last one)."""
    try:
        data = log.read_bytes()
    except OSError:
        return
    if data and not data.endswith(b"\n"):
        with open(log, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


class MapJob:
    """A map being computed: validated inputs, windows, partial output; run, then finish.

    ``MapJob(...)`` checks everything that can be checked before reading pixels (model card,
    bands, dates, block size, output paths, free disk space) and prepares the partial folder.
    :meth:`run` computes the pending windows and yields each window number once it is written
    (drive a progress bar with it); :meth:`finish` assembles the COGs and the sidecar. Stopping
    the iteration early (or a crash) leaves the partial folder for ``resume=True``.

    Args: see :func:`map_raster`.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        stack: Any,
        output: str | os.PathLike[str],
        *,
        probabilities: str | os.PathLike[str] | None = None,
        probability_dtype: ProbDtype = "uint8",
        uncertainty: Uncertainty | None = None,
        uncertainty_path: str | os.PathLike[str] | None = None,
        block_size: int = 512,
        workers: int = 1,
        batch_size: int = 4096,
        engine: Engine = "torch",
        season_year: int | None = None,
        mask: Any = None,
        mask_kind: str = "scl",
        bands: Sequence[str] | None = None,
        resume: bool = False,
        client: Any = None,
        dask_scheduler: str | None = None,
        strip_pixels: int = 8192,
        threads: int | None = None,
        tta: Sequence[float] | None = None,
        scale: float = 1.0,
        applicability: str | os.PathLike[str] | None = None,
        device: str = "cpu",
    ) -> None:
        from cropglobe.models.folder import read_card
        from cropglobe.models.registry import is_neural

        self._t0 = time.perf_counter()
        if block_size < 16 or block_size % 16:
            raise ParameterError(
                f"block_size must be a multiple of 16 (GeoTIFF tiles) >= 16, got {block_size}; "
                "use 256 or 512"
            )
        if workers < 0:
            raise ParameterError(f"workers must be >= 0 (0 or 1: no thread pool), got {workers}")
        if batch_size < 1:
            raise ParameterError(
                f"batch_size must be >= 1 (pixels per model call), got {batch_size}; the "
                "default is 4096"
            )
        if strip_pixels < 1:
            raise ParameterError(
                f"strip_pixels must be >= 1 (pixels read at once inside a window), got "
                f"{strip_pixels}; the default is 8192"
            )
        if probability_dtype not in ("uint8", "float32"):
            raise ParameterError(
                f"probability_dtype must be 'uint8' or 'float32', got {probability_dtype!r}"
            )
        if uncertainty not in (None, "entropy", "margin"):
            raise ParameterError(
                f"uncertainty must be None, 'entropy' or 'margin', got {uncertainty!r}"
            )
        if engine not in ENGINES:
            raise ParameterError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
            raise ParameterError(
                f"scale={scale!r} is not a positive finite factor; give the number the stack's "
                "values are multiplied by (e.g. 10000 for 0–1 reflectance)"
            )
        self.model_dir = Path(model).resolve()
        self.card = read_card(self.model_dir)
        k = len(self.card.classes)
        if k > 255:
            raise ModelError(
                f"{self.model_dir}: {k} classes do not fit a uint8 map (at most 255); merge classes"
            )
        self.stack = _as_stack(stack, mask, mask_kind, bands)
        band_index = self.stack.band_positions(self.card.bands)
        if self.stack.crs is None:
            how = (
                "build the stack with stack_from_xarray(data, crs='EPSG:…') (or set a "
                "spatial_ref / rio CRS on the data) and map that"
                if self.stack.array is not None
                else "assign one to the files (gdal_edit.py -a_srs EPSG:…)"
            )
            logger.warning(
                "%s: the stack has no CRS, so the map will have none (its sidecar records "
                '"crs": null); to georeference it, %s',
                self.stack.description,
                how,
            )
        date_index, dos, self.season = _choose_season(self.stack, self.card, season_year)
        self.output = Path(output).resolve()
        self.probabilities = None if probabilities is None else Path(probabilities).resolve()
        self.uncertainty = uncertainty
        self.uncertainty_path: Path | None = None
        if uncertainty is not None:
            self.uncertainty_path = (
                Path(uncertainty_path).resolve()
                if uncertainty_path is not None
                else self.output.with_name(f"{self.output.stem}.uncertainty{self.output.suffix}")
            )
        self.sidecar = self.output.with_suffix(".json")
        self.applicability = None if applicability is None else Path(applicability).resolve()
        if self.applicability is not None:
            from cropglobe.evaluate.applicability import REFERENCE_FILE, TrainingReference

            if TrainingReference.load(self.model_dir) is None:
                raise ParameterError(
                    f"{self.model_dir}: holds no training reference ({REFERENCE_FILE}), so the "
                    "distance from the training data cannot be mapped; train the model again "
                    "with this cropglobe (cropglobe train), or leave out --applicability"
                )
        outs = [
            p
            for p in (self.output, self.probabilities, self.uncertainty_path, self.applicability)
            if p
        ]
        if len(set(outs)) != len(outs) or self.sidecar in outs:
            raise ParameterError(
                f"output paths must differ: map {self.output}, probabilities "
                f"{self.probabilities}, uncertainty {self.uncertainty_path}, applicability "
                f"{self.applicability}, sidecar {self.sidecar} (the map's name with .json)"
            )
        inputs = {Path(f).resolve() for f in self.stack.files}
        for p in [*outs, self.sidecar]:
            if p in inputs:
                raise ParameterError(
                    f"{p}: is one of the stack's input files; write the map elsewhere (-o)"
                )
        for p in outs:
            if p.suffix.lower() not in (".tif", ".tiff"):
                raise ParameterError(f"{p}: output must be a .tif (Cloud-Optimized GeoTIFF)")
            if p.is_dir():
                raise ParameterError(f"{p}: is a folder; give a .tif file path")
            p.parent.mkdir(parents=True, exist_ok=True)
        self.block_size = int(block_size)
        self.windows = _windows(self.stack.height, self.stack.width, self.block_size)
        self.partial = self.output.with_name(f".{self.output.name}.partial")
        self.workers = int(workers)
        self.client = client
        self.dask_scheduler = dask_scheduler
        self.probability_dtype = probability_dtype
        if engine != "torch" and not is_neural(self.card.model):
            raise ParameterError(
                f"engine {engine!r} runs neural models; {self.model_dir} holds a "
                f"{self.card.model!r} model — use engine='torch' (--engine torch)"
            )
        self._engine = engine
        self.device = _map_device(device, engine, is_neural(self.card.model))
        self.tta = _check_tta(tta, self.card, self.model_dir)
        self.scale = float(scale)
        _check_scale(self.stack, self.card, self.windows, date_index, band_index, self.scale)
        job_key = {
            "format": _FORMAT,
            "model": str(self.model_dir),
            "card_created": self.card.created,
            "card_fingerprint": self.card.data_fingerprint,
            "stack": self.stack.files or [self.stack.description],
            "shape": list(self.stack.shape),
            "dates": [str(self.stack.dates[i]) for i in date_index],
            "bands": list(self.card.bands),
            "block_size": self.block_size,
            "probabilities": self.probabilities is not None,
            "probability_dtype": probability_dtype,
            "uncertainty": uncertainty,
            "engine": engine,
            "strip_pixels": int(strip_pixels),
            **({"tta": list(self.tta)} if self.tta else {}),  # absent: older jobs still resume
            **({"scale": self.scale} if self.scale != 1.0 else {}),
            **({"applicability": True} if self.applicability else {}),
            "mask_kind": self.stack.mask_kind
            if self.stack.mask_sources or self.stack.mask_array is not None
            else None,
            # a file replaced between attempts (re-downloaded, re-processed) is another job.
            # The files are those the map reads (stack.files: its bands' and masks' sources).
            # A file holding only a band some dates lack (RasterStack.incomplete_bands) is
            # left out on purpose: the stack leaves that band out, so no map reads it (a model
            # needing it is refused) and replacing it cannot change the map; a replacement
            # the stack does read (one now holding a mask, or completing its band) is in the
            # key of the attempt that reads it, which then differs.
            "file_stats": [_file_stat(f) for f in self.stack.files],
        }
        if self.stack.array is not None:  # no files: two arrays of one shape and dates differ
            job_key["content"] = _array_fingerprint(self.stack, date_index, band_index)
        self.job_hash = _job_hash(job_key)
        # one writer per output: a second map to it would delete this one's partial folder
        self._lock_dir = self.output.with_name(f".{self.output.name}.lock")
        self._held: contextlib.ExitStack | None = None
        # connect before the partial folder exists: an unreachable scheduler leaves nothing
        self._own_client: Any = None
        if self.client is None and dask_scheduler is not None:
            self._own_client = self.client = _connect_dask(dask_scheduler)
        try:
            self._acquire()
        except BaseException:
            self._close_client()
            raise
        try:
            self.resumed = self._prepare_partial(resume, job_key)
        except BaseException:
            self.close()
            raise
        try:
            self.job = _Job(
                stack=self.stack,
                model_dir=str(self.model_dir),
                engine=engine,
                onnx_path=None,
                date_index=tuple(date_index),
                dos=tuple(dos),
                band_index=tuple(band_index),
                windows=tuple(self.windows),
                prob_dtype=probability_dtype,
                write_probs=self.probabilities is not None,
                uncertainty=uncertainty,
                batch_size=int(batch_size),
                strip_pixels=int(strip_pixels),
                threads=threads,
                model_stamp=_folder_stamp(self.model_dir),
                tta=self.tta,
                scale=self.scale,
                applicability=self.applicability is not None,
                device=self.device,
            )
            if engine != "torch":
                self.job = dataclasses.replace(self.job, onnx_path=str(self._onnx_file(engine)))
            else:  # a damaged model folder fails here, before any window is started
                _predictor(self.job)
            self.pending = [i for i in range(len(self.windows)) if i not in self.done]
            self.seconds = {"read": 0.0, "composite": 0.0, "model": 0.0, "write": 0.0}
            self.n_valid = 0
        except BaseException:
            self.discard_if_empty()
            self.close()
            raise

    # ------------------------------------------------------------------ partial folder
    def _acquire(self) -> None:
        """Hold the output's lock folder (``.map.tif.lock``) until :meth:`close`."""
        held = contextlib.ExitStack()
        try:
            # not nested: a second MapJob of this thread is another writer (it would delete
            # this one's partial folder), not a step of this one
            held.enter_context(folder_lock(self._lock_dir, "map", nested=False))
        except CropGlobeError as exc:
            pid = re.search(r"\(pid ([^)]*)\)", str(exc))
            holder, wait = (f" (pid {pid.group(1)})" if pid else ""), "wait for it to finish"
            if pid and pid.group(1) == str(os.getpid()):  # this process: another thread or this
                holder = f" (pid {pid.group(1)}: another MapJob of this process)"
                wait = "finish() and close() that job first"
            raise ParameterError(
                f"{self.output}: another map is being written to it{holder}; {wait}, or write "
                "this map elsewhere (-o)"
            ) from None
        except OSError as exc:
            raise MapWriteError(_os_message(exc, self.output.parent)) from None
        self._held = held

    def _release(self) -> None:
        held, self._held = getattr(self, "_held", None), None
        if held is not None:
            held.close()
            with contextlib.suppress(OSError):  # left by a killed run; another may hold it now
                self._lock_dir.rmdir()

    def _prepare_partial(self, resume: bool, job_key: dict[str, Any]) -> int:
        p = self.partial
        meta = p / "job.json"
        self.done: set[int] = set()
        if p.exists() and resume and meta.is_file():
            try:
                old = json.loads(meta.read_text())
            except (ValueError, OSError):
                old = {}
            if not isinstance(old, dict) or "hash" not in old:
                logger.warning("%s: no usable progress file; starting afresh", p)
                shutil.rmtree(p)
            elif old.get("hash") == self.job_hash or _earlier_same_job(old, job_key):
                if old.get("hash") != self.job_hash:
                    logger.warning(
                        "%s: resuming a partial map of an earlier cropglobe version; its mask "
                        "kind and stack files' sizes and times were not recorded, so they are "
                        "assumed unchanged",
                        p,
                    )
                    with atomic_path(meta) as tmp:
                        tmp.write_text(
                            json.dumps({"hash": self.job_hash, "job": job_key}, indent=1)
                        )
                self.done = self._read_log()
                _drop_cut_line(p / "done.log")  # what follows must start on a line of its own
                logger.info(
                    "resuming %s: %s already done",
                    self.output,
                    _part(len(self.done), len(self.windows), "window", ("is", "are")),
                )
            else:
                raise ParameterError(
                    f"{p}: the partial output belongs to another map job ({_job_diff(old, job_key)}"
                    "); rerun with that job's inputs to resume it, or without --resume to start "
                    "afresh (its progress is then discarded)"
                )
        elif p.exists():
            if resume:
                logger.warning("%s: no usable progress file; starting afresh", p)
            shutil.rmtree(p)
        p.mkdir(parents=True, exist_ok=True)
        k = len(self.card.classes)
        bs = self.block_size
        pd = np.uint8 if self.probability_dtype == "uint8" else np.float32
        need = (
            len(self.windows)
            * bs
            * bs
            * (
                1
                + (k * np.dtype(pd).itemsize if self.probabilities else 0)
                + (np.dtype(pd).itemsize if self.uncertainty else 0)
                + (4 if self.applicability else 0)
            )
        )
        free = _free_bytes(p)
        if not self.done and free < 2.2 * need:  # partial blocks + assembled COGs
            shutil.rmtree(p, ignore_errors=True)
            raise MapWriteError(
                f"{self.output.parent}: {free / 1e9:.2f} GB free, the map needs about "
                f"{2.2 * need / 1e9:.2f} GB while it is written; free some space or write "
                "elsewhere"
            )
        n = len(self.windows)
        try:
            self.blocks = {"classes": _BlockFile(p / "classes.blk", n, 1, bs, np.uint8)}
            if self.probabilities:
                self.blocks["probs"] = _BlockFile(p / "probs.blk", n, k, bs, pd)
            if self.uncertainty:
                self.blocks["unc"] = _BlockFile(p / "unc.blk", n, 1, bs, pd)
            if self.applicability:
                self.blocks["dis"] = _BlockFile(p / "dis.blk", n, 1, bs, np.float32)
            if not self.done:
                with atomic_path(meta) as tmp:
                    tmp.write_text(json.dumps({"hash": self.job_hash, "job": job_key}, indent=1))
                (p / "done.log").write_text("")
            self._log = open(p / "done.log", "a")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise MapWriteError(_os_message(exc, p)) from None
        return len(self.done)

    def _read_log(self) -> set[int]:
        path = self.partial / "done.log"
        if not path.is_file():
            return set()
        text = path.read_text()
        lines = text.split("\n")
        if not text.endswith("\n"):
            lines = lines[:-1]  # a line cut by a kill is not trusted
        done = set()
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                i = int(parts[0])
                if 0 <= i < len(self.windows):
                    done.add(i)
        return done

    def _onnx_file(self, engine: str) -> Path:
        from cropglobe.export import ONNX_FILE, export_onnx

        src = self.model_dir / ONNX_FILE
        if not src.is_file():
            model, card = _load_torch(self.model_dir)
            src = self.partial / ONNX_FILE
            if not src.is_file():
                export_onnx(
                    model,
                    src,
                    n_bands=int(card.params["n_bands"]),
                    n_steps=int(card.params["n_steps"]),
                )
        if engine == "onnx":
            return src
        q = self.partial / "model.int8.onnx"
        if not q.is_file():  # a resumed run reuses the quantized model of the first attempt
            from cropglobe.export import quantize_int8

            with atomic_path(q) as tmp:
                quantize_int8(src, tmp, calibration_inputs(self.job))
        return q

    # ------------------------------------------------------------------ running
    def _commit(self, res: WindowResult) -> None:
        t0 = time.perf_counter()
        try:
            self.blocks["classes"].write(res.index, res.classes[None])
            if res.probs is not None and "probs" in self.blocks:
                self.blocks["probs"].write(res.index, res.probs)
            if res.uncertainty is not None and "unc" in self.blocks:
                self.blocks["unc"].write(res.index, res.uncertainty[None])
            if res.dissimilarity is not None and "dis" in self.blocks:
                self.blocks["dis"].write(res.index, res.dissimilarity[None])
            self._log.write(f"{res.index} {res.n_valid}\n")
            self._log.flush()
        except OSError as exc:
            raise MapWriteError(_os_message(exc, self.partial)) from None
        for key, val in res.seconds.items():
            self.seconds[key] = self.seconds.get(key, 0.0) + val
        self.seconds["write"] += time.perf_counter() - t0
        self.done.add(res.index)

    def run(self) -> Iterator[int]:
        """Compute and write the pending windows; yield each window number once written."""
        todo = [i for i in self.pending if i not in self.done]
        if not todo:
            return
        if self.client is not None or self.dask_scheduler is not None:
            yield from self._run_dask(todo)
        elif self.workers <= 1:
            for i in todo:
                self._commit(compute_window(self.job, i))
                yield i
        else:
            yield from self._run_threads(todo)

    def _run_threads(self, todo: list[int]) -> Iterator[int]:
        it = iter(todo)
        in_flight = self.workers + 1  # one window queued ahead keeps every worker busy
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cropglobe-map")
        futures: set[Future[WindowResult]] = set()
        try:
            for i in itertools.islice(it, in_flight):
                futures.add(pool.submit(compute_window, self.job, i))
            while futures:
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: f.result().index):
                    res = fut.result()
                    self._commit(res)
                    nxt = next(it, None)
                    if nxt is not None:
                        futures.add(pool.submit(compute_window, self.job, nxt))
                    yield res.index
        finally:
            for fut in futures:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_dask(self, todo: list[int]) -> Iterator[int]:
        try:
            from distributed import as_completed
        except ImportError:
            raise ParameterError(
                "Dask mapping needs the package 'distributed'; pip install 'dask[distributed]'"
            ) from None
        client = self.client
        if client is None:  # connected in __init__ unless closed since
            raise ParameterError(
                f"the Dask client of this map job is closed; create a new MapJob to map on "
                f"{self.dask_scheduler!r}"
            )
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        job_f = client.scatter(self.job, broadcast=True)
        it = iter(todo)
        first = [
            client.submit(compute_window, job_f, i, pure=False)
            for i in itertools.islice(it, 2 * n_workers)
        ]
        ac = as_completed(first)
        for fut in ac:
            res = fut.result()
            fut.release()
            self._commit(res)
            nxt = next(it, None)
            if nxt is not None:
                ac.add(client.submit(compute_window, job_f, nxt, pure=False))
            yield res.index

    def _close_files(self) -> None:
        for b in getattr(self, "blocks", {}).values():
            b.close()
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()

    def _close_client(self) -> None:
        own, self._own_client = getattr(self, "_own_client", None), None
        if own is not None:
            self.client = None
            with contextlib.suppress(Exception):  # a scheduler gone away: nothing to close
                own.close()

    def close(self) -> None:
        """Close the partial files, the Dask client this job connected (``dask_scheduler``)
        and release the output's lock (the partial folder stays for ``resume``)."""
        self._close_files()
        self._close_client()
        self._release()

    def discard_if_empty(self) -> None:
        """Remove the partial folder when it holds no finished window (nothing to resume)."""
        if not self.done and self.partial.is_dir() and getattr(self, "_held", None) is not None:
            self._close_files()
            shutil.rmtree(self.partial, ignore_errors=True)

    # ------------------------------------------------------------------ finishing
    def finish(self) -> MapResult:
        """Assemble the COGs and the sidecar from the partial output, then remove it.

        Raises:
            ParameterError: windows are still missing (the run was interrupted).
            MapWriteError: the disk filled up or the folder is not writable.
        """
        missing = len(self.windows) - len(self.done)
        if missing:
            raise ParameterError(
                f"{self.output}: "
                f"{_part(missing, len(self.windows), 'window', ('is', 'are'))} not computed yet; "
                "run() them first (or map again with resume=True, --resume)"
            )
        t0 = time.perf_counter()
        n_valid = self._count_valid()
        outputs: list[tuple[Path, Path]] = []
        try:
            # the class map is renamed last of the maps, the sidecar after it
            outputs = sorted(self._assemble(), key=lambda pair: pair[1] == self.output)
            self.seconds["assemble"] = time.perf_counter() - t0
            self.seconds["total"] = time.perf_counter() - self._t0
            result = MapResult(
                output=self.output,
                probabilities=self.probabilities,
                uncertainty=self.uncertainty_path,
                sidecar=self.sidecar,
                n_windows=len(self.windows),
                n_pixels=self.stack.height * self.stack.width,
                n_valid=n_valid,
                seconds=dict(self.seconds),
                resumed_windows=self.resumed,
                applicability=self.applicability,
                outside_share=self._outside_share(),
            )
            sidecar = self._sidecar(result)
            # rename into place only once everything is written: maps first, sidecar last
            for tmp, final in outputs:
                os.replace(tmp, final)
            with atomic_path(self.sidecar) as tmp:
                tmp.write_text(json.dumps(sidecar, indent=2, default=str))
        except MapWriteError:
            raise  # _assemble's own message (an OSError too): not wrapped a second time
        except OSError as exc:
            raise MapWriteError(_os_message(exc, self.output.parent)) from None
        finally:
            self._close_files()
            for tmp, _final in outputs:  # those not renamed into place (a failure above)
                tmp.unlink(missing_ok=True)
        shutil.rmtree(self.partial, ignore_errors=True)
        self.close()  # the lock last: the partial folder is gone before another map may start
        logger.info(
            "wrote %s (%s, %.1f s)",
            self.output,
            _plural(len(self.windows), "window"),
            self.seconds["total"],
        )
        return result

    def _outside_share(self) -> float | None:
        """Share of the mapped pixels whose dissimilarity exceeds 1 (None: not mapped)."""
        if "dis" not in self.blocks:
            return None
        outside = mapped = 0
        for i, (_r, _c, h, w) in enumerate(self.windows):
            d = self.blocks["dis"].read(i, h, w)
            seen = ~np.isnan(d)
            mapped += int(seen.sum())
            outside += int((d[seen] > 1.0).sum())
        return outside / mapped if mapped else 0.0

    def _count_valid(self) -> int:
        # a window re-run after an interruption may be logged twice: count it once
        seen: dict[int, int] = {}
        for line in (self.partial / "done.log").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                seen[int(parts[0])] = int(parts[1])
        return sum(seen.values())

    def _assemble(self) -> list[tuple[Path, Path]]:
        """Write each output as a tiled GeoTIFF, then copy it to a COG beside the target."""
        import rasterio
        import rasterio.shutil
        from rasterio.errors import RasterioError

        from cropglobe.classes import class_colors

        classes = self.card.classes
        k = len(classes)
        made: list[tuple[Path, Path]] = []
        names_json = json.dumps(list(classes))
        common_tags = {
            "CROPGLOBE_MODEL": self.card.model,
            "CROPGLOBE_CLASSES": names_json,
            "CROPGLOBE_SEASON": str(self.season),
        }
        pd_nodata: float = 255 if self.probability_dtype == "uint8" else float("nan")
        specs: list[dict[str, Any]] = [
            {
                "key": "classes",
                "target": self.output,
                "count": 1,
                "dtype": "uint8",
                "nodata": NODATA_CLASS,
                "resampling": "NEAREST",
                "descriptions": ["class"],
                "tags": {**common_tags, **{f"CLASS_{i}": c for i, c in enumerate(classes)}},
            },
        ]
        if self.probabilities is not None:
            specs.append(
                {
                    "key": "probs",
                    "target": self.probabilities,
                    "count": k,
                    "dtype": self.probability_dtype,
                    "nodata": pd_nodata,
                    "resampling": "AVERAGE",
                    "descriptions": [f"p({c})" for c in classes],
                    "tags": {**common_tags, "CROPGLOBE_ENCODING": self._encoding_text()},
                }
            )
        if self.uncertainty_path is not None:
            specs.append(
                {
                    "key": "unc",
                    "target": self.uncertainty_path,
                    "count": 1,
                    "dtype": self.probability_dtype,
                    "nodata": pd_nodata,
                    "resampling": "AVERAGE",
                    "descriptions": [str(self.uncertainty)],
                    "tags": {
                        **common_tags,
                        "CROPGLOBE_UNCERTAINTY": str(self.uncertainty),
                        "CROPGLOBE_ENCODING": self._encoding_text(),
                    },
                }
            )
        if self.applicability is not None:
            specs.append(
                {
                    "key": "dis",
                    "target": self.applicability,
                    "count": 1,
                    "dtype": "float32",
                    "nodata": float("nan"),
                    "resampling": "AVERAGE",
                    "descriptions": ["dissimilarity"],
                    "tags": {
                        **common_tags,
                        "CROPGLOBE_ENCODING": "float32 distance from the training data over the "
                        "limit 95 % of them keep; above 1 = outside their range; NaN = no data",
                    },
                }
            )
        colors = class_colors(classes)
        bs = self.block_size
        try:
            with (
                rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB, GDAL_NUM_THREADS=1),
                _quiet_small_blocks(),
            ):
                for spec in specs:
                    tiled = self.partial / f"{spec['key']}.tif"
                    profile = {
                        "driver": "GTiff",
                        "width": self.stack.width,
                        "height": self.stack.height,
                        "count": spec["count"],
                        "dtype": spec["dtype"],
                        "crs": self.stack.crs,
                        "transform": self.stack.transform,
                        "nodata": spec["nodata"],
                        "tiled": True,
                        "blockxsize": bs,
                        "blockysize": bs,
                        "interleave": "pixel" if spec["count"] > 1 else "band",
                        "BIGTIFF": "IF_SAFER",
                    }
                    blk = self.blocks[spec["key"]]
                    with rasterio.open(tiled, "w", **profile) as dst:
                        for i, (r0, c0, h, w) in enumerate(self.windows):
                            arr = blk.read(i, h, w)
                            dst.write(arr, window=((r0, r0 + h), (c0, c0 + w)))
                        for b, desc in enumerate(spec["descriptions"], start=1):
                            dst.set_band_description(b, desc)
                        if spec["key"] == "classes":
                            dst.write_colormap(1, _colormap(colors))
                        elif self.probability_dtype == "uint8":
                            dst.scales = [1.0 / _U8_SCALE] * spec["count"]
                        dst.update_tags(**spec["tags"])
                    tmp = _temp_beside(spec["target"])
                    made.append((tmp, spec["target"]))
                    rasterio.shutil.copy(
                        tiled,
                        tmp,
                        driver="COG",
                        BLOCKSIZE=bs,
                        COMPRESS="DEFLATE",
                        PREDICTOR="YES" if spec["dtype"] == "float32" else "NO",
                        OVERVIEW_RESAMPLING=spec["resampling"],
                        BIGTIFF="IF_SAFER",
                        NUM_THREADS=1,
                    )
                    tiled.unlink()
        except (RasterioError, OSError) as exc:
            for tmp, _ in made:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise
            raise MapWriteError(
                f"{self.output.parent}: writing the COG failed ({str(exc).splitlines()[0]}); "
                "check free space and permissions, then map again with resume=True (--resume)"
            ) from None
        return made

    def _encoding_text(self) -> str:
        if self.probability_dtype == "uint8":
            return "uint8: value = round(probability * 254); 255 = no data; band scale 1/254"
        return "float32 probability 0..1; NaN = no data"

    def _sidecar(self, result: MapResult) -> dict[str, Any]:
        st = self.stack
        used = [str(st.dates[i]) for i in self.job.date_index]
        return {
            "format": _FORMAT,
            "outputs": {
                "classes": str(result.output),
                "probabilities": str(result.probabilities) if result.probabilities else None,
                "uncertainty": str(result.uncertainty) if result.uncertainty else None,
                "applicability": str(result.applicability) if result.applicability else None,
                "outside_share": result.outside_share,
                "class_nodata": NODATA_CLASS,
                "probability_encoding": self._encoding_text(),
                "uncertainty_kind": self.uncertainty,
            },
            "model": {"folder": str(self.model_dir), **_card_summary(self.card)},
            "inputs": {
                "stack": st.description,
                "n_files": len(st.files),
                "shape": {
                    "dates": st.shape[0],
                    "bands": st.shape[1],
                    "height": st.height,
                    "width": st.width,
                },
                "bands": list(st.bands),
                "dates": [str(d) for d in st.dates],
                "dates_used": used,
                "season": self.season,
                "crs": None if st.crs is None else str(st.crs),
                "transform": list(st.transform)[:6] if st.transform is not None else None,
                "mask": bool(st.mask_sources and any(st.mask_sources)) or st.mask_array is not None,
            },
            "options": {
                "block_size": self.block_size,
                "workers": self.workers,
                "dask": self.client is not None or self.dask_scheduler is not None,
                "engine": self._engine,
                "device": self.device,
                "batch_size": self.job.batch_size,
                "probability_dtype": self.probability_dtype,
                "tta_shifts": list(self.tta),
                "scale": self.scale,
            },
            "n_windows": result.n_windows,
            "n_pixels": result.n_pixels,
            "n_valid": result.n_valid,
            "resumed_windows": result.resumed_windows,
            "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        }


def _map_device(device: str, engine: str, neural: bool) -> str:
    """The device a map's model runs on, as a name (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    ``"auto"`` is the GPU for a neural model on the torch engine and the CPU otherwise; a GPU
    asked for by name with an ONNX engine is refused (onnxruntime runs here on the CPU).
    """
    from cropglobe.models.inputs import resolve_device

    auto = isinstance(device, str) and device.strip().lower() == "auto"
    if engine != "torch" and not auto and resolve_device(device).type != "cpu":
        raise ParameterError(
            f"engine {engine!r} runs on the CPU (onnxruntime), not on {device!r}; use "
            "engine='torch' (--engine torch) to map on the GPU, or device='cpu' (--device cpu)"
        )
    if engine != "torch" or not neural:
        return "cpu"
    return str(resolve_device(device))


def _folder_stamp(folder: Path) -> str:
    """Names, sizes and modification times of a model folder's files (cache key)."""
    items = sorted(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in folder.iterdir()
        if p.is_file()
    )
    return hashlib.sha256("|".join(items).encode()).hexdigest()[:16]


class _SmallBlockFilter(logging.Filter):
    """Drops GDAL's COG-driver complaint that a BLOCKSIZE below 128 is unexpected: the tiles
    do come out at the size asked for (``block_size`` >= 16 is checked by :class:`MapJob`).
    Every other GDAL message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("BLOCKSIZE" in text and "should be >= 128" in text)


_SMALL_BLOCKS = _SmallBlockFilter()
_SMALL_BLOCKS_LOCK = threading.Lock()
_SMALL_BLOCKS_USERS = 0
_GDAL_LOGGER = "rasterio._env"  # where rasterio logs GDAL's CPL warnings and errors


@contextlib.contextmanager
def _quiet_small_blocks() -> Iterator[None]:
    """Silence the BLOCKSIZE < 128 message of GDAL's COG driver for the enclosed writes."""
    global _SMALL_BLOCKS_USERS
    gdal_log = logging.getLogger(_GDAL_LOGGER)
    with _SMALL_BLOCKS_LOCK:  # maps written from several threads share the filter
        _SMALL_BLOCKS_USERS += 1
        gdal_log.addFilter(_SMALL_BLOCKS)
    try:
        yield
    finally:
        with _SMALL_BLOCKS_LOCK:
            _SMALL_BLOCKS_USERS -= 1
            if not _SMALL_BLOCKS_USERS:
                gdal_log.removeFilter(_SMALL_BLOCKS)


def rasterio_env() -> Any:
    """A ``rasterio.Env`` with GDAL's block cache capped (memory stays bounded by the windows)."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB)


def _temp_beside(target: Path) -> Path:
    """A fresh temporary name beside ``target`` (same suffix; the file itself is not created)."""
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    os.unlink(name)
    return Path(name)


#: how long MapJob waits for a Dask scheduler (``dask_scheduler``) to answer
_DASK_CONNECT_TIMEOUT = "20s"


def _connect_dask(address: str) -> Any:
    """A ``distributed.Client`` connected to ``address``; ParameterError when it cannot be."""
    try:
        from distributed import Client
    except ImportError:
        raise ParameterError(
            "Dask mapping needs the package 'distributed'; pip install 'dask[distributed]'"
        ) from None
    try:
        from distributed.comm import get_address_host_port, parse_address

        # a malformed address is refused before a Client exists: a half-built one hangs for
        # its close timeout when it is collected and prints a traceback then
        if parse_address(address)[0] in ("tcp", "tls"):
            get_address_host_port(address)
        # not the process's default scheduler: the job submits to it by name, and a client
        # left open must not take over the user's (or a later) dask.compute
        return Client(address, timeout=_DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: no port
        raise ParameterError(
            f"cannot connect to the Dask scheduler {address!r} ({exc}); "
            "check the address (tcp://host:8786) and that the scheduler runs"
        ) from None


def _load_torch(folder: Path) -> tuple[Any, Any]:
    from cropglobe.models.folder import load_model

    return load_model(folder)


def _colormap(colors: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    cmap: dict[int, tuple[int, int, int, int]] = {}
    for i, hexcol in enumerate(colors):
        h = hexcol.lstrip("#")
        cmap[i] = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)
    cmap[NODATA_CLASS] = (0, 0, 0, 0)
    return cmap


def _os_message(exc: OSError, where: Path) -> str:
    if exc.errno == 28:
        return (
            f"{exc.filename or where}: no space left on device while writing the map; free some "
            "space, then map again with resume=True (--resume)"
        )
    return (
        f"{exc.filename or where}: cannot write the map ({exc.strerror or exc}); choose a "
        "writable location"
    )


def map_raster(
    model: str | os.PathLike[str],
    stack: Any,
    output: str | os.PathLike[str],
    *,
    probabilities: str | os.PathLike[str] | None = None,
    probability_dtype: ProbDtype = "uint8",
    uncertainty: Uncertainty | None = None,
    uncertainty_path: str | os.PathLike[str] | None = None,
    block_size: int = 512,
    workers: int = 1,
    batch_size: int = 4096,
    engine: Engine = "torch",
    season_year: int | None = None,
    mask: Any = None,
    mask_kind: str = "scl",
    bands: Sequence[str] | None = None,
    resume: bool = False,
    client: Any = None,
    dask_scheduler: str | None = None,
    strip_pixels: int = 8192,
    threads: int | None = None,
    tta: Sequence[float] | None = None,
    scale: float = 1.0,
    applicability: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    on_window: Callable[[int, int], Any] | None = None,
) -> MapResult:
    """Map a region: classify every pixel of a raster stack with a trained model folder.

    Args:
        model: a model folder written by :func:`cropglobe.models.save_model`.
        stack: a :class:`~cropglobe.io.raster.RasterStack`, a glob / folder / list of GeoTIFF
            files (:func:`~cropglobe.io.raster.open_stack`), an xarray DataArray (time, band,
            y, x) or Dataset, or a ``.zarr`` path (:func:`~cropglobe.io.raster.
            stack_from_xarray`).
        output: the class-id COG to write (``.tif``); the sidecar is ``output`` with ``.json``.
        probabilities: optional COG of per-class probabilities (K bands, card class order).
        probability_dtype: ``"uint8"`` (× 254, 255 = no data) or ``"float32"`` (NaN = no data).
        uncertainty: ``"entropy"`` (normalised, 0 … 1) or ``"margin"`` (top-1 − top-2) band.
        uncertainty_path: where to write it (default ``<output stem>.uncertainty.tif``).
        block_size: window and COG tile size in pixels (multiple of 16).
        workers: threads computing windows (0 or 1: in the calling thread).
        batch_size: pixels per model call.
        engine: ``"torch"`` (the saved model; also runs classical models), ``"onnx"`` or
            ``"onnx-int8"`` (onnxruntime; int8 = static quantization of the exported model,
            calibrated on 1,024 pixels of this stack: :func:`calibration_inputs`).
        season_year: the season to map (the year it starts); None: the season holding most
            acquisition dates inside the model's grid. Other dates are ignored.
        mask: SCL / validity files (or DataArray) when not inside the stack.
        mask_kind: ``"scl"`` or ``"valid"``.
        bands: band names in file order for GeoTIFF stacks whose bands have no descriptions
            (:func:`~cropglobe.io.raster.open_stack`); not for xarray / Zarr stacks.
        resume: continue an interrupted run of the same job from its partial folder.
        client: a ``dask.distributed.Client``: windows are computed on its workers (they must
            see the model folder and the stack files), written by this process.
        dask_scheduler: a scheduler address (``tcp://host:8786``) to connect a client to.
        strip_pixels: pixels read and composited at once inside a window (bounds memory).
        threads: intra-op threads of the ONNX runtime (None: its default).
        tta: test-time shift averaging (neural models with a window): the probabilities are
            averaged over the model's window moved by each of these days (e.g.
            ``DEFAULT_TTA_SHIFTS``, −20 … +20); costs one model pass per shift.
        scale: factor the stack's values are multiplied by when read (after nodata is masked),
            to bring them to the training data's scale (e.g. 10000 for 0–1 reflectance and a
            model trained on reflectance × 10,000). A stack whose band medians differ from the
            card's recorded training medians (``features["value_percentiles"]``) by more than
            20× for most bands is refused with the factor to pass.
        applicability: also write each pixel's dissimilarity from the training data to this
            COG (float32, NaN = no data; above 1 = outside their range: the model's area of
            applicability, :mod:`cropglobe.evaluate.applicability`); needs a model folder with
            a training reference (written by ``cropglobe train``).
        device: torch device of a neural model with the ``"torch"`` engine: ``"cpu"``,
            ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (the GPU when there is one). Windows are
            still read and composited on the CPU (``workers`` threads) and fed to the one
            model on the device. Classical models run on the CPU whatever it says; the ONNX
            engines run on the CPU and refuse a GPU device. A map can be resumed on another
            device (the probabilities agree to about 2e-4, cuDNN's TF32 convolutions, not bit
            for bit).
        on_window: called as ``on_window(done, total)`` after each window is written.

    Returns:
        the :class:`MapResult`.

    Raises:
        BandError: the stack lacks bands the model needs.
        GridError: no acquisition date falls in the model's season window.
        DataFormatError: files differ in CRS / transform / shape, or a tile is unreadable.
        MapWriteError: disk full or unwritable output folder (resume afterwards).
        ParameterError, ModelError: bad arguments or model folder.
    """
    job = MapJob(
        model,
        stack,
        output,
        probabilities=probabilities,
        probability_dtype=probability_dtype,
        uncertainty=uncertainty,
        uncertainty_path=uncertainty_path,
        block_size=block_size,
        workers=workers,
        batch_size=batch_size,
        engine=engine,
        season_year=season_year,
        mask=mask,
        mask_kind=mask_kind,
        bands=bands,
        resume=resume,
        client=client,
        dask_scheduler=dask_scheduler,
        strip_pixels=strip_pixels,
        threads=threads,
        tta=tta,
        scale=scale,
        applicability=applicability,
        device=device,
    )
    try:
        total = len(job.windows)
        for _ in job.run():
            if on_window is not None:
                on_window(len(job.done), total)
        return job.finish()
    except BaseException:
        job.discard_if_empty()  # e.g. an unreachable scheduler: no empty folder left behind
        raise
    finally:
        job.close()
