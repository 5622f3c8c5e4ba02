"""One call from a dataset path to a finished (or resumed) transfer experiment and its report."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe._fs import folder_lock, safe_name
from cropglobe.errors import CropGlobeError, DataFormatError, MissingFileError, ParameterError
from cropglobe.evaluate.metrics import aggregate_runs
from cropglobe.evaluate.transfer import (
    ExperimentConfig,
    ExperimentResult,
    check_plan,
    group_name,
    group_names,
    resolve_groups,
    run_transfer,
)
from cropglobe.series import Observations, SeriesSet, TimeGrid, where_text
from cropglobe.workflow import suggest_group

__all__ = ["ExperimentReport", "load_series", "run_experiment"]

logger = logging.getLogger(__name__)

#: panels of a phenology figure: the source and its largest targets
PHENOLOGY_PANELS = 12


@dataclass
class ExperimentReport:
    """A finished experiment: its tables, report path and a short text summary."""

    result: ExperimentResult
    report: Path
    summary: pd.DataFrame
    summary_text: str
    diagnostics: pd.DataFrame | None = None
    #: plain statements about the scores (:func:`cropglobe.report.findings.transfer_findings`)
    findings: list[str] = dataclasses.field(default_factory=list)


def load_series(path: str | os.PathLike[str], **read_options: Any) -> SeriesSet:
    """Read any supported dataset as a SeriesSet (raw observations are composited to a grid
    inferred from their dates and gap-filled); ``read_options`` go to the reader
    (:func:`cropglobe.io.read_dataset`)."""
    return _load_series(path, **read_options)[0]


def _load_series(
    path: str | os.PathLike[str], **read_options: Any
) -> tuple[SeriesSet, SeriesSet, Observations | None]:
    """The dataset gap-filled for the models, as observed (unfilled) for figures, and the raw
    observations it was composited from (None for a dataset of series).

    Both series sets hold the same samples in the same order; a dataset that is already a
    series set is returned twice.
    """
    from cropglobe.io import read_dataset

    data = read_dataset(path, **read_options)  # a feature table is refused, saying so
    if not isinstance(data, Observations):
        before = data.n_samples
        data = data.drop_empty()
        if data.n_samples < before:
            logger.warning(
                "%s: %d of %d samples hold no valid observation (all NaN) and are left out",
                path,
                before - data.n_samples,
                before,
            )
        return data, data, None
    from cropglobe.summary import infer_grid

    filled, observed = _composited(data, infer_grid(data))
    return filled, observed, data


def _load_feature_table(
    path: str | os.PathLike[str], read_options: Mapping[str, Any]
) -> SeriesSet | None:
    """A feature table of ``cropglobe features`` as the data of a transfer experiment (the
    ``*-table`` methods), or None when ``path`` is none. Only :func:`run_experiment` reads
    them: the other commands loading series (train, diagnose) refuse them."""
    from cropglobe.features.table import read_feature_table
    from cropglobe.io import feature_table_params

    if feature_table_params(path) is None:
        return None
    if read_options:
        raise ParameterError(
            f"{path} is a feature table, which takes no read options (given: "
            f"{', '.join(sorted(read_options))}); drop --read-option"
        )
    table = read_feature_table(path)
    kept = table.drop_empty()  # as series without observations are: every method, same rows
    if kept.n_samples < table.n_samples:
        logger.warning(
            "%s: %d of %d rows hold no feature value (all NaN) and are left out",
            path,
            table.n_samples - kept.n_samples,
            table.n_samples,
        )
    return kept


def _composited(data: Observations, grid: TimeGrid) -> tuple[SeriesSet, SeriesSet]:
    """Observations composited to ``grid`` (samples without an observation in its season
    dropped): gap-filled as composite's defaults do, and unfilled."""
    from cropglobe.composite import auto_max_gap, composite, fill_gaps

    observed = composite(data, grid, fill=False, allow_empty=True).drop_empty()
    # fill_gaps with composite's own defaults is what composite(fill=True) does
    gap = auto_max_gap(observed.grid)
    filled = fill_gaps(observed.values, observed.grid, max_gap_days=gap, edge="hold")
    attrs = {
        **observed.attrs,
        "composite": {**observed.attrs["composite"], "fill": True, "max_gap_days": gap},
    }
    return dataclasses.replace(observed, values=filled, attrs=attrs), observed


def run_experiment(
    data: str | os.PathLike[str] | SeriesSet,
    *,
    sources: Sequence[str],
    targets: Sequence[str] | None = None,
    methods: Sequence[str],
    seeds: Sequence[int],
    output: str | os.PathLike[str],
    group_by: str = "country",
    protocol: str = "clean",
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-4,
    precision: str = "auto",
    window: tuple[int, int] | None = (121, 334),
    within: bool = False,
    adapt_prior: bool = False,
    tta: Sequence[float] = (),
    device: str = "cpu",
    extra: dict[str, object] | None = None,
    model_options: dict[str, dict[str, object]] | None = None,
    echo: Callable[[str], None] | None = None,
    title: str = "cropglobe transfer experiment",
    notes: Sequence[str] = (),
    baseline: str | None = None,
    bands: Sequence[str] | None = None,
    read_options: dict[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    seasons: Mapping[str, str] | str | None = None,
    diagnostics: bool = True,
    feature_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> ExperimentReport:
    """Run the experiment, write ``report.html`` and return the tables.

    ``sources=["all"]`` gives the full source × target matrix; ``targets=None`` means every
    group other than the source. ``baseline`` (default: the first of ``methods``) is the
    method the others are compared with, paired by seed, in the report and the summary.
    ``bands``: the models see only these bands of the data (all when None); the data's
    fingerprints, and so the experiment's identity, follow. ``read_options`` go to the reader
    of a ``data`` path (:func:`cropglobe.io.read_dataset`) and are saved with the config.
    ``where``: keep only the samples whose metadata hold these values before grouping
    (``{"region": ["Fergana"]}``, compared as :meth:`SeriesSet.where` does); saved with the
    config, and the groups' fingerprints follow the samples kept.
    ``seasons``: season-aligned transfer. Group -> anchor (``{"ARG": "07-01"}``): those groups'
    seasons start on that day, and the models compare days of season across groups (day 121 is
    May in France and November in Argentina); ``"auto"``: every group the season check finds
    unaligned gets the anchor it suggests. Raw observations are composited again with the
    group's anchor; composited series are moved with
    :func:`cropglobe.composite.shift_anchor` (``wrap=True``). Saved with the config.
    ``feature_options``: settings of computed features for every method using them,
    ``{"harmonic": {"n_harmonics": 1}}`` (:data:`cropglobe.evaluate.transfer.FEATURE_OPTIONS`;
    saved with the config, and runs on other settings are not reused).
    ``diagnostics``: measure each pair's label-free shift (:mod:`cropglobe.evaluate.shift`)
    and report it beside the accuracies (``diagnostics.csv``; kept in the folder for reruns).
    """
    from cropglobe.evaluate.calibration import (
        aggregate_calibration,
        calibrate_runs,
        merge_calibration,
    )
    from cropglobe.evaluate.compare import paired_comparison
    from cropglobe.report.figures import plot_phenology
    from cropglobe.report.transfer import (
        comparison_lines,
        report_staging,
        scenario_table,
        scored_runs,
        single_class_pairs,
        write_transfer_report,
    )

    given = None if isinstance(data, SeriesSet) else _load_feature_table(data, read_options or {})
    ss, observed, raw = (
        (data, data, None)
        if isinstance(data, SeriesSet)
        else (given, given, None)
        if given is not None
        else _load_series(data, **(read_options or {}))
    )
    filled_here = raw is not None  # raw observations, composited and gap-filled above
    selected = ""  # what `where` kept, for the config line
    unselected = ss.meta  # the groups before `where`: a group it removed is named as such
    if where:  # on the data's own column types, before groups become text
        before, rows = ss.n_samples, ss.where_rows(**where)
        ss, observed = ss.subset(rows), observed.subset(rows)
        selected = f", where {where_text(where)} ({ss.n_samples:,} of {before:,} samples)"
    if bands is not None:  # the phenology figure keeps every band (NDVI needs B04 and B08)
        ss = ss.select_bands(list(bands))
    if ss.n_samples == 0:
        raise DataFormatError("the dataset holds no samples with observations")
    varying = ss.attrs.get("varying_columns") or {}
    if group_by not in ss.meta.columns and group_by in varying:
        raise DataFormatError(
            f"column {group_by!r} changes within sample {varying[group_by]!r} (and maybe "
            f"others), so it is no per-sample value to group by; give each sample one "
            f"{group_by!r}"
        )
    meta = ss.meta.copy()  # groups as text from here on (a year column read as floats too)
    meta[group_by] = group_names(ss.meta, group_by)
    ss = dataclasses.replace(ss, meta=meta)
    observed = dataclasses.replace(observed, meta=meta)  # the same samples, unfilled
    from cropglobe.evaluate.methods import get_method
    from cropglobe.features.table import is_feature_set

    features_only = is_feature_set(ss)
    if features_only:  # before the seasons are aligned: a table has none
        _check_feature_table_plan(ss, methods, seasons, tta)
        if window is not None and tuple(window) != (121, 334):  # not the default: said
            logger.warning(
                "window %d-%d does not apply to a feature table (no time axis); the table's "
                "features were computed with the window they were written with",
                *window,
            )
        window = None  # a feature table has no time axis to window
    elif tabled := [m for m in methods if get_method(m).features == "table"]:
        raise ParameterError(
            f"methods {', '.join(tabled)} train on a feature table's columns, but the data are "
            "time series; give --data a table written by cropglobe features, or use methods "
            "on the series (rf-median1d, rf-harmonic …)"
        )
    aligned: dict[str, str] = {}
    if seasons:
        ss, observed, aligned = _align(ss, observed, raw, seasons, group_by, window, echo)
    if protocol == "paper":  # the release de-duplicates each file's feature rows before use
        before = ss.n_samples
        unique = ss.unique_rows(by=group_by, labels=False)
        ss, observed = ss.subset(unique), observed.subset(unique)
        if echo and ss.n_samples < before:
            echo(f"paper protocol: dropped {before - ss.n_samples} duplicate samples of {before}")
    groups = sorted(ss.meta[group_by].astype(str).unique())
    # as the data names them: 2020.0 (or "2020.0") is the group 2020 of a year read as floats
    asked = resolve_groups(sources, groups)
    full_matrix = [s.lower() for s in asked] == ["all"]
    src = groups if full_matrix else asked
    tgt = resolve_groups(targets, groups) if targets else groups
    if window is not None:
        lo, hi = ss.grid.edges[0], ss.grid.edges[-1] - 1
        if window[0] < lo or window[1] > hi or window[0] >= window[1]:
            raise DataFormatError(
                f"window {window[0]}-{window[1]} is outside the data's grid (days {lo}-{hi}); "
                "pass a window inside it or 'all'"
            )
    from cropglobe.evaluate.methods import get_method

    models = {get_method(m).model for m in methods}  # unknown names fail before any output
    from cropglobe.models.registry import MODELS

    neural = {k for k, v in MODELS.items() if v[2] == "neural"}
    # other families are refused with the config below; no "unused" warning for them first
    unused = sorted((set(model_options or {}) & neural) - models)
    if unused:
        logger.warning(
            "model options for %s: no method of this experiment uses that model, so they "
            "change nothing",
            ", ".join(unused),
        )
    if baseline is None:
        baseline = methods[0] if methods else None
    elif baseline not in methods:
        raise CropGlobeError(
            f"baseline {baseline!r} is not one of the methods; pass one of: {', '.join(methods)}"
        )
    for g in [*src, *tgt]:
        if g in groups:
            continue
        before_where = unselected[group_by] if where and group_by in unselected else None
        if before_where is not None and g in set(before_where.dropna().map(group_name)):
            raise DataFormatError(
                f"group {g!r} has no sample left after the selection where "
                f"{where_text(where or {})}; groups it keeps: {', '.join(groups)}; drop {g!r} "
                "from the sources/targets or widen the selection (--where)"
            )
        suggest_group(ss, g, groups, group_by)
        in_release = ss.attrs.get("source") == "cropglobe" and "root" in ss.attrs
        if group_by == "country" and in_release:
            from cropglobe.io.cropglobe_npz import expected_file

            expected = expected_file(ss.attrs["root"], ss.attrs["kind"], g)
            if expected.exists():  # the file is there but none of its samples is usable
                raise DataFormatError(
                    f"{expected}: none of its samples has observations, so country {g!r} has "
                    "nothing to train or test on; check the file or drop the country"
                )
            raise MissingFileError(
                f"{expected}: no such file, so country {g!r} is not in the data; countries with "
                f"files: {', '.join(groups)}; add its file or drop it from the sources/targets"
            )
        raise DataFormatError(
            f"group {g!r} is not in the data's {group_by!r} column; present: {', '.join(groups)}"
        )
    if window is not None:
        kept = ss.subset(np.arange(ss.n_samples) == 0).select_window(*window).grid.n_steps
        if kept < 3:
            logger.warning(
                "window %d-%d keeps %d time step(s) of the data's %d: the models see almost no "
                "season; widen it (the paper: 121-334) or pass 'all'",
                window[0],
                window[1],
                kept,
                ss.grid.n_steps,
            )
    filled_notes = (
        _filled_share_notes(ss, observed, group_by, [*src, *tgt], window) if filled_here else []
    )
    season_notes = [] if features_only else _season_notes(observed, group_by, [*src, *tgt], window)
    for msg in [*filled_notes, *season_notes]:
        logger.warning(msg)
    notes = (*notes, *filled_notes, *season_notes)
    if aligned:
        rest = ss.meta[group_by].astype(str).isin(list(aligned)).to_numpy()
        others = " and ".join(sorted(set(ss.anchors[~rest].tolist())))
        notes = (
            *notes,
            "Season-aligned: "
            + ", ".join(f"{g} on a season starting {a}" for g, a in aligned.items())
            + (f", the other groups on {others}" if others else "")
            + "; the models compare days of season, so the window's days fall in other "
            "months in these groups"
            + (
                " (composited series moved with their own year's months standing in for "
                "the year before)"
                if raw is None
                else ""
            )
            + ".",
        )
    # (a source whose only target is itself is refused below, saying so)
    own = sorted(g for g in set(src) & set(tgt) if any(t != g for t in tgt))
    own = own if targets and not within else []
    if own:
        logger.warning(
            "%s named as target and source: a source is scored on itself only with --within "
            "(a hold-out), so it is left out of its own targets",
            ", ".join(own),
        )
    from cropglobe.evaluate.adapt import ADAPTABLE

    if (adapt_prior or tta) and not models & ADAPTABLE:
        logger.warning(
            "--adapt-prior and --tta rescore neural methods only (%s), and none is asked for; "
            "they change nothing here",
            ", ".join(sorted(ADAPTABLE)),
        )
    skip_pairs: list[list[str]] = []
    if full_matrix:  # leave out what cannot run
        skip_pairs, src = _matrix_plan(ss, group_by, groups, tgt, within)
        dropped = [g for g in groups if g not in src]
        if not src:  # said before the pairs left out: with no source, none of them is news
            raise ParameterError(
                f"--source all leaves no source: the data holds {len(groups)} group(s) "
                f"({_names_text(groups)}) and none has 2 classes and a target sharing one; add "
                "groups, or pass --within to score a source on a hold-out of itself"
            )
        if echo and skip_pairs:
            echo(f"left out (no class in common): {_pairs_text(skip_pairs)}")
        if echo and dropped:
            echo(f"not used as sources (under 2 classes, or no target): {_names_text(dropped)}")
    config = ExperimentConfig(
        sources=src,
        targets=tgt,
        methods=list(methods),
        seeds=list(seeds),
        group_by=group_by,
        protocol=protocol,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        precision=precision,
        window=window,
        device=device,
        within=within,
        adapt_prior=adapt_prior,
        tta=[float(v) for v in tta],
        extra=dict(extra or {}),
        skip_pairs=skip_pairs,
        model_options={k: dict(v) for k, v in (model_options or {}).items()},
        read_options=dict(read_options or {}),
        where={
            str(k): list(v) if isinstance(v, list | tuple | set | frozenset) else [v]
            for k, v in (where or {}).items()
        },
        seasons=aligned,
        feature_options={str(k): dict(v) for k, v in (feature_options or {}).items()},
    )
    _say_feature_options(ss, config)
    check_plan(ss, config)
    if echo:
        echo(
            f"experiment: {_count(len(config.methods), 'method')} × "
            f"{_count(len(config.sources), 'source')} × {_count(len(config.seeds), 'seed')} "
            f"-> {output}"
        )
        # the neural settings only where a neural method uses them
        uses_neural = any(get_method(m).model in ADAPTABLE for m in config.methods)
        training = (
            f"epochs {epochs}, batch {batch_size}, lr {lr:g}, precision {precision}, "
            if uses_neural
            else ""
        )
        echo(
            f"config: sources {config.sources}, targets {config.targets}, methods "
            f"{config.methods}, seeds {config.seeds}, group by {group_by}, protocol {protocol}, "
            f"{training}window {window}, device {device}{selected}"
            + (f", seasons {aligned}" if aligned else "")
            + (f", features {config.feature_options}" if config.feature_options else "")
        )
    # one process per folder: a second one would mix its runs and staging with this one's
    with folder_lock(output, "cropglobe transfer"):
        result = run_transfer(ss, config, output, progress=echo)
        out = Path(output)
        # from the runs' saved probabilities: no retraining, and older folders get it too
        calibration, reliability = calibrate_runs(
            out, result.runs, ss.classes, _calibration_rules(ss, config)
        )
        result = dataclasses.replace(result, runs=merge_calibration(result.runs, calibration))
        trained_in = result.runs.get("precision_used", pd.Series(dtype=object)).dropna()
        config_dict = {
            **config.__dict__,
            **({"precision_used": sorted(set(trained_in))} if len(trained_in) else {}),
            "data": str(data)
            if not isinstance(data, SeriesSet)
            else ss.attrs.get("source", "in-memory SeriesSet"),
        }
        if ss.attrs.get("synthetic"):
            notes = (
                "These results come from SYNTHETIC data (cropglobe.simulate), not real "
                "observations.",
                *notes,
            )
        if skip_pairs:
            notes = (
                *notes,
                f"Left out of the matrix: {_pairs_text(skip_pairs)} — the target holds no class "
                "a model trained in the source can output.",
            )
        notes = (*notes, *_row_suffix_notes(result.runs, config), *result.warnings)
        shift = _shift_table(ss, observed, config, out, echo) if diagnostics else None
        inside = _applicability_runs(ss, config, out) if diagnostics else None
        runs = scored_runs(result.runs)
        compared = baseline is not None and len(runs) and (runs["method"] == baseline).any()
        comparison = paired_comparison(runs, str(baseline)) if compared else None
        with report_staging(out) as stage:  # the figures join the report's other files at once
            phen = []
            for s in [] if features_only else config.sources:  # NDVI curves of time series
                members = [s, *[t for t in tgt if t != s]]
                sub = observed.subset(ss.meta[group_by].astype(str).isin(members).to_numpy())
                shown = (
                    f"source {s} and its targets, one panel each"
                    if len(members) <= PHENOLOGY_PANELS
                    else f"source {s} and the {PHENOLOGY_PANELS - 1} largest of its "
                    f"{len(members) - 1} targets"
                )
                try:
                    phen.append(
                        plot_phenology(
                            sub,
                            stage / f"phenology_{safe_name(s)}.png",
                            group_by=group_by,
                            title=f"Class-mean NDVI: {shown}",
                            max_groups=PHENOLOGY_PANELS,
                            keep=[s],
                        )
                    )
                except CropGlobeError as exc:  # e.g. no NDVI bands: the report goes on without it
                    logger.warning("phenology figure skipped: %s", exc)
            report = write_transfer_report(
                out,
                result.runs,
                result.per_class,
                result.confusions,
                ss.classes,
                config=config_dict,
                phenology_figures=phen,
                title=title,
                notes=notes,
                baseline=baseline,
                comparison=comparison,
                diagnostics=shift,
                applicability=inside,
                reliability=reliability,
            )
    by = ["method", "source", "target", "scenario"]
    agg = aggregate_runs(result.runs, by)
    if (cal := aggregate_calibration(result.runs, by)) is not None:
        agg = agg.merge(cal, on=by, how="left")
    table = scenario_table(runs, "oa")
    text = "Overall accuracy (%) by scenario, mean ± std over seeds:\n" + table.to_string()
    single = single_class_pairs(result.runs)
    if single and len(runs) < len(result.runs):
        text += (
            "\nLeft out above: "
            + ", ".join(f"{a} → {b}" for a, b in single)
            + " (only one class of the target could be scored: its accuracy says nothing "
            "about transfer; see the report)"
        )
    elif single:
        text += (
            "\nNote: on every pair above ("
            + ", ".join(f"{a} → {b}" for a, b in single)
            + ") only one class of the target could be scored (the models cannot output the "
            "others): these accuracies say nothing about transfer."
        )
    lines = comparison_lines(comparison) if comparison is not None else []
    if lines:
        text += "\nPaired by seed (method − baseline, percentage points):\n" + "\n".join(
            "  " + line for line in lines
        )
    from cropglobe.report.findings import transfer_findings

    found = transfer_findings(
        aggregate_runs(runs, ["method", "source", "target", "scenario"]), runs, shift
    )
    return ExperimentReport(result, report, agg, text, shift, found)


def _say_feature_options(ss: SeriesSet, config: ExperimentConfig) -> None:
    """Warn of feature options no method uses, and of harmonic fits with few window steps per
    coefficient (on CAWa's 13 steps, n = 3's seven coefficients swing between fields and
    rf-harmonic transfers at about a third of the accuracy it reaches at n = 1)."""
    from cropglobe.evaluate.methods import get_method
    from cropglobe.evaluate.transfer import FEATURE_OPTIONS

    used = {get_method(m).features for m in config.methods}
    unused = sorted(set(config.feature_options) - used)
    if unused:
        logger.warning(
            "feature options for %s: no method of this experiment computes those features, so "
            "they change nothing",
            ", ".join(unused),
        )
    harmonic = [m for m in config.methods if get_method(m).features == "harmonic"]
    if not harmonic:
        return
    from cropglobe.features.harmonics import sparse_fit_note

    settings = {**FEATURE_OPTIONS["harmonic"], **config.feature_options.get("harmonic", {})}
    n = int(settings["n_harmonics"])
    window = config.window
    steps = ss.select_window(*window).grid.n_steps if window else ss.grid.n_steps
    if note := sparse_fit_note(n, steps):
        lower = "; try --feature-option harmonic.n_harmonics=1" if n > 1 else ""
        logger.warning("%s: %s%s (or a wider --window)", ", ".join(harmonic), note, lower)


def _check_feature_table_plan(
    table: SeriesSet,
    methods: Sequence[str],
    seasons: Mapping[str, str] | str | None,
    tta: Sequence[float],
) -> None:
    """A feature table as the data: only the ``*-table`` methods, no season options."""
    from cropglobe.evaluate.methods import get_method

    series = [m for m in methods if get_method(m).features != "table"]
    if series:
        raise ParameterError(
            f"{table.attrs.get('path', 'the data')} is a feature table (one column per "
            f"feature, no time series), so methods {', '.join(series)} cannot train on it; "
            "use rf-table, lightgbm-table or mlp-table, or give the time series the table was "
            "computed from" + (f" ({table.attrs['input']})" if table.attrs.get("input") else "")
        )
    if seasons or tta:
        raise ParameterError(
            "--season and --tta move the days of a time series, and a feature table has none; "
            "drop them"
        )


#: name of the shift diagnostics table in an experiment folder (also the cache of reruns)
DIAGNOSTICS_FILE = "diagnostics.csv"


def _shift_table(
    ss: SeriesSet,
    observed: SeriesSet,
    config: ExperimentConfig,
    out: Path,
    echo: Callable[[str], None] | None,
) -> pd.DataFrame:
    """The label-free shift diagnostics of each source → target pair of the plan.

    Pairs diagnosed by an earlier run on the same samples and window are read back from the
    folder's :data:`DIAGNOSTICS_FILE` (its ``key`` column: the two groups' fingerprints and the
    window), the others computed."""
    import hashlib

    from cropglobe.evaluate.shift import pair_diagnostics

    col = config.group_by
    groups = ss.meta[col].astype(str).to_numpy()
    skipped = {(str(s), str(t)) for s, t in config.skip_pairs}
    pairs = [
        (s, t)
        for s in config.sources
        for t in config.targets
        if s != t and (s, t) not in skipped and (groups == t).any()
    ]
    prints: dict[str, str] = {}

    def key(s: str, t: str) -> str:
        for g in (s, t):
            if g not in prints:
                prints[g] = ss.subset(groups == g).fingerprint()
        # v2: exact duplicate series compared once, features without values on one side
        # left out; v3: a feature without spread in the source scaled by its band's typical
        # spread; v4: the season lag's curves without exact duplicates too; v5: the AUC
        # leave-pair-out, repeats of a series out of its neighbours, exact components (rows
        # of earlier versions were measured otherwise)
        text = f"shift-v5|{prints[s]}|{prints[t]}|{config.window}"
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    keys = {pair: key(*pair) for pair in pairs}
    cached = pd.DataFrame()
    path = out / DIAGNOSTICS_FILE
    if path.exists():
        try:
            # group names stay text: "NA" (Namibia) is no missing value, "01" no number 1
            names = {"source": str, "target": str, "key": str}
            cached = pd.read_csv(path, dtype=names, keep_default_na=False, na_values={
                c: ["", "nan", "NaN"] for c in ("n_source", "n_target", "domain_auc",
                                                "outside_share", "lag_days", "lag_gain")
            })  # fmt: skip
        except (OSError, ValueError, pd.errors.ParserError):
            logger.warning("%s is unreadable; the shift diagnostics are measured again", path)
    known = set(cached["key"].astype(str)) if "key" in cached.columns else set()
    todo = [pair for pair in pairs if keys[pair] not in known]
    if echo and todo:
        echo(f"measuring the shift of {_count(len(todo), 'pair')} (label-free diagnostics)")
    fresh = pair_diagnostics(
        ss, todo, group_by=col, window=config.window, phenology=observed, progress=echo
    )
    fresh["key"] = [keys[(s, t)] for s, t in zip(fresh["source"], fresh["target"], strict=True)]
    # rows without a key (a table from elsewhere) are never this run's: measured again
    old = cached[cached["key"].astype(str).isin(set(keys.values()))] if known else cached[:0]
    parts = [df for df in (old, fresh) if len(df)]
    if not parts:  # no pair to measure (a source scored only on its own hold-out)
        return fresh
    table = pd.concat(parts, ignore_index=True)
    order = {k: i for i, k in enumerate(keys.values())}
    table = table.assign(_o=table["key"].astype(str).map(order)).sort_values("_o")
    table = table.drop(columns="_o").drop_duplicates("key").reset_index(drop=True)
    floats = ["domain_auc", "outside_share", "lag_days", "lag_gain"]  # as measured, when read
    return table.astype(dict.fromkeys(floats, np.float64))


def _matrix_plan(
    ss: SeriesSet, group_by: str, sources: list[str], targets: list[str], within: bool
) -> tuple[list[list[str]], list[str]]:
    """For ``--source all``: the (source, target) pairs whose target shares no class with the
    source, and the sources that keep a target (or their own hold-out with ``within``)."""
    groups = ss.meta[group_by].astype(str).to_numpy()
    labelled = ss.labels >= 0
    classes = {g: set(np.unique(ss.labels[(groups == g) & labelled]).tolist()) for g in set(groups)}
    skip = [
        [s, t]
        for s in sources
        for t in targets
        if t != s and not classes[s] & classes.get(t, set())
    ]
    kept = [
        s
        for s in sources
        if len(classes[s]) >= 2 and (within or any(t != s and [s, t] not in skip for t in targets))
    ]
    # pairs of a group that is no source (under 2 classes) were never to run: not "left out"
    return [pair for pair in skip if pair[0] in kept], kept


#: a group whose window values are gap-filled more than this share of the time is named
FILLED_SHARE_WARN = 0.25


def _filled_share_notes(
    ss: SeriesSet,
    observed: SeriesSet,
    group_by: str,
    groups: Sequence[str],
    window: tuple[int, int] | None,
) -> list[str]:
    """One line per group whose values in the models' window are mostly gap-filled rather
    than observed (a table that ends in July has its August–November held at July's value):
    its scores rest on made-up values."""
    if ss.n_samples == 0:
        return []
    seen = observed.select_bands(list(ss.bands)) if observed.bands != ss.bands else observed
    centers = ss.grid.centers
    cols = (
        (centers >= window[0]) & (centers <= window[1])
        if window is not None
        else np.ones(centers.size, dtype=bool)
    )
    if not cols.any():
        return []
    names = ss.meta[group_by].astype(str).to_numpy()
    notes = []
    for g in dict.fromkeys(groups):
        rows = names == g
        if not rows.any():
            continue
        had = ~np.isnan(seen.values[rows][:, :, cols])
        now = ~np.isnan(ss.values[rows][:, :, cols])
        share = float((now & ~had).sum()) / max(int(now.sum()), 1)
        if share <= FILLED_SHARE_WARN:
            continue
        # the window's steps that most of the group never observed
        step_seen = had.any(axis=1).mean(axis=0)
        empty = np.flatnonzero(step_seen < 0.5)
        days = centers[cols][empty]
        where = (
            f"; steps observed in under half of its samples: days {_day_ranges(days, ss.grid)}"
            if days.size
            else ""
        )
        notes.append(
            f"{g}: {share:.0%} of its values in the models' window are gap-filled, not "
            f"observed{where}. Its scores rest on interpolated or held values; check the "
            "data's date range (cropglobe info) or narrow --window."
        )
    return notes


def _align(
    ss: SeriesSet,
    observed: SeriesSet,
    raw: Observations | None,
    seasons: Mapping[str, str] | str,
    group_by: str,
    window: tuple[int, int] | None,
    echo: Callable[[str], None] | None,
) -> tuple[SeriesSet, SeriesSet, dict[str, str]]:
    """The data with the groups of ``seasons`` on their own season anchors (season-aligned;
    see :func:`run_experiment`), and the anchors applied (group -> anchor)."""
    from cropglobe.composite import align_seasons, season_findings
    from cropglobe.errors import BandError
    from cropglobe.series import anchor_text

    present = sorted(set(ss.meta[group_by].astype(str)))
    whole = ss.grid.edges[0] == 1 and ss.grid.edges[-1] == 366
    if raw is None and not whole:
        raise ParameterError(
            f"--season re-anchors whole-season series, but the data cover only days "
            f"{ss.grid.edges[0]}–{ss.grid.edges[-1] - 1} of their season (the release's "
            "May–November Median files, say): use series of the whole year (the for_CropNet "
            "month1-12 files) or the raw observations"
        )
    if isinstance(seasons, str):
        if seasons != "auto":
            raise ParameterError(
                f"seasons must be 'auto' or a mapping group -> 'MM-DD', got {seasons!r}"
            )
        grid = observed.grid
        span = window or (int(grid.edges[0]), int(grid.edges[-1]) - 1)
        try:
            found = season_findings(observed, window=span, group_by=group_by)
        except BandError:
            raise ParameterError(
                "--season auto times each group's NDVI peaks, which needs an NDVI band or B08 "
                f"and B04 (the data have {', '.join(observed.bands)}); give each group's season "
                "instead: --season GROUP=MM-DD"
            ) from None
        mapping = {f.group: str(f.suggested_anchor) for f in found if f.suggested_anchor}
        if echo:
            chosen = ", ".join(f"{g} on a season starting {a}" for g, a in mapping.items())
            echo(f"seasons: {chosen or 'no group looks unaligned; every group keeps its season'}")
    else:
        mapping = {}
        for g, a in seasons.items():
            name = resolve_groups([str(g)], present)[0]
            if name not in present:
                suggest_group(ss, name, present, group_by)
                raise DataFormatError(
                    f"--season {g}={a}: no group {g!r} in the data's {group_by!r} column; "
                    f"present: {', '.join(present)}"
                )
            mapping[name] = anchor_text(a)
    names = ss.meta[group_by].astype(str).to_numpy()
    anchors = ss.anchors
    # a group already on its season (in data of several seasons too) stays as it is
    mapping = {g: a for g, a in mapping.items() if set(anchors[names == g]) != {a}}
    if not mapping:
        return ss, observed, {}
    if raw is not None:
        return (*_recomposited(ss, observed, raw, mapping, group_by, echo), mapping)
    moved = align_seasons(ss, mapping, group_by=group_by)
    if observed is not ss:
        return moved, align_seasons(observed, mapping, group_by=group_by), mapping
    return moved, moved, mapping


def _recomposited(
    ss: SeriesSet,
    observed: SeriesSet,
    raw: Observations,
    mapping: Mapping[str, str],
    group_by: str,
    echo: Callable[[str], None] | None,
) -> tuple[SeriesSet, SeriesSet]:
    """Each group of ``mapping`` composited again from its raw observations on a grid of
    the same kind starting on its anchor (the season ending in each sample's label year), the
    other samples as they are; samples without an observation in the new season are dropped."""
    from cropglobe.summary import infer_grid

    names = ss.meta[group_by].astype(str).to_numpy()
    ids = ss.meta["sample_id"].astype(str).to_numpy()
    moved = np.isin(names, list(mapping))
    filled, unfilled = [ss.subset(~moved)], [observed.subset(~moved)]
    for g, a in mapping.items():
        rows = names == g
        mine = raw.select(raw.samples["sample_id"].astype(str).isin(ids[rows]).to_numpy())
        grid = infer_grid(raw, anchor=a)
        if grid.edges != ss.grid.edges:  # months of another anchor: the days of the others
            grid = TimeGrid(ss.grid.edges, a, "custom")
        f, o = _composited(mine, grid)
        if f.bands != ss.bands:  # the models' --bands (the observed set keeps its own)
            f = f.select_bands(ss.bands)
        if o.bands != observed.bands:
            o = o.select_bands(observed.bands)
        # the group's metadata as the experiment knows it (its name as text), with the new
        # season year from the composite (unless the groups are years: a group keeps its name)
        at = pd.Index(ids[rows]).get_indexer(f.meta["sample_id"].astype(str))
        meta = ss.meta[rows].iloc[at].reset_index(drop=True)
        if "year" in f.meta.columns and group_by != "year":
            meta["year"] = f.meta["year"].to_numpy()
        lost = int(rows.sum()) - f.n_samples
        if lost and echo:
            echo(f"seasons: {g}: {lost} samples hold no observation in their season from {a}")
        filled.append(dataclasses.replace(f, meta=meta))
        unfilled.append(dataclasses.replace(o, meta=meta))
    return (
        SeriesSet.concat([p for p in filled if p.n_samples], mixed_seasons=True),
        SeriesSet.concat([p for p in unfilled if p.n_samples], mixed_seasons=True),
    )


def _season_notes(
    observed: SeriesSet,
    group_by: str,
    groups: Sequence[str],
    window: tuple[int, int] | None,
) -> list[str]:
    """One line per group whose season looks unaligned (its class NDVI peaks fall outside the
    models' window, and another season anchor would bring them in: a southern country on a
    calendar-year grid), with the fix (``--season GROUP=MM-DD``; see
    :func:`cropglobe.composite.season_findings`). Groups with only a class or two just outside
    the window are not named here (``cropglobe info`` lists them): winter wheat peaking in late
    April is what the paper's window does."""
    from cropglobe.composite import season_findings
    from cropglobe.errors import BandError

    names = observed.meta[group_by].astype(str).to_numpy()
    sub = observed.subset(np.isin(names, list(groups)))
    if sub.n_samples == 0:
        return []
    grid = sub.grid
    span = window if window is not None else (int(grid.edges[0]), int(grid.edges[-1]) - 1)
    try:
        found = season_findings(sub, window=span, group_by=group_by)
    except (BandError, ParameterError) as exc:  # no NDVI, or a window the check cannot use
        logger.debug("season check skipped: %s", exc)
        return []
    return [
        f"{f.message}. Fix: rerun with --season {f.group}={f.suggested_anchor} (or --season "
        "auto): its season then starts on that day and the models compare it day of season "
        "against day of season"
        for f in found
        if f.unaligned and f.suggested_anchor
    ]


def _day_ranges(days: NDArray[np.float64], grid: TimeGrid) -> str:
    """``121–151, 243–334``: runs of consecutive grid steps (given by their centres) as day
    ranges of their bins."""
    edges = np.asarray(grid.edges)
    index = np.searchsorted(np.asarray(grid.centers), days)
    parts, start = [], None
    for k, i in enumerate(index):
        if start is None:
            start = i
        if k + 1 == len(index) or index[k + 1] != i + 1:
            parts.append(f"{int(edges[start])}–{int(edges[i + 1]) - 1}")
            start = None
    return ", ".join(parts)


#: the most pairs or groups a line of the plan lists
_LISTED = 12


def _pairs_text(pairs: Sequence[Sequence[str]]) -> str:
    """``AUS → BEL, ARG → CHN``, cut as :func:`_names_text` cuts (config.json's
    ``skip_pairs`` holds them all)."""
    return _names_text([f"{s} → {t}" for s, t in pairs])


def _names_text(names: Sequence[str]) -> str:
    """``ARG, BEL``; past :data:`_LISTED` names, the first of them and the count."""
    more = len(names) - _LISTED
    return ", ".join(names[:_LISTED]) + (f" … ({len(names)} in all)" if more > 0 else "")


def _row_suffix_notes(runs: pd.DataFrame, config: ExperimentConfig) -> list[str]:
    """One line explaining each kind of evaluation-only row the report holds."""
    names = set(runs["method"]) if len(runs) else set()
    notes = []
    if any(str(m).endswith("+prior") for m in names):
        notes.append(
            "Rows METHOD+prior: the same trained models, posteriors re-weighted to each "
            "target's class mix as estimated by EM from the unlabelled target predictions "
            "(no target labels)."
        )
    if any(str(m).endswith("+tta") for m in names):
        shifts = ", ".join(f"{v:+g}" if v else "0" for v in config.tta)
        notes.append(
            "Rows METHOD+tta: the same trained models with test-time shift averaging: each "
            f"sample's window moved by {shifts} days and the probabilities averaged (no target "
            "labels, no target statistics)."
        )
    if any(str(m).endswith("+tta+prior") for m in names):
        notes.append(
            "Rows METHOD+tta+prior: both — the shift-averaged probabilities re-weighted to the "
            "class mix EM estimates from them."
        )
    return notes


def _count(n: int, noun: str) -> str:
    """``1 method``, ``2 methods``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _applicability_runs(ss: SeriesSet, config: ExperimentConfig, out: Path) -> pd.DataFrame:
    """Each finished run's overall accuracy on the target samples inside and outside its
    source's range (dissimilarity ≤ 1 / > 1 from a training reference of the source,
    :mod:`cropglobe.evaluate.applicability`), scored by the paper's rules as the run was.

    Returns:
        One row per (method, source, target, seed): ``n_inside``, ``n_outside`` (samples
        scored), ``oa_inside``, ``oa_outside`` (percent; NaN where none is scored). Plain
        methods only (their saved predictions; not the ``+tta`` / ``+prior`` rescoring).
    """
    from cropglobe.errors import LabelError
    from cropglobe.evaluate.applicability import TrainingReference
    from cropglobe.evaluate.metrics import score_transfer
    from cropglobe.evaluate.transfer import _read_predictions, _read_run, _run_dir

    col = config.group_by
    groups = ss.meta[col].astype(str).to_numpy()
    classes = list(ss.classes)
    rows: list[dict[str, Any]] = []
    skipped = {(str(s), str(t)) for s, t in config.skip_pairs}
    for source in config.sources:
        try:
            reference = TrainingReference.fit(ss.subset(groups == source), config.window)
        except CropGlobeError as exc:
            logger.info("no applicability scores for source %s: %s", source, exc)
            continue
        outside: dict[str, dict[tuple[str, int], bool]] = {}
        rules: dict[str, Any] = {}
        for t in config.targets:
            if t == source or (source, t) in skipped or not (groups == t).any():
                continue
            tss = ss.subset(groups == t)
            far = reference.dissimilarity(tss) > 1.0
            # keyed by sample id and repeat: a spectra table's point seen on two days is two
            # rows of one sample id, each inside or outside on its own
            outside[t] = dict(zip(_row_keys(tss.meta["sample_id"]), far.tolist(), strict=True))
            rules[t] = _country_rules(tss)
        for method in config.methods:
            for seed in config.seeds:
                rdir = _run_dir(out, method, source, seed)
                if not (rdir / "metrics.json").is_file():
                    continue
                model_classes = [classes.index(c) for c in _read_run(rdir / "metrics.json")[
                    "model_classes"]]  # fmt: skip
                preds = _read_predictions(rdir)
                for t, far_of in outside.items():
                    frame = preds[preds["target"].astype(str) == t]
                    ids = frame["sample_id"].astype(str)
                    far = np.array([far_of.get(k, False) for k in _row_keys(ids)], dtype=np.bool_)
                    row: dict[str, Any] = {"method": method, "source": source, "target": t,
                                           "seed": seed}  # fmt: skip
                    for side, mask in (("inside", ~far), ("outside", far)):
                        rule = rules[t]
                        country = ids[mask].map(rule).fillna("").to_numpy() if isinstance(
                            rule, dict) else rule  # fmt: skip
                        try:
                            s = score_transfer(
                                frame["y_true"].to_numpy(dtype=np.int64)[mask],
                                frame["y_pred"].to_numpy(dtype=np.int64)[mask],
                                model_classes=model_classes,
                                target=country,
                                classes=classes,
                            )
                            row[f"n_{side}"], row[f"oa_{side}"] = s["n_scored"], 100 * s["oa"]
                        except LabelError:  # no sample of a class the model can output
                            row[f"n_{side}"], row[f"oa_{side}"] = 0, np.nan
                    rows.append(row)
    columns = ["method", "source", "target", "seed", "n_inside", "oa_inside", "n_outside",
               "oa_outside"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _calibration_rules(
    ss: SeriesSet, config: ExperimentConfig
) -> dict[str, str | dict[str, str] | None]:
    """What each group's samples collapse by when scored, as the runs scored them
    (``_Experiment.country_rules``): the group's one country, ``{sample_id: country}`` for a
    group of several, None when unknown."""
    from cropglobe.evaluate.transfer import _group_countries

    groups = ss.meta[config.group_by].astype(str).to_numpy()
    countries = _group_countries(ss, groups, config.group_by)
    rules: dict[str, str | dict[str, str] | None] = {}
    for g in dict.fromkeys([*config.targets, *config.sources]):
        held = countries.get(g, ())
        if len(held) == 1:
            rules[g] = held[0]
        elif len(held) > 1 and "country" in ss.meta.columns:
            rows = groups == g
            ids = ss.meta["sample_id"][rows].astype(str)
            names = ss.meta["country"][rows].fillna("").astype(str)
            rules[g] = dict(zip(ids, names, strict=True))
        else:
            rules[g] = None
    return rules


def _row_keys(ids: pd.Series) -> list[tuple[str, int]]:
    """``(sample_id, n)`` of each row: its id and how many rows before it hold that id (the
    predictions of a target keep its rows' order)."""
    text = ids.astype(str).reset_index(drop=True)
    return list(zip(text, text.groupby(text).cumcount().tolist(), strict=True))


def _country_rules(samples: SeriesSet) -> str | dict[str, str] | None:
    """What the scoring collapses a target's samples by (as a run does): the group's one
    country, sample id -> country when it holds several, None when unknown."""
    if "country" not in samples.meta.columns:
        return None
    held = sorted(set(samples.meta["country"].dropna().astype(str)))
    if len(held) == 1:
        return held[0]
    if not held:
        return None
    ids = samples.meta["sample_id"].astype(str)
    return dict(zip(ids, samples.meta["country"].fillna("").astype(str), strict=True))
