"""``cropglobe export``: write model.onnx into a neural model folder (ONNX Runtime inference)."""

from __future__ import annotations

from pathlib import Path

import click

from cropglobe.cli._common import PathArg, handle_errors, quiet_option


@click.command("export")
@click.argument("model_dir", type=PathArg(path_type=Path))
@quiet_option
@handle_errors
def command(model_dir: Path) -> None:
    """Export the neural model in MODEL_DIR to ONNX (MODEL_DIR/model.onnx)."""
    from cropglobe.export import export_model_folder

    path = export_model_folder(model_dir)
    click.echo(f"wrote {path}")
