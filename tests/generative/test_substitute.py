"""``local_arch="auto"``: the substitute is chosen from the target's answers alone."""

from __future__ import annotations

import copy

import pytest
import torch
from gen_helpers import changed, snapshot, tiny_aigan, tiny_local_model
from torch import nn
from toy_task import make_toy_batch

from advforge.attacks import create as create_attack
from advforge.errors import InputError
from advforge.generative import AIGANTrainer, QueryOnly
from advforge.generative.aigan import blackbox as blackbox_module
from advforge.generative.aigan import train_aigan
from advforge.generative.distill import Distiller
from advforge.generative.state import read_training_meta
from advforge.generative.substitute import (
    SCORE_STEPS,
    SMALL_IMAGE_CANDIDATES,
    candidate_archs,
    select_substitute,
    transfer_score,
)


def _builder(target):
    """'copy' is the target's own weights (its examples transfer as white-box ones do);
    'mlp' is an untrained two-layer perceptron."""
    def build(arch):
        if arch == "copy":
            return copy.deepcopy(target)
        return tiny_local_model(seed=1)
    return build


def test_the_candidate_whose_examples_fool_the_target_is_chosen(toy_model):
    oracle = QueryOnly(toy_model)
    x, _ = make_toy_batch(64, seed=3)
    target0 = snapshot(toy_model)
    choice = select_substitute(
        oracle, x, candidates=("mlp", "copy"), build=_builder(toy_model),
        make_distiller=lambda m: Distiller(oracle, m, lr=1e-3), epochs=1, batch_size=16,
        eps=0.3, kappa=5.0, seed=0, score_images=32)
    assert choice.arch == "copy" and choice.distiller.local is not None
    assert set(choice.scores) == set(choice.success) == {"mlp", "copy"}
    assert choice.scores["copy"] > choice.scores["mlp"]
    assert choice.success["copy"] >= 0.9  # a copy's targeted PGD fools the original
    assert choice.success["copy"] > choice.success["mlp"]
    assert set(choice.warmup_kl) == {"mlp", "copy"} and len(choice.warmup_kl["copy"]) == 1
    # one query per clean image, shared, then the score's examples for each candidate
    assert choice.queries == oracle.queries == 64 + 2 * 32
    assert not changed(target0, toy_model)
    assert all(p.grad is None for p in toy_model.parameters())
    record = choice.record()
    assert record["arch"] == "copy" and record["queries"] == 128


def test_a_tie_keeps_the_first_candidate(toy_model):
    oracle = QueryOnly(toy_model)
    x, _ = make_toy_batch(32, seed=3)
    choice = select_substitute(
        oracle, x, candidates=("copy", "copy2"), build=lambda a: copy.deepcopy(toy_model),
        make_distiller=lambda m: Distiller(oracle, m, lr=1e-3), epochs=1, batch_size=16,
        eps=0.3, kappa=5.0, seed=0, score_images=16)
    assert choice.scores["copy"] == choice.scores["copy2"] and choice.arch == "copy"


def test_transfer_score_is_the_targets_clipped_margin_from_its_answers():
    """The ranking score against an oracle: min(Z_t - max_{j != t} Z_j, kappa) averaged,
    computed here from the target's logits directly (log-probability gaps are logit gaps)."""
    torch.manual_seed(0)
    target = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
    oracle = QueryOnly(target)
    x = torch.rand(64, 1, 2, 2)
    labels = target(x).argmax(1)
    targets = (labels + 1) % 3
    for kappa in (0.05, 50.0):  # the cap binds / does not bind
        score = transfer_score(oracle, target, x, labels, targets, eps=0.2, kappa=kappa,
                               generator=torch.Generator().manual_seed(1))
        # the same PGD examples again (same seed) to read the logits the oracle saw
        x_adv = create_attack("pgd", eps=0.2, steps=SCORE_STEPS, step_size=2.5 * 0.2 / SCORE_STEPS,
                              random_start=True, loss="cw", kappa=kappa)(
            target, x, labels, target=targets, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            z = target(x_adv)
        z_t = z.gather(1, targets[:, None]).squeeze(1)
        z_other = z.masked_fill(nn.functional.one_hot(targets, 3).bool(), -1e9).amax(1)
        expected = (z_t - z_other).clamp_max(kappa)
        assert score.margin == pytest.approx(expected.mean().item(), abs=1e-4)
        assert score.success == pytest.approx((z.argmax(1) == targets).float().mean().item())
    assert all(p.grad is None for p in target.parameters())


def test_candidates_by_image_size():
    assert candidate_archs(28)[0] == "model_c"  # the paper's MNIST choice first
    assert candidate_archs(32)[0] == "resnet20"  # and its CIFAR one
    assert "model_b" in SMALL_IMAGE_CANDIDATES


@pytest.fixture
def toy_candidates(monkeypatch, toy_model):
    """Make 'auto' choose between the toy candidates above (the registry's need 28 px)."""
    monkeypatch.setattr(blackbox_module, "candidate_archs", lambda size: ("mlp", "copy"))
    build = _builder(toy_model)
    monkeypatch.setattr(AIGANTrainer, "build_local",
                        lambda self, arch: build(arch).to(self.device))


def test_auto_run_trains_against_the_chosen_substitute_and_resumes_it(toy_model,
                                                                      toy_candidates,
                                                                      tmp_path):
    x, y = make_toy_batch(64, seed=3)
    cfg = tiny_aigan(black_box=True, local_arch="auto", distill_probe_steps=0)
    trainer = AIGANTrainer.for_data(cfg, toy_model, (x, y))
    assert trainer.local_arch == "mlp"  # the first candidate until the choice is made
    metrics = train_aigan(trainer, (x, y), run_dir=tmp_path / "run")
    assert trainer.local_arch == "copy" and trainer.attacked is trainer.distiller.local
    select = metrics["phases"]["select"]
    assert select["arch"] == "copy" and set(select["scores"]) == {"mlp", "copy"}
    assert metrics["phases"]["warmup"]["kl"] == select["warmup_kl"]["copy"]
    assert metrics["target_queries"] >= select["queries"] > 0
    assert read_training_meta(tmp_path / "run")["phases"]["select"]["arch"] == "copy"
    # resuming rebuilds the chosen architecture before its weights load, and chooses no more
    longer = tiny_aigan(black_box=True, local_arch="auto", distill_probe_steps=0, epochs=2)
    again = AIGANTrainer.for_data(longer, toy_model, (x, y))
    metrics2 = train_aigan(again, (x, y), run_dir=tmp_path / "run", resume=True)
    assert again.local_arch == "copy" and len(metrics2["history"]) == 2
    assert metrics2["phases"]["select"] == select


def test_a_caller_built_local_model_is_used_as_it_is_under_auto(toy_model):
    x, y = make_toy_batch(32, seed=3)
    local = tiny_local_model()
    trainer = AIGANTrainer.for_data(tiny_aigan(black_box=True, local_arch="auto"), toy_model,
                                    (x, y), local_model=local)
    assert trainer.distiller.local is local and not trainer.selects_local
    metrics = train_aigan(trainer, (x, y))
    assert trainer.distiller.local is local and "select" not in metrics["phases"]
    with pytest.raises(InputError, match="not a model or 'auto'"):
        tiny_aigan(black_box=True, local_arch="automatic")
