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
    assert "audit: " in printed


def test_robustness_dry_run_writes_the_curve_and_the_audit(model_dir, tmp_path):
    out = tmp_path / "rob"
    assert main(["robustness", "--dry-run", "--quiet", "--model", str(model_dir), "--eps",
                 "0.3", "--limit", "16", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    curve = report["curve"]
    # The default budgets: eps x 0.25, 0.5, 1, 1.5, 2, after the clean point.
    assert [p["eps"] for p in curve] == pytest.approx([0, 0.075, 0.15, 0.3, 0.45, 0.6])
    assert curve[0]["robust_accuracy"] == report["clean_accuracy"]
    accs = [p["robust_accuracy"] for p in curve]
    assert all(a >= b for a, b in zip(accs, accs[1:], strict=False))
    assert curve[3]["cascade_accuracy"] == report["robust_accuracy"]  # the cascade, reused
    assert (out / "curve.png").read_bytes().startswith(b"\x89PNG")
    audit = {c["name"]: c for c in report["audit"]}
    assert {"iterative_beats_single_step", "steps_converged", "restarts_converged",
            "large_eps_accuracy", "square_not_stronger", "transfer_not_stronger",
            "noise_not_stronger", "converged_pgd_near_cascade", "short_pgd"} == set(audit)
    for check in audit.values():
        assert {"passed", "figures", "detail"} <= set(check)
    assert audit["transfer_not_stronger"]["passed"] is None
    md = (out / "report.md").read_text()
    assert md.splitlines()[2].startswith("**audit: ") and report["audit_summary"] in md
    assert "](curve.png)" in md and "`steps_converged`" in md


def test_robustness_curve_and_audit_can_be_turned_off(model_dir, tmp_path):
    out = tmp_path / "off"
    assert main(["robustness", "--dry-run", "--quiet", "--model", str(model_dir), "--eps",
                 "0.3", "--limit", "8", "--curve", "none", "--no-audit", "--out",
                 str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["curve"] is None and report["audit"] is None
    assert not (out / "curve.png").exists() and "audit:" not in (out / "report.md").read_text()


def test_robustness_surrogate_runs_the_transfer_check(model_dir, tmp_path):
    out = tmp_path / "sur"
    assert main(["robustness", "--dry-run", "--quiet", "--model", str(model_dir), "--eps",
                 "0.3", "--limit", "8", "--curve", "0.1", "--surrogate", str(model_dir),
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [p["eps"] for p in report["curve"]] == [0.0, 0.1, 0.3]
    transfer = next(c for c in report["audit"] if c["name"] == "transfer_not_stronger")
    assert transfer["passed"] is not None and "robust_accuracy" in transfer["figures"]


def test_robustness_l2_runs_the_l2_set_with_square_l2(model_dir, tmp_path):
    out = tmp_path / "l2"
    assert main(["robustness", "--dry-run", "--quiet", "--model", str(model_dir), "--norm",
                 "l2", "--eps", "1.5", "--limit", "8", "--curve", "none", "--out",
                 str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [s["attack"] for s in report["attacks"]] == ["apgd_ce_l2", "apgd_t_l2", "square_l2"]
    assert report["attacks"][0]["hyper"]["eps"] == 1.5
    assert report["attacks"][2]["hyper"]["n_queries"] == 20 and not report["notes"]
    square = next(c for c in report["audit"] if c["name"] == "square_not_stronger")
    assert square["passed"] is not None  # the L2 audit has its gradient-free check too
    large = next(c for c in report["audit"] if c["name"] == "large_eps_accuracy")
    assert large["figures"]["eps"] == 14.0  # 0.5 sqrt(28 * 28)


@pytest.mark.parametrize("extra, mentions", [
    (["--eps", "0"], "--eps"),
    (["--eps", "1.5"], "exceeds 1"),
    ([], "--eps is required"),
    (["--eps", "0.3", "--attacks", "nosuch"], "unknown attack"),
    (["--eps", "0.3", "--attacks", "cw_l2"], "linf ball"),
    (["--norm", "l2", "--eps", "0.5", "--attacks", "square"], "l2 ball"),
    (["--eps", "0.3", "--attacks", "apgd_ce:eps=0.1"], "drop eps"),
    (["--eps", "0.3", "--limit", "0"], "--limit"),
    (["--eps", "0.3", "--curve=-0.1"], "--curve"),
    (["--eps", "0.3", "--curve", "nan"], "--curve"),
    (["--eps", "0.3", "--curve", "0.1,1.5"], "exceeds 1"),
    (["--eps", "0.3", "--curve", "abc"], "--curve"),
    (["--eps", "0.3", "--curve-attacks", "cw_l2"], "linf ball"),
    (["--eps", "0.3", "--surrogate", "no/such/run"], "--surrogate"),
    (["--eps", "0.3", "--no-audit", "--surrogate", "."], "--no-audit"),
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
