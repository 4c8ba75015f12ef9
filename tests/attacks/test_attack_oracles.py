"""Attacks against closed forms and against each other, plus success on the toy task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import advforge.attacks as attacks
from advforge.attacks.losses import margin
from advforge.attacks.norms import flat_norm
from advforge.models.wrapper import ImageClassifier

EPS = 0.1


@pytest.fixture
def linear_model() -> ImageClassifier:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 6))
    return ImageClassifier(net, num_classes=6, in_channels=3).eval()


def _closed_form_step(model, x, cls, sign):
    """x + sign * eps * sign(W^T (softmax(Wx + b) - e_cls)), the CE input gradient by hand."""
    lin = model.net[1]
    with torch.no_grad():
        p = torch.softmax(x.flatten(1) @ lin.weight.T + lin.bias, dim=1)  # (B, K)
        grad = ((p - F.one_hot(cls, 6)) @ lin.weight).view_as(x)  # (B, C, H, W)
    return (x + sign * EPS * grad.sign()).clamp(0, 1), grad


@pytest.mark.parametrize("mode", ["untargeted", "targeted", "least_likely"])
def test_fgsm_on_a_linear_model_equals_the_closed_form(linear_model, mode):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 5, 5, generator=g)
    y = torch.randint(0, 6, (16,), generator=g)
    if mode == "untargeted":
        got = attacks.create("fgsm", eps=EPS)(linear_model, x, y)
        expected, grad = _closed_form_step(linear_model, x, y, +1)
    elif mode == "targeted":
        t = (y + 3) % 6
        got = attacks.create("fgsm", eps=EPS)(linear_model, x, y, target=t)
        expected, grad = _closed_form_step(linear_model, x, t, -1)
    else:
        y_ll = linear_model(x).argmin(dim=1)
        got = attacks.create("fgsm_ll", eps=EPS)(linear_model, x, y)
        expected, grad = _closed_form_step(linear_model, x, y_ll, -1)
    clear = grad.abs() > 1e-6  # where the sign is not decided by rounding
    assert clear.float().mean() > 0.99
    assert torch.equal(got[clear], expected[clear])


@pytest.mark.parametrize("targeted", [False, True])
def test_one_pgd_step_of_size_eps_without_random_start_is_fgsm(toy_model, toy_batch, targeted):
    x, y = toy_batch
    target = (y + 1) % 4 if targeted else None
    pgd = attacks.create("pgd", eps=0.2, steps=1, step_size=0.2, random_start=False)
    fgsm = attacks.create("fgsm", eps=0.2)
    assert torch.equal(pgd(toy_model, x, y, target=target), fgsm(toy_model, x, y, target=target))


def test_pgd_l2_step_and_projection_are_exact(toy_model):
    x = torch.full((8, 1, 12, 12), 0.5)  # interior: the [0, 1] clamp stays inactive
    y = torch.arange(8) % 4
    x_adv = attacks.create("pgd_l2", eps=0.5, steps=1, step_size=2.0, random_start=False)(
        toy_model, x, y
    )
    x_var = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(toy_model(x_var), y, reduction="sum"), x_var)
    expected = x + 0.5 * grad / flat_norm(grad, 2).view(-1, 1, 1, 1)
    torch.testing.assert_close(x_adv, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(flat_norm(x_adv - x, 2), torch.full((8,), 0.5), rtol=0, atol=1e-5)


def test_pgd_linf_stays_in_the_ball_and_the_box_with_large_steps(toy_model, toy_batch):
    x, y = toy_batch
    x_adv = attacks.create("pgd", eps=0.05, steps=5, step_size=1.0)(toy_model, x, y)
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def _fooled(model, x_adv, y, target=None):
    with torch.no_grad():
        pred = model(x_adv).argmax(dim=1)
    return pred != y if target is None else pred == target


def test_pgd_restarts_keep_the_best(toy_model, toy_batch):
    x, y = toy_batch
    hyper = {"eps": 0.16, "steps": 5, "step_size": 0.04}
    gen = torch.Generator().manual_seed(0)
    one = attacks.create("pgd", **hyper)(toy_model, x, y, generator=gen)
    many = attacks.create("pgd", restarts=4, **hyper)(
        toy_model, x, y, generator=torch.Generator().manual_seed(0)
    )
    ok_one, ok_many = _fooled(toy_model, one, y), _fooled(toy_model, many, y)
    assert (ok_many >= ok_one).all()  # the first restart is the single run: never worse
    assert ok_many.sum() > ok_one.sum()
    assert (many - x).abs().max() <= 0.16 + 1e-6


def test_pgd_with_cw_loss_hits_the_target(toy_model, toy_batch):
    x, y = toy_batch
    t = (y + 2) % 4
    x_adv = attacks.create("pgd", loss="cw", eps=0.3, steps=20, step_size=0.03)(
        toy_model, x, y, target=t
    )
    assert _fooled(toy_model, x_adv, y, t).all()


CW: dict = {}  # the defaults


@pytest.mark.parametrize("targeted", [False, True])
def test_cw_l2_succeeds_everywhere_and_beats_a_fixed_large_constant(toy_model, toy_batch, targeted):
    x, y = toy_batch
    t = (y + 1) % 4 if targeted else None
    searched = attacks.create("cw_l2", **CW)(toy_model, x, y, target=t)
    fixed = attacks.create("cw_l2", binary_search_steps=1, initial_const=100.0, **CW)(
        toy_model, x, y, target=t
    )
    assert _fooled(toy_model, searched, y, t).all()
    assert _fooled(toy_model, fixed, y, t).all()
    # The binary search over c trades the margin for distance: clearly smaller L2 on average.
    l2_searched, l2_fixed = flat_norm(searched - x, 2), flat_norm(fixed - x, 2)
    assert l2_searched.mean() < 0.9 * l2_fixed.mean()


def test_cw_l2_confidence_gives_a_margin(toy_model, toy_batch):
    x, y = toy_batch
    plain = attacks.create("cw_l2", **CW)(toy_model, x, y)
    confident = attacks.create("cw_l2", kappa=2.0, **CW)(toy_model, x, y)
    with torch.no_grad():
        gap = margin(toy_model(confident), y, None, kappa=float("inf"))
    assert (gap < -2.0).all()
    assert flat_norm(confident - x, 2).mean() > flat_norm(plain - x, 2).mean()


def test_cw_l2_returns_inputs_it_cannot_fool_unchanged(toy_model, toy_batch):
    x, y = toy_batch
    x_adv = attacks.create("cw_l2", steps=2, binary_search_steps=1, initial_const=1e-6)(
        toy_model, x, y
    )
    assert torch.equal(x_adv, x)


@pytest.mark.parametrize("targeted", [False, True])
def test_cw_linf_obeys_eps_and_shrinks_below_it(toy_model, toy_batch, targeted):
    x, y = toy_batch
    t = (y + 1) % 4 if targeted else None
    x_adv = attacks.create("cw_linf", eps=0.3, lr=0.02, max_iterations=200)(
        toy_model, x, y, target=t
    )
    ok = _fooled(toy_model, x_adv, y, t)
    linf = (x_adv - x).flatten(1).abs().amax(dim=1)
    assert ok.float().mean() >= 0.9
    assert linf.max() <= 0.3 + 1e-6
    assert linf[ok].mean() < 0.25  # the tau schedule went below the budget


@pytest.mark.parametrize("targeted", [False, True])
def test_lbfgs_succeeds_and_the_search_over_c_only_shrinks_l2(toy_model, toy_batch, targeted):
    x, y = toy_batch
    t = (y + 1) % 4 if targeted else None
    one = attacks.create("lbfgs", search_steps=1, max_iter=30)(toy_model, x, y, target=t)
    searched = attacks.create("lbfgs", search_steps=4, max_iter=30)(toy_model, x, y, target=t)
    ok_one, ok = _fooled(toy_model, one, y, t), _fooled(toy_model, searched, y, t)
    assert ok.float().mean() >= 0.9
    assert (ok >= ok_one).all()
    l2_one, l2 = flat_norm(one - x, 2), flat_norm(searched - x, 2)
    assert (l2[ok_one] <= l2_one[ok_one] + 1e-6).all()
    assert l2[ok_one].mean() < l2_one[ok_one].mean()


EFFECTIVE = {
    "fgsm": {"eps": 0.3},
    "fgsm_ll": {"eps": 0.3},
    "pgd": {"eps": 0.3, "steps": 10, "step_size": 0.05},
    "pgd_l2": {"eps": 5.0, "steps": 20, "step_size": 0.5},
    "cw_l2": CW,
    "cw_linf": {"max_iterations": 100, "lr": 0.03},
    "lbfgs": {"search_steps": 3, "max_iter": 30},
}


@pytest.mark.parametrize("name", sorted(EFFECTIVE))
def test_attacks_lower_accuracy_and_hit_targets_on_the_toy_task(name, toy_model, toy_batch):
    x, y = toy_batch
    attack = attacks.create(name, **EFFECTIVE[name])
    gen = torch.Generator().manual_seed(0)
    assert _fooled(toy_model, x, y).sum() == 0  # the toy model is right on every clean input
    assert _fooled(toy_model, attack(toy_model, x, y, generator=gen), y).float().mean() >= 0.8
    if not attack.takes_target:  # fgsm_ll aims at the least-likely class itself
        return
    t = (y + 1) % 4
    hit = _fooled(toy_model, attack(toy_model, x, y, target=t, generator=gen), y, t)
    assert hit.float().mean() >= 0.8
