"""Wide residual network WRN-34-k (Zagoruyko & Komodakis, 2016), the CIFAR-10 target "WRN34"
of AI-GAN and the usual model of PGD adversarial training (Madry et al., 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from advforge.models.zoo import MODELS, check_fraction, check_positive_int


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3, plus the shortcut (a 1x1
    convolution of the pre-activated input when the shape changes, as in the WRN code)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.project = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        shortcut = x if self.project is None else self.project(o)
        o = self.conv1(o)
        o = self.conv2(self.dropout(F.relu(self.bn2(o))))
        return o + shortcut


class WideResNet(nn.Module):
    """WRN-d-k: conv3x3(16), three groups of (d - 4) / 6 blocks with 16k, 32k, 64k filters
    (strides 1, 2, 2), BN-ReLU, global average pooling, FC."""

    def __init__(
        self, depth: int, widen_factor: int, dropout: float, num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks: list[nn.Module] = []
        for group, stride in zip(range(1, 4), (1, 2, 2), strict=True):
            for i in range(n):
                cin = widths[group - 1] if i == 0 else widths[group]
                blocks.append(WideBlock(cin, widths[group], stride if i == 0 else 1, dropout))
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 64k)
        x = F.relu(self.bn(self.blocks(self.stem(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        return self.fc(self.forward_features(x))


@MODELS.register("wrn34")
def wrn34(
    num_classes: int, in_channels: int, input_size: int, widen_factor: int = 10,
    dropout: float = 0.0,
) -> WideResNet:
    """WRN-34-k: 5 blocks per group; ``widen_factor`` k (default 10: WRN-34-10, 46M
    parameters); ``dropout`` between the two convolutions of each block (WRN paper: 0.3)."""
    check_positive_int("widen_factor", widen_factor)
    check_fraction("dropout", dropout)
    return WideResNet(34, widen_factor, dropout, num_classes, in_channels)
