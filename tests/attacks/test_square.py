"""Square Attack: gradient-free, the authors' p schedule, query accounting, budget and success."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import advforge.attacks as attacks
import advforge.attacks.square as square_module
from advforge.attacks.square import p_schedule
from advforge.errors import InputError


class GradFreeProbe(nn.Module):
    """Wraps a model: refuses any forward that could build a graph, and counts input rows."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_classes, self.in_channels = model.num_classes, model.in_channels
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.requires_grad:
            raise AssertionError("square asked for a gradient")
        self.rows += x.shape[0]
        return self.model(x)


def _predict(model, x):
    with torch.no_grad():
        return model(x).argmax(dim=1)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("targeted", [False, True])
def test_never_computes_a_gradient_and_counts_every_query(toy_model, toy_batch, targeted):
    x, y = toy_batch
    probe = GradFreeProbe(toy_model)
    t = (y + 1) % 4 if targeted else None
    attack = attacks.create("square", eps=0.15, n_queries=40)
    x_adv, queries = attack.search(probe, x, y, t, _gen())
    assert probe.rows == len(x) + queries.sum().item()  # the clean check, then the search
    assert (queries >= 1).all() and queries.max() <= 40
    assert torch.equal(attack(probe, x, y, target=t, generator=_gen()), x_adv)


@pytest.mark.parametrize("targeted", [False, True])
def test_lowers_accuracy_and_hits_targets_on_the_toy_task(toy_model, toy_batch, targeted):
    x, y = toy_batch
    assert torch.equal(_predict(toy_model, x), y)
    t = (y + 1) % 4 if targeted else None
    rates = []
    for n_queries in (1, 300):  # the stripe initialisation alone, then the search
        attack = attacks.create("square", eps=0.2, n_queries=n_queries)
        pred = _predict(toy_model, attack(toy_model, x, y, target=t, generator=_gen()))
        rates.append((pred != y if t is None else pred == t).float().mean())
    assert rates[0] <= 0.2 and rates[1] >= 0.8


def test_p_schedule_halves_at_the_papers_breakpoints():
    # (iteration, expected p / p_init): the authors' p_selection, for 10,000 queries.
    table = [(0, 1), (10, 1), (11, 2), (50, 2), (51, 4), (200, 4), (201, 8), (500, 8),
             (501, 16), (1000, 16), (1001, 32), (2000, 32), (2001, 64), (4000, 64),
             (4001, 128), (6000, 128), (6001, 256), (8000, 256), (8001, 512), (9999, 512)]
    for i, div in table:
        assert p_schedule(i, 10000, 0.8) == pytest.approx(0.8 / div), i
    # AutoAttack's standard setting keeps the iterations at 5,000 queries; rescaling stretches.
    assert p_schedule(30, 5000, 0.8) == pytest.approx(0.4)
    assert p_schedule(30, 5000, 0.8, rescale=True) == pytest.approx(0.2)  # iteration 60
    assert p_schedule(4999, 5000, 0.8) == pytest.approx(0.8 / 128)


def test_the_attack_follows_the_schedule(toy_model, toy_batch, monkeypatch):
    calls = []

    def recording(i, n_queries, p_init, rescale):
        calls.append((i, n_queries, p_init, rescale))
        return p_schedule(i, n_queries, p_init, rescale)

    monkeypatch.setattr(square_module, "p_schedule", recording)
    x, y = toy_batch
    attacks.create("square", eps=0.05, n_queries=20, p_init=0.5)(toy_model, x, y,
                                                                 generator=_gen())
    assert calls == [(i, 20, 0.5, False) for i in range(19)]


def test_inputs_already_fooled_are_left_unchanged_and_cost_no_query(toy_model, toy_batch):
    x, y = toy_batch
    wrong = torch.arange(len(y)) % 2 == 0
    y_given = torch.where(wrong, (y + 1) % 4, y)  # the model predicts y: these are fooled
    probe = GradFreeProbe(toy_model)
    x_adv, queries = attacks.create("square", eps=0.3, n_queries=30).search(
        probe, x, y_given, None, _gen())
    assert torch.equal(x_adv[wrong], x[wrong])
    assert (queries[wrong] == 0).all() and (queries[~wrong] >= 1).all()
    t = torch.where(wrong, y, (y + 1) % 4)  # targeted: the target is already the prediction
    x_t, q_t = attacks.create("square", eps=0.3, n_queries=30).search(
        probe, x, (y + 2) % 4, t, _gen())
    assert torch.equal(x_t[wrong], x[wrong]) and (q_t[wrong] == 0).all()


def test_output_stays_in_the_ball_and_the_box(toy_model, toy_batch):
    x, y = toy_batch
    x = x.clone()
    x[:, :, :3] = 0.0  # pixels on both edges of [0, 1], where the clip is active
    x[:, :, -3:] = 1.0
    t = (y + 1) % 4
    for eps in (0.02, 0.4):
        attack = attacks.create("square", eps=eps, n_queries=60)
        for target in (None, t):
            x_adv, _ = attack.search(toy_model, x, y, target, _gen())
            assert (x_adv - x).abs().max() <= eps + 1e-6
            assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_a_failed_search_returns_its_best_iterate_not_the_clean_input(toy_model, toy_batch):
    x, y = toy_batch
    x_adv, queries = attacks.create("square", eps=0.01, n_queries=25).search(
        toy_model, x, y, None, _gen())
    assert (queries == 25).all()  # nothing fooled: the whole budget, init included
    assert ((x_adv - x).flatten(1).abs().amax(dim=1) > 0).all()


@pytest.mark.parametrize("hyper", [{"n_queries": 0}, {"p_init": 0.0}, {"p_init": 1.5},
                                   {"eps": 2.0}, {"rescale_schedule": "yes"}])
def test_bad_hyperparameters_are_refused(hyper):
    with pytest.raises(InputError):
        attacks.create("square", **hyper)
