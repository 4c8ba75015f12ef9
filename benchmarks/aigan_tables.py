"""Reproduce AI-GAN's Tables II, III, IV and VI (Bai et al., Sec. V-VI) on our datasets.

For each setting (dataset, target model run, eps) it measures, printing the paper's figure
beside ours where the paper has one (its MNIST columns sit beside our ``mnist5k``):

* ``whitebox`` (Table II): AI-GAN's targeted success over every (test image, target != label)
  pair, per target class, beside targeted PGD-100 (C&W margin loss, random start, step 0.01)
  on the same pairs (``pgd100``, the issue's yardstick) and beside PGD-100 with the
  targeted cross-entropy (``pgd100_ce``), the stronger loss for sign-gradient PGD on our
  models: a user should see both;
* ``advgan`` (Table III): AdvGAN, one generator per target, on the same pairs, and the total
  training time of AI-GAN (one model) vs AdvGAN (one per target);
* ``timing`` (Table VI): 1,000 targeted examples from FGSM, PGD-20, C&W L2, AdvGAN and AI-GAN,
  timed in the same process, with each one's success;
* ``blackbox`` (Table IV): AI-GAN trained by dynamic distillation against a query-only
  target, its success on the target, the ratio to white-box, and FGSM/PGD/C&W run on the
  distilled local model and transferred;
* ``ablation``: AI-GAN without SimCLR pre-training and without the PGD attacker in D.

Trained attackers are cached under ``--work`` and reused (an interrupted training resumes);
finished parts are kept in ``--out`` and skipped on the next run unless ``--fresh`` (which
recomputes only the parts named by ``--parts``).

The pieces live in ``benchmarks/aigan_bench/``: ``settings`` (command line, settings,
overrides), ``paper`` (the published figures), ``context`` (data, model, trained attackers),
``cache`` (what cached attackers and kept parts were made with), ``parts`` and ``printing``;
the transfer accounting is :mod:`advforge.eval.transfer`.

    python benchmarks/aigan_tables.py --settings mnist5k-b --threads 1
    python benchmarks/aigan_tables.py --settings fashion-b-0.1 --parts whitebox,pgd100,timing
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import advforge
from advforge.errors import AdvforgeError
from advforge.generative import AdvGANConfig
from advforge.utils.checkpoint import atomic_write_json, read_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aigan_bench.cache import config_difference, kept_parts_not_comparable  # noqa: E402
from aigan_bench.context import Context  # noqa: E402
from aigan_bench.paper import PAPER  # noqa: E402
from aigan_bench.parts import PART_FNS  # noqa: E402
from aigan_bench.printing import print_setting, selection_scores  # noqa: E402
from aigan_bench.settings import PARTS, Setting, parse_args, parse_overrides  # noqa: E402

__all__ = ["PART_FNS", "config_difference", "kept_parts_not_comparable", "main",
           "parse_overrides", "selection_scores"]


def main(argv: list[str] | None = None) -> int:
    """Run the asked parts for every setting, keep them in --out, print the tables."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        parts = [p for p in args.parts.split(",") if p]
        unknown = [p for p in parts if p not in PART_FNS]
        if unknown:
            raise AdvforgeError(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
        parse_overrides(args.gan)  # refuse a bad override before anything loads or trains
        parse_overrides(args.advgan, AdvGANConfig, "--advgan")
        settings = [Setting.parse(s, args.train_limit) for s in args.settings.split(",") if s]
        out = Path(args.out)
        report = read_json(out) if out.is_file() else {}  # other parts are always kept
        report.setdefault("results", {})
        for setting in settings:
            ctx = Context(setting, args)
            res = report["results"].setdefault(setting.name, {})
            ctx.kept = res
            n_eval = int(ctx.x.shape[0])
            recomputed = {p for p in parts if args.fresh or p not in res}
            if stale := kept_parts_not_comparable(res, recomputed, n_eval, ctx.model_sha256,
                                                  ctx.clean_accuracy):
                raise AdvforgeError(
                    f"{setting.name}: {out} keeps parts that cannot stand beside this run's "
                    f"(--n-eval {n_eval}, model {setting.model_dir}): {', '.join(stale)}; use "
                    "their --n-eval and model, or recompute them too (--fresh --parts ...)")
            res.update(dataset=setting.dataset, model=str(setting.model_dir), arch=ctx.arch,
                       model_sha256=ctx.model_sha256,
                       eps=setting.eps, num_classes=ctx.num_classes,
                       n_eval=n_eval, train_images=int(ctx.train[0].shape[0]))
            for part in parts:
                if part in res and not args.fresh:
                    print(f"[{setting.name}] {part}: kept from {out}", flush=True)
                    continue
                start = time.perf_counter()
                # JSON round trip: class keys become strings, as when read back from --out
                res[part] = json.loads(json.dumps(PART_FNS[part](ctx), default=float))
                res[part]["part_seconds"] = time.perf_counter() - start
                res[part]["n_eval"] = n_eval  # the test images it was scored on
                res[part]["model_sha256"] = ctx.model_sha256  # and the model it was scored on
                print(f"[{setting.name}] {part} done in {res[part]['part_seconds']:.0f}s",
                      flush=True)
                report.update(benchmark="aigan_tables", paper=PAPER, threads=torch
                              .get_num_threads(), cpu_count=os.cpu_count(),
                              platform=platform.platform(), torch=torch.__version__,
                              advforge=advforge.__version__, seed=args.seed,
                              load_average=os.getloadavg())  # each part records its config
                atomic_write_json(out, report)
            print_setting(setting.name, ctx.arch, res)
    except AdvforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
