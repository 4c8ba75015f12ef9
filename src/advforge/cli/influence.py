"""``advforge influence``: which pixels of one image, and how much the whole image, are
vulnerable to a small perturbation (the first-order influence measure, Eq. 1 and 5)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any

import torch

from advforge.cli.configs import _help, check_counts
from advforge.cli.options import add_dataclass_flags, build_config, config_to_yaml
from advforge.errors import InputError

DESCRIPTION = (
    "The first-order influence (FI) of f = -log p(true label), or -log p(target) with "
    "--target: with --index, the image-level FI of one image (how much the whole image can "
    "move the model's loss) and its pixel-level FI (which input components are the most "
    "vulnerable), printed as the top pixels, drawn with --plot and, with --out, also "
    "drawn for every target class. Without --index, a survey of every image of the split (--limit "
    "the first N) that ranks the most vulnerable images and, with --out, writes "
    "survey.json, the Manhattan plot, the confusion heatmap and FI against confidence.")
PLOT = "influence.png"
TARGET_MAPS = "target_maps.png"
SURVEY_PLOTS = {"manhattan": "manhattan.png", "confusion": "confusion.png",
                "confidence": "confidence.png", "target_maps": TARGET_MAPS}


@dataclasses.dataclass(kw_only=True)
class InfluenceConfig:
    """Options of ``advforge influence``."""

    model: str | None = field(default=None, metadata=_help(
        "run directory of a trained classifier (required unless --dry-run)"))
    dataset: str = field(default="mnist5k", metadata=_help(
        "dataset name (advforge datasets shows which are found)"))
    data_dir: str | None = field(default=None, metadata=_help(
        "directory holding the dataset files"))
    split: str = field(default="test", metadata=_help(
        "split the images come from; 'both' (without --index) surveys train and test side "
        "by side", choices=["train", "test", "both"]))
    index: int | None = field(default=None, metadata=_help(
        "index of one image in the split; omit it to survey the whole split"))
    limit: int | None = field(default=None, metadata=_help(
        "without --index: survey only the first N images of each split"))
    fi_img: float = field(default=0.2, metadata=_help(
        "without --index: the FI_img threshold drawn and counted (Algorithm 2's 0.2)"))
    target: int | None = field(default=None, metadata=_help(
        "a class: measure f = -log p(target) instead of -log p(true label) (Eq. 5)"))
    top: int = field(default=10, metadata=_help("how many pixels of largest FI to list"))
    plot: str | None = field(default=None, metadata=_help(
        "write the image beside its pixel-FI map to this new .png file"))
    out: str | None = field(default=None, metadata=_help(
        "write influence.json, influence.png and the resolved config here"))
    seed: int = field(default=0, metadata=_help(
        "seed (the measure is deterministic; --dry-run's model uses it); recorded"))

    def __post_init__(self) -> None:
        check_counts(top=self.top)
        if self.index is not None and self.index < 0:
            raise InputError(f"--index must be >= 0, got {self.index}")
        if self.index is not None and self.split == "both":
            raise InputError("--split both surveys whole splits: drop --index or pick one split")
        if self.index is None and (self.plot is not None or self.target is not None):
            raise InputError("--plot and --target describe one image: give --index too")
        if self.limit is not None:
            check_counts(limit=self.limit)
        if not self.fi_img >= 0 or self.fi_img == float("inf"):
            raise InputError(f"--fi-img must be a finite number >= 0, got {self.fi_img}")
        if self.target is not None and self.target < 0:
            raise InputError(f"--target must be a class index >= 0, got {self.target}")
        if self.plot is not None and not self.plot.endswith(".png"):
            raise InputError(f"--plot must name a .png file, got {self.plot!r}")


def add_parser(sub: Any, add_common: Any) -> None:
    """Register ``influence`` on the top-level subparsers."""
    p = sub.add_parser("influence", help="which pixels and images are vulnerable (FI measure)",
                       description=DESCRIPTION)
    add_dataclass_flags(p, InfluenceConfig)
    add_common(p)


def cmd_influence(args: argparse.Namespace, device: torch.device, *, dry_run: bool,
                  quiet: bool) -> int:
    from advforge.influence import influence
    from advforge.utils.paths import check_output_dir, check_output_file
    from advforge.utils.seed import seed_everything

    cfg = build_config(InfluenceConfig, args)
    if cfg.model is None and not dry_run:
        raise InputError("--model is required (a run directory from `advforge train-classifier`)")
    seed_everything(cfg.seed, deterministic=args.deterministic)
    plot = check_output_file(cfg.plot, ".png", flag="--plot") if cfg.plot else None
    out = check_output_dir(cfg.out) if cfg.out else None
    from advforge.cli.runtime import load_model_and_splits

    splits, model, warnings = load_model_and_splits(cfg, device, dry_run, out)
    if cfg.index is None:
        from advforge.cli.influence_survey import run_survey

        return run_survey(cfg, splits, model, device, warnings, out)
    x, y = _image(cfg, splits, device)
    result = influence(model, x, y, target=cfg.target)
    report = _report(cfg, splits, result, x, y, warnings)
    _print(report, splits.class_names)
    if plot is not None or out is not None:
        _write(cfg, splits, device, report, result, model, x, y, plot, out)
    return 0


def _image(cfg: InfluenceConfig, splits: Any,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    split = getattr(splits, cfg.split)
    if cfg.index >= len(split):
        raise InputError(f"--index {cfg.index} is out of range: the {cfg.split} split of "
                         f"{splits.name} has {len(split)} images")
    if cfg.target is not None and cfg.target >= splits.num_classes:
        raise InputError(f"--target {cfg.target} is out of range for {splits.num_classes} "
                         "classes")
    return (split.x[cfg.index:cfg.index + 1].to(device),
            split.y[cfg.index:cfg.index + 1].to(device))


def _report(cfg: InfluenceConfig, splits: Any, result: Any, x: torch.Tensor, y: torch.Tensor,
            warnings: list[str]) -> dict[str, Any]:
    """Everything printed and written: the image-level FI, the prediction and the top pixels."""
    from advforge.influence import pixels_above, top_pixels

    probs = result.probs[0].double().cpu()
    fi = result.pixel[0].cpu()
    _, height, width = fi.shape
    top = top_pixels(result.pixel, min(cfg.top, fi.numel()))[0].cpu()
    rows = []
    for rank, index in enumerate(top.tolist(), 1):
        c, rest = divmod(index, height * width)
        rows.append({"rank": rank, "index": index, "channel": c, "row": rest // width,
                     "col": rest % width, "fi": float(fi.flatten()[index]),
                     "value": float(x[0].flatten()[index])})
    objective = int(result.objective[0])
    return {
        "dataset": splits.name, "split": cfg.split, "index": cfg.index,
        "true_label": int(y[0]), "prediction": int(probs.argmax()),
        "probabilities": probs.tolist(), "target": cfg.target,
        "objective": f"-log p({objective})", "objective_class": objective,
        "image_fi": float(result.image[0]), "rank_drop": int(result.rank_drop[0]),
        "pixel_fi_max": float(fi.max()),
        "pixels_fi_at_least_0.1": int(pixels_above(result.pixel, 0.1).sum()),
        "top_pixels": rows, "warnings": warnings,
    }


def _print(report: dict[str, Any], names: list[str]) -> None:
    probs, y, pred = report["probabilities"], report["true_label"], report["prediction"]
    c = report["objective_class"]
    print(f"{report['dataset']} {report['split']} image {report['index']}: true label {y} "
          f"({names[y]}), predicted {pred} ({names[pred]}) with probability {probs[pred]:.4f}")
    print(f"image-level FI of {report['objective']} (p = {probs[c]:.4g}): "
          f"{report['image_fi']:.6g}" + (f"; the metric loses {report['rank_drop']} more "
                                         "rank than K - 1" if report["rank_drop"] else ""))
    print(f"top {len(report['top_pixels'])} pixels by pixel-level FI "
          f"({report['pixels_fi_at_least_0.1']} have FI >= 0.1):")
    print("  rank  index  channel  row  col  pixel FI      value")
    for r in report["top_pixels"]:
        print(f"  {r['rank']:>4}  {r['index']:>5}  {r['channel']:>7}  {r['row']:>3}  "
              f"{r['col']:>3}  {r['fi']:<12.6g}  {r['value']:.3f}")


def _write(cfg: InfluenceConfig, splits: Any, device: torch.device, report: dict[str, Any],
           result: Any, model: Any, x: torch.Tensor, y: torch.Tensor, plot: Path | None,
           out: Path | None) -> None:
    """The PNG (to --plot and/or --out) and, with --out, the maps of every target class,
    influence.json and the config."""
    from advforge.cli.commands import _meta
    from advforge.cli.runtime import save_resolved_config
    from advforge.influence import target_maps, top_pixels
    from advforge.influence.plot import fi_map_png, target_maps_png
    from advforge.utils.checkpoint import atomic_write_bytes, atomic_write_json

    title = (f"label {report['true_label']}, predicted {report['prediction']}; "
             f"image FI of {report['objective']} = {report['image_fi']:.4g}")
    top = top_pixels(result.pixel, len(report["top_pixels"]))[0]
    png = fi_map_png(x[0], result.pixel[0], title=title, marked=top)
    if plot is not None:
        atomic_write_bytes(plot, png)
        print(f"plot written to {plot}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / PLOT, png)
        atomic_write_bytes(out / TARGET_MAPS, target_maps_png(
            x[0], result.probs[0], target_maps(model, x[0], y[0]),
            title=f"{splits.name} {cfg.split} image {cfg.index}: pixel FI of -log p(t)"))
        atomic_write_json(out / "influence.json", {**report, "plot": PLOT,
                                                   "target_maps": TARGET_MAPS,
                                                   "settings": dataclasses.asdict(cfg),
                                                   "meta": _meta(cfg, splits, device)})
        save_resolved_config(out, config_to_yaml(cfg))
        print(f"written to {out / 'influence.json'} and {out / PLOT}")
