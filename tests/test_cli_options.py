"""Flag help generated from config dataclasses: what `--help` tells a user about each option."""

from __future__ import annotations

import argparse
import dataclasses

from advforge.cli.options import add_dataclass_flags, build_config, docstring_attributes
from advforge.generative import AdvGANConfig, AIGANConfig


@dataclasses.dataclass
class _Demo:
    """A config.

    Attributes:
        rate: step size, in % of the range
            (continued on a deeper line).
        beta1, beta2: Adam betas, see :mod:`torch.optim`.
        plain: ``"a"`` or ``"b"``.

    Not an attribute: this paragraph ends the section.
    """

    rate: float = 0.5
    beta1: float = 0.9
    beta2: float = 0.999
    plain: str = "a"
    undocumented: int = 3
    hidden: int = dataclasses.field(default=1, metadata={"cli": False})
    explicit: int = dataclasses.field(default=2, metadata={"help": "from metadata"})


def test_docstring_entries_grouped_continued_and_cleaned():
    doc = docstring_attributes(_Demo)
    assert doc["rate"] == "step size, in % of the range (continued on a deeper line)."
    assert doc["beta1"] == doc["beta2"] == "Adam betas, see torch.optim."
    assert doc["plain"] == '"a" or "b".'
    assert "Not" not in " ".join(doc.values()) and set(doc) == {"rate", "beta1", "beta2",
                                                                  "plain"}


def test_flags_carry_help_and_default():
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, _Demo)
    helps = {a.dest: a.help for a in parser._actions if a.dest != "help"}
    assert "hidden" not in helps
    assert helps["explicit"] == "from metadata (default: 2)"
    assert helps["undocumented"] == "default: 3"
    assert helps["rate"].endswith("(default: 0.5)") and "%%" in helps["rate"]  # argparse-safe
    parser.format_help()  # a lone % would raise here


def test_every_attacker_option_is_documented():
    for cls in (AIGANConfig, AdvGANConfig):
        doc = docstring_attributes(cls)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in doc]
        assert not missing, f"{cls.__name__} fields without a docstring entry: {missing}"


def test_a_union_field_takes_the_first_member_that_reads_the_value(tmp_path):
    """AdvGAN's ``target: int | str`` is a class index or "all", from a flag or from YAML."""
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, AdvGANConfig)
    for flag, expected in (("3", 3), (" 7", 7), ("all", "all")):
        assert build_config(AdvGANConfig, parser.parse_args(["--target", flag])).target == expected
    config = tmp_path / "run.yaml"
    config.write_text("target: 4\n")
    args = parser.parse_args([])
    args.config = str(config)
    assert build_config(AdvGANConfig, args).target == 4
