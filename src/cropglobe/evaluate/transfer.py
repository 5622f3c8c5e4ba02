"""Transfer experiments: train in one group (country, region, year), test in others.

An experiment is a dataset, a grouping column, sources, targets, methods and seeds. Each
(method, source, seed) run trains once and predicts every target; it is a folder

    OUTPUT/runs/{method}/{source}/seed{seed}/
        model/                the trained model folder (neural methods)
        predictions.parquet   target, sample_id, y_true, y_pred, p_{class}…
        metrics.json          per-target scores (written last: its presence marks the run done)
                              and the temperature fitted on the source's validation split
                              (neural runs; :mod:`cropglobe.evaluate.calibration`)

so that a rerun skips finished runs and an interrupted experiment continues where it stopped.
``OUTPUT/config.json`` records the experiment; an output folder holding a different
experiment's runs is refused rather than mixed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe._fs import LOCK_NAME, atomic_path, folder_lock, json_default, safe_name
from cropglobe.classes import country_table
from cropglobe.errors import CropGlobeError, DataFormatError, LabelError, ParameterError
from cropglobe.evaluate.adapt import (
    ADAPTABLE,
    adapt_posteriors,
    estimate_target_prior,
    vanished_classes,
)
from cropglobe.evaluate.metrics import score_transfer
from cropglobe.evaluate.scenarios import scenario
from cropglobe.models.folder import DEFAULT_TTA_SHIFTS
from cropglobe.series import SeriesSet

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "check_plan",
    "collect_runs",
    "run_transfer",
]

logger = logging.getLogger(__name__)


class ExperimentMismatchError(CropGlobeError, ValueError):
    """The output folder holds runs of a different experiment."""


#: fields of the plan (what runs, what is scored), free to change between reruns
PLAN_FIELDS = (
    "sources",
    "targets",
    "methods",
    "seeds",
    "device",
    "precision",  # checked as the precision each run trained in (see _check_precision)
    "adapt_prior",
    "tta",
    "skip_pairs",
    "read_options",  # how the data were read: the group fingerprints say whether they changed
    "where",  # which rows were kept: likewise
    "seasons",  # groups re-anchored: likewise (a group's grid is part of its fingerprint)
)


@dataclass
class ExperimentConfig:
    """What defines an experiment (saved as ``config.json``).

    Attributes:
        sources: source groups (values of ``group_by``).
        targets: target groups; a source is never its own target unless ``within`` is set.
        methods: method names (see :func:`cropglobe.evaluate.methods.available_methods`).
        seeds: random seeds, one run per (method, source, seed).
        group_by: metadata column holding the groups (``country``, ``region``, ``year``).
        protocol: ``"clean"`` (held-out validation split) or ``"paper"`` (the release's quirks:
            de-duplication, and CropNet trained on 100 % of the source with validation on the
            same samples and offline augmentation, as its CropNet script; the other neural
            methods keep a held-out split, as the release's baselines do).
        epochs: training epochs of neural methods.
        batch_size: mini-batch size of neural methods.
        lr: Adam learning rate of neural methods (the paper: 1e-4).
        window: day-of-season window (start, end) the models see; None = the whole grid.
        device: torch device for neural methods.
        data_fingerprint: SHA-256 of the whole data (:meth:`SeriesSet.fingerprint`), as
            experiments saved before ``group_fingerprints`` recorded it; empty otherwise.
        group_fingerprints: SHA-256 of each group's samples (sources and targets), so that
            adding a group (a country's file) leaves finished runs valid while a change to a
            group they used is refused.
        within: also score each source on a held-out 20 % of itself, with a second model
            trained on the other 80 % (within-country baseline); the transfer scores still
            come from the model trained on the whole source. Identical samples stay on one
            side of the hold-out (:func:`within_holdout`).
        precision: ``"auto"`` (bf16 autocast on CUDA and on CPUs with native bf16, float32
            elsewhere), ``"fp32"`` or ``"bf16"`` (autocast on any device).
        read_options: the settings the data's reader was given (``sample_column=`` …), for
            the record; not part of the identity (the data's fingerprints are).
        where: the metadata values the samples were selected by before grouping
            (``{"region": ["Fergana"]}``, see :meth:`SeriesSet.where`), for the record; not
            part of the identity: the fingerprint of each group's samples is, so runs of a
            group whose samples the selection changed are not reused.
        seasons: groups moved to a season of their own (group -> ``"MM-DD"`` anchor:
            season-aligned transfer, the models comparing days of season), for the record;
            not part of the identity: a group's fingerprint holds its grid.
        extra: your own notes on the experiment (JSON-ready), saved in ``config.json``; no
            method reads them, but they are part of its identity, so a folder holding an
            experiment with other notes is refused as a different one.
        adapt_prior: also score neural methods after adapting their posteriors to each
            target's class mix, estimated without labels (:mod:`cropglobe.evaluate.adapt`);
            reported as ``METHOD+prior``. Evaluation only: finished runs are rescored from their
            saved predictions, nothing is retrained.
        tta: test-time shift averaging for neural methods on time series: also score each
            target with the probabilities averaged over these window shifts in days
            (:func:`cropglobe.models.folder.shift_averaged_proba`); reported as
            ``METHOD+tta`` (and ``METHOD+tta+prior`` with ``adapt_prior``). Evaluation
            only: finished runs are rescored from their saved models. Empty: off.
        skip_pairs: ``[source, target]`` pairs left out of the plan (a full matrix,
            ``--source all``, skips targets sharing no class with a source).
        model_options: hyperparameters of neural model families, e.g.
            ``{"cropnet": {"width": 64}}`` (a quarter of the paper's compute; the demo uses
            it); applied to every method of that family. Empty: the paper's models.
        feature_options: settings of computed feature families, for every method using them:
            ``{"harmonic": {"n_harmonics": 1, "omega": 1.0}}`` (:data:`FEATURE_OPTIONS`).
            Empty: the defaults (n = 3, ω = 1).
    """

    sources: list[str]
    targets: list[str]
    methods: list[str]
    seeds: list[int]
    group_by: str = "country"
    protocol: str = "clean"
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-4
    window: tuple[int, int] | None = (121, 334)
    device: str = "cpu"
    data_fingerprint: str = ""
    group_fingerprints: dict[str, str] = field(default_factory=dict)
    within: bool = False
    precision: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)
    adapt_prior: bool = False
    tta: list[float] = field(default_factory=list)
    skip_pairs: list[list[str]] = field(default_factory=list)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_options: dict[str, Any] = field(default_factory=dict)
    where: dict[str, list[Any]] = field(default_factory=dict)
    seasons: dict[str, str] = field(default_factory=dict)
    feature_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feature_options = check_feature_options(self.feature_options)
        from cropglobe.models.registry import MODELS

        neural = sorted(k for k, v in MODELS.items() if v[2] == "neural")
        for family, options in self.model_options.items():
            if family not in neural:
                raise ParameterError(
                    f"model options for {family!r}: only neural model families take them "
                    f"({', '.join(neural)}); the classical methods' settings are fixed (the "
                    "paper's), so that their runs compare across experiments"
                )
            if not isinstance(options, dict):
                raise ParameterError(
                    f"model options for {family!r} must be a dictionary of hyperparameters, "
                    f"got {options!r}"
                )
        # a group, method or seed named twice would be trained and counted twice
        self.sources = list(dict.fromkeys(self.sources))
        self.targets = list(dict.fromkeys(self.targets))
        self.methods = list(dict.fromkeys(self.methods))
        self.seeds = list(dict.fromkeys(self.seeds))

    def identity(self) -> dict[str, Any]:
        """The fields that must match for runs to be reused (not sources/targets/seeds lists)."""
        d = asdict(self)
        for key in PLAN_FIELDS:
            d.pop(key)
        d["window"] = list(self.window) if self.window else None
        return d


#: computed feature family -> its settings a transfer experiment takes, with their defaults
#: (those of :class:`cropglobe.features.Harmonics`)
FEATURE_OPTIONS: dict[str, dict[str, Any]] = {"harmonic": {"n_harmonics": 3, "omega": 1.0}}


def check_feature_options(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``options`` checked against :data:`FEATURE_OPTIONS` (one-line ParameterError naming
    the valid families, settings and values), as plain numbers."""
    out: dict[str, dict[str, Any]] = {}
    for family, given in options.items():
        known = FEATURE_OPTIONS.get(str(family))
        if known is None:
            raise ParameterError(
                f"feature options for {family!r}: only {', '.join(FEATURE_OPTIONS)} take "
                "options (the other features have no setting to choose)"
            )
        if not isinstance(given, Mapping):
            raise ParameterError(
                f"feature options for {family!r} must be a dictionary of settings, got {given!r}"
            )
        out[str(family)] = {}
        for name, value in given.items():
            if name not in known:
                raise ParameterError(
                    f"feature option {family}.{name}: unknown; {family} takes "
                    f"{', '.join(f'{family}.{k} (default {v})' for k, v in known.items())}"
                )
            ok = (
                isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 12
                if name == "n_harmonics"
                else isinstance(value, int | float)
                and not isinstance(value, bool)
                and 0 < float(value) <= 12
            )
            if not ok:
                raise ParameterError(
                    f"feature option {family}.{name}={value!r}: expected "
                    + (
                        "a whole number of harmonics from 0 to 12 (e.g. 1 or 2)"
                        if name == "n_harmonics"
                        else "a frequency in cycles per year above 0 and at most 12 (e.g. 1.5)"
                    )
                )
            value = int(value) if name == "n_harmonics" else float(value)
            if value != known[name]:  # a default given is no change: the same features
                out[str(family)][str(name)] = value
    return {k: v for k, v in out.items() if v}


@dataclass
class ExperimentResult:
    """Everything an experiment produced, as tables."""

    runs: pd.DataFrame
    per_class: pd.DataFrame
    confusions: dict[tuple[str, str, str], np.ndarray]
    classes: tuple[str, ...]
    output: Path
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Experiment:
    """What every run of one experiment reads: the data, each sample's group, each group's
    countries (ISO3 codes when the table knows them; empty: none recorded) and the
    configuration."""

    data: SeriesSet
    groups: NDArray[Any]
    countries: Mapping[str, tuple[str, ...]]
    config: ExperimentConfig

    def group(self, name: str) -> SeriesSet:
        """The samples of group ``name``."""
        return self.data.subset(self.groups == name)

    def target(self, name: str, anchor: str) -> SeriesSet:
        """The samples of group ``name`` as a model whose season starts on ``anchor`` reads
        them: in season-aligned data a group of another season is compared day of season
        against day of season (:meth:`SeriesSet.on_anchor`)."""
        samples = self.group(name)
        return samples if samples.seasons == (anchor,) else samples.on_anchor(anchor)

    def scenario(self, source: str, target: str) -> str:
        """The scenario of the pair (see :func:`_scenario`)."""
        return _scenario(source, target, self.config.group_by, self.countries)

    def country_rules(self, target: str, samples: SeriesSet) -> str | NDArray[Any] | None:
        """What :func:`score_transfer` collapses ``samples`` of ``target`` by: the group's
        country, each sample's own country when the group holds several, None when unknown."""
        held = self.countries.get(target, ())
        if len(held) == 1:
            return held[0]
        if len(held) > 1 and "country" in samples.meta.columns:
            return samples.meta["country"].fillna("").astype(str).to_numpy()
        return None

    def scored(
        self,
        source: str,
        target: str,
        samples: SeriesSet,
        y_pred: NDArray[np.int64],
        model_classes: Sequence[int],
    ) -> dict[str, Any]:
        """:func:`_scored` of predictions for ``samples`` of ``target`` by a model trained in
        ``source``."""
        return _scored(
            samples.labels,
            y_pred,
            model_classes,
            self.country_rules(target, samples),
            self.data.classes,
            self.scenario(source, target),
        )


def _save_run(rdir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write a run's ``metrics.json`` atomically; returns the result as read back (JSON
    types: lists, not arrays)."""
    with atomic_path(rdir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=json_default))
    return dict(json.loads(json.dumps(result, default=json_default)))


def finished_runs(output: Path) -> list[Path]:
    """The ``metrics.json`` of every finished run under ``output``."""
    return sorted(output.glob("runs/*/*/seed*/metrics.json"))


def _check_model_options(
    family: str, options: dict[str, Any], data: SeriesSet, window: tuple[int, int] | None
) -> None:
    """Build the network with ``options`` and pass two samples through it, so that options
    that build no working network (a width of 0, a negative depth) fail before training."""
    import torch

    from cropglobe.models.registry import create_model

    one = data.subset(np.arange(data.n_samples) == 0)
    n_steps = one.select_window(*window).grid.n_steps if window else data.grid.n_steps
    given = ", ".join(f"{family}.{k}={v!r}" for k, v in options.items())
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # e.g. torch's "zero-element tensors" for width 0
            net = create_model(family, 2, data.n_bands, n_steps, **options)
            net.eval()(torch.zeros(2, data.n_bands, n_steps))
    except CropGlobeError:
        raise  # create_model's own one-line message
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ParameterError(
            f"--model-option {given} builds no working {family} network "
            f"({str(exc).splitlines()[0][:160]}); give values like the defaults (e.g. "
            "cropnet.width=64)"
        ) from None


def group_name(value: Any) -> str:
    """One group value as text: an integral float (a year read as floats, ``2020.0``) as the
    integer (``2020``), whatever else the column holds; anything else as ``str(value)``."""
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def resolve_groups(values: Sequence[Any], present: Sequence[str]) -> list[str]:
    """Groups asked for (sources, targets) as the data names them: a number, or its text,
    names the group of that value (``2020.0`` and ``"2020.0"`` name ``2020``) unless the data
    holds a group spelled as given."""
    known = set(present)
    out = []
    for value in values:
        name = group_name(value)
        if name not in known:
            try:
                as_number = group_name(float(name))
            except ValueError:
                as_number = name
            name = as_number if as_number in known else name
        out.append(name)
    return out


def group_names(meta: pd.DataFrame, group_by: str) -> NDArray[np.str_]:
    """Each sample's group as text (:func:`group_name`: ``2020``, not ``2020.0``, for a year
    read as floats, value by value, so that a group's name does not depend on the others).

    Raises:
        DataFormatError: the column is missing, or some samples have no value in it.
    """
    if group_by not in meta.columns:
        import difflib

        columns = [str(c) for c in meta.columns]
        near = difflib.get_close_matches(str(group_by), columns, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise DataFormatError(
            f"data has no metadata column {group_by!r} to group by{hint}; give one of its "
            f"columns (--group-by): {', '.join(columns)}"
        )
    col = meta[group_by]
    empty = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        first = int(np.argmax(empty))
        name = meta["sample_id"].iloc[first] if "sample_id" in meta.columns else first
        raise DataFormatError(
            f"{int(empty.sum())} of {len(col)} samples have no {group_by!r} value (the first: "
            f"sample {name}); fill in their {group_by!r} or leave those samples out of the data"
        )
    codes, uniques = pd.factorize(col)
    names = np.asarray([group_name(v) for v in uniques], dtype=np.str_)
    return names[codes]


def _foreign(output: Path) -> list[Path]:
    """What a folder holds besides the lock of an experiment running in it."""
    return [p for p in output.iterdir() if p.name != LOCK_NAME]


def _float_spellings(present: Sequence[str]) -> dict[str, str]:
    """``{"2020.0": "2020"}`` for each integer-named group: how a group column of floats
    named it before :func:`group_name` (an earlier cropglobe, or data where one value of the
    column was not integral)."""
    out = {}
    for g in present:
        try:
            number = float(g)
        except ValueError:
            continue
        old = str(number)
        if old != g and old not in present and group_name(number) == g:
            out[old] = g
    return out


def _renamed_run(result: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """A run's metrics with its group names (source; targets of every score table) renamed."""

    def keys(scores: Mapping[str, Any]) -> dict[str, Any]:
        return {names.get(t, t): v for t, v in scores.items()}

    out = dict(result, source=names.get(result["source"], result["source"]))
    out["targets"] = keys(result["targets"])
    if isinstance(result.get("best_epoch_targets"), dict):
        out["best_epoch_targets"] = keys(result["best_epoch_targets"])
    if "adapted" in result:
        out["adapted"] = {kind: keys(scores) for kind, scores in result["adapted"].items()}
    return out


def _adopt_float_spelled_runs(
    output: Path, config: ExperimentConfig, data: SeriesSet, groups: NDArray[np.str_]
) -> dict[str, str]:
    """Rename the finished runs (and config.json's names) of groups spelled as floats
    (``runs/METHOD/2020.0/``, an integral year read as floats) to the groups' names now
    (``2020``), so that a rerun reuses them instead of training them again.

    Called once :func:`_check_output` has accepted the folder. Only runs of this data are
    adopted: the config's ``group_by`` must match and each group's recorded fingerprint (or
    the whole data's, for older configs) must be that of the group now; otherwise they are
    left as they are (and trained anew under the new name). Each run's files are rewritten
    before its folder is renamed, so an interrupted adoption is taken up again on the next
    run.

    Returns:
        The names adopted, old -> new (empty when none).
    """
    path = output / "config.json"
    names = _float_spellings(sorted(set(groups.tolist())))
    if not names or not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
        identity = saved["identity"]
        old_groups = identity.get("group_fingerprints") or {}
        if not isinstance(old_groups, dict) or identity.get("group_by") != config.group_by:
            return {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}  # damaged, and no run finished (else _check_output refused it)
    whole = str(identity.get("data_fingerprint") or "")
    adopt = {}
    for old, new in names.items():
        if old not in old_groups and not any((output / "runs").glob(f"*/{safe_name(old)}")):
            continue  # nothing spelled so
        if old in old_groups:
            same = old_groups[old] == data.subset(groups == new).fingerprint()
        else:
            same = bool(whole) and whole == data.fingerprint()
        if same:
            adopt[old] = new
    if not adopt:
        return {}
    for method_dir in sorted(p for p in (output / "runs").glob("*") if p.is_dir()):
        for old, new in adopt.items():
            legacy = method_dir / safe_name(old)
            for rdir in sorted(legacy.glob("seed*")):
                target = method_dir / safe_name(new) / rdir.name
                if target.exists() or not (rdir / "metrics.json").is_file():
                    continue  # a run of that name now exists, or an unfinished one: left
                result = _read_run(rdir / "metrics.json")
                if (rdir / "predictions.parquet").is_file():
                    frame = _read_predictions(rdir)
                    frame["target"] = frame["target"].astype(str).replace(adopt)
                    with atomic_path(rdir / "predictions.parquet") as tmp:
                        frame.to_parquet(tmp, index=False)
                _save_run(rdir, _renamed_run(result, adopt))
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(rdir, target)
                logger.info("adopted %s as %s (group %s, once spelled %s)", rdir, target, new, old)
            with contextlib.suppress(OSError):  # left when it still holds something
                legacy.rmdir()

    def renamed(mapping: Any) -> Any:
        return {adopt.get(k, k): v for k, v in mapping.items()} if isinstance(mapping, dict) else {}

    def renamed_list(names: Any) -> Any:
        return [adopt.get(str(g), g) for g in names] if isinstance(names, list) else names

    identity["group_fingerprints"] = renamed(old_groups)
    plan = saved.get("config")
    if isinstance(plan, dict):
        plan["group_fingerprints"] = renamed(plan.get("group_fingerprints") or {})
        plan["sources"] = renamed_list(plan.get("sources"))
        plan["targets"] = renamed_list(plan.get("targets"))
        if isinstance(plan.get("skip_pairs"), list):
            plan["skip_pairs"] = [renamed_list(pair) for pair in plan["skip_pairs"]]
    if isinstance(saved.get("group_countries"), dict):
        saved["group_countries"] = renamed(saved["group_countries"])
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(saved, indent=2, default=str))
    return adopt


def _check_output(
    output: Path, config: ExperimentConfig, whole_fingerprint: Callable[[], str]
) -> None:
    """Refuse an output folder holding other files or another experiment's finished runs.

    Groups' data are compared group by group (a group added since is no conflict);
    ``whole_fingerprint`` gives the whole data's hash for a config saved before that.
    """
    path = output / "config.json"
    if not path.exists() and output.is_dir() and any(_foreign(output)):
        raise ExperimentMismatchError(
            f"{output} already holds other files and no experiment (config.json); give a new "
            "or empty --output folder so that nothing in it is mixed up or overwritten"
        )
    if output.exists() and not output.is_dir():
        raise ExperimentMismatchError(f"{output} is a file; give a folder for the experiment")
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
        if not isinstance(old, dict) or not isinstance(old.get("identity", {}), dict):
            raise ValueError("not an experiment's config")
        old_groups = old.get("identity", {}).get("group_fingerprints") or {}
        if not isinstance(old_groups, dict):
            raise ValueError("not an experiment's config")
    except ValueError:  # JSONDecodeError included
        if not finished_runs(output):  # nothing to protect: the new config replaces it
            logger.info("%s is damaged and no run has finished; replacing it", path)
            return
        raise ExperimentMismatchError(
            f"{path} is damaged (not an experiment's config); restore it, or choose another "
            "--output folder (delete this one to start over)"
        ) from None
    # Fields missing from an older config.json take their defaults, so that adding a
    # field with a default never invalidates finished runs.
    defaults = json.loads(json.dumps(ExperimentConfig([], [], [], []).identity()))
    old_id = {**defaults, **old.get("identity", {})}
    new_id = json.loads(json.dumps(config.identity()))
    old_whole = old_id.pop("data_fingerprint", "")
    new_id.pop("data_fingerprint", None)
    old_id.pop("group_fingerprints", None)
    old_id.pop("precision", None)  # identity of older configs; now checked run by run
    new_groups = new_id.pop("group_fingerprints", {})
    diff = sorted(k for k in set(old_id) | set(new_id) if old_id.get(k) != new_id.get(k))
    diff = _neural_settings_that_matter(output, diff, old_id, new_id)
    old_fo, new_fo = old_id.get("feature_options") or {}, new_id.get("feature_options") or {}
    changed_fo = {f for f in FEATURE_OPTIONS if old_fo.get(f) != new_fo.get(f)}
    if "feature_options" in diff and not _feature_families_run(output) & changed_fo:
        diff.remove("feature_options")  # no finished run computed the features changed
    if old_groups:
        changed = sorted(
            g for g in set(old_groups) & set(new_groups) if old_groups[g] != new_groups[g]
        )
        diff += [f"data of {g}" for g in changed]
    elif old_whole and old_whole != whole_fingerprint():
        diff.append("data_fingerprint")
    if diff:
        if not finished_runs(output):  # e.g. a first try stopped before any run finished
            logger.info("no run in %s has finished; its new configuration replaces the old", output)
            return
        saved = old.get("config")
        old_where = (saved.get("where") if isinstance(saved, dict) else None) or {}
        old_seasons = (saved.get("seasons") if isinstance(saved, dict) else None) or {}
        data_changed = any(d.startswith("data of ") for d in diff)
        selection = (
            f"; the samples kept changed with the selection (where {old_where or 'none'} "
            f"then, {config.where or 'none'} now)"
            if data_changed and old_where != config.where
            else ""
        ) + (
            f"; the groups' seasons changed (--season {old_seasons or 'none'} then, "
            f"{config.seasons or 'none'} now)"
            if data_changed and old_seasons != config.seasons
            else ""
        )
        values = "".join(
            f"; {k}: {_setting_text(old_id.get(k))} then, {_setting_text(new_id.get(k))} now"
            for k in diff
            if k in old_id or k in new_id
        )
        raise ExperimentMismatchError(
            f"{output} holds runs of a different experiment (differs in {diff}{values}"
            f"{selection}); "
            "choose another --output folder or delete the old one (its runs were left "
            "untouched)"
        )
    # groups the folder's earlier runs used stay recorded for later reruns
    config.group_fingerprints = {**old_groups, **config.group_fingerprints}


def _setting_text(value: object, most: int = 60) -> str:
    """A setting of config.json for a one-line message: JSON, cut past ``most`` characters."""
    text = "none" if value is None else json.dumps(value, default=str)
    return text if len(text) <= most else text[: most - 1] + "…"


def _feature_families_run(output: Path) -> set[str]:
    """The computed feature families (``harmonic`` …) of the finished runs under ``output``;
    every family when a run's method is unknown (so that every setting counts)."""
    from cropglobe.evaluate.methods import get_method

    families: set[str] = set()
    for path in finished_runs(output):
        try:
            families.add(get_method(json.loads(path.read_text())["method"]).features)
        except (ValueError, KeyError, TypeError, CropGlobeError):
            return set(FEATURE_OPTIONS)
    return families


#: identity fields only neural training reads
_NEURAL_ONLY = ("epochs", "batch_size", "lr", "model_options")


def _neural_settings_that_matter(
    output: Path, diff: list[str], old_id: dict[str, Any], new_id: dict[str, Any]
) -> list[str]:
    """``diff`` without the neural settings no finished run depends on: a folder of random
    forests takes any epochs, and model options only matter for the model families that
    have finished runs, compared with each family's defaults filled in."""
    if not set(diff) & set(_NEURAL_ONLY):
        return diff
    from cropglobe.evaluate.methods import get_method

    families: set[str] = set()
    for path in finished_runs(output):
        try:
            families.add(get_method(json.loads(path.read_text())["method"]).model)
        except (ValueError, KeyError, TypeError, CropGlobeError):
            return diff  # a run of unknown method: every setting counts
    neural = families & ADAPTABLE
    keep = [k for k in diff if k not in _NEURAL_ONLY or (neural and k != "model_options")]
    old_mo, new_mo = old_id.get("model_options") or {}, new_id.get("model_options") or {}
    if "model_options" in diff and any(
        _with_defaults(f, old_mo.get(f, {})) != _with_defaults(f, new_mo.get(f, {})) for f in neural
    ):
        keep.append("model_options")
    return sorted(keep)


def _with_defaults(family: str, options: dict[str, Any]) -> dict[str, Any]:
    """A model family's hyperparameters: ``options`` over the model's defaults (JSON form)."""
    import inspect

    from cropglobe.models.registry import model_class

    params = inspect.signature(model_class(family)).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return dict(json.loads(json.dumps({**defaults, **options}, default=str)))


def _write_config(
    output: Path, config: ExperimentConfig, countries: Mapping[str, tuple[str, ...]]
) -> None:
    """Save the experiment's ``config.json`` (once every check before training has passed),
    with each group's countries, from which :func:`collect_runs` tags pairs."""
    payload = {
        "identity": config.identity(),
        "config": asdict(config),
        "group_countries": {g: list(c) for g, c in countries.items()},
    }
    with atomic_path(output / "config.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str))


def _row(
    method: str,
    source: str,
    target: str,
    seed: int,
    s: dict[str, Any],
    result: dict[str, Any],
    scenario: str,
) -> dict[str, Any]:
    """One row of the runs table. ``scenario`` is the pair's tag now: the one a run saved
    may predate a change of the country table, and seeds of one pair must agree."""
    return {
        "method": method,
        "source": source,
        "target": target,
        "seed": seed,
        "scenario": scenario,
        "oa": s["oa"],
        "macro_f1": s["macro_f1"],
        "weighted_f1": s["weighted_f1"],
        "n_scored": s["n_scored"],
        "n_excluded": s["n_excluded"],
        "n_classes_scored": len(s["present"]),
        "train_seconds": result.get("train_seconds", 0.0),
        "precision_used": result.get("training", {}).get("precision_used"),
    }


def _add_prior_scores(exp: _Experiment, result: dict[str, Any], rdir: Path) -> dict[str, Any]:
    """Score a finished run's saved target predictions after prior adaptation; the scores are
    added to its ``metrics.json`` (under ``adapted.prior``) and the updated result returned."""
    preds = _read_predictions(rdir)
    classes = exp.data.classes
    model_classes = [classes.index(c) for c in result["model_classes"]]
    cols = [f"p_{classes[i]}" for i in model_classes]
    adapted: dict[str, Any] = {}
    for target, frame in preds.groupby("target", sort=True):
        target = str(target)
        if target == result["source"] or target not in result["targets"]:
            continue  # the within-source hold-out has no class-mix shift to adapt to
        samples = exp.group(target)  # in the order its predictions were saved
        rules = exp.country_rules(target, samples) if samples.n_samples == len(frame) else None
        adapted[target] = _prior_scores(
            frame[cols].to_numpy(dtype=np.float64),
            frame["y_true"].to_numpy(),
            model_classes,
            classes,
            rules,
            exp.scenario(result["source"], target),
        )
    result = {**result, "adapted": {**result.get("adapted", {}), "prior": adapted}}
    return _save_run(rdir, result)


def _scored(
    y_true: NDArray[np.int64],
    y_pred: NDArray[np.int64],
    model_classes: Sequence[int],
    country: str | NDArray[Any] | None,
    classes: Sequence[str],
    scenario: str,
) -> dict[str, Any]:
    """:func:`score_transfer` as a run stores it: JSON-ready, tagged with its scenario."""
    s = score_transfer(
        y_true, y_pred, model_classes=list(model_classes), target=country, classes=classes
    )
    s["confusion"] = s["confusion"].tolist()
    s["scenario"] = scenario
    return s


def _prior_scores(
    p: NDArray[np.float64],
    y_true: NDArray[np.int64],
    model_classes: list[int],
    classes: Sequence[str],
    country: str | NDArray[Any] | None,
    scenario: str,
) -> dict[str, Any]:
    """Scores of posteriors ``p`` (N, K model classes) after EM prior adaptation."""
    prior, iterations = estimate_target_prior(p)
    pred = np.asarray(model_classes)[adapt_posteriors(p, prior).argmax(axis=1)]
    s = _scored(y_true, pred, model_classes, country, classes, scenario)
    s["estimated_prior"] = {classes[i]: float(v) for i, v in zip(model_classes, prior, strict=True)}
    s["em_iterations"] = iterations
    s["n_adapted"] = int(p.shape[0])
    s["vanished_classes"] = _vanished_of(s)
    return s


def _add_tta_scores(exp: _Experiment, result: dict[str, Any], rdir: Path) -> dict[str, Any]:
    """Score a finished run's saved model on every target with test-time shift averaging;
    the scores are added to its ``metrics.json`` (under ``adapted.tta``). With
    ``config.adapt_prior`` the shift-averaged posteriors are also prior-adapted
    (``adapted.tta_prior``, rows ``METHOD+tta+prior``)."""
    from cropglobe.models.folder import shift_averaged_proba

    data, config = exp.data, exp.config
    model, card = _load_run_model(rdir)
    model_classes = [data.classes.index(c) for c in card.classes]
    cols = np.asarray(model_classes, dtype=np.int64)
    shifts = [float(v) for v in config.tta]
    adapted: dict[str, Any] = {}
    both: dict[str, Any] = {}
    for target in _tta_targets(result, config):
        tset = exp.target(target, card.grid.anchor)
        proba = shift_averaged_proba(model, card, tset, config.tta, device=config.device)
        country = exp.country_rules(target, tset)
        scenario = exp.scenario(result["source"], target)
        s = _scored(
            tset.labels, cols[proba.argmax(axis=1)], model_classes, country, data.classes, scenario
        )
        s["shifts"] = shifts
        adapted[target] = s
        if config.adapt_prior:
            sp = _prior_scores(proba, tset.labels, model_classes, data.classes, country, scenario)
            both[target] = {**sp, "shifts": shifts}
    # tta_prior goes with tta: one left from other shifts would be scored with the wrong ones
    kept = {k: v for k, v in result.get("adapted", {}).items() if k not in ("tta", "tta_prior")}
    extra = {"tta": adapted, **({"tta_prior": both} if config.adapt_prior else {})}
    result = {**result, "adapted": {**kept, **extra}}
    return _save_run(rdir, result)


def _tta_targets(result: dict[str, Any], config: ExperimentConfig) -> list[str]:
    """The targets a run's shift-averaged scores cover: those the experiment asks for now
    that the run was scored on (the source's own hold-out is not a transfer)."""
    wanted = set(_scored_targets(config, result["source"])) - {result["source"]}
    return sorted(wanted & set(result["targets"]))


def _tta_applies(method: Any) -> bool:
    """Whether test-time shift averaging applies: a neural model reading the time series."""
    return bool(method.model in ADAPTABLE and method.features == "series")


def _vanished_of(scores: dict[str, Any]) -> list[str]:
    """Classes of an adapted score whose estimated share is worth under half a sample."""
    shares = scores.get("estimated_prior", {})
    if not shares:
        return []
    n = scores.get("n_adapted", scores["n_scored"] + scores.get("n_excluded", 0))
    flags = vanished_classes(list(shares.values()), n)
    return [c for c, g in zip(shares, flags, strict=True) if g]


def _vanished_notes(
    vanished: dict[tuple[str, str, str], dict[str, int]],
    adapted_runs: dict[tuple[str, str, str], int],
) -> list[str]:
    """One line per adapted method and pair naming the classes EM estimated at zero."""
    notes = []
    for (name, source, target), counts in sorted(vanished.items()):
        if not counts:
            continue
        n_runs = adapted_runs[(name, source, target)]
        listed = ", ".join(f"{c} ({k} of {n_runs} seeds)" for c, k in counts.items())
        notes.append(
            f"{name}, {source} → {target}: prior adaptation estimated a share of zero for "
            f"{listed}, so the adapted model never predicts them — right if they are absent "
            "from the target, a collapse of a rare class if not (compare with the unadapted row)."
        )
    return notes


def _run_dir(output: Path, method: str, source: str, seed: int) -> Path:
    return output / "runs" / safe_name(method) / safe_name(source) / f"seed{seed}"


def _scored_targets(config: ExperimentConfig, source: str) -> list[str]:
    """The groups a run trained in ``source`` is scored on."""
    skipped = {t for s, t in config.skip_pairs if s == source}
    targets = [t for t in config.targets if t != source and t not in skipped]
    return [*targets, source] if config.within else targets


def check_plan(data: SeriesSet, config: ExperimentConfig) -> None:
    """Refuse, before any training, an experiment with nothing to run or a target that
    cannot be scored.

    Raises:
        ParameterError: no method, source or seed, or a source with no target.
        LabelError: a target holding no sample of a class its source's model can output.
    """
    groups = group_names(data.meta, config.group_by)
    for what, values in (
        ("methods", config.methods),
        ("sources", config.sources),
        ("seeds", config.seeds),
    ):
        if not values:
            raise ParameterError(f"the experiment names no {what}; give at least one")
    for source in config.sources:
        if not _scored_targets(config, source):
            raise ParameterError(
                f"source {source!r} has no target (its only target is itself); add other "
                "targets or pass --within to score it on a held-out part of itself"
            )
        labels = data.labels
        own = np.unique(labels[(groups == source) & (labels >= 0)])
        if own.size < 2:
            held = (
                f"only samples of {data.classes[int(own[0])]}"
                if own.size
                else "no labelled sample (tables: a 'label' column)"
            )
            raise LabelError(
                f"source {source!r} holds {held}; a model needs at least 2 classes to learn "
                "from: choose another source, or check the data's labels"
            )
        for target in _scored_targets(config, source):
            if target != source and not np.isin(labels[groups == target], own).any():
                names = ", ".join(data.classes[int(c)] for c in own) or "none"
                raise LabelError(
                    f"target {target!r} has no sample of a class a model trained in {source!r} "
                    f"can output ({names}); drop it from the targets or choose a source that "
                    "shares classes with it"
                )
    _check_precomputed(data, groups, config)


def _check_precomputed(data: SeriesSet, groups: NDArray[Any], config: ExperimentConfig) -> None:
    """Methods reading the release's precomputed features find them for every sample of
    every group used (files present, row-aligned with the series), before any training."""
    from cropglobe.evaluate.methods import get_method, precomputed
    from cropglobe.features.embeddings import RELEASE_FEATURES, ReleaseFeatures

    used = np.isin(groups, [*config.sources, *config.targets])
    families = {RELEASE_FEATURES[m.features] for m in map(get_method, config.methods)
                if precomputed(m)}  # fmt: skip
    for family in sorted(families):
        ReleaseFeatures(family).fit(data.subset(used))


def _changed_feature_files(
    data: SeriesSet,
    groups: NDArray[Any],
    config: ExperimentConfig,
    method: Any,
    result: dict[str, Any],
) -> list[str]:
    """The countries whose precomputed feature files differ from those a finished run of
    ``method`` read, among the countries of the groups it is reported on now (its source and
    the targets asked for); runs saved without the record are taken as they are."""
    from cropglobe.evaluate.methods import precomputed
    from cropglobe.features.embeddings import RELEASE_FEATURES, file_digest
    from cropglobe.io.cropglobe_npz import cropglobe_feature_files

    read = result.get("feature_files")
    if not precomputed(method) or not isinstance(read, dict) or not read:
        return []
    root = data.attrs.get("root")
    if "country" in data.meta.columns:
        asked = np.isin(groups, [result["source"], *_scored_targets(config, result["source"])])
        used = set(data.meta["country"].astype(str).to_numpy()[asked])
        read = {cc: digest for cc, digest in read.items() if cc in used}
    if not root:
        return sorted(read)
    family = RELEASE_FEATURES[method.features]
    try:
        now = cropglobe_feature_files(root, family, sorted(read))
    except CropGlobeError:  # a file is gone: which one(s)
        now = {}
        for cc in read:
            with contextlib.suppress(CropGlobeError):
                now.update(cropglobe_feature_files(root, family, [cc]))
    return sorted(
        cc for cc, digest in read.items() if cc not in now or file_digest(now[cc]) != digest
    )


#: what a finished run's ``metrics.json`` holds, and what each target's scores hold
_RUN_KEYS = ("method", "source", "seed", "model_classes", "targets")
_SCORE_KEYS = (
    "scenario",
    "oa",
    "macro_f1",
    "weighted_f1",
    "n_scored",
    "n_excluded",
    "present",
    "per_class_f1",
    "confusion",
)


def _is_run(result: Any) -> bool:
    """Whether ``result`` has the shape of a finished run's metrics (keys and nesting)."""
    if not isinstance(result, dict) or any(k not in result for k in _RUN_KEYS):
        return False
    adapted = result.get("adapted", {})
    if not isinstance(adapted, dict):
        return False
    return all(
        isinstance(scores, dict)
        and all(isinstance(s, dict) and all(k in s for k in _SCORE_KEYS) for s in scores.values())
        for scores in (result["targets"], *adapted.values())
    )


def _read_run(path: Path) -> dict[str, Any]:
    """A finished run's ``metrics.json``; a damaged one is a clear error naming the fix."""
    try:
        result = json.loads(path.read_text())
        if not _is_run(result):
            raise ValueError("not a run's metrics")
    except ValueError:  # JSONDecodeError included
        raise DataFormatError(
            f"{path} is damaged (not a run's metrics); delete the run folder {path.parent} to "
            "redo that run"
        ) from None
    return result


def _missing_targets(result: dict[str, Any], config: ExperimentConfig) -> list[str]:
    """Targets the experiment now asks for that a finished run was not scored on."""
    return [t for t in _scored_targets(config, result["source"]) if t not in result["targets"]]


def _rescorable(method: Any) -> bool:
    """Whether a finished run can be scored on new targets from what it saved: a neural model
    on the time series keeps a complete model folder (classical runs keep no model, feature
    MLPs no fitted features, averaged runs not their best single epoch)."""
    return _tta_applies(method) and getattr(method, "average", None) is None


def _check_reused(
    rdir: Path, result: dict[str, Any], config: ExperimentConfig, method: Any
) -> list[str]:
    """A finished run must have been scored on every target the experiment now asks for, or
    be able to score the new ones: from its saved model (:func:`_add_target_scores`), or,
    for classical methods, by training it again (their training is deterministic given the
    seed, so the scores it had are reproduced). Returns the run (``folder: targets``) when it
    can do neither."""
    missing = _missing_targets(result, config)
    if missing and _retrained(method):
        _read_predictions(rdir)  # kept for the targets not asked for now: damaged fails now
        return []
    if not missing:
        return []
    # (a source's held-out part is never new here: ``within`` is part of the identity)
    if not _rescorable(method) or result["source"] in missing:
        return [f"{rdir} ({method.name}; new: {', '.join(missing)})"]
    _load_run_model(rdir)  # a damaged model folder fails now, before anything trains
    return []


def _retrained(method: Any) -> bool:
    """Whether a finished run of ``method`` asked for new targets is trained again: classical
    models keep no model to score them with, but train the same given the seed."""
    return method.model not in ADAPTABLE


def _run_precision(rdir: Path, result: dict[str, Any]) -> str | None:
    """The precision a finished neural run trained in (``fp32``/``bf16``), from its metrics
    or, for runs saved before they recorded it, its model card; None when unknown."""
    used = result.get("training", {}).get("precision_used")
    if used:
        return str(used)
    from cropglobe.models.folder import read_card

    try:
        return str(read_card(rdir / "model").training.get("precision_used") or "") or None
    except CropGlobeError:
        return None


def _check_precision(
    out: Path,
    plan: Sequence[tuple[str, str, int]],
    config: ExperimentConfig,
    methods: Mapping[str, Any],
) -> None:
    """Refuse to train neural runs in another precision than the folder's finished ones
    (whether this call reports them or not): bf16 and float32 train to different weights, and
    one mean ± std would mix them (``auto`` is bf16 on CUDA and CPUs with native bf16,
    float32 elsewhere)."""
    todo = [
        k
        for k in plan
        if methods[k[0]].model in ADAPTABLE and not (_run_dir(out, *k) / "metrics.json").exists()
    ]
    if not todo:
        return
    from cropglobe.models.inputs import resolve_device, resolve_precision

    now = resolve_precision(config.precision, resolve_device(config.device))
    other: dict[str, list[str]] = {}
    for path in finished_runs(out):
        used = _run_precision(path.parent, _read_run(path))
        if used is not None and used != now:
            other.setdefault(used, []).append("/".join(path.parent.parts[-3:]))
    if other:
        used, runs = next(iter(other.items()))
        raise ExperimentMismatchError(
            f"{len(runs)} finished run(s) in {out} trained in {used} ({', '.join(runs[:5])}"
            f"{' …' if len(runs) > 5 else ''}) but this call would train in {now} "
            f"(--precision {config.precision} on {config.device}); pass --precision {used} to "
            "go on in the same precision, or choose another --output folder"
        )


def _precision_note(precisions: Mapping[str, int]) -> list[str]:
    """A note when the report's neural runs trained in different precisions (a folder filled
    before cropglobe checked it)."""
    if len(precisions) < 2:
        return []
    counts = ", ".join(f"{n} in {p}" for p, n in sorted(precisions.items()))
    return [
        f"The neural runs of this report trained in different precisions ({counts}), so their "
        "means mix bf16 and float32 training; redo the runs of one precision to compare like "
        "with like."
    ]


def _load_run_model(rdir: Path) -> tuple[Any, Any]:
    """A finished run's saved model; missing or damaged is a clear error naming the fix."""
    from cropglobe.models.folder import load_model

    try:
        return load_model(rdir / "model")
    except CropGlobeError as exc:
        raise DataFormatError(
            f"the saved model of finished run {rdir} cannot be loaded to score it again "
            f"({str(exc).splitlines()[0]}); delete the run folder {rdir} to redo that run"
        ) from None


def _read_predictions(rdir: Path) -> pd.DataFrame:
    """A finished run's ``predictions.parquet``; missing or damaged is a clear error."""
    try:
        return pd.read_parquet(rdir / "predictions.parquet")
    except FileNotFoundError:
        raise DataFormatError(
            f"{rdir / 'predictions.parquet'} is missing from a finished run; delete the run "
            f"folder {rdir} to redo that run"
        ) from None
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataFormatError(
            f"{rdir / 'predictions.parquet'} is damaged ({type(exc).__name__}); delete the run "
            f"folder {rdir} to redo that run"
        ) from None


def _prediction_frame(
    target: str, tset: SeriesSet, y_pred: NDArray[np.int64], proba: NDArray[np.float64]
) -> pd.DataFrame:
    """One target's rows of ``predictions.parquet``: ids, truth, prediction, probabilities."""
    frame = pd.DataFrame(
        {
            "target": target,
            "sample_id": tset.meta["sample_id"].astype(str).to_numpy(),
            "y_true": tset.labels,
            "y_pred": y_pred,
        }
    )
    for k, cname in enumerate(tset.classes):
        frame[f"p_{cname}"] = proba[:, k].astype(np.float32)
    return frame


def _add_target_scores(
    exp: _Experiment, result: dict[str, Any], rdir: Path, missing: Sequence[str]
) -> dict[str, Any]:
    """Score a finished neural run's saved model on targets asked for after it ran.

    The new scores join its ``metrics.json`` and the predictions its ``predictions.parquet``;
    its adapted scores (``+prior``, ``+tta``), which cover every target, are dropped so that
    they are recomputed over the new set. Nothing is retrained: the model is the saved one.
    """
    from cropglobe.evaluate.methods import _full_proba
    from cropglobe.models.folder import model_inputs
    from cropglobe.models.inputs import predict_proba

    model, card = _load_run_model(rdir)
    cols = np.asarray([exp.data.classes.index(c) for c in card.classes], dtype=np.int64)
    old = _read_predictions(rdir)
    frames = [old[~old["target"].astype(str).isin(missing)]]  # an interrupted earlier try
    scores = dict(result["targets"])
    for target in missing:
        tset = exp.target(target, card.grid.anchor)
        proba = predict_proba(model, model_inputs(card, tset), device=exp.config.device)
        full = _full_proba(proba, cols, len(exp.data.classes))
        y_pred = np.asarray(full.argmax(axis=1), dtype=np.int64)
        scores[target] = exp.scored(result["source"], target, tset, y_pred, [int(c) for c in cols])
        frames.append(_prediction_frame(target, tset, y_pred, full))
    with atomic_path(rdir / "predictions.parquet") as tmp:
        pd.concat(frames, ignore_index=True).to_parquet(tmp, index=False)
    result = {k: v for k, v in result.items() if k != "adapted"}
    result["targets"] = scores
    return _save_run(rdir, result)


def run_transfer(
    data: SeriesSet,
    config: ExperimentConfig,
    output: str | os.PathLike[str],
    *,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run (or resume) a transfer experiment and return its tables.

    Args:
        data: all groups' samples, labelled; ``data.meta[config.group_by]`` names each
            sample's group.
        config: the experiment.
        output: folder for runs and config.
        progress: called with a short description before each run starts.

    Returns:
        Runs (one row per method/source/target/seed), per-class F1, confusion matrices summed
        over seeds.
    """
    # one process per folder: a second one would mix its runs with this one's
    with folder_lock(output, "cropglobe transfer"):
        return _run_transfer(data, config, Path(output), progress)


def _run_transfer(
    data: SeriesSet,
    config: ExperimentConfig,
    out: Path,
    progress: Callable[[str], None] | None,
) -> ExperimentResult:
    """:func:`run_transfer` holding the output folder."""
    from cropglobe.evaluate.methods import get_method

    t0 = time.perf_counter()
    groups = group_names(data.meta, config.group_by)
    present = sorted(set(groups))
    config.sources = resolve_groups(config.sources, present)
    config.targets = resolve_groups(config.targets, present)
    config.skip_pairs = [resolve_groups(pair, present) for pair in config.skip_pairs]
    for g in [*config.sources, *config.targets]:
        if g not in present:
            from cropglobe.workflow import suggest_group

            suggest_group(data, g, present, config.group_by)  # BE for BEL, a misspelt name
            raise DataFormatError(
                f"group {g!r} is not in the data's {config.group_by!r} column; present: "
                f"{', '.join(present)}"
            )
    methods = {m: get_method(m) for m in config.methods}  # unknown names fail before any work
    if config.tta and config.window is None and any(map(_tta_applies, methods.values())):
        raise ParameterError(
            "test-time shift averaging moves the model's window, but the experiment has none "
            "(--window all); give a window such as 121-334 or drop --tta"
        )
    check_plan(data, config)
    if any(m.model in ADAPTABLE for m in methods.values()):  # a bad device fails before any work
        from cropglobe.models.inputs import resolve_device

        resolve_device(config.device)
    for family, options in config.model_options.items():  # so do bad model options
        _check_model_options(family, options, data, config.window)
    used = sorted({*config.sources, *config.targets})
    config.group_fingerprints = {g: data.subset(groups == g).fingerprint() for g in used}
    _check_output(out, config, data.fingerprint)
    adopted = _adopt_float_spelled_runs(out, config, data, groups)
    config.group_fingerprints = {adopted.get(g, g): v for g, v in config.group_fingerprints.items()}
    plan = [(m, s, seed) for m in config.methods for s in config.sources for seed in config.seeds]
    blocked: list[str] = []
    refiled: list[str] = []  # runs whose precomputed feature files changed since
    old_within: list[str] = []
    old_holdout: list[str] = []
    repeats: dict[str, bool] = {}  # source -> holds identical samples
    for mname, source, seed in plan:  # before anything is trained
        done = _run_dir(out, mname, source, seed) / "metrics.json"
        if done.exists():
            result = _read_run(done)
            blocked += _check_reused(done.parent, result, config, methods[mname])
            if changed := _changed_feature_files(data, groups, config, methods[mname], result):
                refiled.append(f"{done.parent} ({', '.join(changed)})")
            if config.within and "within_n_train" not in result:
                old_within.append(str(done.parent))
            elif config.within and result.get("within_holdout", 1) < HOLDOUT:
                if source not in repeats:
                    repeats[source] = _has_repeats(data.subset(groups == source))
                if repeats[source]:  # without repeats the old draw is the new one
                    old_holdout.append(str(done.parent))
    if refiled:
        raise ExperimentMismatchError(
            f"{len(refiled)} finished run(s) read precomputed feature files that have changed "
            f"since ({'; '.join(refiled[:5])}{' …' if len(refiled) > 5 else ''}); delete those "
            "run folders to redo them with the new files, or choose another --output folder"
        )
    if old_within:
        raise ExperimentMismatchError(
            f"{len(old_within)} finished run(s) were made by an earlier cropglobe whose "
            "--within runs scored the targets with the model trained on 80 % of the source "
            f"({'; '.join(old_within[:5])}{' …' if len(old_within) > 5 else ''}); delete those "
            "run folders to redo them (transfer models now learn from the whole source), or "
            "choose another --output folder"
        )
    if old_holdout:
        held = ", ".join(s for s, r in repeats.items() if r)
        raise ExperimentMismatchError(
            f"{len(old_holdout)} finished --within run(s) "
            f"({'; '.join(old_holdout[:5])}{' …' if len(old_holdout) > 5 else ''}) drew their "
            "source's 20 % hold-out with an earlier cropglobe that could hold out a sample "
            f"while training on an identical copy of it (repeated samples in: {held}); delete "
            "those run folders to redo them with repeats kept on one side, or choose another "
            "--output folder"
        )
    if blocked:
        raise ExperimentMismatchError(
            f"{len(blocked)} finished run(s) were not scored on targets asked for now, and their "
            f"methods cannot score new targets afterwards (only neural models on the time "
            f"series without weight averaging can): {'; '.join(blocked)}; choose another "
            "--output folder for the new targets, or delete those run folders to redo them"
        )
    _check_precision(out, plan, config, methods)
    countries = _group_countries(data, groups, config.group_by)
    used_countries = {g: countries[g] for g in used if g in countries}
    _write_config(out, config, used_countries)
    if progress:
        progress(f"config saved in {out / 'config.json'}")
    said = [  # before the training
        *_mixed_groups_note(data, groups, config.group_by, used),
        *_years_note(data, groups, config.group_by, used),
    ]
    for msg in said:
        logger.warning(msg)

    exp = _Experiment(data, groups, countries, config)
    unknown = _unknown_countries(
        {g: c for g, c in countries.items() if g in {*config.sources, *config.targets}}
    )
    notes = []
    if unknown:
        notes.append(
            f"Countries {', '.join(unknown)} are not in cropglobe's country table "
            f"(cropglobe.classes.country_table: {len(country_table())} countries by ISO3 or ISO2 "
            "code), so their "
            "pairs are tagged 'unknown' rather than cross-country, -continent or -hemisphere; "
            "if a code is misspelt, correct it in the data's country column."
        )
    rows: list[dict[str, Any]] = []
    per_class: list[dict[str, Any]] = []
    confusions: dict[tuple[str, str, str], np.ndarray] = {}
    vanished: dict[tuple[str, str, str], dict[str, int]] = {}  # class -> seeds at zero
    adapted_runs: dict[tuple[str, str, str], int] = {}
    precisions: dict[str, int] = {}  # neural runs reported, by the precision they trained in
    for i, (mname, source, seed) in enumerate(plan, start=1):
        rdir = _run_dir(out, mname, source, seed)
        metrics_path = rdir / "metrics.json"
        if metrics_path.exists():
            logger.info("run %s/%s/seed%d already done, reusing it", mname, source, seed)
            result = _read_run(metrics_path)
            missing = _missing_targets(result, config)
            if missing and _retrained(methods[mname]):
                if progress:
                    progress(
                        f"[{i}/{len(plan)}] {mname}: train {source}, seed {seed} again for "
                        f"{', '.join(missing)} (classical runs keep no model)"
                    )
                result = _retrain(exp, methods[mname], result, rdir, progress)
            elif missing:
                if progress:
                    progress(
                        f"[{i}/{len(plan)}] {mname}: {source}, seed {seed} — scoring the saved "
                        f"model on {', '.join(missing)}"
                    )
                result = _add_target_scores(exp, result, rdir, missing)
        else:
            if progress:
                progress(f"[{i}/{len(plan)}] {mname}: train {source}, seed {seed}")
            result = _one_run(exp, methods[mname], source, seed, rdir, progress)
        if result.get("scoring", 1) < SCORING and _rescored_targets(exp, result):
            result = _rescore(exp, result, rdir)  # saved by an earlier cropglobe
        if methods[mname].model in ADAPTABLE and (trained_in := _run_precision(rdir, result)):
            precisions[trained_in] = precisions.get(trained_in, 0) + 1
        wanted = set(_scored_targets(config, source))  # a reused run may hold dropped targets
        scored = [(mname, result["targets"])]
        priors: list[str] = []  # the prior-adapted kinds of this run ("prior", "tta_prior")
        if config.tta and _tta_applies(methods[mname]):
            adapted = result.get("adapted", {})
            shifts = [float(v) for v in config.tta]
            kinds = ["tta", "tta_prior"] if config.adapt_prior else ["tta"]
            if any(
                k not in adapted
                or any(s.get("shifts") != shifts for s in adapted[k].values())
                or any(t not in adapted[k] for t in _tta_targets(result, config))
                for k in kinds
            ):
                if progress:
                    progress(f"    test-time shift averaging: {mname}, {source}, seed {seed}")
                result = _add_tta_scores(exp, result, rdir)
            scored.append((f"{mname}+tta", result["adapted"]["tta"]))
            priors += kinds[1:]
        if config.adapt_prior and methods[mname].model in ADAPTABLE:
            if "prior" not in result.get("adapted", {}):
                result = _add_prior_scores(exp, result, rdir)
            priors.insert(0, "prior")
        for kind in priors:
            name = f"{mname}+{kind.replace('_', '+')}"
            scored.append((name, result["adapted"][kind]))
            for target, s in result["adapted"][kind].items():
                if target not in wanted:
                    continue
                gone = _vanished_of(s)  # derived: runs scored before the check have no field
                key3 = (name, str(source), str(target))
                adapted_runs[key3] = adapted_runs.get(key3, 0) + 1
                counts = vanished.setdefault(key3, {})
                for cname in gone:
                    counts[cname] = counts.get(cname, 0) + 1
        for name, targets in scored:
            for target, s in targets.items():
                if target not in wanted:
                    continue
                tag = exp.scenario(source, target)
                rows.append(_row(name, source, target, seed, s, result, tag))
                for cname, f1 in s["per_class_f1"].items():
                    per_class.append(
                        {
                            "method": name,
                            "source": source,
                            "target": target,
                            "seed": seed,
                            "class": cname,
                            "f1": f1,
                        }
                    )
                key = (name, source, target)
                cm = np.asarray(s["confusion"], dtype=np.int64)
                confusions[key] = confusions.get(key, 0) + cm
    notes += _unplanned_note(out, plan) + _precision_note(precisions)
    warnings = [*notes, *_vanished_notes(vanished, adapted_runs)]
    for msg in warnings:
        logger.warning(msg)
    warnings = [*said, *warnings]
    return ExperimentResult(
        pd.DataFrame(rows),
        pd.DataFrame(per_class),
        confusions,
        data.classes,
        out,
        time.perf_counter() - t0,
        warnings,
    )


#: columns of places a group of another column may mix, finest first, and their plurals
_PLACES = {"region": "regions", "country": "countries"}

#: the most groups a note lists
_NOTE_GROUPS = 12


def _mixed_groups_note(
    data: SeriesSet, groups: NDArray[Any], group_by: str, used: Sequence[str]
) -> list[str]:
    """A note (one line, or none) when some of the groups used hold several regions (else
    several countries): ``--group-by year`` on data of several regions pools them, so a
    pair of years is tagged and scored as one scenario over all of their regions."""
    if group_by == "country":  # a country's regions are its own: nothing mixed
        return []
    for column, plural in _PLACES.items():
        if column == group_by or column not in data.meta.columns:
            continue
        held = _held_by_group(data.meta[column].map(str, na_action="ignore"), groups, used)
        if all(len(v) <= 1 for v in held.values()):
            continue
        listed, common, _ = _held_text(held)  # common: the value most groups hold
        return [
            f"Groups by {group_by!r} mix {plural} ({listed}): each pair of such "
            f"groups is tagged as one scenario and scored over all of their {plural} "
            f"together. To compare within one {column}, keep only its samples "
            f"(--where {column}={common} on the command line, "
            f"SeriesSet.where({column}={common!r}) in Python)."
        ]
    return []


def _held_by_group(
    values: pd.Series, groups: NDArray[Any], used: Sequence[str]
) -> dict[str, list[str]]:
    """Each used group's distinct values of a metadata column (text), sorted."""
    return {g: sorted(set(values[groups == g].dropna())) for g in used}


def _held_text(held: Mapping[str, list[str]]) -> tuple[str, str, int]:
    """``held`` as one listing (``A: x, y; B: z``, cut past :data:`_NOTE_GROUPS` groups), the
    value most groups hold and how many hold it."""
    listed = [f"{g}: {', '.join(v) or '(none)'}" for g, v in held.items()]
    if len(listed) > _NOTE_GROUPS:
        listed = [*listed[:_NOTE_GROUPS], f"… ({len(listed)} groups)"]
    counts = pd.Series([v for values in held.values() for v in values]).value_counts()
    return "; ".join(listed), str(counts.index[0]), int(counts.iloc[0])


def _years_note(
    data: SeriesSet, groups: NDArray[Any], group_by: str, used: Sequence[str]
) -> list[str]:
    """A note (one line, or none) when the groups used were observed in different years
    (CAWa's regions: Fergana 2011 and 2015–2018, Samarkand 2016, Kashkadarya 2018): each pair
    is then also a transfer across years, which its tag (``cross-region``) does not say."""
    if group_by == "year" or "year" not in data.meta.columns or len(used) < 2:
        return []
    held = _held_by_group(data.meta["year"].map(group_name, na_action="ignore"), groups, used)
    if len({tuple(v) for v in held.values()}) <= 1:
        return []
    listed, common, n_common = _held_text(held)  # common: the year most groups hold
    fix = (
        f"To compare them in one year, keep only its samples (--where year={common} on the "
        f"command line, SeriesSet.where(year={common}) in Python)."
        if n_common >= 2
        else f"No year holds two of them, so these data cannot tell the change of {group_by} "
        "from the change of year."
    )
    return [
        f"Groups by {group_by!r} were observed in different years ({listed}): a "
        f"pair of them is a transfer across years as well as across {group_by} values, which "
        f"its scenario tag does not say. {fix}"
    ]


def _unplanned_note(out: Path, plan: Sequence[tuple[str, str, int]]) -> list[str]:
    """A note on finished runs in the folder that this call did not ask for (methods, sources
    or seeds left out): they are kept on disk but not in the report."""
    planned = {_run_dir(out, *key) for key in plan}
    others = [p.parent for p in finished_runs(out) if p.parent not in planned]
    if not others:
        return []
    methods = sorted({p.parts[-3] for p in others})
    seeds = sorted({p.name for p in others}, key=lambda s: (len(s), s))
    return [
        f"{len(others)} finished run(s) in this folder are not in this report (methods "
        f"{', '.join(methods)}; {', '.join(seeds)}): this call asked for fewer methods, sources "
        "or seeds. They are kept; ask for them again to bring them back."
    ]


def _minutes(seconds: float) -> str:
    """``42 s`` under two minutes, else ``3.5 min``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _one_run(
    exp: _Experiment,
    method: Any,
    source: str,
    seed: int,
    rdir: Path,
    progress: Callable[[str], None] | None = None,
    *,
    carried: tuple[dict[str, Any], pd.DataFrame, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Train one (method, source, seed) run, score it and save it in ``rdir``; ``carried``:
    scores, prediction rows and precomputed feature files (country -> SHA-256) of targets a
    run trained again keeps from before."""
    from cropglobe.evaluate.methods import feature_files

    data, config = exp.data, exp.config
    train = exp.group(source)
    targets = [t for t in _scored_targets(config, source) if t != source]
    holdout: SeriesSet | None = None
    if config.within:  # drawn first: a source too small for a hold-out fails before training
        mask = within_holdout(train, seed)
        holdout, fit_part = train.subset(mask), train.subset(~mask)
        if not np.isin(holdout.labels, fit_part.labels[fit_part.labels >= 0]).any():
            raise LabelError(
                f"the 20 % hold-out of {source} drawn with seed {seed} holds {holdout.n_samples} "
                "samples, none of a class left to train on; --within needs more samples in "
                f"{source} (or drop --within)"
            )
    t0 = time.perf_counter()

    def on_epoch(epoch: int, loss: float, f1: float) -> None:
        if progress and (epoch % 5 == 0 or epoch in (1, config.epochs)):
            spent = time.perf_counter() - t0
            left = spent / epoch * (config.epochs - epoch)
            timing = _minutes(spent) + (f", ~{_minutes(left)} left" if left > 0 else "")
            progress(
                f"    epoch {epoch:3d}/{config.epochs}  loss {loss:.4f}  val macro-F1 {f1:.3f}"
                f"  ({timing})"
            )

    # The transfer model learns from the whole source, with or without --within.
    fitted = method.fit(train, seed=seed, config=config, on_epoch=on_epoch)
    train_seconds = time.perf_counter() - t0
    model_classes = _classes_of(train)
    scores: dict[str, Any] = {}
    selected_scores: dict[str, Any] = {}
    preds: list[pd.DataFrame] = []
    # (group, its samples, the model scoring it, that model's training samples)
    evaluations = [(t, exp.target(t, train.grid.anchor), fitted, train) for t in targets]
    within_model: Any = None
    if holdout is not None:  # a second model, on the other 80 %, scores the source's hold-out
        if progress:
            progress(f"    within {source}: a second model on 80 % of it for the hold-out")
        t0 = time.perf_counter()
        within_model = method.fit(fit_part, seed=seed, config=config, on_epoch=on_epoch)
        train_seconds += time.perf_counter() - t0
        evaluations.append((source, holdout, within_model, fit_part))
    for target, tset, model, trained_on in evaluations:
        proba = model.predict_proba(tset)
        y_pred = np.asarray(proba.argmax(axis=1), dtype=np.int64)
        scores[target] = exp.scored(source, target, tset, y_pred, _classes_of(trained_on))
        selected = getattr(model, "selected_epoch", lambda: None)()
        if selected is not None:  # the best single epoch of an averaged run, for comparison
            sel = score_transfer(
                tset.labels,
                np.asarray(selected.predict_proba(tset).argmax(axis=1), dtype=np.int64),
                model_classes=_classes_of(trained_on),
                target=exp.country_rules(target, tset),
                classes=data.classes,
            )
            selected_scores[target] = {k: sel[k] for k in ("oa", "macro_f1", "weighted_f1")}
        preds.append(_prediction_frame(target, tset, y_pred, proba))
    if carried is not None:
        scores = {**scores, **carried[0]}
        preds.append(carried[1])
    rdir.mkdir(parents=True, exist_ok=True)
    _save_run_model(fitted, rdir / "model")
    with atomic_path(rdir / "predictions.parquet") as tmp:
        pd.concat(preds, ignore_index=True).to_parquet(tmp, index=False)
    result = {
        "method": method.name,
        "source": source,
        "seed": seed,
        "train_seconds": train_seconds,
        "training": _training_summary(fitted),
        "n_train": train.n_samples,
        "model_classes": [data.classes[c] for c in model_classes],
        **(
            {"within_n_train": fit_part.n_samples, "within_holdout": HOLDOUT}
            if holdout is not None
            else {}
        ),
        "targets": scores,
        "scoring": SCORING,
        **_temperature_record(fitted, within_model),
    }
    if selected_scores:
        result["best_epoch_targets"] = selected_scores
    files = feature_files(fitted)
    if files and carried is not None:  # the kept targets' scores came from these files
        files = {**carried[2], **files}
    if files:
        result["feature_files"] = files  # country -> SHA-256 of the precomputed features read
    return _save_run(rdir, result)


#: how the ``--within`` hold-out is drawn: 2 keeps identical samples on one side (runs saved
#: before, without ``within_holdout`` in their metrics, are 1: each sample drawn on its own)
HOLDOUT = 2


def within_holdout(samples: SeriesSet, seed: int, fraction: float = 0.2) -> NDArray[np.bool_]:
    """The ``--within`` hold-out of a source: a seeded draw of about ``fraction`` of its
    samples that never splits identical ones (the same values bit for bit, NaN equal to NaN):
    every repeat goes to the side of its first occurrence, as the validation split of
    :func:`cropglobe.train.split_apart` does, so no held-out sample has a copy in training.
    Without repeats it is each sample drawn on its own, as before :data:`HOLDOUT` 2.

    Returns:
        (N,) bool, True for the held-out samples.
    """
    from cropglobe.series import equal_rows

    draw = np.random.default_rng(seed).random(samples.n_samples) < fraction
    return np.asarray(draw[equal_rows(samples.values)], dtype=bool)


def _has_repeats(samples: SeriesSet) -> bool:
    """Whether ``samples`` holds identical samples (their ``--within`` hold-out changed with
    :data:`HOLDOUT` 2)."""
    from cropglobe.series import equal_rows

    head = equal_rows(samples.values)
    return bool((head != np.arange(head.size)).any())


def _classes_of(samples: SeriesSet) -> list[int]:
    """The class indices a model trained on ``samples`` can output (their labelled classes)."""
    return sorted(int(c) for c in np.unique(samples.labels[samples.labels >= 0]))


#: how runs are scored: 2 collapses each sample of a group holding several countries by its
#: own country's rules (runs saved before, without the key, are 1 and are rescored)
SCORING = 2


def _rescored_targets(exp: _Experiment, result: dict[str, Any]) -> list[str]:
    """The targets of a run saved under scoring 1 whose scores change under 2: groups (the
    source's own hold-out included) holding several countries."""
    return [t for t in result["targets"] if len(exp.countries.get(t, ())) > 1]


def _rescore(exp: _Experiment, result: dict[str, Any], rdir: Path) -> dict[str, Any]:
    """Score a run saved under scoring 1 again from its saved predictions, each sample of a
    group of several countries collapsed by its own country (nothing is retrained; the
    ``+prior`` / ``+tta`` scores are recomputed afterwards)."""
    preds = _read_predictions(rdir)
    classes = exp.data.classes
    model_classes = [classes.index(c) for c in result["model_classes"]]
    scores = dict(result["targets"])
    for target in _rescored_targets(exp, result):
        frame = preds[preds["target"].astype(str) == target]
        group = exp.group(target).meta
        lookup = dict(
            zip(
                group["sample_id"].astype(str), group["country"].fillna("").astype(str), strict=True
            )
        )
        countries = frame["sample_id"].astype(str).map(lookup).fillna("").to_numpy()
        scores[target] = _scored(
            frame["y_true"].to_numpy(dtype=np.int64),
            frame["y_pred"].to_numpy(dtype=np.int64),
            model_classes,
            countries,
            classes,
            exp.scenario(result["source"], target),
        )
    result = {k: v for k, v in result.items() if k != "adapted"}
    result.update(targets=scores, scoring=SCORING)
    return _save_run(rdir, result)


def _retrain(
    exp: _Experiment,
    method: Any,
    result: dict[str, Any],
    rdir: Path,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Train a finished classical run again to score targets asked for since; a note is
    logged if its scores on the targets it had differ (they should not: same seed, data)."""
    source, seed = str(result["source"]), int(result["seed"])
    # targets not asked for now keep their scores and predictions
    kept = [t for t in result["targets"] if t not in _scored_targets(exp.config, source)]
    preds = _read_predictions(rdir)
    carried = (
        {t: result["targets"][t] for t in kept},
        preds[preds["target"].astype(str).isin(kept)],
        dict(result.get("feature_files") or {}),
    )
    new = _one_run(exp, method, source, seed, rdir, progress, carried=carried)
    changed = [
        t
        for t, s in result["targets"].items()
        if t in new["targets"] and new["targets"][t]["confusion"] != s["confusion"]
    ]
    if changed:
        logger.warning(
            "%s, %s, seed %d trained again gave other scores on %s than before",
            method.name,
            source,
            seed,
            ", ".join(changed),
        )
    return new


def _save_run_model(fitted: Any, folder: Path) -> None:
    """Keep a neural run's model as a model folder (usable by ``cropglobe predict``/``map``)."""
    result = getattr(fitted, "result", None)
    if result is None or getattr(result, "card", None) is None:
        return  # classical methods keep predictions and metrics only
    from cropglobe.models.folder import save_model

    save_model(folder, result.model, result.card)


def _temperature_record(fitted: Any, within_model: Any = None) -> dict[str, Any]:
    """What a run's ``metrics.json`` records of temperature scaling: ``temperature`` (fitted
    on the source's validation split; None when none was, ``temperature_fit`` saying why) and
    ``temperature_fit`` (validation samples, NLL and ECE before and after); with ``--within``
    also ``within_temperature``, the hold-out model's own."""
    from cropglobe.evaluate.methods import NO_TEMPERATURE

    def of(model: Any) -> tuple[float | None, dict[str, Any]]:
        if not hasattr(model, "temperature_fit"):
            return None, {"reason": NO_TEMPERATURE["classical"]}
        return model.temperature, dict(model.temperature_fit)

    temperature, how = of(fitted)
    out: dict[str, Any] = {"temperature": temperature, "temperature_fit": how}
    if within_model is not None:
        out["within_temperature"], how["within"] = of(within_model)
    return out


def _training_summary(fitted: Any) -> dict[str, Any]:
    """Validation figures of a neural run (best epoch, its held-out macro-F1); {} otherwise."""
    result = getattr(fitted, "result", None)
    if result is None:
        return {}
    card = getattr(result, "card", None)
    out = {
        "precision_used": card.training.get("precision_used") if card is not None else None,
        "best_epoch": int(result.best_epoch),
        "best_val_macro_f1": float(result.best_val_f1),
        "n_val": len(result.val_index),
        "history": result.history,
    }
    if result.averaged_epochs is not None:
        out["averaged_epochs"] = list(result.averaged_epochs)
        out["averaged_val_macro_f1"] = float(result.averaged_val_f1)
    return out


#: how far a target is from a source, least first (the nearest source country counts)
_DISTANCE = ("same", "cross-country", "cross-continent", "cross-hemisphere", "unknown")


def _scenario(
    source: str, target: str, group_by: str, countries: Mapping[str, tuple[str, ...]]
) -> str:
    """The pair's scenario, from the two groups' countries whatever the grouping (regions of
    two countries are a cross-country, -continent or -hemisphere pair).

    ``within-{group_by}`` for a group's own hold-out; ``cross-{group_by}`` when the target's
    countries are all among the source's (regions or years of one country), or either group
    records none; otherwise each target country's scenario from its nearest source country,
    and ``mixed`` when a target holds countries at different distances. ``unknown`` for a
    country the shipped table does not hold.
    """
    if source == target:
        return f"within-{group_by}"
    cs, ct = countries.get(source, ()), countries.get(target, ())
    if not cs or not ct:
        return f"cross-{group_by}"

    def distance(a: str, b: str) -> str:
        if a == b:
            return "same"
        try:
            return scenario(a, b)
        except CropGlobeError:
            return "unknown"

    nearest = {min((distance(a, b) for a in cs), key=_DISTANCE.index) for b in ct}
    if len(nearest) > 1:
        return "mixed"
    tag = nearest.pop()
    return f"cross-{group_by}" if tag == "same" else tag


def _group_countries(
    data: SeriesSet, groups: NDArray[Any], group_by: str
) -> dict[str, tuple[str, ...]]:
    """Each group's countries (ISO3 where the table knows the code): the per-target collapse
    (AUS, CHN, ARG) and the scenario follow them under any grouping. A group of several
    countries (a year of a multi-country dataset) is collapsed sample by sample."""
    from cropglobe.classes import normalise_country

    names = [str(g) for g in dict.fromkeys(groups.tolist())]
    if group_by == "country":
        return {g: (normalise_country(g),) for g in names}
    if "country" not in data.meta.columns:
        return {g: () for g in names}
    col = data.meta["country"]
    out: dict[str, tuple[str, ...]] = {}
    for g in names:
        values = col[groups == g].dropna().astype(str).str.strip()
        out[g] = tuple(sorted({normalise_country(v) for v in values if v}))
    return out


def _unknown_countries(countries: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The countries of ``countries`` that the shipped country table does not hold."""
    from cropglobe.classes import country

    unknown = []
    for c in sorted({c for held in countries.values() for c in held}):
        try:
            country(c)
        except CropGlobeError:
            unknown.append(c)
    return unknown


#: the largest seed (numpy's and scikit-learn's generators take 0 … 2^32 − 1)
MAX_SEED = 2**32 - 1

#: the most seeds one ``--seeds`` range may name
MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """``"82-91"`` -> [82, …, 91]; ``"1,5,7"`` -> [1, 5, 7]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-")
                if int(b) < int(a):
                    raise DataFormatError(
                        f"seed range {part!r} ends before it starts; write it low-high, "
                        f"e.g. '{b}-{a}'"
                    )
                if int(b) - int(a) >= MAX_SEEDS:
                    raise DataFormatError(
                        f"seed range {part!r} names {int(b) - int(a) + 1} seeds; an experiment "
                        f"takes at most {MAX_SEEDS}, e.g. '82-91'"
                    )
                seeds += list(range(int(a), int(b) + 1))
            elif part:
                seeds.append(int(part))
    except DataFormatError:
        raise
    except ValueError:
        raise DataFormatError(
            f"seeds {text!r} do not parse; expected e.g. '82-91' or '1,2,3'"
        ) from None
    if not seeds:
        raise DataFormatError(f"seeds {text!r} name no seed; expected e.g. '82-91'")
    if len(set(seeds)) > MAX_SEEDS:
        raise DataFormatError(
            f"seeds {text!r} name {len(set(seeds))} seeds; an experiment takes at most "
            f"{MAX_SEEDS}, e.g. '82-91'"
        )
    if max(seeds) > MAX_SEED:
        raise DataFormatError(
            f"seed {max(seeds)} is above {MAX_SEED} (2^32 - 1), the largest seed every model's "
            "random generator accepts; use smaller seeds"
        )
    return list(dict.fromkeys(seeds))


#: the largest test-time window shift accepted, in days (half a year)
MAX_SHIFT_DAYS = 183.0

#: ``--tta-shifts`` default, as text.
DEFAULT_SHIFTS = ",".join(f"{v:g}" for v in DEFAULT_TTA_SHIFTS)


def parse_shifts(text: str) -> list[float]:
    """``"-20,-10,0,10,20"`` -> [-20.0, -10.0, 0.0, 10.0, 20.0] (window shifts in days)."""
    try:
        values = [float(v) for v in sequence_arg(text)]
    except ValueError:
        values = []
    if not values or not all(np.isfinite(values)):
        raise ParameterError(
            f"shifts {text!r} are not a comma-separated list of days; use e.g. -20,-10,0,10,20"
        )
    if max(abs(v) for v in values) > MAX_SHIFT_DAYS:
        raise ParameterError(
            f"shifts {text!r} move the window by more than {MAX_SHIFT_DAYS:g} days (half a "
            "year); use shifts of a few weeks, e.g. -20,-10,0,10,20"
        )
    return values


def sequence_arg(values: Sequence[str] | str) -> list[str]:
    """Split comma-separated CLI values."""
    items = [values] if isinstance(values, str) else list(values)
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def collect_runs(output: str | os.PathLike[str], *, planned: bool = True) -> pd.DataFrame:
    """Every finished run under ``output/runs`` as one row per (method, source, target, seed).

    Reads the ``metrics.json`` files, so it works on a partly finished experiment. With
    ``planned`` (and a ``config.json``) only what the experiment last asked for is kept, as
    in its report: runs of methods, sources or seeds dropped since and the ``+prior`` /
    ``+tta`` scores of options turned off stay on disk but are left out, and pairs are tagged
    from the groups' countries the experiment recorded; ``planned=False`` gives every run
    found, with the tags they were saved with.
    """
    out = Path(output)
    plan: ExperimentConfig | None = None
    tags: dict[str, tuple[str, ...]] | None = None  # group -> countries, to tag pairs now
    if planned and (out / "config.json").exists():
        try:
            payload = json.loads((out / "config.json").read_text())
            saved = payload["config"]
            plan = ExperimentConfig(**{**saved, "window": None})
            if "group_countries" in payload:
                tags = {str(g): tuple(c) for g, c in payload["group_countries"].items()}
        except (ValueError, KeyError, TypeError, CropGlobeError):
            raise DataFormatError(
                f"{out / 'config.json'} is damaged (not an experiment's config); pass "
                "planned=False to read every finished run"
            ) from None
    rows: list[dict[str, Any]] = []
    for path in finished_runs(out):
        result = _read_run(path)
        m, src, seed = result["method"], result["source"], result["seed"]
        kinds = {"": result["targets"], **result.get("adapted", {})}
        if plan is not None:
            if m not in plan.methods or src not in plan.sources or seed not in plan.seeds:
                continue
            wanted = {"", *(["prior"] if plan.adapt_prior else [])}
            if plan.tta:
                wanted |= {"tta", *(["tta_prior"] if plan.adapt_prior else [])}
            kinds = {k: v for k, v in kinds.items() if k in wanted}
        targets = set(_scored_targets(plan, src)) if plan is not None else None
        for kind, scores in kinds.items():
            name = f"{m}+{kind.replace('_', '+')}" if kind else m
            for target, s in scores.items():
                if targets is None or target in targets:
                    tag = (
                        _scenario(src, target, plan.group_by, tags)
                        if plan is not None and tags is not None
                        else s["scenario"]
                    )
                    rows.append(_row(name, src, target, seed, s, result, tag))
    return pd.DataFrame(rows)
