"""Checkpoints: safetensors round trip, config.json contents, resume, load_attacker errors."""

from __future__ import annotations

import json

import pytest
import torch
from gen_helpers import NUM_CLASSES, tiny_advgan, tiny_aigan
from toy_task import make_toy_batch

import advforge
from advforge.errors import CheckpointError, InputError
from advforge.generative import (
    AIGANTrainer,
    GeneratorAttack,
    RoutedGeneratorAttack,
    fit_advgan,
    fit_aigan,
    load_attacker,
)
from advforge.generative.aigan import train_aigan
from advforge.generative.identity import weights_hash

TRAIN, VAL = make_toy_batch(48, seed=3), make_toy_batch(16, seed=9)


def _x_y_t():
    x, y = make_toy_batch(12, seed=11)
    return x, y, (y + 1) % NUM_CLASSES


@pytest.mark.parametrize("g_arch", ["unet", "shuffle"])
def test_aigan_round_trip_gives_identical_outputs(toy_model, tmp_path, g_arch):
    trainer = AIGANTrainer.for_data(tiny_aigan(pretrain=True, g_arch=g_arch), toy_model, TRAIN)
    metrics = train_aigan(trainer, TRAIN, val=VAL, run_dir=tmp_path, dataset="toy",
                          target_run_dir="runs/toy")
    attack = load_attacker(tmp_path)
    assert isinstance(attack, GeneratorAttack) and attack.kind == "aigan"
    assert type(attack.generator) is type(trainer.G)
    x, y, t = _x_y_t()
    expected = GeneratorAttack(trainer.G, 0.3)(toy_model, x, y, target=t)
    assert torch.equal(attack(toy_model, x, y, target=t), expected)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["kind"] == "aigan" and cfg["eps"] == 0.3 and cfg["dataset"] == "toy"
    assert cfg["num_classes"] == NUM_CLASSES and cfg["in_channels"] == 1
    assert cfg["image_size"] == [12, 12] and cfg["version"] == advforge.__version__
    assert cfg["target_model"]["weights_sha256"] == weights_hash(toy_model)
    assert cfg["target_model"]["run_dir"] == "runs/toy"
    assert cfg["training"]["pretrain"] is True and cfg["seed"] == 0
    assert cfg["metrics"]["final"]["success"] == metrics["final"]["success"]
    assert cfg["metrics"]["train_images"] == TRAIN[0].shape[0]  # provenance of the run
    assert {p.name for p in tmp_path.iterdir()} == {
        "generator.safetensors", "config.json", "train_state.safetensors"}


class _Crash(Exception):
    pass


def _crash_in_epoch(n: int):
    def progress(info):
        if info.get("phase") == "aigan" and info.get("epoch") == n:
            raise _Crash

    return progress


@pytest.mark.parametrize(("target_focus", "g_ema"), [(0.0, 0.0), (0.5, 0.0), (0.0, 0.9)])
def test_resume_after_a_crash_reaches_the_same_weights(toy_model, tmp_path, target_focus,
                                                       g_ema):
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    # With target_focus the sampler's running counts must come back too, or the resumed
    # run would draw other targets and end with other weights; with g_ema the average
    # and its update count (the checkpoint holds the average).
    cfg = tiny_aigan(epochs=3, pretrain=True, target_focus=target_focus, g_ema=g_ema)
    fit_aigan(cfg, toy_model, TRAIN, run_dir=straight)
    with pytest.raises(_Crash):  # dies during the second epoch; epoch 1 is on disk
        fit_aigan(cfg, toy_model, TRAIN, run_dir=crashed, progress=_crash_in_epoch(1))
    assert not (crashed / "generator.safetensors").exists()
    resumed = fit_aigan(cfg, toy_model, TRAIN, run_dir=crashed, resume=True)
    assert resumed["epochs"] == 3 and len(resumed["history"]) == 3
    assert "pretrain" in resumed["seconds"]  # pre-training ran once, before the crash
    a, b = load_attacker(straight), load_attacker(crashed)
    for key, value in a.generator.state_dict().items():
        assert torch.equal(value, b.generator.state_dict()[key]), key


def test_resume_extends_a_finished_run(toy_model, tmp_path):
    first = fit_aigan(tiny_aigan(epochs=1), toy_model, TRAIN, run_dir=tmp_path)
    second = fit_aigan(tiny_aigan(epochs=2), toy_model, TRAIN, run_dir=tmp_path, resume=True)
    assert second["epochs"] == 2 and len(second["history"]) == 2
    assert second["history"][0] == first["history"][0]  # epoch 1 kept, not redone
    # The extension restarts the cosine schedule half-way, and the metrics say so.
    assert first["extensions"] == []
    assert second["extensions"] == [{"after_epoch": 1, "from_epochs": 1, "to_epochs": 2}]
    lr = tiny_aigan().training.lr
    assert first["history"][0]["lr"] > lr / 2  # the first half of a cosine from lr to 0
    assert 0 < second["history"][1]["lr"] < lr / 2  # the second half of the 2-epoch cosine
    saved = json.loads((tmp_path / "config.json").read_text())["metrics"]
    assert saved["extensions"] == second["extensions"]


def test_resume_rejects_fewer_epochs_than_already_trained(toy_model, tmp_path):
    fit_aigan(tiny_aigan(epochs=2), toy_model, TRAIN, run_dir=tmp_path)
    with pytest.raises(InputError, match="already trained 2"):
        fit_aigan(tiny_aigan(epochs=1), toy_model, TRAIN, run_dir=tmp_path, resume=True)


def test_resume_rejects_a_changed_config(toy_model, tmp_path):
    fit_aigan(tiny_aigan(), toy_model, TRAIN, run_dir=tmp_path)
    with pytest.raises(InputError, match="eps"):
        fit_aigan(tiny_aigan(eps=0.2), toy_model, TRAIN, run_dir=tmp_path, resume=True)


def test_corrupt_training_state_raises(toy_model, tmp_path):
    fit_aigan(tiny_aigan(), toy_model, TRAIN, run_dir=tmp_path)
    (tmp_path / "train_state.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        fit_aigan(tiny_aigan(epochs=2), toy_model, TRAIN, run_dir=tmp_path, resume=True)


@pytest.mark.parametrize("damage", [
    "missing_dir", "missing_config", "corrupt_json", "wrong_kind", "missing_weights",
    "corrupt_weights", "wrong_shape", "bad_generator_entry", "unknown_generator_class",
    "other_generator_class"])
def test_load_attacker_errors(toy_model, tmp_path, damage):
    run = tmp_path / "run"
    fit_aigan(tiny_aigan(eval_size=0), toy_model, TRAIN, run_dir=run)
    cfg_path, weights = run / "config.json", run / "generator.safetensors"
    cfg = json.loads(cfg_path.read_text())
    if damage == "missing_dir":
        run = tmp_path / "nowhere"
    elif damage == "missing_config":
        cfg_path.unlink()
    elif damage == "corrupt_json":
        cfg_path.write_text("{ not json")
    elif damage == "wrong_kind":
        cfg_path.write_text(json.dumps({**cfg, "kind": "classifier"}))
    elif damage == "missing_weights":
        weights.unlink()
    elif damage == "corrupt_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "wrong_shape":
        cfg["generator"]["kwargs"]["ch"] = 8
        cfg_path.write_text(json.dumps(cfg))
    elif damage == "bad_generator_entry":
        cfg["generator"]["kwargs"]["bogus"] = 1
        cfg_path.write_text(json.dumps(cfg))
    elif damage in ("unknown_generator_class", "other_generator_class"):
        cfg["generator"]["class"] = ("Pickle" if damage == "unknown_generator_class"
                                     else "ShuffleGenerator")  # weights of a U-Net
        cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError):
        load_attacker(run)


def test_advgan_single_target_round_trip(toy_model, tmp_path):
    metrics = fit_advgan(tiny_advgan(target=2), toy_model, TRAIN, val=VAL, run_dir=tmp_path)
    attack = load_attacker(tmp_path)
    assert attack.kind == "advgan" and attack.fixed_target == 2
    assert list(metrics["final"]["per_target"]) == [2]
    x, y, _ = _x_y_t()
    keep = y != 2
    x_adv = attack(toy_model, x[keep], y[keep])
    assert (x_adv - x[keep]).abs().max() <= 0.3 + 1e-6


def test_advgan_all_targets_trains_one_generator_per_class(toy_model, tmp_path):
    metrics = fit_advgan(tiny_advgan(target="all"), toy_model, TRAIN, val=VAL, run_dir=tmp_path)
    assert set(metrics["per_target_seconds"]) == set(range(NUM_CLASSES))
    assert metrics["train_seconds"] == pytest.approx(sum(metrics["per_target_seconds"].values()))
    assert metrics["train_images"] == TRAIN[0].shape[0]
    for t, m in metrics["per_target"].items():  # each generator skips inputs already of class t
        assert m["train_images"] == int((TRAIN[1] != t).sum())
    attack = load_attacker(tmp_path)
    assert isinstance(attack, RoutedGeneratorAttack) and sorted(attack.attacks) == [0, 1, 2, 3]
    x, y, t = _x_y_t()
    x_adv = attack(toy_model, x, y, target=t)
    for c in range(NUM_CLASSES):
        m = t == c
        single = load_attacker(tmp_path / f"target_{c}")
        assert single.fixed_target == c
        assert torch.equal(x_adv[m], single(toy_model, x[m], y[m]))
    # resuming a finished run retrains nothing and keeps the recorded times
    again = fit_advgan(tiny_advgan(target="all"), toy_model, TRAIN, val=VAL, run_dir=tmp_path,
                       resume=True)
    assert again["per_target_seconds"] == {int(k): v for k, v in
                                           metrics["per_target_seconds"].items()}


def test_top_level_load_attacker_and_success_key(toy_model, tmp_path):
    metrics = fit_aigan(tiny_aigan(), toy_model, TRAIN, val=VAL, run_dir=tmp_path)
    assert metrics["success"] == metrics["final"]["success"]
    assert isinstance(advforge.load_attacker(tmp_path), GeneratorAttack)


def _drop_from_saved_config(run_dir, key):
    """Rewrite a run's training state as a version without config field ``key`` wrote it."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = run_dir / "train_state.safetensors"
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    doc = json.loads(metadata["state"])
    del doc["meta"]["config"][key]
    save_file(load_file(str(path)), str(path), metadata={**metadata, "state": json.dumps(doc)})


def test_resume_accepts_a_config_field_added_since_at_its_default(toy_model, tmp_path):
    fit_aigan(tiny_aigan(epochs=1), toy_model, TRAIN, run_dir=tmp_path)
    _drop_from_saved_config(tmp_path, "distill_temperature")
    resumed = fit_aigan(tiny_aigan(epochs=2), toy_model, TRAIN, run_dir=tmp_path, resume=True)
    assert resumed["epochs"] == 2
    _drop_from_saved_config(tmp_path, "distill_temperature")
    with pytest.raises(InputError, match="distill_temperature"):  # not the default: a change
        fit_aigan(tiny_aigan(epochs=3, distill_temperature=2.0), toy_model, TRAIN,
                  run_dir=tmp_path, resume=True)


@pytest.mark.parametrize("kind", ["aigan", "advgan"])
def test_resume_refuses_a_retrained_target(toy_model, tmp_path, kind):
    # A target retrained in place (same run dir, other weights) must not get a generator
    # trained half against each: the resume is refused and nothing is overwritten.
    fit, cfg = (fit_aigan, tiny_aigan) if kind == "aigan" else (fit_advgan, tiny_advgan)
    fit(cfg(epochs=1), toy_model, TRAIN, run_dir=tmp_path)
    state = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with torch.no_grad():
        next(toy_model.parameters()).add_(0.01)
    with pytest.raises(InputError, match="trained against another target model"):
        fit(cfg(epochs=2), toy_model, TRAIN, run_dir=tmp_path, resume=True)
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == state


def test_a_config_saved_before_the_probes_existed_reads_as_probes_off():
    """``distill_probe_steps`` came with default 5; a run saved before it had no probes, so
    resume checks and benchmark caches must read its absence as 0, not as today's 5."""
    from advforge.generative.aigan import AIGANConfig
    from advforge.generative.config import with_config_defaults

    old = {"eps": 0.3, "black_box": True}  # predates distill_probe_steps and local_shift
    read = with_config_defaults(AIGANConfig, old)
    assert read["distill_probe_steps"] == 0 and AIGANConfig().black_box.distill_probe_steps == 5
    assert read["local_shift"] == 0 and read["kappa"] == AIGANConfig().objective.kappa
    assert read["inference_precision"] == "float32"  # runs before it forged in float32
    assert with_config_defaults(AIGANConfig, {**old, "distill_probe_steps": 5})[
        "distill_probe_steps"] == 5  # a recorded value always wins


def test_weights_hash_covers_batchnorm_counters_and_tells_weights_apart():
    """A model with BatchNorm (0-d num_batches_tracked) hashes; any weight change shows."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    before = weights_hash(net)
    assert before == weights_hash(net) and len(before) == 64
    with torch.no_grad():
        net[1].running_mean[0] += 1e-3
    moved = weights_hash(net)
    assert moved != before
    net[1].num_batches_tracked += 1
    assert weights_hash(net) not in {before, moved}
