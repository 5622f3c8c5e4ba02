"""CropNet: a plain 2-D CNN over the (bands × time) median-composite image (Tong & Wang).

Layer by layer (REFERENCE.md "CropNet"): four blocks of
Conv2d 3×3 (padding 1, no bias) → BatchNorm2d → ReLU → Conv2d 3×3 (padding 1, no bias) →
BatchNorm2d → ReLU → Dropout2d(p); block 1 maps 1 → 128 channels with its first convolution at
stride 2 and p = 0.2, blocks 2–4 keep 128 channels at stride 1 with p = 0.3, 0.3, 0.4. Then global
average pooling and Linear(128, K). No residual connections. 1,036,295 parameters for K = 7.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cropglobe.models._base import as_image

__all__ = ["CropNet"]


def _block(c_in: int, c_out: int, stride: int, p: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Dropout2d(p),
    )


class CropNet(nn.Module):
    """The CropNet classifier.

    Fully convolutional up to the global pooling, so it accepts any number of bands C and time
    steps T; ``n_bands`` and ``n_steps`` are recorded (model card) but do not change the weights.

    Args:
        n_classes: number of output classes K.
        n_bands: number of bands C of the training data.
        n_steps: number of time steps T of the training data.
        width: channels of every block (128 in the paper).
        dropout: Dropout2d probability of the four blocks.

    Input: float32 (B, 1, C, T) or (B, C, T), gap-filled (no NaN). Output: logits (B, K).
    """

    name = "cropnet"

    def __init__(
        self,
        n_classes: int,
        n_bands: int = 10,
        n_steps: int = 43,
        width: int = 128,
        dropout: tuple[float, float, float, float] = (0.2, 0.3, 0.3, 0.4),
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "n_classes": int(n_classes),
            "n_bands": int(n_bands),
            "n_steps": int(n_steps),
            "width": int(width),
            "dropout": [float(p) for p in dropout],
        }
        p = self.config["dropout"]
        self.blocks = nn.Sequential(
            _block(1, width, 2, p[0]),
            _block(width, width, 1, p[1]),
            _block(width, width, 1, p[2]),
            _block(width, width, 1, p[3]),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, int(n_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal init (fan_out for convolutions, fan_in for the linear layer), zero
        biases, BatchNorm weight 1 and bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, width) of a (B, 1, C, T) or (B, C, T) input."""
        return torch.flatten(self.pool(self.blocks(as_image(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of a (B, 1, C, T) or (B, C, T) float input."""
        return self.head(self.features(x))
