"""Which pixels to perturb: the m of largest FI (Algorithm 1, step 1) or those above a
threshold (Algorithm 2, step 3)."""

from __future__ import annotations

import torch

from advforge.errors import InputError


def top_pixels(fi: torch.Tensor, m: int) -> torch.Tensor:
    """The m input components of largest FI per image, largest first.

    Args:
        fi: (B, ...) pixel-level FI, e.g. (B, C, H, W) from :func:`pixel_fi`.
        m: how many, 1 <= m <= C*H*W.

    Returns:
        (B, m) long indices into the flattened ``C*H*W`` input; equal FI values are ordered
        by index, lowest first, so the choice is deterministic.
    """
    flat = _flat(fi)
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= flat.shape[1]:
        raise InputError(f"m must be an int in [1, {flat.shape[1]}] (the input's C*H*W "
                         f"components), got {m!r}")
    # A stable descending sort keeps equal values in index order.
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    return order[:, :m]


def pixels_above(fi: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask, shaped like ``fi``, of the components with FI >= ``threshold`` (the
    paper's FI_pixel, e.g. 0.1)."""
    _flat(fi)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
            threshold != threshold:
        raise InputError(f"threshold must be a number, got {threshold!r}")
    return fi >= threshold


def _flat(fi: torch.Tensor) -> torch.Tensor:
    if not isinstance(fi, torch.Tensor) or fi.dim() < 2 or not fi.is_floating_point():
        raise InputError("fi must be a float tensor (B, ...) of pixel-level FI, got "
                         f"{getattr(fi, 'shape', type(fi).__name__)}")
    if torch.isnan(fi).any():
        raise InputError("fi contains NaN")
    return fi.flatten(1)
