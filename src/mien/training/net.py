"""The expression network: a small VGG-style CNN that runs in about a millisecond on one CPU thread."""
from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
    )


class ExpressionNet(nn.Module):
    """Grayscale face crop (N, 1, S, S), already normalised, to logits over the 8 expressions."""

    def __init__(self, width: int = 32, n_classes: int = 8, dropout: float = 0.4) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(1, w, 0.0),
            _block(w, 2 * w, 0.1),
            _block(2 * w, 4 * w, 0.1),
            _block(4 * w, 8 * w, 0.1),
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(8 * w, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
