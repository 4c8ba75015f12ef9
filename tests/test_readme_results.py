"""README.md's results table: every figure it states equals the value in the JSON file its row
cites under benchmarks/results/, and the paper's figures equal the paper's."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import tables  # noqa: E402 (benchmarks/tables.py, the generator)

README = (ROOT / "README.md").read_text(encoding="utf-8")
FIGURE = re.compile(r"(\d[\d,]*(?:\.\d+)?) ?(%|s\b)")
CITED = re.compile(r"`benchmarks/results/([^`]+\.json)`")


def table_rows() -> list[list[str]]:
    """The cells of the README's results table (header and rule left out)."""
    match = re.search(r"<!-- tables\.py: headline -->\n(.*?)<!-- /tables\.py", README, re.S)
    assert match, "README.md has no results table between tables.py markers"
    lines = match.group(1).strip().splitlines()[2:]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def leaves(obj: Any) -> list[float]:
    """Every number in a JSON document."""
    if isinstance(obj, dict):
        return [v for value in obj.values() for v in leaves(value)]
    if isinstance(obj, (list, tuple)):
        return [v for value in obj for v in leaves(value)]
    return [float(obj)] if isinstance(obj, (int, float)) and not isinstance(obj, bool) else []


def stated(figure: str, unit: str, values: list[float]) -> bool:
    """Whether ``figure`` (as printed, with its unit) is one of ``values`` rounded as printed;
    a percentage is a fraction in the JSON."""
    decimals = len(figure.partition(".")[2])
    number = float(figure.replace(",", ""))
    scale = 100 if unit == "%" else 1
    return any(round(scale * v, decimals) == number for v in values)


def test_stated_rejects_a_figure_the_json_does_not_hold() -> None:
    assert stated("98.72", "%", [0.98719])
    assert not stated("98.73", "%", [0.98719])
    assert stated("1,134", "s", [1134.29])
    assert not stated("11.6", "s", [11.48])


ROWS = table_rows()


def test_table_is_short_and_generated() -> None:
    assert 0 < len(ROWS) <= 9
    assert tables.render(README) == README, "run python benchmarks/tables.py --write"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row[0][:50])
def test_row_figures_match_the_cited_json(row: list[str]) -> None:
    what, ours, beside, paper, json_cell = row
    (name,) = CITED.findall(json_cell)
    path = tables.RESULTS / name
    assert path.is_file(), f"the row {what!r} cites {name}, which is not committed"
    values = leaves(json.loads(path.read_text(encoding="utf-8")))
    figures = FIGURE.findall(ours) + FIGURE.findall(beside)
    assert figures, f"the row {what!r} states no figure"
    wrong = [f + u for f, u in figures if not stated(f, u, values)]
    assert not wrong, f"{name} does not hold {wrong} (row {what!r})"
    paper_values = (leaves(tables.PAPER["whitebox"]) + leaves(tables.PAPER["blackbox"])
                    + leaves(tables.PAPER["ae4dnn"]) + leaves(tables.PAPER["fi_at"]))
    for figure in re.findall(r"(\d+\.\d+)%", paper):
        assert stated(figure, "", paper_values), f"{figure}% is not the paper's figure"
    for time in re.findall(r"(?:[<>] )?\d[\d.]* [sh]\b", paper):
        assert time in tables.PAPER["time"].values(), f"{time} is not the paper's figure"
