"""AI-GAN's black-box wiring (Sec. V-D, dynamic distillation): the query-only oracle on the
target, the local model f_d that G attacks, its distiller, the prober whose examples f_d
also distils, and the choice of f_d's architecture from queries.

:class:`BlackBoxWiring` is mixed into the trainer; in white-box mode none of it is set up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge.generative.distill import Distiller, QueryOnly, make_local_model, probe_attack
from advforge.generative.state import has_training_state, read_training_meta
from advforge.generative.substitute import AUTO, candidate_archs, select_substitute
from advforge.utils.modes import model_mode

log = logging.getLogger(__name__)

LOCAL_MODEL_DIR = "local_model"


class BlackBoxWiring:
    """The oracle, f_d, its distiller and the prober of a black-box AI-GAN trainer.

    The host sets ``cfg``, ``device``, ``num_classes`` and ``rng`` and calls
    :meth:`setup_black_box`; afterwards ``attacked`` is f_d (what G's target term is computed
    on) and ``judge`` the oracle (what success is measured on)."""

    cfg: Any
    device: torch.device
    num_classes: int
    rng: torch.Generator
    distiller: Distiller | None = None
    selects_local = False

    def setup_black_box(self, target: nn.Module, *, in_channels: int, image_size: int,
                        local_model: nn.Module | None,
                        data_stats: tuple[list[float], list[float]] | None) -> None:
        """Wrap the target in :class:`QueryOnly` and build (or adopt) f_d."""
        bb = self.cfg.black_box
        mean, std = data_stats or ([0.5] * in_channels, [0.5] * in_channels)
        self.image_shape = (in_channels, image_size)
        self.local_stats = (mean, std)
        self.oracle = QueryOnly(target)  # the only handle on the target from here on
        # "auto" (unless the caller built f_d) chooses before the GAN, from queries; until
        # then f_d is the first candidate, the paper's choice
        self.selects_local = bb.local_arch == AUTO and local_model is None
        if local_model is None:
            arch = (candidate_archs(image_size)[0] if bb.local_arch == AUTO
                    else bb.local_arch or ("model_c" if image_size <= 28 else "resnet20"))
            self.use_local(arch)
        else:  # a caller-built f_d is used as it is, whatever local_arch says
            self.use_local(type(getattr(local_model, "net", local_model)).__name__,
                           self.new_distiller(local_model))
        self.prober = (probe_attack(self.cfg.eps, bb.distill_probe_steps, self.cfg.objective.kappa)
                       if bb.distill_probe_steps else None)

    def build_local(self, arch: str) -> nn.Module:
        """A fresh, untrained local model of a registry architecture, sized for the data."""
        (in_channels, image_size), (mean, std) = self.image_shape, self.local_stats
        return make_local_model(arch, num_classes=self.num_classes, in_channels=in_channels,
                                image_size=image_size, mean=mean, std=std).to(self.device)

    def new_distiller(self, local: nn.Module) -> Distiller:
        """The run's distiller (its optimizer, temperature, miss weight) around ``local``."""
        bb = self.cfg.black_box
        return Distiller(self.oracle, local.to(self.device), lr=bb.distill_lr,
                         temperature=bb.distill_temperature, miss_weight=bb.distill_miss_weight)

    def use_local(self, arch: str, distiller: Distiller | None = None) -> None:
        """Attack the local model ``arch`` (a fresh one unless ``distiller`` holds it)."""
        self.local_arch = arch
        self.distiller = distiller or self.new_distiller(self.build_local(arch))
        self.attacked, self.judge = self.distiller.local, self.oracle

    def distil(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor,
               x_pert: torch.Tensor) -> dict[str, float]:
        """f_d follows every AI-GAN update (Sec. V-D): it distils the target's answers on the
        clean x, on G's x_pert and (with probes) on targeted PGD examples made against f_d
        itself towards the same t (Papernot et al. 2017's augmentation, iterated)."""
        assert self.distiller is not None
        images, marks = [x, x_pert], [torch.full_like(t, -1), t]
        if self.prober is not None:  # where f_d's own gradient leads, towards the same t
            local = self.distiller.local
            with model_mode(local, "eval"):
                images.append(self.prober(local, x, y, target=t, generator=self.rng))
            marks.append(t)
        images_t, marks_t = torch.cat(images), torch.cat(marks)
        stats: dict[str, float] = {}
        for _ in range(self.cfg.black_box.distill_steps):
            stats.update(self.distiller.step(images_t, targets=marks_t))
        return stats

    def choose_local(self, x: torch.Tensor) -> Any:
        """``local_arch="auto"``: distil every candidate from queries and keep the one whose
        targeted PGD examples fool the target most (:mod:`~advforge.generative.substitute`);
        the winner's distillation is the run's warm-up. Returns the selection."""
        cfg, bb = self.cfg, self.cfg.black_box
        choice = select_substitute(
            self.oracle, x, candidates=candidate_archs(x.shape[-1]),
            build=self.build_local, make_distiller=self.new_distiller,
            epochs=bb.distill_warmup_epochs, batch_size=cfg.training.batch_size, eps=cfg.eps,
            kappa=cfg.objective.kappa, seed=cfg.training.seed,
            score_images=bb.local_select_images)
        log.info("local model: %s chosen (target margins %s; targeted transfer %s)",
                 choice.arch, choice.scores, choice.success)
        self.use_local(choice.arch, choice.distiller)
        return choice


def saved_local_choice(run_dir: Path) -> str | None:
    """The local architecture a ``local_arch="auto"`` run chose, from its training state
    (None before the choice was made or without a state)."""
    if not has_training_state(run_dir):
        return None
    return read_training_meta(run_dir).get("phases", {}).get("select", {}).get("arch")


def save_local_model(trainer: BlackBoxWiring, run_dir: Path, dataset: str | None,
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
               arch_kwargs={}, dataset=dataset or "", seed=trainer.cfg.training.seed,
               metrics={"target_queries": queries},
               extra={"distilled_from": "the query-only target of the AI-GAN run beside"})
    return LOCAL_MODEL_DIR
