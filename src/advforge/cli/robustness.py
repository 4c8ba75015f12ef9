"""``advforge robustness``: the standard attack cascade at one budget, and its report."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from advforge import attacks
from advforge.cli.commands import _meta, _prepare
from advforge.cli.configs import RobustnessConfig
from advforge.cli.options import config_to_yaml
from advforge.cli.runtime import make_progress, save_resolved_config
from advforge.cli.specs import parse_spec
from advforge.errors import InputError
from advforge.eval.robustness import (
    STANDARD,
    cascade_table,
    render_markdown,
    robust_cascade,
    standard_attacks,
)
from advforge.utils.checkpoint import atomic_write_json, atomic_write_text
from advforge.utils.paths import check_output_dir

# --dry-run: a few APGD steps and Square queries, so the pipeline runs in seconds.
DRY_RUN_HYPER = {"steps": 3, "n_target_classes": 2, "n_queries": 20}


def build_cascade(cfg: RobustnessConfig, dry_run: bool) -> list[Any]:
    """The cascade's attacks from ``--attacks`` specs (or the standard set), checked against
    ``--norm`` and ``--eps`` before any data or model is loaded."""
    specs = cfg.attacks if cfg.attacks is not None else list(STANDARD[cfg.norm])
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
    return standard_attacks(cfg.eps, cfg.norm, names, hyper)


def cmd_robustness(cfg: RobustnessConfig, device: torch.device, *, dry_run: bool,
                   quiet: bool) -> int:
    out = check_output_dir(cfg.out)
    built = build_cascade(cfg, dry_run)
    splits, model, x, y, _, warnings = _prepare(cfg, device, dry_run, out)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    result = robust_cascade(model, x, y, eps=cfg.eps, norm=cfg.norm, attacks=built,
                            batch_size=cfg.batch_size, generator=gen,
                            progress=make_progress(quiet))
    meta = _meta(cfg, splits, device, {"warnings": warnings})
    report = {**result.to_dict(), "seed": cfg.seed, "dataset": splits.name,
              "model": meta["model"], "meta": meta}
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(result, meta))
    save_resolved_config(out, config_to_yaml(cfg))
    print(cascade_table(result))
    for note in result.notes:
        print(f"note: {note}")
    print(f"report: {out / 'report.json'}, {out / 'report.md'}")
    return 0
