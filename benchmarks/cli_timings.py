"""Wall-clock times of the README's commands, as a user meets them: whole processes, start-up,
compile and all. The README's time ranges come from this script.

    python benchmarks/cli_timings.py                    # quick start (5 epochs) and evaluate, twice
    python benchmarks/cli_timings.py --cold             # drop the page cache before each run (root)
    python benchmarks/cli_timings.py --epochs 2 --repeat 1 --what train

"cold" empties the operating system's file cache first (as after a reboot or on a fresh
machine: MindSpore's ~800 MB of libraries and the data are read from disk again); "warm" runs
right after another run. Each training run reports its first epoch (with the graph compile)
and the later ones separately.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EPOCH_LINE = re.compile(r"^epoch\s+(\d+)/\d+ .* ([0-9.]+) s")


def drop_page_cache() -> bool:
    """Empty the OS file cache (Linux, root); False where that is not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "GLOG_v": "3"})
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def train_run(epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        wall, out = timed([sys.executable, "-m", "mindgan.train", "--device_target", "CPU",
                           "--epochs", str(epochs), "--output_dir", f"{tmp}/run", "--no_progress"])
    epoch_s = [float(m.group(2)) for m in map(EPOCH_LINE.match, out.splitlines()) if m]
    return {"wall": wall, "first": epoch_s[0], "later": epoch_s[1:],
            "outside": wall - sum(epoch_s)}


def evaluate_run() -> dict:
    wall, _ = timed([sys.executable, "-m", "mindgan.evaluate", "--ckpt",
                     "pretrained/generator_mnist.ckpt"])
    return {"wall": wall}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--what", choices=("train", "evaluate", "both"), default="both")
    p.add_argument("--epochs", type=int, default=5, help="epochs of the quick start (default 5)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each command (default 2)")
    p.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    args = p.parse_args()

    print("| run | command | wall | first epoch (compile incl.) | later epochs | start-up, saving, exit |")
    print("|---|---|---|---|---|---|")
    for i in range(args.repeat):
        state = "warm"
        if args.cold:
            state = "cold" if drop_page_cache() else "warm (could not drop the page cache)"
        if args.what in ("train", "both"):
            r = train_run(args.epochs)
            later = (f"{min(r['later']):.1f}-{max(r['later']):.1f} s" if r["later"] else "-")
            print(f"| {i + 1} {state} | train --epochs {args.epochs} | {r['wall']:.1f} s | "
                  f"{r['first']:.1f} s | {later} | {r['outside']:.1f} s |", flush=True)
            if args.cold:
                drop_page_cache()
        if args.what in ("evaluate", "both"):
            r = evaluate_run()
            print(f"| {i + 1} {state} | evaluate (10,000 samples) | {r['wall']:.1f} s | | | |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
