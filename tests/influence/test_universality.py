"""Universality (Table 2): one perturbation applied to the images of the other classes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from advforge.errors import InputError
from advforge.influence import universal_perturbation, universality


class Argmax4(nn.Module):
    """1x2x2 inputs, class k scores 10 * x_k: the prediction is the largest component. It
    refuses inputs outside [0, 1], so an unclamped x + delta fails the test."""

    num_classes, in_channels = 4, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.min() >= 0 and x.max() <= 1, "x + delta was not clamped to [0, 1]"
        return 10 * x.flatten(1)


# delta lowers component 1 by 0.3 (clamped at 0) and raises component 3 (the target) by 0.4.
DELTA = torch.tensor([0.0, -0.3, 0.0, 0.4]).reshape(1, 2, 2)
ROWS = [  # label, image, and what x + delta is predicted as
    (0, [0.6, 0.1, 0.1, 0.1]),   # stays 0
    (0, [0.4, 0.1, 0.1, 0.1]),   # -> 3, the target
    (0, [0.6, 0.1, 0.1, 0.1]),   # stays 0
    (1, [0.1, 0.6, 0.1, 0.1]),   # -> 3
    (1, [0.1, 0.6, 0.55, 0.1]),  # -> 2: misclassified, not to the target
    (2, [0.1, 0.1, 0.6, 0.1]),   # stays 2
    (3, [0.1, 0.1, 0.1, 0.6]),   # the target's own class: not counted
    (1, [0.6, 0.1, 0.1, 0.1]),   # misclassified before the perturbation: not counted
]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([r[1] for r in ROWS]).reshape(-1, 1, 2, 2)
    return x, torch.tensor([r[0] for r in ROWS])


def test_per_class_shares_on_a_model_with_known_answers():
    x, y = _data()
    table = universality(Argmax4(), DELTA, x, y, target=3, batch_size=3)
    assert set(table.per_class) == {0, 1, 2}
    assert table.per_class[0] == pytest.approx({"n": 3, "misclassified": 1 / 3,
                                                "to_target": 1 / 3})
    assert table.per_class[1] == pytest.approx({"n": 2, "misclassified": 1.0, "to_target": 0.5})
    assert table.per_class[2] == {"n": 1, "misclassified": 0.0, "to_target": 0.0}
    assert table.total == pytest.approx({"n": 6, "misclassified": 0.5, "to_target": 1 / 3})
    assert json.loads(json.dumps(table.to_dict()))["per_class"]["1"]["n"] == 2


def test_source_class_is_counted_as_in_the_paper_unless_excluded():
    x, y = _data()
    kept = universality(Argmax4(), DELTA[None], x, y, target=3, source_class=1)
    assert kept.source_class == 1 and kept.per_class[1]["n"] == 2
    dropped = universality(Argmax4(), DELTA, x, y, target=3, source_class=1,
                           include_source=False)
    assert set(dropped.per_class) == {0, 2} and dropped.total["n"] == 4
    assert dropped.total["to_target"] == pytest.approx(1 / 4)


def test_a_class_with_no_correct_images_has_no_rate():
    x, y = _data()
    table = universality(Argmax4(), DELTA, x[:3], y[:3], target=3)
    assert table.per_class[1] == {"n": 0, "misclassified": None, "to_target": None}


@pytest.mark.parametrize("kw, match", [
    ({"delta": torch.zeros(1, 3, 3)}, "shape"),
    ({"delta": torch.full((1, 2, 2), float("nan"))}, "NaN"),
    ({"target": 4}, "target"),
    ({"source_class": -1}, "source_class"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_input_is_refused(kw, match):
    x, y = _data()
    args = {"delta": DELTA, "target": 3, **kw}
    with pytest.raises(InputError, match=match):
        universality(Argmax4(), args.pop("delta"), x, y, **args)


class Steep(nn.Module):
    """1x4x4 inputs: class 0 scores 2, class 1 scores 0, class 2 scores 20 * x[5] - 5, so
    P(class 2) = 0.99 at x[5] ~ 0.586 and only component 5 matters."""

    num_classes, in_channels = 3, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z2 = 20 * x.flatten(1)[:, 5] - 5
        return torch.stack([torch.full_like(z2, 2.0), torch.zeros_like(z2), z2], dim=1)


def test_universal_perturbation_reaches_p_err_and_transfers():
    x0 = torch.full((1, 4, 4), 0.2)
    made = universal_perturbation(Steep(), x0, 0, indices=[5], particles=16, iters=40,
                                  generator=torch.Generator().manual_seed(0))
    assert made.met and made.target == 2
    assert made.probability == pytest.approx(0.99, abs=0.01)
    assert made.delta.shape == (1, 4, 4) and (made.delta.flatten().nonzero() == 5).all()
    others = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.3
    table = universality(Steep(), made.delta, others, torch.zeros(5, dtype=torch.long),
                         target=made.target, source_class=0)
    # delta[5] ~ 0.386 > 0.35, where class 2 overtakes class 0: every image goes to class 2
    assert table.per_class[0] == {"n": 5, "misclassified": 1.0, "to_target": 1.0}
    assert table.per_class[1]["n"] == 0
