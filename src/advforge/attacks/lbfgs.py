"""Box-constrained L-BFGS attack (Szegedy et al., "Intriguing properties of neural networks",
ICLR 2014, Section 4.1), the baseline AE4DNN compares against (AE4DNN Section II).

For a constant ``c`` it solves ``minimise c * ||x' - x||_2^2 + loss_f(x', t)  s.t. x' in [0, 1]^d``
with scipy's L-BFGS-B, where ``loss_f`` is the cross-entropy towards the target ``t``
(Szegedy et al.'s ``loss_f``). Untargeted (no target), ``loss_f`` is the log-odds of the true
class, ``log p_y - log(1 - p_y) = Z_y - logsumexp_{i != y} Z_i``: it pushes the true class down
like ``-CE(x', y)`` would, but ``-CE``'s gradient vanishes on confidently classified inputs and
L-BFGS-B would stop at once on its gradient tolerance. The squared norm (Szegedy et al. write
``c|r|``; AE4DNN prints the plain L2 norm) is used because it is differentiable at ``x' = x``,
where the search starts.

Search over ``c``: Szegedy et al. line-search ``c`` for the smallest perturbation that still
succeeds. A larger ``c`` weighs the distance more, so per input: a success records the image (if
its L2 is the smallest so far) and tries a larger ``c`` (x10 until a failure brackets it), a
failure tries a smaller one (/10 until bracketed); once bracketed, the search bisects in log
space. Inputs never fooled come back unchanged.

Batching: the per-input objectives are separable, so one L-BFGS-B run minimises their sum over
the whole flattened batch (gradients from torch). This shares the line search and the curvature
memory across inputs, which is cheaper than one run per input and reaches the same minimisers
when it converges. Arrays go to NumPy (float64, as scipy requires) and back with
``torch.as_tensor(..., device=x.device)``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import Bounds, minimize
from torch import nn

from advforge.attacks.base import Attack
from advforge.attacks.hyper import check_int
from advforge.attacks.pgd import success
from advforge.attacks.registry import ATTACKS
from advforge.utils.validate import check_eps


@ATTACKS.register("lbfgs")
@dataclasses.dataclass(frozen=True, kw_only=True)
class LBFGS(Attack):
    """Box-constrained L-BFGS with a per-input search over ``c`` (module docstring).

    Args:
        initial_const: the first ``c``.
        search_steps: number of constants tried per input.
        max_iter: L-BFGS-B iterations per constant.
    """

    name: ClassVar[str] = "lbfgs"
    norm: ClassVar[str | None] = None

    initial_const: float = 0.1
    search_steps: int = 6
    max_iter: int = 50

    def __post_init__(self) -> None:
        check_eps(self.initial_const, "initial_const")
        check_int(self.search_steps, "search_steps")
        check_int(self.max_iter, "max_iter")

    def perturb(self, model, x, y, *, target, generator):
        c = torch.full((x.shape[0],), float(self.initial_const), device=x.device)
        lo_c, hi_c = torch.zeros_like(c), torch.full_like(c, float("inf"))
        best_l2 = torch.full_like(c, float("inf"))
        best_adv = x.clone()
        for _ in range(self.search_steps):
            x_opt = self._solve(model, x, y, target, c)
            with torch.no_grad():
                ok = success(model(x_opt), y, target)  # (B,)
            l2 = (x_opt - x).flatten(1).norm(dim=1).to(c.dtype)
            better = ok & (l2 < best_l2)
            best_l2 = torch.where(better, l2, best_l2)
            best_adv[better] = x_opt[better]
            # Success -> c is feasible, try larger; failure -> try smaller; bisect once bracketed.
            lo_c = torch.where(ok, torch.maximum(lo_c, c), lo_c)
            hi_c = torch.where(ok, hi_c, torch.minimum(hi_c, c))
            bracketed = (lo_c > 0) & torch.isfinite(hi_c)
            c = torch.where(bracketed, (lo_c * hi_c).sqrt(), torch.where(ok, c * 10, c / 10))
        return best_adv

    def _solve(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        c: torch.Tensor,
    ) -> torch.Tensor:
        """One L-BFGS-B run on the flattened batch for per-input constants ``c`` (B,)."""
        shape, dtype = x.shape, x.dtype
        weight = c.to(dtype).view(-1, 1, 1, 1)

        def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
            x_adv = torch.as_tensor(z, device=x.device).view(shape).to(dtype).requires_grad_(True)
            logits = model(x_adv)  # (B, K)
            if target is None:  # log-odds of the true class (module docstring)
                others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
                loss_f = (logits.gather(1, y[:, None]).squeeze(1) - others.logsumexp(1)).sum()
            else:
                loss_f = F.cross_entropy(logits, target, reduction="sum")
            total = (weight * (x_adv - x).pow(2)).sum() + loss_f  # sum of separable objectives
            (grad,) = torch.autograd.grad(total, x_adv)
            return total.item(), grad.cpu().double().numpy().ravel()

        z0 = x.cpu().double().numpy().ravel()
        result = minimize(
            objective,
            z0,
            jac=True,
            method="L-BFGS-B",
            bounds=Bounds(np.zeros_like(z0), np.ones_like(z0)),
            options={"maxiter": self.max_iter, "gtol": 1e-10},  # stop on maxiter or ftol
        )
        return torch.as_tensor(result.x, device=x.device).view(shape).to(dtype).clamp_(0.0, 1.0)
