"""CLI guards that run before any compute: output paths, budgets, target rules, dataset
records; and the two commands spelling the target option the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import cli_fails

from advforge.cli import main


def _bad_paths(tmp: Path) -> dict[str, tuple[str, str]]:
    """flag value and the words its error must contain, per case."""
    blocker = tmp / "blocker.txt"
    blocker.write_text("in the way")
    existing = tmp / "old.safetensors"
    existing.write_bytes(b"keep me")
    return {
        "dir is a file": (str(blocker), "not a directory"),
        "dir under a file": (str(blocker / "rep"), "which is a file"),
        "save exists": (str(existing), "already exists"),
        "save under a file": (str(blocker / "adv.safetensors"), "which is a file"),
    }


CASES = [
    (["attack", "--attack", "fgsm", "--out"], "dir is a file"),
    (["attack", "--attack", "fgsm", "--out"], "dir under a file"),
    (["attack", "--attack", "fgsm", "--save"], "save exists"),
    (["attack", "--attack", "fgsm", "--save"], "save under a file"),
    (["evaluate", "--attacks", "fgsm", "--out"], "dir is a file"),
    (["evaluate", "--attacks", "fgsm", "--out"], "dir under a file"),
    (["train-classifier", "--out"], "dir is a file"),
    (["train-classifier", "--out"], "dir under a file"),
    (["train-attacker", "aigan", "--out"], "dir under a file"),
]


@pytest.mark.parametrize("argv, case", CASES)
def test_unwritable_output_is_refused_before_any_work(argv, case, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.chdir(tmp_path)
    value, mentions = _bad_paths(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    cli_fails([*argv, value, "--dry-run", "--quiet"], capsys, mentions=mentions)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    assert (tmp_path / "old.safetensors").read_bytes() == b"keep me"


def test_output_under_a_directory_that_refuses_writes(tmp_path, monkeypatch, capsys):
    """/sys refuses new files even to root, for whom chmod 0o500 would not."""
    if not Path("/sys").is_dir():
        pytest.skip("needs /sys")
    monkeypatch.chdir(tmp_path)
    cli_fails(["evaluate", "--dry-run", "--attacks", "fgsm", "--out", "/sys/advforge-report"],
           capsys, mentions="cannot be written")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["--eps", "2"], ["--eps", "300/255"]])
def test_linf_eps_above_one_is_refused(argv, capsys):
    cli_fails(["attack", "--dry-run", "--attack", "pgd", *argv], capsys, mentions="at most 1")


def test_attacker_eps_above_one_is_refused(tmp_path, capsys):
    cli_fails(["train-attacker", "aigan", "--dry-run", "--eps", "2", "--out",
            str(tmp_path / "run")], capsys, mentions="eps")
    assert not (tmp_path / "run").exists()


def test_linf_eps_above_one_in_a_spec_is_refused(capsys):
    cli_fails(["attack", "--dry-run", "--attack", "fgsm:eps=2"], capsys, mentions="at most 1")


@pytest.mark.parametrize("rule", ["all", "3", "random"])
def test_fgsm_ll_with_a_target_rule_is_refused(rule, model_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    cli_fails(["evaluate", "--dry-run", "--quiet", "--model", str(model_dir), "--attacks",
            "fgsm,fgsm_ll", "--targets", rule, "--out", str(out)], capsys,
           mentions="fgsm_ll chooses its own target")
    assert not out.exists()


def test_fgsm_ll_untargeted_still_runs(model_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["evaluate", "--dry-run", "--quiet", "--model", str(model_dir), "--attacks",
                 "fgsm_ll", "--out", str(out), "--limit", "16"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["attacks"][0]["attack"] == "fgsm_ll" and not report["attacks"][0]["targeted"]


@pytest.mark.parametrize("command, flag", [("attack", "--targets"), ("attack", "--target"),
                                           ("evaluate", "--targets"), ("evaluate", "--target")])
def test_attack_and_evaluate_spell_the_target_option_alike(command, flag, model_dir, tmp_path,
                                                           capsys):
    out = tmp_path / "rep"
    attack = ["--attack", "fgsm"] if command == "attack" else ["--attacks", "fgsm"]
    code = main([command, "--dry-run", "--quiet", "--model", str(model_dir), *attack, flag,
                 "all", "--limit", "8", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["attacks"][0]["target_rule"] == "all"


def test_model_from_another_same_shape_dataset_warns_loudly(model_dir, tmp_path, capsys):
    """A synthetic-trained model on mnist5k: same image shape and classes, so it runs, but
    stderr and the report say so at the top."""
    out = tmp_path / "rep"
    code = main(["evaluate", "--quiet", "--model", str(model_dir), "--dataset", "mnist5k",
                 "--attacks", "fgsm", "--limit", "8", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "trained on synthetic but is used on mnist5k" in err
    report = json.loads((out / "report.json").read_text())
    assert any("trained on synthetic" in w for w in report["meta"]["warnings"])
    for name in ("report.md", "report.html"):
        text = (out / name).read_text()
        assert text.index("trained on synthetic") < text.index("Summary"), name


def test_learned_attacker_made_for_other_images_is_refused(model_dir, tmp_path, capsys):
    run = tmp_path / "aigan_cifar"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({
        "kind": "aigan", "dataset": "cifar10", "in_channels": 3, "image_size": 32,
        "num_classes": 10, "eps": 8 / 255}))
    cli_fails(["evaluate", "--dry-run", "--quiet", "--model", str(model_dir), "--attacks",
            f"aigan={run}", "--targets", "all", "--out", str(tmp_path / "rep")], capsys,
           mentions="made for 3x32x32 images (cifar10)")


def test_dataset_check_refuses_other_shapes_and_warns_on_other_names():
    from advforge import data
    from advforge.cli.runtime import DRY_RUN_DATA, check_dataset_matches
    from advforge.errors import InputError

    splits = data.load("synthetic", **DRY_RUN_DATA)  # 1x28x28, 10 classes
    same = {"dataset": "synthetic", "in_channels": 1, "input_size": 28, "num_classes": 10}
    assert check_dataset_matches(same, splits, "model m") is None
    assert "trained on mnist5k" in check_dataset_matches({**same, "dataset": "mnist5k"},
                                                         splits, "model m")
    assert "does not record" in check_dataset_matches({**same, "dataset": ""}, splits, "m")
    for bad, words in (({"in_channels": 3}, "3x28x28"), ({"input_size": 32}, "1x32x32"),
                       ({"num_classes": 100}, "100 classes")):
        with pytest.raises(InputError, match=words):
            check_dataset_matches({**same, **bad}, splits, "model m")


def test_train_attacker_dry_run_needs_no_model(tmp_path, capsys):
    out = tmp_path / "advgan"
    code = main(["train-attacker", "advgan", "--dry-run", "--quiet", "--target", "3",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "generator.safetensors").is_file()


def test_learned_attackers_get_the_target_rule_they_can_honour():
    from types import SimpleNamespace

    from advforge.cli.specs import check_targeting
    from advforge.errors import InputError

    aigan = SimpleNamespace(kind="aigan", fixed_target=None)
    advgan3 = SimpleNamespace(kind="advgan", fixed_target=3)
    check_targeting("aigan=r", aigan, "all")
    check_targeting("advgan=r", advgan3, 3)
    check_targeting("advgan=r", advgan3, "none")
    with pytest.raises(InputError, match="targeted attacker"):
        check_targeting("aigan=r", aigan, "none")
    with pytest.raises(InputError, match="target class 3 only"):
        check_targeting("advgan=r", advgan3, "all")


def test_compiled_flag_serves_learned_attackers_through_torch_compile(tmp_path, capsys,
                                                                      monkeypatch):
    """--compiled reaches the learned attacker (compiled forward, recorded in the report);
    the compiler is stubbed: test_gen_compiled checks the compiled outputs themselves."""
    import advforge
    from advforge.generative import compiled as compiled_module

    compiled_nets = []

    def fake_compile(net, **kw):
        compiled_nets.append(kw)
        return net

    monkeypatch.setattr(compiled_module.torch, "compile", fake_compile)
    pretrained = Path(advforge.__file__).parent / "pretrained"
    out, attacker = tmp_path / "rep", pretrained / "mnist5k_model_b_aigan"
    code = main(["attack", "--quiet", "--model", str(pretrained / "mnist5k_model_b"),
                 "--dataset", "mnist5k", "--attack", f"aigan={attacker}",
                 "--targets", "all", "--limit", "4", "--compiled", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert compiled_nets == [{"dynamic": True}]
    report = json.loads((out / "report.json").read_text())
    assert report["attacks"][0]["hyper"]["compiled"] is True


def test_compiled_flag_without_a_learned_attacker_is_refused(model_dir, tmp_path, capsys):
    cli_fails(["evaluate", "--dry-run", "--quiet", "--model", str(model_dir), "--attacks",
               "fgsm,pgd", "--compiled", "--out", str(tmp_path / "rep")], capsys,
              mentions="--compiled applies to learned attackers")
