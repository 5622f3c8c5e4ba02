"""Training neural crop classifiers: the paper protocol and the clean protocol, resumable.

Both protocols use Adam (learning rate 1e-4, no schedule), batches of 256, balanced
cross-entropy (class weight N / (K · n_c)) and keep the epoch with the best validation
macro-F1 (REFERENCE.md "Training and evaluation protocol").

- ``protocol="clean"`` (default): a seeded, stratified 20 % held-out validation split (or the
  ``val`` set you give; repeated samples stay on one side of it), online augmentation (fresh
  draws every batch, shift and scale composed), optional early stopping.
- ``protocol="paper"``: the release's recipe — train on 100 % of the source, validate on the same
  un-augmented samples, offline augmentation (original + 2 copies, scale replaces shift) with
  the release's details (whole-day draws, whole bins resampled half-pixel-centred, not-a-knot
  warp spline: :func:`cropglobe.augment.paper_augmentation`). Transfer experiments with this
  protocol also drop duplicate samples first, as the release does.

An epoch with augmentation steps through as many samples as the release's offline set: the
originals plus ``copies`` (2) augmented copies, i.e. ``1 + copies`` shuffled passes over the
training samples, each freshly augmented online. With one pass per epoch, 50 epochs of online
augmentation were a third of the release's training and the best epoch was usually the last.
Measured effect on CAN → FRA (docs/results.md): held-out Canadian macro-F1 0.79, but no gain in
transfer (3-seed mean macro-F1 60.5 % against 62.2 % with one pass). Without augmentation an
epoch is one pass, as in the release.

Precision: ``"auto"`` trains with bf16 autocast on CUDA and on CPUs with native bf16 arithmetic
(AVX-512 BF16 or AMX; about 2× the float32 throughput of CropNet there, at equal accuracy — see
``benchmarks/train.py``), float32 elsewhere.

Reproducible: everything random is drawn from generators seeded by ``seed`` (model init and
dropout inside a forked torch RNG, so the caller's global state is untouched; batch order from a
``torch.Generator``; augmentation from a ``numpy.random.Generator``); on CPU deterministic
algorithms are switched on for the run. After every epoch a checkpoint (weights, optimizer,
RNG states, history, best weights) is written atomically to ``checkpoint_dir``; ``resume=True``
continues an interrupted run to the same final weights as an uninterrupted one. Checkpoints are
safetensors + JSON metadata: nothing is ever unpickled.

Weight averaging (``average=``, off by default): the weights after every step of the final
share of epochs are averaged, BatchNorm statistics recomputed, and the result returned beside
the best single epoch (``TrainResult.selected_model``). On CAWa it transferred worse than the
best epoch (docs/results.md), so it is an option, not a default.

Inputs are gap-filled once on the full season grid (linear in time, edges hold; see
:func:`cropglobe.models.prepare_inputs`) before augmentation and the network; values are used
without normalisation, as in the paper.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cropglobe._fs import atomic_path
from cropglobe.augment import DEFAULT_WINDOW, Compose, augment_offline, get_augmentation
from cropglobe.errors import (
    BandError,
    DataFormatError,
    GridError,
    LabelError,
    ModelError,
    ParameterError,
)
from cropglobe.models.folder import ModelCard, composite_settings, value_percentiles
from cropglobe.models.inputs import prepare_inputs, resolve_device, resolve_precision
from cropglobe.models.registry import MODELS, canonical_name, create_model
from cropglobe.series import SeriesSet

__all__ = ["TrainResult", "balanced_class_weights", "stratified_split", "train"]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.safetensors"
ProgressFn = Callable[[int, float, float], Any]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the torch model holding the best epoch's weights, in eval mode, on ``device``.
        card: the model card for :func:`cropglobe.models.save_model` (None when the model is
            not a registered architecture).
        history: one dict per epoch: ``epoch`` (1-based), ``loss`` (mean training loss),
            ``val_f1`` (macro-F1), ``val_accuracy``, ``seconds``.
        best_epoch: 1-based epoch whose weights were kept.
        best_val_f1: its validation macro-F1 (0 … 1).
        classes: class names of the model outputs (the classes present in the training data).
        train_index: positions (in the labelled training set) used for fitting.
        val_index: positions used for validation (the same as ``train_index`` under
            ``protocol="paper"``; empty when a separate ``val`` set was given).
        averaged_epochs: with weight averaging, the first and last epoch averaged (``model``
            then holds the averaged weights); None otherwise.
        averaged_val_f1: validation macro-F1 of the averaged weights (None without averaging).
        selected_model: with weight averaging, a second model holding the best epoch's weights
            (what ``model`` would be without averaging); None otherwise.
    """

    model: Any
    card: ModelCard | None
    history: list[dict[str, float]]
    best_epoch: int
    best_val_f1: float
    classes: tuple[str, ...]
    train_index: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    val_index: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    averaged_epochs: tuple[int, int] | None = None
    averaged_val_f1: float | None = None
    selected_model: Any = None


# ---------------------------------------------------------------------------------- helpers
def balanced_class_weights(labels: NDArray[np.int64], n_classes: int) -> NDArray[np.float32]:
    """Weights N / (K · n_c) for labels 0 … K−1 (0 for a class without samples)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, labels.size / (n_classes * np.maximum(counts, 1.0)), 0.0)
    return w.astype(np.float32)


def stratified_split(
    labels: NDArray[np.int64], fraction: float, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Seeded stratified split: ``round(fraction · n_c)`` (at least 1) samples of every class
    with n_c >= 2 go to validation; single-sample classes stay in training.

    Returns:
        (train positions, validation positions), both sorted.
    """
    val: list[NDArray[np.int64]] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size < 2:
            continue
        k = min(max(1, round(fraction * idx.size)), idx.size - 1)
        val.append(rng.permutation(idx)[:k])
    v = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    t = np.setdiff1d(np.arange(labels.size), v)
    return t.astype(np.int64), v.astype(np.int64)


def split_apart(
    x: NDArray[np.float32], labels: NDArray[np.int64], fraction: float, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """:func:`stratified_split` that never puts identical inputs on both sides: it splits the
    distinct rows of ``x`` and sends every repeat to the side of its first occurrence, so a
    duplicated sample cannot be validated on after training on its copy. Without repeats it is
    exactly :func:`stratified_split`.

    Returns:
        (train positions, validation positions), both sorted.
    """
    from cropglobe.series import equal_rows

    head = equal_rows(x)
    firsts = np.flatnonzero(head == np.arange(head.size))
    if firsts.size == head.size:
        return stratified_split(labels, fraction, rng)
    _, v = stratified_split(labels[firsts], fraction, rng)
    is_val = np.zeros(head.size, dtype=bool)
    is_val[firsts[v]] = True
    is_val = is_val[head]
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def _macro_f1(y_true: NDArray[np.int64], y_pred: NDArray[np.int64]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    f1 = f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0.0)
    return float(f1), float(np.mean(y_true == y_pred))


def _check_args(
    protocol: str,
    epochs: int,
    batch_size: int,
    lr: float,
    early_stopping: int | None,
    val_fraction: float,
    precision: str,
    average: float | None = None,
) -> None:
    if protocol not in ("clean", "paper"):
        raise ParameterError(f"protocol must be 'clean' or 'paper', got {protocol!r}")
    if int(epochs) < 1:
        raise ParameterError(f"epochs must be >= 1, got {epochs!r}")
    if int(batch_size) < 2:
        raise ParameterError(f"batch_size must be >= 2 (BatchNorm), got {batch_size!r}")
    if not float(lr) > 0:
        raise ParameterError(f"lr must be a positive learning rate, got {lr!r}")
    if early_stopping is not None and int(early_stopping) < 1:
        raise ParameterError(
            f"early_stopping must be None or a patience >= 1 epochs, got {early_stopping!r}"
        )
    if not 0.0 < float(val_fraction) < 1.0:
        raise ParameterError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if precision not in ("auto", "fp32", "bf16"):
        raise ParameterError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if average is not None:
        if not 0.0 < float(average) <= 1.0:
            raise ParameterError(
                f"average must be None or the share (0, 1] of final epochs to average, "
                f"got {average!r}"
            )
        if early_stopping is not None:
            raise ParameterError(
                "weight averaging and early stopping cannot be combined (the averaged epochs "
                "are the last ones); drop --average or --early-stopping (average=None or "
                "early_stopping=None)"
            )


def _labelled(ss: SeriesSet, what: str) -> SeriesSet:
    if not isinstance(ss, SeriesSet):
        raise DataFormatError(f"{what} must be a cropglobe SeriesSet, got {type(ss).__name__}")
    keep = ss.labels >= 0
    if not keep.all():
        logger.info("%s: ignoring %d unlabelled samples", what, int((~keep).sum()))
        ss = ss.subset(keep)
    if ss.n_samples == 0:
        raise DataFormatError(f"{what} holds no labelled sample; give labelled series to train on")
    return ss.validate(what)


@contextlib.contextmanager
def _deterministic(device_type: str) -> Iterator[None]:
    """Training of one seed gives the same weights every time (and when resumed).

    On the CPU, torch's deterministic algorithms. On CUDA, cuDNN's deterministic convolution
    kernels (its default autotuned ones accumulate with atomics: two runs of one seed drifted
    apart by 2e-4 in the weights after four epochs); torch's global deterministic mode is not
    switched on there, since cuBLAS would need ``CUBLAS_WORKSPACE_CONFIG`` set before CUDA
    starts.
    """
    import torch

    if device_type == "cuda":
        cudnn = torch.backends.cudnn
        prev_cudnn = (cudnn.deterministic, cudnn.benchmark)
        cudnn.deterministic, cudnn.benchmark = True, False
        try:
            yield
        finally:
            cudnn.deterministic, cudnn.benchmark = prev_cudnn
        return
    if device_type != "cpu":
        yield
        return
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev)


# ---------------------------------------------------------------------------------- checkpoints
def _save_checkpoint(
    path: Path,
    model: Any,
    optimizer: Any,
    best_state: dict[str, Any],
    shuffle_gen: Any,
    aug_rng: np.random.Generator,
    meta: dict[str, Any],
    avg_state: dict[str, Any] | None = None,
) -> None:
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous().clone()
    for k, v in best_state.items():
        tensors[f"best.{k}"] = v.detach().cpu().contiguous().clone()
    for k, v in (avg_state or {}).items():
        tensors[f"avg.{k}"] = v.detach().cpu().contiguous().clone()
    osd = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in osd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.shuffle"] = shuffle_gen.get_state()
    if torch.cuda.is_available() and meta.get("device_type") == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    info = dict(meta)
    info["optim_param_groups"] = osd["param_groups"]
    info["optim_scalars"] = scalars
    info["aug_rng"] = aug_rng.bit_generator.state
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"cropglobe": json.dumps(info)})


def _load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})["cropglobe"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise ModelError(
            f"{path}: unreadable or foreign training checkpoint ({exc}); delete it or train "
            "without resuming (resume=False, no --resume)"
        ) from None
    return tensors, meta


def _restore(
    tensors: dict[str, Any],
    meta: dict[str, Any],
    model: Any,
    optimizer: Any,
    shuffle_gen: Any,
    aug_rng: np.random.Generator,
    avg_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import torch

    if avg_state is not None:
        for k, v in tensors.items():
            if k.startswith("avg."):
                avg_state[k[4:]].copy_(v)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, sc in meta.get("optim_scalars", {}).items():
        state.setdefault(int(pid), {}).update(sc)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    shuffle_gen.set_state(tensors["rng.shuffle"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    aug_rng.bit_generator.state = meta["aug_rng"]
    return best


# ---------------------------------------------------------------------------------- train
def train(
    model: str | Any,
    train: SeriesSet,
    val: SeriesSet | None = None,
    *,
    protocol: str = "clean",
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-4,
    augment: str | Compose | None = None,
    seed: int = 82,
    device: Any = "cpu",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    early_stopping: int | None = None,
    progress: ProgressFn | None = None,
    window: tuple[int, int] | None = DEFAULT_WINDOW,
    val_fraction: float = 0.2,
    copies: int = 2,
    precision: str = "auto",
    model_options: dict[str, Any] | None = None,
    average: float | None = None,
    model_kw: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a neural classifier on a labelled :class:`SeriesSet`.

    Args:
        model: a registered name (``"cropnet"``, ``"mlp"``, ``"tempcnn"``, ``"transformer"``) or
            a torch module built for K classes (input (B, C, T), output logits (B, K)).
        train: labelled series (N, C, T) on the full season grid (e.g. CropGlobe's 73 bins),
            so that time shifts can reach outside the window; unlabelled samples are ignored.
        val: separate validation set (same bands and grid); None: a stratified split of
            ``train`` (clean protocol) or ``train`` itself (paper protocol).
        protocol: ``"clean"`` or ``"paper"`` (see the module docstring).
        epochs: number of epochs.
        batch_size: samples per step.
        lr: Adam learning rate.
        augment: ``"online"``, ``"paper"`` (offline copies), ``"none"`` or a
            :class:`~cropglobe.augment.Compose` (applied online); None picks ``"paper"`` for
            the paper protocol and ``"online"`` for the clean one.
        seed: seeds model init, dropout, batch order, split and augmentation.
        device: torch device (``"cpu"``, ``"cuda"`` …).
        checkpoint_dir: folder for the per-epoch checkpoint (None: no checkpoints).
        resume: continue from the checkpoint in ``checkpoint_dir`` when there is one.
        early_stopping: stop after this many epochs without a better validation macro-F1
            (None: run all epochs).
        progress: called after every epoch with ``(epoch, mean training loss, val macro-F1)``.
        window: (start, end) days of season the model sees; None: the whole grid.
        val_fraction: validation share of the clean protocol's split.
        copies: augmented copies per sample: the offline (``"paper"``) set holds the originals
            plus ``copies`` copies; an online epoch is ``1 + copies`` augmented passes.
        precision: ``"auto"`` (bf16 autocast on CUDA and on CPUs with native bf16, float32
            otherwise), ``"fp32"`` or ``"bf16"`` (autocast on any device).
        model_options: the model's hyperparameters for :func:`cropglobe.models.create_model`
            (``{"width": 64}`` for CropNet), as ``train_to_folder`` and ``run_experiment``
            name them.
        average: weight averaging (stochastic weight averaging, dense): the share (0, 1] of the
            final epochs over which the weights after every optimizer step are averaged, e.g.
            0.25 averages epochs 38–50 of 50. The averaged weights get BatchNorm statistics
            recomputed over one pass of the training inputs and replace the best epoch's
            (which stay available as ``selected_model``); training itself is unchanged.
            None (default): no averaging, the best epoch is returned.
        model_kw: the former name of ``model_options`` (deprecated; warns).

    Returns:
        A :class:`TrainResult` holding the best epoch's model (or the averaged one).
    """
    import torch
    import torch.nn.functional as F

    _check_args(protocol, epochs, batch_size, lr, early_stopping, val_fraction, precision, average)
    dev = resolve_device(device)
    mode = augment if augment is not None else ("paper" if protocol == "paper" else "online")
    offline = mode == "paper"
    pipeline = get_augmentation(mode)
    tr = _labelled(train, "training data")

    # classes: those present in the training data, in vocabulary order
    present = np.unique(tr.labels)
    if present.size < 2:
        raise LabelError(
            f"training data holds only class {[tr.classes[i] for i in present]}; a classifier "
            "needs samples of at least 2 classes"
        )
    classes = tuple(tr.classes[i] for i in present)
    lut = np.full(len(tr.classes), -1, dtype=np.int64)
    lut[present] = np.arange(present.size)
    y_all = lut[tr.labels]
    k = len(classes)

    # inputs: gap-filled once on the full grid, then windowed
    win_idx = (
        tr.grid.window_indices(*window) if window is not None else np.arange(tr.n_steps)
    ).astype(np.int64)
    model_grid = tr.grid.select(win_idx)
    x_all = prepare_inputs(tr.values, grid=tr.grid)

    seq = np.random.SeedSequence(int(seed))
    split_rng, aug_rng = (np.random.default_rng(s) for s in seq.spawn(2))
    val_index = np.zeros(0, np.int64)
    if val is not None:
        vs = _labelled(val, "validation data")
        if vs.bands != tr.bands:
            raise BandError(
                f"validation bands {list(vs.bands)} differ from training bands "
                f"{list(tr.bands)}; use val.select_bands(train.bands)"
            )
        if not vs.grid.same_axis(tr.grid):
            raise GridError(
                f"validation grid '{vs.grid}' differs from training grid '{tr.grid}'; "
                "composite both to one grid"
            )
        vnames = vs.label_names()
        keep = np.isin(vnames, classes)
        if not keep.any():
            raise LabelError(
                f"no validation sample has a class the model learns ({list(classes)}); give a "
                "validation set with these classes"
            )
        train_index = np.arange(tr.n_samples, dtype=np.int64)
        x_val = prepare_inputs(vs.values[keep], grid=vs.grid)[:, :, win_idx]
        y_val = np.array([classes.index(n) for n in vnames[keep]], dtype=np.int64)
    elif protocol == "paper":
        train_index = val_index = np.arange(tr.n_samples, dtype=np.int64)
        x_val, y_val = x_all[:, :, win_idx], y_all
    else:
        train_index, val_index = split_apart(x_all, y_all, val_fraction, split_rng)
        if val_index.size == 0:
            raise LabelError(
                f"training data ({tr.n_samples} samples) is too small for a validation split; "
                "give more samples or a separate val set"
            )
        x_val, y_val = x_all[val_index][:, :, win_idx], y_all[val_index]
    x_fit, y_fit = x_all[train_index], y_all[train_index]
    weights = balanced_class_weights(y_all if protocol == "paper" else y_fit, k)

    # config fingerprint: a checkpoint is resumed only into the same configuration
    if isinstance(model, str):
        name = canonical_name(model)
        if MODELS[name][2] != "neural":
            raise ModelError(
                f"train() fits neural models; {name!r} is a classical model — use its "
                "fit(X, y) (cropglobe.models.create_model(...).fit)"
            )
    else:
        name = str(getattr(model, "name", type(model).__name__.lower()))
    if model_kw is not None:
        if model_options is not None:
            raise ParameterError("give model_options only (model_kw is its former name), not both")
        warnings.warn(
            "train(model_kw=...) is deprecated: the argument is now model_options",
            FutureWarning,
            stacklevel=2,
        )
        model_options = model_kw
    kw = dict(model_options or {})
    if name == "transformer" and "days" not in kw and isinstance(model, str):
        kw["days"] = model_grid.centers.tolist()
    config = {
        "model": name,
        "model_kw": kw,
        "protocol": protocol,
        "augment": pipeline.to_dict() if pipeline is not None else "none",
        "offline": offline,
        "copies": int(copies) if pipeline is not None else 0,
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "window": list(window) if window is not None else None,
        "val_fraction": float(val_fraction),
        "precision": precision,
        "data": tr.fingerprint(),
        "val_data": val.fingerprint() if val is not None else None,
    }
    # weight averaging: running mean of the parameters after every step from avg_first on
    # (part of the fingerprint only when on, so that older checkpoints still resume)
    avg_first = (
        int(epochs) - math.ceil(round(float(average) * int(epochs), 9)) + 1
        if average is not None
        else None
    )
    if average is not None:
        config["average"] = {"share": float(average), "first_epoch": avg_first}
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    config_id = config_hash.hexdigest()
    ckpt = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None

    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _deterministic(dev.type):
        torch.manual_seed(int(seed))
        if isinstance(model, str):
            net = create_model(name, k, tr.n_bands, int(win_idx.size), **kw)
        else:
            net = model
            n_out = getattr(net, "config", {}).get("n_classes", k)
            if n_out != k:
                raise ModelError(
                    f"the given model outputs {n_out} classes but the training data has {k} "
                    f"({list(classes)}); build it with n_classes={k}"
                )
        net = net.to(dev)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(lr))
        shuffle_gen = torch.Generator().manual_seed(int(seed))
        w_t = torch.from_numpy(weights).to(dev)
        use_bf16 = resolve_precision(precision, dev) == "bf16"

        if offline:
            x_train, y_train = augment_offline(
                x_fit,
                y_fit,
                copies=copies,
                rng=aug_rng,
                grid=tr.grid,
                bands=tr.bands,
                window=window,
                pipeline=pipeline,
            )
        else:
            x_train, y_train = x_fit[:, :, win_idx], y_fit
        # the online augmentation resamples fastest from time-major memory (no copy per batch)
        x_fit_tm = (
            np.ascontiguousarray(x_fit.transpose(0, 2, 1))
            if pipeline is not None and not offline
            else None
        )
        y_train_t = torch.from_numpy(np.ascontiguousarray(y_train))

        history: list[dict[str, float]] = []
        best_state = {kk: v.detach().clone() for kk, v in net.state_dict().items()}
        best_f1, best_epoch, start = -1.0, 0, 0
        avg_state = (
            {kk: torch.zeros_like(v) for kk, v in net.named_parameters()}
            if avg_first is not None
            else None
        )
        avg_params = [(avg_state[kk], v) for kk, v in net.named_parameters()] if avg_state else []
        avg_steps = 0
        if ckpt is not None and resume and ckpt.is_file():
            tensors, meta = _load_checkpoint(ckpt)
            if meta.get("config_id") != config_id:
                raise ModelError(
                    f"{ckpt}: checkpoint comes from another configuration (model, data, seed or "
                    "settings differ); delete it or train without resuming (resume=False, no "
                    "--resume)"
                )
            best_state = _restore(tensors, meta, net, optimizer, shuffle_gen, aug_rng, avg_state)
            avg_steps = int(meta.get("avg_steps", 0))
            history = list(meta["history"])
            best_f1, best_epoch, start = (
                float(meta["best_f1"]),
                int(meta["best_epoch"]),
                int(meta["epoch"]),
            )
            if start > int(epochs):  # the card would say epochs 2, epochs_run 3
                raise ModelError(
                    f"{ckpt}: the checkpoint has trained {start} epochs, more than the "
                    f"{int(epochs)} asked; give --epochs {start} or more to continue it, or "
                    "train afresh without --resume"
                )
            logger.info("resuming from %s after epoch %d", ckpt, start)
        elif resume:
            # a warning: a mistyped output folder would otherwise retrain from epoch 1 unnoticed
            logger.warning(
                "no checkpoint to resume in %s; starting afresh from epoch 1 (check the output "
                "folder: --resume continues the run written to that same folder)",
                checkpoint_dir,
            )

        n = int(y_train.shape[0])
        passes = 1 + int(copies) if x_fit_tm is not None else 1
        for epoch in range(start, int(epochs)):
            if early_stopping is not None and epoch - best_epoch >= int(early_stopping):
                break
            t0 = time.perf_counter()
            net.train()
            perm = torch.cat(
                [torch.randperm(n, generator=shuffle_gen) for _ in range(passes)]
            ).numpy()
            total, seen = 0.0, 0
            for lo in range(0, perm.size, int(batch_size)):
                idx = perm[lo : lo + int(batch_size)]
                if idx.size < 2:  # BatchNorm cannot train on one sample
                    continue
                if pipeline is not None and x_fit_tm is not None:
                    xb = pipeline(
                        x_fit_tm[idx].transpose(0, 2, 1),
                        aug_rng,
                        grid=tr.grid,
                        bands=tr.bands,
                        window=window,
                    )
                else:
                    xb = x_train[idx]
                xt = torch.from_numpy(np.ascontiguousarray(xb)).to(dev, non_blocking=True)
                yt = y_train_t[idx].to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = net(xt)
                loss = F.cross_entropy(logits.float(), yt, weight=w_t)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if avg_first is not None and epoch + 1 >= avg_first:
                    avg_steps += 1
                    with torch.no_grad():
                        for a, w in avg_params:
                            a.add_(w.detach() - a, alpha=1.0 / avg_steps)
                total += float(loss.detach()) * idx.size
                seen += idx.size
            f1, acc = _evaluate(net, x_val, y_val, dev, use_bf16, int(batch_size))
            loss_mean = total / max(seen, 1)
            history.append(
                {
                    "epoch": epoch + 1,
                    "loss": loss_mean,
                    "val_f1": f1,
                    "val_accuracy": acc,
                    "seconds": time.perf_counter() - t0,
                }
            )
            if f1 > best_f1:
                best_f1, best_epoch = f1, epoch + 1
                best_state = {kk: v.detach().clone() for kk, v in net.state_dict().items()}
            logger.info(
                "epoch %d/%d loss %.4f val macro-F1 %.4f (%.1f s)",
                epoch + 1,
                epochs,
                loss_mean,
                f1,
                history[-1]["seconds"],
            )
            if ckpt is not None:
                meta_out = {
                    "config_id": config_id,
                    "epoch": epoch + 1,
                    "best_f1": best_f1,
                    "best_epoch": best_epoch,
                    "history": history,
                    "device_type": dev.type,
                    "avg_steps": avg_steps,
                }
                _save_checkpoint(
                    ckpt, net, optimizer, best_state, shuffle_gen, aug_rng, meta_out, avg_state
                )
            if progress is not None:
                progress(epoch + 1, loss_mean, f1)

        net.load_state_dict(best_state)
        net.eval()
        selected_model, averaged_epochs, avg_f1, avg_acc = None, None, None, None
        if avg_state is not None and avg_steps > 0 and avg_first is not None:
            import copy

            selected_model = copy.deepcopy(net)
            with torch.no_grad():
                for kk, v in net.named_parameters():
                    v.copy_(avg_state[kk])
            # one shuffled pass (stored order can be grouped, e.g. by year), full batches only
            # (every batch weighs the same in the plain mean) unless there is no full one
            online = pipeline is not None and x_fit_tm is not None
            n_bn = x_fit_tm.shape[0] if online and x_fit_tm is not None else x_train.shape[0]
            order = torch.randperm(n_bn, generator=shuffle_gen).numpy()
            bs = int(batch_size)
            chunks = [order[lo : lo + bs] for lo in range(0, n_bn, bs)]
            if len(chunks) > 1 and chunks[-1].size < bs:
                chunks.pop()
            if online and x_fit_tm is not None and pipeline is not None:
                bn_batches: Iterator[NDArray[np.float32]] = (
                    pipeline(
                        x_fit_tm[c].transpose(0, 2, 1),
                        aug_rng,
                        grid=tr.grid,
                        bands=tr.bands,
                        window=window,
                    )
                    for c in chunks
                )
            else:
                bn_batches = (x_train[c] for c in chunks)
            _recompute_batchnorm(net, bn_batches, dev, use_bf16)
            avg_f1, avg_acc = _evaluate(net, x_val, y_val, dev, use_bf16, int(batch_size))
            averaged_epochs = (avg_first, int(history[-1]["epoch"]) if history else int(epochs))
            logger.info(
                "averaged weights of epochs %d-%d (%d steps): val macro-F1 %.4f "
                "(best single epoch %d: %.4f)",
                *averaged_epochs,
                avg_steps,
                avg_f1,
                best_epoch,
                best_f1,
            )

    card = None
    params = getattr(net, "config", None)
    if name in MODELS and isinstance(params, dict):
        last = next((h for h in history if h["epoch"] == best_epoch), {})
        card = ModelCard(
            model=name,
            params=params,
            bands=tr.bands,
            grid=tr.grid,
            classes=classes,
            window=window,
            features={
                "fill": "linear",
                "scale": None,
                "nan": 0.0,
                **composite_settings(tr),
                "value_percentiles": value_percentiles(tr),
            },
            training={
                **{kk: v for kk, v in config.items() if kk not in ("data", "val_data")},
                "epochs": int(epochs),
                "epochs_run": len(history),
                "device": str(dev),
                "precision_used": "bf16" if use_bf16 else "fp32",
                "early_stopping": early_stopping,
                "class_weights": weights.tolist(),
                "n_train": int(train_index.size),
                "n_val": int(y_val.size),
            },
            data_fingerprint=str(config["data"]),
            metrics={
                "val_macro_f1": best_f1 if avg_f1 is None else avg_f1,
                "val_accuracy": last.get("val_accuracy") if avg_acc is None else avg_acc,
                "best_epoch": best_epoch,
                **(
                    {
                        "averaged_epochs": list(averaged_epochs),
                        "best_epoch_val_macro_f1": best_f1,
                    }
                    if averaged_epochs is not None
                    else {}
                ),
            },
        )
    return TrainResult(
        model=net,
        card=card,
        history=history,
        best_epoch=best_epoch,
        best_val_f1=best_f1,
        classes=classes,
        train_index=train_index,
        val_index=val_index,
        averaged_epochs=averaged_epochs,
        averaged_val_f1=avg_f1,
        selected_model=selected_model,
    )


def _recompute_batchnorm(
    net: Any, batches: Iterator[NDArray[np.float32]], dev: Any, bf16: bool
) -> None:
    """BatchNorm running statistics recomputed as the plain mean over ``batches`` (train mode,
    no gradients), as averaged weights need; the momenta are restored afterwards."""
    import torch

    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    net.train()
    with torch.no_grad():
        for xb in batches:
            if xb.shape[0] < 2:
                continue
            xt = torch.from_numpy(np.ascontiguousarray(xb)).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                net(xt)
    for m, mom in zip(norms, momenta, strict=True):
        m.momentum = mom
    net.eval()


def _evaluate(
    net: Any, x: NDArray[np.float32], y: NDArray[np.int64], dev: Any, bf16: bool, batch_size: int
) -> tuple[float, float]:
    import torch

    net.eval()
    preds = []
    with torch.inference_mode():
        for lo in range(0, x.shape[0], max(batch_size, 512)):
            xt = torch.from_numpy(np.ascontiguousarray(x[lo : lo + max(batch_size, 512)]))
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                preds.append(net(xt.to(dev)).argmax(dim=1).cpu().numpy())
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    return _macro_f1(y, pred.astype(np.int64))
