"""Model names -> constructors: :func:`create_model` and :func:`available_models`."""

from __future__ import annotations

import importlib
from typing import Any

from cropglobe.errors import ModelError

__all__ = ["MODELS", "available_models", "create_model", "is_neural"]

#: name -> (module, class, kind). Modules are imported only when a model is created.
MODELS: dict[str, tuple[str, str, str]] = {
    "cropnet": ("cropglobe.models.cropnet", "CropNet", "neural"),
    "mlp": ("cropglobe.models.mlp", "MLP", "neural"),
    "tempcnn": ("cropglobe.models.tempcnn", "TempCNN", "neural"),
    "transformer": ("cropglobe.models.transformer", "Transformer", "neural"),
    "random_forest": ("cropglobe.models.classical", "RandomForestModel", "classical"),
    "lightgbm": ("cropglobe.models.classical", "LightGBMModel", "classical"),
}

_ALIASES = {
    "rf": "random_forest",
    "randomforest": "random_forest",
    "lgbm": "lightgbm",
    "temp_cnn": "tempcnn",
}


def available_models() -> tuple[str, ...]:
    """The valid model names, sorted."""
    return tuple(sorted(MODELS))


def canonical_name(name: str) -> str:
    """The registry name of ``name`` (case-insensitive, ``-`` = ``_``, aliases such as ``rf``)."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise ModelError(f"unknown model {name!r}; expected one of {', '.join(available_models())}")
    return key


def is_neural(name: str) -> bool:
    """True for torch models (trained with :func:`cropglobe.train.train`)."""
    return MODELS[canonical_name(name)][2] == "neural"


def model_class(name: str) -> Any:
    """The class registered under ``name``."""
    module, cls, _ = MODELS[canonical_name(name)]
    return getattr(importlib.import_module(module), cls)


def create_model(name: str, n_classes: int, n_bands: int = 10, n_steps: int = 43, **kw: Any) -> Any:
    """Build a model by name.

    Args:
        name: one of :func:`available_models` (aliases ``rf``, ``lgbm``).
        n_classes: number of classes K.
        n_bands: number of bands C.
        n_steps: number of time steps T.
        **kw: model hyperparameters (e.g. ``width`` for CropNet, ``days`` for the Transformer,
            ``n_estimators`` for the forest).

    Returns:
        an ``nn.Module`` for neural models (input (B, C, T), output logits (B, K)); an
        unfitted scikit-learn estimator for classical ones (``n_classes``, ``n_bands`` and
        ``n_steps`` are implied by the data they are fitted on).
    """
    if int(n_classes) < 2:
        raise ModelError(f"n_classes must be >= 2, got {n_classes}; a classifier needs 2 classes")
    key = canonical_name(name)
    try:
        return construct(key, n_classes, n_bands, n_steps, **kw)
    except _BUILD_ERRORS as exc:
        raise ModelError(
            f"bad hyperparameters for model {key!r} ({describe_params(kw)}): "
            f"{build_error_text(exc)}; give values like the model's defaults"
        ) from None


#: what a model constructor raises on hyperparameters it cannot take
_BUILD_ERRORS = (TypeError, ValueError, RuntimeError, OverflowError, MemoryError)


def construct(name: str, n_classes: int, n_bands: int, n_steps: int, **kw: Any) -> Any:
    """Call the constructor of ``name`` as :func:`create_model` does, without rewording what
    it raises (``TypeError``, ``ValueError`` … on bad hyperparameters): callers that know where
    the hyperparameters came from (a model card) word the error themselves."""
    key = canonical_name(name)
    cls = model_class(key)
    if MODELS[key][2] == "classical":
        return cls(**kw)
    return cls(int(n_classes), int(n_bands), int(n_steps), **kw)


def describe_params(kw: dict[str, Any]) -> str:
    """``width=8, dropout=0.2`` (or ``the defaults``), for error messages."""
    return ", ".join(f"{k}={v!r}" for k, v in kw.items()) or "the defaults"


def build_error_text(exc: BaseException) -> str:
    """The first line of what a constructor raised (at most 160 characters)."""
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
