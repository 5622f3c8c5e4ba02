"""``cropglobe transfer``: the paper's experiment — train in sources, test in targets, report."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import handle_errors, is_quiet, quiet_option


@click.command("transfer")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset: CropGlobe folder, SeriesSet .npz, long/wide table, CAWa folder.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    help="Source group(s), comma-separated or repeated; 'all' = every group.",
)
@click.option(
    "--targets", "targets", multiple=True, help="Target groups (default: every other group)."
)
@click.option(
    "--methods",
    default="cropnet-aug,cropnet,rf-median1d,rf-harmonic",
    show_default=True,
    help="Comma-separated method names.",
)
@click.option("--seeds", default="82-91", show_default=True, help="Seeds, e.g. 82-91 or 1,2,3.")
@click.option(
    "--group-by",
    default="country",
    show_default=True,
    help="Metadata column holding the groups (country, region, year).",
)
@click.option(
    "--protocol",
    type=click.Choice(["clean", "paper"]),
    default="clean",
    show_default=True,
    help="Validation protocol (paper reproduces the release).",
)
@click.option("--epochs", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 65_536), default=256, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(0, 1, min_open=True),
    default=1e-4,
    show_default=True,
    help="Adam learning rate of neural methods.",
)
@click.option(
    "--window",
    default="121-334",
    show_default=True,
    help="Day-of-season window the models see, or 'all'.",
)
@click.option("--within", is_flag=True, help="Also score each source on a 20 % held-out split.")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda).")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Experiment folder (runs, report); rerunning resumes.",
)
@quiet_option
@handle_errors
def command(
    data_path: Path,
    sources: tuple[str, ...],
    targets: tuple[str, ...],
    methods: str,
    seeds: str,
    group_by: str,
    protocol: str,
    epochs: int,
    batch_size: int,
    lr: float,
    window: str,
    within: bool,
    device: str,
    output: Path,
) -> None:
    """Train each method in each source, test it in every target, and write a report."""
    from cropglobe.evaluate.experiment import run_experiment
    from cropglobe.evaluate.transfer import parse_seeds, sequence_arg

    result = run_experiment(
        data_path,
        sources=sequence_arg(sources),
        targets=sequence_arg(targets) or None,
        methods=sequence_arg(methods),
        seeds=parse_seeds(seeds),
        group_by=group_by,
        protocol=protocol,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        window=None if window == "all" else _window(window),
        within=within,
        device=device,
        output=output,
        echo=None if is_quiet() else click.echo,
    )
    click.echo(result.summary_text)
    click.echo(f"report: {result.report}")


def _window(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split("-"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a window; expected START-END days of season, e.g. 121-334",
            param_hint="--window",
        ) from None
    return a, b
