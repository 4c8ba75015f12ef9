"""ImageClassifier: puts the input normalisation inside ``forward`` (docs/contract.md).

Attacks see a model that maps images in [0, 1] to logits; keeping mean/std inside the model
avoids the commonest bug in peer libraries (attacking a model that expects normalised input).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ImageClassifier(nn.Module):
    """Wrap ``net`` so that ``forward(x) = net((x - mean) / std)`` for ``x`` in [0, 1].

    Args:
        net: the bare network, taking normalised (B, C, H, W) input and returning logits.
        mean: per-channel mean (length C, or a single value broadcast to every channel).
        std: per-channel std, same convention.
        num_classes: number of logits; attacks read it to range-check labels and targets.
        in_channels: C; attacks read it to reject images with the wrong channel count.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float] | float = 0.0,
        std: Sequence[float] | float = 1.0,
        *,
        num_classes: int,
        in_channels: int,
    ) -> None:
        super().__init__()
        self.net = net
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.numel() == 1:
            mean_t = mean_t.expand(in_channels).clone()
        if std_t.numel() == 1:
            std_t = std_t.expand(in_channels).clone()
        if mean_t.numel() != in_channels or std_t.numel() != in_channels:
            raise ValueError(f"mean/std need {in_channels} values, got {mean_t.numel()}")
        if (std_t <= 0).any():
            raise ValueError("std must be positive")
        # persistent=False: the statistics live in config.json, the state dict holds weights only.
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std_t.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) in [0, 1] -> (B, K)
        return self.net((x - self.mean) / self.std)
