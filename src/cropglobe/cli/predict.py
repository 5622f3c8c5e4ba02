"""``cropglobe predict``: class labels and probabilities for every sample of a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import PathArg, handle_errors, quiet_option


@click.command("predict")
@click.argument("model_dir", type=PathArg(path_type=Path))
@click.option(
    "--data",
    "data_path",
    required=True,
    type=PathArg(path_type=Path),
    help="Dataset to predict (any format cropglobe reads).",
)
@click.option("--country", "countries", multiple=True, help="Predict these groups only.")
@click.option("--group-by", default="country", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--tta",
    is_flag=True,
    help="Test-time shift averaging: average the probabilities over the window moved by "
    "--tta-shifts days (neural models, full-season data).",
)
@click.option(
    "--tta-shifts",
    default=None,
    help="Window shifts in days averaged by --tta (implies --tta) [default: -20,-10,0,10,20].",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=PathArg(path_type=Path),
    help="Predictions table (.parquet or .csv).",
)
@quiet_option
@handle_errors
def command(
    model_dir: Path,
    data_path: Path,
    countries: tuple[str, ...],
    group_by: str,
    device: str,
    tta: bool,
    tta_shifts: str | None,
    output: Path,
) -> None:
    """Predict MODEL_DIR on --data and write labels and class probabilities."""
    from cropglobe.evaluate.experiment import load_series
    from cropglobe.evaluate.transfer import DEFAULT_SHIFTS, parse_shifts, sequence_arg
    from cropglobe.workflow import predict_dataset, select_groups, write_table

    shifts = parse_shifts(tta_shifts or DEFAULT_SHIFTS) if tta or tta_shifts else None
    ss = select_groups(load_series(data_path), sequence_arg(countries), group_by)
    table = predict_dataset(model_dir, ss, device=device, shifts=shifts)
    write_table(table, output)
    labelled = table["label"].notna()
    click.echo(f"predicted {len(table):,} samples -> {output}")
    if labelled.any():
        acc = float((table.loc[labelled, "label"] == table.loc[labelled, "predicted"]).mean())
        click.echo(f"  accuracy on the {int(labelled.sum()):,} labelled samples: {100 * acc:.1f} %")
