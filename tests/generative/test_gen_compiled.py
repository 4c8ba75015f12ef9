"""The compiled path of a generator attack (``compiled=True``) against the eager one: the
same outputs within float32 rounding for every batch size after one compilation, the eps
bound exactly, and the eager network (with one warning) where compiling fails."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from advforge.errors import InputError
from advforge.generative import GeneratorAttack
from advforge.generative import compiled as compiled_module
from advforge.generative.nets import build_generator


def _attack() -> GeneratorAttack:
    torch.manual_seed(0)
    g = build_generator("shuffle", 1, 28, 10, 0.3, ch=8, res_blocks=2, template=True).eval()
    with torch.no_grad():  # a large output, so many pixels sit on the eps walls
        g.out.weight.mul_(100.0)
    return GeneratorAttack(g, chunk_size=16)


def test_compiled_forges_what_eager_forges_within_the_eps_bound():
    eager = _attack()
    fast = dataclasses.replace(eager, compiled=True)
    for n in (40, 7):  # chunks of 16 with a remainder, then a new batch size
        x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(n))
        y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(n))
        t = (y + 1) % 10
        want, got = eager(None, x, y, target=t), fast(None, x, y, target=t)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        assert float((got - x).abs().max()) <= 0.3 + 2.0**-23
        assert float(got.min()) >= 0.0 and float(got.max()) <= 1.0
    assert fast._forward.failed is None  # compiled, not fallen back
    assert fast.hyper()["compiled"] is True and eager.hyper()["compiled"] is False


def test_a_failed_compilation_falls_back_to_the_eager_network(monkeypatch):
    def no_compiler(*_args, **_kwargs):
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")

    monkeypatch.setattr(compiled_module.torch, "compile", no_compiler)
    eager = _attack()
    fast = dataclasses.replace(eager, compiled=True)
    x = torch.rand(20, 1, 28, 28)
    y = torch.randint(0, 10, (20,))
    with pytest.warns(RuntimeWarning, match="runs eagerly"):
        got = fast(None, x, y, target=(y + 3) % 10)
    torch.testing.assert_close(got, eager(None, x, y, target=(y + 3) % 10), rtol=0, atol=0)
    assert "InvalidCxxCompiler" in fast._forward.failed


def test_compiled_must_be_a_bool():
    with pytest.raises(InputError, match="compiled must be true or false"):
        dataclasses.replace(_attack(), compiled="yes")
