"""A small AlexNet (Krizhevsky et al., 2012) for 28x28 and 32x32 images, an AE4DNN transfer
target."""

from __future__ import annotations

import torch
from torch import nn

from advforge.models.zoo import MODELS, check_feature_size, check_fraction, pool_out


class AlexNetSmall(nn.Module):
    """AlexNet's shape at small scale: five convolutions (64, 192, 384, 256, 256 filters, as in
    the one-GPU AlexNet), three max-pooling stages and a three-layer head.

    For 224x224 input AlexNet opens with an 11x11/4 convolution; for 28-32 pixel images that
    would discard most of the image, so the first two convolutions are 5x5/1 (padded) and every
    pooling is 2x2 in ceil mode: 32 -> 16 -> 8 -> 4 and 28 -> 14 -> 7 -> 4. The head is
    FC(1024)-FC(1024) (a quarter of 4096) with dropout, as in the original. There is no local
    response normalisation; ``batch_norm=True`` adds BatchNorm after every convolution.
    """

    def __init__(
        self, num_classes: int, in_channels: int, input_size: int, batch_norm: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        check_fraction("dropout", dropout)
        spec = [(64, 5, True), (192, 5, True), (384, 3, False), (256, 3, False), (256, 3, True)]
        layers: list[nn.Module] = []
        channels, size = in_channels, input_size
        for out, kernel, pool in spec:
            conv = nn.Conv2d(channels, out, kernel, padding=kernel // 2, bias=not batch_norm)
            layers.append(conv)
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                size = pool_out(size, 2, ceil=True)
            channels = out
        check_feature_size("alexnet", size, input_size)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(channels * size * size, 1024), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(1024, 1024), nn.ReLU(inplace=True),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        x = self.features(x)  # (B, 256, 4, 4) for 28x28 and 32x32 input
        return self.classifier(torch.flatten(x, 1))


@MODELS.register("alexnet")
def alexnet(
    num_classes: int, in_channels: int, input_size: int, batch_norm: bool = False,
    dropout: float = 0.5,
) -> AlexNetSmall:
    """Small AlexNet (see :class:`AlexNetSmall`); BatchNorm off by default, as in the original."""
    return AlexNetSmall(num_classes, in_channels, input_size, batch_norm, dropout)
