"""What AE4DNN and ATN/AAE share: one autoencoder per target class trained on a balanced
subset S, counted by the validity criteria of AE4DNN Sec. II-B, swept over its loss weight.

* :func:`balanced_subset`: S, the classes other than the target equally represented (seeded).
* :func:`adversarial_counts`: criteria (i) x classified correctly, (ii) y* != c_x,
  (iii) f(x') = y*, (iv) ||x' - x||_2 <= b, and the L2 statistics the tables report.
* :class:`ReconstructionTrainer`: the epoch loop's trainer (:mod:`.loop`) for g with a
  method's loss; Adam, batch 256, up to 100 epochs (the paper: 400), early stopping on the
  training loss.
* :func:`fit`: one target or every target, one weight or a sweep with the choice rule
  "the most valid adversarial examples on S among the weights whose mean L2 is <= b".
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from advforge.errors import InputError
from advforge.eval.runner import predict
from advforge.generative import loop
from advforge.generative.autoencoders import Autoencoder, build_autoencoder
from advforge.generative.config import (
    check_min,
    check_positive,
    from_flat,
    jsonable,
    leaf,
    section,
    to_flat,
)
from advforge.generative.data import train_val_tensors
from advforge.generative.identity import model_device, per_target_run_info, weights_hash
from advforge.generative.optim import descend
from advforge.generative.progress import Progress
from advforge.generative.state import CONFIG_FILE, GENERATOR_FILE, write_checkpoint
from advforge.utils.checkpoint import atomic_write_json, read_json
from advforge.utils.modes import model_mode

log = logging.getLogger(__name__)

FORGE_BATCH = 1000  # images per autoencoder call when forging a whole set


# ------------------------------------------------------------------ config sections
@dataclasses.dataclass
class AutoencoderConfig:
    """The autoencoder g (:mod:`.autoencoders`)."""

    arch: str = leaf("conv", "registered autoencoder: conv (the paper's conv/pool/up net) or "
                     "mlp", "ae_arch")
    ch: int = leaf(32, "channels of every hidden conv (conv) or bottleneck width (mlp)",
                   "ae_ch")

    def __post_init__(self) -> None:
        check_min(self, {"ch": "ae_ch"}, 1)


@dataclasses.dataclass
class ReconstructionTraining:
    """Subset, optimiser, early stopping, evaluation and seed."""

    subset_size: int = leaf(1000, "|S|: training images, the classes other than the target "
                            "equally represented")
    # The paper allows up to 400 epochs; on mnist5k (target 7, beta 0.006) the held-out rate
    # plateaus by epoch 40-60, and 100 epochs keep one autoencoder near a minute on 2 cores.
    epochs: int = leaf(100, "maximum training epochs over S (the paper: up to 400)")
    batch_size: int = leaf(256, "minibatch size")
    lr: float = leaf(1e-3, "Adam learning rate")
    patience: int = leaf(20, "stop once the training loss has not improved for this many "
                         "epochs (0: never stop early)")
    min_delta: float = leaf(1e-4, "an improvement smaller than this fraction of the best loss "
                            "does not count")
    eval_size: int = leaf(1000, "held-out images for the final counts (0 to skip)")
    seed: int = leaf(0, "seeds S, the autoencoder's weights and the batch order")

    def __post_init__(self) -> None:
        check_min(self, {"subset_size": "subset_size", "epochs": "epochs",
                         "patience": "patience", "min_delta": "min_delta",
                         "eval_size": "eval_size"}, 0)
        check_min(self, {"subset_size": "subset_size"}, 2)
        if self.batch_size < 2:
            raise InputError("batch_size must be >= 2")
        check_positive(self, {"lr": "lr"})


@dataclasses.dataclass
class ReconstructionConfig:
    """What AE4DNN's and ATN's configurations share (each adds its loss weight).

    Attributes:
        target: the target class, or ``"all"`` for one autoencoder per class.
        max_l2: b of criterion (iv) and of the choice rule.
        autoencoder: g's architecture.
        training: S, optimiser, early stopping and seed.
    """

    target: int | str = leaf(7, "the target class y* (the paper's 7), or all for one "
                             "autoencoder per class")
    max_l2: float = leaf(6.5, "b: an example counts only if ||x' - x||_2 <= b, and a sweep "
                         "keeps weights whose mean L2 is <= b")
    autoencoder: AutoencoderConfig = section(AutoencoderConfig, "autoencoder")
    training: ReconstructionTraining = section(ReconstructionTraining, "training")

    def __post_init__(self) -> None:
        check_target(self.target)
        if not (self.max_l2 > 0 and math.isfinite(self.max_l2)):
            raise InputError(f"max_l2 must be > 0, got {self.max_l2}")

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> Any:
        """The config from flat names (``beta`` / ``phi``, ``ae_ch``, ``epochs``, ...)."""
        return from_flat(cls, values)


def check_target(target: Any) -> None:
    """A class index or ``"all"``."""
    if target != "all" and (isinstance(target, bool) or not isinstance(target, int)
                            or target < 0):
        raise InputError(f"target must be a class index or 'all', got {target!r}")


def check_weight(name: str, value: Any, *, upper: float | None = None) -> None:
    """A loss weight: a finite number in [0, upper] or ``"auto"``."""
    if value == "auto":
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (upper is not None and value > upper):
        bounds = f"in [0, {upper:g}]" if upper is not None else ">= 0"
        raise InputError(f"{name} must be a number {bounds} or auto, got {value!r}")


def check_grid(name: str, grid: Any, *, upper: float | None = None) -> None:
    if grid is None:
        return
    if not isinstance(grid, (list, tuple)) or not grid:
        raise InputError(f"{name} must be a non-empty list of numbers, got {grid!r}")
    for value in grid:
        if value == "auto":
            raise InputError(f"{name} lists numbers, not auto")
        check_weight(name, value, upper=upper)


# ------------------------------------------------------------------ data
def balanced_subset(y: torch.Tensor, size: int, target: int, num_classes: int,
                    seed: int) -> torch.Tensor:
    """Indices of S: ``size`` images drawn at random (seeded) with every class but ``target``
    equally represented; when ``size`` does not divide evenly, a seeded choice of classes
    gets one image more.

    Raises:
        InputError: a class has fewer images than its share.
    """
    classes = [c for c in range(num_classes) if c != target]
    per, extra = divmod(size, len(classes))
    gen = torch.Generator().manual_seed(seed)
    bonus = set(torch.tensor(classes)[torch.randperm(len(classes), generator=gen)[:extra]]
                .tolist())
    labels = y.detach().cpu()
    chosen = []
    for c in classes:
        pool = (labels == c).nonzero().flatten()
        need = per + (c in bonus)
        if pool.numel() < need:
            raise InputError(f"subset_size {size} needs {need} images of class {c}, the "
                             f"training split has {pool.numel()}")
        chosen.append(pool[torch.randperm(pool.numel(), generator=gen)[:need]])
    return torch.cat(chosen).sort().values.to(y.device)


@torch.no_grad()
def forge_all(g: nn.Module, x: torch.Tensor, batch: int = FORGE_BATCH) -> torch.Tensor:
    """g(x) for a whole set, ``batch`` images per call, in eval mode."""
    with model_mode(g, "eval"):
        return torch.cat([g(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
                         or [x[:0]]).clamp(0.0, 1.0)


@torch.no_grad()
def adversarial_counts(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                       y: torch.Tensor, target: int | torch.Tensor, max_l2: float, *,
                       clean_pred: torch.Tensor | None = None,
                       adv_pred: torch.Tensor | None = None) -> dict[str, Any]:
    """The validity criteria of AE4DNN Sec. II-B over a set, and the L2 statistics.

    Returns:
        ``inputs``; ``eligible`` (criteria (i) and (ii)); ``adversarial`` ((i)-(iii));
        ``valid`` ((i)-(iv), the paper's adversarial examples); ``rate`` = valid / inputs (the
        paper's adversarial rate); ``success`` = adversarial / eligible (the package's
        targeted-success rule, no distance bound); ``mean_l2`` over the adversarial ones
        (Tables I-III's average distance); ``mean_l2_valid``, ``min_l2``, ``max_l2`` over
        the valid ones; ``hits_any`` = (ii) and (iii) only, what a filter that skips
        criteria (i) and (iv) counts. ``clean_pred`` / ``adv_pred``: the model's predictions
        on ``x`` / ``x_adv`` when already known (then it is not called for them).
    """
    n = int(x.shape[0])
    t = torch.as_tensor(target, device=x.device).expand(n) if n else y
    with model_mode(model, "eval"):
        clean = clean_pred if clean_pred is not None else predict(model, x)[0] if n else y
        adv = adv_pred if adv_pred is not None else predict(model, x_adv)[0] if n else y
    correct, differs, hits = clean == y, clean != t, adv == t
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    ok = correct & differs & hits
    valid = ok & (l2 <= max_l2)

    def stat(values: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> float | None:
        return float(fn(values)) if values.numel() else None

    eligible = int((correct & differs).sum())
    return {
        "inputs": n, "eligible": eligible, "adversarial": int(ok.sum()),
        "valid": int(valid.sum()), "rate": int(valid.sum()) / max(n, 1),
        "success": int(ok.sum()) / max(eligible, 1),
        "mean_l2": stat(l2[ok], torch.mean), "mean_l2_valid": stat(l2[valid], torch.mean),
        "min_l2": stat(l2[valid], torch.min), "max_l2": stat(l2[valid], torch.max),
        "hits_any": int((differs & hits).sum()), "max_l2_bound": max_l2,
    }


# ------------------------------------------------------------------ training
class Objective(Protocol):
    """A method's loss: ``(x, g(x), f(g(x)) logits, target, clean logits or None)`` ->
    (scalar loss, logged terms). ``needs_clean``: whether it reads f(x)."""

    needs_clean: bool

    def __call__(self, x: torch.Tensor, x_rec: torch.Tensor, logits: torch.Tensor,
                 target: torch.Tensor, clean: torch.Tensor | None
                 ) -> tuple[torch.Tensor, dict[str, float]]: ...


class ReconstructionTrainer:
    """Autoencoder, optimiser and RNG of one single-target run (:mod:`.loop`'s trainer)."""

    def __init__(self, cfg: Any, judge: nn.Module, objective: Objective, *, target_class: int,
                 in_channels: int, image_size: int) -> None:
        self.cfg, self.judge, self.objective, self.target_class = cfg, judge, objective, \
            target_class
        train = cfg.training
        device = model_device(judge)
        torch.manual_seed(train.seed + target_class)
        self.G: Autoencoder = build_autoencoder(
            cfg.autoencoder.arch, in_channels, image_size, ch=cfg.autoencoder.ch).to(device)
        self.opt = torch.optim.Adam(self.G.parameters(), lr=train.lr)
        self.rng = torch.Generator(device=device).manual_seed(train.seed + target_class)
        self.target_sha256 = weights_hash(judge)

    def schedule(self, epoch: float) -> dict[str, float]:
        return {"lr": self.cfg.training.lr}  # constant, as Keras' Adam in the paper

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        self.G.train()
        x_rec = self.G(x)  # (B, C, H, W) in [0, 1]
        t = torch.full((x.shape[0],), self.target_class, device=x.device)
        with model_mode(self.judge, "eval"):
            logits = self.judge(x_rec)
            clean = None
            if self.objective.needs_clean:
                with torch.no_grad():
                    clean = self.judge(x)
        loss, terms = self.objective(x, x_rec, logits, t, clean)
        descend(self.opt, loss, list(self.G.parameters()))
        return {"loss": loss.item(), **terms,
                "train_success": (logits.argmax(1) == t).float().mean().item()}

    def quick_success(self, x: torch.Tensor, y: torch.Tensor) -> float:
        xs = x[y != self.target_class][:256]
        with torch.no_grad(), model_mode(self.judge, "eval"):
            pred = self.judge(forge_all(self.G, xs)).argmax(1)
        return (pred == self.target_class).float().mean().item()

    def should_stop(self, meta: dict[str, Any]) -> bool:
        """Early stopping on the training loss: no improvement by ``min_delta`` (relative)
        over the last ``patience`` epochs. Read from the history, so a resumed run agrees."""
        patience = self.cfg.training.patience
        losses = [h["loss"] for h in meta["history"]]
        if patience == 0 or len(losses) <= patience:
            return False
        best_before = min(losses[:-patience])
        recent = min(losses[-patience:])
        return recent > best_before - self.cfg.training.min_delta * abs(best_before)

    def state_parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        return {"G": self.G}, {"G": self.opt}


@dataclasses.dataclass(frozen=True)
class Method:
    """One reconstruction attacker: its kind, the name of its loss weight, the loss for a
    weight, what it reports about S before training (``context(cfg, model, x_s, t)``, e.g.
    AE4DNN's Formula 3 bound) and the weights ``auto`` sweeps (``auto_grid(cfg, context)``)."""

    kind: str
    weight_name: str
    objective: Callable[[Any, float], Objective]
    context: Callable[[Any, nn.Module, torch.Tensor, int], dict[str, Any]]
    auto_grid: Callable[[Any, dict[str, Any]], list[float]]


def _write_run(run_dir: Path, trainer: ReconstructionTrainer, cfg: Any, method: Method,
               info: dict[str, Any], target: int, weight: float,
               metrics: dict[str, Any]) -> None:
    write_checkpoint(run_dir, trainer.G, {
        **info, "kind": method.kind, "target": target, method.weight_name: weight,
        "norm": "l2", "autoencoder": trainer.G.arch_kwargs(),
        "training": jsonable({**to_flat(cfg), method.weight_name: weight}),
        "metrics": jsonable(metrics)})


def _train_weight(cfg: Any, method: Method, judge: nn.Module, t: int, weight: float,
                  subset: tuple[torch.Tensor, torch.Tensor],
                  heldout: tuple[torch.Tensor, torch.Tensor], *, run_dir: Path | None,
                  resume: bool, progress: Progress, info: dict[str, Any],
                  extra: dict[str, Any]) -> tuple[ReconstructionTrainer, dict[str, Any]]:
    """Train g for target ``t`` at one loss weight on S; count on S and on the held-out set
    (``extra``: what the metrics also record about S)."""
    x_s, y_s = subset
    xv, yv = heldout
    run_cfg = dataclasses.replace(cfg, **{method.weight_name: weight})
    trainer = ReconstructionTrainer(run_cfg, judge, method.objective(run_cfg, weight),
                                    target_class=t, in_channels=x_s.shape[1],
                                    image_size=x_s.shape[2])
    trainer.G.init_output(float(x_s.mean()))  # a resumed run's saved weights replace it
    meta = loop.start(trainer, run_dir, resume)
    loop.train_epochs(trainer, x_s, y_s, xv, yv, meta, run_dir, progress,
                      f"{method.kind}-{t}")
    metrics: dict[str, Any] = {**extra, **loop.run_metrics(meta), method.weight_name: weight,
                               "stopped_early": bool(meta.get("stopped_early", False)),
                               "subset": adversarial_counts(judge, x_s, forge_all(trainer.G, x_s),
                                                            y_s, t, cfg.max_l2)}
    if xv.shape[0]:
        start = time.perf_counter()
        x_adv = forge_all(trainer.G, xv)
        seconds = time.perf_counter() - start
        metrics["heldout"] = {**adversarial_counts(judge, xv, x_adv, yv, t, cfg.max_l2),
                              "forge_seconds": seconds}
        metrics["success"] = metrics["heldout"]["success"]
    if run_dir is not None:
        _write_run(run_dir, trainer, cfg, method, info, t, weight, metrics)
    return trainer, metrics


def choose_weight(rows: list[dict[str, Any]], max_l2: float) -> dict[str, Any]:
    """The sweep's rule (AE4DNN Sec. IV-B, RQ1): among the weights whose mean L2 over their
    adversarial examples on S is <= ``max_l2``, the one with the most valid examples (ties:
    the smaller mean L2). When none qualifies, the one with the smallest mean L2."""
    def mean(r: dict[str, Any]) -> float:
        m = r["subset"]["mean_l2"]
        return math.inf if m is None else m

    good = [r for r in rows if mean(r) <= max_l2]
    if good:
        return max(good, key=lambda r: (r["subset"]["valid"], -mean(r)))
    log.warning("no weight keeps the mean L2 under %.3g; taking the one of smallest mean L2 "
                "(sweep weights that favour the distance more: a smaller beta, a larger phi "
                "such as --phi-grid 0.2,0.1,0.05)", max_l2)
    return min(rows, key=mean)


def _fit_target(cfg: Any, method: Method, judge: nn.Module, t: int, data: tuple, *,
                run_dir: Path | None, resume: bool, progress: Progress,
                info: dict[str, Any]) -> dict[str, Any]:
    """Target ``t``: draw S, then train at the configured weight or sweep and keep the
    rule's choice (its weights also written to ``run_dir``)."""
    x, y, xv, yv = data
    idx = balanced_subset(y, cfg.training.subset_size, t, info["num_classes"],
                          cfg.training.seed + t)
    subset = (x[idx], y[idx])
    n = cfg.training.eval_size
    heldout = (xv[:n], yv[:n])
    weight = getattr(cfg, method.weight_name)
    grid_values = getattr(cfg, f"{method.weight_name}_grid")
    extra: dict[str, Any] = {"subset_indices_sha": _indices_digest(idx),
                             **method.context(cfg, judge, subset[0], t)}
    if weight != "auto" and grid_values is None:
        _, metrics = _train_weight(cfg, method, judge, t, float(weight), subset, heldout,
                                   run_dir=run_dir, resume=resume, progress=progress,
                                   info=info, extra=extra)
        return metrics
    grid = ([float(v) for v in grid_values] if grid_values is not None
            else method.auto_grid(cfg, extra))
    rows = []
    for value in grid:
        sub = run_dir / "sweep" / f"{method.weight_name}_{value:g}" if run_dir else None
        done = sub is not None and resume and (sub / CONFIG_FILE).is_file()
        if done:
            rows.append(read_json(sub / CONFIG_FILE)["metrics"])
            continue
        start = time.perf_counter()
        rows.append(_train_weight(cfg, method, judge, t, value, subset, heldout, run_dir=sub,
                                  resume=resume, progress=progress, info=info,
                                  extra=extra)[1])
        log.info("%s target %d %s=%g: %s in %.0f s", method.kind, t, method.weight_name, value,
                 {k: rows[-1]["subset"][k] for k in ("valid", "mean_l2")},
                 time.perf_counter() - start)
    best = choose_weight(rows, cfg.max_l2)
    chosen = best[method.weight_name]
    sweep = [{method.weight_name: r[method.weight_name], "subset": r["subset"],
              "heldout": r.get("heldout"), "epochs": r["epochs"],
              "train_seconds": r["train_seconds"]} for r in rows]
    metrics = {**best, "sweep": sweep, "chosen": chosen,
               "sweep_train_seconds": sum(r["train_seconds"] for r in rows)}
    if run_dir is not None:
        src = run_dir / "sweep" / f"{method.weight_name}_{chosen:g}"
        shutil.copyfile(src / GENERATOR_FILE, run_dir / f".{GENERATOR_FILE}.tmp")
        (run_dir / f".{GENERATOR_FILE}.tmp").replace(run_dir / GENERATOR_FILE)
        config = read_json(src / CONFIG_FILE)
        atomic_write_json(run_dir / CONFIG_FILE, {**config, "metrics": jsonable(metrics)})
    return metrics


def _indices_digest(idx: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(idx.cpu().numpy().tobytes()).hexdigest()[:16]


def fit(cfg: Any, method: Method, target: nn.Module, train: Any, *, val: Any = None,
        run_dir: str | Path | None = None, resume: bool = False, progress: Progress = None,
        dataset: str | None = None, target_run_dir: str | Path | None = None
        ) -> dict[str, Any]:
    """Train ``method``'s autoencoder(s) for ``cfg.target`` (a class, or ``"all"``).

    Args:
        cfg: an :class:`~advforge.generative.ae4dnn.AE4DNNConfig` or
            :class:`~advforge.generative.atn.ATNConfig`.
        method: the method's :class:`Method`.
        target: the attacked classifier (images in [0, 1] -> logits).
        train: the training split (S is drawn from it); val: held-out images for the final
            counts (the training split when None).
        run_dir: where each target's run goes (``target_<t>/`` for ``"all"``); None: nothing
            is written.
        resume: continue interrupted runs; finished targets and sweep points are kept.

    Returns:
        Metrics (per target for ``"all"``).
    """
    device = model_device(target)
    x, y, xv, yv = train_val_tensors(train, val, device)
    info = {**per_target_run_info(target, x, y, dataset=dataset, seed=cfg.training.seed,
                                  target_run_dir=target_run_dir), "max_l2": cfg.max_l2}
    num_classes = info["num_classes"]
    run_dir = Path(run_dir) if run_dir is not None else None
    targets = range(num_classes) if cfg.target == "all" else [cfg.target]
    if cfg.target != "all" and cfg.target >= num_classes:
        raise InputError(f"target {cfg.target} is not a class of {num_classes}")
    per_target = {}
    for t in targets:
        sub = run_dir / f"target_{t}" if run_dir is not None and cfg.target == "all" else run_dir
        if sub is not None and cfg.target == "all" and resume and (sub / CONFIG_FILE).is_file():
            per_target[t] = read_json(sub / CONFIG_FILE)["metrics"]
            continue
        per_target[t] = _fit_target(cfg, method, target, t, (x, y, xv, yv), run_dir=sub,
                                    resume=resume, progress=progress, info=info)
    if cfg.target != "all":
        return per_target[cfg.target]
    metrics = _summarise(per_target)
    if run_dir is not None:
        atomic_write_json(run_dir / CONFIG_FILE, {
            **info, "kind": method.kind, "target": "all", "norm": "l2",
            "runs": {str(t): f"target_{t}" for t in per_target},
            "training": jsonable(to_flat(cfg)), "metrics": jsonable(metrics)})
    return metrics


def _summarise(per_target: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Every target's metrics and the held-out counts summed over targets."""
    out: dict[str, Any] = {"per_target": per_target,
                           "train_seconds": sum(m["train_seconds"] for m in per_target.values())}
    held = [m["heldout"] for m in per_target.values() if "heldout" in m]
    if held:
        eligible = sum(h["eligible"] for h in held)
        adversarial = sum(h["adversarial"] for h in held)
        out["heldout"] = {"inputs": sum(h["inputs"] for h in held), "eligible": eligible,
                          "adversarial": adversarial,
                          "valid": sum(h["valid"] for h in held),
                          "success": adversarial / max(eligible, 1),
                          "rate": sum(h["valid"] for h in held)
                          / max(sum(h["inputs"] for h in held), 1)}
        out["success"] = out["heldout"]["success"]
    return out


def load_autoencoder(run_dir: Path, cfg: dict[str, Any]) -> Autoencoder:
    """The trained autoencoder of a single-target run directory (weights only)."""
    from advforge.errors import CheckpointError
    from advforge.utils.checkpoint import load_safetensors

    try:
        kwargs = dict(cfg["autoencoder"])
        g = build_autoencoder(kwargs.pop("arch"), **kwargs)
    except (KeyError, TypeError, InputError) as exc:
        raise CheckpointError(f"{run_dir / CONFIG_FILE} has no valid autoencoder entry: "
                              f"{exc}") from None
    try:
        g.load_state_dict(load_safetensors(run_dir / GENERATOR_FILE), strict=True)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        raise CheckpointError(f"{run_dir / GENERATOR_FILE} does not fit its config: "
                              f"{lines[1 if len(lines) > 1 else 0].strip()}") from None
    return g.eval()
