"""GANs on a few real digits: each option of issue 27 against plain training, after the same
number of updates, scored by the package's MNIST figures (classifier FID and KL to uniform over
10,000 samples against the test set).

    python benchmarks/small_data.py --model mlp --subset 1000 --epochs 700 --seeds 0 1 \\
        --option= --option=--spectral_norm "--option=--diffaugment color,translation,cutout" \\
        "--option=--loss wgan-gp" "--option=--r1 10" \\
        --extra "--save_every 50 --eval_every 0" --out docs/small_data_mlp_1000.json \\
        --figure docs/small_data_mlp_1000.png

Each (option, seed) trains `python -m mindgan.train ... --subset N --epochs E --seed S` into
`--runs/<label>-seed<S>` (kept, so a finished run is only evaluated again), then
`python -m mindgan.evaluate --ckpt .../generator.ckpt --num 10000`. Prints a table (mean over
seeds, and each seed), writes every figure as JSON (--out) and puts each run's last sample grid
side by side with its scores (--figure).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def label(option: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", option.lower()).strip("-") or "plain"


def folder_of(option: str, seed: int, a) -> Path:
    """The run folder of one (option, seed)."""
    return Path(a.runs) / f"{a.model}-{a.subset}-{label(option)}-seed{seed}"


def run(option: str, seed: int, a) -> dict:
    folder = folder_of(option, seed, a)
    t0 = time.perf_counter()
    if not (folder / "checkpoints" / "generator.ckpt").is_file() or a.retrain:
        cmd = [sys.executable, "-m", "mindgan.train", "--model", a.model, "--subset", str(a.subset),
               "--epochs", str(a.epochs), "--seed", str(seed), "--output_dir", str(folder), "--no_progress",
               *shlex.split(option), *shlex.split(a.extra)]
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    train_s = time.perf_counter() - t0
    out = subprocess.run([sys.executable, "-m", "mindgan.evaluate", "--ckpt",
                          str(folder / "checkpoints" / "generator.ckpt"), "--num", "10000", "--seed", "0"],
                         cwd=REPO, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"option": option or "plain", "seed": seed, "train_seconds": round(train_s),
            **{k: result[k] for k in ("fid", "kl_to_uniform", "classes_present", "parzen_ll")}}


def figure(rows: list[dict], a) -> None:
    """Each run's last grid, options across and seeds down, titled with its FID and KL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    options = list(dict.fromkeys(r["option"] for r in rows))
    fig, axes = plt.subplots(len(a.seeds), len(options), figsize=(2.6 * len(options), 3.2 * len(a.seeds)),
                             squeeze=False)
    for r in rows:
        ax = axes[a.seeds.index(r["seed"])][options.index(r["option"])]
        grid = folder_of(r["option"], r["seed"], a) / "samples" / f"epoch_{a.epochs:03d}.png"
        ax.imshow(Image.open(grid).convert("L"), cmap="gray")
        name = r["option"].replace(",", ", ")
        ax.set_title(f"{name}, seed {r['seed']}\nFID {r['fid']:.1f}, KL {r['kl_to_uniform']:.3f}", fontsize=7,
                     wrap=True)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{a.model} on {a.subset:,} MNIST digits, {a.epochs} epochs, the same updates for each option",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(a.figure, dpi=90)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlp")
    p.add_argument("--subset", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=700)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--option", action="append", dest="options",
                   help="the flags of one configuration, as --option=FLAGS (--option= for plain training); "
                        "repeat for each (default: plain, and DiffAugment's three transforms)")
    p.add_argument("--extra", default="", help="flags for every run")
    p.add_argument("--runs", default="runs/small_data")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--figure", default=None, help="a PNG of every run's last sample grid, one column per option")
    a = p.parse_args()
    a.options = a.options or ["", "--diffaugment color,translation,cutout"]
    rows = []
    for option in a.options:
        for seed in a.seeds:
            rows.append(run(option, seed, a))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{a.model}, {a.subset} digits, {a.epochs} epochs {a.extra}".rstrip())
    print("| option | FID (mean) | KL (mean) | per seed: FID / KL |\n|---|---|---|---|")
    for option in a.options:
        mine = [r for r in rows if r["option"] == (option or "plain")]
        fid = sum(r["fid"] for r in mine) / len(mine)
        kl = sum(r["kl_to_uniform"] for r in mine) / len(mine)
        each = "; ".join(f"{r['fid']:.1f} / {r['kl_to_uniform']:.3f}" for r in mine)
        print(f"| {option or 'plain'} | {fid:.2f} | {kl:.4f} | {each} |")
    if a.figure:
        figure(rows, a)
    if a.out:
        Path(a.out).write_text(json.dumps({"model": a.model, "subset": a.subset, "epochs": a.epochs,
                                           "extra": a.extra, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
