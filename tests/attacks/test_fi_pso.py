"""fi_pso: the L0 particle-swarm attack (Algorithm 1, Eq. 2-4) and its requirement check."""

from __future__ import annotations

import json
import math
import sys
import types

import pytest
import torch
from torch import nn

import advforge.attacks as attacks
from advforge.attacks.fi_pso import FiPSO, requirements_met
from advforge.attacks.fi_pso_objective import P_TOL, misclassification_loss
from advforge.errors import InputError

FAST = {"particles": 24, "iters": 30}


def _seed(s: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(s)


class Linear44(nn.Module):
    """Logits on 1x4x4 inputs with a known answer: class 0 scores 2, class 1 scores 0 and
    class 2 scores 10 * x[5] - 5, so only component 5 can make class 2 win (x[5] > 0.7)."""

    num_classes, in_channels = 3, 1

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        flat = x.flatten(1)
        z2 = 10 * flat[:, 5] - 5
        return torch.stack([torch.full_like(z2, 2.0), torch.zeros_like(z2), z2], dim=1)


def _linear_batch(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.full((n, 1, 4, 4), 0.2)
    return x, torch.zeros(n, dtype=torch.long)


def test_registered_as_an_l0_attack():
    attack = attacks.create("fi_pso")
    assert isinstance(attack, FiPSO) and attack.norm == "l0"
    assert (attack.w, attack.c1, attack.c2, attack.particles, attack.iters) == (0.6, 2, 2, 200,
                                                                                100)


@pytest.mark.parametrize("f0_case", ["m", "p_err", "target", "p_err+target"])
def test_losses_are_zero_exactly_when_the_requirement_holds(f0_case):
    p_err = 0.75 if "p_err" in f0_case else None
    target = torch.tensor([2, 2]) if "target" in f0_case else None
    y = torch.tensor([0, 0])
    meets = torch.tensor([[0.1, 0.15, 0.75], [0.2, 0.0, 0.8]])  # row 0 meets all four
    f0 = misclassification_loss(meets, y, target, p_err)
    assert f0[0] == pytest.approx(0.0, abs=1e-7)
    fails = torch.tensor([[0.6, 0.1, 0.3], [0.6, 0.1, 0.3]])  # still class 0
    assert (misclassification_loss(fails, y, target, p_err) > 0.1).all()


def test_finds_the_targeted_example_the_linear_model_allows():
    model, (x, y) = Linear44(), _linear_batch()
    attack = attacks.create("fi_pso", indices=[5, 9], **FAST)
    x_adv = attack(model, x, y, target=2, generator=_seed())
    req = attack.requirements(model, x, x_adv, y, target=2)
    assert req.met.all() and req.target_reached.all()
    assert (x_adv.flatten(1)[:, 5] > 0.7).all()
    # The norm term keeps the irrelevant component 9 almost still (a >> b still matters).
    assert (x_adv - x).flatten(1)[:, 9].abs().max() < 0.1


def test_reports_an_unreachable_target_as_not_met():
    model, (x, y) = Linear44(), _linear_batch()
    attack = attacks.create("fi_pso", indices=[3, 9], **FAST)
    x_adv = attack(model, x, y, target=2, generator=_seed())
    req = attack.requirements(model, x, x_adv, y, target=2)
    assert not req.target_reached.any() and not req.met.any() and req.l0_met.all()


@pytest.mark.parametrize("target", [None, 2])
def test_reaches_a_prescribed_misclassification_probability(target):
    model, (x, y) = Linear44(), _linear_batch()
    attack = attacks.create("fi_pso", indices=[5], p_err=0.9, **FAST)
    x_adv = attack(model, x, y, target=target, generator=_seed())
    req = attack.requirements(model, x, x_adv, y, target=target)
    assert req.p_err_met.all() and req.met.all()
    assert (req.probability - 0.9).abs().max() <= P_TOL
    p2 = model(x_adv).softmax(dim=1)[:, 2]  # class 2 is the only reachable wrong class
    assert torch.allclose(req.probability, p2)


def test_only_the_chosen_components_move_and_within_the_eps_box():
    model, y = Linear44(), torch.zeros(3, dtype=torch.long)
    x = 0.6 * torch.rand(3, 1, 4, 4, generator=_seed(2))
    rows = [[5, 0, 9], [15, 5], [5]]
    attack = attacks.create("fi_pso", indices=rows, eps=0.3, **FAST)
    result = attack.run(model, x, y, target=2, generator=_seed())
    delta, flat = (result.x_adv - x).flatten(1), x.flatten(1)
    for i, row in enumerate(rows):
        others = torch.ones(flat.shape[1], dtype=torch.bool)
        others[row] = False
        assert (delta[i, others] == 0).all()
        assert result.indices[i, : len(row)].tolist() == row
        assert (result.indices[i, len(row):] == -1).all()
    assert (delta >= -0.3 * flat - 1e-6).all() and (delta <= 0.3 * (1 - flat) + 1e-6).all()
    # Class 2 is out of reach within eps = 0.3, so the best move pushes x[5] to the wall.
    assert torch.allclose(delta[:, 5], 0.3 * (1 - flat[:, 5]), atol=1e-4)


def test_one_forward_pass_per_iteration_over_every_image_and_particle():
    model, (x, y) = Linear44(), _linear_batch(3)
    attack = attacks.create("fi_pso", indices=[5, 6], particles=8, iters=5, tol=1e-12,
                            patience=100)
    attack(model, x, y, target=1, generator=_seed())
    assert model.calls == [3 * 8] * 6  # the start, then one pass per iteration


def test_converged_swarms_stop_being_evaluated():
    model, (x, y) = Linear44(), _linear_batch(3)
    attack = attacks.create("fi_pso", indices=[7], particles=8, iters=50, patience=3)
    result = attack.run(model, x, y, generator=_seed())  # component 7 changes nothing
    assert result.iterations.tolist() == [3, 3, 3] and len(model.calls) == 4


def test_stop_when_met_ends_a_swarm_once_its_requirement_holds():
    model, (x, y) = Linear44(), _linear_batch(3)
    x[0, 0, 1, 1] = 0.95  # image 0 starts as class 2 already
    hyper = dict(indices=[5, 9], particles=8, iters=40, tol=1e-12, patience=100)
    slow = attacks.create("fi_pso", **hyper).run(model, x, y, target=2, generator=_seed())
    fast = attacks.create("fi_pso", stop_when_met=True, **hyper).run(model, x, y, target=2,
                                                                     generator=_seed())
    assert slow.iterations.tolist() == [40, 40, 40]
    assert fast.iterations[0] == 1 and (fast.iterations < 40).all()
    assert (model(fast.x_adv).argmax(dim=1) == 2).all()


def test_seeded_runs_repeat_and_seeds_differ():
    model, (x, y) = Linear44(), _linear_batch(3)
    attack = attacks.create("fi_pso", indices=[5, 9, 12], p_err=0.9, **FAST)
    a, b = (attack(model, x, y, target=2, generator=_seed(4)) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, attack(model, x, y, target=2, generator=_seed(5)))


def test_indices_survive_a_json_round_trip():
    attack = attacks.create("fi_pso", indices=[[1, 2], [3]], pixels=2)
    hyper = json.loads(json.dumps(attack.hyper()))
    assert hyper["indices"] == [[1, 2], [3]] and attacks.create("fi_pso", **hyper) == attack


@pytest.mark.parametrize("hyper, needle", [
    ({"p_err": 0.4}, "[0.5, 1)"),
    ({"p_err": 1.0}, "[0.5, 1)"),
    ({"particles": 1}, "particles"),
    ({"b": 2.0}, "much smaller"),
    ({"boundary": "wrap"}, "boundary"),
    ({"indices": [1.5]}, "integers"),
    ({"eps": 1.5}, "at most 1"),
])
def test_bad_hyperparameters_are_refused_when_built(hyper, needle):
    with pytest.raises(InputError, match=None) as info:
        attacks.create("fi_pso", **hyper)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("hyper, target, needle", [
    ({"pixels": 17}, None, "exceeds the 16 components"),
    ({"indices": [16]}, None, "out of range"),
    ({"indices": [3, 3]}, None, "repeat"),
    ({"indices": [[1], [2]]}, None, "batch of 3"),
    ({"indices": [1, 2, 3], "pixels": 2}, None, "exceed the budget"),
    ({"indices": [5]}, 0, "equals the true label"),
])
def test_bad_inputs_raise_before_any_forward_pass(hyper, target, needle):
    model, (x, y) = Linear44(), _linear_batch(3)
    with pytest.raises(InputError) as info:
        attacks.create("fi_pso", **hyper)(model, x, y, target=target)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert model.calls == []


def test_requirements_count_l0_against_the_budget():
    model, (x, y) = Linear44(), _linear_batch(2)
    x_adv = x.clone()
    x_adv[:, 0, 1, 1] = 0.9  # component 5: class 2 wins
    x_adv[1, 0, 0, :3] = 0.5  # image 1 also changes 3 more components
    req = requirements_met(model, x, x_adv, y, target=2, pixels=2)
    assert req.l0.tolist() == [1, 4] and req.l0_met.tolist() == [True, False]
    assert req.target_reached.all() and req.met.tolist() == [True, False]
    assert req.summary()["met"] == 0.5


def test_budget_without_indices_takes_the_top_fi_components(monkeypatch):
    model, (x, y) = Linear44(), _linear_batch(2)
    seen = {}

    def pixel_fi(model_, x_, y_, *, target=None):
        seen["target"] = target
        fi = torch.zeros_like(x_)
        fi.view(x_.shape[0], -1)[:, [5, 11]] = torch.tensor([3.0, 2.0])
        return fi

    def top_pixels(fi, m):
        return fi.flatten(1).topk(m, dim=1).indices

    stand_in = types.ModuleType("advforge.influence")
    stand_in.pixel_fi, stand_in.top_pixels = pixel_fi, top_pixels
    monkeypatch.setitem(sys.modules, "advforge.influence", stand_in)
    result = attacks.create("fi_pso", pixels=2, **FAST).run(model, x, y, target=2,
                                                            generator=_seed())
    assert seen["target"].tolist() == [2, 2]
    assert sorted(result.indices[0].tolist()) == [5, 11]
    changed = (result.x_adv - x).flatten(1) != 0
    assert not changed[:, [i for i in range(16) if i not in (5, 11)]].any()
    assert (model(result.x_adv).argmax(dim=1) == 2).all()


def test_fi_pixels_with_the_real_influence_module():
    influence = pytest.importorskip("advforge.influence")
    model, (x, y) = Linear44(), _linear_batch(2)
    top = influence.top_pixels(influence.pixel_fi(model, x, y, target=torch.tensor([2, 2])), 1)
    assert top.tolist() == [[5], [5]]  # the only component with a gradient
    result = attacks.create("fi_pso", pixels=1, **FAST).run(model, x, y, target=2,
                                                            generator=_seed())
    assert result.indices.tolist() == [[5], [5]]
    assert (model(result.x_adv).argmax(dim=1) == 2).all()


def _conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).eval()


def test_particles_are_scored_by_a_private_channels_last_copy():
    """On a CPU a conv net is scored in channels-last layout (faster, same logits up to
    rounding); the caller's model keeps its layout, dtype and weights."""
    model = _conv_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(5, 1, 6, 6, generator=_seed())
    scorer = FiPSO()._scorer(model, x)
    assert scorer is not model
    assert scorer[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(scorer(x), model(x), atol=1e-5)
    bf16 = FiPSO(precision="bfloat16")._scorer(model, x)
    assert bf16[0].weight.dtype == torch.bfloat16
    assert torch.allclose(bf16(x.bfloat16()).float(), model(x), atol=0.1)
    assert model[0].weight.is_contiguous() and model[0].weight.dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert FiPSO()._scorer(Linear44(), torch.rand(2, 1, 4, 4)).__class__ is Linear44


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_every_precision_meets_an_easy_requirement_checked_in_float32(precision):
    model, x = _conv_net(), torch.rand(6, 1, 6, 6, generator=_seed(1))
    y = model(x).argmax(1)
    attack = FiPSO(precision=precision, **FAST)
    x_adv = attack(model, x, y, generator=_seed())
    assert x_adv.dtype == torch.float32
    assert attack.requirements(model, x, x_adv, y).met.float().mean() >= 0.8


def test_unknown_precision_is_refused():
    with pytest.raises(InputError, match="precision"):
        FiPSO(precision="float16")


@pytest.mark.parametrize("f0_case", ["m", "target"])
def test_log_scale_is_zero_on_the_same_inputs_and_sees_tiny_probabilities(f0_case):
    target = torch.tensor([2, 2, 2]) if f0_case == "target" else None
    y = torch.tensor([0, 0, 0])
    probs = torch.tensor([[0.1, 0.15, 0.75], [0.6, 0.1, 0.3], [1 - 2e-9, 1e-9, 1e-9]],
                         dtype=torch.float64)
    prob = misclassification_loss(probs, y, target, None, "prob")
    log = misclassification_loss(probs, y, target, None, "log")
    assert torch.equal(prob == 0, log == 0)  # the requirement holds on the same rows
    assert log[1] == pytest.approx(math.log(0.6 / 0.3))  # either way 0.6 leads 0.3
    # a 100x larger target probability: invisible in probabilities, log(100) in log scale
    moved = probs[2:].clone()
    moved[0, 2], moved[0, 0] = 1e-7, 1 - 1e-7 - 1e-9
    gain_prob = prob[2] - misclassification_loss(moved, y[:1], None if target is None
                                                 else target[:1], None, "prob")[0]
    gain_log = log[2] - misclassification_loss(moved, y[:1], None if target is None
                                               else target[:1], None, "log")[0]
    assert gain_prob < 1e-6 and gain_log == pytest.approx(math.log(100), rel=1e-6)


def test_scale_is_checked_and_p_err_stays_a_probability():
    with pytest.raises(InputError, match="scale"):
        FiPSO(scale="logit")
    probs = torch.tensor([[0.2, 0.1, 0.7]], dtype=torch.float64)
    y = torch.tensor([0])
    assert misclassification_loss(probs, y, None, 0.75, "log") == pytest.approx(0.05)
