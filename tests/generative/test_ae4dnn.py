"""AE4DNN and ATN/AAE: Formulas 1-3 against hand computations, the balanced subset, the validity
criteria, the weight rule, the checkpoint round trip and that a short run learns."""

from __future__ import annotations

import json
import math

import pytest
import torch
from gen_helpers import NUM_CLASSES, SIZE
from torch import nn
from toy_task import make_toy_batch

from advforge.errors import CheckpointError, InputError
from advforge.generative import (
    AE4DNNConfig,
    ATNConfig,
    AutoencoderAttack,
    ConvAutoencoder,
    fit_ae4dnn,
    fit_atn,
    load_attacker,
)
from advforge.generative.ae4dnn import ae4dnn_loss, authors_ce, beta_bound, bound_over_inits
from advforge.generative.atn import aae_loss, rerank
from advforge.generative.autoencoders import AUTOENCODERS, build_autoencoder
from advforge.generative.reconstruction import (
    adversarial_counts,
    balanced_subset,
    choose_weight,
    forge_all,
)


class Constant(nn.Module):
    """g(x) = c everywhere (a fixed 'autoencoder' for hand-checked bounds)."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        return torch.full_like(x, self.c)


class FixedLogits(nn.Module):
    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


class ByFirstPixel(nn.Module):
    """Predicts class round(10 * x[0, 0, 0]) (so a test sets every prediction by hand)."""

    num_classes = 4

    def forward(self, x):
        cls = (x[:, 0, 0, 0] * 10).round().long().clamp(0, 3)
        return nn.functional.one_hot(cls, 4).float() * 10


def tiny_ae4dnn(**overrides) -> AE4DNNConfig:
    kw = dict(target=2, beta=0.05, subset_size=120, epochs=2, batch_size=32, ae_ch=8,
              eval_size=64, bound_inits=2, patience=0, seed=0)
    kw.update(overrides)
    return AE4DNNConfig.from_flat(kw)


# ---------------------------------------------------------------- Formulas 1-3

def test_formula2_equals_a_hand_computation():
    x = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])  # d = 4
    x_rec = torch.tensor([[[[0.5, 0.5], [0.5, 0.0]]]])  # ||x - g(x)||^2 = 0.75
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p_1 = 3/4
    loss, terms = ae4dnn_loss(x, x_rec, logits, torch.tensor([1]), beta=0.2)
    expected = 0.8 / 4 * 0.75 + 0.2 * -math.log(0.75)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert terms["mse"] == pytest.approx(0.75 / 4) and terms["ce"] == pytest.approx(-math.log(0.75))


def test_formula3_bound_on_a_fixed_g_and_on_a_seeded_conv_init():
    x = torch.rand(10, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    model = FixedLogits([0.0, 0.0, 0.0, 0.0])  # p_target = 1/4 for every input
    mse = ((x - 0.5) ** 2).flatten(1).mean(1).sum().item()
    ce = 10 * math.log(4)
    assert beta_bound(model, Constant(0.5), x, 2) == pytest.approx(mse / (mse + ce), rel=1e-6)
    authors = 10 * -math.log(1e-7) * 0.75
    assert beta_bound(model, Constant(0.5), x, 2, ce="authors") == pytest.approx(
        mse / (mse + authors), rel=1e-6)
    # bound_over_inits: init k is seed + 1000 k + target, output started at S's mean
    cfg = AE4DNNConfig.from_flat({"bound_inits": 2, "ae_ch": 4, "seed": 3})
    out = bound_over_inits(cfg, model, x, 2)
    torch.manual_seed(3 + 1000 + 2)
    g = build_autoencoder("conv", 1, 6, ch=4)
    g.init_output(float(x.mean()))
    with torch.no_grad():
        rec = g(x)
    mse_g = ((x - rec) ** 2).flatten(1).mean(1).sum().item()
    assert out["paper"]["values"][1] == pytest.approx(mse_g / (mse_g + ce), rel=1e-5)
    assert out["authors"]["mean"] < out["paper"]["mean"]  # 16.1 (1 - p) > -log p at p = 1/4


def test_authors_cross_entropy_is_scaled_one_minus_p():
    logits = torch.tensor([[0.0, math.log(3.0)], [5.0, -5.0]])
    p = logits.softmax(1)[:, 1]
    assert torch.allclose(authors_ce(logits, torch.tensor([1, 1])), 16.1181 * (1 - p), rtol=1e-4)


def test_rerank_is_a_distribution_with_the_target_at_alpha_times_the_max():
    probs = torch.rand(5, 4, generator=torch.Generator().manual_seed(1)).softmax(1)
    target = torch.tensor([0, 1, 2, 3, 1])
    out = rerank(probs, target, alpha=1.5)
    assert torch.allclose(out.sum(1), torch.ones(5)) and (out >= 0).all()
    for i, t in enumerate(target.tolist()):
        j = (t + 1) % 4  # an untouched class fixes the renormalising factor
        before = out[i, t] / out[i, j] * probs[i, j]
        assert before.item() == pytest.approx(1.5 * probs[i].max().item(), rel=1e-5)
        assert out[i].argmax().item() == t


def test_formula1_equals_a_hand_computation():
    x, x_rec = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)  # ||x - x'||_2 = 1
    clean = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    adv = torch.log(torch.tensor([[0.2, 0.6, 0.2]]))
    loss, _ = aae_loss(x, x_rec, adv, torch.tensor([1]), clean, phi=0.1, alpha=1.5)
    wanted = torch.tensor([0.5, 0.75, 0.25]) / 1.5
    gap = (torch.tensor([0.2, 0.6, 0.2]) - wanted).norm().item()
    assert loss.item() == pytest.approx(0.1 * 1.0 + gap, rel=1e-5)


# ---------------------------------------------------------------- S, criteria, rule

def test_balanced_subset_has_the_promised_class_counts():
    y = torch.cat([torch.full((n,), c) for c, n in enumerate([150, 200, 130, 400, 120, 300,
                                                                   140, 500, 160, 180])])
    idx = balanced_subset(y, 1000, 7, 10, seed=4)
    counts = torch.bincount(y[idx], minlength=10)
    assert idx.unique().numel() == 1000 and counts[7] == 0
    others = counts[[c for c in range(10) if c != 7]]
    assert sorted(others.tolist()) == [111] * 8 + [112]  # 1000 = 9 x 111 + 1
    assert torch.equal(idx, balanced_subset(y, 1000, 7, 10, seed=4))
    assert not torch.equal(idx, balanced_subset(y, 1000, 7, 10, seed=5))
    with pytest.raises(InputError, match="134 images of class 2"):
        balanced_subset(y, 1200, 7, 10, seed=0)  # class 2 has 130 < 134


def test_validity_criteria_i_to_iv():
    model = ByFirstPixel()
    x = torch.zeros(5, 1, 4, 4)
    x[:, 0, 0, 0] = torch.tensor([0.1, 0.1, 0.2, 0.1, 0.1])  # predicted 1, 1, 2, 1, 1
    y = torch.tensor([1, 1, 2, 0, 1])  # input 3 is misclassified (i); input 2 is the target (ii)
    x_adv = x.clone()
    x_adv[:, 0, 0, 0] = 0.2  # everything now predicted 2 = the target (iii) ...
    x_adv[1, 0, 1:, :] = 1.0  # ... but input 1 moved by sqrt(12) > b (iv)
    x_adv[4, 0, 0, 0] = 0.3  # and input 4 missed it
    c = adversarial_counts(model, x, x_adv, y, 2, max_l2=2.0)
    assert (c["inputs"], c["eligible"], c["adversarial"], c["valid"]) == (5, 3, 2, 1)
    assert c["rate"] == pytest.approx(1 / 5) and c["success"] == pytest.approx(2 / 3)
    assert c["hits_any"] == 3  # what a filter skipping (i) and (iv) counts: inputs 0, 1, 3
    assert c["min_l2"] == pytest.approx(0.1)


def test_choose_weight_takes_most_valid_under_the_bound():
    rows = [{"beta": 0.001, "subset": {"valid": 10, "mean_l2": 3.0}},
            {"beta": 0.004, "subset": {"valid": 500, "mean_l2": 6.4}},
            {"beta": 0.006, "subset": {"valid": 700, "mean_l2": 7.0}},
            {"beta": 0.0001, "subset": {"valid": 0, "mean_l2": None}}]
    assert choose_weight(rows, 6.5)["beta"] == 0.004
    assert choose_weight(rows, 2.0)["beta"] == 0.001  # none qualifies: the smallest mean L2


# ---------------------------------------------------------------- networks

@pytest.mark.parametrize("arch", sorted(AUTOENCODERS.names()))
@pytest.mark.parametrize("channels, size", [(1, 12), (3, 13)])
def test_autoencoders_output_images_in_unit_interval(arch, channels, size):
    torch.manual_seed(0)
    g = build_autoencoder(arch, channels, size, ch=4)
    with torch.no_grad():
        for p in g.parameters():
            p.mul_(50)  # saturate
    x = torch.rand(3, channels, size, size)
    out = g(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_init_output_starts_at_the_mean_pixel():
    g = ConvAutoencoder(1, 12, ch=4)
    g.init_output(0.13)
    with torch.no_grad():
        for p in g.parameters():
            if p is not g.out.bias:
                p.zero_()
        assert torch.allclose(g(torch.rand(2, 1, 12, 12)), torch.full((2, 1, 12, 12), 0.13))


def test_bad_configs_are_refused():
    for bad in ({"beta": 1.5}, {"beta": "most"}, {"target": -1}, {"max_l2": 0},
                {"bound_inits": 0}, {"beta_grid": []}, {"ae_ch": 0}, {"subset_size": 1}):
        with pytest.raises(InputError):
            AE4DNNConfig.from_flat(bad)
    with pytest.raises(InputError):
        ATNConfig.from_flat({"alpha": 1.0})
    with pytest.raises(InputError, match="unknown autoencoder"):
        build_autoencoder("nosuch", 1, 12)


# ---------------------------------------------------------------- training and checkpoints

def _toy_splits():
    return make_toy_batch(240, seed=11), make_toy_batch(64, seed=12)


def test_short_run_beats_the_untrained_autoencoder(toy_model):
    train, val = _toy_splits()
    cfg = tiny_ae4dnn(beta=0.3, epochs=40, subset_size=120)
    metrics = fit_ae4dnn(cfg, toy_model, train, val=val)
    torch.manual_seed(0)
    g0 = build_autoencoder("conv", 1, SIZE, ch=8)
    g0.init_output(float(train[0].mean()))
    x, y = val
    # the untrained g outputs a near-uniform image, which the toy model gives class 2 least
    before = adversarial_counts(toy_model, x, forge_all(g0, x), y, 2, 6.5)["success"]
    after = metrics["heldout"]["success"]
    assert before < 0.2 and after > before + 0.5, (before, after)
    assert metrics["epochs"] == 40 and metrics["heldout"]["mean_l2"] < 6.5


def test_checkpoint_round_trip_and_sweep_rule(toy_model, tmp_path):
    train, val = _toy_splits()
    run = tmp_path / "ae"
    metrics = fit_ae4dnn(tiny_ae4dnn(beta="auto", epochs=3), toy_model, train, val=val,
                         run_dir=run)
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "ae4dnn" and config["target"] == 2
    assert len(metrics["sweep"]) == 7 and metrics["chosen"] in [r["beta"] for r in
                                                                metrics["sweep"]]
    assert metrics["beta_bound"]["paper"]["mean"] > 0
    attack = load_attacker(run)
    assert isinstance(attack, AutoencoderAttack) and attack.fixed_target == 2
    x, y = val
    keep = y != 2
    x_adv = attack(toy_model, x[keep], y[keep])
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    # the saved weights are the ones counted: the held-out count recomputes exactly
    recount = adversarial_counts(toy_model, x, attack(None, x, torch.full_like(y, 1)), y, 2,
                                 6.5)
    assert recount["valid"] == metrics["heldout"]["valid"]
    low = y < 2
    with pytest.raises(InputError, match="only attacks towards class 2"):
        attack(toy_model, x[low], y[low], target=torch.full_like(y[low], 3))
    with pytest.raises(InputError):
        attack(toy_model, torch.rand(2, 3, SIZE, SIZE), torch.tensor([1, 2]))
    (run / "generator.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError):
        load_attacker(run)


def test_atn_every_target_routes_by_target(toy_model, tmp_path):
    train, val = _toy_splits()
    cfg = ATNConfig.from_flat(dict(target="all", phi=0.01, subset_size=60, epochs=1,
                                   batch_size=32, ae_ch=4, eval_size=32, seed=0))
    metrics = fit_atn(cfg, toy_model, train, val=val, run_dir=tmp_path / "atn")
    assert sorted(metrics["per_target"]) == list(range(NUM_CLASSES))
    attack = load_attacker(tmp_path / "atn")
    x, y = val
    target = (y + 1) % NUM_CLASSES
    x_adv = attack(toy_model, x, y, target=target)
    for t in range(NUM_CLASSES):  # each row comes from its target's autoencoder
        rows = target == t
        alone = load_attacker(tmp_path / "atn" / f"target_{t}")
        assert torch.allclose(x_adv[rows], alone(toy_model, x[rows], y[rows]))
