"""The generator's weight average (g_ema): the update rule against a hand-computed oracle,
and that the averaged generator is the one that attacks and is checkpointed."""

from __future__ import annotations

import pytest
import torch
from gen_helpers import NUM_CLASSES, changed, snapshot, tiny_aigan
from toy_task import make_toy_batch

from advforge.errors import InputError
from advforge.generative import AIGANTrainer, GeneratorAttack, load_attacker
from advforge.generative.aigan import AIGANConfig, train_aigan
from advforge.generative.ema import WeightAverage

TRAIN = make_toy_batch(48, seed=3)


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def _perturb(net: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g))
    net.train()(torch.randn(8, 3, generator=g))  # moves the batch-norm running statistics


def test_average_follows_the_warmed_up_decay():
    net = _net()
    avg = WeightAverage(net, decay=0.5)
    _perturb(net, 1)
    avg.update(net)  # the first update copies the weights exactly
    for a, p in zip(avg.average.parameters(), net.parameters(), strict=True):
        assert torch.equal(a, p)
    history = [[p.detach().clone() for p in net.parameters()]]
    for n in (1, 2, 3):
        _perturb(net, n + 1)
        current = [p.detach().clone() for p in net.parameters()]
        decay = min(0.5, (1 + n) / (10 + n))  # 0.1818, 0.25, 0.3077: the warm-up binds
        history.append([decay * h + (1 - decay) * c
                        for h, c in zip(history[-1], current, strict=True)])
        avg.update(net)
    for a, expected in zip(avg.average.parameters(), history[-1], strict=True):
        torch.testing.assert_close(a, expected)
    for a, b in zip(avg.average.buffers(), net.buffers(), strict=True):
        assert torch.equal(a, b)  # running statistics are copied, not averaged
    assert int(avg.updates) == 4
    assert all(not p.requires_grad for p in avg.average.parameters())


def test_average_decay_caps_the_warm_up():
    net = _net()
    avg = WeightAverage(net, decay=0.05)  # below every warm-up value: the cap binds
    avg.update(net)
    before = [p.detach().clone() for p in avg.average.parameters()]
    _perturb(net, 7)
    avg.update(net)
    for a, b, p in zip(avg.average.parameters(), before, net.parameters(), strict=True):
        torch.testing.assert_close(a, 0.05 * b + 0.95 * p.detach())


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_bad_decay_is_refused(decay):
    with pytest.raises(InputError, match="g_ema must be in"):
        AIGANConfig.from_flat({"g_ema": decay})
    with pytest.raises(InputError, match="decay must be in"):
        WeightAverage(_net(), decay)


def test_the_average_attacks_and_is_checkpointed(toy_model, tmp_path):
    trainer = AIGANTrainer.for_data(tiny_aigan(g_ema=0.9, epochs=2), toy_model, TRAIN)
    assert trainer.served is trainer.G_avg.average
    start = snapshot(trainer.served)
    train_aigan(trainer, TRAIN, run_dir=tmp_path)
    assert changed(start, trainer.served)
    assert changed(snapshot(trainer.G), trainer.served)  # an average, not the last iterate
    x, y = make_toy_batch(12, seed=11)
    t = (y + 1) % NUM_CLASSES
    served = GeneratorAttack(trainer.served, 0.3)(toy_model, x, y, target=t)
    assert torch.equal(load_attacker(tmp_path)(toy_model, x, y, target=t), served)
    assert torch.equal(trainer.forge(x, t), served)
    last = GeneratorAttack(trainer.G, 0.3)(toy_model, x, y, target=t)
    assert not torch.equal(last, served)
