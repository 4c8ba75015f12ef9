"""Batched particle-swarm optimisation (Kennedy and Eberhart 1995), the search behind ``fi_pso``.

B independent swarms (one per image) of N particles each move in an M-dimensional box
``[lo, hi]`` (per swarm and dimension). The state is held as (B, N, M) tensors so that one
update moves every particle of every swarm at once (Eq. 2-4 of Shi, Shu, Zhu and Chen 2020):

    v <- w v + c1 r1 (p_best - omega) + c2 r2 (g_best - omega),   omega <- omega + v     (Eq. 4)

with r1, r2 ~ U[0, 1] drawn per particle and dimension. The paper is silent on the rest; the
choices, with the reasons, are in :func:`init_swarm` and :func:`step`:

* velocities are clamped to ``v_max * (hi - lo)`` per dimension. With w = 0.6 and
  c1 + c2 = 4 the parameters lie just outside the region where the unclamped swarm is
  order-2 stable (Poli 2009: c1 + c2 < 24 (1 - w^2) / (7 - 5 w) = 3.84), so some clamp is
  needed to keep particles from oscillating ever wider;
* a coordinate that leaves the box is either clipped to the wall with its velocity zeroed
  ("clip", an absorbing wall) or mirrored back into the box with its velocity reversed
  ("reflect").
"""

from __future__ import annotations

import dataclasses

import torch

BOUNDARIES = ("clip", "reflect")


@dataclasses.dataclass
class Swarm:
    """The state of B swarms; ``best_*`` are p_best (Eq. 2), ``g_*`` are g_best (Eq. 3)."""

    pos: torch.Tensor  # (B, N, M) omega
    vel: torch.Tensor  # (B, N, M)
    best_pos: torch.Tensor  # (B, N, M)
    best_f: torch.Tensor  # (B, N)
    g_pos: torch.Tensor  # (B, M)
    g_f: torch.Tensor  # (B,)


def uniform(shape: tuple[int, ...], like: torch.Tensor, generator) -> torch.Tensor:
    """U[0, 1) of ``shape`` drawn on the generator's device, returned like ``like``."""
    dev = generator.device if generator is not None else like.device
    r = torch.rand(shape, generator=generator, device=dev, dtype=like.dtype)
    return r.to(like.device)


def score_dtype(device: torch.device) -> torch.dtype:
    """float64 for objective values, except on Apple's MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def init_swarm(lo: torch.Tensor, hi: torch.Tensor, particles: int, generator,
               scale: float | None = 1.0) -> Swarm:
    """Positions uniform in the box shrunk by ``scale`` towards omega = 0 (None: particle i
    shrunk by i / (N - 1), from omega = 0 to the whole box), except particle 0 at omega = 0
    (the clean image, always feasible, so g_best starts no worse than no perturbation);
    velocities zero, so the first move is the pull towards g_best alone. Bests are unset
    (f = inf) until :func:`record`; objective values are float64 (tiny probability changes
    must not round away).

    Args:
        lo, hi: (B, 1, M) bounds with lo <= 0 <= hi.
        particles: N.
    """
    b, _, m = lo.shape
    pos = lo + (hi - lo) * uniform((b, particles, m), lo, generator)  # (B, N, M)
    if scale is None:  # particle i in the box shrunk by i / (N - 1): particle 0 at omega = 0
        scale = torch.linspace(0, 1, particles, dtype=lo.dtype, device=lo.device)[:, None]
    pos = pos * scale
    pos[:, 0] = 0.0
    inf = torch.full((b, particles), float("inf"), dtype=score_dtype(lo.device), device=lo.device)
    return Swarm(pos=pos, vel=torch.zeros_like(pos), best_pos=pos.clone(), best_f=inf,
                 g_pos=pos[:, 0].clone(), g_f=inf[:, 0].clone())


def record(swarm: Swarm, f: torch.Tensor, rows: torch.Tensor) -> None:
    """Update p_best (Eq. 2) and g_best (Eq. 3) of the swarms ``rows`` from their particles'
    objective values ``f`` (len(rows), N)."""
    pos = swarm.pos[rows]
    better = f < swarm.best_f[rows]  # (R, N)
    best_f = torch.where(better, f, swarm.best_f[rows])
    best_pos = torch.where(better[..., None], pos, swarm.best_pos[rows])
    swarm.best_f[rows], swarm.best_pos[rows] = best_f, best_pos
    g_f, arg = best_f.min(dim=1)  # (R,)
    g_pos = best_pos.gather(1, arg[:, None, None].expand(-1, 1, pos.shape[2])).squeeze(1)
    swarm.g_f[rows], swarm.g_pos[rows] = g_f, g_pos


def step(swarm: Swarm, lo: torch.Tensor, hi: torch.Tensor, *, w: float, c1: float, c2: float,
         v_max: float, boundary: str, generator) -> None:
    """One move of every particle (Eq. 4), then the velocity clamp and the box rule."""
    r1 = uniform(swarm.pos.shape, swarm.pos, generator)
    r2 = uniform(swarm.pos.shape, swarm.pos, generator)
    vel = (w * swarm.vel + c1 * r1 * (swarm.best_pos - swarm.pos)
           + c2 * r2 * (swarm.g_pos[:, None] - swarm.pos))
    limit = v_max * (hi - lo)  # (B, 1, M)
    vel = torch.max(torch.min(vel, limit), -limit)
    pos = swarm.pos + vel
    out = (pos < lo) | (pos > hi)
    if boundary == "reflect":
        # Mirror at the wall crossed; a clamped |v| <= hi - lo cannot cross both walls.
        pos = torch.where(pos > hi, 2 * hi - pos, torch.where(pos < lo, 2 * lo - pos, pos))
        vel = torch.where(out, -vel, vel)
    else:
        vel = torch.where(out, torch.zeros_like(vel), vel)
    swarm.pos = torch.max(torch.min(pos, hi), lo)
    swarm.vel = vel
