"""Our APGD-CE, APGD-T and FAB-T beside torchattacks' APGD, APGDT and FAB on an adversarially
trained model.

Croce & Hein (2020)'s settings for all: 100 iterations, one restart, rho 0.75; APGD-T and
FAB-T over the 9 highest non-true classes (torchattacks: ``APGDT(n_classes=10)`` and
``FAB(multi_targeted=True, n_classes=10)``, which attack the ``n_classes - 1`` top classes);
FAB's alpha_max 0.1, eta 1.05, beta 0.9. Robust accuracy is counted over the first ``--n``
test images (clean mistakes count as not robust). Each attack is timed once per repeat,
ours and theirs alternately, in the same process. The checks: robust accuracy within 1 point
and ours no slower (time ratio ours / theirs <= 1.05).

    make bench   # installs torchattacks with --no-deps
    python benchmarks/apgd_agreement.py --model runs/pgd-at_model_b_mnist5k --eps 0.3
    python benchmarks/apgd_agreement.py --model RUN --dataset fashion-mnist --eps 0.1 \
        --attacks apgd_ce,apgd_t,fab_t

Writes ``benchmarks/results/apgd_agreement_<dataset>.json``; exit status 2 when the model or
torchattacks is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import advforge
from advforge import attacks
from advforge.utils.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="runs/pgd-at_model_b_mnist5k")
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--attacks", default="apgd_ce,apgd_t",
                   help=f"comma-separated, of {', '.join(PAIRS)}")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def robust_accuracy(model, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.cat([model(x_adv[i:i + 500]).argmax(1)
                                for i in range(0, len(x_adv), 500)]).eq(y).float().mean())


PAIRS = ("apgd_ce", "apgd_t", "fab_t")


def pairs(args: argparse.Namespace, model, torchattacks) -> dict:
    """name -> (ours, theirs) callables of (x, y) -> x_adv, for the names in --attacks."""
    k = model.num_classes
    built = {
        "apgd_ce": (attacks.create("apgd_ce", eps=args.eps, steps=args.steps),
                    lambda: torchattacks.APGD(model, norm="Linf", eps=args.eps,
                                              steps=args.steps, n_restarts=1, loss="ce",
                                              rho=0.75)),
        "apgd_t": (attacks.create("apgd_t", eps=args.eps, steps=args.steps,
                                  n_target_classes=9),
                   lambda: torchattacks.APGDT(model, norm="Linf", eps=args.eps,
                                              steps=args.steps, n_restarts=1, rho=0.75,
                                              n_classes=k)),
        "fab_t": (attacks.create("fab_t", eps=args.eps, steps=args.steps, n_target_classes=9),
                  lambda: torchattacks.FAB(model, norm="Linf", eps=args.eps, steps=args.steps,
                                           n_restarts=1, alpha_max=0.1, eta=1.05, beta=0.9,
                                           multi_targeted=True, n_classes=k)),
    }
    gen = torch.Generator().manual_seed(0)
    chosen = {}
    for name in args.attacks.split(","):
        if name not in built:
            raise SystemExit(f"error: unknown attack {name!r}; choose from {', '.join(PAIRS)}")
        ours, theirs = built[name]
        chosen[name] = (lambda x, y, a=ours: a(model, x, y, generator=gen), theirs())
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torchattacks
    except ImportError:
        print("error: torchattacks is not installed (make bench installs it)", file=sys.stderr)
        return 2
    if not (Path(args.model) / "config.json").is_file():
        print(f"error: no classifier run in {args.model}; train one with: advforge defend "
              f"pgd-at --arch model_b --dataset {args.dataset} --out {args.model}",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    model = advforge.load_model(args.model)
    test = advforge.data.load(args.dataset).test
    x, y = test.x[: args.n], test.y[: args.n]
    record = {"benchmark": "apgd_agreement", "model": args.model, "dataset": args.dataset,
              "eps": args.eps, "n": len(x), "steps": args.steps,
              "clean_accuracy": robust_accuracy(model, x, y),
              "machine": platform.machine(), "threads": torch.get_num_threads(),
              "torchattacks": torchattacks.__version__, "rows": {}}
    for name, (ours, theirs) in pairs(args, model, torchattacks).items():
        times = {"ours": [], "theirs": []}
        accs = {"ours": [], "theirs": []}
        for _ in range(args.repeats):
            for who, fn in (("ours", ours), ("theirs", theirs)):
                start = time.perf_counter()
                x_adv = fn(x, y)
                times[who].append(time.perf_counter() - start)
                accs[who].append(robust_accuracy(model, x_adv, y))
        row = {who: {"robust_accuracy": statistics.mean(accs[who]),
                     "seconds_median": statistics.median(times[who]),
                     "seconds_all": times[who]} for who in times}
        row["gap_points"] = 100 * (row["ours"]["robust_accuracy"]
                                   - row["theirs"]["robust_accuracy"])
        row["time_ratio"] = row["ours"]["seconds_median"] / row["theirs"]["seconds_median"]
        row["checks"] = {"within 1 point": abs(row["gap_points"]) <= 1.0,
                         "no slower (ratio <= 1.05)": row["time_ratio"] <= 1.05}
        record["rows"][name] = row
        print(f"{name}: ours {row['ours']['robust_accuracy']:.2%} in "
              f"{row['ours']['seconds_median']:.1f}s, torchattacks "
              f"{row['theirs']['robust_accuracy']:.2%} in {row['theirs']['seconds_median']:.1f}s"
              f" (gap {row['gap_points']:+.2f} points, time ratio {row['time_ratio']:.2f})",
              flush=True)
    out = Path(args.out or ROOT / "benchmarks" / "results"
               / f"apgd_agreement_{args.dataset}.json")
    atomic_write_json(out, record)
    print(json.dumps({k: v["checks"] for k, v in record["rows"].items()}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
