"""metrics.py against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from advforge.errors import InputError
from advforge.eval.metrics import confusion_matrix, lp_distances, rate_by_class, summarize


def test_lp_distances_hand_computed():
    x = torch.zeros(3, 1, 2, 2)
    x_adv = x.clone()
    x_adv[0, 0, 0, 0] = 0.5  # one value moved by 0.5
    x_adv[1] = 0.1
    x_adv[1, 0, 1, 1] = 0.4  # three values by 0.1, one by 0.4
    x_adv[2, 0, 0, 1] = 1e-7  # below the L0 tolerance: float noise, not a change
    d = lp_distances(x, x_adv)
    assert d["l0"].tolist() == [1.0, 4.0, 0.0]
    assert d["l2"][0].item() == pytest.approx(0.5)
    assert d["l2"][1].item() == pytest.approx(math.sqrt(3 * 0.01 + 0.16))
    assert d["linf"].tolist() == pytest.approx([0.5, 0.4, 1e-7])


def test_lp_distances_counts_every_channel_value():
    x = torch.zeros(1, 3, 2, 2)
    x_adv = x.clone()
    x_adv[0, :, 0, 0] = 0.2  # one RGB pixel: three values
    assert lp_distances(x, x_adv)["l0"].item() == 3.0


def test_lp_distances_rejects_shape_mismatch():
    with pytest.raises(InputError, match="shape"):
        lp_distances(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 3))


def test_summarize_values_and_empty():
    assert summarize(torch.tensor([3.0, 1.0, 2.0])) == {"min": 1.0, "mean": 2.0, "max": 3.0}
    assert summarize([]) == {"min": None, "mean": None, "max": None}
    assert summarize(torch.empty(0)) == {"min": None, "mean": None, "max": None}


def test_confusion_matrix_counts():
    rows = torch.tensor([0, 0, 1, 2, 2, 2])
    cols = torch.tensor([0, 1, 1, 0, 2, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(confusion_matrix(rows, cols, 3), expected)
    assert confusion_matrix(torch.empty(0), torch.empty(0), 2).sum() == 0


def test_confusion_matrix_rejects_out_of_range():
    with pytest.raises(InputError, match="outside"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_rate_by_class():
    rates, counts = rate_by_class(
        torch.tensor([0, 0, 0, 2]), torch.tensor([True, False, True, False]), 4
    )
    assert rates == {0: pytest.approx(2 / 3), 2: 0.0}
    assert counts == {0: 3, 2: 1}
