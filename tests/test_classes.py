"""Class vocabularies, label mappings and the country table."""

from __future__ import annotations

import numpy as np
import pytest

from cropglobe.bands import canonical_band, canonical_bands, ndvi
from cropglobe.classes import (
    CROPGLOBE_CLASSES,
    cawa_table,
    collapse_to_target,
    country,
    ewoc_is_unspecified,
    ewoc_to_cropglobe,
    map_labels,
    normalise_country,
)
from cropglobe.errors import BandError, DataFormatError, LabelError


def test_vocabulary_ids() -> None:
    assert CROPGLOBE_CLASSES.index("corn") == 0 and CROPGLOBE_CLASSES.index("other") == 6
    assert len(CROPGLOBE_CLASSES) == 7


def test_target_rules() -> None:
    pred = np.arange(7)
    np.testing.assert_array_equal(collapse_to_target(pred, "AUS"), [6, 6, 6, 6, 4, 5, 6])
    np.testing.assert_array_equal(collapse_to_target(pred, "CHN"), [0, 1, 2, 6, 6, 6, 6])
    np.testing.assert_array_equal(collapse_to_target(pred, "ARG"), [0, 1, 2, 6, 4, 5, 6])
    np.testing.assert_array_equal(collapse_to_target(pred, "FRA"), pred)
    # classes the target's labels hold are mapped there, whatever the rule
    np.testing.assert_array_equal(
        collapse_to_target(pred, "ARG", mapped=[3]), [0, 1, 2, 3, 4, 5, 6]
    )
    np.testing.assert_array_equal(
        collapse_to_target(pred, "AUS", mapped=[0, 6, -1]), [0, 6, 6, 6, 4, 5, 6]
    )


def test_label_tables() -> None:
    assert map_labels(["Maize", "soya beans", "winter wheat", "other"]).tolist() == [0, 1, 3, 6]
    assert ewoc_to_cropglobe(1101060000) == "corn"
    assert ewoc_to_cropglobe(1101010001) == "wheat"
    assert ewoc_to_cropglobe(1106000020) == "soybeans"
    assert ewoc_to_cropglobe(1101020001) == "other"  # barley
    assert map_labels([1101060000, 1106000030], "ewoc").tolist() == [0, 6]


def test_ewoc_codes_that_name_no_crop_are_unlabelled() -> None:
    """An unknown crop may be maize or wheat: 0 ("Unknown") and codes above the crop level
    are unlabelled (−1), while known non-target land covers and crops stay "other"."""
    unspecified = [0, 1000000000, 1100000000, 1101000000, 1101000001, 1106000000, 1108000000]
    known_other = [
        1101020001,  # winter barley
        1114000000,  # mixed arable crops
        1115000000,  # fallow
        1200000000,  # permanent crops
        1500000000,  # greenhouse
        2501000000,  # grassland with trees and shrubs
        4000000000,  # trees
        4102000040,  # oak
    ]
    assert [ewoc_is_unspecified(c) for c in unspecified] == [True] * len(unspecified)
    assert [ewoc_is_unspecified(c) for c in known_other] == [False] * len(known_other)
    assert ewoc_to_cropglobe(0) is None and ewoc_to_cropglobe("11-01-00-000-0") is None
    assert ewoc_to_cropglobe(4000000000) == "other"
    assert ewoc_to_cropglobe("11-01-06-000-0") == "corn"
    codes = [0, 1101060000, None, 1101000000, 1115000000, "1106000000.0", 1106000020]
    assert map_labels(codes, "ewoc").tolist() == [-1, 0, -1, -1, 6, -1, 1]
    assert map_labels(["cotton", "wheat-rice", "maize", "orchard"], "cawa").tolist() == [5, 6, 0, 6]
    assert cawa_table("summer")("wheat-rice") == "rice"
    with pytest.raises(LabelError, match="barley"):
        map_labels(["barley"])
    assert map_labels(["barley"], default="other").tolist() == [6]


def test_countries() -> None:
    assert normalise_country("be") == "BEL"
    c = country("ARG")
    assert c.hemisphere == "south" and "wheat" not in c.classes
    assert country("AUS").classes == ("sugarcane", "cotton", "other")
    with pytest.raises(DataFormatError, match="known ISO3"):
        country("XYZ")


def test_band_names() -> None:
    assert canonical_band("S2-L2A-B02") == "B02"
    assert canonical_band("b8a") == "B8A"
    assert canonical_band("B2") == "B02"
    assert canonical_band("S1-SIGMA0-VV") == "VV"
    assert canonical_band("ndvi") == "NDVI"
    assert canonical_band("R0552") == "R0552"
    with pytest.raises(BandError, match="repeat"):
        canonical_bands(["B2", "B02"])


def test_ndvi_known_values() -> None:
    v = np.array([[[1000.0, 0.0], [3000.0, 0.0]]])  # bands B04, B08
    out = ndvi(v, ("B04", "B08"))
    assert out[0, 0] == pytest.approx(0.5)
    assert np.isnan(out[0, 1])


def test_country_table_is_consistent() -> None:
    from cropglobe.classes import country_table

    table = country_table()
    assert table.index.is_unique and table["iso2"].is_unique
    north = table["lat"] > 0
    assert ((table["hemisphere"] == "north") == north).all()  # Kenya (0.5° N) included
    assert set(table["continent"]) == {
        "Africa",
        "Asia",
        "Europe",
        "North America",
        "Oceania",
        "South America",
    }
    # transcontinental countries take the continent of most of their cropland
    assert table.loc[["RUS", "TUR", "KAZ", "EGY"], "continent"].tolist() == [
        "Europe",
        "Asia",
        "Asia",
        "Africa",
    ]


def test_scenarios_of_groups_by_their_countries() -> None:
    from cropglobe.evaluate.transfer import _scenario

    countries = {
        "fra": ("FRA",),
        "fra2": ("FRA",),
        "be": ("BEL",),
        "bel": ("BEL",),
        "fra+bel": ("BEL", "FRA"),
        "bel+arg": ("ARG", "BEL"),
        "fra+usa": ("FRA", "USA"),
        "chn": ("CHN",),
        "xyz": ("XYZ",),
        "none": (),
    }
    cases = {
        ("fra", "fra"): "within-region",  # a group's own hold-out
        ("fra", "fra2"): "cross-region",  # one country
        ("be", "bel"): "cross-region",  # two spellings of one country
        ("fra+bel", "bel"): "cross-region",  # the target's country was seen in training
        ("fra", "bel"): "cross-country",
        ("fra", "bel+arg"): "mixed",  # BEL cross-country, ARG cross-hemisphere
        ("fra+usa", "chn"): "cross-continent",  # from the nearest source country
        ("fra", "xyz"): "unknown",
        ("fra", "none"): "cross-region",
    }
    for (s, t), tag in cases.items():
        assert _scenario(s, t, "region", countries) == tag, (s, t)
