"""Which substitute black-box AI-GAN's ``local_arch="auto"`` picks for each target, and why.

For every target classifier given, this runs exactly the selection a black-box AI-GAN run
makes before its GAN starts (:func:`advforge.generative.substitute.select_substitute`, with
the run's default settings or ``--gan`` overrides): each candidate architecture is distilled
on the dataset's training images from one shared round of queries, targeted PGD-20 examples
are crafted on it, and its score is the target's mean targeted C&W margin on them (from its
answers), with the share it classifies as the intended class beside. Prints the score table
and writes it as JSON.

    python benchmarks/substitute_selection.py --dataset mnist5k \\
        --target model_b=runs/model_b_mnist5k --target model_a=runs/model_a_mnist5k
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

import advforge.data
from advforge import load_model
from advforge.errors import AdvforgeError
from advforge.generative.aigan import AIGANConfig, AIGANTrainer
from advforge.generative.identity import weights_hash
from advforge.generative.substitute import candidate_archs, select_substitute
from advforge.utils.checkpoint import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aigan_tables import (  # noqa: E402 (the benchmarks' shared --gan parser, printer)
    parse_overrides,
    selection_scores,
)
from substitute_transfer import _named  # noqa: E402 (NAME=RUN_DIR, as there)


def select_for(target: torch.nn.Module, cfg: AIGANConfig, x: torch.Tensor,
               y: torch.Tensor) -> dict[str, Any]:
    """The selection record of a black-box run with ``cfg`` against ``target``."""
    trainer = AIGANTrainer.for_data(cfg, target, (x, y))
    choice = select_substitute(
        trainer.oracle, x, candidates=candidate_archs(x.shape[-1]), build=trainer.build_local,
        make_distiller=trainer.new_distiller, epochs=cfg.black_box.distill_warmup_epochs,
        batch_size=cfg.training.batch_size, eps=cfg.eps, kappa=cfg.objective.kappa,
        seed=cfg.training.seed, score_images=cfg.black_box.local_select_images)
    return choice.record()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--target", action="append", required=True, metavar="NAME=RUN_DIR")
    p.add_argument("--eps", type=float, default=None, help="default: the dataset's")
    p.add_argument("--train-limit", type=int, default=None,
                   help="first N training images only (default: all, as a run uses)")
    p.add_argument("--gan", action="append", default=[], metavar="KEY=VALUE",
                   help="override an AIGANConfig field (repeatable)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON file for the figures")
    args = p.parse_args(argv)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        splits = advforge.data.load(args.dataset, args.data_dir)
        x, y = (t[: args.train_limit].to(device) for t in (splits.train.x, splits.train.y))
        cfg = AIGANConfig.from_flat({"eps": args.eps or splits.default_eps, "black_box": True,
                                     **parse_overrides(args.gan)})
        results: dict[str, Any] = {}
        for name, path in (_named(s, "--target") for s in args.target):
            target = load_model(path).to(device).eval()
            start = time.perf_counter()
            record = select_for(target, cfg, x, y)
            results[name] = {"run_dir": path, "weights_sha256": weights_hash(target),
                             **record, "wall_seconds": time.perf_counter() - start}
            print(f"{name:10} {selection_scores(record)}  -> {record['arch']} "
                  f"({record['queries']} queries, {record['seconds']:.0f} s)", flush=True)
    except AdvforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        atomic_write_json(args.out, {
            "benchmark": "substitute_selection", "dataset": args.dataset, "eps": cfg.eps,
            "train_images": int(x.shape[0]), "overrides": parse_overrides(args.gan),
            "score": "targeted PGD-20 (C&W margin, G's kappa) examples on each distilled "
                     "candidate; scores: the target's mean targeted margin "
                     "min(Z_t - max_{j != t} Z_j, kappa) from its answers (the ranking); "
                     "success: the share it classifies as the intended class",
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
