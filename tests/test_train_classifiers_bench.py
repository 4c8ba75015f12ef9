"""benchmarks/train_classifiers.py --record: a run the default command trained is recorded
(its accuracy, time and weights hash) without training again; a run trained with any other
setting is refused, because the table files every row under the default command."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from advforge.cli import build_parser
from advforge.cli.model_commands import build_train_config
from advforge.generative.identity import weights_hash
from advforge.models import create, load_model
from advforge.models.io import save_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import train_classifiers  # noqa: E402


def _run(tmp_path: Path, name: str, **changed) -> Path:
    """A lenet5 run directory whose recorded training settings are the default command's,
    with ``changed`` applied."""
    run = tmp_path / name
    argv = ["train-classifier", "--arch", "lenet5", "--dataset", "mnist5k", "--out", str(run)]
    cfg, _ = build_train_config(build_parser().parse_args(argv))
    settings = {**dataclasses.asdict(cfg), **changed}
    model = create("lenet5", num_classes=10, in_channels=1, input_size=28)
    save_model(model, run, arch="lenet5", arch_kwargs={}, dataset="mnist5k", seed=0,
               metrics={"test_accuracy": 0.9, "train_seconds": 12.5, "total_seconds": 14.0,
                        "epochs": settings["epochs"], "torch_threads": 1},
               extra={"train_config": json.loads(json.dumps(settings))})
    return run


def test_a_default_run_is_recorded_and_another_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_classifiers, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    good = _run(tmp_path, "good")
    assert train_classifiers.main(["--record", str(good)]) == 0
    rows = json.loads((tmp_path / "results" / "classifiers_mnist5k.json").read_text())["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert row["command"] == "advforge train-classifier --arch lenet5 --dataset mnist5k"
    assert (row["test_accuracy"], row["train_seconds"], row["threads"]) == (0.9, 12.5, 1)
    assert row["model_sha256"] == weights_hash(load_model(good).eval())

    bad = _run(tmp_path, "bad", epochs=1)
    with pytest.raises(SystemExit, match=r"other settings .*\(epochs\)"):
        train_classifiers.main(["--record", str(bad)])
    with pytest.raises(SystemExit, match="no config.json"):
        train_classifiers.main(["--record", str(tmp_path / "missing")])
