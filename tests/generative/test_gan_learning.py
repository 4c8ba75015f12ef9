"""The GANs learn: on the toy task (4 classes, a small trained classifier, eps 0.3) a short
seeded AI-GAN run and a short AdvGAN run reach a targeted success far above their untrained
generator's, and with the sign of G's target term flipped they do not rise above it.

AI-GAN trains in the paper configuration (D's terms, the PGD attacker with one step) and in
the package default (shuffle G, the target term alone); AdvGAN with Xiao et al.'s. A raised
learning rate makes a few dozen steps enough.
"""

from __future__ import annotations

import pytest
import torch
from gen_helpers import tiny_advgan, tiny_aigan, tiny_lean
from toy_task import make_toy_batch

from advforge.generative import AIGANTrainer, advgan, fit_advgan, fit_aigan
from advforge.generative.aigan import steps

SHARED = dict(g_ch=8, d_ch=8, batch_size=16, lr=0.01, eval_size=64, eps=0.3)
RUNS = {  # kind -> (fit, config builder, epochs on 128 images)
    "aigan": (fit_aigan, lambda **kw: tiny_aigan(attacker_steps=1, **SHARED, **kw), 2),
    "advgan": (fit_advgan, lambda **kw: tiny_advgan(**SHARED, **kw), 4),
    # the package default: shuffle G, the target term alone (no D, no attacker)
    "aigan_default": (fit_aigan, lambda **kw: tiny_lean(**SHARED, **kw), 6),
}
MARGIN = 0.30  # trained success must beat the untrained generator's by this much


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _success(kind: str, model, epochs: int) -> float:
    fit, config, _ = RUNS[kind]
    train, val = make_toy_batch(128, seed=1), make_toy_batch(64, seed=2)
    return fit(config(epochs=epochs), model, train, val=val)["success"]


def _flip_target_term(kind: str, monkeypatch) -> None:
    """Replace G's target term by its negative: G is then trained away from the target."""
    if kind.startswith("aigan"):
        real = steps.target_loss
        monkeypatch.setattr(steps, "target_loss", lambda *a: -real(*a))
    else:
        real = advgan.cw_target_loss
        monkeypatch.setattr(advgan, "cw_target_loss", lambda *a: -real(*a))


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_training_lifts_targeted_success_far_above_the_untrained_generator(
        kind, toy_model, one_thread):
    untrained = _success(kind, toy_model, epochs=0)
    trained = _success(kind, toy_model, epochs=RUNS[kind][2])
    assert trained >= untrained + MARGIN, (untrained, trained)


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_a_flipped_target_term_does_not_learn(kind, toy_model, one_thread, monkeypatch):
    untrained = _success(kind, toy_model, epochs=0)
    _flip_target_term(kind, monkeypatch)
    flipped = _success(kind, toy_model, epochs=RUNS[kind][2])
    assert flipped <= untrained + 0.05, (untrained, flipped)


def test_without_d_terms_no_discriminator_is_built_or_trained(toy_model):
    cfg = tiny_lean()
    trainer = AIGANTrainer.for_data(cfg, toy_model, make_toy_batch(32, seed=1))
    assert trainer.D is None and trainer.attacker is None
    x, y = make_toy_batch(16, seed=3)
    stats = trainer.train_step(x, y)
    assert not any(k.startswith("d_") or k in ("g_gan", "g_disc_class") for k in stats)
    assert set(trainer.state_parts()[0]) == {"G"}
