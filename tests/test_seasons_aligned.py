"""Season-aligned data: sets of several seasons, align_seasons and transfer --season."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli
from cropglobe.composite import align_seasons, resample, season_findings, shift_anchor
from cropglobe.errors import DataFormatError, GridError
from cropglobe.evaluate.experiment import run_experiment
from cropglobe.evaluate.methods import get_method
from cropglobe.evaluate.transfer import ExperimentConfig
from cropglobe.io import read_cropglobe, write_cropglobe
from cropglobe.report.figures import _panel_start
from cropglobe.series import SEASON_ANCHOR, SeriesSet, TimeGrid
from cropglobe.simulate import simulate_world
from cropglobe.summary import describe, format_description
from cropglobe.workflow import train_to_folder

pytestmark = pytest.mark.usefixtures("few_trees")


@pytest.fixture(scope="module")
def calendar_world() -> SeriesSet:
    """France, and Argentina left on the calendar year (its summer crops peak Jan-Mar)."""
    return simulate_world(("FRA", "ARG"), 150, random_state=4, season_aligned_south=False)


def _oa(rep) -> float:
    return float(rep.result.runs["oa"].iloc[0])


def test_a_set_of_several_seasons_keeps_each_samples_anchor(calendar_world, tmp_path) -> None:
    fra, arg = calendar_world.where(country="FRA"), calendar_world.where(country="ARG")
    arg7 = shift_anchor(arg, "07-01", wrap=True)
    with pytest.raises(GridError, match="pass mixed_seasons=True"):
        SeriesSet.concat([fra, arg7])
    both = SeriesSet.concat([fra, arg7], mixed_seasons=True)
    assert both.seasons == ("01-01", "07-01") and both.grid.anchor == "01-01"
    assert both.anchors.tolist() == ["01-01"] * fra.n_samples + ["07-01"] * arg.n_samples
    # a subset of one season is an ordinary set of that season
    only = both.where(country="ARG")
    assert only.grid.anchor == "07-01" and only.seasons == ("07-01",)
    assert SEASON_ANCHOR not in only.meta.columns
    np.testing.assert_array_equal(only.values, arg7.values)
    # kept on disk
    back = SeriesSet.load(both.save(tmp_path / "both.npz"))
    assert back.anchors.tolist() == both.anchors.tolist() and back.grid == both.grid
    # read as another season: nothing moves, the anchor is replaced
    read = only.on_anchor("01-01")
    assert read.grid.anchor == "01-01" and read.grid.edges == only.grid.edges
    np.testing.assert_array_equal(read.values, only.values)
    with pytest.raises(GridError, match=r"150 starting 01-01, 150 starting 07-01"):
        both.require_one_season("training")
    with pytest.raises(GridError, match="shift_anchor needs samples of one season"):
        shift_anchor(both, "01-01")
    # a bad anchor in the column is refused where the set is built
    with pytest.raises(GridError, match="'13-01'"):
        SeriesSet(fra.values, fra.bands, fra.grid, fra.labels, fra.classes,
                  fra.meta.assign(season_anchor="13-01"))  # fmt: skip


def test_align_seasons_moves_the_named_groups_only(calendar_world) -> None:
    al = align_seasons(calendar_world, {"ARG": "07-01"})
    assert al.meta["sample_id"].tolist() == calendar_world.meta["sample_id"].tolist()
    arg = calendar_world.meta["country"].to_numpy() == "ARG"
    assert set(al.anchors[arg]) == {"07-01"} and set(al.anchors[~arg]) == {"01-01"}
    moved = shift_anchor(calendar_world.subset(arg), "07-01", wrap=True)
    np.testing.assert_array_equal(al.values[arg], moved.values)
    np.testing.assert_array_equal(al.values[~arg], calendar_world.values[~arg])
    assert al.attrs["aligned_seasons"] == {"ARG": "07-01"}
    # the check now finds every season inside the window; before, Argentina was unaligned
    before = season_findings(calendar_world)
    assert [(f.group, f.unaligned, f.suggested_anchor) for f in before] == [("ARG", True, "07-01")]
    assert season_findings(al) == []
    with pytest.raises(DataFormatError, match="AUS not in the 'country' column; present: FRA, ARG"):
        align_seasons(calendar_world, {"AUS": "07-01"})


def test_align_seasons_keeps_month_bins_as_days_of_season(calendar_world) -> None:
    monthly = resample(calendar_world, TimeGrid.monthly())
    al = align_seasons(monthly, {"ARG": "07-01"})
    assert al.grid.edges == monthly.grid.edges  # months of July-June would have other bins
    arg = al.where(country="ARG")
    assert arg.grid.anchor == "07-01" and arg.grid.kind == "custom"
    # day-of-season bins 1-31 of the July season hold July: Argentina's winter low
    ndvi = lambda s: (s.values[:, 6] - s.values[:, 2]) / (s.values[:, 6] + s.values[:, 2])  # noqa: E731
    crop = arg.labels == arg.classes.index("corn")
    curve = np.nanmean(ndvi(arg)[crop], axis=0)
    assert 5 <= int(np.argmax(curve)) <= 8  # December-March, mid-season


def test_a_release_folder_may_hold_a_reanchored_country(calendar_world, tmp_path) -> None:
    fra, arg = calendar_world.where(country="FRA"), calendar_world.where(country="ARG")
    write_cropglobe(tmp_path, {"FRA": fra, "ARG": shift_anchor(arg, "07-01", wrap=True)},
                    kinds=["for_CropNet"])  # fmt: skip
    both = read_cropglobe(tmp_path)
    assert both.seasons == ("07-01", "01-01")  # countries are read alphabetically
    desc = format_description(describe(both))
    assert "seasons (season-aligned data, meta['season_anchor']): 150 starting 07-01, 150" in desc
    assert (
        "season years (the year each season starts): 2022 (150), 2023 (150); dates 2022-07-01 "
        "… 2023-12-31" in desc
    )
    with pytest.raises(GridError, match="training a model needs samples of one season"):
        train_to_folder(both, "random_forest", tmp_path / "model")
    config = ExperimentConfig(["FRA"], ["ARG"], ["rf-median1d"], [1])
    with pytest.raises(GridError, match="training rf-median1d needs samples of one season"):
        get_method("rf-median1d").fit(both, seed=1, config=config)


def test_transfer_with_seasons_equals_transfer_on_aligned_data(calendar_world, tmp_path) -> None:
    plan = dict(sources=["FRA"], targets=["ARG"], methods=["rf-median1d"], seeds=[1])
    plain = run_experiment(calendar_world, **plan, output=tmp_path / "plain")
    lines: list[str] = []
    auto = run_experiment(calendar_world, **plan, output=tmp_path / "auto", seasons="auto",
                          echo=lines.append)  # fmt: skip
    assert "seasons: ARG on a season starting 07-01" in lines
    given = run_experiment(align_seasons(calendar_world, {"ARG": "07-01"}), **plan,
                           output=tmp_path / "given")  # fmt: skip
    # the same models, the same predictions: aligning inside the experiment is aligning first
    assert _oa(auto) == _oa(given)
    a = pd.read_parquet(tmp_path / "auto/runs/rf-median1d/FRA/seed1/predictions.parquet")
    g = pd.read_parquet(tmp_path / "given/runs/rf-median1d/FRA/seed1/predictions.parquet")
    pd.testing.assert_frame_equal(a, g)
    # and compared in their own seasons, Argentina's crops are far better recognised
    assert _oa(auto) > _oa(plain) + 0.15, (_oa(plain), _oa(auto))
    saved = json.loads((tmp_path / "auto/config.json").read_text())["config"]
    assert saved["seasons"] == {"ARG": "07-01"}
    # a model trained in the southern season reads France in its own days of season too
    tiny = dict(epochs=1, model_options={"cropnet": {"width": 8}}, tta=[-10, 10])
    back = run_experiment(calendar_world, sources=["ARG"], targets=["FRA"], methods=["cropnet"],
                          seeds=[1], output=tmp_path / "back", seasons={"ARG": "07-01"},
                          **tiny)  # fmt: skip
    model = tmp_path / "back/runs/cropnet/ARG/seed1/model"
    card = json.loads(next(model.glob("*.json")).read_text())
    assert card["grid"]["anchor"] == "07-01"  # the model's own season
    assert {"cropnet", "cropnet+tta"} <= set(back.result.runs["method"])


def test_raw_observations_are_composited_again_on_the_groups_season(tmp_path) -> None:
    world = simulate_world(("FRA", "ARG"), 80, random_state=2, season_aligned_south=False,
                           bands=("B03", "B04", "B08", "B11"))  # fmt: skip
    rows = []
    centers = world.grid.centers
    for i in range(world.n_samples):
        cc = world.meta["country"][i]
        # Argentina's season from July: the year before holds its sowing (here: the same
        # calendar, one year earlier)
        for year in (2022, 2023) if cc == "ARG" else (2023,):
            dates = pd.Timestamp(f"{year}-01-01") + pd.to_timedelta(np.floor(centers) - 1, "D")
            frame = pd.DataFrame(world.values[i].T, columns=list(world.bands))
            frame.insert(0, "date", dates)
            frame.insert(0, "sample_id", world.meta["sample_id"][i])
            frame["country"], frame["year"] = cc, 2023
            frame["label"] = world.classes[world.labels[i]]
            rows.append(frame)
    path = tmp_path / "obs.csv"
    pd.concat(rows, ignore_index=True).to_csv(path, index=False)
    plan = dict(sources=["FRA"], targets=["ARG"], methods=["rf-median1d"], seeds=[3])
    plain = run_experiment(path, **plan, output=tmp_path / "plain")
    lines: list[str] = []
    fixed = run_experiment(path, **plan, output=tmp_path / "fixed", seasons={"ARG": "07-01"},
                           echo=lines.append)  # fmt: skip
    assert any(ln.endswith("seasons {'ARG': '07-01'}") for ln in lines)
    pred = pd.read_parquet(tmp_path / "fixed/runs/rf-median1d/FRA/seed3/predictions.parquet")
    assert len(pred) == 80  # every Argentinian sample has observations in its new season
    assert _oa(fixed) > _oa(plain) + 0.15, (_oa(plain), _oa(fixed))
    # the models' bands only: the re-composited group is cut to them too
    two = run_experiment(path, **plan, output=tmp_path / "two", seasons={"ARG": "07-01"},
                         bands=["B04", "B08"])  # fmt: skip
    assert len(two.result.runs) == 1


def test_panels_are_labelled_by_their_groups_season(calendar_world) -> None:
    al = align_seasons(calendar_world, {"ARG": "07-01"})
    assert _panel_start(al, "country", "FRA") == 1
    assert _panel_start(al, "country", "ARG") == 182  # 1 July
    assert _panel_start(al, None, "all") is None  # both seasons in one panel


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["ARG"], "'ARG' is not GROUP=MM-DD"),
        (["ARG=13-01"], "season anchor '13-01' is not a valid 'MM-DD' day"),
        (["auto", "ARG=07-01"], "'auto' chooses every group's season itself"),
        (["ARG=07-01", "ARG=10-01"], "ARG is given two seasons (07-01 and 10-01)"),
    ],
)
def test_bad_season_options_are_one_line(given, said, tmp_path) -> None:
    args = ["transfer", "--data", str(tmp_path), "--source", "FRA", "--targets", "ARG",
            "--methods", "rf-median1d", "-o", str(tmp_path / "x")]  # fmt: skip
    for g in given:
        args += ["--season", g]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and said in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "x").exists()


def test_an_unknown_season_group_is_named(calendar_world, tmp_path) -> None:
    with pytest.raises(DataFormatError, match="did you mean 'ARG'"):
        run_experiment(calendar_world, sources=["FRA"], targets=["ARG"],
                       methods=["rf-median1d"], seeds=[1], output=tmp_path / "x",
                       seasons={"AR": "07-01"})  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_anchor_options_take_one_spelling(calendar_world) -> None:
    from cropglobe.cli.composite import anchor_option
    from cropglobe.cli.transfer import seasons_arg

    assert seasons_arg(("ARG=7-1", "AUS = 07-01")) == {"ARG": "07-01", "AUS": "07-01"}
    assert seasons_arg(("auto",)) == "auto" and seasons_arg(()) is None
    assert anchor_option("7-1") == "07-01"
    al = align_seasons(calendar_world, {"ARG": "7-1"})
    assert al.seasons == ("01-01", "07-01")


def test_season_auto_needs_ndvi_and_seasons_enter_the_fingerprint(calendar_world, tmp_path) -> None:
    from cropglobe.errors import ParameterError

    swir = calendar_world.select_bands(["B11", "B12"])
    with pytest.raises(ParameterError, match="--season auto times each group's NDVI peaks"):
        run_experiment(swir, sources=["FRA"], targets=["ARG"], methods=["rf-median1d"],
                       seeds=[1], output=tmp_path / "x", seasons="auto")  # fmt: skip
    al = align_seasons(calendar_world, {"ARG": "07-01"})
    relabelled = SeriesSet(al.values, al.bands, al.grid, al.labels, al.classes,
                           al.meta.assign(season_anchor="01-01"))  # fmt: skip
    assert relabelled.fingerprint() != al.fingerprint()


def test_season_requests_are_judged_by_each_groups_own_season(calendar_world, tmp_path) -> None:
    from cropglobe.evaluate.transfer import ExperimentMismatchError

    # data that already hold both seasons, Argentina's first: its anchor is the grid's
    arg_first = SeriesSet.concat(
        [shift_anchor(calendar_world.where(country="ARG"), "07-01", wrap=True),
         calendar_world.where(country="FRA")], mixed_seasons=True)  # fmt: skip
    assert arg_first.grid.anchor == "07-01"
    plan = dict(sources=["FRA"], targets=["ARG"], methods=["rf-median1d"], seeds=[1])
    # France asked onto 07-01 is moved (it was silently left on 01-01)
    run_experiment(arg_first, **plan, output=tmp_path / "fra7", seasons={"FRA": "07-01"})
    saved = json.loads((tmp_path / "fra7/config.json").read_text())["config"]
    assert saved["seasons"] == {"FRA": "07-01"}
    # Argentina asked onto the season it is on: nothing to do (it used to fail)
    run_experiment(arg_first, **plan, output=tmp_path / "same", seasons={"ARG": "07-01"})
    saved = json.loads((tmp_path / "same/config.json").read_text())["config"]
    assert saved["seasons"] == {}
    # a rerun with other seasons is refused, saying that the seasons changed
    with pytest.raises(ExperimentMismatchError, match="the groups' seasons changed"):
        run_experiment(calendar_world, **plan, output=tmp_path / "fra7")
    # whole-season series only
    from cropglobe.errors import ParameterError

    window = calendar_world.select_window(121, 334)
    with pytest.raises(ParameterError, match="--season re-anchors whole-season series"):
        run_experiment(window, **plan, output=tmp_path / "w", seasons="auto")


def test_seasons_with_year_groups_keep_the_group_names(calendar_world, tmp_path) -> None:
    meta = calendar_world.meta.assign(year=np.where(calendar_world.meta.country == "FRA", 22, 23))
    years = SeriesSet(calendar_world.values, calendar_world.bands, calendar_world.grid,
                      calendar_world.labels, calendar_world.classes, meta)  # fmt: skip
    rep = run_experiment(years, sources=["22"], targets=["23"], methods=["rf-median1d"],
                         seeds=[1], output=tmp_path / "y", group_by="year",
                         seasons={"23": "07-01"})  # fmt: skip
    assert rep.result.runs["target"].tolist() == ["23"]


def test_writers_readers_and_predict_on_sets_of_several_seasons(calendar_world, tmp_path) -> None:
    from cropglobe.io import read_series_table, write_series_table
    from cropglobe.workflow import predict_dataset

    al = align_seasons(calendar_world, {"ARG": "07-01"})
    table = pd.read_parquet(write_series_table(al, tmp_path / "t.parquet"))
    first = table[table.step == 0].set_index("sample_id")["date"]
    arg = al.meta.loc[al.meta.country == "ARG", "sample_id"]
    fra = al.meta.loc[al.meta.country == "FRA", "sample_id"]
    assert set(first[arg]) == {pd.Timestamp("2022-07-01")}  # Argentina's season year 2022
    assert set(first[fra]) == {pd.Timestamp("2023-01-01")}
    back = read_series_table(tmp_path / "t.parquet")
    assert back.anchors.tolist() == al.anchors.tolist()
    # resampling days of season: any of the set's anchors names the target grid, others not
    for anchor in ("01-01", "07-01"):
        ten = resample(al, TimeGrid.regular(10, anchor=anchor))
        assert ten.anchors.tolist() == al.anchors.tolist() and ten.grid.edges[1] == 11
    with pytest.raises(GridError, match="'03-01'"):
        resample(al, TimeGrid.regular(10, anchor="03-01"))
    # seasons compared as sets, whatever order the samples come in
    assert SeriesSet.concat([al, al.subset(np.arange(al.n_samples)[::-1])]).seasons == al.seasons
    # a model reads one season: a set of several is refused, whichever sample comes first
    train_to_folder(al.where(country="FRA"), "random_forest", tmp_path / "m",
                    model_options={"n_estimators": 5})  # fmt: skip
    with pytest.raises(GridError, match="prediction needs samples of one season"):
        predict_dataset(tmp_path / "m", al)


def test_season_option_takes_several_values(calendar_world, tmp_path) -> None:
    from cropglobe.cli.transfer import seasons_arg

    assert seasons_arg(("ARG=07-01,AUS=07-01",)) == {"ARG": "07-01", "AUS": "07-01"}
    data = tmp_path / "w"
    from cropglobe.simulate import write_world

    write_world(calendar_world, data)
    base = ["transfer", "--data", str(data), "--source", "FRA", "--methods", "rf-median1d",
            "--seeds", "1", "-q"]  # fmt: skip
    res = CliRunner().invoke(cli, [*base, "--season", "ARG=07-01", "FRA=01-01", "--targets",
                                   "ARG", "-o", str(tmp_path / "x")])  # fmt: skip
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "x/config.json").read_text())["config"]
    assert saved["seasons"] == {"ARG": "07-01"}  # France is on 01-01 already
    res = CliRunner().invoke(
        cli, [*base, "--season", "--targets", "ARG", "-o", str(tmp_path / "y")]
    )
    assert res.exit_code == 2 and "--season names no season before --targets" in res.output
