"""Projected Gradient Descent (Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018), L-inf and L2.

AI-GAN Eq. 5: ``x^{t+1} = Pi_{x + S(x, eps)}(x^t + alpha * sgn(grad_x J(theta, x^t, y)))``; the
L2 form replaces ``sgn(g)`` by ``g / ||g||_2``. Every step ends with the projection onto the
eps-ball and the clamp to [0, 1]. ``loss="cw"`` ascends the negated C&W margin (AI-GAN Eq. 4 with
C&W's sign), the "PGD with C&W loss" baseline; ``restarts > 1`` keeps, per input, the restart
that succeeds (ties broken by the higher final objective).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import ClassVar

import torch
from torch import nn

from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.attacks.hyper import check_choice, check_int
from advforge.attacks.losses import ce_objective, margin
from advforge.attacks.norms import normalize_grad, project, random_init
from advforge.attacks.registry import ATTACKS
from advforge.errors import InputError
from advforge.utils.validate import check_eps


def success(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """(B,) bool: prediction differs from ``y`` (untargeted) or equals ``target``."""
    pred = logits.argmax(dim=1)
    return pred != y if target is None else pred == target


def aimed_classes(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                  n: int) -> list[torch.Tensor]:
    """The classes a multi-target attack (APGD-T, FAB-T) runs towards, one (B,) tensor per
    run: ``target`` alone when given, else the ``n`` highest non-true classes of the clean
    ``logits``, highest first (at most K - 1)."""
    if target is not None:
        return [target]
    others = logits.scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
    return list(others[:, : min(n, logits.shape[1] - 1)].T)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ProjectedGradient(ChunkedAttack):
    """Shared loop of ``pgd`` and ``pgd_l2`` (see the module docstring).

    Args:
        eps: budget of the ``norm`` ball on the [0, 1] scale.
        steps: number of gradient steps.
        step_size: alpha in Eq. 5 (L-inf: per-pixel step; L2: L2 length of each step).
        random_start: start uniformly inside the ball (Madry et al.) instead of at ``x``.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (C&W margin with confidence ``kappa``).
        kappa: C&W confidence, used with ``loss="cw"`` only.
        restarts: independent runs (each with its own random start); the best is kept.
        chunk_size: inputs per chunk (see chunking.py); None chooses automatically.
    """

    eps: float = 0.3
    steps: int = 40
    step_size: float = 0.01
    random_start: bool = True
    loss: str = "ce"
    kappa: float = 0.0
    restarts: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_eps(self.eps, "eps", upper=1.0 if self.norm == "linf" else None)
        check_int(self.steps, "steps")
        check_eps(self.step_size, "step_size")
        check_choice(self.loss, "loss", ("ce", "cw"))
        check_eps(self.kappa, "kappa", allow_zero=True)
        check_int(self.restarts, "restarts")
        if not isinstance(self.random_start, bool):
            raise InputError(f"random_start must be true or false, got {self.random_start!r}")

    def objective(self, logits: torch.Tensor, y: torch.Tensor, target) -> torch.Tensor:
        """Per-example (B,) quantity that PGD ascends."""
        if self.loss == "ce":
            return ce_objective(logits, y, target)
        return -margin(logits, y, target, self.kappa)

    def perturb(self, model, x, y, *, target, generator):
        best = best_score = best_ok = None
        for _ in range(self.restarts):
            start = x.clone()  # drawn for the whole batch: chunking does not change the output
            if self.random_start:
                start = (x + random_init(x, self.norm, self.eps, generator)).clamp_(0.0, 1.0)
            run = partial(self._run, model)
            x_adv = run_in_chunks(run, model, self.chunk_size, x, y, target, start)
            if self.restarts == 1:
                return x_adv
            with torch.no_grad():  # one extra forward per restart to rank the candidates
                logits = model(x_adv)
                score, ok = self.objective(logits, y, target), success(logits, y, target)
            if best is None:
                best, best_score, best_ok = x_adv, score, ok
                continue
            better = (ok & ~best_ok) | ((ok == best_ok) & (score > best_score))  # (B,)
            best = torch.where(better.view(-1, 1, 1, 1), x_adv, best)
            best_score = torch.where(better, score, best_score)
            best_ok = best_ok | ok
        return best

    def _run(self, model: nn.Module, x, y, target, x_adv: torch.Tensor) -> torch.Tensor:
        """``steps`` iterations of Eq. 5 from ``x_adv`` (a copy the loop may overwrite)."""
        if self.norm == "linf":  # ball and box are both boxes: their intersection is one clamp
            lo, hi = (x - self.eps).clamp_(min=0.0), (x + self.eps).clamp_(max=1.0)
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            objective = self.objective(model(x_adv), y, target).sum()
            (grad,) = torch.autograd.grad(objective, x_adv)
            x_adv = x_adv.detach()
            if self.norm == "linf":  # Eq. 5: x + alpha * sgn(g), then Pi onto ball and [0, 1]
                x_adv = torch.clamp(x_adv.add_(grad.sign_(), alpha=self.step_size), lo, hi)
            else:
                x_adv = x_adv.add_(normalize_grad(grad, "l2"), alpha=self.step_size)
                x_adv = (x + project(x_adv - x, "l2", self.eps)).clamp_(0.0, 1.0)
        return x_adv


@ATTACKS.register("pgd")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PGD(_ProjectedGradient):
    """L-inf PGD. Defaults are Madry et al.'s MNIST setting (eps 0.3, 40 steps of 0.01, random
    start); AI-GAN's CIFAR baseline is ``eps=8/255, steps=20, step_size=2/255``."""

    name: ClassVar[str] = "pgd"
    norm: ClassVar[str | None] = "linf"


@ATTACKS.register("pgd_l2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PGDL2(_ProjectedGradient):
    """L2 PGD. Defaults for MNIST-like data: eps 2.0, 40 steps of 0.1 (Madry et al.'s rule of
    thumb step = 2.5 * eps / steps, rounded down)."""

    name: ClassVar[str] = "pgd_l2"
    norm: ClassVar[str | None] = "l2"

    eps: float = 2.0
    step_size: float = 0.1
