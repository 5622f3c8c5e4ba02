"""Median composite features: the bands × time matrix as a flat vector (1D) or an image (2D).

The input series are already median composites on a time grid (CropGlobe: 73 five-day bins);
these transformers cut the season window, optionally fill gaps, and shape the matrix for the
classifier: :class:`Median1D` flattens it (random forest, MLP, LightGBM), :class:`Median2D`
keeps it as a one-channel image (N, 1, C, T) for CropNet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils.validation import check_is_fitted

from cropglobe.bands import band_index
from cropglobe.composite import fill_gaps
from cropglobe.errors import DataFormatError
from cropglobe.features._base import (
    PAPER_WINDOW,
    SeriesTransformer,
    WindowSpec,
    resolve_window,
    step_labels,
)
from cropglobe.series import SeriesSet, TimeGrid

__all__ = ["Median1D", "Median2D"]

_FILLS = ("linear", "none")


class _MedianBase(SeriesTransformer):
    """Window selection, band selection and gap filling shared by both median transformers."""

    window: WindowSpec
    bands: Sequence[str] | None
    fill: str

    def __init__(
        self,
        window: WindowSpec = PAPER_WINDOW,
        bands: Sequence[str] | None = None,
        fill: str = "linear",
        input_bands: Sequence[str] | None = None,
        input_grid: TimeGrid | dict[str, Any] | None = None,
    ) -> None:
        self.window = window
        self.bands = bands
        self.fill = fill
        self.input_bands = input_bands
        self.input_grid = input_grid

    def fit(self, X: Any, y: Any = None) -> Any:
        """Resolve the window and bands on the input's grid; remember bands and grid.

        Args:
            X: SeriesSet or float array (N, C, T).
            y: ignored.

        Returns:
            self.
        """
        _, bands, grid = self._fit_input(X)
        if self.fill not in _FILLS:
            raise DataFormatError(
                f"fill={self.fill!r} is not supported; expected one of {list(_FILLS)}"
            )
        self.window_idx_ = resolve_window(self.window, grid)
        self.grid_out_ = grid.select(self.window_idx_)
        if self.bands is None:
            self.band_idx_ = np.arange(len(bands), dtype=np.int64)
        else:
            what = f"the fitted data ({len(bands)} bands)"
            self.band_idx_ = np.asarray(
                [band_index(bands, str(b), what=what) for b in self.bands], dtype=np.int64
            )
        self.bands_out_ = tuple(bands[i] for i in self.band_idx_)
        return self

    def _matrix(self, X: Any) -> NDArray[np.float32]:
        values, _, grid = self._check_input(X)
        v = values[:, self.band_idx_, :]
        if self.fill == "linear":
            v = fill_gaps(v, grid)  # the same filler as training and mapping
        return np.ascontiguousarray(v[:, :, self.window_idx_], dtype=np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """``{band}_{step}_median`` for each band and time step, band-major (``B04_t24_median``).

        Step labels come from :func:`cropglobe.features._base.step_labels`.
        """
        check_is_fitted(self, "window_idx_")
        steps = step_labels(self.grid_in_, self.window_idx_)
        return np.asarray([f"{b}_{s}_median" for b in self.bands_out_ for s in steps], dtype=object)


class Median1D(_MedianBase):
    """The median composite (bands × time, in a season window) flattened to a vector.

    Args:
        window: ``(start, end)`` days of season (bins whose centre lies inside are kept), a
            name (``"paper"`` = ``"may-nov"`` = (121, 334), the paper's 43-step window on the
            5-day grid; ``"full"``) or None for the whole grid. Default: the paper window.
        bands: bands to keep, in this order (default: all input bands).
        fill: ``"linear"`` (default) fills missing steps by linear interpolation between the
            nearest valid steps (edge values held), over the whole season before the window is
            cut; ``"none"`` keeps NaN. A series with no valid step stays NaN.
        input_bands: band names of array input (ignored for SeriesSet input).
        input_grid: time grid of array input (ignored for SeriesSet input).

    Attributes:
        bands_in_, grid_in_: what fit saw.
        window_idx_: int64 (T_w,) indices of the kept bins in the input grid.
        grid_out_: the windowed grid.
        band_idx_, bands_out_: kept bands.

    ``transform`` returns float32 (N, C_out × T_w), band-major (all steps of the first band, then
    the next band …), named by :meth:`get_feature_names_out`.
    """

    def transform(self, X: Any) -> NDArray[np.float32]:
        """Flat median features.

        Args:
            X: SeriesSet or float array (N, C, T) with the fitted bands and grid.

        Returns:
            float32 array (N, C_out × T_w).
        """
        m = self._matrix(X)
        return m.reshape(m.shape[0], -1)


class Median2D(_MedianBase):
    """The median composite kept as a one-channel image (N, 1, C, T_w) for a 2-D CNN (CropNet).

    Same parameters and attributes as :class:`Median1D`; ``transform`` returns float32
    (N, 1, C_out, T_w). :meth:`transform_series` returns the windowed SeriesSet instead.
    """

    def transform(self, X: Any) -> NDArray[np.float32]:
        """Image features.

        Args:
            X: SeriesSet or float array (N, C, T) with the fitted bands and grid.

        Returns:
            float32 array (N, 1, C_out, T_w).
        """
        m = self._matrix(X)
        return m[:, None, :, :]

    def transform_series(self, X: SeriesSet) -> SeriesSet:
        """The windowed, gap-filled series as a SeriesSet (``bands_out_``, ``grid_out_``)."""
        m = self._matrix(X)
        return SeriesSet(
            m, self.bands_out_, self.grid_out_, X.labels, X.classes, X.meta, dict(X.attrs)
        )
