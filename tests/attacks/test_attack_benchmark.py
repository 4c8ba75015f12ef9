"""benchmarks/attack_speed.py end to end on tiny untrained run dirs, and its missing-model exit."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from advforge.models import create
from advforge.models.io import save_model

HAVE_TORCHATTACKS = importlib.util.find_spec("torchattacks") is not None
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "attack_speed.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def test_missing_model_exits_2_and_says_how_to_train(tmp_path):
    proc = _run("--model-a", str(tmp_path / "nope"), "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 2
    assert "advforge train-classifier" in proc.stderr and "nope" in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_benchmark_runs_and_writes_json(tmp_path):
    dirs = {}
    for arch in ("model_a", "model_b"):
        model = create(arch, num_classes=10, in_channels=1, input_size=28)
        dirs[arch] = save_model(
            model, tmp_path / arch, arch=arch, arch_kwargs={}, dataset="mnist5k", seed=0,
            metrics={},
        )
    out = tmp_path / "speed.json"
    proc = _run(
        "--model-a", str(dirs["model_a"]), "--model-b", str(dirs["model_b"]), "--n", "6",
        "--repeats", "1", "--attacks", "fgsm,pgd40", "--threads", "1", "--out", str(out),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["n_images"] == 6 and report["threads"] == 1
    for arch in ("model_a", "model_b"):
        row = report["results"][arch]["pgd40"]
        assert row["hyper"]["steps"] == 40 and row["ours"]["seconds_median"] > 0
        rate = row["ours"]["success_rate"]
        assert (rate is None) == (row["n_correct"] == 0)  # untrained: maybe nothing is right
        assert rate is None or 0 <= rate <= 1
        if HAVE_TORCHATTACKS:  # a side-by-side row is judged against the targets
            assert "theirs" in row and row["checks"]
        else:  # ours alone: nothing to compare, so no verdict may be claimed
            assert "theirs" not in row and "time_ratio" not in row
            assert "torchattacks is not installed" in proc.stderr
    assert "pgd40" in proc.stdout
