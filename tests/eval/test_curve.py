"""Robust accuracy against eps: starts at clean accuracy, never rises, reuses a cascade
already run, and refuses bad budgets before attacking."""

from __future__ import annotations

import math

import pytest
import torch

from advforge.errors import InputError
from advforge.eval.curve import curve_table, default_curve, robust_curve
from advforge.eval.plots import robust_curve_png
from advforge.eval.robustness import RobustnessResult, robust_cascade

FAST = {"apgd_ce": {"steps": 10}}


def _curve(model, x, y, budgets, **kw):
    return robust_curve(model, x, y, budgets, attacks=["apgd_ce"], hyper=FAST,
                        generator=torch.Generator().manual_seed(0), **kw)


def test_curve_starts_at_clean_accuracy_and_never_rises(toy_model, toy_batch):
    x, y = toy_batch
    points = _curve(toy_model, x, y, [0.3, 0.05, 0.1, 0.2, 0.1])
    assert [p.eps for p in points] == [0.0, 0.05, 0.1, 0.2, 0.3]  # sorted, deduplicated
    clean = robust_cascade(toy_model, x, y, eps=0.1, attacks=[lambda m, xb, yb, **k: xb])
    assert points[0].robust_accuracy == clean.clean_accuracy
    accs = [p.robust_accuracy for p in points]
    assert all(a >= b for a, b in zip(accs, accs[1:], strict=False))
    assert accs[0] > accs[-1]  # the attack bites somewhere on the curve
    # Each budget attacks only the inputs still robust below it.
    for before, point in zip(points[1:], points[2:], strict=False):
        assert point.n_attacked == round(before.robust_accuracy * len(y))
    assert sum(p.added for p in points) == round((accs[0] - accs[-1]) * len(y))


def test_a_fool_at_a_small_eps_counts_at_every_larger_eps(toy_model, toy_batch):
    x, y = toy_batch
    # A cascade "already run" at 0.4 that fooled nothing: the nested balls still hold the
    # examples found at 0.2, so the curve must not rise back to clean accuracy at 0.4.
    correct = torch.ones(len(y), dtype=torch.bool)
    lenient = RobustnessResult(n=len(y), eps=0.4, norm="linf", clean_accuracy=1.0,
                               robust_accuracy=1.0, attacks=[], robust=correct)
    points = _curve(toy_model, x, y, [0.2, 0.4], known={0.4: lenient})
    assert points[1].robust_accuracy < 1.0
    assert points[2].robust_accuracy == points[1].robust_accuracy
    assert points[2].cascade_accuracy == 1.0  # the reused figure, shown beside


@pytest.mark.parametrize("bad, mentions", [([-0.1], ">= 0"), ([math.nan], ">= 0"),
                                           ([1.5], "exceeds 1"), ([math.inf], ">= 0")])
def test_bad_budgets_are_refused_before_any_attack(toy_model, toy_batch, bad, mentions,
                                                  monkeypatch):
    x, y = toy_batch
    calls = []
    monkeypatch.setattr("advforge.eval.curve.robust_cascade", lambda *a, **k: calls.append(1))
    with pytest.raises(InputError, match=mentions):
        robust_curve(toy_model, x, y, [0.1, *bad], attacks=["apgd_ce"])
    assert not calls


def test_default_curve_scales_eps_and_caps_it():
    assert default_curve(0.3) == pytest.approx([0.075, 0.15, 0.3, 0.45, 0.6])
    assert default_curve(0.6, 1.0) == pytest.approx([0.15, 0.3, 0.6, 0.9, 1.0])


def test_curve_table_and_plot(toy_model, toy_batch):
    x, y = toy_batch
    points = _curve(toy_model, x[:8], y[:8], [0.1])
    assert "| 0.1 |" in curve_table(points)
    png = robust_curve_png(points, norm="linf", eps=0.1)
    assert png.startswith(b"\x89PNG")
