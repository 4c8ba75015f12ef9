"""The recipe registry: every pair the papers use is there, every recipe builds a valid config,
measured figures are the ones their JSON holds, and configs/*.yaml agree with the recipes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from advforge import data as datasets
from advforge.cli.train_attacker import AttackerRunOptions
from advforge.generative import AdvGANConfig, AE4DNNConfig, AIGANConfig
from advforge.generative.config import flat_names
from advforge.models import MODELS
from advforge.models.recipes import RECIPES, Recipe, all_recipes, find_recipe
from advforge.training import TrainConfig

ROOT = Path(__file__).resolve().parents[2]

# (arch, dataset) of every classifier the four papers train, mnist5k standing in for MNIST.
PAPER_PAIRS = [
    # AI-GAN: Models A/B (and C, the black-box local model) on MNIST; ResNet32, WRN-34 and
    # ResNet20 (local) on CIFAR-10; ResNet20/32 on CIFAR-100; ResNet18 on ImageNet-50.
    ("model_a", "mnist5k"), ("model_b", "mnist5k"), ("model_c", "mnist5k"),
    ("resnet32", "cifar10"), ("wrn34", "cifar10"), ("resnet20", "cifar10"),
    ("resnet20", "cifar100"), ("resnet32", "cifar100"), ("resnet18", "imagefolder"),
    # AE4DNN: the transfer targets on MNIST.
    ("vgg13", "mnist5k"), ("vgg16", "mnist5k"), ("lenet5", "mnist5k"), ("alexnet", "mnist5k"),
    # FI + PSO: ResNet32 on MNIST and CIFAR-10.
    ("resnet32", "mnist5k"),
    # Adversarial networks: D1 on MNIST, D2 on SVHN, CIFAR-10, CIFAR-100.
    ("d1", "mnist5k"), ("d2", "svhn"), ("d2", "cifar10"), ("d2", "cifar100"),
]


@pytest.mark.parametrize("arch,dataset", PAPER_PAIRS)
def test_every_paper_pair_has_a_classifier_recipe(arch, dataset):
    recipe = find_recipe("classifier", arch, dataset)
    assert recipe is not None and recipe.key == ("classifier", arch, dataset)
    assert f"--arch {arch} --dataset {dataset}" in recipe.command


def test_attacker_recipes_behind_the_documented_figures():
    aigan = find_recipe("attacker", "aigan", "mnist5k")
    assert dict(aigan.settings) == {"epochs": 300} and aigan.measured is not None
    assert find_recipe("attacker", "aigan", "Fashion_MNIST").settings["limit_train"] == 60000
    assert find_recipe("attacker", "advgan", "mnist5k").settings["target"] == "all"
    assert find_recipe("attacker", "aigan", "cifar10") is None


@pytest.mark.parametrize("recipe", all_recipes(), ids=lambda r: r.label)
def test_every_recipe_builds_a_valid_config(recipe: Recipe):
    assert recipe.dataset in datasets.names()
    if recipe.kind == "classifier":
        assert recipe.name in MODELS
        cfg = TrainConfig(arch=recipe.name, dataset=recipe.dataset, **recipe.settings)
        assert all(getattr(cfg, k) == (tuple(v) if isinstance(v, tuple) else v)
                   for k, v in recipe.settings.items())
        return
    if recipe.kind == "defense":
        from advforge.defenses import settings_class

        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cls = settings_class(recipe.name)
        own = {f.name for f in dataclasses.fields(cls)}
        assert set(recipe.settings) <= train_fields | own, "a setting no config takes"
        TrainConfig(dataset=recipe.dataset,
                    **{k: v for k, v in recipe.settings.items() if k in train_fields})
        cls(**{k: v for k, v in recipe.settings.items() if k in own})
        return
    cls = {"aigan": AIGANConfig, "advgan": AdvGANConfig, "ae4dnn": AE4DNNConfig}[recipe.name]
    run_fields = {f.name for f in dataclasses.fields(AttackerRunOptions)}
    gan_fields = set(flat_names(cls))
    assert set(recipe.settings) <= run_fields | gan_fields, "a setting no config takes"
    cls.from_flat({k: v for k, v in recipe.settings.items() if k in gan_fields})
    AttackerRunOptions(**{k: v for k, v in recipe.settings.items() if k in run_fields})


@pytest.mark.parametrize("recipe", [r for r in all_recipes() if r.measured],
                         ids=lambda r: r.label)
def test_measured_figures_are_the_ones_their_json_holds(recipe: Recipe):
    m = recipe.measured
    path = ROOT / m.source
    assert m.source.startswith("benchmarks/results/") and path.is_file()
    value, parts = json.loads(path.read_text()), m.key.split(".")
    while parts:
        if isinstance(value, list):
            value, parts = value[int(parts[0])], parts[1:]
            continue
        # a name may hold a dot itself (the setting "fashion-b-0.1"): the longest match wins
        n = next(n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in value)
        value, parts = value[".".join(parts[:n])], parts[n:]
    assert value == pytest.approx(m.figure, abs=5e-5)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("train_*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_yaml_configs_agree_with_their_recipe(path):
    doc = yaml.safe_load(path.read_text())
    recipe = find_recipe("classifier", doc["arch"], doc["dataset"])
    assert recipe is not None
    settings = {k: v for k, v in doc.items() if k not in ("arch", "dataset", "out", "seed")}
    assert TrainConfig(**{"arch": doc["arch"], **settings}) == TrainConfig(
        arch=doc["arch"], **recipe.settings)


def test_recipes_are_read_only():
    recipe = next(iter(RECIPES.values()))
    with pytest.raises(TypeError):
        recipe.settings["epochs"] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.command = "x"
