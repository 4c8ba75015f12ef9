"""The toy task behind the shared fixtures: a tiny seeded CPU classifier and its data.

Import it as ``from toy_task import make_toy_batch`` (tests/ is on sys.path under pytest).

The task: 4 classes of 1x12x12 images; class k brightens quadrant k. A small CNN reaches ~100%
accuracy in a second, so attacks have a real decision boundary to cross.
"""

from __future__ import annotations

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
    model = fresh_toy_model()
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


def fresh_toy_model() -> ImageClassifier:
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
