"""benchmarks/defense_tables.py and benchmarks/advnet_schedule.py end to end on tiny data:
every model is trained by its advforge command, every cell is measured, and a second run
keeps what the first measured."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import advnet_schedule  # noqa: E402
import defense_tables  # noqa: E402
import tables  # noqa: E402


def test_defense_tables_smoke_measures_every_row_and_keeps_it(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    argv = ["--smoke", "--work", str(tmp_path / "work"), "--out", str(out), "--n", "16",
            "--rows", "A,C,EAT", "--surrogates", "A'"]
    assert defense_tables.main(argv) == 0
    record = json.loads(out.read_text())
    assert set(record["rows"]) == {"A", "C", "EAT"}
    for name, row in record["rows"].items():
        for column in ("clean", "fgs", "pgd10", "cascade"):
            assert 0.0 <= row[column] <= 1.0, (name, column)
        assert set(row["blackbox"]) == {"FGS(A')", "PGD(A')"}
        # the cascade's worst case is never above any of its attacks' robust accuracy
        assert row["cascade"] <= min(s["robust_accuracy"] for s in row["cascade_steps"])
        assert record["models"][name]["command"].startswith("advforge ")
    assert "--static-models" in record["models"]["EAT"]["command"]
    mtime = out.stat().st_mtime_ns
    assert defense_tables.main(argv) == 0  # nothing new: every row is kept as it was
    assert json.loads(out.read_text())["rows"] == record["rows"]
    assert out.stat().st_mtime_ns >= mtime


def test_a_row_is_kept_only_while_its_models_are_unchanged() -> None:
    row = {"clean": 0.9, "cascade": 0.5, "model_sha256": "m1",
           "blackbox": {"FGS(A')": 0.0, "PGD(A')": 0.1, "FGS(B')": 0.7},
           "surrogate_sha256": {"A'": "a1", "B'": "b1"}}
    assert defense_tables.still_valid(row, "m1", {"A'": "a1", "B'": "b1"}) == row
    assert defense_tables.still_valid(row, "m2", {"A'": "a1", "B'": "b1"}) is None
    assert defense_tables.still_valid(None, "m1", {}) is None
    # a retrained surrogate loses its cells; a surrogate not given this time keeps them
    kept = defense_tables.still_valid(row, "m1", {"A'": "a2"})
    assert kept["blackbox"] == {"FGS(B')": 0.7} and kept["cascade"] == 0.5
    kept = defense_tables.still_valid(row, "m1", {"A'": "a1"})
    assert kept["blackbox"] == {"FGS(A')": 0.0, "PGD(A')": 0.1, "FGS(B')": 0.7}


def test_a_new_surrogate_adds_its_columns_beside_the_kept_ones() -> None:
    """Crafting on C' alone (``--surrogates "C'"``) keeps the A' / B' cells of a row whose
    model is unchanged, and measures only C's."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    kept = {"cascade": 0.25, "cascade_steps": [], "blackbox": {"FGS(A')": 0.5, "PGD(B')": 0.4}}
    args = argparse.Namespace(eps=0.1, smoke=True, square_queries=10)
    row = defense_tables.evaluate_row(args, model, x, y, {"FGS(C')": x}, kept)
    clean = defense_tables.accuracy(model, x, y)
    assert row["blackbox"] == {"FGS(A')": 0.5, "PGD(B')": 0.4, "FGS(C')": clean}
    assert row["cascade"] == 0.25  # kept, not re-run


def test_advnet_schedule_smoke_records_each_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    argv = ["--smoke", "--epochs", "2", "--every", "1", "--n", "16", "--work",
            str(tmp_path / "work"), "--out", str(out), "--variant", "each=--g-updates 1",
            "--variant", "half=--g-updates 2"]
    assert advnet_schedule.main(argv) == 0
    record = json.loads(out.read_text())
    variants = record["variants"]
    assert variants["half"]["flags"] == ["--g-updates", "2"]
    # 64 training images are one mini-batch per epoch: D updates on every batch, or every 2nd
    assert [c["d_updates"] for c in variants["each"]["checkpoints"]] == [1, 2]
    assert [c["d_updates"] for c in variants["half"]["checkpoints"]] == [1, 1]
    for entry in variants.values():
        assert [c["epoch"] for c in entry["checkpoints"]] == [1, 2]
        for c in entry["checkpoints"]:
            assert all(0.0 <= c[k] <= 1.0 for k in ("clean", "g_noise", "fgs", "pgd10"))
    assert advnet_schedule.main(argv) == 0  # every checkpoint is kept, nothing re-trained
    assert json.loads(out.read_text())["variants"] == variants
    with pytest.raises(SystemExit, match="was measured with flags"):
        advnet_schedule.main([*argv[:-1], "half=--g-updates 3"])


def test_advnet_schedule_table_is_generated_from_its_json(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert tables.advnet_schedule() == tables.NOTHING_YET
    assert tables.ADVNET_SCHEDULE not in tables.cited_files()
    record = {"eps": 0.3, "n": 500, "variants": {"paper": {
        "flags": ["--g-updates", "5"], "checkpoints": [
            {"epoch": 5, "d_updates": 63, "train_seconds": 355.8, "clean": 0.898,
             "g_noise": 0.612, "fgs": 0.326, "pgd10": 0.126}]}}}
    (tmp_path / tables.ADVNET_SCHEDULE).write_text(json.dumps(record))
    row = tables.advnet_schedule().splitlines()[-1]
    assert row == ("| paper: `--g-updates 5` | 5 | 63 | 356 s | 89.80% | 61.20% | 32.60% | "
                   "12.60% | `advnet_schedule_mnist5k-d1.json` |")
    assert tables.ADVNET_SCHEDULE in tables.cited_files()


def test_audit_table_sets_each_models_verdict_side_by_side(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    verdicts = {"PGD-AT Model B": True, "adv-net D1": False}
    for name, file in tables.AUDITS.items():
        report = {"n": 500, "audit": [
            {"name": "restarts_converged", "passed": verdicts[name], "detail": f"{name} x"},
            {"name": "short_pgd", "passed": None, "detail": "PGD-10"}]}
        (tmp_path / file).write_text(json.dumps(report))
    lines = tables.robustness_audit().splitlines()
    assert lines[2] == ("| `restarts_converged` | pass: PGD-AT Model B x | "
                        "**FLAG**: adv-net D1 x |")
    assert lines[3] == "| `short_pgd` | info: PGD-10 | info: PGD-10 |"
