"""Recipes: the settings a command uses by default for one (kind, name, dataset).

``advforge train-classifier --arch model_b --dataset mnist5k`` with no other flag trains with
the recipe registered for ``("classifier", "model_b", "mnist5k")``; ``advforge train-attacker
aigan --model RUN --dataset mnist5k`` with the one for ``("attacker", "aigan", "mnist5k")``.
Precedence when a command builds its config: dataclass defaults < recipe < ``--config`` YAML <
explicit flags (``advforge.cli.options.build_config``). ``advforge recipes`` lists them.

Classifier recipes cover every architecture x dataset pair the four papers use, with
``mnist5k`` standing in for MNIST: AI-GAN (Models A and B on MNIST, Model C as the black-box
local model; ResNet32 and WRN-34 on CIFAR-10 with ResNet20 as local model; ResNet20/32 on
CIFAR-100; ResNet18 on ImageNet-50, here ``imagefolder``), AE4DNN (Model B as the attacked CNN,
VGG-13/16, LeNet-5 and AlexNet as transfer targets), FI + PSO (ResNet32 on MNIST and CIFAR-10)
and adversarial networks (D1 on MNIST, D2 on SVHN, CIFAR-10 and CIFAR-100); plus the MNIST
nets on Fashion-MNIST, the larger MNIST-like benchmark. A recipe is ``measured`` only when a
committed JSON under ``benchmarks/results`` holds the figure it reached; the others follow the
papers' own training settings (converted from iterations to epochs) and say so.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

KINDS = ("classifier", "attacker", "defense")


@dataclasses.dataclass(frozen=True)
class Measured:
    """A figure a recipe reached, and where it is recorded.

    Attributes:
        figure: the value as a fraction (0.983 for 98.3%).
        what: what was measured, e.g. "test accuracy, 1,000 test images".
        source: the JSON file under ``benchmarks/results`` that holds it.
        key: dotted path of the figure inside that JSON (a name holding a dot itself, such
            as the setting ``fashion-b-0.1``, is matched whole).
    """

    figure: float
    what: str
    source: str
    key: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Default settings for one (kind, name, dataset).

    Attributes:
        kind: ``"classifier"`` (name = architecture), ``"attacker"`` (name = aigan/advgan)
            or ``"defense"`` (name = a defense of ``advforge defend``).
        name: architecture or attacker name.
        dataset: dataset name.
        settings: config field name -> value (fields of ``TrainConfig``, of the attacker's
            config and ``AttackerRunOptions``, or of ``TrainConfig`` and a defense's settings).
        command: the command line that reproduces the recipe.
        measured: the figure it reached and its JSON, or None when not measured here.
        origin: where the settings come from.
    """

    kind: str
    name: str
    dataset: str
    settings: Mapping[str, Any] = dataclasses.field(hash=False)
    command: str
    measured: Measured | None = None
    origin: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.dataset)

    @property
    def label(self) -> str:
        """``kind:name:dataset``, as recorded in a run's config."""
        return ":".join(self.key)


RECIPES: dict[tuple[str, str, str], Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to :data:`RECIPES` (one per key; its settings become read-only)."""
    if recipe.kind not in KINDS:
        raise ValueError(f"recipe kind must be one of {KINDS}, got {recipe.kind!r}")
    if recipe.key in RECIPES:
        raise ValueError(f"recipe {recipe.label} is registered twice")
    frozen = dataclasses.replace(recipe, settings=types.MappingProxyType(dict(recipe.settings)))
    RECIPES[recipe.key] = frozen
    return frozen


def find_recipe(kind: str, name: str, dataset: str) -> Recipe | None:
    """The recipe registered for (kind, name, dataset), or None (``Fashion_MNIST`` finds
    ``fashion-mnist``'s, as the dataset loader accepts it)."""
    key = str(dataset).strip().lower()
    return RECIPES.get((kind, name, key)) or RECIPES.get((kind, name, key.replace("_", "-")))


def all_recipes() -> list[Recipe]:
    """Every registered recipe, sorted by kind, dataset and name."""
    return sorted(RECIPES.values(), key=lambda r: (KINDS.index(r.kind), r.dataset, r.name))


def _classifier(name: str, dataset: str, settings: dict[str, Any], origin: str,
                measured: Measured | None = None) -> None:
    command = (f"advforge train-classifier --arch {name} --dataset {dataset} "
               f"--out runs/{name}_{dataset}")
    register(Recipe("classifier", name, dataset, settings, command, measured, origin))


# ---------------------------------------------------------------- classifiers

_RESULTS = "benchmarks/results/"

# mnist5k (4,000 training images). Model A's two dropout layers regularise enough (shifts on
# top made it underfit); dropout-free Model B trains with random shifts of up to 12.5%.
_classifier("model_a", "mnist5k", {
    "epochs": 20, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "lr_milestones": (15,),
    "lr_gamma": 0.1, "augment": "none"},
    "configs/train_model_a_mnist5k.yaml",
    Measured(0.982, "test accuracy, all 1,000 test images, CLI defaults",
             _RESULTS + "classifiers_mnist5k.json", "rows.0.test_accuracy"))
_MNIST5K_SMALL = {"epochs": 30, "batch_size": 64, "optimizer": "adam", "lr": 1e-3,
                  "lr_milestones": (20,), "lr_gamma": 0.1, "augment": "shift"}
_classifier("model_b", "mnist5k", _MNIST5K_SMALL, "configs/train_model_b_mnist5k.yaml",
            Measured(0.985, "test accuracy, all 1,000 test images, CLI defaults",
                     _RESULTS + "classifiers_mnist5k.json", "rows.1.test_accuracy"))
for _arch in ("model_c", "lenet5", "vgg13", "vgg16", "alexnet"):
    _classifier(_arch, "mnist5k", _MNIST5K_SMALL, "Model B's mnist5k recipe")
_classifier("resnet32", "mnist5k", {
    "epochs": 60, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
    "weight_decay": 1e-4, "lr_milestones": (30, 45), "lr_gamma": 0.1, "augment": "shift"},
    "He et al. 2016's SGD schedule with FI + PSO's 12.5% shifts, shortened for 4,000 images")
_classifier("d1", "mnist5k", {
    "epochs": 40, "batch_size": 64, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
    "weight_decay": 1e-4, "lr_milestones": (30,), "lr_gamma": 0.1, "augment": "none"},
    "adversarial networks Sec. 4.1 (SGD 0.01, momentum 0.9, batch 64, decay 1e-4, lr / 10 "
    "late), shortened for 4,000 images")

# Fashion-MNIST (60,000 training images).
_FASHION = {"epochs": 15, "batch_size": 128, "optimizer": "adam", "lr": 1e-3,
            "lr_milestones": (10,), "lr_gamma": 0.1, "augment": "none"}
_classifier("model_b", "fashion-mnist", {**_FASHION, "arch_kwargs": {"dropout": 0.5}},
            "configs/train_model_b_fashion.yaml (dropout 0.5 after the first FC layer, as in "
            "Carlini & Wagner's training of this net)")
for _arch in ("model_a", "model_c", "lenet5", "vgg13", "vgg16", "alexnet"):
    _classifier(_arch, "fashion-mnist", _FASHION, "Model B's Fashion-MNIST recipe")
_classifier("d1", "fashion-mnist", {
    "epochs": 15, "batch_size": 64, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
    "weight_decay": 1e-4, "lr_milestones": (10,), "lr_gamma": 0.1, "augment": "none"},
    "adversarial networks Sec. 4.1's MNIST settings (SGD 0.01, momentum 0.9, batch 64, decay "
    "1e-4, lr / 10 late) on Fashion-MNIST's 15-epoch schedule")
_classifier("resnet32", "fashion-mnist", {
    "epochs": 10, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
    "weight_decay": 1e-4, "lr_milestones": (6, 8), "lr_gamma": 0.1, "augment": "shift"},
    "He et al. 2016's SGD schedule with FI + PSO's 12.5% shifts, shortened to 10 epochs of "
    "60,000 images")

# CIFAR (50,000 training images). He et al. 2016 Sec. 4.2: SGD 0.1, momentum 0.9, decay 1e-4,
# batch 128, lr / 10 at 32k and 48k of 64k iterations (epochs 82 and 123 of 164).
_HE_CIFAR = {"epochs": 164, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
             "weight_decay": 1e-4, "lr_milestones": (82, 123), "lr_gamma": 0.1,
             "augment": "crop_flip"}
for _dataset in ("cifar10", "cifar100"):
    for _arch in ("resnet20", "resnet32"):
        _classifier(_arch, _dataset, _HE_CIFAR, "He et al. 2016, Sec. 4.2")
_classifier("wrn34", "cifar10", {
    "epochs": 200, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
    "weight_decay": 5e-4, "lr_milestones": (60, 120, 160), "lr_gamma": 0.2,
    "augment": "crop_flip"},
    "Zagoruyko & Komodakis 2016, Sec. 3 (WRN-34-10)")
# Adversarial networks Sec. 4.3 / appendix: batch 64, 100k iterations at lr then 100k at lr/10
# (128 + 128 epochs of 50,000 images).
_D2_CIFAR = {"epochs": 256, "batch_size": 64, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
             "lr_milestones": (128,), "lr_gamma": 0.1, "augment": "crop_flip"}
_classifier("d2", "cifar10", {**_D2_CIFAR, "weight_decay": 1e-4},
            "adversarial networks, Sec. 4.3")
_classifier("d2", "cifar100", {**_D2_CIFAR, "weight_decay": 1e-5},
            "adversarial networks, appendix (CIFAR-100)")
# SVHN's 73,257 training images: 100k + 100k iterations of 64 are 87 + 87 epochs.
_classifier("d2", "svhn", {
    "epochs": 174, "batch_size": 64, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
    "weight_decay": 1e-4, "lr_milestones": (87,), "lr_gamma": 0.1, "augment": "none"},
    "adversarial networks, Sec. 4.2 (without the 80k extra images)")
_classifier("resnet18", "imagefolder", {
    "epochs": 90, "batch_size": 256, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
    "weight_decay": 1e-4, "lr_milestones": (30, 60), "lr_gamma": 0.1, "augment": "crop_flip"},
    "He et al. 2016's ImageNet schedule, for AI-GAN's ImageNet-50")

# ---------------------------------------------------------------- attackers

register(Recipe(
    "attacker", "aigan", "mnist5k", {"epochs": 300},
    "advforge train-attacker aigan --model runs/model_b_mnist5k --dataset mnist5k "
    "--out runs/aigan_mnist5k",
    Measured(0.9073886068809927,
             "white-box targeted success against the shipped Model B, 8,865 test pairs "
             "(targeted PGD-100: 92.16%), forging in bfloat16",
             _RESULTS + "aigan_table6_mnist5k-b.json",
             "results.mnist5k-b-shipped.table6.default.success"),
    "the lean default generator (docs/aigan.md, \"The default generator\") for 300 epochs "
    "of mnist5k's 4,000 images"))
register(Recipe(
    "attacker", "aigan", "fashion-mnist", {"limit_train": 60000, "epochs": 80},
    "advforge train-attacker aigan --model runs/model_b_fashion-mnist --dataset fashion-mnist "
    "--out runs/aigan_fashion-mnist",
    Measured(0.9740338164251208,
             "white-box targeted success against Model B (its recipe) at eps 0.1, 8,280 test "
             "pairs (targeted PGD-100: 99.23%), forging in bfloat16",
             _RESULTS + "aigan_table6_fashion-b-0.1.json",
             "results.fashion-b-0.1.table6.default.success"),
    "the lean default generator for 80 epochs of all 60,000 training images (more epochs of "
    "the first 16,000 stop helping; docs/aigan.md), at the dataset's default eps"))
register(Recipe(
    "attacker", "advgan", "mnist5k", {"target": "all", "epochs": 5},
    "advforge train-attacker advgan --model runs/model_b_mnist5k --dataset mnist5k "
    "--out runs/advgan_mnist5k",
    Measured(0.8444444444444444,
             "white-box targeted success against Model B (its recipe), one generator per "
             "target, 8,865 test pairs",
             _RESULTS + "aigan_tables_mnist5k-b_retrained_cw20.json",
             "results.mnist5k-b.advgan.success"),
    "the AI-GAN tables' AdvGAN baseline: 5 epochs per target, every target"))
register(Recipe(
    "attacker", "ae4dnn", "mnist5k", {},
    "advforge train-attacker ae4dnn --model runs/model_b_mnist5k --dataset mnist5k "
    "--out runs/ae4dnn_mnist5k",
    Measured(0.784,
             "valid adversarial examples (AE4DNN's criteria, L2 <= 6.5) on the first 1,000 "
             "test images, target 7, beta chosen by --beta auto, against the shipped Model B",
             _RESULTS + "ae4dnn_mnist5k.json", "sweep.chosen_heldout.rate"),
    "package defaults: target 7, S of 1,000 images, beta auto, up to 100 epochs"))

# ---------------------------------------------------------------- defenses
# ``advforge defend NAME``: these settings apply over the classifier recipe of the chosen
# architecture. mnist5k has 4,000 training images, so the schedules are longer in epochs than
# the papers' (which count iterations over 60,000 images).

_MNIST5K_AT = {"epochs": 40, "batch_size": 64, "optimizer": "adam", "lr": 1e-3,
               "lr_milestones": (30,), "lr_gamma": 0.1, "augment": "shift"}
register(Recipe(
    "defense", "pgd-at", "mnist5k", {**_MNIST5K_AT, "eps_ramp_epochs": 5},
    "advforge defend pgd-at --arch model_b --dataset mnist5k --out runs/pgd-at_model_b",
    None,
    "Madry et al.'s objective with Wang & Yu's PGD-10 (step eps/4, random start) at eps 0.3; "
    "Adam with the budget ramped in over 5 epochs, 40 epochs of 4,000 images"))
register(Recipe(
    "defense", "fgsm-at", "mnist5k", dict(_MNIST5K_AT),
    "advforge defend fgsm-at --arch model_b --dataset mnist5k --out runs/fgsm-at_model_b",
    None, "Goodfellow et al.'s Eq. 6 (alpha 0.5) on Model B's training schedule"))
register(Recipe(
    "defense", "ensemble-at", "mnist5k", dict(_MNIST5K_AT),
    "advforge defend ensemble-at --arch model_b --dataset mnist5k --out runs/ensemble-at_model_b",
    None, "Tramer et al. (alpha 0.5, sources drawn per batch) with Wang & Yu's FGS / PGD / "
    "least-likely attacks, on Model B's training schedule"))
# Adversarial networks: D by SGD(0.01, momentum 0.9, weight decay 1e-5) with the rate / 10
# late (Sec. 4.1), G0 at width 64, and the paper's MNIST schedule: 5 G updates of 5 steps
# per D update (the settings' defaults). Robustness follows G's strength, not D's update
# count: one G update per D update at width 16 gave 4.2% under PGD-10 after 1,900 D updates
# on mnist5k, where this schedule passed 23% after 126 (benchmarks/advnet_schedule.py).
_ADVNET = {"batch_size": 64, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
           "weight_decay": 1e-5, "lr_gamma": 0.1, "augment": "none"}
register(Recipe(
    "defense", "adv-net", "mnist5k", {**_ADVNET, "epochs": 40, "lr_milestones": (30,)},
    "advforge defend adv-net --arch d1 --dataset mnist5k --out runs/adv-net_d1",
    None, "Wang & Yu Sec. 4.1 (G0 of width 64, lambda 1, gamma 0.01, 5 G updates of 5 steps "
    "per D update), 40 epochs of 4,000 images"))
register(Recipe(
    "defense", "adv-net", "fashion-mnist", {**_ADVNET, "epochs": 10, "lr_milestones": (7,)},
    "advforge defend adv-net --arch d1 --dataset fashion-mnist --eps 0.1",
    None, "Wang & Yu Sec. 4.1's MNIST settings, 10 epochs"))
_FASHION_AT = {"epochs": 15, "batch_size": 128, "optimizer": "adam", "lr": 1e-3,
               "lr_milestones": (10,), "lr_gamma": 0.1, "augment": "none"}
register(Recipe(
    "defense", "pgd-at", "fashion-mnist", {**_FASHION_AT, "eps_ramp_epochs": 2},
    "advforge defend pgd-at --arch model_b --dataset fashion-mnist --eps 0.1",
    None, "Madry et al. with PGD-10 of eps/4 on Fashion-MNIST's classifier schedule"))
for _name in ("fgsm-at", "ensemble-at"):
    register(Recipe(
        "defense", _name, "fashion-mnist", dict(_FASHION_AT),
        f"advforge defend {_name} --arch model_b --dataset fashion-mnist --eps 0.1",
        None, "Fashion-MNIST's classifier schedule"))
