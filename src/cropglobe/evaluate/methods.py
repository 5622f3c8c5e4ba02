"""Methods of a transfer experiment: a feature pipeline + a model + an augmentation setting.

Each method fits on a labelled source :class:`SeriesSet` and returns a predictor whose
``predict_proba(ss)`` gives (N, K) probabilities over the data's whole class vocabulary
(classes the source lacks get probability 0), so every method is scored the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from cropglobe.errors import CropGlobeError
from cropglobe.series import SeriesSet, TimeGrid

__all__ = ["METHODS", "RF_TREES", "Method", "available_methods", "get_method"]

#: Trees of the random-forest methods (``rf-*``), the forest the paper compares with.
RF_TREES = 500


class UnknownMethodError(CropGlobeError, KeyError):
    """A method name is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


class Predictor(Protocol):
    """A fitted method."""

    def predict_proba(self, ss: SeriesSet) -> NDArray[np.float64]:
        """(N, K) probabilities over the data's vocabulary."""


@dataclass(frozen=True)
class Method:
    """A named recipe.

    Attributes:
        name: registry key (``cropnet-aug``).
        features: ``"series"`` (the windowed bands × time matrix, as CropNet and TempCNN see
            it), ``"median1d"`` (the same matrix flattened), ``"harmonic"`` (harmonic
            coefficients per band), or a precomputed family of the CropGlobe release read
            beside its series, row by row: ``"release:presto"``, ``"release:presto_maynov"``,
            ``"release:alphaearth"``, ``"release:harmonic"``
            (:class:`cropglobe.features.embeddings.ReleaseFeatures`; the window does not
            apply to them); or ``"table"``: the columns of a feature table given as the data
            (:func:`cropglobe.features.table.read_feature_table`).
        model: ``"cropnet"``, ``"mlp"``, ``"tempcnn"``, ``"transformer"``, ``"rf"`` or
            ``"lightgbm"``.
        augment: ``"none"``, or ``"auto"`` (online augmentation under the clean protocol, the
            release's offline copies under the paper protocol).
        description: one line for listings and reports.
        average: share of the final epochs whose weights are averaged (neural models; see
            :func:`cropglobe.train.train`); None: the best epoch's weights.
    """

    name: str
    features: str
    model: str
    augment: str
    description: str
    average: float | None = None

    def fit(
        self,
        train: SeriesSet,
        *,
        seed: int,
        config: Any,
        on_epoch: Callable[[int, float, float], Any] | None = None,
    ) -> Predictor:
        """Fit on a labelled source set with the experiment's config (window, epochs …).

        ``on_epoch(epoch, loss, val_macro_f1)`` is called after each epoch of neural methods.
        """
        train.require_one_season(f"training {self.name}")
        window = tuple(config.window) if config.window else None
        if self.model in ("rf", "lightgbm"):
            return _fit_classical(
                self, train, seed, window, getattr(config, "feature_options", None)
            )
        return _fit_neural(self, train, seed, window, config, on_epoch)


def _full_proba(proba: NDArray[Any], cols: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    out = np.zeros((proba.shape[0], k), dtype=np.float64)
    out[:, cols] = proba
    return out


def _feature_transformer(
    kind: str,
    window: tuple[int, int] | None,
    grid: TimeGrid,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """The transformer computing features ``kind`` (with the experiment's feature
    ``options``, e.g. ``{"harmonic": {"n_harmonics": 1}}``)."""
    from cropglobe.features import Harmonics, Median1D
    from cropglobe.features.embeddings import RELEASE_FEATURES, ReleaseFeatures

    if kind in RELEASE_FEATURES:
        return ReleaseFeatures(RELEASE_FEATURES[kind])
    if kind == "table":
        from cropglobe.features.table import FeatureColumns

        return FeatureColumns()
    win: Any = window if window is not None else (grid.edges[0], grid.edges[-1] - 1)
    if kind == "median1d":
        return Median1D(window=win)
    if kind == "harmonic":
        return Harmonics(window=win, **dict((options or {}).get("harmonic", {})))
    raise ValueError(kind)


@dataclass
class _ClassicalPredictor:
    transformer: Any
    model: Any
    columns: NDArray[np.int64]
    n_classes: int

    def predict_proba(self, ss: SeriesSet) -> NDArray[np.float64]:
        x = self.transformer.transform(ss)
        return _full_proba(self.model.predict_proba(x), self.columns, self.n_classes)


def _fit_classical(
    method: Method,
    train: SeriesSet,
    seed: int,
    window: tuple[int, int] | None,
    feature_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Predictor:
    from cropglobe.models.classical import LightGBMModel, RandomForestModel

    tr = train.subset(train.labels >= 0)
    transformer = _feature_transformer(method.features, window, tr.grid, feature_options).fit(tr)
    x = transformer.transform(tr)
    model: Any
    if method.model == "rf":
        model = RandomForestModel(n_estimators=RF_TREES, random_state=seed, n_jobs=-1)
    else:
        model = LightGBMModel(random_state=seed)
    model.fit(x, tr.labels)
    cols = np.asarray(model.classes_, dtype=np.int64)
    return _ClassicalPredictor(transformer, model, cols, len(train.classes))


@dataclass
class _NeuralPredictor:
    result: Any
    columns: NDArray[np.int64]
    n_classes: int
    device: str
    transformer: Any = None
    #: temperature fitted on the source's validation split (None: none, ``temperature_fit``
    #: says why), and how it was fitted (:func:`source_temperature`)
    temperature: float | None = None
    temperature_fit: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, ss: SeriesSet) -> NDArray[np.float64]:
        from cropglobe.models.folder import model_inputs
        from cropglobe.models.inputs import predict_proba

        data = ss if self.transformer is None else _as_feature_set(self.transformer, ss)
        x = model_inputs(self.result.card, data)
        proba = predict_proba(self.result.model, x, device=self.device)
        return _full_proba(proba, self.columns, self.n_classes)

    def selected_epoch(self) -> _NeuralPredictor | None:
        """With weight averaging: the same predictor on the best single epoch's weights."""
        if self.result.selected_model is None:
            return None
        from dataclasses import replace

        return _NeuralPredictor(
            replace(self.result, model=self.result.selected_model, selected_model=None),
            self.columns,
            self.n_classes,
            self.device,
            self.transformer,
        )


def _as_feature_set(transformer: Any, ss: SeriesSet) -> SeriesSet:
    """Flat features (N, F) as a one-step SeriesSet (N, F, 1) so the MLP trainer can use them."""
    x = np.asarray(transformer.transform(ss), dtype=np.float32)
    names = tuple(str(n) for n in transformer.get_feature_names_out())
    return SeriesSet(
        x[:, :, None],
        names,
        TimeGrid((1, 366), ss.grid.anchor, "features"),
        ss.labels,
        ss.classes,
        ss.meta,
        dict(ss.attrs),
    )


def _fit_neural(
    method: Method,
    train: SeriesSet,
    seed: int,
    window: tuple[int, int] | None,
    config: Any,
    on_epoch: Callable[[int, float, float], Any] | None = None,
) -> Predictor:
    from cropglobe.train import train as train_model

    tr = train.subset(train.labels >= 0)
    transformer = None
    if method.features != "series":
        options = getattr(config, "feature_options", None)
        transformer = _feature_transformer(method.features, window, tr.grid, options).fit(tr)
        tr = _as_feature_set(transformer, tr)
        window = None
    augment = "none" if method.augment == "none" or transformer is not None else None
    # the release's quirks (100 % train, validation on the training samples, offline copies)
    # are its CropNet script's; its other neural baselines hold out a validation split
    protocol = config.protocol if method.model == "cropnet" else "clean"
    result = train_model(
        method.model,
        tr,
        protocol=protocol,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        precision=config.precision,
        progress=on_epoch,
        augment=augment,
        seed=seed,
        device=config.device,
        window=window,
        average=method.average,
        model_options=getattr(config, "model_options", {}).get(method.model),
    )
    cols = np.asarray([train.classes.index(c) for c in result.classes], dtype=np.int64)
    predictor = _NeuralPredictor(result, cols, len(train.classes), config.device, transformer)
    labelled = train.subset(train.labels >= 0)  # the samples train() indexed, before features
    predictor.temperature, predictor.temperature_fit = source_temperature(
        predictor, labelled, result.val_index, protocol
    )
    return predictor


#: why a run has no temperature, by cause
NO_TEMPERATURE = {
    "paper": "paper protocol: validated on its own training samples, and a temperature "
    "fitted on samples the model trained on is biased (too low), so none was fitted",
    "classical": "classical model: no held-out validation split to fit one on, so none was fitted",
}


def source_temperature(
    predictor: Predictor,
    labelled: SeriesSet,
    val_index: NDArray[np.int64],
    protocol: str,
) -> tuple[float | None, dict[str, Any]]:
    """Temperature scaling fitted on the source: the temperature minimising the NLL of the
    model's probabilities on its validation split, samples held out of its training
    (:func:`cropglobe.evaluate.calibration.fit_temperature`).

    Args:
        predictor: the fitted method.
        labelled: its labelled training samples, in the order :func:`cropglobe.train.train`
            indexed them.
        val_index: the validation split's positions in ``labelled``
            (``TrainResult.val_index``).
        protocol: the protocol it trained under; ``"paper"`` validates on the training
            samples themselves, so no temperature is fitted.

    Returns:
        ``(T, details)``: T, or None when none was fitted; details ``n_val``, ``val_nll``,
        ``val_nll_scaled``, ``val_ece``, ``val_ece_scaled`` (the validation split before and
        after scaling), or ``reason`` when there is no T.
    """
    from cropglobe.errors import LabelError, ParameterError
    from cropglobe.evaluate.calibration import (
        apply_temperature,
        expected_calibration_error,
        fit_temperature,
        negative_log_likelihood,
    )

    if protocol == "paper":
        return None, {"reason": NO_TEMPERATURE["paper"]}
    idx = np.asarray(val_index, dtype=np.int64)
    val = labelled.subset(np.isin(np.arange(labelled.n_samples), idx))
    y = np.asarray(val.labels, dtype=np.int64)
    try:
        if y.size == 0:
            raise ParameterError("the run has no validation split")
        proba = predictor.predict_proba(val)
        temperature = fit_temperature(proba, y)
    except (LabelError, ParameterError) as exc:
        return None, {"reason": f"not fitted: {exc}", "n_val": int(y.size)}
    scaled = apply_temperature(proba, temperature)
    return temperature, {
        "n_val": int(y.size),
        "val_nll": negative_log_likelihood(y, proba),
        "val_nll_scaled": negative_log_likelihood(y, scaled),
        "val_ece": expected_calibration_error(y, proba),
        "val_ece_scaled": expected_calibration_error(y, scaled),
    }


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "cropnet-aug",
            "series",
            "cropnet",
            "auto",
            "CropNet on the 2D median image with phenology augmentation (the paper's model)",
        ),
        Method(
            "cropnet-aug-swa",
            "series",
            "cropnet",
            "auto",
            "CropNet with phenology augmentation, weights averaged over the last quarter "
            "of the epochs",
            average=0.25,
        ),
        Method("cropnet", "series", "cropnet", "none", "CropNet without augmentation"),
        Method(
            "rf-median1d",
            "median1d",
            "rf",
            "none",
            "random forest (500 trees, balanced) on flattened median composites",
        ),
        Method(
            "rf-harmonic",
            "harmonic",
            "rf",
            "none",
            "random forest on harmonic coefficients (n = 3, ω = 1)",
        ),
        Method(
            "lightgbm-median1d",
            "median1d",
            "lightgbm",
            "none",
            "LightGBM on flattened median composites",
        ),
        Method(
            "lightgbm-harmonic", "harmonic", "lightgbm", "none", "LightGBM on harmonic coefficients"
        ),
        Method("mlp-harmonic", "harmonic", "mlp", "none", "MLP (8 × 128) on harmonic coefficients"),
        Method(
            "mlp-median1d",
            "median1d",
            "mlp",
            "none",
            "MLP (8 × 128) on flattened median composites",
        ),
        Method(
            "rf-presto",
            "release:presto",
            "rf",
            "none",
            "random forest on the release's Presto embeddings (presto_embedding_S2_{CC}.npz)",
        ),
        Method(
            "rf-presto-maynov",
            "release:presto_maynov",
            "rf",
            "none",
            "random forest on the release's May–November Presto embeddings",
        ),
        Method(
            "rf-alphaearth",
            "release:alphaearth",
            "rf",
            "none",
            "random forest on the release's AlphaEarth embeddings (alphaearth_embedding_{CC}.npz)",
        ),
        Method(
            "mlp-presto", "release:presto", "mlp", "none", "MLP (8 × 128) on the Presto embeddings"
        ),
        Method(
            "mlp-alphaearth",
            "release:alphaearth",
            "mlp",
            "none",
            "MLP (8 × 128) on the AlphaEarth embeddings",
        ),
        Method(
            "rf-harmonic-release",
            "release:harmonic",
            "rf",
            "none",
            "random forest on the release's own harmonic coefficients "
            "(harmonic_{CC}_month5-11.npz)",
        ),
        Method(
            "rf-table",
            "table",
            "rf",
            "none",
            "random forest on a feature table's columns (cropglobe features: EMIT spectra, "
            "embeddings of your own …)",
        ),
        Method(
            "lightgbm-table", "table", "lightgbm", "none", "LightGBM on a feature table's columns"
        ),
        Method("mlp-table", "table", "mlp", "none", "MLP (8 × 128) on a feature table's columns"),
        Method("tempcnn", "series", "tempcnn", "none", "TempCNN over time"),
        Method("tempcnn-aug", "series", "tempcnn", "auto", "TempCNN with phenology augmentation"),
        Method(
            "transformer", "series", "transformer", "none", "Transformer encoder over time steps"
        ),
        Method(
            "transformer-aug",
            "series",
            "transformer",
            "auto",
            "Transformer encoder with phenology augmentation",
        ),
    )
}


def precomputed(method: Method) -> bool:
    """Whether ``method`` reads precomputed features of the release beside the series."""
    return method.features.startswith("release:")


def feature_files(fitted: Any) -> dict[str, str]:
    """Country -> SHA-256 of the precomputed feature files a fitted method read ({} for
    methods computing their features from the series)."""
    return dict(getattr(getattr(fitted, "transformer", None), "files_", None) or {})


def available_methods() -> tuple[str, ...]:
    """Registered method names."""
    return tuple(METHODS)


def get_method(name: str) -> Method:
    """The method called ``name``; an error listing the valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; valid methods: {', '.join(METHODS)}"
        ) from None
