"""``cropglobe simulate``: write a SYNTHETIC CropGlobe-like world in the release layout."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import PathArg, handle_errors, quiet_option
from cropglobe.errors import DataFormatError


def _parse_shifts(items: tuple[str, ...]) -> dict[str, float]:
    """``("ARG=30", "AUS=-20")`` -> ``{"ARG": 30.0, "AUS": -20.0}``."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            days = float(value)
        except ValueError:
            raise DataFormatError(
                f"--shift expects COUNTRY=DAYS (e.g. --shift ARG=30 --shift AUS=-20), got {item!r}"
            ) from None
        out[key.strip().upper()] = days
    return out


@click.command("simulate")
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path, file_okay=False),
    required=True,
    help="Root folder of the synthetic release (for_CropNet/, Median/).",
)
@click.option(
    "--countries",
    default="ARG,AUS,BEL,CHN,FRA,GBR,NLD,USA",
    show_default=True,
    help="Comma-separated ISO3 codes of CropGlobe countries.",
)
@click.option(
    "--n-per-country",
    type=click.IntRange(1, 1_000_000),
    default=2000,
    show_default=True,
    help="Samples per country.",
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Random seed.")
@click.option(
    "--shift",
    "shifts",
    multiple=True,
    metavar="CC=DAYS",
    help="Shift a country's crop calendar by DAYS (later if positive); repeatable.",
)
@click.option(
    "--cloud-fraction",
    type=float,
    default=0.3,
    show_default=True,
    help="Probability that an observation is cloudy (most become NaN, a few stay hazy).",
)
@click.option(
    "--calendar-months-south",
    is_flag=True,
    help="Keep ARG/AUS series in calendar months instead of rotating them half a year.",
)
@quiet_option
@handle_errors
def command(
    output: Path,
    countries: str,
    n_per_country: int,
    seed: int,
    shifts: tuple[str, ...],
    cloud_fraction: float,
    calendar_months_south: bool,
) -> None:
    """Simulate a SYNTHETIC CropGlobe-like world and write it in the CropGlobe release layout."""
    import re

    from cropglobe.classes import normalise_country
    from cropglobe.errors import ParameterError
    from cropglobe.evaluate.transfer import sequence_arg
    from cropglobe.simulate import simulate_world, write_world

    if output.is_dir():  # another world's files left beside this one would be read as one
        pattern = re.compile(r"median_S2_([A-Za-z]+)_month")
        there = {m.group(1) for p in output.rglob("*.npz") if (m := pattern.match(p.name))}
        others = sorted(there - {normalise_country(c) for c in sequence_arg(countries)})
        if others:
            raise ParameterError(
                f"{output} already holds a CropGlobe world with countries {others} that this "
                "one does not simulate; readers would mix the two — write to an empty folder"
            )
    world = simulate_world(
        countries,
        n_per_country,
        random_state=seed,
        phenology_shift=_parse_shifts(shifts),
        cloud_fraction=cloud_fraction,
        season_aligned_south=not calendar_months_south,
    )
    paths = write_world(world, output)
    table = (
        world.meta.assign(cls=world.label_names())
        .groupby(["country", "cls"], sort=False)
        .size()
        .unstack(fill_value=0)
    )
    table = table.reindex(columns=[c for c in world.classes if c in table.columns])
    table.index.name = None
    table.columns.name = None
    click.echo(f"SYNTHETIC CropGlobe-like world (cropglobe.simulate, seed {seed})")
    click.echo(table.to_string())
    click.echo(f"{world.n_samples} samples, {len(paths)} files written under {output}/")
