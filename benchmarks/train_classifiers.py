"""Train the zoo's classifiers with the CLI's defaults and record their test accuracy.

Each row runs ``advforge train-classifier --arch ARCH --dataset DATASET --out DIR`` with no
other flag, so the recipe registered for that pair (``advforge recipes``) is what is measured,
and records the test accuracy and training time the run wrote into its ``config.json``, next to
the bar the recipe is held to (97.5% for Models A and B on the 4,000-image ``mnist5k``; the
AI-GAN paper's Table I gives their architectures, not their accuracy).

Usage: ``python benchmarks/train_classifiers.py [--pairs model_a:mnist5k,model_b:mnist5k]
[--runs runs/bench] [--threads 1]``; writes ``benchmarks/results/classifiers_<dataset>.json``
for each dataset measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from advforge.utils.checkpoint import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"
BARS = {("model_a", "mnist5k"): 0.975, ("model_b", "mnist5k"): 0.975,
        ("model_b", "fashion-mnist"): 0.91}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", default="model_a:mnist5k,model_b:mnist5k",
                   help="comma-separated ARCH:DATASET pairs")
    p.add_argument("--runs", default="runs/bench", help="where the run directories go")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    return p.parse_args()


def train(arch: str, dataset: str, run_dir: Path, threads: int) -> dict:
    """One CLI run with only --arch, --dataset and --out; its recorded figures."""
    command = ["advforge", "train-classifier", "--arch", arch, "--dataset", dataset,
               "--out", str(run_dir), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "advforge.cli", *command[1:]], check=True, env=env)
    wall = time.perf_counter() - start
    config = json.loads((run_dir / "config.json").read_text())
    metrics = config["metrics"]
    return {"arch": arch, "dataset": dataset, "command": " ".join(command[:-3]),
            "recipe": config.get("extra", {}).get("train_config", {}).get("recipe"),
            "test_accuracy": metrics["test_accuracy"], "train_seconds": metrics["train_seconds"],
            "wall_seconds": round(wall, 1), "epochs": metrics.get("epochs"),
            "bar": BARS.get((arch, dataset)),
            "passes": metrics["test_accuracy"] >= BARS.get((arch, dataset), 0.0)}


def record_row(row: dict, threads: int) -> None:
    """Write ``row`` into its dataset's JSON at once, replacing that architecture's earlier row
    and keeping the others in place (recipes cite rows by index)."""
    path = RESULTS / f"classifiers_{row['dataset']}.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    slot = next((i for i, old in enumerate(rows) if old["arch"] == row["arch"]), None)
    row = {**row, "threads": threads}
    if slot is None:
        rows.append(row)
    else:
        rows[slot] = row
    record = {"benchmark": "train_classifiers",
              "machine": platform.processor() or platform.machine(), "rows": rows}
    atomic_write_json(path, record)


def main() -> int:
    args = parse_args()
    for pair in args.pairs.split(","):
        arch, dataset = pair.split(":")
        row = train(arch, dataset, Path(args.runs) / f"{arch}_{dataset}", args.threads)
        print(f"{arch} on {dataset}: {100 * row['test_accuracy']:.2f}% "
              f"(bar {100 * (row['bar'] or 0):.1f}%) in {row['train_seconds']:.0f}s", flush=True)
        record_row(row, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
