"""benchmarks/aigan_tables.py end to end on a tiny untrained target: every part runs, writes
its figures to JSON, prints the tables, reuses finished parts, and bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from advforge.data import load
from advforge.models import create
from advforge.models.io import save_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "aigan_tables.py"
TRANSFER = SCRIPT.with_name("substitute_transfer.py")
SELECTION = SCRIPT.with_name("substitute_selection.py")
TINY = ["--n-eval", "12", "--train-limit", "48", "--epochs", "1", "--advgan-epochs", "1",
        "--pgd-steps", "2", "--timing-n", "12", "--transfer-n", "6", "--cw-n", "2",
        "--cw-steps", "5", "--repeats", "1", "--timing-processes", "2",
        "--threads", "1", "--gan", "g_ch=4", "--gan", "d_ch=4", "--gan", "batch_size=16",
        "--gan", "pretrain_epochs=1", "--gan", "attacker_steps=1",
        "--gan", "distill_warmup_epochs=1", "--gan", "local_select_images=16",
        "--advgan", "g_ch=4", "--advgan", "d_ch=4", "--advgan", "batch_size=16",
        "--default-flag=--epochs=1", "--default-flag=--limit-train=48",
        "--default-flag=--g-ch=4", "--default-flag=--eval-size=12", "--skip-compile"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory) -> Path:
    """Model B after 60 Adam steps on mnist5k: most test images right, so rates are defined."""
    torch.manual_seed(0)
    model = create("model_b", num_classes=10, in_channels=1, input_size=28)
    train = load("mnist5k").train
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(60):
        xb, yb = train.x[i * 64 % 3968 :][:64], train.y[i * 64 % 3968 :][:64]
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    return save_model(model, tmp_path_factory.mktemp("target") / "model_b", arch="model_b",
                      arch_kwargs={}, dataset="mnist5k", seed=0, metrics={})


def test_every_part_runs_and_is_kept(tmp_path, target_dir):
    out, work = tmp_path / "tables.json", tmp_path / "work"
    setting = f"mnist5k:{target_dir}:0.3"
    proc = _run("--settings", setting, "--out", str(out), "--work", str(work), *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    res = next(iter(report["results"].values()))
    assert res["arch"] == "model_b" and res["eps"] == 0.3 and res["train_images"] == 48
    assert (res["pgd100"]["loss"], res["pgd100_ce"]["loss"]) == ("cw", "ce")
    for part in ("whitebox", "pgd100", "pgd100_ce", "advgan"):
        row = res[part]
        assert 0 <= row["success"] <= 1 and row["pairs"] > 0 and row["linf_mean"] <= 0.3 + 1e-6
        assert set(row["per_target"]) <= {str(c) for c in range(10)}
    assert res["whitebox"]["train_seconds"] > 0 and res["advgan"]["train_seconds"] > 0
    for part in ("whitebox", "advgan", "blackbox"):  # per-part provenance
        assert res[part]["config"]["train_images"] == 48
    timing = res["timing"]
    assert timing["n"] == 12 and timing["cw_l2"]["extrapolated"]
    assert timing["aigan_over_pgd20"] == timing["aigan"]["seconds"] / timing["pgd20"]["seconds"]
    bb = res["blackbox"]
    baselines = {"fgsm", "pgd", "pgd_ce", "cw"}
    assert bb["target_queries"] > 0 and set(bb["transfer_from_local"]) == baselines
    assert set(bb["transfer_untargeted_from_local"]) == baselines
    for row in bb["transfer_untargeted_from_local"].values():
        assert 0 <= row["success"] <= 1 and 0 < row["images"] <= 6
    assert bb["transfer_images"] == 6
    split = bb["split"]
    assert split["pairs"] > 0 and all(0 <= split[k] <= 1 for k in (
        "success_on_local", "success_on_target", "target_hit_given_local_hit"))
    assert "also hit the target" in proc.stdout
    # the default local_arch=auto chose f_d among the candidates and recorded why
    chosen = bb["local_selection"]
    assert chosen["arch"] in chosen["scores"] and len(chosen["scores"]) == 4
    assert set(chosen["success"]) == set(chosen["scores"])
    assert chosen["scores"][chosen["arch"]] == max(chosen["scores"].values())
    assert bb["config"]["local_arch"] == "auto"
    assert f"local_arch=auto: {chosen['arch']} (target margin / targeted transfer" in proc.stdout
    cross = bb["whitebox_generator_on_local"]  # the white-box part ran first in the same run
    assert cross["pairs"] > 0 and all(0 <= cross[k] <= 1 for k in (
        "success_on_local", "success_on_target"))
    assert "the white-box AI-GAN's examples" in proc.stdout
    assert "untargeted misclassification" in proc.stdout
    assert "AI-GAN vs cross-entropy PGD-100" in proc.stdout
    assert {"no_pretrain", "no_attacker"} <= set(res["ablation"])
    assert (work / next(iter(report["results"])) / "aigan_blackbox" / "local_model"
            / "model.safetensors").is_file()
    assert "Table II/III" in proc.stdout and "Table VI" in proc.stdout
    t6 = res["table6"]  # the default generator, trained by the CLI with its flags
    assert t6["config"]["g_arch"] == "shuffle" and t6["config"]["epochs"] == 1
    assert t6["default"]["pairs"] == t6["pgd20"]["pairs"] == t6["pgd100"]["pairs"] > 0
    assert t6["inference"]["precision"] in ("float32", "bfloat16")
    runs = t6["timing"]["processes"]  # timed in two fresh processes, the medians reported
    assert t6["timing"]["threads"] == report["threads"]  # the part keeps its own count
    assert len(runs) == 2 and t6["timing"]["default_over_pgd20"] == pytest.approx(
        sum(r["seconds"]["default"] / r["seconds"]["pgd20"] for r in runs) / 2)
    # PGD-20 costs 20 forward-backward passes of Model B per example, whatever the load
    assert t6["flops_per_example"]["pgd20"] > 20 * t6["flops_per_example"]["default"] > 0
    assert "MFLOPs per example" in proc.stdout
    assert t6["compiled"] is None and "default_compiled" not in t6["timing"]  # --skip-compile
    levers = t6["levers"]  # timed in turns in the same two processes, medians of their own
    assert {"reference", "chunks", "bfloat16", "channels_last", "fold_batchnorm", "served",
            "paper_unet_reference"} == set(levers["seconds"])
    assert levers["processes"] == 2 and levers["in_turns"] and levers["compile"] is None
    assert levers["speedup"]["reference"] == 1.0
    assert levers["speedup"]["served"] == pytest.approx(
        sum(r["levers"]["reference"] / r["levers"]["served"] for r in runs) / 2)
    assert t6["extra_flags"] and t6["train_seconds"] > 0
    assert "Table VI, default generator" in proc.stdout and "weakest targets" in proc.stdout
    assert "paper AI-GAN" in proc.stdout and "98.50%" in proc.stdout  # mnist: paper beside
    # the cached default generator is reused only while it is what the defaults train
    changed = _run("--settings", setting, "--out", str(out), "--work", str(work), *TINY,
                   "--parts", "table6", "--fresh", "--default-flag=--kappa=7")
    assert changed.returncode == 2 and "other settings than today's default" in changed.stderr
    assert "kappa: 5.0 -> 7.0" in changed.stderr

    # benchmarks/substitute_transfer.py on the generators just trained: its success on the
    # target is the whitebox part's, pair for pair (the same images, targets and rule).
    runs = work / next(iter(report["results"]))
    figures = tmp_path / "transfer.json"
    transfer = subprocess.run(
        [sys.executable, str(TRANSFER), "--target", str(target_dir), "--dataset", "mnist5k",
         "--n-eval", "12", "--threads", "1", "--generator", f"white={runs / 'aigan'}",
         "--generator", f"black={runs / 'aigan_blackbox'}",
         "--model", f"distilled={runs / 'aigan_blackbox' / 'local_model'}",
         "--out", str(figures)], capture_output=True, text=True, timeout=600)
    assert transfer.returncode == 0, transfer.stderr[-2000:]
    rows = json.loads(figures.read_text())["results"]
    assert rows["white"]["pairs"] == res["whitebox"]["pairs"]
    assert rows["white"]["success_on_target"] == pytest.approx(res["whitebox"]["success"])
    for row in rows.values():
        assert all(0 <= v <= 1 for v in row["distilled"].values())
    bad = subprocess.run([sys.executable, str(TRANSFER), "--target", str(target_dir),
                          "--dataset", "mnist5k", "--generator", f"white={runs / 'aigan'}",
                          "--model", "no-equals-sign"], capture_output=True, text=True)
    assert bad.returncode == 2 and "NAME=RUN_DIR" in bad.stderr

    again = _run("--settings", setting, "--out", str(out), "--work", str(work),
                 "--parts", "whitebox", *TINY)
    assert again.returncode == 0 and "whitebox: kept" in again.stdout

    # Parts are compared pair by pair: a run on other test images may not sit beside them.
    before = out.read_text()
    other = _run("--settings", setting, "--out", str(out), "--work", str(work),
                 "--parts", "whitebox", "--fresh", *TINY, "--n-eval", "10")
    assert other.returncode == 2 and "pgd100 (12 test images)" in other.stderr
    assert "whitebox (12" not in other.stderr  # the part being recomputed is not stale
    assert out.read_text() == before
    assert all(res[part]["n_eval"] == 12 for part in ("whitebox", "pgd100", "timing"))

    # ... nor a run against another target model (say, the target retrained since): its
    # kept parts are refused, and so are the attackers cached in --work for the old one.
    assert all(res[part]["model_sha256"] == res["model_sha256"] for part in ("whitebox", "pgd100"))
    retrained = _retrained(target_dir, tmp_path / "retrained")
    moved = f"mnist5k:{retrained}:0.3"  # same setting name: the same --out entry and --work
    stale = _run("--settings", moved, "--out", str(out), "--work", str(work),
                 "--parts", "pgd100", "--fresh", *TINY)
    assert stale.returncode == 2 and "whitebox (another target model)" in stale.stderr
    assert out.read_text() == before
    cached = _run("--settings", moved, "--out", str(tmp_path / "new.json"), "--work", str(work),
                  "--parts", "whitebox", *TINY)
    assert cached.returncode == 2 and "trained against another target model" in cached.stderr

    # --extend resumes the cached run to the larger --epochs and the part records it.
    longer = _run("--settings", setting, "--out", str(out), "--work", str(work),
                  "--parts", "whitebox", "--fresh", "--extend", *TINY, "--epochs", "2")
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "extending AI-GAN 'aigan' from 1 to 2 epochs" in longer.stdout
    config = next(iter(json.loads(out.read_text())["results"].values()))["whitebox"]["config"]
    assert config["epochs"] == 2
    assert config["extensions"] == [{"after_epoch": 1, "from_epochs": 1, "to_epochs": 2}]


@pytest.mark.parametrize("args, message", [
    (["--settings", "nope"], "unknown setting"),
    (["--parts", "table9"], "unknown part"),
    (["--settings", "mnist5k:/no/such/run:0.3"], "no trained model"),
    (["--gan", "query_sample=16"], "'query_sample' is not a field of AIGANConfig"),
    (["--advgan", "kappa"], "--advgan takes KEY=VALUE"),
    (["--advgan", "g_ema=0.9"], "'g_ema' is not a field of AdvGANConfig"),
    (["--timing-processes", "0"], "expected an integer >= 1, got 0"),
])
def test_bad_input_exits_2(tmp_path, args, message):
    proc = _run(*args, "--out", str(tmp_path / "t.json"), "--work", str(tmp_path / "w"))
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "t.json").exists()


def _tables_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("aigan_tables", SCRIPT)
    tables = importlib.util.module_from_spec(spec)
    sys.modules["aigan_tables"] = tables  # its dataclasses look their module up by name
    spec.loader.exec_module(tables)
    return tables


def _retrained(target_dir: Path, parent: Path) -> Path:
    """The target after one more Adam step: another model under the same run-dir name."""
    from advforge.models import load_model

    model = load_model(target_dir)
    train = load("mnist5k").train
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    F.cross_entropy(model(train.x[:64]), train.y[:64]).backward()
    opt.step()
    return save_model(model.eval(), parent / target_dir.name, arch="model_b", arch_kwargs={},
                      dataset="mnist5k", seed=0, metrics={})


def test_kept_parts_that_cannot_stand_beside_a_run_are_named():
    tables = _tables_module()
    kept = tables.kept_parts_not_comparable
    # pgd100 predates the per-part record, so the setting's n_eval (500) stands for it
    res = {"n_eval": 500, "pgd100": {}, "advgan": {"n_eval": 500},
           "whitebox": {"n_eval": 1000}, "timing": {"n_eval": 1000}}
    assert kept(res, {"whitebox"}, 1000, "h", 0.9) == [
        "pgd100 (500 test images)", "advgan (500 test images)"]
    assert kept(res, {"whitebox"}, 500, "h", 0.9) == ["timing (1000 test images)"]
    assert kept(res, set(tables.PART_FNS), 7, "h", 0.9) == []
    # Another target model: by its weights hash, or, for parts older than the hash, by a
    # clean accuracy on the same images that the current model does not have.
    res = {"n_eval": 500, "whitebox": {"model_sha256": "h", "clean_accuracy": 0.9},
           "pgd100": {"model_sha256": "other", "clean_accuracy": 0.9},
           "advgan": {"clean_accuracy": 0.924}, "timing": {}}
    assert kept(res, set(), 500, "h", 0.9) == [
        "pgd100 (another target model)", "advgan (another target model)"]
    # the hash decides where there is one; the clean accuracy only stands in where not
    assert kept(res, set(), 500, "h", 0.924) == ["pgd100 (another target model)"]


def test_flops_per_example_counts_products_forward_and_backward():
    cost = _cost_module()
    layer = torch.nn.Linear(30, 10)
    x = torch.rand(4, 30, requires_grad=True)
    # forward: 2 * 30 * 10 per example; the gradient to x alone: as many again
    assert cost.flops_per_example(lambda: layer(x), 4) == 600
    assert cost.flops_per_example(
        lambda: torch.autograd.grad(layer(x).sum(), x), 4) == 600 + 600
    order = []
    spread = cost.interleaved_seconds({"a": lambda: order.append("a"),
                                       "b": lambda: order.append("b")}, 3)
    assert order == ["a", "b"] * 4  # a warm-up call each, then three rounds in turns
    assert set(spread) == {"a", "b"} and spread["a"]["min"] <= spread["a"]["median"]
    with cost.other_load() as load:
        sum(range(10_000))
    assert load["cores"] is None or load["cores"] >= 0


def _cost_module():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from aigan_bench import cost
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return cost


def test_config_difference_treats_a_field_a_run_predates_as_its_default():
    tables = _tables_module()
    old = {"epochs": 20, "black_box": False}  # written before distill_temperature existed
    new = {"epochs": 20, "black_box": True, "distill_temperature": 1.0}
    assert tables.config_difference(old, new, "black_box") == ""
    assert tables.config_difference(old, {**new, "extensions": []}, "black_box") == ""
    changed = {**new, "distill_temperature": 4.0, "epochs": 40}
    assert tables.config_difference(old, changed, "black_box") == (
        "distill_temperature: 1.0 -> 4.0, epochs: 20 -> 40")


def test_gan_overrides_reach_ai_gan_only(tmp_path, target_dir):
    """--gan reshapes AI-GAN (here into the fast shuffle generator, for Table VI); AdvGAN, the
    baseline, keeps Xiao et al.'s generator unless --advgan says otherwise."""
    out = tmp_path / "tables.json"
    proc = _run("--settings", f"mnist5k:{target_dir}:0.3", "--out", str(out), "--work",
                str(tmp_path / "work"), "--parts", "whitebox,advgan", *TINY,
                "--gan", "g_arch=shuffle")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = next(iter(json.loads(out.read_text())["results"].values()))
    assert res["whitebox"]["config"]["g_arch"] == "shuffle"
    assert res["advgan"]["config"]["g_arch"] == "unet" and res["advgan"]["config"]["g_ch"] == 4


def test_a_cached_attacker_trained_with_other_settings_is_refused(tmp_path, target_dir):
    """An attacker cached in --work under other --gan / --advgan settings is not served as
    this run's: the run exits 2 naming the field. Fewer AI-GAN epochs than --epochs is the
    one allowed difference (reused as it is, or resumed with --extend)."""
    out, work = tmp_path / "tables.json", tmp_path / "work"
    common = ["--settings", f"mnist5k:{target_dir}:0.3", "--out", str(out), "--work",
              str(work), *TINY]
    proc = _run(*common, "--parts", "whitebox,advgan")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _run(*common, "--parts", "whitebox", "--fresh", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]  # the 1-epoch cache, reused as it is
    proc = _run(*common, "--parts", "whitebox", "--fresh", "--gan", "g_ch=6")
    assert proc.returncode == 2 and "other settings" in proc.stderr
    assert "g_ch: 4 -> 6" in proc.stderr
    proc = _run(*common, "--parts", "advgan", "--fresh", "--advgan-epochs", "2")
    assert proc.returncode == 2 and "epochs: 1 -> 2" in proc.stderr


def test_substitute_selection_scores_every_candidate(tmp_path, target_dir):
    """benchmarks/substitute_selection.py runs the selection a black-box run makes and writes
    each candidate's score; the chosen one has the best."""
    out = tmp_path / "selection.json"
    proc = subprocess.run(
        [sys.executable, str(SELECTION), "--dataset", "mnist5k", "--target", f"b={target_dir}",
         "--train-limit", "48", "--threads", "1", "--gan", "distill_warmup_epochs=1",
         "--gan", "local_select_images=16", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    row = report["results"]["b"]
    assert report["train_images"] == 48 and report["eps"] == 0.3
    assert set(row["scores"]) == set(row["success"]) == {"model_c", "model_a", "model_b",
                                                          "lenet5"}
    assert row["scores"][row["arch"]] == max(row["scores"].values())
    assert all(0 <= v <= 1 for v in row["success"].values())
    assert all(v <= 20.0 for v in row["scores"].values())  # margins capped at G's kappa
    assert row["queries"] == 48 + 4 * 16  # one round of clean queries, then 16 per candidate
    assert f"-> {row['arch']}" in proc.stdout
    bad = subprocess.run([sys.executable, str(SELECTION), "--dataset", "mnist5k", "--target",
                          "nameless"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "NAME=RUN_DIR" in bad.stderr
