"""Weights shipped inside the package, so that ``advforge demo`` shows results in minutes.

Each entry is a run directory written by advforge's own commands (``config.json`` +
safetensors weights, never unpickled); its ``config.json`` records, under ``reproduce``, the
command that trains it again from scratch.

* ``mnist5k_model_b``: Model B (AI-GAN Table I) on the embedded ``mnist5k`` sample.
* ``mnist5k_model_b_aigan``: an AI-GAN generator against it (one conditional generator for
  every target class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advforge.errors import InputError

_ROOT = Path(__file__).resolve().parent
SHIPPED = {"mnist5k_model_b": "classifier", "mnist5k_model_b_aigan": "attacker"}


def names() -> list[str]:
    """The names of the shipped run directories."""
    return sorted(SHIPPED)


def path(name: str) -> Path:
    """The run directory of a shipped entry."""
    if name not in SHIPPED:
        raise InputError(f"no shipped weights named {name!r}; known: {', '.join(names())}")
    return _ROOT / name


def load_model(name: str = "mnist5k_model_b") -> Any:
    """A shipped classifier as an :class:`~advforge.models.ImageClassifier` (on the CPU)."""
    from advforge.models import load_model as load_run

    if SHIPPED.get(name, "classifier") != "classifier":
        raise InputError(f"{name} is a learned attacker; use load_attacker")
    return load_run(path(name))


def load_attacker(name: str = "mnist5k_model_b_aigan") -> Any:
    """A shipped learned attacker as an attack (``attack(model, x, y, target=t)``)."""
    from advforge.generative import load_attacker as load_run

    if SHIPPED.get(name, "attacker") != "attacker":
        raise InputError(f"{name} is a classifier; use load_model")
    return load_run(path(name))
