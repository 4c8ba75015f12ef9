"""Norm helpers: projections onto L-inf / L2 balls, random starts, gradient normalisation."""

from __future__ import annotations

import torch


def flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-example p-norm of a (B, ...) tensor -> (B,)."""
    return t.flatten(1).norm(p=p, dim=1)


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Project ``delta`` onto the ``norm`` ball of radius ``eps`` (Madry et al., Eq. 5's Pi)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    if norm == "l2":
        n = flat_norm(delta, 2).clamp_min(1e-12)
        factor = (eps / n).clamp(max=1.0)
        return delta * _expand(factor, delta)
    raise ValueError(f"unknown norm {norm!r}")


def normalize_grad(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction for a unit step under ``norm``: sign for L-inf, unit L2 else."""
    if norm == "linf":
        return grad.sign()
    if norm == "l2":
        n = flat_norm(grad, 2).clamp_min(1e-12)
        return grad / _expand(n, grad)
    raise ValueError(f"unknown norm {norm!r}")


def random_init(
    x: torch.Tensor, norm: str, eps: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A uniform random start inside the ball (Madry et al.): uniform in the L-inf cube, or
    uniform in the L2 ball (direction from a Gaussian, radius ~ eps * U^(1/d))."""
    # Draw on the generator's device (a CPU generator may seed a CUDA attack), then move.
    dev = generator.device if generator is not None else x.device
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)
        return (2 * u - 1) * eps
    if norm == "l2":
        g = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)
        d = x[0].numel()
        r = torch.rand(x.shape[0], generator=generator, device=dev, dtype=x.dtype).to(x.device)
        radius = eps * r.pow(1.0 / d)
        return g / _expand(flat_norm(g, 2).clamp_min(1e-12), g) * _expand(radius, g)
    raise ValueError(f"unknown norm {norm!r}")
