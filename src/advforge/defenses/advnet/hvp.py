"""The gradient-regularised classifier objective of Wang & Yu, Eqs. 8-9, as one scalar.

D minimises ``F(theta, phi) + gamma/2 ||grad_phi F(theta, phi)||^2`` (Eq. 8). Its
theta-gradient contains the Hessian-vector product ``grad^2_{theta phi} F v`` with
``v = grad_phi F``; Eq. 9 approximates it by finite differences,

    grad_theta [(F(theta, phi + h v) - F(theta, phi)) / h],

so the whole theta-gradient of Eq. 8 is the gradient of the surrogate

    L_D = F(theta, phi) + gamma * (F(theta, phi + h v) - F(theta, phi)) / h

with G's outputs at phi and at phi + h v held fixed (only theta is differentiated). One
forward of D over the concatenated batch [x, x + eps G_phi, x + eps G_{phi + h v}] and one
backward give it, which is what DistributedDataParallel needs.

Sign: ``+gamma (F(phi + h v) - F(phi)) / h``, i.e. ``+gamma (g3 - g2) / h`` with
g2 = grad_theta F(phi), g3 = grad_theta F(phi + h v), as Eq. 9 states. The authors' TF code
shifts phi by the same ascent step but adds ``gamma (g2 - g3) / h``, the gradient of
``F - gamma/2 ||grad_phi F||^2``: it pushes D to *enlarge* G's gradient. The test
``test_finite_difference_matches_double_backprop`` checks this sign against double
back-propagation of Eq. 8, and that the other sign points the opposite way.

Only the adversarial term of F depends on phi, so ``F(phi + h v) - F(phi)`` is
``lam * (CE(x + eps G_{phi+hv}) - CE(x + eps G_phi))``; the clean term cancels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from advforge.defenses.advnet.nets import adversarial


def generator_forward(g: nn.Module, inp: torch.Tensor,
                      params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``G(inp)`` with parameters ``params`` (default: G's own), leaving G's BatchNorm running
    statistics untouched (they are cloned, so the finite-difference evaluations and the
    computation of v do not count as extra updates of them)."""
    state = dict(params if params is not None else g.named_parameters())
    state.update({name: b.clone() for name, b in g.named_buffers()})
    return functional_call(g, state, (inp,))


def phi_gradient(d: Callable[[torch.Tensor], torch.Tensor], g: nn.Module, inp: torch.Tensor,
                 x: torch.Tensor, y: torch.Tensor, eps: float, lam: float
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``v = grad_phi F(theta, phi) = lam * grad_phi CE(D(x + eps G_phi(inp)), y)``.

    Args:
        d: the classifier (called on images in [0, 1]).
        g: the generator (its parameters are phi).
        inp: G's input for the batch (``g.inputs(x, y, ...)``).
        x: (B, C, H, W) images in [0, 1].
        y: (B,) labels.
        eps: the L-inf budget.
        lam: lambda of Eq. 4.

    Returns:
        v as one tensor per parameter of ``g`` (in ``g.parameters()`` order, detached), and
        G's output at phi (B, C, H, W), detached.
    """
    params = dict(g.named_parameters())
    out = generator_forward(g, inp, params)
    loss = lam * F.cross_entropy(d(adversarial(x, out, eps)), y)
    v = torch.autograd.grad(loss, list(params.values()))
    return [t.detach() for t in v], out.detach()


@torch.no_grad()
def shifted_output(g: nn.Module, inp: torch.Tensor, v: list[torch.Tensor], h: float
                   ) -> torch.Tensor:
    """``G_{phi + h v}(inp)`` (no gradient; G's parameters are not modified)."""
    params = {name: p + h * t for (name, p), t in zip(g.named_parameters(), v, strict=True)}
    return generator_forward(g, inp, params)


def regularized_loss(logits: torch.Tensor, y: torch.Tensor, lam: float, gamma: float,
                     h: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The surrogate ``L_D`` from D's logits on [x, x + eps G_phi, x + eps G_{phi+hv}].

    Args:
        logits: (3B, K): the clean batch, then the two adversarial batches.
        y: (B,) labels.
        lam: lambda of Eq. 4.
        gamma: gamma of Eq. 8 (0: plain F).
        h: the finite-difference step of Eq. 9.

    Returns:
        ``(L_D, F)``: the scalar to back-propagate and F(theta, phi) (both mean losses).
    """
    b = y.shape[0]
    clean = F.cross_entropy(logits[:b], y)
    adv = F.cross_entropy(logits[b:2 * b], y)
    objective = clean + lam * adv
    if gamma == 0:
        return objective, objective
    shifted = F.cross_entropy(logits[2 * b:], y)
    return objective + gamma * lam * (shifted - adv) / h, objective
