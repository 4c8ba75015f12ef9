"""Generator / discriminator contracts: the eps bound, target conditioning, shapes."""

from __future__ import annotations

import pytest
import torch

from advforge.errors import InputError
from advforge.generative.nets import (
    GENERATORS,
    ClassHead,
    CondBatchNorm2d,
    Discriminator,
    Generator,
    ShuffleGenerator,
    build_generator,
    conv_bn,
    generator_class,
)

ARCHS = pytest.mark.parametrize("arch", sorted(GENERATORS))


def _saturated(gen):
    """Blow up the last layer so tanh saturates: the bound must still hold exactly."""
    with torch.no_grad():
        gen.out.weight.mul_(1e4)
        gen.out.bias.fill_(50.0)
    return gen


@ARCHS
@pytest.mark.parametrize("output", ["tanh", "box"])
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 12)])
@pytest.mark.parametrize("eps", [0.3, 8 / 255])
def test_eps_bound_on_every_output(channels, size, eps, output, arch):
    torch.manual_seed(0)
    kw = {"ch": 4, "skip": True, "output": output}
    gen = build_generator(arch, channels, size, 10, eps, template=True, **kw)
    batches = [torch.rand(6, channels, size, size), torch.zeros(6, channels, size, size),
               torch.ones(6, channels, size, size)]
    t = torch.arange(6) % 10
    saturated = _saturated(build_generator(arch, channels, size, 10, eps, **kw))
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


@ARCHS
def test_box_output_has_gradient_where_tanh_is_clamped(arch):
    """At x = 0 a negative tanh delta is cut by the clamp to [0, 1] and passes no gradient;
    the box form always does (why AI-GAN uses it, see the nets module docstring)."""
    x = torch.zeros(2, 1, 12, 12)
    for output, expect_grad in (("tanh", False), ("box", True)):
        gen = build_generator(arch, 1, 12, 4, 0.3, ch=4, output=output)
        with torch.no_grad():
            gen.out.weight.zero_()
            gen.out.bias.fill_(-1.0)  # every pixel pushed down, below the box at x = 0
        gen.perturb(x, torch.tensor([1, 2])).sum().backward()
        assert (gen.out.bias.grad.abs().sum().item() > 0) == expect_grad


@ARCHS
def test_different_targets_give_different_outputs(arch):
    torch.manual_seed(0)
    gen = build_generator(arch, 1, 28, 10, 0.3, ch=4, skip=True).eval()
    x = torch.rand(1, 1, 28, 28).expand(10, -1, -1, -1)
    delta = gen(x, torch.arange(10))  # same image, ten targets
    flat = delta.flatten(1)
    dist = torch.cdist(flat, flat)
    assert (dist + torch.eye(10) * 1e9).min() > 1e-4  # every pair of targets differs


@ARCHS
def test_conditional_gain_reaches_every_target(arch):
    """The class-conditional batch-norm parameters of target t get gradient only from t."""
    gen = build_generator(arch, 1, 12, 4, 0.3, ch=4)
    gen(torch.rand(8, 1, 12, 12), torch.full((8,), 2)).sum().backward()
    grad = gen.out_bn.gain.weight.grad
    assert grad[2].abs().sum() > 0
    assert grad[[0, 1, 3]].abs().sum() == 0


@pytest.mark.parametrize("cls", [Generator, ShuffleGenerator])
def test_generator_rejects_bad_arguments(cls):
    with pytest.raises(InputError):
        cls(1, 30, 10, 0.3)  # not divisible by 4
    with pytest.raises(InputError):
        cls(1, 28, 10, 0.0)
    with pytest.raises(InputError):
        cls(1, 28, 10, 0.3, output="sigmoid")
    gen = cls(1, 12, 4, 0.3, ch=4)
    with pytest.raises(InputError):
        gen(torch.rand(2, 1, 12, 12))  # conditional generator without targets
    with pytest.raises(InputError):
        cls(1, 12, None, 0.3, ch=4)(torch.rand(2, 1, 12, 12), torch.zeros(2).long())
    with pytest.raises(InputError, match="generator arch"):
        build_generator("resnet", 1, 12, 4, 0.3)
    with pytest.raises(InputError, match="unknown generator class"):
        generator_class("Pickle")


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


@ARCHS
def test_arch_kwargs_rebuild_the_same_network(arch):
    gen = build_generator(arch, 3, 32, 10, 8 / 255, ch=8, res_blocks=2, template=True,
                          skip=True)
    with torch.no_grad():
        gen.template.normal_()
    clone = generator_class(type(gen).__name__)(**gen.arch_kwargs())
    clone.load_state_dict(gen.state_dict())  # strict: identical structure
    x, t = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
    assert torch.equal(gen.eval()(x, t), clone.eval()(x, t))


def test_shuffle_generator_convolves_only_on_the_quarter_grid():
    """The point of g_arch="shuffle": every convolution runs on the 7x7 grid, yet the output
    is a full 28x28 perturbation, and in eval mode an image's delta depends on it alone."""
    torch.manual_seed(0)
    gen = ShuffleGenerator(1, 28, 10, 0.3, ch=8).eval()
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(i[0].shape[2:])))
             for m in gen.modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    delta = gen(x, torch.tensor([3, 4]))
    for h in hooks:
        h.remove()
    assert delta.shape == (2, 1, 28, 28) and set(sizes) == {(7, 7)}
    (grad,) = torch.autograd.grad(delta[0, 0, 13, 21], x)
    assert grad[0, 0, 13, 21] != 0 and grad[1].abs().sum() == 0  # eval mode: no cross-talk


def test_eval_mode_folds_batch_norm_into_the_same_function():
    """Eval mode folds BN into the conv before it and composes CBN into one affine pass:
    the outputs must equal the unfolded layers' (float rounding aside), and training mode,
    which normalises with batch statistics, must be left exactly as it was."""
    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.BatchNorm2d(5)
    cbn = CondBatchNorm2d(5, 4)
    with torch.no_grad():  # non-trivial running statistics, gains and biases
        for m in (bn, cbn.bn):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
        cbn.gain.weight.uniform_(0.5, 2)
        cbn.bias.weight.uniform_(-1, 1)
    h, t = torch.randn(6, 3, 7, 7), torch.tensor([0, 1, 2, 3, 1, 0])
    bn.eval(), cbn.eval()
    assert torch.allclose(conv_bn(conv, bn, h), bn(conv(h)), atol=1e-5)
    z = conv(h)
    mean, var = cbn.bn.running_mean[:, None, None], cbn.bn.running_var[:, None, None]
    oracle = ((z - mean) / torch.sqrt(var + cbn.bn.eps) * cbn.gain(t)[:, :, None, None]
              + cbn.bias(t)[:, :, None, None])
    assert torch.allclose(cbn(z, t), oracle, atol=1e-5)
    bn.train(), cbn.train()
    assert torch.equal(conv_bn(conv, bn, h), torch.nn.functional.batch_norm(
        conv(h), None, None, bn.weight, bn.bias, training=True, eps=bn.eps))


@ARCHS
def test_generators_keep_nhwc_weights_and_compute_the_nchw_function(arch):
    """Both generators store their conv weights NHWC (oneDNN then convolves without
    reordering the activations), a layout that must change neither the function nor the
    caller's contiguous (B, C, H, W) output, and that a checkpoint's contiguous state dict,
    loaded into a new generator, must leave in place."""
    torch.manual_seed(0)
    gen = build_generator(arch, 3, 32, 10, 8 / 255, ch=8).eval()

    def nhwc(g):
        convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
        return convs and all(c.weight.is_contiguous(memory_format=torch.channels_last)
                             and not c.weight.is_contiguous()
                             for c in convs if c.weight.shape[2:] != (1, 1))

    assert nhwc(gen)
    state = {k: v.contiguous() for k, v in gen.state_dict().items()}  # as safetensors stores
    nchw = build_generator(arch, 3, 32, 10, 8 / 255, ch=8).to(
        memory_format=torch.contiguous_format).eval()
    nchw.load_state_dict(state)
    reloaded = build_generator(arch, 3, 32, 10, 8 / 255, ch=8).eval()
    reloaded.load_state_dict(state)
    assert nhwc(reloaded) and not nhwc(nchw)
    x, t = torch.rand(4, 3, 32, 32), torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        delta, oracle, again = gen(x, t), nchw(x, t), reloaded(x, t)
    assert delta.is_contiguous() and torch.equal(delta, again)
    assert torch.allclose(delta, oracle, atol=1e-6)
