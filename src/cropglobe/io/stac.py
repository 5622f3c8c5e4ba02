"""Sentinel-2 L2A from STAC: search, load a raster stack (odc-stac), sample labelled points.

- :func:`search_items` finds items in a STAC API (pystac-client; Earth Search, Planetary
  Computer …) or in a local static catalog, collection or ItemCollection JSON (pystac; filtered
  here by bbox, dates and ``eo:cloud_cover``).
- :func:`load_stack` loads them with ``odc.stac.load`` into a lazy (Dask) DataArray with dims
  ``(time, band, y, x)``, a ``band`` coordinate of cropglobe band names (``SCL`` among them when
  the items have it) and a ``spatial_ref`` coordinate carrying the CRS: what
  :func:`cropglobe.io.raster.stack_from_xarray` and ``cropglobe map`` read. :func:`write_stack`
  writes it as a Zarr store or a folder of one GeoTIFF per date (atomic).
- :func:`extract_points` samples each item's assets at labelled points (each asset in its own
  CRS and resolution, the points reprojected to it) into the raw observation table
  (:class:`~cropglobe.series.Observations`), SCL kept as the validity layer.

Band names. Catalogues name Sentinel-2 assets differently; cropglobe's band codes are matched
to asset keys through this table (the first key an item has is used; ``assets=`` overrides it,
e.g. ``{"B02": "blue"}``; on the command line ``--asset B02=blue``):

=========  ===================================  ==========================
cropglobe  Earth Search (element84, v1)         Planetary Computer, others
=========  ===================================  ==========================
B01        ``coastal``                          ``B01``
B02        ``blue``                             ``B02``
B03        ``green``                            ``B03``
B04        ``red``                              ``B04``
B05        ``rededge1``                         ``B05``
B06        ``rededge2``                         ``B06``
B07        ``rededge3``                         ``B07``
B08        ``nir``                              ``B08``
B8A        ``nir08``                            ``B8A``
B09        ``nir09``                            ``B09``
B11        ``swir16``                           ``B11``
B12        ``swir22``                           ``B12``
SCL        ``scl``                              ``SCL``
=========  ===================================  ==========================

Scale. cropglobe works in reflectance × 10,000 (:data:`cropglobe.bands.S2_REFLECTANCE_SCALE`).
ESA's processing baseline 04.00 (scenes from 25 January 2022) adds 1,000 to the digital numbers
(``BOA_ADD_OFFSET = -1000``), and both Earth Search and the Planetary Computer serve those numbers
as they are. With ``harmonize=True`` (the default) values are brought back to reflectance ×
10,000: by the asset's ``raster:bands`` ``scale``/``offset`` when it declares them (Earth
Search: 0.0001 and -0.1, i.e. DN - 1000), else by subtracting 1,000 where the item's
``s2:processing_baseline`` is 04.00 or later (Planetary Computer). This is what Earth Engine's
``S2_SR_HARMONIZED`` does. Outputs are float32 with NaN for no data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe.bands import S2_CATALOGUE, canonical_band
from cropglobe.errors import BandError, CropGlobeError, DataFormatError, ParameterError

if TYPE_CHECKING:
    import pystac
    import xarray as xr

    from cropglobe.series import Observations

__all__ = [
    "L2A_BANDS",
    "S2_ASSET_KEYS",
    "ProgressFn",
    "StacError",
    "asset_key",
    "check_bands",
    "check_bbox",
    "extract_points",
    "load_stack",
    "read_points",
    "search_items",
    "write_stack",
]

log = logging.getLogger(__name__)

#: called after each step with ``(steps done, steps in all)``
ProgressFn = Callable[[int, int], Any]

#: Sentinel-2 L2A bands a STAC search can load (B10, cirrus, is not in L2A products)
L2A_BANDS: tuple[str, ...] = tuple(b for b in S2_CATALOGUE if b != "B10")

#: cropglobe band -> STAC asset keys tried in order (see the module docstring)
S2_ASSET_KEYS: dict[str, tuple[str, ...]] = {
    **{b: (b, S2_CATALOGUE[b].common_name, b.lower()) for b in L2A_BANDS},
    "SCL": ("SCL", "scl"),
}

#: a source ending so is a static STAC file even when it is a URL
_STAC_SUFFIXES = (".json", ".geojson")


class StacError(CropGlobeError):
    """A STAC source cannot be read, or a search finds nothing."""


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """odc-geo 0.5 calls APIs that shapely 2.2 and affine 3 deprecate, and odc-loader reprojects
    into in-memory arrays that rasterio warns have no geotransform before it is given one
    (NotGeoreferencedWarning, from its reader threads, on some reads only): not the user's
    problem. Dask's threads share these filters while the context is open."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


# ---------------------------------------------------------------------------- bands
def check_bands(bands: Sequence[str], assets: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``bands`` in cropglobe's spelling (``"B2"`` -> ``"B02"``), SCL left out (it is loaded as
    the validity layer whenever an item has it).

    Raises:
        BandError: a band is no Sentinel-2 L2A band and has no ``assets`` override, or no band
            is left.
    """
    extra = {canonical_band(k) for k in (assets or {})}
    out: list[str] = []
    for b in bands:
        code = canonical_band(str(b))
        if code.upper() == "SCL":
            continue
        if code not in L2A_BANDS and code not in extra:
            raise BandError(
                f"band {b!r} is not a Sentinel-2 L2A band; expected some of "
                f"{', '.join(L2A_BANDS)} (SCL is loaded as the validity layer anyway), or name "
                f"its asset with --asset {b}=KEY (assets={{{b!r}: KEY}} in Python)"
            )
        if code not in out:
            out.append(code)
    if not out:
        raise BandError(f"no spectral band among {list(bands)}; name some of {list(L2A_BANDS)}")
    return tuple(out)


def asset_key(item: pystac.Item, band: str, assets: Mapping[str, str] | None = None) -> str | None:
    """The key of ``item``'s asset holding ``band`` (cropglobe spelling, or ``"SCL"``): the
    override in ``assets``, else the first key of :data:`S2_ASSET_KEYS` the item has; None
    when it has none."""
    over = {canonical_band(k): v for k, v in (assets or {}).items()}
    if band in over:
        return over[band] if over[band] in item.assets else None
    for key in S2_ASSET_KEYS.get(band, (band,)):
        if key in item.assets:
            return key
    return None


def _keys(
    items: Sequence[pystac.Item], bands: Sequence[str], assets: Mapping[str, str] | None
) -> tuple[dict[str, str], str | None]:
    """Band -> asset key for all ``items`` (the same in each), and the SCL key (None when some
    item lacks one)."""
    keys: dict[str, str] = {}
    for b in bands:
        found = {asset_key(it, b, assets) for it in items}
        if None in found or len(found) != 1:
            bad = next(it for it in items if asset_key(it, b, assets) is None)
            tried = [assets[b]] if assets and b in assets else list(S2_ASSET_KEYS.get(b, (b,)))
            raise BandError(
                f"item {bad.id} has no asset for band {b} (looked for keys {tried}); its assets "
                f"are {sorted(bad.assets)}; name the asset with --asset {b}=KEY (assets= in "
                "Python)"
                if None in found
                else f"items name band {b}'s asset differently ({sorted(k for k in found if k)}); "
                f"load them separately or pass --asset {b}=KEY"
            )
        keys[b] = found.pop()  # type: ignore[assignment]
    scl = {asset_key(it, "SCL", assets) for it in items}
    scl_key = scl.pop() if len(scl) == 1 and None not in scl else None
    if scl_key is None:
        log.warning(
            "not every item has an SCL asset: observations carry no validity layer (clouds "
            "are not masked); name it with --asset SCL=KEY if it has another key"
        )
    return keys, scl_key


def _linear(item: pystac.Item, key: str, harmonize: bool) -> tuple[float, float]:
    """``(a, b)`` with reflectance × 10,000 = a · DN + b for ``item``'s asset ``key``."""
    if not harmonize:
        return 1.0, 0.0
    baseline = item.properties.get("s2:processing_baseline")
    try:
        newer = baseline is not None and float(str(baseline)) >= 4.0
    except ValueError:
        newer = False
    by_baseline = -1000.0 if newer else 0.0
    asset = item.assets[key]
    rb = asset.extra_fields.get("raster:bands")
    if isinstance(rb, list) and rb and isinstance(rb[0], dict):
        scale, offset = rb[0].get("scale"), rb[0].get("offset")
        if scale is not None or offset is not None:
            s = float(scale if scale is not None else 1e-4)
            if s < 0.01:  # reflectance scale factors (1e-4); anything else is not ours to undo
                # a declared offset is the catalogue's word; an undeclared one is not "0"
                # (a scale alone says nothing of baseline 04.00's +1000)
                o = float(offset) * 1e4 if offset is not None else by_baseline
                return s * 1e4, o
    return 1.0, by_baseline


# ---------------------------------------------------------------------------- search
def _day(value: str | dt.date, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ParameterError(
            f"{what} {value!r} is not a date; expected YYYY-MM-DD, e.g. 2021-01-01"
        ) from None


def check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """``bbox`` as (west, south, east, north) in degrees.

    Raises:
        ParameterError: not 4 finite numbers, west not below east, south not below north, or
            outside -180…180 / -90…90.
    """
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ParameterError(
            f"bbox {list(bbox) if isinstance(bbox, Sequence) else bbox!r} is not 4 numbers; "
            "expected WEST SOUTH EAST NORTH in degrees, e.g. 1.2 43.3 1.4 43.5"
        ) from None
    ok = all(np.isfinite([w, s, e, n])) and -180 <= w < e <= 180 and -90 <= s < n <= 90
    if not ok:
        raise ParameterError(
            f"bbox {w:g} {s:g} {e:g} {n:g} is not WEST SOUTH EAST NORTH in degrees (west below "
            "east within -180…180, south below north within -90…90); e.g. 1.2 43.3 1.4 43.5"
        )
    return w, s, e, n


def _item_time(item: pystac.Item) -> dt.datetime:
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise DataFormatError(f"item {item.id} has no datetime; expected STAC items with one")
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def search_items(
    source: str | os.PathLike[str],
    *,
    collection: str | None = "sentinel-2-l2a",
    bbox: Sequence[float],
    start: str | dt.date,
    end: str | dt.date,
    max_cloud: float | None = None,
    limit: int | None = 500,
    modifier: Callable[[Any], Any] | None = None,
) -> list[pystac.Item]:
    """Items of ``collection`` over ``bbox`` between ``start`` and ``end`` (both days included).

    Args:
        source: a STAC API URL (``https://earth-search.aws.element84.com/v1``,
            ``https://planetarycomputer.microsoft.com/api/stac/v1``), searched with
            pystac-client (``query={"eo:cloud_cover": {"lt": max_cloud}}``); or a local (or
            ``http``) static catalog / collection / ItemCollection JSON, walked with pystac and
            filtered here the same way.
        collection: the collection id (``"sentinel-2-l2a"`` at both APIs above); None: any
            (in a static catalog, items of every collection).
        bbox: (west, south, east, north) in degrees.
        start: first day (``"2021-01-01"``).
        end: last day, included.
        max_cloud: keep items with ``eo:cloud_cover`` below this (%); None keeps all.
        limit: at most this many items (a WARNING says when it was reached); None: all.
        modifier: called on the items (pystac-client's ``modifier``), e.g.
            ``planetary_computer.sign_inplace``; for a Planetary Computer URL it is used
            automatically when the ``planetary-computer`` package is installed.

    Returns:
        The items sorted by datetime, then id.

    Raises:
        ParameterError: bad bbox, dates or max_cloud.
        StacError: the source cannot be opened (names it), or nothing is found (says which
            filters leave items when relaxed, for a local catalog).
    """
    box = check_bbox(bbox)
    d0, d1 = _day(start, "start"), _day(end, "end")
    if d1 < d0:
        raise ParameterError(
            f"dates {d0}/{d1} end before they start; expected START/END with START first"
        )
    if max_cloud is not None and not 0 <= float(max_cloud) <= 100:
        raise ParameterError(f"max_cloud={max_cloud} is not a percentage; expected 0-100")
    if limit is not None and limit < 1:
        raise ParameterError(f"limit={limit} is below 1; expected a positive number of items")
    text = os.fspath(source)
    is_api = text.startswith(("http://", "https://")) and not text.lower().endswith(_STAC_SUFFIXES)
    filters = (
        f"collection {collection!r}, bbox {' '.join(f'{v:g}' for v in box)}, dates {d0}/{d1}"
        + (f", cloud cover below {max_cloud:g} %" if max_cloud is not None else "")
    )
    if is_api:
        items = _search_api(text, collection, box, d0, d1, max_cloud, limit, modifier)
        hint = "relax the filters: a larger bbox, a longer date range" + (
            ", a higher --max-cloud" if max_cloud is not None else ""
        )
    else:
        items, hint = _search_static(text, collection, box, d0, d1, max_cloud)
        if limit is not None and len(items) > limit:
            items = items[:limit]
            log.warning("%s: more than %d items match; kept the first %d", text, limit, limit)
    if not items:
        raise StacError(f"no items found in {text} for {filters}; {hint}")
    items.sort(key=lambda it: (_item_time(it), it.id))
    log.info("%s: %d items for %s", text, len(items), filters)
    return items


def _search_api(
    url: str,
    collection: str | None,
    box: tuple[float, float, float, float],
    d0: dt.date,
    d1: dt.date,
    max_cloud: float | None,
    limit: int | None,
    modifier: Callable[[Any], Any] | None,
) -> list[pystac.Item]:
    from pystac_client import Client

    if modifier is None and "planetarycomputer" in url:
        try:
            import planetary_computer

            modifier = planetary_computer.sign_inplace
        except ImportError:
            log.warning(
                "%s: the Planetary Computer's assets need signed URLs, else their reads fail "
                "with HTTP 403; pip install planetary-computer (used automatically then), or "
                "in Python pass search_items(..., modifier=planetary_computer.sign_inplace)",
                url,
            )
    pool_log = logging.getLogger("urllib3.connectionpool")
    level = pool_log.level
    pool_log.setLevel(logging.ERROR)  # its retry warnings repeat what the error below says
    try:
        client = Client.open(url, modifier=modifier)
        search = client.search(
            collections=[collection] if collection else None,
            bbox=list(box),
            datetime=f"{d0.isoformat()}/{d1.isoformat()}",
            query={"eo:cloud_cover": {"lt": float(max_cloud)}} if max_cloud is not None else None,
            max_items=limit,
        )
        items = list(search.items())
    except CropGlobeError:
        raise
    except Exception as exc:  # requests, pystac_client.APIError, JSON errors …
        raise StacError(
            f"cannot search the STAC API at {url} ({_reason(exc)}); check the URL and the "
            "network connection"
        ) from None
    finally:
        pool_log.setLevel(level)
    if limit is not None and len(items) >= limit:
        log.warning("%s: the search stopped at limit=%d items; raise --limit for more", url, limit)
    return items


def _reason(exc: BaseException) -> str:
    """A short reason for a failed request (requests' messages nest whole reprs)."""
    text = str(exc)
    for needle, reason in (
        ("Failed to establish a new connection", "connection refused or host unreachable"),
        ("NameResolutionError", "host name not found"),
        ("Name or service not known", "host name not found"),
        ("timed out", "timed out"),
        ("Max retries exceeded", "no answer after several tries"),
    ):
        if needle in text:
            return reason
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]


def _static_items(path: str) -> list[pystac.Item]:
    import pystac

    if not path.startswith(("http://", "https://")) and not Path(path).exists():
        raise StacError(
            f"{path}: no such STAC catalog file; expected a STAC API URL (https://…) or a "
            "catalog.json / collection.json / ItemCollection JSON"
        )
    obj: Any
    try:
        obj = pystac.read_file(path)
    except Exception as exc:  # pystac raises STACTypeError, JSON and OS errors
        try:  # an ItemCollection (a FeatureCollection of items) is no STAC object to read_file
            obj = pystac.ItemCollection.from_file(path)
        except Exception:
            raise StacError(
                f"{path}: not a readable STAC catalog, collection, item or ItemCollection "
                f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})"
            ) from None
    if isinstance(obj, pystac.Item):
        return [obj]
    if isinstance(obj, pystac.ItemCollection):
        return list(obj.items)
    if isinstance(obj, pystac.Catalog):
        return list(obj.get_items(recursive=True))
    raise StacError(f"{path}: a STAC {type(obj).__name__}, which holds no items")


def _search_static(
    path: str,
    collection: str | None,
    box: tuple[float, float, float, float],
    d0: dt.date,
    d1: dt.date,
    max_cloud: float | None,
) -> tuple[list[pystac.Item], str]:
    """The items of a static catalog passing every filter, and a hint naming the filters that
    exclude items (for an empty answer)."""
    items = _static_items(path)
    w, s, e, n = box

    def in_coll(it: pystac.Item) -> bool:
        return collection is None or it.collection_id in (None, collection)

    def in_box(it: pystac.Item) -> bool:
        if it.bbox is None:
            return True
        iw, is_, ie, in_ = it.bbox[0], it.bbox[1], it.bbox[-2], it.bbox[-1]
        return iw <= e and ie >= w and is_ <= n and in_ >= s

    def in_dates(it: pystac.Item) -> bool:
        return d0 <= _item_time(it).astimezone(dt.UTC).date() <= d1

    def clear(it: pystac.Item) -> bool:
        cc = it.properties.get("eo:cloud_cover")
        return max_cloud is None or (cc is not None and float(cc) < max_cloud)

    tests = {"the collection": in_coll, "the bbox": in_box, "the dates": in_dates,
             "--max-cloud": clear}  # fmt: skip
    passed = {name: [it for it in items if t(it)] for name, t in tests.items()}
    keep = [it for it in items if all(t(it) for t in tests.values())]
    if keep:
        return keep, ""
    if not items:
        return [], "the catalog holds no items"
    blocking = [name for name, got in passed.items() if len(got) < len(items)]
    relaxed = []
    for name in blocking:
        others = [t for k, t in tests.items() if k != name]
        count = sum(all(t(it) for t in others) for it in items)
        if count:
            relaxed.append(f"relaxing {name} alone finds {count}")
    what = "; ".join(relaxed) if relaxed else f"relax {', '.join(blocking) or 'the filters'}"
    return [], f"the catalog holds {len(items)} items; {what}"


# ---------------------------------------------------------------------------- load a stack
def _groups(
    items: Sequence[pystac.Item], keys: Mapping[str, str], harmonize: bool
) -> list[tuple[dt.datetime, list[tuple[list[pystac.Item], list[tuple[float, float]]]]]]:
    """Items of one solar day together (one time step each), split into the runs of one DN ->
    reflectance rule (adjacent tiles of one day may differ in processing baseline), each run
    in order of its first item's time."""
    days: dict[dt.date, dict[tuple[tuple[float, float], ...], list[pystac.Item]]] = {}
    for it in items:
        t = _item_time(it)
        lon = 0.0 if it.bbox is None else (it.bbox[0] + it.bbox[-2]) / 2
        solar = (t + dt.timedelta(hours=lon / 15)).date()
        lin = tuple(_linear(it, k, harmonize) for k in keys.values())
        days.setdefault(solar, {}).setdefault(lin, []).append(it)
    out = []
    for runs in days.values():
        parts = sorted(runs.items(), key=lambda kv: min(_item_time(i) for i in kv[1]))
        when = min(_item_time(i) for its in runs.values() for i in its)
        out.append((when, [(its, list(lin)) for lin, its in parts]))
    return sorted(out, key=lambda g: g[0])


def load_stack(
    items: Sequence[pystac.Item],
    *,
    bands: Sequence[str],
    bbox: Sequence[float],
    crs: str | None = None,
    resolution: float = 10,
    chunks: Mapping[str, int] | None = None,
    assets: Mapping[str, str] | None = None,
    harmonize: bool = True,
) -> xr.DataArray:
    """Load ``items`` over ``bbox`` as a lazy (time, band, y, x) stack with odc-stac.

    Items of one solar day are mosaicked into one time step (the first item with data wins
    where they overlap).

    Args:
        items: STAC items (:func:`search_items`).
        bands: cropglobe band names (``B02`` …); SCL is added when every item has it.
        bbox: (west, south, east, north) in degrees.
        crs: output CRS (``"EPSG:32631"``); None: the UTM zone of the bbox centre.
        resolution: pixel size in units of the CRS (metres for UTM).
        chunks: Dask chunk sizes, default ``{"x": 2048, "y": 2048}``.
        assets: band -> asset key overrides (``{"B02": "blue"}``).
        harmonize: convert digital numbers to reflectance × 10,000 (see the module docstring).

    Returns:
        float32 DataArray (T, C[+1], Y, X), Dask-backed, NaN for no data; coordinates ``time``
        (datetime64, the first item of each day), ``band`` (cropglobe names; ``SCL`` last,
        with 0 = no data), ``y``/``x`` (pixel centres) and ``spatial_ref`` (CRS, GeoTransform);
        attrs ``crs`` and ``items`` (ids per time step, JSON).

    Raises:
        BandError: unknown band, or an item lacks a band's asset (names it and its assets).
        ParameterError: bad bbox or resolution.
    """
    import odc.stac
    import xarray as xr

    box = check_bbox(bbox)
    bands = check_bands(bands, assets)
    if not items:
        raise ParameterError("no items to load; search_items found none")
    if not resolution > 0:
        raise ParameterError(f"resolution={resolution} is not positive; expected e.g. 10")
    try:
        from pyproj import CRS

        if crs is not None:
            CRS.from_user_input(crs)
    except Exception as exc:  # pyproj.exceptions.CRSError
        raise ParameterError(
            f"crs={crs!r} is not a coordinate reference system ({str(exc).splitlines()[0][:120]});"
            " expected e.g. EPSG:32631 (or none: the UTM zone of the bbox centre)"
        ) from None
    keys, scl_key = _keys(items, bands, assets)
    load_keys = [*keys.values(), *([scl_key] if scl_key else [])]
    names = [*keys, *(["SCL"] if scl_key else [])]
    chunk: dict[str, Any] = dict(chunks or {"x": 2048, "y": 2048})
    geo: dict[str, Any] = {"crs": crs or "utm", "resolution": resolution, "bbox": box}
    steps = []
    ids = []
    crs_text = str(crs)
    with _quiet_deprecations():
        for when, runs in _groups(items, keys, harmonize):
            step = None
            for group, lin in runs:  # the first run with data wins, as within odc's mosaic
                ds = odc.stac.load(
                    group, bands=load_keys, groupby=lambda *_: 0, chunks=chunk, dtype="float32",
                    **geo,
                )  # fmt: skip
                if "geobox" not in geo:  # every step on the first one's pixel grid
                    geo = {"geobox": ds.odc.geobox}
                    epsg = ds.odc.crs.epsg
                    crs_text = f"EPSG:{epsg}" if epsg else str(ds.odc.crs)
                # a geographic CRS gives latitude/longitude dims: y/x as everywhere else
                ds = ds.rename({k: v for k, v in (("latitude", "y"), ("longitude", "x"))
                                if k in ds.dims})  # fmt: skip
                layers = []
                for key, (a, b) in zip(keys.values(), lin, strict=True):
                    layer = ds[key].isel(time=0, drop=True)
                    layers.append(layer * a + b if (a, b) != (1.0, 0.0) else layer)
                if scl_key:
                    layers.append(ds[scl_key].isel(time=0, drop=True))
                part = xr.concat(layers, dim="band").assign_coords(band=names)
                step = part if step is None else step.combine_first(part)
            assert step is not None
            if scl_key:  # SCL 0 (no data) where no item has data
                step = step.where((step["band"] != "SCL") | step.notnull(), 0)
            utc = when.astimezone(dt.UTC).replace(tzinfo=None)
            step = step.expand_dims(time=[np.datetime64(utc, "ns")])
            steps.append(step.transpose("time", "band", "y", "x"))
            ids.append([it.id for group, _ in runs for it in group])
    da = xr.concat(steps, dim="time").astype(np.float32)
    da = da.chunk({"time": 1, "band": 1, "y": chunk.get("y", 2048), "x": chunk.get("x", 2048)})
    da.attrs = {"crs": crs_text, "items": json.dumps(ids), "units": "reflectance x 10000"}
    da.name = "reflectance"
    return da


def sampling_points(
    points: pd.DataFrame, items: Sequence[Any]
) -> tuple[pd.DataFrame, NDArray[np.float64], NDArray[np.float64]]:
    """``(points, lon, lat)`` of a :func:`read_points` table to sample ``items`` at; one-line
    errors for a table without its columns or an empty search."""
    missing = [c for c in ("sample_id", "lon", "lat") if c not in points.columns]
    if missing:
        raise DataFormatError(
            f"points lack columns {missing}; expected sample_id, lon, lat (read_points reads a "
            "points file)"
        )
    if not items:
        raise ParameterError("no items to sample; search_items found none")
    pts = points.reset_index(drop=True)
    return pts, pts["lon"].to_numpy(dtype=np.float64), pts["lat"].to_numpy(dtype=np.float64)


def write_stack(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
) -> Path:
    """Write a (time, band, y, x) stack (atomic) as ``cropglobe map`` reads it.

    ``path`` ending in ``.zarr``: a Zarr store (format 2; needs ``zarr``) holding the array as
    variable ``reflectance``. Otherwise a folder of one float32 GeoTIFF per date,
    ``YYYY-MM-DD.tif``, bands described by name (``SCL`` last), NaN as nodata.

    Args:
        da: the stack (:func:`load_stack`); Dask-backed arrays are computed one date at a time.
        path: the output.
        progress: called after each date with ``(dates written, dates)``.

    Returns:
        The written path.
    """
    from cropglobe._fs import atomic_dir

    p = Path(path)
    n = int(da.sizes["time"])
    if p.suffix.lower() == ".zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise ParameterError(
                f"{p}: writing a Zarr store needs the package 'zarr' (pip install zarr); or "
                "write GeoTIFFs: give a folder name without .zarr"
            ) from None
        ds = da.to_dataset(name="reflectance")
        ds["reflectance"].attrs = dict(da.attrs)
        c, h, w = int(da.sizes["band"]), int(da.sizes["y"]), int(da.sizes["x"])
        with atomic_dir(p) as tmp, _quiet_deprecations():
            ds.to_zarr(tmp, mode="w", compute=False, zarr_format=2, consolidated=True)
            # each date is computed and written in strips of whole chunk rows, as the GeoTIFFs
            # are: memory stays bounded whatever the extent (a whole date of a large box does
            # not fit in memory)
            step = _zarr_row_chunk(tmp, h)
            rows = max(step, _GEOTIFF_STRIP_BYTES // max(1, c * w * 4) // step * step)
            # a region write takes only variables along its dimensions (not x, band, crs)
            other = [v for v in ds.coords if not {"time", "y"} & set(ds[v].dims)]
            for i in range(n):
                for r0 in range(0, h, rows):
                    r1 = min(h, r0 + rows)
                    part = ds.isel(time=slice(i, i + 1), y=slice(r0, r1)).drop_vars(other)
                    part.compute().to_zarr(
                        tmp, region={"time": slice(i, i + 1), "y": slice(r0, r1)}, zarr_format=2
                    )
                if progress is not None:
                    progress(i + 1, n)
        return p
    import rasterio
    from rasterio.windows import Window

    from cropglobe.io.raster import _xarray_georef

    crs, transform = _xarray_georef(da, None, None, str(p))
    names = [str(b) for b in da["band"].values]
    c, h, w = len(names), int(da.sizes["y"]), int(da.sizes["x"])
    # each date is computed and written in strips of whole 256-row tiles, so memory stays
    # bounded whatever the extent (a whole date of a large box does not fit in memory)
    rows = max(256, _GEOTIFF_STRIP_BYTES // max(1, c * w * 4) // 256 * 256)
    with atomic_dir(p) as tmp, _quiet_deprecations():
        for i in range(n):
            day = str(np.datetime64(da["time"].values[i], "D"))
            profile = {
                "driver": "GTiff", "height": h, "width": w, "count": c, "dtype": "float32",
                "crs": crs, "transform": transform, "nodata": np.nan, "compress": "deflate",
                "tiled": True, "blockxsize": 256, "blockysize": 256,
            }  # fmt: skip
            if h < 256 or w < 256:
                profile.update(tiled=False)
                profile.pop("blockxsize")
                profile.pop("blockysize")
            date = da.isel(time=i)
            with rasterio.open(tmp / f"{day}.tif", "w", **profile) as dst:
                for r0 in range(0, h, rows):
                    r1 = min(h, r0 + rows)
                    arr = np.asarray(date.isel(y=slice(r0, r1)).values, dtype=np.float32)
                    dst.write(arr, window=Window(0, r0, w, r1 - r0))
                for k, name in enumerate(names):
                    dst.set_band_description(k + 1, name)
            if progress is not None:
                progress(i + 1, n)
    return p


#: bytes of one date computed at once when writing a stack (:func:`write_stack`)
_GEOTIFF_STRIP_BYTES = 64 << 20


def _zarr_row_chunk(store: Path, height: int) -> int:
    """Rows of one chunk of the ``reflectance`` array of a Zarr store just laid out (y is its
    third axis: time, band, y, x); the whole height when it is not chunked along y."""
    import zarr

    try:
        chunks = zarr.open_array(str(store / "reflectance"), mode="r").chunks
    except Exception:  # any layout surprise: one strip per date, as before
        return height
    return max(1, int(chunks[2])) if len(chunks) == 4 else height


# ---------------------------------------------------------------------------- points
_LON = ("lon", "longitude", "x", "Lon", "Longitude", "LON")
_LAT = ("lat", "latitude", "y", "Lat", "Latitude", "LAT")


def read_points(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A table of labelled points (CSV or Parquet): lon/lat in degrees, an id, a label.

    Columns: ``lon``/``lat`` (or ``longitude``/``latitude``, ``x``/``y``), an id
    (``sample_id``, ``id``, ``fid`` …; default: the row number), optionally a label (``label``,
    ``crop``, ``class`` …); the other columns travel as sample metadata.

    Returns:
        DataFrame with ``sample_id`` (str), ``lon``, ``lat``, ``label`` (when there is one) and
        the other columns.

    Raises:
        MissingFileError, DataFormatError: no file, no coordinates, repeated ids, coordinates
            outside -180…180 / -90…90.
    """
    from cropglobe.io import tables
    from cropglobe.io.gee import GEE_ID_COLUMNS, GEE_LABEL_COLUMNS

    p = tables._require_file(path, "a points table (.csv or .parquet: lon, lat, id, label)")
    df, _ = tables._read_table(p)
    df.columns = [str(c) for c in df.columns]
    tables._require_rows(p, df, "one row per point")
    xc = next((c for c in _LON if c in df.columns), None)
    yc = next((c for c in _LAT if c in df.columns), None)
    if xc is None or yc is None:
        raise DataFormatError(
            f"{p}: no coordinate columns; expected lon and lat (or longitude/latitude) in "
            f"degrees, found {list(df.columns)[:20]}"
        )
    lon = pd.to_numeric(df[xc], errors="coerce").to_numpy(dtype=np.float64)
    lat = pd.to_numeric(df[yc], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{p}: row {i + 2} has no valid lon/lat ({df[xc].iloc[i]}, {df[yc].iloc[i]}); "
            "expected degrees within -180…180 and -90…90"
        )
    idc = next((c for c in GEE_ID_COLUMNS if c in df.columns), None)
    ids = df[idc].astype(str) if idc else pd.Series(np.arange(len(df)).astype(str))
    if ids.duplicated().any():
        raise DataFormatError(
            f"{p}: point id {ids[ids.duplicated()].iloc[0]!r} repeats in column {idc!r}; "
            "expected one row per point"
        )
    out = df.drop(columns=[c for c in (xc, yc, idc) if c]).copy()
    lc = next((c for c in GEE_LABEL_COLUMNS if c in out.columns), None)
    if lc is not None and lc != "label":
        out = out.rename(columns={lc: "label"})
    out.insert(0, "sample_id", ids.to_numpy())
    out.insert(1, "lon", lon)
    out.insert(2, "lat", lat)
    return out.reset_index(drop=True)


def extract_points(
    items: Sequence[pystac.Item],
    points: pd.DataFrame,
    *,
    bands: Sequence[str],
    assets: Mapping[str, str] | None = None,
    harmonize: bool = True,
    classes: Sequence[str] | None = None,
    label_table: Any = None,
    progress: ProgressFn | None = None,
) -> Observations:
    """Sample each item's band assets (and SCL) at ``points``: the raw observation table.

    Each asset is read in its own CRS and pixel grid (so 20 m bands and SCL are not
    resampled): the points are reprojected to it and the pixel holding each is read (rasterio,
    one small window per point; nothing else of the file is fetched beyond the COG blocks
    touched). Points outside an item's bbox are skipped for it.

    Args:
        items: STAC items (:func:`search_items`).
        points: DataFrame with ``sample_id``, ``lon``, ``lat`` (degrees), optional ``label``
            and other columns (sample metadata) — :func:`read_points` gives one.
        bands: cropglobe band names.
        assets: band -> asset key overrides.
        harmonize: digital numbers -> reflectance × 10,000 (see the module docstring).
        classes: label vocabulary (default ``CROPGLOBE_CLASSES``).
        label_table: how labels map to ``classes`` (see :func:`cropglobe.classes.map_labels`).
        progress: called after each item with ``(items done, items)``.

    Returns:
        Observations: table ``sample, date, <bands float32>, [SCL]`` (one row per point and
        day with any band value; a point seen by several items of one day — overlapping tiles
        — gets the per-band median of the valid ones, as :func:`cropglobe.io.gee.
        combine_same_day`), dates the UTC day; samples ``sample_id, lon, lat, <columns>,
        label``; attrs ``source="stac"``, ``items``.

    Raises:
        BandError: unknown band, or an item lacks a band's asset.
        DataFormatError: ``points`` lacks ``sample_id``/``lon``/``lat``; an asset cannot be
            read (names it).
    """
    import rasterio
    from rasterio.warp import transform as warp

    from cropglobe.classes import CROPGLOBE_CLASSES
    from cropglobe.io import tables
    from cropglobe.io.gee import combine_same_day

    bands = check_bands(bands, assets)
    pts, lon, lat = sampling_points(points, items)
    vocab = tuple(classes) if classes is not None else CROPGLOBE_CLASSES
    frames = []
    n_items = len(items)
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "3"}
    with rasterio.Env(**env):
        for k, it in enumerate(items):
            inside = np.ones(len(pts), dtype=bool)
            if it.bbox is not None:
                w, s, e, n = it.bbox[0], it.bbox[1], it.bbox[-2], it.bbox[-1]
                inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
            idx = np.flatnonzero(inside)
            if idx.size:
                cols: dict[str, Any] = {"sample": idx}
                for band in (*bands, "SCL"):
                    key = asset_key(it, band, assets)
                    if key is None:
                        if band == "SCL":
                            continue
                        raise BandError(
                            f"item {it.id} has no asset for band {band}; its assets are "
                            f"{sorted(it.assets)}; name it with --asset {band}=KEY"
                        )
                    href = it.assets[key].get_absolute_href() or it.assets[key].href
                    vals = _sample(href, lon[idx], lat[idx], warp, rasterio)
                    if band == "SCL":
                        cols["SCL"] = np.nan_to_num(vals, nan=0.0).astype(np.int64)
                    else:
                        a, b = _linear(it, key, harmonize)
                        cols[band] = (vals * a + b).astype(np.float32)
                frame = pd.DataFrame(cols)
                frame["date"] = pd.Timestamp(_item_time(it).astimezone(dt.UTC).date())
                frame = frame[frame[list(bands)].notna().any(axis=1)]
                frames.append(frame)
            if progress is not None:
                progress(k + 1, n_items)
    cols_out = ["sample", "date", *bands]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols_out)
    if "SCL" not in table.columns and any(asset_key(i, "SCL", assets) for i in items):
        table["SCL"] = np.zeros(len(table), dtype=np.int64)
    table = combine_same_day("STAC items", table, ["sample", "date"], list(bands))
    table["date"] = pd.to_datetime(table["date"]).astype("datetime64[ns]")
    table["sample"] = table["sample"].astype(np.int64)
    for name in bands:
        table[name] = table[name].astype(np.float32)
    table = table.sort_values(["sample", "date"], kind="stable").reset_index(drop=True)
    seen = np.zeros(len(pts), dtype=bool)
    seen[table["sample"].to_numpy()] = True
    if not seen.all():
        log.warning(
            "%d of %d points have no observation in the %d items (outside their footprints or "
            "no data there), e.g. %s",
            int((~seen).sum()),
            len(pts),
            n_items,
            pts["sample_id"].astype(str)[~seen].iloc[0],
        )
    samples = pts.copy()
    samples["sample_id"] = samples["sample_id"].astype(str)
    if "label" in samples.columns:
        labels = tables._encode_labels(Path("points"), "label", samples["label"], label_table,
                                       vocab)  # fmt: skip
    else:
        labels = np.full(len(samples), -1, dtype=np.int64)
    samples["label"] = labels
    from cropglobe.series import Observations

    attrs = {"source": "stac", "format": "stac",
             "items": [it.id for it in items][:1000]}  # fmt: skip
    return Observations(table[[*cols_out, *(["SCL"] if "SCL" in table else [])]], bands,
                        samples, vocab, attrs)  # fmt: skip


def _sample(href: str, lon: Any, lat: Any, warp: Any, rasterio: Any) -> Any:
    """Values of band 1 of ``href`` at the points (float64, NaN outside or at nodata)."""
    try:
        with rasterio.open(href) as src:
            xs, ys = warp("EPSG:4326", src.crs, list(map(float, lon)), list(map(float, lat)))
            inv = ~src.transform
            a, b, c, d, e, f = inv.a, inv.b, inv.c, inv.d, inv.e, inv.f
            xa, ya = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
            px, py = a * xa + b * ya + c, d * xa + e * ya + f
            rows, cols = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
            out = np.full(len(xs), np.nan)
            inside = np.flatnonzero((rows >= 0) & (rows < src.height) & (cols >= 0)
                                    & (cols < src.width))  # fmt: skip
            # one read per internal block (COG tile, strip) holding points: what GDAL fetches
            bh, bw = src.block_shapes[0]
            n_bc = -(-src.width // bw)
            block = (rows[inside] // bh) * n_bc + cols[inside] // bw
            order = np.argsort(block, kind="stable")
            idx, block = inside[order], block[order]
            starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
            for k, start in enumerate(starts):
                sel = idx[start : starts[k + 1] if k + 1 < len(starts) else len(idx)]
                r0, c0 = int(block[start] // n_bc) * bh, int(block[start] % n_bc) * bw
                win = ((r0, min(r0 + bh, src.height)), (c0, min(c0 + bw, src.width)))
                vals = src.read(1, window=win)[rows[sel] - r0, cols[sel] - c0].astype(np.float64)
                if src.nodata is not None:
                    vals[vals == src.nodata] = np.nan
                out[sel] = vals
            return out
    except rasterio.errors.RasterioIOError as exc:
        raise DataFormatError(
            f"cannot read the asset {href} ({str(exc).splitlines()[0][:200]}); check the "
            "network, or that the URLs are signed (Planetary Computer: pip install "
            "planetary-computer)"
        ) from None
