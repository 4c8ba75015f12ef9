"""A user's own network: factory specs, import_model's checks, and factory run directories
that load_model reads like zoo ones (never unpickling)."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from user_nets import forget, write_package

from advforge import data as datasets
from advforge.errors import AdvforgeError, CheckpointError, InputError
from advforge.models import import_model, load_model
from advforge.models.factory import build_from_factory, parse_factory_spec


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A package ``ownnets`` in the working directory, and make_net's weights beside it."""
    name = write_package(tmp_path, "ownnets")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    net = build_from_factory(f"{name}:make_net")
    save_file(net.state_dict(), str(tmp_path / "net.safetensors"))
    yield name
    forget(name)


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("spec", ["pkg.mod:make", "pkg:Factory.build", "a:b"])
def test_spec_syntax_accepts_module_colon_callable(spec):
    module, attr = parse_factory_spec(spec)
    assert f"{module}:{attr}" == spec


@pytest.mark.parametrize("spec", ["mynets", "mynets:", ":make", "my-nets:make", "a:b:c",
                                  "a.:b", "", 3])
def test_spec_syntax_refuses_anything_else(spec):
    with pytest.raises(InputError, match="package.module:callable") as info:
        parse_factory_spec(spec)
    _one_line(info)


@pytest.mark.parametrize("attr,match", [
    ("raises", "raised RuntimeError when called with no arguments: needs a GPU"),
    ("not_a_module", "returned a int, not a torch.nn.Module"),
    ("NOT_CALLABLE", "is a int, not a callable"),
    ("missing", "has no attribute 'missing'"),
])
def test_bad_factories_are_one_line_input_errors(pkg, attr, match):
    with pytest.raises(InputError, match=match) as info:
        build_from_factory(f"{pkg}:{attr}")
    _one_line(info)


def test_a_factory_may_import_more_of_the_working_directory_when_called(pkg, tmp_path):
    import sys

    assert build_from_factory(f"{pkg}:lazy_net").out_features == 2
    assert str(tmp_path) not in sys.path  # the path is restored after the import and the call


def test_unimportable_module_names_itself(pkg):
    match = "cannot import 'nosuchpkg.nets' from .*No module named 'nosuchpkg'"
    with pytest.raises(InputError, match=match) as info:
        build_from_factory("nosuchpkg.nets:make_net")
    _one_line(info)


def test_import_round_trip_gives_the_users_network(pkg, tmp_path, monkeypatch):
    config = import_model(f"{pkg}:make_net", "net.safetensors", dataset="synthetic",
                          out="runs/mine", mean=0.5, std=[0.25])
    run = tmp_path / "runs" / "mine"
    on_disk = json.loads((run / "config.json").read_text())
    assert on_disk == config and "arch" not in on_disk
    assert on_disk["factory"] == f"{pkg}:make_net" and on_disk["dataset"] == "synthetic"
    assert (on_disk["num_classes"], on_disk["in_channels"], on_disk["input_size"]) == (10, 1, 28)
    assert on_disk["mean"] == [0.5] and on_disk["std"] == [0.25]

    def refuse(*args, **kwargs):
        raise AssertionError("loading must not unpickle")

    for mod, attr in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(mod, attr, refuse)
    model = load_model(run)
    assert not model.training and model.num_classes == 10 and model.input_size == 28
    net = build_from_factory(f"{pkg}:make_net")
    net.load_state_dict(load_file(str(tmp_path / "net.safetensors")))
    test = datasets.load("synthetic").test
    x = test.x[:8]
    assert torch.equal(model(x), net.eval()((x - 0.5) / 0.25))  # normalisation applied once
    acc = (model(test.x).argmax(1) == test.y).float().mean().item()
    assert config["metrics"] == {"test_accuracy": pytest.approx(acc), "n_test": len(test)}


def test_factory_run_dir_needs_its_package_on_the_path(pkg, tmp_path, monkeypatch):
    import_model(f"{pkg}:make_net", "net.safetensors", dataset="synthetic", out="runs/mine",
                 limit=8)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    forget(pkg)
    with pytest.raises(CheckpointError, match=f"cannot import '{pkg}'") as info:
        load_model(tmp_path / "runs" / "mine")
    _one_line(info)


def test_config_naming_both_arch_and_factory_is_refused(pkg, tmp_path):
    import_model(f"{pkg}:make_net", "net.safetensors", dataset="synthetic", out="run", limit=8)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**cfg, "arch": "model_b"}))
    with pytest.raises(CheckpointError, match="both arch and factory"):
        load_model(tmp_path / "run")


def _write_flat_weights(tmp_path):
    flat = build_from_factory("ownnets:flat_net")
    save_file(flat.state_dict(), str(tmp_path / "flat.safetensors"))
    return "flat.safetensors"


@pytest.mark.parametrize("case,match", [
    ("strict", r"do not fit factory 'ownnets:make_net': 4 missing keys \(e.g. conv.bias, "
               r"conv.weight, head.bias, \.\.\.\); 2 unexpected keys \(e.g. 1.bias, 1.weight\)"),
    ("shape", r"head.weight has shape \(10, 507\), expected \(7, 507\)"),
    ("classes", r"returns \(2, 7\) for a \(2, 1, 28, 28\) batch; synthetic needs logits of "
                r"shape \(2, 10\) \(10 classes\)"),
    ("channels", r"fails on a \(2, 1, 28, 28\) batch of synthetic images \(RuntimeError"),
    ("corrupt", "not a readable safetensors file"),
    ("pickle", "not a readable safetensors file"),
    ("missing", "no such file"),
    ("mean", "--mean needs 1 value for synthetic"),
    ("std", "--std must be positive"),
    ("out is a file", "is an existing file, not a directory"),
    ("out under a file", "which is a file, not a directory"),
])
def test_bad_imports_fail_in_one_line_and_write_nothing(pkg, tmp_path, case, match):
    factory, weights, kw, out = f"{pkg}:make_net", "net.safetensors", {}, tmp_path / "out"
    if case == "strict":
        weights = _write_flat_weights(tmp_path)
    elif case == "shape":
        factory = f"{pkg}:seven_classes"
    elif case == "classes":
        factory = f"{pkg}:seven_classes"
        save_file(build_from_factory(factory).state_dict(), str(tmp_path / "seven.safetensors"))
        weights = "seven.safetensors"
    elif case == "channels":
        factory = f"{pkg}:colour_net"
        save_file(build_from_factory(factory).state_dict(), str(tmp_path / "rgb.safetensors"))
        weights = "rgb.safetensors"
    elif case == "corrupt":
        (tmp_path / "net.safetensors").write_bytes(b"\x00garbage" * 10)
    elif case == "pickle":
        weights = "net.pt"
        torch.save(build_from_factory(factory).state_dict(), tmp_path / weights)
    elif case == "missing":
        weights = "nope.safetensors"
    elif case == "mean":
        kw = {"mean": [0.1, 0.2, 0.3], "std": 0.3}
    elif case == "std":
        kw = {"mean": 0.1, "std": 0.0}
    elif case == "out is a file":
        out.write_text("x")
    elif case == "out under a file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "run"
    with pytest.raises(AdvforgeError, match=match) as info:
        import_model(factory, weights, dataset="synthetic", out=out, **kw)
    _one_line(info)
    assert not (out.is_dir() and any(out.iterdir()))
