"""Seeded tiny AI-GAN (white-box and black-box) and AdvGAN runs give the outputs recorded
here: the generator's images on a fixed batch and targets, and the last epoch's losses.

A refactoring of the training code that keeps its behaviour keeps these numbers; a change
of objective, step order, RNG use or initialisation moves them. Record new constants only
for an intended change of behaviour, and say so in the commit.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from gen_helpers import tiny_advgan, tiny_aigan, tiny_local_model
from toy_task import make_toy_batch

from advforge.generative import fit_advgan, fit_aigan, load_attacker

RUNS = {
    "aigan_white": dict(
        sum=501.01852425932884,
        values=[0.7279269695281982, 0.3335210978984833, 0.6729736328125, 0.6721752285957336],
        history={"d_adv_acc": 0.046875, "d_class_adv": 1.8535301089286804,
                 "d_class_pert": 1.5017802715301514, "d_source": 1.5709315836429596,
                 "g_disc_class": 1.53709077835083, "g_gan": 1.2352416515350342,
                 "g_loss": 150.01517868041992, "g_target": 14.835456132888794,
                 "heldout_success": 0.0, "lr": 0.000496582563484269, "train_success": 0.0}),
    "aigan_black": dict(
        sum=499.57509899139404,
        values=[0.7330296635627747, 0.318112313747406, 0.6909478306770325, 0.6845073699951172],
        history={"d_adv_acc": 0.25, "d_class_adv": 1.7569749057292938,
                 "d_class_pert": 1.6424092948436737, "d_source": 1.817706972360611,
                 "distill_agree": 0.3750000074505806, "distill_kl": 1.3833767175674438,
                 "g_disc_class": 1.61216139793396, "g_gan": 1.5851667523384094,
                 "g_loss": 289.62034606933594, "g_target": 0.5100613459944725,
                 "heldout_success": 0.0, "lr": 0.00125, "query_grad_norm": 193.9513168334961,
                 "train_success": 0.125}),
    "advgan": dict(
        sum=505.7174734175205,
        values=[0.7923924922943115, 0.31080976128578186, 0.7272597551345825, 0.7023917436599731],
        history={"d_gan": 1.6601582368214924, "g_adv": 20.854714075724285,
                 "g_gan": 1.392408013343811, "g_hinge": 0.0, "g_loss": 209.9395497639974,
                 "heldout_success": 0.0, "lr": 0.0005446581987385206, "train_success": 0.0}),
}


def _configs():
    return {
        # pre-training, the failure-focused target draw and G's weight average all on
        "aigan_white": (fit_aigan, tiny_aigan(epochs=2, pretrain=True, target_focus=0.5,
                                              g_ema=0.5), {}),
        # distillation with probes, the NES query gradient and input diversity all on
        "aigan_black": (fit_aigan, tiny_aigan(black_box=True, distill_probe_steps=2,
                                              query_samples=2, local_shift=1),
                        {"local_model": tiny_local_model()}),
        "advgan": (fit_advgan, tiny_advgan(epochs=2), {}),
    }


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the constants were recorded on one thread
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_seeded_run_reproduces_recorded_outputs(name, toy_model, tmp_path, one_thread):
    fit, cfg, extra = _configs()[name]
    train, val = make_toy_batch(64, seed=1), make_toy_batch(32, seed=2)
    metrics = fit(cfg, toy_model, train, val=val, run_dir=tmp_path, dataset="toy", **extra)
    # the float32 reference path (the served precision is pinned in test_aigan_precision)
    attack = dataclasses.replace(load_attacker(tmp_path), precision="float32")
    x, y = make_toy_batch(8, seed=5)
    if name == "advgan":  # the generator of class 1, on inputs of class 0
        x_adv = attack(toy_model, x, torch.zeros_like(y), target=1)
    else:
        x_adv = attack(toy_model, x, y, target=(y + 1) % 4)
    want = RUNS[name]
    flat = x_adv.flatten()
    assert float(x_adv.double().sum()) == pytest.approx(want["sum"], rel=1e-6)
    assert [float(flat[i]) for i in (0, 100, 577, 1100)] == pytest.approx(want["values"],
                                                                          abs=1e-6)
    last = metrics["history"][-1]
    assert sorted(last) == sorted(want["history"])
    for key, value in want["history"].items():
        assert last[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
