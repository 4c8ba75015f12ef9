"""benchmarks/ae4dnn_tables.py end to end on mnist5k with the shipped Model B and tiny runs:
every part lands in the JSON with the paper's figures, the pairs are matched by mean L2, and
tables.py renders every AE4DNN table from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ae4dnn_tables  # noqa: E402
import tables  # noqa: E402

SHIPPED = ae4dnn_tables.SHIPPED["mnist5k"]


def test_ae4dnn_tables_smoke_writes_every_part(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "results" / "ae4dnn_mnist5k.json"
    argv = ["--subset-size", "45", "--bound-inits", "1", "--table4-n", "3", "--threads", "1",
            "--flags", "--epochs 1 --ae-ch 4 --eval-size 20 --batch-size 64",
            "--zoo", f"twin={SHIPPED}", "--work", str(tmp_path / "work"), "--out", str(out)]
    assert ae4dnn_tables.main(argv) == 0
    record = json.loads(out.read_text())
    assert set(ae4dnn_tables.PARTS) <= set(record)
    assert "--phi-grid 0.2,0.1,0.05" in record["aae_wide"]["command"]
    assert record["sweep"]["command"].startswith("advforge train-attacker ae4dnn --out WORK/")
    assert len(record["sweep"]["rows"]) == 7 and len(record["aae"]["rows"]) == 5
    bound = record["bound"]["default_init"]
    assert 0 < bound["authors"]["mean"] < bound["paper"]["mean"] < 1
    # S is the CLI's: held out are the 4,000 - 45 training images outside it and the test split
    table3 = record["table3"]
    assert table3["sets"]["outside_S"] == 4000 - 45 + 1000
    assert record["transfer"]["zoo_accuracy"]["twin"] > 0.95  # the shipped Model B itself
    assert set(record["all_targets"]["ae4dnn"]["per_target"]) == {str(t) for t in range(10)}
    assert set(record["all_targets_aae"]["atn"]["per_target"]) == {str(t) for t in range(10)}
    assert record["table4"]["n"] == 3 and record["timing"]["forge_seconds_10k"] > 0
    monkeypatch.setattr(tables, "RESULTS", out.parent)
    # one epoch of a 4-channel autoencoder fools nothing, so Tables III and V have no pair yet
    for name in ("ae4dnn-bound", "ae4dnn-table1", "ae4dnn-table2", "ae4dnn-table4",
                 "ae4dnn-all-targets", "ae4dnn-timing"):
        assert "ae4dnn_mnist5k.json" in tables.TABLES[name](), name


class _Record:
    def __init__(self, record):
        self.record, self.work = record, Path("work")


def test_pairs_match_each_beta_to_the_phi_of_nearest_mean_l2(tmp_path, monkeypatch) -> None:
    """Table III's pairing, and Tables III and V rendered from a record that has pairs."""
    record = {"sweep": {"rows": [{"beta": 0.001, "mean_l2": 3.1}, {"beta": 0.004, "mean_l2": 5.9},
                                 {"beta": 0.0002, "mean_l2": None}], "chosen": 0.004},
              "aae": {"rows": [{"phi": 0.02, "mean_l2": 4.0}, {"phi": 0.005, "mean_l2": 6.2},
                               {"phi": 0.002, "mean_l2": 8.8}, {"phi": 0.05, "mean_l2": None}]}}
    pairs = ae4dnn_tables.matched_pairs(_Record(record))
    assert [(p["beta"], p["phi"]) for p in pairs] == [(0.001, 0.02), (0.004, 0.005)]
    assert pairs[1]["dirs"]["atn"] == "atn_t7/sweep/phi_0.005"  # under the work directory
    # the wider phis join the candidates when that part ran
    record["aae_wide"] = {"rows": [{"phi": 0.1, "mean_l2": 3.0, "dir": "wide/phi_0.1"}]}
    pairs = ae4dnn_tables.matched_pairs(_Record(record))
    assert pairs[0]["phi"] == 0.1 and pairs[0]["dirs"]["atn"] == "wide/phi_0.1"
    # --target all takes the rule's weight over both sweeps: most valid with mean L2 <= 6.5
    rows = [{"phi": 0.02, "mean_l2": 4.0, "valid": 40}, {"phi": 0.1, "mean_l2": 3.0, "valid": 90},
            {"phi": 0.005, "mean_l2": 7.0, "valid": 300}]
    assert ae4dnn_tables._rule(rows, "phi") == 0.1
    assert ae4dnn_tables._rule(rows[2:], "phi") == 0.005  # none under b: the smallest L2
    counts = {"inputs": 10, "valid": 5, "rate": 0.5, "mean_l2": 4.0, "success": 0.6}
    side = {"sets": {"outside_S": counts}, "forge_seconds_10k": 1.0,
            "source_valid": 5, "transfer": {"vgg13": {"of_valid": 0.4, "of_inputs": 0.2}}}
    rows = [{**p, "ae4dnn": side, "atn": side} for p in pairs]
    out = {"dataset": "mnist5k", "paper": ae4dnn_tables.PAPER,
           "table3": {"sets": {"outside_S": 10}, "rows": rows, "chosen_beta": 0.004},
           "transfer": {"zoo": {"vgg13": "runs/vgg13"}, "rows": rows}}
    (tmp_path / "ae4dnn_mnist5k.json").write_text(json.dumps(out))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert "| `mnist5k` | 0.004 | 0.005 | 4.00 / 4.00 | 50.00% / 50.00% |" in \
        tables.ae4dnn_table3()
    assert "40.00% (20.00%) / 40.00% (20.00%)" in tables.ae4dnn_table5()
    assert "beta 0.004 by its rule" in tables.ae4dnn_headline()[0][0]
