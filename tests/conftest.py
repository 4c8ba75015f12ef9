"""Shared fixtures: a tiny seeded CPU classifier trained on a separable toy task, and a batch.

The task: 4 classes of 1x12x12 images; class k brightens quadrant k. A small CNN reaches ~100%
accuracy in a second, so attacks have a real decision boundary to cross.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advforge.models.wrapper import ImageClassifier

NUM_CLASSES = 4
SIZE = 12


def make_toy_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % NUM_CLASSES
    x = 0.25 * torch.rand(n, 1, SIZE, SIZE, generator=g) + 0.2
    h = SIZE // 2
    for k in range(NUM_CLASSES):
        r, c = divmod(k, 2)
        x[y == k, :, r * h : (r + 1) * h, c * h : (c + 1) * h] += 0.35
    return x.clamp(0, 1), y


def make_toy_model(seed: int = 0) -> ImageClassifier:
    torch.manual_seed(seed)
    model = _fresh_model()
    x, y = make_toy_batch(256, seed=seed + 100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.grad = None
    return model.eval()


@pytest.fixture(scope="session")
def _toy_model_state() -> dict:
    return make_toy_model().state_dict()


@pytest.fixture
def toy_model(_toy_model_state) -> ImageClassifier:
    """A fresh copy per test, in eval mode, so tests cannot leak state into each other."""
    model = _fresh_model()
    model.load_state_dict(_toy_model_state)
    return model.eval()


def _fresh_model() -> ImageClassifier:
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * (SIZE // 2) ** 2, 32),
        nn.ReLU(),
        nn.Linear(32, NUM_CLASSES),
    )
    return ImageClassifier(net, 0.5, 0.25, num_classes=NUM_CLASSES, in_channels=1)


@pytest.fixture
def toy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return make_toy_batch(32, seed=7)
