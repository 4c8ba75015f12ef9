"""The first-order influence (FI) measure of Shu & Zhu (2019), batched over images.

Eq. 1 of the paper with the objective of Eq. 5: ``f = -log p_y``, or ``-log p_target`` when a
target is given. :func:`influence` returns both levels from one set of K backward passes;
:func:`pixel_fi` and :func:`image_fi` return one level each. The formulas, and why the
pseudo-inverse is computed the way it is, are in :mod:`advforge.influence.formulas`.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from advforge.errors import InputError
from advforge.influence.formulas import image_level, pixel_level
from advforge.influence.jacobian import CHUNK, logit_jacobian
from advforge.utils.modes import model_mode
from advforge.utils.validate import check_images, check_labels


@dataclasses.dataclass(frozen=True)
class Influence:
    """Both levels of the FI measure for a batch, with what they were computed from.

    Attributes:
        pixel: (B, C, H, W) pixel-level FI (a colour pixel's three components separately).
        image: (B,) image-level FI.
        probs: (B, K) the model's probabilities.
        objective: (B,) the class c of ``f = -log p_c`` (the target, else the true label).
        rank_drop: (B,) how far the rank of the metric G falls below K - 1 (0 generically).
    """

    pixel: torch.Tensor
    image: torch.Tensor
    probs: torch.Tensor
    objective: torch.Tensor
    rank_drop: torch.Tensor


def influence(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    target: torch.Tensor | int | None = None,
    batch_size: int = CHUNK,
) -> Influence:
    """Pixel- and image-level FI of ``model`` at ``x`` (Eq. 1 with the objective of Eq. 5).

    Args:
        model: maps (B, C, H, W) images in [0, 1] to (B, K) logits. It runs in eval mode
            (batch norm frozen); its previous mode is restored afterwards.
        x: (B, C, H, W) float images in [0, 1].
        y: (B,) true labels.
        target: None (``f = -log p_y``), or an int or (B,) tensor of classes (``f = -log
            p_target``). A target equal to the true label is allowed: it is the same objective
            as no target, which is what Algorithm 2 computes for every image.
        batch_size: images per forward pass; the result does not depend on it.

    Returns:
        An :class:`Influence`; ``pixel`` and ``image`` in ``x``'s dtype and on its device
        (float32 overflows to inf only for a class of probability below 3e-39).

    Raises:
        InputError: malformed images, labels or targets, or a model not returning logits.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    c = _objective_classes(model, x, y, target)
    pixels, images, probs, drops = [], [], [], []
    for start in range(0, x.shape[0], batch_size):
        part = slice(start, start + batch_size)
        z, jac = logit_jacobian(model, x[part], batch_size=batch_size)
        pixels.append(pixel_level(z, jac, c[part]))
        fi, drop = image_level(z, jac, c[part])
        images.append(fi)
        drops.append(drop)
        probs.append(torch.softmax(z.double(), dim=1))
    return Influence(pixel=torch.cat(pixels).view(x.shape).to(x.dtype),
                     image=torch.cat(images).to(x.dtype), probs=torch.cat(probs).to(x.dtype),
                     objective=c, rank_drop=torch.cat(drops))


def target_maps(model: nn.Module, x: torch.Tensor, y: torch.Tensor | int) -> torch.Tensor:
    """Pixel-level FI of ``f = -log p_t`` for every class t of one image (the paper's Fig. 2):
    (K, C, H, W), computed as one batch of K copies of ``x`` (C, H, W)."""
    if x.dim() != 3:
        raise InputError(f"target_maps takes one (C, H, W) image, got shape {tuple(x.shape)}")
    label = torch.as_tensor(y, device=x.device).long().reshape(1)
    with torch.no_grad(), model_mode(model, "eval"):
        k = int(model(x[None]).shape[1])
    classes = torch.arange(k, device=x.device)
    return influence(model, x[None].expand(k, *x.shape), label.expand(k),
                     target=classes).pixel


def pixel_fi(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             target: torch.Tensor | int | None = None, batch_size: int = CHUNK) -> torch.Tensor:
    """(B, C, H, W) pixel-level FI: ``FI_i = (df/dx_i)^2 / G_i``, ``G_i = sum_k p_k (d log
    p_k / dx_i)^2``, 0 where ``G_i = 0``. Arguments as :func:`influence`."""
    return influence(model, x, y, target=target, batch_size=batch_size).pixel


def image_fi(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             target: torch.Tensor | int | None = None, batch_size: int = CHUNK) -> torch.Tensor:
    """(B,) image-level FI: ``g^T G^+ g`` with ``G = J^T diag(p) J``, never forming the p x p
    matrix. It equals ``(1 - p_c) / p_c`` unless the logit Jacobian loses rank (see
    :mod:`advforge.influence.formulas`). Arguments as :func:`influence`."""
    return influence(model, x, y, target=target, batch_size=batch_size).image


def _objective_classes(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       target: torch.Tensor | int | None) -> torch.Tensor:
    """Validate the inputs and return the (B,) long classes c of ``f = -log p_c``."""
    check_images(x, channels=getattr(model, "in_channels", None))
    num_classes = getattr(model, "num_classes", None)
    check_labels(y, x.shape[0])
    if target is not None:
        target = _as_classes(target, x.shape[0], x.device)
    if num_classes is None:  # a plain nn.Module: one forward pass of one image reveals K
        with model_mode(model, "eval"), torch.no_grad():
            z = model(x[:1])
        if z.dim() != 2:
            raise InputError(f"the model must return (B, K) logits, got shape {tuple(z.shape)}")
        num_classes = z.shape[1]
    check_labels(y, x.shape[0], num_classes)
    if target is None:
        return y.to(device=x.device, dtype=torch.long)
    check_labels(target, x.shape[0], num_classes, name="target")
    return target


def _as_classes(target: torch.Tensor | int, batch: int, device: torch.device) -> torch.Tensor:
    """An int, a 0-d tensor or a (B,) tensor of classes as a (B,) long tensor on ``device``."""
    if isinstance(target, int) and not isinstance(target, bool):
        return torch.full((batch,), target, dtype=torch.long, device=device)
    if not isinstance(target, torch.Tensor):
        raise InputError(f"target must be an int or a tensor of classes, got "
                         f"{type(target).__name__}")
    if target.dim() == 0:
        target = target.expand(batch)
    check_labels(target, batch, name="target")
    return target.to(device=device, dtype=torch.long)
