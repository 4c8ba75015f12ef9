"""Ensemble adversarial training (Tramer et al., ICLR 2018).

Each mini-batch takes its adversarial half from a source drawn uniformly among the static
pre-trained models and the model being trained (Tramer et al.'s ``train_adv.py``), with an
attack drawn uniformly among ``attacks``; the loss is ``alpha CE(x, y) + (1 - alpha)
CE(x_adv, y)`` with alpha = 0.5. The attacks are the three of Wang & Yu's Sec. 4.4:

* ``fgsm``: FGSM on the source's *predicted* label, not the true one, so the model cannot
  learn to read the label from the perturbation (label leaking, Kurakin et al. 2017);
* ``pgd``: PGD of Eq. 11 (random start, 10 steps of eps/4) on the true label;
* ``fgsm_ll``: the least-likely-class step of Eq. 12, ``x - eps sign(grad J(x, y_LL))``.

Static models are given as classifier run directories, or trained on the spot (standard
training with their own recipe) with other architectures or seeds into ``<out>/static/``; a
run interrupted there resumes them too.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from advforge import attacks
from advforge.defenses.adversarial import MixedAdversarialObjective, check_fraction, craft
from advforge.defenses.base import DEFENSES, DefenseSettings
from advforge.errors import InputError
from advforge.training import Objective, StepContext, TrainConfig
from advforge.utils.distributed import DistInfo
from advforge.utils.modes import model_mode

logger = logging.getLogger(__name__)

ATTACKS = ("fgsm", "pgd", "fgsm_ll")


@DEFENSES.register("ensemble-at")
@dataclasses.dataclass(kw_only=True)
class EnsembleAT(DefenseSettings):
    """Ensemble adversarial training.

    Attributes:
        alpha: weight of the clean loss (0.5, Tramer et al.).
        static_models: classifier run directories used as static sources.
        static_archs: architectures to train on the spot as static sources (standard
            training, seed ``seed + 1 + i``); with neither given, one copy of ``--arch``
            with another seed is trained, as Wang & Yu's ensemble uses their model A.
        attacks: the attacks a batch draws from (fgsm, pgd, fgsm_ll).
        pgd_steps: steps of the PGD attack (step eps/4, random start).
    """

    name: ClassVar[str] = "ensemble-at"
    alpha: float = dataclasses.field(default=0.5, metadata={
        "help": "weight of the clean loss beside the adversarial half"})
    static_models: tuple[str, ...] = dataclasses.field(default=(), metadata={
        "help": "classifier run directories used as static adversarial sources"})
    static_archs: tuple[str, ...] = dataclasses.field(default=(), metadata={
        "help": "architectures trained on the spot as static sources (default: one copy of "
                "--arch with another seed when no --static-models are given)"})
    attacks: tuple[str, ...] = dataclasses.field(default=ATTACKS, metadata={
        "help": "attacks each batch draws from: fgsm (on the predicted label), pgd, fgsm_ll"})
    pgd_steps: int = dataclasses.field(default=10, metadata={
        "help": "steps of the PGD source attack (step eps/4)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("alpha", self.alpha, allow_one=False)
        self.static_models = tuple(self.static_models or ())
        self.static_archs = tuple(self.static_archs or ())
        self.attacks = tuple(self.attacks or ())
        unknown = [a for a in self.attacks if a not in ATTACKS]
        if unknown or not self.attacks:
            raise InputError(f"attacks must be a non-empty list of {', '.join(ATTACKS)}, "
                             f"got {list(self.attacks)}")
        if isinstance(self.pgd_steps, bool) or not isinstance(self.pgd_steps, int) \
                or self.pgd_steps < 1:
            raise InputError(f"pgd_steps must be a positive integer, got {self.pgd_steps!r}")
        for run_dir in self.static_models:
            if not (Path(run_dir) / "config.json").is_file():
                raise InputError(f"static model {run_dir} is not a classifier run directory "
                                 "(no config.json)")
        if self.static_archs:
            from advforge.models import MODELS

            for arch in self.static_archs:
                MODELS.get(arch)  # one-line error for an unknown name

    def prepare(self, train: TrainConfig, splits: Any, *, device: Any = "cpu",
                progress: bool = False) -> EnsembleAT:
        """Train the static models that are to be trained on the spot; the returned settings
        list every static run directory and train nothing more."""
        runs = train_static_models(self, train, splits, device=device, progress=progress)
        return dataclasses.replace(self, static_models=tuple(runs), static_archs=())

    def objective(self, splits: Any, train: TrainConfig) -> Objective:
        return EnsembleObjective(self)

    def static_runs(self, train: TrainConfig) -> list[tuple[str, int, Path]]:
        """(arch, seed, run dir) of every static model to train on the spot."""
        archs = list(self.static_archs)
        if not archs and not self.static_models:
            archs = [train.arch]
        root = Path(train.out) / "static"
        return [(arch, train.seed + 1 + i, root / f"{arch}-seed{train.seed + 1 + i}")
                for i, arch in enumerate(archs)]


def train_static_models(settings: EnsembleAT, train: TrainConfig, splits: Any, *,
                        device: Any = "cpu", progress: bool = False) -> list[str]:
    """Train (or finish, or reuse) the static models of ``settings.static_runs``; return
    every static run directory, the given ones first."""
    from advforge.models.recipes import find_recipe
    from advforge.training import fit

    done = list(settings.static_models)
    for arch, seed, run_dir in settings.static_runs(train):
        recipe = find_recipe("classifier", arch, splits.name)
        base = dict(recipe.settings) if recipe else {}
        state = run_dir / "train_state.safetensors"
        if (run_dir / "model.safetensors").is_file() and not state.is_file():
            done.append(str(run_dir))  # finished earlier (the state is removed at the end)
            continue
        cfg = TrainConfig(**{**base, "arch": arch, "dataset": splits.name, "seed": seed,
                             "out": str(run_dir), "resume": state.is_file(),
                             "data_dir": train.data_dir, "limit_train": train.limit_train,
                             "limit_test": train.limit_test})
        logger.info("training static model %s (seed %d) into %s", arch, seed, run_dir)
        fit(cfg, splits, device=device, progress=progress)
        state.unlink(missing_ok=True)
        done.append(str(run_dir))
    return done


class EnsembleObjective(MixedAdversarialObjective):
    """Mixed clean/adversarial loss with the adversarial half from a random source."""

    def __init__(self, settings: EnsembleAT) -> None:
        super().__init__(settings.name, dataclasses.asdict(settings), None, settings.eps,
                         settings.alpha)
        self.attack_names = settings.attacks
        self.pgd_steps = settings.pgd_steps
        self.run_dirs = list(settings.static_models)
        self.static: list[nn.Module] = []

    def setup(self, module: nn.Module, info: DistInfo) -> None:
        from advforge.models import load_model

        self.static = []
        for run_dir in self.run_dirs:
            model = load_model(run_dir).to(info.device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            if (model.in_channels, model.num_classes) != (module.in_channels,
                                                          module.num_classes):
                raise InputError(f"static model {run_dir} takes {model.in_channels} channels "
                                 f"and {model.num_classes} classes, the trained model "
                                 f"{module.in_channels} and {module.num_classes}")
            self.static.append(model)

    def build_attack(self, name: str) -> Any:
        if name == "pgd":
            return attacks.create("pgd", eps=self.eps, steps=self.pgd_steps,
                                  step_size=self.eps / 4, random_start=True)
        return attacks.create(name, eps=self.eps)

    def adversarial(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pick = torch.randint(len(self.static) + 1, (1,), generator=ctx.generator,
                             device=ctx.generator.device)
        kind = torch.randint(len(self.attack_names), (1,), generator=ctx.generator,
                             device=ctx.generator.device)
        name = self.attack_names[int(kind)]
        source = ctx.module if int(pick) == len(self.static) else self.static[int(pick)]
        if name == "fgsm":  # the source's own prediction: no label leaking
            with torch.no_grad(), model_mode(source, "eval"):
                y = source(x).argmax(1)
        with model_mode(source, "eval"):
            return source_attack(self.build_attack(name), source, x, y, ctx)


def source_attack(attack: Any, source: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  ctx: StepContext) -> torch.Tensor:
    """Run ``attack`` against ``source`` (the current model goes through :func:`craft`)."""
    if source is ctx.module:
        return craft(ctx, attack, x, y)
    return attack(source, x, y, generator=ctx.generator)
