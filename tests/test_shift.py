"""Label-free shift diagnostics: known answers on constructed series, the transfer report's
section and its cache, `cropglobe diagnose`, and the real-data ordering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.errors import BandError, DataFormatError, GridError
from cropglobe.evaluate import shift as shift_mod
from cropglobe.evaluate.experiment import run_experiment
from cropglobe.evaluate.shift import diagnose_shift, diagnosis_lines, season_lag
from cropglobe.report.shift import shift_correlations, shift_table
from cropglobe.series import SeriesSet, TimeGrid
from cropglobe.simulate import simulate_world, write_world

pytestmark = pytest.mark.usefixtures("few_trees")


def _ndvi_set(peaks: np.ndarray, rng: np.random.Generator, width: float = 30.0) -> SeriesSet:
    """NDVI curves on the 73-bin grid: one Gaussian season per sample, peaking on ``peaks``."""
    grid = TimeGrid.cropglobe()
    c = grid.centers[None, :]
    v = 0.2 + 0.6 * np.exp(-0.5 * ((c - peaks[:, None]) / width) ** 2)
    v = v + rng.normal(0, 0.01, v.shape)
    return SeriesSet(v[:, None, :].astype(np.float32), ("NDVI",), grid)


def test_season_lag_finds_a_known_delay() -> None:
    rng = np.random.default_rng(0)
    # two crops (peaks near day 170 and 230) in different mixes: the lag must not follow the mix
    src = _ndvi_set(np.r_[rng.normal(170, 6, 150), rng.normal(230, 6, 50)], rng)
    late = _ndvi_set(np.r_[rng.normal(200, 6, 40), rng.normal(260, 6, 160)], rng)
    lag, gain = season_lag(src, late)
    assert lag == pytest.approx(30, abs=5) and gain > 0.3
    lag, gain = season_lag(late, src)
    assert lag == pytest.approx(-30, abs=5)
    same = _ndvi_set(np.r_[rng.normal(170, 6, 60), rng.normal(230, 6, 140)], rng)
    lag, gain = season_lag(src, same)
    assert abs(lag) <= 5 and gain < 0.1


def test_season_aligned_target_is_read_in_the_source_s_days_of_season() -> None:
    # a southern target aligned on 1 July: its days of season are compared, as transfer does
    rng = np.random.default_rng(7)
    src = _ndvi_set(rng.normal(170, 6, 100), rng)
    tgt = _ndvi_set(rng.normal(170, 6, 100), rng).on_anchor("07-01")
    d = diagnose_shift(src, tgt)
    assert d.lag_days == 0.0 and d.outside_share < 0.15


def test_curves_read_later_equal_np_interp() -> None:
    rng = np.random.default_rng(1)
    centers = np.sort(rng.uniform(1, 365, 40))
    curves = rng.normal(size=(6, 40))
    days = np.linspace(-40, 420, 91)
    for year in (True, False):
        slow = np.stack(
            [np.interp(days, centers, c, period=365.0 if year else None) for c in curves]
        )
        np.testing.assert_allclose(shift_mod._read_later(curves, centers, days, year), slow)


def test_alike_and_foreign_sets() -> None:
    rng = np.random.default_rng(2)
    grid = TimeGrid.cropglobe()

    def sset(offset: float) -> SeriesSet:
        v = rng.normal(0, 1, (300, 3, grid.n_steps)) + offset
        return SeriesSet(v.astype(np.float32), ("B02", "B03", "B11"), grid)

    a = sset(0.0)
    alike = diagnose_shift(a, sset(0.0))
    assert 0.4 < alike.domain_auc < 0.62
    assert alike.outside_share < 0.12
    assert alike.lag_days is None  # no NDVI in these bands
    far = diagnose_shift(a, sset(1.5))
    assert far.domain_auc > 0.95 and far.outside_share > 0.8
    lines = diagnosis_lines(far)
    assert "large shift" in lines[0] and "not measured" in lines[-1]
    # points beyond every source distance are all outside
    pts = rng.normal(size=(400, 4))
    assert shift_mod._outside_share(pts, pts + 100.0) == 1.0


def test_refusals() -> None:
    rng = np.random.default_rng(3)
    a = _ndvi_set(rng.normal(170, 6, 50), rng)
    with pytest.raises(BandError, match="lacks band"):
        b = SeriesSet(a.values, ("B04",), a.grid)
        diagnose_shift(a, b)
    with pytest.raises(GridError, match="composite both to one grid"):
        diagnose_shift(a.select_window(121, 334), a)
    with pytest.raises(DataFormatError, match="at least 10"):
        diagnose_shift(a, a.subset(np.arange(4)))


def test_correlations_known_answer(tmp_path) -> None:
    from cropglobe.report.shift import shift_section

    diag = pd.DataFrame(
        {
            "source": ["FRA"] * 5,
            "target": ["A", "B", "C", "D", "E"],
            "domain_auc": [0.6, 0.7, 0.8, 0.9, 0.95],
            "outside_share": [0.05, 0.1, 0.2, 0.3, 0.4],
            "lag_days": [0.0, -5.0, 10.0, 20.0, -40.0],
        }
    )
    agg = pd.DataFrame(
        {
            "method": ["m"] * 5,
            "source": ["FRA"] * 5,
            "target": list("ABCDE"),
            "scenario": ["cross-country"] * 5,
            "oa_mean": [90.0, 80.0, 70.0, 60.0, 50.0],
        }
    )
    table = shift_table(diag, agg)
    assert table["OA m"].tolist() == [90.0, 80.0, 70.0, 60.0, 50.0]
    corr = shift_correlations(table, ["m"]).set_index("diagnostic")
    assert corr.loc["domain_auc", "rho"] == pytest.approx(-1.0)
    # exact p-value: 2 of the 5! orderings give |ρ| = 1 (the t approximation says 0)
    assert corr.loc["domain_auc", "p"] == pytest.approx(2 / 120)
    assert corr.loc["abs_lag", "rho"] == pytest.approx(-1.0)  # |lag| 0, 5, 10, 20, 40
    # a pair left out (one class scored) leaves 4: still shown; 3 would be too few
    two_out = shift_correlations(table, ["m"], exclude=[("FRA", "A"), ("FRA", "B")])
    assert two_out["rho"].isna().all() and (two_out["n_pairs"] == 3).all()
    page, figs, tables = shift_section(diag, agg, tmp_path)
    assert [f.name for f in figs] == ["shift.png"] and figs[0].stat().st_size > 10_000
    assert "-1.00 (p" in page and len(tables["diagnostics"]) == 5
    assert "season lag (days)" in page and "three measures" in page
    # no lag measured (no NDVI, or a feature table): no column, no row, said once
    (tmp_path / "nolag").mkdir()
    page, _, _ = shift_section(diag.assign(lag_days=np.nan), agg, tmp_path / "nolag")
    assert "season lag (days)" not in page and "|season lag|" not in page
    assert "two measures" in page and "The season lag is not measured here" in page


def test_spearman_p_is_exact_on_few_pairs() -> None:
    """The rank correlation's p-value counts the pairs' orderings (ties included) up to 8
    pairs, as a permutation test does; beyond, never below the exact test's 2 / n!."""
    from scipy.stats import permutation_test, spearmanr

    from cropglobe.report.shift import spearman

    rng = np.random.default_rng(3)
    for n in (4, 5, 6):  # 8 pairs (40,320 orderings) take scipy's loop 20 s: the same path
        x = rng.normal(size=n)
        y = x + rng.normal(size=n)
        y[0] = y[1]  # a tie
        want = permutation_test(  # one sample, paired with x: the n! orderings of y
            (y,),
            lambda v, x=x: spearmanr(x, v).statistic,
            permutation_type="pairings",
            n_resamples=np.inf,
        )
        rho, p = spearman(x, y)
        assert rho == pytest.approx(want.statistic) and p == pytest.approx(want.pvalue)
    assert spearman(np.arange(4.0), -np.arange(4.0)) == pytest.approx((-1.0, 1 / 12))
    rho, p = spearman(np.arange(10.0), np.arange(10.0))
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 3_628_800)


def _diagnose_model(data, model, where: str, *more: str):
    """``cropglobe diagnose --data DATA --where WHERE --model MODEL [more]`` through click."""
    args = ["diagnose", "--data", str(data), "--where", where, "--model", str(model), *more]
    return CliRunner().invoke(cli, args)


@pytest.fixture(scope="module")
def world():
    return simulate_world(("FRA", "BEL", "USA", "CHN"), 80, random_state=4)


def test_transfer_reports_the_shift_and_reuses_it(world, tmp_path, monkeypatch) -> None:
    out = tmp_path / "exp"
    kw = dict(sources=["FRA"], targets=["BEL", "USA", "CHN"], methods=["rf-median1d"], seeds=[1])
    rep = run_experiment(world, output=out, **kw)
    diag = rep.diagnostics
    assert diag is not None and list(diag.target) == ["BEL", "USA", "CHN"]
    assert diag["domain_auc"].between(0.5, 1).all() and diag["outside_share"].between(0, 1).all()
    saved = pd.read_csv(out / "diagnostics.csv")
    assert saved["key"].str.len().eq(20).all()
    page = rep.report.read_text()
    assert "could the drop be seen without target labels" in page
    # three pairs: too few for a rank correlation, so no scatter either (the table says it)
    assert not (out / "figures" / "shift.png").exists() and "– (3 pairs)" in page
    payload = json.loads((out / "results.json").read_text())
    assert {r["target"] for r in payload["shift"]["diagnostics"]} == {"BEL", "USA", "CHN"}
    # accuracy inside and outside the source's range: together they are the run's accuracy
    inout = pd.read_csv(out / "applicability.csv")
    assert len(inout) == 3 and "Within each source's range and beyond it" in page
    runs = rep.result.runs.set_index("target")
    for r in inout.itertuples():
        n = r.n_inside + r.n_outside
        correct = np.nansum([r.oa_inside * r.n_inside, r.oa_outside * r.n_outside]) / 100
        assert n == runs.loc[r.target, "n_scored"]
        assert correct / n == pytest.approx(runs.loc[r.target, "oa"], abs=1e-4)  # 3 decimals
    assert (inout["n_outside"] > 0).any()  # CHN lies partly outside France's range
    # a rerun reads them back: nothing is measured again, and the table is the same
    asked = []
    real = shift_mod.pair_diagnostics
    monkeypatch.setattr(
        shift_mod,
        "pair_diagnostics",
        lambda ss, pairs, **k: asked.append(list(pairs)) or real(ss, pairs, **k),
    )
    again = run_experiment(world, output=out, **kw).diagnostics
    assert asked == [[]]
    pd.testing.assert_frame_equal(again.drop(columns="key"), diag.drop(columns="key"))
    # a target added later is the only pair measured
    run_experiment(world, output=out, **{**kw, "targets": ["BEL", "USA", "CHN", "FRA"]})
    assert asked[-1] == []  # FRA → FRA is no pair
    off = run_experiment(world, output=tmp_path / "off", diagnostics=False, **kw)
    assert off.diagnostics is None and not (tmp_path / "off" / "diagnostics.csv").exists()


def test_diagnose_command(world, tmp_path) -> None:
    data = tmp_path / "world"
    write_world(world, data)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "diagnose",
            "--data",
            str(data),
            "--source",
            "FRA",
            "--targets",
            "BEL",
            "CHN",
            "-o",
            str(tmp_path / "d.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("BEL against FRA (80 and 80 samples compared)")
    assert "CHN against FRA" in res.output and "season lag" in res.output
    table = pd.read_csv(tmp_path / "d.csv")
    assert list(table.target) == ["BEL", "CHN"]
    # the model mode: the source is read again from where the card says
    res = runner.invoke(
        cli,
        [
            "train",
            "--data",
            str(data),
            "--country",
            "FRA",
            "--model",
            "random_forest",
            "-o",
            str(tmp_path / "rf"),
        ],
    )
    assert res.exit_code == 0, res.output
    res = _diagnose_model(data, tmp_path / "rf", "country=USA", "--json")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)[0]
    assert record["source"] == "FRA (training data)" and record["target"] == "country=USA"
    assert record["n_source"] == record["n_target"] == 80
    view = record["model"]
    assert sum(view["predicted"].values()) == pytest.approx(1.0)
    assert view["estimated"] is None  # a forest's votes are no calibrated probabilities
    # the model folder keeps a reference of its training data: predict checks new data on it
    assert (tmp_path / "rf" / "reference.safetensors").is_file()
    res = runner.invoke(
        cli,
        [
            "predict",
            str(tmp_path / "rf"),
            "--data",
            str(data),
            "--country",
            "FRA,CHN",
            "-o",
            str(tmp_path / "p.parquet"),
        ],
    )
    assert res.exit_code == 0, res.output
    pred = pd.read_parquet(tmp_path / "p.parquet")
    outside = (pred["dissimilarity"] > 1).groupby(pred["country"]).mean()
    assert outside["FRA"] <= 0.1 < outside["CHN"]  # its own data inside, China far more outside
    assert "lie outside the training data's range (dissimilarity > 1" in res.output
    for args, message in (
        ([], "give --source GROUP"),
        (["--source", "XX"], "not in the data; present: BEL, CHN, FRA, USA"),
        (["--source", "FRA", "--targets", "FRA"], "no target besides the source"),
        (["--source", "FRA", "--bands", "B99"], "--bands B99: not a band of the data"),
        (["--model", str(tmp_path / "rf"), "--source", "FRA"], "leave out --source"),
    ):
        res = runner.invoke(cli, ["diagnose", "--data", str(data), *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and "Traceback" not in res.output


@pytest.mark.realdata
def test_real_data_shift_orders_the_transfers(shared_data) -> None:
    """CAN → FRA transfers best (OA 78 %), Fergana → Samarkand (67 %) and → Kashkadarya (57 %)
    worse (docs/results.md): France lies inside Canada's range, the two CAWa regions far
    outside Fergana's (docs/diagnose.md)."""
    from cropglobe.evaluate.experiment import load_series

    cg = load_series(shared_data / "cropglobe_format")
    fra = diagnose_shift(cg.where(country="CAN"), cg.where(country="FRA"), max_samples=500)
    cawa = load_series(shared_data / "cawa")
    fer = cawa.where(region="Fergana")
    sam = diagnose_shift(fer, cawa.where(region="Samarkand"), max_samples=500)
    kas = diagnose_shift(fer, cawa.where(region="Kashkadarya"), max_samples=500)
    assert fra.outside_share < 0.1 < min(sam.outside_share, kas.outside_share)


def test_training_reference_known_shares(tmp_path) -> None:
    from cropglobe.errors import ModelError
    from cropglobe.evaluate.applicability import REFERENCE_FILE, TrainingReference

    rng = np.random.default_rng(5)
    grid = TimeGrid.cropglobe()

    def sset(n: int, offset: float = 0.0, flat: float = 0.0) -> SeriesSet:
        v = rng.normal(0, 1, (n, 2, grid.n_steps))
        v[:, 0] += rng.normal(0, 3, (n, 1))  # the training data vary along band 1's level …
        v[:, 1] = 0.01 * v[:, 1] + flat  # … and hardly at all in band 2
        return SeriesSet((v + offset).astype(np.float32), ("B04", "B08"), grid)

    ref = TrainingReference.fit(sset(1500), (121, 334))
    assert ref.n_samples == 1500 and ref.points.shape[1] == 17  # 16 components + residual
    like = ref.dissimilarity(sset(1000))
    assert 0.01 < float((like > 1).mean()) < 0.12  # about the 5 % of the limit's quantile
    assert float((ref.dissimilarity(sset(300, offset=4.0)) > 1).mean()) > 0.8
    # a difference along a direction the training data never vary (band 2's level) is seen
    # through the distance from the components' subspace
    assert float((ref.dissimilarity(sset(300, flat=0.5)) > 1).mean()) > 0.9
    ref.save(tmp_path)
    back = TrainingReference.load(tmp_path)
    assert back is not None and back.window == (121, 334) and back.bands == ("B04", "B08")
    probe = sset(50, offset=1.0)
    np.testing.assert_array_equal(back.dissimilarity(probe), ref.dissimilarity(probe))
    assert TrainingReference.load(tmp_path / "nothing") is None
    (tmp_path / REFERENCE_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="unreadable training reference"):
        TrainingReference.load(tmp_path)


def test_diagnose_a_model_whose_training_data_are_gone(world, tmp_path) -> None:
    from cropglobe.workflow import train_to_folder

    data = tmp_path / "world"
    write_world(world, data)
    fra = world.where(country="FRA")
    train_to_folder(fra, "random_forest", tmp_path / "rf", provenance={"path": str(tmp_path / "x")})
    runner = CliRunner()
    res = _diagnose_model(data, tmp_path / "rf", "country=CHN")
    assert res.exit_code == 0, res.output
    assert "measured against the model's training reference only" in res.output
    assert "of country=CHN's fields lie outside the range of the model's training" in res.output
    (tmp_path / "rf" / "reference.safetensors").unlink()
    res = runner.invoke(cli, ["diagnose", "--data", str(data), "--model", str(tmp_path / "rf")])
    assert res.exit_code == 2 and "pass --source-data PATH" in res.output
    res = runner.invoke(cli, ["info", str(tmp_path / "rf")])
    assert "training reference: none" in res.output


def test_exact_duplicates_are_compared_once() -> None:
    """Repeated series (CropGlobe tables hold some) are their twin's neighbour at distance 0:
    counted as samples they raised the AUC and, from six copies on, put every target sample
    outside (the source's own k-th distance became 0)."""
    from cropglobe.evaluate.applicability import TrainingReference

    rng = np.random.default_rng(7)
    grid = TimeGrid.cropglobe()

    def sset(n: int) -> SeriesSet:
        v = rng.normal(0, 1, (n, 2, grid.n_steps)) + rng.normal(0, 2, (n, 2, 1))
        return SeriesSet(v.astype(np.float32), ("B02", "B11"), grid)

    src, tgt = sset(60), sset(300)
    copies = src.subset(np.repeat(np.arange(60), 6))
    d = diagnose_shift(copies, tgt)
    assert d.n_source == 60  # the distinct series
    assert d.outside_share < 0.2 and d.domain_auc < 0.65
    ref = TrainingReference.fit(copies, None)
    assert ref.n_samples == 60 and float((ref.dissimilarity(tgt) > 1).mean()) < 0.2


def test_the_season_lag_is_the_same_whether_transfer_or_diagnose_asks() -> None:
    """transfer passes the same sets again as ``phenology``: its lag must be diagnose's, also
    where the source repeats series (the real CAN file holds two), which once changed the
    subsample of the lag alone (CAN → FRA: +30 days in transfer, +0 in diagnose)."""
    rng = np.random.default_rng(3)
    src = _ndvi_set(np.r_[rng.normal(170, 15, 150), rng.normal(230, 15, 150)], rng)
    src = src.subset(np.r_[np.arange(300), [0, 1]])  # two exact repeats
    tgt = _ndvi_set(rng.normal(190, 15, 120), rng)
    for seed in range(4):
        plain = diagnose_shift(src, tgt, random_state=seed)
        again = diagnose_shift(src, tgt, random_state=seed, phenology=(src, tgt))
        assert (again.lag_days, again.lag_gain) == (plain.lag_days, plain.lag_gain)


def test_a_band_without_values_on_one_side_is_not_a_shift(tmp_path) -> None:
    """A band never observed in the source (or the training data) has no statistics: its raw
    values (thousands, in reflectance × 10⁴) must not count as a shift."""
    import dataclasses

    from cropglobe.evaluate.applicability import TrainingReference

    rng = np.random.default_rng(8)
    grid = TimeGrid.cropglobe()

    def sset(n: int) -> SeriesSet:
        v = 3000 + 500 * rng.normal(0, 1, (n, 2, grid.n_steps)) + rng.normal(0, 800, (n, 2, 1))
        return SeriesSet(v.astype(np.float32), ("B02", "B11"), grid)

    src, tgt = sset(200), sset(200)
    v = src.values.copy()
    v[:, 1] = np.nan
    blind = dataclasses.replace(src, values=v)
    for a, b in ((blind, tgt), (tgt, blind)):
        d = diagnose_shift(a, b)
        assert d.domain_auc < 0.65 and d.outside_share < 0.15
    ref = TrainingReference.fit(blind, (121, 334))
    assert float((ref.dissimilarity(tgt) > 1).mean()) < 0.15
    ref.save(tmp_path)
    back = TrainingReference.load(tmp_path)
    assert back is not None
    np.testing.assert_array_equal(back.dissimilarity(tgt), ref.dissimilarity(tgt))
    # a B08 without values leaves the season lag unmeasured, not the pair undiagnosed
    w = np.full((200, 2, grid.n_steps), np.nan, np.float32)
    w[:, 0] = src.values[:, 0]
    no_nir = SeriesSet(w, ("B04", "B08"), grid)
    with_nir = SeriesSet(src.values, ("B04", "B08"), grid)
    d = diagnose_shift(no_nir, with_nir)
    assert d.lag_days is None and "not measured" in diagnosis_lines(d)[-1]


def test_cached_diagnostics_keep_group_names_as_text(tmp_path) -> None:
    """diagnostics.csv is read back with group names as text: 'NA' (Namibia) and '01' were
    read as a missing value and the number 1, so the rerun's table lost its pairs."""
    import dataclasses

    from cropglobe.evaluate.experiment import DIAGNOSTICS_FILE, _shift_table
    from cropglobe.evaluate.transfer import ExperimentConfig

    ss = simulate_world(("FRA", "BEL", "USA"), 30, random_state=2)
    codes = {"FRA": "NA", "BEL": "01", "USA": "USA"}
    ss = dataclasses.replace(ss, meta=ss.meta.assign(country=ss.meta["country"].map(codes)))
    config = ExperimentConfig(
        sources=["NA"], targets=["01", "USA"], methods=["rf-median1d"], seeds=[1]
    )
    first = _shift_table(ss, ss, config, tmp_path, None)
    assert list(first["target"]) == ["01", "USA"]
    first.to_csv(tmp_path / DIAGNOSTICS_FILE, index=False, float_format="%.6g")
    again = _shift_table(ss, ss, config, tmp_path, None)
    assert list(again["source"]) == ["NA", "NA"] and list(again["target"]) == ["01", "USA"]
    np.testing.assert_allclose(again["domain_auc"], first["domain_auc"], rtol=1e-5)
    # a table without keys (not this run's) is measured again, not appended
    first.drop(columns="key").assign(domain_auc=9.0).to_csv(tmp_path / DIAGNOSTICS_FILE)
    third = _shift_table(ss, ss, config, tmp_path, None)
    assert len(third) == 2 and (third["domain_auc"] <= 1).all()


def test_diagnose_a_model_whose_window_reaches_past_its_grid(tmp_path) -> None:
    """train accepts a window reaching past the grid (the bins whose centre lies in it); the
    model's diagnosis takes the same bins instead of refusing the window."""
    from cropglobe.workflow import train_to_folder

    world = simulate_world(("FRA", "CHN"), 40, random_state=5).select_window(60, 300)
    path = tmp_path / "w.npz"
    world.save(path)
    train_to_folder(
        world.where(country="FRA"),
        "random_forest",
        tmp_path / "rf",
        window=(121, 334),
        provenance={"path": str(path), "country": ["FRA"]},
    )
    res = _diagnose_model(path, tmp_path / "rf", "country=CHN", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["n_source"] == 40
    res = CliRunner().invoke(
        cli,
        ["diagnose", "--data", str(path), "--model", str(tmp_path / "rf"), "--source-data",
         str(tmp_path / "gone.csv")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--source-data" in res.output and "no such file" in res.output


def test_report_section_without_any_diagnosed_pair(tmp_path) -> None:
    """Every pair skipped (too few samples): the section says so; the empty keep-list used to
    select no column and the report failed with a KeyError after all the training."""
    from cropglobe.report.shift import shift_section

    agg = pd.DataFrame(
        {"method": ["m"], "source": ["FRA"], "target": ["BEL"], "scenario": ["x"]}
    ).assign(oa_mean=70.0)
    empty = shift_mod.pair_diagnostics(simulate_world(("FRA", "BEL"), 5), [("FRA", "BEL")])
    assert len(empty) == 0
    html, figs, tables = shift_section(empty, agg, tmp_path)
    assert "No pair could be diagnosed" in html and figs == []
    assert tables["correlations"]["rho"].isna().all()


def test_diagnose_names_and_selects_the_training_data_as_the_card_records(world, tmp_path) -> None:
    from cropglobe.workflow import train_to_folder

    data = tmp_path / "world"
    write_world(world, data)
    part = world.where(country="FRA", region=["FRA-R1", "FRA-R2"])
    prov = {"path": str(data), "where": {"region": ["FRA-R1", "FRA-R2"]}, "country": ["FRA"]}
    train_to_folder(part, "random_forest", tmp_path / "rf", provenance=prov)
    res = _diagnose_model(data, tmp_path / "rf", "country=BEL", "--json")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)[0]
    assert record["source"] == "FRA, region=FRA-R1,FRA-R2 (training data)"
    assert record["n_source"] == min(part.n_samples, 80)  # the recorded selection, not all FRA


def test_a_feature_constant_in_the_source_takes_its_band_s_spread(tmp_path) -> None:
    """Known scales; and a target differing by a fifth of the band's spread at one step where
    every source sample holds one value is not a shift (scaled by 1, a 100-unit difference
    counted as 100 standard deviations and put every target sample outside)."""
    import dataclasses

    from cropglobe.evaluate.applicability import TrainingReference, feature_scales

    x = np.array([[1.0, 10.0, 5.0, 100.0], [3.0, 30.0, 5.0, 300.0]])  # 2 bands x 2 steps
    mean, std = feature_scales(x, 2)
    np.testing.assert_allclose(mean, [2.0, 20.0, 5.0, 200.0])
    np.testing.assert_allclose(std, [1.0, 10.0, 100.0, 100.0])  # band 2's only spread
    x[:, 2:] = np.nan  # a band without values: spread 1 (left out by the callers)
    np.testing.assert_allclose(feature_scales(x, 2)[1], [1.0, 10.0, 1.0, 1.0])

    rng = np.random.default_rng(4)
    grid = TimeGrid.cropglobe()

    def sset(n: int) -> SeriesSet:
        v = 3000 + 500 * rng.normal(0, 1, (n, 1, grid.n_steps))
        return SeriesSet(v.astype(np.float32), ("B02",), grid)

    src, tgt = sset(300), sset(300)
    step = int(np.searchsorted(grid.edges, 200)) - 1  # a step inside the default window
    vs, vt = src.values.copy(), tgt.values.copy()
    vs[:, 0, step] = 3000.0
    vt[:, 0, step] = 3000.0 + rng.normal(0, 100, 300)
    src, tgt = dataclasses.replace(src, values=vs), dataclasses.replace(tgt, values=vt)
    assert diagnose_shift(src, tgt, window=(121, 334)).outside_share < 0.2
    ref = TrainingReference.fit(src, (121, 334))
    assert float((ref.dissimilarity(tgt) > 1).mean()) < 0.2


def test_a_target_identical_to_the_source_cannot_be_told_apart() -> None:
    # each target field's twin in the source used to vote for the other side from distance 0:
    # AUC 0.08 for a target that is the source itself
    rng = np.random.default_rng(11)
    grid = TimeGrid.cropglobe()
    v = rng.normal(0, 1, (200, 3, grid.n_steps)).astype(np.float32)
    src = SeriesSet(v, ("B02", "B03", "B11"), grid)
    d = diagnose_shift(src, SeriesSet(v.copy(), src.bands, grid))
    assert d.domain_auc == pytest.approx(0.5, abs=0.02)
    assert d.outside_share <= 0.06


def test_the_domain_auc_is_not_tilted_on_few_samples() -> None:
    # leaving a sample alone out, it chose among one more of the other side: 0.36 on sets of 10
    rng = np.random.default_rng(12)
    aucs = [
        shift_mod._domain_auc(rng.normal(size=(10, 4)), rng.normal(size=(10, 4)))
        for _ in range(150)
    ]
    assert np.mean(aucs) == pytest.approx(0.5, abs=0.04)


def test_the_components_are_the_exact_principal_components() -> None:
    # scikit-learn's randomised solver (its choice for hundreds of features) approximates them
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 430)) / np.sqrt(np.arange(1, 431))[None, :]
    src, tgt = x[:300], x[300:] + 0.1
    za, zb = shift_mod._components(src, tgt, 10, 16, 0)
    z = np.vstack([(src - src.mean(0)) / src.std(0), (tgt - src.mean(0)) / src.std(0)])
    axes = np.linalg.svd(z - z.mean(0), full_matrices=False)[2][:16]
    exact = (z - z.mean(0)) @ axes.T
    np.testing.assert_allclose(pdist(np.vstack([za, zb])), pdist(exact), atol=1e-8)


def test_outside_share_of_alike_sets_stays_at_its_level_on_few_samples() -> None:
    """The conformal rank keeps alike samples out at most 5 % of the time at any n (the
    plain 95 % quantile let 13 % out at 10 samples a side, 9 % at 20)."""
    rng = np.random.default_rng(0)
    for n, most in ((10, 0.0), (20, 0.06), (50, 0.06)):
        shares = [
            shift_mod._outside_share(rng.normal(size=(n, 16)), rng.normal(size=(n, 16)))
            for _ in range(150)
        ]
        assert np.mean(shares) <= most, (n, np.mean(shares))


def test_training_reference_keeps_alike_samples_in_at_its_level_on_few_samples() -> None:
    """The reference's limit is the conformal rank, as diagnose's: on 25 training samples,
    new samples alike them lie outside about 6 % of the time (the plain 95 % quantile let
    13 % out)."""
    import logging

    from cropglobe.evaluate.applicability import TrainingReference

    rng = np.random.default_rng(1)
    grid = TimeGrid.cropglobe().window(121, 150)

    def sset(n: int) -> SeriesSet:
        return SeriesSet(rng.normal(0, 1, (n, 2, 6)).astype(np.float32), ("B04", "B08"), grid)

    logging.getLogger("cropglobe.evaluate.applicability").disabled = True  # "rough" notes
    try:
        shares = [
            float((TrainingReference.fit(sset(25), None).dissimilarity(sset(200)) > 1).mean())
            for _ in range(80)
        ]
    finally:
        logging.getLogger("cropglobe.evaluate.applicability").disabled = False
    assert 0.02 < np.mean(shares) < 0.09, np.mean(shares)
