"""A CropGlobe-like synthetic world: labelled Sentinel-2 series for the 8 CropGlobe countries.

Everything this module produces is **synthetic** and says so (``attrs["synthetic"] = True``,
``attrs["generator"] = "cropglobe.simulate"``, and the same in every file :func:`write_world`
writes). It is the embedded default of ``cropglobe demo`` and of the tests: real CropGlobe data
cannot be downloaded here, and a generator whose truth is known lets every part of the pipeline
be exercised at scale.

How a sample is made (all vectorised over samples; one loop over countries only):

1. **Class and calendar.** Each country has a class mix (:data:`DEFAULT_CLASS_WEIGHTS`,
   restricted to the classes the country table says it maps) and, per class, one or more crop
   calendar *components* (:data:`CROP_CALENDARS`): sowing, start of rapid growth ("green-up"),
   peak and harvest day of year, in real calendar months, from public crop calendars (USDA NASS
   Agricultural Handbook 628, USDA FAS IPAD crop calendars, GEOGLAM Crop Monitor, FAO GIEWS,
   national agencies — the ``source`` column names the one per entry). ``other`` is a mixture of
   components (grassland, other crops with their own calendars, fallow).
2. **Phenology.** A double-logistic canopy model per sample: emergence after sowing, a winter
   dormancy plateau for winter crops, logistic green-up to the peak, logistic senescence to
   harvest, a sharp cut at harvest and decaying post-harvest residue. Dates get a per-sample
   common shift and small independent jitters, a per-region offset (3 synthetic regions per
   country whose calendars differ by a few days) and an optional per-country
   ``phenology_shift``. Amplitude varies per sample. Seasons crossing 1 January (southern
   summer crops, winter wheat) wrap around the year. Cover crops (green in the off-season,
   common in Europe) and evergreen baselines (grassland) are part of the model.
3. **Spectra.** Linear mixing of endmember spectra (reflectance × 10,000 for the 10 Sentinel-2
   bands): green vegetation (per-class nuances: broadleaf soybean brighter in the NIR, wheat
   lower, rice and sugarcane wetter in the SWIR), senescent/dry vegetation, soil (country-level
   soil colour and per-sample brightness), open water (flooded rice before canopy closure),
   open cotton bolls (bright late in the cotton season) and snow (northern winters in CHN/USA).
4. **Observation.** A per-observation random acquisition day within each 5-day bin,
   multiplicative illumination noise and additive Gaussian noise, clouds: each observation is
   cloudy with probability ``cloud_fraction``; a share ``residual_cloud`` of the cloudy ones stays
   in the series as bright, haze-contaminated values (missed by the cloud mask), the rest become
   NaN (masked). The expected NaN share is therefore ``cloud_fraction × (1 − residual_cloud)``.
   Values are clipped to 0 … 10,000.
5. **Southern hemisphere.** Calendars of ARG and AUS are in their real months (soybean peak in
   February). With ``season_aligned_south=True`` (default, what the CropGlobe release probably
   stores) their series are rotated by :data:`SOUTH_ROTATION_BINS` = 36 bins (180 days): stored
   bin ``i`` holds calendar bin ``(i + 36) mod 73``, i.e. stored day 1 is calendar day 181
   (30 June) — a July–June season laid on the same day-of-year axis as the north, so the
   southern summer season falls in the northern May–November window. The grid of the returned
   set stays ``TimeGrid.cropglobe()`` (one grid for all countries, as in the release); the
   rotation is recorded in ``attrs["south_rotation_days"]``. ``False`` keeps calendar months
   (a harder cross-hemisphere test).

The generated world shows the phenomena of the paper: classes separate well within a country,
and a model transfers worst across hemispheres, better across continents and best between
neighbouring countries (calendars, soils and class mixtures shift more with distance).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe.bands import S2_BANDS, canonical_band
from cropglobe.classes import CROPGLOBE_CLASSES, CROPGLOBE_COUNTRIES, normalise_country
from cropglobe.classes import country as _country_info
from cropglobe.errors import BandError, DataFormatError, LabelError
from cropglobe.series import SeriesSet, TimeGrid

__all__ = [
    "CROP_CALENDARS",
    "DEFAULT_CLASS_WEIGHTS",
    "SOUTH_ROTATION_BINS",
    "CalendarEntry",
    "crop_calendar",
    "simulate_world",
    "write_world",
]

logger = logging.getLogger(__name__)

#: Bins the southern series are rotated by when ``season_aligned_south=True`` (36 × 5 = 180 days).
SOUTH_ROTATION_BINS = 36

_DOY_MONTH_STARTS = (1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _d(month: int, day: int) -> int:
    """Day of year (non-leap) of ``month``/``day``."""
    return _DOY_MONTH_STARTS[month - 1] + day - 1


def _doy_text(doy: int) -> str:
    doy = (int(doy) - 1) % 365 + 1
    m = int(np.searchsorted(_DOY_MONTH_STARTS, doy, side="right")) - 1
    return f"{_MONTHS[m]} {doy - _DOY_MONTH_STARTS[m] + 1:02d}"


# ------------------------------------------------------------------------------ calendars
@dataclass(frozen=True)
class CalendarEntry:
    """One crop-calendar component of a country's class.

    Days are days of year of a non-leap year in real calendar months (southern seasons cross
    1 January: a sowing day later in the year than the peak means sowing in the previous year).

    Attributes:
        country: ISO3 code.
        crop: CropGlobe class name (``"other"`` for the components of the other class).
        component: what is grown (``"corn"``, ``"early corn"``, ``"grassland"``, ``"sunflower"`` …);
            selects the canopy traits in :data:`_TRAITS`.
        weight: share of the class's samples drawn from this component (normalised per class).
        sow: sowing / planting (or ratoon regrowth) day of year.
        green: start of rapid canopy growth (emergence for summer crops, spring green-up after
            winter dormancy for winter crops).
        peak: day of maximum green canopy.
        harvest: harvest day (end of season for grassland).
        source: public crop calendar the dates follow.
    """

    country: str
    crop: str
    component: str
    weight: float
    sow: int
    green: int
    peak: int
    harvest: int
    source: str


_NASS = "USDA NASS Agricultural Handbook 628 (Usual Planting and Harvesting Dates, 2010)"
_IPAD_US = "USDA FAS IPAD crop calendar, United States"
_IPAD_EU = "USDA FAS IPAD crop calendar, European Union; GEOGLAM Crop Monitor calendar"
_ARVALIS = "GEOGLAM Crop Monitor calendar (France); Agreste/Arvalis sowing and harvest periods"
_BENE = "GEOGLAM Crop Monitor calendar (EU); Statbel/CBS crop statistics periods"
_UK = "GEOGLAM Crop Monitor calendar (UK); AHDB crop development guides"
_IPAD_CN = "USDA FAS IPAD crop calendar, China (Northeast); FAO GIEWS country brief China"
_IPAD_AR = "USDA FAS IPAD crop calendar, Argentina; Bolsa de Cereales de Buenos Aires reports"
_IPAD_AU = "USDA FAS IPAD crop calendar, Australia; ABARES Australian Crop Report"
_SRA = "Sugar Research Australia (Queensland crushing season Jun–Nov); USDA FAS IPAD Australia"
_COTTON_AU = "Cotton Australia (sowing Oct–Nov, picking Mar–May); USDA FAS IPAD Australia"
_GRASS = "FAO GIEWS / GEOGLAM pasture and rangeland seasonality (generic)"

_E = CalendarEntry

#: Crop calendars per country, class and component (real calendar months).
CROP_CALENDARS: tuple[CalendarEntry, ...] = (
    # -------------------------------------------------------- USA (Corn Belt, Plains, South)
    _E("USA", "corn", "corn", 1.0, _d(5, 1), _d(5, 15), _d(7, 22), _d(10, 5), _NASS),
    _E("USA", "soybeans", "soybeans", 1.0, _d(5, 20), _d(6, 1), _d(8, 8), _d(10, 8), _NASS),
    _E("USA", "rice", "rice", 1.0, _d(4, 20), _d(5, 10), _d(7, 25), _d(9, 15), _NASS),
    _E("USA", "wheat", "winter wheat", 1.0, _d(10, 1), _d(3, 10), _d(5, 5), _d(6, 28), _NASS),
    _E("USA", "sugarcane", "sugarcane", 1.0, _d(3, 1), _d(4, 1), _d(8, 15), _d(11, 15), _NASS),
    _E("USA", "cotton", "cotton", 1.0, _d(5, 10), _d(5, 25), _d(8, 5), _d(10, 20), _NASS),
    _E("USA", "other", "grassland", 0.35, _d(3, 15), _d(4, 1), _d(6, 10), _d(10, 1), _GRASS),
    _E("USA", "other", "sorghum", 0.2, _d(6, 1), _d(6, 15), _d(8, 15), _d(10, 20), _NASS),
    _E("USA", "other", "alfalfa", 0.2, _d(3, 20), _d(4, 5), _d(6, 1), _d(9, 30), _NASS),
    _E("USA", "other", "fallow", 0.25, _d(4, 1), _d(5, 1), _d(6, 15), _d(9, 1), _IPAD_US),
    # ---------------------------------------------------------------- FRA
    _E("FRA", "corn", "corn", 1.0, _d(4, 25), _d(5, 15), _d(8, 1), _d(10, 10), _ARVALIS),
    _E("FRA", "soybeans", "soybeans", 1.0, _d(5, 5), _d(5, 20), _d(8, 5), _d(9, 30), _ARVALIS),
    _E("FRA", "rice", "rice", 1.0, _d(4, 25), _d(5, 15), _d(8, 1), _d(9, 25), _ARVALIS),
    _E("FRA", "wheat", "winter wheat", 1.0, _d(10, 20), _d(3, 1), _d(5, 5), _d(7, 10), _ARVALIS),
    _E("FRA", "other", "grassland", 0.35, _d(2, 15), _d(3, 1), _d(5, 10), _d(10, 15), _GRASS),
    _E("FRA", "other", "sunflower", 0.12, _d(4, 15), _d(5, 1), _d(7, 10), _d(9, 15), _ARVALIS),
    _E("FRA", "other", "rapeseed", 0.12, _d(8, 30), _d(2, 10), _d(4, 10), _d(7, 1), _ARVALIS),
    _E(
        "FRA", "other", "winter barley", 0.12, _d(10, 10), _d(2, 20), _d(4, 25), _d(6, 30), _ARVALIS
    ),
    _E("FRA", "other", "sugar beet", 0.1, _d(3, 25), _d(4, 25), _d(7, 25), _d(10, 15), _ARVALIS),
    _E("FRA", "other", "potato", 0.07, _d(4, 10), _d(5, 5), _d(7, 1), _d(9, 10), _ARVALIS),
    _E("FRA", "other", "fallow", 0.12, _d(3, 1), _d(4, 1), _d(6, 1), _d(9, 1), _IPAD_EU),
    # ---------------------------------------------------------------- BEL
    _E("BEL", "corn", "silage maize", 1.0, _d(5, 1), _d(5, 20), _d(8, 5), _d(10, 1), _BENE),
    _E("BEL", "wheat", "winter wheat", 1.0, _d(10, 25), _d(3, 10), _d(5, 20), _d(7, 28), _BENE),
    _E("BEL", "other", "grassland", 0.5, _d(2, 20), _d(3, 10), _d(5, 15), _d(10, 20), _GRASS),
    _E("BEL", "other", "potato", 0.2, _d(4, 15), _d(5, 10), _d(7, 5), _d(9, 20), _BENE),
    _E("BEL", "other", "sugar beet", 0.2, _d(3, 30), _d(5, 1), _d(8, 1), _d(10, 20), _BENE),
    _E("BEL", "other", "winter barley", 0.1, _d(10, 10), _d(3, 1), _d(4, 30), _d(7, 5), _BENE),
    # ---------------------------------------------------------------- NLD
    _E("NLD", "corn", "silage maize", 1.0, _d(5, 1), _d(5, 22), _d(8, 8), _d(10, 5), _BENE),
    _E("NLD", "wheat", "winter wheat", 1.0, _d(10, 25), _d(3, 12), _d(5, 25), _d(8, 1), _BENE),
    _E("NLD", "other", "grassland", 0.55, _d(2, 20), _d(3, 10), _d(5, 15), _d(10, 25), _GRASS),
    _E("NLD", "other", "potato", 0.2, _d(4, 15), _d(5, 10), _d(7, 8), _d(9, 25), _BENE),
    _E("NLD", "other", "sugar beet", 0.15, _d(4, 1), _d(5, 5), _d(8, 5), _d(10, 25), _BENE),
    _E("NLD", "other", "fallow", 0.1, _d(3, 15), _d(4, 15), _d(6, 10), _d(9, 1), _IPAD_EU),
    # ---------------------------------------------------------------- GBR
    _E("GBR", "corn", "silage maize", 1.0, _d(5, 1), _d(5, 25), _d(8, 10), _d(10, 10), _UK),
    _E("GBR", "wheat", "winter wheat", 1.0, _d(10, 1), _d(3, 15), _d(6, 1), _d(8, 15), _UK),
    _E("GBR", "other", "grassland", 0.5, _d(2, 25), _d(3, 15), _d(5, 25), _d(10, 20), _GRASS),
    _E("GBR", "other", "rapeseed", 0.2, _d(8, 25), _d(2, 25), _d(4, 25), _d(7, 20), _UK),
    _E("GBR", "other", "spring barley", 0.2, _d(3, 20), _d(4, 10), _d(6, 15), _d(8, 20), _UK),
    _E("GBR", "other", "fallow", 0.1, _d(3, 15), _d(4, 15), _d(6, 10), _d(9, 1), _UK),
    # ---------------------------------------------------------------- CHN (Northeast)
    _E("CHN", "corn", "corn", 1.0, _d(4, 28), _d(5, 20), _d(7, 30), _d(9, 30), _IPAD_CN),
    _E("CHN", "soybeans", "soybeans", 1.0, _d(5, 10), _d(5, 30), _d(8, 5), _d(9, 25), _IPAD_CN),
    _E("CHN", "rice", "transplanted rice", 1.0, _d(5, 20), _d(6, 5), _d(8, 5), _d(9, 30), _IPAD_CN),
    _E("CHN", "other", "grassland", 0.4, _d(4, 20), _d(5, 15), _d(7, 25), _d(10, 1), _GRASS),
    _E("CHN", "other", "vegetables", 0.25, _d(4, 25), _d(5, 15), _d(7, 5), _d(8, 25), _IPAD_CN),
    _E("CHN", "other", "fallow", 0.35, _d(5, 1), _d(6, 1), _d(7, 20), _d(9, 15), _IPAD_CN),
    # ---------------------------------------------------------------- ARG (Pampas, NE, NW)
    _E("ARG", "corn", "early corn", 0.5, _d(9, 25), _d(10, 15), _d(1, 5), _d(3, 25), _IPAD_AR),
    _E("ARG", "corn", "late corn", 0.5, _d(12, 15), _d(1, 1), _d(2, 25), _d(6, 10), _IPAD_AR),
    _E(
        "ARG",
        "soybeans",
        "first soybeans",
        0.7,
        _d(11, 10),
        _d(11, 30),
        _d(2, 10),
        _d(4, 20),
        _IPAD_AR,
    ),
    _E(
        "ARG",
        "soybeans",
        "second soybeans",
        0.3,
        _d(12, 20),
        _d(1, 5),
        _d(3, 1),
        _d(5, 10),
        _IPAD_AR,
    ),
    _E("ARG", "rice", "rice", 1.0, _d(10, 1), _d(10, 25), _d(1, 25), _d(3, 20), _IPAD_AR),
    _E(
        "ARG",
        "sugarcane",
        "sugarcane",
        1.0,
        _d(9, 15),
        _d(10, 15),
        _d(2, 15),
        _d(7, 1),
        "USDA FAS IPAD crop calendar, Argentina (Tucumán harvest May–Oct)",
    ),
    _E("ARG", "cotton", "cotton", 1.0, _d(11, 1), _d(11, 20), _d(2, 1), _d(4, 30), _IPAD_AR),
    _E("ARG", "other", "grassland", 0.35, _d(8, 20), _d(9, 10), _d(11, 20), _d(4, 15), _GRASS),
    _E("ARG", "other", "sunflower", 0.25, _d(9, 20), _d(10, 10), _d(12, 10), _d(2, 15), _IPAD_AR),
    _E("ARG", "other", "winter barley", 0.2, _d(6, 1), _d(7, 20), _d(10, 1), _d(12, 1), _IPAD_AR),
    _E("ARG", "other", "fallow", 0.2, _d(9, 1), _d(10, 1), _d(12, 1), _d(3, 1), _IPAD_AR),
    # ---------------------------------------------------------------- AUS (QLD, NSW)
    _E(
        "AUS",
        "sugarcane",
        "ratoon sugarcane",
        1.0,
        _d(9, 15),
        _d(10, 15),
        _d(3, 1),
        _d(8, 30),
        _SRA,
    ),
    _E("AUS", "cotton", "cotton", 1.0, _d(10, 15), _d(11, 5), _d(2, 1), _d(4, 15), _COTTON_AU),
    _E(
        "AUS",
        "other",
        "winter cereals",
        0.35,
        _d(5, 15),
        _d(6, 20),
        _d(9, 10),
        _d(11, 25),
        _IPAD_AU,
    ),
    _E("AUS", "other", "grassland", 0.25, _d(4, 1), _d(5, 1), _d(8, 25), _d(12, 15), _GRASS),
    _E("AUS", "other", "sorghum", 0.15, _d(11, 1), _d(11, 20), _d(2, 10), _d(4, 20), _IPAD_AU),
    _E("AUS", "other", "fallow", 0.25, _d(5, 1), _d(6, 1), _d(8, 1), _d(11, 1), _IPAD_AU),
)


@dataclass(frozen=True)
class _Traits:
    """Canopy behaviour of a component.

    amp: peak green cover fraction; sen: share of the canopy that dries before harvest;
    winter: green fraction held over winter dormancy (winter crops); residue: dry cover left
    after harvest; base: evergreen green fraction (perennials, scaled by the country's winter
    greenness); flood: paddy water before canopy closure; boll: open cotton bolls late season;
    date_sd: per-sample spread of the common date shift (days); spec: green-vegetation spectral
    nuance key in :data:`_NUANCE_SPEC`; cover: the field can carry an off-season cover crop;
    precrop: green cover of a preceding crop grown in the off-season (double cropping, e.g.
    second soybeans after wheat in Argentina), present on every such field.
    """

    amp: float
    sen: float
    winter: float = 0.0
    residue: float = 0.3
    base: float = 0.0
    flood: bool = False
    boll: bool = False
    date_sd: float = 7.0
    spec: str = "default"
    cover: bool = True
    precrop: float = 0.0


_TRAITS: dict[str, _Traits] = {
    "corn": _Traits(0.92, 0.9, residue=0.4, spec="corn"),
    "early corn": _Traits(0.9, 0.9, residue=0.4, spec="corn"),
    "late corn": _Traits(0.88, 0.9, residue=0.4, spec="corn"),
    "silage maize": _Traits(0.92, 0.35, residue=0.1, spec="corn"),
    "soybeans": _Traits(0.92, 0.97, residue=0.2, spec="soybeans"),
    "first soybeans": _Traits(0.92, 0.97, residue=0.2, spec="soybeans"),
    "second soybeans": _Traits(0.85, 0.97, residue=0.3, spec="soybeans", precrop=0.8),
    "rice": _Traits(0.86, 0.8, residue=0.35, flood=True, spec="rice", cover=False),
    "transplanted rice": _Traits(0.86, 0.8, residue=0.35, flood=True, spec="rice", cover=False),
    "winter wheat": _Traits(0.88, 0.97, winter=0.35, residue=0.45, spec="wheat", cover=False),
    "sugarcane": _Traits(0.95, 0.2, residue=0.55, date_sd=12.0, spec="sugarcane", cover=False),
    "ratoon sugarcane": _Traits(
        0.95, 0.1, residue=0.6, date_sd=28.0, spec="sugarcane", cover=False
    ),
    "cotton": _Traits(0.75, 0.75, residue=0.25, boll=True, spec="cotton", cover=False),
    "grassland": _Traits(0.82, 0.4, residue=0.0, base=0.5, date_sd=10.0, spec="grass", cover=False),
    "alfalfa": _Traits(
        0.88, 0.2, residue=0.1, base=0.35, date_sd=12.0, spec="soybeans", cover=False
    ),
    "sorghum": _Traits(0.85, 0.85, residue=0.35, spec="corn"),
    "sunflower": _Traits(0.8, 0.95, residue=0.3, spec="soybeans"),
    "rapeseed": _Traits(0.9, 0.95, winter=0.5, residue=0.35, spec="rapeseed", cover=False),
    "winter barley": _Traits(0.85, 0.97, winter=0.35, residue=0.4, spec="wheat", cover=False),
    "spring barley": _Traits(0.85, 0.97, residue=0.4, spec="wheat"),
    "winter cereals": _Traits(0.8, 0.97, winter=0.2, residue=0.4, spec="wheat", cover=False),
    "potato": _Traits(0.85, 0.8, residue=0.05, spec="soybeans"),
    "sugar beet": _Traits(0.9, 0.2, residue=0.05, spec="soybeans"),
    "vegetables": _Traits(0.7, 0.5, residue=0.1, date_sd=15.0, spec="soybeans"),
    "fallow": _Traits(0.3, 0.6, residue=0.1, base=0.05, date_sd=20.0, spec="grass", cover=False),
}

#: Relative class frequencies used when ``class_weights`` is None (restricted to the classes a
#: country maps, then normalised). The release's true proportions are not known; "other" is
#: made the largest class, as in most crop-type inventories.
DEFAULT_CLASS_WEIGHTS: dict[str, float] = {
    "corn": 1.0, "soybeans": 1.0, "rice": 0.6, "wheat": 1.0,
    "sugarcane": 0.8, "cotton": 0.8, "other": 1.6,
}  # fmt: skip


# ------------------------------------------------------------------------------ spectra
# Endmember reflectance × 10,000 for B02 B03 B04 B05 B06 B07 B08 B8A B11 B12 (S2_BANDS order).
_GV = np.array([230, 520, 230, 800, 3050, 4300, 4600, 4750, 1850, 820], dtype=np.float64)
_DRY = np.array([780, 1050, 1350, 1650, 1950, 2150, 2300, 2400, 3700, 2800], dtype=np.float64)
_WATER = np.array([650, 750, 560, 430, 330, 280, 240, 220, 110, 70], dtype=np.float64)
_BOLL = np.array([4700, 4900, 5000, 5100, 5200, 5300, 5400, 5400, 4300, 3300], dtype=np.float64)
_SNOW = np.array([8800, 8700, 8500, 8400, 8200, 8000, 7700, 7500, 1300, 1000], dtype=np.float64)
_CLOUD = np.array([6200, 6100, 6200, 6300, 6400, 6400, 6500, 6500, 5200, 4000], dtype=np.float64)
_SOILS: dict[str, NDArray[np.float64]] = {
    # brown loam / luvisol (western Europe)
    "loam": np.array([900, 1200, 1550, 1800, 1950, 2100, 2200, 2280, 3200, 2700], np.float64),
    # grey marine clay / sandy soils (Low Countries)
    "clay": np.array([950, 1200, 1400, 1650, 1850, 1950, 2050, 2100, 2800, 2400], np.float64),
    # dark mollisol (US Corn Belt)
    "mollisol": np.array([700, 980, 1300, 1500, 1650, 1750, 1850, 1900, 2750, 2350], np.float64),
    # brown-grey loess-derived mollisol (Argentine Pampas)
    "pampa": np.array([780, 1060, 1380, 1620, 1780, 1880, 1980, 2040, 3050, 2600], np.float64),
    # black chernozem / phaeozem (Northeast China)
    "black": np.array([620, 830, 1000, 1130, 1260, 1350, 1420, 1460, 2100, 1800], np.float64),
    # red ferrosol / vertisol (Queensland, New South Wales)
    "red": np.array([820, 1180, 1800, 2200, 2450, 2600, 2700, 2780, 3900, 3300], np.float64),
}

# Multipliers on the green-vegetation spectrum per nuance (vis = B02 B03 B04, re = B05 B06 B07,
# nir = B08 B8A, swir = B11 B12).
_GROUPS = {"vis": [0, 1, 2], "green": [1], "re": [3, 4, 5], "nir": [6, 7], "swir": [8, 9]}
_NUANCE_SPEC: dict[str, dict[str, float]] = {
    "default": {},
    "corn": {"re": 1.0},
    "soybeans": {"vis": 0.92, "green": 1.08, "re": 1.05, "nir": 1.09, "swir": 0.95},
    "rice": {"nir": 0.88, "re": 0.95, "swir": 0.82},
    "wheat": {"vis": 1.1, "re": 1.04, "nir": 0.92, "swir": 1.06},
    "sugarcane": {"green": 1.05, "nir": 1.03, "swir": 0.88},
    "cotton": {"vis": 1.08, "nir": 1.05, "swir": 1.12},
    "grass": {"vis": 1.12, "re": 0.98, "nir": 0.9, "swir": 1.08},
    "rapeseed": {"green": 1.25, "vis": 1.15, "nir": 1.02},
}


def _nuance_vectors() -> tuple[tuple[str, ...], NDArray[np.float64]]:
    names = tuple(_NUANCE_SPEC)
    out = np.ones((len(names), 10))
    for i, name in enumerate(names):
        for group, factor in _NUANCE_SPEC[name].items():
            out[i, _GROUPS[group]] *= factor
    return names, out


@dataclass(frozen=True)
class _CountryTraits:
    """Country-level environment: soil, winter greenness, cover crops, snow, dryness."""

    soil: str
    soil_brightness: float
    winter_green: float  # how green evergreen/winter canopies stay in the cold season (0…1)
    p_cover: float  # probability that a summer-crop field carries an off-season cover crop
    snow: float  # probability that a low-canopy winter observation is snow covered
    swir_dry: float  # multiplier on green-vegetation SWIR (water stress)
    amp: float  # multiplier on canopy amplitudes
    region_days: float  # calendar offset between neighbouring synthetic regions (days)


_COUNTRY_TRAITS: dict[str, _CountryTraits] = {
    "FRA": _CountryTraits("loam", 1.0, 1.0, 0.45, 0.0, 1.0, 1.0, 5.0),
    "BEL": _CountryTraits("loam", 0.95, 1.0, 0.5, 0.03, 0.98, 1.0, 3.0),
    "NLD": _CountryTraits("clay", 0.95, 1.0, 0.5, 0.03, 0.97, 1.0, 3.0),
    "GBR": _CountryTraits("loam", 0.9, 1.0, 0.35, 0.02, 0.97, 0.98, 4.0),
    "USA": _CountryTraits("mollisol", 1.0, 0.45, 0.1, 0.3, 1.05, 1.0, 12.0),
    "CHN": _CountryTraits("black", 1.0, 0.1, 0.0, 0.6, 1.0, 0.97, 7.0),
    "ARG": _CountryTraits("pampa", 1.0, 0.6, 0.15, 0.0, 1.1, 0.95, 10.0),
    "AUS": _CountryTraits("red", 1.0, 0.45, 0.05, 0.0, 1.18, 0.9, 10.0),
}

#: Synthetic regions per country: (name suffix, calendar offset in units of the country's
#: ``region_days``, latitude offset in degrees towards the pole). Calendars of neighbouring
#: regions differ by a few days (more in large countries).
_REGIONS: tuple[tuple[str, float, float], ...] = (("R1", -1.0, -1.2), ("R2", 0.0, 0.0),
                                                   ("R3", 1.0, 1.2))  # fmt: skip


# ------------------------------------------------------------------------------ public API
def crop_calendar(country: str) -> pd.DataFrame:
    """The crop calendar the simulator uses for one country.

    Args:
        country: ISO3 (or ISO2) code of a CropGlobe country.

    Returns:
        DataFrame, one row per class component: ``class``, ``component``, ``weight`` (share
        within the class), ``sow``, ``green``, ``peak``, ``harvest`` (day of year, real calendar
        months, non-leap), the same four as text (``sow_date`` … ``"May 01"``), and ``source``.

    Raises:
        DataFormatError: the country has no calendar (not one of the 8 CropGlobe countries).
    """
    cc = _check_country(country, "country")
    rows = []
    for e in CROP_CALENDARS:
        if e.country != cc:
            continue
        total = sum(x.weight for x in CROP_CALENDARS if x.country == cc and x.crop == e.crop)
        rows.append(
            {
                "class": e.crop,
                "component": e.component,
                "weight": e.weight / total,
                "sow": e.sow,
                "green": e.green,
                "peak": e.peak,
                "harvest": e.harvest,
                "sow_date": _doy_text(e.sow),
                "green_date": _doy_text(e.green),
                "peak_date": _doy_text(e.peak),
                "harvest_date": _doy_text(e.harvest),
                "source": e.source,
            }
        )
    df = pd.DataFrame(rows)
    order = {c: i for i, c in enumerate(CROPGLOBE_CLASSES)}
    df["_o"] = df["class"].map(order)
    return df.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def simulate_world(
    countries: Sequence[str] | str = CROPGLOBE_COUNTRIES,
    n_per_country: int = 2000,
    *,
    random_state: int | np.random.Generator | None = 0,
    year: int = 2023,
    phenology_shift: Mapping[str, float] | None = None,
    cloud_fraction: float = 0.3,
    residual_cloud: float = 0.1,
    noise: float = 0.01,
    bands: Sequence[str] = S2_BANDS,
    season_aligned_south: bool = True,
    class_weights: Mapping[str, float] | None = None,
) -> SeriesSet:
    """Simulate a CropGlobe-like labelled world (SYNTHETIC data).

    Args:
        countries: ISO3 (or ISO2) codes among the 8 CropGlobe countries; a comma-separated
            string is accepted.
        n_per_country: samples per country (≥ 1). Class counts are allocated exactly from the
            class weights (largest remainder), so they do not depend on the seed.
        random_state: seed (int), a ``numpy.random.Generator``, or None (fresh entropy). With an
            int, each country's samples depend only on the seed and the country, not on which
            other countries are simulated.
        year: label year written to ``meta["year"]``.
        phenology_shift: country -> days added to every calendar date of that country
            (positive = later), e.g. ``{"ARG": 30}``, for stress tests.
        cloud_fraction: probability (0 ≤ p < 1) that an observation is cloudy.
        residual_cloud: share (0…1) of cloudy observations left in the series as bright,
            haze-contaminated values; the others become NaN (masked). Expected NaN share =
            ``cloud_fraction × (1 − residual_cloud)``.
        noise: additive Gaussian noise standard deviation in reflectance units (0…1 scale;
            0.01 = 100 in the × 10,000 scale); a per-observation multiplicative illumination
            factor with standard deviation ``2 × noise`` is applied too. 0 disables both.
        bands: output bands, any subset/order of the 10 Sentinel-2 bands of
            :data:`cropglobe.bands.S2_BANDS`, plus ``"NDVI"`` (computed from the final B08/B04).
        season_aligned_south: rotate ARG/AUS series by 36 bins (180 days) so that their summer
            season falls on the northern day-of-year window (stored bin ``i`` = calendar bin
            ``(i + 36) mod 73``); False keeps calendar months.
        class_weights: class name -> relative frequency, applied in every country (classes a
            country does not map are ignored); None uses :data:`DEFAULT_CLASS_WEIGHTS`.

    Returns:
        SeriesSet on ``TimeGrid.cropglobe()`` (73 five-day bins): values float32 (N, C, 73),
        surface reflectance × 10,000 in 0…10,000 (NDVI in −1…1), NaN for masked clouds;
        labels int64 into :data:`cropglobe.classes.CROPGLOBE_CLASSES`; meta ``sample_id``
        (``"FRA_000000"`` …), ``country``, ``region``, ``year``, ``lon``, ``lat``; attrs
        ``synthetic=True``, ``generator="cropglobe.simulate"``, ``random_state``,
        ``phenology_shift`` and every other generation parameter. Samples are ordered by
        country (in the order given), shuffled within a country.

    Raises:
        DataFormatError: unknown country, duplicate countries, bad counts or fractions.
        BandError: a band the simulator cannot produce.
        LabelError: class weights naming unknown classes or leaving a country with no class.
    """
    codes = _check_countries(countries)
    n = _check_int(n_per_country, "n_per_country", 1)
    shift = _check_shift(phenology_shift, codes)
    cf = _check_fraction(cloud_fraction, "cloud_fraction", upper_open=True)
    rc = _check_fraction(residual_cloud, "residual_cloud")
    if not isinstance(noise, int | float) or not np.isfinite(noise) or not 0 <= noise <= 0.5:
        raise DataFormatError(
            f"noise must be a reflectance standard deviation between 0 and 0.5 (0.01 = 100 in "
            f"the ×10,000 scale), got {noise!r}; pass e.g. noise=0.01"
        )
    out_bands, band_idx, want_ndvi = _check_bands(bands)
    weights = _check_class_weights(class_weights)
    if isinstance(random_state, np.random.Generator):
        children = random_state.spawn(len(codes))
        seed_attr: int | None = None
    elif random_state is None or isinstance(random_state, int | np.integer):
        seed_val = None if random_state is None else int(random_state)
        if seed_val is not None and seed_val < 0:
            raise DataFormatError(
                f"random_state must be a non-negative int, a numpy Generator or None, got "
                f"{random_state}; pass e.g. random_state=0"
            )
        if seed_val is None:
            children = np.random.default_rng().spawn(len(codes))
        else:
            children = [np.random.default_rng([seed_val, zlib.crc32(cc.encode())]) for cc in codes]
        seed_attr = seed_val
    else:
        raise DataFormatError(
            f"random_state must be an int, a numpy Generator or None, got "
            f"{type(random_state).__name__}; pass e.g. random_state=0"
        )

    grid = TimeGrid.cropglobe()
    values: list[NDArray[np.float32]] = []
    labels: list[NDArray[np.int64]] = []
    metas: list[pd.DataFrame] = []
    for cc, rng in zip(codes, children, strict=True):
        v, lab, meta = _simulate_country(
            cc, n, rng, grid, year=year, shift=shift.get(cc, 0.0), cloud_fraction=cf,
            residual_cloud=rc, noise=float(noise), aligned=season_aligned_south,
            weights=weights,
        )  # fmt: skip
        sel = v[:, band_idx, :]
        if want_ndvi:
            nir, red = v[:, 6, :], v[:, 2, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                nd = np.where(nir + red > 0, (nir - red) / (nir + red), np.nan)
            pos = out_bands.index("NDVI")
            sel = np.insert(sel, pos, nd, axis=1)
        values.append(sel.astype(np.float32))
        labels.append(lab)
        metas.append(meta)
    attrs: dict[str, Any] = {
        "synthetic": True,
        "generator": "cropglobe.simulate",
        "source": "synthetic (cropglobe.simulate): not real observations",
        "random_state": seed_attr,
        "phenology_shift": {k: float(v) for k, v in shift.items()},
        "countries": list(codes),
        "year": int(year),
        "cloud_fraction": cf,
        "residual_cloud": rc,
        "noise": float(noise),
        "season_aligned_south": bool(season_aligned_south),
        "south_rotation_days": 5 * SOUTH_ROTATION_BINS if season_aligned_south else 0,
        "reflectance_scale": 10_000,
    }
    ss = SeriesSet(
        np.concatenate(values),
        out_bands,
        grid,
        np.concatenate(labels),
        CROPGLOBE_CLASSES,
        pd.concat(metas, ignore_index=True),
        attrs,
    )
    logger.info("simulated %d synthetic samples in %d countries", ss.n_samples, len(codes))
    return ss


def write_world(
    ss: SeriesSet,
    root: str | os.PathLike[str],
    *,
    kinds: Sequence[str] = ("for_CropNet", "Median"),
) -> list[Path]:
    """Write a simulated world in the exact CropGlobe release layout (one file per country).

    Files are ``{root}/for_CropNet/median_S2_{CC}_month1-12_day5.npz`` and
    ``{root}/Median/median_S2_{CC}_month5-11_day5.npz`` (keys ``fea`` float32, ``lbl`` int64,
    ``meta_json`` and ``meta_parquet``), written by :func:`cropglobe.io.write_cropglobe`. Every
    file's metadata says ``synthetic: true`` and names the generator.

    Args:
        ss: a set from :func:`simulate_world` (needs ``meta["country"]``; must be on the 73-bin
            CropGlobe grid).
        root: output root folder (created when missing).
        kinds: which release folders to write (``"for_CropNet"``, ``"Median"``).

    Returns:
        The written paths, countries × kinds.

    Raises:
        DataFormatError: the set has no ``country`` column.
        GridError, LabelError: the set does not fit the release layout.
    """
    from cropglobe.io.cropglobe_npz import write_cropglobe

    if "country" not in ss.meta:
        raise DataFormatError(
            f"write_world needs meta column 'country' to split the set into one file per "
            f"country; got columns {list(ss.meta.columns)}; use a set from simulate_world"
        )
    countries = list(dict.fromkeys(ss.meta["country"].astype(str)))
    sets = {cc: ss.where(country=cc) for cc in countries}
    extra = {
        "synthetic": True,
        "generator": ss.attrs.get("generator", "cropglobe.simulate"),
        "source": "synthetic (cropglobe.simulate): not real observations",
    }
    return write_cropglobe(root, sets, kinds=kinds, extra=extra)


# ------------------------------------------------------------------------------ validation
def _check_country(code: str, name: str) -> str:
    cc = normalise_country(str(code))
    if cc not in _COUNTRY_TRAITS:
        raise DataFormatError(
            f"{name}: no synthetic crop calendar for {code!r}; expected one of "
            f"{', '.join(CROPGLOBE_COUNTRIES)}; pick a CropGlobe country"
        )
    return cc


def _check_countries(countries: Sequence[str] | str) -> tuple[str, ...]:
    items = [c for c in countries.split(",")] if isinstance(countries, str) else list(countries)
    codes = tuple(_check_country(c.strip(), "countries") for c in items if str(c).strip())
    if not codes:
        raise DataFormatError(
            f"countries must name at least one of {', '.join(CROPGLOBE_COUNTRIES)}, got "
            f"{countries!r}"
        )
    if len(set(codes)) != len(codes):
        raise DataFormatError(
            f"countries must not repeat a country, got {list(codes)}; list each country once"
        )
    return codes


def _check_int(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise DataFormatError(f"{name} must be an integer ≥ {lo}, got {value!r}")
    return int(value)


def _check_fraction(value: Any, name: str, *, upper_open: bool = False) -> float:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    v = float(value) if ok else float("nan")
    if not ok or not (0.0 <= v < 1.0 if upper_open else 0.0 <= v <= 1.0):
        upper = "< 1" if upper_open else "≤ 1"
        raise DataFormatError(
            f"{name} must be a fraction with 0 ≤ {name} {upper}, got {value!r}; pass e.g. 0.3"
        )
    return v


def _check_shift(shift: Mapping[str, float] | None, codes: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, days in (shift or {}).items():
        cc = _check_country(key, "phenology_shift")
        if cc not in codes:
            raise DataFormatError(
                f"phenology_shift names {key!r}, which is not simulated (countries: "
                f"{', '.join(codes)}); add it to countries or drop the shift"
            )
        try:
            d = float(days)
        except (TypeError, ValueError):
            d = float("nan")
        if not np.isfinite(d) or abs(d) > 180:
            raise DataFormatError(
                f"phenology_shift[{key!r}] must be a number of days between −180 and 180, got "
                f"{days!r}"
            )
        out[cc] = d
    return out


def _check_bands(bands: Sequence[str]) -> tuple[tuple[str, ...], list[int], bool]:
    if isinstance(bands, str):
        bands = [bands]
    names = tuple(canonical_band(str(b)) for b in bands)
    if not names or len(set(names)) != len(names):
        raise BandError(
            f"bands must list distinct band names, got {list(bands)}; e.g. {list(S2_BANDS)}"
        )
    bad = [b for b, c in zip(bands, names, strict=True) if c not in S2_BANDS and c != "NDVI"]
    if bad:
        raise BandError(
            f"bands: the simulator cannot produce {bad}; expected names among "
            f"{list(S2_BANDS)} or 'NDVI'"
        )
    idx = [S2_BANDS.index(b) for b in names if b != "NDVI"]
    return names, idx, "NDVI" in names


def _check_class_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_CLASS_WEIGHTS)
    out: dict[str, float] = {}
    for name, w in weights.items():
        if name not in CROPGLOBE_CLASSES:
            raise LabelError(
                f"class_weights names unknown class {name!r}; expected names among "
                f"{list(CROPGLOBE_CLASSES)}"
            )
        try:
            wf = float(w)
        except (TypeError, ValueError):
            wf = float("nan")
        if not np.isfinite(wf) or wf < 0:
            raise LabelError(f"class_weights[{name!r}] must be a number ≥ 0, got {w!r}")
        out[name] = wf
    return out


# ------------------------------------------------------------------------------ generation
def _sig(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def _allocate(n: int, probs: NDArray[np.float64]) -> NDArray[np.int64]:
    """Exact counts summing to n from probabilities (largest remainder)."""
    raw = probs * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - int(counts.sum())
    if rest > 0:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def _components(cc: str) -> list[CalendarEntry]:
    return [e for e in CROP_CALENDARS if e.country == cc]


def _simulate_country(
    cc: str,
    n: int,
    rng: np.random.Generator,
    grid: TimeGrid,
    *,
    year: int,
    shift: float,
    cloud_fraction: float,
    residual_cloud: float,
    noise: float,
    aligned: bool,
    weights: Mapping[str, float],
) -> tuple[NDArray[np.float64], NDArray[np.int64], pd.DataFrame]:
    """All 10 bands (N, 10, T) float64, labels (N,) and meta of one country."""
    info = _country_info(cc)
    ct = _COUNTRY_TRAITS[cc]
    comps = _components(cc)
    available = [c for c in CROPGLOBE_CLASSES if c in info.classes]
    missing = [c for c in available if not any(e.crop == c for e in comps)]
    if missing:  # a packaging error, not a user error
        raise LabelError(f"country table maps {missing} in {cc} but no crop calendar exists")
    cls_w = np.array([weights.get(c, 0.0) for c in available])
    if cls_w.sum() <= 0:
        raise LabelError(
            f"class_weights leave {cc} with no class: it maps {available}; give at least one "
            "of them a positive weight"
        )
    counts = _allocate(n, cls_w / cls_w.sum())
    cls_names = np.repeat(np.array(available, dtype=object), counts)
    rng.shuffle(cls_names)
    label = np.array([CROPGLOBE_CLASSES.index(c) for c in cls_names], dtype=np.int64)

    # component of each sample
    comp_idx = np.zeros(n, dtype=np.int64)
    for c in available:
        members = np.flatnonzero(cls_names == c)
        opts = [i for i, e in enumerate(comps) if e.crop == c]
        p = np.array([comps[i].weight for i in opts])
        comp_idx[members] = np.asarray(opts)[rng.choice(len(opts), members.size, p=p / p.sum())]

    # calendar dates, unwrapped so that sow < green < peak < harvest, peak in 1…365
    cal = np.array([[e.sow, e.green, e.peak, e.harvest] for e in comps], dtype=np.float64)
    cal[:, 1] = cal[:, 2] - (cal[:, 2] - cal[:, 1]) % 365.0  # green-up before the peak
    cal[:, 0] = cal[:, 1] - (cal[:, 1] - cal[:, 0]) % 365.0  # sowing before green-up
    cal[:, 3] = cal[:, 2] + (cal[:, 3] - cal[:, 2]) % 365.0  # harvest after the peak
    traits = [_TRAITS[e.component] for e in comps]
    tr = {
        name: np.array([getattr(t, name) for t in traits], dtype=np.float64)[comp_idx]
        for name in (
            "amp",
            "sen",
            "winter",
            "residue",
            "base",
            "flood",
            "boll",
            "date_sd",
            "cover",
            "precrop",
        )
    }
    region = rng.integers(0, len(_REGIONS), n)
    reg_off = np.array([r[1] for r in _REGIONS])[region] * ct.region_days
    common = rng.normal(0.0, 1.0, n) * tr["date_sd"] + reg_off + shift
    dates = cal[comp_idx] + common[:, None] + rng.normal(0.0, 3.0, (n, 4))
    sow, green, peak, harvest = (dates[:, i : i + 1] for i in range(4))
    green = np.maximum(green, sow + 2)
    peak = np.maximum(peak, green + 20)
    harvest = np.maximum(harvest, peak + 15)

    amp = np.clip(tr["amp"] * ct.amp * rng.normal(1.0, 0.05, n), 0.05, 0.98)[:, None]
    sen = tr["sen"][:, None]
    winter = (tr["winter"] * (0.4 + 0.6 * ct.winter_green))[:, None]
    residue = (tr["residue"] * rng.uniform(0.6, 1.2, n))[:, None]
    base = (tr["base"] * ct.winter_green * rng.uniform(0.7, 1.1, n))[:, None]
    flood = tr["flood"][:, None]
    boll = (tr["boll"] * rng.uniform(0.1, 0.2, n))[:, None]
    has_cover = (tr["cover"] > 0) & (rng.random(n) < ct.p_cover)
    cover_amp = (has_cover * rng.uniform(0.3, 0.65, n))[:, None]
    cover_amp = np.maximum(cover_amp, (tr["precrop"] * rng.uniform(0.85, 1.05, n))[:, None])

    # acquisition day within each 5-day bin
    t_obs = grid.centers[None, :] + rng.uniform(-2.0, 2.0, (n, grid.n_steps))
    green_f = np.zeros_like(t_obs)
    dry_f = np.zeros_like(t_obs)
    water_f = np.zeros_like(t_obs)
    boll_f = np.zeros_like(t_obs)
    cover_f = np.zeros_like(t_obs)
    rise_g = np.maximum((peak - green) / 7.0, 3.0)
    g_mid = 0.5 * (green + peak)
    s_mid = peak + 0.55 * (harvest - peak)
    rise_s = np.maximum((harvest - peak) / 8.0, 3.0)
    for k in (-365.0, 0.0, 365.0):
        tt = t_obs + k
        estab = _sig((tt - (sow + 12.0)) / 4.0)
        rise = estab * (winter + (1.0 - winter) * _sig((tt - g_mid) / rise_g))
        senes = _sig((tt - s_mid) / rise_s)
        cut = _sig(-(tt - harvest) / 2.0)
        canopy = amp * rise * cut
        green_f += canopy * (1.0 - sen * senes)
        after = np.clip(tt - harvest, 0.0, None)
        dry_f += canopy * sen * senes + residue * (1.0 - cut) * np.exp(-after / 70.0)
        water_f += flood * _sig((tt - (sow - 12.0)) / 3.0) * _sig(-(tt - (harvest - 25.0)) / 4.0)
        boll_f += boll * senes * cut
        cover_f += _sig((tt - (harvest + 40.0)) / 6.0) * _sig(-(tt - (sow + 350.0)) / 5.0)
    dry_f = np.minimum(dry_f, 0.9)
    green_f = np.maximum(green_f, cover_amp * np.minimum(cover_f, 1.0))
    # evergreen baseline (grassland): seasonal canopy on top of a winter-damped baseline
    green_f = base + (1.0 - base) * green_f
    water_f = np.minimum(water_f, 1.0) * 0.75 * np.clip(1.0 - green_f / 0.85, 0.0, 1.0)
    total = green_f + dry_f + water_f + boll_f
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-9), 1.0)
    green_f, dry_f, water_f, boll_f = (
        green_f * scale,
        dry_f * scale,
        water_f * scale,
        boll_f * scale,
    )
    soil_f = np.clip(1.0 - green_f - dry_f - water_f - boll_f, 0.0, 1.0)

    # endmember spectra per sample
    nuance_names, nuance_vec = _nuance_vectors()
    spec_key = np.array([nuance_names.index(t.spec) for t in traits])[comp_idx]
    gv = _GV[None, :] * nuance_vec[spec_key]
    gv[:, 6:8] *= rng.normal(1.0, 0.05, (n, 1))  # leaf area / structure
    gv[:, 0:3] *= rng.normal(1.0, 0.06, (n, 1))  # chlorophyll
    gv[:, 8:10] *= ct.swir_dry * rng.normal(1.0, 0.05, (n, 1))  # leaf water
    soil = _SOILS[ct.soil][None, :] * ct.soil_brightness * rng.normal(1.0, 0.12, (n, 1))
    soil *= rng.normal(1.0, 0.03, (n, 10))  # small per-sample soil colour variation
    dry = _DRY[None, :] * rng.normal(1.0, 0.08, (n, 1))

    refl = (
        green_f[:, None, :] * gv[:, :, None]
        + dry_f[:, None, :] * dry[:, :, None]
        + soil_f[:, None, :] * soil[:, :, None]
        + water_f[:, None, :] * _WATER[None, :, None]
        + boll_f[:, None, :] * _BOLL[None, :, None]
    )

    # snow on low canopies in northern winters (calendar time, before any rotation)
    if ct.snow > 0:
        # snow chance peaks mid-January and fades out by mid-November / mid-March
        season = np.clip(2.0 * np.cos(2.0 * np.pi * (t_obs - 15.0) / 365.0) - 1.0, 0.0, 1.0)
        snowy = (rng.random(t_obs.shape) < ct.snow * season) & (green_f < 0.35)
        cover = rng.uniform(0.5, 0.95, t_obs.shape)
        mix = np.where(snowy, cover, 0.0)[:, None, :]
        refl = (1.0 - mix) * refl + mix * _SNOW[None, :, None]

    # observation: illumination / atmospheric noise, additive noise, clouds
    if noise > 0:
        refl *= rng.normal(1.0, 2.0 * noise, (n, 1, grid.n_steps))
        refl += rng.normal(0.0, noise * 10_000.0, refl.shape)
    cloudy = rng.random((n, grid.n_steps)) < cloud_fraction
    residual = cloudy & (rng.random((n, grid.n_steps)) < residual_cloud)
    masked = cloudy & ~residual
    haze = np.where(residual, rng.uniform(0.25, 0.85, (n, grid.n_steps)), 0.0)[:, None, :]
    refl = (1.0 - haze) * refl + haze * _CLOUD[None, :, None]
    refl = np.clip(refl, 0.0, 10_000.0)
    empty = masked.all(axis=1)
    if empty.any():  # keep at least one valid observation per sample
        masked[np.flatnonzero(empty), rng.integers(0, grid.n_steps, int(empty.sum()))] = False
    refl[np.broadcast_to(masked[:, None, :], refl.shape)] = np.nan

    if aligned and info.hemisphere == "south":
        refl = np.roll(refl, -SOUTH_ROTATION_BINS, axis=-1)

    lat_sign = 1.0 if info.hemisphere == "north" else -1.0
    lat = info.lat + lat_sign * np.array([r[2] for r in _REGIONS])[region] + rng.normal(0, 0.8, n)
    lon = info.lon + rng.normal(0.0, 1.2, n)
    meta = pd.DataFrame(
        {
            "sample_id": [f"{cc}_{i:06d}" for i in range(n)],
            "country": cc,
            "region": np.array([f"{cc}-{r[0]}" for r in _REGIONS], dtype=object)[region],
            "year": np.full(n, int(year), dtype=np.int64),
            "lon": np.round(lon, 5),
            "lat": np.round(np.clip(lat, -89.9, 89.9), 5),
        }
    )
    return refl, label, meta
