"""``cropglobe download``: Sentinel-2 L2A from a STAC API or catalog, as a raster stack (Zarr or
GeoTIFFs, for ``cropglobe map``) or, with ``--points``, a raw observation table (for
``cropglobe composite``); EMIT L2A (a collection id starting with ``EMIT``), with ``--points``,
as a spectra table (for ``cropglobe features --family hyperspectral``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from cropglobe.cli._common import PathArg, handle_errors, progress_callback, quiet_option
from cropglobe.errors import ParameterError

log = logging.getLogger("cropglobe.cli.download")

_TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz")


def _dates_arg(text: str) -> tuple[str, str]:
    start, sep, end = text.partition("/")
    if not sep or not start.strip() or not end.strip():
        raise click.BadParameter(
            f"{text!r} is not START/END; e.g. 2021-01-01/2021-12-31", param_hint="'--dates'"
        )
    return start.strip(), end.strip()


def _assets_arg(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        band, sep, key = item.partition("=")
        if not sep or not band.strip() or not key.strip():
            raise click.BadParameter(
                f"{item!r} is not BAND=KEY; e.g. B02=blue", param_hint="'--asset'"
            )
        out[band.strip()] = key.strip()
    return out


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _points_bbox(table: Any) -> tuple[float, float, float, float]:
    """The points' extent (west, south, east, north), padded by 1e-4 degrees so that points
    on the edge fall inside."""
    pad = 1e-4
    return (
        float(table["lon"].min()) - pad,
        float(table["lat"].min()) - pad,
        float(table["lon"].max()) + pad,
        float(table["lat"].max()) + pad,
    )


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


@click.command("download")
@click.option(
    "--stac",
    "source",
    required=True,
    help="STAC API URL (https://earth-search.aws.element84.com/v1, "
    "https://planetarycomputer.microsoft.com/api/stac/v1) or a local catalog.json / "
    "collection.json / ItemCollection JSON.",
)
@click.option(
    "--collection",
    default="sentinel-2-l2a",
    show_default=True,
    help="Collection id (sentinel-2-l2a at Earth Search and the Planetary Computer).",
)
@click.option(
    "--bbox",
    nargs=4,
    type=float,
    default=None,
    metavar="W S E N",
    help="Area in degrees: west south east north. Required for a stack; with --points it "
    "defaults to the points' extent.",
)
@click.option("--dates", required=True, metavar="START/END", help="e.g. 2021-01-01/2021-12-31.")
@click.option(
    "--max-cloud",
    type=click.FloatRange(0, 100),
    default=None,
    help="Keep items with eo:cloud_cover below this (%).",
)
@click.option(
    "--bands",
    default="B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12",
    show_default=True,
    help="Sentinel-2 bands (cropglobe names); SCL is added as the validity layer.",
)
@click.option(
    "--asset",
    "asset",
    multiple=True,
    metavar="BAND=KEY",
    help="The STAC asset key of a band when the built-in table does not find it (e.g. "
    "B02=blue); repeatable.",
)
@click.option(
    "--points",
    type=PathArg(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV/Parquet of labelled points (lon, lat, id, label columns): write their "
    "observations (a table for cropglobe composite) instead of a raster stack.",
)
@click.option("--crs", default=None, help="Stack CRS (e.g. EPSG:32631); default: the UTM zone.")
@click.option(
    "--resolution",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="Stack pixel size in CRS units (metres for UTM).",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="At most this many items.",
)
@click.option(
    "--harmonize/--no-harmonize",
    default=True,
    show_default=True,
    help="Remove the +1000 offset of processing baseline 04.00+ (reflectance x 10,000 as "
    "CropGlobe and Earth Engine's S2_SR_HARMONIZED).",
)
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    required=True,
    help="stack.zarr (Zarr store) or a folder (one GeoTIFF per date); with --points a "
    ".parquet or .csv table.",
)
@click.option(
    "--cache",
    type=PathArg(file_okay=False, path_type=Path),
    default=None,
    help="EMIT: folder the granule files are downloaded to and reused from on a rerun "
    "(default: emit-cache beside the output).",
)
@quiet_option
@handle_errors
def command(
    source: str,
    collection: str,
    bbox: tuple[float, float, float, float] | None,
    dates: str,
    max_cloud: float | None,
    bands: str,
    asset: tuple[str, ...],
    points: Path | None,
    crs: str | None,
    resolution: float,
    limit: int,
    harmonize: bool,
    output: Path,
    cache: Path | None,
) -> None:
    """Download Sentinel-2 L2A (or EMIT L2A spectra) found in a STAC API or catalog.

    Without --points: a raster stack over --bbox (Zarr store for -o NAME.zarr, else a folder of
    one GeoTIFF per date) that `cropglobe map --stack` reads. With --points: the points'
    observations, a table that `cropglobe composite` reads. Digital numbers become reflectance
    x 10,000 (--no-harmonize keeps them).

    EMIT (a --collection starting with EMIT, e.g. EMITL2ARFL_001 at
    https://cmr.earthdata.nasa.gov/stac/LPCLOUD): --points is required; the granules holding
    points are downloaded (Earthdata login: EARTHDATA_TOKEN or ~/.netrc) and their cloud-free
    reflectance spectra written, one row per point and granule, for `cropglobe features
    --family hyperspectral`.
    """
    from cropglobe.io.emit_stac import is_emit_collection
    from cropglobe.io.stac import check_bands, check_bbox, search_items

    start, end = _dates_arg(dates)
    if is_emit_collection(collection):
        _emit(source, collection, bbox, start, end, max_cloud, points, limit, output, cache)
        return
    if cache is not None:
        raise ParameterError(
            "--cache applies to EMIT collections (whose granules are downloaded); Sentinel-2 "
            "assets are read over the network in place: drop --cache"
        )
    assets = _assets_arg(asset)
    names = [b.strip() for b in bands.split(",") if b.strip()]
    band_list = check_bands(names, assets)
    if points is not None:
        if not output.name.lower().endswith(_TABLE_SUFFIXES):
            raise ParameterError(
                f"output {output} is no table; with --points write the observations to a "
                ".parquet or .csv file, e.g. -o observations.parquet"
            )
    elif output.name.lower().endswith(_TABLE_SUFFIXES):
        raise ParameterError(
            f"output {output} is a table, but without --points a raster stack is written; give "
            "-o stack.zarr or a folder name, or pass --points for a table"
        )
    table = None
    if points is not None:
        from cropglobe.io.stac import read_points

        table = read_points(points)
        if bbox is None:
            bbox = _points_bbox(table)
    if bbox is None:
        raise ParameterError(
            "--bbox is needed for a raster stack: WEST SOUTH EAST NORTH in degrees, e.g. "
            "--bbox 1.2 43.3 1.4 43.5 (or pass --points for point observations)"
        )
    box = check_bbox(bbox)
    if output.exists():
        log.warning("%s exists: it will be replaced once the new one is complete", output)
    items = search_items(
        source, collection=collection or None, bbox=box, start=start, end=end,
        max_cloud=max_cloud, limit=limit,
    )  # fmt: skip
    from cropglobe.io.stac import _item_time

    days = sorted({_item_time(it).date() for it in items})
    found = (
        f"{len(items)} item{'s' * (len(items) != 1)} on {len(days)} day"
        f"{'s' * (len(days) != 1)} ({days[0]} … {days[-1]})"
    )
    if table is not None:
        from cropglobe.io.stac import extract_points
        from cropglobe.io.tables import write_observations

        with progress_callback("sampling items") as update:
            obs = extract_points(
                items, table, bands=band_list, assets=assets, harmonize=harmonize,
                progress=update,
            )  # fmt: skip
        write_observations(obs, output)
        has_scl = "SCL" in obs.table
        what = (
            f"{len(obs.table):,} observations of {obs.n_samples:,} points, bands "
            f"{','.join(obs.bands)}{' + SCL' if has_scl else ''}"
        )
    else:
        from cropglobe.io.stac import load_stack, write_stack

        da = load_stack(
            items, bands=band_list, bbox=box, crs=crs, resolution=resolution, assets=assets,
            harmonize=harmonize,
        )  # fmt: skip
        with progress_callback("writing dates") as update:
            write_stack(da, output, progress=update)
        t, c, h, w = (int(v) for v in da.shape)
        spectral = [str(b) for b in da["band"].values if str(b) != "SCL"]
        what = (
            f"stack of {t} dates x {h} x {w} pixels ({da.attrs.get('crs', '')}, "
            f"resolution {resolution:g}), bands {','.join(spectral)}"
            f"{' + SCL' if len(spectral) < c else ''}"
        )
    click.echo(f"found {found}; wrote {output}: {what}; {_human(_size(output))}")


#: Sentinel-2 options that mean nothing for EMIT
_S2_ONLY = ("bands", "asset", "crs", "resolution", "harmonize")


def _emit(
    source: str,
    collection: str,
    bbox: tuple[float, float, float, float] | None,
    start: str,
    end: str,
    max_cloud: float | None,
    points: Path | None,
    limit: int,
    output: Path,
    cache: Path | None,
) -> None:
    """``download`` of an EMIT collection: the spectra of --points, as a table."""
    from click.core import ParameterSource

    from cropglobe.io.stac import check_bbox, read_points, search_items

    if points is None:
        raise ParameterError(
            f"{collection} is EMIT, a swath in instrument geometry, not a map grid: give "
            "--points (a CSV/Parquet of lon, lat, id, label) to get the spectra at them; "
            "--bbox alone (a raster stack) is not written for EMIT"
        )
    ctx = click.get_current_context()
    given = [  # as typed: --no-harmonize when that is what was given
        f"--{'no-' if ctx.params.get(name) is False else ''}{name.replace('_', '-')}"
        for name in _S2_ONLY
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    if given:
        raise ParameterError(
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to Sentinel-2, not to "
            f"EMIT ({collection}): every band of the EMIT files is written; drop "
            f"{'it' if len(given) == 1 else 'them'}"
        )
    if not output.name.lower().endswith(_TABLE_SUFFIXES):
        raise ParameterError(
            f"output {output} is no table; EMIT spectra are written to a .parquet or .csv "
            "file, e.g. -o spectra.parquet"
        )
    table = read_points(points)
    if bbox is None:
        bbox = _points_bbox(table)
    box = check_bbox(bbox)
    if output.exists():
        log.warning("%s exists: it will be replaced once the new one is complete", output)
    # --max-cloud is applied here, not sent: NASA's CMR-STAC has answered an eo:cloud_cover
    # query with no items at all (nasa/cmr-stac#239) and refuses CQL2 filters
    items = search_items(
        source, collection=collection, bbox=box, start=start, end=end, max_cloud=None,
        limit=limit,
    )  # fmt: skip
    if max_cloud is not None:
        clear = [it for it in items if (_cloud(it) or 0.0) < max_cloud]
        if len(clear) < len(items):
            log.info("%d granules at --max-cloud %g or above left out", len(items) - len(clear),
                     max_cloud)  # fmt: skip
        items = clear
        if not items:
            raise ParameterError(
                f"every granule found has eo:cloud_cover at or above --max-cloud {max_cloud:g}; "
                "raise --max-cloud or widen --dates"
            )
    from cropglobe.errors import DataFormatError
    from cropglobe.io.emit import write_spectra_table
    from cropglobe.io.emit_stac import extract_emit_points

    folder = cache if cache is not None else output.parent / "emit-cache"
    spectra = extract_emit_points(items, table, cache=folder, download_progress=progress_callback)
    a = spectra.attrs
    masked = a["masked"]
    n_masked = sum(masked.values())
    dropped = (
        f"{n_masked} masked ({', '.join(f'{k} {v}' for k, v in masked.items())})"
        if n_masked
        else "none masked"
    )
    lacking = (
        f"; {a['no_spectrum']} of {a['n_points']} points without a spectrum "
        f"({a['outside']} outside every footprint), e.g. {a['no_spectrum_ids'][0]}"
        if a["no_spectrum"]
        else ""
    )
    found = (
        f"found {len(items)} granule{'s' * (len(items) != 1)}, {len(a['granules'])} holding points"
    )
    if len(spectra) == 0:
        raise DataFormatError(
            f"{found}: no spectrum at any of the {a['n_points']} points ({dropped}, "
            f"{a['no_data']} without data, {a['outside']} outside every footprint); nothing "
            "written"
        )
    write_spectra_table(spectra, output)
    days = sorted({d.date() for d in spectra.meta["date"]})
    n_pts = spectra.meta["sample_id"].nunique()
    wl = spectra.wavelengths
    click.echo(
        f"{found}; wrote {output}: {len(spectra):,} spectra of {n_pts:,} points on "
        f"{len(days)} day{'s' * (len(days) != 1)} ({days[0]} … {days[-1]}), {spectra.n_bands} "
        f"bands {wl[0]:.0f}-{wl[-1]:.0f} nm; {dropped}{lacking}; {_human(_size(output))}"
    )


def _cloud(item: Any) -> float | None:
    """An item's ``eo:cloud_cover`` (%), None when it has none."""
    value = item.properties.get("eo:cloud_cover")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
