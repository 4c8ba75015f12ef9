"""What a reader needs to trust a report: n and a 95% Wilson interval on every success rate, a
visible flag under 30 inputs, eps and norm in the summary, notes that name their attacks, and
a report written from Python without meta that still says where it ran."""

from __future__ import annotations

import json
import re

import pytest
import torch

from advforge.errors import InputError
from advforge.eval import evaluate, write_report
from advforge.eval.metrics import SMALL_N, wilson_interval


def test_wilson_interval_matches_known_values():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(2, 2) == pytest.approx((0.3424, 1.0), abs=1e-4)  # not [1, 1]
    assert wilson_interval(0, 0) == (None, None)
    with pytest.raises(InputError):
        wilson_interval(3, 2)


def _big_batch(encoder):
    y = torch.arange(4 * SMALL_N) % 4  # every class has SMALL_N inputs
    return encoder(y), y


def test_every_rate_carries_n_and_interval_in_json_md_and_html(tmp_path, code_model, encoder,
                                                               set_code):
    x, y = _big_batch(encoder)
    result = evaluate(set_code(fail_towards=(2,)), code_model, x, y, targets="all",
                      attack_name="gen")
    paths = write_report(tmp_path, [result], {"seed": 1})
    attack = json.loads(paths["json"].read_text())["attacks"][0]
    n = result.n_evaluated
    assert attack["success_n"] == n and not attack["success_small_n"]
    lo, hi = attack["success_ci95"]
    k = result.n_success
    assert (lo, hi) == pytest.approx(wilson_interval(k, n))
    assert lo < result.success_rate < hi
    assert attack["per_target_ci95"]["2"][0] == 0.0 and attack["per_target_ci95"]["2"][1] > 0
    cell = f"{100 * result.success_rate:.2f}% [{100 * lo:.1f}–{100 * hi:.1f}] n={n}"
    for key in ("md", "html"):
        text = paths[key].read_text()
        assert cell in text, key
        assert not re.search(r"n=\d+ †", text) and "treat them as rough" not in text, key
    assert "small-n" not in paths["html"].read_text().split("</style>")[1]


def test_rates_on_fewer_than_30_inputs_are_flagged(tmp_path, code_model, code_batch, set_code):
    x, y = code_batch
    result = evaluate(set_code(), code_model, x[:2], y[:2], attack_name="tiny")
    assert result.success_rate == 1.0 and result.n_evaluated == 2
    paths = write_report(tmp_path, [result])
    assert json.loads(paths["json"].read_text())["attacks"][0]["success_small_n"]
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "100.00% [34.2–100.0] n=2 †" in md
    assert "fewer than 30 inputs: treat them as rough" in md
    assert '<td class="small-n">100.00% [34.2–100.0] n=2 †</td>' in html


def test_summary_shows_eps_and_norm(tmp_path, code_model, code_batch, set_code):
    x, y = code_batch
    attack = set_code()
    attack.norm, attack.eps = "linf", 0.25
    result = evaluate(attack, code_model, x, y, attack_name="budgeted")
    assert (result.norm, result.eps) == ("linf", 0.25)
    md = write_report(tmp_path, [result])["md"].read_text()
    header, _, row = md.split("## Summary")[1].strip().splitlines()[:3]
    assert "| norm | eps |" in header
    assert row.startswith("| budgeted | no | linf | 0.25 |")


def test_notes_name_their_attacks_and_do_not_repeat(tmp_path, code_model, code_batch, set_code):
    x, y = code_batch
    results = [evaluate(set_code(), code_model, x, y, targets="all", attack_name=name)
               for name in ("a", "b")]
    results.append(evaluate(set_code(), code_model, x, y, attack_name="u"))
    paths = write_report(tmp_path, results)
    html, md = paths["html"].read_text(), paths["md"].read_text()
    targeted_note, untargeted_note = results[0].note, results[2].note
    assert targeted_note != untargeted_note
    for text in (html, md):
        assert text.count(targeted_note) == 1 and text.count(untargeted_note) == 1
    assert f"<li><b>a, b</b>: {targeted_note}" in html
    assert f"- a, b: {targeted_note}" in md and f"- u: {untargeted_note}" in md


def test_report_without_meta_records_device_and_versions_once(tmp_path, code_model,
                                                              code_batch, set_code):
    x, y = code_batch
    result = evaluate(set_code(), code_model, x, y, attack_name="plain")
    paths = write_report(tmp_path, [result])
    meta = json.loads(paths["json"].read_text())["meta"]
    assert meta["device"] == "cpu" and meta["seed"] == "not recorded"
    assert None not in meta.values()
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert "None" not in html.split("<h2>")[0] and "seed: <b>not recorded</b>" in html
    assert "device: <b>cpu</b>" in html
    for text in (html, md):
        assert text.count(torch.__version__) == 1
        assert text.count("advforge_version") == 1
    paths = write_report(tmp_path / "m", [result], model=torch.nn.Linear(2, 2))
    assert json.loads(paths["json"].read_text())["meta"]["device"] == "cpu"


def test_warnings_open_the_report(tmp_path, code_model, code_batch, set_code):
    x, y = code_batch
    result = evaluate(set_code(), code_model, x, y, attack_name="plain")
    paths = write_report(tmp_path, [result], {"warnings": ["model m was trained on a"]})
    for key in ("md", "html"):
        text = paths[key].read_text()
        assert text.index("WARNING: ") < text.index("Summary") and text.count("trained on a") == 1
