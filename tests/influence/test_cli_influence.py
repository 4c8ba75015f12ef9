"""``advforge influence``: prints the FI of one image, writes the plot and influence.json, and
refuses bad input in one line before any work."""

from __future__ import annotations

import json

import pytest
from cli_helpers import cli_fails

from advforge.cli import main
from advforge.cli.runtime import DRY_RUN_DATA
from advforge.data import load
from advforge.influence import influence
from advforge.models import load_model


def test_influence_prints_plots_and_writes_json(model_dir, tmp_path, capsys):
    out, plot = tmp_path / "fi", tmp_path / "fi.png"
    code = main(["influence", "--dry-run", "--model", str(model_dir), "--index", "2",
                 "--target", "4", "--plot", str(plot), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "influence.json").read_text())
    x = load("synthetic", **DRY_RUN_DATA).test.x[2:3]
    y = load("synthetic", **DRY_RUN_DATA).test.y[2:3]
    want = influence(load_model(model_dir), x, y, target=4)
    assert report["image_fi"] == pytest.approx(float(want.image[0]), rel=1e-6)
    assert (report["index"], report["target"], report["objective_class"]) == (2, 4, 4)
    assert report["true_label"] == int(y[0]) and len(report["probabilities"]) == 10
    rows = report["top_pixels"]
    assert [r["rank"] for r in rows] == list(range(1, 11))
    fis = [r["fi"] for r in rows]
    assert fis == sorted(fis, reverse=True) and fis[0] == pytest.approx(
        float(want.pixel.max()), rel=1e-6)
    assert rows[0]["index"] == rows[0]["row"] * 28 + rows[0]["col"]
    assert report["settings"]["index"] == 2 and report["meta"]["dataset"] == "synthetic"
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert (out / "influence.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "target_maps.png").read_bytes().startswith(b"\x89PNG")
    assert "image-level FI of -log p(4)" in printed and "top 10 pixels" in printed


def test_influence_without_outputs_only_prints(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["influence", "--dry-run", "--model", str(model_dir), "--index", "0",
                 "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "image-level FI of -log p(" in printed and "top 3 pixels" in printed
    assert list(tmp_path.iterdir()) == []


def test_survey_ranks_the_split_and_draws_the_pictures(model_dir, tmp_path, capsys):
    out = tmp_path / "survey"
    assert main(["influence", "--dry-run", "--model", str(model_dir), "--split", "both",
                 "--limit", "40", "--top", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "survey.json").read_text())
    assert report["splits"] == ["train", "test"]
    splits = load("synthetic", **DRY_RUN_DATA)
    model = load_model(model_dir)
    for part in ("train", "test"):
        r = report["parts"][part]
        assert r["n"] == 40 and sum(map(sum, r["confusion"])) == 40
        top = r["most_vulnerable"]
        assert len(top) == 4 and [v["image_fi"] for v in top] == sorted(
            (v["image_fi"] for v in top), reverse=True)
        x, y = getattr(splits, part).x[:40], getattr(splits, part).y[:40]
        want = influence(model, x, y).image
        correct = model(x).argmax(1) == y
        assert top[0]["image_fi"] == pytest.approx(float(want[correct].max()), rel=1e-6)
        assert r["confidence_relation"]["n"] == 40
    for name in ("manhattan.png", "confusion.png", "confidence.png", "target_maps.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    assert "most vulnerable correctly classified images of test" in printed


@pytest.mark.parametrize(("flags", "mentions"), [
    (["--split", "both", "--index", "1"], "--split both"),
    (["--target", "3"], "give --index too"),
    (["--limit", "0"], "--limit must be > 0"),
    (["--index", "64"], "--index 64 is out of range"),
    (["--index", "-1"], "--index must be >= 0"),
    (["--index", "0", "--target", "10"], "--target 10 is out of range for 10 classes"),
    (["--index", "0", "--plot", "fi.jpg"], ".png"),
    (["--top", "0"], "--top must be > 0"),
])
def test_bad_input_is_one_line_and_writes_nothing(model_dir, tmp_path, capsys, monkeypatch,
                                                  flags, mentions):
    monkeypatch.chdir(tmp_path)
    cli_fails(["influence", "--dry-run", "--model", str(model_dir), "--out", "out", *flags],
              capsys, mentions=mentions)
    assert not (tmp_path / "out" / "influence.json").exists()


def test_missing_model_and_existing_plot_are_refused(model_dir, tmp_path, capsys):
    cli_fails(["influence", "--dataset", "mnist5k"], capsys, mentions="--model is required")
    plot = tmp_path / "fi.png"
    plot.write_bytes(b"mine")
    cli_fails(["influence", "--dry-run", "--model", str(model_dir), "--index", "0", "--plot",
               str(plot)], capsys, mentions="already exists")
    assert plot.read_bytes() == b"mine"


def test_influence_help_lists_its_flags(capsys):
    with pytest.raises(SystemExit):
        main(["influence", "--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--dataset", "--index", "--target", "--plot", "--out", "--top"):
        assert flag in text
