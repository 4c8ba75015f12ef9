"""The ``advforge`` command line. The only place that reads flags, picks a device, seeds and
prints. Errors a user can cause print one line and exit with status 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from advforge.cli import model_commands
from advforge.cli.configs import AttackConfig, DemoConfig, EvalConfig, RobustnessConfig
from advforge.cli.options import add_dataclass_flags, build_config
from advforge.errors import AdvforgeError

EXIT_USAGE = 2

_EXAMPLES = """examples:
  advforge datasets
  advforge train-classifier --arch model_b --dataset mnist5k --out runs/model_b
  advforge attack --attack pgd --model runs/model_b --targets 7 --save adv.safetensors
  advforge evaluate --model runs/model_b --attacks fgsm,pgd,cw_l2 --targets all --out reports/x
  advforge robustness --model runs/model_b --dataset mnist5k --eps 0.3 --limit 1000
  advforge influence --model runs/model_b --dataset mnist5k --index 3 --plot fi.png
  advforge demo
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file of option: value defaults (flags override)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-step output")
    p.add_argument("--dry-run", action="store_true",
                   help="run end to end on a tiny synthetic dataset with tiny settings")
    p.add_argument("--deterministic", action="store_true",
                   help="use deterministic kernels (slower on CUDA)")


def build_parser() -> argparse.ArgumentParser:
    from advforge.training import TrainConfig

    parser = argparse.ArgumentParser(
        prog="advforge", description="Test and harden image classifiers against adversarial "
        "examples.", epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("datasets", help="list datasets and whether their files are found",
                   description="List the datasets advforge knows and whether their files are "
                   "found (set ADVFORGE_DATA_DIR or --data-dir to point at them).")
    for name, (cls, help_text, description) in _commands(TrainConfig).items():
        p = sub.add_parser(name, help=help_text, description=description)
        add_dataclass_flags(p, cls)
        _add_common(p)
    from advforge.cli.train_attacker import add_parser as add_train_attacker

    add_train_attacker(sub, _add_common)
    from advforge.cli.defend import add_parser as add_defend

    add_defend(sub, _add_common)
    from advforge.cli.influence import add_parser as add_influence

    add_influence(sub, _add_common)
    model_commands.add_parsers(sub)
    return parser


def _commands(train_config: type) -> dict[str, tuple[type, str, str]]:
    """Each dataclass-driven subcommand: its config, one-line help and a plain description."""
    return {
        "train-classifier": (train_config, "train a classifier from the model zoo",
                             "Train a zoo classifier on a dataset and write a run directory "
                             "(model.safetensors and config.json) that every other command "
                             "takes as --model."),
        "attack": (AttackConfig, "run one attack; optionally save the adversarial set",
                   "Run one attack against a trained classifier and print its success rate. "
                   "Optionally save the adversarial examples (--save) and a report (--out)."),
        "evaluate": (EvalConfig, "run several attacks and write a report",
                     "Run several attacks under one target protocol and write report.json, "
                     "report.md and report.html into --out."),
        "robustness": (RobustnessConfig, "robust accuracy under the standard attack cascade",
                       "Measure robust accuracy at one budget under AutoAttack's standard "
                       "cascade (APGD-CE, APGD-T, Square), as the worst case per input. Writes "
                       "report.json and report.md into --out."),
        "demo": (DemoConfig, "the main job on the embedded MNIST sample",
                 "Attack the shipped Model B on the embedded MNIST sample with FGSM, PGD, "
                 "C&W L2 and its shipped AI-GAN generator, and write one report; "
                 "--from-scratch trains Model B, AI-GAN and AdvGAN first."),
    }


def _version() -> str:
    from advforge import __version__

    return f"advforge {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun every rank runs this; only rank 0 speaks (and writes, see training).
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _dispatch(args)
    except AdvforgeError as exc:
        print(f"advforge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("advforge: interrupted (completed checkpoints are kept; rerun with --resume)",
              file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from advforge.cli import commands
    from advforge.utils.device import resolve_device
    from advforge.utils.seed import seed_everything

    if args.command == "datasets":
        return commands.cmd_datasets()
    if args.command in model_commands.COMMANDS:
        return model_commands.run(args)
    device = resolve_device(args.device)
    flags = {"dry_run": args.dry_run, "quiet": args.quiet}
    if args.command == "train-attacker":
        from advforge.cli.train_attacker import cmd_train_attacker

        return cmd_train_attacker(args, device, deterministic=args.deterministic, **flags)
    if args.command == "defend":
        from advforge.cli.defend import cmd_defend

        return cmd_defend(args, device, **flags)
    if args.command == "influence":
        from advforge.cli.influence import cmd_influence

        return cmd_influence(args, device, **flags)
    if args.command == "train-classifier":
        extra = _dry_run_train_overrides(args) if args.dry_run else None
        cfg = model_commands.train_classifier_config(args, extra)
        seed_everything(cfg.seed, deterministic=args.deterministic)
        return commands.cmd_train_classifier(cfg, device, **flags)
    cls = {"attack": AttackConfig, "evaluate": EvalConfig, "demo": DemoConfig,
           "robustness": RobustnessConfig}[args.command]
    cfg = build_config(cls, args)
    seed_everything(cfg.seed, deterministic=args.deterministic)
    if args.command == "attack":
        return commands.cmd_attack(cfg, device, **flags)
    if args.command == "evaluate":
        return commands.cmd_evaluate(cfg, device, **flags)
    if args.command == "robustness":
        from advforge.cli.robustness import cmd_robustness

        return cmd_robustness(cfg, device, **flags)
    from advforge.cli.demo import cmd_demo

    return cmd_demo(cfg, device, **flags)


def _dry_run_train_overrides(args: argparse.Namespace) -> dict:
    """--dry-run trains one epoch on a tiny synthetic dataset, whatever else was asked."""
    from advforge.cli.options import UNSET

    extra: dict = {"dataset": "synthetic", "epochs": 1}
    if getattr(args, "out", UNSET) is UNSET:
        extra["out"] = "runs/dry-run"
    return extra


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
