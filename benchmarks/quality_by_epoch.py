"""Plot the quick FID and the class balance that runs logged during training (`--eval_every`).

    python benchmarks/quality_by_epoch.py runs/ema999 runs/ema999_seed1 --out docs/quality_by_epoch.png

Reads each run's metrics.csv (epoch, fid, kl_to_uniform, ...) and draws two panels against the
epoch: the quick classifier FID (log scale) and the KL of the class histogram to uniform. The
legend names each run by its folder and its config.json's seed, --ema and --lr_decay_from.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def label(run: Path) -> str:
    try:
        c = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        return run.name
    parts = [f"seed {c.get('seed', 0)}"]
    if c.get("ema"):
        parts.append(f"EMA {c['ema']}")
    if c.get("lr_decay_from"):
        parts.append(f"lr decay from {c['lr_decay_from']}")
    return f"{run.name} ({', '.join(parts)})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", default="quality_by_epoch.png")
    args = p.parse_args(argv)

    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), dpi=100)
    ax_fid, ax_kl = fig.subplots(1, 2)
    for run in args.runs:
        path = run / "metrics.csv"
        if not path.is_file():
            p.error(f"{path}: no such file (was the run trained with --eval_every?)")
        with open(path, newline="", errors="replace") as f:
            reader = csv.DictReader(f)
            if not {"epoch", "fid", "kl_to_uniform"} <= set(reader.fieldnames or ()):
                p.error(f"{path}: not a metrics.csv (its header lacks epoch, fid, kl_to_uniform)")
            rows = list(reader)
        epochs = [int(r["epoch"]) for r in rows]
        ax_fid.plot(epochs, [float(r["fid"]) for r in rows], "o-", ms=3, label=label(run))
        ax_kl.plot(epochs, [float(r["kl_to_uniform"]) for r in rows], "o-", ms=3, label=label(run))
    ax_fid.set_yscale("log")
    ax_fid.set_ylabel("quick classifier FID (2,000 samples)")
    ax_kl.set_yscale("log")
    ax_kl.axhline(0.01, color="grey", ls="--", lw=1)  # the target for a shipped generator
    ax_kl.set_ylabel("KL(class histogram || uniform)")
    for ax in (ax_fid, ax_kl):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_kl.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
