"""The epoch loop shared by AI-GAN and AdvGAN: start or resume, train, log, save state.

A trainer offers ``cfg`` (a nested config whose ``training`` section has ``epochs`` and
``batch_size``), ``rng``, ``judge`` (the model
success is measured on), ``target_sha256`` (a hash of the target's weights, checked when a
run resumes), ``schedule(epoch: float) -> dict`` (sets learning rates etc. for the fractional
epoch about to run), ``train_step(x, y) -> dict``, ``quick_success(x, y) -> float`` and
``state_parts() -> (modules, optimizers)``; optionally ``should_stop(meta) -> bool``, asked
before each epoch (early stopping).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from advforge.errors import InputError
from advforge.generative.config import jsonable, to_flat, with_config_defaults
from advforge.generative.data import iterate_batches
from advforge.generative.parallel import barrier, broadcast_buffers, is_main, sum_over_ranks
from advforge.generative.progress import Progress, ProgressReporter
from advforge.generative.state import (
    has_training_state,
    load_training_state,
    save_training_state,
)

log = logging.getLogger(__name__)

# Fields (flat names) that may change when a run is resumed (the rest must match the saved run).
RESUMABLE_CHANGES = ("epochs", "eval_size")


class Trainer(Protocol):
    cfg: Any
    rng: torch.Generator
    judge: nn.Module
    target_sha256: str

    def schedule(self, epoch: float) -> dict[str, float]: ...

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]: ...

    def quick_success(self, x: torch.Tensor, y: torch.Tensor) -> float: ...

    def state_parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]: ...


def start(trainer: Trainer, run_dir: Path | None, resume: bool) -> dict[str, Any]:
    """Fresh bookkeeping, or the saved one (with every weight restored) when resuming.

    The bookkeeping records the config in flat form; a saved one is compared with this run's
    in flat form too, whichever layout it was written in."""
    config = jsonable(to_flat(trainer.cfg))
    meta: dict[str, Any] = {"epoch": 0, "history": [], "seconds": {}, "phases": {},
                            "queries": 0, "config": config,
                            "target_sha256": trainer.target_sha256}
    if run_dir is None or not resume:
        return meta
    if not has_training_state(run_dir):
        log.warning("resume requested but %s holds no training state; starting afresh", run_dir)
        return meta
    modules, optimizers = trainer.state_parts()
    meta = load_training_state(run_dir, modules=modules, optimizers=optimizers, rng=trainer.rng)
    # A retrained target (same path, other weights) would silently get a generator trained
    # half against each; a state that records no hash is trusted.
    if meta.get("target_sha256", trainer.target_sha256) != trainer.target_sha256:
        raise InputError(f"cannot resume {run_dir}: it was trained against another target "
                         "model (its weights differ)")
    meta["target_sha256"] = trainer.target_sha256
    saved = with_config_defaults(type(trainer.cfg), meta["config"])
    changed = [k for k in config if k not in RESUMABLE_CHANGES and saved.get(k) != config[k]]
    if changed:
        raise InputError(f"cannot resume {run_dir} with a different {', '.join(changed)}")
    if config["epochs"] < meta["epoch"]:
        raise InputError(f"cannot resume {run_dir} to {config['epochs']} epochs: it has "
                         f"already trained {meta['epoch']}")
    if saved.get("epochs") != config["epochs"]:
        # A run resumed with another epoch count has its cosine schedule changed from here on
        # (a finished 40 -> 80 jumps from lr ~0 to lr / 2): not the schedule of a fresh
        # 80-epoch run, so the run says so in its metrics.
        meta.setdefault("extensions", []).append(
            {"after_epoch": meta["epoch"], "from_epochs": saved.get("epochs"),
             "to_epochs": config["epochs"]})
    meta["config"] = config
    log.info("resuming %s after epoch %d", run_dir, meta["epoch"])
    return meta


def run_metrics(meta: dict[str, Any]) -> dict[str, Any]:
    """The bookkeeping every trained generator reports: epochs, per-epoch history (with the
    mean learning rate), seconds per phase, threads, and any resumes that changed ``epochs``."""
    return {"epochs": meta["epoch"], "history": meta["history"], "seconds": meta["seconds"],
            "train_seconds": sum(meta["seconds"].values()), "threads": torch.get_num_threads(),
            "extensions": meta.get("extensions", [])}


def save(trainer: Trainer, run_dir: Path | None, meta: dict[str, Any]) -> None:
    """Write the resumable state (rank 0 writes; every rank returns once it exists)."""
    if run_dir is not None:
        if is_main():
            modules, optimizers = trainer.state_parts()
            save_training_state(run_dir, modules=modules, optimizers=optimizers,
                                rng=trainer.rng, meta=meta)
        barrier()


def _epoch(trainer: Trainer, x: torch.Tensor, y: torch.Tensor, bar: ProgressReporter,
           epoch: int, desc: str) -> dict[str, float]:
    per_epoch = math.ceil(x.shape[0] / trainer.cfg.training.batch_size)
    sums: dict[str, float] = {}
    count = 0
    for xb, yb in iterate_batches(x, y, trainer.cfg.training.batch_size, trainer.rng):
        sched = trainer.schedule(epoch + count / per_epoch)
        stats = {"lr": sched["lr"], **trainer.train_step(xb, yb)}  # history shows the schedule
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        bar.update({"phase": desc, "epoch": epoch, **sched, **stats})
    return {k: v / max(count, 1) for k, v in sums.items()}


def train_epochs(
    trainer: Trainer, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
    meta: dict[str, Any], run_dir: Path | None, progress: Progress, desc: str,
) -> None:
    """Run the remaining epochs; after each, log the mean losses and the held-out success
    and save the resumable state."""
    epochs = trainer.cfg.training.epochs
    steps = (epochs - meta["epoch"]) * math.ceil(x.shape[0] / trainer.cfg.training.batch_size)
    bar = ProgressReporter(progress, max(steps, 0), desc)
    for epoch in range(meta["epoch"], epochs):
        stop = getattr(trainer, "should_stop", None)  # early stopping, where a trainer has it
        if stop is not None and stop(meta):
            meta["stopped_early"] = True
            log.info("%s: stopping early after epoch %d", desc, epoch)
            break
        start, q0 = time.perf_counter(), getattr(trainer.judge, "queries", 0)
        losses = _epoch(trainer, x, y, bar, epoch, desc)
        # Data parallel: rank 0's batch-norm statistics everywhere, queries of all ranks.
        broadcast_buffers(*trainer.state_parts()[0].values())
        meta["seconds"]["gan"] = meta["seconds"].get("gan", 0.0) + time.perf_counter() - start
        meta["queries"] += sum_over_ranks(getattr(trainer.judge, "queries", 0) - q0)
        losses["heldout_success"] = trainer.quick_success(xv, yv)
        meta["history"].append(losses)
        meta["epoch"] = epoch + 1
        log.info("%s epoch %d/%d: %s", desc, epoch + 1, epochs,
                 ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
        save(trainer, run_dir, meta)
    bar.close()
