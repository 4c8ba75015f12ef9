"""``advforge demo``: the main job on the embedded default (``mnist5k``).

Trains Model B (or reuses it from ``<out>/model_b``), attacks the 1,000 test images with FGSM,
PGD-40 and C&W L2 (untargeted) and targeted PGD (every target != true class, the AI-GAN
protocol), prints the summary table and writes the report to ``<out>/report``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from advforge.cli.commands import _meta
from advforge.cli.configs import DemoConfig
from advforge.cli.runtime import DRY_RUN_DATA, make_progress
from advforge.cli.specs import build_attack

# Model B's recipe on mnist5k (configs/train_model_b_mnist5k.yaml; 98.0% test accuracy).
DEMO_TRAIN = {"arch": "model_b", "epochs": 30, "batch_size": 64, "optimizer": "adam", "lr": 1e-3,
              "lr_milestones": (20,), "lr_gamma": 0.1, "augment": "shift"}

# The attacks the demo runs, with the paper's budget conventions (eps filled from the dataset).
DEMO_ATTACKS = [
    ("fgsm", None),
    ("pgd:steps=40:step_size=0.01", None),
    ("cw_l2", None),
    ("pgd:steps=40:step_size=0.01:loss=cw", "all"),
]
DRY_RUN_ATTACKS = [("fgsm", None), ("pgd:steps=3", None), ("pgd:steps=3:loss=cw", "all")]


def _train_or_reuse(cfg: DemoConfig, splits, device: torch.device, dry_run: bool, quiet: bool):
    from advforge.models import load_model
    from advforge.training import TrainConfig, fit

    run_dir = Path(cfg.out) / "model_b"
    if (run_dir / "model.safetensors").is_file() and not cfg.retrain:
        print(f"reusing {run_dir}")
        return load_model(run_dir).to(device), run_dir
    if dry_run:
        train_cfg = TrainConfig(arch="model_b", dataset="synthetic", epochs=1, seed=cfg.seed,
                                out=str(run_dir))
    else:
        train_cfg = TrainConfig(**DEMO_TRAIN, dataset=cfg.dataset, data_dir=cfg.data_dir,
                                seed=cfg.seed, out=str(run_dir))
    start = time.perf_counter()
    metrics = fit(train_cfg, splits, device=device, progress=make_progress(quiet))
    print(f"trained Model B: test accuracy {100 * metrics['test_accuracy']:.2f}% "
          f"in {time.perf_counter() - start:.0f}s -> {run_dir}")
    return load_model(run_dir).to(device), run_dir


def cmd_demo(cfg: DemoConfig, device: torch.device, *, dry_run: bool, quiet: bool) -> int:
    from advforge import data as datasets
    from advforge.eval import evaluate, markdown_table, sample_grid, write_report

    start = time.perf_counter()
    splits = (datasets.load("synthetic", **DRY_RUN_DATA) if dry_run
              else datasets.load(cfg.dataset, cfg.data_dir))
    model, run_dir = _train_or_reuse(cfg, splits, device, dry_run, quiet)
    n = cfg.limit or (64 if dry_run else len(splits.test))
    x, y = splits.test.x[:n].to(device), splits.test.y[:n].to(device)
    results, samples = [], {}
    for spec, targets in (DRY_RUN_ATTACKS if dry_run else DEMO_ATTACKS):
        name, attack, hyper = build_attack(spec, eps=splits.default_eps)
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        result = evaluate(attack, model, x, y, targets=targets, generator=gen,
                          progress=make_progress(quiet), attack_name=name, hyper=hyper)
        results.append(result)
        if result.targeted:
            samples[name] = sample_grid(attack, model, x, y, splits.num_classes)
        print(f"{name}{' (targets=all)' if targets else ''}: success "
              f"{100 * result.success_rate:.2f}% in {result.seconds:.1f}s", flush=True)
    print(markdown_table(results))
    meta = _meta(cfg, splits, device, {"model": str(run_dir)})
    paths = write_report(Path(cfg.out) / "report", results, meta, samples=samples,
                         class_names=splits.class_names)
    print(f"report: {paths['html']}")
    print(f"demo finished in {time.perf_counter() - start:.0f}s")
    return 0
