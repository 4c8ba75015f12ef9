"""``advforge influence`` without ``--index``: the image-level FI of every image of a split
(or of train and test side by side), the most vulnerable images, and the pictures of the
paper's Fig. 2, 7 and 8 with image FI against confidence."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

REPORT = "survey.json"


def run_survey(cfg: Any, splits: Any, model: Any, device: torch.device, warnings: list[str],
               out: Path | None) -> int:
    from advforge.cli.runtime import take
    from advforge.influence import confidence_relation, survey

    parts = ["train", "test"] if cfg.split == "both" else [cfg.split]
    surveys, data = {}, {}
    for part in parts:
        x, y = take(getattr(splits, part), cfg.limit, device)
        data[part] = (x, y)
        surveys[part] = survey(model, x, y)
    report = {"dataset": splits.name, "splits": parts, "limit": cfg.limit, "top": cfg.top,
              "parts": {part: _part_report(s, confidence_relation(s, cfg.fi_img), cfg.top)
                        for part, s in surveys.items()},
              "warnings": warnings}
    _print(report)
    if out is not None:
        _write(cfg, splits, device, model, report, surveys, data, out)
    return 0


def _part_report(s: Any, relation: dict[str, Any], top: int) -> dict[str, Any]:
    """One split's figures: the relation to confidence, the most vulnerable images, the
    confusion matrix and Algorithm 2's default target per class."""
    from advforge.defenses.influence.dataset import confusion_targets

    vulnerable = [{"index": int(i), "label": int(s.y[i]), "image_fi": float(s.fi[i]),
                   "p_true": float(s.p_true[i]),
                   "runner_up": int(s.probs[i].scatter(0, s.y[i:i + 1], -1.0).argmax())}
                  for i in s.most_vulnerable(top)]
    return {"n": int(s.y.numel()), "accuracy": float(s.correct.double().mean()),
            "confidence_relation": relation, "most_vulnerable": vulnerable,
            "confusion": s.confusion().tolist(),
            "most_confused_with": confusion_targets(s.pred, s.y, s.probs.shape[1]).tolist()}


def _print(report: dict[str, Any]) -> None:
    for part, r in report["parts"].items():
        rel = r["confidence_relation"]
        print(f"{report['dataset']} {part}: {r['n']} images, accuracy {100 * r['accuracy']:.2f}%;"
              f" {rel['kept_by_fi']} correctly classified images have image FI >= "
              f"{rel['fi_img']:g} ({rel['kept_by_confidence']} have p(true) <= "
              f"{rel['p_threshold']:.4f}); Spearman(FI, p(true)) = "
              + (f"{rel['spearman']:.3f}" if rel["spearman"] is not None else "n/a"))
        print(f"  most vulnerable correctly classified images of {part}:")
        print("  index  label  image FI      p(true)  runner-up")
        for v in r["most_vulnerable"]:
            print(f"  {v['index']:>5}  {v['label']:>5}  {v['image_fi']:<12.6g}  "
                  f"{v['p_true']:.4f}   {v['runner_up']}")


def _write(cfg: Any, splits: Any, device: torch.device, model: Any, report: dict[str, Any],
           surveys: dict[str, Any], data: dict[str, tuple], out: Path) -> None:
    """survey.json, the four pictures and the resolved config, each written atomically."""
    from advforge.cli.commands import _meta
    from advforge.cli.influence import SURVEY_PLOTS
    from advforge.cli.options import config_to_yaml
    from advforge.cli.runtime import save_resolved_config
    from advforge.influence import target_maps
    from advforge.influence.plot import (
        confidence_png,
        confusion_png,
        manhattan_png,
        target_maps_png,
    )
    from advforge.utils.checkpoint import atomic_write_bytes, atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    correct = {p: (s.fi[s.correct], s.y[s.correct]) for p, s in surveys.items()}
    last = list(surveys)[-1]
    s = surveys[last]
    pictures = {
        "manhattan": manhattan_png(correct, threshold=cfg.fi_img),
        "confusion": confusion_png({p: s.confusion() for p, s in surveys.items()}),
        "confidence": confidence_png(s.p_true[s.correct], s.fi[s.correct], fi_img=cfg.fi_img),
    }
    vulnerable = s.most_vulnerable(1)
    if vulnerable.numel():
        i = int(vulnerable[0])
        x, y = data[last]
        pictures["target_maps"] = target_maps_png(
            x[i], s.probs[i], target_maps(model, x[i], y[i]),
            title=f"{splits.name} {last} image {i} (label {int(y[i])}, the most vulnerable): "
                  "pixel FI of -log p(t)")
    for key, png in pictures.items():
        atomic_write_bytes(out / SURVEY_PLOTS[key], png)
    atomic_write_json(out / REPORT, {**report, "plots": {k: SURVEY_PLOTS[k] for k in pictures},
                                     "settings": dataclasses.asdict(cfg),
                                     "meta": _meta(cfg, splits, device)})
    save_resolved_config(out, config_to_yaml(cfg))
    print(f"written to {out / REPORT} and {', '.join(SURVEY_PLOTS[k] for k in pictures)}")
