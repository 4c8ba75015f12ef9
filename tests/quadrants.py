"""Tiny in-memory splits shaped like ``advforge.data.DatasetSplits`` for fast loop tests
(a helper module, not a conftest, so spawned DDP workers can import it by name)."""

from __future__ import annotations

from types import SimpleNamespace

import torch


def quadrant_set(n: int, seed: int, size: int = 12, classes: int = 4) -> SimpleNamespace:
    """Class k brightens quadrant k: learnable in a few steps, with a real boundary."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = 0.3 * torch.rand(n, 1, size, size, generator=g)
    h = size // 2
    for k in range(classes):
        r, c = divmod(k, 2)
        x[y == k, :, r * h : (r + 1) * h, c * h : (c + 1) * h] += 0.6
    return SimpleNamespace(x=x.clamp(0, 1), y=y)


def make_splits(n_train: int = 96, n_test: int = 40, size: int = 16) -> SimpleNamespace:
    return SimpleNamespace(
        train=quadrant_set(n_train, 0, size), test=quadrant_set(n_test, 1, size),
        num_classes=4, in_channels=1, image_size=(size, size), mean=(0.3,), std=(0.3,),
        name="quadrants",
    )
