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
from advforge.cli.runtime import (
    dry_run_model,
    load_splits,
    make_progress,
    save_resolved_config,
)
from advforge.errors import InputError
from advforge.utils.paths import check_output_dir

# --dry-run: one epoch on a few synthetic images with the smallest attack settings.
DRY_RUN_TRAIN = {"dataset": "synthetic", "epochs": 1, "limit_train": 64, "limit_test": 64,
                 "batch_size": 32}
DRY_RUN_SETTINGS = {"steps": 2, "pgd_steps": 2, "g_steps": 1, "g_updates": 1, "width": 4,
                    "particles": 4, "iters": 2, "p_target": 0.0}

DESCRIPTION = ("Train a classifier under a defense and write a classifier run directory that "
               "every other command takes as --model.")
HELP = {
    "fgsm-at": "FGSM adversarial training (Goodfellow, Shlens & Szegedy 2015)",
    "pgd-at": "PGD adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu 2018)",
    "ensemble-at": "ensemble adversarial training with static source models (Tramer, "
                   "Kurakin, Papernot, Goodfellow, Boneh & McDaniel 2018)",
    "adv-net": "adversarial networks: the classifier against a learned noise generator "
               "(Wang & Yu)",
    "fi-at": "influence-guided adversarial fine-tuning of a trained classifier (--model): "
             "Algorithm 2 and Table 3 of Shi, Shu, Zhu & Chen 2020",
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
    _arch_from_model(args)
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


def _arch_from_model(args: argparse.Namespace) -> None:
    """fi-at fine-tunes ``--model``: its architecture picks the classifier recipe unless
    ``--arch`` is given (the run keeps the model's architecture either way)."""
    model = getattr(args, "model", UNSET)
    if args.defense != "fi-at" or model in (UNSET, None) or args.arch is not UNSET:
        return
    from advforge.models import read_model_config

    args.arch = read_model_config(model).get("arch", UNSET)


def cmd_defend(args: argparse.Namespace, device: torch.device, *, dry_run: bool,
               quiet: bool) -> int:
    from advforge.defenses import defend

    train, settings, labels = defend_configs(args, dry_run)
    if getattr(settings, "model", "") is None and not dry_run:
        raise InputError(f"{args.defense} fine-tunes a trained classifier: pass --model RUN")
    out = check_output_dir(train.out)
    splits = load_splits(train.dataset, train.data_dir, dry_run)
    settings = settings.resolved(splits)
    if settings.eps is None:
        raise InputError(f"dataset {splits.name} has no default budget; pass --eps")
    if getattr(settings, "model", "") is None:  # --dry-run without --model
        dry_run_model(splits, Path(out), device, train.seed)  # writes out/dry-run-model
        settings = dataclasses.replace(settings, model=str(Path(out) / "dry-run-model"))
    metrics = defend(settings, train, splits, device=device,
                     progress=make_progress(quiet) is not None)
    save_resolved_config(Path(out), config_to_yaml(train) + config_to_yaml(settings)
                         + f"recipes: {labels}\n")
    if "fi_at" in metrics:
        print_fi_at(metrics["fi_at"], Path(out))
        return 0
    print(f"{args.defense} {train.arch} on {splits.name} (eps {settings.eps:g}): clean test "
          f"accuracy {100 * metrics['test_accuracy']:.2f}%, {metrics['train_seconds']:.0f}s "
          f"training -> {out}")
    print(f"next: advforge robustness --model {out} --dataset {splits.name} "
          f"--eps {settings.eps:g}")
    return 0


def print_fi_at(report: dict[str, Any], out: Path) -> None:
    """Algorithm 2's counts and the main cells of Table 3, one line each."""
    from advforge.defenses.influence import REPORT

    for part, info in report["algorithm2"].items():
        print(f"Algorithm 2 on {part}: {info['selected']} of {info['correct']} correctly "
              f"classified images selected, {info['attacked']} attacked, {info['succeeded']} "
              f"adversarial examples")
    table = report["table3"]
    for cell in ("adv_train", "adv_test", "test", "test_plus_adv_test"):
        before, after = table["original"][cell], table["fine_tuned"][cell]
        print(f"  {cell}: {_pct(before)} -> {_pct(after)} (n={after['n']})")
    print(f"-> {out / REPORT} and the fine-tuned classifier in {out}")


def _pct(cell: dict[str, Any]) -> str:
    return "n/a" if cell["accuracy"] is None else f"{100 * cell['accuracy']:.2f}%"
