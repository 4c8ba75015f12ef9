"""The generative networks of Wang & Yu's appendix (Fig. 4): G0, G1(k), G2(k), G3(k).

Every generator maps its input to a (B, C, H, W) tensor in [-1, 1] (a final tanh); the
perturbation is ``eps * G(.)`` (Eq. 4) and the adversarial image ``clamp(x + eps G, 0, 1)``.
What a generator reads is its :attr:`source`:

* ``g0`` (Fig. 4a, the MNIST encoder-decoder) and ``g1`` (Fig. 4b, residual encoder-decoder):
  the image, rescaled to [-1, 1] as the paper's inputs are;
* ``g2`` (Fig. 4c): a Gaussian vector z, drawn afresh for every mini-batch;
* ``g3`` (Fig. 4d): the one-hot label.

Reading of the figure (its text extraction is garbled): G0 is conv(5,2,k)-BN-ReLU,
conv(5,2,2k)-BN-ReLU, deconv(5,2,k)-BN-ReLU, deconv(5,2,c), tanh: two stride-2 layers down and
two up (28 -> 14 -> 7 -> 14 -> 28), which is also the authors' TF generator (its deconvolutions
have no bias). The repeated "deconv2d(5,2,c) - BN - ReLU" lines of the extracted figure would
upsample past 28x28 and are read as extraction debris. G1's decoder likewise has two stride-2
deconvolutions (2k, then k), as in G2 and G3, so that 32x32 comes back out.

Sizes are generic: any square image whose side is divisible by 4 works (28 or 32). G2's z and
G3's FC output have ``4k * (H/4)^2`` entries, which is the paper's 256k for 32x32 images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advforge.errors import InputError

GENERATORS = ("g0", "g1", "g2", "g3")
SOURCES = {"g0": "image", "g1": "image", "g2": "noise", "g3": "label"}
DEFAULT_WIDTH = {"g0": 64, "g1": 64, "g2": 64, "g3": 16}


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


def _deconv(c_in: int, c_out: int, kernel: int) -> nn.ConvTranspose2d:
    """Stride-2 deconvolution that doubles H and W exactly (TF's 'same' padding)."""
    return nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding=kernel // 2, output_padding=1,
                              bias=False)


def _deconv_bn_relu(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    return [_deconv(c_in, c_out, kernel), nn.BatchNorm2d(c_out), nn.ReLU()]


class ResidualBlock(nn.Module):
    """residual-block(3, s, k) of Fig. 2: conv(3,s,k)-BN-ReLU-conv(3,1,k)-BN plus the
    shortcut (a 1x1 projection when the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(c_in, c_out, 3, stride),
            nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                      nn.BatchNorm2d(c_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(h) + self.skip(h))


def _decoder(c_in: int, k: int, channels: int) -> nn.Sequential:
    """The shared tail of G1-G3: residual-block(3,1,4k) x 6 at H/4, deconv(3,2,2k)-BN-ReLU,
    deconv(3,2,k)-BN-ReLU, conv(3,1,c), tanh."""
    return nn.Sequential(
        ResidualBlock(c_in, 4 * k), *[ResidualBlock(4 * k, 4 * k) for _ in range(5)],
        *_deconv_bn_relu(4 * k, 2 * k, 3), *_deconv_bn_relu(2 * k, k, 3),
        nn.Conv2d(k, channels, 3, 1, padding=1), nn.Tanh())


class AdvGenerator(nn.Module):
    """What every generator shares: its name, shape and input (:meth:`inputs`).

    Args:
        in_channels: image channels c.
        image_size: H = W, divisible by 4.
        num_classes: K (the label generator's input size).
        width: k, the width factor of the appendix.
    """

    kind = ""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int) -> None:
        super().__init__()
        if image_size % 4 or image_size < 4:
            raise InputError(f"generator {self.kind} needs an image side divisible by 4, "
                             f"got {image_size}")
        self.in_channels, self.image_size = in_channels, image_size
        self.num_classes, self.width = num_classes, width

    @property
    def source(self) -> str:
        """What the generator reads: ``image``, ``noise`` or ``label``."""
        return SOURCES[self.kind]

    @property
    def code_dim(self) -> int:
        """Entries of the 4k x H/4 x W/4 code that G2's z and G3's FC layer fill."""
        return 4 * self.width * (self.image_size // 4) ** 2

    def inputs(self, x: torch.Tensor, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """The generator's input for a batch: x in [-1, 1] (B, C, H, W), a fresh Gaussian z
        (B, code_dim) drawn from ``generator``, or the one-hot label (B, K)."""
        if self.source == "image":
            return 2 * x - 1
        if self.source == "noise":
            return torch.randn(x.shape[0], self.code_dim, generator=generator,
                               device=x.device, dtype=x.dtype)
        if y is None:
            raise InputError("the label generator g3 needs the labels y")
        return F.one_hot(y, self.num_classes).to(x.dtype)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, enough for :func:`build_generator` to rebuild it."""
        return {"generator": self.kind, "in_channels": self.in_channels,
                "image_size": self.image_size, "num_classes": self.num_classes,
                "width": self.width}


class G0(AdvGenerator):
    """Fig. 4a, the MNIST encoder-decoder (see the module docstring for the reading)."""

    kind = "g0"

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 64
                 ) -> None:
        super().__init__(in_channels, image_size, num_classes, width)
        k = width
        self.net = nn.Sequential(
            *_conv_bn_relu(in_channels, k, 5, 2), *_conv_bn_relu(k, 2 * k, 5, 2),
            *_deconv_bn_relu(2 * k, k, 5), _deconv(k, in_channels, 5), nn.Tanh())

    def forward(self, inp: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        return self.net(inp)


class G1(AdvGenerator):
    """Fig. 4b: conv(3,1,k), conv(3,2,k), conv(3,2,2k) (each -BN-ReLU), then the residual
    decoder (:func:`_decoder`)."""

    kind = "g1"

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 64
                 ) -> None:
        super().__init__(in_channels, image_size, num_classes, width)
        k = width
        self.encoder = nn.Sequential(*_conv_bn_relu(in_channels, k, 3, 1),
                                     *_conv_bn_relu(k, k, 3, 2), *_conv_bn_relu(k, 2 * k, 3, 2))
        self.decoder = _decoder(2 * k, k, in_channels)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(inp))


class G2(AdvGenerator):
    """Fig. 4c: Gaussian z (B, 4k (H/4)^2) reshaped to (4k, H/4, W/4), then the decoder."""

    kind = "g2"

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 64
                 ) -> None:
        super().__init__(in_channels, image_size, num_classes, width)
        self.decoder = _decoder(4 * width, width, in_channels)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:  # (B, code_dim)
        s = self.image_size // 4
        return self.decoder(inp.reshape(-1, 4 * self.width, s, s))


class G3(AdvGenerator):
    """Fig. 4d: one-hot label -> FC(4k (H/4)^2) -> reshape -> the decoder."""

    kind = "g3"

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 16
                 ) -> None:
        super().__init__(in_channels, image_size, num_classes, width)
        self.fc = nn.Linear(num_classes, self.code_dim)
        self.decoder = _decoder(4 * width, width, in_channels)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:  # (B, K)
        s = self.image_size // 4
        return self.decoder(self.fc(inp).reshape(-1, 4 * self.width, s, s))


CLASSES: dict[str, type[AdvGenerator]] = {"g0": G0, "g1": G1, "g2": G2, "g3": G3}


def build_generator(generator: str, in_channels: int, image_size: int, num_classes: int,
                    width: int | None = None) -> AdvGenerator:
    """The appendix generator ``generator`` (g0-g3) of width k (None: the paper's default,
    64, or 16 for the label generator g3)."""
    if generator not in CLASSES:
        raise InputError(f"generator must be one of {list(GENERATORS)}, got {generator!r}")
    k = DEFAULT_WIDTH[generator] if width is None else width
    return CLASSES[generator](in_channels, image_size, num_classes, k)


def adversarial(x: torch.Tensor, g_out: torch.Tensor, eps: float) -> torch.Tensor:
    """``clamp(x + eps * G, 0, 1)``: the adversarial image of Eq. 4 on the [0, 1] scale."""
    return (x + eps * g_out).clamp(0.0, 1.0)
