"""The networks, optimizers and RNG of one AI-GAN run, and Algorithm 1's iteration."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from advforge.attacks import create as create_attack
from advforge.data.augment import build_augment
from advforge.generative.aigan import steps
from advforge.generative.aigan.blackbox import BlackBoxWiring
from advforge.generative.aigan.config import AIGANConfig
from advforge.generative.data import as_tensors
from advforge.generative.ema import WeightAverage
from advforge.generative.identity import model_device, model_identity
from advforge.generative.nets import Discriminator, PerturbationGenerator, build_generator
from advforge.generative.optim import lr_factor, set_lr
from advforge.generative.targets import TargetSampler, sample_targets
from advforge.utils.modes import model_mode
from advforge.utils.precision import lower_precision


class AIGANTrainer(BlackBoxWiring):
    """The networks, optimizers and RNG of one AI-GAN run, with Algorithm 1's two steps.

    Args:
        cfg: hyperparameters.
        target: the target classifier (images in [0, 1] -> logits). In black-box mode it is
            only ever called through :class:`~advforge.generative.distill.QueryOnly`.
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
        torch.manual_seed(cfg.training.seed)  # network initialisation
        self.G = build_generator(cfg.generator.arch, in_channels, image_size, num_classes,
                                 cfg.eps, **cfg.generator.build_kwargs()).to(device)
        # The averaged G (when on) is what forges at evaluation and what the checkpoint holds.
        ema = cfg.training.g_ema
        self.G_avg = WeightAverage(self.G, ema) if ema > 0 else None
        betas = (cfg.training.beta1, cfg.training.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.training.lr, betas=betas)
        self.D = self.opt_d = self.attacker = None
        if cfg.objective.uses_discriminator:
            self.D = Discriminator(in_channels, num_classes, ch=cfg.discriminator.ch,
                                   spectral=cfg.discriminator.spectral_norm).to(device)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.training.lr,
                                          betas=betas)
        if cfg.attacker.enabled and self.D is not None:  # A: untargeted PGD on D (Eq. 7)
            self.attacker = create_attack("pgd", eps=cfg.eps, steps=cfg.attacker.steps,
                                          step_size=cfg.pgd_step_size, random_start=True)
        self.rng = torch.Generator(device=device).manual_seed(cfg.training.seed)
        # A shifted (or cropped and flipped) image keeps its class: more images for G to
        # generalise from, at no extra cost per step.
        self.augment = build_augment(cfg.training.augment, in_channels)
        self.disc_factor = 1.0  # scales Eq. 10 and -L_S in G's loss; set by schedule()
        self.targets = TargetSampler(num_classes, cfg.objective.target_focus).to(device)
        if cfg.black_box.enabled:
            self.setup_black_box(target, in_channels=in_channels, image_size=image_size,
                                 local_model=local_model, data_stats=data_stats)
        else:
            self.attacked = self.judge = target

    @classmethod
    def for_data(cls, cfg: AIGANConfig, target: nn.Module, train: Any, *,
                 local_model: nn.Module | None = None) -> AIGANTrainer:
        """A trainer sized for ``train`` (an ImageSet or (x, y)); classes from the target.
        In black-box mode the images' per-channel mean and std normalise the local model."""
        x, y = as_tensors(train, "train")
        num_classes = int(getattr(target, "num_classes", 0) or int(y.max()) + 1)
        stats = None  # white-box mode builds no local model
        if cfg.black_box.enabled:
            stats = (x.mean(dim=(0, 2, 3)).tolist(),
                     x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
        return cls(cfg, target, num_classes=num_classes, in_channels=x.shape[1],
                   image_size=x.shape[2], local_model=local_model, data_stats=stats)

    def schedule(self, epoch: float) -> dict[str, float]:
        """Learning rate, D's weight in G's loss and A's budget for the (fractional) epoch
        about to run."""
        cfg, train = self.cfg, self.cfg.training
        lr = train.lr * lr_factor(train.lr_schedule, epoch, train.epochs)
        set_lr(lr, *(opt for opt in (self.opt_g, self.opt_d) if opt is not None))
        out = {"lr": lr}
        if cfg.objective.disc_terms_schedule == "cosine":
            self.disc_factor = lr_factor("cosine", epoch, train.epochs)
            out["disc_factor"] = self.disc_factor
        if self.attacker is not None:  # curriculum: A's eps ramps up over the warm-up
            warmup = cfg.attacker.warmup_epochs
            ramp = min(1.0, epoch / warmup) if warmup else 1.0
            eps = max(cfg.eps * ramp, 1e-3)  # PGD needs eps > 0
            if eps != self.attacker.eps:
                self.attacker = dataclasses.replace(
                    self.attacker, eps=eps, step_size=cfg.pgd_step_size * eps / cfg.eps)
            out["attacker_eps"] = eps
        return out

    def generator_step(
        self, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One G update (:func:`.steps.generator_step`)."""
        return steps.generator_step(self, x, t)

    def discriminator_step(
        self, x: torch.Tensor, y: torch.Tensor, x_pert: torch.Tensor
    ) -> dict[str, float]:
        """One D update (:func:`.steps.discriminator_step`)."""
        return steps.discriminator_step(self, x, y, x_pert)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Algorithm 1's iteration: sample t != y, G step, D step (then distil f_d), on the
        augmented batch when ``augment`` is on."""
        if self.augment is not None:
            x = self.augment(x, self.rng)
        t = self.targets.sample(y, self.rng)
        x_pert, stats = self.generator_step(x, t)
        if self.D is not None:
            stats.update(self.discriminator_step(x, y, x_pert))
        if self.distiller is not None:
            stats.update(self.distil(x, y, t, x_pert))
        return stats

    @property
    def served(self) -> PerturbationGenerator:
        """The generator that attacks: G's weight average when ``g_ema`` is on, else G."""
        return self.G_avg.average if self.G_avg is not None else self.G

    def forge(self, x: torch.Tensor, t: torch.Tensor,
              precision: str = "float32") -> torch.Tensor:
        """Adversarial images from the served G in eval mode (mode restored), no graph, its
        network in ``precision`` (as :class:`~advforge.generative.GeneratorAttack` runs it)."""
        with (torch.no_grad(), model_mode(self.served, "eval"),
              lower_precision(precision, x.device)):
            return self.served.perturb(x, t)

    def quick_success(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Success on up to 256 held-out images with fixed random targets (any prediction)."""
        g = torch.Generator(device=x.device).manual_seed(1234)  # apart from the training RNG
        xs, ys = x[:256], y[:256]
        t = sample_targets(ys, self.num_classes, g)
        with torch.no_grad(), model_mode(self.judge, "eval"):
            return (self.judge(self.forge(xs, t)).argmax(1) == t).float().mean().item()

    def state_parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        """The modules and optimizers the resumable training state holds."""
        modules: dict[str, nn.Module] = {"G": self.G}
        optimizers: dict[str, torch.optim.Optimizer] = {"G": self.opt_g}
        if self.D is not None:
            modules["D"], optimizers["D"] = self.D, self.opt_d
        if self.G_avg is not None:
            modules["G_avg"] = self.G_avg
        if self.cfg.objective.target_focus > 0:  # its counts steer the next draws
            modules["targets"] = self.targets
        if self.distiller is not None:
            modules["local"] = self.distiller.local
            optimizers["local"] = self.distiller.optimizer
        return modules, optimizers
