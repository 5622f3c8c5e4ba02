"""``cropglobe info PATH``: what a dataset holds, and optionally its class-mean NDVI curves."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from click.core import ParameterSource

from cropglobe.cli._common import (
    PathArg,
    _parse_window,
    apply_where,
    handle_errors,
    is_quiet,
    quiet_option,
    read_option,
    read_options_arg,
    spectra_where,
    where_arg,
    where_option,
)
from cropglobe.errors import BandError, CropGlobeError, DataFormatError, ParameterError

if TYPE_CHECKING:
    from cropglobe.series import SeriesSet


@click.command("info")
@click.argument("path", type=PathArg(path_type=Path))
@click.option(
    "--plot",
    "plot",
    type=PathArg(path_type=Path),
    default=None,
    help="Write class-mean NDVI curves per country (or region) to this PNG.",
)
@click.option(
    "--group-by",
    default="country",
    show_default=True,
    help="Metadata column that splits the summary and the plot's panels.",
)
@click.option("--band", default="NDVI", show_default=True, help="Band (or NDVI) to plot.")
@click.option(
    "--window",
    default="121-334",
    show_default=True,
    callback=_parse_window,
    help="Days of season START-END the models will see (as train/transfer --window): the "
    "season check flags groups whose class NDVI peaks fall outside it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@read_option
@where_option
@quiet_option
@handle_errors
def command(
    path: Path,
    plot: Path | None,
    group_by: str,
    band: str,
    window: tuple[int, int] | None,
    as_json: bool,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
) -> None:
    """Summarise PATH: countries, classes and counts, bands, grid, years, missing-value share.

    The season check times each class's mean NDVI peak per country (or --group-by) and names
    the groups whose peaks fall outside the --window the models see — an unaligned
    southern-hemisphere season on a calendar-year grid, say — with the exact command that
    fixes it.

    PATH may be a CropGlobe release folder, a CropGlobe or SeriesSet .npz, a long table
    (CSV, Parquet, GeoParquet: WorldCereal extraction, tidy or monthly format), a wide table
    (one column per date or day of year) or the CAWa folder — or a model folder (its card:
    model, classes, bands, grid and window, how and on what it was trained, its figures), or
    a transfer experiment folder (its plan, finished runs and scores).
    """
    from cropglobe.io import read_dataset
    from cropglobe.series import SeriesSet
    from cropglobe.summary import describe, format_description, infer_grid, season_check

    if plot is not None and plot.suffix.lower() != ".png":
        raise ParameterError(
            f"--plot {plot}: the figure is written as PNG, so the file name must end in .png; "
            f"got {plot.suffix or 'no suffix'!s}; e.g. --plot {plot.with_suffix('.png').name}"
        )

    folder = path.parent if path.name == "card.json" and path.is_file() else path
    if (folder / "card.json").is_file():
        _model_summary(folder, as_json)
        return
    if path.is_dir() and (path / "config.json").is_file() and (path / "runs").is_dir():
        _experiment_summary(path, as_json, plot, where)
        return
    from cropglobe.io import feature_table_params, is_spectra_table

    if is_spectra_table(path):
        _spectra_summary(path, plot, group_by, as_json, where)
        return
    if feature_table_params(path) is not None:
        _table_summary(path, plot, group_by, as_json, where)
        return
    _refuse_output(path)
    where_arg(where)  # a malformed --where fails before the data are read
    data, selected = apply_where(read_dataset(path, **read_options_arg(read_option)), where)
    if data.n_samples == 0:
        raise DataFormatError(
            f"no observations in {path}: it holds 0 samples; expected at least one; "
            "re-create it from input that holds data"
        )
    band_given = click.get_current_context().get_parameter_source("band") not in (
        None,
        ParameterSource.DEFAULT,
    )
    if plot is not None or band_given:  # checked before anything is printed
        band = _check_band(band, data.bands)
        if plot is None and not is_quiet():
            click.echo(
                f"note: --band {band} chooses the band of the --plot figure; without --plot "
                "it changes nothing",
                err=True,
            )
    meta = data.meta if isinstance(data, SeriesSet) else data.samples
    if group_by not in meta.columns and group_by != "country":
        raise click.BadParameter(
            f"no metadata column {group_by!r}; available: {', '.join(map(str, meta.columns))}",
            param_hint="--group-by",
        )
    # the default ("country") falls back to "region" for data without countries (CAWa)
    desc = describe(data, group_by=None if group_by == "country" else group_by)
    if selected:  # said with the summary: its counts are of the samples kept
        desc = {"where": {**where_arg(where), "samples_kept": data.n_samples}, **desc}
    if isinstance(data, SeriesSet) and data.attrs.get("source") == "cropglobe" and path.is_dir():
        desc["release_files"] = _release_files(path, str(data.attrs.get("kind", "")))
    series: SeriesSet | None = None
    if isinstance(data, SeriesSet):
        series = data
    else:
        from cropglobe.composite import composite

        try:
            # no gap filling: a month without observations stays a gap in the curves rather
            # than a copy of its neighbour (Belgium's table ends in July)
            series = composite(data, infer_grid(data), fill=False, allow_empty=True)
        except CropGlobeError as exc:
            if plot is not None:
                raise
            desc["season_check"] = {"skipped": f"the observations do not composite: {exc}"}
    if series is not None:
        # the fix names the file to re-composite (a table) or re-anchor (an .npz or a folder;
        # a CropGlobe folder names each country's file itself)
        source = None if path.is_dir() and "files" in series.attrs else str(path)
        desc["season_check"] = season_check(
            series,
            window=window,
            group_by=None if group_by == "country" else group_by,
            source=source,
            observations=not isinstance(data, SeriesSet),
        )
    # drawn first: a bad --band fails before anything is printed
    if plot is not None and series is not None:
        from cropglobe.report.figures import plot_phenology

        group = group_by if group_by in series.meta.columns else None
        if series.n_samples and not (series.labels >= 0).any():
            # class-mean curves of unlabelled data: one curve of all samples per group
            series = dataclasses.replace(
                series,
                labels=np.zeros(series.n_samples, dtype=np.int64),
                classes=("all samples (unlabelled)",),
            )
        _require_values(series, band, group, path)
        plot_phenology(series, plot, band=band, group_by=group)
    text = (
        json.dumps(desc, indent=2, default=str) if as_json else format_description(desc, str(path))
    )
    click.echo(text if as_json or not selected else f"{selected}\n{text}")
    if plot is not None:
        click.echo(f"wrote {plot}")


def _spectra_summary(
    path: Path, plot: Path | None, group_by: str, as_json: bool, where: tuple[str, ...]
) -> None:
    """``info`` of an EMIT spectra table: spectra, points, bands, dates, granules, gaps and
    counts per label; --plot draws the class-mean spectra."""
    from cropglobe.io.emit import read_spectra_table
    from cropglobe.summary import describe_spectra, format_spectra_description

    where_arg(where)
    spectra, selected = spectra_where(read_spectra_table(path), where)
    meta = spectra.meta
    if group_by not in meta.columns and group_by != "country":
        raise click.BadParameter(
            f"no column {group_by!r} in the spectra table; available: "
            f"{', '.join(map(str, meta.columns))}",
            param_hint="--group-by",
        )
    group = group_by if group_by in meta.columns else None
    desc = describe_spectra(spectra, group_by=group)
    if selected:
        desc = {"where": {**where_arg(where), "spectra_kept": len(spectra)}, **desc}
    if plot is not None:
        from cropglobe.report.figures import plot_spectra

        plot_spectra(spectra, plot, group_by=group or desc.get("class_counts", {}).get("group_by"))
    text = (
        json.dumps(desc, indent=2, default=str)
        if as_json
        else format_spectra_description(desc, str(path))
    )
    click.echo(text if as_json or not selected else f"{selected}\n{text}")
    if plot is not None:
        click.echo(f"wrote {plot}")


def _table_summary(
    path: Path, plot: Path | None, group_by: str, as_json: bool, where: tuple[str, ...]
) -> None:
    """``info`` of a feature table of ``cropglobe features``: samples, features, what computed
    them, missing values and class counts (what ``transfer --methods rf-table`` would see)."""
    from cropglobe.features.table import read_feature_table
    from cropglobe.summary import describe, format_description

    if plot is not None:
        raise ParameterError(
            f"--plot draws class-mean curves over time, and {path} is a feature table (one "
            "column per feature, no time axis); drop --plot, or give the series it was "
            "computed from"
        )
    where_arg(where)
    data, selected = apply_where(read_feature_table(path), where)
    if group_by not in data.meta.columns and group_by != "country":
        raise click.BadParameter(
            f"no metadata column {group_by!r}; available: {', '.join(map(str, data.meta.columns))}",
            param_hint="--group-by",
        )
    desc = describe(data, group_by=None if group_by == "country" else group_by)
    for key in ("grid", "n_steps", "years", "dates", "seasons"):
        desc.pop(key, None)
    pipeline = data.attrs.get("features") or {}
    steps = [s[1].get("class", "?") for s in pipeline.get("steps", []) if len(s) == 2]
    desc.update(
        kind="feature table",
        computed_by=" → ".join(steps) if steps else pipeline.get("class", "unknown"),
        **({"input": data.attrs["input"]} if data.attrs.get("input") else {}),
        methods=["rf-table", "lightgbm-table", "mlp-table"],
    )
    if selected:
        desc = {"where": {**where_arg(where), "samples_kept": data.n_samples}, **desc}
    text = (
        json.dumps(desc, indent=2, default=str) if as_json else format_description(desc, str(path))
    )
    click.echo(text if as_json or not selected else f"{selected}\n{text}")


def _experiment_summary(
    path: Path, as_json: bool, plot: Path | None, where: tuple[str, ...]
) -> None:
    """``info`` on a transfer experiment folder: its plan, how many runs have finished, and
    the scores of ``results.csv`` (mean ± std over seeds per pair)."""
    import pandas as pd

    if plot is not None or where:
        raise ParameterError(
            f"{path} is a transfer experiment folder: --plot and --where apply to datasets; "
            f"its figures are in {path / 'report.html'}"
        )
    try:
        saved = json.loads((path / "config.json").read_text())
        config = saved["config"]
        plan = {k: list(config[k]) for k in ("methods", "sources", "targets", "seeds")}
    except (ValueError, KeyError, TypeError):
        raise DataFormatError(
            f"{path / 'config.json'} is not a transfer experiment's config (damaged, or not "
            "written by cropglobe transfer); info summarises experiments, datasets and model "
            "folders"
        ) from None
    from cropglobe.evaluate.transfer import finished_runs

    finished = len(finished_runs(path))
    planned = len(plan["methods"]) * len(plan["sources"]) * len(plan["seeds"])
    scores = path / "results.csv"
    results = pd.read_csv(scores) if scores.is_file() else None
    report = path / "report.html"
    if as_json:
        out = {
            "kind": "transfer experiment",
            **plan,
            "group_by": config.get("group_by"),
            "protocol": config.get("protocol"),
            "finished_runs": finished,
            "planned_runs": planned,
            "report": str(report) if report.is_file() else None,
            "results": None if results is None else results.to_dict(orient="records"),
        }
        click.echo(json.dumps(out, indent=1, default=str))
        return
    lines = [
        f"transfer experiment in {path}"
        + (f" (report: {report})" if report.is_file() else " (no report yet)"),
        f"methods: {', '.join(plan['methods'])}",
        f"sources: {', '.join(map(str, plan['sources']))}; targets: "
        f"{', '.join(map(str, plan['targets']))} (group by {config.get('group_by')})",
        f"seeds: {', '.join(map(str, plan['seeds']))}; protocol {config.get('protocol')}; "
        f"finished runs: {finished} of {planned}",
    ]
    chosen = [  # the settings that make these runs differ from the defaults' runs
        f"{name} {config[key]}"
        for key, name in (
            ("model_options", "models"),
            ("feature_options", "features"),
            ("seasons", "seasons"),
            ("where", "where"),
        )
        if config.get(key)
    ]
    window = config.get("window")
    lines.append(
        f"window: {'-'.join(map(str, window)) if window else 'all'}"
        + (f"; {'; '.join(chosen)}" if chosen else "")
    )
    if results is None or results.empty:
        lines.append("no scores yet: rerun the same transfer command to finish the runs")
    else:
        lines.append("overall accuracy / macro-F1 (%), mean ± std over seeds:")
        for r in results.to_dict(orient="records"):
            n = int(r["n_runs"])
            lines.append(
                f"  {r['method']}: {r['source']} → {r['target']} ({r['scenario']}): "
                f"{r['oa_mean']:.1f} ± {r['oa_std']:.1f} / {r['macro_f1_mean']:.1f} ± "
                f"{r['macro_f1_std']:.1f} ({n} seed{'s' * (n != 1)})"
            )
    click.echo("\n".join(lines))


def _refuse_output(path: Path) -> None:
    """A clear DataFormatError for cropglobe's own outputs that are no dataset (an experiment
    folder, a predictions or scores table), which the readers would otherwise call an unknown
    folder or a tidy table short of a date column."""
    if not path.is_file() or path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        return
    try:
        if path.suffix.lower() == ".csv":
            import pandas as pd

            columns = list(pd.read_csv(path, nrows=0).columns)
        else:
            import pyarrow.parquet as pq

            columns = list(pq.read_schema(path).names)
    except Exception:  # unreadable: the reader says why
        return
    if {"sample_id", "predicted", "confidence"} <= set(columns):
        raise DataFormatError(
            f"{path}: a predictions table of cropglobe predict (one row per sample: "
            "predicted class, confidence, p_* probabilities), not a dataset; info summarises "
            "datasets and model folders"
        )
    if {"source", "target", "domain_auc", "outside_share"} <= set(columns):
        raise DataFormatError(
            f"{path}: a table of shift diagnostics (cropglobe diagnose or transfer), not a "
            "dataset; info summarises datasets and model folders"
        )
    if {"method", "source", "target", "oa_mean"} <= set(columns):
        raise DataFormatError(
            f"{path}: the scores table of a cropglobe transfer experiment, not a dataset; its "
            f"folder's report.html shows them (info summarises datasets and model folders)"
        )


def _check_band(band: str, bands: tuple[str, ...]) -> str:
    """The canonical name of --band; a one-line BandError naming the data's bands when the data
    lack it (NDVI: an NDVI band, or B04 and B08 to compute it from)."""
    from cropglobe.bands import canonical_band, not_a_band

    code = canonical_band(band)
    if code == "NDVI":
        if "NDVI" in bands or {"B04", "B08"} <= set(bands):
            return code
        raise BandError(
            f"--band {band}: the data have no NDVI band, nor B04 (red) and B08 (NIR) to "
            f"compute it from; their bands are {', '.join(bands)}; choose one of them with --band"
        )
    if code in bands:
        return code
    raise not_a_band(band, bands, option="--band")


def _release_files(root: Path, read: str) -> dict[str, dict[str, Any]]:
    """The release's other files beside the series read (``Median``, Presto, AlphaEarth,
    harmonics): kind -> countries, feature width and the transfer methods reading them."""
    from cropglobe.evaluate.methods import METHODS
    from cropglobe.io import list_cropglobe

    listing = list_cropglobe(root)
    out: dict[str, dict[str, Any]] = {}
    for kind, rows in listing[listing["kind"] != read].groupby("kind", sort=True):
        shapes = {tuple(s)[1:] for s in rows["shape"]}
        entry: dict[str, Any] = {"countries": sorted(rows["country"].astype(str))}
        if len(shapes) == 1 and len(width := next(iter(shapes))) == 1:
            entry["features"] = int(width[0])
        methods = [m.name for m in METHODS.values() if m.features == f"release:{kind}"]
        if methods:
            entry["methods"] = methods
        out[str(kind)] = entry
    return out


def _require_values(series: SeriesSet, band: str, group: str | None, path: Path) -> None:
    """A one-line error, rather than empty axes, when the plotted band has no value at all
    in the labelled samples."""
    import numpy as np

    from cropglobe.report.figures import class_mean_curves

    curves = class_mean_curves(series, group, band)  # BandError for an unknown band
    if not any(np.isfinite(m).any() for per in curves.values() for m, _, _ in per.values()):
        others = [
            b for b in series.bands if not np.isnan(series.values[:, series.bands.index(b)]).all()
        ]
        raise DataFormatError(
            f"--band {band}: no value to plot in {path}; the band holds no value in any "
            f"labelled sample; choose another --band"
            + (f" (bands with values: {' '.join(others[:12])})" if others else "")
        )


def _model_summary(folder: Path, as_json: bool) -> None:
    """Print what a model folder holds: its card (model, classes, bands, grid and window, how
    and on what it was trained, validation figures)."""
    from cropglobe.models.folder import read_card

    card = read_card(folder)
    if as_json:
        click.echo(json.dumps(card.to_dict(), indent=2, default=str))
        return
    t = card.training
    lines = [f"{folder} (cropglobe model folder)", f"  model: {card.model}"]
    lines.append(f"  classes ({len(card.classes)}): {', '.join(card.classes)}")
    lines.append(f"  bands ({len(card.bands)}): {' '.join(card.bands)}")
    window = f"; the model sees days {card.window[0]}–{card.window[1]}" if card.window else ""
    lines.append(f"  grid: {card.grid}{window}")
    shapes = ("n_classes", "n_bands", "n_steps")  # shown above as classes, bands and grid
    hyper = [f"{k} {v}" for k, v in card.params.items() if k not in shapes and _brief(v)]
    if hyper:  # CropNet's width (64 is a quarter of the paper's compute), a forest's trees …
        lines.append(f"  hyperparameters: {', '.join(hyper)}")
    keys = ("protocol", "augment", "seed", "epochs", "epochs_run", "device", "precision_used")
    how = [f"{k} {_short(t[k])}" for k in (*keys, "n_train", "n_val") if t.get(k) not in (None, "")]
    if t.get("augment") not in (None, "", "none") and "offline" in t:
        # online and the release's offline copies are different trainings of one pipeline
        at = next(i for i, h in enumerate(how) if h.startswith("augment "))
        how[at] += (
            f" (offline: the originals + {t.get('copies')} augmented copies)"
            if t["offline"]
            else " (online: fresh draws every batch)"
        )
    if how:
        lines.append(f"  training: {', '.join(how)}")
    source = t.get("source_data")
    if isinstance(source, dict) and source:
        lines.append(
            "  trained on: " + ", ".join(f"{k} {json.dumps(v)}" for k, v in source.items())
        )
    figures = [
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in card.metrics.items()
        if isinstance(v, int | float | str)
    ]
    if figures:
        lines.append(f"  metrics: {', '.join(figures)}")
    from cropglobe.evaluate.applicability import TrainingReference

    reference = TrainingReference.load(folder)
    lines.append(
        f"  training reference: {reference.n_samples:,} training samples, for the distance of "
        "new data from them (predict's dissimilarity, map --applicability, diagnose --model)"
        if reference is not None
        else "  training reference: none (trained before cropglobe kept one): predict and map "
        "cannot say which data lie outside the training data's range"
    )
    lines.append(f"  created {card.created} by cropglobe {card.version}")
    click.echo("\n".join(lines))


def _brief(value: object) -> bool:
    """Whether a hyperparameter is worth a place on info's line: a number, a word or a short
    list (not the Transformer's 43 day positions)."""
    if isinstance(value, list | tuple):
        return 0 < len(value) <= 8
    return value is not None and isinstance(value, int | float | str)


def _short(value: object) -> str:
    """A card's training setting in a few words: an augmentation pipeline by its members'
    names (``TimeShift+TimeScale+MagnitudeWarp``), anything else as it is."""
    if isinstance(value, dict) and isinstance(value.get("members"), list):
        return "+".join(str(m.get("name", "?")) for m in value["members"] if isinstance(m, dict))
    if isinstance(value, dict) and "name" in value:
        return str(value["name"])
    return str(value)
