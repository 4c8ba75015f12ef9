"""Batched augmentations against per-image oracles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advforge.data.augment import (
    build_augment,
    pad_crop_flip,
    random_flip,
    random_shift,
    random_translate,
    resolve_augment,
)
from advforge.errors import InputError


def _crops(x: torch.Tensor, m: int) -> list[torch.Tensor]:
    """Every (2m+1)^2 crop of the zero-padded image: the possible outputs of a shift <= m."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (m, m, m, m))
    return [xp[:, i : i + h, j : j + w] for i in range(2 * m + 1) for j in range(2 * m + 1)]


def test_translate_output_is_a_zero_padded_crop_of_each_image():
    x = torch.rand(16, 2, 10, 10)
    out = random_translate(x, 3, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    for img, res in zip(x, out, strict=True):
        assert any(torch.equal(res, c) for c in _crops(img, 3))


def test_translate_covers_all_offsets_and_keeps_pixels():
    x = torch.zeros(2000, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # one bright pixel in the centre: its position reveals the shift
    out = random_translate(x, 2, torch.Generator().manual_seed(1))
    pos = out.flatten(1).argmax(1)
    dy, dx = pos // 9 - 4, pos % 9 - 4
    assert out.sum(dim=(1, 2, 3)).eq(1).all()  # shifts of <= 2 never push it out
    assert set(dy.tolist()) == set(range(-2, 3)) == set(dx.tolist())


def test_shift_is_at_most_12_5_percent():
    x = torch.zeros(500, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    pos = random_shift(x, generator=torch.Generator().manual_seed(2)).flatten(1).argmax(1)
    assert (pos // 28 - 14).abs().max() == 3 and (pos % 28 - 14).abs().max() == 3  # 0.125*28=3.5


def test_flip_and_pad_crop_flip_oracles():
    x = torch.rand(64, 3, 8, 8)
    flipped = random_flip(x, 0.5, torch.Generator().manual_seed(3))
    is_flip = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, x, strict=True)]
    assert all(torch.equal(a, b) or f for a, b, f in zip(flipped, x, is_flip, strict=True))
    assert 10 < sum(is_flip) < 54
    out = pad_crop_flip(x, 4, torch.Generator().manual_seed(4))
    for img, res in zip(x, out, strict=True):
        crops = _crops(img, 4)
        assert any(torch.equal(res, c) or torch.equal(res, c.flip(-1)) for c in crops)


def test_same_generator_seed_same_output():
    x = torch.rand(8, 1, 28, 28)
    a = pad_crop_flip(x, 4, torch.Generator().manual_seed(5))
    b = pad_crop_flip(x, 4, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_auto_choice_and_unknown_name():
    assert resolve_augment("auto", 1) == "shift"
    assert resolve_augment("auto", 3, "cifar10") == "crop_flip"
    assert resolve_augment("auto", 3, "svhn") == "shift"  # a mirrored digit is another symbol
    assert build_augment("none", 1) is None
    with pytest.raises(InputError, match="augment must be one of"):
        resolve_augment("rotate", 1)
