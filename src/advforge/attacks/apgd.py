"""Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020, Algorithm 1), L-inf and L2: the shared step-size
schedule and ``apgd_ce`` / ``apgd_ce_l2``, its cross-entropy form.

Per example, from ``x^0`` with step ``eta = 2 * eps``:
``z^{k+1} = P(x^k + eta * sgn(grad f(x^k)))`` (L2: ``grad / ||grad||_2``) and
``x^{k+1} = P(x^k + alpha (z^{k+1} - x^k) + (1 - alpha)(x^k - x^{k-1}))`` (momentum
``alpha = 0.75``; the first step has none). At each checkpoint ``w_j`` the step is halved and
the run restarts from the best point ``x_max`` if either
(1) fewer than ``rho * (w_j - w_{j-1})`` steps since ``w_{j-1}`` increased ``f``, or
(2) neither ``eta`` nor ``f_max`` changed since ``w_{j-1}``.
The returned point is, per example, the best one seen: a successful one first, then the highest
``f``; ``restarts`` random starts are run on the inputs not yet fooled.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import ClassVar

import torch
from torch import nn

from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.attacks.hyper import check_int, check_range
from advforge.attacks.losses import ce_objective
from advforge.attacks.norms import normalize_grad, project, random_init
from advforge.attacks.pgd import success
from advforge.attacks.registry import ATTACKS
from advforge.utils.validate import check_eps


def checkpoints(steps: int) -> list[int]:
    """Checkpoints ``w_j = ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` while ``p_j <= 1`` (Section 3.2).
    ``p`` is kept in exact hundredths so 0.41 * 100 is 41, not 42."""
    points, p_prev, p = [0], 0, 22
    while p <= 100:
        points.append(-(-p * steps // 100))
        p_prev, p = p, p + max(p - p_prev - 3, 6)
    return sorted(set(points))


def halve_step(ups: torch.Tensor, span: int, rho: float, cut_last: torch.Tensor,
               f_max: torch.Tensor, f_max_last: torch.Tensor) -> torch.Tensor:
    """(B,) bool: halve the step at this checkpoint (Section 3.2) if
    (1) fewer than ``rho * span`` of the ``span`` steps since the last checkpoint increased
    ``f`` (``ups`` counts them), or (2) the step was not halved at the last checkpoint and
    ``f_max`` has not grown since then."""
    return (ups < rho * span) | (~cut_last & (f_max <= f_max_last))


def best_so_far(x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor,
                target: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """The per-example record ``search`` updates: best point (the clean x to start), whether
    it fools the model, and its objective (-inf, so any visited point replaces it). An input
    the clean ``x`` already fools (misclassified, or already the target) is done: ``search``
    skips it and returns ``x``, as AutoAttack attacks only the inputs still classified right."""
    best_score = torch.full(y.shape, float("-inf"), device=x.device, dtype=x.dtype)
    return x.clone(), success(clean_logits, y, target), best_score


def _pick(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *[1] * (new.dim() - 1)), new, old)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _AutoPGD(ChunkedAttack):
    """Shared loop of the APGD attacks (see the module docstring).

    Args:
        eps: radius of the ``norm`` ball on the [0, 1] scale (L-inf 0.3; L2 2.0).
        steps: iterations N (the paper's 100).
        restarts: random starts per run; later ones only on inputs not yet fooled.
        rho: condition (1)'s fraction of increasing steps (0.75).
        alpha: momentum weight of the new gradient step (0.75).
        chunk_size: inputs per chunk (see chunking.py); None chooses automatically.
    """

    norm: ClassVar[str | None] = "linf"

    eps: float = 0.3
    steps: int = 100
    restarts: int = 1
    rho: float = 0.75
    alpha: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        check_eps(self.eps, "eps", upper=1.0 if self.norm == "linf" else None)
        check_int(self.steps, "steps")
        check_int(self.restarts, "restarts")
        check_range(self.rho, "rho", 0.0, 1.0)
        check_range(self.alpha, "alpha", 0.0, 1.0)

    def objective(self, logits, y, target, aim) -> torch.Tensor:
        """Per-example (B,) loss ``f`` ascended towards ``aim`` (subclasses)."""
        raise NotImplementedError

    def score(self, logits, y, target, aim) -> torch.Tensor:
        """(B,) quantity ranking unsuccessful candidates across runs (default: ``f``)."""
        return self.objective(logits, y, target, aim)

    def search(self, model, x, y, target, aim, generator, best, best_ok, best_score):
        """``restarts`` runs towards ``aim`` (B,) on the inputs not yet fooled; updates the
        per-example best ``(best, best_ok, best_score)`` in place."""
        for _ in range(self.restarts):
            start = (x + random_init(x, self.norm, self.eps, generator)).clamp_(0.0, 1.0)
            todo = (~best_ok).nonzero().squeeze(1)
            if todo.numel() == 0:
                return
            sub_t = None if target is None else target[todo]
            run = partial(self._ascent, model)
            x_adv = run_in_chunks(run, model, self.chunk_size, x[todo], y[todo], sub_t,
                                  start[todo], aim[todo])
            with torch.no_grad():  # one extra forward per run to rank the candidates
                logits = model(x_adv)
                ok = success(logits, y[todo], sub_t)
                score = self.score(logits, y[todo], sub_t, aim[todo])
            better = ok | (score > best_score[todo])
            best[todo] = _pick(better, x_adv, best[todo])
            best_score[todo] = torch.where(better, score, best_score[todo])
            best_ok[todo] = ok

    def _project(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """P: onto the eps-ball around ``x``, then into [0, 1] (clamping only moves closer)."""
        if self.norm == "linf":
            return torch.min(torch.max(v, x - self.eps), x + self.eps).clamp_(0.0, 1.0)
        return (x + project(v - x, "l2", self.eps)).clamp_(0.0, 1.0)

    def _evaluate(self, model, x_k, y, target, aim):
        x_k = x_k.detach().requires_grad_(True)
        logits = model(x_k)
        f = self.objective(logits, y, target, aim)
        (grad,) = torch.autograd.grad(f.sum(), x_k)
        return f.detach(), grad, success(logits.detach(), y, target)

    def _ascent(self, model: nn.Module, x, y, target, x_k, aim) -> torch.Tensor:
        """Algorithm 1 from ``x_k``: the per-example best point after ``steps`` iterations."""
        marks = {w for w in checkpoints(self.steps) if 0 < w < self.steps}  # none at the end
        eta = torch.full_like(y, 2 * self.eps, dtype=x.dtype).view(-1, 1, 1, 1)
        f_k, g_k, ok = self._evaluate(model, x_k, y, target, aim)
        x_prev, x_max, f_max, g_max = x_k, x_k, f_k, g_k  # the algorithm's best (by f)
        out, out_ok, out_f = x_k, ok, f_k  # the returned best: success first, then f
        ups, cut_last, f_max_last, w_last = torch.zeros_like(f_k), torch.zeros_like(ok), f_max, 0
        for k in range(self.steps):
            z = self._project(x, x_k + eta * normalize_grad(g_k, self.norm))
            if k > 0:
                a = self.alpha
                z = self._project(x, x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev))
            f_new, g_new, ok = self._evaluate(model, z, y, target, aim)
            ups += (f_new > f_k).to(ups.dtype)
            up = f_new > f_max
            x_max, g_max = _pick(up, z, x_max), _pick(up, g_new, g_max)
            f_max = torch.where(up, f_new, f_max)
            keep = (ok & ~out_ok) | ((ok == out_ok) & (f_new > out_f))
            out, out_ok, out_f = _pick(keep, z, out), out_ok | ok, torch.where(keep, f_new, out_f)
            x_prev, x_k, f_k, g_k = x_k, z, f_new, g_new
            if k + 1 in marks:  # halve eta and restart from x_max where (1) or (2) holds
                cut = halve_step(ups, k + 1 - w_last, self.rho, cut_last, f_max, f_max_last)
                eta = _pick(cut, eta / 2, eta)
                x_prev, x_k = _pick(cut, x_max, x_prev), _pick(cut, x_max, x_k)
                f_k, g_k = torch.where(cut, f_max, f_k), _pick(cut, g_max, g_k)
                ups, cut_last, f_max_last, w_last = torch.zeros_like(ups), cut, f_max, k + 1
        return out


@ATTACKS.register("apgd_ce")
@dataclasses.dataclass(frozen=True, kw_only=True)
class APGDCE(_AutoPGD):
    """APGD with cross-entropy: untargeted ascends CE(y); with ``target=`` it descends
    CE(target), a targeted attack."""

    name: ClassVar[str] = "apgd_ce"

    def objective(self, logits, y, target, aim) -> torch.Tensor:
        return ce_objective(logits, y, target)

    def perturb(self, model, x, y, *, target, generator):
        with torch.no_grad():
            clean_logits = model(x)
        best, best_ok, best_score = best_so_far(x, y, clean_logits, target)
        self.search(model, x, y, target, y, generator, best, best_ok, best_score)
        return best


@ATTACKS.register("apgd_ce_l2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class APGDCEL2(APGDCE):
    """L2 APGD-CE: normalised-gradient steps, projection onto the L2 ball (eps 2.0, as
    ``pgd_l2``)."""

    name: ClassVar[str] = "apgd_ce_l2"
    norm: ClassVar[str | None] = "l2"

    eps: float = 2.0
