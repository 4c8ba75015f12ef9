"""Markdown tables of a ``generator_tables`` JSON: our accuracy in percent, the paper's
CIFAR-10 figure beside it in parentheses."""

from __future__ import annotations

from typing import Any


def _cell(ours: float | None, paper: float | None) -> str:
    text = "-" if ours is None else f"{100 * ours:.2f}"
    return text if paper is None else f"{text} ({paper:.2f})"


def table_lines(table: dict[str, Any], paper: dict[str, Any], labels: dict[str, str]
                ) -> list[str]:
    """One table as markdown lines: a row per generator variant, a column per model/attack."""
    columns = table["columns"]
    lines = ["| generator | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, row in table["rows"].items():
        theirs = paper.get("rows", {}).get(name, {})
        cells = [_cell(row.get(c), theirs.get(c)) for c in columns]
        lines.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")
    return lines


def print_tables(record: dict[str, Any]) -> None:
    """Print every table of ``record`` (benchmark code: printing is its job)."""
    labels = {v: meta["label"] for v, meta in record.get("variants", {}).items()}
    labels["original"] = "original accuracy"
    for key in ("table5", "table10", "table11", "table6"):
        if key in record:
            print(f"\n{key} ({record['dataset']}, {record['arch']}, eps {record['eps']:g}; "
                  "paper's CIFAR-10 in parentheses)")
            print("\n".join(table_lines(record[key], record["paper"].get(key, {}), labels)))
