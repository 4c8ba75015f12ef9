"""The FI measure (Eq. 1 with the objective of Eq. 5) against a brute-force oracle that forms
the full p x p metric and takes torch.linalg.pinv, on tiny networks."""

from __future__ import annotations

import pytest
import torch
from fi_nets import DuplicatedClass, bottleneck_net, brute_force, conv_net, images
from torch import nn

from advforge.errors import InputError
from advforge.influence import image_fi, influence, pixel_fi

TARGETS = [None, torch.tensor([3, 0, 1, 2, 3])]


def _classes(y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return y if target is None else target


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float = 1e-5) -> None:
    """Agreement to ``rtol`` relative to each image's largest value."""
    got, want = got.double().flatten(1), want.double().flatten(1)
    scale = want.abs().amax(1, keepdim=True)
    assert ((got - want).abs() <= rtol * scale).all(), (got - want).abs().max()


@pytest.mark.parametrize("target", TARGETS, ids=["untargeted", "targeted"])
@pytest.mark.parametrize("num_classes", [4, 10])
def test_both_levels_match_the_full_pseudo_inverse(target, num_classes):
    model, x = conv_net(num_classes), images()
    y = torch.tensor([0, 1, 2, 3, 1])
    result = influence(model, x, y, target=target)
    pixel, image = brute_force(model, x, _classes(y, target))
    _close(result.pixel, pixel)
    _close(result.image[:, None], image[:, None])
    assert (result.rank_drop == 0).all()


def test_float32_matches_the_float64_oracle():
    """The backward passes in float32 (as for real data) and the result returned in float32."""
    model, x, y = conv_net(), images(), torch.tensor([0, 1, 2, 3, 1])
    pixel, image = brute_force(model, x, y)
    result = influence(model.float(), x.float(), y)
    assert result.pixel.dtype == result.image.dtype == torch.float32
    _close(result.pixel, pixel)
    _close(result.image[:, None], image[:, None])


@pytest.mark.parametrize("make", [bottleneck_net, DuplicatedClass], ids=["bottleneck", "dup"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rank_drop_beyond_the_structural_null_vector(make, dtype):
    """Logits depending on fewer input directions than K - 1, or two identical classes: G
    loses more rank than sum_k p_k grad log p_k = 0 takes, and the cut-off must see it."""
    model, x, y = make(), images(), torch.tensor([0, 1, 2, 3, 3])
    _, image = brute_force(model, x, y)
    result = influence(model.to(dtype), x.to(dtype), y)
    assert (result.rank_drop == 1).all()
    _close(result.image[:, None], image[:, None])
    p_y = result.probs.double()[torch.arange(5), y]
    assert ((result.image.double() - (1 - p_y) / p_y).abs() > 0.5).any()  # not the generic value


def test_generic_image_fi_is_the_odds_against_the_class():
    """With a full-rank logit Jacobian, g^T G^+ g = (1 - p_c) / p_c (formulas docstring)."""
    model, x, y = conv_net(10), images(8), torch.arange(8)
    result = influence(model, x, y, target=torch.full((8,), 9))
    p_c = result.probs[:, 9]
    torch.testing.assert_close(result.image, (1 - p_c) / p_c, rtol=1e-10, atol=0)


def test_confident_model_keeps_tiny_target_probabilities():
    """A confident float32 model: p_y within 1e-10 of 1 and a target of probability below
    1e-18. The image-level FI is still (1 - p_c) / p_c for both objectives (no cancellation
    in 1 - p_y, no direction of a tiny-probability class cut away), and the target's pixel FI
    is large (and right), not zeroed."""
    model = nn.Sequential(conv_net(4), _Shift(torch.tensor([25.0, 0.0, 0.0, -20.0]))).float()
    x = images(4, dtype=torch.float32)
    y, target = torch.zeros(4, dtype=torch.long), torch.full((4,), 3)
    log_p = torch.log_softmax(model(x).double(), 1).detach()
    assert (log_p[:, 0] > -1e-10).all() and (log_p[:, 3] < -40).all()
    for c in (y, target):
        result = influence(model, x, y, target=c)
        p_c = log_p[torch.arange(4), c].exp()
        torch.testing.assert_close(result.image.double(), (1 - p_c) / p_c, rtol=1e-5, atol=0)
        assert (result.rank_drop == 0).all()
    pixel, _ = brute_force(model, x, target)
    _close(pixel_fi(model.float(), x, y, target=target), pixel)
    assert (pixel.flatten(1).amax(1) > 1e12).all()


class _Shift(nn.Module):
    def __init__(self, offset: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("offset", offset)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.offset


def test_batched_equals_per_image_and_chunking_does_not_matter():
    model, x, y = conv_net(), images(7), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    whole = influence(model, x, y, target=2)
    chunked = influence(model, x, y, target=2, batch_size=3)
    for b in range(7):
        one = influence(model, x[b:b + 1], y[b:b + 1], target=2)
        torch.testing.assert_close(one.pixel[0], whole.pixel[b], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(one.image[0], whole.image[b], rtol=1e-12, atol=0)
    torch.testing.assert_close(chunked.pixel, whole.pixel, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(chunked.image, whole.image, rtol=1e-12, atol=0)


def test_pixel_fi_and_image_fi_are_the_two_levels():
    model, x, y = conv_net(), images(), torch.tensor([0, 1, 2, 3, 1])
    result = influence(model, x, y)
    assert pixel_fi(model, x, y).shape == x.shape and image_fi(model, x, y).shape == (5,)
    torch.testing.assert_close(pixel_fi(model, x, y), result.pixel)
    torch.testing.assert_close(image_fi(model, x, y), result.image)


def test_target_equal_to_the_true_label_is_the_untargeted_objective():
    model, x, y = conv_net(), images(), torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(influence(model, x, y, target=y).pixel,
                               influence(model, x, y).pixel)


def test_pixels_the_model_ignores_have_zero_fi():
    """Where G_i = 0 (the logits do not depend on pixel i) FI_i is 0, not NaN."""
    model, x, y = conv_net(), images(), torch.tensor([0, 1, 2, 3, 1])
    masked = nn.Sequential(_Mask(), model)
    fi = pixel_fi(masked, x, y)
    assert torch.isfinite(fi).all()
    assert (fi[:, :, :2] == 0).all() and (fi[:, :, 2:] > 0).any()


class _Mask(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[:, :, :2] = 0.5  # the first two rows never reach the network
        return out


def test_model_mode_is_restored_and_batch_norm_frozen():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(48, 4)).double()
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    x, y = images(), torch.tensor([0, 1, 2, 3, 1])
    stats = model[1].running_mean.clone()
    result = influence(model, x, y)
    assert model.training and not model[1].training and model[0].training
    torch.testing.assert_close(model[1].running_mean, stats)
    assert all(p.grad is None for p in model.parameters())
    one = influence(model, x[:1], y[:1])  # eval-mode batch norm: images do not interact
    torch.testing.assert_close(one.pixel[0], result.pixel[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("x", "y", "target", "message"), [
    (images().squeeze(1), torch.tensor([0, 1, 2, 3, 1]), None, "shape"),
    (images() + 1, torch.tensor([0, 1, 2, 3, 1]), None, "[0, 1]"),
    (images().index_fill(0, torch.tensor([1]), float("nan")), torch.tensor([0] * 5), None,
     "NaN"),
    (images(), torch.tensor([0, 1, 2]), None, "shape"),
    (images(), torch.tensor([0, 1, 2, 3, 4]), None, "out of range for 4 classes"),
    (images(), torch.tensor([0.0] * 5), None, "integer"),
    (images(), torch.tensor([0] * 5), 4, "target holds class index 4"),
    (images(), torch.tensor([0] * 5), -1, "negative"),
    (images(), torch.tensor([0] * 5), "3", "target must be an int"),
    (images(), torch.tensor([0] * 5), torch.tensor([1, 2]), "target must have shape"),
])
def test_bad_input_is_one_line_input_error(x, y, target, message):
    """The class count comes from the logits here (a plain nn.Module declares none)."""
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        influence(conv_net(), x, y, target=target)


def test_bad_batch_size_and_non_logit_output_are_refused():
    x, y = images(), torch.tensor([0, 1, 2, 3, 1])
    with pytest.raises(InputError, match="batch_size"):
        influence(conv_net(), x, y, batch_size=0)
    with pytest.raises(InputError, match=r"\(B, K\) logits"):
        influence(nn.Identity(), x, y)
