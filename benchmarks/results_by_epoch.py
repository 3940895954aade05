"""Evaluate a run's generator snapshots and plot the metrics against epochs.

    python benchmarks/results_by_epoch.py runs/pretrained --epochs 1 5 10 20 50 100 --out docs

For each `checkpoints/generator_epoch_XXX.ckpt` asked for, runs `mindgan.evaluate.evaluate`
(Parzen log-likelihood, classifier FID, mode coverage) and writes `<out>/metrics_by_epoch.json`
and `<out>/metrics_by_epoch.png`. A slow job (about a minute a snapshot on 2 CPU cores), so
`--reuse` keeps the rows of an existing `<out>/metrics_by_epoch.json` (same --num) and evaluates
only the epochs it lacks: evaluation is seeded, so a re-run would give the same numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("run_dir")
    p.add_argument("--epochs", type=int, nargs="+", required=True)
    p.add_argument("--num", type=int, default=10000)
    p.add_argument("--out", default="docs")
    p.add_argument("--reuse", action="store_true",
                   help="keep rows already in <out>/metrics_by_epoch.json; evaluate only new epochs")
    args = p.parse_args(argv)

    from mindgan.evaluate import evaluate
    from mindgan.runtime import setup

    setup("CPU", "graph")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    known = {}
    if args.reuse and (out / "metrics_by_epoch.json").exists():
        known = {r["epoch"]: r for r in json.loads((out / "metrics_by_epoch.json").read_text())
                 if r.get("num_samples") == args.num}
    rows = []
    for epoch in args.epochs:
        if epoch in known:
            rows.append(known[epoch])
            print(f"epoch {epoch:4d}: kept from {out / 'metrics_by_epoch.json'}", flush=True)
            continue
        ckpt = Path(args.run_dir) / "checkpoints" / f"generator_epoch_{epoch:03d}.ckpt"
        r = evaluate(ckpt, args.num, seed=0, with_reference=not rows, progress=lambda m: None)
        rows.append({"epoch": epoch, **r})
        print(f"epoch {epoch:4d}: Parzen {r['parzen_ll']:7.1f} ± {r['parzen_se']:.1f} "
              f"(sigma {r['parzen_sigma']:.3f})  FID {r['fid']:7.2f}  classes {r['classes_present']}  "
              f"KL {r['kl_to_uniform']:.4f}", flush=True)
    (out / "metrics_by_epoch.json").write_text(json.dumps(rows, indent=1) + "\n")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in rows]
    ax1.errorbar(epochs, [r["parzen_ll"] for r in rows], yerr=[r["parzen_se"] for r in rows],
                 marker="o", label="mindgan")
    ax1.axhline(225, color="tab:red", linestyle="--", label="paper's GAN: 225 ± 2")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("Parzen log-likelihood (nats)")
    ax1.legend()
    ax2.plot(epochs, [r["fid"] for r in rows], marker="o", label="generated vs test")
    ref = rows[0].get("fid_reference_train_vs_test")
    if ref is not None:
        ax2.axhline(ref, color="tab:green", linestyle="--", label=f"real train vs test: {ref:.2f}")
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("classifier FID")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "metrics_by_epoch.png")
    print(out / "metrics_by_epoch.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
