"""Entry point of the ``cropglobe`` command: a click group whose commands load lazily.

Each command lives in its own module ``cropglobe.cli.<name>`` exposing a click command named
``command``; importing ``cropglobe --help`` stays fast because modules load only when run.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from cropglobe import __version__

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cropglobe.cli.demo", "Run the main job on a simulated CropGlobe-like world."),
    "diagnose": (
        "cropglobe.cli.diagnose",
        "Will a model transfer? Measure the shift between source and targets, without labels.",
    ),
    "info": ("cropglobe.cli.info", "Summarise what a dataset holds; optionally plot NDVI curves."),
    "simulate": ("cropglobe.cli.simulate", "Write a synthetic CropGlobe-like dataset."),
    "composite": ("cropglobe.cli.composite", "Composite irregular observations to a time grid."),
    "features": ("cropglobe.cli.features", "Compute invariant features into a Parquet table."),
    "map": ("cropglobe.cli.map", "Map a region from a raster stack with a trained model."),
    "area": (
        "cropglobe.cli.area",
        "Accuracy and area of a crop map with confidence intervals: plan, sample, estimate.",
    ),
    "train": ("cropglobe.cli.train", "Train a model into a model folder."),
    "predict": ("cropglobe.cli.predict", "Predict labels and probabilities with a model folder."),
    "export": ("cropglobe.cli.export", "Export a neural model folder to ONNX."),
    "transfer": ("cropglobe.cli.transfer", "Train in source groups, test in targets, report."),
    "download": (
        "cropglobe.cli.download",
        "Download Sentinel-2 L2A (or EMIT spectra at points) from a STAC API or catalog.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        cmd: click.Command = module.command
        return cmd

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; click's own usage errors become one line and status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # bare `cropglobe`: the help text, as click prints it
            sys.exit(2)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
            message = " ".join(exc.format_message().split()).rstrip(".")
            click.echo(f"Error: {message}{where}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("Error: interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cropglobe")
def cli() -> None:
    """cropglobe: crop-type maps from satellite time series that transfer across the globe."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="cropglobe")


if __name__ == "__main__":  # python -m cropglobe.cli.main
    main()
