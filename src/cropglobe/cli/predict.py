"""``cropglobe predict``: class labels and probabilities for every sample of a dataset."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd

from cropglobe.cli._common import (
    PathArg,
    apply_where,
    device_option,
    handle_errors,
    is_quiet,
    quiet_option,
    read_option,
    read_options_arg,
    where_arg,
    where_option,
)


@click.command("predict")
@click.argument("model_dir", type=PathArg(path_type=Path))
@click.option(
    "--data",
    "data_path",
    required=True,
    type=PathArg(path_type=Path),
    help="Dataset to predict (any format cropglobe reads).",
)
@read_option
@where_option
@click.option("--country", "countries", multiple=True, help="Predict these groups only.")
@click.option(
    "--group-by",
    default="country",
    show_default=True,
    help="Metadata column --country selects from (country, region, year).",
)
@device_option()
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
    read_option: tuple[str, ...],
    where: tuple[str, ...],
    countries: tuple[str, ...],
    group_by: str,
    device: str,
    tta: bool,
    tta_shifts: str | None,
    output: Path,
) -> None:
    """Predict MODEL_DIR on --data and write labels and class probabilities.

    Raw observation tables are composited to the model's own grid first. Labelled samples are
    scored as they are (no class remapping; `cropglobe transfer` applies the paper's rules).
    """
    from cropglobe.errors import DataFormatError, ParameterError
    from cropglobe.evaluate.transfer import DEFAULT_SHIFTS, parse_shifts, sequence_arg
    from cropglobe.workflow import (
        check_table_path,
        predict_dataset,
        select_groups,
        series_for_model,
        write_table,
    )

    check_table_path(output)  # before the work: a typo in -o must not waste it
    if output.resolve() == data_path.resolve():
        raise ParameterError(
            f"output {output} is the input file; write the predictions elsewhere (-o)"
        )
    shifts = parse_shifts(tta_shifts or DEFAULT_SHIFTS) if tta or tta_shifts else None
    where_arg(where)  # a malformed --where fails before the data are read
    from cropglobe.io import read_dataset

    # selected on the data's own columns, before a table is composited (which sets ``year``
    # to the season's start year on a July-June grid)
    raw, selected = apply_where(read_dataset(data_path, **read_options_arg(read_option)), where)
    data = series_for_model(raw, model_dir)
    if selected and not is_quiet():
        click.echo(selected, err=True)
    ss = select_groups(data, sequence_arg(countries), group_by)
    if ss.n_samples == 0:
        raise DataFormatError(
            f"no sample to predict: {data_path} holds no sample with a valid observation"
            f"{' among those selected' if where or countries else ''}; check the data "
            "(cropglobe info) and the selection (--where, --country)"
        )
    table = predict_dataset(model_dir, ss, device=device, shifts=shifts)
    write_table(table, output)
    click.echo(f"predicted {len(table):,} samples -> {output}")
    for line in score_lines(table):
        click.echo(line)
    if "dissimilarity" in table.columns:
        from cropglobe.evaluate.applicability import outside_text

        click.echo("  " + outside_text(table["dissimilarity"].to_numpy()))


def score_lines(table: pd.DataFrame) -> list[str]:
    """How the predictions score against the labels the table holds (none: no lines)."""
    from sklearn.metrics import f1_score

    labelled = table[table["label"].notna()]
    if labelled.empty:
        return []
    truth = labelled["label"].astype(str).to_numpy()
    pred = labelled["predicted"].astype(str).to_numpy()
    n = truth.size
    present = sorted(set(truth))
    outputs = {c[2:] for c in table.columns if c.startswith("p_")}
    macro = f1_score(truth, pred, labels=present, average="macro", zero_division=0)
    counts = pd.Series(truth).value_counts()
    lines = [
        f"  on the {n:,} labelled samples: accuracy {100 * float((truth == pred).mean()):.1f} %, "
        f"macro-F1 {100 * macro:.1f} % over the {len(present)} classes present",
        f"  always predicting the most common class ({counts.index[0]}) would score "
        f"{100 * counts.iloc[0] / n:.1f} % accuracy",
        "  recall: "
        + ", ".join(f"{c} {100 * float((pred[truth == c] == c).mean()):.0f} %" for c in present),
    ]
    unknown = [c for c in present if c not in outputs]
    if unknown:
        k = int(np.isin(truth, unknown).sum())
        lines.append(
            f"  {k:,} of them are of classes the model cannot output ({', '.join(unknown)}): "
            "counted as wrong here; cropglobe transfer excludes or remaps them"
        )
    return lines
