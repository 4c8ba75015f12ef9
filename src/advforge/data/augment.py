"""Batched training augmentations on ``x.device`` (no per-image Python loops).

* MNIST-style papers (Tramer et al., Carlini & Wagner via AI-GAN) train with random shifts of
  up to 12.5% of the image size: :func:`random_shift` (3 pixels on 28x28).
* CIFAR-style papers (He et al., Zagoruyko & Komodakis, Madry et al.) pad by 4, take a random
  32x32 crop and flip horizontally with probability 1/2: :func:`pad_crop_flip`.

Padding is with zeros (black), as torchvision's ``RandomCrop(padding=4)`` does. Every
function takes an optional ``torch.Generator`` that must live on ``x.device``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from advforge.errors import InputError

AUGMENTS = ("none", "shift", "crop_flip", "auto")
Augment = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def random_translate(
    x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by its own integer offsets in ``[-max_shift, max_shift]`` (both axes),
    filling the uncovered border with zeros. Equals pad-by-``max_shift`` then random crop."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    m = max_shift
    xp = torch.nn.functional.pad(x, (m, m, m, m))  # (B, C, H + 2m, W + 2m)
    dy, dx = torch.randint(0, 2 * m + 1, (2, b, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device) + dy  # (B, H): crop rows per image
    cols = torch.arange(w, device=x.device) + dx  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indices around the channel slice put their broadcast dims first: (B, H, W, C).
    out = xp[bi, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def random_shift(
    x: torch.Tensor, fraction: float = 0.125, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random shifts of up to ``fraction`` of the image size (floor: 3 pixels for 28x28)."""
    return random_translate(x, int(fraction * min(x.shape[-2:])), generator)


def random_flip(
    x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flip each image left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p  # (B,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def pad_crop_flip(
    x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The CIFAR augmentation: zero-pad by ``padding``, random crop back, random h-flip."""
    return random_flip(random_translate(x, padding, generator), 0.5, generator)


def check_augment(name: str) -> None:
    """Refuse an augmentation name outside :data:`AUGMENTS` (one line, before training)."""
    if name not in AUGMENTS:
        raise InputError(f"augment must be one of {list(AUGMENTS)}, got {name!r}")


def resolve_augment(name: str, in_channels: int, dataset: str | None = None) -> str:
    """Turn ``"auto"`` into a concrete choice: ``"shift"`` for grey images (MNIST-like) and
    for digit datasets such as SVHN, where a mirrored digit is a different symbol;
    ``"crop_flip"`` for other colour images (CIFAR-like)."""
    check_augment(name)
    if name != "auto":
        return name
    digits = dataset is not None and dataset.lower() in ("svhn", "mnist", "mnist5k")
    return "shift" if in_channels == 1 or digits else "crop_flip"


def build_augment(name: str, in_channels: int, dataset: str | None = None) -> Augment | None:
    """Return ``f(x, generator) -> x_aug`` for an augmentation name, or None for ``"none"``."""
    name = resolve_augment(name, in_channels, dataset)
    if name == "shift":
        return lambda x, g=None: random_shift(x, 0.125, g)
    if name == "crop_flip":
        return lambda x, g=None: pad_crop_flip(x, 4, g)
    return None
