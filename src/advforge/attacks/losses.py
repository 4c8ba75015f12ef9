"""Losses that attacks ascend. Each returns a per-example (B,) tensor."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ce_objective(
    logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy objective to *maximise*: CE(y) untargeted, -CE(target) targeted."""
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def margin(
    logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, kappa: float = 0.0
) -> torch.Tensor:
    """Carlini-Wagner margin f6 on logits Z, the quantity an attack *minimises* (>= -kappa):

    untargeted: max(Z_y - max_{i != y} Z_i, -kappa)
    targeted:   max(max_{i != t} Z_i - Z_t, -kappa)

    (AI-GAN Eq. 4 prints the untargeted term with its sign reversed; this is C&W's original.)
    """
    cls = y if target is None else target
    one_hot = F.one_hot(cls, logits.shape[1]).bool()
    z_cls = logits.gather(1, cls[:, None]).squeeze(1)
    z_other = logits.masked_fill(one_hot, float("-inf")).amax(dim=1)
    gap = z_cls - z_other if target is None else z_other - z_cls
    return gap.clamp_min(-kappa)
