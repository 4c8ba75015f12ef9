"""End-to-end CLI tests: --dry-run pipelines write files that parse; bad input gets one line on
stderr, exit status 2, and no half-written output."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import cli_fails
from safetensors.torch import load_file

from advforge.cli import main
from advforge.generative.substitute import SMALL_IMAGE_CANDIDATES


def test_datasets_lists_embedded_default(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "mnist5k" in out and "synthetic" in out


def test_train_classifier_dry_run_writes_loadable_checkpoint(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["arch"] == "model_b"
    assert 0.0 <= config["metrics"]["test_accuracy"] <= 1.0
    assert (model_dir / "resolved_config.yaml").is_file()
    from advforge import load_model

    model = load_model(model_dir)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_attack_dry_run_saves_adversarial_set(model_dir, tmp_path, capsys):
    save = tmp_path / "adv.safetensors"
    code = main(["attack", "--dry-run", "--quiet", "--model", str(model_dir), "--attack", "pgd",
                 "--targets", "3", "--save", str(save), "--out", str(tmp_path / "rep")])
    assert code == 0, capsys.readouterr().err
    tensors = load_file(str(save))
    assert set(tensors) == {"x_adv", "y", "target", "index"}
    assert (tensors["target"] == 3).all() and (tensors["y"] != 3).all()
    assert tensors["x_adv"].shape[1:] == (1, 28, 28)
    assert 0.0 <= tensors["x_adv"].min() and tensors["x_adv"].max() <= 1.0
    assert (tmp_path / "rep" / "report.json").is_file()


def test_evaluate_dry_run_writes_report(model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["evaluate", "--dry-run", "--quiet", "--model", str(model_dir),
                 "--attacks", "fgsm,pgd:steps=2", "--targets", "all", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert [a["attack"] for a in report["attacks"]] == ["fgsm", "pgd:steps=2"]
    for key in ("attack", "hyper", "targeted", "n_evaluated", "clean_accuracy", "success_rate",
                "per_target", "confusion", "l2", "linf", "seconds", "seconds_per_1000"):
        assert key in report["attacks"][0]
    assert report["meta"]["seed"] == 0 and "advforge_version" in report["meta"]
    assert report["attacks"][1]["hyper"]["steps"] == 2
    assert "data:image/png;base64" in (out / "report.html").read_text()
    assert "|" in (out / "report.md").read_text()
    assert (out / "resolved_config.yaml").is_file()


def test_config_file_sets_defaults_and_flags_override(model_dir, tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("attacks: fgsm\ntargets: none\neps: 0.1\n")
    out = tmp_path / "r"
    assert main(["evaluate", "--dry-run", "--quiet", "--config", str(cfg), "--model",
                 str(model_dir), "--eps", "1/10", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["attacks"][0]["hyper"]["eps"] == pytest.approx(0.1)
    assert not report["attacks"][0]["targeted"]


@pytest.mark.parametrize(
    "argv, mentions",
    [
        (["attack", "--dry-run", "--attack", "nosuch"], "unknown attack"),
        (["attack", "--dry-run", "--attack", "aigan"], "aigan=RUN_DIR"),
        (["evaluate", "--dataset", "nosuch", "--model", "x"], "nosuch"),
        (["attack", "--dry-run", "--attack", "pgd", "--eps", "0"], "eps"),
        (["attack", "--dry-run", "--attack", "pgd", "--eps", "-0.1"], "eps"),
        (["attack", "--dry-run", "--attack", "pgd", "--targets", "12"], "out of range"),
        (["attack", "--dry-run", "--attack", "pgd", "--targets", "seven"], "target"),
        (["attack", "--dry-run", "--attack", "pgd:stepz=3"], "stepz"),
        (["attack", "--dry-run", "--attack", "pgd", "--save", "adv.pt"], "safetensors"),
        (["attack", "--attack", "pgd"], "--model"),
    ],
)
def test_bad_input_one_line_error(argv, mentions, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli_fails(argv, capsys, mentions=mentions)
    assert not (tmp_path / "adv.pt").exists()


def test_missing_and_corrupt_checkpoint(tmp_path, capsys, model_dir):
    cli_fails(["attack", "--dry-run", "--model", str(tmp_path / "nope"), "--attack", "fgsm"],
           capsys, mentions="nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((model_dir / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file at all")
    save = tmp_path / "adv.safetensors"
    cli_fails(["attack", "--dry-run", "--model", str(broken), "--attack", "fgsm", "--save",
            str(save)], capsys, mentions="model.safetensors")
    assert not save.exists()


def test_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("bogus: 1\n")
    cli_fails(["evaluate", "--dry-run", "--config", str(cfg)], capsys, mentions="bogus")


def test_failed_run_writes_no_report(model_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    cli_fails(["evaluate", "--dry-run", "--model", str(model_dir), "--attacks", "fgsm,nosuch",
            "--out", str(out)], capsys, mentions="nosuch")
    assert not (out / "report.json").exists()


def test_demo_dry_run_trains_everything_and_reuses_it(tmp_path, monkeypatch, capsys):
    """The dry run writes under runs/dry-run/demo, never runs/demo where the real demo reads."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "dry-run" / "demo"
    assert main(["demo", "--dry-run", "--quiet"]) == 0
    assert not (tmp_path / "runs" / "demo").exists()
    for path in ("model_b/model.safetensors", "aigan/generator.safetensors",
                 "advgan/config.json", "report/report.json", "report/report.html"):
        assert (out / path).is_file(), path
    report = json.loads((out / "report" / "report.json").read_text())
    names = [a["attack"] for a in report["attacks"]]
    assert names[0] == "fgsm" and "aigan" in names and "advgan" in names
    assert all(a["targeted"] for a in report["attacks"])
    capsys.readouterr()
    assert main(["demo", "--dry-run", "--quiet"]) == 0
    assert capsys.readouterr().out.count("reusing") == 3
    # a real from-scratch demo refuses to reuse the synthetic stages, before any training
    cli_fails(["demo", "--from-scratch", "--quiet", "--out", str(out)], capsys,
           mentions="was trained on synthetic, not mnist5k")
    # --retrain starts afresh: a resume would trip over the (here damaged) training states.
    for stage in ("model_b", "aigan", "advgan"):
        states = list((out / stage).rglob("train_state.safetensors"))
        assert states, stage
        for state in states:
            state.write_bytes(b"damaged")
    assert main(["demo", "--dry-run", "--quiet", "--retrain"]) == 0
    assert capsys.readouterr().out.count("reusing") == 0


def test_demo_evaluates_the_shipped_weights_without_training(tmp_path, monkeypatch, capsys):
    import advforge.cli.demo as demo

    # C&W's binary search dominates the run; a two-step search exercises the same wiring
    monkeypatch.setattr(demo, "DEMO_EVAL", [
        (spec if not spec.startswith("cw_l2") else "cw_l2:binary_search_steps=1:steps=2",
         targets, limit) for spec, targets, limit in demo.DEMO_EVAL])
    out = tmp_path / "demo"
    assert main(["demo", "--quiet", "--limit", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "shipped Model B (mnist5k, test accuracy 98.50%)" in printed
    assert sorted(p.name for p in out.iterdir()) == ["report"]  # nothing trained
    report = json.loads((out / "report" / "report.json").read_text())
    names = [a["attack"] for a in report["attacks"]]
    assert names[0] == "fgsm" and names[3] == "aigan"
    assert names[1].startswith("pgd:steps=20") and names[2].startswith("cw_l2:")
    cli_fails(["demo", "--dataset", "fashion-mnist", "--out", str(tmp_path / "f")], capsys,
           mentions="add --from-scratch")
    assert not (tmp_path / "f").exists()


def test_demo_prints_n_a_when_nothing_could_be_attacked():
    from types import SimpleNamespace

    from advforge.cli.demo import success_text

    assert success_text(SimpleNamespace(success_rate=None)).startswith("n/a")
    assert success_text(SimpleNamespace(success_rate=0.5)) == "50.00%"


def test_demo_evaluates_500_test_images_unless_limited():
    """The budget that keeps the demo inside 15 minutes: 500 test images, C&W on 20; --limit
    overrides both ways, and nothing asks for more images than the split holds."""
    from advforge.cli.demo import DEMO_EVAL, DEMO_TEST_IMAGES, eval_images

    cw_limit = next(lim for spec, _, lim in DEMO_EVAL if spec.startswith("cw_l2"))
    assert (DEMO_TEST_IMAGES, cw_limit) == (500, 20)
    assert eval_images(None, None, 1000, dry_run=False) == 500
    assert eval_images(cw_limit, None, 1000, dry_run=False) == 20
    assert eval_images(None, 100, 1000, dry_run=False) == 100
    assert eval_images(cw_limit, 10, 1000, dry_run=False) == 10
    assert eval_images(None, None, 300, dry_run=False) == 300
    assert eval_images(None, None, 64, dry_run=True) == 64


def test_every_demo_attack_spec_builds():
    """The real demo's specs must name real hyperparameters (the dry run uses others)."""
    from advforge.cli.demo import DEMO_EVAL
    from advforge.cli.specs import build_attack

    for spec, _, _ in DEMO_EVAL:
        if spec not in ("aigan", "advgan"):
            build_attack(spec, eps=0.3)


@pytest.mark.parametrize("kind, extra, files", [
    ("aigan", [], ["generator.safetensors", "config.json"]),
    ("aigan", ["--black-box", "--distill-probe-steps", "2", "--local-arch", "auto"],
     ["generator.safetensors", "config.json"]),
    ("advgan", ["--target", "3"], ["generator.safetensors", "config.json"]),
    ("advgan", ["--target", "all"], [f"target_{t}/generator.safetensors" for t in range(10)]),
    ("ae4dnn", ["--target", "5"], ["generator.safetensors", "config.json"]),
    ("atn", ["--target", "all", "--phi", "0.01"],
     [f"target_{t}/generator.safetensors" for t in range(10)]),
])
def test_train_attacker_dry_run_then_attack_with_it(kind, extra, files, model_dir, tmp_path,
                                                    capsys):
    """``advforge train-attacker`` makes a run that ``--attack KIND=DIR`` loads; a class index
    given on the command line stays an index (``--target 3``, not the string "3")."""
    run = tmp_path / kind
    code = main(["train-attacker", kind, "--dry-run", "--quiet", "--model", str(model_dir),
                 *extra, "--out", str(run)])
    assert code == 0, capsys.readouterr().err
    for name in files:
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == kind
    if kind == "advgan":
        assert config["target"] == (3 if extra[1] == "3" else "all")
    elif kind in ("ae4dnn", "atn"):  # the weight rule's choice is recorded with the sweep
        metrics = config["metrics"] if kind == "ae4dnn" else config["metrics"]["per_target"]["5"]
        assert "heldout" in metrics and (kind == "atn" or metrics["chosen"] in
                                         [r["beta"] for r in metrics["sweep"]])
        if kind == "ae4dnn":  # --beta auto: one run per fraction of Formula 3's bound
            assert len(list((run / "sweep").iterdir())) == 7
    elif extra:  # black-box: the probes were on, the query-only target never differentiated
        assert config["black_box"] and config["training"]["distill_probe_steps"] == 2
        # --local-arch auto distilled every candidate and kept the one whose targeted
        # examples transferred best to the target, recording every score
        select = config["metrics"]["phases"]["select"]
        assert set(select["scores"]) == set(SMALL_IMAGE_CANDIDATES)
        assert select["scores"][select["arch"]] == max(select["scores"].values())
        # the distilled substitute is kept as a classifier run, for transfer attacks on it
        assert config["local_model"] == {"arch": select["arch"], "run_dir": "local_model"}
        from advforge.models import load_model

        local = load_model(run / "local_model")
        assert json.loads((run / "local_model" / "config.json").read_text())["arch"] == \
            select["arch"]
        assert local.num_classes == 10 and local(torch.rand(2, 1, 28, 28)).shape == (2, 10)
        code = main(["attack", "--dry-run", "--quiet", "--model", str(run / "local_model"),
                     "--attack", "fgsm", "--out", str(tmp_path / "on_local")])
        assert code == 0, capsys.readouterr().err
    target = 3 if extra[1:] == ["3"] else 5
    save = tmp_path / "adv.safetensors"
    code = main(["attack", "--dry-run", "--quiet", "--model", str(model_dir), "--attack",
                 f"{kind}={run}", "--targets", str(target), "--save", str(save),
                 "--out", str(tmp_path / "rep")])
    assert code == 0, capsys.readouterr().err
    tensors = load_file(str(save))
    assert (tensors["target"] == target).all()
    assert (tensors["x_adv"] - tensors["x_adv"].clamp(0, 1)).abs().max() == 0
    if kind in ("advgan", "ae4dnn") and extra[1] != "all":
        # evaluate: a single-target attacker's report, with its one-row sample grid
        code = main(["evaluate", "--dry-run", "--quiet", "--model", str(model_dir),
                     "--attacks", f"{kind}={run}", "--targets", str(target),
                     "--out", str(tmp_path / "eval")])
        assert code == 0, capsys.readouterr().err
        report = json.loads((tmp_path / "eval" / "report.json").read_text())
        assert report["attacks"][0]["targeted"] and (tmp_path / "eval" / "report.html").is_file()


@pytest.mark.parametrize("extra, mentions", [
    (["--target", "10"], "not a class"),
    (["--target", "some"], "class index or 'all'"),
    (["--target", "-1"], "class index or 'all'"),
])
def test_train_attacker_bad_target(extra, mentions, model_dir, tmp_path, capsys):
    cli_fails(["train-attacker", "advgan", "--dry-run", "--model", str(model_dir), *extra,
            "--out", str(tmp_path / "run")], capsys, mentions=mentions)
    assert not (tmp_path / "run").exists()

