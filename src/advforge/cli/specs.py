"""Attack specs as written on the command line.

``pgd``                          -> attacks.create("pgd", eps=<dataset eps>)
``pgd:steps=40:step_size=0.01``  -> the same with hyperparameters
``fi_pso:indices=3+17+40``       -> a list of integers (fi_pso's pixel indices)
``aigan=runs/aigan``             -> a learned attacker loaded from its run directory
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from advforge import attacks
from advforge.errors import InputError
from advforge.generative.base import KINDS as LEARNED_KINDS
from advforge.utils.validate import parse_fraction

# Integers joined by '+': ':' separates a spec's pairs and ',' the specs of --attacks.
_INT_LIST = re.compile(r"-?\d+(?:\s*\+\s*-?\d+)+")


def parse_value(text: str) -> Any:
    """``40`` -> int, ``0.01`` / ``8/255`` -> float, ``true`` -> bool, ``3+17+40`` -> a list
    of ints, otherwise the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if _INT_LIST.fullmatch(low):
        return [int(v) for v in low.split("+")]
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return parse_fraction(low)
    except InputError:
        return text.strip()


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a spec into (name, run_dir or None, hyperparameters)."""
    spec = spec.strip()
    if not spec:
        raise InputError("empty attack spec")
    if "=" in spec.split(":", 1)[0]:
        name, run_dir = spec.split("=", 1)
        if not run_dir:
            raise InputError(f"attack spec {spec!r}: missing run directory after '='")
        return name.strip(), run_dir.strip(), {}
    name, *pairs = spec.split(":")
    hyper: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"attack spec {spec!r}: expected key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        hyper[key.strip()] = parse_value(value)
    return name.strip(), None, hyper


def build_attack(spec: str, *, eps: float, device: Any = None, compiled: bool = False
                 ) -> tuple[str, Any, dict]:
    """Return (display name, attack callable, hyperparameters) for ``spec``.

    ``compiled`` runs a learned attacker's generator through ``torch.compile``
    (:func:`advforge.generative.load_attacker`); the other attacks ignore it.

    The dataset's L-inf budget fills ``eps`` when the attack is an L-inf one and the spec does
    not set it.
    When that budget differs from the attack's own default (0.3, the MNIST convention), a
    default ``step_size`` is scaled by the same ratio so the step stays proportional to eps.
    """
    name, run_dir, hyper = parse_spec(spec)
    if run_dir is not None:
        from advforge.generative import load_attacker

        attacker = load_attacker(run_dir, compiled=compiled)
        if device is not None:
            attacker = attacker.to(device)
        hyper = {"run_dir": run_dir, "eps": attacker.eps}
        return f"{name}={run_dir}", attacker, {**hyper, "compiled": True} if compiled else hyper
    if name not in attacks.ATTACKS and name in LEARNED_KINDS:
        raise InputError(f"{name} is a learned attacker: give its trained run as "
                         f"{name}=RUN_DIR (train one with advforge train-attacker {name})")
    cls = attacks.ATTACKS.get(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # The dataset's budget is an L-inf one; L2 attacks keep their own default radius.
    if "eps" in fields and "eps" not in hyper and getattr(cls, "norm", None) == "linf":
        hyper["eps"] = eps
        base = fields["eps"].default
        if (
            "step_size" in fields
            and "step_size" not in hyper
            and isinstance(base, float)
            and base > 0
            and abs(base - eps) > 1e-12
        ):
            hyper["step_size"] = fields["step_size"].default * eps / base
    attack = attacks.create(name, **hyper)
    return spec, attack, attack.hyper()


def check_targeting(name: str, attack: Any, rule: str | int) -> None:
    """Refuse a target rule the attack cannot honour, before any work is done.

    ``rule`` is what :func:`advforge.cli.configs.parse_target_rule` returns. An attack that
    picks its own target (``fgsm_ll``) takes none; a learned AI-GAN or per-target AdvGAN set
    needs one; a single-target AdvGAN attacks only towards the class it was trained for.
    """
    if rule != "none" and getattr(attack, "takes_target", True) is False:
        raise InputError(f"{name} chooses its own target (the least-likely class), so it "
                         "cannot run with --targets; use --targets none for it, or fgsm/pgd "
                         "for a targeted attack")
    if not hasattr(attack, "kind"):
        return
    fixed = getattr(attack, "fixed_target", None)
    if fixed is None and rule == "none":
        raise InputError(f"{name} is a targeted attacker: give --targets all, random or a "
                         "class index")
    if fixed is not None and rule not in ("none", fixed):
        raise InputError(f"{name} was trained for target class {fixed} only: use --targets "
                         f"{fixed} (or none)")
