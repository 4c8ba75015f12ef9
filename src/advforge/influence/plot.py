"""PNG of an image beside its pixel-level FI map (the paper's Fig. 2 and 3).

Built on ``matplotlib.figure.Figure`` with the Agg canvas directly, never through ``pyplot``
(no global backend switch, works headless); matplotlib is imported inside the function so
``import advforge.influence`` stays light.
"""

from __future__ import annotations

import io

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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    channels, height, width = fi.shape
    fig = Figure(figsize=(3.2 * (channels + 1), 3.2), dpi=100)
    FigureCanvasAgg(fig)
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
