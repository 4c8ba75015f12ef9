"""The attack contract (docs/contract.md), checked for every registered attack, untargeted
and targeted."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hyper_fast import fast_hyper

import advforge.attacks as attacks
from advforge.attacks.norms import flat_norm

NAMES = attacks.names()
MODES = ["untargeted", "targeted"]
TOL = 1e-5


def _target(mode: str, y: torch.Tensor) -> torch.Tensor | None:
    return None if mode == "untargeted" else (y + 1) % 4


def _run(name, model, x, y, mode, **call):
    """Run ``name``; an attack that picks its own target (fgsm_ll) runs untargeted."""
    attack = attacks.create(name, **fast_hyper(name))
    target = _target(mode, y) if attack.takes_target else None
    return attack, attack(model, x, y, target=target, **call)


def test_registry_holds_the_optimisation_attacks():
    assert {"fgsm", "fgsm_ll", "pgd", "pgd_l2", "cw_l2", "cw_linf", "lbfgs", "apgd_ce",
            "apgd_t"} <= set(NAMES)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_output_shape_dtype_range_and_budget(name, mode, toy_model, toy_batch):
    x, y = toy_batch
    x_before = x.clone()
    attack, x_adv = _run(name, toy_model, x, y, mode)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert torch.equal(x, x_before), "the attack modified its input in place"
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.isfinite(x_adv).all()
    delta = x_adv - x
    if attack.norm == "linf":
        assert delta.abs().max() <= attack.eps + TOL
    elif attack.norm == "l2":
        assert flat_norm(delta, 2).max() <= attack.eps + TOL
    elif attack.norm == "l0":
        assert (delta.flatten(1) != 0).sum(dim=1).max() <= attack.max_pixels(x)
    else:
        assert attack.norm is None
    assert not torch.equal(x_adv, x), "the attack changed nothing on the toy batch"


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_model_mode_and_parameter_grads_untouched(name, training, toy_model, toy_batch):
    x, y = toy_batch
    toy_model.train(training)
    params = list(toy_model.parameters())
    params[0].grad = torch.full_like(params[0], 0.5)  # an existing grad must survive unchanged
    _run(name, toy_model, x, y, "targeted")
    assert all(m.training == training for m in toy_model.modules())
    assert torch.equal(params[0].grad, torch.full_like(params[0], 0.5))
    assert all(p.grad is None for p in params[1:])


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name, toy_model, toy_batch):
    x, y = toy_batch
    runs = [
        _run(name, toy_model, x, y, "untargeted", generator=torch.Generator().manual_seed(3))[1]
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("name", NAMES)
def test_works_under_no_grad(name, toy_model, toy_batch):
    x, y = toy_batch
    expected = _run(name, toy_model, x, y, "targeted", generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = _run(name, toy_model, x, y, "targeted", generator=torch.Generator().manual_seed(1))
    assert torch.equal(expected[1], got[1])


@pytest.mark.parametrize("name", NAMES)
def test_int_target_equals_tensor_target(name, toy_model, toy_batch):
    x, y = toy_batch
    keep = y != 2
    x, y = x[keep], y[keep]
    attack = attacks.create(name, **fast_hyper(name))
    if not attack.takes_target:
        pytest.skip(f"{name} picks its own target")
    a = attack(toy_model, x, y, target=2, generator=torch.Generator().manual_seed(0))
    t = torch.full_like(y, 2)
    b = attack(toy_model, x, y, target=t, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_are_frozen_and_json_friendly(name):
    attack = attacks.create(name)
    hyper = attack.hyper()
    assert json.loads(json.dumps(hyper)) == hyper
    assert attacks.create(name, **hyper) == attack
    field = next(iter(hyper))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(attack, field, hyper[field])
    assert attack.name == name
