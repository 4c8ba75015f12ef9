"""``advforge train-attacker aigan|advgan|ae4dnn|atn``: train a learned attacker against a
classifier.

The attacker's own hyperparameters come from its nested config
(:class:`advforge.generative.AIGANConfig`, :class:`AdvGANConfig`, :class:`AE4DNNConfig`,
:class:`ATNConfig`); their flags keep the flat names (``--g-ch``, ``--epochs``, ``--beta``)
and are listed in ``--help`` by section (:mod:`.attacker_flags`).
:class:`AttackerRunOptions` says against what, on which data, and where to write.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

import torch

from advforge.cli.attacker_flags import RUN_GROUP, add_attacker_flags, flat_view
from advforge.cli.configs import _help
from advforge.cli.model_commands import attacker_recipe
from advforge.cli.options import UNSET, add_dataclass_flags, build_config, config_to_yaml
from advforge.cli.runtime import (
    check_dataset_matches,
    check_model_fits,
    dry_run_model,
    load_splits,
    make_progress,
    run_config,
    warn,
)
from advforge.errors import InputError
from advforge.utils.checkpoint import atomic_write_text
from advforge.utils.paths import check_output_dir
from advforge.utils.seed import seed_everything

# --dry-run: the whole pipeline on the synthetic split in seconds.
DRY_RUN_OVERRIDES = {"epochs": 1, "batch_size": 32, "g_ch": 8, "d_ch": 8, "eval_size": 32,
                     "pretrain_epochs": 1, "distill_warmup_epochs": 1, "attacker_steps": 2,
                     "local_select_images": 32, "subset_size": 36, "bound_inits": 1,
                     "ae_ch": 4}


@dataclasses.dataclass(kw_only=True)
class AttackerRunOptions:
    """What to attack, with which data, and where the run goes."""

    model: str | None = field(default=None,
                              metadata=_help("run directory of the target classifier"))
    dataset: str = field(default="mnist5k", metadata=_help("dataset to train on"))
    data_dir: str | None = field(default=None, metadata=_help("directory holding the dataset"))
    out: str = field(default="runs/attacker", metadata=_help("run directory to write"))
    resume: bool = field(default=False, metadata=_help(
        "continue an interrupted run in --out, or extend a finished one with a larger --epochs "
        "(a GAN's cosine schedule then restarts part-way; metrics.extensions records it; a "
        "finished sweep point of ae4dnn / atn is kept)"))
    limit_train: int | None = field(default=None, metadata=_help("train on the first N images"))

    def __post_init__(self) -> None:
        if self.limit_train is not None and self.limit_train <= 0:
            raise InputError(f"--limit-train must be > 0, got {self.limit_train}")


def _configs() -> dict[str, Any]:
    from advforge.generative import AdvGANConfig, AE4DNNConfig, AIGANConfig, ATNConfig

    return {"aigan": AIGANConfig, "advgan": AdvGANConfig, "ae4dnn": AE4DNNConfig,
            "atn": ATNConfig}


def _fits() -> dict[str, Any]:
    from advforge.generative import fit_advgan, fit_ae4dnn, fit_aigan, fit_atn

    return {"aigan": fit_aigan, "advgan": fit_advgan, "ae4dnn": fit_ae4dnn, "atn": fit_atn}


HELP = {"aigan": "AI-GAN (Bai et al.): one conditional generator for every target class",
        "advgan": "AdvGAN (Xiao et al.): one generator per target class",
        "ae4dnn": "AE4DNN (Nguyen et al.): one L2 autoencoder per target class, beta rule",
        "atn": "ATN/AAE (Baluja & Fischer): one adversarial autoencoder per target class"}
DESCRIPTIONS = {
    "aigan": "Train an AI-GAN generator that forges targeted adversarial examples for any "
             "target class against a classifier, and write its run directory.",
    "advgan": "Train an AdvGAN generator (one per target class) against a classifier, and "
              "write its run directory.",
    "ae4dnn": "Train AE4DNN autoencoders (one per target class, on a balanced subset of the "
              "training split) whose reconstructions are targeted L2 adversarial examples, "
              "choosing beta by Formula 3's bound and the mean-L2 rule with --beta auto, and "
              "write the run directory.",
    "atn": "Train ATN/AAE adversarial autoencoders (one per target class, on a balanced "
           "subset of the training split) with the reranking loss, sweeping phi with --phi "
           "auto, and write the run directory.",
}


def add_parser(sub: Any, add_common: Any) -> None:
    p = sub.add_parser("train-attacker", help="train a learned attacker (AI-GAN, AdvGAN, "
                       "AE4DNN, ATN/AAE)",
                       description="Train a learned attacker against a classifier.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, cls in _configs().items():
        k = kinds.add_parser(kind, help=HELP[kind], description=DESCRIPTIONS[kind])
        add_dataclass_flags(k.add_argument_group(*RUN_GROUP), AttackerRunOptions)
        add_attacker_flags(k, cls)
        add_common(k)


def _attacker_config(cls: type, args: argparse.Namespace, splits: Any, dry_run: bool,
                     recipe: Any = None) -> tuple[Any, Any]:
    """The attacker's nested config from defaults < recipe < YAML < flags, and its flat form
    (the flags' view, which resolved_config.yaml records)."""
    flat_cls = flat_view(cls)
    extra: dict[str, Any] = {}
    has_eps = any(f.name == "eps" for f in dataclasses.fields(flat_cls))
    if has_eps and getattr(args, "eps", UNSET) is UNSET:
        extra["eps"] = splits.default_eps  # the paper's budget for this kind of data
    if dry_run:
        names = {f.name for f in dataclasses.fields(flat_cls)}
        extra.update({k: v for k, v in DRY_RUN_OVERRIDES.items() if k in names})
    flat = build_config(flat_cls, args, extra, recipe=recipe)
    return cls.from_flat(dataclasses.asdict(flat)), flat


def resolved_attacker_config(argv: Sequence[str]) -> dict[str, Any]:
    """The flat config ``advforge train-attacker *argv`` would train (defaults < recipe <
    YAML < flags), resolved without training or loading a model.

    Benchmarks compare a cached run's recorded config with it, so a run trained under other
    defaults is not reported as today's. The dataset's files are read only when ``--eps`` is
    not given (the default budget is the dataset's)."""
    from advforge.cli import build_parser

    args = build_parser().parse_args(["train-attacker", *argv])
    recipe = attacker_recipe(args, AttackerRunOptions, announce=False)
    splits = None
    if getattr(args, "eps", UNSET) is UNSET:
        run = build_config(AttackerRunOptions, args)
        splits = load_splits(run.dataset, run.data_dir, False)
    _, flat = _attacker_config(_configs()[args.kind], args, splits, False,
                               recipe.settings if recipe else None)
    return dataclasses.asdict(flat)


def cmd_train_attacker(args: argparse.Namespace, device: torch.device, *, dry_run: bool,
                       quiet: bool, deterministic: bool = False) -> int:
    from advforge.utils.distributed import cleanup_distributed, init_distributed

    # Under torchrun every rank joins the group (each on its own GPU if any); the GAN loops
    # then shard batches and average gradients (advforge.generative.parallel).
    info = init_distributed(device)
    try:
        return _train_attacker(args, info.device, dry_run=dry_run, quiet=quiet,
                               deterministic=deterministic, is_main=info.is_main)
    finally:
        cleanup_distributed(info)


def _train_attacker(args: argparse.Namespace, device: torch.device, *, dry_run: bool,
                    quiet: bool, deterministic: bool, is_main: bool) -> int:
    from advforge.models import load_model

    chosen = attacker_recipe(args, AttackerRunOptions)  # defaults < recipe < YAML < flags
    recipe = chosen.settings if chosen else None
    dry_out = {"out": f"runs/dry-run/{args.kind}"} if dry_run and args.out is UNSET else None
    run = build_config(AttackerRunOptions, args, dry_out, recipe=recipe)
    check_output_dir(run.out)
    splits = load_splits(run.dataset, run.data_dir, dry_run)
    cfg, flat = _attacker_config(_configs()[args.kind], args, splits, dry_run, recipe)
    if run.model is None and not dry_run:
        raise InputError("--model is required (the target classifier's run directory)")
    if run.model is None:  # --dry-run: a tiny Model B trained for the occasion
        model = dry_run_model(splits, Path(run.out), device, cfg.training.seed)
    else:
        model = load_model(run.model).to(device)
        message = check_dataset_matches(run_config(run.model), splits, f"model {run.model}")
        if message:
            warn(message)
    check_model_fits(model, splits, run.model or "(dry-run)")
    seed_everything(cfg.training.seed, deterministic=deterministic)
    train = splits.train if run.limit_train is None else splits.train.subset(
        range(min(run.limit_train, len(splits.train))))
    fit = _fits()[args.kind]
    start = time.perf_counter()
    metrics = fit(cfg, model, train, val=splits.test, run_dir=run.out, resume=run.resume,
                  progress=make_progress(quiet) is not None, dataset=splits.name,
                  target_run_dir=run.model)
    if is_main:
        atomic_write_text(Path(run.out) / "resolved_config.yaml",
                          config_to_yaml(run) + config_to_yaml(flat)
                          + f"recipe: {chosen.label if chosen else 'null'}\n")
    success = metrics.get("success", metrics.get("final_success"))
    print(f"{args.kind} trained in {time.perf_counter() - start:.0f}s -> {run.out}"
          + (f"; targeted success on held-out pairs {100 * success:.2f}%"
             if isinstance(success, float) else ""))
    return 0
