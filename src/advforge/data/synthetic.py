"""``synthetic``: a learnable toy dataset generated on the fly, for tests and ``--dry-run``.

No files. Class k has a fixed smooth random pattern (a 4x4 grid of uniform values upsampled
bilinearly to the image size and stretched to [0, 1]); an image of class k is
``clamp(0.1 + 0.8 * pattern_k + 0.1 * noise, 0, 1)`` with Gaussian noise. Patterns, train and
test images come from three independent streams derived from ``seed``, so the same seed gives
bit-identical data, and changing ``n_train`` leaves the patterns and the test set unchanged.
Classes are balanced (label = index mod K, then shuffled). A nearest-class-mean rule already
separates the classes, so a tiny CNN learns them in a few steps.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from advforge.data.catalog import DatasetInfo, register_dataset
from advforge.data.splits import DatasetSplits, ImageSet
from advforge.errors import InputError

logger = logging.getLogger(__name__)

_PATTERN, _TRAIN, _TEST = 0, 1, 2  # stream ids
_GRID = 4  # coarse pattern resolution before upsampling


def _generator(seed: int, stream: int) -> torch.Generator:
    """An independent CPU generator per (seed, stream) pair (no overlap between seeds)."""
    state = np.random.SeedSequence([seed, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def patterns(num_classes: int, channels: int, hw: tuple[int, int], seed: int) -> torch.Tensor:
    """The class patterns (K, C, H, W), each stretched to span [0, 1]."""
    g = _generator(seed, _PATTERN)
    coarse = torch.rand(num_classes, channels, _GRID, _GRID, generator=g)  # (K, C, 4, 4)
    fine = F.interpolate(coarse, size=hw, mode="bilinear", align_corners=False)  # (K, C, H, W)
    lo = fine.amin(dim=(1, 2, 3), keepdim=True)
    hi = fine.amax(dim=(1, 2, 3), keepdim=True)
    return (fine - lo) / (hi - lo).clamp_min(1e-6)


def sample(protos: torch.Tensor, n: int, g: torch.Generator) -> ImageSet:
    """``n`` noisy images, classes balanced then shuffled."""
    k = protos.shape[0]
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]  # (N,)
    noise = torch.randn((n, *protos.shape[1:]), generator=g)  # (N, C, H, W)
    x = (0.1 + 0.8 * protos[y] + 0.1 * noise).clamp_(0.0, 1.0)
    return ImageSet(x.float(), y.long())


def _check(
    num_classes: int, channels: int, hw: tuple, n_train: int, n_test: int, seed: int
) -> None:
    ints = {"num_classes": num_classes, "channels": channels, "n_train": n_train,
            "n_test": n_test, "seed": seed}  # fmt: skip
    for name, v in ints.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise InputError(f"synthetic {name} must be an integer, got {v!r}")
    if num_classes < 2 or channels < 1 or seed < 0:
        raise InputError("synthetic needs num_classes >= 2, channels >= 1 and seed >= 0")
    if n_train < num_classes or n_test < 1:
        raise InputError(f"synthetic needs n_train >= num_classes ({num_classes}) and n_test >= 1")
    if len(hw) != 2 or not all(isinstance(v, int) and v >= _GRID for v in hw):
        raise InputError(f"synthetic size must be an int or (H, W) of at least {_GRID}, got {hw}")


SYNTHETIC = DatasetInfo(
    name="synthetic",
    description="generated class patterns plus noise (seeded; for tests and --dry-run)",
)


@register_dataset(SYNTHETIC)
def load_synthetic(
    data_dir: str | Path | None = None,
    num_classes: int = 10,
    channels: int = 1,
    size: int | tuple[int, int] = 28,
    n_train: int = 1000,
    n_test: int = 200,
    seed: int = 0,
) -> DatasetSplits:
    """Generate the synthetic dataset (``data_dir`` is accepted for a uniform signature, unused).

    Args:
        num_classes: K.
        channels: C (1 gives an MNIST-like set with eps 0.3, otherwise eps 8/255).
        size: H = W, or (H, W).
        n_train: train images.
        n_test: test images.
        seed: fixes patterns and images.
    """
    hw = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    hw = tuple(hw) if isinstance(hw, (tuple, list)) else (hw,)
    _check(num_classes, channels, hw, n_train, n_test, seed)
    protos = patterns(num_classes, channels, hw, seed)
    train = sample(protos, n_train, _generator(seed, _TRAIN))
    test = sample(protos, n_test, _generator(seed, _TEST))
    logger.info("synthetic: %d train / %d test, %d classes, seed %d", n_train, n_test,
                num_classes, seed)  # fmt: skip
    return DatasetSplits.from_sets(
        "synthetic",
        train,
        test,
        [f"class_{k}" for k in range(num_classes)],
        default_eps=0.3 if channels == 1 else 8 / 255,
    )
