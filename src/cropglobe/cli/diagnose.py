"""``cropglobe diagnose``: will a model transfer? Label-free shift between source and targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cropglobe.cli._common import (
    PathArg,
    _parse_window,
    apply_where,
    bands_option,
    data_option,
    device_option,
    handle_errors,
    is_quiet,
    quiet_option,
    read_option,
    read_options_arg,
    select_bands_arg,
    where_arg,
    where_option,
)
from cropglobe.cli.transfer import ListOptionsCommand
from cropglobe.series import SeriesSet


class _DiagnoseCommand(ListOptionsCommand):
    list_options = ("--source", "--targets")


@click.command("diagnose", cls=_DiagnoseCommand)
@data_option
@read_option
@where_option
@bands_option
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Source group(s) of --data: --source FRA, or several (each is compared with each target).",
)
@click.option(
    "--targets",
    "targets",
    multiple=True,
    help="Target groups of --data (default: every group but the sources; with --model: all "
    "of --data).",
)
@click.option(
    "--group-by",
    default="country",
    show_default=True,
    help="Metadata column holding the groups (country, region, year).",
)
@click.option(
    "--model",
    "model_dir",
    type=PathArg(path_type=Path),
    default=None,
    help="A model folder: --data is the region to map, the source its training data (read "
    "again from where its card says, or from --source-data); adds the model's confidence and "
    "class mix.",
)
@click.option(
    "--source-data",
    type=PathArg(path_type=Path),
    default=None,
    help="With --model: the model's training data, when its card's path no longer holds them.",
)
@click.option(
    "--window",
    default=None,
    callback=lambda ctx, param, text: False if text is None else _parse_window(ctx, param, text),
    help="Days of season START-END compared (default: the model's, else 121-334), or all.",
)
@device_option()
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subsamples.")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as JSON.")
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    default=None,
    help="Also write the diagnostics table (.csv or .parquet).",
)
@quiet_option
@handle_errors
def command(
    data_path: Path,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
    bands: str | None,
    sources: tuple[str, ...],
    targets: tuple[str, ...],
    group_by: str,
    model_dir: Path | None,
    source_data: Path | None,
    window: tuple[int, int] | bool | None,
    device: str,
    seed: int,
    as_json: bool,
    output: Path | None,
) -> None:
    """Measure, without target labels, how the targets' series differ from the source's.

    \b
    cropglobe diagnose --data world/ --source FRA --targets BEL USA ARG
    cropglobe diagnose --data new_region.parquet --model models/fra-cropnet

    Three measures per pair: how well a classifier tells source from target fields (AUC),
    the share of target fields outside the source's range, and the season lag that brings the
    target's NDVI curves closest to the source's. With --model, also the model's confidence
    and predicted class mix on the target. `cropglobe transfer` reports the same measures
    beside the accuracies reached, to see whether they track transfer on your data.
    """
    from cropglobe.evaluate.shift import (
        diagnose_shift,
        diagnosis_lines,
        model_view,
        model_view_lines,
    )
    from cropglobe.evaluate.transfer import sequence_arg
    from cropglobe.workflow import check_table_path, write_table

    if output is not None:
        check_table_path(output)  # before the work: a typo in -o must not waste it
    where_arg(where)  # a malformed --where fails before the data are read
    if model_dir is None and not sequence_arg(sources):
        raise click.UsageError("give --source GROUP (and --targets), or --model MODEL_FOLDER")
    if model_dir is not None and sequence_arg(sources):
        raise click.UsageError(
            "--model takes its source from the model's training data; leave out --source "
            "(or pass --source-data PATH)"
        )
    if source_data is not None and model_dir is None:
        raise click.UsageError("--source-data goes with --model; without it use --source")
    say = (lambda text: None) if is_quiet() or as_json else click.echo
    view_of: Path | None
    if model_dir is not None:
        pairs, view_of = _model_pairs(
            data_path, read_option, where, targets, group_by, model_dir, source_data, window
        )
    else:
        pairs, view_of = _group_pairs(
            data_path, read_option, where, bands, sources, targets, group_by, window
        )
    records: list[dict[str, Any]] = []
    for src_name, src, tgt_name, tgt, win, phen in pairs:
        if src is None:  # a model whose training data are gone: its reference only
            record: dict[str, Any] = {"source": src_name, "target": tgt_name}
            lines = [f"{tgt_name} against {src_name} ({tgt.n_samples:,} target samples)"]
        else:
            d = diagnose_shift(
                src,
                tgt,
                window=win,
                source_name=src_name,
                target_name=tgt_name,
                random_state=seed,
                phenology=phen,
            )
            record = d.to_dict()
            lines = diagnosis_lines(d)
        if view_of is not None:
            view = model_view(view_of, src, tgt, device=device)
            record["model"] = view.to_dict()
            lines += model_view_lines(view, src_name, tgt_name)
        records.append(record)
        say(lines[0])
        for line in lines[1:]:
            say("  " + line)
    if as_json:
        click.echo(json.dumps(records, indent=1))
    if output is not None:
        import pandas as pd

        flat = pd.DataFrame([_flat(r) for r in records])
        write_table(flat, output)
        if not as_json:
            click.echo(f"diagnostics -> {output}")


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """A diagnosis as one table row: the model's figures (not its class mixes) as columns."""
    row = {k: v for k, v in record.items() if k != "model"}
    view = record.get("model") or {}
    for key in ("confidence_target", "unsure_target", "outside_reference", "confidence_source"):
        if key in view:
            row[f"model_{key}"] = view[key]
    return row


#: source name, source (None: a model's training reference only), target name, target, window,
#: the two with all bands (for NDVI)
_Pair = tuple[
    str,
    "SeriesSet | None",
    str,
    SeriesSet,
    "tuple[int, int] | None",
    "tuple[SeriesSet, SeriesSet] | None",
]


def _window(given: tuple[int, int] | bool | None, default: tuple[int, int] | None) -> Any:
    """The window asked for (None: all), or ``default`` when --window was not given."""
    return default if given is False else given


def _group_pairs(
    data_path: Path,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
    bands: str | None,
    sources: tuple[str, ...],
    targets: tuple[str, ...],
    group_by: str,
    window: Any,
) -> tuple[list[_Pair], None]:
    from cropglobe.errors import DataFormatError
    from cropglobe.evaluate.experiment import load_series
    from cropglobe.evaluate.transfer import group_names, resolve_groups, sequence_arg
    from cropglobe.workflow import select_groups

    ss, selected = apply_where(load_series(data_path, **read_options_arg(read_option)), where)
    if selected and not is_quiet():
        click.echo(selected, err=True)
    if group_by not in ss.meta.columns:
        raise DataFormatError(
            f"the data have no metadata column {group_by!r} to group by; available: "
            f"{', '.join(map(str, ss.meta.columns))}"
        )
    chosen = select_bands_arg(ss, bands)
    names = group_names(ss.meta, group_by)
    present = sorted(set(names.tolist()))
    src = resolve_groups(sequence_arg(sources), present)
    tgt = resolve_groups(sequence_arg(targets), present) if sequence_arg(targets) else []
    select_groups(ss, [*src, *tgt], group_by)  # unknown groups: the error names the present ones
    tgt = tgt or [g for g in present if g not in src]
    win = _window(window, (121, 334))
    pairs: list[_Pair] = []
    for s in src:
        for t in tgt:
            if s == t:
                continue
            a, b = names == s, names == t
            phen = (ss.subset(a), ss.subset(b)) if bands else None
            pairs.append((s, chosen.subset(a), t, chosen.subset(b), win, phen))
    if not pairs:
        raise DataFormatError(
            f"no target besides the source(s) {', '.join(src)}; groups present: "
            f"{', '.join(present)}"
        )
    return pairs, None


def _model_pairs(
    data_path: Path,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
    targets: tuple[str, ...],
    group_by: str,
    model_dir: Path,
    source_data: Path | None,
    window: Any,
) -> tuple[list[_Pair], Path]:
    from cropglobe.errors import MissingFileError
    from cropglobe.evaluate.transfer import sequence_arg
    from cropglobe.io import read_dataset
    from cropglobe.models.folder import read_card
    from cropglobe.workflow import select_groups, series_for_model

    card = read_card(model_dir)
    raw, selected = apply_where(read_dataset(data_path, **read_options_arg(read_option)), where)
    if selected and not is_quiet():
        click.echo(selected, err=True)
    target = select_groups(series_for_model(raw, model_dir), sequence_arg(targets), group_by)
    prov = dict(card.training.get("source_data") or {})
    path = source_data if source_data is not None else prov.get("path")
    reserved = {"path", "read_options", "where", "bands"}
    groups = [str(g) for c, v in prov.items() if c not in reserved for g in v]
    tgt_name = ",".join(sequence_arg(targets)) or (
        selected.split(":")[0].removeprefix("where ") if selected else data_path.name
    )
    whole_target = target  # all its bands: the season lag reads NDVI where the model may not
    target = target.select_bands(card.bands) if target.bands != card.bands else target
    win = _window(window, card.window)
    if window is False and win is not None:
        # the model sees the bins whose centre lies in its window, which may reach past the
        # grid (train accepts 121-334 on a grid ending in October): the same bins, clipped
        lo, hi = card.grid.edges[0], card.grid.edges[-1] - 1
        win = (max(int(win[0]), lo), min(int(win[1]), hi))
    missing = (
        "its card does not say where its training data are (a model trained before cropglobe "
        "recorded it, or from memory)"
        if path is None
        else f"its training data are no longer at {path}"
        if not Path(path).exists()
        else None
    )
    if missing is not None:
        from cropglobe.evaluate.applicability import TrainingReference

        if source_data is not None:
            raise MissingFileError(
                f"--source-data {source_data}: no such file or folder; give the path of the "
                "model's training data"
            )
        if TrainingReference.load(model_dir) is None:
            raise MissingFileError(f"{model_dir}: {missing}; pass --source-data PATH")
        if not is_quiet():
            click.echo(
                f"{model_dir}: {missing}; measured against the model's training reference "
                "only (pass --source-data PATH for the full comparison)",
                err=True,
            )
        return [("the training reference", None, tgt_name, target, win, None)], Path(model_dir)
    options = dict(prov.get("read_options") or {}) if source_data is None else {}
    src_raw = read_dataset(Path(str(path)), **options)
    if prov.get("where") and source_data is None:
        src_raw, _ = apply_where(
            src_raw, [f"{k}={','.join(map(str, v))}" for k, v in prov["where"].items()]
        )
    source = series_for_model(src_raw, model_dir)
    for column, values in prov.items():
        if column not in reserved and source_data is None:
            source = select_groups(source, list(values), column)
    whole_source = source
    source = source.select_bands(card.bands)
    more = set(whole_source.bands) - set(card.bands) and set(whole_target.bands) - set(card.bands)
    phen = (whole_source, whole_target) if more else None
    picked = [
        f"{k}={','.join(map(str, v))}" for k, v in (prov.get("where") or {}).items()
    ] if source_data is None else []  # fmt: skip
    src_name = (
        ", ".join([",".join(groups), *picked] if groups else picked)
        if (groups or picked) and source_data is None
        else Path(str(path)).name
    ) + " (training data)"
    return [(src_name, source, tgt_name, target, win, phen)], Path(model_dir)
