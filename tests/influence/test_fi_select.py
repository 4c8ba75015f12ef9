"""Choosing the pixels to perturb from a pixel-level FI map."""

from __future__ import annotations

import pytest
import torch

from advforge.errors import InputError
from advforge.influence import pixels_above, top_pixels


def test_top_pixels_are_largest_first_with_ties_by_index():
    fi = torch.tensor([[[[0.1, 0.5], [0.5, 0.0]]], [[[0.0, 0.0], [0.0, 2.0]]]])  # (2,1,2,2)
    assert top_pixels(fi, 3).tolist() == [[1, 2, 0], [3, 0, 1]]
    assert top_pixels(fi, 1).dtype == torch.long


def test_top_pixels_index_the_flattened_colour_input():
    fi = torch.zeros(1, 3, 4, 4)
    fi[0, 2, 1, 3] = 5.0  # channel 2, row 1, column 3
    (index,) = top_pixels(fi, 1)[0].tolist()
    assert index == 2 * 16 + 1 * 4 + 3
    assert fi.flatten(1)[0, index] == 5.0


def test_top_pixels_agree_with_a_full_sort_on_random_maps():
    fi = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    want = fi.flatten(1).argsort(1, descending=True)[:, :7]
    assert torch.equal(top_pixels(fi, 7), want)


def test_pixels_above_is_a_mask_of_the_threshold():
    fi = torch.tensor([[[[0.05, 0.1], [0.2, float("inf")]]]])
    mask = pixels_above(fi, 0.1)
    assert mask.dtype == torch.bool and mask.shape == fi.shape
    assert mask.flatten().tolist() == [False, True, True, True]


@pytest.mark.parametrize(("m", "message"), [(0, "m must be"), (5, "m must be"),
                                            (1.5, "m must be"), (True, "m must be")])
def test_top_pixels_refuses_a_bad_m(m, message):
    with pytest.raises(InputError, match=message):
        top_pixels(torch.rand(2, 1, 2, 2), m)


def test_bad_maps_and_thresholds_are_refused():
    with pytest.raises(InputError, match="fi must be"):
        top_pixels(torch.rand(4), 1)
    with pytest.raises(InputError, match="NaN"):
        top_pixels(torch.tensor([[0.1, float("nan")]]), 1)
    with pytest.raises(InputError, match="threshold"):
        pixels_above(torch.rand(2, 3), "0.1")
