"""Where black-box AI-GAN loses its success: the target, or the substitute's architecture?

Black-box AI-GAN (Sec. V-D) trains its generator against a local model f_d distilled from a
query-only target, so it can only be as good as f_d is a stand-in for the target. This scores
trained generators (typically the white-box one, trained on the target itself, and the
black-box one) on the target and on any number of other classifiers (the distilled f_d, or a
model of f_d's architecture trained on labels, which never saw a generator), over every
(test image, target != label) pair whose image the target classifies correctly, and reports
for each generator and classifier the targeted success and how it overlaps the target's.

If a classifier that never saw a generator resists the white-box generator's examples about
as much as the distilled f_d does, the resistance comes with f_d's architecture, not from the
distillation.

    python benchmarks/substitute_transfer.py --target runs/model_b_mnist5k --dataset mnist5k \\
        --generator whitebox=RUN/aigan --generator blackbox=RUN/aigan_blackbox \\
        --model distilled=RUN/aigan_blackbox/local_model --model plain=runs/model_c_mnist5k
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

import advforge.data
from advforge import load_attacker, load_model
from advforge.errors import AdvforgeError
from advforge.utils.checkpoint import atomic_write_json


def _named(spec: str, flag: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise AdvforgeError(f"{flag} wants NAME=RUN_DIR, got {spec!r}")
    return name, path


def targeted_hits(generator: Any, target: torch.nn.Module, models: dict[str, torch.nn.Module],
                  x: torch.Tensor, y: torch.Tensor, num_classes: int,
                  batch: int = 500) -> dict[str, torch.Tensor]:
    """For every (image, target class != label) pair, whether the generator's example is
    classified as the target class by ``target`` and by each of ``models``: {name: (P,) bool}."""
    hits: dict[str, list[torch.Tensor]] = {name: [] for name in ("target", *models)}
    for t in range(num_classes):
        keep = y != t
        xs, ys = x[keep], y[keep]
        for i in range(0, xs.shape[0], batch):
            xb, yb = xs[i : i + batch], ys[i : i + batch]
            tb = torch.full_like(yb, t)
            with torch.no_grad():
                adv = generator(target, xb, yb, target=tb)
                for name, model in (("target", target), *models.items()):
                    hits[name].append(model(adv).argmax(1) == tb)
    return {name: torch.cat(v) for name, v in hits.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="the attacked classifier's run directory")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--generator", action="append", required=True, metavar="NAME=RUN_DIR")
    p.add_argument("--model", action="append", required=True, metavar="NAME=RUN_DIR",
                   help="another classifier to judge the generators' examples on")
    p.add_argument("--n-eval", type=int, default=1000, help="first N test images")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON file for the figures")
    args = p.parse_args(argv)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        target = load_model(args.target).to(device).eval()
        models = {name: load_model(path).to(device).eval()
                  for name, path in (_named(s, "--model") for s in args.model)}
        generators = {name: load_attacker(path).to(device)
                      for name, path in (_named(s, "--generator") for s in args.generator)}
        splits = advforge.data.load(args.dataset, args.data_dir)
        x = splits.test.x[: args.n_eval].to(device)
        y = splits.test.y[: args.n_eval].to(device)
        with torch.no_grad():
            correct = target(x).argmax(1) == y
        x, y = x[correct], y[correct]
        report: dict[str, Any] = {"target": str(args.target), "dataset": args.dataset,
                                  "n_eval": args.n_eval, "images": int(x.shape[0]),
                                  "models": dict(s.partition("=")[::2] for s in args.model),
                                  "results": {}}
        for g_name, generator in generators.items():
            hits = targeted_hits(generator, target, models, x, y, splits.num_classes)
            on_target = hits["target"]
            row = {"pairs": int(on_target.numel()),
                   "success_on_target": float(on_target.float().mean())}
            for name in models:
                h = hits[name]
                row[name] = {"success": float(h.float().mean()),
                             "target_hit_given_hit": float((h & on_target).sum()
                                                           / h.sum().clamp_min(1)),
                             "hit_given_target_hit": float((h & on_target).sum()
                                                           / on_target.sum().clamp_min(1))}
            report["results"][g_name] = row
            print(f"{g_name}: target {100 * row['success_on_target']:.2f}% over "
                  f"{row['pairs']} pairs; " + "; ".join(
                      f"{name} {100 * row[name]['success']:.2f}% (fooled on "
                      f"{100 * row[name]['hit_given_target_hit']:.2f}% of the target's hits)"
                      for name in models))
        if args.out:
            atomic_write_json(Path(args.out), report)
        return 0
    except AdvforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
