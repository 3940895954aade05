"""Pictures of a run: sample grids, the loss curve and the training GIF."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .fileio import atomic_output

__all__ = ["screen_scale", "grid_columns", "grid_image", "save_grid", "plot_losses", "loss_figure", "save_gif"]


def screen_scale(side: int, target: int = 96) -> int:
    """How many times to enlarge a `side`-pixel image so it shows at about `target` pixels:
    3 for 28x28 digits, 1 for 64x64 faces."""
    return max(1, target // side)


def grid_columns(n: int) -> int:
    """Images per row for a grid of `n`: the most square full rectangle, columns at most twice
    the rows (32 -> 8 x 4, 24 -> 6 x 4, 25 -> 5 x 5); where none exists (a prime count, say), a
    square of ceil(sqrt(n)) columns with the last row part-filled."""
    root = math.isqrt(max(n, 1))
    for rows in range(root, 0, -1):
        if n % rows == 0 and n // rows <= 2 * rows:
            return n // rows
    return max(1, math.ceil(math.sqrt(n)))


def grid_image(images: np.ndarray, nrow: int | None = None, pad: int = 2,
               scale: int | None = None) -> np.ndarray:
    """Tile images float `[N, C, H, W]` in [-1, 1] (C = 1 or 3) into one uint8 picture:
    `[rows, cols]` for grayscale, `[rows, cols, 3]` for RGB.

    `nrow` images per row (default: a square-ish grid sized to N); `pad` black pixels between
    tiles; each pixel enlarged `scale` times (default `screen_scale`: 3 for a 28x28 digit).
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:  # [N, H, W]
        images = images[:, None]
    n, c, h, w = images.shape
    scale = screen_scale(h) if scale is None else scale
    if c not in (1, 3):
        raise ValueError(f"images have {c} channels; a picture needs 1 (grayscale) or 3 (RGB)")
    nrow = nrow or grid_columns(n)
    rows = math.ceil(n / nrow)
    tiles = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), np.uint8)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = tile
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid[..., 0] if c == 1 else grid


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None,
              scale: int | None = None) -> Path:
    """Save `grid_image(images)` as a grayscale or RGB PNG (written atomically)."""
    import imageio.v3 as iio

    with atomic_output(path) as tmp:
        iio.imwrite(tmp, grid_image(images, nrow, scale=scale))
    return Path(path)


def plot_losses(steps: Sequence[int], loss_d: Sequence[float], loss_g: Sequence[float],
                path: str | os.PathLike, steps_per_epoch: int | None = None,
                max_points: int = 2000) -> Path:
    """Per-step losses (faint) with an exponentially smoothed line each; epochs on a top axis.
    Long runs are drawn through every k-th step (at most `max_points` per line), so that
    redrawing it at every save stays cheap however long the run."""
    fig = loss_figure(steps, loss_d, loss_g, steps_per_epoch, max_points)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def loss_figure(steps, loss_d, loss_g, steps_per_epoch: int | None = None, max_points: int = 2000):
    """The matplotlib Figure that `plot_losses` saves."""
    # A bare Figure, not pyplot: no GUI backend needed, and the caller's backend (a
    # notebook's inline one, say) is left alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    stride = max(1, -(-len(steps) // max_points))
    x = np.asarray(steps)[::stride]
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    for values, label, color in ((loss_d, "discriminator", "tab:blue"),
                                 (loss_g, "generator", "tab:orange")):
        values = np.asarray(values, dtype=np.float64)
        ax.plot(x, values[::stride], color=color, alpha=0.25, linewidth=0.6)
        smooth = _ema(values, span=max(5, len(values) // 50))  # smoothed over every step
        ax.plot(x, smooth[::stride], color=color, linewidth=1.6, label=f"{label} loss (smoothed)")
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no 2.5 on short runs
    ax.set_ylabel("loss")
    ax.set_title("GAN training losses")
    ax.grid(alpha=0.3)
    ax.legend()
    if steps_per_epoch:
        top = ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch,
                                                  lambda e: e * steps_per_epoch))
        top.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def _fit(picture: np.ndarray, side: int) -> np.ndarray:
    """uint8 `[H, W(, C)]` scaled down (area filter) so neither side exceeds `side`."""
    h, w = picture.shape[:2]
    if max(h, w) <= side:
        return picture
    from PIL import Image

    scale = side / max(h, w)
    return np.asarray(Image.fromarray(picture).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                     Image.BOX))


def _ema(values: np.ndarray, span: int) -> np.ndarray:
    alpha = 2.0 / (span + 1.0)
    out = np.empty(len(values))
    acc = values[0] if len(values) else 0.0
    for i, v in enumerate(values.tolist()):
        acc = alpha * v + (1 - alpha) * acc
        out[i] = acc
    return out


def save_gif(frames: Sequence[str | os.PathLike | np.ndarray], path: str | os.PathLike,
             seconds_per_frame: float = 0.25, hold_last: float = 1.0, max_side: int | None = None) -> Path:
    """Write PNG files (or uint8 arrays) as an endlessly looping GIF, in the given order, each
    frame shown `seconds_per_frame`, the last one `hold_last` seconds (the result, before the
    loop starts over); frames wider or taller than `max_side` are scaled down to it."""
    import imageio.v2 as imageio

    pictures = [imageio.imread(f) if not isinstance(f, np.ndarray) else f for f in frames]
    if max_side:
        pictures = [_fit(p, max_side) for p in pictures]
    # imageio's Pillow plugin takes milliseconds, one value per frame (seconds were read as
    # 0 ms: viewers then played the GIF as fast as they could).
    durations = [round(1000 * seconds_per_frame)] * len(pictures)
    if durations:
        durations[-1] = round(1000 * max(hold_last, seconds_per_frame))
    with atomic_output(path) as tmp:  # (Pillow takes a list only for several frames)
        imageio.mimsave(tmp, pictures, format="GIF", loop=0,
                        duration=durations if len(durations) > 1 else durations[0])
    return Path(path)
