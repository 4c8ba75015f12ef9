"""Eq. 9's finite difference against the exact gradient of Eq. 8's regulariser (float64)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advforge.defenses.advnet.hvp import (
    generator_forward,
    phi_gradient,
    regularized_loss,
    shifted_output,
)
from advforge.defenses.advnet.nets import G0, adversarial

EPS, LAM, GAMMA = 0.1, 1.0, 0.01


def _setup():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)
                      ).double()
    g = G0(1, 8, 4, width=2).double().train()
    x = 0.3 + 0.4 * torch.rand(6, 1, 8, 8, dtype=torch.float64)  # eps never clamps
    y = torch.arange(6) % 4
    return d, g, x, y, g.inputs(x, y)


def _grad(loss, params):
    return torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params, retain_graph=True)])


def half_grad_norm(d, g, inp, x, y):
    """1/2 ||grad_phi F||^2 as a differentiable function of D's parameters."""
    f = LAM * nn.functional.cross_entropy(d(adversarial(x, generator_forward(g, inp), EPS)), y)
    v = torch.autograd.grad(f, list(g.parameters()), create_graph=True)
    return 0.5 * sum((t ** 2).sum() for t in v)


def exact_regularizer_grad(d, g, inp, x, y):
    """gamma * grad_theta (1/2 ||grad_phi F||^2) by double back-propagation."""
    return GAMMA * _grad(half_grad_norm(d, g, inp, x, y), list(d.parameters()))


def fd_regularizer_grad(d, g, inp, x, y, h):
    """theta-gradient of the production surrogate minus that of F: Eq. 9's term."""
    theta = list(d.parameters())
    v, out = phi_gradient(d, g, inp, x, y, EPS, LAM)
    batch = torch.cat([x, adversarial(x, out, EPS), adversarial(x, shifted_output(g, inp, v, h),
                                                                EPS)])
    loss, objective = regularized_loss(d(batch), y, LAM, GAMMA, h)
    return _grad(loss, theta) - _grad(objective, theta)


def test_finite_difference_matches_double_backprop():
    d, g, x, y, inp = _setup()
    exact = exact_regularizer_grad(d, g, inp, x, y)
    errors = {}
    for h in (1e-2, 1e-3, 1e-4, 1e-5):
        fd = fd_regularizer_grad(d, g, inp, x, y, h)
        errors[h] = float((fd - exact).norm() / exact.norm())
    assert errors[1e-4] < 1e-3 and errors[1e-5] < 1e-4, errors
    assert errors[1e-3] < errors[1e-2] and errors[1e-4] < errors[1e-3], errors  # O(h)

    fd = fd_regularizer_grad(d, g, inp, x, y, 1e-4)
    authors = -fd  # gamma (g2 - g3) / h of the authors' TF code
    cos = torch.nn.functional.cosine_similarity
    assert cos(fd, exact, dim=0) > 0.999
    assert cos(authors, exact, dim=0) < -0.999
    # A small descent step on theta along each version: Eq. 9's sign shrinks G's gradient
    # (what Eq. 8 asks), the other sign grows it.
    before = float(half_grad_norm(d, g, inp, x, y).detach())
    after = {}
    for name, direction in (("paper", fd), ("authors", authors)):
        d2 = _shifted_copy(d, -1e-3 * direction / direction.norm())
        after[name] = float(half_grad_norm(d2, g, inp, x, y).detach())
    assert after["paper"] < before < after["authors"], (before, after)


def _shifted_copy(d, delta):
    import copy

    d2 = copy.deepcopy(d)
    torch.nn.utils.vector_to_parameters(
        torch.nn.utils.parameters_to_vector(d2.parameters()) + delta, d2.parameters())
    return d2


def test_shifted_output_leaves_the_generator_alone():
    _, g, x, y, inp = _setup()
    state = {k: v.clone() for k, v in g.state_dict().items()}
    v = [torch.ones_like(p) for p in g.parameters()]
    a = shifted_output(g, inp, v, 0.0)
    b = shifted_output(g, inp, v, 1e-2)
    assert torch.equal(a, generator_forward(g, inp).detach()) and not torch.equal(a, b)
    for k, t in g.state_dict().items():  # parameters and BN running statistics unchanged
        assert torch.equal(t, state[k]), k


@pytest.mark.parametrize("gamma", [0.0, 0.01])
def test_regularized_loss_reduces_to_eq4_when_shift_is_zero(gamma):
    logits = torch.randn(9, 4, dtype=torch.float64)
    logits[6:] = logits[3:6]  # G_{phi + h v} = G_phi: the regulariser vanishes
    y = torch.tensor([0, 1, 2])
    loss, objective = regularized_loss(logits, y, 2.0, gamma, 1e-3)
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(objective, ce(logits[:3], y) + 2.0 * ce(logits[3:6], y))
    assert torch.allclose(loss, objective)
