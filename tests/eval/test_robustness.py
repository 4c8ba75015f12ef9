"""The robustness cascade: per-example worst case, attacks only on inputs still robust, fools
recomputed from x_adv, and out-of-ball points refused."""

from __future__ import annotations

import pytest
import torch

from advforge import attacks
from advforge.errors import AdvforgeError, InputError
from advforge.eval.robustness import robust_cascade, standard_attacks

EPS = 0.15
FAST = {"apgd_ce": {"steps": 10}, "apgd_t": {"steps": 10, "n_target_classes": 3},
        "square": {"n_queries": 100}}


class Spy:
    """Wraps an attack and records the labels of every input it is sent."""

    def __init__(self, inner, name: str) -> None:
        self.inner, self.name, self.seen, self.training = inner, name, [], []

    def __call__(self, model, x, y, *, target=None, generator=None):
        self.seen.append(x.clone())
        self.training.append(model.training)
        return self.inner(model, x, y, target=target, generator=generator)


def _fast(eps=EPS):
    return standard_attacks(eps, "linf", hyper=FAST)


def test_cascade_is_the_per_example_worst_case(toy_model, toy_batch):
    x, y = toy_batch
    built = _fast()
    result = robust_cascade(toy_model, x, y, eps=EPS, attacks=built,
                            generator=torch.Generator().manual_seed(0))
    alone = [robust_cascade(toy_model, x, y, eps=EPS, attacks=[a],
                            generator=torch.Generator().manual_seed(0)).robust_accuracy
             for a in built]
    assert result.robust_accuracy <= min(alone)
    assert result.robust_accuracy < result.clean_accuracy  # the attacks do bite at this eps
    n_correct = round(result.clean_accuracy * result.n)
    assert sum(s.added for s in result.attacks) == n_correct - int(result.robust.sum())
    assert [s.attack for s in result.attacks] == ["apgd_ce", "apgd_t", "square"]
    assert result.attacks[0].hyper["steps"] == 10 and result.attacks[1].hyper["eps"] == EPS


def test_later_attacks_see_only_inputs_still_robust_and_the_clean_x(toy_model, toy_batch):
    x, y = toy_batch
    first = Spy(attacks.create("apgd_ce", eps=EPS, steps=10), "first")
    second = Spy(lambda model, xb, yb, **kw: xb.clone(), "second")
    toy_model.train()  # the cascade must not change the mode, whatever it is
    result = robust_cascade(toy_model, x, y, eps=EPS, attacks=[first, second])
    assert toy_model.training and all(first.training) and all(second.training)
    sent = torch.cat(second.seen)
    assert sent.shape[0] == result.attacks[0].n_attacked - result.attacks[0].added
    assert result.attacks[1].n_attacked == sent.shape[0] > 0
    # Exactly the clean images of the inputs still robust after the first attack.
    assert torch.equal(sent, x[result.robust])


def test_clean_mistakes_are_not_robust_and_never_attacked(toy_model, toy_batch):
    x, y = toy_batch
    wrong = (y + 1) % 4
    y_bad = torch.where(torch.arange(len(y)) < 5, wrong, y)
    spy = Spy(lambda model, xb, yb, **kw: xb.clone(), "identity")
    result = robust_cascade(toy_model, x, y_bad, eps=EPS, attacks=[spy])
    assert not result.robust[:5].any()
    assert result.clean_accuracy == result.robust_accuracy == result.robust.float().mean()
    assert spy.seen[0].shape[0] == int(result.robust.sum()) == len(y) - 5


def test_a_lying_attack_adds_nothing(toy_model, toy_batch):
    x, y = toy_batch

    def liar(model, xb, yb, *, target=None, generator=None):
        return xb.clone()  # "fooled everything", it says; x_adv is x

    liar.claims_success = True
    result = robust_cascade(toy_model, x, y, eps=EPS, attacks=[liar])
    assert result.attacks[0].added == 0
    assert result.robust_accuracy == result.clean_accuracy


@pytest.mark.parametrize("norm, shift", [("linf", 2 * EPS), ("l2", 0.2)])
def test_a_point_outside_the_ball_is_refused(toy_model, toy_batch, norm, shift):
    x, y = toy_batch

    def cheat(model, xb, yb, *, target=None, generator=None):
        return (xb + shift).clamp(0, 1)  # in [0, 1], but beyond eps

    eps = EPS if norm == "linf" else 0.1
    with pytest.raises(AdvforgeError, match="outside|distance"):
        robust_cascade(toy_model, x, y, eps=eps, norm=norm, attacks=[cheat])


def test_a_point_outside_the_unit_cube_is_refused(toy_model, toy_batch):
    x, y = toy_batch
    x = x.clone()
    x[:, :, 0, 0] = 0.0  # so a step of -1e-3 leaves the cube while staying inside the ball
    with pytest.raises(AdvforgeError, match=r"\[0, 1\]"):
        robust_cascade(toy_model, x, y, eps=EPS,
                       attacks=[lambda model, xb, yb, **kw: xb - 1e-3])


def test_standard_set_uses_the_papers_budgets():
    linf = standard_attacks(8 / 255)
    assert [a.name for a in linf] == ["apgd_ce", "apgd_t", "square"]
    assert linf[0].steps == linf[1].steps == 100 and linf[1].n_target_classes == 9
    assert linf[2].n_queries == 5000 and all(a.eps == 8 / 255 for a in linf)
    l2 = standard_attacks(0.5, "l2")
    assert [a.name for a in l2] == ["apgd_ce_l2", "apgd_t_l2", "square_l2"]
    assert l2[2].n_queries == 5000 and l2[2].eps == 0.5


def test_l2_cascade_ends_with_square_l2(toy_model, toy_batch, monkeypatch):
    x, y = toy_batch
    import advforge.eval.robustness as rob

    monkeypatch.setitem(rob.PAPER_DEFAULTS, "steps", 3)
    monkeypatch.setitem(rob.PAPER_DEFAULTS, "n_target_classes", 2)
    monkeypatch.setitem(rob.PAPER_DEFAULTS, "n_queries", 20)
    result = robust_cascade(toy_model, x[:8], y[:8], eps=0.5, norm="l2")
    assert [s.attack for s in result.attacks] == ["apgd_ce_l2", "apgd_t_l2", "square_l2"]
    assert result.attacks[2].hyper["n_queries"] == 20 and not result.notes


def test_a_cascade_without_a_gradient_free_attack_says_so(toy_model, toy_batch):
    x, y = toy_batch
    result = robust_cascade(toy_model, x[:8], y[:8], eps=EPS,
                            attacks=standard_attacks(EPS, names=["apgd_ce"], hyper=FAST))
    assert any("no gradient-free attack (square)" in note for note in result.notes)


@pytest.mark.parametrize("kwargs, mentions", [
    ({"eps": 0.0}, "eps"), ({"eps": 1.5}, "exceeds"), ({"eps": 0.1, "norm": "l3"}, "norm"),
    ({"eps": 0.1, "attacks": ["nosuch"]}, "nosuch"), ({"eps": 0.1, "attacks": ["cw_l2"]}, "ball"),
    ({"eps": 0.1, "norm": "l2", "attacks": ["square"]}, "l2"),
    ({"eps": 13.0, "norm": "l2"}, "sqrt"),
])
def test_bad_input_is_refused_before_any_attack(toy_model, toy_batch, kwargs, mentions):
    x, y = toy_batch
    with pytest.raises((InputError, AdvforgeError), match=mentions):
        robust_cascade(toy_model, x, y, **kwargs)
