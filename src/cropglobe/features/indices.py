"""Spectral indices computed from band *names* (never positions), NaN-safe.

Formulas (ρ = surface reflectance, i.e. digital number / ``scale``; Sentinel-2 band codes):

========  ==================================================  ====================================
index     formula                                             bands
========  ==================================================  ====================================
NDVI      (NIR − red) / (NIR + red)                           B08, B04
EVI       2.5 (NIR − red) / (NIR + 6 red − 7.5 blue + 1)      B08, B04, B02 (needs ``scale``)
NDWI      (green − NIR) / (green + NIR)  (McFeeters 1996)     B03, B08
NDRE      (NIR − red-edge 1) / (NIR + red-edge 1)             B08, B05
GCVI      NIR / green − 1                                     B08, B03
NBR       (NIR − SWIR2) / (NIR + SWIR2)                       B08, B12
NDMI      (NIR − SWIR1) / (NIR + SWIR1)  (Gao's NDWI)         B08, B11
SAVI      1.5 (NIR − red) / (NIR + red + 0.5)                 B08, B04 (needs ``scale``)
========  ==================================================  ====================================

Ratio indices do not depend on ``scale``; EVI and SAVI do (they add constants in reflectance
units). A missing input (NaN) or a zero denominator gives NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils.validation import check_is_fitted

from cropglobe.bands import canonical_band
from cropglobe.errors import BandError, DataFormatError
from cropglobe.features._base import SeriesTransformer
from cropglobe.series import SeriesSet, TimeGrid

__all__ = ["INDEX_BANDS", "SpectralIndices", "compute_index", "compute_indices"]

Arr = NDArray[np.float64]

#: Bands each index needs, in the order its formula takes them.
INDEX_BANDS: dict[str, tuple[str, ...]] = {
    "NDVI": ("B08", "B04"),
    "EVI": ("B08", "B04", "B02"),
    "NDWI": ("B03", "B08"),
    "NDRE": ("B08", "B05"),
    "GCVI": ("B08", "B03"),
    "NBR": ("B08", "B12"),
    "NDMI": ("B08", "B11"),
    "SAVI": ("B08", "B04"),
}


def _nd(a: Arr, b: Arr) -> Arr:
    den = a + b
    return np.where(den != 0, (a - b) / np.where(den != 0, den, 1.0), np.nan)


def _evi(nir: Arr, red: Arr, blue: Arr) -> Arr:
    den = nir + 6.0 * red - 7.5 * blue + 1.0
    return np.where(den != 0, 2.5 * (nir - red) / np.where(den != 0, den, 1.0), np.nan)


def _gcvi(nir: Arr, green: Arr) -> Arr:
    return np.where(green != 0, nir / np.where(green != 0, green, 1.0) - 1.0, np.nan)


def _savi(nir: Arr, red: Arr) -> Arr:
    den = nir + red + 0.5
    return np.where(den != 0, 1.5 * (nir - red) / np.where(den != 0, den, 1.0), np.nan)


_FORMULAS: dict[str, Callable[..., Arr]] = {
    "NDVI": _nd,
    "EVI": _evi,
    "NDWI": _nd,
    "NDRE": _nd,
    "GCVI": _gcvi,
    "NBR": _nd,
    "NDMI": _nd,
    "SAVI": _savi,
}


def _index_name(name: str, param: str = "indices") -> str:
    key = str(name).strip().upper()
    if key not in INDEX_BANDS:
        raise BandError(
            f"{param}: unknown spectral index {name!r}; expected one of {sorted(INDEX_BANDS)}"
        )
    return key


def compute_index(
    values: NDArray[np.floating[Any]],
    bands: Sequence[str],
    index: str,
    *,
    scale: float = 10_000.0,
    band_axis: int = -2,
) -> NDArray[np.float32]:
    """One spectral index from an array with a band axis.

    Args:
        values: float array, e.g. (N, C, T) series or (N, C) spectra; NaN marks missing data.
        bands: the C band names along ``band_axis`` (any spelling :func:`canonical_band` knows).
        index: index name (see the module table), case-insensitive.
        scale: digital number per unit reflectance (10,000 for Sentinel-2 L2A; 1 for
            reflectance already in 0…1). Only EVI and SAVI depend on it.
        band_axis: axis of ``values`` that holds the bands.

    Returns:
        float32 array of ``values``'s shape without the band axis.

    Raises:
        BandError: unknown index, or a band the index needs is absent (the message names both).
    """
    key = _index_name(index, "index")
    canon = [canonical_band(str(b)) for b in bands]
    if scale <= 0:
        raise DataFormatError(
            f"scale must be a positive number (DN per reflectance unit), got {scale}"
        )
    arr = np.asarray(values)
    if key in canon:  # the index is already a band (e.g. CAWa NDVI)
        return np.take(arr, canon.index(key), axis=band_axis).astype(np.float32)
    inputs = []
    for b in INDEX_BANDS[key]:
        if b not in canon:
            raise BandError(
                f"index {key} needs band {b} ({', '.join(INDEX_BANDS[key])}) but the data has "
                f"bands {list(bands)}; drop {key} from the indices or provide {b}"
            )
        inputs.append(np.take(arr, canon.index(b), axis=band_axis).astype(np.float64) / scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _FORMULAS[key](*inputs)
    return np.asarray(out, dtype=np.float32)


def compute_indices(
    values: NDArray[np.floating[Any]],
    bands: Sequence[str],
    indices: Sequence[str],
    *,
    scale: float = 10_000.0,
    band_axis: int = -2,
) -> NDArray[np.float32]:
    """Several indices stacked along ``band_axis``, in order (see :func:`compute_index`)."""
    parts = [compute_index(values, bands, i, scale=scale, band_axis=band_axis) for i in indices]
    if not parts:
        shape = list(np.shape(values))
        shape[band_axis] = 0
        return np.zeros(shape, dtype=np.float32)
    return np.stack(parts, axis=band_axis)


class SpectralIndices(SeriesTransformer):
    """Spectral indices as extra bands of a series (NDVI, EVI, NDWI, NDRE, GCVI, NBR …).

    A series-to-series transformer: a SeriesSet in gives a SeriesSet out (bands = input bands
    followed by the indices when ``append``, else the indices only); an array (N, C, T) in gives
    an array (N, C', T) out. Indices that are already bands of the input are taken as they are
    and not repeated. Chain it before :class:`~cropglobe.features.Median1D` or
    :class:`~cropglobe.features.Harmonics`.

    Args:
        indices: index names (see :mod:`cropglobe.features.indices`).
        scale: digital number per unit reflectance (10,000 for Sentinel-2 L2A × 10,000).
        append: keep the input bands and append the indices (True) or output indices only.
        input_bands: band names of array input (ignored for SeriesSet input).
        input_grid: time grid of array input (ignored for SeriesSet input).

    Attributes:
        bands_in_: input band names seen at fit.
        grid_in_: input time grid seen at fit.
        bands_out_: output band names.
    """

    def __init__(
        self,
        indices: Sequence[str] = ("NDVI", "EVI", "NDWI", "NDRE", "GCVI", "NBR"),
        scale: float = 10_000.0,
        append: bool = True,
        input_bands: Sequence[str] | None = None,
        input_grid: TimeGrid | dict[str, Any] | None = None,
    ) -> None:
        self.indices = indices
        self.scale = scale
        self.append = append
        self.input_bands = input_bands
        self.input_grid = input_grid

    def fit(self, X: Any, y: Any = None) -> SpectralIndices:
        """Check that every needed band is present and remember bands and grid.

        Args:
            X: SeriesSet or float array (N, C, T).
            y: ignored.

        Returns:
            self.
        """
        values, bands, _ = self._fit_input(X)
        names = [_index_name(i) for i in self.indices]
        if len(set(names)) != len(names):
            raise BandError(f"indices lists an index twice: {list(self.indices)}; give each once")
        compute_indices(values[:1], bands, names, scale=self.scale)  # fails early, clearly
        new = [n for n in names if n not in bands]
        self.indices_ = tuple(names)
        self.bands_out_ = (*bands, *new) if self.append else tuple(names)
        return self

    def _compute(self, values: NDArray[np.float32], bands: tuple[str, ...]) -> NDArray[np.float32]:
        new = [n for n in self.indices_ if n not in bands]
        if self.append:
            extra = compute_indices(values, bands, new, scale=self.scale)
            return np.concatenate([values, extra], axis=1).astype(np.float32, copy=False)
        return compute_indices(values, bands, self.indices_, scale=self.scale)

    def transform(self, X: Any) -> Any:
        """Indices of ``X``.

        Args:
            X: SeriesSet or float array (N, C, T) with the fitted bands and grid.

        Returns:
            SeriesSet (same samples, bands ``bands_out_``) for SeriesSet input, else float32
            array (N, len(bands_out_), T).
        """
        values, bands, grid = self._check_input(X)
        out = self._compute(values, bands)
        if isinstance(X, SeriesSet):
            return SeriesSet(out, self.bands_out_, grid, X.labels, X.classes, X.meta, dict(X.attrs))
        return out

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """Output band names (the series keep their time axis)."""
        check_is_fitted(self, "bands_out_")
        return np.asarray(self.bands_out_, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
