"""Bad inputs and bad hyperparameters raise one-line AdvforgeErrors, never tracebacks elsewhere."""

from __future__ import annotations

import pytest
import torch

import advforge.attacks as attacks
from advforge.errors import AdvforgeError, InputError, UnknownNameError

NAMES = attacks.names()


def _message(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def _bad_inputs(x, y):
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    inf = x.clone()
    inf[1, 0, 2, 2] = float("inf")
    return {
        "nan": (nan, y, None, "NaN"),
        "inf": (inf, y, None, "NaN or inf"),
        "above one": (x * 255, y, None, "[0, 1]"),
        "below zero": (x - 0.5, y, None, "[0, 1]"),
        "rank 3": (x[:, 0], y, None, "(B, C, H, W)"),
        "wrong channels": (x.expand(-1, 3, -1, -1), y, None, "channels"),
        "integer images": ((x * 255).to(torch.uint8), y, None, "float"),
        "label out of range": (x, torch.full_like(y, 4), None, "out of range"),
        "negative label": (x, torch.full_like(y, -1), None, "negative"),
        "label count": (x, y[:-1], None, "shape"),
        "target equals label": (x, y, y.clone(), "equals the true label"),
        "target out of range": (x, y, torch.full_like(y, 9), "out of range"),
        "int target out of range": (x, y, 7, "out of range"),
    }


CASES = list(_bad_inputs(torch.rand(4, 1, 12, 12), torch.arange(4)))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_input_error(name, case, toy_model, toy_batch):
    x, y = toy_batch
    bx, by, bt, needle = _bad_inputs(x[:4], y[:4])[case]
    with pytest.raises(InputError) as exc_info:
        attacks.create(name)(toy_model, bx, by, target=bt)
    assert needle in _message(exc_info)


def test_values_a_hair_outside_the_box_are_tolerated(toy_model, toy_batch):
    x, y = toy_batch
    x_adv = attacks.create("fgsm")(toy_model, x * (1 + 1e-7) - 1e-7, y)
    assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("eps", [0, -0.1, float("nan"), "big"])
def test_non_positive_or_non_numeric_eps_is_rejected(name, eps):
    if "eps" not in attacks.create(name).hyper():
        pytest.skip(f"{name} has no eps (minimum-norm attack)")
    with pytest.raises(InputError) as exc_info:
        attacks.create(name, eps=eps)
    assert "eps" in _message(exc_info)


@pytest.mark.parametrize(
    ("name", "hyper", "needle"),
    [
        ("pgd", {"steps": 0}, "steps"),
        ("pgd", {"steps": 2.5}, "steps"),
        ("pgd", {"step_size": -1.0}, "step_size"),
        ("pgd", {"loss": "hinge"}, "loss"),
        ("pgd", {"restarts": 0}, "restarts"),
        ("pgd", {"random_start": "yes"}, "random_start"),
        ("pgd_l2", {"kappa": -1.0}, "kappa"),
        ("cw_l2", {"binary_search_steps": 0}, "binary_search_steps"),
        ("cw_l2", {"lr": 0.0}, "lr"),
        ("cw_l2", {"initial_const": -1e-3}, "initial_const"),
        ("cw_l2", {"abort_early": 1}, "abort_early"),
        ("cw_linf", {"decrease_factor": 1.5}, "decrease_factor"),
        ("cw_linf", {"const_factor": 0.5}, "const_factor"),
        ("cw_linf", {"max_iterations": 0}, "max_iterations"),
        ("lbfgs", {"search_steps": 0}, "search_steps"),
        ("lbfgs", {"max_iter": True}, "max_iter"),
    ],
)
def test_bad_hyperparameters_are_rejected(name, hyper, needle):
    with pytest.raises(InputError) as exc_info:
        attacks.create(name, **hyper)
    assert needle in _message(exc_info)


def test_unknown_hyperparameter_is_an_input_error():
    with pytest.raises(InputError) as exc_info:
        attacks.create("pgd", epsilon=0.3)
    assert "epsilon" in _message(exc_info)


def test_unknown_attack_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as exc_info:
        attacks.create("deepfool")
    msg = _message(exc_info)
    assert "deepfool" in msg and "pgd" in msg and "cw_l2" in msg
    assert isinstance(exc_info.value, AdvforgeError)
