"""The parts of the AI-GAN tables (Bai et al.): each returns the JSON row of one setting.

* ``whitebox`` (Table II), ``pgd100`` / ``pgd100_ce`` (the PGD-100 yardsticks), ``advgan``
  (Table III), ``timing`` (Table VI), ``blackbox`` (Table IV, with transfer baselines crafted
  on the distilled local model) and ``ablation`` (no SimCLR, no attacker).
"""

from __future__ import annotations

from typing import Any

import torch

from advforge.attacks import create as create_attack
from advforge.generative import load_attacker
from advforge.generative.aigan import LOCAL_MODEL_DIR
from advforge.models import load_model
from aigan_bench.cache import trained_with
from aigan_bench.context import Context, pgd_spec
from aigan_bench.cost import timed_call
from aigan_bench.table6 import part_table6


def part_whitebox(ctx: Context) -> dict[str, Any]:
    """Table II: the white-box AI-GAN over every (test image, target) pair."""
    run_dir, metrics = ctx.aigan("aigan")
    row = ctx.evaluate_all(load_attacker(run_dir).to(ctx.device), "aigan")
    row["train_seconds"] = metrics["train_seconds"]
    row["config"] = trained_with(run_dir)
    return row


def part_pgd100(ctx: Context, loss: str = "cw") -> dict[str, Any]:
    """Targeted PGD-100 (C&W margin, or ``loss``) on the same pairs: the yardstick."""
    steps = ctx.args.pgd_steps
    name = f"pgd{steps}" + ("" if loss == "cw" else f"_{loss}")
    return {**ctx.evaluate_all(pgd_spec(ctx.s.eps, steps, 0.01, loss), name),
            "steps": steps, "step_size": 0.01, "loss": loss, "random_start": True}


def part_pgd100_ce(ctx: Context) -> dict[str, Any]:
    """Targeted PGD-100 with the cross-entropy loss."""
    return part_pgd100(ctx, loss="ce")


def part_advgan(ctx: Context) -> dict[str, Any]:
    """Table III: AdvGAN, one generator per target, on the same pairs."""
    run_dir, metrics = ctx.advgan()
    row = ctx.evaluate_all(load_attacker(run_dir).to(ctx.device), "advgan")
    row["train_seconds"] = metrics["train_seconds"]
    row["per_target_train_seconds"] = metrics["per_target_seconds"]
    row["config"] = trained_with(run_dir)
    return row


def _timed(attack: Any, model: Any, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor,
           repeats: int, seed: int) -> tuple[float, torch.Tensor]:
    """Median wall time of ``attack`` on the whole batch (after one warm-up call), every call
    seeded alike; and its examples."""
    out: list[torch.Tensor] = []

    def call() -> None:
        g = torch.Generator(device=x.device).manual_seed(seed)
        out[:] = [attack(model, x, y, target=t, generator=g)]

    return timed_call(call, repeats), out[0]


def part_timing(ctx: Context) -> dict[str, Any]:
    """Table VI: seconds for 1,000 targeted examples, every attack on the same (x, t)."""
    args, eps = ctx.args, ctx.s.eps
    n = min(args.timing_n, ctx.x.shape[0])
    x, y = ctx.x[:n], ctx.y[:n]
    g = torch.Generator(device=ctx.device).manual_seed(args.seed)
    t = (y + torch.randint(1, ctx.num_classes, y.shape, generator=g, device=ctx.device)) \
        % ctx.num_classes  # a random target != y for every image
    with torch.no_grad():
        correct = ctx.model(x).argmax(1) == y
    aigan_dir = ctx.aigan("aigan")[0]
    attacks = {
        "fgsm": (create_attack("fgsm", eps=eps), n),
        "pgd20": (pgd_spec(eps, 20, 2.5 * eps / 20), n),
        "cw_l2": (create_attack("cw_l2", **_cw_steps(args)), min(args.cw_n, n)),
        "advgan": (load_attacker(ctx.advgan()[0]).to(ctx.device), n),
        "aigan": (load_attacker(aigan_dir).to(ctx.device), n),
    }
    rows = {}
    for name, (attack, m) in attacks.items():
        reps = 1 if name == "cw_l2" else args.repeats
        seconds, x_adv = _timed(attack, ctx.model, x[:m], y[:m], t[:m], reps, args.seed)
        with torch.no_grad():
            hit = (ctx.model(x_adv).argmax(1) == t[:m]) & correct[:m]
        rows[name] = {"seconds": seconds * n / m, "measured_on": m, "extrapolated": m < n,
                      "success": float(hit.sum() / correct[:m].sum().clamp_min(1))}
    rows["aigan_over_pgd20"] = rows["aigan"]["seconds"] / rows["pgd20"]["seconds"]
    rows["aigan"]["config"] = trained_with(aigan_dir)
    rows["cw_l2"].update(_cw_steps(args))  # a lowered --cw-steps stays on its figure
    rows["n"] = n
    return rows


def part_blackbox(ctx: Context) -> dict[str, Any]:
    """Table IV: AI-GAN trained against the query-only target, where its success is lost,
    and the baselines crafted on its distilled local model."""
    run_dir, metrics = ctx.aigan("aigan_blackbox", black_box=True)
    attacker = load_attacker(run_dir).to(ctx.device)
    row = ctx.evaluate_all(attacker, "aigan_blackbox")
    row.update(train_seconds=metrics["train_seconds"], target_queries=metrics["target_queries"],
               config=trained_with(run_dir))
    if "select" in metrics.get("phases", {}):  # local_arch=auto: which substitute, and why
        row["local_selection"] = metrics["phases"]["select"]
    local = load_model(run_dir / LOCAL_MODEL_DIR).to(ctx.device).eval()
    row.update(_success_split(ctx, attacker, local))
    row.update(_transfer_baselines(ctx, local))
    return row


def _success_split(ctx: Context, attacker: Any, local: torch.nn.Module) -> dict[str, Any]:
    """Where black-box success is lost: the generator's success on the distilled f_d (what it
    was trained against) and the share of those hits that carry over to the target, over the
    pairs both models classify correctly before the attack."""
    split = ctx.evaluate_all(attacker, "aigan_blackbox", model=local)
    out: dict[str, Any] = {"split": {
        "pairs": split["pairs"], "success_on_local": split["success_on_local"],
        "success_on_target": split["success"],
        "target_hit_given_local_hit": split["target_hit_given_local_hit"]}}
    # Is f_d harder to fool than the target? The white-box generator (trained on the target
    # itself, when the whitebox part has cached one) judged on both: distillation on G's
    # examples labelled by the target is adversarial training of f_d; how much of f_d's
    # resistance that explains, benchmarks/substitute_transfer.py tells by comparing with a
    # model of f_d's architecture trained on labels.
    whitebox_dir = ctx.work / "aigan"
    if (whitebox_dir / "config.json").is_file():
        ctx.cached(whitebox_dir)
        cross = ctx.evaluate_all(load_attacker(whitebox_dir).to(ctx.device), "aigan",
                                 model=local)
        out["whitebox_generator_on_local"] = {
            "pairs": cross["pairs"], "success_on_local": cross["success_on_local"],
            "success_on_target": cross["success"]}
    return out


def _cw_steps(args: Any, linf: bool = False) -> dict[str, int]:
    """``--cw-steps`` as C&W keyword arguments (none: the attacks' defaults). L-inf C&W also
    caps its total iterations, kept at its default's five rounds of ``steps``."""
    if args.cw_steps is None:
        return {}
    return {"steps": args.cw_steps, **({"max_iterations": 5 * args.cw_steps} if linf else {})}


def _transfer_baselines(ctx: Context, local: torch.nn.Module) -> dict[str, Any]:
    """FGSM, PGD (both losses) and C&W crafted on f_d and judged on the target, targeted and
    untargeted, on the first --transfer-n test images."""
    eps = ctx.s.eps
    # "pgd" is the white-box tables' PGD (C&W margin): it stops at the local model's decision
    # boundary, so it barely transfers. "pgd_ce" (cross-entropy, the loss of common PGD
    # implementations) keeps pushing past it, which is what transfer needs.
    transfer = {"fgsm": create_attack("fgsm", eps=eps),
                "pgd": pgd_spec(eps, ctx.args.pgd_steps, 0.01),
                "pgd_ce": create_attack("pgd", eps=eps, steps=ctx.args.pgd_steps,
                                        step_size=0.01, loss="ce", random_start=True),
                "cw": create_attack("cw_linf", eps=eps, **_cw_steps(ctx.args, linf=True))}
    n = ctx.args.transfer_n
    return {
        "transfer_from_local": {
            name: ctx.evaluate_all(attack, name, model=local, limit=n)
            for name, attack in transfer.items()},
        # The untargeted versions separate what asking for one class costs from what the
        # loss costs: margin-loss attacks (PGD with C&W loss, C&W) stop at f_d's boundary
        # either way.
        "transfer_untargeted_from_local": {
            name: ctx.evaluate_all(attack, name, model=local, limit=n, targeted=False)
            for name, attack in transfer.items()},
        "transfer_images": min(n, int(ctx.x.shape[0]))}


def part_ablation(ctx: Context) -> dict[str, Any]:
    """AI-GAN without SimCLR pre-training and without the attacker A in D."""
    rows = {}
    for variant, change in (("no_pretrain", {"pretrain": False}),
                            ("no_attacker", {"attacker": False})):
        run_dir, metrics = ctx.aigan(f"aigan_{variant}", **change)
        rows[variant] = ctx.evaluate_all(load_attacker(run_dir).to(ctx.device), variant)
        rows[variant]["train_seconds"] = metrics["train_seconds"]
        rows[variant]["config"] = trained_with(run_dir)
    return rows


PART_FNS = {"whitebox": part_whitebox, "pgd100": part_pgd100, "pgd100_ce": part_pgd100_ce,
            "advgan": part_advgan,
            "timing": part_timing, "blackbox": part_blackbox, "ablation": part_ablation,
            "table6": part_table6}
