"""``advforge defend pgd-at`` in one process and under ``torchrun --nproc_per_node=2`` on real
data: the two models' clean and PGD-10 accuracy should agree within noise.

Both runs use the same command, recipe and seed; the distributed one shards every global batch
across two gloo ranks (one thread each), the single one runs on ``--threads`` threads. PGD-AT
draws random starts, so the two runs see different noise: the figures agree within the spread
of two seeds, not bit for bit (the tests check bit-level agreement with a deterministic attack).

    python benchmarks/ddp_check.py --epochs 3

Writes ``benchmarks/results/ddp_check_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import advforge
from advforge.attacks import create
from advforge.utils.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="model_b")
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n", type=int, default=1000, help="test images scored")
    p.add_argument("--threads", type=int, default=2, help="threads of the one-process run")
    p.add_argument("--work", default=str(ROOT / "runs" / "ddp_check"))
    p.add_argument("--out", default=None)
    p.add_argument("--extra", action="append", default=[], metavar="FLAG",
                   help="a flag added to both training commands (smoke tests)")
    return p.parse_args(argv)


def train(args: argparse.Namespace, ranks: int) -> tuple[Path, float, list[str]]:
    """One ``defend pgd-at`` run with ``ranks`` processes (1: plain); its dir, seconds, argv."""
    out = Path(args.work) / f"ranks{ranks}"
    cli = ["defend", "pgd-at", "--arch", args.arch, "--dataset", args.dataset, "--eps",
           str(args.eps), "--epochs", str(args.epochs), "--seed", "0", "--out", str(out),
           "--quiet", *args.extra]
    if ranks == 1:
        argv = [sys.executable, "-m", "advforge.cli", *cli]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    else:
        torchrun = Path(sys.executable).with_name("torchrun")
        argv = [str(torchrun), "--standalone", f"--nproc_per_node={ranks}", "-m",
                "advforge.cli", *cli]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    return out, time.perf_counter() - start, argv[argv.index("defend"):]


def score(run: Path, args: argparse.Namespace) -> dict[str, float]:
    """Clean and PGD-10 (eps/4 steps, random start) accuracy on the first ``--n`` images."""
    model = advforge.load_model(run).eval()
    test = advforge.data.load(args.dataset).test
    x, y = test.x[: args.n], test.y[: args.n]
    pgd = create("pgd", eps=args.eps, steps=10, step_size=args.eps / 4, random_start=True)
    x_adv = pgd(model, x, y, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return {"clean": float((model(x).argmax(1) == y).float().mean()),
                "pgd10": float((model(x_adv).argmax(1) == y).float().mean())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {}
    for ranks in (1, 2):
        run, seconds, command = train(args, ranks)
        rows[f"ranks{ranks}"] = {**score(run, args), "wall_seconds": seconds,
                                 "command": ("torchrun --nproc_per_node=2 -m advforge.cli "
                                             if ranks > 1 else "advforge ") + " ".join(command)}
        print(f"{ranks} process(es): {rows[f'ranks{ranks}']}", flush=True)
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"ddp_check_{args.dataset}.json")
    atomic_write_json(out, {"benchmark": "ddp_check", "dataset": args.dataset, "arch": args.arch,
                            "eps": args.eps, "epochs": args.epochs, "n": args.n,
                            "threads_one_process": args.threads, "torch": torch.__version__,
                            "extra": args.extra, "results": rows})
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
