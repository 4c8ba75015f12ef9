"""README.md's code cannot rot: its Python blocks run, and every ``advforge ...`` line of its
shell blocks parses with the real command-line parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from advforge.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def cli_commands(script: str) -> list[list[str]]:
    """The words of every ``advforge`` command in a shell block (continuations joined,
    comments dropped)."""
    joined = script.replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [words for words in commands if words and words[0] == "advforge"]


PYTHON = blocks("python")
COMMANDS = [words for script in blocks("bash") for words in cli_commands(script)]


def test_cli_commands_joins_continuations_and_drops_comments() -> None:
    script = "make demo\nadvforge attack --model runs/m \\\n    --target 7   # note\n"
    assert cli_commands(script) == [["advforge", "attack", "--model", "runs/m", "--target", "7"]]


def test_readme_shows_python_and_every_subcommand() -> None:
    assert PYTHON, "README.md has no Python block"
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    shown = {words[1] for words in COMMANDS if len(words) > 1}
    assert set(sub.choices) <= shown, f"README.md never shows {set(sub.choices) - shown}"


@pytest.mark.parametrize("code", PYTHON, ids=lambda code: code.splitlines()[0][:40])
def test_python_block_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the blocks write reports relative to the working directory
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words[1:3]))
def test_cli_line_parses(words: list[str], capsys: pytest.CaptureFixture) -> None:
    try:
        build_parser().parse_args(words[1:])
    except SystemExit:
        error = capsys.readouterr().err.strip().splitlines()
        pytest.fail(f"{shlex.join(words)!r} does not parse: {error[-1] if error else ''}")
