"""Optimisation attacks behind one registry: ``create(name, **hyper)`` and ``names()``.

Every attack is called as ``attack(model, x, y, *, target=None) -> x_adv`` (see base.py).
"""

from __future__ import annotations

from advforge.attacks.base import Attack
from advforge.attacks.registry import ATTACKS


def create(name: str, **hyper) -> Attack:
    """Build a registered attack from its hyperparameters (unknown keys raise)."""
    factory = ATTACKS.get(name)
    try:
        return factory(**hyper)
    except TypeError as exc:
        from advforge.errors import InputError

        raise InputError(f"bad hyperparameters for attack {name!r}: {exc}") from None


def names() -> list[str]:
    return ATTACKS.names()


# Importing the modules registers them.
from advforge.attacks import (  # noqa: E402,F401
    apgd,
    apgd_t,
    cw_l2,
    cw_linf,
    fab,
    fgsm,
    fi_pso,
    lbfgs,
    pgd,
    square,
    square_l2,
)

__all__ = ["ATTACKS", "Attack", "create", "names"]
