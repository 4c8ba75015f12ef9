"""The loss terms the learned attackers' objectives are built from."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advforge.attacks.losses import margin
from advforge.errors import InputError


def cw_target_loss(logits: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """C&W's targeted loss max(max_{i != t} Z_i - Z_t, -kappa), batch mean. Minimising it
    maximises the target log-probability of AI-GAN's Eq. 9 the way the paper says it does
    (Sec. V-B), and it is AdvGAN's L_adv."""
    return margin(logits, target, target, kappa=kappa).mean()


def gan_loss(logits: torch.Tensor, clean: bool, kind: str) -> torch.Tensor:
    """Source-head loss pushing ``logits`` towards "clean" (1) or "perturbed" (0):
    ``bce`` is the log-likelihood of AI-GAN's Eq. 6; ``lsgan`` the least-squares loss of
    AdvGAN's released code."""
    label = torch.full_like(logits, 1.0 if clean else 0.0)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, label)
    if kind == "lsgan":
        return F.mse_loss(logits, label)
    raise InputError(f"unknown GAN loss {kind!r} (use bce or lsgan)")
