"""Tiny seeded networks on 1x6x6 images for the FI tests, and the brute-force oracle that
forms the full p x p metric G and takes its pseudo-inverse."""

from __future__ import annotations

import torch
from torch import nn

SIZE = 6
P = SIZE * SIZE


def conv_net(num_classes: int = 4, seed: int = 0, *, scale: float = 1.0) -> nn.Module:
    """A small conv net (float64) whose logit Jacobian has full row rank; ``scale``
    multiplies the logits (large: confident predictions)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(64, 16),
                        nn.Tanh(), nn.Linear(16, num_classes))
    with torch.no_grad():
        net[-1].weight.mul_(scale)
        net[-1].bias.mul_(scale)
    return net.double().eval()


def bottleneck_net(seed: int = 0) -> nn.Module:
    """K = 4 logits that depend on the input through 2 directions only: the logit Jacobian
    has rank 2, the metric G rank 1 instead of K - 1 = 3."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(P, 2), nn.Tanh(), nn.Linear(2, 4)).double()


class DuplicatedClass(nn.Module):
    """K = 4 logits of which the last two are the same function of the input."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(P, 8), nn.Tanh(), nn.Linear(8, 3))
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        return torch.cat([z, z[:, 2:]], 1)


def images(n: int = 5, seed: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, SIZE, SIZE, generator=g, dtype=torch.float64).to(dtype)


def brute_force(model: nn.Module, x: torch.Tensor,
                c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel- and image-level FI per image from the full p x p matrix ``G = J^T diag(p) J``
    (float64, ``torch.linalg.pinv`` with its default cut-off)."""
    model = model.double()
    pixel, image = [], []
    for b in range(x.shape[0]):
        xb = x[b:b + 1].double()

        def log_p(v: torch.Tensor, xb: torch.Tensor = xb) -> torch.Tensor:
            return torch.log_softmax(model(v.view_as(xb)), 1)[0]

        jac = torch.autograd.functional.jacobian(log_p, xb.flatten())  # (K, p)
        probs = log_p(xb.flatten()).exp().detach()
        metric = jac.T @ torch.diag(probs) @ jac  # (p, p)
        g = -jac[c[b]]
        image.append(g @ torch.linalg.pinv(metric, hermitian=True) @ g)
        diag = torch.diagonal(metric)
        pixel.append(torch.where(diag > 0, g**2 / diag, torch.zeros_like(diag)))
    return torch.stack(pixel).view(x.shape), torch.stack(image)
