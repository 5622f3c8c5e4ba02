"""Train CropNet with the released code's loop and with cropglobe's train() on the same draws.

python scripts/release_equivalence.py --release PATH/TO/CropNet \
    --data ../shared/data/cropglobe_format/for_CropNet --source CAN --target FRA \
    --epochs 10 --seed 83

The release (x-ytong/CropNet, Tong & Wang's public code) is not part of cropglobe: give the
folder of your own checkout. The script reads the source and target with the release's
``data_load``, draws one offline augmented set with the release's ``CropGlobeDataset`` (its
generator seeded here, unseeded in the release), builds the release's CropNet and copies its
initial weights into cropglobe's CropNet. Then the release's ``training()`` and
``validation()`` run on batches in the order ``torch.randperm(generator seeded with the
seed)`` with dropout drawn from torch's generator seeded with the seed — the draws cropglobe's
``train(protocol="paper")`` makes — and ``train()`` runs on the same augmented set. Identical
draws must give identical weights: any difference is a difference of the implementations.

The augmentation is compared the same way: every draw the release's generator makes is
recorded and replayed into cropglobe's paper augmentation (its coin flips and draws taken in
cropglobe's order), and the two augmented sets are compared sample by sample.

Prints one JSON line: the augmented sets' largest absolute and relative difference, per-epoch
validation macro-F1 of both, the selected epochs, the largest
weight difference of the selected models, both target scores (OA and macro-F1 over the
classes present in the target, %) and the seconds each side took. The release's epoch lines
go to stderr. The release's trainer uses a Python 3.12 f-string (``['lr']`` inside single
quotes); on older Python that one quote is changed in memory before compiling.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

from cropglobe.bands import S2_BANDS
from cropglobe.models.cropnet import CropNet
from cropglobe.series import SeriesSet, TimeGrid
from cropglobe.train import train

RELEASE_FILES = ("models/CropNet.py", "data/augment.py", "data/loading.py", "util/label.py")
TRAINER = "trainers/torch_trainer.py"


def load_release(root: Path) -> dict[str, Any]:
    """The release's modules, imported from its checkout ``root``."""
    missing = [f for f in (*RELEASE_FILES, TRAINER) if not (root / f).is_file()]
    if missing:
        sys.exit(
            f"Error: {root} is not a checkout of x-ytong/CropNet (missing {', '.join(missing)}); "
            "give the folder holding run_CropNet_AUGM.py with --release"
        )
    # the release draws progress bars with tqdm: a stand-in while its modules import (only
    # then: torch looks for the real package later)
    stub = None
    if importlib.util.find_spec("tqdm") is None:
        stub = types.ModuleType("tqdm")
        stub.tqdm = lambda it, **kw: it  # type: ignore[attr-defined]
        sys.modules["tqdm"] = stub
    sys.path.insert(0, str(root))
    try:
        from data.augment import CropGlobeDataset
        from data.loading import data_load
        from models.CropNet import CropNet as ReleaseNet
        from util.label import CROP_INDEX
    finally:
        if stub is not None:
            del sys.modules["tqdm"]

    text = (root / TRAINER).read_text()
    try:
        code = compile(text, str(root / TRAINER), "exec")
    except SyntaxError:  # Python < 3.12: same string, other quotes
        code = compile(text.replace("['lr']", '["lr"]'), str(root / TRAINER), "exec")
    trainer = types.ModuleType("trainers.torch_trainer")
    exec(code, trainer.__dict__)
    return {
        "CropGlobeDataset": CropGlobeDataset,
        "data_load": data_load,
        "ReleaseNet": ReleaseNet,
        "CROP_INDEX": CROP_INDEX,
        "training": trainer.training,
        "validation": trainer.validation,
    }


def release_to_ours(keys: list[str]) -> dict[str, str]:
    """Parameter names of the release's CropNet -> cropglobe's (``layerN.block.i`` ->
    ``blocks.N-1.i``, ``classifier`` -> ``head``)."""
    out = {}
    for key in keys:
        if key.startswith("classifier."):
            out[key] = "head." + key.split(".", 1)[1]
        else:
            layer, rest = key.split(".block.")
            out[key] = f"blocks.{int(layer.removeprefix('layer')) - 1}.{rest}"
    return out


class Recorder:
    """Stands in for the release augmentation's generator and notes every draw in order."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.log: list[tuple[str, Any]] = []

    def random(self) -> float:
        v = float(self.rng.random())
        self.log.append(("random", v))
        return v

    def integers(self, low: int, high: int) -> int:
        v = int(self.rng.integers(low, high))
        self.log.append(("integers", v))
        return v

    def normal(self, loc: float, scale: float, size: int) -> np.ndarray:
        v = self.rng.normal(loc, scale, size=size)
        self.log.append(("normal", v - loc))  # cropglobe draws the knots around 0
        return v


class Replay(np.random.Generator):
    """A generator that answers cropglobe's augmentation with prepared draws, in order."""

    def __init__(self, answers: list[tuple[str, np.ndarray]]) -> None:
        super().__init__(np.random.PCG64(0))
        self.answers = answers

    def _next(self, kind: str, shape: tuple[int, ...]) -> np.ndarray:
        want, value = self.answers.pop(0)
        if want != kind or value.shape != shape:
            sys.exit(
                f"Error: cropglobe asked for {kind}{shape}, the replay holds {want}{value.shape}"
            )
        return value

    def integers(self, low: int, high: int, size: Any) -> np.ndarray:  # type: ignore[override]
        return self._next("integers", tuple(np.atleast_1d(size)))

    def random(self, size: int) -> np.ndarray:  # type: ignore[override]
        return self._next("random", (int(size),))

    def normal(self, loc: float, scale: float, size: Any) -> np.ndarray:  # type: ignore[override]
        return self._next("normal", tuple(np.atleast_1d(size)))


def compare_augmentation(
    aug: Any, log: list[tuple[str, Any]], x_full: np.ndarray, x_release: torch.Tensor
) -> dict[str, Any]:
    """Draw cropglobe's paper augmentation with the release's own draws, sample by sample,
    and compare the two augmented sets (originals + copies)."""
    from cropglobe.augment import augment_offline
    from cropglobe.series import TimeGrid

    n = x_full.shape[0]
    it = iter(log)

    def take(kind: str) -> Any:
        got, value = next(it)
        assert got == kind, (got, kind)
        return value

    answers: list[tuple[str, np.ndarray]] = []
    for _ in range(aug.re__peat):  # one augmented copy of every sample per repeat
        shift = np.zeros(n, np.int64)
        ab = np.zeros((n, 2), np.int64)
        z = np.zeros((n, aug.warp_knots))
        u = np.zeros((3, n))
        for i in range(n):  # the release's order: per sample, shift, scale, warp
            u[0, i] = take("random")
            if u[0, i] < aug.p_timeshift:
                shift[i] = take("integers")
            u[1, i] = take("random")
            if u[1, i] < aug.p_timescale:
                ab[i] = take("integers"), take("integers")
            u[2, i] = take("random")
            if u[2, i] < aug.p_mgwarping:
                z[i] = take("normal")
        # cropglobe's order: per copy, for all samples at once, the draws then the coin flips
        answers += [("integers", shift), ("random", u[0]), ("integers", ab), ("random", u[1])]
        answers += [("normal", z), ("random", u[2])]
    replay = Replay(answers)
    window = (aug.staDOY, aug.endDOY)
    x_ours, _ = augment_offline(
        x_full, np.zeros(n, np.int64), copies=aug.re__peat, rng=replay,
        grid=TimeGrid.cropglobe(), bands=S2_BANDS[: x_full.shape[1]], window=window,
    )  # fmt: skip
    if replay.answers:
        sys.exit(f"Error: cropglobe left {len(replay.answers)} of the release's draws unused")
    ref = x_release[:, 0].numpy().astype(np.float64)
    diff = np.abs(x_ours.astype(np.float64) - ref)
    rel = diff / np.maximum(np.abs(ref), 1.0)
    per_sample = rel.reshape(rel.shape[0], -1).max(axis=1)
    return {
        "samples": int(ref.shape[0]),
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(rel.max()),
        "samples_over_1e-4_rel": int((per_sample > 1e-4).sum()),
    }


def scores(net: Any, x: torch.Tensor, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """OA and macro-F1 over the classes present in ``y`` (%), and the predictions."""
    net.eval()
    with torch.inference_mode():
        pred = net(x).argmax(1).numpy()
    f1 = f1_score(y, pred, average="macro", labels=np.unique(y).tolist())
    return 100 * float(accuracy_score(y, pred)), 100 * float(f1), pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--release", type=Path, required=True, help="checkout of x-ytong/CropNet")
    ap.add_argument("--data", type=Path, required=True, help="folder of median_S2_*_month1-12")
    ap.add_argument("--source", default="CAN")
    ap.add_argument("--target", default="FRA")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=82)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    if args.epochs < 1 or args.batch_size < 2:
        sys.exit("Error: --epochs must be >= 1 and --batch-size >= 2")
    rel = load_release(args.release.expanduser())
    for c in (args.source, args.target):
        f = args.data / f"median_S2_{c}_month1-12_day5.npz"
        if not f.is_file():
            sys.exit(f"Error: {f} not found; give the release's feature folder with --data")

    with contextlib.redirect_stdout(sys.stderr):
        src, tgts, train_index, _ = rel["data_load"](
            str(args.data), "median_CropNet", args.source, [args.target], rel["CROP_INDEX"]
        )
        aug = rel["CropGlobeDataset"](aug_mode="augm")
        recorder = Recorder(np.random.default_rng(args.seed))
        aug.rng = recorder
        x_tr, y_tr = aug(src).tensors
        x_val, y_val = rel["CropGlobeDataset"](aug_mode="none")(src).tensors
        x_te, y_te = rel["CropGlobeDataset"](aug_mode="none")(tgts[args.target]).tensors
    classes = tuple(train_index)
    k = len(classes)
    augmentation = compare_augmentation(aug, recorder.log, src.tensors[0][:, 0].numpy(), x_tr)

    torch.manual_seed(args.seed)
    rnet = rel["ReleaseNet"](data_channel=1, classes=k)
    init = copy.deepcopy(rnet.state_dict())
    names = release_to_ours(list(init))
    ours = CropNet(k, n_bands=int(x_tr.shape[2]), n_steps=int(x_tr.shape[3]))
    ours.load_state_dict({names[kk]: v.clone() for kk, v in init.items()})

    # cropglobe: train() on the release's augmented set, the plain windows as validation
    grid = TimeGrid.cropglobe().select(np.arange(aug.base_sta_idx, aug.base_end_idx))
    bands = S2_BANDS[: int(x_tr.shape[2])]
    tr = SeriesSet(x_tr[:, 0].numpy(), bands, grid, y_tr.numpy(), classes)
    va = SeriesSet(x_val[:, 0].numpy(), bands, grid, y_val.numpy(), classes)
    t0 = time.perf_counter()
    res = train(
        ours,
        tr,
        va,
        protocol="paper",
        augment="none",
        window=None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        precision="fp32",
    )
    t_ours = time.perf_counter() - t0

    # the release's loop on the same batches and dropout stream
    counts = np.bincount(y_tr.numpy(), minlength=k)
    weight = torch.tensor(y_tr.numel() / (k * counts), dtype=torch.float)
    criterion = torch.nn.CrossEntropyLoss(weight=weight)
    opt = torch.optim.Adam(rnet.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    bs, n = args.batch_size, int(y_tr.numel())
    val_batches = [(x_val[i : i + bs], y_val[i : i + bs]) for i in range(0, len(y_val), bs)]
    f1s: list[float] = []
    best, best_epoch, best_state = 0.0, 0, init
    t0 = time.perf_counter()
    with torch.random.fork_rng(), contextlib.redirect_stdout(sys.stderr):
        torch.manual_seed(args.seed)
        for epoch in range(args.epochs):
            perm = torch.randperm(n, generator=gen)
            batches = [(x_tr[perm[i : i + bs]], y_tr[perm[i : i + bs]]) for i in range(0, n, bs)]
            batches = [b for b in batches if len(b[1]) >= 2]  # as train(): no 1-sample batch
            rel["training"](rnet, batches, criterion, opt, epoch, args.epochs, "cpu")
            f1s.append(float(rel["validation"](rnet, val_batches, epoch, "cpu")[3]))
            if f1s[-1] > best:
                best, best_epoch = f1s[-1], epoch + 1
                best_state = copy.deepcopy(rnet.state_dict())
    t_rel = time.perf_counter() - t0
    rnet.load_state_dict(best_state)

    ours_state = res.model.state_dict()
    diff = max(
        float((v.float() - ours_state[names[kk]].float()).abs().max())
        for kk, v in best_state.items()
    )
    y_true = y_te.numpy()
    oa_r, f1_r, p_r = scores(rnet, x_te, y_true)
    oa_o, f1_o, p_o = scores(res.model, x_te[:, 0], y_true)
    print(
        json.dumps(
            {
                "source": args.source,
                "target": args.target,
                "seed": args.seed,
                "augmentation": augmentation,
                "epochs": args.epochs,
                "val_macro_f1_release": [round(v, 6) for v in f1s],
                "val_macro_f1_cropglobe": [round(h["val_f1"], 6) for h in res.history],
                "best_epoch": {"release": best_epoch, "cropglobe": res.best_epoch},
                "weights_max_abs_diff": diff,
                "target_oa": {"release": round(oa_r, 2), "cropglobe": round(oa_o, 2)},
                "target_macro_f1": {"release": round(f1_r, 2), "cropglobe": round(f1_o, 2)},
                "target_predictions_differing": int((p_r != p_o).sum()),
                "seconds": {"release": round(t_rel, 1), "cropglobe": round(t_ours, 1)},
            }
        )
    )


if __name__ == "__main__":
    main()
