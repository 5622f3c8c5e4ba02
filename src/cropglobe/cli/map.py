"""``cropglobe map MODEL_DIR --stack 'tiles/*.tif' -o map.tif``: a crop map from a raster stack."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from cropglobe.cli._common import PathArg, device_option, handle_errors, progress, quiet_option
from cropglobe.errors import BandError, ParameterError


def _band_list(text: str | None) -> list[str] | None:
    """``--bands B02,B03,…`` as a list of names (None when not given)."""
    if text is None:
        return None
    names = [b.strip() for b in text.split(",")]
    if not all(names):
        raise ParameterError(
            f"--bands {text!r} has an empty name; give the band names of the files in file "
            "order, separated by commas (e.g. --bands B02,B03,B04,B08)"
        )
    return names


#: library wording -> command-line wording (the library names parameters, the CLI its flags)
_CLI_WORDS = (
    ("pass bands=[…]", "pass --bands B02,B03,…"),
    ("but bands= names", "but --bands names"),
    ("bands= names the bands", "--bands names the bands"),
    ("leave bands out", "leave --bands out"),
    ("scale=", "--scale "),
)


def _cli_words(message: str) -> str:
    """A library message reworded for the command line (``bands=`` is ``--bands`` here)."""
    for lib, cli in _CLI_WORDS:
        message = message.replace(lib, cli)
    return message


def _default_workers(model_dir: Path, device: str, engine: str) -> int:
    """2 threads; for a network on a GPU one per CPU core but one (at most 16), since there
    the CPU threads reading and compositing windows are what limit the map's speed."""
    import os

    from cropglobe.errors import CropGlobeError
    from cropglobe.mapping import _map_device
    from cropglobe.models.folder import read_card
    from cropglobe.models.registry import is_neural

    try:
        on = _map_device(device, engine, is_neural(read_card(model_dir).model))
    except CropGlobeError:  # a bad folder or device: MapJob says what is wrong
        return 2
    return max(2, min(16, (os.cpu_count() or 2) - 1)) if on != "cpu" else 2


@click.command("map")
@click.argument("model_dir", type=PathArg(path_type=Path))
@click.option(
    "--stack",
    "stack",
    required=True,
    help="GeoTIFF/COG files: a quoted glob ('tiles/*.tif'), a folder, or a .zarr store.",
)
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    required=True,
    help="Class-id Cloud-Optimized GeoTIFF to write (uint8, 255 = no data).",
)
@click.option(
    "--probabilities",
    type=PathArg(path_type=Path),
    default=None,
    help="Also write per-class probabilities to this COG.",
)
@click.option(
    "--probability-dtype",
    type=click.Choice(["uint8", "float32"]),
    default="uint8",
    show_default=True,
    help="uint8: probability × 254 (255 = no data); float32: 0–1, NaN.",
)
@click.option(
    "--uncertainty",
    type=click.Choice(["entropy", "margin"]),
    default=None,
    help="Also write an uncertainty band (<output>.uncertainty.tif).",
)
@click.option(
    "--applicability",
    type=PathArg(path_type=Path),
    default=None,
    help="Also write each pixel's distance from the training data to this COG (above 1: "
    "outside their range, where the map is not to be trusted).",
)
@click.option(
    "--scl",
    default=None,
    help="SCL (or validity, see --mask-kind) files, one per date: a quoted glob or folder.",
)
@click.option(
    "--mask-kind",
    type=click.Choice(["scl", "valid"]),
    default="scl",
    show_default=True,
    help="scl: Sentinel-2 scene classes (clouds, shadows masked); valid: non-zero = valid.",
)
@click.option(
    "--bands",
    default=None,
    help="Band names of the stack files in file order (B02,B03,…), for files whose bands have "
    "no descriptions.",
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    metavar="FACTOR",
    help="Multiply the stack's values by FACTOR when reading, to match the training data's "
    "scale (e.g. 10000 for 0–1 reflectance and a model trained on reflectance × 10,000).",
)
@click.option(
    "--block-size",
    type=int,
    default=512,
    show_default=True,
    help="Window and COG tile size in pixels (multiple of 16).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Threads computing windows (1: none besides the main one) [default: 2; for a network "
    "on a GPU one per CPU core but one, up to 16: they composite, the GPU classifies].",
)
@click.option(
    "--batch-size", type=int, default=4096, show_default=True, help="Pixels per model call."
)
@click.option(
    "--engine",
    type=click.Choice(["torch", "onnx", "onnx-int8"]),
    default="torch",
    show_default=True,
    help="Inference engine for neural models (onnx needs onnxruntime); onnx-int8 quantizes "
    "the model, calibrated on the stack's own pixels (about 4x faster for CropNet).",
)
@device_option()
@click.option("--season-year", type=int, default=None, help="Season to map (the year it starts).")
@click.option(
    "--dask-scheduler",
    default=None,
    help="Compute windows on a Dask cluster (tcp://host:8786); this process writes.",
)
@click.option(
    "--tta",
    is_flag=True,
    help="Test-time shift averaging: average the probabilities over the model's window moved "
    "by --tta-shifts days (neural models trained on a window; one model pass per shift).",
)
@click.option(
    "--tta-shifts",
    default=None,
    help="Window shifts in days averaged by --tta (implies --tta) [default: -20,-10,0,10,20].",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same map.")
@quiet_option
@handle_errors
def command(
    model_dir: Path,
    stack: str,
    output: Path,
    probabilities: Path | None,
    probability_dtype: str,
    uncertainty: str | None,
    applicability: Path | None,
    scl: str | None,
    mask_kind: str,
    bands: str | None,
    scale: float,
    block_size: int,
    workers: int | None,
    batch_size: int,
    engine: str,
    device: str,
    season_year: int | None,
    dask_scheduler: str | None,
    tta: bool,
    tta_shifts: str | None,
    resume: bool,
) -> None:
    """Map a region: classify every pixel of a raster stack with the model in MODEL_DIR."""
    from cropglobe.evaluate.transfer import DEFAULT_SHIFTS, parse_shifts
    from cropglobe.mapping import MapJob, _part, _plural

    if click.get_current_context().get_parameter_source("device") == ParameterSource.DEFAULT:
        device = "auto"  # the GPU for a neural model on the torch engine, else the CPU
    if workers is None:
        workers = _default_workers(model_dir, device, engine)
    if workers < 1:
        raise ParameterError(
            f"--workers must be at least 1 (threads computing windows), got {workers}; use "
            "--workers 1 to map in this process's own thread"
        )
    if batch_size < 1:
        raise ParameterError(
            f"--batch-size must be at least 1 (pixels per model call), got {batch_size}; the "
            "default is 4096"
        )
    shifts = parse_shifts(tta_shifts or DEFAULT_SHIFTS) if tta or tta_shifts else None

    try:
        job = MapJob(
            model_dir,
            stack,
            output,
            probabilities=probabilities,
            probability_dtype=probability_dtype,  # type: ignore[arg-type]
            uncertainty=uncertainty,  # type: ignore[arg-type]
            mask=scl,
            mask_kind=mask_kind,
            bands=_band_list(bands),
            block_size=block_size,
            workers=workers,
            batch_size=batch_size,
            engine=engine,  # type: ignore[arg-type]
            season_year=season_year,
            dask_scheduler=dask_scheduler,
            resume=resume,
            tta=shifts,
            scale=scale,
            applicability=applicability,
            device=device,
        )
    except (BandError, ParameterError) as exc:
        raise type(exc)(_cli_words(str(exc))) from None
    try:
        for _ in progress(job.run(), "mapping windows", total=len(job.pending)):
            pass
        res = job.finish()
    except BaseException:
        job.discard_if_empty()  # nothing finished: no partial folder to resume is left behind
        raise
    finally:
        job.close()
    on = "" if job.device == "cpu" else f" on {job.device}"
    click.echo(
        f"wrote {res.output} ({_part(res.n_valid, res.n_pixels, 'pixel')} mapped, "
        f"{_plural(res.n_windows, 'window')}, {res.seconds.get('total', 0.0):.1f} s{on})",
        err=True,
    )
    if res.applicability is not None and res.outside_share is not None:
        from cropglobe.evaluate.applicability import LEVEL

        click.echo(
            f"{100 * res.outside_share:.1f} % of the mapped pixels lie outside the training "
            f"data's range (about {100 * (1 - LEVEL):.0f} % in data like them): "
            f"{res.applicability}",
            err=True,
        )
