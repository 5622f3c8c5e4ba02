"""A small Transformer encoder over time steps (the "transformer-based" comparison)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cropglobe.errors import ParameterError
from cropglobe.models._base import as_series

__all__ = ["Transformer", "sinusoidal_encoding"]


def sinusoidal_encoding(days: torch.Tensor, d_model: int) -> torch.Tensor:
    """Sinusoidal encoding (T, d_model) of positions given in days of season (T,).

    Channel pairs (2i, 2i + 1) hold sin and cos of ``day / 10000^(2i / d_model)``, the encoding
    of Vaswani et al. with the day of season as the position (so irregular grids are encoded
    by their real dates).
    """
    half = d_model // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) * 2 / d_model)
    angle = days.to(torch.float64)[:, None] * freq[None, :]
    pe = torch.zeros(days.shape[0], d_model, dtype=torch.float64)
    pe[:, 0 : 2 * half : 2] = torch.sin(angle)
    pe[:, 1 : 2 * half : 2] = torch.cos(angle)
    return pe.to(torch.float32)


class Transformer(nn.Module):
    """Transformer encoder classifier over the T time steps of a pixel series.

    Each step's C band values are normalised (BatchNorm1d over bands, learned statistics, so raw
    reflectances are fine), embedded linearly to ``d_model``, given a positional encoding of the
    step's day of season, passed through ``n_layers`` pre-norm encoder layers, mean-pooled over
    time and classified by Linear(``d_model``, K).

    Args:
        n_classes: number of classes K.
        n_bands: number of bands C.
        n_steps: number of time steps T.
        days: (T,) day of season of each step (bin centres); None means 5-day bins from day 3.
        d_model: embedding size (64 … 128).
        n_heads: attention heads.
        n_layers: encoder layers.
        dim_ff: feed-forward size.
        dropout: dropout probability.
        positional: ``"sinusoidal"`` (by day of season) or ``"learned"`` (one vector per step).

    Input: float32 (B, C, T) or (B, 1, C, T), gap-filled. Output: logits (B, K).
    """

    name = "transformer"

    def __init__(
        self,
        n_classes: int,
        n_bands: int = 10,
        n_steps: int = 43,
        days: Sequence[float] | None = None,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 3,
        dim_ff: int = 128,
        dropout: float = 0.1,
        positional: str = "sinusoidal",
    ) -> None:
        super().__init__()
        if positional not in ("sinusoidal", "learned"):
            raise ParameterError(
                f"positional must be 'sinusoidal' or 'learned', got {positional!r}"
            )
        if d_model % n_heads:
            raise ParameterError(
                f"d_model ({d_model}) must be a multiple of n_heads ({n_heads}); change one"
            )
        day_list = (
            [5.0 * i + 3.0 for i in range(int(n_steps))]
            if days is None
            else [float(d) for d in days]
        )
        if len(day_list) != int(n_steps):
            raise ParameterError(
                f"days must give one day of season per step ({n_steps}), got {len(day_list)}"
            )
        self.config: dict[str, Any] = {
            "n_classes": int(n_classes),
            "n_bands": int(n_bands),
            "n_steps": int(n_steps),
            "days": day_list,
            "d_model": int(d_model),
            "n_heads": int(n_heads),
            "n_layers": int(n_layers),
            "dim_ff": int(dim_ff),
            "dropout": float(dropout),
            "positional": positional,
        }
        self.input_norm = nn.BatchNorm1d(int(n_bands))
        self.embed = nn.Linear(int(n_bands), d_model)
        pe = sinusoidal_encoding(torch.tensor(day_list), d_model)
        if positional == "learned":
            self.position = nn.Parameter(pe.clone())
        else:
            self.register_buffer("position", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_ff,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, int(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K)."""
        x = as_series(x, self.config["n_bands"], self.config["n_steps"])
        h = self.embed(self.input_norm(x).transpose(1, 2)) + self.position  # (B, T, d)
        h = self.encoder(self.dropout(h))
        return self.head(h.mean(dim=1))
