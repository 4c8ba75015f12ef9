"""The bfloat16 fast path of a trained generator against its float32 reference path: the eps
bound holds exactly on every output, the outputs agree within bfloat16's rounding, the shipped
AI-GAN's success agrees within 0.5 points on a fixed set, and a run records (and serves) the
precision its held-out success was measured in."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from gen_helpers import tiny_aigan
from toy_task import make_toy_batch

import advforge
from advforge import pretrained
from advforge.errors import CheckpointError, InputError
from advforge.generative import GeneratorAttack, fit_aigan, load_attacker
from advforge.generative.nets import build_generator
from advforge.utils.precision import bfloat16_supported, effective_precision, lower_precision

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not bfloat16_supported(CPU),
                                reason="this CPU runs bfloat16 only by emulation")


def _random_generator(arch: str, eps: float) -> GeneratorAttack:
    torch.manual_seed(0)
    g = build_generator(arch, 1, 28, 10, eps, ch=8, template=True).eval()
    for m in g.modules():  # non-trivial eval statistics, so folding and CBN are exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():  # a large output, so many pixels sit on the eps walls
        g.out.weight.mul_(1000.0)
    return GeneratorAttack(g)


@needs_bf16
@pytest.mark.parametrize("arch", ["unet", "shuffle"])
@pytest.mark.parametrize("eps", [0.3, 0.1, 8 / 255])
def test_bf16_keeps_the_float32_eps_bound_exactly(arch, eps):
    attack = dataclasses.replace(_random_generator(arch, eps), precision="bfloat16")
    x = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    t = (y + 1) % 10
    with torch.no_grad(), lower_precision("bfloat16", CPU):
        delta = attack.generator(x, t)
    assert delta.dtype == torch.float32
    bound = torch.tensor(eps, dtype=torch.float32)  # eps as float32 stores it
    assert bool((delta.abs() <= bound).all())  # exact: no tolerance
    x_adv = attack(None, x, y, target=t)
    assert x_adv.dtype == torch.float32
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    # x_adv - x re-rounds by at most one float32 ulp at 1.0; bfloat16's eps would be 0.30078
    assert float((x_adv - x).abs().max()) <= float(bound) + 2.0**-23
    # and the walls are reached: outputs there sit at eps, not beyond
    assert float((x_adv - x).abs().max()) == pytest.approx(eps, abs=1e-6)


@needs_bf16
@pytest.mark.parametrize("arch", ["unet", "shuffle"])
def test_bf16_outputs_agree_with_float32_within_rounding(arch):
    ref = _random_generator(arch, 0.3)
    fast = dataclasses.replace(ref, precision="bfloat16")
    x = torch.rand(32, 1, 28, 28)
    y = torch.randint(0, 10, (32,))
    t = (y + 3) % 10
    a, b = ref(None, x, y, target=t), fast(None, x, y, target=t)
    assert not torch.equal(a, b)  # the fast path really ran in bfloat16
    # a few bfloat16 roundings through the network: well under 5% of eps per pixel on average
    assert float((a - b).abs().mean()) < 0.05 * 0.3


@needs_bf16
def test_shipped_aigan_success_agrees_within_half_a_point():
    model = advforge.load_model(pretrained.path("mnist5k_model_b")).eval()
    attack = load_attacker(pretrained.path("mnist5k_model_b_aigan"))
    test = advforge.data.load("mnist5k").test
    x, y = test.x[:120], test.y[:120]
    with torch.no_grad():
        keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    xs = x.repeat(9, 1, 1, 1)
    ys = y.repeat(9)
    ts = (ys + torch.arange(1, 10).repeat_interleave(x.shape[0])) % 10  # every target
    rates = {}
    for precision in ("float32", "bfloat16"):
        forged = dataclasses.replace(attack, precision=precision)(None, xs, ys, target=ts)
        with torch.no_grad():
            rates[precision] = float((model(forged).argmax(1) == ts).float().mean())
    assert abs(rates["float32"] - rates["bfloat16"]) <= 0.005, rates


def test_unknown_precision_is_refused():
    with pytest.raises(InputError, match="precision"):
        dataclasses.replace(_random_generator("shuffle", 0.3), precision="float16")
    with pytest.raises(InputError, match="inference_precision"):
        tiny_aigan(inference_precision="int4")


def test_a_device_without_native_bf16_falls_back_to_float32(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert effective_precision("bfloat16", CPU) == "float32"
    ref = _random_generator("shuffle", 0.3)
    fast = dataclasses.replace(ref, precision="bfloat16")
    x, y = torch.rand(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)
    assert torch.equal(ref(None, x, y, target=3), fast(None, x, y, target=3))


@pytest.mark.parametrize("asked", ["auto", "float32"])
def test_a_run_records_and_serves_its_checked_precision(asked, toy_model, tmp_path):
    train, val = make_toy_batch(32, seed=1), make_toy_batch(16, seed=2)
    metrics = fit_aigan(tiny_aigan(inference_precision=asked), toy_model, train, val=val,
                        run_dir=tmp_path, dataset="toy")
    record = metrics["inference"]
    served = json.loads((tmp_path / "config.json").read_text())["inference"]["precision"]
    assert served == record["precision"] == load_attacker(tmp_path).precision
    if asked == "float32" or not bfloat16_supported(CPU):
        assert served == "float32"
        return
    # auto: bfloat16 only within 0.5 points of float32 on the same held-out pairs, and the
    # reported success is then bfloat16's
    gap = record["success_float32"] - record["success_bfloat16"]
    assert (served == "bfloat16") == (gap <= 0.005)
    assert metrics["success"] == record[f"success_{served}"]


def test_auto_without_a_heldout_check_serves_float32(toy_model, tmp_path):
    metrics = fit_aigan(tiny_aigan(eval_size=0), toy_model, make_toy_batch(32, seed=1),
                        run_dir=tmp_path, dataset="toy")
    assert metrics["inference"]["precision"] == "float32"


def test_a_corrupt_precision_entry_is_a_checkpoint_error(toy_model, tmp_path):
    fit_aigan(tiny_aigan(), toy_model, make_toy_batch(32, seed=1), run_dir=tmp_path,
              dataset="toy")
    path = tmp_path / "config.json"
    cfg = json.loads(path.read_text())
    cfg["inference"] = {"precision": "fp8"}
    path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="precision"):
        load_attacker(tmp_path)
