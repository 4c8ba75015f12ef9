"""Hyperparameter checks for attack dataclasses (``__post_init__``); each raises InputError."""

from __future__ import annotations

from collections.abc import Collection

from advforge.errors import InputError


def check_int(value: object, name: str, minimum: int = 1) -> None:
    """``value`` must be an int (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")


def check_choice(value: object, name: str, choices: Collection[str]) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(sorted(choices))}; got {value!r}")


def check_range(value: float, name: str, lo: float, hi: float) -> None:
    """``value`` must be a number in the open interval (lo, hi)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo < value < hi:
        raise InputError(f"{name} must be a number in ({lo}, {hi}), got {value!r}")
