"""Run a per-example attack over a batch in chunks that stay in the CPU cache.

On a CPU a big batch streams every layer's activations through main memory (Model B on 1,000
MNIST digits: 86 MB after its first convolution); chunks of 64 images per thread keep them in
cache. Measured on Models A and B (mnist5k): on one thread, one forward+backward over 1,000
images drops from 1.95 s to 1.42 s (A) and from 0.9 s to 0.49 s (B); on two threads, targeted
PGD-20 on Model B over 1,000 images drops from 11.0 s (one batch) to 4.1 s (chunks of 128;
4.1 s at 64, 5.5 s at 256). Chunks grow with the thread count, so each thread's share of a
chunk stays cache-sized and a many-core machine still splits its operators over big batches.

Chunking leaves the results unchanged only when the model treats examples independently, so the
automatic rule also requires every module to be in eval mode (train-mode batch norm mixes the
batch). Random starts are drawn for the whole batch before chunking, so a seed gives the same
output whatever the chunk size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from advforge.attacks.base import Attack
from advforge.errors import InputError

CPU_CHUNK = 64  # images per thread in an automatic CPU chunk


def batch_slices(model: nn.Module, x: torch.Tensor, chunk_size: int | None) -> list[slice]:
    """Slices of the batch dimension to process one after another."""
    n = x.shape[0]
    if chunk_size is None:
        per_example = not any(m.training for m in model.modules())
        on_cpu = x.device.type == "cpu"
        chunk_size = CPU_CHUNK * torch.get_num_threads() if per_example and on_cpu else n
    return [slice(i, i + chunk_size) for i in range(0, n, chunk_size)]


def run_in_chunks(
    fn: Callable[..., torch.Tensor],
    model: nn.Module,
    chunk_size: int | None,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    *extra: torch.Tensor,
) -> torch.Tensor:
    """``fn(x, y, target, *extra)`` chunk by chunk (``extra``: more (B, ...) tensors), joined."""
    slices = batch_slices(model, x, chunk_size)
    if len(slices) == 1:
        return fn(x, y, target, *extra)
    return torch.cat([
        fn(x[s], y[s], None if target is None else target[s], *(e[s] for e in extra))
        for s in slices
    ])


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChunkedAttack(Attack):
    """An attack whose examples are independent, so it may run chunk by chunk.

    Args:
        chunk_size: inputs per chunk; ``None`` chooses automatically (module docstring).
    """

    chunk_size: int | None = None

    def __post_init__(self) -> None:
        size = self.chunk_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InputError(f"chunk_size must be a positive integer or None, got {size!r}")
