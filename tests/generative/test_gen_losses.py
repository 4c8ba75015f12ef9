"""The generator's target term: focused cross-entropy against an explicit oracle."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advforge.generative.common import focused_cross_entropy


def test_focus_zero_is_plain_cross_entropy():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)
    assert torch.allclose(focused_cross_entropy(z, t, 0.0), F.cross_entropy(z, t))


def test_pairs_are_weighted_by_p_target_to_the_focus():
    g = torch.Generator().manual_seed(1)
    z, t = torch.randn(16, 10, generator=g) * 3, torch.randint(0, 10, (16,), generator=g)
    p_t = z.softmax(1)[torch.arange(16), t]
    ce = F.cross_entropy(z, t, reduction="none")
    for focus in (0.5, 1.0, 2.0):
        w = p_t ** focus
        want = (w * ce).sum() / w.sum()
        assert torch.allclose(focused_cross_entropy(z, t, focus), want, rtol=1e-5)


def test_a_hopeless_pair_gets_less_gradient_than_a_close_one():
    z = torch.tensor([[10.0, -10.0, 0.0], [1.0, 0.5, 0.0]], requires_grad=True)
    t = torch.tensor([1, 1])  # row 0: p_t ~ 2e-9 (hopeless); row 1: p_t ~ 0.33 (close)
    focused_cross_entropy(z, t, 1.0).backward()
    hopeless, close = z.grad.norm(dim=1)
    assert hopeless < 1e-3 * close
    z.grad = None
    F.cross_entropy(z, t).backward()  # plain CE does the opposite
    assert z.grad.norm(dim=1)[0] > z.grad.norm(dim=1)[1]
