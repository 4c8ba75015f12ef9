"""``advforge demo``: the main job on the embedded default (``mnist5k``).

By default the demo evaluates the weights shipped in :mod:`advforge.pretrained` (Model B of
AI-GAN Table I and an AI-GAN generator trained against it by the package's own recipes): FGSM,
PGD-20, C&W L2 and AI-GAN with targets = all (every class != the true one, the AI-GAN Table II
protocol) on the first 500 test images (C&W L2, the slow one, on the first 20), then prints
the summary table and writes ``<out>/report`` (json, md, self-contained html with Fig. 3/4-style
pictures).

``--from-scratch`` first trains Model B, AI-GAN and AdvGAN (target 3) into ``<out>``, each
stage reusing a finished run and resuming an interrupted one, and evaluates them the same way
(AdvGAN on its target). ``--dry-run`` runs the from-scratch pipeline on a tiny synthetic set
under ``runs/dry-run/demo``, so it never writes where a real demo reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from advforge.cli.commands import _meta
from advforge.cli.configs import DemoConfig
from advforge.cli.runtime import DRY_RUN_DATA, make_progress
from advforge.cli.specs import build_attack
from advforge.errors import InputError

SHIPPED_DATASET = "mnist5k"
DEFAULT_OUT = {False: "runs/demo", True: "runs/dry-run/demo"}  # keyed by --dry-run
# From scratch the demo must finish in 15 minutes on two CPU cores, so it trains less than the
# recipes do: Model B 20 epochs (the recipe: 30), AI-GAN's lean default generator 40 (300),
# AdvGAN 3 for its one target.
DEMO_TRAIN = {"arch": "model_b", "epochs": 20, "batch_size": 64, "optimizer": "adam", "lr": 1e-3,
              "lr_milestones": (14,), "lr_gamma": 0.1, "augment": "shift"}
DEMO_AIGAN = {"epochs": 40}
DEMO_ADVGAN = {"epochs": 3, "target": 3}
DEMO_TEST_IMAGES = 500  # unless --limit says otherwise
# (attack spec, targets, number of test images): C&W's binary search costs ~500 gradient steps
# per example, so it runs on a subset; the rest run on DEMO_TEST_IMAGES.
DEMO_EVAL = [
    ("fgsm", "all", None),
    ("pgd:steps=20:step_size=0.025:loss=cw", "all", None),
    ("cw_l2:binary_search_steps=5:steps=100", "all", 20),
    ("aigan", "all", None),
    ("advgan", DEMO_ADVGAN["target"], None),
]
DRY_RUN = {"train": {"epochs": 1}, "gan": {"epochs": 1, "batch_size": 32, "g_ch": 8, "d_ch": 8,
           "eval_size": 32, "pretrain_epochs": 1, "attacker_steps": 2}}
DRY_RUN_EVAL = [("fgsm", "all", None), ("pgd:steps=3:loss=cw", "all", None),
                ("aigan", "all", None), ("advgan", DEMO_ADVGAN["target"], None)]


def eval_images(attack_limit: int | None, user_limit: int | None, test_size: int,
                dry_run: bool) -> int:
    """How many test images one attack of the demo runs on: ``--limit`` or DEMO_TEST_IMAGES
    (the dry run's tiny split: all of it), capped by the attack's own limit (C&W's)."""
    images = min(user_limit or (test_size if dry_run else DEMO_TEST_IMAGES), test_size)
    return min(attack_limit or images, images)


def _recorded_dataset(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "config.json").read_text()).get("dataset")
    except (OSError, ValueError):
        return None


def _reusable(run_dir: Path, marker: str, dataset: str, retrain: bool) -> bool:
    """Whether a finished stage in ``run_dir`` is reused; one trained on another dataset is
    refused, since its figures would say nothing about this one."""
    if retrain or not (run_dir / marker).is_file():
        return False
    recorded = _recorded_dataset(run_dir)
    if recorded is not None and recorded != dataset:
        raise InputError(f"{run_dir} was trained on {recorded}, not {dataset}: pass --retrain "
                         "or another --out")
    print(f"reusing {run_dir}")
    return True


def _train_classifier(cfg: DemoConfig, out: Path, splits: Any, device: torch.device,
                      dry_run: bool, quiet: bool) -> tuple[Any, Path]:
    from advforge.models import load_model
    from advforge.training import TrainConfig, fit

    run_dir = out / "model_b"
    if _reusable(run_dir, "model.safetensors", splits.name, cfg.retrain):
        return load_model(run_dir).to(device), run_dir
    recipe = {**DEMO_TRAIN, **(DRY_RUN["train"] if dry_run else {})}
    train_cfg = TrainConfig(**recipe, dataset=splits.name, data_dir=cfg.data_dir,
                            seed=cfg.seed, out=str(run_dir),
                            resume=(run_dir / "train_state.safetensors").is_file()
                            and not cfg.retrain)
    start = time.perf_counter()
    metrics = fit(train_cfg, splits, device=device, progress=make_progress(quiet))
    print(f"trained Model B: test accuracy {100 * metrics['test_accuracy']:.2f}% "
          f"in {time.perf_counter() - start:.0f}s -> {run_dir}", flush=True)
    return load_model(run_dir).to(device), run_dir


def _train_attacker(kind: str, cfg: DemoConfig, out: Path, model: Any, model_dir: Path,
                    splits: Any, dry_run: bool, quiet: bool) -> Path:
    from advforge.generative import AdvGANConfig, AIGANConfig, fit_advgan, fit_aigan
    from advforge.generative.config import flat_names
    from advforge.generative.state import has_training_state

    run_dir = out / kind
    if _reusable(run_dir, "config.json", splits.name, cfg.retrain):
        return run_dir
    cls, fit, base = ((AIGANConfig, fit_aigan, DEMO_AIGAN) if kind == "aigan"
                      else (AdvGANConfig, fit_advgan, DEMO_ADVGAN))
    names = set(flat_names(cls))
    small = {k: v for k, v in DRY_RUN["gan"].items() if k in names} if dry_run else {}
    gan_cfg = cls.from_flat({**base, **small, "eps": splits.default_eps, "seed": cfg.seed})
    start = time.perf_counter()
    fit(gan_cfg, model, splits.train, val=splits.test, run_dir=run_dir,
        resume=has_training_state(run_dir) and not cfg.retrain,
        progress=make_progress(quiet) is not None, dataset=splits.name,
        target_run_dir=model_dir)
    print(f"trained {kind} in {time.perf_counter() - start:.0f}s -> {run_dir}", flush=True)
    return run_dir


def _shipped(device: torch.device) -> tuple[Any, dict[str, Path]]:
    """The shipped Model B and the run directory of its shipped AI-GAN generator."""
    from advforge import pretrained

    model_dir = pretrained.path("mnist5k_model_b")
    config = json.loads((model_dir / "config.json").read_text())
    accuracy = config.get("metrics", {}).get("test_accuracy")
    print(f"shipped Model B ({SHIPPED_DATASET}, test accuracy {100 * accuracy:.2f}%); "
          f"retrain it with: {config.get('reproduce', 'advforge demo --from-scratch')}")
    return pretrained.load_model().to(device), {
        "model": model_dir, "aigan": pretrained.path("mnist5k_model_b_aigan")}


def success_text(result: Any) -> str:
    """``93.10%`` or, when no pair could be attacked (no input classified correctly), ``n/a``."""
    if result.success_rate is None:
        return "n/a (no correctly classified input to attack)"
    return f"{100 * result.success_rate:.2f}%"


def _evaluate_all(plan: list, runs: dict[str, Path], model: Any, splits: Any,
                  cfg: DemoConfig, device: torch.device, dry_run: bool, quiet: bool) -> tuple:
    from advforge.eval import evaluate, sample_grid

    results, samples = [], {}
    for spec, targets, limit in plan:
        label = None  # a learned attacker is labelled by its kind, not its run directory
        if spec in ("aigan", "advgan"):
            if spec not in runs:
                continue  # AdvGAN is trained from scratch only; nothing of it is shipped
            label, spec = spec, f"{spec}={runs[spec]}"
        n = eval_images(limit, cfg.limit, len(splits.test), dry_run)
        x, y = splits.test.x[:n].to(device), splits.test.y[:n].to(device)
        name, attack, hyper = build_attack(spec, eps=splits.default_eps, device=device)
        name = label or name
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        result = evaluate(attack, model, x, y, targets=targets, generator=gen,
                          progress=make_progress(quiet), attack_name=name, hyper=hyper)
        results.append(result)
        grid_targets = None if targets == "all" else [targets]
        samples[name] = sample_grid(attack, model, x, y, splits.num_classes,
                                    targets=grid_targets)
        print(f"{name} (targets={targets}, {n} images): success {success_text(result)} "
              f"in {result.seconds:.1f}s", flush=True)
    return results, samples


def cmd_demo(cfg: DemoConfig, device: torch.device, *, dry_run: bool, quiet: bool) -> int:
    from advforge import data as datasets
    from advforge.eval import markdown_table, write_report
    from advforge.utils.paths import check_output_dir

    start = time.perf_counter()
    from_scratch = cfg.from_scratch or cfg.retrain or dry_run
    if not from_scratch and cfg.dataset != SHIPPED_DATASET:
        raise InputError(f"the shipped weights are for {SHIPPED_DATASET}; add --from-scratch "
                         f"to train on {cfg.dataset}")
    out = check_output_dir(cfg.out or DEFAULT_OUT[dry_run])
    splits = (datasets.load("synthetic", **DRY_RUN_DATA) if dry_run
              else datasets.load(cfg.dataset, cfg.data_dir))
    if from_scratch:
        model, model_dir = _train_classifier(cfg, out, splits, device, dry_run, quiet)
        runs = {kind: _train_attacker(kind, cfg, out, model, model_dir, splits, dry_run, quiet)
                for kind in ("aigan", "advgan")}
        runs["model"] = model_dir
    else:
        model, runs = _shipped(device)
    results, samples = _evaluate_all(DRY_RUN_EVAL if dry_run else DEMO_EVAL, runs, model,
                                     splits, cfg, device, dry_run, quiet)
    print(markdown_table(results))
    shipped = {"model": "mnist5k_model_b", "aigan": "mnist5k_model_b_aigan"}
    meta = _meta(cfg, splits, device, {
        k: (str(v) if from_scratch else f"advforge.pretrained {shipped[k]} ({v})")
        for k, v in runs.items()})
    paths = write_report(out / "report", results, meta, samples=samples,
                         class_names=splits.class_names)
    print(f"report: {paths['html']}")
    print(f"demo finished in {time.perf_counter() - start:.0f}s")
    return 0
