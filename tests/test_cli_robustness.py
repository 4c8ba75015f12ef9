"""``advforge robustness``: the dry run writes the cascade's report; bad input is one line."""

from __future__ import annotations

import json

import pytest
from cli_helpers import cli_fails

from advforge.cli import main


def test_robustness_dry_run_writes_the_report(model_dir, tmp_path, capsys):
    out = tmp_path / "rob"
    code = main(["robustness", "--dry-run", "--quiet", "--model", str(model_dir),
                 "--eps", "0.3", "--limit", "16", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    for key in ("clean_accuracy", "robust_accuracy", "attacks", "n", "eps", "norm", "seed"):
        assert key in report
    assert (report["n"], report["eps"], report["norm"], report["seed"]) == (16, 0.3, "linf", 0)
    steps = report["attacks"]
    assert [s["attack"] for s in steps] == ["apgd_ce", "apgd_t", "square"]
    for step in steps:
        assert {"robust_accuracy", "added", "seconds", "hyper"} <= set(step)
    assert steps[0]["hyper"]["steps"] == 3 and steps[2]["hyper"]["n_queries"] == 20
    assert steps[-1]["robust_accuracy"] == report["robust_accuracy"] <= report["clean_accuracy"]
    n_correct = round(report["clean_accuracy"] * 16)
    assert sum(s["added"] for s in steps) == n_correct - round(report["robust_accuracy"] * 16)
    assert "| worst case |" in (out / "report.md").read_text() and "| apgd_t |" in printed


def test_robustness_l2_runs_the_l2_set_and_says_there_is_no_square(model_dir, tmp_path,
                                                                   capsys):
    out = tmp_path / "l2"
    assert main(["robustness", "--dry-run", "--quiet", "--model", str(model_dir), "--norm",
                 "l2", "--eps", "1.5", "--limit", "8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [s["attack"] for s in report["attacks"]] == ["apgd_ce_l2", "apgd_t_l2"]
    assert report["attacks"][0]["hyper"]["eps"] == 1.5
    assert any("Square" in note for note in report["notes"])


@pytest.mark.parametrize("extra, mentions", [
    (["--eps", "0"], "--eps"),
    (["--eps", "1.5"], "exceeds 1"),
    ([], "--eps is required"),
    (["--eps", "0.3", "--attacks", "nosuch"], "unknown attack"),
    (["--eps", "0.3", "--attacks", "cw_l2"], "linf ball"),
    (["--norm", "l2", "--eps", "0.5", "--attacks", "square"], "l2 ball"),
    (["--eps", "0.3", "--attacks", "apgd_ce:eps=0.1"], "drop eps"),
    (["--eps", "0.3", "--limit", "0"], "--limit"),
])
def test_robustness_bad_input_is_one_line(extra, mentions, tmp_path, capsys):
    out = tmp_path / "never"
    cli_fails(["robustness", "--dry-run", "--quiet", *extra, "--out", str(out)], capsys,
              mentions=mentions)
    assert not out.exists()


def test_robustness_refuses_an_unwritable_out_first(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cli_fails(["robustness", "--dry-run", "--eps", "0.3", "--attacks", "nosuch", "--out",
               str(blocker)], capsys, mentions="--out")
