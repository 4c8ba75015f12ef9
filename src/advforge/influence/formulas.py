"""Eq. 1 of the paper at both levels, from the logits and the logit Jacobian of each image.

Notation (per image): ``z`` the K logits, ``Z = dz/dx`` (K x p), ``p = softmax(z)``,
``J = d log p / dx = Z - 1 p^T Z`` (K x p), ``f = -log p_c`` with ``c`` the true class or the
target (Eq. 5), so ``g = df/dx = -J_c``, and ``G = J^T diag(p) J`` (p x p), the metric of the
perturbation manifold. With ``A = diag(sqrt p) J`` (K x p), ``G = A^T A`` and

    FI = g^T G^+ g = ||(A A^T)^+ A g||^2 = ||P e_c||^2 / p_c,                        (1)

where ``P`` projects onto the column space of ``A`` (``g = -A^T e_c / sqrt(p_c)`` and
``(A A^T)^+ A A^T = P``). That column space is ``diag(sqrt p)`` times the column space of
``J``, which lies in ``p^perp`` by construction (``p^T J = (1 - sum p) p^T Z = 0``); its
orthogonal complement is ``span{sqrt p} + diag(1/sqrt p) (N_Z cap 1^perp)``, the two parts
orthogonal, where ``N_Z`` is the left null space of ``Z`` (combinations of logits that do not
move with the input). Hence

    FI = (1 - p_c - ||Q_c||^2) / p_c,

with ``Q`` an orthonormal basis of ``diag(1/sqrt p) (N_Z cap 1^perp)``. When the logit
Jacobian has full row rank (the generic case: every image has p >= K pixels) ``N_Z = 0`` and
the image-level FI is ``(1 - p_c) / p_c``, a function of the probability of class c alone.

Numerics. Everything after the backward passes is float64. ``1 - p_c`` is summed from the
other probabilities (no cancellation when ``p_c`` is near 1). The structural null vector
``sqrt p`` is removed exactly rather than by a threshold: in ``A`` computed from a float32
Jacobian it survives as a singular value near ``eps_32 * sigma_max``, which a float64
pseudo-inverse cut-off would keep, turning ``(1 - p_c) / p_c`` into ``1 / p_c``. The only
threshold left decides the rank of ``Z`` (see :func:`null_cutoff`); ``Z``'s rows are logit
gradients of comparable size whatever the probabilities, whereas ``A``'s rows are scaled by
``sqrt p_k`` and a cut-off relative to its largest singular value would discard the direction
of any class with a tiny probability (for a target class: its whole FI).
"""

from __future__ import annotations

import torch


def null_cutoff(num_classes: int, num_pixels: int, dtype: torch.dtype) -> float:
    """Relative cut-off on the eigenvalues of ``Z Z^T`` (the squared singular values of the
    logit Jacobian ``Z``, K x p): below it a direction counts as null.

    A singular value at most ``max(K, p) * eps * sigma_max`` counts as zero: numpy's
    ``matrix_rank`` and ``torch.linalg.pinv``'s default ``rtol``, with ``eps`` the machine
    epsilon of the dtype the backward passes ran in (the input's), not float64's: the float64
    algebra afterwards cannot recover digits the float32 passes never had. On eigenvalues of
    the float64 Gram matrix that is ``(max(K, p) * eps)^2``, floored at ``max(K, p) *
    eps_64``, the accuracy to which the Gram matrix's eigenvalues are known (it matters only
    for a float64 Jacobian).
    """
    size = max(num_classes, num_pixels)
    return max((size * torch.finfo(dtype).eps) ** 2, size * torch.finfo(torch.float64).eps)


def log_prob_jacobian(z: torch.Tensor, jac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``p`` (B, K) and ``J = Z - 1 p^T Z`` (B, K, p) in float64 from logits and ``Z``."""
    p = torch.softmax(z.double(), dim=1)
    jac = jac.double()
    return p, jac - torch.einsum("bk,bkp->bp", p, jac)[:, None]


def pixel_level(z: torch.Tensor, jac: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Pixel-level FI (Eq. 1 with omega one input component), float64 (B, p).

    ``FI_i = J_{c,i}^2 / G_i`` with ``G_i = sum_k p_k J_{k,i}^2``; 0 where ``G_i = 0``, i.e.
    where column i of ``J`` vanishes (every logit moves alike with pixel i, so no probability
    moves). A column counts as vanishing when its largest entry is at most
    ``K * eps * max_k |Z_{k,i}|``: the rounding left by ``J = Z - 1 p^T Z`` when the logit
    gradients at pixel i agree. The test is on ``J`` unweighted, so a pixel that moves a
    class of tiny probability keeps its (large) FI.
    """
    p, lpj = log_prob_jacobian(z, jac)
    num = lpj[torch.arange(len(c), device=c.device), c] ** 2  # (B, p)
    metric = torch.einsum("bk,bkp->bp", p, lpj * lpj)  # G_i, (B, p)
    tol = jac.shape[1] * torch.finfo(jac.dtype).eps
    vanishing = lpj.abs().amax(1) <= tol * jac.double().abs().amax(1)
    fi = num / torch.where(metric > 0, metric, torch.ones_like(metric))
    return torch.where(vanishing | (metric <= 0), torch.zeros_like(fi), fi)


def image_level(z: torch.Tensor, jac: torch.Tensor,
                c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-level FI (Eq. 1 with omega the whole image), float64 (B,), and the rank drop.

    Returns:
        ``(fi, drop)``: the FI and, per image, ``dim(N_Z cap 1^perp)``: how far the rank of
        ``G`` falls below ``K - 1`` (0 in the generic case).
    """
    batch, num_classes, num_pixels = jac.shape
    cut = null_cutoff(num_classes, num_pixels, jac.dtype)
    zd = jac.double()
    p = torch.softmax(z.double(), dim=1)
    rows = torch.arange(batch, device=c.device)
    p_c = p[rows, c]
    rest = torch.where(  # 1 - p_c, summed from the other classes
        torch.arange(num_classes, device=c.device) == c[:, None], torch.zeros_like(p), p
    ).sum(1)
    fi = rest / p_c
    drop = torch.zeros(batch, dtype=torch.long, device=c.device)
    lam, vec = torch.linalg.eigh(zd @ zd.transpose(1, 2))  # ascending, (B, K), (B, K, K)
    null = lam <= lam[:, -1:].clamp_min(0) * cut
    for b in torch.nonzero(null.any(1)).flatten().tolist():
        fi[b], drop[b] = _rank_drop(lam[b], vec[b], null[b], p[b], int(c[b]), rest[b], cut)
    return fi, drop


def _rank_drop(lam: torch.Tensor, vec: torch.Tensor, null: torch.Tensor, p: torch.Tensor,
               c: int, rest: torch.Tensor, cut: float) -> tuple[torch.Tensor, int]:
    """FI of one image whose logit Jacobian has a left null space ``N_Z`` (columns of ``vec``
    where ``null``): ``(1 - p_c - ||Q_c||^2) / p_c`` as in the module docstring."""
    num_classes = p.shape[0]
    basis = vec[:, null]  # (K, m) orthonormal basis of N_Z
    unit = torch.full((num_classes,), num_classes ** -0.5, dtype=basis.dtype,
                      device=basis.device)
    a = basis.T @ unit  # the all-ones direction's coordinates in N_Z
    kept = lam[~null]
    # Wedin: the computed null vectors are off by angles up to noise / sigma_min(kept), the
    # noise being the cut-off's singular value sqrt(cut) * sigma_max.
    angle = (cut * lam[-1] / kept[0]).sqrt() if kept.numel() else torch.zeros(())
    if a.norm() > angle:  # 1 is not orthogonal to N_Z: keep the part of N_Z orthogonal to it
        _, _, vh = torch.linalg.svd(a[None], full_matrices=True)
        basis = basis @ vh[1:].T
    drop = basis.shape[1]
    if drop == 0:
        return rest / p[c], 0
    if drop >= num_classes - 1:  # G = 0: no direction moves any probability
        return torch.zeros((), dtype=p.dtype, device=p.device), drop
    q, _ = torch.linalg.qr(basis / p.sqrt()[:, None])  # diag(1/sqrt p) (N_Z cap 1^perp)
    return (rest - (q[c] ** 2).sum()).clamp_min(0) / p[c], drop
