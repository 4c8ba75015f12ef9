"""FAB-T (Croce & Hein 2020): the box-constrained projection onto a hyperplane against a linear
program (L-inf) and a bisection on the Lagrange multiplier (L2), and the attack's distance on a
linear model, where the boundary and the smallest perturbation are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

import advforge.attacks as attacks
from advforge.attacks.fab import project_on_hyperplane
from advforge.errors import InputError
from advforge.models.wrapper import ImageClassifier


def _linf_oracle(t: np.ndarray, w: np.ndarray, c: float) -> float | None:
    """min s s.t. -s <= d_i <= s, w . d = c, -t <= d <= 1 - t, by scipy's LP solver."""
    p = t.size
    eye = np.eye(p)
    a_ub = np.block([[eye, -np.ones((p, 1))], [-eye, -np.ones((p, 1))]])
    bounds = [(-ti, 1 - ti) for ti in t] + [(0, None)]
    res = linprog(np.r_[np.zeros(p), 1.0], A_ub=a_ub, b_ub=np.zeros(2 * p),
                  A_eq=np.r_[w, 0.0][None], b_eq=[c], bounds=bounds)
    return res.fun if res.status == 0 else None


def _l2_oracle(t: np.ndarray, w: np.ndarray, c: float) -> float | None:
    """||d||_2 of d = clip(mu w, -t, 1 - t) with w . d = c, mu found by bisection (the KKT
    conditions of min ||d||_2 on the hyperplane within the box)."""
    w = w * np.sign(c)
    g = lambda mu: float((w * np.clip(mu * w, -t, 1 - t)).sum())  # noqa: E731
    lo, hi = 0.0, 1e6
    if g(hi) < abs(c):
        return None
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g(mid) < abs(c) else (lo, mid)
    return float(np.linalg.norm(np.clip(hi * w, -t, 1 - t)))


def _rows(n: int, p: int, scale: float) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(n, p, generator=gen, dtype=torch.float64)
    w = torch.randn(n, p, generator=gen, dtype=torch.float64)
    w[:, :2] = 0.0  # components the hyperplane ignores must not move
    c = scale * torch.randn(n, generator=gen, dtype=torch.float64)
    return t, w, c


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("scale", [0.3, 2.0])  # 2.0: most rows hit the box, some cannot reach
def test_projection_is_the_box_constrained_minimum(norm, scale):
    t, w, c = _rows(24, 10, scale)
    d = project_on_hyperplane(t, w, c, norm)
    oracle = _linf_oracle if norm == "linf" else _l2_oracle
    assert ((t + d) >= -1e-12).all() and ((t + d) <= 1 + 1e-12).all()
    assert (d[:, :2] == 0).all()
    reached = 0
    for i in range(len(c)):
        best = oracle(t[i].numpy(), w[i].numpy(), float(c[i]))
        if best is None:  # out of the box's reach: every component at its wall, towards c
            room = torch.where(w[i] * c[i] > 0, 1 - t[i], t[i])
            assert torch.allclose(d[i].abs(), room * (w[i] != 0))
            continue
        reached += 1
        got = d[i].abs().max() if norm == "linf" else d[i].norm()
        assert float(got) == pytest.approx(best, rel=1e-6, abs=1e-9)
        assert float((w[i] * d[i]).sum()) == pytest.approx(float(c[i]), abs=1e-9)
    assert reached >= 12


def _two_class_linear(p: int) -> tuple[ImageClassifier, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(p, 2))
    return ImageClassifier(net, num_classes=2, in_channels=1).eval(), net[1]


@pytest.mark.parametrize("name, dual", [("fab_t", 1), ("fab_t_l2", 2)])
def test_fab_finds_the_closest_point_of_a_linear_boundary(name, dual):
    """For z_1 - z_0 = w . x + b the smallest perturbation to class 1 has norm |f| / ||w||_q
    (q the dual norm) while the box does not bind; FAB overshoots by eta, then its backward
    steps close in, so its point lies within eta of the optimum and past the boundary."""
    model, layer = _two_class_linear(16)
    x = torch.full((6, 1, 4, 4), 0.5)
    x += 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        w = layer.weight[1] - layer.weight[0]
        layer.bias[1] -= (x.flatten(1) @ w + layer.bias[1] - layer.bias[0]).max() + 0.05
        f = model(x).diff(dim=1).squeeze(1)  # z_1 - z_0 < 0: every input is class 0
    optimum = f.abs() / w.norm(p=dual)
    assert (optimum < 0.2).all()  # small enough that no pixel reaches 0 or 1
    y = torch.zeros(6, dtype=torch.long)
    x_adv = attacks.create(name, eps=1.0 if dual == 1 else 4.0, steps=50)(model, x, y)
    dist = (x_adv - x).flatten(1).norm(p=float("inf") if dual == 1 else 2, dim=1)
    assert (model(x_adv).argmax(1) == 1).all()
    assert (dist >= optimum * (1 - 1e-4)).all() and (dist <= optimum * 1.05 + 1e-6).all()
    # with a budget below the optimum nothing within eps exists: the clean x comes back
    small = attacks.create(name, eps=float(optimum.min()) * 0.9, steps=20)(model, x, y)
    assert torch.equal(small, x)


def test_targeted_fab_reaches_the_target(toy_model, toy_batch):
    x, y = toy_batch
    target = (y + 1) % 4
    x_adv = attacks.create("fab_t", eps=0.5, steps=30)(toy_model, x, y, target=target)
    with torch.no_grad():
        pred = toy_model(x_adv).argmax(1)
    moved = (x_adv != x).flatten(1).any(1)
    assert moved.any() and (pred[moved] == target[moved]).all()


def test_fab_refuses_a_bad_overshoot():
    with pytest.raises(InputError, match="eta"):
        attacks.create("fab_t", eta=0.5)


def test_fab_t_joins_the_cascade_with_the_papers_budget(toy_model, toy_batch):
    from advforge.eval.robustness import robust_cascade, standard_attacks

    built = standard_attacks(0.3, "linf", ["apgd_ce", "fab_t"])
    assert built[1].hyper() | {"eps": 0.3} == built[1].hyper()
    assert (built[1].steps, built[1].n_target_classes, built[1].restarts) == (100, 9, 1)
    x, y = toy_batch
    fast = [attacks.create("apgd_ce", eps=0.3, steps=2), attacks.create("fab_t", eps=0.3,
                                                                         steps=10)]
    result = robust_cascade(toy_model, x, y, eps=0.3, attacks=fast)
    assert [s.attack for s in result.attacks] == ["apgd_ce", "fab_t"]
    assert result.robust_accuracy <= result.attacks[0].robust_accuracy
