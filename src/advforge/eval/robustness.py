"""Robust accuracy under AutoAttack's "standard" cascade, as the per-example worst case.

Croce & Hein (ICML 2020) run APGD-CE, APGD-T (9 target classes) and Square (5,000 queries),
each for its paper's budget, one after another: an attack sees only the inputs that every
earlier attack failed on, and always starts from the clean ``x``. An input counts as robust
only if the model classifies it correctly and no attack fools it. Whether an attack fooled an
input is decided here, by running the model on the returned ``x_adv``; the attack's own claim
is never used, and an ``x_adv`` outside the eps-ball or [0, 1] is refused as an attack bug.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from advforge import attacks as registry
from advforge.errors import AdvforgeError, InputError
from advforge.eval.evaluate import _hyper_of, _name_of, _open_bar
from advforge.eval.runner import AttackFn, call_attack, predict
from advforge.eval.tables import DASH, markdown, pct
from advforge.utils.validate import check_eps, check_images, check_labels

NORMS = ("linf", "l2")
# The standard set per norm (AutoAttack's "standard" version).
STANDARD = {"linf": ("apgd_ce", "apgd_t", "square"),
            "l2": ("apgd_ce_l2", "apgd_t_l2", "square_l2")}
# Attacks that never read a gradient: a cascade without one cannot expose gradient masking.
GRADIENT_FREE = frozenset({"square", "square_l2"})
# The papers' budgets: 100 APGD iterations, 9 target classes, 5,000 Square queries.
PAPER_DEFAULTS = {"steps": 100, "restarts": 1, "n_target_classes": 9, "n_queries": 5000}
_SLACK = 1e-5  # relative float rounding allowed on the eps-ball check


@dataclasses.dataclass
class CascadeStep:
    """One attack of the cascade: robust accuracy after it and what it added."""

    attack: str
    hyper: dict[str, Any]
    n_attacked: int
    added: int
    robust_accuracy: float
    seconds: float


@dataclasses.dataclass
class RobustnessResult:
    """The cascade's outcome. ``robust`` is the (N,) CPU bool mask of inputs no attack fooled
    (clean-misclassified inputs are False)."""

    n: int
    eps: float
    norm: str
    clean_accuracy: float
    robust_accuracy: float
    attacks: list[CascadeStep]
    robust: torch.Tensor
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the mask, JSON-ready."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "robust"}
        out["n_robust"] = int(self.robust.sum())
        return out


def standard_attacks(eps: float, norm: str = "linf", names: Sequence[str] | None = None,
                     hyper: Mapping[str, Mapping[str, Any]] | None = None) -> list[Any]:
    """Build the cascade's attacks from the registry with the papers' budgets and ``eps``.

    Args:
        eps: the budget of every attack.
        norm: ``"linf"`` or ``"l2"``; every attack must be bounded in that norm.
        names: registry names; default the standard set for ``norm``.
        hyper: per-name overrides of the defaults (e.g. fewer steps for a dry run).

    Raises:
        InputError: an unknown name, or an attack not bounded in ``norm``.
    """
    _check_budget(eps, norm)
    built = []
    for name in names if names is not None else STANDARD[norm]:
        cls = registry.ATTACKS.get(name)
        if getattr(cls, "norm", None) != norm:
            raise InputError(f"{name} is not an attack bounded in the {norm} ball, so it cannot "
                             f"run in a --norm {norm} cascade; use one of "
                             f"{', '.join(_bounded(norm))}")
        fields = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in PAPER_DEFAULTS.items() if k in fields}
        override = dict((hyper or {}).get(name, {}))
        if "eps" in override:
            raise InputError(f"{name}: the cascade's budget is set once, by eps; drop eps= "
                             "from the attack's hyperparameters")
        chosen.update(override)
        built.append(registry.create(name, **chosen, eps=eps))
    return built


def _bounded(norm: str) -> list[str]:
    return [n for n in registry.names() if getattr(registry.ATTACKS.get(n), "norm", None) == norm]


def _check_budget(eps: float, norm: str) -> None:
    if norm not in NORMS:
        raise InputError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    check_eps(eps, "eps", upper=1.0 if norm == "linf" else None)


def robust_cascade(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    attacks: Sequence[str | AttackFn] | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    progress: Callable[..., Any] | None = None,
) -> RobustnessResult:
    """Run the attacks in order on the inputs still robust; return the per-example worst case.

    Args:
        model: maps (B, C, H, W) images in [0, 1] to logits; used as-is (its train/eval mode
            is never changed).
        x: (N, C, H, W) images in [0, 1]; everything runs on ``x.device``.
        y: (N,) true labels.
        eps: the budget (L-inf at most 1; L2 at most sqrt(C*H*W)).
        norm: ``"linf"`` or ``"l2"``.
        attacks: registry names (built by :func:`standard_attacks`) or built attacks called
            as ``attack(model, x, y, *, target=None, generator=None)``; default the standard
            set for ``norm``.
        batch_size: inputs per attack call.
        generator: passed to every attack for reproducible random starts.
        progress: a tqdm-like factory, one bar per attack (as in ``evaluate``).

    Raises:
        InputError: malformed inputs, a bad budget, norm, batch size or attack name.
        AdvforgeError: an attack returned a point outside the eps-ball or [0, 1].
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    _check_budget(eps, norm)
    check_images(x, channels=getattr(model, "in_channels", None))
    if norm == "l2" and eps > x[0].numel() ** 0.5:
        raise InputError(f"L2 eps {eps:g} exceeds sqrt(C*H*W) = {x[0].numel() ** 0.5:.4g}, "
                         "the largest distance between [0, 1] images")
    built, notes = _resolve_attacks(attacks, eps, norm)
    check_labels(y, x.shape[0], getattr(model, "num_classes", None))
    y = y.to(device=x.device, dtype=torch.long)
    clean_pred, num_classes = predict(model, x, batch_size)
    check_labels(y, x.shape[0], num_classes)
    robust = clean_pred == y  # (N,): clean mistakes are never robust
    n, n_correct = x.shape[0], int(robust.sum())
    steps = []
    for attack in built:
        name = _name_of(attack)
        todo = robust.nonzero().flatten()
        bar = _open_bar(progress, todo.numel(), name)
        fooled, seconds = _attack_remaining(attack, model, x, y, todo, eps, norm,
                                            batch_size, generator, bar)
        robust[todo[fooled]] = False
        steps.append(CascadeStep(attack=name, hyper=_hyper_of(attack, None),
                                 n_attacked=todo.numel(), added=int(fooled.sum()),
                                 robust_accuracy=int(robust.sum()) / n, seconds=seconds))
    return RobustnessResult(n=n, eps=float(eps), norm=norm, clean_accuracy=n_correct / n,
                            robust_accuracy=int(robust.sum()) / n, attacks=steps,
                            robust=robust.cpu(), notes=notes)


def _resolve_attacks(attacks: Sequence[str | AttackFn] | None, eps: float,
                     norm: str) -> tuple[list[Any], list[str]]:
    """Built attacks, and notes for the report (a cascade without a gradient-free attack)."""
    if attacks is None:
        built = standard_attacks(eps, norm)
    else:
        if isinstance(attacks, str) or not attacks:
            raise InputError("attacks must be a non-empty list of attack names or attacks")
        names = [a for a in attacks if isinstance(a, str)]
        named = iter(standard_attacks(eps, norm, names) if names else [])
        built = [next(named) if isinstance(a, str) else a for a in attacks]
    notes = []
    if not any(_name_of(a) in GRADIENT_FREE for a in built):
        free = "square" if norm == "linf" else "square_l2"
        notes.append(f"This cascade has no gradient-free attack ({free}), so it cannot expose "
                     "gradient masking by itself; the audit's checks can.")
    return built, notes


def _attack_remaining(attack: AttackFn, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      todo: torch.Tensor, eps: float, norm: str, batch_size: int,
                      generator: torch.Generator | None, bar: Any) -> tuple[torch.Tensor, float]:
    """Attack ``x[todo]`` batch by batch from the clean images; (M,) fooled mask and seconds."""
    fooled, seconds = [], 0.0
    try:
        for start in range(0, todo.numel(), batch_size):
            idx = todo[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            x_adv, elapsed = call_attack(attack, model, xb, yb, None, generator)
            seconds += elapsed
            check_in_ball(xb, x_adv, eps, norm, _name_of(attack))
            with torch.no_grad():
                fooled.append(model(x_adv).argmax(dim=1) != yb)
            bar.update(idx.numel())
    finally:
        bar.close()
    if not fooled:
        return torch.zeros(0, dtype=torch.bool, device=x.device), seconds
    return torch.cat(fooled), seconds


def check_in_ball(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str,
                  name: str = "attack") -> None:
    """Refuse an ``x_adv`` outside [0, 1] or the ``norm`` ball of radius ``eps`` around ``x``
    (float rounding allowed); such a point would be an attack bug, not a robustness result."""
    if not torch.isfinite(x_adv).all() or x_adv.min() < 0 or x_adv.max() > 1:
        raise AdvforgeError(f"{name} returned images outside [0, 1] (or not finite): an attack "
                            "bug; its result is not counted")
    delta = (x_adv - x).flatten(1)
    dist = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(p=2, dim=1)
    worst = float(dist.max()) if dist.numel() else 0.0
    if worst > eps * (1 + _SLACK) + 1e-7:
        raise AdvforgeError(f"{name} returned a point at {norm} distance {worst:.6g} > eps "
                            f"{eps:g}: an attack bug; its result is not counted")


def cascade_table(result: RobustnessResult) -> str:
    """Markdown: clean accuracy, then each attack's inputs attacked, inputs it newly fooled
    and robust accuracy after it, then the worst case over the cascade."""
    rows = [["clean", DASH, DASH, pct(result.clean_accuracy), DASH]]
    rows += [[s.attack, str(s.n_attacked), str(s.added), pct(s.robust_accuracy),
              f"{s.seconds:.2f}"] for s in result.attacks]
    total = sum(s.seconds for s in result.attacks)
    rows.append(["worst case", DASH, str(sum(s.added for s in result.attacks)),
                 pct(result.robust_accuracy), f"{total:.2f}"])
    return markdown((["step", "attacked", "added", "robust accuracy", "seconds"], rows))


def render_markdown(result: RobustnessResult, meta: Mapping[str, Any], *,
                    curve: Sequence[Any] | None = None, audit: Sequence[Any] | None = None,
                    plot: str | None = None) -> str:
    """``report.md``: the audit's verdict, the budget, the cascade table, the notes, then the
    robust-accuracy curve (with its ``plot`` file, if any) and one line per audit check."""
    lines = [f"# Robustness of {meta.get('model', 'the model')}", ""]
    if audit:
        from advforge.eval.audit import audit_lines, audit_summary

        lines += [f"**{audit_summary(list(audit))}** (see Gradient-masking audit below)", ""]
    lines += [f"{result.norm} eps {result.eps:g} on {result.n} inputs of "
              f"{meta.get('dataset', 'the dataset')} (seed {meta.get('seed')}). An input is "
              "robust only if it is classified correctly and no attack below fools it; each "
              "attack runs on the inputs still robust, from the clean images.", "",
              cascade_table(result), ""]
    lines += [f"- {note}" for note in [*result.notes, *meta.get("warnings", [])]]
    if curve:
        from advforge.eval.curve import curve_table

        lines += ["", "## Robust accuracy against eps", "",
                  "An input fooled at some eps counts as fooled at every larger eps (the balls "
                  "are nested), so the curve never rises.", "", curve_table(curve), ""]
        lines += [f"![robust accuracy against eps]({plot})", ""] if plot else []
    if audit:
        lines += ["", "## Gradient-masking audit", "",
                  "Sanity checks of Carlini et al. (2019), each run alone on every input; a "
                  "FLAG is a reason to distrust the robust accuracy above.", "",
                  *audit_lines(list(audit))]
    return "\n".join(lines).rstrip() + "\n"
