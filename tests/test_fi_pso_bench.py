"""benchmarks/fi_pso_tables.py end to end on a slice of mnist5k with the shipped Model B:
every part lands in the JSON, the pictures exist, and tables.py renders every FI + PSO table
from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fi_pso_tables  # noqa: E402
import tables  # noqa: E402


def test_fi_pso_tables_smoke_writes_every_part(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "results" / "fi_pso_mnist5k_model_b.json"
    argv = ["--limit-train", "300", "--limit-test", "120", "--n", "3", "--particles", "6",
            "--iters", "2", "--speed-swarm", "6,2", "--work", str(tmp_path / "work"),
            "--out", str(out),
            "--fi-at-flags", "--epochs 1 --particles 4 --iters 2 --fi-img 0.001 "
                             "--p-target 0.001"]
    assert fi_pso_tables.main(argv) == 0
    record = json.loads(out.read_text())
    assert set(fi_pso_tables.PARTS) <= set(record)
    rows = record["fig4"]["rows"]
    names = [s["name"] for s in fi_pso_tables.fig4_settings()]
    assert [r["setting"]["name"] for r in rows] == names
    assert all(r["n"] == 3 and 0.0 <= r["met"] <= r["misclassified"] + 1e-12 for r in rows[:3])
    assert all(r["mean_l0"] <= r["setting"]["pixels"] for r in rows[:3])  # the L0 budget
    for r in rows[6:]:
        assert record["fig4"]["shown_label"] != r["setting"]["target"]
    relation = record["survey"]["test"]["confidence_relation"]
    assert relation["n"] == 120 and relation["spearman"] < -0.9  # FI falls as p(true) rises
    table3 = record["table3"]
    assert table3["table3"]["original"]["test"]["n"] == 120
    assert table3["algorithm2"]["test"]["n"] == 120
    for part in ("survey", "fig2", "fig4"):
        pictures = record[part].get("pictures", {"one": record[part].get("picture")})
        for name in pictures.values():
            path = Path(name) if Path(name).is_absolute() else fi_pso_tables.ROOT / name
            assert path.read_bytes().startswith(b"\x89PNG"), name
    # A setting run by itself gives the row the full run gave it and keeps the others'; a
    # subset at another --n keeps only its own rows.
    fig4_only = [*argv[:argv.index("--fi-at-flags")], "--parts", "fig4"]
    assert fi_pso_tables.main([*fig4_only, "--settings", "P_err=0.5,target=2"]) == 0
    def timeless(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds_per_image"} for r in rows]

    assert timeless(json.loads(out.read_text())["fig4"]["rows"]) == timeless(rows)
    n_at = fig4_only.index("--n") + 1
    fig4_only[n_at] = "2"
    assert fi_pso_tables.main([*fig4_only, "--settings", "m=3"]) == 0
    assert [(r["setting"]["name"], r["n"]) for r in json.loads(out.read_text())["fig4"]["rows"]
            ] == [("m=3", 2)]
    # rows kept from another model are not merged into a subset run's
    record = json.loads(out.read_text())
    record["fig4"]["model_sha256"] = "0" * 64
    out.write_text(json.dumps(record))
    fig4_only[n_at] = "3"
    assert fi_pso_tables.main([*fig4_only, "--settings", "m=1"]) == 0
    assert [r["setting"]["name"] for r in json.loads(out.read_text())["fig4"]["rows"]] == ["m=1"]
    assert fi_pso_tables.main(argv[:argv.index("--fi-at-flags")] + ["--parts", "fig4"]) == 0
    monkeypatch.setattr(tables, "RESULTS", out.parent)
    for name in ("fi-pso-measure", "fi-pso-fig4", "fi-pso-speed", "fi-pso-universality",
                 "fi-pso-table3"):
        text = tables.TABLES[name]()
        assert "fi_pso_mnist5k_model_b.json" in text, name
    # The finished fi-at run is read again under the same flags, and refused under others:
    # its figures would otherwise be filed under a command that did not make them.
    table3_only = [*argv[:argv.index("--fi-at-flags")], "--parts", "table3"]
    again = [*table3_only, "--fi-at-flags", argv[argv.index("--fi-at-flags") + 1]]
    assert fi_pso_tables.main(again) == 0
    other = [*table3_only, "--fi-at-flags", argv[argv.index("--fi-at-flags") + 1]
             + " --adv-repeat 2"]
    with pytest.raises(SystemExit, match="adv_repeat"):
        fi_pso_tables.main(other)


def test_parts_of_a_retrained_model_are_refused_or_dropped(tmp_path: Path) -> None:
    """A JSON keeps one model's results: a kept part measured on another model (here a
    hash that is not the shipped Model B's) stops the run before any compute, and --fresh
    drops it; the part this run makes records the model it was measured on."""
    out = tmp_path / "fi_pso_mnist5k_model_b.json"
    other = "0" * 64
    out.write_text(json.dumps({"model_sha256": other, "fig2": {"part_seconds": 1.0},
                               "fig4@prob": {"model_sha256": other, "part_seconds": 1.0}}))
    argv = ["--parts", "fi_speed", "--limit-test", "8", "--out", str(out)]
    with pytest.raises(SystemExit, match=r"another model.*fig2, fig4@prob"):
        fi_pso_tables.main(argv)
    assert json.loads(out.read_text())["model_sha256"] == other  # left as it was
    assert fi_pso_tables.main([*argv, "--fresh"]) == 0
    record = json.loads(out.read_text())
    assert "fig2" not in record and "fig4@prob" not in record
    assert record["fi_speed"]["model_sha256"] == record["model_sha256"] != other
    assert fi_pso_tables.parts_of_another_model(record, record["model_sha256"], set()) == []
