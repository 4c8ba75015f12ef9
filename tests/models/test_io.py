"""Checkpoint round trips and every way a checkpoint can be broken."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from torch import nn

import advforge
from advforge.errors import CheckpointError
from advforge.models import create, load_model, save_model
from advforge.models.io import clean_state_dict


def _save(model, run_dir, arch="model_b", **kw):
    return save_model(model, run_dir, arch=arch, arch_kwargs=kw, dataset="synthetic", seed=3,
                      metrics={"test_accuracy": 0.5}, extra={"note": "x"})


@pytest.mark.parametrize("arch,kw", [("model_b", {"dropout": 0.5}), ("resnet20", {})])
def test_round_trip_gives_identical_outputs(tmp_path, arch, kw):
    torch.manual_seed(0)
    model = create(arch, num_classes=10, in_channels=1, input_size=28, mean=0.13, std=0.31, **kw)
    if arch == "resnet20":  # give BatchNorm non-default running statistics
        with torch.no_grad():
            model.train()(torch.rand(8, 1, 28, 28))
    model.eval()
    _save(model, tmp_path, arch, **kw)
    loaded = load_model(tmp_path)
    assert not loaded.training
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["arch"] == arch and config["arch_kwargs"] == kw
    assert (config["num_classes"], config["in_channels"], config["input_size"]) == (10, 1, 28)
    assert config["mean"] == pytest.approx([0.13]) and config["std"] == pytest.approx([0.31])
    assert config["dataset"] == "synthetic" and config["seed"] == 3
    assert config["version"] == advforge.__version__
    assert config["metrics"]["test_accuracy"] == 0.5 and config["extra"] == {"note": "x"}
    assert "created" in config


def test_top_level_reexport_and_file_path(tmp_path):
    model = create("lenet5").eval()
    _save(model, tmp_path, "lenet5")
    assert advforge.load_model is load_model
    loaded = load_model(tmp_path / "model.safetensors")  # a file inside the run dir works too
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))


def test_wrapper_prefixes_are_stripped(tmp_path):
    model = create("lenet5").eval()
    _save(nn.DataParallel(model), tmp_path, "lenet5")  # keys would start with "module."
    from safetensors.torch import load_file

    keys = load_file(str(tmp_path / "model.safetensors")).keys()
    assert keys and all(k.startswith("net.") for k in keys)
    state = {"module.net.0.weight": 1, "_orig_mod.net.1.bias": 2, "net._orig_mod.fc.w": 3}
    assert clean_state_dict(state) == {"net.0.weight": 1, "net.1.bias": 2, "net.fc.w": 3}


def test_loading_never_unpickles(tmp_path, monkeypatch):
    _save(create("model_b").eval(), tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("load_model must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    load_model(tmp_path)


@pytest.fixture
def saved(tmp_path):
    _save(create("model_b").eval(), tmp_path)
    return tmp_path


def _break(run_dir, how):
    cfg = run_dir / "config.json"
    if how == "missing dir":
        return run_dir / "nope"
    if how == "missing config":
        cfg.unlink()
    elif how == "corrupt config":
        cfg.write_text("{not json")
    elif how == "config without arch":
        d = json.loads(cfg.read_text())
        del d["arch"]
        cfg.write_text(json.dumps(d))
    elif how == "unknown arch":
        d = json.loads(cfg.read_text())
        d["arch"] = "model_z"
        cfg.write_text(json.dumps(d))
    elif how == "missing weights":
        (run_dir / "model.safetensors").unlink()
    elif how == "corrupt weights":
        (run_dir / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    elif how == "other architecture":
        d = json.loads(cfg.read_text())
        d["arch"] = "model_a"
        cfg.write_text(json.dumps(d))
    elif how == "other class count":
        d = json.loads(cfg.read_text())
        d["num_classes"] = 7
        cfg.write_text(json.dumps(d))
    return run_dir


@pytest.mark.parametrize(
    "how,match",
    [
        ("missing dir", "does not exist"),
        ("missing config", "missing file"),
        ("corrupt config", "corrupt JSON"),
        ("config without arch", "missing arch"),
        ("unknown arch", "unknown model 'model_z'"),
        ("missing weights", "missing file"),
        ("corrupt weights", "corrupt safetensors"),
        ("other architecture", "do not match 'model_a'"),
        ("other class count", "has shape"),
    ],
)
def test_broken_checkpoints_raise_one_line_checkpoint_errors(saved, how, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(_break(saved, how))
    assert "\n" not in str(info.value)


def test_save_refuses_a_bare_module(tmp_path):
    with pytest.raises(CheckpointError, match="ImageClassifier"):
        _save(nn.Linear(2, 2), tmp_path)
    assert not (tmp_path / "config.json").exists()
