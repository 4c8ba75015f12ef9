"""AttackResult: every number one evaluation run produces, and its JSON form."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from advforge.eval.metrics import DISTANCE_KEYS, SMALL_N, rate_interval

# Fields kept in memory only: tensors are not part of the JSON report.
_TENSOR_FIELDS = ("x_adv", "source_index", "target")


@dataclasses.dataclass
class AttackResult:
    """The outcome of ``evaluate(attack, model, x, y, targets=...)``.

    Rates are fractions in [0, 1] (``None`` when nothing was evaluated). Success is counted only
    over (input, target) pairs whose input the model classified correctly before the attack;
    ``note`` says so in words, for the report.

    Attributes:
        attack: the attack's name.
        hyper: its hyperparameters.
        targeted: whether the attack was given target classes.
        target_rule: ``"none"`` (untargeted), ``"fixed"`` (one class for all), ``"per-input"``
            (a tensor of targets) or ``"all"`` (every class but the true one, AI-GAN protocol).
        num_classes: K.
        n_inputs: N, the number of inputs given.
        n_correct: inputs the model classified correctly before the attack.
        clean_accuracy: ``n_correct / n_inputs``.
        n_evaluated: (input, target) pairs attacked; all have a correctly classified input.
        n_skipped: pairs dropped because the target equals the true label (over all inputs).
        n_success: successful pairs (targeted: prediction == target; else prediction != y).
        success_rate: ``n_success / n_evaluated`` (micro average over pairs).
        per_target: class -> success rate; by target class if targeted (AI-GAN Table II), by
            true class if untargeted. Only classes with at least one evaluated pair appear.
        per_target_n: class -> number of evaluated pairs behind ``per_target``.
        confusion: (K, K) counts; rows = target class (targeted, Fig. 4) or true class
            (untargeted), columns = prediction after the attack.
        distances: ``{"l0"|"l2"|"linf": {"min", "mean", "max", "mean_success"}}`` over the
            evaluated adversarial examples (``mean_success``: over the successful ones only).
        seconds: wall time spent inside the attack calls only.
        seconds_per_1000: ``seconds`` per 1,000 adversarial examples produced (Table VI).
        robust_accuracy: untargeted only: inputs still classified correctly after the attack,
            over all inputs (misclassified clean inputs count as not robust); else ``None``.
        note: how success was counted, in one sentence for the report.
        norm: the attack's budget norm (``"linf"``, ``"l2"``) or ``None`` (minimum-norm or
            unknown).
        eps: the attack's budget on the [0, 1] scale, ``None`` if it has none.
        device: the device the attack ran on (``str(x.device)``).
        requirements: for an attack made to order (one with a ``requirements`` method, e.g.
            ``fi_pso``), the share of the ``n`` evaluated pairs meeting each customised
            requirement: ``met`` (all at once), ``misclassified``, ``target_reached``,
            ``p_err_met`` (probability within ``p_tol`` of ``p_err``), ``l0_met`` (at most
            ``pixels`` components changed), each ``None`` when not asked for, and
            ``probability_mean``; ``None`` for other attacks (and then absent from JSON).
        x_adv, source_index, target: with ``keep_adversarial=True``, the adversarial images
            (M, C, H, W) on the CPU, the index into ``x`` of each one's source and its target
            (``None`` if untargeted). Never written to JSON.
    """

    attack: str
    hyper: dict[str, Any]
    targeted: bool
    target_rule: str
    num_classes: int
    n_inputs: int
    n_correct: int
    clean_accuracy: float
    n_evaluated: int
    n_skipped: int
    n_success: int
    success_rate: float | None
    per_target: dict[int, float]
    per_target_n: dict[int, int]
    confusion: torch.Tensor
    distances: dict[str, dict[str, float | None]]
    seconds: float
    seconds_per_1000: float | None
    robust_accuracy: float | None = None
    note: str = ""
    norm: str | None = None
    eps: float | None = None
    device: str | None = None
    requirements: dict[str, Any] | None = None
    x_adv: torch.Tensor | None = dataclasses.field(default=None, repr=False)
    source_index: torch.Tensor | None = dataclasses.field(default=None, repr=False)
    target: torch.Tensor | None = dataclasses.field(default=None, repr=False)

    @property
    def l0(self) -> dict[str, float | None]:
        return self.distances["l0"]

    @property
    def l2(self) -> dict[str, float | None]:
        return self.distances["l2"]

    @property
    def linf(self) -> dict[str, float | None]:
        return self.distances["linf"]

    @property
    def mean_per_target(self) -> float | None:
        """Unweighted mean of ``per_target`` (the "Average" row of AI-GAN Table II)."""
        if not self.per_target:
            return None
        return sum(self.per_target.values()) / len(self.per_target)

    @property
    def success_ci95(self) -> tuple[float | None, float | None]:
        """95% Wilson interval of ``success_rate`` over its ``n_evaluated`` pairs."""
        return rate_interval(self.success_rate, self.n_evaluated)

    @property
    def small_n(self) -> bool:
        """Whether ``success_rate`` rests on fewer than ``SMALL_N`` pairs."""
        return self.n_evaluated < SMALL_N

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: class keys as strings, the confusion matrix as nested lists,
        distances both nested under ``distances`` and flat as ``l0``/``l2``/``linf``; every
        success rate with its n and 95% Wilson interval, and a flag when n < ``SMALL_N``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in _TENSOR_FIELDS:
                continue
            out[f.name] = getattr(self, f.name)
        if self.requirements is None:
            del out["requirements"]  # attacks not made to order keep their JSON as it was
        out["hyper"] = _jsonable(self.hyper)
        out["per_target"] = {str(k): v for k, v in sorted(self.per_target.items())}
        out["per_target_n"] = {str(k): v for k, v in sorted(self.per_target_n.items())}
        out["confusion"] = torch.as_tensor(self.confusion).tolist()
        out["distances"] = {k: dict(v) for k, v in self.distances.items()}
        for key in DISTANCE_KEYS:
            out[key] = dict(self.distances[key])
        out["mean_per_target"] = self.mean_per_target
        out["success_n"] = self.n_evaluated
        out["success_ci95"] = list(self.success_ci95)
        out["success_small_n"] = self.small_n
        out["per_target_ci95"] = {
            str(k): list(rate_interval(v, self.per_target_n.get(k, 0)))
            for k, v in sorted(self.per_target.items())
        }
        out["small_n_threshold"] = SMALL_N
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttackResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. to re-render a saved report)."""
        names = {f.name for f in dataclasses.fields(cls)} - set(_TENSOR_FIELDS)
        kw = {k: d[k] for k in names if k in d}
        kw["per_target"] = {int(k): float(v) for k, v in d.get("per_target", {}).items()}
        kw["per_target_n"] = {int(k): int(v) for k, v in d.get("per_target_n", {}).items()}
        kw["confusion"] = torch.tensor(d["confusion"], dtype=torch.long)
        return cls(**kw)


def _jsonable(obj: Any) -> Any:
    """Hyperparameters may hold tensors, tuples or enums; turn them into JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
