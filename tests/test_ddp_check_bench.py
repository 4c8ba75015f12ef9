"""benchmarks/ddp_check.py end to end on a tiny run: both trainings (one process, torchrun with
two ranks) finish, and the JSON holds each one's clean and PGD-10 accuracy and its command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ddp_check.py"


def test_one_process_and_torchrun_runs_are_scored(tmp_path):
    out = tmp_path / "ddp.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "1", "--n", "16", "--threads", "1",
         "--work", str(tmp_path / "work"), "--out", str(out), "--extra=--limit-train=64",
         "--extra=--steps=1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    assert set(record["results"]) == {"ranks1", "ranks2"}
    for name, row in record["results"].items():
        assert 0 <= row["pgd10"] <= row["clean"] <= 1 and row["wall_seconds"] > 0
        assert ("torchrun --nproc_per_node=2" in row["command"]) == (name == "ranks2")
        assert (tmp_path / "work" / name / "model.safetensors").is_file()
