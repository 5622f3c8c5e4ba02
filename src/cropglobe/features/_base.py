"""Shared plumbing of the series feature transformers: input handling, windows, names, gap filling.

Every series transformer accepts either a :class:`~cropglobe.series.SeriesSet` or a plain float
array (N, C, T) whose band names and time grid were given at construction (``input_bands``,
``input_grid``). ``fit`` remembers the bands and grid it saw; ``transform`` refuses input whose
bands or grid differ (:class:`~cropglobe.errors.BandError`, :class:`~cropglobe.errors.GridError`)
instead of producing silently wrong features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from cropglobe.bands import canonical_bands
from cropglobe.errors import BandError, DataFormatError, GridError
from cropglobe.series import SeriesSet, TimeGrid

__all__ = [
    "PAPER_WINDOW",
    "WINDOWS",
    "SeriesTransformer",
    "resolve_window",
    "step_labels",
]

#: The paper's season window in days of season: 1 May … 30 November (non-leap), i.e. bins
#: 24 … 66 (43 steps) of the CropGlobe 5-day grid. "May–Nov" is the same window.
PAPER_WINDOW: tuple[int, int] = (121, 334)

#: Named windows accepted wherever a ``window`` parameter is taken.
WINDOWS: dict[str, tuple[int, int] | None] = {
    "paper": PAPER_WINDOW,
    "may-nov": PAPER_WINDOW,
    "maynov": PAPER_WINDOW,
    "full": None,
    "all": None,  # as train / transfer --window all
    "season": None,
}

_MONTH_STARTS = np.array([1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366])

WindowSpec = tuple[int, int] | str | None


def resolve_window(
    window: WindowSpec, grid: TimeGrid, *, param: str = "window"
) -> NDArray[np.int64]:
    """Indices of the bins of ``grid`` that ``window`` selects.

    Args:
        window: ``(start, end)`` days of season (inclusive; a bin is kept when its centre lies
            inside), a name from :data:`WINDOWS` (``"paper"``, ``"may-nov"``, ``"full"`` =
            ``"all"``), or None for the whole grid.
        grid: the time grid of the data.
        param: parameter name used in error messages.

    Returns:
        int64 array of bin indices (increasing, contiguous).

    Raises:
        GridError: unknown name, malformed tuple, or a window that holds no bin of the grid.
    """
    spec: Any = window
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in WINDOWS:
            raise GridError(
                f"{param}={window!r} is not a known window; expected one of {sorted(WINDOWS)} or "
                "a (start, end) pair of days of season such as (121, 334)"
            )
        spec = WINDOWS[key]
    if spec is None:
        return np.arange(grid.n_steps, dtype=np.int64)
    try:
        start, end = (int(v) for v in spec)
    except (TypeError, ValueError):
        raise GridError(
            f"{param} must be a (start, end) pair of days of season, a window name or None, got "
            f"{window!r}; e.g. (121, 334) for May–November"
        ) from None
    if start > end:
        raise GridError(
            f"{param}={window!r} starts after it ends; give (start, end) with start <= end"
        )
    return grid.window_indices(start, end).astype(np.int64)


def step_labels(
    grid: TimeGrid, idx: Sequence[int] | NDArray[np.integer[Any]] | None = None
) -> list[str]:
    """Short, stable labels of time steps for feature names.

    * regular grids whose bins line up with day 1 (5-day CropGlobe grid, 16-day CAWa grid …):
      ``t{k:02d}`` with ``k`` the bin number counted from day 1 of the season, so the same bin
      has the same label in a full-season file and in a May–Nov window file (bin 24 = ``t24``);
    * monthly grids anchored on 1 January: ``m01`` … ``m12``;
    * any other grid: ``d{start:03d}``, the bin's first day of season.

    Args:
        grid: the time grid.
        idx: indices of the bins to label (default: all).

    Returns:
        one label per selected bin.
    """
    sel = np.arange(grid.n_steps) if idx is None else np.asarray(idx, dtype=np.int64)
    starts = grid.starts[sel]
    step = grid.step_days
    if step is not None and (grid.edges[0] - 1) % step == 0:
        return [f"t{(int(s) - 1) // step:02d}" for s in starts]
    if grid.kind == "monthly" and grid.anchor == "01-01":
        months = np.searchsorted(_MONTH_STARTS, starts, side="right")
        return [f"m{int(m):02d}" for m in months]
    return [f"d{int(s):03d}" for s in starts]


def _as_grid(grid: Any, param: str) -> TimeGrid:
    if isinstance(grid, TimeGrid):
        return grid
    if isinstance(grid, dict):
        return TimeGrid.from_dict(grid)
    raise GridError(
        f"{param} must be a cropglobe.TimeGrid (or its to_dict() form), got {type(grid).__name__}; "
        "e.g. TimeGrid.cropglobe()"
    )


class SeriesTransformer(TransformerMixin, BaseEstimator):
    """Base class: reads (N, C, T) input with its band names and grid, checks it against fit.

    Subclasses define ``input_bands`` and ``input_grid`` constructor parameters (used only when
    the input is a plain array) and call :meth:`_fit_input` in ``fit`` and :meth:`_check_input`
    in ``transform``.
    """

    input_bands: Sequence[str] | None
    input_grid: TimeGrid | dict[str, Any] | None

    def _unpack(self, X: Any) -> tuple[NDArray[np.float32], tuple[str, ...], TimeGrid]:
        if isinstance(X, SeriesSet):
            return X.values, X.bands, X.grid
        if self.input_bands is None or self.input_grid is None:
            raise DataFormatError(
                f"{type(self).__name__} got a {type(X).__name__} without band names and time "
                "grid; pass a SeriesSet, or give input_bands=... and input_grid=... when "
                "constructing the transformer"
            )
        try:
            arr = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataFormatError(
                f"{type(self).__name__} input must be a SeriesSet or a numeric array (N, C, T), "
                f"got {type(X).__name__}"
            ) from None
        if arr.ndim != 3:
            raise DataFormatError(
                f"{type(self).__name__} input array must be 3-D (samples, bands, time), got shape "
                f"{arr.shape}; reshape it or pass a SeriesSet"
            )
        bands = canonical_bands(tuple(str(b) for b in self.input_bands))
        grid = _as_grid(self.input_grid, "input_grid")
        if arr.shape[1] != len(bands):
            raise BandError(
                f"input array has {arr.shape[1]} bands but input_bands names {len(bands)} "
                f"({list(bands)}); give one name per band"
            )
        if arr.shape[2] != grid.n_steps:
            raise GridError(
                f"input array has {arr.shape[2]} time steps but input_grid has {grid.n_steps} "
                f"({grid}); give the grid that matches the data"
            )
        return arr, bands, grid

    def _fit_input(self, X: Any) -> tuple[NDArray[np.float32], tuple[str, ...], TimeGrid]:
        values, bands, grid = self._unpack(X)
        self.bands_in_ = bands
        self.grid_in_ = grid
        return values, bands, grid

    def _check_input(self, X: Any) -> tuple[NDArray[np.float32], tuple[str, ...], TimeGrid]:
        check_is_fitted(self, "bands_in_")
        values, bands, grid = self._unpack(X)
        name = type(self).__name__
        if bands != self.bands_in_:
            raise BandError(
                f"{name} was fitted on bands {list(self.bands_in_)} but received bands "
                f"{list(bands)}; select and order the bands as at fit (SeriesSet.select_bands) "
                "or refit"
            )
        if not grid.same_axis(self.grid_in_):
            raise GridError(
                f"{name} was fitted on the grid '{self.grid_in_}' but received '{grid}'; "
                "composite the data to the fitted grid or refit"
            )
        return values, bands, grid

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        return tags
