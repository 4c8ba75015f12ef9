"""AI-GAN's fit: the phases before the GAN (SimCLR pre-training, choice and warm-up of the
black-box local model), the epochs, the final all-pairs success and the checkpoint."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advforge import __version__
from advforge.generative import loop
from advforge.generative.aigan.blackbox import save_local_model, saved_local_choice
from advforge.generative.aigan.config import AIGANConfig
from advforge.generative.aigan.trainer import AIGANTrainer
from advforge.generative.config import jsonable, to_flat
from advforge.generative.data import train_val_tensors
from advforge.generative.identity import run_arch
from advforge.generative.parallel import sum_over_ranks
from advforge.generative.progress import Progress
from advforge.generative.simclr import pretrain_encoder
from advforge.generative.state import write_checkpoint
from advforge.generative.success import heldout_success
from advforge.utils.precision import effective_precision

log = logging.getLogger(__name__)

# bfloat16 serves (inference_precision auto) only if its held-out targeted success is at most
# this far below float32's on the same pairs.
BF16_TOLERANCE = 0.005


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
        local_model: black-box mode's f_d (default: from ``local_arch``).

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
    x, y, xv, yv = train_val_tensors(train, val, trainer.device)
    identity = {**trainer.target_identity,
                "run_dir": str(target_run_dir) if target_run_dir is not None else None,
                "arch": run_arch(target_run_dir) or trainer.target_identity["arch"]}
    run_dir = Path(run_dir) if run_dir is not None else None
    if resume and run_dir is not None and cfg.black_box.enabled and trainer.selects_local:
        chosen = saved_local_choice(run_dir)  # rebuild the chosen f_d before its weights load
        if chosen is not None:
            trainer.use_local(chosen)
    meta = loop.start(trainer, run_dir, resume)
    pre_phases(trainer, x, meta, run_dir, progress)
    loop.train_epochs(trainer, x, y, xv, yv, meta, run_dir, progress, "aigan")
    meta["train_images"] = int(x.shape[0])  # provenance: runs differ in how much data they saw
    n = cfg.training.eval_size
    return finish(trainer, meta, xv[:n], yv[:n], run_dir, identity, dataset,
                  eval_split="val" if val is not None else "train")


def pre_phases(trainer: AIGANTrainer, x: torch.Tensor, meta: dict[str, Any],
               run_dir: Path | None, progress: Progress) -> None:
    """SimCLR pre-training of G's encoder, the choice of f_d and the distillation warm-up,
    each run once (a resumed run skips the phases its state records)."""
    cfg, phases = trainer.cfg, meta["phases"]
    if cfg.pretrain.enabled and cfg.pretrain.epochs and "pretrain" not in phases:
        phases["pretrain"] = pretrain_encoder(
            trainer.G, x, epochs=cfg.pretrain.epochs, batch_size=cfg.training.batch_size,
            lr=cfg.pretrain.lr, tau=cfg.pretrain.tau, rng=trainer.rng, progress=progress)
        meta["seconds"]["pretrain"] = phases["pretrain"]["seconds"]
        loop.save(trainer, run_dir, meta)
    if trainer.distiller is not None and trainer.selects_local and "select" not in phases:
        choice = trainer.choose_local(x)
        # the winner's selection distillation is the run's warm-up
        phases["select"] = choice.record()
        phases["warmup"] = {"kl": choice.warmup_kl[choice.arch]}
        meta["seconds"]["select_local"] = choice.seconds
        meta["queries"] += choice.queries  # each rank queries the same images: count once
        loop.save(trainer, run_dir, meta)
    if trainer.distiller is not None and "warmup" not in phases:
        start, q0 = time.perf_counter(), trainer.oracle.queries
        kl = trainer.distiller.warmup(x, epochs=cfg.black_box.distill_warmup_epochs,
                                      batch_size=cfg.training.batch_size, rng=trainer.rng,
                                      progress=progress)
        phases["warmup"] = {"kl": kl}
        meta["seconds"]["distill_warmup"] = time.perf_counter() - start
        meta["queries"] += sum_over_ranks(trainer.oracle.queries - q0)
        loop.save(trainer, run_dir, meta)


def finish(trainer: AIGANTrainer, meta: dict[str, Any], xv: torch.Tensor, yv: torch.Tensor,
           run_dir: Path | None, identity: dict[str, Any], dataset: str | None,
           eval_split: str) -> dict[str, Any]:
    """Final all-pairs success, the metrics dict, and the checkpoint."""
    cfg = trainer.cfg
    metrics: dict[str, Any] = {**loop.run_metrics(meta), "phases": meta["phases"],
                               "train_images": meta["train_images"]}
    if cfg.black_box.enabled:
        metrics["target_queries"] = meta["queries"]
    checked = cfg.training.eval_size and xv.shape[0]
    if checked:
        start = time.perf_counter()
        metrics["final"] = heldout_success(trainer.forge, trainer.judge, xv, yv,
                                           trainer.num_classes)
        metrics["final"].update(split=eval_split, seconds=time.perf_counter() - start)
    metrics["inference"] = serving_precision(trainer, xv, yv, metrics.get("final"))
    if checked:
        metrics["success"] = metrics["final"]["success"]
        log.info("aigan targeted success %.4f over %d pairs (%s split, %s)",
                 metrics["final"]["success"], metrics["final"]["pairs"], eval_split,
                 metrics["inference"]["precision"])
    if run_dir is not None:
        config = checkpoint_config(trainer, identity, dataset, metrics)
        config["inference"] = {"precision": metrics["inference"]["precision"]}
        if trainer.distiller is not None:
            config["local_model"] = {"arch": trainer.local_arch,
                                     "run_dir": save_local_model(trainer, run_dir, dataset,
                                                                 meta["queries"])}
        write_checkpoint(run_dir, trainer.served, config)
    return metrics


def serving_precision(trainer: AIGANTrainer, xv: torch.Tensor, yv: torch.Tensor,
                      final: dict[str, Any] | None) -> dict[str, Any]:
    """The precision the trained G will forge in (``inference_precision``), and the evidence.

    ``auto`` takes bfloat16 where the device runs it natively and the held-out success in
    bfloat16 is within :data:`BF16_TOLERANCE` of float32's on the same pairs; otherwise, and
    when there is no held-out check (``eval_size`` 0), float32. When bfloat16 is chosen,
    ``final`` (float32's figures) is replaced by bfloat16's, so the success a run reports is
    that of the network that serves."""
    asked = trainer.cfg.training.inference_precision
    wanted = "bfloat16" if asked == "auto" else asked
    if effective_precision(wanted, trainer.device) == "float32" or (asked == "auto"
                                                                      and final is None):
        return {"precision": "float32", "asked": asked}
    record = {"precision": "bfloat16", "asked": asked}
    if final is not None:
        low = heldout_success(lambda x, t: trainer.forge(x, t, "bfloat16"), trainer.judge, xv,
                              yv, trainer.num_classes)
        record.update(success_float32=final["success"], success_bfloat16=low["success"])
        if asked == "auto" and low["success"] < final["success"] - BF16_TOLERANCE:
            return {**record, "precision": "float32"}
        final.update({k: low[k] for k in ("success", "per_target", "pairs")})
    return record


def checkpoint_config(trainer: AIGANTrainer, identity: dict[str, Any], dataset: str | None,
                      metrics: dict[str, Any]) -> dict[str, Any]:
    """config.json of a trained AI-GAN: what :func:`~advforge.generative.load_attacker`
    needs, the target's identity, and the config in flat form under "training"."""
    cfg, G = trainer.cfg, trainer.G
    return {
        "kind": "aigan", "format_version": 1, "eps": cfg.eps, "dataset": dataset,
        "num_classes": trainer.num_classes, "in_channels": G.in_channels,
        "image_size": [G.image_size, G.image_size],
        "target_model": identity, "black_box": cfg.black_box.enabled,
        "generator": {"class": type(G).__name__, "kwargs": G.arch_kwargs()},
        "training": jsonable(to_flat(cfg)), "metrics": jsonable(metrics),
        "seed": cfg.training.seed, "version": __version__}
