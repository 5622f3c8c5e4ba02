"""Class vocabularies, label mappings from other legends, and the per-country tables.

The CropGlobe vocabulary has 7 classes with fixed ids: corn 0, soybeans 1, rice 2, wheat 3,
sugarcane 4, cotton 5, other 6. Other legends (WorldCereal ``crop6`` / ``ewoc_code``, CAWa's
Central-Asian labels, free-text names) map onto it with :func:`map_labels`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cropglobe.errors import DataFormatError, LabelError

__all__ = [
    "CAWA_TO_CROPGLOBE",
    "CROPGLOBE_CLASSES",
    "CROPGLOBE_COUNTRIES",
    "TARGET_CLASS_RULES",
    "Country",
    "class_colors",
    "collapse_to_target",
    "country",
    "country_alias",
    "country_table",
    "encode_labels",
    "ewoc_is_unspecified",
    "ewoc_to_cropglobe",
    "map_labels",
    "normalise_country",
]

#: The CropGlobe vocabulary, index = class id.
CROPGLOBE_CLASSES: tuple[str, ...] = (
    "corn",
    "soybeans",
    "rice",
    "wheat",
    "sugarcane",
    "cotton",
    "other",
)

#: The 8 CropGlobe countries.
CROPGLOBE_COUNTRIES: tuple[str, ...] = ("ARG", "AUS", "BEL", "CHN", "FRA", "GBR", "NLD", "USA")

#: Classes each target keeps when it is evaluated (REFERENCE.md); a prediction of any other
#: class is collapsed to "other". Countries not listed keep every class.
TARGET_CLASS_RULES: dict[str, frozenset[str]] = {
    "AUS": frozenset({"sugarcane", "cotton", "other"}),
    "CHN": frozenset({"corn", "soybeans", "rice", "other"}),
    "ARG": frozenset(set(CROPGLOBE_CLASSES) - {"wheat"}),
}

_CLASS_COLORS = {
    "corn": "#f2c12e",
    "soybeans": "#3f8f3a",
    "rice": "#4aa3df",
    "wheat": "#b5651d",
    "sugarcane": "#9b59b6",
    "cotton": "#e8e8e8",
    "other": "#7f7f7f",
}

#: CAWa (Remelgado et al. 2020) ``label_1`` values -> CropGlobe. Double crops ("wheat-rice",
#: "wheat-maize") are their own agronomic class; by default they map to "other" because no
#: single CropGlobe class describes both seasons. Use ``double_crops="summer"`` in
#: :func:`cawa_table` to map them to their summer crop instead.
CAWA_TO_CROPGLOBE: dict[str, str] = {
    "cotton": "cotton",
    "wheat": "wheat",
    "rice": "rice",
    "maize": "corn",
    "soy": "soybeans",
    "soybean": "soybeans",
}


def cawa_table(double_crops: str = "other") -> Callable[[str], str]:
    """Mapping function for CAWa labels; ``double_crops`` is ``"other"`` or ``"summer"``."""
    if double_crops not in ("other", "summer"):
        raise LabelError(f"double_crops must be 'other' or 'summer', got {double_crops!r}")

    def mapper(label: str) -> str:
        key = str(label).strip().lower()
        if key in CAWA_TO_CROPGLOBE:
            return CAWA_TO_CROPGLOBE[key]
        if "-" in key and double_crops == "summer":
            return CAWA_TO_CROPGLOBE.get(key.split("-")[-1], "other")
        return "other"

    return mapper


# WorldCereal hierarchical crop-type legend (ewoc_code): prefixes of the 10-digit code.
_EWOC_PREFIXES: tuple[tuple[str, str], ...] = (
    ("110101", "wheat"),  # wheat, winter/spring wheat and variants
    ("110106", "corn"),  # maize
    ("110108", "rice"),  # rice
    ("1106000020", "soybeans"),  # soya beans
    ("1108000010", "cotton"),  # cotton (fibre crops)
    ("1107000020", "sugarcane"),  # sugar cane (sugar crops; sugar beet is 1107000031)
)


def _ewoc_text(code: int | str) -> str:
    """An ``ewoc_code`` as its digits (``11-01-06-000-0``, ``1101060000.0`` and
    ``1101060000`` alike)."""
    if not isinstance(code, str):
        return str(int(code))
    text = code.strip().replace("-", "")
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


def ewoc_is_unspecified(code: int | str) -> bool:
    """Whether a WorldCereal ``ewoc_code`` leaves open which crop grows, so that a CropGlobe
    class cannot be given: ``0`` (the legend's "Unknown") and the codes that stop at a level
    of the hierarchy above a CropGlobe class: unspecified cropland (``1000000000``),
    temporary crops (``1100000000``), cereals (``1101000000``, winter ``…1``, spring
    ``…2``), oilseed crops (``1106000000``, soya beans among them), root/tuber and sugar
    crops (``1107000000``), fibre crops (``1108000000``).

    The 10 digits are a hierarchy (group, subgroup, class, crop, season in the last digit):
    a code is unspecified when, season digit dropped and trailing zeros stripped, it is the
    start of a CropGlobe class's prefix. Known non-target land covers stay known ("other"):
    barley, fallow (``1115000000``), mixed arable crops (``1114000000``), greenhouses
    (``1500000000``), grassland with trees (``2501000000``), trees (``4000000000``) …
    """
    text = _ewoc_text(code)
    if text.strip("0") == "":
        return True  # 0: unknown
    if len(text) != 10 or any(text.startswith(p) for p, _ in _EWOC_PREFIXES):
        return False
    head = text[:9].rstrip("0")
    return any(p.startswith(head) for p, _ in _EWOC_PREFIXES)


def ewoc_to_cropglobe(code: int | str) -> str | None:
    """CropGlobe class of a WorldCereal ``ewoc_code``; None (unlabelled) for a code that does
    not say which crop grows (:func:`ewoc_is_unspecified`: ``0`` "Unknown", unspecified
    cropland or cereals …), "other" for every other code.

    An unknown crop may be maize or wheat: calling it "other" would train and score label
    noise, so :func:`map_labels` reads these codes as unlabelled (−1). Wheat, maize and soya
    beans are checked against the real WorldCereal extractions; the rice, cotton and
    sugar-cane prefixes follow the published legend's structure.
    """
    text = _ewoc_text(code)
    for prefix, name in _EWOC_PREFIXES:
        if text.startswith(prefix):
            return name
    return None if ewoc_is_unspecified(text) else "other"


def _synonyms() -> dict[str, str]:
    syn = {c: c for c in CROPGLOBE_CLASSES}
    syn.update(
        {
            "maize": "corn",
            "soybean": "soybeans",
            "soya": "soybeans",
            "soya beans": "soybeans",
            "soy": "soybeans",
            "winter wheat": "wheat",
            "spring wheat": "wheat",
            "durum wheat": "wheat",
            "paddy": "rice",
            "sugar cane": "sugarcane",
            "sugar_cane": "sugarcane",
        }
    )
    return syn


def map_labels(
    values: ArrayLike,
    table: Mapping[str, str] | Callable[[str], str] | str = "names",
    *,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
    default: str | None = None,
) -> NDArray[np.int64]:
    """Map labels of another legend to class indices in ``classes``.

    Args:
        values: labels in the source legend (names or codes), (N,). Missing values give −1.
        table: ``"names"`` (CropGlobe names and common synonyms), ``"crop6"`` (WorldCereal's
            7-class harmonisation), ``"ewoc"`` (WorldCereal ``ewoc_code``; codes that do not
            say which crop grows give −1, see :func:`ewoc_to_cropglobe`), ``"cawa"`` (CAWa
            ``label_1``), a dict, or a function from label to class name.
        classes: the target vocabulary.
        default: class for labels the table does not know; None raises :class:`LabelError`.

    Returns:
        int64 (N,) indices into ``classes``, −1 for missing labels (and unspecified
        ``ewoc_code`` values).
    """
    return _map_labels(
        values, table, classes, default, "map them with a label table or pass default='other'"
    )


def _map_labels(
    values: ArrayLike,
    table: Mapping[str, str] | Callable[[str], str] | str,
    classes: Sequence[str],
    default: str | None,
    advice: str,
) -> NDArray[np.int64]:
    """:func:`map_labels`, with ``advice`` (how to map unknown labels) ending its error."""
    fn: Callable[[str], str | None]
    if table in ("names", "crop6"):
        syn = _synonyms()
        fn = lambda v: syn.get(v.strip().lower())  # noqa: E731
    elif table == "ewoc":
        fn = ewoc_to_cropglobe
    elif table == "cawa":
        fn = cawa_table("other")
    elif isinstance(table, Mapping):
        fn = lambda v: table.get(v)  # noqa: E731
    elif callable(table):
        fn = table
    else:
        raise LabelError(
            f"unknown label table {table!r}; expected 'names', 'crop6', 'ewoc', 'cawa', a dict "
            "or a function"
        )
    series = pd.Series(np.asarray(values, dtype=object).reshape(-1))
    out = np.full(len(series), -1, dtype=np.int64)
    index = {c: i for i, c in enumerate(classes)}
    unknown: list[str] = []
    for raw in series.dropna().unique():
        key = str(raw)
        if table == "ewoc" and ewoc_is_unspecified(key):
            continue  # the code names no crop: unlabelled
        name = fn(key)
        if name is None or name not in index:
            if default is None:
                unknown.append(key)
                continue
            name = default
        out[(series == raw).to_numpy()] = index[name]
    if unknown:
        raise LabelError(
            f"labels {unknown[:5]}{'…' if len(unknown) > 5 else ''} are not in the vocabulary "
            f"{list(classes)}; {advice}"
        )
    return out


def encode_labels(names: ArrayLike, classes: Sequence[str]) -> NDArray[np.int64]:
    """Indices of class ``names`` in ``classes`` (strict: unknown names raise)."""
    return map_labels(names, {c: c for c in classes}, classes=classes)


def collapse_to_target(
    pred: ArrayLike,
    target: str,
    classes: Sequence[str] = CROPGLOBE_CLASSES,
    *,
    mapped: ArrayLike = (),
) -> NDArray[np.int64]:
    """Collapse predicted class indices to "other" where ``target`` does not map the class.

    AUS keeps sugarcane and cotton, CHN corn/soybeans/rice, ARG everything but wheat (the
    CropGlobe release labels those countries' other crops "other"). Countries without a rule
    are returned unchanged.

    Args:
        pred: predicted class indices.
        target: the target country (ISO3 or ISO2).
        classes: the vocabulary.
        mapped: class indices the target's own ground truth holds: a target whose labels name
            a class does map it (e.g. another dataset's Argentinian wheat), so its
            predictions are kept whatever the rule says.
    """
    p = np.asarray(pred, dtype=np.int64)
    keep = TARGET_CLASS_RULES.get(normalise_country(target))
    if keep is None:
        return p.copy()
    if "other" not in classes:
        raise LabelError(f"cannot collapse to 'other': vocabulary {list(classes)} has no 'other'")
    other = list(classes).index("other")
    drop = np.array([c not in keep for c in classes])
    held = np.asarray(mapped, dtype=np.int64).reshape(-1)
    drop[held[(held >= 0) & (held < len(classes))]] = False
    return np.where((p >= 0) & drop[np.clip(p, 0, None)], other, p)


@dataclass(frozen=True)
class Country:
    """One row of the country table shipped with the package."""

    iso3: str
    iso2: str
    name: str
    continent: str
    hemisphere: str
    lat: float
    lon: float
    classes: tuple[str, ...]


@cache
def country_table() -> pd.DataFrame:
    """The shipped country table: ISO3 -> name, continent, hemisphere, centroid, classes.

    72 countries: CropGlobe's eight, those of WorldCereal and CAWa, and the main crop
    producers. The hemisphere is that of the centroid's latitude (Kenya, 0.5° N, is north). A
    country spanning two continents takes the one holding most of its cropland: Russia
    Europe, Turkey and Kazakhstan Asia, Egypt Africa. ``cropglobe_classes`` lists the
    CropGlobe classes the country grows (the simulator's and the release's class sets for
    CropGlobe's countries)."""
    with resources.files("cropglobe.data").joinpath("countries.csv").open() as fh:
        return pd.read_csv(fh, keep_default_na=False).set_index("iso3")


def normalise_country(code: str) -> str:
    """ISO3 upper case for an ISO2 or ISO3 code (``"BE"`` -> ``"BEL"``); unknown codes unchanged."""
    c = str(code).strip().upper()
    table = country_table()
    if c in table.index:
        return c
    hit = table.index[table["iso2"] == c]
    return str(hit[0]) if len(hit) else c


def country_alias(name: str, groups: Sequence[str]) -> str | None:
    """The group of ``groups`` that country ``name`` stands for when the groups are ISO3
    codes and ``name`` is the same country's ISO2 code or English name (``"BE"``,
    ``"France"``: :func:`normalise_country` and the country table); None otherwise.
    Unambiguous by construction: one country, one ISO3 code."""
    iso3 = normalise_country(name)
    if iso3 == name.strip().upper() and iso3 not in country_table().index:
        names = country_table()["name"].str.lower()
        hit = names.index[names == name.strip().lower()]
        iso3 = str(hit[0]) if len(hit) else iso3
    return iso3 if iso3 in groups and iso3 != name else None


def country(code: str) -> Country:
    """The table row of a country; :class:`DataFormatError` listing valid codes if unknown."""
    c = normalise_country(code)
    table = country_table()
    if c not in table.index:
        raise DataFormatError(
            f"unknown country {code!r}; known ISO3 codes: {', '.join(table.index)}"
        )
    r = {str(k): v for k, v in table.loc[c].to_dict().items()}
    return Country(
        c,
        str(r["iso2"]),
        str(r["name"]),
        str(r["continent"]),
        str(r["hemisphere"]),
        float(str(r["lat"])),
        float(str(r["lon"])),
        tuple(str(r["cropglobe_classes"]).split(";")),
    )


def class_colors(classes: Sequence[str]) -> list[str]:
    """Hex colour per class (CropGlobe classes have fixed colours; others cycle tab20)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [
        _CLASS_COLORS.get(c, matplotlib.colors.to_hex(cmap(i % 20))) for i, c in enumerate(classes)
    ]
