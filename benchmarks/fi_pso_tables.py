"""FI + PSO (Shi, Shu, Zhu and Chen 2020) on our data, paper figures beside ours.

Parts (``--parts``, comma-separated; default all), each written into the JSON as it finishes:

* ``fi_speed``: both FI levels for the first 1,000 test images in one ``influence()`` call.
* ``survey``: image-level FI of every image of train and test (the first ``--limit-train`` of
  train): the relation to confidence (Sec. 2.2's measure is (1 - p_y) / p_y at full rank), the
  Manhattan plot (Fig. 7), the confusion heatmaps (Fig. 8) and FI against confidence.
* ``fig2``: pixel FI maps of the most vulnerable test image for every target class.
* ``fig4``: the nine settings of Fig. 4 on the first ``--n`` correctly classified test images
  (targeted settings skip the target's own images): m = 1, 3, 7 top-FI pixels; P_err = 0.5,
  0.75, 0.99 and y_target = 0, 2, 4 on the pixels with FI >= 0.1 (of ``-log p`` of the
  runner-up, resp. of the target: Eq. 5). Success = every requirement met; plus the picture
  for one image. ``--settings`` measures a few settings at a time into the kept part.
* ``fig4_vulnerable``: the few-pixel settings (``--vulnerable-settings``) on the ``--n``
  correctly classified test images of largest image-level FI instead.
* ``pso_speed``: seconds per image of N_p = 200, T = 100 on 16 images batched, all pixels,
  with and without the convergence test.
* ``universality``: Table 2: the P_err = 0.99 perturbation of the Fig. 4 image (setting 6)
  applied to every correctly classified image of the other classes.
* ``table3``: ``advforge defend fi-at --model RUN --dataset D`` with no other flag, its
  Algorithm 2 counts (the targeted attack's success on the selected images) and Table 3.
  ``--variant NAME --fi-at-flags "..."`` stores a fine-tuning variant as ``table3@NAME``; its
  run starts from a copy of the default run's Algorithm 2 sets, so it skips the search.

    python benchmarks/fi_pso_tables.py --dataset mnist5k --arch model_b
    python benchmarks/fi_pso_tables.py --dataset fashion-mnist --arch model_b \\
        --model runs/model_b_fashion-mnist --n 100 --parts fig4,table3

Writes ``benchmarks/results/fi_pso_<dataset>_<arch>.json`` and the pictures under
``benchmarks/results/fi_pso/<dataset>_<arch>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

import advforge
from advforge import data
from advforge.attacks.fi_pso import FiPSO
from advforge.defenses.influence.finetune import SETS_FILE, SETS_META
from advforge.generative.identity import weights_hash
from advforge.influence import (
    confidence_relation,
    influence,
    survey,
    target_maps,
    universality,
)
from advforge.influence.plot import (
    confidence_png,
    confusion_png,
    manhattan_png,
    settings_png,
    target_maps_png,
)
from advforge.models import load_model
from advforge.utils.checkpoint import atomic_write_bytes, atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("fi_speed", "survey", "fig2", "fig4", "fig4_vulnerable", "pso_speed", "universality",
         "table3")
SHIPPED = {("mnist5k", "model_b"): ROOT / "src/advforge/pretrained/mnist5k_model_b"}
FI_PIXEL = 0.1
SCALED = ("fig4", "fig4_vulnerable")  # parts whose attacks depend on --scale
TARGETS = (0, 2, 4)  # Fig. 4's Perturbations 7-9 on MNIST

# Shi et al.: Table 2 (MNIST rows, percent, class 4 is the target) and Table 3 (MNIST columns).
PAPER = {
    "table2": {
        "train": {"misclassified": [92.9, 100, 99.3, 91.1, None, 96.0, 92.3, 100, 15.3, 99.9],
                  "to_target": [81.1, 36.9, 55.8, 84.3, None, 75.5, 49.6, 95.3, 14.2, 68.8],
                  "total": (87.7, 62.2)},
        "test": {"misclassified": [91.7, 100, 99.4, 94.4, None, 97.9, 91.1, 100, 14.3, 100],
                 "to_target": [79.7, 37.3, 58.8, 88.3, None, 78.5, 57.4, 94.8, 13.7, 75.0],
                 "total": (87.9, 64.5)},
    },
    "table3": {"original": {"adv_train": 0.0, "train_plus_adv_train": 99.53, "adv_test": 0.0,
                            "test_plus_adv_test": 98.99},
               "fine_tuned": {"adv_train": 83.82, "train_plus_adv_train": 99.64, "adv_test": 76.92,
                              "test_plus_adv_test": 99.26},
               "n": {"adv_train": 136, "adv_test": 26}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="model_b", help="the model's architecture (its label)")
    p.add_argument("--model", default=None,
                   help="classifier run directory (default: the shipped mnist5k Model B)")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--n", type=int, default=100, help="images per Fig. 4 setting")
    p.add_argument("--particles", type=int, default=200, help="N_p")
    p.add_argument("--iters", type=int, default=100, help="T")
    p.add_argument("--settings", default=None,
                   help="fig4: only these settings (comma-separated names, e.g. target=0); "
                        "the other settings' rows kept in --out at the same --n stay")
    p.add_argument("--scale", default="log", choices=["log", "prob"],
                   help="fi_pso's f0 scale; parts run with prob are stored as PART@prob")
    p.add_argument("--vulnerable-settings", default="m=1,m=3,m=7",
                   help="fig4_vulnerable: the Fig. 4 settings run on the most vulnerable images")
    p.add_argument("--speed-swarm", default="200,100", metavar="N_P,T",
                   help="pso_speed: the swarm timed (the bar is set at 200,100)")
    p.add_argument("--stop-when-met", action="store_true",
                   help="Fig. 4: stop each swarm once its requirements are met")
    p.add_argument("--limit-train", type=int, default=None,
                   help="survey / universality / fi-at: the first N training images")
    p.add_argument("--limit-test", type=int, default=None,
                   help="every part: the first N test images (smoke runs)")
    p.add_argument("--fi-at-flags", default="",
                   help="extra `defend fi-at` flags (recorded; e.g. --epochs 1 for a smoke run)")
    p.add_argument("--variant", default=None,
                   help="table3: store this fi-at run (its --fi-at-flags) as table3@NAME")
    p.add_argument("--work", default="runs/fi_pso_tables", help="where fi-at runs go")
    p.add_argument("--out", default=None, help="result JSON (default under benchmarks/results)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true",
                   help="drop the parts --out keeps from another model (a retrained --model) "
                        "instead of refusing to write beside them")
    return p.parse_args(argv)


def parts_of_another_model(record: dict[str, Any], digest: str,
                           recomputed: set[str]) -> list[str]:
    """The parts ``record`` keeps that were measured on a model other than ``digest``'s and
    that this run does not recompute. Every table reads one JSON as one model's results, so
    a part from a retrained model (training is not bit-reproducible across machines) would
    stand beside the others as if it were the same network's. A part without its own hash
    was measured on the model the record names at its top level."""
    default = record.get("model_sha256")
    stale = []
    for key, row in record.items():
        if key.split("@")[0] not in PARTS or not isinstance(row, dict) or key in recomputed:
            continue
        if row.get("model_sha256", default) not in (None, digest):
            stale.append(key)
    return stale


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown parts {unknown}; choose from {list(PARTS)}")
    model_dir = Path(args.model) if args.model else SHIPPED.get((args.dataset, args.arch))
    if model_dir is None or not (model_dir / "config.json").is_file():
        raise SystemExit(f"--model: no classifier run directory for {args.dataset} {args.arch}")
    tag = f"{args.dataset}_{args.arch}"
    out = Path(args.out) if args.out else RESULTS / f"fi_pso_{tag}.json"
    pictures = out.parent / "fi_pso" / tag
    record = json.loads(out.read_text()) if out.is_file() else {}
    model = load_model(model_dir).eval()
    digest = weights_hash(model)
    if stale := parts_of_another_model(record, digest, {part_key(args, p) for p in parts}):
        if not args.fresh:
            raise SystemExit(f"{out} keeps parts measured on another model than {model_dir}: "
                             f"{', '.join(stale)}; recompute them too (--parts) or drop them "
                             "(--fresh)")
        for key in stale:
            del record[key]
    kept_on = record.get("model_sha256")  # the model a kept part without its own hash had
    record.update({"benchmark": "fi_pso_tables", "dataset": args.dataset, "arch": args.arch,
                   "model": _relative(model_dir), "advforge": advforge.__version__,
                   "threads": torch.get_num_threads(),
                   "machine": platform.processor() or platform.machine()})
    record["model_sha256"] = digest
    splits = data.load(args.dataset)
    ctx = Context(args, model, model_dir, splits, pictures)
    for part in parts:
        start = time.perf_counter()
        key = part_key(args, part)
        kept = record.get(key)  # a part may build on its kept rows, if the model is the same
        ctx.kept = kept if kept and kept.get("model_sha256", kept_on) == digest else None
        record[key] = {**PART_FUNCTIONS[part](ctx), "model_sha256": digest,
                       "part_seconds": round(time.perf_counter() - start, 1)}
        atomic_write_json(out, record)
        print(f"{key}: done in {record[key]['part_seconds']:.0f}s -> {out}", flush=True)
    return 0


def part_key(args: argparse.Namespace, part: str) -> str:
    """Where ``part`` goes in the JSON: ``PART@prob`` for a scaled part run on the
    probability scale, ``table3@NAME`` for a fine-tuning variant."""
    if part == "table3" and args.variant:
        return f"table3@{args.variant}"
    return part if args.scale == "log" or part not in SCALED else f"{part}@{args.scale}"


class Context:
    """What every part reads: the arguments, the model, the data and the pictures' folder."""

    def __init__(self, args, model, model_dir, splits, pictures: Path) -> None:
        self.args, self.model, self.model_dir, self.splits = args, model, model_dir, splits
        self.pictures = pictures
        self.kept: dict[str, Any] | None = None  # what --out holds under the running part
        self._surveys: dict[str, Any] = {}

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        part = getattr(self.splits, name)
        limit = self.args.limit_test if name == "test" else self.args.limit_train
        n = len(part) if limit is None else min(limit, len(part))
        return part.x[:n], part.y[:n].long()

    def survey(self, name: str):
        if name not in self._surveys:
            self._surveys[name] = survey(self.model, *self.split(name))
        return self._surveys[name]

    def picture(self, name: str, png: bytes) -> str:
        self.pictures.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.pictures / name, png)
        return _relative(self.pictures / name)

    def showcase(self) -> int:
        """Fig. 4's image: the most vulnerable correctly classified test image whose label is
        none of the targets (so all nine settings apply to it)."""
        s = self.survey("test")
        for i in s.most_vulnerable(len(s.y)).tolist():
            if int(s.y[i]) not in TARGETS:
                return i
        raise SystemExit("no correctly classified test image outside the target classes")


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ---------------------------------------------------------------- the parts

def part_fi_speed(ctx: Context) -> dict[str, Any]:
    x, y = ctx.split("test")
    x, y = x[:1000], y[:1000]
    influence(ctx.model, x[:8], y[:8])  # warm-up
    start = time.perf_counter()
    influence(ctx.model, x, y)
    seconds = time.perf_counter() - start
    return {"images": int(len(y)), "seconds": round(seconds, 2), "bar_seconds": 10.0,
            "threads": torch.get_num_threads(), "passes": seconds <= 10.0}


def part_survey(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("train", "test"):
        s = ctx.survey(name)
        out[name] = {"confidence_relation": confidence_relation(s, 0.2),
                     "accuracy": float(s.correct.double().mean()),
                     "confusion": s.confusion().tolist()}
    test = ctx.survey("test")
    correct = {n: (ctx.survey(n).fi[ctx.survey(n).correct], ctx.survey(n).y[ctx.survey(n).correct])
               for n in ("train", "test")}
    out["pictures"] = {
        "manhattan": ctx.picture("fig7_manhattan.png", manhattan_png(correct, threshold=0.2)),
        "confusion": ctx.picture("fig8_confusion.png", confusion_png(
            {n: ctx.survey(n).confusion() for n in ("train", "test")})),
        "confidence": ctx.picture("fi_vs_confidence.png", confidence_png(
            test.p_true[test.correct], test.fi[test.correct], fi_img=0.2)),
    }
    return out


def part_fig2(ctx: Context) -> dict[str, Any]:
    s = ctx.survey("test")
    i = int(s.most_vulnerable(1)[0])
    x, y = ctx.split("test")
    maps = target_maps(ctx.model, x[i], y[i])
    png = target_maps_png(x[i], s.probs[i], maps, title=f"{ctx.args.dataset} test image {i} "
                          f"(label {int(y[i])}): pixel FI of -log p(t)")
    return {"index": i, "label": int(y[i]), "image_fi": float(s.fi[i]),
            "probabilities": s.probs[i].tolist(),
            "pixels_fi_at_least_0.1": (maps.flatten(1) >= FI_PIXEL).sum(1).tolist(),
            "picture": ctx.picture("fig2_target_maps.png", png)}


def fig4_settings() -> list[dict[str, Any]]:
    """Perturbations 1-9 of Fig. 4."""
    rows = [{"name": f"m={m}", "pixels": m} for m in (1, 3, 7)]
    rows += [{"name": f"P_err={p}", "p_err": p, "fi_pixel": FI_PIXEL} for p in (0.5, 0.75, 0.99)]
    rows += [{"name": f"target={t}", "target": t, "fi_pixel": FI_PIXEL} for t in TARGETS]
    return rows


def fig4_images(ctx: Context, setting: dict[str, Any], n: int, *,
                vulnerable: bool = False) -> torch.Tensor:
    """The first ``n`` correctly classified test images (or the ``n`` of largest image FI),
    the target's own images skipped."""
    s = ctx.survey("test")
    order = s.most_vulnerable(len(s.y)) if vulnerable else s.correct.nonzero().flatten()
    if "target" in setting:
        order = order[s.y[order] != setting["target"]]
    return order[:n]


def attack_setting(ctx: Context, setting: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
                   generator: torch.Generator, batch: int = 16) -> dict[str, Any]:
    """One Fig. 4 setting on (x, y), ``batch`` images per search; requirements per image."""
    args = ctx.args
    target = None
    if "target" in setting:
        target = torch.full_like(y, setting["target"])
    outs, mets, seconds, no_pixels, sizes = [], [], 0.0, 0, []
    for s in range(0, len(y), batch):
        xb, yb = x[s:s + batch], y[s:s + batch]
        tb = None if target is None else target[s:s + batch]
        kw: dict[str, Any] = {"particles": args.particles, "iters": args.iters,
                              "stop_when_met": args.stop_when_met}
        start = time.perf_counter()
        if "pixels" in setting:
            kw["pixels"] = setting["pixels"]
        else:
            objective = tb if tb is not None else _runner_up(ctx.model, xb, yb)
            fi = influence(ctx.model, xb, yb, target=objective).pixel.flatten(1)
            rows = [tuple(r.nonzero().flatten().tolist()) for r in fi >= setting["fi_pixel"]]
            # an image without a pixel above the threshold keeps its single most influential
            no_pixels += sum(1 for r in rows if not r)
            rows = [r or (int(f.argmax()),) for r, f in zip(rows, fi, strict=True)]
            sizes += [len(r) for r in rows]
            kw["indices"] = tuple(rows)
        attack = FiPSO(p_err=setting.get("p_err"), scale=args.scale, **kw)
        x_adv = attack(ctx.model, xb, yb, target=tb, generator=generator)
        seconds += time.perf_counter() - start
        req = attack.requirements(ctx.model, xb, x_adv, yb, target=tb)
        outs.append(x_adv)
        mets.append(req)
    x_adv = torch.cat(outs)
    met = torch.cat([r.met for r in mets])
    delta = (x_adv - x).flatten(1)
    l0 = (delta.abs() > 1e-6).sum(1).double()
    summary = {
        "n": int(len(y)), "met": float(met.double().mean()),
        "misclassified": float(torch.cat([r.misclassified for r in mets]).double().mean()),
        "mean_l0": float(l0.mean()), "mean_l2": float(delta.norm(dim=1).mean()),
        "seconds_per_image": round(seconds / max(len(y), 1), 3),
        "probability_mean": float(torch.cat([r.probability for r in mets]).mean()),
    }
    if sizes:
        summary.update({"no_pixels_above": no_pixels,
                        "median_pixels": sorted(sizes)[len(sizes) // 2]})
    return {"summary": summary, "x_adv": x_adv, "met": met}


def _runner_up(model, x, y) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    return logits.scatter(1, y[:, None], float("-inf")).argmax(1)


def part_fig4(ctx: Context) -> dict[str, Any]:
    """The nine settings (or ``--settings``' subset) on the first ``--n`` correctly classified
    test images, and the picture of each on Fig. 4's image. The swarms of a setting's images
    and of its picture are seeded from ``--seed`` and the setting's place in Fig. 4 alone, so
    a setting gives the same row and panel whether it runs with the others or by itself. A
    subset run replaces those settings' rows in the kept part (same swarm, scale and image;
    rows of another ``--n`` are dropped) and keeps the others, so the part can be measured a
    few settings at a time; the picture is redrawn with every kept setting's panel."""
    x_all, y_all = ctx.split("test")
    shown = ctx.showcase()
    run = {"particles": ctx.args.particles, "iters": ctx.args.iters, "scale": ctx.args.scale,
           "stop_when_met": ctx.args.stop_when_met, "shown_index": shown,
           "seeding": "per setting"}
    kept = ctx.kept
    kept_rows = {} if kept is None or any(kept.get(k) != v for k, v in run.items()) else {
        r["setting"]["name"]: r for r in kept["rows"] if r["n"] == ctx.args.n}
    wanted = ctx.args.settings.split(",") if ctx.args.settings else None
    rows, pictured = [], []
    for number, setting in enumerate(fig4_settings()):
        name = setting["name"]
        measure = wanted is None or name in wanted
        if not measure and name not in kept_rows:
            continue
        seed = 1000 * ctx.args.seed + 2 * number
        if measure:
            idx = fig4_images(ctx, setting, ctx.args.n)
            result = attack_setting(ctx, setting, x_all[idx], y_all[idx],
                                    torch.Generator().manual_seed(seed))
            print(f"  {name}: met {100 * result['summary']['met']:.1f}% of "
                  f"{result['summary']['n']}", flush=True)
        one = attack_setting(ctx, setting, x_all[shown:shown + 1], y_all[shown:shown + 1],
                             torch.Generator().manual_seed(seed + 1))
        with torch.no_grad():
            probs = ctx.model(one["x_adv"]).softmax(1)[0]
        met = bool(one["met"][0])
        pictured.append((f"{name}\n{'met' if met else 'not met'}, pred {int(probs.argmax())} "
                         f"({float(probs.max()):.2f})", one["x_adv"][0], probs))
        rows.append({"setting": dict(setting), **result["summary"], "shown_image_met": met}
                    if measure else kept_rows[name])
    name = "fig4_settings.png" if ctx.args.scale == "log" else f"fig4_settings_{ctx.args.scale}.png"
    picture = ctx.picture(name, settings_png(x_all[shown], pictured))
    return {**run, "shown_label": int(y_all[shown]), "rows": rows, "picture": picture}


def part_fig4_vulnerable(ctx: Context) -> dict[str, Any]:
    """The settings named by ``--vulnerable-settings`` on the ``--n`` correctly classified
    test images of largest image-level FI: what FI's ranking of images buys an attacker."""
    x_all, y_all = ctx.split("test")
    generator = torch.Generator().manual_seed(ctx.args.seed)
    wanted = ctx.args.vulnerable_settings.split(",")
    rows = []
    for setting in (s for s in fig4_settings() if s["name"] in wanted):
        idx = fig4_images(ctx, setting, ctx.args.n, vulnerable=True)
        result = attack_setting(ctx, setting, x_all[idx], y_all[idx], generator)
        rows.append({"setting": dict(setting), **result["summary"],
                     "image_fi_min": float(ctx.survey("test").fi[idx].min())})
        print(f"  {setting['name']} (most vulnerable): met "
              f"{100 * result['summary']['met']:.1f}% of {result['summary']['n']}", flush=True)
    return {"particles": ctx.args.particles, "iters": ctx.args.iters, "scale": ctx.args.scale,
            "stop_when_met": ctx.args.stop_when_met, "rows": rows}


def part_pso_speed(ctx: Context) -> dict[str, Any]:
    x, y = ctx.split("test")
    idx = ctx.survey("test").correct.nonzero().flatten()[:16]
    x, y = x[idx], y[idx]
    particles, iters = (int(v) for v in ctx.args.speed_swarm.split(","))
    rows = []
    runner_up = _runner_up(ctx.model, x, y)
    for name, kw, target in (
            ("untargeted, convergence test", {}, None),
            ("untargeted, all T iterations", {"patience": 10 ** 6}, None),
            ("target = runner-up, convergence test", {}, runner_up),
            ("P_err 0.75, convergence test", {"p_err": 0.75}, None),
            ("untargeted, stop_when_met", {"stop_when_met": True}, None),
            ("untargeted, bfloat16 scoring", {"precision": "bfloat16"}, None),
            ("target = runner-up, bfloat16 scoring", {"precision": "bfloat16"}, runner_up),
            ("P_err 0.75, bfloat16 scoring", {"p_err": 0.75, "precision": "bfloat16"}, None)):
        attack = FiPSO(particles=particles, iters=iters, **kw)
        generator = torch.Generator().manual_seed(ctx.args.seed)
        start = time.perf_counter()
        result = attack.run(ctx.model, x, y, target=target, generator=generator)
        seconds = (time.perf_counter() - start) / len(y)
        req = attack.requirements(ctx.model, x, result.x_adv, y, target=target)
        rows.append({"setting": name, "seconds_per_image": round(seconds, 3),
                     "mean_iterations": float(result.iterations.double().mean()),
                     "met": float(req.met.double().mean()),
                     "mean_l2": float((result.x_adv - x).flatten(1).norm(dim=1).mean()),
                     "passes": seconds <= 2.0 if (particles, iters) == (200, 100) else None})
        print(f"  {name}: {seconds:.2f} s/image", flush=True)
    return {"images": int(len(y)), "particles": particles, "iters": iters, "bar_seconds": 2.0,
            "threads": torch.get_num_threads(), "rows": rows}


UNIVERSALITY_VARIANTS = (("b = 1e-3 (default)", {}), ("b = 0", {"b": 0.0}))


def part_universality(ctx: Context) -> dict[str, Any]:
    """Table 2 for the Fig. 4 image's P_err = 0.99 perturbation, made with fi_pso's default
    norm weight b and with b = 0 (the paper only asks a >> b; the norm term shrinks the
    perturbation, and universality grows with its size)."""
    from advforge.influence import universal_perturbation

    x_test, y_test = ctx.split("test")
    i = ctx.showcase()
    variants = []
    for name, kw in UNIVERSALITY_VARIANTS:
        generator = torch.Generator().manual_seed(ctx.args.seed)
        pert = universal_perturbation(ctx.model, x_test[i], int(y_test[i]), p_err=0.99,
                                      generator=generator, **kw)
        row = {"name": name, "pso": kw, "target": pert.target, "probability": pert.probability,
               "met": pert.met, "l2": float(pert.delta.norm()),
               "l0": int((pert.delta.abs() > 1e-6).sum())}
        for split in ("train", "test"):
            table = universality(ctx.model, pert.delta, *ctx.split(split), target=pert.target,
                                 source_class=int(y_test[i]))
            row[split] = table.to_dict()
        variants.append(row)
        print(f"  {name}: L2 {row['l2']:.2f}, test misclassified "
              f"{100 * row['test']['total']['misclassified']:.1f}%", flush=True)
    return {"source_index": i, "source_class": int(y_test[i]), "variants": variants,
            "paper": {**PAPER["table2"], "note": "MNIST, ResNet32, target 4"}}


def part_table3(ctx: Context) -> dict[str, Any]:
    from advforge.cli import main as advforge_main

    base = Path(ctx.args.work) / f"fi-at_{ctx.args.dataset}_{ctx.args.arch}"
    run = base
    if ctx.args.variant:  # a fine-tuning variant: the default run's sets spare the search
        run = base.with_name(f"{base.name}@{ctx.args.variant}")
        if not run.exists() and (base / SETS_FILE).is_file():
            run.mkdir(parents=True)
            for name in (SETS_FILE, SETS_META):
                shutil.copyfile(base / name, run / name)
    argv = ["defend", "fi-at", "--model", str(ctx.model_dir), "--dataset", ctx.args.dataset,
            "--out", str(run), "--quiet"]
    for flag, limit in (("--limit-train", ctx.args.limit_train),
                        ("--limit-test", ctx.args.limit_test)):
        if limit is not None:
            argv += [flag, str(limit)]
    argv += shlex.split(ctx.args.fi_at_flags)
    if (run / "config.json").is_file() and (run / "fi_at.json").is_file():
        check_finished_run(run, argv)  # finished earlier: read it, if these flags made it
    else:
        if (run / "train_state.safetensors").is_file():  # interrupted fine-tuning
            argv.append("--resume")
        code = advforge_main(argv)
        if code:
            raise SystemExit(f"advforge {' '.join(argv)} exited with {code}")
    report = json.loads((run / "fi_at.json").read_text())
    info = report["algorithm2"]
    success = {p: (info[p]["succeeded"] / info[p]["attacked"] if info[p]["attacked"] else None)
               for p in info}
    config = json.loads((run / "config.json").read_text())
    return {"command": "advforge " + " ".join(a for a in argv if a not in ("--quiet",)),
            "algorithm2": info, "targeted_success": success, "table3": report["table3"],
            "paper": {**PAPER["table3"], "note": "MNIST, ResNet32, percent"},
            "fine_tune_seconds": config.get("metrics", {}).get("train_seconds")}


def check_finished_run(run: Path, argv: list[str]) -> None:
    """Refuse a finished fi-at run that ``advforge ARGV`` would not make today (other defaults,
    other flags): its figures would be filed under the wrong command."""
    from advforge.cli import build_parser
    from advforge.cli.defend import defend_configs

    with contextlib.redirect_stdout(io.StringIO()):  # defend_configs prints its recipe line
        train, settings, _ = defend_configs(build_parser().parse_args(argv), dry_run=False)
    report = json.loads((run / "fi_at.json").read_text())["defense"]
    made = json.loads((run / "config.json").read_text())["extra"]["train_config"]
    # The effective rate stands for lr_factor; a run made before adv_augment existed
    # appended plain copies.
    fields = [k for k in settings.FINE_TUNE_ONLY if k != "lr_factor"]
    wanted = {**{k: getattr(settings, k) for k in fields},
              "lr": train.lr * settings.lr_factor, "epochs": train.epochs,
              "augment": train.augment}
    found = {**{k: report.get(k, "none" if k == "adv_augment" else None) for k in fields},
             "lr": made["lr"], "epochs": made["epochs"], "augment": made["augment"]}
    differ = sorted(k for k in wanted if k != "lr" and wanted[k] != found[k])
    if not math.isclose(wanted["lr"], found["lr"], rel_tol=1e-9):
        differ.append("lr")
    if differ:
        raise SystemExit(f"{run} was fine-tuned with other settings than "
                         f"`advforge {' '.join(argv)}` gives ({', '.join(differ)}): move it "
                         "away or pick another --work / --variant")


PART_FUNCTIONS = {"fi_speed": part_fi_speed, "survey": part_survey, "fig2": part_fig2,
                  "fig4": part_fig4, "fig4_vulnerable": part_fig4_vulnerable,
                  "pso_speed": part_pso_speed,
                  "universality": part_universality, "table3": part_table3}


if __name__ == "__main__":
    sys.exit(main())
