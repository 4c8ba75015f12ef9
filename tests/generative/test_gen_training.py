"""AI-GAN / AdvGAN training steps, SimCLR and the black-box (query-only) guarantee."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from gen_helpers import NUM_CLASSES, changed, snapshot, tiny_advgan, tiny_aigan, tiny_local_model
from toy_task import make_toy_batch

from advforge.data.augment import random_translate
from advforge.errors import InputError
from advforge.generative import AIGANTrainer, QueryOnly
from advforge.generative.advgan import AdvGANTrainer
from advforge.generative.aigan import AIGANConfig, train_aigan
from advforge.generative.distill import distillation_loss, query_gradient
from advforge.generative.losses import cw_target_loss
from advforge.generative.simclr import augment, nt_xent, pretrain_encoder
from advforge.generative.targets import TargetSampler, sample_targets


def _trainer(model, **overrides) -> AIGANTrainer:
    x, y = make_toy_batch(64, seed=3)
    return AIGANTrainer.for_data(tiny_aigan(**overrides), model, (x, y),
                                 local_model=tiny_local_model())


@pytest.mark.parametrize("attacker", [True, False])
def test_aigan_steps_change_weights_with_finite_losses(toy_model, attacker):
    trainer = _trainer(toy_model, attacker=attacker)
    g0, d0, target0 = snapshot(trainer.G), snapshot(trainer.D), snapshot(toy_model)
    x, y = make_toy_batch(32, seed=4)
    for _ in range(3):
        stats = trainer.train_step(x, y)
        assert all(math.isfinite(v) for v in stats.values()), stats
    assert {"g_target", "g_disc_class", "g_gan", "d_source", "d_class_adv", "d_class_pert"} \
        <= set(stats)
    assert changed(g0, trainer.G) and changed(d0, trainer.D)
    assert not changed(target0, toy_model)
    assert all(p.grad is None for p in toy_model.parameters())  # autograd.grad only
    assert (trainer.attacker is not None) == attacker


def test_pgd_attacker_feeds_the_class_head_adversarial_images(toy_model, monkeypatch):
    trainer = _trainer(toy_model)
    seen = {}
    real = trainer.attacker

    class Spy:
        def __call__(self, model, x, y, **kw):
            x_atk = real(model, x, y, **kw)
            seen.update(model=model, x=x, x_atk=x_atk)
            return x_atk

    trainer.attacker = Spy()
    x, y = make_toy_batch(32, seed=4)
    trainer.discriminator_step(x, y, x.clone())
    assert seen["model"].disc is trainer.D  # A attacks D's own class head (Eq. 7)
    assert 0 < (seen["x_atk"] - x).abs().max() <= trainer.cfg.eps + 1e-6
    assert real.steps == trainer.cfg.attacker.steps and real.eps == trainer.cfg.eps


@pytest.mark.parametrize("target_loss,kappa", [("cw", 20.0), ("cw", 0.0), ("ce", 0.0)])
def test_generator_step_scores_the_target_term_on_the_target(toy_model, target_loss, kappa):
    trainer = _trainer(toy_model, target_loss=target_loss, kappa=kappa)
    x, y = make_toy_batch(16, seed=5)
    t = sample_targets(y, NUM_CLASSES, torch.Generator().manual_seed(0))
    assert (t != y).all()
    torch.manual_seed(0)
    state = snapshot(trainer.G)
    x_pert, stats = trainer.generator_step(x, t)
    trainer.G.load_state_dict(state)
    trainer.G.train()
    with torch.no_grad():
        logits = toy_model(trainer.G.perturb(x, t))
    z_t = logits.gather(1, t[:, None]).squeeze(1)
    z_other = logits.masked_fill(F.one_hot(t, NUM_CLASSES).bool(), -1e9).amax(1)
    expected = ((z_other - z_t).clamp_min(-kappa).mean() if target_loss == "cw"
                else F.cross_entropy(logits, t))
    assert stats["g_target"] == pytest.approx(expected.item(), rel=1e-5)
    assert (x_pert - x).abs().max() <= trainer.cfg.eps + 1e-6


@pytest.mark.parametrize("augment", ["none", "shift"])
def test_training_steps_see_the_augmented_batch(toy_model, augment):
    """``augment=shift``: G and D train on the batch shifted by the trainer's RNG (the same
    gather as the classifiers' augmentation); ``none`` hands them the batch untouched."""
    trainer = _trainer(toy_model, augment=augment)
    seen = {}
    real_g, real_d = trainer.generator_step, trainer.discriminator_step

    def spy_g(x, t):
        seen["g"] = x
        return real_g(x, t)

    def spy_d(x, y, x_pert):
        seen["d"] = x
        return real_d(x, y, x_pert)

    trainer.generator_step, trainer.discriminator_step = spy_g, spy_d
    x, y = make_toy_batch(32, seed=4)
    rng_state = trainer.rng.get_state()
    trainer.train_step(x, y)
    assert seen["g"] is seen["d"]
    if augment == "none":
        assert seen["g"] is x
    else:
        # 12.5% of the toy task's 12 pixels, floored: shifts of up to 1 pixel
        expected = random_translate(x, 1, torch.Generator().set_state(rng_state))
        assert torch.equal(seen["g"], expected) and not torch.equal(seen["g"], x)


def test_cw_target_term_stops_kappa_logits_past_the_strongest_rival():
    # Target 0 leads by 30, by 5, and trails by 4: with kappa 20 only the first is capped.
    logits = torch.tensor([[30.0, 0.0, -1.0], [5.0, 0.0, -1.0], [0.0, 4.0, 1.0]])
    t = torch.zeros(3, dtype=torch.long)
    assert cw_target_loss(logits, t, 20.0).item() == pytest.approx((-20 - 5 + 4) / 3)
    assert cw_target_loss(logits, t, 0.0).item() == pytest.approx(4 / 3)
    assert AIGANConfig().objective.target_loss == "cw" and AIGANConfig().objective.kappa == 5.0


def test_targets_are_uniform_over_other_classes():
    y = torch.zeros(40000, dtype=torch.long)
    t = sample_targets(y, 4, torch.Generator().manual_seed(0))
    counts = torch.bincount(t, minlength=4).float() / y.numel()
    assert counts[0] == 0 and torch.allclose(counts[1:], torch.full((3,), 1 / 3), atol=0.01)


def test_focused_targets_follow_the_failure_rates():
    # Running counts: target 1 always fails, 2 fails half the time, 3 always succeeds.
    sampler = TargetSampler(4, focus=0.5)
    for _ in range(200):
        t = torch.tensor([1, 2, 2, 3])
        sampler.update(t, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(sampler.failure_rates(), torch.tensor([1.0, 1.0, 0.5, 0.0]))
    y = torch.zeros(60000, dtype=torch.long)  # class 0 is never drawn; t in {1, 2, 3}
    t = sampler.sample(y, torch.Generator().manual_seed(0))
    freq = torch.bincount(t, minlength=4).float() / y.numel()
    # p(t | y=0) = 0.5 / 3 + 0.5 * fail_t / (1 + 0.5 + 0)
    expected = torch.tensor([0.0, 0.5 / 3 + 0.5 / 1.5, 0.5 / 3 + 0.25 / 1.5, 0.5 / 3])
    assert freq[0] == 0 and torch.allclose(freq, expected, atol=0.01)


def test_focused_targets_fall_back_to_uniform_when_nothing_fails():
    sampler = TargetSampler(3, focus=1.0)
    sampler.update(torch.tensor([0, 1, 2]), torch.ones(3))
    y = torch.tensor([0, 1, 2] * 10000)
    t = sampler.sample(y, torch.Generator().manual_seed(0))
    assert not (t == y).any()
    assert torch.allclose(torch.bincount(t).float() / t.numel(), torch.full((3,), 1 / 3),
                          atol=0.01)


def test_focus_zero_is_algorithm_1s_draw_bit_for_bit():
    y = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))
    plain = sample_targets(y, 10, torch.Generator().manual_seed(5))
    assert torch.equal(TargetSampler(10).sample(y, torch.Generator().manual_seed(5)), plain)


def test_generator_step_counts_hits_per_target(toy_model):
    trainer = _trainer(toy_model, target_focus=0.5)
    x, y = make_toy_batch(32, seed=4)
    trainer.train_step(x, y)
    assert trainer.targets.seen.sum() == pytest.approx(32)
    assert 0 <= trainer.targets.hits.sum() <= 32


def test_nt_xent_matches_eq_11_written_out():
    torch.manual_seed(0)
    z1, z2, tau = torch.randn(5, 8), torch.randn(5, 8), 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = z.shape[0]
    losses = []
    for i in range(n2):
        j = (i + 5) % n2
        sim = [(z[i] @ z[k] / tau).exp() for k in range(n2) if k != i]
        losses.append(-torch.log((z[i] @ z[j] / tau).exp() / sum(sim)))
    assert nt_xent(z1, z2, tau).item() == pytest.approx(torch.stack(losses).mean().item(),
                                                        rel=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_augment_keeps_shape_and_range(channels):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, channels, 12, 12)
    v = augment(x, g)
    assert v.shape == x.shape and v.min() >= 0 and v.max() <= 1
    assert not torch.equal(v, x) and not torch.equal(v, augment(x, g))


def test_simclr_pretraining_trains_the_encoder_only(toy_model):
    trainer = _trainer(toy_model)
    x, _ = make_toy_batch(64, seed=3)
    enc0, rest0 = snapshot(trainer.G.encoder), snapshot(trainer.G.blocks)
    result = pretrain_encoder(trainer.G, x, epochs=2, batch_size=32, lr=1e-3, tau=0.5,
                              rng=torch.Generator().manual_seed(0))
    assert len(result["loss"]) == 2 and all(math.isfinite(v) for v in result["loss"])
    assert changed(enc0, trainer.G.encoder) and not changed(rest0, trainer.G.blocks)


@pytest.mark.parametrize("pretrain", [True, False])
def test_fit_with_and_without_pretraining(toy_model, pretrain):
    x, y = make_toy_batch(64, seed=3)
    trainer = AIGANTrainer.for_data(tiny_aigan(pretrain=pretrain), toy_model, (x, y))
    g0 = snapshot(trainer.G.encoder)
    metrics = train_aigan(trainer, (x, y), val=make_toy_batch(16, seed=9))
    assert ("pretrain" in metrics["seconds"]) == pretrain
    assert len(metrics["history"]) == 1 and math.isfinite(metrics["history"][0]["g_loss"])
    assert 0 <= metrics["final"]["success"] <= 1 and metrics["final"]["pairs"] > 0
    assert changed(g0, trainer.G.encoder)


def test_config_validation():
    for bad in ({"eps": 0}, {"eps": 1.5}, {"batch_size": 1}, {"lr": 0}, {"gan_loss": "wgan"},
                {"target_loss": "mse"}, {"epochs": -1}, {"kappa": -1}, {"g_output": "relu"},
                {"target_focus": -0.1}, {"target_focus": 1.5}, {"g_ema": 1.0},
                {"g_arch": "resnet"}, {"query_samples": 2}, {"query_samples": -1},
                {"black_box": True, "distill_probe_steps": -1},
                {"local_shift": 2}, {"black_box": True, "local_shift": -1},
                {"black_box": True, "query_sigma": 0}, {"black_box": True, "query_weight": -1},
                {"augment": "rotate"}):
        with pytest.raises(InputError):
            tiny_aigan(**bad)
    # An unknown substitute is refused before anything trains, naming the field.
    with pytest.raises(InputError,
                       match="local_arch 'nosuch' is not a model or 'auto'; known: .*model_c"):
        tiny_aigan(black_box=True, local_arch="nosuch")
    assert tiny_aigan(local_arch="model_a").black_box.local_arch == "model_a"
    for bad in ({"target": -1}, {"target": "some"}, {"eps": 2}, {"g_output": "relu"},
                {"g_arch": "resnet"}):
        with pytest.raises(InputError):
            tiny_advgan(**bad)


# ---- black-box mode: the target is only ever queried ----

class _Tripwire:
    """Records any backward pass that reaches the target's parameters or output."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.fired = []
        self.forward_calls = 0
        for p in model.parameters():
            p.register_hook(lambda g: self.fired.append("param"))
        model.register_full_backward_hook(lambda *a: self.fired.append("module"))
        model.register_forward_hook(self._count)

    def _count(self, module, inputs, output):
        self.forward_calls += 1
        assert not torch.is_grad_enabled(), "the target ran with autograd on"


def test_query_only_never_builds_a_graph(toy_model, toy_batch):
    x, _ = toy_batch
    wire = _Tripwire(toy_model)
    oracle = QueryOnly(toy_model)
    assert list(oracle.parameters()) == [] and oracle.state_dict() == {}
    x = x.clone().requires_grad_(True)
    probs = oracle(x)
    assert not probs.requires_grad and probs.grad_fn is None
    assert torch.allclose(probs.sum(1), torch.ones(x.shape[0]))
    with pytest.raises(RuntimeError):  # nothing to differentiate through
        probs.sum().backward()
    assert oracle.queries == x.shape[0] and wire.forward_calls == 1 and not wire.fired


@pytest.mark.parametrize("query_samples,probe_steps", [(0, 0), (2, 0), (0, 2)])
def test_black_box_training_never_differentiates_the_target(toy_model, query_samples,
                                                            probe_steps):
    wire = _Tripwire(toy_model)
    target0 = snapshot(toy_model)
    trainer = _trainer(toy_model, black_box=True, pretrain=True, query_samples=query_samples,
                       distill_probe_steps=probe_steps)
    local0 = snapshot(trainer.distiller.local)
    x, y = make_toy_batch(64, seed=3)
    metrics = train_aigan(trainer, (x, y), val=make_toy_batch(16, seed=9))
    assert wire.forward_calls > 0 and not wire.fired
    assert all(p.grad is None for p in toy_model.parameters())
    assert not changed(target0, toy_model)
    assert changed(local0, trainer.distiller.local)  # f_d was distilled
    assert trainer.attacked is trainer.distiller.local  # G attacks f_d, never the target
    assert metrics["target_queries"] > 0 and "distill_kl" in metrics["history"][0]
    assert ("query_grad_norm" in metrics["history"][0]) == bool(query_samples)


class _Linear(torch.nn.Module):
    """logits = W x + b: the C&W margin's gradient is W_r - W_t for the runner-up r."""

    num_classes, in_channels = 3, 1

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(3, 16, generator=g))
        self.b = torch.nn.Parameter(torch.tensor([0.0, 0.5, -0.5]))

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


def test_query_gradient_matches_the_exact_margin_gradient_of_a_linear_model():
    """The NES estimate from probabilities alone converges to the exact logit-margin
    gradient (log-probability gaps are logit gaps), and is 0 past the kappa cap."""
    model = _Linear()
    oracle = QueryOnly(model)
    x = torch.full((2, 1, 4, 4), 0.5)
    t = torch.tensor([0, 2])
    z = model(x).detach()
    runner = z.masked_fill(torch.nn.functional.one_hot(t, 3).bool(), -1e9).argmax(1)
    exact = (model.w[runner] - model.w[t]).detach().view(2, 1, 4, 4)
    est = query_gradient(oracle, x, t, samples=20000, sigma=1e-3, kappa=1e3,
                         rng=torch.Generator().manual_seed(1))
    assert est.shape == x.shape and not est.requires_grad
    cos = F.cosine_similarity(est.flatten(1), exact.flatten(1))
    assert (cos > 0.99).all()
    assert torch.allclose(est, exact, atol=0.1 * exact.abs().max().item())
    assert oracle.queries == 2 * 20000 * 2
    # a pair already kappa logits past the boundary gives no signal: the cap is flat there
    model.b.data = torch.tensor([100.0, 0.0, 0.0])
    flat = query_gradient(oracle, x, torch.tensor([0, 0]), samples=10, sigma=1e-3, kappa=5.0,
                          rng=torch.Generator().manual_seed(1))
    assert torch.equal(flat, torch.zeros_like(flat))


def test_distillation_moves_the_local_model_towards_the_target(toy_model):
    trainer = _trainer(toy_model, black_box=True)
    x, _ = make_toy_batch(64, seed=3)
    oracle, local = trainer.oracle, trainer.distiller.local
    with torch.no_grad():
        before = F.kl_div(F.log_softmax(local(x), 1), oracle(x), reduction="batchmean")
    trainer.distiller.warmup(x, epochs=20, batch_size=16, rng=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = F.kl_div(F.log_softmax(local(x), 1), oracle(x), reduction="batchmean")
    assert after < 0.5 * before


def test_advgan_steps(toy_model):
    x, y = make_toy_batch(32, seed=4)
    trainer = AdvGANTrainer(tiny_advgan(), toy_model, target_class=1, num_classes=NUM_CLASSES,
                            in_channels=1, image_size=12)
    g0, d0 = snapshot(trainer.G), snapshot(trainer.D)
    for _ in range(3):
        stats = trainer.train_step(x, y)
        assert all(math.isfinite(v) for v in stats.values()), stats
    assert {"g_adv", "g_gan", "g_hinge", "d_gan"} <= set(stats)
    assert changed(g0, trainer.G) and changed(d0, trainer.D)
    assert all(p.grad is None for p in toy_model.parameters())


def test_advgan_hinge_is_zero_below_c_and_linear_above(toy_model):
    x, y = make_toy_batch(8, seed=4)
    trainer = AdvGANTrainer(tiny_advgan(hinge_c=1e6), toy_model, target_class=1,
                            num_classes=NUM_CLASSES, in_channels=1, image_size=12)
    assert trainer.generator_step(x)[1]["g_hinge"] == 0
    trainer = AdvGANTrainer(tiny_advgan(hinge_c=0.0), toy_model, target_class=1,
                            num_classes=NUM_CLASSES, in_channels=1, image_size=12)
    torch.manual_seed(0)
    state = snapshot(trainer.G)
    hinge = trainer.generator_step(x)[1]["g_hinge"]
    trainer.G.load_state_dict(state)
    with torch.no_grad():
        norm = trainer.G.train()(x).flatten(1).norm(dim=1).mean().item()
    assert hinge == pytest.approx(norm, rel=1e-5)


def test_schedule_cosine_lr_and_attacker_warmup(toy_model):
    trainer = _trainer(toy_model, epochs=4, lr_schedule="cosine", attacker_warmup_epochs=2)
    start, mid, end = trainer.schedule(0.0), trainer.schedule(1.0), trainer.schedule(4.0)
    assert start["lr"] == pytest.approx(trainer.cfg.training.lr) and end["lr"] == pytest.approx(0)
    assert mid["lr"] == pytest.approx(trainer.cfg.training.lr * 0.5 * (1 + math.cos(math.pi / 4)))
    assert trainer.opt_g.param_groups[0]["lr"] == end["lr"] == trainer.opt_d.param_groups[0]["lr"]
    assert mid["attacker_eps"] == pytest.approx(0.15)  # half-way through the warm-up
    assert trainer.schedule(3.0)["attacker_eps"] == pytest.approx(0.3)
    assert trainer.attacker.eps == pytest.approx(0.3)
    assert trainer.attacker.step_size == pytest.approx(trainer.cfg.pgd_step_size)
    flat = _trainer(toy_model, attacker_warmup_epochs=0, lr_schedule="constant")
    assert flat.schedule(0.0) == {"lr": flat.cfg.training.lr, "attacker_eps": 0.3}


def test_distill_steps_query_the_target_per_update(toy_model):
    x, y = make_toy_batch(16, seed=4)
    counts = []
    for steps, probes in ((1, 0), (3, 0), (1, 5), (3, 5)):
        trainer = _trainer(toy_model, black_box=True, distill_steps=steps,
                           distill_probe_steps=probes)
        trainer.train_step(x, y)
        counts.append(trainer.oracle.queries)
    # clean + generated images (+ the probes, by default), queried per distillation step
    assert counts == [2 * 16, 3 * 2 * 16, 3 * 16, 3 * 3 * 16]


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_loss_is_hintons_tempered_kl_on_the_hidden_logits(temperature):
    """From probabilities alone the loss must equal T^2 KL(softmax(z/T) || softmax(l/T)) on
    the target's logits z, which the black-box attacker never sees."""
    gen = torch.Generator().manual_seed(0)
    z, logits = 6 * torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    p_soft, log_q = F.softmax(z / temperature, 1), F.log_softmax(logits / temperature, 1)
    oracle = temperature ** 2 * (p_soft * (p_soft.log() - log_q)).sum(1).mean()
    loss = distillation_loss(logits, F.softmax(z, 1), temperature)
    assert loss.item() == pytest.approx(oracle.item(), rel=1e-4)
    shifted = z + torch.randn(8, 1, generator=gen)  # logits are known up to a constant
    assert distillation_loss(shifted, F.softmax(z, 1), temperature).item() < 1e-5


def test_distillation_loss_survives_probabilities_that_underflowed():
    p = torch.tensor([[1.0, 0.0, 0.0]])  # a confident target: exp(-200) is 0 in float32
    logits = torch.tensor([[3.0, 0.0, -1.0]], requires_grad=True)
    loss = distillation_loss(logits, p, 4.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_distillation_loss_weights_are_a_weighted_mean_of_per_image_kl():
    gen = torch.Generator().manual_seed(1)
    p = F.softmax(3 * torch.randn(6, 4, generator=gen), 1)
    logits = torch.randn(6, 4, generator=gen)
    kl = (p * (p.log() - F.log_softmax(logits, 1))).sum(1)  # (6,) oracle per image
    w = torch.tensor([1.0, 0.3, 1.0, 0.3, 0.3, 1.0])
    assert distillation_loss(logits, p, 1.0, w).item() == pytest.approx(
        ((w * kl).sum() / w.sum()).item(), rel=1e-5)
    assert distillation_loss(logits, p, 1.0, torch.ones(6)).item() == pytest.approx(
        distillation_loss(logits, p, 1.0).item(), rel=1e-6)


def test_distiller_down_weights_only_generated_images_the_target_resisted(toy_model):
    trainer = _trainer(toy_model, black_box=True, distill_miss_weight=0.25)
    distiller = trainer.distiller
    x, _ = make_toy_batch(8, seed=6)
    with torch.no_grad():
        answer = toy_model(x).argmax(1)
    # rows 0-1 clean (-1), 2-4 generated and hit (target = the model's answer), 5-7 missed
    targets = torch.cat([torch.full((2,), -1), answer[2:5], (answer[5:] + 1) % NUM_CLASSES])
    with torch.no_grad():
        logits = distiller.local(x)  # the toy local model has no dropout: train = eval
    weights = torch.tensor([1.0] * 5 + [0.25] * 3)
    expected = distillation_loss(logits, F.softmax(toy_model(x), 1).detach(), 1.0, weights)
    stats = distiller.step(x, targets=targets)
    assert stats["distill_kl"] == pytest.approx(expected.item(), rel=1e-5)
    assert trainer.cfg.black_box.distill_miss_weight == 0.25
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(InputError, match="distill_miss_weight"):
            _trainer(toy_model, black_box=True, distill_miss_weight=bad)


def test_train_step_tells_the_distiller_which_images_are_generated(toy_model, monkeypatch):
    trainer = _trainer(toy_model, black_box=True)
    seen = {}
    real = trainer.distiller.step
    monkeypatch.setattr(trainer.distiller, "step",
                        lambda x, targets=None: seen.update(x=x, targets=targets) or real(x))
    x, y = make_toy_batch(16, seed=4)
    trainer.train_step(x, y)
    clean, generated = seen["targets"][:16], seen["targets"][16:32]
    assert (clean == -1).all() and torch.equal(seen["x"][:16], x)
    assert ((generated >= 0) & (generated != y)).all()  # Algorithm 1's targets t != y


def test_probe_examples_are_pgd_on_the_local_model_queried_and_distilled(toy_model,
                                                                         monkeypatch):
    trainer = _trainer(toy_model, black_box=True, distill_probe_steps=3)
    seen, real_step, real_probe = {}, trainer.distiller.step, trainer.prober

    def spy_probe(model, x, y, **kw):
        seen.update(model=model, probe_target=kw["target"], train_mode=model.training)
        seen["probe"] = real_probe(model, x, y, **kw)
        return seen["probe"]

    monkeypatch.setattr(trainer, "prober", spy_probe)
    monkeypatch.setattr(trainer.distiller, "step",
                        lambda x, targets=None: seen.update(x=x, targets=targets) or real_step(x))
    x, y = make_toy_batch(16, seed=4)
    queries = trainer.oracle.queries
    trainer.train_step(x, y)
    assert seen["model"] is trainer.distiller.local and not seen["train_mode"]
    assert (real_probe.steps, real_probe.loss, real_probe.eps) == (3, "cw", 0.3)
    assert real_probe.kappa == trainer.cfg.objective.kappa
    clean, generated, probes = seen["targets"].split(16)
    assert (clean == -1).all() and torch.equal(generated, probes)
    assert torch.equal(probes, seen["probe_target"])  # towards the G step's own targets
    assert torch.equal(seen["x"][32:], seen["probe"])
    assert 0 < (seen["probe"] - x).abs().max() <= trainer.cfg.eps + 1e-6
    assert trainer.oracle.queries - queries == 48  # clean + generated + probes, one each
    assert _trainer(toy_model, black_box=True).prober.steps == 5  # the default
    # 0 restores the paper's plain distillation on clean and generated images only
    assert _trainer(toy_model, black_box=True, distill_probe_steps=0).prober is None


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Oracle: ``image`` (C, H, W) moved down dy and right dx pixels, zeros shifted in."""
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_the_translation_passes_gradients_to_the_pixels_it_keeps():
    """``local_shift`` backpropagates G's loss through random_translate (whose offsets
    tests/training/test_augment.py checks): gradient 1 on every pixel kept, 0 on those
    pushed out."""
    x = torch.rand(12, 2, 7, 9, requires_grad=True)
    out = random_translate(x, 2, torch.Generator().manual_seed(5))
    out.sum().backward()
    for i in range(12):
        moves = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(out[i], _shifted(x[i].detach(), dy, dx))]
        assert moves  # a whole-pixel move within the budget
        dy, dx = moves[0]
        assert torch.equal(x.grad[i], _shifted(_shifted(torch.ones(2, 7, 9), dy, dx), -dy, -dx))


def test_local_shift_moves_what_the_local_model_judges_not_what_g_forges(toy_model,
                                                                        monkeypatch):
    trainer = _trainer(toy_model, black_box=True, local_shift=1)
    seen = []
    trainer.attacked.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    x, y = make_toy_batch(16, seed=4)
    t = sample_targets(y, NUM_CLASSES, torch.Generator().manual_seed(0))
    x_pert, _ = trainer.generator_step(x, t)
    judged = seen[0]
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for i in range(16):  # each judged image is its forged image under one of the 9 moves
        assert any(torch.equal(judged[i], _shifted(x_pert[i], *m)) for m in moves)
    assert not torch.equal(judged, x_pert)
    assert (x_pert - x).abs().max() <= trainer.cfg.eps + 1e-6  # the forged image is unmoved


def test_distill_temperature_reaches_the_distiller(toy_model):
    assert _trainer(toy_model, black_box=True, distill_temperature=3.0).distiller.temperature == 3
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="distill_temperature"):
            _trainer(toy_model, black_box=True, distill_temperature=bad)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_disc_terms_schedule_scales_eq10_and_the_source_term(toy_model, schedule):
    trainer = _trainer(toy_model, epochs=4, disc_terms_schedule=schedule)
    x, y = make_toy_batch(16, seed=5)
    t = sample_targets(y, NUM_CLASSES, torch.Generator().manual_seed(0))
    obj = trainer.cfg.objective
    for epoch, cosine in ((0.0, 1.0), (2.0, 0.5), (4.0, 0.0)):
        trainer.schedule(epoch)
        expected = cosine if schedule == "cosine" else 1.0
        assert trainer.disc_factor == pytest.approx(expected, abs=1e-12)
        _, stats = trainer.generator_step(x, t)
        assert stats["g_loss"] == pytest.approx(
            obj.w_target * stats["g_target"]
            + expected * (obj.w_disc_class * stats["g_disc_class"] + obj.w_gan * stats["g_gan"]),
            rel=1e-5)
    with pytest.raises(InputError, match="disc_terms_schedule"):
        tiny_aigan(disc_terms_schedule="linear")
