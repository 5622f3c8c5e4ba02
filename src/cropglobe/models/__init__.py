"""Models: CropNet, MLP, TempCNN, Transformer (torch) and random forest / LightGBM baselines.

One architecture per file; :func:`create_model` builds any of them by name. Torch and
scikit-learn are imported only when a model module is used (attributes load lazily).
Neural models take NaN-free float input (B, C, T) or (B, 1, C, T): fill gaps first with
:func:`prepare_inputs`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cropglobe.models.registry import available_models, create_model, is_neural

if TYPE_CHECKING:
    from cropglobe.models.classical import LightGBMModel, RandomForestModel
    from cropglobe.models.cropnet import CropNet
    from cropglobe.models.folder import ModelCard, check_compatible, load_model, save_model
    from cropglobe.models.inputs import predict_proba, prepare_inputs
    from cropglobe.models.mlp import MLP
    from cropglobe.models.tempcnn import TempCNN
    from cropglobe.models.transformer import Transformer

__all__ = [
    "MLP",
    "CropNet",
    "LightGBMModel",
    "ModelCard",
    "RandomForestModel",
    "TempCNN",
    "Transformer",
    "available_models",
    "check_compatible",
    "create_model",
    "is_neural",
    "load_model",
    "predict_proba",
    "prepare_inputs",
    "save_model",
]

_LAZY = {
    "CropNet": "cropglobe.models.cropnet",
    "MLP": "cropglobe.models.mlp",
    "TempCNN": "cropglobe.models.tempcnn",
    "Transformer": "cropglobe.models.transformer",
    "RandomForestModel": "cropglobe.models.classical",
    "LightGBMModel": "cropglobe.models.classical",
    "ModelCard": "cropglobe.models.folder",
    "check_compatible": "cropglobe.models.folder",
    "load_model": "cropglobe.models.folder",
    "save_model": "cropglobe.models.folder",
    "predict_proba": "cropglobe.models.inputs",
    "prepare_inputs": "cropglobe.models.inputs",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cropglobe.models' has no attribute {name!r}")
