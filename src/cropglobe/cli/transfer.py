"""``cropglobe transfer``: the paper's experiment — train in sources, test in targets, report."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import (
    PathArg,
    bands_arg,
    bands_option,
    data_option,
    fail,
    handle_errors,
    is_quiet,
    option_value,
    quiet_option,
    read_option,
    read_options_arg,
    training_options,
    where_arg,
    where_option,
)
from cropglobe.evaluate.methods import available_methods


def parse_model_options(
    items: tuple[str, ...], option: str = "--model-option", example: str = "cropnet.width=64"
) -> dict[str, dict[str, object]]:
    """``("cropnet.width=64",)`` -> ``{"cropnet": {"width": 64}}`` (values read as JSON:
    numbers, true/false, lists; anything else stays text); ``option`` and ``example`` name
    the option in errors."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        family, dot, name = key.strip().partition(".")
        if not sep or not dot or not family or not name.strip():
            raise click.BadParameter(
                f"{item!r} is not {'MODEL' if option == '--model-option' else 'FEATURE'}"
                f".NAME=VALUE; e.g. {example}",
                param_hint=f"'{option}'",
            )
        out.setdefault(family.strip().lower(), {})[name.strip()] = option_value(text)
    return out


def seasons_arg(items: tuple[str, ...]) -> dict[str, str] | str | None:
    """``("ARG=07-01", "AUS=07-01")`` -> ``{"ARG": "07-01", "AUS": "07-01"}``; ``("auto",)``
    -> ``"auto"``; nothing -> None."""
    from cropglobe.errors import GridError
    from cropglobe.series import anchor_text

    items = tuple(p for item in items for p in item.split(",") if p.strip())
    if not items:
        return None
    if any(i.strip().lower() == "auto" for i in items):
        if len(items) > 1:
            raise click.BadParameter(
                "'auto' chooses every group's season itself; give it alone or give GROUP=MM-DD "
                "pairs",
                param_hint="'--season'",
            )
        return "auto"
    out: dict[str, str] = {}
    for item in items:
        group, sep, anchor = item.partition("=")
        group, anchor = group.strip(), anchor.strip()
        if not sep or not group or not anchor:
            raise click.BadParameter(
                f"{item!r} is not GROUP=MM-DD; e.g. ARG=07-01 (or 'auto')",
                param_hint="'--season'",
            )
        try:
            anchor = anchor_text(anchor)
        except GridError as exc:
            raise click.BadParameter(f"{item!r}: {exc}", param_hint="'--season'") from None
        if out.get(group, anchor) != anchor:
            raise click.BadParameter(
                f"{group} is given two seasons ({out[group]} and {anchor}); give one",
                param_hint="'--season'",
            )
        out[group] = anchor
    return out


class ListOptionsCommand(click.Command):
    """A command whose list options take several words: ``--targets BEL NLD GBR`` gives every
    word up to the next option to ``--targets`` (click options take one value each)."""

    list_options: tuple[str, ...] = ("--source", "--targets", "--season")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current: str | None = None  # the list option that bare words now belong to
        first = False  # its first value, which click itself gives it, is still to come
        for i, word in enumerate(args):
            if word == "--":
                out += args[i:]
                break
            if word.startswith("-") and len(word) > 1:
                if first and current == "--season":
                    raise click.UsageError(
                        f"--season names no season before {word}; give GROUP=MM-DD (e.g. "
                        "--season ARG=07-01 AUS=07-01), or 'auto'",
                        ctx=ctx,
                    )
                if first:  # "--targets --seeds 1": the list option was given no group
                    other = "leave it out for every group" if current == "--targets" else "'all'"
                    raise click.UsageError(
                        f"{current} names no group before {word}; give group names (e.g. "
                        f"{current} BEL NLD), or {other}",
                        ctx=ctx,
                    )
                name = word.split("=", 1)[0]
                current = name if name in self.list_options else None
                first = current is not None and "=" not in word
                out.append(word)
            elif current is not None and not first:
                out += [current, word]
            else:
                first = False
                out.append(word)
        return super().parse_args(ctx, out)


@click.command(
    "transfer",
    cls=ListOptionsCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
@data_option
@read_option
@where_option
@bands_option
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    help="Source group(s): --source FRA BEL, or comma-separated; 'all' = every group.",
)
@click.option(
    "--targets",
    "targets",
    multiple=True,
    help="Target groups: --targets BEL NLD GBR, or comma-separated (default: all).",
)
@click.option(
    "--methods",
    default="cropnet-aug,cropnet,rf-median1d,rf-harmonic",
    show_default=True,
    help="Comma-separated method names, of: " + ", ".join(available_methods()) + " (what each "
    "is: docs/methods.md; rf-presto, rf-alphaearth … read the release's precomputed files "
    "beside its series).",
)
@click.option(
    "--baseline",
    default=None,
    help="Method the others are compared with, paired by seed (default: the first of --methods).",
)
@click.option("--seeds", default="82-91", show_default=True, help="Seeds, e.g. 82-91 or 1,2,3.")
@click.option(
    "--group-by",
    default="country",
    show_default=True,
    help="Metadata column holding the groups (country, region, year).",
)
@training_options
@click.option(
    "--within",
    is_flag=True,
    help="Also score each source on a 20 % hold-out, with a second model trained on the "
    "other 80 % (identical samples kept on one side; transfer scores still come from the whole "
    "source).",
)
@click.option(
    "--adapt-prior",
    is_flag=True,
    help="Also score neural methods after adapting to each target's class mix, estimated "
    "from the unlabelled target predictions (EM); rows METHOD+prior. Rescores finished runs.",
)
@click.option(
    "--tta",
    is_flag=True,
    help="Also score neural time-series methods with test-time shift averaging (window moved "
    "by --tta-shifts days, probabilities averaged); rows METHOD+tta (and METHOD+tta+prior "
    "with --adapt-prior). Rescores finished runs.",
)
@click.option(
    "--tta-shifts",
    default=None,
    help="Window shifts in days averaged by --tta (implies --tta) [default: -20,-10,0,10,20].",
)
@click.option(
    "--model-option",
    "model_option",
    multiple=True,
    metavar="MODEL.NAME=VALUE",
    help="A hyperparameter of a neural model family for every method using it, e.g. "
    "cropnet.width=64 (a quarter of the paper's compute); repeatable.",
)
@click.option(
    "--feature-option",
    "feature_option",
    multiple=True,
    metavar="FEATURE.NAME=VALUE",
    help="A setting of computed features for every method using them: "
    "harmonic.n_harmonics=1 (default 3) or harmonic.omega=1.5 (cycles per year, default 1), "
    "e.g. for series with few steps in the window; repeatable.",
)
@click.option(
    "--season",
    "seasons",
    multiple=True,
    metavar="GROUP=MM-DD",
    help="Season-aligned transfer: GROUP's season starts on MM-DD (e.g. --season ARG=07-01 "
    "AUS=07-01) and the models compare days of season across groups; 'auto' re-anchors every "
    "group the season check finds unaligned.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=PathArg(path_type=Path),
    help="Experiment folder (runs, report); rerunning resumes, and targets added since are "
    "scored from the finished runs' saved models (neural methods on time series) or by "
    "training classical runs again.",
)
@quiet_option
@handle_errors
@click.pass_context
def command(
    ctx: click.Context,
    data_path: Path,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
    bands: str | None,
    sources: tuple[str, ...],
    targets: tuple[str, ...],
    methods: str,
    baseline: str | None,
    seeds: str,
    group_by: str,
    protocol: str,
    epochs: int,
    batch_size: int,
    lr: float,
    window: tuple[int, int] | None,
    device: str,
    precision: str,
    within: bool,
    adapt_prior: bool,
    tta: bool,
    tta_shifts: str | None,
    model_option: tuple[str, ...],
    feature_option: tuple[str, ...],
    seasons: tuple[str, ...],
    output: Path,
) -> None:
    """Train each method in each source, test it in every target, and write a report."""
    from cropglobe.evaluate.experiment import run_experiment
    from cropglobe.evaluate.transfer import DEFAULT_SHIFTS, parse_seeds, parse_shifts, sequence_arg

    conditions = where_arg(where)  # a malformed --where fails before the data are read
    aligned = seasons_arg(seasons)
    extra = list(ctx.args)
    if extra:
        hint = (
            f"did you mean --targets {extra[0]}?"
            if not targets
            else "give groups after --source or --targets"
        )
        raise click.UsageError(f"unexpected arguments {extra}; {hint}")
    for option, given, other in (
        ("--source", sources, "'all' for every group"),
        ("--targets", targets, "leave --targets out for every group"),
    ):
        if given and not sequence_arg(given):
            raise click.UsageError(
                f"{option} names no group; give group names (e.g. FRA), or {other}"
            )
    _warn_unused_network_options(sequence_arg(methods))
    try:
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
            window=window,
            within=within,
            adapt_prior=adapt_prior,
            tta=parse_shifts(DEFAULT_SHIFTS if tta_shifts is None else tta_shifts)
            if tta or tta_shifts is not None
            else (),
            device=device,
            precision=precision,
            output=output,
            baseline=baseline,
            model_options=parse_model_options(model_option),
            feature_options=parse_model_options(
                feature_option, "--feature-option", "harmonic.n_harmonics=1"
            ),
            bands=bands_arg(bands),
            read_options=read_options_arg(read_option),
            where=conditions,
            seasons=aligned,
            echo=None if is_quiet() else click.echo,
        )
    except KeyboardInterrupt:
        fail(
            f"interrupted; the runs that finished are kept in {output}: run the same command "
            "again to continue where it stopped",
            130,
        )
        return
    click.echo(result.summary_text)
    if result.findings:
        click.echo("What the numbers say:")
        for line in result.findings:
            click.echo(f"  - {line}")
    click.echo(f"report: {result.report}")


def _warn_unused_network_options(methods: list[str]) -> None:
    """--epochs, --batch-size, --lr or --precision given for methods none of which trains a
    network: they change nothing, said as --model-option and --adapt-prior say it (they were
    silently ignored)."""
    import logging

    from cropglobe.cli._common import options_given
    from cropglobe.evaluate.methods import UnknownMethodError, get_method
    from cropglobe.models.registry import is_neural

    given = options_given(("epochs", "batch_size", "lr", "precision"))
    try:
        neural = any(is_neural(get_method(m).model) for m in methods)
    except UnknownMethodError:  # run_experiment names it, with the valid ones
        return
    if given and not neural:
        logging.getLogger("cropglobe").warning(
            "%s appl%s to neural methods only, and none is asked for (%s); %s change%s nothing "
            "here", ", ".join(given), "y" if len(given) > 1 else "ies", ", ".join(methods),
            "they" if len(given) > 1 else "it", "" if len(given) > 1 else "s",
        )  # fmt: skip
