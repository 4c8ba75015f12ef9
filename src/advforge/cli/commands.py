"""The subcommands. Each takes a validated config and returns an exit code; only here (and in
__init__.py) does the package print."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from advforge import __version__
from advforge import data as datasets
from advforge.cli.configs import AttackConfig, DataOptions, EvalConfig, parse_target_rule
from advforge.cli.options import config_to_yaml
from advforge.cli.runtime import (
    check_dataset_matches,
    load_model_and_splits,
    load_splits,
    make_progress,
    resolve_targets,
    run_config,
    save_resolved_config,
    take,
    warn,
)
from advforge.cli.specs import build_attack, check_targeting, parse_spec
from advforge.errors import InputError
from advforge.eval.tables import pct
from advforge.utils.checkpoint import save_safetensors
from advforge.utils.paths import check_output_dir, check_output_file


def cmd_datasets() -> int:
    rows = datasets.describe()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        status = "found" if r.get("found") else "not found"
        print(f"{r['name']:<{width}}  {status:<9}  {r.get('location', '')}")
        print(f"{'':<{width}}  {r.get('description', '')}")
    return 0


def _prepare(cfg: DataOptions, device: torch.device, dry_run: bool, out: Path | None) -> tuple:
    """Dataset, model and the (x, y) tensors to attack, all checked before anything runs.

    Returns:
        ``(splits, model, x, y, eps, warnings)``; ``warnings`` lists the one-line dataset
        mismatch warnings already printed to stderr (for the report).
    """
    splits, model, warnings = load_model_and_splits(cfg, device, dry_run, out)
    x, y = take(getattr(splits, cfg.split), 64 if dry_run and cfg.limit is None else cfg.limit,
                device)
    eps = cfg.eps if cfg.eps is not None else splits.default_eps
    return splits, model, x, y, eps, warnings


def _build_attacks(specs: list[str], rule: str | int, splits: Any, eps: float,
                   device: torch.device, *, compiled: bool = False
                   ) -> tuple[list[tuple[str, Any, dict]], list[str]]:
    """Build every attack and check it against the target rule and, for a learned attacker,
    the dataset its run recorded: a bad spec fails before any work is done. ``compiled``
    serves the learned attackers through ``torch.compile`` (``--compiled``); it is refused
    when no spec names one, since it would then change nothing.

    Returns:
        The built ``(name, attack, hyper)`` triples and the dataset warnings (printed).
    """
    built, warnings = [], []
    if compiled and all(parse_spec(spec)[1] is None for spec in specs):
        raise InputError("--compiled applies to learned attackers (KIND=RUN_DIR) only, and no "
                         "attack given is one")
    for spec in specs:
        name, run_dir, _ = parse_spec(spec)
        if run_dir is not None:
            message = check_dataset_matches(run_config(run_dir), splits,
                                            f"attacker {run_dir}")
            warnings += [message] if message else []
        built.append(build_attack(spec, eps=eps, device=device, compiled=compiled))
        check_targeting(built[-1][0], built[-1][1], rule)
    for message in warnings:
        warn(message)
    return built, warnings


def _meta(cfg: Any, splits: Any, device: torch.device, extra: dict | None = None) -> dict:
    return {
        "dataset": splits.name,
        "model": getattr(cfg, "model", None) or "(dry-run model)",
        "seed": cfg.seed,
        "device": str(device),
        "advforge_version": __version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }


def _dry_run_spec(spec: str) -> str:
    """Shrink iterative attacks for --dry-run so the whole pipeline runs in seconds."""
    if "=" in spec.split(":", 1)[0]:
        return spec
    name = spec.split(":", 1)[0]
    small = {"pgd": "steps=3", "pgd_l2": "steps=3", "cw_l2": "steps=10:binary_search_steps=2",
             "cw_linf": "steps=10", "lbfgs": "max_iter=5:search_steps=2",
             "apgd_ce": "steps=5", "apgd_t": "steps=5:n_target_classes=2",
             "apgd_ce_l2": "steps=5", "apgd_t_l2": "steps=5:n_target_classes=2",
             "square": "n_queries=20", "square_l2": "n_queries=20"}
    return spec + (":" + small[name] if name in small and ":" not in spec else "")


def cmd_attack(cfg: AttackConfig, device: torch.device, *, dry_run: bool, quiet: bool) -> int:
    from advforge.eval import evaluate, markdown_table, write_report
    from advforge.eval.requirements import describe

    out = check_output_dir(cfg.out) if cfg.out else None
    if cfg.save is not None:
        check_output_file(cfg.save, ".safetensors", flag="--save")
    splits, model, x, y, eps, warnings = _prepare(cfg, device, dry_run, out)
    spec = _dry_run_spec(cfg.attack) if dry_run else cfg.attack
    rule = parse_target_rule(cfg.targets)
    [(name, attack, hyper)], more = _build_attacks([spec], rule, splits, eps, device,
                                                   compiled=cfg.compiled)
    warnings += more
    targets = resolve_targets(rule, y, splits.num_classes, cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    result = evaluate(attack, model, x, y, targets=targets, batch_size=cfg.batch_size,
                      generator=gen, keep_adversarial=cfg.save is not None,
                      progress=make_progress(quiet), attack_name=name, hyper=hyper)
    print(markdown_table([result]))
    if result.requirements is not None:
        print(f"requirements met, {describe(result.requirements)}")
    if cfg.save is not None:
        _save_adversarial(Path(cfg.save), result, name, hyper, cfg, splits, y)
        print(f"saved {result.n_evaluated} adversarial examples to {cfg.save}")
    if out is not None:
        write_report(out, [result], _meta(cfg, splits, device, {"warnings": warnings}),
                     class_names=splits.class_names)
        save_resolved_config(out, config_to_yaml(cfg))
        print(f"report written to {out}/report.md")
    return 0


def _save_adversarial(path: Path, result: Any, name: str, hyper: dict, cfg: Any, splits: Any,
                      y: torch.Tensor) -> None:
    """Write x_adv with the true label, target (-1 if untargeted) and source index of each."""
    index = result.source_index.to(torch.long)
    target = result.target if result.target is not None else torch.full_like(index, -1)
    tensors = {"x_adv": result.x_adv, "y": y.cpu()[index], "target": target.to(torch.long),
               "index": index}
    meta = {"attack": name, "hyper": json.dumps(hyper, default=str), "dataset": splits.name,
            "split": cfg.split, "model": str(cfg.model), "seed": str(cfg.seed),
            "advforge_version": __version__, "note": "target is -1 for untargeted attacks"}
    save_safetensors(path, tensors, metadata=meta)


def cmd_evaluate(cfg: EvalConfig, device: torch.device, *, dry_run: bool, quiet: bool) -> int:
    from advforge.eval import evaluate, markdown_table, sample_grid, write_report

    out = check_output_dir(cfg.out)
    splits, model, x, y, eps, warnings = _prepare(cfg, device, dry_run, out)
    specs = [_dry_run_spec(s) if dry_run else s for s in cfg.attacks]
    rule = parse_target_rule(cfg.targets)
    built, more = _build_attacks(specs, rule, splits, eps, device, compiled=cfg.compiled)
    warnings += more
    targets = resolve_targets(rule, y, splits.num_classes, cfg.seed)
    results, samples = [], {}
    for name, attack, hyper in built:
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        result = evaluate(attack, model, x, y, targets=targets, batch_size=cfg.batch_size,
                          generator=gen, progress=make_progress(quiet), attack_name=name,
                          hyper=hyper)
        results.append(result)
        if cfg.samples and result.targeted:
            # a single-target attacker (AdvGAN, AE4DNN, ATN) fills one row: its own class
            fixed = getattr(attack, "fixed_target", None)
            samples[name] = sample_grid(attack, model, x, y, splits.num_classes,
                                        targets=None if fixed is None else [fixed])
        if not quiet:
            print(f"{name}: success {pct(result.success_rate)} of {result.n_evaluated} "
                  f"({result.seconds:.2f}s)", flush=True)
    print(markdown_table(results))
    meta = _meta(cfg, splits, device, {"warnings": warnings})
    paths = write_report(out, results, meta, samples=samples or None,
                         class_names=splits.class_names)
    save_resolved_config(out, config_to_yaml(cfg))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_train_classifier(cfg: Any, device: torch.device, *, dry_run: bool, quiet: bool) -> int:
    from advforge.training import fit

    check_output_dir(cfg.out)
    splits = load_splits(cfg.dataset, cfg.data_dir, dry_run)
    metrics = fit(cfg, splits, device=device, progress=make_progress(quiet))
    save_resolved_config(Path(cfg.out), config_to_yaml(cfg))
    acc = metrics.get("test_accuracy")
    secs = metrics.get("train_seconds", metrics.get("seconds"))
    print(f"{cfg.arch} on {splits.name}: test accuracy {100 * acc:.2f}%"
          + (f", {secs:.1f}s training" if secs is not None else "") + f" -> {cfg.out}")
    return 0
