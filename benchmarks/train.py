"""Benchmark: CropNet training on CPU — our path against a plain float32 PyTorch loop.

In ONE process, on the same data and the same train/validation split, it measures:

(a) training throughput (samples/s, augmentation included) of our default CPU path
    (:func:`cropglobe.train.train` with ``"cropnet"`` and its defaults: batched online
    augmentation, an epoch of 1 + 2 copies passes, ``precision="auto"`` — bf16 autocast on CPUs
    with native bf16, float32 elsewhere; ``--with-fp32`` also times it forced to float32)
    against a *plain* float32 loop of the same model
    (batch 256, Adam 1e-4, balanced cross-entropy) fed by the release's offline augmentation
    written the slow way: a Python loop per sample — time shift / time scale by ``np.interp``
    resampling of the window, magnitude warp through one ``scipy.interpolate.CubicSpline``
    object per sample, 2 copies, a scale draw replacing the shift with p = 0.5 (REFERENCE.md);
(b) achieved GFLOP/s of each path (CropNet forward FLOPs counted from the model's convolutions
    and linear layer for the actual input size, ≈ 0.23 GFLOP/sample; training ≈ 3 × forward),
    against a large float32 ``torch.mm`` and a bfloat16 ``torch.mm`` measured in the same run;
(c) augmentation throughput (samples/s): batched (:mod:`cropglobe.augment`, paper and online
    pipelines, fed batches the way :func:`~cropglobe.train.train` does — rows of its training
    set kept in time-major memory) against the per-sample loop;
(d) validation macro-F1 (best epoch, and last epoch) of every path after the same number of
    epochs on the same split, over ``--seeds`` seeds, and the throughput ratios.

Throughput counts the samples that went through an optimizer step (both paths: 3 × the training
split per epoch — ours 3 freshly augmented passes, the plain path originals + 2 offline copies —
so "the same epochs" is the same number of steps) divided
by the time spent on augmentation and training steps; validation time is excluded (it is
measured and reported separately, ``*_incl_val`` numbers include it). The plain path's
one-off offline augmentation time is included in its throughput (and also reported alone).

Data: ``--data`` (a folder in the CropGlobe release layout, default the real Canadian samples in
``../shared/data/cropglobe_format``), country ``--country`` (CAN); when the folder is absent the
data come from :func:`cropglobe.simulate.simulate_world` (SYNTHETIC, flagged in the output).
Prints ONE JSON line on stdout (progress goes to stderr).

    python benchmarks/train.py                      # 2 epochs, 1 seed, all samples
    python benchmarks/train.py --seeds 82 83 84     # the issue's 3 seeds
    python benchmarks/train.py --n-samples 1024 --epochs 1
    python benchmarks/train.py --quick              # smoke test in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.interpolate import CubicSpline
from sklearn.metrics import f1_score

from cropglobe.augment import DEFAULT_WINDOW, online_augmentation, paper_augmentation
from cropglobe.models.cropnet import CropNet
from cropglobe.models.inputs import prepare_inputs
from cropglobe.series import SeriesSet, TimeGrid
from cropglobe.train import balanced_class_weights, stratified_split, train

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cropglobe_format"
BATCH = 256
LR = 1e-4


def log(msg: str) -> None:
    print(f"[train-bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- data
def load_data(path: Path, country: str, n_samples: int | None, seed: int) -> tuple[SeriesSet, str]:
    """The benchmark's samples: the CropGlobe-layout folder, or simulate_world if absent."""
    if path.is_dir():
        from cropglobe.io import read_cropglobe

        ss = read_cropglobe(path, country)
        source = str(path)
    else:
        from cropglobe.simulate import simulate_world

        log(f"{path} not found: using simulate_world (SYNTHETIC)")
        sim_country = (
            country
            if country in ("ARG", "AUS", "BEL", "CHN", "FRA", "GBR", "NLD", "USA")
            else "FRA"
        )
        ss = simulate_world(sim_country, n_per_country=n_samples or 4000, random_state=seed)
        source = f"simulate_world({sim_country!r})"
    ss = ss.subset(ss.labels >= 0)
    if n_samples is not None and n_samples < ss.n_samples:
        pick = np.sort(np.random.default_rng(seed).permutation(ss.n_samples)[:n_samples])
        ss = ss.subset(pick)
    return ss, source


# ---------------------------------------------------------------------------------- slow aug
def slow_paper_copy(
    x: np.ndarray,
    rng: np.random.Generator,
    n_out: int = 43,
    window: tuple[int, int] = DEFAULT_WINDOW,
    bin_days: int = 5,
    max_shift: float = 50.0,
    max_scale: float = 50.0,
    p_scale: float = 0.5,
    sigma: float = 0.1,
    knots: int = 5,
    p_warp: float = 0.25,
) -> np.ndarray:
    """One augmented copy of ONE sample (C, 73) -> (C, 43), the release's recipe the slow way.

    Time shift: s ~ U(−50, 50) days, window [121 + s, 334 + s]; with p = 0.5 a time-scale draw
    replaces it: a, b ~ U(−50, 50), window [121 + a, 334 + b]; clamped to days 1…365 (end not
    after start: end = start + 5); the bins covering the window are resampled linearly to 43
    steps with ``np.interp``, band by band. Magnitude warp (p = 0.25): one CubicSpline through 5
    knots ~ N(1, 0.1²) at evenly spaced steps, multiplying every band (optical bands only).
    """
    c, t = x.shape
    start, end = float(window[0]), float(window[1])
    s = rng.uniform(-max_shift, max_shift)
    lo, hi = start + s, end + s
    if rng.random() < p_scale:
        a, b = rng.uniform(-max_scale, max_scale, 2)
        lo, hi = start + a, end + b
    lo = min(max(lo, 1.0), 365.0)
    hi = min(max(hi, 1.0), 365.0)
    if hi <= lo:
        hi = lo + bin_days
    b0 = int((lo - 1) // bin_days)
    b1 = min(int((hi - 1) // bin_days), t - 1)
    seg = x[:, b0 : b1 + 1]
    src = np.arange(seg.shape[1], dtype=np.float64)
    dst = np.linspace(0.0, seg.shape[1] - 1.0, n_out)
    out = np.empty((c, n_out), dtype=np.float32)
    for band in range(c):
        out[band] = np.interp(dst, src, seg[band])
    if rng.random() < p_warp:
        kx = np.linspace(0.0, n_out - 1.0, knots)
        ky = rng.normal(1.0, sigma, knots)
        curve = CubicSpline(kx, ky, bc_type="natural")(np.arange(n_out))
        out *= curve[None, :].astype(np.float32)
    return out


def slow_augment_offline(
    x_full: np.ndarray,
    y: np.ndarray,
    win_idx: np.ndarray,
    rng: np.random.Generator,
    copies: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Originals (plain window) + ``copies`` per-sample augmented copies, in a Python loop."""
    parts = [x_full[:, :, win_idx]]
    for _ in range(copies):
        parts.append(
            np.stack(
                [slow_paper_copy(x_full[i], rng, int(win_idx.size)) for i in range(x_full.shape[0])]
            )
        )
    return np.concatenate(parts).astype(np.float32), np.tile(y, copies + 1)


# ---------------------------------------------------------------------------------- plain loop
def evaluate(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, bf16: bool) -> float:
    """Validation macro-F1 over the classes present in ``y`` (as cropglobe.train does)."""
    net.eval()
    preds = []
    with torch.inference_mode():
        for lo in range(0, x.shape[0], 512):
            xt = torch.from_numpy(np.ascontiguousarray(x[lo : lo + 512]))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                preds.append(net(xt).argmax(dim=1).numpy())
    pred = np.concatenate(preds)
    return float(f1_score(y, pred, labels=np.unique(y), average="macro", zero_division=0.0))


def plain_run(
    x_fit_full: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    win_idx: np.ndarray,
    n_classes: int,
    epochs: int,
    seed: int,
) -> dict[str, Any]:
    """The plain float32 loop: slow offline augmentation, then Adam over original + 2 copies."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    x_train, y_train = slow_augment_offline(x_fit_full, y_fit, win_idx, rng)
    aug_s = time.perf_counter() - t0

    torch.manual_seed(seed)
    net = CropNet(n_classes, x_fit_full.shape[1], int(win_idx.size))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    w = torch.from_numpy(balanced_class_weights(y_fit, n_classes))
    xt_all = torch.from_numpy(x_train)
    yt_all = torch.from_numpy(y_train)
    n = y_train.size
    train_s = val_s = 0.0
    stepped = 0
    f1s = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(n)
        for lo in range(0, n, BATCH):
            idx = perm[lo : lo + BATCH]
            if idx.numel() < 2:
                continue
            loss = F.cross_entropy(net(xt_all[idx]), yt_all[idx], weight=w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            stepped += idx.numel()
        t1 = time.perf_counter()
        f1s.append(evaluate(net, x_val, y_val, bf16=False))
        train_s += t1 - t0
        val_s += time.perf_counter() - t1
    return {
        "samples_stepped": stepped,
        "offline_aug_s": aug_s,
        "train_s": train_s,
        "val_s": val_s,
        "best_f1": max(f1s),
        "last_f1": f1s[-1],
    }


# ---------------------------------------------------------------------------------- our path
def ours_run(
    ss: SeriesSet,
    x_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int,
    seed: int,
    precision: str,
) -> dict[str, Any]:
    """cropglobe.train.train('cropnet', ...) with the clean protocol's defaults."""
    t0 = time.perf_counter()
    res = train(
        "cropnet", ss, epochs=epochs, batch_size=BATCH, lr=LR, seed=seed, precision=precision
    )
    wall = time.perf_counter() - t0
    bf16 = res.card is not None and res.card.training["precision_used"] == "bf16"
    # the epoch times include one validation pass each: time the same pass and subtract it
    evaluate(res.model, x_val, y_val, bf16)
    t0 = time.perf_counter()
    evaluate(res.model, x_val, y_val, bf16)
    val_once = time.perf_counter() - t0
    n_fit = int(res.train_index.size) * 3  # an online epoch: 1 + 2 copies passes
    per_epoch = n_fit - (1 if n_fit % BATCH == 1 else 0)
    epoch_s = float(sum(h["seconds"] for h in res.history))
    return {
        "samples_stepped": per_epoch * len(res.history),
        "train_s": max(epoch_s - val_once * len(res.history), 1e-9),
        "val_s": val_once * len(res.history),
        "wall_s": wall,
        "best_f1": float(res.best_val_f1),
        "last_f1": float(res.history[-1]["val_f1"]),
        "train_index": res.train_index,
        "val_index": res.val_index,
        "classes": res.classes,
        "precision_used": res.card.training["precision_used"] if res.card else precision,
    }


def warm_up(x: np.ndarray, n_classes: int, steps: int) -> None:
    """A few untimed fp32 and bf16 training steps, so one-off kernel set-up is not timed."""
    xt = torch.from_numpy(np.ascontiguousarray(x[:BATCH]))
    yt = torch.arange(xt.shape[0]) % n_classes
    for bf16 in (False, True):
        net = CropNet(n_classes, x.shape[1], x.shape[2])
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        for _ in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(xt)
            loss = F.cross_entropy(logits.float(), yt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        evaluate(net, x[:BATCH], yt.numpy(), bf16)


# ---------------------------------------------------------------------------------- flops
def forward_flops(net: torch.nn.Module, c: int, t: int) -> float:
    """FLOPs (2 × multiply-adds) of one sample's forward pass, from conv and linear layers."""
    total = [0.0]

    def conv_hook(m: torch.nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += 2.0 * out[0].numel() * k

    def lin_hook(m: torch.nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        total[0] += 2.0 * out[0].numel() * m.in_features

    hooks = []
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    net.eval()
    with torch.inference_mode():
        net(torch.zeros(1, c, t))
    for h in hooks:
        h.remove()
    return total[0]


def matmul_gflops(n: int, dtype: torch.dtype, min_s: float) -> float:
    """Best-of-reps GFLOP/s of an n × n ``torch.mm`` in ``dtype``."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    torch.mm(a, b)  # warm-up
    best, spent = float("inf"), 0.0
    reps = 0
    while spent < min_s or reps < 3:
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return 2.0 * n**3 / best / 1e9


def bf16_native() -> bool | None:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


# ---------------------------------------------------------------------------------- augmentation
def aug_throughput(
    x_full: np.ndarray,
    grid: TimeGrid,
    bands: tuple[str, ...],
    n_out: int,
    n_loop: int,
    min_s: float,
) -> dict[str, float]:
    """Samples/s of one augmented copy: batched pipelines (in batches of 256 and whole array)
    against the per-sample loop."""
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    # the layout train() keeps its training set in: time-major memory, seen as (N, C, T)
    x_tm = np.ascontiguousarray(x_full.transpose(0, 2, 1))
    for name, pipe in (("paper", paper_augmentation()), ("online", online_augmentation())):
        for label, chunk in (("batch256", BATCH), ("whole", x_full.shape[0])):
            pipe(x_tm[:chunk].transpose(0, 2, 1), rng, grid=grid, bands=bands)  # warm-up
            done, t0 = 0, time.perf_counter()
            while True:
                for lo in range(0, x_full.shape[0], chunk):
                    pipe(x_tm[lo : lo + chunk].transpose(0, 2, 1), rng, grid=grid, bands=bands)
                done += x_full.shape[0]
                if time.perf_counter() - t0 >= min_s:
                    break
            out[f"batched_{name}_{label}_samples_per_s"] = done / (time.perf_counter() - t0)
    sub = x_full[:n_loop]
    t0 = time.perf_counter()
    for i in range(sub.shape[0]):
        slow_paper_copy(sub[i], rng, n_out)
    out["per_sample_loop_samples_per_s"] = sub.shape[0] / (time.perf_counter() - t0)
    out["per_sample_loop_n"] = float(sub.shape[0])
    return out


# ---------------------------------------------------------------------------------- main
def _stats(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=0)), "per_seed": [float(v) for v in a]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CropGlobe-layout folder")
    p.add_argument("--country", default="CAN")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n-samples", type=int, default=None, help="random subsample (seeded)")
    p.add_argument("--seeds", type=int, nargs="+", default=[82], help="e.g. 82 83 84")
    p.add_argument("--matmul-n", type=int, default=4096)
    p.add_argument("--aug-loop-n", type=int, default=2000, help="samples for the slow aug loop")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    p.add_argument(
        "--only-augmentation",
        action="store_true",
        help="measure (c) only: augmentation throughput, batched against the per-sample loop",
    )
    p.add_argument(
        "--with-fp32",
        action="store_true",
        help="also time our path forced to float32 (precision='fp32')",
    )
    args = p.parse_args()
    if args.quick:
        args.epochs = 1
        args.n_samples = min(args.n_samples or 320, 320)
        args.matmul_n = min(args.matmul_n, 1024)
        args.aug_loop_n = min(args.aug_loop_n, 200)
    min_s = 0.2 if args.quick else 1.0

    n_cores = os.cpu_count() or 1
    torch.set_num_threads(n_cores)
    load_start = os.getloadavg()

    ss, source = load_data(args.data, args.country, args.n_samples, seed=0)
    grid = ss.grid
    win_idx = grid.window_indices(*DEFAULT_WINDOW).astype(np.int64)
    x_full = prepare_inputs(ss.values, grid=grid)  # the same gap filling train() does
    log(f"data {source}: {ss.n_samples} samples, {ss.n_bands} bands × {ss.n_steps} steps")

    mm_fp32 = mm_bf16 = train_flops = 0.0
    if not args.only_augmentation:
        log(f"matmul {args.matmul_n}² fp32 / bf16")
        mm_fp32 = matmul_gflops(args.matmul_n, torch.float32, min_s)
        mm_bf16 = matmul_gflops(args.matmul_n, torch.bfloat16, min_s)
        net = CropNet(7, ss.n_bands, int(win_idx.size))
        train_flops = 3.0 * forward_flops(net, ss.n_bands, int(win_idx.size))
        log("warm-up")
        warm_up(x_full[:, :, win_idx], int(np.unique(ss.labels).size), 1 if args.quick else 3)

    log("augmentation throughput")
    aug = aug_throughput(x_full, grid, ss.bands, int(win_idx.size), args.aug_loop_n, min_s)
    aug["speedup_paper_batch256_vs_loop"] = (
        aug["batched_paper_batch256_samples_per_s"] / aug["per_sample_loop_samples_per_s"]
    )
    aug["speedup_online_batch256_vs_loop"] = (
        aug["batched_online_batch256_samples_per_s"] / aug["per_sample_loop_samples_per_s"]
    )
    if args.only_augmentation:
        print(
            json.dumps(
                {
                    "benchmark": "augmentation",
                    "data": {"source": source, "n_samples": ss.n_samples},
                    "augmentation": aug,
                    "machine": {
                        "cpu_count": n_cores,
                        "loadavg_start": [round(v, 2) for v in load_start],
                        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
                    },
                    "goals": {"aug_50x": aug["speedup_paper_batch256_vs_loop"] >= 50.0},
                },
                default=float,
            )
        )
        return

    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "ours_fp32": [], "plain_fp32": []}
    split_info: dict[str, Any] = {}
    for seed in args.seeds:
        log(f"seed {seed}: ours (default: precision='auto')")
        # the split is the one train() draws for this seed (checked below); the plain loop
        # reuses it
        present = np.unique(ss.labels)
        lut = np.full(len(ss.classes), -1, dtype=np.int64)
        lut[present] = np.arange(present.size)
        y_all = lut[ss.labels]
        split_rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(2)[0])
        tr_idx, va_idx = stratified_split(y_all, 0.2, split_rng)
        x_val, y_val = x_full[va_idx][:, :, win_idx], y_all[va_idx]

        r = ours_run(ss, x_val, y_val, args.epochs, seed, "auto")
        if not (
            np.array_equal(r["train_index"], tr_idx) and np.array_equal(r["val_index"], va_idx)
        ):
            raise SystemExit("benchmark bug: reconstructed split differs from train()'s split")
        runs["ours"].append(r)
        if args.with_fp32:
            log(f"seed {seed}: ours forced to fp32")
            runs["ours_fp32"].append(ours_run(ss, x_val, y_val, args.epochs, seed, "fp32"))
        log(f"seed {seed}: plain fp32 loop (slow offline augmentation)")
        runs["plain_fp32"].append(
            plain_run(
                x_full[tr_idx],
                y_all[tr_idx],
                x_val,
                y_val,
                win_idx,
                present.size,
                args.epochs,
                seed,
            )
        )
        split_info = {"n_train": int(tr_idx.size), "n_val": int(va_idx.size)}
        split_info["classes"] = [ss.classes[i] for i in present]

    def summarise(rs: list[dict[str, Any]]) -> dict[str, Any]:
        stepped = sum(r["samples_stepped"] for r in rs)
        busy = sum(r["train_s"] + r.get("offline_aug_s", 0.0) for r in rs)
        busy_val = busy + sum(r["val_s"] for r in rs)
        sps = stepped / busy
        out = {
            "samples_per_s": sps,
            "samples_per_s_incl_val": stepped / busy_val,
            "samples_stepped_per_seed": rs[0]["samples_stepped"],
            "seconds_per_seed": busy / len(rs),
            "gflops": sps * train_flops / 1e9,
            "gflops_over_fp32_matmul": sps * train_flops / 1e9 / mm_fp32,
            "val_macro_f1_best": _stats([r["best_f1"] for r in rs]),
            "val_macro_f1_last": _stats([r["last_f1"] for r in rs]),
        }
        if "offline_aug_s" in rs[0]:
            steps_only = stepped / sum(r["train_s"] for r in rs)
            out["samples_per_s_steps_only"] = steps_only
            out["offline_aug_s_per_seed"] = sum(r["offline_aug_s"] for r in rs) / len(rs)
        if "wall_s" in rs[0]:
            out["train_call_wall_s_per_seed"] = sum(r["wall_s"] for r in rs) / len(rs)
        return out

    ours = summarise(runs["ours"])
    ours["precision_used"] = runs["ours"][0]["precision_used"]
    ours["gflops_over_bf16_matmul"] = ours["gflops"] / mm_bf16
    ours_fp = summarise(runs["ours_fp32"]) if runs["ours_fp32"] else None
    plain = summarise(runs["plain_fp32"])

    def f1_equal(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
        if len(args.seeds) < 2:
            return None
        fa, fb = a["val_macro_f1_best"], b["val_macro_f1_best"]
        return abs(fa["mean"] - fb["mean"]) <= max(fa["std"], fb["std"])

    ratio = ours["samples_per_s"] / plain["samples_per_s"]
    result = {
        "benchmark": "train_cropnet_cpu",
        "data": {
            "source": source,
            "country": args.country,
            "synthetic": bool(ss.attrs.get("synthetic", not args.data.is_dir())),
            "n_samples": ss.n_samples,
            "bands": ss.n_bands,
            "steps_full": ss.n_steps,
            "steps_window": int(win_idx.size),
            **split_info,
        },
        "config": {
            "epochs": args.epochs,
            "batch_size": BATCH,
            "lr": LR,
            "seeds": args.seeds,
            "quick": args.quick,
            "ours": "cropglobe.train.train('cropnet', protocol='clean', augment='online', "
            "precision='auto'): online epochs of 1 + 2 copies passes",
            "plain": "fp32 loop, per-sample offline augmentation (np.interp + CubicSpline), 2 "
            "copies, Adam 1e-4, balanced CE",
        },
        "machine": {
            "cpu_count": n_cores,
            "cpu_affinity": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_native": bf16_native(),
            "machine": platform.machine(),
            "loadavg_start": [round(v, 2) for v in load_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        },
        "matmul": {"n": args.matmul_n, "fp32_gflops": mm_fp32, "bf16_gflops": mm_bf16},
        "model": {
            "forward_gflop_per_sample": train_flops / 3.0 / 1e9,
            "train_gflop_per_sample": train_flops / 1e9,
        },
        "ours": ours,
        "ours_fp32": ours_fp,
        "plain_fp32": plain,
        "augmentation": aug,
        "ratios": {
            "ours_over_plain": ratio,
            "ours_fp32_over_plain": ours_fp["samples_per_s"] / plain["samples_per_s"]
            if ours_fp
            else None,
            "f1_best_ours_minus_plain": ours["val_macro_f1_best"]["mean"]
            - plain["val_macro_f1_best"]["mean"],
        },
        "goals": {
            "train_1_5x": ratio >= 1.5,
            "aug_50x": aug["speedup_paper_batch256_vs_loop"] >= 50.0,
            "equal_f1_within_1std": f1_equal(ours, plain),
        },
    }
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
