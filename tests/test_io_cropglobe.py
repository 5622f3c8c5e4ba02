"""CropGlobe release layout: reader, writer, feature files, listing and read_dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cropglobe.bands import S2_BANDS
from cropglobe.classes import CROPGLOBE_CLASSES
from cropglobe.errors import (
    BandError,
    CropGlobeError,
    DataFormatError,
    GridError,
    LabelError,
    MissingFileError,
)
from cropglobe.io import (
    list_cropglobe,
    read_cropglobe,
    read_cropglobe_features,
    read_cropglobe_file,
    read_dataset,
    write_cropglobe,
)
from cropglobe.series import SeriesSet, TimeGrid


def _set(
    n: int = 20, seed: int = 0, bands: tuple[str, ...] = S2_BANDS, cc: str = "FRA"
) -> SeriesSet:
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 5000, size=(n, len(bands), 73)).astype(np.float32)
    values[0, 2, 5:9] = np.nan
    labels = rng.choice([0, 1, 3, 6], size=n).astype(np.int64)
    meta = pd.DataFrame({"sample_id": [f"{cc}_{i}" for i in range(n)], "country": cc,
                         "year": 2023})  # fmt: skip
    return SeriesSet(values, bands, TimeGrid.cropglobe(), labels, CROPGLOBE_CLASSES, meta,
                     {"synthetic": True, "generator": "test"})  # fmt: skip


def _raw(path: Path, fea: np.ndarray, lbl: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, fea=fea, lbl=lbl)
    return path


def _release(root: Path, countries: dict[str, int], seed: int = 0) -> Path:
    """A bare release (fea/lbl only, as the authors ship it)."""
    rng = np.random.default_rng(seed)
    for cc, n in countries.items():
        fea = rng.normal(size=(n, 10, 73)).astype(np.float32)
        lbl = rng.integers(0, 7, size=n)
        _raw(root / "for_CropNet" / f"median_S2_{cc}_month1-12_day5.npz", fea, lbl)
        _raw(root / "Median" / f"median_S2_{cc}_month5-11_day5.npz", fea[:, :, 24:67], lbl)
    return root


def test_roundtrip_seriesset_npz(tmp_path: Path) -> None:
    fra, bel = _set(20, 0, cc="FRA"), _set(7, 1, cc="BEL")
    paths = write_cropglobe(tmp_path, {"FRA": fra, "BEL": bel})
    assert {p.relative_to(tmp_path).as_posix() for p in paths} == {
        "for_CropNet/median_S2_FRA_month1-12_day5.npz",
        "Median/median_S2_FRA_month5-11_day5.npz",
        "for_CropNet/median_S2_BEL_month1-12_day5.npz",
        "Median/median_S2_BEL_month5-11_day5.npz",
    }
    with np.load(paths[0], allow_pickle=False) as z:  # the paper's own loader still works
        assert z["fea"].shape == (20, 10, 73) and z["fea"].dtype == np.float32
        assert z["lbl"].dtype == np.int64
    back = read_cropglobe(tmp_path, countries=["FRA"])
    np.testing.assert_array_equal(back.values, fra.values)  # NaN-equal
    np.testing.assert_array_equal(back.labels, fra.labels)
    assert back.bands == S2_BANDS and back.grid.same_axis(TimeGrid.cropglobe())
    pd.testing.assert_frame_equal(back.meta, fra.meta)
    assert back.attrs["synthetic"] is True and back.attrs["source"] == "cropglobe"
    assert back.attrs["generator"] == "test"

    may = read_cropglobe(tmp_path, countries="FRA", kind="median_maynov")
    assert may.shape == (20, 10, 43)
    assert may.grid.same_axis(TimeGrid.cropglobe().window(121, 334))
    np.testing.assert_array_equal(may.values, fra.values[:, :, 24:67])

    both = read_cropglobe(tmp_path)
    assert both.n_samples == 27 and both.attrs["countries"] == ["BEL", "FRA"]


def test_relabel_and_extra_on_write(tmp_path: Path) -> None:
    ss = _set(10)
    other_order = tuple(reversed(CROPGLOBE_CLASSES))
    shuffled = ss.relabel(other_order)
    write_cropglobe(tmp_path, {"FRA": shuffled}, kinds=("for_CropNet",),
                    extra={"note": "x"})  # fmt: skip
    back = read_cropglobe(tmp_path)
    np.testing.assert_array_equal(back.labels, ss.labels)
    assert back.attrs["note"] == "x"
    assert not (tmp_path / "Median").exists()


def test_write_refuses_bad_input(tmp_path: Path) -> None:
    ss = _set(5)
    foreign = SeriesSet(ss.values, ss.bands, ss.grid, np.zeros(5, np.int64), ("barley",))
    with pytest.raises(LabelError, match="FRA"):
        write_cropglobe(tmp_path, {"FRA": foreign})
    unl = SeriesSet(ss.values, ss.bands, ss.grid, np.full(5, -1), CROPGLOBE_CLASSES)
    with pytest.raises(LabelError, match="unlabelled"):
        write_cropglobe(tmp_path, {"FRA": unl})
    with pytest.raises(GridError, match="73-step"):
        write_cropglobe(tmp_path, {"FRA": ss.select_window(121, 334)})
    with pytest.raises(DataFormatError, match="country code"):
        write_cropglobe(tmp_path, {"F/R": ss})
    assert not list(tmp_path.rglob("*.npz"))  # nothing half-written


def test_bare_release_and_dedup(tmp_path: Path) -> None:
    root = _release(tmp_path / "CropGlobe", {"FRA": 12, "NLD": 5})
    f = root / "for_CropNet" / "median_S2_FRA_month1-12_day5.npz"
    with np.load(f) as z:
        fea, lbl = z["fea"], z["lbl"]
    fea = np.concatenate([fea, fea[:3]])
    lbl = np.concatenate([lbl, lbl[:3]])
    _raw(f, fea, lbl)
    ss = read_cropglobe(root, countries=["fr"])
    assert ss.n_samples == 15 and ss.meta["sample_id"].iloc[14] == "FRA_000014"
    assert "synthetic" not in ss.attrs
    dd = read_cropglobe(root, countries=["FRA"], deduplicate=True)
    assert dd.n_samples == 12
    np.testing.assert_array_equal(dd.values, fea[:12])
    assert set(read_cropglobe(root).meta["country"]) == {"FRA", "NLD"}


def test_list_and_nested_search(tmp_path: Path) -> None:
    root = _release(tmp_path, {"FRA": 4})
    emb = tmp_path / "embeddings" / "deep"
    _raw(emb / "presto_embedding_S2_FRA.npz", np.ones((4, 128), np.float32), np.arange(4))
    _raw(emb / "presto_embedding_S2_FRA_MayNov.npz", np.ones((4, 128), np.float32), np.arange(4))
    _raw(tmp_path / "harm" / "harmonic_FRA_month5-11.npz", np.ones((4, 10, 7)), np.arange(4))
    table = list_cropglobe(root)
    assert sorted(table["kind"]) == ["Median", "for_CropNet", "harmonic", "presto",
                                     "presto_maynov"]  # fmt: skip
    row = table.set_index("kind").loc["for_CropNet"]
    assert row["n_samples"] == 4 and row["shape"] == (4, 10, 73)
    x, y, meta = read_cropglobe_features(root, "harmonic")
    assert x.shape == (4, 70) and x.dtype == np.float32 and y.dtype == np.int64
    assert list(meta["sample_id"]) == ["FRA_000000", "FRA_000001", "FRA_000002", "FRA_000003"]
    x2, _, _ = read_cropglobe_features(root, "presto_maynov", countries=["FRA"])
    assert x2.shape == (4, 128)
    with pytest.raises(MissingFileError, match="alphaearth"):
        read_cropglobe_features(root, "alphaearth")
    with pytest.raises(DataFormatError, match="family"):
        read_cropglobe_features(root, "bogus")


def test_two_files_of_one_country_are_refused(tmp_path: Path) -> None:
    root = _release(tmp_path, {"FR": 3, "FRA": 3, "BEL": 3})
    with pytest.raises(DataFormatError, match=r"median_S2_FR_.*and.*median_S2_FRA_.* both hold"):
        read_cropglobe(root)
    assert read_cropglobe(root, countries=["FRA", "BEL"]).n_samples == 6  # one file each


def test_missing_folder_and_country(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="no such folder"):
        read_cropglobe(tmp_path / "absent")
    root = _release(tmp_path, {"FRA": 3, "BEL": 3})
    with pytest.raises(
        MissingFileError, match=r"median_S2_USA_month1-12_day5\.npz.*\['BEL', 'FRA'\]"
    ):
        read_cropglobe(root, countries=["FRA", "USA"])
    with pytest.raises(DataFormatError, match="kind"):
        read_cropglobe(root, kind="weekly")


@pytest.mark.parametrize(
    ("fea", "lbl", "error", "match"),
    [
        (np.zeros((4, 10 * 73)), np.zeros(4, int), DataFormatError, "2-D"),
        (np.zeros((4, 10, 43)), np.zeros(4, int), DataFormatError, "73"),
        (np.zeros((4, 11, 73)), np.zeros(4, int), BandError, "11 bands"),
        (np.zeros((4, 10, 73)), np.zeros(5, int), DataFormatError, "lbl"),
        (np.zeros((4, 10, 73)), np.array([0, 1, 7, 2]), LabelError, "outside"),
        (np.zeros((4, 10, 73)), np.array([0.5, 1, 2, 2]), LabelError, "integer"),
    ],
)
def test_bad_files(tmp_path: Path, fea: np.ndarray, lbl: np.ndarray,
                   error: type[CropGlobeError], match: str) -> None:  # fmt: skip
    f = _raw(tmp_path / "for_CropNet" / "median_S2_FRA_month1-12_day5.npz", fea, lbl)
    with pytest.raises(error, match=match) as info:
        read_cropglobe(tmp_path)
    assert str(f) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_text_file_named_npz_is_no_archive(tmp_path: Path) -> None:
    f = tmp_path / "for_CropNet" / "median_S2_FRA_month1-12_day5.npz"
    f.parent.mkdir(parents=True)
    f.write_text("not numpy\n")
    with pytest.raises(DataFormatError, match=r"not a readable \.npz archive \(not a zip file"):
        read_cropglobe(tmp_path)


def test_bands_parameter_and_missing_keys(tmp_path: Path) -> None:
    f = _raw(tmp_path / "x.npz", np.zeros((3, 2, 73), np.float32), np.zeros(3, int))
    ss = read_cropglobe_file(f, bands=["b8", "red"])
    assert ss.bands == ("B08", "B04") and ss.meta["country"].iloc[0] == "x"
    with pytest.raises(BandError):
        read_cropglobe_file(f, bands=["B08"])
    twelve = _raw(tmp_path / "t.npz", np.zeros((3, 12, 43), np.float32), np.zeros(3, int))
    assert read_cropglobe_file(twelve).bands[-2:] == ("VV", "VH")
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=np.zeros((3, 10, 73)))
    with pytest.raises(DataFormatError, match="'fea' and 'lbl'"):
        read_cropglobe_file(bad)
    with pytest.raises(MissingFileError):
        read_cropglobe_file(tmp_path / "nope.npz")


def test_read_dataset_dispatch(tmp_path: Path) -> None:
    ss = _set(6)
    write_cropglobe(tmp_path / "rel", {"FRA": ss})
    assert read_dataset(tmp_path / "rel").n_samples == 6  # type: ignore[union-attr]
    single = read_dataset(tmp_path / "rel" / "Median" / "median_S2_FRA_month5-11_day5.npz")
    assert isinstance(single, SeriesSet) and single.n_steps == 43
    saved = ss.save(tmp_path / "set.npz")
    assert isinstance(read_dataset(saved), SeriesSet)
    odd = tmp_path / "odd.npz"
    np.savez(odd, a=np.zeros(3))
    with pytest.raises(DataFormatError, match="expected"):
        read_dataset(odd)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="CropGlobe release folder"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "x.tif").write_bytes(b"")
    with pytest.raises(DataFormatError, match="unknown input"):
        read_dataset(tmp_path / "x.tif")
    with pytest.raises(MissingFileError):
        read_dataset(tmp_path / "missing")


@pytest.mark.realdata
def test_real_cropglobe_format(shared_data: Path) -> None:
    root = shared_data / "cropglobe_format"
    can = read_cropglobe(root, countries=["CAN"])
    assert can.shape == (3620, 10, 73)
    assert can.class_counts().to_dict() == {"corn": 517, "soybeans": 562, "wheat": 853,
                                            "other": 1688}  # fmt: skip
    fra = read_cropglobe(root, countries=["FRA"], kind="median_maynov")
    assert fra.shape == (499, 10, 43)
    assert fra.class_counts().to_dict() == {"corn": 88, "soybeans": 13, "wheat": 61, "other": 337}
    full = read_cropglobe(root, countries=["FRA"])
    np.testing.assert_array_equal(full.values[:, :, 24:67], fra.values)
    listing = list_cropglobe(root)
    assert set(listing["country"]) == {"CAN", "FRA"} and len(listing) == 4


def test_the_file_of_each_country_is_named(tmp_path: Path) -> None:
    root = _release(tmp_path, {"FRA": 3})
    fea = np.random.default_rng(1).normal(size=(2, 10, 73)).astype(np.float32)
    _raw(root / "extra" / "nested" / "median_S2_BEL_month1-12_day5.npz", fea, np.arange(2))
    ss = read_cropglobe(root)
    assert ss.attrs["files"] == {
        "BEL": "extra/nested/median_S2_BEL_month1-12_day5.npz",  # found outside for_CropNet/
        "FRA": "for_CropNet/median_S2_FRA_month1-12_day5.npz",
    }
    from cropglobe.summary import describe, format_description

    text = format_description(describe(ss))
    assert "files: BEL extra/nested/median_S2_BEL_month1-12_day5.npz, FRA for_CropNet/" in text


def test_a_folder_of_median_files_alone_is_read_as_may_november(tmp_path: Path) -> None:
    from cropglobe.io import read_dataset

    root = _release(tmp_path, {"FRA": 3, "BEL": 2})
    ss = read_dataset(root / "Median")  # the release's Median/ folder given on its own
    assert ss.values.shape == (5, 10, 43) and (ss.grid.edges[0], ss.grid.edges[-1]) == (121, 336)
    assert read_dataset(root).values.shape == (5, 10, 73)  # both kinds: the whole year


def test_reader_messages_give_the_command_line_form_of_their_advice(tmp_path: Path) -> None:
    # countries whose files hold different bands: SeriesSet.concat would say select_bands
    # (Python); the reader says which countries to read together, on the command line too
    root = tmp_path / "mixed"
    _raw(root / "for_CropNet" / "median_S2_BEL_month1-12_day5.npz",
         np.zeros((3, 12, 73), np.float32), np.zeros(3, int))  # fmt: skip
    _raw(root / "for_CropNet" / "median_S2_FRA_month1-12_day5.npz",
         np.zeros((3, 10, 73), np.float32), np.zeros(3, int))  # fmt: skip
    with pytest.raises(BandError, match=r"different bands \(BEL: \[.*'VH'\]; FRA: \[") as info:
        read_dataset(root)
    assert """--read-option 'countries=["BEL"]'""" in str(info.value)
    assert "select_bands" not in str(info.value)
    assert read_dataset(root, countries=["BEL"]).bands[-1] == "VH"  # the advice works
    # a file of another kind than asked for, and one with an odd number of bands
    f = _raw(tmp_path / "x.npz", np.zeros((3, 10, 43), np.float32), np.zeros(3, int))
    with pytest.raises(DataFormatError, match=r"pass kind='median_maynov' \(on the command "
                       r"line: --read-option kind=median_maynov\)"):  # fmt: skip
        read_dataset(f, kind="for_CropNet")
    f = _raw(tmp_path / "y.npz", np.zeros((3, 11, 73), np.float32), np.zeros(3, int))
    with pytest.raises(BandError, match=r"""--read-option 'bands=\["B02", …\]'"""):
        read_dataset(f)


def test_a_transposed_fea_is_named_as_such(tmp_path: Path) -> None:
    fea = np.zeros((4, 73, 10), dtype=np.float32)  # (samples, steps, bands)
    f = _raw(tmp_path / "for_CropNet" / "median_S2_FRA_month1-12_day5.npz", fea, np.zeros(4))
    with pytest.raises(DataFormatError, match=r"axes look swapped.*np\.swapaxes\(fea, 1, 2\)"):
        read_cropglobe_file(f)
