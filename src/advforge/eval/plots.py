"""PNG figures for the HTML report: confusion heatmaps (AI-GAN Fig. 4), the sample grid
(Fig. 3) and per-target success bars.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly, never through
``pyplot``: no global backend switch (a notebook's backend stays as it was), no figure
registry to leak, and it works headless. matplotlib is imported inside the functions so that
``import advforge`` stays light.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

_OK = np.array([0.10, 0.62, 0.25])  # frame of a cell whose prediction hits the target
_FAIL = np.array([0.85, 0.12, 0.12])  # frame of a cell where the attack missed
_CLEAN = np.array([0.35, 0.35, 0.35])  # frame of a clean (diagonal) cell
_BLANK = 1.0  # background


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _labels(num: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(num)]
    return [str(class_names[k]) for k in range(num)]


def confusion_png(
    confusion: torch.Tensor,
    *,
    title: str,
    row_label: str = "target class",
    class_names: Sequence[str] | None = None,
) -> bytes:
    """Row-normalised confusion heatmap; for a targeted attack the diagonal is the per-target
    success rate (AI-GAN Fig. 4: rows = targets, columns = predictions, lighter = higher)."""
    counts = torch.as_tensor(confusion, dtype=torch.float64).numpy()
    k = counts.shape[0]
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    side = float(np.clip(1.6 + 0.42 * k, 3.5, 11.0))
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(rates), cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row")
    if k <= 12:  # write the numbers where they stay legible
        for i in range(k):
            for j in range(k):
                if np.isfinite(rates[i, j]) and counts[i, j] > 0:
                    colour = "black" if rates[i, j] > 0.6 else "white"
                    ax.text(
                        j,
                        i,
                        f"{100 * rates[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
    step = max(1, k // 20)
    ticks = list(range(0, k, step))
    names = _labels(k, class_names)
    ax.set_xticks(ticks, [names[t] for t in ticks], rotation=90 if k > 10 else 0, fontsize=8)
    ax.set_yticks(ticks, [names[t] for t in ticks], fontsize=8)
    ax.set_xlabel("predicted class after the attack")
    ax.set_ylabel(row_label)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def per_target_png(
    series: dict[str, dict[int, float]], num_classes: int, class_names: Sequence[str] | None
) -> bytes:
    """Grouped bars: success rate per target class, one bar per attack."""
    names = _labels(num_classes, class_names)
    fig = _figure(float(np.clip(2.5 + 0.45 * num_classes * max(1, len(series)) / 2, 5, 14)), 3.2)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for i, (attack, rates) in enumerate(series.items()):
        xs = [k + (i - (len(series) - 1) / 2) * width for k in sorted(rates)]
        ax.bar(xs, [100 * rates[k] for k in sorted(rates)], width=width, label=attack)
    step = max(1, num_classes // 25)
    ax.set_xticks(range(0, num_classes, step), names[::step], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_xlabel("target class")
    ax.set_ylabel("success (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    # Above the axes: inside, the legend would hide the bars near 100% that matter most.
    ax.legend(
        fontsize=8,
        ncols=min(5, len(series)),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.01),
        frameon=False,
    )
    return _png(fig)


class _Layout(NamedTuple):
    """Pixel geometry of the Fig. 3 mosaic: rows x cols cells, each [image | perturbation]
    framed, with a taller gap under each row to write the prediction of a miss."""

    rows: int
    cols: int
    h: int
    w: int
    border: int
    gap: int = 1
    pad_x: int = 3
    pad_y: int = 7

    @property
    def cell_h(self) -> int:
        return self.h + 2 * self.border

    @property
    def cell_w(self) -> int:
        return 2 * self.w + self.gap + 2 * self.border

    def top(self, r: int) -> int:
        return self.pad_y + r * (self.cell_h + self.pad_y)

    def left(self, s: int) -> int:
        return self.pad_x + s * (self.cell_w + self.pad_x)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.top(self.rows), self.left(self.cols), 3


def sample_grid_png(
    sample: dict[str, Any], *, title: str, class_names: Sequence[str] | None = None
) -> tuple[bytes, str]:
    """Render a :func:`~advforge.eval.evaluate.sample_grid` as one mosaic image (Fig. 3).

    Row = target class, column = source class. Each cell shows the adversarial image and,
    beside it, its perturbation amplified to the full display range; where the target equals
    the source the clean image stands. A green frame marks a cell classified as its target, a
    red one a miss (with the predicted class written under it).

    Returns:
        ``(png, caption)``: the caption states the amplification used.
    """
    mosaic, lay, amp_text = _mosaic(sample)
    targets = _row_targets(sample)
    scale = float(np.clip(1300.0 / mosaic.shape[1], 1.0, 4.0))  # display pixels per pixel
    fig = _figure(mosaic.shape[1] * scale / 100 + 1.0, mosaic.shape[0] * scale / 100 + 0.9)
    ax = fig.add_subplot()
    ax.imshow(mosaic, interpolation="nearest")
    names = _labels(max(lay.cols, max(targets) + 1), class_names)
    cx = [lay.left(s) + lay.cell_w / 2 for s in range(lay.cols)]
    cy = [lay.top(r) + lay.cell_h / 2 for r in range(lay.rows)]
    ax.set_xticks(cx, names[: lay.cols], fontsize=8)
    ax.set_yticks(cy, [names[t] for t in targets], fontsize=8)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("source class (clean input)")
    ax.set_ylabel("target class")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    pred = torch.as_tensor(sample["pred"])
    present = _present(sample, lay.cols)
    text = {"ha": "center", "va": "center", "fontsize": 6}
    for r, t in enumerate(targets):
        for s in range(lay.cols):
            p, below = int(pred[r, s]), lay.top(r) + lay.cell_h + lay.pad_y / 2
            if s == t and bool(present[s]):
                ax.text(cx[s] + lay.w / 2, cy[r], "clean", color="0.45", **text)
            elif p >= 0 and p != t:
                ax.text(cx[s], below, f"pred {names[p]}", color=tuple(_FAIL), **text)
    ax.set_title(title, fontsize=10)
    caption = (
        "Rows: target class; columns: source class; clean images where they meet. In each cell, "
        f"left: adversarial image, right: its perturbation, {amp_text}. Green frame: classified "
        "as the target; red frame: not (the prediction is written below)."
    )
    return _png(fig), caption


def _row_targets(sample: dict[str, Any]) -> list[int]:
    rows = sample.get("targets")
    if rows is None:
        return list(range(torch.as_tensor(sample["x_adv"]).shape[0]))
    return [int(t) for t in torch.as_tensor(rows).flatten()]


def _present(sample: dict[str, Any], cols: int) -> torch.Tensor:
    present = sample.get("present")
    return torch.ones(cols, dtype=torch.bool) if present is None else torch.as_tensor(present)


def _mosaic(sample: dict[str, Any]) -> tuple[np.ndarray, _Layout, str]:
    """Lay the grid out as one RGB array; returns it, its layout and the amplification text
    for the caption."""
    x = torch.as_tensor(sample["x"]).float()  # (k, C, H, W)
    x_adv = torch.as_tensor(sample["x_adv"]).float()  # (R, k, C, H, W)
    pred = torch.as_tensor(sample["pred"])  # (R, k)
    targets = _row_targets(sample)
    k, h, w = x.shape[0], x.shape[2], x.shape[3]
    present = _present(sample, k)
    delta = x_adv - x.unsqueeze(0)  # (R, k, C, H, W)
    attacked = (torch.tensor(targets).view(-1, 1) != torch.arange(k)) & present.view(1, k)
    amp = float(delta[attacked].abs().max()) if attacked.any() else 0.0
    amp = amp if amp > 0 else 1.0  # one scale for the whole grid, so cells compare
    lay = _Layout(len(targets), k, h, w, border=2 if h >= 24 else 1)
    mosaic = np.full(lay.shape, _BLANK)
    for r, t in enumerate(targets):
        for s in range(k):
            if not bool(present[s]):
                continue
            top, left = lay.top(r), lay.left(s)
            frame = _CLEAN if s == t else (_OK if int(pred[r, s]) == t else _FAIL)
            mosaic[top : top + lay.cell_h, left : left + lay.cell_w] = frame
            top, left = top + lay.border, left + lay.border
            mosaic[top : top + h, left : left + w] = _to_rgb(x_adv[r, s])
            left += w + lay.gap
            mosaic[top : top + h, left : left + w] = (
                _BLANK if s == t else _perturbation_rgb(delta[r, s], amp)
            )
    if x.shape[1] == 1:
        amp_text = f"red = brighter, blue = darker, full colour = |delta| of {amp:.3g}"
    else:
        amp_text = f"mid-grey = 0, amplified x{0.5 / amp:.1f}"
    return mosaic, lay, amp_text


def _to_rgb(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3); grey for C != 3."""
    arr = img.clamp(0, 1).numpy()
    if arr.shape[0] == 3:
        return arr.transpose(1, 2, 0)
    return np.repeat(arr[:1].transpose(1, 2, 0), 3, axis=2)


def _perturbation_rgb(delta: torch.Tensor, amp: float) -> np.ndarray:
    """Amplify ``delta`` (C, H, W) so ``|delta| = amp`` fills the display range."""
    from matplotlib import colormaps

    if delta.shape[0] == 3:
        return (0.5 + 0.5 * delta / amp).clamp(0, 1).numpy().transpose(1, 2, 0)
    # One channel: a diverging map reads better than grey (the sign is the colour).
    unit = (0.5 + 0.5 * delta[0] / amp).clamp(0, 1).numpy()  # (H, W)
    return colormaps["RdBu_r"](unit)[..., :3]


def robust_curve_png(points: Sequence[Any], *, norm: str, eps: float | None = None,
                     title: str = "robust accuracy against eps") -> bytes:
    """Robust accuracy (%) against eps, from :func:`~advforge.eval.curve.robust_curve`'s
    points (objects or dicts with ``eps`` and ``robust_accuracy``); a dotted line marks the
    budget ``eps`` of the report."""
    def get(p: Any, key: str) -> float:
        return float(p[key] if isinstance(p, dict) else getattr(p, key))

    xs = [get(p, "eps") for p in points]
    ys = [100 * get(p, "robust_accuracy") for p in points]
    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot()
    ax.plot(xs, ys, marker="o", color=tuple(_OK))
    if eps is not None:
        ax.axvline(eps, color="0.5", linestyle=":", linewidth=1)
    ax.set_xlabel("L2 eps" if norm == "l2" else "L-inf eps")
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return _png(fig)
