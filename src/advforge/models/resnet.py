"""Residual networks: the CIFAR ResNet-20/32 of He et al. (2016, Sec. 4.2), D2 of Wang & Yu
(003 appendix, Fig. 3b) and an ImageNet-style ResNet-18 whose stem adapts to small images.

All three share :class:`BasicBlock` (conv3x3-BN-ReLU-conv3x3-BN, add the shortcut, ReLU) and
end in global average pooling, so any input size works without a hard-coded flatten size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from advforge.models.zoo import MODELS, check_choice, check_positive_int


class PadShortcut(nn.Module):
    """He et al.'s option A: identity shortcut that subsamples by ``stride`` and zero-pads the
    extra channels, so it adds no parameters (their CIFAR-10 experiments use it)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C', H/s, W/s)
        x = x[:, :, :: self.stride, :: self.stride]
        lo = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))


def conv_bn(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, BN follows) + BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """Residual block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    ``shortcut`` is ``"A"`` (zero-pad identity) or ``"B"`` (1x1 conv + BN projection) when the
    shape changes; otherwise it is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, out_channels, 3, stride)
        self.conv2 = conv_bn(out_channels, out_channels, 3, 1)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = conv_bn(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, then stages of :class:`BasicBlock`, global average pooling and one FC layer.

    Args:
        stem: maps the input to ``stem_channels`` feature maps.
        stem_channels: channels the stem outputs.
        stages: ``(width, stride of the first block, number of blocks)`` per stage.
        shortcut: ``"A"`` or ``"B"`` (see :class:`BasicBlock`).
        num_classes: number of logits.
    """

    def __init__(
        self,
        stem: nn.Module,
        stem_channels: int,
        stages: Sequence[tuple[int, int, int]],
        shortcut: str,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.stem = stem
        blocks: list[nn.Module] = []
        channels = stem_channels
        for width, stride, count in stages:
            for i in range(count):
                blocks.append(BasicBlock(channels, width, stride if i == 0 else 1, shortcut))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():  # He et al. (2015) initialisation, as in the ResNet paper
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, D)
        x = self.blocks(self.stem(x))  # (B, D, H', W')
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        return self.fc(self.forward_features(x))


def _cifar_resnet(num_classes: int, in_channels: int, blocks: int, shortcut: str) -> ResNet:
    check_choice("shortcut", shortcut, ("A", "B"))
    stem = nn.Sequential(conv_bn(in_channels, 16), nn.ReLU())
    stages = [(16, 1, blocks), (32, 2, blocks), (64, 2, blocks)]
    return ResNet(stem, 16, stages, shortcut, num_classes)


@MODELS.register("resnet20")
def resnet20(num_classes: int, in_channels: int, input_size: int, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-20 (He et al., 2016, Sec. 4.2): depth 6n+2 with n = 3 blocks per stage.

    Stem conv3x3(16); stages of 16, 32, 64 filters (feature maps 32, 16, 8 for 32x32 input);
    global average pooling; FC. ``shortcut="A"`` (default, the paper's CIFAR choice) uses
    parameter-free zero-padding shortcuts; ``"B"`` uses 1x1 projections.
    """
    return _cifar_resnet(num_classes, in_channels, 3, shortcut)


@MODELS.register("resnet32")
def resnet32(num_classes: int, in_channels: int, input_size: int, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-32 (He et al., 2016, Sec. 4.2): as ResNet-20 with n = 5 blocks per stage."""
    return _cifar_resnet(num_classes, in_channels, 5, shortcut)


@MODELS.register("d2")
def d2(num_classes: int, in_channels: int, input_size: int, width: int = 1) -> ResNet:
    """D2 of Wang & Yu (003 appendix, Fig. 3b), their CIFAR/SVHN discriminator.

    conv2d(3,1,16) x3, residual-block(3,2,32), residual-block(3,1,32) x2,
    residual-block(3,2,64), residual-block(3,1,64) x2, avgpool(8), FC. Each stem conv is
    followed by BN + ReLU and blocks use 1x1 projection shortcuts ("the standard version of
    ResNet"). avgpool(8) is global pooling for 32x32 input; we pool globally for any size.
    ``width`` multiplies every filter count (their wide version uses 10).
    """
    check_positive_int("width", width)
    c16, c32, c64 = 16 * width, 32 * width, 64 * width
    stem = nn.Sequential(
        conv_bn(in_channels, c16), nn.ReLU(),
        conv_bn(c16, c16), nn.ReLU(),
        conv_bn(c16, c16), nn.ReLU(),
    )
    return ResNet(stem, c16, [(c32, 2, 3), (c64, 2, 3)], "B", num_classes)


@MODELS.register("resnet18")
def resnet18(num_classes: int, in_channels: int, input_size: int, stem: str = "auto") -> ResNet:
    """ResNet-18 (He et al., 2016, Table 1): 4 stages of 2 blocks with 64, 128, 256, 512
    filters and projection (option B) shortcuts.

    ``stem="imagenet"``: conv7x7/2 + BN + ReLU + maxpool3x3/2 (for 224-ish images).
    ``stem="small"``: conv3x3/1 + BN + ReLU and no max pooling, the usual adaptation for
    32x32 or 64x64 images, which a /4 stem would shrink to almost nothing.
    ``stem="auto"`` (default) picks ``"small"`` when ``input_size < 96``.
    """
    check_choice("stem", stem, ("auto", "imagenet", "small"))
    if stem == "auto":
        stem = "small" if input_size < 96 else "imagenet"
    if stem == "imagenet":
        head: nn.Module = nn.Sequential(
            conv_bn(in_channels, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
    else:
        head = nn.Sequential(conv_bn(in_channels, 64, 3, 1), nn.ReLU())
    stages = [(64, 1, 2), (128, 2, 2), (256, 2, 2), (512, 2, 2)]
    return ResNet(head, 64, stages, "B", num_classes)
