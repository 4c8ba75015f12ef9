"""Generator and discriminator networks of the learned attackers (AI-GAN, AdvGAN).

Both follow the ResNet nets of SNGAN / cGANs with projection discriminator (Miyato & Koyama
2018, AI-GAN ref. [45]), sized for 28x28 and 32x32 inputs with 1 or 3 channels:

* :class:`Generator` is an encoder-decoder. The encoder (two downsampling residual blocks,
  H -> H/4) sees the image only, so it can be pre-trained with SimCLR (AI-GAN Sec. IV-C). The
  target class t enters after it: one-hot planes concatenated at the bottleneck and
  class-conditional batch norm in every decoder block (SNGAN's conditional generator).
  Optional U-Net additive skips carry the encoder's H and H/2 features to the decoder (they
  raised targeted success from 72% to 76% after 5 epochs on mnist5k: perturbations need
  stroke-level detail that a 7x7 bottleneck blurs), and an optional learned per-class
  template is added before the squashing. The output is ``delta = eps * tanh(.)``, so
  ``||delta||_inf <= eps`` holds by construction (``output="tanh"``, the paper's form), or
  the box-aware ``output="box"``: x_pert = lo + (hi - lo) * sigmoid(.) with
  [lo, hi] = [x - eps, x + eps] intersected with [0, 1]. Inside the box the two are the same
  function (eps * tanh(h / 2)); at its walls the tanh form wastes the half of its range that
  the clamp to [0, 1] cuts off, and the clamp passes no gradient there, so a background pixel
  of MNIST (x = 0) whose delta starts negative never learns to turn positive. With
  ``num_classes=None`` it is the unconditional G(x) of AdvGAN.
* :class:`Discriminator` is a spectrally normalised residual net with global sum pooling and
  two linear heads: the source head (clean vs perturbed, AI-GAN Eq. 6) and the class head
  (Eqs. 7-8). With ``num_classes=None`` only the source head exists (AdvGAN).
* :class:`ShuffleGenerator` (``g_arch="shuffle"``) is the fast alternative to the U-Net:
  space-to-depth (pixel unshuffle by 4) at the input and depth-to-space at the output, so
  every convolution runs on the H/4 x W/4 grid with wide, GEMM-friendly channels and the
  full-resolution work is two reshapes. On a CPU, where forging time is set by the
  multiply-adds and by the passes over the activations, it forges several times faster than
  a U-Net of the same success and is less successful than the default U-Net
  (docs/aigan.md).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from advforge.errors import InputError

OUTPUTS = ("tanh", "box")


def _channels_last(module: nn.Module) -> None:
    """Store the conv weights NHWC. oneDNN (CPU) and cuDNN then run every convolution without
    reordering its activations to and from NCHW: on one CPU thread, G forges 1.5x and D's
    PGD-7 runs 1.45x faster. Values, state-dict keys and checkpoints are unchanged (the
    safetensors writer stores contiguous copies)."""
    module.to(memory_format=torch.channels_last)


def eval_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor] | None:
    """An eval-mode batch norm as the per-channel affine map it is, ``y = scale * x + shift``
    (running statistics and, if any, its own gain and bias), so it can be folded into the
    layer before it; None while it normalises with batch statistics (training mode)."""
    if bn.training or bn.running_var is None or bn.running_mean is None:
        return None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.affine:
        scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
    return scale, shift


def conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, h: torch.Tensor) -> torch.Tensor:
    """``bn(conv(h))``; in eval mode as one convolution with the batch norm folded into its
    weights and bias (the same function, one pass over the activations fewer)."""
    affine = eval_affine(bn)
    if affine is None:
        return bn(conv(h))
    scale, shift = affine
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return F.conv2d(h, conv.weight * scale[:, None, None, None], bias, conv.stride,
                    conv.padding, conv.dilation, conv.groups)


class CondBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up from the class (SNGAN's conditional BN);
    a plain affine batch norm when ``num_classes`` is None. In eval mode the normalisation
    and the class's gain and bias compose into one per-image affine map, applied in a
    single pass (forging is memory-bound on a CPU: one pass instead of three)."""

    def __init__(self, features: int, num_classes: int | None) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(features, affine=num_classes is None)
        self.gain = self.bias = None
        if num_classes is not None:
            self.gain = nn.Embedding(num_classes, features)
            self.bias = nn.Embedding(num_classes, features)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, h: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        affine = eval_affine(self.bn)
        if affine is not None and self.gain is not None:
            scale, shift = affine
            gain = self.gain(t)  # (B, C): gain * (scale * h + shift) + bias
            return torch.addcmul((gain * shift + self.bias(t))[:, :, None, None], h,
                                 (gain * scale)[:, :, None, None])
        h = self.bn(h)
        if self.gain is None:
            return h
        return h * self.gain(t)[:, :, None, None] + self.bias(t)[:, :, None, None]


class EncoderBlock(nn.Module):
    """Pre-activation residual block that halves H and W: BN-ReLU-conv at full resolution,
    average pool, BN-ReLU-conv at half resolution (the second conv runs on 1/4 of the pixels,
    which keeps the generator cheap on a CPU)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_in, 3, padding=1)
        self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, c_out, H/2, W/2)
        r = F.avg_pool2d(self.conv1(F.relu(self.bn1(h))), 2)
        r = self.conv2(F.relu(self.bn2(r)))
        return r + self.skip(F.avg_pool2d(h, 2))


class DecoderBlock(nn.Module):
    """SNGAN generator block: CBN-ReLU-(upsample)-conv-CBN-ReLU-conv plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, num_classes: int | None, *, up: bool) -> None:
        super().__init__()
        self.up = up
        self.bn1 = CondBatchNorm2d(c_in, num_classes)
        self.bn2 = CondBatchNorm2d(c_out, num_classes)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or up) else nn.Identity()

    def _up(self, h: torch.Tensor) -> torch.Tensor:
        return F.interpolate(h, scale_factor=2, mode="nearest") if self.up else h

    def forward(self, h: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        r = self.conv1(self._up(F.relu(self.bn1(h, t))))
        r = self.conv2(F.relu(self.bn2(r, t)))
        # A 1x1 conv commutes with nearest upsampling: the same output for 1/4 of the work.
        return r + self._up(self.skip(h))


class PerturbationGenerator(nn.Module):
    """What every generator shares: the argument checks, the squashing of its raw output
    ``h`` into a perturbation with ``||delta||_inf <= eps`` (``output="tanh"`` or
    ``"box"``; see the module docstring) and :meth:`perturb`. Subclasses build the network
    and call :meth:`_init_template` and :meth:`_squash`."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int | None, eps: float,
                 *, ch: int, res_blocks: int, template: bool, skip: bool, output: str) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise InputError(f"generator output must be one of {OUTPUTS}, got {output!r}")
        if image_size % 4:
            raise InputError(f"generator needs an image size divisible by 4, got {image_size}")
        if not 0 < eps <= 1:
            raise InputError(f"generator eps must lie in (0, 1], got {eps}")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.eps, self.output = float(eps), output
        self.ch, self.res_blocks, self.template_on, self.skip = ch, res_blocks, template, skip

    def arch_kwargs(self) -> dict[str, Any]:
        """Constructor arguments, recorded in config.json so :func:`load_attacker` rebuilds it
        (with the class name: :func:`generator_class`)."""
        return {
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "eps": self.eps,
            "ch": self.ch,
            "res_blocks": self.res_blocks,
            "template": self.template_on,
            "skip": self.skip,
            "output": self.output,
        }

    def _check_condition(self, t: torch.Tensor | None) -> None:
        if (t is None) != (self.num_classes is None):
            raise InputError("a conditional generator needs targets t; an unconditional one none")

    def _init_template(self) -> None:
        """The learned (K, C, H, W) per-class map added before the squashing (``template``).
        Subclasses call it where their layers are built, so parameter order (and with it the
        optimizer state of a resumed run) stays as it was."""
        self.template = None
        if self.template_on:
            self.template = nn.Parameter(torch.zeros(
                self.num_classes or 1, self.in_channels, self.image_size, self.image_size))

    def _squash(self, x: torch.Tensor, h: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        """The raw output ``h`` (B, C, H, W), plus the target's template if any, -> delta with
        ``||delta||_inf <= eps`` and x + delta in [0, 1]."""
        # Under a bfloat16 autocast (GeneratorAttack's precision) the network's output is
        # bfloat16; the squashing and the clamp run in x's precision, so the bound is the
        # float32 eps and not its bfloat16 rounding (0.3 -> 0.30078).
        h = h.to(x.dtype)
        if self.template is not None:
            h = h + self.template[t if t is not None else 0].to(x.dtype)
        if self.output == "box":
            lo, hi = (x - self.eps).clamp_min(0.0), (x + self.eps).clamp_max(1.0)
            delta = lo + (hi - lo) * torch.sigmoid(h) - x
        else:
            delta = self.eps * torch.tanh(h)
        # tanh saturates at +-1 in float32 for large inputs and lo + (hi - lo) * s - x can
        # round past eps: clamping keeps the bound exact. The NHWC convolutions leave delta
        # NHWC; callers get the usual contiguous layout (a no-op for one channel).
        return delta.clamp(-self.eps, self.eps).contiguous()

    def perturb(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """``clamp(x + G(x, t), 0, 1)``: the adversarial image."""
        return (x + self(x, t)).clamp(0.0, 1.0)


class Generator(PerturbationGenerator):
    """G(x, t) -> delta with ``||delta||_inf <= eps`` (AI-GAN Sec. IV-B; AdvGAN when
    ``num_classes`` is None).

    Args:
        in_channels: image channels C (1 or 3).
        image_size: H (= W); must be divisible by 4 (two down- and two upsamplings).
        num_classes: number of target classes K, or None for an unconditional generator.
        eps: L-inf budget on the [0, 1] scale.
        ch: base width; the bottleneck has ``4 * ch`` channels at H/4 x W/4.
        res_blocks: conditional residual blocks at the bottleneck.
        template: add a learned (K, C, H, W) per-class map before the tanh.
        skip: U-Net additive skips from the encoder to the decoder at H/2 and H.
        output: ``"tanh"`` (delta = eps * tanh, then clamp(x + delta, 0, 1): the paper) or
            ``"box"`` (the feasible interval of every pixel spanned by a sigmoid; see the
            module docstring). Both keep ``||delta||_inf <= eps`` and x + delta in [0, 1].
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int | None,
        eps: float,
        *,
        ch: int = 32,
        res_blocks: int = 1,
        template: bool = False,
        skip: bool = False,
        output: str = "tanh",
    ) -> None:
        super().__init__(in_channels, image_size, num_classes, eps, ch=ch,
                         res_blocks=res_blocks, template=template, skip=skip, output=output)
        # The encoder is target-agnostic so that SimCLR can pre-train it on images alone.
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, ch, 3, padding=1),
            EncoderBlock(ch, 2 * ch),
            EncoderBlock(2 * ch, 4 * ch),
            nn.BatchNorm2d(4 * ch),
            nn.ReLU(),
        )
        k = num_classes or 0
        self.fuse = nn.Conv2d(4 * ch + k, 4 * ch, 1)  # one-hot target planes join here
        self.blocks = nn.ModuleList(
            [DecoderBlock(4 * ch, 4 * ch, num_classes, up=False) for _ in range(res_blocks)]
            + [DecoderBlock(4 * ch, 2 * ch, num_classes, up=True)]
            + [DecoderBlock(2 * ch, ch, num_classes, up=True)]
        )
        self.out_bn = CondBatchNorm2d(ch, num_classes)
        self.out = nn.Conv2d(ch, in_channels, 3, padding=1)
        self._init_template()
        _channels_last(self)

    @property
    def feature_dim(self) -> int:
        """Channels of the encoder output (the SimCLR projection head's input)."""
        return 4 * self.ch

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 4ch, H/4, W/4)
        """Target-agnostic features of images in [0, 1] (what SimCLR pre-trains)."""
        return self.encoder(2 * x - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Perturbation for images ``x`` (B, C, H, W) in [0, 1] towards targets ``t`` (B,)."""
        self._check_condition(t)
        h, skips = 2 * x - 1, []
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < 2:  # stem (B, ch, H, W) and first block (B, 2ch, H/2, W/2) outputs
                skips.append(h)
        if t is not None:  # h: (B, 4ch, H/4, W/4)
            planes = F.one_hot(t, self.num_classes).to(h.dtype)[:, :, None, None]
            h = torch.cat([h, planes.expand(-1, -1, *h.shape[2:])], dim=1)
        h = self.fuse(h)
        n = len(self.blocks)
        for i, block in enumerate(self.blocks):
            h = block(h, t)  # (B, ch, H, W) after the last one
            if self.skip and i >= n - 2:  # U-Net style additive skips at H/2 and H
                h = h + skips[n - 1 - i]
        h = self.out(F.relu(self.out_bn(h, t)))
        return self._squash(x, h, t)


class ShuffleGenerator(PerturbationGenerator):
    """G(x, t) computed on the H/4 x W/4 grid, for fast forging (``g_arch="shuffle"``).

    ``pixel_unshuffle(., 4)`` turns (B, C, H, W) into (B, 16C, H/4, W/4) without losing a
    pixel, and ``pixel_shuffle`` turns the output back, so no convolution runs at full
    resolution: on 28x28 the U-Net spends most of its time in 8-32-channel convolutions and
    elementwise passes over 784 positions; here every layer sees 49 positions with ``ch``
    channels. Same arguments and contract as :class:`Generator`:

    * encoder (target-agnostic, so SimCLR pre-trains it): unshuffle, conv3x3 16C -> ch,
      BN-ReLU, conv3x3 ch -> ch, BN-ReLU; ``feature_dim = ch``;
    * the target: a 1x1 conv plus a learned per-class bias, the same function as the U-Net's
      one-hot planes concatenated before a 1x1 conv, without the K extra input channels;
    * ``res_blocks`` conditional residual blocks (CBN-ReLU-conv-CBN-ReLU-conv, identity);
    * output: CBN-ReLU, a conv3x3 to 16C channels, pixel shuffle to (B, C, H, W). With
      ``skip`` the output conv also sees the unshuffled image, so every output pixel knows
      its own value (what the U-Net's full-resolution skip gives it); ``template`` adds a
      learned per-class map before the squashing.
    """

    factor = 4  # space-to-depth block: 28 -> 7, 32 -> 8

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int | None,
        eps: float,
        *,
        ch: int = 48,
        res_blocks: int = 1,
        template: bool = False,
        skip: bool = True,
        output: str = "box",
    ) -> None:
        super().__init__(in_channels, image_size, num_classes, eps, ch=ch,
                         res_blocks=res_blocks, template=template, skip=skip, output=output)
        r2c = in_channels * self.factor ** 2
        self.encoder = nn.Sequential(
            nn.PixelUnshuffle(self.factor),
            nn.Conv2d(r2c, ch, 3, padding=1),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        )
        self.fuse = nn.Conv2d(ch, ch, 1)
        self.target_bias = None
        if num_classes is not None:
            self.target_bias = nn.Embedding(num_classes, ch)
            # the init a 1x1 conv would give the weights of K one-hot input planes
            bound = 1.0 / math.sqrt(ch + num_classes)
            nn.init.uniform_(self.target_bias.weight, -bound, bound)
        self.blocks = nn.ModuleList(
            [DecoderBlock(ch, ch, num_classes, up=False) for _ in range(res_blocks)])
        self.out_bn = CondBatchNorm2d(ch, num_classes)
        self.out = nn.Conv2d(ch + (r2c if skip else 0), r2c, 3, padding=1)
        self._init_template()
        _channels_last(self)

    @property
    def feature_dim(self) -> int:
        """Channels of the encoder output (the SimCLR projection head's input)."""
        return self.ch

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, ch, H/4, W/4)
        """Target-agnostic features of images in [0, 1] (what SimCLR pre-trains)."""
        return self.encoder(2 * x - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Perturbation for images ``x`` (B, C, H, W) in [0, 1] towards targets ``t`` (B,)."""
        self._check_condition(t)
        unshuffle, conv1, bn1, _, conv2, bn2, _ = self.encoder
        u = unshuffle(2 * x - 1)  # (B, 16C, H/4, W/4)
        h = F.relu(conv_bn(conv2, bn2, F.relu(conv_bn(conv1, bn1, u))))  # = self.encoder[1:]
        h = self.fuse(h)
        if self.target_bias is not None:
            h = h + self.target_bias(t)[:, :, None, None]
        for block in self.blocks:
            h = block(h, t)
        h = F.relu(self.out_bn(h, t))
        h = self.out(torch.cat([h, u], dim=1) if self.skip else h)
        h = F.pixel_shuffle(h, self.factor)  # (B, C, H, W)
        return self._squash(x, h, t)


GENERATORS: dict[str, type[PerturbationGenerator]] = {
    "unet": Generator, "shuffle": ShuffleGenerator}


def build_generator(arch: str, in_channels: int, image_size: int, num_classes: int | None,
                    eps: float, **kwargs: Any) -> PerturbationGenerator:
    """The generator named ``arch`` (``g_arch``: "unet" or "shuffle")."""
    if arch not in GENERATORS:
        raise InputError(f"generator arch must be one of {tuple(GENERATORS)}, got {arch!r}")
    return GENERATORS[arch](in_channels, image_size, num_classes, eps, **kwargs)


def generator_class(name: str) -> type[PerturbationGenerator]:
    """The class a checkpoint's config.json names ("Generator", "ShuffleGenerator")."""
    for cls in GENERATORS.values():
        if cls.__name__ == name:
            return cls
    raise InputError(f"unknown generator class {name!r}")


def _sn(module: nn.Module, use: bool) -> nn.Module:
    return spectral_norm(module) if use else module


class DiscBlock(nn.Module):
    """SNGAN discriminator block: (ReLU)-conv-ReLU-conv-(avgpool) plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, *, down: bool, first: bool, sn: bool) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _sn(nn.Conv2d(c_in, c_out, 3, padding=1), sn)
        self.conv2 = _sn(nn.Conv2d(c_out, c_out, 3, padding=1), sn)
        learn_skip = c_in != c_out or down
        self.skip = _sn(nn.Conv2d(c_in, c_out, 1), sn) if learn_skip else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        r = h if self.first else F.relu(h)  # the first block sees the raw image
        r = self.conv2(F.relu(self.conv1(r)))
        s = h
        if self.first:  # SNGAN's "optimized" first block pools before the 1x1 shortcut
            s = F.avg_pool2d(s, 2) if self.down else s
            s = self.skip(s) if self.skip is not None else s
        else:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return (F.avg_pool2d(r, 2) if self.down else r) + s


class Discriminator(nn.Module):
    """Two-head discriminator D(x) -> (source logit, class logits) (AI-GAN Fig. 2, Eqs. 6-8).

    Args:
        in_channels: image channels C.
        num_classes: classes of the class head, or None for a source head only (AdvGAN).
        ch: base width (features have ``2 * ch`` channels).
        spectral: spectral normalisation on every layer (SNGAN). It bounds D's Lipschitz
            constant, which stabilises a GAN game, but it also bounds the class head's
            logit margins, and under PGD at eps 0.3 such a head stays at chance; AI-GAN
            therefore turns it off by default.
    """

    def __init__(
        self, in_channels: int, num_classes: int | None, *, ch: int = 32, spectral: bool = True
    ) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.ch, self.spectral = (
            in_channels, num_classes, ch, spectral)
        self.blocks = nn.Sequential(
            DiscBlock(in_channels, ch, down=True, first=True, sn=spectral),  # H/2
            DiscBlock(ch, 2 * ch, down=True, first=False, sn=spectral),  # H/4
            DiscBlock(2 * ch, 2 * ch, down=False, first=False, sn=spectral),
        )
        self.source = _sn(nn.Linear(2 * ch, 1), spectral)
        self.classes = _sn(nn.Linear(2 * ch, num_classes), spectral) if num_classes else None
        _channels_last(self)

    def arch_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "ch": self.ch, "spectral": self.spectral}

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 2ch)
        return F.relu(self.blocks(2 * x - 1)).sum(dim=(2, 3))  # SNGAN's global sum pooling

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Source logits (B,) (> 0 means "clean") and class logits (B, K) or None."""
        h = self.features(x)
        cls = self.classes(h) if self.classes is not None else None
        return self.source(h).squeeze(1), cls


class ClassHead(nn.Module):
    """D's class head as a classifier (images -> logits), so the PGD attacker A can attack it
    like any model (AI-GAN Eq. 7). Carries ``num_classes``/``in_channels`` as models do."""

    def __init__(self, disc: Discriminator) -> None:
        super().__init__()
        if disc.classes is None:
            raise InputError("this discriminator has no class head")
        self.disc = disc
        self.num_classes, self.in_channels = disc.num_classes, disc.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.disc.classes(self.disc.features(x))


class ProjectionHead(nn.Module):
    """SimCLR's projection head g(.): global average pool, then a 2-layer MLP (Chen et al.)."""

    def __init__(self, features: int, out_dim: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(features, features), nn.ReLU(), nn.Linear(features, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, F, h, w) -> (B, out_dim)
        return self.mlp(h.mean(dim=(2, 3)))
