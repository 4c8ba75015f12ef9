"""Reproduce the adversarial-networks paper's generator study (Wang & Yu, Sec. 4.5: Tables 5
and 6; the appendix's Tables 10 and 11 with ``--targets``) on our data.

Generator variants (appendix Fig. 4): ``ae8`` autoencoder G1 with k = 8, ``ae64`` G1 with
k = 64, ``gauss`` G2 (random Gaussian z, k = 64), ``label`` G3 (label input, k = 16). All
take images whose side is divisible by 4, so G1 serves 28x28 data as it serves CIFAR-10.

* Tables 5 / 10 / 11, generators as attackers of a fixed model: each variant is trained by
  ascent against the fixed model A (B, C) with ``train_generator_attack`` (Sec. 4.5: SGD 0.01,
  momentum 0.9, weight decay 1e-5; ``--g-epochs`` passes) and its perturbations are scored on
  that model (white-box-like) and on A', B', C' (transfer). The first row is clean accuracy.
* Table 6, adversarial networks co-trained with each variant (``advforge defend adv-net
  --generator G --width K``): no noise, white-box FGS (Eq. 10) and PGD-10 (Eq. 11: random
  start, 10 steps of eps/4), black-box FGS and PGD-10 crafted on A' and B'.

The models A, B, C, A', B', C' are ``benchmarks/defense_tables.py``'s (same commands, same
``--work`` layout, so one run's models serve the other: give both the same ``--limit-train``,
which the layout does not record). The paper's CIFAR-10 figures sit beside ours in the JSON.
A generator's cost grows with its width: one ascent step on 64 28x28 images takes about
0.1 s for ``ae8`` and ``label`` and 1.7 s for ``ae64`` and ``gauss`` on one CPU thread, and a
co-trained adversarial network makes about seven such steps' worth of work per mini-batch.

    python benchmarks/generator_tables.py --dataset fashion-mnist --arch d1 --eps 0.1 \\
        --limit-train 20000

Writes ``benchmarks/results/generator_tables_<dataset>-<arch>.json`` after every step; a
rerun keeps finished rows and trained generators (``--fresh`` measures all again).
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
from advforge.defenses.advnet import load_generator, train_generator_attack
from advforge.defenses.advnet.objective import save_generator
from advforge.errors import AdvforgeError
from advforge.utils.checkpoint import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defense_tables import (  # noqa: E402
    SMOKE_FLAGS,
    accuracy,
    craft,
    ensure_trained,
    model_dir,
    train_run,
)
from generator_bench.paper import ATTACK_TABLE, paper_figures  # noqa: E402
from generator_bench.printing import print_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# name -> (the paper's row label, generator, width k)
VARIANTS = {"ae8": ("autoencoder(8 filters)", "g1", 8),
            "ae64": ("autoencoder(64 filters)", "g1", 64),
            "gauss": ("random Gaussian", "g2", 64),
            "label": ("label", "g3", 16)}
SMOKE_WIDTH = {"ae8": 2, "ae64": 4, "gauss": 2, "label": 2}
TARGETS = tuple(ATTACK_TABLE)
TRANSFER = ("A'", "B'", "C'")
SOURCES = ("A'", "B'")  # Table 6's black-box sources
SMOKE_ADVNET = ["--g-steps", "1", "--g-updates", "1"]
SMOKE_N, SMOKE_TRAIN = 32, 64
CALL_FILE = "attack.json"  # beside a saved generator: the call that trained it
BATCH = 500  # test images per forward when perturbing / scoring


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--arch", default="d1", help="classifier architecture (the paper's D1)")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--n", type=int, default=10000, help="test images (the first n)")
    p.add_argument("--limit-train", type=int, default=None,
                   help="train models and generators on the first N images")
    p.add_argument("--variants", default=",".join(VARIANTS), help="generator variants")
    p.add_argument("--targets", default="A",
                   help="fixed models the generators attack: A (Table 5), B (Table 10), "
                        "C (Table 11)")
    p.add_argument("--tables", default="5,6", help="5: generators as attackers (for every "
                   "--targets), 6: adversarial networks co-trained with each generator")
    p.add_argument("--g-epochs", type=int, default=5,
                   help="passes of a generator attack over the training images")
    p.add_argument("--g-batch-size", type=int, default=64)
    p.add_argument("--advnet-epochs", type=int, default=None,
                   help="epochs of each Table 6 adversarial network (default: the recipe's)")
    p.add_argument("--work", default="runs/defense_tables",
                   help="where trained models go (defense_tables.py's default)")
    p.add_argument("--out", default=None, help="result JSON (default under benchmarks/results)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--smoke", action="store_true", help="one epoch on 64 images, 32 test "
                   "images, tiny generators: checks the pipeline only")
    p.add_argument("--fresh", action="store_true", help="re-measure rows already in --out")
    return p.parse_args(argv)


class UsageError(ValueError):
    """A bad option, reported as one line before anything is trained."""


def _split(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(items) - set(allowed))
    if unknown or not items:
        raise UsageError(f"unknown {what} {unknown or '(none)'}; choose from "
                         f"{', '.join(allowed)}")
    return items


def check_args(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    """The chosen variants, targets and tables; raises :class:`UsageError` on bad input."""
    for flag in ("n", "g_epochs", "g_batch_size", "advnet_epochs", "limit_train"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if not 0 < args.eps <= 1:
        raise UsageError(f"--eps must be in (0, 1], got {args.eps:g}")
    if "adv-net" not in advforge.defenses.names():
        raise UsageError("the adv-net defense is not available")
    return (_split(args.variants, VARIANTS, "variants"),
            _split(args.targets, TARGETS, "targets"),
            _split(args.tables, ("5", "6"), "tables"))


def width(args: argparse.Namespace, variant: str) -> int:
    return SMOKE_WIDTH[variant] if args.smoke else VARIANTS[variant][2]


# ---- Table 6: adversarial networks co-trained with each generator -------------------------

def advnet_name(args: argparse.Namespace, variant: str) -> str:
    """The co-trained model's name (and run directory), its epoch count if not the recipe's."""
    epochs = "" if args.advnet_epochs is None else f"-e{args.advnet_epochs}"
    return f"C-{variant}{epochs}"


def advnet_command(args: argparse.Namespace, variant: str) -> list[str]:
    """``advforge defend adv-net`` with the variant's generator; otherwise C's recipe."""
    argv = ["defend", "adv-net", "--generator", VARIANTS[variant][1],
            "--width", str(width(args, variant)), "--arch", args.arch,
            "--dataset", args.dataset, "--seed", "0", "--eps", f"{args.eps:g}",
            "--out", str(model_dir(args, advnet_name(args, variant))), "--quiet"]
    if args.advnet_epochs is not None:
        argv += ["--epochs", str(args.advnet_epochs)]
    if args.limit_train is not None:
        argv += ["--limit-train", str(args.limit_train)]
    if args.smoke:
        argv += SMOKE_ADVNET + SMOKE_FLAGS
    return argv


def cotrained_row(args, model, x, y, transfers: dict[str, torch.Tensor]) -> dict[str, float]:
    """No noise, white-box FGS / PGD-10 and the black-box columns of one co-trained model."""
    row = {"clean": accuracy(model, x, y)}
    for kind in ("fgs", "pgd10"):
        row[kind] = accuracy(model, craft(model, kind, args.eps, x, y), y)
    row.update({key: accuracy(model, x_adv, y) for key, x_adv in transfers.items()})
    return row


def table6(args, record: dict, variants: list[str], x, y, save) -> None:
    table = record.setdefault("table6", {"columns": ["clean", "fgs", "pgd10"], "rows": {}})
    transfers = {}
    for source in SOURCES:
        surrogate = advforge.load_model(model_dir(args, source))
        for kind, label in (("fgs", "FGS"), ("pgd10", "PGD")):
            transfers[f"{label}({source})"] = craft(surrogate, kind, args.eps, x, y)
    table["columns"] = ["clean", "fgs", "pgd10", *transfers]
    for variant in variants:
        name = advnet_name(args, variant)
        trained = train_run(advnet_command(args, variant), model_dir(args, name), name)
        record["models"][name] = {**record["models"].get(name, {}), **trained}
        save()
        if variant in table["rows"] and not args.fresh:
            continue
        t0 = time.perf_counter()
        model = advforge.load_model(model_dir(args, name))
        table["rows"][variant] = cotrained_row(args, model, x, y, transfers)
        record["models"][name]["eval_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"table6 {variant}: {json.dumps(table['rows'][variant])}", flush=True)
        save()


# ---- Tables 5 / 10 / 11: generators as attackers of a fixed model -------------------------

def generator_call(args: argparse.Namespace, target: str, variant: str) -> str:
    return (f"train_generator_attack({target}, {VARIANTS[variant][1]!r}, "
            f"{width(args, variant)}, eps={args.eps:g}, x_train, y_train, "
            f"epochs={args.g_epochs}, batch_size={args.g_batch_size}, optimizer='sgd', "
            "lr=0.01, momentum=0.9, weight_decay=1e-5, seed=0)")


def ensure_generator(args, target: str, variant: str, model, train) -> tuple[Any, dict]:
    """Train the variant against ``target`` (saved in the work dir), or load it if saved."""
    run = model_dir(args, f"G-{target}-{variant}")
    meta = {"call": generator_call(args, target, variant), "dir": str(run)}
    if (run / CALL_FILE).is_file():  # written last: the generator beside it is complete
        saved = json.loads((run / CALL_FILE).read_text())["call"]
        if saved != meta["call"]:
            raise UsageError(f"{run} holds a generator trained by {saved}, not by "
                             f"{meta['call']}: delete it or pick another --work")
        return load_generator(run)[1], meta
    t0 = time.perf_counter()
    g, _ = train_generator_attack(
        model, VARIANTS[variant][1], width(args, variant), args.eps, *train,
        epochs=args.g_epochs, batch_size=args.g_batch_size, seed=0)
    save_generator(g, run, args.eps)
    atomic_write_json(run / CALL_FILE, {"call": meta["call"]})
    meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    return load_generator(run)[1], meta


def perturbed(perturb, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``clamp(x + eps G(.), 0, 1)`` over the test images; G2's z seeded for repeatability."""
    gen = torch.Generator(device=x.device).manual_seed(0)
    return torch.cat([perturb(x[i:i + BATCH], y[i:i + BATCH], generator=gen)
                      for i in range(0, x.shape[0], BATCH)])


def attack_table(args, record: dict, target: str, variants: list[str], x, y, train,
                 save) -> None:
    """One of Tables 5 / 10 / 11: the generators trained against ``target``."""
    columns = [target, *TRANSFER]
    key = ATTACK_TABLE[target]
    table = record.setdefault(key, {"target": target, "columns": columns, "rows": {}})
    models = {name: advforge.load_model(model_dir(args, name)) for name in columns}
    table["rows"]["original"] = {name: accuracy(m, x, y) for name, m in models.items()}
    save()
    for variant in variants:
        if variant in table["rows"] and not args.fresh:
            continue
        perturb, meta = ensure_generator(args, target, variant, models[target], train)
        x_adv = perturbed(perturb, x, y)
        table["rows"][variant] = {name: accuracy(m, x_adv, y) for name, m in models.items()}
        done = f"{target}/{variant}"
        record["generators"][done] = {**record["generators"].get(done, {}), **meta}
        print(f"{key} {variant}: {json.dumps(table['rows'][variant])}", flush=True)
        save()


# ---- driver --------------------------------------------------------------------------------

def header(args: argparse.Namespace, targets: list[str], variants: list[str]) -> dict:
    return {"benchmark": "generator_tables", "dataset": args.dataset, "arch": args.arch,
            "eps": args.eps, "n": args.n, "limit_train": args.limit_train,
            "g_epochs": args.g_epochs, "g_batch_size": args.g_batch_size,
            "advnet_epochs": args.advnet_epochs, "smoke": args.smoke,
            "machine": platform.machine(), "threads": torch.get_num_threads(),
            "variants": {v: {"label": VARIANTS[v][0], "generator": VARIANTS[v][1],
                             "width": width(args, v)} for v in variants},
            "paper": paper_figures(targets)}


def needed_models(tables: list[str], targets: list[str]) -> list[str]:
    names = list(SOURCES) if "6" in tables else []
    if "5" in tables:
        names += [*TRANSFER, *targets]
    return list(dict.fromkeys(names))


def load_data(args: argparse.Namespace):
    """Test images (the first ``--n``) and training images for the generator attacks; an
    unknown or missing dataset, or a side the generators cannot take, is a UsageError."""
    try:
        splits = advforge.data.load(args.dataset)
    except AdvforgeError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    if splits.test.x.shape[-1] % 4 or splits.test.x.shape[-2] != splits.test.x.shape[-1]:
        raise UsageError("the generators need square images whose side is divisible by 4, "
                         f"got {tuple(splits.test.x.shape[-2:])}")
    n = min(args.n, len(splits.test))
    limit = SMOKE_TRAIN if args.smoke else args.limit_train
    return (splits.test.x[:n], splits.test.y[:n]), (splits.train.x[:limit],
                                                     splits.train.y[:limit])


def run(args, record: dict, variants, targets, tables, save) -> None:
    """Train the models the tables need, then measure each table, saving after each step."""
    (x, y), train = load_data(args)
    for name in needed_models(tables, targets):
        record["models"][name] = {**record["models"].get(name, {}),
                                  **ensure_trained(args, name)}
        print(f"trained {name}: {record['models'][name]}", flush=True)
        save()
    if "5" in tables:
        for target in targets:
            attack_table(args, record, target, variants, x, y, train, save)
    if "6" in tables:
        table6(args, record, variants, x, y, save)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        variants, targets, tables = check_args(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.n, args.g_epochs = min(args.n, SMOKE_N), 1
    suffix = "-smoke" if args.smoke else ""
    out = Path(args.out or ROOT / "benchmarks" / "results"
               / f"generator_tables_{args.dataset}-{args.arch}{suffix}.json")
    record = json.loads(out.read_text()) if out.is_file() and not args.fresh else {}
    # A run for some variants or targets keeps what the record holds for the others (their
    # labels, the paper's figures for their tables): the header's mappings are merged.
    for key, value in header(args, targets, variants).items():
        kept = record.get(key)
        record[key] = {**kept, **value} if isinstance(value, dict) and isinstance(kept, dict) \
            else value
    record.setdefault("models", {})
    record.setdefault("generators", {})
    try:
        run(args, record, variants, targets, tables, lambda: atomic_write_json(out, record))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_json(out, record)
    print_tables(record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
