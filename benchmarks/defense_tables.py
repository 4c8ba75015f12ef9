"""Reproduce the adversarial-networks paper's Tables 1 and 4 (Wang & Yu, Sec. 4.1 and 4.4) on
our data, with the standard attack cascade as an extra column.

Models, each trained by the ``advforge`` command a user would run (cached in ``--work``; an
interrupted training resumes):

* ``A`` standard training, ``B`` PGD adversarial training, ``C`` adversarial networks,
  ``EAT`` ensemble adversarial training with ``A`` as its static source (Sec. 4.4);
* surrogates ``A'``, ``B'``, ``C'``: the same commands with another seed.

For every defended model, the accuracy over the first ``--n`` test images under: no noise,
white-box FGS (Eq. 10) and PGD-10 (Eq. 11: random start, 10 steps of eps/4), the cascade's
per-example worst case (APGD-CE, APGD-T, Square: ``advforge robustness``), and black-box FGS
and PGD-10 crafted on each surrogate. The paper's MNIST figures sit beside ``mnist5k``'s.

    python benchmarks/defense_tables.py --dataset mnist5k --arch d1 --eps 0.3
    python benchmarks/defense_tables.py --dataset fashion-mnist --arch d1 --eps 0.1 \\
        --limit-train 20000

Writes ``benchmarks/results/defense_tables_<dataset>-<arch>.json`` after every model, so a
stopped run keeps what it measured. ``--rows`` picks models; a finished row is kept while its
model's weights are unchanged (their SHA-256 is recorded), a surrogate trained later only adds
its black-box columns, and a retrained surrogate's columns are measured again (``--fresh``
measures everything again).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

import advforge
import advforge.defenses
from advforge import attacks
from advforge.cli import main as advforge_main
from advforge.eval.robustness import robust_cascade, standard_attacks
from advforge.generative.identity import weights_hash
from advforge.utils.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("A", "B", "C", "EAT")
SURROGATES = ("A'", "B'", "C'")
COLUMNS = ("clean", "fgs", "pgd10", "cascade")

# Wang & Yu, MNIST (eps 0.3), percent: Table 1 (A, B, C) and Table 4's MNIST ensemble row.
# Black-box columns as FGS/PGD from A', B', C'.
PAPER_MNIST = {
    "A": {"clean": 99.40, "fgs": 23.70, "pgd10": 0.00, "FGS(A')": 39.49, "PGD(A')": 3.41,
          "FGS(B')": 90.56, "PGD(B')": 86.10, "FGS(C')": 94.21, "PGD(C')": 91.36},
    "B": {"clean": 98.70, "fgs": 95.46, "pgd10": 92.92, "FGS(A')": 95.78, "PGD(A')": 96.18,
          "FGS(B')": 95.58, "PGD(B')": 95.01, "FGS(C')": 97.05, "PGD(C')": 96.48},
    "C": {"clean": 99.32, "fgs": 94.66, "pgd10": 87.09, "FGS(A')": 95.75, "PGD(A')": 96.19,
          "FGS(B')": 96.15, "PGD(B')": 95.24, "FGS(C')": 96.96, "PGD(C')": 95.78},
    "EAT": {"clean": 98.65, "fgs": 2.52, "pgd10": 0.00, "FGS(A')": 90.91, "PGD(A')": 93.91,
            "FGS(B')": 90.94, "PGD(B')": 88.12, "FGS(C')": 90.79, "PGD(C')": 89.61},
}
# Per model: the advforge command (without --arch/--dataset/--out/--seed/--eps) and its seed.
RECIPES = {
    "A": (["train-classifier"], 0), "A'": (["train-classifier"], 1),
    "B": (["defend", "pgd-at"], 0), "B'": (["defend", "pgd-at"], 1),
    "C": (["defend", "adv-net"], 0), "C'": (["defend", "adv-net"], 1),
    "EAT": (["defend", "ensemble-at"], 0),
}
SMOKE_FLAGS = ["--epochs", "1", "--limit-train", "64", "--limit-test", "32"]
SMOKE_DEFENSE = {"pgd-at": ["--steps", "2"], "ensemble-at": ["--pgd-steps", "2"],
                 "adv-net": ["--g-steps", "1", "--g-updates", "1", "--width", "4"]}
SMOKE_CASCADE = {"apgd_ce": {"steps": 3}, "apgd_t": {"steps": 3, "n_target_classes": 2},
                 "square": {"n_queries": 20}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="d1", help="the paper's D1 for MNIST-like data")
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--n", type=int, default=1000, help="test images (the first n)")
    p.add_argument("--rows", default=",".join(ROWS), help="defended models to evaluate")
    p.add_argument("--surrogates", default=",".join(SURROGATES),
                   help="black-box sources to train and craft on")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N images")
    p.add_argument("--work", default="runs/defense_tables", help="where trained models go")
    p.add_argument("--out", default=None, help="result JSON (default under benchmarks/results)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--square-queries", type=int, default=5000,
                   help="Square's query budget in the cascade (AutoAttack: 5,000)")
    p.add_argument("--smoke", action="store_true",
                   help="one epoch on 64 images with tiny attacks: checks the pipeline only")
    p.add_argument("--fresh", action="store_true", help="re-evaluate rows already in --out")
    return p.parse_args(argv)


def model_dir(args: argparse.Namespace, name: str) -> Path:
    tag = f"{args.dataset}-{args.arch}-eps{args.eps:g}" + ("-smoke" if args.smoke else "")
    return Path(args.work) / tag / name.replace("'", "_prime")


def command(args: argparse.Namespace, name: str) -> list[str]:
    """The advforge command line that trains model ``name``."""
    base, seed = RECIPES[name]
    argv = [*base, "--arch", args.arch, "--dataset", args.dataset, "--seed", str(seed),
            "--out", str(model_dir(args, name)), "--quiet"]
    if base[0] == "defend":
        argv += ["--eps", f"{args.eps:g}"]
        if name == "EAT":
            argv += ["--static-models", str(model_dir(args, "A"))]
        if args.smoke:
            argv += SMOKE_DEFENSE.get(base[1], [])
    if args.limit_train is not None:
        argv += ["--limit-train", str(args.limit_train)]
    if args.smoke:
        argv += SMOKE_FLAGS
    return argv


def ensure_trained(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Train model ``name`` unless it is done; resume it when it was interrupted."""
    if name == "EAT":
        ensure_trained(args, "A")
    return train_run(command(args, name), model_dir(args, name), name)


def train_run(argv: list[str], run: Path, name: str) -> dict[str, Any]:
    """Run ``advforge ARGV`` (writing ``run``) unless it finished; add ``--resume`` when it was
    interrupted. Returns the command and the run's test accuracy and seconds."""
    record = {"command": "advforge " + " ".join(argv)}
    if (run / "model.safetensors").is_file():
        return {**record, **_metrics(run)}
    if (run / "train_state.safetensors").is_file():
        argv = [*argv, "--resume"]
    start = time.perf_counter()
    code = advforge_main(argv)
    if code != 0:
        raise SystemExit(f"training {name} failed: advforge {' '.join(argv)}")
    return {**record, **_metrics(run), "wall_seconds": round(time.perf_counter() - start, 1)}


def _metrics(run: Path) -> dict[str, Any]:
    config = json.loads((run / "config.json").read_text())
    metrics = config.get("metrics", {})
    return {"test_accuracy": metrics.get("test_accuracy"),
            "train_seconds": metrics.get("train_seconds")}


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def craft(model: torch.nn.Module, kind: str, eps: float, x: torch.Tensor, y: torch.Tensor,
          seed: int = 0) -> torch.Tensor:
    """FGS (Eq. 10) or PGD-10 (Eq. 11: random start, 10 steps of eps/4) on ``model``."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    if kind == "fgs":
        attack = attacks.create("fgsm", eps=eps)
    else:
        attack = attacks.create("pgd", eps=eps, steps=10, step_size=eps / 4,
                                random_start=True)
    out = [attack(model, x[i:i + 500], y[i:i + 500], generator=gen)
           for i in range(0, x.shape[0], 500)]
    return torch.cat(out)


def still_valid(kept: dict[str, Any] | None, digest: str, source_hash: dict[str, str]
                ) -> dict[str, Any] | None:
    """The part of a measured row that still holds: none when the model was retrained (its
    weights' hash changed), and without the black-box cells of a surrogate loaded in this run
    whose weights differ from the ones that made them."""
    if not kept or kept.get("model_sha256") != digest:
        return None
    made_by = kept.get("surrogate_sha256", {})

    def current(key: str) -> bool:  # "PGD(B')" -> B'; a surrogate not loaded now stays
        source = key[key.index("(") + 1:-1]
        return source not in source_hash or made_by.get(source) == source_hash[source]

    blackbox = {key: value for key, value in kept.get("blackbox", {}).items() if current(key)}
    return {**kept, "blackbox": blackbox}


def evaluate_row(args, model, x, y, transfers: dict[str, torch.Tensor],
                 kept: dict[str, Any] | None = None) -> dict[str, Any]:
    """White-box no-noise / FGS / PGD-10 / cascade and black-box accuracy of one model; the
    cascade and the black-box columns already in ``kept`` are reused (they are the slow
    part, and a surrogate trained later only adds its own columns)."""
    t0 = time.perf_counter()
    kept = kept or {}
    row: dict[str, Any] = {"clean": accuracy(model, x, y)}
    for kind in ("fgs", "pgd10"):
        row[kind] = accuracy(model, craft(model, kind, args.eps, x, y), y)
    done = kept.get("blackbox", {})  # still-valid cells, also of surrogates not loaded now
    row["blackbox"] = {**done, **{key: accuracy(model, x_adv, y)
                                  for key, x_adv in transfers.items() if key not in done}}
    if "cascade" in kept:  # "seconds" stays the full evaluation's, not this top-up's
        return {**row, "cascade": kept["cascade"], "cascade_steps": kept["cascade_steps"],
                "seconds": kept.get("seconds", round(time.perf_counter() - t0, 1))}
    hyper = SMOKE_CASCADE if args.smoke else {"square": {"n_queries": args.square_queries}}
    built = standard_attacks(args.eps, "linf", list(SMOKE_CASCADE), hyper)
    gen = torch.Generator(device=x.device).manual_seed(0)
    result = robust_cascade(model, x, y, eps=args.eps, attacks=built, generator=gen)
    row["cascade"] = result.robust_accuracy
    row["cascade_steps"] = [{"attack": s.attack, "robust_accuracy": s.robust_accuracy,
                             "added": s.added, "seconds": round(s.seconds, 2),
                             "hyper": s.hyper}
                            for s in result.attacks]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        print(f"error: unknown rows {unknown}; choose from {', '.join(ROWS)}", file=sys.stderr)
        return 2
    if "C" in rows and "adv-net" not in advforge.defenses.names():
        print("error: the adv-net defense is not available", file=sys.stderr)
        return 2
    suffix = "-smoke" if args.smoke else ""
    out = Path(args.out or ROOT / "benchmarks" / "results"
               / f"defense_tables_{args.dataset}-{args.arch}{suffix}.json")
    record = json.loads(out.read_text()) if out.is_file() and not args.fresh else {}
    record.update({"benchmark": "defense_tables", "dataset": args.dataset, "arch": args.arch,
                   "eps": args.eps, "n": args.n, "limit_train": args.limit_train,
                   "smoke": args.smoke,
                   "square_queries": args.square_queries,
                   "machine": platform.machine(), "threads": torch.get_num_threads(),
                   "paper": PAPER_MNIST if args.dataset == "mnist5k" else None})
    record.setdefault("models", {})
    record.setdefault("rows", {})
    sources = [r.strip() for r in args.surrogates.split(",") if r.strip()]
    unknown = sorted(set(sources) - set(SURROGATES))
    if unknown:
        print(f"error: unknown surrogates {unknown}; choose from {', '.join(SURROGATES)}",
              file=sys.stderr)
        return 2
    for name in [*sources, *rows]:
        if name.startswith("C") and "adv-net" not in advforge.defenses.names():
            continue
        record["models"][name] = ensure_trained(args, name)
        print(f"trained {name}: {record['models'][name]}", flush=True)
    splits = advforge.data.load(args.dataset)
    n = min(args.n, len(splits.test))
    x, y = splits.test.x[:n], splits.test.y[:n]
    transfers, source_hash = {}, {}
    for source in sources:
        if source in record["models"]:
            surrogate = advforge.load_model(model_dir(args, source))
            source_hash[source] = weights_hash(surrogate)
            for kind, label in (("fgs", "FGS"), ("pgd10", "PGD")):
                transfers[f"{label}({source})"] = craft(surrogate, kind, args.eps, x, y)
    for name in rows:
        if name not in record["models"]:
            continue
        model = advforge.load_model(model_dir(args, name))
        digest = weights_hash(model)
        kept = None if args.fresh else still_valid(record["rows"].get(name), digest,
                                                   source_hash)
        if kept and set(transfers) <= set(kept.get("blackbox", {})):
            continue  # nothing new to measure
        row = evaluate_row(args, model, x, y, transfers, kept)
        row["model_sha256"] = digest
        row["surrogate_sha256"] = {**(kept or {}).get("surrogate_sha256", {}), **source_hash}
        record["rows"][name] = row
        print(f"{name}: " + json.dumps({k: v for k, v in row.items()
                                         if k not in ("cascade_steps", "surrogate_sha256")}),
              flush=True)
        atomic_write_json(out, record)
    atomic_write_json(out, record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
