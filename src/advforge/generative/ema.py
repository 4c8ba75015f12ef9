"""An exponential moving average of the generator's weights (Polyak averaging).

GAN generators are usually served from a running average of their weights rather than from
the last iterate (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training",
ICLR 2019; BigGAN and StyleGAN do the same): the last iterate carries the noise of the
adversarial game and of the last minibatches, and the average smooths it out at no cost at
attack time (the averaged generator has the same architecture and one forward pass).

The average starts as an exact copy of the generator at its first update, so what happened to
the generator before the GAN phase (SimCLR pre-training of its encoder) is carried over, and
its decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so that early
averages do not drag the initial weights along. Batch-norm running statistics are not
averaged but copied from the generator (they already are running averages).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from advforge.errors import InputError


class WeightAverage(nn.Module):
    """A frozen copy of ``model`` whose weights follow its exponential moving average.

    Args:
        model: the network being trained (its weights are only read).
        decay: per-update decay in [0, 1); about ``1 / (1 - decay)`` updates of memory.

    The update count is a buffer, so it is saved with the training state and a resumed run
    continues the same average.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise InputError(f"weight-average decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.average = copy.deepcopy(model).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (call after each step)."""
        n = int(self.updates)
        decay = 0.0 if n == 0 else min(self.decay, (1 + n) / (10 + n))
        for avg, new in zip(self.average.parameters(), model.parameters(), strict=True):
            avg.lerp_(new, 1.0 - decay)
        for avg, new in zip(self.average.buffers(), model.buffers(), strict=True):
            avg.copy_(new)
        self.updates += 1
