"""ONNX export of the neural models and an onnxruntime inference path.

:func:`export_onnx` writes a model (input ``x`` float32 (B, C, T), output ``logits`` (B, K),
dynamic batch) with torch's ONNX exporter; :class:`OnnxClassifier` runs it with onnxruntime and
gives the same probabilities as the torch model (to about 1e-5). Needs the optional packages
``onnx``, ``onnxscript`` (export) and ``onnxruntime`` (inference).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cropglobe._fs import atomic_path
from cropglobe.errors import DataFormatError, MissingFileError, ModelError, ParameterError

__all__ = ["OnnxClassifier", "export_model_folder", "export_onnx", "quantize_int8"]

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(
            f"ONNX support needs the package {extra!r}, which is not installed; "
            f"install it with: pip install {extra}"
        ) from None


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    n_bands: int,
    n_steps: int,
    opset: int = 18,
) -> Path:
    """Export a torch classifier to ONNX (atomic write).

    Args:
        model: a neural model from :func:`cropglobe.models.create_model` (any ``nn.Module`` with
            input (B, C, T) and logits output).
        path: the ``.onnx`` file to write.
        n_bands: C of the input.
        n_steps: T of the input.
        opset: ONNX opset version.

    Returns:
        The written path. The graph has input ``x`` float32 (batch, C, T) with a dynamic batch
        size and output ``logits`` float32 (batch, K).
    """
    import torch

    _need("onnx", "onnx")
    _need("onnxscript", "onnxscript")
    target = Path(path)
    was_training = model.training
    model.eval()
    example = torch.zeros(2, int(n_bands), int(n_steps), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # quiet the exporter's registry chatter (torchvision ops …)
    try:
        with atomic_path(target) as tmp, warnings.catch_warnings():
            # torch's exporter trips over its own deprecations (FutureWarning/DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(
                model,
                (example,),
                input_names=["x"],
                output_names=["logits"],
                dynamic_shapes=({0: batch},),
                opset_version=int(opset),
                dynamo=True,
                verbose=False,
            )
            if program is None:  # pragma: no cover - the dynamo exporter always returns one
                raise ModelError("torch.onnx.export returned no program")
            program.save(str(tmp))
    finally:
        onnx_log.setLevel(level)
        model.train(was_training)
    logger.info("exported ONNX model to %s", target)
    return target


def quantize_int8(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    calibration: NDArray[np.float32],
    *,
    batch_size: int = 128,
    reduce_range: bool | None = None,
) -> Path:
    """Static int8 quantization of an exported model, calibrated on real inputs.

    Weights are quantized per output channel to int8 and activations to uint8 with ranges
    measured on ``calibration`` (onnxruntime's min/max calibration), in the QOperator format
    (``QLinearConv`` / ``QLinearMatMul``), which onnxruntime runs with integer kernels (VNNI
    where the CPU has it). Static rather than dynamic quantization: dynamic quantization turns
    convolutions into ``ConvInteger`` plus float re-quantization at run time, which is several
    times *slower* than float32 for CropNet.

    Args:
        model: the float32 ``.onnx`` file (from :func:`export_onnx`).
        output: the int8 ``.onnx`` file to write (not atomic; write to a temporary path).
        calibration: float32 (N, C, T) model inputs representative of the data to predict
            (a few hundred to a few thousand pixels).
        batch_size: calibration batch size.
        reduce_range: quantize weights to 7 bits. x86 CPUs without VNNI multiply uint8 by
            int8 in pairs summed into 16 bits, which saturates with full-range weights (measured:
            a TempCNN map agreeing on 94.7 % of pixels with float32 on an AVX2 CPU, on 99.4 %
            with 7-bit weights). None: 7 bits unless the CPU has VNNI (:func:`has_vnni`) —
            quantize on the machine that will run the model, as ``cropglobe map`` does.

    Returns:
        ``output`` as a Path.
    """
    _need("onnx", "onnx")
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ModelError(
            "int8 quantization needs onnxruntime with its quantization tools; "
            "pip install onnxruntime onnx"
        ) from None
    x = np.ascontiguousarray(calibration, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ParameterError(
            f"calibration inputs must be a non-empty (N, C, T) array, got shape {x.shape}"
        )
    batches = [x[i : i + batch_size] for i in range(0, x.shape[0], batch_size)]

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            xb = next(self._it, None)
            return None if xb is None else {"x": xb}

    out = Path(output)
    with tempfile.TemporaryDirectory(prefix="cropglobe-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre))
        quantize_static(
            str(pre),
            str(out),
            _Reader(),
            quant_format=QuantFormat.QOperator,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=not has_vnni() if reduce_range is None else bool(reduce_range),
        )
    return out


def has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has 8-bit dot-product instructions (AVX-512 VNNI or AVX-VNNI), from the
    flags of ``cpuinfo`` (default: ``/proc/cpuinfo``; False where it cannot be read: the safe
    answer)."""
    text = cpuinfo
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_vnni", "avx_vnni"})
    return False


class OnnxClassifier:
    """Class probabilities from an exported ONNX model with onnxruntime.

    Args:
        path: the ``.onnx`` file.
        providers: onnxruntime execution providers (default: CPU).
        threads: intra-op threads (None: onnxruntime's default).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        ort = _need("onnxruntime", "onnxruntime")
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(f"{p}: no such ONNX file; export one with export_onnx")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(p), opts, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{p}: not a loadable ONNX model ({exc})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape

    def logits(self, values: ArrayLike, *, batch_size: int = 4096) -> NDArray[np.float32]:
        """Raw logits (N, K) of prepared (gap-filled) float input (N, C, T)."""
        x = np.ascontiguousarray(values, dtype=np.float32)
        if x.ndim != 3 or any(
            isinstance(d, int) and d != s
            for d, s in zip(self.input_shape[1:], x.shape[1:], strict=True)
        ):
            raise DataFormatError(
                f"ONNX model expects input (batch, {self.input_shape[1]}, {self.input_shape[2]}), "
                f"got {x.shape}"
            )
        outs = [
            self.session.run(None, {self.input_name: x[lo : lo + batch_size]})[0]
            for lo in range(0, x.shape[0], batch_size)
        ]
        return np.concatenate(outs).astype(np.float32)

    def predict_proba(self, values: ArrayLike, *, batch_size: int = 4096) -> NDArray[np.float64]:
        """Softmax probabilities (N, K) float64."""
        z = self.logits(values, batch_size=batch_size).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def export_model_folder(folder: str | os.PathLike[str]) -> Path:
    """Write ``model.onnx`` into a neural model folder (shapes from its model card)."""
    from cropglobe.models.folder import load_model
    from cropglobe.models.registry import is_neural

    model, card = load_model(folder)
    if not is_neural(card.model):
        raise ModelError(
            f"{folder}: a {card.model!r} model has no ONNX export; only neural models do"
        )
    return export_onnx(
        model,
        Path(folder) / ONNX_FILE,
        n_bands=int(card.params["n_bands"]),
        n_steps=int(card.params["n_steps"]),
    )
