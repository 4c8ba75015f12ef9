"""The classifier training loop: ``evaluate()`` + a short ``fit()`` over an ``Objective``.

``fit`` runs in one process or under ``torchrun`` (DistributedDataParallel, one shard of the
training set per rank, rank 0 writes). After every epoch it atomically saves a resumable state;
``resume=True`` continues from it and reaches the same weights as an uninterrupted run because
every epoch's randomness (batch order, augmentation, dropout, attack starts) is seeded from
(seed, epoch, rank) alone, not from whatever happened in earlier epochs of this process.

What a mini-batch does is the ``objective``'s (:mod:`advforge.training.objective`): plain
cross-entropy by default; adversarial training and adversarial networks
(:mod:`advforge.defenses`) plug in there and share everything else.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from advforge.data.augment import build_augment
from advforge.errors import CheckpointError, InputError
from advforge.models import ImageClassifier, create, save_model
from advforge.training.config import TrainConfig
from advforge.training.objective import Objective, StepContext
from advforge.training.state import (
    STATE_FILE,
    apply_train_state,
    read_train_state,
    save_train_state,
)
from advforge.utils.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    init_distributed,
    shard_indices,
)
from advforge.utils.modes import model_mode
from advforge.utils.seed import seed_everything
from advforge.utils.validate import check_images, check_labels

logger = logging.getLogger(__name__)

# A resumed run must match the saved one in everything that shapes the weights' trajectory.
RESUME_MUST_MATCH = ("arch", "arch_kwargs", "dataset", "seed", "optimizer", "batch_size",
                     "momentum", "weight_decay", "limit_train")


@torch.no_grad()
def count_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> int:
    """Number of images of ``x`` that ``model`` classifies as ``y``, in eval mode (restored)."""
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    with model_mode(model, "eval"):
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            correct += (model(xb).argmax(1) == yb).sum()
    return int(correct)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on ``(x, y)`` in eval mode; the model's train/eval mode is restored.

    Batches are moved to the device of the model's parameters.
    """
    if x.shape[0] == 0:
        raise InputError("cannot evaluate on an empty set")
    return count_correct(model, x, y, batch_size) / x.shape[0]


def fit(
    config: TrainConfig,
    splits: Any,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    log: Callable[[dict[str, Any]], None] | None = None,
    objective: Objective | None = None,
) -> dict[str, Any]:
    """Train ``config.arch`` on ``splits`` and save the classifier to ``config.out``.

    Args:
        config: the run's hyperparameters.
        splits: an ``advforge.data.DatasetSplits`` (``.train`` / ``.test`` with ``.x``
            (N, C, H, W) float in [0, 1] and ``.y`` int64, ``.num_classes``, ``.mean``,
            ``.std``).
        device: where to train; under torchrun a CUDA device becomes ``cuda:LOCAL_RANK``.
        progress: show a tqdm bar per epoch (rank 0 only).
        log: called on rank 0 after each epoch with that epoch's metrics.
        objective: what each mini-batch does (default: cross-entropy on the clean batch).
            Its settings are recorded in the checkpoint; a resumed run must use the same.

    Returns:
        The final metrics (``test_accuracy``, ``train_accuracy``, ``train_loss``,
        ``train_seconds``, ...), plus ``history`` and ``run_dir``; identical on every rank.
    """
    info = init_distributed(device)
    try:
        return _fit(config, splits, info, progress, log, objective or Objective())
    finally:
        cleanup_distributed(info)


def _fit(config: TrainConfig, splits: Any, info: DistInfo, progress: bool, log,
         objective: Objective) -> dict:
    data = _prepare_data(config, splits, info.device)
    out = Path(config.out)
    model, optimizer = _build(config, splits, data, info.device)
    objective.setup(model, info)
    start, history, seconds = 0, [], {"train": 0.0, "total": 0.0}
    if config.resume:
        start, history, seconds = _resume(out / STATE_FILE, config, model, optimizer, objective)
    elif info.is_main and (out / STATE_FILE).exists():
        logger.warning("overwriting the training state in %s (pass resume to continue it)", out)
    ddp = _wrap_ddp(model, info)
    if config.batch_size % info.world_size:
        logger.warning("batch_size %d is not a multiple of %d ranks; each rank uses %d",
                       config.batch_size, info.world_size, config.batch_size // info.world_size)
    augment = build_augment(config.augment, data["in_channels"], config.dataset)
    for epoch in range(start, config.epochs):
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(epoch)
        t0 = time.perf_counter()
        loss, train_acc = _train_epoch(ddp, model, optimizer, objective, data, config, epoch,
                                       info, augment, progress)
        t1 = time.perf_counter()
        test_acc = _evaluate_sharded(model, data["x_test"], data["y_test"], config, info)
        seconds["train"] += t1 - t0
        seconds["total"] += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "lr": config.lr_at(epoch), "train_loss": loss,
               "train_accuracy": train_acc, "test_accuracy": test_acc,
               "epoch_seconds": time.perf_counter() - t0}
        history.append(row)
        if info.is_main:
            meta = {"epoch": epoch + 1, "history": history, "seconds": seconds,
                    "config": config.to_dict(), "world_size": info.world_size,
                    "objective": objective.to_dict(), "objective_state": objective.state_doc()}
            save_train_state(out / STATE_FILE, model, optimizer, meta,
                             extra=objective.state_tensors())
            logger.info("epoch %d/%d %s", epoch + 1, config.epochs, row)
            if log is not None:
                log(row)
    return _finish(config, model, history, seconds, info, data, objective)


def _finish(config, model, history, seconds, info, data, objective) -> dict[str, Any]:
    last = history[-1] if history else {}
    test_acc = last.get("test_accuracy")
    if test_acc is None:  # resumed a run that had already finished every epoch
        test_acc = _evaluate_sharded(model, data["x_test"], data["y_test"], config, info)
    metrics = {
        "test_accuracy": test_acc,
        "train_accuracy": last.get("train_accuracy"),
        "train_loss": last.get("train_loss"),
        "epochs": config.epochs,
        "train_seconds": round(seconds["train"], 3),
        "total_seconds": round(seconds["total"], 3),
        "world_size": info.world_size,
        "torch_threads": torch.get_num_threads(),
        "n_train": int(data["x_train"].shape[0]),
        "n_test": int(data["x_test"].shape[0]),
    }
    if info.is_main:
        extra = {"train_config": config.to_dict(), "history": history}
        if type(objective) is not Objective:
            extra["defense"] = objective.to_dict()
        save_model(model, config.out, arch=config.arch, arch_kwargs=config.arch_kwargs,
                   dataset=config.dataset, seed=config.seed, metrics=metrics, extra=extra)
    barrier(info)  # files exist on return on every rank
    return {**metrics, "history": history, "run_dir": str(config.out)}


# ---------------------------------------------------------------- setup


def _prepare_data(config: TrainConfig, splits: Any, device: torch.device) -> dict[str, Any]:
    """Validate the splits, apply the limits and move the tensors to ``device`` once."""
    out: dict[str, Any] = {}
    for part, limit in (("train", config.limit_train), ("test", config.limit_test)):
        x, y = getattr(splits, part).x, getattr(splits, part).y
        check_images(x, name=f"{part}.x")
        check_labels(y, x.shape[0], int(splits.num_classes), name=f"{part}.y")
        out[f"x_{part}"] = x[:limit].to(device)
        out[f"y_{part}"] = y[:limit].to(device=device, dtype=torch.long)
    x = out["x_train"]
    if x.shape[-1] != x.shape[-2] or out["x_test"].shape[1:] != x.shape[1:]:
        raise InputError(f"train/test images must be square and alike, got {tuple(x.shape[1:])}")
    out["in_channels"], out["input_size"] = int(x.shape[1]), int(x.shape[-1])
    return out


def _build(config, splits, data, device) -> tuple[ImageClassifier, torch.optim.Optimizer]:
    # Same seed on every rank: identical initial weights (DDP also broadcasts rank 0's).
    seed_everything(config.seed)
    model = create(
        config.arch, num_classes=int(splits.num_classes), in_channels=data["in_channels"],
        input_size=data["input_size"], mean=getattr(splits, "mean", 0.0),
        std=getattr(splits, "std", 1.0), **config.arch_kwargs,
    ).to(device)
    if config.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay)
    return model, opt


def _resume(path: Path, config, model, optimizer, objective) -> tuple[int, list, dict]:
    tensors, doc = read_train_state(path)
    saved = doc.get("config", {})
    for key in RESUME_MUST_MATCH:
        now = config.to_dict()[key]
        if key in saved and saved[key] != now:
            raise CheckpointError(
                f"cannot resume {path}: it was trained with {key}={saved[key]!r}, not {now!r}")
    saved_objective = doc.get("objective", Objective().to_dict())
    if saved_objective != json.loads(json.dumps(objective.to_dict())):  # tuples saved as lists
        raise CheckpointError(f"cannot resume {path}: it was trained with objective "
                              f"{saved_objective}, not {objective.to_dict()}")
    apply_train_state(tensors, doc, model, optimizer, path)
    objective.load_state({k[6:]: v for k, v in tensors.items() if k.startswith("extra.")},
                         doc.get("objective_state", {}))
    logger.info("resuming %s after epoch %d", path, doc["epoch"])
    seconds = doc.get("seconds", {"train": 0.0, "total": 0.0})
    return int(doc["epoch"]), list(doc.get("history", [])), dict(seconds)


def _wrap_ddp(model: nn.Module, info: DistInfo) -> nn.Module:
    if not info.distributed:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


# ---------------------------------------------------------------- one epoch


def _seed(*parts: int) -> int:
    """Deterministic 63-bit seed from integers (seed, epoch, rank, purpose)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h * 0x100000001B3 ^ (p + 0x632BE59BD9B4E019)) % 2**63
    return h


def _train_epoch(model, module, optimizer, objective, data, config, epoch, info, augment,
                 progress):
    """One pass over this rank's shard; returns (mean loss, accuracy) over all ranks."""
    x, y = data["x_train"], data["y_train"]
    dev = x.device
    # Batch order is shared by all ranks (seeded by seed and epoch), augmentation and dropout
    # differ per rank; nothing depends on earlier epochs, which makes resume exact.
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(
        _seed(config.seed, epoch, 0)))
    idx = shard_indices(order, info).to(dev)
    gen = torch.Generator(device=dev).manual_seed(_seed(config.seed, epoch, info.rank, 1))
    torch.manual_seed(_seed(config.seed, epoch, info.rank, 2))  # dropout
    attack_gen = torch.Generator(device=dev).manual_seed(_seed(config.seed, epoch, info.rank, 3))
    bs = max(1, config.batch_size // info.world_size)  # per-rank share of the global batch
    ctx = StepContext(model=model, module=module, optimizer=optimizer, epoch=epoch, batch=0,
                      batches=-(-idx.numel() // bs), generator=attack_gen, info=info)
    totals = torch.zeros(2, dtype=torch.float64, device=dev)  # (loss sum, correct)
    bar = tqdm(total=idx.numel(), disable=not (progress and info.is_main), leave=False,
               desc=f"epoch {epoch + 1}/{config.epochs}", unit="img")
    with model_mode(model, "train"):
        for ctx.batch, i in enumerate(range(0, idx.numel(), bs)):
            b = idx[i : i + bs]
            xb = x[b] if augment is None else augment(x[b], gen)  # (B, C, H, W)
            loss_sum, correct = objective.step(ctx, xb, y[b])
            totals += torch.stack([loss_sum.double(), correct.double()])
            bar.update(b.numel())
    bar.close()
    count = torch.tensor([float(idx.numel())], dtype=torch.float64, device=dev)
    totals = all_reduce_sum(torch.cat([totals, count]), info)  # sums over ranks
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def _evaluate_sharded(model, x, y, config, info) -> float:
    """Test accuracy, each rank counting its own slice; identical on every rank."""
    n = x.shape[0]
    lo, hi = n * info.rank // info.world_size, n * (info.rank + 1) // info.world_size
    correct = count_correct(model, x[lo:hi], y[lo:hi], config.eval_batch_size) if hi > lo else 0
    total = all_reduce_sum(torch.tensor(float(correct), device=x.device), info)
    return float(total) / n
