"""evaluate(): the counting protocol, against oracle models whose predictions are known."""

from __future__ import annotations

import functools
import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import tqdm

from advforge.errors import AdvforgeError, InputError
from advforge.eval import AttackResult, evaluate, sample_grid

K = 4  # classes of the code model (tests/eval/conftest.py)

REQUIRED_KEYS = {
    "attack", "hyper", "targeted", "n_evaluated", "clean_accuracy", "success_rate",
    "per_target", "confusion", "l2", "linf", "seconds", "seconds_per_1000",
}  # fmt: skip


def _mislabel(y: torch.Tensor, idx: list[int]) -> torch.Tensor:
    """Give inputs ``idx`` a wrong label, so the model misclassifies exactly those."""
    y = y.clone()
    y[idx] = (y[idx] + 1) % K
    return y


# --- counting over correctly classified inputs only -------------------------------------------


def test_success_counted_only_over_correct_inputs(code_model, code_batch, set_code, identity):
    x, y = code_batch
    y_bad = _mislabel(y, [0, 5, 6])  # 3 of 11 now misclassified
    idle = evaluate(identity, code_model, x, y_bad)
    assert (idle.n_inputs, idle.n_correct) == (11, 8)
    assert idle.clean_accuracy == pytest.approx(8 / 11)
    assert idle.n_evaluated == 8 and idle.n_success == 0 and idle.success_rate == 0.0
    # An attack that always flips gets 8/8, not 11/11: the model's own mistakes earn no credit.
    flip = evaluate(set_code(), code_model, x, y_bad)
    assert (flip.n_evaluated, flip.n_success, flip.success_rate) == (8, 8, 1.0)
    assert flip.robust_accuracy == 0.0
    assert "classified correctly" in flip.note and "8 of 11" in flip.note


def test_untargeted_success_is_prediction_differs_from_label(code_model, code_batch, set_code):
    x, y = code_batch
    attack = set_code()
    r = evaluate(attack, code_model, x, y)
    assert not r.targeted and r.target_rule == "none"
    assert r.per_target == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}  # keyed by true class
    assert r.per_target_n == {0: 3, 1: 3, 2: 3, 3: 2}
    # Rows = true class, columns = prediction; the attack sends c to c + 1.
    for c in range(K):
        assert r.confusion[c, (c + 1) % K] == r.per_target_n[c]
    assert all(call["target"] is None for call in attack.calls)


# --- target protocols -------------------------------------------------------------------------


def test_targets_all_expands_to_every_other_class(code_model, code_batch, set_code):
    x, y = code_batch
    attack = set_code(fail_towards=(2,))
    r = evaluate(attack, code_model, x, y, targets="all", batch_size=5)
    n = x.shape[0]
    assert r.targeted and r.target_rule == "all"
    assert r.n_evaluated == n * (K - 1) and r.n_skipped == 0
    assert sum(c["n"] for c in attack.calls) == n * (K - 1)
    assert max(c["n"] for c in attack.calls) <= 5
    # Each input is sent towards each class but its own, exactly once.
    sent = {
        (int(yy), int(t)) for c in attack.calls for yy, t in zip(c["y"], c["target"], strict=True)
    }
    assert sent == {(a, b) for a in range(K) for b in range(K) if a != b}
    assert set(r.per_target) == set(range(K))
    assert r.per_target[2] == 0.0 and all(r.per_target[k] == 1.0 for k in (0, 1, 3))
    assert r.n_success == r.n_evaluated - r.per_target_n[2]
    assert r.mean_per_target == pytest.approx(0.75)


def test_targets_all_skips_misclassified_inputs(code_model, code_batch, set_code):
    x, y = code_batch
    r = evaluate(set_code(), code_model, x, _mislabel(y, [1, 2]), targets="all")
    assert r.n_correct == 9 and r.n_evaluated == 9 * (K - 1)


def test_confusion_rows_sum_to_evaluated_counts(code_model, code_batch, set_code):
    x, y = code_batch
    r = evaluate(set_code(fail_towards=(1, 3)), code_model, x, y, targets="all")
    assert r.confusion.shape == (K, K)
    assert int(r.confusion.sum()) == r.n_evaluated
    for t in range(K):
        assert int(r.confusion[t].sum()) == r.per_target_n[t]
        assert int(r.confusion[t, t]) == round(r.per_target[t] * r.per_target_n[t])
    assert int(r.confusion[1, 2]) == r.per_target_n[1]  # the failure lands on (t + 1) % K


def test_int_target_skips_inputs_of_that_class(code_model, code_batch, set_code):
    x, y = code_batch
    attack = set_code()
    r = evaluate(attack, code_model, x, y, targets=2)
    assert r.target_rule == "fixed" and r.targeted
    assert r.n_skipped == int((y == 2).sum()) == 3
    assert r.n_evaluated == 11 - 3 and r.success_rate == 1.0
    assert r.per_target == {2: 1.0}
    assert "skipped" in r.note


def test_scalar_targets_behave_like_int(code_model, code_batch, set_code):
    x, y = code_batch
    ref = evaluate(set_code(), code_model, x, y, targets=3)
    for spec in (torch.tensor(3), np.int64(3)):
        r = evaluate(set_code(), code_model, x, y, targets=spec)
        assert (r.target_rule, r.n_skipped, r.per_target) == ("fixed", 2, ref.per_target)


def test_tensor_targets_skip_pairs_equal_to_label(code_model, code_batch, set_code):
    x, y = code_batch
    targets = torch.tensor([0, 2, 2, 3, 1, 1, 0, 0, 0, 3, 1])  # equal to y at 0, 2, 3, 5, 8
    r = evaluate(set_code(fail_towards=(0,)), code_model, x, y, targets=targets)
    assert r.target_rule == "per-input"
    assert (r.n_skipped, r.n_evaluated) == (5, 6)
    assert r.per_target_n == {0: 2, 1: 2, 2: 1, 3: 1}
    assert r.per_target[0] == 0.0 and r.n_success == 4


def test_batch_size_does_not_change_the_result(code_model, code_batch, set_code):
    x, y = code_batch
    results = [
        evaluate(set_code(fail_towards=(3,)), code_model, x, y, targets="all", batch_size=b)
        for b in (1, 4, 256)
    ]
    for r in results[1:]:
        assert torch.equal(r.confusion, results[0].confusion)
        assert r.distances == results[0].distances


# --- distances, time, bookkeeping -------------------------------------------------------------


def test_distance_statistics_match_hand_computed(code_model, code_batch, set_code):
    x, y = code_batch
    r = evaluate(set_code(fail_towards=(0,)), code_model, x, y, targets="all")
    # Only the code pixel moves: from y / (K-1) to dest / (K-1), dest = t or (t + 1) % K.
    sizes, hits = [], []
    for label in y.tolist():
        for t in range(K):
            if t != label:
                dest = (t + 1) % K if t == 0 else t
                sizes.append(abs(dest - label) / (K - 1))
                hits.append(dest == t)
    sizes_t = torch.tensor(sizes)
    for key in ("l2", "linf"):
        assert r.distances[key]["min"] == pytest.approx(sizes_t.min().item(), abs=1e-6)
        assert r.distances[key]["mean"] == pytest.approx(sizes_t.mean().item(), abs=1e-6)
        assert r.distances[key]["max"] == pytest.approx(sizes_t.max().item(), abs=1e-6)
        succ = sizes_t[torch.tensor(hits)].mean().item()
        assert r.distances[key]["mean_success"] == pytest.approx(succ, abs=1e-6)
    zero_moves = sum(s == 0 for s in sizes)  # a failed pair may land back on the label's code
    assert r.l0["mean"] == pytest.approx(1 - zero_moves / len(sizes))
    assert r.l0["max"] == 1.0


def test_time_covers_only_attack_calls(code_model, code_batch):
    x, y = code_batch

    def slow(model, xb, yb, *, target=None, generator=None):
        time.sleep(0.02)
        return xb.clone()

    r = evaluate(slow, code_model, x, y, batch_size=4)  # 3 calls
    assert 0.06 <= r.seconds < 1.0
    assert r.attack == "slow"  # a plain function is named after itself
    assert r.seconds_per_1000 == pytest.approx(1000 * r.seconds / r.n_evaluated)


def test_model_used_as_is_and_generator_passed(toy_model, toy_batch, set_code):
    x, y = toy_batch
    toy_model.train()  # evaluation must not flip it back
    attack = set_code()
    g = torch.Generator().manual_seed(0)
    evaluate(attack, toy_model, x, y, targets="all", generator=g, batch_size=50)
    assert len(attack.calls) == 2
    assert toy_model.training
    assert all(c["training"] and c["generator"] is g for c in attack.calls)
    assert all(p.grad is None for p in toy_model.parameters())


def test_progress_factory_gets_every_pair(code_model, code_batch, set_code):
    x, y = code_batch
    log: dict = {"updates": 0, "closed": False}

    class Bar:
        def __init__(self, total, desc):
            log.update(total=total, desc=desc)

        def update(self, n):
            log["updates"] += n

        def close(self):
            log["closed"] = True

    r = evaluate(set_code(), code_model, x, y, targets="all", progress=Bar, batch_size=7)
    assert log == {"updates": r.n_evaluated, "closed": True, "total": r.n_evaluated,
                   "desc": "set_code"}  # fmt: skip


def test_tqdm_works_as_progress(code_model, code_batch, set_code, capsys):
    x, y = code_batch
    r = evaluate(set_code(), code_model, x, y, progress=functools.partial(tqdm.tqdm, disable=True))
    assert r.n_evaluated == 11
    assert capsys.readouterr().out == ""  # library code never prints


def test_keep_adversarial_and_names(code_model, code_batch, set_code):
    x, y = code_batch
    r = evaluate(set_code(), code_model, x, y, targets=1, keep_adversarial=True,
                 attack_name="mine", hyper={"eps": 0.3})  # fmt: skip
    assert r.attack == "mine" and r.hyper == {"eps": 0.3}
    assert r.x_adv.shape == (r.n_evaluated, *x.shape[1:])
    assert torch.equal(y[r.source_index] != 1, torch.ones(r.n_evaluated, dtype=torch.bool))
    assert torch.equal(r.target, torch.full((r.n_evaluated,), 1))
    assert torch.equal(code_model(r.x_adv).argmax(1), r.target)
    assert "x_adv" not in r.to_dict()


def test_default_name_and_hyper_from_attack(code_model, code_batch, set_code):
    x, y = code_batch
    r = evaluate(set_code(fail_towards=(1,)), code_model, x, y)
    assert r.attack == "set_code" and r.hyper == {"fail_towards": [1]}


def test_to_dict_is_json_and_round_trips(code_model, code_batch, set_code):
    x, y = code_batch
    r = evaluate(set_code(fail_towards=(2,)), code_model, x, y, targets="all")
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert REQUIRED_KEYS <= set(d)
    assert set(d["per_target"]) == {"0", "1", "2", "3"}
    assert d["confusion"] == r.confusion.tolist()
    assert set(d["l2"]) == {"min", "mean", "max", "mean_success"}
    back = AttackResult.from_dict(d)
    assert back.per_target == r.per_target and torch.equal(back.confusion, r.confusion)
    assert back.to_dict() == d


def test_nothing_evaluated_gives_null_rates(code_model, set_code, encoder):
    y = torch.tensor([1, 1, 1])
    r = evaluate(set_code(), code_model, encoder(y), y, targets=1)
    assert (r.n_evaluated, r.n_skipped, r.success_rate, r.seconds_per_1000) == (0, 3, None, None)
    assert r.l2 == {"min": None, "mean": None, "max": None, "mean_success": None}
    json.dumps(r.to_dict(), allow_nan=False)


# --- a real gradient attack on the trained toy classifier ----------------------------------------


def _fgsm(model, x, y, *, target=None, generator=None, eps=0.3):
    """Tiny FGSM (Goodfellow et al.): one signed-gradient step, descending towards a target."""
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = (
            -F.cross_entropy(logits, target) if target is not None else F.cross_entropy(logits, y)
        )
        (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def test_fgsm_on_toy_classifier(toy_model, toy_batch):
    x, y = toy_batch
    r = evaluate(_fgsm, toy_model, x, y)
    assert r.clean_accuracy == 1.0
    assert r.success_rate > 0.5
    assert r.linf["max"] <= 0.3 + 1e-6
    adv = _fgsm(toy_model, x, y)
    with torch.no_grad():
        assert r.n_success == int((toy_model(adv).argmax(1) != y).sum())
    t = evaluate(_fgsm, toy_model, x, y, targets="all")
    assert t.n_evaluated == x.shape[0] * 3 and 0 < t.success_rate <= 1


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"targets": "every"}, "'all'"),
        ({"targets": 1.5}, "targets must be"),
        ({"targets": 7}, "out of range"),
        ({"targets": torch.tensor([0, 1])}, r"shape \(11,\)"),
        ({"targets": torch.full((11,), 9)}, "out of range"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_raise_input_error(code_model, code_batch, kwargs, match, set_code):
    x, y = code_batch
    with pytest.raises(InputError, match=match):
        evaluate(set_code(), code_model, x, y, **kwargs)


def test_bad_tensors_raise_input_error(code_model, code_batch, identity):
    x, y = code_batch
    with pytest.raises(InputError, match="shape"):
        evaluate(identity, code_model, x, y[:5])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        evaluate(identity, code_model, x * 3, y)
    with pytest.raises(InputError, match="channels"):
        evaluate(identity, code_model, x.repeat(1, 3, 1, 1), y)
    with pytest.raises(InputError, match="class index"):
        evaluate(identity, code_model, x, y + K)


def test_attack_returning_wrong_shape_is_reported(code_model, code_batch):
    x, y = code_batch
    with pytest.raises(AdvforgeError, match="returned"):
        evaluate(lambda m, xb, yb, **kw: xb[:, :, :3], code_model, x, y)


# --- sample grid (Fig. 3 data) ------------------------------------------------------------------


def test_sample_grid_picks_first_correct_per_class(code_model, code_batch, set_code):
    x, y = code_batch
    y_bad = _mislabel(y, [0])  # the first class-0 input is now misclassified
    attack = set_code(fail_towards=(3,))
    s = sample_grid(attack, code_model, x, y_bad, K, batch_size=5)
    assert s["index"].tolist() == [4, 1, 2, 3]
    assert s["present"].all()
    assert s["x_adv"].shape == (K, K, *x.shape[1:])
    for c in range(K):
        assert torch.equal(s["x_adv"][c, c], x[s["index"][c]])  # clean on the diagonal
    expected = torch.tensor([[t if t != 3 or s_ == 3 else 0 for s_ in range(K)] for t in range(K)])
    assert torch.equal(s["pred"], expected)
    assert sum(c["n"] for c in attack.calls) == K * (K - 1)
    assert s["targets"].tolist() == list(range(K))


def test_sample_grid_single_target_row(code_model, code_batch, set_code):
    """An attacker that knows one target (AdvGAN) gets a one-row grid; it is never asked for
    another target, nor for the source that already is that class."""
    x, y = code_batch
    attack = set_code()
    s = sample_grid(attack, code_model, x, y, K, targets=[2])
    assert s["x_adv"].shape == (1, K, *x.shape[1:]) and s["pred"].tolist() == [[2, 2, 2, 2]]
    assert torch.equal(s["x_adv"][0, 2], x[2])  # the class-2 source stays clean
    assert all((c["target"] == 2).all() for c in attack.calls)
    assert sum(c["n"] for c in attack.calls) == K - 1
    with pytest.raises(InputError, match="targets"):
        sample_grid(attack, code_model, x, y, K, targets=[K])


def test_sample_grid_marks_missing_classes_and_caps_size(code_model, set_code, encoder):
    y = torch.tensor([0, 0, 2, 1])
    s = sample_grid(set_code(), code_model, encoder(y), y, K, max_classes=3)
    assert s["present"].tolist() == [True, True, True] and s["x"].shape[0] == 3
    y = torch.tensor([0, 0, 2])
    s = sample_grid(set_code(), code_model, encoder(y), y, K)
    assert s["present"].tolist() == [True, False, True, False]
    assert (s["pred"][:, 1] == -1).all() and s["pred"][1, 0] == 1
