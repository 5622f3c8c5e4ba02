"""``cropglobe composite INPUT -o OUT.npz``: irregular observations -> series on a time grid."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from cropglobe.cli._common import (
    PathArg,
    handle_errors,
    progress,
    quiet_option,
    read_option,
    read_options_arg,
)
from cropglobe.errors import ParameterError

GRIDS = ("5-day", "dekad", "monthly", "16-day")


def _parse_window(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        start_s, end_s = text.split("-")
        start, end = int(start_s), int(end_s)
    except ValueError:
        raise click.BadParameter(
            f"expected START-END days of season such as 121-334, got {text!r}",
            param_hint="--window",
        ) from None
    if not 1 <= start <= end <= 365:
        raise click.BadParameter(
            f"need 1 <= START <= END <= 365, got {text!r}", param_hint="--window"
        )
    return start, end


def _parse_gap(text: str) -> int | Literal["auto"] | None:
    if text.lower() == "auto":
        return "auto"
    if text.lower() in ("none", "inf", "any"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise click.BadParameter(
            f"expected a number of days >= 0, 'auto' or 'none', got {text!r}",
            param_hint="--max-gap",
        )
    return value


@click.command("composite")
@click.argument("input_path", metavar="INPUT", type=PathArg(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    required=True,
    help="SeriesSet .npz to write.",
)
@click.option(
    "--grid",
    "grid_name",
    type=click.Choice(GRIDS),
    default="5-day",
    show_default=True,
    help="Time grid: 5-day (CropGlobe, 73 bins), dekad, monthly or 16-day (MODIS).",
)
@click.option(
    "--anchor",
    default="01-01",
    show_default=True,
    help="First day of the season, MM-DD (07-01 for a July–June southern season: with a year "
    "column of label year 2023 it composites July 2022 – June 2023).",
)
@click.option("--window", default=None, help="Keep only days of season START-END, e.g. 121-334.")
@click.option(
    "--max-gap",
    default="auto",
    show_default=True,
    help="Longest gap (days) bridged by linear gap filling; 'none' bridges all; 'auto': 30, "
    "or one missing step on grids coarser than 15 days (62 days on the monthly grid).",
)
@click.option("--fill/--no-fill", default=True, show_default=True, help="Fill gaps linearly.")
@click.option(
    "--season-year",
    type=click.IntRange(1950, 2200),
    default=None,
    help="Season to composite, named by the year it STARTS (2022 = July 2022 – June 2023 with "
    "--anchor 07-01); default: the samples' year column, read as the label (harvest) year, "
    "i.e. the season that ENDS in it, else the season holding most observations.",
)
@click.option(
    "--mask",
    type=click.Choice(["auto", "none", "valid", "scl"]),
    default="auto",
    show_default=True,
    help="Cloud masking by the 'valid' and/or 'SCL' columns.",
)
@click.option("--allow-empty", is_flag=True, help="Keep samples without any valid observation.")
@click.option(
    "--format", "fmt", default="auto", show_default=True, help="Input format for the reader."
)
@read_option
@quiet_option
@handle_errors
def command(
    input_path: Path,
    output: Path,
    grid_name: str,
    anchor: str,
    window: str | None,
    max_gap: str,
    fill: bool,
    season_year: int | None,
    mask: str,
    allow_empty: bool,
    fmt: str,
    read_option: tuple[str, ...],
) -> None:
    """Composite the observations in INPUT (long table: CSV, Parquet, GeoParquet …) to a grid.

    Writes a SeriesSet .npz: the NaN-aware median of each band in each bin, cloud-masked,
    optionally gap-filled and cut to a window of days.

    A sample's `year` column is its label (harvest) year: with --anchor 07-01, label year 2023
    is the season July 2022 – June 2023. --season-year names a season by the year it starts.
    """
    from cropglobe.composite import composite, select_window
    from cropglobe.io import read_observations
    from cropglobe.series import TimeGrid

    if output.suffix.lower() != ".npz":
        raise ParameterError(
            f"output {output} must be a .npz file (a SeriesSet); e.g. -o series.npz"
        )
    if output.resolve() == input_path.resolve():
        raise ParameterError(f"output {output} is the input file; write the series elsewhere (-o)")
    win = _parse_window(window)
    gap = _parse_gap(max_gap)
    grids = {
        "5-day": lambda: TimeGrid.cropglobe(anchor),
        "dekad": lambda: TimeGrid.dekads(anchor),
        "monthly": lambda: TimeGrid.monthly(anchor),
        "16-day": lambda: TimeGrid.regular(16, 1, 365, anchor),
    }
    grid = grids[grid_name]()
    read_options = read_options_arg(read_option)
    result = None
    obs = None
    for stage in progress(["read", "composite", "write"], "compositing"):
        if stage == "read":
            obs = read_observations(input_path, **{"format": fmt, **read_options})
        elif stage == "composite" and obs is not None:
            result = composite(
                obs,
                grid,
                season_year=season_year,
                mask=mask,  # type: ignore[arg-type]
                fill=fill,
                max_gap_days=gap,
                allow_empty=allow_empty,
            )
            if win is not None:
                result = select_window(result, *win)
        elif stage == "write" and result is not None:
            result.save(output)
    if result is not None:
        click.echo(
            f"wrote {output}: {result.n_samples} samples × {result.n_bands} bands × "
            f"{result.n_steps} steps ({result.grid}), "
            f"{100 * result.missing_fraction():.1f}% missing"
        )
