"""advforge.eval.transfer: examples crafted on one model, judged on another."""

from __future__ import annotations

import torch
from toy_task import make_toy_batch, make_toy_model

from advforge.attacks import create
from advforge.eval.transfer import transfer_success


def test_transfer_onto_the_source_itself_loses_nothing(toy_model):
    x, y = make_toy_batch(16, seed=3)
    row = transfer_success(create("pgd", eps=0.3, steps=5, step_size=0.1), toy_model,
                           toy_model, x, y, generator=torch.Generator().manual_seed(0))
    assert row["pairs"] == 16 * 3  # every correctly classified input x every other class
    assert row["success"] == row["success_on_local"] == row["crafted_on_local"]
    assert row["success"] > 0 and row["target_hit_given_local_hit"] == 1.0
    assert set(row["per_target"]) <= {0, 1, 2, 3}


def test_transfer_counts_hits_on_the_target_only(toy_model):
    other = make_toy_model(seed=5)  # another network of the same task
    x, y = make_toy_batch(16, seed=3)
    attack = create("fgsm", eps=0.3)
    row = transfer_success(attack, toy_model, other, x, y)
    with torch.no_grad():
        keep = other(x).argmax(1) == y
    assert row["pairs"] == 3 * int(keep.sum())
    assert 0 <= row["success"] <= 1 and 0 <= row["target_hit_given_local_hit"] <= 1
    untargeted = transfer_success(attack, toy_model, other, x, y, targeted=False)
    assert set(untargeted) == {"success", "images", "seconds", "crafted_on_local"}
    assert untargeted["images"] == int(keep.sum())
