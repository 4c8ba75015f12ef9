"""train_step / evaluate / fit: behaviour, files, and exact resume."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from quadrants import make_splits

from advforge.errors import CheckpointError
from advforge.models import create, load_model
from advforge.training import STATE_FILE, TrainConfig, evaluate, fit, train_step
from advforge.training.state import read_train_state


@pytest.fixture
def splits():
    return make_splits()


def _config(tmp_path, **kw) -> TrainConfig:
    base = {"arch": "model_b", "dataset": "quadrants", "epochs": 2, "batch_size": 16,
            "augment": "none", "out": str(tmp_path / "run"), "seed": 0}
    base.update(kw)
    return TrainConfig(**base)


def test_train_step_lowers_the_loss(splits):
    torch.manual_seed(0)
    model = create("lenet5", num_classes=4, input_size=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = splits.train.x, splits.train.y
    first, _ = train_step(model, opt, x, y)
    for _ in range(20):
        last, correct = train_step(model, opt, x, y)
    assert first.requires_grad is False and last < 0.5 * first
    assert 0 <= int(correct) <= len(y)


def test_evaluate_matches_manual_accuracy_and_restores_mode(splits):
    torch.manual_seed(0)
    model = create("model_a", num_classes=4, input_size=16).train()
    x, y = splits.test.x, splits.test.y
    with torch.no_grad():
        expected = (model.eval()(x).argmax(1) == y).float().mean().item()
    model.train()
    assert evaluate(model, x, y, batch_size=7) == pytest.approx(expected)
    assert model.training and all(m.training for m in model.modules())


def test_fit_writes_a_loadable_checkpoint(tmp_path, splits):
    rows = []
    result = fit(_config(tmp_path, epochs=3), splits, log=rows.append)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {"model.safetensors", "config.json", STATE_FILE}
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows == result["history"]
    config = json.loads((run / "config.json").read_text())
    assert config["metrics"]["test_accuracy"] == result["test_accuracy"] >= 0.9
    assert config["metrics"]["train_seconds"] > 0 and config["extra"]["train_config"]["epochs"] == 3
    model = load_model(run)
    assert evaluate(model, splits.test.x, splits.test.y) == result["test_accuracy"]


def test_fit_with_the_real_synthetic_dataset_and_sgd_schedule(tmp_path):
    from advforge.data import load

    data = load("synthetic", num_classes=3, channels=3, size=16, n_train=60, n_test=30)
    cfg = _config(tmp_path, arch="d1", dataset="synthetic", optimizer="sgd", lr=0.05,
                  lr_milestones=[1], lr_gamma=0.5, augment="auto", weight_decay=1e-4)
    result = fit(cfg, data)
    assert [r["lr"] for r in result["history"]] == [0.05, 0.025]
    assert load_model(tmp_path / "run").in_channels == 3


@pytest.mark.parametrize(
    "arch,kw",
    [("model_a", {"augment": "shift"}),  # dropout + augmentation + Adam
     ("resnet20", {"optimizer": "sgd", "lr": 0.05, "lr_milestones": [2]})],  # BatchNorm + SGD
)
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, splits, arch, kw):
    straight = fit(_config(tmp_path / "a", arch=arch, epochs=2, **kw), splits)
    fit(_config(tmp_path / "b", arch=arch, epochs=1, **kw), splits)
    torch.manual_seed(12345)  # resume must not depend on the caller's RNG
    resumed = fit(_config(tmp_path / "b", arch=arch, epochs=2, resume=True, **kw), splits)
    a, b = load_model(tmp_path / "a" / "run"), load_model(tmp_path / "b" / "run")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    keys = ("epoch", "lr", "train_loss", "train_accuracy", "test_accuracy")
    assert [[r[k] for k in keys] for r in resumed["history"]] == [
        [r[k] for k in keys] for r in straight["history"]]
    assert resumed["test_accuracy"] == straight["test_accuracy"]


def test_state_file_is_safetensors_with_json_metadata(tmp_path, splits, monkeypatch):
    fit(_config(tmp_path, epochs=1, optimizer="sgd", lr=0.01), splits)
    path = tmp_path / "run" / STATE_FILE

    def refuse(*a, **k):
        raise AssertionError("resume must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    tensors, doc = read_train_state(path)
    assert doc["epoch"] == 1 and doc["config"]["arch"] == "model_b"
    assert any(k.startswith("optim.") and k.endswith("momentum_buffer") for k in tensors)
    assert "rng.torch" in tensors and any(k.startswith("model.net.") for k in tensors)
    fit(_config(tmp_path, epochs=2, optimizer="sgd", lr=0.01, resume=True), splits)


def test_resume_errors(tmp_path, splits):
    with pytest.raises(CheckpointError, match="no training state to resume"):
        fit(_config(tmp_path, resume=True), splits)
    fit(_config(tmp_path, epochs=1), splits)
    with pytest.raises(CheckpointError, match="trained with arch='model_b'") as info:
        fit(_config(tmp_path, arch="lenet5", resume=True), splits)
    assert "\n" not in str(info.value)
    (tmp_path / "run" / STATE_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt training state"):
        fit(_config(tmp_path, resume=True), splits)


def test_limits_and_bad_splits(tmp_path):
    data = make_splits(n_train=64, n_test=32)
    result = fit(_config(tmp_path, epochs=1, limit_train=20, limit_test=10), data)
    assert (result["n_train"], result["n_test"]) == (20, 10)
    data.train.x = data.train.x * 2  # values outside [0, 1]
    from advforge.errors import InputError

    with pytest.raises(InputError, match=r"train.x values must lie in \[0, 1\]"):
        fit(_config(tmp_path, epochs=1), data)
