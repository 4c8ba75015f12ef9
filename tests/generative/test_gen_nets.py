"""Generator / discriminator contracts: the eps bound, target conditioning, shapes."""

from __future__ import annotations

import pytest
import torch

from advforge.errors import InputError
from advforge.generative.nets import ClassHead, Discriminator, Generator


def _saturated(gen: Generator) -> Generator:
    """Blow up the last layer so tanh saturates: the bound must still hold exactly."""
    with torch.no_grad():
        gen.out.weight.mul_(1e4)
        gen.out.bias.fill_(50.0)
    return gen


@pytest.mark.parametrize("output", ["tanh", "box"])
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 12)])
@pytest.mark.parametrize("eps", [0.3, 8 / 255])
def test_eps_bound_on_every_output(channels, size, eps, output):
    torch.manual_seed(0)
    gen = Generator(channels, size, 10, eps, ch=4, skip=True, template=True, output=output)
    batches = [torch.rand(6, channels, size, size), torch.zeros(6, channels, size, size),
               torch.ones(6, channels, size, size)]
    t = torch.arange(6) % 10
    saturated = _saturated(Generator(channels, size, 10, eps, ch=4, skip=True, output=output))
    for g in (gen, saturated):
        for mode in ("train", "eval"):
            g.train(mode == "train")
            for x in batches:
                delta = g(x, t)
                assert delta.shape == x.shape and delta.is_contiguous()
                # exact in the tensor's dtype: no tolerance beyond float32(eps) itself
                assert delta.abs().max() <= torch.tensor(eps, dtype=delta.dtype)
                x_adv = g.perturb(x, t)
                assert x_adv.min() >= 0 and x_adv.max() <= 1
                assert (x_adv - x).abs().max().item() <= eps + 1e-6


def test_saturated_generator_reaches_the_bound():
    gen = Generator(1, 12, 4, 0.3, ch=4).eval()
    with torch.no_grad():
        gen.out.weight.zero_()
        gen.out.bias.fill_(-50.0)  # tanh(-50) = -1 in float32
    delta = gen(torch.rand(4, 1, 12, 12), torch.arange(4))
    assert torch.equal(delta, torch.full_like(delta, -0.3))


def test_box_output_spans_the_feasible_interval_of_every_pixel():
    """output="box": saturating low/high reaches max(0, x - eps) / min(1, x + eps) exactly."""
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(6, 1).view(2, 1, 3, 5)
    gen = Generator(1, 12, 4, 0.3, ch=4, output="box").eval()
    x = torch.nn.functional.pad(x, (0, 7, 0, 9))  # 12x12 images holding the test pixels
    for bias, want in ((-50.0, (x - 0.3).clamp_min(0)), (50.0, (x + 0.3).clamp_max(1))):
        with torch.no_grad():
            gen.out.weight.zero_()
            gen.out.bias.fill_(bias)
        x_adv = gen.perturb(x, torch.tensor([1, 2]))
        assert torch.allclose(x_adv, want, atol=1e-6)


def test_box_output_has_gradient_where_tanh_is_clamped():
    """At x = 0 a negative tanh delta is cut by the clamp to [0, 1] and passes no gradient;
    the box form always does (why AI-GAN uses it, see the nets module docstring)."""
    x = torch.zeros(2, 1, 12, 12)
    for output, expect_grad in (("tanh", False), ("box", True)):
        gen = Generator(1, 12, 4, 0.3, ch=4, output=output)
        with torch.no_grad():
            gen.out.weight.zero_()
            gen.out.bias.fill_(-1.0)  # every pixel pushed down, below the box at x = 0
        gen.perturb(x, torch.tensor([1, 2])).sum().backward()
        assert (gen.out.bias.grad.abs().item() > 0) == expect_grad


def test_different_targets_give_different_outputs():
    torch.manual_seed(0)
    gen = Generator(1, 28, 10, 0.3, ch=4, skip=True).eval()
    x = torch.rand(1, 1, 28, 28).expand(10, -1, -1, -1)
    delta = gen(x, torch.arange(10))  # same image, ten targets
    flat = delta.flatten(1)
    dist = torch.cdist(flat, flat)
    assert (dist + torch.eye(10) * 1e9).min() > 1e-4  # every pair of targets differs


def test_conditional_gain_reaches_every_target():
    """The class-conditional batch-norm parameters of target t get gradient only from t."""
    gen = Generator(1, 12, 4, 0.3, ch=4)
    gen(torch.rand(8, 1, 12, 12), torch.full((8,), 2)).sum().backward()
    grad = gen.out_bn.gain.weight.grad
    assert grad[2].abs().sum() > 0
    assert grad[[0, 1, 3]].abs().sum() == 0


def test_generator_rejects_bad_arguments():
    with pytest.raises(InputError):
        Generator(1, 30, 10, 0.3)  # not divisible by 4
    with pytest.raises(InputError):
        Generator(1, 28, 10, 0.0)
    with pytest.raises(InputError):
        Generator(1, 28, 10, 0.3, output="sigmoid")
    gen = Generator(1, 12, 4, 0.3, ch=4)
    with pytest.raises(InputError):
        gen(torch.rand(2, 1, 12, 12))  # conditional generator without targets
    with pytest.raises(InputError):
        Generator(1, 12, None, 0.3, ch=4)(torch.rand(2, 1, 12, 12), torch.zeros(2).long())


def test_discriminator_heads():
    disc = Discriminator(3, 10, ch=4)
    source, cls = disc(torch.rand(5, 3, 32, 32))
    assert source.shape == (5,) and cls.shape == (5, 10)
    head = ClassHead(disc.eval())  # eval: spectral norm stops its power iteration
    assert head.num_classes == 10 and head.in_channels == 3
    assert torch.equal(head(torch.zeros(2, 3, 32, 32)), disc(torch.zeros(2, 3, 32, 32))[1])
    source, cls = Discriminator(1, None, ch=4)(torch.rand(2, 1, 28, 28))
    assert cls is None and source.shape == (2,)
    with pytest.raises(InputError):
        ClassHead(Discriminator(1, None, ch=4))


def test_arch_kwargs_rebuild_the_same_network():
    gen = Generator(3, 32, 10, 8 / 255, ch=8, res_blocks=2, template=True, skip=True)
    with torch.no_grad():
        gen.template.normal_()
    clone = Generator(**gen.arch_kwargs())
    clone.load_state_dict(gen.state_dict())  # strict: identical structure
    x, t = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
    assert torch.equal(gen.eval()(x, t), clone.eval()(x, t))
