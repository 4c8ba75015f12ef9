"""APGD-CE and APGD-T (Croce & Hein 2020): the checkpoint schedule, the DLR losses, the best
point kept, and success on the toy task against PGD at the same budget."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import advforge.attacks as attacks
from advforge.attacks.apgd import checkpoints, halve_step
from advforge.attacks.losses import dlr, dlr_targeted
from advforge.errors import InputError
from advforge.models.wrapper import ImageClassifier


def _paper_checkpoints(n: int) -> list[int]:
    """Section 3.2 in exact arithmetic: p_0 = 0, p_1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), w_j = ceil(p_j * N) while p_j <= 1."""
    p = [Fraction(0), Fraction(22, 100)]
    while p[-1] <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - Fraction(3, 100), Fraction(6, 100)))
    return [math.ceil(q * n) for q in p[:-1]]


def test_checkpoints_follow_the_paper_for_100_iterations():
    assert checkpoints(100) == _paper_checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(37) == sorted(set(_paper_checkpoints(37)))


def test_the_step_is_halved_on_either_condition_only():
    # Four examples over a span of 20 steps (rho 0.75: at least 15 increases are needed):
    ups = torch.tensor([14.0, 15.0, 15.0, 15.0])  # (1) fails for the first only
    cut_last = torch.tensor([False, False, True, False])
    f_max = torch.tensor([2.0, 1.0, 1.0, 2.0])
    f_max_last = torch.tensor([1.0, 1.0, 1.0, 1.0])  # (2): f_max unchanged for 2nd and 3rd
    got = halve_step(ups, 20, 0.75, cut_last, f_max, f_max_last)
    # 3rd: f_max unchanged but the step was just halved, so eta changed: no second halving
    assert got.tolist() == [True, True, False, False]


def test_dlr_losses_against_hand_computed_values():
    logits = torch.tensor([[5.0, 1.0, 3.0, 2.0, 0.0]])  # sorted: 5, 3, 2, 1, 0
    y, t = torch.tensor([0]), torch.tensor([3])
    # DLR-T: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) = -(5 - 2) / (5 - 1.5)
    torch.testing.assert_close(dlr_targeted(logits, y, t), torch.tensor([-3.0 / 3.5]))
    # DLR: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3) = -(5 - 3) / (5 - 2)
    torch.testing.assert_close(dlr(logits, y), torch.tensor([-2.0 / 3.0]))


def test_apgd_t_refuses_fewer_than_four_classes():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    model = ImageClassifier(net, num_classes=3, in_channels=1).eval()
    x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    with pytest.raises(InputError, match="at least 4 classes") as info:
        attacks.create("apgd_t", steps=2)(model, x, y)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="at least 4 classes"):  # an unwrapped model too
        attacks.create("apgd_t", steps=2)(net, x, y)


@pytest.mark.parametrize("hyper", [{"rho": 1.5}, {"alpha": 0.0}, {"steps": 0},
                                   {"n_target_classes": 0}, {"eps": 2.0}])
def test_bad_hyperparameters_are_refused(hyper):
    with pytest.raises(InputError):
        attacks.create("apgd_t", **hyper)


def _fooled(model, x_adv, y, target=None):
    with torch.no_grad():
        pred = model(x_adv).argmax(dim=1)
    return pred != y if target is None else pred == target


@pytest.mark.parametrize(("pgd_name", "name", "eps", "steps"), [
    ("pgd", "apgd_ce", 0.13, 100), ("pgd", "apgd_ce", 0.15, 10), ("pgd_l2", "apgd_ce_l2", 1.5, 10)
])
def test_apgd_ce_fools_at_least_as_often_as_pgd(toy_model, toy_batch, pgd_name, name, eps,
                                                steps):
    x, y = toy_batch
    pgd = attacks.create(pgd_name, eps=eps, steps=steps, step_size=eps / 4)(
        toy_model, x, y, generator=torch.Generator().manual_seed(0))
    apgd = attacks.create(name, eps=eps, steps=steps)(
        toy_model, x, y, generator=torch.Generator().manual_seed(0))
    pgd_rate = _fooled(toy_model, pgd, y).float().mean()
    assert 0 < pgd_rate < 1  # a budget where the comparison means something
    assert _fooled(toy_model, apgd, y).float().mean() >= pgd_rate


@pytest.mark.parametrize(("name", "eps"), [("apgd_ce", 0.2), ("apgd_t", 0.2),
                                         ("apgd_ce_l2", 5.0), ("apgd_t_l2", 5.0)])
def test_apgd_hits_targets_and_fools_on_the_toy_task(toy_model, toy_batch, name, eps):
    x, y = toy_batch
    attack = attacks.create(name, eps=eps, steps=20)
    t = (y + 1) % 4
    assert _fooled(toy_model, attack(toy_model, x, y), y).float().mean() >= 0.8
    assert _fooled(toy_model, attack(toy_model, x, y, target=t), y, t).float().mean() >= 0.8


class _Recorder(nn.Module):
    """Passes through the toy model and keeps the logits of every forward pass."""

    def __init__(self, model: ImageClassifier) -> None:
        super().__init__()
        self.model, self.num_classes, self.in_channels = model, 4, 1
        self.training = False
        self.logits: list[torch.Tensor] = []

    def forward(self, x):
        out = self.model(x)
        self.logits.append(out.detach())
        return out


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_t"])
def test_the_returned_point_is_the_best_one_seen(toy_model, toy_batch, name):
    x, y = toy_batch
    t = (y + 1) % 4

    def loss(z):  # the objective each attack ascends towards t
        if name == "apgd_ce":
            return -F.cross_entropy(z, t, reduction="none")
        return dlr_targeted(z, y, t)

    recorder = _Recorder(toy_model)
    x_adv = attacks.create(name, eps=0.05, steps=30)(recorder, x, y, target=t)
    assert not _fooled(toy_model, x_adv, y, t).any()  # eps too small: the best is by loss alone
    seen = torch.stack([loss(z) for z in recorder.logits if z.shape[0] == x.shape[0]])
    with torch.no_grad():
        got = loss(toy_model(x_adv))
    start = seen[1] if name == "apgd_t" else seen[0]  # apgd_t first ranks targets on clean x
    assert (got > start).all()
    torch.testing.assert_close(got, seen.amax(dim=0), rtol=0, atol=1e-5)


def test_restarts_never_lose_a_success(toy_model, toy_batch):
    x, y = toy_batch
    one = attacks.create("apgd_ce", eps=0.13, steps=10)(
        toy_model, x, y, generator=torch.Generator().manual_seed(0))
    many = attacks.create("apgd_ce", eps=0.13, steps=10, restarts=3)(
        toy_model, x, y, generator=torch.Generator().manual_seed(0))
    assert (_fooled(toy_model, many, y) >= _fooled(toy_model, one, y)).all()


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_t"])
def test_inputs_already_misclassified_are_returned_untouched(toy_model, toy_batch, name):
    """As in AutoAttack, only inputs the model still classifies right are attacked."""
    x, y = toy_batch
    wrong = (y + 1) % 4  # every clean prediction is now "misclassified"
    calls = []
    toy_model.register_forward_pre_hook(lambda m, inp: calls.append(inp[0].shape[0]))
    x_adv = attacks.create(name, eps=0.3, steps=5)(toy_model, x, wrong)
    assert torch.equal(x_adv, x)
    assert calls == [x.shape[0]]  # the one clean forward pass, no search
