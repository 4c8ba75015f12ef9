"""AI-GAN's config: the shared generator, discriminator and training sections, plus its own
objective, attacker A, SimCLR pre-training and black-box sections.

The defaults train the lean generator: a shuffle G (every layer on the H/4 grid) learning
from the target term alone, forging in bfloat16 where the device runs it natively: it
forges in under 1/100 of targeted PGD-20's time, with about PGD-20's success, a few points
below PGD-100's (docs/aigan.md, "The default generator"). :data:`PAPER_CONFIG`
(``configs/aigan_paper.yaml``) is the paper's AI-GAN (Bai et al., Sec. IV-V): U-Net G, D
with the attacker A, SimCLR pre-training. docs/aigan.md says where and why either departs
from the paper and what each option was measured to do. Every leaf also has a flat name (the
CLI flag); see :mod:`advforge.generative.config`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from advforge.data.augment import check_augment
from advforge.errors import InputError
from advforge.generative.config import (
    DiscriminatorConfig,
    GeneratorConfig,
    TrainingConfig,
    check_eps,
    check_min,
    check_positive,
    from_flat,
    leaf,
    section,
)
from advforge.generative.substitute import AUTO
from advforge.utils.precision import PRECISIONS


@dataclasses.dataclass
class AIGANTraining(TrainingConfig):
    """Optimiser, schedule, evaluation and seed, plus the weight average of G that serves and
    the precision it forges in."""

    epochs: int = leaf(150, "training epochs (a resumed run continues up to this count)")
    batch_size: int = leaf(64, "minibatch size")

    g_ema: float = leaf(0.0, "decay of an exponential moving average of G's weights, which "
                        "then attacks and is saved (0 = off: the last iterate)")
    augment: str = leaf(
        "none", "augmentation of the training images before G sees them: none, shift (random "
        "shifts up to 12.5%), crop_flip (pad 4, crop, h-flip) or auto; it widens the few "
        "thousand images a generator otherwise learns by heart")
    inference_precision: str = leaf(
        "auto", "precision the trained G forges in: auto (bfloat16 where the device runs it "
        "natively and its held-out success is within 0.5 points of float32's), float32 or "
        "bfloat16")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.g_ema < 1.0:
            raise InputError(f"g_ema must be in [0, 1), got {self.g_ema}")
        check_augment(self.augment)
        if self.inference_precision not in ("auto", *PRECISIONS):
            raise InputError(f"inference_precision must be auto, float32 or bfloat16, got "
                             f"{self.inference_precision!r}")


@dataclasses.dataclass
class AIGANObjective:
    """The terms of G's loss (Eq. 9, Eq. 10, -L_S of Eq. 6) and how targets are drawn."""

    target_loss: str = leaf("cw", "cw (the C&W margin Sec. V-B applies) or ce (Eq. 9 as "
                            "printed: the target's log-probability of t)")
    kappa: float = leaf(5.0, "C&W confidence of the target term, in logits (paper: 0)")
    w_target: float = leaf(10.0, "weight of the target model's term (Eq. 9) in G's loss")
    w_disc_class: float = leaf(0.0, "weight of D's class-head term (Eq. 10) in G's loss "
                               "(paper config: 1; with w_gan 0 no D is trained)")
    w_gan: float = leaf(0.0, "weight of the source term -L_S (Eq. 6) in G's loss (paper "
                        "config: 0.1)")
    disc_terms_schedule: str = leaf("constant", "constant, or cosine: D's two terms in G's "
                                    "loss follow the learning rate down to 0")
    gan_loss: str = leaf("bce", "bce (Eq. 6's log-likelihood) or lsgan")
    target_focus: float = leaf(0.0, "share of targets drawn by their running failure rate "
                               "(0 = Algorithm 1's uniform draw)")

    @property
    def uses_discriminator(self) -> bool:
        """Whether D's terms weigh in G's loss. When neither does, D (and its attacker A)
        would train for nothing: the trainer builds neither and G learns from the target
        term alone, at a fraction of the cost per step."""
        return self.w_disc_class > 0 or self.w_gan > 0

    def __post_init__(self) -> None:
        if self.kappa < 0:
            raise InputError(f"kappa must be >= 0, got {self.kappa}")
        if not 0.0 <= self.target_focus <= 1.0:
            raise InputError(f"target_focus must be in [0, 1], got {self.target_focus}")
        if self.gan_loss not in ("bce", "lsgan"):
            raise InputError(f"gan_loss must be bce or lsgan, got {self.gan_loss!r}")
        if self.target_loss not in ("cw", "ce"):
            raise InputError(f"target_loss must be cw or ce, got {self.target_loss!r}")
        if self.disc_terms_schedule not in ("constant", "cosine"):
            raise InputError("disc_terms_schedule must be constant or cosine, got "
                             f"{self.disc_terms_schedule!r}")


@dataclasses.dataclass
class AttackerConfig:
    """The attacker A: untargeted PGD on D's class head (Eq. 7)."""

    enabled: bool = leaf(True, "train D's class head on PGD examples (Eq. 7); off for the "
                         "ablation", "attacker")
    steps: int = leaf(7, "PGD steps of A (paper: 7)", "attacker_steps")
    step_size: float | None = leaf(None, "PGD step; default 2.5 * eps / attacker_steps",
                                   "attacker_step_size")
    warmup_epochs: float = leaf(2.0, "A's eps grows linearly from 0 over these epochs",
                                "attacker_warmup_epochs")

    def __post_init__(self) -> None:
        check_min(self, {"warmup_epochs": "attacker_warmup_epochs"}, 0)
        check_min(self, {"steps": "attacker_steps"}, 1)


@dataclasses.dataclass
class PretrainConfig:
    """SimCLR pre-training of G's encoder (Sec. IV-C, Eq. 11)."""

    enabled: bool = leaf(False, "SimCLR pre-training of G's encoder before the GAN (paper "
                         "config: on)", "pretrain")
    epochs: int = leaf(2, "SimCLR epochs", "pretrain_epochs")
    lr: float = leaf(0.001, "SimCLR Adam learning rate", "pretrain_lr")
    tau: float = leaf(0.5, "SimCLR temperature of Eq. 11")

    def __post_init__(self) -> None:
        check_min(self, {"epochs": "pretrain_epochs"}, 0)
        check_positive(self, {"lr": "pretrain_lr", "tau": "tau"})


@dataclasses.dataclass
class BlackBoxConfig:
    """Dynamic distillation (Sec. V-D): G attacks a local model f_d distilled from the
    query-only target."""

    enabled: bool = leaf(False, "attack a local model distilled from the query-only target",
                         "black_box")
    local_arch: str | None = leaf(AUTO, "the local model: auto (chosen from queries by "
                                  "targeted transfer) or a registry name (paper: model_c)")
    local_select_images: int = leaf(2048, "images local_arch=auto scores candidates on")
    distill_lr: float = leaf(0.001, "Adam learning rate of the local model")
    distill_steps: int = leaf(1, "distillation updates of f_d after every GAN update")
    distill_temperature: float = leaf(1.0, "softmax temperature of the distillation loss")
    distill_warmup_epochs: int = leaf(2, "distillation epochs on clean images before the GAN")
    distill_miss_weight: float = leaf(1.0, "loss weight of generated images the target "
                                      "resisted (1 = plain distillation)")
    distill_probe_steps: int = leaf(5, "targeted PGD steps on f_d whose examples f_d also "
                                    "distils (0 = plain distillation)")
    local_shift: int = leaf(0, "random translation (pixels) of G's images before f_d judges "
                            "them (0 = off)")
    query_samples: int = leaf(0, "NES direction pairs estimating the target's own margin "
                              "gradient (0 = off)")
    query_sigma: float = leaf(0.01, "NES finite-difference step on the [0, 1] scale")
    query_weight: float = leaf(1.0, "weight of the NES target term relative to f_d's")

    def __post_init__(self) -> None:
        check_min(self, {"distill_warmup_epochs": "distill_warmup_epochs",
                         "query_samples": "query_samples",
                         "distill_probe_steps": "distill_probe_steps",
                         "local_shift": "local_shift"}, 0)
        if not (self.query_sigma > 0 and math.isfinite(self.query_sigma)):
            raise InputError(f"query_sigma must be > 0, got {self.query_sigma}")
        if not (self.query_weight >= 0 and math.isfinite(self.query_weight)):
            raise InputError(f"query_weight must be >= 0, got {self.query_weight}")
        check_min(self, {"distill_steps": "distill_steps",
                         "local_select_images": "local_select_images"}, 1)
        check_positive(self, {"distill_lr": "distill_lr",
                              "distill_temperature": "distill_temperature"})
        if not 0.0 < self.distill_miss_weight <= 1.0:
            raise InputError(
                f"distill_miss_weight must be in (0, 1], got {self.distill_miss_weight}")
        if not math.isfinite(self.distill_temperature):
            raise InputError(f"distill_temperature must be finite, got {self.distill_temperature}")
        if self.local_arch is not None and self.local_arch != AUTO:
            from advforge import models  # the registry imports the package's nets

            if self.local_arch not in models.names():
                raise InputError(f"local_arch {self.local_arch!r} is not a model or 'auto'; "
                                 f"known: {', '.join(models.names())}")


def _aigan_generator() -> GeneratorConfig:
    """The lean default G: every layer on the H/4 grid, 64 channels, two conditional residual
    blocks, a per-class template (docs/aigan.md, "The default generator")."""
    return GeneratorConfig(arch="shuffle", ch=64, res_blocks=2, template=True)


# The configuration of the paper's AI-GAN as this package trained it before the lean default
# (U-Net G, D with its attacker A, SimCLR pre-training, 40 epochs): configs/aigan_paper.yaml.
PAPER_CONFIG: dict[str, Any] = {
    "g_arch": "unet", "g_ch": 32, "g_res_blocks": 1, "g_template": False, "kappa": 20.0,
    "w_disc_class": 1.0, "w_gan": 0.1, "pretrain": True, "epochs": 40, "batch_size": 32,
    "inference_precision": "float32"}


@dataclasses.dataclass
class AIGANConfig:
    """Hyperparameters of ``advforge train-attacker aigan``.

    Build one from flat names with :meth:`from_flat` (``AIGANConfig.from_flat({"epochs": 40,
    "g_ch": 16})``), as the CLI, YAML files and recipes do.

    Attributes:
        eps: L-inf budget of G's perturbations and of the attacker A, on the [0, 1] scale.
        generator: G's architecture (shared with AdvGAN).
        discriminator: D's architecture.
        attacker: the PGD attacker A of Eq. 7.
        objective: G's loss terms and the target draw.
        pretrain: SimCLR pre-training of G's encoder.
        black_box: dynamic distillation (Sec. V-D).
        training: optimiser, schedule, evaluation, seed and G's weight average.
    """

    # What a run recorded without a field did, where that differs from today's default
    # (read by config.with_config_defaults: resume checks, benchmark caches).
    PREDATED: ClassVar[dict[str, Any]] = {"distill_probe_steps": 0, "local_arch": None,
                                          "inference_precision": "float32"}

    eps: float = leaf(0.3, "L-inf budget of G and of A, on the [0, 1] scale")
    generator: GeneratorConfig = section(_aigan_generator, "generator")
    discriminator: DiscriminatorConfig = section(DiscriminatorConfig, "discriminator/attacker")
    attacker: AttackerConfig = section(AttackerConfig, "discriminator/attacker")
    objective: AIGANObjective = section(AIGANObjective, "training")
    pretrain: PretrainConfig = section(PretrainConfig, "training")
    black_box: BlackBoxConfig = section(BlackBoxConfig, "black-box")
    training: AIGANTraining = section(AIGANTraining, "training")

    def __post_init__(self) -> None:
        check_eps(self.eps)
        bb = self.black_box
        if bb.query_samples and not bb.enabled:
            raise InputError("query_samples estimates the target's gradient in black-box mode; "
                             "white-box AI-GAN has the exact one")
        if bb.local_shift and not bb.enabled:
            raise InputError("local_shift acts on the local model of black-box mode; "
                             "white-box AI-GAN has none")

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> AIGANConfig:
        """The config from flat names (``g_ch``, ``epochs``, ``black_box``, ...)."""
        return from_flat(cls, values)

    @property
    def pgd_step_size(self) -> float:
        """A's PGD step: ``attacker_step_size``, or Madry et al.'s 2.5 * eps / steps."""
        return self.attacker.step_size or 2.5 * self.eps / self.attacker.steps
