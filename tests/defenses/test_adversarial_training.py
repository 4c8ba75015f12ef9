"""fgsm-at, pgd-at and ensemble-at: what the step computes, the modes it runs in, that it
learns robustness, resume, and the run directory it writes."""

from __future__ import annotations

import json

import pytest
import torch
from quadrants import make_splits

from advforge import attacks
from advforge.defenses import defend, names, settings_class
from advforge.defenses.adversarial import ramped_eps
from advforge.errors import AdvforgeError, CheckpointError
from advforge.models import load_model
from advforge.training import TrainConfig, evaluate


@pytest.fixture(scope="module")
def splits():
    return make_splits(n_train=96, n_test=40)


def _train(tmp_path, **kw) -> TrainConfig:
    base = {"arch": "lenet5", "dataset": "quadrants", "epochs": 2, "batch_size": 16,
            "augment": "none", "out": str(tmp_path / "run"), "seed": 0, "lr": 3e-3}
    base.update(kw)
    return TrainConfig(**base)


def _robust_accuracy(model, splits, eps: float) -> float:
    pgd = attacks.create("pgd", eps=eps, steps=20, step_size=eps / 8, random_start=False)
    x, y = splits.test.x, splits.test.y
    return float((model(pgd(model, x, y)).argmax(1) == y).float().mean())


def test_the_four_defenses_are_registered():
    assert {"fgsm-at", "pgd-at", "ensemble-at"} <= set(names())


def test_ramped_eps_grows_linearly_then_stays():
    assert ramped_eps(0.3, 0, 0.0) == 0.3
    assert ramped_eps(0.3, 5, 0.0) == 0.0
    assert ramped_eps(0.3, 5, 2.5) == pytest.approx(0.15)
    assert ramped_eps(0.3, 5, 7.0) == 0.3


@pytest.mark.parametrize("name,kw,message", [
    ("pgd-at", {"eps": 1.5}, "eps"),
    ("pgd-at", {"steps": 0}, "steps"),
    ("pgd-at", {"step_fraction": 0.0}, "step_fraction"),
    ("pgd-at", {"clean_weight": 1.0}, "clean_weight"),
    ("fgsm-at", {"alpha": -0.1}, "alpha"),
    ("fgsm-at", {"label": "leak"}, "label"),
    ("ensemble-at", {"attacks": ("fgsm", "deepfool")}, "attacks"),
    ("ensemble-at", {"static_models": ("/nonexistent/run",)}, "static model"),
    ("ensemble-at", {"static_archs": ("no_such_net",)}, "no_such_net"),
])
def test_bad_settings_get_one_line_errors(name, kw, message):
    with pytest.raises(AdvforgeError, match=message) as err:
        settings_class(name)(**kw)
    assert "\n" not in str(err.value)


def test_unknown_defense_is_refused():
    with pytest.raises(AdvforgeError, match="unknown defense 'pgd_at'"):
        settings_class("pgd_at")


def test_attacks_see_eval_mode_and_the_step_sees_train_mode(tmp_path, splits):
    """Every forward with a gradient-tracking input (the attack's) runs in eval mode, every
    forward of the training step in train mode, and train mode is back afterwards."""
    seen: list[tuple[bool, bool]] = []
    import advforge.training.loop as loop

    original = loop._build

    def build_with_probe(*args, **kw):
        model, opt = original(*args, **kw)
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first.register_forward_pre_hook(
            lambda mod, inp: seen.append((mod.training, inp[0].requires_grad)))
        return model, opt

    loop._build = build_with_probe
    try:
        defend(settings_class("pgd-at")(eps=0.2, steps=2), _train(tmp_path, epochs=1), splits)
    finally:
        loop._build = original
    attack_calls = [training for training, grad in seen if grad]
    step_calls = [training for training, grad in seen if not grad]
    assert attack_calls and not any(attack_calls)
    # train-mode steps; the eval passes at the epoch's end see no gradient either
    assert sum(step_calls) == 6 and all(step_calls[:6])


def test_pgd_at_learns_robustness_that_standard_training_lacks(tmp_path, splits):
    eps = 0.25
    common = {"epochs": 6, "lr": 3e-3}
    defend(settings_class("pgd-at")(eps=eps, steps=5), _train(tmp_path / "adv", **common),
           splits)
    from advforge.training import fit

    fit(_train(tmp_path / "std", **common), splits)
    adv, std = load_model(tmp_path / "adv" / "run"), load_model(tmp_path / "std" / "run")
    assert evaluate(adv, splits.test.x, splits.test.y) >= 0.9  # still accurate
    robust_adv = _robust_accuracy(adv, splits, eps)
    robust_std = _robust_accuracy(std, splits, eps)
    assert robust_adv >= robust_std + 0.3, (robust_adv, robust_std)


@pytest.mark.parametrize("name,kw", [("fgsm-at", {"label": "predicted"}),
                                     ("pgd-at", {"eps_ramp_epochs": 1, "clean_weight": 0.5})])
def test_defense_writes_a_classifier_run_that_records_it(tmp_path, splits, name, kw):
    metrics = defend(settings_class(name)(eps=0.2, **kw), _train(tmp_path), splits)
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["extra"]["defense"]["name"] == name
    assert config["extra"]["defense"]["eps"] == 0.2
    model = load_model(run)
    assert evaluate(model, splits.test.x, splits.test.y) == pytest.approx(
        metrics["test_accuracy"])


@pytest.mark.parametrize("name,kw", [("pgd-at", {"steps": 2}),
                                     ("ensemble-at", {"pgd_steps": 2})])
def test_defense_resumes_to_the_uninterrupted_weights(tmp_path, splits, name, kw):
    """ensemble-at's settings hold tuples, which the state file keeps as JSON lists."""
    settings = settings_class(name)(eps=0.2, **kw)
    defend(settings, _train(tmp_path / "full", epochs=2), splits)
    defend(settings, _train(tmp_path / "cut", epochs=1), splits)
    defend(settings, _train(tmp_path / "cut", epochs=2, resume=True), splits)
    a = load_model(tmp_path / "full" / "run").state_dict()
    b = load_model(tmp_path / "cut" / "run").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)


def test_resume_with_another_defense_is_refused(tmp_path, splits):
    defend(settings_class("pgd-at")(eps=0.2, steps=2), _train(tmp_path, epochs=1), splits)
    with pytest.raises(CheckpointError, match="objective"):
        defend(settings_class("pgd-at")(eps=0.1, steps=2),
               _train(tmp_path, epochs=2, resume=True), splits)


def test_ensemble_at_trains_its_static_source_and_uses_it(tmp_path, splits, monkeypatch):
    from advforge.defenses import ensemble

    sources: list[bool] = []
    original = ensemble.source_attack

    def record(attack, source, x, y, ctx):
        sources.append(source is ctx.module)
        return original(attack, source, x, y, ctx)

    monkeypatch.setattr(ensemble, "source_attack", record)
    settings = settings_class("ensemble-at")(eps=0.2, pgd_steps=2)
    defend(settings, _train(tmp_path, epochs=1), splits)
    static = tmp_path / "run" / "static" / "lenet5-seed1"
    assert (static / "model.safetensors").is_file()
    assert not (static / "train_state.safetensors").exists()
    assert True in sources and False in sources  # both the current and the static model
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["extra"]["defense"]["static_models"] == [str(static)]

