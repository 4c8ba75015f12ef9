"""Image-level FI over a whole split: which images are vulnerable, and what the measure tracks.

:func:`survey` computes, for every image of a split, the image-level FI of ``f = -log p_y``
(Eq. 1 with Eq. 5) with the model's probabilities; from it come the most vulnerable correctly
classified images (the candidates of Algorithm 2, step 1), the confusion matrix (Algorithm 2's
default targets, the paper's Fig. 8) and :func:`confidence_relation`, which checks the
identity that explains the measure: at full rank, image FI = (1 - p_y) / p_y.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from advforge.influence.measure import influence

# Images per call of influence(): the K x p Jacobian of a chunk stays small (1,000 28x28
# images at K = 10 is 31 MB in float32) while the pixel-level maps are dropped chunk by chunk.
SURVEY_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class Survey:
    """Image-level FI of every image of a split (all tensors on the CPU).

    Attributes:
        fi: (N,) float64 image-level FI of ``-log p_y``.
        probs: (N, K) float64 probabilities.
        y: (N,) true labels. pred: (N,) predictions. correct: (N,) pred == y.
        rank_drop: (N,) how far the metric's rank falls below K - 1 (0 generically).
    """

    fi: torch.Tensor
    probs: torch.Tensor
    y: torch.Tensor
    pred: torch.Tensor
    correct: torch.Tensor
    rank_drop: torch.Tensor

    @property
    def p_true(self) -> torch.Tensor:
        """(N,) the model's confidence in the true class."""
        return self.probs.gather(1, self.y[:, None]).squeeze(1)

    def most_vulnerable(self, top: int) -> torch.Tensor:
        """Indices of the ``top`` correctly classified images of largest image FI, largest
        first (ties keep index order)."""
        idx = self.correct.nonzero().flatten()
        order = torch.sort(self.fi[idx], descending=True, stable=True).indices
        return idx[order[:top]]

    def confusion(self) -> torch.Tensor:
        """(K, K) counts: row = true class, column = prediction."""
        k = self.probs.shape[1]
        counts = torch.zeros(k, k, dtype=torch.long)
        counts.index_put_((self.y, self.pred), torch.ones_like(self.y), accumulate=True)
        return counts


def survey(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
           chunk: int = SURVEY_CHUNK) -> Survey:
    """Image-level FI and probabilities of ``model`` for every image of ``(x, y)``.

    Args:
        model: the classifier (eval mode during the measure; its mode is restored).
        x: (N, C, H, W) images in [0, 1], on the model's device (or moved chunk by chunk).
        y: (N,) true labels.
        chunk: images per call of :func:`advforge.influence.influence`.
    """
    fis, probs, drops = [], [], []
    for start in range(0, x.shape[0], chunk):
        part = slice(start, start + chunk)
        result = influence(model, x[part], y[part])
        fis.append(result.image.detach().double().cpu())
        probs.append(result.probs.detach().double().cpu())
        drops.append(result.rank_drop.detach().cpu())
    probs_all = torch.cat(probs) if probs else torch.zeros(0, 0, dtype=torch.float64)
    y_cpu = y.detach().cpu().long()
    pred = probs_all.argmax(1) if len(probs_all) else y_cpu.clone()
    return Survey(fi=torch.cat(fis) if fis else torch.zeros(0, dtype=torch.float64),
                  probs=probs_all, y=y_cpu, pred=pred, correct=pred == y_cpu,
                  rank_drop=torch.cat(drops) if drops else torch.zeros(0, dtype=torch.long))


def confidence_relation(s: Survey, fi_img: float = 0.2) -> dict:
    """How image FI relates to the model's confidence p_y in the true class.

    At full rank (``rank_drop`` 0) the image-level FI of ``-log p_y`` equals (1 - p_y) / p_y
    (docs/influence.md derives it), a decreasing function of p_y alone: the threshold FI_img of
    Algorithm 2 is then the confidence threshold p_y <= 1 / (1 + FI_img). This measures how
    exactly that holds over the split and how many images each threshold keeps.

    Returns:
        JSON-friendly dict: ``n``, ``full_rank`` (count), ``max_relative_deviation`` of FI from
        (1 - p) / p over full-rank images whose p_y < 1 - 1e-6 (below that the float32
        Jacobian carries the identity only to its precision), ``spearman`` rank correlation of
        FI with p_y over correctly classified images, and for ``fi_img`` the counts of
        correctly classified images with FI >= fi_img and with p_y <= 1 / (1 + fi_img).
    """
    p = s.p_true
    full = s.rank_drop == 0
    resolvable = full & (p < 1 - 1e-6)
    expected = (1 - p) / p
    deviation = ((s.fi - expected).abs() / expected.clamp_min(1e-300))[resolvable]
    correct = s.correct
    return {
        "n": int(p.numel()),
        "correct": int(correct.sum()),
        "full_rank": int(full.sum()),
        "resolvable": int(resolvable.sum()),
        "max_relative_deviation": float(deviation.max()) if deviation.numel() else None,
        "median_relative_deviation": float(deviation.median()) if deviation.numel() else None,
        "spearman": spearman(s.fi[correct], p[correct]),
        "fi_img": fi_img,
        "p_threshold": 1 / (1 + fi_img),
        "kept_by_fi": int((correct & (s.fi >= fi_img)).sum()),
        "kept_by_confidence": int((correct & (p <= 1 / (1 + fi_img))).sum()),
    }


def spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rank correlation of two 1-D tensors (average ranks for ties)."""
    if a.numel() < 2:
        return None
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum()) / denominator if denominator > 0 else None


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based) of ``v``: tied values share the mean of their positions."""
    order = torch.argsort(v, stable=True)
    ranks = torch.empty_like(v)
    ranks[order] = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    unique, inverse = torch.unique(v, return_inverse=True)
    total = torch.zeros(unique.numel(), dtype=v.dtype).index_add_(0, inverse, ranks)
    count = torch.zeros(unique.numel(), dtype=v.dtype).index_add_(0, inverse,
                                                                  torch.ones_like(v))
    return (total / count)[inverse]
