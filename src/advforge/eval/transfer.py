"""Transfer attacks: adversarial examples crafted on one model (a substitute) and judged on
another (the target), with the accounting of where success is lost.

Used for AI-GAN's Table IV baselines (Bai et al., Sec. V-D): FGSM, PGD and C&W crafted on the
distilled local model and carried over to the query-only target.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from advforge.eval.evaluate import evaluate


def _rate(hits: torch.Tensor, among: torch.Tensor) -> float:
    return float(hits.sum() / among.sum().clamp_min(1))


def transfer_success(
    attack: Any, source: nn.Module, target: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
    targeted: bool = True, generator: torch.Generator | None = None,
    attack_name: str | None = None,
) -> dict[str, Any]:
    """Craft with ``attack`` on ``source`` and judge on ``target``.

    Examples are crafted over the inputs ``source`` classifies correctly (targeted: every
    (input, target != label) pair) and counted over those ``target`` classifies correctly too.

    Returns:
        Targeted: ``success`` (the target predicts the target class), ``per_target``,
        ``pairs``, ``seconds``, ``crafted_on_local`` (success on ``source`` by the usual
        rule), ``success_on_local`` (success on ``source`` over the same pairs) and
        ``target_hit_given_local_hit``. Untargeted (``targeted=False``): ``success`` (the
        target misclassifies), ``images``, ``seconds`` and ``crafted_on_local``.
    """
    result = evaluate(attack, source, x, y, targets="all" if targeted else None,
                      generator=generator, attack_name=attack_name, keep_adversarial=True)
    device = x.device
    index = result.source_index.to(device)
    x_adv = result.x_adv.to(device)
    with torch.no_grad():
        keep = (target(x).argmax(1) == y)[index]
        pred = target(x_adv).argmax(1)
    if not targeted:
        hit = (pred != y[index]) & keep
        return {"success": _rate(hit, keep), "images": int(keep.sum()),
                "seconds": result.seconds, "crafted_on_local": result.success_rate}
    t = result.target.to(device)
    hit = (pred == t) & keep
    with torch.no_grad():  # where success is lost: on the source itself, or in transfer
        hit_local = (source(x_adv).argmax(1) == t) & keep
    per_target = {int(c): float(hit[(t == c) & keep].float().mean())
                  for c in t[keep].unique().tolist()}
    return {"success": _rate(hit, keep), "per_target": per_target, "pairs": int(keep.sum()),
            "seconds": result.seconds, "crafted_on_local": result.success_rate,
            "success_on_local": _rate(hit_local, keep),
            "target_hit_given_local_hit": _rate(hit & hit_local, hit_local)}
