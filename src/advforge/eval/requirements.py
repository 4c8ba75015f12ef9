"""Whether attacks made to order met their customised requirements, over a whole evaluation.

An attack with a ``requirements(model, x, x_adv, y, target)`` method (``fi_pso``: Shi, Shu,
Zhu and Chen 2020, Algorithm 1) returns, per image, flags for each requirement it was given:
misclassified, target reached, misclassification probability within a tolerance of P_err,
at most m components changed, and all of them at once. :class:`RequirementTally` sums those
flags batch by batch; :func:`requirement_lines` writes one report line per attack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REQUIREMENTS_TITLE = "Requirements met (attacks made to order)"
REQUIREMENTS_NOTE = ("Share of the evaluated pairs (inputs classified correctly before the "
                     "attack) whose adversarial example meets each requirement it was made to.")
# Per-image boolean flags of the attack's requirement check, in report order.
FLAGS = ("met", "misclassified", "target_reached", "p_err_met", "l0_met")
# The requirement settings, the same for every batch of one attack.
SETTINGS = ("p_err", "p_tol", "pixels")


class RequirementTally:
    """Counts of each requirement flag over the evaluated pairs, batch by batch.

    A flag the attack does not check (``target_reached`` untargeted, ``p_err_met`` without a
    prescribed probability) is ``None`` in every batch and reads ``None`` in the summary.
    """

    def __init__(self) -> None:
        self.n = 0
        self.counts: dict[str, int | None] = dict.fromkeys(FLAGS)
        self.settings: dict[str, Any] = dict.fromkeys(SETTINGS)
        self.probability_sum = 0.0

    def add(self, check: Any) -> None:
        """Fold in one batch's check (an object with the ``FLAGS`` as (B,) bool tensors or
        ``None``, the ``SETTINGS``, and ``probability`` (B,))."""
        n = int(check.met.numel())
        self.n += n
        for flag in FLAGS:
            value = getattr(check, flag, None)
            if value is not None:
                self.counts[flag] = (self.counts[flag] or 0) + int(value.sum())
        for key in SETTINGS:
            self.settings[key] = getattr(check, key, None)
        probability = getattr(check, "probability", None)
        if probability is not None and n:
            self.probability_sum += float(probability.double().sum())

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: ``n``, each flag's rate over ``n`` (``None`` if unchecked or n = 0),
        the settings and the mean achieved misclassification probability, with the same keys
        as ``Requirements.summary()`` of a single batch."""
        out: dict[str, Any] = {"n": self.n}
        for flag in FLAGS:
            count = self.counts[flag]
            out[flag] = None if count is None or not self.n else count / self.n
        out.update(self.settings)
        out["probability_mean"] = self.probability_sum / self.n if self.n else None
        return out


def new_tally(attack: Any) -> RequirementTally | None:
    """A tally for an attack that checks its own requirements, else ``None``."""
    return RequirementTally() if callable(getattr(attack, "requirements", None)) else None


def _pct(rate: float | None) -> str:
    return f"{100 * rate:.1f}%"


def describe(req: dict[str, Any]) -> str:
    """One sentence: which share of the n pairs met each requirement."""
    parts = [f"all requirements met {_pct(req['met'])}"] if req.get("met") is not None else []
    if req.get("misclassified") is not None:
        parts.append(f"misclassified {_pct(req['misclassified'])}")
    if req.get("target_reached") is not None:
        parts.append(f"target reached {_pct(req['target_reached'])}")
    if req.get("p_err_met") is not None:
        parts.append(f"P_err = {req['p_err']:g} within {req['p_tol']:g} "
                     f"{_pct(req['p_err_met'])}")
    if req.get("l0_met") is not None:
        budget = "" if req.get("pixels") is None else f" <= {req['pixels']}"
        parts.append(f"L0{budget} {_pct(req['l0_met'])}")
    return f"n = {req.get('n', 0)}: " + ("; ".join(parts) if parts else "nothing evaluated")


def requirement_lines(names: Sequence[str], requirements: Sequence[dict | None]) -> list[str]:
    """``"<name>: n = ...: ..."`` for each attack that reported requirements, in order."""
    return [f"{name}: {describe(req)}"
            for name, req in zip(names, requirements, strict=True) if req is not None]
