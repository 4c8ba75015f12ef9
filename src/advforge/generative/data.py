"""Training data of the learned attackers: validated tensors and seeded minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from advforge.errors import InputError
from advforge.generative.parallel import shard_batch
from advforge.utils.validate import check_images, check_labels


def as_tensors(data: Any, name: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Accept an ``ImageSet`` (``.x``, ``.y``) or an ``(x, y)`` pair and validate it."""
    if hasattr(data, "x") and hasattr(data, "y"):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise InputError(f"{name} data must be an ImageSet or an (x, y) pair")
    check_images(x, name=f"{name}.x")
    check_labels(y, x.shape[0], name=f"{name}.y")
    return x, y.long()


def train_val_tensors(
    train: Any, val: Any, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``train`` and ``val`` as validated tensors on ``device``: ``(x, y, xv, yv)``.

    Without ``val`` the training images stand in for it (``xv is x``), so the success
    figures are measured on what the generator saw."""
    x, y = (t.to(device) for t in as_tensors(train, "train"))
    xv, yv = (t.to(device) for t in as_tensors(val, "val")) if val is not None else (x, y)
    return x, y, xv, yv


def iterate_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled minibatches; the permutation comes from ``generator`` so runs (and resumed
    runs) repeat exactly. A last batch smaller than 2 is dropped (batch norm needs 2).

    Under torchrun ``batch_size`` is the global batch and each rank gets its equal share of
    it (:func:`advforge.generative.parallel.shard_batch`; every rank draws the same order)."""
    perm = torch.randperm(x.shape[0], generator=generator, device=generator.device).to(x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = perm[i : i + batch_size]
        if idx.numel() >= 2 and (share := shard_batch(x[idx], y[idx])) is not None:
            yield share
