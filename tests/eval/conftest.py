"""Oracle fixtures for the evaluation tests.

``CodeModel`` reads its prediction straight off one pixel: class c is encoded as the value
c / (K - 1) at position (0, 0, 0). ``SetCodeAttack`` writes the target's code there, so every
prediction after the attack is known in advance and the counts can be checked exactly.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

K = 4
SHAPE = (1, 6, 6)


class CodeModel(nn.Module):
    """logits_c = -(x[:, 0, 0, 0] - c / (K - 1))^2: predicts the class whose code is nearest."""

    num_classes = K
    in_channels = SHAPE[0]

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("codes", torch.arange(K, dtype=torch.float32) / (K - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x[:, 0, 0, 0].unsqueeze(1) - self.codes) ** 2)  # (B, K)


def encode(y: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Images (N, 1, 6, 6) in [0, 1] whose code pixel says ``y``; the rest is noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(y.shape[0], *SHAPE, generator=g)
    x[:, 0, 0, 0] = y.float() / (K - 1)
    return x


class SetCodeAttack:
    """Targeted: write the target's code (success by construction), except towards the classes
    in ``fail_towards``, where it writes the code of (target + 1) % K. Untargeted: write the
    code of (y + 1) % K. Records every call so tests can inspect what the evaluator sent."""

    name = "set_code"

    def __init__(self, fail_towards: tuple[int, ...] = ()) -> None:
        self.fail_towards = fail_towards
        self.calls: list[dict] = []

    def hyper(self) -> dict:
        return {"fail_towards": list(self.fail_towards)}

    def __call__(self, model, x, y, *, target=None, generator=None):
        self.calls.append({"n": x.shape[0], "y": y.clone(), "target": target,
                           "training": model.training, "generator": generator})  # fmt: skip
        if target is not None:
            assert (target != y).all(), "evaluate must never send target == y"
            dest = target.clone()
            for c in self.fail_towards:
                dest[target == c] = (c + 1) % K
        else:
            dest = (y + 1) % K
        x_adv = x.clone()
        x_adv[:, 0, 0, 0] = dest.float() / (K - 1)
        return x_adv


def identity_attack(model, x, y, *, target=None, generator=None):
    return x.clone()


@pytest.fixture
def set_code() -> type[SetCodeAttack]:
    return SetCodeAttack


@pytest.fixture
def identity() -> object:
    return identity_attack


@pytest.fixture
def encoder() -> object:
    return encode


@pytest.fixture
def code_model() -> CodeModel:
    return CodeModel().eval()


@pytest.fixture
def code_batch() -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2])
    return encode(y), y
