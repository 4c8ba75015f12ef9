"""AI-GAN: Attack-Inspired GAN (Bai et al., "Towards Efficiently Evaluating the Robustness of
Deep Neural Networks in IoT Systems: A GAN-based Method", Sec. IV, Algorithm 1).

A conditional generator G(x, t) forges a targeted perturbation in one forward pass; a two-head
discriminator D separates clean from perturbed images (source head, Eq. 6) and classifies both
G's examples (Eq. 8) and untargeted PGD-7 examples made against its own class head (Eq. 7), so
the class head is adversarially robust and G has to produce stronger attacks to fool it.

Choices where the paper is silent, loose or self-contradictory (all are :class:`AIGANConfig`
fields; the numbers are ours, Model B on mnist5k, eps 0.3, 1 CPU thread, see the notes):

* Target term. Eq. 9 and Algorithm 1 write the target's log-probability of t (cross-entropy);
  Sec. V-B says the C&W loss is applied. Both are offered (``target_loss``). The default is
  the C&W margin max(max_{i != t} Z_i - Z_t, -kappa) with kappa = 20 logits. Its gradient
  stays the same size until an example is kappa logits past its strongest rival, where
  cross-entropy's fades as p_t nears 1 and is spread over every class; clean Model B margins
  are 8-12 logits, so the cap is seldom reached and only keeps the logits from running away.
  The paper's kappa = 0 stops at the boundary, so held-out examples land on both sides of it.
  Fashion-MNIST, eps 0.1, Model B, 4,000 images x 40 epochs: cross-entropy 93.07%, kappa 2
  92.63%, kappa 8 94.42%, kappa 20 94.64%; mnist5k Model B, 10 epochs: 86.16% vs 86.05%
  (kappa 20); after 5 epochs kappa 0 had trailed cross-entropy (72% vs 76%).
* Loss weights. The paper sums its three terms; their scales depend on the loss forms. With
  unit weights the source-head term wins and success collapses (8% after 10 epochs): the
  default weighs the target term by 10 (as AdvGAN's released code does) and -L_S by 0.1.
  The margin is in logits, so it outweighs D's terms by more than cross-entropy did; part
  of its gain may be that (G trained on the target model alone: 94.18% on the fashion run
  above), but it keeps D's terms and scores higher.
* The generator maximises -L_S through its only G-dependent part, in the non-saturating
  form log P(S = clean | x_pert) (Goodfellow et al.), rather than Algorithm 1's saturating
  -log P(S = pert | x_pert). D's step reuses the (detached) x_pert of the G step, as
  Algorithm 1 does.
* The attacker A is PGD-7 with Madry et al.'s step 2.5 * eps / steps. Its eps ramps up over
  the first ``attacker_warmup_epochs`` (curriculum adversarial training): at the full eps
  from step one, D's class head stays at chance. With ``attacker=False`` (the ablation) the
  class head sees the clean x in place of x_atk.
* D has no spectral norm by default: with it the class head cannot become robust (4% PGD
  accuracy after 6 epochs vs 65% without).
* Batch 32 and a cosine decay of the paper's lr 0.002: the paper's batch 256 gives 235 steps
  per MNIST epoch but only 16 on mnist5k's 4,000 images (71% vs 78% after 10 epochs).
* Generator width 32 (AdvGAN's per-target generators keep 16): 83.7% vs 81.6% on Model B
  after 10 epochs, at 1.5x the time; three bottleneck blocks instead of one add nothing.
* Adam betas (0.5, 0.999), the usual GAN setting (0.9: 76.1% vs 77.6% after 5 epochs).
* The perturbation's squashing (``g_output``). The paper's eps * tanh, then a clamp to
  [0, 1], wastes the part of tanh's range the clamp cuts off and passes no gradient there,
  which on MNIST (most pixels 0) and Fashion-MNIST is much of the image. The default
  ``"box"`` spans each pixel's feasible interval [max(0, x - eps), min(1, x + eps)] with a
  sigmoid: the same function as eps * tanh(h / 2) away from the walls, and the L-inf bound
  still holds exactly. After 5 epochs: 77.6% vs 76.9% (Model B, mnist5k, eps 0.3) and
  67.0% vs 64.6% (Model B, Fashion-MNIST, eps 0.1, 500 test images).
* Target draw (``target_focus``). Algorithm 1 samples t uniformly; drawing half of the
  targets in proportion to their running failure rate lifts the weakest target (fashion-mnist
  at eps 0.1, 4,000 images, 40 epochs: sneaker 74.0% -> 79.6%) but the others give most of it
  back (all pairs 92.23% -> 92.57%; on 16,000 images 95.96% -> 95.98%). Off by default
  (:mod:`.targets`). In black-box mode with the paper's Model C substitute it is the
  setting that reaches the 0.90 bar on Model A (mnist5k, 20 epochs, with probes: 92.26%,
  class 1 62.2%, against white-box 98.72%, or 99.07% with the focus: 0.93 either way;
  unpaired); with the substitute ``local_arch="auto"`` picks it adds about a point (Model B,
  10 epochs: 80.04% against 79.12%).
* Generator layout (``g_arch``). The default U-Net does its first and last convolutions at
  full resolution; ``"shuffle"`` runs every layer on the H/4 grid after a pixel unshuffle
  (:class:`~.nets.ShuffleGenerator`). Model B, mnist5k, 40 epochs: width 48 scores 83.58%
  (80 epochs: 85.71%; the U-Net of width 32: 90.76%) and forges in 1/110 to 1/136 of
  PGD-20's time, where the width-32 U-Net takes 1/6 and a width-8 U-Net of the same success
  1/34 (README, Table VI).
* Black-box mode (Sec. V-D) swaps the target for a local model distilled from the
  query-only target after every update (:mod:`advforge.generative.distill`). A generator
  trained white-box on a label-trained Model C fools it on 93.84% of pairs (10 epochs; Model
  B: 86.05%), while the black-box one fools its distilled Model C on 71%: what G meets is
  a substitute re-trained, after every update, on the target's answers to G's examples.
  By default (``distill_probe_steps=5``; 0 is the paper's plain distillation) f_d also
  distils the target's answers on targeted PGD examples made against f_d itself (Papernot
  et al. 2017's augmentation, iterated): 79.49% against 76.62% after 40 epochs, 0.88 of the
  white-box 90.76%. What decides most of the gap is f_d's architecture, so by default
  (``local_arch="auto"``; the paper fixes Model C) f_d is chosen among candidates by how
  often their targeted PGD examples fool the target, from queries alone
  (:mod:`.substitute`): it picks Model B for a Model B target, and 10 black-box epochs
  then reach 80.04% against Model C's 70.28%, 0.918 of white-box (79.12%, 0.907, with every
  default); for Model A it picks Model A: 96.80% after 20 epochs, 0.981. Options, off (README,
  black-box section): ``query_samples``, an NES estimate of the target's own margin
  gradient (did not help); ``local_shift``, random translations of what f_d judges in G's
  step (input diversity; did not help).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from advforge import __version__
from advforge.attacks import create as create_attack
from advforge.data.augment import random_translate
from advforge.errors import InputError
from advforge.generative import loop
from advforge.generative.common import (
    Progress,
    as_tensors,
    check_gan_config,
    cw_target_loss,
    descend,
    gan_loss,
    heldout_success,
    jsonable,
    model_device,
    model_identity,
    run_arch,
)
from advforge.generative.distill import (
    Distiller,
    QueryOnly,
    make_local_model,
    probe_attack,
    query_gradient,
)
from advforge.generative.ema import WeightAverage
from advforge.generative.nets import (
    ClassHead,
    Discriminator,
    PerturbationGenerator,
    build_generator,
)
from advforge.generative.parallel import sum_over_ranks
from advforge.generative.simclr import pretrain_encoder
from advforge.generative.state import has_training_state, read_training_meta, write_checkpoint
from advforge.generative.substitute import AUTO, candidate_archs, select_substitute
from advforge.generative.targets import TargetSampler, sample_targets
from advforge.utils.modes import model_mode

log = logging.getLogger(__name__)

@dataclasses.dataclass
class AIGANConfig:
    """Hyperparameters of ``advforge train-attacker aigan`` (paper defaults where it has them).

    Attributes:
        eps: L-inf budget of G's perturbations and of the attacker A, on the [0, 1] scale.
        epochs: GAN epochs (a resumed run continues up to this count).
        batch_size: minibatch size (paper: 256; see the module docstring).
        lr: Adam learning rate of G and D (paper: 0.002).
        lr_schedule: ``"constant"`` (the paper) or ``"cosine"`` decay to 0 over ``epochs``.
        beta1, beta2: Adam betas.
        target_loss: ``"cw"`` (the C&W margin Sec. V-B says the paper applies) or ``"ce"``
            (Eq. 9 as printed: the target model's log-probability of t).
        kappa: C&W confidence of the target term in logits (paper: 0; see the module
            docstring for why 20).
        w_target: weight of the target model's term in G's loss (Eq. 9).
        w_disc_class: weight of D's class head term in G's loss (Eq. 10).
        w_gan: weight of the source term -L_S in G's loss (Eq. 6).
        disc_terms_schedule: ``"constant"`` (the paper: Eq. 10 and -L_S keep their weights)
            or ``"cosine"`` (both weights follow the learning rate's half cosine down to 0,
            so D guides G early and the target model alone shapes the end of training).
        gan_loss: ``"bce"`` (Eq. 6's log-likelihood) or ``"lsgan"``.
        attacker: train D's class head on PGD examples (Eq. 7); False for the ablation.
        attacker_steps: PGD steps of A (paper: 7).
        attacker_step_size: PGD step; None means 2.5 * eps / attacker_steps.
        attacker_warmup_epochs: A's eps grows linearly from 0 to eps over these epochs
            (curriculum adversarial training; 0 = the full eps from the first step).
        pretrain: SimCLR pre-training of G's encoder (Sec. IV-C) before the GAN.
        pretrain_epochs: SimCLR epochs.
        pretrain_lr: SimCLR Adam learning rate.
        tau: SimCLR temperature of Eq. 11 (paper: 0.5).
        black_box: dynamic distillation (Sec. V-D): attack a local model, query the target.
        local_arch: black-box only: the local model. ``"auto"`` (default) = the candidate
            whose distilled copy's targeted PGD examples transfer best to the target,
            measured with queries before the GAN starts (:mod:`.substitute`); a registry
            name fixes it; None = the paper's Model C (<= 28 px) / ResNet20.
        local_select_images: images ``local_arch="auto"`` measures each candidate's transfer
            on (one query each per candidate; the first of the training images). 512 could
            not separate the candidates on fashion-mnist at eps 0.1.
        distill_lr: Adam rate of the local model.
        distill_steps: distillation updates of f_d after every AI-GAN update.
        distill_temperature: softmax temperature of the distillation loss (1 = plain KL on
            the target's probabilities; > 1 tempers both sides, Hinton et al. 2015).
        distill_warmup_epochs: distillation epochs on clean images before the GAN starts.
        distill_miss_weight: weight in the distillation loss of a generated image the target
            resisted, against 1 for the others (1 = the paper's plain distillation); see
            :class:`~advforge.generative.distill.Distiller`.
        distill_probe_steps: black-box only: steps of a targeted PGD (C&W margin, the G
            step's targets and eps) run against f_d after every AI-GAN update; the target is
            queried on its examples too and f_d distils them beside the clean and generated
            images (B more queries per step; 0 = the paper's plain distillation). Papernot et
            al. (2017)'s Jacobian-based augmentation, iterated: it shows f_d the target's
            answer where f_d's own gradient leads, so the directions G learns from f_d are
            corrected before G commits to them. Default 5: on mnist5k Model B it raised
            black-box success from 76.62% to 79.49% after 40 epochs (66.84% -> 68.98% after
            10) for 1.4x the training time and 1.5x the queries. Ignored in white-box mode.
            See :func:`~advforge.generative.distill.probe_attack`.
        local_shift: black-box only: in G's step, each generated image is translated by a
            random whole-pixel offset of up to this many pixels before the local model judges
            it (Xie et al. 2019's input diversity, for transfer to the target's unknown
            architecture; 0 = off, the paper). See
            :func:`~advforge.data.augment.random_translate`.
        query_samples: black-box only: antithetic NES direction pairs per generated image
            with which the target's own margin gradient is estimated from queries and added
            to G's target term (2 * query_samples extra queries per image and step; 0 = off,
            the paper: G learns from f_d alone); see
            :func:`~advforge.generative.distill.query_gradient`.
        query_sigma: the estimator's finite-difference step on the [0, 1] scale.
        query_weight: weight of the estimated target term relative to f_d's (both times
            ``w_target``).
        target_focus: share of training targets drawn in proportion to each target's running
            failure rate (0 = Algorithm 1's uniform draw); see :mod:`.targets`.
        g_arch: ``"unet"`` (the encoder-decoder with U-Net skips) or ``"shuffle"`` (the same
            stages on the H/4 grid after a pixel unshuffle: 18x faster to forge, less successful;
            see :class:`~advforge.generative.nets.ShuffleGenerator`).
        g_ch: generator base width (unet: bottleneck 4 * g_ch channels; shuffle: every
            layer's width).
        g_res_blocks: conditional residual blocks at the generator's bottleneck.
        g_template: add a learned per-class template before the output squashing.
        g_skip: U-Net additive skips from the encoder to the decoder.
        g_output: "box" (sigmoid over each pixel's feasible interval) or "tanh" (the paper's
            eps * tanh, then clamp); see :mod:`.nets`.
        g_ema: decay of an exponential moving average of G's weights, which is then what
            attacks and what the checkpoint holds (0 = off: the last iterate, as the paper);
            see :mod:`.ema`.
        d_ch: discriminator base width.
        spectral_norm: spectral normalisation in D (off: it keeps the class head weak).
        eval_size: held-out images for the final all-targets success (0 to skip).
        seed: seeds the networks, batch order, targets, augmentations and PGD starts.
    """

    # What a run saved before a field existed did, where that differs from today's default
    # (read by common.with_config_defaults: resume checks, benchmark caches).
    PREDATED: ClassVar[dict[str, Any]] = {"distill_probe_steps": 0, "local_arch": None}

    eps: float = 0.3
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.002
    lr_schedule: str = "cosine"
    beta1: float = 0.5
    beta2: float = 0.999
    target_loss: str = "cw"
    kappa: float = 20.0
    w_target: float = 10.0
    w_disc_class: float = 1.0
    w_gan: float = 0.1
    disc_terms_schedule: str = "constant"
    gan_loss: str = "bce"
    attacker: bool = True
    attacker_steps: int = 7
    attacker_step_size: float | None = None
    attacker_warmup_epochs: float = 2.0
    pretrain: bool = True
    pretrain_epochs: int = 2
    pretrain_lr: float = 0.001
    tau: float = 0.5
    black_box: bool = False
    local_arch: str | None = AUTO
    local_select_images: int = 2048
    distill_lr: float = 0.001
    distill_steps: int = 1
    distill_temperature: float = 1.0
    distill_warmup_epochs: int = 2
    distill_miss_weight: float = 1.0
    distill_probe_steps: int = 5
    local_shift: int = 0
    query_samples: int = 0
    query_sigma: float = 0.01
    query_weight: float = 1.0
    target_focus: float = 0.0
    g_arch: str = "unet"
    g_ch: int = 32
    g_res_blocks: int = 1
    g_template: bool = False
    g_skip: bool = True
    g_output: str = "box"
    g_ema: float = 0.0
    d_ch: int = 16
    spectral_norm: bool = False
    eval_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        check_gan_config(self)
        for name in ("pretrain_epochs", "distill_warmup_epochs", "attacker_warmup_epochs"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("query_samples", "distill_probe_steps", "local_shift"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.query_samples and not self.black_box:
            raise InputError("query_samples estimates the target's gradient in black-box mode; "
                             "white-box AI-GAN has the exact one")
        if self.local_shift and not self.black_box:
            raise InputError("local_shift acts on the local model of black-box mode; "
                             "white-box AI-GAN has none")
        if not (self.query_sigma > 0 and math.isfinite(self.query_sigma)):
            raise InputError(f"query_sigma must be > 0, got {self.query_sigma}")
        if not (self.query_weight >= 0 and math.isfinite(self.query_weight)):
            raise InputError(f"query_weight must be >= 0, got {self.query_weight}")
        for name in ("attacker_steps", "distill_steps", "local_select_images"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("pretrain_lr", "distill_lr", "distill_temperature", "tau"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.g_ema < 1.0:
            raise InputError(f"g_ema must be in [0, 1), got {self.g_ema}")
        if not 0.0 <= self.target_focus <= 1.0:
            raise InputError(f"target_focus must be in [0, 1], got {self.target_focus}")
        if not 0.0 < self.distill_miss_weight <= 1.0:
            raise InputError(
                f"distill_miss_weight must be in (0, 1], got {self.distill_miss_weight}")
        if not math.isfinite(self.distill_temperature):
            raise InputError(f"distill_temperature must be finite, got {self.distill_temperature}")
        if self.gan_loss not in ("bce", "lsgan"):
            raise InputError(f"gan_loss must be bce or lsgan, got {self.gan_loss!r}")
        if self.target_loss not in ("cw", "ce"):
            raise InputError(f"target_loss must be cw or ce, got {self.target_loss!r}")
        if self.disc_terms_schedule not in ("constant", "cosine"):
            raise InputError("disc_terms_schedule must be constant or cosine, got "
                             f"{self.disc_terms_schedule!r}")
        if self.local_arch is not None and self.local_arch != AUTO:
            from advforge import models  # the registry imports the package's nets

            if self.local_arch not in models.names():
                raise InputError(f"local_arch {self.local_arch!r} is not a model or 'auto'; "
                                 f"known: {', '.join(models.names())}")

    @property
    def pgd_step_size(self) -> float:
        return self.attacker_step_size or 2.5 * self.eps / self.attacker_steps


class AIGANTrainer:
    """The networks, optimizers and RNG of one AI-GAN run, with Algorithm 1's two steps.

    Args:
        cfg: hyperparameters.
        target: the target classifier (images in [0, 1] -> logits). In black-box mode it is
            only ever called through :class:`QueryOnly`.
        num_classes, in_channels, image_size: the data's shape.
        local_model: the local model f_d for black-box mode, used as it is (if None, built
            from the registry, or chosen among candidates with ``local_arch="auto"``).
        data_stats: per-channel (mean, std) of the training images, for the local model.
    """

    def __init__(
        self, cfg: AIGANConfig, target: nn.Module, *, num_classes: int, in_channels: int,
        image_size: int, local_model: nn.Module | None = None,
        data_stats: tuple[list[float], list[float]] | None = None,
    ) -> None:
        self.cfg, self.num_classes = cfg, num_classes
        self.device = device = model_device(target)
        self.target_identity = model_identity(target)  # bookkeeping only (a weights hash)
        self.target_sha256 = self.target_identity["weights_sha256"]  # checked on resume
        torch.manual_seed(cfg.seed)  # network initialisation
        self.G = build_generator(cfg.g_arch, in_channels, image_size, num_classes, cfg.eps,
                                 ch=cfg.g_ch, res_blocks=cfg.g_res_blocks,
                                 template=cfg.g_template, skip=cfg.g_skip,
                                 output=cfg.g_output).to(device)
        # The averaged G (when on) is what forges at evaluation and what the checkpoint holds.
        self.G_avg = WeightAverage(self.G, cfg.g_ema) if cfg.g_ema > 0 else None
        self.D = Discriminator(in_channels, num_classes, ch=cfg.d_ch,
                               spectral=cfg.spectral_norm).to(device)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.attacker = None
        if cfg.attacker:  # A: untargeted PGD on D's class head (Eq. 7)
            self.attacker = create_attack("pgd", eps=cfg.eps, steps=cfg.attacker_steps,
                                          step_size=cfg.pgd_step_size, random_start=True)
        self.rng = torch.Generator(device=device).manual_seed(cfg.seed)
        self.disc_factor = 1.0  # scales Eq. 10 and -L_S in G's loss; set by schedule()
        self.targets = TargetSampler(num_classes, cfg.target_focus).to(device)
        self.distiller: Distiller | None = None
        self.selects_local = False
        if cfg.black_box:
            mean, std = data_stats or ([0.5] * in_channels, [0.5] * in_channels)
            self.image_shape = (in_channels, image_size)
            self.local_stats = (mean, std)
            self.oracle = QueryOnly(target)  # the only handle on the target from here on
            # "auto" (unless the caller built f_d) chooses in _pre_phases, from queries; until
            # then f_d is the first candidate, the paper's choice
            self.selects_local = cfg.local_arch == AUTO and local_model is None
            if local_model is None:
                arch = (candidate_archs(image_size)[0] if cfg.local_arch == AUTO
                        else cfg.local_arch or ("model_c" if image_size <= 28 else "resnet20"))
                self.use_local(arch)
            else:  # a caller-built f_d is used as it is, whatever local_arch says
                self.use_local(type(getattr(local_model, "net", local_model)).__name__,
                               self.new_distiller(local_model))
            self.prober = (probe_attack(cfg.eps, cfg.distill_probe_steps, cfg.kappa)
                           if cfg.distill_probe_steps else None)
        else:
            self.attacked = self.judge = target

    def build_local(self, arch: str) -> nn.Module:
        """A fresh, untrained local model of a registry architecture, sized for the data."""
        (in_channels, image_size), (mean, std) = self.image_shape, self.local_stats
        return make_local_model(arch, num_classes=self.num_classes, in_channels=in_channels,
                                image_size=image_size, mean=mean, std=std).to(self.device)

    def new_distiller(self, local: nn.Module) -> Distiller:
        """The run's distiller (its optimizer, temperature, miss weight) around ``local``."""
        cfg = self.cfg
        return Distiller(self.oracle, local.to(self.device), lr=cfg.distill_lr,
                         temperature=cfg.distill_temperature, miss_weight=cfg.distill_miss_weight)

    def use_local(self, arch: str, distiller: Distiller | None = None) -> None:
        """Attack the local model ``arch`` (a fresh one unless ``distiller`` holds it)."""
        self.local_arch = arch
        self.distiller = distiller or self.new_distiller(self.build_local(arch))
        self.attacked, self.judge = self.distiller.local, self.oracle

    @classmethod
    def for_data(cls, cfg: AIGANConfig, target: nn.Module, train: Any, *,
                 local_model: nn.Module | None = None) -> AIGANTrainer:
        """A trainer sized for ``train`` (an ImageSet or (x, y)); classes from the target."""
        x, y = as_tensors(train, "train")
        num_classes = int(getattr(target, "num_classes", 0) or int(y.max()) + 1)
        stats = (x.mean(dim=(0, 2, 3)).tolist(),
                 x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
        return cls(cfg, target, num_classes=num_classes, in_channels=x.shape[1],
                   image_size=x.shape[2], local_model=local_model, data_stats=stats)

    def schedule(self, epoch: float) -> dict[str, float]:
        """Learning rate and attacker budget for the (fractional) epoch about to run."""
        cfg = self.cfg
        lr = cfg.lr * loop.lr_factor(cfg.lr_schedule, epoch, cfg.epochs)
        loop.set_lr(lr, self.opt_g, self.opt_d)
        out = {"lr": lr}
        if cfg.disc_terms_schedule == "cosine":
            self.disc_factor = loop.lr_factor("cosine", epoch, cfg.epochs)
            out["disc_factor"] = self.disc_factor
        if self.attacker is not None:
            ramp = min(1.0, epoch / cfg.attacker_warmup_epochs) if cfg.attacker_warmup_epochs \
                else 1.0
            eps = max(cfg.eps * ramp, 1e-3)  # PGD needs eps > 0
            if eps != self.attacker.eps:
                self.attacker = dataclasses.replace(
                    self.attacker, eps=eps, step_size=cfg.pgd_step_size * eps / cfg.eps)
            out["attacker_eps"] = eps
        return out

    # ---- Generator: maximise L_target(pert) (Eq. 9) + L_D(pert) (Eq. 10) - L_S (Eq. 6) ----
    def generator_step(
        self, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One G update towards targets ``t``; returns the detached x_pert and the losses."""
        cfg = self.cfg
        self.G.train()
        x_pert = self.G.perturb(x, t)  # (B, C, H, W), ||x_pert - x||_inf <= eps
        # input diversity (local_shift): the same gather as the classifiers' shift augmentation
        judged = random_translate(x_pert, cfg.local_shift, self.rng)  # identity when 0
        with model_mode(self.attacked, "eval"):
            logits = self.attacked(judged)  # (B, K)
        if cfg.target_loss == "cw":  # -Eq. 9 via the C&W margin
            loss_target = cw_target_loss(logits, t, cfg.kappa)
        else:
            loss_target = F.cross_entropy(logits, t)
        source, cls = self.D(x_pert)
        loss_disc_class = F.cross_entropy(cls, t)  # -Eq. 10
        loss_gan = gan_loss(source, clean=True, kind=cfg.gan_loss)  # -L_S, non-saturating
        loss = (cfg.w_target * loss_target
                + self.disc_factor * (cfg.w_disc_class * loss_disc_class + cfg.w_gan * loss_gan))
        extra = {}
        if cfg.query_samples:  # black-box: the target's own margin gradient, from queries
            grad = query_gradient(self.oracle, x_pert.detach(), t, samples=cfg.query_samples,
                                  sigma=cfg.query_sigma, kappa=cfg.kappa, rng=self.rng)
            # d/dx_pert of this surrogate is grad / B: the estimate of d(mean margin)/dx_pert
            surrogate = (x_pert * grad).flatten(1).sum(1).mean()
            loss = loss + cfg.w_target * cfg.query_weight * surrogate
            extra["query_grad_norm"] = grad.flatten(1).norm(dim=1).mean().item()
        descend(self.opt_g, loss, list(self.G.parameters()))
        if self.G_avg is not None:
            self.G_avg.update(self.G)
        hit = (logits.argmax(1) == t).float()  # (B,)
        self.targets.update(t, hit)
        return x_pert.detach(), {
            "g_loss": loss.item(), "g_target": loss_target.item(),
            "g_disc_class": loss_disc_class.item(), "g_gan": loss_gan.item(),
            "train_success": hit.mean().item(), **extra}

    # ---- Discriminator: maximise L_S (Eq. 6) + L_C(adv) (Eq. 7) + L_C(pert) (Eq. 8) ----
    def discriminator_step(
        self, x: torch.Tensor, y: torch.Tensor, x_pert: torch.Tensor
    ) -> dict[str, float]:
        """One D update on clean x, G's x_pert and the attacker's x_atk (all with labels y)."""
        cfg = self.cfg
        x_atk = x
        if self.attacker is not None:  # A attacks D's current class head, untargeted
            with model_mode(self.D, "eval"):  # fixed spectral-norm estimates during PGD
                x_atk = self.attacker(ClassHead(self.D), x, y, generator=self.rng)
        self.D.train()
        source, cls = self.D(torch.cat([x, x_pert, x_atk]))  # D has no batch norm: one pass
        b = x.shape[0]
        loss_s = (gan_loss(source[:b], clean=True, kind=cfg.gan_loss)
                  + gan_loss(source[b : 2 * b], clean=False, kind=cfg.gan_loss))
        loss_pert = F.cross_entropy(cls[b : 2 * b], y)  # -Eq. 8
        loss_adv = F.cross_entropy(cls[2 * b :], y)  # -Eq. 7
        descend(self.opt_d, loss_s + loss_adv + loss_pert, list(self.D.parameters()))
        return {"d_source": loss_s.item(), "d_class_pert": loss_pert.item(),
                "d_class_adv": loss_adv.item(),
                "d_adv_acc": (cls[2 * b :].argmax(1) == y).float().mean().item()}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Algorithm 1's iteration: sample t != y, G step, D step (then distil f_d)."""
        t = self.targets.sample(y, self.rng)
        x_pert, stats = self.generator_step(x, t)
        stats.update(self.discriminator_step(x, y, x_pert))
        if self.distiller is not None:  # f_d follows every AI-GAN update (Sec. V-D)
            images, marks = [x, x_pert], [torch.full_like(t, -1), t]
            if self.prober is not None:  # where f_d's own gradient leads, towards the same t
                local = self.distiller.local
                with model_mode(local, "eval"):
                    images.append(self.prober(local, x, y, target=t, generator=self.rng))
                marks.append(t)
            images, marks = torch.cat(images), torch.cat(marks)
            for _ in range(self.cfg.distill_steps):
                stats.update(self.distiller.step(images, targets=marks))
        return stats

    @property
    def served(self) -> PerturbationGenerator:
        """The generator that attacks: G's weight average when ``g_ema`` is on, else G."""
        return self.G_avg.average if self.G_avg is not None else self.G

    def forge(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Adversarial images from the served G in eval mode (mode restored), no graph."""
        with torch.no_grad(), model_mode(self.served, "eval"):
            return self.served.perturb(x, t)

    def quick_success(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Success on up to 256 held-out images with fixed random targets (any prediction)."""
        g = torch.Generator(device=x.device).manual_seed(1234)  # apart from the training RNG
        xs, ys = x[:256], y[:256]
        t = sample_targets(ys, self.num_classes, g)
        with torch.no_grad(), model_mode(self.judge, "eval"):
            return (self.judge(self.forge(xs, t)).argmax(1) == t).float().mean().item()

    def state_parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        modules: dict[str, nn.Module] = {"G": self.G, "D": self.D}
        if self.G_avg is not None:
            modules["G_avg"] = self.G_avg
        if self.cfg.target_focus > 0:  # its counts steer the next draws (uniform has none)
            modules["targets"] = self.targets
        optimizers = {"G": self.opt_g, "D": self.opt_d}
        if self.distiller is not None:
            modules["local"] = self.distiller.local
            optimizers["local"] = self.distiller.optimizer
        return modules, optimizers


def _pre_phases(trainer: AIGANTrainer, x: torch.Tensor, meta: dict[str, Any],
                run_dir: Path | None, progress: Progress) -> None:
    """SimCLR pre-training of G's encoder and the distillation warm-up, each run once."""
    cfg = trainer.cfg
    if cfg.pretrain and cfg.pretrain_epochs and "pretrain" not in meta["phases"]:
        meta["phases"]["pretrain"] = pretrain_encoder(
            trainer.G, x, epochs=cfg.pretrain_epochs, batch_size=cfg.batch_size,
            lr=cfg.pretrain_lr, tau=cfg.tau, rng=trainer.rng, progress=progress)
        meta["seconds"]["pretrain"] = meta["phases"]["pretrain"]["seconds"]
        loop.save(trainer, run_dir, meta)
    if trainer.distiller is not None and trainer.selects_local and "select" not in meta["phases"]:
        choice = select_substitute(
            trainer.oracle, x, candidates=candidate_archs(x.shape[-1]),
            build=trainer.build_local, make_distiller=trainer.new_distiller,
            epochs=cfg.distill_warmup_epochs, batch_size=cfg.batch_size, eps=cfg.eps,
            kappa=cfg.kappa, seed=cfg.seed, score_images=cfg.local_select_images)
        log.info("local model: %s chosen (target margins %s; targeted transfer %s)",
                 choice.arch, choice.scores, choice.success)
        trainer.use_local(choice.arch, choice.distiller)
        # the winner's selection distillation is the run's warm-up
        meta["phases"]["select"] = choice.record()
        meta["phases"]["warmup"] = {"kl": choice.warmup_kl[choice.arch]}
        meta["seconds"]["select_local"] = choice.seconds
        meta["queries"] += choice.queries  # each rank queries the same images: count once
        loop.save(trainer, run_dir, meta)
    if trainer.distiller is not None and "warmup" not in meta["phases"]:
        start, q0 = time.perf_counter(), trainer.oracle.queries
        kl = trainer.distiller.warmup(x, epochs=cfg.distill_warmup_epochs,
                                      batch_size=cfg.batch_size, rng=trainer.rng,
                                      progress=progress)
        meta["phases"]["warmup"] = {"kl": kl}
        meta["seconds"]["distill_warmup"] = time.perf_counter() - start
        meta["queries"] += sum_over_ranks(trainer.oracle.queries - q0)
        loop.save(trainer, run_dir, meta)


def saved_local_choice(run_dir: Path) -> str | None:
    """The local architecture a ``local_arch="auto"`` run chose, from its training state
    (None before the choice was made or without a state)."""
    if not has_training_state(run_dir):
        return None
    return read_training_meta(run_dir).get("phases", {}).get("select", {}).get("arch")


def fit(
    cfg: AIGANConfig,
    target: nn.Module,
    train: Any,
    *,
    val: Any = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: Progress = None,
    dataset: str | None = None,
    target_run_dir: str | Path | None = None,
    local_model: nn.Module | None = None,
) -> dict[str, Any]:
    """Train AI-GAN against ``target`` (Algorithm 1) and write ``run_dir`` if given.

    Args:
        cfg: hyperparameters.
        target: classifier mapping images in [0, 1] to logits; in black-box mode only queried.
        train: training images, an ``ImageSet`` or an ``(x, y)`` pair.
        val: held-out images for the success figures (the training set if None).
        run_dir: where ``generator.safetensors``, ``config.json`` and the resumable
            ``train_state.safetensors`` go (nothing is written if None).
        resume: continue from ``run_dir``'s training state.
        progress: a callable receiving a dict per step, True for a tqdm bar, or None.
        dataset: dataset name recorded in config.json.
        target_run_dir: the target's run directory, recorded as its identity.
        local_model: black-box mode's f_d (default: from ``cfg.local_arch``).

    Returns:
        Metrics: per-epoch losses, seconds per phase, thread count, target queries
        (black-box) and the final targeted success over all (input, target) pairs.
    """
    trainer = AIGANTrainer.for_data(cfg, target, train, local_model=local_model)
    return train_aigan(trainer, train, val=val, run_dir=run_dir, resume=resume,
                       progress=progress, dataset=dataset, target_run_dir=target_run_dir)


def train_aigan(
    trainer: AIGANTrainer, train: Any, *, val: Any = None, run_dir: str | Path | None = None,
    resume: bool = False, progress: Progress = None, dataset: str | None = None,
    target_run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """:func:`fit` on an existing trainer (which keeps the trained networks)."""
    cfg = trainer.cfg
    x, y = (t.to(trainer.device) for t in as_tensors(train, "train"))
    xv, yv = (t.to(trainer.device)
              for t in (as_tensors(val, "val") if val is not None else (x, y)))
    identity = {**trainer.target_identity,
                "run_dir": str(target_run_dir) if target_run_dir is not None else None,
                "arch": run_arch(target_run_dir) or trainer.target_identity["arch"]}
    run_dir = Path(run_dir) if run_dir is not None else None
    if resume and run_dir is not None and cfg.black_box and trainer.selects_local:
        chosen = saved_local_choice(run_dir)  # rebuild the chosen f_d before its weights load
        if chosen is not None:
            trainer.use_local(chosen)
    meta = loop.start(trainer, run_dir, resume)
    _pre_phases(trainer, x, meta, run_dir, progress)
    loop.train_epochs(trainer, x, y, xv, yv, meta, run_dir, progress, "aigan")
    meta["train_images"] = int(x.shape[0])  # provenance: runs differ in how much data they saw
    return _finish(trainer, meta, xv[: cfg.eval_size], yv[: cfg.eval_size], run_dir,
                   identity, dataset, eval_split="val" if val is not None else "train")


def _finish(trainer: AIGANTrainer, meta: dict[str, Any], xv: torch.Tensor, yv: torch.Tensor,
            run_dir: Path | None, identity: dict[str, Any], dataset: str | None,
            eval_split: str) -> dict[str, Any]:
    """Final all-pairs success, the metrics dict, and the checkpoint."""
    cfg = trainer.cfg
    metrics: dict[str, Any] = {**loop.run_metrics(meta), "phases": meta["phases"],
                               "train_images": meta["train_images"]}
    if cfg.black_box:
        metrics["target_queries"] = meta["queries"]
    if cfg.eval_size and xv.shape[0]:
        start = time.perf_counter()
        metrics["final"] = heldout_success(trainer.forge, trainer.judge, xv, yv,
                                           trainer.num_classes)
        metrics["final"].update(split=eval_split, seconds=time.perf_counter() - start)
        metrics["success"] = metrics["final"]["success"]
        log.info("aigan targeted success %.4f over %d pairs (%s split)",
                 metrics["final"]["success"], metrics["final"]["pairs"], eval_split)
    if run_dir is not None:
        config = {
            "kind": "aigan", "format_version": 1, "eps": cfg.eps, "dataset": dataset,
            "num_classes": trainer.num_classes, "in_channels": trainer.G.in_channels,
            "image_size": [trainer.G.image_size, trainer.G.image_size],
            "target_model": identity, "black_box": cfg.black_box,
            "generator": {"class": type(trainer.G).__name__, "kwargs": trainer.G.arch_kwargs()},
            "training": jsonable(dataclasses.asdict(cfg)), "metrics": jsonable(metrics),
            "seed": cfg.seed, "version": __version__}
        if trainer.distiller is not None:
            config["local_model"] = {"arch": trainer.local_arch,
                                     "run_dir": save_local_model(trainer, run_dir, dataset,
                                                                 meta["queries"])}
        write_checkpoint(run_dir, trainer.served, config)
    return metrics


LOCAL_MODEL_DIR = "local_model"


def save_local_model(trainer: AIGANTrainer, run_dir: Path, dataset: str | None,
                     queries: int) -> str | None:
    """Save black-box mode's distilled f_d as ``run_dir/local_model``, a classifier run that
    ``load_model`` reads, so transfer attacks can be crafted on the substitute (Table IV's
    baselines) without retraining it. Returns the directory's name, or None for an f_d that
    is not a registry model (a caller-built ``local_model``), which could not be rebuilt."""
    from advforge import models
    from advforge.models.io import save_model

    assert trainer.distiller is not None
    if trainer.local_arch not in models.names():
        log.warning("local model %s is not a registry model: not saved", trainer.local_arch)
        return None
    save_model(trainer.distiller.local, run_dir / LOCAL_MODEL_DIR, arch=trainer.local_arch,
               arch_kwargs={}, dataset=dataset or "", seed=trainer.cfg.seed,
               metrics={"target_queries": queries},
               extra={"distilled_from": "the query-only target of the AI-GAN run beside"})
    return LOCAL_MODEL_DIR
