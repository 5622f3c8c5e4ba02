"""train / predict / export commands and their library functions."""

from __future__ import annotations

import json

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.errors import BandError, LabelError, ParameterError
from cropglobe.simulate import simulate_world, write_world
from cropglobe.workflow import predict_dataset, train_to_folder


@pytest.fixture(scope="module")
def world():
    return simulate_world(("FRA", "BEL"), 60, random_state=5)


def test_classical_folder_roundtrip(world, tmp_path) -> None:
    fra = world.where(country="FRA")
    summary = train_to_folder(fra, "lightgbm", tmp_path / "m", seed=1)
    assert summary.classes == tuple(c for c in world.classes if c in set(fra.label_names()))
    table = predict_dataset(tmp_path / "m", world.where(country="BEL"))
    assert len(table) == 60 and set(table.predicted) <= set(summary.classes)
    probs = table[[f"p_{c}" for c in summary.classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    again = predict_dataset(tmp_path / "m", world.where(country="BEL"))
    pd.testing.assert_frame_equal(table, again)  # deterministic


def test_refusals(world, tmp_path) -> None:
    fra = world.where(country="FRA")
    with pytest.raises(LabelError, match="single class"):
        train_to_folder(fra.subset(fra.labels == fra.labels[0]), "lightgbm", tmp_path / "x")
    with pytest.raises(ParameterError, match="neural models"):
        train_to_folder(fra, "random_forest", tmp_path / "x", average=0.5)
    with pytest.raises(ParameterError, match=r"--augment .*, --early-stopping applies to neural"):
        train_to_folder(fra, "lightgbm", tmp_path / "x", augment="online", early_stopping=3)
    assert not (tmp_path / "x").exists()
    train_to_folder(fra, "random_forest", tmp_path / "m", seed=1)
    # named bands in another order are picked out by name; a missing band is refused
    shuffled = fra.select_bands(list(reversed(fra.bands)))
    pd.testing.assert_frame_equal(
        predict_dataset(tmp_path / "m", shuffled), predict_dataset(tmp_path / "m", fra)
    )
    with pytest.raises(BandError, match="data lacks bands \\['B02'\\]"):
        predict_dataset(tmp_path / "m", fra.select_bands(fra.bands[1:]))


def test_cli_train_predict_export(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "train",
            "--data",
            str(data),
            "--country",
            "FRA",
            "--model",
            "cropnet",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--average",
            "1",
            "-o",
            str(tmp_path / "cn"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "cn" / "card.json").read_text())
    assert card["metrics"]["averaged_epochs"] == [1, 1] and card["training"]["average"] == {
        "share": 1.0,
        "first_epoch": 1,
    }
    out = tmp_path / "pred.parquet"
    res = runner.invoke(
        cli,
        ["predict", str(tmp_path / "cn"), "--data", str(data), "--country", "BEL", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(out)) == 60 and "accuracy" in res.output
    # test-time shift averaging: the mean of the shifted predictions
    out_tta = tmp_path / "pred_tta.parquet"
    args = ["predict", str(tmp_path / "cn"), "--data", str(data), "--country", "BEL"]
    args += ["--device", "cpu"]  # as predict_dataset below (the default, auto, may be a GPU)
    res = runner.invoke(cli, [*args, "--tta-shifts", "-10,0,10", "-o", str(out_tta)])  # implies
    assert res.exit_code == 0, res.output
    expect = predict_dataset(tmp_path / "cn", world.where(country="BEL"), shifts=[-10, 0, 10])
    got = pd.read_parquet(out_tta)
    cols = [c for c in got.columns if c.startswith("p_")]
    np.testing.assert_allclose(got[cols].to_numpy(), expect[cols].to_numpy(), rtol=1e-6)
    plain = pd.read_parquet(out)
    assert not np.allclose(got[cols].to_numpy(), plain[cols].to_numpy())
    pytest.importorskip("onnxruntime")
    res = runner.invoke(cli, ["export", str(tmp_path / "cn")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cn" / "model.onnx").exists()


def test_cli_errors(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "predict",
            str(tmp_path / "nope"),
            "--data",
            str(tmp_path),
            "-o",
            str(tmp_path / "p.parquet"),
        ],
    )
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("Error:")
    assert not (tmp_path / "p.parquet").exists()
    res = runner.invoke(cli, ["train", "--data", str(tmp_path), "--average", "0", "-o", "m"])
    assert res.exit_code == 2 and "--average" in res.output
    res = runner.invoke(cli, ["info", str(tmp_path / "missing.parquet")])
    assert res.exit_code == 2 and "missing.parquet" in res.output
    assert "Traceback" not in res.output


def test_usage_errors_are_one_line(tmp_path) -> None:
    runner = CliRunner()
    for args, expect in (
        (["train", "--epochs", "0"], "Invalid value for '--epochs'"),
        (["nope"], "No such command 'nope'"),
        (["transfer", "--data", str(tmp_path)], "Missing option '--source'"),
    ):
        res = runner.invoke(cli, args)
        assert res.exit_code == 2, res.output
        line = res.output.strip()
        assert len(line.splitlines()) == 1 and line.startswith("Error: ") and expect in line
        assert "--help'" in line  # where to look
    assert runner.invoke(cli, ["--version"]).exit_code == 0
    assert runner.invoke(cli, ["train", "--help"]).exit_code == 0


def test_write_errors_are_one_line_and_name_the_users_path(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder.parquet").mkdir()
    runner = CliRunner()
    base = ["features", str(data), "--family", "median1d"]
    for out, expect in (
        (tmp_path / "afile" / "f.parquet", "a file stands where a folder is needed"),
        (tmp_path / "folder.parquet", "is a folder"),
    ):
        res = runner.invoke(cli, [*base, "-o", str(out)])
        assert res.exit_code == 2, res.output
        line = res.output.strip()
        assert len(line.splitlines()) == 1 and line.startswith(f"Error: {out}"), line
        assert expect in line
    ok = tmp_path / "f.parquet"
    assert runner.invoke(cli, [*base, "-o", str(ok), "-q"]).exit_code == 0
    assert ok.stat().st_mode & 0o777 == 0o666 & ~_umask()  # as a plain open() would


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_composite_never_overwrites_its_input(tmp_path) -> None:
    table = tmp_path / "obs.csv"
    table.write_text("sample_id,date,B04\nA,2023-05-01,0.1\n")
    runner = CliRunner()
    for out, expect in ((table, "must be a .npz file"), (tmp_path / "obs.npz", None)):
        res = runner.invoke(cli, ["composite", str(table), "-o", str(out), "-q"])
        if expect:
            assert res.exit_code == 2 and expect in res.output, res.output
        else:  # a real output: written beside the table, which is untouched
            assert res.exit_code == 0 and out.is_file(), res.output
    assert table.read_text().startswith("sample_id,date,B04")
    npz = tmp_path / "same.npz"
    npz.write_bytes(b"not a table")
    res = runner.invoke(cli, ["composite", str(npz), "-o", str(npz)])
    assert res.exit_code == 2 and "is the input file" in res.output
    assert npz.read_bytes() == b"not a table"


def test_small_option_checks(world, tmp_path) -> None:
    from cropglobe.evaluate.transfer import parse_seeds, parse_shifts

    with pytest.raises(ValueError, match="ends before it starts; write it low-high"):
        parse_seeds("5-1")
    with pytest.raises(ParameterError, match="more than 183 days"):
        parse_shifts("-1000,1000")
    data = tmp_path / "world"
    write_world(world, data)
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "--data", str(data), "--seed", "-1", "-o", "m"])
    assert res.exit_code == 2 and "'--seed'" in res.output
    res = runner.invoke(
        cli, ["features", str(data), "--bands", "B02,B02", "-o", str(tmp_path / "f.parquet")]
    )
    assert res.exit_code == 2 and "B02 named twice" in res.output


def test_cards_from_a_newer_cropglobe_or_damaged_are_refused(world, tmp_path) -> None:
    from cropglobe.errors import ModelError
    from cropglobe.models.folder import load_model, read_card

    model = tmp_path / "m"
    train_to_folder(world.where(country="FRA"), "tempcnn", model, epochs=1)
    card_path = model / "card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "format_version": 99}))
    with pytest.raises(ModelError, match="format version 99 is newer"):
        read_card(model)
    card_path.write_text(json.dumps({**card, "classes": card["classes"][:2]}))
    n = card["params"]["n_classes"]
    assert n == len(card["classes"]) > 2
    damaged = f"the card is damaged: it lists 2 classes but the model reads {n}"
    with pytest.raises(ModelError, match=damaged):
        load_model(model)


def test_bare_command_shows_help_and_exit_codes_pass_through(tmp_path) -> None:
    res = CliRunner().invoke(cli, [])
    assert res.exit_code == 2 and "Commands:" in res.output and "\n" in res.output.strip()


def test_every_option_of_every_command_says_what_it_does() -> None:
    ctx = click.Context(cli)
    bare = [
        f"{name} {opt.opts[0]}"
        for name in cli.list_commands(ctx)
        for opt in cli.get_command(ctx, name).params  # type: ignore[union-attr]
        if isinstance(opt, click.Option) and not opt.hidden and not opt.help
    ]
    assert len(cli.list_commands(ctx)) >= 12
    assert not bare, f"options without a help text: {bare}"


@pytest.mark.parametrize("labels_as", ["names", "indices without one class"])
def test_classical_columns_follow_the_card(world, tmp_path, labels_as) -> None:
    # a classical model saved by hand whose predict_proba columns are not the card's classes
    from cropglobe.models import ModelCard, save_model
    from cropglobe.models.classical import LightGBMModel

    fra = world.where(country="FRA")
    x = fra.values.reshape(fra.n_samples, -1)
    if labels_as == "names":
        y = fra.label_names()  # classes_ sorted alphabetically, not in card order
        keep = np.ones(fra.n_samples, dtype=bool)
    else:
        keep = fra.labels != fra.labels.min()  # classes_ skip a card class
        y = fra.labels
    model = LightGBMModel(n_estimators=20, num_leaves=4, random_state=0, n_jobs=1)
    model.fit(x[keep], y[keep])
    card = ModelCard(
        model="lightgbm", params={}, bands=fra.bands, grid=fra.grid, classes=fra.classes,
        features={"fill": "none"},
    )  # fmt: skip
    save_model(tmp_path / "m", model, card)
    table = predict_dataset(tmp_path / "m", fra.subset(keep))
    proba = model.predict_proba(x[keep])
    expected = np.asarray(model.classes_)[proba.argmax(axis=1)]
    if labels_as != "names":
        expected = np.asarray(fra.classes, dtype=object)[expected]
    assert list(table["predicted"]) == list(expected)
    for j, c in enumerate(model.classes_):
        name = c if labels_as == "names" else fra.classes[int(c)]
        np.testing.assert_allclose(table[f"p_{name}"], proba[:, j], rtol=1e-6)
    if labels_as != "names":
        assert (table[f"p_{fra.classes[int(fra.labels.min())]}"] == 0).all()


def test_model_folder_files_are_readable_by_others(tmp_path) -> None:
    # safetensors writes its file 0600; a model folder is shared (colleagues, Dask workers)
    from cropglobe.models import CropNet, ModelCard, save_model
    from cropglobe.series import TimeGrid

    grid = TimeGrid.cropglobe().window(121, 334)
    card = ModelCard(model="cropnet", params={"n_classes": 3, "width": 8, "n_bands": 10,
                     "n_steps": 43}, bands=tuple(f"B{i}" for i in range(10)), grid=grid,
                     classes=("a", "b", "c"))  # fmt: skip
    folder = save_model(tmp_path / "m", CropNet(3, width=8), card)
    for item in [folder, *folder.iterdir()]:
        want = (0o777 if item.is_dir() else 0o666) & ~_umask()
        assert item.stat().st_mode & 0o777 == want, item.name


def test_predict_scores_with_macro_f1_and_baseline() -> None:
    from cropglobe.cli.predict import score_lines

    table = pd.DataFrame(
        {
            "label": ["a", "a", "a", "b", "c", None],
            "predicted": ["a", "a", "b", "b", "a", "a"],
            "p_a": 0.5,
            "p_b": 0.5,
        }
    )
    lines = score_lines(table)
    # accuracy 3/5; F1: a 2*2/(3+3)=0.667, b 2*1/(1+2)=0.667, c 0 -> macro 44.4 %
    assert lines[0] == (
        "  on the 5 labelled samples: accuracy 60.0 %, macro-F1 44.4 % over the 3 classes present"
    )
    assert lines[1].endswith("(a) would score 60.0 % accuracy")
    assert lines[2] == "  recall: a 67 %, b 100 %, c 0 %"
    assert lines[3].startswith("  1 of them are of classes the model cannot output (c)")
    assert score_lines(table.assign(label=None)) == []


def test_predict_composites_a_raw_table_to_the_model_grid(tmp_path) -> None:
    from cropglobe.composite import composite
    from cropglobe.io import read_dataset
    from cropglobe.models.folder import read_card
    from cropglobe.summary import infer_grid

    world = simulate_world(("FRA",), 40, random_state=3)
    train_to_folder(world, "random_forest", tmp_path / "rf", seed=1)
    # the same fields as a raw long table observed once a month (mid-month): its own grid
    # would be monthly, the model's is 5-day
    rows = []
    for i in range(world.n_samples):
        for month in range(1, 13):
            date = np.datetime64(f"2021-{month:02d}-15")
            t = int((date - np.datetime64("2021-01-01")).astype(int)) // 5
            bands = {b: float(world.values[i, c, t]) for c, b in enumerate(world.bands)}
            rows.append(
                {"sample_id": f"s{i}", "date": str(date), "label": world.label_names()[i], **bands}
            )
    path = tmp_path / "raw.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    card = read_card(tmp_path / "rf")
    assert infer_grid(read_dataset(path)) != card.grid

    def predicted(out) -> list:
        res = CliRunner().invoke(cli, ["predict", str(tmp_path / "rf"), "--data", str(path),
                                       "-o", str(out)])  # fmt: skip
        assert res.exit_code == 0, res.output
        return list(pd.read_csv(out)["predicted"])

    def expected(fill: bool) -> list:
        series = composite(read_dataset(path), card.grid, fill=fill, allow_empty=True)
        return list(predict_dataset(tmp_path / "rf", series.drop_empty())["predicted"])

    filled, unfilled = expected(True), expected(False)
    assert filled != unfilled  # the card's gap filling matters here
    assert predicted(tmp_path / "p.csv") == filled  # no record: filled, as training from tables
    # a model trained on unfilled composites says so in its card, and predict follows it
    raw = json.loads((tmp_path / "rf" / "card.json").read_text())
    raw["features"]["composite"] = {"reducer": "median", "fill": False, "max_gap_days": 30,
                                    "edge": "hold", "mask": "auto"}  # fmt: skip
    (tmp_path / "rf" / "card.json").write_text(json.dumps(raw))
    assert predicted(tmp_path / "q.csv") == unfilled
    # a table path with another suffix fails before any work
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "rf"), "--data", str(path),
                                   "-o", str(tmp_path / "p.txt")])  # fmt: skip
    assert res.exit_code == 2 and "unknown table format '.txt'" in res.output
    write_world(world, tmp_path / "w")
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "rf"), "--data", str(tmp_path / "w"),
                                   "--country", "fra", "-o", str(tmp_path / "p.csv")])  # fmt: skip
    assert res.exit_code == 2 and "but 'FRA' is; group names are case-sensitive" in res.output


def test_train_takes_model_options_and_window_names(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    runner = CliRunner()
    base = ["train", "--data", str(data), "--country", "FRA", "-q"]
    rf = ["--model", "random_forest", "--model-option", "n_estimators=7", "--window", "may-nov"]
    res = runner.invoke(cli, [*base, *rf, "-o", str(tmp_path / "rf")])
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "rf" / "card.json").read_text())
    assert card["params"]["n_estimators"] == 7 and card["window"] == [121, 334]
    cn = ["--model", "cropnet", "--model-option", "cropnet.width=8", "--epochs", "1"]
    res = runner.invoke(cli, [*base, *cn, "--window", "all", "-o", str(tmp_path / "cn")])
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "cn" / "card.json").read_text())
    assert card["params"]["width"] == 8 and card["window"] is None
    for option, expect in (
        ("bogus=1", "random_forest takes no hyperparameter 'bogus'; it takes class_weight"),
        ("cropnet.width=8", "cropnet.width is an option of 'cropnet', but --model is"),
        ("n_estimators=abc", "training failed with the hyperparameters given (n_estimators="),
        ("max_depth=-3", "'max_depth' parameter of RandomForestClassifier must be an int"),
    ):
        res = runner.invoke(cli, [*base, "--model", "random_forest", "--model-option", option,
                                  "-o", str(tmp_path / "x")])  # fmt: skip
        assert res.exit_code == 2 and expect in res.output, res.output
    assert not (tmp_path / "x").exists()


def test_train_on_chosen_bands(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    base = ["train", "--data", str(data), "--country", "FRA", "--model", "random_forest",
            "--model-option", "n_estimators=5", "-q"]  # fmt: skip
    res = CliRunner().invoke(cli, [*base, "--bands", "B04, B08", "-o", str(tmp_path / "rf")])
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "rf" / "card.json").read_text())
    assert card["bands"] == ["B04", "B08"]
    # the model picks its bands out of full data by name when predicting
    table = predict_dataset(tmp_path / "rf", world.where(country="BEL"))
    assert len(table) == 60
    res = CliRunner().invoke(cli, [*base, "--bands", "B04,B99", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "B99" in res.output and not (tmp_path / "x").exists()
    for empty in (", ", ""):
        res = CliRunner().invoke(cli, [*base, "--bands", empty, "-o", str(tmp_path / "x")])
        assert res.exit_code == 2 and "names no band" in res.output
        transfer = ["transfer", "--data", str(data), "--bands", empty, "--source", "FRA",
                    "--targets", "BEL", "-o", str(tmp_path / "t")]  # fmt: skip
        res = CliRunner().invoke(cli, transfer)
        assert res.exit_code == 2 and "names no band" in res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "t").exists()
    with pytest.raises(BandError, match="no band named"):
        world.select_bands([])


def _own_table(path) -> list[str]:
    """A user's own long table: other column names than cropglobe's defaults."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        crop = ("wheat", "maize")[i % 2]
        for month in range(3, 11):
            rows.append({"parcel_id": f"p{i}", "obs_date": f"2022-{month:02d}-15", "crop": crop,
                         "country": ("FRA", "BEL")[i // 20], "B04": 500 + rng.normal(0, 20),
                         "B08": 1000 + (80 if crop == "maize" else 30) * month})  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return ["--read-option", "sample_column=parcel_id", "--read-option", "date_column=obs_date",
            "--read-option", "label_column=crop"]  # fmt: skip


def test_reader_settings_on_the_command_line(tmp_path) -> None:
    path = tmp_path / "own.csv"
    opts = _own_table(path)
    runner = CliRunner()
    res = runner.invoke(cli, ["info", str(path)])
    assert res.exit_code == 2 and "(on the command line: --read-option NAME=VALUE)" in res.output
    res = runner.invoke(cli, ["info", str(path), *opts, "--json"])
    assert res.exit_code == 0, res.output
    counts = json.loads(res.stdout)["class_counts"]
    assert counts["FRA"] == {"corn": 10, "wheat": 10, "total": 20}  # maize -> corn
    res = runner.invoke(cli, ["info", str(path), "--read-option", "sampel_column=x"])
    assert res.exit_code == 2 and "takes no setting sampel_column; it takes format" in res.output
    rf = ["--model", "random_forest", "--window", "all", "-o", str(tmp_path / "rf"), "-q"]
    res = runner.invoke(cli, ["train", "--data", str(path), *opts, "--country", "FRA", *rf])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["predict", str(tmp_path / "rf"), "--data", str(path), *opts,
                              "--country", "BEL", "-o", str(tmp_path / "p.csv")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 20 and "accuracy" in res.output
    res = runner.invoke(cli, ["transfer", "--data", str(path), *opts, "--source", "FRA",
                              "--targets", "BEL", "--methods", "rf-median1d", "--seeds", "1",
                              "--window", "all", "-o", str(tmp_path / "exp"), "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "exp" / "config.json").read_text())["config"]
    assert config["read_options"] == {"sample_column": "parcel_id", "date_column": "obs_date",
                                      "label_column": "crop"}  # fmt: skip


def test_selecting_groups_of_a_year_read_as_floats() -> None:
    from cropglobe.errors import DataFormatError
    from cropglobe.series import SeriesSet, TimeGrid
    from cropglobe.workflow import select_groups

    meta = pd.DataFrame({"sample_id": list("abcd"), "year": [2020.0, 2021.0, 2020.0, 2019.5]})
    ss = SeriesSet(np.zeros((4, 1, 12), np.float32), ("B04",), TimeGrid.monthly(),
                   np.zeros(4, np.int64), ("corn",), meta)  # fmt: skip
    # named as transfer names them (2020), and the float spelling finds them too
    assert select_groups(ss, ["2020"], "year").meta.sample_id.tolist() == ["a", "c"]
    assert select_groups(ss, ["2020.0", "2019.5"], "year").n_samples == 3
    with pytest.raises(DataFormatError, match=r"present: 2019\.5, 2020, 2021"):
        select_groups(ss, ["2018"], "year")


def test_train_refuses_its_output_before_training_and_records_the_data(
    world, tmp_path, monkeypatch
) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    (tmp_path / "file.csv").write_text("x\n")
    calls: list[object] = []
    import cropglobe.train as train_mod

    monkeypatch.setattr(train_mod, "train", lambda *a, **k: calls.append(a))  # must not run
    base = ["train", "--data", str(data), "--country", "FRA", "--model", "cropnet", "-q"]
    for out, said in (
        (tmp_path / "file.csv", "exists and is a file; choose a folder path for the model"),
        (data / "for_CropNet", "exists and is not a cropglobe model folder; refusing"),
    ):
        res = CliRunner().invoke(cli, [*base, "-o", str(out)])
        assert res.exit_code == 2 and said in res.output, res.output
    assert calls == [] and not list(data.glob(".*checkpoint"))
    monkeypatch.undo()
    # the card says where the training data came from; the console, how many were held out
    res = CliRunner().invoke(
        cli,
        ["train", "--data", str(data), "--country", "FRA", "--where", "region=FRA-R1",
         "--model", "cropnet", "--model-option", "width=8", "--epochs", "1",
         "-o", str(tmp_path / "m")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["training"]["source_data"] == {
        "path": str(data), "where": {"region": ["FRA-R1"]}, "country": ["FRA"]
    }  # fmt: skip
    n, held = card["training"]["n_train"], card["training"]["n_val"]
    assert held > 0 and n + held == int((world.meta.region == "FRA-R1").sum())
    assert f"trained cropnet on {n} samples ({held} more held out to choose the epoch)" in (
        res.output
    )
    # a relative --data is recorded as an absolute path: diagnose --model finds the data
    # from any working folder
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        cli, ["train", "--data", "world", "--model", "random_forest", "-q", "-o", "rf"]
    )
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "rf" / "card.json").read_text())
    assert card["training"]["source_data"]["path"] == str(data)


@pytest.mark.parametrize("window", ["360-9999", "0-50"])
def test_a_window_outside_the_season_is_refused(world, tmp_path, window) -> None:
    res = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "--model", "random_forest",
                                   "--window", window, "-o", str(tmp_path / "m")])  # fmt: skip
    assert (
        res.exit_code == 2
        and "lies outside the season; expected days of season within 1-366" in (res.output)
    )


def test_data_without_any_observation_is_named_as_such(world, tmp_path) -> None:
    npz = tmp_path / "nan.npz"
    np.savez(npz, fea=np.full((20, 10, 73), np.nan, np.float32), lbl=np.arange(20) % 7)
    res = CliRunner().invoke(cli, ["train", "--data", str(npz), "--model", "random_forest",
                                   "-o", str(tmp_path / "m")])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "the training data hold no sample with a valid observation" in res.output
    said = [ln.split(": ", 1)[1] for ln in res.output.splitlines() if ln.startswith("WARNING")]
    assert said == [
        f"no band holds a value in {npz} (every entry is NaN): no sample has an observation to "
        "learn from or predict; check the extraction",
        f"{npz}: 20 of 20 samples hold no valid observation (all NaN) and are left out",
    ]


def test_predictions_name_the_label_year_and_the_season_year(world, tmp_path) -> None:
    from cropglobe.composite import shift_anchor

    fra = world.where(country="FRA")
    train_to_folder(fra, "random_forest", tmp_path / "cal", model_options={"n_estimators": 5})
    calendar = predict_dataset(tmp_path / "cal", world.where(country="BEL"))
    assert "season_year" not in calendar.columns and set(calendar["year"]) == {2023}
    # a July-June season: meta["year"] is the season year (2022), tables name the harvest
    july = shift_anchor(fra, "07-01", wrap=True)
    assert set(july.meta["year"]) == {2022}
    train_to_folder(july, "random_forest", tmp_path / "jul", model_options={"n_estimators": 5})
    table = predict_dataset(tmp_path / "jul", july)
    assert list(table.columns[:5]) == ["sample_id", "country", "region", "year", "season_year"]
    assert set(table["year"]) == {2023} and set(table["season_year"]) == {2022}


def test_device_auto_on_a_machine_without_gpu_imports_no_torch(world, tmp_path) -> None:
    import subprocess
    import sys

    from cropglobe.cli._common import _no_gpu_nodes, _parse_device

    if not _no_gpu_nodes():
        pytest.skip("this machine has GPU device nodes: auto asks torch")
    assert _parse_device(None, None, "auto") == "cpu"  # type: ignore[arg-type]
    data = tmp_path / "world"
    write_world(world, data)
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cropglobe.cli.main import cli\n"
        f"r = CliRunner().invoke(cli, ['transfer', '--data', {str(data)!r}, '--source', 'FRA', "
        "'--targets', 'BEL', '--methods', 'rf-median1d', '--seeds', '1', '-q', '-o', "
        f"{str(tmp_path / 'x')!r}])\n"
        "print(r.exit_code, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"], out.stdout + out.stderr


def test_predict_warns_of_a_model_band_without_any_value(world, tmp_path, caplog) -> None:
    """A model band the data hold no value for (WorldCereal's B8A) is filled with a constant
    the model never saw, and the dissimilarity cannot tell: predict says so."""
    import dataclasses
    import logging

    fra = world.where(country="FRA")
    train_to_folder(fra, "random_forest", tmp_path / "rf", model_options={"n_estimators": 5})
    bel = world.where(country="BEL")
    with caplog.at_level(logging.WARNING, logger="cropglobe.workflow"):
        predict_dataset(tmp_path / "rf", bel)
    assert "which the model was trained on" not in caplog.text
    values = bel.values.copy()
    values[:, list(bel.bands).index("B8A")] = np.nan
    with caplog.at_level(logging.WARNING, logger="cropglobe.workflow"):
        predict_dataset(tmp_path / "rf", dataclasses.replace(bel, values=values))
    assert "band B8A, which the model was trained on, holds no value" in caplog.text


def test_an_interrupted_network_training_says_how_to_resume(world, tmp_path, monkeypatch) -> None:
    """Ctrl-C during train leaves a checkpoint beside the folder: the one-line message says
    that --resume continues from it (a forest, which keeps none, gets no such hint)."""
    from cropglobe import workflow

    data = tmp_path / "world"
    write_world(world, data)

    def interrupted(ss, model, output, **kw):
        (output.parent / f".{output.name}.checkpoint").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "train_to_folder", interrupted)
    base = ["train", "--data", str(data), "--country", "FRA", "-q"]
    res = CliRunner().invoke(cli, [*base, "--model", "tempcnn", "-o", str(tmp_path / "nn")])
    assert res.exit_code == 130
    assert res.output.strip() == (
        "Error: interrupted; rerun the same command with --resume to continue from the last "
        "finished epoch"
    )

    def forest(ss, model, output, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "train_to_folder", forest)
    res = CliRunner().invoke(cli, [*base, "--model", "random_forest", "-o", str(tmp_path / "rf")])
    assert res.exit_code == 130 and res.output.strip() == "Error: interrupted"


def test_train_refuses_network_options_for_a_classical_model(world, tmp_path) -> None:
    """--epochs 3 (or --lr, --protocol …) with a forest trained the same forest as without:
    silently ignored. Refused in one line, before the data are read."""
    base = ["train", "--data", str(tmp_path / "absent"), "--model", "random_forest", "-q",
            "-o", str(tmp_path / "rf")]  # fmt: skip
    res = CliRunner().invoke(cli, [*base, "--epochs", "3"])
    assert res.exit_code == 2 and res.output.startswith(
        "Error: --epochs applies to neural models; 'random_forest' is a classical model, "
        "which ignores it"
    ), res.output
    res = CliRunner().invoke(cli, [*base, "--lr", "0.01", "--protocol", "paper"])
    assert res.exit_code == 2 and "--lr, --protocol apply to neural models" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "rf").exists()


def test_predict_never_overwrites_its_input(world, tmp_path) -> None:
    """-o naming the --data table replaced the dataset with the predictions: refused before
    anything is read, the data untouched."""
    train_to_folder(world.where(country="FRA"), "random_forest", tmp_path / "rf",
                    model_options={"n_estimators": 5})  # fmt: skip
    data = tmp_path / "fields.parquet"
    data.write_bytes(b"the user's fields")
    for out in (data, tmp_path / "." / "fields.parquet"):
        res = CliRunner().invoke(cli, ["predict", str(tmp_path / "rf"), "--data", str(data),
                                       "-o", str(out)])  # fmt: skip
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "is the input file; write the predictions elsewhere" in res.output
    assert data.read_bytes() == b"the user's fields"


def test_predict_names_samples_without_observation_and_refuses_nothing(world, tmp_path) -> None:
    """Samples without any observation have no row in the predictions: predict says how many
    (they vanished silently); data with no sample left to predict is one error line, exit 2
    (it wrote an empty table and claimed it lay 'as in data like the training data')."""
    import dataclasses

    train_to_folder(world.where(country="FRA"), "random_forest", tmp_path / "rf",
                    model_options={"n_estimators": 5})  # fmt: skip
    bel = world.where(country="BEL")
    values = bel.values.copy()
    values[:3] = np.nan
    dataclasses.replace(bel, values=values).save(tmp_path / "gaps.npz")
    out = tmp_path / "p.csv"
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "rf"), "--data",
                                   str(tmp_path / "gaps.npz"), "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == bel.n_samples - 3
    assert "3 of the 60 samples hold no valid observation" in res.output
    out = tmp_path / "n.csv"
    for values in (np.full_like(bel.values, np.nan), bel.values[:0]):
        ss = dataclasses.replace(bel, values=values, labels=bel.labels[: len(values)],
                                 meta=bel.meta.iloc[: len(values)])  # fmt: skip
        ss.save(tmp_path / "none.npz")
        res = CliRunner().invoke(cli, ["predict", str(tmp_path / "rf"), "--data",
                                       str(tmp_path / "none.npz"), "-o", str(out)])  # fmt: skip
        assert res.exit_code == 2, res.output
        last = res.output.strip().splitlines()[-1]
        assert last.startswith("Error: no sample to predict"), res.output
        assert "Traceback" not in res.output and not out.exists()
