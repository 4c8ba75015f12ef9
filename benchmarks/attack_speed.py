"""Our FGSM, PGD-40 and C&W L2 against torchattacks', side by side in one process.

On Model A and Model B trained on ``mnist5k`` (run directories from ``advforge
train-classifier``), the 1,000 test images, eps 0.3: each attack pair is warmed up, then timed
``--repeats`` times alternately (ours, theirs, ours, ...) so background load hits both alike; the
median wall time is reported. Success is untargeted and counted over the inputs the model
classifies correctly. The checks: FGSM and PGD time ratio ours/theirs <= 1.05 with success
within 1 point; our C&W L2 >= 99% success and, over the inputs both fool, a smaller mean L2 than
torchattacks' CW at its defaults (c=1, kappa=0, 50 steps, lr 0.01; no binary search).

Usage: ``python benchmarks/attack_speed.py [--model-a DIR] [--model-b DIR] [--threads 1]``;
writes ``benchmarks/results/attack_speed.json``. Exit status 2 when a model is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import advforge
from advforge import attacks
from advforge.utils.checkpoint import atomic_write_json

try:
    import torchattacks
except ImportError:  # the comparison is optional; ours still runs and is reported
    torchattacks = None

EPS = 0.3
OURS = {
    "fgsm": ("fgsm", {"eps": EPS}),
    "pgd40": ("pgd", {"eps": EPS, "steps": 40, "step_size": 0.01, "random_start": True}),
    "cw_l2": ("cw_l2", {}),
}
THEIRS = {
    "fgsm": lambda m: torchattacks.FGSM(m, eps=EPS),
    "pgd40": lambda m: torchattacks.PGD(m, eps=EPS, alpha=0.01, steps=40, random_start=True),
    "cw_l2": lambda m: torchattacks.CW(m),
}
TRAIN_HINT = "advforge train-classifier --config configs/train_{arch}_mnist5k.yaml --out {path}"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-a", default="runs/model_a_mnist5k")
    p.add_argument("--model-b", default="runs/model_b_mnist5k")
    p.add_argument("--attacks", default="fgsm,pgd40,cw_l2", help="subset of " + ",".join(OURS))
    p.add_argument("--n", type=int, default=1000, help="test images (the first n)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of FGSM and PGD")
    p.add_argument("--cw-repeats", type=int, default=1, help="timed runs of C&W (slow)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/attack_speed.json")
    return p.parse_args()


def load_models(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    models = {}
    for arch, path in (("model_a", args.model_a), ("model_b", args.model_b)):
        if not (Path(path) / "config.json").is_file():
            print(f"error: no trained {arch} in {path!r}. Train it first:\n  "
                  + TRAIN_HINT.format(arch=arch, path=path), file=sys.stderr)
            sys.exit(2)
        models[arch] = advforge.load_model(path)
    return models


def fooled(model, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x_adv).argmax(dim=1) != y


def timed(fn, *args, **kwargs) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def compare(model, x, y, correct, key: str, repeats: int, seed: int) -> dict:
    """Time ours and theirs alternately on all of ``x``; success over the ``correct`` ones."""
    name, hyper = OURS[key]
    ours = attacks.create(name, **hyper)
    theirs = THEIRS[key](model) if torchattacks is not None else None
    runs = {"ours": [], "theirs": []}
    warm = slice(0, min(64, len(x)))
    torch.manual_seed(seed)
    ours(model, x[warm], y[warm])  # warm-up: allocator, kernels, first-call overheads
    if theirs is not None:
        theirs(x[warm], y[warm])
    for r in range(repeats):
        gen = torch.Generator().manual_seed(seed + r)
        runs["ours"].append(timed(ours, model, x, y, generator=gen))
        if theirs is not None:
            torch.manual_seed(seed + r)  # torchattacks draws its random start from the global RNG
            runs["theirs"].append(timed(theirs, x, y))
            for p in model.parameters():  # torchattacks' CW calls backward(): drop its grads
                p.grad = None
    row = {"attack": name, "hyper": ours.hyper(), "repeats": repeats}
    n_correct = int(correct.sum())
    for who, results in runs.items():
        if not results:
            continue
        ok = [fooled(model, xa, y) & correct for _, xa in results]
        l2 = (results[-1][1] - x).flatten(1).norm(dim=1)
        row[who] = {
            "seconds_median": statistics.median(t for t, _ in results),
            "seconds_all": [t for t, _ in results],
            "success_rate": (  # None when the model gets no input right
                statistics.mean(o.sum().item() / n_correct for o in ok) if n_correct else None
            ),
            "mean_l2_fooled": l2[ok[-1]].mean().item() if ok[-1].any() else None,
            "_fooled": ok[-1],
            "_l2": l2,
        }
    if "theirs" in row:
        row["time_ratio"] = row["ours"]["seconds_median"] / row["theirs"]["seconds_median"]
        both = row["ours"]["_fooled"] & row["theirs"]["_fooled"]
        row["n_both_fooled"] = int(both.sum())
        if both.any():
            row["mean_l2_both_fooled"] = {
                w: row[w]["_l2"][both].mean().item() for w in ("ours", "theirs")
            }
    for who in ("ours", "theirs"):
        if who in row:
            del row[who]["_fooled"], row[who]["_l2"]
    return row


def verdict(key: str, row: dict) -> dict[str, bool]:
    """The checks for one attack row (only those that can be judged)."""
    checks = {}
    if row["ours"]["success_rate"] is None:
        return {"any input classified correctly": False}
    if key == "cw_l2":
        checks["success >= 99%"] = row["ours"]["success_rate"] >= 0.99
        if "mean_l2_both_fooled" in row:
            l2 = row["mean_l2_both_fooled"]
            checks["smaller mean L2 (both fooled)"] = l2["ours"] < l2["theirs"]
    elif "theirs" in row:
        checks["time ratio <= 1.05"] = row["time_ratio"] <= 1.05
        gap = abs(row["ours"]["success_rate"] - row["theirs"]["success_rate"])
        checks["success within 1 point"] = gap <= 0.01
    return checks


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def print_table(results: dict) -> None:
    head = f"{'model':8} {'attack':6} {'ours s':>8} {'theirs s':>8} {'ratio':>6} "
    print(head + f"{'ours succ':>9} {'their succ':>10} {'L2 ours/theirs':>15}  checks")
    for arch, rows in results.items():
        for key, row in rows.items():
            th, nan = row.get("theirs", {}), float("nan")
            l2 = row.get("mean_l2_both_fooled")
            l2s = f"{l2['ours']:.3f}/{l2['theirs']:.3f}" if l2 else "-"
            checks = ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in row["checks"].items())
            print(
                f"{arch:8} {key:6} {row['ours']['seconds_median']:8.2f} "
                f"{th.get('seconds_median', nan):8.2f} {row.get('time_ratio', nan):6.3f} "
                f"{_pct(row['ours']['success_rate']):>9} {_pct(th.get('success_rate')):>10} "
                f"{l2s:>15}  {checks}"
            )


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keys = [k for k in args.attacks.split(",") if k]
    unknown = [k for k in keys if k not in OURS]
    if unknown:
        print(f"error: unknown attack(s) {unknown}; choose from {list(OURS)}", file=sys.stderr)
        return 2
    models = load_models(args)
    test = advforge.data.load("mnist5k").test
    x, y = test.x[: args.n], test.y[: args.n]
    if torchattacks is None:
        print("note: torchattacks is not installed (pip install --no-deps torchattacks); "
              "timing ours only", file=sys.stderr)
    results, clean = {}, {}
    for arch, model in models.items():
        correct = ~fooled(model, x, y)
        clean[arch] = correct.float().mean().item()
        results[arch] = {}
        for key in keys:
            repeats = args.cw_repeats if key == "cw_l2" else args.repeats
            row = compare(model, x, y, correct, key, repeats, args.seed)
            row["n_images"], row["n_correct"] = len(x), int(correct.sum())
            row["checks"] = verdict(key, row)
            results[arch][key] = row
            brief = {k: row[k] for k in ("time_ratio", "mean_l2_both_fooled", "checks") if k in row}
            brief.update({w: row[w] for w in ("ours", "theirs") if w in row})
            print(f"[{arch} {key}] {json.dumps(brief)}", flush=True)
    print_table(results)
    atomic_write_json(args.out, {
        "benchmark": "attack_speed", "dataset": "mnist5k", "n_images": len(x), "eps": EPS,
        "clean_accuracy": clean, "results": results, "seed": args.seed,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(), "platform": platform.platform(),
        "torch": torch.__version__, "advforge": advforge.__version__,
        "torchattacks": getattr(torchattacks, "__version__", None),
        "note": "success counted over inputs the model classifies correctly; time = median",
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
