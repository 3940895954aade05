"""The run folder: where it is, its loss log, its config record and its pictures.

Layout: checkpoints/ (see `checkpoint`), samples/epoch_XXX.png, losses.csv, loss_curve.png,
training.gif, config.json. Every file is written atomically or appended to, so a process
killed at any moment leaves a consistent folder that `--resume` continues.
"""
from __future__ import annotations

import csv
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .fileio import atomic_output, write_text
from .viz import plot_losses, save_gif

__all__ = ["LOG_COLUMNS", "new_run_dir", "prepare_run_dir", "read_log", "write_log", "append_log",
           "RunLog", "MetricsLog", "write_config", "versions"]

LOG_COLUMNS = ("epoch", "step", "loss_d", "loss_g", "d_real", "d_fake")


def new_run_dir(root: str | Path = "runs") -> Path:
    """A fresh timestamped folder under `root` (never an existing one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = Path(root) / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder under {root}")


def prepare_run_dir(output_dir: str | None, resume: str | Path | None) -> Path:
    """The folder of a run: `resume` itself, `output_dir` (created; refused if it holds
    anything), or a new runs/YYYYmmdd-HHMMSS."""
    if resume is not None:
        return Path(resume)
    if output_dir:
        run_dir = Path(output_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(f"--output_dir {run_dir} exists and is not empty; use "
                                  f"--resume {run_dir} to continue that run, or another folder")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    return new_run_dir()


def read_log(path: Path, upto_step: int) -> list[dict]:
    """losses.csv rows with step <= upto_step (later rows belong to a lost, unsaved stretch;
    a last line cut short by a crash during an append is dropped too). Raises ValueError
    naming the line when the file is not such a log."""
    if not path.is_file():
        return []
    with open(path, newline="", errors="replace") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != LOG_COLUMNS:
            raise ValueError(f"header {reader.fieldnames} is not {list(LOG_COLUMNS)}")
        rows = list(reader)
    kept = []
    for i, row in enumerate(rows):
        try:
            step = int(row["step"])
            [float(row[c]) for c in LOG_COLUMNS[2:]]
        except (TypeError, ValueError):
            if i == len(rows) - 1:
                break  # cut short mid-append
            raise ValueError(f"line {i + 2} is not a log row") from None
        if step <= upto_step:
            kept.append(row)
    return kept


def write_log(path: Path, rows: list[dict]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def append_log(path: Path, rows: list[dict]) -> None:
    """Append rows: rewriting the whole log each epoch grows with the run."""
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, LOG_COLUMNS).writerows(rows)


class RunLog:
    """The per-step loss log of a run folder, and the pictures drawn from it.

    Opening it keeps the rows up to `step` (the resumed checkpoint's), so steps of an unsaved
    stretch are dropped; an unreadable losses.csv is kept aside with a warning, never lost.
    """

    def __init__(self, run_dir: Path, step: int):
        self.run_dir, self.path = run_dir, run_dir / "losses.csv"
        try:
            self.rows = read_log(self.path, step)
        except ValueError as e:  # keep the unreadable file; the checkpoints do not depend on it
            kept = run_dir / "losses.csv.unreadable"
            self.path.replace(kept)
            print(f"warning: {self.path}: {e}; kept as {kept.name}, starting a new log",
                  file=sys.stderr)
            self.rows = []
        write_log(self.path, self.rows)  # drops rows of an unsaved stretch
        self.saved = len(self.rows)

    def add(self, epoch: int, step: int, values) -> None:
        """One step's row: values = loss_d, loss_g, D(x), D(G(z))."""
        self.rows.append(dict(zip(LOG_COLUMNS, [epoch, step, *(f"{v:.6f}" for v in values)])))

    def flush(self, steps_per_epoch: int) -> None:
        """Append the new rows to losses.csv and redraw loss_curve.png."""
        append_log(self.path, self.rows[self.saved:])
        self.saved = len(self.rows)
        if self.rows:
            plot_losses([int(r["step"]) for r in self.rows], [float(r["loss_d"]) for r in self.rows],
                        [float(r["loss_g"]) for r in self.rows], self.run_dir / "loss_curve.png",
                        steps_per_epoch)

    def write_gif(self, max_frames: int = 50, max_side: int = 480) -> None:
        """training.gif from the sample grids so far (only when a run stops: re-encoding every
        frame each epoch grew to seconds): at most `max_frames` of them, evenly spread with the
        last kept, each at most `max_side` pixels across, so the GIF stays a few MB."""
        frames = sorted((self.run_dir / "samples").glob("epoch_*.png"))
        if len(frames) > max_frames:
            keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
            frames = [frames[i] for i in sorted(set(keep))]
        if frames:
            save_gif(frames, self.run_dir / "training.gif", max_side=max_side)


class MetricsLog:
    """metrics.csv (epoch, step, fid, classes_present, kl_to_uniform, seconds) and metrics.png:
    the quality figure measured every --eval_every epochs. Rows after the resumed step are
    dropped, like the loss log's; `best` is the lowest FID kept so far."""

    COLUMNS = ("epoch", "step", "fid", "classes_present", "kl_to_uniform", "seconds")

    def __init__(self, run_dir: Path, step: int):
        self.path, self.plot = run_dir / "metrics.csv", run_dir / "metrics.png"
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self.rows = rows
        if self.path.is_file():  # drop rows of an unsaved stretch; a run never measured has no file
            self._write()

    @property
    def best(self) -> float:
        return min((float(r["fid"]) for r in self.rows), default=float("inf"))

    def add(self, epoch: int, step: int, result: dict, seconds: float) -> None:
        self.rows.append({"epoch": epoch, "step": step, "fid": f"{result['fid']:.4f}",
                          "classes_present": result["classes_present"],
                          "kl_to_uniform": f"{result['kl_to_uniform']:.5f}", "seconds": f"{seconds:.2f}"})
        self._write()
        self._draw()

    def _write(self) -> None:
        with atomic_output(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def _draw(self) -> None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.5), dpi=100)
        ax = fig.subplots()
        ax.plot([int(r["epoch"]) for r in self.rows], [float(r["fid"]) for r in self.rows], "o-")
        ax.set_xlabel("epoch")
        ax.set_ylabel("classifier FID (lower is better)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        with atomic_output(self.plot) as tmp:
            fig.savefig(tmp, format="png")


def versions(device: str) -> dict:
    """What ran the run: package versions, device and machine."""
    import mindspore as ms

    return {"mindgan": __version__, "mindspore": ms.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "device": device,
            "machine": f"{platform.machine()} {platform.system()}"}


def write_config(run_dir: Path, config: dict, device: str) -> None:
    """config.json: every setting plus `versions(device)`."""
    record = {**config, "versions": versions(device)}
    write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")
