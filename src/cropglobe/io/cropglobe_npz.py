"""Read and write the CropGlobe release layout (one ``.npz`` per country and feature kind).

The release (REFERENCE.md, "CropGlobe dataset") is a root folder holding::

    for_CropNet/median_S2_{CC}_month1-12_day5.npz   fea (N, C, 73)  5-day medians, whole year
    Median/median_S2_{CC}_month5-11_day5.npz        fea (N, C, 43)  bins 24…66 (days 121–334)
    …/harmonic_{CC}_month5-11.npz                   harmonic coefficients (flat features)
    …/presto_embedding_S2_{CC}.npz                  Presto embeddings
    …/presto_embedding_S2_{CC}_MayNov.npz           Presto embeddings, May–November input
    …/alphaearth_embedding_{CC}.npz                 AlphaEarth embeddings

Every file holds ``fea`` (float) and ``lbl`` (int class ids 0…6 of
:data:`cropglobe.classes.CROPGLOBE_CLASSES`). ``C`` is 10 Sentinel-2 bands in
:data:`cropglobe.bands.S2_BANDS` order, or 12 when Sentinel-1 ``VV``, ``VH`` follow. Values are
surface reflectance × 10,000 (Sentinel-1 in the release's own units), used without normalisation.

Files written by :func:`write_cropglobe` may carry two extra keys that the paper's own scripts
ignore: ``meta_json`` (uint8 bytes of a JSON object: ``attrs`` such as ``{"synthetic": true}``,
``bands``, ``grid``) and ``meta_parquet`` (uint8 bytes of a Parquet table with one row per sample).
The readers use them when present. Nothing is ever unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cropglobe._fs import atomic_path, json_default
from cropglobe.bands import S2_BANDS, SENTINEL1_BANDS, canonical_bands
from cropglobe.classes import CROPGLOBE_CLASSES, normalise_country
from cropglobe.errors import BandError, DataFormatError, GridError, LabelError, MissingFileError
from cropglobe.series import SeriesSet, TimeGrid

__all__ = [
    "CROPGLOBE_FEATURE_FAMILIES",
    "CROPGLOBE_FEATURE_FILES",
    "CROPGLOBE_KINDS",
    "list_cropglobe",
    "read_cropglobe",
    "read_cropglobe_features",
    "read_cropglobe_file",
    "write_cropglobe",
]

log = logging.getLogger(__name__)

#: The paper's May–November window in days of season (bins 24…66 of the 5-day grid).
MAYNOV_DAYS: tuple[int, int] = (121, 334)


@dataclass(frozen=True)
class _Kind:
    name: str  # canonical kind name
    folder: str  # release sub-folder ("" when unknown: search recursively)
    pattern: str  # file name with "{cc}" placeholder
    n_steps: int | None  # 73 / 43 for series kinds, None for flat features


_SERIES_KINDS: dict[str, _Kind] = {
    "for_CropNet": _Kind("for_CropNet", "for_CropNet", "median_S2_{cc}_month1-12_day5.npz", 73),
    "Median": _Kind("Median", "Median", "median_S2_{cc}_month5-11_day5.npz", 43),
}
_KIND_ALIASES: dict[str, str] = {
    "for_cropnet": "for_CropNet",
    "cropnet": "for_CropNet",
    "year": "for_CropNet",
    "median": "Median",
    "median_maynov": "Median",
    "maynov": "Median",
}
_FEATURE_KINDS: dict[str, _Kind] = {
    "harmonic": _Kind("harmonic", "", "harmonic_{cc}_month5-11.npz", None),
    "presto": _Kind("presto", "", "presto_embedding_S2_{cc}.npz", None),
    "presto_maynov": _Kind("presto_maynov", "", "presto_embedding_S2_{cc}_MayNov.npz", None),
    "alphaearth": _Kind("alphaearth", "", "alphaearth_embedding_{cc}.npz", None),
}

#: Series kinds accepted by :func:`read_cropglobe` / :func:`write_cropglobe`.
CROPGLOBE_KINDS: tuple[str, ...] = ("for_CropNet", "median_maynov")
#: Flat feature families accepted by :func:`read_cropglobe_features`.
CROPGLOBE_FEATURE_FAMILIES: tuple[str, ...] = tuple(_FEATURE_KINDS)
#: Flat feature family -> the release's file name, with ``{country}`` for the country code.
CROPGLOBE_FEATURE_FILES: dict[str, str] = {
    name: kind.pattern.replace("{cc}", "{country}") for name, kind in _FEATURE_KINDS.items()
}


def _regex(kind: _Kind) -> re.Pattern[str]:
    return re.compile("^" + re.escape(kind.pattern).replace(r"\{cc\}", "([A-Za-z0-9]+)") + "$")


def _series_kind(kind: str) -> _Kind:
    name = kind if kind in _SERIES_KINDS else _KIND_ALIASES.get(str(kind).lower())
    if name is None:
        raise DataFormatError(
            f"kind={kind!r} is not a CropGlobe series kind; expected 'for_CropNet' (73 five-day "
            "steps, whole year) or 'median_maynov' (43 steps, days 121–334, folder 'Median')"
        )
    return _SERIES_KINDS[name]


def _cropglobe_grid(n_steps: int, anchor: str = "01-01") -> TimeGrid:
    full = TimeGrid.cropglobe(anchor)
    return full if n_steps == 73 else full.window(*MAYNOV_DAYS)


# ---------------------------------------------------------------------------- discovery
#: (root, kind, country, file) of two files at one depth already named in the log
_TIES_SAID: set[tuple[str, str, str, str]] = set()


def _scan(root: Path, kind: _Kind) -> dict[str, Path]:
    """Country code -> file of ``kind`` under ``root`` (the release folder first, then anywhere)."""
    rx = _regex(kind)
    found: dict[str, Path] = {}
    candidates: Iterable[Path] = sorted(root.rglob(kind.pattern.replace("{cc}", "*")))
    for p in candidates:
        m = rx.match(p.name)
        if not m or not p.is_file():
            continue
        cc = m.group(1)
        prev = found.get(cc)
        # Prefer the file inside the documented sub-folder, then the shallowest one.
        rank = (p.parent.name == kind.folder, -len(p.parts))
        if prev is None or rank > (prev.parent.name == kind.folder, -len(prev.parts)):
            found[cc] = p
        elif (
            rank == (prev.parent.name == kind.folder, -len(prev.parts))
            and (said := (str(root), kind.name, cc, str(p))) not in _TIES_SAID
        ):
            _TIES_SAID.add(said)  # once per process, however often the folder is scanned
            log.warning(
                "%s: two '%s' files for %s at one depth (%s, %s); reading %s, the first by "
                "name: move or delete the other to choose",
                root,
                kind.name,
                cc,
                prev.relative_to(root),
                p.relative_to(root),
                prev.relative_to(root),
            )
    return found


def _check_root(root: str | os.PathLike[str]) -> Path:
    p = Path(root)
    if not p.is_dir():
        raise MissingFileError(
            f"{p}: no such folder; expected the root of the CropGlobe release (holding "
            "'for_CropNet/' and 'Median/'); download it or pass the right path"
        )
    return p


def expected_file(root: str | os.PathLike[str], kind: str, country: str) -> Path:
    """Where the release layout keeps ``country``'s file of series ``kind`` under ``root``."""
    k = _series_kind(kind)
    return Path(root) / k.folder / k.pattern.replace("{cc}", country)


def _select(
    root: Path, kind: _Kind, countries: Sequence[str] | str | None
) -> list[tuple[str, Path]]:
    found = _scan(root, kind)
    where = root / kind.folder if kind.folder else root
    if not found:
        raise MissingFileError(
            f"{where}: no '{kind.pattern.replace('{cc}', '*')}' file found under {root}; "
            "expected the CropGlobe release layout; check the root folder"
        )
    if countries is None:
        return _one_file_per_country(sorted(found.items()))
    if isinstance(countries, str):
        countries = [countries]
    out: list[tuple[str, Path]] = []
    missing: list[str] = []
    for c in countries:
        code = str(c).strip()
        key = next(
            (k for k in (code, code.upper(), normalise_country(code)) if k in found),
            None,
        )
        if key is None:
            missing.append(code)
        else:
            out.append((key, found[key]))
    if missing:
        if not kind.folder:  # a kind found anywhere: beside the other countries' files
            where = next(iter(found.values())).parent
        expected = where / kind.pattern.replace("{cc}", missing[0])
        raise MissingFileError(
            f"{expected}: no such file; countries {missing} are absent for kind "
            f"'{kind.name}'; present: {sorted(found)}"
        )
    return _one_file_per_country(out)


def _one_file_per_country(files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """``files`` unless two of them hold one country (``FR`` and ``FRA``): read together, that
    country's samples would be counted twice."""
    seen: dict[str, Path] = {}
    for code, path in files:
        key = normalise_country(code)
        if key in seen:
            raise DataFormatError(
                f"{seen[key]} and {path} both hold country {key}; keep one of them (or move one "
                "out of the folder) so that its samples are not read twice"
            )
        seen[key] = path
    return files


# ---------------------------------------------------------------------------- npz access
def _npz_keys(path: Path) -> list[str]:
    """Array names in an ``.npz`` without loading anything."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable .npz archive ({exc})") from None


def _npz_shape(path: Path, key: str) -> tuple[tuple[int, ...], str] | None:
    """Shape and dtype of array ``key`` in an ``.npz`` from its header (no data read)."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            return tuple(int(s) for s in shape), str(dtype)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None


def _load_npz(path: Path) -> dict[str, NDArray[Any]]:
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file; expected a CropGlobe .npz (fea, lbl)")
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle
        raise DataFormatError(
            f"{path}: not a readable .npz archive (not a zip file: empty, truncated or another "
            "format); expected a CropGlobe .npz with arrays 'fea' and 'lbl'"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if not {"fea", "lbl"} <= keys:
                raise DataFormatError(
                    f"{path}: expected arrays 'fea' and 'lbl' (CropGlobe release layout), "
                    f"found {sorted(keys)}"
                )
            return {k: z[k] for k in keys}
    except ValueError as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(
            f"{path}: cannot read without unpickling ({exc}); expected plain numeric arrays "
            "'fea' and 'lbl'; cropglobe never loads pickled objects"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:  # EOFError: an empty file
        raise DataFormatError(
            f"{path}: not a readable .npz archive ({exc or 'empty file'})"
        ) from None


def _extras(
    path: Path, z: Mapping[str, NDArray[Any]], n: int
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The optional ``meta_json`` blob (as a dict) and ``meta_parquet`` table of a file."""
    blob: dict[str, Any] = {}
    if "meta_json" in z:
        try:
            parsed = json.loads(bytes(np.asarray(z["meta_json"], dtype=np.uint8)).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataFormatError(
                f"{path}: 'meta_json' is not UTF-8 JSON ({exc}); rewrite the file with "
                "cropglobe.io.write_cropglobe or drop the key"
            ) from None
        if not isinstance(parsed, dict):
            raise DataFormatError(
                f"{path}: 'meta_json' must hold a JSON object, got {parsed!r:.60}"
            )
        blob = parsed
    meta = None
    if "meta_parquet" in z:
        try:
            meta = pd.read_parquet(io.BytesIO(bytes(np.asarray(z["meta_parquet"], np.uint8))))
        except (ValueError, OSError) as exc:
            raise DataFormatError(
                f"{path}: 'meta_parquet' is not a Parquet table ({exc})"
            ) from None
        if len(meta) != n:
            raise DataFormatError(
                f"{path}: 'meta_parquet' has {len(meta)} rows for {n} samples; expected one "
                "row per sample; rewrite the file"
            )
    return blob, meta


def _labels(path: Path, lbl: NDArray[Any], n: int) -> NDArray[np.int64]:
    lbl = np.asarray(lbl)
    if lbl.ndim != 1 or lbl.shape[0] != n:
        raise DataFormatError(
            f"{path}: 'lbl' has shape {lbl.shape} but 'fea' holds {n} samples; expected ({n},)"
        )
    if not np.issubdtype(lbl.dtype, np.integer):
        if (
            np.issubdtype(lbl.dtype, np.floating)
            and np.all(np.isfinite(lbl))
            and np.all(lbl == np.round(lbl))
        ):
            lbl = lbl.astype(np.int64)
        else:
            raise LabelError(
                f"{path}: 'lbl' must hold integer class ids 0…6, got dtype {lbl.dtype}"
            )
    lbl = lbl.astype(np.int64, copy=False)
    bad = (lbl < 0) | (lbl >= len(CROPGLOBE_CLASSES))
    if bad.any():
        raise LabelError(
            f"{path}: {int(bad.sum())} labels fall outside the CropGlobe class ids 0…6 "
            f"({', '.join(f'{i} {c}' for i, c in enumerate(CROPGLOBE_CLASSES))}), e.g. "
            f"{sorted(set(lbl[bad].tolist()))[:5]}; fix or relabel the file"
        )
    return lbl


def _resolve_bands(
    path: Path, n_bands: int, bands: Sequence[str] | None, blob: Mapping[str, Any]
) -> tuple[str, ...]:
    if bands is not None:
        names = canonical_bands(tuple(str(b) for b in bands))
        if len(names) != n_bands:
            raise BandError(
                f"{path}: 'fea' holds {n_bands} bands but bands= names {len(names)} "
                f"({list(names)}); give one name per band"
            )
        return names
    if isinstance(blob.get("bands"), list) and len(blob["bands"]) == n_bands:
        return canonical_bands(tuple(str(b) for b in blob["bands"]))
    if n_bands == len(S2_BANDS):
        return S2_BANDS
    if n_bands == len(S2_BANDS) + len(SENTINEL1_BANDS):
        return S2_BANDS + SENTINEL1_BANDS
    raise BandError(
        f"{path}: 'fea' holds {n_bands} bands; the release has 10 (Sentinel-2 {list(S2_BANDS)}) "
        "or 12 (+ VV, VH); pass bands=[...] naming each band in order (on the command line: "
        "--read-option 'bands=[\"B02\", …]')"
    )


#: the hint for a 'fea' whose time steps sit where its bands belong
_SWAPPED = (
    "the axes look swapped: 'fea' must be (samples, bands, time steps), e.g. np.swapaxes(fea, 1, 2)"
)


def read_cropglobe_file(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    bands: Sequence[str] | None = None,
    country: str | None = None,
) -> SeriesSet:
    """Read one CropGlobe series file (``for_CropNet`` or ``Median``) into a :class:`SeriesSet`.

    Args:
        path: a ``median_S2_{CC}_month…_day5.npz`` file (any name is accepted).
        kind: ``"for_CropNet"`` (73 steps) or ``"median_maynov"`` (43 steps); None infers it
            from the number of steps in ``fea``.
        bands: band names in ``fea`` order; None uses the file's own ``meta_json`` or the
            release convention (10 Sentinel-2 bands, 12 with VV, VH).
        country: country code for ``meta``; None takes it from the file name (``{CC}``).

    Returns:
        SeriesSet with values float32 (N, C, T), labels int64 into ``CROPGLOBE_CLASSES``, meta
        ``sample_id`` (``"FRA_000123"``, the row number in the file) and ``country``.

    Raises:
        MissingFileError: the file does not exist.
        DataFormatError: keys, shapes or dtypes differ from the release layout.
        BandError: the band count is not 10/12 and ``bands`` is not given.
        LabelError: labels outside 0…6.
    """
    p = Path(path)
    z = _load_npz(p)
    fea = np.asarray(z["fea"])
    if fea.ndim != 3:
        raise DataFormatError(
            f"{p}: 'fea' has shape {fea.shape} ({fea.ndim}-D); expected (samples, bands, steps) "
            "with 73 or 43 steps; flat feature files are read with read_cropglobe_features"
        )
    if not (np.issubdtype(fea.dtype, np.floating) or np.issubdtype(fea.dtype, np.integer)):
        raise DataFormatError(f"{p}: 'fea' must be numeric, got dtype {fea.dtype}")
    n, c, t = fea.shape
    if kind is None:
        if t not in (73, 43):
            swapped = f"; {_SWAPPED}" if c in (73, 43) else ""
            raise DataFormatError(
                f"{p}: 'fea' has {t} time steps; expected 73 (for_CropNet, whole year) or 43 "
                f"(Median, days 121–334){swapped}"
            )
        k = _SERIES_KINDS["for_CropNet" if t == 73 else "Median"]
    else:
        k = _series_kind(kind)
        if t != k.n_steps:
            fits = {73: "for_CropNet", 43: "median_maynov"}.get(t)
            fix = (
                f"pass kind={fits!r} (on the command line: --read-option kind={fits})"
                if fits
                else _SWAPPED
                if fea.shape[1] == k.n_steps
                else "check the folder"
            )
            raise DataFormatError(
                f"{p}: 'fea' has {t} time steps but kind '{k.name}' needs {k.n_steps} "
                f"(shape {fea.shape}); {fix}"
            )
    labels = _labels(p, z["lbl"], n)
    blob, meta = _extras(p, z, n)
    names = _resolve_bands(p, c, bands, blob)
    anchor = "01-01"
    if isinstance(blob.get("grid"), dict):
        anchor = str(blob["grid"].get("anchor", "01-01"))
    grid = _cropglobe_grid(t, anchor)
    if isinstance(blob.get("grid"), dict):
        stored = TimeGrid.from_dict(blob["grid"])
        if not stored.same_axis(grid):
            raise GridError(
                f"{p}: meta_json grid '{stored}' does not match the {t}-step CropGlobe grid"
            )
    cc = country
    if cc is None:
        m = _regex(k).match(p.name)
        cc = m.group(1) if m else p.stem
    if meta is None:
        meta = pd.DataFrame({"sample_id": _ids(cc, n), "country": cc})
    else:
        if "sample_id" not in meta:
            meta.insert(0, "sample_id", _ids(cc, n))
        if "country" not in meta:
            meta["country"] = cc
    if isinstance(blob.get("attrs"), dict):
        attrs: dict[str, Any] = dict(blob["attrs"])
    else:  # a foreign blob: treat it as the attrs themselves
        attrs = {k_: v for k_, v in blob.items() if k_ not in ("bands", "grid", "format")}
    attrs.update({"source": "cropglobe", "path": str(p), "kind": k.name, "countries": [cc]})
    if not attrs.get("synthetic"):
        attrs.pop("synthetic", None)
    values = fea.astype(np.float32, copy=False)
    ss = SeriesSet(values, names, grid, labels, CROPGLOBE_CLASSES, meta, attrs)
    return ss.validate(str(p), allow_empty=True)


def _ids(cc: str, n: int) -> NDArray[np.object_]:
    """``"{cc}_000000"`` … for n samples (vectorised)."""
    nums = np.char.zfill(np.arange(n).astype(str), 6)
    return np.char.add(f"{cc}_", nums).astype(object)


def read_cropglobe(
    root: str | os.PathLike[str],
    countries: Sequence[str] | str | None = None,
    kind: str = "for_CropNet",
    deduplicate: bool = False,
    bands: Sequence[str] | None = None,
) -> SeriesSet:
    """Read CropGlobe release series for some or all countries into one :class:`SeriesSet`.

    Args:
        root: the release root folder (holding ``for_CropNet/`` and ``Median/``); files are also
            found deeper in the tree.
        countries: country codes (``"FRA"``, ``"BE"`` …, ISO2 is normalised to ISO3); None reads
            every country present, in alphabetical order.
        kind: ``"for_CropNet"`` — fea (N, C, 73) on ``TimeGrid.cropglobe()``; or
            ``"median_maynov"`` (alias ``"Median"``) — fea (N, C, 43), bins 24…66 =
            ``TimeGrid.cropglobe().window(121, 334)``.
        deduplicate: drop repeated samples within each country, as the paper does before use:
            of rows with identical values the first labelled one is kept, whatever its label.
        bands: band names in file order; None = the release convention (10 Sentinel-2 bands in
            ``S2_BANDS`` order, 12 with VV, VH).

    Returns:
        SeriesSet, countries concatenated: values float32 (N, C, T) in reflectance × 10,000,
        labels int64 into ``CROPGLOBE_CLASSES``, meta ``sample_id`` (``"FRA_000123"``, row in the
        country's file) and ``country``; attrs ``source="cropglobe"``, ``kind``, ``countries``,
        ``files`` (country -> the file read, relative to root), and ``synthetic=True`` when a
        file says so.

    Raises:
        MissingFileError: root or a requested country's file is absent (the message lists the
            countries present).
        DataFormatError, BandError, LabelError: a file does not follow the layout.
    """
    r = _check_root(root)
    k = _series_kind(kind)
    sets: list[SeriesSet] = []
    files: dict[str, str] = {}
    for cc, path in _select(r, k, countries):
        ss = read_cropglobe_file(path, kind=k.name, bands=bands, country=cc)
        files[cc] = path.relative_to(r).as_posix()
        log.info("%s: %s, %d samples", cc, path, ss.n_samples)
        if deduplicate:
            before = ss.n_samples
            ss = ss.deduplicate(labels=False)
            log.info("%s: dropped %d duplicate samples of %d", path, before - ss.n_samples, before)
        sets.append(ss)
    attrs: dict[str, Any] = {}
    for s in sets:
        for key, val in s.attrs.items():
            attrs.setdefault(key, val)
    synthetic = any(bool(s.attrs.get("synthetic")) for s in sets)
    groups: dict[tuple[str, ...], list[str]] = {}
    for cc, s in zip(files, sets, strict=True):
        groups.setdefault(s.bands, []).append(cc)
    if len(groups) > 1:  # SeriesSet.concat would advise select_bands, which is Python's
        held = "; ".join(f"{', '.join(ccs)}: {list(b)}" for b, ccs in groups.items())
        first = next(iter(groups.values()))
        raise BandError(
            f"{r}: the countries' files hold different bands ({held}); read countries with the "
            "same bands together: countries=[...] (on the command line: --read-option "
            f"'countries={json.dumps(first)}')"
        )
    # a country re-anchored (a southern season from 07-01) joins the others season-aligned
    out = SeriesSet.concat(sets, mixed_seasons=True) if len(sets) > 1 else sets[0]
    attrs.update(
        source="cropglobe",
        root=str(r),
        kind=k.name,
        countries=[c for s in sets for c in s.attrs["countries"]],
        files=files,  # found anywhere under root: which file each country came from
        deduplicated=bool(deduplicate),
    )
    attrs.pop("path", None)
    if synthetic:
        attrs["synthetic"] = True
    else:
        attrs.pop("synthetic", None)
    out.attrs = attrs
    return out


def read_cropglobe_features(
    root: str | os.PathLike[str],
    family: str = "harmonic",
    countries: Sequence[str] | str | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64], pd.DataFrame]:
    """Read precomputed flat features / embeddings of the release.

    Args:
        root: the release root folder; files are searched recursively.
        family: ``"harmonic"`` (``harmonic_{CC}_month5-11.npz``), ``"presto"``
            (``presto_embedding_S2_{CC}.npz``), ``"presto_maynov"``
            (``presto_embedding_S2_{CC}_MayNov.npz``) or ``"alphaearth"``
            (``alphaearth_embedding_{CC}.npz``).
        countries: country codes; None reads all present.

    Returns:
        ``(X, y, meta)``: X float32 (N, F) (files with more than 2 dimensions are flattened per
        sample), y int64 (N,) CropGlobe class ids, meta with ``sample_id``, ``country``.

    Raises:
        MissingFileError, DataFormatError, LabelError: as :func:`read_cropglobe`.
    """
    r = _check_root(root)
    if family not in _FEATURE_KINDS:
        raise DataFormatError(
            f"family={family!r} is unknown; expected one of {list(_FEATURE_KINDS)}"
        )
    k = _FEATURE_KINDS[family]
    xs: list[NDArray[np.float32]] = []
    ys: list[NDArray[np.int64]] = []
    metas: list[pd.DataFrame] = []
    width: int | None = None
    for cc, path in _select(r, k, countries):
        x, y, meta = read_cropglobe_feature_file(path, cc)
        if width is not None and x.shape[1] != width:
            raise DataFormatError(
                f"{path}: {x.shape[1]} features per sample, other countries have {width}; "
                "all files of one family must have the same width"
            )
        width = x.shape[1]
        xs.append(x)
        ys.append(y)
        metas.append(meta)
    return (
        np.concatenate(xs).astype(np.float32, copy=False),
        np.concatenate(ys),
        pd.concat(metas, ignore_index=True),
    )


def read_cropglobe_feature_file(
    path: str | os.PathLike[str], country: str
) -> tuple[NDArray[np.float32], NDArray[np.int64], pd.DataFrame]:
    """One file of precomputed features (:func:`read_cropglobe_features` reads a family's
    files with it): ``(X, y, meta)`` of ``country``'s samples, X float32 (N, F) (a ``fea``
    of more dimensions flattened per sample).

    Raises:
        MissingFileError, DataFormatError, LabelError: as :func:`read_cropglobe_features`.
    """
    p = Path(path)
    z = _load_npz(p)
    fea = np.asarray(z["fea"])
    if fea.ndim < 2 or not np.issubdtype(fea.dtype, np.number):
        raise DataFormatError(
            f"{p}: 'fea' has shape {fea.shape} and dtype {fea.dtype}; expected numeric "
            "(samples, features)"
        )
    n = fea.shape[0]
    x = fea.reshape(n, -1).astype(np.float32, copy=False)
    y = _labels(p, z["lbl"], n)
    _, meta = _extras(p, z, n)
    if meta is None:
        meta = pd.DataFrame({"sample_id": _ids(country, n), "country": country})
    return x, y, meta


def cropglobe_feature_files(
    root: str | os.PathLike[str],
    family: str,
    countries: Sequence[str] | str | None = None,
) -> dict[str, Path]:
    """Country code -> the file :func:`read_cropglobe_features` reads for ``family``; with
    ``countries`` keyed by the codes as given (``BE`` finds ``…_BEL.npz`` and stays ``BE``, so
    that series read under one spelling find their features under the other).

    Raises:
        MissingFileError, DataFormatError: as :func:`read_cropglobe_features`.
    """
    r = _check_root(root)
    if family not in _FEATURE_KINDS:
        raise DataFormatError(
            f"family={family!r} is unknown; expected one of {list(_FEATURE_KINDS)}"
        )
    selected = _select(r, _FEATURE_KINDS[family], countries)
    if countries is None:
        return dict(selected)
    asked = [countries] if isinstance(countries, str) else list(countries)
    return {str(c).strip(): path for c, (_, path) in zip(asked, selected, strict=True)}


def cropglobe_sample_ids(path: str | os.PathLike[str], country: str) -> NDArray[np.object_]:
    """The ``sample_id`` of each row of a release file, as :func:`read_cropglobe_file` names
    them: from the file's ``meta_parquet`` when it has one, else ``{country}_000000`` …
    (the series values are not read: the row count comes from the array's header)."""
    p = Path(path)
    info = _npz_shape(p, "fea")
    z: Mapping[str, NDArray[Any]]
    try:
        if not info or not info[0]:
            raise ValueError("no 'fea' header")
        n = int(info[0][0])
        with np.load(p, allow_pickle=False) as npz:
            z = {k: npz[k] for k in ("meta_json", "meta_parquet") if k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        z = _load_npz(p)  # the whole file: the reader's errors say what is wrong
        n = int(np.asarray(z["fea"]).shape[0])
    _, meta = _extras(p, z, n)
    if meta is not None and "sample_id" in meta:
        return meta["sample_id"].to_numpy(dtype=object)
    return _ids(country, n)


def list_cropglobe(root: str | os.PathLike[str]) -> pd.DataFrame:
    """What the release folder holds: one row per file found.

    Returns:
        DataFrame with columns ``kind`` (``for_CropNet``, ``Median``, ``harmonic``, ``presto``,
        ``presto_maynov``, ``alphaearth``), ``country``, ``n_samples``, ``shape`` (of ``fea``,
        read from the array header without loading data), ``dtype`` and ``path``; sorted by kind
        and country.
    """
    r = _check_root(root)
    rows: list[dict[str, Any]] = []
    for k in (*_SERIES_KINDS.values(), *_FEATURE_KINDS.values()):
        for cc, path in sorted(_scan(r, k).items()):
            info = _npz_shape(path, "fea")
            shape, dtype = info if info else ((), "")
            rows.append(
                {
                    "kind": k.name,
                    "country": cc,
                    "n_samples": int(shape[0]) if shape else -1,
                    "shape": shape,
                    "dtype": dtype,
                    "path": str(path),
                }
            )
    cols = ["kind", "country", "n_samples", "shape", "dtype", "path"]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------- writing


def _to_cropglobe_labels(cc: str, ss: SeriesSet) -> NDArray[np.int64]:
    if ss.classes != CROPGLOBE_CLASSES:
        try:
            ss = ss.relabel(CROPGLOBE_CLASSES)
        except LabelError as exc:
            raise LabelError(
                f"sets[{cc!r}]: classes {list(ss.classes)} do not fit the CropGlobe vocabulary "
                f"{list(CROPGLOBE_CLASSES)} ({exc}); relabel the set first"
            ) from None
    if (ss.labels < 0).any():
        raise LabelError(
            f"sets[{cc!r}]: {int((ss.labels < 0).sum())} samples are unlabelled (−1); the "
            "CropGlobe layout stores class ids 0…6 only; drop or label them first"
        )
    return ss.labels


def write_cropglobe(
    root: str | os.PathLike[str],
    sets: Mapping[str, SeriesSet],
    *,
    kinds: Sequence[str] = ("for_CropNet", "Median"),
    extra: dict[str, Any] | None = None,
    write_meta: bool = True,
) -> list[Path]:
    """Write series in the CropGlobe release layout, one ``.npz`` per country and kind.

    Files are ``{root}/for_CropNet/median_S2_{CC}_month1-12_day5.npz`` (fea float32 (N, C, 73))
    and ``{root}/Median/median_S2_{CC}_month5-11_day5.npz`` (fea float32 (N, C, 43), days
    121–334), with ``lbl`` int64 CropGlobe class ids. Each write is atomic.

    Args:
        root: output root folder (created when missing).
        sets: country code (letters/digits, e.g. ``"FRA"``) -> SeriesSet on the 73-step 5-day
            grid (``TimeGrid.cropglobe(anchor)``, any anchor). Its classes must be CropGlobe
            names (another order is relabelled) and every sample labelled.
        kinds: which of ``"for_CropNet"`` and ``"Median"`` (alias ``"median_maynov"``) to write.
        extra: JSON-ready facts merged into each file's attrs (``{"synthetic": True,
            "generator": …}``).
        write_meta: also store the per-sample meta table (``meta_parquet`` key).

    Returns:
        The written paths, in the order countries × kinds.

    Raises:
        GridError: a set is not on the 73-step CropGlobe grid.
        LabelError: labels cannot be expressed in the CropGlobe vocabulary.
        DataFormatError: a bad country code or kind.
    """
    out_root = Path(root)
    ks = [_series_kind(k) for k in kinds]
    written: list[Path] = []
    for cc, ss in sets.items():
        if not re.fullmatch(r"[A-Za-z0-9]+", str(cc)):
            raise DataFormatError(
                f"sets key {cc!r} is not a usable country code; expected letters/digits like "
                "'FRA' (it becomes part of the file name)"
            )
        if not ss.grid.same_axis(TimeGrid.cropglobe(ss.grid.anchor)):
            raise GridError(
                f"sets[{cc!r}] is on grid '{ss.grid}'; the CropGlobe layout needs the 73-step "
                "5-day grid TimeGrid.cropglobe(); composite to it first"
            )
        labels = _to_cropglobe_labels(str(cc), ss)
        if ss.bands not in (S2_BANDS, S2_BANDS + SENTINEL1_BANDS):
            log.warning(
                "sets[%r]: bands %s differ from the release convention; they are recorded in "
                "meta_json for cropglobe readers",
                cc,
                list(ss.bands),
            )
        attrs = {**ss.attrs, **(extra or {})}
        meta_bytes = None
        if write_meta:
            buf = io.BytesIO()
            ss.meta.to_parquet(buf, index=False)
            meta_bytes = np.frombuffer(buf.getvalue(), dtype=np.uint8)
        for k in ks:
            sub = ss if k.n_steps == 73 else ss.select_window(*MAYNOV_DAYS)
            blob = {
                "format": "cropglobe.release",
                "version": 1,
                "kind": k.name,
                "bands": list(sub.bands),
                "grid": sub.grid.to_dict(),
                "classes": list(CROPGLOBE_CLASSES),
                "attrs": attrs,
            }
            text = json.dumps(blob, default=json_default).encode("utf-8")
            arrays: dict[str, NDArray[Any]] = {
                "fea": np.ascontiguousarray(sub.values, dtype=np.float32),
                "lbl": labels.astype(np.int64),
                "meta_json": np.frombuffer(text, dtype=np.uint8),
            }
            if meta_bytes is not None:
                arrays["meta_parquet"] = meta_bytes
            target = out_root / k.folder / k.pattern.format(cc=cc)
            with atomic_path(target) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]
            log.info("wrote %s (%d samples)", target, sub.n_samples)
            written.append(target)
    return written
