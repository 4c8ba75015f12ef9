"""Small builders shared by the generative tests (tiny nets so every test runs in seconds)."""

from __future__ import annotations

import torch
from torch import nn

from advforge.generative import AdvGANConfig, AIGANConfig
from advforge.generative.aigan.config import PAPER_CONFIG
from advforge.models.wrapper import ImageClassifier

NUM_CLASSES, SIZE = 4, 12  # the toy task of tests/conftest.py


def tiny_aigan(**overrides) -> AIGANConfig:
    """A tiny AI-GAN of the paper's configuration (U-Net G, D and its attacker A), which most
    tests exercise; ``tiny_lean`` is the package default's."""
    kw = dict(PAPER_CONFIG, eps=0.3, epochs=1, batch_size=16, g_ch=4, d_ch=4, pretrain=False,
              pretrain_epochs=1, attacker_steps=2, distill_warmup_epochs=1, eval_size=16,
              seed=0)
    kw.update(overrides)
    return AIGANConfig.from_flat(kw)


def tiny_lean(**overrides) -> AIGANConfig:
    """A tiny AI-GAN of the package defaults (shuffle G, no D)."""
    kw = dict(eps=0.3, epochs=1, batch_size=16, g_ch=8, eval_size=16, seed=0)
    kw.update(overrides)
    return AIGANConfig.from_flat(kw)


def tiny_advgan(**overrides) -> AdvGANConfig:
    kw = dict(eps=0.3, target=1, epochs=1, batch_size=16, g_ch=4, d_ch=4, eval_size=16, seed=0)
    kw.update(overrides)
    return AdvGANConfig.from_flat(kw)


def tiny_local_model(seed: int = 1) -> ImageClassifier:
    """A substitute f_d for black-box tests (the registry's Model C needs 28x28 input)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 16), nn.ReLU(),
                        nn.Linear(16, NUM_CLASSES))
    return ImageClassifier(net, 0.5, 0.25, num_classes=NUM_CLASSES, in_channels=1)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    after = module.state_dict()
    return any(not torch.equal(before[k], after[k])
               for k in before if before[k].is_floating_point())
