"""Benchmark: the training step of each family in one process and in W msrun workers.

    python benchmarks/data_parallel.py                       # mlp and dcgan-mnist on MNIST, 1 and 2 workers
    python benchmarks/data_parallel.py --models dcgan --data_dir ../shared/twemoji/72x72

Runs `python -m mindgan.train` for 2 epochs of a small subset, alone and under
`msrun --worker_num W`, with the same global batch, and reads the warm step time off the second
epoch's line (the first carries the compile). One step per call (short runs), progress off.
On a machine with fewer cores than workers x MindSpore's threads, expect no speed-up: the
workers share the cores and add an all-reduce per gradient.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"mlp": dict(batch_size=128, steps=40), "dcgan-mnist": dict(batch_size=256, steps=6),
            "dcgan": dict(batch_size=128, steps=4)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def epoch_seconds(log: str) -> float:
    """Seconds of the second epoch from the epoch lines of a run's output."""
    lines = [line for line in log.splitlines() if re.match(r"epoch +2/", line)]
    if not lines:
        raise RuntimeError("no epoch-2 line in:\n" + log[-3000:])
    return float(re.search(r" ([0-9.]+) s", lines[-1]).group(1))


def run(model: str, workers: int, data_dir: str | None, tmp: Path) -> float:
    s = SETTINGS[model]
    flags = ["--model", model, "--epochs", "2", "--batch_size", str(s["batch_size"]),
             "--subset", str(s["batch_size"] * s["steps"]), "--no_progress", "--device_target", "CPU",
             "--output_dir", str(tmp / f"{model}_{workers}")]
    if data_dir:
        flags += ["--data_dir", data_dir]
    env = {**os.environ, "GLOG_v": "3",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if workers == 1:
        out = subprocess.run(["python", "-m", "mindgan.train", *flags], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=1800)
        return epoch_seconds(out.stdout) / s["steps"]
    logs = tmp / f"logs_{model}_{workers}"
    subprocess.run(["msrun", "--worker_num", str(workers), "--local_worker_num", str(workers),
                    "--master_port", str(free_port()), "--log_dir", str(logs), "--join", "True",
                    "python", "-m", "mindgan.train", *flags], cwd=REPO, env=env,
                   capture_output=True, text=True, timeout=1800)
    return epoch_seconds((logs / "worker_0.log").read_text(errors="replace")) / s["steps"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--models", nargs="+", default=["mlp", "dcgan-mnist"], choices=tuple(SETTINGS))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--data_dir", default=None, help="image folder for dcgan (MNIST otherwise)")
    args = p.parse_args(argv)
    print("| model | global batch | " + " | ".join(f"{w} worker{'s' * (w > 1)}" for w in args.workers)
          + " |\n|---|---|" + "---|" * len(args.workers))
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            times = [run(model, w, args.data_dir if model == "dcgan" else None, Path(tmp))
                     for w in args.workers]
            print(f"| {model} | {SETTINGS[model]['batch_size']} | "
                  + " | ".join(f"{t * 1e3:.0f} ms" for t in times) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
