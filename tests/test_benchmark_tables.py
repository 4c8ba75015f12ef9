"""benchmarks/tables.py: the committed documents hold exactly the tables it generates from the
committed JSON, and a row whose JSON is missing is an error, not a silent gap."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import tables  # noqa: E402

TABLE_JSON = re.compile(r"^\|.*`(?:benchmarks/results/)?([^`/]+\.json)`", re.M)


@pytest.mark.parametrize("doc", tables.DOCUMENTS)
def test_committed_tables_are_the_generated_ones(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert tables.regions(text), f"{doc} has no generated table"
    assert tables.render(text) == text, "run python benchmarks/tables.py --write"


def test_every_table_appears_in_a_document() -> None:
    shown = [name for doc in tables.DOCUMENTS
             for name in tables.regions((ROOT / doc).read_text(encoding="utf-8"))]
    assert sorted(shown) == sorted(tables.TABLES)


@pytest.mark.parametrize("doc", tables.DOCUMENTS)
def test_every_json_a_table_row_cites_is_committed(doc: str) -> None:
    cited = TABLE_JSON.findall((ROOT / doc).read_text(encoding="utf-8"))
    assert cited
    missing = sorted({name for name in cited if not (tables.RESULTS / name).is_file()})
    assert not missing, f"{doc} cites result files that are not committed: {missing}"
    assert set(cited) <= set(tables.cited_files()) | {tables.CLASSIFIERS}


def test_a_missing_json_fails_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    with pytest.raises(FileNotFoundError, match=tables.WHITEBOX[0][1]):
        tables.whitebox()
    assert tables.classifiers().startswith("_No committed")  # optional until it is committed


def test_check_and_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for doc in tables.DOCUMENTS:
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / doc, tmp_path / doc)
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("98.72%", "99.99%"),
                      encoding="utf-8")
    assert tables.main(["--check"]) == 1
    assert tables.main(["--write"]) == 0
    assert tables.main(["--check"]) == 0
    assert "99.99%" not in readme.read_text(encoding="utf-8")


def test_classifier_rows_come_from_their_json(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tables.cited_files():
        shutil.copy(tables.RESULTS / name, tmp_path / name)
    (tmp_path / tables.CLASSIFIERS).write_text(
        '{"rows": [{"arch": "model_b", "dataset": "mnist5k", "test_accuracy": 0.9812, '
        '"train_seconds": 250.4, "command": "advforge train-classifier --arch model_b '
        '--dataset mnist5k"}]}', encoding="utf-8")
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert "| `model_b` | `mnist5k` | 98.12% | 250 s |" in tables.classifiers()
    assert tables.headline_rows()[0][:2] == (
        "`model_b` on `mnist5k`, test accuracy (CLI defaults)", "98.12%")


def test_each_table6_variant_row_describes_its_own_generator() -> None:
    table = tables.default_variants()
    for _, name, t6 in tables.table6_parts():
        for what, file, part in [("default", name, t6), *tables.variants(name)]:
            (row,) = [line for line in table.splitlines() if f"`{file}`" in line]
            blocks = part["config"]["g_res_blocks"]
            assert f"{what}: {blocks} residual block" in row
            assert f"{part['config']['epochs']} epochs of " in row


def test_the_paper_configuration_column_counts_only_the_defaults_pairs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    t6 = {"default": {"pairs": 8838, "per_target": {"1": 0.9}}}
    whitebox = {"pairs": 8838, "per_target": {"1": 0.8}}
    monkeypatch.setattr(tables, "setting", lambda name: {"whitebox": whitebox})
    assert tables.paper_configuration("f.json", t6) is whitebox
    assert tables.paper_configuration("f.json", {**t6, "before": {"per_target": {}}}) == {
        "per_target": {}}  # the part's own record wins
    whitebox["pairs"] = 8847  # another model or other images: not the same pairs
    assert tables.paper_configuration("f.json", t6) is None
