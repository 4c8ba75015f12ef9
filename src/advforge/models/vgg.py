"""Small VGG-13 / VGG-16 (Simonyan & Zisserman, 2015) for 28x28 and 32x32 images, the AE4DNN
transfer targets.

The convolutional trunk is VGG's (3x3 convolutions, five max-pooling stages); the changes for
small images are (1) pooling in ceil mode, so 28x28 input also ends at 1x1 (28 -> 14 -> 7 ->
4 -> 2 -> 1) like 32x32 does (32 -> ... -> 1), and (2) a head of FC(512)-FC(512) instead of
FC(4096)-FC(4096), the usual CIFAR adaptation. ``width`` scales every layer for cheaper runs.
"""

from __future__ import annotations

import torch
from torch import nn

from advforge.errors import InputError
from advforge.models.zoo import (
    MODELS,
    check_feature_size,
    check_fraction,
    pool_out,
)

# Filters per 3x3 convolution; "M" is a 2x2 max pooling (VGG paper Table 1, configs B and D).
VGG13 = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """VGG trunk from ``cfg`` plus a 3-layer classifier head.

    Args:
        cfg: filters per convolution and ``"M"`` for pooling.
        num_classes: number of logits.
        in_channels: input channels.
        input_size: input side, used to size the first FC layer.
        batch_norm: BatchNorm after every convolution (VGG-BN).
        dropout: dropout probability in the head.
        width: multiplier for every filter and hidden-unit count.
    """

    def __init__(
        self, cfg: list, num_classes: int, in_channels: int, input_size: int,
        batch_norm: bool, dropout: float, width: float,
    ) -> None:
        super().__init__()
        check_fraction("dropout", dropout)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise InputError(f"width must be a number > 0, got {width!r}")
        layers: list[nn.Module] = []
        channels, size = in_channels, input_size
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                size = pool_out(size, 2, ceil=True)
                continue
            out = max(1, round(v * width))
            layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
        check_feature_size("vgg", size, input_size)
        hidden = max(1, round(512 * width))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(channels * size * size, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        return self.classifier(torch.flatten(self.features(x), 1))


@MODELS.register("vgg13")
def vgg13(
    num_classes: int, in_channels: int, input_size: int, batch_norm: bool = True,
    dropout: float = 0.5, width: float = 1.0,
) -> VGG:
    """VGG-13 (config B: 10 convolutions) for small images; BatchNorm on by default, since a
    plain VGG trained from scratch needs careful initialisation to converge."""
    return VGG(VGG13, num_classes, in_channels, input_size, batch_norm, dropout, width)


@MODELS.register("vgg16")
def vgg16(
    num_classes: int, in_channels: int, input_size: int, batch_norm: bool = True,
    dropout: float = 0.5, width: float = 1.0,
) -> VGG:
    """VGG-16 (config D: 13 convolutions) for small images; options as :func:`vgg13`."""
    return VGG(VGG16, num_classes, in_channels, input_size, batch_norm, dropout, width)
