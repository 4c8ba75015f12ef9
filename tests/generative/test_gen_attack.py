"""GeneratorAttack / RoutedGeneratorAttack: the Attack contract and input validation."""

from __future__ import annotations

import pytest
import torch
from gen_helpers import NUM_CLASSES, SIZE

from advforge.attacks.base import Attack
from advforge.errors import InputError
from advforge.generative import GeneratorAttack, RoutedGeneratorAttack
from advforge.generative.nets import Generator


def _gen(num_classes=NUM_CLASSES, eps=0.3, seed=0) -> Generator:
    torch.manual_seed(seed)
    return Generator(1, SIZE, num_classes, eps, ch=4)


def _targets(y: torch.Tensor) -> torch.Tensor:
    return (y + 1) % NUM_CLASSES


def test_contract(toy_model, toy_batch):
    x, y = toy_batch
    attack = GeneratorAttack(_gen(), 0.3)
    assert isinstance(attack, Attack)
    grads_before = [p.grad for p in toy_model.parameters()]
    gen_mode = attack.generator.training
    x_adv = attack(toy_model, x, y, target=_targets(y))
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6
    assert torch.equal(x_adv, attack(None, x, y, target=_targets(y)))  # deterministic
    assert [p.grad for p in toy_model.parameters()] == grads_before  # all None
    assert attack.generator.training == gen_mode and not toy_model.training


def test_chunks_give_the_whole_batch_result(toy_batch):
    x, y = toy_batch
    g = _gen()
    for _ in range(3):  # give the batch-norm running statistics something other than 0/1
        g(x, _targets(y))
    whole = GeneratorAttack(g, 0.3, chunk_size=x.shape[0])(None, x, y, target=_targets(y))
    chunked = GeneratorAttack(g, 0.3, chunk_size=3)(None, x, y, target=_targets(y))
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    with pytest.raises(InputError, match="chunk_size"):
        GeneratorAttack(g, 0.3, chunk_size=0)


def test_int_target_and_smaller_eps(toy_batch):
    x, y = toy_batch
    keep = y != 2
    x, y = x[keep], y[keep]
    gen = _gen()
    full = GeneratorAttack(gen)(None, x, y, target=2)
    assert torch.equal(full, GeneratorAttack(gen)(None, x, y, target=torch.full_like(y, 2)))
    small = GeneratorAttack(gen, 0.05)(None, x, y, target=2)
    assert (small - x).abs().max() <= 0.05 + 1e-6
    expected = (x + (full - x).clamp(-0.05, 0.05)).clamp(0, 1)  # clipping G's own output
    raw = (x + gen.eval()(x, torch.full_like(y, 2))).clamp(0, 1)
    assert torch.equal(full, raw)
    assert torch.allclose(small[(full > 0) & (full < 1)], expected[(full > 0) & (full < 1)])


def test_float64_input_keeps_its_dtype(toy_batch):
    x, y = toy_batch
    x_adv = GeneratorAttack(_gen())(None, x.double(), y, target=_targets(y))
    assert x_adv.dtype == torch.float64


@pytest.mark.parametrize("case", [
    "no_target", "target_is_label", "target_out_of_range", "nan", "range", "channels",
    "size", "labels_shape", "labels_float"])
def test_rejects_bad_inputs(toy_batch, case):
    x, y = toy_batch
    t = _targets(y)
    kwargs = {"target": t}
    if case == "no_target":
        kwargs = {}
    elif case == "target_is_label":
        kwargs = {"target": y}
    elif case == "target_out_of_range":
        kwargs = {"target": torch.full_like(y, NUM_CLASSES)}
    elif case == "nan":
        x = x.clone()
        x[0, 0, 0, 0] = float("nan")
    elif case == "range":
        x = x * 3
    elif case == "channels":
        x = x.expand(-1, 3, -1, -1)
    elif case == "size":
        x = torch.rand(x.shape[0], 1, 16, 16)
    elif case == "labels_shape":
        y = y[:-1]
    elif case == "labels_float":
        y = y.float()
    with pytest.raises(InputError):
        GeneratorAttack(_gen())(None, x, y, **kwargs)


def test_constructor_checks():
    with pytest.raises(InputError):
        GeneratorAttack(torch.nn.Linear(2, 2), 0.3)
    with pytest.raises(InputError):
        GeneratorAttack(_gen(), -0.1)
    with pytest.raises(InputError):
        GeneratorAttack(_gen(), 0.3, fixed_target=1)  # conditional: target per call
    with pytest.raises(InputError):
        GeneratorAttack(_gen(num_classes=None), 0.3)  # unconditional needs its target
    with pytest.raises(InputError):
        GeneratorAttack(_gen(num_classes=None), 0.3, fixed_target=9, num_classes=NUM_CLASSES)


def test_fixed_target_generator(toy_batch):
    x, y = toy_batch
    keep = y != 3
    x, y = x[keep], y[keep]
    attack = GeneratorAttack(_gen(num_classes=None), fixed_target=3, num_classes=NUM_CLASSES,
                             kind="advgan")
    x_none = attack(None, x, y)
    assert torch.equal(x_none, attack(None, x, y, target=3))
    assert torch.equal(x_none, attack(None, x, y, target=torch.full_like(y, 3)))
    with pytest.raises(InputError, match="towards class 3"):
        attack(None, x, y, target=(y + 1) % NUM_CLASSES)
    with pytest.raises(InputError):  # inputs of class 3 cannot be attacked towards 3
        attack(None, *toy_batch)


def test_routed_attack_sends_each_input_to_its_target_generator(toy_batch):
    x, y = toy_batch
    subs = {c: GeneratorAttack(_gen(num_classes=None, seed=c), fixed_target=c,
                               num_classes=NUM_CLASSES, kind="advgan")
            for c in range(NUM_CLASSES)}
    routed = RoutedGeneratorAttack(attacks=subs, num_classes=NUM_CLASSES)
    t = _targets(y)
    x_adv = routed(None, x, y, target=t)
    for c in range(NUM_CLASSES):
        m = t == c
        assert torch.equal(x_adv[m], subs[c](None, x[m], y[m]))
    with pytest.raises(InputError):
        routed(None, x, y)  # which generator?
    partial = RoutedGeneratorAttack(attacks={0: subs[0]}, num_classes=NUM_CLASSES)
    with pytest.raises(InputError, match="no generator"):
        partial(None, x, y, target=t)
