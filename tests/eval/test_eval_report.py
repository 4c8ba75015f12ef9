"""write_report(): the three files, their content and their atomicity."""

from __future__ import annotations

import base64
import json
import re

import pytest
import torch

from advforge.errors import InputError
from advforge.eval import evaluate, markdown_table, sample_grid, write_report

K = 4  # classes of the code model (tests/eval/conftest.py)
NAMES = ["zero", "one", "two", "three"]


@pytest.fixture
def results(code_model, code_batch, set_code):
    x, y = code_batch
    aigan_like = evaluate(set_code(fail_towards=(2,)), code_model, x, y, targets="all",
                          attack_name="gen")  # fmt: skip
    perfect = evaluate(set_code(), code_model, x, y, targets="all", attack_name="opt")
    fixed = evaluate(set_code(), code_model, x, y, targets=1, attack_name="fixed")
    untargeted = evaluate(set_code(), code_model, x, y, attack_name="untargeted")
    return [aigan_like, perfect, fixed, untargeted]


@pytest.fixture
def written(tmp_path, results, code_model, code_batch, set_code):
    x, y = code_batch
    samples = {
        "gen": sample_grid(set_code(fail_towards=(2,)), code_model, x, y, K),
        "fixed": sample_grid(set_code(), code_model, x, y, K, targets=[1]),
    }
    meta = {"seed": 123, "dataset": "toy-codes", "model": "code_model", "device": "cpu"}
    paths = write_report(tmp_path / "rep", results, meta, samples=samples, class_names=NAMES)
    return paths, results


def test_writes_three_files_and_json_parses(written):
    paths, results = written
    assert set(paths) == {"json", "md", "html"}
    assert all(p.is_file() for p in paths.values())
    report = json.loads(paths["json"].read_text())
    meta = report["meta"]
    assert (meta["seed"], meta["dataset"], meta["model"]) == (123, "toy-codes", "code_model")
    assert meta["advforge_version"] and meta["torch_version"] == torch.__version__
    assert meta["class_names"] == NAMES
    assert [a["attack"] for a in report["attacks"]] == ["gen", "opt", "fixed", "untargeted"]
    gen = report["attacks"][0]
    assert gen["per_target"]["2"] == 0.0 and gen["n_evaluated"] == results[0].n_evaluated
    assert gen["mean_per_target"] == pytest.approx(0.75)
    assert not list(paths["json"].parent.glob(".*.tmp"))  # no temporary leftovers


def test_markdown_has_table_ii_layout(written):
    paths, results = written
    md = paths["md"].read_text()
    lines = md.splitlines()
    start = lines.index("## Per-target success (AI-GAN Table II layout)")
    header = lines[start + 2]
    # Columns: the targeted attacks only; rows: every target class, then Average, All pairs.
    assert header == "| target class | gen | opt | fixed |"
    rows = [ln for ln in lines[start + 4 : start + 4 + K + 2]]
    assert [r.split("|")[1].strip() for r in rows] == [
        "0 (zero)", "1 (one)", "2 (two)", "3 (three)", "Average", "All pairs",
    ]  # fmt: skip
    gen = results[0]
    n2 = gen.per_target_n[2]
    assert rows[2].startswith("| 2 (two) | 0.00% [0.0–") and f"n={n2}" in rows[2]
    assert rows[2].endswith("| – |")
    assert rows[1].split("|")[2].strip().startswith("100.00% [")
    assert rows[4].split("|")[2].strip() == "75.00%"  # unweighted mean over targets
    assert rows[5].split("|")[2].strip().startswith(f"{100 * gen.success_rate:.2f}% [")
    assert f"n={gen.n_evaluated}" in rows[5]
    assert "## Per-true-class success (untargeted attacks)" in md
    assert "classified correctly before the attack" in md
    assert "seed: 123" in md and "torch_version:" in md and "advforge_version:" in md
    assert "## Time for 1,000 attacks (AI-GAN Table VI)" in md


def test_markdown_table_summary_columns(results):
    table = markdown_table(results).splitlines()
    assert table[0] == ("| attack | targeted | norm | eps | clean acc | success [95% CI] n | "
                        "mean L2 | mean Linf | s/1000 |")
    assert len(table) == 2 + len(results)
    gen_success = f"{100 * results[0].success_rate:.2f}%"  # over all pairs, not per-target mean
    assert table[2].startswith(f"| gen | yes (all) | – | – | 100.00% | {gen_success} [")
    assert table[4].startswith("| fixed | yes (fixed 1) |")
    assert table[5].startswith("| untargeted | no | – | – | 100.00% | 100.00% [")


def test_html_is_self_contained(written):
    paths, results = written
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    # per-target bars + one confusion heatmap per attack + two sample grids
    assert len(pngs) == 1 + len(results) + 2
    for data in pngs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html and "<link" not in html
    for heading in ("Table II", "Fig. 4", "Fig. 3", "Table VI", "Distances", "Run and versions"):
        assert heading in html
    assert "classified correctly before the attack" in html


def test_html_escapes_names(tmp_path, results):
    results[0].attack = "<b>gen</b>"
    paths = write_report(tmp_path, results[:1], {"model": "m&m"})
    html = paths["html"].read_text()
    assert "&lt;b&gt;gen&lt;/b&gt;" in html and "<b>gen</b>" not in html
    assert "m&amp;m" in html


def test_nothing_written_on_bad_input(tmp_path, results):
    out = tmp_path / "rep"
    with pytest.raises(InputError, match="class_names"):
        write_report(out, results, {}, class_names=["a"])
    with pytest.raises(InputError, match="AttackResult"):
        write_report(out, [], {})
    with pytest.raises(InputError, match="AttackResult"):
        write_report(out, [results[0].to_dict()], {})
    assert not out.exists()


def test_meta_keys_always_present(tmp_path, results):
    paths = write_report(tmp_path, results[-1:], {})
    meta = json.loads(paths["json"].read_text())["meta"]
    assert {"seed", "dataset", "model", "device", "advforge_version", "torch_version",
            "created"} <= set(meta)
