"""Image FI over a split (``survey``), its relation to confidence, the per-target maps of one
image, and the pictures drawn from them."""

from __future__ import annotations

import pytest
import torch
from fi_nets import bottleneck_net, conv_net, images

from advforge.errors import InputError
from advforge.influence import confidence_relation, influence, survey, target_maps
from advforge.influence.plot import (
    confidence_png,
    confusion_png,
    manhattan_png,
    settings_png,
    target_maps_png,
)
from advforge.influence.survey import spearman


def _labels(n: int) -> torch.Tensor:
    return torch.arange(n) % 4


def test_survey_equals_influence_and_chunking_does_not_matter():
    model, x = conv_net(), images(9)
    y = _labels(9)
    whole = influence(model, x, y)
    s = survey(model, x, y, chunk=4)
    assert torch.allclose(s.fi, whole.image.double(), rtol=1e-12, atol=0)
    assert torch.equal(s.pred, whole.probs.argmax(1)) and torch.equal(s.correct, s.pred == y)
    counts = s.confusion()
    assert counts.sum() == 9 and torch.equal(counts.sum(1), torch.bincount(y, minlength=4))
    assert counts.trace() == int(s.correct.sum())


def test_most_vulnerable_are_correct_images_by_falling_fi():
    model, x = conv_net(), images(12)
    s = survey(model, x, _labels(12))
    top = s.most_vulnerable(5)
    assert s.correct[top].all()
    assert (s.fi[top][:-1] >= s.fi[top][1:]).all()
    rest = s.correct.clone()
    rest[top] = False
    if rest.any() and len(top) == 5:
        assert s.fi[rest].max() <= s.fi[top].min()


def test_full_rank_fi_is_the_odds_against_the_true_class():
    """(1 - p) / p exactly at full rank: FI_img = 0.2 keeps the images of p(true) <= 1/1.2."""
    model, x = conv_net(), images(12)
    s = survey(model, x, _labels(12))
    rel = confidence_relation(s, fi_img=0.2)
    assert rel["full_rank"] == 12 and rel["max_relative_deviation"] < 1e-8
    assert rel["kept_by_fi"] == rel["kept_by_confidence"]
    assert rel["p_threshold"] == pytest.approx(1 / 1.2)
    if rel["correct"] > 1:
        assert rel["spearman"] == pytest.approx(-1.0)


def test_rank_drop_is_left_out_of_the_identity_check():
    model, x = bottleneck_net(), images(6)
    s = survey(model, x, _labels(6))
    rel = confidence_relation(s)
    assert (s.rank_drop > 0).all() and rel["full_rank"] == 0
    assert rel["max_relative_deviation"] is None


def test_spearman_against_hand_computed_ranks():
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([8.0, 6, 4, 2])) == -1.0
    # ties share the average rank: a -> (1.5, 1.5, 3), b -> (1, 2, 3); Pearson of those
    got = spearman(torch.tensor([5.0, 5, 7]), torch.tensor([1.0, 2, 3]))
    assert got == pytest.approx(0.8660254037844386)
    assert spearman(torch.tensor([1.0]), torch.tensor([2.0])) is None


def test_target_maps_are_the_pixel_fi_of_each_target():
    model, x = conv_net(), images(1)
    maps = target_maps(model, x[0], 2)
    assert maps.shape == (4, 1, 6, 6)
    for t in range(4):
        want = influence(model, x, torch.tensor([2]), target=t).pixel[0]
        assert torch.allclose(maps[t], want, rtol=1e-10, atol=0)
    with pytest.raises(InputError, match="one"):
        target_maps(model, x, 2)


def test_every_picture_is_a_png():
    model, x = conv_net(), images(8)
    s = survey(model, x, _labels(8))
    maps = target_maps(model, x[0], 0)
    x_adv = (x[0] + 0.1).clamp(0, 1)
    pngs = [
        manhattan_png({"train": (s.fi, s.y), "test": (s.fi[:4], s.y[:4])}, threshold=0.2),
        confusion_png({"test": s.confusion()}),
        confidence_png(s.p_true, s.fi, fi_img=0.2),
        target_maps_png(x[0], s.probs[0], maps, title="t"),
        settings_png(x[0], [("a", x_adv, s.probs[0]), ("b", x[0], s.probs[1])]),
    ]
    assert all(p.startswith(b"\x89PNG") and len(p) > 1000 for p in pngs)
