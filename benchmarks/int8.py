"""Benchmark: int8 (static, calibrated) ONNX CropNet against float32, on real WorldCereal pixels.

The mapping engine ``onnx-int8`` quantizes a model statically (:func:`cropglobe.export.
quantize_int8`: int8 weights per channel, uint8 activations with ranges calibrated on the
region's own pixels). This script measures what that costs and buys on real data, in one process:

* a CropNet model folder (``--model``, e.g. ``runs/can_fra/runs/cropnet-aug/CAN/seed82/model``
  from ``cropglobe transfer``) or, without it, a CropNet trained here on Canada
  (``--epochs``, default 10, bf16 where the CPU has it);
* the float32 torch model, its float32 ONNX export and two int8 models (calibrated on 1,024
  pixels of the scored set, as the map would be on the region it maps): 8-bit weights
  (``onnx_int8_w8``) and 7-bit weights (``onnx_int8_w7``); ``int8_auto`` names the one
  ``cropglobe map`` picks on this CPU (7 bits without VNNI, where 8-bit weights saturate);
* throughput (pixels/s, batch 1024, ``--threads``) of each engine on the same prepared inputs,
  best of ``--repeats`` passes;
* OA and macro-F1 of each engine on Canada (the model's own country; with ``--model`` trained on
  all of it, so this is a training-set score) and France (transfer target), the agreement of
  int8 with float32 predictions and the largest probability difference.

Prints ONE JSON line. Run: ``python benchmarks/int8.py [--model DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cropglobe.evaluate.experiment import load_series
from cropglobe.evaluate.metrics import score_transfer
from cropglobe.export import OnnxClassifier, export_onnx, has_vnni, quantize_int8
from cropglobe.models import load_model
from cropglobe.models.folder import model_inputs
from cropglobe.models.inputs import predict_proba

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cropglobe_format"


def throughput(fn: Any, x: np.ndarray, repeats: int) -> float:
    fn(x[:1024])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA), help="CropGlobe-layout folder with CAN and FRA")
    ap.add_argument("--model", default=None, help="a CropNet model folder (default: train one)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs when training here")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-speed", type=int, default=4096, help="pixels for the speed test")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    ss = load_series(args.data)
    country = ss.meta["country"].astype(str).to_numpy()
    sets = {c: ss.subset(country == c) for c in ("CAN", "FRA")}
    t0 = time.perf_counter()
    if args.model:
        model, card = load_model(args.model)
        source = args.model
    else:
        from cropglobe.train import train

        res = train("cropnet", sets["CAN"], epochs=args.epochs, seed=82)
        model, card = res.model, res.card
        source = f"trained here on CAN, {args.epochs} epochs (clean protocol, seed 82)"
    train_s = time.perf_counter() - t0
    assert card is not None
    cols = [ss.classes.index(c) for c in card.classes]
    inputs = {c: model_inputs(card, s) for c, s in sets.items()}

    out: dict[str, Any] = {
        "benchmark": "int8",
        "model": source,
        "train_s": round(train_s, 1),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "vnni": has_vnni(),
        "int8_auto": "onnx_int8_w8" if has_vnni() else "onnx_int8_w7",
    }
    with tempfile.TemporaryDirectory(prefix="cropglobe-int8-bench-") as tmp:
        fp32 = export_onnx(
            model,
            Path(tmp) / "m.onnx",
            n_bands=card.params["n_bands"],
            n_steps=card.params["n_steps"],
        )
        rng = np.random.default_rng(0)
        calib_src = inputs["FRA"]
        calib = calib_src[rng.permutation(calib_src.shape[0])[:1024]]
        t1 = time.perf_counter()
        w8 = quantize_int8(fp32, Path(tmp) / "m.w8.onnx", calib, reduce_range=False)
        out["quantize_s"] = round(time.perf_counter() - t1, 2)
        w7 = quantize_int8(fp32, Path(tmp) / "m.w7.onnx", calib, reduce_range=True)
        out["size_mb"] = {
            "fp32": round(fp32.stat().st_size / 2**20, 2),
            "int8": round(w8.stat().st_size / 2**20, 2),
        }
        sess = {
            "onnx_fp32": OnnxClassifier(fp32, threads=args.threads),
            "onnx_int8_w8": OnnxClassifier(w8, threads=args.threads),
            "onnx_int8_w7": OnnxClassifier(w7, threads=args.threads),
        }
        engines: dict[str, Any] = {"torch_fp32": lambda x: predict_proba(model, x, batch_size=1024)}
        for name, session in sess.items():
            engines[name] = lambda x, s=session: s.predict_proba(x, batch_size=1024)
        xs = np.concatenate(list(inputs.values()))
        xs = np.resize(xs, (args.n_speed, *xs.shape[1:]))  # repeat to n_speed pixels
        speed = {k: throughput(fn, xs, args.repeats) for k, fn in engines.items()}
        out["pixels_per_s"] = {k: round(v, 1) for k, v in speed.items()}
        auto = out["int8_auto"]
        out["speedup_int8_vs_onnx_fp32"] = round(speed[auto] / speed["onnx_fp32"], 2)
        out["speedup_int8_vs_torch_fp32"] = round(speed[auto] / speed["torch_fp32"], 2)
        scores: dict[str, Any] = {}
        for c, x in inputs.items():
            ys = sets[c].labels
            probs = {k: fn(x) for k, fn in engines.items()}
            row: dict[str, Any] = {}
            for k, p in probs.items():
                pred = np.asarray(cols)[p.argmax(axis=1)]
                s = score_transfer(
                    ys, pred, model_classes=sorted(cols), target=c, classes=ss.classes
                )
                row[k] = {"oa": round(100 * s["oa"], 2), "macro_f1": round(100 * s["macro_f1"], 2)}
            for q in ("onnx_int8_w8", "onnx_int8_w7"):
                row[f"{q}_agreement_with_fp32"] = round(
                    float((probs[q].argmax(1) == probs["torch_fp32"].argmax(1)).mean()), 4
                )
                row[f"{q}_max_abs_prob_diff"] = round(
                    float(np.abs(probs[q] - probs["torch_fp32"]).max()), 4
                )
            row["n"] = int(x.shape[0])
            scores[c] = row
        out["scores"] = scores
    print(json.dumps(out))


if __name__ == "__main__":
    main()
