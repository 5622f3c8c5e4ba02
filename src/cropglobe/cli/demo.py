"""``cropglobe demo``: the main job on the embedded default (a simulated CropGlobe-like world)."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import handle_errors, quiet_option


@click.command("demo")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for the dataset, figures and report.",
)
@click.option(
    "--n-per-country",
    type=click.IntRange(50, 100_000),
    default=600,
    show_default=True,
    help="Simulated samples per country.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@quiet_option
@handle_errors
def command(output: Path, n_per_country: int, seed: int) -> None:
    """Simulate a CropGlobe-like world, summarise it and draw its phenology figure."""
    from cropglobe.demo import run_demo
    from cropglobe.summary import format_description

    result = run_demo(output, n_per_country=n_per_country, random_state=seed)
    click.echo(format_description(result.summary, f"synthetic world: {result.dataset}"))
    for fig in result.figures:
        click.echo(f"figure: {fig}")
    click.echo(f"done in {result.seconds:.1f} s; everything is in {result.output}/")
