"""ONNX export: onnxruntime matches the torch model (optional packages; skipped if absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from cropglobe.errors import DataFormatError
from cropglobe.export import OnnxClassifier, export_model_folder, export_onnx
from cropglobe.models import ModelCard, create_model, predict_proba, save_model
from cropglobe.series import TimeGrid


@pytest.mark.parametrize("name", ["cropnet", "mlp", "tempcnn", "transformer"])
def test_onnx_parity(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 7, 10, 43).eval()
    path = export_onnx(model, tmp_path / "m.onnx", n_bands=10, n_steps=43)
    x = np.random.default_rng(0).normal(1000, 300, (37, 10, 43)).astype(np.float32)
    clf = OnnxClassifier(path)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    scale = max(1.0, float(np.abs(ref).max()))  # float32 sums of inputs ~1000: relative 1e-5
    np.testing.assert_allclose(clf.logits(x, batch_size=16), ref, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(clf.predict_proba(x), predict_proba(model, x), atol=1e-5)
    with pytest.raises(DataFormatError, match="expects input"):
        clf.logits(x[:, :9])


def _save_cropnet(folder: Path, model: object) -> None:
    """A CropNet of 10 bands × 43 steps (the paper's window) and 3 classes saved as a folder."""
    card = ModelCard(
        model="cropnet",
        params=model.config,  # type: ignore[attr-defined]
        bands=tuple(f"b{i}" for i in range(10)),
        grid=TimeGrid.cropglobe(),
        classes=("a", "b", "c"),
        window=(121, 334),
    )
    save_model(folder, model, card)


def test_export_model_folder(tmp_path: Path) -> None:
    model = create_model("cropnet", 3, 10, 43, width=16).eval()
    _save_cropnet(tmp_path / "m", model)
    onnx_path = export_model_folder(tmp_path / "m")
    x = np.random.default_rng(1).normal(size=(5, 10, 43)).astype(np.float32)
    np.testing.assert_allclose(
        OnnxClassifier(onnx_path).predict_proba(x), predict_proba(model, x), atol=1e-5
    )


def test_quantize_int8_refuses_bad_calibration(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from cropglobe.errors import ParameterError
    from cropglobe.export import quantize_int8

    with pytest.raises(ParameterError, match="calibration inputs"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", np.zeros((0, 10, 43), np.float32))
    with pytest.raises(ParameterError, match="calibration inputs"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", np.zeros((4, 43), np.float32))


def test_vnni_is_read_from_the_cpu_flags() -> None:
    """Without VNNI, int8 weights are quantized to 7 bits (full-range weights saturate the
    16-bit pair sums of AVX2 kernels)."""
    from cropglobe.export import has_vnni

    assert has_vnni("processor: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert has_vnni("flags : fpu avx2 avx_vnni\n")
    assert not has_vnni("flags : fpu sse2 avx2 avx512f avx512bw\n")
    assert not has_vnni("model name : unknown\n")
    assert isinstance(has_vnni(), bool)


def test_cli_export_of_the_card_file_names_its_folder(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.main import cli

    model = create_model("cropnet", 3, 10, 43, width=8).eval()
    _save_cropnet(tmp_path / "m", model)
    r = CliRunner().invoke(cli, ["export", str(tmp_path / "m" / "card.json")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "card.json: is a file, but a model folder (holding card.json) is expected" in r.output
    assert r.output.rstrip().endswith(f"give the folder holding it: {tmp_path / 'm'}")
    assert "no such model folder" not in r.output
