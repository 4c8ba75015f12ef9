"""Reproduce AI-GAN's Table V (Bai et al., Sec. V-E) on ``mnist5k``: targeted attacks crafted
on a vanilla model, judged on its adversarially trained versions.

For each vanilla model (Model B by default; ``--archs model_a,model_b``), every model is
trained by the ``advforge`` command a user would run, with its recipe's defaults (cached in
``--work``; an interrupted training resumes):

* the defended versions: ``advforge defend fgsm-at|ensemble-at|pgd-at --arch ARCH --dataset
  mnist5k`` (ensemble-at with two static models of other architectures, "We use two different
  models as static models");
* the attackers, trained against the vanilla model: ``advforge train-attacker advgan|aigan
  --model VANILLA --dataset mnist5k``.

With ``--shipped`` (the default; Model B only) the vanilla Model B and its AI-GAN are the
weights shipped in :mod:`advforge.pretrained`, the ones ``advforge demo`` uses.

The adversary does not know the defense: FGSM, C&W L2, PGD (the AI-GAN tables' settings),
AdvGAN and AI-GAN craft targeted examples white-box on the vanilla model; each cell is their
targeted success on one defended model over every (test image, target != label) pair whose
image both the vanilla and the defended model classify correctly
(:func:`advforge.eval.transfer.transfer_success`). C&W L2 runs on the first ``--cw-n`` images.

    python benchmarks/aigan_defended.py --threads 2
    python benchmarks/aigan_defended.py --archs model_a,model_b
    python benchmarks/aigan_defended.py --defenses fgsm-at,pgd-at   # the others later

Writes ``benchmarks/results/aigan_defended_mnist5k.json`` after every cell; a measured cell is
kept on the next run (``--fresh`` measures all again), and a cell whose vanilla or defended
model has changed since is measured again. ``--smoke`` checks the pipeline in a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

import advforge
from advforge import pretrained
from advforge.cli import main as advforge_main
from advforge.errors import AdvforgeError
from advforge.generative.identity import weights_hash
from advforge.utils.checkpoint import atomic_write_json, read_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defended_cells import (  # noqa: E402
    ATTACKS,
    LEARNED,
    attack_hyper,
    build_attack,
    cached_craft,
    craft,
    judge,
)

ROOT = Path(__file__).resolve().parents[1]
DATASET = "mnist5k"
ARCHS = ("model_a", "model_b")
DEFENSES = ("fgsm-at", "ensemble-at", "pgd-at")
STATIC_ARCHS = {"model_a": "model_b,model_c", "model_b": "model_a,model_c"}
SHIPPED = {"model_b": ("mnist5k_model_b", "mnist5k_model_b_aigan")}

# Bai et al., Table V, MNIST columns, percent: Adv. (FGSM-AT), Ens. (ensemble AT) and
# Iter.Adv (PGD-AT) versions of Models A and B; C&W is our cw_l2, PGD our pgd.
PAPER = {
    "model_a": {
        "fgsm-at": {"fgsm": 4.30, "cw_l2": 4.60, "pgd": 20.59, "advgan": 8.00, "aigan": 23.85},
        "ensemble-at": {"fgsm": 1.60, "cw_l2": 4.20, "pgd": 11.45, "advgan": 6.30,
                        "aigan": 12.17},
        "pgd-at": {"fgsm": 4.40, "cw_l2": 3.00, "pgd": 11.08, "advgan": 5.60, "aigan": 10.90},
    },
    "model_b": {
        "fgsm-at": {"fgsm": 2.70, "cw_l2": 3.00, "pgd": 10.67, "advgan": 18.70,
                    "aigan": 20.94},
        "ensemble-at": {"fgsm": 1.60, "cw_l2": 2.20, "pgd": 10.34, "advgan": 13.50,
                        "aigan": 10.73},
        "pgd-at": {"fgsm": 1.60, "cw_l2": 1.90, "pgd": 9.90, "advgan": 12.60, "aigan": 13.12},
    },
}
SMOKE_TRAIN = ["--epochs", "1", "--limit-train", "64", "--limit-test", "32"]
SMOKE_VANILLA = ["--epochs", "1", "--limit-train", "512", "--limit-test", "32"]  # right on some
SMOKE_DEFENSE = {"pgd-at": ["--steps", "2"], "ensemble-at": ["--pgd-steps", "2"]}
SMOKE_ATTACKER = ["--epochs", "1", "--limit-train", "32", "--eval-size", "16", "--g-ch", "8",
                  "--d-ch", "8"]
SMOKE_AIGAN = ["--pretrain-epochs", "1", "--attacker-steps", "2"]
SMOKE_SIZES = {"n": 8, "cw_n": 3}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", default="model_b",
                   help="vanilla models, comma list of model_a, model_b (Model A's PGD-AT "
                        "takes hours on a CPU)")
    p.add_argument("--shipped", action=argparse.BooleanOptionalAction, default=True,
                   help="Model B: the shipped vanilla model and AI-GAN (advforge.pretrained) "
                        "instead of training them")
    p.add_argument("--defenses", default=",".join(DEFENSES),
                   help="defended versions to train and measure now (comma-separated); the "
                        "cells of the others already in --out are kept")
    p.add_argument("--n", type=int, default=1000, help="test images (the first n)")
    p.add_argument("--cw-n", type=int, default=100,
                   help="C&W L2 runs on the first N test images (its pairs: 9 per image)")
    p.add_argument("--pgd-steps", type=int, default=100)
    p.add_argument("--eps", type=float, default=0.3, help="L-inf budget of FGSM and PGD")
    p.add_argument("--seed", type=int, default=0, help="seeds every training and attack")
    p.add_argument("--work", default=str(ROOT / "runs" / "aigan_defended"),
                   help="where trained models and crafted examples go")
    p.add_argument("--out", default=None, help="result JSON (default under benchmarks/results)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--smoke", action="store_true",
                   help="one epoch on 64 images (vanilla: 512), 8 test images, tiny "
                        "attacks: checks the pipeline only")
    p.add_argument("--fresh", action="store_true", help="measure (and craft) every cell again")
    args = p.parse_args(argv)
    if args.smoke:
        args.n, args.cw_n = min(args.n, SMOKE_SIZES["n"]), min(args.cw_n, SMOKE_SIZES["cw_n"])
    return args


# ---------------------------------------------------------------- models, trained by the CLI

def run_dir(args: argparse.Namespace, arch: str, name: str) -> Path:
    """Where model ``name`` (vanilla, a defense or an attacker) of ``arch`` is trained."""
    shipped = SHIPPED.get(arch) if args.shipped else None
    if shipped and name in ("vanilla", "aigan"):
        return pretrained.path(shipped[0 if name == "vanilla" else 1])
    return Path(args.work) / (DATASET + ("-smoke" if args.smoke else "")) / arch / name


def command(args: argparse.Namespace, arch: str, name: str) -> list[str]:
    """The advforge command line that trains model ``name`` of ``arch``."""
    common = ["--dataset", DATASET, "--seed", str(args.seed),
              "--out", str(run_dir(args, arch, name)), "--quiet"]
    if name in LEARNED:
        argv = ["train-attacker", name, "--model", str(run_dir(args, arch, "vanilla")), *common]
        return argv + ((SMOKE_ATTACKER + (SMOKE_AIGAN if name == "aigan" else []))
                       if args.smoke else [])
    argv = (["train-classifier"] if name == "vanilla" else ["defend", name])
    argv += ["--arch", arch, *common]
    if name == "ensemble-at":
        argv += ["--static-archs", STATIC_ARCHS[arch]]
    if not args.smoke:
        return argv
    return argv + (SMOKE_VANILLA if name == "vanilla" else SMOKE_TRAIN + SMOKE_DEFENSE.get(
        name, []))


def shown(argv: list[str]) -> str:
    """A command line as recorded: paths inside the repository relative to its root."""
    def rel(arg: str) -> str:
        path = Path(arg)
        return str(path.relative_to(ROOT)) if path.is_absolute() and path.is_relative_to(
            ROOT) else arg

    return "advforge " + " ".join(rel(a) for a in argv)


def shipped_record(run: Path) -> dict[str, Any]:
    """The record of a shipped run directory: what it is and the command that trained it."""
    config = read_json(run / "config.json")
    metrics = config.get("metrics", {})
    return {"command": f"advforge.pretrained {run.name} (trained by: {config.get('reproduce')})",
            "test_accuracy": metrics.get("test_accuracy"),
            "train_seconds": metrics.get("train_seconds")}


def train(argv: list[str], what: str) -> float:
    """Run one advforge command in this process; its wall time."""
    print(f"training {what}: {shown(argv)}", flush=True)
    start = time.perf_counter()
    if advforge_main(argv) != 0:
        raise AdvforgeError(f"training {what} failed: {shown(argv)}")
    return round(time.perf_counter() - start, 1)


def smoke_static_models(args: argparse.Namespace, arch: str) -> None:
    """--smoke: ensemble-at trains its static models with their recipes' epochs; one epoch of
    each, trained first into the directories it reuses (``DIR/static/<arch>-seed<k>``), keeps
    the smoke run short while the command stays the real one."""
    seed = args.seed
    for i, static in enumerate(STATIC_ARCHS[arch].split(",")):
        out = run_dir(args, arch, "ensemble-at") / "static" / f"{static}-seed{seed + 1 + i}"
        if not (out / "model.safetensors").is_file():
            train(["train-classifier", "--arch", static, "--dataset", DATASET, "--seed",
                   str(seed + 1 + i), "--out", str(out), "--quiet", *SMOKE_TRAIN],
                  f"{arch} static {static}")
            # a finished static model holds no training state, or ensemble-at resumes it
            (out / "train_state.safetensors").unlink(missing_ok=True)


def ensure_trained(args: argparse.Namespace, arch: str, name: str) -> dict[str, Any]:
    """Train model ``name`` unless it is done (resuming an interrupted run); its record."""
    run = run_dir(args, arch, name)
    if run.name in pretrained.names() and run == pretrained.path(run.name):
        return shipped_record(run)
    argv = command(args, arch, name)
    record: dict[str, Any] = {"command": shown(argv)}
    done = "resolved_config.yaml" if name in LEARNED else "model.safetensors"
    if not (run / done).is_file():
        if (name in LEARNED and run.is_dir()) or (run / "train_state.safetensors").is_file():
            argv.append("--resume")
        if args.smoke and name == "ensemble-at":
            smoke_static_models(args, arch)
        record["wall_seconds"] = train(argv, f"{arch} {name}")
    config = read_json(run / "config.json")
    metrics = config.get("metrics", {})
    if name in LEARNED:  # which network the cells measure (a per-target set: its first run's)
        subs = list(config.get("runs", {}).values())
        record["generator"] = (read_json(run / subs[0] / "config.json") if subs
                               else config).get("generator")
    return {**record, "test_accuracy": metrics.get("test_accuracy"),
            "train_seconds": metrics.get("train_seconds")}


def files_hash(run: Path) -> str:
    """SHA-256 over a learned attacker's weight files (names and bytes; no training state)."""
    h = hashlib.sha256()
    for path in sorted(run.rglob("*.safetensors")):
        if "state" not in path.name:
            h.update(str(path.relative_to(run)).encode() + b"|" + path.read_bytes())
    return h.hexdigest()


def keep_record(models: dict[str, Any], name: str, entry: dict[str, Any]) -> None:
    """``entry`` over the kept record of ``name`` (a reused model keeps its wall time)."""
    models[name] = {**models.get(name, {}), **entry}


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


# ---------------------------------------------------------------- one vanilla model

def measure_arch(args: argparse.Namespace, arch: str, record: dict[str, Any], out: Path,
                 data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Train what ``arch`` needs (vanilla model, attackers, defenses), then measure its
    missing cells, writing ``out`` after each."""
    x, y = data
    res = record["results"].setdefault(arch, {})
    models = res.setdefault("models", {})
    keep_record(models, "vanilla", ensure_trained(args, arch, "vanilla"))
    vanilla = advforge.load_model(run_dir(args, arch, "vanilla")).eval()
    sha = weights_hash(vanilla)
    if res.get("vanilla_sha256") not in (None, sha) or args.fresh:
        res["cells"], res["crafted"] = {}, {}  # measured against other weights: start over
    res.update(shipped=bool(args.shipped and arch in SHIPPED), vanilla_sha256=sha,
               static_archs=STATIC_ARCHS[arch])
    models["vanilla"]["clean_accuracy"] = accuracy(vanilla, x, y)
    cells = res.setdefault("cells", {})
    res.setdefault("crafted", {})
    for name in LEARNED:
        entry = {**ensure_trained(args, arch, name),
                 "sha256": files_hash(run_dir(args, arch, name))}
        if models.get(name, {}).get("sha256") != entry["sha256"]:
            for row in cells.values():  # retrained since: its cells are measured again
                row.pop(name, None)
        keep_record(models, name, entry)
    crafted: dict[str, dict[str, Any]] = {}  # per attack, crafted once for all defenses
    for defense in args.defenses:
        measure_defense(args, arch, defense, (vanilla, sha), crafted, record, out, data)


def measure_defense(args: argparse.Namespace, arch: str, defense: str,
                    vanilla: tuple[torch.nn.Module, str], crafted: dict[str, Any],
                    record: dict[str, Any], out: Path,
                    data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Train ``defense`` for ``arch`` and measure its missing cells, writing ``out`` after
    each; ``crafted`` holds the examples crafted on the vanilla model so far."""
    (x, y), res = data, record["results"][arch]
    models, cells = res["models"], res["cells"]
    entry = ensure_trained(args, arch, defense)
    defended = advforge.load_model(run_dir(args, arch, defense)).eval()
    entry.update(sha256=weights_hash(defended), clean_accuracy=accuracy(defended, x, y))
    if models.get(defense, {}).get("sha256") != entry["sha256"]:
        cells[defense] = {}  # retrained since its cells were measured
    keep_record(models, defense, entry)
    row = cells.setdefault(defense, {})
    for name in ATTACKS:
        if name in row:
            continue
        if name not in crafted:
            crafted[name] = crafted_examples(args, arch, name, *vanilla, x, y)
            res["crafted"][name] = crafted[name]["info"]
        row[name] = judge(name, crafted[name], vanilla[0], defended, x, y)
        print(f"[{arch}] {defense} {name}: {row[name]['success']:.4f} over "
              f"{row[name]['pairs']} pairs", flush=True)
        atomic_write_json(out, record)


def crafted_examples(args: argparse.Namespace, arch: str, name: str,
                     vanilla: torch.nn.Module, sha: str, x: torch.Tensor,
                     y: torch.Tensor) -> dict[str, Any]:
    """Attack ``name``'s examples on the vanilla model, from the --work cache when they were
    crafted with the same weights, settings and images."""
    n = args.cw_n if name == "cw_l2" else args.n
    hyper = attack_hyper(name, args.eps, args.pgd_steps, args.smoke)
    attacker = run_dir(args, arch, name) if name in LEARNED else None
    identity = {"vanilla_sha256": sha, "attack": name, "hyper": hyper, "images": n,
                "seed": args.seed, "attacker": attacker and files_hash(attacker)}
    path = Path(args.work) / (DATASET + ("-smoke" if args.smoke else "")) / arch / "crafted"

    def make() -> dict[str, Any]:
        print(f"[{arch}] crafting {name} on the vanilla model ({n} images)", flush=True)
        attack = build_attack(name, hyper, attacker, x.device)
        return craft(name, attack, vanilla, x[:n], y[:n], args.seed)

    return cached_craft(path / f"{name}.safetensors", identity, make, fresh=args.fresh)


# ---------------------------------------------------------------- the whole table

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    if unknown := sorted(set(archs) - set(ARCHS)):
        print(f"error: unknown archs {unknown}; choose from {', '.join(ARCHS)}", file=sys.stderr)
        return 2
    args.defenses = [d.strip() for d in args.defenses.split(",") if d.strip()]
    if unknown := sorted(set(args.defenses) - set(DEFENSES)):
        print(f"error: unknown defenses {unknown}; choose from {', '.join(DEFENSES)}",
              file=sys.stderr)
        return 2
    suffix = "-smoke" if args.smoke else ""
    out = Path(args.out or ROOT / "benchmarks" / "results"
               / f"aigan_defended_{DATASET}{suffix}.json")
    record = json.loads(out.read_text()) if out.is_file() and not args.fresh else {}
    measured = {"eps": args.eps, "n": args.n, "cw_n": args.cw_n, "pgd_steps": args.pgd_steps,
                "seed": args.seed, "smoke": args.smoke}
    if differ := {k: record[k] for k, v in measured.items() if record.get(k, v) != v}:
        print(f"error: {out} holds cells measured with {differ}: pass those settings, another "
              "--out, or --fresh", file=sys.stderr)
        return 2
    record.update({
        "benchmark": "aigan_defended", "dataset": DATASET, **measured,
        "attacks": {name: {"label": label, "images": args.cw_n if name == "cw_l2" else args.n,
                           "settings": attack_hyper(name, args.eps, args.pgd_steps,
                                                    args.smoke)}
                    for name, label in ATTACKS.items()},
        "defenses": list(DEFENSES), "paper": PAPER, "paper_unit": "percent",
        "machine": platform.machine(), "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "advforge": advforge.__version__})
    record.setdefault("results", {})
    test = advforge.data.load(DATASET).test
    n = min(args.n, len(test))
    data = (test.x[:n], test.y[:n])
    try:
        for arch in archs:
            measure_arch(args, arch, record, out, data)
    except AdvforgeError as exc:
        atomic_write_json(out, record)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_json(out, record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
