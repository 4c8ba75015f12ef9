"""FI + PSO: customised few-pixel attacks (Shi, Shu, Zhu and Chen 2020, "Adversarial image
generation and training for deep convolutional neural networks", Sec. 2.3, Algorithm 1).

An L0 attack: it changes at most m input components (a colour pixel counts as three) and asks,
optionally, for a misclassification probability P_err >= 0.5 and a target class:

1. the m components are given (``indices``) or are the m of largest pixel-level FI (Eq. 1 with
   the objective of Eq. 5, from ``advforge.influence``); by default m = p, every component;
2. a swarm of N_p particles per image searches omega in the box
   ``eps * (0 - x_i, 1 - x_i)`` of each chosen component i, minimising
   ``f_A = a f0(omega) + b ||omega||_2`` (a >> b), f0 the loss of the requirements given
   (``fi_pso_objective``), by Eq. 2-4 with w = 0.6, c1 = c2 = 2 (``pso``);
3. the output is x plus the zero-padded g_best.

Every particle of every image is scored in one batched forward pass per iteration; gradients
are taken only by the FI step. Choices the paper leaves open, measured on the trained Model B
that ships with the package (docs/cli.md, "fi_pso", has the table):

* initial positions: particle i uniform in the box shrunk by i / (N - 1), so particle 0 sits at
  omega = 0 and the last spans the whole box (``init_scale=None``). Against a uniform start
  in the whole box, perturbations were up to 18% smaller (one targeted image of 12 fewer
  met); a start near omega = 0 only (``init_scale=0.1``) gave smaller ones still, but is
  trapped where f0 has a local minimum near omega = 0 (the tests' linear model with a
  prescribed P_err). Velocities start at 0, so the first move is the pull towards g_best;
* velocity clamp ``v_max = 0.2`` of the box width per dimension: some clamp is needed, since
  w = 0.6 with c1 + c2 = 4 lies outside the stable region of the unclamped swarm; 0.5 and 1
  met a prescribed P_err for one image of 12 fewer;
* box rule ``"clip"``: an absorbing wall (position clipped, that velocity component zeroed);
  ``"reflect"`` met as often, with up to 25% larger perturbations, and needed 1.7x the
  iterations untargeted;
* a = 1, b = 1e-3: f0 lies in [0, 1] and ||omega||_2 <= sqrt(m), so the norm term only breaks
  near-ties of f0; b = 0 gave up to 4.7x larger perturbations, b = 1e-4 up to 18% larger;
* convergence: an image's swarm stops once g_best's f_A has not fallen by a relative ``tol``
  = 1e-3 for ``patience`` = 10 iterations, and is then no longer evaluated; the attack ends
  when every swarm has stopped or after T iterations. Against running all T iterations it met
  the requirements as often, with perturbations at most 3% larger, in half the iterations
  for the untargeted and P_err = 0.75 settings.

(12 least-confident mnist5k test digits, N_p = 100, T = 60, one seed, probability-scale f0:
small samples; the differences in norm are the consistent part. The log scale of f0, the
default, is measured in ``fi_pso_objective``.)

f0 is computed from float64 probabilities: in float32 the softmax rounds p_y to exactly 1 once
the logit gap passes ~17 (16% of mnist5k test digits on Model B), where f0 would be flat and
the swarm blind.

Speed. The swarm costs N_p (T + 1) forward passes per image, 20,200 at N_p = 200, T = 100:
about 400 GFLOP per 28x28 image on Model B (19.9 MFLOP a pass), close to what a CPU core
does at its float32 peak in 2 s. The candidates therefore go through the network in
cache-sized chunks of 64 per CPU thread (up to 3x faster than one batch), scored by a
private copy of the model (the caller's model is never changed): on a CPU in channels-last
layout, which oneDNN runs about 1.5x faster for 4-D inputs with the same results up to float
rounding, and with ``precision="bfloat16"`` in bfloat16 (about 2x more on a CPU with
AVX-512 BF16): logits then carry ~3 significant digits (|error| ~0.06 on Model B's logits of
size ~14), enough to rank particles but not to hit a prescribed P_err within 0.01 reliably,
so it is an opt-in and the requirement check always runs the caller's model in its own
precision.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
from typing import ClassVar

import torch
from torch import nn

from advforge.attacks import pso
from advforge.attacks.base import Attack
from advforge.attacks.chunking import batch_slices
from advforge.attacks.fi_pso_objective import (
    P_TOL,
    SCALES,
    Requirements,
    misclassification_loss,
    requirements_met,
)
from advforge.attacks.fi_pso_pixels import check_pixels, chosen_pixels, normalise_indices
from advforge.attacks.hyper import check_choice, check_int, check_range
from advforge.attacks.registry import ATTACKS
from advforge.errors import InputError
from advforge.utils.precision import PRECISIONS
from advforge.utils.validate import check_eps

__all__ = ["FiPSO", "PSOResult", "Requirements", "requirements_met", "P_TOL"]

# Candidates per forward pass off the CPU: bounds activation memory. On a CPU the particles go
# through in chunking.CPU_CHUNK candidates per thread, which stay in cache: Model B scores 3,200
# Fashion-MNIST candidates in 214 ms on two threads in chunks of 128, 603 ms in one batch, and
# in 359 ms on one thread in chunks of 64, 642 ms in chunks of 256.
MAX_BATCH = 8192

_SINK: contextvars.ContextVar[list | None] = contextvars.ContextVar("fi_pso_sink", default=None)


@dataclasses.dataclass
class PSOResult:
    """What :meth:`FiPSO.run` returns besides ``x_adv``: per image, the components searched
    (B, M), -1 padding shorter rows; g_best's f_A (B,); the iterations run (B,)."""

    x_adv: torch.Tensor
    indices: torch.Tensor
    objective: torch.Tensor
    iterations: torch.Tensor


@ATTACKS.register("fi_pso")
@dataclasses.dataclass(frozen=True, kw_only=True)
class FiPSO(Attack):
    """Algorithm 1 (module docstring), batched over images and particles.

    Args:
        pixels: the L0 budget m; None means every input component (the paper's m = p).
        indices: the components to perturb, into the flattened C*H*W input: one list shared by
            the batch, or one list per image (rows may differ in length, at most ``pixels``).
            None: the m of largest pixel-level FI.
        p_err: prescribed misclassification probability in [0.5, 1), or None.
        particles: N_p. iters: T. eps: the fraction of each component's range it may move.
        a, b: weights of f0 and of ||omega||_2 in f_A (b < a).
        w, c1, c2: inertia and acceleration coefficients of Eq. 4.
        init_scale: initial positions are uniform in the box shrunk by this factor; None:
            by i / (N - 1) for particle i (module docstring).
        v_max: velocity clamp, a fraction of the box width. boundary: "clip" or "reflect".
        tol, patience: the convergence test (module docstring).
        stop_when_met: also stop an image's swarm as soon as g_best meets the requirements
            (f0 = 0, or |p - P_err| <= 0.01): faster, at the price of larger perturbations.
        chunk_size: candidates per forward pass; None: 64 per thread on a CPU, where
            cache-sized chunks run up to 3x faster, all of them (at most 8192) elsewhere.
        precision: "float32" (the model as given) or "bfloat16" (particles scored by a
            bfloat16 copy: faster, coarser; module docstring).
        scale: "log" (default) scores the m-only and target losses as gaps between
            log-probabilities, "prob" as the paper's gaps between probabilities; the same
            inputs meet the requirement, but the probability gaps are flat on a confident
            image (``fi_pso_objective``).
    """

    name: ClassVar[str] = "fi_pso"
    norm: ClassVar[str | None] = "l0"

    pixels: int | None = None
    indices: tuple | None = None
    p_err: float | None = None
    particles: int = 200
    iters: int = 100
    eps: float = 1.0
    a: float = 1.0
    b: float = 1e-3
    w: float = 0.6
    c1: float = 2.0
    c2: float = 2.0
    init_scale: float | None = None
    v_max: float = 0.2
    boundary: str = "clip"
    tol: float = 1e-3
    patience: int = 10
    stop_when_met: bool = False
    chunk_size: int | None = None
    precision: str = "float32"
    scale: str = "log"

    def __post_init__(self) -> None:
        if self.pixels is not None:
            check_int(self.pixels, "pixels")
        object.__setattr__(self, "indices", normalise_indices(self.indices))
        if self.p_err is not None:
            _check_number(self.p_err, "p_err")
            if not 0.5 <= self.p_err < 1:
                raise InputError(f"p_err must lie in [0.5, 1), got {self.p_err!r}")
        check_int(self.particles, "particles", 2)
        check_int(self.iters, "iters", 0)
        check_eps(self.eps, "eps", upper=1.0)
        for name in ("a", "w", "c1", "c2", "tol"):
            check_eps(getattr(self, name), name)
        check_eps(self.b, "b", allow_zero=True)
        if self.b >= self.a:
            raise InputError(f"b must be much smaller than a (f_A = a f0 + b ||omega||), got "
                             f"a={self.a:g}, b={self.b:g}")
        check_range(self.v_max, "v_max", 0.0, 1.0 + 1e-12)
        if self.init_scale is not None:
            check_range(self.init_scale, "init_scale", 0.0, 1.0 + 1e-12)
        check_choice(self.boundary, "boundary", pso.BOUNDARIES)
        check_choice(self.precision, "precision", PRECISIONS)
        check_choice(self.scale, "scale", SCALES)
        check_int(self.patience, "patience")
        if not isinstance(self.stop_when_met, bool):
            raise InputError(f"stop_when_met must be true or false, got {self.stop_when_met!r}")
        if self.chunk_size is not None:
            check_int(self.chunk_size, "chunk_size")

    def hyper(self) -> dict:
        out = super().hyper()
        out["indices"] = _as_lists(self.indices)
        return out

    def check_budget(self, x: torch.Tensor) -> None:
        """Refuse a budget larger than the image and bad indices, before any compute."""
        check_pixels(self.pixels, self.indices, x)

    def max_pixels(self, x: torch.Tensor) -> int:
        """The L0 budget for images shaped like ``x``: at most this many components change."""
        if self.pixels is not None:
            return self.pixels
        if self.indices is None:
            return x[0].numel()
        rows = self.indices if isinstance(self.indices[0], tuple) else (self.indices,)
        return max(len(r) for r in rows)

    def requirements(self, model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                     y: torch.Tensor, target=None, p_tol: float = P_TOL) -> Requirements:
        """:func:`requirements_met` with this attack's ``p_err`` and L0 budget."""
        return requirements_met(model, x, x_adv, y, target=target, p_err=self.p_err,
                                pixels=self.max_pixels(x), p_tol=p_tol)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, target=None,
            generator: torch.Generator | None = None) -> PSOResult:
        """As calling the attack (same checks), returning the search's details too."""
        sink: list[PSOResult] = []
        token = _SINK.set(sink)
        try:
            self(model, x, y, target=target, generator=generator)
        finally:
            _SINK.reset(token)
        return sink[0]

    def perturb(self, model, x, y, *, target, generator):
        idx, valid = chosen_pixels(model, x, y, target, self.pixels, self.indices)
        result = self._search(self._scorer(model, x), x, y, target, idx, valid, generator)
        sink = _SINK.get()
        if sink is not None:
            sink.append(result)
        return result.x_adv

    def _search(self, model, x, y, target, idx, valid, generator) -> PSOResult:
        """Algorithm 1, lines 2-9, for every image at once."""
        x_sel = x.flatten(1).gather(1, idx)  # (B, M)
        zero = torch.zeros_like(x_sel)
        lo = torch.where(valid, -self.eps * x_sel, zero)[:, None]  # (B, 1, M)
        hi = torch.where(valid, self.eps * (1 - x_sel), zero)[:, None]
        swarm = pso.init_swarm(lo, hi, self.particles, generator, self.init_scale)
        live = torch.arange(x.shape[0], device=x.device)
        pso.record(swarm, self._objective(model, x, y, target, idx, live, swarm.pos), live)
        stall, iters = torch.zeros_like(live), torch.zeros_like(live)
        for _ in range(self.iters):
            if not len(live):
                break
            pso.step(swarm, lo, hi, w=self.w, c1=self.c1, c2=self.c2, v_max=self.v_max,
                     boundary=self.boundary, generator=generator)
            before = swarm.g_f[live]
            f = self._objective(model, x, y, target, idx, live, swarm.pos[live])
            pso.record(swarm, f, live)
            iters[live] += 1
            gained = swarm.g_f[live] < before * (1 - self.tol)  # relative improvement
            stall[live] = torch.where(gained, torch.zeros_like(before, dtype=stall.dtype),
                                      stall[live] + 1)
            go_on = stall[live] < self.patience
            if self.stop_when_met:
                go_on &= ~self._met(swarm, live)
            live = live[go_on]
        x_adv = x.flatten(1).scatter_add(1, idx, swarm.g_pos).clamp(0.0, 1.0).view_as(x)
        return PSOResult(x_adv=x_adv, indices=idx.masked_fill(~valid, -1), objective=swarm.g_f,
                         iterations=iters)

    def _scorer(self, model: nn.Module, x: torch.Tensor) -> nn.Module:
        """The network that scores the particles: a private copy in channels-last layout on a
        CPU (4-D images, a network with convolutions), cast to bfloat16 if asked; the model
        itself when it cannot be copied
        or nothing would change (module docstring, "Speed")."""
        channels_last = (x.device.type == "cpu" and x.dim() == 4
                         and any(isinstance(m, nn.Conv2d) for m in model.modules()))
        if not channels_last and self.precision == "float32":
            return model
        try:
            scorer = copy.deepcopy(model)
        except Exception:  # a model holding uncopyable state is scored as it is
            return model
        if channels_last:
            scorer = scorer.to(memory_format=torch.channels_last)
        if self.precision == "bfloat16":
            scorer = scorer.to(torch.bfloat16)
        return scorer.eval()

    def _met(self, swarm: pso.Swarm, rows: torch.Tensor) -> torch.Tensor:
        """Whether g_best of swarms ``rows`` meets the requirements: f0 = (f_A - b ||g||) / a
        is 0 (untargeted, targeted) or within P_TOL of P_err."""
        norm = swarm.g_pos[rows].to(swarm.g_f.dtype).norm(dim=1)
        f0 = (swarm.g_f[rows] - self.b * norm) / self.a
        return f0 <= (P_TOL if self.p_err is not None else 1e-9)

    def _objective(self, model, x, y, target, idx, rows, pos) -> torch.Tensor:
        """f_A of the particles ``pos`` (R, N, M) of images ``rows``, as (R, N): all R * N
        candidates go through the model in one forward pass (or cache-sized chunks)."""
        r, n, m = pos.shape
        cand = x.flatten(1)[rows, None].expand(r, n, -1).clone()  # (R, N, C*H*W)
        cand.scatter_add_(2, idx[rows, None].expand(r, n, m), pos)
        batch = cand.view(r * n, *x.shape[1:]).clamp_(0.0, 1.0)
        if self.precision == "bfloat16":
            batch = batch.to(torch.bfloat16)
        with torch.no_grad():
            logits = torch.cat([model(batch[s]) for s in self._slices(model, batch)])
        # float64 (module docstring): float32 would make f0 flat past a logit gap of ~17.
        dtype = pso.score_dtype(logits.device)
        probs = logits.to(dtype).softmax(dim=1).view(r, n, -1)  # (R, N, K)
        t = None if target is None else target[rows, None].expand(r, n)
        f0 = misclassification_loss(probs, y[rows, None].expand(r, n), t, self.p_err,
                                    self.scale)
        return self.a * f0 + self.b * pos.to(dtype).norm(dim=2)

    def _slices(self, model: nn.Module, batch: torch.Tensor) -> list[slice]:
        size = self.chunk_size
        if size is None and batch.device.type != "cpu":
            size = MAX_BATCH
        return batch_slices(model, batch, size)


def _check_number(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {value!r}")


def _as_lists(indices: tuple | None) -> list | None:
    if indices is None:
        return None
    return [list(r) if isinstance(r, tuple) else r for r in indices]
