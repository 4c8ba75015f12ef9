"""A gradient-masking audit of a robust-accuracy figure (Carlini, Athalye, Papernot, Brendel,
Rauber, Tsipras, Goodfellow, Madry and Kurakin, "On Evaluating Adversarial Robustness", 2019).

A defense that hides or shatters its gradients makes gradient attacks fail without being
robust. Each check below is one of the paper's sanity checks (Sec. 5), run automatically and
reported with its figures; a failed check is a flag to investigate, not a proof of masking.
All accuracies are robust accuracies over every input (clean mistakes count as not robust),
each attack run alone from the clean images.

* ``iterative_beats_single_step``: converged PGD <= FGSM (Sec. 5.2: iterative attacks are
  strictly stronger than single-step ones; more robustness to PGD than to FGSM means the
  gradient misleads).
* ``steps_converged`` / ``restarts_converged``: doubling PGD's steps (``pgd_steps / 2`` to
  ``pgd_steps``) or its random restarts (``pgd_restarts / 2`` to ``pgd_restarts``) changes
  robust accuracy by less than ``convergence_tolerance`` (1 point).
* ``large_eps_accuracy``: at a budget so large that every ball holds the mid-grey image (L-inf
  0.5; L2 0.5 sqrt(C H W)), PGD brings accuracy to at most chance (1 / K) plus
  ``chance_margin`` (5 points); an unbounded attack should reach 0 (Sec. 5.5).
* ``square_not_stronger``, ``transfer_not_stronger``, ``noise_not_stronger``: a gradient-free
  attack (Square), a transfer attack (PGD on a surrogate model) and random noise in the ball
  (``noise_draws`` draws per input, half uniform, half at the corners / on the sphere) must
  leave at least the robust accuracy of the cascade's white-box attacks (Sec. 5.4: black-box
  attacks beating white-box ones is the signature of masking).
* ``converged_pgd_near_cascade``: converged PGD (``pgd_steps`` steps, ``pgd_restarts`` random
  starts) at most ``masking_gap`` (2 points) above the cascade's worst case; a larger gap means
  plain gradient steps are misled where APGD's adaptive steps or Square are not.
* ``short_pgd`` (information only): the adversarial-training papers' short PGD (10 steps of eps/4,
  random start). It is weaker by design, so it is reported beside the audit, not audited.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from advforge import attacks as registry
from advforge.errors import InputError
from advforge.eval.robustness import GRADIENT_FREE, RobustnessResult, robust_cascade
from advforge.eval.tables import pct


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """The audit's budgets and thresholds (module docstring).

    Attributes:
        pgd_steps: steps of the converged PGD (step size 2.5 eps / steps, Madry et al.).
        pgd_restarts: its random starts (at least 2; the restart check halves them).
        short_steps: steps of the information-only short PGD (step eps / 4).
        noise_draws: random-noise draws per input.
        square_queries: queries of the stand-alone Square attack.
        large_eps: the budget of the large-eps check; None: L-inf 0.5, L2 0.5 sqrt(C H W).
        convergence_tolerance: largest change allowed by doubling steps or restarts.
        masking_gap: largest excess of converged PGD over the cascade's worst case.
        chance_margin: slack above chance (1 / K) allowed at the large eps.
    """

    pgd_steps: int = 100
    pgd_restarts: int = 4
    short_steps: int = 10
    noise_draws: int = 100
    square_queries: int = 1000
    large_eps: float | None = None
    convergence_tolerance: float = 0.01
    masking_gap: float = 0.02
    chance_margin: float = 0.05

    def __post_init__(self) -> None:
        for name in ("pgd_steps", "short_steps", "noise_draws", "square_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"audit {name} must be a positive integer, got {value!r}")
        if self.pgd_steps < 2 or self.pgd_restarts < 2 or isinstance(self.pgd_restarts, bool):
            raise InputError("audit pgd_steps and pgd_restarts must be at least 2 (the "
                             "convergence checks halve them)")
        for name in ("convergence_tolerance", "masking_gap", "chance_margin"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(f"audit {name} must lie in [0, 1), got {getattr(self, name)}")
        if self.large_eps is not None and not self.large_eps > 0:
            raise InputError(f"audit large_eps must be > 0, got {self.large_eps}")


@dataclasses.dataclass
class AuditCheck:
    """One line of the audit: ``passed`` is None for a skipped check or ``kind="info"``;
    ``seconds`` is the attack time it took (the shared converged-PGD runs count in the
    first check)."""

    name: str
    passed: bool | None
    figures: dict[str, Any]
    detail: str
    kind: str = "check"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Runner:
    """Runs one attack alone on every input and returns its (N,) CPU robust mask."""

    def __init__(self, model, x, y, eps, norm, batch_size, seed, progress) -> None:
        self.model, self.x, self.y, self.eps, self.norm = model, x, y, eps, norm
        self.batch_size, self.seed, self.progress, self.calls = batch_size, seed, progress, 0

    def robust(self, attack: Any, eps: float | None = None,
               within: torch.Tensor | None = None) -> torch.Tensor:
        """Robust mask under ``attack``; with ``within`` (an (N,) mask), only those inputs
        are attacked and the rest count as not robust."""
        self.calls += 1  # a fresh seed per run: restarts get independent random starts
        gen = torch.Generator(device=self.x.device).manual_seed(self.seed + self.calls)
        idx = torch.arange(self.x.shape[0]) if within is None else within.nonzero().flatten()
        out = torch.zeros(self.x.shape[0], dtype=torch.bool)
        if idx.numel():
            sel = idx.to(self.x.device)
            out[idx] = robust_cascade(self.model, self.x[sel], self.y[sel], eps=eps or self.eps,
                                      norm=self.norm, attacks=[attack],
                                      batch_size=self.batch_size, generator=gen,
                                      progress=self.progress).robust
        return out

    def pgd(self, steps: int, step_size: float | None = None, eps: float | None = None) -> Any:
        eps = eps or self.eps
        return registry.create("pgd" if self.norm == "linf" else "pgd_l2", eps=eps,
                               steps=steps, step_size=step_size or 2.5 * eps / steps,
                               random_start=True, restarts=1)


def _points(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:g} point" + ("" if value == 1 else "s")


def _coarse(n: int, tol: float) -> str:
    """A warning for the detail when one input weighs at least the tolerance."""
    if n * tol > 1:
        return ""
    return f"; with {n} inputs one input is {_points(1 / n)}, so any change flags"


def _acc(mask: torch.Tensor) -> float:
    """Exact fraction from integer counts (a float32 mean turns 95/100 - 94/100 into
    0.0099999, which would pass a strict 1-point threshold)."""
    return int(mask.sum()) / max(1, mask.numel())


def whitebox_accuracy(result: RobustnessResult) -> float:
    """The cascade's robust accuracy after its white-box attacks: those run before its first
    gradient-free attack (Square), or the clean accuracy if it starts with one."""
    figure = result.clean_accuracy
    for step in result.attacks:
        if step.attack in GRADIENT_FREE:
            break
        figure = step.robust_accuracy
    return figure


def masking_audit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    cascade_result: RobustnessResult | None = None,
    surrogate: nn.Module | None = None,
    config: AuditConfig | None = None,
    batch_size: int = 256,
    seed: int = 0,
    progress: Callable[..., Any] | None = None,
) -> list[AuditCheck]:
    """Run the gradient-masking checks of the module docstring at budget ``eps``.

    Args:
        model: maps (B, C, H, W) images in [0, 1] to logits; its mode is never changed.
        x: (N, C, H, W) images in [0, 1]; y: (N,) true labels.
        eps: the budget audited (the cascade's).
        norm: ``"linf"`` or ``"l2"``.
        cascade_result: :func:`robust_cascade` at ``eps`` on the same inputs; run here with
            the standard set if None.
        surrogate: another classifier of the same data for the transfer check; None skips it.
        config: budgets and thresholds; default :class:`AuditConfig`.
        batch_size: inputs per attack call.
        seed: seeds every random start, so the audit is reproducible.
        progress: a tqdm-like factory, one bar per attack run.

    Returns:
        The checks in the order of the module docstring, then the information-only short PGD.
    """
    cfg = config or AuditConfig()
    if cascade_result is None:
        gen = torch.Generator(device=x.device).manual_seed(seed)
        cascade_result = robust_cascade(model, x, y, eps=eps, norm=norm, generator=gen,
                                        batch_size=batch_size, progress=progress)
    if cascade_result.robust.numel() != x.shape[0] or cascade_result.eps != float(eps):
        raise InputError("cascade_result must come from the same inputs and eps as the audit")
    run = _Runner(model, x, y, eps, norm, batch_size, seed, progress)
    # After k restarts an input is robust only if no restart fooled it, so each restart runs
    # on the inputs the earlier ones left robust; runs[k] is the mask after k + 1 restarts.
    start = time.perf_counter()
    runs = [run.robust(run.pgd(cfg.pgd_steps))]
    for _ in range(cfg.pgd_restarts - 1):
        runs.append(run.robust(run.pgd(cfg.pgd_steps), within=runs[-1]))
    converged, pgd_seconds = runs[-1], time.perf_counter() - start
    steps = [lambda: [_single_step(run, converged, cfg)],
             lambda: _convergence(run, runs, cfg),
             lambda: [_large_eps(run, cfg)],
             lambda: _weaker_attacks(run, whitebox_accuracy(cascade_result), cascade_result,
                                     surrogate, cfg),
             lambda: [_masking_gap(converged, cascade_result, cfg)],
             lambda: [_short_pgd(run, cfg)]]
    checks = []
    for step in steps:
        start = time.perf_counter()
        made = step()
        for check in made:  # a step's time is split over the checks it makes
            check.seconds = (time.perf_counter() - start) / len(made)
        checks += made
    checks[0].seconds += pgd_seconds  # the shared PGD restarts, counted once
    return checks


def _single_step(run: _Runner, converged: torch.Tensor, cfg: AuditConfig) -> AuditCheck:
    """Iterative beats single-step: converged PGD <= FGSM (L2: one normalised-gradient step)."""
    if run.norm == "linf":
        single, label = registry.create("fgsm", eps=run.eps), "FGSM"
    else:
        single = registry.create("pgd_l2", eps=run.eps, steps=1, step_size=run.eps,
                                 random_start=False)
        label = "FGM (one L2 step)"
    pgd, fgsm = _acc(converged), _acc(run.robust(single))
    return AuditCheck(
        name="iterative_beats_single_step", passed=pgd <= fgsm,
        figures={"pgd": pgd, "single_step": fgsm},
        detail=f"PGD-{cfg.pgd_steps} x{cfg.pgd_restarts} restarts {pct(pgd)} vs {label} "
               f"{pct(fgsm)}; the iterative attack must not do worse")


def _convergence(run: _Runner, runs: list[torch.Tensor],
                 cfg: AuditConfig) -> list[AuditCheck]:
    """Doubling the steps, then the restarts, must move robust accuracy by < the tolerance."""
    half_steps = cfg.pgd_steps // 2
    short, full = _acc(run.robust(run.pgd(half_steps))), _acc(runs[0])
    half_r = cfg.pgd_restarts // 2
    fewer, more = _acc(runs[half_r - 1]), _acc(runs[-1])
    tol = cfg.convergence_tolerance
    coarse = _coarse(run.x.shape[0], tol)
    return [
        AuditCheck(
            name="steps_converged", passed=abs(short - full) < tol,
            figures={"steps": [half_steps, cfg.pgd_steps], "robust_accuracy": [short, full]},
            detail=f"PGD {half_steps} -> {cfg.pgd_steps} steps: {pct(short)} -> {pct(full)} "
                   f"(change must stay below {_points(tol)}){coarse}"),
        AuditCheck(
            name="restarts_converged", passed=abs(fewer - more) < tol,
            figures={"restarts": [half_r, cfg.pgd_restarts], "robust_accuracy": [fewer, more]},
            detail=f"PGD-{cfg.pgd_steps} {half_r} -> {cfg.pgd_restarts} restarts: "
                   f"{pct(fewer)} -> {pct(more)} (change must stay below {_points(tol)}){coarse}"),
    ]


def _large_eps(run: _Runner, cfg: AuditConfig) -> AuditCheck:
    """At a budget whose balls all hold the mid-grey image, accuracy must reach ~chance."""
    from advforge.eval.runner import predict

    d = run.x[0].numel()
    big = cfg.large_eps or (0.5 if run.norm == "linf" else 0.5 * d**0.5)
    big = min(big, 1.0 if run.norm == "linf" else d**0.5)
    num_classes = predict(run.model, run.x[:1])[1]
    limit = 1 / num_classes + cfg.chance_margin
    acc = _acc(run.robust(run.pgd(cfg.pgd_steps, eps=big), eps=big))
    return AuditCheck(
        name="large_eps_accuracy", passed=acc <= limit,
        figures={"eps": big, "robust_accuracy": acc, "threshold": limit},
        detail=f"PGD-{cfg.pgd_steps} at {run.norm} eps {big:.4g}: {pct(acc)}; must be at most "
               f"chance 1/{num_classes} + {_points(cfg.chance_margin)} = {pct(limit)}")


def _weaker_attacks(run: _Runner, whitebox: float, result: RobustnessResult,
                    surrogate: nn.Module | None, cfg: AuditConfig) -> list[AuditCheck]:
    """Square, transfer and noise must each leave at least the white-box figure."""
    square_name = "square" if run.norm == "linf" else "square_l2"
    figures: dict[str, float | None] = {"square": None, "transfer": None, "noise": None}
    if square_name in registry.ATTACKS:
        square = registry.create(square_name, eps=run.eps, n_queries=cfg.square_queries)
        figures["square"] = _acc(run.robust(square))
    if surrogate is not None:
        figures["transfer"] = _acc(run.robust(_Transfer(surrogate, run.pgd(cfg.pgd_steps))))
    noise = _Noise(run.eps, run.norm, cfg.noise_draws)
    figures["noise"] = _acc(run.robust(noise))
    added = sum(s.added for s in result.attacks if s.attack in GRADIENT_FREE)
    labels = {"square": f"Square ({cfg.square_queries} queries, alone)",
              "transfer": f"transfer of PGD-{cfg.pgd_steps} from the surrogate",
              "noise": f"random noise ({cfg.noise_draws} draws per input)"}
    skipped = {"square": f"no {square_name} attack is registered",
               "transfer": "give a surrogate classifier (CLI: --surrogate RUN, a run "
                           "directory trained on the same data) to run it"}
    checks = []
    for key, acc in figures.items():
        name = f"{key}_not_stronger"
        if acc is None:
            checks.append(AuditCheck(name=name, passed=None, figures={}, detail=skipped[key]))
            continue
        extra = {"cascade_gradient_free_added": added} if key == "square" else {}
        checks.append(AuditCheck(
            name=name, passed=acc >= whitebox,
            figures={"robust_accuracy": acc, "whitebox": whitebox, **extra},
            detail=f"{labels[key]} {pct(acc)} vs the cascade's white-box attacks "
                   f"{pct(whitebox)}; must not be lower"))
    return checks


def _masking_gap(converged: torch.Tensor, result: RobustnessResult,
                 cfg: AuditConfig) -> AuditCheck:
    pgd, worst = _acc(converged), result.robust_accuracy
    return AuditCheck(
        name="converged_pgd_near_cascade", passed=pgd - worst <= cfg.masking_gap,
        figures={"pgd": pgd, "cascade": worst, "gap": pgd - worst},
        detail=f"PGD-{cfg.pgd_steps} x{cfg.pgd_restarts} restarts {pct(pgd)} vs the cascade's "
               f"worst case {pct(worst)}; a gap above {_points(cfg.masking_gap)} "
               "suggests masking")


def _short_pgd(run: _Runner, cfg: AuditConfig) -> AuditCheck:
    step = run.eps / 4
    acc = _acc(run.robust(run.pgd(cfg.short_steps, step_size=step)))
    return AuditCheck(
        name="short_pgd", passed=None, kind="info",
        figures={"steps": cfg.short_steps, "step_size": step, "robust_accuracy": acc},
        detail=f"PGD-{cfg.short_steps} (step eps/4, random start) {pct(acc)}: the short PGD "
               "of the adversarial-training papers, weaker by design; not audited")


class _Transfer:
    """Craft with ``attack`` on ``surrogate``; the cascade then judges them on the model."""

    name = "transfer"

    def __init__(self, surrogate: nn.Module, attack: Any) -> None:
        self.surrogate, self.attack = surrogate, attack

    def __call__(self, model, x, y, *, target=None, generator=None):
        return self.attack(self.surrogate, x, y, generator=generator)


@dataclasses.dataclass(frozen=True)
class _Noise:
    """Random noise in the ball: ``draws`` tries per input, even ones uniform in the L-inf cube
    (L2: in the ball), odd ones at its corners (L2: on the sphere); the first draw that fools
    the model is returned, else the last draw."""

    eps: float
    norm: str
    draws: int
    name = "noise"

    def __call__(self, model, x, y, *, target=None, generator=None):
        from advforge.attacks.norms import random_init

        x_adv, live = x.clone(), torch.ones(len(x), dtype=torch.bool, device=x.device)
        with torch.no_grad():
            for k in range(self.draws):
                delta = random_init(x, self.norm, self.eps, generator)  # (B, C, H, W)
                if k % 2:  # the corners (L-inf) or the sphere (L2)
                    if self.norm == "linf":
                        delta = self.eps * torch.sign(delta)
                    else:
                        flat = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
                        delta = delta * (self.eps / flat).view(-1, 1, 1, 1)
                idx = live.nonzero().flatten()
                if not idx.numel():
                    break
                cand = (x[idx] + delta[idx]).clamp(0.0, 1.0)  # drawn for all: reproducible
                x_adv[idx] = cand
                live[idx] = model(cand).argmax(dim=1) == y[idx]
        return x_adv


def audit_summary(checks: list[AuditCheck]) -> str:
    """``audit: N checks passed, M flagged`` (and how many were skipped)."""
    passed = sum(c.passed is True for c in checks)
    flagged = sum(c.passed is False for c in checks)
    skipped = sum(c.passed is None and c.kind != "info" for c in checks)
    text = f"audit: {passed} checks passed, {flagged} flagged"
    return text + (f", {skipped} skipped" if skipped else "")


def audit_lines(checks: list[AuditCheck]) -> list[str]:
    """One markdown bullet per check: its marker, name, verdict and figures."""
    lines = []
    for c in checks:
        marker = {True: "ok", False: "**FLAG**", None: "info" if c.kind == "info" else "skipped"}
        lines.append(f"- {marker[c.passed]} `{c.name}`: {c.detail}"
                     + (f" ({c.seconds:.1f} s)" if c.seconds >= 0.05 else ""))
    return lines
