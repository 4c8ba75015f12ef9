"""Table VI for the package's default generator: the one ``advforge train-attacker aigan
--model RUN --dataset D`` trains with no other flag.

* its targeted success over every (test image, target != label) pair, beside targeted
  PGD-100 (C&W margin, random start, step 0.01) and PGD-20 on the same pairs;
* seconds for 1,000 targeted examples of each, timed in this process, with the same threads,
  images, targets and batch, the generator and PGD-20 in turns (:mod:`aigan_bench.cost`),
  in several fresh processes (:mod:`aigan_bench.timing_worker`), and the median over them
  of the generator's time over PGD-20's; the same for the generator under
  ``torch.compile``; the cores other processes kept busy meanwhile; the FLOPs per example
  of each, which no load changes;
* its training time (the CLI's own record);
* per-target success of the weakest targets, beside the paper configuration's generator
  (``configs/aigan_paper.yaml``) where one was trained for this setting (the ``whitebox``
  part, or the shipped generator for the shipped Model B);
* what each inference lever buys, measured alone against the float32 reference path (one
  batch, batch norm applied as it is, NCHW weights): cache-sized chunks, batch norm folded
  into the convolutions, channels-last weights, a bfloat16 autocast, ``torch.compile``; and
  the lean architecture itself (the paper configuration's U-Net on the same reference path).
  The levers are timed in turns in the same fresh processes as the generator and PGD-20
  (:mod:`aigan_bench.levers`); each speed-up is the median of the processes' own.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import advforge
from advforge import pretrained
from advforge.cli import main as advforge_main
from advforge.cli.train_attacker import resolved_attacker_config
from advforge.errors import AdvforgeError
from advforge.generative import GeneratorAttack, load_attacker
from advforge.generative.identity import weights_hash
from advforge.utils.checkpoint import read_json
from aigan_bench.cache import config_difference
from aigan_bench.context import Context, pgd_spec
from aigan_bench.cost import flops_per_example, timed_call
from aigan_bench.timing_worker import (
    attack_calls,
    measure,
    seeded_pgd,
    summary,
    timed_in_processes,
)

WEAKEST = 3  # targets listed in the before/after table
SHIPPED = ("mnist5k_model_b", "mnist5k_model_b_aigan")


def default_run(ctx: Context) -> Path:
    """Train (or resume, or reuse) the default generator with the CLI, flags only for what
    the setting fixes (model, dataset, eps, seed); its run directory."""
    run_dir = ctx.work / "default"
    argv = ["aigan", "--model", str(ctx.s.model_dir), "--dataset", ctx.s.dataset, "--eps",
            str(ctx.s.eps), "--seed", str(ctx.args.seed), "--out", str(run_dir), "--quiet",
            *ctx.args.default_flag]
    if not (run_dir / "generator.safetensors").is_file():
        resume = ["--resume"] if (run_dir / "train_state.safetensors").is_file() else []
        print(f"[{ctx.s.name}] training the default generator: advforge train-attacker "
              f"{' '.join(argv + resume)}", flush=True)
        if advforge_main(["train-attacker", *argv, *resume]) != 0:
            raise AdvforgeError(f"training the default generator into {run_dir} failed")
    record = read_json(run_dir / "config.json")
    if record.get("target_model", {}).get("weights_sha256") != ctx.model_sha256:
        raise AdvforgeError(f"{run_dir} was trained against another model than "
                            f"{ctx.s.model_dir}: delete it or use another --work")
    # a generator cached under other defaults (or flags) is not today's default generator
    changed = config_difference(record.get("training"), resolved_attacker_config(argv))
    if changed:
        raise AdvforgeError(f"{run_dir} was trained with other settings than today's default "
                            f"({changed}): delete it or use another --work")
    return run_dir


def lever_summary(records: list[dict[str, Any]], compiled: dict[str, Any] | None,
                  precision: str) -> dict[str, Any]:
    """The lever table from the timing processes' records: each lever's median seconds, and
    the median over processes of each process's own speed-up over its reference call."""
    names = records[0]["levers"]
    return {"seconds": {k: statistics.median(r["levers"][k] for r in records) for k in names},
            "speedup": {k: statistics.median(r["levers"]["reference"] / r["levers"][k]
                                             for r in records) for k in names},
            "processes": len(records), "in_turns": True, "compile": compiled,
            "served_precision": precision}


def compiled_seconds(reference: GeneratorAttack, x: torch.Tensor, y: torch.Tensor,
                     t: torch.Tensor, reps: int) -> dict[str, Any]:
    """The generator's forward alone, eager and under ``torch.compile`` (inductor), both in
    float32 on one batch; or why compiling could not run here. Compilation happens in the
    warm-up call, outside the timing."""
    g = copy.deepcopy(reference.generator).eval()
    with torch.no_grad():
        eager = timed_call(lambda: g(x, t), reps)
        try:
            fast = torch.compile(g, dynamic=False)
            start = time.perf_counter()
            fast(x, t)
            compile_seconds = time.perf_counter() - start
            compiled = timed_call(lambda: fast(x, t), reps)
        except Exception as exc:  # no compiler, or an unsupported op: say so
            return {"eager": eager, "error": f"{type(exc).__name__}: "
                                              f"{str(exc).splitlines()[0][:120]}"}
    return {"eager": eager, "compiled": compiled, "compile_seconds": compile_seconds,
            "speedup": eager / compiled}


def before(ctx: Context) -> dict[str, Any] | None:
    """The paper configuration's success on the same pairs: the kept ``whitebox`` part, or
    the shipped generator when the setting's model is the shipped Model B; else None."""
    kept = ctx.kept.get("whitebox")
    if kept is not None:
        return {"success": kept["success"], "per_target": kept["per_target"],
                "source": "whitebox part (configs/aigan_paper.yaml)"}
    shipped_model = pretrained.path(SHIPPED[0])
    if (shipped_model / "model.safetensors").is_file():
        if weights_hash(advforge.load_model(shipped_model)) == ctx.model_sha256:
            attack = load_attacker(pretrained.path(SHIPPED[1])).to(ctx.device)
            row = ctx.evaluate_all(dataclasses.replace(attack, precision="float32"),
                                   "aigan_paper")
            return {"success": row["success"], "per_target": row["per_target"],
                    "source": f"advforge.pretrained {SHIPPED[1]} (configs/aigan_paper.yaml)"}
    return None


def part_table6(ctx: Context) -> dict[str, Any]:
    """Table VI for the default generator (module docstring)."""
    eps, args = ctx.s.eps, ctx.args
    run_dir = default_run(ctx)
    cfg = read_json(run_dir / "config.json")
    attack = load_attacker(run_dir).to(ctx.device)
    rows: dict[str, Any] = {"default": ctx.evaluate_all(attack, "aigan_default")}
    steps = args.pgd_steps  # the yardstick: PGD-100 unless lowered for a smoke test
    rows["pgd100"] = ctx.kept.get("pgd100") or brief_pgd(ctx, steps, 0.01)
    rows["pgd20"] = brief_pgd(ctx, 20, 2.5 * eps / 20)
    n = min(args.timing_n, ctx.x.shape[0])
    x, y = ctx.x[:n], ctx.y[:n]
    g = torch.Generator(device=ctx.device).manual_seed(args.seed)
    t = (y + torch.randint(1, ctx.num_classes, y.shape, generator=g, device=ctx.device)) \
        % ctx.num_classes  # a random target != y for every image, the same for every attack
    compiled = not args.skip_compile  # the same generator served through torch.compile
    if args.timing_processes > 1:
        records = timed_in_processes(run_dir, ctx.s.model_dir, eps, x, y, t,
                                     processes=args.timing_processes, repeats=args.repeats,
                                     seed=args.seed, compiled=compiled, levers=True)
    else:
        records = [measure(attack, ctx.model, eps, x, y, t, args.repeats, args.seed,
                           compiled, levers=True)]
    timing = summary(records)
    timing["pgd100"] = timed_call(
        seeded_pgd(pgd_spec(eps, steps, 0.01), ctx.model, x, y, t, args.seed), 1)
    compile_record = None
    if compiled:
        compile_record = {"first_call_seconds": statistics.median(
            r["first_call_seconds"] for r in records),
            "failed": next((r["failed"] for r in records if r["failed"]), None)}
    k = min(64, n)  # a call's FLOPs grow with its examples alone: a slice tells them
    flops = {name: flops_per_example(fn, k) for name, fn in attack_calls(
        attack, ctx.model, eps, x[:k], y[:k], t[:k], args.seed).items()}
    timing["n"] = n
    # the part's own: the file's top-level count is that of whichever run wrote it last
    timing["threads"] = torch.get_num_threads()
    metrics = cfg.get("metrics", {})
    return {
        **rows, "timing": timing, "flops_per_example": flops, "compiled": compile_record,
        "train_seconds": metrics.get("train_seconds"),
        "train_threads": metrics.get("threads"),
        "train_images": metrics.get("train_images"),
        # beside the held-out success: how far G fits its own training pairs (over- or
        # under-fitting decides whether more epochs or more images help)
        "train_success_last_epoch": (metrics.get("history") or [{}])[-1].get("train_success"),
        "config": cfg.get("training"), "generator": cfg.get("generator"),
        "inference": cfg.get("inference"), "run_dir": str(run_dir),
        "extra_flags": list(args.default_flag),
        "before": before(ctx),
        "levers": lever_summary(records, None if args.skip_compile else compiled_seconds(
            attack, x, y, t, args.repeats), attack.precision),
    }


def brief_pgd(ctx: Context, steps: int, step_size: float) -> dict[str, Any]:
    """Targeted PGD (C&W margin, random start) over every pair of the eval images."""
    row = ctx.evaluate_all(pgd_spec(ctx.s.eps, steps, step_size), f"pgd{steps}")
    return {**row, "steps": steps, "step_size": step_size}
