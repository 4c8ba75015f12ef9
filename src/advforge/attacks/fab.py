"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein, "Minimally distorted
adversarial examples with a fast adaptive boundary attack", ICML 2020, Algorithm 1; the
targeted form is the one AutoAttack runs, Croce & Hein ICML 2020b, Section 5): L-inf
(``fab_t``) and L2 (``fab_t_l2``).

FAB looks for the *smallest* perturbation that crosses the decision boundary, so it does not
ascend a loss inside the eps-ball as PGD and APGD do: it gives the cascade a differently
behaved attack, which is what catches a model whose loss surface misleads gradient ascent.
From the clean ``x_0``, per iteration at ``x_k``:

1. linearise the boundary between the aimed class ``t`` and the competitor ``c`` at ``x_k``:
   ``f = z_t - z_c``, ``pi = {z : f(x_k) + grad f(x_k) . (z - x_k) = 0}``;
2. ``d_1``, ``d_2``: the minimal-norm steps from ``x_k`` and from ``x_0`` onto ``pi`` that stay
   in the box [0, 1] (:func:`project_on_hyperplane`);
3. ``x_{k+1} = clip((1 - a)(x_k + eta d_1) + a (x_0 + eta d_2), 0, 1)`` with
   ``a = min(|d_1| / (|d_1| + |d_2|), alpha_max)``: mostly a step to the boundary, biased
   towards the projection of the clean point, overshooting by ``eta`` (1.05);
4. if ``x_{k+1}`` is adversarial it is kept when closer to ``x_0`` than the best so far, and
   the iterate moves back, ``x_{k+1} = x_0 + beta (x_{k+1} - x_0)`` (beta 0.9), to look for a
   closer crossing.

Untargeted use (the cascade's) runs once towards each of the ``n_target_classes`` highest
non-true classes of the clean input with the competitor ``c = y``, each run on the inputs no
earlier run fooled within eps, and succeeds when the prediction leaves ``y``; this is
AutoAttack's FAB-T. With ``target=`` the competitor is the strongest other class at ``x_k``,
so crossing ``pi`` means reaching the target, and success is predicting it. Restarts after the
first start at ``x_0 + min(r, eps) / 2 * u`` (``r`` the best norm so far, ``u`` a random unit
direction), as the authors' code does. A point farther than eps is not returned: the input
keeps its clean ``x``, so the cascade counts it robust.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import ClassVar

import torch

from advforge.attacks.chunking import ChunkedAttack, run_in_chunks
from advforge.attacks.hyper import check_int, check_range
from advforge.attacks.pgd import aimed_classes, success
from advforge.attacks.registry import ATTACKS
from advforge.errors import InputError
from advforge.utils.validate import check_eps

_TINY = 1e-12


def project_on_hyperplane(t: torch.Tensor, w: torch.Tensor, c: torch.Tensor,
                          norm: str) -> torch.Tensor:
    """The minimal-norm ``d`` with ``w . d = c`` and ``t + d`` in [0, 1], per row.

    Flipping signs so that ``c >= 0``, every component moves towards the wall that raises
    ``w . d``, which leaves it the room ``u_i`` (``1 - t_i`` if ``w_i > 0``, ``t_i`` if
    ``w_i < 0``). The solution is ``d_i = sign(w_i) min(lam s_i, u_i)`` with ``s_i = 1`` for
    L-inf (every free component moves by the same ``lam``) and ``s_i = |w_i|`` for L2 (the
    Lagrange condition ``d = lam w``, clipped to the box). ``g(lam) = |w| . min(lam s, u)``
    grows piecewise linearly in ``lam`` with a kink at each ``u_i / s_i``; sorting the kinks
    and taking running sums gives ``g`` at every kink, and the smallest ``lam`` with
    ``g(lam) = |c|`` is read off the first segment that reaches it. When even the far corner
    of the box falls short (``g(inf) < |c|``) every component goes to its wall: the closest
    the box allows.

    Args:
        t: (B, P) points in [0, 1]. w: (B, P) normals. c: (B,) required ``w . d``.
        norm: "linf" or "l2".
    """
    sign = torch.where(c < 0, -1.0, 1.0).to(w.dtype)[:, None]
    w = w * sign  # now w . d = |c| >= 0 is wanted
    need = c.abs()
    a = w.abs()
    room = torch.where(w > 0, 1 - t, t) * (a > 0)
    slope = torch.ones_like(a) if norm == "linf" else a
    # a component the hyperplane ignores (w_i = 0) never moves: its kink is at infinity
    kink = torch.where(a > 0, room / slope.clamp_min(_TINY), torch.full_like(a, float("inf")))
    kink, order = kink.sort(dim=1)
    a_sorted, room_sorted = a.gather(1, order), room.gather(1, order)
    rate = (a * slope).gather(1, order)  # dg/dlam contributed while a component is free
    done = torch.nn.functional.pad((a_sorted * room_sorted).cumsum(1), (1, 0))  # (B, P + 1)
    used = torch.nn.functional.pad(rate.cumsum(1), (1, 0))
    total = used[:, -1:]
    finite = torch.isfinite(kink)
    g_at_kink = done[:, 1:] + torch.where(finite, kink, 0.0) * (total - used[:, 1:])
    g_at_kink = torch.where(finite, g_at_kink, done[:, 1:])
    k = (g_at_kink < need[:, None]).sum(dim=1, keepdim=True)  # first kink with g >= need
    feasible = k.squeeze(1) < w.shape[1]
    k = k.clamp_max(w.shape[1] - 1)
    lam = (need[:, None] - done.gather(1, k)) / (total - used.gather(1, k)).clamp_min(_TINY)
    step = torch.where(feasible[:, None], torch.minimum(lam.clamp_min(0) * slope, room), room)
    # w . d = sign * (flipped w) . d = sign * |c| = c: the flip needs no undoing
    return torch.sign(w) * step


def _norm(d: torch.Tensor, norm: str) -> torch.Tensor:
    return d.abs().amax(dim=1) if norm == "linf" else d.norm(dim=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _FABTargeted(ChunkedAttack):
    """The FAB-T loop (module docstring), shared by the L-inf and L2 forms.

    Args:
        eps: the budget a returned point must respect (and the restarts' radius).
        steps: iterations per run (100). restarts: runs per aimed class (1, as AutoAttack).
        n_target_classes: highest non-true classes aimed at, untargeted (9; at most K - 1).
        alpha_max: largest weight of the clean point's projection (0.1).
        eta: overshoot of each projection (1.05). beta: backward step after a success (0.9).
        chunk_size: inputs per chunk (see chunking.py); None chooses automatically.
    """

    norm: ClassVar[str | None] = "linf"

    eps: float = 0.3
    steps: int = 100
    restarts: int = 1
    n_target_classes: int = 9
    alpha_max: float = 0.1
    eta: float = 1.05
    beta: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        check_eps(self.eps, "eps", upper=1.0 if self.norm == "linf" else None)
        check_int(self.steps, "steps")
        check_int(self.restarts, "restarts")
        check_int(self.n_target_classes, "n_target_classes")
        check_range(self.alpha_max, "alpha_max", 0.0, 1.0)
        check_range(self.beta, "beta", 0.0, 1.0)
        if not isinstance(self.eta, (int, float)) or isinstance(self.eta, bool) \
                or not 1.0 <= self.eta <= 2.0:
            raise InputError(f"eta (the overshoot) must lie in [1, 2], got {self.eta!r}")

    def perturb(self, model, x, y, *, target, generator):
        with torch.no_grad():  # the clean logits rank the aims (and reveal K)
            logits = model(x)
        best, done = x.clone(), success(logits, y, target)
        aims = aimed_classes(logits, y, target, self.n_target_classes)
        # Restart directions are drawn once for the whole batch, so a seed gives the same
        # output whatever the chunk size.
        dev = generator.device if generator is not None else x.device
        noise = torch.randn((x.shape[0], max(self.restarts - 1, 0), *x.shape[1:]),
                            generator=generator, device=dev, dtype=x.dtype).to(x.device)
        for aim in aims:
            todo = (~done).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            sub_t = None if target is None else target[todo]
            run = partial(self._attack_aim, model)
            x_adv = run_in_chunks(run, model, self.chunk_size, x[todo], y[todo], sub_t,
                                  aim[todo], noise[todo])
            with torch.no_grad():
                fooled = success(model(x_adv), y[todo], sub_t)
            best[todo] = torch.where(fooled.view(-1, *[1] * (x.dim() - 1)), x_adv, best[todo])
            done[todo] = fooled
        return best

    def _attack_aim(self, model, x, y, target, aim, noise) -> torch.Tensor:
        """``restarts`` runs towards ``aim``: the closest adversarial point found per input if
        it lies within eps, else ``x``."""
        flat0 = x.flatten(1)
        best = flat0.clone()
        best_norm = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)
        for r in range(self.restarts):
            start = flat0
            if r > 0:
                u = noise[:, r - 1].flatten(1)
                u = u / _norm(u, self.norm).clamp_min(_TINY)[:, None]
                radius = torch.minimum(best_norm, torch.full_like(best_norm, self.eps))
                start = (flat0 + 0.5 * radius[:, None] * u).clamp(0.0, 1.0)
            self._run(model, x.shape, flat0, start, y, target, aim, best, best_norm)
        within = best_norm <= self.eps
        return torch.where(within[:, None], best, flat0).view_as(x)

    def _run(self, model, shape, x0, x_k, y, target, aim, best, best_norm) -> None:
        """Algorithm 1 from ``x_k``; updates ``best`` / ``best_norm`` (flat) in place."""
        for _ in range(self.steps):
            f, grad = self._boundary(model, x_k.view(shape), y, target, aim)
            grad = grad.flatten(1)
            d1 = project_on_hyperplane(x_k, grad, -f, self.norm)
            d2 = project_on_hyperplane(x0, grad, -f - (grad * (x0 - x_k)).sum(1), self.norm)
            n1 = _norm(d1, self.norm).clamp_min(1e-8)
            n2 = _norm(d2, self.norm).clamp_min(1e-8)
            alpha = (n1 / (n1 + n2)).clamp(0.0, self.alpha_max)[:, None]
            x_k = ((1 - alpha) * (x_k + self.eta * d1)
                   + alpha * (x0 + self.eta * d2)).clamp(0.0, 1.0)
            with torch.no_grad():
                ok = success(model(x_k.view(shape)), y, target)
            dist = _norm(x_k - x0, self.norm)
            closer = ok & (dist < best_norm)
            best[closer], best_norm[closer] = x_k[closer], dist[closer]
            x_k = torch.where(ok[:, None], x0 + self.beta * (x_k - x0), x_k)

    def _boundary(self, model, x_k, y, target, aim):
        """``f = z_aim - z_c`` and its input gradient at ``x_k``: ``c = y`` untargeted, the
        strongest non-target class with ``target=``."""
        x_k = x_k.detach().requires_grad_(True)
        logits = model(x_k)
        z_aim = logits.gather(1, aim[:, None]).squeeze(1)
        if target is None:
            rival = y
        else:
            rival = logits.detach().scatter(1, aim[:, None], float("-inf")).argmax(dim=1)
        f = z_aim - logits.gather(1, rival[:, None]).squeeze(1)
        (grad,) = torch.autograd.grad(f.sum(), x_k)
        return f.detach(), grad


@ATTACKS.register("fab_t")
@dataclasses.dataclass(frozen=True, kw_only=True)
class FABT(_FABTargeted):
    """L-inf FAB-T (module docstring)."""

    name: ClassVar[str] = "fab_t"


@ATTACKS.register("fab_t_l2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class FABTL2(_FABTargeted):
    """L2 FAB-T: the same iteration with L2 projections (eps 2.0, as ``pgd_l2``)."""

    name: ClassVar[str] = "fab_t_l2"
    norm: ClassVar[str | None] = "l2"

    eps: float = 2.0
