"""Training, resuming, predicting and transfer on a CUDA GPU (skipped without one).

Training on CUDA uses cuDNN's deterministic kernels, so one seed gives the same weights every
time, resumed or not; a run with another seed ends far away (relative differences > 1e-2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.models import load_model, predict_proba
from cropglobe.models.folder import model_inputs
from cropglobe.simulate import simulate_world, write_world
from cropglobe.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

KW = {
    "epochs": 4,
    "batch_size": 32,
    "lr": 1e-3,
    "seed": 3,
    "model_options": {"width": 16},
    "device": "cuda",
    "precision": "fp32",
}


class Killed(Exception):
    """Stands for an interrupted training process."""


def _phenology_set():
    # the training tests' synthetic three-class set (imported lazily: tests has no package)
    from test_train import phenology_set

    return phenology_set(200)


def _largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest difference of two state dicts, relative to each tensor's largest value."""
    assert a.keys() == b.keys()
    out = 0.0
    for k in a:
        if a[k].is_floating_point():
            x, y = a[k].detach().double().cpu(), b[k].detach().double().cpu()
            out = max(out, float((x - y).abs().max() / x.abs().max().clamp_min(1e-12)))
    return out


def test_cuda_training_leaves_the_global_generators_untouched() -> None:
    torch.manual_seed(11)
    torch.cuda.manual_seed_all(12)
    cpu_before, cuda_before = torch.get_rng_state(), torch.cuda.get_rng_state()
    r = train("cropnet", _phenology_set(), **{**KW, "epochs": 1})
    assert r.card is not None and r.card.training["device"] == "cuda"
    assert torch.equal(torch.get_rng_state(), cpu_before)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_before)
    assert not torch.backends.cudnn.deterministic  # switched on for the training only


def test_cuda_training_is_seeded() -> None:
    ss = _phenology_set()
    a = train("cropnet", ss, **KW)
    b = train("cropnet", ss, **KW)
    c = train("cropnet", ss, **{**KW, "seed": 4})
    same = _largest_difference(a.model.state_dict(), b.model.state_dict())
    other = _largest_difference(a.model.state_dict(), c.model.state_dict())
    assert same == 0.0 and other > 1e-2, (same, other)  # cuDNN's deterministic kernels
    assert a.best_val_f1 > 0.6, a.history


def test_cuda_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    ss = _phenology_set()
    full = train("cropnet", ss, checkpoint_dir=tmp_path / "a", **KW)

    def kill(epoch: int, loss: float, f1: float) -> None:
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train("cropnet", ss, checkpoint_dir=tmp_path / "b", progress=kill, **KW)
    resumed = train("cropnet", ss, checkpoint_dir=tmp_path / "b", resume=True, **KW)
    # the resumed epochs draw the same dropout masks (the CUDA generator's state is saved)
    assert _largest_difference(full.model.state_dict(), resumed.model.state_dict()) == 0.0
    assert [round(h["val_f1"], 6) for h in full.history] == [
        round(h["val_f1"], 6) for h in resumed.history
    ]


def test_bf16_on_cuda_learns_and_predicts_like_the_cpu(tmp_path: Path) -> None:
    ss = _phenology_set()
    r = train("cropnet", ss, **{**KW, "precision": "auto"})
    assert r.card is not None and r.card.training["precision_used"] == "bf16"
    assert r.best_val_f1 > 0.6, r.history
    x = model_inputs(r.card, ss)
    on_gpu = predict_proba(r.model, x, device="cuda")
    on_cpu = predict_proba(r.model.cpu(), x, device="cpu")
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3)


def test_transfer_and_predict_on_the_gpu_from_the_command_line(tmp_path: Path) -> None:
    world = simulate_world(("FRA", "BEL", "ARG"), 60, random_state=1)
    write_world(world, tmp_path / "world")
    runner = CliRunner()
    args = ["transfer", "--data", str(tmp_path / "world"), "--source", "FRA"]
    args += ["--targets", "BEL", "ARG", "--methods", "cropnet-aug,rf-median1d", "--seeds", "82"]
    args += ["--epochs", "2", "--batch-size", "32", "--model-option", "cropnet.width=16"]
    args += ["--tta", "-o", str(tmp_path / "exp")]  # --device auto: the GPU
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "exp" / "config.json").read_text())
    assert config["config"]["device"] == "cuda"
    run = tmp_path / "exp" / "runs" / "cropnet-aug" / "FRA" / "seed82"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["targets"]) == {"BEL", "ARG"}
    _, card = load_model(run / "model")
    assert card.training["device"] == "cuda" and card.training["precision_used"] == "bf16"

    res = runner.invoke(
        cli, ["train", "--data", str(tmp_path / "world"), "--country", "FRA", "--model",
              "cropnet", "--epochs", "2", "--batch-size", "32", "--model-option", "width=16",
              "-o", str(tmp_path / "m")]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for device in ("cuda", "cpu"):
        out = tmp_path / f"pred_{device}.parquet"
        res = runner.invoke(
            cli, ["predict", str(tmp_path / "m"), "--data", str(tmp_path / "world"),
                  "--country", "BEL", "--device", device, "-o", str(out)]
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    import pandas as pd

    gpu = pd.read_parquet(tmp_path / "pred_cuda.parquet")
    cpu = pd.read_parquet(tmp_path / "pred_cpu.parquet")
    p_cols = [c for c in gpu.columns if c.startswith("p_")]
    np.testing.assert_allclose(gpu[p_cols].to_numpy(), cpu[p_cols].to_numpy(), atol=2e-3)
