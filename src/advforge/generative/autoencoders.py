"""The autoencoders of the reconstruction attackers (AE4DNN, ATN/AAE): x' = g(x) in [0, 1].

Unlike AI-GAN's and AdvGAN's generators, which add a bounded perturbation to x, these networks
rebuild the whole image; the attack is the reconstruction itself and its size is measured in
L2 afterwards (AE4DNN Sec. II-B, criterion (iv)). Each is registered by name in
:data:`AUTOENCODERS`; a checkpoint records the name and :meth:`arch_kwargs`.

* ``conv`` (the default): AE4DNN's network, Sec. IV-A: conv, max-pool, conv, max-pool, conv,
  upsample, conv, upsample, conv. Every hidden conv is 3x3 with ``ch`` channels and ReLU; the
  last one maps to the image's channels and ends in a sigmoid, so g(x) lies in [0, 1] (the
  authors' code ends in ReLU, whose outputs leave the image range).
* ``mlp``: a fully connected d -> 2h -> h -> 2h -> d network with a sigmoid output, the shape
  of Baluja & Fischer's MNIST AAE, for a comparison free of the convolutional prior.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advforge.errors import InputError
from advforge.registry import Registry

AUTOENCODERS: Registry[nn.Module] = Registry("autoencoder")


class Autoencoder(nn.Module):
    """Base of the registered autoencoders: records its constructor arguments."""

    arch: str = ""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        if in_channels < 1 or image_size < 4:
            raise InputError(f"an autoencoder needs >= 1 channel and images of >= 4 pixels, "
                             f"got {in_channels} channels of {image_size}x{image_size}")
        self.in_channels, self.image_size = in_channels, image_size

    def arch_kwargs(self) -> dict[str, Any]:
        """Registry name and constructor arguments, as config.json records them."""
        return {"arch": self.arch, "in_channels": self.in_channels,
                "image_size": self.image_size, **self._extra_kwargs()}

    def _extra_kwargs(self) -> dict[str, Any]:
        return {}

    def output_layer(self) -> nn.Module:
        """The last layer, whose bias sets the sigmoid's starting point."""
        raise NotImplementedError

    @torch.no_grad()
    def init_output(self, mean: float) -> None:
        """Start the sigmoid at the data's mean pixel value: bias = logit(mean).

        A sigmoid starting at 0.5 on dark-background images (MNIST's mean pixel is 0.13) sends
        a large first gradient that pushes every output towards 0 and kills the decoder's
        ReLUs: on mnist5k every run then collapsed to a black image within 40 Adam steps, with
        or without the adversarial term. Started at the mean, the same network reconstructs
        (MSE 0.012 after 30 epochs on S)."""
        m = min(max(float(mean), 1e-3), 1 - 1e-3)
        self.output_layer().bias.fill_(math.log(m / (1 - m)))


@AUTOENCODERS.register("conv")
class ConvAutoencoder(Autoencoder):
    """AE4DNN's convolutional autoencoder (Sec. IV-A).

    Args:
        in_channels, image_size: the images' shape (square images; any size, the pools round
            up and the last upsampling returns to the input size).
        ch: channels of every hidden convolution.
    """

    arch = "conv"

    def __init__(self, in_channels: int, image_size: int, ch: int = 32) -> None:
        super().__init__(in_channels, image_size)
        if ch < 1:
            raise InputError(f"ae_ch must be >= 1, got {ch}")
        self.ch = ch
        self.enc1 = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.enc2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.mid = nn.Conv2d(ch, ch, 3, padding=1)
        self.dec1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.out = nn.Conv2d(ch, in_channels, 3, padding=1)
        # Channels-last weights make the CPU's convolutions 2-3x faster here (10,000 MNIST
        # images through ch=32 in 1.5 s instead of 5 s); checkpoints are saved contiguous and
        # load_state_dict keeps this layout.
        self.to(memory_format=torch.channels_last)

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"ch": self.ch}

    def output_layer(self) -> nn.Module:
        return self.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        h1 = F.max_pool2d(F.relu(self.enc1(x)), 2, ceil_mode=True)  # (B, ch, H/2, W/2)
        h2 = F.max_pool2d(F.relu(self.enc2(h1)), 2, ceil_mode=True)  # (B, ch, H/4, W/4)
        h = F.interpolate(F.relu(self.mid(h2)), size=h1.shape[2:], mode="nearest")
        h = F.interpolate(F.relu(self.dec1(h)), size=x.shape[2:], mode="nearest")
        return torch.sigmoid(self.out(h))


@AUTOENCODERS.register("mlp")
class MLPAutoencoder(Autoencoder):
    """A fully connected autoencoder d -> 2h -> h -> 2h -> d (ReLU; sigmoid output).

    Args:
        in_channels, image_size: the images' shape.
        ch: the bottleneck width h.
    """

    arch = "mlp"

    def __init__(self, in_channels: int, image_size: int, ch: int = 256) -> None:
        super().__init__(in_channels, image_size)
        if ch < 1:
            raise InputError(f"ae_ch must be >= 1, got {ch}")
        self.ch = ch
        d = in_channels * image_size * image_size
        self.net = nn.Sequential(nn.Linear(d, 2 * ch), nn.ReLU(), nn.Linear(2 * ch, ch),
                                 nn.ReLU(), nn.Linear(ch, 2 * ch), nn.ReLU(),
                                 nn.Linear(2 * ch, d))

    def _extra_kwargs(self) -> dict[str, Any]:
        return {"ch": self.ch}

    def output_layer(self) -> nn.Module:
        return self.net[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x.flatten(1))).view_as(x)


def build_autoencoder(arch: str, in_channels: int, image_size: int, **kwargs: Any) -> Autoencoder:
    """The registered autoencoder ``arch`` for images of this shape."""
    if arch not in AUTOENCODERS:
        raise InputError(f"unknown autoencoder {arch!r}; choose from {AUTOENCODERS.names()}")
    return AUTOENCODERS.create(arch, in_channels=in_channels, image_size=image_size, **kwargs)
