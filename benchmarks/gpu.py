"""Benchmark: CropNet on a GPU — training and inference throughput, against a baseline version.

Measured in ONE run, on the real Canadian samples (``--data``, a CropGlobe-layout folder; when
it is absent the data come from :func:`cropglobe.simulate.simulate_world`, flagged SYNTHETIC):

(a) ``cropglobe.train.train("cropnet", ...)`` throughput in samples/s — optimizer-step samples
    per second of epoch time, validation pass included, the first epoch (CUDA warm-up) left
    out — for the paper protocol (offline copies: originals + 2, validation on the training
    samples, as ``cropglobe transfer --protocol paper``) in float32 and bf16 autocast, and the
    clean protocol (online augmentation on the CPU every step, 20 % validation split) in bf16;
(b) the ceiling: the same network's forward + backward + Adam step on random inputs already
    on the GPU, batch 256, with no host work between steps, float32 and bf16;
(c) inference in pixels/s: :func:`cropglobe.models.inputs.predict_proba` (float32, from host
    memory, batch 1024 and 8192) and a forward pass on device-resident inputs, float32 and
    bf16 (the ceiling);
(d) with ``--baseline-src DIR`` (another checkout's ``src`` folder, e.g. the previous commit's),
    (a) for that version too, each version in its own subprocess, one after the other, and the
    ratios; for every setting the two versions' per-epoch validation macro-F1 and loss are
    compared (same seed, same data: equal up to GPU non-determinism).

Prints ONE JSON line on stdout (progress goes to stderr).

    python benchmarks/gpu.py                                   # cuda, 6 epochs per setting
    python benchmarks/gpu.py --baseline-src /path/to/old/src   # both versions, ratio
    python benchmarks/gpu.py --device cpu --epochs 2 --n-samples 512   # a smoke test anywhere

On a CPU the ceiling and inference run on a few batches only, and without native bf16 the
bf16 settings are left out (``clean_fp32`` replaces ``clean_bf16``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cropglobe_format"


def log(msg: str) -> None:
    print(f"[gpu-bench] {msg}", file=sys.stderr, flush=True)


def load(data: Path, country: str, n_samples: int | None, seed: int) -> tuple[Any, str]:
    """Labelled samples of ``country`` (the release layout) or a simulated stand-in."""
    if data.is_dir():
        from cropglobe.io import read_cropglobe

        ss, source = read_cropglobe(data, country), str(data)
    else:
        from cropglobe.simulate import simulate_world

        log(f"{data} not found: using simulate_world (SYNTHETIC)")
        ss = simulate_world("FRA", n_per_country=n_samples or 4000, random_state=seed)
        source = "SYNTHETIC simulate_world('FRA')"
    ss = ss.subset(ss.labels >= 0)
    if n_samples is not None and n_samples < ss.n_samples:
        pick = np.sort(np.random.default_rng(seed).permutation(ss.n_samples)[:n_samples])
        ss = ss.subset(pick)
    return ss, source


def sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def precisions(device: str) -> tuple[str, ...]:
    """``("fp32", "bf16")``, without bf16 on a CPU that lacks native bf16 (emulated there, it
    ran at about 7 samples/s: a smoke test would not finish)."""
    import torch

    from cropglobe.models.inputs import native_bf16_cpu

    dev = torch.device(device)
    return ("fp32", "bf16") if dev.type == "cuda" or native_bf16_cpu() else ("fp32",)


def train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """(a): train() throughput per setting, in the cropglobe found on sys.path."""
    import cropglobe
    from cropglobe.train import train

    ss, source = load(Path(args.data), args.country, args.n_samples, args.seed)
    low = "bf16" if "bf16" in precisions(args.device) else "fp32"
    settings = {
        "paper_fp32": {"protocol": "paper", "precision": "fp32"},
        f"paper_{low}": {"protocol": "paper", "precision": low},
        f"clean_{low}": {"protocol": "clean", "precision": low},
    }
    out: dict[str, Any] = {
        "cropglobe_file": str(Path(cropglobe.__file__).resolve().parent),
        "data": {"source": source, "n_samples": int(ss.n_samples), "bands": ss.n_bands},
    }
    for name, kw in settings.items():
        t0 = time.perf_counter()
        res = train("cropnet", ss, epochs=args.epochs, seed=args.seed, device=args.device, **kw)
        wall = time.perf_counter() - t0
        n_fit = int(res.train_index.size)
        per_epoch = 3 * n_fit  # originals + 2 copies (paper) or 3 online passes (clean)
        secs = [h["seconds"] for h in res.history]
        steady = secs[1:] if len(secs) > 1 else secs
        out[name] = {
            "samples_per_s": per_epoch * len(steady) / sum(steady),
            "epoch_s": float(np.mean(steady)),
            "first_epoch_s": secs[0],
            "train_call_s": wall,
            "n_fit": n_fit,
            "val_f1": [round(h["val_f1"], 6) for h in res.history],
            "loss": [round(h["loss"], 6) for h in res.history],
        }
        rate, epoch_s = out[name]["samples_per_s"], out[name]["epoch_s"]
        log(f"{name}: {rate:.0f} samples/s ({epoch_s:.2f} s/epoch)")
    return out


def ceiling(args: argparse.Namespace, n_bands: int, n_steps: int, n_classes: int) -> dict[str, Any]:
    """(b) and (c): the network alone on device-resident inputs; predict_proba from the host."""
    import torch
    import torch.nn.functional as F

    from cropglobe.models.cropnet import CropNet
    from cropglobe.models.inputs import predict_proba

    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    out: dict[str, Any] = {}
    small = dev.type != "cuda"  # a smoke test on a CPU: a few steps are enough
    n = 256 * (2 if small else 40)
    x = torch.randn(n, n_bands, n_steps, device=dev)
    y = torch.randint(0, n_classes, (n,), device=dev)
    for prec in precisions(args.device):
        net = CropNet(n_classes, n_bands, n_steps).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        net.train()

        def step(lo: int, net: Any = net, opt: Any = opt, prec: str = prec) -> None:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=prec == "bf16"):
                logits = net(x[lo : lo + 256])
            loss = F.cross_entropy(logits.float(), y[lo : lo + 256])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for lo in range(0, 256 * (1 if small else 5), 256):  # warm-up
            step(lo)
        sync(dev)
        reps = 3 if dev.type == "cuda" else 1
        t0 = time.perf_counter()
        for _ in range(reps):
            for lo in range(0, n, 256):
                step(lo)
        sync(dev)
        out[f"train_step_{prec}_samples_per_s"] = reps * n / (time.perf_counter() - t0)

    net = CropNet(n_classes, n_bands, n_steps).to(dev).eval()
    m = min(args.infer_samples, 8192) if small else args.infer_samples
    xh = np.random.default_rng(args.seed).standard_normal((m, n_bands, n_steps)).astype(np.float32)
    for bs in (1024, 8192):
        predict_proba(net, xh[:bs], batch_size=bs, device=dev)  # warm-up
        t0 = time.perf_counter()
        predict_proba(net, xh, batch_size=bs, device=dev)
        out[f"predict_proba_fp32_batch{bs}_px_per_s"] = m / (time.perf_counter() - t0)
    xd = torch.from_numpy(xh).to(dev)
    with torch.inference_mode():
        for prec in precisions(args.device):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=prec == "bf16"):
                net(xd[:8192])
                sync(dev)
                t0 = time.perf_counter()
                for lo in range(0, m, 8192):
                    net(xd[lo : lo + 8192])
                sync(dev)
            out[f"forward_resident_{prec}_batch8192_px_per_s"] = m / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="CropGlobe-layout folder")
    ap.add_argument("--country", default="CAN")
    ap.add_argument("--n-samples", type=int, default=None, help="subsample the country")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per train() setting")
    ap.add_argument("--seed", type=int, default=82)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--infer-samples", type=int, default=200_000)
    ap.add_argument("--baseline-src", default=None, help="another version's src/ folder")
    ap.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    import torch

    if args.train_only:  # the subprocess of one version
        print(json.dumps(train_settings(args)))
        return

    def version(src: str | None) -> dict[str, Any]:
        cmd = [sys.executable, __file__, "--train-only", "--data", args.data]
        cmd += ["--country", args.country, "--epochs", str(args.epochs), "--seed", str(args.seed)]
        cmd += ["--device", args.device]
        if args.n_samples is not None:
            cmd += ["--n-samples", str(args.n_samples)]
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        log(f"train() of {src or 'this checkout'}")
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True, text=True)
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    result: dict[str, Any] = {"benchmark": "cropnet_gpu", "config": vars(args)}
    dev = torch.device(args.device)
    result["machine"] = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE"),
        "cpu_count": os.cpu_count(),
    }
    result["ours"] = version(None)
    if args.baseline_src:
        base = version(args.baseline_src)
        result["baseline"] = base
        ratios, same = {}, {}
        for key in [
            k for k in result["ours"] if k in base and k.split("_")[0] in ("paper", "clean")
        ]:
            ratios[key] = result["ours"][key]["samples_per_s"] / base[key]["samples_per_s"]
            a, b = np.array(result["ours"][key]["val_f1"]), np.array(base[key]["val_f1"])
            same[key] = {
                "max_abs_val_f1_diff": float(np.abs(a - b).max()),
                "max_abs_loss_diff": float(
                    np.abs(
                        np.array(result["ours"][key]["loss"]) - np.array(base[key]["loss"])
                    ).max()
                ),
            }
        result["speedup_vs_baseline"] = ratios
        result["same_training_vs_baseline"] = same
    from cropglobe.io import read_cropglobe

    data = Path(args.data)
    n_bands = read_cropglobe(data, args.country).n_bands if data.is_dir() else 10
    result["ceiling"] = ceiling(args, n_bands, 43, 4)
    low = precisions(args.device)[-1]
    paper = result["ours"][f"paper_{low}"]["samples_per_s"]
    result[f"ours_paper_{low}_over_ceiling"] = (
        paper / result["ceiling"][f"train_step_{low}_samples_per_s"]
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
