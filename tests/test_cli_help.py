"""Every subcommand's --help reads as a user's guide: a plain description, no docstring
markup or pointers into the source, the valid names listed, and one default per flag."""

from __future__ import annotations

import argparse
import re

import pytest

from advforge import attacks, data, models
from advforge.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every subcommand path of the parser (train-attacker aigan included)."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append([*prefix, name])
                out += _commands(sub, (*prefix, name))
    return out


COMMANDS = _commands(build_parser())

# Docstring dumps: section headers, reStructuredText roles and literals, pointers into the code.
FORBIDDEN = [r"Attributes:", r"Args:", r":\w+:`", r"``", r"module docstring",
             r"\(see \.\w", r"\bsee \.\w"]


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _flag_helps(text: str) -> dict[str, str]:
    """Flag -> its help text, joined across wrapped lines."""
    body = text.split("options:", 1)[1]
    helps: dict[str, str] = {}
    flag = None
    for line in body.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+)", line)
        if m:
            flag = m.group(1)
            helps[flag] = line.strip()
        elif flag and line.startswith(" " * 10):
            helps[flag] += " " + line.strip()
    return helps


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_is_plain_text(argv, capsys):
    text = _help(argv, capsys)
    for pattern in FORBIDDEN:
        assert not re.search(pattern, text), f"{pattern!r} in {' '.join(argv)} --help"
    description = text.split("options:")[0].split("\n\n", 1)[1].strip()
    sentences = [s for s in re.split(r"(?<=\.)\s+", " ".join(description.split())) if s]
    assert 1 <= len(sentences) <= 2, description
    for flag, help_text in _flag_helps(text).items():
        defaults = re.findall(r"\bdefault\b[:\s]+[\w(]", help_text, re.IGNORECASE)
        assert len(defaults) <= 1, f"{flag} states its default twice: {help_text}"
        assert "(default: None)" not in help_text, f"{flag}: {help_text}"


@pytest.mark.parametrize("argv, flag, names", [
    (["attack"], "--attack", attacks.names()),
    (["evaluate"], "--attacks", attacks.names()),
    (["train-classifier"], "--arch", models.names()),
    *[(cmd, "--dataset", data.names())
      for cmd in (["attack"], ["evaluate"], ["robustness"], ["train-classifier"], ["demo"],
                  ["train-attacker", "aigan"], ["train-attacker", "advgan"])],
], ids=lambda v: " ".join(v) if isinstance(v, list) and len(v) < 3 else None)
def test_help_lists_the_valid_names(argv, flag, names, capsys):
    help_text = _flag_helps(_help(argv, capsys))[flag]
    joined = help_text.replace("- ", "-")  # argparse may wrap inside fashion-mnist
    missing = [n for n in names if n not in joined]
    assert not missing, f"{flag} help misses {missing}: {help_text}"


@pytest.mark.parametrize("command", ["attack", "evaluate"])
def test_attack_and_evaluate_document_the_same_target_option(command, capsys):
    helps = _flag_helps(_help([command], capsys))
    assert "--targets" in helps and "--target TARGETS" in helps["--targets"]
