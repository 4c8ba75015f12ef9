"""Adversarial universality (Shi, Shu, Zhu and Chen 2020, Sec. 3.1, Table 2).

A perturbation found by ``fi_pso`` for one image with a high misclassification probability
(P_err = 0.99) carries salient features of the class it leads to, the paper argues, and so may
drag images of other classes towards that class too. Table 2 measures this: the one
perturbation is added to every correctly classified image of each class other than the one it
leads to (the *target*), and per class it reports the share misclassified and the share
classified as the target.

:func:`universal_perturbation` makes the perturbation from one image; :func:`universality`
applies any given perturbation and counts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from advforge.errors import InputError
from advforge.utils.validate import check_images, check_labels


@dataclasses.dataclass
class UniversalPerturbation:
    """One image's adversarial perturbation, to be applied to others.

    Attributes:
        delta: (C, H, W) the perturbation, ``x_adv - x0``.
        target: the class ``x0 + delta`` is predicted as (the target, if one was given and
            reached).
        probability: the achieved misclassification probability on ``x0 + delta``: of the
            target if one was given, else of the most likely wrong class.
        met: whether the attack met every requirement it was given (P_err within its
            tolerance, target, pixel budget).
    """

    delta: torch.Tensor
    target: int
    probability: float
    met: bool


@dataclasses.dataclass
class Universality:
    """Table 2 for one perturbation: per true class, the share of its correctly classified
    images that the perturbation makes misclassified, and the share it sends to the target.

    Attributes:
        target: the class the perturbation leads to; its own images are not counted.
        source_class: the class of the image the perturbation was made from, if given.
        per_class: class -> ``{"n", "misclassified", "to_target"}``: n correctly classified
            images of that class, and the two shares (``None`` when n = 0).
        total: the same pooled over every class counted (the table's "Total" column).
    """

    target: int
    source_class: int | None
    per_class: dict[int, dict[str, Any]]
    total: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, class keys as strings."""
        return {"target": self.target, "source_class": self.source_class,
                "per_class": {str(k): dict(v) for k, v in sorted(self.per_class.items())},
                "total": dict(self.total)}


def _rates(n: int, misclassified: int, to_target: int) -> dict[str, Any]:
    return {"n": n, "misclassified": misclassified / n if n else None,
            "to_target": to_target / n if n else None}


def _check_delta(delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The perturbation as (C, H, W) on x's device; refuse a wrong shape or non-finite values."""
    if not isinstance(delta, torch.Tensor) or not delta.is_floating_point():
        raise InputError("delta must be a floating-point torch.Tensor")
    if delta.dim() == 4 and delta.shape[0] == 1:
        delta = delta[0]
    if tuple(delta.shape) != tuple(x.shape[1:]):
        raise InputError(f"delta has shape {tuple(delta.shape)}, the images "
                         f"{tuple(x.shape[1:])}")
    if not torch.isfinite(delta).all():
        raise InputError("delta holds NaN or infinite values")
    return delta.to(device=x.device, dtype=x.dtype)


def _check_class(value: int | None, name: str, num_classes: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_classes:
        raise InputError(f"{name} must be a class index in [0, {num_classes}), got {value!r}")


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    """K from the model's ``num_classes``, else from its logits on one image."""
    k = getattr(model, "num_classes", None)
    if isinstance(k, int) and not isinstance(k, bool):
        return k
    with torch.no_grad():
        logits = model(x[:1])
    if logits.dim() != 2:
        raise InputError(f"the model must return (B, K) logits, got {tuple(logits.shape)}")
    return int(logits.shape[1])


def _predictions(model: nn.Module, x: torch.Tensor, delta: torch.Tensor,
                 batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions (N,) on x and on clamp(x + delta, 0, 1), batch by batch, without grad."""
    clean, adv = [], []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            clean.append(model(xb).argmax(dim=1))
            adv.append(model((xb + delta).clamp(0.0, 1.0)).argmax(dim=1))
    return torch.cat(clean), torch.cat(adv)


def universality(model: nn.Module, delta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                 target: int, source_class: int | None = None, include_source: bool = True,
                 batch_size: int = 256) -> Universality:
    """Apply one perturbation to every correctly classified image of the other classes.

    Each image becomes ``clamp(x + delta, 0, 1)``. Only images the model classifies correctly
    without ``delta`` count, and none of class ``target``, where "misclassified to the
    target" cannot happen. As in the paper's Table 2, the source image's own class is counted
    like any other (``include_source=False`` leaves it out).

    Args:
        model: maps (B, C, H, W) images in [0, 1] to (B, K) logits; its mode is not changed.
        delta: (C, H, W) or (1, C, H, W) perturbation, e.g. ``universal_perturbation(...).delta``.
        x: (N, C, H, W) images in [0, 1]. y: (N,) true labels.
        target: the class the perturbation leads to.
        source_class: the class of the image ``delta`` was made from (recorded; see
            ``include_source``).
        include_source: whether to count ``source_class``'s images.
        batch_size: images per forward pass.

    Returns:
        A :class:`Universality` with per-class and pooled shares, each with its n.

    Raises:
        InputError: malformed images, labels or perturbation, or a class out of range.
    """
    check_images(x, channels=getattr(model, "in_channels", None))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    delta = _check_delta(delta, x)
    num_classes = _num_classes(model, x)
    check_labels(y, x.shape[0], num_classes)
    _check_class(target, "target", num_classes)
    _check_class(source_class, "source_class", num_classes)
    clean, adv = _predictions(model, x, delta, batch_size)
    y = y.to(clean.device)
    counted = (clean == y) & (y != target)
    if source_class is not None and not include_source:
        counted &= y != source_class
    per_class = {}
    for c in range(num_classes):
        rows = counted & (y == c)
        if c == target or (source_class == c and not include_source):
            continue
        per_class[c] = _rates(int(rows.sum()), int((adv[rows] != c).sum()),
                              int((adv[rows] == target).sum()))
    total = _rates(int(counted.sum()), int((adv[counted] != y[counted]).sum()),
                   int((adv[counted] == target).sum()))
    return Universality(target=target, source_class=source_class, per_class=per_class,
                        total=total)


def universal_perturbation(model: nn.Module, x0: torch.Tensor, y0: int | torch.Tensor, *,
                           target: int | None = None, p_err: float = 0.99,
                           generator: torch.Generator | None = None,
                           **pso: Any) -> UniversalPerturbation:
    """Table 2's perturbation: ``fi_pso`` on one image with P_err = 0.99 (Perturbation 6).

    Args:
        model: the classifier. x0: (C, H, W) or (1, C, H, W) image in [0, 1]. y0: its label.
        target: optional target class; without one the perturbation leads to whichever wrong
            class the search reaches.
        p_err: the prescribed misclassification probability.
        generator: seeds the swarm.
        **pso: further ``fi_pso`` hyperparameters (``pixels``, ``indices``, ``particles``,
            ``iters``, ``eps``, ...).

    Returns:
        A :class:`UniversalPerturbation`; check ``met`` before relying on it.
    """
    from advforge.attacks.fi_pso import FiPSO  # lazily: fi_pso imports this package

    x = x0[None] if isinstance(x0, torch.Tensor) and x0.dim() == 3 else x0
    check_images(x, channels=getattr(model, "in_channels", None), name="x0")
    if x.shape[0] != 1:
        raise InputError(f"x0 must be one image, got a batch of {x.shape[0]}")
    y = torch.as_tensor(y0, device=x.device).reshape(1).long()
    t = None if target is None else torch.as_tensor(target, device=x.device).reshape(1).long()
    attack = FiPSO(p_err=p_err, **pso)
    x_adv = attack(model, x, y, target=t, generator=generator)
    check = attack.requirements(model, x, x_adv, y, t)
    return UniversalPerturbation(delta=(x_adv - x)[0].detach(), target=int(check.pred[0]),
                                 probability=float(check.probability[0]),
                                 met=bool(check.met[0]))
