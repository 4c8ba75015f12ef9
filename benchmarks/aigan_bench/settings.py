"""Settings of the AI-GAN tables: the command line, the (dataset, target, eps) columns, and
the ``--gan`` / ``--advgan`` overrides of the attackers' configs (flat names)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from advforge.errors import AdvforgeError
from advforge.generative import AIGANConfig
from advforge.generative.config import flat_names

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("whitebox", "pgd100", "pgd100_ce", "advgan", "timing", "blackbox", "ablation",
         "table6")

# name -> (dataset, target run dir, eps, training images used by the GANs: None = all)
SETTINGS = {
    "mnist5k-a": ("mnist5k", "runs/model_a_mnist5k", 0.3, None),
    "mnist5k-b": ("mnist5k", "runs/model_b_mnist5k", 0.3, None),
    "mnist5k-b-shipped": ("mnist5k", "src/advforge/pretrained/mnist5k_model_b", 0.3, None),
    # Fashion-MNIST's 60,000 training images would cost ~15x mnist5k's GAN time on a CPU;
    # the GANs see a prefix (the classifier saw all of them); at eps 0.1 more images help
    # (docs/aigan.md).
    "fashion-b-0.1": ("fashion-mnist", "runs/model_b_fashion", 0.1, 16000),
    "fashion-b-0.3": ("fashion-mnist", "runs/model_b_fashion", 0.3, 4000),
}

def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse turns the error into one line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of benchmarks/aigan_tables.py."""
    p = argparse.ArgumentParser(description="Reproduce AI-GAN's Tables II, III, IV and VI "
                                "(Bai et al., Sec. V-VI) on our datasets.")
    p.add_argument("--settings", default=",".join(SETTINGS),
                   help=f"comma list of {list(SETTINGS)} or DATASET:RUN_DIR:EPS entries")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    p.add_argument("--data-dir", default=None, help="dataset directory (default search)")
    p.add_argument("--n-eval", type=int, default=1000, help="test images for every table")
    p.add_argument("--train-limit", type=int, default=None,
                   help="training images for the GANs (overrides the setting's)")
    p.add_argument("--epochs", type=int, default=40,
                   help="AI-GAN epochs, all variants (the package default is 10; the tables "
                        "chase the paper's figures, which need more)")
    p.add_argument("--advgan-epochs", type=int, default=5, help="AdvGAN epochs per target")
    p.add_argument("--pgd-steps", type=int, default=100, help="the PGD-100 baseline's steps")
    p.add_argument("--timing-n", type=int, default=1000, help="examples timed in Table VI")
    p.add_argument("--cw-n", type=int, default=100,
                   help="C&W L2 is timed on this many and scaled to --timing-n")
    p.add_argument("--cw-steps", type=int, default=None,
                   help="optimiser steps per constant of both C&W attacks (default: their own, "
                        "100); lowered only to smoke-test the script")
    p.add_argument("--repeats", type=positive_int, default=5, help="timing repeats (median)")
    p.add_argument("--timing-processes", type=positive_int, default=3,
                   help="Table VI: fresh processes the generator and PGD-20 are timed in "
                        "(the median is reported; 1 = in this process)")
    p.add_argument("--transfer-n", type=int, default=100,
                   help="test images for Table IV's transfer baselines (C&W costs 500 steps)")
    p.add_argument("--gan", action="append", default=[], metavar="KEY=VALUE",
                   help="override an AIGANConfig field, every AI-GAN variant (repeatable)")
    p.add_argument("--advgan", action="append", default=[], metavar="KEY=VALUE",
                   help="override an AdvGANConfig field (repeatable); AdvGAN keeps Xiao et "
                        "al.'s generator whatever --gan sets")
    p.add_argument("--default-flag", action="append", default=[], metavar="FLAG",
                   help="table6: a flag added to the default generator's training command "
                        "(repeatable; for smoke tests: the table reports the defaults)")
    p.add_argument("--skip-compile", action="store_true",
                   help="table6: leave out the torch.compile lever (its compile takes a while)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=str(ROOT / "runs" / "bench_aigan"),
                   help="where trained attackers are cached")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "aigan_tables.json"))
    p.add_argument("--extend", action="store_true",
                   help="resume a cached AI-GAN trained for fewer than --epochs up to --epochs "
                        "(its cosine schedule restarts part-way; the part records it) instead "
                        "of reusing it as it is")
    p.add_argument("--fresh", action="store_true",
                   help="recompute the --parts already in --out (the others are kept)")
    return p.parse_args(argv)


def parse_overrides(items: list[str], cls: type = AIGANConfig,
                    flag: str = "--gan") -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict, values parsed as JSON when they parse; a key that is
    not a field of ``cls`` is refused (a typo must not silently train the defaults)."""
    fields = set(flat_names(cls))
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise AdvforgeError(f"{flag} takes KEY=VALUE, got {item!r}")
        if key not in fields:
            raise AdvforgeError(f"{flag} {key!r} is not a field of {cls.__name__}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@dataclasses.dataclass
class Setting:
    """One column of the tables: a dataset, a trained target model and an L-inf budget."""

    name: str
    dataset: str
    model_dir: Path
    eps: float
    train_limit: int | None

    @classmethod
    def parse(cls, spec: str, train_limit: int | None) -> Setting:
        if spec in SETTINGS:
            dataset, run, eps, limit = SETTINGS[spec]
            return cls(spec, dataset, ROOT / run, eps, train_limit or limit)
        parts = spec.split(":")
        if len(parts) != 3:
            raise AdvforgeError(f"unknown setting {spec!r}: use {list(SETTINGS)} or "
                                "DATASET:RUN_DIR:EPS")
        name = f"{parts[0]}-{Path(parts[1]).name}-{parts[2]}"
        return cls(name, parts[0], Path(parts[1]), float(parts[2]), train_limit)
