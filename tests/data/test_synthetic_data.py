"""synthetic: deterministic from its seed, balanced, learnable, and validated."""

from __future__ import annotations

import pytest
import torch

from advforge import data
from advforge.errors import InputError


def test_same_seed_same_data_different_seed_different_data():
    a = data.load("synthetic", n_train=60, n_test=20, seed=3)
    b = data.load("synthetic", n_train=60, n_test=20, seed=3)
    c = data.load("synthetic", n_train=60, n_test=20, seed=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_n_train_leaves_test_set_unchanged():
    small = data.load("synthetic", n_train=30, n_test=25, seed=1)
    big = data.load("synthetic", n_train=90, n_test=25, seed=1)
    assert torch.equal(small.test.x, big.test.x) and torch.equal(small.test.y, big.test.y)


def test_shapes_balance_range_and_eps():
    s = data.load("synthetic", num_classes=4, channels=3, size=(8, 12), n_train=40, n_test=10)
    assert s.train.x.shape == (40, 3, 8, 12) and s.train.x.dtype == torch.float32
    assert s.train.y.dtype == torch.int64 and torch.bincount(s.train.y).tolist() == [10] * 4
    assert 0.0 <= s.train.x.min().item() and s.train.x.max().item() <= 1.0
    assert s.default_eps == pytest.approx(8 / 255) and s.class_names[3] == "class_3"
    assert (s.in_channels, s.image_size, s.num_classes) == (3, (8, 12), 4)
    assert len(s.mean) == len(s.std) == 3 and s.source == ""
    assert data.load("synthetic", n_train=10, n_test=2).default_eps == 0.3  # 1 channel


def test_classes_are_learnable():
    """A nearest-class-mean rule fitted on train separates the test set."""
    s = data.load("synthetic", n_train=200, n_test=200, seed=0)
    means = torch.stack([s.train.x[s.train.y == k].mean(0) for k in range(s.num_classes)])
    dist = torch.cdist(s.test.x.flatten(1), means.flatten(1))  # (N, K)
    accuracy = (dist.argmin(1) == s.test.y).float().mean().item()
    assert accuracy >= 0.95
    # ... and the task is not trivial for a label-independent rule.
    assert torch.bincount(s.test.y).max().item() / len(s.test) < 0.2


@pytest.mark.parametrize(
    "options",
    [{"num_classes": 1}, {"channels": 0}, {"size": 2}, {"n_train": 3}, {"n_test": 0},
     {"seed": -1}, {"size": (8, 8, 8)}, {"n_train": 10.5}, {"size": True}],
)  # fmt: skip
def test_bad_options_raise_input_error(options):
    with pytest.raises(InputError, match="synthetic"):
        data.load("synthetic", **options)
