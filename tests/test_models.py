"""Models: CropNet as REFERENCE.md, the other networks, classical baselines, model folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from cropglobe.composite import fill_gaps
from cropglobe.errors import (
    BandError,
    DataFormatError,
    GridError,
    LabelError,
    ModelError,
    ParameterError,
)
from cropglobe.models import (
    CropNet,
    LightGBMModel,
    ModelCard,
    RandomForestModel,
    available_models,
    check_compatible,
    create_model,
    load_model,
    predict_proba,
    prepare_inputs,
    save_model,
)
from cropglobe.models.folder import model_inputs
from cropglobe.series import SeriesSet, TimeGrid

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------- CropNet
def test_cropnet_parameter_counts() -> None:
    assert n_params(CropNet(7)) == 1_036_295
    assert n_params(CropNet(6)) == 1_036_166


def test_cropnet_shapes() -> None:
    torch.manual_seed(0)
    m = CropNet(7).eval()
    x = torch.randn(3, 1, 10, 43)
    assert m(x).shape == (3, 7)
    assert m.blocks[0](x).shape == (3, 128, 5, 22)  # 10 × 43 becomes 5 × 22 after block 1
    torch.testing.assert_close(m(x[:, 0]), m(x))  # (B, C, T) is accepted too
    assert m(torch.randn(2, 1, 12, 30)).shape == (2, 7)  # any C and T
    with pytest.raises(DataFormatError, match="model input"):
        m(torch.randn(2, 3, 10, 43))


def test_cropnet_layers_and_init() -> None:
    torch.manual_seed(0)
    m = CropNet(7)
    block = m.blocks[0]
    kinds = [type(layer).__name__ for layer in block]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Dropout2d"]
    assert block[0].stride == (2, 2) and block[0].bias is None and block[0].padding == (1, 1)
    assert [b[6].p for b in m.blocks] == [0.2, 0.3, 0.3, 0.4]
    assert all(b[0].stride == (1, 1) for b in m.blocks[1:])
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            assert torch.all(mod.weight == 1) and torch.all(mod.bias == 0)
    w = m.blocks[1][3].weight  # fan_out = 128 · 9
    assert w.std().item() == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.05)
    assert m.head.weight.std().item() == pytest.approx(np.sqrt(2 / 128), rel=0.1)
    assert torch.all(m.head.bias == 0)


@pytest.mark.parametrize("name", ["mlp", "tempcnn", "transformer"])
def test_other_networks(name: str) -> None:
    torch.manual_seed(0)
    m = create_model(name, 5, n_bands=4, n_steps=20).eval()
    assert m(torch.randn(3, 4, 20)).shape == (3, 5)
    assert m(torch.randn(3, 1, 4, 20)).shape == (3, 5)
    with pytest.raises(DataFormatError, match="built for 4 bands"):
        m(torch.randn(3, 5, 20))


def test_mlp_layout() -> None:
    m = create_model("mlp", 7, 10, 43)
    kinds = [type(layer).__name__ for layer in m.body]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Dropout"] * 8
    assert m.body[0].in_features == 430 and m.head.in_features == 128
    # initialised as CropNet: Kaiming-normal fan_in (std sqrt(2 / fan_in)), zero biases
    torch.manual_seed(0)
    big = create_model("mlp", 7, 100, 43, width=512)
    w = big.body[4].weight.detach()  # 512 inputs
    assert abs(float(w.std()) - (2 / 512) ** 0.5) < 0.002 and abs(float(w.mean())) < 0.001
    assert all(not layer.bias.detach().any() for layer in big.modules()
               if isinstance(layer, torch.nn.Linear))  # fmt: skip


def test_registry() -> None:
    assert set(available_models()) >= {
        "cropnet",
        "mlp",
        "tempcnn",
        "transformer",
        "random_forest",
        "lightgbm",
    }
    assert isinstance(create_model("rf", 3), RandomForestModel)
    with pytest.raises(ModelError, match=r"expected one of .*cropnet.*transformer"):
        create_model("resnet", 7)
    with pytest.raises(ModelError, match="bad hyperparameters"):
        create_model("cropnet", 7, depth=3)


def test_import_is_light() -> None:
    code = "import cropglobe, cropglobe.models, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and out.stderr == ""


# ---------------------------------------------------------------------------------- inputs
def test_linear_fill_matches_np_interp() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 30)).astype(np.float32)
    x[rng.random(x.shape) < 0.4] = np.nan
    x[3] = np.nan
    grid = TimeGrid.from_starts(np.cumsum(rng.integers(1, 10, 30)).tolist(), end=320)
    xs = grid.centers
    out = fill_gaps(x, grid)
    for i, row in enumerate(x):
        ok = ~np.isnan(row)
        if not ok.any():
            assert np.isnan(out[i]).all()
            continue
        np.testing.assert_allclose(out[i], np.interp(xs, xs[ok], row[ok]), rtol=1e-5, atol=1e-5)


def test_prepare_inputs() -> None:
    x = np.array([[[np.nan, 1.0, np.nan, 3.0, np.nan]], [[np.nan] * 5]], np.float32)
    out = prepare_inputs(x)
    np.testing.assert_array_equal(out[0, 0], [1, 1, 2, 3, 3])
    np.testing.assert_array_equal(out[1, 0], 0)
    np.testing.assert_array_equal(
        prepare_inputs(x, scale=(1.0, 2.0), nan=-1)[0, 0], [0, 0, 0.5, 1, 1]
    )
    before = x.copy()
    np.testing.assert_array_equal(prepare_inputs(x, fill="none", nan=7)[0, 0], [7, 1, 7, 3, 7])
    np.testing.assert_array_equal(x, before)  # the caller's array is never written into
    with pytest.raises(DataFormatError, match="NaN"):
        predict_proba(CropNet(2), x)


# ---------------------------------------------------------------------------------- classical
def _tabular(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 3, 8)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(np.int64) + 2 * (x[:, 1, 3] > 0.3)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, y


def test_random_forest_round_trip_equals_sklearn(tmp_path: Path) -> None:
    x, y = _tabular()
    rf = RandomForestModel(n_estimators=40, random_state=0).fit(x, y)
    expected = rf.estimator_.predict_proba(x.reshape(len(x), -1))
    np.testing.assert_array_equal(rf.predict_proba(x), expected)
    rf.save(tmp_path / "rf")
    assert not list((tmp_path / "rf").glob("*.pkl"))
    loaded = RandomForestModel.load(tmp_path / "rf")
    assert not hasattr(loaded, "estimator_")
    x2, _ = _tabular(1)
    np.testing.assert_array_equal(
        loaded.predict_proba(x2), rf.estimator_.predict_proba(x2.reshape(len(x2), -1))
    )
    np.testing.assert_array_equal(loaded.classes_, rf.classes_)
    assert rf.score(x, y) > 0.95


def test_lightgbm_round_trip(tmp_path: Path) -> None:
    x, y = _tabular()
    lg = LightGBMModel(n_estimators=30, random_state=0, n_jobs=1).fit(x, y)
    lg.save(tmp_path / "lgb")
    assert (tmp_path / "lgb" / "lightgbm.txt").read_text().startswith("tree")
    loaded = LightGBMModel.load(tmp_path / "lgb")
    np.testing.assert_allclose(loaded.predict_proba(x), lg.predict_proba(x), rtol=1e-12)
    assert lg.score(x, y) > 0.95
    with pytest.raises(DataFormatError, match=r"expecting 24 features.*fitted on shape \(3, 8\)"):
        lg.predict_proba(x[:, :2])


# ---------------------------------------------------------------------------------- folders
def _card(model: str = "cropnet", **params: object) -> ModelCard:
    base = {"n_classes": 3, "n_bands": 10, "n_steps": 43}
    return ModelCard(
        model=model,
        params={**base, **params},
        bands=BANDS,
        grid=TimeGrid.cropglobe(),
        classes=("corn", "wheat", "other"),
        window=(121, 334),
        metrics={"val_macro_f1": 0.9},
    )


def _series(bands: tuple[str, ...] = BANDS, grid: TimeGrid | None = None) -> SeriesSet:
    g = grid or TimeGrid.cropglobe()
    v = np.random.default_rng(0).normal(1000, 100, (4, len(bands), g.n_steps)).astype(np.float32)
    v[0, :, 30] = np.nan
    return SeriesSet(v, bands, g)


@pytest.mark.parametrize("name", ["cropnet", "transformer"])
def test_neural_folder_round_trip(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 3, 10, 43).eval()
    card = _card(name, **model.config)
    save_model(tmp_path / "m", model, card)
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["card.json", "model.safetensors"]
    loaded, card2 = load_model(tmp_path / "m")
    assert card2.to_dict() == card.to_dict()
    x = model_inputs(card2, _series())
    assert x.shape == (4, 10, 43) and not np.isnan(x).any()
    np.testing.assert_array_equal(predict_proba(loaded, x), predict_proba(model, x))
    data = json.loads((tmp_path / "m" / "card.json").read_text())
    assert data["grid"] == TimeGrid.cropglobe().to_dict() and data["window"] == [121, 334]


def _save_forest(folder: Path, rf: RandomForestModel) -> None:
    """A forest of :func:`_tabular` (3 bands × 8 steps, 4 classes) saved as a folder."""
    card = ModelCard(
        model="random_forest",
        params=rf.get_params(),
        bands=("a", "b", "c"),
        grid=TimeGrid.regular(5, 1, 40),
        classes=("p", "q", "r", "s"),
    )
    save_model(folder, rf, card)


def test_classical_folder_round_trip(tmp_path: Path) -> None:
    x, y = _tabular()
    rf = RandomForestModel(n_estimators=10, random_state=0).fit(x, y)
    _save_forest(tmp_path / "rf", rf)
    loaded, _ = load_model(tmp_path / "rf")
    np.testing.assert_array_equal(loaded.predict_proba(x), rf.predict_proba(x))


def test_mismatched_data_is_refused() -> None:
    card = _card()
    check_compatible(card, _series())
    check_compatible(card, _series(grid=TimeGrid.cropglobe().window(121, 334)))  # pre-windowed
    with pytest.raises(BandError, match="select them by name first"):
        check_compatible(card, _series(bands=tuple(reversed(BANDS))))
    with pytest.raises(BandError, match=r"lacks bands \['B12'\]"):
        check_compatible(card, _series(bands=(*BANDS[:9], "VV")))
    with pytest.raises(GridError, match="differs from the model's"):
        check_compatible(card, _series(grid=TimeGrid.regular(10)))
    with pytest.raises(GridError):
        check_compatible(card, _series(grid=TimeGrid.cropglobe(anchor="07-01")))


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a cropglobe model folder"):
        (tmp_path / "empty").mkdir()
        load_model(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(ModelError, match="refusing to replace"):
        save_model(other, CropNet(3), _card())
    assert (other / "precious.txt").read_text() == "keep me"
    save_model(tmp_path / "m", CropNet(3), _card())
    (tmp_path / "m" / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model card"):
        load_model(tmp_path / "m")
    save_model(tmp_path / "m2", CropNet(3), _card(width=64))  # card says width 64, weights 128
    with pytest.raises(ModelError, match="weights do not match"):
        load_model(tmp_path / "m2")
    (tmp_path / "m3").mkdir()
    (tmp_path / "m3" / "card.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelError, match="not a cropglobe model card"):
        load_model(tmp_path / "m3")


def test_shifted_model_inputs_and_shift_averaging() -> None:
    from cropglobe.errors import ParameterError
    from cropglobe.models.folder import shift_averaged_proba

    torch.manual_seed(0)
    model = create_model("cropnet", 3, 10, 43, width=16).eval()
    card = _card("cropnet", **model.config)
    ss = _series()
    full = prepare_inputs(ss.values, grid=ss.grid)
    # the window is bins 24…66 of the 5-day grid: ±10 days move it by exactly 2 bins
    np.testing.assert_array_equal(model_inputs(card, ss, shift=10), full[:, :, 26:69])
    np.testing.assert_array_equal(model_inputs(card, ss, shift=-10), full[:, :, 22:65])
    np.testing.assert_array_equal(model_inputs(card, ss, shift=0), model_inputs(card, ss))
    half = model_inputs(card, ss, shift=2.5)  # half a bin: the mean of neighbouring bins
    np.testing.assert_allclose(half, (full[:, :, 24:67] + full[:, :, 25:68]) / 2, rtol=1e-6)
    late = model_inputs(card, ss, shift=100)  # clamped to the grid's last bin, stretched
    np.testing.assert_array_equal(late[:, :, 0], full[:, :, 44])
    np.testing.assert_array_equal(late[:, :, -1], full[:, :, 72])

    shifts = (-10.0, 0.0, 10.0)
    p = shift_averaged_proba(model, card, ss, shifts)
    expected = np.mean([predict_proba(model, model_inputs(card, ss, shift=s)) for s in shifts], 0)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(
        shift_averaged_proba(model, card, ss, [0]), predict_proba(model, model_inputs(card, ss))
    )

    with pytest.raises(ParameterError, match="non-empty list of days"):
        shift_averaged_proba(model, card, ss, [])
    windowed = _series(grid=TimeGrid.cropglobe().window(121, 334))
    with pytest.raises(GridError, match="needs the data on the model's full grid"):
        model_inputs(card, windowed, shift=5)
    rf_card = _card("random_forest")
    with pytest.raises(ParameterError, match="is a classical model"):
        model_inputs(rf_card, ss, shift=5)
    no_window = ModelCard(**{**card.__dict__, "window": None})
    with pytest.raises(ParameterError, match="has no window"):
        model_inputs(no_window, ss, shift=5)


def test_auto_device_is_the_gpu_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.main import cli
    from cropglobe.models.inputs import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" AUTO ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ParameterError, match="'cpu', 'cuda', 'cuda:N' or 'auto'"):
        resolve_device("gpu")
    # the command line resolves auto as it is read: configs and cards name the device used
    import cropglobe.cli._common as common
    from cropglobe.cli._common import _parse_device

    monkeypatch.setattr(common, "_no_gpu_nodes", lambda: False)  # a machine with a GPU
    assert _parse_device(None, None, "auto") == "cuda"  # type: ignore[arg-type]
    monkeypatch.setattr(common, "_no_gpu_nodes", lambda: True)  # none: torch is not asked
    assert _parse_device(None, None, "auto") == "cpu"  # type: ignore[arg-type]
    assert _parse_device(None, None, "cuda:1") == "cuda:1"  # type: ignore[arg-type]
    help_text = CliRunner().invoke(cli, ["transfer", "--help"]).output
    assert "auto (the CUDA GPU when" in " ".join(help_text.split())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_predict_proba_moves_a_loaded_model_to_the_device() -> None:
    from cropglobe.models import predict_proba

    net = CropNet(4, n_bands=3, n_steps=12)  # on the CPU, as load_model returns it
    x = np.random.default_rng(0).normal(size=(8, 3, 12)).astype(np.float32)
    cpu = predict_proba(net, x)
    gpu = predict_proba(net, x, device="cuda")
    assert next(net.parameters()).device.type == "cuda"
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


@pytest.mark.parametrize("cut", [1000, 3000, 6000, -40])
def test_a_truncated_lightgbm_file_is_a_clear_error(tmp_path: Path, cut: int) -> None:
    # LightGBM's own parser aborts the process on some cuts; the folder is checked first
    x, y = _tabular()
    LightGBMModel(n_estimators=30, random_state=0, n_jobs=1).fit(x, y).save(tmp_path / "lgb")
    path = tmp_path / "lgb" / "lightgbm.txt"
    text = path.read_text()
    assert len(text) > 6000
    path.write_text(text[:cut])
    with pytest.raises(ModelError, match=r"lightgbm\.txt: truncated or not a LightGBM model"):
        LightGBMModel.load(tmp_path / "lgb")
    path.write_bytes(b"\xff\xfe" + text.encode())
    with pytest.raises(ModelError, match="not a LightGBM model file"):
        LightGBMModel.load(tmp_path / "lgb")


@pytest.mark.parametrize("damage", ["unknown parameter", "no classes"])
def test_estimator_metadata_of_another_version_is_a_clear_error(tmp_path: Path, damage) -> None:
    x, y = _tabular()
    RandomForestModel(n_estimators=5, random_state=0).fit(x, y).save(tmp_path / "rf")
    path = tmp_path / "rf" / "estimator.json"
    meta = json.loads(path.read_text())
    if damage == "unknown parameter":
        meta["params"]["bogus"] = 1
    else:
        del meta["classes"]
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"estimator\.json: incomplete or written by another"):
        RandomForestModel.load(tmp_path / "rf")


def _edit_card(folder: Path, **changes: object) -> None:
    path = folder / "card.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"bands": list(BANDS[:9])}, "lists 9 bands but the model reads 10"),
        ({"window": [121, 300]}, "lists 36 time steps (grid and window) but the model reads 43"),
        ({"classes": ["corn", "wheat"]}, "lists 2 classes but the model reads 3"),
    ],
)
def test_a_card_contradicting_its_network_is_refused(
    tmp_path: Path, changes: dict[str, object], words: str
) -> None:
    model = create_model("cropnet", 3, 10, 43, width=8)
    save_model(tmp_path / "m", model, _card("cropnet", **model.config))
    _edit_card(tmp_path / "m", **changes)
    with pytest.raises(ModelError, match="card is damaged") as info:
        load_model(tmp_path / "m")
    assert words in str(info.value) and str(tmp_path / "m") in str(info.value)


def test_a_card_contradicting_its_forest_is_refused(tmp_path: Path) -> None:
    x, y = _tabular()  # (300, 3, 8)
    rf = RandomForestModel(n_estimators=3, random_state=0).fit(x, y)
    _save_forest(tmp_path / "rf", rf)
    load_model(tmp_path / "rf")
    _edit_card(tmp_path / "rf", bands=["a", "b"])
    with pytest.raises(ModelError, match="card is damaged: it lists 2 bands but the model reads 3"):
        load_model(tmp_path / "rf")


def test_a_card_naming_another_model_than_its_weights_is_refused(tmp_path: Path) -> None:
    model = create_model("cropnet", 3, 10, 43, width=8)
    save_model(tmp_path / "m", model, _card("cropnet", **model.config))
    _edit_card(tmp_path / "m", model="tempcnn")
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "m")
    msg = str(info.value)
    assert "the card does not match the weights in model folder" in msg
    assert str(tmp_path / "m") in msg and "damaged or was edited" in msg
    assert "give values like the model's defaults" not in msg


def test_a_truncated_forest_file_is_one_line(tmp_path) -> None:
    """A forest.npz cut short (an interrupted copy) raised zipfile.BadZipFile: a traceback."""
    from cropglobe.errors import ModelError
    from cropglobe.models.classical import RandomForestModel

    rng = np.random.default_rng(0)
    model = RandomForestModel(n_estimators=3, random_state=0).fit(
        rng.normal(size=(40, 2, 5)), np.arange(40) % 2
    )
    model.save(tmp_path / "rf")
    path = tmp_path / "rf" / "forest.npz"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ModelError, match=r"forest.npz: not a cropglobe forest file .*re-save"):
        RandomForestModel.load(tmp_path / "rf")


def test_a_damaged_weights_file_is_named_as_such(tmp_path) -> None:
    """A truncated model.safetensors was reported as a damaged or edited card."""
    from cropglobe.errors import ModelError

    model = create_model("mlp", 3, 2, 5)
    card = ModelCard(model="mlp", params=model.config, bands=("a", "b"),
                     grid=TimeGrid.regular(5, 1, 25), classes=("x", "y", "z"))  # fmt: skip
    save_model(tmp_path / "m", model, card)
    path = tmp_path / "m" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelError) as err:
        load_model(tmp_path / "m")
    assert "model.safetensors: unreadable weights" in str(err.value)
    assert "card" not in str(err.value)


def test_a_card_whose_bands_or_classes_were_reordered_is_refused(tmp_path) -> None:
    """The weights record the bands and classes they were trained on: a card edited to
    another order would mislabel every prediction silently."""
    import json

    from cropglobe.errors import ModelError

    model = create_model("mlp", 3, 2, 5)
    card = ModelCard(model="mlp", params=model.config, bands=("B04", "B08"),
                     grid=TimeGrid.regular(5, 1, 25),
                     classes=("corn", "wheat", "other"))  # fmt: skip
    save_model(tmp_path / "m", model, card)
    load_model(tmp_path / "m")  # as saved: loads
    path = tmp_path / "m" / "card.json"
    saved = json.loads(path.read_text())
    for key, value in (("classes", ["wheat", "corn", "other"]), ("bands", ["B08", "B04"])):
        path.write_text(json.dumps({**saved, key: value}))
        with pytest.raises(ModelError, match=rf"the card's {key} .* are not those the weights"):
            load_model(tmp_path / "m")
    # weights saved before cropglobe recorded them (no such metadata) still load
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "m" / "model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"format": saved["format"]})
    load_model(tmp_path / "m")


def test_a_card_naming_an_unknown_input_step_is_refused(tmp_path) -> None:
    """A later cropglobe's preprocessing step would be skipped silently: refused instead."""
    import json

    from cropglobe.errors import ModelError

    model = create_model("mlp", 3, 2, 5)
    card = ModelCard(model="mlp", params=model.config, bands=("B04", "B08"),
                     grid=TimeGrid.regular(5, 1, 25), classes=("a", "b", "c"),
                     features={"fill": "linear", "scale": None, "nan": 0.0})  # fmt: skip
    save_model(tmp_path / "m", model, card)
    path = tmp_path / "m" / "card.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "version": "9.9.0",
                                "features": {**saved["features"], "detrend": True}}))  # fmt: skip
    with pytest.raises(ModelError, match=r"names \['detrend'\].*cropglobe 9\.9\.0.*upgrade"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("cls", [RandomForestModel, LightGBMModel])
def test_classical_predict_before_fit_is_a_clear_error(cls: type) -> None:
    x, _ = _tabular()
    for method in ("predict", "predict_proba"):
        with pytest.raises(ModelError, match="not fitted yet"):
            getattr(cls(), method)(x)
    # scikit-learn's own exception too, as code written for its estimators catches
    with pytest.raises(NotFittedError):
        cls().predict(x)


@pytest.mark.parametrize("cls", [RandomForestModel, LightGBMModel])
def test_classical_models_pass_scikit_learns_estimator_checks(cls: type) -> None:
    """The estimator contract DESIGN.md anchors on: every scikit-learn check (input
    validation and its messages, cloning, pickling, fit idempotence, n_features_in_ …)."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    est = cls(n_estimators=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' own skip notes and LightGBM's remarks
        results = check_estimator(est, on_fail=None)
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert len(results) > 40
    assert failed == []


def test_classical_input_errors_say_what_to_do() -> None:
    import scipy.sparse

    x, y = _tabular()
    x = np.nan_to_num(x.reshape(len(x), -1))  # (N, F) features
    rf = RandomForestModel(n_estimators=5, random_state=0)
    with pytest.raises(DataFormatError, match=r"sparse input is not supported.*toarray"):
        rf.fit(scipy.sparse.csr_matrix(x), y)
    with pytest.raises(LabelError, match=r"Unknown label type: 'continuous'.*bin them"):
        rf.fit(x, np.linspace(0.1, 0.9, len(x)))
    with pytest.raises(LabelError, match="target y is None"):
        rf.fit(x, None)
    rf.fit(x, y)
    with pytest.raises(DataFormatError, match=r"Reshape your data"):
        rf.predict(x[0])
    with pytest.raises(
        DataFormatError, match="X has 2 features, but RandomForestModel is expecting 24"
    ):
        rf.predict(x[:, :2])
    with pytest.raises(TypeError, match="not numbers"):
        rf.predict(np.array([["a"] * x.shape[1]], dtype=object))
