"""Band catalogues, name normalisation and the spectral indices everything else needs.

Canonical band names are short upper-case codes: Sentinel-2 ``B01`` … ``B12`` and ``B8A``,
Sentinel-1 ``VV`` and ``VH``, and index names such as ``NDVI``. Readers map the many spellings
found in the wild (``B2``, ``b02``, ``S2-L2A-B02``, ``S1-SIGMA0-VV``, ``ndvi``) to these codes with
:func:`canonical_band`.

Reflectance convention: Sentinel-2 L2A digital numbers are surface reflectance × 10,000 (the
CropGlobe release keeps that scale, "values are used without normalisation"). Index functions
are scale-free where the index is a ratio (NDVI, NDWI, NBR, NDRE, GCVI) and take ``scale`` where it
is not (EVI).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cropglobe.errors import BandError

__all__ = [
    "S2_BANDS",
    "S2_CATALOGUE",
    "S2_REFLECTANCE_SCALE",
    "SCL_INVALID",
    "SENTINEL1_BANDS",
    "BandInfo",
    "band_index",
    "canonical_band",
    "canonical_bands",
    "ndvi",
    "nearest_band",
    "not_a_band",
]


@dataclass(frozen=True)
class BandInfo:
    """One band of a sensor.

    Attributes:
        name: canonical code (``"B04"``).
        center_nm: central wavelength in nanometres (Sentinel-2A).
        width_nm: full width at half maximum in nanometres.
        resolution_m: native ground sampling distance in metres.
        common_name: STAC ``eo:common_name`` (``"red"``).
    """

    name: str
    center_nm: float
    width_nm: float
    resolution_m: int
    common_name: str


#: Sentinel-2 MSI (S2A) band catalogue: centre wavelength and bandwidth from ESA's spectral
#: response documentation (rounded to the nanometre).
S2_CATALOGUE: dict[str, BandInfo] = {
    b.name: b
    for b in (
        BandInfo("B01", 442.7, 21.0, 60, "coastal"),
        BandInfo("B02", 492.7, 66.0, 10, "blue"),
        BandInfo("B03", 559.8, 36.0, 10, "green"),
        BandInfo("B04", 664.6, 31.0, 10, "red"),
        BandInfo("B05", 704.1, 15.0, 20, "rededge1"),
        BandInfo("B06", 740.5, 15.0, 20, "rededge2"),
        BandInfo("B07", 782.8, 20.0, 20, "rededge3"),
        BandInfo("B08", 832.8, 106.0, 10, "nir"),
        BandInfo("B8A", 864.7, 21.0, 20, "nir08"),
        BandInfo("B09", 945.1, 20.0, 60, "nir09"),
        BandInfo("B10", 1373.5, 31.0, 60, "cirrus"),
        BandInfo("B11", 1613.7, 91.0, 20, "swir16"),
        BandInfo("B12", 2202.4, 175.0, 20, "swir22"),
    )
}

#: The 10 Sentinel-2 bands of the CropGlobe release, in the order this project assumes
#: (REFERENCE.md: the release's order is unknown; this is the natural one).
S2_BANDS: tuple[str, ...] = (
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B11",
    "B12",
)

SENTINEL1_BANDS: tuple[str, ...] = ("VV", "VH")

#: Surface reflectance scale of Sentinel-2 L2A digital numbers (DN = reflectance × 10,000).
S2_REFLECTANCE_SCALE = 10_000.0

#: Sentinel-2 scene classification (SCL) values treated as invalid observations:
#: 0 no data, 1 saturated/defective, 3 cloud shadow, 8 cloud medium probability,
#: 9 cloud high probability, 10 thin cirrus. Vegetation (4), bare soil (5), water (6),
#: unclassified (7), dark area (2) and snow (11) are kept.
SCL_INVALID: frozenset[int] = frozenset({0, 1, 3, 8, 9, 10})

_COMMON = {b.common_name: b.name for b in S2_CATALOGUE.values()}
_INDEX_NAMES = {"NDVI", "EVI", "NDWI", "NDRE", "GCVI", "NBR", "SAVI", "NDMI"}
_S2_RE = re.compile(r"^(?:S2(?:-L2A)?[-_])?B0?(\d{1,2}A?)$", re.IGNORECASE)
_S1_RE = re.compile(r"^(?:S1(?:-SIGMA0)?[-_])?(VV|VH|HH|HV)$", re.IGNORECASE)


def canonical_band(name: str) -> str:
    """Return the canonical code of a band name, or the name unchanged when it is not recognised.

    ``"B2"``, ``"b02"``, ``"S2-L2A-B02"`` -> ``"B02"``; ``"B8a"`` -> ``"B8A"``;
    ``"S1-SIGMA0-VV"`` -> ``"VV"``; ``"ndvi"`` -> ``"NDVI"``; ``"red"`` -> ``"B04"``.
    Unrecognised names (EMIT wavelengths such as ``"R0552"``, custom bands) are returned as given.
    """
    text = name.strip()
    m = _S2_RE.match(text)
    if m:
        code = m.group(1).upper()
        code = code if code.endswith("A") else f"{int(code):02d}"
        if f"B{code}" in S2_CATALOGUE:
            return f"B{code}"
    m = _S1_RE.match(text)
    if m:
        return m.group(1).upper()
    if text.upper() in _INDEX_NAMES:
        return text.upper()
    if text.lower() in _COMMON:
        return _COMMON[text.lower()]
    return text


def canonical_bands(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonicalise a sequence of band names; raise :class:`BandError` on duplicates."""
    out = tuple(canonical_band(str(n)) for n in names)
    seen: set[str] = set()
    dup = [b for b in out if b in seen or seen.add(b)]  # type: ignore[func-returns-value]
    if dup:
        raise BandError(
            f"band names {list(names)} repeat {sorted(set(dup))} after normalisation; "
            "expected each band once; rename or drop the repeated columns"
        )
    return out


def band_index(bands: tuple[str, ...] | list[str], name: str, *, what: str = "data") -> int:
    """Position of band ``name`` (any spelling) in ``bands``; :class:`BandError` if absent."""
    code = canonical_band(name)
    try:
        return list(bands).index(code)
    except ValueError:
        raise BandError(
            f"band {name!r} is needed but {what} has bands {list(bands)}; "
            f"provide a dataset that includes {code}"
        ) from None


def nearest_band(name: str, bands: Sequence[str]) -> str | None:
    """The band of ``bands`` that ``name`` most likely means: its canonical spelling when that
    is in ``bands``, else the nearest in spelling (codes and common names such as ``nir``
    compared case-insensitively), else None."""
    code = canonical_band(name)
    if code in bands:
        return code
    keys: dict[str, str] = {}
    for b in bands:
        keys.setdefault(str(b).lower(), str(b))
        info = S2_CATALOGUE.get(str(b))
        if info is not None:
            keys.setdefault(info.common_name, str(b))
    for text in (name.strip().lower(), code.lower()):
        near = difflib.get_close_matches(text, list(keys), n=1, cutoff=0.6)
        if near:
            return keys[near[0]]
    return None


def not_a_band(name: str, bands: Sequence[str], *, option: str) -> BandError:
    """The :class:`BandError` for a band named by the user (``option``: how, e.g. ``--band``)
    that ``bands`` (the data's) lacks: it lists the data's bands and suggests the nearest
    spelling."""
    near = nearest_band(name, bands)
    hint = f"did you mean {near}?" if near else "give one of them"
    return BandError(
        f"{option} {name}: not a band of the data; its bands are {', '.join(map(str, bands))}; "
        f"{hint}"
    )


def ndvi(values: NDArray[np.floating], bands: tuple[str, ...] | list[str]) -> NDArray[np.float32]:
    """NDVI = (NIR − red) / (NIR + red) from an array whose band axis is ``-2``.

    Args:
        values: float array (..., C, T); NaN marks missing observations and propagates.
        bands: the C band names; ``NDVI`` itself, or ``B08`` and ``B04`` must be present.

    Returns:
        float32 array (..., T). Where NIR + red is 0 the result is NaN.
    """
    blist = list(bands)
    if "NDVI" in blist:
        return np.asarray(values[..., blist.index("NDVI"), :], dtype=np.float32)
    nir = values[..., band_index(blist, "B08"), :].astype(np.float32)
    red = values[..., band_index(blist, "B04"), :].astype(np.float32)
    den = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den != 0, (nir - red) / den, np.nan)
    return out.astype(np.float32)
