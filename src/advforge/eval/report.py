"""The report writer: ``report.json`` (every number), ``report.md`` and one self-contained
``report.html`` (tables of AI-GAN Tables II and VI, Fig. 3 sample grids, Fig. 4 heatmaps).

All three documents are rendered in memory first and only then written, each atomically, so a
failure never leaves a half-written report behind.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from advforge.errors import InputError
from advforge.eval import tables
from advforge.eval.metrics import SMALL_N
from advforge.eval.requirements import (
    REQUIREMENTS_NOTE,
    REQUIREMENTS_TITLE,
    requirement_lines,
)
from advforge.eval.result import AttackResult
from advforge.utils.checkpoint import atomic_write_json, atomic_write_text

REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}
NOT_RECORDED = "not recorded"


def markdown_table(results: Sequence[AttackResult]) -> str:
    """The summary table the CLI prints: attack | targeted | norm | eps | clean acc |
    success [95% CI] n | mean L2 | mean Linf | s/1000."""
    return tables.markdown(tables.summary_table(results))


def build_meta(
    meta: dict[str, Any] | None = None,
    results: Sequence[AttackResult] = (),
    model: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Caller's meta (seed, dataset, model, device, ...) completed with what is known.

    ``seed``, ``dataset``, ``model`` and ``device`` are always present: a missing device
    comes from the model's parameters or the devices the results ran on; anything still
    unknown reads ``"not recorded"``. Versions (``advforge_version``, ``torch_version``,
    ``python``), the platform and a UTC timestamp are added once. ``warnings`` is always a
    list (shown at the top of the report).
    """
    import advforge  # lazily: the package root imports this subpackage

    out: dict[str, Any] = {k: v for k, v in (meta or {}).items() if v is not None}
    if "device" not in out:
        out["device"] = _device_of(results, model)
    for key in ("seed", "dataset", "model", "device"):
        out.setdefault(key, NOT_RECORDED)
    out.setdefault("advforge_version", advforge.__version__)
    out.setdefault("torch_version", torch.__version__)
    out.setdefault("python", platform.python_version())
    out.setdefault("platform", platform.platform(terse=True))
    out.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    warnings = out.get("warnings") or []
    out["warnings"] = [warnings] if isinstance(warnings, str) else [str(w) for w in warnings]
    return out


def _device_of(results: Sequence[AttackResult], model: torch.nn.Module | None) -> str:
    if model is not None:
        param = next(iter(model.parameters()), None)
        if param is not None:
            return str(param.device)
    devices = sorted({r.device for r in results if r.device})
    return ", ".join(devices) if devices else NOT_RECORDED


def render_markdown(
    results: Sequence[AttackResult],
    meta: dict[str, Any],
    *,
    class_names: Sequence[str] | None = None,
) -> str:
    """The whole ``report.md`` as a string."""
    parts = [f"# Attack report: {meta.get('model')} on {meta.get('dataset')}", ""]
    parts += [f"> **WARNING: {w}**" for w in meta.get("warnings", [])]
    parts += ["", "## Summary", "", markdown_table(results), "", *_rate_legend(results)]
    parts += _notes(results)
    parts += _requirements(results)
    for targeted, title in (
        (True, "Per-target success (AI-GAN Table II layout)"),
        (False, "Per-true-class success (untargeted attacks)"),
    ):
        table = tables.per_class_table(results, class_names, targeted=targeted)
        if table is not None:
            parts += ["", f"## {title}", "", tables.markdown(table)]
    parts += ["", "## Counts", "", tables.markdown(tables.counts_table(results))]
    parts += ["", "## Distances ([0, 1] scale, over C*H*W values)", ""]
    parts += [tables.markdown(tables.distance_table(results))]
    parts += ["", "## Time for 1,000 attacks (AI-GAN Table VI)", ""]
    parts += [tables.markdown(tables.timing_table(results)), ""]
    parts += ["Wall time of the attack calls only (clean predictions and scoring excluded)."]
    parts += [
        "",
        "## Hyperparameters",
        "",
        tables.markdown(tables.hyper_table(results)),
    ]
    listed = [f"- {k}: {v}" for k, v in meta.items() if k not in tables.UNLISTED_META]
    parts += ["", "## Run", "", *listed, ""]
    return "\n".join(parts)


def _rate_legend(results: Sequence[AttackResult]) -> list[str]:
    legend = [tables.RATE_LEGEND]
    if tables.has_small_n(results):
        legend.append(f"**{tables.SMALL_MARK} Some rates here rest on fewer than "
                      f"{SMALL_N} inputs: treat them as rough.**")
    return [" ".join(legend), ""]


def _notes(results: Sequence[AttackResult]) -> list[str]:
    return [f"- {', '.join(names)}: {note}" for names, note in tables.grouped_notes(results)]


def _requirements(results: Sequence[AttackResult]) -> list[str]:
    names = tables.unique_names(results)
    lines = requirement_lines(names, [r.requirements for r in results])
    if not lines:
        return []
    return ["", f"## {REQUIREMENTS_TITLE}", "", REQUIREMENTS_NOTE, "",
            *[f"- {line}" for line in lines]]


def write_report(
    out_dir: str | os.PathLike,
    results: Sequence[AttackResult],
    meta: dict[str, Any] | None = None,
    *,
    samples: dict[str, dict[str, Any]] | None = None,
    class_names: Sequence[str] | None = None,
    model: torch.nn.Module | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``.

    Args:
        out_dir: created if missing.
        results: one :class:`AttackResult` per attack, in table order.
        meta: optional run facts (``seed``, ``dataset``, ``model``, ``device``,
            ``warnings``, ...); what is missing is filled in (see :func:`build_meta`).
        samples: attack name -> :func:`~advforge.eval.evaluate.sample_grid` output, drawn as
            Fig. 3 grids in the HTML.
        class_names: names for class indices (else the indices are shown).
        model: the attacked model, if at hand: the report's device comes from it.

    Returns:
        ``{"json": path, "md": path, "html": path}``.
    """
    from advforge.eval.html import render_html  # matplotlib is only needed here

    results = list(results)
    if not results or not all(isinstance(r, AttackResult) for r in results):
        raise InputError("write_report needs a non-empty list of AttackResult")
    num_classes = max(r.num_classes for r in results)
    if class_names is not None and len(class_names) < num_classes:
        raise InputError(f"class_names has {len(class_names)} names for {num_classes} classes")
    full_meta = build_meta(meta, results, model)
    if class_names is not None:
        full_meta.setdefault("class_names", [str(c) for c in class_names])
    payload = {"meta": full_meta, "attacks": [r.to_dict() for r in results]}
    md = render_markdown(results, full_meta, class_names=class_names)
    html = render_html(results, full_meta, samples=samples or {}, class_names=class_names)
    out = Path(out_dir)
    paths = {key: out / name for key, name in REPORT_FILES.items()}
    atomic_write_json(paths["json"], payload)
    atomic_write_text(paths["md"], md)
    atomic_write_text(paths["html"], html)
    return paths
