"""Train the zoo's classifiers with the CLI's defaults and record their test accuracy.

Each row runs ``advforge train-classifier --arch ARCH --dataset DATASET --out DIR`` with no
other flag, so the recipe registered for that pair (``advforge recipes``) is what is measured,
and records the test accuracy and training time the run wrote into its ``config.json``, next to
the bar the recipe is held to (97.5% for Models A and B on the 4,000-image ``mnist5k``; the
AI-GAN paper's Table I gives their architectures, not their accuracy).

Usage: ``python benchmarks/train_classifiers.py [--pairs model_a:mnist5k,model_b:mnist5k]
[--runs runs/bench] [--threads 1]``; writes ``benchmarks/results/classifiers_<dataset>.json``
for each dataset measured. ``--record RUN[,RUN]`` records runs already trained by that same
command (a model another benchmark was measured on) instead of training again; a run trained
with any setting other than the recipe's is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", default="model_a:mnist5k,model_b:mnist5k",
                   help="comma-separated ARCH:DATASET pairs")
    p.add_argument("--runs", default="runs/bench", help="where the run directories go")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    p.add_argument("--record", default="",
                   help="comma-separated run directories trained by the default command: "
                        "record them instead of training (--pairs is then ignored)")
    return p.parse_args(argv)


def train(arch: str, dataset: str, run_dir: Path, threads: int) -> dict:
    """One CLI run with only --arch, --dataset and --out; its recorded figures."""
    command = ["advforge", "train-classifier", "--arch", arch, "--dataset", dataset,
               "--out", str(run_dir), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "advforge.cli", *command[1:]], check=True, env=env)
    wall = time.perf_counter() - start
    return row_of(arch, dataset, run_dir, wall)


def row_of(arch: str, dataset: str, run_dir: Path, wall: float) -> dict:
    """The figures ``run_dir``'s ``config.json`` records, as a table row."""
    from advforge.generative.identity import weights_hash
    from advforge.models import load_model

    config = json.loads((run_dir / "config.json").read_text())
    metrics = config["metrics"]
    return {"arch": arch, "dataset": dataset,
            "model_sha256": weights_hash(load_model(run_dir).eval()),
            "command": f"advforge train-classifier --arch {arch} --dataset {dataset}",
            "recipe": config.get("extra", {}).get("train_config", {}).get("recipe"),
            "test_accuracy": metrics["test_accuracy"], "train_seconds": metrics["train_seconds"],
            "wall_seconds": round(wall, 1), "epochs": metrics.get("epochs"),
            "bar": BARS.get((arch, dataset)),
            "passes": metrics["test_accuracy"] >= BARS.get((arch, dataset), 0.0)}


def recorded(run_dir: Path) -> dict:
    """The row of a run trained earlier, provided the default command made it: every
    training setting it records equals what ``advforge train-classifier --arch ARCH
    --dataset DATASET`` resolves today (the recipe), the output path aside."""
    from advforge.cli import build_parser
    from advforge.cli.model_commands import build_train_config

    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise SystemExit(f"--record: {run_dir} has no config.json")
    config = json.loads(config_file.read_text())
    made = config.get("extra", {}).get("train_config") or {}
    arch, dataset = made.get("arch"), made.get("dataset")
    if not arch or not dataset:
        raise SystemExit(f"--record: {config_file} records no training settings")
    argv = ["train-classifier", "--arch", arch, "--dataset", dataset, "--out", str(run_dir)]
    with contextlib.redirect_stdout(io.StringIO()):  # the recipe line
        wanted, _ = build_train_config(build_parser().parse_args(argv))
    wanted = dataclasses.asdict(wanted)
    differ = sorted(k for k in wanted if k not in ("out", "resume")
                    and _plain(wanted[k]) != _plain(made.get(k)))
    if differ:
        raise SystemExit(f"--record: {run_dir} was trained with other settings than "
                         f"`advforge {' '.join(argv[:-2])}` gives ({', '.join(differ)})")
    return row_of(arch, dataset, run_dir, config["metrics"].get("total_seconds", 0.0))


def _plain(value: object) -> object:
    """JSON's view of a setting (tuples are lists there)."""
    return json.loads(json.dumps(value))


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.record:
        for run in args.record.split(","):
            row = recorded(Path(run))
            threads = json.loads((Path(run) / "config.json").read_text())["metrics"].get(
                "torch_threads", args.threads)
            print(f"{row['arch']} on {row['dataset']}: {100 * row['test_accuracy']:.2f}% "
                  f"in {row['train_seconds']:.0f}s (recorded from {run})", flush=True)
            record_row(row, threads)
        return 0
    for pair in args.pairs.split(","):
        arch, dataset = pair.split(":")
        row = train(arch, dataset, Path(args.runs) / f"{arch}_{dataset}", args.threads)
        print(f"{arch} on {dataset}: {100 * row['test_accuracy']:.2f}% "
              f"(bar {100 * (row['bar'] or 0):.1f}%) in {row['train_seconds']:.0f}s", flush=True)
        record_row(row, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
