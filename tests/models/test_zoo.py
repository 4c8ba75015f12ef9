"""The classifier zoo: every registered net on grey 28x28 and colour 32x32 input, and the paper
architectures checked against exact parameter counts (an oracle for the layer list)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import advforge.models as models
from advforge.errors import InputError, UnknownNameError
from advforge.models import MODELS, ImageClassifier, create

# Keep the wide / deep nets cheap in the shape sweep; their real sizes are checked on "meta".
CHEAP = {"wrn34": {"widen_factor": 1}, "vgg13": {"width": 0.25}, "vgg16": {"width": 0.25}}


def test_registry_holds_every_issue_model():
    expected = {"model_a", "model_b", "model_c", "lenet5", "d1", "resnet20", "resnet32", "d2",
                "wrn34", "resnet18", "vgg13", "vgg16", "alexnet"}
    assert expected <= set(models.names())


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_forward_shape_and_gradients(name, channels, size):
    torch.manual_seed(0)
    model = create(name, num_classes=7, in_channels=channels, input_size=size,
                   mean=0.5, std=0.25, **CHEAP.get(name, {}))
    assert isinstance(model, ImageClassifier)
    assert (model.num_classes, model.in_channels, model.input_size) == (7, channels, size)
    x = torch.rand(2, channels, size, size, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), x)
    assert grad.abs().sum() > 0  # the input reaches the logits


def _count(name: str, channels: int, size: int, **kw) -> int:
    with torch.device("meta"):  # no memory, no init cost, even for WRN-34-10
        net = MODELS.get(name)(10, channels, size, **kw)
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "name,channels,size,kw,params",
    [
        # Table I Model A: 1*64*25+64 + 64*64*25+64 + (64*20*20)*128+128 + 128*10+10
        ("model_a", 1, 28, {}, 1_664 + 102_464 + 3_276_928 + 1_290),
        # Table I Model B: convs 320 + 9,248 + 18,496 + 36,928; FCs (64*4*4)*200+200,
        # 200*200+200, 200*10+10
        ("model_b", 1, 28, {}, 320 + 9_248 + 18_496 + 36_928 + 205_000 + 40_200 + 2_010),
        # Model C: 1*128*9+128 + 128*64*9+64 + (64*5*5)*128+128 + 128*10+10
        ("model_c", 1, 28, {}, 1_280 + 73_792 + 204_928 + 1_290),
        # LeNet-5: 156 + 2,416 + 400*120+120 + 120*84+84 + 84*10+10
        ("lenet5", 1, 28, {}, 156 + 2_416 + 48_120 + 10_164 + 850),
        ("lenet5", 1, 32, {}, 156 + 2_416 + 48_120 + 10_164 + 850),
        # D1 with "same" padding: 160 + 12,832 + 51,264 + (64*7*7)*10+10
        ("d1", 1, 28, {}, 160 + 12_832 + 51_264 + 31_370),
        ("d1", 1, 28, {"padding": "valid"}, 160 + 12_832 + 51_264 + 64 * 3 * 3 * 10 + 10),
        # He et al. (2016) report 0.27M and 0.46M parameters for ResNet-20 / -32 on CIFAR-10.
        ("resnet20", 3, 32, {}, 269_722),
        ("resnet32", 3, 32, {}, 464_154),
        # WRN-34-10: the 46.16M-parameter model of Madry et al.'s CIFAR-10 challenge.
        ("wrn34", 3, 32, {}, 46_160_474),
    ],
)
def test_paper_architectures_have_exact_parameter_counts(name, channels, size, kw, params):
    assert _count(name, channels, size, **kw) == params


def test_model_a_and_b_layer_lists_follow_table_i():
    a = MODELS.get("model_a")(10, 1, 28)
    kinds = [type(m).__name__ for m in a]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Dropout", "Flatten", "Linear", "ReLU",
                     "Dropout", "Linear"]
    assert [m.p for m in a if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    b = MODELS.get("model_b")(10, 1, 28)
    convs = [(m.out_channels, m.kernel_size) for m in b if isinstance(m, nn.Conv2d)]
    assert convs == [(32, (3, 3)), (32, (3, 3)), (64, (3, 3)), (64, (3, 3))]
    assert [m.out_features for m in b if isinstance(m, nn.Linear)] == [200, 200, 10]
    assert sum(isinstance(m, nn.MaxPool2d) for m in b) == 2


def test_resnet_shortcut_options_and_d2_width():
    # Option A adds no parameters: the B projections are the only difference.
    assert _count("resnet20", 3, 32, shortcut="B") > _count("resnet20", 3, 32, shortcut="A")
    assert _count("d2", 3, 32, width=10) > 50 * _count("d2", 3, 32, width=1)
    blocks = [m for m in MODELS.get("d2")(10, 3, 32).blocks]
    assert len(blocks) == 6
    assert [b.conv1[0].out_channels for b in blocks] == [32, 32, 32, 64, 64, 64]
    assert [b.conv1[0].stride[0] for b in blocks] == [2, 1, 1, 2, 1, 1]


def test_resnet18_stem_adapts_to_input_size():
    small = MODELS.get("resnet18")(10, 3, 32)
    big = MODELS.get("resnet18")(10, 3, 224)
    assert small.stem[0][0].kernel_size == (3, 3) and len(small.stem) == 2
    assert big.stem[0][0].kernel_size == (7, 7) and isinstance(big.stem[2], nn.MaxPool2d)
    forced = MODELS.get("resnet18")(10, 3, 64, stem="imagenet")
    assert forced.stem[0][0].kernel_size == (7, 7)


def test_batch_norm_is_optional_for_vgg_and_alexnet():
    def has_bn(m):
        return any(isinstance(x, nn.BatchNorm2d) for x in m.modules())

    assert has_bn(MODELS.get("vgg16")(10, 1, 28))
    assert not has_bn(MODELS.get("vgg16")(10, 1, 28, batch_norm=False))
    assert not has_bn(MODELS.get("alexnet")(10, 3, 32))
    assert has_bn(MODELS.get("alexnet")(10, 3, 32, batch_norm=True))


def test_normalisation_lives_in_the_wrapper():
    model = create("lenet5", in_channels=3, input_size=32, mean=(0.1, 0.2, 0.3), std=0.5).eval()
    x = torch.rand(3, 3, 32, 32)
    expected = model.net((x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / 0.5)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "model_z"}, "unknown model 'model_z'"),
        ({"name": "model_b", "widen_factor": 2}, "bad arch_kwargs for model 'model_b'"),
        ({"name": "model_b", "num_classes": 0}, "num_classes"),
        ({"name": "model_b", "in_channels": 1.5}, "in_channels"),
        ({"name": "model_a", "input_size": 8}, "too small"),
        ({"name": "resnet20", "shortcut": "C"}, "shortcut"),
        ({"name": "wrn34", "widen_factor": 0}, "widen_factor"),
        ({"name": "vgg13", "dropout": 1.0}, "dropout"),
        ({"name": "model_b", "std": 0.0}, "std"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs, match):
    with pytest.raises((InputError, UnknownNameError), match=match) as info:
        create(**kwargs)
    assert "\n" not in str(info.value)
