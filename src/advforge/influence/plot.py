"""The FI pictures, each as PNG bytes: an image beside its pixel-level FI map; the maps of
one image for every target class with its probability bars (the paper's Fig. 2 and 3); the
perturbations and adversarial images of several fi_pso settings (Fig. 4); the Manhattan plot
of image-level FI (Fig. 7); confusion heatmaps (Fig. 8); image FI against confidence.

Built on ``matplotlib.figure.Figure`` with the Agg canvas directly, never through ``pyplot``
(no global backend switch, works headless); matplotlib is imported inside the function so
``import advforge.influence`` stays light.
"""

from __future__ import annotations

import io
import math

import torch


def fi_map_png(x: torch.Tensor, fi: torch.Tensor, *, title: str = "",
               marked: torch.Tensor | None = None) -> bytes:
    """The image, then one heat map of pixel FI per channel (one for a grey image).

    Args:
        x: (C, H, W) image in [0, 1] (shown in colour when C = 3).
        fi: (C, H, W) pixel-level FI.
        title: figure title (e.g. the true label, the prediction and the image-level FI).
        marked: optional long indices into the flattened C*H*W input (e.g. the top pixels),
            circled on their channel's map.

    Returns:
        The PNG file's bytes.
    """
    channels, height, width = fi.shape
    fig = _figure(3.2 * (channels + 1), 3.2)
    axes = fig.subplots(1, channels + 1, squeeze=False)[0]
    image = x.detach().cpu().float()
    rgb = channels == 3
    axes[0].imshow((image.permute(1, 2, 0) if rgb else image.mean(0)).numpy(),
                   cmap=None if rgb else "gray", vmin=0, vmax=1)
    axes[0].set_title("image")
    heat = fi.detach().cpu().double().nan_to_num(posinf=torch.finfo(torch.float64).max)
    names = ["pixel FI"] if channels == 1 else [f"pixel FI, {c}" for c in "RGB"] if rgb else []
    for c in range(channels):
        shown = axes[c + 1].imshow(heat[c].numpy(), cmap="hot")
        fig.colorbar(shown, ax=axes[c + 1], fraction=0.046, pad=0.04)
        axes[c + 1].set_title(names[c] if c < len(names) else f"pixel FI, channel {c}")
    if marked is not None:
        for index in marked.tolist():
            c, rest = divmod(int(index), height * width)
            row, col = divmod(rest, width)
            axes[c + 1].scatter([col], [row], s=60, facecolors="none", edgecolors="cyan")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, y=1.05)
    return _png(fig)


def _figure(width: float, height: float):
    """A headless matplotlib Figure (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _show_image(ax, x: torch.Tensor, title: str = "") -> None:
    image = x.detach().cpu().float().clamp(0, 1)
    if image.shape[0] == 3:
        ax.imshow(image.permute(1, 2, 0).numpy())
    else:
        ax.imshow(image.mean(0).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(ax, probs: torch.Tensor, title: str = "") -> None:
    values = probs.detach().cpu().double()
    ax.bar(range(values.numel()), values.numpy(), color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_xticks(range(values.numel()))
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)


def target_maps_png(x: torch.Tensor, probs: torch.Tensor, maps: torch.Tensor, *,
                    title: str = "") -> bytes:
    """Fig. 2 / 3: the image, its probability bars, and the pixel-level FI map of
    ``f = -log p_t`` for every class t (colour images: the channels' maps summed).

    Args:
        x: (C, H, W) image. probs: (K,) probabilities. maps: (K, C, H, W) pixel FI per target.
    """
    k = maps.shape[0]
    cols = min(k + 2, 6)
    rows = -(-(k + 2) // cols)
    fig = _figure(2.0 * cols, 2.1 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    _show_image(axes[0], x, "image")
    _bars(axes[1], probs, "probabilities")
    heat = maps.detach().cpu().double().sum(1).nan_to_num(
        posinf=torch.finfo(torch.float64).max)
    for t in range(k):
        ax = axes[t + 2]
        ax.imshow(heat[t].numpy(), cmap="hot")
        ax.set_title(f"target {t}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[k + 2:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)


def settings_png(x: torch.Tensor, rows: list[tuple[str, torch.Tensor, torch.Tensor]]) -> bytes:
    """Fig. 4 / 5: per setting, the perturbation map above the adversarial image.

    Args:
        x: (C, H, W) the clean image (shown first).
        rows: (label, x_adv (C, H, W), probs (K,)) per setting; each label names the setting
            and its outcome.
    """
    n = len(rows)
    fig = _figure(1.9 * (n + 1), 4.4)
    axes = fig.subplots(3, n + 1, squeeze=False)
    _show_image(axes[1][0], x, "clean")
    axes[0][0].axis("off")
    axes[2][0].axis("off")
    for i, (label, x_adv, probs) in enumerate(rows, 1):
        delta = (x_adv - x).detach().cpu().double().sum(0)
        bound = float(delta.abs().max()) or 1.0
        ax = axes[0][i]
        ax.imshow(delta.numpy(), cmap="bwr", vmin=-bound, vmax=bound)
        ax.set_title(label, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        _show_image(axes[1][i], x_adv)
        _bars(axes[2][i], probs)
    return _png(fig)


def manhattan_png(parts: dict[str, tuple[torch.Tensor, torch.Tensor]], *,
                  threshold: float | None = None) -> bytes:
    """Fig. 7: log10 image-level FI of each image, images grouped by true class along x, one
    panel per part (e.g. train and test); a dashed line at ``threshold`` (FI_img).

    Args:
        parts: name -> (fi (N,), y (N,)) of the correctly classified images.
    """
    fig = _figure(7.0, 2.4 * len(parts))
    axes = fig.subplots(len(parts), 1, squeeze=False)[:, 0]
    floor = 1e-12  # FI of a saturated softmax is ~0: shown at the floor, not dropped
    for ax, (name, (fi, y)) in zip(axes, parts.items(), strict=True):
        fi, y = fi.detach().cpu().double(), y.detach().cpu().long()
        order = torch.argsort(y, stable=True)
        values = fi[order].clamp_min(floor).log10().numpy()
        labels = y[order].numpy()
        ax.scatter(range(len(values)), values, c=labels % 10, cmap="tab10", s=3)
        if threshold is not None:
            ax.axhline(math.log10(threshold), color="black", linestyle="--", linewidth=0.8)
        classes = torch.unique(y).tolist()
        ax.set_xticks([float((y[order] < c).sum() + (y == c).sum() / 2) for c in classes])
        ax.set_xticklabels([str(c) for c in classes], fontsize=7)
        ax.set_ylabel("log10 image FI", fontsize=8)
        ax.set_title(f"{name} (n={len(values)})", fontsize=8)
    return _png(fig)


def confusion_png(matrices: dict[str, torch.Tensor]) -> bytes:
    """Fig. 8: heatmaps of the misclassification counts (row = true class, column =
    prediction; the diagonal blanked so the confusions are visible), one per part."""
    fig = _figure(3.6 * len(matrices), 3.3)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, counts) in zip(axes, matrices.items(), strict=True):
        off = counts.detach().cpu().double().clone()
        off.fill_diagonal_(float("nan"))
        shown = ax.imshow(off.numpy(), cmap="viridis")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        k = off.shape[0]
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.tick_params(labelsize=6)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(f"{name} ({int(counts.sum() - counts.trace())} errors)", fontsize=8)
    return _png(fig)


def confidence_png(p_true: torch.Tensor, fi: torch.Tensor, *,
                   fi_img: float | None = None) -> bytes:
    """Image-level FI of ``-log p_y`` against p_y, with the full-rank identity (1 - p) / p
    drawn over the points and, optionally, the FI_img threshold."""
    import numpy as np

    p = p_true.detach().cpu().double().numpy()
    values = fi.detach().cpu().double().clamp_min(1e-12).numpy()
    fig = _figure(5.0, 3.6)
    ax = fig.subplots()
    ax.scatter(p, values, s=4, alpha=0.5, label="images")
    grid = np.linspace(max(float(p.min()) if p.size else 0.01, 1e-3), 1 - 1e-9, 400)
    ax.plot(grid, np.maximum((1 - grid) / grid, 1e-12), color="black", linewidth=0.8,
            label="(1 - p) / p")
    if fi_img is not None:
        ax.axhline(fi_img, color="red", linestyle="--", linewidth=0.8, label=f"FI_img {fi_img:g}")
    ax.set_yscale("log")
    ax.set_xlabel("p(true class)")
    ax.set_ylabel("image-level FI")
    ax.legend(fontsize=7)
    return _png(fig)
