"""The release's precomputed features (Presto, AlphaEarth, its harmonics) beside its series:
found by row, checked for alignment, and transfer methods on them (``rf-presto`` …)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cropglobe.errors import DataFormatError, MissingFileError, ParameterError
from cropglobe.evaluate import methods as methods_mod
from cropglobe.evaluate.experiment import run_experiment
from cropglobe.evaluate.transfer import ExperimentMismatchError
from cropglobe.features.embeddings import ReleaseFeatures
from cropglobe.io import read_cropglobe
from cropglobe.simulate import simulate_world, write_world

pytestmark = pytest.mark.usefixtures("few_trees")

COUNTRIES = ("FRA", "BEL", "USA")


def _embed(fea: np.ndarray) -> np.ndarray:
    """A stand-in embedding: column 0 is the row, the others a fixed projection of the series."""
    flat = np.nan_to_num(fea.reshape(len(fea), -1))
    proj = np.random.default_rng(0).normal(size=(flat.shape[1], 7)) / 100
    return np.column_stack([np.arange(len(fea)), flat @ proj]).astype(np.float32)


def _write_embeddings(root: Path, countries=COUNTRIES, family: str = "presto") -> None:
    name = {"presto": "presto_embedding_S2_{}.npz", "alphaearth": "alphaearth_embedding_{}.npz"}
    (root / "Embeddings").mkdir(exist_ok=True)
    for cc in countries:
        with np.load(root / "for_CropNet" / f"median_S2_{cc}_month1-12_day5.npz") as z:
            fea, lbl = z["fea"], z["lbl"]
        np.savez(root / "Embeddings" / name[family].format(cc), fea=_embed(fea), lbl=lbl)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A simulated world in the release layout, with Presto-like files beside it."""
    root = tmp_path_factory.mktemp("release")
    write_world(simulate_world(COUNTRIES, 60, random_state=4), root, kinds=("for_CropNet",))
    _write_embeddings(root)
    return root


def test_features_are_found_by_row(release) -> None:
    ss = read_cropglobe(release, ["BEL", "FRA"])
    keep = np.random.default_rng(1).random(ss.n_samples) < 0.6
    part = ss.subset(keep)
    rows = ReleaseFeatures("presto").fit(part).transform(part)
    # column 0 of each feature row is its row in its country's file
    for cc in ("BEL", "FRA"):
        at = np.flatnonzero(keep[ss.meta.country == cc])
        with np.load(release / "Embeddings" / f"presto_embedding_S2_{cc}.npz") as z:
            np.testing.assert_array_equal(rows[part.meta.country == cc], z["fea"][at])
        np.testing.assert_array_equal(rows[part.meta.country == cc, 0], at)


def test_release_files_without_metadata(tmp_path) -> None:
    """The published files hold fea and lbl only: samples are named by row (FRA_000007)."""
    world = simulate_world(("FRA", "BEL"), 30, random_state=0)
    (tmp_path / "for_CropNet").mkdir()
    for cc in ("FRA", "BEL"):
        part = world.where(country=cc)
        np.savez(
            tmp_path / "for_CropNet" / f"median_S2_{cc}_month1-12_day5.npz",
            fea=part.values,
            lbl=part.labels,
        )
    _write_embeddings(tmp_path, ("FRA", "BEL"), "alphaearth")
    ss = read_cropglobe(tmp_path, deduplicate=True)
    assert ss.meta.sample_id.iloc[0] == "BEL_000000"
    rf = ReleaseFeatures("alphaearth").fit(ss)
    rows = rf.transform(ss)
    np.testing.assert_array_equal(rows[:, 0], ss.meta.sample_id.str[-6:].astype(int))
    assert list(rf.get_feature_names_out()[:2]) == ["alphaearth_000", "alphaearth_001"]
    assert set(rf.files_) == {"FRA", "BEL"} and all(len(d) == 64 for d in rf.files_.values())


def test_misaligned_or_missing_files_are_refused(release, tmp_path) -> None:
    ss = read_cropglobe(release, ["FRA", "USA"])
    bad = tmp_path / "bad"
    write_world(simulate_world(("FRA", "USA"), 40, random_state=5), bad, kinds=("for_CropNet",))
    _write_embeddings(bad, ("FRA", "USA"))
    emb = bad / "Embeddings" / "presto_embedding_S2_USA.npz"
    with np.load(emb) as z:
        fea, lbl = z["fea"], z["lbl"]
    order = np.argsort(lbl, kind="stable")  # rows sorted by class: no longer the series' order
    np.savez(emb, fea=fea[order], lbl=lbl[order])
    with pytest.raises(DataFormatError, match=r"presto_embedding_S2_USA.npz: its labels disagree"):
        ReleaseFeatures("presto").fit(read_cropglobe(bad))
    np.savez(emb, fea=fea[:-1], lbl=lbl[:-1])
    with pytest.raises(DataFormatError, match=r"39 rows, but USA's series file .* holds 40"):
        ReleaseFeatures("presto").fit(read_cropglobe(bad))
    emb.unlink()
    with pytest.raises(MissingFileError, match=r"countries \['USA'\] are absent"):
        ReleaseFeatures("presto").fit(read_cropglobe(bad))
    with pytest.raises(MissingFileError, match=r"no 'alphaearth_embedding_\*\.npz' file found"):
        ReleaseFeatures("alphaearth").fit(ss)
    sim = simulate_world(("FRA",), 10, random_state=0)
    with pytest.raises(ParameterError, match="not read from a release folder"):
        ReleaseFeatures("presto").fit(sim)


def test_transfer_on_presto(release, tmp_path) -> None:
    from cropglobe.models.classical import RandomForestModel

    data = read_cropglobe(release)
    rep = run_experiment(
        data,
        sources=["FRA"],
        targets=["BEL", "USA"],
        methods=["rf-presto", "mlp-presto"],
        seeds=[3],
        epochs=2,
        output=tmp_path / "exp",
    )
    runs = rep.result.runs
    assert set(runs.method) == {"rf-presto", "mlp-presto"} and len(runs) == 4
    run = tmp_path / "exp" / "runs" / "rf-presto" / "FRA" / "seed3"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["feature_files"]) == {"FRA", "BEL", "USA"}
    # the forest is the one fitted by hand on the source's rows of the embedding files
    x = {}
    for cc in COUNTRIES:
        with np.load(release / "Embeddings" / f"presto_embedding_S2_{cc}.npz") as z:
            x[cc] = z["fea"]
    src = data.where(country="FRA")
    forest = RandomForestModel(n_estimators=methods_mod.RF_TREES, random_state=3, n_jobs=-1)
    forest.fit(x["FRA"], src.labels)
    pred = pd.read_parquet(run / "predictions.parquet")
    for cc in ("BEL", "USA"):
        mine = np.asarray(forest.classes_)[forest.predict_proba(x[cc]).argmax(axis=1)]
        np.testing.assert_array_equal(pred[pred.target == cc].y_pred.to_numpy(), mine)
    # a rerun reuses the runs; a changed embedding file is refused, nothing is lost
    again = run_experiment(
        data, sources=["FRA"], targets=["BEL", "USA"], methods=["rf-presto"], seeds=[3],
        epochs=2, output=tmp_path / "exp",
    )  # fmt: skip
    assert again.result.runs.oa.tolist() == runs[runs.method == "rf-presto"].oa.tolist()
    emb = release / "Embeddings" / "presto_embedding_S2_BEL.npz"
    before = emb.read_bytes()
    try:
        with np.load(emb) as z:
            np.savez(emb, fea=z["fea"] * 2, lbl=z["lbl"])
        with pytest.raises(ExperimentMismatchError, match="feature files that have changed"):
            run_experiment(
                data, sources=["FRA"], targets=["BEL"], methods=["rf-presto"], seeds=[3],
                epochs=2, output=tmp_path / "exp",
            )  # fmt: skip
    finally:
        emb.write_bytes(before)
    assert (run / "metrics.json").exists()


def test_docs_list_every_method() -> None:
    """docs/methods.md has a row for each registered method, with its features and model."""
    doc = (Path(__file__).parents[1] / "docs" / "methods.md").read_text()
    for m in methods_mod.METHODS.values():
        assert f"| `{m.name}` | {m.features} | {m.model} | {m.augment} |" in doc, m.name


def test_info_names_the_files_beside_the_series(release) -> None:
    from click.testing import CliRunner

    from cropglobe.cli.main import cli

    res = CliRunner().invoke(cli, ["info", str(release)])
    assert res.exit_code == 0, res.output
    assert (
        "also in the folder: presto (BEL, FRA, USA; 8 features; transfer --methods rf-presto, "
        "mlp-presto)" in res.output
    )
    res = CliRunner().invoke(cli, ["info", str(release), "--json"])
    held = json.loads(res.output)["release_files"]
    assert held == {
        "presto": {
            "countries": ["BEL", "FRA", "USA"],
            "features": 8,
            "methods": ["rf-presto", "mlp-presto"],
        }
    }


def test_reuse_check_follows_the_countries_asked_for(release, tmp_path) -> None:
    """A run trained again for a new target keeps the digests of the targets it carries, and
    only the files of the countries asked for now are compared."""
    import shutil

    root = tmp_path / "rel"
    shutil.copytree(release, root)
    data = read_cropglobe(root)
    out = tmp_path / "exp"

    def run(targets):
        return run_experiment(
            data, sources=["FRA"], targets=targets, methods=["rf-presto"], seeds=[3],
            output=out, diagnostics=False,
        )  # fmt: skip

    run(["BEL", "USA"])
    run(["BEL"])  # nothing new
    metrics = out / "runs" / "rf-presto" / "FRA" / "seed3" / "metrics.json"
    emb = root / "Embeddings" / "presto_embedding_S2_USA.npz"
    with np.load(emb) as z:
        np.savez(emb, fea=z["fea"] * 2, lbl=z["lbl"])
    run(["BEL"])  # USA is not asked for: its file does not matter now
    assert set(json.loads(metrics.read_text())["feature_files"]) == {"FRA", "BEL", "USA"}
    with pytest.raises(ExperimentMismatchError, match=r"seed3 \(USA\)"):
        run(["BEL", "USA"])


def test_retrained_run_keeps_the_digests_of_carried_targets(release, tmp_path) -> None:
    import shutil

    root = tmp_path / "rel"
    shutil.copytree(release, root)
    shutil.rmtree(root / "Embeddings")
    _write_embeddings(root)
    data = read_cropglobe(root)
    out = tmp_path / "exp"
    kw = dict(sources=["FRA"], methods=["rf-presto"], seeds=[3], output=out, diagnostics=False)
    run_experiment(data, targets=["USA"], **kw)
    data_fb = read_cropglobe(root, ["FRA", "BEL"])
    run_experiment(data_fb, targets=["BEL"], **kw)  # trained again for BEL, USA carried
    metrics = out / "runs" / "rf-presto" / "FRA" / "seed3" / "metrics.json"
    assert set(json.loads(metrics.read_text())["feature_files"]) == {"FRA", "BEL", "USA"}
    emb = root / "Embeddings" / "presto_embedding_S2_USA.npz"
    with np.load(emb) as z:
        np.savez(emb, fea=z["fea"] * 2, lbl=z["lbl"])
    with pytest.raises(ExperimentMismatchError, match=r"seed3 \(USA\)"):
        run_experiment(data, targets=["USA"], **kw)


def test_repeated_sample_ids_and_other_spellings(tmp_path) -> None:
    import dataclasses

    from cropglobe.io import write_cropglobe

    world = simulate_world(("FRA", "BEL"), 20, random_state=1)
    sets = {}
    for cc in ("FRA", "BEL"):
        part = world.where(country=cc)
        meta = part.meta.assign(sample_id=[f"parcel{i // 2}" for i in range(part.n_samples)])
        sets[cc] = dataclasses.replace(part, meta=meta)
    write_cropglobe(tmp_path / "dup", sets, kinds=("for_CropNet",))
    _write_embeddings(tmp_path / "dup", ("FRA", "BEL"))
    with pytest.raises(DataFormatError, match=r"sample_id 'parcel0' names several rows"):
        ReleaseFeatures("presto").fit(read_cropglobe(tmp_path / "dup"))
    # series files named BE / FR, embedding files BEL / FRA
    iso2 = tmp_path / "iso2"
    (iso2 / "for_CropNet").mkdir(parents=True)
    for cc, two in (("FRA", "FR"), ("BEL", "BE")):
        part = world.where(country=cc)
        name = f"median_S2_{two}_month1-12_day5.npz"
        np.savez(iso2 / "for_CropNet" / name, fea=part.values, lbl=part.labels)
    (iso2 / "Embeddings").mkdir()
    for cc, two in (("FRA", "FR"), ("BEL", "BE")):
        with np.load(iso2 / "for_CropNet" / f"median_S2_{two}_month1-12_day5.npz") as z:
            np.savez(
                iso2 / "Embeddings" / f"presto_embedding_S2_{cc}.npz",
                fea=_embed(z["fea"]),
                lbl=z["lbl"],
            )
    ss = read_cropglobe(iso2)
    rows = ReleaseFeatures("presto").fit(ss).transform(ss)
    np.testing.assert_array_equal(rows[:, 0], ss.meta.sample_id.str[-6:].astype(int))


def test_rows_without_features_and_the_missing_files_folder(release, tmp_path) -> None:
    import shutil

    root = tmp_path / "rel"
    shutil.copytree(release, root)
    emb = root / "Embeddings" / "presto_embedding_S2_BEL.npz"
    with np.load(emb) as z:
        fea, lbl = z["fea"].copy(), z["lbl"]
    fea[5] = np.nan
    np.savez(emb, fea=fea, lbl=lbl)
    ss = read_cropglobe(root, ["FRA", "BEL"])
    with pytest.raises(
        DataFormatError,
        match=r"presto_embedding_S2_BEL.npz: the presto features of 1 samples are all NaN",
    ):
        ReleaseFeatures("presto").fit(ss)
    keep = ss.subset(~((ss.meta.country == "BEL") & (np.arange(ss.n_samples) == 60 + 5)).to_numpy())
    assert ReleaseFeatures("presto").fit(keep).transform(keep).shape == (keep.n_samples, 8)
    # a missing country's file is expected beside the other countries' files
    (root / "Embeddings" / "presto_embedding_S2_USA.npz").unlink()
    with pytest.raises(
        MissingFileError, match=r"Embeddings/presto_embedding_S2_USA.npz: no such file"
    ):
        ReleaseFeatures("presto").fit(read_cropglobe(root))


def test_the_demo_refuses_methods_on_release_files(tmp_path) -> None:
    from cropglobe.demo import run_demo

    with pytest.raises(ParameterError, match="the demo's simulated world does not have"):
        run_demo(tmp_path / "demo", methods=["cropnet", "rf-alphaearth"])
    with pytest.raises(ParameterError, match="'rf-table' trains on a feature table's columns"):
        run_demo(tmp_path / "demo", methods=["rf-table"])
    assert not (tmp_path / "demo").exists()


def test_two_files_of_one_country_at_one_depth_are_named(release, tmp_path, caplog) -> None:
    import shutil

    root = tmp_path / "rel"
    shutil.copytree(release, root)
    shutil.copytree(root / "Embeddings", root / "Backup")
    ss = read_cropglobe(root, ["FRA"])
    ReleaseFeatures("presto").fit(ss)
    ReleaseFeatures("presto").fit(ss)
    said = [r.message for r in caplog.records if "two 'presto' files for FRA" in r.message]
    assert len(said) == 1  # once, however often the folder is scanned
    assert "Backup/presto_embedding_S2_FRA.npz" in said[0] and "reading Backup" in said[0]
