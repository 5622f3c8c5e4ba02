"""Getting series ready for a network, and batched inference.

Neural models take NaN-free float input: gaps are filled *before* the network, by the caller,
with :func:`prepare_inputs` (the same linear filling that :class:`cropglobe.augment.
ObservationDropout` uses in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cropglobe.errors import DataFormatError, ParameterError
from cropglobe.series import TimeGrid

__all__ = [
    "native_bf16_cpu",
    "predict_proba",
    "prepare_inputs",
    "resolve_device",
    "resolve_precision",
]


def prepare_inputs(
    values: ArrayLike,
    *,
    grid: TimeGrid | None = None,
    fill: str = "linear",
    scale: tuple[Sequence[float] | float, Sequence[float] | float] | None = None,
    nan: float = 0.0,
) -> NDArray[np.float32]:
    """Gap-fill, optionally scale per band, and replace what is still missing.

    Args:
        values: float (N, C, T); NaN marks a missing observation.
        grid: time axis of ``values`` (bin centres weight the interpolation); None means equally
            spaced steps.
        fill: ``"linear"`` — :func:`cropglobe.composite.fill_gaps`: linear interpolation in
            time between the nearest valid steps, leading/trailing gaps hold the nearest value;
            ``"none"`` — no filling.
        scale: ``(offset, divisor)``, scalars or per-band (C,) sequences: values become
            ``(x − offset) / divisor``. None (the paper: no normalisation) keeps values.
        nan: value that replaces NaN left after filling (samples with no observation at all),
            after scaling.

    Returns:
        float32 (N, C, T) without NaN.
    """
    given = values
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 3:
        raise DataFormatError(
            f"values must be a 3-D array (samples, bands, time), got shape {v.shape}"
        )
    if grid is not None and grid.n_steps != v.shape[2]:
        raise ParameterError(f"grid has {grid.n_steps} steps, values have {v.shape[2]}")
    if fill == "linear":
        from cropglobe.composite import fill_gaps

        v = fill_gaps(v, grid if grid is not None else _unit_grid(v.shape[2]), edge="hold")
    elif fill != "none":
        raise ParameterError(f"fill must be 'linear' or 'none', got {fill!r}")
    if scale is not None:
        off = np.asarray(scale[0], dtype=np.float32).reshape(-1, 1)
        div = np.asarray(scale[1], dtype=np.float32).reshape(-1, 1)
        if np.any(div == 0):
            raise ParameterError("scale divisor must not be 0")
        v = (v - off) / div
    if np.may_share_memory(v, np.asarray(given)):  # never write into the caller's array
        v = v.copy()  # (filling and scaling made copies; fill="none" alone did not)
    np.copyto(v, np.float32(nan), where=np.isnan(v))
    return v


def _unit_grid(n_steps: int) -> TimeGrid:
    if not 1 <= n_steps <= 365:
        raise ParameterError(
            f"cannot gap-fill {n_steps} time steps without a grid; pass grid= (the SeriesSet's)"
        )
    return TimeGrid(tuple(range(1, n_steps + 2)), kind="steps")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX-512 BF16 or AMX-BF16; Linux flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: Any) -> str:
    """``"fp32"`` or ``"bf16"`` for a training precision setting on ``device``.

    ``"auto"`` is bf16 on CUDA and on CPUs with native bf16 (:func:`native_bf16_cpu`), float32
    elsewhere (bf16 emulated in software would be slower than float32).
    """
    if precision != "auto":
        return precision
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cuda" or (kind == "cpu" and native_bf16_cpu()):
        return "bf16"
    return "fp32"


def resolve_device(device: Any) -> Any:
    """A ``torch.device`` for ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …; clear error if unavailable.

    ``"auto"`` is the first CUDA GPU when torch sees one, else the CPU.
    """
    import torch

    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(
            f"device {device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"device {device!r} asked for CUDA but no CUDA GPU is available; use device='cpu' "
            "(--device cpu)"
        )
    return dev


def predict_proba(
    model: Any,
    values: ArrayLike,
    *,
    batch_size: int = 1024,
    device: Any = "cpu",
) -> NDArray[np.float64]:
    """Class probabilities (N, K) of a neural model (eval mode, softmax) or a classical one.

    Args:
        model: a torch ``nn.Module`` returning logits, or an estimator with ``predict_proba``.
        values: float (N, C, T), already prepared (see :func:`prepare_inputs`) for neural models.
        batch_size: samples per forward pass.
        device: torch device for neural models; a model whose weights are elsewhere (e.g. one
            just loaded on the CPU) is moved there.

    Returns:
        float64 (N, K).
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        return np.asarray(model.predict_proba(values), dtype=np.float64)
    x = np.asarray(values, dtype=np.float32)
    if np.isnan(x).any():
        raise DataFormatError(
            "neural model input contains NaN; fill gaps first with "
            "cropglobe.models.prepare_inputs(values, grid=...)"
        )
    dev = resolve_device(device)
    weights = next(iter(model.parameters()), None)
    if weights is not None and weights.device != dev:
        model.to(dev)
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for lo in range(0, x.shape[0], batch_size):
                xb = torch.from_numpy(x[lo : lo + batch_size]).to(dev)
                outs.append(torch.softmax(model(xb).float(), dim=1).cpu().numpy())
    finally:
        model.train(was_training)
    k = int(getattr(model, "config", {}).get("n_classes", 0))
    if not outs:
        return np.zeros((0, k), dtype=np.float64)
    return np.concatenate(outs).astype(np.float64)
