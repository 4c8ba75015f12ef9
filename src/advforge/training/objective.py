"""What one training step of a classifier does: the plug-in point of :func:`training.fit`.

Standard training, adversarial training and the adversarial-networks minimax differ only in
what happens to a mini-batch; the epoch loop, sharding, resumable state and ``torchrun``
support are shared. An :class:`Objective` owns that per-batch step (loss, backward, optimiser
step) and any state of its own (a noise generator and its optimiser), which ``fit`` saves in
the same resumable state file as the classifier's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advforge.utils.distributed import DistInfo


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step of cross-entropy on a batch.

    Args:
        model: classifier in training mode (possibly DDP-wrapped).
        optimizer: its optimiser.
        x: (B, C, H, W) images in [0, 1] on the model's device.
        y: (B,) labels.

    Returns:
        ``(loss_sum, correct)``: detached 0-dim tensors, the summed loss over the batch and the
        number of correct predictions (sums, so epoch means weight every image equally).
    """
    logits = model(x)  # (B, K)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach() * y.numel(), (logits.detach().argmax(1) == y).sum()


@dataclasses.dataclass
class StepContext:
    """Where a training step is.

    Attributes:
        model: the classifier to train (wrapped in DistributedDataParallel under torchrun):
            the forward pass that feeds ``backward`` goes through it.
        module: the same classifier unwrapped: attacks, which only need input gradients,
            run on it so DDP never waits for a backward that does not come.
        optimizer: the classifier's optimiser.
        epoch: 0-based epoch.
        batch: 0-based index of the mini-batch within the epoch.
        batches: mini-batches per epoch on this rank.
        generator: the epoch's RNG on the data's device (random starts, noise draws), seeded
            from (seed, epoch, rank) so a resumed run repeats the same draws.
        info: the process group (rank, world size, device).
    """

    model: nn.Module
    module: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int
    batch: int
    batches: int
    generator: torch.Generator
    info: DistInfo

    @property
    def progress(self) -> float:
        """Epochs done so far as a real number (2.5 = half-way through the third epoch)."""
        return self.epoch + self.batch / max(1, self.batches)


class Objective:
    """Standard training: one step of cross-entropy on the clean batch.

    Subclasses override :meth:`step`; those with state of their own also override
    :meth:`state_tensors` / :meth:`load_state_tensors` (saved by ``fit`` after each epoch) and
    :meth:`setup` (called once, before the first epoch, with the process group).
    """

    name = "standard"

    def setup(self, module: nn.Module, info: DistInfo) -> None:
        """Build any state of the objective's own on ``info.device``."""

    def step(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on one mini-batch.

        Args:
            ctx: where the step is, and the model and optimiser.
            x: (B, C, H, W) images in [0, 1] (already augmented).
            y: (B,) labels.

        Returns:
            ``(loss_sum, correct)``: detached 0-dim tensors, the summed training loss over the
            batch and the number of its images the model classified correctly in the step
            (the clean ones; the adversarial ones for a purely adversarial objective).
        """
        return train_step(ctx.model, ctx.optimizer, x, y)

    def to_dict(self) -> dict[str, Any]:
        """The objective's settings (recorded in the checkpoint; a resumed run must match)."""
        return {"name": self.name}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors to save with the resumable state."""
        return {}

    def state_doc(self) -> dict[str, Any]:
        """JSON-serialisable state to save beside :meth:`state_tensors`."""
        return {}

    def load_state(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        """Restore what :meth:`state_tensors` and :meth:`state_doc` returned."""
