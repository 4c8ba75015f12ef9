"""The gradient-masking audit flags a model whose input quantiser hides its gradients, and
passes the same model without the quantiser, where gradient attacks are optimal.

The task is built so the truth is known: 4 classes of 1x8x8 images, class k brightens
quadrant k, and the classifier's logit k is 10 x the mean of quadrant k. Quadrants are
disjoint, so the best L-inf attack darkens the true quadrant and brightens every other one by
eps (separable, linear): one signed-gradient step reaches it, and no attack can do better.
The masked model rounds its input to 1/255 first: the same function to within 1/510, but
``torch.round`` has zero gradient everywhere, so FGSM, PGD and APGD see nothing.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advforge.errors import InputError
from advforge.eval.audit import AuditConfig, audit_lines, audit_summary, masking_audit
from advforge.eval.robustness import robust_cascade, standard_attacks

EPS = 0.1
FAST = {"apgd_ce": {"steps": 10}, "apgd_t": {"steps": 10, "n_target_classes": 3},
        "square": {"n_queries": 200}}
CFG = AuditConfig(pgd_steps=40, pgd_restarts=2, short_steps=10, noise_draws=20,
                  square_queries=200)


def _quadrants() -> torch.Tensor:
    quad = torch.zeros(4, 1, 8, 8)
    for k in range(4):
        r, c = divmod(k, 2)
        quad[k, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 1
    return quad  # (4, 1, 8, 8)


class QuadrantModel(nn.Module):
    """logit_k = 10 * mean of quadrant k; ``masked`` rounds the input to 1/255 first."""

    num_classes = 4
    in_channels = 1

    def __init__(self, masked: bool = False) -> None:
        super().__init__()
        self.masked = masked
        self.register_buffer("w", _quadrants().flatten(1) / 16)  # (4, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.masked:
            x = torch.round(x * 255) / 255  # zero gradient: no straight-through path
        return 10 * x.flatten(1) @ self.w.T  # (B, 4)


@pytest.fixture(scope="module")
def quad_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    quad, n = _quadrants(), 128
    y = torch.arange(n) % 4
    offsets = 0.2 * torch.rand(n, 4, 1, 1, 1, generator=g)  # spreads the margins
    x = 0.3 + 0.1 * torch.rand(n, 1, 8, 8, generator=g) + (offsets * quad).sum(1) + 0.3 * quad[y]
    return x, y


def _audit(model, x, y, surrogate=None):
    result = robust_cascade(model, x, y, eps=EPS, attacks=standard_attacks(EPS, hyper=FAST),
                            generator=torch.Generator().manual_seed(0))
    checks = masking_audit(model, x, y, eps=EPS, cascade_result=result, surrogate=surrogate,
                           config=CFG)
    return result, {c.name: c for c in checks}


def test_the_audit_flags_a_model_whose_gradients_are_masked(quad_batch):
    x, y = quad_batch
    result, checks = _audit(QuadrantModel(masked=True).eval(), x, y)
    assert result.attacks[0].added == 0  # APGD-CE sees no gradient...
    assert result.attacks[2].added > 0.1 * result.n  # ...but Square finds the boundary
    for name in ("square_not_stronger", "converged_pgd_near_cascade", "large_eps_accuracy"):
        assert checks[name].passed is False, checks[name].detail
    square = checks["square_not_stronger"].figures
    assert square["robust_accuracy"] < square["whitebox"] == result.clean_accuracy
    assert "FLAG" in "\n".join(audit_lines(list(checks.values())))
    assert audit_summary(list(checks.values())).startswith("audit: ")


def test_the_audit_passes_a_plain_model_where_gradient_attacks_are_optimal(quad_batch):
    x, y = quad_batch
    model = QuadrantModel().eval()
    result, checks = _audit(model, x, y)
    assert 0.3 < result.robust_accuracy < 0.95  # an informative budget: some, not all, fooled
    audited = [c for c in checks.values() if c.passed is not None]
    assert len(audited) == 7 and all(c.passed for c in audited), audit_lines(audited)
    assert checks["transfer_not_stronger"].passed is None
    assert "--surrogate" in checks["transfer_not_stronger"].detail
    info = checks["short_pgd"]
    assert info.kind == "info" and info.passed is None and info.figures["step_size"] == EPS / 4
    assert audit_summary(list(checks.values())) == "audit: 7 checks passed, 0 flagged, 1 skipped"
    assert not model.training


def test_transfer_from_a_surrogate_flags_the_masked_model_only(quad_batch):
    x, y = quad_batch
    surrogate = QuadrantModel().eval()  # the same function, with its gradients
    _, masked = _audit(QuadrantModel(masked=True).eval(), x, y, surrogate=surrogate)
    _, plain = _audit(QuadrantModel().eval(), x, y, surrogate=surrogate)
    assert masked["transfer_not_stronger"].passed is False
    assert plain["transfer_not_stronger"].passed is True


def test_the_audit_is_reproducible(quad_batch):
    x, y = quad_batch
    model = QuadrantModel(masked=True).eval()
    def figures():
        return [(c.name, c.passed, c.figures) for c in _audit(model, x, y)[1].values()]

    assert figures() == figures()


@pytest.mark.parametrize("kwargs", [{"pgd_restarts": 1}, {"pgd_steps": 1}, {"noise_draws": 0},
                                    {"masking_gap": -0.1}, {"large_eps": 0.0}])
def test_bad_audit_settings_are_refused(kwargs):
    with pytest.raises(InputError, match="audit"):
        AuditConfig(**kwargs)


def test_a_cascade_from_other_inputs_is_refused(quad_batch):
    x, y = quad_batch
    model = QuadrantModel().eval()
    result = robust_cascade(model, x[:8], y[:8], eps=EPS, attacks=["apgd_ce"])
    with pytest.raises(InputError, match="same inputs"):
        masking_audit(model, x, y, eps=EPS, cascade_result=result, config=CFG)


def test_accuracy_differences_are_exact_counts():
    """One input in 100 is exactly 1 point: the strict < 1 point rule must see it."""
    from advforge.eval.audit import _acc

    a = torch.zeros(100, dtype=torch.bool)
    a[:94] = True
    b = a.clone()
    b[94] = True
    assert abs(_acc(b) - _acc(a)) >= 0.01
