"""benchmarks/generator_tables.py --smoke: the whole pipeline (models, generator attacks,
co-trained adversarial networks) writes every row and column of Tables 5, 10 and 6 with
accuracies in [0, 1], the commands that made the models, and the paper's CIFAR-10 figures;
a rerun reuses what is done; bad options fail before anything is trained."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import generator_tables  # noqa: E402

VARIANTS = ["ae8", "ae64", "gauss", "label"]
TABLE6_COLUMNS = ["clean", "fgs", "pgd10", "FGS(A')", "PGD(A')", "FGS(B')", "PGD(B')"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[list[str], Path, dict]:
    tmp = tmp_path_factory.mktemp("gentables")
    argv = ["--smoke", "--dataset", "mnist5k", "--targets", "A,B",
            "--work", str(tmp / "work"), "--out", str(tmp / "out.json")]
    assert generator_tables.main(argv) == 0
    return argv, tmp, json.loads((tmp / "out.json").read_text())


def _check_table(table: dict, rows: list[str], columns: list[str]) -> None:
    assert table["columns"] == columns
    assert list(table["rows"]) == rows
    for row in table["rows"].values():
        assert list(row) == columns
        assert all(0.0 <= value <= 1.0 for value in row.values())


def test_every_row_and_column_is_measured(smoke) -> None:
    _, _, record = smoke
    _check_table(record["table5"], ["original", *VARIANTS], ["A", "A'", "B'", "C'"])
    _check_table(record["table10"], ["original", *VARIANTS], ["B", "A'", "B'", "C'"])
    _check_table(record["table6"], VARIANTS, TABLE6_COLUMNS)
    assert "table11" not in record
    assert record["variants"]["ae64"]["generator"] == "g1"
    assert record["variants"]["label"]["generator"] == "g3"


def test_commands_and_paper_figures_are_recorded(smoke) -> None:
    _, _, record = smoke
    for name in ["A", "A'", "B'", "C'", "B", *[f"C-{v}" for v in VARIANTS]]:
        assert record["models"][name]["command"].startswith("advforge ")
    assert "--generator g2" in record["models"]["C-gauss"]["command"]
    assert set(record["generators"]) == {f"{t}/{v}" for t in "AB" for v in VARIANTS}
    assert "train_generator_attack(A, 'g1'" in record["generators"]["A/ae8"]["call"]
    paper = record["paper"]
    assert "CIFAR-10" in paper["note"]
    assert paper["table5"]["rows"]["ae64"]["A"] == 6.08
    assert paper["table10"]["rows"]["label"]["B"] == 70.15
    assert paper["table6"]["rows"]["gauss"]["pgd10"] == 35.16


def test_a_rerun_reuses_the_trained_generators(smoke) -> None:
    argv, tmp, record = smoke
    saved = tmp / "work" / "mnist5k-d1-eps0.1-smoke" / "G-A-ae8" / "generator.safetensors"
    before = saved.stat().st_mtime_ns
    assert generator_tables.main([*argv, "--fresh", "--tables", "5", "--targets", "A"]) == 0
    assert saved.stat().st_mtime_ns == before
    again = json.loads((tmp / "out.json").read_text())
    assert again["table5"]["rows"] == record["table5"]["rows"]


def test_a_run_for_one_variant_keeps_the_others_labels(smoke) -> None:
    argv, tmp, _ = smoke
    assert generator_tables.main([*argv, "--tables", "6", "--variants", "label"]) == 0
    again = json.loads((tmp / "out.json").read_text())
    assert list(again["variants"]) == VARIANTS
    assert again["variants"]["ae64"]["width"] == generator_tables.SMOKE_WIDTH["ae64"]
    assert generator_tables.main([*argv, "--tables", "6", "--targets", "A"]) == 0
    again = json.loads((tmp / "out.json").read_text())
    assert again["paper"]["table10"]["rows"]["label"]["B"] == 70.15  # target B's figures kept


@pytest.mark.parametrize("bad", [["--variants", "ae9"], ["--targets", "D"],
                                 ["--tables", "7"], ["--g-epochs", "0"],
                                 ["--dataset", "no-such-set"]])
def test_bad_options_fail_before_training(tmp_path, capsys, bad) -> None:
    out = tmp_path / "out.json"
    code = generator_tables.main(["--smoke", "--dataset", "mnist5k", "--work",
                                  str(tmp_path / "work"), "--out", str(out), *bad])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not out.exists() and not (tmp_path / "work").exists()
