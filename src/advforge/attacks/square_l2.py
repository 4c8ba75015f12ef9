"""Square Attack, L2 (Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a
query-efficient black-box adversarial attack via random search", ECCV 2020, Sec. 3.2).

Score-based and gradient-free like the L-inf version (square.py): every forward runs under
``torch.no_grad``, and a proposal is kept only if it lowers the loss (untargeted: the margin
``z_y - max_{j != y} z_j``; targeted: the cross-entropy of the target) or fools the model.
The L2 proposals (Algorithm 3 and the authors' code):

* the start tiles the image with squares of side ``min(H, W) // 5``, each holding the
  pseudo-Gaussian pattern below with a random sign per channel, scaled to L2 norm eps;
* the pattern of side ``s``: the top ``s // 2`` rows hold nested centred rectangles, the k-th
  weighted ``1 / (k + 1)^2``; the bottom rows hold the same with a minus sign; at random it is
  transposed; unit L2 norm;
* each iteration draws two windows of side ``s = round(sqrt(p * H * W))`` (odd, at least 3,
  at most the image). The first window gets a fresh pattern (random sign per channel) plus its
  old content, rescaled so that it holds the mass of both windows and whatever budget is
  unused; the second is zeroed. As in the authors' code, the windows are shared by the batch;
* ``p`` follows the L-inf schedule (``p_init`` halved at iterations 10, 50, 200, ...).

Every candidate is ``clamp(x + eps * delta / ||delta||_2, 0, 1)``: on the sphere before the
clamp, which can only shorten it, so ``x_adv`` stays in the ball.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from advforge.attacks.hyper import check_int, check_range
from advforge.attacks.registry import ATTACKS
from advforge.attacks.square import Square, _signs
from advforge.errors import InputError
from advforge.utils.validate import check_eps


def rectangles(rows: int, cols: int) -> torch.Tensor:
    """(rows, cols): nested rectangles around the centre, the k-th adding ``1 / (k + 1)^2``,
    unit L2 norm (the authors' ``eta_rectangles``)."""
    delta = torch.zeros(rows, cols)
    r, c = rows // 2, cols // 2
    for k in range(max(r, c) + 1):
        delta[max(r - k, 0) : min(r - k + 2 * k + 1, rows),
              max(c - k, 0) : min(c - k + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
    return delta / delta.norm().clamp_min(1e-12)


def pseudo_gaussian(s: int, transpose: bool) -> torch.Tensor:
    """(s, s) pattern: ``rectangles`` on the top ``s // 2`` rows, minus them below."""
    delta = torch.cat([rectangles(s // 2, s), -rectangles(s - s // 2, s)])
    delta = delta / delta.norm()
    return delta.T if transpose else delta


def _l2(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)  # (B, 1, 1, 1)


def _randint(high: int, x: torch.Tensor, generator) -> int:
    dev = generator.device if generator is not None else x.device
    return int(torch.randint(0, high, (1,), generator=generator, device=dev))


@ATTACKS.register("square_l2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class SquareL2(Square):
    """L2 Square Attack (module docstring). Defaults: AutoAttack's standard setting.

    Args:
        eps: L2 budget on the [0, 1] scale.
        n_queries: model queries per input, the initialisation included.
        p_init: initial fraction of the image covered by a window (0.8).
        rescale_schedule: stretch the halving iterations from 10,000 queries to ``n_queries``.
    """

    name: ClassVar[str] = "square_l2"
    norm: ClassVar[str | None] = "l2"

    eps: float = 2.0

    def __post_init__(self) -> None:
        check_eps(self.eps, "eps")  # no upper bound here: sqrt(C*H*W) is checked per call
        check_int(self.n_queries, "n_queries")
        check_range(self.p_init, "p_init", 0.0, 1.0)
        if not isinstance(self.rescale_schedule, bool):
            raise InputError(f"rescale_schedule must be true or false, got "
                             f"{self.rescale_schedule!r}")

    def _pattern(self, x: torch.Tensor, s: int, generator) -> torch.Tensor:
        """(B, C, s, s): the pseudo-Gaussian pattern with a random sign per example and channel."""
        flip = bool(_randint(2, x, generator))
        pattern = pseudo_gaussian(s, flip).to(device=x.device, dtype=x.dtype)
        return pattern * _signs((x.shape[0], x.shape[1], 1, 1), x, generator)

    def _start(self, x: torch.Tensor, generator) -> torch.Tensor:
        h, w = x.shape[2:]
        s = max(min(h, w) // 5, 1)
        top0, left0 = (h - s * (h // s)) // 2, (w - s * (w // s)) // 2
        delta = torch.zeros_like(x)
        for i in range(h // s):
            for j in range(w // s):
                top, left = top0 + i * s, left0 + j * s
                delta[:, :, top : top + s, left : left + s] += self._pattern(x, s, generator)
        return (x + self.eps * delta / _l2(delta)).clamp(0.0, 1.0)

    def _propose(self, x: torch.Tensor, best: torch.Tensor, live: torch.Tensor, p: float,
                 generator) -> torch.Tensor:
        """One Algorithm 3 proposal for every ``live`` row (the windows shared by all)."""
        x, best = x[live], best[live]
        c, h, w = x.shape[1:]
        s = max(round(math.sqrt(p * h * w)), 3)
        s = min(s + 1 - s % 2, h, w)
        (t1, l1), (t2, l2) = [(_randint(h - s + 1, x, generator),
                               _randint(w - s + 1, x, generator)) for _ in range(2)]
        delta = best - x
        win1 = delta[:, :, t1 : t1 + s, l1 : l1 + s]
        mask = torch.zeros_like(x[:1, :1])
        mask[..., t1 : t1 + s, l1 : l1 + s] = mask[..., t2 : t2 + s, l2 : l2 + s] = 1.0
        pooled = (delta * mask).pow(2).sum(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        spare = (self.eps**2 - _l2(delta).pow(2)).clamp_min(0.0) / c
        old = win1 / (win1.norm(dim=(2, 3), keepdim=True) + 1e-12)  # (B, C, s, s)
        new = self._pattern(x, s, generator) + old
        new = new / new.norm(dim=(2, 3), keepdim=True).clamp_min(1e-12) * (spare + pooled).sqrt()
        delta = delta.clone()
        delta[:, :, t2 : t2 + s, l2 : l2 + s] = 0.0
        delta[:, :, t1 : t1 + s, l1 : l1 + s] = new
        return (x + self.eps * delta / _l2(delta)).clamp(0.0, 1.0)

