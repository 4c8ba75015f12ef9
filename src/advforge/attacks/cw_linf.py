"""Carlini-Wagner L-inf attack (Carlini & Wagner, S&P 2017, Section V-C), capped at ``eps``.

AI-GAN Eq. 3-4 write the objective ``minimise c * g(x + delta) + ||delta||_inf`` with ``g`` the
C&W margin. Gradient descent on ``||delta||_inf`` itself fails: its gradient touches one pixel at a
time and oscillates between the two largest (C&W, Section V-C). We therefore implement the
authors' own remedy, the variant their reference code (``li_attack.py``) runs:

* the norm is replaced by the penalty ``sum_i max(|delta_i| - tau, 0)``;
* for a given ``tau``, minimise ``c * g + penalty`` with Adam; an attempt that finds no valid
  solution (adversarial with ``||delta||_inf <= tau``) within ``steps`` iterations doubles ``c``
  (``const_factor``), up to ``largest_const``;
* each valid solution sets ``tau = decrease_factor * min(tau, ||delta||_inf)`` and the search
  continues from it with a fresh Adam state; it ends when ``tau < 1/256``.

Departures, and why: (1) ``tau`` starts at ``eps`` and every step projects ``delta`` onto the
eps-ball intersected with ``[0, 1] - x``, so the attack obeys an L-inf budget like PGD (the
reference has no budget and starts at ``tau = 1``). (2) ``delta`` is optimised directly with that
projection instead of through tanh: a tanh variable for a pixel at 0 (most MNIST background)
starts where the gradient vanishes and needs hundreds of steps to move. (3) The per-input loop of
the reference runs for the whole batch at once, each input with its own ``tau``, ``c`` and Adam
step count, within a shared budget of ``max_iterations``. Inputs never fooled come back unchanged.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import ClassVar

import torch
from torch import nn

from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.attacks.cw_l2 import adam_step
from advforge.attacks.hyper import check_int, check_range
from advforge.attacks.losses import margin
from advforge.attacks.registry import ATTACKS
from advforge.utils.validate import check_eps

TAU_MIN = 1 / 256  # the reference stops shrinking tau below one grey level


@ATTACKS.register("cw_linf")
@dataclasses.dataclass(frozen=True, kw_only=True)
class CarliniWagnerLinf(ChunkedAttack):
    """Carlini-Wagner L-inf with a hard ``eps`` cap (module docstring).

    Args:
        eps: L-inf budget on the [0, 1] scale; also the first ``tau``.
        kappa: confidence (AI-GAN Eq. 4).
        steps: Adam iterations per attempt (one ``tau`` and one ``c``) before ``c`` grows.
        max_iterations: total iterations for the batch.
        lr: Adam learning rate on ``delta`` (pixel units).
        initial_const: the first ``c``.
        largest_const: an input whose ``c`` exceeds this gives up (keeps its best so far).
        const_factor: ``c`` multiplier after a failed attempt.
        decrease_factor: ``tau`` multiplier after a success.
        chunk_size: inputs per chunk (see chunking.py); None chooses automatically.
    """

    name: ClassVar[str] = "cw_linf"
    norm: ClassVar[str | None] = "linf"

    eps: float = 0.3
    kappa: float = 0.0
    steps: int = 100
    max_iterations: int = 500
    lr: float = 0.01
    initial_const: float = 1.0
    largest_const: float = 20.0
    const_factor: float = 2.0
    decrease_factor: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        check_eps(self.eps, "eps", upper=1.0)
        check_eps(self.kappa, "kappa", allow_zero=True)
        check_int(self.steps, "steps")
        check_int(self.max_iterations, "max_iterations")
        check_eps(self.lr, "lr")
        check_eps(self.initial_const, "initial_const")
        check_eps(self.largest_const, "largest_const")
        check_range(self.const_factor, "const_factor", 1.0, float("inf"))
        check_range(self.decrease_factor, "decrease_factor", 0.0, 1.0)

    def perturb(self, model, x, y, *, target, generator):
        return run_in_chunks(partial(self._attack, model), model, self.chunk_size, x, y, target)

    def _attack(self, model: nn.Module, x, y, target) -> torch.Tensor:
        """The tau/c schedule for one chunk; returns its best adversarial images."""
        lo, hi = (-x).clamp(min=-self.eps), (1 - x).clamp(max=self.eps)  # delta's box
        delta = torch.zeros_like(x)  # (B, C, H, W); the reference starts at the image
        m, v = torch.zeros_like(x), torch.zeros_like(x)  # Adam moments
        state = _Schedule.start(x.shape[0], self.eps, self.initial_const, x)
        best_linf = torch.full_like(state.tau, float("inf"))
        best_adv = x.clone()
        for _ in range(self.max_iterations):
            delta.requires_grad_(True)
            gap = margin(model(x + delta), y, target, kappa=float("inf"))  # (B,) unclamped
            excess = (delta.abs() - state.tau.view(-1, 1, 1, 1)).clamp_min(0)  # tau-penalty
            loss = state.c * (gap + self.kappa).clamp_min(0) + excess.flatten(1).sum(1)  # Eq. 3
            (grad,) = torch.autograd.grad(loss.sum(), delta)
            with torch.no_grad():
                delta = delta.detach()
                linf = delta.abs().flatten(1).amax(dim=1)  # (B,)
                ok = gap < -self.kappa
                better = ok & (linf < best_linf)
                best_linf = torch.where(better, linf, best_linf)
                best_adv[better] = (x[better] + delta[better]).clamp_(0.0, 1.0)
                active = state.advance(self, ok, linf)
                if state.done.all():
                    break
                a = active.view(-1, 1, 1, 1).to(x.dtype)
                step = adam_step(m, v, grad, state.t.clamp_min(1), self.lr) * a
                m.mul_(a)  # paused inputs restart Adam when they resume
                v.mul_(a)
                delta = torch.clamp(delta - step, lo, hi)  # Pi onto the eps-ball and [0, 1] - x
        return best_adv


@dataclasses.dataclass
class _Schedule:
    """Per-input state of the reference code's outer loops: tau, c, and iteration counters."""

    tau: torch.Tensor  # (B,) current penalty threshold
    c: torch.Tensor  # (B,) current constant
    tries: torch.Tensor  # (B,) iterations spent on the current (tau, c)
    t: torch.Tensor  # (B,) Adam step count since the last restart
    done: torch.Tensor  # (B,) bool: tau below TAU_MIN or c above largest_const

    @classmethod
    def start(cls, batch: int, eps: float, const: float, like: torch.Tensor) -> _Schedule:
        tau = torch.full((batch,), float(eps), device=like.device, dtype=like.dtype)
        zeros = torch.zeros_like(tau)
        done = torch.zeros(batch, dtype=torch.bool, device=like.device)
        return cls(tau, torch.full_like(tau, const), zeros, zeros.clone(), done)

    def advance(self, hp: CarliniWagnerLinf, ok: torch.Tensor, linf: torch.Tensor) -> torch.Tensor:
        """Apply one iteration's outcome; return the (B,) mask of inputs Adam moves now."""
        # A valid solution tightens tau and restarts Adam from it (reference code).
        valid = ok & (linf <= self.tau) & ~self.done
        self.tau = torch.where(valid, hp.decrease_factor * torch.minimum(self.tau, linf), self.tau)
        self.tries = torch.where(valid, 0.0, self.tries + 1)
        stalled = self.tries >= hp.steps  # no valid solution for this (tau, c): raise c
        self.c = torch.where(stalled, self.c * hp.const_factor, self.c)
        self.tries = torch.where(stalled, 0.0, self.tries)
        self.done |= (self.c > hp.largest_const) | (self.tau < TAU_MIN)
        active = ~(self.done | valid)
        self.t = torch.where(active, self.t + 1, 0.0)
        return active
