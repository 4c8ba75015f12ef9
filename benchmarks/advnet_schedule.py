"""How the adversarial-networks schedule shapes robustness (Wang & Yu, Sec. 3.2 and 4.1).

The paper ties robustness on MNIST to the adversary's strength: "we can improve the robustness
of D by running more updates on G, so we run 5 updates on G (each update contains 5 gradient
steps) for each update on D". This benchmark trains ``advforge defend adv-net`` variants that
differ only in their flags, and after every ``--every`` epochs measures on the first ``--n``
test images the accuracy on clean inputs, under G's own noise, white-box FGS (Eq. 10) and
PGD-10 (Eq. 11), so the robustness of each schedule can be read against the number of D
updates and the CPU time it has had.

    python benchmarks/advnet_schedule.py --dataset mnist5k --epochs 40 --every 5 \\
        --variant "paper=--g-updates 5 --width 64"
    python benchmarks/advnet_schedule.py --dataset mnist5k --epochs 15 --every 5 \\
        --variant "one-update=--g-updates 1 --width 16"

Each variant is one resumable run directory under ``--work``; a checkpoint already in the
JSON is kept, so a stopped run continues where it stopped. Writes
``benchmarks/results/advnet_schedule_<dataset>-<arch>.json`` after every checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

import advforge
from advforge.cli import main as advforge_main
from advforge.defenses.advnet.attack import load_generator
from advforge.utils.checkpoint import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defense_tables import accuracy, craft  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="d1", help="the paper's D1 for MNIST-like data")
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=40, help="epochs of each variant")
    p.add_argument("--every", type=int, default=5, help="epochs between measurements")
    p.add_argument("--n", type=int, default=500, help="test images (the first n)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help="a variant: its name and its extra `defend adv-net` flags "
                        "(repeatable; default: the paper's MNIST schedule, which is the "
                        "recipe's; one G update per D update with a narrow G; and the paper's "
                        "schedule with G on Adam(0.002, beta1 0.5), the paper's CIFAR optimiser)")
    p.add_argument("--work", default="runs/advnet_schedule", help="where the runs go")
    p.add_argument("--out", default=None, help="result JSON (default under benchmarks/results)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true",
                   help="tiny data, width 4 and 1 G step: checks the script end to end")
    return p.parse_args(argv)


DEFAULT_VARIANTS = ("paper=--g-updates 5 --width 64", "one-update=--g-updates 1 --width 16",
                    "paper-adam=--g-updates 5 --width 64 --g-optimizer adam --g-lr 0.002 "
                    "--g-momentum 0.5")
SMOKE_FLAGS = ["--limit-train", "64", "--limit-test", "32", "--g-steps", "1", "--width", "4"]


def parse_variants(specs: list[str]) -> dict[str, list[str]]:
    variants = {}
    for spec in specs or DEFAULT_VARIANTS:
        name, sep, flags = spec.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"error: --variant wants NAME=FLAGS, got {spec!r}")
        variants[name.strip()] = shlex.split(flags)
    return variants


def train_to(args: argparse.Namespace, run: Path, flags: list[str], epochs: int) -> float:
    """Train (or resume) the variant's run up to ``epochs``; returns the wall seconds."""
    argv = ["defend", "adv-net", "--arch", args.arch, "--dataset", args.dataset,
            "--eps", f"{args.eps:g}", "--out", str(run), "--epochs", str(epochs), "--quiet",
            *flags, *(SMOKE_FLAGS if args.smoke else [])]
    if (run / "train_state.safetensors").is_file():
        argv.append("--resume")
    start = time.perf_counter()
    if advforge_main(argv) != 0:
        raise SystemExit(f"training failed: advforge {' '.join(argv)}")
    return time.perf_counter() - start


def d_updates(run: Path, epochs: int) -> int:
    """D updates after ``epochs``: one per ``g_updates`` mini-batches, counted over the run."""
    config = json.loads((run / "config.json").read_text())
    batches = math.ceil(config["metrics"]["n_train"]
                        / config["extra"]["train_config"]["batch_size"])
    return math.ceil(epochs * batches / config["extra"]["defense"]["g_updates"])


def measure(args: argparse.Namespace, run: Path, x: torch.Tensor, y: torch.Tensor
            ) -> dict[str, float]:
    model = advforge.load_model(run)
    _, perturb = load_generator(run)
    return {"clean": accuracy(model, x, y),
            "g_noise": accuracy(model, perturb(x, y, torch.Generator().manual_seed(0)), y),
            "fgs": accuracy(model, craft(model, "fgs", args.eps, x, y), y),
            "pgd10": accuracy(model, craft(model, "pgd10", args.eps, x, y), y)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = parse_variants(args.variant)
    suffix = "-smoke" if args.smoke else ""
    out = Path(args.out or ROOT / "benchmarks" / "results"
               / f"advnet_schedule_{args.dataset}-{args.arch}{suffix}.json")
    record = json.loads(out.read_text()) if out.is_file() else {}
    record.update({"benchmark": "advnet_schedule", "dataset": args.dataset, "arch": args.arch,
                   "eps": args.eps, "n": args.n, "smoke": args.smoke,
                   "machine": platform.machine(), "threads": torch.get_num_threads()})
    record.setdefault("variants", {})
    splits = advforge.data.load(args.dataset)
    n = min(args.n, len(splits.test))
    x, y = splits.test.x[:n], splits.test.y[:n]
    tag = f"{args.dataset}-{args.arch}-eps{args.eps:g}{suffix}"
    for name, flags in variants.items():
        run = Path(args.work) / tag / name
        entry = record["variants"].setdefault(name, {"flags": flags, "checkpoints": []})
        if entry["flags"] != flags:
            raise SystemExit(f"error: variant {name!r} was measured with flags "
                             f"{entry['flags']}, not {flags}; rename it or remove its entry")
        done = {c["epoch"] for c in entry["checkpoints"]}
        for epoch in range(args.every, args.epochs + 1, args.every):
            if epoch in done:
                continue
            train_to(args, run, flags, epoch)
            config = json.loads((run / "config.json").read_text())
            row = {"epoch": epoch, "d_updates": d_updates(run, epoch),
                   "train_seconds": round(config["metrics"]["train_seconds"], 1),
                   **measure(args, run, x, y)}
            entry["checkpoints"].append(row)
            print(f"{name}: {json.dumps(row)}", flush=True)
            atomic_write_json(out, record)
    atomic_write_json(out, record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
