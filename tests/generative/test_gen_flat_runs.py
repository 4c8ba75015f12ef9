"""Run directories written with the flat config layout (every field of AIGANConfig /
AdvGANConfig at the top of config.json's "training" and of the training state) still load as
attacks and still resume.

tests/generative/data holds two such runs (a 1-epoch AI-GAN and a 1-epoch AdvGAN of class 1,
trained against the toy classifier whose weights are in toy_target.safetensors).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gen_helpers import tiny_advgan, tiny_aigan
from safetensors.torch import load_file
from toy_task import fresh_toy_model, make_toy_batch

from advforge.errors import InputError
from advforge.generative import fit_advgan, fit_aigan, load_attacker

DATA = Path(__file__).parent / "data"


def _target():
    model = fresh_toy_model()
    model.load_state_dict(load_file(DATA / "toy_target.safetensors"))
    return model.eval()


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA / name, tmp_path / name))


def test_flat_aigan_run_loads_and_forges():
    attack = load_attacker(DATA / "flat_aigan")
    x, y = make_toy_batch(8, seed=5)
    x_adv = attack(None, x, y, target=(y + 1) % 4)
    assert x_adv.shape == x.shape and float((x_adv - x).abs().max()) <= 0.3 + 1e-6


def test_flat_advgan_run_loads_as_its_fixed_target():
    attack = load_attacker(DATA / "flat_advgan")
    assert attack.fixed_target == 1 and attack.kind == "advgan"


def test_flat_aigan_run_resumes_to_more_epochs(tmp_path):
    run = _copy("flat_aigan", tmp_path)
    train, val = make_toy_batch(64, seed=1), make_toy_batch(32, seed=2)
    metrics = fit_aigan(tiny_aigan(epochs=2), _target(), train, val=val, run_dir=run,
                        resume=True, dataset="toy")
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
    assert metrics["extensions"] == [{"after_epoch": 1, "from_epochs": 1, "to_epochs": 2}]


def test_flat_advgan_run_resumes_to_more_epochs(tmp_path):
    run = _copy("flat_advgan", tmp_path)
    train, val = make_toy_batch(64, seed=1), make_toy_batch(32, seed=2)
    metrics = fit_advgan(tiny_advgan(epochs=2), _target(), train, val=val, run_dir=run,
                         resume=True, dataset="toy")
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
    assert load_attacker(run).fixed_target == 1


def test_flat_run_refuses_resume_with_another_setting(tmp_path):
    run = _copy("flat_aigan", tmp_path)
    with pytest.raises(InputError, match="different kappa"):
        fit_aigan(tiny_aigan(epochs=2, kappa=5.0), _target(), make_toy_batch(64, seed=1),
                  run_dir=run, resume=True)
