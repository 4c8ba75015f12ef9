"""The measuring half of ``aigan_defended.py``: the attacks of AI-GAN's Table V, examples
crafted once on the vanilla model (cached), and one cell per defended model.

Every attack is run white-box on the vanilla model only (the adversary does not know the
defense, Bai et al. Sec. V-E); the same examples are then judged on each defended model with
:func:`advforge.eval.transfer.transfer_success`, through :class:`Replay`, so that crafting
(C&W L2 takes hours) is paid once per attack, not once per defense.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from advforge.attacks import create as create_attack
from advforge.errors import AdvforgeError
from advforge.eval import evaluate
from advforge.eval.transfer import transfer_success
from advforge.generative import load_attacker
from advforge.utils.checkpoint import load_safetensors, save_safetensors

# Table V's rows (and an extra PGD with the cross-entropy loss) with their labels.
ATTACKS = {"fgsm": "FGSM", "cw_l2": "C&W L2", "pgd": "PGD-100 (C&W loss)",
           "pgd_ce": "PGD-100 (cross-entropy)", "advgan": "AdvGAN", "aigan": "AI-GAN"}
LEARNED = ("advgan", "aigan")
# Tiny settings of --smoke: the pipeline runs, the figures mean nothing.
SMOKE_HYPER = {"pgd": {"steps": 3}, "pgd_ce": {"steps": 3},
               "cw_l2": {"steps": 3, "binary_search_steps": 1}}


def attack_hyper(name: str, eps: float, pgd_steps: int, smoke: bool) -> dict[str, Any]:
    """The settings of the AI-GAN tables (benchmarks/aigan_bench): FGSM at eps; targeted PGD
    with a random start, step 0.01 and the C&W margin loss (their PGD-100 yardstick) or the
    cross-entropy; C&W L2 with the package defaults (their timing table)."""
    if name == "fgsm":
        hyper: dict[str, Any] = {"eps": eps}
    elif name in ("pgd", "pgd_ce"):
        hyper = {"eps": eps, "steps": pgd_steps, "step_size": 0.01, "random_start": True,
                 "loss": "cw" if name == "pgd" else "ce"}
    elif name == "cw_l2":
        hyper = {}
    else:
        return {}
    return {**hyper, **(SMOKE_HYPER.get(name, {}) if smoke else {})}


def build_attack(name: str, hyper: dict[str, Any], run_dir: Path | None, device: Any) -> Any:
    """The attack object: a registered attack, or a trained AdvGAN / AI-GAN run directory."""
    if name in LEARNED:
        return load_attacker(run_dir).to(device)
    return create_attack("pgd" if name == "pgd_ce" else name, **hyper)


class Replay:
    """An attack that hands back examples crafted earlier, in the order ``evaluate`` asks for
    its (input, target) pairs; a call whose inputs or targets differ from the recorded ones
    raises, so a replay can never be judged against the wrong pairs."""

    takes_target = True

    def __init__(self, name: str, x_source: torch.Tensor, target: torch.Tensor,
                 x_adv: torch.Tensor) -> None:
        self.name, self.x_source, self.target, self.x_adv = name, x_source, target, x_adv
        self.position = 0

    def __call__(self, model: Any, x: torch.Tensor, y: torch.Tensor, *,
                 target: torch.Tensor | None = None, generator: Any = None) -> torch.Tensor:
        start, end = self.position, self.position + x.shape[0]
        if (target is None or end > self.target.shape[0]
                or not torch.equal(target.cpu(), self.target[start:end])
                or not torch.equal(x.cpu(), self.x_source[start:end])):
            raise AdvforgeError(f"replayed {self.name} examples do not match the pairs asked "
                                "for: the vanilla model or the test images changed")
        self.position = end
        return self.x_adv[start:end].to(x.device)


def craft(name: str, attack: Any, vanilla: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
          seed: int) -> dict[str, Any]:
    """Targeted examples for every (image, target != label) pair the vanilla model gets
    right, crafted white-box on it; tensors on the CPU plus the white-box figures."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    result = evaluate(attack, vanilla, x, y, targets="all", generator=gen, attack_name=name,
                      keep_adversarial=True)
    return {"source_index": result.source_index.cpu(), "target": result.target.cpu(),
            "x_adv": result.x_adv.cpu(),
            "info": {"images": int(x.shape[0]), "pairs": result.n_evaluated,
                     "whitebox_success": result.success_rate,
                     "seconds": round(result.seconds, 2)}}


def cached_craft(path: Path, identity: dict[str, Any], make: Any,
                 fresh: bool = False) -> dict[str, Any]:
    """The crafted examples in ``path`` when they were made with ``identity`` (vanilla
    weights, attack settings, images), else ``make()`` saved there."""
    key = json.dumps(identity, sort_keys=True)
    if path.is_file() and not fresh:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("identity") == key:
            return {**load_safetensors(path), "info": json.loads(meta["info"])}
    crafted = make()
    tensors = {k: v for k, v in crafted.items() if k != "info"}
    save_safetensors(path, tensors, metadata={"identity": key,
                                              "info": json.dumps(crafted["info"])})
    return crafted


def judge(name: str, crafted: dict[str, Any], vanilla: torch.nn.Module,
          defended: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """One Table V cell: targeted success on ``defended`` over the pairs both models
    classify correctly (``transfer_success``), the examples replayed from ``crafted``."""
    n = crafted["info"]["images"]
    x, y = x[:n], y[:n]
    replay = Replay(name, x[crafted["source_index"].to(x.device)].cpu(), crafted["target"],
                    crafted["x_adv"])
    start = time.perf_counter()
    out = transfer_success(replay, vanilla, defended, x, y, attack_name=name)
    if replay.position != crafted["target"].shape[0]:
        raise AdvforgeError(f"{name}: {replay.position} of {crafted['target'].shape[0]} "
                            "crafted examples were judged")
    return {"success": out["success"], "pairs": out["pairs"],
            "success_on_vanilla": out["success_on_local"], "per_target": out["per_target"],
            "images": n, "seconds": round(time.perf_counter() - start, 2)}
