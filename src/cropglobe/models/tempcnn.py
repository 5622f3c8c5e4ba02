"""TempCNN (Pelletier et al. 2019): 1-D convolutions over time, then a dense layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cropglobe.models._base import as_series

__all__ = ["TempCNN"]


class TempCNN(nn.Module):
    """Three Conv1d(``filters``, kernel ``kernel``) → BatchNorm1d → ReLU → Dropout layers over
    time (bands are the input channels), flatten, Linear(→ ``hidden``) → BatchNorm1d → ReLU →
    Dropout, Linear(``hidden``, K).

    Args:
        n_classes: number of classes K.
        n_bands: number of bands C (input channels).
        n_steps: number of time steps T (sets the flattened size).
        filters: convolution channels (64).
        kernel: kernel size in steps (5, 'same' padding).
        hidden: dense units (256).
        dropout: dropout probability (0.2).

    Input: float32 (B, C, T) or (B, 1, C, T), gap-filled. Output: logits (B, K).
    """

    name = "tempcnn"

    def __init__(
        self,
        n_classes: int,
        n_bands: int = 10,
        n_steps: int = 43,
        filters: int = 64,
        kernel: int = 5,
        hidden: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "n_classes": int(n_classes),
            "n_bands": int(n_bands),
            "n_steps": int(n_steps),
            "filters": int(filters),
            "kernel": int(kernel),
            "hidden": int(hidden),
            "dropout": float(dropout),
        }
        layers: list[nn.Module] = []
        c, t_out = int(n_bands), int(n_steps)
        for _ in range(3):
            layers += [
                nn.Conv1d(c, filters, kernel, padding=kernel // 2),
                nn.BatchNorm1d(filters),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
            c = filters
            t_out = t_out + 2 * (kernel // 2) - kernel + 1  # unchanged for odd kernels
        self.conv = nn.Sequential(*layers)
        self.dense = nn.Sequential(
            nn.Linear(filters * t_out, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(hidden, int(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K)."""
        x = as_series(x, self.config["n_bands"], self.config["n_steps"])
        return self.head(self.dense(torch.flatten(self.conv(x), 1)))
