"""The MLP baseline: the flattened (bands × time) matrix through 8 hidden layers of 128 units."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cropglobe.models._base import as_series

__all__ = ["MLP"]


class MLP(nn.Module):
    """Multi-layer perceptron on the flattened series (REFERENCE.md "Baselines").

    ``depth`` hidden layers, each Linear → BatchNorm1d → GELU → Dropout(``dropout``), then
    Linear(``width``, K). Initialised as CropNet is ("trained like CropNet"; the release's MLP
    too): Kaiming-normal linear weights (fan_in), zero biases.

    Args:
        n_classes: number of classes K.
        n_bands: number of bands C.
        n_steps: number of time steps T (the input size is C · T).
        width: hidden units per layer (128).
        depth: number of hidden layers (8).
        dropout: dropout probability (0.3).

    Input: float32 (B, C, T) or (B, 1, C, T), gap-filled. Output: logits (B, K).
    """

    name = "mlp"

    def __init__(
        self,
        n_classes: int,
        n_bands: int = 10,
        n_steps: int = 43,
        width: int = 128,
        depth: int = 8,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "n_classes": int(n_classes),
            "n_bands": int(n_bands),
            "n_steps": int(n_steps),
            "width": int(width),
            "depth": int(depth),
            "dropout": float(dropout),
        }
        layers: list[nn.Module] = []
        size = int(n_bands) * int(n_steps)
        for _ in range(int(depth)):
            layers += [
                nn.Linear(size, width),
                nn.BatchNorm1d(width),
                nn.GELU(),
                nn.Dropout(dropout),
            ]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, int(n_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal linear weights (fan_in, ReLU gain), zero biases; BatchNorm 1 / 0."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K)."""
        x = as_series(x, self.config["n_bands"], self.config["n_steps"])
        return self.head(self.body(torch.flatten(x, 1)))
