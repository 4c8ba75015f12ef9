"""The weights shipped for ``advforge demo`` load and do what their config.json records."""

from __future__ import annotations

import json

import pytest
import torch

from advforge import data, pretrained
from advforge.errors import InputError


@pytest.fixture(scope="module")
def test_split():
    return data.load("mnist5k").test


def _config(name: str) -> dict:
    return json.loads((pretrained.path(name) / "config.json").read_text())


def test_shipped_model_b_has_its_recorded_accuracy(test_split):
    """Model B reproduces the test accuracy its training run recorded on mnist5k's 1,000 test
    images (to within one image: float summation order differs between CPUs)."""
    config = _config("mnist5k_model_b")
    assert config["dataset"] == "mnist5k" and config["arch"] == "model_b"
    assert config["reproduce"].startswith("advforge train-classifier --arch model_b")
    model = pretrained.load_model().eval()
    with torch.no_grad():
        accuracy = (model(test_split.x).argmax(1) == test_split.y).float().mean().item()
    assert accuracy == pytest.approx(config["metrics"]["test_accuracy"], abs=1e-3)
    assert accuracy >= 0.975


def test_shipped_aigan_forges_within_eps_and_hits_its_targets(test_split):
    """The shipped generator stays inside its L-inf ball and reaches the target on most pairs
    (its recorded held-out success is far above the 10% of a random guess)."""
    config = _config("mnist5k_model_b_aigan")
    assert config["dataset"] == "mnist5k"
    assert config["reproduce"].startswith("advforge train-attacker aigan")
    model, attack = pretrained.load_model().eval(), pretrained.load_attacker()
    x, y = test_split.x[:200], test_split.y[:200]
    target = (y + 1 + torch.arange(len(y)) % 9) % 10  # every target != y in turn
    x_adv = attack(model, x, y, target=target)
    assert (x_adv - x).abs().max() <= attack.eps + 1e-6
    assert 0 <= x_adv.min() and x_adv.max() <= 1
    with torch.no_grad():
        hits = (model(x_adv).argmax(1) == target).float().mean().item()
    assert hits >= 0.8


def test_unknown_shipped_name_is_one_line_error():
    with pytest.raises(InputError, match="no shipped weights"):
        pretrained.path("resnet_imagenet")
