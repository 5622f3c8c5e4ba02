"""Shared CLI plumbing: logging set-up, progress bars, and turning errors into one clear line."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import click

from cropglobe.errors import BandError, CropGlobeError

if TYPE_CHECKING:
    from cropglobe.io.emit import Spectra
    from cropglobe.series import Observations, SeriesSet

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "FiniteRange",
    "PathArg",
    "data_option",
    "fail",
    "handle_errors",
    "progress",
    "progress_callback",
    "quiet_option",
    "setup_logging",
    "training_options",
    "where_option",
]

_QUIET = False


class PathArg(click.Path):
    """``click.Path`` that refuses an empty value (which would silently mean the current
    folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a file or folder path", param, ctx)
        return super().convert(value, param, ctx)


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` (which passes every range comparison)
    and infinities."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number; give one in {self._describe_range()}")
        return rv


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Configure the root logger for the CLI (the library itself never does)."""
    global _QUIET
    _QUIET = quiet
    # -q: no progress, but warnings still (they say when a result deserves caution)
    level = (
        logging.WARNING
        if quiet
        else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_SaidOnce())
    logging.captureWarnings(True)


class _SaidOnce(logging.Filter):
    """Drops a warning that repeats one already printed word for word (e.g. the same data
    warning from each seed of an experiment): the repeat tells the user nothing new."""

    def __init__(self) -> None:
        super().__init__()
        self._said: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        if key in self._said:
            return False
        self._said.add(key)
        return True


def is_quiet() -> bool:
    """True when ``-q`` was given."""
    return _QUIET


def fail(message: str, code: int = 2) -> None:
    """Print ``Error: message`` on stderr and exit with ``code`` (no traceback)."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


#: what continues an interrupted run of a command (commands not named here start afresh)
_RESUME = {
    "train": "rerun the same command with --resume to continue from the last finished epoch",
    "map": "rerun the same command with --resume to continue the same map",
}


#: options of train and transfer that only neural models read (parameter name -> flag)
NEURAL_ONLY_OPTIONS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "precision": "--precision",
    "protocol": "--protocol",
    "resume": "--resume",
}


def options_given(names: Iterable[str]) -> list[str]:
    """The flags (``NEURAL_ONLY_OPTIONS``' spelling) of the options among ``names`` that the
    current command's user gave, as opposed to their defaults."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return [
        NEURAL_ONLY_OPTIONS.get(name, "--" + name.replace("_", "-"))
        for name in names
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]


def _resume_hint() -> str:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return ""
    if ctx.info_name == "train":  # only a network checkpoints its epochs
        out = ctx.params.get("output")
        ckpt = Path(out).parent / f".{Path(out).name}.checkpoint" if out else None
        if ckpt is None or not ckpt.is_dir():
            return ""
    hint = _RESUME.get(ctx.info_name or "")
    return f"; {hint}" if hint else ""


def handle_errors(func: F) -> F:
    """Decorator: CropGlobeError and common input errors become one line and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CropGlobeError as exc:
            fail(_with_cli_hint(str(exc)), exc.exit_code)
        except FileNotFoundError as exc:
            fail(f"{exc.filename or exc}: no such file or folder; check the path")
        except PermissionError as exc:
            fail(f"{exc.filename or exc}: permission denied; choose a writable location")
        except BrokenPipeError:
            raise  # the reader went away (`| head`): not the user's error
        except IsADirectoryError as exc:
            fail(f"{exc.filename or exc}: is a folder; give a file path")
        except (NotADirectoryError, FileExistsError) as exc:
            fail(
                f"{exc.filename or exc}: a file stands where a folder is needed "
                f"({(exc.strerror or '').lower()}); choose another path"
            )
        except OSError as exc:
            if exc.errno == 28:
                fail(f"no space left on device while writing {exc.filename or ''}; free some space")
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}; check the path and that it is writable")
        except EOFError as exc:  # a reader hit the end of an empty or cut-short file
            fail(f"a file ended unexpectedly ({exc or 'no data'}); it is empty or truncated")
        except KeyboardInterrupt:
            fail("interrupted" + _resume_hint(), 130)
        return None

    return wrapper  # type: ignore[return-value]


#: the readers' settings, which the command line passes as --read-option NAME=VALUE
_READ_SETTINGS = re.compile(
    r"\b(format|label_column|sample_column|date_column|id_column|doy_columns|value_name|"
    r"cloud_threshold|attributes|season_end|label_table)="
)


def _with_cli_hint(message: str) -> str:
    """A reader's message that names its settings (``date_column=``), with how to give them
    on the command line."""
    if _READ_SETTINGS.search(message) and "--read-option" not in message:
        return f"{message} (on the command line: --read-option NAME=VALUE)"
    return message


def _rich_bar() -> Any:
    """The rich progress bar of the commands: on stderr, shown only on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=not console.is_terminal,
        disable=not console.is_terminal,
    )


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr (silent under ``-q`` or when not a terminal)."""
    if _QUIET:
        yield from items
        return
    with _rich_bar() as bar:
        yield from bar.track(items, description=description, total=total)


@contextlib.contextmanager
def progress_callback(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar driven by ``(done, total)`` calls, for library functions that report
    their own progress (None under ``-q``: nothing to call)."""
    if _QUIET:
        yield None
        return
    with _rich_bar() as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def quiet_option(func: F) -> F:
    """``-q/--quiet`` and ``-v/--verbose`` options that configure logging."""

    @click.option("-q", "--quiet", is_flag=True, help="No progress bars, warnings only.")
    @click.option("-v", "--verbose", count=True, help="Log progress (-v) or debug details (-vv).")
    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, verbose: int, **kwargs: Any) -> Any:
        setup_logging(verbose, quiet)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def data_option(func: F) -> F:
    """``--data PATH``: any dataset cropglobe reads."""
    opt = click.option(
        "--data",
        "data_path",
        required=True,
        type=PathArg(path_type=Path),
        help="Dataset: CropGlobe folder, SeriesSet .npz, long/wide table, CAWa folder.",
    )
    return opt(func)


def read_option(func: F) -> F:
    """``--read-option NAME=VALUE``: settings of the reader of ``--data`` (repeatable)."""
    opt = click.option(
        "--read-option",
        "read_option",
        multiple=True,
        metavar="NAME=VALUE",
        help="A setting of the data's reader, for your own tables: e.g. sample_column=parcel_id, "
        "date_column=obs_date, label_column=crop, format=tidy (values read as JSON, else "
        "text); repeatable.",
    )
    return opt(func)


def option_value(text: str) -> Any:
    """A ``NAME=VALUE`` option's value: JSON (numbers, true/false, lists, objects), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_options_arg(items: Sequence[str]) -> dict[str, Any]:
    """``("sample_column=parcel_id",)`` -> ``{"sample_column": "parcel_id"}``."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{item!r} is not NAME=VALUE; e.g. sample_column=parcel_id",
                param_hint="'--read-option'",
            )
        out[name.strip()] = option_value(text)
    return out


def where_option(func: F) -> F:
    """``--where COLUMN=VALUE``: keep only the samples whose metadata hold these values
    (repeatable)."""
    opt = click.option(
        "--where",
        "where",
        multiple=True,
        metavar="COLUMN=VALUE",
        help="Keep only the samples whose metadata COLUMN holds VALUE (COLUMN=A,B: any of "
        "them), e.g. region=Fergana or year=2015,2016; repeatable: the samples kept match "
        "every --where.",
    )
    return opt(func)


def where_arg(items: Sequence[str]) -> dict[str, list[str]]:
    """``("region=Fergana", "year=2015,2016")`` -> ``{"region": ["Fergana"], "year": ["2015",
    "2016"]}`` (values stay text: they are compared as their column's type when applied)."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        column = name.strip()
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not sep or not column or not values:
            raise click.BadParameter(
                f"{item!r} is not COLUMN=VALUE; e.g. region=Fergana, or region=Fergana,Khorezm "
                "for either",
                param_hint="'--where'",
            )
        if column in out:
            raise click.BadParameter(
                f"column {column!r} is given twice (a sample holds one value, so both could not "
                f"match); give its values once, comma-separated: {column}="
                f"{','.join([*out[column], *values])}",
                param_hint="'--where'",
            )
        out[column] = values
    return out


@overload
def apply_where(data: SeriesSet, items: Sequence[str]) -> tuple[SeriesSet, str | None]: ...
@overload
def apply_where(data: Observations, items: Sequence[str]) -> tuple[Observations, str | None]: ...
@overload
def apply_where(
    data: SeriesSet | Observations, items: Sequence[str]
) -> tuple[SeriesSet | Observations, str | None]: ...
def apply_where(
    data: SeriesSet | Observations, items: Sequence[str]
) -> tuple[SeriesSet | Observations, str | None]:
    """``data`` (a SeriesSet or Observations) with only the samples ``--where`` keeps, and a
    line saying what it kept (None when no --where was given)."""
    conditions = where_arg(items)
    if not conditions:
        return data, None
    from cropglobe.series import where_text

    kept = data.where(**conditions)
    line = f"where {where_text(conditions)}: {kept.n_samples:,} of {data.n_samples:,} samples kept"
    return kept, line


def spectra_where(spectra: Spectra, items: Sequence[str]) -> tuple[Spectra, str | None]:
    """:func:`apply_where` for EMIT spectra: the rows ``--where`` keeps and a line saying so."""
    conditions = where_arg(items)
    if not conditions:
        return spectra, None
    from cropglobe.series import where_mask, where_text

    keep = where_mask(spectra.meta, conditions)
    line = f"where {where_text(conditions)}: {int(keep.sum()):,} of {len(spectra):,} spectra kept"
    return spectra.subset(keep), line


def bands_option(func: F) -> F:
    """``--bands B02,B03,…``: train on these bands of the data only."""
    opt = click.option(
        "--bands",
        default=None,
        metavar="B02,B03,…",
        help="Use only these bands of the data (e.g. leave out a band without values).",
    )
    return opt(func)


def bands_arg(bands: str | None) -> list[str] | None:
    """``--bands B04,B08`` as a list (None when not given)."""
    if bands is None:
        return None
    names = [b.strip() for b in bands.split(",") if b.strip()]
    if not names:
        raise click.BadParameter(
            f"{bands!r} names no band; give band names, e.g. B04,B08", param_hint="'--bands'"
        )
    return names


def select_bands_arg(ss: Any, bands: str | None) -> Any:
    """``ss`` with only the ``--bands`` given (all when None); a band the data lack is named
    with the data's bands and the nearest spelling."""
    names = bands_arg(bands)
    if names is None:
        return ss
    from cropglobe.bands import band_index, not_a_band

    for name in names:
        try:
            band_index(ss.bands, name)
        except BandError:
            raise not_a_band(name, ss.bands, option="--bands") from None
    return ss.select_bands(names)


def _no_gpu_nodes() -> bool:
    """True on Linux when no GPU device node exists (``/dev/nvidia0`` …, ROCm's ``/dev/kfd``):
    torch cannot see a GPU then, so ``auto`` is the CPU without importing torch (a second)."""
    import glob

    return (
        sys.platform.startswith("linux")
        and not glob.glob("/dev/nvidia[0-9]*")
        and not os.path.exists("/dev/kfd")
    )


def _parse_device(ctx: click.Context, param: click.Parameter, text: str) -> str:
    # only "auto" is resolved here; other names are checked where a neural model needs them
    # (a classical-only run with --device cuda works on a machine without a GPU)
    if text.strip().lower() != "auto":
        return text.strip()
    if _no_gpu_nodes():
        return "cpu"
    from cropglobe.models.inputs import resolve_device

    return str(resolve_device("auto"))


def device_option() -> Callable[[F], F]:
    """``--device``: a torch device; ``auto`` (the default) is the GPU when there is one.

    The value is resolved as the command line is read, so that configs, model cards and
    printed settings name the device that was used (``cuda``), never ``auto``.
    """
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        callback=_parse_device,
        help="torch device of neural models: cpu, cuda, cuda:N, or auto (the CUDA GPU when "
        "torch sees one, else the CPU).",
    )


def training_options(func: F) -> F:
    """``--protocol --epochs --batch-size --lr --window --device`` shared by train and transfer."""
    options = [
        click.option(
            "--protocol",
            type=click.Choice(["clean", "paper"]),
            default="clean",
            show_default=True,
            help="Validation protocol (paper reproduces the release's quirks).",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(1, 10_000),
            default=50,
            show_default=True,
            help="Training epochs of neural models.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1, 65_536),
            default=256,
            show_default=True,
            help="Mini-batch size of neural models.",
        ),
        click.option(
            "--lr",
            type=FiniteRange(0, 1, min_open=True),
            default=1e-4,
            show_default=True,
            help="Adam learning rate of neural models.",
        ),
        click.option(
            "--window",
            default="121-334",
            show_default=True,
            callback=_parse_window,
            help="Day-of-season window START-END the models see, may-nov (121-334) or all.",
        ),
        device_option(),
        click.option(
            "--precision",
            type=click.Choice(["auto", "fp32", "bf16"]),
            default="auto",
            show_default=True,
            help="auto: bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX), "
            "float32 elsewhere.",
        ),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _parse_window(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, int] | None:
    name = text.strip().lower()
    if name in ("all", "full"):
        return None
    if name in ("may-nov", "paper"):  # the paper's window, as `features --window` names it
        return 121, 334
    try:
        a, b = (int(x) for x in text.split("-"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a window; expected START-END days of season, e.g. 121-334, or a "
            "name: may-nov (= paper, 121-334), all (= full)"
        ) from None
    if a >= b:
        raise click.BadParameter(
            f"{text!r} ends before it starts; expected START-END with START below END, e.g. "
            "121-334, or 'all'"
        )
    if a < 1 or b > 366:
        raise click.BadParameter(
            f"{text!r} lies outside the season; expected days of season within 1-366, e.g. "
            "121-334, or 'all'"
        )
    return a, b
