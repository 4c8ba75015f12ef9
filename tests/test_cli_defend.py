"""``advforge defend``: the dry run writes a classifier run every command loads; recipes and
flags set the config; bad input is one line before any training."""

from __future__ import annotations

import json

import pytest
from cli_helpers import cli_fails

from advforge.cli import main
from advforge.cli.options import UNSET
from advforge.models import load_model


@pytest.mark.parametrize("name", ["fgsm-at", "pgd-at", "ensemble-at", "adv-net"])
def test_defend_dry_run_writes_a_loadable_classifier_run(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["defend", name, "--dry-run", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["extra"]["defense"]["name"] == name
    assert config["extra"]["defense"]["eps"] == 0.3  # the dataset's default budget
    assert load_model(out).num_classes == 10
    assert "resolved_config.yaml" in {p.name for p in out.iterdir()}
    assert f"advforge robustness --model {out}" in printed


def test_defense_recipe_sets_the_defaults_and_flags_win(tmp_path):
    from advforge.cli import build_parser
    from advforge.cli.defend import defend_configs

    args = build_parser().parse_args(["defend", "pgd-at", "--arch", "model_b", "--dataset",
                                      "mnist5k", "--steps", "7", "--out", str(tmp_path)])
    train, settings, labels = defend_configs(args, dry_run=False)
    assert labels == ["classifier:model_b:mnist5k", "defense:pgd-at:mnist5k"]
    assert (train.epochs, train.optimizer, settings.eps_ramp_epochs) == (40, "adam", 5)
    assert settings.steps == 7 and settings.step_fraction == 0.25 and settings.eps is None
    assert train.recipe == "defense:pgd-at:mnist5k"
    args.out = UNSET
    train, _, _ = defend_configs(args, dry_run=False)
    assert train.out == "runs/pgd-at_model_b_mnist5k"


@pytest.mark.parametrize("argv,mentions", [
    (["--eps", "1.5"], "eps"),
    (["--steps", "0"], "steps"),
    (["--epochs", "0"], "epochs"),
    (["--arch", "no_such_net"], "no_such_net"),
])
def test_bad_flags_are_one_line(tmp_path, capsys, argv, mentions):
    cli_fails(["defend", "pgd-at", "--out", str(tmp_path / "o"), *argv], capsys,
              mentions=mentions)
    assert not (tmp_path / "o").exists()


def test_missing_static_model_and_unwritable_out_are_refused(tmp_path, capsys):
    cli_fails(["defend", "ensemble-at", "--dry-run", "--static-models", str(tmp_path / "nope"),
               "--out", str(tmp_path / "o")], capsys, mentions="static model")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cli_fails(["defend", "fgsm-at", "--dry-run", "--out", str(blocker / "run")], capsys,
              mentions=str(blocker))


def test_unknown_defense_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["defend", "pgd_at", "--dry-run"])
    assert exc.value.code == 2
    assert "pgd_at" in capsys.readouterr().err
