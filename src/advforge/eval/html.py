"""``report.html``: one self-contained page (inline CSS, images as base64 PNG, no external
resources), so it can be mailed or archived as a single file."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from advforge.eval import plots, tables
from advforge.eval.metrics import SMALL_N
from advforge.eval.requirements import (
    REQUIREMENTS_NOTE,
    REQUIREMENTS_TITLE,
    requirement_lines,
)
from advforge.eval.result import AttackResult

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em;
  border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d0d0; padding: .25em .6em; }
th { background: #f2f2f2; } td { text-align: right; } td:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
tr.total td { font-weight: 600; background: #eef4ff; }
td.l { text-align: left; }
td.mono { text-align: left; font-family: ui-monospace, monospace; font-size: 12px; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 13px; max-width: 900px; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em .8em; }
.meta td { text-align: left; }
.warning { background: #fdecea; border-left: 6px solid #c62828; padding: .6em .9em;
           font-weight: 600; margin: .6em 0; }
td.small-n { background: #fdecea !important; }
.legend { color: #444; font-size: 13px; max-width: 900px; }
"""


def render_html(
    results: Sequence[AttackResult],
    meta: dict[str, Any],
    *,
    samples: dict[str, dict[str, Any]],
    class_names: Sequence[str] | None = None,
) -> str:
    """The whole report page as a string (see :func:`advforge.eval.report.write_report`)."""
    title = f"Attack report: {meta.get('model')} on {meta.get('dataset')}"
    body = [f"<h1>{_e(title)}</h1>", *_warnings(meta), _run_line(meta)]
    body += ["<h2>Summary</h2>", _table(tables.summary_table(results)), _legend(results),
             _notes(results)]
    body += _requirements(results)
    body += _per_class_sections(results, class_names)
    body += _confusion_section(results, class_names)
    body += _samples_section(samples, class_names)
    body += [
        "<h2>Time for 1,000 attacks (AI-GAN Table VI)</h2>",
        _table(tables.timing_table(results)),
        "<p>Wall time of the attack calls only; clean predictions and scoring are not timed.</p>",
    ]
    body += [
        "<h2>Distances</h2>",
        "<p>Perturbation sizes on the [0, 1] scale over the C&times;H&times;W values of "
        "each example; L0 counts values that changed by more than 1e-6.</p>",
        _table(tables.distance_table(results)),
    ]
    body += ["<h2>Counts</h2>", _table(tables.counts_table(results))]
    body += ["<h2>Hyperparameters</h2>", _table(tables.hyper_table(results), text_cols={1})]
    body += ["<h2>Run and versions</h2>", _meta_table(meta)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _e(text: Any) -> str:
    return html.escape(str(text))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(table: tables.Table, *, total_rows: int = 0, text_cols: set[int] | None = None) -> str:
    headers, rows = table
    text_cols = text_cols or set()
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        cls = ' class="total"' if i >= len(rows) - total_rows else ""
        cells = "".join(
            f"<td{_cell_class(j, c, text_cols)}>{_e(c)}</td>" for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _cell_class(j: int, cell: str, text_cols: set[int]) -> str:
    if cell.endswith(tables.SMALL_MARK):
        return ' class="small-n"'
    if j in text_cols:
        return ' class="mono"'
    return "" if j == 0 or tables.is_numeric(cell) else ' class="l"'


def _run_line(meta: dict[str, Any]) -> str:
    keys = ("dataset", "model", "seed", "device", "created")
    return "<p>" + " &middot; ".join(f"{k}: <b>{_e(meta.get(k))}</b>" for k in keys) + "</p>"


def _warnings(meta: dict[str, Any]) -> list[str]:
    return [f'<div class="warning">WARNING: {_e(w)}</div>' for w in meta.get("warnings", [])]


def _legend(results: Sequence[AttackResult]) -> str:
    text = _e(tables.RATE_LEGEND)
    if tables.has_small_n(results):
        text += (f" <b>{tables.SMALL_MARK} Some rates here rest on fewer than "
                 f"{SMALL_N} inputs (highlighted): treat them as rough.</b>")
    return f'<p class="legend">{text}</p>'


def _notes(results: Sequence[AttackResult]) -> str:
    items = "".join(
        f"<li><b>{_e(', '.join(names))}</b>: {_e(note)}</li>"
        for names, note in tables.grouped_notes(results)
    )
    return f'<div class="note"><ul>{items}</ul></div>' if items else ""


def _requirements(results: Sequence[AttackResult]) -> list[str]:
    lines = requirement_lines(tables.unique_names(results), [r.requirements for r in results])
    if not lines:
        return []
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return [f"<h2>{_e(REQUIREMENTS_TITLE)}</h2>", f"<p>{_e(REQUIREMENTS_NOTE)}</p>",
            f"<ul>{items}</ul>"]


def _per_class_sections(
    results: Sequence[AttackResult], class_names: Sequence[str] | None
) -> list[str]:
    out = []
    table = tables.per_class_table(results, class_names, targeted=True)
    if table is not None:
        out += [
            "<h2>Per-target success (AI-GAN Table II layout)</h2>",
            "<p>Rows: target class; columns: attacks. <i>Average</i> is the unweighted mean "
            "over target classes (as in the paper); <i>All pairs</i> counts every "
            "(input, target) pair.</p>",
            _table(table, total_rows=2),
        ]
        names = tables.unique_names(results)
        series = {n: r.per_target for n, r in zip(names, results, strict=True) if r.targeted}
        num_classes = max(r.num_classes for r in results)
        png = plots.per_target_png(series, num_classes, class_names)
        out.append(f"<figure>{_img(png, 'per-target success rates')}</figure>")
    table = tables.per_class_table(results, class_names, targeted=False)
    if table is not None:
        out += ["<h2>Per-true-class success (untargeted attacks)</h2>", _table(table, total_rows=2)]
    return out


def _confusion_section(
    results: Sequence[AttackResult], class_names: Sequence[str] | None
) -> list[str]:
    figures = []
    for name, r in zip(tables.unique_names(results), results, strict=True):
        if r.n_evaluated == 0:
            continue
        row_label = "target class" if r.targeted else "true class"
        png = plots.confusion_png(
            r.confusion,
            title=f"{name}: {row_label} x prediction",
            row_label=row_label,
            class_names=class_names,
        )
        caption = (
            f"{name}: the diagonal is the per-target success rate."
            if r.targeted
            else f"{name} (untargeted): off-diagonal mass shows where inputs were pushed."
        )
        figures.append(
            f"<figure>{_img(png, f'confusion {name}')}<figcaption>{_e(caption)}"
            "</figcaption></figure>"
        )
    if not figures:
        return []
    intro = (
        "<p>Rows: target class (true class for untargeted attacks); columns: prediction "
        "after the attack; each row normalised to 1 (AI-GAN Fig. 4: lighter = higher).</p>"
    )
    return [
        "<h2>Confusion matrices (AI-GAN Fig. 4)</h2>",
        intro,
        '<div class="gallery">',
        *figures,
        "</div>",
    ]


def _samples_section(
    samples: dict[str, dict[str, Any]], class_names: Sequence[str] | None
) -> list[str]:
    if not samples:
        return []
    out = ["<h2>Sample grids (AI-GAN Fig. 3)</h2>"]
    for name, sample in samples.items():
        png, caption = plots.sample_grid_png(sample, title=name, class_names=class_names)
        out.append(
            f"<figure>{_img(png, f'samples {name}')}<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return out


def _meta_table(meta: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta.items()
                   if k not in tables.UNLISTED_META)
    return f'<table class="meta">{rows}</table>'
