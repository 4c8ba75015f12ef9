"""AdvGAN (Xiao et al., "Generating Adversarial Examples with Adversarial Networks", IJCAI
2018): the per-target baseline AI-GAN compares with (AI-GAN Sec. III-D, Tables III-IV).

An unconditional generator G(x) is trained for one fixed target class t with

    L = w_adv * L_adv + w_gan * L_GAN + w_hinge * L_hinge

where L_GAN is the least-squares GAN loss (as in the authors' released code), L_adv the C&W
targeted margin max(max_{i != t} Z_i - Z_t, -kappa) on the target's logits, and
L_hinge = E max(0, ||G(x)||_2 - c) the soft hinge on the perturbation's L2 norm. The output is
clipped to the L-inf eps-ball (G ends in eps * tanh), the "clipping trick" of their code.
``target="all"`` trains one generator per class, one after the other, in ``target_<t>/``
subdirectories, and records each one's training time. The networks are AI-GAN's (without the
conditioning and the class head) so the comparison isolates the method, not the architecture.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.errors import InputError
from advforge.generative import loop
from advforge.generative.config import (
    DiscriminatorConfig,
    GeneratorConfig,
    TrainingConfig,
    check_eps,
    from_flat,
    jsonable,
    leaf,
    section,
    to_flat,
)
from advforge.generative.data import train_val_tensors
from advforge.generative.identity import model_device, per_target_run_info, weights_hash
from advforge.generative.losses import cw_target_loss, gan_loss
from advforge.generative.nets import Discriminator, build_generator
from advforge.generative.optim import descend, lr_factor, set_lr
from advforge.generative.parallel import barrier, is_main
from advforge.generative.progress import Progress
from advforge.generative.state import CONFIG_FILE, write_checkpoint
from advforge.generative.success import heldout_success
from advforge.utils.checkpoint import atomic_write_json, read_json
from advforge.utils.modes import model_mode

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AdvGANObjective:
    """G's loss w_adv * L_adv + w_gan * L_GAN + w_hinge * L_hinge."""

    kappa: float = leaf(0.0, "C&W confidence of L_adv, in logits")
    w_adv: float = leaf(10.0, "weight of L_adv (the authors' code weighs it by 10)")
    w_gan: float = leaf(1.0, "weight of the least-squares GAN loss")
    w_hinge: float = leaf(1.0, "weight of the soft hinge on the perturbation's L2 norm")
    hinge_c: float | None = leaf(None, "the hinge's L2 bound c; default hinge_frac x the L2 "
                                 "norm of a full-eps perturbation")
    hinge_frac: float = leaf(0.5, "c as a fraction of a full-eps perturbation's L2 norm")

    def __post_init__(self) -> None:
        if self.kappa < 0:
            raise InputError(f"kappa must be >= 0, got {self.kappa}")
        if self.hinge_c is not None and self.hinge_c < 0:
            raise InputError(f"hinge_c must be >= 0, got {self.hinge_c}")


def _advgan_generator() -> GeneratorConfig:
    # Width 16, not AI-GAN's 32: ten generators of width 16 already hold 2.5x the weights of
    # AI-GAN's one. "tanh" is the clipped perturbation of Xiao et al., so the baseline stays
    # the published method.
    return GeneratorConfig(ch=16, output="tanh")


def _advgan_training() -> TrainingConfig:
    return TrainingConfig(epochs=5)


@dataclasses.dataclass
class AdvGANConfig:
    """Hyperparameters of ``advforge train-attacker advgan``.

    Build one from flat names with :meth:`from_flat`, as the CLI and YAML files do.

    Attributes:
        eps: L-inf clip of the perturbation on the [0, 1] scale.
        target: the target class, or ``"all"`` for one generator per class.
        generator: G's architecture (shared with AI-GAN; width 16 and tanh output here).
        discriminator: D's architecture.
        objective: the weights of G's three loss terms and the hinge bound.
        training: optimiser, schedule, evaluation and seed (epochs per generator).
    """

    eps: float = leaf(0.3, "L-inf clip of the perturbation, on the [0, 1] scale")
    target: int | str = leaf(0, "the target class, or all for one generator per class")
    generator: GeneratorConfig = section(_advgan_generator, "generator")
    discriminator: DiscriminatorConfig = section(DiscriminatorConfig, "discriminator/attacker")
    objective: AdvGANObjective = section(AdvGANObjective, "training")
    training: TrainingConfig = section(_advgan_training, "training")

    def __post_init__(self) -> None:
        check_eps(self.eps)
        if self.target != "all" and (isinstance(self.target, bool)
                                     or not isinstance(self.target, int) or self.target < 0):
            raise InputError(f"target must be a class index or 'all', got {self.target!r}")

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> AdvGANConfig:
        """The config from flat names (``g_ch``, ``epochs``, ``w_hinge``, ...)."""
        return from_flat(cls, values)


class AdvGANTrainer:
    """Networks, optimizers and RNG of one single-target AdvGAN run."""

    def __init__(self, cfg: AdvGANConfig, target: nn.Module, *, target_class: int,
                 num_classes: int, in_channels: int, image_size: int) -> None:
        self.cfg, self.target_class, self.num_classes = cfg, target_class, num_classes
        device = model_device(target)
        train, obj = cfg.training, cfg.objective
        torch.manual_seed(train.seed + target_class)
        self.G = build_generator(cfg.generator.arch, in_channels, image_size, None, cfg.eps,
                                 **cfg.generator.build_kwargs()).to(device)
        self.D = Discriminator(in_channels, None, ch=cfg.discriminator.ch,
                               spectral=cfg.discriminator.spectral_norm).to(device)
        betas = (train.beta1, train.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=train.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=train.lr, betas=betas)
        self.rng = torch.Generator(device=device).manual_seed(train.seed + target_class)
        self.judge = target
        self.target_sha256 = weights_hash(target)  # a resumed run must face the same target
        d = in_channels * image_size * image_size
        self.hinge_c = obj.hinge_c if obj.hinge_c is not None else (
            obj.hinge_frac * cfg.eps * math.sqrt(d))

    def schedule(self, epoch: float) -> dict[str, float]:
        """The learning rate for the (fractional) epoch about to run."""
        train = self.cfg.training
        lr = train.lr * lr_factor(train.lr_schedule, epoch, train.epochs)
        set_lr(lr, self.opt_g, self.opt_d)
        return {"lr": lr}

    # ---- Discriminator: minimise the LSGAN loss, D(x) -> 1 for clean, D(x + G(x)) -> 0 ----
    def discriminator_step(self, x: torch.Tensor, x_adv: torch.Tensor) -> dict[str, float]:
        """One D update on clean x and G's x_adv."""
        self.D.train()
        source, _ = self.D(torch.cat([x, x_adv]))
        b = x.shape[0]
        loss = (gan_loss(source[:b], clean=True, kind="lsgan")
                + gan_loss(source[b:], clean=False, kind="lsgan"))
        descend(self.opt_d, loss, list(self.D.parameters()))
        return {"d_gan": loss.item()}

    # ---- Generator: minimise w_adv * L_adv + w_gan * L_GAN + w_hinge * L_hinge ----
    def generator_step(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """One G update towards the fixed target class; returns x + G(x) and the losses."""
        obj = self.cfg.objective
        self.G.train()
        delta = self.G(x)  # (B, C, H, W), |delta| <= eps
        x_adv = (x + delta).clamp(0.0, 1.0)
        t = torch.full((x.shape[0],), self.target_class, device=x.device)
        with model_mode(self.judge, "eval"):
            logits = self.judge(x_adv)
        loss_adv = cw_target_loss(logits, t, obj.kappa)  # L_adv, the C&W margin
        source, _ = self.D(x_adv)
        loss_gan = gan_loss(source, clean=True, kind="lsgan")
        loss_hinge = (delta.flatten(1).norm(dim=1) - self.hinge_c).clamp_min(0).mean()
        loss = obj.w_adv * loss_adv + obj.w_gan * loss_gan + obj.w_hinge * loss_hinge
        descend(self.opt_g, loss, list(self.G.parameters()))
        return x_adv.detach(), {
            "g_loss": loss.item(), "g_adv": loss_adv.item(), "g_gan": loss_gan.item(),
            "g_hinge": loss_hinge.item(),
            "train_success": (logits.argmax(1) == t).float().mean().item()}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """The authors' order: D on the current G's output, then G."""
        with torch.no_grad():
            x_adv = (x + self.G(x)).clamp(0.0, 1.0)
        stats = self.discriminator_step(x, x_adv)
        _, g_stats = self.generator_step(x)
        return {**stats, **g_stats}

    def forge(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad(), model_mode(self.G, "eval"):
            return self.G.perturb(x)

    def quick_success(self, x: torch.Tensor, y: torch.Tensor) -> float:
        keep = y != self.target_class
        xs = x[keep][:256]
        with torch.no_grad(), model_mode(self.judge, "eval"):
            pred = self.judge(self.forge(xs)).argmax(1)
        return (pred == self.target_class).float().mean().item()

    def state_parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        return {"G": self.G, "D": self.D}, {"G": self.opt_g, "D": self.opt_d}


def _fit_one(cfg: AdvGANConfig, target: nn.Module, t: int, data: tuple, *,
             run_dir: Path | None, resume: bool, progress: Progress,
             info: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume) the generator of target class ``t``; write its run directory."""
    x, y, xv, yv = data
    keep = y != t  # inputs already of class t teach nothing about reaching t
    trainer = AdvGANTrainer(cfg, target, target_class=t, num_classes=info["num_classes"],
                            in_channels=x.shape[1], image_size=x.shape[2])
    meta = loop.start(trainer, run_dir, resume)
    loop.train_epochs(trainer, x[keep], y[keep], xv, yv, meta, run_dir, progress, f"advgan-{t}")
    metrics: dict[str, Any] = {**loop.run_metrics(meta), "train_images": int(keep.sum())}
    n = cfg.training.eval_size
    if n:
        metrics["final"] = heldout_success(trainer.forge, target, xv[:n], yv[:n],
                                           info["num_classes"], [t])
        metrics["success"] = metrics["final"]["success"]
        log.info("advgan target %d: success %.4f", t, metrics["success"])
    if run_dir is not None:
        write_checkpoint(run_dir, trainer.G, {
            **info, "kind": "advgan", "target": t, "eps": cfg.eps,
            "generator": {"class": type(trainer.G).__name__, "kwargs": trainer.G.arch_kwargs()},
            "training": jsonable(to_flat(cfg)), "metrics": jsonable(metrics)})
    return metrics


def fit(
    cfg: AdvGANConfig,
    target: nn.Module,
    train: Any,
    *,
    val: Any = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: Progress = None,
    dataset: str | None = None,
    target_run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train AdvGAN for ``cfg.target`` (a class, or every class in turn) against ``target``.

    Args: as :func:`advforge.generative.aigan.fit`.

    Returns:
        Metrics; for ``"all"``: per-target metrics, per-target and total training seconds,
        and the success averaged over targets.
    """
    device = model_device(target)
    x, y, xv, yv = train_val_tensors(train, val, device)
    info = per_target_run_info(target, x, y, dataset=dataset, seed=cfg.training.seed,
                               target_run_dir=target_run_dir)
    num_classes = info["num_classes"]
    run_dir = Path(run_dir) if run_dir is not None else None
    data = (x, y, xv, yv)
    if cfg.target != "all":
        if cfg.target >= num_classes:
            raise InputError(f"target {cfg.target} is not a class of {num_classes}")
        return _fit_one(cfg, target, cfg.target, data, run_dir=run_dir, resume=resume,
                        progress=progress, info=info)
    return _fit_all(cfg, target, data, run_dir=run_dir, resume=resume, progress=progress,
                    info=info)


def _fit_all(cfg: AdvGANConfig, target: nn.Module, data: tuple, *, run_dir: Path | None,
             resume: bool, progress: Progress, info: dict[str, Any]) -> dict[str, Any]:
    """One generator per class, sequentially; finished ones are kept when resuming."""
    per_target, runs = {}, {}
    for t in range(info["num_classes"]):
        sub = run_dir / f"target_{t}" if run_dir is not None else None
        runs[str(t)] = f"target_{t}"
        done = sub is not None and resume and (sub / CONFIG_FILE).is_file()
        epochs = read_json(sub / CONFIG_FILE).get("training", {}).get("epochs") if done else None
        if epochs == cfg.training.epochs:
            per_target[t] = read_json(sub / CONFIG_FILE)["metrics"]
            log.info("advgan target %d already trained in %s", t, sub)
            continue
        start = time.perf_counter()
        per_target[t] = _fit_one(cfg, target, t, data, run_dir=sub, resume=resume,
                                 progress=progress, info=info)
        log.info("advgan target %d trained in %.1f s", t, time.perf_counter() - start)
    metrics: dict[str, Any] = {
        "per_target": per_target,
        "per_target_seconds": {t: m["train_seconds"] for t, m in per_target.items()},
        "train_seconds": sum(m["train_seconds"] for m in per_target.values()),
        "threads": torch.get_num_threads(), "train_images": int(data[0].shape[0])}
    finals = [m["final"] for m in per_target.values() if "final" in m]
    if finals:
        pairs = sum(f["pairs"] for f in finals)
        metrics["final"] = {
            "success": sum(f["success"] * f["pairs"] for f in finals) / max(pairs, 1),
            "per_target": {t: m["final"]["success"] for t, m in per_target.items()
                           if "final" in m}, "pairs": pairs}
        metrics["success"] = metrics["final"]["success"]
    if run_dir is not None:
        if is_main():
            atomic_write_json(run_dir / CONFIG_FILE, {
                **info, "kind": "advgan", "target": "all", "eps": cfg.eps, "runs": runs,
                "training": jsonable(to_flat(cfg)), "metrics": jsonable(metrics)})
        barrier()
    return metrics
