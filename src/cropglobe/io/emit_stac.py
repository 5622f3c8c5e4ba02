"""EMIT L2A granules from STAC (NASA CMR-STAC or a static catalog): spectra at labelled points.

NASA's CMR-STAC serves EMIT at ``https://cmr.earthdata.nasa.gov/stac/LPCLOUD``, collection
``EMITL2ARFL_001`` (L2A surface reflectance, uncertainty and masks, 60 m). Each item is one
granule (a ~75 km scene, swath geometry) whose assets are NetCDF files at
``https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/EMITL2ARFL.001/<granule>/``
under generic keys (``data``, ``data1`` …, titled ``Download EMIT_L2A_RFL_001_….nc``):

- ``EMIT_L2A_RFL_001_<time>_<orbit>_<scene>.nc``: reflectance (read by
  :func:`cropglobe.io.emit.read_emit_points`);
- ``EMIT_L2A_RFLUNCERT_…nc``: its uncertainty (not used);
- ``EMIT_L2A_MASK_…nc``: cloud, cirrus, water, spacecraft, dilated-cloud and aggregate flags
  (:func:`cropglobe.io.emit.read_emit_mask`).

The files are found by their names (asset key, href file name or title), not by the keys.

:func:`plan_granules` keeps the items whose footprint (the item geometry) holds at least one
point; :func:`extract_emit_points` fetches their reflectance and mask files
(:func:`cropglobe.io.fetch.fetch`: local hrefs read in place, remote ones downloaded once into a
cache, with Earthdata authentication), samples each at its points through the file's GLT, drops
spectra the mask flags, and returns one spectrum per (point, granule) as
:class:`~cropglobe.io.emit.Spectra`; :func:`~cropglobe.io.emit.write_spectra_table` writes them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe.errors import DataFormatError
from cropglobe.io.emit import Spectra, emit_mask_reasons, read_emit_mask, read_emit_points
from cropglobe.io.stac import ProgressFn, sampling_points

if TYPE_CHECKING:
    import pystac

__all__ = [
    "EmitGranule",
    "emit_assets",
    "extract_emit_points",
    "footprint_contains",
    "is_emit_collection",
    "plan_granules",
]

log = logging.getLogger(__name__)

#: ``progress_callback``-like: a description in, a context yielding a ProgressFn (or None)
ProgressFactory = Callable[[str], AbstractContextManager[ProgressFn | None]]

_RFL = re.compile(r"EMIT_L2A_RFL_\d{3}_", re.IGNORECASE)
_MASK = re.compile(r"EMIT_L2A_MASK_\d{3}_", re.IGNORECASE)

#: meta columns a spectra table puts after the points' own columns
_PLACE_COLUMNS = ("lon", "lat", "date", "granule")


def is_emit_collection(collection: str | None) -> bool:
    """True for an EMIT collection id (``EMITL2ARFL_001`` …: starts with ``EMIT``, any case)."""
    return bool(collection) and str(collection).strip().upper().startswith("EMIT")


def _file_name(href: str) -> str:
    return unquote(Path(urlparse(href).path).name)


def emit_assets(item: pystac.Item) -> tuple[str, str | None]:
    """The hrefs of an EMIT L2A item's reflectance file and of its mask file (None if absent).

    An asset is the reflectance when its href's file name (else its title, else its key)
    matches ``EMIT_L2A_RFL_###_`` (so not ``EMIT_L2A_RFLUNCERT_``), the mask when it matches
    ``EMIT_L2A_MASK_###_``; keys ``reflectance`` and ``mask`` are accepted too.

    Raises:
        DataFormatError: no reflectance asset (names the item's assets).
    """
    rfl: str | None = None
    mask: str | None = None
    for key, asset in item.assets.items():
        href = asset.get_absolute_href() or asset.href
        texts = (_file_name(href), asset.title or "", key)
        if rfl is None and (any(_RFL.search(t) for t in texts) or key.lower() == "reflectance"):
            rfl = href
        elif mask is None and (any(_MASK.search(t) for t in texts) or key.lower() == "mask"):
            mask = href
    if rfl is None:
        have = ", ".join(f"{k} ({_file_name(a.href)})" for k, a in item.assets.items())
        raise DataFormatError(
            f"item {item.id} has no EMIT L2A reflectance asset (a file named "
            f"EMIT_L2A_RFL_###_….nc); its assets are {have or 'none'}; is --collection an EMIT "
            "L2A reflectance collection (EMITL2ARFL_001)?"
        )
    return rfl, mask


def _ring_contains(ring: Sequence[Sequence[float]], x: NDArray[Any], y: NDArray[Any]) -> Any:
    """Even-odd test of points against one closed ring of (lon, lat) vertices."""
    inside = np.zeros(x.shape, dtype=bool)
    pts = np.asarray(ring, dtype=np.float64)[:, :2]
    if len(pts) < 3:
        return inside
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    for x0, y0, x1, y1 in zip(xa, ya, xb, yb, strict=True):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < at)
    return inside


def footprint_contains(geometry: dict[str, Any] | None, lon: Any, lat: Any) -> NDArray[np.bool_]:
    """Which points lie in a GeoJSON Polygon or MultiPolygon (lon/lat degrees; holes count).

    Args:
        geometry: the item's GeoJSON geometry; None holds every point.
        lon, lat: (N,) degrees.

    Returns:
        bool (N,).
    """
    x = np.asarray(lon, dtype=np.float64).reshape(-1)
    y = np.asarray(lat, dtype=np.float64).reshape(-1)
    if geometry is None:
        return np.ones(x.shape, dtype=bool)
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = list(coords)
    elif kind == "GeometryCollection":
        out = np.zeros(x.shape, dtype=bool)
        for part in geometry.get("geometries") or []:
            out |= footprint_contains(part, x, y)
        return out
    else:  # points or lines hold no area
        return np.zeros(x.shape, dtype=bool)
    out = np.zeros(x.shape, dtype=bool)
    for rings in polygons:
        inside = np.zeros(x.shape, dtype=bool)
        for ring in rings:
            inside ^= _ring_contains(ring, x, y)
        out |= inside
    return out


@dataclass
class EmitGranule:
    """One EMIT granule to sample.

    Attributes:
        id: the STAC item id (the granule name).
        date: acquisition day (UTC).
        reflectance: href of the ``EMIT_L2A_RFL_…nc`` file.
        mask: href of the ``EMIT_L2A_MASK_…nc`` file, or None.
        points: int64 indices of the points (rows of the points table) in its footprint.
    """

    id: str
    date: dt.date
    reflectance: str
    mask: str | None
    points: NDArray[np.int64]


def plan_granules(items: Sequence[pystac.Item], points: pd.DataFrame) -> list[EmitGranule]:
    """The items whose footprint holds at least one point, with those points and the files.

    Args:
        items: EMIT L2A items (:func:`cropglobe.io.stac.search_items`).
        points: DataFrame with ``lon``, ``lat`` in degrees (:func:`cropglobe.io.stac.read_points`).

    Raises:
        DataFormatError: an item holding points has no reflectance asset.
    """
    from cropglobe.io.stac import _item_time

    lon = points["lon"].to_numpy(dtype=np.float64)
    lat = points["lat"].to_numpy(dtype=np.float64)
    out = []
    for it in items:
        inside = footprint_contains(it.geometry, lon, lat)
        if it.geometry is None and it.bbox is not None:
            w, s, e, n = it.bbox[0], it.bbox[1], it.bbox[-2], it.bbox[-1]
            inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
        idx = np.flatnonzero(inside).astype(np.int64)
        if not idx.size:
            log.debug("%s: no point in its footprint; not fetched", it.id)
            continue
        rfl, mask = emit_assets(it)
        day = _item_time(it).astimezone(dt.UTC).date()
        out.append(EmitGranule(it.id, day, rfl, mask, idx))
    return out


def _no_progress(description: str) -> AbstractContextManager[ProgressFn | None]:
    return contextlib.nullcontext(None)


def extract_emit_points(
    items: Sequence[pystac.Item],
    points: pd.DataFrame,
    *,
    cache: str | os.PathLike[str],
    session: Any = None,
    use_mask: bool = True,
    download_progress: ProgressFactory | None = None,
) -> Spectra:
    """EMIT L2A reflectance spectra at labelled points, one per (point, granule).

    For each item whose footprint holds points (:func:`plan_granules`): the reflectance file
    (and mask file, when the item has one and ``use_mask``) is fetched
    (:func:`cropglobe.io.fetch.fetch`), the points are sampled through its GLT
    (:func:`~cropglobe.io.emit.read_emit_points`), spectra the mask flags are dropped
    (:func:`~cropglobe.io.emit.emit_mask_reasons`: the Aggregate flag, or cloud / cirrus /
    dilated cloud without one) and so are points without data there (a GLT cell without a
    pixel, fill values).

    Args:
        items: EMIT L2A items (:func:`cropglobe.io.stac.search_items`).
        points: DataFrame with ``sample_id``, ``lon``, ``lat`` (degrees), optional ``label``
            and other columns (:func:`cropglobe.io.stac.read_points`).
        cache: folder remote files are downloaded to (and reused from).
        session: a ``requests.Session`` for downloads (default
            :func:`cropglobe.io.fetch.earthdata_session`, closed afterwards).
        use_mask: apply the mask files.
        download_progress: called with a description (``"downloading NAME"``) for each
            download, returning a context that yields a ``(bytes, total)`` callback or None
            (e.g. ``cropglobe.cli._common.progress_callback``).

    Returns:
        :class:`~cropglobe.io.emit.Spectra`: values float32 (rows, bands), NaN for fill;
        wavelengths, fwhm and good-band flags of the files (good = good in every file); meta
        ``sample_id``, the points' other columns (``label`` …), ``lon``, ``lat``, ``date``
        (datetime64, the UTC day), ``granule``; rows sorted by point, then date; attrs
        ``source="stac"``, ``granules`` (ids sampled), ``n_items``, ``n_points``,
        ``masked`` ({reason: spectra dropped}), ``no_data`` (spectra missing inside a
        footprint), ``outside`` (points in no footprint), ``no_spectrum`` (points without
        any spectrum) and ``no_spectrum_ids`` (the first 20).

    Raises:
        DataFormatError: ``points`` lacks columns; an item lacks a reflectance asset; files
            of different band sets; unreadable files.
        DownloadError, EarthdataAuthError: a download fails (:func:`~cropglobe.io.fetch.fetch`).
    """
    from cropglobe.io.fetch import earthdata_session, fetch, is_remote

    pts, lon, lat = sampling_points(points, items)
    granules = plan_granules(items, pts)
    factory = download_progress or _no_progress
    hrefs = [h for g in granules for h in (g.reflectance, g.mask if use_mask else None) if h]
    own = session is None and any(is_remote(h) for h in hrefs)
    sess = earthdata_session() if own else session

    def local(href: str) -> Path:
        if not is_remote(href):
            return fetch(href, cache)
        with factory(f"downloading {Path(urlparse(href).path).name}") as update:
            return fetch(href, cache, session=sess, progress=update)

    masked: collections.Counter[str] = collections.Counter()
    no_data = 0
    seen = np.zeros(len(pts), dtype=bool)
    inside_any = np.zeros(len(pts), dtype=bool)
    rows: list[tuple[NDArray[np.int64], NDArray[np.float32], EmitGranule]] = []
    ref: Spectra | None = None
    good: NDArray[np.bool_] | None = None
    try:
        for g in granules:
            inside_any[g.points] = True
            rfl_path = local(g.reflectance)
            sp = read_emit_points(rfl_path, lon[g.points], lat[g.points])
            if ref is None:
                ref, good = sp, sp.good.copy() if sp.good is not None else None
            elif sp.band_names() != ref.band_names():
                raise DataFormatError(
                    f"granule {g.id} has {sp.n_bands} bands ({sp.band_names()[0]}…), granule "
                    f"{granules[0].id} {ref.n_bands} ({ref.band_names()[0]}…); sample "
                    "granules of one product version together"
                )
            elif good is not None and sp.good is not None:
                good &= sp.good
            has = ~np.isnan(sp.values).all(axis=1)
            keep = has.copy()
            if use_mask and g.mask is not None and has.any():
                flags = read_emit_mask(
                    local(g.mask),
                    sp.meta["downtrack"].to_numpy(),
                    sp.meta["crosstrack"].to_numpy(),
                )
                reasons = emit_mask_reasons(flags)
                hit = has & (reasons != None)  # noqa: E711 - elementwise
                masked.update(str(r) for r in reasons[hit])
                keep &= ~hit
            no_data += int((~has).sum())
            log.info(
                "%s: %d of %d points in its footprint kept", g.id, int(keep.sum()), g.points.size
            )
            seen[g.points[keep]] = True
            rows.append((g.points[keep], sp.values[keep], g))
    finally:
        if own and sess is not None:
            sess.close()
    return _assemble(pts, rows, ref, good, granules, masked, no_data, seen, inside_any, items)


def _assemble(
    pts: pd.DataFrame,
    rows: list[tuple[NDArray[np.int64], NDArray[np.float32], EmitGranule]],
    ref: Spectra | None,
    good: NDArray[np.bool_] | None,
    granules: list[EmitGranule],
    masked: collections.Counter[str],
    no_data: int,
    seen: NDArray[np.bool_],
    inside_any: NDArray[np.bool_],
    items: Sequence[pystac.Item],
) -> Spectra:
    """The Spectra of :func:`extract_emit_points` from its per-granule parts."""
    n_bands = ref.n_bands if ref is not None else 0
    idx = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
    values = np.concatenate([r[1] for r in rows]) if rows else np.zeros((0, n_bands), np.float32)
    dates = [pd.Timestamp(g.date) for i, _, g in rows for _ in range(len(i))]
    names = [g.id for i, _, g in rows for _ in range(len(i))]
    own_cols = [c for c in pts.columns if c not in ("lon", "lat")]
    meta = pts.iloc[idx][own_cols].reset_index(drop=True)
    meta["sample_id"] = meta["sample_id"].astype(str)
    for c in _PLACE_COLUMNS:
        if c in meta.columns:
            meta = meta.rename(columns={c: f"point_{c}"})
    meta["lon"] = pts["lon"].to_numpy(dtype=np.float64)[idx]
    meta["lat"] = pts["lat"].to_numpy(dtype=np.float64)[idx]
    meta["date"] = pd.to_datetime(pd.Series(dates, dtype="datetime64[ns]"))
    meta["granule"] = pd.Series(names, dtype=object)
    order = np.lexsort((meta["granule"].to_numpy(dtype=str), meta["date"].to_numpy(), idx))
    meta = meta.iloc[order].reset_index(drop=True)
    values = values[order]
    lacking = ~seen
    ids = pts["sample_id"].astype(str).to_numpy()
    attrs: dict[str, Any] = {
        "source": "stac",
        "format": "emit",
        "granules": [g.id for g in granules],
        "n_items": len(items),
        "n_points": len(pts),
        "masked": dict(sorted(masked.items())),
        "no_data": int(no_data),
        "outside": int((~inside_any).sum()),
        "no_spectrum": int(lacking.sum()),
        "no_spectrum_ids": ids[lacking][:20].tolist(),
    }
    if lacking.any():
        log.warning(
            "%d of %d points have no spectrum in the %d granules (%d outside every footprint, "
            "the others masked or without data), e.g. %s",
            int(lacking.sum()),
            len(pts),
            len(granules),
            attrs["outside"],
            ids[lacking][0],
        )
    if ref is None:
        return Spectra(np.zeros((0, 0), np.float32), np.zeros(0), meta=meta, attrs=attrs)
    return Spectra(values, ref.wavelengths, ref.fwhm, good, meta, attrs)
