"""Data parallelism for the GAN loops (docs/contract.md, Scale): the same code in one process or in
``torchrun --nproc_per_node=N`` ranks.

The GAN steps take gradients with ``torch.autograd.grad`` on one network at a time (so the
target and the other network never receive a ``.grad``), which DistributedDataParallel's
backward hooks do not see. The loops therefore do by hand what DDP does:

* every rank draws the same shuffled order (the trainer's RNG is seeded alike) and keeps its
  equal share of each global batch (:func:`shard_batch`);
* gradients are averaged over ranks before every optimizer step (:func:`average_gradients`),
  so the ranks' weights stay identical;
* batch-norm running statistics, which each rank accumulates on its own shard, are replaced
  by rank 0's after every epoch (:func:`broadcast_buffers`), as DDP's ``broadcast_buffers``;
* only rank 0 writes files (:func:`is_main`).

Without an initialised process group every function is the identity.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on the process that writes files and logs (rank 0)."""
    return world()[0] == 0


def shard_batch(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """This rank's rows of a global batch: an equal share per rank, the remainder dropped so
    every rank takes the same number of steps. None when the share is under 2 rows (batch norm
    needs two); every rank sees the same global batch, so all skip it together."""
    rank, size = world()
    if size == 1:
        return xb, yb
    per = xb.shape[0] // size
    if per < 2:
        return None
    rows = slice(rank * per, (rank + 1) * per)
    return xb[rows], yb[rows]


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Replace each ``p.grad`` by its mean over ranks (one flat all-reduce)."""
    rank, size = world()
    if size == 1:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= size
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def sum_over_ranks(value: float) -> float:
    """``value`` summed over ranks (e.g. target queries, each rank counting its own)."""
    if world()[1] == 1:
        return value
    # NCCL reduces only CUDA tensors (the rank's current device); gloo takes CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def broadcast_buffers(*modules: nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank."""
    if world()[1] == 1:
        return
    for module in modules:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world()[1] > 1:
        dist.barrier()
