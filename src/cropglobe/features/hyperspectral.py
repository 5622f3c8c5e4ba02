"""Hyperspectral (EMIT) features: good-band selection, smoothing, PCA, simulated Sentinel-2 bands.

Transformers take a :class:`~cropglobe.io.emit.Spectra` (from
:func:`~cropglobe.io.emit.read_emit_points`) or a float array (N, B) whose band wavelengths (nm)
were given at construction (``wavelengths=``). Spectra in give Spectra out for the band-wise steps
(:class:`GoodBands`, :class:`SpectralSmoother`), so a scikit-learn ``Pipeline`` keeps track of the
wavelengths; :class:`SpectralPCA` and :class:`SimulateS2` return plain (N, F) feature matrices.
``fit`` remembers the wavelengths; ``transform`` refuses spectra on other wavelengths.

Simulated Sentinel-2 (:class:`SimulateS2`): each Sentinel-2 band's spectral response function is
approximated by a Gaussian centred on the band's central wavelength with the band's FWHM
(:data:`cropglobe.bands.S2_CATALOGUE`, S2A). The band value is the response-weighted mean of the
spectrum, ρ_b = Σ_i w_bi ρ_i / Σ_i w_bi with w_bi = SRF_b(λ_i) · Δλ_i (Δλ_i the EMIT band's FWHM
when known, else the median band spacing), over the valid bands of each sample. Real MSI
responses are flatter-topped with steeper edges; for smooth vegetation spectra the Gaussian
approximation differs by about 1 % of reflectance, more for the wide B08 and B12 bands where the
spectrum curves. A flat spectrum gives exactly its value in every band. A band whose response is
less than ``min_coverage`` covered by valid bands (B10 cirrus once the 1340–1450 nm water-vapour
region is dropped) is NaN.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from cropglobe.bands import S2_BANDS, S2_CATALOGUE, canonical_band
from cropglobe.errors import BandError, DataFormatError
from cropglobe.io.emit import Spectra, wavelength_names

__all__ = [
    "WATER_VAPOUR_NM",
    "GoodBands",
    "SimulateS2",
    "SpectralPCA",
    "SpectralSmoother",
    "s2_response_matrix",
]

#: Water-vapour absorption regions dropped by default (nm, inclusive).
WATER_VAPOUR_NM: tuple[tuple[float, float], ...] = ((1340.0, 1450.0), (1800.0, 1970.0))

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


class _SpectralTransformer(TransformerMixin, BaseEstimator):
    """Reads Spectra or (N, B) arrays and checks wavelengths against fit."""

    wavelengths: Sequence[float] | NDArray[np.floating[Any]] | None

    def _unpack(self, X: Any) -> tuple[NDArray[np.float32], NDArray[np.float64], Spectra | None]:
        if isinstance(X, Spectra):
            return X.values, X.wavelengths, X
        if self.wavelengths is None:
            raise DataFormatError(
                f"{type(self).__name__} got a {type(X).__name__} without wavelengths; pass a "
                "cropglobe.io.emit.Spectra, or give wavelengths=... (nm, one per band) at init"
            )
        arr = np.asarray(X, dtype=np.float32)
        wl = np.asarray(self.wavelengths, dtype=np.float64).reshape(-1)
        if arr.ndim != 2 or arr.shape[1] != wl.size:
            raise DataFormatError(
                f"{type(self).__name__} input must be (samples, {wl.size} bands) to match "
                f"wavelengths, got shape {arr.shape}"
            )
        return arr, wl, None

    def _fit_input(self, X: Any) -> tuple[NDArray[np.float32], NDArray[np.float64], Spectra | None]:
        values, wl, spectra = self._unpack(X)
        if wl.size > 1 and np.any(np.diff(wl) <= 0):
            raise DataFormatError(
                f"{type(self).__name__}: wavelengths must increase strictly, got "
                f"{wl[:4].round(1).tolist()}…; sort the bands"
            )
        self.wavelengths_in_ = wl
        return values, wl, spectra

    def _check_input(
        self, X: Any
    ) -> tuple[NDArray[np.float32], NDArray[np.float64], Spectra | None]:
        check_is_fitted(self, "wavelengths_in_")
        values, wl, spectra = self._unpack(X)
        if wl.shape != self.wavelengths_in_.shape or not np.allclose(
            wl, self.wavelengths_in_, atol=0.01
        ):
            raise BandError(
                f"{type(self).__name__} was fitted on {self.wavelengths_in_.size} bands "
                f"({self.wavelengths_in_[0]:.1f}…{self.wavelengths_in_[-1]:.1f} nm) but received "
                f"{wl.size} bands ({wl[0] if wl.size else float('nan'):.1f}… nm); give spectra on "
                "the fitted wavelengths or refit"
            )
        return values, wl, spectra

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        return tags


class GoodBands(_SpectralTransformer):
    """Keep the usable bands: drop water-vapour absorption regions and bands flagged bad.

    Args:
        exclude: wavelength ranges (nm, inclusive) to drop; default 1340–1450 and 1800–1970 nm.
        use_good_flags: also drop bands whose ``good_wavelengths`` flag is 0 (Spectra input, or
            ``good=`` for arrays).
        min_nm, max_nm: optional overall range to keep (e.g. drop the noisy ends < 400 nm).
        wavelengths: band wavelengths (nm) of array input.
        good: good-band flags of array input (default all good).

    Attributes:
        wavelengths_in_: input wavelengths seen at fit.
        mask_: bool (B,) kept bands.
        wavelengths_out_: kept wavelengths.
    """

    def __init__(
        self,
        exclude: Sequence[tuple[float, float]] = WATER_VAPOUR_NM,
        use_good_flags: bool = True,
        min_nm: float | None = None,
        max_nm: float | None = None,
        wavelengths: Sequence[float] | NDArray[np.floating[Any]] | None = None,
        good: Sequence[bool] | NDArray[np.bool_] | None = None,
    ) -> None:
        self.exclude = exclude
        self.use_good_flags = use_good_flags
        self.min_nm = min_nm
        self.max_nm = max_nm
        self.wavelengths = wavelengths
        self.good = good

    def fit(self, X: Any, y: Any = None) -> GoodBands:
        """Decide which bands to keep.

        Args:
            X: Spectra or float array (N, B).
            y: ignored.

        Returns:
            self.
        """
        _, wl, spectra = self._fit_input(X)
        mask = np.ones(wl.size, dtype=bool)
        for lo, hi in self.exclude:
            mask &= ~((wl >= lo) & (wl <= hi))
        if self.min_nm is not None:
            mask &= wl >= self.min_nm
        if self.max_nm is not None:
            mask &= wl <= self.max_nm
        if self.use_good_flags:
            flags = spectra.good if spectra is not None else self.good
            if flags is not None:
                f = np.asarray(flags, dtype=bool).reshape(-1)
                if f.size != wl.size:
                    raise DataFormatError(
                        f"good has {f.size} flags for {wl.size} bands; give one per band"
                    )
                mask &= f
        if not mask.any():
            raise BandError("GoodBands would drop every band; check exclude, min_nm and max_nm")
        self.mask_ = mask
        self.wavelengths_out_ = wl[mask]
        return self

    def transform(self, X: Any) -> Any:
        """Spectra (or array (N, B_kept)) restricted to the kept bands."""
        values, _, spectra = self._check_input(X)
        if spectra is not None:
            return spectra.with_bands(self.mask_)
        return values[:, self.mask_]

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``R{nm:04d}`` names of the kept bands."""
        check_is_fitted(self, "mask_")
        return np.asarray(wavelength_names(self.wavelengths_out_), dtype=object)


def _segments(wl: NDArray[np.float64]) -> list[slice]:
    """Runs of bands without a spectral gap (a step > 1.5 × the median spacing)."""
    if wl.size < 2:
        return [slice(0, wl.size)]
    step = np.diff(wl)
    cuts = np.flatnonzero(step > 1.5 * np.median(step)) + 1
    edges = [0, *cuts.tolist(), wl.size]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


class SpectralSmoother(_SpectralTransformer):
    """Savitzky–Golay smoothing along wavelength, within each run of contiguous bands.

    Runs are split where bands were removed (a wavelength step > 1.5 × the median spacing), so
    smoothing never bridges a dropped absorption region; runs shorter than ``window_length`` are
    left as they are. NaN entries spread over the window they fall in.

    Args:
        window_length: odd number of bands in the filter window.
        polyorder: polynomial order (< window_length).
        wavelengths: band wavelengths (nm) of array input.
    """

    def __init__(
        self,
        window_length: int = 7,
        polyorder: int = 2,
        wavelengths: Sequence[float] | NDArray[np.floating[Any]] | None = None,
    ) -> None:
        self.window_length = window_length
        self.polyorder = polyorder
        self.wavelengths = wavelengths

    def fit(self, X: Any, y: Any = None) -> SpectralSmoother:
        """Check parameters and remember the wavelengths."""
        _, wl, _ = self._fit_input(X)
        if self.window_length < 3 or self.window_length % 2 == 0:
            raise DataFormatError(
                f"window_length must be an odd integer >= 3, got {self.window_length}"
            )
        if not 0 <= self.polyorder < self.window_length:
            raise DataFormatError(
                f"polyorder must be in 0…{self.window_length - 1} (below window_length), "
                f"got {self.polyorder}"
            )
        self.segments_ = _segments(wl)
        return self

    def transform(self, X: Any) -> Any:
        """Smoothed Spectra (or float32 array (N, B))."""
        from scipy.signal import savgol_filter

        values, _, spectra = self._check_input(X)
        out = values.astype(np.float64, copy=True)
        for seg in self.segments_:
            if seg.stop - seg.start >= self.window_length:
                out[:, seg] = savgol_filter(out[:, seg], self.window_length, self.polyorder, axis=1)
        res = out.astype(np.float32)
        if spectra is not None:
            return spectra.with_bands(np.ones(spectra.n_bands, dtype=bool), res)
        return res

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``R{nm:04d}`` band names."""
        check_is_fitted(self, "wavelengths_in_")
        return np.asarray(wavelength_names(self.wavelengths_in_), dtype=object)


class SpectralPCA(_SpectralTransformer):
    """Principal components of the spectra (deterministic full SVD).

    Args:
        n_components: number of components kept.
        wavelengths: band wavelengths (nm) of array input.

    Attributes:
        pca_: the fitted :class:`sklearn.decomposition.PCA`.
        explained_variance_ratio_: (n_components,) share of variance per component.
    """

    def __init__(
        self,
        n_components: int = 10,
        wavelengths: Sequence[float] | NDArray[np.floating[Any]] | None = None,
    ) -> None:
        self.n_components = n_components
        self.wavelengths = wavelengths

    @staticmethod
    def _finite(values: NDArray[np.float32]) -> NDArray[np.float32]:
        if np.isnan(values).any():
            rows = int(np.isnan(values).any(axis=1).sum())
            raise DataFormatError(
                f"SpectralPCA got {rows} spectra with missing values (NaN); drop those samples "
                "(e.g. points outside the scene) or apply GoodBands first"
            )
        return values

    def fit(self, X: Any, y: Any = None) -> SpectralPCA:
        """Fit the components on complete spectra."""
        from sklearn.decomposition import PCA

        values, _, _ = self._fit_input(X)
        self.pca_ = PCA(n_components=self.n_components, svd_solver="full").fit(self._finite(values))
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        return self

    def transform(self, X: Any) -> NDArray[np.float32]:
        """float32 (N, n_components) component scores."""
        values, _, _ = self._check_input(X)
        return np.asarray(self.pca_.transform(self._finite(values)), dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``pc01``, ``pc02``, …"""
        check_is_fitted(self, "pca_")
        return np.asarray([f"pc{i + 1:02d}" for i in range(self.pca_.n_components_)], dtype=object)


def s2_response_matrix(
    wavelengths: NDArray[np.floating[Any]],
    bands: Sequence[str] = S2_BANDS,
    widths: NDArray[np.floating[Any]] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gaussian Sentinel-2 response weights on a hyperspectral band set.

    Args:
        wavelengths: (B,) hyperspectral band centres, nm.
        bands: Sentinel-2 band codes (``B02`` …).
        widths: (B,) width each hyperspectral band stands for (nm; its FWHM); default the
            median band spacing.

    Returns:
        ``(weights, mass)``: weights (len(bands), B) = SRF(λ_i) Δλ_i, and the full integral of
        each Gaussian response (len(bands),) = σ √(2π), to judge coverage.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if widths is None:
        spacing = float(np.median(np.diff(wl))) if wl.size > 1 else 1.0
        dl = np.full(wl.size, spacing)
    else:
        dl = np.asarray(widths, dtype=np.float64).reshape(-1)
    rows, mass = [], []
    for b in bands:
        code = canonical_band(str(b))
        if code not in S2_CATALOGUE:
            raise BandError(
                f"bands: {b!r} is not a Sentinel-2 band; expected codes from {sorted(S2_CATALOGUE)}"
            )
        info = S2_CATALOGUE[code]
        sigma = info.width_nm * _FWHM_TO_SIGMA
        rows.append(np.exp(-0.5 * ((wl - info.center_nm) / sigma) ** 2) * dl)
        mass.append(sigma * np.sqrt(2.0 * np.pi))
    return np.stack(rows), np.asarray(mass)


class SimulateS2(_SpectralTransformer):
    """Sentinel-2 band values simulated from hyperspectral spectra (Gaussian response functions).

    See the module docstring for the approximation.

    Args:
        bands: Sentinel-2 band codes to simulate (default the 10 CropGlobe bands).
        scale: factor applied to the output (1 keeps reflectance 0…1; 10,000 gives Sentinel-2 L2A
            digital numbers, comparable with CropGlobe series).
        min_coverage: least share (0…1) of a band's response that valid hyperspectral bands must
            cover; below it the band is NaN.
        wavelengths: band wavelengths (nm) of array input.
        fwhm: band widths (nm) of array input (default: median spacing).

    Attributes:
        weights_: float64 (len(bands), B) response weights.
        coverage_: float64 (len(bands),) share of each response covered by the fitted bands.
        bands_: canonical output band codes.
    """

    def __init__(
        self,
        bands: Sequence[str] = S2_BANDS,
        scale: float = 1.0,
        min_coverage: float = 0.5,
        wavelengths: Sequence[float] | NDArray[np.floating[Any]] | None = None,
        fwhm: Sequence[float] | NDArray[np.floating[Any]] | None = None,
    ) -> None:
        self.bands = bands
        self.scale = scale
        self.min_coverage = min_coverage
        self.wavelengths = wavelengths
        self.fwhm = fwhm

    def fit(self, X: Any, y: Any = None) -> SimulateS2:
        """Build the response weights on the input's wavelengths."""
        _, wl, spectra = self._fit_input(X)
        widths = spectra.fwhm if spectra is not None else self.fwhm
        if widths is not None and np.asarray(widths).size != wl.size:
            raise DataFormatError(f"fwhm has {np.asarray(widths).size} values for {wl.size} bands")
        if not 0.0 < self.min_coverage <= 1.0:
            raise DataFormatError(f"min_coverage must be in (0, 1], got {self.min_coverage}")
        self.weights_, self.mass_ = s2_response_matrix(
            wl, self.bands, None if widths is None else np.asarray(widths, dtype=np.float64)
        )
        self.coverage_ = self.weights_.sum(axis=1) / self.mass_
        self.bands_ = tuple(canonical_band(str(b)) for b in self.bands)
        return self

    def transform(self, X: Any) -> NDArray[np.float32]:
        """float32 (N, len(bands)) simulated band values (× ``scale``); NaN where uncovered."""
        values, _, _ = self._check_input(X)
        v = values.astype(np.float64)
        valid = ~np.isnan(v)
        num = np.where(valid, v, 0.0) @ self.weights_.T
        den = valid.astype(np.float64) @ self.weights_.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        out[den < self.min_coverage * self.mass_] = np.nan
        return (out * self.scale).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """The Sentinel-2 band codes."""
        check_is_fitted(self, "bands_")
        return np.asarray(self.bands_, dtype=object)
