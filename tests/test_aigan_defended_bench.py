"""benchmarks/aigan_defended.py (AI-GAN's Table V): the --smoke pipeline trains every model by
its advforge command, fills every (arch, defense, attack) cell with a rate, keeps measured
cells on a second run, and its JSON renders as the benchmarks README table."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import aigan_defended  # noqa: E402
import tables  # noqa: E402
from defended_cells import ATTACKS, Replay  # noqa: E402

from advforge.errors import AdvforgeError  # noqa: E402

# Model B only: its vanilla model and AI-GAN are shipped, so the smoke run trains the
# defenses and AdvGAN; Model A's commands are checked without running them (below).
ARCHS = ("model_b",)


def test_smoke_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One --smoke run for the shipped vanilla Model B, checked
    in turn (one test, so that pytest-xdist runs the pipeline once)."""
    argv = ["--smoke", "--archs", ",".join(ARCHS), "--work", str(tmp_path / "work"),
            "--out", str(tmp_path / "out.json")]
    assert aigan_defended.main(argv) == 0
    smoke = {"argv": argv, "out": tmp_path / "out.json", "record": json.loads(
        (tmp_path / "out.json").read_text())}
    for sub in ("retrained", "results"):
        (tmp_path / sub).mkdir()
    check_every_cell_is_a_rate_beside_the_paper(smoke)
    check_every_model_records_the_command_that_made_it(smoke)
    check_a_second_run_keeps_every_cell(smoke, capsys)
    check_a_retrained_defense_is_measured_again(smoke, tmp_path / "retrained", capsys)
    check_other_settings_are_refused_before_any_work(smoke, capsys)
    check_the_readme_table_renders_from_the_json(smoke, tmp_path / "results", monkeypatch)


def check_every_cell_is_a_rate_beside_the_paper(smoke: dict) -> None:
    record = smoke["record"]
    assert record["smoke"] and record["defenses"] == list(aigan_defended.DEFENSES)
    for arch in ARCHS:
        cells = record["results"][arch]["cells"]
        assert set(cells) == set(aigan_defended.DEFENSES)
        for defense, row in cells.items():
            assert set(row) == set(ATTACKS), (arch, defense)
            for cell in row.values():
                assert 0.0 <= cell["success"] <= 1.0
                assert 0.0 <= cell["success_on_vanilla"] <= 1.0
                assert cell["pairs"] <= cell["images"] * 9
            paper = record["paper"][arch][defense]
            assert set(paper) == {"fgsm", "cw_l2", "pgd", "advgan", "aigan"}
            assert all(0 < v < 100 for v in paper.values())
        for attack, info in record["results"][arch]["crafted"].items():
            assert 0.0 <= info["whitebox_success"] <= 1.0
            assert info["images"] == (record["cw_n"] if attack == "cw_l2" else record["n"])
    assert record["paper"]["model_b"]["fgsm-at"]["aigan"] == 20.94  # Table V, MNIST


def check_every_model_records_the_command_that_made_it(smoke: dict) -> None:
    b = smoke["record"]["results"]["model_b"]["models"]
    assert smoke["record"]["results"]["model_b"]["shipped"]
    assert b["vanilla"]["command"].startswith("advforge.pretrained mnist5k_model_b ")
    assert b["aigan"]["command"].startswith("advforge.pretrained mnist5k_model_b_aigan ")
    for arch, models, static in (("model_b", b, "model_a,model_c"),):
        assert models["advgan"]["command"].startswith("advforge train-attacker advgan --model ")
        assert models["advgan"]["generator"]["class"]  # the network its cells measure
        for defense in aigan_defended.DEFENSES:
            command = models[defense]["command"]
            assert command.startswith(
                f"advforge defend {defense} --arch {arch} --dataset mnist5k --seed 0 --out ")
            assert ("--static-archs " + static in command) == (defense == "ensemble-at")
            assert 0.0 <= models[defense]["clean_accuracy"] <= 1.0


def check_a_second_run_keeps_every_cell(smoke: dict, capsys: pytest.CaptureFixture) -> None:
    before = smoke["out"].read_text()
    capsys.readouterr()
    assert aigan_defended.main(smoke["argv"]) == 0
    printed = capsys.readouterr().out
    assert "training" not in printed and "crafting" not in printed
    assert smoke["out"].read_text() == before


def check_a_retrained_defense_is_measured_again(smoke: dict, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    record = json.loads(smoke["out"].read_text())
    record["results"]["model_b"]["models"]["pgd-at"]["sha256"] = "other weights"
    record["results"]["model_b"]["cells"]["pgd-at"]["fgsm"]["success"] = 0.5
    record["results"]["model_b"]["cells"]["fgsm-at"]["fgsm"]["success"] = 0.5
    out = tmp_path / "out.json"
    out.write_text(json.dumps(record))
    argv = [*smoke["argv"][:-1], str(out)]
    capsys.readouterr()
    assert aigan_defended.main(argv) == 0
    printed = capsys.readouterr().out
    assert "crafting" not in printed  # the examples come from the --work cache
    assert printed.count("[model_b] pgd-at ") == len(ATTACKS)
    assert "fgsm-at" not in printed
    record["results"]["model_b"]["models"]["fgsm-at"]["sha256"] = "other weights"
    out.write_text(json.dumps(record))
    capsys.readouterr()
    assert aigan_defended.main([*argv, "--defenses", "pgd-at"]) == 0  # fgsm-at left alone
    assert "[model_b] fgsm-at " not in capsys.readouterr().out
    again = json.loads(out.read_text())["results"]["model_b"]["cells"]
    before = smoke["record"]["results"]["model_b"]["cells"]["pgd-at"]
    for name, cell in again["pgd-at"].items():  # the same figures (but for the wall time)
        assert {**cell, "seconds": 0} == {**before[name], "seconds": 0}
    assert again["fgsm-at"]["fgsm"]["success"] == 0.5  # a kept cell is not measured again


def test_the_real_commands_add_only_seed_out_quiet_and_static_archs() -> None:
    args = aigan_defended.parse_args(["--work", "w"])
    shown = {name: " ".join(aigan_defended.command(args, "model_a", name))
             for name in ("vanilla", *aigan_defended.DEFENSES, "advgan", "aigan")}
    out = "--out w/mnist5k/model_a"
    assert shown["vanilla"] == (
        f"train-classifier --arch model_a --dataset mnist5k --seed 0 {out}/vanilla --quiet")
    assert shown["ensemble-at"] == (
        f"defend ensemble-at --arch model_a --dataset mnist5k --seed 0 {out}/ensemble-at "
        "--quiet --static-archs model_b,model_c")
    assert shown["pgd-at"].endswith(f"--seed 0 {out}/pgd-at --quiet")
    assert shown["aigan"] == (f"train-attacker aigan --model w/mnist5k/model_a/vanilla "
                              f"--dataset mnist5k --seed 0 {out}/aigan --quiet")
    assert str(aigan_defended.run_dir(args, "model_b", "aigan")).endswith(
        "mnist5k_model_b_aigan")  # --shipped is the default for Model B
    args = aigan_defended.parse_args(["--work", "w", "--no-shipped"])
    assert aigan_defended.run_dir(args, "model_b", "aigan") == Path("w/mnist5k/model_b/aigan")


def check_other_settings_are_refused_before_any_work(smoke: dict,
                                                    capsys: pytest.CaptureFixture) -> None:
    assert aigan_defended.main([*smoke["argv"], "--cw-n", "2"]) == 2
    assert "cw_n" in capsys.readouterr().err
    assert aigan_defended.main([*smoke["argv"], "--defenses", "pgd-at,madry"]) == 2
    assert "unknown defenses ['madry']" in capsys.readouterr().err


def check_the_readme_table_renders_from_the_json(smoke: dict, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(smoke["out"], tmp_path / tables.AIGAN_DEFENDED)
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    table = tables.aigan_defended()
    lines = table.splitlines()
    assert lines[0].startswith("| attack | Model B vanilla, white-box | Model B FGSM-AT (Adv.)")
    assert len(lines) == 2 + len(ATTACKS) + 1  # header, rule, attacks, clean accuracy
    aigan = next(line for line in lines if line.startswith("| AI-GAN |"))
    assert "(20.94%)" in aigan and "(13.12%)" in aigan  # Model B FGSM-AT, Model B PGD-AT
    assert tables.AIGAN_DEFENDED in tables.cited_files()


def test_replay_refuses_pairs_it_did_not_craft() -> None:
    x = torch.rand(4, 1, 2, 2)
    target = torch.tensor([1, 2, 3, 4])
    replay = Replay("fgsm", x, target, x + 0.1)
    assert torch.equal(replay(None, x[:2], None, target=target[:2]), x[:2] + 0.1)
    with pytest.raises(AdvforgeError, match="do not match"):
        replay(None, x[2:], None, target=torch.tensor([3, 5]))


def test_defense_tables_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert tables.defense_tables() == "_No committed measurement yet._"
    record = {"dataset": "mnist5k", "arch": "d1", "eps": 0.3, "n": 1000,
              "paper": {"B": {"clean": 98.70, "FGS(A')": 95.78}},
              "rows": {"B": {"clean": 0.982, "fgs": 0.95, "pgd10": 0.91, "cascade": 0.868,
                             "blackbox": {"FGS(A')": 0.96}}}}
    (tmp_path / "defense_tables_mnist5k-d1.json").write_text(json.dumps(record))
    (tmp_path / "defense_tables_mnist5k-d1-smoke.json").write_text(json.dumps(record))
    text = tables.defense_tables()
    assert text.count("| training |") == 1  # the smoke file is no table
    row = next(line for line in text.splitlines() if line.startswith("| PGD-AT (B) |"))
    assert row.startswith("| PGD-AT (B) | 98.20% (98.70%) | 95.00% | 91.00% | 86.80% | "
                          "96.00% (95.78%) | - |")
    assert tables.cited_files().count("defense_tables_mnist5k-d1.json") == 1
