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


def _sorted_logits(logits: torch.Tensor) -> torch.Tensor:
    return logits.sort(dim=1, descending=True).values  # z_pi1 >= z_pi2 >= ...


def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of Logits Ratio to *maximise* (Croce & Hein 2020, Eq. 6), shift- and
    scale-invariant in the logits: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3). Needs K >= 3."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    z = _sorted_logits(logits)
    return -(z_y - z_other) / (z[:, 0] - z[:, 2] + 1e-12)


def dlr_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR to *maximise* (Croce & Hein 2020, Eq. 7):
    -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2). Needs K >= 4."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    z = _sorted_logits(logits)
    return -(z_y - z_t) / (z[:, 0] - 0.5 * (z[:, 2] + z[:, 3]) + 1e-12)
