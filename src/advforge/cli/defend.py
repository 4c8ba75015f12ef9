"""``advforge defend NAME --arch A --dataset D --out DIR``: train a classifier under a defense.

The flags are the classifier loop's (``TrainConfig``: architecture, dataset, epochs, optimiser,
schedule, ``--resume``) plus the defense's own (its settings dataclass in
:mod:`advforge.defenses`). Defaults: package defaults < the classifier recipe for (arch,
dataset) < the defense recipe for (defense, dataset) < ``--config`` YAML < flags. The output is
an ordinary classifier run directory; under ``torchrun`` every rank trains its shard and rank 0
writes.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch

from advforge.cli.model_commands import _classifier_key, _recipe_line
from advforge.cli.options import UNSET, add_dataclass_flags, build_config, config_to_yaml
from advforge.cli.runtime import load_splits, make_progress, save_resolved_config
from advforge.errors import InputError
from advforge.utils.paths import check_output_dir

# --dry-run: one epoch on a few synthetic images with the smallest attack settings.
DRY_RUN_TRAIN = {"dataset": "synthetic", "epochs": 1, "limit_train": 64, "limit_test": 64,
                 "batch_size": 32}
DRY_RUN_SETTINGS = {"steps": 2, "pgd_steps": 2, "g_steps": 1, "g_updates": 1, "width": 4}

DESCRIPTION = ("Train a classifier under a defense and write a classifier run directory that "
               "every other command takes as --model.")
HELP = {
    "fgsm-at": "FGSM adversarial training (Goodfellow, Shlens & Szegedy 2015)",
    "pgd-at": "PGD adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu 2018)",
    "ensemble-at": "ensemble adversarial training with static source models (Tramer, "
                   "Kurakin, Papernot, Goodfellow, Boneh & McDaniel 2018)",
    "adv-net": "adversarial networks: the classifier against a learned noise generator "
               "(Wang & Yu)",
}


def add_parser(sub: Any, add_common: Any) -> None:
    from advforge.defenses import DEFENSES
    from advforge.training import TrainConfig

    p = sub.add_parser("defend", help="train a classifier under a defense (adversarial "
                       "training, adversarial networks)", description=DESCRIPTION)
    kinds = p.add_subparsers(dest="defense", metavar="NAME", required=True)
    for name in DEFENSES.names():
        cls = DEFENSES.get(name)
        doc = HELP.get(name, name)
        k = kinds.add_parser(name, help=doc, description=f"{doc[0].upper()}{doc[1:]}. "
                             + DESCRIPTION)
        add_dataclass_flags(k.add_argument_group("classifier training"), TrainConfig)
        add_dataclass_flags(k.add_argument_group(f"{name} settings"), cls)
        add_common(k)


def defend_configs(args: argparse.Namespace, dry_run: bool) -> tuple[Any, Any, list[str]]:
    """(TrainConfig, defense settings, recipe labels) from defaults < classifier recipe <
    defense recipe < YAML < flags (< --dry-run's tiny settings)."""
    from advforge.defenses import settings_class
    from advforge.models.recipes import find_recipe
    from advforge.training import TrainConfig

    cls = settings_class(args.defense)
    arch, dataset = _classifier_key(args)
    recipes = [r for r in (find_recipe("classifier", arch, dataset),
                           find_recipe("defense", args.defense, dataset)) if r is not None]
    merged: dict[str, Any] = {}
    for recipe in recipes:
        merged.update(recipe.settings)
    labels = [r.label for r in recipes]
    print(_recipe_line(f"defend {args.defense}", recipes[-1] if recipes else None,
                       f"{args.defense} with {arch} on {dataset}"))
    train_extra: dict[str, Any] = {"recipe": labels[-1] if labels else None}
    if getattr(args, "out", UNSET) is UNSET:
        train_extra["out"] = f"runs/{args.defense}_{arch}_{dataset}"
    settings_extra: dict[str, Any] = {}
    if dry_run:
        train_extra.update(DRY_RUN_TRAIN)
        if getattr(args, "out", UNSET) is UNSET:
            train_extra["out"] = f"runs/dry-run/{args.defense}"
        fields = {f.name for f in dataclasses.fields(cls)}
        settings_extra = {k: v for k, v in DRY_RUN_SETTINGS.items() if k in fields}
    train = build_config(TrainConfig, args, train_extra, recipe=merged)
    settings = build_config(cls, args, settings_extra, recipe=merged)
    return train, settings, labels


def cmd_defend(args: argparse.Namespace, device: torch.device, *, dry_run: bool,
               quiet: bool) -> int:
    from advforge.defenses import defend

    train, settings, labels = defend_configs(args, dry_run)
    out = check_output_dir(train.out)
    splits = load_splits(train.dataset, train.data_dir, dry_run)
    if settings.eps is None and getattr(splits, "default_eps", None) is None:
        raise InputError(f"dataset {splits.name} has no default budget; pass --eps")
    settings = settings.resolved(splits)
    metrics = defend(settings, train, splits, device=device,
                     progress=make_progress(quiet) is not None)
    save_resolved_config(Path(out), config_to_yaml(train) + config_to_yaml(settings)
                         + f"recipes: {labels}\n")
    print(f"{args.defense} {train.arch} on {splits.name} (eps {settings.eps:g}): clean test "
          f"accuracy {100 * metrics['test_accuracy']:.2f}%, {metrics['train_seconds']:.0f}s "
          f"training -> {out}")
    print(f"next: advforge robustness --model {out} --dataset {splits.name} "
          f"--eps {settings.eps:g}")
    return 0
