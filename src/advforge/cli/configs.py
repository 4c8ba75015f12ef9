"""One dataclass config per subcommand, validated in ``__post_init__``.

``advforge train-classifier`` uses ``advforge.training.TrainConfig``; the rest live here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from pathlib import Path

from advforge.errors import InputError
from advforge.utils.validate import check_eps, parse_fraction


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


def check_counts(**flags: int | None) -> None:
    """Refuse a count flag (``limit=...``, ``batch_size=...``) given as 0 or less; None is a
    flag left unset."""
    for name, value in flags.items():
        if value is not None and value <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be > 0, got {value}")


def parse_target_rule(text: str) -> str | int:
    """``none`` (untargeted), ``all`` (every class != y), ``random`` (one random class != y per
    input) or a class index."""
    s = str(text).strip().lower()
    if s in ("none", "all", "random"):
        return s
    try:
        value = int(s)
    except ValueError:
        raise InputError(
            f"target must be none, all, random or a class index, got {text!r}"
        ) from None
    if value < 0:
        raise InputError(f"target class index must be >= 0, got {value}")
    return value


@dataclasses.dataclass(kw_only=True)
class DataOptions:
    """Options shared by every command that reads a dataset and a model."""

    model: str | None = field(default=None, metadata=_help("run directory of a trained classifier"))
    dataset: str = field(default="mnist5k",
                         metadata=_help("dataset name (advforge datasets shows which are found)"))
    data_dir: str | None = field(default=None,
                                 metadata=_help("directory holding the dataset files"))
    split: str = field(default="test", metadata=_help("split to attack", choices=["train", "test"]))
    limit: int | None = field(default=None, metadata=_help("attack only the first N images"))
    batch_size: int = field(default=256, metadata=_help("images per attack call"))
    eps: float | None = field(
        default=None, metadata=_help(
            "L-inf budget of the L-inf attacks on the [0, 1] scale, at most 1, e.g. 0.3 or "
            "8/255; default: the dataset's (0.3 MNIST-like, 8/255 CIFAR-like). L2 attacks "
            "take theirs in the spec (pgd_l2:eps=2)")
    )
    seed: int = field(default=0, metadata=_help("seed for every RNG; recorded in outputs"))

    def __post_init__(self) -> None:
        check_counts(limit=self.limit, batch_size=self.batch_size)
        if self.eps is not None:
            check_eps(self.eps, "--eps", upper=self._eps_upper())

    def _eps_upper(self) -> float | None:
        """The largest ``--eps`` accepted: 1, an L-inf budget's ceiling on [0, 1] images."""
        return 1.0


def _targets_field() -> dataclasses.Field:
    """``--targets`` (``--target`` is accepted too), the same in attack and evaluate."""
    return field(default="none", metadata=_help(
        "none (untargeted), all (every class but the true one), random (one other class per "
        "input) or a class index", aliases=["--target"]))


def _compiled_field() -> dataclasses.Field:
    """``--compiled``, the same in attack and evaluate."""
    return field(default=False, metadata=_help(
        "run learned attackers (KIND=RUN_DIR) through torch.compile: the first batch pays "
        "seconds of compiling (and needs a C++ compiler), bulk forging is then faster; "
        "falls back to eager with a warning"))


@dataclasses.dataclass(kw_only=True)
class AttackConfig(DataOptions):
    """Options of ``advforge attack``: one attack, optionally saving the adversarial set."""

    attack: str = field(default="pgd", metadata=_help(
        "attack name with optional hyperparameters (pgd:steps=40:step_size=0.01), or a learned "
        "attacker as KIND=RUN_DIR (aigan=runs/aigan)"))
    targets: str = _targets_field()
    compiled: bool = _compiled_field()
    save: str | None = field(default=None, metadata=_help("write x_adv, y, target, index here "
                                                          "(.safetensors)"))
    out: str | None = field(default=None, metadata=_help("also write report.json/.md/.html here"))

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_target_rule(self.targets)
        if self.save is not None and not self.save.endswith(".safetensors"):
            raise InputError(f"--save must name a .safetensors file, got {self.save!r}")


@dataclasses.dataclass(kw_only=True)
class EvalConfig(DataOptions):
    """Options of ``advforge evaluate``: several attacks, one protocol, one report."""

    attacks: list[str] = field(default_factory=lambda: ["fgsm", "pgd", "cw_l2"], metadata=_help(
        "comma-separated attack specs, each as in advforge attack --attack"))
    targets: str = _targets_field()
    compiled: bool = _compiled_field()
    out: str = field(default="reports/evaluate", metadata=_help("report directory"))
    samples: bool = field(default=True, metadata=_help("draw the sample grid for targeted attacks"))

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_target_rule(self.targets)
        if not self.attacks:
            raise InputError("--attacks is empty")


@dataclasses.dataclass(kw_only=True)
class RobustnessConfig(DataOptions):
    """Options of ``advforge robustness``: the standard attack cascade at one budget."""

    eps: float | None = field(default=None, metadata=_help(
        "the budget on the [0, 1] scale (required): L-inf at most 1, e.g. 0.3 or 8/255; "
        "L2 e.g. 0.5"))
    norm: str = field(default="linf", metadata=_help("the threat model: linf or l2",
                                                     choices=["linf", "l2"]))
    attacks: list[str] | None = field(default=None, metadata=_help(
        "comma-separated attacks run in order, each optionally with hyperparameters "
        "(apgd_ce:steps=50); default the standard set: apgd_ce,apgd_t,square for linf, "
        "apgd_ce_l2,apgd_t_l2,square_l2 for l2", names=False))
    curve: list[str] | None = field(default=None, metadata=_help(
        "comma-separated budgets of the robust-accuracy-vs-eps curve (e.g. 0.1,0.2,0.3 or "
        "2/255,8/255; --eps and 0 are always on it), or none to skip it; default: eps times "
        "0.25,0.5,1,1.5,2, capped at the norm's largest budget"))
    curve_attacks: list[str] | None = field(default=None, metadata=_help(
        "the attacks run at each budget of the curve, e.g. apgd_ce for a cheaper curve; "
        "default: the same as --attacks", names=False))
    audit: bool = field(default=True, metadata=_help(
        "run the gradient-masking audit (Carlini et al. 2019) and report each check"))
    surrogate: str | None = field(default=None, metadata=_help(
        "run directory of another classifier of the same data: the audit's transfer check "
        "crafts PGD on it"))
    out: str = field(default="reports/robustness", metadata=_help("report directory"))

    def __post_init__(self) -> None:
        if self.norm not in ("linf", "l2"):
            raise InputError(f"--norm must be linf or l2, got {self.norm!r}")
        super().__post_init__()
        if self.eps is None:
            raise InputError("--eps is required (e.g. --eps 0.3, --eps 8/255, or --norm l2 "
                             "--eps 0.5)")
        if self.attacks is not None and not self.attacks:
            raise InputError("--attacks is empty")
        if self.curve_attacks is not None and not self.curve_attacks:
            raise InputError("--curve-attacks is empty")
        self.curve_eps()
        if self.surrogate is not None:
            if not self.audit:
                raise InputError("--surrogate is used only by the audit; drop --no-audit or "
                                 "--surrogate")
            if not Path(self.surrogate).is_dir():
                raise InputError(f"--surrogate: no such run directory {self.surrogate}")

    def curve_eps(self) -> list[float] | None:
        """The curve's budgets as given (None: the default; [] with ``none``: no curve).

        Raises:
            InputError: a value that is not a number, NaN, negative or (L-inf) above 1.
        """
        if self.curve is None:
            return None
        if [str(v).strip().lower() for v in self.curve] == ["none"]:
            return []
        if not self.curve:
            raise InputError("--curve is empty (give budgets, or none to skip the curve)")
        values = []
        for text in self.curve:
            try:
                value = parse_fraction(text)
            except InputError:
                raise InputError(f"--curve: cannot read {text!r} as a budget (use e.g. "
                                 "0.1,0.2 or 8/255, or none)") from None
            if not math.isfinite(value) or value < 0:
                raise InputError(f"--curve: budgets must be finite and >= 0, got {text!r}")
            if self.norm == "linf" and value > 1:
                raise InputError(f"--curve: {text} exceeds 1, the largest L-inf budget")
            values.append(value)
        return values

    def _eps_upper(self) -> float | None:
        return 1.0 if self.norm == "linf" else None


@dataclasses.dataclass(kw_only=True)
class DemoConfig:
    """``advforge demo``: evaluate the shipped Model B and its AI-GAN generator on mnist5k and
    write a report; --from-scratch trains them (and AdvGAN) first."""

    out: str | None = field(default=None, metadata=_help(
        "where the report (and, from scratch, the models) go; by default runs/demo, or "
        "runs/dry-run/demo with --dry-run"))
    dataset: str = field(default="mnist5k", metadata=_help(
        "dataset to run on (other than mnist5k only with --from-scratch)"))
    data_dir: str | None = field(default=None, metadata=_help("directory holding the dataset"))
    limit: int | None = field(default=None, metadata=_help(
        "evaluate on the first N test images; by default 500, and C&W L2 on at most 20"))
    seed: int = field(default=0, metadata=_help("seed for every RNG"))
    from_scratch: bool = field(default=False, metadata=_help(
        "train Model B, AI-GAN and AdvGAN first instead of using the shipped weights "
        "(about 5 minutes on one CPU core); finished runs in --out are reused"))
    retrain: bool = field(default=False, metadata=_help(
        "with --from-scratch: retrain even if finished runs exist in --out"))

    def __post_init__(self) -> None:
        check_counts(limit=self.limit)
