"""CLI: your own network through import-model, evaluate and train-attacker; recipes as the
defaults of train-classifier and train-attacker (defaults < recipe < --config < flags)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from cli_helpers import cli_fails
from safetensors.torch import save_file
from user_nets import forget, write_package

from advforge.cli import build_parser, main
from advforge.cli.attacker_flags import flat_view
from advforge.cli.model_commands import attacker_recipe, build_train_config
from advforge.cli.options import build_config
from advforge.cli.train_attacker import AttackerRunOptions
from advforge.errors import InputError
from advforge.generative import AIGANConfig
from advforge.models.factory import build_from_factory
from advforge.models.recipes import all_recipes, find_recipe
from advforge.training import TrainConfig


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """The working directory of a user with a package ``mynets`` and its weights."""
    write_package(tmp_path, "mynets")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    save_file(build_from_factory("mynets:make_net").state_dict(), "net.safetensors")
    yield tmp_path
    forget("mynets")


def _ok(argv, capsys) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _fails(argv, capsys, mentions: str) -> str:
    err = cli_fails(argv, capsys, mentions=mentions)
    assert mentions in err, err  # and in the case given
    return err


def test_own_network_through_import_evaluate_and_train_attacker(user_dir, capsys):
    out = _ok(["import-model", "--factory", "mynets:make_net", "--weights", "net.safetensors",
               "--mean", "0.1307", "--std", "0.3081", "--dataset", "synthetic", "--limit", "16",
               "--out", "runs/mine"], capsys)
    config = json.loads((user_dir / "runs/mine/config.json").read_text())
    acc = config["metrics"]["test_accuracy"]
    assert config["factory"] == "mynets:make_net" and config["metrics"]["n_test"] == 16
    assert f"clean test accuracy {100 * acc:.2f}% (16 images)" in out

    _ok(["evaluate", "--model", "runs/mine", "--dataset", "synthetic", "--limit", "16",
         "--attacks", "fgsm", "--out", "reports/mine", "--quiet"], capsys)
    report = json.loads((user_dir / "reports/mine/report.json").read_text())
    assert report["meta"]["model"] == "runs/mine"
    assert report["attacks"][0]["clean_accuracy"] == pytest.approx(acc)  # the same 16 images

    out = _ok(["train-attacker", "aigan", "--model", "runs/mine", "--dry-run", "--quiet",
               "--out", "runs/aigan_mine"], capsys)
    assert "recipe attacker:aigan:mnist5k" in out  # the default dataset's, shrunk by --dry-run
    run = json.loads((user_dir / "runs/aigan_mine/config.json").read_text())
    assert run["target_model"]["run_dir"] == "runs/mine"
    assert (user_dir / "runs/aigan_mine/generator.safetensors").is_file()


@pytest.mark.parametrize("argv,mentions", [
    (["--factory", "mynets"], "factory must look like package.module:callable"),
    (["--factory", "mynets:raises"], "raised RuntimeError"),
    (["--factory", "mynets:not_a_module"], "not a torch.nn.Module"),
    (["--factory", "mynets:flat_net"], "2 missing keys (e.g. 1.bias, 1.weight); 4 unexpected keys"),
    (["--factory", "mynets:seven_classes"], "head.bias has shape (10,), expected (7,)"),
    (["--weights", "nope.safetensors"], "no such file"),
    (["--out", "net.safetensors"], "is an existing file, not a directory"),
    (["--mean", "0.1"], "--mean and --std go together"),
    (["--weights", None], "--weights is required"),
])
def test_import_model_bad_input_is_one_line(user_dir, capsys, argv, mentions):
    base = {"--factory": "mynets:make_net", "--weights": "net.safetensors",
            "--dataset": "synthetic", "--out": "runs/bad"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    _fails(["import-model", *[t for k, v in base.items() if v is not None for t in (k, v)]],
           capsys, mentions)
    assert not (user_dir / "runs/bad").exists()


def test_import_model_refuses_a_corrupt_weights_file(user_dir, capsys):
    (user_dir / "net.safetensors").write_bytes(b"\x00not safetensors" * 4)
    _fails(["import-model", "--factory", "mynets:make_net", "--weights", "net.safetensors",
            "--dataset", "synthetic", "--out", "runs/bad"], capsys, "not a readable safetensors")


def test_import_model_refuses_a_wrong_class_count(user_dir, capsys):
    save_file(build_from_factory("mynets:seven_classes").state_dict(), "seven.safetensors")
    _fails(["import-model", "--factory", "mynets:seven_classes", "--weights",
            "seven.safetensors", "--dataset", "synthetic", "--out", "runs/bad"], capsys,
           "synthetic needs logits of shape (2, 10) (10 classes)")


def test_recipes_lists_every_registered_recipe(capsys):
    out = _ok(["recipes"], capsys)
    lines = out.splitlines()
    for recipe in all_recipes():
        row = next(line for line in lines if line.split()[:3] == list(recipe.key))
        assert ("not measured" in row) == (recipe.measured is None)
        assert f"    $ {recipe.command}" in lines
    assert "98.20%" in next(line for line in lines if line.split()[:3] == [
        "classifier", "model_a", "mnist5k"])
    only = _ok(["recipes", "--kind", "attacker"], capsys)
    assert "classifier" not in only and "aigan" in only


def _train_args(*argv):
    return build_parser().parse_args(["train-classifier", *argv])


def test_train_classifier_with_arch_and_dataset_uses_the_recipe():
    recipe = find_recipe("classifier", "model_b", "mnist5k")
    cfg, used = build_train_config(_train_args("--arch", "model_b", "--dataset", "mnist5k"))
    assert used is recipe and cfg.recipe == "classifier:model_b:mnist5k"
    assert cfg == TrainConfig(arch="model_b", dataset="mnist5k", recipe=recipe.label,
                              **recipe.settings)
    assert cfg.epochs == 30 and cfg.augment == "shift"  # not the package default's 10 / auto
    cfg_a, _ = build_train_config(_train_args("--arch", "model_a"))  # mnist5k by default
    assert cfg_a.epochs == 20 and cfg_a.lr_milestones == (15,)


def test_yaml_sits_between_recipe_and_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 7\nlr: 0.01\n")
    cfg, _ = build_train_config(_train_args("--arch", "model_b", "--config", str(path)))
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (7, 0.01, 64)  # YAML over recipe
    cfg, _ = build_train_config(_train_args("--arch", "model_b", "--config", str(path),
                                            "--epochs", "3", "--augment", "none"))
    assert (cfg.epochs, cfg.lr, cfg.augment, cfg.batch_size) == (3, 0.01, "none", 64)
    path.write_text("arch: model_a\ndataset: mnist5k\n")  # the recipe key may come from YAML
    cfg, _ = build_train_config(_train_args("--config", str(path)))
    assert cfg.recipe == "classifier:model_a:mnist5k" and cfg.epochs == 20


def test_no_recipe_means_package_defaults_said_in_one_line(capsys):
    from advforge.cli.model_commands import train_classifier_config

    cfg = train_classifier_config(_train_args("--arch", "resnet18", "--dataset", "mnist5k"))
    assert cfg.recipe is None
    assert cfg == TrainConfig(arch="resnet18", dataset="mnist5k")
    out = capsys.readouterr().out
    assert out == ("train-classifier: no recipe for resnet18 on mnist5k; using the package "
                   "defaults\n")


def test_dry_run_shrinks_on_top_of_the_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    _ok(["train-classifier", "--arch", "model_b", "--dry-run", "--quiet", "--out", str(out)],
        capsys)
    resolved = yaml.safe_load((out / "resolved_config.yaml").read_text())
    assert resolved["recipe"] == "classifier:model_b:mnist5k"
    assert (resolved["epochs"], resolved["dataset"], resolved["batch_size"]) == (1, "synthetic",
                                                                                 64)
    train_config = json.loads((out / "config.json").read_text())["extra"]["train_config"]
    assert train_config["recipe"] == "classifier:model_b:mnist5k"


def test_train_attacker_uses_its_recipe_under_yaml_and_flags(tmp_path, capsys):
    def config(*argv):
        args = build_parser().parse_args(["train-attacker", "aigan", "--model", "m", *argv])
        recipe = attacker_recipe(args, AttackerRunOptions)
        return build_config(flat_view(AIGANConfig), args,
                            recipe=recipe.settings if recipe else None)

    assert config().epochs == 300
    assert "recipe attacker:aigan:mnist5k (epochs=300)" in capsys.readouterr().out
    assert config("--epochs", "3").epochs == 3
    # a recipe's setting applies unless a flag says otherwise
    args = build_parser().parse_args(["train-attacker", "aigan", "--dataset", "fashion-mnist"])
    options = attacker_recipe(args, AttackerRunOptions).settings
    assert build_config(AttackerRunOptions, args, recipe=options).limit_train == 60000
    args = build_parser().parse_args(["train-attacker", "aigan", "--dataset", "fashion-mnist",
                                      "--limit-train", "50"])
    assert build_config(AttackerRunOptions, args, recipe=options).limit_train == 50
    assert config("--dataset", "cifar10").epochs == AIGANConfig().training.epochs
    assert "no recipe for aigan on cifar10; using the package defaults" in \
        capsys.readouterr().out
    # one --config file holds options of both configs of the subcommand, between the recipe
    # and the flags
    path = tmp_path / "gan.yaml"
    path.write_text("epochs: 7\nlimit_train: 100\nkappa: 5\n")
    assert (config("--config", str(path)).epochs, config("--config", str(path)).kappa) == (7, 5)
    assert config("--config", str(path), "--epochs", "2").epochs == 2
    args = build_parser().parse_args(["train-attacker", "aigan", "--config", str(path)])
    assert build_config(AttackerRunOptions, args).limit_train == 100
    path.write_text("epochz: 7\n")
    with pytest.raises(InputError, match="unknown option 'epochz'"):
        config("--config", str(path))


def test_resolved_attacker_config_is_what_train_attacker_would_train(tmp_path):
    """What benchmarks compare a cached run with: defaults < recipe < YAML < flags, and the
    dataset's own budget when --eps is not given."""
    from advforge.cli.train_attacker import resolved_attacker_config

    flat = resolved_attacker_config(["aigan", "--model", "m"])
    assert (flat["epochs"], flat["eps"], flat["g_arch"]) == (300, 0.3, "shuffle")
    path = tmp_path / "gan.yaml"
    path.write_text("epochs: 7\nkappa: 9\n")
    flat = resolved_attacker_config(["aigan", "--model", "m", "--dataset", "fashion-mnist",
                                     "--eps", "0.1", "--config", str(path), "--kappa", "2"])
    assert (flat["epochs"], flat["kappa"], flat["eps"]) == (7, 2.0, 0.1)
    assert "limit_train" not in flat  # a run option, not the attacker's config
