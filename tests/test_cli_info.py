"""`cropglobe info`, `simulate` and `demo` from the command line, including bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cropglobe.cli.main import cli


def test_info_monthly_parquet_matches_data_md(shared_data) -> None:
    res = CliRunner().invoke(
        cli, ["info", str(shared_data / "worldcereal" / "s2_monthly_long.parquet"), "--json"]
    )
    assert res.exit_code == 0, res.output
    counts = json.loads(res.stdout)["class_counts"]
    # DATA.md's "other" (crop6) less the samples whose ewoc_code names no crop (0 "Unknown",
    # unspecified cereals, oilseeds or cropland), which are unlabelled
    assert counts["CAN"] == {
        "corn": 517,
        "soybeans": 562,
        "wheat": 853,
        "other": 1479,
        "<unlabelled>": 210,
        "total": 3621,
    }
    assert counts["FRA"] == {
        "corn": 94,
        "soybeans": 13,
        "wheat": 62,
        "other": 824,
        "<unlabelled>": 7,
        "total": 1000,
    }
    assert counts["BEL"]["corn"] == 5 and counts["BEL"]["other"] == 24
    assert counts["BEL"]["<unlabelled>"] == 20


def test_info_cawa_with_plot(shared_data, tmp_path) -> None:
    png = tmp_path / "cawa.png"
    res = CliRunner().invoke(
        cli, ["info", str(shared_data / "cawa"), "--group-by", "region", "--plot", str(png)]
    )
    assert res.exit_code == 0, res.output
    assert "8,435 samples" in res.output and "16-day" in res.output
    assert png.stat().st_size > 10_000


def test_simulate_then_info_plot(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "simulate",
            "-o",
            str(tmp_path / "w"),
            "--countries",
            "FRA,ARG",
            "--n-per-country",
            "60",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    png = tmp_path / "ndvi.png"
    res = runner.invoke(cli, ["info", str(tmp_path / "w"), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: p / "missing.parquet", "missing.parquet"),
        (lambda p: _bad_parquet(p), "bad.parquet"),
        (lambda p: _bad_dates(p), "date"),
        (lambda p: _empty(p / "world.npz"), "world.npz"),
        (lambda p: "", "'PATH': is empty"),
    ],
)
def test_info_bad_input_one_line(tmp_path, make, expect) -> None:
    path = make(tmp_path)
    res = CliRunner().invoke(cli, ["info", str(path)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expect in lines[0]


def _empty(path):
    path.write_bytes(b"")
    return path


def test_an_empty_file_met_anywhere_is_one_line() -> None:
    import click

    from cropglobe.cli._common import handle_errors

    @click.command()
    @handle_errors
    def read() -> None:
        raise EOFError("No data left in file")

    res = CliRunner().invoke(read, [])
    assert res.exit_code == 2
    assert res.output.strip() == (
        "Error: a file ended unexpectedly (No data left in file); it is empty or truncated"
    )


def _bad_parquet(p):
    path = p / "bad.parquet"
    pd.DataFrame({"foo": [1, 2], "bar": [3, 4]}).to_parquet(path)
    return path


def _bad_dates(p):
    path = p / "tidy.csv"
    pd.DataFrame(
        {
            "sample_id": ["a", "a"],
            "date": ["2023-05-01", "not-a-date"],
            "B04": [1.0, 2.0],
            "B08": [3.0, 4.0],
            "label": ["corn", "corn"],
        }
    ).to_csv(path, index=False)
    return path


def test_demo_small(tmp_path) -> None:
    """The demo pipeline end to end with the fast methods and a tiny world."""
    res = CliRunner().invoke(
        cli,
        [
            "demo",
            "-o",
            str(tmp_path / "d"),
            "--n-per-country",
            "60",
            "--seeds",
            "1",
            "--methods",
            "rf-median1d",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "d" / "transfer" / "report.html").exists()
    assert "cross-hemisphere" in res.output and "rf-median1d:" in res.output
    settings = json.loads((tmp_path / "d" / "demo.json").read_text())
    assert settings["cropnet_width"] == 64
    identity = json.loads((tmp_path / "d" / "transfer" / "config.json").read_text())["identity"]
    assert identity["model_options"] == {"cropnet": {"width": 64}}


def test_demo_findings_state_augmentation_with_its_interval() -> None:
    from cropglobe.demo import findings
    from cropglobe.evaluate.metrics import aggregate_runs

    rows = []
    # augmentation adds 1, 2, 3 points cross-country and 10, 12, 14 cross-hemisphere
    for seed, (dc, dh) in zip((1, 2, 3), ((1, 10), (2, 12), (3, 14)), strict=True):
        for target, scen, d in (("BEL", "cross-country", dc), ("ARG", "cross-hemisphere", dh)):
            for method, oa in (("cropnet", 0.6), ("cropnet-aug", 0.6 + d / 100)):
                rows.append(
                    {
                        "method": method,
                        "source": "FRA",
                        "target": target,
                        "seed": seed,
                        "scenario": scen,
                        "oa": oa,
                        "macro_f1": oa,
                        "weighted_f1": oa,
                    }
                )
    runs = pd.DataFrame(rows)
    agg = aggregate_runs(runs, ["method", "source", "target", "scenario"])
    line = findings(agg, runs)[-1]
    # mean ± t(0.975, 2) * sd / sqrt(3): 2 ± 2.5 and 12 ± 5.0
    assert line == (
        "augmentation (cropnet-aug − cropnet, OA points, 95 % CI over seeds): cross-country "
        "+2.0 (-0.5 … +4.5), cross-hemisphere +12.0 (+7.0 … +17.0); largest gain: "
        "cross-hemisphere"
    )
    assert "CI" not in findings(agg)[-1]
    same = runs.assign(oa=0.6)  # augmentation changes nothing (e.g. a one-epoch demo)
    line = findings(aggregate_runs(same, ["method", "source", "target", "scenario"]))[-1]
    assert line.endswith("cross-country +0.0, cross-hemisphere +0.0; no gain in any scenario")


def test_demo_with_other_settings_leaves_the_folder_alone(tmp_path) -> None:
    args = ["demo", "-o", str(tmp_path / "d"), "--seeds", "1", "--methods", "rf-median1d", "-q"]
    assert CliRunner().invoke(cli, [*args, "--n-per-country", "60"]).exit_code == 0
    files = sorted(p for p in (tmp_path / "d").rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    res = CliRunner().invoke(cli, [*args, "--n-per-country", "70"])
    assert res.exit_code == 2 and "differs in --n-per-country)" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert [p.stat().st_mtime_ns for p in files] == stamps


def test_demo_refuses_other_folders_and_damaged_settings(tmp_path) -> None:
    args = ["--n-per-country", "60", "--seeds", "1", "--methods", "rf-median1d", "-q"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "phenology_ndvi.png").write_text("mine")
    res = CliRunner().invoke(cli, ["demo", "-o", str(other), *args])
    assert res.exit_code == 2 and "already holds other files and no demo" in res.output
    assert sorted(p.name for p in other.iterdir()) == ["phenology_ndvi.png"]
    assert (other / "phenology_ndvi.png").read_text() == "mine"
    for i, text in enumerate((b"[]", b"null", b"\xff\xfe", b"{")):
        damaged = tmp_path / f"damaged{i}"
        damaged.mkdir()
        (damaged / "demo.json").write_bytes(text)
        res = CliRunner().invoke(cli, ["demo", "-o", str(damaged), *args])
        assert res.exit_code == 2 and "demo.json is damaged" in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "f" / "x"), *args[:-3], "bogus"])
    assert res.exit_code == 2 and "bogus" in res.output and not (tmp_path / "f").exists()


def test_demo_stopped_before_any_run_takes_new_settings(tmp_path) -> None:
    """A first try stopped before any run finished (only demo.json and the world written)
    does not block a corrected retry."""
    out = tmp_path / "d"
    out.mkdir()
    (out / "demo.json").write_text(json.dumps({"epochs": 3}))
    args = ["demo", "-o", str(out), "--n-per-country", "60", "--seeds", "1", "-q"]
    res = CliRunner().invoke(cli, [*args, "--methods", "rf-median1d"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "demo.json").read_text())["n_per_country"] == 60


def test_info_splits_by_the_asked_column(tmp_path) -> None:
    from cropglobe.simulate import simulate_world

    world = simulate_world(("FRA", "BEL"), 30, random_state=1)
    world.meta["year"] = np.where(world.meta["country"] == "FRA", 2021, 2022)
    path = tmp_path / "w.npz"
    world.save(path)
    res = CliRunner().invoke(cli, ["info", str(path), "--group-by", "year", "--json"])
    assert res.exit_code == 0, res.output
    desc = json.loads(res.output)
    assert desc["group_by"] == "year" and set(desc["class_counts"]) == {"2021", "2022"}
    assert desc["class_counts"]["2021"]["total"] == 30


def test_bad_plot_band_fails_before_printing(tmp_path) -> None:
    from cropglobe.simulate import simulate_world

    path = tmp_path / "w.npz"
    simulate_world(("FRA",), 20, random_state=1).save(path)
    res = CliRunner().invoke(cli, ["info", str(path), "--band", "B99", "--plot", "p.png"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [res.output.strip()]
    bands = "B02, B03, B04, B05, B06, B07, B08, B8A, B11, B12"
    assert res.output.strip() == (
        f"Error: --band B99: not a band of the data; its bands are {bands}; give one of them"
    )
    # without --plot too (it used to be ignored), and a near spelling is suggested
    res = CliRunner().invoke(cli, ["info", str(path), "--band", "B13"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [res.output.strip()]
    assert res.output.strip().endswith(f"its bands are {bands}; did you mean B12?")
    res = CliRunner().invoke(cli, ["info", str(path), "--band", "nir"])
    assert res.exit_code == 0, res.output
    assert "note: --band B08 chooses the band of the --plot figure" in res.stderr


def test_info_plot_of_ndvi_without_red_or_nir_names_the_bands(tmp_path) -> None:
    src = tmp_path / "t.csv"
    pd.DataFrame(
        {"sample_id": ["a", "b"], "date": ["2023-05-01"] * 2, "B04": [1000.0, 2000.0],
         "B11": [3000.0, 3000.0], "label": ["corn", "wheat"], "country": ["FRA"] * 2}
    ).to_csv(src, index=False)  # fmt: skip
    res = CliRunner().invoke(cli, ["info", str(src), "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [res.output.strip()]
    assert "--band NDVI: the data have no NDVI band, nor B04 (red) and B08 (NIR)" in res.output
    assert "their bands are B04, B11; choose one of them with --band" in res.output


def test_info_plot_leaves_months_without_observations_empty(tmp_path, monkeypatch) -> None:
    # a country observed January-July only: its curve must stop in July, not carry July on

    rows = []
    for country, months in (("BEL", range(1, 8)), ("FRA", range(1, 13))):
        for i in range(4):
            for m in months:
                rows.append(
                    {
                        "sample_id": f"{country}{i}",
                        "date": f"2022-{m:02d}-15",
                        "B04": 500.0,
                        "B08": 1000.0 + 100 * m,
                        "label": "wheat",
                        "country": country,
                    }
                )
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    seen = _capture_curves(monkeypatch)
    res = CliRunner().invoke(cli, ["info", str(path), "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    bel, fra = seen["BEL"]["wheat"][0], seen["FRA"]["wheat"][0]
    assert len(bel) == 12 and np.isnan(bel[7:]).all() and not np.isnan(bel[:7]).any()
    assert not np.isnan(fra).any()
    np.testing.assert_allclose(fra[:7], bel[:7])


def test_cli_prints_a_repeated_warning_once() -> None:
    import logging

    from cropglobe.cli._common import _SaidOnce

    said = _SaidOnce()

    def record(level: int, msg: str, *args: object, name: str = "cropglobe.x") -> bool:
        return said.filter(logging.LogRecord(name, level, __file__, 1, msg, args, None))

    assert record(logging.WARNING, "32 of %d pixels are short", 2630)
    assert not record(logging.WARNING, "32 of 2630 pixels are short")  # the same words again
    assert record(logging.WARNING, "33 of %d pixels are short", 2630)  # news
    assert record(logging.WARNING, "32 of 2630 pixels are short", name="cropglobe.y")
    assert record(logging.INFO, "progress") and record(logging.INFO, "progress")


def test_info_of_empty_inputs_is_one_line(tmp_path) -> None:
    from cropglobe.series import SeriesSet, TimeGrid

    csv = tmp_path / "header_only.csv"
    csv.write_text("sample_id,date,B04\n")
    npz = tmp_path / "h.npz"
    SeriesSet(np.zeros((0, 1, 12), np.float32), ("B04",), TimeGrid.monthly()).save(npz)
    for path in (csv, npz):
        res = CliRunner().invoke(cli, ["info", str(path)])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: no observations in {path}")


def _with_empty_band(path):
    """Two samples, B04/B08 with one gap in four rows, B8A empty everywhere (as WorldCereal's)."""
    pd.DataFrame(
        {
            "sample_id": ["a", "a", "b", "b"],
            "date": ["2023-05-01", "2023-06-01", "2023-05-01", "2023-06-01"],
            "B04": [0.1, np.nan, 0.1, 0.1],
            "B08": [0.5, 0.6, 0.5, 0.6],
            "B8A": [np.nan] * 4,
            "label": ["corn", "corn", "wheat", "wheat"],
            "country": ["FRA"] * 4,
        }
    ).to_csv(path, index=False)
    return path


def test_info_shows_each_bands_missing_share_and_flags_empty_bands(tmp_path, caplog) -> None:
    src = _with_empty_band(tmp_path / "t.csv")
    res = CliRunner().invoke(cli, ["info", str(src), "--json"])
    assert res.exit_code == 0, res.output
    desc = json.loads(res.stdout)
    assert desc["band_missing_fraction"] == {"B04": 0.25, "B08": 0.0, "B8A": 1.0}
    assert desc["empty_bands"] == ["B8A"]
    res = CliRunner().invoke(cli, ["info", str(src)])
    assert res.exit_code == 0, res.output
    assert "missing by band: B04 25.0 %, B08 0.0 %, B8A 100.0 % (no value)" in res.output
    assert "bands with no value at all: B8A (models would learn nothing" in res.output
    # a composited set says the same (B8A empty over samples and steps)
    npz = tmp_path / "s.npz"
    assert (
        CliRunner()
        .invoke(cli, ["composite", str(src), "-o", str(npz), "--grid", "monthly"])
        .exit_code
        == 0
    )
    res = CliRunner().invoke(cli, ["info", str(npz), "--json"])
    desc = json.loads(res.stdout)
    assert desc["empty_bands"] == ["B8A"] and desc["band_missing_fraction"]["B8A"] == 1.0
    assert desc["band_missing_fraction"]["B08"] == 0.0  # gap filled


def test_plotting_a_band_without_values_is_one_line(tmp_path) -> None:
    src = _with_empty_band(tmp_path / "t.csv")
    png = tmp_path / "p.png"
    res = CliRunner().invoke(cli, ["info", str(src), "--plot", str(png), "--band", "B8A"])
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--band B8A: no value to plot" in errors[0]
    assert "Traceback" not in res.output and not png.exists()
    assert "bands with values: B04 B08" in errors[0]


@pytest.mark.parametrize("name, got", [("x.txt", "got .txt"), ("curves", "got no suffix")])
def test_info_plot_path_must_be_a_png(tmp_path, name, got) -> None:
    src = _with_empty_band(tmp_path / "t.csv")
    target = tmp_path / name
    res = CliRunner().invoke(cli, ["info", str(src), "--plot", str(target)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: --plot {target}:")
    assert got in lines[0] and lines[0].endswith(f"e.g. --plot {target.stem}.png")
    assert not target.exists()


def test_info_plot_of_unlabelled_data_draws_one_curve_per_group(tmp_path, monkeypatch) -> None:

    rows = [
        {"sample_id": f"s{i}", "date": f"2022-{m:02d}-15", "B04": 500.0, "B08": 1000.0 + 50 * m}
        for i in range(5)
        for m in range(1, 13)
    ]
    path = tmp_path / "nolab.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    seen = _capture_curves(monkeypatch)
    res = CliRunner().invoke(cli, ["info", str(path), "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    mean, _, n = seen["all"]["all samples (unlabelled)"]
    assert n == 5
    np.testing.assert_allclose(mean[0], (1050 - 500) / (1050 + 500), rtol=1e-5)


def _capture_curves(monkeypatch) -> dict:
    """The class-mean curves `info --plot` would draw, collected instead of drawn."""
    import cropglobe.report.figures as figures

    seen: dict = {}

    def capture(ss, png, **kw):
        seen.update(figures.class_mean_curves(ss, group_by=kw["group_by"], band=kw["band"]))
        png.write_bytes(b"png")

    monkeypatch.setattr(figures, "plot_phenology", capture)
    return seen


# ----------------------------------------------------------------------------- season check
def _southern_table(path):
    """Tidy ARG table, label year 2023: observations July 2022 – June 2023, NDVI peak
    1 February 2023 (corn and soybeans alike)."""
    dates = pd.date_range("2022-07-01", "2023-06-30", freq="10D")
    nd = 0.15 + 0.7 * np.exp(-(((dates - pd.Timestamp("2023-02-01")).days.to_numpy() / 35.0) ** 2))
    rows = [
        pd.DataFrame(
            {
                "sample_id": f"ARG_{i}",
                "date": dates.strftime("%Y-%m-%d"),
                "B04": 800.0,
                "B08": 800.0 * (1 + nd) / (1 - nd),
                "label": lab,
                "year": 2023,
                "country": "ARG",
            }
        )
        for i, lab in enumerate(["corn", "soybeans"] * 3)
    ]
    pd.concat(rows).to_csv(path, index=False)
    return path


def test_info_flags_an_unaligned_table_and_its_fix_works(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _southern_table(tmp_path / "arg.csv")
    res = CliRunner().invoke(cli, ["info", "arg.csv"])
    assert res.exit_code == 0, res.output
    assert "ARG: 2 of 2 class peaks lie outside days 121–334" in res.output
    assert "corn day 31.1 (Jan)" in res.output and "looks unaligned" in res.output  # 1 Feb
    fix = "cropglobe composite arg.csv -o arg_07-01.npz --anchor 07-01"
    assert f"      fix: {fix}\n" in res.output
    res = CliRunner().invoke(cli, [*fix.split()[1:], "-q"])  # the fix, as printed
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["info", "arg_07-01.npz", "--json"])
    check = json.loads(res.stdout)["season_check"]
    assert check["anchor"] == "07-01" and check["findings"] == []
    res = CliRunner().invoke(cli, ["info", "arg_07-01.npz"])
    assert "years: 2022 (6); dates 2022-07-01 … 2023-06-30" in res.output
    assert "season check: every class's mean NDVI peaks inside days 121–334" in res.output


def test_info_names_each_unaligned_country_file_and_the_fix_works(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["-o", "w", "--countries", "ARG,AUS,USA", "--n-per-country", "60"]
    res = runner.invoke(cli, ["simulate", *args, "--calendar-months-south", "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["info", "w", "--json"])
    found = {f["group"]: f for f in json.loads(res.stdout)["season_check"]["findings"]}
    assert found["ARG"]["unaligned"] and found["AUS"]["unaligned"]  # AUS: cotton, sugarcane
    assert "USA" not in found or not found["USA"]["unaligned"]
    aus = found["AUS"]["fix"]
    assert aus.startswith(
        "cropglobe composite w/for_CropNet/median_S2_AUS_month1-12_day5.npz -o "
        "median_S2_AUS_month1-12_day5_07-01.npz --anchor 07-01 --wrap-season"
    )
    res = runner.invoke(cli, [*aus.split(" (or")[0].split()[1:], "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["info", "median_S2_AUS_month1-12_day5_07-01.npz", "--json"])
    assert not any(f["unaligned"] for f in json.loads(res.stdout)["season_check"]["findings"])


def test_info_season_check_is_skipped_without_ndvi(tmp_path) -> None:
    from cropglobe.series import SeriesSet, TimeGrid

    path = tmp_path / "b02.npz"
    SeriesSet(np.ones((2, 1, 12), np.float32), ("B02",), TimeGrid.monthly()).save(path)
    res = CliRunner().invoke(cli, ["info", str(path)])
    assert res.exit_code == 0, res.output
    assert "season check: skipped (no NDVI band, nor B08 and B04" in res.output
    table = tmp_path / "t.csv"  # a sample without a year: counted, not composited
    table.write_text("sample_id,date,B04,B08,label,year\na,2023-05-01,1,5,corn,\n"
                     "b,2023-05-01,1,5,corn,2023\n")  # fmt: skip
    res = CliRunner().invoke(cli, ["info", str(table)])
    assert res.exit_code == 0, res.output
    assert "season check: skipped (the observations do not composite: samples column 'year'" in (
        res.output
    )


@pytest.mark.realdata
def test_info_real_cawa_shows_its_years_and_dates(shared_data) -> None:
    res = CliRunner().invoke(cli, ["info", str(shared_data / "cawa")])
    assert res.exit_code == 0, res.output
    assert (
        "years: 2008 (26), 2011 (213), 2015 (1,299), 2016 (4,069), 2017 (340), 2018 (2,488); "
        "dates 2008-01-01 … 2018-12-31"
    ) in res.output


def test_info_of_a_folder_of_tables_lists_the_files_to_pass(tmp_path) -> None:
    folder = tmp_path / "wc"
    folder.mkdir()
    _southern_table(folder / "a.csv")
    (folder / "samples.csv").write_text("sample_id,label\nARG_0,corn\n")  # not a dataset
    res = CliRunner().invoke(cli, ["info", str(folder)])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert "it holds one dataset file: pass it instead" in line and "samples.csv" not in line
    pd.read_csv(folder / "a.csv").to_parquet(folder / "b.parquet")
    res = CliRunner().invoke(cli, ["info", str(folder)])
    (line,) = res.output.strip().splitlines()
    assert "so which to read is ambiguous; pass one of them:" in line
    assert f"{folder / 'a.csv'} (a long table); {folder / 'b.parquet'} (a long table)" in line


def test_info_of_the_cawa_npz_names_the_folder_to_pass(tmp_path) -> None:
    np.savez(tmp_path / "cawa_ndvi.npz", ndvi=np.zeros((2, 3)), doy=np.array([1, 17, 33]))
    (tmp_path / "CAWa_CropType_time-series.csv").write_text("1,17,33\n")
    res = CliRunner().invoke(cli, ["info", str(tmp_path / "cawa_ndvi.npz")])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.endswith(f"give the folder beside it instead, which holds the same data as CSV "
                         f"tables: {tmp_path}")  # fmt: skip
    assert "read_cawa(" not in line


@pytest.mark.realdata
def test_info_real_folder_of_tables_and_cawa_npz(shared_data) -> None:
    res = CliRunner().invoke(cli, ["info", str(shared_data / "worldcereal")])
    assert res.exit_code == 2 and "ambiguous" in res.output
    for name in (
        "s2_monthly_long.parquet",
        "raw_2022_FRA_LPIS_POLY_110_month.geoparquet",
        "raw_2023_FRA_LPIS_POLY_110_dekad.geoparquet",
    ):
        assert str(shared_data / "worldcereal" / name) in res.output
    res = CliRunner().invoke(cli, ["info", str(shared_data / "cawa" / "cawa_ndvi.npz")])
    assert res.exit_code == 2 and res.output.strip().endswith(str(shared_data / "cawa"))


def test_info_fix_for_a_wide_table_of_series_works(tmp_path, monkeypatch) -> None:
    """A wide table (one column per date) is composited series: its fix re-anchors it."""
    monkeypatch.chdir(tmp_path)
    days = pd.date_range("2023-01-01", "2023-12-31", freq="16D")
    c = (days - pd.Timestamp("2023-01-01")).days.to_numpy()
    nd = 0.2 + 0.6 * np.exp(-(((((c - 30 + 182) % 365) - 182) / 30) ** 2))  # peak 31 January
    cols = {d.strftime("%Y-%m-%d"): v for d, v in zip(days, nd, strict=True)}
    rows = [{"sample_id": f"s{i}", "label": "soybeans", "country": "ARG", **cols} for i in range(4)]
    pd.DataFrame(rows).to_csv("wide.csv", index=False)
    res = CliRunner().invoke(cli, ["info", "wide.csv", "--json"])
    (found,) = json.loads(res.stdout)["season_check"]["findings"]
    assert found["unaligned"] and found["suggested_anchor"] == "07-01"
    fix = found["fix"].split(" (or")[0]
    assert fix == "cropglobe composite wide.csv -o wide_07-01.npz --anchor 07-01 --wrap-season"
    res = CliRunner().invoke(cli, [*fix.split()[1:], "-q"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["info", "wide_07-01.npz", "--json"])
    assert json.loads(res.stdout)["season_check"]["findings"] == []


def test_info_describes_a_model_folder(tmp_path) -> None:
    from cropglobe.simulate import simulate_world
    from cropglobe.workflow import train_to_folder

    world = simulate_world(("FRA",), 60, random_state=0)
    train_to_folder(world, "random_forest", tmp_path / "rf", model_options={"n_estimators": 5},
                    provenance={"path": "world", "country": ["FRA"]})  # fmt: skip
    for given in (tmp_path / "rf", tmp_path / "rf" / "card.json"):
        res = CliRunner().invoke(cli, ["info", str(given)])
        assert res.exit_code == 0, res.output
        lines = res.output.splitlines()
        assert lines[0] == f"{tmp_path / 'rf'} (cropglobe model folder)"
        assert "  model: random_forest" in lines
        present = [world.classes[i] for i in sorted(set(world.labels))]
        assert f"  classes ({len(present)}): {', '.join(present)}" in lines
        grid = "73 × 5-day steps, days 1–365 of a season starting 01-01"
        assert f"  grid: {grid}; the model sees days 121–334" in lines
        assert '  trained on: path "world", country ["FRA"]' in lines
    res = CliRunner().invoke(cli, ["info", str(tmp_path / "rf"), "--json"])
    assert json.loads(res.output)["model"] == "random_forest"


def test_transfer_findings_known_answers() -> None:
    """Leading method per scenario, hardest and easiest target, one augmentation line per
    network run both ways, on hand-made scores (percent)."""
    from cropglobe.report.findings import transfer_findings

    rows = []
    scores = {  # method -> target -> OA %
        "tempcnn": {"BEL": 80.0, "USA": 60.0, "ARG": 50.0},
        "tempcnn-aug": {"BEL": 82.0, "USA": 70.0, "ARG": 65.0},
        "rf-median1d": {"BEL": 90.0, "USA": 58.0, "ARG": 40.0},
    }
    scen = {"BEL": "cross-country", "USA": "cross-continent", "ARG": "cross-hemisphere"}
    for method, per in scores.items():
        for target, oa in per.items():
            rows.append({"method": method, "target": target, "scenario": scen[target],
                         "oa_mean": oa})  # fmt: skip
    lines = transfer_findings(pd.DataFrame(rows))
    assert lines == [
        "tempcnn: cross-country 80.0 %, cross-continent 60.0 %, cross-hemisphere 50.0 % — 30.0 "
        "points lost from cross-country to cross-hemisphere",
        "tempcnn-aug: cross-country 82.0 %, cross-continent 70.0 %, cross-hemisphere 65.0 % — "
        "17.0 points lost from cross-country to cross-hemisphere",
        "rf-median1d: cross-country 90.0 %, cross-continent 58.0 %, cross-hemisphere 40.0 % — "
        "50.0 points lost from cross-country to cross-hemisphere",
        "leading method: cross-country rf-median1d 90.0 % (next tempcnn-aug 82.0 %); "
        "cross-continent tempcnn-aug 70.0 % (next tempcnn 60.0 %); cross-hemisphere "
        "tempcnn-aug 65.0 % (next tempcnn 50.0 %)",
        "hardest target: ARG (51.7 % mean OA over methods and sources); easiest: BEL (84.0 %)",
        "augmentation (tempcnn-aug − tempcnn, OA points): cross-country +2.0, cross-continent "
        "+10.0, cross-hemisphere +15.0; largest gain: cross-hemisphere",
    ]
    assert transfer_findings(pd.DataFrame(rows[:1])) == ["tempcnn: cross-country 80.0 %"]


def test_transfer_findings_name_the_pair_farthest_outside() -> None:
    """With diagnostics: the pair farthest outside, and from four pairs on the rank correlation
    of the share outside with the first method's accuracy (here perfectly falling: ρ = −1,
    which 4 pairs show by chance in 2 of their 24 orderings: p = 0.083, not 0)."""
    from cropglobe.report.findings import transfer_findings

    targets = {"BEL": (90.0, 0.04), "USA": (70.0, 0.20), "CHN": (60.0, 0.45), "ARG": (65.0, 0.3)}
    names = list(targets)
    agg = pd.DataFrame({
        "method": "rf-median1d", "source": "FRA", "target": names, "scenario": "cross-country",
        "oa_mean": [targets[t][0] for t in names],
    })  # fmt: skip
    diag = pd.DataFrame({
        "source": "FRA", "target": names, "domain_auc": 0.9,
        "outside_share": [targets[t][1] for t in names], "lag_days": 0.0,
    })  # fmt: skip
    lines = transfer_findings(agg, diagnostics=diag)
    assert lines[-2:] == [
        "farthest outside its source's range: FRA → CHN (45 % of its fields; about 5 % without "
        "shift)",
        "share outside against rf-median1d's OA over 4 pairs: Spearman ρ = -1.00 (p = 0.083; "
        "negative: the farther outside, the lower the accuracy)",
    ]
    three = transfer_findings(agg[agg.target != "ARG"], diagnostics=diag)
    assert three[-1].startswith("farthest outside its source's range: FRA → CHN")


def test_transfer_findings_call_no_pair_far_outside_when_none_is() -> None:
    """A pair at or below the 5 % expected without shift (CAN → FRA: 0 %) is no warning:
    'farthest outside' is said only of a pair that is."""
    from cropglobe.report.findings import transfer_findings

    agg = pd.DataFrame({"method": "rf-median1d", "source": "CAN", "target": ["FRA"],
                        "scenario": "cross-continent", "oa_mean": [77.8]})  # fmt: skip
    diag = pd.DataFrame({"source": "CAN", "target": ["FRA"], "domain_auc": 0.99,
                         "outside_share": [0.0], "lag_days": 0.0})  # fmt: skip
    assert transfer_findings(agg, diagnostics=diag)[-1] == (
        "no pair lies far outside its source's range: at most CAN → FRA (0 % of its fields; "
        "about 5 % without shift)"
    )


def test_info_names_cropglobe_outputs_that_are_no_dataset(tmp_path) -> None:
    """A predictions table, an experiment folder and its scores are named as what they are,
    not as a 'tidy layout' short of a date column or an unknown folder."""

    pd.DataFrame({"sample_id": ["a"], "label": ["corn"], "predicted": ["corn"],
                  "confidence": [0.9], "p_corn": [0.9]}).to_parquet(
        tmp_path / "p.parquet"
    )  # fmt: skip
    pd.DataFrame({"method": ["rf"], "source": ["A"], "target": ["B"],
                  "oa_mean": [80.0]}).to_csv(tmp_path / "results.csv", index=False)  # fmt: skip
    (tmp_path / "exp" / "runs").mkdir(parents=True)
    (tmp_path / "exp" / "config.json").write_text("{}")
    for name, said in (("p.parquet", "a predictions table of cropglobe predict"),
                       ("results.csv", "the scores table of a cropglobe transfer experiment"),
                       ("exp", "is not a transfer experiment's config")):  # fmt: skip
        res = CliRunner().invoke(cli, ["info", str(tmp_path / name)])
        assert res.exit_code == 2 and said in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1


def test_info_summarises_a_transfer_experiment(tmp_path) -> None:
    """An experiment folder: its plan, its finished runs and its scores, in text and JSON."""
    exp = tmp_path / "exp"
    for seed in (1, 2):
        (exp / "runs" / "rf-median1d" / "FRA" / f"seed{seed}").mkdir(parents=True)
        (exp / "runs" / "rf-median1d" / "FRA" / f"seed{seed}" / "metrics.json").write_text("{}")
    config = {"methods": ["rf-median1d", "cropnet"], "sources": ["FRA"], "targets": ["BEL"],
              "seeds": [1, 2], "group_by": "country", "protocol": "clean",
              "window": [121, 334], "feature_options": {"harmonic": {"n_harmonics": 1}},
              "model_options": {}}  # fmt: skip
    (exp / "config.json").write_text(json.dumps({"identity": {}, "config": config}))
    res = CliRunner().invoke(cli, ["info", str(exp)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1:] == [
        "methods: rf-median1d, cropnet",
        "sources: FRA; targets: BEL (group by country)",
        "seeds: 1, 2; protocol clean; finished runs: 2 of 4",
        "window: 121-334; features {'harmonic': {'n_harmonics': 1}}",
        "no scores yet: rerun the same transfer command to finish the runs",
    ]
    pd.DataFrame({"method": ["rf-median1d"], "source": "FRA", "target": "BEL",
                  "scenario": "cross-country", "oa_mean": [81.25], "oa_std": [1.5],
                  "macro_f1_mean": [70.0], "macro_f1_std": [0.25],
                  "n_runs": [2]}).to_csv(exp / "results.csv", index=False)  # fmt: skip
    res = CliRunner().invoke(cli, ["info", str(exp)])
    assert res.output.splitlines()[-1] == (
        "  rf-median1d: FRA → BEL (cross-country): 81.2 ± 1.5 / 70.0 ± 0.2 (2 seeds)"
    )
    got = json.loads(CliRunner().invoke(cli, ["info", str(exp), "--json"]).output)
    assert (got["finished_runs"], got["planned_runs"], got["report"]) == (2, 4, None)
    assert got["results"][0]["oa_mean"] == 81.25
    res = CliRunner().invoke(cli, ["info", str(exp), "--plot", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "--plot and --where apply to datasets" in res.output


def test_transfer_findings_start_from_the_source_s_own_hold_out() -> None:
    """With --within, the loss runs from the hold-out (the nearest scenario) to the farthest,
    and the hold-out is no target to call easiest."""
    from cropglobe.report.findings import transfer_findings

    agg = pd.DataFrame({
        "method": "rf-median1d", "source": "FRA", "target": ["FRA", "BEL", "ARG"],
        "scenario": ["within-country", "cross-country", "cross-hemisphere"],
        "oa_mean": [95.0, 80.0, 60.0],
    })  # fmt: skip
    assert transfer_findings(agg) == [
        "rf-median1d: within-country 95.0 %, cross-country 80.0 %, cross-hemisphere 60.0 % — "
        "35.0 points lost from within-country to cross-hemisphere",
        "hardest target: ARG (60.0 % mean OA over methods and sources); easiest: BEL (80.0 %)",
    ]


def test_info_says_how_a_network_was_augmented_and_its_hyperparameters(tmp_path) -> None:
    """The card tells online augmentation from the release's offline copies, and CropNet's
    width; info's summary showed neither (a width-64 CropNet read like the paper's)."""
    from cropglobe.models import ModelCard, create_model, save_model
    from cropglobe.series import TimeGrid

    model = create_model("cropnet", 3, 2, 43, width=16)
    augment = {"name": "Compose", "members": [{"name": "TimeShift"}, {"name": "TimeScale"}]}
    for offline, said in ((True, "(offline: the originals + 2 augmented copies)"),
                          (False, "(online: fresh draws every batch)")):  # fmt: skip
        card = ModelCard(model="cropnet", params=model.config, bands=("B04", "B08"),
                         grid=TimeGrid.cropglobe(), classes=("a", "b", "c"), window=(121, 334),
                         training={"protocol": "paper", "augment": augment,
                                   "offline": offline, "copies": 2})  # fmt: skip
        save_model(tmp_path / "m", model, card)
        res = CliRunner().invoke(cli, ["info", str(tmp_path / "m")])
        assert res.exit_code == 0, res.output
        lines = res.output.splitlines()
        assert f"  training: protocol paper, augment TimeShift+TimeScale {said}" in lines
        assert "  hyperparameters: width 16, dropout [0.2, 0.3, 0.3, 0.4]" in lines
