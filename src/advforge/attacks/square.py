"""Square Attack (Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search", ECCV 2020), L-inf.

A score-based black-box attack: it reads only the model's logits and never computes a gradient
(every forward runs under ``torch.no_grad``). Algorithm 1 with the L-inf proposals of Sec. 3.1:

* start from vertical stripes, ``x + eps * s`` with one random sign ``s`` per channel and column;
* each iteration proposes, for every input not yet fooled, one square of side
  ``round(sqrt(p * H * W))`` at a uniformly random position whose pixels move by ``+-2 eps``
  (one sign per channel), clipped to the eps-ball and to [0, 1];
* a proposal is kept only if it lowers the loss or fools the model. Untargeted, the loss is the
  margin ``z_y - max_{j != y} z_j``; targeted, the paper's variant minimises the cross-entropy of
  the target class. The search stops for an input once its margin (untargeted, or targeted
  ``max_{j != t} z_j - z_t``) is below 0;
* ``p`` starts at ``p_init`` and halves after iterations 10, 50, 200, 500, 1000, 2000, 4000,
  6000 and 8000, the authors' schedule for 10,000 queries. ``rescale_schedule=False`` (the
  AutoAttack "standard" setting) keeps these iterations whatever ``n_queries``; True stretches
  them over the budget.

Inputs the model already gets wrong (or already sends to the target) are returned unchanged.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from advforge.attacks.base import Attack
from advforge.attacks.hyper import check_int, check_range
from advforge.attacks.losses import margin
from advforge.attacks.registry import ATTACKS
from advforge.errors import InputError
from advforge.utils.validate import check_eps

BREAKPOINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(i: int, n_queries: int, p_init: float = 0.8, rescale: bool = False) -> float:
    """Fraction ``p`` of the image a square covers at iteration ``i`` (0-based): ``p_init``
    halved once per breakpoint passed (``rescale`` maps ``i`` onto a 10,000-query budget)."""
    if rescale:
        i = int(i / n_queries * 10000)
    return p_init / 2 ** bisect.bisect_left(BREAKPOINTS, i)


def _scores(model: nn.Module, x, y, target) -> tuple[torch.Tensor, torch.Tensor]:
    """(margin, loss), each (B,): margin < 0 means fooled; the search lowers loss."""
    logits = model(x)
    gap = margin(logits, y, target, kappa=math.inf)  # unclamped C&W margin
    loss = gap if target is None else F.cross_entropy(logits, target, reduction="none")
    return gap, loss


def _signs(shape: tuple[int, ...], x: torch.Tensor, generator) -> torch.Tensor:
    """Uniform +-1 of ``shape``, drawn on the generator's device, returned like ``x``."""
    dev = generator.device if generator is not None else x.device
    bits = torch.randint(0, 2, shape, generator=generator, device=dev)
    return (2 * bits - 1).to(device=x.device, dtype=x.dtype)


def _square(x: torch.Tensor, side: int, eps: float, generator) -> torch.Tensor:
    """(B, C, H, W) proposal: per example one ``side`` x ``side`` square at a uniform position
    (Algorithm 1, r and s), ``+-2 eps`` with one sign per channel, zero elsewhere."""
    b, c, h, w = x.shape
    dev = generator.device if generator is not None else x.device
    top = torch.randint(0, h - side + 1, (b, 1), generator=generator, device=dev).to(x.device)
    left = torch.randint(0, w - side + 1, (b, 1), generator=generator, device=dev).to(x.device)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + side)  # (B, H)
    in_cols = (cols >= left) & (cols < left + side)  # (B, W)
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # (B, 1, H, W)
    return 2 * eps * _signs((b, c, 1, 1), x, generator) * mask


@ATTACKS.register("square")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Square(Attack):
    """L-inf Square Attack (module docstring). Defaults: AutoAttack's standard setting.

    Args:
        eps: L-inf budget on the [0, 1] scale.
        n_queries: model queries per input, the stripe initialisation included.
        p_init: initial fraction of the image covered by a square (0.8 in the paper).
        rescale_schedule: stretch the halving iterations from 10,000 queries to ``n_queries``.
    """

    name: ClassVar[str] = "square"
    norm: ClassVar[str | None] = "linf"

    eps: float = 0.3
    n_queries: int = 5000
    p_init: float = 0.8
    rescale_schedule: bool = False

    def __post_init__(self) -> None:
        check_eps(self.eps, "eps", upper=1.0)
        check_int(self.n_queries, "n_queries")
        check_range(self.p_init, "p_init", 0.0, 1.0)
        if not isinstance(self.rescale_schedule, bool):
            raise InputError(f"rescale_schedule must be true or false, got "
                             f"{self.rescale_schedule!r}")

    def perturb(self, model, x, y, *, target, generator):
        return self.search(model, x, y, target, generator)[0]

    def search(self, model: nn.Module, x, y, target=None, generator=None):
        """The attack on validated inputs, with its cost.

        Returns:
            ``(x_adv, queries)``: queries is (B,) long, the model queries spent on each input
            (0 for an input already fooled by the clean check, which every input gets).
        """
        with torch.no_grad():
            todo = (_scores(model, x, y, target)[0] >= 0).nonzero().squeeze(1)
            x_adv, queries = x.clone(), torch.zeros(len(x), dtype=torch.long, device=x.device)
            if len(todo):
                t = None if target is None else target[todo]
                x_adv[todo], queries[todo] = self._run(model, x[todo], y[todo], t, generator)
        return x_adv, queries

    def _start(self, x: torch.Tensor, generator) -> torch.Tensor:
        """The initial point: vertical stripes of +-eps (Sec. 3.1)."""
        stripes = _signs((x.shape[0], x.shape[1], 1, x.shape[3]), x, generator)
        return (x + self.eps * stripes).clamp(0.0, 1.0)

    def _propose(self, x: torch.Tensor, best: torch.Tensor, live: torch.Tensor, p: float,
                 generator) -> torch.Tensor:
        """Candidates for the ``live`` rows: one square of side sqrt(p H W) moved to a corner
        of the eps-box (Algorithm 1)."""
        h, w = x.shape[2:]
        side = min(max(round(math.sqrt(p * h * w)), 1), h, w)
        delta = _square(x, side, self.eps, generator)[live]  # drawn for all: reproducible
        x_live = x[live]
        lo, hi = (x_live - self.eps).clamp(min=0.0), (x_live + self.eps).clamp(max=1.0)
        return torch.min(torch.max(best[live] + delta, lo), hi)

    def _run(self, model, x, y, target, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The random search on inputs the model still classifies right (see :meth:`search`):
        keep a candidate when it lowers the loss or fools the model."""
        best = self._start(x, generator)
        gap, loss = _scores(model, best, y, target)
        queries = torch.ones(len(x), dtype=torch.long, device=x.device)
        for i in range(self.n_queries - 1):
            live = (gap >= 0).nonzero().squeeze(1)
            if not len(live):
                break
            p = p_schedule(i, self.n_queries, self.p_init, self.rescale_schedule)
            cand = self._propose(x, best, live, p, generator)
            t = None if target is None else target[live]
            g, l_new = _scores(model, cand, y[live], t)
            better = (l_new < loss[live]) | (g < 0)
            keep = live[better]
            best[keep], gap[keep], loss[keep] = cand[better], g[better], l_new[better]
            queries[live] += 1
        return best, queries
