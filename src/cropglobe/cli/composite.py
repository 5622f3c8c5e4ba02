"""``cropglobe composite INPUT -o OUT.npz``: irregular observations -> series on a time grid.

Also re-anchors series that are already composited (a SeriesSet or CropGlobe ``.npz``): ``--anchor
07-01`` moves a calendar-year series to the July–June season that ends in the same year (see
:func:`cropglobe.composite.shift_anchor`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from click.core import ParameterSource

from cropglobe.cli._common import (
    PathArg,
    apply_where,
    handle_errors,
    is_quiet,
    progress,
    quiet_option,
    read_option,
    read_options_arg,
    where_arg,
    where_option,
)
from cropglobe.errors import CropGlobeError, DataFormatError, ParameterError

if TYPE_CHECKING:
    from cropglobe.series import SeriesSet, TimeGrid

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
    default=None,
    help="Time grid: 5-day (CropGlobe, 73 bins; the default for tables), dekad, monthly or "
    "16-day (MODIS). A series input keeps its grid unless this is given.",
)
@click.option(
    "--anchor",
    default="01-01",
    show_default=True,
    help="First day of the season, MM-DD (07-01 for a July–June southern season: with a year "
    "column of label year 2023 it composites July 2022 – June 2023). A series input keeps its "
    "anchor unless this is given.",
    callback=lambda ctx, param, value: anchor_option(value),
)
@click.option("--window", default=None, help="Keep only days of season START-END, e.g. 121-334.")
@click.option(
    "--max-gap",
    default="auto",
    show_default=True,
    help="Longest gap (days between the centres of the bins either side) bridged by linear gap "
    "filling; 'none' bridges all; 'auto': observations up to a month apart, at least one "
    "missing step (35 days on the 5-day grid, 62 on the monthly grid). A series input is "
    "gap-filled only when this or --fill is given.",
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
    "--previous-season",
    type=PathArg(exists=True, path_type=Path),
    default=None,
    help="Series input: the same samples' series of the season before, for an --anchor later "
    "in the year (01-01 -> 07-01 takes July–December from it).",
)
@click.option(
    "--next-season",
    type=PathArg(exists=True, path_type=Path),
    default=None,
    help="Series input: the same samples' series of the season after, for an --anchor earlier "
    "in the year (07-01 -> 01-01).",
)
@click.option(
    "--wrap-season",
    is_flag=True,
    help="Series input: take the days outside its season from the series itself (one calendar "
    "year holding a whole southern season, as the CropGlobe release probably stores it).",
)
@click.option(
    "--format", "fmt", default="auto", show_default=True, help="Input format for the reader."
)
@read_option
@where_option
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
    previous_season: Path | None,
    next_season: Path | None,
    wrap_season: bool,
    fmt: str,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
) -> None:
    """Composite the observations in INPUT (long table: CSV, Parquet, GeoParquet …) to a grid.

    Writes a SeriesSet .npz: the NaN-aware median of each band in each bin, cloud-masked,
    optionally gap-filled and cut to a window of days.

    A sample's `year` column is its label (harvest) year: with --anchor 07-01, label year 2023
    is the season July 2022 – June 2023. --season-year names a season by the year it starts.

    INPUT may also be composited series (a SeriesSet or CropGlobe .npz): they are moved to the
    season starting --anchor that ends in the same year (a calendar-year 2023 series becomes
    July 2022 – June 2023), the missing half taken from --previous-season / --next-season or,
    with --wrap-season, from the series itself.
    """
    from cropglobe.composite import composite, select_window
    from cropglobe.io import read_observations
    from cropglobe.series import Observations

    if output.suffix.lower() != ".npz":
        raise ParameterError(
            f"output {output} must be a .npz file (a SeriesSet); e.g. -o series.npz"
        )
    if output.resolve() == input_path.resolve():
        raise ParameterError(f"output {output} is the input file; write the series elsewhere (-o)")
    win = _parse_window(window)
    gap = _parse_gap(max_gap)
    read_options = read_options_arg(read_option)
    where_arg(where)  # a malformed --where fails before the data are read
    ctx = click.get_current_context()
    explicit = {
        name: ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
        for name in ("season_year", "mask", "allow_empty", "fmt", "fill", "anchor", "max_gap")
    }
    if explicit["max_gap"] and explicit["fill"] and not fill:
        raise ParameterError(
            f"--max-gap {max_gap} sets the longest gap that gap filling bridges, but --no-fill "
            "turns filling off; drop one of them"
        )
    data = _read_input(input_path, fmt, read_options)
    if data is not None and not isinstance(data, Observations):
        data, picked = apply_where(data, where)
        if picked and not is_quiet():
            click.echo(picked, err=True)
        series = _reanchor(
            input_path,
            data,
            # a series keeps its own season unless --anchor is given
            anchor=anchor if explicit["anchor"] else data.grid.anchor,
            grid_name=grid_name,
            previous=previous_season,
            following=next_season,
            wrap=wrap_season,
            # filling a series is asked for: --fill, or a --max-gap to bridge
            fill=fill and (explicit["fill"] or explicit["max_gap"]),
            gap=gap,
            explicit=explicit,
            read_options=read_options,
            where=where,
        )
        if win is not None:
            series = select_window(series, *win)
        series.save(output)
        _report(output, series)
        return
    for name, given in (("--previous-season", previous_season), ("--next-season", next_season),
                        ("--wrap-season", wrap_season)):  # fmt: skip
        if given:
            raise ParameterError(
                f"{name} re-anchors composited series (a SeriesSet or CropGlobe .npz, a wide "
                "table); "
                f"{input_path} is an observation table: composite it with --anchor directly"
            )
    grid = _grid(grid_name or "5-day", anchor)
    result = None
    obs = None
    selected = None
    for stage in progress(["read", "composite", "write"], "compositing"):
        if stage == "read":
            obs = (
                data
                if data is not None
                else read_observations(input_path, **{"format": fmt, **read_options})
            )
            obs, selected = apply_where(obs, where)
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
    if selected and not is_quiet():
        click.echo(selected, err=True)
    if result is not None:
        _report(output, result)


def _report(output: Path, result: SeriesSet) -> None:
    from cropglobe.summary import filled_text

    filled = filled_text(result.attrs)
    click.echo(
        f"wrote {output}: {result.n_samples} samples × {result.n_bands} bands × "
        f"{result.n_steps} steps ({result.grid}), "
        f"{100 * result.missing_fraction():.1f}% missing" + (f", {filled}" if filled else "")
    )


def anchor_option(text: str) -> str:
    """``--anchor`` in its one spelling (``7-1`` -> ``07-01``), or a usage error."""
    from cropglobe.errors import GridError
    from cropglobe.series import anchor_text

    try:
        return anchor_text(text)
    except GridError as exc:
        raise click.BadParameter(str(exc), param_hint="'--anchor'") from None


def _grid(name: str, anchor: str) -> TimeGrid:
    from cropglobe.series import TimeGrid

    if name == "5-day":
        return TimeGrid.cropglobe(anchor)
    if name == "dekad":
        return TimeGrid.dekads(anchor)
    if name == "monthly":
        return TimeGrid.monthly(anchor)
    return TimeGrid.regular(16, 1, 365, anchor)


def _read_series(path: Path, what: str, read_options: dict[str, Any]) -> SeriesSet:
    from cropglobe.io import read_dataset
    from cropglobe.series import SeriesSet

    data = read_dataset(path, **read_options)
    if not isinstance(data, SeriesSet):
        raise DataFormatError(
            f"{what} {path} holds raw observations, not composited series; composite it first "
            "(cropglobe composite)"
        )
    return data


def _read_input(path: Path, fmt: str, read_options: dict[str, Any]) -> Any:
    """INPUT as :func:`cropglobe.io.read_dataset` reads it — composited series (SeriesSet or
    CropGlobe .npz, a folder, a wide or series table) or observations — or None when the
    observation-table reader must read it itself (``--format`` given, or no such file: it
    says so)."""
    from cropglobe.io import read_dataset

    if path.is_dir() or path.name.lower().endswith(".npz"):
        return read_dataset(path, **read_options)
    if fmt != "auto" or not path.is_file():
        return None
    return read_dataset(path, **read_options)


def _reanchor(
    path: Path,
    ss: SeriesSet,
    *,
    anchor: str,
    grid_name: str | None,
    previous: Path | None,
    following: Path | None,
    wrap: bool,
    fill: bool,
    gap: int | Literal["auto"] | None,
    explicit: dict[str, bool],
    read_options: dict[str, Any],
    where: tuple[str, ...] = (),
) -> SeriesSet:
    """INPUT holds composited series: move them to the season starting ``anchor``."""
    from cropglobe.composite import (
        _match_neighbour,
        auto_max_gap,
        fill_gaps,
        neighbour_season,
        resample,
        shift_anchor,
    )
    from cropglobe.series import parse_anchor

    table_only = {"season_year": "--season-year", "mask": "--mask", "allow_empty": "--allow-empty",
                  "fmt": "--format"}  # fmt: skip
    wrong = [opt for name, opt in table_only.items() if explicit[name]]
    if wrong:
        raise ParameterError(
            f"{', '.join(wrong)} {'apply' if len(wrong) > 1 else 'applies'} only to observation "
            f"tables; {path} holds composited series, "
            "which are only re-anchored (--anchor, --previous-season, --next-season, "
            "--wrap-season) and resampled (--grid)"
        )
    parse_anchor(anchor)
    need = neighbour_season(ss.grid.anchor, anchor)
    given = {"previous": previous, "next": following}
    if need is None:
        if previous or following or wrap:
            raise ParameterError(
                f"{path} is already on a season starting {anchor}; --previous-season, "
                "--next-season and --wrap-season apply only when --anchor changes it"
            )
    else:
        unused = "next" if need == "previous" else "previous"
        if given[unused] is not None:
            raise ParameterError(
                f"--{unused}-season is not used: the season starting {anchor} that ends in the "
                f"same year as {path}'s (starting {ss.grid.anchor}) reaches into the {need} "
                f"season; pass --{need}-season FILE or --wrap-season"
            )
        if given[need] is None and not wrap:
            first, last = (
                (anchor, ss.grid.anchor) if need == "previous" else (ss.grid.anchor, anchor)
            )
            span = f"{first} … {_day_before(last)}"
            raise ParameterError(
                f"--anchor {anchor}: the season starting {anchor} that ends in the same year as "
                f"{path}'s (starting {ss.grid.anchor}) takes {span} from the {need} season; "
                f"pass --{need}-season FILE (the same samples' series of the {need} season) or "
                "--wrap-season (take them from the series itself: one calendar year holding a "
                "whole southern season, as the CropGlobe release probably stores it)"
            )
        if wrap and given[need] is not None:
            raise ParameterError(
                f"--wrap-season and --{need}-season both give the {need} season; pass one"
            )
    nb = None if need is None or given[need] is None else given[need]
    if need is None:
        out = ss  # the same season: nothing to shift (a series cut to a window stays as it is)
    else:
        kw: dict[str, Any] = {"wrap": wrap}
        if nb is not None:
            other = _read_series(nb, f"--{need}-season", read_options)
            try:
                other, _ = apply_where(other, where)  # the same samples as INPUT's
            except CropGlobeError as err:
                raise type(err)(
                    f"--{need}-season {nb}: {err}; it must hold the same samples' series as "
                    f"{path}, selected by the same --where"
                ) from None
            # checked here to name the option and the files, not shift_anchor's arguments
            kw[f"{need}_season"] = _match_neighbour(ss, other, f"--{need}-season {nb}", str(path))
        out = shift_anchor(ss, anchor, **kw)
    if grid_name is not None:
        out = resample(out, _grid(grid_name, anchor))
    if fill:
        days = auto_max_gap(out.grid) if gap == "auto" else gap
        out = dataclasses.replace(out, values=fill_gaps(out.values, out.grid, max_gap_days=days))
        attrs = dict(out.attrs)
        attrs["composite"] = {
            **dict(attrs.get("composite") or {}),
            "fill": True,
            "max_gap_days": days,
        }
        out = dataclasses.replace(out, attrs=attrs)
    return out


def _day_before(anchor: str) -> str:
    """``"12-31"`` for ``"01-01"``: the last day of a season starting ``anchor``."""
    import pandas as pd

    return (pd.Timestamp(f"2001-{anchor}") - pd.Timedelta(days=1)).strftime("%m-%d")
