"""The README's benchmark figures cite their JSON under benchmarks/results/: each must exist.

Session 17's result files were cited but never committed (the directory was git-ignored),
so a reader could not check seven of the figures. A cited file that is gone is marked in the
README with "(JSON lost)" right after the citation, which this test accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# `benchmarks/results/a_{x,y}.json` (brace lists expand) and the short form `..._x.json`
CITED = re.compile(r"`(benchmarks/results/|\.\.\.)([A-Za-z0-9_.{},-]+?\.json)`( \(JSON lost\))?")


def expand(name: str) -> list[str]:
    """Shell-style brace expansion, one level per brace group: a_{x,y}.json -> a_x, a_y."""
    match = re.search(r"\{([^{}]*)\}", name)
    if match is None:
        return [name]
    head, tail = name[: match.start()], name[match.end():]
    return [n for option in match.group(1).split(",") for n in expand(head + option + tail)]


def cited_files(text: str) -> list[tuple[str, str, bool]]:
    """(prefix, file name, marked lost) for every result JSON the text cites."""
    return [(prefix, name, bool(lost)) for prefix, pattern, lost in CITED.findall(text)
            for name in expand(pattern)]


def test_expand_braces() -> None:
    assert expand("a_{x,y}_{1,2}.json") == ["a_x_1.json", "a_x_2.json", "a_y_1.json",
                                            "a_y_2.json"]
    assert expand("plain.json") == ["plain.json"]


def test_cited_files_parses_both_forms() -> None:
    text = ("see `benchmarks/results/t_{a,b}.json` and `..._c.json` and "
            "`benchmarks/results/gone.json` (JSON lost)")
    assert cited_files(text) == [("benchmarks/results/", "t_a.json", False),
                                 ("benchmarks/results/", "t_b.json", False),
                                 ("...", "_c.json", False),
                                 ("benchmarks/results/", "gone.json", True)]


def test_every_cited_result_file_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    present = sorted(p.name for p in RESULTS.glob("*.json"))
    cited = cited_files(text)
    assert len(cited) > 20  # the parser still finds the citations
    missing = []
    for prefix, name, lost in cited:
        if lost:
            continue
        found = (name in present if prefix.startswith("benchmarks")
                 else any(p.endswith(name) for p in present))  # `..._x.json`: a suffix
        if not found:
            missing.append(prefix + name)
    assert not missing, f"README cites result files that are not in the repository: {missing}"
