"""``advforge robustness``: the standard attack cascade at one budget, the robust-accuracy
curve against eps, the gradient-masking audit, and their report."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from advforge import attacks
from advforge.cli.commands import _meta, _prepare
from advforge.cli.configs import RobustnessConfig
from advforge.cli.options import config_to_yaml
from advforge.cli.runtime import check_model_fits, make_progress, save_resolved_config
from advforge.cli.specs import parse_spec
from advforge.errors import InputError
from advforge.eval.audit import AuditConfig, audit_lines, audit_summary, masking_audit
from advforge.eval.curve import check_curve_eps, default_curve, robust_curve
from advforge.eval.plots import robust_curve_png
from advforge.eval.robustness import (
    STANDARD,
    cascade_table,
    render_markdown,
    robust_cascade,
    standard_attacks,
)
from advforge.models import load_model
from advforge.utils.checkpoint import atomic_write_bytes, atomic_write_json, atomic_write_text
from advforge.utils.paths import check_output_dir

# --dry-run: a few APGD steps and Square queries, so the pipeline runs in seconds.
DRY_RUN_HYPER = {"steps": 3, "n_target_classes": 2, "n_queries": 20}
DRY_RUN_AUDIT = AuditConfig(pgd_steps=4, pgd_restarts=2, short_steps=2, noise_draws=4,
                            square_queries=20)
PLOT = "curve.png"


def parse_cascade(specs: list[str], dry_run: bool) -> tuple[list[str], dict[str, dict]]:
    """Registry names and per-name hyperparameters from ``--attacks``-style specs (shrunk by
    ``--dry-run``); learned attackers are refused."""
    names, hyper = [], {}
    for spec in specs:
        name, run_dir, given = parse_spec(spec)
        if run_dir is not None:
            raise InputError(f"{spec}: learned attackers are not part of the cascade; use "
                             "registered attacks such as apgd_ce,apgd_t,square")
        small = {}
        if dry_run:
            fields = {f.name for f in dataclasses.fields(attacks.ATTACKS.get(name))}
            small = {k: v for k, v in DRY_RUN_HYPER.items() if k in fields}
        names.append(name)
        hyper[name] = {**small, **given}
    return names, hyper


def build_cascade(cfg: RobustnessConfig, dry_run: bool) -> list[Any]:
    """The cascade's attacks from ``--attacks`` specs (or the standard set), checked against
    ``--norm`` and ``--eps`` before any data or model is loaded."""
    specs = cfg.attacks if cfg.attacks is not None else list(STANDARD[cfg.norm])
    names, hyper = parse_cascade(specs, dry_run)
    return standard_attacks(cfg.eps, cfg.norm, names, hyper)


def curve_plan(cfg: RobustnessConfig, dry_run: bool) -> tuple[list[str], dict[str, dict]]:
    """The curve's attacks (``--curve-attacks``, else the cascade's), each built at ``--eps``
    here so a bad name fails before any work."""
    specs = cfg.curve_attacks or cfg.attacks or list(STANDARD[cfg.norm])
    names, hyper = parse_cascade(specs, dry_run)
    standard_attacks(cfg.eps, cfg.norm, names, hyper)
    return names, hyper


def cmd_robustness(cfg: RobustnessConfig, device: torch.device, *, dry_run: bool,
                   quiet: bool) -> int:
    out = check_output_dir(cfg.out)
    built = build_cascade(cfg, dry_run)
    plan = curve_plan(cfg, dry_run)
    surrogate = load_model(cfg.surrogate).to(device) if cfg.surrogate else None
    splits, model, x, y, _, warnings = _prepare(cfg, device, dry_run, out)
    budgets = _budgets(cfg, x)
    if surrogate is not None:
        check_model_fits(surrogate, splits, cfg.surrogate)
    progress = make_progress(quiet)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    result = robust_cascade(model, x, y, eps=cfg.eps, norm=cfg.norm, attacks=built,
                            batch_size=cfg.batch_size, generator=gen, progress=progress)
    curve = None
    if budgets:
        curve = robust_curve(model, x, y, budgets, norm=cfg.norm, attacks=plan[0],
                             hyper=plan[1], known={float(cfg.eps): result},
                             batch_size=cfg.batch_size, generator=gen, progress=progress)
    checks = None
    if cfg.audit:
        checks = masking_audit(model, x, y, eps=cfg.eps, norm=cfg.norm, cascade_result=result,
                               surrogate=surrogate,
                               config=DRY_RUN_AUDIT if dry_run else AuditConfig(),
                               batch_size=cfg.batch_size, seed=cfg.seed, progress=progress)
    meta = _meta(cfg, splits, device, {"warnings": warnings})
    _write(out, cfg, result, curve, checks, meta)
    print(cascade_table(result))
    for note in result.notes:
        print(f"note: {note}")
    if checks is not None:
        print(audit_summary(checks))
        for line in audit_lines([c for c in checks if c.passed is False]):
            print(line.replace("**FLAG**", "FLAG"))
    print(f"report: {out / 'report.json'}, {out / 'report.md'}")
    return 0


def _budgets(cfg: RobustnessConfig, x: torch.Tensor) -> list[float]:
    """The curve's budgets: ``--curve`` plus ``--eps`` itself (its point reuses the cascade),
    or the default capped at the norm's largest; [] for ``--curve none``."""
    given, top = cfg.curve_eps(), 1.0 if cfg.norm == "linf" else x[0].numel() ** 0.5
    if given == []:
        return []
    budgets = default_curve(cfg.eps, top) if given is None else [*given, cfg.eps]
    return check_curve_eps(budgets, cfg.norm, top)


def _write(out: Path, cfg: RobustnessConfig, result: Any, curve: list | None,
           checks: list | None, meta: dict) -> None:
    """report.json, curve.png (when there is a curve), report.md and the resolved config."""
    report = {**result.to_dict(), "seed": cfg.seed, "dataset": meta["dataset"],
              "model": meta["model"],
              "curve": [dataclasses.asdict(p) for p in curve] if curve else None,
              "curve_plot": PLOT if curve else None,
              "audit": [c.to_dict() for c in checks] if checks is not None else None,
              "audit_summary": audit_summary(checks) if checks is not None else None,
              "meta": meta}
    out.mkdir(parents=True, exist_ok=True)
    if curve:
        atomic_write_bytes(out / PLOT, robust_curve_png(curve, norm=cfg.norm, eps=cfg.eps))
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(result, meta, curve=curve,
                                                         audit=checks,
                                                         plot=PLOT if curve else None))
    save_resolved_config(out, config_to_yaml(cfg))
