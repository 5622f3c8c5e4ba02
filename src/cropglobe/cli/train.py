"""``cropglobe train``: train a model on a dataset (optionally one country) into a model folder."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import (
    FiniteRange,
    PathArg,
    apply_where,
    bands_option,
    data_option,
    handle_errors,
    is_quiet,
    quiet_option,
    read_option,
    read_options_arg,
    select_bands_arg,
    training_options,
    where_arg,
    where_option,
)


@click.command("train")
@data_option
@read_option
@where_option
@bands_option
@click.option(
    "--country",
    "countries",
    multiple=True,
    help="Train on these groups only (repeat or comma-separate).",
)
@click.option(
    "--group-by",
    default="country",
    show_default=True,
    help="Metadata column --country selects from (country, region, year).",
)
@click.option(
    "--model",
    "model",
    default="cropnet",
    show_default=True,
    help="cropnet, mlp, tempcnn, transformer, random_forest, lightgbm.",
)
@click.option(
    "--augment",
    type=click.Choice(["online", "paper", "none"]),
    default=None,
    help="Phenology augmentation (default: online for clean, paper for paper).",
)
@training_options
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=82,
    show_default=True,
    help="Seed of everything random: validation split, initial weights, augmentation, "
    "batch order (a forest's trees).",
)
@click.option(
    "--early-stopping",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Stop after this many epochs without a better validation macro-F1.",
)
@click.option(
    "--average",
    type=FiniteRange(0.0, 1.0, min_open=True),
    default=None,
    help="Average the weights over this share of the final epochs (e.g. 0.25); neural models only.",
)
@click.option(
    "--model-option",
    "model_option",
    multiple=True,
    metavar="NAME=VALUE",
    help="A hyperparameter of --model, e.g. width=64 (CropNet at a quarter of the paper's "
    "compute) or n_estimators=100 (random forest); repeatable.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted training run.")
@click.option(
    "-o", "--output", required=True, type=PathArg(path_type=Path), help="Model folder to write."
)
@quiet_option
@handle_errors
def command(
    data_path: Path,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
    bands: str | None,
    countries: tuple[str, ...],
    group_by: str,
    model: str,
    augment: str | None,
    protocol: str,
    epochs: int,
    batch_size: int,
    lr: float,
    window: tuple[int, int] | None,
    device: str,
    precision: str,
    seed: int,
    early_stopping: int | None,
    average: float | None,
    model_option: tuple[str, ...],
    resume: bool,
    output: Path,
) -> None:
    """Train MODEL on the labelled samples of --data and save a model folder."""
    import logging
    import time

    from cropglobe.cli.transfer import parse_model_options
    from cropglobe.evaluate.experiment import load_series
    from cropglobe.evaluate.transfer import sequence_arg
    from cropglobe.models.folder import check_model_target
    from cropglobe.models.registry import canonical_name
    from cropglobe.workflow import select_groups, train_to_folder

    options = _own_options(parse_model_options(tuple(
        item if "." in item.partition("=")[0] else f"{model}.{item}" for item in model_option
    )), canonical_name(model))  # fmt: skip
    _refuse_neural_options(canonical_name(model))
    check_model_target(output)  # before the data are read and the model trained
    if (output / "card.json").is_file() and not resume:
        logging.getLogger("cropglobe").warning("%s holds a model: it will be replaced", output)
    where_arg(where)  # a malformed --where fails before the data are read
    data, selected = apply_where(load_series(data_path, **read_options_arg(read_option)), where)
    if selected and not is_quiet():
        click.echo(selected, err=True)
    ss = select_groups(data, sequence_arg(countries), group_by)
    ss = select_bands_arg(ss, bands)
    if not is_quiet():
        n = int((ss.labels >= 0).sum())
        click.echo(f"training {canonical_name(model)} on {n:,} labelled samples ...", err=True)
    started = time.perf_counter()

    def report(epoch: int, loss: float, f1: float) -> None:
        if not is_quiet():
            spent = time.perf_counter() - started
            click.echo(
                f"epoch {epoch:3d}/{epochs}  loss {loss:.4f}  val macro-F1 {f1:.3f}  "
                f"{spent:,.0f} s",
                err=True,
            )

    summary = train_to_folder(
        ss,
        model,
        output,
        protocol=protocol,
        augment=augment,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        precision=precision,
        window=window,
        resume=resume,
        early_stopping=early_stopping,
        progress=report,
        average=average,
        model_options=options,
        provenance={
            "path": str(Path(data_path).absolute()),  # diagnose reads it from any folder
            **({"read_options": read_options_arg(read_option)} if read_option else {}),
            **({"where": where_arg(where)} if where else {}),
            **({group_by: list(sequence_arg(countries))} if countries else {}),
            **({"bands": list(ss.bands)} if bands else {}),
        },
    )
    held = (
        f" ({summary.n_validation:,} more held out to choose the epoch)"
        if summary.n_validation
        else ""
    )
    click.echo(
        f"trained {summary.model} on {summary.n_train:,} samples{held}, classes "
        f"{', '.join(summary.classes)}"
    )
    for key, value in summary.metrics.items():
        if isinstance(value, float):
            click.echo(f"  {key}: {value:.4f}")
    click.echo(f"model folder: {summary.folder}")


def _refuse_neural_options(model: str) -> None:
    """A classical model given an option only networks use: one line, before any work (the
    option was silently ignored: --epochs 3 trained the same forest as without it)."""
    from cropglobe.cli._common import NEURAL_ONLY_OPTIONS, options_given
    from cropglobe.errors import ParameterError
    from cropglobe.models.registry import is_neural

    if is_neural(model):
        return
    given = options_given(NEURAL_ONLY_OPTIONS)
    if given:
        it = "it" if len(given) == 1 else "them"
        raise ParameterError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to neural models; "
            f"{model!r} is a classical model, which ignores {it} (drop {it}, or train a "
            "neural model; a classical model's own settings go in --model-option, e.g. "
            "n_estimators=100)"
        )


def _own_options(parsed: dict[str, dict[str, object]], model: str) -> dict[str, object]:
    """The options of ``model`` (``width=64`` or ``cropnet.width=64``); another model's refused."""
    from cropglobe.models.registry import canonical_name

    for family in parsed:
        try:
            same = canonical_name(family) == model
        except Exception:  # an unknown family name
            same = False
        if not same:
            raise click.BadParameter(
                f"{family}.{next(iter(parsed[family]))} is an option of {family!r}, but --model "
                f"is {model!r}; give NAME=VALUE for {model}",
                param_hint="'--model-option'",
            )
    return {k: v for opts in parsed.values() for k, v in opts.items()}
