"""Contrastive (SimCLR) pre-training of the generator's encoder (AI-GAN Sec. IV-C, Eq. 11).

Two random views of each image go through the encoder and a projection head; NT-Xent pulls
the two views of an image together and pushes the other 2N - 2 views away:

    L_ij = -log( exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) )   (Eq. 11)

with cosine similarity and tau = 0.5 (the paper follows Chen et al.). The augmentations are
written in plain torch (no torchvision) and suit the data: for grayscale digits a random
affine crop (scale, shift, small rotation) and pixel noise, no flips and no colour; for colour
images a random resized crop, horizontal flip and colour jitter (brightness, contrast,
saturation) with random grayscale, as in SimCLR's CIFAR recipe.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from advforge.generative.data import iterate_batches
from advforge.generative.nets import PerturbationGenerator, ProjectionHead
from advforge.generative.parallel import average_gradients
from advforge.generative.progress import Progress, ProgressReporter

log = logging.getLogger(__name__)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=g.device)


def random_affine(
    x: torch.Tensor, g: torch.Generator, *, scale: tuple[float, float], max_shift: float,
    max_degrees: float, flip: bool,
) -> torch.Tensor:
    """Random zoom-in crop, shift, rotation (and horizontal flip) by one bilinear resample."""
    b = x.shape[0]
    s = _uniform(b, *scale, g)  # fraction of the side kept: < 1 zooms in (a crop)
    a = torch.deg2rad(_uniform(b, -max_degrees, max_degrees, g))
    tx, ty = _uniform(b, -max_shift, max_shift, g), _uniform(b, -max_shift, max_shift, g)
    fx = torch.ones(b, device=g.device)
    if flip:
        fx = torch.where(torch.rand(b, generator=g, device=g.device) < 0.5, -fx, fx)
    theta = torch.stack([
        torch.stack([s * torch.cos(a) * fx, -s * torch.sin(a), tx], 1),
        torch.stack([s * torch.sin(a) * fx, s * torch.cos(a), ty], 1),
    ], 1).to(x)  # (B, 2, 3) maps output to input coordinates
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros" if x.shape[1] == 1 else "border",
                         align_corners=False)


def colour_jitter(x: torch.Tensor, g: torch.Generator, strength: float = 0.4) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, then grayscale with probability 0.2."""
    b = x.shape[0]

    def factor() -> torch.Tensor:
        return _uniform(b, 1 - strength, 1 + strength, g).to(x)[:, None, None, None]

    gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device)[:, None, None]).sum(
        1, keepdim=True)
    x = x * factor()
    x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) * factor() + x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - gray) * factor() + gray
    to_gray = (torch.rand(b, generator=g, device=g.device) < 0.2).to(x)[:, None, None, None]
    x = to_gray * x.mean(1, keepdim=True).expand_as(x) + (1 - to_gray) * x
    return x.clamp(0, 1)


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random view of each image, with the recipe that suits its channel count."""
    if x.shape[1] == 1:  # digits / clothing: no flips (they change the class), no colour
        v = random_affine(x, g, scale=(0.75, 1.0), max_shift=0.15, max_degrees=15, flip=False)
        noise = 0.05 * torch.randn(v.shape, generator=g, device=g.device).to(v)
        return (v + noise).clamp(0, 1)
    v = random_affine(x, g, scale=(0.6, 1.0), max_shift=0.1, max_degrees=0, flip=True)
    return colour_jitter(v, g)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """NT-Xent (Eq. 11) averaged over all 2N anchors; row i's positive is its other view."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, d)
    sim = z @ z.t() / tau  # cosine similarities / tau
    n = z1.shape[0]
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, positive)  # the [k != i] sum of Eq. 11 via the -inf mask


def pretrain_encoder(
    generator: PerturbationGenerator,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    tau: float = 0.5,
    rng: torch.Generator,
    progress: Progress = None,
) -> dict[str, Any]:
    """Train ``generator.encoder`` (in place) with NT-Xent on unlabelled images ``x``.

    Returns:
        ``{"loss": [per-epoch mean], "seconds": s}``; the projection head is discarded.
    """
    device = x.device
    head = ProjectionHead(generator.feature_dim).to(device)
    params = list(generator.encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    steps = epochs * math.ceil(x.shape[0] / batch_size)
    bar = ProgressReporter(progress, steps, "simclr")
    dummy = torch.zeros(x.shape[0], dtype=torch.long, device=device)
    losses, start = [], time.perf_counter()
    generator.encoder.train()
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, _ in iterate_batches(x, dummy, batch_size, rng):
            z1 = head(generator.encode(augment(xb, rng)))  # (B, d)
            z2 = head(generator.encode(augment(xb, rng)))
            loss = nt_xent(z1, z2, tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(params)  # data parallel (identity in one process)
            opt.step()
            total, count = total + loss.item(), count + 1
            bar.update({"phase": "simclr", "epoch": epoch, "loss": loss.item()})
        losses.append(total / max(count, 1))
        log.info("simclr epoch %d/%d: nt_xent %.4f", epoch + 1, epochs, losses[-1])
    bar.close()
    opt.zero_grad(set_to_none=True)
    return {"loss": losses, "seconds": time.perf_counter() - start}
