"""AE4DNN and ATN/AAE (Nguyen et al.) on our data, paper figures beside ours.

Parts (``--parts``, comma-separated; default all), each written into the JSON as it finishes:

* ``bound``: Formula 3's upper bound on beta over S, over ``--bound-inits`` initialisations, for
  the paper's cross-entropy and the authors' code's, with g's output started at S's mean (as
  training starts it) and at the layer's default (a sigmoid near 0.5).
* ``sweep`` (RQ1, Table I): ``advforge train-attacker ae4dnn --model M --dataset D --out DIR``
  with no other flag (``--beta auto``): per beta the mean L2 and the number of valid
  adversarial examples on S, and the beta the rule chose.
* ``aae`` (Table II): ``advforge train-attacker atn`` likewise (``--phi auto``, Table II's phis).
* ``aae_wide``: AAE at ``--phi-grid 0.2,0.1,0.05``, larger weights of the distance than
  Table II's, so that Table III can pair AE4DNN with an AAE of similar mean L2.
* ``table3`` (RQ2): every AE4DNN beta paired with the AAE phi of nearest mean L2 on S; the
  adversarial rate (criteria (i)-(iv)) of both on inputs never used in training (on
  ``mnist5k`` every training image outside S plus the test split; on a larger split also
  10k / 20k / 40k slices) and the seconds to forge 10,000 images.
* ``transfer`` (RQ3, Table V): the examples of the first 1,000 test images, forged against the
  attacked model, fed to the ``--zoo`` models; the share each classifies as the target.
* ``all_targets``, ``all_targets_aae``: ``--target all`` at the beta, resp. the phi, the rule
  picks from the sweeps above (Table II's phis and the wider ones): per-target held-out rates.
* ``table4`` (RQ4, Table IV): min / max L2 and total seconds of AE4DNN (training + forging),
  box-constrained L-BFGS and C&W L2 on S.
* ``timing``: one autoencoder at the chosen beta trained by the CLI, and 10,000 examples forged,
  with ``--threads`` threads (the bars: 2 minutes and 2 seconds on two cores); the load average
  before it starts is recorded, since another job on the machine slows both.

    python benchmarks/ae4dnn_tables.py --dataset mnist5k \\
        --zoo lenet5=runs/lenet5_mnist5k,vgg13=runs/vgg13_mnist5k,...

Writes ``benchmarks/results/ae4dnn_<dataset>.json``.
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
from typing import Any

import torch

import advforge
from advforge import data
from advforge.attacks import create as build_attack
from advforge.eval.runner import predict
from advforge.generative import load_attacker
from advforge.generative.ae4dnn import AE4DNNConfig, bound_over_inits
from advforge.generative.identity import weights_hash
from advforge.generative.reconstruction import adversarial_counts, balanced_subset
from advforge.models import load_model
from advforge.utils.checkpoint import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("bound", "sweep", "aae", "aae_wide", "table3", "transfer", "all_targets",
         "all_targets_aae", "table4", "timing")
SHIPPED = {"mnist5k": ROOT / "src/advforge/pretrained/mnist5k_model_b"}
TARGET = 7  # the paper's target label
SUBSET = 1000  # |S|, the CLI's default
SLICES = (10_000, 20_000, 40_000)  # Table III's 10k / 20k / 40k-attack
FORGE_N = 10_000  # images timed for "generating 10,000 examples"

# Nguyen et al., MNIST, target 7.
PAPER = {
    "bound": {"mean": 0.015, "std": 0.002},
    "table1": {"beta": [0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006],
               "mean_l2": [3.2, 4.56, 4.71, 4.98, 6.47, 6.34, 7.01],
               "adv": [12, 62, 75, 101, 492, 661, 482]},
    "table2": {"phi": [0.02, 0.01, 0.005, 0.003, 0.002], "mean_l2": [4, 4.81, 6.2, 6.8, 8.8],
               "adv": [47, 66, 340, 522, 696]},
    "table3": {"A": (0.001, 0.01, 4.65, 4.76, 7.5, 7.1), "B": (0.002, 0.01, 4.69, 4.76, 8.5, 7.1),
               "C": (0.003, 0.01, 4.99, 4.76, 11.7, 7.1),
               "D": (0.004, 0.005, 6.49, 6.28, 53.5, 39.0),
               "E": (0.005, 0.005, 6.38, 6.28, 67.7, 39.0),
               "columns": ["beta", "phi", "ae4dnn_l2", "aae_l2", "ae4dnn_rate", "aae_rate"],
               "forge_seconds_10k": 1.6},
    "table4": {"ae4dnn": {"min_l2": 3.85, "max_l2": 6.34, "minutes": 1},
               "lbfgs": {"min_l2": 2.34, "max_l2": 7.4, "minutes": 3},
               "cw_l2": {"min_l2": 13.43, "max_l2": 15.08, "minutes": 30}},
    "table5": {"A": {"vgg13": (6.3, 4.9), "vgg16": (3.7, 3.6), "lenet5": (1.2, 0.9),
                     "alexnet": (7.3, 6.1)},
               "B": {"vgg13": (7.4, 4.9), "vgg16": (6.0, 3.6), "lenet5": (1.2, 0.9),
                     "alexnet": (8.0, 6.1)},
               "C": {"vgg13": (31.8, 4.9), "vgg16": (27.7, 3.6), "lenet5": (10.0, 0.9),
                     "alexnet": (20.4, 6.1)},
               "D": {"vgg13": (46.4, 38.5), "vgg16": (47.1, 39.1), "lenet5": (18.1, 6.4),
                     "alexnet": (39.4, 31.1)},
               "E": {"vgg13": (46.4, 38.5), "vgg16": (47.1, 39.1), "lenet5": (18.1, 6.4),
                     "alexnet": (39.1, 31.1)}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--model", default=None,
                   help="classifier run directory (default: the shipped mnist5k Model B)")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--zoo", default="",
                   help="transfer: NAME=RUN_DIR pairs (comma-separated), classifiers trained "
                        "on the same data")
    p.add_argument("--bound-inits", type=int, default=5)
    p.add_argument("--subset-size", type=int, default=SUBSET,
                   help="|S| (passed to every run when not the CLI's 1,000; smoke runs)")
    p.add_argument("--table4-n", type=int, default=SUBSET,
                   help="table4: the first N images of S attacked by L-BFGS and C&W")
    p.add_argument("--flags", default="",
                   help="extra train-attacker flags for every run (recorded; smoke runs)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--work", default="runs/ae4dnn_tables", help="where the runs go")
    p.add_argument("--out", default=None, help="result JSON (default under benchmarks/results)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown parts {unknown}; choose from {list(PARTS)}")
    model_dir = Path(args.model) if args.model else SHIPPED.get(args.dataset)
    if model_dir is None or not (model_dir / "config.json").is_file():
        raise SystemExit(f"--model: no classifier run directory for {args.dataset}")
    out = Path(args.out) if args.out else RESULTS / f"ae4dnn_{args.dataset}.json"
    record = json.loads(out.read_text()) if out.is_file() else {}
    model = load_model(model_dir).eval()
    record.update({"benchmark": "ae4dnn_tables", "dataset": args.dataset,
                   "model": _relative(model_dir), "model_sha256": weights_hash(model),
                   "target": TARGET, "advforge": advforge.__version__,
                   "threads": args.threads, "torch": torch.__version__,
                   "machine": platform.processor() or platform.machine(), "paper": PAPER})
    ctx = Context(args, model, model_dir, data.load(args.dataset), record)
    for part in parts:
        start = time.perf_counter()
        record[part] = {**PART_FUNCTIONS[part](ctx),
                        "part_seconds": round(time.perf_counter() - start, 1)}
        # merge into the file as it is now, so runs of other parts may write meanwhile
        latest = json.loads(out.read_text()) if out.is_file() else {}
        atomic_write_json(out, {**latest, **{k: v for k, v in record.items()
                                             if k not in PARTS or k == part}})
        print(f"{part}: done in {record[part]['part_seconds']:.0f}s -> {out}", flush=True)
    return 0


class Context:
    """The arguments, the attacked model, the data, S and the record so far."""

    def __init__(self, args, model, model_dir: Path, splits, record: dict[str, Any]) -> None:
        self.args, self.model, self.model_dir, self.splits = args, model, model_dir, splits
        self.record = record
        self.work = Path(args.work) / args.dataset
        x, y = splits.train.x, splits.train.y.long()
        num_classes = int(y.max()) + 1
        # S exactly as the CLI draws it (reconstruction._fit_target: seed + target).
        self.subset_idx = balanced_subset(y, args.subset_size, TARGET, num_classes, TARGET)
        outside = torch.ones(len(y), dtype=torch.bool)
        outside[self.subset_idx] = False
        self.x_s, self.y_s = x[self.subset_idx], y[self.subset_idx]
        self.x_out, self.y_out = x[outside], y[outside]

    def run_cli(self, *argv: str) -> dict[str, Any]:
        """``advforge ARGV --model M --dataset D --quiet`` (skipped when its run directory
        already holds a finished config.json); the command and wall seconds."""
        out = Path(argv[argv.index("--out") + 1])
        flags = self.args.flags.split()
        if self.args.subset_size != SUBSET:
            flags += ["--subset-size", str(self.args.subset_size)]
        if argv[1] == "ae4dnn" and self.args.bound_inits != 5:
            flags += ["--bound-inits", str(self.args.bound_inits)]
        command = ["advforge", *argv, "--model", _relative(self.model_dir), "--dataset",
                   self.args.dataset, *flags]
        wall = None
        if not (out / "config.json").is_file():
            env = {**os.environ, "OMP_NUM_THREADS": str(self.args.threads)}
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "advforge.cli", *command[1:], "--quiet"],
                           check=True, env=env, cwd=ROOT)
            wall = round(time.perf_counter() - start, 1)
        return {"command": " ".join(command).replace(str(self.work), "WORK"), "wall_seconds": wall}

    def heldout_sets(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Inputs never used in training: all of them (the training images outside S, then
        the test split), and Table III's slices that fit, each a prefix of the first."""
        x = torch.cat([self.x_out, self.splits.test.x])
        y = torch.cat([self.y_out, self.splits.test.y.long()])
        sets = {"outside_S": (x, y)}
        for n in SLICES:
            if self.x_out.shape[0] >= n:
                sets[f"{n // 1000}k"] = (x[:n], y[:n])
        return sets


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _sweep_rows(config: dict[str, Any], weight: str, run: Path) -> list[dict[str, Any]]:
    rows = []
    for r in config["metrics"]["sweep"]:
        s = r["subset"]
        rows.append({weight: r[weight], "dir": f"{run.name}/sweep/{weight}_{r[weight]:g}",
                     "mean_l2": s["mean_l2"], "valid": s["valid"],
                     "adversarial": s["adversarial"], "inputs": s["inputs"],
                     "heldout_rate": (r.get("heldout") or {}).get("rate"),
                     "epochs": r["epochs"], "train_seconds": round(r["train_seconds"], 1)})
    return rows


# ---------------------------------------------------------------- the parts

def part_bound(ctx: Context) -> dict[str, Any]:
    cfg = AE4DNNConfig.from_flat({"bound_inits": ctx.args.bound_inits})
    return {"inits": ctx.args.bound_inits,
            "start_at_mean": bound_over_inits(cfg, ctx.model, ctx.x_s, TARGET),
            "default_init": bound_over_inits(cfg, ctx.model, ctx.x_s, TARGET,
                                             start_at_mean=False)}


def _sweep(ctx: Context, kind: str, weight: str, name: str | None = None,
           extra: tuple[str, ...] = ()) -> dict[str, Any]:
    run = ctx.work / (name or f"{kind}_t{TARGET}")
    info = ctx.run_cli("train-attacker", kind, *extra, "--out", str(run))
    config = json.loads((run / "config.json").read_text())
    m = config["metrics"]
    return {**info, "run": run.name, "chosen": m["chosen"],
            "rows": _sweep_rows(config, weight, run),
            "chosen_subset": m["subset"], "chosen_heldout": m.get("heldout"),
            "sweep_train_seconds": round(m["sweep_train_seconds"], 1),
            "bound": m.get("beta_bound")}


def part_sweep(ctx: Context) -> dict[str, Any]:
    return _sweep(ctx, "ae4dnn", "beta")


def part_aae(ctx: Context) -> dict[str, Any]:
    return _sweep(ctx, "atn", "phi")


WIDE_PHIS = (0.2, 0.1, 0.05)


def part_aae_wide(ctx: Context) -> dict[str, Any]:
    """AAE at phis above Table II's, whose smaller mean L2 can meet AE4DNN's for Table III."""
    grid = ",".join(f"{v:g}" for v in WIDE_PHIS)
    return _sweep(ctx, "atn", "phi", f"atn_t{TARGET}_wide", ("--phi-grid", grid))


def _needs(ctx: Context, *parts: str) -> None:
    missing = [p for p in parts if p not in ctx.record]
    if missing:
        raise SystemExit(f"run the parts {missing} first")


def _rows(ctx: Context, kind: str) -> list[dict[str, Any]]:
    """A kind's sweep rows that produced adversarial examples, each with its run directory
    (relative to the work directory)."""
    parts = ("sweep",) if kind == "ae4dnn" else ("aae", "aae_wide")
    weight = "beta" if kind == "ae4dnn" else "phi"
    rows = []
    for part in parts:
        for r in ctx.record.get(part, {}).get("rows", []):
            if r["mean_l2"] is not None:
                default = f"{kind}_t{TARGET}/sweep/{weight}_{r[weight]:g}"
                rows.append({**r, "dir": r.get("dir", default)})
    return rows


def matched_pairs(ctx: Context) -> list[dict[str, Any]]:
    """Every AE4DNN beta with the AAE phi of nearest mean L2 on S (the paper's A-E), over
    Table II's phis and the wider ones when that part ran."""
    aae = _rows(ctx, "atn")
    pairs = []
    for r in _rows(ctx, "ae4dnn"):
        if not aae:
            break
        near = min(aae, key=lambda a: abs(a["mean_l2"] - r["mean_l2"]))
        pairs.append({"beta": r["beta"], "phi": near["phi"], "ae4dnn_l2_S": r["mean_l2"],
                      "aae_l2_S": near["mean_l2"],
                      "dirs": {"ae4dnn": r["dir"], "atn": near["dir"]}})
    return pairs


@torch.no_grad()
def _forge(attack, x: torch.Tensor) -> torch.Tensor:
    y = torch.zeros(x.shape[0], dtype=torch.long)  # labels unused by a fixed-target g
    y[:] = (TARGET + 1) % attack.num_classes
    return attack(None, x, y)


def _forge_seconds(attack, x: torch.Tensor) -> float:
    reps = -(-FORGE_N // x.shape[0])
    xs = torch.cat([x] * reps)[:FORGE_N]
    _forge(attack, xs[:100])  # warm-up
    start = time.perf_counter()
    _forge(attack, xs)
    return round(time.perf_counter() - start, 3)


def part_table3(ctx: Context) -> dict[str, Any]:
    _needs(ctx, "sweep", "aae")
    sets = ctx.heldout_sets()
    x_all, y_all = sets["outside_S"]  # every other set is a prefix of it
    clean = predict(ctx.model, x_all)[0]
    cache: dict[str, dict[str, Any]] = {}

    def measure(run_dir: str) -> dict[str, Any]:
        """One autoencoder on every set: forged once, predicted once, counted per prefix."""
        if run_dir not in cache:
            attack = load_attacker(ctx.work / run_dir)
            x_adv = _forge(attack, x_all)
            adv = predict(ctx.model, x_adv)[0]
            per_set = {}
            for name, (x, _) in sets.items():
                n = x.shape[0]
                counts = adversarial_counts(ctx.model, x_all[:n], x_adv[:n], y_all[:n], TARGET,
                                            6.5, clean_pred=clean[:n], adv_pred=adv[:n])
                per_set[name] = {k: counts[k] for k in ("inputs", "valid", "rate", "mean_l2",
                                                        "success")}
            cache[run_dir] = {"sets": per_set,
                              "forge_seconds_10k": _forge_seconds(attack, x_all[:FORGE_N])}
        return cache[run_dir]

    rows = [{**pair, **{kind: measure(pair["dirs"][kind]) for kind in ("ae4dnn", "atn")}}
            for pair in matched_pairs(ctx)]
    chosen = ctx.record["sweep"]["chosen"]
    return {"sets": {k: int(v[0].shape[0]) for k, v in sets.items()}, "rows": rows,
            "chosen_beta": chosen, "max_l2": 6.5}


def part_transfer(ctx: Context) -> dict[str, Any]:
    _needs(ctx, "sweep", "aae")
    zoo = dict(item.split("=", 1) for item in ctx.args.zoo.split(",") if item)
    if not zoo:
        raise SystemExit("transfer: pass --zoo NAME=RUN_DIR,...")
    models = {name: load_model(path).eval() for name, path in zoo.items()}
    x, y = ctx.splits.test.x[:1000], ctx.splits.test.y[:1000].long()
    accuracy = {name: float((m(x).argmax(1) == y).float().mean()) for name, m in models.items()}
    rows = []
    for pair in matched_pairs(ctx):
        row = dict(pair)
        for kind in ("ae4dnn", "atn"):
            x_adv = _forge(load_attacker(ctx.work / pair["dirs"][kind]), x)
            counts = adversarial_counts(ctx.model, x, x_adv, y, TARGET, 6.5)
            valid = _valid_mask(ctx.model, x, x_adv, y)
            row[kind] = {"source_valid": counts["valid"], "transfer": {}}
            for name, m in models.items():
                hits = m(x_adv).argmax(1) == TARGET
                row[kind]["transfer"][name] = {
                    # the share of the source's valid examples the other model also sends to
                    # the target, and the share of all 1,000 inputs (label != target) it does
                    "of_valid": float(hits[valid].float().mean()) if valid.any() else None,
                    "of_inputs": float(hits[y != TARGET].float().mean())}
        rows.append(row)
    return {"zoo": {k: _relative(Path(v)) for k, v in zoo.items()}, "zoo_accuracy": accuracy,
            "inputs": 1000, "rows": rows}


@torch.no_grad()
def _valid_mask(model, x, x_adv, y, max_l2: float = 6.5) -> torch.Tensor:
    clean, adv = model(x).argmax(1), model(x_adv).argmax(1)
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    return (clean == y) & (y != TARGET) & (adv == TARGET) & (l2 <= max_l2)


def _rule(rows: list[dict[str, Any]], weight: str, max_l2: float = 6.5) -> float:
    """The sweep's rule over rows of several sweeps: most valid with mean L2 <= b, else the
    smallest mean L2."""
    good = [r for r in rows if r["mean_l2"] <= max_l2]
    best = (max(good, key=lambda r: (r["valid"], -r["mean_l2"])) if good
            else min(rows, key=lambda r: r["mean_l2"]))
    return best[weight]


def part_all_targets(ctx: Context) -> dict[str, Any]:
    _needs(ctx, "sweep")
    return _all_targets(ctx, "ae4dnn", "beta")


def part_all_targets_aae(ctx: Context) -> dict[str, Any]:
    _needs(ctx, "aae")
    return _all_targets(ctx, "atn", "phi")


def _all_targets(ctx: Context, kind: str, weight: str) -> dict[str, Any]:
    """``--target all`` at the weight the rule picks over the kind's sweeps."""
    rows = _rows(ctx, kind)  # none when no sweep point fooled the model: the CLI's choice
    value = _rule(rows, weight) if rows else ctx.record["sweep" if kind == "ae4dnn"
                                                        else "aae"]["chosen"]
    run = ctx.work / f"{kind}_all"
    info = ctx.run_cli("train-attacker", kind, "--target", "all", f"--{weight}", f"{value:g}",
                       "--out", str(run))
    m = json.loads((run / "config.json").read_text())["metrics"]
    per = {t: {"rate": r["heldout"]["rate"], "mean_l2": r["heldout"]["mean_l2"],
               "valid": r["heldout"]["valid"], "inputs": r["heldout"]["inputs"],
               "epochs": r["epochs"], "train_seconds": round(r["train_seconds"], 1)}
           for t, r in m["per_target"].items()}
    return {kind: {**info, weight: value, "per_target": per, "heldout": m["heldout"],
                   "train_seconds": round(m["train_seconds"], 1)}}


def part_table4(ctx: Context) -> dict[str, Any]:
    _needs(ctx, "sweep")
    n = min(ctx.args.table4_n, ctx.args.subset_size)
    x, y = ctx.x_s[:n], ctx.y_s[:n]
    t = torch.full_like(y, TARGET)
    sweep = ctx.record["sweep"]
    chosen_dir = ctx.work / f"ae4dnn_t{TARGET}"
    start = time.perf_counter()
    x_ae = _forge(load_attacker(chosen_dir), x)
    forge = time.perf_counter() - start
    chosen_row = next(r for r in sweep["rows"] if r["beta"] == sweep["chosen"])
    out = {"n": n, "ae4dnn": {"beta": sweep["chosen"],
                              **_l2_summary(ctx.model, x, x_ae, y),
                              "seconds": round(chosen_row["train_seconds"] + forge, 1),
                              "sweep_seconds": sweep["sweep_train_seconds"]}}
    for name in ("lbfgs", "cw_l2"):
        attack = build_attack(name)
        start = time.perf_counter()
        x_adv = attack(ctx.model, x, y, target=t)
        out[name] = {**_l2_summary(ctx.model, x, x_adv, y),
                     "seconds": round(time.perf_counter() - start, 1), "hyper": attack.hyper()}
        print(f"table4 {name}: {out[name]}", flush=True)
    return out


@torch.no_grad()
def _l2_summary(model, x, x_adv, y) -> dict[str, Any]:
    """Min / max L2 over the adversarial examples (criteria (i)-(iii)), and how many are
    within b = 6.5 (criterion (iv))."""
    c = adversarial_counts(model, x, x_adv, y, TARGET, 6.5)
    hit = (model(x).argmax(1) == y) & (model(x_adv).argmax(1) == TARGET)
    l2 = (x_adv - x).flatten(1).norm(dim=1)[hit]
    return {"adversarial": c["adversarial"], "valid": c["valid"],
            "min_l2": float(l2.min()) if l2.numel() else None,
            "max_l2": float(l2.max()) if l2.numel() else None,
            "mean_l2": float(l2.mean()) if l2.numel() else None}


def part_timing(ctx: Context) -> dict[str, Any]:
    _needs(ctx, "sweep")
    load_before = os.getloadavg()
    beta = ctx.record["sweep"]["chosen"]
    run = ctx.work / f"timing_beta_{beta:g}_threads_{ctx.args.threads}"
    info = ctx.run_cli("train-attacker", "ae4dnn", "--beta", f"{beta:g}", "--out", str(run))
    m = json.loads((run / "config.json").read_text())["metrics"]
    attack = load_attacker(run)
    return {**info, "beta": beta, "threads": ctx.args.threads,
            "load_average_before": [round(v, 2) for v in load_before],
            "train_seconds": round(m["train_seconds"], 1), "epochs": m["epochs"],
            "heldout_rate": m["heldout"]["rate"],
            "forge_seconds_10k": _forge_seconds(attack, ctx.splits.test.x)}


PART_FUNCTIONS = {"bound": part_bound, "sweep": part_sweep, "aae": part_aae,
                  "aae_wide": part_aae_wide,
                  "table3": part_table3, "transfer": part_transfer,
                  "all_targets": part_all_targets, "all_targets_aae": part_all_targets_aae,
                  "table4": part_table4,
                  "timing": part_timing}

if __name__ == "__main__":
    sys.exit(main())
