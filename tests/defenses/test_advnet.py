"""adv-net: generators, the training step's schedule and modes, resume, settings, defend()."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advforge.data import load
from advforge.defenses import defend, settings_class
from advforge.defenses.advnet import AdvNet, build_generator, load_generator
from advforge.defenses.advnet.nets import GENERATORS, adversarial
from advforge.defenses.advnet.objective import AdvNetObjective
from advforge.errors import InputError
from advforge.models import load_model
from advforge.training import StepContext, TrainConfig, fit
from advforge.utils.distributed import DistInfo

EPS = 0.3


def _splits(size: int = 16, n_train: int = 64):
    return load("synthetic", num_classes=4, channels=1, size=size, n_train=n_train, n_test=32)


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_stay_within_eps_and_the_box(name):
    torch.manual_seed(0)
    g = build_generator(name, 1, 16, 4, width=2).train()
    x = torch.rand(8, 1, 16, 16)
    x[0] = 0.0
    x[1] = 1.0  # the clamp must act at both walls
    y = torch.arange(8) % 4
    for p in g.parameters():  # push the tanh into saturation
        p.data.mul_(50)
    out = g(g.inputs(x, y))
    assert out.shape == x.shape and out.abs().max() <= 1
    x_adv = adversarial(x, out, EPS)
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


class Probe(nn.Module):
    """A tiny classifier that records (training flag, batch size) at every forward."""

    def __init__(self, size: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size * size, 16), nn.ReLU(),
                                 nn.Linear(16, classes))
        self.calls: list[tuple[bool, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, x.shape[0]))
        return self.net(x)


def _objective(splits, tmp_path=None, **kw) -> AdvNetObjective:
    settings = AdvNet(eps=EPS, width=2, **kw)
    train = TrainConfig(arch="model_b", out=str(tmp_path or "unused"), seed=0)
    objective = settings.objective(splits, train)
    objective.plan.out = None if tmp_path is None else str(tmp_path)
    objective.setup(nn.Identity(), DistInfo())
    return objective


def _ctx(model, batch: int, batches: int = 4) -> StepContext:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return StepContext(model=model, module=model, optimizer=opt, epoch=0, batch=batch,
                       batches=batches, generator=torch.Generator().manual_seed(0),
                       info=DistInfo())


def test_g_steps_see_eval_mode_and_the_d_step_train_mode():
    splits = _splits()
    objective = _objective(splits, g_steps=3, g_updates=2)
    probe = Probe().train()
    x, y = splits.train.x[:8], splits.train.y[:8]
    objective.step(_ctx(probe, batch=0), x, y)  # 0 % 2 == 0: G update, then a D step
    # 3 G steps and v = grad_phi F in eval mode, then ONE train-mode forward of 3B images
    assert probe.calls == [(False, 8)] * 4 + [(True, 24)]
    assert probe.training
    probe.calls.clear()
    objective.step(_ctx(probe, batch=1), x, y)  # G update only (+ the clean accuracy probe)
    assert probe.calls == [(False, 8)] * 4 and probe.training


def test_d_step_runs_every_g_updates_batches_and_moves_only_then():
    splits = _splits()
    objective = _objective(splits, g_steps=1, g_updates=3)
    probe = Probe().train()
    x, y = splits.train.x[:8], splits.train.y[:8]
    moved = []
    for batch in range(6):
        before = [p.detach().clone() for p in probe.parameters()]
        objective.step(_ctx(probe, batch=batch, batches=6), x, y)
        after = list(probe.parameters())
        moved.append(any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)))
    assert moved == [True, False, False, True, False, False]


def _trained_probe(splits) -> Probe:
    torch.manual_seed(1)
    d = Probe()
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    for _ in range(10):  # accurate but not saturated: CE still has gradient
        opt.zero_grad()
        F.cross_entropy(d(splits.train.x), splits.train.y).backward()
        opt.step()
    d.zero_grad(set_to_none=True)
    return d


def test_g_ascent_raises_the_adversarial_loss_on_a_fixed_batch():
    splits = _splits()
    objective = _objective(splits, g_steps=5, g_optimizer="adam", g_lr=0.01)
    d = _trained_probe(splits)
    x, y = splits.train.x[:16], splits.train.y[:16]
    inp = objective.g.inputs(x, y)

    def adv_loss() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(d.eval()(adversarial(x, objective.g(inp), EPS)), y))

    before = adv_loss()
    d_before = [p.detach().clone() for p in d.parameters()]
    objective.g_update(_ctx(d.train(), 1), inp, x, y)
    assert adv_loss() > 1.2 * before, before
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters(), strict=True))
    assert all(p.grad is None for p in d.parameters())  # D's gradients untouched


def _fit(tmp_path, epochs: int, resume: bool = False):
    splits = _splits()
    settings = AdvNet(eps=EPS, width=2, g_steps=2, g_updates=2, g_optimizer="adam",
                      g_lr=0.01, g_momentum=0.5)
    train = TrainConfig(arch="model_b", dataset="synthetic", epochs=epochs, batch_size=16,
                        optimizer="sgd", lr=0.05, out=str(tmp_path), resume=resume,
                        augment="none")
    return defend(settings, train, splits)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight = _fit(tmp_path / "a", 2)
    _fit(tmp_path / "b", 1)
    torch.manual_seed(123)  # resume must not depend on the caller's RNG
    resumed = _fit(tmp_path / "b", 2, resume=True)
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.allclose(va, vb, atol=1e-6, rtol=0), ka
    ga, gb = load_generator(tmp_path / "a")[0], load_generator(tmp_path / "b")[0]
    for (ka, va), (_, vb) in zip(ga.state_dict().items(), gb.state_dict().items(), strict=True):
        assert torch.allclose(va.float(), vb.float(), atol=1e-6, rtol=0), ka
    assert [r["train_loss"] for r in resumed["history"]] == pytest.approx(
        [r["train_loss"] for r in straight["history"]], abs=1e-6)


def test_defend_writes_a_loadable_classifier_and_its_generator(tmp_path):
    splits = _splits(size=28)
    train = TrainConfig(arch="model_b", dataset="synthetic", epochs=1, limit_train=64,
                        limit_test=32, out=str(tmp_path))
    result = defend(AdvNet(g_steps=1, width=4), train, splits)
    model = load_model(tmp_path)
    assert model(splits.test.x[:2]).shape == (2, 4)
    config = json.loads((tmp_path / "config.json").read_text())
    defense = config["extra"]["defense"]
    assert defense["name"] == "adv-net" and defense["eps"] == pytest.approx(0.3)
    assert defense["generator"] == "g0" and 0 <= result["test_accuracy"] <= 1
    g, perturb = load_generator(tmp_path)
    x = splits.test.x[:4]
    x_adv = perturb(x)
    assert g.width == 4 and (x_adv - x).abs().max() <= 0.3 + 1e-6 and x_adv.max() <= 1


def test_resume_refuses_other_settings(tmp_path):
    from advforge.errors import CheckpointError

    _fit(tmp_path, 1)
    splits = _splits()
    train = TrainConfig(arch="model_b", dataset="synthetic", epochs=2, batch_size=16,
                        optimizer="sgd", lr=0.05, out=str(tmp_path), resume=True,
                        augment="none")
    with pytest.raises(CheckpointError, match="objective"):
        fit(train, splits, objective=AdvNet(eps=EPS, width=2, gamma=0.1).objective(
            splits, train))


@pytest.mark.parametrize("kw,match", [
    ({"generator": "g9"}, "generator must be one of"),
    ({"width": 0}, "width must be an integer"),
    ({"lam": -1.0}, "lam must be"),
    ({"gamma": float("nan")}, "gamma must be"),
    ({"g_steps": 0}, "g_steps must be"),
    ({"g_updates": 1.5}, "g_updates must be"),
    ({"g_optimizer": "rmsprop"}, "g_optimizer must be one of"),
    ({"g_lr": 0}, "g_lr must be"),
    ({"g_momentum": 1.0}, "g_momentum must lie"),
    ({"g_weight_decay": -1e-5}, "g_weight_decay must be"),
    ({"fd_h": 0.0}, "fd_h must be"),
    ({"eps": 2.0}, "eps"),
])
def test_bad_settings_get_one_line_errors(kw, match):
    with pytest.raises(InputError, match=match) as info:
        AdvNet(**kw)
    assert "\n" not in str(info.value)


def test_registered_and_bad_image_size_fails_before_training(tmp_path):
    assert settings_class("adv-net") is AdvNet
    splits = load("synthetic", num_classes=4, channels=1, size=18, n_train=8, n_test=4)
    train = TrainConfig(arch="model_b", out=str(tmp_path))
    with pytest.raises(InputError, match="divisible by 4") as info:
        AdvNet(eps=EPS).objective(splits, train)
    assert "\n" not in str(info.value) and not any(tmp_path.iterdir())


def test_generator_attack_raises_the_loss_of_a_fixed_model():
    from advforge.defenses.advnet import train_generator_attack

    splits = _splits()
    model = _trained_probe(splits).eval()
    x, y = splits.train.x, splits.train.y
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        clean = float(F.cross_entropy(model(x), y))
    g, perturb = train_generator_attack(model, "g0", 4, 0.3, x, y, epochs=4, batch_size=16,
                                        g_steps=2, optimizer="adam", lr=0.01)
    x_adv = perturb(x)
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6 and 0 <= x_adv.min() <= x_adv.max() <= 1
    with torch.no_grad():
        attacked = float(F.cross_entropy(model(x_adv), y))
    assert attacked > 1.5 * clean, (clean, attacked)
    assert not model.training and g.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(InputError, match="g3 needs the labels"):
        build_generator("g3", 1, 16, 4, 2).inputs(x)
