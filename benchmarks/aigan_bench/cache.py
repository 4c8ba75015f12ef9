"""The --work cache of trained attackers and the --out file's kept parts: what a cached
attacker was trained with, and which kept figures cannot stand beside this run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advforge.generative import AIGANConfig
from advforge.generative.config import with_config_defaults
from advforge.utils.checkpoint import read_json
from aigan_bench.settings import PARTS


def trained_with(run_dir: Path) -> dict[str, Any]:
    """The training config a cached attacker was made with, and how many training images it
    saw (parts of one --out file may come from runs with different settings, so every part
    records its own; None when the run's metrics lack ``train_images``)."""
    config = read_json(run_dir / "config.json")
    metrics = config.get("metrics", {})
    return {**config.get("training", {}), "train_images": metrics.get("train_images"),
            "extensions": metrics.get("extensions", [])}


def config_difference(a: dict[str, Any] | None, b: dict[str, Any] | None,
                      *expected: str, config_class: type = AIGANConfig) -> str:
    """``key: a -> b`` for the training fields two runs differ in (beside ``expected``).

    A field one record lacks counts as what a run without it did (``config_class``'s
    default or ``PREDATED`` value), and a record without ``extensions`` as never extended."""
    if not a or not b:
        return ""
    a, b = ({"extensions": [], **with_config_defaults(config_class, c)} for c in (a, b))
    keys = sorted(k for k in set(a) | set(b) if k not in expected and a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)} -> {b.get(k)}" for k in keys)


def kept_parts_not_comparable(res: dict[str, Any], recomputed: set[str], n_eval: int,
                              model_sha256: str, clean_accuracy: float) -> list[str]:
    """The parts that stay in an --out file but cannot stand beside this run's: every table
    compares parts pair by pair (AI-GAN beside PGD-100 on the same pairs of the same model),
    so a part scored on another number of test images, or against another target model,
    would print a false gap. A target model retrained from the same config is another model
    (training is not bit-reproducible across machines). A part without its own ``n_eval``
    falls back to the setting's; a part without a weights hash is checked by its clean
    accuracy on the eval images, which a different model rarely matches exactly."""
    stale = []
    for part in PARTS:
        if part not in res or part in recomputed:
            continue
        row = res[part]
        n = row.get("n_eval", res.get("n_eval"))
        sha, acc = row.get("model_sha256"), row.get("clean_accuracy")
        if sha is not None:
            other_model = sha != model_sha256
        else:  # no hash recorded: the clean accuracy on the same images stands in
            other_model = acc is not None and abs(acc - clean_accuracy) > 1e-9
        if n is not None and n != n_eval:
            stale.append(f"{part} ({n} test images)")
        elif other_model:
            stale.append(f"{part} (another target model)")
    return stale
