"""random_init: Madry et al.'s uniform start inside the ball, reproducible from a generator."""

from __future__ import annotations

import pytest
import torch

from advforge.attacks.norms import flat_norm, random_init


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_start_lies_in_the_ball_and_repeats_with_the_generator(norm):
    x = torch.rand(64, 1, 8, 8)
    a = random_init(x, norm, 0.3, torch.Generator().manual_seed(5))
    b = random_init(x, norm, 0.3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.device == x.device and a.dtype == x.dtype
    size = flat_norm(a, float("inf") if norm == "linf" else 2)
    assert bool((size <= 0.3 + 1e-6).all())
    assert float(size.max()) > 0.25  # it fills the ball rather than hugging the centre
