"""Input checks shared by attacks, defenses and the CLI.

Each raises :class:`~advforge.errors.InputError` with a one-line message naming the problem,
so the CLI can print it and exit nonzero instead of showing a traceback.
"""

from __future__ import annotations

import torch

from advforge.errors import InputError

# Float round-trips (e.g. normalise / de-normalise) leave values a hair outside [0, 1]; a
# tolerance avoids the false alarms torchattacks users hit (torchattacks issue #136).
RANGE_TOLERANCE = 1e-5


def check_images(x: torch.Tensor, *, channels: int | None = None, name: str = "x") -> None:
    """Images must be a float tensor (B, C, H, W), finite, with values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise InputError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise InputError(f"{name} has {x.shape[1]} channels, the model expects {channels}")
    if x.numel() == 0:
        raise InputError(f"{name} is empty")
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or inf")
    lo, hi = x.min().item(), x.max().item()
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise InputError(f"{name} values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")


def check_labels(
    y: torch.Tensor, batch: int, num_classes: int | None = None, *, name: str = "y"
) -> None:
    """Labels must be an integer tensor (B,) with values in [0, num_classes)."""
    if not isinstance(y, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1 or y.shape[0] != batch:
        raise InputError(f"{name} must have shape ({batch},), got {tuple(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise InputError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.numel() and y.min().item() < 0:
        raise InputError(f"{name} holds a negative class index {y.min().item()}")
    if num_classes is not None and y.numel() and y.max().item() >= num_classes:
        raise InputError(
            f"{name} holds class index {y.max().item()}, out of range for {num_classes} classes"
        )


def check_targets(
    target: torch.Tensor | int, y: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """Return ``target`` as a (B,) long tensor on ``y.device``; reject out-of-range classes and
    targets equal to the true label (a targeted attack towards the true class is meaningless;
    evaluation drops such pairs before calling an attack and reports them as skipped)."""
    if isinstance(target, int) and not isinstance(target, bool):
        target = torch.full_like(y, target)
    elif isinstance(target, torch.Tensor) and target.dim() == 0:
        target = target.to(y.device).expand_as(y).clone()
    check_labels(target, y.shape[0], num_classes, name="target")
    target = target.to(device=y.device, dtype=torch.long)
    same = target == y
    if same.any():
        raise InputError(
            f"target equals the true label for {int(same.sum())} of {y.numel()} inputs "
            "(drop those pairs: a targeted attack needs target != y)"
        )
    return target


def check_eps(
    value: float, name: str = "eps", *, allow_zero: bool = False, upper: float | None = None
) -> None:
    """Budgets and step sizes must be finite and positive (or >= 0 where zero is meaningful),
    and at most ``upper`` when given (1 for an L-inf budget on [0, 1] images: a larger one
    allows any image at all)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise InputError(f"{name} must be finite, got {value!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if upper is not None and v > upper:
        raise InputError(f"{name} {v:g} exceeds {upper:g}: an L-inf budget on [0, 1] images "
                         f"is at most 1 (e.g. 0.3 or 8/255)")


def parse_fraction(text: str | float) -> float:
    """Parse a budget written as ``0.3``, ``8/255`` or ``8 / 255`` (the CLI accepts both)."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            return float(num) / float(den)
        return float(s)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"cannot read {text!r} as a number (use e.g. 0.3 or 8/255)") from None
