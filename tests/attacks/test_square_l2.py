"""L2 Square Attack: gradient-free, the authors' pseudo-Gaussian pattern, budget and success."""

from __future__ import annotations

import pytest
import torch
from test_square import GradFreeProbe

import advforge.attacks as attacks
from advforge.attacks.square_l2 import pseudo_gaussian, rectangles
from advforge.errors import InputError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _l2(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).norm(dim=1)


def test_rectangles_match_the_hand_computed_pattern():
    # 1 x 3: one centred cell (weight 1) inside the 3-wide rectangle (1/4), normalised.
    expected = torch.tensor([[0.25, 1.25, 0.25]])
    assert torch.allclose(rectangles(1, 3), expected / expected.norm())
    pattern = pseudo_gaussian(5, transpose=False)
    assert pattern.norm() == pytest.approx(1.0)
    assert (pattern[:2] > 0).all() and (pattern[2:] < 0).all()  # + top half, - bottom half
    assert torch.equal(pseudo_gaussian(5, transpose=True), pattern.T)


@pytest.mark.parametrize("targeted", [False, True])
def test_never_computes_a_gradient_and_counts_every_query(toy_model, toy_batch, targeted):
    x, y = toy_batch
    probe = GradFreeProbe(toy_model)
    t = (y + 1) % 4 if targeted else None
    attack = attacks.create("square_l2", eps=1.0, n_queries=30)
    x_adv, queries = attack.search(probe, x, y, t, _gen())
    assert probe.rows == len(x) + queries.sum().item()
    assert torch.equal(attack(probe, x, y, target=t, generator=_gen()), x_adv)


def test_lowers_accuracy_and_stays_in_the_ball_and_the_box(toy_model, toy_batch):
    x, y = toy_batch
    x = x.clone()
    x[:, :, :2] = 0.0  # pixels on the edge of [0, 1], where the clamp is active
    fooled = []
    for n_queries in (1, 300):  # the initialisation alone, then the search
        x_adv = attacks.create("square_l2", eps=2.0, n_queries=n_queries)(
            toy_model, x, y, generator=_gen())
        assert _l2(x_adv - x).max() <= 2.0 * (1 + 1e-5)
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        with torch.no_grad():
            fooled.append((toy_model(x_adv).argmax(dim=1) != y).float().mean())
    assert fooled[1] >= 0.5 and fooled[1] > fooled[0]


def test_the_loss_never_rises_during_the_search(toy_model, toy_batch):
    x, y = toy_batch
    margins = []
    for n_queries in (1, 10, 40, 120):
        x_adv = attacks.create("square_l2", eps=0.5, n_queries=n_queries)(
            toy_model, x, y, generator=_gen())
        with torch.no_grad():
            logits = toy_model(x_adv)
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        margins.append(true - other)
    for before, after in zip(margins, margins[1:], strict=False):
        assert (after <= before + 1e-5).all()


@pytest.mark.parametrize("hyper", [{"n_queries": 0}, {"p_init": 0.0}, {"eps": -1.0},
                                   {"rescale_schedule": "yes"}])
def test_bad_hyperparameters_are_refused(hyper):
    with pytest.raises(InputError):
        attacks.create("square_l2", **hyper)


def test_an_eps_above_the_image_diameter_is_refused(toy_model, toy_batch):
    x, y = toy_batch
    with pytest.raises(InputError, match="sqrt"):
        attacks.create("square_l2", eps=13.0)(toy_model, x, y)
