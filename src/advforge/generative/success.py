"""A trained generator's targeted success over every (held-out input, target) pair."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from advforge.eval.runner import predict
from advforge.utils.modes import model_mode

BATCH = 500  # images per classifier call

@torch.no_grad()
def heldout_success(
    forge: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    targets: list[int] | None = None,
) -> dict[str, Any]:
    """Targeted success over every (input, target != y) pair of a held-out set, counted over
    inputs ``model`` classifies correctly (the package's success rule).

    Args:
        forge: ``forge(x, t) -> x_adv``.
        targets: the target classes to try (all classes when None).

    Returns:
        ``{"success": overall rate, "per_target": {t: rate}, "pairs": n, "clean_acc": a}``.
    """
    with model_mode(model, "eval"):  # restored afterwards
        keep = predict(model, x, BATCH)[0] == y
    x, y = x[keep], y[keep]
    per_target, hits, pairs = {}, 0, 0
    for t in targets if targets is not None else range(num_classes):
        m = y != t
        if not m.any():
            continue
        xs, tt = x[m], torch.full_like(y[m], t)
        x_adv = torch.cat([forge(xs[i : i + 250], tt[i : i + 250])
                           for i in range(0, xs.shape[0], 250)])
        with model_mode(model, "eval"):
            ok = int((predict(model, x_adv, BATCH)[0] == t).sum())
        per_target[int(t)] = ok / int(m.sum())
        hits, pairs = hits + ok, pairs + int(m.sum())
    return {"success": hits / max(pairs, 1), "per_target": per_target, "pairs": pairs,
            "clean_acc": float(keep.float().mean())}
