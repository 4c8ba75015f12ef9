"""Per-example perturbation sizes, summary statistics and confusion counts.

Every function here is pure tensor math with no model in sight, so ``evaluate`` and the report
writer agree on one definition of each number.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from advforge.errors import InputError

# A pixel value counts as changed for L0 when it moved by more than this. Attacks clamp to
# [0, 1] in float32, so an untouched value can still drift by ~1e-7 through round trips.
L0_TOLERANCE = 1e-6

DISTANCE_KEYS = ("l0", "l2", "linf")

# A success rate resting on fewer inputs than this is flagged in reports: its 95% interval
# is wider than about +-18 points near 50%, too wide to compare attacks by.
SMALL_N = 30


def lp_distances(
    x: torch.Tensor, x_adv: torch.Tensor, *, tol: float = L0_TOLERANCE
) -> dict[str, torch.Tensor]:
    """Per-example L0, L2 and L-inf sizes of ``delta = x_adv - x``.

    All three are taken over the flattened ``C * H * W`` values of each example, on the [0, 1]
    scale: L0 counts changed *values* (an RGB pixel whose three channels move counts 3), which
    is what the pixel-budget literature calls L0 when C = 1.

    Args:
        x: (B, ...) clean images.
        x_adv: (B, ...) adversarial images, same shape.
        tol: a value counts as changed for L0 when ``|delta| > tol``.

    Returns:
        ``{"l0": (B,), "l2": (B,), "linf": (B,)}`` float32 tensors on ``x``'s device.
    """
    if x.shape != x_adv.shape:
        raise InputError(f"x_adv has shape {tuple(x_adv.shape)}, x has {tuple(x.shape)}")
    delta = (x_adv.detach() - x.detach()).flatten(1).float()  # (B, C*H*W)
    if delta.shape[1] == 0:
        zeros = delta.new_zeros(delta.shape[0])
        return {"l0": zeros, "l2": zeros.clone(), "linf": zeros.clone()}
    abs_delta = delta.abs()
    return {
        "l0": (abs_delta > tol).sum(dim=1).float(),
        "l2": delta.norm(p=2, dim=1),
        "linf": abs_delta.amax(dim=1),
    }


def summarize(values: torch.Tensor | Sequence[float]) -> dict[str, float | None]:
    """``{"min", "mean", "max"}`` of a 1-D set of values; all ``None`` when it is empty.

    ``None`` rather than NaN keeps ``report.json`` valid JSON (NaN is not).
    """
    t = torch.as_tensor(values, dtype=torch.float64).flatten()
    if t.numel() == 0:
        return {"min": None, "mean": None, "max": None}
    return {"min": t.min().item(), "mean": t.mean().item(), "max": t.max().item()}


def confusion_matrix(rows: torch.Tensor, cols: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: entry ``[i, j]`` = number of examples with ``rows == i, cols == j``.

    For a targeted attack, rows are the target classes and columns the predictions after the
    attack, so the diagonal holds the per-target successes (AI-GAN Fig. 4); for an untargeted
    attack rows are the true classes.
    """
    rows = torch.as_tensor(rows).flatten().long().cpu()
    cols = torch.as_tensor(cols).flatten().long().cpu()
    if rows.shape != cols.shape:
        raise InputError(f"rows and cols differ in length: {rows.numel()} vs {cols.numel()}")
    for name, t in (("rows", rows), ("cols", cols)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise InputError(f"{name} hold a class index outside [0, {num_classes})")
    flat = torch.bincount(rows * num_classes + cols, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes)


def rate_by_class(
    classes: torch.Tensor, success: torch.Tensor, num_classes: int
) -> tuple[dict[int, float], dict[int, int]]:
    """Success rate and count per class, for classes that occur at least once.

    Args:
        classes: (M,) class of each example (the target, or the true class if untargeted).
        success: (M,) bool success of each example.
        num_classes: K.

    Returns:
        ``(rates, counts)``: dicts class index -> rate in [0, 1], class index -> count.
    """
    classes = classes.flatten().long().cpu()
    success = success.flatten().cpu()
    counts = torch.bincount(classes, minlength=num_classes)
    hits = torch.bincount(classes, weights=success.double(), minlength=num_classes)
    present = [k for k in range(num_classes) if counts[k] > 0]
    rates = {k: hits[k].item() / counts[k].item() for k in present}
    return rates, {k: int(counts[k]) for k in present}


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """Wilson score interval for a binomial proportion ``k / n`` (Wilson 1927).

    ``(p + z^2/2n -+ z * sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = k / n``; unlike
    the normal approximation it stays inside [0, 1] and does not collapse to a point at
    ``k = 0`` or ``k = n`` (2 successes out of 2 give [0.34, 1], not [1, 1]).

    Args:
        k: successes, 0 <= k <= n.
        n: trials.
        z: the normal quantile; 1.96 for a 95% interval.

    Returns:
        ``(low, high)`` in [0, 1]; ``(None, None)`` when ``n == 0``.
    """
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise InputError(f"wilson_interval needs integer counts, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise InputError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return None, None
    p = k / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / denom
    return max(0.0, center - half), min(1.0, center + half)


def rate_interval(rate: float | None, n: int) -> tuple[float | None, float | None]:
    """:func:`wilson_interval` for a rate already divided out (``k = round(rate * n)``)."""
    if rate is None or n == 0:
        return None, None
    return wilson_interval(round(rate * n), n)
