"""``cropglobe demo``: the main job on the embedded default (a simulated CropGlobe-like world)."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import (
    PathArg,
    device_option,
    handle_errors,
    is_quiet,
    quiet_option,
)


@click.command("demo")
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for the dataset, figures and report.",
)
@click.option(
    "--n-per-country",
    type=click.IntRange(50, 100_000),
    default=1000,
    show_default=True,
    help="Simulated samples per country.",
)
@click.option("--seeds", default="82-84", show_default=True, help="Seeds, e.g. 82-91.")
@click.option(
    "--epochs",
    type=click.IntRange(1, 1000),
    default=8,
    show_default=True,
    help="Training epochs of the neural methods.",
)
@click.option(
    "--methods",
    default="cropnet-aug,cropnet,rf-harmonic,rf-median1d",
    show_default=True,
    help="Comma-separated methods to compare.",
)
@click.option(
    "--cropnet-width",
    type=click.IntRange(8, 512),
    default=64,
    show_default=True,
    help="Channels of CropNet's blocks (the paper's network: 128, four times the compute).",
)
@click.option(
    "--seed", type=click.IntRange(0), default=0, show_default=True, help="Simulator seed."
)
@device_option()
@quiet_option
@handle_errors
def command(
    output: Path,
    n_per_country: int,
    seeds: str,
    epochs: int,
    methods: str,
    cropnet_width: int,
    seed: int,
    device: str,
) -> None:
    """Simulate a CropGlobe-like world, run the transfer experiment on it, write the report."""
    from cropglobe.demo import run_demo
    from cropglobe.evaluate.transfer import parse_seeds, sequence_arg

    echo = None if is_quiet() else click.echo
    result = run_demo(
        output,
        n_per_country=n_per_country,
        seeds=parse_seeds(seeds),
        epochs=epochs,
        methods=sequence_arg(methods),
        random_state=seed,
        cropnet_width=cropnet_width,
        device=device,
        echo=echo,
    )
    click.echo("")
    click.echo(result.scenario_text)
    click.echo("")
    click.echo("What the numbers say (SYNTHETIC world):")
    for line in result.findings:
        click.echo(f"  - {line}")
    click.echo("")
    click.echo(f"phenology figure: {result.figures[0]}")
    click.echo(f"report: {result.report}")
    click.echo(f"done in {result.seconds / 60:.1f} min; everything is in {result.output}/")
