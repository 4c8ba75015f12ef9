"""Guards every attack shares: plain nn.Modules get the same label checks as wrapped models,
budgets larger than the image space are refused, and fgsm_ll refuses a target."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import advforge.attacks as attacks
from advforge.errors import InputError

NAMES = attacks.names()


def _plain_model() -> nn.Module:
    """Four classes, no ``num_classes`` attribute: what a user's own network looks like."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(144, 4)).eval()


@pytest.mark.parametrize("name", NAMES)
def test_plain_module_label_out_of_range_is_an_input_error(name):
    x, y = torch.rand(3, 1, 12, 12), torch.tensor([0, 1, 4])
    with pytest.raises(InputError, match="out of range for 4 classes"):
        attacks.create(name)(_plain_model(), x, y)


@pytest.mark.parametrize("name", [n for n in NAMES if attacks.ATTACKS.get(n).takes_target])
def test_plain_module_target_out_of_range_is_an_input_error(name):
    x, y = torch.rand(3, 1, 12, 12), torch.tensor([0, 1, 2])
    with pytest.raises(InputError, match="target holds class index 7, out of range"):
        attacks.create(name)(_plain_model(), x, y, target=7)


def test_plain_module_in_range_runs_and_keeps_its_mode():
    model = _plain_model()
    x, y = torch.rand(3, 1, 12, 12), torch.tensor([0, 1, 3])
    x_adv = attacks.create("pgd", steps=2)(model, x, y, target=2)
    assert x_adv.shape == x.shape and not model.training


@pytest.mark.parametrize("name", ["fgsm", "fgsm_ll", "pgd", "cw_linf"])
def test_linf_budget_above_one_is_refused(name):
    with pytest.raises(InputError, match="at most 1"):
        attacks.create(name, eps=2.0)
    attacks.create(name, eps=1.0)  # the whole box is still a budget


def test_l2_budget_may_exceed_one_but_not_the_diameter():
    x, y = torch.rand(2, 1, 12, 12), torch.tensor([0, 1])
    attacks.create("pgd_l2", eps=5.0, steps=1)(_plain_model(), x, y)  # sqrt(144) = 12
    with pytest.raises(InputError, match="sqrt"):
        attacks.create("pgd_l2", eps=12.5, steps=1)(_plain_model(), x, y)


def test_fgsm_ll_refuses_a_target_instead_of_becoming_fgsm(toy_model, toy_batch):
    x, y = toy_batch
    with pytest.raises(InputError, match="chooses its own target"):
        attacks.create("fgsm_ll")(toy_model, x, y, target=(y + 1) % 4)
