"""DistributedDataParallel helpers: every training loop runs unchanged in one process or under
``torchrun --nproc_per_node=N`` (docs/cli.md).

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them, joins the process group (gloo on the CPU, nccl on CUDA)
and returns a :class:`DistInfo`. Without those variables it returns a single-process info and
touches nothing, so library code can call it unconditionally.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the CUDA device).
        device: the device this rank computes on.
        owns_group: True when :func:`init_distributed` created the process group, so
            :func:`cleanup_distributed` should destroy it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and logs progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device | str = "cpu") -> DistInfo:
    """Join the torchrun process group if the environment asks for one.

    Args:
        device: the device the caller chose; under torchrun a CUDA device becomes
            ``cuda:LOCAL_RANK`` so each rank gets its own GPU.

    Returns:
        A :class:`DistInfo`; ``world_size == 1`` when not launched by torchrun.
    """
    device = torch.device(device)
    if dist.is_available() and dist.is_initialized():  # the caller set the group up
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local, _rank_device(device, local), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = _rank_device(device, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    log.info("rank %d/%d joined the %s process group on %s", rank, world, backend, device)
    return DistInfo(rank, world, local, device, owns_group=True)


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def _rank_device(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over ranks (a copy; identity in a single process)."""
    t = t.clone()
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.distributed:
        dist.barrier()


def shard_indices(indices: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's share of ``indices``: every ``world_size``-th element from ``rank``.

    The tail is dropped so all ranks get the same count (DDP needs the same number of steps on
    every rank). With a global batch ``B`` and per-rank batches ``B / world_size``, the ranks'
    i-th batches together are exactly ``indices[i*B:(i+1)*B]``, the batch one process would
    see, so averaged DDP gradients match single-process training.
    """
    n = (indices.numel() // info.world_size) * info.world_size
    return indices[info.rank : n : info.world_size]
