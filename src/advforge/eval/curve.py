"""Robust accuracy against the budget eps, as a non-increasing curve.

The eps-balls around an input are nested: an ``x_adv`` found at ``eps_a`` lies in the ball of
every ``eps_b >= eps_a``. So an input fooled at some eps counts as fooled at every larger eps,
and the curve reports, at each eps, the worst case over the attacks run at that eps *and* at
every smaller one. Walking the budgets upwards, each eps attacks only the inputs still robust
at the eps below it; the reported accuracy is therefore non-increasing by construction. The
point at eps 0 is the clean accuracy (no attack runs there).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from advforge.errors import InputError
from advforge.eval.robustness import RobustnessResult, robust_cascade, standard_attacks
from advforge.eval.runner import predict
from advforge.eval.tables import DASH, markdown, pct

# The default curve: the evaluated eps times these factors (and 0, the clean point).
DEFAULT_FACTORS = (0.25, 0.5, 1.0, 1.5, 2.0)


@dataclasses.dataclass
class CurvePoint:
    """Robust accuracy at one eps.

    Attributes:
        eps: the budget.
        robust_accuracy: the fraction of inputs correct and not fooled at this eps or any
            smaller eps of the curve (non-increasing in eps).
        cascade_accuracy: where this eps reused a cascade already run on every input (the
            report's own budget), that cascade's figure; it exceeds ``robust_accuracy`` when
            an attack at a smaller eps fooled an input the cascade missed. None elsewhere.
        n_attacked: inputs still robust at the eps below, the ones this eps had to attack.
        added: inputs newly fooled at this eps.
        seconds: attack time at this eps.
    """

    eps: float
    robust_accuracy: float
    cascade_accuracy: float | None
    n_attacked: int
    added: int
    seconds: float


def default_curve(eps: float, max_eps: float | None = None) -> list[float]:
    """``eps`` times :data:`DEFAULT_FACTORS`, capped at ``max_eps`` (duplicates dropped)."""
    values = [f * eps for f in DEFAULT_FACTORS]
    if max_eps is not None:
        values = [min(v, max_eps) for v in values]
    return sorted(set(values))


def check_curve_eps(eps_list: Sequence[float], norm: str, max_eps: float | None) -> list[float]:
    """The budgets sorted and deduplicated, 0 first; refuses NaN, negative or too large ones.

    Raises:
        InputError: a value that is not finite, below 0, or above ``max_eps``.
    """
    out = set()
    for value in eps_list:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value) or value < 0:
            raise InputError(f"curve eps must be finite numbers >= 0, got {value!r}")
        if max_eps is not None and value > max_eps:
            raise InputError(f"curve eps {value:g} exceeds {max_eps:.4g}, the largest {norm} "
                             "budget on [0, 1] images")
        out.add(float(value))
    return sorted(out | {0.0})


def robust_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_list: Sequence[float],
    *,
    norm: str = "linf",
    attacks: Sequence[str] | None = None,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    known: Mapping[float, RobustnessResult] | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    progress: Callable[..., Any] | None = None,
) -> list[CurvePoint]:
    """Robust accuracy at each eps of ``eps_list`` (plus 0), non-increasing in eps.

    At each eps, in increasing order, the cascade (:func:`robust_cascade`) runs on the inputs
    still robust at the previous eps; an input fooled at a smaller eps stays fooled (nested
    balls), so the returned ``robust_accuracy`` never increases with eps.

    Args:
        model: maps (B, C, H, W) images in [0, 1] to logits.
        x: (N, C, H, W) images in [0, 1].
        y: (N,) true labels.
        eps_list: budgets (>= 0); sorted, deduplicated, and 0 added.
        norm: ``"linf"`` or ``"l2"``.
        attacks: registry names run at every eps (default the standard set for ``norm``); a
            cheaper set (e.g. ``["apgd_ce"]``) makes the curve cheaper.
        hyper: per-name hyperparameter overrides, as in :func:`standard_attacks`.
        known: cascade results already computed at some eps (``result.robust`` over the same
            ``x``); those budgets reuse them instead of attacking again.
        batch_size: inputs per attack call.
        generator: passed to every attack.
        progress: a tqdm-like factory, as in :func:`robust_cascade`.

    Raises:
        InputError: a bad budget, norm or attack name.
    """
    max_eps = 1.0 if norm == "linf" else x[0].numel() ** 0.5
    budgets = check_curve_eps(eps_list, norm, max_eps)
    for eps in budgets[1:]:  # every attack is built (and checked) before any runs
        standard_attacks(eps, norm, attacks, hyper)
    clean_pred, _ = predict(model, x, batch_size)
    y = y.to(device=x.device, dtype=torch.long)
    robust = (clean_pred == y).cpu()  # (N,) the running worst case
    n = x.shape[0]
    points = [CurvePoint(0.0, int(robust.sum()) / n, None, 0, 0, 0.0)]
    for eps in budgets[1:]:
        todo = robust.nonzero().flatten()
        before = int(robust.sum())
        if eps in (known or {}):
            result = known[eps]
            if result.robust.shape != robust.shape:
                raise InputError(f"the cascade given for eps {eps:g} covers "
                                 f"{result.robust.numel()} inputs, not {n}")
            robust &= result.robust
            cascade, seconds = result.robust_accuracy, sum(s.seconds for s in result.attacks)
        elif todo.numel():
            built = standard_attacks(eps, norm, attacks, hyper)
            idx = todo.to(x.device)
            result = robust_cascade(model, x[idx], y[idx], eps=eps, norm=norm, attacks=built,
                                    batch_size=batch_size, generator=generator,
                                    progress=progress)
            robust[todo] = result.robust
            cascade, seconds = None, sum(s.seconds for s in result.attacks)
        else:
            cascade, seconds = None, 0.0
        points.append(CurvePoint(eps, int(robust.sum()) / n, cascade, todo.numel(),
                                 before - int(robust.sum()), seconds))
    return points


def curve_table(points: Sequence[CurvePoint]) -> str:
    """Markdown: eps, inputs attacked, newly fooled and robust accuracy at each budget."""
    rows = [[f"{p.eps:.4g}", str(p.n_attacked) if p.eps else DASH,
             str(p.added) if p.eps else DASH, pct(p.robust_accuracy)] for p in points]
    return markdown((["eps", "attacked", "added", "robust accuracy"], rows))
