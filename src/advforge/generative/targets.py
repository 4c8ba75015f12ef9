"""How AI-GAN draws the target class t of each training example.

Algorithm 1 samples t uniformly from the classes other than y, and so does
:class:`TargetSampler` with ``focus=0`` (the default). On some settings the generator's
shortfall sits at a few targets (fashion-mnist at eps 0.1: sneaker, ankle boot and sandal
hold most of the gap to PGD-100), while the easy targets are already near 100%. With
``focus > 0`` a share of the targets is drawn in proportion to each class's running failure
rate, so more of the generator's updates go where it still fails:

    p(t | y) = (1 - focus) * 1 / (K - 1) + focus * fail_t / sum_{j != y} fail_j,   t != y

fail_t = 1 - hits_t / seen_t, from exponentially decayed counts of the generator's own
training batches (``decay`` per update, so about 1 / (1 - decay) updates of memory). The
counts are buffers, so they are saved with the training state and a resumed run draws the
same targets. In data-parallel training each rank keeps its own counts (they only steer
sampling; every rank's are a sample of the same rates).
"""

from __future__ import annotations

import torch
from torch import nn

from advforge.errors import InputError


def sample_targets(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """t ~ uniform over the classes != y (Algorithm 1 samples t; the paper's t is never y)."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device=generator.device)
    return (y + shift.to(y.device)) % num_classes


class TargetSampler(nn.Module):
    """Training targets t != y, uniform or partly focused on the targets that still fail.

    Args:
        num_classes: K.
        focus: share of the failure-proportional draw, in [0, 1] (0 = uniform, the paper).
        decay: per-update decay of the hit and seen counts, in (0, 1).
    """

    def __init__(self, num_classes: int, focus: float = 0.0, decay: float = 0.99) -> None:
        super().__init__()
        if not 0.0 <= focus <= 1.0:
            raise InputError(f"target focus must be in [0, 1], got {focus}")
        if not 0.0 < decay < 1.0:
            raise InputError(f"target decay must be in (0, 1), got {decay}")
        self.num_classes, self.focus, self.decay = num_classes, float(focus), float(decay)
        self.register_buffer("hits", torch.zeros(num_classes))
        self.register_buffer("seen", torch.zeros(num_classes))

    def failure_rates(self) -> torch.Tensor:
        """(K,) running failure rate per target; 1 for a target not yet drawn."""
        return 1.0 - self.hits / self.seen.clamp_min(1e-12) * (self.seen > 0)

    def sample(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) targets for the labels ``y`` (B,); never equal to y."""
        if self.focus == 0.0:  # the paper's draw, bit for bit (same RNG consumption)
            return sample_targets(y, self.num_classes, generator)
        allowed = torch.ones(y.shape[0], self.num_classes, device=y.device)
        allowed[torch.arange(y.shape[0], device=y.device), y] = 0.0  # (B, K), 0 at y
        uniform = allowed / allowed.sum(1, keepdim=True)
        fail = allowed * self.failure_rates().to(y.device).clamp_min(0.0)  # (B, K)
        total = fail.sum(1, keepdim=True)
        # Where every other target already succeeds (total 0), fall back to uniform.
        hard = torch.where(total > 0, fail / total.clamp_min(1e-12), uniform)
        probs = (1.0 - self.focus) * uniform + self.focus * hard
        t = torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(1)
        return t.to(y.device)

    @torch.no_grad()
    def update(self, t: torch.Tensor, hit: torch.Tensor) -> None:
        """Fold one batch in: ``t`` (B,) the targets drawn, ``hit`` (B,) 1 where G reached t.
        A uniform sampler never reads the counts (nor saves them), so it keeps none."""
        if self.focus == 0.0:
            return
        k = self.num_classes
        self.hits.mul_(self.decay).add_(torch.bincount(t, weights=hit.float(), minlength=k)
                                        .to(self.hits))
        self.seen.mul_(self.decay).add_(torch.bincount(t, minlength=k).to(self.seen))
