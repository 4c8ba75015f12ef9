"""The report's tables as plain data (headers, rows of strings), rendered to Markdown or HTML.

Building each table once keeps ``report.md`` and ``report.html`` in agreement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from advforge.eval.metrics import SMALL_N, rate_interval
from advforge.eval.result import AttackResult

Table = tuple[list[str], list[list[str]]]
DASH = "–"
SMALL_MARK = "†"
# Meta keys the reports show elsewhere (warnings at the top, class names in the tables), not in
# the run listing.
UNLISTED_META = ("warnings", "class_names")
RATE_LEGEND = (
    f"Success rates read: rate [95% Wilson interval] n = pairs behind the rate; {SMALL_MARK} "
    f"marks a rate resting on fewer than {SMALL_N} inputs, whose interval is too wide to "
    "compare attacks by."
)


def pct(value: float | None) -> str:
    """Rates as percentages with two decimals, the papers' convention."""
    return DASH if value is None else f"{100 * value:.2f}%"


def rate_cell(rate: float | None, n: int | None) -> str:
    """A success rate with its n and 95% Wilson interval, flagged when n < ``SMALL_N``:
    ``97.50% [93.1–99.2] n=40``."""
    if rate is None or not n:
        return DASH
    lo, hi = rate_interval(rate, n)
    flag = f" {SMALL_MARK}" if n < SMALL_N else ""
    return f"{100 * rate:.2f}% [{100 * lo:.1f}–{100 * hi:.1f}] n={n}{flag}"


def has_small_n(results: Sequence[AttackResult]) -> bool:
    """Whether any rate in the report (overall or per class) rests on fewer than SMALL_N."""
    return any(
        (r.n_evaluated and r.small_n) or any(0 < n < SMALL_N for n in r.per_target_n.values())
        for r in results
    )


def grouped_notes(results: Sequence[AttackResult]) -> list[tuple[list[str], str]]:
    """Each distinct note once, with the attacks it applies to, in table order."""
    groups: dict[str, list[str]] = {}
    for name, r in zip(unique_names(results), results, strict=True):
        if r.note:
            groups.setdefault(r.note, []).append(name)
    return [(names, note) for note, names in groups.items()]


def num(value: float | None, digits: int = 4) -> str:
    return DASH if value is None else f"{value:.{digits}g}"


def unique_names(results: Sequence[AttackResult]) -> list[str]:
    """Column names; a repeated attack name gets ``#2``, ``#3`` so columns stay distinct."""
    seen: dict[str, int] = {}
    out = []
    for r in results:
        seen[r.attack] = seen.get(r.attack, 0) + 1
        out.append(r.attack if seen[r.attack] == 1 else f"{r.attack}#{seen[r.attack]}")
    return out


def class_label(k: int, class_names: Sequence[str] | None) -> str:
    if class_names is None or str(class_names[k]) == str(k):
        return str(k)
    return f"{k} ({class_names[k]})"


def _targeting(r: AttackResult) -> str:
    if not r.targeted:
        return "no"
    if r.target_rule == "fixed" and len(r.per_target) == 1:
        return f"yes (fixed {next(iter(r.per_target))})"
    return f"yes ({r.target_rule})"


def summary_table(results: Sequence[AttackResult]) -> Table:
    headers = ["attack", "targeted", "norm", "eps", "clean acc", "success [95% CI] n",
               "mean L2", "mean Linf", "s/1000"]
    rows = [
        [
            name,
            _targeting(r),
            r.norm or DASH,
            num(r.eps),
            pct(r.clean_accuracy),
            rate_cell(r.success_rate, r.n_evaluated),
            num(r.l2["mean"]),
            num(r.linf["mean"]),
            num(r.seconds_per_1000),
        ]
        for name, r in zip(unique_names(results), results, strict=True)
    ]
    return headers, rows


def per_class_table(
    results: Sequence[AttackResult], class_names: Sequence[str] | None, *, targeted: bool = True
) -> Table | None:
    """AI-GAN Table II layout: rows = target classes (true classes if ``targeted`` is False),
    columns = attacks, then "Average" (unweighted mean over the classes, as the paper's) and
    "All pairs" (success over every evaluated pair). ``None`` if no result fits."""
    picked = [
        (n, r)
        for n, r in zip(unique_names(results), results, strict=True)
        if r.targeted == targeted
    ]
    if not picked:
        return None
    classes = sorted({k for _, r in picked for k in r.per_target})
    headers = ["target class" if targeted else "true class"] + [n for n, _ in picked]
    rows = [
        [class_label(k, class_names)]
        + [rate_cell(r.per_target.get(k), r.per_target_n.get(k)) for _, r in picked]
        for k in classes
    ]
    rows.append(["Average"] + [pct(r.mean_per_target) for _, r in picked])
    rows.append(["All pairs"] + [rate_cell(r.success_rate, r.n_evaluated) for _, r in picked])
    return headers, rows


def counts_table(results: Sequence[AttackResult]) -> Table:
    headers = [
        "attack",
        "inputs",
        "clean-correct",
        "pairs attacked",
        "skipped",
        "successes",
        "robust acc",
    ]
    rows = [
        [
            name,
            str(r.n_inputs),
            str(r.n_correct),
            str(r.n_evaluated),
            str(r.n_skipped),
            str(r.n_success),
            pct(r.robust_accuracy),
        ]
        for name, r in zip(unique_names(results), results, strict=True)
    ]
    return headers, rows


def distance_table(results: Sequence[AttackResult]) -> Table:
    """min / mean / max over the evaluated adversarial examples, and the mean over the
    successful ones only (a failed minimum-norm attack often returns a tiny perturbation)."""
    headers = [
        "attack",
        "L0 min / mean / max",
        "L2 min / mean / max",
        "Linf min / mean / max",
        "L2 mean (success)",
        "Linf mean (success)",
    ]
    rows = []
    for name, r in zip(unique_names(results), results, strict=True):
        cells = [
            " / ".join(num(d[s]) for s in ("min", "mean", "max")) for d in (r.l0, r.l2, r.linf)
        ]
        rows.append([name, *cells, num(r.l2["mean_success"]), num(r.linf["mean_success"])])
    return headers, rows


def timing_table(results: Sequence[AttackResult]) -> Table:
    """AI-GAN Table VI: wall time of the attack calls, normalised to 1,000 examples."""
    headers = ["attack", "targeted", "adversarial examples", "seconds", "s per 1,000", "x fastest"]
    rates = [r.seconds_per_1000 for r in results if r.seconds_per_1000]
    fastest = min(rates) if rates else None
    rows = []
    for name, r in zip(unique_names(results), results, strict=True):
        ratio = r.seconds_per_1000 / fastest if fastest and r.seconds_per_1000 else None
        rows.append(
            [
                name,
                _targeting(r),
                str(r.n_evaluated),
                num(r.seconds),
                num(r.seconds_per_1000),
                DASH if ratio is None else f"{ratio:.1f}",
            ]
        )
    return headers, rows


def hyper_table(results: Sequence[AttackResult]) -> Table:
    rows = [
        [name, json.dumps(r.to_dict()["hyper"], sort_keys=True)]
        for name, r in zip(unique_names(results), results, strict=True)
    ]
    return ["attack", "hyperparameters"], rows


def markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped); columns whose cells are all
    numbers (or dashes) are right-aligned."""
    headers, rows = table

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = [
        "---:" if i and rows and all(is_numeric(r[i]) for r in rows) else "---"
        for i in range(len(headers))
    ]
    return "\n".join([line(headers), line(align), *map(line, rows)])


def is_numeric(cell: str) -> bool:
    """Whether a rendered cell holds a number (right-aligned) rather than text."""
    return cell == DASH or bool(re.match(r"^[-+]?\.?\d", cell))
