"""Model folders: weights + a JSON model card; loading never unpickles.

A folder holds ``card.json`` (:class:`ModelCard`) and the weights: ``model.safetensors`` for
neural models, ``forest.npz`` + ``estimator.json`` for the random forest, ``lightgbm.txt`` +
``estimator.json`` for LightGBM. Writes are atomic (the folder appears complete or not at all).
Prediction checks data against the card with :func:`check_compatible` and refuses a mismatch.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cropglobe._fs import atomic_dir, json_default
from cropglobe.errors import (
    BandError,
    CropGlobeError,
    GridError,
    MissingFileError,
    ModelError,
    ParameterError,
)
from cropglobe.models.registry import (
    build_error_text,
    canonical_name,
    construct,
    describe_params,
    is_neural,
    model_class,
)
from cropglobe.series import SeriesSet, TimeGrid

__all__ = [
    "CARD_FILE",
    "DEFAULT_TTA_SHIFTS",
    "ModelCard",
    "card_proba",
    "check_compatible",
    "composite_settings",
    "load_model",
    "model_inputs",
    "proba_columns",
    "save_model",
    "shift_averaged_proba",
]

#: Calendar shifts (days) averaged by test-time shift averaging (``--tta``).
DEFAULT_TTA_SHIFTS: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0)

logger = logging.getLogger(__name__)

CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"
_FORMAT = "cropglobe.model"
_VERSION = 1
#: what a card's ``features`` may say about preparing a model's inputs: gap filling, scaling,
#: NaN value, flattening, compositing of raw observations, training value percentiles. A card
#: naming another step was made by a later cropglobe, whose step this one would skip.
CARD_FEATURE_KEYS = frozenset({"fill", "scale", "nan", "flatten", "composite", "value_percentiles"})


@dataclass
class ModelCard:
    """Everything needed to use a trained model correctly, stored as JSON beside its weights.

    Attributes:
        model: registry name (``"cropnet"``, ``"random_forest"`` …).
        params: constructor hyperparameters (``n_classes``, ``n_bands``, ``n_steps`` …).
        bands: band names in the order the model reads them.
        grid: the time grid of the input data (e.g. the 73-bin CropGlobe grid).
        window: (start, end) days of season the model sees, cut from ``grid``; None = whole grid.
        classes: class names, index = model output.
        features: the feature pipeline (gap filling, scaling, NaN value, flattening …).
        training: training configuration (protocol, epochs, seed, augmentation …).
        data_fingerprint: :meth:`SeriesSet.fingerprint` of the training data.
        metrics: validation figures (macro-F1, accuracy, best epoch …).
        created: ISO-8601 UTC time of creation.
        version: cropglobe version that wrote it.
    """

    model: str
    params: dict[str, Any]
    bands: tuple[str, ...]
    grid: TimeGrid
    classes: tuple[str, ...]
    window: tuple[int, int] | None = None
    features: dict[str, Any] = field(default_factory=lambda: {"fill": "linear", "nan": 0.0})
    training: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    )
    version: str = ""

    def __post_init__(self) -> None:
        self.model = canonical_name(self.model)
        self.bands = tuple(str(b) for b in self.bands)
        self.classes = tuple(str(c) for c in self.classes)
        if self.window is not None:
            self.window = (int(self.window[0]), int(self.window[1]))
        if not self.version:
            from cropglobe import __version__

            self.version = __version__

    @property
    def model_grid(self) -> TimeGrid:
        """The grid the network sees: ``grid`` cut to ``window``."""
        return self.grid if self.window is None else self.grid.window(*self.window)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (inverse of :meth:`from_dict`)."""
        return {
            "format": _FORMAT,
            "format_version": _VERSION,
            "model": self.model,
            "params": self.params,
            "bands": list(self.bands),
            "grid": self.grid.to_dict(),
            "window": list(self.window) if self.window is not None else None,
            "classes": list(self.classes),
            "features": self.features,
            "training": self.training,
            "data_fingerprint": self.data_fingerprint,
            "metrics": self.metrics,
            "created": self.created,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "model card") -> ModelCard:
        """Rebuild a card; :class:`ModelError` when it is not a cropglobe model card."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ModelError(
                f"{source}: not a cropglobe model card (format {got!r}, "
                f"expected {_FORMAT!r}); point to a folder written by cropglobe.models.save_model"
            )
        version = d.get("format_version", _VERSION)
        if not isinstance(version, int) or version > _VERSION:
            raise ModelError(
                f"{source}: model card format version {version!r} is newer than this cropglobe "
                f"reads ({_VERSION}); upgrade cropglobe to use this model"
            )
        features = d.get("features") or {}
        unknown = sorted(set(features) - CARD_FEATURE_KEYS) if isinstance(features, dict) else []
        if unknown:  # a later version's preprocessing step, which this one would skip
            raise ModelError(
                f"{source}: the card's input preparation names {unknown}, which this cropglobe "
                f"does not know (the model was made by cropglobe {d.get('version') or '?'}); "
                "upgrade cropglobe to use this model"
            )
        try:
            return cls(
                model=d["model"],
                params=dict(d["params"]),
                bands=tuple(d["bands"]),
                grid=TimeGrid.from_dict(d["grid"]),
                classes=tuple(d["classes"]),
                window=(int(d["window"][0]), int(d["window"][1])) if d.get("window") else None,
                features=dict(d.get("features") or {}),
                training=dict(d.get("training") or {}),
                data_fingerprint=d.get("data_fingerprint"),
                metrics=dict(d.get("metrics") or {}),
                created=str(d.get("created", "")),
                version=str(d.get("version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"{source}: model card is incomplete or damaged ({type(exc).__name__}: {exc}); "
                "re-save the model"
            ) from None


def check_model_target(folder: str | os.PathLike[str]) -> Path:
    """The path a model folder is to be saved at, refused when saving would refuse it: a file,
    or a non-empty folder that holds no model (a dataset, say). Call it before training.

    Raises:
        ModelError: what is there and what to choose instead.
    """
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ModelError(f"{target} exists and is a file; choose a folder path for the model")
    if target.is_dir() and any(target.iterdir()) and not (target / CARD_FILE).is_file():
        raise ModelError(
            f"{target} exists and is not a cropglobe model folder; refusing to replace it — "
            "choose a new or empty folder"
        )
    return target


def save_model(
    folder: str | os.PathLike[str],
    model: Any,
    card: ModelCard | dict[str, Any],
    *,
    overwrite: bool = True,
) -> Path:
    """Write a model folder atomically: weights + ``card.json``.

    Args:
        folder: destination folder; an existing *model* folder is replaced only once the new one
            is complete; any other existing non-empty folder is refused.
        model: a torch model from :func:`create_model`, or a fitted
            :class:`~cropglobe.models.RandomForestModel` / :class:`~cropglobe.models.LightGBMModel`.
        card: the model card (or its dictionary).
        overwrite: False refuses to replace an existing model folder.

    Returns:
        The folder path.
    """
    target = check_model_target(folder)
    c = card if isinstance(card, ModelCard) else ModelCard.from_dict(card, "card")
    if target.exists() and not overwrite and (target / CARD_FILE).is_file():
        raise ModelError(f"{target} already holds a model; pass overwrite=True to replace it")
    card_text = json.dumps(c.to_dict(), indent=2, default=json_default)
    with atomic_dir(target) as tmp:
        if is_neural(c.model):
            from safetensors.torch import save_file

            state = {
                k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
            }
            # the bands and classes the weights were trained on, in order, travel with them: a
            # card edited (or swapped) later is caught at load instead of mislabelling
            meta = {"format": _FORMAT, "model": c.model}
            meta |= {"bands": json.dumps(list(c.bands)), "classes": json.dumps(list(c.classes))}
            save_file(state, str(tmp / WEIGHTS_FILE), metadata=meta)
        else:
            if not hasattr(model, "save"):
                raise ModelError(
                    f"model of type {type(model).__name__} cannot be saved as {c.model!r}; pass "
                    "the fitted cropglobe classical model"
                )
            model.save(tmp)
        (tmp / CARD_FILE).write_text(card_text)
    logger.info("saved %s model to %s", c.model, target)
    return target


def read_card(folder: str | os.PathLike[str]) -> ModelCard:
    """The :class:`ModelCard` of a model folder."""
    src = Path(folder)
    path = src / CARD_FILE
    if src.is_file():
        hint = (
            f"give the folder holding it: {src.parent}"
            if src.name == CARD_FILE or (src.parent / CARD_FILE).is_file()
            else "give the folder written by cropglobe train (or save_model)"
        )
        raise ModelError(
            f"{src}: is a file, but a model folder (holding {CARD_FILE}) is expected; {hint}"
        )
    if not src.is_dir():
        raise MissingFileError(
            f"{src}: no such model folder; expected a folder written by cropglobe "
            "train (or save_model)"
        )
    if not path.is_file():
        raise ModelError(f"{src}: no {CARD_FILE}; not a cropglobe model folder")
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise ModelError(f"{path}: unreadable model card ({exc}); re-save the model") from None
    return ModelCard.from_dict(data, str(path))


def load_model(folder: str | os.PathLike[str]) -> tuple[Any, ModelCard]:
    """Load a model folder written by :func:`save_model` (never unpickles).

    Returns:
        ``(model, card)`` — a torch model in eval mode on the CPU, or a fitted classical model.
    """
    src = Path(folder)
    card = read_card(src)
    if not is_neural(card.model):
        model = model_class(card.model).load(src)
        _check_classical_card(src, card, model)
        return model, card
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = src / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"{src}: {WEIGHTS_FILE} is missing; the model folder is incomplete")
    params = dict(card.params)
    missing = [k for k in ("n_classes", "n_bands", "n_steps") if k not in params]
    if missing:
        raise ModelError(
            f"{src / CARD_FILE}: model card params lack {', '.join(missing)}; the card is "
            "damaged, restore card.json or re-save the model"
        )
    _check_neural_card(src, card)
    try:
        model = construct(
            card.model,
            params.pop("n_classes"),
            params.pop("n_bands"),
            params.pop("n_steps"),
            **params,
        )
    except (TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        raise ModelError(
            f"{src / CARD_FILE}: the card does not match the weights in model folder {src}: "
            f"a {card.model!r} model cannot take the card's params ({describe_params(params)}: "
            f"{build_error_text(exc)}); the card is damaged or was edited, restore card.json or "
            "re-save the model"
        ) from None
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            stored = f.metadata() or {}
    except (SafetensorError, OSError) as exc:  # the file itself: cut short, not safetensors
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{path}: unreadable weights file ({msg}); it is damaged or truncated: copy the "
            f"model folder {src} again or re-train it"
        ) from None
    for name, have in (("bands", card.bands), ("classes", card.classes)):
        if name not in stored:  # weights saved before cropglobe recorded them
            continue
        try:
            trained = [str(v) for v in json.loads(stored[name])]
        except (ValueError, TypeError):
            continue
        if trained != list(have):
            raise ModelError(
                f"{src / CARD_FILE}: the card's {name} ({', '.join(have)}) are not those the "
                f"weights were trained on ({', '.join(trained)}, in this order); the card was "
                "edited or belongs to another model: restore card.json or re-save the model"
            )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = str(exc).splitlines()[0]
        raise ModelError(
            f"{path}: weights do not match the card's {card.model!r} model ({msg}); the card of "
            f"model folder {src} is damaged or was edited, restore card.json or re-save the model"
        ) from None
    model.eval()
    return model, card


def _card_steps(src: Path, card: ModelCard) -> int:
    """Time steps the model reads (the card's grid cut to its window)."""
    try:
        return len(card.model_grid)
    except CropGlobeError as exc:
        raise ModelError(
            f"{src / CARD_FILE}: the card's window {card.window} does not fit its grid "
            f"'{card.grid}' ({exc}); the card is damaged, restore card.json or re-save the model"
        ) from None


def _damaged(src: Path, what: str, card_says: object, model_says: object) -> ModelError:
    return ModelError(
        f"{src / CARD_FILE}: the card is damaged: it lists {card_says} {what} but the model "
        f"reads {model_says}; restore card.json of model folder {src} or re-save the model"
    )


def _check_neural_card(src: Path, card: ModelCard) -> None:
    """Refuse a card whose bands, steps or classes contradict its own network parameters."""
    p = card.params
    if p["n_classes"] != len(card.classes):
        raise _damaged(src, "classes", len(card.classes), f"{p['n_classes']} (params.n_classes)")
    if p["n_bands"] != len(card.bands):
        raise _damaged(src, "bands", len(card.bands), f"{p['n_bands']} (params.n_bands)")
    steps = _card_steps(src, card)
    if p["n_steps"] != steps:
        raise _damaged(
            src, "time steps (grid and window)", steps, f"{p['n_steps']} (params.n_steps)"
        )


def _check_classical_card(src: Path, card: ModelCard, model: Any) -> None:
    """Refuse a card whose bands or steps contradict the fitted estimator's input shape."""
    shape = getattr(model, "input_shape_", None)
    if shape is None or len(shape) != 2:
        return
    if shape[0] != len(card.bands):
        raise _damaged(src, "bands", len(card.bands), f"{shape[0]} (estimator input shape)")
    steps = _card_steps(src, card)
    if shape[1] != steps:
        raise _damaged(
            src, "time steps (grid and window)", steps, f"{shape[1]} (estimator input shape)"
        )


def check_compatible(card: ModelCard, ss: SeriesSet) -> None:
    """Refuse data whose bands or time grid differ from what the model was trained on.

    Data may be on the card's full grid or already cut to its window.

    Raises:
        BandError: bands missing, extra or in another order.
        GridError: another time grid or season anchor.
    """
    # a model reads one season; in data of several, which one a sample is read as would
    # depend on which sample comes first
    ss.require_one_season("prediction")
    if ss.bands != card.bands:
        missing = [b for b in card.bands if b not in ss.bands]
        if missing:
            raise BandError(
                f"data lacks bands {missing} the model needs; model bands {list(card.bands)}, "
                f"data bands {list(ss.bands)}; provide data with these bands"
            )
        raise BandError(
            f"data bands {list(ss.bands)} differ in order or number from the model's "
            f"{list(card.bands)}; select them by name first (SeriesSet.select_bands in Python; "
            "cropglobe predict and map pick the model's bands by name themselves)"
        )
    if ss.grid.same_axis(card.grid) or ss.grid.same_axis(card.model_grid):
        return
    raise GridError(
        f"data grid '{ss.grid}' differs from the model's '{card.grid}'"
        f"{f' (window {card.window[0]}–{card.window[1]})' if card.window else ''}; composite the "
        "data to the model's grid first"
    )


def model_inputs(card: ModelCard, ss: SeriesSet, *, shift: float = 0.0) -> NDArray[np.float32]:
    """Check ``ss`` against the card and return what the model reads.

    Neural models: the card's feature pipeline (:func:`~cropglobe.models.prepare_inputs`) runs on
    the data's own grid (gaps are filled over the full season, as in training), then the window
    is cut. Classical models get the windowed values with NaN (they route missing values).

    Args:
        card: the model card.
        ss: data on the card's full grid (or already cut to its window when ``shift`` is 0).
        shift: move the window by this many days (positive: later in the season) and resample
            it linearly to the model's steps, exactly as the training time shift does (ends
            clamped to the grid). Neural models with a window only; the data must hold the full
            grid so that the moved window has values to read.

    Returns:
        float32 (N, C, T_model).
    """
    check_compatible(card, ss)
    shift = float(shift)
    if shift != 0.0:
        if not is_neural(card.model) or card.window is None:
            raise ParameterError(
                f"a window shift needs a neural model trained on a window; {card.model!r} "
                f"{'has no window' if card.window is None else 'is a classical model'} "
                "(predict without shifts)"
            )
        if not ss.grid.same_axis(card.grid):
            raise GridError(
                f"a window shift needs the data on the model's full grid '{card.grid}', got "
                f"'{ss.grid}'; give the full-season series"
            )
    values = ss.values
    if is_neural(card.model):
        from cropglobe.models.inputs import prepare_inputs

        f = card.features
        scale = f.get("scale")
        values = prepare_inputs(
            values,
            grid=ss.grid,
            fill=str(f.get("fill", "linear")),
            scale=(scale[0], scale[1]) if scale else None,
            nan=float(f.get("nan", 0.0)),
        )
    if shift != 0.0 and card.window is not None:
        from cropglobe.augment import _window_bins, _window_positions, resample_window

        first, last = _window_bins(ss.grid, int(card.window[0]), int(card.window[1]))
        offsets = np.full((ss.n_samples, 2), shift, dtype=np.float64)
        start, end = _window_positions(ss.grid, first, last, offsets)
        values = resample_window(values, start, end, last - first + 1)
    elif card.window is not None and not ss.grid.same_axis(card.model_grid):
        values = values[:, :, ss.grid.window_indices(*card.window)]
    return np.ascontiguousarray(values, dtype=np.float32)


def composite_settings(data: SeriesSet) -> dict[str, Any]:
    """``{"composite": …}`` for a model card when ``data`` was composited from raw observations
    (reducer, gap filling), so that ``map`` composites a raster stack the same way; else ``{}``.
    """
    comp = data.attrs.get("composite")
    return {"composite": dict(comp)} if isinstance(comp, dict) else {}


def composite_of(card: ModelCard) -> dict[str, Any]:
    """How raw observations are composited for ``card`` (by ``predict`` from a table and by
    ``map`` from a raster stack alike): the card's ``features["composite"]`` settings, and
    where the card does not say (a model trained on series), the defaults of training from a
    table: median, linear gap filling across gaps up to ``"auto"`` days, ends held."""
    comp = card.features.get("composite") or {}
    return {
        "reducer": comp.get("reducer", "median"),
        "mask": comp.get("mask", "auto"),
        "fill": bool(comp.get("fill", True)),
        "max_gap_days": comp.get("max_gap_days", "auto"),
        "edge": comp.get("edge", "hold"),
    }


def proba_columns(model: Any, card: ModelCard, where: object = "model") -> NDArray[np.int64]:
    """Which of the card's classes each ``predict_proba`` column of ``model`` is.

    A neural network outputs the card's classes in order. A classical estimator outputs its
    ``classes_``: indices into ``card.classes`` (a class absent from its training data has no
    column) or class names (sorted alphabetically by scikit-learn).

    Raises:
        ModelError: a class the card does not know.
    """
    k = len(card.classes)
    if is_neural(card.model) or not hasattr(model, "classes_"):
        return np.arange(k, dtype=np.int64)
    cls = np.asarray(model.classes_)
    if np.issubdtype(cls.dtype, np.integer):
        cols = cls.astype(np.int64)
    else:
        names = [str(c) for c in cls]
        unknown = [n for n in names if n not in card.classes]
        if unknown:
            raise ModelError(
                f"{where}: model classes {unknown} are not in the card's classes "
                f"{list(card.classes)}; re-save the model with a matching card"
            )
        cols = np.array([card.classes.index(n) for n in names], dtype=np.int64)
    if cols.size and (cols.min() < 0 or cols.max() >= k):
        raise ModelError(
            f"{where}: model class indices {cols.tolist()} fall outside the card's "
            f"{k} classes; re-save the model with a matching card"
        )
    return cols


def card_proba(
    model: Any,
    card: ModelCard,
    values: NDArray[np.float32],
    *,
    device: Any = "cpu",
    batch_size: int = 1024,
    columns: NDArray[np.int64] | None = None,
) -> NDArray[np.float64]:
    """Class probabilities (N, len(card.classes)) in the card's class order, for any model.

    Args:
        values: the model's inputs (:func:`model_inputs`).
        columns: :func:`proba_columns` of the model, when already known.
    """
    from cropglobe.models.inputs import predict_proba

    if is_neural(card.model):
        return predict_proba(model, values, device=device, batch_size=batch_size)
    cols = proba_columns(model, card) if columns is None else columns
    out = np.zeros((values.shape[0], len(card.classes)), dtype=np.float64)
    for lo in range(0, values.shape[0], batch_size):
        out[lo : lo + batch_size, cols] = model.predict_proba(values[lo : lo + batch_size])
    return out


def shift_averaged_proba(
    model: Any,
    card: ModelCard,
    ss: SeriesSet,
    shifts: Any = DEFAULT_TTA_SHIFTS,
    *,
    device: Any = "cpu",
    batch_size: int = 1024,
) -> NDArray[np.float64]:
    """Test-time shift averaging: class probabilities averaged over calendar shifts.

    The model sees each sample's window moved by every shift in ``shifts`` (days; see
    :func:`model_inputs`) and the softmax outputs are averaged. A model trained with time-shift
    augmentation is meant to be invariant to such shifts; averaging over them marginalises
    the target's unknown phenology offset instead of betting on the nominal calendar. Uses
    no target labels and no target statistics (each sample on its own).

    Returns:
        float64 (N, K).
    """
    values = [float(s) for s in np.atleast_1d(np.asarray(shifts, dtype=np.float64))]
    if not values or not all(np.isfinite(values)):
        raise ParameterError(f"shifts must be a non-empty list of days, got {shifts!r}")
    probs = [
        card_proba(
            model, card, model_inputs(card, ss, shift=s), device=device, batch_size=batch_size
        )
        for s in values
    ]
    return np.asarray(np.mean(probs, axis=0), dtype=np.float64)


#: training values summarised per band for a model card (at most this many samples are read)
_PERCENTILE_SAMPLES = 200_000


def value_percentiles(ss: SeriesSet) -> dict[str, list[float]]:
    """Each band's 1st, 50th and 99th percentile of the training values, for a model card.

    ``map`` compares a raster stack's values with these to catch a stack on another scale
    (0–1 reflectance given to a model trained on reflectance × 10,000). NaN is ignored; a band
    without any value is left out. Large sets are summarised from an evenly strided subset of
    at most 200,000 samples (the percentiles of a scale check need no more).

    Returns:
        ``{band: [p1, p50, p99]}`` as floats, in band order.
    """
    step = max(1, -(-ss.n_samples // _PERCENTILE_SAMPLES))
    out: dict[str, list[float]] = {}
    for c, band in enumerate(ss.bands):
        v = np.asarray(ss.values[::step, c, :], dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            out[str(band)] = [float(q) for q in np.percentile(v, [1.0, 50.0, 99.0])]
    return out
