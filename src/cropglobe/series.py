"""The data contract: :class:`TimeGrid` (the time axis) and :class:`SeriesSet` (pixel series).

Days are counted in a season that starts on the grid's *anchor* (``"01-01"`` for calendar-year
series, e.g. ``"07-01"`` for a southern-hemisphere season that runs July to June). Day of season
(``dos``) 1 is the anchor day. Calendar arithmetic uses a non-leap reference year: 29 February
shares the day of 28 February, so every date maps to a day 1…365 and calendar grids (months,
dekads) have the same bins every year.

A season is named by the calendar year in which it *starts* (a July 2022 – June 2023 season is
season 2022): ``season_year=`` arguments, ``--season-year`` options and ``SeriesSet.meta["year"]``
use this *season year*. With the default anchor ``"01-01"`` it is the calendar year.

The ``year`` column of an input sample table is different: it is the *label year*, the year of
the crop the label describes, which CropGlobe ("label year 2023" for every country) and
WorldCereal (a sample's year is that of its ``valid_time``, a date inside the growing season)
give to the harvest — a southern summer crop sown in late 2022 and harvested in 2023 is a 2023
label. A label year therefore names the season that *ends* in it: :func:`season_start_year`
converts (2023 -> season 2022 for a ``"07-01"`` anchor; unchanged for ``"01-01"``) and
:func:`season_label_year` converts back.

*Season-aligned* data put samples of seasons that start on different days side by side, day of
season against day of season (a southern July–June season beside northern calendar years, so
that the models' window covers both summers). Such a set holds each sample's anchor in
``meta["season_anchor"]`` (the column exists only while the set holds several anchors; a subset
of one season gets that season's grid back): :meth:`SeriesSet.concat` with
``mixed_seasons=True`` builds one, :meth:`SeriesSet.on_anchor` reads one season's days as
another's (what applying a model of one season to aligned data of another means).
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cropglobe._fs import atomic_path, json_default
from cropglobe.errors import BandError, DataFormatError, GridError, LabelError, MissingFileError

__all__ = [
    "SEASON_ANCHOR",
    "Observations",
    "SeriesSet",
    "TimeGrid",
    "anchor_text",
    "day_of_season",
    "parse_anchor",
    "season_label_year",
    "season_start_year",
    "where_mask",
    "where_text",
]

_MONTH_STARTS = np.array([1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366])
_FORMAT_VERSION = 1

#: meta column holding each sample's season anchor in a set of several seasons
SEASON_ANCHOR = "season_anchor"


def parse_anchor(anchor: str) -> int:
    """Day of year (non-leap, 1…365) of an ``"MM-DD"`` season anchor.

    Raises:
        GridError: when ``anchor`` is not a valid ``MM-DD`` day of a non-leap year.
    """
    try:
        month_s, day_s = anchor.split("-")
        month, day = int(month_s), int(day_s)
        if not 1 <= month <= 12:
            raise ValueError
        length = int(_MONTH_STARTS[month] - _MONTH_STARTS[month - 1])
        if not 1 <= day <= length:
            raise ValueError
    except (ValueError, AttributeError):
        raise GridError(
            f"season anchor {anchor!r} is not a valid 'MM-DD' day (e.g. '01-01' for calendar "
            "years, '07-01' for a July–June southern-hemisphere season)"
        ) from None
    return int(_MONTH_STARTS[month - 1]) + day - 1


def anchor_text(anchor: str) -> str:
    """An anchor in its one spelling, ``"MM-DD"`` (``"7-1"`` -> ``"07-01"``).

    Raises:
        GridError: as :func:`parse_anchor`.
    """
    doy = parse_anchor(anchor)
    month = int(np.searchsorted(_MONTH_STARTS, doy, side="right"))
    return f"{month:02d}-{doy - int(_MONTH_STARTS[month - 1]) + 1:02d}"


def day_of_season(
    dates: ArrayLike, anchor: str = "01-01"
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Season year and day of season (1…365) of each date.

    Args:
        dates: anything ``numpy.datetime64`` understands (strings ``"2023-05-01"``, datetime64,
            pandas timestamps), any shape.
        anchor: ``"MM-DD"`` first day of the season.

    Returns:
        ``(season_year, dos)``, int64 arrays of the input's shape.
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    years = d.astype("datetime64[Y]")
    doy = (d - years.astype("datetime64[D]")).astype(np.int64) + 1
    year = years.astype(np.int64) + 1970
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    doy_ref = np.where(leap & (doy >= 60), doy - 1, doy)  # 29 Feb shares 28 Feb's day
    a = parse_anchor(anchor)
    before = doy_ref < a
    season_year = np.where(before, year - 1, year)
    dos = (doy_ref - a) % 365 + 1
    return season_year.astype(np.int64), dos.astype(np.int64)


def season_start_year(label_year: ArrayLike, anchor: str = "01-01") -> NDArray[np.int64]:
    """Season year (the year the season starts) of the season that ends in ``label_year``.

    A season starting on ``anchor`` in year S ends in S (anchor ``"01-01"``) or in S + 1 (any
    later anchor), so the season of label (harvest) year Y starts in Y or Y − 1: label year 2023
    on a ``"07-01"`` grid is the season 1 July 2022 – 30 June 2023, season year 2022.

    Args:
        label_year: int or int array, any shape.
        anchor: ``"MM-DD"`` first day of the season.

    Returns:
        int64 array of the input's shape.
    """
    return np.asarray(label_year, dtype=np.int64) - int(parse_anchor(anchor) > 1)


def season_label_year(season_year: ArrayLike, anchor: str = "01-01") -> NDArray[np.int64]:
    """Label (harvest) year of the season starting on ``anchor`` in ``season_year``: the year in
    which it ends (inverse of :func:`season_start_year`)."""
    return np.asarray(season_year, dtype=np.int64) + int(parse_anchor(anchor) > 1)


@dataclass(frozen=True)
class TimeGrid:
    """A time axis of T steps (bins) over one season.

    Bin ``i`` covers days of season ``edges[i]`` … ``edges[i + 1] − 1`` (1-based, inclusive).
    Bins are contiguous; the grid may cover only part of the season (a window).

    Attributes:
        edges: T + 1 strictly increasing day-of-season boundaries, within 1 … 366.
        anchor: ``"MM-DD"``, the first day of the season (day of season 1).
        kind: a label (``"5-day"``, ``"monthly"``, ``"dekad"``, ``"16-day"``, ``"custom"``).
    """

    edges: tuple[int, ...]
    anchor: str = "01-01"
    kind: str = "custom"

    def __post_init__(self) -> None:
        e = np.asarray(self.edges)
        if e.ndim != 1 or e.size < 2:
            raise GridError(
                f"time grid edges must hold at least 2 boundaries (1 step), got {list(self.edges)}"
            )
        if np.any(np.diff(e) <= 0) or e[0] < 1 or e[-1] > 366:
            raise GridError(
                f"time grid edges must increase strictly within day of season 1…366, got "
                f"{list(self.edges)[:6]}…; pass bin start days in order"
            )
        object.__setattr__(self, "edges", tuple(int(x) for x in e))
        object.__setattr__(self, "anchor", anchor_text(self.anchor))  # "7-1" -> "07-01"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def regular(
        cls, step_days: int = 5, start: int = 1, end: int = 365, anchor: str = "01-01"
    ) -> TimeGrid:
        """Steps of ``step_days`` days from day ``start`` to day ``end`` (inclusive).

        The last step is shorter when the span is not a multiple of the step.
        ``regular(5)`` is the CropGlobe grid: 73 bins, bin i covering days 5i+1 … 5i+5.
        """
        if step_days < 1:
            raise GridError(f"step_days must be a positive number of days, got {step_days}")
        if not 1 <= start <= end <= 365:
            raise GridError(f"need 1 <= start <= end <= 365 days, got start={start}, end={end}")
        edges = [*range(start, end + 1, step_days), end + 1]
        return cls(tuple(edges), anchor, f"{step_days}-day")

    @classmethod
    def cropglobe(cls, anchor: str = "01-01") -> TimeGrid:
        """The CropGlobe release grid: 73 five-day bins over the season."""
        return cls.regular(5, 1, 365, anchor)

    @classmethod
    def monthly(cls, anchor: str = "01-01") -> TimeGrid:
        """Twelve calendar months, starting with the anchor's month (anchor must be day 1)."""
        return cls._calendar(anchor, dekads=False)

    @classmethod
    def dekads(cls, anchor: str = "01-01") -> TimeGrid:
        """36 dekads: days 1–10, 11–20 and 21–end of each month (anchor must be day 1)."""
        return cls._calendar(anchor, dekads=True)

    @classmethod
    def _calendar(cls, anchor: str, dekads: bool) -> TimeGrid:
        a = parse_anchor(anchor)
        if anchor.split("-")[1].lstrip("0") != "1":
            raise GridError(
                f"calendar grids (monthly, dekad) need an anchor on the first of a month, got "
                f"{anchor!r}; use e.g. '07-01'"
            )
        starts: list[int] = []
        for m in range(12):
            s = int(_MONTH_STARTS[m])
            starts += [s, s + 10, s + 20] if dekads else [s]
        dos = sorted((s - a) % 365 + 1 for s in starts)
        return cls((*dos, 366), anchor, "dekad" if dekads else "monthly")

    @classmethod
    def from_starts(
        cls, starts: Sequence[int], end: int = 365, anchor: str = "01-01", kind: str = "custom"
    ) -> TimeGrid:
        """Bins starting on the given days of season; the last bin ends on day ``end``.

        CAWa's 16-day composites: ``from_starts([1, 17, …, 353])``.
        """
        return cls((*[int(s) for s in starts], int(end) + 1), anchor, kind)

    # ------------------------------------------------------------------ properties
    @property
    def n_steps(self) -> int:
        """Number of bins T."""
        return len(self.edges) - 1

    def __len__(self) -> int:
        return self.n_steps

    @property
    def starts(self) -> NDArray[np.int64]:
        """First day of season of each bin, (T,)."""
        return np.asarray(self.edges[:-1], dtype=np.int64)

    @property
    def ends(self) -> NDArray[np.int64]:
        """Last day of season of each bin (inclusive), (T,)."""
        return np.asarray(self.edges[1:], dtype=np.int64) - 1

    @property
    def centers(self) -> NDArray[np.float64]:
        """Centre of each bin in days of season, (T,): (start + end) / 2."""
        return (self.starts + self.ends) / 2.0

    @property
    def lengths(self) -> NDArray[np.int64]:
        """Number of days in each bin, (T,)."""
        return np.asarray(np.diff(np.asarray(self.edges, dtype=np.int64)), dtype=np.int64)

    @property
    def step_days(self) -> int | None:
        """The common bin length in days, or None when bins differ (the last may be shorter)."""
        lengths = self.lengths
        if lengths.size == 1 or (np.all(lengths[:-1] == lengths[0]) and lengths[-1] <= lengths[0]):
            return int(lengths[0])
        return None

    # ------------------------------------------------------------------ operations
    def bin_index(self, dos: ArrayLike) -> NDArray[np.int64]:
        """Bin of each day of season; −1 where the day falls outside the grid."""
        d = np.asarray(dos, dtype=np.int64)
        idx = np.searchsorted(np.asarray(self.edges), d, side="right") - 1
        outside = (d < self.edges[0]) | (d >= self.edges[-1])
        return np.where(outside, -1, idx).astype(np.int64)

    def window_indices(self, start: int, end: int) -> NDArray[np.int64]:
        """Indices of the bins whose centre lies within days of season ``start`` … ``end``.

        On the CropGlobe grid, ``window_indices(121, 334)`` gives bins 24 … 66 (43 steps), the
        paper's window; on a monthly grid, May … November.
        """
        c = self.centers
        idx = np.flatnonzero((c >= start) & (c <= end))
        if idx.size == 0:
            raise GridError(
                f"window days {start}–{end} holds no bin of the {self.kind} grid, which spans "
                f"days {self.edges[0]}–{self.edges[-1] - 1}; choose a window inside the grid"
            )
        return idx

    def window(self, start: int, end: int) -> TimeGrid:
        """The sub-grid of :meth:`window_indices` (contiguous bins)."""
        idx = self.window_indices(start, end)
        return TimeGrid(self.edges[idx[0] : idx[-1] + 2], self.anchor, self.kind)

    def select(self, idx: NDArray[np.integer[Any]] | slice) -> TimeGrid:
        """The sub-grid made of contiguous bins ``idx``."""
        sel = np.arange(self.n_steps)[idx]
        if sel.size == 0 or np.any(np.diff(sel) != 1):
            raise GridError("selected time steps must be a non-empty run of consecutive bins")
        return TimeGrid(self.edges[sel[0] : sel[-1] + 2], self.anchor, self.kind)

    def dates(self, season_year: int) -> NDArray[np.datetime64]:
        """Calendar date of each bin centre for the season starting in ``season_year``."""
        start = np.datetime64(f"{season_year:04d}-01-01") + np.timedelta64(
            parse_anchor(self.anchor) - 1, "D"
        )
        return start + np.floor(self.centers - 1).astype("timedelta64[D]")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (inverse of :meth:`from_dict`)."""
        return {"edges": list(self.edges), "anchor": self.anchor, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimeGrid:
        """Rebuild a grid from :meth:`to_dict` output."""
        try:
            return cls(tuple(d["edges"]), str(d.get("anchor", "01-01")), str(d.get("kind", "")))
        except (KeyError, TypeError) as exc:
            raise GridError(f"not a time grid description: {d!r} ({exc})") from None

    def with_anchor(self, anchor: str) -> TimeGrid:
        """The same bins (days of season) in a season starting ``anchor``; months and dekads
        become ``"custom"`` bins, as another anchor's months would be other bins."""
        kind = (
            "custom" if self.kind in ("monthly", "dekad") and anchor != self.anchor else self.kind
        )
        return TimeGrid(self.edges, anchor, kind)

    def same_axis(self, other: TimeGrid) -> bool:
        """True when both grids have the same bins and anchor (``kind`` is only a label)."""
        return self.edges == other.edges and self.anchor == other.anchor

    def __str__(self) -> str:
        step = f"{self.step_days}-day" if self.step_days else self.kind
        return (
            f"{self.n_steps} × {step} steps, days {self.edges[0]}–{self.edges[-1] - 1} "
            f"of a season starting {self.anchor}"
        )


def _seasons_text(ss: SeriesSet) -> str:
    """`` (seasons starting 01-01 and 07-01)`` for a set of several seasons, else ``""``."""
    seasons = ss.seasons
    return f" (seasons starting {' and '.join(seasons)})" if len(seasons) > 1 else ""


def _default_meta(n: int) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [str(i) for i in range(n)]})


@dataclass(eq=False)
class SeriesSet:
    """Labelled (or unlabelled) pixel time series on one time grid.

    Attributes:
        values: float32 array (N, C, T), samples × bands × time steps; NaN marks a missing
            observation. Units are those of the source (Sentinel-2 reflectance × 10,000 in
            CropGlobe data).
        bands: the C band names, in order.
        grid: the time axis (T steps).
        labels: int64 array (N,) of indices into ``classes``; −1 for unlabelled samples.
        classes: class names; ``labels`` index into it.
        meta: one row per sample (``sample_id``, ``country``, ``region``, ``year``, ``lon``,
            ``lat``, …), index 0 … N−1.
        attrs: JSON-serialisable facts about the whole set (``source``, ``synthetic`` …).

    Construction checks shapes and label range (cheap); readers validate content once with
    :meth:`validate`.

    ``ss[rows]`` is :meth:`subset` (``ss[5]`` is a set of one sample; ``ss[rows, ...]``, as
    scikit-learn's cross-validation indexes, works too). ``==`` is identity: compare contents
    with ``np.array_equal`` on the arrays or :meth:`fingerprint`.

    ``values`` are not copied (a float32, C-ordered array is kept as given, and sets made by
    :meth:`on_anchor`, :meth:`relabel` and :meth:`subset` of a slice may view it): copy them
    before editing in place. ``labels``, ``meta`` and ``attrs`` are each set's own.
    """

    values: NDArray[np.float32]
    bands: tuple[str, ...]
    grid: TimeGrid
    labels: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    classes: tuple[str, ...] = ()
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim != 3:
            raise DataFormatError(
                f"SeriesSet values must be a 3-D array (samples, bands, time), got shape {v.shape}"
            )
        self.values = np.ascontiguousarray(v, dtype=np.float32)
        n, c, t = self.values.shape
        if isinstance(self.bands, str):  # one name, not its characters
            self.bands = (self.bands,)
        self.bands = tuple(str(b) for b in self.bands)
        if len(self.bands) != c:
            raise BandError(
                f"SeriesSet has {c} bands in its values but {len(self.bands)} band names "
                f"{list(self.bands)}; give one name per band"
            )
        if len(set(self.bands)) != c:
            raise BandError(f"band names must be unique, got {list(self.bands)}")
        if not isinstance(self.grid, TimeGrid):
            raise GridError(
                f"SeriesSet grid must be a TimeGrid, got {type(self.grid).__name__} "
                f"{self.grid!r}; build one, e.g. TimeGrid.monthly() or TimeGrid.regular(5)"
            )
        if self.grid.n_steps != t:
            raise GridError(
                f"SeriesSet values have {t} time steps but the grid has {self.grid.n_steps} "
                f"({self.grid}); build the grid that matches the data"
            )
        labels = np.asarray(self.labels)
        if labels.size == 0 and n > 0:
            labels = np.full(n, -1, dtype=np.int64)
        if labels.shape != (n,):
            raise LabelError(f"labels must have shape ({n},), got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise LabelError(
                f"labels must be integer class indices, got dtype {labels.dtype}; map names to "
                "indices with cropglobe.classes.encode_labels"
            )
        # the set's own labels (small): one set's relabelling never reaches another's
        self.labels = labels.astype(np.int64, copy=True)
        self.classes = tuple(str(c_) for c_ in self.classes)
        if len(set(self.classes)) != len(self.classes):
            raise LabelError(
                f"class names must be unique, got {list(self.classes)}; give each class once"
            )
        if self.labels.size:
            lo, hi = int(self.labels.min()), int(self.labels.max())
            if lo < -1 or hi >= len(self.classes):
                raise LabelError(
                    f"labels range {lo}…{hi} falls outside the vocabulary of {len(self.classes)} "
                    f"classes {list(self.classes)}; expected −1 (unlabelled) or 0…"
                    f"{len(self.classes) - 1}"
                )
        if not isinstance(self.meta, pd.DataFrame):
            raise DataFormatError(
                f"SeriesSet meta must be a pandas DataFrame (one row per sample), got "
                f"{type(self.meta).__name__}; wrap it: pd.DataFrame(meta)"
            )
        meta = self.meta if len(self.meta.columns) else _default_meta(n)
        if len(meta) != n:
            raise DataFormatError(f"meta has {len(meta)} rows for {n} samples; give one per sample")
        self.meta = meta.reset_index(drop=True)
        self.attrs = {} if self.attrs is None else dict(self.attrs)
        if SEASON_ANCHOR in self.meta.columns:
            self._settle_seasons()

    def _settle_seasons(self) -> None:
        """Keep ``meta["season_anchor"]`` only while it holds several anchors: one anchor
        becomes the grid's (a subset of one season is an ordinary set of that season); with
        several, the grid keeps its anchor when a sample has it, else takes the first
        sample's. A missing value means the grid's anchor."""
        col = self.meta[SEASON_ANCHOR]
        given = col.where(col.notna(), self.grid.anchor).astype(str)
        spelt = {a: anchor_text(a) for a in given.unique()}  # GridError on a bad value
        texts = given.map(spelt)
        seasons = list(dict.fromkeys(texts.tolist()))
        if len(seasons) <= 1:
            self.meta = self.meta.drop(columns=SEASON_ANCHOR)
            if seasons and seasons[0] != self.grid.anchor:
                self.grid = self.grid.with_anchor(seasons[0])
            return
        self.meta[SEASON_ANCHOR] = texts.to_numpy(dtype=object)
        if self.grid.anchor not in seasons:
            self.grid = self.grid.with_anchor(seasons[0])

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.values.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """The set as a long table, one row per sample × time step: ``sample`` (row position),
        ``sample_id``, ``step``, ``date`` (the bin's first day in the sample's season year),
        one column per band, ``label`` (class name; None when unlabelled) and the meta columns,
        as :func:`cropglobe.io.write_series_table` writes it (which also keeps the grid,
        classes and attrs, so :func:`cropglobe.io.read_series_table` restores the set)."""
        from cropglobe.io.tables import series_frame

        return series_frame(self)[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        """``np.asarray(ss)`` is ``ss.values`` (N, C, T) (and not a nest of one-sample sets,
        which indexing would otherwise make NumPy build)."""
        if copy:
            return np.array(self.values, dtype=dtype, copy=True)
        return np.asarray(self.values, dtype=dtype)

    def __getitem__(self, index: Any) -> SeriesSet:
        """``ss[rows]``: :meth:`subset` (an integer gives a set of one sample).

        ``ss[rows, ...]`` (how scikit-learn indexes arrays in cross-validation) is the same;
        bands and time steps are selected by name and day instead (:meth:`select_bands`,
        :meth:`select_window`).

        Raises:
            IndexError: an integer outside ``-N … N-1``.
            DataFormatError: an index other than rows.
        """
        if isinstance(index, tuple):
            if len(index) == 1 or (len(index) == 2 and index[1] is Ellipsis):
                index = index[0]
            else:
                raise DataFormatError(
                    f"a SeriesSet is indexed by samples only, got {index!r}; select bands with "
                    "select_bands(names) and time steps with select_window(start, end)"
                )
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            if not -self.n_samples <= int(index) < self.n_samples:
                raise IndexError(f"sample {index} is out of range for {self.n_samples} samples")
            index = [int(index)]
        return self.subset(index)

    @property
    def n_samples(self) -> int:
        """N."""
        return int(self.values.shape[0])

    @property
    def n_bands(self) -> int:
        """C."""
        return int(self.values.shape[1])

    @property
    def n_steps(self) -> int:
        """T."""
        return int(self.values.shape[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(N, C, T)."""
        n, c, t = self.values.shape
        return int(n), int(c), int(t)

    def __repr__(self) -> str:
        return (
            f"SeriesSet({self.n_samples} samples × {self.n_bands} bands × {self.n_steps} steps, "
            f"bands={list(self.bands)}, grid='{self.grid}', classes={list(self.classes)})"
        )

    # ------------------------------------------------------------------ seasons
    @property
    def anchors(self) -> NDArray[np.object_]:
        """Each sample's season anchor (``"MM-DD"``): the grid's, or ``meta["season_anchor"]``
        in a set of several seasons."""
        if SEASON_ANCHOR in self.meta.columns:
            return self.meta[SEASON_ANCHOR].to_numpy(dtype=object)
        return np.full(self.n_samples, self.grid.anchor, dtype=object)

    @property
    def seasons(self) -> tuple[str, ...]:
        """The season anchors the samples hold, in order of first appearance (the grid's alone
        in an ordinary set)."""
        if SEASON_ANCHOR in self.meta.columns:
            return tuple(dict.fromkeys(str(a) for a in self.meta[SEASON_ANCHOR]))
        return (self.grid.anchor,)

    def on_anchor(self, anchor: str) -> SeriesSet:
        """The same values with their days of season read as days of a season starting
        ``anchor``: day 121 of a July–June season becomes day 121 of a calendar year.

        Nothing moves (unlike :func:`cropglobe.composite.shift_anchor`, which re-expresses a
        series on another season of the same calendar); this is what comparing season-aligned
        series means, e.g. applying a model trained on calendar years to a southern season
        aligned on 1 July. ``meta["season_anchor"]`` is dropped: the result is one season.
        """
        parse_anchor(anchor)
        meta = self.meta.drop(columns=SEASON_ANCHOR, errors="ignore")
        return SeriesSet(
            self.values,
            self.bands,
            self.grid.with_anchor(anchor),
            self.labels,
            self.classes,
            meta,
            dict(self.attrs),
        )

    def require_one_season(self, what: str) -> None:
        """Raise GridError when the samples come from seasons with different anchors.

        ``what`` names the operation in the message (``"training"``, ``"shift_anchor"`` …).
        """
        if len(self.seasons) > 1:
            counts = pd.Series(self.anchors).value_counts(sort=False)
            held = ", ".join(f"{n} starting {a}" for a, n in counts.items())
            raise GridError(
                f"{what} needs samples of one season, got seasons {held} (season-aligned data, "
                f"meta['{SEASON_ANCHOR}']); select one (where({SEASON_ANCHOR}='MM-DD'), on the "
                f"command line --where {SEASON_ANCHOR}=MM-DD)"
            )

    # ------------------------------------------------------------------ checks
    def empty_samples(self) -> NDArray[np.bool_]:
        """Mask (N,) of samples that hold no valid observation at all."""
        return np.asarray(np.isnan(self.values).all(axis=(1, 2)))

    def missing_fraction(self) -> float:
        """Share of missing (NaN) values, 0 … 1."""
        return float(np.isnan(self.values).mean()) if self.values.size else 0.0

    def validate(self, source: str = "data", *, allow_empty: bool = False) -> SeriesSet:
        """Check content once where data enters: finite or NaN values, no empty samples.

        Args:
            source: how to name the data in messages (usually the file path).
            allow_empty: accept samples with no valid observation (e.g. for mapping).

        Returns:
            self, for chaining.

        Raises:
            DataFormatError: infinite values, or all-NaN samples when not allowed.
        """
        if np.isinf(self.values).any():
            raise DataFormatError(
                f"{source}: values contain ±inf; expected finite numbers with NaN for missing "
                "observations; replace the infinite values"
            )
        if not allow_empty and self.n_samples:
            empty = self.empty_samples()
            if empty.any():
                ids = (
                    self.meta["sample_id"].astype(str).to_numpy()[empty][:3]
                    if ("sample_id" in self.meta)
                    else np.flatnonzero(empty)[:3]
                )
                raise DataFormatError(
                    f"{source}: {int(empty.sum())} of {self.n_samples} samples have no valid "
                    f"observation (all NaN), e.g. {list(ids)}; drop them first "
                    "(SeriesSet.drop_empty()) or fix the extraction"
                )
        return self

    # ------------------------------------------------------------------ selection
    def subset(self, index: ArrayLike | slice) -> SeriesSet:
        """Samples selected by a slice, a boolean mask (N,) or integer positions."""
        if isinstance(index, slice):
            idx = np.arange(self.n_samples)[index]
        else:
            arr = np.asarray(index)
            if arr.dtype == bool:
                if arr.shape != (self.n_samples,):
                    raise DataFormatError(
                        f"boolean mask must have shape ({self.n_samples},), got {arr.shape}"
                    )
                idx = np.flatnonzero(arr)
            elif arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise DataFormatError(
                    f"subset takes a slice, a boolean mask or integer positions, got values of "
                    f"dtype {arr.dtype} (e.g. {arr.reshape(-1)[:3].tolist()})"
                )
            else:
                idx = arr.astype(np.int64).reshape(-1)
        return SeriesSet(
            self.values[idx],
            self.bands,
            self.grid,
            self.labels[idx],
            self.classes,
            self.meta.iloc[idx].reset_index(drop=True),
            dict(self.attrs),
        )

    def drop_empty(self) -> SeriesSet:
        """Without the samples that hold no valid observation."""
        return self.subset(~self.empty_samples())

    def where(self, **conditions: Any) -> SeriesSet:
        """Samples whose meta columns hold the given values (a list means 'any of'; samples
        must match every column given).

        ``ss.where(country="FRA")``, ``ss.where(region=["Fergana", "Samarkand"], year=2016)``.
        Values compare as the column's type: ``year="2016"`` matches a year column of integers
        or floats, ``2016`` a column of text; text is compared exactly (case-sensitive).

        Raises:
            DataFormatError: a column that is not in ``meta``, a value the column does not
                hold (the message lists the values it holds and the nearest spellings), or
                values that no sample holds together.
        """
        return self.subset(self.where_rows(**conditions))

    def where_rows(self, **conditions: Any) -> NDArray[np.int64]:
        """Indices of the samples :meth:`where` keeps, in order (same arguments)."""
        return np.flatnonzero(where_mask(self.meta, conditions)).astype(np.int64)

    def select_bands(self, names: Sequence[str]) -> SeriesSet:
        """The given bands, in the given order (any spelling :func:`canonical_band` knows)."""
        from cropglobe.bands import band_index

        if not len(names):
            raise BandError(f"no band named to select; give some of {list(self.bands)}")
        idx = [
            band_index(self.bands, n, what=f"this SeriesSet ({self.n_bands} bands)") for n in names
        ]
        return SeriesSet(
            self.values[:, idx, :],
            tuple(self.bands[i] for i in idx),
            self.grid,
            self.labels,
            self.classes,
            self.meta,
            dict(self.attrs),
        )

    def select_window(self, start: int, end: int) -> SeriesSet:
        """The time steps whose bin centre lies in days of season ``start`` … ``end``.

        ``select_window(121, 334)`` on the CropGlobe grid gives the paper's 43-step window.
        """
        idx = self.grid.window_indices(start, end)
        return SeriesSet(
            self.values[:, :, idx],
            self.bands,
            self.grid.window(start, end),
            self.labels,
            self.classes,
            self.meta,
            dict(self.attrs),
        )

    def relabel(self, classes: Sequence[str], *, unknown: str | None = None) -> SeriesSet:
        """Re-express labels in another vocabulary (by class name).

        Args:
            classes: the new class names.
            unknown: class name for labels whose name is not in ``classes``; when None such
                labels raise :class:`LabelError`.
        """
        new = tuple(classes)
        lut = np.full(len(self.classes) + 1, -1, dtype=np.int64)  # last slot: label -1
        missing = []
        for i, name in enumerate(self.classes):
            if name in new:
                lut[i] = new.index(name)
            elif unknown is not None and unknown in new:
                lut[i] = new.index(unknown)
            elif np.any(self.labels == i):
                missing.append(name)
        if missing:
            raise LabelError(
                f"classes {missing} have no place in the vocabulary {list(new)}; add them or "
                "pass unknown='other'"
            )
        return SeriesSet(
            self.values, self.bands, self.grid, lut[self.labels], new, self.meta, dict(self.attrs)
        )

    @classmethod
    def concat(cls, sets: Sequence[SeriesSet], *, mixed_seasons: bool = False) -> SeriesSet:
        """Stack sets that share bands, grid and classes (meta columns are unioned).

        Args:
            sets: the sets, in order.
            mixed_seasons: also stack sets whose grids have the same bins but seasons that
                start on different days (season-aligned data): each sample keeps its anchor in
                ``meta["season_anchor"]``. False: such sets are refused.
        """
        if not sets:
            raise DataFormatError("concat needs at least one SeriesSet")
        first = sets[0]
        for i, s in enumerate(sets[1:], start=1):
            if s.bands != first.bands:
                raise BandError(
                    f"cannot concatenate: set {i} has bands {list(s.bands)}, set 0 has "
                    f"{list(first.bands)}; use select_bands to align them"
                )
            if s.grid.edges != first.grid.edges or (
                not mixed_seasons and set(s.seasons) != set(first.seasons)
            ):
                hint = (
                    "; to compare seasons day of season against day of season (season-aligned "
                    "data), pass mixed_seasons=True"
                    if s.grid.edges == first.grid.edges
                    else ""
                )
                raise GridError(
                    f"cannot concatenate: set {i} is on grid '{s.grid}'"
                    f"{_seasons_text(s)}, set 0 on '{first.grid}'{_seasons_text(first)}; "
                    f"composite both to one grid first{hint}"
                )
            if s.classes != first.classes:
                raise LabelError(
                    f"cannot concatenate: set {i} has classes {list(s.classes)}, set 0 has "
                    f"{list(first.classes)}; relabel to one vocabulary first"
                )
        attrs = dict(first.attrs)
        if len(sets) > 1:
            attrs["synthetic"] = any(bool(s.attrs.get("synthetic")) for s in sets)
        metas = [s.meta for s in sets]
        if len({a for s in sets for a in s.seasons}) > 1:
            metas = [
                m.assign(**{SEASON_ANCHOR: s.anchors}) for m, s in zip(metas, sets, strict=True)
            ]
        return cls(
            np.concatenate([s.values for s in sets]),
            first.bands,
            first.grid,
            np.concatenate([s.labels for s in sets]),
            first.classes,
            pd.concat(metas, ignore_index=True),
            attrs,
        )

    def deduplicate(self, by: str | None = None, *, labels: bool = True) -> SeriesSet:
        """Without repeated samples: rows whose values (NaN-equal) equal an earlier row's.

        The CropGlobe release de-duplicates each country's file on its feature rows alone
        (``np.unique(fea, axis=0)``), keeping the first row of each.

        Args:
            by: a metadata column; rows are compared only with rows of the same value (each
                country on its own, as the release reads one file per country). None: all rows.
            labels: whether the label is part of the comparison. False, as the release: of rows
                with equal values the first labelled one is kept (the release drops rows of
                classes it cannot use before de-duplicating), whatever the others' labels.

        Raises:
            DataFormatError: ``by`` is not a metadata column.
        """
        if self.n_samples == 0:
            return self
        return self.subset(self.unique_rows(by, labels=labels))

    def unique_rows(self, by: str | None = None, *, labels: bool = True) -> NDArray[np.int64]:
        """Indices of the rows :meth:`deduplicate` keeps, in order (same arguments)."""
        flat = self.values.reshape(self.n_samples, -1)
        # One canonical NaN bit pattern so that NaN equals NaN in the bit comparison.
        bits = np.ascontiguousarray(np.where(np.isnan(flat), np.float32(np.nan), flat))
        parts = [bits.view(np.uint32)]
        if labels:
            parts.append(self.labels.reshape(-1, 1).astype(np.uint32))
        if by is not None:
            if by not in self.meta.columns:
                raise DataFormatError(
                    f"cannot de-duplicate by {by!r}: no such metadata column; available: "
                    f"{list(self.meta.columns)}"
                )
            group, _ = pd.factorize(self.meta[by].astype(str))
            parts.append(group.reshape(-1, 1).astype(np.uint32))
        cols = np.concatenate(parts, axis=1)
        rows = np.arange(self.n_samples)
        # the row kept of equal ones: the first, or (labels ignored) the first labelled one
        order = rows if labels else np.lexsort((rows, self.labels < 0))
        keep = equal_rows(cols, order) == rows
        return np.flatnonzero(keep).astype(np.int64)

    # ------------------------------------------------------------------ summaries
    def class_counts(self) -> pd.Series:
        """Samples per class name (unlabelled samples under ``"<unlabelled>"``)."""
        names = np.array([*self.classes, "<unlabelled>"], dtype=object)
        counts = pd.Series(names[self.labels]).value_counts()
        order = [c for c in (*self.classes, "<unlabelled>") if c in counts.index]
        return counts.reindex(order).astype(np.int64)

    def label_names(self) -> NDArray[np.object_]:
        """Class name of each sample (None for unlabelled), (N,)."""
        names = np.array([*self.classes, None], dtype=object)
        return names[self.labels]

    def fingerprint(self) -> str:
        """SHA-256 of values, labels, bands, grid and classes, and of each sample's season in a
        set of several (for model cards and experiments)."""
        h = hashlib.sha256()
        h.update(json.dumps([list(self.bands), self.grid.to_dict(), list(self.classes)]).encode())
        h.update(np.ascontiguousarray(self.values).tobytes())
        h.update(self.labels.tobytes())
        if len(self.seasons) > 1:  # which sample is of which season
            h.update(json.dumps(self.anchors.tolist()).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ disk
    def header(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-ready."""
        return {
            "format": "cropglobe.SeriesSet",
            "version": _FORMAT_VERSION,
            "bands": list(self.bands),
            "grid": self.grid.to_dict(),
            "classes": list(self.classes),
            "attrs": self.attrs,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to one ``.npz`` file (atomic): arrays, a JSON header and meta as Parquet bytes.

        No pickled objects are written, so :meth:`load` never unpickles.
        """
        target = Path(path)
        buf = _meta_parquet(self.meta)
        header = json.dumps(self.header(), default=json_default).encode()
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                values=self.values,
                labels=self.labels,
                header=np.frombuffer(header, dtype=np.uint8),
                meta_parquet=np.frombuffer(buf.getvalue(), dtype=np.uint8),
            )
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SeriesSet:
        """Read a file written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(
                f"{p}: no such file; expected a SeriesSet .npz written by save()"
            )
        if not zipfile.is_zipfile(p):  # np.load would take it for a pickle
            raise DataFormatError(
                f"{p}: not a cropglobe SeriesSet file (not a zip archive: empty, truncated or "
                "another format); expected an .npz written by SeriesSet.save"
            )
        try:
            with np.load(p, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                values, labels = z["values"], z["labels"]
                meta = pd.read_parquet(io.BytesIO(bytes(z["meta_parquet"])))
        except (KeyError, ValueError, OSError, EOFError) as exc:  # EOFError: an empty file
            raise DataFormatError(
                f"{p}: not a cropglobe SeriesSet file ({exc}); expected an .npz written by "
                "SeriesSet.save or cropglobe composite -o FILE.npz (for CropGlobe release files "
                "use cropglobe.io.read_cropglobe)"
            ) from None
        if header.get("format") != "cropglobe.SeriesSet":
            raise DataFormatError(f"{p}: header does not describe a cropglobe.SeriesSet")
        return cls(
            values,
            tuple(header["bands"]),
            TimeGrid.from_dict(header["grid"]),
            labels,
            tuple(header["classes"]),
            meta,
            dict(header.get("attrs", {})),
        )


@dataclass(eq=False)
class Observations:
    """Raw, irregular observations before compositing: the long-table contract.

    Attributes:
        table: one row per (sample, acquisition date): ``sample`` (int64 position into
            ``samples``), ``date`` (datetime64[ns]), one float32 column per band in ``bands``
            (NaN = no data), and optionally ``valid`` (bool; False = masked) and/or ``SCL``
            (Sentinel-2 scene classification, masked with :data:`cropglobe.bands.SCL_INVALID`).
        bands: band column names, canonical spelling, in order.
        samples: one row per sample, index 0 … S−1: ``sample_id`` (str), ``label`` (int64 index
            into ``classes``, −1 unlabelled) and any metadata (``country``, ``year``, ``lon`` …).
        classes: class vocabulary of ``samples.label``.
        attrs: JSON-serialisable facts (``source`` …).
    """

    table: pd.DataFrame
    bands: tuple[str, ...]
    samples: pd.DataFrame
    classes: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in ("sample", "date", *self.bands) if c not in self.table.columns]
        if missing:
            raise DataFormatError(
                f"observation table lacks columns {missing}; expected 'sample', 'date' and the "
                f"bands {list(self.bands)}"
            )
        if "sample_id" not in self.samples or "label" not in self.samples:
            raise DataFormatError("samples table needs 'sample_id' and 'label' columns")
        self.samples = self.samples.reset_index(drop=True)

    @property
    def n_samples(self) -> int:
        """Number of samples S."""
        return len(self.samples)

    def __repr__(self) -> str:
        return (
            f"Observations({len(self.table)} rows, {self.n_samples} samples, "
            f"bands={list(self.bands)}, classes={list(self.classes)})"
        )

    def where(self, **conditions: Any) -> Observations:
        """The samples (and their observations) whose ``samples`` columns hold the given
        values, as :meth:`SeriesSet.where` (``label``, a class index, is no column to select
        by here).

        Raises:
            DataFormatError: as :meth:`SeriesSet.where`.
        """
        return self.select(where_mask(self.samples, conditions, exclude=("label",)))

    def select(self, keep: ArrayLike) -> Observations:
        """The samples of a boolean mask (S,) over ``samples``, with their observations."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_samples,):
            raise DataFormatError(
                f"boolean mask must have shape ({self.n_samples},), got {keep.shape}"
            )
        position = np.full(self.n_samples, -1, dtype=np.int64)
        position[keep] = np.arange(int(keep.sum()))
        sample = self.table["sample"].to_numpy(dtype=np.int64)
        table = self.table[keep[sample]].reset_index(drop=True)
        table["sample"] = position[sample[keep[sample]]]
        return Observations(
            table,
            self.bands,
            self.samples[keep].reset_index(drop=True),
            self.classes,
            dict(self.attrs),
        )


#: the most values of a column an error message lists
_LISTED = 20


def where_mask(
    meta: pd.DataFrame, conditions: Mapping[str, Any], *, exclude: Sequence[str] = ()
) -> NDArray[np.bool_]:
    """Mask (N,) of the rows of ``meta`` that hold, in every column of ``conditions``, its
    value or one of its values (a list, tuple or set means 'any of').

    Values compare as the column's type: text ``"2016"`` matches the number 2016 in a column
    of integers or floats, the number 2016 matches ``"2016"`` in a column of text, and text is
    compared exactly (case-sensitive). ``exclude``: columns that are no metadata to select by.

    Raises:
        DataFormatError: an unknown column (the message lists the columns); a value the
            column does not hold (the message lists its values, at most 20, and the nearest
            spellings); a value that cannot be of the column's type; a column with no value
            given; or conditions that no row meets together.
    """
    columns = [str(c) for c in meta.columns if c not in exclude]
    mask = np.ones(len(meta), dtype=bool)
    kept: list[tuple[str, int]] = []
    for col, value in conditions.items():
        if col not in columns:
            near = difflib.get_close_matches(str(col), columns, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise DataFormatError(
                f"no metadata column {col!r} to select samples by{hint}; the columns are "
                f"{', '.join(columns)}"
            )
        values = _values(value)
        if not values:
            raise DataFormatError(
                f"no value given for column {col!r}; give one or more of its values"
            )
        hit = np.zeros(len(meta), dtype=bool)
        absent = []
        texts = _texts(meta[col]) if _kind(meta[col]) == "text" else None
        for v in values:
            match = _equal(meta[col], v, col) if texts is None else texts == _text(v)
            if not match.any():
                absent.append(v)
            hit |= match
        if absent:
            raise DataFormatError(_absent_message(meta, col, absent, columns))
        mask &= hit
        kept.append((f"{col}={','.join(_text(v) for v in values)}", int(hit.sum())))
    if len(kept) > 1 and not mask.any():
        each = ", ".join(f"{c} {n:,}" for c, n in kept)
        raise DataFormatError(
            f"no sample meets all of {' and '.join(c for c, _ in kept)} (each alone keeps: "
            f"{each} samples); drop or change one of them"
        )
    return mask


def where_text(conditions: Mapping[str, Any]) -> str:
    """Conditions of :func:`where_mask` as text: ``region=Fergana year=2015,2016``."""
    return " ".join(
        f"{col}={','.join(_text(v) for v in _values(value))}" for col, value in conditions.items()
    )


def _values(value: Any) -> list[Any]:
    """A condition's values: a list, tuple or set as a list, anything else as one value."""
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def _kind(col: pd.Series) -> str:
    """How a column's values compare: ``bool``, ``number``, ``date`` or ``text``."""
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_numeric_dtype(col):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "date"
    return "text"


def _text(value: Any) -> str:
    """A value as text: ``2016`` for 2016.0, so that years read as floats read as years."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and np.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _equal(col: pd.Series, value: Any, name: str) -> NDArray[np.bool_]:
    """Mask of the values of ``col`` equal to ``value``, compared as the column's type."""
    kind = _kind(col)
    given = value.strip() if isinstance(value, str) else value
    try:
        if kind == "bool":
            words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            flag = words[str(given).lower()] if isinstance(given, str) else bool(given)
            return np.asarray(col.fillna(not flag).astype(bool).to_numpy() == flag)
        if kind == "number":
            if isinstance(given, bool | np.bool_):
                raise ValueError
            number = float(given)
            return np.asarray(col.astype("float64").to_numpy() == number)
        if kind == "date":
            return np.asarray((col == pd.Timestamp(given)).fillna(False).to_numpy(dtype=bool))
    except (KeyError, TypeError, ValueError):
        what = {"bool": "true or false", "number": "a number", "date": "a date"}[kind]
        raise DataFormatError(
            f"column {name!r} holds {kind}s, but {value!r} is not {what}; give one of its "
            f"values: {_listing(col)}"
        ) from None
    return np.asarray(_texts(col) == _text(value))


def _texts(col: pd.Series) -> NDArray[np.object_]:
    """A column's values as text (:func:`_text`), None where missing."""
    present = col.notna().to_numpy()
    out = np.full(len(col), None, dtype=object)
    out[present] = [_text(v) for v in col.to_numpy()[present]]
    return out


def _distinct(col: pd.Series) -> list[str]:
    """The distinct values of a column as text, in their natural order (numbers by value)."""
    values = col.dropna().unique()
    if _kind(col) in ("number", "date", "bool"):
        values = np.sort(values)
        return list(dict.fromkeys(_text(v) for v in values))
    return sorted({_text(v) for v in values})


def _listing(col: pd.Series) -> str:
    """At most :data:`_LISTED` distinct values of a column, and how many there are."""
    values = _distinct(col)
    if not values:
        return "none (every value is missing)"
    shown = ", ".join(values[:_LISTED])
    return shown if len(values) <= _LISTED else f"{shown}, … ({len(values):,} values in all)"


def _absent_message(meta: pd.DataFrame, col: str, absent: list[Any], columns: list[str]) -> str:
    """One line: the values ``col`` does not hold, the nearest spellings, its values."""
    present = _distinct(meta[col])
    parts = []
    for v in absent:
        text = _text(v)
        near = [p for p in present if p.lower() == text.strip().lower()]
        if _kind(meta[col]) == "number":  # the nearest number, not the nearest spelling
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            numbers = [p for p in present if np.isfinite(float(p))]
            near = [min(numbers, key=lambda p: abs(float(p) - number))] if numbers else []
            near = near if np.isfinite(number) else []
        if not near and _kind(meta[col]) == "text":  # "Belgium" or "BE" for BEL
            from cropglobe.classes import country_alias

            alias = country_alias(text, present)
            near = [alias] if alias else []
        near = near or difflib.get_close_matches(text, present, n=3, cutoff=0.6)
        elsewhere = [
            c
            for c in columns
            if c != col and _kind(meta[c]) == "text" and meta[c].dropna().astype(str).eq(text).any()
        ]
        hint = ""
        if near:
            hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)"
        elif elsewhere:
            hint = f" (it is a value of {' and '.join(repr(c) for c in elsewhere[:3])})"
        parts.append(f"{text!r}{hint}")
    return f"column {col!r} holds no value {' nor '.join(parts)}; its values: {_listing(meta[col])}"


def equal_rows(values: NDArray[Any], order: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
    """For each row of ``values`` (N, ...), the index of the first row (in ``order``, default
    row order) holding the same values bit for bit, NaN equal to NaN; a row without an equal
    earlier one points to itself.

    A 64-bit multiplicative hash per row finds candidate equal rows in one pass; every
    candidate is then compared bit for bit with the row it would point to, so a hash collision
    never joins distinct rows.
    """
    n = values.shape[0]
    rows = np.arange(n, dtype=np.int64)
    if n == 0:
        return rows
    flat = np.asarray(values).reshape(n, -1)
    if flat.dtype.kind == "f":  # one canonical NaN bit pattern so that NaN equals NaN
        flat = flat.astype(np.float32 if flat.dtype.itemsize <= 4 else np.float64, copy=False)
        flat = np.where(np.isnan(flat), flat.dtype.type(np.nan), flat)
    elif flat.dtype.itemsize not in (4, 8):
        flat = flat.astype(np.int64)
    cols = np.ascontiguousarray(flat).view(np.uint32)
    mult = np.random.default_rng(0x5EED).integers(1, 2**32, (cols.shape[1], 2), np.uint32)
    h32 = cols @ (mult | np.uint32(1))  # two independent 32-bit hashes, wrapping products
    h = (h32[:, 0].astype(np.uint64) << np.uint64(32)) | h32[:, 1].astype(np.uint64)
    codes, _ = pd.factorize(h)
    order = rows if order is None else np.asarray(order, dtype=np.int64)
    _, first = np.unique(codes[order], return_index=True)
    head = order[first][codes]
    cand = np.flatnonzero(head != rows)
    same = (cols[cand] == cols[head[cand]]).all(axis=1)
    out = rows.copy()
    out[cand[same]] = head[cand[same]]
    return out


def parquet_ready(col: pd.Series) -> pd.Series:
    """``col`` when Parquet can store it; objects of mixed types (``[1, "b"]``) as text
    (missing values kept)."""
    import pyarrow as pa

    if not pd.api.types.is_object_dtype(col):
        return col
    try:
        pa.array(col, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return col.map(lambda v: None if v is None or v is pd.NA or v != v else str(v))
    return col


def _meta_parquet(meta: pd.DataFrame) -> io.BytesIO:
    """``meta`` as Parquet bytes; a column mixing value types (``[1, "b"]``), which Parquet
    cannot hold, is written as text, with a warning naming it."""
    import pyarrow as pa

    buf = io.BytesIO()
    try:
        meta.to_parquet(buf, index=False)
        return buf
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    fixed = meta.copy()
    for col in fixed.columns:
        ready = parquet_ready(fixed[col])
        if ready is not fixed[col]:
            kinds = sorted({type(v).__name__ for v in fixed[col].dropna()})
            import logging

            logging.getLogger(__name__).warning(
                "meta column %r mixes %s values: saved as text", col, " and ".join(kinds)
            )
            fixed[col] = ready
    buf = io.BytesIO()
    try:
        fixed.to_parquet(buf, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataFormatError(
            f"cannot save the metadata ({exc}); give each meta column values of one type"
        ) from None
    return buf
