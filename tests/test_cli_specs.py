"""Attack specs on the command line: fi_pso's pixel indices as a '+'-joined list."""

from __future__ import annotations

import json

import pytest

from advforge.cli.specs import build_attack, parse_spec, parse_value
from advforge.errors import InputError


def test_plus_joined_integers_are_a_list():
    assert parse_value("3+17+40") == [3, 17, 40]
    assert parse_value(" 3 + 17 ") == [3, 17]
    assert parse_value("8/255") == pytest.approx(8 / 255) and parse_value("40") == 40
    assert parse_value("3+x") == "3+x" and parse_value("1.5+2") == "1.5+2"


def test_fi_pso_spec_takes_pixel_indices():
    name, run_dir, hyper = parse_spec("fi_pso:pixels=3:indices=3+17+40:p_err=0.9")
    assert (name, run_dir, hyper["indices"]) == ("fi_pso", None, [3, 17, 40])
    _, attack, shown = build_attack("fi_pso:pixels=3:indices=3+17+40", eps=0.3)
    assert attack.indices == (3, 17, 40) and shown["indices"] == [3, 17, 40]
    _, one, _ = build_attack("fi_pso:indices=5", eps=0.3)
    assert one.indices == (5,)


def test_malformed_indices_are_refused():
    with pytest.raises(InputError, match="indices"):
        build_attack("fi_pso:indices=3+x", eps=0.3)


def test_attack_command_reports_requirements(model_dir, tmp_path, capsys):
    from advforge.cli import main

    out = tmp_path / "rep"
    code = main(["attack", "--dry-run", "--quiet", "--model", str(model_dir), "--attack",
                 "fi_pso:pixels=3:indices=3+17+40:particles=4:iters=2", "--targets", "4",
                 "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "requirements met, n = " in printed.out and "L0 <= 3" in printed.out
    report = json.loads((out / "report.json").read_text())["attacks"][0]
    assert report["hyper"]["indices"] == [3, 17, 40]
    assert report["requirements"]["n"] == report["n_evaluated"]
    assert report["requirements"]["l0_met"] == 1.0
    assert "## Requirements met" in (out / "report.md").read_text()
