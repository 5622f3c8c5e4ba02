"""``cropglobe features``: a dataset in, a feature table (Parquet) and its parameters (JSON) out."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import click

from cropglobe.cli._common import (
    PathArg,
    apply_where,
    handle_errors,
    is_quiet,
    quiet_option,
    read_option,
    read_options_arg,
    spectra_where,
    where_arg,
    where_option,
)
from cropglobe.errors import DataFormatError, GridError

logger = logging.getLogger(__name__)


def _window(text: str | None) -> Any:
    """``121-334`` -> (121, 334); a window name (``may-nov``, ``paper``, ``full``, …) as is."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d{1,3})\s*[-:,]\s*(\d{1,3})\s*", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    if re.fullmatch(r"[A-Za-z-]+", text):
        return text.lower()
    raise GridError(
        f"--window {text!r} is not a window; expected START-END days of season (e.g. 121-334) "
        "or a name (may-nov, paper, full or all)"
    )


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise click.BadParameter(f"{', '.join(twice)} named twice; name each band once")
    return names


def _check_bands(
    names: tuple[str, ...],
    bands: tuple[str, ...],
    indices: tuple[str, ...] | None,
    family: str,
) -> None:
    """A one-line BandError for the first --bands name the data lack (any spelling that
    :func:`~cropglobe.bands.canonical_band` knows is accepted). ``--family indices`` reads
    index series, not the data's bands: there --bands picks among the --indices."""
    from cropglobe.bands import canonical_band, nearest_band, not_a_band
    from cropglobe.errors import BandError
    from cropglobe.features.indices import SpectralIndices

    codes = [canonical_band(n) for n in names]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        spelt = ", ".join(n for n, c in zip(names, codes, strict=True) if c in twice)
        raise BandError(
            f"--bands {','.join(names)} names {', '.join(twice)} more than once ({spelt} are "
            "the same band); name each band once"
        )
    if family != "indices":
        for name in names:
            if canonical_band(name) not in bands:
                raise not_a_band(name, bands, option="--bands")
        return
    series = tuple(str(i).upper() for i in (indices or SpectralIndices().indices))
    for name in names:
        if canonical_band(name) not in series:
            near = nearest_band(name, series)
            raise BandError(
                f"--bands {name}: --family indices computes the index series "
                f"{', '.join(series)} (--indices) and --bands picks among them; "
                + (f"did you mean {near}?" if near else "give some of them, or leave --bands out")
            )


def _default_indices(bands: tuple[str, ...]) -> tuple[str, ...]:
    """The default indices of ``--family indices`` that ``bands`` can give (an NDVI-only
    dataset such as CAWa gets NDVI, not an error about EVI's blue band it was never asked
    for); a BandError naming the bands when none can be computed."""
    from cropglobe.bands import canonical_band
    from cropglobe.errors import BandError
    from cropglobe.features.indices import INDEX_BANDS, SpectralIndices

    have = {canonical_band(b) for b in bands}
    default = tuple(str(i).upper() for i in SpectralIndices().indices)
    usable = tuple(i for i in default if i in have or set(INDEX_BANDS[i]) <= have)
    if not usable:
        raise BandError(
            f"--family indices: the data's bands {list(bands)} give none of the default "
            f"indices {', '.join(default)}; name computable ones with --indices, or use "
            "--family median1d"
        )
    return usable


#: share of a composite's values interpolated across gaps from which ``features --family
#: harmonics`` says that the fit treats them as observations
FILLED_NOTE_SHARE = 0.1


@click.command("features")
@click.argument("input_path", metavar="INPUT", type=PathArg(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    required=True,
    help="Feature table to write (.parquet); parameters go beside it as .json.",
)
@click.option(
    "--family",
    type=click.Choice(["median1d", "harmonics", "indices", "hyperspectral"]),
    default="median1d",
    show_default=True,
    help="Feature family (hyperspectral: of an EMIT spectra table from cropglobe download).",
)
@click.option(
    "--window",
    default=None,
    help="Season window: START-END days (121-334), or "
    "may-nov / paper / full (= all). Default: May–Nov (121-334).",
)
@click.option("--bands", default=None, help="Comma-separated bands to use (default: all).")
@click.option(
    "--indices",
    default=None,
    help="Comma-separated spectral indices (NDVI,EVI,…); "
    "for harmonics they are fitted besides the bands.",
)
@click.option("--n-harmonics", type=int, default=None, help="Harmonic order n (default 3).")
@click.option(
    "--omega", type=float, default=None, help="Harmonic base frequency, cycles/year (default 1)."
)
@click.option(
    "--min-obs",
    type=int,
    default=None,
    help="Least valid observations per harmonic fit (default 2n+1).",
)
@click.option("--add-rmse", is_flag=True, help="Harmonics: add the fit RMSE per series.")
@click.option(
    "--fill",
    type=click.Choice(["linear", "none"]),
    default=None,
    help="Median/indices: gap filling (default linear).",
)
@click.option("--n-jobs", type=int, default=None, help="Worker threads for harmonics.")
@click.option(
    "--spectral",
    type=click.Choice(["pca", "s2", "bands"]),
    default=None,
    help="Hyperspectral output: principal components (pca, the default), simulated "
    "Sentinel-2 bands (s2, reflectance 0-1) or the good bands themselves (bands).",
)
@click.option(
    "--n-components",
    type=click.IntRange(1),
    default=None,
    help="Hyperspectral --spectral pca: components kept (default 10).",
)
@click.option(
    "--smooth",
    is_flag=True,
    help="Hyperspectral: Savitzky-Golay smoothing along wavelength (7 bands, order 2) after "
    "dropping the bad bands.",
)
@read_option
@where_option
@quiet_option
@handle_errors
def command(
    input_path: Path,
    output: Path,
    family: str,
    window: str | None,
    bands: str | None,
    indices: str | None,
    n_harmonics: int | None,
    omega: float | None,
    min_obs: int | None,
    add_rmse: bool,
    fill: str | None,
    n_jobs: int | None,
    spectral: str | None,
    n_components: int | None,
    smooth: bool,
    read_option: tuple[str, ...],
    where: tuple[str, ...],
) -> None:
    """Compute invariant features of INPUT (any dataset cropglobe reads) into a Parquet table.

    --family hyperspectral reads an EMIT spectra table (cropglobe download of an EMIT
    collection with --points): the bad bands (water vapour, the file's flags) are dropped,
    optionally smoothed (--smooth), and --spectral gives principal components, simulated
    Sentinel-2 bands or the good bands.

    The table is a transfer experiment's data as it is: cropglobe transfer --data TABLE
    --methods rf-table,lightgbm-table,mlp-table (docs/methods.md); cropglobe info TABLE
    summarises it.
    """
    from cropglobe.features.table import feature_table, make_features, write_feature_table
    from cropglobe.io import read_dataset
    from cropglobe.series import SeriesSet

    if family == "hyperspectral":
        given = {
            "--window": window, "--bands": bands, "--indices": indices,
            "--n-harmonics": n_harmonics, "--omega": omega, "--min-obs": min_obs,
            "--add-rmse": add_rmse or None, "--fill": fill, "--n-jobs": n_jobs,
            "--read-option": read_option or None,
        }  # fmt: skip
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise DataFormatError(
                f"{', '.join(extra)} do{'es' * (len(extra) == 1)} not apply to --family "
                "hyperspectral (spectra, not series); its options are --spectral, "
                "--n-components, --smooth and --where"
            )
        _hyperspectral(input_path, output, spectral or "pca", n_components, smooth, where)
        return
    if spectral is not None or n_components is not None or smooth:
        raise DataFormatError(
            "--spectral/--n-components/--smooth apply to --family hyperspectral, not "
            f"{family}; drop them or choose --family hyperspectral"
        )

    params: dict[str, Any] = {"window": _window(window), "bands": _names(bands)}
    if family == "harmonics":
        if fill is not None:
            raise DataFormatError(
                "--fill applies to median1d/indices; harmonics fit valid steps only"
            )
        params.update(
            n_harmonics=n_harmonics,
            omega=omega,
            min_obs=min_obs,
            add_rmse=add_rmse or None,
            n_jobs=n_jobs,
            indices=_names(indices),
        )
    else:
        if n_harmonics is not None or omega is not None or min_obs is not None or add_rmse:
            raise DataFormatError(
                f"--n-harmonics/--omega/--min-obs/--add-rmse apply to --family harmonics, not "
                f"{family}; drop them or choose --family harmonics"
            )
        params["fill"] = fill
        if family == "indices":
            params["indices"] = _names(indices)
        elif indices is not None:
            raise DataFormatError("--indices needs --family indices or harmonics")
    where_arg(where)  # a malformed --where fails before the data are read
    data, selected = apply_where(read_dataset(input_path, **read_options_arg(read_option)), where)
    if not isinstance(data, SeriesSet):
        raise DataFormatError(
            f"{input_path} holds raw observations, not series on a time grid; run "
            "'cropglobe composite' first and compute features of its output"
        )
    if family == "indices" and params["indices"] is None:
        params["indices"] = _default_indices(data.bands)
    if params["bands"]:
        _check_bands(
            params["bands"],
            data.bands,
            params.get("indices") if family == "indices" else None,
            family,
        )
    transformer = make_features(family, **params)
    table, meta = feature_table(data, transformer)
    if family == "harmonics":
        from cropglobe.features.harmonics import sparse_fit_note

        log = logging.getLogger("cropglobe")
        if note := sparse_fit_note(transformer.n_harmonics, len(transformer.window_idx_)):
            lower = "; try --n-harmonics 1" if transformer.n_harmonics > 1 else ""
            log.warning("%s%s (or a wider --window)", note, lower)
        filled = float(data.attrs.get("composite", {}).get("filled_fraction", 0.0) or 0.0)
        if filled >= FILLED_NOTE_SHARE:
            log.warning(
                "%.0f %% of %s's values were interpolated across gaps by 'cropglobe "
                "composite': the harmonics fit them as if observed; for a fit to the "
                "observations only, composite with --no-fill",
                100 * filled,
                input_path,
            )
    values = table[list(meta["feature_names"])]
    if len(values) and values.isna().all().all():
        raise DataFormatError(
            f"every {family} feature of {input_path} is NaN (no sample has enough valid "
            "observations for these settings); nothing was written — lower --min-obs or "
            "--n-harmonics, widen --window, or fill gaps first"
        )
    meta["input"] = str(input_path)
    if selected:
        meta["where"] = where_arg(where)
        if not is_quiet():
            click.echo(selected, err=True)
    table_path, side = write_feature_table(table, meta, output)
    click.echo(
        f"wrote {table_path} ({len(table)} samples × {len(meta['feature_names'])} {family} "
        f"features) and {side}",
        err=True,
    )


def _hyperspectral(
    input_path: Path,
    output: Path,
    spectral: str,
    n_components: int | None,
    smooth: bool,
    where: tuple[str, ...],
) -> None:
    """``features --family hyperspectral``: a spectra table in, a feature table out."""
    import numpy as np

    from cropglobe.features.table import (
        hyperspectral_pipeline,
        spectra_feature_table,
        write_feature_table,
    )
    from cropglobe.io.emit import read_spectra_table

    if spectral != "pca" and n_components is not None:
        raise DataFormatError(
            f"--n-components applies to --spectral pca, not {spectral}; drop it or choose pca"
        )
    conditions = where_arg(where)
    spectra, line = spectra_where(read_spectra_table(input_path), where)
    if line is not None and not is_quiet():
        click.echo(line, err=True)
    if len(spectra) == 0:
        raise DataFormatError(f"{input_path} holds no spectra; nothing to compute")
    pipe = hyperspectral_pipeline(spectral, n_components or 10, smooth)
    notes = []
    if spectral == "pca":
        good = pipe.steps[0][1].fit(spectra).mask_
        incomplete = np.isnan(spectra.values[:, good]).any(axis=1)
        if incomplete.all():
            raise DataFormatError(
                f"every spectrum of {input_path} misses values in some good band; principal "
                "components need complete spectra: use --spectral s2 or bands"
            )
        if incomplete.any():
            notes.append(f"{int(incomplete.sum())} spectra with missing values left out")
            spectra = spectra.subset(~incomplete)
        k = n_components or 10
        if k > min(len(spectra), int(good.sum())):
            raise DataFormatError(
                f"--n-components {k} is more than the {len(spectra)} spectra (or "
                f"{int(good.sum())} good bands) allow; give at most "
                f"{min(len(spectra), int(good.sum()))}"
            )
    table, meta = spectra_feature_table(spectra, pipe)
    meta["input"] = str(input_path)
    if conditions:
        meta["where"] = conditions
    table_path, side = write_feature_table(table, meta, output)
    click.echo(
        f"wrote {table_path} ({len(table)} spectra × {len(meta['feature_names'])} "
        f"hyperspectral {spectral} features"
        + (f"; {'; '.join(notes)}" if notes else "")
        + f") and {side}",
        err=True,
    )
