"""TrainConfig validation and the step schedule."""

from __future__ import annotations

import pytest
import yaml

from advforge.errors import InputError, UnknownNameError
from advforge.training import TrainConfig


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"arch": "model_z"}, "unknown model 'model_z'"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"lr": 0}, r"lr must lie in \(0.0"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"lr_milestones": [10, 5]}, "increase strictly"),
        ({"lr_milestones": [0]}, "lr_milestones entries"),
        ({"augment": "rotate"}, "augment must be one of"),
        ({"limit_train": 0}, "limit_train"),
        ({"seed": -1}, "seed"),
        ({"arch_kwargs": [1]}, "arch_kwargs"),
    ],
)
def test_invalid_values_raise_one_line_errors(kwargs, match):
    with pytest.raises((InputError, UnknownNameError), match=match) as info:
        TrainConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_step_schedule():
    c = TrainConfig(lr=0.1, lr_milestones=[2, 4], lr_gamma=0.1)
    assert [round(c.lr_at(e), 6) for e in range(6)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert TrainConfig(lr=0.1).lr_at(100) == 0.1


def test_yaml_round_trip_and_unknown_keys(tmp_path):
    # YAML reads "1e-3" (no dot) as a string: accepted as a number.
    c = TrainConfig.from_dict(yaml.safe_load("arch: model_a\nlr: 1e-3\nlr_milestones: [3]\n"))
    assert c.lr == 0.001 and c.lr_milestones == (3,)
    assert TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(c.to_dict()))) == c
    with pytest.raises(InputError, match="unknown training option.*epoch_count"):
        TrainConfig.from_dict({"epoch_count": 3})


@pytest.mark.parametrize("name", ["train_model_a_mnist5k", "train_model_b_mnist5k",
                                  "train_model_b_fashion"])
def test_shipped_configs_are_valid(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml"
    c = TrainConfig.from_dict(yaml.safe_load(path.read_text()))
    assert c.arch in ("model_a", "model_b") and c.epochs >= 1
