"""The documents' code cannot rot: README.md's Python blocks run, every ``advforge ...`` line of
the shell blocks in README.md, docs/ and benchmarks/README.md parses with the real
command-line parser, and every relative link points at a file in the repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from advforge.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "benchmarks/README.md",
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def read(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def cli_commands(script: str) -> list[list[str]]:
    """The words of every ``advforge`` command in a shell block (continuations joined,
    comments dropped)."""
    joined = script.replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [words for words in commands if words and words[0] == "advforge"]


PYTHON = blocks(read("README.md"), "python")
README_COMMANDS = [w for script in blocks(read("README.md"), "bash") for w in cli_commands(script)]
COMMANDS = [(doc, words) for doc in DOCUMENTS for script in blocks(read(doc), "bash")
            for words in cli_commands(script)]


def test_cli_commands_joins_continuations_and_drops_comments() -> None:
    script = "make demo\nadvforge attack --model runs/m \\\n    --target 7   # note\n"
    assert cli_commands(script) == [["advforge", "attack", "--model", "runs/m", "--target", "7"]]


def test_readme_shows_python_and_every_subcommand() -> None:
    assert PYTHON, "README.md has no Python block"
    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    shown = {words[1] for words in README_COMMANDS if len(words) > 1}
    assert set(sub.choices) <= shown, f"README.md never shows {set(sub.choices) - shown}"


@pytest.mark.parametrize("code", PYTHON, ids=lambda code: code.splitlines()[0][:40])
def test_python_block_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the blocks write reports relative to the working directory
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize(("doc", "words"), COMMANDS,
                         ids=[f"{doc}: {' '.join(words[1:3])}" for doc, words in COMMANDS])
def test_cli_line_parses(doc: str, words: list[str], capsys: pytest.CaptureFixture) -> None:
    try:
        build_parser().parse_args(words[1:])
    except SystemExit:
        error = capsys.readouterr().err.strip().splitlines()
        pytest.fail(f"{doc}: {shlex.join(words)!r} does not parse: "
                    f"{error[-1] if error else ''}")


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_relative_links_resolve(doc: str) -> None:
    links = [link for link in LINK.findall(read(doc)) if "://" not in link]
    missing = [link for link in links if not ((ROOT / doc).parent / link).exists()]
    assert not missing, f"{doc} links to files that do not exist: {missing}"
