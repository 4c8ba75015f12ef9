"""The misclassification losses f0 of ``fi_pso`` (Shi, Shu, Zhu and Chen 2020, Sec. 2.3) and the
check of whether an adversarial image meets the requirements it was made to.

Write p for the softmax probabilities, y for the true class, t for the target, and
``p_wrong = max_{k != y} p_k``, the probability of the most likely wrong class. The paper's four
losses, each written both as printed and in the equivalent closed form used here:

* m only:        |p_(1) - p_(2)| if y_(1) = y, else 0        = max(p_y - p_wrong, 0)
* P_err:         |p_(2) - P_err| if y_(1) = y, else |p_(1) - P_err|  = |p_wrong - P_err|
* y_target:      |p_(1) - p_t| if y_(1) != t, else 0          = max(max_{k != t} p_k - p_t, 0)
* P_err and t:   |p_t - P_err|, the paper's "equivalent" form. Its piecewise form
  (|p_(1) - p_t| while y_(1) != t) tends to 0 on the t decision boundary, where p_t is far from
  P_err, so it would reward stopping at the boundary; the two agree only in their minimiser.

So the paper's *misclassification probability* is ``p_wrong`` (``p_t`` with a target): the
probability the model gives the wrong class, not ``1 - p_y``. P_err >= 0.5 makes that class the
prediction once ``p_wrong = P_err``.

Scale (``scale="log"``, the default for the two losses without P_err). The gaps above are
differences of probabilities, which are flat where the search starts on a confident image: a
target of probability 1e-6 gains nothing visible from a move that multiplies it by 100, and the
norm term b ||omega|| (about 0.005 over 784 pixels) outweighs every such gain, so the swarm
settles at omega = 0. The same gaps between log-probabilities,
``max(log p_y - log p_wrong, 0)`` and ``max(log max_{k != t} p_k - log p_t, 0)``, are zero on
exactly the same inputs (the requirement holds) and keep every such move visible. On the
shipped Model B (benchmarks/fi_pso_tables.py, Fig. 4's targets 0, 2 and 4 over the pixels with
FI >= 0.1, N_p = 200, T = 100) the log gap met every target on 100 of 100 mnist5k test digits,
the probability gap on 12%, 74% and 18% of 50. ``scale="prob"`` keeps the paper's gaps. A
prescribed P_err is a probability, so |p - P_err| stays in probabilities either way.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from advforge.eval.metrics import L0_TOLERANCE

# |achieved - P_err| <= P_TOL counts as meeting a prescribed probability: the resolution at
# which the paper reports its Fig. 4 probabilities (0.5, 0.75, 0.99). Where P_err is reachable
# the search lands well inside it (within 5e-5 on the tests' linear model).
P_TOL = 0.01


def _top_other(probs: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """max_{k != cls} p_k over the last dim; ``cls`` broadcasts against probs[..., 0]."""
    mask = torch.nn.functional.one_hot(cls, probs.shape[-1]).bool()
    return probs.masked_fill(mask, float("-inf")).amax(dim=-1)


def misclassification_probability(probs: torch.Tensor, y: torch.Tensor,
                                  target: torch.Tensor | None) -> torch.Tensor:
    """The probability the requirement P_err refers to: p_target, else max_{k != y} p_k.

    Args:
        probs: (..., K) probabilities; y, target: (...) classes.
    """
    if target is not None:
        return probs.gather(-1, target[..., None]).squeeze(-1)
    return _top_other(probs, y)


SCALES = ("log", "prob")


def misclassification_loss(probs: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                           p_err: float | None, scale: str = "prob") -> torch.Tensor:
    """f0 of Sec. 2.3 for the four requirement sets (module docstring), shape probs[..., 0];
    ``scale="log"`` takes the gaps of the m-only and target losses between log-probabilities."""
    p_miss = misclassification_probability(probs, y, target)
    if p_err is not None:
        return (p_miss - p_err).abs()
    ahead = probs.gather(-1, y[..., None]).squeeze(-1) if target is None else _top_other(
        probs, target)
    if scale == "log":
        tiny = torch.finfo(probs.dtype).tiny  # log of an underflowed probability stays finite
        return (ahead.clamp_min(tiny).log() - p_miss.clamp_min(tiny).log()).clamp_min(0)
    return (ahead - p_miss).clamp_min(0)


@dataclasses.dataclass
class Requirements:
    """Per image, whether an adversarial example meets what it was asked for.

    Attributes:
        pred: (B,) prediction on x_adv.
        misclassified: (B,) pred != y.
        target_reached: (B,) pred == target, or None without a target.
        probability: (B,) the achieved misclassification probability (p_target with a target,
            else max_{k != y} p_k).
        p_err: the prescribed probability, or None.
        p_err_met: (B,) |probability - p_err| <= p_tol, or None without p_err.
        p_tol: the tolerance used.
        l0: (B,) input components changed (|delta| > 1e-6, as evaluation counts L0).
        pixels: the L0 budget m, or None for no budget.
        l0_met: (B,) l0 <= pixels (all True without a budget).
        met: (B,) every stated requirement holds (misclassified, target, P_err, L0).
    """

    pred: torch.Tensor
    misclassified: torch.Tensor
    target_reached: torch.Tensor | None
    probability: torch.Tensor
    p_err: float | None
    p_err_met: torch.Tensor | None
    p_tol: float
    l0: torch.Tensor
    pixels: int | None
    l0_met: torch.Tensor
    met: torch.Tensor

    def summary(self) -> dict[str, float | int | None]:
        """Counts and rates over the batch, JSON-friendly."""
        n = int(self.pred.numel())

        def rate(t: torch.Tensor | None) -> float | None:
            return None if t is None or n == 0 else float(t.float().mean())

        return {"n": n, "met": rate(self.met), "misclassified": rate(self.misclassified),
                "target_reached": rate(self.target_reached), "p_err": self.p_err,
                "p_err_met": rate(self.p_err_met), "p_tol": self.p_tol, "pixels": self.pixels,
                "l0_met": rate(self.l0_met),
                "probability_mean": float(self.probability.mean()) if n else None}


def requirements_met(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
                     *, target: torch.Tensor | int | None = None, p_err: float | None = None,
                     pixels: int | None = None, p_tol: float = P_TOL) -> Requirements:
    """Check each customised requirement of Algorithm 1 on ``x_adv`` (one no-grad forward).

    Untargeted, the example must be misclassified; with ``target``, predicted as the target;
    with ``p_err``, its misclassification probability within ``p_tol`` of ``p_err``; with
    ``pixels``, at most that many input components changed.
    """
    with torch.no_grad():
        probs = model(x_adv).softmax(dim=1)  # (B, K)
    y = y.to(probs.device)
    if isinstance(target, int):
        target = torch.full_like(y, target)
    pred = probs.argmax(dim=1)
    prob = misclassification_probability(probs, y, target)
    l0 = ((x_adv - x).flatten(1).abs() > L0_TOLERANCE).sum(dim=1)
    l0_met = l0 <= pixels if pixels is not None else torch.ones_like(l0, dtype=torch.bool)
    reached = None if target is None else pred == target
    p_met = None if p_err is None else (prob - p_err).abs() <= p_tol
    met = (pred != y) & l0_met
    for extra in (reached, p_met):
        met = met if extra is None else met & extra
    return Requirements(pred=pred, misclassified=pred != y, target_reached=reached,
                        probability=prob, p_err=p_err, p_err_met=p_met, p_tol=p_tol, l0=l0,
                        pixels=pixels, l0_met=l0_met, met=met)
