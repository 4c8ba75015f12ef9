"""Fast Gradient Sign Method and its least-likely-class step.

* ``fgsm``: Goodfellow et al., "Explaining and Harnessing Adversarial Examples" (ICLR 2015);
  AI-GAN Eq. 2: ``delta = eps * sign(grad_x J(theta, x, y))``. Targeted (Kurakin et al. 2017):
  ``x_adv = x - eps * sign(grad_x J(theta, x, t))``.
* ``fgsm_ll``: the "step l.l." attack of Kurakin et al. (2017), used by Tramer et al.'s ensemble
  adversarial training: ``x_adv = x - eps * sign(grad_x J(theta, x, y_ll))`` with
  ``y_ll = argmin_k f_k(x)`` the least-likely class under the model.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import ClassVar

import torch
from torch import nn

from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.attacks.losses import ce_objective
from advforge.attacks.registry import ATTACKS
from advforge.utils.validate import check_eps


def signed_gradient_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """One FGSM step of size ``eps`` ascending :func:`ce_objective`, clamped to [0, 1].

    ``target=None`` ascends CE(y) (Eq. 2); a target descends CE(target).
    """
    x_var = x.detach().requires_grad_(True)  # (B, C, H, W), a fresh leaf: grads w.r.t. x only
    objective = ce_objective(model(x_var), y, target).sum()  # sum: per-example grads unscaled
    (grad,) = torch.autograd.grad(objective, x_var)
    return (x + eps * grad.sign()).clamp_(0.0, 1.0)  # |delta|_inf = eps already: clamp is all


@ATTACKS.register("fgsm")
@dataclasses.dataclass(frozen=True, kw_only=True)
class FGSM(ChunkedAttack):
    """Single-step L-inf attack (AI-GAN Eq. 2).

    Args:
        eps: L-inf budget on the [0, 1] scale (0.3 for MNIST-like data, 8/255 for CIFAR).
        chunk_size: inputs per chunk (see chunking.py); None chooses automatically.
    """

    name: ClassVar[str] = "fgsm"
    norm: ClassVar[str | None] = "linf"

    eps: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_eps(self.eps, "eps", upper=1.0)

    def perturb(self, model, x, y, *, target, generator):
        step = partial(signed_gradient_step, model, eps=self.eps)
        return run_in_chunks(step, model, self.chunk_size, x, y, target)


@ATTACKS.register("fgsm_ll")
@dataclasses.dataclass(frozen=True, kw_only=True)
class FGSMLeastLikely(FGSM):
    """Step towards the least-likely class (Kurakin et al. 2017, Tramer et al. 2018).

    The least-likely class ``y_ll`` of the clean input is the target of one targeted FGSM
    step. The attack picks that target itself, so it refuses ``target=`` (a given target
    would make it plain targeted ``fgsm`` under another name).

    Args:
        eps: L-inf budget on the [0, 1] scale.
        chunk_size: inputs per chunk (see chunking.py); None chooses automatically.
    """

    name: ClassVar[str] = "fgsm_ll"
    takes_target: ClassVar[bool] = False

    def perturb(self, model, x, y, *, target, generator):
        return run_in_chunks(partial(self._step, model), model, self.chunk_size, x, y, None)

    def _step(self, model: nn.Module, x, y, target) -> torch.Tensor:
        x_var = x.detach().requires_grad_(True)
        logits = model(x_var)  # (B, K); one forward gives both y_ll and the gradient
        y_ll = logits.detach().argmin(dim=1)
        (grad,) = torch.autograd.grad(ce_objective(logits, y, y_ll).sum(), x_var)
        return (x + self.eps * grad.sign()).clamp_(0.0, 1.0)
