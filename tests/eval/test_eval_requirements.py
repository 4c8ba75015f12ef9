"""The evaluation core reports whether attacks made to order met their requirements."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import advforge.attacks as attacks
from advforge.attacks.fi_pso import requirements_met
from advforge.eval import AttackResult, evaluate, write_report


class Linear44(nn.Module):
    """1x4x4 inputs: class 0 scores 2, class 1 scores 0, class 2 scores 10 * x[5] - 5, so only
    component 5 moves the prediction and only towards class 2 (x[5] > 0.7); class 1 can never
    win, and P(class 2) = 0.9 is reachable at x[5] ~ 0.93."""

    num_classes, in_channels = 3, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z2 = 10 * x.flatten(1)[:, 5] - 5
        return torch.stack([torch.full_like(z2, 2.0), torch.zeros_like(z2), z2], dim=1)


def _pso(**kw):
    return attacks.create("fi_pso", indices=[5], particles=16, iters=20, **kw)


@pytest.fixture
def linear_batch():
    return torch.full((6, 1, 4, 4), 0.2), torch.zeros(6, dtype=torch.long)


def test_fi_pso_requirements_are_tallied_over_batches(linear_batch):
    x, y = linear_batch
    targets = torch.tensor([2, 1, 2, 1, 2, 2])  # target 1 is out of reach on this model
    result = evaluate(_pso(p_err=0.9), Linear44(), x, y, targets=targets, batch_size=4,
                      generator=torch.Generator().manual_seed(0))
    req = result.requirements
    assert req["n"] == 6 == result.n_evaluated
    assert req["target_reached"] == pytest.approx(4 / 6) == result.success_rate
    assert req["p_err_met"] == pytest.approx(4 / 6) and req["met"] == pytest.approx(4 / 6)
    assert req["l0_met"] == 1.0 and (req["p_err"], req["pixels"]) == (0.9, 1)
    assert req["misclassified"] == pytest.approx(4 / 6)


def test_requirements_match_a_direct_check_of_the_kept_examples(linear_batch):
    x, y = linear_batch
    attack = _pso(pixels=1)
    result = evaluate(attack, Linear44(), x, y, batch_size=4, keep_adversarial=True,
                      generator=torch.Generator().manual_seed(1))
    direct = requirements_met(Linear44(), x, result.x_adv, y, pixels=1).summary()
    assert result.requirements == pytest.approx(direct)
    assert result.requirements["target_reached"] is None  # untargeted: nothing to reach
    assert result.requirements["p_err_met"] is None


def test_attacks_without_requirements_are_unchanged(code_model, code_batch, set_code,
                                                    tmp_path):
    x, y = code_batch
    result = evaluate(set_code(), code_model, x, y, targets=1)
    assert result.requirements is None and "requirements" not in result.to_dict()
    paths = write_report(tmp_path, [result], {"seed": 0})
    assert "Requirements met" not in paths["md"].read_text()
    assert "Requirements met" not in paths["html"].read_text()
    assert AttackResult.from_dict(result.to_dict()).requirements is None


def test_report_shows_the_requirement_line(linear_batch, code_model, code_batch, set_code,
                                           tmp_path):
    x, y = linear_batch
    pso = evaluate(_pso(p_err=0.9), Linear44(), x, y, targets=2, attack_name="fi_pso",
                   generator=torch.Generator().manual_seed(0))
    other = evaluate(set_code(), code_model, *code_batch, targets=1, attack_name="plain")
    paths = write_report(tmp_path, [pso, other], {"seed": 0})
    md = paths["md"].read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("- fi_pso: n = 6"))
    assert "all requirements met 100.0%" in line and "target reached 100.0%" in line
    assert "P_err = 0.9 within 0.01 100.0%" in line and "L0 <= 1 100.0%" in line
    assert "- plain:" not in md.split("## Requirements met")[1].split("##")[0]
    assert "target reached 100.0%" in paths["html"].read_text()
    saved = json.loads(paths["json"].read_text())["attacks"]
    assert saved[0]["requirements"]["met"] == 1.0 and "requirements" not in saved[1]
    assert AttackResult.from_dict(saved[0]).requirements == pso.requirements
