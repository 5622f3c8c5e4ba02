"""Small helpers shared by the neural model files (input layout checks)."""

from __future__ import annotations

import torch

from cropglobe.errors import DataFormatError

__all__ = ["as_image", "as_series"]


def as_image(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) or (B, 1, C, T) -> (B, 1, C, T)."""
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() == 4 and x.shape[1] == 1:
        return x
    raise DataFormatError(
        f"model input must be (batch, bands, time) or (batch, 1, bands, time), got shape "
        f"{tuple(x.shape)}"
    )


def as_series(
    x: torch.Tensor, n_bands: int | None = None, n_steps: int | None = None
) -> torch.Tensor:
    """(B, C, T) or (B, 1, C, T) -> (B, C, T), checking C and T when given."""
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3:
        raise DataFormatError(
            f"model input must be (batch, bands, time) or (batch, 1, bands, time), got shape "
            f"{tuple(x.shape)}"
        )
    if (n_bands is not None and x.shape[1] != n_bands) or (
        n_steps is not None and x.shape[2] != n_steps
    ):
        raise DataFormatError(
            f"this model was built for {n_bands} bands × {n_steps} steps, got input "
            f"{tuple(x.shape[1:])}; build the model for the data's shape"
        )
    return x
