"""Train-to-folder and predict-from-folder: the library side of ``cropglobe train`` / ``predict``.

A model folder (see :mod:`cropglobe.models.folder`) holds weights in a safe format and a JSON
model card (bands, grid, window, classes, feature pipeline, training config, data
fingerprint, metrics). Prediction checks the data against the card and refuses a mismatch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe._fs import atomic_path
from cropglobe.classes import country_alias
from cropglobe.errors import CropGlobeError, DataFormatError, LabelError, ParameterError
from cropglobe.series import Observations, SeriesSet

__all__ = [
    "TrainSummary",
    "country_alias",
    "predict_dataset",
    "select_groups",
    "suggest_group",
    "train_to_folder",
]

logger = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    """What :func:`train_to_folder` did."""

    folder: Path
    model: str
    classes: tuple[str, ...]
    n_train: int
    metrics: dict[str, Any]
    n_validation: int = 0  # labelled samples held out of training to choose the epoch


def select_groups(
    ss: SeriesSet, values: Sequence[str] | None, column: str = "country"
) -> SeriesSet:
    """The samples whose ``column`` is one of ``values`` (all samples when ``values`` is empty)."""
    if not values:
        return ss
    if column not in ss.meta.columns:
        raise DataFormatError(
            f"data has no metadata column {column!r} to select {list(values)} from; available: "
            f"{list(ss.meta.columns)}"
        )
    from cropglobe.evaluate.transfer import group_names, resolve_groups

    # as transfer names groups (2020, not 2020.0, for a year read as floats)
    names: NDArray[Any] = (
        group_names(ss.meta, column)
        if not ss.meta[column].isna().any()
        else ss.meta[column].astype(str).to_numpy()
    )
    present = sorted(set(names.tolist()))
    wanted = resolve_groups(values, present)
    missing = [v for v in wanted if v not in present]
    for name in missing:
        suggest_group(ss, name, present, column)
    if missing:
        raise DataFormatError(f"{column} {missing} not in the data; present: {', '.join(present)}")
    return ss.subset(np.isin(names, wanted))


def _is_country(name: str) -> bool:
    """Whether ``name`` is a code or English name of the country table."""
    from cropglobe.classes import country_table, normalise_country

    table = country_table()
    return normalise_country(name) in table.index or bool(
        (table["name"].str.lower() == name.strip().lower()).any()
    )


def suggest_group(ss: SeriesSet, name: str, groups: Sequence[str], group_by: str) -> None:
    """Raise a clear error when ``name``, missing from ``groups``, is a case variant of one
    of them, another spelling of a country group (``BE`` or ``Belgium`` for ``BEL``), a value
    of another metadata column (CAWa's regions under ``country``) or a near miss
    (``Samarkhand``: did you mean ``Samarkand``?, with the groups present); return without
    raising when none applies (the caller says the group is absent)."""
    same = [g for g in groups if g.lower() == name.lower()]
    if same:
        raise DataFormatError(
            f"group {name!r} is not in the data's {group_by!r} column, but {same[0]!r} is; "
            "group names are case-sensitive"
        )
    alias = country_alias(name, groups)
    if alias is not None:
        from cropglobe.classes import country

        raise DataFormatError(
            f"group {name!r} is not in the data's {group_by!r} column, which names countries "
            f"by ISO3 code; did you mean {alias!r} ({country(alias).name})? Name the group "
            f"{alias!r}"
        )
    for col in ss.meta.columns:
        if col != group_by and col != "sample_id":
            values = ss.meta[col].dropna().astype(str)
            if (values == name).any() or (values.str.lower() == name.lower()).any():
                raise DataFormatError(
                    f"group {name!r} is not in the data's {group_by!r} column but is a value of "
                    f"{col!r}; pass --group-by {col}"
                )
    if _is_country(name):
        return  # a real country the data lacks is no typo (the caller names the missing file)
    if _is_number(name):
        return  # 2019 is no misspelling of 2018: the caller lists the groups present
    import difflib

    lower = {g.lower(): g for g in groups}
    near = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.75)
    if near:
        raise DataFormatError(
            f"group {name!r} is not in the data's {group_by!r} column; did you mean "
            f"{lower[near[0]]!r}? present: {', '.join(groups)}"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def train_to_folder(
    data: SeriesSet,
    model: str,
    output: str | os.PathLike[str],
    *,
    protocol: str = "clean",
    augment: str | None = None,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-4,
    seed: int = 82,
    device: str = "cpu",
    precision: str = "auto",
    window: tuple[int, int] | None = (121, 334),
    resume: bool = False,
    early_stopping: int | None = None,
    progress: Callable[[int, float, float], Any] | None = None,
    average: float | None = None,
    model_options: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> TrainSummary:
    """Train a registered model on labelled series and save it as a model folder.

    Neural models train with :func:`cropglobe.train.train` (checkpoints in
    ``output/../.{name}.checkpoint`` so that ``resume=True`` continues an interrupted run);
    classical models (``random_forest``, ``lightgbm``) fit on the windowed bands × time values
    with missing values left for the trees to route. ``average`` (neural models) averages the
    weights of that share of the final epochs (see :func:`cropglobe.train.train`).
    ``model_options`` are the model's hyperparameters (``{"width": 64}`` for CropNet,
    ``{"n_estimators": 100}`` for a random forest). ``provenance``: where the data came from
    (``{"path": …, "where": …, "country": [groups]}``), recorded in the card as
    ``training["source_data"]``.

    Raises:
        LabelError: no labelled sample, or a single class.
        ParameterError: a hyperparameter the model does not take.
    """
    from cropglobe.models.folder import (
        ModelCard,
        check_model_target,
        composite_settings,
        save_model,
        value_percentiles,
    )
    from cropglobe.models.registry import canonical_name, is_neural

    name = canonical_name(model)
    check_model_target(output)  # before hours of training, not when saving
    data.require_one_season("training a model")  # its card records one season
    labelled = data.subset(data.labels >= 0)
    if labelled.n_samples == 0:
        if data.n_samples == 0:
            raise DataFormatError(
                "the training data hold no sample with a valid observation; check the data "
                "(cropglobe info) and the selection (--country, --where)"
            )
        raise LabelError("the training data holds no labelled sample; give labelled data")
    present = np.unique(labelled.labels)
    if present.size < 2:
        raise LabelError(
            f"the training data holds a single class ({labelled.classes[present[0]]}); a "
            "classifier needs at least two"
        )
    labelled.validate("training data", allow_empty=False)
    out = Path(output)
    if is_neural(name):
        from cropglobe.train import train

        ckpt = out.parent / f".{out.name}.checkpoint"
        result = train(
            name,
            labelled,
            protocol=protocol,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            augment=augment,
            seed=seed,
            device=device,
            precision=precision,
            window=window,
            checkpoint_dir=ckpt,
            resume=resume,
            early_stopping=early_stopping,
            progress=progress,
            average=average,
            model_options=model_options,
        )
        if result.card is None:  # only unregistered modules lack a card; names are registered
            raise DataFormatError(f"model {name!r} produced no model card; cannot save it")
        if provenance:
            result.card.training["source_data"] = dict(provenance)
        save_model(out, result.model, result.card)
        metrics = dict(result.card.metrics)
        classes = result.classes
        n_train = int(result.card.training.get("n_train", labelled.n_samples))
        held = int(result.card.training.get("n_val", 0)) if protocol == "clean" else 0
        import shutil

        shutil.rmtree(ckpt, ignore_errors=True)
    else:
        neural_only = {
            "--average (weight averaging)": average is not None,
            "--augment (phenology augmentation)": augment not in (None, "none"),
            "--early-stopping": early_stopping is not None,
        }
        given = [opt for opt, on in neural_only.items() if on]
        if given:
            raise ParameterError(
                f"{', '.join(given)} applies to neural models; {name!r} is a classical model "
                "(drop it, or train a neural model)"
            )
        if device != "cpu":
            logger.info("%s trains on the CPU; device %r is not used", name, device)
        idx = labelled.grid.window_indices(*window) if window else np.arange(labelled.n_steps)
        x = labelled.values[:, :, idx]
        classes = tuple(labelled.classes[i] for i in present)
        lut = np.full(len(labelled.classes), -1, np.int64)
        lut[present] = np.arange(present.size)
        est = _fit_classical(name, seed, model_options or {}, x, lut[labelled.labels])
        train_acc = float(np.mean(est.predict(x) == lut[labelled.labels]))
        metrics = {"train_accuracy": train_acc}
        card = ModelCard(
            model=name,
            params=est.get_params(),
            bands=labelled.bands,
            grid=labelled.grid,
            classes=classes,
            window=window,
            features={
                "fill": "none",
                "flatten": True,
                **composite_settings(labelled),
                "value_percentiles": value_percentiles(labelled),
            },
            training={
                "seed": seed,
                "n_train": labelled.n_samples,
                **({"source_data": dict(provenance)} if provenance else {}),
            },
            data_fingerprint=labelled.fingerprint(),
            metrics=metrics,
        )
        save_model(out, est, card)
        n_train, held = labelled.n_samples, 0
    _save_reference(labelled, window, out)
    return TrainSummary(out, name, tuple(classes), n_train, metrics, held)


def _save_reference(data: SeriesSet, window: tuple[int, int] | None, folder: Path) -> None:
    """Keep a compact reference of the training data in the model folder, for the
    dissimilarity of new data (:mod:`cropglobe.evaluate.applicability`); a model is complete
    without it, so a failure is only logged."""
    from cropglobe.evaluate.applicability import TrainingReference

    try:
        TrainingReference.fit(data, window).save(folder)
    except (CropGlobeError, OSError, ValueError) as exc:
        logger.warning(
            "no training reference saved in %s (%s): predictions are not checked "
            "against the training data's range",
            folder,
            exc,
        )


def predict_dataset(
    folder: str | os.PathLike[str],
    data: SeriesSet,
    *,
    device: str = "cpu",
    batch_size: int = 1024,
    shifts: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Predict every sample of ``data`` with the model in ``folder``.

    Data holding the model's bands among others (or in another order) is cut to the model's
    bands by name; missing bands are an error.

    ``shifts`` (days): test-time shift averaging — the probabilities are averaged over the
    model's window moved by each shift (:func:`cropglobe.models.folder.shift_averaged_proba`;
    neural models on full-season data). None: the plain window.

    Returns:
        One row per sample: ``sample_id``, metadata group columns when present (``country``,
        ``region``, ``year``: the label (harvest) year, as input tables give it, followed by
        ``season_year`` when a season starts after 1 January), ``label`` (true class name or
        None), ``predicted`` (class name), ``confidence``, ``dissimilarity`` (the sample's
        distance from the training data, above 1 outside their range; only when the model
        folder keeps a training reference: :mod:`cropglobe.evaluate.applicability`) and
        ``p_{class}`` for each model class.
    """
    from cropglobe.models.folder import card_proba, load_model, model_inputs, shift_averaged_proba

    model, card = load_model(folder)
    if data.bands != card.bands and all(b in data.bands for b in card.bands):
        # bands are named: the model's bands are picked out of the data by name
        logger.info("using the model's bands %s out of the data's %s", card.bands, data.bands)
        data = data.select_bands(card.bands)
    if data.n_samples and data.bands == card.bands:
        blank = np.asarray(np.isnan(data.values).all(axis=(0, 2)), dtype=bool)
        empty = [b for k, b in enumerate(card.bands) if blank[k]]
        if empty:
            # the model fills them with a constant it never saw in training, and the
            # dissimilarity (NaN read as the training mean) cannot notice it
            logger.warning(
                "band%s %s, which the model was trained on, hold%s no value in these data: "
                "the model sees a constant there and its predictions are unreliable; give data "
                "with %s, or train a model without %s (--bands)",
                "s" * (len(empty) > 1), ", ".join(empty), "" if len(empty) > 1 else "s",
                "them" if len(empty) > 1 else "it", "them" if len(empty) > 1 else "it",
            )  # fmt: skip
    if shifts is not None:
        proba = shift_averaged_proba(
            model, card, data, shifts, device=device, batch_size=batch_size
        )
    else:
        proba = card_proba(
            model, card, model_inputs(card, data), batch_size=batch_size, device=device
        )
    pred = proba.argmax(axis=1)
    out = pd.DataFrame({"sample_id": data.meta["sample_id"].astype(str).to_numpy()})
    for col in ("country", "region", "year"):
        if col in data.meta.columns:
            out[col] = data.meta[col].to_numpy()
    if "year" in out.columns:
        out = _label_years(out, data)
    out["label"] = data.label_names()
    out["predicted"] = np.asarray(card.classes, dtype=object)[pred]
    out["confidence"] = proba.max(axis=1).astype(np.float32)
    from cropglobe.evaluate.applicability import TrainingReference

    reference = TrainingReference.load(folder)
    if reference is not None:
        out["dissimilarity"] = reference.dissimilarity(data)
    for k, name in enumerate(card.classes):
        out[f"p_{name}"] = proba[:, k].astype(np.float32)
    return out


def _label_years(out: pd.DataFrame, data: SeriesSet) -> pd.DataFrame:
    """``year`` as input tables name it, the label (harvest) year, with ``season_year`` (the
    year the season starts, as a SeriesSet's meta holds it) beside it when a season starts
    after 1 January (then they differ)."""
    from cropglobe.series import season_label_year

    if set(data.seasons) == {"01-01"}:
        return out  # calendar years: the season year is the label year
    season = pd.to_numeric(out["year"], errors="coerce").to_numpy(dtype=np.float64)
    label = np.full(season.shape, np.nan)
    known = ~np.isnan(season)
    anchors = data.anchors
    for a in data.seasons:
        at = known & (anchors == a)
        label[at] = season_label_year(season[at].astype(np.int64), a)
    out = out.copy()
    whole = bool(known.all())
    out["year"] = label.astype(np.int64) if whole else label
    out["season_year"] = season.astype(np.int64) if whole else season
    cols = [c for c in out.columns if c != "season_year"]
    cols.insert(cols.index("year") + 1, "season_year")
    return out[cols]


def _fit_classical(name: str, seed: int, options: dict[str, Any], x: Any, y: Any) -> Any:
    """A classical model fitted with ``options`` as hyperparameters: unknown names are refused
    before fitting, and a value the model refuses (sklearn's parameter validation, LightGBM's
    checks) is one clear error naming the options given."""
    from cropglobe.models.registry import model_class

    est = model_class(name)(random_state=seed)
    valid = est.get_params()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ParameterError(
            f"{name} takes no hyperparameter {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(sorted(k for k in valid if k != 'random_state'))}"
        )
    if not options:
        return est.fit(x, y)
    try:
        return est.set_params(**options).fit(x, y)
    except Exception as exc:  # sklearn InvalidParameterError (a ValueError), LightGBMError …
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise ParameterError(
            f"training failed with the hyperparameters given ({given}): {text}; give values "
            "the model takes (see its defaults)"
        ) from None


def series_for_model(
    path: str | os.PathLike[str] | SeriesSet | Observations,
    model_dir: str | os.PathLike[str],
    **read_options: Any,
) -> SeriesSet:
    """Read a dataset for a model folder: raw observation tables are composited to the model's
    own grid, the way its training data were (the card's ``features["composite"]``; gap
    filling with the defaults of training from a table when the card does not say).

    ``path`` may also be data already read (a selection of a table's samples, say: it is then
    selected on the table's own columns, before compositing sets ``year`` to the season)."""
    from cropglobe.io import read_dataset
    from cropglobe.models.folder import read_card

    data = (
        path if isinstance(path, SeriesSet | Observations) else read_dataset(path, **read_options)
    )
    if isinstance(data, Observations):
        from cropglobe.composite import composite
        from cropglobe.models.folder import composite_of

        card = read_card(model_dir)
        data = composite(data, card.grid, **composite_of(card), allow_empty=True)
        logger.info(
            "composited %s to the model's grid (%s)", data.attrs.get("source", path), card.grid
        )
    empty = data.empty_samples()
    if empty.any() and not empty.all():  # none left: the caller says so
        has_ids = "sample_id" in data.meta
        ids: list[str] = (
            data.meta["sample_id"].astype(str).to_numpy()[empty].tolist() if has_ids else []
        )
        logger.warning(
            "%d of the %d samples hold no valid observation and are left out (no row in the "
            "output)%s",
            int(empty.sum()),
            data.n_samples,
            f": {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}" if len(ids) else "",
        )
    return data.subset(~empty)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table atomically as Parquet or CSV (by suffix)."""
    target = check_table_path(path)
    with atomic_path(target) as tmp:
        if target.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return target


def check_table_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path when it names a table :func:`write_table` can write (.parquet, .pq or
    .csv, not a folder); check before long work so that a typo does not waste it."""
    target = Path(path)
    if target.is_dir():
        raise DataFormatError(f"{target}: is a folder; give a table file path (.parquet or .csv)")
    if target.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise DataFormatError(
            f"{target}: unknown table format {target.suffix!r}; use .parquet or .csv"
        )
    return target
