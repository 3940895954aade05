"""Sample grids of training runs side by side: one row per run, one column per epoch.

    python benchmarks/compare_grids.py runs/anime48 runs/anime_dcgan64 --epochs 2 5 10 \\
        --labels "dcgan-carpedm20, 48 px" "dcgan, 64 px" --out docs/anime_carpedm20_vs_dcgan.png

Reads each run's samples/epoch_XXX.png (written by `python -m mindgan.train`); an epoch a run
has no grid for is left blank and says so.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with samples/)")
    p.add_argument("--epochs", type=int, nargs="+", required=True)
    p.add_argument("--labels", nargs="+", help="one per run (default: the folder names)")
    p.add_argument("--title", default="")
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    labels = a.labels or [r.name for r in a.runs]
    if len(labels) != len(a.runs):
        p.error(f"--labels: {len(labels)} labels for {len(a.runs)} runs")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(len(a.runs), len(a.epochs), figsize=(3.2 * len(a.epochs), 3.45 * len(a.runs)),
                             squeeze=False)
    for i, (run, label) in enumerate(zip(a.runs, labels)):
        for j, epoch in enumerate(a.epochs):
            ax, grid = axes[i][j], run / "samples" / f"epoch_{epoch:03d}.png"
            ax.axis("off")
            if grid.is_file():
                ax.imshow(Image.open(grid).convert("RGB"))
                ax.set_title(f"{label}, epoch {epoch}", fontsize=8)
            else:
                ax.set_title(f"{label}, epoch {epoch}: no grid", fontsize=8)
    if a.title:
        fig.suptitle(a.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=a.dpi)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
