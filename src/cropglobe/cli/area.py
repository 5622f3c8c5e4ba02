"""``cropglobe area plan|sample|estimate MAP``: accuracy and area of a class map with
confidence intervals, by the stratified estimator of Olofsson et al. (2014)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from cropglobe.cli._common import FiniteRange, PathArg, handle_errors, quiet_option
from cropglobe.errors import DataFormatError, ParameterError

if TYPE_CHECKING:
    from cropglobe.evaluate.area import AreaEstimate, ClassMap, SamplePlan

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------- options
def _map_argument(func: F) -> F:
    return click.argument("map_path", metavar="MAP", type=PathArg(path_type=Path))(func)


def _classes_option(func: F) -> F:
    return click.option(
        "--classes",
        default=None,
        metavar="A,B,…",
        help="Names of the map's class ids 0, 1, … in order, for a map that records none "
        "(cropglobe map's maps name theirs).",
    )(func)


def _plan_options(func: F) -> F:
    options = [
        click.option(
            "--target-se",
            type=FiniteRange(0, 0.5, min_open=True, max_open=True),
            default=0.01,
            show_default=True,
            help="Standard error of the overall accuracy to aim at (0.01: ±2 points at 95 %).",
        ),
        click.option(
            "--expected-accuracy",
            "expected_accuracy",
            multiple=True,
            metavar="U|CLASS=U",
            help="User's accuracy expected of the classes: one number for all, or CLASS=U for "
            "one class (repeatable, or comma-separated) [default: 0.8].",
        ),
        click.option(
            "--allocation",
            type=click.Choice(["compromise", "proportional", "equal"]),
            default="compromise",
            show_default=True,
            help="compromise: at least --min-per-class points in each class, the rest by "
            "mapped area (Olofsson et al. 2014's advice); proportional: by mapped area; equal.",
        ),
        click.option(
            "--min-per-class",
            type=click.IntRange(2, None),
            default=50,
            show_default=True,
            help="The least points of each class under the compromise allocation.",
        ),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [c.strip() for c in text.split(",")]
    if not all(names):
        raise click.BadParameter(
            f"{text!r} has an empty name; give the class names in id order, comma-separated, "
            "e.g. --classes wheat,maize,other",
            param_hint="'--classes'",
        )
    return names


def _pairs(items: Sequence[str], option: str, example: str) -> list[tuple[str, str]]:
    """``("a=b,c=d", "e=f")`` -> ``[("a", "b"), ("c", "d"), ("e", "f")]``."""
    out: list[tuple[str, str]] = []
    for item in items:
        for part in item.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise click.BadParameter(
                    f"{part!r} is not NAME=VALUE; e.g. {example}", param_hint=f"'{option}'"
                )
            out.append((name.strip(), value.strip()))
    return out


def _expected(items: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """``--expected-accuracy 0.8 --expected-accuracy maize=0.7`` -> one value per class."""
    default = 0.8
    per: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            name, sep, value = part.rpartition("=")
            try:
                number = float(value)
            except ValueError:
                raise click.BadParameter(
                    f"{part!r} is not a user's accuracy; give a number in (0, 1], e.g. 0.8, or "
                    "CLASS=0.7",
                    param_hint="'--expected-accuracy'",
                ) from None
            if not sep:
                default = number
                continue
            if name.strip() not in classes:
                raise click.BadParameter(
                    f"{name.strip()!r} is not a class of the map; its classes are {list(classes)}",
                    param_hint="'--expected-accuracy'",
                )
            per[name.strip()] = number
    return {c: per.get(c, default) for c in classes}


def _plan(
    cmap: ClassMap,
    pixels: Any,
    target_se: float,
    expected_accuracy: Sequence[str],
    allocation: str,
    min_per_class: int,
) -> SamplePlan:
    from cropglobe.evaluate.area import sample_size

    return sample_size(
        pixels,
        _expected(expected_accuracy, cmap.classes),
        target_se=target_se,
        min_per_class=min_per_class,
        allocation=allocation,  # type: ignore[arg-type]
        classes=cmap.classes,
    )


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned plain-text rows: the first ``left`` columns left-aligned, the others right."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _decimals(value: float) -> int:
    """Decimals to show of an area: none from 100, 2 from 1, else 3 significant digits."""
    import math

    a = abs(value)
    if a >= 100:
        return 0
    if a >= 1 or a == 0 or not math.isfinite(a):
        return 2
    return 2 - math.floor(math.log10(a))


def _area_text(value: float, decimals: int | None = None) -> str:
    d = _decimals(value) if decimals is None else decimals
    return f"{value:,.{d}f}"


def _pm(est: float, ci: float, percent: bool = False) -> str:
    """``est ± ci``, the interval to the estimate's decimals (``9.28 ± 0.00``, not ``± 0``)."""
    import math

    if not math.isfinite(est):
        return "–"
    if percent:
        return f"{100 * est:.1f} ± {100 * ci:.1f}"
    d = _decimals(est)
    return f"{_area_text(est, d)} ± {_area_text(ci, d)}"


def _check_output(path: Path | None, suffixes: Sequence[str], option: str) -> None:
    if path is None:
        return
    if path.is_dir():
        raise DataFormatError(f"{option} {path}: is a folder; give a file path")
    if path.suffix.lower() not in suffixes:
        raise DataFormatError(
            f"{option} {path}: unknown format {path.suffix or '(no suffix)'!r}; the file is "
            f"written by its suffix: {', '.join(suffixes)}"
        )


def _refuse_to_replace_labels(output: Path) -> None:
    """Refuse to draw a new sample over a table whose 'reference' column holds labels: a
    re-run with the same -o would throw away the work of labelling them."""
    if not output.is_file():
        return
    from cropglobe.io.tables import _read_table

    try:
        table, _ = _read_table(output)
    except DataFormatError:  # unreadable: no labels to keep, it is replaced
        return
    if "reference" not in table.columns:
        return
    labels = table["reference"].astype("string").str.strip()
    n = int((labels.notna() & (labels != "")).sum())
    if n:
        raise ParameterError(
            f"-o {output} holds {n:,} labelled points (its 'reference' column): a new sample "
            "would replace them; write it to another file, or delete that one first"
        )


# ---------------------------------------------------------------------------- the group
@click.group("area")
def command() -> None:
    """Accuracy and area of a class map with confidence intervals (Olofsson et al. 2014).

    \b
    1. cropglobe area plan MAP          how many reference points, and in which classes
    2. cropglobe area sample MAP -o points.csv
                                        draw them (stratified by map class); label each
                                        point's true class in a new column
    3. cropglobe area estimate MAP --reference points.csv --label-column reference
                                        user's / producer's / overall accuracy and the area
                                        of each class, with 95 % confidence intervals
    """


@command.command("plan")
@_map_argument
@_plan_options
@_classes_option
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    default=None,
    help="Also write the plan as a table (.csv) or JSON (.json).",
)
@quiet_option
@handle_errors
def plan_command(
    map_path: Path,
    target_se: float,
    expected_accuracy: tuple[str, ...],
    allocation: str,
    min_per_class: int,
    classes: str | None,
    output: Path | None,
) -> None:
    """How many reference points MAP needs, and how many in each class (eq. 13)."""
    import json

    from cropglobe._fs import atomic_path, json_default
    from cropglobe.evaluate.area import count_pixels, open_class_map

    _check_output(output, (".csv", ".json"), "-o")
    cmap = open_class_map(map_path, _split(classes))
    pixels = count_pixels(cmap)
    plan = _plan(cmap, pixels, target_se, expected_accuracy, allocation, min_per_class)
    rows = [
        [
            str(r["class"]),
            f"{int(r['mapped_pixels']):,}",
            f"{100 * r['share']:.1f} %",
            f"{r['expected_user_accuracy']:.2f}",
            f"{int(r['points']):,}",
        ]
        for r in plan.table().to_dict(orient="records")
    ]
    lines = [
        f"sample plan for {map_path} ({int(pixels.sum()):,} mapped pixels):",
        *_text_table(["class", "pixels", "share", "expected UA", "points"], rows),
        plan.summary(),
    ]
    click.echo("\n".join(lines))
    if output is not None:
        with atomic_path(output) as tmp:
            if output.suffix.lower() == ".json":
                tmp.write_text(json.dumps(plan.to_dict(), indent=2, default=json_default))
            else:
                plan.table().to_csv(tmp, index=False)
        click.echo(f"wrote {output}", err=True)


@command.command("sample")
@_map_argument
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    required=True,
    help="Points to label (.csv or .parquet): point_id, map_class, row, col, x, y (map CRS), "
    "lon, lat, and an empty 'reference' column to fill.",
)
@click.option(
    "-n",
    "--per-class",
    "per_class",
    type=click.IntRange(2, None),
    default=None,
    help="Points in each map class (equal allocation); without it, the plan of "
    "'cropglobe area plan' decides (the options below).",
)
@_plan_options
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the draw.")
@_classes_option
@quiet_option
@handle_errors
def sample_command(
    map_path: Path,
    output: Path,
    per_class: int | None,
    target_se: float,
    expected_accuracy: tuple[str, ...],
    allocation: str,
    min_per_class: int,
    seed: int,
    classes: str | None,
) -> None:
    """Draw a stratified random sample of MAP's pixels to label with their true class."""
    import numpy as np

    from cropglobe.evaluate.area import MIN_PER_CLASS, count_pixels, draw_sample, open_class_map
    from cropglobe.workflow import check_table_path, write_table

    check_table_path(output)
    _refuse_to_replace_labels(output)
    ctx = click.get_current_context()
    planned = [
        f"--{name.replace('_', '-')}"
        for name in ("target_se", "expected_accuracy", "allocation", "min_per_class")
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if per_class is not None and planned:
        raise ParameterError(
            f"-n {per_class} sets the points per class, so {', '.join(planned)} would be "
            "ignored; give -n for the same number in every class, or the plan options alone"
        )
    cmap = open_class_map(map_path, _split(classes))
    pixels = count_pixels(cmap)
    mapped = int((pixels > 0).sum())
    want: Any
    if per_class is not None:
        want = np.where(pixels > 0, per_class, 0)
        why = (
            f" (at least {MIN_PER_CLASS} are recommended, Olofsson et al. 2014)"
            if per_class < MIN_PER_CLASS
            else ""
        )
        line = (
            f"plan: {per_class:,} points in each of the {mapped} mapped classes (-n {per_class})"
            f"{why} = {int(np.minimum(want, pixels).sum()):,} points"
        )
    else:
        plan = _plan(cmap, pixels, target_se, expected_accuracy, allocation, min_per_class)
        want = plan
        line = f"plan: {plan.summary()}"
    click.echo(line, err=True)
    empty = [c for c, p in zip(cmap.classes, pixels, strict=True) if p == 0]
    if empty:
        click.echo(f"not on the map (no points): {', '.join(empty)}", err=True)
    points = draw_sample(cmap, want, seed)
    points["reference"] = ""
    write_table(points, output)
    click.echo(
        f"wrote {output} ({len(points):,} points, seed {seed}); fill its 'reference' column "
        "with each point's true class (best without looking at map_class), then run "
        f"cropglobe area estimate {map_path} --reference {output} --label-column reference",
        err=True,
    )


@command.command("estimate")
@_map_argument
@click.option(
    "--reference",
    type=PathArg(path_type=Path),
    required=True,
    help="Labelled points (.csv, .parquet, .geoparquet), e.g. the filled output of "
    "'cropglobe area sample'.",
)
@click.option(
    "--label-column",
    required=True,
    help="Column of --reference holding each point's reference (true) class.",
)
@click.option(
    "--coords",
    type=click.Choice(["auto", "xy", "lonlat"]),
    default="auto",
    show_default=True,
    help="xy: x/y in the map's CRS; lonlat: degrees (WGS 84); auto: x/y if the table has "
    "them, else lon/lat (or longitude/latitude), else GeoParquet point geometry.",
)
@click.option("--x-column", default=None, help="Column of the x (or longitude) coordinate.")
@click.option("--y-column", default=None, help="Column of the y (or latitude) coordinate.")
@click.option(
    "--xy-crs",
    default=None,
    metavar="CRS",
    help="CRS of the x/y columns when it is not the map's, e.g. EPSG:2154 (lon/lat columns "
    "are WGS 84; a GeoParquet records its own).",
)
@click.option(
    "--label-map",
    multiple=True,
    metavar="REF=CLASS",
    help="Read a reference label as a map class, e.g. corn=maize (repeatable, or comma-separated).",
)
@_classes_option
@click.option(
    "--pixel-area",
    type=FiniteRange(0, None, min_open=True),
    default=None,
    metavar="HA",
    help="Area of one pixel in hectares [default: from the map's transform; needed for a map "
    "in degrees or without CRS].",
)
@click.option(
    "--confidence",
    type=FiniteRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Level of the confidence intervals.",
)
@click.option(
    "-o",
    "--output",
    type=PathArg(path_type=Path),
    default=None,
    help="Write the results: .csv (one row per class and 'all'), .json (everything, with the "
    "error matrix) or .parquet.",
)
@click.option(
    "--plot",
    type=PathArg(path_type=Path),
    default=None,
    help="Also draw mapped vs estimated area per class with CI bars (.png).",
)
@quiet_option
@handle_errors
def estimate_command(
    map_path: Path,
    reference: Path,
    label_column: str,
    coords: str,
    x_column: str | None,
    y_column: str | None,
    xy_crs: str | None,
    label_map: tuple[str, ...],
    classes: str | None,
    pixel_area: float | None,
    confidence: float,
    output: Path | None,
    plot: Path | None,
) -> None:
    """Accuracy of MAP and the area of each class, with confidence intervals, from labelled
    reference points (the stratified estimator of Olofsson et al. 2014)."""
    from cropglobe.evaluate.area import assess_map

    _check_output(output, (".csv", ".json", ".parquet"), "-o")
    _check_output(plot, (".png",), "--plot")
    for out in (output, plot):
        if out is not None and out.resolve() in (reference.resolve(), map_path.resolve()):
            raise ParameterError(f"{out} is an input file; write the results elsewhere")
    mapping = dict(_pairs(label_map, "--label-map", "--label-map corn=maize"))
    estimate = assess_map(
        map_path,
        reference,
        label_column,
        classes=_split(classes),
        pixel_area=pixel_area,
        coords=coords,  # type: ignore[arg-type]
        x_column=x_column,
        y_column=y_column,
        label_map=mapping or None,
        confidence=confidence,
        xy_crs=xy_crs,
    )
    click.echo("\n".join(estimate_lines(estimate)))
    if output is not None:
        _write_estimate(estimate, output)
        click.echo(f"wrote {output}", err=True)
    if plot is not None:
        from cropglobe.report.area import plot_area

        plot_area(estimate, plot)
        click.echo(f"wrote {plot}", err=True)


def estimate_lines(est: AreaEstimate) -> list[str]:
    """The printed summary of an estimate: a line on the map, a table, the overall line."""
    level = f"{100 * est.confidence:g} %"
    unit = est.unit
    rows = [
        [
            c,
            f"{int(est.samples[k]):,}",
            _area_text(float(est.mapped_area[k])),
            _pm(float(est.area[k]), float(est.area_ci[k])),
            _pm(float(est.users_accuracy[k]), float(est.users_accuracy_ci[k]), percent=True),
            _pm(
                float(est.producers_accuracy[k]),
                float(est.producers_accuracy_ci[k]),
                percent=True,
            ),
        ]
        for k, c in enumerate(est.classes)
    ]
    notes = est.notes
    where = f" of {notes['map']}" if "map" in notes else ""
    lines = [
        f"accuracy and area{where}: stratified estimator by map class (Olofsson et al. 2014), "
        f"± {level} confidence interval",
        *_text_table(
            [
                "class",
                "points",
                f"mapped {unit}",
                f"estimated {unit}",
                "user's acc. %",
                "producer's acc. %",
            ],
            rows,
        ),
        f"overall accuracy {_pm(est.overall_accuracy, est.overall_accuracy_ci, True)} % from "
        f"{int(est.counts.sum()):,} points; total mapped area {_area_text(est.total_area)} "
        f"{unit}",
    ]
    if "pixel_area_ha" in notes:
        lines[-1] += f" ({notes['pixel_area_ha']:.4g} ha per pixel)"
    return lines


def _write_estimate(est: AreaEstimate, path: Path) -> None:
    import json

    from cropglobe._fs import atomic_path, json_default

    with atomic_path(path) as tmp:
        suffix = path.suffix.lower()
        if suffix == ".json":
            tmp.write_text(json.dumps(est.to_dict(), indent=2, default=json_default))
        elif suffix == ".csv":
            est.table().to_csv(tmp, index=False)
        else:
            est.table().to_parquet(tmp, index=False)
