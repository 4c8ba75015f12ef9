"""The nested attacker configs: flat names (CLI flags, YAML keys, run records) map one to
one onto the nested fields, records in either layout read back, and ``train-attacker``'s
flags sit in their argparse groups."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from advforge.cli.attacker_flags import add_attacker_flags, flat_view
from advforge.cli.train_attacker import _attacker_config, add_parser
from advforge.errors import InputError
from advforge.generative import AdvGANConfig, AIGANConfig, from_flat, to_flat
from advforge.generative.config import flat_names, with_config_defaults

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(("cls", "run"), [(AIGANConfig, "flat_aigan"),
                                          (AdvGANConfig, "flat_advgan")])
def test_flat_names_are_the_recorded_flat_fields(cls, run):
    recorded = json.loads((DATA / run / "config.json").read_text())["training"]
    assert sorted(flat_names(cls)) == sorted(recorded)
    cfg = from_flat(cls, recorded)  # a flat record builds the same config back
    assert to_flat(cfg) == recorded


def test_flat_names_reach_their_nested_fields():
    cfg = AIGANConfig.from_flat({"g_ch": 8, "d_ch": 4, "black_box": True, "epochs": 3,
                                 "attacker": False, "pretrain_lr": 0.01, "g_ema": 0.5})
    assert (cfg.generator.ch, cfg.discriminator.ch, cfg.black_box.enabled) == (8, 4, True)
    assert (cfg.training.epochs, cfg.attacker.enabled, cfg.pretrain.lr) == (3, False, 0.01)
    assert cfg.training.g_ema == 0.5
    assert AdvGANConfig().generator.ch == 16 and AdvGANConfig().generator.arch == "unet"
    assert (AIGANConfig().generator.arch, AIGANConfig().generator.ch) == ("shuffle", 64)


def test_unknown_flat_name_and_bad_value_are_refused():
    with pytest.raises(InputError, match="'g_chh' is not a field of AIGANConfig"):
        AIGANConfig.from_flat({"g_chh": 8})
    with pytest.raises(InputError, match="g_ch must be >= 1"):
        AIGANConfig.from_flat({"g_ch": 0})
    with pytest.raises(InputError, match="query_samples"):
        AIGANConfig.from_flat({"query_samples": 2})  # white-box has the exact gradient


def test_a_nested_record_reads_as_its_flat_form():
    nested = {"eps": 0.2, "generator": {"ch": 8}, "black_box": {"enabled": True}}
    flat = with_config_defaults(AIGANConfig, nested)
    assert (flat["eps"], flat["g_ch"], flat["black_box"]) == (0.2, 8, True)
    assert flat["distill_probe_steps"] == 0  # absent: what a run without probes did


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"), lambda p: p.add_argument("--config"))
    return parser


def test_help_lists_the_flags_by_section(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["train-attacker", "aigan", "--help"])
    text = capsys.readouterr().out
    heads = ["run:", "generator:", "discriminator/attacker:", "black-box:", "training:"]
    where = [text.index(f"\n{h}\n") for h in heads]
    assert where == sorted(where)
    flag = {f: text.index(f"\n  --{f} ") for f in ("g-ch", "attacker-steps",
                                                   "distill-probe-steps", "epochs")}
    assert where[1] < flag["g-ch"] < where[2] < flag["attacker-steps"] < where[3]
    assert where[3] < flag["distill-probe-steps"] < where[4] < flag["epochs"]
    parser = argparse.ArgumentParser()
    add_attacker_flags(parser, AdvGANConfig)
    assert "black-box" not in parser.format_help()  # AdvGAN has no black-box section


def test_flags_and_yaml_build_the_nested_config(tmp_path):
    yaml = tmp_path / "run.yaml"
    yaml.write_text("g_ch: 8\nblack_box: true\nepochs: 2\n")
    args = _parser().parse_args(["train-attacker", "aigan", "--config", str(yaml),
                                 "--epochs", "3", "--no-attacker", "--eps", "0.2"])
    splits = argparse.Namespace(default_eps=0.3)
    cfg, flat = _attacker_config(AIGANConfig, args, splits, dry_run=False)
    assert (cfg.generator.ch, cfg.black_box.enabled, cfg.training.epochs) == (8, True, 3)
    assert cfg.attacker.enabled is False and cfg.eps == 0.2
    assert isinstance(flat, flat_view(AIGANConfig)) and flat.epochs == 3


def test_the_paper_configuration_file_is_the_paper_config():
    import yaml

    from advforge.generative.aigan.config import PAPER_CONFIG

    path = Path(__file__).resolve().parents[2] / "configs" / "aigan_paper.yaml"
    assert yaml.safe_load(path.read_text()) == PAPER_CONFIG
    paper, default = AIGANConfig.from_flat(PAPER_CONFIG), AIGANConfig()
    assert (paper.generator.arch, paper.objective.uses_discriminator) == ("unet", True)
    assert (default.generator.arch, default.objective.uses_discriminator) == ("shuffle", False)
